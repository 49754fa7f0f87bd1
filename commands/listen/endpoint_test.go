package listen

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/socks-dev/socks/backend"
	"github.com/socks-dev/socks/config"
	"github.com/socks-dev/socks/store"
	"github.com/socks-dev/socks/wsclient"
)

// localBackend opens a real local backend (the embedded store) in a
// temporary state dir, with the gateway's URL recorded as serve does.
func localBackend(t *testing.T, wsURL string) *backend.Backend {
	t.Helper()
	b, err := backend.Open(t.Context(), config.Config{Backend: config.BackendLocal, StateDir: t.TempDir()}, backend.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	if wsURL != "" {
		// The backend probes the recorded Management API endpoint to tell
		// a live gateway from a crashed one's record.
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { ln.Close() })
		mgmt := "http://" + ln.Addr().String() + "/"
		for k, v := range map[string]string{backend.MetaGatewayWebSocket: wsURL, backend.MetaGatewayManagement: mgmt} {
			if err := b.DB.SetMeta(t.Context(), k, v); err != nil {
				t.Fatal(err)
			}
		}
	}
	return b
}

// clock is a settable clock.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) set(t time.Time) {
	c.mu.Lock()
	c.now = t
	c.mu.Unlock()
}

func TestTheURLAndAChatterIDComeFromTheBackend(t *testing.T) {
	b := localBackend(t, "ws://127.0.0.1:7/")
	clk := &clock{now: time.Now()}
	d := newFakeDialer()
	r := start(t, d, func(o *Options) {
		o.URL, o.ID = "", ""
		o.Backend = func(context.Context) (*backend.Backend, error) { return b, nil }
		o.Now = clk.Now
	})
	c1 := d.next(t)
	if !strings.HasPrefix(c1.url, "ws://127.0.0.1:7/?") {
		t.Errorf("connected to %s; want the gateway the backend records", c1.url)
	}
	id1 := c1.presented(t)
	if _, err := b.Store.VerifyChatterID(t.Context(), "alice", id1, clk.Now()); err != nil {
		t.Fatalf("the issued chatter ID does not verify: %v", err)
	}

	// The gateway restarts on another port, and the chatter ID expires
	// before the reconnect: both are picked up.
	if err := b.DB.SetMeta(t.Context(), backend.MetaGatewayWebSocket, "ws://127.0.0.1:8/"); err != nil {
		t.Fatal(err)
	}
	later := clk.Now().Add(chatterTTL + time.Minute)
	clk.set(later)
	c1.end(goingAway)
	c2 := d.next(t)
	if !strings.HasPrefix(c2.url, "ws://127.0.0.1:8/?") {
		t.Errorf("reconnected to %s; want the restarted gateway", c2.url)
	}
	id2 := c2.presented(t)
	if id2 == id1 {
		t.Fatal("the expired chatter ID was presented again")
	}
	if _, err := b.Store.VerifyChatterID(t.Context(), "alice", id2, later); err != nil {
		t.Errorf("the re-issued chatter ID does not verify: %v", err)
	}
	if ids, _ := b.Store.ListChatterIDs(t.Context(), "alice"); len(ids) != 1 {
		t.Errorf("%d chatter IDs recorded; the expired one should be revoked", len(ids))
	}

	r.cancel()
	if err := r.end(); err != nil {
		t.Fatal(err)
	}
	if ids, _ := b.Store.ListChatterIDs(t.Context(), "alice"); len(ids) != 0 {
		t.Errorf("%d chatter IDs left after exit; listen must revoke the one it issued", len(ids))
	}
}

