package storetest

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/socks-dev/socks/pubsub"
	"github.com/socks-dev/socks/store"
)

// RunStore runs the store.Store conformance suite. newStore must return a
// fresh, empty, isolated store for each call.
func RunStore(t *testing.T, newStore func(t *testing.T) store.Store) {
	groups := []struct {
		name  string
		tests []storeTest
	}{
		{"chatter IDs", chatterTests},
		{"connections", connectionTests},
		{"FindTargets", findTargetsTests},
		{"ListConnections", listTests},
		{"ScanConnections", scanTests},
		{"reports", reportTests},
	}
	for _, g := range groups {
		t.Run(g.name, func(t *testing.T) {
			for _, tc := range g.tests {
				t.Run(tc.name, func(t *testing.T) {
					t.Parallel()
					tc.run(t, newStore(t))
				})
			}
		})
	}
}

type storeTest struct {
	name string
	run  func(t *testing.T, s store.Store)
}

// issue records a fresh chatter ID for geek, issued at issued and valid for
// ttl, and returns its secret and record.
func issue(t *testing.T, s store.Store, geek string, issued time.Time, ttl time.Duration) (string, store.ChatterID) {
	t.Helper()
	secret := pubsub.NewChatterID()
	c := store.ChatterID{Geek: geek, Hash: pubsub.HashChatterID(secret), IssuedAt: issued, ExpiresAt: issued.Add(ttl)}
	if err := s.PutChatterID(t.Context(), c); err != nil {
		t.Fatalf("PutChatterID: %v", err)
	}
	return secret, c
}

func wantVerify(t *testing.T, s store.Store, geek, secret string, now time.Time, want error) {
	t.Helper()
	_, err := s.VerifyChatterID(t.Context(), geek, secret, now)
	switch {
	case want == nil && err != nil:
		t.Errorf("VerifyChatterID(%q) = %v, want nil", geek, err)
	case want != nil && !errors.Is(err, want):
		t.Errorf("VerifyChatterID(%q) = %v, want %v", geek, err, want)
	}
}

func hashes(ids []store.ChatterID) []string {
	out := make([]string, len(ids))
	for i, c := range ids {
		out[i] = c.Geek + "/" + c.Hash
	}
	return out
}

