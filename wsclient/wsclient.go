// Package wsclient is the WebSocket client that `socks listen` and
// `socks demo` use: one reader goroutine, one writer goroutine that owns every
// write, keepalive pings, and a close that happens once.
package wsclient

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/gorilla/websocket"

	"github.com/socks-dev/socks/pubsub"
)

const (
	writeWait = 10 * time.Second
	// PingPeriod is how often the client pings: well inside API Gateway's
	// 10-minute idle timeout.
	PingPeriod = 5 * time.Minute
	pongWait   = PingPeriod + 30*time.Second
	closeGrace = 2 * time.Second
	sendQueue  = 16
)

// Options tune Dial.
type Options struct {
	Header           http.Header
	Subprotocols     []string
	Insecure         bool // skip TLS certificate checks (testing only)
	HandshakeTimeout time.Duration
	// PingPeriod overrides the keepalive interval (tests).
	PingPeriod time.Duration
}

// Frame is one message received from the server.
type Frame struct {
	Binary bool
	Data   []byte
	At     time.Time
}

// HandshakeError is a refused upgrade: the server answered with an HTTP
// status instead of switching protocols.
type HandshakeError struct {
	Status int
	Reason string
}

func (e *HandshakeError) Error() string {
	if e.Reason == "" {
		return fmt.Sprintf("connection refused by the server: HTTP %d %s", e.Status, http.StatusText(e.Status))
	}
	return fmt.Sprintf("connection refused by the server: HTTP %d %s: %s", e.Status, http.StatusText(e.Status), e.Reason)
}

// Conn is a client connection.
type Conn struct {
	ws     *websocket.Conn
	frames chan Frame
	send   chan outgoing
	pongs  chan time.Duration
	done   chan struct{}

	closeOnce sync.Once
	mu        sync.Mutex
	err       error
}

type outgoing struct {
	kind int
	data []byte
}

// ConnectURL builds a connect URL: base plus geek, id and topic parameters.
func ConnectURL(base, geek, id string, topics []string) (string, error) {
	u, err := url.Parse(base)
	if err != nil {
		return "", fmt.Errorf("bad WebSocket URL %q: %w", base, err)
	}
	if u.Scheme != "ws" && u.Scheme != "wss" {
		return "", fmt.Errorf("bad WebSocket URL %q: the scheme must be ws or wss", base)
	}
	q := u.Query()
	if geek != "" {
		q.Set("geek", geek)
	}
	if id != "" {
		q.Set("id", id)
	}
	if len(topics) > 0 {
		q.Set("topic", strings.Join(topics, ","))
	}
	u.RawQuery = q.Encode()
	return u.String(), nil
}

// Dial connects. A refused upgrade returns a *HandshakeError.
func Dial(ctx context.Context, rawURL string, opts Options) (*Conn, error) {
	d := websocket.Dialer{
		Proxy:            http.ProxyFromEnvironment,
		HandshakeTimeout: opts.HandshakeTimeout,
		Subprotocols:     opts.Subprotocols,
		ReadBufferSize:   pubsub.MaxFrameBytes,
		WriteBufferSize:  pubsub.MaxFrameBytes,
	}
	if d.HandshakeTimeout == 0 {
		d.HandshakeTimeout = 15 * time.Second
	}
	if opts.Insecure {
		d.TLSClientConfig = &tls.Config{InsecureSkipVerify: true} //nolint:gosec // --insecure, for testing
	}
	ws, resp, err := d.DialContext(ctx, rawURL, opts.Header)
	if err != nil {
		if resp != nil {
			defer resp.Body.Close()
			b, _ := io.ReadAll(io.LimitReader(resp.Body, 1024))
			return nil, &HandshakeError{Status: resp.StatusCode, Reason: strings.TrimSpace(string(b))}
		}
		return nil, err
	}
	ws.SetReadLimit(pubsub.MaxMessageBytes * 2)
	c := &Conn{
		ws:     ws,
		frames: make(chan Frame, 64),
		send:   make(chan outgoing, sendQueue),
		pongs:  make(chan time.Duration, 4),
		done:   make(chan struct{}),
	}
	period := opts.PingPeriod
	if period <= 0 {
		period = PingPeriod
	}
	go c.readLoop(period)
	go c.writeLoop(period)
	return c, nil
}

