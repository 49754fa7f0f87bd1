package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/socks-dev/socks/backend"
	"github.com/socks-dev/socks/bench/ceiling"
	"github.com/socks-dev/socks/commands/cmdutil"
	"github.com/socks-dev/socks/commands/serve"
	"github.com/socks-dev/socks/config"
	"github.com/socks-dev/socks/internal/refusing"
	"github.com/socks-dev/socks/iostreams"
	"github.com/socks-dev/socks/local"
	"github.com/socks-dev/socks/store"
)

// localBackend opens a local backend on a fresh state dir; every call
// returns the same one.
func localBackend(t *testing.T) func(context.Context) (*backend.Backend, error) {
	dir := t.TempDir()
	db, err := local.Open(context.Background(), filepath.Join(dir, "socks.db"), local.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	b := &backend.Backend{Config: config.Config{Backend: config.BackendLocal, StateDir: dir}, Store: db.Store(), Queue: db.Queue(), DB: db}
	return func(context.Context) (*backend.Backend, error) { return b, nil }
}

// startServe runs `socks serve` in this process on the backend until the
// test ends.
func startServe(t *testing.T, open func(context.Context) (*backend.Backend, error)) {
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan struct{})
	done := make(chan error, 1)
	ios, _, _, _ := iostreams.Test()
	go func() {
		done <- serve.Run(ctx, &serve.Options{
			IO: ios, Backend: open, Now: time.Now, Addr: "127.0.0.1:0",
			IdleTimeout: time.Minute, MaxDuration: time.Hour, Concurrency: 32, Quiet: true,
			Ready: func(string, string) { close(ready) },
		})
	}()
	select {
	case <-ready:
	case err := <-done:
		t.Fatalf("serve: %v", err)
	case <-time.After(30 * time.Second):
		t.Fatal("serve did not start")
	}
	t.Cleanup(func() {
		cancel()
		<-done
	})
}

func runBench(t *testing.T, opts *Options) (Result, string) {
	t.Helper()
	ios, _, out, errOut := iostreams.Test()
	opts.IO = ios
	opts.Now = time.Now
	opts.JSON = true
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := benchRun(ctx, opts); err != nil {
		t.Fatalf("bench: %v\n%s", err, errOut)
	}
	var res Result
	if err := json.Unmarshal(out.Bytes(), &res); err != nil {
		t.Fatalf("bench --json printed %q: %v", out, err)
	}
	return res, errOut.String()
}

func defaults() *Options {
	return &Options{Auth: AuthStore, Publish: PublishQueue, Connections: 20, Dialers: 4, Fanouts: 2, Samples: 5, Timeout: time.Minute}
}

// checkFigures fails unless every figure was measured.
func checkFigures(t *testing.T, res Result, n, fanouts, samples int) {
	t.Helper()
	if res.Connections != n || res.Connects <= 0 {
		t.Errorf("connects: %d clients at %v/s", res.Connections, res.Connects)
	}
	if res.FanOut.Publishes != fanouts || res.FanOut.Deliveries != n*fanouts || res.FanOut.PerSecond <= 0 {
		t.Errorf("fan-out %+v, want %d publishes of %d deliveries", res.FanOut, fanouts, n)
	}
	l := res.Latency
	if l.Samples != samples || l.P50 <= 0 || l.P50 > l.P95 || l.P95 > l.P99 || l.P99 > l.Max {
		t.Errorf("latency %+v, want %d ordered samples", l, samples)
	}
}

func TestBenchMeasuresTheLocalGateway(t *testing.T) {
	open := localBackend(t)
	startServe(t, open)
	opts := defaults()
	opts.Backend = open
	res, _ := runBench(t, opts)
	checkFigures(t, res, 20, 2, 5)
	if res.Remote || res.Paced {
		t.Errorf("a loopback gateway is remote=%v paced=%v", res.Remote, res.Paced)
	}
	// serve ran in this process: its memory is ours.
	if m := res.Memory; m == nil || m.PID != os.Getpid() || m.BeforeKiB <= 0 || m.AfterKiB <= 0 {
		t.Errorf("memory %+v, want this process's", m)
	}
	if !strings.HasPrefix(res.URL, "ws://127.0.0.1:") {
		t.Errorf("url %q, want the local gateway", res.URL)
	}
}

