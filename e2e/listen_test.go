package e2e

import (
	"bufio"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/creack/pty"
)

// Acceptance tests of `socks listen`: the real binary, against a real
// `socks serve`, through a pipe and in a pseudo-terminal.

const (
	// listenWait bounds the wait for one thing a listenProc must show.
	listenWait = 15 * time.Second
	// reconnectWait bounds a reconnect after the gateway came back (the
	// backoff starts at 0.5 s and doubles).
	reconnectWait = 30 * time.Second
)

// listenProc is a `socks listen` running in the background with its standard
// streams on pipes.
type listenProc struct {
	t      *testing.T
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	stdout *lineReader
	stderr *lineReader
	errBuf *syncBuffer // everything on stderr, for failure messages
	done   chan struct{}
}

// listenPiped starts `socks listen --state-dir DIR ARGS` with piped streams.
// It is killed, if still running, when the test ends.
func (s *stack) listenPiped(args ...string) *listenProc {
	s.t.Helper()
	t := s.t.(*testing.T)
	cmd := exec.Command(socksBin, append([]string{"listen", "--state-dir", s.dir}, args...)...)
	cmd.Env = socksEnv(t.TempDir())
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	outR, outW := io.Pipe()
	errR, errW := io.Pipe()
	errBuf := newSyncBuffer()
	cmd.Stdout, cmd.Stderr = outW, io.MultiWriter(errW, errBuf)
	cmd.WaitDelay = 2 * time.Second
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting socks listen: %v", err)
	}
	l := &listenProc{t: t, cmd: cmd, stdin: stdin, stdout: newLineReader(outR), stderr: newLineReader(errR), errBuf: errBuf, done: make(chan struct{})}
	go func() {
		_ = cmd.Wait()
		outW.Close()
		errW.Close()
		close(l.done)
	}()
	t.Cleanup(func() {
		select {
		case <-l.done:
		default:
			_ = cmd.Process.Kill()
			<-l.done
		}
	})
	return l
}

// waitListenLine returns the first line from lr that satisfies ok, failing the
// test after d; the lines skipped are returned too.
func waitListenLine(t *testing.T, lr *lineReader, what string, d time.Duration, ok func(string) bool) (string, []string) {
	t.Helper()
	deadline := time.Now().Add(d)
	var skipped []string
	for {
		left := time.Until(deadline)
		if left <= 0 {
			t.Fatalf("want %s within %s; saw %q", what, d, skipped)
		}
		line := lr.next(t, what, left)
		if ok(line) {
			return line, skipped
		}
		skipped = append(skipped, line)
	}
}

// listenLine parses a --json / piped output line.
type listenLine struct {
	Time   time.Time       `json:"time"`
	Kind   string          `json:"kind"`
	Topic  string          `json:"topic"`
	Body   json.RawMessage `json:"body"`
	Text   *string         `json:"text"`
	Base64 []byte          `json:"base64"`
	State  string          `json:"state"`
	Topics []string        `json:"topics"`
	RTTMS  float64         `json:"rttMs"`
}

func parseListenLine(t *testing.T, line string) listenLine {
	t.Helper()
	var l listenLine
	if err := json.Unmarshal([]byte(line), &l); err != nil {
		t.Fatalf("output line %q is not JSON: %v", line, err)
	}
	if l.Time.IsZero() || l.Kind == "" {
		t.Fatalf("output line %q lacks time or kind", line)
	}
	return l
}

// nextJSON is the next stdout line, which must be JSON.
func (l *listenProc) nextJSON(what string) listenLine {
	l.t.Helper()
	return parseListenLine(l.t, l.stdout.next(l.t, what, listenWait))
}

// waitConnected waits for the state line saying it connected (on stderr
// when piped, on stdout with --json).
func (l *listenProc) waitConnected(jsonOut bool) {
	l.t.Helper()
	if jsonOut {
		waitListenLine(l.t, l.stdout, "a connected state line", reconnectWait, func(s string) bool {
			p := parseListenLine(l.t, s)
			return p.Kind == "state" && p.State == "connected"
		})
		return
	}
	waitListenLine(l.t, l.stderr, "a connected line on stderr", reconnectWait, func(s string) bool {
		return strings.Contains(s, " connected ws://127.0.0.1:")
	})
}

