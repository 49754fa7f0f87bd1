package bench

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"regexp"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/socks-dev/socks/bench/ceiling"
	"github.com/socks-dev/socks/config"
	"github.com/socks-dev/socks/internal/lockedbuf"
	"github.com/socks-dev/socks/iostreams"
	"github.com/socks-dev/socks/wsclient"
)

// fakeClock moves only when told to: by advance, and by the bench's
// sleeps, which move it on to the end of the sleep at once.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newFakeClock() *fakeClock { return &fakeClock{t: time.Unix(1_000_000, 0)} }

func (c *fakeClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func (c *fakeClock) sleep(ctx context.Context, d time.Duration) error {
	if d > 0 {
		c.advance(d)
	}
	return ctx.Err()
}

// fakeTarget is a WebSocket target on loopback whose costs are known: each
// fan-out client's handshake moves the clock connectCost on, each latency
// message moves it delay(seq) on before it is sent and each fan-out
// fanCost, and deliver decides
// what each client of a topic gets of message seq (copies: 0 drops it)
// and whether its connection is closed after.
type fakeTarget struct {
	clock       *fakeClock
	connectCost time.Duration
	delay       func(seq int) time.Duration
	fanCost     time.Duration
	deliver     func(client, seq int) (copies int, closeAfter bool)
	// onPublish, when set, runs as message seq is published.
	onPublish func(seq int)
	// onUpgrade, when set, runs on each connection as it is upgraded,
	// before the target reads it.
	onUpgrade func(c *websocket.Conn)

	mu          sync.Mutex
	conns       map[string][]*websocket.Conn // by topic
	fanUpgrades int
	published   []time.Time // the clock at each fan-out's publish
	dialed      []time.Time // the clock at each fan-out client's handshake
	url         string
}

func newFakeTarget(t *testing.T, clock *fakeClock) *fakeTarget {
	ft := &fakeTarget{
		clock:   clock,
		delay:   func(int) time.Duration { return 0 },
		deliver: func(int, int) (int, bool) { return 1, false },
		conns:   map[string][]*websocket.Conn{},
	}
	up := websocket.Upgrader{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		topic := r.URL.Query().Get("topic")
		// Held until the connection is recorded: a client has its 101
		// before the handler goes on, and a publish must reach it.
		ft.mu.Lock()
		if strings.HasSuffix(topic, "-fan") {
			ft.clock.advance(ft.connectCost)
			ft.fanUpgrades++
			ft.dialed = append(ft.dialed, ft.clock.now())
		}
		c, err := up.Upgrade(w, r, nil)
		if err != nil {
			ft.mu.Unlock()
			return
		}
		ft.conns[topic] = append(ft.conns[topic], c)
		onUpgrade := ft.onUpgrade
		ft.mu.Unlock()
		if onUpgrade != nil {
			onUpgrade(c)
		}
		for {
			if _, _, err := c.ReadMessage(); err != nil {
				return
			}
		}
	}))
	t.Cleanup(func() {
		ft.mu.Lock()
		for _, cs := range ft.conns {
			for _, c := range cs {
				c.Close()
			}
		}
		ft.mu.Unlock()
		srv.Close()
	})
	ft.url = "ws" + strings.TrimPrefix(srv.URL, "http") + "/"
	return ft
}

// publish is the plan's publish: the message's known delay, then each
// client of the topic gets what deliver says.
func (ft *fakeTarget) publish(_ context.Context, topic string, body []byte) error {
	var m probe
	if err := json.Unmarshal(body, &m); err != nil {
		return err
	}
	if ft.onPublish != nil {
		ft.onPublish(m.Seq)
	}
	if strings.HasSuffix(topic, "-fan") {
		ft.clock.advance(ft.fanCost)
	} else {
		ft.clock.advance(ft.delay(m.Seq))
	}
	ft.mu.Lock()
	defer ft.mu.Unlock()
	if strings.HasSuffix(topic, "-fan") {
		ft.published = append(ft.published, ft.clock.now())
	}
	for i, c := range ft.conns[topic] {
		copies, closeAfter := ft.deliver(i, m.Seq)
		if strings.HasSuffix(topic, "-lat") {
			copies, closeAfter = 1, false
		}
		for range copies {
			if err := c.WriteMessage(websocket.TextMessage, body); err != nil {
				return err
			}
		}
		if closeAfter {
			c.Close()
		}
	}
	return nil
}

// plan is a bench of the target on the fake clock, without chatter IDs,
// whose gateway's resident memory is 10,000 KiB and 20 KiB more per
// fan-out client it accepted.
func (ft *fakeTarget) plan() plan {
	p := plan{wsURL: ft.url, callback: "http://unused.invalid", publish: ft.publish, lost: "the fake target lost it"}
	p.query = func(_ context.Context, _ int, topic string) (string, error) { return "?topic=" + topic, nil }
	p.now, p.sleep = ft.clock.now, ft.clock.sleep
	p.pid = 4242
	p.rss = func(int) (int64, error) {
		ft.mu.Lock()
		defer ft.mu.Unlock()
		return 10_000 + 20*int64(ft.fanUpgrades), nil
	}
	return p
}

