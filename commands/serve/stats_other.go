//go:build !unix

package serve

import "os"

// statsSignals returns a channel that never receives: there is no SIGUSR1.
func statsSignals() (<-chan os.Signal, func()) {
	return make(chan os.Signal), func() {}
}