func TestBenchMeasuresTheCeilingByURL(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: ceiling.New()}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { srv.Close() })
	opts := defaults()
	opts.URL, opts.Callback = "ws://"+ln.Addr().String()+"/", "http://"+ln.Addr().String()
	opts.Auth, opts.Publish = AuthNone, PublishBroadcast
	opts.Backend = func(context.Context) (*backend.Backend, error) {
		t.Fatal("--auth none --publish broadcast needs no backend")
		return nil, nil
	}
	res, _ := runBench(t, opts)
	checkFigures(t, res, 20, 2, 5)
	if res.Memory != nil {
		t.Errorf("memory %+v without --pid", res.Memory)
	}
}

func TestBenchRefusesBadFlags(t *testing.T) {
	for _, tc := range []struct {
		name string
		set  func(o *Options)
		want string
	}{
		{"no clients", func(o *Options) { o.Connections = 0 }, "--connections"},
		{"url without callback", func(o *Options) { o.URL = "ws://127.0.0.1:1/" }, "--callback"},
		{"http url", func(o *Options) { o.URL, o.Callback = "http://127.0.0.1:1/", "http://127.0.0.1:1" }, "ws://"},
		// The clients' queries were appended to it: ws://h/?x=1?geek=...
		{"url with a query", func(o *Options) {
			o.URL, o.Callback, o.Auth = "ws://127.0.0.1:1/?stage=dev", "http://127.0.0.1:1", AuthNone
		}, "without a query"},
		{"url with a fragment", func(o *Options) { o.URL, o.Callback, o.Auth = "ws://127.0.0.1:1/#x", "http://127.0.0.1:1", AuthNone }, "without a query"},
		{"broadcast to the local gateway", func(o *Options) { o.Publish = PublishBroadcast }, "--publish broadcast"},
		{"unknown auth", func(o *Options) { o.Auth = "magic" }, "--auth"},
		{"negative idle samples", func(o *Options) { o.IdleSamples = -1 }, "--idle-samples"},
		// Huge counts were allocated up front: a runtime panic, not an error.
		{"more samples than memory holds", func(o *Options) { o.Samples = 1e14 }, "--samples"},
		{"more idle samples than memory holds", func(o *Options) { o.IdleSamples, o.Idle = 1e14, time.Second }, "--idle-samples"},
		{"more connections than memory holds", func(o *Options) { o.Connections = 1e14 }, "--connections"},
		{"more fan-outs than a bench sends", func(o *Options) { o.Fanouts = 1e14 }, "--fanouts"},
		{"idle samples with no silence", func(o *Options) { o.IdleSamples, o.Idle = 2, 0 }, "--idle"},
		{"idle samples after an hour's silence", func(o *Options) { o.IdleSamples, o.Idle = 1, time.Hour }, "--idle"},
		// A negative --pid was read as a process until /proc said no,
		// mid-run; an --idle without --idle-samples was ignored.
		{"a negative pid", func(o *Options) { o.PID = -5 }, "--pid"},
		{"a silence with no sample after it", func(o *Options) { o.Idle, o.IdleSet = 5*time.Second, true }, "--idle-samples"},
		{"memory of a remote gateway", func(o *Options) {
			o.URL, o.Callback, o.Auth, o.Publish, o.PID = "wss://abc.execute-api.eu-west-1.amazonaws.com/prod", "https://abc.execute-api.eu-west-1.amazonaws.com/prod", AuthNone, PublishBroadcast, 1
		}, "--pid"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			opts := defaults()
			tc.set(opts)
			ios, _, _, _ := iostreams.Test()
			opts.IO, opts.Now = ios, time.Now
			opts.Backend = func(context.Context) (*backend.Backend, error) { t.Fatal("opened the backend"); return nil, nil }
			err := benchRun(context.Background(), opts)
			var fe *cmdutil.FlagError
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want one naming %s", err, tc.want)
			} else if !errors.As(err, &fe) {
				t.Fatalf("err = %v (%T), want a usage error", err, err)
			}
		})
	}
}

