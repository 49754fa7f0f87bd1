package serve

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	rpprof "runtime/pprof"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/socks-dev/socks/backend"
	"github.com/socks-dev/socks/commands/cmdutil"
	"github.com/socks-dev/socks/config"
	"github.com/socks-dev/socks/gateway"
	"github.com/socks-dev/socks/iostreams"
	"github.com/socks-dev/socks/local"
	"github.com/socks-dev/socks/pubsub"
	"github.com/socks-dev/socks/routes"
	"github.com/socks-dev/socks/store"
)

// openState opens the local backend on state dir dir, each call a
// backend of its own (closed when the test ends), as separate processes
// on one state dir would.
func openState(t *testing.T, dir string) func(context.Context) (*backend.Backend, error) {
	return func(ctx context.Context) (*backend.Backend, error) {
		db, err := local.Open(ctx, filepath.Join(dir, "socks.db"), local.Options{})
		if err != nil {
			return nil, err
		}
		t.Cleanup(func() { db.Close() })
		return &backend.Backend{Config: config.Config{Backend: config.BackendLocal, StateDir: dir}, Store: db.Store(), Queue: db.Queue(), DB: db}, nil
	}
}

func testOptions(t *testing.T) *Options {
	dir := t.TempDir()
	open := openState(t, dir)
	ios, _, _, _ := iostreams.Test()
	return &Options{
		IO: ios, Backend: open, Now: time.Now, Addr: "127.0.0.1:0",
		IdleTimeout: time.Minute, MaxDuration: time.Hour, Concurrency: 4, Quiet: true,
		MaxTopics: pubsub.MaxTopicsPerConnection, MaxConnectionsPerGeek: routes.DefaultMaxConnectionsPerGeek,
		MaxConnections: 100, MaxQueuedBytes: gateway.DefaultMaxQueuedBytes, MaxFramesPerSecond: gateway.DefaultMaxFramesPerSecond,
	}
}

// startServe runs serve with opts until it is listening, and returns a
// function that stops it and fails t if it ended with an error.
func startServe(t *testing.T, opts *Options) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan struct{})
	opts.Ready = func(string, string) { close(ready) }
	done := make(chan error, 1)
	go func() { done <- Run(ctx, opts) }()
	select {
	case <-ready:
	case err := <-done:
		cancel()
		t.Fatalf("serve: %v", err)
	case <-time.After(30 * time.Second):
		cancel()
		t.Fatal("serve did not start")
	}
	return func() {
		t.Helper()
		cancel()
		if err := <-done; err != nil {
			t.Fatalf("serve: %v", err)
		}
	}
}

func TestPprofIsRefusedOffLoopback(t *testing.T) {
	for _, addr := range []string{"0.0.0.0:6060", ":6060", "192.168.1.20:6060", "[::]:6060", "example.com:6060", "6060"} {
		t.Run(addr, func(t *testing.T) {
			opts := testOptions(t)
			opts.Pprof = addr
			opts.Backend = func(context.Context) (*backend.Backend, error) {
				t.Fatal("opened the backend before checking --pprof")
				return nil, nil
			}
			err := Run(context.Background(), opts)
			var fe *cmdutil.FlagError
			if !errors.As(err, &fe) || !strings.Contains(err.Error(), "--pprof") || !strings.Contains(err.Error(), "loopback") {
				t.Fatalf("Run = %v, want a usage error saying --pprof is loopback only", err)
			}
		})
	}
}

// TestPprofTakesEveryNameOfLocalhost: "localhost." (fully qualified) and
// "LOCALHOST" name loopback as "localhost" does; "localhost." was refused
// as not loopback.
func TestPprofTakesEveryNameOfLocalhost(t *testing.T) {
	for _, addr := range []string{"localhost:0", "localhost.:0", "LOCALHOST:0", "127.0.0.1:0"} {
		ln, err := listenPprof(addr)
		if err != nil {
			t.Errorf("--pprof %s: %v; want it taken", addr, err)
			continue
		}
		if !isLoopback(ln.Addr()) {
			t.Errorf("--pprof %s listens on %s", addr, ln.Addr())
		}
		ln.Close()
	}
}

// addrListener is a listener that says it listens on addr.
type addrListener struct {
	net.Listener
	addr net.Addr
}

func (l addrListener) Addr() net.Addr { return l.addr }

// TestPprofNamedLoopbackThatResolvesElsewhereIsRefused: --pprof
// localhost:PORT is checked by name first, and a hosts file can point
// localhost anywhere; where the listener actually listens decides.
func TestPprofNamedLoopbackThatResolvesElsewhereIsRefused(t *testing.T) {
	for _, tc := range []struct {
		at   net.Addr
		want bool
	}{
		{&net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 6060}, true},
		{&net.TCPAddr{IP: net.IPv6loopback, Port: 6060}, true},
		{&net.TCPAddr{IP: net.IPv4(192, 168, 1, 20), Port: 6060}, false},
		{&net.TCPAddr{IP: net.IPv4zero, Port: 6060}, false},
		{&net.UnixAddr{Name: "/tmp/x", Net: "unix"}, false},
	} {
		err := onLoopback(addrListener{addr: tc.at}, "localhost:6060")
		if tc.want && err != nil {
			t.Errorf("listening on %s: %v; want it taken", tc.at, err)
		}
		var fe *cmdutil.FlagError
		if !tc.want && (!errors.As(err, &fe) || !strings.Contains(err.Error(), "not on loopback")) {
			t.Errorf("listening on %s: %v; want a usage error saying it is not loopback", tc.at, err)
		}
	}
}

// TestTimeoutsPastAPIGatewaysAreUsageErrors: API Gateway closes a
// connection after 10 minutes idle and 2 hours in all, whatever one
// asks; the flags may shorten them, not lengthen them. A longer
// --max-duration also wrote records that `socks prune-stale` (for which
// 2 hours is dead) deleted under live connections, which then got
// nothing.
func TestTimeoutsPastAPIGatewaysAreUsageErrors(t *testing.T) {
	for _, tc := range []struct {
		idle, dur time.Duration
		flag      string // "" when accepted
	}{
		{pubsub.IdleTimeout, pubsub.MaxConnectionDuration, ""},
		{time.Second, time.Minute, ""},
		{pubsub.IdleTimeout + time.Second, pubsub.MaxConnectionDuration, "--idle-timeout"},
		{pubsub.IdleTimeout, pubsub.MaxConnectionDuration + time.Second, "--max-duration"},
	} {
		opts := testOptions(t)
		opts.IdleTimeout, opts.MaxDuration = tc.idle, tc.dur
		err := opts.checkLimits()
		var fe *cmdutil.FlagError
		switch {
		case tc.flag == "" && err != nil:
			t.Errorf("--idle-timeout %v --max-duration %v: %v", tc.idle, tc.dur, err)
		case tc.flag != "" && (!errors.As(err, &fe) || !strings.HasPrefix(err.Error(), tc.flag)):
			t.Errorf("--idle-timeout %v --max-duration %v: %v; want a usage error about %s", tc.idle, tc.dur, err, tc.flag)
		}
	}
}

func TestABadStageIsAUsageErrorBeforeAnythingOpens(t *testing.T) {
	for _, stage := range []string{"a/b", "dev stage", "../x", "é"} {
		t.Run(stage, func(t *testing.T) {
			opts := testOptions(t)
			opts.Stage = stage
			opts.Backend = func(context.Context) (*backend.Backend, error) {
				t.Fatal("opened the backend before checking --stage")
				return nil, nil
			}
			err := Run(context.Background(), opts)
			var fe *cmdutil.FlagError
			if !errors.As(err, &fe) || !strings.HasPrefix(err.Error(), "--stage") {
				t.Fatalf("Run = %v, want a usage error about --stage", err)
			}
		})
	}
}

func TestPprofServesProfilesOnLoopback(t *testing.T) {
	opts := testOptions(t)
	opts.Pprof = "127.0.0.1:0"
	ios, _, _, errOut := iostreams.Test()
	opts.IO = ios
	stop := startServe(t, opts)
	m := regexp.MustCompile(`profiles on (http://127\.0\.0\.1:\d+/debug/pprof/)`).FindStringSubmatch(errOut.String())
	if m == nil {
		t.Fatalf("serve did not say where the profiles are: %q", errOut)
	}
	resp, err := http.Get(m[1] + "goroutine?debug=1")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), "goroutine profile") {
		t.Fatalf("GET goroutine profile: %s %.200q", resp.Status, body)
	}
	stop()
}

// TestPprofLetsGoOfStalledAndIdleConnections: the profiles' server, like
// the gateway's, answers a request whose body stops coming and closes
// it, and closes a kept-alive connection that sends no next request,
// instead of holding either (a socket and a goroutine each) for ever.
func TestPprofLetsGoOfStalledAndIdleConnections(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := pprofServer(50*time.Millisecond, 50*time.Millisecond, time.Minute)
	go func() { _ = srv.Serve(ln) }()
	defer srv.Close()
	addr := ln.Addr().String()
	for _, tc := range []struct{ name, req string }{
		{"a body that stops coming", "GET /debug/pprof/cmdline HTTP/1.1\r\nHost: " + addr + "\r\nContent-Length: 100\r\n\r\nonly a part"},
		{"a refused request whose body stops coming", "POST /debug/pprof/cmdline HTTP/1.1\r\nHost: rebind.attacker.example\r\nContent-Length: 100\r\n\r\nonly a part"},
		{"a kept-alive connection left idle", "GET /debug/pprof/cmdline HTTP/1.1\r\nHost: " + addr + "\r\n\r\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := net.Dial("tcp", addr)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			_ = c.SetDeadline(time.Now().Add(5 * time.Second))
			fmt.Fprint(c, tc.req)
			r := bufio.NewReader(c)
			resp, err := http.ReadResponse(r, nil)
			if err != nil {
				t.Fatalf("no answer: %v", err)
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if _, err := r.ReadByte(); err != io.EOF {
				t.Fatalf("status %d, then %v; want the connection closed (EOF)", resp.StatusCode, err)
			}
		})
	}
}

