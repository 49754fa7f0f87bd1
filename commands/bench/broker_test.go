package bench

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/socks-dev/socks/backend"
	"github.com/socks-dev/socks/commands/serve"
	"github.com/socks-dev/socks/iostreams"
)

// TestABenchWithNoBrokerToDeliverFailsAtOnce: with `socks serve
// --no-broker` and no `socks broker`, nothing delivers the local queue:
// bench issued its chatter IDs, connected, and waited --timeout (a
// minute by default) for a message that could not come. It now says so
// before it measures anything, as `publish` does.
func TestABenchWithNoBrokerToDeliverFailsAtOnce(t *testing.T) {
	open := localBackend(t)
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan struct{})
	done := make(chan error, 1)
	sios, _, _, _ := iostreams.Test()
	go func() {
		done <- serve.Run(ctx, &serve.Options{
			IO: sios, Backend: open, Now: time.Now, Addr: "127.0.0.1:0", NoBroker: true,
			IdleTimeout: time.Minute, MaxDuration: time.Hour, Concurrency: 32, Quiet: true,
			Ready: func(string, string) { close(ready) },
		})
	}()
	select {
	case <-ready:
	case err := <-done:
		t.Fatalf("serve: %v", err)
	}
	t.Cleanup(func() { cancel(); <-done })

	opts := defaults()
	opts.Backend = open
	opts.Timeout = 30 * time.Second
	ios, _, out, _ := iostreams.Test()
	opts.IO, opts.Now, opts.JSON = ios, time.Now, true
	err := benchRun(context.Background(), opts)
	if !errors.Is(err, backend.ErrNoBroker) {
		t.Fatalf("bench = %v; want %v", err, backend.ErrNoBroker)
	}
	if out.Len() != 0 {
		t.Errorf("stdout %q; want nothing measured", out)
	}
	b, _ := open(context.Background())
	if ids, err := b.Store.ListChatterIDs(context.Background(), ""); err != nil || len(ids) != 0 {
		t.Errorf("chatter IDs %v (%v); want none issued", ids, err)
	}
	if !strings.Contains(err.Error(), "socks broker") {
		t.Errorf("error %q does not say what to start", err)
	}
}
