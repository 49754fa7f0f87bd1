package backend

import (
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/socks-dev/socks/config"
	"github.com/socks-dev/socks/local"
)

// TestAnOlderStateFileIsNotMigratedUnderARunningServeOrBroker: a new
// socks opening a state file of an older schema while `socks serve` or
// `socks broker` of the older socks runs on it (they hold the gateway and
// broker locks) refuses to bring the schema up to date, which that process
// would go on using without an error, and says which process to stop; the
// file keeps its version. (local's TestAnOlderFileInUseIsNotMigrated
// shows the migration once none runs.)
func TestAnOlderStateFileIsNotMigratedUnderARunningServeOrBroker(t *testing.T) {
	ctx := t.Context()
	cfg := config.Config{Backend: config.BackendLocal, StateDir: t.TempDir()}
	running, err := Open(ctx, cfg, Options{}) // the older socks's process
	if err != nil {
		t.Fatal(err)
	}
	defer running.Close()
	var current int
	raw, err := sql.Open("sqlite", cfg.StatePath())
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	if err := raw.QueryRow(`PRAGMA user_version`).Scan(&current); err != nil {
		t.Fatal(err)
	}
	older := current - 1
	if _, err := raw.Exec(fmt.Sprintf(`PRAGMA user_version = %d`, older)); err != nil {
		t.Fatal(err)
	}
	refused := func(t *testing.T, who string) {
		t.Helper()
		b, err := Open(ctx, cfg, Options{})
		if err == nil {
			b.Close()
			t.Fatalf("Open of an older state file in use by %s succeeded", who)
		}
		if !errors.Is(err, local.ErrInUseByOlder) || strings.Count(err.Error(), "\n") != 0 {
			t.Fatalf("Open: %v; want one line wrapping local.ErrInUseByOlder", err)
		}
		for _, want := range []string{who, "stop it, then run this command again"} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("error %q does not say %q", err, want)
			}
		}
		var v int
		if err := raw.QueryRow(`PRAGMA user_version`).Scan(&v); err != nil || v != older {
			t.Fatalf("user_version after the refused Open = %d, %v; want %d", v, err, older)
		}
	}

	releaseGateway, locked, err := running.HoldGateway()
	if err != nil || !locked {
		t.Fatalf("HoldGateway: %v (locked %v)", err, locked)
	}
	if err := running.DB.SetMeta(ctx, MetaGatewayPID, "4242"); err != nil {
		t.Fatal(err)
	}
	releaseBroker, err := running.HoldBroker()
	if err != nil {
		t.Fatal(err)
	}
	t.Run("serve", func(t *testing.T) { refused(t, "`socks serve` (pid 4242)") })
	releaseGateway()
	t.Run("broker", func(t *testing.T) { refused(t, "a broker (`socks broker`") })
	releaseBroker()

	// Nothing runs: the read-only open (socks subs --json on a read-only
	// state dir) still refuses, as for any older file, and says a
	// command that writes brings it up to date.
	if _, err := Open(ctx, cfg, Options{ReadOnly: true}); !errors.Is(err, local.ErrOlderSchema) {
		t.Fatalf("read-only Open of the older file: %v; want local.ErrOlderSchema", err)
	}
}
