package filelock_test

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/socks-dev/socks/internal/filelock"
)

// The locks belong to the open file, so these conflicts within one process
// are the ones between processes.
func TestSharedLocksKeepAnExclusiveOneOut(t *testing.T) {
	path := filepath.Join(t.TempDir(), "x.lock")
	tryExclusive := func() bool {
		t.Helper()
		l, ok, err := filelock.TryExclusive(path)
		if err != nil {
			t.Fatal(err)
		}
		if ok {
			if err := l.Unlock(); err != nil {
				t.Fatal(err)
			}
		}
		return ok
	}
	if !tryExclusive() {
		t.Fatal("TryExclusive on a file nobody locked failed")
	}
	a, ok, err := filelock.TryShared(path)
	if err != nil || !ok {
		t.Fatalf("TryShared on a free file: ok=%v, %v", ok, err)
	}
	b, ok, err := filelock.TryShared(path)
	if err != nil || !ok {
		t.Fatalf("TryShared beside a shared lock: ok=%v, %v", ok, err)
	}
	if tryExclusive() {
		t.Fatal("TryExclusive got the lock while two shared locks were held")
	}
	if err := a.Unlock(); err != nil {
		t.Fatal(err)
	}
	if tryExclusive() {
		t.Fatal("TryExclusive got the lock while one shared lock was still held")
	}
	if err := b.Unlock(); err != nil {
		t.Fatal(err)
	}
	if !tryExclusive() {
		t.Fatal("TryExclusive failed once every shared lock was released")
	}
}

func TestAnExclusiveLockKeepsEveryoneOut(t *testing.T) {
	path := filepath.Join(t.TempDir(), "x.lock")
	l, ok, err := filelock.TryExclusive(path)
	if err != nil || !ok {
		t.Fatalf("TryExclusive on a free file: ok=%v, %v", ok, err)
	}
	if _, ok, err := filelock.TryExclusive(path); ok || err != nil {
		t.Fatalf("TryExclusive beside an exclusive lock: ok=%v, %v; want false, nil", ok, err)
	}
	if _, ok, err := filelock.TryShared(path); ok || err != nil {
		t.Fatalf("TryShared beside an exclusive lock: ok=%v, %v; want false, nil", ok, err)
	}
	if err := l.Unlock(); err != nil {
		t.Fatal(err)
	}
	s, ok, err := filelock.TryShared(path)
	if err != nil || !ok {
		t.Fatalf("TryShared once the exclusive lock went: ok=%v, %v", ok, err)
	}
	if err := s.Unlock(); err != nil {
		t.Fatal(err)
	}
}

func TestADirectoryIsLockedByOneAtATime(t *testing.T) {
	dir := t.TempDir()
	a, ok, err := filelock.TryExclusiveDir(dir)
	if err != nil || !ok {
		t.Fatalf("TryExclusiveDir on a free directory: ok=%v, %v", ok, err)
	}
	if _, ok, err := filelock.TryExclusiveDir(dir); ok || err != nil {
		t.Fatalf("TryExclusiveDir beside a held lock: ok=%v, %v; want false, nil", ok, err)
	}
	if err := a.Unlock(); err != nil {
		t.Fatal(err)
	}
	b, ok, err := filelock.TryExclusiveDir(dir)
	if err != nil || !ok {
		t.Fatalf("TryExclusiveDir after the unlock: ok=%v, %v", ok, err)
	}
	if err := b.Unlock(); err != nil {
		t.Fatal(err)
	}
	if entries, err := os.ReadDir(dir); err != nil || len(entries) != 0 {
		t.Errorf("the lock left files behind: %v %v", entries, err)
	}
}