func TestARemoteEndpointIsPacedUnderAPIGatewayQuotas(t *testing.T) {
	for _, tc := range []struct {
		url    string
		remote bool
	}{
		{"ws://127.0.0.1:8765/", false},
		{"ws://localhost:8765/dev", false},
		{"ws://[::1]:8765/", false},
		{"wss://abc123.execute-api.eu-west-1.amazonaws.com/prod", true},
		{"ws://10.0.0.5:8765/", true},
	} {
		if got := IsRemote(tc.url); got != tc.remote {
			t.Errorf("IsRemote(%s) = %v, want %v", tc.url, got, tc.remote)
		}
	}
	c, d := Pace(true, false, 0)
	if c <= 0 || c >= awsConnectRate || d <= 0 || d >= awsPostRate {
		t.Errorf("paced at %v connects/s and %v deliveries/s, want under %d and %d", c, d, awsConnectRate, awsPostRate)
	}
	if c, d := Pace(false, false, 0); c != 0 || d != 0 {
		t.Errorf("loopback paced at %v, %v", c, d)
	}
	if c, d := Pace(true, true, 0); c != 0 || d != 0 {
		t.Errorf("--no-pace paced at %v, %v", c, d)
	}

	ios, _, _, errOut := iostreams.Test()
	opts := defaults()
	opts.IO = ios
	p := plan{wsURL: "wss://abc123.execute-api.eu-west-1.amazonaws.com/prod", remote: true}
	p.pace.connectsPerSecond, p.pace.deliveriesPerSecond = Pace(true, false, 0)
	warnRemote(p, opts)
	for _, want := range []string{"costs money", "500", "10000", "--no-pace"} {
		if !bytes.Contains(errOut.Bytes(), []byte(want)) {
			t.Errorf("warning %q does not say %q", errOut, want)
		}
	}
}

func TestBenchTimesTheFirstReceiptAfterASilence(t *testing.T) {
	open := localBackend(t)
	startServe(t, open)
	opts := defaults()
	opts.Backend = open
	opts.Connections, opts.Fanouts, opts.Samples = 1, 0, 0
	opts.IdleSamples, opts.Idle = 2, 50*time.Millisecond
	res, _ := runBench(t, opts)
	a := res.Latency.AfterIdle
	if a == nil || a.Samples != 2 || a.IdleMs != 50 || a.P50 <= 0 || a.P50 > a.Max {
		t.Fatalf("after idle %+v, want 2 ordered samples after 50 ms each", a)
	}
	if res.Latency.Samples != 0 {
		t.Errorf("latency %+v, want no regular samples with --samples 0", res.Latency)
	}
}

// hostile is a loopback stand-in for a target that misbehaves: every
// accepted connection goes to handle.
func hostile(t *testing.T, handle func(c net.Conn)) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	stop := make(chan struct{})
	var conns []net.Conn
	var mu sync.Mutex
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
			go handle(c)
		}
	}()
	t.Cleanup(func() {
		close(stop)
		ln.Close()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
	})
	return ln.Addr().String()
}

