// Package backend opens the store, queue and pusher of the configured
// backend: the embedded local stack or AWS.
package backend

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/socks-dev/socks/awsops"
	"github.com/socks-dev/socks/config"
	"github.com/socks-dev/socks/local"
	"github.com/socks-dev/socks/store"
)

// Meta keys the local gateway records in the state file so that other
// processes find it.
const (
	MetaGatewayWebSocket  = "gateway.websocket"
	MetaGatewayManagement = "gateway.management"
	MetaGatewayPID        = "gateway.pid"
)

// Options tune Open.
type Options struct {
	Now func() time.Time
}

// Backend is an opened backend.
type Backend struct {
	Config config.Config
	Store  store.Store
	Queue  store.Queue
	// DB is the embedded database (local backend only).
	DB *local.DB
}

// ErrNoGateway says that no local gateway is running.
var ErrNoGateway = errors.New("no local gateway is running for this state dir: start one with `socks serve` (or pass --url)")

// Open opens the backend cfg selects.
func Open(ctx context.Context, cfg config.Config, opts Options) (*Backend, error) {
	switch cfg.Backend {
	case config.BackendLocal:
		if err := ensureDir(cfg.StateDir); err != nil {
			return nil, err
		}
		db, err := local.Open(ctx, cfg.StatePath(), local.Options{Now: opts.Now})
		if err != nil {
			return nil, err
		}
		return &Backend{Config: cfg, Store: db.Store(), Queue: db.Queue(), DB: db}, nil
	case config.BackendAWS:
		return nil, fmt.Errorf("the AWS backend is not available in this build yet; use the local backend (unset %s)", config.EnvBackend)
	}
	return nil, fmt.Errorf("unknown backend %q", cfg.Backend)
}

// ensureDir creates the state dir and checks it is writable, so that the
// error names the directory and the fix.
func ensureDir(dir string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("cannot create state dir %s: %w (set --state-dir or %s to a writable directory)", dir, unwrapPath(err), config.EnvStateDir)
	}
	f, err := os.CreateTemp(dir, ".probe-*")
	if err != nil {
		return fmt.Errorf("state dir %s is not writable: %w (set --state-dir or %s to a writable directory)", dir, unwrapPath(err), config.EnvStateDir)
	}
	name := f.Name()
	_ = f.Close()
	_ = os.Remove(name)
	return nil
}

func unwrapPath(err error) error {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// Close releases the backend.
func (b *Backend) Close() error {
	if b.DB != nil {
		return b.DB.Close()
	}
	return nil
}

// Gateway returns the endpoints of the running local gateway.
func (b *Backend) Gateway(ctx context.Context) (websocketURL, managementURL string, err error) {
	if b.DB == nil {
		return "", "", errors.New("no local gateway on the AWS backend")
	}
	ws, ok, err := b.DB.GetMeta(ctx, MetaGatewayWebSocket)
	if err != nil {
		return "", "", err
	}
	mgmt, ok2, err := b.DB.GetMeta(ctx, MetaGatewayManagement)
	if err != nil {
		return "", "", err
	}
	if !ok || !ok2 {
		return "", "", ErrNoGateway
	}
	return ws, mgmt, nil
}

// WebSocketURL is where clients connect.
func (b *Backend) WebSocketURL(ctx context.Context) (string, error) {
	ws, _, err := b.Gateway(ctx)
	return ws, err
}

// Pusher returns a Management API pusher for the backend, with keep-alive
// sized to concurrency.
func (b *Backend) Pusher(ctx context.Context, concurrency int) (store.Pusher, error) {
	_, mgmt, err := b.Gateway(ctx)
	if err != nil {
		return nil, err
	}
	return LocalPusher(mgmt, concurrency), nil
}

// LocalPusher is the pusher for a local gateway's Management API endpoint:
// the same SDK client code as on AWS, with dummy credentials.
func LocalPusher(endpoint string, concurrency int) store.Pusher {
	return awsops.NewPusher(awsops.NewManagementClient(awsops.LocalConfig(), endpoint, concurrency))
}

// HTTPToWS turns an http(s) base URL into ws(s).
func HTTPToWS(u string) string {
	if strings.HasPrefix(u, "https://") {
		return "wss://" + strings.TrimPrefix(u, "https://")
	}
	return "ws://" + strings.TrimPrefix(u, "http://")
}

// CheckURL validates a user-supplied URL.
func CheckURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return fmt.Errorf("bad URL %q", raw)
	}
	return nil
}
