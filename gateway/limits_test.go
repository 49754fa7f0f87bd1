package gateway

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"runtime"
	"strings"
	"testing"
	"testing/iotest"
	"time"

	"github.com/gorilla/websocket"

	"github.com/socks-dev/socks/pubsub"
)

// rawRequest sends raw on a new connection to addr and returns the
// status of the answer. The request is written while the answer is read,
// so that one refused before its end is not held up by the rest.
func rawRequest(t *testing.T, addr string, raw []byte) int {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, wait)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(wait))
	go func() { _, _ = c.Write(raw) }()
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatalf("no answer: %v", err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// upgradeRequest returns an upgrade request for target from addr whose
// request line and headers are n bytes long (at least their minimum),
// padded in one header's value, and extra headers before it.
func upgradeRequest(addr, target string, n int, extra string) string {
	head := "GET " + target + " HTTP/1.1\r\nHost: " + addr + "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n" + extra
	const pad = "X-Pad: \r\n\r\n"
	return head + "X-Pad: " + strings.Repeat("p", max(0, n-len(head)-len(pad))) + "\r\n\r\n"
}

// API Gateway takes at most 10,240 bytes of request line and headers (the
// quota of its HTTP APIs). The gateway took net/http's 1 MB, and a block
// of tiny headers that size cost about 26 MB to parse for each request.
// Over the bound the answer is 431, before any $connect or call.
func TestRequestHeadersAreBoundedAsOnAPIGateway(t *testing.T) {
	h := newFakeHandler()
	_, addr := start(t, h, Options{})
	connects := func() int {
		return len(h.find(func(ev event) bool { return ev.RequestContext.EventType == "CONNECT" }))
	}

	if got := rawRequest(t, addr, []byte(upgradeRequest(addr, "/?tag=fits", maxHeaderBytes, ""))); got != http.StatusSwitchingProtocols {
		t.Errorf("an upgrade of %d bytes: %d, want 101", maxHeaderBytes, got)
	}
	if got := rawRequest(t, addr, []byte(upgradeRequest(addr, "/?tag=over", maxHeaderBytes+1, ""))); got != http.StatusRequestHeaderFieldsTooLarge {
		t.Errorf("an upgrade of %d bytes: %d, want 431", maxHeaderBytes+1, got)
	}
	if n := connects(); n != 1 {
		t.Errorf("%d $connect calls, want 1 (the upgrade within the bound)", n)
	}

	// A block of 1 MB of tiny headers, each of its own name.
	var b strings.Builder
	for i := 0; b.Len() < 1<<20; i++ {
		fmt.Fprintf(&b, "h%x:v\r\n", i)
	}
	block := []byte(upgradeRequest(addr, "/?tag=block", 0, b.String()))
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	got := rawRequest(t, addr, block)
	runtime.ReadMemStats(&after)
	if got != http.StatusRequestHeaderFieldsTooLarge {
		t.Errorf("an upgrade with 1 MB of headers: %d, want 431", got)
	}
	// The bound's own 10 KB of them cost about 0.3 MB to parse, and the
	// most the server reads (headerCeiling, 32 KB, over which net/http
	// answers 431 itself) about 0.85 MB; 1 MB of them, 26 MB (and 33 MB
	// counting the $connect event's copy). The budget, 4 MB, leaves room
	// for what the package's other goroutines allocate meanwhile (the
	// count is the process's) and still catches a read of them all.
	if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 4<<20 {
		t.Errorf("answering an upgrade with 1 MB of headers allocated %.1f MB, want at most 4 MB", float64(alloc)/(1<<20))
	}
	if n := connects(); n != 1 {
		t.Errorf("%d $connect calls, want 1", n)
	}

	// The Management API's calls are bounded alike.
	call := "GET /@connections/nope HTTP/1.1\r\nHost: " + addr + "\r\nAuthorization: " + strings.Repeat("a", maxHeaderBytes) + "\r\n\r\n"
	if got := rawRequest(t, addr, []byte(call)); got != http.StatusRequestHeaderFieldsTooLarge {
		t.Errorf("a Management API call with a %d-byte Authorization: %d, want 431", maxHeaderBytes, got)
	}
}

// TestARequestOverTheHeaderBoundIsLoggedAsARefusal: over the bound,
// net/http answered its own bare 431 and socks serve logged nothing, so
// a developer whose cookies for localhost pushed the page's upgrade past
// 10,240 bytes saw nothing on the server's side. The gateway now checks
// the bound itself (net/http's own is a ceiling well above it): the
// answer is still 431, before any $connect, and it is logged as other
// refusals are, with the size and the bound, a few a minute. The bound is
// exact also for a request after the first on a kept-alive connection,
// which net/http let pass by up to 4,096 bytes.
func TestARequestOverTheHeaderBoundIsLoggedAsARefusal(t *testing.T) {
	var logs syncBuffer
	h := newFakeHandler()
	clock := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	_, addr := start(t, h, Options{
		Now:    func() time.Time { return clock },
		Logger: slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelInfo})),
	})
	const cookie = "Cookie: session=" // what pushes a page's headers over
	if got := rawRequest(t, addr, []byte(upgradeRequest(addr, "/?tag=over", maxHeaderBytes+1, cookie+"abc\r\n"))); got != http.StatusRequestHeaderFieldsTooLarge {
		t.Errorf("an upgrade of %d bytes: %d, want 431", maxHeaderBytes+1, got)
	}
	got := logs.lines()
	if len(got) != 1 || !strings.Contains(got[0], "connect refused") || !strings.Contains(got[0], "status=431") ||
		!strings.Contains(got[0], "10241 bytes") || !strings.Contains(got[0], "at most 10240") || !strings.Contains(got[0], "cookies") {
		t.Fatalf("after an upgrade over the bound the log is %q; want one refusal, 431, saying its size, the bound and the cookies", got)
	}
	if strings.Contains(got[0], "abc") {
		t.Errorf("the log quotes the cookie: %s", got[0])
	}
	// The live page's request, or a Management API call, is not a connect.
	page := "GET / HTTP/1.1\r\nHost: " + addr + "\r\n" + cookie + strings.Repeat("c", maxHeaderBytes) + "\r\n\r\n"
	if got := rawRequest(t, addr, []byte(page)); got != http.StatusRequestHeaderFieldsTooLarge {
		t.Errorf("a page request over the bound: %d, want 431", got)
	}
	if got := logs.lines(); len(got) != 1 || !strings.Contains(got[0], "request refused") || !strings.Contains(got[0], "status=431") || !strings.Contains(got[0], "path=/") {
		t.Fatalf("after a page request over the bound the log is %q; want one request refused, 431, with its path", got)
	}
	// A few a minute, as the other refusals: a page reloading in a loop
	// does not fill the terminal.
	for range refusalBurst {
		rawRequest(t, addr, []byte(upgradeRequest(addr, "/", maxHeaderBytes+1, "")))
	}
	if got := logs.lines(); len(got) != refusalBurst-2 {
		t.Errorf("%d more in the minute logged %q; want %d lines, %d in all", refusalBurst, got, refusalBurst-2, refusalBurst)
	}
	if n := len(h.find(func(ev event) bool { return ev.RequestContext.EventType == "CONNECT" })); n != 0 {
		t.Errorf("%d $connect calls, want none", n)
	}

	// A kept-alive connection's second request is bounded as its first.
	c, err := net.DialTimeout("tcp", addr, wait)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(wait))
	br := bufio.NewReader(c)
	for i, n := range []int{maxHeaderBytes - 200, maxHeaderBytes + 1} {
		req := "GET /@connections/nope HTTP/1.1\r\nHost: " + addr + "\r\nX-Pad: "
		req += strings.Repeat("p", n-len(req)-len("\r\n\r\n")) + "\r\n\r\n"
		if _, err := io.WriteString(c, req); err != nil {
			t.Fatal(err)
		}
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatalf("request %d: no answer: %v", i+1, err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if over := n > maxHeaderBytes; over != (resp.StatusCode == http.StatusRequestHeaderFieldsTooLarge) {
			t.Errorf("request %d of %d bytes on one connection: %d", i+1, n, resp.StatusCode)
		}
	}
}