var chatterTests = []storeTest{
	{"a chatter ID verifies for its geek with its secret", func(t *testing.T, s store.Store) {
		secret, _ := issue(t, s, "Friendless", Now.Add(-time.Hour), 24*time.Hour)
		wantVerify(t, s, "Friendless", secret, Now, nil)
	}},
	{"a chatter ID is refused for another geek", func(t *testing.T, s store.Store) {
		secret, _ := issue(t, s, "Friendless", Now.Add(-time.Hour), 24*time.Hour)
		wantVerify(t, s, "Someone", secret, Now, store.ErrUnauthorized)
	}},
	{"a wrong secret is refused", func(t *testing.T, s store.Store) {
		issue(t, s, "Friendless", Now.Add(-time.Hour), 24*time.Hour)
		wantVerify(t, s, "Friendless", pubsub.NewChatterID(), Now, store.ErrUnauthorized)
		wantVerify(t, s, "Friendless", "", Now, store.ErrUnauthorized)
	}},
	{"the stored hash itself is not accepted as the secret", func(t *testing.T, s store.Store) {
		_, c := issue(t, s, "Friendless", Now.Add(-time.Hour), 24*time.Hour)
		wantVerify(t, s, "Friendless", c.Hash, Now, store.ErrUnauthorized)
	}},
	{"a geek with no chatter IDs is refused", func(t *testing.T, s store.Store) {
		wantVerify(t, s, "Nobody", pubsub.NewChatterID(), Now, store.ErrUnauthorized)
	}},
	{"an expired chatter ID is refused even though its row exists", func(t *testing.T, s store.Store) {
		secret, _ := issue(t, s, "Friendless", Now.Add(-48*time.Hour), 24*time.Hour)
		wantVerify(t, s, "Friendless", secret, Now, store.ErrExpired)
		if ids, err := s.ListChatterIDs(t.Context(), "Friendless"); err != nil || len(ids) != 1 {
			t.Errorf("ListChatterIDs = %d IDs, %v; want the expired one still listed", len(ids), err)
		}
	}},
	{"a chatter ID is refused from the instant it expires", func(t *testing.T, s store.Store) {
		secret, _ := issue(t, s, "Friendless", Now.Add(-time.Hour), time.Hour)
		wantVerify(t, s, "Friendless", secret, Now, store.ErrExpired)
		wantVerify(t, s, "Friendless", secret, Now.Add(-time.Second), nil)
	}},
	{"each of a geek's chatter IDs verifies on its own", func(t *testing.T, s store.Store) {
		a, _ := issue(t, s, "Friendless", Now.Add(-time.Hour), 24*time.Hour)
		b, _ := issue(t, s, "Friendless", Now.Add(-time.Minute), 24*time.Hour)
		wantVerify(t, s, "Friendless", a, Now, nil)
		wantVerify(t, s, "Friendless", b, Now, nil)
	}},
	{"putting the same chatter ID twice keeps one record", func(t *testing.T, s store.Store) {
		_, c := issue(t, s, "Friendless", Now.Add(-time.Hour), 24*time.Hour)
		if err := s.PutChatterID(t.Context(), c); err != nil {
			t.Fatal(err)
		}
		ids, err := s.ListChatterIDs(t.Context(), "Friendless")
		if err != nil || len(ids) != 1 {
			t.Fatalf("ListChatterIDs = %d IDs, %v; want 1", len(ids), err)
		}
	}},
	{"ListChatterIDs lists one geek's IDs by issue time with their times, expired ones included", func(t *testing.T, s store.Store) {
		_, late := issue(t, s, "Friendless", Now.Add(-time.Minute), 24*time.Hour)
		_, early := issue(t, s, "Friendless", Now.Add(-72*time.Hour), 24*time.Hour)
		issue(t, s, "Other", Now.Add(-time.Hour), 24*time.Hour)
		got, err := s.ListChatterIDs(t.Context(), "Friendless")
		if err != nil {
			t.Fatal(err)
		}
		if g, w := hashes(got), hashes([]store.ChatterID{early, late}); !slices.Equal(g, w) {
			t.Fatalf("ListChatterIDs = %q, want %q", g, w)
		}
		for i, want := range []store.ChatterID{early, late} {
			if !got[i].IssuedAt.Equal(want.IssuedAt) || !got[i].ExpiresAt.Equal(want.ExpiresAt) {
				t.Errorf("ID %d: issued %v expires %v, want %v and %v", i, got[i].IssuedAt, got[i].ExpiresAt, want.IssuedAt, want.ExpiresAt)
			}
		}
	}},
	{"ListChatterIDs with no geek lists every geek's IDs by geek then issue time", func(t *testing.T, s store.Store) {
		_, b2 := issue(t, s, "bob", Now.Add(-time.Minute), time.Hour)
		_, a1 := issue(t, s, "alice", Now.Add(-time.Hour), time.Hour)
		_, b1 := issue(t, s, "bob", Now.Add(-time.Hour), time.Hour)
		got, err := s.ListChatterIDs(t.Context(), "")
		if err != nil {
			t.Fatal(err)
		}
		if g, w := hashes(got), hashes([]store.ChatterID{a1, b1, b2}); !slices.Equal(g, w) {
			t.Errorf("ListChatterIDs = %q, want %q", g, w)
		}
	}},
	// The local store listed no topics: `chatter list --json` showed an
	// ID limited to updates as one for every topic.
	{"ListChatterIDs lists each ID's allowed topics, as one geek's and as every geek's", func(t *testing.T, s store.Store) {
		limited := store.ChatterID{Geek: "Friendless", Hash: pubsub.HashChatterID(pubsub.NewChatterID()), IssuedAt: Now.Add(-time.Hour), ExpiresAt: Now.Add(time.Hour), Topics: []string{"entity:*", "updates"}}
		if err := s.PutChatterID(t.Context(), limited); err != nil {
			t.Fatal(err)
		}
		_, unlimited := issue(t, s, "Friendless", Now.Add(-time.Minute), time.Hour)
		for _, geek := range []string{"Friendless", ""} {
			got, err := s.ListChatterIDs(t.Context(), geek)
			if err != nil || len(got) != 2 {
				t.Fatalf("ListChatterIDs(%q) = %d IDs, %v; want 2", geek, len(got), err)
			}
			if got[0].Hash != limited.Hash || !slices.Equal(got[0].Topics, limited.Topics) {
				t.Errorf("ListChatterIDs(%q): the limited ID has topics %q; want %q", geek, got[0].Topics, limited.Topics)
			}
			if got[1].Hash != unlimited.Hash || len(got[1].Topics) != 0 {
				t.Errorf("ListChatterIDs(%q): the ID for any topic has topics %q; want none", geek, got[1].Topics)
			}
		}
	}},
	{"ListChatterIDs of a geek with none is empty", func(t *testing.T, s store.Store) {
		got, err := s.ListChatterIDs(t.Context(), "Nobody")
		if err != nil || len(got) != 0 {
			t.Errorf("ListChatterIDs = %v, %v; want nothing", got, err)
		}
	}},
	{"RevokeChatterIDs by fingerprint deletes only that ID", func(t *testing.T, s store.Store) {
		a, ca := issue(t, s, "Friendless", Now.Add(-time.Hour), 24*time.Hour)
		b, _ := issue(t, s, "Friendless", Now.Add(-time.Hour), 24*time.Hour)
		n, err := s.RevokeChatterIDs(t.Context(), "Friendless", []string{ca.Fingerprint()})
		if err != nil || n != 1 {
			t.Fatalf("RevokeChatterIDs = %d, %v; want 1", n, err)
		}
		wantVerify(t, s, "Friendless", a, Now, store.ErrUnauthorized)
		wantVerify(t, s, "Friendless", b, Now, nil)
	}},
	{"RevokeChatterIDs by full hash deletes that ID", func(t *testing.T, s store.Store) {
		a, ca := issue(t, s, "Friendless", Now.Add(-time.Hour), 24*time.Hour)
		n, err := s.RevokeChatterIDs(t.Context(), "Friendless", []string{ca.Hash})
		if err != nil || n != 1 {
			t.Fatalf("RevokeChatterIDs = %d, %v; want 1", n, err)
		}
		wantVerify(t, s, "Friendless", a, Now, store.ErrUnauthorized)
	}},
	{"RevokeChatterIDs with several prefixes counts each deleted ID once", func(t *testing.T, s store.Store) {
		_, ca := issue(t, s, "Friendless", Now.Add(-time.Hour), 24*time.Hour)
		_, cb := issue(t, s, "Friendless", Now.Add(-time.Hour), 24*time.Hour)
		n, err := s.RevokeChatterIDs(t.Context(), "Friendless", []string{ca.Fingerprint(), cb.Hash, "ffffffffffffzz"})
		if err != nil || n != 2 {
			t.Fatalf("RevokeChatterIDs = %d, %v; want 2", n, err)
		}
	}},
	{"RevokeChatterIDs with nil prefixes revokes all of the geek's IDs and no one else's", func(t *testing.T, s store.Store) {
		a, _ := issue(t, s, "Friendless", Now.Add(-time.Hour), 24*time.Hour)
		issue(t, s, "Friendless", Now.Add(-time.Hour), 24*time.Hour)
		other, _ := issue(t, s, "Other", Now.Add(-time.Hour), 24*time.Hour)
		n, err := s.RevokeChatterIDs(t.Context(), "Friendless", nil)
		if err != nil || n != 2 {
			t.Fatalf("RevokeChatterIDs = %d, %v; want 2", n, err)
		}
		wantVerify(t, s, "Friendless", a, Now, store.ErrUnauthorized)
		wantVerify(t, s, "Other", other, Now, nil)
	}},
	{"RevokeChatterIDs with an empty prefix list revokes nothing", func(t *testing.T, s store.Store) {
		a, _ := issue(t, s, "Friendless", Now.Add(-time.Hour), 24*time.Hour)
		n, err := s.RevokeChatterIDs(t.Context(), "Friendless", []string{})
		if err != nil || n != 0 {
			t.Fatalf("RevokeChatterIDs = %d, %v; want 0", n, err)
		}
		wantVerify(t, s, "Friendless", a, Now, nil)
	}},
	{"RevokeChatterIDs with an unknown fingerprint deletes nothing", func(t *testing.T, s store.Store) {
		a, _ := issue(t, s, "Friendless", Now.Add(-time.Hour), 24*time.Hour)
		n, err := s.RevokeChatterIDs(t.Context(), "Friendless", []string{"zzzzzzzzzzzz"})
		if err != nil || n != 0 {
			t.Fatalf("RevokeChatterIDs = %d, %v; want 0", n, err)
		}
		wantVerify(t, s, "Friendless", a, Now, nil)
	}},
	{"RevokeChatterIDs never touches another geek's ID with the same hash", func(t *testing.T, s store.Store) {
		secret := pubsub.NewChatterID()
		for _, g := range []string{"Friendless", "Other"} {
			c := store.ChatterID{Geek: g, Hash: pubsub.HashChatterID(secret), IssuedAt: Now.Add(-time.Hour), ExpiresAt: Now.Add(time.Hour)}
			if err := s.PutChatterID(t.Context(), c); err != nil {
				t.Fatal(err)
			}
		}
		n, err := s.RevokeChatterIDs(t.Context(), "Friendless", []string{pubsub.Fingerprint(pubsub.HashChatterID(secret))})
		if err != nil || n != 1 {
			t.Fatalf("RevokeChatterIDs = %d, %v; want 1", n, err)
		}
		wantVerify(t, s, "Friendless", secret, Now, store.ErrUnauthorized)
		wantVerify(t, s, "Other", secret, Now, nil)
	}},
	{"an ExpiredChatterIDCounter counts exactly the IDs DeleteExpiredChatterIDs removes, and removes none", func(t *testing.T, s store.Store) {
		c, ok := s.(store.ExpiredChatterIDCounter)
		if !ok {
			t.Skip("the store does not count expired chatter IDs")
		}
		issue(t, s, "Friendless", Now.Add(-48*time.Hour), 24*time.Hour) // expired
		issue(t, s, "Other", Now.Add(-time.Hour), time.Hour)            // expired at Now
		issue(t, s, "Friendless", Now.Add(-time.Hour), 24*time.Hour)    // live
		for at, want := range map[time.Time]int{Now: 2, Now.Add(-time.Millisecond): 1, Now.Add(-72 * time.Hour): 0} {
			if n, err := c.CountExpiredChatterIDs(t.Context(), at); err != nil || n != want {
				t.Errorf("CountExpiredChatterIDs(Now%+v) = %d, %v; want %d", at.Sub(Now), n, err, want)
			}
		}
		if got, err := s.ListChatterIDs(t.Context(), ""); err != nil || len(got) != 3 {
			t.Errorf("after counting, %d chatter IDs (%v); want all 3", len(got), err)
		}
		if n, err := s.DeleteExpiredChatterIDs(t.Context(), Now); err != nil || n != 2 {
			t.Errorf("DeleteExpiredChatterIDs = %d, %v; want the 2 counted", n, err)
		}
	}},
	{"DeleteExpiredChatterIDs removes exactly the IDs expired at now", func(t *testing.T, s store.Store) {
		_, old := issue(t, s, "Friendless", Now.Add(-48*time.Hour), 24*time.Hour)
		_, edge := issue(t, s, "Other", Now.Add(-time.Hour), time.Hour)
		_, live := issue(t, s, "Friendless", Now.Add(-time.Hour), 24*time.Hour)
		n, err := s.DeleteExpiredChatterIDs(t.Context(), Now)
		if err != nil || n != 2 {
			t.Fatalf("DeleteExpiredChatterIDs = %d, %v; want 2 (%s and %s)", n, err, old.Fingerprint(), edge.Fingerprint())
		}
		got, err := s.ListChatterIDs(t.Context(), "")
		if err != nil {
			t.Fatal(err)
		}
		if g, w := hashes(got), hashes([]store.ChatterID{live}); !slices.Equal(g, w) {
			t.Errorf("left %q, want %q", g, w)
		}
	}},
}

