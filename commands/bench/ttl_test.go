package bench

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/socks-dev/socks/bench/ceiling"
	"github.com/socks-dev/socks/store"
)

// TestChatterIDsOutlastAPacedConnectPhase: bench issued every chatter ID
// valid 15 minutes, all before the first connect. Paced under API
// Gateway's 500 connects/s, the clients of a large bench connect for
// longer than that (400/s: 360,000 clients take 15 minutes), so the last
// ones were refused with IDs that had expired while they waited their
// turn, and the bench failed. The IDs are now valid 15 minutes after the
// paced connects are due to end. On a fake clock, 20 clients paced one a
// minute connect over 19 minutes; the target verifies each ID at its
// handshake, as $connect does.
func TestChatterIDsOutlastAPacedConnectPhase(t *testing.T) {
	clock := newFakeClock()
	b, _ := localBackend(t)(context.Background())
	c := ceiling.New()
	var mu sync.Mutex
	var refused []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/" {
			q := r.URL.Query()
			if _, err := b.Store.VerifyChatterID(r.Context(), q.Get("geek"), q.Get("id"), clock.now()); err != nil {
				mu.Lock()
				refused = append(refused, q.Get("geek")+" at "+clock.now().Sub(time.Unix(1_000_000, 0)).String())
				mu.Unlock()
				http.Error(w, "Forbidden", http.StatusForbidden)
				return
			}
		}
		c.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)

	opts := measureOptions(20, 4, 1, 0, time.Minute)
	p := plan{wsURL: "ws" + strings.TrimPrefix(srv.URL, "http") + "/", callback: srv.URL}
	p.now, p.sleep = clock.now, clock.sleep
	p.pace.connectsPerSecond = 1.0 / 60
	p.publish, p.lost = broadcaster(p.callback, opts.Timeout)
	auth := newStoreAuth(context.Background(), b.Store, "ttl", clock.now, opts, p.pace)
	p.query = auth.query
	res, err := measure(context.Background(), opts, p, "ttl")
	if err != nil {
		t.Fatalf("bench: %v (refused: %v)", err, refused)
	}
	if res.Connected != 20 || res.FanOut.Deliveries != 20 {
		t.Errorf("%d connected, %d deliveries; want 20 of each", res.Connected, res.FanOut.Deliveries)
	}
}

// rendezvousStore lets no chatter ID be recorded until two are being
// recorded at once: a bench that issues them one at a time never gets
// past the first (its context's deadline ends it).
type rendezvousStore struct {
	store.Store
	mu      sync.Mutex
	waiting int
	both    chan struct{}
}

func (s *rendezvousStore) PutChatterID(ctx context.Context, c store.ChatterID) error {
	s.mu.Lock()
	s.waiting++
	if s.waiting == 2 {
		close(s.both)
	}
	s.mu.Unlock()
	select {
	case <-s.both:
	case <-ctx.Done():
		return ctx.Err()
	}
	return s.Store.PutChatterID(ctx, c)
}

// TestChatterIDsAreIssuedSeveralAtOnce: bench issued its clients' chatter
// IDs one at a time, each a round trip or two to the store; against
// DynamoDB in another region (50 ms each) 10,000 clients took 8 minutes
// before the first connect, and the first IDs expired meanwhile. They
// are now issued several at once, without the count of the geek's live
// IDs (each bench geek is new and holds one).
func TestChatterIDsAreIssuedSeveralAtOnce(t *testing.T) {
	b, _ := localBackend(t)(context.Background())
	rs := &rendezvousStore{Store: b.Store, both: make(chan struct{})}
	clock := newFakeClock()
	ft := newFakeTarget(t, clock)
	opts := measureOptions(6, 3, 0, 0, time.Minute)
	p := ft.plan()
	p.pid = 0
	p.query = newStoreAuth(context.Background(), rs, "many", clock.now, opts, p.pace).query
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	res, err := measure(ctx, opts, p, "many")
	if err != nil {
		t.Fatalf("bench: %v; want the chatter IDs issued two or more at once", err)
	}
	if res.Connected != 6 {
		t.Errorf("%d connected; want 6", res.Connected)
	}
}

// TestWhatAForcedStopLeavesSaysWhenThePacedIDsExpire: a second Ctrl-C
// said the bench's chatter IDs each expire 15 minutes after they were
// issued; paced, they are valid 15 minutes after the connects are due to
// end, and the note says that long (rounded up to the minute).
func TestWhatAForcedStopLeavesSaysWhenThePacedIDsExpire(t *testing.T) {
	for _, tc := range []struct {
		name   string
		perSec float64
		want   string
	}{
		{"unpaced", 0, "each expires by itself within 15 minutes of being issued"},
		{"20 clients paced one a minute", 1.0 / 60, "each expires by itself within 35 minutes of being issued"},
		{"20 clients paced 7 a minute", 7.0 / 60, "each expires by itself within 18 minutes of being issued"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			opts := measureOptions(20, 4, 1, 0, time.Minute)
			auth := newStoreAuth(context.Background(), nil, "ttl", time.Now, opts, pacing{connectsPerSecond: tc.perSec})
			if w := auth.stoppingWork(); !strings.Contains(w.Left, tc.want) || !strings.Contains(w.What, "revoking the chatter IDs the bench issued") {
				t.Errorf("%+v; want it to say %q", w, tc.want)
			}
		})
	}
}

// clockedStore is a store whose records carry another clock's times (on
// AWS, the Lambda judges expiry by AWS's): store.Clock.
type clockedStore struct {
	store.Store
	now time.Time
}

func (s clockedStore) Now(context.Context) (time.Time, error) { return s.now, nil }

// TestBenchChatterIDsLiveTheirTTLByTheStoresClock: from a machine whose
// clock was set behind by more than their 15 minutes, every ID the bench
// issued was expired at issue, and every connect refused.
func TestBenchChatterIDsLiveTheirTTLByTheStoresClock(t *testing.T) {
	b, _ := localBackend(t)(context.Background())
	aws := time.Unix(1_000_000, 0)
	s := clockedStore{b.Store, aws}
	auth := newStoreAuth(t.Context(), s, "skew", func() time.Time { return aws.Add(-3 * time.Hour) }, measureOptions(1, 1, 1, 0, time.Minute), pacing{})
	if _, err := auth.query(t.Context(), 0, "t"); err != nil {
		t.Fatal(err)
	}
	if len(auth.issued) != 1 || !auth.issued[0].ExpiresAt.Equal(aws.Add(benchIDTTL)) {
		t.Errorf("issued %v; want one ID expiring %v, %v by the store's clock", auth.issued, aws.Add(benchIDTTL), benchIDTTL)
	}
}
