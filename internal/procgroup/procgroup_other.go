//go:build !unix

// Package procgroup starts a command in a process group of its own and
// ends the whole group, so that what the command spawned (a shell's
// children, a browser's renderers, an emulator's workers) ends with it.
// Where there are no process groups it falls back to the process alone.
package procgroup

import (
	"os"
	"os/exec"
)

// Own does nothing: there are no process groups here.
func Own(*exec.Cmd) {}

// Kill kills p alone.
func Kill(p *os.Process) { _ = p.Kill() }
