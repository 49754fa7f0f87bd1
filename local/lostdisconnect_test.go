package local

import (
	"context"
	"log/slog"
	"net"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/socks-dev/socks/gateway"
	"github.com/socks-dev/socks/internal/lockedbuf"
	"github.com/socks-dev/socks/pubsub"
	"github.com/socks-dev/socks/routes"
	"github.com/socks-dev/socks/store"
)

// TestADisconnectDuringAWriteOutageFreesItsPlaceUnderTheCapOnceWritesPass:
// a client that leaves while the state file takes no writes (its
// $disconnect fails) left its record, which counted against its geek's
// --max-connections-per-geek until it expired (2 h): a geek at the cap
// was refused (429) for that long. The gateway calls that $disconnect
// again once writes pass, and the geek connects again.
func TestADisconnectDuringAWriteOutageFreesItsPlaceUnderTheCapOnceWritesPass(t *testing.T) {
	db := openTest(t, Options{})
	ctx := t.Context()
	secret, _, err := store.IssueChatterID(ctx, db.Store(), "alice", time.Hour, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	var logs lockedbuf.Buffer
	logger := slog.New(slog.NewTextHandler(&logs, nil))
	h := &routes.Handler{Store: db.Store(), MaxConnectionsPerGeek: 1, Logger: logger}
	g, err := gateway.New(gateway.Options{Handler: h, Routes: routes.ActionRoutes, Logger: logger,
		// The sweep, which calls failed $disconnects again, every 100 ms.
		IdleTimeout: 800 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go g.Serve(ln)
	t.Cleanup(func() {
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = g.Shutdown(sctx)
	})
	dial := func() (*websocket.Conn, int, error) {
		u := url.URL{Scheme: "ws", Host: ln.Addr().String(), Path: "/", RawQuery: url.Values{"geek": {"alice"}, "id": {secret}}.Encode()}
		ws, resp, err := websocket.DefaultDialer.DialContext(ctx, u.String(), nil)
		status := 0
		if resp != nil {
			status = resp.StatusCode
		}
		return ws, status, err
	}
	aliceRecords := func() (int, error) {
		n := 0
		err := db.Store().ListConnections(ctx, store.ConnectionFilter{Geek: "alice"}, time.Now(), func(page []pubsub.Connection) error {
			n += len(page)
			return nil
		})
		return n, err
	}
	ws, _, err := dial()
	if err != nil {
		t.Fatal(err)
	}
	if err := refuseWrites(db, true); err != nil {
		t.Fatal(err)
	}
	ws.Close()
	waitFor(t, "the $disconnect failed", func() bool { return strings.Contains(logs.String(), "$disconnect handler failed") })
	if n, err := aliceRecords(); err != nil || n != 1 {
		t.Fatalf("%d records of alice (%v) after her $disconnect failed; want 1", n, err)
	}
	if err := refuseWrites(db, false); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "alice's record deleted once writes pass", func() bool {
		n, err := aliceRecords()
		return err == nil && n == 0
	})
	ws, status, err := dial()
	if err != nil {
		t.Fatalf("alice connecting again: %v (status %d); want her place under the cap free", err, status)
	}
	ws.Close()
}

// waitFor waits (boundedly) for cond.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within 10s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