// API Gateway takes a WebSocket URL of at most 4,096 characters (a hard
// quota). The gateway took any that fitted in the headers' bound, so a
// client whose URL grew (many topics in ?topic=) worked locally and
// failed on AWS. Over it the answer is 414, before any $connect.
func TestAnUpgradeURLOverAPIGatewaysLengthIsRefused(t *testing.T) {
	h := newFakeHandler()
	_, addr := start(t, h, Options{Stage: "dev"})
	target := func(tag string, n int) string {
		u := "/dev?tag=" + tag + "&pad="
		return u + strings.Repeat("p", n-len(u))
	}
	if got := rawRequest(t, addr, []byte(upgradeRequest(addr, target("fits", maxURLLength), 0, ""))); got != http.StatusSwitchingProtocols {
		t.Errorf("an upgrade URL of %d characters: %d, want 101", maxURLLength, got)
	}
	if got := rawRequest(t, addr, []byte(upgradeRequest(addr, target("over", maxURLLength+1), 0, ""))); got != http.StatusRequestURITooLong {
		t.Errorf("an upgrade URL of %d characters: %d, want 414", maxURLLength+1, got)
	}
	if n := len(h.find(func(ev event) bool { return ev.RequestContext.EventType == "CONNECT" })); n != 1 {
		t.Errorf("%d $connect calls, want 1 (the URL within the bound)", n)
	}
}

