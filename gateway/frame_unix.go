//go:build unix

package gateway

import (
	"errors"
	"sync"
	"syscall"
)

// rawWrite is one write without waiting; its write method is made once
// per pooled value, so that a write allocates nothing.
type rawWrite struct {
	p   []byte
	n   int
	err error
	fn  func(fd uintptr) bool
}

var rawWrites = sync.Pool{New: func() any {
	w := &rawWrite{}
	w.fn = w.write
	return w
}}

// write writes what the socket takes of w.p; it always reports done, so
// that RawConn.Write never waits.
func (w *rawWrite) write(fd uintptr) bool {
	for w.n < len(w.p) {
		k, err := syscall.Write(int(fd), w.p[w.n:])
		if k > 0 {
			w.n += k
		}
		switch {
		case errors.Is(err, syscall.EINTR):
			continue
		case errors.Is(err, syscall.EAGAIN):
			return true
		case err != nil:
			w.err = err
			return true
		case k <= 0:
			return true
		}
	}
	return true
}

// tryWrite writes what the socket takes of p without waiting.
func (c *frameConn) tryWrite(p []byte) (int, error) {
	if c.raw == nil {
		return 0, nil
	}
	w := rawWrites.Get().(*rawWrite)
	w.p, w.n, w.err = p, 0, nil
	err := c.raw.Write(w.fn)
	n := w.n
	if err == nil {
		err = w.err
	}
	w.p, w.err = nil, nil
	rawWrites.Put(w)
	return n, err
}
