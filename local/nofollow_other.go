//go:build !unix

package local

// notPlanted is 0 where open has no O_NOFOLLOW (Windows, where a state
// dir's permissions are not mode bits, and no FIFO is made in one).
const notPlanted = 0
