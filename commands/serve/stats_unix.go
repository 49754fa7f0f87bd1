//go:build unix

package serve

import (
	"os"
	"os/signal"
	"syscall"
)

// statsSignals returns a channel that receives SIGUSR1, and a function that
// stops the delivery.
func statsSignals() (<-chan os.Signal, func()) {
	ch := make(chan os.Signal, 1)
	signal.Notify(ch, syscall.SIGUSR1)
	return ch, func() { signal.Stop(ch) }
}
