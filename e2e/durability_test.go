package e2e

// The durability of the local stack against faults of the machine rather
// than of the network: `socks serve` killed with SIGKILL, its state file
// deleted under it, writes that fail because the disk is full. Each test
// drives real processes and waits for events, bounded by deadlines.
// docs/reliability.md names these tests.

import (
	"bytes"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
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

// TestServeStopsWhenItsStateFileIsDeleted: a state file deleted (or
// replaced) under a running `socks serve` left serve on a file no other
// process can open: publishes went into a new file that serve never read,
// told that no gateway was running while serve still held its clients.
// Serve (and a `socks broker` beside it) must stop, saying why, closing
// its clients so that they reconnect to the next serve, which delivers
// from the new file.
func TestServeStopsWhenItsStateFileIsDeleted(t *testing.T) {
	t.Parallel()
	for _, withBroker := range []bool{false, true} {
		name := "serve"
		if withBroker {
			name = "serve --no-broker and socks broker"
		}
		t.Run(name+" stop", func(t *testing.T) {
			t.Parallel()
			s := newStack(t)
			var procs []*proc
			var srv *server
			if withBroker {
				srv = s.serve("--no-broker")
				procs = append(procs, srv.proc, s.broker())
			} else {
				srv = s.serve()
				procs = append(procs, srv.proc)
			}
			conn := mustDial(t, srv.connectURL("alice", s.issue("alice"), "updates"))
			for _, suffix := range []string{"", "-wal", "-shm"} {
				if err := os.Remove(filepath.Join(s.dir, "socks.db"+suffix)); err != nil && !errors.Is(err, os.ErrNotExist) {
					t.Fatal(err)
				}
			}

			for _, p := range procs {
				code, exited := p.wait(stopTimeout + startTimeout)
				if !exited {
					t.Fatalf("socks %s still runs %s after its state file was deleted\nstderr: %q", p.args[0], stopTimeout+startTimeout, p.stderr)
				}
				if code != 1 || !strings.Contains(p.stderr.String(), "was deleted or replaced") {
					t.Errorf("socks %s exited %d; want 1 with an error saying the state file was deleted or replaced\nstderr: %q", p.args[0], code, p.stderr)
				}
			}
			_ = conn.SetReadDeadline(time.Now().Add(receiveTimeout))
			if _, _, err := conn.ReadMessage(); !websocket.IsCloseError(err, websocket.CloseGoingAway) {
				t.Errorf("the client's connection ended with %v; want a close frame 1001", err)
			}

			next := s.serve()
			conn = mustDial(t, next.connectURL("alice", s.issue("alice"), "updates"))
			if rep := s.publishWait("--geek", "alice", "--topic", "updates", "--body", `{"n":1}`); rep.Report.Delivered != 1 {
				t.Errorf("publish --wait reported %s; want delivered=1", rep)
			}
			if got := readText(t, conn); got != `{"n":1}` {
				t.Errorf("got %q; want %q", got, `{"n":1}`)
			}
		})
	}
}

// TestConcurrentPublishesAreAllDelivered starts dozens of `socks publish`
// processes at once against a running serve, half of them with --wait:
// the state file's lock is contended from every side (their sends, the
// broker's receives and deletes, the reports), which must make writers
// wait, never fail with SQLite's "database is locked". Every publish is
// acknowledged, and every acknowledged message reaches the client; each
// --wait reports its own delivery.
func TestConcurrentPublishesAreAllDelivered(t *testing.T) {
	t.Parallel()
	const publishes = 32
	s := newStack(t)
	srv := s.serve()
	conn := mustDial(t, srv.connectURL("alice", s.issue("alice"), "updates"))
	got := make(chan string, 2*publishes)
	go func() {
		for {
			_, data, err := conn.ReadMessage()
			if err != nil {
				return // the test closed it
			}
			got <- string(data)
		}
	}()

	procs := make([]*proc, publishes)
	for i := range procs {
		args := []string{"publish", "--geek", "alice", "--topic", "updates", "--body", fmt.Sprintf(`{"n":%d}`, i), "--state-dir", s.dir}
		if i%2 == 1 {
			args = append(args, "--wait", "--wait-timeout", "60s", "--json")
		}
		procs[i] = start(t, args...)
	}
	want := map[string]bool{}
	for i, p := range procs {
		r := p.result()
		if r.code != 0 || strings.Contains(strings.ToLower(r.stderr), "locked") {
			t.Errorf("publish %d of %d at once:\n%s", i+1, publishes, r)
			continue
		}
		want[fmt.Sprintf(`{"n":%d}`, i)] = true
		if i%2 == 1 {
			if rep := parseReport(t, r); rep.Report.Delivered != 1 {
				t.Errorf("publish %d --wait reported %s; want delivered=1", i+1, rep)
			}
		}
	}
	timer := time.NewTimer(faultTimeout)
	defer timer.Stop()
	for len(want) > 0 {
		select {
		case m := <-got:
			delete(want, m)
		case <-timer.C:
			t.Fatalf("after %s the client still lacks %d acknowledged messages: %v", faultTimeout, len(want), want)
		}
	}
}

// TestConcurrentPublishesIntoAFreshStateDirAreAllQueued: dozens of
// `socks publish` processes at once on a state dir nothing has run in
// yet (a CI job's first step) each create or open the state file and its
// schema at the same instant: every one is acknowledged, none says
// "locked", and every message is on the queue.
func TestConcurrentPublishesIntoAFreshStateDirAreAllQueued(t *testing.T) {
	t.Parallel()
	const publishes = 32
	s := newStack(t)
	procs := make([]*proc, publishes)
	for i := range procs {
		procs[i] = start(t, "publish", "--topic", "updates", "--body", fmt.Sprintf(`{"n":%d}`, i), "--state-dir", s.dir)
	}
	for i, p := range procs {
		if r := p.result(); r.code != 0 || strings.Contains(strings.ToLower(r.stderr), "locked") {
			t.Errorf("publish %d of %d at once on a fresh state dir:\n%s", i+1, publishes, r)
		}
	}
	r := s.run("doctor")
	if want := fmt.Sprintf("queue\t%d waiting, 0 in flight", publishes); !strings.Contains(r.stdout, want) {
		t.Errorf("doctor says:\n%s\nwant %q: every acknowledged message queued", r, want)
	}
}

// TestDoctorSaysAStateFileIsDamaged: a state file with a damaged page (a
// bad disk, a copy taken while socks wrote) opens, and a read of a table
// the damage spares works: `socks doctor` must not call it ok but say it
// is damaged, and what to do.
func TestDoctorSaysAStateFileIsDamaged(t *testing.T) {
	t.Parallel()
	s := newStack(t)
	for i := range 3 {
		s.must("publish", "--topic", "updates", "--body", fmt.Sprintf(`{"n":%d}`, i))
	}
	path := filepath.Join(s.dir, "socks.db")
	damagePage(t, path, "queue")

	r := s.run("doctor")
	if r.code != 1 || !regexp.MustCompile(`(?m)^fail\tstate file\t.*is damaged.*\t.*move the file away`).MatchString(r.stdout) {
		t.Errorf("want exit 1 and the state file check failing, saying it is damaged and what to do:\n%s", r)
	}
}

// damagePage overwrites the first page of table in the SQLite file at
// path (no socks process may have it open) with bytes that are no b-tree
// page, as a bad sector would.
func damagePage(t *testing.T, path, table string) {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+path)
	if err != nil {
		t.Fatal(err)
	}
	var page, size int64
	err = db.QueryRow(`SELECT rootpage FROM sqlite_master WHERE type = 'table' AND name = ?`, table).Scan(&page)
	if err == nil {
		err = db.QueryRow(`PRAGMA page_size`).Scan(&size)
	}
	if err == nil {
		// Everything into the main file, so that the damage is what a
		// reader finds.
		_, err = db.Exec(`PRAGMA wal_checkpoint(TRUNCATE)`)
	}
	if err := errors.Join(err, db.Close()); err != nil {
		t.Fatalf("reading the layout of %s: %v", path, err)
	}
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt(bytes.Repeat([]byte{0xff}, int(size)), (page-1)*size); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
}

