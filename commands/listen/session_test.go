package listen

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/gorilla/websocket"

	"github.com/socks-dev/socks/commands/cmdutil"
	"github.com/socks-dev/socks/internal/lockedbuf"
	"github.com/socks-dev/socks/iostreams"
	"github.com/socks-dev/socks/wsclient"
)

// wait bounds every wait in these tests.
const wait = 5 * time.Second

// fakeConn is a connection the test drives.
type fakeConn struct {
	url string
	// protocols are the subprotocols the dial offered.
	protocols []string
	frames    chan wsclient.Frame
	pongs     chan time.Duration
	sent      chan string

	mu     sync.Mutex
	ended  bool
	err    error
	closed bool // by the listener
	full   bool // TrySendJSON finds the send queue full
}

func newFakeConn(u string) *fakeConn {
	return &fakeConn{url: u, frames: make(chan wsclient.Frame, 16), pongs: make(chan time.Duration, 4), sent: make(chan string, 16)}
}

// presented is the chatter ID the dial presented: offered as a
// subprotocol next to "socks", or in the URL's ?id=.
func (c *fakeConn) presented(t *testing.T) string {
	t.Helper()
	if len(c.protocols) >= 2 && c.protocols[0] == "socks" {
		return c.protocols[1]
	}
	p, err := url.Parse(c.url)
	if err != nil {
		t.Fatal(err)
	}
	return p.Query().Get("id")
}

func (c *fakeConn) Frames() <-chan wsclient.Frame { return c.frames }
func (c *fakeConn) Pongs() <-chan time.Duration   { return c.pongs }
func (c *fakeConn) Err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.err
}
func (c *fakeConn) TrySendJSON(v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	c.mu.Lock()
	full := c.full
	c.mu.Unlock()
	if full {
		return wsclient.ErrSendQueueFull
	}
	c.sent <- string(b)
	return nil
}

// setFull makes the connection's send queue full (a server that does not
// read), or not.
func (c *fakeConn) setFull(full bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.full = full
}
func (c *fakeConn) Close() error {
	c.mu.Lock()
	c.closed = true
	c.mu.Unlock()
	c.end(nil)
	return nil
}

// end ends the connection as the server or the network would.
func (c *fakeConn) end(err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.ended {
		return
	}
	c.ended, c.err = true, err
	close(c.frames)
}

// pushAt delivers a text frame received at at.
func (c *fakeConn) pushAt(t *testing.T, data string, at time.Time) {
	t.Helper()
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.ended {
		t.Fatalf("push %s to an ended connection", data)
	}
	c.frames <- wsclient.Frame{Data: []byte(data), At: at}
}

// push delivers a text frame.
func (c *fakeConn) push(t *testing.T, data string) {
	t.Helper()
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.ended {
		t.Fatalf("push %s to an ended connection", data)
	}
	c.frames <- wsclient.Frame{Data: []byte(data), At: time.Now()}
}

func (c *fakeConn) wasClosed() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.closed
}

func (c *fakeConn) topics() string {
	u, _ := url.Parse(c.url)
	return u.Query().Get("topic")
}

// nextSent is the next frame the listener sent.
func (c *fakeConn) nextSent(t *testing.T) string {
	t.Helper()
	select {
	case s := <-c.sent:
		return s
	case <-time.After(wait):
		t.Fatalf("the listener sent nothing within %s", wait)
	}
	return ""
}

// fakeDialer answers each dial with the next scripted error (nil: a new
// fakeConn, handed to the test on conns).
type fakeDialer struct {
	mu      sync.Mutex
	script  []error
	forever error // after the script
	urls    []string
	conns   chan *fakeConn
	made    []*fakeConn
	// hook, when set, runs in dial with the dial's number (0 first) and
	// the connections made so far, before the new one is handed over.
	hook func(n int, made []*fakeConn)
}

func newFakeDialer(script ...error) *fakeDialer {
	return &fakeDialer{script: script, conns: make(chan *fakeConn, 16)}
}

func (d *fakeDialer) dial(ctx context.Context, u string, o wsclient.Options) (Conn, error) {
	d.mu.Lock()
	n := len(d.urls)
	d.urls = append(d.urls, u)
	err := d.forever
	if n < len(d.script) {
		err = d.script[n]
	}
	d.mu.Unlock()
	if err != nil {
		return nil, err
	}
	c := newFakeConn(u)
	c.protocols = slices.Clone(o.Subprotocols)
	d.mu.Lock()
	d.made = append(d.made, c)
	made, hook := slices.Clone(d.made), d.hook
	d.mu.Unlock()
	if hook != nil {
		hook(n, made)
	}
	d.conns <- c
	return c, nil
}

func (d *fakeDialer) dials() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return len(d.urls)
}

func (d *fakeDialer) next(t *testing.T) *fakeConn {
	t.Helper()
	select {
	case c := <-d.conns:
		return c
	case <-time.After(wait):
		t.Fatalf("the listener did not connect within %s (%d dials)", wait, d.dials())
	}
	return nil
}

// run is one listenRun in the background.
type run struct {
	t      *testing.T
	d      *fakeDialer
	opts   *Options
	out    *lockedbuf.Buffer
	errOut *lockedbuf.Buffer
	stdin  *io.PipeWriter
	typed  chan string
	cancel context.CancelFunc
	done   chan error
}

// start runs the listener with --json (unless tune changes it) against d.
func start(t *testing.T, d *fakeDialer, tune func(*Options)) *run {
	t.Helper()
	ios, _, _, _ := iostreams.Test()
	out, errOut := &lockedbuf.Buffer{}, &lockedbuf.Buffer{}
	pr, pw := io.Pipe()
	ios.In, ios.Out, ios.ErrOut = pr, out, errOut
	opts := &Options{
		IO: ios, Now: func() time.Time { return at }, Dial: d.dial,
		Backoff: Backoff{Min: time.Millisecond, Max: 2 * time.Millisecond},
		Geek:    "alice", Topics: []string{"updates"}, URL: "ws://127.0.0.1:1/", ID: "s3cret",
		JSON: true, MaxRetries: DefaultMaxRetries, MaxConnection: time.Hour, PingInterval: time.Minute,
		loc: time.UTC,
	}
	if tune != nil {
		tune(opts)
	}
	ctx, cancel := context.WithCancel(t.Context())
	r := &run{t: t, d: d, opts: opts, out: out, errOut: errOut, stdin: pw, typed: make(chan string, 16), cancel: cancel, done: make(chan error, 1)}
	go func() { r.done <- listenRun(ctx, opts) }()
	go func() {
		for s := range r.typed {
			if _, err := io.WriteString(pw, s+"\n"); err != nil {
				return
			}
		}
	}()
	t.Cleanup(func() {
		cancel()
		pw.Close()
		close(r.typed)
		select {
		case <-r.done:
		case <-time.After(wait):
			t.Errorf("the listener did not stop within %s", wait)
		}
	})
	return r
}

// typeLine types s on standard input (in order, without blocking the test).
func (r *run) typeLine(s string) {
	r.t.Helper()
	r.typed <- s
}

// end waits for listenRun's result.
func (r *run) end() error {
	r.t.Helper()
	select {
	case err := <-r.done:
		r.done <- err // for Cleanup
		return err
	case <-time.After(wait):
		r.t.Fatalf("the listener did not exit within %s\nstdout:\n%s\nstderr:\n%s", wait, r.out, r.errOut)
	}
	return nil
}

// lines are the JSON lines on stdout.
func (r *run) lines() []map[string]any {
	var out []map[string]any
	for _, s := range strings.Split(strings.TrimSpace(r.out.String()), "\n") {
		if s == "" {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(s), &m); err != nil {
			r.t.Fatalf("stdout line %q is not JSON: %v", s, err)
		}
		out = append(out, m)
	}
	return out
}

// waitFor waits until a stdout line has every given field value.
func (r *run) waitFor(fields map[string]any) map[string]any {
	r.t.Helper()
	deadline := time.Now().Add(wait)
	for time.Now().Before(deadline) {
		for _, l := range r.lines() {
			if matches(l, fields) {
				return l
			}
		}
		time.Sleep(2 * time.Millisecond)
	}
	r.t.Fatalf("no line with %v within %s; stdout:\n%s\nstderr:\n%s", fields, wait, r.out, r.errOut)
	return nil
}

func (r *run) count(fields map[string]any) int {
	n := 0
	for _, l := range r.lines() {
		if matches(l, fields) {
			n++
		}
	}
	return n
}

func matches(l, fields map[string]any) bool {
	for k, v := range fields {
		got, _ := json.Marshal(l[k])
		want, _ := json.Marshal(v)
		if string(got) != string(want) {
			return false
		}
	}
	return true
}

func exitCode(err error) int {
	var ee *cmdutil.ExitCodeError
	if errors.As(err, &ee) {
		return ee.Code
	}
	if err != nil {
		return 1
	}
	return 0
}

var goingAway = &websocket.CloseError{Code: 1001, Text: "Going away"}