// TestPprofBoundsRequestHeadersAsTheGateway: the profiles' server took
// net/http's default of 1 MB of request line and headers, where the
// gateway's takes 10,240 bytes (a block of tiny headers that size costs
// some 26 MB to parse). It is bounded the same: 431 over it.
func TestPprofBoundsRequestHeadersAsTheGateway(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := pprofServer(pprofBodyWait, pprofIdle, pprofWrite)
	go func() { _ = srv.Serve(ln) }()
	defer srv.Close()
	addr := ln.Addr().String()
	status := func(n int) int {
		t.Helper()
		head := "GET /debug/pprof/cmdline HTTP/1.1\r\nHost: " + addr + "\r\nX-Pad: "
		req := head + strings.Repeat("p", n-len(head)-len("\r\n\r\n")) + "\r\n\r\n"
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(5 * time.Second))
		go func() { _, _ = io.WriteString(c, req) }()
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			t.Fatalf("no answer: %v", err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if got := status(gateway.MaxRequestHeaderBytes); got != http.StatusOK {
		t.Errorf("a request of %d bytes: %d, want 200", gateway.MaxRequestHeaderBytes, got)
	}
	for _, n := range []int{gateway.MaxRequestHeaderBytes + 1, 100_000} {
		if got := status(n); got != http.StatusRequestHeaderFieldsTooLarge {
			t.Errorf("a request of %d bytes: %d, want 431", n, got)
		}
	}
}

// TestPprofLetsGoOfAClientThatReadsNothing: the profiles' server had no
// write deadline, so a client that asked for a large answer (all the
// goroutines' stacks) and read none of it held the server's goroutine,
// blocked in a write, and the socket for ever. Now its write deadline
// lets it go: the connection is closed.
func TestPprofLetsGoOfAClientThatReadsNothing(t *testing.T) {
	// An answer far larger than the two sockets' buffers together.
	stop := make(chan struct{})
	defer close(stop)
	var deep func(n int)
	deep = func(n int) {
		if n > 0 {
			deep(n - 1)
			return
		}
		<-stop
	}
	var dump strings.Builder
	for i := 0; i < 40 && dump.Len() < 4<<20; i++ {
		for range 100 {
			go deep(30)
		}
		dump.Reset()
		_ = rpprof.Lookup("goroutine").WriteTo(&dump, 2)
	}
	if dump.Len() < 4<<20 {
		t.Fatalf("the goroutines' stacks are %d bytes; want an answer larger than the sockets' buffers", dump.Len())
	}

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := pprofServer(time.Minute, time.Minute, 50*time.Millisecond)
	closed := make(chan struct{})
	srv.ConnState = func(c net.Conn, s http.ConnState) {
		switch s {
		case http.StateNew:
			_ = c.(*net.TCPConn).SetWriteBuffer(4096)
		case http.StateClosed, http.StateHijacked:
			close(closed)
		}
	}
	go func() { _ = srv.Serve(ln) }()
	defer srv.Close()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.(*net.TCPConn).SetReadBuffer(4096)
	fmt.Fprintf(c, "GET /debug/pprof/goroutine?debug=2 HTTP/1.1\r\nHost: %s\r\n\r\n", ln.Addr())
	select {
	case <-closed:
	case <-time.After(30 * time.Second):
		t.Fatal("a client that reads nothing still holds its connection after 30 s; want it closed at the write deadline")
	}
}

// TestPprofServesACPUProfile: the write deadline does not cut a CPU
// profile or a trace short (net/http/pprof adds the seconds it collects
// for to the server's WriteTimeout).
func TestPprofServesACPUProfile(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := pprofServer(pprofBodyWait, pprofIdle, pprofWrite)
	go func() { _ = srv.Serve(ln) }()
	defer srv.Close()
	for _, path := range []string{"/debug/pprof/profile?seconds=1", "/debug/pprof/trace?seconds=1"} {
		resp, err := http.Get("http://" + ln.Addr().String() + path)
		if err != nil {
			t.Fatal(err)
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil || resp.StatusCode != http.StatusOK || len(body) == 0 {
			t.Errorf("GET %s: %s, %d bytes, %v; want a profile", path, resp.Status, len(body), err)
		}
	}
}

// TestPprofRefusesAProfileLongerThanItsCap: a CPU profile, trace or
// delta profile lasted whatever its ?seconds= asked (a day held a
// connection, and the CPU profiler, for a day). Past pprofMaxSeconds it
// is refused at once, 400, in words, whether seconds comes in the query
// or in a form body (net/http/pprof reads either).
func TestPprofRefusesAProfileLongerThanItsCap(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := pprofServer(pprofBodyWait, pprofIdle, pprofWrite)
	go func() { _ = srv.Serve(ln) }()
	defer srv.Close()
	// A guard, not a measure: a refusal comes at once, a profile of a
	// day would hang the test.
	client := &http.Client{Timeout: 30 * time.Second}
	base := "http://" + ln.Addr().String()
	for _, tc := range []struct{ name, method, path, form string }{
		{"a CPU profile of a day", http.MethodGet, "/debug/pprof/profile?seconds=86400", ""},
		{"a CPU profile one second over", http.MethodGet, "/debug/pprof/profile?seconds=61", ""},
		{"a trace of an hour", http.MethodGet, "/debug/pprof/trace?seconds=3600", ""},
		{"a trace of a fraction over", http.MethodGet, "/debug/pprof/trace?seconds=60.5", ""},
		{"a trace of 1e9 seconds", http.MethodGet, "/debug/pprof/trace?seconds=1e9", ""},
		{"a trace of Inf seconds", http.MethodGet, "/debug/pprof/trace?seconds=Inf", ""},
		{"a trace of NaN seconds", http.MethodGet, "/debug/pprof/trace?seconds=NaN", ""},
		{"a delta heap profile of a day", http.MethodGet, "/debug/pprof/heap?seconds=86400", ""},
		{"a CPU profile of a day asked in a form", http.MethodPost, "/debug/pprof/profile", "seconds=86400"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req, err := http.NewRequest(tc.method, base+tc.path, strings.NewReader(tc.form))
			if err != nil {
				t.Fatal(err)
			}
			if tc.form != "" {
				req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			}
			resp, err := client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusBadRequest || !strings.Contains(string(body), "at most 60 seconds") {
				t.Errorf("%s %s: %s %q; want 400 saying a profile lasts at most 60 seconds", tc.method, tc.path, resp.Status, body)
			}
		})
	}
}

// TestPprofCapPassesWhatItAllows: the cap lets through a length up to
// it, and what net/http/pprof itself defaults or refuses (no seconds,
// zero, a word), untouched.
func TestPprofCapPassesWhatItAllows(t *testing.T) {
	for _, q := range []string{"", "?seconds=60", "?seconds=1", "?seconds=0.5", "?seconds=0", "?seconds=-5", "?seconds=abc", "?debug=1"} {
		reached := false
		h := capSeconds(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { reached = true }))
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/debug/pprof/profile"+q, nil))
		if !reached {
			t.Errorf("/debug/pprof/profile%s: %d %q; want it passed to net/http/pprof", q, rec.Code, rec.Body)
		}
	}
}

