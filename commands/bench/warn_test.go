package bench

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/socks-dev/socks/internal/lockedbuf"
	"github.com/socks-dev/socks/iostreams"
)

// TestAWarningOnATerminalIsALineOfItsOwn: on a terminal, the warning that
// the gateway's memory fell was written straight after the spinner's
// line ("⠏ reading the gateway's memory … (1s)warning: memory per
// connection not measured…"). It now clears the spinner's line first, as
// cmdutil.Progress.Printf does.
func TestAWarningOnATerminalIsALineOfItsOwn(t *testing.T) {
	ft := newFakeTarget(t, newFakeClock())
	p := ft.plan()
	opts := measureOptions(10, 2, 1, 0, time.Minute)
	opts.IO.SetTTY(false, true, true)
	errOut := &lockedbuf.Buffer{}
	opts.IO.ErrOut = errOut
	var mu sync.Mutex
	reads := 0
	p.rss = func(int) (int64, error) {
		mu.Lock()
		reads++
		n := reads
		mu.Unlock()
		if n <= 3 { // settled before the clients
			return 10_000, nil
		}
		// After the clients: once the spinner has drawn its line.
		deadline := time.After(30 * time.Second)
		for !strings.Contains(errOut.String(), "with 10 idle clients (") {
			select {
			case <-deadline:
				t.Errorf("stderr %q never showed the spinner", errOut)
				return 9_500, nil
			case <-time.After(10 * time.Millisecond):
			}
		}
		return 9_500, nil
	}
	if _, err := measure(context.Background(), opts, p, ""); err != nil {
		t.Fatal(err)
	}
	got := errOut.String()
	i := strings.Index(got, "warning: memory per connection not measured")
	if i < 0 {
		t.Fatalf("stderr %q; want the warning", got)
	}
	if !strings.HasSuffix(got[:i], "\r\x1b[K") {
		t.Errorf("the warning follows %q; want the spinner's line cleared before it", got[max(0, i-40):i])
	}
}

// TestWithJSONTheWarningsOnAColourTerminalArePlain: `socks bench --json`
// wrote its "warning:" lines (a remote target's cost, a loopback gateway
// on AWS's services, a queue the local broker does not deliver to
// --url) coloured on a terminal, though with --json a terminal shows no
// escape code (docs/json.md): their styles come from cmdutil.ErrUI, as
// the progress's. Without --json a colour terminal still gets them
// coloured.
func TestWithJSONTheWarningsOnAColourTerminalArePlain(t *testing.T) {
	remote := plan{wsURL: "wss://abc123.execute-api.eu-west-1.amazonaws.com/prod", remote: true}
	remote.pace.connectsPerSecond, remote.pace.deliveriesPerSecond = Pace(true, false, 0)
	for _, c := range []struct {
		name string
		warn func(*Options)
	}{
		{"a remote target", func(o *Options) { warnRemote(remote, o) }},
		{"a warning line", func(o *Options) { warnf(o, "%s\n", "messages queued on the local backend go to the local gateway") }},
	} {
		t.Run(c.name, func(t *testing.T) {
			stderr := func(jsonOut bool) string {
				ios, _, _, errOut := iostreams.Test()
				ios.SetTTY(false, true, true) // colour on: NO_COLOR is not set
				opts := defaults()
				opts.IO, opts.JSON = ios, jsonOut
				c.warn(opts)
				return errOut.String()
			}
			got := stderr(true)
			if !strings.HasPrefix(got, "warning: ") || strings.Contains(got, "\x1b") {
				t.Errorf("--json on a colour terminal: stderr %q, want a plain \"warning:\" line, no escape code", got)
			}
			if got := stderr(false); !strings.Contains(got, "\x1b[") {
				t.Errorf("without --json on a colour terminal: stderr %q, want its colour", got)
			}
		})
	}
}
