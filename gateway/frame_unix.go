//go:build unix

package gateway

import (
	"errors"
	"syscall"
)

// tryWrite writes what the socket takes of p without waiting.
func (c *frameConn) tryWrite(p []byte) (int, error) {
	if c.raw == nil {
		return 0, nil
	}
	n := 0
	var werr error
	err := c.raw.Write(func(fd uintptr) bool {
		for n < len(p) {
			k, err := syscall.Write(int(fd), p[n:])
			if k > 0 {
				n += k
			}
			switch {
			case errors.Is(err, syscall.EINTR):
				continue
			case errors.Is(err, syscall.EAGAIN):
				return true
			case err != nil:
				werr = err
				return true
			case k <= 0:
				return true
			}
		}
		return true // done, whatever came of it: never wait
	})
	if err != nil {
		return n, err
	}
	return n, werr
}
