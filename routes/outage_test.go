package routes_test

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/socks-dev/socks/internal/lockedbuf"
	"github.com/socks-dev/socks/pubsub"
	"github.com/socks-dev/socks/store"
)

// downStore is a store whose admissions fail with store.ErrUnavailable
// while down (a full disk, the state file's lock held by another
// process), and pass to the store it wraps once up.
type downStore struct {
	store.Store
	down atomic.Bool
}

func (d *downStore) AdmitConnection(ctx context.Context, id, geek, secret string, now time.Time, limit int, record func(store.ChatterID) (pubsub.Connection, error)) (int, error) {
	if d.down.Load() {
		return 0, fmt.Errorf("admitting connection %s of %s: the disk is full: %w", id, geek, store.ErrUnavailable)
	}
	return d.Store.(store.ConnectionAdmitter).AdmitConnection(ctx, id, geek, secret, now, limit, record)
}

// TestAnOutageOfAdmissionsLogsAFewLines: while the store cannot record
// connections, each $connect is refused with 503, and the routes logged
// an ERROR line for each: many clients reconnecting filled the log. An
// outage of admissions, across concurrent $connects, logs a line when it
// starts, a reminder each minute (of the handler's clock) with how many
// failed since, and a line when an admission passes again.
func TestAnOutageOfAdmissionsLogsAFewLines(t *testing.T) {
	h, s, now := newHandler(t)
	clock := now
	var mu sync.Mutex
	h.Now = func() time.Time { mu.Lock(); defer mu.Unlock(); return clock }
	advance := func(d time.Duration) { mu.Lock(); clock = clock.Add(d); mu.Unlock() }
	var logs lockedbuf.Buffer
	h.Logger = slog.New(slog.NewTextHandler(&logs, nil))
	secret, _, err := store.IssueChatterID(context.Background(), s, "alice", 3*time.Hour, now)
	if err != nil {
		t.Fatal(err)
	}
	d := &downStore{Store: s}
	d.down.Store(true)
	h.Store = d
	n := 0
	connect := func(want int) {
		t.Helper()
		n++
		resp, err := h.Handle(context.Background(), connectEvent(fmt.Sprintf("conn%d", n), map[string]string{"geek": "alice", "id": secret}))
		if err != nil || resp.StatusCode != want {
			t.Fatalf("connect: status %d %q, %v; want %d", resp.StatusCode, resp.Body, err, want)
		}
	}
	var wg sync.WaitGroup
	for range 10 {
		wg.Go(func() {
			for range 5 {
				resp, err := h.Handle(context.Background(), connectEvent("connX", map[string]string{"geek": "alice", "id": secret}))
				if err != nil || resp.StatusCode != 503 {
					t.Errorf("connect while the store is down: status %d, %v; want 503", resp.StatusCode, err)
				}
			}
		})
	}
	wg.Wait()
	advance(30 * time.Second)
	connect(503)
	advance(30 * time.Second)
	connect(503) // a minute after the first line: a reminder
	connect(503)
	d.down.Store(false)
	connect(200)
	connect(200)
	got := strings.Split(strings.TrimSpace(logs.String()), "\n")
	want := []string{
		`level=ERROR msg="admitting a connection" err=`,
		`level=ERROR msg="admitting a connection still fails" failures=51 for=1m0s`,
		`level=INFO msg="admitting a connection again" failures=53 after=1m0s`,
	}
	var errs []string
	for _, l := range got {
		if !strings.Contains(l, `msg=connected`) {
			errs = append(errs, l)
		}
	}
	if len(errs) != len(want) {
		t.Fatalf("logged %d lines besides connected ones; want %d:\n%s", len(errs), len(want), logs.String())
	}
	for i, w := range want {
		if !strings.Contains(errs[i], w) {
			t.Errorf("line %d %q does not say %q", i, errs[i], w)
		}
	}
	if !strings.Contains(errs[0], "geek=alice") || !strings.Contains(errs[0], "the disk is full") {
		t.Errorf("the start line %q does not name the geek and the store's error", errs[0])
	}
}