func measureOptions(n, dialers, fanouts, samples int, timeout time.Duration) *Options {
	ios, _, _, _ := iostreams.Test()
	return &Options{IO: ios, Connections: n, Dialers: dialers, Fanouts: fanouts, Samples: samples, Timeout: timeout}
}

func near(got, want float64) bool { return math.Abs(got-want) <= 1e-9*math.Max(1, math.Abs(want)) }

// TestEveryFigureIsTheKnownAnswer: on a target whose costs are known, each
// figure is what they make it: 20 handshakes of 1 ms each are 1,000
// connects/s; fan-outs that take 50 ms each to 20 clients are 400
// deliveries/s; latencies of 1..20 ms have p50 10, p95 19, p99 20 (the
// nearest rank); 20 KiB per client is 20 KiB per connection. A target that
// sends every message twice is counted once.
func TestEveryFigureIsTheKnownAnswer(t *testing.T) {
	for _, copies := range []int{1, 2} {
		t.Run(fmt.Sprintf("%d copies of each message", copies), func(t *testing.T) {
			ft := newFakeTarget(t, newFakeClock())
			ft.connectCost = time.Millisecond
			ft.delay = func(seq int) time.Duration {
				switch {
				case seq < 0: // the untimed first message
					return time.Hour
				}
				return time.Duration(20-seq) * time.Millisecond
			}
			ft.fanCost = 50 * time.Millisecond
			ft.deliver = func(int, int) (int, bool) { return copies, false }
			res, err := measure(context.Background(), measureOptions(20, 4, 3, 20, time.Minute), ft.plan(), "")
			if err != nil {
				t.Fatal(err)
			}
			if !near(res.Connects, 1000) {
				t.Errorf("connects/s = %v, want 1000 (20 handshakes of 1 ms)", res.Connects)
			}
			if res.Connected != 20 {
				t.Errorf("connected = %d, want 20", res.Connected)
			}
			if f := res.FanOut; f.Publishes != 3 || f.Deliveries != 60 || !near(f.PerSecond, 400) {
				t.Errorf("fan-out %+v, want 3 publishes, 60 deliveries, 400/s (20 clients in 50 ms)", f)
			}
			if l := res.Latency; l.Samples != 20 || l.P50 != 10 || l.P95 != 19 || l.P99 != 20 || l.Max != 20 {
				t.Errorf("latency %+v, want 20 samples: p50 10, p95 19, p99 20, max 20 ms", l)
			}
			if m := res.Memory; m == nil || m.BeforeKiB != 10_000 || m.AfterKiB != 10_400 || m.PerConnection != 20 {
				t.Errorf("memory %+v, want 10000 → 10400 KiB, 20 KiB per connection", m)
			}
		})
	}
}

// TestATargetThatLosesMessagesIsNoFasterForIt: a target that drops a tenth
// of the second fan-out ends the bench with the loss counted; the figure
// is of the one fan-out that arrived whole, and the run is not complete.
func TestATargetThatLosesMessagesIsNoFasterForIt(t *testing.T) {
	ft := newFakeTarget(t, newFakeClock())
	ft.fanCost = 10 * time.Millisecond
	ft.deliver = func(client, seq int) (int, bool) {
		if seq >= 1 && client%10 == 0 {
			return 0, false
		}
		return 1, false
	}
	// --timeout bounds the wait for the lost one; the whole one has
	// plenty.
	res, err := measure(context.Background(), measureOptions(20, 4, 3, 0, 2*time.Second), ft.plan(), "")
	if err == nil || !strings.Contains(err.Error(), "fan-out 2: 18 of 20 clients received the message within 2s") {
		t.Fatalf("err = %v; want fan-out 2 to fail with 18 of 20 delivered", err)
	}
	if f := res.FanOut; f.Publishes != 1 || f.Deliveries != 20 || !near(f.PerSecond, 2000) {
		t.Errorf("fan-out %+v; want only the first, whole one: 20 deliveries at 2000/s", f)
	}
}

