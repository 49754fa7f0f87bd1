//go:build linux

package local

import (
	"encoding/binary"
	"os"
	"path/filepath"
	"syscall"
)

// watchWake calls fn whenever a process closes the wake file of the state
// file at path after writing it, until stop is called. It watches the
// state dir with inotify (the wake file may not exist yet).
func watchWake(path string, fn func()) (stop func(), err error) {
	fd, err := syscall.InotifyInit1(syscall.IN_CLOEXEC | syscall.IN_NONBLOCK)
	if err != nil {
		return nil, err
	}
	if _, err := syscall.InotifyAddWatch(fd, filepath.Dir(path), syscall.IN_CLOSE_WRITE); err != nil {
		_ = syscall.Close(fd)
		return nil, err
	}
	// Non-blocking, so the file is pollable and Close ends a pending Read.
	f := os.NewFile(uintptr(fd), "inotify")
	name := filepath.Base(wakePath(path))
	go func() {
		buf := make([]byte, 64*(syscall.SizeofInotifyEvent+syscall.NAME_MAX+1))
		for {
			n, err := f.Read(buf)
			if err != nil {
				return
			}
			if wakeIn(buf[:n], name) {
				fn()
			}
		}
	}()
	return func() { _ = f.Close() }, nil
}

// wakeIn reports whether the inotify events in buf name the wake file.
func wakeIn(buf []byte, name string) bool {
	for len(buf) >= syscall.SizeofInotifyEvent {
		n := int(binary.NativeEndian.Uint32(buf[12:16]))
		end := syscall.SizeofInotifyEvent + n
		if end > len(buf) {
			return false
		}
		got := buf[syscall.SizeofInotifyEvent:end]
		for len(got) > 0 && got[len(got)-1] == 0 {
			got = got[:len(got)-1]
		}
		if string(got) == name {
			return true
		}
		buf = buf[end:]
	}
	return false
}
