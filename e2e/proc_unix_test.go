//go:build unix

package e2e

import (
	"os"
	"os/exec"
	"syscall"
)

// inOwnProcessGroup starts cmd in a process group of its own, so that
// killProcessGroup ends what it spawned too (a shell's children,
// chromium's renderers).
func inOwnProcessGroup(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
}

// killProcessGroup sends SIGKILL to the group cmd leads.
func killProcessGroup(cmd *exec.Cmd) {
	_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
}

// interrupt sends SIGINT to pid, as Ctrl-C would.
func interrupt(pid int) {
	_ = syscall.Kill(pid, syscall.SIGINT)
}

// askForStats sends `socks serve` the signal on which it logs its
// runtime figures.
func askForStats(p *os.Process) error { return p.Signal(syscall.SIGUSR1) }