// TestAConnectionTheServerClosesFailsTheFanOutAtOnce: a target that closes
// every connection after one message ends the bench saying so, not after
// --timeout (a minute here) as a message that did not arrive; and memory
// is not divided by clients the server no longer holds.
func TestAConnectionTheServerClosesFailsTheFanOutAtOnce(t *testing.T) {
	t.Run("fan-out", func(t *testing.T) {
		ft := newFakeTarget(t, newFakeClock())
		ft.deliver = func(client, seq int) (int, bool) { return 1, true }
		p := ft.plan()
		p.pid = 0
		res, err := measure(context.Background(), measureOptions(10, 2, 3, 0, time.Minute), p, "")
		if err == nil || !strings.Contains(err.Error(), "fan-out 2: the server closed") {
			t.Fatalf("err = %v; want fan-out 2 to fail as the server closed the connections", err)
		}
		if res.FanOut.Publishes != 1 {
			t.Errorf("fan-out %+v, want the first one only", res.FanOut)
		}
	})
	t.Run("during a fan-out, before its message", func(t *testing.T) {
		ft := newFakeTarget(t, newFakeClock())
		// Client 3 is closed instead of getting the second message.
		ft.deliver = func(client, seq int) (int, bool) {
			if seq == 1 && client == 3 {
				return 0, true
			}
			return 1, false
		}
		p := ft.plan()
		p.pid = 0
		_, err := measure(context.Background(), measureOptions(10, 2, 3, 0, time.Minute), p, "")
		if err == nil || !strings.Contains(err.Error(), "fan-out 2: the server closed 1 of the 10 connections, 1 of them before this message reached them") {
			t.Fatalf("err = %v; want fan-out 2 to fail at once as client 3 was closed without it", err)
		}
	})
	t.Run("memory", func(t *testing.T) {
		ft := newFakeTarget(t, newFakeClock())
		p := ft.plan()
		// The server closes a connection as its memory is read, and
		// the read waits until the client has seen it.
		var once sync.Once
		rss := p.rss
		p.rss = func(pid int) (int64, error) {
			ft.mu.Lock()
			cs := ft.conns["bench--fan"]
			ft.mu.Unlock()
			if len(cs) == 10 {
				once.Do(func() {
					select {
					case <-closeFromServer(cs[0]):
					case <-time.After(time.Minute):
						t.Error("the client did not see its connection closed within a minute")
					}
				})
			}
			return rss(pid)
		}
		res, err := measure(context.Background(), measureOptions(10, 2, 0, 0, time.Minute), p, "")
		if err == nil || !strings.Contains(err.Error(), "the server closed 1 of the 10 idle connections before their memory was read") || res.Memory != nil {
			t.Fatalf("err = %v, memory %+v; want no memory figure once the server closed a connection", err, res.Memory)
		}
	})
}

// closeFromServer sends the client a close frame and returns a channel
// closed once the client has closed its end (after it has seen it).
func closeFromServer(c *websocket.Conn) <-chan struct{} {
	done := make(chan struct{})
	_ = c.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseGoingAway, "bye"), time.Now().Add(10*time.Second))
	go func() {
		defer close(done)
		_, _ = io.Copy(io.Discard, c.UnderlyingConn())
	}()
	return done
}

// TestThePacerHoldsTheRateAfterABurstAndAStall: 1,000 events asked for at
// once, then, after a stall that leaves every slot so far in the past,
// 1,000 more: in no second do more than the rate start. A schedule fixed
// at the start (event i at start + i/rate) let the second thousand go at
// once.
func TestThePacerHoldsTheRateAfterABurstAndAStall(t *testing.T) {
	const rate = 400
	var mu sync.Mutex
	clock := time.Unix(1_000_000, 0)
	var starts []time.Time
	now := func() time.Time { mu.Lock(); defer mu.Unlock(); return clock }
	// The sleep records when the event starts and returns: every event
	// is asked for at the same instant.
	sleep := func(_ context.Context, d time.Duration) error {
		mu.Lock()
		defer mu.Unlock()
		starts = append(starts, clock.Add(max(d, 0)))
		return nil
	}
	p := newPacer(rate, now, sleep)
	ask := func(n int) {
		var wg sync.WaitGroup
		for range 50 {
			wg.Go(func() {
				for range n / 50 {
					if err := p.wait(context.Background(), 1); err != nil {
						t.Error(err)
					}
				}
			})
		}
		wg.Wait()
	}
	t0 := clock
	ask(1000)
	mu.Lock()
	clock = clock.Add(10 * time.Second)
	t1 := clock
	mu.Unlock()
	ask(1000)

	slices.SortFunc(starts, func(a, b time.Time) int { return a.Compare(b) })
	if len(starts) != 2000 {
		t.Fatalf("%d events started, want 2000", len(starts))
	}
	for i := 0; i+rate < len(starts); i++ {
		if d := starts[i+rate].Sub(starts[i]); d < time.Second {
			t.Fatalf("events %d to %d started within %s: more than %d a second", i, i+rate, d, rate)
		}
	}
	// Nor does it wait needlessly: the first of each group starts at once.
	if !starts[0].Equal(t0) || !starts[1000].Equal(t1) {
		t.Errorf("the groups started at +%s and +%s after they were asked for, want at once", starts[0].Sub(t0), starts[1000].Sub(t1))
	}
	// A pacer of rate 0 never waits.
	if err := newPacer(0, now, func(context.Context, time.Duration) error { t.Error("rate 0 slept"); return nil }).wait(context.Background(), 5); err != nil {
		t.Error(err)
	}
}

// gaps are the times between the target's connects, and between its
// fan-outs' publishes, on the bench's clock.
func (ft *fakeTarget) gaps() (dialed, published []time.Duration) {
	apart := func(ts []time.Time) []time.Duration {
		var out []time.Duration
		for i := 1; i < len(ts); i++ {
			out = append(out, ts[i].Sub(ts[i-1]))
		}
		return out
	}
	ft.mu.Lock()
	defer ft.mu.Unlock()
	return apart(ft.dialed), apart(ft.published)
}