// TestPprofRefusesAPageRebindingItsNameToLoopback: a web page open in the
// developer's browser can point its own name at 127.0.0.1 (DNS
// rebinding) and then read the profiles as its own origin (the
// command line, goroutine stacks) or start CPU profiles and traces. Such
// a request names the page's host, not a loopback one: it is refused.
func TestPprofRefusesAPageRebindingItsNameToLoopback(t *testing.T) {
	opts := testOptions(t)
	opts.Pprof = "127.0.0.1:0"
	ios, _, _, errOut := iostreams.Test()
	opts.IO = ios
	stop := startServe(t, opts)
	defer stop()
	m := regexp.MustCompile(`profiles on http://(127\.0\.0\.1:\d+)/debug/pprof/`).FindStringSubmatch(errOut.String())
	if m == nil {
		t.Fatalf("serve did not say where the profiles are: %q", errOut)
	}
	_, port, _ := net.SplitHostPort(m[1])
	get := func(host, site string) (int, string) {
		t.Helper()
		req, err := http.NewRequest(http.MethodGet, "http://"+m[1]+"/debug/pprof/cmdline", nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Host = host
		if site != "" {
			req.Header.Set("Sec-Fetch-Site", site)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(body)
	}
	for _, host := range []string{"rebind.attacker.example:" + port, "rebind.attacker.example", "127.0.0.1.attacker.example:" + port} {
		if code, body := get(host, ""); code != http.StatusForbidden || strings.Contains(body, os.Args[0]) {
			t.Errorf("Host %s: %d %.200q, want 403 without the command line", host, code, body)
		}
	}
	for _, host := range []string{m[1], "localhost:" + port, "[::1]:" + port} {
		if code, body := get(host, ""); code != http.StatusOK || !strings.Contains(body, os.Args[0]) {
			t.Errorf("Host %s: %d %.200q, want 200 and the command line", host, code, body)
		}
	}
	// Any page may also send requests to 127.0.0.1 itself, unread
	// (<img src=".../profile?seconds=3600"> starts an hour of CPU
	// profiling): a browser says they come from another site.
	for _, site := range []string{"cross-site", "same-site"} {
		if code, body := get(m[1], site); code != http.StatusForbidden || strings.Contains(body, os.Args[0]) {
			t.Errorf("Sec-Fetch-Site %s: %d %.200q, want 403", site, code, body)
		}
	}
	// The developer's own browser, the address typed or a link of the
	// index page, passes.
	for _, site := range []string{"none", "same-origin"} {
		if code, body := get(m[1], site); code != http.StatusOK {
			t.Errorf("Sec-Fetch-Site %s: %d %.200q, want 200", site, code, body)
		}
	}
}

// TestJSONPrintsEveryEndpoint: with --json, standard output is one JSON
// line whose endpoints are the live ones (a script reads the Management
// API's URL from it, which the plain output gives only on a terminal).
func TestJSONPrintsEveryEndpoint(t *testing.T) {
	opts := testOptions(t)
	opts.JSON = true
	opts.Pprof = "127.0.0.1:0"
	ios, _, out, _ := iostreams.Test()
	opts.IO = ios
	stop := startServe(t, opts)
	line := out.String()
	if strings.Count(line, "\n") != 1 || !strings.HasSuffix(line, "\n") {
		t.Fatalf("stdout is not one line: %q", line)
	}
	var e Endpoints
	dec := json.NewDecoder(strings.NewReader(line))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&e); err != nil {
		t.Fatalf("stdout %q: %v", line, err)
	}
	if !regexp.MustCompile(`^ws://127\.0\.0\.1:\d+/$`).MatchString(e.WebSocket) || !e.Broker || e.StateDir == "" {
		t.Errorf("endpoints %+v", e)
	}
	get := func(url string) (int, string) {
		t.Helper()
		req, err := http.NewRequest(http.MethodGet, url, nil)
		if err != nil {
			t.Fatal(err)
		}
		// Any Authorization header passes on loopback; none is API
		// Gateway's 403.
		req.Header.Set("Authorization", "unsigned")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(body)
	}
	// The Management API: an unknown connection is gone, as on AWS.
	if code, body := get(strings.TrimSuffix(e.Management, "/") + "/@connections/nobody"); code != http.StatusGone {
		t.Errorf("GET %s/@connections/nobody: %d %.200q, want 410", e.Management, code, body)
	}
	if code, _ := get(e.Page); code != http.StatusOK {
		t.Errorf("GET %s (the live page): %d", e.Page, code)
	}
	if code, body := get(e.Pprof + "goroutine?debug=1"); code != http.StatusOK || !strings.Contains(body, "goroutine profile") {
		t.Errorf("GET %sgoroutine: %d %.200q", e.Pprof, code, body)
	}
	stop()
}

func TestReachableAddr(t *testing.T) {
	for _, tc := range []struct {
		name string
		addr net.Addr
		want string
	}{
		{"every IPv4 interface is reached on loopback", &net.TCPAddr{IP: net.IPv4zero, Port: 40123}, "127.0.0.1:40123"},
		{"every interface, dual stack ([::]), is reached on loopback", &net.TCPAddr{IP: net.IPv6unspecified, Port: 40123}, "127.0.0.1:40123"},
		{"a loopback address stays", &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 8765}, "127.0.0.1:8765"},
		{"IPv6 loopback stays, bracketed", &net.TCPAddr{IP: net.IPv6loopback, Port: 8765}, "[::1]:8765"},
		{"a specific interface stays", &net.TCPAddr{IP: net.IPv4(192, 0, 2, 7), Port: 8765}, "192.0.2.7:8765"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := ReachableAddr(tc.addr); got != tc.want {
				t.Errorf("ReachableAddr(%s) = %q; want %q", tc.addr, got, tc.want)
			}
		})
	}
}

func TestThePageGetsChatterIDsOnlyOnTheLocalBackendOnLoopback(t *testing.T) {
	tests := []struct {
		name  string
		addr  net.Addr
		local bool
		want  bool
	}{
		{"local backend on 127.0.0.1", &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 8765}, true, true},
		{"local backend on ::1", &net.TCPAddr{IP: net.IPv6loopback, Port: 8765}, true, true},
		{"aws backend on 127.0.0.1", &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 8765}, false, false},
		{"local backend on every address", &net.TCPAddr{IP: net.IPv4zero, Port: 8765}, true, false},
		{"local backend on every IPv6 address", &net.TCPAddr{IP: net.IPv6unspecified, Port: 8765}, true, false},
		{"local backend on a LAN address", &net.TCPAddr{IP: net.IPv4(192, 168, 1, 20), Port: 8765}, true, false},
		{"a Unix socket", &net.UnixAddr{Name: "/tmp/socks.sock", Net: "unix"}, true, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := pageMayIssue(tt.addr, tt.local, false); got != tt.want {
				t.Errorf("pageMayIssue(%v, local=%v) = %v; want %v", tt.addr, tt.local, got, tt.want)
			}
		})
	}
}

// TestWithRequireSignatureThePageIssuesNoChatterIDs: --require-signature
// on loopback says other processes on this machine are not to be trusted
// with the Management API. The live page's chatter IDs go to any process
// that sends the Origin and Host a browser would (curl -H 'Origin: ...'),
// for any geek, and let it connect as that geek and read what is
// published to them: with the flag the page issues none (paste one).
func TestWithRequireSignatureThePageIssuesNoChatterIDs(t *testing.T) {
	for _, signed := range []bool{false, true} {
		t.Run(fmt.Sprintf("require-signature=%v", signed), func(t *testing.T) {
			opts := testOptions(t)
			opts.RequireSignature = signed
			opts.JSON = true
			ios, _, out, _ := iostreams.Test()
			opts.IO = ios
			stop := startServe(t, opts)
			defer stop()
			var e Endpoints
			if err := json.Unmarshal(out.Bytes(), &e); err != nil {
				t.Fatalf("serve --json printed %q: %v", out, err)
			}
			host := strings.TrimSuffix(strings.TrimPrefix(e.WebSocket, "ws://"), "/")
			req, err := http.NewRequest(http.MethodPost, "http://"+host+"/chatter-id", strings.NewReader(`{"geek":"someone-else"}`))
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set("Origin", "http://"+host)
			req.Header.Set("Content-Type", "application/json")
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			issued := strings.Contains(string(body), `"chatterId":"sc_`)
			if signed && (resp.StatusCode != http.StatusNotFound || issued) {
				t.Errorf("with --require-signature: %s %q; want 404 and no chatter ID", resp.Status, body)
			}
			if !signed && (resp.StatusCode != http.StatusOK || !issued) {
				t.Errorf("without it: %s %q; want a chatter ID (the page's own request)", resp.Status, body)
			}
		})
	}
}

func TestOnlyLoopbackAddressesServeWithoutSignatures(t *testing.T) {
	for _, tc := range []struct {
		ip       string
		loopback bool
	}{
		{"127.0.0.1", true},
		{"127.0.0.2", true},
		{"::1", true},
		{"0.0.0.0", false},
		{"::", false},
		{"192.168.1.10", false},
	} {
		if got := isLoopback(&net.TCPAddr{IP: net.ParseIP(tc.ip), Port: 8765}); got != tc.loopback {
			t.Errorf("isLoopback(%s) = %v; want %v", tc.ip, got, tc.loopback)
		}
	}
}

// TestTheExposedAddressIsNamedAsGiven: serve --addr 0.0.0.0:0 warned that
// "[::]:PORT is reachable beyond this machine": Go listens on 0.0.0.0
// through a dual-stack socket, whose address reads [::]. The warning names
// the host the user gave, with the port the listener holds.
func TestTheExposedAddressIsNamedAsGiven(t *testing.T) {
	for _, tc := range []struct {
		given string
		ln    net.Addr
		want  string
	}{
		{"0.0.0.0:0", &net.TCPAddr{IP: net.IPv6unspecified, Port: 41234}, "0.0.0.0:41234"},
		{"0.0.0.0:8765", &net.TCPAddr{IP: net.IPv6unspecified, Port: 8765}, "0.0.0.0:8765"},
		{"[::]:0", &net.TCPAddr{IP: net.IPv6unspecified, Port: 41234}, "[::]:41234"},
		{"192.168.1.10:0", &net.TCPAddr{IP: net.ParseIP("192.168.1.10"), Port: 41234}, "192.168.1.10:41234"},
		// No host given: every interface, which the listener's address says.
		{":0", &net.TCPAddr{IP: net.IPv6unspecified, Port: 41234}, "[::]:41234"},
	} {
		if got := addrAsGiven(tc.given, tc.ln); got != tc.want {
			t.Errorf("addrAsGiven(%q, %s) = %q; want %q", tc.given, tc.ln, got, tc.want)
		}
	}
}

// TestCtrlCWithARequestThatNeverEndsStillExitsCleanly: Ctrl-C while a
// Management API call is stuck (its body never comes) waits the grace
// period, drops it and ends serve without an error; it used to end with
// "context deadline exceeded" (exit 1).
func TestCtrlCWithARequestThatNeverEndsStillExitsCleanly(t *testing.T) {
	opts := testOptions(t)
	opts.shutdownGrace = 100 * time.Millisecond // the stuck call never ends: any grace runs out
	ios, _, _, errOut := iostreams.Test()
	opts.IO = ios
	mgmt := make(chan string, 1)
	opts.Ready = func(_, m string) { mgmt <- m }
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- Run(ctx, opts) }()
	var addr string
	select {
	case m := <-mgmt:
		addr = strings.TrimPrefix(m, "http://")
	case err := <-done:
		t.Fatalf("serve: %v", err)
	case <-time.After(30 * time.Second):
		t.Fatal("serve did not start")
	}

	// A post that promises 100 bytes and sends none: the 100 Continue
	// says the handler is reading its body.
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(30 * time.Second))
	fmt.Fprintf(c, "POST /@connections/someone HTTP/1.1\r\nHost: %s\r\nAuthorization: unsigned\r\nContent-Length: 100\r\nExpect: 100-continue\r\n\r\n", addr)
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil || !strings.Contains(line, "100 Continue") {
		t.Fatalf("no 100 Continue: %q %v", line, err)
	}

	cancel() // Ctrl-C
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("serve ended with %q; want no error (the stuck call is dropped)", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("serve did not end")
	}
	if s := errOut.String(); strings.Contains(s, "deadline") {
		t.Errorf("stderr %q speaks of deadlines", s)
	}
}

