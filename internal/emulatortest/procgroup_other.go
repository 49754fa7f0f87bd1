//go:build !unix

package emulatortest

import (
	"os"
	"os/exec"
)

// ownProcessGroup does nothing where there are no process groups (the
// Lambda emulator runs on Linux only; this keeps the module building).
func ownProcessGroup(*exec.Cmd) {}

// killProcessGroup kills p.
func killProcessGroup(p *os.Process) {
	_ = p.Kill()
}
