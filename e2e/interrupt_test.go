//go:build unix

package e2e

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Acceptance tests of a second Ctrl-C (or SIGTERM): once a first one has
// stopped a command, which then finishes its work (listen revokes the
// chatter ID it issued, serve closes its clients), a second one stops it
// at once, saying what that leaves behind; signals within half a second
// of the first are part of it (one press a process manager passed on), so
// the tests press again until it stops. The work is held up by a lock
// on the state file, as a stuck process would hold it, so that the second
// signal always comes while it is under way.

// holdStateFile takes the write lock of the stack's state file from
// another connection until release is called (or the test ends).
func holdStateFile(t *testing.T, dir string) (release func()) {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+filepath.Join(dir, "socks.db"))
	if err != nil {
		t.Fatal(err)
	}
	ctx := testContext(t, commandTimeout)
	conn, err := db.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := conn.ExecContext(ctx, "PRAGMA busy_timeout=20000"); err != nil {
		t.Fatal(err)
	}
	if _, err := conn.ExecContext(ctx, "BEGIN EXCLUSIVE"); err != nil {
		t.Fatalf("locking the state file: %v", err)
	}
	done := false
	release = func() {
		if done {
			return
		}
		done = true
		if _, err := conn.ExecContext(context.Background(), "COMMIT"); err != nil {
			t.Errorf("unlocking the state file: %v", err)
		}
		conn.Close()
		db.Close()
	}
	t.Cleanup(release)
	return release
}

// untilConclusive runs an attempt up to three times, until one is
// conclusive. The first signal's work is held up by the lock for about
// 5 s (the bound each command gives it) and the second signal must arrive
// meanwhile: an attempt in which this machine held the test back longer
// than that ends with the work done and exit 0, which shows nothing either
// way, and is tried again. A second signal that does nothing still fails:
// every attempt then ends that way.
func untilConclusive(t *testing.T, attempt func() (conclusive bool)) {
	t.Helper()
	for i := range 3 {
		if attempt() {
			return
		}
		t.Logf("attempt %d: the work the first signal started was done before the second signal arrived (exit 0); trying again", i+1)
	}
	t.Fatal("in three attempts a second signal never stopped the command before its work was done: it does not stop at once")
}

// pressAgainUntilStopped presses again (press) every 100 ms until the
// command has ended (done), as someone does who wants it stopped now, and
// fails after stopTimeout. Signals within half a second of the first are
// part of it, one press passed on by a process manager; the first press
// after that stops the command at once. press must not fail once the
// command has ended.
func pressAgainUntilStopped(t *testing.T, press func(), done <-chan struct{}, what string) {
	t.Helper()
	deadline := time.After(stopTimeout)
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-done:
			return
		case <-deadline:
			t.Fatalf("pressing again for %s did not end %s", stopTimeout, what)
		case <-tick.C:
			press()
		}
	}
}

// signalProc sends sig to p, which may have ended meanwhile.
func signalProc(t *testing.T, p *os.Process, sig os.Signal) {
	t.Helper()
	if err := p.Signal(sig); err != nil && !errors.Is(err, os.ErrProcessDone) {
		t.Fatal(err)
	}
}

// pressCtrlC types Ctrl-C on the terminal, whose command may have ended
// meanwhile (the write may then fail).
func (term *listenTerm) pressCtrlC() { _, _ = io.WriteString(term.ptmx, "\x03") }

var wsURL = regexp.MustCompile(`ws://127\.0\.0\.1:[0-9]+/`)

var leftID = regexp.MustCompile(`the chatter ID listen issued for alice \(fingerprint ([0-9a-f]+)\) is not revoked: it expires by itself at (\S+), or ` + "`socks chatter revoke --geek alice --id [0-9a-f]+`" + ` revokes it now`)

