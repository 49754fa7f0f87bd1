package wsclient

import (
	"bufio"
	"bytes"
	"compress/flate"
	"context"
	"crypto/sha1"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// wait bounds every wait in these tests.
const wait = 5 * time.Second

// server is an httptest WebSocket server on 127.0.0.1 that runs handle for
// each connection.
func server(t *testing.T, handle func(ws *websocket.Conn)) string {
	t.Helper()
	up := websocket.Upgrader{Subprotocols: []string{"socks.v1"}}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ws, err := up.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		defer ws.Close()
		handle(ws)
	}))
	t.Cleanup(srv.Close)
	return "ws" + strings.TrimPrefix(srv.URL, "http")
}

func dial(t *testing.T, u string, opts Options) *Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), wait)
	defer cancel()
	c, err := Dial(ctx, u, opts)
	if err != nil {
		t.Fatalf("Dial: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func nextFrame(t *testing.T, c *Conn) Frame {
	t.Helper()
	select {
	case f, ok := <-c.Frames():
		if !ok {
			t.Fatalf("the connection ended (%v); want a frame", c.Err())
		}
		return f
	case <-time.After(wait):
		t.Fatalf("no frame within %s", wait)
	}
	return Frame{}
}

func waitEnd(t *testing.T, c *Conn) {
	t.Helper()
	timer := time.NewTimer(wait)
	defer timer.Stop()
	for {
		select {
		case _, ok := <-c.Frames():
			if !ok {
				return
			}
		case <-timer.C:
			t.Fatalf("the connection did not end within %s", wait)
		}
	}
}

// readUntilClosed reads from the server side until the client's close
// frame (or any error) arrives, and returns that error.
func readUntilClosed(ws *websocket.Conn) error {
	_ = ws.SetReadDeadline(time.Now().Add(wait))
	for {
		if _, _, err := ws.ReadMessage(); err != nil {
			return err
		}
	}
}

func TestFramesArriveAsSent(t *testing.T) {
	u := server(t, func(ws *websocket.Conn) {
		_ = ws.WriteMessage(websocket.TextMessage, []byte(`{"n":1}`))
		_ = ws.WriteMessage(websocket.BinaryMessage, []byte{0, 1, 0xff})
		_ = readUntilClosed(ws)
	})
	c := dial(t, u, Options{})
	if f := nextFrame(t, c); f.Binary || string(f.Data) != `{"n":1}` || f.At.IsZero() {
		t.Errorf("first frame %+v; want the text frame {\"n\":1} with a time", f)
	}
	if f := nextFrame(t, c); !f.Binary || string(f.Data) != "\x00\x01\xff" {
		t.Errorf("second frame %+v; want the binary frame 00 01 ff", f)
	}
}

func TestConcurrentSendsAllArriveThroughTheOneWriter(t *testing.T) {
	const senders, each = 8, 25
	got := make(chan string, senders*each)
	u := server(t, func(ws *websocket.Conn) {
		_ = ws.SetReadDeadline(time.Now().Add(wait))
		for {
			_, data, err := ws.ReadMessage()
			if err != nil {
				return
			}
			got <- string(data)
		}
	})
	c := dial(t, u, Options{})
	var wg sync.WaitGroup
	for i := range senders {
		wg.Go(func() {
			for j := range each {
				if err := c.SendJSON(map[string]int{"sender": i, "n": j}); err != nil {
					t.Errorf("SendJSON: %v", err)
					return
				}
			}
		})
	}
	wg.Wait()
	seen := map[string]bool{}
	for range senders * each {
		select {
		case m := <-got:
			if seen[m] {
				t.Errorf("%s arrived twice", m)
			}
			seen[m] = true
		case <-time.After(wait):
			t.Fatalf("only %d of %d messages arrived", len(seen), senders*each)
		}
	}
}

func TestKeepalivePingsAreAnsweredAndTimed(t *testing.T) {
	u := server(t, func(ws *websocket.Conn) { _ = readUntilClosed(ws) }) // reading answers pings
	c := dial(t, u, Options{PingPeriod: 20 * time.Millisecond})
	for i := range 3 {
		select {
		case rtt := <-c.Pongs():
			if rtt < 0 || rtt > wait {
				t.Errorf("round trip %s; want a small positive duration", rtt)
			}
		case <-time.After(wait):
			t.Fatalf("pong %d did not arrive within %s", i+1, wait)
		}
	}
	if err := c.Ping(); err != nil {
		t.Fatalf("Ping: %v", err)
	}
}

func TestAServerThatStopsAnsweringIsDetected(t *testing.T) {
	// The server never reads, so it never answers the client's pings.
	release := make(chan struct{})
	u := server(t, func(ws *websocket.Conn) { <-release })
	defer close(release)
	c := dial(t, u, Options{PingPeriod: 20 * time.Millisecond, PongWait: 100 * time.Millisecond})
	waitEnd(t, c)
	if c.Err() == nil {
		t.Error("Err() is nil; want the read timeout")
	}
}

func TestServerPingsKeepTheConnectionAlive(t *testing.T) {
	// The server pings on the test's command but never reads the client's
	// pongs or pings: its pings alone must extend the client's read
	// deadline, each one (TestAServerThatStopsAnsweringIsDetected shows
	// that the deadline ends a silent connection).
	pings := make(chan struct{})
	u := server(t, func(ws *websocket.Conn) {
		for range pings {
			if ws.WriteControl(websocket.PingMessage, []byte("srv"), time.Now().Add(wait)) != nil {
				return
			}
		}
	})
	defer close(pings)
	c := dial(t, u, Options{PingPeriod: time.Hour, PongWait: time.Hour})
	for i := range 3 {
		before := c.lives.Load()
		pings <- struct{}{}
		deadline := time.Now().Add(wait)
		for c.lives.Load() == before {
			if time.Now().After(deadline) {
				t.Fatalf("server ping %d did not extend the read deadline within %s", i+1, wait)
			}
			time.Sleep(time.Millisecond)
		}
	}
	select {
	case <-c.Done():
		t.Fatalf("the connection ended (%v) though the server kept pinging", c.Err())
	default:
	}
}

func TestServerCloseReportsCodeAndReason(t *testing.T) {
	u := server(t, func(ws *websocket.Conn) {
		msg := websocket.FormatCloseMessage(websocket.CloseGoingAway, "Going away")
		_ = ws.WriteControl(websocket.CloseMessage, msg, time.Now().Add(time.Second))
		_ = readUntilClosed(ws)
	})
	c := dial(t, u, Options{})
	waitEnd(t, c)
	code, reason, ok := CloseStatus(c.Err())
	if !ok || code != CloseGoingAway || reason != "Going away" {
		t.Errorf("CloseStatus(%v) = %d %q %v; want 1001 \"Going away\"", c.Err(), code, reason, ok)
	}
	if err := c.SendText([]byte("late")); !errors.Is(err, ErrClosed) {
		t.Errorf("SendText after the end: %v; want ErrClosed", err)
	}
}

func TestABrokenConnectionReportsAbnormalClosure(t *testing.T) {
	u := server(t, func(ws *websocket.Conn) { ws.NetConn().Close() })
	c := dial(t, u, Options{})
	waitEnd(t, c)
	if code, _, ok := CloseStatus(c.Err()); !ok || code != CloseAbnormalClosure {
		t.Errorf("CloseStatus(%v) = %d %v; want 1006", c.Err(), code, ok)
	}
}

func TestCloseSendsOneNormalCloseFrame(t *testing.T) {
	got := make(chan error, 1)
	u := server(t, func(ws *websocket.Conn) { got <- readUntilClosed(ws) })
	c := dial(t, u, Options{})
	var wg sync.WaitGroup
	for range 3 {
		wg.Go(func() { _ = c.Close() })
	}
	wg.Wait()
	select {
	case err := <-got:
		code, reason, ok := CloseStatus(err)
		if !ok || code != CloseNormalClosure || reason != "bye" {
			t.Errorf("the server saw %v; want a 1000 \"bye\" close frame", err)
		}
	case <-time.After(wait):
		t.Fatal("the server saw no close frame")
	}
	if err := c.Err(); err != nil {
		t.Errorf("Err() after a local Close = %v; want nil", err)
	}
	select {
	case <-c.Done():
	default:
		t.Error("Done is still open after Close returned")
	}
}

func TestCloseIsBoundedWhenTheServerNeverAnswers(t *testing.T) {
	release := make(chan struct{})
	u := server(t, func(ws *websocket.Conn) { <-release }) // never reads the close frame
	defer close(release)
	const grace = 100 * time.Millisecond
	c := dial(t, u, Options{CloseGrace: grace})
	start := time.Now()
	_ = c.Close()
	if d := time.Since(start); d > grace+wait {
		t.Errorf("Close took %s; want about the %s grace", d, grace)
	}
}

func TestARefusedUpgradeIsAHandshakeError(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "chatter ID refused: unknown", http.StatusForbidden)
	}))
	defer srv.Close()
	_, err := Dial(t.Context(), "ws"+strings.TrimPrefix(srv.URL, "http"), Options{})
	var he *HandshakeError
	if !errors.As(err, &he) || he.Status != 403 || he.Reason != "chatter ID refused: unknown" {
		t.Fatalf("Dial error %v; want a HandshakeError 403 with the reason", err)
	}
	if !strings.Contains(he.Error(), "HTTP 403 Forbidden: chatter ID refused") {
		t.Errorf("message %q does not name the status and the reason", he.Error())
	}
}

