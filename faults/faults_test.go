package faults_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/socks-dev/socks/awsops"
	"github.com/socks-dev/socks/faults"
	"github.com/socks-dev/socks/store"
	"github.com/socks-dev/socks/store/storetest"
)

func TestParse(t *testing.T) {
	good := []struct{ in, want string }{
		{"", ""},
		{"post500=0.1,post429=0.05,reset=0.02,slow=0.02:2s,drop-disconnect=0.1,connect-rate=500/s",
			"post500=0.1,post429=0.05,reset=0.02,slow=0.02:2s,drop-disconnect=0.1,connect-rate=500/s"},
		{" reset-after=0.5 , seed=7", "reset-after=0.5,seed=7"},
		{"slow=1", "slow=1:2s"},
	}
	for _, tc := range good {
		t.Run("accepts "+tc.in, func(t *testing.T) {
			s, err := faults.Parse(tc.in)
			if err != nil || s.String() != tc.want {
				t.Fatalf("Parse(%q) = %q, %v; want %q", tc.in, s, err, tc.want)
			}
		})
	}
	bad := []struct{ in, want string }{
		{"post500", "has no value"},
		{"post500=", "has no value"},
		{"post500=1.5", "between 0 and 1"},
		{"post500=-0.1", "between 0 and 1"},
		{"post500=ten", `post500="ten": give a probability between 0 and 1`},
		{"post500=1\x1b[2J", `post500="1\x1b[2J": give a probability`},
		{"slow=0.1:forever", `slow="0.1:forever": the delay after ':'`},
		{"connect-rate=5\n00/s", `connect-rate="5\n00/s": give connects per second`},
		{"seed=1\r2", `seed="1\r2": give a whole number`},
		{"post500=0.1,post500=0.2", "given twice"},
		{"post503=0.1", `unknown fault "post503"`},
		{"connect-rate=500", "such as 500/s"},
		{"connect-rate=0/s", "such as 500/s"},
		{"seed=-1", "whole number"},
		{"post500=0.6,post429=0.6", "add up to 1.2"},
	}
	for _, tc := range bad {
		t.Run("refuses "+tc.in+" saying why", func(t *testing.T) {
			_, err := faults.Parse(tc.in)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Parse(%q) error %v; want it to say %q", tc.in, err, tc.want)
			}
		})
	}
}

func TestDrawsFollowTheRates(t *testing.T) {
	spec, err := faults.Parse("post500=0.15,post429=0.10,reset=0.05,seed=42")
	if err != nil {
		t.Fatal(err)
	}
	in := faults.New(spec)
	p := in.Pusher(okPusher{})
	const n = 20000
	for range n {
		_ = p.Post(context.Background(), "c", nil)
	}
	got := in.Counts()
	for k, rate := range spec.Rates {
		if share := float64(got[k]) / n; share < rate*0.85 || share > rate*1.15 {
			t.Errorf("%s injected %d times of %d (%.3f); want about %.2f", k, got[k], n, share, rate)
		}
	}
	// The same seed draws the same faults.
	again := faults.New(spec)
	p = again.Pusher(okPusher{})
	for range n {
		_ = p.Post(context.Background(), "c", nil)
	}
	if again.Summary() != in.Summary() {
		t.Errorf("seeded runs differ: %s vs %s", again.Summary(), in.Summary())
	}
}

type okPusher struct{ store.Pusher }

func (okPusher) Post(context.Context, string, []byte) error { return nil }

func TestPusherFaultsLookLikeTheManagementAPIs(t *testing.T) {
	cases := []struct {
		spec      string
		kind      store.PushErrorKind
		status    int
		delivered int
		reset     bool
	}{
		{"post500=1", store.KindOther, 500, 0, false},
		{"post429=1", store.KindThrottled, 429, 0, false},
		{"reset=1", store.KindOther, 0, 0, true},
		{"reset-after=1", store.KindOther, 0, 1, true},
	}
	for _, tc := range cases {
		t.Run(tc.spec, func(t *testing.T) {
			spec, _ := faults.Parse(tc.spec)
			next := &storetest.CountingPusher{}
			err := faults.New(spec).Pusher(next).Post(context.Background(), "c1", []byte("x"))
			var pe *store.PushError
			if !errors.As(err, &pe) || pe.Kind != tc.kind || pe.Status != tc.status || pe.ConnectionID != "c1" {
				t.Fatalf("error %#v; want kind %s, status %d", err, tc.kind, tc.status)
			}
			if errors.Is(err, syscall.ECONNRESET) != tc.reset {
				t.Errorf("errors.Is(ECONNRESET) = %v", !tc.reset)
			}
			if next.Posts() != int64(tc.delivered) {
				t.Errorf("%d posts reached the pusher; want %d", next.Posts(), tc.delivered)
			}
		})
	}
	t.Run("slow waits, and gives up when the context ends", func(t *testing.T) {
		spec, _ := faults.Parse("slow=1:1m")
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		next := &storetest.CountingPusher{}
		if err := faults.New(spec).Pusher(next).Post(ctx, "c1", nil); !errors.Is(err, context.Canceled) || next.Posts() != 0 {
			t.Fatalf("error %v after %d posts; want the context's error and no post", err, next.Posts())
		}
	})
}