// Go's query parsing drops a pair holding a raw ';' or a malformed
// %-escape, so ?topic=news;sport reached $connect with no topic, which is
// every topic: a client got what it never asked for. Such a query string
// is refused 400 before any $connect, saying how to escape it; an escaped
// one is passed on.
func TestAQueryStringGoWouldCutIsRefused(t *testing.T) {
	h := newFakeHandler()
	_, addr := start(t, h, Options{Stage: "dev"})
	for _, target := range []string{"/dev?geek=alice&topic=news;sport", "/dev?geek=alice&topic=%zz", "/dev?geek=alice;topic=news"} {
		if got := rawRequest(t, addr, []byte(upgradeRequest(addr, target, 0, ""))); got != http.StatusBadRequest {
			t.Errorf("an upgrade to %s: %d, want 400", target, got)
		}
	}
	if got := rawRequest(t, addr, []byte(upgradeRequest(addr, "/dev?geek=alice&topic=news%3Bsport", 0, ""))); got != http.StatusSwitchingProtocols {
		t.Errorf("an upgrade with an escaped ';': %d, want 101", got)
	}
	connects := h.find(func(ev event) bool { return ev.RequestContext.EventType == "CONNECT" })
	if len(connects) != 1 || connects[0].QueryStringParameters["topic"] != "news;sport" {
		t.Errorf("$connect calls %+v, want 1, with the topic news;sport", connects)
	}
}

// A client may offer its subprotocols on more than one
// Sec-WebSocket-Protocol line, the same as one line listing them all
// (RFC 6455 §11.3.4), and the routes read every line (a chatter ID on one,
// "socks" on another). The gateway looked for the handler's choice on the
// first line only, and answered a 101 naming none, which a browser fails.
func TestASubprotocolOfferedOnAnyLineIsSelected(t *testing.T) {
	h := newFakeHandler()
	h.connect = func(ev event) (response, error) {
		return response{StatusCode: 200, Headers: map[string]string{"Sec-WebSocket-Protocol": "socks"}}, nil
	}
	_, addr := start(t, h, Options{})
	for _, lines := range [][]string{
		{"sc_x", "socks"},
		{"a, b", " c ,socks "},
		{"socks"},
	} {
		extra := ""
		for _, l := range lines {
			extra += "Sec-WebSocket-Protocol: " + l + "\r\n"
		}
		c, err := net.DialTimeout("tcp", addr, wait)
		if err != nil {
			t.Fatal(err)
		}
		_ = c.SetDeadline(time.Now().Add(wait))
		if _, err := c.Write([]byte(upgradeRequest(addr, "/", 0, extra))); err != nil {
			t.Fatal(err)
		}
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		c.Close()
		if err != nil {
			t.Fatal(err)
		}
		if got := resp.Header.Values("Sec-Websocket-Protocol"); resp.StatusCode != http.StatusSwitchingProtocols || len(got) != 1 || got[0] != "socks" {
			t.Errorf("offered on the lines %q: %d with the subprotocol %q, want 101 selecting socks", lines, resp.StatusCode, got)
		}
	}
}