func TestMessagesAreShownWithTheOneTopicFollowed(t *testing.T) {
	d := newFakeDialer()
	r := start(t, d, nil)
	c := d.next(t)
	r.waitFor(map[string]any{"kind": "state", "state": "connected", "url": "ws://127.0.0.1:1/", "geek": "alice", "topics": []string{"updates"}})
	c.push(t, `{"n":1}`)
	c.push(t, `{"topic":"own","n":2}`)
	c.push(t, `plain`)
	r.waitFor(map[string]any{"kind": "message", "topic": "updates", "body": map[string]any{"n": 1}})
	r.waitFor(map[string]any{"kind": "message", "topic": "own"})
	r.waitFor(map[string]any{"kind": "message", "text": "plain"})
	if q, _ := url.Parse(c.url); q.Query().Get("geek") != "alice" || q.Query().Get("topic") != "updates" {
		t.Errorf("connect URL %s", c.url)
	}
	if id := c.presented(t); id != "s3cret" {
		t.Errorf("presented chatter ID %q; want --id", id)
	}
}

// TestTheChatterIDTravelsInTheSubprotocolNotTheURL: listen presents its
// chatter ID as a WebSocket subprotocol next to "socks", as the README
// tells browsers to (header mode), so that no access log of a proxy, load
// balancer or CDN records it in the URL; --id-in query puts it in ?id=
// for a path that drops the header. Subprotocols given with --subprotocol
// follow. Before, listen always sent it in the query string.
func TestTheChatterIDTravelsInTheSubprotocolNotTheURL(t *testing.T) {
	for _, tc := range []struct {
		name      string
		idIn      string
		offered   []string
		protocols []string
		inURL     bool
	}{
		{"by default", "", nil, []string{"socks", "s3cret"}, false},
		{"--id-in header", IDInHeader, nil, []string{"socks", "s3cret"}, false},
		{"--id-in header with --subprotocol", IDInHeader, []string{"chat"}, []string{"socks", "s3cret", "chat"}, false},
		{"--id-in query", IDInQuery, nil, nil, true},
		{"--id-in query with --subprotocol", IDInQuery, []string{"chat"}, []string{"chat"}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := newFakeDialer()
			start(t, d, func(o *Options) { o.IDIn, o.Subprotocols = tc.idIn, tc.offered })
			c := d.next(t)
			q, err := url.Parse(c.url)
			if err != nil {
				t.Fatal(err)
			}
			if got := q.Query().Get("id"); (got == "s3cret") != tc.inURL || (got != "" && got != "s3cret") {
				t.Errorf("connect URL %s: ?id=%q; want the chatter ID there: %v", c.url, got, tc.inURL)
			}
			if !slices.Equal(c.protocols, tc.protocols) {
				t.Errorf("offered subprotocols %q; want %q", c.protocols, tc.protocols)
			}
			if q.Query().Get("geek") != "alice" || q.Query().Get("topic") != "updates" {
				t.Errorf("connect URL %s; want the geek and topics in it still", c.url)
			}
		})
	}
}

func TestReconnectKeepsTypedSubscriptions(t *testing.T) {
	refused := errors.New("dial tcp 127.0.0.1:1: connect: connection refused")
	d := newFakeDialer(nil, refused, nil)
	r := start(t, d, nil)
	c1 := d.next(t)
	r.typeLine("subscribe news")
	if got := c1.nextSent(t); got != `{"action":"subscribe","topics":["news"]}` {
		t.Fatalf("sent %s", got)
	}
	c1.push(t, `{"type":"subscribed","topics":["news","updates"]}`)
	r.waitFor(map[string]any{"kind": "reply", "body": map[string]any{"type": "subscribed", "topics": []string{"news", "updates"}}})

	c1.end(goingAway)
	r.waitFor(map[string]any{"kind": "state", "state": "disconnected", "code": 1001, "reason": "Going away"})
	r.waitFor(map[string]any{"kind": "state", "state": "reconnecting", "attempt": 1, "maxAttempts": 10})
	r.waitFor(map[string]any{"kind": "state", "state": "reconnecting", "attempt": 2, "error": "ws://127.0.0.1:1/: " + refused.Error()})
	c3 := d.next(t)
	// In the order asked for, not the reply's (see
	// TestTheNextConnectionFollowsWhatWasTypedNotAReplysList).
	if c3.topics() != "updates,news" {
		t.Errorf("the new connection follows %q; want updates,news", c3.topics())
	}
	r.waitFor(map[string]any{"kind": "state", "state": "connected", "topics": []string{"updates", "news"}})
	c3.push(t, `{"n":3}`)
	r.waitFor(map[string]any{"kind": "message", "body": map[string]any{"n": 3}})
	if n := r.count(map[string]any{"kind": "message"}); n != 1 {
		t.Errorf("%d message lines; want 1 (a reply is not a message)", n)
	}
	r.cancel()
	if err := r.end(); err != nil {
		t.Errorf("Ctrl-C: %v; want a clean exit", err)
	}
	if !c3.wasClosed() {
		t.Error("Ctrl-C did not close the connection")
	}
	r.waitFor(map[string]any{"kind": "state", "state": "closed", "code": 1000, "reason": "interrupted"})
}

func TestAnUnansweredSubscribeIsKeptAcrossADrop(t *testing.T) {
	d := newFakeDialer()
	r := start(t, d, nil)
	c1 := d.next(t)
	r.typeLine("sub jobs, news")
	c1.nextSent(t)
	c1.end(errors.New("read: connection reset by peer"))
	r.waitFor(map[string]any{"kind": "state", "state": "disconnected", "error": "read: connection reset by peer"})
	if c2 := d.next(t); c2.topics() != "updates,jobs,news" {
		t.Errorf("the new connection follows %q; want updates,jobs,news", c2.topics())
	}
}

func TestTypingWhileDisconnectedChangesTheNextConnection(t *testing.T) {
	d := newFakeDialer()
	d.script = []error{nil}
	d.forever = errors.New("refused")
	r := start(t, d, func(o *Options) { o.Backoff = Backoff{Min: 50 * time.Millisecond, Max: 50 * time.Millisecond} })
	c1 := d.next(t)
	c1.end(goingAway)
	r.waitFor(map[string]any{"state": "disconnected"})
	r.typeLine("subscribe later")
	deadline := time.Now().Add(wait)
	for !strings.Contains(r.errOut.String(), "the next connection will follow updates, later") && time.Now().Before(deadline) {
		time.Sleep(2 * time.Millisecond)
	}
	if !strings.Contains(r.errOut.String(), "the next connection will follow updates, later") {
		t.Fatalf("stderr %q", r.errOut)
	}
	d.mu.Lock()
	d.forever = nil
	d.mu.Unlock()
	if c := d.next(t); c.topics() != "updates,later" {
		t.Errorf("the next connection follows %q; want updates,later", c.topics())
	}
}

func TestGivesUpAfterMaxRetriesFailedReconnects(t *testing.T) {
	d := newFakeDialer(nil)
	d.forever = errors.New("connect: connection refused")
	r := start(t, d, func(o *Options) { o.MaxRetries = 3 })
	d.next(t).end(goingAway)
	err := r.end()
	if exitCode(err) != 1 || !strings.Contains(err.Error(), "gave up after 3 failed reconnects") {
		t.Errorf("err %v; want gave up after 3", err)
	}
	if n := d.dials(); n != 4 {
		t.Errorf("%d dials; want the first and 3 retries", n)
	}
}

func TestAGatewayThatDropsEachConnectionAtOnceUsesUpTheRetries(t *testing.T) {
	// It accepts every upgrade and closes at once: each reconnect
	// "succeeded", so --max-retries was never reached and listen
	// reconnected forever, showing "attempt 1 of 3" each time.
	d := newFakeDialer()
	r := start(t, d, func(o *Options) { o.MaxRetries = 3 })
	d.next(t).end(goingAway) // the first connection: not a reconnect
	for attempt := 1; attempt <= 3; attempt++ {
		r.waitFor(map[string]any{"state": "reconnecting", "attempt": attempt, "maxAttempts": 3})
		d.next(t).end(goingAway)
	}
	err := r.end()
	if exitCode(err) != 1 || !strings.Contains(err.Error(), "gave up after 3 failed reconnects in a row") || !strings.Contains(err.Error(), "1001 Going away") {
		t.Errorf("err %v; want gave up after 3, with the last close", err)
	}
	if n := d.dials(); n != 4 {
		t.Errorf("%d dials; want the first and 3 retries", n)
	}
}