// TestASecondSignalStopsListenAtOnceSayingTheChatterIDIsLeft: listen
// revokes the chatter ID it issued as it ends; a second SIGINT or SIGTERM
// meanwhile used to do nothing (it waited up to 5 s). Now it exits at once,
// 130 or 143, naming the ID it leaves and when it expires; off a terminal,
// the first signal adds nothing to stderr.
func TestASecondSignalStopsListenAtOnceSayingTheChatterIDIsLeft(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		sig  os.Signal
		code int
		says string
	}{
		{"Ctrl-C", os.Interrupt, 130, "socks: stopped at once by a second Ctrl-C: "},
		{"SIGTERM", syscall.SIGTERM, 143, "socks: stopped at once by a second SIGTERM: "},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			untilConclusive(t, func() bool {
				s := newStack(t)
				s.serve()
				l := s.listenPiped("--geek", "alice", "--topic", "updates", "--no-input")
				l.waitConnected(false)
				release := holdStateFile(t, s.dir)
				if err := l.cmd.Process.Signal(tc.sig); err != nil {
					t.Fatal(err)
				}
				waitListenLine(t, l.stderr, "the line saying the connection closed", listenWait, func(s string) bool {
					return strings.Contains(s, "closed (interrupted)")
				})
				// Already ended: its exit code says whether it was done.
				pressAgainUntilStopped(t, func() { signalProc(t, l.cmd.Process, tc.sig) }, l.done, "socks listen")
				code := l.wait(stopTimeout)
				if code == 0 {
					return false
				}
				if code != tc.code {
					t.Fatalf("after a second %s: exit %d; want %d at once\nstderr: %q", tc.name, code, tc.code, l.errBuf)
				}
				stderr := l.errBuf.String()
				if strings.Contains(stderr, "socks: stopping:") {
					t.Errorf("stderr is not a terminal, yet the first signal was noted:\n%s", stderr)
				}
				m := leftID.FindStringSubmatch(stderr)
				if !strings.Contains(stderr, tc.says) || m == nil {
					t.Fatalf("stderr does not say %q and which chatter ID is left, and when it expires:\n%s", tc.says, stderr)
				}
				release()
				// What it said was left is there, as it said.
				var ids []struct {
					Fingerprint string    `json:"fingerprint"`
					ExpiresAt   time.Time `json:"expiresAt"`
				}
				if err := json.Unmarshal([]byte(s.must("chatter", "list", "--geek", "alice", "--json")), &ids); err != nil {
					t.Fatal(err)
				}
				if len(ids) != 1 || ids[0].Fingerprint != m[1] || ids[0].ExpiresAt.UTC().Format(time.RFC3339) != m[2] {
					t.Errorf("chatter IDs of alice: %+v; want the one named as left, %s expiring at %s", ids, m[1], m[2])
				}
				return true
			})
		})
	}
}

// TestSignalsSentBackToBackLetListenFinish: a process manager (foreman,
// honcho) sends SIGTERM to what it runs when Ctrl-C is pressed once, while
// the terminal has sent SIGINT to them all: two signals back to back, from
// one press. They stopped listen at once, its chatter ID left valid. Now
// they are one: listen finishes, exits 0 and revokes the ID.
func TestSignalsSentBackToBackLetListenFinish(t *testing.T) {
	t.Parallel()
	s := newStack(t)
	s.serve()
	l := s.listenPiped("--geek", "alice", "--topic", "updates", "--no-input")
	l.waitConnected(false)
	if out := s.must("chatter", "list", "--geek", "alice", "--json"); strings.TrimSpace(out) == "[]" {
		t.Fatal("listen issued no chatter ID")
	}
	signalProc(t, l.cmd.Process, os.Interrupt)
	signalProc(t, l.cmd.Process, syscall.SIGTERM)
	if code := l.wait(stopTimeout); code != 0 || strings.Contains(l.errBuf.String(), "stopped at once") {
		t.Fatalf("after SIGINT and SIGTERM back to back: exit %d; want 0, listen finishing\nstderr: %q", code, l.errBuf)
	}
	if out := s.must("chatter", "list", "--geek", "alice", "--json"); strings.TrimSpace(out) != "[]" {
		t.Errorf("chatter IDs of alice: %s; want the one listen issued revoked", out)
	}
}

// TestOnATerminalCtrlCSaysWhatListenFinishesAndCtrlCAgainStopsIt: the
// first Ctrl-C says, once, what is being finished and that Ctrl-C again
// stops at once; the second does.
func TestOnATerminalCtrlCSaysWhatListenFinishesAndCtrlCAgainStopsIt(t *testing.T) {
	t.Parallel()
	untilConclusive(t, func() bool {
		s := newStack(t)
		srv := s.serve()
		term := s.listenInTerminal("--geek", "alice", "--topic", "updates")
		term.waitFor(listenWait, "● connected "+srv.URL+" as alice on updates")
		holdStateFile(t, s.dir)
		term.send("\x03")
		const note = "socks: stopping: revoking the chatter ID listen issued (Ctrl-C again stops at once)"
		term.waitFor(listenWait, note)
		pressAgainUntilStopped(t, term.pressCtrlC, term.done, "socks listen")
		code := term.cmd.ProcessState.ExitCode()
		if code == 0 {
			return false
		}
		if code != 130 {
			t.Errorf("after a second Ctrl-C: exit %d; want 130\n%s", code, term.screen())
		}
		// What it wrote last may still be on its way through the terminal.
		term.waitFor(listenWait, "socks: stopped at once by a second Ctrl-C: the chatter ID listen issued for alice")
		screen := term.screen()
		if strings.Count(screen, note) != 1 || !leftID.MatchString(screen) {
			t.Errorf("want the note once and what is left named:\n%s", screen)
		}
		return true
	})
}

