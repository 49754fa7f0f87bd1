//go:build unix

package infile_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/socks-dev/socks/internal/infile"
)

// TestReadFileRefusesWhatIsNoFileWithoutWaiting: a FIFO no one writes (a
// plain open waited for a writer for ever), a link to it, a directory and
// /dev/zero are each a *NotRegularError saying what they are, returned at
// once; a regular file, and a link to one, read up to one byte over the
// bound, and /dev/null as empty.
func TestReadFileRefusesWhatIsNoFileWithoutWaiting(t *testing.T) {
	dir := t.TempDir()
	fifo := filepath.Join(dir, "fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(dir, "link")
	if err := os.Symlink(fifo, link); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ path, what string }{
		{fifo, "a FIFO (named pipe)"},
		{link, "a FIFO (named pipe)"},
		{dir, "a directory"},
		{"/dev/zero", "a device"},
	} {
		b, err := infile.ReadFile(c.path, 10)
		var ne *infile.NotRegularError
		if !errors.As(err, &ne) || err.Error() != c.path+" is "+c.what+", not a regular file" {
			t.Errorf("ReadFile(%s) = %d bytes, %v; want a *NotRegularError saying it is %s", c.path, len(b), err, c.what)
		}
	}
	file := filepath.Join(dir, "file")
	if err := os.WriteFile(file, []byte(strings.Repeat("x", 100)), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(file, filepath.Join(dir, "tofile")); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{file, filepath.Join(dir, "tofile")} {
		if b, err := infile.ReadFile(p, 10); err != nil || len(b) != 11 {
			t.Errorf("ReadFile(%s, 10) = %d bytes, %v; want 11", p, len(b), err)
		}
	}
	if b, err := infile.ReadFile(os.DevNull, 10); err != nil || len(b) != 0 {
		t.Errorf("ReadFile(%s) = %q, %v; want it empty", os.DevNull, b, err)
	}
	if _, err := infile.ReadFile(filepath.Join(dir, "none"), 10); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("ReadFile of a missing file = %v; want ErrNotExist", err)
	}
}

// TestReadStreamWaitsForAFIFOUntilTheContextEnds: a FIFO is read as the
// stream it is once its writer comes; with no writer, the wait ends with
// the context's end (it held open() beyond the reach of Ctrl-C). A device
// that never ends is read to one byte over the bound; a directory is
// refused.
func TestReadStreamWaitsForAFIFOUntilTheContextEnds(t *testing.T) {
	dir := t.TempDir()
	fifo := filepath.Join(dir, "fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	got := make(chan error, 1)
	go func() {
		_, err := infile.ReadStream(ctx, fifo, 10)
		got <- err
	}()
	cancel()
	if err := <-got; !errors.Is(err, context.Canceled) {
		t.Errorf("ReadStream of a FIFO no one writes, its context ended = %v; want context.Canceled", err)
	}
	// The open left waiting ends with a writer (O_RDWR never waits).
	if f, err := os.OpenFile(fifo, os.O_RDWR, 0); err == nil {
		defer f.Close()
	}

	fifo = filepath.Join(dir, "fifo2")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	wrote := make(chan error, 1)
	go func() {
		f, err := os.OpenFile(fifo, os.O_WRONLY, 0) // waits for the reader
		if err == nil {
			_, err = f.WriteString(`{"a":1}`)
			f.Close()
		}
		wrote <- err
	}()
	b, err := infile.ReadStream(context.Background(), fifo, 10)
	if err != nil || string(b) != `{"a":1}` {
		t.Errorf("ReadStream of a FIFO written once = %q, %v", b, err)
	}
	if err := <-wrote; err != nil {
		t.Fatal(err)
	}

	if b, err := infile.ReadStream(context.Background(), "/dev/zero", 10); err != nil || len(b) != 11 {
		t.Errorf("ReadStream(/dev/zero, 10) = %d bytes, %v; want 11", len(b), err)
	}
	var ne *infile.NotRegularError
	if _, err := infile.ReadStream(context.Background(), dir, 10); !errors.As(err, &ne) {
		t.Errorf("ReadStream of a directory = %v; want a *NotRegularError", err)
	}
}