// conn returns a connection record connected an hour before Now and expiring
// an hour after it.
func conn(id, geek string, topics ...string) pubsub.Connection {
	return pubsub.Connection{ID: id, Geek: geek, Topics: topics, ConnectedAt: Now.Add(-time.Hour), ExpiresAt: Now.Add(time.Hour)}
}

func put(t *testing.T, s store.Store, conns ...pubsub.Connection) {
	t.Helper()
	for _, c := range conns {
		if err := s.PutConnection(t.Context(), c); err != nil {
			t.Fatalf("PutConnection(%s): %v", c.ID, err)
		}
	}
}

func get(t *testing.T, s store.Store, id string) pubsub.Connection {
	t.Helper()
	c, err := s.GetConnection(t.Context(), id)
	if err != nil {
		t.Fatalf("GetConnection(%s): %v", id, err)
	}
	return c
}

var connectionTests = []storeTest{
	{"a connection put is returned by GetConnection with its geek, topics and times", func(t *testing.T, s store.Store) {
		want := conn("c1", "Friendless", "updates", "news")
		put(t, s, want)
		checkConnection(t, get(t, s, "c1"), want)
	}},
	{"a connection with no expiry is kept with none", func(t *testing.T, s store.Store) {
		want := conn("c1", "Friendless", ".")
		want.ExpiresAt = time.Time{}
		put(t, s, want)
		checkConnection(t, get(t, s, "c1"), want)
	}},
	{"GetConnection of an unknown ID is ErrNotFound", func(t *testing.T, s store.Store) {
		if _, err := s.GetConnection(t.Context(), "nope"); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("GetConnection = %v, want ErrNotFound", err)
		}
	}},
	{"GetConnection returns an expired record so the caller can decide", func(t *testing.T, s store.Store) {
		want := conn("c1", "Friendless", "updates")
		want.ExpiresAt = Now.Add(-time.Minute)
		put(t, s, want)
		got := get(t, s, "c1")
		checkConnection(t, got, want)
		if !got.Expired(Now) {
			t.Error("the record does not say it expired")
		}
	}},
	{"putting a connection again replaces its geek, topics and times", func(t *testing.T, s store.Store) {
		put(t, s, conn("c1", "Friendless", "updates", "news"))
		want := conn("c1", "Other", "weather")
		want.ExpiresAt = Now.Add(2 * time.Hour)
		put(t, s, want)
		checkConnection(t, get(t, s, "c1"), want)
		got, err := s.FindTargets(t.Context(), []string{"Friendless"}, []string{"updates"}, Now)
		if err != nil || len(got) != 0 {
			t.Errorf("FindTargets for the old geek and topic = %q, %v; want nothing", connIDs(got), err)
		}
	}},
	{"AddTopics adds topics once and returns the updated record", func(t *testing.T, s store.Store) {
		put(t, s, conn("c1", "Friendless", "updates"))
		got, err := s.AddTopics(t.Context(), "c1", []string{"news", "updates", "news"}, 0)
		if err != nil {
			t.Fatal(err)
		}
		want := conn("c1", "Friendless", "updates", "news")
		checkConnection(t, got, want)
		checkConnection(t, get(t, s, "c1"), want)
		if len(got.Topics) != 2 {
			t.Errorf("topics = %q, want each once", got.Topics)
		}
	}},
	{"AddTopics makes the connection a target of the new topic", func(t *testing.T, s store.Store) {
		put(t, s, conn("c1", "Friendless", "updates"))
		if _, err := s.AddTopics(t.Context(), "c1", []string{"news"}, 0); err != nil {
			t.Fatal(err)
		}
		got, err := s.FindTargets(t.Context(), nil, []string{"news"}, Now)
		if err != nil || !slices.Equal(connIDs(got), []string{"c1"}) {
			t.Errorf("FindTargets(news) = %q, %v; want [c1]", connIDs(got), err)
		}
	}},
	{"AddTopics on an unknown connection is ErrNotFound", func(t *testing.T, s store.Store) {
		if _, err := s.AddTopics(t.Context(), "nope", []string{"news"}, 0); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("AddTopics = %v, want ErrNotFound", err)
		}
		if _, err := s.GetConnection(t.Context(), "nope"); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("AddTopics created a record: GetConnection = %v", err)
		}
	}},
	{"RemoveTopics removes only the named topics and ignores ones not followed", func(t *testing.T, s store.Store) {
		put(t, s, conn("c1", "Friendless", "updates", "news", "weather"))
		got, err := s.RemoveTopics(t.Context(), "c1", []string{"news", "sport"})
		if err != nil {
			t.Fatal(err)
		}
		want := conn("c1", "Friendless", "updates", "weather")
		checkConnection(t, got, want)
		checkConnection(t, get(t, s, "c1"), want)
		found, err := s.FindTargets(t.Context(), nil, []string{"news"}, Now)
		if err != nil || len(found) != 0 {
			t.Errorf("FindTargets(news) = %q, %v; want nothing", connIDs(found), err)
		}
	}},
	{"RemoveTopics may leave a connection with no topics, which no message reaches", func(t *testing.T, s store.Store) {
		put(t, s, conn("c1", "Friendless", "updates"))
		got, err := s.RemoveTopics(t.Context(), "c1", []string{"updates"})
		if err != nil {
			t.Fatal(err)
		}
		checkConnection(t, got, conn("c1", "Friendless"))
		for _, topics := range [][]string{{"updates"}, {"."}} {
			found, err := s.FindTargets(t.Context(), []string{"Friendless"}, topics, Now)
			if err != nil || len(found) != 0 {
				t.Errorf("FindTargets(%q) = %q, %v; want nothing", topics, connIDs(found), err)
			}
		}
	}},
	{"RemoveTopics on an unknown connection is ErrNotFound", func(t *testing.T, s store.Store) {
		if _, err := s.RemoveTopics(t.Context(), "nope", []string{"news"}); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("RemoveTopics = %v, want ErrNotFound", err)
		}
	}},
	{"DeleteConnection removes the record and every subscription", func(t *testing.T, s store.Store) {
		put(t, s, conn("c1", "Friendless", "updates", "."), conn("c2", "Friendless", "updates"))
		if err := s.DeleteConnection(t.Context(), "c1"); err != nil {
			t.Fatal(err)
		}
		if _, err := s.GetConnection(t.Context(), "c1"); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("GetConnection after delete = %v, want ErrNotFound", err)
		}
		for _, topics := range [][]string{{"updates"}, {"."}} {
			found, err := s.FindTargets(t.Context(), nil, topics, Now)
			if err != nil || !slices.Equal(connIDs(found), []string{"c2"}) {
				t.Errorf("FindTargets(%q) = %q, %v; want [c2]", topics, connIDs(found), err)
			}
		}
		// c1 was the only wildcard subscriber.
		if found, err := s.FindTargets(t.Context(), nil, []string{"other"}, Now); err != nil || len(found) != 0 {
			t.Errorf("FindTargets(other) = %q, %v; want nothing", connIDs(found), err)
		}
	}},
	{"deleting an unknown connection is not an error", func(t *testing.T, s store.Store) {
		if err := s.DeleteConnection(t.Context(), "nope"); err != nil {
			t.Errorf("DeleteConnection = %v, want nil", err)
		}
	}},
	{"DeleteConnections removes many at once and counts those that existed", func(t *testing.T, s store.Store) {
		var ids []string
		for i := range 60 {
			id := fmt.Sprintf("c%02d", i)
			put(t, s, conn(id, "Friendless", "updates"))
			ids = append(ids, id)
		}
		n, err := s.DeleteConnections(t.Context(), append(ids[:40:40], "unknown-1", "unknown-2"))
		if err != nil || n != 40 {
			t.Fatalf("DeleteConnections = %d, %v; want 40", n, err)
		}
		found, err := s.FindTargets(t.Context(), nil, []string{"updates"}, Now)
		if err != nil || !slices.Equal(connIDs(found), ids[40:]) {
			t.Errorf("left %q, %v; want %q", connIDs(found), err, ids[40:])
		}
	}},
	{"DeleteConnections with no IDs deletes nothing", func(t *testing.T, s store.Store) {
		put(t, s, conn("c1", "Friendless", "updates"))
		n, err := s.DeleteConnections(t.Context(), nil)
		if err != nil || n != 0 {
			t.Fatalf("DeleteConnections = %d, %v; want 0", n, err)
		}
		get(t, s, "c1")
	}},
}