// interrupt sends SIGINT and returns the exit code (bounded).
func (l *listenProc) interrupt() int {
	l.t.Helper()
	if err := l.cmd.Process.Signal(os.Interrupt); err != nil && !errors.Is(err, os.ErrProcessDone) {
		l.t.Fatalf("SIGINT: %v", err)
	}
	return l.wait(stopTimeout)
}

// wait waits at most d for the listenProc to exit and returns its code.
func (l *listenProc) wait(d time.Duration) int {
	l.t.Helper()
	select {
	case <-l.done:
		return l.cmd.ProcessState.ExitCode()
	case <-time.After(d):
		l.t.Fatalf("socks listen did not exit within %s\nstderr: %q", d, l.errBuf)
	}
	return -1
}

func (l *listenProc) typeLine(s string) {
	l.t.Helper()
	if _, err := io.WriteString(l.stdin, s+"\n"); err != nil {
		l.t.Fatalf("typing %q: %v", s, err)
	}
}

func listenBodyIs(t *testing.T, l listenLine, want string) bool {
	t.Helper()
	var a, b any
	if json.Unmarshal(l.Body, &a) != nil || json.Unmarshal([]byte(want), &b) != nil {
		return false
	}
	x, _ := json.Marshal(a)
	y, _ := json.Marshal(b)
	return string(x) == string(y)
}

func TestListenPipedShowsItsMessagesAndTypedSubscriptions(t *testing.T) {
	t.Parallel()
	s := newStack(t)
	s.serve()
	l := s.listenPiped("--geek", "alice", "--topic", "updates")
	l.waitConnected(false)

	// Messages that must not arrive go first: the broker handles them in
	// order, so the first line is the first message alice should see.
	s.publishWait("--geek", "alice", "--topic", "news", "--body", `{"wrong":"topic"}`)
	s.publishWait("--geek", "bob", "--topic", "updates", "--body", `{"wrong":"geek"}`)
	s.publishWait("--geek", "alice", "--topic", "updates", "--body", `{"n":1}`)
	if m := l.nextJSON("alice's message"); m.Kind != "message" || m.Topic != "updates" || !listenBodyIs(t, m, `{"n":1}`) {
		t.Fatalf("first line %+v (%s); want the message {\"n\":1} on updates", m, m.Body)
	}

	l.typeLine("subscribe news")
	if r := l.nextJSON("the reply to subscribe"); r.Kind != "reply" || !listenBodyIs(t, r, `{"type":"subscribed","topics":["news","updates"]}`) {
		t.Fatalf("got %+v (%s); want the subscribed reply", r, r.Body)
	}
	s.publishWait("--geek", "alice", "--topic", "news", "--body", `{"n":2}`)
	if m := l.nextJSON("the message on news"); m.Kind != "message" || !listenBodyIs(t, m, `{"n":2}`) {
		t.Fatalf("got %+v (%s); want {\"n\":2}", m, m.Body)
	}

	// A standard input that ends does not end the listenProc.
	l.stdin.Close()
	s.publishWait("--geek", "alice", "--topic", "updates", "--body", `{"n":3}`)
	if m := l.nextJSON("a message after stdin closed"); !listenBodyIs(t, m, `{"n":3}`) {
		t.Fatalf("got %+v (%s); want {\"n\":3}", m, m.Body)
	}

	if code := l.interrupt(); code != 0 {
		t.Errorf("Ctrl-C: exit %d; want 0\nstderr: %q", code, l.errBuf)
	}
	if !strings.Contains(l.errBuf.String(), "closed (interrupted)") {
		t.Errorf("stderr %q does not say the connection was closed", l.errBuf)
	}
}

var ansiColour = regexp.MustCompile(`\x1b\[[0-9;]*m`)

// listenTerm is a `socks listen` (or another command, see inTerminal) in a
// pseudo-terminal.
type listenTerm struct {
	t    *testing.T
	ptmx *os.File
	cmd  *exec.Cmd
	out  *syncBuffer
	done chan struct{}
}

func (s *stack) listenInTerminal(args ...string) *listenTerm {
	// A UTF-8 locale, whatever the machine's, for the glyphs.
	return s.listenInTerminalWith([]string{"LC_ALL=C.UTF-8"}, args...)
}

// listenInTerminalWith is listenInTerminal with env added to the
// environment.
func (s *stack) listenInTerminalWith(env []string, args ...string) *listenTerm {
	return s.inTerminal(env, append([]string{"listen", "--state-dir", s.dir}, args...)...)
}

