package e2e

import (
	"encoding/json"
	"fmt"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
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

// counts is how often in got each body came.
func (in *inbox) counts() map[string]int {
	in.mu.Lock()
	defer in.mu.Unlock()
	n := map[string]int{}
	for _, g := range in.got {
		n[g]++
	}
	return n
}

// awaitAll waits (bounded by d) until the client has received every one
// of bodies at least once.
func (in *inbox) awaitAll(t *testing.T, bodies []string, d time.Duration) {
	t.Helper()
	timer := time.NewTimer(d)
	defer timer.Stop()
	for {
		n := in.counts()
		var missing []string
		for _, b := range bodies {
			if n[b] == 0 {
				missing = append(missing, b)
			}
		}
		if len(missing) == 0 {
			return
		}
		select {
		case <-in.more:
		case <-timer.C:
			t.Fatalf("after %s the client still lacks %d of %d messages: %v", d, len(missing), len(bodies), missing)
		}
	}
}

// TestAPublishStormThroughThreeBrokersReachesEveryClientOnce: `socks
// serve` with its broker, two `socks broker` beside it, and dozens of
// `socks publish` processes at once, half of them with --wait. With no
// fault and no broker stopped, each of two clients gets every message
// exactly once (a message is received by one broker at a time), every
// --wait reports both deliveries, and the queue ends empty with no dead
// letter.
func TestAPublishStormThroughThreeBrokersReachesEveryClientOnce(t *testing.T) {
	t.Parallel()
	const publishes = 24
	s := newStack(t)
	srv := s.serve()
	ins := []*inbox{
		collect(mustDial(t, srv.connectURL("alice", s.issue("alice"), "updates"))),
		collect(mustDial(t, srv.connectURL("bob", s.issue("bob"), "updates"))),
	}
	s.broker()
	s.broker()
	procs := make([]*proc, publishes)
	bodies := make([]string, publishes)
	for i := range procs {
		bodies[i] = fmt.Sprintf(`{"n":%d}`, i)
		args := []string{"publish", "--topic", "updates", "--body", bodies[i], "--state-dir", s.dir}
		if i%2 == 1 {
			args = append(args, "--wait", "--wait-timeout", "60s", "--json")
		}
		procs[i] = start(t, args...)
	}
	for i, p := range procs {
		r := p.result()
		if r.code != 0 {
			t.Errorf("publish %d of %d at once:\n%s", i+1, publishes, r)
			continue
		}
		if i%2 == 1 {
			if rep := parseReport(t, r); rep.Report.Targets != 2 || rep.Report.Delivered != 2 {
				t.Errorf("publish %d --wait reported %s; want targets=2 delivered=2", i+1, rep)
			}
		}
	}
	for _, in := range ins {
		in.awaitAll(t, bodies, faultTimeout)
	}
	// Every message settled (the queue empty): no copy is still coming.
	deadline := time.Now().Add(receiveTimeout)
	for s.queued(t) != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("the queue still holds %d messages after every one was delivered", s.queued(t))
		}
		time.Sleep(20 * time.Millisecond)
	}
	for c, in := range ins {
		for body, n := range in.counts() {
			if n != 1 {
				t.Errorf("client %d got %s %d times; want once", c+1, body, n)
			}
		}
	}
	if dead := deadLetters(t, s.run); len(dead) != 0 {
		t.Errorf("dead letters %+v; want none", dead)
	}
}

