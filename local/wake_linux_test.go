//go:build linux

package local

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/socks-dev/socks/store"
)

// A message sent through another handle on the state file (as by a
// separate `socks publish` process) wakes the long polls of this one: only
// the watch of the wake file can close this handle's wake channel, as it
// sends nothing itself.
func TestASendFromAnotherProcessWakesALongPoll(t *testing.T) {
	path := filepath.Join(t.TempDir(), "socks.db")
	broker := openPath(t, path, Options{PollInterval: time.Hour})
	publisher := openPath(t, path, Options{})

	broker.startWatch()
	woken := broker.woken()
	if _, err := publisher.Queue().Send(t.Context(), []byte("hello")); err != nil {
		t.Fatal(err)
	}
	select {
	case <-woken:
	case <-time.After(store.MaxWait):
		t.Fatal("a send through another handle did not wake this one's long polls")
	}
	// The waiting long poll then finds it.
	msgs, err := broker.Queue().Receive(t.Context(), 1, time.Minute, 0)
	if err != nil || len(msgs) != 1 || string(msgs[0].Body) != "hello" {
		t.Fatalf("Receive = %v, %v", msgs, err)
	}
}

func TestWakeInFindsTheWakeFileAmongEvents(t *testing.T) {
	ev := func(name string, pad int) []byte {
		b := make([]byte, 16+len(name)+pad)
		n := uint32(len(name) + pad)
		b[12], b[13], b[14], b[15] = byte(n), byte(n>>8), byte(n>>16), byte(n>>24)
		copy(b[16:], name)
		return b
	}
	buf := append(ev("socks.db-wal", 4), ev("socks.db-wake", 3)...)
	if !wakeIn(buf, "socks.db-wake") {
		t.Error("the wake file's event was not found")
	}
	if wakeIn(ev("socks.db-wal", 4), "socks.db-wake") {
		t.Error("another file's event woke")
	}
	if wakeIn(buf[:20], "socks.db-wake") {
		t.Error("a truncated buffer woke")
	}
}