// TestARemoteBenchIsPacedInEveryPhase: paced as against API Gateway, the
// connects start 1/400 s apart (one dialer: in order), the fan-outs to 10
// clients 10/8000 s apart, and the figures are still the target's.
func TestARemoteBenchIsPacedInEveryPhase(t *testing.T) {
	ft := newFakeTarget(t, newFakeClock())
	p := ft.plan()
	p.pid = 0
	p.pace.connectsPerSecond, p.pace.deliveriesPerSecond = Pace(true, false, 0)
	res, err := measure(context.Background(), measureOptions(10, 1, 4, 3, time.Minute), p, "")
	if err != nil {
		t.Fatal(err)
	}
	dialed, published := ft.gaps()
	if len(dialed) != 9 || slices.Min(dialed) < time.Second/400 {
		t.Errorf("connects %v apart; want 10, each at least 2.5ms after the one before", dialed)
	}
	if len(published) != 3 || slices.Min(published) < 10*time.Second/8000 {
		t.Errorf("fan-outs %v apart; want 4, each at least 1.25ms after the one before", published)
	}
	if res.FanOut.Deliveries != 40 {
		t.Errorf("fan-out %+v", res.FanOut)
	}
}

// TestABenchThatEndsEarlyPrintsWhatItMeasuredAndFails: a target that
// refuses every other connect (503), and Ctrl-C during a fan-out: the
// bench fails (exits non-zero), and still prints the phases that ended,
// marked incomplete, in --json and in the table, with a dash for what
// was not measured.
func TestABenchThatEndsEarlyPrintsWhatItMeasuredAndFails(t *testing.T) {
	// target is a ceiling that refuses upgrade n when refuse(n), and runs
	// onBroadcast(n) before broadcast n (from 1), which it skips when
	// that returns false.
	target := func(t *testing.T, refuse func(n int) bool, onBroadcast func(n int) bool) string {
		var mu sync.Mutex
		upgrades, broadcasts := 0, 0
		c := ceiling.New()
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			mu.Lock()
			switch r.URL.Path {
			case "/":
				upgrades++
				if refuse(upgrades) {
					mu.Unlock()
					w.Header().Set("Retry-After", "1")
					http.Error(w, "slow down", http.StatusServiceUnavailable)
					return
				}
			case "/@broadcast":
				broadcasts++
				if !onBroadcast(broadcasts) {
					mu.Unlock()
					return
				}
			}
			mu.Unlock()
			c.ServeHTTP(w, r)
		}))
		t.Cleanup(srv.Close)
		return srv.URL
	}
	run := func(t *testing.T, ctx context.Context, url string, asJSON bool) (string, error) {
		opts := defaults()
		opts.URL, opts.Callback = "ws"+strings.TrimPrefix(url, "http")+"/", url
		opts.Auth, opts.Publish = AuthNone, PublishBroadcast
		opts.Samples, opts.Fanouts, opts.JSON = 2, 3, asJSON
		ios, _, out, _ := iostreams.Test()
		opts.IO, opts.Now = ios, time.Now
		err := benchRun(ctx, opts)
		return out.String(), err
	}
	decode := func(t *testing.T, out string) Result {
		t.Helper()
		var res Result
		if err := json.Unmarshal([]byte(out), &res); err != nil {
			t.Fatalf("stdout %q is not the result: %v", out, err)
		}
		return res
	}

	t.Run("every other connect refused", func(t *testing.T) {
		// The latency listener is the first upgrade: allowed.
		url := target(t, func(n int) bool { return n%2 == 0 }, func(int) bool { return true })
		out, err := run(t, context.Background(), url, true)
		if err == nil || !strings.Contains(err.Error(), "503") {
			t.Fatalf("bench = %v; want it to fail naming the 503", err)
		}
		res := decode(t, out)
		if res.Complete || !strings.Contains(res.Error, "503") || res.Connected >= res.Connections || res.Connects != 0 {
			t.Errorf("result %+v; want it incomplete, saying 503, fewer clients connected than asked, no connects/s", res)
		}
		if res.Latency.Samples != 2 {
			t.Errorf("latency %+v; want the 2 samples measured before the connects", res.Latency)
		}
		url = target(t, func(n int) bool { return n%2 == 0 }, func(int) bool { return true })
		if out, err = run(t, context.Background(), url, false); err == nil || !strings.Contains(out, "incomplete") || !strings.Contains(out, "—") {
			t.Errorf("bench = %v, printed\n%s\nwant the table marked incomplete, with dashes", err, out)
		}
	})
	t.Run("Ctrl-C during a fan-out", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		// Broadcasts 1-3 are the latency phase's (one untimed, two
		// samples), 4 the first fan-out; the second is never sent: the
		// user presses Ctrl-C as it waits.
		url := target(t, func(int) bool { return false }, func(n int) bool {
			if n == 5 {
				cancel()
				return false
			}
			return true
		})
		out, err := run(t, ctx, url, true)
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("bench = %v; want it interrupted", err)
		}
		res := decode(t, out)
		if res.Complete || res.Error != "interrupted" || res.FanOut.Publishes != 1 || res.FanOut.PerSecond <= 0 || res.Connects <= 0 || res.Latency.Samples != 2 {
			t.Errorf("result %+v; want it incomplete (interrupted), with the latency, the connects and the first fan-out", res)
		}
	})
}