func TestHeadersOriginAndSubprotocolAreSent(t *testing.T) {
	seen := make(chan http.Header, 1)
	up := websocket.Upgrader{Subprotocols: []string{"socks.v1"}, CheckOrigin: func(*http.Request) bool { return true }}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen <- r.Header.Clone()
		ws, err := up.Upgrade(w, r, nil)
		if err == nil {
			_ = readUntilClosed(ws)
			ws.Close()
		}
	}))
	defer srv.Close()
	h := http.Header{"X-Trace": {"abc"}}
	c := dial(t, "ws"+strings.TrimPrefix(srv.URL, "http"), Options{
		Header: h, Origin: "https://example.test", Subprotocols: []string{"other", "socks.v1"},
	})
	got := <-seen
	if got.Get("X-Trace") != "abc" || got.Get("Origin") != "https://example.test" {
		t.Errorf("server saw X-Trace=%q Origin=%q", got.Get("X-Trace"), got.Get("Origin"))
	}
	if c.Subprotocol() != "socks.v1" {
		t.Errorf("Subprotocol() = %q; want socks.v1", c.Subprotocol())
	}
	if h.Get("Origin") != "" {
		t.Error("Dial modified the caller's header")
	}
}

func TestAMessageOverTheReadLimitEndsTheConnection(t *testing.T) {
	u := server(t, func(ws *websocket.Conn) {
		_ = ws.WriteMessage(websocket.TextMessage, []byte(strings.Repeat("x", 2048)))
		_ = readUntilClosed(ws)
	})
	c := dial(t, u, Options{ReadLimit: 1024})
	waitEnd(t, c)
	if !errors.Is(c.Err(), websocket.ErrReadLimit) {
		t.Errorf("Err() = %v; want the read limit error", c.Err())
	}
}