// TestAMessageInHandOfAKilledBrokerIsDeliveredAndReported kills `socks
// broker` with SIGKILL while it has a message in hand (serve answers every
// post after 8 s, so the message is received but not delivered yet): the
// next broker, finding no other running, takes it back at once and
// delivers it (before, it waited out the dead broker's visibility timeout,
// 30 s here), and a `publish --wait` that waited across the kill reports
// that delivery.
func TestAMessageInHandOfAKilledBrokerIsDeliveredAndReported(t *testing.T) {
	t.Parallel()
	s := newStack(t)
	// Every post is answered after 8 s (under the 10 s post timeout): the
	// message stays in the first broker's hand that long, for the test
	// to see; the next broker's post is answered after 8 s too.
	srv := s.serve("--no-broker", "--faults", "slow=1:8s")
	conn := mustDial(t, srv.connectURL("alice", s.issue("alice"), "updates"))
	first := s.broker("--visibility", "30s")
	wait := start(t, "publish", "--geek", "alice", "--topic", "updates", "--body", `{"n":1}`,
		"--wait", "--wait-timeout", "60s", "--json", "--state-dir", s.dir)

	s.awaitInHand(1)
	first.kill()
	s.broker("--visibility", "30s")

	r := wait.result()
	if r.code != 0 {
		t.Fatalf("publish --wait across the kill:\n%s", r)
	}
	if rep := parseReport(t, r); rep.Report.Targets != 1 || rep.Report.Delivered != 1 {
		t.Errorf("publish --wait reported %s; want targets=1 delivered=1", rep)
	}
	if got := readText(t, conn); got != `{"n":1}` {
		t.Errorf("got %q; want %q", got, `{"n":1}`)
	}
}