// TestTheCostWarningIsForAWSOnly: a bench of a gateway on this machine
// with the local backend warns of nothing; one on the AWS backend whose
// chatter IDs go to AWS's own DynamoDB warns that it costs requests,
// though the gateway is local; one whose DynamoDB is an emulator on this
// machine does not.
func TestTheCostWarningIsForAWSOnly(t *testing.T) {
	srv := httptest.NewServer(ceiling.New())
	t.Cleanup(srv.Close)
	for _, tc := range []struct {
		name     string
		aws      bool
		endpoint string
		want     string
	}{
		{"local backend", false, "", ""},
		{"AWS backend, AWS's DynamoDB", true, "", "uses AWS's own DynamoDB: it costs requests"},
		{"AWS backend, DynamoDB Local", true, "http://127.0.0.1:8000", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			open := localBackend(t)
			b, _ := open(context.Background())
			if tc.aws {
				b.Config.Backend = config.BackendAWS
				b.Config.AWS.DynamoDBEndpointURL = tc.endpoint
			}
			opts := defaults()
			opts.URL, opts.Callback = "ws"+strings.TrimPrefix(srv.URL, "http")+"/", srv.URL
			opts.Publish, opts.Backend = PublishBroadcast, open
			opts.Connections, opts.Samples, opts.Fanouts = 3, 1, 1
			res, errOut := runBench(t, opts)
			if res.Remote || res.Paced {
				t.Errorf("a loopback target is remote=%v paced=%v", res.Remote, res.Paced)
			}
			if tc.want == "" && errOut != "" {
				t.Errorf("stderr %q; want no warning", errOut)
			}
			if tc.want != "" && !strings.Contains(errOut, tc.want) {
				t.Errorf("stderr %q; want it to say %q", errOut, tc.want)
			}
		})
	}
}

// TestABroadcastTargetThatGoesAwayIsSaidInTheUsersWords: the ceiling gone
// mid-run (its port refuses) ended the bench with Go's words: `Post
// "http://...": dial tcp ...: connect: connection refused`.
func TestABroadcastTargetThatGoesAwayIsSaidInTheUsersWords(t *testing.T) {
	ws := httptest.NewServer(ceiling.New())
	t.Cleanup(ws.Close)
	gone := httptest.NewServer(http.NotFoundHandler())
	gone.Close()
	opts := rawTargetOptions(strings.TrimPrefix(ws.URL, "http://"), "latency")
	opts.Callback = gone.URL
	err := benchRun(context.Background(), opts)
	if err == nil || !strings.Contains(err.Error(), "broadcasting to "+gone.URL+"/@broadcast: nothing listens there (connection refused)") {
		t.Fatalf("bench = %v; want it to say nothing listens at the broadcast target", err)
	}
	for _, internal := range []string{"Post ", "dial tcp", "connect:"} {
		if strings.Contains(err.Error(), internal) {
			t.Errorf("error %q speaks of %q", err, internal)
		}
	}
}

// TestMemoryBeforeTheClientsIsReadOnceSettled: a gateway still growing as
// the bench starts (just started, or done with the latency listener) had
// its growth counted against the clients: the memory before them was one
// read, the one after them a settled one.
func TestMemoryBeforeTheClientsIsReadOnceSettled(t *testing.T) {
	ft := newFakeTarget(t, newFakeClock())
	p := ft.plan()
	// 10,000 KiB growing to 12,000 over the first reads, then steady;
	// 20 KiB more per client.
	var mu sync.Mutex
	reads := 0
	rss := p.rss
	p.rss = func(pid int) (int64, error) {
		mu.Lock()
		reads++
		grown := int64(min(reads-1, 4)) * 500
		mu.Unlock()
		v, err := rss(pid)
		return v + grown, err
	}
	res, err := measure(context.Background(), measureOptions(10, 2, 0, 0, time.Minute), p, "")
	if err != nil {
		t.Fatal(err)
	}
	if m := res.Memory; m == nil || m.BeforeKiB != 12_000 || m.AfterKiB != 12_200 || m.PerConnection != 20 {
		t.Errorf("memory %+v, want 12000 → 12200 KiB, 20 KiB per connection", m)
	}
}