func TestConnectURL(t *testing.T) {
	for _, tc := range []struct {
		name, base string
		topics     []string
		want       string
		wantErr    string
	}{
		{name: "geek, id and topics are added", base: "ws://127.0.0.1:1/", topics: []string{"a", "b"},
			want: "ws://127.0.0.1:1/?geek=g&id=s&topic=a%2Cb"},
		{name: "a stage path and existing parameters are kept", base: "wss://h.example/dev?x=1",
			want: "wss://h.example/dev?geek=g&id=s&x=1"},
		{name: "an http URL is refused", base: "http://127.0.0.1:1/", wantErr: "scheme must be ws or wss"},
		{name: "a URL without a host is refused", base: "ws:///x", wantErr: "no host"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ConnectURL(tc.base, "g", "s", tc.topics)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err %v; want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("got %q, %v; want %q", got, err, tc.want)
			}
		})
	}
}

func ExampleCloseStatus() {
	code, reason, ok := CloseStatus(&websocket.CloseError{Code: 1001, Text: "Going away"})
	fmt.Println(code, reason, ok)
	// Output: 1001 Going away true
}

func TestUserAgentIsSentUnlessTheHeaderHasOne(t *testing.T) {
	agents := make(chan string, 2)
	up := websocket.Upgrader{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		agents <- r.UserAgent()
		if ws, err := up.Upgrade(w, r, nil); err == nil {
			ws.Close()
		}
	}))
	t.Cleanup(srv.Close)
	u := "ws" + strings.TrimPrefix(srv.URL, "http")
	dial(t, u, Options{UserAgent: "socks/1.2.3"})
	dial(t, u, Options{UserAgent: "socks/1.2.3", Header: http.Header{"User-Agent": {"mine/1"}}})
	for _, want := range []string{"socks/1.2.3", "mine/1"} {
		if got := <-agents; got != want {
			t.Errorf("User-Agent %q; want %q", got, want)
		}
	}
}

func TestWhyAConnectionEndedIsSaidInTheUsersWords(t *testing.T) {
	// What `socks listen` shows as "disconnected: ...": never Go's
	// "read tcp 127.0.0.1:5->127.0.0.1:6: i/o timeout" or gorilla's
	// "websocket: read limit exceeded".
	internals := []string{"read tcp", "i/o timeout", "websocket:", "unexpected EOF"}
	for _, tc := range []struct {
		name   string
		handle func(ws *websocket.Conn)
		opts   Options
		want   string
	}{
		{"a server that answers no ping", func(ws *websocket.Conn) { time.Sleep(wait) },
			Options{PingPeriod: 20 * time.Millisecond, PongWait: 100 * time.Millisecond}, "no answer from the server for 100ms, not even to pings"},
		{"a message over the read limit", func(ws *websocket.Conn) {
			_ = ws.WriteMessage(websocket.TextMessage, []byte(strings.Repeat("x", 2048)))
			_ = readUntilClosed(ws)
		}, Options{ReadLimit: 1024}, "the server sent a message over 1024 bytes"},
		{"a frame with a reserved opcode", func(ws *websocket.Conn) {
			_, _ = ws.NetConn().Write([]byte{0x83, 0x00})
			_ = readUntilClosed(ws)
		}, Options{}, "the server broke the WebSocket protocol: bad opcode 3"},
		{"a connection that broke", func(ws *websocket.Conn) { ws.NetConn().Close() }, Options{}, "the connection broke without a close frame"},
		// A hostile or broken server's close frames and fragments.
		{"a close frame whose reason is not UTF-8", func(ws *websocket.Conn) {
			_, _ = ws.NetConn().Write([]byte{0x88, 0x04, 0x03, 0xe8, 0xff, 0xfe})
			_ = readUntilClosed(ws)
		}, Options{}, "the server broke the WebSocket protocol: invalid utf8 payload in close frame"},
		{"a close frame with a code never sent (1005)", func(ws *websocket.Conn) {
			_, _ = ws.NetConn().Write([]byte{0x88, 0x02, 0x03, 0xed})
			_ = readUntilClosed(ws)
		}, Options{}, "the server broke the WebSocket protocol: bad close code 1005"},
		{"a close frame over 125 bytes", func(ws *websocket.Conn) {
			_, _ = ws.NetConn().Write(append([]byte{0x88, 0x7e, 0x00, 0x80, 0x03, 0xe8}, strings.Repeat("r", 126)...))
			_ = readUntilClosed(ws)
		}, Options{}, "the server broke the WebSocket protocol: len > 125 for control"},
		{"fragments that go on past the read limit", func(ws *websocket.Conn) {
			frag := append([]byte{0x01, 0x7e, 0x01, 0x00}, strings.Repeat("f", 256)...) // text, not final
			for i := 0; i < 64; i++ {
				if _, err := ws.NetConn().Write(frag); err != nil {
					return
				}
				frag[0] = 0x00 // continuation, not final
			}
			_ = readUntilClosed(ws)
		}, Options{ReadLimit: 1024}, "the server sent a message over 1024 bytes"},
		{"a continuation with no message", func(ws *websocket.Conn) {
			_, _ = ws.NetConn().Write([]byte{0x80, 0x00})
			_ = readUntilClosed(ws)
		}, Options{}, "the server broke the WebSocket protocol: continuation after FIN"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := dial(t, server(t, tc.handle), tc.opts)
			waitEnd(t, c)
			msg := fmt.Sprint(c.Err())
			if _, reason, ok := CloseStatus(c.Err()); ok {
				msg = reason
			}
			if !strings.Contains(msg, tc.want) {
				t.Errorf("the end says %q; want %q", msg, tc.want)
			}
			for _, leak := range internals {
				if strings.Contains(msg, leak) {
					t.Errorf("the end says %q: Go internals (%q)", msg, leak)
				}
			}
		})
	}
}

