//go:build unix

package backend

import (
	"context"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/socks-dev/socks/config"
)

// TestAFIFOPlantedInAGroupWritableStateDirHoldsNoPublish: as a link
// (TestALinkPlantedInAGroupWritableStateDirIsNotFollowed), another member
// of the state dir's group may plant a FIFO at the wake file. Opening it
// to write waited for a reader that never came: every publish (and, off
// Linux, every broker's watch) hung for ever once its message was queued.
// The open fails at once instead; the message is queued all the same (a
// missed wake-up costs a poll).
func TestAFIFOPlantedInAGroupWritableStateDirHoldsNoPublish(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "group")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, 0o770); err != nil {
		t.Fatal(err)
	}
	fifo := filepath.Join(dir, config.StateFile+"-wake")
	if err := syscall.Mkfifo(fifo, 0o666); err != nil {
		t.Fatal(err)
	}
	b, err := Open(context.Background(), config.Config{Backend: config.BackendLocal, StateDir: dir}, Options{})
	if err != nil {
		t.Fatalf("Open on a state dir its group may write: %v", err)
	}
	defer b.DB.Close()
	sent := make(chan error, 1)
	go func() {
		_, err := b.Queue.Send(context.Background(), []byte(`{"n":1}`))
		sent <- err
	}()
	select {
	case err := <-sent:
		if err != nil {
			t.Fatalf("Send: %v", err)
		}
	case <-time.After(10 * time.Second):
		// Let the stuck open go, so the test ends.
		if r, err := os.OpenFile(fifo, os.O_RDONLY|syscall.O_NONBLOCK, 0); err == nil {
			defer r.Close()
			<-sent
		}
		t.Fatal("Send still waits for a reader of the FIFO planted at the wake file")
	}
	if msgs, err := b.Queue.Receive(context.Background(), 10, time.Minute, 0); err != nil || len(msgs) != 1 {
		t.Errorf("received %d messages, %v; want the one sent", len(msgs), err)
	}
}
