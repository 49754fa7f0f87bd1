package local

import (
	"errors"
	"fmt"
	"sync"
	"testing"
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