// targetPopulation is the fixed population of the FindTargets table.
func targetPopulation() []pubsub.Connection {
	expired := conn("d1", "dave", "updates", ".")
	expired.ExpiresAt = Now.Add(-time.Second)
	edge := conn("e1", "erin", "updates")
	edge.ExpiresAt = Now // expired from this instant
	forever := conn("f1", "frank", "news")
	forever.ExpiresAt = time.Time{}
	return []pubsub.Connection{
		conn("a1", "alice", "updates"),
		conn("a2", "alice", "."),
		conn("a3", "alice", "news"),
		conn("b1", "bob", "updates", "news"),
		conn("c1", "carol", "."),
		expired,
		edge,
		forever,
	}
}

var findTargetsTests = []storeTest{
	{"FindTargets answers each kind of address with exactly the matching live connections", func(t *testing.T, s store.Store) {
		pop := targetPopulation()
		put(t, s, pop...)
		byID := make(map[string]pubsub.Connection)
		for _, c := range pop {
			byID[c.ID] = c
		}
		cases := []struct {
			name   string
			users  []string
			topics []string
			want   []string
		}{
			{"FindTargets for one geek returns only that geek's connections on that topic", []string{"alice"}, []string{"updates"}, []string{"a1", "a2"}},
			{"a topic with no users reaches its followers and every wildcard subscriber", nil, []string{"updates"}, []string{"a1", "a2", "b1", "c1"}},
			{"an empty user list is the same as no users", []string{}, []string{"news"}, []string{"a2", "a3", "b1", "c1", "f1"}},
			{"the wildcard topic for one geek reaches all of that geek's connections", []string{"alice"}, []string{"."}, []string{"a1", "a2", "a3"}},
			{"the wildcard topic with no users reaches every live connection", nil, []string{"."}, []string{"a1", "a2", "a3", "b1", "c1", "f1"}},
			{"several users and topics reach each matching connection once", []string{"alice", "bob", "alice"}, []string{"updates", "news", "updates"}, []string{"a1", "a2", "a3", "b1"}},
			{"a topic nobody follows reaches only the wildcard subscribers", nil, []string{"weather"}, []string{"a2", "c1"}},
			{"a topic nobody follows, for one geek, reaches that geek's wildcard subscriptions", []string{"alice", "bob"}, []string{"weather"}, []string{"a2"}},
			{"a geek with no connections is reached nowhere", []string{"zed"}, []string{"updates", "."}, nil},
			{"an expired connection is never a target", []string{"dave"}, []string{"updates", "."}, nil},
			{"a connection is not a target from the instant it expires", []string{"erin"}, []string{"updates"}, nil},
			{"a connection with no expiry is always a target", []string{"frank"}, []string{"news"}, []string{"f1"}},
			{"no topics reach nobody", nil, nil, nil},
		}
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				got, err := s.FindTargets(t.Context(), tc.users, tc.topics, Now)
				if err != nil {
					t.Fatal(err)
				}
				if g := connIDs(got); !slices.Equal(g, tc.want) && (len(g) != 0 || len(tc.want) != 0) {
					t.Fatalf("FindTargets(%s, %s) = %s, want %s", quote(tc.users), quote(tc.topics), quote(g), quote(tc.want))
				}
				for _, c := range got {
					checkConnection(t, c, byID[c.ID])
				}
				checkTargetIDs(t, s, tc.users, tc.topics, tc.want)
			})
		}
	}},
	// The local store's error named the envelope's users and topics as
	// given, repeats and all (an envelope may name one thousands of
	// times), into the broker's log and the dead letter's reason; the
	// AWS store's named each once.
	{"a lookup that fails names each user and topic once", func(t *testing.T, s store.Store) {
		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		users := []string{"alice", "alice", "alice"}
		topics := []string{"updates", "updates", "news", "updates"}
		check := func(what string, err error) {
			t.Helper()
			if err == nil {
				t.Fatalf("%s with a canceled context succeeded", what)
			}
			for _, name := range []string{"alice", "updates", "news"} {
				if n := strings.Count(err.Error(), name); n != 1 {
					t.Errorf("%s: %v; names %s %d times, want once", what, err, name, n)
				}
			}
		}
		_, err := s.FindTargets(ctx, users, topics, Now)
		check("FindTargets", err)
		if f, ok := s.(store.TargetIDFinder); ok {
			_, err := f.FindTargetIDs(ctx, users, topics, Now)
			check("FindTargetIDs", err)
		}
	}},
	{"FindTargets agrees with Connection.Matches over a random population", func(t *testing.T, s store.Store) {
		seed := uint64(time.Now().UnixNano())
		t.Logf("seed %d", seed)
		rng := rand.New(rand.NewPCG(seed, 42))
		geeks := []string{"g0", "g1", "g2", "g3", "g4", "g5", "g6"}
		topics := []string{"t0", "t1", "t2", "t3", "t4", ".", "."}
		var pop []pubsub.Connection
		for i := range 120 {
			c := conn(fmt.Sprintf("r%03d", i), geeks[rng.IntN(len(geeks))])
			for range rng.IntN(4) {
				c.Topics = append(c.Topics, topics[rng.IntN(len(topics))])
			}
			c.Topics = sortedSet(c.Topics)
			switch rng.IntN(6) {
			case 0:
				c.ExpiresAt = Now.Add(-time.Duration(rng.IntN(3600)+1) * time.Second)
			case 1:
				c.ExpiresAt = Now
			case 2:
				c.ExpiresAt = time.Time{}
			}
			pop = append(pop, c)
		}
		put(t, s, pop...)
		queryNames := append(slices.Clone(geeks), "nobody")
		queryTopics := []string{"t0", "t1", "t2", "t3", "t4", "t9", "."}
		for q := range 300 {
			var users, tops []string
			for range rng.IntN(4) {
				users = append(users, queryNames[rng.IntN(len(queryNames))])
			}
			for range rng.IntN(4) {
				tops = append(tops, queryTopics[rng.IntN(len(queryTopics))])
			}
			var want []string
			for _, c := range pop {
				if !c.Expired(Now) && c.Matches(users, tops) {
					want = append(want, c.ID)
				}
			}
			got, err := s.FindTargets(t.Context(), users, tops, Now)
			if err != nil {
				t.Fatal(err)
			}
			if g := connIDs(got); !slices.Equal(g, want) && (len(g) != 0 || len(want) != 0) {
				t.Fatalf("query %d: FindTargets(%s, %s) = %s, want %s", q, quote(users), quote(tops), quote(g), quote(want))
			}
			checkTargetIDs(t, s, users, tops, want)
		}
	}},
}