// On a gateway that requires signatures, the body is part of what is
// signed, and a body over 128 KB was left unverified, to be refused 413
// by a POST: but a GET or DELETE never looks at its body, so any call
// bearing the access key (which every signed call shows, in the clear on
// plain HTTP) and the time, with a made-up signature and a body over
// 128 KB, read or closed any connection. Every call with such a body is
// refused 413 before anything is done, whatever its signature.
func TestAnOversizedBodyDoesNotPassForASignature(t *testing.T) {
	h := newFakeHandler()
	creds := &Credentials{AccessKeyID: "AKSOCKSTEST", SecretAccessKey: "s3cret-for-the-test"}
	g, addr := start(t, h, Options{Credentials: creds})
	ws, id := connect(t, h, addr)
	now := time.Now().UTC()
	for _, method := range []string{http.MethodGet, http.MethodDelete, http.MethodPost} {
		for _, chunked := range []bool{false, true} {
			body := io.Reader(bytes.NewReader(bytes.Repeat([]byte("x"), pubsub.MaxMessageBytes+1)))
			if chunked {
				body = io.MultiReader(body) // no length: sent chunked
			}
			req, err := http.NewRequestWithContext(ctxT(t), method, "http://"+addr+"/@connections/"+url.PathEscape(id), body)
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set("X-Amz-Date", now.Format("20060102T150405Z"))
			req.Header.Set("Authorization", "AWS4-HMAC-SHA256 Credential="+creds.AccessKeyID+"/"+now.Format("20060102")+
				"/us-east-1/execute-api/aws4_request, SignedHeaders=host;x-amz-date, Signature=00")
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusRequestEntityTooLarge {
				t.Errorf("%s with a made-up signature and a body over 128 KB (chunked %v): %d %s, want 413", method, chunked, resp.StatusCode, b)
			}
		}
	}
	if g.Count() != 1 {
		t.Fatalf("Count = %d; the unsigned DELETE closed the connection", g.Count())
	}
	if err := ws.WriteMessage(websocket.TextMessage, []byte("still here")); err != nil {
		t.Fatal(err)
	}
	h.waitFor(t, "the client's message", func(ev event) bool { return ev.Body == "still here" })
}

// A POST whose body ends before its Content-Length (the producer died or
// its connection broke mid-send) was delivered cut short, as a message of
// its own, and answered 200: net/http reports the early end as
// io.ErrUnexpectedEOF, which reading one byte past the length took for
// the end of a body of the declared length. It is 400, and the client
// gets nothing.
func TestAPostWhoseBodyIsCutShortIsNotDelivered(t *testing.T) {
	h := newFakeHandler()
	g, addr := start(t, h, Options{})
	ws, id := connect(t, h, addr)
	c, err := net.DialTimeout("tcp", addr, wait)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(wait))
	fmt.Fprintf(c, "POST /@connections/%s HTTP/1.1\r\nHost: %s\r\nAuthorization: x\r\nContent-Length: 20\r\n\r\n{\"cut\":", url.PathEscape(id), addr)
	_ = c.(*net.TCPConn).CloseWrite()
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest {
		t.Errorf("a body of 7 of its 20 bytes: %d, want 400", resp.StatusCode)
	}
	if err := g.Pusher().Post(ctxT(t), id, []byte("next")); err != nil {
		t.Fatal(err)
	}
	if got := string(readMessage(t, ws)); got != "next" {
		t.Errorf("the client got %q, want only the next message", got)
	}
}

// An upgrade request with a body cannot open: the WebSocket library
// drops a connection whose first bytes came before its 101. It was
// dropped after its $connect had accepted and recorded it, without an
// answer; it is 400 before any $connect, as a bad key is.
func TestAnUpgradeWithABodyNeverReachesConnect(t *testing.T) {
	h := newFakeHandler()
	_, addr := start(t, h, Options{})
	for _, body := range []string{"Content-Length: 3\r\n\r\nabc", "Transfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n"} {
		raw := strings.TrimSuffix(upgradeRequest(addr, "/?tag=body", 0, ""), "\r\n") + body
		if got := rawRequest(t, addr, []byte(raw)); got != http.StatusBadRequest {
			t.Errorf("an upgrade with %q: %d, want 400", body, got)
		}
	}
	if n := len(h.find(func(ev event) bool { return ev.RequestContext.EventType == "CONNECT" })); n != 0 {
		t.Errorf("%d $connect calls, want none", n)
	}
	// An empty body declared is none.
	raw := strings.TrimSuffix(upgradeRequest(addr, "/?tag=empty", 0, ""), "\r\n") + "Content-Length: 0\r\n\r\n"
	if got := rawRequest(t, addr, []byte(raw)); got != http.StatusSwitchingProtocols {
		t.Errorf("an upgrade with Content-Length: 0: %d, want 101", got)
	}
}