func TestAHandshakeThatNeverAnswersSaysSo(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		// Accept and read, never answer (a slowloris server).
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			defer c.Close()
		}
	}()
	ctx, cancel := context.WithTimeout(t.Context(), wait)
	defer cancel()
	_, err = Dial(ctx, "ws://"+ln.Addr().String()+"/", Options{HandshakeTimeout: 100 * time.Millisecond})
	if err == nil || !strings.Contains(err.Error(), "no answer to the WebSocket handshake within 100ms") || strings.Contains(err.Error(), "i/o timeout") {
		t.Errorf("Dial: %v; want no answer to the handshake within 100ms", err)
	}
}

func TestAnUpgradeAnsweredWrongSaysSo(t *testing.T) {
	// 101 Switching Protocols with a made-up Sec-WebSocket-Accept: not a
	// WebSocket server (or a proxy in the way). Gorilla says "websocket:
	// bad handshake".
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Upgrade", "websocket")
		w.Header().Set("Connection", "Upgrade")
		w.Header().Set("Sec-WebSocket-Accept", "wrong")
		w.WriteHeader(http.StatusSwitchingProtocols)
	}))
	defer srv.Close()
	ctx, cancel := context.WithTimeout(t.Context(), wait)
	defer cancel()
	_, err := Dial(ctx, "ws"+strings.TrimPrefix(srv.URL, "http"), Options{})
	if err == nil || !strings.Contains(err.Error(), "answered the WebSocket handshake wrongly") || strings.Contains(err.Error(), "websocket:") {
		t.Errorf("Dial: %v; want it to say the handshake was answered wrongly", err)
	}
	if !errors.Is(err, websocket.ErrBadHandshake) {
		t.Errorf("Dial: %v; want it to wrap websocket.ErrBadHandshake", err)
	}
}

func TestARefusedUpgradesRetryAfterIsRead(t *testing.T) {
	now := time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)
	for _, c := range []struct {
		name, header string
		want         time.Duration
	}{
		{"seconds", "5", 5 * time.Second},
		{"seconds with spaces", " 30 ", 30 * time.Second},
		{"an HTTP date", now.Add(90 * time.Second).Format(http.TimeFormat), 90 * time.Second},
		{"a date past is no wait", now.Add(-time.Minute).Format(http.TimeFormat), 0},
		{"none", "", 0},
		{"not a number or a date", "soon", 0},
		{"negative", "-5", 0},
		{"a huge number is bounded", "99999999999999999", 24 * time.Hour},
	} {
		t.Run(c.name, func(t *testing.T) {
			if got := retryAfter(c.header, now); got != c.want {
				t.Errorf("Retry-After %q is %s; want %s", c.header, got, c.want)
			}
		})
	}
}

// A failed name lookup is said in words, with the host, never as Go's
// "dial tcp: lookup h on 10.0.0.53:53: ..." with the resolver's address.
func TestAFailedNameLookupIsSaidInWords(t *testing.T) {
	for _, tc := range []struct {
		dns  *net.DNSError
		want string
	}{
		{&net.DNSError{Err: "no such host", Name: "gatway.example", Server: "10.0.0.53:53", IsNotFound: true}, "no host is named gatway.example (DNS)"},
		{&net.DNSError{Err: "server misbehaving", Name: "gateway.example", Server: "10.0.0.53:53", IsTemporary: true}, "the host name gateway.example could not be looked up: server misbehaving"},
	} {
		err := InUsersWords(&net.OpError{Op: "dial", Net: "tcp", Err: tc.dns}, "during the handshake")
		if err.Error() != tc.want {
			t.Errorf("got %q; want %q", err, tc.want)
		}
		if !errors.Is(err, tc.dns) {
			t.Errorf("%q does not wrap the DNS error", err)
		}
	}
}

// TestAPasswordInAURLThatDoesNotParseIsNeverShown: a URL with a password
// is refused without showing it (xxxxx); but one that does not parse was
// shown as typed, with url.Parse's words, which quote what they could not
// read: a password holding "%", "/", "?", "#" or a space came out whole,
// or in part ("invalid port \":pa\" after host").
func TestAPasswordInAURLThatDoesNotParseIsNeverShown(t *testing.T) {
	for _, raw := range []string{
		"ws://ann:Qx%zz77@127.0.0.1:1/",
		"ws://ann:Qx/77@127.0.0.1:1/",
		"ws://ann:Qx?77@127.0.0.1:1/",
		"ws://ann:Qx#77@127.0.0.1:1/",
		"ws://ann:Qx 77@127.0.0.1:1/",
		"ws://ann:Qx77@127.0.0.1:1/x%zz",
		"ws://ann:Qx77@127.0.0.1:1/prod?x=1",
	} {
		_, err := ConnectURL(raw, "alice", "s3cret", nil)
		if err == nil {
			t.Errorf("%q: taken", raw)
			continue
		}
		for _, secret := range []string{"Qx", "77", "invalid"} {
			if strings.Contains(err.Error(), secret) {
				t.Errorf("%q: %q shows %q of the password", raw, err, secret)
			}
		}
		if !strings.Contains(err.Error(), "ws://ann:xxxxx@") || !strings.Contains(err.Error(), "Authorization header") {
			t.Errorf("%q: %q; want the URL with xxxxx for its password, and to send a header instead", raw, err)
		}
	}
	// The last "@" may be in the query: what follows it is not shown.
	if _, err := ConnectURL("ws://ann:Qx%zz@h/?x=@&id=sc_secret99", "", "", nil); err == nil || strings.Contains(err.Error(), "sc_secret99") || strings.Contains(err.Error(), "Qx") {
		t.Errorf("got %v; want neither the password nor the chatter ID", err)
	}
	// Without a password, what does not parse is said as before.
	if _, err := ConnectURL("ws://127.0.0.1:1/x%zz", "", "", nil); err == nil || !strings.Contains(err.Error(), `invalid URL escape "%zz"`) {
		t.Errorf("got %v; want url.Parse's words", err)
	}
}