func TestAGivenChatterIDIsNeitherIssuedNorRevoked(t *testing.T) {
	b := localBackend(t, "ws://127.0.0.1:7/")
	d := newFakeDialer()
	r := start(t, d, func(o *Options) {
		o.URL, o.ID = "", "given"
		o.Backend = func(context.Context) (*backend.Backend, error) { return b, nil }
	})
	if id := d.next(t).presented(t); id != "given" {
		t.Errorf("presented %q; want --id", id)
	}
	r.cancel()
	r.end()
	if ids, _ := b.Store.ListChatterIDs(t.Context(), "alice"); len(ids) != 0 {
		t.Errorf("%d chatter IDs issued though --id was given", len(ids))
	}
}

func TestNoRunningGateway(t *testing.T) {
	b := localBackend(t, "")
	d := newFakeDialer()
	r := start(t, d, func(o *Options) {
		o.URL = ""
		o.Backend = func(context.Context) (*backend.Backend, error) { return b, nil }
	})
	err := r.end()
	if exitCode(err) != 1 || !strings.Contains(err.Error(), "socks serve") {
		t.Errorf("err %v; want exit 1 naming socks serve", err)
	}
	if d.dials() != 0 {
		t.Errorf("%d dials without a URL", d.dials())
	}
}

func TestAStoppedGatewayIsWaitedFor(t *testing.T) {
	b := localBackend(t, "ws://127.0.0.1:7/")
	d := newFakeDialer()
	r := start(t, d, func(o *Options) {
		o.URL = ""
		o.Backend = func(context.Context) (*backend.Backend, error) { return b, nil }
		o.Backoff = Backoff{Min: 20 * time.Millisecond, Max: 20 * time.Millisecond}
	})
	c1 := d.next(t)
	// serve stops cleanly: it removes its URL, then comes back.
	if err := b.DB.DeleteMeta(t.Context(), backend.MetaGatewayWebSocket); err != nil {
		t.Fatal(err)
	}
	c1.end(goingAway)
	r.waitFor(map[string]any{"state": "reconnecting", "attempt": 2})
	if err := b.DB.SetMeta(t.Context(), backend.MetaGatewayWebSocket, "ws://127.0.0.1:9/"); err != nil {
		t.Fatal(err)
	}
	if c := d.next(t); !strings.HasPrefix(c.url, "ws://127.0.0.1:9/") {
		t.Errorf("reconnected to %s", c.url)
	}
}

func TestAnIssuedChatterIDRevokedWhileListeningSaysSo(t *testing.T) {
	// The gateway took listen's own chatter ID, then someone revoked it
	// (socks chatter revoke --all): the hint said to point --url and
	// --state-dir at the same installation, which they were.
	b := localBackend(t, "ws://127.0.0.1:7/")
	d := newFakeDialer(nil, &wsclient.HandshakeError{Status: 403, Reason: "chatter ID unknown"})
	r := start(t, d, func(o *Options) {
		o.URL, o.ID = "", ""
		o.Backend = func(context.Context) (*backend.Backend, error) { return b, nil }
	})
	d.next(t).end(goingAway)
	err := r.end()
	if exitCode(err) != 5 || !strings.Contains(err.Error(), "revoked") || strings.Contains(err.Error(), "so the gateway checks another store") {
		t.Errorf("err %v; want exit 5 saying it was revoked", err)
	}
}

func TestAChatterIDListenCannotIssueIsNotBlamedOnTheGateway(t *testing.T) {
	b := localBackend(t, "ws://127.0.0.1:7/")
	for range store.DefaultMaxLiveChatterIDs {
		if _, _, err := store.IssueChatterID(t.Context(), b.Store, "alice", time.Hour, time.Now()); err != nil {
			t.Fatal(err)
		}
	}
	d := newFakeDialer()
	r := start(t, d, func(o *Options) {
		o.URL, o.ID = "", ""
		o.Backend = func(context.Context) (*backend.Backend, error) { return b, nil }
	})
	err := r.end()
	if err == nil || !strings.Contains(err.Error(), "already holds 100 live chatter IDs") || strings.Contains(err.Error(), "is the gateway running") {
		t.Errorf("err %v; want the limit, without a hint about the gateway", err)
	}
	if d.dials() != 0 {
		t.Errorf("%d dials; want none without a chatter ID", d.dials())
	}
}

