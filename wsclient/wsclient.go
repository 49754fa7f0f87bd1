// Package wsclient is the WebSocket client that `socks listen` and
// `socks demo` use.
//
// It follows the gorilla/websocket examples: one reader goroutine, one writer
// goroutine that owns every data write through a bounded queue, keepalive
// pings every pingPeriod, a read deadline of pongWait that every pong (and
// every ping from the server, and every frame once the consumer takes it)
// extends, a read limit (and a bound on the handshake's answer), and a
// close that happens once: a close frame via WriteControl, a bounded grace
// for the server's answer, then the socket is closed.
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
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/gorilla/websocket"

	"github.com/socks-dev/socks/internal/loopback"
	"github.com/socks-dev/socks/internal/text"
	"github.com/socks-dev/socks/pubsub"
)

const (
	// writeWait bounds one write (a frame or a control frame).
	writeWait = 10 * time.Second
	// PingPeriod is the default keepalive interval: well inside API
	// Gateway's 10-minute idle timeout.
	PingPeriod = 5 * time.Minute
	// closeGrace is how long Close waits by default for the server to
	// answer its close frame before dropping the connection.
	closeGrace = 2 * time.Second
	// SendQueue is the length of the bounded outbound queue.
	SendQueue = 16
	// frameQueue is how many received frames may wait for the consumer.
	frameQueue = 64
	// DefaultReadLimit is the largest message accepted by default: twice
	// what API Gateway delivers, so that a bigger message is reported
	// rather than silently cut.
	DefaultReadLimit = 2 * pubsub.MaxMessageBytes
	// defaultHandshakeTimeout bounds the opening handshake.
	defaultHandshakeTimeout = 15 * time.Second
	// pingPrefix marks the client's own ping payloads.
	pingPrefix = "socks-ping-"
	// maxUnanswered is how many pings awaiting their pong a connection
	// remembers: a pong to an older one is not timed.
	maxUnanswered = 8
	// maxHandshakeBytes bounds what is read of the answer to the opening
	// handshake: its status line and headers (and the start of a refusal's
	// body); a WebSocket server's are a few hundred bytes.
	maxHandshakeBytes = 1 << 20
)

// Close codes, re-exported so that callers need not import gorilla.
const (
	CloseNormalClosure   = websocket.CloseNormalClosure
	CloseGoingAway       = websocket.CloseGoingAway
	CloseAbnormalClosure = websocket.CloseAbnormalClosure
)

// ErrClosed is returned by the send methods once the connection has ended.
var ErrClosed = errors.New("connection closed")

// ErrSendQueueFull is returned by TrySendText and TrySendJSON when the
// send queue is full: the server takes no more data for now.
var ErrSendQueueFull = fmt.Errorf("the server is not reading: %d frames already wait to be sent", SendQueue)

// Options tune Dial. The zero value is usable.
type Options struct {
	// Header is sent with the opening handshake (not modified).
	Header http.Header
	// Origin, when set, is sent as the Origin header.
	Origin string
	// UserAgent, when set, is sent as the User-Agent header unless Header
	// has one.
	UserAgent    string
	Subprotocols []string
	// Insecure skips TLS certificate checks (testing only).
	Insecure         bool
	HandshakeTimeout time.Duration
	// PingPeriod is the keepalive interval (default PingPeriod).
	PingPeriod time.Duration
	// PongWait is how long the connection may stay silent, not even
	// answering a ping, before it is considered dead (default: one and a
	// half ping periods, at least PingPeriod+5s).
	PongWait time.Duration
	// ReadLimit is the largest message accepted (default DefaultReadLimit);
	// a bigger one ends the connection with 1009.
	ReadLimit int64
	// CloseGrace is how long Close waits for the server's answer to the
	// close frame (default 2s).
	CloseGrace time.Duration
}

func (o Options) pingPeriod() time.Duration {
	if o.PingPeriod > 0 {
		return o.PingPeriod
	}
	return PingPeriod
}

func (o Options) pongWait() time.Duration {
	if o.PongWait > 0 {
		return o.PongWait
	}
	p := o.pingPeriod()
	return max(p+p/2, p+5*time.Second)
}

// Frame is one message received from the server.
type Frame struct {
	Binary bool
	Data   []byte
	At     time.Time
}

