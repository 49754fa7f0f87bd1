package local

import (
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

// Writes queued at the same time share a transaction, but each keeps its
// own outcome: a failing one leaves nothing behind and the others commit.
func TestGroupedWritesFailAlone(t *testing.T) {
	db := openTest(t, Options{})
	const n = 60
	errBoom := errors.New("boom")
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = db.writeGrouped(t.Context(), func(tx *wtx) error {
				if _, err := tx.ExecContext(tx.ctx, `INSERT INTO meta(key, value) VALUES (?, 'x')`, fmt.Sprintf("k%02d", i)); err != nil {
					return err
				}
				if i%5 == 0 {
					return errBoom // after writing: its row must be rolled back
				}
				return nil
			})
		}()
	}
	wg.Wait()
	for i := range n {
		_, ok, err := db.GetMeta(t.Context(), fmt.Sprintf("k%02d", i))
		if err != nil {
			t.Fatal(err)
		}
		switch {
		case i%5 == 0 && (!errors.Is(errs[i], errBoom) || ok):
			t.Errorf("write %d: err %v, row kept %v; want boom and no row", i, errs[i], ok)
		case i%5 != 0 && (errs[i] != nil || !ok):
			t.Errorf("write %d: err %v, row kept %v; want it committed", i, errs[i], ok)
		}
	}
}

// Writes racing Close each either commit or fail, none waits forever, and
// a write after Close fails.
func TestGroupedWritesAroundClose(t *testing.T) {
	db, err := Open(t.Context(), filepath.Join(t.TempDir(), "socks.db"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	const n = 40
	errs := make(chan error, n)
	for i := range n {
		go func() {
			errs <- db.writeGrouped(t.Context(), func(tx *wtx) error {
				_, err := tx.ExecContext(tx.ctx, `INSERT INTO meta(key, value) VALUES (?, 'x')`, fmt.Sprintf("k%02d", i))
				return err
			})
		}()
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	for range n {
		select {
		case <-errs:
		case <-time.After(time.Minute):
			t.Fatal("a write queued around Close never returned")
		}
	}
	err = db.writeGrouped(t.Context(), func(*wtx) error { return nil })
	if !errors.Is(err, errClosed) {
		t.Errorf("a write after Close returned %v; want %v", err, errClosed)
	}
}