// nonBlockingPusher claims that its posts never block.
type nonBlockingPusher struct{ storetest.CountingPusher }

func (*nonBlockingPusher) NonBlocking() bool { return true }

// The faults wrapper may hold a post (slow=), so it never claims to be
// non-blocking, even around a pusher that is: the broker then posts to it
// concurrently.
func TestTheFaultsPusherNeverClaimsNotToBlock(t *testing.T) {
	next := &nonBlockingPusher{}
	if !store.NonBlocking(next) {
		t.Fatal("the wrapped pusher itself must claim it")
	}
	spec, _ := faults.Parse("slow=0.5:1s")
	if store.NonBlocking(faults.New(spec).Pusher(next)) {
		t.Fatal("the faults wrapper claims its posts never block")
	}
}

// TestManagementFaultsReachTheSDKClient posts through the production SDK
// client (awsops.NewPusher with NewManagementClient) to a Management API
// behind the middleware, and checks what each fault comes to.
func TestManagementFaultsReachTheSDKClient(t *testing.T) {
	cases := []struct {
		spec      string
		kind      store.PushErrorKind
		status    int
		delivered int
	}{
		{"post500=1", store.KindOther, 500, 0},
		{"post429=1", store.KindThrottled, 429, 0},
		{"reset=1", store.KindOther, 0, 0},
		{"reset-after=1", store.KindOther, 0, 1},
		{"slow=1:10ms", 0, 0, 1},
		{"", 0, 0, 1},
	}
	for _, tc := range cases {
		t.Run("spec "+tc.spec, func(t *testing.T) {
			var mu sync.Mutex
			delivered := 0
			api := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				_, _ = io.ReadAll(r.Body)
				mu.Lock()
				delivered++
				mu.Unlock()
				w.WriteHeader(http.StatusOK)
			})
			spec, _ := faults.Parse(tc.spec)
			srv := httptest.NewServer(faults.New(spec).Management(api))
			defer srv.Close()
			p := awsops.NewPusher(awsops.NewManagementClient(awsops.LocalConfig(), srv.URL, 1))
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			err := p.Post(ctx, "c1", []byte(`{"n":1}`))
			mu.Lock()
			defer mu.Unlock()
			if delivered != tc.delivered {
				t.Errorf("the API handled %d posts; want %d", delivered, tc.delivered)
			}
			if tc.spec == "" || strings.HasPrefix(tc.spec, "slow") {
				if err != nil {
					t.Fatalf("post failed: %v", err)
				}
				return
			}
			var pe *store.PushError
			if !errors.As(err, &pe) || pe.Kind != tc.kind || pe.Status != tc.status {
				t.Fatalf("error %v; want kind %s, status %d", err, tc.kind, tc.status)
			}
		})
	}
	t.Run("GET and DELETE pass through", func(t *testing.T) {
		spec, _ := faults.Parse("post500=1")
		srv := httptest.NewServer(faults.New(spec).Management(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(http.StatusNoContent)
		})))
		defer srv.Close()
		p := awsops.NewPusher(awsops.NewManagementClient(awsops.LocalConfig(), srv.URL, 1))
		if err := p.Delete(context.Background(), "c1"); err != nil {
			t.Fatalf("DELETE met a post fault: %v", err)
		}
	})
}

func TestConnectRateIsATokenBucket(t *testing.T) {
	spec, _ := faults.Parse("connect-rate=2/s")
	in := faults.New(spec)
	now := time.Unix(1000, 0)
	in.SetClock(func() time.Time { return now })
	got := []bool{in.AllowConnect(), in.AllowConnect(), in.AllowConnect()}
	if !got[0] || !got[1] || got[2] {
		t.Fatalf("three connects at once: %v; want the third refused", got)
	}
	now = now.Add(500 * time.Millisecond)
	if !in.AllowConnect() || in.AllowConnect() {
		t.Fatal("half a second later one more connect must fit, and only one")
	}
	if in.Counts()[faults.ConnectRate] != 2 {
		t.Errorf("counts %v", in.Counts())
	}
}