// HandshakeError is a refused upgrade: the server answered with an HTTP
// status instead of switching protocols. Reason is the start of the
// response body, as the server sent it (it may hold control characters).
// RetryAfter is the wait its Retry-After header asked for (a gateway
// shutting down sends one with its 503), 0 without one.
type HandshakeError struct {
	Status     int
	Reason     string
	RetryAfter time.Duration
	// ToHTTPS is set when the answer is a redirect to an https:// URL,
	// as an HTTP port in front of a TLS one sends (its Location is not
	// kept: it may repeat the query, and the chatter ID in it).
	ToHTTPS bool
}

// retryAfter reads a Retry-After header: delay-seconds or an HTTP date.
// Anything else, or a time past, is 0.
func retryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	if n, err := strconv.ParseInt(v, 10, 64); err == nil {
		if n <= 0 {
			return 0
		}
		return time.Duration(min(n, int64(24*time.Hour/time.Second))) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil && t.After(now) {
		return t.Sub(now)
	}
	return 0
}

// maxReasonShown bounds what Error shows of a refusal's body: a web page
// (a load balancer's error page) would fill every line that says why.
const maxReasonShown = 300

func (e *HandshakeError) Error() string {
	if e.Status >= 200 && e.Status < 300 {
		// Not a refusal: something answered a page instead of switching.
		return fmt.Sprintf("the server answered HTTP %d %s instead of switching to WebSocket: a captive portal or a proxy?", e.Status, http.StatusText(e.Status))
	}
	if e.Reason == "" {
		return fmt.Sprintf("connection refused by the server: HTTP %d %s", e.Status, http.StatusText(e.Status))
	}
	return fmt.Sprintf("connection refused by the server: HTTP %d %s: %s", e.Status, http.StatusText(e.Status), text.CapBytes(e.Reason, maxReasonShown))
}

// CloseStatus returns the close code and reason of an error that ended a
// connection (Conn.Err), and whether there was one. A connection that broke
// without a close frame reports 1006.
func CloseStatus(err error) (code int, reason string, ok bool) {
	var ce *websocket.CloseError
	if errors.As(err, &ce) {
		if ce.Code == CloseAbnormalClosure {
			// No close frame, so no reason: gorilla's is "unexpected EOF".
			return ce.Code, "the connection broke without a close frame", true
		}
		return ce.Code, ce.Text, true
	}
	return 0, "", false
}

// endError is why a connection ended or a dial failed, in the user's
// words; Unwrap gives the error underneath (errors.Is(err,
// websocket.ErrReadLimit) still holds).
type endError struct {
	msg string
	err error
}

func (e *endError) Error() string { return e.msg }
func (e *endError) Unwrap() error { return e.err }

// HandshakeTimeoutError is a dial whose WebSocket handshake got no answer
// within Bound (Options.HandshakeTimeout). Connected says the TCP
// connection was made: something listens there and took the request, but
// did not finish the upgrade (a gateway that is stuck, such as on a store
// that does not answer, or a paused process), rather than nothing
// answering at all.
type HandshakeTimeoutError struct {
	Bound     time.Duration
	Connected bool
	err       error
}

func (e *HandshakeTimeoutError) Error() string {
	return fmt.Sprintf("no answer to the WebSocket handshake within %s", e.Bound)
}
func (e *HandshakeTimeoutError) Unwrap() error { return e.err }

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// readError says why reading ended: the server closed (CloseStatus tells),
// stayed silent, sent too much, or broke the protocol.
func (c *Conn) readError(err error) error {
	var ce *websocket.CloseError
	var op *net.OpError
	switch {
	case err == nil || errors.As(err, &ce) || errors.Is(err, net.ErrClosed):
		return err
	case errors.Is(err, websocket.ErrReadLimit):
		return &endError{fmt.Sprintf("the server sent a message over %d bytes, the most accepted", c.limit), err}
	case isTimeout(err):
		return &endError{fmt.Sprintf("no answer from the server for %s, not even to pings", c.pongWait), err}
	case errors.As(err, &op):
		return &endError{"the connection broke: " + op.Err.Error(), err}
	}
	// What is left are gorilla's protocol errors ("websocket: bad opcode 3").
	return &endError{"the server broke the WebSocket protocol: " + strings.TrimPrefix(err.Error(), "websocket: "), err}
}