// TestAConsumerThatFallsBehindIsNotTakenForASilentServer: while the
// consumer does not take frames (listen writing to a full pipe, a terminal
// paused with Ctrl-S), the reader waits with the next one in hand and reads
// nothing. The read deadline set when that frame arrived passed meanwhile,
// so the first read after the consumer caught up failed at once: the
// connection ended, blamed on the server ("no answer from the server for
// ..., not even to pings"), though the server was only waiting for the
// client to read. The wait for the consumer no longer counts.
func TestAConsumerThatFallsBehindIsNotTakenForASilentServer(t *testing.T) {
	more, wrote := make(chan struct{}), make(chan struct{})
	u := server(t, func(ws *websocket.Conn) {
		// Enough to fill the queue and one more in the reader's hand.
		for i := range frameQueue + 1 {
			if ws.WriteMessage(websocket.TextMessage, fmt.Appendf(nil, "m%d", i)) != nil {
				return
			}
		}
		// The next once the reader has read them all, so that it waits
		// in the socket, not in the reader's buffer (from there it would
		// be read whatever the deadline says).
		<-more
		_ = ws.WriteMessage(websocket.TextMessage, []byte("last"))
		close(wrote)
		_ = readUntilClosed(ws)
	})
	const pongWait = time.Second
	c := dial(t, u, Options{PingPeriod: time.Hour, PongWait: pongWait})
	deadline := time.Now().Add(wait)
	for len(c.frames) < frameQueue {
		if time.Now().After(deadline) {
			t.Fatalf("only %d frames queued within %s", len(c.frames), wait)
		}
		time.Sleep(time.Millisecond)
	}
	// The consumer falls behind by more than the pong wait.
	time.Sleep(2 * pongWait)
	// The server's next frame is there before the consumer catches up:
	// the test does not depend on it arriving within the pong wait of
	// the hand-over (on a loaded machine it might not), only on the
	// reader not giving up on the connection while it waited.
	close(more)
	select {
	case <-wrote:
	case <-time.After(wait):
		t.Fatalf("the server did not send its last frame within %s", wait)
	}
	for i := range frameQueue + 1 {
		if f := nextFrame(t, c); string(f.Data) != fmt.Sprintf("m%d", i) {
			t.Fatalf("frame %d is %q; want m%d", i, f.Data, i)
		}
	}
	if f := nextFrame(t, c); string(f.Data) != "last" {
		t.Fatalf("frame %q; want last", f.Data)
	}
}

// TestAnEndlessHandshakeAnswerIsBounded: a server (or what answers in its
// place) that sends header lines without end. Go's HTTP client stops at
// 10 MB of them (MaxResponseHeaderBytes); the dialer reads the answer with
// no bound, keeping every line, until the handshake timeout: a fast
// enough server filled the memory. It is cut at maxHandshakeBytes.
func TestAnEndlessHandshakeAnswerIsBounded(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	const most = 256 << 20
	sent := make(chan int, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			sent <- 0
			return
		}
		defer c.Close()
		_, _ = c.Read(make([]byte, 4096)) // the request
		line := []byte("X-Filler: " + strings.Repeat("a", 4000) + "\r\n")
		n, _ := c.Write([]byte("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"))
		for n < most {
			m, err := c.Write(line)
			n += m
			if err != nil {
				break
			}
		}
		sent <- n
	}()
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	_, err = Dial(ctx, "ws://"+ln.Addr().String()+"/", Options{HandshakeTimeout: time.Minute})
	if err == nil || !strings.Contains(err.Error(), "over 1 MB") {
		t.Errorf("Dial: %v; want it to say the answer to the handshake was over 1 MB", err)
	}
	if n := <-sent; n >= most {
		t.Errorf("the client read all %d bytes the server sent; want it to stop past %d", n, maxHandshakeBytes)
	}
}

// TestFramesArriveOverTLS: the bound on what the handshake reads
// (TestAnEndlessHandshakeAnswerIsBounded) sits below TLS, and is lifted
// once the handshake is over.
func TestFramesArriveOverTLS(t *testing.T) {
	big := strings.Repeat("x", 2*maxHandshakeBytes/3)
	up := websocket.Upgrader{}
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ws, err := up.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		defer ws.Close()
		for range 2 {
			if ws.WriteMessage(websocket.TextMessage, []byte(big)) != nil {
				return
			}
		}
		_ = readUntilClosed(ws)
	}))
	t.Cleanup(srv.Close)
	c := dial(t, "wss"+strings.TrimPrefix(srv.URL, "https"), Options{Insecure: true, ReadLimit: maxHandshakeBytes})
	for range 2 {
		if f := nextFrame(t, c); string(f.Data) != big {
			t.Fatalf("a frame of %d bytes; want %d", len(f.Data), len(big))
		}
	}
}

