package local

import (
	"os"
	"path/filepath"

	"github.com/fsnotify/fsnotify"

	"github.com/socks-dev/socks/internal/planted"
)

// watchWakeFile calls fn whenever the wake file of the state file at path
// is written, until stop is called. It watches the wake file itself with
// fsnotify (kqueue on macOS and the BSDs, ReadDirectoryChangesW on
// Windows), creating it first when it is missing. It serves where Linux's
// inotify close-write on the directory (watch_linux.go) is not available:
// a watch of the directory there would see every write of the database
// files too.
//
// A write is one or two events (the truncate, then the byte), so fn may
// run twice for one wake; waking twice is harmless. If the wake file is
// deleted while watched, wakes are no longer seen and long polls find
// messages at their next poll, as without a watch.
func watchWakeFile(path string, fn func()) (stop func(), err error) {
	wake := wakePath(path)
	f, err := planted.OpenFile(wake, os.O_WRONLY|os.O_CREATE, 0o600)
	if err != nil {
		return nil, err
	}
	_ = f.Close()
	w, err := fsnotify.NewWatcher()
	if err != nil {
		return nil, err
	}
	if err := w.Add(wake); err != nil {
		_ = w.Close()
		return nil, err
	}
	want := filepath.Clean(wake)
	go func() {
		for {
			select {
			case ev, ok := <-w.Events:
				if !ok {
					return
				}
				if filepath.Clean(ev.Name) == want && (ev.Has(fsnotify.Write) || ev.Has(fsnotify.Create)) {
					fn()
				}
			case _, ok := <-w.Errors:
				// An overflow or a read error: the next poll finds what a
				// lost event would have woken.
				if !ok {
					return
				}
			}
		}
	}()
	return func() { _ = w.Close() }, nil
}
