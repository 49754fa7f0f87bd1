package iostreams

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

func TestOutClosedFiresWhenThePipesReaderGoes(t *testing.T) {
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	closed := watchClosed(w)
	if closed == nil {
		t.Skip("no way to watch a pipe's reader on this system")
	}
	select {
	case <-closed:
		t.Fatal("said closed while the reader is open")
	default:
	}
	r.Close()
	select {
	case <-closed:
	case <-time.After(time.Minute):
		t.Fatal("the reader closed, and a minute later it was not noticed")
	}
}

func TestOutClosedIsNeverForAFileOrTheTestStreams(t *testing.T) {
	f, err := os.Create(filepath.Join(t.TempDir(), "out"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if watchClosed(f) != nil {
		t.Error("a regular file has no reader to go away, but is watched")
	}
	s, _, _, _ := Test()
	if s.OutClosed() != nil {
		t.Error("Test streams report a closed standard output")
	}
}