// checkTargetIDs checks, for a store with the fast path the broker takes
// (store.TargetIDFinder), that FindTargetIDs finds exactly want, as
// FindTargets does.
func checkTargetIDs(t *testing.T, s store.Store, users, topics, want []string) {
	t.Helper()
	f, ok := s.(store.TargetIDFinder)
	if !ok {
		return
	}
	got, err := f.FindTargetIDs(t.Context(), users, topics, Now)
	if err != nil {
		t.Fatal(err)
	}
	got = slices.Sorted(slices.Values(got))
	if !slices.Equal(got, want) && (len(got) != 0 || len(want) != 0) {
		t.Fatalf("FindTargetIDs(%s, %s) = %s, want %s, as FindTargets", quote(users), quote(topics), quote(got), quote(want))
	}
}

// putMany records n connections, spread over geeks and topics, with every
// seventh one expired; it returns them.
func putMany(t *testing.T, s store.Store, n int) []pubsub.Connection {
	t.Helper()
	geeks := []string{"alice", "bob", "carol", "dave", "erin"}
	topics := []string{"updates", "news", "."}
	var out []pubsub.Connection
	for i := range n {
		c := conn(fmt.Sprintf("c%05d", i), geeks[i%len(geeks)], topics[i%len(topics)])
		if i%7 == 0 {
			c.ExpiresAt = Now.Add(-time.Minute)
		}
		out = append(out, c)
	}
	put(t, s, out...)
	return out
}