// TestAllowOriginMatchesWhatBrowsersSend: browsers send an origin with its
// scheme and host in lower case and without the default port, so an
// --allow-origin written otherwise still names it.
func TestAllowOriginMatchesWhatBrowsersSend(t *testing.T) {
	opts := testOptions(t)
	opts.AllowOrigins = []string{"HTTPS://App.Example:443", "http://LocalHost:3000", "http://dev.example:80"}
	wsURL := make(chan string, 1)
	opts.Ready = func(ws, _ string) { wsURL <- ws }
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- Run(ctx, opts) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
	}()
	var u string
	select {
	case u = <-wsURL:
	case err := <-done:
		t.Fatalf("serve: %v", err)
	case <-time.After(30 * time.Second):
		t.Fatal("serve did not start")
	}
	for _, tc := range []struct {
		origin  string
		allowed bool
	}{
		{"https://app.example", true},
		{"http://localhost:3000", true},
		{"http://dev.example", true},
		{"https://evil.example", false},
		{"http://app.example", false},
	} {
		// No chatter ID: an allowed origin reaches $connect, which asks
		// for one (401); another is refused before it (403).
		want := http.StatusUnauthorized
		if !tc.allowed {
			want = http.StatusForbidden
		}
		dctx, dcancel := context.WithTimeout(context.Background(), 10*time.Second)
		ws, resp, err := websocket.DefaultDialer.DialContext(dctx, u, http.Header{"Origin": {tc.origin}})
		dcancel()
		if err == nil {
			ws.Close()
			t.Errorf("Origin %s: connected without a chatter ID", tc.origin)
			continue
		}
		if resp == nil || resp.StatusCode != want {
			status := 0
			if resp != nil {
				status = resp.StatusCode
			}
			t.Errorf("Origin %s: status %d (%v); want %d", tc.origin, status, err, want)
		}
	}
}

// TestTwoServesStartedAtOnceOnOneStateDirRunOneGateway: two `socks serve`
// started together on one state dir (each on a free port) must not both
// run: the second says a gateway runs. Both used to pass the check before
// either recorded itself, so both served, the record named only the last,
// and each broker pushed only to its own gateway's clients.
func TestTwoServesStartedAtOnceOnOneStateDirRunOneGateway(t *testing.T) {
	dir := t.TempDir()
	open := openState(t, dir)
	for round := range 5 {
		ctx, cancel := context.WithCancel(context.Background())
		const n = 2
		ready := make(chan struct{}, n)
		done := make(chan error, n)
		gate := make(chan struct{})
		for range n {
			opts := testOptions(t)
			opts.Backend = func(ctx context.Context) (*backend.Backend, error) {
				b, err := open(ctx)
				<-gate // both have opened the state before either checks
				return b, err
			}
			opts.Ready = func(string, string) { ready <- struct{}{} }
			go func() { done <- Run(ctx, opts) }()
		}
		close(gate)
		// One must fail, saying a gateway runs; then the other is serving.
		var err error
		readies, ended := 0, 0
		for readies+ended < n {
			select {
			case err = <-done:
				ended++
			case <-ready:
				readies++
			case <-time.After(30 * time.Second):
				t.Fatalf("round %d: %d serves ready, %d ended", round, readies, ended)
			}
		}
		if readies == n {
			cancel()
			<-done
			<-done
			t.Fatalf("round %d: both serves run on one state dir", round)
		}
		if ended == n {
			t.Fatalf("round %d: both serves ended; the last with %v", round, err)
		}
		if err == nil || !strings.Contains(err.Error(), "already running") {
			t.Fatalf("round %d: the second serve ended with %v; want it to say a gateway is already running", round, err)
		}
		cancel()
		if err := <-done; err != nil {
			t.Fatalf("round %d: serve: %v", round, err)
		}
	}
}

// TestARecordLeftByAKilledGatewayDoesNotBlockTheNextWhenItsPortIsReused:
// a gateway killed with kill -9 leaves its record; once something else
// (another state dir's serve) listens on its port, the record looked alive
// and serve refused to start, naming the dead pid. The gateway lock says
// that no gateway runs.
func TestARecordLeftByAKilledGatewayDoesNotBlockTheNextWhenItsPortIsReused(t *testing.T) {
	other, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	opts := testOptions(t)
	open := opts.Backend
	b, err := open(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range map[string]string{
		backend.MetaGatewayWebSocket:  "ws://" + other.Addr().String() + "/",
		backend.MetaGatewayManagement: "http://" + other.Addr().String(),
		backend.MetaGatewayPID:        "999999",
	} {
		if err := b.DB.SetMeta(context.Background(), k, v); err != nil {
			t.Fatal(err)
		}
	}
	stop := startServe(t, opts)
	got, ok, err := b.DB.GetMeta(context.Background(), backend.MetaGatewayManagement)
	if err != nil || !ok || got == "http://"+other.Addr().String() {
		t.Errorf("the record names %q (%v, %v); want the new gateway", got, ok, err)
	}
	stop()
}

// TestServeRecordsTheRunIDItAnswersWith: serve records its gateway's run
// ID beside its address, and its Management API answers with it, which a
// broker beside it checks on each answer (a program that took the port of
// a serve that stopped answers without it); it goes with the record.
func TestServeRecordsTheRunIDItAnswersWith(t *testing.T) {
	opts := testOptions(t)
	b, err := opts.Backend(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	stop := startServe(t, opts)
	id, ok, err := b.DB.GetMeta(context.Background(), backend.MetaGatewayID)
	if err != nil || !ok || id == "" {
		t.Fatalf("run ID recorded %q (%v, %v)", id, ok, err)
	}
	mgmt, _, _ := b.DB.GetMeta(context.Background(), backend.MetaGatewayManagement)
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, mgmt+"/@connections/nobody", strings.NewReader("x"))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "AWS4-HMAC-SHA256 Credential=local/20260101/us-east-1/execute-api/aws4_request, SignedHeaders=host, Signature=00")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if got := resp.Header.Get(pubsub.GatewayIDHeader); got != id {
		t.Errorf("the gateway answered %d with %s %q; want the recorded %q", resp.StatusCode, pubsub.GatewayIDHeader, got, id)
	}
	stop()
	if v, ok, err := b.DB.GetMeta(context.Background(), backend.MetaGatewayID); err != nil || ok {
		t.Errorf("run ID left behind: %q %v %v", v, ok, err)
	}
}

// TestCtrlCWhileStartingEndsCleanly: Ctrl-C while serve records itself
// ends it as a cancellation, never with an error from inside the
// database ("sql: transaction has already been committed or rolled
// back"), and leaves no record behind.
func TestCtrlCWhileStartingEndsCleanly(t *testing.T) {
	opts := testOptions(t)
	open := opts.Backend
	var b *backend.Backend
	ctx, cancel := context.WithCancel(context.Background())
	opts.Backend = func(ctx context.Context) (*backend.Backend, error) {
		var err error
		b, err = open(ctx)
		cancel() // Ctrl-C as the state file opens
		return b, err
	}
	opts.Ready = func(string, string) { t.Error("serve announced itself after Ctrl-C") }
	err := Run(ctx, opts)
	if err != nil && !errors.Is(err, context.Canceled) {
		t.Errorf("serve = %q; want a cancellation", err)
	}
	if b != nil {
		if v, ok, err := b.DB.GetMeta(context.Background(), backend.MetaGatewayManagement); err != nil || ok {
			t.Errorf("record left behind: %q %v %v", v, ok, err)
		}
	}
}

// holdStore is the local store whose target lookups (the broker's, once it
// has a message in hand) first call hold.
type holdStore struct {
	*local.Store
	hold func()
}

func (s holdStore) FindTargetIDs(ctx context.Context, users, topics []string, now time.Time) ([]string, error) {
	s.hold()
	return s.Store.FindTargetIDs(ctx, users, topics, now)
}

// inHandServe is a serve whose broker holds a message for a connected
// client (in its target lookup) until release is closed.
type inHandServe struct {
	b        *backend.Backend // another handle on the state dir
	url      string           // the gateway's WebSocket URL
	cancel   context.CancelFunc
	awaiting chan struct{} // closed when Ctrl-C's shutdown waits for the broker
	release  chan struct{}
	frames   chan string                  // what the client reads: each message, then the error that ended it
	done     chan error                   // serve's end
	logs     interface{ String() string } // serve's log (stderr): read once it has ended
}

