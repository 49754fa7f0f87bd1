//go:build unix

package planted_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/socks-dev/socks/internal/planted"
)

// TestOpenFileOpensOnlyRegularFiles: a file socks makes or a missing one
// opens; a link (to a file or to nothing), a FIFO opened to write (which
// waited for a reader) or to read and write, and a directory are
// refused with an *Error naming the file, nothing created through the
// link. The hint about the directory's group is given only when its
// group may write it.
func TestOpenFileOpensOnlyRegularFiles(t *testing.T) {
	dir := t.TempDir()
	victim := filepath.Join(t.TempDir(), "precious")
	link := filepath.Join(dir, "link")
	if err := os.Symlink(victim, link); err != nil {
		t.Fatal(err)
	}
	fifo := filepath.Join(dir, "fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	sub := filepath.Join(dir, "sub")
	if err := os.Mkdir(sub, 0o700); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		path, what string
		flag       int
	}{
		{link, "a symbolic link to " + victim, os.O_WRONLY | os.O_CREATE},
		{fifo, "a FIFO", os.O_WRONLY | os.O_CREATE},
		{fifo, "a FIFO", os.O_RDWR | os.O_CREATE},
		{fifo, "a FIFO", os.O_RDONLY},
		{sub, "a directory", os.O_RDWR | os.O_CREATE},
	} {
		f, err := planted.OpenFile(c.path, c.flag, 0o600)
		if err == nil {
			f.Close()
			t.Errorf("OpenFile(%s, %#o) opened it", c.path, c.flag)
			continue
		}
		var pe *planted.Error
		if !errors.As(err, &pe) || !errors.Is(err, planted.ErrNotRegular) ||
			!strings.Contains(err.Error(), c.path+" is "+c.what) || !strings.Contains(err.Error(), "remove it") {
			t.Errorf("OpenFile(%s, %#o) = %v; want a *planted.Error saying it is %s and to remove it", c.path, c.flag, err, c.what)
		}
		if strings.Contains(err.Error(), "group") {
			t.Errorf("OpenFile(%s) blames the group of a directory only its user may write: %v", c.path, err)
		}
	}
	if _, err := os.Lstat(victim); !os.IsNotExist(err) {
		t.Errorf("the link's target was made: %v", err)
	}
	for _, path := range []string{filepath.Join(dir, "new"), filepath.Join(dir, "new")} {
		f, err := planted.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
		if err != nil {
			t.Fatalf("OpenFile of a missing, then a regular file: %v", err)
		}
		f.Close()
	}

	if err := os.Chmod(dir, 0o770); err != nil {
		t.Fatal(err)
	}
	_, err := planted.OpenFile(link, os.O_RDWR|os.O_CREATE, 0o600)
	if err == nil || !strings.Contains(err.Error(), dir+" may be written by its group (mode 0770)") {
		t.Errorf("OpenFile of a link in a directory its group may write = %v; want that said", err)
	}
}

// The fix an *Error gives can be pasted into a shell as it is, also for a
// state dir whose path holds a space or a quote.
func TestTheRemoveHintIsOneShellWord(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "my state's dir")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "socks.db")
	if err := os.Symlink("/nonexistent", path); err != nil {
		t.Fatal(err)
	}
	err := planted.Check(path)
	want := "(rm '" + strings.ReplaceAll(path, "'", `'\''`) + "';"
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Fatalf("err %v; want the hint %s", err, want)
	}
}