// writeError says why a write failed.
func writeError(err error) error {
	var op *net.OpError
	switch {
	case isTimeout(err):
		return &endError{fmt.Sprintf("the server took no data for %s", writeWait), err}
	case errors.As(err, &op) && !errors.Is(err, net.ErrClosed):
		return &endError{"the connection broke: " + op.Err.Error(), err}
	}
	return err
}

// Conn is a client connection.
type Conn struct {
	ws     *websocket.Conn
	start  time.Time // monotonic origin of ping payloads
	frames chan Frame
	send   chan outgoing
	pongs  chan time.Duration
	done   chan struct{}

	period   time.Duration
	pongWait time.Duration
	grace    time.Duration
	limit    int64 // the read limit
	// lives counts the extensions of the read deadline (tests watch it).
	lives atomic.Int64

	// pinged holds when each ping awaiting its pong was sent (its payload's
	// number), oldest first, the last maxUnanswered of them.
	pingMu sync.Mutex
	pinged []int64

	closeOnce  sync.Once // finish
	closeFrame sync.Once // Close
	closing    atomic.Bool
	mu         sync.Mutex
	err        error
}

type outgoing struct {
	kind int
	data []byte
}

// ConnectURL builds a connect URL: base plus geek, id and topic parameters.
// A refusal names base without its query, which may hold a chatter ID (a
// pasted connect URL).
func ConnectURL(base, geek, id string, topics []string) (string, error) {
	u, err := url.Parse(base)
	if _, pw := maskPassword(base); err != nil && pw {
		// url.Parse's words would quote the password.
		return "", errUserInfo(base)
	}
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // without url.Parse's own echo of base
		}
		return "", fmt.Errorf("bad WebSocket URL %q: %w", withoutQuery(base), err)
	}
	if u.Scheme != "ws" && u.Scheme != "wss" {
		return "", fmt.Errorf("bad WebSocket URL %q: the scheme must be ws or wss", withoutQuery(base))
	}
	if u.Host == "" {
		return "", fmt.Errorf("bad WebSocket URL %q: it has no host", withoutQuery(base))
	}
	if u.User != nil {
		return "", errUserInfo(base)
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

// errUserInfo refuses a URL with a user name or password. The dialer
// refuses them ("malformed ws or wss URL"), as browsers do: a gateway
// behind basic authentication takes a header.
func errUserInfo(base string) error {
	return fmt.Errorf("bad WebSocket URL %q: it may not hold a user name or password; send credentials in an Authorization header", withoutQuery(base))
}

// withoutQuery returns a URL as typed, its password, if any, replaced by
// "xxxxx", and its query and fragment by "?...".
func withoutQuery(raw string) string {
	raw, _ = maskPassword(raw)
	if i := strings.IndexAny(raw, "?#"); i >= 0 {
		raw = raw[:i] + "?..."
	}
	return raw
}

// maskPassword returns a URL as typed with its password replaced by
// "xxxxx", and whether it has one. A URL that does not parse may still
// hold one, with a "?", "#", "/", "%" or space in it that a parse takes
// for another part: then all from "://" to the last "@" is taken for the
// user name and password, and what follows, which may then be part of
// the query, is left out ("@...").
func maskPassword(raw string) (string, bool) {
	if u, err := url.Parse(raw); err == nil {
		if _, ok := u.User.Password(); ok {
			return u.Redacted(), true
		}
		return raw, false
	}
	i := strings.Index(raw, "://")
	j := strings.LastIndex(raw, "@")
	if i < 0 || j < i+3 {
		return raw, false
	}
	name, _, ok := strings.Cut(raw[i+3:j], ":")
	if !ok {
		return raw, false
	}
	return raw[:i+3] + name + ":xxxxx@...", true
}

// Dial connects. A refused upgrade returns a *HandshakeError.
func Dial(ctx context.Context, rawURL string, opts Options) (*Conn, error) {
	d := websocket.Dialer{
		// A proxy would take "localhost." for its own machine.
		Proxy:            loopback.Proxy(http.ProxyFromEnvironment),
		HandshakeTimeout: opts.HandshakeTimeout,
		Subprotocols:     opts.Subprotocols,
		ReadBufferSize:   pubsub.MaxFrameBytes,
		WriteBufferSize:  pubsub.MaxFrameBytes,
	}
	if d.HandshakeTimeout <= 0 {
		d.HandshakeTimeout = defaultHandshakeTimeout
	}
	if opts.Insecure {
		d.TLSClientConfig = &tls.Config{InsecureSkipVerify: true} //nolint:gosec // --insecure, for testing
	}
	header := opts.Header.Clone()
	if header == nil {
		header = http.Header{}
	}
	if opts.Origin != "" {
		header.Set("Origin", opts.Origin)
	}
	if opts.UserAgent != "" && header.Get("User-Agent") == "" {
		header.Set("User-Agent", opts.UserAgent)
	}
	// connected notes that a TCP connection was made, for a handshake
	// that then times out (HandshakeTimeoutError.Connected).
	var connected atomic.Bool
	var nd net.Dialer
	// A URL on "localhost." (this machine, as the gateway judges a
	// Host header) is dialled on localhost: Go would look it up in DNS.
	dial := loopback.Dial(nd.DialContext)
	d.NetDialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := dial(ctx, network, addr)
		if err == nil {
			connected.Store(true)
		}
		return c, err
	}
	ws, resp, err := DialWith(ctx, &d, rawURL, header)
	if err != nil && ctx.Err() != nil {
		// Cancelled (Ctrl-C), whatever the cut connection then said.
		return nil, fmt.Errorf("%w (%v)", ctx.Err(), err)
	}
	if err != nil {
		if errors.Is(err, errHandshakeTooLong) || errors.Is(err, errUnasked) {
			return nil, err
		}
		if resp != nil && resp.StatusCode != http.StatusSwitchingProtocols {
			defer resp.Body.Close()
			b, _ := io.ReadAll(io.LimitReader(resp.Body, 1024))
			return nil, &HandshakeError{Status: resp.StatusCode, Reason: strings.TrimSpace(string(b)),
				RetryAfter: retryAfter(resp.Header.Get("Retry-After"), time.Now()),
				ToHTTPS:    resp.StatusCode/100 == 3 && strings.HasPrefix(strings.ToLower(resp.Header.Get("Location")), "https://")}
		}
		if errors.Is(err, websocket.ErrBadHandshake) {
			// 101, but not as the protocol wants: no WebSocket server, or
			// a proxy in the way.
			return nil, &endError{"the server answered the WebSocket handshake wrongly (is it a WebSocket server? a proxy in the way?)", err}
		}
		if ctx.Err() == nil && (isTimeout(err) || errors.Is(err, context.DeadlineExceeded)) {
			return nil, &HandshakeTimeoutError{Bound: d.HandshakeTimeout, Connected: connected.Load(), err: err}
		}
		return nil, err
	}
	limit := opts.ReadLimit
	if limit <= 0 {
		limit = DefaultReadLimit
	}
	ws.SetReadLimit(limit)
	c := &Conn{
		ws:       ws,
		start:    time.Now(),
		frames:   make(chan Frame, frameQueue),
		send:     make(chan outgoing, SendQueue),
		pongs:    make(chan time.Duration, 4),
		done:     make(chan struct{}),
		period:   opts.pingPeriod(),
		pongWait: opts.pongWait(),
		grace:    opts.CloseGrace,
		limit:    limit,
	}
	if c.grace <= 0 {
		c.grace = closeGrace
	}
	go c.readLoop()
	go c.writeLoop()
	return c, nil
}