// silentGateway accepts TCP connections and never answers the upgrade.
func silentGateway(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var held []net.Conn
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		defer mu.Unlock()
		for _, c := range held {
			c.Close()
		}
	})
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			held = append(held, c)
			mu.Unlock()
		}
	}()
	return "ws://" + ln.Addr().String() + "/"
}

// dialWithin is the real dial with a short handshake bound.
func dialWithin(ctx context.Context, u string, opts wsclient.Options) (Conn, error) {
	opts.HandshakeTimeout = 200 * time.Millisecond
	return dialWS(ctx, u, opts)
}

// wantStuck fails unless err is exit 1 saying the handshake got no answer
// within 200ms and that the gateway took the connection but could not
// finish it, rather than asking whether it runs.
func wantStuck(t *testing.T, err error) {
	t.Helper()
	msg := fmt.Sprint(err)
	if exitCode(err) != 1 || !strings.Contains(msg, "no answer to the WebSocket handshake within 200ms") ||
		!strings.Contains(msg, "the gateway took the connection but could not finish it") || !strings.Contains(msg, "store") ||
		strings.Contains(msg, "is the gateway running") {
		t.Errorf("err %v; want exit 1: no answer to the handshake, the gateway took the connection but could not finish it (its store may be stuck)", err)
	}
}

// TestAGatewayWhoseStoreDoesNotAnswerIsNotSaidToBeStopped: a gateway that
// takes the HTTP request and stalls the upgrade (its state file or its
// DynamoDB does not answer) is stuck, not stopped.
func TestAGatewayWhoseStoreDoesNotAnswerIsNotSaidToBeStopped(t *testing.T) {
	stop := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-stop:
		}
	}))
	t.Cleanup(func() {
		close(stop)
		srv.Close()
	})
	r := start(t, newFakeDialer(), func(o *Options) { o.Dial, o.URL = dialWithin, "ws"+strings.TrimPrefix(srv.URL, "http")+"/" })
	wantStuck(t, r.end())
}

func TestAGatewayThatNeverAnswersTheUpgradeIsGivenUpOnInBoundedTime(t *testing.T) {
	t.Run("the first connection fails, saying so", func(t *testing.T) {
		r := start(t, newFakeDialer(), func(o *Options) { o.Dial, o.URL = dialWithin, silentGateway(t) })
		err := r.end()
		wantStuck(t, err)
	})
	t.Run("a renewal fails, and the connection it would replace goes on", func(t *testing.T) {
		d := newFakeDialer()
		silent := silentGateway(t)
		r := start(t, d, func(o *Options) {
			o.MaxConnection = 50 * time.Millisecond
			o.Dial = func(ctx context.Context, u string, opts wsclient.Options) (Conn, error) {
				if d.dials() == 0 {
					return d.dial(ctx, u, opts)
				}
				return dialWithin(ctx, strings.Replace(u, "ws://127.0.0.1:1/", silent, 1), opts)
			}
		})
		c1 := d.next(t)
		r.waitFor(map[string]any{"state": "renewing", "error": "failed, trying again in 5s: ws://127.0.0.1:1/: no answer to the WebSocket handshake within 200ms"})
		c1.push(t, `{"n":1}`)
		r.waitFor(map[string]any{"kind": "message", "body": map[string]any{"n": 1}})
	})
}

// On the AWS backend with no gateway configured, listen names its own
// --url: the backend's message names only --callback-url and environment
// variables, flags other commands take.
func TestAnAWSBackendWithoutAGatewayNamesURL(t *testing.T) {
	b := &backend.Backend{Config: config.Config{Backend: config.BackendAWS}}
	d := newFakeDialer()
	r := start(t, d, func(o *Options) {
		o.URL = ""
		o.Backend = func(context.Context) (*backend.Backend, error) { return b, nil }
	})
	err := r.end()
	if exitCode(err) != 1 || !strings.Contains(err.Error(), "--url wss://") {
		t.Errorf("err %v; want exit 1 naming --url", err)
	}
	if d.dials() != 0 {
		t.Errorf("%d dials without a URL", d.dials())
	}
}

