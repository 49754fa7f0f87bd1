package local

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/socks-dev/socks/store"
)

// chatterAt is a chatter ID of geek issued at issued and expiring at
// expires.
func chatterAt(geek, hash string, issued, expires time.Time) store.ChatterID {
	return store.ChatterID{Geek: geek, Hash: hash, IssuedAt: issued, ExpiresAt: expires}
}

func putChatter(t *testing.T, s *Store, ids ...store.ChatterID) {
	t.Helper()
	for _, c := range ids {
		if err := s.PutChatterID(t.Context(), c); err != nil {
			t.Fatal(err)
		}
	}
}

// TestCountLiveChatterIDsCountsAsExpiredDoes checks the count in SQL
// against ChatterID.Expired, at the edges: an ID expiring at now is
// expired, one expiring a millisecond later is live.
func TestCountLiveChatterIDsCountsAsExpiredDoes(t *testing.T) {
	s := openTest(t, Options{}).Store()
	now := time.UnixMilli(1_800_000_000_123).UTC()
	putChatter(t, s,
		chatterAt("alice", "a1", now.Add(-2*time.Hour), now.Add(-time.Hour)),
		chatterAt("alice", "a2", now.Add(-time.Hour), now),
		chatterAt("alice", "a3", now.Add(-time.Hour), now.Add(time.Millisecond)),
		chatterAt("alice", "a4", now, now.Add(time.Hour)),
		chatterAt("bob", "b1", now, now.Add(time.Hour)),
	)
	for _, at := range []time.Time{now.Add(-90 * time.Minute), now.Add(-time.Millisecond), now, now.Add(time.Microsecond), now.Add(time.Millisecond), now.Add(2 * time.Hour)} {
		for _, geek := range []string{"alice", "bob", "carol"} {
			ids, err := s.ListChatterIDs(t.Context(), geek)
			if err != nil {
				t.Fatal(err)
			}
			want := 0
			for _, c := range ids {
				if !c.Expired(at) {
					want++
				}
			}
			got, err := s.CountLiveChatterIDs(t.Context(), geek, at)
			if err != nil || got != want {
				t.Errorf("CountLiveChatterIDs(%s, %s) = %d, %v; want %d", geek, at.Sub(now), got, err, want)
			}
		}
	}
}

// noListing is a Store whose ListChatterIDs fails: an issue that reads
// the geek's IDs to count them fails with it.
type noListing struct{ *Store }

func (noListing) ListChatterIDs(context.Context, string) ([]store.ChatterID, error) {
	return nil, errors.New("ListChatterIDs called")
}

// TestIssuingCountsInSQL checks that an issue on this store counts the
// geek's live IDs in SQL rather than reading them all, with the bound
// kept: expired IDs take no place, live ones do.
func TestIssuingCountsInSQL(t *testing.T) {
	s := noListing{openTest(t, Options{}).Store()}
	now := time.UnixMilli(1_800_000_000_000).UTC()
	putChatter(t, s.Store, chatterAt("alice", "old", now.Add(-2*time.Hour), now.Add(-time.Hour)))
	for i := range 2 {
		if _, _, err := store.IssueChatterIDWithin(t.Context(), s, "alice", time.Hour, now, 2); err != nil {
			t.Fatalf("issue %d: %v", i, err)
		}
	}
	_, _, err := store.IssueChatterIDWithin(t.Context(), s, "alice", time.Hour, now, 2)
	if !errors.Is(err, store.ErrLimit) || !strings.Contains(err.Error(), "already holds 2 live chatter IDs") {
		t.Errorf("a third issue: %v; want ErrLimit saying 2 are live", err)
	}
	if _, _, err := store.IssueChatterIDWithin(t.Context(), s, "bob", time.Hour, now, 2); err != nil {
		t.Errorf("another geek's issue: %v", err)
	}
}

// TestCountLiveChatterIDsReadsOnlyTheLiveOnes checks the plan of the
// count: a range of the (geek, expires_at) index, so that a pile of
// expired IDs costs it nothing.
func TestCountLiveChatterIDsReadsOnlyTheLiveOnes(t *testing.T) {
	db := openTest(t, Options{})
	p := queryPlan(t, db, countLiveChatterIDs, "alice", int64(0))
	if !strings.Contains(p, "COVERING INDEX chatter_ids_geek_expires (geek=? AND expires_at>?)") {
		t.Errorf("the count's plan is not a range of the (geek, expires_at) index:\n%s", p)
	}
}

// TestCountExpiredChatterIDsReadsOnlyTheExpiredOnes checks the plan of
// prune-stale's dry-run count: a range of the expires_at index, so that
// live IDs cost it nothing and no row is read.
func TestCountExpiredChatterIDsReadsOnlyTheExpiredOnes(t *testing.T) {
	db := openTest(t, Options{})
	p := queryPlan(t, db, countExpiredChatterIDs, int64(0))
	if !strings.Contains(p, "COVERING INDEX chatter_ids_expires (expires_at<?)") {
		t.Errorf("the count's plan is not a range of the expires_at index:\n%s", p)
	}
}

// TestExpiredChatterIDsAreDeletedInBoundedWrites: serve's sweep (at start
// and hourly) and prune-stale delete expired chatter IDs in write
// transactions of at most expiredBatch IDs each, so that a pile of them
// (300,000 took 7 s in one transaction, every connect and every other
// process's write waiting meanwhile, past their 10 s busy timeout on a
// slower disk) holds the file for one batch at a time; every expired ID
// goes, and no live one.
func TestExpiredChatterIDsAreDeletedInBoundedWrites(t *testing.T) {
	db := openTest(t, Options{})
	s := db.Store()
	now := time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)
	for i := range 35 {
		putChatter(t, s, chatterAt("alice", fmt.Sprintf("old-%02d", i), now.Add(-2*time.Hour), now.Add(-time.Hour)))
	}
	putChatter(t, s, chatterAt("alice", "live", now, now.Add(time.Hour)))
	db.expiredBatch = 10
	before := db.writes
	n, err := s.DeleteExpiredChatterIDs(t.Context(), now)
	if err != nil || n != 35 {
		t.Fatalf("DeleteExpiredChatterIDs = %d, %v; want 35", n, err)
	}
	if writes := db.writes - before; writes != 4 {
		t.Errorf("35 expired IDs were deleted in %d write transactions; want 4 of at most 10", writes)
	}
	left, err := s.ListChatterIDs(t.Context(), "")
	if err != nil || len(left) != 1 || left[0].Hash != "live" {
		t.Errorf("left %v, %v; want the live ID alone", left, err)
	}
}