func TestARefusedReconnectExitsFiveAtOnce(t *testing.T) {
	d := newFakeDialer(nil, &wsclient.HandshakeError{Status: 403, Reason: "chatter ID expired: issue a new one"})
	r := start(t, d, nil)
	d.next(t).end(goingAway)
	err := r.end()
	if exitCode(err) != cmdutil.ExitRefused {
		t.Fatalf("err %v; want exit 5", err)
	}
	for _, want := range []string{"HTTP 403 Forbidden", "chatter ID expired", "socks chatter issue --geek alice"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
	if n := d.dials(); n != 2 {
		t.Errorf("%d dials; a refusal must not be retried", n)
	}
}

func TestServerErrorsAtTheHandshakeAreRetried(t *testing.T) {
	d := newFakeDialer(nil, &wsclient.HandshakeError{Status: 503}, nil)
	r := start(t, d, nil)
	d.next(t).end(goingAway)
	d.next(t)
	r.waitFor(map[string]any{"state": "reconnecting", "attempt": 2})
}

// TestAReconnectRefusedOtherwiseIsRetried: after a connection was open, a
// reconnect refused with a status that says nothing about the chatter ID
// (a captive portal's 200, a 404 while the API is redeployed, a proxy's
// 400) ended listen with exit 1 and a hint meant for a first connection
// ("check --url"). It is retried with the usual backoff, saying the status
// on its reconnecting line, and counts against --max-retries.
func TestAReconnectRefusedOtherwiseIsRetried(t *testing.T) {
	for _, he := range []*wsclient.HandshakeError{
		{Status: 200, Reason: "<html>Sign in to the hotel Wi-Fi</html>"},
		{Status: 404},
		{Status: 400, Reason: "Bad Request"},
		{Status: 302},
	} {
		status := fmt.Sprintf("HTTP %d %s", he.Status, http.StatusText(he.Status))
		t.Run("a "+status+" is retried until the gateway takes it again", func(t *testing.T) {
			d := newFakeDialer(nil, he, he, nil)
			r := start(t, d, func(o *Options) { o.MaxRetries = 3 })
			d.next(t).end(goingAway)
			for attempt := 1; attempt <= 2; attempt++ {
				l := r.waitFor(map[string]any{"state": "reconnecting", "attempt": attempt + 1})
				if e, _ := l["error"].(string); !strings.Contains(e, status) {
					t.Errorf("reconnecting line %v does not say %q", l, status)
				}
			}
			d.next(t).push(t, `{"n":1}`)
			r.waitFor(map[string]any{"kind": "message", "body": map[string]any{"n": 1}})
			if n := r.count(map[string]any{"state": "connected"}); n != 2 {
				t.Errorf("%d connected lines; want 2", n)
			}
		})
		t.Run("a "+status+" uses up --max-retries", func(t *testing.T) {
			d := newFakeDialer(nil)
			d.forever = he
			r := start(t, d, func(o *Options) { o.MaxRetries = 2 })
			d.next(t).end(goingAway)
			err := r.end()
			if exitCode(err) != 1 || !strings.Contains(err.Error(), "gave up after 2 failed reconnects") || !strings.Contains(err.Error(), status) {
				t.Errorf("err %v; want gave up after 2, saying %s", err, status)
			}
			if n := d.dials(); n != 3 {
				t.Errorf("%d dials; want the first and 2 retries", n)
			}
		})
		t.Run("a renewal refused with "+status+" is tried again, the connection kept", func(t *testing.T) {
			d := newFakeDialer(nil, he)
			var renewNow func(*testing.T) time.Duration
			r := start(t, d, func(o *Options) { renewNow = renewWhenTold(o) })
			first := d.next(t)
			renewNow(t)
			l := r.waitFor(map[string]any{"state": "renewing", "error": fmt.Sprintf("failed, trying again in %s: ws://127.0.0.1:1/: %v", renewRetry, he)})
			if first.wasClosed() {
				t.Errorf("the open connection was closed after %v", l)
			}
		})
	}
}

func TestTheFirstConnectionIsNotRetried(t *testing.T) {
	for _, tc := range []struct {
		name string
		err  error
		code int
		want []string
	}{
		{"a network error exits 1", errors.New("connect: connection refused"), 1, []string{"cannot connect to ws://127.0.0.1:1/", "connection refused"}},
		// As the dialer returns it: Go's "dial tcp 127.0.0.1:1: connect:"
		// was the whole message.
		{"a refused TCP connect says nothing listens there", &net.OpError{Op: "dial", Net: "tcp", Err: &os.SyscallError{Syscall: "connect", Err: syscall.ECONNREFUSED}},
			1, []string{"cannot connect to ws://127.0.0.1:1/: nothing listens there (connection refused)", "is the gateway running"}},
		{"a connection closed in the handshake says so", io.ErrUnexpectedEOF, 1, []string{"the server closed the connection during the handshake"}},
		// The ID went in Sec-WebSocket-Protocol (the default): a gateway
		// that saw none had it dropped on the way.
		{"a 401 exits 5 with a hint", &wsclient.HandshakeError{Status: 401, Reason: "missing chatter ID"}, 5, []string{"HTTP 401 Unauthorized: missing chatter ID", "Sec-WebSocket-Protocol", "--id-in query"}},
		{"a 401 for the geek exits 5 with a hint", &wsclient.HandshakeError{Status: 401, Reason: "missing geek"}, 5, []string{"HTTP 401 Unauthorized: missing geek", "pass --id"}},
		{"a 403 control character in the reason is escaped", &wsclient.HandshakeError{Status: 403, Reason: "no\x1b[2J"}, 5, []string{`no\x1b[2J`}},
		{"a 404 exits 1 with a hint", &wsclient.HandshakeError{Status: 404}, 1, []string{"HTTP 404", "stage path"}},
		{"a 503 exits 1", &wsclient.HandshakeError{Status: 503}, 1, []string{"HTTP 503"}},
		// A gateway that answered runs: the hint is its status's.
		{"a 503 with a reason says the gateway runs", &wsclient.HandshakeError{Status: 503, Reason: "the server cannot record the connection now"},
			1, []string{"HTTP 503 Service Unavailable: the server cannot record the connection now", "the gateway runs but could not take the connection"}},
		{"a 500 says the gateway runs", &wsclient.HandshakeError{Status: 500}, 1, []string{"HTTP 500 Internal Server Error", "the gateway runs"}},
		// A proxy's error page: its start, not a kilobyte of markup.
		{"a long reason is cut", &wsclient.HandshakeError{Status: 502, Reason: strings.Repeat("é", 1000)}, 1, []string{strings.Repeat("é", 150) + "…", "the gateway runs"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := newFakeDialer(tc.err)
			r := start(t, d, nil)
			err := r.end()
			if exitCode(err) != tc.code {
				t.Fatalf("err %v; want exit %d", err, tc.code)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not say %q", err, w)
				}
			}
			if _, ok := tc.err.(*wsclient.HandshakeError); ok && strings.Contains(err.Error(), "is the gateway running") {
				t.Errorf("error %q asks whether the gateway runs, though it answered", err)
			}
			if strings.Contains(err.Error(), "dial tcp") {
				t.Errorf("error %q speaks Go's words", err)
			}
			if strings.ContainsRune(err.Error(), '\x1b') {
				t.Errorf("error %q has a raw escape", err)
			}
			if d.dials() != 1 || r.out.String() != "" {
				t.Errorf("%d dials, stdout %q; want one dial and nothing printed", d.dials(), r.out)
			}
		})
	}
}

// renewWhenTold has the listener renew its connection each time the test
// calls the function it returns, instead of --max-connection after the
// connection opened (or renewRetry after a failed renewal) by the clock: a
// wait a loaded machine can outlast before the test has done what it meant
// to do on the connection. renewNow returns the wait the listener asked
// for before the renewal it took.
func renewWhenTold(o *Options) (renewNow func(t *testing.T) time.Duration) {
	asked := make(chan time.Duration, 16)
	renew := make(chan time.Time)
	o.renewAfter = func(d time.Duration) <-chan time.Time {
		asked <- d
		return renew
	}
	return func(t *testing.T) time.Duration {
		t.Helper()
		var d time.Duration
		select {
		case d = <-asked:
		case <-time.After(wait):
			t.Fatalf("the listener did not wait for a renewal within %s", wait)
		}
		select {
		case renew <- time.Now():
		case <-time.After(wait):
			t.Fatalf("the listener did not take the renewal within %s", wait)
		}
		return d
	}
}

// TestAFailedRenewalIsTriedAgainWhenItsWaitEnds: a renewal whose new
// connection fails keeps the open one and tries again after renewRetry
// (or a gateway's longer Retry-After). That wait went by the wall clock
// (time.After) while the renewal's own went through the renewAfter hook;
// both go through it now, so the retry happens when the test says and
// the wait asked for is checked, not timed.
func TestAFailedRenewalIsTriedAgainWhenItsWaitEnds(t *testing.T) {
	for _, tc := range []struct {
		name string
		err  error
		want time.Duration
	}{
		{"a network error is tried again after renewRetry", errors.New("connect: connection reset by peer"), renewRetry},
		{"a 503 is tried again after renewRetry", &wsclient.HandshakeError{Status: 503}, renewRetry},
		{"a 503 with Retry-After: 30 is tried again after 30 s", &wsclient.HandshakeError{Status: 503, RetryAfter: 30 * time.Second}, 30 * time.Second},
		{"a 429 with a short Retry-After is tried again after renewRetry", &wsclient.HandshakeError{Status: 429, RetryAfter: time.Second}, renewRetry},
		{"a 429 with Retry-After: 3600 is tried again after maxRetryAfter", &wsclient.HandshakeError{Status: 429, RetryAfter: time.Hour}, maxRetryAfter},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := newFakeDialer(nil, tc.err)
			var renewNow func(*testing.T) time.Duration
			r := start(t, d, func(o *Options) { renewNow = renewWhenTold(o) })
			c1 := d.next(t)
			if got := renewNow(t); got != time.Hour {
				t.Errorf("the first renewal waited %s; want --max-connection, 1h0m0s", got)
			}
			r.waitFor(map[string]any{"state": "renewing", "error": fmt.Sprintf("failed, trying again in %s: ws://127.0.0.1:1/: %v", tc.want, tc.err)})
			// The listener now waits for the hook: nothing more is dialled
			// and the open connection stays open until the test renews.
			if n := d.dials(); n != 2 {
				t.Errorf("%d dials before the retry; want the first and the failed renewal", n)
			}
			if c1.wasClosed() {
				t.Error("the open connection was closed by the failed renewal")
			}
			if got := renewNow(t); got != tc.want {
				t.Errorf("the retry waited %s; want %s", got, tc.want)
			}
			c2 := d.next(t)
			c2.push(t, `{"n":1}`)
			r.waitFor(map[string]any{"kind": "message", "body": map[string]any{"n": 1}})
			if n := r.count(map[string]any{"state": "disconnected"}); n != 0 {
				t.Errorf("%d disconnected lines; a renewal, failed or not, is no drop", n)
			}
		})
	}
}