// TestProgressIsTheSharedSpinnerOnATerminalOnly: bench drew a progress
// line of its own; it now uses cmdutil.Progress like every other long
// command: on terminals a spinner frame, bench's wording and the time
// taken, cleared at the end; off a terminal or with --json nothing on
// stderr, no escape code.
func TestProgressIsTheSharedSpinnerOnATerminalOnly(t *testing.T) {
	spinning := regexp.MustCompile(`\r\x1b\[K. fan-out 1/2 to 4 clients \(`)
	run := func(t *testing.T, stdoutTTY, stderrTTY, jsonOut bool, wait bool) string {
		t.Helper()
		ft := newFakeTarget(t, newFakeClock())
		ft.fanCost = 10 * time.Millisecond
		opts := measureOptions(4, 2, 2, 2, time.Minute)
		opts.IO.SetTTY(false, stdoutTTY, stderrTTY)
		errOut := &lockedbuf.Buffer{}
		opts.IO.ErrOut = errOut
		opts.JSON = jsonOut
		p := ft.plan()
		publish := p.publish
		p.publish = func(ctx context.Context, topic string, body []byte) error {
			// The first fan-out waits until the spinner has drawn it.
			if wait && strings.HasSuffix(topic, "-fan") && strings.Contains(string(body), `"seq":0`) {
				deadline := time.After(30 * time.Second)
				for !spinning.MatchString(errOut.String()) {
					select {
					case <-deadline:
						return fmt.Errorf("stderr %q never showed the spinner", errOut)
					case <-time.After(10 * time.Millisecond):
					}
				}
			}
			return publish(ctx, topic, body)
		}
		if _, err := measure(context.Background(), opts, p, "r"); err != nil {
			t.Fatal(err)
		}
		return errOut.String()
	}
	t.Run("on terminals the shared spinner shows the phase and is cleared", func(t *testing.T) {
		if got := run(t, true, true, false, true); !strings.HasSuffix(got, "\r\x1b[K") {
			t.Errorf("stderr %q; want the spinner line cleared at the end", got)
		}
	})
	for _, tc := range []struct {
		name                        string
		stdoutTTY, stderrTTY, jsonO bool
	}{
		{"off a terminal nothing is drawn", false, false, false},
		{"stdout piped draws nothing", false, true, false},
		{"--json on terminals draws nothing", true, true, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := run(t, tc.stdoutTTY, tc.stderrTTY, tc.jsonO, false); got != "" {
				t.Errorf("stderr %q; want nothing (no progress, no escape code)", got)
			}
		})
	}
}

// TestMemoryThatFellIsNotAFigure: a gateway that gave memory back to the
// system while few clients connected read "-4.48 KiB" per connection in a
// walk of the README (`socks bench --connections 100 --json`). A fall says
// nothing about what a connection costs: no memory figure, and a warning
// on stderr saying why and what to do.
func TestMemoryThatFellIsNotAFigure(t *testing.T) {
	ft := newFakeTarget(t, newFakeClock())
	p := ft.plan()
	var mu sync.Mutex
	reads := 0
	p.rss = func(int) (int64, error) {
		mu.Lock()
		defer mu.Unlock()
		reads++
		if reads <= 3 { // settled before the clients
			return 10_000, nil
		}
		return 9_500, nil
	}
	opts := measureOptions(10, 2, 1, 0, time.Minute)
	ios, _, _, errOut := iostreams.Test()
	opts.IO = ios
	res, err := measure(context.Background(), opts, p, "")
	if err != nil {
		t.Fatal(err)
	}
	if res.Memory != nil {
		t.Errorf("memory %+v; want none when it fell", res.Memory)
	}
	if res.FanOut.Publishes != 1 {
		t.Errorf("fan-out %+v; want the bench to go on after the memory", res.FanOut)
	}
	want := "memory per connection not measured: the gateway's resident memory fell (10000 → 9500 KiB) while 10 clients connected; more --connections make it tell"
	if !strings.Contains(errOut.String(), want) {
		t.Errorf("stderr %q; want %q", errOut, want)
	}
}

// TestAMessageOverTheReadLimitEndsTheBenchWithAClearError: a target that
// sends a client a message bigger than listen accepts (twice API
// Gateway's 128 KB) does not make the bench hold it: the client drops the
// connection and the bench says why, in the latency phase and the
// fan-out alike.
func TestAMessageOverTheReadLimitEndsTheBenchWithAClearError(t *testing.T) {
	for _, phase := range []string{"latency", "fan-out"} {
		t.Run(phase, func(t *testing.T) {
			ft := newFakeTarget(t, newFakeClock())
			p := ft.plan()
			p.pid = 0
			huge := []byte(strings.Repeat("x", wsclient.DefaultReadLimit+1))
			p.publish = func(ctx context.Context, topic string, body []byte) error {
				ft.mu.Lock()
				for _, c := range ft.conns[topic] {
					_ = c.WriteMessage(websocket.TextMessage, huge)
				}
				ft.mu.Unlock()
				// The clients drop their connections on the huge
				// message, so the write of body to them may fail: that
				// is the fake target's failure, not the bench's, and a
				// real publish goes through a gateway that does not
				// fail on it. The bench must say what the clients saw.
				_ = ft.publish(ctx, topic, body)
				return nil
			}
			opts := measureOptions(3, 1, 1, 0, time.Minute)
			if phase == "latency" {
				opts.Samples = 1
			}
			_, err := measure(context.Background(), opts, p, "")
			want := fmt.Sprintf("over %d bytes", wsclient.DefaultReadLimit)
			if err == nil || !strings.Contains(err.Error(), want) {
				t.Fatalf("err = %v; want the bench to fail saying a message was %s", err, want)
			}
		})
	}
}

