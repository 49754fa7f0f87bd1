package local

import (
	"database/sql"
	"fmt"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/socks-dev/socks/pubsub"
)

// TestCachedTargetLookupsSeeEveryWriter checks that a Store's cached
// target lookups never miss a change, whoever makes it: another DB handle
// on the file (as another socks process), or a plain SQLite connection
// writing the tables directly, between two lookups of the same targets.
// It also checks that an unchanged file is answered from the cache, and
// that expiry is judged at each lookup's time.
func TestCachedTargetLookupsSeeEveryWriter(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "socks.db")
	a := openPath(t, path, Options{}).Store()
	b := openPath(t, path, Options{}).Store()
	raw := rawSQLite(t, path)
	now := time.Now().UTC().Truncate(time.Millisecond)
	put := func(s *Store, id string, expires time.Time, topics ...string) {
		t.Helper()
		c := pubsub.Connection{ID: id, Geek: "alice", Topics: topics, ConnectedAt: now, ExpiresAt: expires}
		if err := s.PutConnection(ctx, c); err != nil {
			t.Fatal(err)
		}
	}
	exec := func(q string, args ...any) {
		t.Helper()
		if _, err := raw.ExecContext(ctx, q, args...); err != nil {
			t.Fatal(err)
		}
	}
	// lookup checks what a finds for alice's "news" at now plus ahead.
	lookup := func(ahead time.Duration, want ...string) {
		t.Helper()
		got, err := a.FindTargetIDs(ctx, []string{"alice"}, []string{"news"}, now.Add(ahead))
		if err != nil {
			t.Fatal(err)
		}
		slices.Sort(got)
		if !slices.Equal(got, want) && (len(got) != 0 || len(want) != 0) {
			t.Fatalf("FindTargetIDs = %q, want %q", got, want)
		}
	}
	hits := func() int {
		a.targets.mu.Lock()
		defer a.targets.mu.Unlock()
		return a.targets.hits
	}

	put(a, "c1", time.Time{}, "news")
	lookup(0, "c1")
	before := hits()
	lookup(0, "c1")
	if hits() != before+1 {
		t.Fatalf("a second lookup of an unchanged file was not answered from the cache")
	}

	steps := []struct {
		name  string
		write func()
		want  []string
	}{
		{"another handle records a connection", func() { put(b, "c2", time.Time{}, "news") }, []string{"c1", "c2"}},
		{"another handle unsubscribes it", func() {
			if _, err := b.RemoveTopics(ctx, "c2", []string{"news"}); err != nil {
				t.Fatal(err)
			}
		}, []string{"c1"}},
		{"another handle subscribes it again", func() {
			if _, err := b.AddTopics(ctx, "c2", []string{"news"}, 0); err != nil {
				t.Fatal(err)
			}
		}, []string{"c1", "c2"}},
		{"another handle replaces it with other topics", func() { put(b, "c2", time.Time{}, "sport") }, []string{"c1"}},
		{"another handle subscribes it to the wildcard", func() { put(b, "c2", time.Time{}, pubsub.AllTopics) }, []string{"c1", "c2"}},
		{"a plain connection deletes a subscription", func() { exec(`DELETE FROM subscriptions WHERE conn_id = 'c1'`) }, []string{"c2"}},
		{"a plain connection inserts one", func() { exec(`INSERT INTO subscriptions (topic, geek, conn_id) VALUES ('news', 'alice', 'c1')`) }, []string{"c1", "c2"}},
		{"a plain connection moves one to another geek", func() { exec(`UPDATE subscriptions SET geek = 'bob' WHERE conn_id = 'c1'`) }, []string{"c2"}},
		{"and back", func() { exec(`UPDATE subscriptions SET geek = 'alice' WHERE conn_id = 'c1'`) }, []string{"c1", "c2"}},
		{"a plain connection expires a connection", func() {
			exec(`UPDATE connections SET expires_at = ? WHERE id = 'c2'`, millis(now.Add(-time.Second)))
		}, []string{"c1"}},
		{"and lets it live again", func() { exec(`UPDATE connections SET expires_at = NULL WHERE id = 'c2'`) }, []string{"c1", "c2"}},
		{"another handle deletes a connection", func() {
			if err := b.DeleteConnection(ctx, "c1"); err != nil {
				t.Fatal(err)
			}
		}, []string{"c2"}},
		{"a plain connection deletes one, its subscriptions by cascade", func() { exec(`DELETE FROM connections WHERE id = 'c2'`) }, nil},
		{"another handle records two at once", func() {
			put(b, "c3", time.Time{}, "news")
			put(b, "c4", now.Add(time.Minute), "news", "sport")
		}, []string{"c3", "c4"}},
		// A record's insert and delete raise no generation (schema 5):
		// its subscriptions' do.
		{"a plain connection inserts a record without subscriptions", func() {
			exec(`INSERT INTO connections (id, geek, connected_at) VALUES ('c5', 'alice', 0)`)
		}, []string{"c3", "c4"}},
		{"and subscribes it", func() { exec(`INSERT INTO subscriptions (topic, geek, conn_id) VALUES ('news', 'alice', 'c5')`) }, []string{"c3", "c4", "c5"}},
		{"a plain connection deletes its subscriptions, then it", func() {
			exec(`DELETE FROM subscriptions WHERE conn_id = 'c5'`)
			exec(`DELETE FROM connections WHERE id = 'c5'`)
		}, []string{"c3", "c4"}},
	}
	prev := []string{"c1"}
	for _, st := range steps {
		t.Log(st.name)
		lookup(0, prev...) // cached
		st.write()
		lookup(0, st.want...)
		lookup(0, st.want...)
		prev = st.want
	}

	// Expiry is judged at each lookup's time, from the cache: later, c4
	// has expired; earlier again (a clock set back), it has not.
	before = hits()
	lookup(2*time.Minute, "c3")
	lookup(0, "c3", "c4")
	if hits() != before+2 {
		t.Fatalf("lookups at other times of an unchanged file were not answered from the cache")
	}
}

