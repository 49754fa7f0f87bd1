package e2e

import (
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// TestRefusedUpgradesLeaveNoConnectionRecord connects with chatter IDs that
// must not get in and checks that the handshake is refused with the right
// status and that the state holds no connection afterwards.
func TestRefusedUpgradesLeaveNoConnectionRecord(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		// setup prepares the state and returns the geek, chatter ID and
		// topics to connect with.
		setup  func(t *testing.T, s *stack) (geek, id, topics string)
		status int
		phrase string // in the refusal's body
	}{
		{
			name: "a made-up chatter ID is refused with 403",
			setup: func(t *testing.T, s *stack) (string, string, string) {
				s.issue("alice")
				return "alice", "sc_not-a-chatter-id-anyone-issued", "updates"
			},
			status: http.StatusForbidden, phrase: "chatter ID refused",
		},
		{
			name: "another geek's chatter ID is refused with 403",
			setup: func(t *testing.T, s *stack) (string, string, string) {
				s.issue("alice")
				return "alice", s.issue("bob"), "updates"
			},
			status: http.StatusForbidden, phrase: "chatter ID refused",
		},
		{
			name: "an expired chatter ID is refused with 403",
			setup: func(t *testing.T, s *stack) (string, string, string) {
				id := s.issue("alice", "--ttl", "1s")
				time.Sleep(1100 * time.Millisecond)
				return "alice", id, "updates"
			},
			status: http.StatusForbidden, phrase: "expired",
		},
		{
			name: "a revoked chatter ID is refused with 403",
			setup: func(t *testing.T, s *stack) (string, string, string) {
				id := s.issue("alice")
				s.must("chatter", "revoke", "--geek", "alice", "--all")
				return "alice", id, "updates"
			},
			status: http.StatusForbidden, phrase: "chatter ID refused",
		},
		{
			name: "a missing chatter ID is refused with 401",
			setup: func(t *testing.T, s *stack) (string, string, string) {
				s.issue("alice")
				return "alice", "", "updates"
			},
			status: http.StatusUnauthorized, phrase: "missing chatter ID",
		},
		{
			name: "a missing geek is refused with 401",
			setup: func(t *testing.T, s *stack) (string, string, string) {
				return "", s.issue("alice"), "updates"
			},
			status: http.StatusUnauthorized, phrase: "missing geek",
		},
		{
			name: "a geek name with a control character is refused with 400",
			setup: func(t *testing.T, s *stack) (string, string, string) {
				return "al\x01ice", s.issue("alice"), "updates"
			},
			status: http.StatusBadRequest, phrase: "control character",
		},
		{
			name: "a chatter ID issued for updates is refused for news with 403",
			setup: func(t *testing.T, s *stack) (string, string, string) {
				return "alice", s.issue("alice", "--topics", "updates,entity:*"), "news"
			},
			status: http.StatusForbidden, phrase: "may not follow news",
		},
		{
			name: "a chatter ID issued for updates is refused for every topic with 403",
			setup: func(t *testing.T, s *stack) (string, string, string) {
				return "alice", s.issue("alice", "--topics", "updates"), "."
			},
			status: http.StatusForbidden, phrase: "may not follow",
		},
		{
			name: "a topic list with an empty entry is refused with 400",
			setup: func(t *testing.T, s *stack) (string, string, string) {
				return "alice", s.issue("alice"), "updates,,news"
			},
			status: http.StatusBadRequest, phrase: "topic is empty",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := newStack(t)
			srv := s.serve()
			geek, id, topics := tc.setup(t, s)

			conn, resp, err := dial(t, srv.connectURL(geek, id, topics))
			if err == nil {
				conn.Close()
				t.Fatalf("the upgrade succeeded; want %d", tc.status)
			}
			if !errors.Is(err, websocket.ErrBadHandshake) || resp == nil {
				t.Fatalf("dial: %v; want a refused handshake", err)
			}
			body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
			resp.Body.Close()
			if resp.StatusCode != tc.status {
				t.Errorf("status %s (%q); want %d", resp.Status, body, tc.status)
			}
			if !strings.Contains(string(body), tc.phrase) {
				t.Errorf("refusal says %q; want it to say %q", body, tc.phrase)
			}
			if id != "" && strings.Contains(string(body), id) {
				t.Errorf("refusal %q echoes the chatter ID", body)
			}
			if n := s.countConnections(); n != 0 {
				t.Errorf("the state holds %d connections after the refusal; want 0", n)
			}
		})
	}

	// The census above would pass vacuously if it could not count at all.
	t.Run("an accepted connection is recorded, so the census counts", func(t *testing.T) {
		t.Parallel()
		s := newStack(t)
		srv := s.serve()
		mustDial(t, srv.connectURL("alice", s.issue("alice"), "updates"))
		if n := s.countConnections(); n != 1 {
			t.Errorf("the state holds %d connections; want 1", n)
		}
	})

	t.Run("socks listen with a refused chatter ID exits 5", func(t *testing.T) {
		t.Parallel()
		s := newStack(t)
		s.serve()
		s.issue("alice")
		r := s.run("listen", "--geek", "alice", "--id", "sc_not-a-chatter-id-anyone-issued", "--timeout", "5s")
		checkFailure(t, r, 5, "403")
	})
}

// TestAChatterIDForUpdatesCannotSubscribeToNews connects with a chatter ID
// limited to updates and entity:*, and tries to widen it by subscribing.
func TestAChatterIDForUpdatesCannotSubscribeToNews(t *testing.T) {
	t.Parallel()
	s := newStack(t)
	srv := s.serve()
	conn := mustDial(t, srv.connectURL("alice", s.issue("alice", "--topics", "updates,entity:*"), "updates"))
	for _, tc := range []struct{ frame, want string }{
		{`{"action":"subscribe","topics":["news"]}`, `"type":"error"`},
		{`{"action":"subscribe","topics":["."]}`, `"type":"error"`},
		{`{"action":"subscribe","topics":["entity:42"]}`, `"type":"subscribed"`},
	} {
		if err := conn.WriteMessage(websocket.TextMessage, []byte(tc.frame)); err != nil {
			t.Fatal(err)
		}
		if got := readText(t, conn); !strings.Contains(got, tc.want) {
			t.Errorf("%s: reply %s; want %s", tc.frame, got, tc.want)
		}
	}
	if rep := s.publishWait("--geek", "alice", "--topic", "news", "--message", "not for alice"); rep.Report.Targets != 0 {
		t.Errorf("a publish to news reached %d connections; want none", rep.Report.Targets)
	}
	if rep := s.publishWait("--geek", "alice", "--topic", "entity:42", "--message", "hers"); rep.Report.Delivered != 1 {
		t.Errorf("a publish to entity:42 reported %s; want delivered=1", rep)
	}
}