// TestOnATerminalCtrlCWithJSONWritesNoEscapeSequence: `listen --json` on
// a terminal got "\r\x1b[K" before the first Ctrl-C's note on stderr,
// the one escape code --json let through. Now the note only starts the
// line again, over the "^C" the terminal echoed.
func TestOnATerminalCtrlCWithJSONWritesNoEscapeSequence(t *testing.T) {
	t.Parallel()
	s := newStack(t)
	s.serve()
	term := s.listenInTerminal("--geek", "alice", "--topic", "updates", "--json")
	term.waitFor(listenWait, `"state":"connected"`)
	release := holdStateFile(t, s.dir)
	term.send("\x03")
	const note = "socks: stopping: revoking the chatter ID listen issued (Ctrl-C again stops at once)"
	term.waitFor(listenWait, note)
	release()
	select {
	case <-term.done:
	case <-time.After(stopTimeout):
		t.Fatalf("listen did not end once its chatter ID could be revoked:\n%s", term.screen())
	}
	if code := term.cmd.ProcessState.ExitCode(); code != 0 {
		t.Errorf("exit %d; want 0, the chatter ID revoked", code)
	}
	if raw := term.out.String(); strings.ContainsRune(raw, '\x1b') || !strings.Contains(raw, "\r"+note) {
		t.Errorf("the terminal got an escape sequence, or the note does not start its line again:\n%q", raw)
	}
}

// TestASecondCtrlCStopsServeAtOnceAndTheNextServeStartsCleanly: serve
// stopped at once in its shutdown (a client connected, its $disconnect
// not run) leaves a state file the next serve starts on: it deletes the
// record left, as it said it would, and delivers.
func TestASecondCtrlCStopsServeAtOnceAndTheNextServeStartsCleanly(t *testing.T) {
	t.Parallel()
	untilConclusive(t, func() bool {
		s := newStack(t)
		id := s.issue("alice")
		term := s.inTerminal(nil, "serve", "--addr", "127.0.0.1:0", "--state-dir", s.dir)
		term.waitFor(startTimeout, "ws://127.0.0.1:")
		first := &server{URL: wsURL.FindString(term.screen())}
		mustDial(t, first.connectURL("alice", id, "updates"))
		if n := s.countConnections(); n != 1 {
			t.Fatalf("%d connection records; want alice's", n)
		}
		release := holdStateFile(t, s.dir)
		term.send("\x03")
		// Its broker holds no message: the note speaks of the connections only.
		term.waitFor(stopTimeout, "socks: stopping: closing the connections, for at most 5s (Ctrl-C again stops at once)")
		pressAgainUntilStopped(t, term.pressCtrlC, term.done, "socks serve")
		code := term.cmd.ProcessState.ExitCode()
		if code == 0 {
			return false
		}
		if code != 130 {
			t.Errorf("after a second Ctrl-C: exit %d; want 130\n%s", code, term.screen())
		}
		term.waitFor(listenWait, "socks: stopped at once by a second Ctrl-C: its clients got no close frame")
		if screen := term.screen(); strings.Contains(screen, "stopping: finishing the messages in hand") || strings.Contains(screen, "a message it had in hand") {
			t.Errorf("a serve whose broker held no message said it had some in hand:\n%s", screen)
		}
		release()

		next := s.serve()
		next.awaitStderr("deleted the connection records of a gateway that stopped without closing them", startTimeout)
		conn := mustDial(t, next.connectURL("alice", id, "updates"))
		s.publishWait("--geek", "alice", "--topic", "updates", "--body", `{"after":"the forced stop"}`)
		if got := readText(t, conn); !strings.Contains(got, "the forced stop") {
			t.Errorf("got %q; want the message published after the forced stop", got)
		}
		if r := s.run("doctor"); r.code != 0 {
			t.Errorf("doctor after the forced stop:\n%s", r)
		}
		return true
	})
}
