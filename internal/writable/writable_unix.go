//go:build unix

package writable

import (
	"syscall"

	"github.com/socks-dev/socks/internal/text"
)

// Check tells whether this user may write the file at path (nil), or why
// not. It asks the kernel (access(2)) and opens nothing: a file of
// SQLite's that this process opened and closed again would drop every
// POSIX lock SQLite holds on it in this process (closing any descriptor
// of a file drops them all), and another process could then take the
// file from under it. Root may write any file, whatever its mode, on a
// file system mounted read-write.
func Check(path string) error {
	const wantWrite = 0x2 // W_OK
	return syscall.Access(path, wantWrite)
}

// Fix is the command that lets its owner write the file at path.
func Fix(path string) string { return "chmod u+w " + text.ShellWord(path) }
