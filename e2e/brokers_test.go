package e2e

import (
	"strings"
	"testing"
)

// broker starts `socks broker --wait 1s EXTRA` on the stack's state dir
// and waits (bounded) until it has started, and so is known to publish.
func (s *stack) broker(extra ...string) *proc {
	s.t.Helper()
	p := start(s.t, append([]string{"broker", "--wait", "1s", "--state-dir", s.dir}, extra...)...)
	p.awaitStderr("broker started", startTimeout)
	return p
}

// queued is how many messages the stack's queue holds, waiting or in
// flight.
func (s *stack) queued(t *testing.T) int {
	t.Helper()
	st, err := s.openState().Queue().Stats(testContext(t, commandTimeout))
	if err != nil {
		t.Fatal(err)
	}
	return st.Visible + st.InFlight
}

// TestPublishWaitNeedsARunningBroker: `socks serve --no-broker` runs a
// gateway that delivers nothing by itself. publish --wait refuses at once
// (not after --wait-timeout) while no broker runs, counts every `socks
// broker` while it runs, and stops believing one killed with SIGKILL.
func TestPublishWaitNeedsARunningBroker(t *testing.T) {
	t.Parallel()
	s := newStack(t)
	srv := s.serve("--no-broker")
	conn := mustDial(t, srv.connectURL("alice", s.issue("alice"), "updates"))

	refused := func(t *testing.T) {
		t.Helper()
		before := s.queued(t)
		// Ten minutes: were it to wait, runSocks would kill it after
		// commandTimeout and fail the test.
		r := s.run("publish", "--topic", "updates", "--message", "anyone?", "--wait", "--wait-timeout", "10m")
		checkFailure(t, r, 1, "no broker does")
		for _, phrase := range []string{"socks broker", "without --no-broker", "nothing was queued"} {
			if !strings.Contains(r.stderr, phrase) {
				t.Errorf("stderr %q; want it to say %q", r.stderr, phrase)
			}
		}
		if after := s.queued(t); after != before {
			t.Errorf("the queue held %d messages before and %d after; want nothing queued", before, after)
		}
	}
	t.Run("with no broker, --wait fails at once and queues nothing", refused)
	t.Run("doctor says that no broker runs", func(t *testing.T) {
		r := s.run("doctor")
		if r.code != 1 || !strings.Contains(r.stdout, "fail\tlocal gateway\t") || !strings.Contains(r.stdout, "but no broker is running") {
			t.Errorf("want exit 1 and the local gateway check failing for want of a broker:\n%s", r)
		}
	})
	t.Run("without --wait the message is queued, with a note", func(t *testing.T) {
		r := s.run("publish", "--topic", "updates", "--message", "queued")
		if r.code != 0 || strings.TrimSpace(r.stdout) == "" || !strings.Contains(r.stderr, "note: a gateway runs but no broker does") {
			t.Errorf("want exit 0, the message ID and a note that it waits for a broker:\n%s", r)
		}
		if n := s.queued(t); n != 1 {
			t.Errorf("the queue holds %d messages; want 1", n)
		}
	})

	first, second := s.broker(), s.broker()
	t.Run("a broker delivers what waited in the queue", func(t *testing.T) {
		if got := readText(t, conn); got != `"queued"` {
			t.Errorf("got %q; want %q", got, `"queued"`)
		}
	})
	delivered := func(msg string) func(t *testing.T) {
		return func(t *testing.T) {
			rep := s.publishWait("--topic", "updates", "--message", msg)
			if rep.Report.Targets != 1 || rep.Report.Delivered != 1 {
				t.Errorf("publish --wait reported %s; want targets=1 delivered=1", rep)
			}
			if got := readText(t, conn); got != `"`+msg+`"` {
				t.Errorf("got %q; want %q", got, msg)
			}
		}
	}
	t.Run("with two brokers, --wait gets the report", delivered("two"))
	t.Run("doctor says a broker runs", func(t *testing.T) {
		r := s.run("doctor")
		if !strings.Contains(r.stdout, "ok\tlocal gateway\t") || !strings.Contains(r.stdout, ", broker running") {
			t.Errorf("want the local gateway check ok with a broker running:\n%s", r)
		}
	})
	if code := first.stop(); code != 0 {
		t.Fatalf("the first broker exited %d on SIGINT; want 0\nstderr: %s", code, first.stderr)
	}
	t.Run("one of two brokers stopped, the other still counts", delivered("one"))
	second.kill()
	t.Run("the last broker killed with SIGKILL, --wait fails at once again", refused)
}
