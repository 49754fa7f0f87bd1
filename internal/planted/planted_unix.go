//go:build unix

package planted

import "syscall"

const (
	noFollow = syscall.O_NOFOLLOW
	// NonBlock makes an open of a FIFO fail or return at once rather
	// than wait for its other end, for a file whose links socks follows
	// (a --keys-file the user names).
	NonBlock = syscall.O_NONBLOCK
	checks   = true
)
