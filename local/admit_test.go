package local

import (
	"errors"
	"fmt"
	"math"
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
	live := liveRecords(t, first, "alice", now)
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

// queuedAdmission is the write AdmitConnection queues, for writing groups
// of them directly: which writes share a group is up to timing otherwise.
func queuedAdmission(s *Store, id, geek, secret string, now time.Time, limit int, record func(store.ChatterID) (pubsub.Connection, error)) *groupedWrite {
	a := &admission{id: id, geek: geek, want: pubsub.HashChatterID(secret), now: now, limit: limit, record: record}
	return &groupedWrite{fn: s.admitAlone(a), admit: a, done: make(chan error, 1)}
}

// result is a queued write's outcome, once written: its error (the write
// failed) or its refusal, and for an admission its count.
func result(w *groupedWrite) (int, error) {
	if err := <-w.done; err != nil {
		return 0, err
	}
	if w.admit == nil {
		return 0, nil
	}
	return w.admit.n, w.admit.refused
}

// admitScenario issues chatter IDs and writes records into s, and returns
// the writes of one group, in order: admissions accepted, refused by the
// cap (counting the group's own), by the chatter check and by record; a
// replacement; a repeated ID; and a write that is no admission.
func admitScenario(t *testing.T, s *Store, now time.Time) []*groupedWrite {
	t.Helper()
	ctx := t.Context()
	issue := func(geek string, ttl time.Duration, at time.Time, topics ...string) string {
		secret, _, err := store.IssueChatterID(ctx, s, geek, ttl, at, topics...)
		if err != nil {
			t.Fatal(err)
		}
		return secret
	}
	alice, bob, carol := issue("alice", time.Hour, now, "t*"), issue("bob", time.Hour, now), issue("carol", time.Hour, now)
	dave := issue("dave", time.Hour, now.Add(-2*time.Hour))
	conn := func(id, geek string, expires time.Time, topics ...string) pubsub.Connection {
		return pubsub.Connection{ID: id, Geek: geek, Topics: topics, ConnectedAt: now.Add(-time.Minute), ExpiresAt: expires}
	}
	for _, c := range []pubsub.Connection{
		conn("a-old1", "alice", now.Add(time.Hour), "t1"),
		conn("a-old2", "alice", time.Time{}, "t1"), // never expires
		conn("a-gone", "alice", now, "t1"),         // not live at now
		conn("r1", "alice", now.Add(time.Hour), "t1"),
	} {
		if err := s.PutConnection(ctx, c); err != nil {
			t.Fatal(err)
		}
	}
	const limit = 5
	admit := func(id, geek, secret string, c pubsub.Connection) *groupedWrite {
		return queuedAdmission(s, id, geek, secret, now, limit, record(c))
	}
	refuse := func(id, geek, secret string) *groupedWrite {
		return queuedAdmission(s, id, geek, secret, now, limit, func(store.ChatterID) (pubsub.Connection, error) {
			return pubsub.Connection{}, errNotThese
		})
	}
	put := &groupedWrite{fn: func(tx *wtx) error {
		return s.writeConnection(tx, conn("b-put", "bob", now.Add(time.Hour), "t2"), true)
	}, done: make(chan error, 1)}
	return []*groupedWrite{
		admit("a1", "alice", alice, conn("", "", now, "t1")), // admitted, but not live at now: no place taken
		admit("a2", "alice", alice, conn("", "", now.Add(time.Hour), "t1", "t2")),
		admit("a3", "alice", alice, conn("", "", time.Time{}, "t3")),
		admit("a4", "alice", alice, conn("", "", now.Add(time.Hour), "t1")), // the cap
		admit("b1", "bob", "not-"+bob, conn("", "", now.Add(time.Hour), "t1")),
		admit("d1", "dave", dave, conn("", "", now.Add(time.Hour), "t1")),
		refuse("c1", "carol", carol),
		admit("c2", "carol", carol, conn("", "", now.Add(time.Hour), "x", "y")),
		admit("r1", "alice", alice, conn("", "", now.Add(2*time.Hour), "t4")), // a replacement: no new place
		put,
		admit("c2", "carol", carol, conn("", "", now.Add(3*time.Hour), "x", "y")), // again
	}
}

var errNotThese = errors.New("not these topics")

// The admissions of one group are written together, with the outcomes
// and records they have when written one by one: the cap counts the
// group's earlier admissions, refusals write nothing, and a replacement,
// a repeated ID and the other writes of the group keep their meaning.
func TestAdmissionsOfOneGroupAsOneByOne(t *testing.T) {
	ctx := t.Context()
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	grouped, alone := openTest(t, Options{}), openTest(t, Options{})

	// What the group's writes must see: the cached lookup of topic x,
	// read before they are written.
	if ids, err := grouped.Store().FindTargetIDs(ctx, nil, []string{"x"}, now); err != nil || len(ids) != 0 {
		t.Fatalf("targets of x before the group: %v %v", ids, err)
	}
	batch := admitScenario(t, grouped.Store(), now)
	grouped.writeGroup(batch)
	one := admitScenario(t, alone.Store(), now)
	for _, w := range one {
		alone.writeGroup([]*groupedWrite{w})
	}

	want := []error{nil, nil, nil, store.ErrLimit, store.ErrUnauthorized, store.ErrExpired, errNotThese, nil, nil, nil, nil}
	wantN := map[int]int{0: 3, 1: 3, 2: 4, 3: 5, 8: 4}
	for i := range batch {
		n, err := result(batch[i])
		n1, err1 := result(one[i])
		if !errors.Is(err, want[i]) || want[i] == nil && err != nil {
			t.Errorf("write %d in the group: %v; want %v", i, err, want[i])
		}
		if !errors.Is(err1, want[i]) || want[i] == nil && err1 != nil {
			t.Errorf("write %d alone: %v; want %v", i, err1, want[i])
		}
		if w, ok := wantN[i]; ok && (n != w || n1 != w) {
			t.Errorf("write %d counted %d in the group, %d alone; want %d", i, n, n1, w)
		}
	}
	all := func(s *Store) []pubsub.Connection {
		var out []pubsub.Connection
		err := s.ListConnections(ctx, store.ConnectionFilter{IncludeExpired: true}, now, func(page []pubsub.Connection) error {
			out = append(out, page...)
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	got, wantRecords := all(grouped.Store()), all(alone.Store())
	if fmt.Sprint(got) != fmt.Sprint(wantRecords) {
		t.Errorf("records after the group:\n%v\nwritten one by one:\n%v", got, wantRecords)
	}
	for _, id := range []string{"a4", "b1", "d1", "c1"} {
		if _, err := grouped.Store().GetConnection(ctx, id); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("%s after its refusal: %v; want no record", id, err)
		}
	}
	if c, err := grouped.Store().GetConnection(ctx, "a2"); err != nil || strings.Join(c.Topics, ",") != "t1,t2" || strings.Join(c.Allowed, ",") != "t*" {
		t.Errorf("a2: %+v %v; want topics t1, t2 and allowed t*", c, err)
	}
	if c, err := grouped.Store().GetConnection(ctx, "r1"); err != nil || strings.Join(c.Topics, ",") != "t4" || !c.ExpiresAt.Equal(now.Add(2*time.Hour)) {
		t.Errorf("r1 after its replacement: %+v %v; want topic t4 until %v", c, err, now.Add(2*time.Hour))
	}
	// The group's writes changed what the cached lookup reads: it is read
	// again.
	if ids, err := grouped.Store().FindTargetIDs(ctx, nil, []string{"x"}, now); err != nil || strings.Join(ids, ",") != "c2" {
		t.Errorf("targets of x after the group: %v %v; want c2", ids, err)
	}
}

// An admission that fails (here a trigger refuses its record) fails alone:
// the others of its group are written, and it writes nothing.
func TestAdmissionFailsAloneInItsGroup(t *testing.T) {
	ctx := t.Context()
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	db := openTest(t, Options{})
	if _, err := db.sql.ExecContext(ctx, `CREATE TRIGGER boom BEFORE INSERT ON connections WHEN NEW.id = 'boom'
		BEGIN SELECT RAISE(ABORT, 'boom'); END`); err != nil {
		t.Fatal(err)
	}
	secret, _, err := store.IssueChatterID(ctx, db.Store(), "alice", time.Hour, now)
	if err != nil {
		t.Fatal(err)
	}
	var batch []*groupedWrite
	for _, id := range []string{"x1", "boom", "x2"} {
		batch = append(batch, queuedAdmission(db.Store(), id, "alice", secret, now, 0, func(store.ChatterID) (pubsub.Connection, error) {
			return pubsub.Connection{Topics: []string{"t"}, ConnectedAt: now}, nil
		}))
	}
	db.writeGroup(batch)
	for i, id := range []string{"x1", "boom", "x2"} {
		_, err := result(batch[i])
		_, getErr := db.Store().GetConnection(ctx, id)
		if id == "boom" {
			if err == nil || !strings.Contains(err.Error(), "boom") || !errors.Is(getErr, store.ErrNotFound) {
				t.Errorf("boom: %v, and its record: %v; want its failure and no record", err, getErr)
			}
			continue
		}
		if err != nil || getErr != nil {
			t.Errorf("%s: %v, and its record: %v; want it written", id, err, getErr)
		}
	}
}

// Groups of admissions written at once from two handles on one file (as
// two processes) admit exactly the cap between them.
func TestAdmissionGroupsFromTwoHandlesKeepTheCap(t *testing.T) {
	ctx := t.Context()
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	path := filepath.Join(t.TempDir(), "socks.db")
	dbs := []*DB{openPath(t, path, Options{}), openPath(t, path, Options{})}
	secret, _, err := store.IssueChatterID(ctx, dbs[0].Store(), "alice", time.Hour, now)
	if err != nil {
		t.Fatal(err)
	}
	const limit, each = 5, 8
	batches := make([][]*groupedWrite, len(dbs))
	for h, db := range dbs {
		for i := range each {
			batches[h] = append(batches[h], queuedAdmission(db.Store(), fmt.Sprintf("h%d-%d", h, i), "alice", secret, now, limit,
				func(store.ChatterID) (pubsub.Connection, error) {
					return pubsub.Connection{Topics: []string{"t"}, ConnectedAt: now, ExpiresAt: now.Add(time.Hour)}, nil
				}))
		}
	}
	var wg sync.WaitGroup
	for h, db := range dbs {
		wg.Go(func() { db.writeGroup(batches[h]) })
	}
	wg.Wait()
	accepted := 0
	for _, batch := range batches {
		for _, w := range batch {
			n, err := result(w)
			switch {
			case err == nil:
				accepted++
			case errors.Is(err, store.ErrLimit) && n == limit:
			default:
				t.Errorf("%s: %d, %v; want nil or ErrLimit at %d", w.admit.id, n, err, limit)
			}
		}
	}
	live := liveRecords(t, dbs[1].Store(), "alice", now)
	if accepted != limit || live != limit {
		t.Errorf("%d admitted, %d live records; want exactly %d", accepted, live, limit)
	}
}

// A group of more admissions and topics than one statement takes is
// written in several, all of it.
func TestLargeAdmissionGroup(t *testing.T) {
	ctx := t.Context()
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	db := openTest(t, Options{})
	secret, _, err := store.IssueChatterID(ctx, db.Store(), "alice", time.Hour, now)
	if err != nil {
		t.Fatal(err)
	}
	const n = 2*maxBatchRows + 7
	var batch []*groupedWrite
	for i := range n {
		batch = append(batch, queuedAdmission(db.Store(), fmt.Sprintf("c%03d", i), "alice", secret, now, n, func(store.ChatterID) (pubsub.Connection, error) {
			return pubsub.Connection{Topics: []string{"t", fmt.Sprintf("t%03d", i)}, ConnectedAt: now}, nil
		}))
	}
	db.writeGroup(batch)
	for i, w := range batch {
		if got, err := result(w); err != nil || got != i {
			t.Errorf("admission %d: count %d, %v; want %d, nil", i, got, err, i)
		}
	}
	ids, err := db.Store().FindTargetIDs(ctx, nil, []string{"t"}, now)
	if err != nil || len(ids) != n {
		t.Errorf("%d subscribers of t, %v; want %d", len(ids), err, n)
	}
	if c, err := db.Store().GetConnection(ctx, "c100"); err != nil || strings.Join(c.Topics, ",") != "t,t100" {
		t.Errorf("c100: %+v %v; want topics t, t100", c, err)
	}
	// A limit too large to write into the statement counts every record.
	batch = nil
	for i := range 2 {
		batch = append(batch, queuedAdmission(db.Store(), fmt.Sprintf("d%d", i), "alice", secret, now, math.MaxInt, func(store.ChatterID) (pubsub.Connection, error) {
			return pubsub.Connection{Topics: []string{"t"}, ConnectedAt: now}, nil
		}))
	}
	db.writeGroup(batch)
	for i, w := range batch {
		if got, err := result(w); err != nil || got != n+i {
			t.Errorf("admission d%d under no real limit: count %d, %v; want %d, nil", i, got, err, n+i)
		}
	}
}

func TestBatchRows(t *testing.T) {
	for n, want := range map[int]int{0: 0, 1: 1, 2: 2, 3: 3, 4: 4, 5: 6, 6: 6, 7: 8, 9: 12, 13: 16, 17: 24, 25: 32, 33: 48, 49: 64, 64: 64} {
		if got := batchRows(n); got != want {
			t.Errorf("batchRows(%d) = %d; want %d", n, got, want)
		}
	}
	for limit, want := range map[int]int{-1: 0, 0: 0, 1: 1, 5: 8, 100: 128, 1 << 20: 1 << 20, 1<<20 + 1: -1} {
		if got := countBound(limit); got != want {
			t.Errorf("countBound(%d) = %d; want %d", limit, got, want)
		}
	}
}

// record returns an AdmitConnection callback that writes c with the
// chatter ID's topics as its allowed ones, as the routes do.
func record(c pubsub.Connection) func(store.ChatterID) (pubsub.Connection, error) {
	return func(chatter store.ChatterID) (pubsub.Connection, error) {
		c.Allowed = chatter.Topics
		return c, nil
	}
}

// liveRecords counts the records of geek s lists as live at now.
func liveRecords(t *testing.T, s *Store, geek string, now time.Time) int {
	t.Helper()
	live := 0
	err := s.ListConnections(t.Context(), store.ConnectionFilter{Geek: geek}, now, func(page []pubsub.Connection) error {
		live += len(page)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return live
}

// TestARevokeClosesTheWindowOfConnectsUnderway: connects with a chatter
// ID keep coming through two handles (two serves' worth of pools, as
// separate processes) while a third handle (`socks chatter revoke`)
// revokes it. The chatter check and the record are one write, so there
// is no window as on DynamoDB, where a connect verified before the revoke
// writes its record after it: once the revoke has returned, no record of
// the ID appears any more (the connects underway at that moment were
// either written before it or refused), and every connect begun after
// it is refused as unknown.
func TestARevokeClosesTheWindowOfConnectsUnderway(t *testing.T) {
	ctx := t.Context()
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	path := filepath.Join(t.TempDir(), "socks.db")
	connects := []*Store{openPath(t, path, Options{}).Store(), openPath(t, path, Options{}).Store()}
	revoker := openPath(t, path, Options{}).Store()
	secret, _, err := store.IssueChatterID(ctx, revoker, "alice", time.Hour, now.Add(-time.Minute))
	if err != nil {
		t.Fatal(err)
	}

	const workers, most = 8, 300
	var (
		revoked  = make(chan struct{}) // closed once the revoke returned
		admitted = make(chan struct{}, workers*most)
		wg       sync.WaitGroup
		mu       sync.Mutex
		late     []string // connects begun after the revoke, and admitted
	)
	for w := range workers {
		s := connects[w%len(connects)]
		wg.Go(func() {
			for i := range most {
				id := fmt.Sprintf("w%d-%03d", w, i)
				after := false
				select {
				case <-revoked:
					after = true
				default:
				}
				_, err := s.AdmitConnection(ctx, id, "alice", secret, now, 0, record(pubsub.Connection{Topics: []string{"t"}, ConnectedAt: now, ExpiresAt: now.Add(time.Hour)}))
				switch {
				case err == nil && after:
					mu.Lock()
					late = append(late, id)
					mu.Unlock()
				case err == nil:
					admitted <- struct{}{}
				case errors.Is(err, store.ErrUnauthorized):
					if !after {
						// Refused: the revoke has committed; the
						// next connects begin after it returns.
						<-revoked
					}
				default:
					t.Errorf("connect %s: %v", id, err)
					return
				}
				if after {
					return // one connect after the revoke is enough
				}
			}
		})
	}
	// Some connects in, then the revoke, as they go on.
	for range workers {
		<-admitted
	}
	n, err := revoker.RevokeChatterIDs(ctx, "alice", nil)
	if err != nil || n != 1 {
		t.Fatalf("RevokeChatterIDs = %d, %v; want 1", n, err)
	}
	atRevoke := liveRecords(t, revoker, "alice", now)
	close(revoked)
	wg.Wait()
	if late != nil {
		t.Errorf("connects begun after the revoke returned were admitted: %v", late)
	}
	if after := liveRecords(t, revoker, "alice", now); after != atRevoke {
		t.Errorf("%d records when the revoke returned, %d once the connects underway ended; want no record written after the revoke", atRevoke, after)
	}
}
