//go:build unix

// Package procgroup starts a command in a process group of its own and
// ends the whole group, so that what the command spawned (a shell's
// children, a browser's renderers, an emulator's workers) ends with it.
// Where there are no process groups it falls back to the process alone.
package procgroup

import (
	"os"
	"os/exec"
	"syscall"
)

// Own makes cmd, when started, lead a process group of its own.
func Own(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
}

// Kill sends SIGKILL to the group p leads (see Own).
func Kill(p *os.Process) {
	_ = syscall.Kill(-p.Pid, syscall.SIGKILL)
}
