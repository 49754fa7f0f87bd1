package gateway

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/socks-dev/socks/internal/lockedbuf"
	"github.com/socks-dev/socks/store"
)

// storeOutage is a $disconnect handler's store that cannot be written
// while down (a full disk, another process holding the state file's
// lock): each $disconnect fails with store.ErrUnavailable, and passes
// once it is not down, but for those broken, whose deletes fail for a
// reason of their own. It counts the calls and the records deleted, by
// connection ID.
type storeOutage struct {
	down    atomic.Bool
	mu      sync.Mutex
	calls   map[string]int
	deleted map[string]bool
	broken  map[string]bool
	// upAfter is a connection whose first call, failing, brings the
	// store back up.
	upAfter string
}

func newStoreOutage() *storeOutage {
	return &storeOutage{calls: map[string]int{}, deleted: map[string]bool{}, broken: map[string]bool{}}
}

func (s *storeOutage) disconnect(ev event) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	id := ev.RequestContext.ConnectionID
	s.calls[id]++
	if s.down.Load() {
		if id == s.upAfter {
			s.down.Store(false)
		}
		return fmt.Errorf("cannot write the state file: the disk is full: %w", store.ErrUnavailable)
	}
	if s.broken[id] {
		return errors.New("deleting connection " + id + ": its item is malformed")
	}
	s.deleted[id] = true
	return nil
}

func (s *storeOutage) count(id string) (calls int, deleted bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls[id], s.deleted[id]
}

// serveRetrying serves a gateway with h on a loopback port, its clock
// now, whose sweep calls the kept $disconnects again every 10 ms, with
// pauses of 1 ms doubling up to 10 ms; shut down at the test's end.
func serveRetrying(t *testing.T, h *fakeHandler, now func() time.Time) (*Gateway, string) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	g, err := New(Options{
		Handler:     h,
		MaxDuration: time.Hour,
		Now:         now,
		// The sweep, which calls them again, every 10 ms.
		pingPeriod:         80 * time.Millisecond,
		disconnectRetry:    time.Millisecond,
		disconnectRetryMax: 10 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- g.Serve(ln) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), wait)
		defer cancel()
		if err := g.Shutdown(ctx); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
		<-served
	})
	return g, ln.Addr().String()
}

// waitUntil waits (boundedly) for cond.
func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(wait)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %v", what, wait)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestADisconnectWhoseHandlerFailedIsCalledAgainOnceItCanPass: a
// $disconnect whose handler failed (the store could not be written: a
// full disk, the state file's lock held by another process) left the
// connection's record, which counted against its geek's connection cap
// until it expired (2 h), a post to it being the only other way it went.
// The gateway keeps such a $disconnect (bounded) and calls it again, from
// its sweep with a growing pause, until it passes; one whose record has
// expired meanwhile (by the gateway's clock) counts against nothing and
// is dropped without a call; past the bound, one is not kept.
func TestADisconnectWhoseHandlerFailedIsCalledAgainOnceItCanPass(t *testing.T) {
	s := newStoreOutage()
	s.down.Store(true)
	h := newFakeHandler()
	h.disconnect = s.disconnect
	var clock atomic.Int64
	clock.Store(time.Date(2026, 12, 2, 1, 0, 0, 0, time.UTC).UnixMilli())
	g, addr := serveRetrying(t, h, func() time.Time { return time.UnixMilli(clock.Load()) })
	leave := func() string {
		t.Helper()
		ws, id := connect(t, h, addr)
		ws.UnderlyingConn().Close()
		waitUntil(t, "the $disconnect of "+id, func() bool { n, _ := s.count(id); return n >= 1 })
		return id
	}

	t.Run("called again while the store cannot be written, and once it can", func(t *testing.T) {
		id := leave()
		waitUntil(t, "a second $disconnect of "+id+" while the store cannot be written", func() bool { n, _ := s.count(id); return n >= 2 })
		s.down.Store(false)
		waitUntil(t, "the record of "+id+" deleted once the store can be written", func() bool { _, ok := s.count(id); return ok })
		waitUntil(t, "nothing kept", func() bool { return g.lostDisconnects() == 0 })
		s.down.Store(true)
	})
	t.Run("one whose record expired meanwhile is dropped without a call", func(t *testing.T) {
		id := leave()
		waitUntil(t, "a second $disconnect of "+id, func() bool { n, _ := s.count(id); return n >= 2 })
		clock.Add(time.Hour.Milliseconds())
		waitUntil(t, "the $disconnect of "+id+" dropped", func() bool { return g.lostDisconnects() == 0 })
		n, _ := s.count(id)
		s.down.Store(false)
		// A connection after it: its $disconnect passes at once.
		other := leave()
		if _, ok := s.count(other); !ok {
			t.Fatalf("the $disconnect of %s failed with the store writable", other)
		}
		if m, deleted := s.count(id); m != n || deleted {
			t.Errorf("%s: %d calls (%v) after it was dropped at %d; want none", id, m, deleted, n)
		}
		s.down.Store(true)
	})
	t.Run("past the bound one is not kept", func(t *testing.T) {
		// The retries paused for long: the first stays kept.
		g.lost.mu.Lock()
		g.lost.max, g.lost.first, g.lost.most = 1, time.Hour, time.Hour
		g.lost.mu.Unlock()
		first := leave()
		waitUntil(t, "one kept", func() bool { return g.lostDisconnects() == 1 })
		second := leave()
		if n := g.lostDisconnects(); n != 1 {
			t.Errorf("%d kept after %s and %s failed; want 1, the bound", n, first, second)
		}
	})
}

