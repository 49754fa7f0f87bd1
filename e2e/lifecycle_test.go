package e2e

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/socks-dev/socks/commands/publish"
)

// TestCtrlCClosesClientsCleanly interrupts `socks serve` with clients
// connected: each gets a close frame 1001, serve exits 0, and afterwards
// the CLI knows no gateway is running.
func TestCtrlCClosesClientsCleanly(t *testing.T) {
	t.Parallel()
	s := newStack(t)
	srv := s.serve()
	clients := []struct {
		name string
		conn *websocket.Conn
	}{
		{"alice on updates", mustDial(t, srv.connectURL("alice", s.issue("alice"), "updates"))},
		{"bob on every topic", mustDial(t, srv.connectURL("bob", s.issue("bob"), ""))},
	}
	// Each client reads until its connection ends, the way a browser would.
	closed := make([]chan error, len(clients))
	for i, c := range clients {
		closed[i] = make(chan error, 1)
		go func() {
			_ = c.conn.SetReadDeadline(time.Now().Add(stopTimeout + receiveTimeout))
			for {
				if _, _, err := c.conn.ReadMessage(); err != nil {
					closed[i] <- err
					return
				}
			}
		}()
	}

	srv.interrupt()

	for i, c := range clients {
		t.Run(c.name+" gets close code 1001", func(t *testing.T) {
			var err error
			select {
			case err = <-closed[i]:
			case <-time.After(stopTimeout + receiveTimeout + time.Second):
				t.Fatal("the connection did not end")
			}
			var ce *websocket.CloseError
			if !errors.As(err, &ce) {
				t.Fatalf("the connection ended with %v; want a close frame", err)
			}
			if ce.Code != websocket.CloseGoingAway {
				t.Errorf("close code %d %q; want %d (going away)", ce.Code, ce.Text, websocket.CloseGoingAway)
			}
		})
	}

	t.Run("serve exits 0 in time", func(t *testing.T) {
		code, ok := srv.wait(stopTimeout)
		if !ok {
			t.Fatalf("serve still runs %s after SIGINT", stopTimeout)
		}
		if code != 0 {
			t.Errorf("serve exited %d; want 0\nstderr: %q", code, srv.stderr)
		}
	})

	t.Run("publish --direct then says no gateway is running", func(t *testing.T) {
		r := s.run("publish", "--topic", "updates", "--message", "anyone?", "--direct")
		checkFailure(t, r, 1, "no local gateway is running")
	})

	t.Run("a queued publish then says the message waits for serve", func(t *testing.T) {
		r := s.run("publish", "--topic", "updates", "--message", "later")
		if r.code != 0 || r.stdout == "" {
			t.Fatalf("want exit 0 and the message ID on stdout:\n%s", r)
		}
		if !strings.Contains(r.stderr, "waits in the queue") {
			t.Errorf("stderr %q; want a note that the message waits in the queue", r.stderr)
		}
	})

	t.Run("the next serve starts with no leftover connections", func(t *testing.T) {
		s.serve()
		if n := s.countConnections(); n != 0 {
			t.Errorf("the state holds %d connections; want 0 (each closed connection's record is deleted)", n)
		}
	})
}

// TestMessageOutlivesAKilledGateway kills `socks serve` with SIGKILL, so
// that its client's connection record stays behind, publishes while no
// gateway runs, and starts a new serve: the waiting message is handled (not
// lost, not failed), and the dead connection is forgotten by the new serve
// as it starts, so it is no target. (Its client never reconnects, so the
// new serve's broker waits out its reconnect grace, 10 s, first.)
func TestMessageOutlivesAKilledGateway(t *testing.T) {
	t.Parallel()
	s := newStack(t)
	first := s.serve()
	mustDial(t, first.connectURL("alice", s.issue("alice"), "updates"))
	first.kill()

	// The message goes on the queue while no gateway runs (publish needs
	// only the state file; --wait would refuse, as nothing could handle
	// it yet); the next serve's broker handles it, whenever exactly it
	// lands, and records its report in the state file.
	const id = "m-outlives-the-gateway"
	r := s.run("publish", "--geek", "alice", "--topic", "updates", "--body", `{"n":2}`, "--id", id)
	if r.code != 0 || strings.TrimSpace(r.stdout) != id || !strings.Contains(r.stderr, "waits in the queue") {
		t.Fatalf("want exit 0, the ID and a note that the message waits:\n%s", r)
	}

	second := s.serve()
	report, err := publish.WaitReport(testContext(t, commandTimeout), s.openState().Store(), id, 20*time.Second)
	if err != nil {
		t.Fatalf("the broker of the next serve did not handle the waiting message: %v", err)
	}
	rep := &report
	t.Run("the waiting message is handled without failures", func(t *testing.T) {
		if rep.Failed != 0 || rep.Delivered != 0 {
			t.Errorf("report %+v; want nothing delivered and nothing failed", *rep)
		}
	})
	t.Run("the dead connection is no target", func(t *testing.T) {
		if rep.Targets != 0 || rep.Gone != 0 {
			t.Errorf("report %+v; want no targets", *rep)
		}
	})
	t.Run("the dead connection's record is deleted", func(t *testing.T) {
		if n := s.countConnections(); n != 0 {
			t.Errorf("the state holds %d connections; want 0", n)
		}
	})
	t.Run("a new client on the new gateway receives the next message", func(t *testing.T) {
		conn := mustDial(t, second.connectURL("alice", s.issue("alice"), "updates"))
		if rep := s.publishWait("--geek", "alice", "--topic", "updates", "--body", `{"n":3}`); rep.Report.Delivered != 1 {
			t.Errorf("publish --wait reported %s; want delivered=1", rep)
		}
		if got := readText(t, conn); got != `{"n":3}` {
			t.Errorf("got %q; want %q", got, `{"n":3}`)
		}
	})
}

// TestCommandsNoticeAKilledGateway: after `socks serve` died without
// cleaning up (SIGKILL, OOM, power loss), the other commands must say that
// no gateway is running, as they do after a clean stop, instead of failing
// on a refused TCP connection to the dead one.
func TestCommandsNoticeAKilledGateway(t *testing.T) {
	t.Parallel()
	s := newStack(t)
	srv := s.serve()
	mustDial(t, srv.connectURL("alice", s.issue("alice"), "updates"))
	srv.kill()

	t.Run("publish --direct says no gateway is running", func(t *testing.T) {
		r := s.run("publish", "--topic", "updates", "--message", "anyone?", "--direct")
		if r.code != 1 || !strings.Contains(r.stderr, "no local gateway is running") {
			t.Errorf("want exit 1 and an error saying %q:\n%s", "no local gateway is running", r)
		}
	})
	t.Run("a queued publish says the message waits for serve", func(t *testing.T) {
		r := s.run("publish", "--topic", "updates", "--message", "later")
		if r.code != 0 || r.stdout == "" {
			t.Fatalf("want exit 0 and the message ID on stdout:\n%s", r)
		}
		if !strings.Contains(r.stderr, "waits in the queue") {
			t.Errorf("stderr %q; want a note that the message waits in the queue", r.stderr)
		}
	})
}
