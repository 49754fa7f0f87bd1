//go:build unix

package local

import "syscall"

// noFollow makes an open fail on a symbolic link instead of following it:
// a link another user planted in a state dir its group may write is not
// a file of the user's to write into.
const noFollow = syscall.O_NOFOLLOW