// TestTargetLookupKey checks that lookups of the same users and topics
// share a key, whatever their order and repeats, and that no two others do.
func TestTargetLookupKey(t *testing.T) {
	same := [][2][]string{
		{{"alice", "bob"}, {"news", "sport"}},
		{{"bob", "alice", "bob"}, {"sport", "news", "news"}},
	}
	if a, b := lookupKey(same[0][0], same[0][1]), lookupKey(same[1][0], same[1][1]); a != b {
		t.Errorf("keys differ: %q and %q", a, b)
	}
	different := [][2][]string{
		{nil, {"news"}},
		{{"news"}, nil},
		{{"a;1:b"}, {"news"}},
		{{"a", "b"}, {"news"}},
		{{"a"}, {"b", "news"}},
		{{"ab"}, {"news"}},
		{nil, {"news", "."}},
		{nil, {"."}},
	}
	seen := map[string]int{}
	for i, d := range different {
		k := lookupKey(d[0], d[1])
		if j, ok := seen[k]; ok {
			t.Errorf("lookups %d and %d share the key %q", j, i, k)
		}
		seen[k] = i
	}
}

// TestCachedTargetLookupsKeepUpWithConcurrentWriters has another handle
// record connections one after the other while lookups run on this one,
// from several goroutines: every lookup finds at least the connections
// whose write had returned before it began, and never one that was never
// written.
// TestCachedWildcardLookupsSeeARecordChangeGeek checks the lookup of an
// envelope to every topic of some geeks, which reads the records' geek
// (not the subscriptions'): a plain SQLite connection moving a record to
// another geek changes it.
func TestCachedWildcardLookupsSeeARecordChangeGeek(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "socks.db")
	a := openPath(t, path, Options{}).Store()
	raw := rawSQLite(t, path)
	now := time.Now().UTC().Truncate(time.Millisecond)
	if err := a.PutConnection(ctx, pubsub.Connection{ID: "c1", Geek: "alice", Topics: []string{"news"}, ConnectedAt: now}); err != nil {
		t.Fatal(err)
	}
	lookup := func(geek string, want ...string) {
		t.Helper()
		for range 2 { // the second from the cache, if unchanged
			got, err := a.FindTargetIDs(ctx, []string{geek}, []string{pubsub.AllTopics}, now)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(got, want) && (len(got) != 0 || len(want) != 0) {
				t.Fatalf("FindTargetIDs(%s, every topic) = %q, want %q", geek, got, want)
			}
		}
	}
	lookup("alice", "c1")
	lookup("bob")
	if _, err := raw.ExecContext(ctx, `UPDATE connections SET geek = 'bob' WHERE id = 'c1'`); err != nil {
		t.Fatal(err)
	}
	lookup("alice")
	lookup("bob", "c1")
}

