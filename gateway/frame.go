package gateway

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"math"
	"net"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// errFrameTooBig fails the reads of a connection whose client sent a frame
// with a payload over the frame limit.
var errFrameTooBig = errors.New("gateway: inbound frame over the frame size limit")

// errShortClose fails the reads of a connection whose client sent a close
// frame with a payload of 1 byte: RFC 6455 §5.5.1 has a close frame's
// payload start with a 2-byte code when there is one, and gorilla/websocket
// takes a 1-byte one for a close without a code (1005).
var errShortClose = errors.New("gateway: inbound close frame with a 1-byte payload")

// opcodeClose is the close frame's opcode (RFC 6455 §5.2).
const opcodeClose = 0x8

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
// is over max bytes, and a close frame whose payload is 1 byte: both
// checked once per frame, when its length is known. gorilla/websocket does
// not expose frame sizes, and reads a close frame of 1 byte as one without
// a code.
type frameTracker struct {
	max    uint64
	state  int
	masked bool
	first  byte   // the current frame's first byte (FIN, RSV, opcode)
	need   int    // bytes left in the extended length or masking key
	length uint64 // the current frame's payload length
	left   uint64 // payload bytes left in the current frame
	err    error  // sticky
}

// scan consumes the next bytes of the stream. It returns len(p), nil, or,
// once a frame it refuses is found, the number of bytes before the one
// that completed its length, and errFrameTooBig or errShortClose (then and
// ever after).
func (t *frameTracker) scan(p []byte) (int, error) {
	if t.err != nil {
		return 0, t.err
	}
	for i := 0; i < len(p); {
		switch t.state {
		case frameStart:
			t.first = p[i]
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
	if t.length == 1 && t.first&0x0f == opcodeClose {
		t.err = errShortClose
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
// frameTracker (a read fails with errFrameTooBig at a frame over the
// limit, errShortClose at a close frame of 1 byte) and whose writes never block: Write hands the socket what it
// takes at once, and keeps the rest, in order, in a backlog that a flusher
// goroutine writes out. The flusher runs only while there is a backlog,
// and each of its writes is bounded by writeWait; when one fails, the
// connection's writes fail from then on and onWriteError is called.
// gorilla's write deadlines are ignored: nothing it writes can wait.
type frameConn struct {
	net.Conn
	t frameTracker

	// raw writes without waiting; nil when the connection has no file
	// descriptor (every write then goes through the backlog).
	raw          syscall.RawConn
	onWriteError func(error)

	wmu sync.Mutex
	// backlog holds one frame per Write (gorilla writes each frame with
	// one Write), the first maybe only the rest of a frame whose
	// beginning the socket took (then head is set: it cannot be dropped).
	backlog  [][]byte
	head     bool
	queued   int           // bytes in the backlog and in the flusher's hands
	flushing chan struct{} // set while a flusher runs; closed when it ends
	werr     error         // sticky

	// flushed counts the flusher's writes that the socket took: each is
	// the client's progress through its backlog (the socket took bytes
	// only because the client read). The reader compares it with
	// seenFlushed when its deadline passes (see Read); the flusher adds
	// one per chunk, nothing on the path of a message.
	flushed     atomic.Uint64
	seenFlushed uint64
	// readWait is how far a read deadline is put off for a client that
	// drains its backlog (pongWait); 0 puts off none.
	readWait time.Duration
	// readTimedOut, when set (tests), is told the outcome of each read
	// deadline that passed: alive when it was put off.
	readTimedOut func(alive bool)
	// deadline is the read deadline set last, on the monotonic clock
	// since epoch (noDeadline: none), for Read to tell a deadline it
	// notices late.
	deadline atomic.Int64
}

// epoch is what frameConn.deadline counts from.
var epoch = time.Now()

// noDeadline is frameConn.deadline when no read deadline is set.
const noDeadline = math.MinInt64

// stallSlack is how late a read deadline may be noticed before the
// gateway counts itself stopped meanwhile (its timers fire within
// milliseconds of the deadline while it runs, seconds on a busy machine).
const stallSlack = 5 * time.Second

// SetReadDeadline sets the read deadline, noting it for Read.
func (c *frameConn) SetReadDeadline(t time.Time) error {
	d := int64(noDeadline)
	if !t.IsZero() {
		d = int64(t.Sub(epoch))
	}
	c.deadline.Store(d)
	return c.Conn.SetReadDeadline(t)
}

// stalled reports whether the read deadline that passed did so long
// before this process noticed it: the gateway itself did not run (a
// stopped process, a paused VM), sent no pings meanwhile, and so cannot
// blame the client for not answering.
func (c *frameConn) stalled() bool {
	d := c.deadline.Load()
	return d != noDeadline && time.Since(epoch)-time.Duration(d) > stallSlack
}

// flushChunk bounds the bytes the flusher takes from the backlog at once.
const flushChunk = 64 << 10

func newFrameConn(c net.Conn, maxFrame int, onWriteError func(error)) *frameConn {
	fc := &frameConn{Conn: c, t: frameTracker{max: uint64(maxFrame)}, onWriteError: onWriteError}
	fc.deadline.Store(noDeadline)
	if sc, ok := c.(syscall.Conn); ok {
		if raw, err := sc.SyscallConn(); err == nil {
			fc.raw = raw
		}
	}
	return fc
}

func (c *frameConn) Read(p []byte) (int, error) {
	if c.t.err != nil {
		return 0, c.t.err
	}
	n, err := c.Conn.Read(p)
	for n == 0 && c.drained(err) {
		n, err = c.Conn.Read(p)
	}
	if k, terr := c.t.scan(p[:n]); terr != nil {
		return k, terr
	}
	return n, err
}

// drained reports whether a read that failed with err (its deadline
// passed: the client sent nothing, not even the pong of the gateway's
// ping, for pongWait) may read on, because the client has taken bytes of
// its backlog since the last deadline that passed: a client that drains a
// big backlog slowly is alive, though the gateway's pings wait behind it
// and its pongs come late. So may one whose deadline passed while the
// gateway itself did not run (stalled): it was sent no ping to answer,
// and the next one tells. The deadline is then put off by readWait.
func (c *frameConn) drained(err error) bool {
	var ne net.Error
	if c.readWait <= 0 || !errors.As(err, &ne) || !ne.Timeout() {
		return false
	}
	n := c.flushed.Load()
	alive := n != c.seenFlushed || c.stalled()
	c.seenFlushed = n
	if alive {
		alive = c.SetReadDeadline(time.Now().Add(c.readWait)) == nil
	}
	if c.readTimedOut != nil {
		c.readTimedOut(alive)
	}
	return alive
}

// Write writes p, or what the socket does not take at once into the
// backlog; it never waits for the client.
func (c *frameConn) Write(p []byte) (int, error) {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if c.werr != nil {
		return 0, c.werr
	}
	n := 0
	if c.flushing == nil {
		var err error
		if n, err = c.tryWrite(p); err != nil {
			c.werr = err
			return n, err
		}
		if n == len(p) {
			return n, nil
		}
		c.head = n > 0
		c.flushing = make(chan struct{})
		go c.flush(c.flushing)
	}
	c.backlog = append(c.backlog, bytes.Clone(p[n:]))
	c.queued += len(p) - n
	return len(p), nil
}

// SetWriteDeadline does nothing: writes never wait (see frameConn).
func (c *frameConn) SetWriteDeadline(time.Time) error { return nil }

// queuedBytes returns the bytes written but not yet taken by the socket.
func (c *frameConn) queuedBytes() int {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	return c.queued
}

// flush writes the backlog out, a few frames at a time, until it is empty
// or a write fails, then closes done.
func (c *frameConn) flush(done chan struct{}) {
	defer close(done)
	for {
		c.wmu.Lock()
		if len(c.backlog) == 0 || c.werr != nil {
			c.backlog, c.head, c.queued, c.flushing = nil, false, 0, nil
			c.wmu.Unlock()
			return
		}
		k, n := 0, 0
		for k < len(c.backlog) && (k == 0 || n+len(c.backlog[k]) <= flushChunk) {
			n += len(c.backlog[k])
			k++
		}
		bufs := net.Buffers(slices.Clone(c.backlog[:k]))
		c.backlog = slices.Delete(c.backlog, 0, k)
		c.head = false
		c.wmu.Unlock()
		_ = c.Conn.SetWriteDeadline(time.Now().Add(writeWait))
		_, err := bufs.WriteTo(c.Conn)
		// A deadline left behind would fail the next direct write.
		_ = c.Conn.SetWriteDeadline(time.Time{})
		c.wmu.Lock()
		c.queued -= n
		if err != nil {
			c.werr = err
		} else {
			c.flushed.Add(1)
		}
		c.wmu.Unlock()
		if err != nil && c.onWriteError != nil {
			c.onWriteError(err)
		}
	}
}

// discard drops the frames of the backlog that the flusher has not
// started on: a connection that ends does not send what is queued.
func (c *frameConn) discard() {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	keep := 0
	if c.head {
		keep = 1
	}
	for _, b := range c.backlog[keep:] {
		c.queued -= len(b)
	}
	c.backlog = c.backlog[:keep]
}

// waitFlushed waits until the backlog is written out (or its write
// failed), for at most d.
func (c *frameConn) waitFlushed(d time.Duration) {
	c.wmu.Lock()
	done := c.flushing
	c.wmu.Unlock()
	if done == nil {
		return
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-done:
	case <-t.C:
	}
}

// frameRefused reports whether the client sent a frame the tracker refused
// (over the limit, or a close frame of 1 byte), after which its reads
// failed. Call it only when nothing is reading the connection.
func (c *frameConn) frameRefused() bool { return c.t.err != nil }

// linger ends the client's part of the stream once the close frame is sent:
// it closes the write side and discards what the client still sends (the
// rest of the refused frame, and what followed it) until it closes too or for at most d. Without
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
	// onWriteError, readWait and readTimedOut are the frameConn's.
	onWriteError func(error)
	readWait     time.Duration
	readTimedOut func(alive bool)
}

func (w frameLimitWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

func (w frameLimitWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	nc, brw, err := http.NewResponseController(w.ResponseWriter).Hijack()
	if err != nil {
		return nil, nil, err
	}
	fc := newFrameConn(nc, w.maxFrame, w.onWriteError)
	fc.readWait, fc.readTimedOut = w.readWait, w.readTimedOut
	if brw.Reader.Buffered() > 0 {
		// The client sent data before the handshake completed: the
		// Upgrader refuses that and closes the connection.
		return fc, brw, nil
	}
	// The same reader, now over the tracked connection, in case the
	// Upgrader reuses it (it does when ReadBufferSize is 0): net/http
	// hands a hijacked connection's reader over and never uses it again,
	// and it holds nothing, so it is reset onto fc rather than replaced by
	// a fresh 4 KB one (garbage at every connect). The writer is kept; the
	// Upgrader points it at fc.
	brw.Reader.Reset(fc)
	return fc, brw, nil
}
