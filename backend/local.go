//go:build !socks.lambdaonly

package backend

import (
	"context"
	"fmt"
	"os"
	"strconv"

	"github.com/socks-dev/socks/config"
	"github.com/socks-dev/socks/local"
)

// The local backend: the embedded database of the state dir (SQLite). The
// Lambda-only build (nolocal.go) links none of it.

// localDB is the local backend's database (Backend.DB).
type localDB = local.DB

// openLocal is Open of the local backend.
func openLocal(ctx context.Context, cfg config.Config, opts Options) (*Backend, error) {
	if !opts.ReadOnly {
		if err := ensureDir(cfg.StateDir); err != nil {
			return nil, err
		}
	}
	inUse := func(ctx context.Context, db *local.DB) string {
		return (&Backend{Config: cfg, DB: db}).runningProcess(ctx)
	}
	db, err := local.Open(ctx, cfg.StatePath(), local.Options{Now: opts.Now, ReadOnly: opts.ReadOnly, InUse: inUse})
	if err != nil {
		return nil, err
	}
	return &Backend{Config: cfg, Store: db.Store(), Queue: db.Queue(), DB: db}, nil
}

// ensureDir creates the state dir and checks it is writable, and that
// only its user may write there (checkOwnDir), so that the error names the
// directory and the fix.
func ensureDir(dir string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("cannot create state dir %s: %w (set --state-dir or %s to a writable directory)", dir, unwrapPath(err), config.EnvStateDir)
	}
	if err := checkOwnDir(dir); err != nil {
		return err
	}
	if err := dirWritable(dir); err != nil {
		return local.DirNotWritable(dir, err)
	}
	return nil
}

// runningProcess names the long-running process of the local state dir,
// a gateway (`socks serve`, with its PID when recorded) or a broker
// (`socks broker`, or `socks serve` starting), or returns "" when none
// runs or that cannot be told. local.Open asks it before it brings an
// older state file's schema up to date, which such a process of an older
// socks would not survive.
func (b *Backend) runningProcess(ctx context.Context) string {
	serve := "`socks serve`"
	if pid, ok, _ := b.DB.GetMeta(ctx, MetaGatewayPID); ok && pid != "" {
		serve += " (pid " + pid + ")"
	} else if pid := b.GatewayPID(); pid > 0 {
		serve += " (pid " + strconv.Itoa(pid) + ")"
	}
	running, known := b.GatewayRunning()
	if running {
		return serve
	}
	if !known {
		if _, _, err := b.Gateway(ctx); err == nil {
			return serve // recorded, and something answers at its address
		}
	}
	if running, _ := b.whileNoBroker(nil); running {
		return "a broker (`socks broker`, or `socks serve`)"
	}
	return ""
}