func TestRenewOpensTheNewConnectionBeforeClosingTheOld(t *testing.T) {
	d := newFakeDialer()
	var renewNow func(*testing.T) time.Duration
	r := start(t, d, func(o *Options) { renewNow = renewWhenTold(o) })
	c1 := d.next(t)
	r.typeLine("subscribe news")
	c1.nextSent(t)
	c1.push(t, `{"type":"subscribed","topics":["news","updates"]}`)
	r.waitFor(map[string]any{"kind": "reply", "body": map[string]any{"type": "subscribed", "topics": []string{"news", "updates"}}})
	c1.push(t, `{"n":1}`)
	renewNow(t)
	c2 := d.next(t)
	if c2.topics() != "updates,news" {
		t.Errorf("the renewed connection follows %q; want updates,news", c2.topics())
	}
	r.waitFor(map[string]any{"kind": "state", "state": "renewing"})
	r.waitFor(map[string]any{"kind": "message", "body": map[string]any{"n": 1}})
	deadline := time.Now().Add(wait)
	for !c1.wasClosed() && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	if !c1.wasClosed() {
		t.Error("the old connection was not closed after the renewal")
	}
	if r.count(map[string]any{"state": "disconnected"}) != 0 {
		t.Error("a renewal was shown as a drop")
	}
	c2.push(t, `{"n":2}`)
	r.waitFor(map[string]any{"kind": "message", "body": map[string]any{"n": 2}})
}

func TestExitConditions(t *testing.T) {
	t.Run("--count exits 0 after that many messages, replies not counted", func(t *testing.T) {
		d := newFakeDialer()
		r := start(t, d, func(o *Options) { o.Count = 2 })
		c := d.next(t)
		r.typeLine("ping")
		c.nextSent(t)
		c.push(t, `{"type":"pong","time":"now"}`)
		c.push(t, `1`)
		c.push(t, `2`)
		if err := r.end(); err != nil {
			t.Fatalf("err %v; want exit 0", err)
		}
		if n := r.count(map[string]any{"kind": "message"}); n != 2 {
			t.Errorf("%d messages shown; want 2", n)
		}
		if !c.wasClosed() {
			t.Error("the connection was not closed")
		}
		r.waitFor(map[string]any{"kind": "state", "state": "closed", "reason": "after 2 messages"})
	})
	t.Run("--until exits 0 after the matching message", func(t *testing.T) {
		d := newFakeDialer()
		r := start(t, d, func(o *Options) { o.Until = `"state":\s*"done"`; o.NoInput = true })
		c := d.next(t)
		c.push(t, `{"state":"working"}`)
		c.push(t, `{"state": "done"}`)
		if err := r.end(); err != nil {
			t.Fatalf("err %v; want exit 0", err)
		}
		if n := r.count(map[string]any{"kind": "message"}); n != 2 {
			t.Errorf("%d messages shown; want 2", n)
		}
	})
	t.Run("--timeout exits 4 when nothing arrives", func(t *testing.T) {
		d := newFakeDialer()
		r := start(t, d, func(o *Options) { o.Timeout = 50 * time.Millisecond })
		c := d.next(t)
		err := r.end()
		if exitCode(err) != cmdutil.ExitTimeout || !strings.Contains(err.Error(), "no message within 50ms") {
			t.Fatalf("err %v; want exit 4", err)
		}
		if !c.wasClosed() {
			t.Error("the connection was not closed")
		}
	})
	t.Run("standard output closed while nothing arrives ends it at once, as a closed pipe", func(t *testing.T) {
		// `socks listen | head -1`: head exits after the first message,
		// and listen, with nothing more to write, waited on forever.
		d := newFakeDialer()
		closed := make(chan struct{})
		r := start(t, d, func(o *Options) { o.IO.SetOutClosed(closed) })
		c := d.next(t)
		c.push(t, `1`)
		r.waitFor(map[string]any{"kind": "message"})
		close(closed)
		err := r.end()
		var cp *iostreams.ClosedPipeError
		if !errors.As(err, &cp) || cp.Stream != "standard output" {
			t.Fatalf("err %v; want a closed standard output (exit 141)", err)
		}
		if !c.wasClosed() {
			t.Error("the connection was not closed")
		}
	})
	t.Run("quit exits 0", func(t *testing.T) {
		d := newFakeDialer()
		r := start(t, d, nil)
		c := d.next(t)
		r.typeLine("quit")
		if err := r.end(); err != nil || !c.wasClosed() {
			t.Fatalf("err %v closed %v; want a clean close", err, c.wasClosed())
		}
	})
}

func TestAnOverlongTypedLineIsIgnoredAndTypingGoesOn(t *testing.T) {
	// A blob pasted at the prompt, over the line reader's 64 KB, ended
	// reading standard input: quit and subscribe did nothing after it.
	d := newFakeDialer()
	r := start(t, d, nil)
	c := d.next(t)
	r.typeLine("subscribe " + strings.Repeat("x", 200_000))
	r.typeLine("quit")
	if err := r.end(); err != nil || !c.wasClosed() {
		t.Fatalf("err %v closed %v; want quit to work after the long line", err, c.wasClosed())
	}
	if !strings.Contains(r.errOut.String(), "a typed line over 64 KB was ignored") {
		t.Errorf("stderr %q; want a note that the long line was ignored", r.errOut)
	}
}

func TestAClosedStandardInputDoesNotEndTheListener(t *testing.T) {
	d := newFakeDialer()
	r := start(t, d, nil)
	c := d.next(t)
	r.stdin.Close()
	time.Sleep(20 * time.Millisecond)
	c.push(t, `"still here"`)
	r.waitFor(map[string]any{"kind": "message", "body": "still here"})
	select {
	case err := <-r.done:
		t.Fatalf("the listener ended (%v) when standard input closed", err)
	default:
	}
}

func TestTypedCommands(t *testing.T) {
	d := newFakeDialer()
	r := start(t, d, func(o *Options) { o.ShowPing = true })
	c := d.next(t)

	r.typeLine("unsubscribe updates")
	r.typeLine("bogus")
	r.typeLine("ping")
	if got := c.nextSent(t); got != `{"action":"ping"}` {
		t.Errorf("sent %s; want the ping action", got)
	}
	out := r.errOut.String()
	if !strings.Contains(out, "would leave no topic") || !strings.Contains(out, `unknown command "bogus"`) {
		t.Errorf("stderr %q lacks the notices", out)
	}
	// A frame that looks like a reply but answers nothing pending... the
	// ping is pending, so "subscribed" does not fit it: it is a message.
	c.push(t, `{"type":"subscribed","topics":["x"]}`)
	c.push(t, `{"type":"pong","time":"t"}`)
	r.waitFor(map[string]any{"kind": "message", "body": map[string]any{"type": "subscribed", "topics": []string{"x"}}})
	l := r.waitFor(map[string]any{"kind": "reply", "body": map[string]any{"type": "pong", "time": "t"}})
	if rtt, _ := l["rttMs"].(float64); rtt <= 0 {
		t.Errorf("pong reply %v has no round trip", l)
	}
	c.pongs <- 1500 * time.Microsecond
	r.waitFor(map[string]any{"kind": "ping", "rttMs": 1.5})

	r.typeLine("unsubscribe nope")
	c.nextSent(t)
	c.push(t, `{"type":"error","error":"not subscribed"}`)
	r.waitFor(map[string]any{"kind": "reply", "body": map[string]any{"type": "error", "error": "not subscribed"}})
}

func TestTerminalOutput(t *testing.T) {
	d := newFakeDialer()
	r := start(t, d, func(o *Options) {
		o.JSON = false
		o.IO.SetTTY(true, true, true)
		o.IO.SetNoColor(true)
	})
	c := d.next(t)
	c.push(t, `{"n":1}`)
	c.end(goingAway)
	d.next(t)
	deadline := time.Now().Add(wait)
	for !strings.Contains(r.out.String(), "● connected ws://127.0.0.1:1/ as alice on updates\n03:04:05.678 updates") && time.Now().Before(deadline) {
		time.Sleep(2 * time.Millisecond)
	}
	got := r.out.String()
	for _, want := range []string{
		"socks listen\n  endpoint  ws://127.0.0.1:1/\n  geek      alice\n  topics    updates\n",
		"03:04:05.678 ● connected ws://127.0.0.1:1/ as alice on updates\n",
		"03:04:05.678 updates\n  {\n    \"n\": 1\n  }\n",
		"03:04:05.678 ○ disconnected: 1001 Going away\n",
		"03:04:05.678 ↻ reconnecting in ",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("terminal output lacks %q:\n%s", want, got)
		}
	}
	if strings.ContainsRune(got, '\x1b') || r.errOut.String() != "" {
		t.Errorf("NO_COLOR output has escapes, or stderr %q is not empty", r.errOut)
	}
}

