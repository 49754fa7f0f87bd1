package bench

import (
	"context"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/socks-dev/socks/bench/ceiling"
	"github.com/socks-dev/socks/iostreams"
)

// TestQueuedMessagesForAnotherURLAreSaidToGoToTheLocalGateway: on the
// local backend, --url of a server that is not the local gateway with
// --publish queue (the default) waited --timeout for each message, which
// the local broker delivered to the local gateway's clients, and then
// said "message -1 did not arrive within 1m0s: is the broker running
// (socks serve)?" while the broker ran. Bench now warns before it
// measures that queued messages go to the local gateway, and the error
// says so, naming the message in words.
func TestQueuedMessagesForAnotherURLAreSaidToGoToTheLocalGateway(t *testing.T) {
	open := localBackend(t)
	startServe(t, open)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: ceiling.New()}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { srv.Close() })
	b, _ := open(context.Background())
	gw, _, err := b.Gateway(context.Background())
	if err != nil {
		t.Fatal(err)
	}

	opts := defaults()
	opts.Backend = open
	opts.URL, opts.Callback = "ws://"+ln.Addr().String()+"/", "http://"+ln.Addr().String()
	opts.Auth, opts.Publish = AuthNone, PublishQueue
	opts.Timeout = time.Second
	ios, _, _, errOut := iostreams.Test()
	opts.IO, opts.Now, opts.JSON = ios, time.Now, true
	err = benchRun(context.Background(), opts)
	if err == nil {
		t.Fatal("bench succeeded, its messages queued for a server the local broker does not post to")
	}
	for _, want := range []string{"the local gateway (" + gw + ")", "--publish broadcast"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
		if !strings.Contains(errOut.String(), want) {
			t.Errorf("stderr %q does not warn %q before measuring", errOut, want)
		}
	}
	if strings.Contains(err.Error(), "message -1") || strings.Contains(err.Error(), "is the broker running") {
		t.Errorf("error %q names an internal sequence number, or asks after a broker that runs", err)
	}
}
