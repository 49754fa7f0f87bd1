package listen

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/socks-dev/socks/backend"
	"github.com/socks-dev/socks/commands/cmdutil"
	"github.com/socks-dev/socks/config"
	"github.com/socks-dev/socks/store"
)

const (
	// chatterTTL is the life of a chatter ID listen issues itself. It is
	// checked only at the upgrade, so it need not cover a whole connection;
	// a reconnect after it expired issues a new one.
	chatterTTL = time.Hour
	// chatterMargin: an issued ID this close to its expiry is replaced
	// before a reconnect rather than risk a refusal.
	chatterMargin = time.Minute
	// revokeTimeout bounds the revocation on exit.
	revokeTimeout = 5 * time.Second
)

// endpoint resolves where to connect and with which chatter ID. All it
// needs from a backend is its WebSocket URL and its store, so the local
// gateway and AWS are handled alike.
type endpoint struct {
	url     string // --url; "" asks the backend at every connect
	id      string // --id; "" issues one
	geek    string
	backend func(context.Context) (*backend.Backend, error)
	now     func() time.Time
	// stopping records the issued ID while it is to be revoked; unrecord
	// takes it back.
	stopping *cmdutil.Stopping
	unrecord func()
	// warn receives the warning that the issued ID could not be revoked.
	warn io.Writer

	secret string
	issued *store.ChatterID
	store  store.Store
	// fresh: the last chatterID call issued the ID it returned; stale:
	// the gateway refused the issued ID as expired, so the next call
	// replaces it whatever this machine's clock says (see expire).
	fresh, stale bool
	// clock is the store's clock (store.Clock), synced as an ID is
	// issued: the gateway judges the ID's expiry by it (on AWS, the
	// Lambda's), which this machine's may be set off from.
	clock store.FollowedClock

	// from names where the last URL base returned came from, for a hint
	// that asks to check it: "--url", the AWS backend's setting, or the
	// local state dir's gateway record.
	from string
}

// base returns the WebSocket URL to connect to. Asking the backend at every
// connect follows a local gateway that was restarted on another port.
func (e *endpoint) base(ctx context.Context) (string, error) {
	e.from = "--url"
	if e.url != "" {
		return e.url, nil
	}
	b, err := e.backend(ctx)
	if err != nil {
		return "", err
	}
	u, err := b.WebSocketURL(ctx)
	if err != nil && b.DB == nil {
		// The AWS backend's words name the flags of the commands that
		// post; listen takes the WebSocket URL itself.
		return "", fmt.Errorf("%w; or give listen the URL with --url wss://{api-id}.execute-api.{region}.amazonaws.com/{stage}", err)
	}
	if b.DB == nil {
		e.from = awsURLSource(b.Config)
	} else {
		e.from = "the URL socks serve recorded in the state dir " + Sanitize(b.Config.StateDir, false)
	}
	return u, err
}

// awsURLSource names the setting the AWS backend's WebSocket URL came
// from: its own, or the callback URL's it is made from.
func awsURLSource(c config.Config) string {
	if c.AWS.WebSocketURL == "" {
		return c.Origin("callback_url")
	}
	return c.Origin("websocket_url")
}

// chatterID returns the chatter ID to present: --id, or one listen issued,
// replaced when it is (about to be) expired.
func (e *endpoint) chatterID(ctx context.Context) (string, error) {
	if e.id != "" {
		return e.id, nil
	}
	e.clock.Local = e.now
	e.fresh = false
	if e.issued != nil && !e.stale && e.clock.Now().Add(chatterMargin).Before(e.issued.ExpiresAt) {
		return e.secret, nil
	}
	if e.store == nil {
		b, err := e.backend(ctx)
		if err != nil {
			return "", err
		}
		e.store = b.Store
	}
	now := e.clock.Follow(ctx, e.store)
	e.revoke(ctx)
	secret, c, err := store.IssueChatterID(ctx, e.store, e.geek, chatterTTL, now)
	if err != nil {
		return "", fmt.Errorf("issuing a chatter ID for %s: %w", e.geek, err)
	}
	e.secret, e.issued, e.fresh, e.stale = secret, &c, true, false
	e.unrecord = e.stopping.Add(cmdutil.Work{What: "revoking the chatter ID listen issued", Left: e.notRevoked("")})
	return secret, nil
}

// expire has the next chatterID call replace the ID listen issued: the
// gateway refused it as expired, by its clock, which is ahead of this
// machine's (a Lambda's on AWS; a laptop's clock set behind).
func (e *endpoint) expire() { e.stale = true }

// notRevoked says that the chatter ID listen issued is not revoked (why,
// if known: " (reason)"), when it expires and how to revoke it now.
func (e *endpoint) notRevoked(why string) string {
	fp := e.issued.Fingerprint()
	return fmt.Sprintf("the chatter ID listen issued for %s (fingerprint %s) is not revoked%s: it expires by itself at %s, or `socks chatter revoke --geek %s --id %s` revokes it now",
		e.geek, fp, why, e.issued.ExpiresAt.UTC().Format(time.RFC3339), e.geek, fp)
}

// issuedHere reports whether the chatter ID in use is one listen issued.
func (e *endpoint) issuedHere() bool { return e.id == "" }

// revoke deletes the chatter ID listen issued, if any. It works after ctx
// was cancelled (Ctrl-C), bounded by revokeTimeout.
func (e *endpoint) revoke(ctx context.Context) {
	if e.issued == nil || e.store == nil {
		return
	}
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), revokeTimeout)
	defer cancel()
	if _, err := e.store.RevokeChatterIDs(rctx, e.geek, []string{e.issued.Hash}); err != nil && e.warn != nil {
		cmdutil.Notef(e.warn, "warning: %s\n", e.notRevoked(" ("+err.Error()+")"))
	}
	e.issued, e.secret = nil, ""
	if e.unrecord != nil {
		e.unrecord()
	}
}