func TestPipedOutputPutsStatesOnStandardError(t *testing.T) {
	d := newFakeDialer()
	r := start(t, d, func(o *Options) { o.JSON = false })
	c := d.next(t)
	c.push(t, `{"n":1}`)
	r.waitFor(map[string]any{"kind": "message"})
	for _, l := range r.lines() {
		if l["kind"] != "message" {
			t.Errorf("stdout has %v; want only messages and replies", l)
		}
	}
	if want := "2026-01-02T03:04:05.678Z connected ws://127.0.0.1:1/ as alice on updates\n"; !strings.HasPrefix(r.errOut.String(), want) {
		t.Errorf("stderr %q; want it to start %q", r.errOut, want)
	}
}

// A published body may have a "message" field, or a "type" of "error" or
// "subscribed", like the gateway's answers. While a typed action waits for
// its answer, only a frame of an answer's shape (docs/protocol.md, the
// rule socks.js follows) is taken for it: a chat message {"message":...}
// taken for the gateway's error frame was shown as a failed subscribe, the
// real answer then as a message counted by --count, and the subscription
// forgotten at the next reconnect.
func TestAMessageShapedLikeAnAnswerIsNotTakenForOne(t *testing.T) {
	d := newFakeDialer()
	r := start(t, d, nil)
	c1 := d.next(t)
	r.typeLine("subscribe news")
	c1.nextSent(t)
	c1.push(t, `{"message":"hello","from":"ann"}`)
	c1.push(t, `{"type":"error","message":"disk full","host":"db1"}`)
	c1.push(t, `{"type":"subscribed","topics":["a"],"by":"ann"}`)
	c1.push(t, `{"message":null,"connectionId":"c-1","requestId":"r-1"}`)
	c1.push(t, `{"type":"subscribed","topics":["news","updates"]}`)
	r.waitFor(map[string]any{"kind": "reply", "body": map[string]any{"type": "subscribed", "topics": []string{"news", "updates"}}})
	if n := r.count(map[string]any{"kind": "message"}); n != 4 {
		t.Errorf("%d message lines; want the 4 published bodies: %v", n, r.lines())
	}
	if n := r.count(map[string]any{"kind": "reply"}); n != 1 {
		t.Errorf("%d reply lines; want 1: %v", n, r.lines())
	}
	// API Gateway's own error frame is still the answer to an action.
	r.typeLine("subscribe jobs")
	c1.nextSent(t)
	c1.push(t, `{"message":"Internal server error","connectionId":"c-1","requestId":"r-1"}`)
	r.waitFor(map[string]any{"kind": "reply", "body": map[string]any{"message": "Internal server error", "connectionId": "c-1", "requestId": "r-1"}})
	// The failed subscribe's topic stays followed (see
	// TestASubscribeThatFailedIsAskedForByTheNextConnection).
	c1.end(goingAway)
	r.waitFor(map[string]any{"kind": "state", "state": "disconnected"})
	if c2 := d.next(t); c2.topics() != "updates,news,jobs" {
		t.Errorf("the new connection follows %q; want updates,news,jobs", c2.topics())
	}
}

// An endpoint that answers, but not as the gateway over the scheme given,
// is named for what it is: the hint asked whether the gateway ran (it did,
// over the other scheme), or blamed the geek and topic names, or poured a
// web page into the error.
func TestAnEndpointThatIsNotTheGatewaySaysWhatIsWrong(t *testing.T) {
	page := "<!DOCTYPE html><title>It works</title>" + strings.Repeat("<p>filler</p>", 200)
	web := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = io.WriteString(w, page) }))
	t.Cleanup(web.Close)
	tlsGateway := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "would upgrade", http.StatusTeapot)
	}))
	tlsGateway.Config.ErrorLog = log.New(io.Discard, "", 0) // the handshakes it refuses
	tlsGateway.StartTLS()
	t.Cleanup(tlsGateway.Close)
	// A plain HTTP port that sends every request to HTTPS, as a load
	// balancer or a proxy in front of a gateway does.
	toTLS := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "https://"+r.Host+r.URL.RequestURI(), http.StatusMovedPermanently)
	}))
	t.Cleanup(toTLS.Close)
	ws := func(s *httptest.Server) string { return "ws://" + s.Listener.Addr().String() + "/" }
	wss := func(s *httptest.Server) string { return "wss://" + s.Listener.Addr().String() + "/" }
	notFound := &net.OpError{Op: "dial", Net: "tcp", Err: &net.DNSError{Err: "no such host", Name: "gatway.example", IsNotFound: true}}
	for _, tc := range []struct {
		name        string
		url         string
		fake        error // the dial's error; nil dials url for real
		want, never []string
	}{
		{"wss:// to a gateway without TLS", wss(web), nil,
			[]string{"does not speak TLS", "use ws://"}, []string{"is the gateway running", "first record"}},
		{"ws:// to a gateway with TLS", ws(tlsGateway), nil,
			[]string{"HTTP 400", "use wss://"}, []string{"geek or topic"}},
		{"a certificate not trusted", wss(tlsGateway), nil,
			[]string{"certificate", "--insecure"}, []string{"is the gateway running"}},
		{"ws:// to a server that redirects plain HTTP to HTTPS", ws(toTLS), nil,
			[]string{"HTTP 301", "https://", "use wss://"}, []string{"not a WebSocket endpoint", "s3cret"}},
		{"a web page instead of a WebSocket", ws(web), nil,
			[]string{"HTTP 200", "not a WebSocket endpoint"}, []string{"refused", "filler"}},
		{"a host name that is not known", "ws://gatway.example/", notFound,
			[]string{"gatway.example", "check the host"}, []string{"is the gateway running", "dial tcp"}},
		{"a geek at its connection cap", "ws://127.0.0.1:1/", &wsclient.HandshakeError{Status: 429, Reason: "geek alice already has 1 open connection"},
			[]string{"HTTP 429", "already has 1 open connection", "close one or try again later"}, []string{"check --url"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := newFakeDialer(tc.fake)
			r := start(t, d, func(o *Options) {
				o.URL = tc.url
				if tc.fake == nil {
					o.Dial = dialWS
				}
			})
			err := r.end()
			if exitCode(err) != 1 {
				t.Fatalf("err %v; want exit 1", err)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not say %q", err, w)
				}
			}
			for _, w := range tc.never {
				if strings.Contains(err.Error(), w) {
					t.Errorf("error %q says %q", err, w)
				}
			}
		})
	}
}

// On API Gateway each frame runs its own function invocation, so the
// answers to two actions typed in a row may come in either order. Each
// answers the oldest action of its kind (an error a subscribe or an
// unsubscribe: the ping route always pongs), as in socks.js: a pong that
// overtook a subscribe's answer was shown and counted as a message, and
// the ping then stayed pending for good.
func TestAnswersThatArriveOutOfOrderAreMatchedByKind(t *testing.T) {
	d := newFakeDialer()
	r := start(t, d, nil)
	c1 := d.next(t)
	r.typeLine("subscribe news")
	c1.nextSent(t)
	r.typeLine("ping")
	c1.nextSent(t)
	c1.push(t, `{"type":"pong","time":"t"}`)
	c1.push(t, `{"type":"subscribed","topics":["news","updates"]}`)
	r.waitFor(map[string]any{"kind": "reply", "body": map[string]any{"type": "subscribed", "topics": []string{"news", "updates"}}})
	r.waitFor(map[string]any{"kind": "reply", "body": map[string]any{"type": "pong", "time": "t"}})
	// A job's failure, published, while only a ping waits: a message.
	r.typeLine("ping")
	c1.nextSent(t)
	c1.push(t, `{"type":"error","error":"job 7 failed"}`)
	c1.push(t, `{"type":"pong","time":"u"}`)
	r.waitFor(map[string]any{"kind": "reply", "body": map[string]any{"type": "pong", "time": "u"}})
	if n := r.count(map[string]any{"kind": "message"}); n != 1 {
		t.Errorf("%d message lines; want the job's failure alone: %v", n, r.lines())
	}
	r.waitFor(map[string]any{"kind": "message", "body": map[string]any{"type": "error", "error": "job 7 failed"}})
}

