// Package infile reads the files a user names for socks to read (a
// --config, a --body-file, an --id-file, a --lambda-zip) so that what is
// at the name can neither hold socks nor fill its memory: an open never
// waits (a FIFO with no writer held open() for ever, out of reach of
// Ctrl-C), what is not a regular file is refused where the input must be
// a file, the wait for a stream ends with its context, and no read goes
// past its bound.
package infile

import (
	"context"
	"io"
	"io/fs"
	"os"

	"github.com/socks-dev/socks/internal/planted"
)

// NotRegularError says that Path is What ("a FIFO (named pipe)", "a
// directory", "a device") where a regular file was wanted. Its text is
// for the caller to wrap with the flag or setting that named Path.
type NotRegularError struct{ Path, What string }

func (e *NotRegularError) Error() string {
	return e.Path + " is " + e.What + ", not a regular file"
}

// ReadFile reads the regular file at name, following symbolic links, at
// most max+1 bytes: the caller refuses one longer than max in its own
// words. The null device reads as an empty file. Anything else but a
// regular file (a FIFO, a directory, /dev/zero, a link to one) is a *NotRegularError, found without waiting: the open is
// non-blocking, and the open file is looked at, not the name.
func ReadFile(name string, max int64) ([]byte, error) {
	f, fi, err := open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if !fi.Mode().IsRegular() && !isNull(fi) {
		return nil, &NotRegularError{name, planted.What(name, fi)}
	}
	return readAll(f, max)
}

// CheckRegular looks at name, following symbolic links and without
// opening it, and returns a *NotRegularError when it is anything but a
// regular file or the null device (a FIFO, a directory, a device), for a
// file another library will read (which could wait on a FIFO for ever).
// A name that cannot be looked at returns os.Stat's error (a missing file
// is fs.ErrNotExist).
func CheckRegular(name string) error {
	fi, err := os.Stat(name)
	if err != nil {
		return err
	}
	if !fi.Mode().IsRegular() && !isNull(fi) {
		return &NotRegularError{name, planted.What(name, fi)}
	}
	return nil
}

// isNull says whether fi is the null device, the usual way to give an
// empty file (--config /dev/null).
func isNull(fi fs.FileInfo) bool {
	if fi.Mode()&fs.ModeCharDevice == 0 {
		return false
	}
	null, err := os.Stat(os.DevNull)
	return err == nil && os.SameFile(fi, null)
}

// ReadStream reads at most max+1 bytes from name, which may be a regular
// file or a stream: a FIFO (whose writer it waits for), a pipe (`<(cmd)`,
// /dev/stdin), a terminal or a device. A directory or a socket is a
// *NotRegularError. Any wait (for a FIFO's writer, for a stream's next
// bytes) ends when ctx does, with ctx's error; the open or read that
// waits is left to end with the process.
func ReadStream(ctx context.Context, name string, max int64) ([]byte, error) {
	if fi, err := os.Stat(name); err == nil && fi.Mode()&fs.ModeNamedPipe != 0 {
		// Opened to read, a FIFO waits for a writer; opened
		// non-blocking it would read as empty until one came.
		return aside(ctx, func() ([]byte, error) {
			f, err := os.Open(name)
			if err != nil {
				return nil, err
			}
			defer f.Close()
			return readAll(f, max)
		})
	}
	f, fi, err := open(name)
	if err != nil {
		return nil, err
	}
	switch m := fi.Mode(); {
	case m.IsRegular():
		defer f.Close()
		return readAll(f, max)
	case m.IsDir(), m&fs.ModeSocket != 0:
		_ = f.Close()
		return nil, &NotRegularError{name, planted.What(name, fi)}
	}
	// A terminal, a device, or a FIFO put at name since it was looked at.
	return aside(ctx, func() ([]byte, error) {
		defer f.Close()
		return readAll(f, max)
	})
}

// Read reads at most max+1 bytes from r (standard input), returning
// ctx's error when ctx ends first; the read is left to end with the
// process.
func Read(ctx context.Context, r io.Reader, max int64) ([]byte, error) {
	return aside(ctx, func() ([]byte, error) { return readAll(r, max) })
}

// open opens name to read, following links, without waiting in open (a
// FIFO's writer), and returns it with the open file's info.
func open(name string) (*os.File, fs.FileInfo, error) {
	f, err := os.OpenFile(name, os.O_RDONLY|planted.NonBlock, 0)
	if err != nil {
		return nil, nil, err
	}
	fi, err := f.Stat()
	if err != nil {
		_ = f.Close()
		return nil, nil, err
	}
	return f, fi, nil
}

func readAll(r io.Reader, max int64) ([]byte, error) {
	return io.ReadAll(io.LimitReader(r, max+1))
}

// aside runs read in a goroutine of its own and returns what it returns,
// or ctx's error when ctx ends first.
func aside(ctx context.Context, read func() ([]byte, error)) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	type result struct {
		b   []byte
		err error
	}
	got := make(chan result, 1)
	go func() {
		b, err := read()
		got <- result{b, err}
	}()
	select {
	case r := <-got:
		return r.b, r.err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}