// DialWith opens a connection with d (which it does not change) as
// d.DialContext does, guarded as Dial is against what a server it does
// not trust may answer: each connection the handshake reads from (a
// proxy's too) reads at most 1 MB until the handshake is over (the
// dialer keeps every header line it is sent, with no bound), and an
// answer with an extension or a subprotocol the client did not offer is
// refused (RFC 6455 4.1; the dialer takes permessage-deflate unasked,
// whose frames the read limit counts compressed: a deflate bomb of
// hundreds of megabytes in one 256 KB frame). It never offers
// compression. Its errors for those say so in the user's words; the
// others are d.DialContext's, with its answer. d's own NetDialContext,
// if any, dials under the bound; NetDial and NetDialTLSContext must be
// nil. The cost to a connection: a wrapper around its net.Conn whose
// every read loads one atomic flag.
func DialWith(ctx context.Context, d *websocket.Dialer, rawURL string, header http.Header) (*websocket.Conn, *http.Response, error) {
	if d.NetDial != nil || d.NetDialTLSContext != nil {
		return nil, nil, errors.New("wsclient.DialWith: the dialer's NetDial and NetDialTLSContext must be nil (set NetDialContext)")
	}
	dd := *d
	dd.EnableCompression = false
	inner := dd.NetDialContext
	if inner == nil {
		inner = (&net.Dialer{}).DialContext
	}
	// Every connection the handshake reads from (a proxy's too) reads
	// at most maxHandshakeBytes until the handshake is over: the dialer
	// keeps every header line it is sent, with no bound.
	var bounded []*boundedConn
	var mu sync.Mutex
	// cut is set (under mu) once ctx ends the dial: the dialer watches
	// ctx only until the TCP connection is made, so the handshake's
	// connections are then given a deadline in the past.
	var cut bool
	dd.NetDialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := inner(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		bc := &boundedConn{Conn: c, left: maxHandshakeBytes, mu: &mu, cut: &cut}
		mu.Lock()
		bounded = append(bounded, bc)
		if cut {
			_ = c.SetDeadline(longAgo)
		}
		mu.Unlock()
		return bc, nil
	}
	stop := context.AfterFunc(ctx, func() {
		mu.Lock()
		defer mu.Unlock()
		cut = true
		for _, bc := range bounded {
			_ = bc.Conn.SetDeadline(longAgo)
		}
	})
	ws, resp, err := dd.DialContext(ctx, rawURL, header)
	if !stop() && err == nil {
		// ctx ended as the handshake did: the connection may be cut.
		_ = ws.Close()
		ws, err = nil, ctx.Err()
	}
	mu.Lock()
	for _, bc := range bounded {
		bc.open.Store(true)
	}
	mu.Unlock()
	if errors.Is(err, errHandshakeTooLong) {
		return nil, resp, &endError{fmt.Sprintf("the server's answer to the WebSocket handshake ran over %d MB (is it a WebSocket server? a proxy in the way?)", maxHandshakeBytes>>20), err}
	}
	// A 101 gorilla took, or refused for its permessage-deflate in its
	// own words ("invalid compression negotiation"); not one whose
	// accept key is wrong.
	if resp == nil || resp.StatusCode != http.StatusSwitchingProtocols || (err != nil && errors.Is(err, websocket.ErrBadHandshake)) {
		return ws, resp, err
	}
	if what := unasked(resp.Header, dd.Subprotocols, header); what != "" {
		if ws != nil {
			_ = ws.Close()
		}
		return nil, resp, &endError{fmt.Sprintf("the server answered the WebSocket handshake with %s, not asked for (is it a WebSocket server? a proxy in the way?)", text.CapBytes(what, 100)), errUnasked}
	}
	return ws, resp, err
}