// handshakeServer answers every upgrade with a valid 101 and the extra
// header lines given, then writes frames (raw bytes), then holds the
// connection until the client goes.
func handshakeServer(t *testing.T, extra string, frames []byte) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				req, err := http.ReadRequest(bufio.NewReader(c))
				if err != nil {
					return
				}
				sum := sha1.Sum([]byte(req.Header.Get("Sec-WebSocket-Key") + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"))
				_, _ = fmt.Fprintf(c, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: %s\r\n%s\r\n",
					base64.StdEncoding.EncodeToString(sum[:]), extra)
				_, _ = c.Write(frames)
				_, _ = io.Copy(io.Discard, c)
			}()
		}
	}()
	return "ws://" + ln.Addr().String() + "/"
}

// TestAnAnswerWithWhatWasNotAskedForIsRefused: the client offers no
// extension, and the subprotocols given. A server that answers with an
// extension anyway (RFC 6455 4.1: the client must fail the connection) got
// it: the dialer took permessage-deflate unasked, and the read limit counts
// compressed bytes, so a frame of a kilobyte brought a megabyte (a
// deflate bomb: a 256 KB frame, hundreds of megabytes). A subprotocol not
// offered is refused as well.
func TestAnAnswerWithWhatWasNotAskedForIsRefused(t *testing.T) {
	var z bytes.Buffer
	fw, _ := flate.NewWriter(&z, flate.BestCompression)
	_, _ = fw.Write(bytes.Repeat([]byte("a"), 1<<20))
	_ = fw.Flush()
	payload := bytes.TrimSuffix(z.Bytes(), []byte{0, 0, 0xff, 0xff})
	bomb := append([]byte{0xc1, 126, byte(len(payload) >> 8), byte(len(payload))}, payload...) // final, RSV1, text
	for _, tc := range []struct {
		name, extra string
		opts        Options
	}{
		{"an extension", "Sec-WebSocket-Extensions: permessage-deflate; server_no_context_takeover; client_no_context_takeover\r\n", Options{ReadLimit: 64 << 10}},
		{"a subprotocol not offered", "Sec-WebSocket-Protocol: other\r\n", Options{Subprotocols: []string{"socks.v1"}}},
		{"a subprotocol when none was offered", "Sec-WebSocket-Protocol: socks.v1\r\n", Options{}},
		// Gorilla refuses permessage-deflate without its two parameters,
		// in its own words ("websocket: invalid compression negotiation").
		{"permessage-deflate without its parameters", "Sec-WebSocket-Extensions: permessage-deflate\r\n", Options{}},
		// One line each: the first was taken, the other not looked at.
		{"a subprotocol offered and one not", "Sec-WebSocket-Protocol: socks.v1\r\nSec-WebSocket-Protocol: other\r\n", Options{Subprotocols: []string{"socks.v1"}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(t.Context(), wait)
			defer cancel()
			c, err := Dial(ctx, handshakeServer(t, tc.extra, bomb), tc.opts)
			if err == nil {
				defer c.Close()
				if f, ok := <-c.Frames(); ok {
					t.Errorf("Dial took the answer, and a frame of %d bytes arrived (read limit %d)", len(f.Data), tc.opts.ReadLimit)
				}
				t.Fatalf("Dial took the answer; want it refused")
			}
			if !strings.Contains(err.Error(), "not asked for") || !errors.Is(err, websocket.ErrBadHandshake) {
				t.Errorf("Dial: %v; want it to say the server answered with what was not asked for", err)
			}
		})
	}
	// What was offered is taken: a subprotocol offered in Subprotocols or
	// in the header (the dialer sends both), or none though some were.
	for _, tc := range []struct {
		name, extra, want string
		opts              Options
	}{
		{"offered", "Sec-WebSocket-Protocol: socks.v1\r\n", "socks.v1", Options{Subprotocols: []string{"x", "socks.v1"}}},
		{"offered in the header", "Sec-WebSocket-Protocol: socks.v1\r\n", "socks.v1", Options{Header: http.Header{"Sec-Websocket-Protocol": {"x, socks.v1"}}}},
		{"none though some were offered", "", "", Options{Subprotocols: []string{"socks.v1"}}},
		{"none offered, none named", "", "", Options{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.opts.CloseGrace = time.Millisecond
			c := dial(t, handshakeServer(t, tc.extra, nil), tc.opts)
			if p := c.Subprotocol(); p != tc.want {
				t.Errorf("Subprotocol() = %q; want %q", p, tc.want)
			}
		})
	}
}

// TestFramesSentWithTheAnswerPassTheHandshakesBound: a server that writes
// its 101 and 1.5 MB of frames at once; the dialer's buffered reader may
// take the first of them with the answer, and the bound is lifted for the
// rest once the handshake is over.
func TestFramesSentWithTheAnswerPassTheHandshakesBound(t *testing.T) {
	frame := append([]byte{0x82, 0x7e, 0x80, 0x00}, bytes.Repeat([]byte("f"), 0x8000)...) // binary, 32 KB
	frames := bytes.Repeat(frame, 48)
	c := dial(t, handshakeServer(t, "", frames), Options{CloseGrace: time.Millisecond})
	for i := range 48 {
		if f := nextFrame(t, c); len(f.Data) != 0x8000 {
			t.Fatalf("frame %d has %d bytes; want %d", i, len(f.Data), 0x8000)
		}
	}
}