// TestATargetThatMisbehavesEndsTheBenchWithAClearError: a target that
// refuses, hangs up, never answers or answers garbage ends the bench with
// an error that names it, within --timeout (the outer deadline here is far
// longer, and is not what ends it).
func TestATargetThatMisbehavesEndsTheBenchWithAClearError(t *testing.T) {
	for _, tc := range []struct {
		name string
		addr string
	}{
		{"refuses", refusing.Addr(t)},
		{"accepts and closes", hostile(t, func(c net.Conn) { c.Close() })},
		{"never answers", hostile(t, func(c net.Conn) { _, _ = io.Copy(io.Discard, c) })},
		{"refuses the upgrade", hostile(t, func(c net.Conn) {
			_, _ = c.Write([]byte("HTTP/1.1 401 Unauthorized\r\nContent-Length: 0\r\n\r\n"))
			_, _ = io.Copy(io.Discard, c)
		})},
		{"answers garbage", hostile(t, func(c net.Conn) {
			_, _ = c.Write(bytes.Repeat([]byte("\x00\xffgarbage\r\n"), 1000))
			_, _ = io.Copy(io.Discard, c)
		})},
	} {
		for _, phase := range []string{"latency", "connects"} {
			t.Run(tc.name+"/"+phase, func(t *testing.T) {
				opts := rawTargetOptions(tc.addr, phase)
				opts.Timeout = 500 * time.Millisecond
				ctx, cancel := context.WithCancel(context.Background())
				defer cancel()
				done := make(chan error, 1)
				go func() { done <- benchRun(ctx, opts) }()
				var err error
				select {
				case err = <-done:
				case <-time.After(20 * time.Second):
					// Far beyond --timeout, and shorter than the
					// dialer's own handshake timeout.
					cancel()
					t.Fatalf("bench with --timeout %s still runs after 20s (ended with %v once cancelled)", opts.Timeout, <-done)
				}
				if err == nil {
					t.Fatal("bench succeeded")
				}
				t.Logf("%s", err)
				if !strings.Contains(err.Error(), tc.addr) {
					t.Errorf("error %q does not name the target", err)
				}
				for _, internal := range []string{"bad handshake", "EOF", "read tcp", "dial tcp", "malformed"} {
					if strings.Contains(err.Error(), internal) {
						t.Errorf("error %q speaks of %q, not of what the target did", err, internal)
					}
				}
			})
		}
	}
}

// TestFanOutCountsOnlyTheBenchsMessage: a target that sends every client
// something else (an error frame, a duplicate, junk) while only some get
// the fan-out's message does not pass for one that delivered it to all.
func TestFanOutCountsOnlyTheBenchsMessage(t *testing.T) {
	var mu sync.Mutex
	var clients []*websocket.Conn
	up := websocket.Upgrader{}
	mux := http.NewServeMux()
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		c, err := up.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		mu.Lock()
		clients = append(clients, c)
		mu.Unlock()
		go func() {
			for {
				if _, _, err := c.ReadMessage(); err != nil {
					return
				}
			}
		}()
	})
	mux.HandleFunc("/@broadcast", func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		mu.Lock()
		defer mu.Unlock()
		// The first client gets the message twice, every other one junk.
		for i, c := range clients {
			if i == 0 {
				_ = c.WriteMessage(websocket.TextMessage, body)
				_ = c.WriteMessage(websocket.TextMessage, body)
			} else {
				_ = c.WriteMessage(websocket.TextMessage, []byte(`{"message":"Internal server error"}`))
			}
		}
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	addr := strings.TrimPrefix(srv.URL, "http://")
	opts := defaults()
	opts.URL, opts.Callback = "ws://"+addr+"/", srv.URL
	opts.Auth, opts.Publish = AuthNone, PublishBroadcast
	opts.Samples, opts.Connections, opts.Fanouts = 0, 4, 2
	opts.Timeout = time.Second
	ios, _, out, _ := iostreams.Test()
	opts.IO, opts.Now = ios, time.Now
	err := benchRun(context.Background(), opts)
	if err == nil || !strings.Contains(err.Error(), "of 4 clients received") {
		t.Fatalf("bench = %v, printed %q; want the fan-out to fail (1 of 4 clients has the message)", err, out)
	}
	broadcastHint(t, err, srv.URL)
}

// broadcastHint checks the advice after a message lost with --publish
// broadcast: it asked "is the broker running?", and no broker is on that
// path.
func broadcastHint(t *testing.T, err error, callback string) {
	t.Helper()
	if strings.Contains(err.Error(), "broker") {
		t.Errorf("error %q blames a broker, which --publish broadcast does not use", err)
	}
	if !strings.Contains(err.Error(), callback+"/@broadcast") {
		t.Errorf("error %q does not name the broadcast target %s/@broadcast", err, callback)
	}
}