// TestADisconnectThatFailsForItsOwnReasonHoldsUpNoOther: the pass that
// calls the kept $disconnects again stopped at the first that failed,
// taking the store for unwritable, so one whose delete failed for a
// reason of its own (its item, its key) held up every one kept after it
// until its record expired. A pass stops at a failure of the store
// (store.ErrUnavailable: the rest would fail too); one of a connection's
// own is kept, called again after a pause of its own that grows, and the
// pass goes on to the others.
func TestADisconnectThatFailsForItsOwnReasonHoldsUpNoOther(t *testing.T) {
	s := newStoreOutage()
	s.down.Store(true)
	h := newFakeHandler()
	h.disconnect = s.disconnect
	g, addr := serveRetrying(t, h, time.Now)
	var ids []string
	for i := range 3 {
		ws, id := connect(t, h, addr)
		ws.UnderlyingConn().Close()
		waitUntil(t, fmt.Sprintf("%d kept", i+1), func() bool { return g.lostDisconnects() == i+1 })
		ids = append(ids, id)
	}
	first, rest := ids[0], ids[1:]

	t.Run("while the store cannot be written a pass stops at the first", func(t *testing.T) {
		waitUntil(t, "the first called again twice", func() bool { n, _ := s.count(first); return n >= 3 })
		for _, id := range rest {
			if n, _ := s.count(id); n != 1 {
				t.Errorf("%s called %d times while the store could not be written; want only its first", id, n)
			}
		}
	})
	t.Run("one that fails for its own reason holds up no other", func(t *testing.T) {
		s.mu.Lock()
		s.broken[first] = true
		s.mu.Unlock()
		s.down.Store(false)
		for _, id := range rest {
			waitUntil(t, "the record of "+id+" deleted", func() bool { _, ok := s.count(id); return ok })
		}
		waitUntil(t, "the broken one kept alone", func() bool { return g.lostDisconnects() == 1 })
		n, _ := s.count(first)
		waitUntil(t, "the broken one called again", func() bool { m, _ := s.count(first); return m > n })
		if _, ok := s.count(first); ok {
			t.Errorf("%s deleted; its delete fails", first)
		}
	})
}