// On the AWS backend without --url, the URL listen connects to is the
// one configured (--websocket-url, $SOCKS_WEBSOCKET_URL, a profile's
// websocket_url, or the callback URL's): a hint that asked to check the
// host in --url, or to check --url, sent the user to a flag they never
// gave.
func TestAnUnreachedGatewayNamesWhereItsURLCameFrom(t *testing.T) {
	notFound := &net.OpError{Op: "dial", Net: "tcp", Err: &net.DNSError{Err: "no such host", Name: "gatway.example", IsNotFound: true}}
	refused := &net.OpError{Op: "dial", Net: "tcp", Err: &os.SyscallError{Syscall: "connect", Err: syscall.ECONNREFUSED}}
	for _, tc := range []struct {
		name    string
		ws, cb  string
		sources map[string]string
		dialErr error
		want    string
	}{
		{"a host DNS does not know, from the environment", "wss://gatway.example/dev", "", map[string]string{"websocket_url": "env"}, notFound, "check the host in $" + config.EnvWebSocket},
		{"a host DNS does not know, from a flag", "wss://gatway.example/dev", "", map[string]string{"websocket_url": "flag"}, notFound, "check the host in --websocket-url"},
		{"a host DNS does not know, from a profile's callback URL", "", "https://gatway.example/dev", map[string]string{"callback_url": "profile dev"}, notFound, "check the host in callback_url of profile dev"},
		{"nothing listening, from the environment", "", "https://gatway.example/dev", map[string]string{"callback_url": "env"}, refused, "check $" + config.EnvCallback},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := config.Config{Backend: config.BackendAWS, Sources: tc.sources}
			cfg.AWS.WebSocketURL, cfg.AWS.CallbackURL = tc.ws, tc.cb
			b := &backend.Backend{Config: cfg}
			d := newFakeDialer(tc.dialErr)
			r := start(t, d, func(o *Options) {
				o.URL = ""
				o.Backend = func(context.Context) (*backend.Backend, error) { return b, nil }
			})
			err := r.end()
			if exitCode(err) != 1 || !strings.Contains(err.Error(), tc.want) || strings.Contains(err.Error(), "check --url") || strings.Contains(err.Error(), "in --url") {
				t.Errorf("err %v; want exit 1 saying %q, not --url", err, tc.want)
			}
		})
	}
}

// refusingRevokes is a store whose revocations fail.
type refusingRevokes struct{ store.Store }

func (refusingRevokes) RevokeChatterIDs(context.Context, string, []string) (int, error) {
	return 0, fmt.Errorf("the store did not answer (injected)")
}

// TestAChatterIDListenCouldNotRevokeIsAWarningSayingWhenItExpires: listen
// said nothing when the revocation of the chatter ID it issued failed (a
// store that did not answer within 5 s), though that ID stayed valid for
// up to an hour.
func TestAChatterIDListenCouldNotRevokeIsAWarningSayingWhenItExpires(t *testing.T) {
	b := localBackend(t, "ws://127.0.0.1:7/")
	real := b.Store
	b.Store = refusingRevokes{real}
	d := newFakeDialer()
	r := start(t, d, func(o *Options) {
		o.URL, o.ID = "", ""
		o.Backend = func(context.Context) (*backend.Backend, error) { return b, nil }
		o.Now = time.Now
	})
	d.next(t)
	r.cancel()
	if err := r.end(); err != nil {
		t.Fatal(err)
	}
	ids, err := real.ListChatterIDs(t.Context(), "alice")
	if err != nil || len(ids) != 1 {
		t.Fatalf("chatter IDs of alice: %v, %v; want the one listen could not revoke", ids, err)
	}
	want := fmt.Sprintf("warning: the chatter ID listen issued for alice (fingerprint %s) is not revoked (the store did not answer (injected)): it expires by itself at %s, or `socks chatter revoke --geek alice --id %s` revokes it now\n",
		ids[0].Fingerprint(), ids[0].ExpiresAt.UTC().Format(time.RFC3339), ids[0].Fingerprint())
	if got := r.errOut.String(); !strings.Contains(got, want) {
		t.Errorf("stderr %q; want it to say %q", got, want)
	}
}

