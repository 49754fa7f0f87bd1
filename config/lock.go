package config

import (
	"errors"
	"fmt"
	"path/filepath"
	"time"

	"github.com/socks-dev/socks/internal/filelock"
)

// lockDir holds an exclusive lock on directory dir, so that of two socks
// processes saving into a config file there at once, one waits for the
// other. The lock goes with the process, so a crash cannot leave it held.
// On Unix it locks the directory itself and leaves no file behind; where
// directories cannot be locked (Windows) it locks the file lockFileName in
// it, which stays behind, empty.
func lockDir(dir string) (unlock func(), err error) {
	l, err := filelock.Within(lockWait, func() (*filelock.Lock, bool, error) { return tryLockDir(dir) })
	if errors.Is(err, errors.ErrUnsupported) {
		l, err = filelock.Within(lockWait, func() (*filelock.Lock, bool, error) {
			return filelock.TryExclusive(filepath.Join(dir, lockFileName))
		})
	}
	switch {
	case errors.Is(err, errors.ErrUnsupported):
		// No locks at all here (or a file system that refuses them): the
		// check SaveProfile makes just before its rename still catches
		// most saves racing it.
		return func() {}, nil
	case errors.Is(err, filelock.ErrTimeout):
		return nil, fmt.Errorf("another process has been saving into %s for %s", dir, lockWait)
	case err != nil:
		return nil, err
	}
	return func() { _ = l.Unlock() }, nil
}

// lockWait bounds the wait: a process that holds the lock this long is
// stuck. Tests shorten it.
var lockWait = 30 * time.Second

// tryLockDir is filelock.TryExclusiveDir; tests take directory locks away.
var tryLockDir = filelock.TryExclusiveDir

// lockFileName is the file locked in the directory where directories
// cannot be locked.
const lockFileName = ".socks-config.lock"
