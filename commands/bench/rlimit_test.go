package bench

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/socks-dev/socks/commands/cmdutil"
	"github.com/socks-dev/socks/iostreams"
)

// TestMoreClientsThanThisProcessMayOpenAreRefusedAtOnce: with more
// --connections than the process may open files (ulimit -Hn), bench
// issued every chatter ID, measured latency, connected clients until the
// limit and then failed with Go's words ("dial tcp ...: socket: too many
// open files"). It now refuses before anything is measured, and says
// what to do.
func TestMoreClientsThanThisProcessMayOpenAreRefusedAtOnce(t *testing.T) {
	defer func(f func() (uint64, bool)) { openFileLimit = f }(openFileLimit)
	openFileLimit = func() (uint64, bool) { return 300, true }
	ft := newFakeTarget(t, newFakeClock())
	opts := defaults()
	opts.URL, opts.Callback = ft.url, "http://127.0.0.1:9"
	opts.Auth, opts.Publish = AuthNone, PublishBroadcast
	opts.Connections = 400
	ios, _, out, _ := iostreams.Test()
	opts.IO, opts.Now, opts.JSON = ios, time.Now, true
	err := benchRun(context.Background(), opts)
	var fe *cmdutil.FlagError
	if !errors.As(err, &fe) || !strings.Contains(err.Error(), "ulimit -Hn") || !strings.Contains(err.Error(), "300") {
		t.Fatalf("bench = %v; want a flag error that names the limit, 300, and ulimit -Hn", err)
	}
	// The limit read is the hard one: Go raises the soft limit (what
	// `ulimit -n` shows, 1024 or macOS's 256) to it as socks starts, so
	// "ulimit -n is 300" contradicted the shell, and "ulimit -n 464"
	// over the hard limit fails in it (not permitted).
	if strings.Contains(err.Error(), "ulimit -n ") {
		t.Errorf("bench = %v; it names the soft limit (ulimit -n), which is not the one that stops it", err)
	}
	ft.mu.Lock()
	n := len(ft.conns)
	ft.mu.Unlock()
	if n != 0 || out.Len() != 0 {
		t.Errorf("%d topics connected and stdout %q before the refusal; want nothing measured", n, out)
	}
	// Under the limit, with room for the bench's own files, it runs.
	opts.Connections = 200
	if err := benchRun(context.Background(), opts); err != nil && strings.Contains(err.Error(), "ulimit") {
		t.Errorf("bench of 200 clients under a limit of 300 = %v", err)
	}
}