// TestOnTheLocalBackendWithoutURLTheStateDirsGatewayIsNamed: listen without
// --url connects to the gateway the state dir recorded; a hint that says
// to check --url names a flag the user never gave.
func TestOnTheLocalBackendWithoutURLTheStateDirsGatewayIsNamed(t *testing.T) {
	refused := &net.OpError{Op: "dial", Net: "tcp", Err: &os.SyscallError{Syscall: "connect", Err: syscall.ECONNREFUSED}}
	for _, tc := range []struct {
		name    string
		dialErr error
	}{
		{"nothing listening", refused},
		{"a status without a hint of its own", &wsclient.HandshakeError{Status: http.StatusMethodNotAllowed}},
		{"not a WebSocket endpoint", &wsclient.HandshakeError{Status: http.StatusOK}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := localBackend(t, "ws://127.0.0.1:7/")
			r := start(t, newFakeDialer(tc.dialErr), func(o *Options) {
				o.URL = ""
				o.Backend = func(context.Context) (*backend.Backend, error) { return b, nil }
			})
			err := r.end()
			if err == nil || !strings.Contains(err.Error(), b.Config.StateDir) || strings.Contains(err.Error(), "--url") {
				t.Errorf("err %v; want it to name the gateway recorded in %s, not --url", err, b.Config.StateDir)
			}
		})
	}
}

// expiredByTheGateway is the gateway's refusal of a chatter ID past its
// expiry by its own clock (docs/protocol.md).
var expiredByTheGateway = &wsclient.HandshakeError{Status: http.StatusForbidden, Reason: "chatter ID expired: issue a new one"}

// TestAChatterIDTheGatewaysClockExpiredIsReplaced: listen judges the
// life of the chatter ID it issued by this machine's clock, the gateway
// (a Lambda on AWS) by its own. With this machine's clock behind, a
// reconnect presented an ID the gateway took for expired, and listen
// stopped (exit 5, blaming another store). It issues a new one, once,
// and revokes the old.
func TestAChatterIDTheGatewaysClockExpiredIsReplaced(t *testing.T) {
	b := localBackend(t, "ws://127.0.0.1:7/")
	d := newFakeDialer(nil, expiredByTheGateway)
	r := start(t, d, func(o *Options) {
		o.URL, o.ID = "", ""
		o.Backend = func(context.Context) (*backend.Backend, error) { return b, nil }
	})
	c1 := d.next(t)
	first := c1.presented(t)
	c1.end(goingAway)
	c3 := d.next(t)
	if got := c3.presented(t); got == first || got == "" {
		t.Errorf("reconnected with chatter ID %q; want a new one", got)
	}
	ids, err := b.Store.ListChatterIDs(t.Context(), "alice")
	if err != nil || len(ids) != 1 {
		t.Errorf("chatter IDs of alice: %v, %v; want the new one only, the old revoked", ids, err)
	}
	r.cancel()
	if err := r.end(); err != nil {
		t.Fatal(err)
	}
}

