//go:build unix

package config

import (
	"syscall"

	"github.com/socks-dev/socks/internal/text"
)

// writable tells whether this user may write the file at path (nil), or
// why not. It asks the kernel (access(2)), as local does for the state
// file: root may write any file, whatever its mode, on a file system
// mounted read-write.
func writable(path string) error {
	const wantWrite = 0x2 // W_OK
	return syscall.Access(path, wantWrite)
}

// makeWritable is the command that lets its owner write the file at path.
func makeWritable(path string) string { return "chmod u+w " + text.ShellWord(path) }
