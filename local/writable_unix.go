//go:build unix

package local

import "syscall"

// writable tells whether this user may write the file at path (nil), or
// why not. It asks the kernel (access(2)) and opens nothing: a file of
// the state file that this process opened and closed again would drop
// every POSIX lock SQLite holds on it in this process (closing any
// descriptor of a file drops them all), and another process could then
// take the file from under it.
func writable(path string) error {
	const wantWrite = 0x2 // W_OK
	return syscall.Access(path, wantWrite)
}
