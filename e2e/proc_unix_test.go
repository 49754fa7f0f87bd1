//go:build unix

package e2e

import (
	"os"
	"syscall"
)

// interrupt sends SIGINT to pid, as Ctrl-C would.
func interrupt(pid int) {
	_ = syscall.Kill(pid, syscall.SIGINT)
}

// askForStats sends `socks serve` the signal on which it logs its
// runtime figures.
func askForStats(p *os.Process) error { return p.Signal(syscall.SIGUSR1) }

// hangup sends SIGHUP, as a terminal window that is closed does.
func hangup(p *os.Process) error { return p.Signal(syscall.SIGHUP) }