// inTerminal starts `socks ARGS` in a pseudo-terminal, its standard
// streams all on it, with env added to the environment. It is killed, if
// still running, when the test ends.
func (s *stack) inTerminal(env []string, args ...string) *listenTerm {
	t := s.t.(*testing.T)
	cmd := exec.Command(socksBin, args...)
	// Colour on, as in a real terminal.
	cmd.Env = append(append(socksEnv(t.TempDir()), "NO_COLOR=", "TERM=xterm-256color"), env...)
	ptmx, err := pty.StartWithSize(cmd, &pty.Winsize{Rows: 60, Cols: 120})
	if err != nil {
		t.Fatalf("starting socks %s in a pseudo-terminal: %v", args[0], err)
	}
	term := &listenTerm{t: t, ptmx: ptmx, cmd: cmd, out: newSyncBuffer(), done: make(chan struct{})}
	copied := make(chan struct{})
	go func() {
		_, _ = io.Copy(term.out, ptmx) // ends with EIO when the child exits
		close(copied)
	}()
	go func() {
		_ = cmd.Wait()
		close(term.done)
	}()
	t.Cleanup(func() {
		select {
		case <-term.done:
		default:
			_ = cmd.Process.Kill()
			<-term.done
		}
		ptmx.Close()
		<-copied
	})
	return term
}

// screen is what the terminal showed, without colours and carriage returns.
func (term *listenTerm) screen() string {
	return strings.ReplaceAll(ansiColour.ReplaceAllString(term.out.String(), ""), "\r", "")
}