// TestALostMessageGetsAdviceForThePathItTook: a target that accepts the
// broadcast and delivers nothing is named, not the broker; on the local
// backend with no broker, the bench asks for one before it measures; on
// AWS a message published to the queue that never arrives asks after the
// queue's consumers.
func TestALostMessageGetsAdviceForThePathItTook(t *testing.T) {
	up := websocket.Upgrader{}
	mux := http.NewServeMux()
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		c, err := up.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		defer c.Close()
		for {
			if _, _, err := c.ReadMessage(); err != nil {
				return
			}
		}
	})
	mux.HandleFunc("/@broadcast", func(w http.ResponseWriter, r *http.Request) { _, _ = io.Copy(io.Discard, r.Body) })
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	t.Run("with --publish broadcast the target is named", func(t *testing.T) {
		opts := rawTargetOptions(strings.TrimPrefix(srv.URL, "http://"), "latency")
		opts.Timeout = 200 * time.Millisecond
		err := benchRun(context.Background(), opts)
		if err == nil || !strings.Contains(err.Error(), "did not arrive") {
			t.Fatalf("bench = %v; want the latency message not to arrive", err)
		}
		broadcastHint(t, err, srv.URL)
	})
	t.Run("with --publish queue and no local broker it is asked for before anything is measured", func(t *testing.T) {
		opts := rawTargetOptions(strings.TrimPrefix(srv.URL, "http://"), "latency")
		opts.Publish, opts.Backend = PublishQueue, localBackend(t)
		opts.Timeout = 200 * time.Millisecond
		err := benchRun(context.Background(), opts)
		if !errors.Is(err, backend.ErrNoBroker) {
			t.Fatalf("bench = %v; want %v", err, backend.ErrNoBroker)
		}
	})
	t.Run("on the AWS backend the queue's consumers are asked after", func(t *testing.T) {
		// The AWS backend's seams, with the local store and queue behind
		// them: no socks serve consumes that queue.
		open := localBackend(t)
		b, err := open(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		aws := &backend.Backend{Config: config.Config{Backend: config.BackendAWS}, Store: b.Store, Queue: b.Queue}
		opts := rawTargetOptions(strings.TrimPrefix(srv.URL, "http://"), "latency")
		opts.Publish = PublishQueue
		opts.Backend = func(context.Context) (*backend.Backend, error) { return aws, nil }
		opts.Timeout = 200 * time.Millisecond
		err = benchRun(context.Background(), opts)
		if err == nil || !strings.Contains(err.Error(), "did not arrive") || strings.Contains(err.Error(), "socks serve") || !strings.Contains(err.Error(), "Lambda function") {
			t.Fatalf("bench = %v; want the latency message not to arrive, and the Lambda function or socks broker asked after, not socks serve", err)
		}
	})
}

// TestACallbackOffThisMachineIsRemote: a loopback --url with a --callback
// elsewhere still publishes off this machine: warned and paced. The
// callback's host never resolves (.invalid) and the refused --url ends the
// bench before anything is published.
func TestACallbackOffThisMachineIsRemote(t *testing.T) {
	addr := refusing.Addr(t)
	opts := defaults()
	opts.URL, opts.Callback = "ws://"+addr+"/", "https://abc123.execute-api.invalid/prod"
	opts.Auth, opts.Publish = AuthNone, PublishBroadcast
	ios, _, _, errOut := iostreams.Test()
	opts.IO, opts.Now = ios, time.Now
	if err := benchRun(context.Background(), opts); err == nil {
		t.Fatal("bench against a refused --url succeeded")
	}
	for _, want := range []string{"costs money", "paced"} {
		if !strings.Contains(errOut.String(), want) {
			t.Errorf("stderr %q does not say %q", errOut, want)
		}
	}
}

