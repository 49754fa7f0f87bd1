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
)

// The count and the write of PutConnectionWithin are one step: concurrent
// connects from separate handles (separate pools and write locks, as
// separate processes have) admit exactly the cap, not the cap plus their
// number. Expired records, another geek's and the record being replaced
// take no place.
func TestPutConnectionWithinAdmitsExactlyTheCap(t *testing.T) {
	ctx := t.Context()
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	path := filepath.Join(t.TempDir(), "socks.db")
	handles := []*Store{openPath(t, path, Options{}).Store(), openPath(t, path, Options{}).Store(), openPath(t, path, Options{}).Store()}
	first := handles[0]
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

	const limit, n = 5, 12
	var wg sync.WaitGroup
	errs := make([]error, n)
	counts := make([]int, n)
	for i := range n {
		s := handles[i%len(handles)]
		wg.Go(func() {
			counts[i], errs[i] = s.PutConnectionWithin(ctx, conn(fmt.Sprintf("c%02d", i), "alice", now.Add(time.Hour)), now, limit)
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
	err := first.ListConnections(ctx, store.ConnectionFilter{Geek: "alice"}, now, func(page []pubsub.Connection) error {
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
	// connection: it is written.
	var own string
	for i, err := range errs {
		if err == nil {
			own = fmt.Sprintf("c%02d", i)
			break
		}
	}
	c := conn(own, "alice", now.Add(2*time.Hour))
	c.Topics = []string{"u"}
	if _, err := first.PutConnectionWithin(ctx, c, now, limit); err != nil {
		t.Fatalf("replacing %s at the cap: %v", own, err)
	}
	if got, err := first.GetConnection(ctx, own); err != nil || strings.Join(got.Topics, ",") != "u" {
		t.Errorf("%s after the replacement: %+v %v; want topic u", own, got, err)
	}
	// A cap below 1 is no cap.
	if _, err := first.PutConnectionWithin(ctx, conn("free", "alice", now.Add(time.Hour)), now, 0); err != nil {
		t.Errorf("no cap: %v", err)
	}
}