// list collects every page of ListConnections, failing on empty or
// duplicated pages.
func list(t *testing.T, s store.Store, f store.ConnectionFilter) ([]pubsub.Connection, int) {
	t.Helper()
	var all []pubsub.Connection
	pages := 0
	err := s.ListConnections(t.Context(), f, Now, func(page []pubsub.Connection) error {
		if len(page) == 0 {
			t.Error("ListConnections called fn with an empty page")
		}
		pages++
		all = append(all, page...)
		return nil
	})
	if err != nil {
		t.Fatalf("ListConnections(%+v): %v", f, err)
	}
	return all, pages
}

func wantListed(t *testing.T, got []pubsub.Connection, pop []pubsub.Connection, keep func(pubsub.Connection) bool) {
	t.Helper()
	var want []pubsub.Connection
	for _, c := range pop {
		if keep(c) {
			want = append(want, c)
		}
	}
	slices.SortFunc(want, func(a, b pubsub.Connection) int {
		if c := strings.Compare(a.Geek, b.Geek); c != 0 {
			return c
		}
		return strings.Compare(a.ID, b.ID)
	})
	if len(got) != len(want) {
		t.Fatalf("listed %d connections, want %d", len(got), len(want))
	}
	for i := range want {
		if got[i].ID != want[i].ID {
			t.Fatalf("connection %d is %s of %s, want %s of %s (ordered by geek then ID)", i, got[i].ID, got[i].Geek, want[i].ID, want[i].Geek)
		}
		checkConnection(t, got[i], want[i])
	}
}

var listTests = []storeTest{
	{"ListConnections pages through the live connections ordered by geek then ID", func(t *testing.T, s store.Store) {
		pop := putMany(t, s, 1300)
		got, pages := list(t, s, store.ConnectionFilter{})
		wantListed(t, got, pop, func(c pubsub.Connection) bool { return !c.Expired(Now) })
		if pages < 2 {
			t.Logf("all %d connections came in one page", len(got))
		}
		t.Run("a geek filter lists only that geek's", func(t *testing.T) {
			got, _ := list(t, s, store.ConnectionFilter{Geek: "bob"})
			wantListed(t, got, pop, func(c pubsub.Connection) bool { return !c.Expired(Now) && c.Geek == "bob" })
		})
		t.Run("a topic filter lists the subscribers of exactly that topic, not the wildcard ones", func(t *testing.T) {
			got, _ := list(t, s, store.ConnectionFilter{Topic: "news"})
			wantListed(t, got, pop, func(c pubsub.Connection) bool { return !c.Expired(Now) && slices.Contains(c.Topics, "news") })
		})
		t.Run("the wildcard topic as a filter lists the wildcard subscribers", func(t *testing.T) {
			got, _ := list(t, s, store.ConnectionFilter{Topic: "."})
			wantListed(t, got, pop, func(c pubsub.Connection) bool { return !c.Expired(Now) && slices.Contains(c.Topics, ".") })
		})
		t.Run("geek and topic filters combine", func(t *testing.T) {
			got, _ := list(t, s, store.ConnectionFilter{Geek: "carol", Topic: "updates"})
			wantListed(t, got, pop, func(c pubsub.Connection) bool {
				return !c.Expired(Now) && c.Geek == "carol" && slices.Contains(c.Topics, "updates")
			})
		})
		t.Run("IncludeExpired lists expired records too", func(t *testing.T) {
			got, _ := list(t, s, store.ConnectionFilter{Geek: "dave", IncludeExpired: true})
			wantListed(t, got, pop, func(c pubsub.Connection) bool { return c.Geek == "dave" })
		})
		t.Run("an unknown geek lists nothing and never calls fn", func(t *testing.T) {
			got, pages := list(t, s, store.ConnectionFilter{Geek: "nobody"})
			if len(got) != 0 || pages != 0 {
				t.Errorf("got %d connections in %d pages", len(got), pages)
			}
		})
	}},
	{"an error from fn stops ListConnections and is returned", func(t *testing.T, s store.Store) {
		putMany(t, s, 20)
		stop := errors.New("stop")
		calls := 0
		err := s.ListConnections(t.Context(), store.ConnectionFilter{}, Now, func([]pubsub.Connection) error {
			calls++
			return stop
		})
		if !errors.Is(err, stop) || calls != 1 {
			t.Errorf("ListConnections = %v after %d calls, want the error after 1", err, calls)
		}
	}},
}