// TestAnEndlessAnswerThroughAProxyIsBounded: an HTTP proxy that answers
// CONNECT, then header lines without end (the proxy's own answer, or the
// server's behind it): the bound holds on the connection to the proxy.
func TestAnEndlessAnswerThroughAProxyIsBounded(t *testing.T) {
	// The proxy's answer without end, or the server's behind it (sent
	// once the upgrade request came through).
	for _, connectAnswer := range []string{"HTTP/1.1 200 OK\r\n", "HTTP/1.1 200 OK\r\n\r\n"} {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		const most = 64 << 20
		sent := make(chan int, 1)
		go func() {
			c, err := ln.Accept()
			if err != nil {
				sent <- 0
				return
			}
			defer c.Close()
			_, _ = c.Read(make([]byte, 4096)) // CONNECT
			line := []byte("X-Filler: " + strings.Repeat("a", 4000) + "\r\n")
			n, _ := c.Write([]byte(connectAnswer))
			if strings.HasSuffix(connectAnswer, "\r\n\r\n") {
				_, _ = c.Read(make([]byte, 4096)) // the upgrade
				m, _ := c.Write([]byte("HTTP/1.1 101 Switching Protocols\r\n"))
				n += m
			}
			for n < most {
				m, err := c.Write(line)
				n += m
				if err != nil {
					break
				}
			}
			sent <- n
		}()
		proxy, _ := url.Parse("http://" + ln.Addr().String())
		ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
		d := websocket.Dialer{Proxy: http.ProxyURL(proxy), HandshakeTimeout: time.Minute}
		_, _, err = DialWith(ctx, &d, "ws://192.0.2.1:9/", nil)
		cancel()
		if err == nil || !strings.Contains(err.Error(), "over 1 MB") {
			t.Errorf("%q: DialWith: %v; want it to say the answer ran over 1 MB", connectAnswer, err)
		}
		if n := <-sent; n >= most {
			t.Errorf("%q: the client read all %d bytes sent; want it to stop past 1 MB", connectAnswer, n)
		}
	}
}

// TestDialReachesLocalhostDot: a URL on "localhost." (this machine, as
// the gateway judges a Host header naming it) is dialled on localhost.
// Before, Go looked "localhost." up in DNS and found no such name.
func TestDialReachesLocalhostDot(t *testing.T) {
	u := server(t, func(ws *websocket.Conn) { _, _, _ = ws.ReadMessage() })
	u = strings.Replace(u, "127.0.0.1", "localhost.", 1)
	dial(t, u, Options{})
}

// TestCtrlCWhileTheServerHoldsTheHandshakeEndsTheDial: a cancelled
// context (Ctrl-C in listen) while the server holds the handshake, having
// read the request and answered nothing, ends the dial at once with the
// context's error. The dialer watches the context only until the TCP
// connection is made: listen waited out the handshake timeout (15 s) and
// then exited.
func TestCtrlCWhileTheServerHoldsTheHandshakeEndsTheDial(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	asked := make(chan struct{}, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		r := bufio.NewReader(c)
		for {
			line, err := r.ReadString('\n')
			if err != nil {
				return
			}
			if line == "\r\n" { // the request is in; no answer comes
				asked <- struct{}{}
			}
		}
	}()
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	done := make(chan error, 1)
	go func() {
		_, err := Dial(ctx, "ws://"+ln.Addr().String()+"/", Options{HandshakeTimeout: time.Hour})
		done <- err
	}()
	<-asked
	cancel() // Ctrl-C
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Errorf("Dial = %v; want the context's error", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("Dial still runs 20s after its context was cancelled: it waits out the handshake timeout")
	}
}

// TestTrySendRefusesAtOnceWhileTheServerDoesNotRead: SendText waits while
// the send queue is full, and it stays full while a server that does not
// read has the writer stuck in a write (up to writeWait, 10 s): a caller
// with other work, such as listen's one loop, stalled that long.
// TrySendText refuses at once with ErrSendQueueFull, and what was queued
// before is written, in order, once the server reads.
func TestTrySendRefusesAtOnceWhileTheServerDoesNotRead(t *testing.T) {
	start := make(chan struct{})
	read := make(chan string, 8192)
	u := server(t, func(ws *websocket.Conn) {
		<-start
		for {
			_, data, err := ws.ReadMessage()
			if err != nil {
				return
			}
			read <- string(data[:8])
		}
	})
	c := dial(t, u, Options{})
	pad := strings.Repeat("x", 64*1024)
	n := 0
	for ; ; n++ {
		if n == 4000 {
			close(start)
			t.Fatalf("%d frames of 64 KiB queued to a server that reads none; want the queue full", n)
		}
		err := c.TrySendText([]byte(fmt.Sprintf("%08d", n) + pad))
		if errors.Is(err, ErrSendQueueFull) {
			break
		}
		if err != nil {
			t.Fatalf("TrySendText %d: %v", n, err)
		}
	}
	close(start)
	for i := range n {
		select {
		case s := <-read:
			if s != fmt.Sprintf("%08d", i) {
				t.Fatalf("frame %d read is %s; want them in the order queued", i, s)
			}
		case <-time.After(wait):
			t.Fatalf("the server read %d of the %d frames queued", i, n)
		}
	}
	// The frame refused was not queued: the next one sent follows.
	if err := c.SendText([]byte("next    ")); err != nil {
		t.Fatal(err)
	}
	select {
	case s := <-read:
		if s != "next    " {
			t.Errorf("after the frames queued the server read %s; want the next one sent", s)
		}
	case <-time.After(wait):
		t.Fatal("the frame sent after them did not arrive")
	}
}