// errUnasked is an answer to the handshake with what the client did not
// offer; it is a websocket.ErrBadHandshake.
var errUnasked = fmt.Errorf("an extension or a subprotocol not offered: %w", websocket.ErrBadHandshake)

// unasked names what an answer to the handshake holds that the client did
// not offer (it offers no extension, and the subprotocols given, or those
// of its header's Sec-WebSocket-Protocol): "" when nothing.
func unasked(answer http.Header, subprotocols []string, header http.Header) string {
	if ext := strings.TrimSpace(strings.Join(answer.Values("Sec-WebSocket-Extensions"), ", ")); strings.Trim(ext, ", ") != "" {
		return "the extension " + ext
	}
	// At most one, offered: several lines, or a list, are not one.
	p := strings.TrimSpace(strings.Join(answer.Values("Sec-WebSocket-Protocol"), ", "))
	if p == "" {
		return ""
	}
	offered := slices.Clone(subprotocols)
	for _, v := range header.Values("Sec-WebSocket-Protocol") {
		for t := range strings.SplitSeq(v, ",") {
			offered = append(offered, strings.TrimSpace(t))
		}
	}
	if !slices.Contains(offered, p) {
		return "the subprotocol " + p
	}
	return ""
}

// errHandshakeTooLong is a handshake whose answer ran over
// maxHandshakeBytes.
var errHandshakeTooLong = errors.New("the answer to the handshake is too long")

// boundedConn reads at most left bytes until open is set, once the
// handshake is over.
type boundedConn struct {
	net.Conn
	left int64 // read only by the handshake, before open is set
	open atomic.Bool
	// mu guards *cut, set once the dial's context has ended it: a
	// deadline the dialer sets after (the handshake's) is then one in
	// the past.
	mu  *sync.Mutex
	cut *bool
}

// longAgo is a deadline in the past: it ends what waits on a connection.
var longAgo = time.Unix(1, 0)