// A refused chatter ID from $SOCKS_CHATTER_ID or --id-file is named by
// where it came from: the hint said to leave out --id, which was not given.
func TestARefusedChatterIDIsNamedByWhereItCameFrom(t *testing.T) {
	d := newFakeDialer(&wsclient.HandshakeError{Status: 403, Reason: "chatter ID expired: issue a new one"})
	r := start(t, d, func(o *Options) {
		o.ID = ""
		o.Getenv = func(k string) string {
			if k == ChatterIDEnv {
				return "sc_fromtheenvironment"
			}
			return ""
		}
	})
	err := r.end()
	if exitCode(err) != cmdutil.ExitRefused {
		t.Fatalf("err %v; want exit 5", err)
	}
	for _, want := range []string{"$" + ChatterIDEnv, "socks chatter issue --geek alice"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
	if strings.Contains(err.Error(), "--id") || strings.Contains(err.Error(), "sc_fromtheenvironment") {
		t.Errorf("error %q names --id, which was not given, or shows the ID", err)
	}
}

// A --url with a user name and password (a gateway behind a proxy that
// asks for basic authentication) cannot be dialled: the dialer refused it
// as "malformed ws or wss URL (is the gateway running?)", naming the
// password. It is a usage error that says to send a header, and the
// password is never shown.
func TestAPasswordInTheURLIsRefusedAndNeverShown(t *testing.T) {
	d := newFakeDialer()
	r := start(t, d, func(o *Options) { o.URL = "ws://ann:pa55word@127.0.0.1:1/prod?x=1" })
	err := r.end()
	var usage *cmdutil.FlagError
	if !errors.As(err, &usage) || !strings.Contains(err.Error(), "ws://ann:xxxxx@127.0.0.1:1/prod?...") || !strings.Contains(err.Error(), "Authorization header") {
		t.Errorf("err %v; want a usage error naming the URL without its password and saying to send a header", err)
	}
	if strings.Contains(fmt.Sprint(err), "pa55word") || strings.Contains(r.out.String()+r.errOut.String(), "pa55word") {
		t.Errorf("the password is shown: %v", err)
	}
	if d.dials() != 0 {
		t.Errorf("%d dials", d.dials())
	}
}

// Ctrl-D on a terminal ends standard input: listen goes on, but reads no
// more commands, so a "quit" typed after it did nothing, unexplained. It
// says so once. A piped standard input that ends says nothing.
func TestCtrlDOnATerminalSaysTypingHasEnded(t *testing.T) {
	for _, tty := range []bool{true, false} {
		d := newFakeDialer()
		r := start(t, d, func(o *Options) { o.IO.SetTTY(tty, false, false) })
		c := d.next(t)
		r.stdin.Close()
		deadline := time.Now().Add(wait)
		for tty && !strings.Contains(r.errOut.String(), "no more commands") && time.Now().Before(deadline) {
			time.Sleep(2 * time.Millisecond)
		}
		c.push(t, `"still here"`)
		r.waitFor(map[string]any{"kind": "message", "body": "still here"})
		if said := strings.Contains(r.errOut.String(), "no more commands are read; Ctrl-C stops listen"); said != tty {
			t.Errorf("terminal %v: stderr %q; want the notice only on a terminal", tty, r.errOut)
		}
	}
}

// TestAPingTheLocalGatewayDroppedOverItsFrameRateIsAnswered: socks serve
// answers a frame over its inbound rate with an error in place of routing
// it, in order, so that error answers the oldest action waiting, a ping
// too. It answered nothing while only a ping waited: it was shown and
// counted as a message, and the ping stayed pending for good (the next
// pong then answered it, with its round trip).
func TestAPingTheLocalGatewayDroppedOverItsFrameRateIsAnswered(t *testing.T) {
	d := newFakeDialer()
	r := start(t, d, nil)
	c := d.next(t)
	r.typeLine("ping")
	c.nextSent(t)
	refusal := `{"type":"error","error":"too many frames: send at most 50 per second; this one was dropped, and a client that keeps on is disconnected (1008)"}`
	c.push(t, refusal)
	r.waitFor(map[string]any{"kind": "reply", "body": map[string]any{"type": "error", "error": "too many frames: send at most 50 per second; this one was dropped, and a client that keeps on is disconnected (1008)"}})
	// Nothing waits now: a pong is a message.
	c.push(t, `{"type":"pong","time":"late"}`)
	r.waitFor(map[string]any{"kind": "message", "body": map[string]any{"type": "pong", "time": "late"}})
	if n := r.count(map[string]any{"kind": "message"}); n != 1 {
		t.Errorf("%d message lines; want the late pong alone: %v", n, r.lines())
	}
}

// TestASubscribeThatFailedIsAskedForByTheNextConnection: API Gateway's
// error frame says the route failed, not that the gateway refused the
// topics; as socks.js does (docs/protocol.md, gateway errors), the topics
// of a subscribe that failed so stay followed and the next connection asks
// for them. listen forgot them.
func TestASubscribeThatFailedIsAskedForByTheNextConnection(t *testing.T) {
	d := newFakeDialer()
	r := start(t, d, nil)
	c1 := d.next(t)
	r.typeLine("subscribe jobs")
	c1.nextSent(t)
	c1.push(t, `{"message":"Internal server error","connectionId":"c-1","requestId":"r-1"}`)
	r.waitFor(map[string]any{"kind": "reply", "body": map[string]any{"message": "Internal server error", "connectionId": "c-1", "requestId": "r-1"}})
	c1.end(goingAway)
	r.waitFor(map[string]any{"kind": "state", "state": "disconnected"})
	if c2 := d.next(t); c2.topics() != "updates,jobs" {
		t.Errorf("the new connection follows %q; want updates,jobs", c2.topics())
	}
}

// TestAnUnsubscribeThatFailedIsNotAskedForByTheNextConnection: API
// Gateway's error frame says the route failed, not that the gateway refused
// anything; as for a subscribe so failed, and as socks.js does (its topics
// change when unsubscribe() is called, docs/protocol.md, gateway errors),
// what was typed is kept: the topics unsubscribed go on arriving until the
// next connection, which does not ask for them. listen forgot the
// unsubscribe, and the next connection followed them again.
func TestAnUnsubscribeThatFailedIsNotAskedForByTheNextConnection(t *testing.T) {
	d := newFakeDialer()
	r := start(t, d, nil)
	c1 := d.next(t)
	r.typeLine("subscribe jobs")
	c1.nextSent(t)
	c1.push(t, `{"type":"subscribed","topics":["jobs","updates"]}`)
	r.waitFor(map[string]any{"kind": "reply", "body": map[string]any{"type": "subscribed", "topics": []string{"jobs", "updates"}}})
	r.typeLine("unsubscribe jobs")
	c1.nextSent(t)
	c1.push(t, `{"message":"Internal server error","connectionId":"c-1","requestId":"r-1"}`)
	r.waitFor(map[string]any{"kind": "reply", "body": map[string]any{"message": "Internal server error", "connectionId": "c-1", "requestId": "r-1"}})
	c1.end(goingAway)
	r.waitFor(map[string]any{"kind": "state", "state": "disconnected"})
	if c2 := d.next(t); c2.topics() != "updates" {
		t.Errorf("the new connection follows %q; want updates", c2.topics())
	}
}

// TestARefusedUnsubscribeIsNotAskedForByTheNextConnection: a refused
// unsubscribe's error ("this connection is not registered; reconnect", a
// frame socks serve dropped over its rate) left its topics in what was
// asked for, so the next connection followed them again, though the user
// had typed "unsubscribe jobs". As for an unsubscribe whose route failed,
// and as socks.js does (docs/protocol.md), what was typed is kept: the
// next connection does not ask for them (the first error opens it: see
// TestNotRegisteredOpensAFreshConnection).
func TestARefusedUnsubscribeIsNotAskedForByTheNextConnection(t *testing.T) {
	d := newFakeDialer()
	r := start(t, d, func(o *Options) { o.Topics = []string{"updates", "jobs", "news"} })
	c1 := d.next(t)
	r.typeLine("unsubscribe jobs")
	c1.nextSent(t)
	c1.push(t, `{"type":"error","error":"this connection is not registered; reconnect"}`)
	r.waitFor(map[string]any{"kind": "reply", "body": map[string]any{"type": "error", "error": "this connection is not registered; reconnect"}})
	c2 := d.next(t)
	if c2.topics() != "updates,news" {
		t.Errorf("the new connection follows %q; want updates,news", c2.topics())
	}
	r.waitFor(map[string]any{"kind": "state", "state": "connected", "topics": []string{"updates", "news"}})
	r.typeLine("unsubscribe news")
	c2.nextSent(t)
	c2.push(t, `{"type":"error","error":"too many frames: send at most 50 per second"}`)
	r.waitFor(map[string]any{"kind": "reply", "body": map[string]any{"type": "error", "error": "too many frames: send at most 50 per second"}})
	c2.end(goingAway)
	r.waitFor(map[string]any{"kind": "state", "state": "disconnected", "code": 1001})
	if c3 := d.next(t); c3.topics() != "updates" {
		t.Errorf("the third connection follows %q; want updates", c3.topics())
	}
}

// TestAGatewayThatDropsEachConnectionAtOnceIsRetriedEverLater: with
// --max-retries 0 (never give up) against a gateway that accepts every
// upgrade and closes it at once, each reconnect waits longer, up to the
// backoff's cap: no hot loop of upgrades, however long it goes on.
func TestAGatewayThatDropsEachConnectionAtOnceIsRetriedEverLater(t *testing.T) {
	d := newFakeDialer()
	waited := make(chan time.Duration, 16)
	r := start(t, d, func(o *Options) {
		o.MaxRetries = 0
		o.Backoff = Backoff{Jitter: func() float64 { return 0 }} // the defaults, each wait half its step
		o.after = func(d time.Duration) <-chan time.Time {
			waited <- d
			ch := make(chan time.Time, 1)
			ch <- time.Time{}
			return ch
		}
	})
	var waits []time.Duration
	for range 10 {
		d.next(t).end(goingAway)
		select {
		case w := <-waited:
			waits = append(waits, w)
		case <-time.After(wait):
			t.Fatalf("no reconnect within %s after %v\n%s", wait, waits, r.out)
		}
	}
	want := []time.Duration{250 * time.Millisecond, 500 * time.Millisecond, time.Second, 2 * time.Second, 4 * time.Second,
		8 * time.Second, 15 * time.Second, 15 * time.Second, 15 * time.Second, 15 * time.Second}
	if !slices.Equal(waits, want) {
		t.Errorf("waited %v; want %v", waits, want)
	}
}

// TestAnAnswerThatIsNotUTF8IsAMessage: a frame of an answer's shape whose
// text is not valid UTF-8 was taken for the answer and written into the
// --json line as it came, bytes a JSON reader refuses (JSON is UTF-8);
// the gateway's answers are always UTF-8, so it is a message, which
// --json gives in base64, as any text that is not UTF-8.
func TestAnAnswerThatIsNotUTF8IsAMessage(t *testing.T) {
	d := newFakeDialer()
	r := start(t, d, nil)
	c1 := d.next(t)
	r.typeLine("subscribe jobs")
	c1.nextSent(t)
	c1.push(t, "{\"type\":\"error\",\"error\":\"bad \xff\"}")
	c1.push(t, "{\"message\":\"\xfe\",\"connectionId\":\"c-1\",\"requestId\":\"r-1\"}")
	c1.push(t, `{"type":"subscribed","topics":["jobs","updates"]}`)
	r.waitFor(map[string]any{"kind": "reply", "body": map[string]any{"type": "subscribed", "topics": []string{"jobs", "updates"}}})
	if !utf8.ValidString(r.out.String()) {
		t.Errorf("standard output is not UTF-8:\n%q", r.out.String())
	}
	if n := r.count(map[string]any{"kind": "message"}); n != 2 {
		t.Errorf("%d message lines; want the 2 frames that are not UTF-8: %v", n, r.lines())
	}
}

// TestTypedActionsWaitingForAnAnswerAreCapped: against a gateway that
// never answers, a stream of piped commands (`yes ping | socks listen`)
// grew the list of actions waiting for an answer without end, each
// subscribe walking all of it. At maxPending more are not sent, said
// once.
func TestTypedActionsWaitingForAnAnswerAreCapped(t *testing.T) {
	d := newFakeDialer()
	r := start(t, d, nil)
	c := d.next(t)
	var n atomic.Int64
	stop, stopped := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(stopped)
		for {
			select {
			case <-c.sent:
				n.Add(1)
			case <-stop:
				return
			}
		}
	}()
	for range maxPending + 10 {
		r.typeLine("ping")
	}
	r.typeLine("subscribe jobs")
	r.typeLine("quit")
	if err := r.end(); err != nil {
		t.Fatal(err)
	}
	close(stop)
	<-stopped
	if got := int(n.Load()) + len(c.sent); got != maxPending {
		t.Errorf("%d frames sent; want %d", got, maxPending)
	}
	if got := strings.Count(r.errOut.String(), "wait for the gateway's answer"); got != 1 {
		t.Errorf("stderr says so %d times; want once:\n%s", got, r.errOut)
	}
}

