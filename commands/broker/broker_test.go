package broker

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/socks-dev/socks/backend"
	"github.com/socks-dev/socks/commands/cmdutil"
	"github.com/socks-dev/socks/config"
	"github.com/socks-dev/socks/internal/lockedbuf"
	"github.com/socks-dev/socks/iostreams"
	"github.com/socks-dev/socks/local"
	"github.com/socks-dev/socks/pubsub"
	"github.com/socks-dev/socks/store"
)

// gateway is a Management API that records what is posted to each
// connection.
type gateway struct {
	mu    sync.Mutex
	posts map[string][]string
	got   chan struct{}
	// id, when not "", is the run ID the gateway answers with
	// (pubsub.GatewayIDHeader).
	id string
}

func newGateway(t *testing.T) (*gateway, string) { return newGatewayRun(t, "") }

// newGatewayRun is newGateway answering with the run ID id, as `socks
// serve` recorded it (backend.MetaGatewayID).
func newGatewayRun(t *testing.T, id string) (*gateway, string) {
	g := &gateway{posts: map[string][]string{}, got: make(chan struct{}, 16), id: id}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if g.id != "" {
			w.Header().Set(pubsub.GatewayIDHeader, g.id)
		}
		id, ok := strings.CutPrefix(r.URL.EscapedPath(), "/@connections/")
		if !ok || r.Method != http.MethodPost {
			http.Error(w, "unexpected "+r.Method+" "+r.URL.Path, http.StatusNotFound)
			return
		}
		id, _ = url.PathUnescape(id)
		b, _ := io.ReadAll(r.Body)
		g.mu.Lock()
		g.posts[id] = append(g.posts[id], string(b))
		g.mu.Unlock()
		g.got <- struct{}{}
	}))
	t.Cleanup(srv.Close)
	return g, srv.URL
}

func (g *gateway) bodies(id string) []string {
	g.mu.Lock()
	defer g.mu.Unlock()
	return append([]string(nil), g.posts[id]...)
}

