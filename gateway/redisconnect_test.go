package gateway

import (
	"context"
	"errors"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// storeOutage is a $disconnect handler's store that cannot be written
// while down (a full disk, another process holding the state file's
// lock): each $disconnect fails, and passes once it is not down. It
// counts the calls and the records deleted, by connection ID.
type storeOutage struct {
	down    atomic.Bool
	mu      sync.Mutex
	calls   map[string]int
	deleted map[string]bool
}

func (s *storeOutage) disconnect(ev event) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	id := ev.RequestContext.ConnectionID
	s.calls[id]++
	if s.down.Load() {
		return errors.New("cannot write the state file: the disk is full")
	}
	s.deleted[id] = true
	return nil
}

func (s *storeOutage) count(id string) (calls int, deleted bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls[id], s.deleted[id]
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
	s := &storeOutage{calls: map[string]int{}, deleted: map[string]bool{}}
	s.down.Store(true)
	h := newFakeHandler()
	h.disconnect = s.disconnect
	var clock atomic.Int64
	clock.Store(time.Date(2026, 12, 2, 1, 0, 0, 0, time.UTC).UnixMilli())
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	g, err := New(Options{
		Handler:     h,
		MaxDuration: time.Hour,
		Now:         func() time.Time { return time.UnixMilli(clock.Load()) },
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
	addr := ln.Addr().String()
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