// rawTargetOptions are the options of a bench against a target at addr
// that needs no chatter ID and is published to by broadcast; the
// "connects" phase skips the latency samples.
func rawTargetOptions(addr, phase string) *Options {
	opts := defaults()
	opts.URL, opts.Callback = "ws://"+addr+"/", "http://"+addr
	opts.Auth, opts.Publish = AuthNone, PublishBroadcast
	if phase == "connects" {
		opts.Samples = 0
	}
	ios, _, _, _ := iostreams.Test()
	opts.IO, opts.Now = ios, time.Now
	return opts
}

// silentTarget accepts connections, says nothing and reads what it is
// sent; accepted has a value for each connection it took.
func silentTarget(t *testing.T) (addr string, accepted <-chan struct{}) {
	ch := make(chan struct{}, 100)
	addr = hostile(t, func(c net.Conn) {
		ch <- struct{}{}
		_, _ = io.Copy(io.Discard, c)
	})
	return addr, ch
}

// benchUntilAccepted starts a bench of opts and returns once its target
// took a connection (accepted): cancel is its Ctrl-C (also called when
// the test ends), done has what the bench returned.
func benchUntilAccepted(t *testing.T, opts *Options, accepted <-chan struct{}) (cancel func(), done <-chan error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	ch := make(chan error, 1)
	go func() { ch <- benchRun(ctx, opts) }()
	select {
	case <-accepted:
	case err := <-ch:
		t.Fatalf("bench ended before connecting: %v", err)
	}
	return cancel, ch
}

// TestCtrlCEndsAHandshakeThatIsNeverAnswered: Ctrl-C while the target
// holds the handshake ends the bench at once; it waited for the dialer's
// 30 s handshake timeout.
func TestCtrlCEndsAHandshakeThatIsNeverAnswered(t *testing.T) {
	for _, phase := range []string{"latency", "connects"} {
		t.Run(phase, func(t *testing.T) {
			addr, accepted := silentTarget(t)
			cancel, done := benchUntilAccepted(t, rawTargetOptions(addr, phase), accepted)
			cancel() // Ctrl-C
			select {
			case err := <-done:
				if !errors.Is(err, context.Canceled) {
					t.Errorf("bench = %v; want it cancelled", err)
				}
			case <-time.After(20 * time.Second):
				t.Fatal("bench still runs 20s after Ctrl-C")
			}
		})
	}
}

// failingRevokes is a store whose RevokeChatterIDs always fails.
type failingRevokes struct{ store.Store }

func (failingRevokes) RevokeChatterIDs(context.Context, string, []string) (int, error) {
	return 0, errors.New("the table is not there")
}