// TestPruneStaleWhileServeAdmitsKeepsEveryLiveConnection: prune-stale
// runs, three at once, through 600 records of dead connections while
// clients connect to serve: every client that connected meanwhile (its
// record written while a prune walked the file, its check perhaps made
// while its handshake ran) keeps its record and receives what is
// published after; the dead records are gone; no run fails.
func TestPruneStaleWhileServeAdmitsKeepsEveryLiveConnection(t *testing.T) {
	t.Parallel()
	const clients = 24
	s := newStack(t)
	srv := s.serve()
	chatterID := s.issue("alice")
	seedDead(t, s.openState().Store(), 100, 100, 400)

	prunes := make([]*proc, 3)
	for i := range prunes {
		prunes[i] = start(t, "prune-stale", "--json", "--concurrency", "2", "--state-dir", s.dir)
	}
	conns := make([]*websocket.Conn, clients)
	var wg sync.WaitGroup
	for i := range conns {
		wg.Go(func() {
			c, resp, err := dial(t, srv.connectURL("alice", chatterID, "updates"))
			if err != nil {
				t.Errorf("client %d: %v (%v)", i, err, resp)
				return
			}
			conns[i] = c
		})
	}
	wg.Wait()
	deleted := 0
	for i, p := range prunes {
		r := p.result()
		if r.code != 0 {
			t.Errorf("prune-stale %d of 3 beside the connects:\n%s", i+1, r)
			continue
		}
		got := parsePrune(t, r)
		if got.Errors != 0 {
			t.Errorf("prune-stale %d reported %+v; want no errors", i+1, got)
		}
		deleted += got.DeletedTotal
	}
	if deleted != 600 {
		t.Errorf("the prunes deleted %d records between them; want the 600 dead ones", deleted)
	}
	rep := s.publishWait("--topic", "updates", "--message", "still here")
	if rep.Report.Targets != clients || rep.Report.Delivered != clients {
		t.Errorf("publish --wait reported %s; want the %d clients, each delivered", rep, clients)
	}
	for i, c := range conns {
		if c == nil {
			continue
		}
		if got := readText(t, c); got != `"still here"` {
			t.Errorf("client %d got %q", i, got)
		}
	}
}

// TestRedrivesWhileTwoBrokersDeadLetterLoseAndDoubleNothing: 20 queue
// messages that are no envelope (each dead-lettered by whichever broker
// receives it, at once) go round and round: serve's broker and a `socks
// broker` dead-letter them while `dlq redrive --all` runs again and
// again from its own processes, a real message published between
// redrives. Each real message reaches the client once; and when the
// redrives stop and the queue is empty, the 20 are dead letters, each
// once: none lost in a move, none doubled by a redrive and a dead-letter
// crossing.
func TestRedrivesWhileTwoBrokersDeadLetterLoseAndDoubleNothing(t *testing.T) {
	t.Parallel()
	const junk, rounds = 20, 12
	s := newStack(t)
	srv := s.serve()
	in := collect(mustDial(t, srv.connectURL("alice", s.issue("alice"), "updates")))
	s.broker()
	bodies := make([][]byte, junk)
	for i := range bodies {
		bodies[i] = fmt.Appendf(nil, "not an envelope %d", i)
	}
	ids, err := s.openState().Queue().SendBatch(testContext(t, commandTimeout), bodies)
	if err != nil {
		t.Fatal(err)
	}
	var real []string
	redriven := 0
	for i := range rounds {
		r := s.run("dlq", "redrive", "--all", "--json")
		if r.code != 0 {
			t.Fatalf("redrive %d:\n%s", i+1, r)
		}
		var out struct {
			Redriven int `json:"redriven"`
		}
		if err := json.Unmarshal([]byte(r.stdout), &out); err != nil {
			t.Fatalf("redrive %d: %v\n%s", i+1, err, r)
		}
		redriven += out.Redriven
		body := fmt.Sprintf(`{"n":%d}`, i)
		s.must("publish", "--topic", "updates", "--body", body)
		real = append(real, body)
	}
	if redriven == 0 {
		t.Errorf("%d redrives moved nothing: the brokers dead-lettered nothing meanwhile", rounds)
	}
	in.awaitAll(t, real, receiveTimeout)
	deadline := time.Now().Add(receiveTimeout)
	for s.queued(t) != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("the queue still holds %d messages after the redrives stopped", s.queued(t))
		}
		time.Sleep(20 * time.Millisecond)
	}
	dead := deadLetters(t, s.run)
	got := map[string]int{}
	for _, d := range dead {
		got[d.ID]++
	}
	for _, id := range ids {
		if got[id] != 1 {
			t.Errorf("message %s is a dead letter %d times; want once", id, got[id])
		}
	}
	if len(dead) != junk {
		t.Errorf("%d dead letters; want the %d messages that are no envelope", len(dead), junk)
	}
	for body, n := range in.counts() {
		if n != 1 {
			t.Errorf("the client got %s %d times; want once", body, n)
		}
	}
	t.Logf("%d rounds redrove %d dead letters", rounds, redriven)
}

