// Package planted opens the files socks keeps in a directory that others
// may write (a state dir its group may write) so that what another user
// planted there cannot be turned against the user: a symbolic link in
// place of a file socks writes would have it write into (or create) the
// file the link points at, and a FIFO would hold the open, or the read,
// for ever. Such an open fails at once with an *Error that names the
// file and says to remove it.
package planted

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/socks-dev/socks/internal/text"
)

// Flags makes an open fail at once, rather than follow a symbolic link or
// wait for a FIFO's other end, where the platform can (O_NOFOLLOW and
// O_NONBLOCK on Unix; 0 elsewhere). O_NONBLOCK changes nothing for a
// regular file. OpenFile adds it.
const Flags = noFollow | NonBlock

// OpenFile is os.OpenFile with Flags, for a file in a directory others
// may write: it returns an *Error when name is a symbolic link, a FIFO or
// anything else but a regular file (where Flags can tell).
func OpenFile(name string, flag int, perm os.FileMode) (*os.File, error) {
	f, err := os.OpenFile(name, flag|Flags, perm)
	if err != nil {
		// O_NOFOLLOW fails with ELOOP (EMLINK on FreeBSD), a FIFO opened
		// to write with ENXIO, a directory with EISDIR: look at what is
		// there rather than at the errno.
		if perr := Check(name); perr != nil {
			return nil, perr
		}
		return nil, err
	}
	if fi, serr := f.Stat(); serr == nil && !fi.Mode().IsRegular() {
		_ = f.Close()
		return nil, NotRegular(name, fi)
	}
	return f, nil
}

// Check returns an *Error when name is a symbolic link or anything else
// but a regular file, and nil when it is a regular file or missing (or
// cannot be looked at: the open that follows says why). It checks
// nothing where Flags is 0.
func Check(name string) error {
	if !checks {
		return nil
	}
	fi, err := os.Lstat(name)
	if err != nil || fi.Mode().IsRegular() {
		return nil
	}
	return NotRegular(name, fi)
}

// Error says that what is at Path is not a file socks made.
type Error struct {
	// Path is the file; What says what is there instead ("a symbolic
	// link to /x", "a FIFO (named pipe)").
	Path, What string
	// Link says that it is a symbolic link.
	Link bool
	// GroupMode is the mode of Path's directory when its group may write
	// it (the usual way another user came to plant it), or 0.
	GroupMode fs.FileMode
}

func (e *Error) Error() string {
	msg := fmt.Sprintf("%s is %s, not a file socks made, and socks will not use it: remove it (rm %s", e.Path, e.What, text.ShellWord(e.Path))
	if e.Link {
		msg += "; what it points to stays"
	}
	msg += ") and try again"
	if e.GroupMode != 0 {
		msg += fmt.Sprintf("; %s may be written by its group (mode %04o), whose other members could have put it there", filepath.Dir(e.Path), e.GroupMode.Perm())
	}
	return msg
}

// ErrNotRegular is what every *Error is (errors.Is).
var ErrNotRegular = errors.New("not a regular file")

// Is makes errors.Is(err, ErrNotRegular) true.
func (e *Error) Is(target error) bool { return target == ErrNotRegular }

// NotRegular is the *Error for name, whose file info is fi (from Lstat,
// or from Stat of an open file).
func NotRegular(name string, fi fs.FileInfo) *Error {
	e := &Error{Path: name, What: What(name, fi), Link: fi.Mode()&fs.ModeSymlink != 0}
	if d, err := os.Stat(filepath.Dir(name)); err == nil && d.Mode().Perm()&0o020 != 0 {
		e.GroupMode = d.Mode().Perm()
	}
	return e
}

// What says what name is when it is not a regular file, fi its file info
// (from Lstat, or from Stat of an open file): "a symbolic link to /x",
// "a FIFO (named pipe)", "a directory".
func What(name string, fi fs.FileInfo) string {
	switch m := fi.Mode(); {
	case m&fs.ModeSymlink != 0:
		if to, err := os.Readlink(name); err == nil {
			return "a symbolic link to " + to
		}
		return "a symbolic link"
	case m&fs.ModeNamedPipe != 0:
		return "a FIFO (named pipe)"
	case m.IsDir():
		return "a directory"
	case m&fs.ModeSocket != 0:
		return "a socket"
	case m&fs.ModeDevice != 0:
		return "a device"
	default:
		return "something other than a regular file"
	}
}