var scanTests = []storeTest{
	{"ScanConnections visits every record exactly once across segments, expired ones included", func(t *testing.T, s store.Store) {
		pop := putMany(t, s, 1300)
		byID := make(map[string]pubsub.Connection, len(pop))
		for _, c := range pop {
			byID[c.ID] = c
		}
		for _, segments := range []int{1, 3, 8} {
			t.Run(fmt.Sprintf("in %d segments", segments), func(t *testing.T) {
				var mu sync.Mutex
				seen := make(map[string]int)
				err := s.ScanConnections(t.Context(), segments, func(page []pubsub.Connection) error {
					mu.Lock()
					defer mu.Unlock()
					for _, c := range page {
						seen[c.ID]++
						if want, ok := byID[c.ID]; ok && seen[c.ID] == 1 {
							checkConnection(t, c, want)
						}
					}
					return nil
				})
				if err != nil {
					t.Fatal(err)
				}
				for id, n := range seen {
					if n != 1 {
						t.Errorf("%s visited %d times", id, n)
					}
					if _, ok := byID[id]; !ok {
						t.Errorf("%s was never put", id)
					}
				}
				if len(seen) != len(pop) {
					t.Errorf("visited %d records, want %d", len(seen), len(pop))
				}
			})
		}
	}},
	{"ScanConnections with zero segments still visits everything", func(t *testing.T, s store.Store) {
		pop := putMany(t, s, 30)
		var mu sync.Mutex
		n := 0
		err := s.ScanConnections(t.Context(), 0, func(page []pubsub.Connection) error {
			mu.Lock()
			defer mu.Unlock()
			n += len(page)
			return nil
		})
		if err != nil || n != len(pop) {
			t.Errorf("ScanConnections visited %d, %v; want %d", n, err, len(pop))
		}
	}},
	{"ScanConnections of an empty store never calls fn", func(t *testing.T, s store.Store) {
		err := s.ScanConnections(t.Context(), 4, func([]pubsub.Connection) error {
			t.Error("fn called")
			return nil
		})
		if err != nil {
			t.Error(err)
		}
	}},
	{"an error from fn stops ScanConnections and is returned", func(t *testing.T, s store.Store) {
		putMany(t, s, 50)
		stop := errors.New("stop")
		err := s.ScanConnections(t.Context(), 4, func([]pubsub.Connection) error { return stop })
		if !errors.Is(err, stop) {
			t.Errorf("ScanConnections = %v, want the error", err)
		}
	}},
	{"a cancelled context stops ScanConnections", func(t *testing.T, s store.Store) {
		putMany(t, s, 50)
		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		if err := s.ScanConnections(ctx, 2, func([]pubsub.Connection) error { return nil }); err == nil {
			t.Error("ScanConnections = nil, want an error")
		}
	}},
}

