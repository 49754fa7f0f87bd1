package e2e

import (
	"regexp"
	"strconv"
	"testing"
)

// servePID is the pid of a running serve, as the loser of a start must
// name it.
func servePID(srv *server) string { return strconv.Itoa(srv.cmd.Process.Pid) }

// TestServesStartedBesideARunningOneNameItAndTouchNothing: a serve is
// running with a client connected; three more are started on its state
// dir at once. Each exits 1 naming the running one's pid, and the
// running one's state is left as it was: its client's record is still
// there (a message reaches it, publish --wait counting one target), and
// what waited on the queue is still delivered. Then, while the running
// serve stops (its broker finishing a message on a slow post), a serve
// started meanwhile is refused the same way, naming the pid, not "a
// gateway is starting or stopping" with no process to look for.
func TestServesStartedBesideARunningOneNameItAndTouchNothing(t *testing.T) {
	t.Parallel()
	s := newStack(t)
	srv := s.serve("--faults", "slow=1:8s")
	in := collect(mustDial(t, srv.connectURL("alice", s.issue("alice"), "updates")))

	losers := make([]*proc, 3)
	for i := range losers {
		losers[i] = start(t, "serve", "--addr", "127.0.0.1:0", "--state-dir", s.dir)
	}
	want := regexp.MustCompile(`^socks: a gateway is already running for this state dir \(pid ` + servePID(srv) + `\b`)
	for i, p := range losers {
		r := p.result()
		if r.code != 1 || r.stdout != "" || !want.MatchString(r.stderr) {
			t.Errorf("serve %d of 3 started beside a running one: want exit 1 naming pid %s:\n%s", i+1, servePID(srv), r)
		}
	}
	if n := s.countConnections(); n != 1 {
		t.Errorf("after the refused serves, a message to every topic targeted %d connections; want the running serve's 1", n)
	}
	in.await(t, `"census"`, receiveTimeout)

	// A message in hand, on a post answered after 8 s: the running serve
	// stops only once its broker has finished it (up to 5 s).
	s.must("publish", "--geek", "alice", "--topic", "updates", "--body", `{"n":1}`)
	s.awaitInHand(1)
	srv.interrupt()
	srv.awaitStderr("shutting down: finishing the messages in hand", stopTimeout)
	r := s.run("serve", "--addr", "127.0.0.1:0")
	if r.code != 1 || !want.MatchString(r.stderr) {
		t.Errorf("a serve started while the running one stops: want exit 1 naming pid %s:\n%s", servePID(srv), r)
	}
	if code, ok := srv.wait(2 * stopTimeout); !ok || code != 0 {
		t.Errorf("the serve, interrupted once, exited %d (exited: %v); want 0\n%s", code, ok, srv.stderr)
	}
}
