//go:build !unix

package e2e

import (
	"errors"
	"os"
)

// The end-to-end tests run on Unix (they drive bash and read /proc); these
// stand-ins only keep the package building and vetted elsewhere.

func interrupt(pid int) {
	if p, err := os.FindProcess(pid); err == nil {
		_ = p.Signal(os.Interrupt)
	}
}

// askForStats fails: there is no SIGUSR1, so `socks serve` logs no
// runtime figures on request.
func askForStats(*os.Process) error { return errors.New("no SIGUSR1 on this platform") }

// hangup fails: there is no SIGHUP.
func hangup(*os.Process) error { return errors.New("no SIGHUP on this platform") }
