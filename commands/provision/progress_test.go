package provision

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/socks-dev/socks/internal/lockedbuf"
	"github.com/socks-dev/socks/iostreams"
)

// spinnerCodes are what cmdutil.Progress's spinner writes: a return to
// the line's start, the erase of the line, and its frames.
var spinnerCodes = []string{"\r", "\x1b[K", "⠋", "⠙", "⠹"}

func drawsASpinner(stderr string) bool {
	for _, c := range spinnerCodes {
		if strings.Contains(stderr, c) {
			return true
		}
	}
	return false
}

// TestProvisionAndTeardownWithJSONOnATerminalShowProgressAsPiped:
// provision and teardown drew their spinner on a terminal with --json,
// where deploy, prune-stale, dlq and bench draw none. With --json every
// command shows its progress as when piped (cmdutil.NewProgress): here
// the plain "…" lines on stderr, no escape code; and the JSON on stdout
// is the same.
func TestProvisionAndTeardownWithJSONOnATerminalShowProgressAsPiped(t *testing.T) {
	at := time.Date(2026, 12, 2, 5, 0, 0, 0, time.UTC)
	clock := func() time.Time { return at } // "ready (0s)" in every run
	streams := func(tty bool) (*iostreams.IOStreams, *bytes.Buffer, *lockedbuf.Buffer) {
		ios, _, out, _ := iostreams.Test()
		ios.SetTTY(false, tty, tty)
		ios.SetNoColor(true)
		errOut := &lockedbuf.Buffer{}
		ios.ErrOut = errOut
		return ios, out, errOut
	}
	type run struct{ stdout, stderr string }
	check := func(t *testing.T, what string, piped, tty run) {
		t.Helper()
		if drawsASpinner(tty.stderr) {
			t.Errorf("%s --json on a terminal: stderr %q; want no spinner", what, tty.stderr)
		}
		if tty.stderr != piped.stderr {
			t.Errorf("%s --json on a terminal: stderr %q; want it as piped, %q", what, tty.stderr, piped.stderr)
		}
		if !strings.Contains(piped.stderr, "…\n") {
			t.Errorf("%s --json piped: stderr %q; want its plain progress lines", what, piped.stderr)
		}
		if tty.stdout != piped.stdout || !strings.HasPrefix(tty.stdout, "{") {
			t.Errorf("%s --json: stdout on a terminal %q, piped %q; want the same JSON", what, tty.stdout, piped.stdout)
		}
	}

	provisionJSON := func(t *testing.T, a *account, tty bool) run {
		t.Helper()
		ios, out, errOut := streams(tty)
		opts, _ := provisionOpts(a)
		opts.IO, opts.Now, opts.JSON = ios, clock, true
		if err := provisionRun(t.Context(), opts); err != nil {
			t.Fatalf("provision: %v\n%s", err, errOut)
		}
		return run{out.String(), errOut.String()}
	}
	teardownJSON := func(t *testing.T, a *account, tty bool) run {
		t.Helper()
		ios, out, errOut := streams(tty)
		opts, _ := teardownOpts(a, "", false)
		opts.IO, opts.Now, opts.JSON, opts.Yes = ios, clock, true, true
		if err := teardownRun(t.Context(), opts); err != nil {
			t.Fatalf("teardown: %v\n%s", err, errOut)
		}
		teardownAsDocumented(t, out.String())
		return run{out.String(), errOut.String()}
	}

	piped, onTTY := newAccount(), newAccount()
	check(t, "provision", provisionJSON(t, piped, false), provisionJSON(t, onTTY, true))
	check(t, "teardown", teardownJSON(t, piped, false), teardownJSON(t, onTTY, true))
}