// awaitInHand waits (bounded by receiveTimeout) until a broker has
// received n messages: hidden on the queue, not yet settled.
func (s *stack) awaitInHand(n int) {
	s.t.Helper()
	q := s.openState().Queue()
	deadline := time.Now().Add(receiveTimeout)
	for {
		st, err := q.Stats(testContext(s.t, commandTimeout))
		if err != nil {
			s.t.Fatal(err)
		}
		if st.InFlight == n {
			return
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("a broker did not receive %d messages within %s: %+v", n, receiveTimeout, st)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestAMessageInHandOfAKilledServeReachesTheReconnectedListener kills
// `socks serve` with SIGKILL while its broker has a message in hand (no
// post answered before the post timeout), and starts serve again. No broker of the
// state dir is left to finish the message, so the new serve's broker takes
// it back at once (not after the dead broker's 60 s visibility timeout);
// but it first gives the killed gateway's clients time to reconnect (as
// `socks listen` does), so that the message reaches the reconnected
// listener, and a `publish --wait` that waited across the kill reports
// TestAMessagePublishedWhileServeRestartsReachesTheReconnectedListener:
// serve is stopped cleanly (Ctrl-C, an upgrade) with a listener
// connected; a message published while no gateway runs waits in the
// queue, and the next serve's broker delivers it once the listener is
// back, not at once to no one.
func TestAMessagePublishedWhileServeRestartsReachesTheReconnectedListener(t *testing.T) {
	t.Parallel()
	s := newStack(t)
	first := s.serve()
	l := s.listenPiped("--geek", "alice", "--topic", "updates", "--json")
	l.waitConnected(true)
	if code := first.stop(); code != 0 {
		t.Fatalf("serve exited %d; want 0", code)
	}
	s.must("publish", "--geek", "alice", "--topic", "updates", "--body", `{"n":2}`)
	next := s.serve()
	m, _ := waitListenLine(t, l.stdout, "the message published while serve was stopped", listenWait, func(s string) bool {
		return parseListenLine(t, s).Kind == "message"
	})
	if p := parseListenLine(t, m); !listenBodyIs(t, p, `{"n":2}`) {
		t.Errorf("got %s; want {\"n\":2}\nserve: %s", p.Body, next.stderr)
	}
}

// that delivery.
func TestAMessageInHandOfAKilledServeReachesTheReconnectedListener(t *testing.T) {
	t.Parallel()
	s := newStack(t)
	// Every post is answered after a minute, past the broker's 10 s post
	// timeout: the message stays in the first serve's hand until the kill.
	first := s.serve("--faults", "slow=1:1m")
	l := s.listenPiped("--geek", "alice", "--topic", "updates", "--json")
	l.waitConnected(true)
	wait := start(t, "publish", "--geek", "alice", "--topic", "updates", "--body", `{"n":1}`,
		"--wait", "--wait-timeout", "60s", "--json", "--state-dir", s.dir)
	s.awaitInHand(1)
	first.kill()

	next := s.serve()

	r := wait.result()
	if r.code != 0 {
		t.Fatalf("publish --wait across the kill:\n%s\nserve: %s", r, next.stderr)
	}
	if rep := parseReport(t, r); rep.Report.Targets != 1 || rep.Report.Delivered != 1 {
		t.Errorf("publish --wait reported %s; want targets=1 delivered=1 (the reconnected listener)", rep)
	}
	m, _ := waitListenLine(t, l.stdout, "the message in hand at the kill", listenWait, func(s string) bool {
		return parseListenLine(t, s).Kind == "message"
	})
	if p := parseListenLine(t, m); !listenBodyIs(t, p, `{"n":1}`) {
		t.Errorf("got %s; want {\"n\":1}", p.Body)
	}
}