// TestAPassCallsAtMostItsBoundOfKeptDisconnects: a pass goes on past
// the kept $disconnects that fail for their own reasons, but calls at
// most perPass of them: the next pass takes those after them, as the
// ones called wait out their own pause.
func TestAPassCallsAtMostItsBoundOfKeptDisconnects(t *testing.T) {
	s := newStoreOutage()
	h := newFakeHandler()
	h.disconnect = s.disconnect
	g, err := New(Options{Handler: h, MaxDuration: time.Hour, disconnectRetry: time.Hour, disconnectRetryMax: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	// Not served: the passes are run here, one at a time.
	g.lost.perPass = 2
	for i := range 5 {
		id := fmt.Sprintf("conn%d", i)
		s.broken[id] = true
		if kept, why := g.keepLost(&conn{id: id, connectedAt: time.Now()}); !kept {
			t.Fatal(why)
		}
	}
	pass := func() {
		g.lost.mu.Lock()
		g.lost.running = true
		g.lost.mu.Unlock()
		g.callLost(make(chan struct{}))
	}
	// Every one is due.
	g.lost.mu.Lock()
	for i := range g.lost.pending {
		g.lost.pending[i].next = time.Time{}
	}
	g.lost.mu.Unlock()
	var got []int
	for range 3 {
		pass()
		var n []int
		for i := range 5 {
			c, _ := s.count(fmt.Sprintf("conn%d", i))
			n = append(n, c)
		}
		got = append(got, n...)
	}
	want := []int{1, 1, 0, 0, 0, 1, 1, 1, 1, 0, 1, 1, 1, 1, 1}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("calls after each of 3 passes %v; want %v: two a pass, each once (the rest wait an hour)", got, want)
	}
	if n := g.lostDisconnects(); n != 5 {
		t.Errorf("%d kept; want the 5 that fail", n)
	}
}

// TestTheDisconnectsThatFailedAreCalledOnceMoreAsTheGatewayStops: at
// Shutdown the kept $disconnects were dropped, and those failing as the
// clients were closed not kept: their records stayed (on a local state
// file until the next serve, on AWS until prune-stale). Once the clients'
// $disconnects have run, within Shutdown's time, each kept one is called
// once more (a pass, stopping at a failure of the store), and those left
// are said in one line.
func TestTheDisconnectsThatFailedAreCalledOnceMoreAsTheGatewayStops(t *testing.T) {
	for _, tc := range []struct {
		name     string
		comeBack bool // the store takes writes again during the shutdown
	}{
		{"the store writable again: their records are deleted", true},
		{"the store still unwritable: one call, and those left said", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newStoreOutage()
			s.down.Store(true)
			h := newFakeHandler()
			h.disconnect = s.disconnect
			var logs lockedbuf.Buffer
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			// No pass before the shutdown.
			g, err := New(Options{Handler: h, Logger: slog.New(slog.NewTextHandler(&logs, nil)), disconnectRetry: time.Hour, disconnectRetryMax: time.Hour})
			if err != nil {
				t.Fatal(err)
			}
			served := make(chan error, 1)
			go func() { served <- g.Serve(ln) }()
			addr := ln.Addr().String()
			ws, left := connect(t, h, addr)
			ws.UnderlyingConn().Close()
			waitUntil(t, "the $disconnect of "+left+" kept", func() bool { return g.lostDisconnects() == 1 })
			ws, open := connect(t, h, addr)
			defer ws.Close()
			if tc.comeBack {
				s.mu.Lock()
				s.upAfter = open
				s.mu.Unlock()
			}
			ctx, cancel := context.WithTimeout(context.Background(), wait)
			defer cancel()
			if err := g.Shutdown(ctx); err != nil {
				t.Fatalf("Shutdown: %v", err)
			}
			<-served
			calls := 0
			for _, id := range []string{left, open} {
				n, deleted := s.count(id)
				calls += n
				if deleted != tc.comeBack {
					t.Errorf("%s: deleted %v; want %v", id, deleted, tc.comeBack)
				}
			}
			if tc.comeBack {
				if calls != 4 {
					t.Errorf("%d calls of the two $disconnects; want 4, each failing once and called once more", calls)
				}
				if !strings.Contains(logs.String(), "connections=2") {
					t.Errorf("logs %q do not say that 2 records are gone", logs.String())
				}
				return
			}
			if calls != 3 {
				t.Errorf("%d calls of the two $disconnects; want 3, each failing once and the first called once more", calls)
			}
			if !strings.Contains(logs.String(), "level=WARN") || !strings.Contains(logs.String(), "disconnects=2") {
				t.Errorf("logs %q do not warn that 2 $disconnects still fail", logs.String())
			}
		})
	}
}