// TestTheNextConnectionFollowsWhatWasTypedNotAReplysList: a subscribed or
// unsubscribed reply's topics were taken for the topics followed. API
// Gateway runs each frame in its own invocation, so its answers may come
// in another order than the actions: after "subscribe b" then
// "unsubscribe b", a late `subscribed [b, updates]` had the next
// connection follow b again; and a server naming topics never asked for
// had them followed. As socks.js keeps the page's own list
// (docs/protocol.md), listen keeps what was typed, each confirmed action
// applying its own topics in the order they were typed.
func TestTheNextConnectionFollowsWhatWasTypedNotAReplysList(t *testing.T) {
	d := newFakeDialer()
	r := start(t, d, nil)
	c1 := d.next(t)
	r.typeLine("subscribe b")
	c1.nextSent(t)
	r.typeLine("unsubscribe b")
	c1.nextSent(t)
	c1.push(t, `{"type":"unsubscribed","topics":["updates"]}`)
	c1.push(t, `{"type":"subscribed","topics":["b","updates"]}`)
	r.typeLine("subscribe jobs")
	c1.nextSent(t)
	c1.push(t, `{"type":"subscribed","topics":["jobs","never","updates"]}`)
	r.waitFor(map[string]any{"kind": "reply", "body": map[string]any{"type": "subscribed", "topics": []string{"jobs", "never", "updates"}}})
	c1.end(goingAway)
	r.waitFor(map[string]any{"kind": "state", "state": "disconnected"})
	c2 := d.next(t)
	if c2.topics() != "updates,jobs" {
		t.Errorf("the new connection follows %q; want updates,jobs", c2.topics())
	}
	r.waitFor(map[string]any{"kind": "state", "state": "connected", "topics": []string{"updates", "jobs"}})
	// The same for a reply that names fewer topics than were asked for.
	r.typeLine("subscribe news")
	c2.nextSent(t)
	c2.push(t, `{"type":"subscribed","topics":[]}`)
	r.waitFor(map[string]any{"kind": "reply", "body": map[string]any{"type": "subscribed", "topics": []string{}}})
	c2.end(goingAway)
	if c3 := d.next(t); c3.topics() != "updates,jobs,news" {
		t.Errorf("the third connection follows %q; want updates,jobs,news", c3.topics())
	}
}

// TestARefusalAnsweringOutOfOrderDropsTheTopicsItRefused: a refused
// subscribe's error names the topics the connection still follows, and
// answered the oldest subscribe or unsubscribe waiting. Out of order
// ("subscribe news", "subscribe secret", the refusal of secret first), it
// was taken for news's, and the late subscribed for secret's: the next
// connection asked for secret, and a connect naming a topic the gateway
// refuses is refused whole (exit 5). As socks.js does, the refusal answers
// the oldest subscribe that asked for a topic outside those it names.
func TestARefusalAnsweringOutOfOrderDropsTheTopicsItRefused(t *testing.T) {
	d := newFakeDialer()
	r := start(t, d, nil)
	c1 := d.next(t)
	r.typeLine("subscribe news")
	c1.nextSent(t)
	r.typeLine("subscribe secret")
	c1.nextSent(t)
	c1.push(t, `{"type":"error","error":"this chatter ID may not follow secret; it may follow only news, updates","topics":["news","updates"]}`)
	c1.push(t, `{"type":"subscribed","topics":["news","updates"]}`)
	r.waitFor(map[string]any{"kind": "reply", "body": map[string]any{"type": "subscribed", "topics": []string{"news", "updates"}}})
	c1.end(goingAway)
	r.waitFor(map[string]any{"kind": "state", "state": "disconnected"})
	if c2 := d.next(t); c2.topics() != "updates,news" {
		t.Errorf("the new connection follows %q; want updates,news", c2.topics())
	}
}

// TestARefusalOfTheLaterSubscribeRunFirstIsNotFollowedNext: API Gateway
// runs each frame in its own invocation, so "subscribe secret" may run
// before "subscribe news" typed first: its refusal then names only the
// topics followed before either (updates), outside which both asked, and
// was taken for news's; the subscribed that followed, naming news, was
// taken for secret's, so the next connection asked for secret and was
// refused whole (exit 5). A subscribed answers the oldest subscribe all of
// whose topics it names, and applies only those it names: the next
// connection never asks for the refused topic.
func TestARefusalOfTheLaterSubscribeRunFirstIsNotFollowedNext(t *testing.T) {
	d := newFakeDialer()
	r := start(t, d, nil)
	c1 := d.next(t)
	r.typeLine("subscribe news")
	c1.nextSent(t)
	r.typeLine("subscribe secret")
	c1.nextSent(t)
	c1.push(t, `{"type":"error","error":"this chatter ID may not follow secret; it may follow only news, updates","topics":["updates"]}`)
	c1.push(t, `{"type":"subscribed","topics":["news","updates"]}`)
	r.waitFor(map[string]any{"kind": "reply", "body": map[string]any{"type": "subscribed", "topics": []string{"news", "updates"}}})
	c1.end(goingAway)
	r.waitFor(map[string]any{"kind": "state", "state": "disconnected"})
	if c2 := d.next(t); strings.Contains(c2.topics(), "secret") {
		t.Errorf("the new connection follows %q; want no secret, which the gateway refused", c2.topics())
	}
}

// TestSubscribedRepliesOutOfOrderAnswerTheirOwnSubscribes: "subscribe x",
// "subscribe y", run y first: the first subscribed names y but not x. It
// answers the subscribe of y, and both topics are followed next.
func TestSubscribedRepliesOutOfOrderAnswerTheirOwnSubscribes(t *testing.T) {
	d := newFakeDialer()
	r := start(t, d, nil)
	c1 := d.next(t)
	r.typeLine("subscribe x")
	c1.nextSent(t)
	r.typeLine("subscribe y")
	c1.nextSent(t)
	c1.push(t, `{"type":"subscribed","topics":["updates","y"]}`)
	c1.push(t, `{"type":"subscribed","topics":["updates","x","y"]}`)
	r.waitFor(map[string]any{"kind": "reply", "body": map[string]any{"type": "subscribed", "topics": []string{"updates", "x", "y"}}})
	c1.end(goingAway)
	r.waitFor(map[string]any{"kind": "state", "state": "disconnected"})
	if c2 := d.next(t); c2.topics() != "updates,y,x" && c2.topics() != "updates,x,y" {
		t.Errorf("the new connection follows %q; want updates, x and y", c2.topics())
	}
}

