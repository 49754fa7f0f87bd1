//go:build unix

package local

import "syscall"

// notPlanted makes an open of the wake file fail at once, rather than
// follow a symbolic link or wait for a FIFO's reader, when another user
// planted one in a state dir its group may write: a link's target is not
// a file of the user's to write into, and a FIFO no one reads held every
// publish for ever. (O_NONBLOCK changes nothing for a regular file.)
const notPlanted = syscall.O_NOFOLLOW | syscall.O_NONBLOCK
