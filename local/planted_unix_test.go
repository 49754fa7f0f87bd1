//go:build unix

package local

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestAFIFOPlantedAtTheJournalWhileOpenHoldsNoNewConnection: Open refuses
// what is planted beside the state file (checkPlanted), but a process
// keeps running: a FIFO planted at the rollback journal while it has the
// file open held the next SQLite connection it opened (its pool makes
// one when an idle one has been closed) for ever, as SQLite waited for
// a writer to open the FIFO while it looked for a hot journal. Each new
// connection is refused instead, naming the file.
func TestAFIFOPlantedAtTheJournalWhileOpenHoldsNoNewConnection(t *testing.T) {
	path := filepath.Join(t.TempDir(), "socks.db")
	db, err := Open(context.Background(), path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	db.sql.SetMaxIdleConns(0) // each statement opens a new connection
	journal := path + "-journal"
	if err := syscall.Mkfifo(journal, 0o666); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		_, err := db.Queue().Send(context.Background(), []byte(`{"n":1}`))
		done <- err
	}()
	select {
	case err = <-done:
	case <-time.After(10 * time.Second):
		// Let the stuck open go, so the test ends.
		if f, err := os.OpenFile(journal, os.O_RDWR|syscall.O_NONBLOCK, 0); err == nil {
			_ = f.Close()
		}
		t.Fatal("a new connection still waits on the FIFO planted at the journal")
	}
	if err == nil || !strings.Contains(err.Error(), journal+" is a FIFO") || !strings.Contains(err.Error(), "remove it") {
		t.Fatalf("Send = %v; want an error naming the FIFO at %s", err, journal)
	}
	if err := os.Remove(journal); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Queue().Send(context.Background(), []byte(`{"n":2}`)); err != nil {
		t.Fatalf("Send once the FIFO is gone: %v", err)
	}
}
