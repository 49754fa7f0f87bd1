package config

import (
	"errors"
	"fmt"
	"time"

	"github.com/socks-dev/socks/internal/filelock"
)

// lockDir holds an exclusive lock on directory dir, so that of two socks
// processes saving into a config file there at once, one waits for the
// other (it leaves no file behind). The lock goes with the process, so a
// crash cannot leave it held. Where directories cannot be locked
// (Windows) it does nothing, and SaveProfile's check just before its
// rename still catches most saves racing it.
func lockDir(dir string) (unlock func(), err error) {
	l, err := filelock.Within(lockWait, func() (*filelock.Lock, bool, error) { return filelock.TryExclusiveDir(dir) })
	switch {
	case errors.Is(err, errors.ErrUnsupported):
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
