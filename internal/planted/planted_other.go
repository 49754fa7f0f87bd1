//go:build !unix

package planted

// Where open has no O_NOFOLLOW (Windows, where a directory's permissions
// are not mode bits, and no FIFO is made in one) nothing is checked.
const (
	noFollow = 0
	NonBlock = 0
	checks   = false
)
