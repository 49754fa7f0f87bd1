//go:build unix

package config

import (
	"errors"
	"fmt"
	"os"
	"syscall"
	"time"
)

// lockDir holds an exclusive lock on directory dir, so that of two socks
// processes saving into a config file there at once, one waits for the
// other (it leaves no file behind). The lock goes with the process, so a
// crash cannot leave it held.
func lockDir(dir string) (unlock func(), err error) {
	d, err := os.Open(dir)
	if err != nil {
		return nil, err
	}
	// Bounded: a process that holds the lock for this long is stuck.
	deadline := time.Now().Add(lockWait)
	for {
		err = syscall.Flock(int(d.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			return func() {
				_ = syscall.Flock(int(d.Fd()), syscall.LOCK_UN)
				d.Close()
			}, nil
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) && !errors.Is(err, syscall.EINTR) {
			d.Close()
			return nil, err
		}
		if time.Now().After(deadline) {
			d.Close()
			return nil, fmt.Errorf("another process has been saving into %s for %s", dir, lockWait)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

const lockWait = 30 * time.Second