// TestNotRegisteredOpensAFreshConnection: the gateway answers a subscribe
// or unsubscribe of a connection whose record is gone (prune-stale, its
// expiry, a store wiped) with "this connection is not registered;
// reconnect", and nothing published reaches that connection any more.
// listen only showed the answer and stayed on the dead connection, which
// the gateway kept open. As socks.js does (NOT_REGISTERED), it closes it
// (1000 "not registered"), says why on its reconnecting line, and opens a
// fresh connection after the usual backoff that asks for every topic
// followed: a subscribe so answered is asked for, an unsubscribe not.
func TestNotRegisteredOpensAFreshConnection(t *testing.T) {
	d := newFakeDialer()
	r := start(t, d, func(o *Options) { o.Topics = []string{"updates", "jobs"} })
	c1 := d.next(t)
	r.typeLine("subscribe news")
	c1.nextSent(t)
	r.typeLine("unsubscribe jobs")
	c1.nextSent(t)
	c1.push(t, `{"type":"error","error":"this connection is not registered; reconnect"}`)
	r.waitFor(map[string]any{"kind": "reply", "body": map[string]any{"type": "error", "error": "this connection is not registered; reconnect"}})
	r.waitFor(map[string]any{"kind": "state", "state": "disconnected", "code": 1000, "reason": "not registered"})
	l := r.waitFor(map[string]any{"kind": "state", "state": "reconnecting", "attempt": 1})
	if why, _ := l["error"].(string); !strings.Contains(why, "no record of this connection") {
		t.Errorf("the reconnecting line says %q; want why", why)
	}
	c2 := d.next(t)
	if !c1.wasClosed() {
		t.Error("the connection the gateway forgot was not closed")
	}
	if c2.topics() != "updates,news" {
		t.Errorf("the new connection follows %q; want updates,news", c2.topics())
	}
	r.waitFor(map[string]any{"kind": "state", "state": "connected", "topics": []string{"updates", "news"}})
	if n := d.dials(); n != 2 {
		t.Errorf("%d dials; want one reconnect", n)
	}
	if n := r.count(map[string]any{"kind": "message"}); n != 0 {
		t.Errorf("%d message lines; want none: %v", n, r.lines())
	}
}

// TestAGatewayErrorNothingWaitsForIsNotAMessage: API Gateway's error frame
// ({"message":...,"connectionId":...,"requestId":...}) that answers no
// action waiting was shown and counted as a published message (--count,
// --until, --timeout). socks.js never passes it on (docs/protocol.md,
// gateway errors): listen shows it as the gateway's error, kind "error"
// with --json, on standard error as text when piped without --json.
func TestAGatewayErrorNothingWaitsForIsNotAMessage(t *testing.T) {
	const frame = `{"message":"Internal server error","connectionId":"c-1","requestId":"r-1"}`
	t.Run("with --json it is a line of kind error", func(t *testing.T) {
		d := newFakeDialer()
		r := start(t, d, func(o *Options) { o.Count = 1 })
		c := d.next(t)
		c.push(t, frame)
		c.push(t, `"after"`)
		if err := r.end(); err != nil {
			t.Fatal(err)
		}
		r.waitFor(map[string]any{"kind": "error", "error": "the gateway failed a frame (requestId r-1): Internal server error",
			"body": map[string]any{"message": "Internal server error", "connectionId": "c-1", "requestId": "r-1"}})
		if n := r.count(map[string]any{"kind": "message"}); n != 1 {
			t.Errorf("%d message lines; want the one after: %v", n, r.lines())
		}
	})
	t.Run("piped without --json it goes to standard error", func(t *testing.T) {
		d := newFakeDialer()
		r := start(t, d, func(o *Options) { o.JSON, o.Count = false, 1 })
		c := d.next(t)
		c.push(t, frame)
		c.push(t, `"after"`)
		if err := r.end(); err != nil {
			t.Fatal(err)
		}
		if got := r.out.String(); strings.Contains(got, "Internal server error") {
			t.Errorf("stdout %q has the gateway's error", got)
		}
		if want := "2026-01-02T03:04:05.678Z the gateway failed a frame (requestId r-1): Internal server error\n"; !strings.Contains(r.errOut.String(), want) {
			t.Errorf("stderr %q lacks %q", r.errOut, want)
		}
	})
}

// TestAnErrorWithoutTopicsAnsweringASubscribe: a subscribe answered by an
// error that names no topics was taken for refused, whatever the error:
// its topics were not asked for by the next connection. socks.js keeps a
// subscribe whose frame the gateway did not route (socks serve's "too many
// frames", dropped over its rate, as for one whose route failed): the
// gateway did not refuse its topics, and the next connection asks for
// them. An error that judged the frame itself (a name the gateway will not
// have) still refuses it: a connect naming it would be refused whole.
func TestAnErrorWithoutTopicsAnsweringASubscribe(t *testing.T) {
	for _, tc := range []struct {
		name, reply, next string
	}{
		{"dropped over the frame rate, it is asked for again", `{"type":"error","error":"too many frames: send at most 50 per second"}`, "updates,jobs"},
		{"refused for what it asked, it is not", `{"type":"error","error":"topic \"jobs\" is not a name the gateway takes"}`, "updates"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := newFakeDialer()
			r := start(t, d, nil)
			c1 := d.next(t)
			r.typeLine("subscribe jobs")
			c1.nextSent(t)
			c1.push(t, tc.reply)
			r.waitFor(map[string]any{"kind": "reply"})
			c1.end(goingAway)
			r.waitFor(map[string]any{"kind": "state", "state": "disconnected"})
			if c2 := d.next(t); c2.topics() != tc.next {
				t.Errorf("the new connection follows %q; want %s", c2.topics(), tc.next)
			}
		})
	}
}

// TestATypedCommandIsNotSentWhileTheGatewayIsNotReading: listen sent a
// typed command with wsclient's SendJSON, which waits while its send
// queue (16 frames) is full, and it stays full while a gateway that does
// not read has the writer stuck in a write, up to its 10 s write wait:
// the whole loop stalled, showing no message, no state, no Ctrl-D. The
// command is now refused at once, saying so, and not counted as waiting
// for an answer; what was queued before goes in order, and what is typed
// once the gateway reads is sent.
func TestATypedCommandIsNotSentWhileTheGatewayIsNotReading(t *testing.T) {
	d := newFakeDialer()
	r := start(t, d, nil)
	c1 := d.next(t)
	c1.setFull(true)
	r.typeLine("subscribe jobs")
	c1.push(t, `"still shown"`)
	r.waitFor(map[string]any{"kind": "message", "body": "still shown"})
	deadline := time.Now().Add(wait)
	for !strings.Contains(r.errOut.String(), "not sent: the gateway is not reading") && time.Now().Before(deadline) {
		time.Sleep(2 * time.Millisecond)
	}
	if !strings.Contains(r.errOut.String(), "not sent: the gateway is not reading (16 frames wait to be written to it); type it again once it reads") {
		t.Errorf("stderr %q; want the command refused, saying why", r.errOut)
	}
	c1.setFull(false)
	r.typeLine("subscribe news")
	if got := c1.nextSent(t); got != `{"action":"subscribe","topics":["news"]}` {
		t.Errorf("sent %s; want the subscribe typed once the gateway reads", got)
	}
	c1.end(goingAway)
	if c2 := d.next(t); c2.topics() != "updates,news" {
		t.Errorf("the new connection follows %q; want updates,news (jobs was not sent)", c2.topics())
	}
}

// TestABigFrameShapedLikeAGatewayErrorIsAMessage: only frames of up to
// maxGatewayError bytes are looked at for API Gateway's error frame (its
// message is a few words): a bigger published body of that shape, with
// nothing waiting, is a message.
func TestABigFrameShapedLikeAGatewayErrorIsAMessage(t *testing.T) {
	d := newFakeDialer()
	r := start(t, d, nil)
	c := d.next(t)
	big := strings.Repeat("m", maxGatewayError)
	c.push(t, `{"message":"`+big+`","connectionId":"c-1","requestId":"r-1"}`)
	r.waitFor(map[string]any{"kind": "message", "body": map[string]any{"message": big, "connectionId": "c-1", "requestId": "r-1"}})
}

// TestATimeoutIsSaidOnce: --timeout printed "closed (no message within
// 2s)" and then Main's "socks: no message within 2s", the same words
// twice. The closed line shown to a person now leaves the reason to the
// error listen exits with (Main says it, exit 4); a --json closed line
// keeps it in "reason", for the script that reads standard output.
func TestATimeoutIsSaidOnce(t *testing.T) {
	for _, tc := range []struct {
		name   string
		tune   func(*Options)
		closed string // the closed line, on stdout or stderr
		json   bool
	}{
		{"piped, on standard error", func(o *Options) { o.JSON = false }, "2026-01-02T03:04:05.678Z closed\n", false},
		{"on a terminal", func(o *Options) {
			o.JSON = false
			o.IO.SetTTY(false, true, true)
			o.IO.SetNoColor(true)
		}, "03:04:05.678 ■ closed\n", false},
		{"with --json", func(o *Options) {}, "", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := newFakeDialer()
			r := start(t, d, func(o *Options) {
				o.Timeout = 50 * time.Millisecond
				o.NoInput = true
				tc.tune(o)
			})
			d.next(t)
			err := r.end()
			if exitCode(err) != cmdutil.ExitTimeout || err.Error() != "no message within 50ms" {
				t.Fatalf("err %v; want exit 4 saying no message came within 50ms", err)
			}
			shown := r.out.String() + r.errOut.String()
			if tc.json {
				if n := r.count(map[string]any{"kind": "state", "state": "closed", "reason": "no message within 50ms"}); n != 1 {
					t.Errorf("%d closed lines with the reason; want 1:\n%s", n, r.out)
				}
				if r.errOut.String() != "" {
					t.Errorf("stderr %q; want nothing", r.errOut)
				}
				return
			}
			if strings.Contains(shown, "no message within") {
				t.Errorf("the output says why before the error does:\n%s", shown)
			}
			if !strings.HasSuffix(shown, tc.closed) {
				t.Errorf("output ends\n%q; want the closed line %q", shown, tc.closed)
			}
		})
	}
}
