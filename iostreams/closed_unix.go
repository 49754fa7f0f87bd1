//go:build unix

package iostreams

import (
	"errors"
	"os"

	"golang.org/x/sys/unix"
)

// watchClosed returns a channel closed when the reader of the pipe f
// writes to has gone (`| head -1` exited), or nil when f is not a pipe.
// A thread waits in poll(2) meanwhile, so call it once, for a command
// that may wait long without writing (listen).
func watchClosed(f *os.File) <-chan struct{} {
	fi, err := f.Stat()
	if err != nil || fi.Mode()&os.ModeNamedPipe == 0 {
		return nil
	}
	// Through SyscallConn, so that f's descriptor stays as it is (Fd
	// would make it blocking).
	rc, err := f.SyscallConn()
	if err != nil {
		return nil
	}
	var fd int
	if rc.Control(func(d uintptr) { fd = int(d) }) != nil {
		return nil
	}
	closed := make(chan struct{})
	go func() {
		// No events asked for: poll reports only POLLERR (Linux) or
		// POLLHUP (BSDs) of a pipe with no reader, and POLLNVAL.
		fds := []unix.PollFd{{Fd: int32(fd)}}
		for {
			n, err := unix.Poll(fds, -1)
			if errors.Is(err, unix.EINTR) {
				continue
			}
			if err != nil || fds[0].Revents&unix.POLLNVAL != 0 {
				return
			}
			if n > 0 && fds[0].Revents&(unix.POLLERR|unix.POLLHUP) != 0 {
				close(closed)
				return
			}
		}
	}()
	return closed
}