// waitFor waits until the screen holds every string in want.
func (term *listenTerm) waitFor(d time.Duration, want ...string) {
	term.t.Helper()
	deadline := time.Now().Add(d)
	for {
		screen := term.screen()
		missing := ""
		for _, w := range want {
			if !strings.Contains(screen, w) {
				missing = w
				break
			}
		}
		if missing == "" {
			return
		}
		if time.Now().After(deadline) {
			term.t.Fatalf("the terminal did not show %q within %s; it shows:\n%s", missing, d, screen)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (term *listenTerm) send(s string) {
	term.t.Helper()
	if _, err := io.WriteString(term.ptmx, s); err != nil {
		term.t.Fatalf("typing %q: %v", s, err)
	}
}

func TestListenInATerminal(t *testing.T) {
	t.Parallel()
	s := newStack(t)
	srv := s.serve()
	term := s.listenInTerminal("--geek", "alice", "--topic", "updates")
	term.waitFor(listenWait, "socks listen", "endpoint  "+srv.URL, "geek      alice", "topics    updates", "● connected "+srv.URL+" as alice on updates")
	if !strings.Contains(term.out.String(), "\x1b[") {
		t.Error("the terminal output has no colour")
	}

	s.publishWait("--geek", "bob", "--topic", "updates", "--body", `{"wrong":"geek"}`)
	s.publishWait("--geek", "alice", "--topic", "updates", "--body", `{"n":1,"title":"\u001b]0;pwned\u0007\u001b[2J"}`)
	term.waitFor(listenWait, " updates\n  {\n    \"n\": 1,\n    \"title\": \"\\u001b]0;pwned\\u0007\\u001b[2J\"\n  }\n")
	raw := term.out.String()
	if strings.Contains(raw, "\x1b]0;") || strings.Contains(raw, "\x1b[2J") || strings.Contains(raw, "\a") {
		t.Errorf("control sequences from a message reached the terminal: %q", raw)
	}
	if strings.Contains(term.screen(), "wrong") {
		t.Errorf("bob's message reached alice:\n%s", term.screen())
	}

	term.send("subscribe news\r")
	term.waitFor(listenWait, "← subscribed news, updates")
	s.publishWait("--geek", "alice", "--topic", "news", "--body", `"on news"`)
	term.waitFor(listenWait, ` "on news"`)

	term.send("\x03") // Ctrl-C
	select {
	case <-term.done:
	case <-time.After(stopTimeout):
		t.Fatalf("Ctrl-C did not end socks listen within %s:\n%s", stopTimeout, term.screen())
	}
	if code := term.cmd.ProcessState.ExitCode(); code != 0 {
		t.Errorf("Ctrl-C: exit %d; want 0\n%s", code, term.screen())
	}
	term.waitFor(time.Second, "■ closed (interrupted)")
}

// TestListenOnATerminalWhoseLocaleIsNotUTF8: the glyphs (●, ↻, ■, the
// arrows) came out as mojibake on a terminal that is not UTF-8.
func TestListenOnATerminalWhoseLocaleIsNotUTF8(t *testing.T) {
	t.Parallel()
	s := newStack(t)
	srv := s.serve()
	term := s.listenInTerminalWith([]string{"LC_ALL=C"}, "--geek", "alice", "--topic", "updates")
	term.waitFor(listenWait, "* connected "+srv.URL+" as alice on updates")
	term.send("\x03") // Ctrl-C
	select {
	case <-term.done:
	case <-time.After(stopTimeout):
		t.Fatalf("Ctrl-C did not end socks listen within %s:\n%s", stopTimeout, term.screen())
	}
	term.waitFor(time.Second, "# closed (interrupted)")
	for _, r := range term.out.String() {
		if r > 127 {
			t.Fatalf("%q reached a terminal whose locale is C:\n%s", r, term.screen())
		}
	}
}

// TestListenInATerminalThatIsClosedCleansUp: closing the terminal window
// sends SIGHUP, which killed listen on the spot: the chatter ID it issued
// stayed valid for an hour.
func TestListenInATerminalThatIsClosedCleansUp(t *testing.T) {
	t.Parallel()
	s := newStack(t)
	srv := s.serve()
	term := s.listenInTerminal("--geek", "alice", "--topic", "updates")
	term.waitFor(listenWait, "● connected "+srv.URL+" as alice on updates")
	if out := s.must("chatter", "list", "--geek", "alice", "--json"); strings.TrimSpace(out) == "[]" {
		t.Fatal("listen issued no chatter ID")
	}
	// What the terminal's going away sends (closing the pty's master here
	// would wait for the reader of its output).
	if err := hangup(term.cmd.Process); err != nil {
		t.Fatal(err)
	}
	select {
	case <-term.done:
	case <-time.After(stopTimeout):
		t.Fatalf("closing its terminal did not end socks listen within %s", stopTimeout)
	}
	if code := term.cmd.ProcessState.ExitCode(); code != 0 {
		t.Errorf("after the hangup: %s; want exit 0, as after Ctrl-C", term.cmd.ProcessState)
	}
	if out := s.must("chatter", "list", "--geek", "alice", "--json"); strings.TrimSpace(out) != "[]" {
		t.Errorf("chatter IDs of alice after the hangup: %s; want the one listen issued revoked", out)
	}
}

func TestListenCountExitsZeroAfterThreeMessages(t *testing.T) {
	t.Parallel()
	s := newStack(t)
	s.serve()
	l := s.listenPiped("--geek", "alice", "--topic", "updates", "--count", "3", "--no-input")
	l.waitConnected(false)
	for i := 1; i <= 3; i++ {
		s.publishWait("--geek", "alice", "--topic", "updates", "--body", `{"i":`+string(rune('0'+i))+`}`)
	}
	if code := l.wait(listenWait); code != 0 {
		t.Fatalf("exit %d; want 0 after three messages\nstderr: %q", code, l.errBuf)
	}
	for i := 1; i <= 3; i++ {
		if m := l.nextJSON("a message"); m.Kind != "message" || !listenBodyIs(t, m, `{"i":`+string(rune('0'+i))+`}`) {
			t.Errorf("line %d: %+v (%s)", i, m, m.Body)
		}
	}
	if rest, ok := <-l.stdout.lines; ok {
		t.Errorf("stdout has more than three lines: %q", rest)
	}
}

func TestListenTimeoutExitsFour(t *testing.T) {
	t.Parallel()
	s := newStack(t)
	s.serve()
	start := time.Now()
	r := s.run("listen", "--geek", "alice", "--timeout", "1s", "--no-input")
	if r.code != 4 {
		t.Fatalf("exit %d; want 4\n%s", r.code, r)
	}
	if d := time.Since(start); d < time.Second {
		t.Errorf("exited after %s, before the 1s timeout", d)
	}
	if r.stdout != "" || !strings.HasSuffix(r.stderr, "socks: no message within 1s\n") {
		t.Errorf("want nothing on stdout and the reason last on stderr\n%s", r)
	}
	// It was said twice: "closed (no message within 1s)", then the error.
	if n := strings.Count(r.stderr, "no message within"); n != 1 || !strings.Contains(r.stderr, " closed\n") {
		t.Errorf("stderr says why %d times; want the closed line, then the reason once\n%s", n, r)
	}
}

// TestListenRefusedHandshakeExitsFiveAtOnce: a refused upgrade ends
// listen with exit 5 after that one handshake, never retried. listen
// goes to the gateway through a proxy here that counts the handshakes.
func TestListenRefusedHandshakeExitsFiveAtOnce(t *testing.T) {
	t.Parallel()
	s := newStack(t)
	srv := s.serve()
	s.issue("alice")
	gw, err := url.Parse(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	gw.Scheme = "http"
	forward := httputil.NewSingleHostReverseProxy(gw)
	var handshakes atomic.Int32
	proxy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		handshakes.Add(1)
		forward.ServeHTTP(w, r)
	}))
	t.Cleanup(proxy.Close)
	r := s.run("listen", "--url", "ws://"+proxy.Listener.Addr().String()+gw.Path, "--geek", "alice", "--id", "bogus", "--no-input")
	checkFailure(t, r, 5, "HTTP 403 Forbidden: chatter ID refused")
	if !strings.Contains(r.stderr, "socks chatter issue --geek alice") {
		t.Errorf("stderr %q has no hint", r.stderr)
	}
	if n := handshakes.Load(); n != 1 {
		t.Errorf("the gateway got %d handshakes; want one: a refusal must not be retried", n)
	}
}

func TestListenReconnectsAfterTheGatewayRestarts(t *testing.T) {
	t.Parallel()
	s := newStack(t)
	srv := s.serve()
	u, err := url.Parse(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	l := s.listenPiped("--geek", "alice", "--topic", "updates", "--json")
	l.waitConnected(true)
	l.typeLine("subscribe news")
	if r := l.nextJSON("the subscribed reply"); r.Kind != "reply" {
		t.Fatalf("got %+v; want the reply", r)
	}

	srv.kill()
	waitListenLine(t, l.stdout, "a disconnected state line", listenWait, func(s string) bool {
		p := parseListenLine(t, s)
		return p.Kind == "state" && p.State == "disconnected"
	})
	s.serve("--addr", u.Host)
	connected, _ := waitListenLine(t, l.stdout, "a connected state line after the restart", reconnectWait, func(s string) bool {
		p := parseListenLine(t, s)
		return p.Kind == "state" && p.State == "connected"
	})
	if p := parseListenLine(t, connected); strings.Join(p.Topics, ",") != "updates,news" {
		t.Errorf("reconnected following %q; want the typed subscription kept (updates,news, in the order asked for)", p.Topics)
	}

	s.publishWait("--geek", "alice", "--topic", "updates", "--body", `{"after":"restart"}`)
	s.publishWait("--geek", "alice", "--topic", "news", "--body", `{"typed":"kept"}`)
	for _, want := range []string{`{"after":"restart"}`, `{"typed":"kept"}`} {
		m, skipped := waitListenLine(t, l.stdout, "a message after the restart", listenWait, func(s string) bool {
			return parseListenLine(t, s).Kind == "message"
		})
		if p := parseListenLine(t, m); !listenBodyIs(t, p, want) {
			t.Errorf("got %s (after %q); want %s", p.Body, skipped, want)
		}
	}
	if code := l.interrupt(); code != 0 {
		t.Errorf("Ctrl-C: exit %d", code)
	}
}

func TestListenJSONOutputParsesLineByLine(t *testing.T) {
	t.Parallel()
	s := newStack(t)
	s.serve()
	l := s.listenPiped("--geek", "alice", "--json", "--no-input", "--show-ping", "--ping-interval", "1s")
	l.waitConnected(true)
	bodies := []string{`{"topic":"jobs","done":true}`, `"a \u001b[31m string"`, `[1,2,3]`}
	for _, b := range bodies {
		s.publishWait("--geek", "alice", "--topic", "jobs", "--body", b)
	}
	var got []listenLine
	sawPing := false
	for len(got) < len(bodies) || !sawPing {
		p := l.nextJSON("a message or ping line")
		switch p.Kind {
		case "message":
			got = append(got, p)
		case "ping":
			sawPing = p.RTTMS > 0
		}
	}
	for i, want := range bodies {
		if !listenBodyIs(t, got[i], want) {
			t.Errorf("message %d: %s; want %s", i, got[i].Body, want)
		}
	}
	if got[0].Topic != "jobs" {
		t.Errorf("the body's own topic is not reported: %+v", got[0])
	}
	if code := l.interrupt(); code != 0 {
		t.Errorf("Ctrl-C: exit %d", code)
	}
	// Everything left on stdout is JSON too, ending with the closed state.
	last := listenLine{}
	for line := range l.stdout.lines {
		last = parseListenLine(t, line)
	}
	if last.Kind != "state" || last.State != "closed" {
		t.Errorf("last line %+v; want the closed state", last)
	}
	if strings.ContainsRune(l.errBuf.String(), '\x1b') || strings.TrimSpace(l.errBuf.String()) != "" {
		t.Errorf("stderr %q; want nothing with --json", l.errBuf)
	}
}

func TestListenRenewsItsConnectionBeforeTheCap(t *testing.T) {
	t.Parallel()
	s := newStack(t)
	s.serve()
	l := s.listenPiped("--geek", "alice", "--topic", "updates", "--json", "--max-connection", "3s")
	l.waitConnected(true)
	l.typeLine("subscribe news")
	var states []string
	for done := false; !done; {
		p := l.nextJSON("the renewal")
		switch {
		case p.Kind == "state":
			states = append(states, p.State)
			if p.State == "connected" {
				done = true
				if strings.Join(p.Topics, ",") != "updates,news" {
					t.Errorf("the renewed connection follows %q; want updates,news (in the order asked for)", p.Topics)
				}
			}
		case p.Kind != "reply":
			t.Errorf("unexpected line %+v", p)
		}
	}
	if strings.Join(states, ",") != "renewing,connected" {
		t.Errorf("states %q; want renewing then connected, with no drop", states)
	}
	// The old connection was closed cleanly: its record is gone, so the
	// message targets exactly one connection.
	rep := s.publishWait("--geek", "alice", "--topic", "news", "--body", `{"n":1}`)
	m, skipped := waitListenLine(t, l.stdout, "the message", listenWait, func(s string) bool { return parseListenLine(t, s).Kind == "message" })
	if p := parseListenLine(t, m); !listenBodyIs(t, p, `{"n":1}`) {
		t.Errorf("got %s; want {\"n\":1}", p.Body)
	}
	// (Unless the next renewal already began: then two may overlap.)
	if rep.Report.Targets != 1 && len(skipped) == 0 {
		t.Errorf("publish reached %s; want exactly one connection after the renewal", rep)
	}
	l.interrupt()
}

// TestListenIntoAPipeClosedEarlyCleansUpQuietly: `socks listen | head -1`.
// Once head has its line and exits, the next write finds the pipe closed:
// listen ends as after Ctrl-C, closing its connection and revoking the
// chatter ID it issued itself, with no "broken pipe" noise and exit 141
// (128 + SIGPIPE, what a shell reports for a pipeline stage ended by it).
func TestListenIntoAPipeClosedEarlyCleansUpQuietly(t *testing.T) {
	t.Parallel()
	s := newStack(t)
	s.serve()
	cmd, outR, done, errBuf := listenIntoPipe(t, s, "--geek", "alice", "--topic", "updates")

	// head -1: read one line, then close the pipe.
	s.publishWait("--geek", "alice", "--topic", "updates", "--message", "first")
	line := make(chan string, 1)
	go func() {
		l, _ := bufio.NewReader(outR).ReadString('\n')
		line <- l
	}()
	select {
	case l := <-line:
		if !strings.Contains(l, `"first"`) {
			t.Fatalf("first line %q; want the message", l)
		}
	case <-time.After(listenWait):
		t.Fatalf("no line on stdout within %s\nstderr: %q", listenWait, errBuf)
	}
	outR.Close()

	// The next message meets the closed pipe.
	deadline := time.After(listenWait)
publishing:
	for {
		s.publishWait("--geek", "alice", "--topic", "updates", "--message", "more")
		select {
		case <-done:
			break publishing
		case <-deadline:
			t.Fatalf("socks listen still runs %s after its stdout was closed\nstderr: %q", listenWait, errBuf)
		case <-time.After(200 * time.Millisecond):
		}
	}
	if code := cmd.ProcessState.ExitCode(); code != 141 {
		t.Errorf("exit %d (%s); want 141, after cleaning up\nstderr: %q", code, cmd.ProcessState, errBuf)
	}
	if strings.Contains(strings.ToLower(errBuf.String()), "broken pipe") || strings.Contains(errBuf.String(), "socks:") {
		t.Errorf("stderr has noise about the closed pipe: %q", errBuf)
	}
	if ids := s.must("chatter", "list", "--geek", "alice", "--json"); ids != "[]" {
		t.Errorf("the chatter ID listen issued itself is still there: %s", ids)
	}
}

// TestListenIntoAPipeClosedWhileQuietEndsAtOnce: `socks listen | head -1`
// whose reader went away while no message came waited for the next
// message, which may never come, to find the pipe closed (a walk of the
// README left it running). It ends once the reader has gone, as above.
func TestListenIntoAPipeClosedWhileQuietEndsAtOnce(t *testing.T) {
	t.Parallel()
	s := newStack(t)
	s.serve()
	cmd, outR, done, errBuf := listenIntoPipe(t, s, "--geek", "alice")
	outR.Close() // head exited; nothing is published after
	select {
	case <-done:
	case <-time.After(listenWait):
		t.Fatalf("socks listen still runs %s after its stdout's reader went, with nothing to write\nstderr: %q", listenWait, errBuf)
	}
	if code := cmd.ProcessState.ExitCode(); code != 141 {
		t.Errorf("exit %d (%s); want 141\nstderr: %q", code, cmd.ProcessState, errBuf)
	}
	if strings.Contains(errBuf.String(), "socks:") {
		t.Errorf("stderr has noise about the closed pipe: %q", errBuf)
	}
	if ids := s.must("chatter", "list", "--geek", "alice", "--json"); ids != "[]" {
		t.Errorf("the chatter ID listen issued itself is still there: %s", ids)
	}
}

// TestListenJSONInATerminalIsOneObjectALineWithoutColour: --json on a
// terminal prints what it prints into a pipe, one JSON object a line, with
// no colour or other escape codes (a message's own escapes stay escaped).
func TestListenJSONInATerminalIsOneObjectALineWithoutColour(t *testing.T) {
	t.Parallel()
	s := newStack(t)
	s.serve()
	term := s.listenInTerminal("--geek", "alice", "--topic", "updates", "--json", "--no-input")
	term.waitFor(listenWait, `"state":"connected"`)
	s.publishWait("--geek", "alice", "--topic", "updates", "--body", `{"n":1,"title":"\u001b[31mred"}`)
	term.waitFor(listenWait, `"kind":"message"`)
	if err := term.cmd.Process.Signal(os.Interrupt); err != nil {
		t.Fatal(err)
	}
	select {
	case <-term.done:
	case <-time.After(stopTimeout):
		t.Fatalf("Ctrl-C did not end socks listen within %s", stopTimeout)
	}
	if code := term.cmd.ProcessState.ExitCode(); code != 0 {
		t.Errorf("Ctrl-C: exit %d; want 0, as documented", code)
	}
	// What it wrote last may still be on its way through the terminal.
	term.waitFor(listenWait, `"state":"closed"`)
	raw := term.out.String()
	var kinds []string
	for _, line := range strings.Split(strings.TrimSpace(strings.ReplaceAll(raw, "\r", "")), "\n") {
		if line == "socks: stopping: revoking the chatter ID listen issued (Ctrl-C again stops at once)" {
			// On standard error, also a terminal: what Ctrl-C
			// finishes, for the person watching, on a line of its
			// own: with --json started again by a "\r" (taken out
			// above) and not cleared by an escape code, as it is
			// over a spinner without --json.
			continue
		}
		if strings.ContainsRune(line, '\x1b') {
			t.Errorf("escape codes in --json output on a terminal: %q", line)
		}
		kinds = append(kinds, parseListenLine(t, line).Kind)
	}
	if got := strings.Join(kinds, ","); got != "state,message,state" {
		t.Errorf("lines of kinds %s; want state,message,state (connected, the message, closed)\n%s", got, raw)
	}
}

// TestListenExitsFiveWhenItsChatterIDIsRevokedWhileListening: the open
// connection is not cut by a revoke, but the next handshake (here the
// renewal) is refused: listen stops at once with exit 5 and says why,
// rather than retrying a chatter ID that will never work again.
func TestListenExitsFiveWhenItsChatterIDIsRevokedWhileListening(t *testing.T) {
	t.Parallel()
	s := newStack(t)
	s.serve()
	l := s.listenPiped("--geek", "alice", "--id", s.issue("alice"), "--no-input", "--max-connection", "2s")
	l.waitConnected(false)
	s.must("chatter", "revoke", "--geek", "alice", "--all")
	if code := l.wait(reconnectWait); code != 5 {
		t.Errorf("exit %d; want 5\nstderr: %s", code, l.errBuf)
	}
	if msg := l.errBuf.String(); !strings.Contains(msg, "HTTP 403 Forbidden: chatter ID refused") || !strings.Contains(msg, "socks chatter issue --geek alice") {
		t.Errorf("stderr %q; want the refusal and the hint", msg)
	}
}

// listenIntoPipe starts the built `socks listen` on s with args, its own
// standard output a pipe, as in `socks listen ... | head -1`, and returns
// once it says it is connected: the command, the pipe's read end (closed
// at the test's end), a channel closed once the process has ended, and
// its standard error.
func listenIntoPipe(t *testing.T, s *stack, args ...string) (*exec.Cmd, *os.File, <-chan struct{}, *syncBuffer) {
	t.Helper()
	outR, outW, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { outR.Close() })
	cmd := exec.Command(socksBin, append([]string{"listen", "--state-dir", s.dir, "--no-input"}, args...)...)
	cmd.Env = socksEnv(t.TempDir())
	cmd.Stdout = outW
	errR, errW := io.Pipe()
	errBuf := newSyncBuffer()
	cmd.Stderr = io.MultiWriter(errW, errBuf)
	cmd.WaitDelay = 2 * time.Second
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	outW.Close()
	done := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		errW.Close()
		close(done)
	}()
	t.Cleanup(func() {
		select {
		case <-done:
		default:
			_ = cmd.Process.Kill()
			<-done
		}
	})
	waitListenLine(t, newLineReader(errR), "a connected line on stderr", reconnectWait, func(l string) bool {
		return strings.Contains(l, " connected ws://127.0.0.1:")
	})
	return cmd, outR, done, errBuf
}

