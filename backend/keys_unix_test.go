//go:build unix

package backend

import (
	"context"
	"os"
	"path/filepath"
	"strings"
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

// TestWhatIsPlantedInAGroupWritableStateDirIsRefusedByName: beside the
// wake file (TestALinkPlantedInAGroupWritableStateDirIsNotFollowed),
// every file socks opens or makes in the state dir is a place where
// another member of a group that may write the dir can plant a link or a
// FIFO, before the first `socks serve` or while nothing runs: a link at
// the state file had SQLite write its pages into (or create) the file it
// points at, a link at a lock file created its target, a FIFO at the
// rollback journal or the key file held every command for ever, and
// links at the -wal and -shm files were reported as a state dir that is
// not writable. Each is refused, nothing is written through it, nothing
// waits on it, and the error names the file and says to remove it.
func TestWhatIsPlantedInAGroupWritableStateDirIsRefusedByName(t *testing.T) {
	names := []string{
		config.StateFile, config.StateFile + "-wal", config.StateFile + "-shm", config.StateFile + "-journal",
		GatewayLockFile, BrokerLockFile, BrokerProbeFile, config.ManagementKeysFile,
	}
	for _, name := range names {
		for _, kind := range []string{"link to a file", "link to nothing", "FIFO"} {
			for _, before := range []string{"before the first run", "after a run"} {
				t.Run(name+"/"+kind+"/"+before, func(t *testing.T) {
					plantedRefused(t, name, kind, before == "after a run")
				})
			}
		}
	}
}

func plantedRefused(t *testing.T, name, kind string, ranBefore bool) {
	dir := filepath.Join(t.TempDir(), "state")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, 0o770); err != nil {
		t.Fatal(err)
	}
	cfg := config.Config{Backend: config.BackendLocal, StateDir: dir}
	if ranBefore {
		b, err := Open(context.Background(), cfg, Options{})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := b.Queue.Send(context.Background(), []byte(`{"n":0}`)); err != nil {
			t.Fatal(err)
		}
		release, _, err := b.HoldGateway()
		if err != nil {
			t.Fatal(err)
		}
		release()
		if _, err := EnsureManagementKeys(cfg.ManagementKeysPath()); err != nil {
			t.Fatal(err)
		}
		if err := b.Broker(); err != ErrNoBroker {
			t.Fatal(err)
		}
		if err := b.Close(); err != nil {
			t.Fatal(err)
		}
	}
	at := filepath.Join(dir, name)
	if err := os.Remove(at); err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	victimDir := t.TempDir()
	victim := filepath.Join(victimDir, "precious")
	switch kind {
	case "link to a file":
		if err := os.WriteFile(victim, []byte("precious"), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink(victim, at); err != nil {
			t.Fatal(err)
		}
	case "link to nothing":
		if err := os.Symlink(victim, at); err != nil {
			t.Fatal(err)
		}
	case "FIFO":
		if err := syscall.Mkfifo(at, 0o666); err != nil {
			t.Fatal(err)
		}
	}

	// What `socks serve` with signatures, then `socks publish`, open.
	done := make(chan error, 1)
	go func() {
		done <- func() error {
			b, err := Open(context.Background(), cfg, Options{})
			if err != nil {
				return err
			}
			defer b.Close()
			release, _, err := b.HoldGateway()
			if err != nil {
				return err
			}
			defer release()
			stop, err := b.HoldBroker()
			if err != nil {
				return err
			}
			defer stop()
			if _, err := EnsureManagementKeys(cfg.ManagementKeysPath()); err != nil {
				return err
			}
			if _, err := b.LocalPusher("http://127.0.0.1:1", 1); err != nil {
				return err
			}
			if err := b.Broker(); err != nil {
				return err
			}
			_, err = b.Queue.Send(context.Background(), []byte(`{"n":1}`))
			return err
		}()
	}()
	var err error
	select {
	case err = <-done:
	case <-time.After(10 * time.Second):
		// Let the stuck open go, so the test ends.
		if f, err := os.OpenFile(at, os.O_RDWR|syscall.O_NONBLOCK, 0); err == nil {
			_ = f.Close()
		}
		t.Fatalf("still waiting on the FIFO planted at %s", at)
	}
	switch got, rerr := os.ReadFile(victim); {
	case kind == "link to a file" && string(got) != "precious":
		t.Errorf("the file the link planted at %s points at now holds %d bytes: %.40q", name, len(got), got)
	case kind == "link to nothing" && rerr == nil:
		t.Errorf("the link planted at %s made the file it points at (%d bytes)", name, len(got))
	}
	if err == nil {
		t.Fatalf("what was planted at %s went unnoticed", at)
	}
	wants := []string{at + " ", "remove it", "may be written by its group (mode 0770)"}
	if name == config.ManagementKeysFile && kind == "link to a file" {
		// A key file is read through a link (a --keys-file may be one),
		// but only the user's own, private (checkPrivate), and the
		// file here is no key file.
		wants = wants[:2]
	}
	for _, want := range wants {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("the error does not say %q:\n%v", want, err)
		}
	}
}
