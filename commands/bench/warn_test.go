package bench

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/socks-dev/socks/internal/lockedbuf"
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
