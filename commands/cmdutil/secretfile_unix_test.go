//go:build unix

package cmdutil

import (
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/socks-dev/socks/iostreams"
)

// An --id-file that is a FIFO no one writes held listen and chatter
// revoke in open() for ever, and `--id-file -` on a pipe that never ends
// in read(): the first Ctrl-C or SIGTERM ended the context, which neither
// looked at. Each wait ends with it now; a FIFO that is written
// (`--id-file <(pass show socks-id)`) is read as a file is, and /dev/zero
// is refused as over the bound.
func TestASecretThatNeverComesEndsWithTheFirstSignal(t *testing.T) {
	fifo := filepath.Join(t.TempDir(), "id")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		// The open left waiting ends with a writer (O_RDWR never waits).
		if f, err := os.OpenFile(fifo, os.O_RDWR, 0); err == nil {
			f.Close()
		}
	})
	for _, path := range []string{fifo, "-"} {
		ios, _, _, _ := iostreams.Test()
		pr, pw := io.Pipe()
		t.Cleanup(func() { pw.Close() })
		ios.In = pr
		ctx, cancel := context.WithCancel(context.Background())
		got := make(chan error, 1)
		go func() {
			_, err := ReadSecretFile(ctx, ios, "id-file", path, "", 64)
			got <- err
		}()
		cancel() // the first Ctrl-C
		if err := <-got; !errors.Is(err, context.Canceled) {
			t.Errorf("--id-file %s, interrupted = %v; want it to end with the interruption", path, err)
		}
	}

	written := filepath.Join(t.TempDir(), "id")
	if err := syscall.Mkfifo(written, 0o600); err != nil {
		t.Fatal(err)
	}
	wrote := make(chan error, 1)
	go func() {
		f, err := os.OpenFile(written, os.O_WRONLY, 0) // waits for the reader
		if err == nil {
			_, err = f.WriteString("sc_abc\n")
			f.Close()
		}
		wrote <- err
	}()
	ios, _, _, _ := iostreams.Test()
	if got, err := ReadSecretFile(t.Context(), ios, "id-file", written, "", 64); err != nil || got != "sc_abc\n" {
		t.Errorf("--id-file FIFO = %q, %v; want what was written", got, err)
	}
	if err := <-wrote; err != nil {
		t.Fatal(err)
	}

	_, err := ReadSecretFile(t.Context(), ios, "id-file", "/dev/zero", "", 64)
	var fe *FlagError
	if !errors.As(err, &fe) || !strings.Contains(err.Error(), "--id-file /dev/zero holds more than 64 bytes") {
		t.Errorf("--id-file /dev/zero = %v; want a usage error saying it holds too much", err)
	}
}