// localBackend opens a local backend with alice connected on updates and,
// when mgmt is not empty, a gateway recorded at mgmt.
func localBackend(t *testing.T, mgmt string) *backend.Backend {
	t.Helper()
	dir := t.TempDir()
	db, err := local.Open(t.Context(), filepath.Join(dir, config.StateFile), local.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	now := time.Now()
	if err := db.Store().PutConnection(t.Context(), pubsub.Connection{ID: "conn-alice", Geek: "alice", Topics: []string{"updates"}, ConnectedAt: now, ExpiresAt: now.Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	if mgmt != "" {
		for k, v := range map[string]string{backend.MetaGatewayWebSocket: "ws" + strings.TrimPrefix(mgmt, "http"), backend.MetaGatewayManagement: mgmt} {
			if err := db.SetMeta(t.Context(), k, v); err != nil {
				t.Fatal(err)
			}
		}
	}
	return &backend.Backend{Config: config.Config{Backend: config.BackendLocal, StateDir: dir}, Store: db.Store(), Queue: db.Queue(), DB: db}
}

// brokerOpts returns options on b, its stdout, and its log (stderr), which
// the broker's goroutines write concurrently.
func brokerOpts(b *backend.Backend) (*Options, *bytes.Buffer, *lockedbuf.Buffer) {
	ios, _, out, _ := iostreams.Test()
	logs := &lockedbuf.Buffer{}
	ios.ErrOut = logs
	return &Options{
		IO:      ios,
		Backend: func(context.Context) (*backend.Backend, error) { return b, nil },
		Now:     time.Now,

		Concurrency: 4, Workers: 2, Visibility: 10 * time.Second, Wait: time.Second,
	}, out, logs
}

func TestOnceHandlesOneBatchAndSummarises(t *testing.T) {
	g, mgmt := newGateway(t)
	b := localBackend(t, mgmt)
	for _, body := range []string{`{"users":["alice"],"topics":["updates"],"body":{"n":1}}`, "not an envelope"} {
		if _, err := b.Queue.Send(t.Context(), []byte(body)); err != nil {
			t.Fatal(err)
		}
	}
	opts, out, logs := brokerOpts(b)
	opts.Once = true
	if err := brokerRun(t.Context(), opts); err != nil {
		t.Fatal(err)
	}
	if got := out.String(); got != "received=2 done=1 retry=0 dead_lettered=1\n" {
		t.Errorf("stdout %q", got)
	}
	if got := g.bodies("conn-alice"); len(got) != 1 || got[0] != `{"n":1}` {
		t.Errorf("alice got %q", got)
	}
	dead, err := b.Queue.ListDeadLetters(t.Context(), 0)
	if err != nil || len(dead) != 1 || !strings.HasPrefix(dead[0].Reason, "unusable envelope") {
		t.Errorf("dead letters %+v, %v", dead, err)
	}
	if !strings.Contains(logs.String(), "msg=delivered") || !strings.Contains(logs.String(), "msg=dead-lettered") {
		t.Errorf("logs:\n%s", logs)
	}
}

func TestOnceWithJSONPrintsTheSummaryAsJSON(t *testing.T) {
	_, mgmt := newGateway(t)
	b := localBackend(t, mgmt)
	if _, err := b.Queue.Send(t.Context(), []byte("not an envelope")); err != nil {
		t.Fatal(err)
	}
	opts, out, _ := brokerOpts(b)
	opts.Once, opts.JSON = true, true
	if err := brokerRun(t.Context(), opts); err != nil {
		t.Fatal(err)
	}
	if got := out.String(); got != `{"received":1,"done":0,"retry":0,"deadLettered":1}`+"\n" {
		t.Errorf("stdout %q", got)
	}
}

// ctrlCInReceive is a queue whose Receive is interrupted, as by Ctrl-C
// while it waits.
type ctrlCInReceive struct {
	store.Queue
	cancel context.CancelFunc
}

func (q ctrlCInReceive) Receive(ctx context.Context, n int, vis, wait time.Duration) ([]store.Message, error) {
	q.cancel()
	return q.Queue.Receive(ctx, n, vis, wait)
}

func TestOnceCutShortByCtrlCIsNoSummary(t *testing.T) {
	// `socks broker --once --json | jq .deadLettered`: Ctrl-C during the
	// wait for a batch handled nothing; exit 0 with no summary would read
	// as a batch that came to nothing. It is an interruption (130).
	_, mgmt := newGateway(t)
	b := localBackend(t, mgmt)
	ctx, cancel := context.WithCancel(t.Context())
	b.Queue = ctrlCInReceive{Queue: b.Queue, cancel: cancel}
	opts, out, _ := brokerOpts(b)
	opts.Once, opts.JSON = true, true
	if err := brokerRun(ctx, opts); !errors.Is(err, context.Canceled) {
		t.Errorf("got %v; want the interruption", err)
	}
	if out.Len() != 0 {
		t.Errorf("stdout %q; want nothing", out)
	}
}

func TestRunDeliversUntilCancelledAndStopsCleanly(t *testing.T) {
	g, mgmt := newGateway(t)
	b := localBackend(t, mgmt)
	opts, out, logs := brokerOpts(b)
	opts.Wait = 100 * time.Millisecond
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- brokerRun(ctx, opts) }()

	if _, err := b.Queue.Send(t.Context(), []byte(`{"users":["alice"],"topics":["updates"],"body":"hi"}`)); err != nil {
		t.Fatal(err)
	}
	select {
	case <-g.got:
	case <-time.After(10 * time.Second):
		t.Fatalf("nothing delivered within 10s; logs:\n%s", logs)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("brokerRun after cancel = %v; want nil", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the broker did not stop within 10s of the cancel")
	}
	if got := g.bodies("conn-alice"); len(got) != 1 || got[0] != `"hi"` {
		t.Errorf("alice got %q", got)
	}
	if out.String() != "" || !strings.Contains(logs.String(), "msg=\"broker started\"") || !strings.Contains(logs.String(), "msg=stopped") {
		t.Errorf("stdout %q; logs:\n%s", out, logs)
	}
}

// TestWithoutAGatewayItSaysToStartOne: with no gateway recorded, the
// broker waits for one to start (serve may be starting beside it), saying
// so, and then says to start one, and that it waited.
func TestWithoutAGatewayItSaysToStartOne(t *testing.T) {
	opts, _, logs := brokerOpts(localBackend(t, ""))
	opts.gatewayWait = 200 * time.Millisecond
	err := brokerRun(t.Context(), opts)
	if !errors.Is(err, backend.ErrNoGateway) || !strings.Contains(err.Error(), "waited 200ms for one to start") {
		t.Errorf("err = %v; want ErrNoGateway, saying it waited", err)
	}
	if !strings.Contains(logs.String(), "waiting for `socks serve` to start on this state dir") {
		t.Errorf("the broker did not say it waits for the gateway:\n%s", logs)
	}

	// --once waits no longer than --wait: with --wait 0s, not at all.
	opts, _, logs = brokerOpts(localBackend(t, ""))
	opts.Once, opts.Wait = true, 0
	if err := brokerRun(t.Context(), opts); !errors.Is(err, backend.ErrNoGateway) || strings.Contains(err.Error(), "waited") {
		t.Errorf("--once --wait 0s: err = %v; want ErrNoGateway at once", err)
	}
	if strings.Contains(logs.String(), "waiting for") {
		t.Errorf("--once --wait 0s said it waits:\n%s", logs)
	}
}

// TestCtrlCWhileWaitingForTheGatewayStopsAsDocumented: Ctrl-C while the
// broker waits for a gateway to start stops it at once, with nothing in
// hand: exit 0 as documented for a broker stopped by Ctrl-C (it returned
// the interruption, exit 130); with --once, the interruption before a
// batch came (130), as TestOnceCutShortByCtrlCIsNoSummary.
func TestCtrlCWhileWaitingForTheGatewayStopsAsDocumented(t *testing.T) {
	for _, once := range []bool{false, true} {
		opts, out, logs := brokerOpts(localBackend(t, ""))
		opts.Once = once
		opts.gatewayWait = time.Hour
		opts.Wait = 20 * time.Second
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan error, 1)
		go func() { done <- brokerRun(ctx, opts) }()
		for !strings.Contains(logs.String(), "waiting for `socks serve`") {
			select {
			case err := <-done:
				t.Fatalf("once=%v: the broker ended before the Ctrl-C: %v\n%s", once, err, logs)
			case <-time.After(10 * time.Millisecond):
			}
		}
		cancel()
		var err error
		select {
		case err = <-done:
		case <-time.After(10 * time.Second):
			t.Fatalf("once=%v: the broker did not stop within 10s of the Ctrl-C", once)
		}
		switch {
		case once && !errors.Is(err, context.Canceled):
			t.Errorf("--once, Ctrl-C while waiting for the gateway: %v; want the interruption (130)", err)
		case !once && err != nil:
			t.Errorf("Ctrl-C while waiting for the gateway: %v; want a clean stop (exit 0)", err)
		}
		if out.Len() != 0 {
			t.Errorf("once=%v: stdout %q; want nothing", once, out)
		}
	}
}

// TestABrokerWaitsForTheGatewayStartingBesideIt: serve and the broker
// started together, the broker looks before serve has recorded its
// gateway: it waits, and runs once the gateway is there, rather than
// exiting (a process manager then stopped the serve too).
func TestABrokerWaitsForTheGatewayStartingBesideIt(t *testing.T) {
	g, mgmt := newGateway(t)
	b := localBackend(t, "")
	opts, out, logs := brokerOpts(b)
	opts.Once = true
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- brokerRun(ctx, opts) }()
	for !strings.Contains(logs.String(), "waiting for `socks serve`") {
		select {
		case err := <-done:
			t.Fatalf("the broker ended before any gateway started: %v\n%s", err, logs)
		case <-ctx.Done():
			t.Fatalf("the broker did not say it waits:\n%s", logs)
		case <-time.After(10 * time.Millisecond):
		}
	}
	if _, err := b.Queue.Send(ctx, []byte(`{"users":["alice"],"topics":["updates"],"body":"hi"}`)); err != nil {
		t.Fatal(err)
	}
	for k, v := range map[string]string{backend.MetaGatewayWebSocket: "ws" + strings.TrimPrefix(mgmt, "http"), backend.MetaGatewayManagement: mgmt} {
		if err := b.DB.SetMeta(ctx, k, v); err != nil {
			t.Fatal(err)
		}
	}
	if err := <-done; err != nil {
		t.Fatalf("the broker, once the gateway started: %v\n%s", err, logs)
	}
	if got := g.bodies("conn-alice"); len(got) != 1 || got[0] != `"hi"` {
		t.Errorf("alice got %q; the broker printed %q and logged:\n%s", got, out, logs)
	}
}

func TestFlags(t *testing.T) {
	f := &cmdutil.Factory{Getenv: func(string) string { return "" }}
	f.IOStreams, _, _, _ = iostreams.Test()
	var got *Options
	cmd := NewCmdBroker(f, func(_ context.Context, o *Options) error { got = o; return nil })
	cmd.SetArgs([]string{"--concurrency", "8", "--workers", "3", "--visibility", "2m", "--wait", "20s", "--once", "-q"})
	if err := cmd.Execute(); err != nil {
		t.Fatal(err)
	}
	if got.Concurrency != 8 || got.Workers != 3 || got.Visibility != 2*time.Minute || got.Wait != 20*time.Second || !got.Once || !got.Quiet {
		t.Errorf("options %+v", got)
	}

	for _, tc := range []struct {
		name string
		set  func(*Options)
	}{
		{"no concurrency", func(o *Options) { o.Concurrency = 0 }},
		{"no workers", func(o *Options) { o.Workers = 0 }},
		{"a visibility under a second", func(o *Options) { o.Visibility = time.Millisecond }},
		{"a visibility over SQS's 12 hours", func(o *Options) { o.Visibility = 13 * time.Hour }},
		{"a wait over SQS's 20 seconds", func(o *Options) { o.Wait = 21 * time.Second }},
		{"--json without --once", func(o *Options) { o.JSON = true }},
	} {
		t.Run(tc.name+" is a usage error", func(t *testing.T) {
			opts, _, _ := brokerOpts(nil)
			opts.Backend = func(context.Context) (*backend.Backend, error) {
				t.Fatal("the backend must not be opened")
				return nil, nil
			}
			tc.set(opts)
			var fe *cmdutil.FlagError
			if err := brokerRun(t.Context(), opts); !errors.As(err, &fe) {
				t.Errorf("err = %v; want a usage error", err)
			}
		})
	}
}

// clockedStore is a store whose records carry another clock's times (on
// AWS, API Gateway's and the Lambda's): store.Clock, here the real one.
type clockedStore struct{ store.Store }

func (clockedStore) Now(context.Context) (time.Time, error) { return time.Now(), nil }

// TestABrokerWhoseClockIsAheadDeliversByTheStoresClock: a broker run
// outside Lambda (a server, a container whose clock drifted while its
// host slept) judged the records' expiries, AWS's, by its own clock: hours
// ahead, it found no live connection and delivered nothing, saying done
// (and a 410 deleted a record still in its $connect once ahead by 30 s).
// It judges by the store's clock.
func TestABrokerWhoseClockIsAheadDeliversByTheStoresClock(t *testing.T) {
	g, mgmt := newGateway(t)
	b := localBackend(t, mgmt)
	b.Store = clockedStore{b.Store}
	if _, err := b.Queue.Send(t.Context(), []byte(`{"users":["alice"],"topics":["updates"],"body":{"n":1}}`)); err != nil {
		t.Fatal(err)
	}
	opts, out, logs := brokerOpts(b)
	opts.Once = true
	opts.Now = func() time.Time { return time.Now().Add(3 * time.Hour) }
	if err := brokerRun(t.Context(), opts); err != nil {
		t.Fatal(err)
	}
	if got := out.String(); got != "received=1 done=1 retry=0 dead_lettered=0\n" {
		t.Errorf("stdout %q", got)
	}
	if got := g.bodies("conn-alice"); len(got) != 1 || got[0] != `{"n":1}` {
		t.Errorf("alice got %q; want the message\nlogs:\n%s", got, logs)
	}
}

// receiveWaits is a queue that records the wait of each Receive.
type receiveWaits struct {
	store.Queue
	mu    sync.Mutex
	waits []time.Duration
}

func (q *receiveWaits) Receive(ctx context.Context, n int, visibility, wait time.Duration) ([]store.Message, error) {
	q.mu.Lock()
	q.waits = append(q.waits, wait)
	q.mu.Unlock()
	return q.Queue.Receive(ctx, n, visibility, wait)
}

// TestOnceWaitsAtMostWaitInAll: on the local backend, `broker --once
// --wait D` that waits for `socks serve` to start waits for its batch only
// what is left of D: one --wait bounds the whole run. Before, it could
// wait D for the gateway and then D again for the batch. The broker's
// clock (opts.Now) is the test's: it passes D while the broker waits.
func TestOnceWaitsAtMostWaitInAll(t *testing.T) {
	g, mgmt := newGateway(t)
	b := localBackend(t, "")
	q := &receiveWaits{Queue: b.Queue}
	b.Queue = q
	opts, out, logs := brokerOpts(b)
	opts.Once = true
	opts.Wait = store.MaxWait
	var clockMu sync.Mutex
	clock := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	opts.Now = func() time.Time {
		clockMu.Lock()
		defer clockMu.Unlock()
		return clock
	}
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- brokerRun(ctx, opts) }()
	for !strings.Contains(logs.String(), "waiting for `socks serve`") {
		select {
		case err := <-done:
			t.Fatalf("the broker ended before any gateway started: %v\n%s", err, logs)
		case <-ctx.Done():
			t.Fatalf("the broker did not say it waits:\n%s", logs)
		case <-time.After(10 * time.Millisecond):
		}
	}
	if _, err := b.Queue.Send(ctx, []byte(`{"users":["alice"],"topics":["updates"],"body":"hi"}`)); err != nil {
		t.Fatal(err)
	}
	clockMu.Lock()
	clock = clock.Add(opts.Wait - time.Second)
	clockMu.Unlock()
	for k, v := range map[string]string{backend.MetaGatewayWebSocket: "ws" + strings.TrimPrefix(mgmt, "http"), backend.MetaGatewayManagement: mgmt} {
		if err := b.DB.SetMeta(ctx, k, v); err != nil {
			t.Fatal(err)
		}
	}
	if err := <-done; err != nil {
		t.Fatalf("the broker, once the gateway started: %v\n%s", err, logs)
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	if len(q.waits) != 1 || q.waits[0] != time.Second {
		t.Errorf("the broker received with waits %v; want one receive waiting what was left of --wait %s: 1s", q.waits, opts.Wait)
	}
	if got := g.bodies("conn-alice"); len(got) != 1 || got[0] != `"hi"` {
		t.Errorf("alice got %q; the broker printed %q and logged:\n%s", got, out, logs)
	}
}

// TestTheMessagesHandledAtOnceShareThePushersConnections: --workers
// messages are handled at once, each posting to --concurrency connections
// at once, through one Management API client of --concurrency connections.
// The posts past them waited in its pool with their timeout running, and
// one that waited past it failed, never sent, and was tried again (in the
// end, a message given back though nothing had refused it). A post now
// waits for one of --concurrency slots before its timeout starts. Here
// the client has one connection, six messages are handled at once, and
// the endpoint answers each post in a quarter of the post timeout: the
// posts past the fourth waited longer than it, and failed; now each is
// sent once, and every message is delivered with no failure in its
// report.
func TestTheMessagesHandledAtOnceShareThePushersConnections(t *testing.T) {
	const timeout, messages = time.Second, 6
	var mu sync.Mutex
	requests, inFlight, most := 0, 0, 0
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.ReadAll(r.Body)
		mu.Lock()
		requests++
		inFlight++
		most = max(most, inFlight)
		mu.Unlock()
		time.Sleep(timeout / 4)
		mu.Lock()
		inFlight--
		mu.Unlock()
	}))
	t.Cleanup(srv.Close)
	b := localBackend(t, srv.URL)
	for i := range messages {
		if _, err := b.Queue.Send(t.Context(), fmt.Appendf(nil, `{"id":"m-%d","users":["alice"],"topics":["updates"],"body":%d}`, i, i)); err != nil {
			t.Fatal(err)
		}
	}
	opts, out, logs := brokerOpts(b)
	opts.Once, opts.Concurrency, opts.Workers, opts.postTimeout = true, 1, messages, timeout
	if err := brokerRun(t.Context(), opts); err != nil {
		t.Fatal(err)
	}
	if got, want := out.String(), fmt.Sprintf("received=%d done=%d retry=0 dead_lettered=0\n", messages, messages); got != want {
		t.Errorf("stdout %q; want %q\nlogs:\n%s", got, want, logs)
	}
	for i := range messages {
		id := fmt.Sprintf("m-%d", i)
		rep, err := b.Store.GetReport(t.Context(), id)
		if err != nil || rep.Delivered != 1 || len(rep.Errors) != 0 {
			t.Errorf("report of %s %+v, %v; want delivered, no failure", id, rep, err)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if requests != messages || most != 1 {
		t.Errorf("%d posts reached the endpoint, at most %d at once; want each of the %d sent once, one at a time", requests, most, messages)
	}
}

// stoppingSeen is a queue that notes what the broker would say it
// finishes after Ctrl-C (opts.Stopping.Pending) while it waits for a
// batch (then cancels, as Ctrl-C does) and while it settles a message in
// hand (DeadLetter).
type stoppingSeen struct {
	store.Queue
	stopping          *cmdutil.Stopping
	cancel            context.CancelFunc
	idle, inHand      *[]cmdutil.Work
	received, settled *bool
}

func (q stoppingSeen) Receive(ctx context.Context, n int, vis, wait time.Duration) ([]store.Message, error) {
	if *q.received {
		*q.idle = q.stopping.Pending()
		q.cancel()
	}
	*q.received = true
	return q.Queue.Receive(ctx, n, vis, wait)
}

func (q stoppingSeen) DeadLetter(ctx context.Context, m store.Message, reason string) error {
	*q.inHand = q.stopping.Pending()
	*q.settled = true
	return q.Queue.DeadLetter(ctx, m, reason)
}

// TestCtrlCSaysTheBrokerFinishesMessagesOnlyWhenItHoldsSome: Ctrl-C to
// an idle broker said "stopping: finishing the messages in hand" though
// it held none and stopped at once. The work is recorded while a batch
// is in hand only.
func TestCtrlCSaysTheBrokerFinishesMessagesOnlyWhenItHoldsSome(t *testing.T) {
	_, mgmt := newGateway(t)
	b := localBackend(t, mgmt)
	if _, err := b.Queue.Send(t.Context(), []byte("not an envelope")); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	opts, _, logs := brokerOpts(b)
	opts.Stopping = &cmdutil.Stopping{}
	var idle, inHand []cmdutil.Work
	var received, settled bool
	b.Queue = stoppingSeen{Queue: b.Queue, stopping: opts.Stopping, cancel: cancel, idle: &idle, inHand: &inHand, received: &received, settled: &settled}
	if err := brokerRun(ctx, opts); err != nil {
		t.Fatal(err)
	}
	if !settled {
		t.Fatalf("the message was not dead-lettered:\n%s", logs)
	}
	if len(inHand) != 1 || !strings.Contains(inHand[0].What, "finishing the messages in hand") {
		t.Errorf("with a message in hand, Ctrl-C would say %+v; want the messages in hand", inHand)
	}
	if len(idle) != 0 {
		t.Errorf("waiting for a batch, Ctrl-C would say %+v; want nothing: no message is in hand", idle)
	}
	if p := opts.Stopping.Pending(); len(p) != 0 {
		t.Errorf("after the run: %+v still recorded", p)
	}
}

// TestAProgramThatTookTheGatewaysPortGetsNoDeliveryCounted: the serve
// the broker posts to stopped, and another program took its port,
// answering every call 200. Its answers do not carry the gateway's run ID
// (recorded in the state dir): the delivery is a retry, not done, and the
// message stays on the queue; once a serve runs again (elsewhere), it is
// delivered there, once. The 200 counted it done and the broker deleted
// it: lost.
func TestAProgramThatTookTheGatewaysPortGetsNoDeliveryCounted(t *testing.T) {
	stranger := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
	}))
	t.Cleanup(stranger.Close)
	b := localBackend(t, stranger.URL)
	if err := b.DB.SetMeta(t.Context(), backend.MetaGatewayID, "run-of-the-serve-that-stopped"); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Queue.Send(t.Context(), []byte(`{"users":["alice"],"topics":["updates"],"body":"hi"}`)); err != nil {
		t.Fatal(err)
	}
	opts, out, logs := brokerOpts(b)
	opts.Once = true
	if err := brokerRun(t.Context(), opts); err != nil {
		t.Fatal(err)
	}
	if got := out.String(); got != "received=1 done=0 retry=1 dead_lettered=0\n" {
		t.Errorf("stdout %q; want the delivery retried, not done; logs:\n%s", got, logs)
	}
	if want := "is not this state dir's socks serve"; !strings.Contains(logs.String(), want) {
		t.Errorf("the log does not say %q:\n%s", want, logs)
	}
	if _, err := b.Store.GetConnection(t.Context(), "conn-alice"); err != nil {
		t.Errorf("alice's record: %v; want it kept", err)
	}
	// Still on the queue (hidden until its retry): give it back now.
	if n, err := b.DB.Queue().GiveBackInFlight(t.Context()); err != nil || n != 1 {
		t.Fatalf("%d messages on the queue in flight (%v); want the one still there", n, err)
	}

	// A serve runs again, elsewhere: the message is delivered there.
	g, mgmt := newGatewayRun(t, "run-2")
	for k, v := range map[string]string{backend.MetaGatewayID: "run-2", backend.MetaGatewayWebSocket: "ws" + strings.TrimPrefix(mgmt, "http"), backend.MetaGatewayManagement: mgmt} {
		if err := b.DB.SetMeta(t.Context(), k, v); err != nil {
			t.Fatal(err)
		}
	}
	opts, out, logs = brokerOpts(b)
	opts.Once = true
	if err := brokerRun(t.Context(), opts); err != nil {
		t.Fatal(err)
	}
	if got := out.String(); got != "received=1 done=1 retry=0 dead_lettered=0\n" {
		t.Errorf("stdout %q once a serve runs again; logs:\n%s", got, logs)
	}
	if got := g.bodies("conn-alice"); len(got) != 1 || got[0] != `"hi"` {
		t.Errorf("alice got %q; want the message once", got)
	}
}
