package gateway

import (
	"bufio"
	"errors"
	"io"
	"net"
	"net/http"
	"time"
)

// errFrameTooBig fails the reads of a connection whose client sent a frame
// with a payload over the frame limit.
var errFrameTooBig = errors.New("gateway: inbound frame over the frame size limit")

// Header parsing states of a frameTracker.
const (
	frameStart   = iota // the FIN/RSV/opcode byte
	frameLength         // the mask bit and 7-bit length
	frameExtLen         // the 16- or 64-bit extended length
	frameMaskKey        // the 4-byte masking key
	framePayload        // the payload
)

// frameTracker follows the frames of a WebSocket byte stream (RFC 6455
// §5.2) across arbitrary read boundaries and refuses a frame whose payload
// is over max bytes. gorilla/websocket does not expose frame sizes.
type frameTracker struct {
	max    uint64
	state  int
	masked bool
	need   int    // bytes left in the extended length or masking key
	length uint64 // the current frame's payload length
	left   uint64 // payload bytes left in the current frame
	err    error  // sticky
}

// scan consumes the next bytes of the stream. It returns len(p), nil, or,
// once a frame over the limit is found, the number of bytes before the one
// that completed its length, and errFrameTooBig (then and ever after).
func (t *frameTracker) scan(p []byte) (int, error) {
	if t.err != nil {
		return 0, t.err
	}
	for i := 0; i < len(p); {
		switch t.state {
		case frameStart:
			t.state = frameLength
			i++
		case frameLength:
			b := p[i]
			t.masked = b&0x80 != 0
			switch n := b & 0x7f; n {
			case 126:
				t.state, t.need, t.length = frameExtLen, 2, 0
			case 127:
				t.state, t.need, t.length = frameExtLen, 8, 0
			default:
				t.length = uint64(n)
				if err := t.lengthKnown(); err != nil {
					return i, err
				}
			}
			i++
		case frameExtLen:
			t.length = t.length<<8 | uint64(p[i])
			if t.need--; t.need == 0 {
				if err := t.lengthKnown(); err != nil {
					return i, err
				}
			}
			i++
		case frameMaskKey:
			if t.need--; t.need == 0 {
				t.payload()
			}
			i++
		case framePayload:
			n := uint64(len(p) - i)
			if n >= t.left {
				i += int(t.left)
				t.left = 0
				t.state = frameStart
			} else {
				i = len(p)
				t.left -= n
			}
		}
	}
	return len(p), nil
}

// lengthKnown checks the current frame's payload length and moves on to the
// masking key or the payload.
func (t *frameTracker) lengthKnown() error {
	if t.length > t.max {
		t.err = errFrameTooBig
		return t.err
	}
	if t.masked {
		t.state, t.need = frameMaskKey, 4
		return nil
	}
	t.payload()
	return nil
}

// payload starts the current frame's payload.
func (t *frameTracker) payload() {
	t.left = t.length
	t.state = framePayload
	if t.left == 0 {
		t.state = frameStart
	}
}

// frameConn is a server connection whose inbound frames pass through a
// frameTracker: a read fails with errFrameTooBig at a frame over the limit.
type frameConn struct {
	net.Conn
	t frameTracker
}

func newFrameConn(c net.Conn, maxFrame int) *frameConn {
	return &frameConn{Conn: c, t: frameTracker{max: uint64(maxFrame)}}
}

func (c *frameConn) Read(p []byte) (int, error) {
	if c.t.err != nil {
		return 0, c.t.err
	}
	n, err := c.Conn.Read(p)
	if k, terr := c.t.scan(p[:n]); terr != nil {
		return k, terr
	}
	return n, err
}

// frameTooBig reports whether the client sent a frame over the limit. Call
// it only when nothing is reading the connection.
func (c *frameConn) frameTooBig() bool { return c.t.err != nil }

// linger ends the client's part of the stream once the close frame is sent:
// it closes the write side and discards what the client still sends (the
// rest of the refused frame) until it closes too or for at most d. Without
// it, closing with unread data resets the connection, which may destroy the
// close frame before the client reads it. Call it only when nothing is
// reading the connection.
func (c *frameConn) linger(d time.Duration) {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		_ = cw.CloseWrite()
	}
	_ = c.Conn.SetReadDeadline(time.Now().Add(d))
	_, _ = io.Copy(io.Discard, c.Conn)
}

// frameLimitWriter is the ResponseWriter given to the Upgrader: its Hijack
// returns the connection wrapped in a frameConn, with a reader that reads
// through it, so that every byte after the handshake is tracked.
type frameLimitWriter struct {
	http.ResponseWriter
	maxFrame int
}

func (w frameLimitWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

func (w frameLimitWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	nc, brw, err := http.NewResponseController(w.ResponseWriter).Hijack()
	if err != nil {
		return nil, nil, err
	}
	fc := newFrameConn(nc, w.maxFrame)
	if brw.Reader.Buffered() > 0 {
		// The client sent data before the handshake completed: the
		// Upgrader refuses that and closes the connection.
		return fc, brw, nil
	}
	// A fresh reader of the same size over the tracked connection, in case
	// the Upgrader reuses it (it does when ReadBufferSize is 0). The writer
	// is kept; the Upgrader points it at fc.
	return fc, bufio.NewReadWriter(bufio.NewReaderSize(fc, brw.Reader.Size()), brw.Writer), nil
}
