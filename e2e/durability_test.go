package e2e

// The durability of the local stack against faults of the machine rather
// than of the network: `socks serve` killed with SIGKILL, its state file
// deleted under it, writes that fail because the disk is full. Each test
// drives real processes and waits for events, bounded by deadlines.
// docs/reliability.md names these tests.

import (
	"testing"
)

// TestAGeekAtItsCapReconnectsAfterServeIsKilled: a `socks serve` killed
// with SIGKILL runs no $disconnect, so its connection records stay in the
// state file. They are no connections of the next serve (one gateway per
// state dir), so they must not count against the geek's cap: the
// listener reconnects to the new serve as documented and gets what is
// published next, and the dead record is no target.
func TestAGeekAtItsCapReconnectsAfterServeIsKilled(t *testing.T) {
	t.Parallel()
	s := newStack(t)
	first := s.serve("--max-connections-per-geek", "1")
	l := s.listenPiped("--geek", "alice", "--topic", "updates", "--json")
	l.waitConnected(true)

	first.kill()
	s.serve("--max-connections-per-geek", "1")
	waitListenLine(t, l.stdout, "a connected state line after the restart", reconnectWait, func(s string) bool {
		p := parseListenLine(t, s)
		return p.Kind == "state" && p.State == "connected"
	})

	rep := s.publishWait("--geek", "alice", "--topic", "updates", "--body", `{"after":"kill"}`)
	if rep.Report.Targets != 1 || rep.Report.Delivered != 1 {
		t.Errorf("publish --wait reported %s; want the reconnected listener as the one target, delivered", rep)
	}
	m, _ := waitListenLine(t, l.stdout, "the message published after the restart", listenWait, func(s string) bool {
		return parseListenLine(t, s).Kind == "message"
	})
	if p := parseListenLine(t, m); !listenBodyIs(t, p, `{"after":"kill"}`) {
		t.Errorf("got %s; want {\"after\":\"kill\"}", p.Body)
	}
}