// TestABrokerFollowsTheGatewayToItsNewAddress: `socks broker` runs
// beside `serve --no-broker` on a free port; serve is stopped (cleanly,
// then with SIGKILL) and started again, on another free port, and the
// client reconnects there. The broker, which found the gateway's address
// as it started, delivers to the new one: it posted to the old address,
// refused, until each message was dead-lettered.
func TestABrokerFollowsTheGatewayToItsNewAddress(t *testing.T) {
	t.Parallel()
	s := newStack(t)
	chatterID := s.issue("alice", "--ttl", "1h")
	srv := s.serve("--no-broker")
	conn := mustDial(t, srv.connectURL("alice", chatterID, "updates"))
	s.broker()
	if rep := s.publishWait("--topic", "updates", "--message", "first"); rep.Report.Delivered != 1 {
		t.Fatalf("publish --wait reported %s; want delivered=1", rep)
	}
	if got := readText(t, conn); got != `"first"` {
		t.Fatalf("got %q; want %q", got, `"first"`)
	}
	for _, stop := range []string{"Ctrl-C", "SIGKILL"} {
		if stop == "SIGKILL" {
			srv.kill()
		} else if code := srv.stop(); code != 0 {
			t.Fatalf("serve exited %d on Ctrl-C\n%s", code, srv.stderr)
		}
		old := srv.URL
		srv = s.serve("--no-broker")
		if srv.URL == old {
			t.Fatalf("the new serve took the old one's address %s; want another", old)
		}
		conn = mustDial(t, srv.connectURL("alice", chatterID, "updates"))
		msg := "after " + stop
		rep := s.publishWait("--topic", "updates", "--message", msg)
		if rep.Report.Targets != 1 || rep.Report.Delivered != 1 {
			t.Errorf("after %s and a new serve: publish --wait reported %s; want targets=1 delivered=1", stop, rep)
		}
		if got := readText(t, conn); got != `"`+msg+`"` {
			t.Errorf("got %q; want %q", got, msg)
		}
	}
}

// TestServeAndABrokerStartedTogetherBothRun: `socks serve --no-broker`
// and `socks broker` started at the same instant on one state dir, as a
// Procfile, docker compose or `serve & broker` in a script start them.
// The broker looked for the gateway before serve had recorded it, and
// exited 1 ("no local gateway is running"), most times: a process
// manager then stopped the serve too. It waits for the gateway to start,
// and delivers.
func TestServeAndABrokerStartedTogetherBothRun(t *testing.T) {
	t.Parallel()
	for round := range 3 {
		s := newStack(t)
		chatterID := s.issue("alice")
		// The broker first, and serve once it has looked: as when it
		// wins the race.
		brk := start(t, "broker", "--wait", "1s", "--state-dir", s.dir)
		brk.awaitStderr("waiting for `socks serve` to start on this state dir", startTimeout)
		srv := s.serve("--no-broker")
		brk.awaitStderr("broker started", startTimeout)
		conn := mustDial(t, srv.connectURL("alice", chatterID, "updates"))
		msg := fmt.Sprintf("round %d", round)
		if rep := s.publishWait("--topic", "updates", "--message", msg); rep.Report.Delivered != 1 {
			t.Errorf("round %d: publish --wait reported %s; want delivered=1", round, rep)
		}
		if got := readText(t, conn); got != `"`+msg+`"` {
			t.Errorf("round %d: got %q; want %q", round, got, msg)
		}
	}
}

