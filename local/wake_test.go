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

// watchWakeFile is the watch on the platforms without inotify (macOS,
// Windows, the BSDs); it runs here too, on fsnotify's inotify backend. A
// wake written through another handle calls fn.
func TestWatchingTheWakeFileSeesAnotherHandlesWake(t *testing.T) {
	path := filepath.Join(t.TempDir(), "socks.db")
	publisher := openPath(t, path, Options{})
	woken := make(chan struct{}, 16)
	stop, err := watchWakeFile(path, func() {
		select {
		case woken <- struct{}{}:
		default:
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	publisher.signalOthers()
	select {
	case <-woken:
	case <-time.After(store.MaxWait):
		t.Fatal("a wake written through another handle was not seen")
	}
}