// A 2xx answer to the upgrade is not a refusal: the server (or something in
// front of it, a captive portal or a proxy) answered a page instead of
// switching protocols, and the message says so.
func TestHandshakeErrorWithA2xxStatusSaysTheServerDidNotSwitch(t *testing.T) {
	got := (&HandshakeError{Status: http.StatusOK}).Error()
	want := "the server answered HTTP 200 OK instead of switching to WebSocket: a captive portal or a proxy?"
	if got != want {
		t.Fatalf("Error() = %q; want %q", got, want)
	}
	if got := (&HandshakeError{Status: http.StatusForbidden, Reason: "no"}).Error(); got != "connection refused by the server: HTTP 403 Forbidden: no" {
		t.Fatalf("a 403 reads %q", got)
	}
}

// pongServer is a server that answers no ping by itself: it hands each
// ping's payload to pings and, for each list sent on script, sends those
// pongs and then a text frame "sync". The client's reader runs the pong
// handler for each pong before it reads the frame after them, so once the
// client has that frame every pong before it has been judged.
func pongServer(t *testing.T, pings chan<- string, script <-chan []string) string {
	t.Helper()
	return server(t, func(ws *websocket.Conn) {
		ws.SetPingHandler(func(p string) error {
			pings <- p
			return nil
		})
		go func() { _ = readUntilClosed(ws) }()
		for pongs := range script {
			for _, p := range pongs {
				if ws.WriteControl(websocket.PongMessage, []byte(p), time.Now().Add(wait)) != nil {
					return
				}
			}
			if ws.WriteMessage(websocket.TextMessage, []byte("sync")) != nil {
				return
			}
		}
	})
}

func nextPing(t *testing.T, pings <-chan string) string {
	t.Helper()
	select {
	case p := <-pings:
		return p
	case <-time.After(wait):
		t.Fatalf("the server got no ping within %s", wait)
	}
	return ""
}

// onePong asserts that exactly one round trip, a plausible one, was
// delivered by the time the frame "sync" arrived.
func onePong(t *testing.T, c *Conn, step string) {
	t.Helper()
	if f := nextFrame(t, c); string(f.Data) != "sync" {
		t.Fatalf("%s: frame %q; want sync", step, f.Data)
	}
	var got []time.Duration
	for len(c.Pongs()) > 0 {
		got = append(got, <-c.Pongs())
	}
	if len(got) != 1 || got[0] < 0 || got[0] > wait {
		t.Errorf("%s: round trips %v; want one, of at least 0 and at most %s", step, got, wait)
	}
}

// TestOnlyAPongToAPingSentAndNotYetAnsweredIsTimed: the pong handler took
// any pong whose payload was the ping prefix and a number for the answer
// to a ping, so a hostile server, or an unsolicited pong copying a
// payload, made `listen --show-ping` show a wrong round trip, negative
// even. Only a pong carrying the payload of a ping this connection sent,
// and not yet answered, is timed now.
func TestOnlyAPongToAPingSentAndNotYetAnsweredIsTimed(t *testing.T) {
	pings, script := make(chan string, 4), make(chan []string)
	c := dial(t, pongServer(t, pings, script), Options{PingPeriod: time.Hour, PongWait: time.Hour})
	defer close(script)

	if err := c.Ping(); err != nil {
		t.Fatalf("Ping: %v", err)
	}
	p1 := nextPing(t, pings)
	n, ok := strings.CutPrefix(p1, pingPrefix)
	sent, err := strconv.ParseInt(n, 10, 64)
	if !ok || err != nil {
		t.Fatalf("ping payload %q; want %s and a number", p1, pingPrefix)
	}
	hour := int64(time.Hour)
	script <- []string{
		pingPrefix + strconv.FormatInt(sent+hour, 10), // from the future: negative
		pingPrefix + strconv.FormatInt(sent-hour, 10), // an hour long
		pingPrefix + "0",
		pingPrefix + "+" + n, // the same number, not the same payload
		pingPrefix + "0" + n,
		p1,
	}
	onePong(t, c, "forged pongs, then the answer")

	if err := c.Ping(); err != nil {
		t.Fatalf("Ping: %v", err)
	}
	p2 := nextPing(t, pings)
	script <- []string{p1, p2, p2} // replays around the answer
	onePong(t, c, "replayed pongs, then the answer")
}

// TestUnansweredPingsAreRememberedBoundedly: a server that answers no ping
// does not make the client keep every payload; a pong to a ping it has
// forgotten is not timed.
func TestUnansweredPingsAreRememberedBoundedly(t *testing.T) {
	pings, script := make(chan string, maxUnanswered+1), make(chan []string)
	c := dial(t, pongServer(t, pings, script), Options{PingPeriod: time.Hour, PongWait: time.Hour})
	defer close(script)

	var sent []string
	for range maxUnanswered + 1 {
		if err := c.Ping(); err != nil {
			t.Fatalf("Ping: %v", err)
		}
		sent = append(sent, nextPing(t, pings))
	}
	c.pingMu.Lock()
	kept := len(c.pinged)
	c.pingMu.Unlock()
	if kept != maxUnanswered {
		t.Errorf("%d payloads kept after %d unanswered pings; want %d", kept, len(sent), maxUnanswered)
	}
	script <- []string{sent[0], sent[len(sent)-1]} // the oldest is forgotten
	onePong(t, c, "the forgotten ping's pong, then the newest's")
}