// TestBenchRevokesItsChatterIDsWhenItEnds: the chatter IDs bench issued
// were valid for 15 minutes after it ended; it now revokes them as it
// ends, however it ends, and a failed revocation is a warning, not a
// failed bench.
func TestBenchRevokesItsChatterIDsWhenItEnds(t *testing.T) {
	// target is a ceiling that records the query of every upgrade asked
	// of it; with refuse it answers 401 instead.
	type used struct{ geek, id string }
	target := func(t *testing.T, refuse bool) (url string, seen func() []used) {
		var mu sync.Mutex
		var got []used
		c := ceiling.New()
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path == "/" {
				mu.Lock()
				got = append(got, used{r.URL.Query().Get("geek"), r.URL.Query().Get("id")})
				mu.Unlock()
				if refuse {
					http.Error(w, "no", http.StatusUnauthorized)
					return
				}
			}
			c.ServeHTTP(w, r)
		}))
		t.Cleanup(srv.Close)
		return srv.URL, func() []used {
			mu.Lock()
			defer mu.Unlock()
			return append([]used(nil), got...)
		}
	}
	setup := func(t *testing.T, httpURL string) (*Options, *backend.Backend) {
		open := localBackend(t)
		b, _ := open(context.Background())
		opts := defaults()
		opts.Connections, opts.Samples = 5, 2
		opts.URL, opts.Callback = "ws"+strings.TrimPrefix(httpURL, "http")+"/", httpURL
		opts.Auth, opts.Publish = AuthStore, PublishBroadcast
		opts.Backend = open
		ios, _, _, _ := iostreams.Test()
		opts.IO, opts.Now = ios, time.Now
		return opts, b
	}
	noneLeft := func(t *testing.T, b *backend.Backend, seen []used) {
		t.Helper()
		if len(seen) == 0 {
			t.Fatal("the target saw no chatter ID")
		}
		for _, u := range seen {
			if _, err := b.Store.VerifyChatterID(context.Background(), u.geek, u.id, time.Now()); !errors.Is(err, store.ErrUnauthorized) {
				t.Errorf("the chatter ID of %s, used by the bench, is still verified after it: %v; want it refused", u.geek, err)
			}
		}
		if ids, err := b.Store.ListChatterIDs(context.Background(), ""); err != nil || len(ids) != 0 {
			t.Errorf("chatter IDs left after the bench: %v (%v); want none", ids, err)
		}
	}

	t.Run("a bench that succeeds", func(t *testing.T) {
		url, seen := target(t, false)
		opts, b := setup(t, url)
		res, errOut := runBench(t, opts)
		checkFigures(t, res, 5, 2, 2)
		if len(seen()) != 6 {
			t.Errorf("the target saw %d upgrades; want 6 (5 clients and the latency listener)", len(seen()))
		}
		noneLeft(t, b, seen())
		if errOut != "" {
			t.Errorf("stderr %q; want nothing", errOut)
		}
	})
	t.Run("a bench that fails", func(t *testing.T) {
		url, seen := target(t, true)
		opts, b := setup(t, url)
		if err := benchRun(context.Background(), opts); err == nil {
			t.Fatal("bench succeeded against a target that refuses every upgrade")
		}
		noneLeft(t, b, seen())
	})
	t.Run("a bench ended by Ctrl-C", func(t *testing.T) {
		addr, accepted := silentTarget(t)
		opts, b := setup(t, "http://"+addr)
		opts.Samples = 0
		cancel, done := benchUntilAccepted(t, opts, accepted)
		if ids, err := b.Store.ListChatterIDs(context.Background(), ""); err != nil || len(ids) != 5 {
			t.Fatalf("%d chatter IDs issued before the clients connect (%v); want 5", len(ids), err)
		}
		cancel()
		if err := <-done; !errors.Is(err, context.Canceled) {
			t.Errorf("bench = %v; want it cancelled", err)
		}
		noneLeft(t, b, []used{{"bench-x-1", "not-a-secret"}})
	})
	t.Run("a revocation that fails is a warning", func(t *testing.T) {
		url, _ := target(t, false)
		opts, b := setup(t, url)
		opts.Backend = func(context.Context) (*backend.Backend, error) {
			fb := *b
			fb.Store = failingRevokes{b.Store}
			return &fb, nil
		}
		_, errOut := runBench(t, opts)
		if !strings.Contains(errOut, "warning: 6 chatter IDs the bench issued were not revoked (the table is not there); they expire at ") {
			t.Errorf("stderr %q; want a warning that says when they expire", errOut)
		}
	})
}