// TestABrokerKilledMidStormBesideAnotherLosesNothing: two `socks broker`
// share the queue of `serve --no-broker` (every post answered after
// 300 ms, so messages are in hand), 20 messages are published at once,
// and one broker is killed with SIGKILL once the first is delivered. The
// other one (which keeps the state dir's broker lock held, so nothing is
// given back at once) receives the dead broker's messages once their
// --visibility has passed: the client gets every message, none more than
// twice (one extra copy for a post the dead broker made before it died),
// the queue ends empty and nothing is dead-lettered.
func TestABrokerKilledMidStormBesideAnotherLosesNothing(t *testing.T) {
	t.Parallel()
	const msgs = 20
	s := newStack(t)
	srv := s.serve("--no-broker", "--faults", "slow=1:300ms")
	in := collect(mustDial(t, srv.connectURL("alice", s.issue("alice"), "updates")))
	doomed := s.broker("--visibility", "2s")
	s.broker("--visibility", "2s")
	bodies := make([]string, msgs)
	procs := make([]*proc, msgs)
	for i := range procs {
		bodies[i] = fmt.Sprintf(`{"n":%d}`, i)
		procs[i] = start(t, "publish", "--topic", "updates", "--body", bodies[i], "--state-dir", s.dir)
	}
	for i, p := range procs {
		if r := p.result(); r.code != 0 {
			t.Fatalf("publish %d:\n%s", i+1, r)
		}
	}
	// Mid-storm: a first message delivered (by either broker), most
	// still to come.
	timer := time.NewTimer(receiveTimeout)
	defer timer.Stop()
	for len(in.counts()) == 0 {
		select {
		case <-in.more:
		case <-timer.C:
			t.Fatalf("no message delivered within %s", receiveTimeout)
		}
	}
	doomed.kill()
	in.awaitAll(t, bodies, faultTimeout)
	deadline := time.Now().Add(faultTimeout)
	for s.queued(t) != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("the queue still holds %d messages", s.queued(t))
		}
		time.Sleep(50 * time.Millisecond)
	}
	for body, n := range in.counts() {
		if n > 2 {
			t.Errorf("the client got %s %d times; want at most twice", body, n)
		}
	}
	if dead := deadLetters(t, s.run); len(dead) != 0 {
		t.Errorf("dead letters %+v; want none", dead)
	}
}

// TestServesStartedAtOnceOnAFreshStateDirRunOneGateway: four `socks
// serve` started at the same instant on a state dir nothing has run in
// (the dir, the state file, its schema and the lock files all made by
// them at once): exactly one serves, each other exits 1 naming its pid,
// and the one serving works (a client connects and gets a message).
func TestServesStartedAtOnceOnAFreshStateDirRunOneGateway(t *testing.T) {
	t.Parallel()
	for round := range 3 {
		s := newStack(t)
		s.dir = filepath.Join(s.dir, "fresh")
		procs := make([]*proc, 4)
		for i := range procs {
			procs[i] = start(t, "serve", "--addr", "127.0.0.1:0", "--state-dir", s.dir)
		}
		// Each either prints its URL (serving) or exits; bounded.
		var winner *proc
		var losers []result
		settled := map[*proc]bool{}
		deadline := time.Now().Add(startTimeout)
		for len(settled) < len(procs) {
			for _, p := range procs {
				if settled[p] {
					continue
				}
				select {
				case <-p.done:
					losers = append(losers, result{args: p.args, code: p.cmd.ProcessState.ExitCode(), stdout: p.stdout.String(), stderr: p.stderr.String()})
					settled[p] = true
				default:
					if strings.Contains(p.stdout.String(), "\n") {
						if winner != nil {
							t.Fatalf("round %d: two serves run on one state dir:\n%s\n%s", round, winner.stdout, p.stdout)
						}
						winner, settled[p] = p, true
					}
				}
			}
			if time.Now().After(deadline) {
				t.Fatalf("round %d: after %s, %d of 4 serves neither serve nor exited", round, startTimeout, len(procs)-len(settled))
			}
			time.Sleep(20 * time.Millisecond)
		}
		if winner == nil {
			t.Fatalf("round %d: no serve of 4 started; they said %v", round, losers)
		}
		want := regexp.MustCompile(`^socks: a gateway is already running for this state dir \(pid ` + strconv.Itoa(winner.cmd.Process.Pid) + `\b`)
		for _, r := range losers {
			if r.code != 1 || r.stdout != "" || !want.MatchString(r.stderr) {
				t.Errorf("round %d: a serve beside the one serving: want exit 1 naming pid %d:\n%s", round, winner.cmd.Process.Pid, r)
			}
		}
		srv := &server{proc: winner, URL: strings.TrimSpace(strings.SplitN(winner.stdout.String(), "\n", 2)[0])}
		conn := mustDial(t, srv.connectURL("alice", s.issue("alice"), "updates"))
		if rep := s.publishWait("--topic", "updates", "--message", "one"); rep.Report.Delivered != 1 {
			t.Errorf("round %d: publish --wait reported %s; want delivered=1", round, rep)
		}
		if got := readText(t, conn); got != `"one"` {
			t.Errorf("round %d: got %q", round, got)
		}
		winner.stop()
	}
}
