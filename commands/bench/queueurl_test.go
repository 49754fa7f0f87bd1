package bench

import (
	"context"
	"errors"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/socks-dev/socks/backend"
	"github.com/socks-dev/socks/bench/ceiling"
	"github.com/socks-dev/socks/commands/cmdutil"
	"github.com/socks-dev/socks/config"
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

// TestOnAWSWithoutURLTheConfiguredStackIsNamed: `socks --backend aws
// bench` without --url said only "give --url and --callback", while the
// profile (socks deploy saves them) held the stack's URLs. It still
// measures nothing it was not pointed at (a bench costs money), and now
// names the flags with the configured URLs to copy.
func TestOnAWSWithoutURLTheConfiguredStackIsNamed(t *testing.T) {
	b := &backend.Backend{Config: config.Config{Backend: config.BackendAWS, AWS: config.AWS{
		WebSocketURL: "wss://abc123.execute-api.eu-west-1.amazonaws.com/prod",
		CallbackURL:  "https://abc123.execute-api.eu-west-1.amazonaws.com/prod",
	}}}
	opts := defaults()
	opts.Backend = func(context.Context) (*backend.Backend, error) { return b, nil }
	ios, _, out, _ := iostreams.Test()
	opts.IO, opts.Now = ios, time.Now
	err := benchRun(context.Background(), opts)
	var fe *cmdutil.FlagError
	want := "--url wss://abc123.execute-api.eu-west-1.amazonaws.com/prod --callback https://abc123.execute-api.eu-west-1.amazonaws.com/prod"
	if !errors.As(err, &fe) || !strings.Contains(err.Error(), want) {
		t.Errorf("bench = %v; want a flag error that says %q", err, want)
	}
	if out.Len() != 0 {
		t.Errorf("stdout %q; want nothing", out)
	}
}