// serveWithAMessageInHand starts serve, connects Friendless (updates) and
// publishes "plays-updated" to it; it returns once the broker has the
// message in hand.
func serveWithAMessageInHand(t *testing.T, tweaks ...func(*Options)) *inHandServe {
	t.Helper()
	opts := testOptions(t)
	ios, _, _, logs := iostreams.Test()
	opts.IO, opts.Quiet = ios, false
	for _, tweak := range tweaks {
		tweak(opts)
	}
	s := &inHandServe{awaiting: make(chan struct{}), release: make(chan struct{}), frames: make(chan string, 4), done: make(chan error, 1), logs: logs}
	inHand := make(chan struct{})
	var once sync.Once
	open := opts.Backend
	opts.Backend = func(ctx context.Context) (*backend.Backend, error) {
		b, err := open(ctx)
		if err != nil {
			return nil, err
		}
		b.Store = holdStore{Store: b.DB.Store(), hold: func() {
			once.Do(func() { close(inHand) })
			<-s.release
		}}
		return b, nil
	}
	opts.awaitingBroker = func() { close(s.awaiting) }
	wsURL := make(chan string, 1)
	opts.Ready = func(ws, _ string) { wsURL <- ws }
	ctx, cancel := context.WithCancel(context.Background())
	s.cancel = cancel
	t.Cleanup(cancel)
	go func() { s.done <- Run(ctx, opts) }()
	var u string
	select {
	case u = <-wsURL:
	case err := <-s.done:
		t.Fatalf("serve: %v", err)
	case <-time.After(30 * time.Second):
		t.Fatal("serve did not start")
	}
	b, err := open(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	s.b, s.url = b, u
	id, _, err := store.IssueChatterID(context.Background(), b.Store, "Friendless", time.Hour, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	dctx, dcancel := context.WithTimeout(context.Background(), 10*time.Second)
	ws, _, err := websocket.DefaultDialer.DialContext(dctx, u+"?geek=Friendless&topic=updates&id="+id, nil)
	dcancel()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ws.Close() })
	go func() {
		defer close(s.frames)
		_ = ws.SetReadDeadline(time.Now().Add(30 * time.Second))
		for {
			_, data, err := ws.ReadMessage()
			if err != nil {
				s.frames <- "error: " + err.Error()
				return
			}
			s.frames <- string(data)
		}
	}()
	if _, err := b.Queue.Send(context.Background(), []byte(`{"id":"m-1","users":["Friendless"],"topics":["updates"],"body":"plays-updated"}`)); err != nil {
		t.Fatal(err)
	}
	select {
	case <-inHand:
	case <-time.After(30 * time.Second):
		t.Fatal("the broker never took the message")
	}
	return s
}

// wait waits for serve to end, without an error.
func (s *inHandServe) wait(t *testing.T) {
	t.Helper()
	select {
	case err := <-s.done:
		if err != nil {
			t.Errorf("serve: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("serve did not end")
	}
}

// TestCtrlCWhileAMessageIsInHandDeliversItBeforeTheCloseFrame: Ctrl-C
// while the broker handles a message lets the broker finish it before
// the gateway closes its clients, so a client connected when it was
// published gets it, then 1001. The two ran at once: the clients were
// closed under the broker's fan-out, which found them gone (410), deleted
// the message and reported it gone, though they were there when it was
// published.
func TestCtrlCWhileAMessageIsInHandDeliversItBeforeTheCloseFrame(t *testing.T) {
	s := serveWithAMessageInHand(t)
	s.cancel() // Ctrl-C with the message in hand
	var got []string
	select {
	case <-s.awaiting: // the shutdown waits for the broker
	case f := <-s.frames: // the gateway closed the client first
		got = append(got, f)
	}
	close(s.release)
	for f := range s.frames {
		got = append(got, f)
	}
	if len(got) != 2 || got[0] != `"plays-updated"` || !strings.Contains(got[1], "1001") {
		t.Errorf("the client read %q; want the message, then the close frame 1001", got)
	}
	s.wait(t)
}

// TestTheShutdownSaysItFinishesMessagesOnlyWhenTheBrokerHoldsSome: serve
// logged "shutting down: finishing the messages in hand" on every Ctrl-C,
// also when its broker held none (and so waited for nothing). It says so
// only when the broker has messages in hand.
func TestTheShutdownSaysItFinishesMessagesOnlyWhenTheBrokerHoldsSome(t *testing.T) {
	const finishing = "shutting down: finishing the messages in hand"
	opts := testOptions(t)
	ios, _, _, errOut := iostreams.Test()
	opts.IO, opts.Quiet = ios, false
	stop := startServe(t, opts)
	stop()
	if logged := errOut.String(); strings.Contains(logged, finishing) || !strings.Contains(logged, "shutting down: closing connections") {
		t.Errorf("an idle serve stopped by Ctrl-C logged:\n%s\nwant the connections closed, and no messages in hand", logged)
	}

	s := serveWithAMessageInHand(t)
	s.cancel()
	<-s.awaiting
	close(s.release)
	s.wait(t)
	if logged := s.logs.String(); !strings.Contains(logged, finishing) {
		t.Errorf("a serve stopped with a message in hand logged:\n%s\nwant %q", logged, finishing)
	}
}

// stuckQueue is the local queue whose receive, once receiving is
// closed, returns only when release is, whatever its context: as one
// does that waits for a state file another process holds locked.
type stuckQueue struct {
	store.Queue
	once               sync.Once
	receiving, release chan struct{}
}

func (q *stuckQueue) Receive(ctx context.Context, _ int, _, _ time.Duration) ([]store.Message, error) {
	q.once.Do(func() { close(q.receiving) })
	<-q.release
	return nil, ctx.Err()
}

// logWatch is serve's log; seen is closed once a write holds want.
type logWatch struct {
	mu   sync.Mutex
	buf  strings.Builder
	want string
	seen chan struct{}
	once sync.Once
}

func (w *logWatch) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf.Write(p)
	if strings.Contains(string(p), w.want) {
		w.once.Do(func() { close(w.seen) })
	}
	return len(p), nil
}

func (w *logWatch) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.String()
}

// TestTheShutdownSaysWhatTheBrokerDidNotFinishWithinTheGrace: a broker
// that held no batch but had not returned when the grace ran out (its
// receive stuck, as on a state file another process holds locked) was
// logged as not having finished "the messages in hand". It is said not
// to have stopped; one that still holds a batch, not to have finished
// the messages in hand. Each grace runs out for certain: the broker is
// let go only once the connections are being closed, after the line.
func TestTheShutdownSaysWhatTheBrokerDidNotFinishWithinTheGrace(t *testing.T) {
	t.Run("idle", func(t *testing.T) {
		opts := testOptions(t)
		opts.Quiet = false
		opts.shutdownGrace = time.Millisecond
		logs := &logWatch{want: "shutting down: closing connections", seen: make(chan struct{})}
		opts.IO.ErrOut = logs
		q := &stuckQueue{receiving: make(chan struct{}), release: make(chan struct{})}
		open := opts.Backend
		opts.Backend = func(ctx context.Context) (*backend.Backend, error) {
			b, err := open(ctx)
			if err != nil {
				return nil, err
			}
			q.Queue, b.Queue = b.Queue, q
			return b, nil
		}
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		done := make(chan error, 1)
		go func() { done <- Run(ctx, opts) }()
		select {
		case <-q.receiving:
		case err := <-done:
			t.Fatalf("serve: %v", err)
		case <-time.After(30 * time.Second):
			t.Fatal("the broker never received")
		}
		cancel() // Ctrl-C, the broker idle in its receive
		select {
		case <-logs.seen:
		case <-time.After(30 * time.Second):
			t.Fatalf("serve did not close its connections; it logged:\n%s", logs.String())
		}
		close(q.release)
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("serve: %v", err)
			}
		case <-time.After(30 * time.Second):
			t.Fatal("serve did not end")
		}
		const want = "shutting down: the broker did not stop within 1ms; closing the connections anyway"
		if logged := logs.String(); !strings.Contains(logged, want) || strings.Contains(logged, "in hand") {
			t.Errorf("a serve whose idle broker did not stop logged:\n%s\nwant %q, and nothing of messages in hand", logged, want)
		}
	})

	t.Run("a message in hand", func(t *testing.T) {
		s := serveWithAMessageInHand(t, func(o *Options) { o.shutdownGrace = time.Millisecond })
		s.cancel()
		<-s.awaiting
		for range s.frames { // until the client is closed, after the line
		}
		close(s.release)
		s.wait(t)
		const want = "shutting down: the broker did not finish the messages in hand within 1ms; closing the connections anyway"
		if logged := s.logs.String(); !strings.Contains(logged, want) {
			t.Errorf("a serve whose broker did not finish its message logged:\n%s\nwant %q", logged, want)
		}
	})
}

