//go:build unix

package publish

import (
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/socks-dev/socks/commands/cmdutil"
	"github.com/socks-dev/socks/iostreams"
)

// TestABodyThatNeverComesEndsWithTheFirstSignal: a --body-file that is
// a FIFO no one writes held publish in open() for ever, and a body piped
// on stdin that never ends (`tail -f log | socks publish`) in read():
// the first Ctrl-C or SIGTERM ended the command's context, which neither
// looked at, so it took a second to stop it. Each wait now ends with the
// context. A FIFO that is written (`--body-file <(cmd)`) is still read,
// and /dev/zero is refused as too large, not read for ever.
func TestABodyThatNeverComesEndsWithTheFirstSignal(t *testing.T) {
	fifo := filepath.Join(t.TempDir(), "body")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		// The open left waiting ends with a writer (O_RDWR never waits).
		if f, err := os.OpenFile(fifo, os.O_RDWR, 0); err == nil {
			f.Close()
		}
	})
	for _, tc := range []struct {
		name  string
		flags []string
	}{
		{"--body-file, a FIFO no one writes", []string{"--body-file", fifo}},
		{"--body-file - on a pipe that never ends", []string{"--body-file", "-"}},
		{"--body - on a pipe that never ends", []string{"--body", "-"}},
		{"piped stdin that never ends", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ios, _, _, _ := iostreams.Test()
			pr, pw := io.Pipe()
			t.Cleanup(func() { pw.Close() })
			ios.In = pr
			opts := parse(t, ios, append([]string{"--topic", "t"}, tc.flags...)...)
			ctx, cancel := context.WithCancel(context.Background())
			got := make(chan error, 1)
			go func() {
				_, err := opts.Envelope(ctx)
				got <- err
			}()
			cancel() // the first Ctrl-C
			if err := <-got; !errors.Is(err, context.Canceled) {
				t.Errorf("publish %s, interrupted = %v; want it to end with the interruption", strings.Join(tc.flags, " "), err)
			}
		})
	}

	t.Run("--body-file, a FIFO that is written", func(t *testing.T) {
		fifo := filepath.Join(t.TempDir(), "body")
		if err := syscall.Mkfifo(fifo, 0o600); err != nil {
			t.Fatal(err)
		}
		wrote := make(chan error, 1)
		go func() {
			f, err := os.OpenFile(fifo, os.O_WRONLY, 0) // waits for publish
			if err == nil {
				_, err = f.WriteString(`{ "notice": 1 }` + "\n")
				f.Close()
			}
			wrote <- err
		}()
		ios, _, _, _ := iostreams.Test()
		env, err := parse(t, ios, "--topic", "t", "--body-file", fifo).Envelope(t.Context())
		if err != nil || string(env.Body) != `{"notice":1}` {
			t.Errorf("publish --body-file FIFO = %s, %v; want the body written", env.Body, err)
		}
		if err := <-wrote; err != nil {
			t.Fatal(err)
		}
	})

	t.Run("--body-file /dev/zero", func(t *testing.T) {
		ios, _, _, _ := iostreams.Test()
		_, err := parse(t, ios, "--topic", "t", "--body-file", "/dev/zero").Envelope(t.Context())
		var fe *cmdutil.FlagError
		if !errors.As(err, &fe) || !strings.Contains(err.Error(), "the body from /dev/zero is over") {
			t.Errorf("publish --body-file /dev/zero = %v; want a usage error saying it is too large", err)
		}
	})
}
