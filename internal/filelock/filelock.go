// Package filelock takes advisory locks on files that the operating system
// releases when the process holding them ends, however it ends (exit,
// crash, kill -9): flock(2) on Unix, LockFileEx on Windows. A lock belongs
// to the open file, so two locks taken in one process conflict as they
// would across processes. Where there are no locks (a platform without
// them, a file system that refuses them) the error wraps
// errors.ErrUnsupported.
package filelock

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/socks-dev/socks/internal/planted"
)

// Lock is a lock held on a file until Unlock (or the process's end).
type Lock struct {
	f     *os.File
	named bool // SetOwner wrote in f: Unlock takes it out
}

// TryShared takes a shared lock on path, creating the file (mode 0600)
// when missing, without waiting: ok is false when someone holds an
// exclusive lock on it. Any number of shared locks are held at once. A
// symbolic link, a FIFO or anything but a regular file at path is not
// opened (followed, waited on): the error is a *planted.Error.
func TryShared(path string) (l *Lock, ok bool, err error) {
	f, err := planted.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, false, err
	}
	return take(f, false)
}

// TryExclusive takes an exclusive lock on path, creating the file when
// missing, without waiting: ok is false when someone else holds a lock on
// it.
func TryExclusive(path string) (l *Lock, ok bool, err error) {
	f, err := planted.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, false, err
	}
	return take(f, true)
}

// TryExclusiveDir takes an exclusive lock on the directory dir without
// waiting (ok false: someone else holds it), and leaves no file behind.
// Where directories cannot be locked (Windows) it returns an error
// wrapping errors.ErrUnsupported.
func TryExclusiveDir(dir string) (l *Lock, ok bool, err error) {
	if !dirLocks {
		return nil, false, errors.ErrUnsupported
	}
	f, err := os.Open(dir)
	if err != nil {
		return nil, false, err
	}
	return take(f, true)
}

// ErrTimeout says that Within gave up: someone held the lock all along.
var ErrTimeout = errors.New("someone else held the lock all along")

// Within calls try (TryShared, TryExclusive or TryExclusiveDir on one path) every
// 20 ms until it gets the lock or fails, for up to d: a process that holds
// a lock this long is taken to be stuck, and the caller says so instead of
// waiting for ever. It returns an error wrapping ErrTimeout then.
func Within(d time.Duration, try func() (*Lock, bool, error)) (*Lock, error) {
	deadline := time.Now().Add(d)
	for {
		l, ok, err := try()
		switch {
		case err != nil:
			return nil, err
		case ok:
			return l, nil
		case !time.Now().Before(deadline):
			return nil, fmt.Errorf("%w for %s", ErrTimeout, d)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Unlock releases the lock, taking out first the name SetOwner wrote:
// the process ends, and its pid may be another's later. (A holder killed
// leaves its name, until the next holder writes its own.)
func (l *Lock) Unlock() error {
	if l.named {
		_ = l.f.Truncate(0)
	}
	err := unlock(l.f)
	if cerr := l.f.Close(); err == nil {
		err = cerr
	}
	return err
}

// maxOwner bounds what Owner reads of a lock file.
const maxOwner = 256

// SetOwner writes owner (a line of text, such as a pid) into the locked
// file in place of what an earlier holder wrote, after the file's first
// byte (the byte Windows locks, which others cannot read): whoever finds
// the lock held reads who holds it with Owner.
func (l *Lock) SetOwner(owner string) error {
	// Written over the old one, then cut to its length: a reader
	// meanwhile sees one owner or the other, never an empty file.
	b := []byte("\n" + owner + "\n")
	l.named = true
	if _, err := l.f.WriteAt(b, 0); err != nil {
		return err
	}
	return l.f.Truncate(int64(len(b)))
}

// Owner returns what the holder of the lock on path wrote with SetOwner,
// or "" when the file is missing, unreadable, or holds no owner. A holder
// that let go took its name out (Unlock); between the lock's taking and
// SetOwner it still names a holder before that was killed, if any:
// callers that may meet a holder that has just taken the lock read it
// after a wait.
func Owner(path string) string {
	f, err := planted.OpenFile(path, os.O_RDONLY, 0)
	if err != nil {
		return ""
	}
	defer f.Close()
	b := make([]byte, maxOwner)
	n, _ := f.ReadAt(b, 1)
	owner, _, _ := strings.Cut(string(b[:n]), "\n")
	return owner
}

// errHeld says that the lock is held by someone else (locks never wait:
// Within polls).
var errHeld = errors.New("the file is locked")

// take locks the open file f without waiting; ok is false when someone
// else holds the lock. It closes f unless it returns the lock.
func take(f *os.File, exclusive bool) (l *Lock, ok bool, err error) {
	if err := lock(f, exclusive); err != nil {
		_ = f.Close()
		if errors.Is(err, errHeld) {
			return nil, false, nil
		}
		return nil, false, err
	}
	return &Lock{f: f}, true, nil
}