var reportTests = []storeTest{
	{"a report put is returned by GetReport", func(t *testing.T, s store.Store) {
		want := store.Report{MessageID: "m-1", Targets: 3, Delivered: 1, Gone: 1, Failed: 1, Pending: 1, DeadLettered: true,
			Errors: []string{"c3: throttled"}, At: Now}.HandOn([][]string{{"c3"}})
		if err := s.PutReport(t.Context(), want); err != nil {
			t.Fatal(err)
		}
		got, err := s.GetReport(t.Context(), "m-1")
		if err != nil {
			t.Fatal(err)
		}
		sameFollowUps := maps.EqualFunc(got.FollowUps, want.FollowUps, func(a, b store.Counts) bool {
			return a.Connections == b.Connections && a.Failed == b.Failed && a.Pending == b.Pending && slices.Equal(a.Next, b.Next)
		})
		if got.MessageID != want.MessageID || got.Targets != 3 || got.Delivered != 1 || got.Gone != 1 || got.Failed != 1 ||
			got.Pending != 1 || !got.DeadLettered || !sameFollowUps || !slices.Equal(got.Errors, want.Errors) || !got.At.Equal(want.At) {
			t.Errorf("GetReport = %+v, want %+v", got, want)
		}
	}},
	{"GetReport before the report exists is ErrNotFound", func(t *testing.T, s store.Store) {
		if _, err := s.GetReport(t.Context(), "m-1"); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("GetReport = %v, want ErrNotFound", err)
		}
	}},
	{"a report older than a day is ErrNotFound, a younger one is returned", func(t *testing.T, s store.Store) {
		now := time.Now()
		if err := s.PutReport(t.Context(), store.Report{MessageID: "m-old", Targets: 1, At: now.Add(-25 * time.Hour)}); err != nil {
			t.Fatal(err)
		}
		if err := s.PutReport(t.Context(), store.Report{MessageID: "m-young", Targets: 1, At: now.Add(-23 * time.Hour)}); err != nil {
			t.Fatal(err)
		}
		if r, err := s.GetReport(t.Context(), "m-old"); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("GetReport of a report made 25 h ago = %+v, %v; want ErrNotFound", r, err)
		}
		if _, err := s.GetReport(t.Context(), "m-young"); err != nil {
			t.Errorf("GetReport of a report made 23 h ago = %v; want it", err)
		}
	}},
	{"putting a report again replaces it", func(t *testing.T, s store.Store) {
		for _, d := range []int{0, 2} {
			if err := s.PutReport(t.Context(), store.Report{MessageID: "m-1", Targets: 2, Delivered: d, At: Now}); err != nil {
				t.Fatal(err)
			}
		}
		got, err := s.GetReport(t.Context(), "m-1")
		if err != nil || got.Delivered != 2 {
			t.Errorf("GetReport = %+v, %v; want the second report", got, err)
		}
	}},
	{"a report replaced from a read another writer has overtaken is ErrConflict and changes nothing", func(t *testing.T, s store.Store) {
		ctx := t.Context()
		if err := s.PutReport(ctx, store.Report{MessageID: "m-1", Targets: 2, Pending: 2, At: Now}); err != nil {
			t.Fatal(err)
		}
		first, err := s.GetReport(ctx, "m-1")
		if err != nil {
			t.Fatal(err)
		}
		second := first
		first.Delivered, first.Pending = 1, 1
		if err := s.ReplaceReport(ctx, first); err != nil {
			t.Fatalf("ReplaceReport at the version read = %v", err)
		}
		second.Delivered, second.Pending = 1, 1
		if err := s.ReplaceReport(ctx, second); !errors.Is(err, store.ErrConflict) {
			t.Fatalf("ReplaceReport from the same read after another write = %v; want ErrConflict", err)
		}
		again, err := s.GetReport(ctx, "m-1")
		if err != nil || again.Delivered != 1 || again.Version == first.Version {
			t.Fatalf("GetReport = %+v, %v; want the first replacement, at a new version", again, err)
		}
		again.Delivered, again.Pending = 2, 0
		if err := s.ReplaceReport(ctx, again); err != nil {
			t.Fatalf("ReplaceReport after reading again = %v", err)
		}
		if got, err := s.GetReport(ctx, "m-1"); err != nil || got.Delivered != 2 || got.Pending != 0 {
			t.Errorf("GetReport = %+v, %v; want both deliveries", got, err)
		}
	}},
	{"ReplaceReport from a read that found no report creates it once", func(t *testing.T, s store.Store) {
		ctx := t.Context()
		if err := s.ReplaceReport(ctx, store.Report{MessageID: "m-1", Targets: 1, Delivered: 1, At: Now}); err != nil {
			t.Fatalf("ReplaceReport of no report = %v", err)
		}
		if err := s.ReplaceReport(ctx, store.Report{MessageID: "m-1", Targets: 1, Failed: 1, At: Now}); !errors.Is(err, store.ErrConflict) {
			t.Fatalf("a second ReplaceReport from a read that found none = %v; want ErrConflict", err)
		}
		if got, err := s.GetReport(ctx, "m-1"); err != nil || got.Delivered != 1 || got.Failed != 0 {
			t.Errorf("GetReport = %+v, %v; want the first", got, err)
		}
	}},
	{"ReplaceReport from a read that found the report expired replaces it", func(t *testing.T, s store.Store) {
		ctx := t.Context()
		now := time.Now()
		if err := s.PutReport(ctx, store.Report{MessageID: "m-1", Targets: 5, At: now.Add(-25 * time.Hour)}); err != nil {
			t.Fatal(err)
		}
		if err := s.ReplaceReport(ctx, store.Report{MessageID: "m-1", Targets: 1, At: now}); err != nil {
			t.Fatalf("ReplaceReport over an expired report = %v", err)
		}
		if got, err := s.GetReport(ctx, "m-1"); err != nil || got.Targets != 1 {
			t.Errorf("GetReport = %+v, %v; want the new report", got, err)
		}
	}},
	{"PutReport overtakes a read: a ReplaceReport from before it is ErrConflict", func(t *testing.T, s store.Store) {
		ctx := t.Context()
		if err := s.PutReport(ctx, store.Report{MessageID: "m-1", Targets: 2, At: Now}); err != nil {
			t.Fatal(err)
		}
		read, err := s.GetReport(ctx, "m-1")
		if err != nil {
			t.Fatal(err)
		}
		if err := s.PutReport(ctx, store.Report{MessageID: "m-1", Targets: 3, At: Now}); err != nil {
			t.Fatal(err)
		}
		read.Delivered = 2
		if err := s.ReplaceReport(ctx, read); !errors.Is(err, store.ErrConflict) {
			t.Errorf("ReplaceReport from a read before a PutReport = %v; want ErrConflict", err)
		}
	}},
}

// UnversionedReport is the JSON of the report m-1 as a socks before
// report versions wrote it: for a test to put in a store's own table.
const UnversionedReport = `{"id":"m-1","targets":2,"delivered":1,"failed":1,"pending":1,"at":"2040-01-01T00:00:00Z"}`

// CheckUnversionedReport checks, on s holding UnversionedReport as the
// report of m-1, that it reads at version 0 and is replaced once from that
// read: a second replace from the same read is store.ErrConflict.
func CheckUnversionedReport(t *testing.T, s store.Store) {
	t.Helper()
	ctx := t.Context()
	r, err := s.GetReport(ctx, "m-1")
	if err != nil || r.Targets != 2 || r.Delivered != 1 || r.Pending != 1 || r.Version != 0 {
		t.Fatalf("GetReport of a report older code wrote = %+v, %v; want it, at version 0", r, err)
	}
	stale := r
	r.Delivered, r.Failed, r.Pending = 2, 0, 0
	if err := s.ReplaceReport(ctx, r); err != nil {
		t.Fatalf("ReplaceReport of an unversioned report = %v", err)
	}
	if err := s.ReplaceReport(ctx, stale); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("a second ReplaceReport from the same read = %v; want ErrConflict", err)
	}
	if got, err := s.GetReport(ctx, "m-1"); err != nil || got.Delivered != 2 || got.Pending != 0 || got.Version != 1 {
		t.Errorf("GetReport = %+v, %v; want the replacement at version 1", got, err)
	}
}
