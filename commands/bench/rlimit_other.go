//go:build !unix

package bench

// openFileLimit is unknown off Unix.
var openFileLimit = func() (uint64, bool) { return 0, false }
