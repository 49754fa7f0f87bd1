package local

import (
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

// TestRedrivesAndPurgesAtOnceFromTwoProcesses: two commands with the
// state file open (two DBs, as two processes) redriving all the dead
// letters, and redriving and purging the same ones, at once: each dead
// letter is taken by one of them (redriven once or purged, never both),
// the counts add up, and neither fails with "database is locked".
func TestRedrivesAndPurgesAtOnceFromTwoProcesses(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state", "socks.db")
	a, b := openPath(t, path, Options{}), openPath(t, path, Options{})
	const n = 200
	var ids []string
	for i := range n {
		ids = append(ids, deadLetterAt(t, a, fmt.Sprintf(`{"n":%d}`, i)))
	}
	var wg sync.WaitGroup
	var na, nb int
	var ea, eb error
	wg.Go(func() { na, ea = a.Queue().Redrive(t.Context(), nil) })
	wg.Go(func() { nb, eb = b.Queue().Redrive(t.Context(), nil) })
	wg.Wait()
	if ea != nil || eb != nil || na+nb != n {
		t.Fatalf("redrives at once moved %d (%v) and %d (%v); want %d in all", na, ea, nb, eb, n)
	}
	st, err := a.Queue().Stats(t.Context())
	if err != nil || st.Visible != n || st.Dead != 0 {
		t.Fatalf("after the redrives: %+v, %v; want %d visible, none dead", st, err, n)
	}

	// Dead-letter them again, then redrive and purge the same IDs at once.
	ids = ids[:0]
	for range n {
		msgs, err := a.Queue().Receive(t.Context(), 1, time.Minute, 0)
		if err != nil || len(msgs) != 1 {
			t.Fatalf("Receive = %v, %v", msgs, err)
		}
		if err := a.Queue().DeadLetter(t.Context(), msgs[0], "again"); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, msgs[0].ID)
	}
	wg.Go(func() { na, ea = a.Queue().Redrive(t.Context(), ids) })
	wg.Go(func() { nb, eb = b.Queue().PurgeDeadLetters(t.Context(), ids) })
	wg.Wait()
	if ea != nil || eb != nil || na+nb != n {
		t.Fatalf("redrove %d (%v) and purged %d (%v) at once; want %d in all", na, ea, nb, eb, n)
	}
	st, err = a.Queue().Stats(t.Context())
	if err != nil || st.Visible != na || st.Dead != 0 {
		t.Errorf("after: %+v, %v; want the %d redriven visible, none dead", st, err, na)
	}
}
