package local

import (
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/socks-dev/socks/pubsub"
	"github.com/socks-dev/socks/store"
	"github.com/socks-dev/socks/store/storetest"
)

// inSteps hides AdmitConnection: the routes then verify, count and write
// one after the other, as on a Store without it.
type inSteps struct{ store.Store }

// The limits hold on the routes' other path too (the one the AWS backend
// takes), on SQLite.
func TestLimitsHoldAcrossClientsInSteps(t *testing.T) {
	storetest.RunLimits(t, func(t *testing.T) storetest.Clients {
		path := filepath.Join(t.TempDir(), "socks.db")
		return func() store.Store {
			return inSteps{openPath(t, path, Options{}).Store()}
		}
	})
}

// The chatter check, the count and the write of AdmitConnection are one
// step: concurrent connects from separate handles (separate pools and
// write locks, as separate processes have) admit exactly the cap, not the
// cap plus their number. Expired records, another geek's and the record
// being replaced take no place; a refusal writes nothing.
func TestAdmitConnectionAdmitsExactlyTheCap(t *testing.T) {
	ctx := t.Context()
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	path := filepath.Join(t.TempDir(), "socks.db")
	handles := []*Store{openPath(t, path, Options{}).Store(), openPath(t, path, Options{}).Store(), openPath(t, path, Options{}).Store()}
	first := handles[0]
	secret, _, err := store.IssueChatterID(ctx, first, "alice", time.Hour, now.Add(-time.Minute), "t*")
	if err != nil {
		t.Fatal(err)
	}
	old, _, err := store.IssueChatterID(ctx, first, "alice", time.Minute, now.Add(-time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	conn := func(id, geek string, expires time.Time) pubsub.Connection {
		return pubsub.Connection{ID: id, Geek: geek, Topics: []string{"t"}, ConnectedAt: now.Add(-time.Minute), ExpiresAt: expires}
	}
	for _, c := range []pubsub.Connection{
		conn("gone1", "alice", now), // expires at now: not live
		conn("gone2", "alice", now.Add(-time.Hour)),
		conn("bob1", "bob", now.Add(time.Hour)),
		conn("bob2", "bob", now.Add(time.Hour)),
	} {
		if err := first.PutConnection(ctx, c); err != nil {
			t.Fatal(err)
		}
	}
	// record passes the chatter ID's topics on, as the routes do.
	record := func(c pubsub.Connection) func(store.ChatterID) (pubsub.Connection, error) {
		return func(chatter store.ChatterID) (pubsub.Connection, error) {
			c.Allowed = chatter.Topics
			return c, nil
		}
	}

	const limit, n = 5, 12
	var wg sync.WaitGroup
	errs := make([]error, n)
	counts := make([]int, n)
	for i := range n {
		s := handles[i%len(handles)]
		wg.Go(func() {
			counts[i], errs[i] = s.AdmitConnection(ctx, fmt.Sprintf("c%02d", i), "alice", secret, now, limit, record(conn(fmt.Sprintf("c%02d", i), "alice", now.Add(time.Hour))))
		})
	}
	wg.Wait()
	accepted := 0
	for i, err := range errs {
		switch {
		case err == nil:
			accepted++
		case errors.Is(err, store.ErrLimit):
			if counts[i] != limit || !strings.Contains(err.Error(), "live connections") {
				t.Errorf("connect %d refused with count %d and %q; want %d and the reason", i, counts[i], err, limit)
			}
		default:
			t.Errorf("connect %d: %v; want nil or ErrLimit", i, err)
		}
	}
	live := 0
	err = first.ListConnections(ctx, store.ConnectionFilter{Geek: "alice"}, now, func(page []pubsub.Connection) error {
		live += len(page)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if accepted != limit || live != limit {
		t.Errorf("%d connects accepted, %d live records; want exactly %d", accepted, live, limit)
	}

	// At the cap, replacing one of the geek's own records is no new
	// connection: it is written, with the chatter ID's topics.
	var own string
	for i, err := range errs {
		if err == nil {
			own = fmt.Sprintf("c%02d", i)
			break
		}
	}
	c := conn(own, "alice", now.Add(2*time.Hour))
	c.Topics = []string{"tu"}
	if _, err := first.AdmitConnection(ctx, own, "alice", secret, now, limit, record(c)); err != nil {
		t.Fatalf("replacing %s at the cap: %v", own, err)
	}
	if got, err := first.GetConnection(ctx, own); err != nil || strings.Join(got.Topics, ",") != "tu" || strings.Join(got.Allowed, ",") != "t*" {
		t.Errorf("%s after the replacement: %+v %v; want topic tu, allowed t*", own, got, err)
	}

	// Refusals write nothing: a wrong secret, an expired ID, a refusal of
	// record's (returned as is).
	errNo := errors.New("not these topics")
	for _, tc := range []struct {
		name, id, secret string
		record           func(store.ChatterID) (pubsub.Connection, error)
		want             error
	}{
		{"wrong secret", "x1", "not-" + secret, record(conn("x1", "alice", now.Add(time.Hour))), store.ErrUnauthorized},
		{"expired", "x2", old, record(conn("x2", "alice", now.Add(time.Hour))), store.ErrExpired},
		{"refused by record", "x3", secret, func(store.ChatterID) (pubsub.Connection, error) { return pubsub.Connection{}, errNo }, errNo},
	} {
		if _, err := first.AdmitConnection(ctx, tc.id, "alice", tc.secret, now, 0, tc.record); !errors.Is(err, tc.want) {
			t.Errorf("%s: %v; want %v", tc.name, err, tc.want)
		}
	}
	for _, id := range []string{"x1", "x2", "x3"} {
		if _, err := first.GetConnection(ctx, id); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("%s after a refusal: %v; want no record", id, err)
		}
	}
	// A cap below 1 is no cap.
	if _, err := first.AdmitConnection(ctx, "free", "alice", secret, now, 0, record(conn("free", "alice", now.Add(time.Hour)))); err != nil {
		t.Errorf("no cap: %v", err)
	}
}