// TestALatencyListenerFloodedWithRepeatsIsNotHeld: a target that sends
// the latency listener many repeats of each message (here 64 of 64 KB,
// more than the socket's buffers hold), as the publish posts them, did
// hold the listener's reader on its channel of 16 while nothing read it:
// the target's writes then blocked, so the publish never returned and
// the bench hung. Repeats are dropped as they are read; the figures are
// of the first copy; and the reader has ended when the phase returns.
func TestALatencyListenerFloodedWithRepeatsIsNotHeld(t *testing.T) {
	ft := newFakeTarget(t, newFakeClock())
	p := ft.plan()
	p.pid = 0
	pad := strings.Repeat("x", 64<<10)
	p.publish = func(_ context.Context, topic string, body []byte) error {
		var m probe
		if err := json.Unmarshal(body, &m); err != nil {
			return err
		}
		// A repeat is the same message, padded: its copies are big.
		big, _ := json.Marshal(map[string]any{"bench": "", "seq": m.Seq, "pad": pad})
		ft.clock.advance(time.Millisecond)
		// Written without the target's lock, so that its cleanup can
		// close the connection under a write that blocks.
		ft.mu.Lock()
		conns := slices.Clone(ft.conns[topic])
		ft.mu.Unlock()
		for _, c := range conns {
			for range 64 {
				if err := c.WriteMessage(websocket.TextMessage, big); err != nil {
					return err
				}
			}
		}
		return nil
	}
	opts := measureOptions(1, 1, 0, 5, time.Minute)
	done := make(chan error, 1)
	var res Latency
	go func() {
		var err error
		res, err = latency(context.Background(), opts, p, "", "bench--lat", progress{}, newPacer(0, p.now, p.sleep))
		done <- err
	}()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the latency phase still runs after 30s against a target that repeats each message 64 times")
	}
	if res.Samples != 5 || res.P50 != 1 || res.Max != 1 {
		t.Errorf("latency %+v; want 5 samples of 1 ms (the first copy of each)", res)
	}
	noLatencyReader(t)
}

