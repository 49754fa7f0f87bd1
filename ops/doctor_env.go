package ops

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/url"
	"os"
	"time"

	"github.com/socks-dev/socks/backend"
	"github.com/socks-dev/socks/config"
	"github.com/socks-dev/socks/local"
)

// dialTimeout bounds the TCP connect to the gateway.
const dialTimeout = 2 * time.Second

// GatherEnv collects what the doctor's checks look at, for cfg. open opens
// the configured backend; it is not called when the local state file is
// missing (opening would create an empty one). When the user may not
// write the local state dir or file (local.ErrNotWritable), openReadOnly
// (when not nil) opens it for reading only, so that its health is still
// checked, and Env.NotWritable records why. Nothing that goes wrong here
// is returned: it is recorded in the Env for the checks to report.
func GatherEnv(ctx context.Context, cfg config.Config, open, openReadOnly func(context.Context) (*backend.Backend, error), now time.Time) *Env {
	env := &Env{Config: cfg, Now: now}
	if cfg.Backend == config.BackendLocal {
		env.StateFile = cfg.StatePath()
		// Lstat: a link to nothing planted there is not a missing file;
		// the open says what it is (see package planted).
		if _, err := os.Lstat(env.StateFile); errors.Is(err, fs.ErrNotExist) {
			env.StateFileMissing = true
			return env
		}
	}
	b, err := openBounded(ctx, open)
	if errors.Is(err, local.ErrNotWritable) && openReadOnly != nil {
		// A read-only open that fails too (an older schema, a write-ahead
		// log it cannot read) leaves the first error: writing is the fix.
		if rb, rerr := openBounded(ctx, openReadOnly); rerr == nil {
			b, err, env.NotWritable = rb, nil, err
		}
	}
	if err != nil {
		env.OpenErr = err
		return env
	}
	env.Store, env.Queue = b.Store, b.Queue
	if b.DB != nil {
		cctx, cancel := context.WithTimeout(ctx, checkTimeout)
		env.StateFileErr = b.DB.CheckIntegrity(cctx)
		if cctx.Err() != nil && ctx.Err() == nil {
			// Out of time on a large file: unchecked, not damaged.
			env.StateFileErr, env.StateFileUnchecked = nil, true
		}
		cancel()
		// An error asking is no finding: the checks read the file anyway.
		env.WriteLocked, _ = b.DB.WriteLockHeld(ctx, writeLockWait)
		// The record is read as is, not through b.Gateway, so that a
		// gateway that died without removing it is reported as down and
		// its endpoint still asked (connection refused says the same).
		env.Gateway, env.GatewayErr = readGateway(ctx, b.DB)
		if running, known := b.GatewayRunning(); env.Gateway.Recorded() && known && !running {
			env.Gateway.Stale = true
		}
		if env.GatewayErr == nil && !env.Gateway.Recorded() {
			env.Gateway.Holder = b.GatewayPID()
		}
		switch err := b.Broker(); {
		case err == nil:
			env.Gateway.Broker = true
		case !errors.Is(err, backend.ErrNoBroker):
			env.Gateway.BrokerErr = err
		}
		if env.Gateway.Recorded() {
			env.Endpoint = env.Gateway.Management
			// Only the recorded gateway's answers count: another
			// program may listen at the port of a serve that stopped.
			env.Pusher, env.PusherErr = b.RecordedGatewayPusher(ctx, env.Endpoint, 1)
		}
		return env
	}
	if b.AWS != nil {
		env.AWS = newAWSEnv(b)
	}
	if _, mgmt, err := b.Gateway(ctx); err == nil {
		env.Endpoint = mgmt // the configured callback URL
	}
	env.Pusher, env.PusherErr = b.Pusher(ctx, 1)
	return env
}

// writeLockWait is how long the doctor waits for the local state file's
// write lock before it reports the lock held: a running serve holds it
// for milliseconds at a time.
const writeLockWait = 2 * time.Second

// openBounded runs open with the time a check has: a state file another
// process holds locked has SQLite wait for it, and try again, for a
// minute in all (a read of it that ends past this bound says that it
// stayed locked for its own wait).
func openBounded(ctx context.Context, open func(context.Context) (*backend.Backend, error)) (*backend.Backend, error) {
	ctx, cancel := context.WithTimeout(ctx, checkTimeout)
	defer cancel()
	return open(ctx)
}

// readGateway reads the local gateway's record from the state file and
// tries a TCP connect to its Management endpoint.
func readGateway(ctx context.Context, db *local.DB) (GatewayRecord, error) {
	var g GatewayRecord
	for _, m := range []struct {
		key string
		dst *string
	}{
		{backend.MetaGatewayWebSocket, &g.WebSocket},
		{backend.MetaGatewayManagement, &g.Management},
		{backend.MetaGatewayPID, &g.PID},
	} {
		v, _, err := db.GetMeta(ctx, m.key)
		if err != nil {
			return GatewayRecord{}, err
		}
		*m.dst = v
	}
	if g.Management == "" {
		return GatewayRecord{}, nil
	}
	g.DialErr = dial(ctx, g.Management)
	return g, nil
}

func dial(ctx context.Context, endpoint string) error {
	u, err := url.Parse(endpoint)
	if err != nil || u.Host == "" {
		return fmt.Errorf("the recorded endpoint %q is not a URL", endpoint)
	}
	host := u.Host
	if u.Port() == "" {
		port := "80"
		if u.Scheme == "https" {
			port = "443"
		}
		host = net.JoinHostPort(u.Hostname(), port)
	}
	d := net.Dialer{Timeout: dialTimeout}
	c, err := d.DialContext(ctx, "tcp", host)
	if err != nil {
		return err
	}
	return c.Close()
}
