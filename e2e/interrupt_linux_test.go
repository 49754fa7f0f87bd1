package e2e

import (
	"database/sql"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// inFlight is how many messages of the stack's local queue a broker holds
// (received, not yet deleted or given back).
func inFlight(t *testing.T, dir string) int {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+filepath.Join(dir, "socks.db")+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var n int
	if err := db.QueryRow(`SELECT count(*) FROM queue WHERE receipt IS NOT NULL`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// TestASecondCtrlCStopsTheBrokerAtOnceAndTheNextBrokerDeliversWhatItHeld:
// a broker whose message in hand waits on a gateway that does not answer
// (frozen) finished it after Ctrl-C for up to --visibility, whatever else
// was pressed. Now Ctrl-C again stops it at once, exit 130, saying that
// the next broker gives the message back; and the next one delivers it.
func TestASecondCtrlCStopsTheBrokerAtOnceAndTheNextBrokerDeliversWhatItHeld(t *testing.T) {
	t.Parallel()
	s := newStack(t)
	srv := s.serve("--no-broker")
	conn := mustDial(t, srv.connectURL("alice", s.issue("alice"), "updates"))
	brk := s.inTerminal(nil, "broker", "--state-dir", s.dir)
	brk.waitFor(startTimeout, "broker started")

	freezeProc(t, srv.cmd.Process)
	s.must("publish", "--geek", "alice", "--topic", "updates", "--body", `{"held":"by the broker"}`)
	deadline := time.Now().Add(receiveTimeout)
	for inFlight(t, s.dir) == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("the broker did not receive the message within %s:\n%s", receiveTimeout, brk.screen())
		}
		time.Sleep(20 * time.Millisecond)
	}

	brk.send("\x03")
	brk.waitFor(stopTimeout, "socks: stopping: finishing the messages in hand, each within its --visibility of 1m (Ctrl-C again stops at once)")
	pressAgainUntilStopped(t, brk.pressCtrlC, brk.done, "socks broker")
	if code := brk.cmd.ProcessState.ExitCode(); code != 130 {
		t.Errorf("after a second Ctrl-C: exit %d; want 130\n%s", code, brk.screen())
	}
	brk.waitFor(listenWait, "socks: stopped at once by a second Ctrl-C: a message it had in hand is given back when a broker next starts on this state dir")

	// As it said: the next broker gives it back at once and delivers it.
	thawProc(srv.cmd.Process)
	next := start(t, "broker", "--state-dir", s.dir)
	next.awaitStderr("delivered=1", receiveTimeout)
	if got := readText(t, conn); !strings.Contains(got, "by the broker") {
		t.Errorf("got %q; want the message the stopped broker held", got)
	}
}