// noLatencyReader fails t when the latency listener's reader still runs
// once the phase has returned. The phase waits for the reader to close
// readerDone, its last act: the goroutine may still be on its way out
// then, so this waits for it a while (10s at most, for a loaded machine) before it says so.
func noLatencyReader(t *testing.T) {
	t.Helper()
	buf := make([]byte, 1<<20)
	var st string
	for i := 0; i < 2000; i++ {
		if st = string(buf[:runtime.Stack(buf, true)]); !strings.Contains(st, "bench.latency.func") {
			return
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Errorf("the latency listener's reader still runs after the phase returned:\n%s", st)
}

// TestTheLatencyListenerKeepsItselfAliveThroughASilence: --idle up to
// 10m is as long as API Gateway's idle timeout, which closed the silent
// listener at the very moment its sample was due. Through the silence
// the listener pings (a WebSocket ping, as listen's keepalive: API
// Gateway answers it itself, without a route, so the stack stays idle),
// at most a minute apart.
func TestTheLatencyListenerKeepsItselfAliveThroughASilence(t *testing.T) {
	ft := newFakeTarget(t, newFakeClock())
	var mu sync.Mutex
	var pings int
	var sleeps []time.Duration
	ft.onUpgrade = func(c *websocket.Conn) {
		c.SetPingHandler(func(data string) error {
			mu.Lock()
			pings++
			mu.Unlock()
			return c.WriteControl(websocket.PongMessage, []byte(data), time.Now().Add(time.Second))
		})
	}
	p := ft.plan()
	p.pid = 0
	p.sleep = func(ctx context.Context, d time.Duration) error {
		mu.Lock()
		defer mu.Unlock()
		// Each minute after the first follows a ping: wait for the
		// target to have read it, as the minute would in earnest.
		// Counted only at the end, pings still in the target's socket
		// as the phase closed its connection were lost to the reset
		// (unread pongs on the listener's side), and the count fell
		// short though every ping was sent.
		for i := 0; pings < len(sleeps) && i < 2000; i++ {
			mu.Unlock()
			time.Sleep(5 * time.Millisecond)
			mu.Lock()
		}
		if pings < len(sleeps) {
			t.Errorf("minute %d of the silence began with %d pings at the target; want %d", len(sleeps)+1, pings, len(sleeps))
		}
		sleeps = append(sleeps, d)
		return ft.clock.sleep(ctx, d)
	}
	opts := measureOptions(1, 1, 0, 0, time.Minute)
	opts.IdleSamples, opts.Idle = 1, 10*time.Minute
	res, err := latency(context.Background(), opts, p, "", "bench--lat", progress{}, newPacer(0, p.now, p.sleep))
	if err != nil || res.AfterIdle == nil || res.AfterIdle.Samples != 1 {
		t.Fatalf("latency = %+v, %v; want one sample after the silence", res, err)
	}
	mu.Lock()
	defer mu.Unlock()
	var total time.Duration
	for _, d := range sleeps {
		if d > time.Minute {
			t.Errorf("the listener was silent for %s; want at most a minute between pings", d)
		}
		total += d
	}
	if total != 10*time.Minute || len(sleeps) != 10 {
		t.Errorf("sleeps %v; want the 10m silence in ten of a minute each", sleeps)
	}
	if pings != 9 {
		t.Errorf("the target got %d pings through the silence; want 9, one between each minute", pings)
	}
}

// TestALatencyListenerSentAMessageNotYetPublishedFailsAtOnce: the
// listener hands on each message once, in increasing order; a target
// that sends one before it was published (it makes them up) would have
// the real one dropped as older, so the bench fails at once saying so,
// not after --timeout (a minute here) as a lost message.
func TestALatencyListenerSentAMessageNotYetPublishedFailsAtOnce(t *testing.T) {
	ft := newFakeTarget(t, newFakeClock())
	p := ft.plan()
	p.pid = 0
	publish := p.publish
	p.publish = func(ctx context.Context, topic string, body []byte) error {
		var m probe
		if err := json.Unmarshal(body, &m); err != nil {
			return err
		}
		if m.Seq == 1 {
			// Message 3 (seq 2) goes out ahead of message 2.
			if err := publish(ctx, topic, mustJSON(probe{Bench: m.Bench, Seq: 2})); err != nil {
				return err
			}
		}
		return publish(ctx, topic, body)
	}
	done := make(chan error, 1)
	go func() {
		_, err := latency(context.Background(), measureOptions(1, 1, 0, 5, time.Minute), p, "", "bench--lat", progress{}, newPacer(0, p.now, p.sleep))
		done <- err
	}()
	select {
	case err := <-done:
		if err == nil || !strings.Contains(err.Error(), "message 3 of this bench before it was published (waiting for message 2)") {
			t.Errorf("err = %v; want it said that message 3 came before it was published", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the latency phase still runs after 30s: it waits out --timeout (1m) for a message it dropped")
	}
	noLatencyReader(t)
}

// TestAMessageMadeUpBeforeTheFirstOneNamesTheFirstOne: the listener's
// first message is untimed, and the bench calls it so when it is lost;
// a made-up message ahead of it said it came while "waiting for message
// 0", a message the bench never numbers so.
func TestAMessageMadeUpBeforeTheFirstOneNamesTheFirstOne(t *testing.T) {
	got := make(chan int, 1)
	got <- 0
	var ended error
	err := awaitSeq(context.Background(), got, &ended, -1, time.Minute, "lost")
	if err == nil || strings.Contains(err.Error(), "message 0") || !strings.Contains(err.Error(), "message 1 of this bench before it was published (waiting for its first message, untimed)") {
		t.Errorf("err = %v; want message 1 said to come ahead of the first message (untimed)", err)
	}
}

// TestALatencyListenerTakesLateCopiesOfEarlierMessagesInItsStride: an
// at-least-once target delivers a message again, late, after the next
// one was published (the warm-up message too), and delivers each twice.
// Those copies are of messages already timed: they are dropped, and the
// bench neither fails (they are not "before it was published") nor times
// a copy.
func TestALatencyListenerTakesLateCopiesOfEarlierMessagesInItsStride(t *testing.T) {
	ft := newFakeTarget(t, newFakeClock())
	ft.delay = func(seq int) time.Duration { return time.Duration(seq+2) * time.Millisecond }
	p := ft.plan()
	p.pid = 0
	publish := p.publish
	p.publish = func(ctx context.Context, topic string, body []byte) error {
		var m probe
		if err := json.Unmarshal(body, &m); err != nil {
			return err
		}
		ft.mu.Lock()
		conns := slices.Clone(ft.conns[topic])
		ft.mu.Unlock()
		for _, c := range conns {
			for _, late := range []int{-1, m.Seq - 1} {
				if late >= -1 && late < m.Seq {
					if err := c.WriteMessage(websocket.TextMessage, mustJSON(probe{Bench: m.Bench, Seq: late})); err != nil {
						return err
					}
				}
			}
		}
		if err := publish(ctx, topic, body); err != nil {
			return err
		}
		// Its copy, at once (the clock does not move).
		for _, c := range conns {
			if err := c.WriteMessage(websocket.TextMessage, body); err != nil {
				return err
			}
		}
		return nil
	}
	done := make(chan error, 1)
	var res Latency
	go func() {
		var err error
		res, err = latency(context.Background(), measureOptions(1, 1, 0, 5, time.Minute), p, "", "bench--lat", progress{}, newPacer(0, p.now, p.sleep))
		done <- err
	}()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("latency: %v; want the late copies dropped", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the latency phase still runs after 30s")
	}
	// Message seq takes seq+2 ms to arrive (its copy, sent after it, is
	// not timed): samples of 2 to 6 ms.
	if res.Samples != 5 || res.P50 != 4 || res.Max != 6 {
		t.Errorf("latency %+v; want 5 samples of 2 to 6 ms, p50 4", res)
	}
	noLatencyReader(t)
}
