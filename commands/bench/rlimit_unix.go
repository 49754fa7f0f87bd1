//go:build unix

package bench

import "syscall"

// openFileLimit is how many files this process may open (its soft
// RLIMIT_NOFILE, which Go raises to the hard limit at start), and whether
// that is known.
var openFileLimit = func() (uint64, bool) {
	var l syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &l); err != nil {
		return 0, false
	}
	return uint64(l.Cur), true
}