// TestPipedResultIsTabSeparatedHeaderFirst: piped, bench printed the URL
// on a line of its own above the header, so `socks bench | column -t -s
// $'\t'` or a script reading the header first met a line that is no row.
// Off a terminal every line is a row of the table, the header first and
// the URL a row of its own; on a terminal the URL heads the table.
func TestPipedResultIsTabSeparatedHeaderFirst(t *testing.T) {
	res := Result{URL: "ws://127.0.0.1:8765/", Connections: 3, Connected: 3, Connects: 100,
		FanOut: FanOut{Publishes: 1, Deliveries: 3, PerSecond: 300}, Latency: Latency{Samples: 3, P50: 1, P95: 2, P99: 2, Max: 2,
			AfterIdle: &AfterIdle{Samples: 1, IdleMs: 10, P50: 1, Max: 1}}}
	for _, tc := range []struct {
		name     string
		complete bool
		urlHow   string
	}{
		{"a complete bench", true, ""},
		{"an incomplete bench says so in the url row", false, "incomplete: the bench ended early, see the error; a dash was not measured"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res := res
			res.Complete = tc.complete
			ios, _, out, _ := iostreams.Test()
			opts := defaults()
			opts.IO = ios
			if err := printResult(opts, res); err != nil {
				t.Fatal(err)
			}
			lines := strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n")
			// In capitals, as every other table's header (dlq list's,
			// chatter list's, subs'): it was the one in lower case.
			if lines[0] != "MEASURE\tVALUE\tHOW" {
				t.Errorf("first line %q; want the header", lines[0])
			}
			if len(lines) < 2 || lines[1] != "url\t"+res.URL+"\t"+tc.urlHow {
				t.Errorf("second line %q; want the url row", lines[1])
			}
			// "1 messages to every client" read as a slip, and so did
			// "1 samples, each after 10ms of silence".
			if !strings.Contains(out.String(), "\t1 message to every client\n") {
				t.Errorf("the fan-out row does not say \"1 message to every client\":\n%s", out)
			}
			if !strings.Contains(out.String(), "\t1 sample, each after ") {
				t.Errorf("the after-idle row does not say \"1 sample, each after\":\n%s", out)
			}
			for _, l := range lines {
				if strings.Count(l, "\t") != 2 {
					t.Errorf("line %q is not a row of three tab-separated cells\n%s", l, out)
				}
			}
		})
	}
	t.Run("on a terminal the URL heads the table", func(t *testing.T) {
		ios, _, out, _ := iostreams.Test()
		ios.SetTTY(false, true, true)
		opts := defaults()
		opts.IO = ios
		res := res
		res.Complete = true
		if err := printResult(opts, res); err != nil {
			t.Fatal(err)
		}
		if first, _, _ := strings.Cut(out.String(), "\n"); !strings.Contains(first, res.URL) {
			t.Errorf("first line %q; want the URL above the table\n%s", first, out)
		}
	})
}

// TestBenchReachesATargetOnLocalhostDot: a --url and a --callback on
// "localhost." (this machine, as bench judges it: not paced) are dialled
// on localhost, as by listen; Go would look the name up in DNS and not
// find it.
func TestBenchReachesATargetOnLocalhostDot(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: ceiling.New()}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { srv.Close() })
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	addr := net.JoinHostPort("localhost.", port)
	opts := defaults()
	opts.URL, opts.Callback = "ws://"+addr+"/", "http://"+addr
	opts.Auth, opts.Publish = AuthNone, PublishBroadcast
	res, _ := runBench(t, opts)
	checkFigures(t, res, 20, 2, 5)
}

// TestCtrlCAsTheConnectionIsMadeEndsTheHandshake: Ctrl-C that comes as a
// client's TCP connection is made, before its handshake starts, ends the
// dial at once. The dial cut its connection short with a deadline in the
// past, but the WebSocket dialer then set the handshake's own deadline
// (up to 30 s) on it, and the dial waited that out on a silent target.
func TestCtrlCAsTheConnectionIsMadeEndsTheHandshake(t *testing.T) {
	addr, _ := silentTarget(t)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	before := netDial
	t.Cleanup(func() { netDial = before })
	netDial = func(dctx context.Context, network, addr string) (net.Conn, error) {
		c, err := before(dctx, network, addr)
		cancel() // Ctrl-C, as the connect completes
		<-dctx.Done()
		// What Ctrl-C sets off runs now, before the connection is
		// handed over, as it may.
		runtime.Gosched()
		return c, err
	}
	done := make(chan error, 1)
	go func() {
		_, err := dial(ctx, "ws://"+addr+"/", "", time.Hour)
		done <- err
	}()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Errorf("dial = %v; want it cancelled", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("the dial still runs 20s after Ctrl-C: it waits out the handshake's 30s timeout")
	}
}
