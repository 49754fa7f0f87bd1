package ops_test

import (
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/socks-dev/socks/local"
	"github.com/socks-dev/socks/ops"
	"github.com/socks-dev/socks/ops/opstest"
	"github.com/socks-dev/socks/store"
)

// TestTwoPrunesAtOnceOnTheLocalStore: two prune-stale runs at once on one
// state file (two DBs, as two processes), with connections being admitted
// meanwhile: between them they delete each dead record once (each counts
// only what it deleted; the rest is vanished), fail with no "database is
// locked", and delete no live or young record.
func TestTwoPrunesAtOnceOnTheLocalStore(t *testing.T) {
	path := filepath.Join(t.TempDir(), "socks.db")
	var dbs []*local.DB
	for range 3 {
		db, err := local.Open(ctxT(t), path, local.Options{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
		dbs = append(dbs, db)
	}
	const dead, young = 400, 50
	for i := range dead {
		put(t, dbs[0].Store(), conn(fmt.Sprintf("old-%04d", i), 3*time.Hour, -time.Hour))
	}
	var live []string
	for i := range young {
		id := fmt.Sprintf("young-%04d", i)
		live = append(live, id)
		put(t, dbs[0].Store(), conn(id, time.Minute, time.Hour))
	}
	fake := opstest.NewFakePusher()
	fake.SetLive(store.ConnectionInfo{}, live...)

	var wg sync.WaitGroup
	res := make([]ops.PruneResult, 2)
	errs := make([]error, 2)
	for i := range 2 {
		wg.Go(func() {
			res[i], errs[i] = ops.Prune(ctxT(t), dbs[i].Store(), fake, ops.PruneOptions{Now: now, Segments: 4})
		})
	}
	// serve admitting connections meanwhile: new records, connected now.
	var admitted []string
	wg.Go(func() {
		for i := range 100 {
			id := fmt.Sprintf("new-%04d", i)
			if err := dbs[2].Store().PutConnection(ctxT(t), conn(id, 0, 2*time.Hour)); err != nil {
				t.Error(err)
				return
			}
			admitted = append(admitted, id)
		}
	})
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("prune %d: %v", i, err)
		}
	}
	deleted := res[0].Deleted.Total() + res[1].Deleted.Total()
	if deleted != dead {
		t.Errorf("the prunes deleted %d and %d; want %d in all", res[0].Deleted.Total(), res[1].Deleted.Total(), dead)
	}
	for i, r := range res {
		if r.Checked != r.Deleted.Total()+r.Vanished+r.Kept+r.Unchecked+r.Errors {
			t.Errorf("prune %d does not add up: %+v", i, r)
		}
	}
	left := ids(t, dbs[0].Store())
	if want := young + len(admitted); len(left) != want {
		t.Errorf("%d records left; want the %d young and admitted ones", len(left), want)
	}
	for _, id := range left {
		if id[:3] == "old" {
			t.Errorf("%s left", id)
		}
	}
}