// TestListenReconnectsWhenTheGatewayLostItsRecord: a connection whose
// record is gone while its socket lives on (pruned, expired, a store
// wiped) gets nothing published, and the gateway answers its subscribe
// "this connection is not registered; reconnect". listen only showed that
// answer and stayed on the dead connection; it now opens a fresh one,
// which follows every topic, the one typed too, and gets what is
// published.
func TestListenReconnectsWhenTheGatewayLostItsRecord(t *testing.T) {
	t.Parallel()
	s := newStack(t)
	s.serve()
	l := s.listenPiped("--geek", "alice", "--topic", "updates", "--json")
	l.waitConnected(true)
	if _, err := s.openState().Store().DeleteAllConnections(testContext(t, commandTimeout)); err != nil {
		t.Fatal(err)
	}
	l.typeLine("subscribe news")
	if r := l.nextJSON("the reply to subscribe"); r.Kind != "reply" || !listenBodyIs(t, r, `{"type":"error","error":"this connection is not registered; reconnect"}`) {
		t.Fatalf("got %+v (%s); want the gateway's not registered", r, r.Body)
	}
	connected, skipped := waitListenLine(t, l.stdout, "a connected state line", reconnectWait, func(s string) bool {
		p := parseListenLine(t, s)
		return p.Kind == "state" && p.State == "connected"
	})
	if p := parseListenLine(t, connected); strings.Join(p.Topics, ",") != "updates,news" {
		t.Errorf("reconnected following %q; want updates,news", p.Topics)
	}
	if want := `"state":"disconnected","code":1000,"reason":"not registered"`; !strings.Contains(strings.Join(skipped, "\n"), want) {
		t.Errorf("lines before the reconnect %q; want one with %s", skipped, want)
	}
	s.publishWait("--geek", "alice", "--topic", "news", "--body", `{"typed":"kept"}`)
	m, _ := waitListenLine(t, l.stdout, "the message on news", listenWait, func(s string) bool {
		return parseListenLine(t, s).Kind == "message"
	})
	if p := parseListenLine(t, m); !listenBodyIs(t, p, `{"typed":"kept"}`) {
		t.Errorf("got %s; want the message on news", p.Body)
	}
	if code := l.interrupt(); code != 0 {
		t.Errorf("Ctrl-C: exit %d", code)
	}
}