// Frames delivers received frames; it is closed when the connection ends.
func (c *Conn) Frames() <-chan Frame { return c.frames }

// Pongs delivers the round-trip time of each keepalive or Ping.
func (c *Conn) Pongs() <-chan time.Duration { return c.pongs }

// Done is closed when the connection has ended.
func (c *Conn) Done() <-chan struct{} { return c.done }

// Err says why the connection ended (a *websocket.CloseError when the server
// closed it), or nil while it is open or after a local Close.
func (c *Conn) Err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.err
}

// Subprotocol is the protocol the server selected.
func (c *Conn) Subprotocol() string { return c.ws.Subprotocol() }

// SendJSON queues v as a text frame.
func (c *Conn) SendJSON(v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return c.SendText(b)
}

// SendText queues a text frame.
func (c *Conn) SendText(b []byte) error { return c.queue(outgoing{websocket.TextMessage, b}) }

// Ping sends a ping now; its round trip arrives on Pongs.
func (c *Conn) Ping() error { return c.queue(outgoing{kind: websocket.PingMessage}) }

func (c *Conn) queue(o outgoing) error {
	select {
	case c.send <- o:
		return nil
	case <-c.done:
		return errors.New("connection closed")
	}
}

func (c *Conn) readLoop(period time.Duration) {
	defer close(c.frames)
	wait := period + period/2 + 30*time.Second
	_ = c.ws.SetReadDeadline(time.Now().Add(wait))
	c.ws.SetPongHandler(func(data string) error {
		_ = c.ws.SetReadDeadline(time.Now().Add(wait))
		if sent, err := time.Parse(time.RFC3339Nano, data); err == nil {
			select {
			case c.pongs <- time.Since(sent):
			default:
			}
		}
		return nil
	})
	for {
		kind, data, err := c.ws.ReadMessage()
		if err != nil {
			c.finish(err)
			return
		}
		_ = c.ws.SetReadDeadline(time.Now().Add(wait))
		select {
		case c.frames <- Frame{Binary: kind == websocket.BinaryMessage, Data: data, At: time.Now()}:
		case <-c.done:
			return
		}
	}
}

func (c *Conn) writeLoop(period time.Duration) {
	ticker := time.NewTicker(period)
	defer ticker.Stop()
	for {
		var o outgoing
		select {
		case <-c.done:
			return
		case <-ticker.C:
			o = outgoing{kind: websocket.PingMessage}
		case o = <-c.send:
		}
		_ = c.ws.SetWriteDeadline(time.Now().Add(writeWait))
		var err error
		if o.kind == websocket.PingMessage {
			err = c.ws.WriteMessage(websocket.PingMessage, []byte(time.Now().Format(time.RFC3339Nano)))
		} else {
			err = c.ws.WriteMessage(o.kind, o.data)
		}
		if err != nil {
			c.finish(err)
			return
		}
	}
}

// finish records why the connection ended and releases everything, once.
func (c *Conn) finish(err error) {
	c.closeOnce.Do(func() {
		c.mu.Lock()
		if err != nil && !errors.Is(err, net.ErrClosed) {
			c.err = err
		}
		c.mu.Unlock()
		close(c.done)
		_ = c.ws.Close()
	})
}

// Close sends a normal close frame, waits briefly for the server's answer,
// then closes the socket. It is safe to call more than once.
func (c *Conn) Close() error {
	select {
	case <-c.done:
		return nil
	default:
	}
	msg := websocket.FormatCloseMessage(websocket.CloseNormalClosure, "bye")
	if err := c.ws.WriteControl(websocket.CloseMessage, msg, time.Now().Add(writeWait)); err != nil {
		c.finish(nil)
		return nil
	}
	select {
	case <-c.done:
	case <-time.After(closeGrace):
		c.finish(nil)
	}
	// A close we asked for is not an error.
	c.mu.Lock()
	var ce *websocket.CloseError
	if errors.As(c.err, &ce) && ce.Code == websocket.CloseNormalClosure {
		c.err = nil
	}
	c.mu.Unlock()
	return nil
}