func TestCachedTargetLookupsKeepUpWithConcurrentWriters(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "socks.db")
	a := openPath(t, path, Options{}).Store()
	b := openPath(t, path, Options{}).Store()
	const n = 60
	now := time.Now()
	var written atomic.Int64
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := range n {
			c := pubsub.Connection{ID: fmt.Sprintf("c%03d", i), Geek: "alice", Topics: []string{"news"}, ConnectedAt: now}
			if err := b.PutConnection(ctx, c); err != nil {
				t.Error(err)
				return
			}
			written.Store(int64(i + 1))
		}
	}()
	var wg sync.WaitGroup
	for range 3 {
		wg.Go(func() {
			for {
				select {
				case <-done:
					return
				default:
				}
				at := written.Load()
				got, err := a.FindTargetIDs(ctx, nil, []string{"news"}, now)
				if err != nil {
					t.Error(err)
					return
				}
				have := make(map[string]bool, len(got))
				for _, id := range got {
					have[id] = true
				}
				for i := range int(at) {
					if id := fmt.Sprintf("c%03d", i); !have[id] {
						t.Errorf("a lookup begun after %d writes missed %s (found %d)", at, id, len(got))
						return
					}
				}
				if len(got) > n {
					t.Errorf("a lookup found %d connections; %d were written", len(got), n)
					return
				}
			}
		})
	}
	wg.Wait()
	<-done
	got, err := a.FindTargetIDs(ctx, nil, []string{"news"}, now)
	if err != nil || len(got) != n {
		t.Fatalf("after the writes, a lookup found %d connections (%v), want %d", len(got), err, n)
	}
}

// TestTargetCacheStaysBounded checks that the cache keeps at most
// maxCachedLookups lookups and maxCachedIDs IDs, and that a lookup is
// found again only at the generation it was read at.
func TestTargetCacheStaysBounded(t *testing.T) {
	var c targetCache
	entry := func(gen int64, n int) *targetEntry {
		return &targetEntry{gen: gen, ids: make([]string, n), expires: make([]int64, n)}
	}
	check := func() {
		t.Helper()
		sum := 0
		for _, e := range c.entries {
			sum += len(e.ids)
		}
		if len(c.entries) > maxCachedLookups || sum > maxCachedIDs || sum != c.ids {
			t.Fatalf("%d lookups with %d IDs (counted %d); bounds %d and %d", len(c.entries), sum, c.ids, maxCachedLookups, maxCachedIDs)
		}
	}
	for i := range 3 * maxCachedLookups {
		c.put(fmt.Sprint("small", i), entry(1, 10))
		check()
	}
	for i := range 10 {
		c.put(fmt.Sprint("large", i), entry(1, maxCachedIDs/3))
		check()
	}
	c.put("huge", entry(1, maxCachedIDs+1))
	check()
	if _, ok := c.get("huge", 1); ok {
		t.Fatal("a lookup over the bound of IDs was kept")
	}
	c.put("k", entry(2, 5))
	c.put("k", entry(3, 6))
	c.put("k", entry(2, 7)) // an older read finishing late
	check()
	if _, ok := c.get("k", 2); ok {
		t.Fatal("an older generation replaced a later one")
	}
	if e, ok := c.get("k", 3); !ok || len(e.ids) != 6 {
		t.Fatal("the latest generation was not kept")
	}
}

// rawSQLite opens the state file at path with a plain SQLite connection,
// as a writer that is not socks would.
func rawSQLite(t *testing.T, path string) *sql.DB {
	t.Helper()
	raw, err := sql.Open("sqlite", dsn(path, busyTimeout))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { raw.Close() })
	return raw
}