// TestAChatterIDExpiredAsSoonAsIssuedSaysTheClockIsBehind: an ID listen
// has just issued, valid for an hour by this machine's clock, that the
// gateway takes for expired says this machine's clock is behind the
// gateway's by more than that; the hint blamed another store. Listen
// stops (exit 5) rather than issue IDs in a loop.
func TestAChatterIDExpiredAsSoonAsIssuedSaysTheClockIsBehind(t *testing.T) {
	for _, tc := range []struct {
		name   string
		script []error
	}{
		{"at the first connect", []error{expiredByTheGateway}},
		{"at a reconnect, replaced once", []error{nil, expiredByTheGateway, expiredByTheGateway}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := localBackend(t, "ws://127.0.0.1:7/")
			d := newFakeDialer(tc.script...)
			r := start(t, d, func(o *Options) {
				o.URL, o.ID = "", ""
				o.Backend = func(context.Context) (*backend.Backend, error) { return b, nil }
			})
			if tc.script[0] == nil {
				d.next(t).end(goingAway)
			}
			err := r.end()
			if exitCode(err) != 5 || !strings.Contains(err.Error(), "clock") || strings.Contains(err.Error(), "another store") {
				t.Errorf("err %v; want exit 5 saying this machine's clock is behind", err)
			}
			if d.dials() != len(tc.script) {
				t.Errorf("%d dials; want %d", d.dials(), len(tc.script))
			}
		})
	}
}

// clockedStore is a store whose records carry another clock's times (on
// AWS, the Lambda judges expiry by AWS's): store.Clock.
type clockedStore struct {
	store.Store
	now time.Time
}

func (s clockedStore) Now(context.Context) (time.Time, error) { return s.now, nil }

// TestTheChatterIDListenIssuesLivesAnHourByTheStoresClock: issued from a
// machine whose clock was set hours behind, it expired before it was
// used; its times are the store's clock's.
func TestTheChatterIDListenIssuesLivesAnHourByTheStoresClock(t *testing.T) {
	b := localBackend(t, "ws://127.0.0.1:7/")
	b.Store = clockedStore{b.Store, at}
	d := newFakeDialer()
	r := start(t, d, func(o *Options) {
		o.URL, o.ID = "", ""
		o.Backend = func(context.Context) (*backend.Backend, error) { return b, nil }
		o.Now = func() time.Time { return at.Add(-3 * time.Hour) }
	})
	d.next(t)
	ids, err := b.Store.ListChatterIDs(t.Context(), "alice")
	if err != nil || len(ids) != 1 || !ids[0].ExpiresAt.Equal(at.Add(chatterTTL)) {
		t.Errorf("chatter IDs of alice: %v, %v; want one expiring %v, an hour by the store's clock", ids, err, at.Add(chatterTTL))
	}
	r.cancel()
	if err := r.end(); err != nil {
		t.Fatal(err)
	}
}

// TestAChatterIDGivenThatTheGatewayTakesForExpiredIsNeverReplaced: an ID
// passed with --id (or --id-file, $SOCKS_CHATTER_ID) is the caller's:
// refused as expired, at the first connect or a reconnect, listen issues
// none in its place and stops (exit 5) after that one dial.
func TestAChatterIDGivenThatTheGatewayTakesForExpiredIsNeverReplaced(t *testing.T) {
	for _, script := range [][]error{{expiredByTheGateway}, {nil, expiredByTheGateway}} {
		b := localBackend(t, "ws://127.0.0.1:7/")
		d := newFakeDialer(script...)
		r := start(t, d, func(o *Options) {
			o.URL = ""
			o.Backend = func(context.Context) (*backend.Backend, error) { return b, nil }
		})
		if script[0] == nil {
			d.next(t).end(goingAway)
		}
		if err := r.end(); exitCode(err) != 5 {
			t.Errorf("err %v; want exit 5", err)
		}
		if d.dials() != len(script) {
			t.Errorf("%d dials; want %d, no ID issued in its place", d.dials(), len(script))
		}
		if ids, err := b.Store.ListChatterIDs(t.Context(), "alice"); err != nil || len(ids) != 0 {
			t.Errorf("chatter IDs of alice: %v, %v; want none issued", ids, err)
		}
	}
}