func (c *boundedConn) SetDeadline(t time.Time) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if *c.cut {
		t = longAgo
	}
	return c.Conn.SetDeadline(t)
}

func (c *boundedConn) Read(p []byte) (int, error) {
	if c.open.Load() {
		return c.Conn.Read(p)
	}
	if c.left <= 0 {
		return 0, errHandshakeTooLong
	}
	if int64(len(p)) > c.left {
		p = p[:c.left]
	}
	n, err := c.Conn.Read(p)
	c.left -= int64(n)
	return n, err
}

// Frames delivers received frames; it is closed when the connection ends.
func (c *Conn) Frames() <-chan Frame { return c.frames }

// Pongs delivers the round-trip time of each keepalive ping and each Ping,
// timed by the pong that answers it (a pong that answers no ping awaiting
// one, of the last 8 sent, is a sign of life only). Values are dropped
// when nobody reads them.
func (c *Conn) Pongs() <-chan time.Duration { return c.pongs }

// Done is closed when the connection has ended.
func (c *Conn) Done() <-chan struct{} { return c.done }

// Err says why the connection ended: an error CloseStatus understands when
// the server closed it or it broke, nil while it is open or after a local
// Close.
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

// SendText queues a text frame. It blocks while the queue is full, until
// the connection ends.
func (c *Conn) SendText(b []byte) error { return c.queue(outgoing{websocket.TextMessage, b}, true) }

// TrySendJSON queues v as a text frame without waiting: it returns
// ErrSendQueueFull at once when the queue is full (see TrySendText).
func (c *Conn) TrySendJSON(v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return c.TrySendText(b)
}

// TrySendText queues a text frame without waiting: it returns
// ErrSendQueueFull at once when the queue is full, which it stays while a
// server that does not read has the writer wait in a write, up to
// writeWait. The frame is then not queued; those queued before it are
// written in order.
func (c *Conn) TrySendText(b []byte) error {
	return c.queue(outgoing{websocket.TextMessage, b}, false)
}

// Ping sends a ping now; its round trip arrives on Pongs.
func (c *Conn) Ping() error { return c.queue(outgoing{kind: websocket.PingMessage}, true) }

// queue puts o on the send queue, waiting while it is full if wait.
func (c *Conn) queue(o outgoing, wait bool) error {
	select {
	case <-c.done:
		return ErrClosed
	default:
	}
	if !wait {
		select {
		case c.send <- o:
			return nil
		default:
			return ErrSendQueueFull
		}
	}
	select {
	case c.send <- o:
		return nil
	case <-c.done:
		return ErrClosed
	}
}

// alive extends the read deadline: the server showed a sign of life.
func (c *Conn) alive() {
	_ = c.ws.SetReadDeadline(time.Now().Add(c.pongWait))
	c.lives.Add(1)
}

// pinging notes a ping about to be sent and returns its payload's number:
// when it is sent, on the connection's monotonic clock.
func (c *Conn) pinging() int64 {
	sent := int64(time.Since(c.start))
	c.pingMu.Lock()
	defer c.pingMu.Unlock()
	if len(c.pinged) == maxUnanswered {
		c.pinged = slices.Delete(c.pinged, 0, 1)
	}
	c.pinged = append(c.pinged, sent)
	return sent
}

// answered says when the ping that a pong's payload answers was sent, and
// forgets that ping: only a pong with the payload of a ping this
// connection sent, and not yet answered, is timed, not one a server forged
// or replayed (its round trip would be anything, negative even).
func (c *Conn) answered(payload string) (time.Duration, bool) {
	n, ok := strings.CutPrefix(payload, pingPrefix)
	if !ok {
		return 0, false
	}
	c.pingMu.Lock()
	defer c.pingMu.Unlock()
	for i, sent := range c.pinged {
		if strconv.FormatInt(sent, 10) == n {
			c.pinged = slices.Delete(c.pinged, i, i+1)
			return time.Duration(sent), true
		}
	}
	return 0, false
}