func TestWithinGivesUpOnAHeldLockAndTakesAFreeOne(t *testing.T) {
	path := filepath.Join(t.TempDir(), "x.lock")
	try := func() (*filelock.Lock, bool, error) { return filelock.TryExclusive(path) }
	held, err := filelock.Within(time.Minute, try)
	if err != nil {
		t.Fatal(err)
	}
	// Held all along: Within says so instead of waiting for ever.
	if _, err := filelock.Within(50*time.Millisecond, try); !errors.Is(err, filelock.ErrTimeout) {
		t.Fatalf("Within beside a held lock = %v, want ErrTimeout", err)
	}
	// Released while Within waits: it gets the lock.
	got := make(chan error, 1)
	go func() {
		l, err := filelock.Within(time.Minute, try)
		if err == nil {
			err = l.Unlock()
		}
		got <- err
	}()
	if err := held.Unlock(); err != nil {
		t.Fatal(err)
	}
	if err := <-got; err != nil {
		t.Fatal(err)
	}
}

// TestTheHolderOfALockNamesItselfInIt: whoever finds a lock held reads
// who holds it (Owner), what the holder wrote (SetOwner) and nothing a
// holder before it wrote; a lock file no holder named itself in, or that
// is missing, names no one.
func TestTheHolderOfALockNamesItselfInIt(t *testing.T) {
	path := filepath.Join(t.TempDir(), "x.lock")
	if got := filelock.Owner(path); got != "" {
		t.Errorf("Owner of a missing file = %q; want none", got)
	}
	l, ok, err := filelock.TryExclusive(path)
	if err != nil || !ok {
		t.Fatalf("TryExclusive: ok=%v, %v", ok, err)
	}
	if got := filelock.Owner(path); got != "" {
		t.Errorf("Owner before the holder named itself = %q; want none", got)
	}
	if err := l.SetOwner("a much longer first owner"); err != nil {
		t.Fatal(err)
	}
	if err := l.Unlock(); err != nil {
		t.Fatal(err)
	}
	l, ok, err = filelock.TryExclusive(path)
	if err != nil || !ok {
		t.Fatalf("TryExclusive again: ok=%v, %v", ok, err)
	}
	defer l.Unlock()
	if err := l.SetOwner("12345"); err != nil {
		t.Fatal(err)
	}
	if _, ok, err := filelock.TryShared(path); err != nil || ok {
		t.Fatalf("TryShared beside the named holder: ok=%v, %v; want it held", ok, err)
	}
	if got := filelock.Owner(path); got != "12345" {
		t.Errorf("Owner = %q; want the second holder's %q alone", got, "12345")
	}
}

// TestALockReleasedNamesNoOne: a holder that lets its lock go takes its
// name out, so that whoever finds the lock taken by the next holder,
// before that one named itself, is not told a process that ended (whose
// pid another may have since).
func TestALockReleasedNamesNoOne(t *testing.T) {
	path := filepath.Join(t.TempDir(), "x.lock")
	l, ok, err := filelock.TryExclusive(path)
	if err != nil || !ok {
		t.Fatalf("TryExclusive: ok=%v, %v", ok, err)
	}
	if err := l.SetOwner("12345"); err != nil {
		t.Fatal(err)
	}
	if err := l.Unlock(); err != nil {
		t.Fatal(err)
	}
	if got := filelock.Owner(path); got != "" {
		t.Errorf("Owner once the holder let go = %q; want none", got)
	}
	next, ok, err := filelock.TryExclusive(path)
	if err != nil || !ok {
		t.Fatalf("TryExclusive again: ok=%v, %v", ok, err)
	}
	defer next.Unlock()
	if got := filelock.Owner(path); got != "" {
		t.Errorf("Owner as the next holder took the lock = %q; want none, not the one before", got)
	}
	// A shared lock, which names no one, takes out nothing as it goes.
	if err := next.SetOwner("777"); err != nil {
		t.Fatal(err)
	}
	if _, ok, err := filelock.TryShared(path); err != nil || ok {
		t.Fatalf("TryShared beside the holder: ok=%v, %v; want it held", ok, err)
	}
	if got := filelock.Owner(path); got != "777" {
		t.Errorf("Owner after a refused shared lock = %q; want 777", got)
	}
}