// TestAClientConnectingDuringTheShutdownIsToldSo: from Ctrl-C on, while
// the broker finishes the messages in hand, a new client is refused with
// 503 saying that the gateway is shutting down, and a Retry-After. It was
// accepted then (only to be closed with 1001 a moment later), and refused
// with a bare "Service Unavailable" once the connections were closing.
func TestAClientConnectingDuringTheShutdownIsToldSo(t *testing.T) {
	s := serveWithAMessageInHand(t)
	id, _, err := store.IssueChatterID(context.Background(), s.b.Store, "Latecomer", time.Hour, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	s.cancel() // Ctrl-C; the shutdown is held while the broker has the message
	select {
	case <-s.awaiting:
		dctx, dcancel := context.WithTimeout(context.Background(), 10*time.Second)
		ws, resp, err := websocket.DefaultDialer.DialContext(dctx, s.url+"?geek=Latecomer&topic=updates&id="+id, nil)
		dcancel()
		switch {
		case err == nil:
			ws.Close()
			t.Error("a client connected during the shutdown")
		case resp == nil:
			t.Errorf("dial: %v; want a 503", err)
		default:
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusServiceUnavailable || !strings.Contains(string(body), "shutting down") || resp.Header.Get("Retry-After") == "" {
				t.Errorf("got %s %q (Retry-After %q); want 503 saying the gateway is shutting down, with a Retry-After", resp.Status, body, resp.Header.Get("Retry-After"))
			}
		}
	case f := <-s.frames:
		t.Errorf("the client read %q before the broker finished", f)
	}
	close(s.release)
	for range s.frames {
	}
	s.wait(t)
}

// TestAGatewayShuttingDownIsNoLongerFoundByPublishers: from Ctrl-C on,
// the gateway's record is gone, so that `socks publish --wait` (and
// --direct) is told at once that no gateway runs. It stayed while the
// gateway shut down, its broker receiving nothing more, so a publish
// --wait then queued its message and waited for a report until its
// timeout.
func TestAGatewayShuttingDownIsNoLongerFoundByPublishers(t *testing.T) {
	s := serveWithAMessageInHand(t)
	if _, _, err := s.b.Gateway(context.Background()); err != nil {
		t.Fatalf("the running gateway is not found: %v", err)
	}
	s.cancel() // Ctrl-C; the shutdown is held while the broker has the message
	var err error
	select {
	case <-s.awaiting:
		_, _, err = s.b.Gateway(context.Background())
	case f := <-s.frames:
		t.Errorf("the client read %q before the broker finished", f)
	}
	close(s.release)
	if !errors.Is(err, backend.ErrNoGateway) {
		t.Errorf("during the shutdown: Gateway = %v; want ErrNoGateway", err)
	}
	for range s.frames {
	}
	s.wait(t)
}

// TestServeRemovesChatterIDsExpiredADayAgo runs serve on a local state
// dir with a controlled clock and sweep ticks: at start and at each tick
// it deletes the chatter IDs that expired a day or more before now, and
// keeps the rest (live ones, and those expired within the day, which
// `chatter list` still shows and prune-stale deletes).
func TestServeRemovesChatterIDsExpiredADayAgo(t *testing.T) {
	opts := testOptions(t)
	opts.NoBroker = true
	t0 := time.UnixMilli(1_900_000_000_000).UTC()
	setClock, tick, nextSweep := controlSweeps(t, opts, t0)

	b, err := opts.Backend(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []store.ChatterID{
		{Geek: "alice", Hash: "old", IssuedAt: t0.Add(-48 * time.Hour), ExpiresAt: t0.Add(-25 * time.Hour)},
		{Geek: "bob", Hash: "recent", IssuedAt: t0.Add(-2 * time.Hour), ExpiresAt: t0.Add(-time.Hour)},
		{Geek: "carol", Hash: "live", IssuedAt: t0, ExpiresAt: t0.Add(time.Hour)},
	} {
		if err := b.Store.PutChatterID(t.Context(), c); err != nil {
			t.Fatal(err)
		}
	}
	left := func() string {
		t.Helper()
		ids, err := b.Store.ListChatterIDs(t.Context(), "")
		if err != nil {
			t.Fatal(err)
		}
		var hs []string
		for _, c := range ids {
			hs = append(hs, c.Hash)
		}
		return strings.Join(hs, ",")
	}
	wantPass := func(what string, n int, ids string) {
		t.Helper()
		if p := nextSweep(what); p.err != nil || p.chatterIDs != n {
			t.Errorf("%s: the sweep deleted %d chatter IDs, %v; want %d", what, p.chatterIDs, p.err, n)
		}
		if got := left(); got != ids {
			t.Errorf("%s: chatter IDs left %q; want %q", what, got, ids)
		}
	}

	stop := startServe(t, opts)
	defer stop()
	wantPass("at start", 1, "recent,live")
	// Expired for a millisecond under a day, an ID is kept; expired a
	// day ago, it goes.
	setClock(t0.Add(23*time.Hour - time.Millisecond))
	tick <- time.Time{}
	wantPass("a millisecond under a day after bob's expiry", 0, "recent,live")
	setClock(t0.Add(25 * time.Hour))
	tick <- time.Time{}
	wantPass("a day after carol's expiry", 2, "")
}

// TestServeRemovesDeadLettersPastTheirRetention runs serve on a local
// state dir with a controlled clock and sweep ticks: at start and at each
// tick it deletes the dead letters that failed 14 days or more before
// now (store.DeadLetterRetention, as SQS deletes them from socks's
// dead-letter queue), and keeps the younger ones
// (TestDeadLettersAreKeptAsLongAsOnSQS in local has several ages).
func TestServeRemovesDeadLettersPastTheirRetention(t *testing.T) {
	opts := testOptions(t)
	opts.NoBroker = true
	b, err := opts.Backend(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	if _, err := b.Queue.Send(ctx, []byte(`{"n":1}`)); err != nil {
		t.Fatal(err)
	}
	msgs, err := b.Queue.Receive(ctx, 1, time.Minute, 0)
	if err != nil || len(msgs) != 1 {
		t.Fatalf("Receive = %v, %v", msgs, err)
	}
	if err := b.Queue.DeadLetter(ctx, msgs[0], "test"); err != nil {
		t.Fatal(err)
	}
	dls, err := b.Queue.ListDeadLetters(ctx, 0)
	if err != nil || len(dls) != 1 {
		t.Fatalf("ListDeadLetters = %v, %v; want 1", dls, err)
	}
	expires := dls[0].ExpiresAt()

	setClock, tick, nextSweep := controlSweeps(t, opts, expires.Add(-time.Millisecond))
	wantPass := func(what string, n, left int) {
		t.Helper()
		if p := nextSweep(what); p.err != nil || p.deadLetters != n {
			t.Errorf("%s: the sweep deleted %d dead letters, %v; want %d", what, p.deadLetters, p.err, n)
		}
		st, err := b.Queue.Stats(ctx)
		if err != nil || st.Dead != left {
			t.Errorf("%s: %d dead letters left, %v; want %d", what, st.Dead, err, left)
		}
	}

	stop := startServe(t, opts)
	defer stop()
	wantPass("at start, a millisecond before its retention ends", 0, 1)
	setClock(expires)
	tick <- time.Time{}
	wantPass("when its retention ends", 1, 0)
}

// TestServeSweepSaysTheDeadLetterRetentionInDays: the sweep's log line
// (serve's text log) says the retention as a number of days; it said
// "days=14ns", a time.Duration divided by a day.
func TestServeSweepSaysTheDeadLetterRetentionInDays(t *testing.T) {
	opts := testOptions(t)
	b, err := opts.Backend(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.Queue.Send(t.Context(), []byte(`{"n":1}`)); err != nil {
		t.Fatal(err)
	}
	msgs, err := b.Queue.Receive(t.Context(), 1, time.Minute, 0)
	if err != nil || len(msgs) != 1 {
		t.Fatalf("Receive = %v, %v", msgs, err)
	}
	if err := b.Queue.DeadLetter(t.Context(), msgs[0], "test"); err != nil {
		t.Fatal(err)
	}
	opts.Now = func() time.Time { return time.Now().Add(store.DeadLetterRetention + time.Minute) }
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	var p sweep
	opts.swept = func(s sweep) { p = s; cancel() }
	opts.sweepTick = make(chan time.Time)
	var log strings.Builder
	opts.sweepState(ctx, b.Store, b.Queue, cmdutil.NewLogger(&log, false, false))
	if p.deadLetters != 1 {
		t.Fatalf("the sweep deleted %d dead letters, %v; want 1", p.deadLetters, p.err)
	}
	if !regexp.MustCompile(`msg="removed dead letters past their retention" days=14 count=1\n`).MatchString(log.String()) {
		t.Errorf("serve's log:\n%s\nwant the line removing the dead letter to say days=14", log.String())
	}
}

// TestServeRemovesReportsOlderThanADay runs serve on a local state dir
// with a controlled clock and sweep ticks: at start and at each tick it
// deletes the delivery reports older than a day, which no one reads any
// more (a report write deletes only a few on the way), and keeps the
// younger ones.
func TestServeRemovesReportsOlderThanADay(t *testing.T) {
	opts := testOptions(t)
	opts.NoBroker = true
	t0 := time.UnixMilli(1_900_000_000_000).UTC()
	setClock, tick, nextSweep := controlSweeps(t, opts, t0.Add(24*time.Hour))
	b, err := opts.Backend(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	if err := b.Store.PutReport(ctx, store.Report{MessageID: "m-1", Targets: 1, Delivered: 1, At: t0}); err != nil {
		t.Fatal(err)
	}
	wantPass := func(what string, n int, kept bool) {
		t.Helper()
		if p := nextSweep(what); p.err != nil || p.reports != n {
			t.Errorf("%s: the sweep deleted %d reports, %v; want %d", what, p.reports, p.err, n)
		}
		// The state file's own clock (the real one) is years before t0:
		// GetReport finds the report as long as it is in the file.
		_, err := b.Store.GetReport(ctx, "m-1")
		if got := err == nil; got != kept {
			t.Errorf("%s: the report is in the file: %v (%v); want %v", what, got, err, kept)
		}
	}

	stop := startServe(t, opts)
	defer stop()
	wantPass("at start, a day after the report", 0, true)
	setClock(t0.Add(24*time.Hour + time.Millisecond))
	tick <- time.Time{}
	wantPass("a day and a millisecond after the report", 1, false)
}

// TestServeRemovesConnectionRecordsExpiredADayAgo runs serve on a local
// state dir with a controlled clock and sweep ticks: at each tick it
// deletes the connection records that expired a day or more before now,
// left by a $disconnect that never came or failed, which stayed for as
// long as serve ran unless prune-stale ran (at start serve deletes every
// record, its own gateway being the only one).
func TestServeRemovesConnectionRecordsExpiredADayAgo(t *testing.T) {
	opts := testOptions(t)
	opts.NoBroker = true
	t0 := time.UnixMilli(1_900_000_000_000).UTC()
	setClock, tick, nextSweep := controlSweeps(t, opts, t0.Add(24*time.Hour-time.Millisecond))
	b, err := opts.Backend(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	wantPass := func(what string, n int, kept bool) {
		t.Helper()
		if p := nextSweep(what); p.err != nil || p.connections != n {
			t.Errorf("%s: the sweep deleted %d connection records, %v; want %d", what, p.connections, p.err, n)
		}
		_, err := b.Store.GetConnection(ctx, "lost")
		if got := err == nil; got != kept {
			t.Errorf("%s: the record is in the file: %v (%v); want %v", what, got, err, kept)
		}
	}

	stop := startServe(t, opts)
	defer stop()
	nextSweep("at start")
	lost := pubsub.Connection{ID: "lost", Geek: "alice", Topics: []string{"news"}, ConnectedAt: t0.Add(-2 * time.Hour), ExpiresAt: t0}
	if err := b.Store.PutConnection(ctx, lost); err != nil {
		t.Fatal(err)
	}
	tick <- time.Time{}
	wantPass("a millisecond under a day after its expiry", 0, true)
	setClock(t0.Add(24 * time.Hour))
	tick <- time.Time{}
	wantPass("a day after its expiry", 1, false)
}

// TestThePageIsTold429WithRetryAfterWhenTheGeekIsAtItsLimit: a geek that
// already holds as many live chatter IDs as allowed gets no more from the
// live page: 429 in words, with Retry-After the seconds until the first of
// them expires, not 500.
func TestThePageIsTold429WithRetryAfterWhenTheGeekIsAtItsLimit(t *testing.T) {
	ctx := context.Background()
	opts := testOptions(t)
	now := time.Now().Truncate(time.Millisecond)
	opts.Now = func() time.Time { return now }
	opts.JSON = true
	ios, _, out, _ := iostreams.Test()
	opts.IO = ios
	b, err := opts.Backend(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < store.DefaultMaxLiveChatterIDs; i++ {
		ttl := time.Hour
		if i == 37 {
			ttl = 10*time.Minute + 500*time.Millisecond // the first to expire
		}
		if _, _, err := store.IssueChatterID(ctx, b.Store, "Friendless", ttl, now); err != nil {
			t.Fatal(err)
		}
	}
	stop := startServe(t, opts)
	defer stop()
	var e Endpoints
	if err := json.Unmarshal(out.Bytes(), &e); err != nil {
		t.Fatalf("serve --json printed %q: %v", out, err)
	}
	host := strings.TrimSuffix(strings.TrimPrefix(e.WebSocket, "ws://"), "/")
	req, err := http.NewRequest(http.MethodPost, "http://"+host+"/chatter-id", strings.NewReader(`{"geek":"Friendless"}`))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Origin", "http://"+host)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusTooManyRequests {
		t.Fatalf("%s %q; want 429", resp.Status, body)
	}
	if got := resp.Header.Get("Retry-After"); got != "601" {
		t.Errorf("Retry-After %q; want 601 (the first live ID expires in 600.5 s)", got)
	}
	if !strings.Contains(string(body), "already holds 100 live chatter IDs") {
		t.Errorf("body %q; want the refusal in words", body)
	}
}

// controlSweeps gives serve a clock that starts at start and moves only
// by setClock, sweep ticks that come only when the test sends one, and
// nextSweep, which waits for the outcome of the next sweep (what names it
// if none comes within a minute).
func controlSweeps(t *testing.T, opts *Options, start time.Time) (setClock func(time.Time), tick chan<- time.Time, nextSweep func(what string) sweep) {
	var mu sync.Mutex
	clock := start
	opts.Now = func() time.Time { mu.Lock(); defer mu.Unlock(); return clock }
	ticks := make(chan time.Time)
	opts.sweepTick = ticks
	outcomes := make(chan sweep, 1)
	opts.swept = func(p sweep) { outcomes <- p }
	next := func(what string) sweep {
		t.Helper()
		select {
		case p := <-outcomes:
			return p
		case <-time.After(time.Minute):
			t.Fatalf("%s: no sweep within a minute", what)
			return sweep{}
		}
	}
	return func(at time.Time) { mu.Lock(); defer mu.Unlock(); clock = at }, ticks, next
}

// A clean stop leaves how many clients it closed; the next serve waits
// for them only when that stop was within restartWindow, reads the count
// once, and takes anything unreadable for none.
func TestWhatACleanStopLeftIsReadOnceAndOnlyWhileRecent(t *testing.T) {
	b, err := openState(t, t.TempDir())(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	stopped := time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		name  string
		after time.Duration
		want  int
	}{
		{"a moment later", time.Second, 3},
		{"at the window's end", restartWindow, 3},
		{"past the window", restartWindow + time.Millisecond, 0},
		{"a clock set back", -time.Minute, 0},
	} {
		recordClosed(b, 3, stopped)
		got, err := takeClosed(t.Context(), b, stopped.Add(tc.after))
		if err != nil || got != tc.want {
			t.Errorf("%s: %d, %v; want %d", tc.name, got, err, tc.want)
		}
		if again, err := takeClosed(t.Context(), b, stopped.Add(tc.after)); err != nil || again != 0 {
			t.Errorf("%s: read again: %d, %v; want 0 (read once)", tc.name, again, err)
		}
	}
	for _, v := range []string{"", "3", "x@1", "3@x", "-1@1", "3@"} {
		if err := b.DB.SetMeta(t.Context(), backend.MetaGatewayClosed, v); err != nil {
			t.Fatal(err)
		}
		if got, err := takeClosed(t.Context(), b, stopped); err != nil || got != 0 {
			t.Errorf("%q: %d, %v; want 0", v, got, err)
		}
	}
}

// TestAServeAfterACleanStopDoesNotSayItsGatewayWasKilled: the clients a
// clean stop closed (recordClosed) are waited for as a killed gateway's
// are, but nothing of theirs was left to delete: the warning that the
// gateway stopped without closing them (killed?) was wrong, and counted
// them as deleted records. A killed gateway's records are still warned of.
func TestAServeAfterACleanStopDoesNotSayItsGatewayWasKilled(t *testing.T) {
	opts := testOptions(t)
	ios, _, _, errOut := iostreams.Test()
	opts.IO, opts.Quiet = ios, false
	b, err := opts.Backend(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	recordClosed(b, 3, time.Now())
	stop := startServe(t, opts)
	stop()
	logged := errOut.String()
	if strings.Contains(logged, "killed?") || strings.Contains(logged, "deleted the connection records") {
		t.Errorf("after a clean stop serve logged:\n%s", logged)
	}
	if !strings.Contains(logged, "waiting for the clients of the gateway that stopped to reconnect") || !strings.Contains(logged, "clients=3") {
		t.Errorf("serve did not say it waits for the 3 clients closed:\n%s", logged)
	}
}

// TestTheBannerHintIssuesIntoTheStateDirServeRuns: the terminal summary's
// "connect with ...$(socks chatter issue ...)" hint, copied into another
// terminal, must issue the chatter ID where this gateway looks. It said
// `socks chatter issue --geek NAME` under `serve --state-dir DIR` too,
// which issues into the default state dir (or exits 3 when there is
// none), and the gateway then refused the ID with 403.
func TestTheBannerHintIssuesIntoTheStateDirServeRuns(t *testing.T) {
	for _, tc := range []struct {
		source string
		want   func(dir string) string
	}{
		{"default", func(string) string { return "$(socks chatter issue --geek NAME)" }},
		{"flag", func(dir string) string { return "$(socks chatter issue --state-dir '" + dir + "' --geek NAME)" }},
		{"env", func(dir string) string { return "$(socks chatter issue --state-dir '" + dir + "' --geek NAME)" }},
	} {
		t.Run(tc.source, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "my state")
			if err := os.Mkdir(dir, 0o700); err != nil {
				t.Fatal(err)
			}
			opts := testOptions(t)
			open := openState(t, dir)
			opts.Backend = func(ctx context.Context) (*backend.Backend, error) {
				b, err := open(ctx)
				if err == nil {
					b.Config.Sources = map[string]string{"state_dir": tc.source}
				}
				return b, err
			}
			ios, _, _, errOut := iostreams.Test()
			ios.SetTTY(false, false, true)
			ios.SetNoColor(true)
			opts.IO = ios
			stop := startServe(t, opts)
			banner := errOut.String()
			stop()
			if want := tc.want(dir); !strings.Contains(banner, want) {
				t.Errorf("banner lacks %q:\n%s", want, banner)
			}
			if !strings.Contains(banner, "state dir "+dir) {
				t.Errorf("banner does not say where the state is (%s):\n%s", dir, banner)
			}
		})
	}
}

// TestTheBannerHintOnTheAWSStoreRepeatsTheFlagsServeWasGiven: `serve
// --backend aws --stack dev ...` hinted `socks chatter issue --geek NAME`,
// which, pasted into another terminal, issues on the local backend (or
// exits 3 there): the hint repeats the AWS flags serve was given, and
// leaves what came from the environment or a profile to them.
func TestTheBannerHintOnTheAWSStoreRepeatsTheFlagsServeWasGiven(t *testing.T) {
	c := config.Config{
		Backend: config.BackendAWS,
		AWS: config.AWS{Stack: "dev", Region: "eu-west-1", DynamoDBEndpointURL: "http://127.0.0.1:8000",
			SQSEndpointURL: "http://127.0.0.1:9324"},
		Sources: map[string]string{"backend": "flag", "stack": "flag", "region": "env",
			"dynamodb_endpoint_url": "flag", "sqs_endpoint_url": "profile dev", "state_dir": "default"},
	}
	want := "socks chatter issue --backend aws --stack dev --dynamodb-endpoint-url http://127.0.0.1:8000 --geek NAME"
	if got := issueHint(c); got != want {
		t.Errorf("hint %q\nwant %q", got, want)
	}
	// On the local backend the state dir is what matters, from wherever
	// it came.
	c = config.Config{Backend: config.BackendLocal, StateDir: "/srv/socks", Sources: map[string]string{"backend": "default", "state_dir": "profile x"}}
	if got, want := issueHint(c), "socks chatter issue --state-dir /srv/socks --geek NAME"; got != want {
		t.Errorf("hint %q\nwant %q", got, want)
	}
}

// TestARefusedConnectIsLoggedWithoutVerbose: a developer whose browser got
// 403 saw nothing on serve's terminal unless -v. At the default level the
// refusal is logged with its status and reason, never the chatter ID.
func TestARefusedConnectIsLoggedWithoutVerbose(t *testing.T) {
	opts := testOptions(t)
	opts.Quiet = false
	ios, _, _, errOut := iostreams.Test()
	opts.IO = ios
	wsURL := make(chan string, 1)
	opts.Ready = func(ws, _ string) { wsURL <- ws }
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- Run(ctx, opts) }()
	var u string
	select {
	case u = <-wsURL:
	case err := <-done:
		cancel()
		t.Fatalf("serve: %v", err)
	case <-time.After(30 * time.Second):
		cancel()
		t.Fatal("serve did not start")
	}
	const secret = "xc_NotAnIssuedChatterIDAtAll0000"
	dctx, dcancel := context.WithTimeout(context.Background(), 10*time.Second)
	ws, resp, err := websocket.DefaultDialer.DialContext(dctx, u+"?geek=alice&id="+secret, nil)
	dcancel()
	if err == nil {
		ws.Close()
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("serve: %v", err)
	}
	if resp == nil || resp.StatusCode != http.StatusForbidden {
		t.Fatalf("dial with an unknown chatter ID: %v; want 403", err)
	}
	// Read once serve has ended: its goroutines wrote errOut.
	logged := errOut.String()
	var line string
	for l := range strings.SplitSeq(logged, "\n") {
		if strings.Contains(l, "connect refused") {
			line = l
		}
	}
	if !strings.Contains(line, "level=INFO") || !strings.Contains(line, "status=403") || !strings.Contains(line, "chatter ID refused: unknown") {
		t.Errorf("serve logged %q; want an Info line saying the connect was refused, with status=403 and why", logged)
	}
	if strings.Contains(logged, secret) {
		t.Errorf("serve logged the chatter ID: %s", logged)
	}
}

// clockedStore is a store whose records carry another clock's times (on
// AWS, AWS's): store.Clock, here the real one.
type clockedStore struct{ store.Store }

func (clockedStore) Now(context.Context) (time.Time, error) { return time.Now(), nil }

// TestOnTheAWSBackendServeGoesByTheStoresClock: serve over the AWS store
// judged chatter IDs (issued by AWS's clock, as a Lambda judges them) and
// wrote connection records by this machine's clock: hours ahead, an ID
// valid for another hour was refused as expired.
func TestOnTheAWSBackendServeGoesByTheStoresClock(t *testing.T) {
	opts := testOptions(t)
	db, err := local.Open(t.Context(), filepath.Join(t.TempDir(), "socks.db"), local.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	opts.Backend = func(context.Context) (*backend.Backend, error) {
		return &backend.Backend{Config: config.Config{Backend: config.BackendAWS}, Store: clockedStore{db.Store()}, Queue: db.Queue()}, nil
	}
	opts.Now = func() time.Time { return time.Now().Add(3 * time.Hour) }
	secret, _, err := store.IssueChatterID(t.Context(), db.Store(), "alice", time.Hour, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	wsURL := make(chan string, 1)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	opts.Ready = func(ws, _ string) { wsURL <- ws }
	go func() { done <- Run(ctx, opts) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
	}()
	var u string
	select {
	case u = <-wsURL:
	case err := <-done:
		t.Fatalf("serve: %v", err)
	case <-time.After(30 * time.Second):
		t.Fatal("serve did not start")
	}
	ws, resp, err := websocket.DefaultDialer.Dial(u+"?geek=alice&id="+secret, nil)
	if err != nil {
		body := ""
		if resp != nil {
			b, _ := io.ReadAll(resp.Body)
			body = string(b)
		}
		t.Fatalf("connect: %v %s", err, body)
	}
	ws.Close()
}

// TestAServeThatCannotListenLeavesTheStateAsItWas: a serve whose address
// is in use (another state dir's serve on the default port) fails to
// start; it must not have done the starting gateway's work first: it
// deleted the records a killed gateway left, and read and deleted what
// a clean stop left, so the serve started next on a free port neither
// warned of those records nor waited for the clients that stop closed.
func TestAServeThatCannotListenLeavesTheStateAsItWas(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	opts := testOptions(t)
	b, err := opts.Backend(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	recordClosed(b, 3, now)
	if err := b.Store.PutConnection(t.Context(), pubsub.Connection{ID: "killed", Geek: "alice", Topics: []string{"t"}, ConnectedAt: now, ExpiresAt: now.Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	opts.Addr = busy.Addr().String()
	if err := Run(t.Context(), opts); err == nil || !strings.Contains(err.Error(), "already in use") {
		t.Fatalf("serve on a busy address: %v; want it to say the address is in use", err)
	}
	if _, err := b.Store.GetConnection(t.Context(), "killed"); err != nil {
		t.Errorf("the killed gateway's record after the failed start: %v; want it kept for the next serve", err)
	}
	if v, ok, err := b.DB.GetMeta(t.Context(), backend.MetaGatewayClosed); err != nil || !ok {
		t.Errorf("what the clean stop left, after the failed start: %q %v %v; want it kept for the next serve", v, ok, err)
	}
}

// TestAServeTakesTheKilledGatewaysRecordOutAsItTakesTheLock: a gateway
// killed (kill -9) left its record: its address, which another process
// may listen at now, and its pid, which another may have now. The serve
// that holds the lock after it took that record out only once it
// recorded itself, so while it started (listening, then deleting what
// the killed one left, giving back orphans) the record looked live to
// every other process, the lock being held: a serve refused beside it
// named the killed gateway's pid as the one to stop, `socks doctor` said
// that gateway runs, and a broker looking the gateway up (as it starts,
// or following it) took the killed one's address. Holding the lock, it
// takes the record out at once, before it listens: even a serve that
// then cannot listen leaves no such record.
func TestAServeTakesTheKilledGatewaysRecordOutAsItTakesTheLock(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0") // where the killed one listened: another process now
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	opts := testOptions(t)
	b, err := opts.Backend(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range map[string]string{
		backend.MetaGatewayWebSocket:  "ws://" + busy.Addr().String() + "/",
		backend.MetaGatewayManagement: "http://" + busy.Addr().String(),
		backend.MetaGatewayPID:        "2147483646",
	} {
		if err := b.DB.SetMeta(t.Context(), k, v); err != nil {
			t.Fatal(err)
		}
	}
	opts.Addr = busy.Addr().String()
	if err := Run(t.Context(), opts); err == nil || !strings.Contains(err.Error(), "already in use") {
		t.Fatalf("serve on a busy address: %v; want it to say the address is in use", err)
	}
	for _, k := range []string{backend.MetaGatewayWebSocket, backend.MetaGatewayManagement, backend.MetaGatewayPID} {
		if v, ok, err := b.DB.GetMeta(t.Context(), k); err != nil || ok {
			t.Errorf("the killed gateway's %s after a serve held the lock: %q (%v, %v); want it gone", k, v, ok, err)
		}
	}
}

// TestServeListensOnEveryNameOfLocalhost: --addr localhost.:PORT (the
// fully qualified name, which a Host header may carry and is taken as
// loopback) listens on localhost, as --pprof does. Before, Go looked
// "localhost." up in DNS, found no such name, and serve failed.
func TestServeListensOnEveryNameOfLocalhost(t *testing.T) {
	for _, addr := range []string{"localhost.:0", "LOCALHOST.:0"} {
		t.Run(addr, func(t *testing.T) {
			opts := testOptions(t)
			opts.Addr = addr
			stop := startServe(t, opts)
			stop()
		})
	}
}

// TestServeJSONOnAColourTerminalWritesAPlainSummary: `serve --json` on a
// terminal wrote its summary on stderr coloured, though with --json a
// terminal shows no escape code (docs/json.md): its styles come from
// cmdutil.ErrUI. Without --json a colour terminal still gets the colour.
func TestServeJSONOnAColourTerminalWritesAPlainSummary(t *testing.T) {
	e := Endpoints{WebSocket: "ws://127.0.0.1:8765/", Management: "http://127.0.0.1:8765/@connections", Page: "http://127.0.0.1:8765/", Broker: true, StateDir: "/tmp/socks"}
	stderr := func(asJSON bool) string {
		ios, _, stdout, errOut := iostreams.Test()
		ios.SetTTY(false, true, true) // colour on: NO_COLOR is not set
		if err := announce(ios, e, asJSON, "socks chatter issue"); err != nil {
			t.Fatal(err)
		}
		if asJSON && strings.Contains(stdout.String(), "\x1b") {
			t.Errorf("stdout %q: want JSON alone", stdout)
		}
		return errOut.String()
	}
	got := stderr(true)
	if !strings.Contains(got, "gateway listening on ws://127.0.0.1:8765/") || !strings.Contains(got, "state dir /tmp/socks") || strings.Contains(got, "\x1b") {
		t.Errorf("--json on a colour terminal: stderr %q, want the summary plain, no escape code", got)
	}
	if got := stderr(false); !strings.Contains(got, "\x1b[") {
		t.Errorf("without --json on a colour terminal: stderr %q, want its colour", got)
	}
}
