//go:build !unix

package local

// noFollow is 0 where open has no O_NOFOLLOW (Windows, where a state
// dir's permissions are not mode bits).
const noFollow = 0
