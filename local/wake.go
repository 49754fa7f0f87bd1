package local

import (
	"os"
	"sync"

	"github.com/socks-dev/socks/internal/planted"
)

// Waking other processes. A process that makes a queue message visible
// writes one byte to the wake file beside the state file (STATE-wake); a
// process whose broker waits in a long poll watches for that write (on
// Linux with inotify's close-write on the state dir, watch_linux.go;
// elsewhere with fsnotify on the wake file, watch_file.go) and ends its
// pause at once, so a message published by a separate `socks publish` is
// received without waiting for the next poll. Where no watch can be set
// up, the poll still finds it.

// wakePath is the wake file of the state file at path.
func wakePath(path string) string { return path + "-wake" }

// signalOthers tells other processes watching the state file that a
// message became visible. Failing to is harmless: they poll anyway (a
// link or a FIFO planted in place of the wake file fails the open: see
// package planted). The byte is written over the one there, without truncating the file first:
// a truncate and a write freed and allocated its block at every publish,
// and the write alone wakes the watchers as well.
func (db *DB) signalOthers() {
	f, err := planted.OpenFile(wakePath(db.path), os.O_WRONLY|os.O_CREATE, 0o600)
	if err != nil {
		return
	}
	_, _ = f.Write([]byte{'\n'})
	_ = f.Close()
}

// watcher is the state of this process's watch of the wake file.
type watcher struct {
	once sync.Once
	mu   sync.Mutex
	stop func()
}

// startWatch starts watching for other processes' wake-ups once; Close
// stops it.
func (db *DB) startWatch() {
	db.watch.once.Do(func() {
		stop, err := watchWake(db.path, db.notifyLocal)
		if err != nil {
			return // polling still finds messages
		}
		db.watch.mu.Lock()
		db.watch.stop = stop
		db.watch.mu.Unlock()
	})
}

func (db *DB) stopWatch() {
	db.watch.mu.Lock()
	defer db.watch.mu.Unlock()
	if db.watch.stop != nil {
		db.watch.stop()
		db.watch.stop = nil
	}
}