func (c *Conn) readLoop() {
	defer close(c.frames)
	c.alive()
	c.ws.SetPongHandler(func(data string) error {
		c.alive()
		if sent, ok := c.answered(data); ok {
			select {
			case c.pongs <- time.Since(c.start) - sent:
			default:
			}
		}
		return nil
	})
	c.ws.SetPingHandler(func(data string) error {
		c.alive()
		err := c.ws.WriteControl(websocket.PongMessage, []byte(data), time.Now().Add(writeWait))
		var ne net.Error
		if err == nil || errors.Is(err, websocket.ErrCloseSent) || errors.As(err, &ne) && ne.Timeout() {
			return nil
		}
		return err
	})
	for {
		kind, data, err := c.ws.ReadMessage()
		if err != nil {
			c.finish(c.readError(err))
			return
		}
		select {
		case c.frames <- Frame{Binary: kind == websocket.BinaryMessage, Data: data, At: time.Now()}:
		case <-c.done:
			return
		}
		// The frame is a sign of life, extended from when the consumer
		// took it: nothing is read while it falls behind (a full pipe,
		// a paused terminal), and that wait is not the server's silence.
		c.alive()
	}
}

func (c *Conn) writeLoop() {
	ticker := time.NewTicker(c.period)
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
			payload := pingPrefix + strconv.FormatInt(c.pinging(), 10)
			err = c.ws.WriteMessage(websocket.PingMessage, []byte(payload))
		} else {
			err = c.ws.WriteMessage(o.kind, o.data)
		}
		if err != nil {
			c.finish(writeError(err))
			return
		}
	}
}

// finish records why the connection ended and releases everything, once.
func (c *Conn) finish(err error) {
	c.closeOnce.Do(func() {
		c.mu.Lock()
		if err != nil && !c.closing.Load() && !errors.Is(err, net.ErrClosed) && !errors.Is(err, websocket.ErrCloseSent) {
			c.err = err
		}
		c.mu.Unlock()
		close(c.done)
		_ = c.ws.Close()
	})
}

// Close sends a normal close frame, waits briefly for the server's answer,
// then closes the socket. It is safe to call more than once and from any
// goroutine.
func (c *Conn) Close() error { return c.CloseWith(websocket.CloseNormalClosure, "bye") }

// CloseWith is Close with a close code and reason.
func (c *Conn) CloseWith(code int, reason string) error {
	c.closeFrame.Do(func() {
		select {
		case <-c.done:
			return
		default:
		}
		c.closing.Store(true)
		msg := websocket.FormatCloseMessage(code, reason)
		if err := c.ws.WriteControl(websocket.CloseMessage, msg, time.Now().Add(writeWait)); err != nil {
			c.finish(nil)
			return
		}
		t := time.NewTimer(c.grace)
		defer t.Stop()
		select {
		case <-c.done:
		case <-t.C:
			c.finish(nil)
		}
	})
	<-c.done
	return nil
}

// InUsersWords says what the server did for the network errors a client
// meets (refused, closed, not HTTP, no TLS or an untrusted certificate on
// wss://, a host name DNS does not know), instead of Go's words for them
// ("dial tcp 127.0.0.1:1: connect: connection refused"); when is when it
// closed the connection ("during the handshake"). Others are kept. The
// error it returns still wraps err.
func InUsersWords(err error, when string) error {
	var he *HandshakeError
	var dns *net.DNSError
	var record tls.RecordHeaderError
	var cert *tls.CertificateVerificationError
	switch {
	case err == nil || errors.As(err, &he):
	case errors.As(err, &dns) && dns.IsNotFound:
		return &wordsError{fmt.Sprintf("no host is named %s (DNS)", dns.Name), err}
	case errors.As(err, &dns):
		return &wordsError{fmt.Sprintf("the host name %s could not be looked up: %s", dns.Name, dns.Err), err}
	case errors.As(err, &record):
		return &wordsError{"the server does not speak TLS, which wss:// asks for", err}
	case errors.As(err, &cert):
		return &wordsError{"the server's TLS certificate is not trusted: " + strings.TrimPrefix(cert.Err.Error(), "x509: "), err}
	case errors.Is(err, syscall.ECONNREFUSED):
		return &wordsError{"nothing listens there (connection refused)", err}
	case errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, syscall.ECONNRESET):
		return &wordsError{"the server closed the connection " + when, err}
	case strings.Contains(err.Error(), "malformed HTTP"):
		return &wordsError{"the server did not answer in HTTP: is it a WebSocket endpoint?", err}
	}
	return err
}

type wordsError struct {
	msg string
	err error
}

func (e *wordsError) Error() string { return e.msg }
func (e *wordsError) Unwrap() error { return e.err }