// pieces is a body that comes in pieces of at most size bytes, and
// records the largest buffer a Read was given.
type pieces struct {
	data    []byte
	size    int
	largest int
}

func (p *pieces) Read(b []byte) (int, error) {
	p.largest = max(p.largest, len(b))
	if len(p.data) == 0 {
		return 0, io.EOF
	}
	n := copy(b[:min(len(b), p.size)], p.data)
	p.data = p.data[n:]
	return n, nil
}

// A POST's body of a declared length was allocated whole before any of
// it came: a local process could declare 128 KB, send nothing, and hold
// that much for 30 s on each of its connections. What is allocated
// before the bytes come is bounded (a small body still in one piece of
// its size); a larger body grows as they arrive, and is read whole.
func TestAPostsBodyIsAllocatedAsItArrives(t *testing.T) {
	for _, n := range []int{0, 1, 100, bodyChunk - 1, bodyChunk, bodyChunk + 1, 3 * bodyChunk, pubsub.MaxMessageBytes} {
		want := bytes.Repeat([]byte("x"), n)
		body := &pieces{data: want, size: 1000}
		r := &http.Request{ContentLength: int64(n), Body: io.NopCloser(body)}
		got, err := readBody(r)
		if err != nil || !bytes.Equal(got, want) {
			t.Errorf("a body of %d bytes: %d bytes read, %v", n, len(got), err)
		}
		if cap(got) > n+1 {
			t.Errorf("a body of %d bytes is held in %d", n, cap(got))
		}
		if n < bodyChunk && body.largest != n+1 {
			t.Errorf("a body of %d bytes was read into %d, want one piece of its size and one more", n, body.largest)
		}
	}
	// Declared, and nothing comes.
	body := &pieces{size: 1}
	r := &http.Request{ContentLength: pubsub.MaxMessageBytes, Body: io.NopCloser(io.MultiReader(body, iotest.ErrReader(io.ErrUnexpectedEOF)))}
	if _, err := readBody(r); err == nil {
		t.Error("a body that never came was read")
	}
	if body.largest > bodyChunk {
		t.Errorf("a body of %d bytes declared, none sent: %d bytes allocated for it, want at most %d", pubsub.MaxMessageBytes, body.largest, bodyChunk)
	}
}

// TestHeadBytesIsTheSizeOfTheHeadAsAClientWritesIt: net/http keeps no
// count of the bytes of a request's line and headers; the gateway counts
// them back from the request it parsed, Host and Transfer-Encoding (which
// net/http takes out of the header) included, exactly for a head written
// with one space after each colon.
func TestHeadBytesIsTheSizeOfTheHeadAsAClientWritesIt(t *testing.T) {
	for _, tc := range []struct{ name, head string }{
		{"an upgrade", "GET /dev?geek=alice&topic=news HTTP/1.1\r\nHost: 127.0.0.1:8765\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\nCookie: a=1; b=2\r\n\r\n"},
		{"a chunked post", "POST /@connections/abc HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\nAuthorization: AWS4-HMAC-SHA256 x\r\n\r\n"},
		{"a header given twice", "GET / HTTP/1.1\r\nHost: h\r\nCookie: a=1\r\nCookie: b=2\r\n\r\n"},
		{"a post with a length", "POST /@connections/abc HTTP/1.1\r\nHost: h\r\nContent-Length: 0\r\n\r\n"},
		{"HTTP/1.0 without a host", "GET /socks.js HTTP/1.0\r\nAccept: */*\r\n\r\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, err := http.ReadRequest(bufio.NewReader(strings.NewReader(tc.head)))
			if err != nil {
				t.Fatal(err)
			}
			if got := headBytes(r); got != len(tc.head) {
				t.Errorf("headBytes %d; want %d", got, len(tc.head))
			}
		})
	}
}
