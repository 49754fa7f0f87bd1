// Package e2e holds end-to-end tests: they build the real socks binary once
// and drive it as a user would — `socks serve` in the background on a free
// loopback port, `socks chatter` and `socks publish` as separate processes,
// and WebSocket clients that socks did not write (gorilla/websocket here, the
// Node `ws` library and a headless chromium in their own tests).
//
// Every test has its own state dir, every network address is on 127.0.0.1,
// and every wait is bounded. Run them with
//
//	go test -race -count=1 ./e2e/
//
// The Node and browser tests skip, saying how to enable them, when npm or
// chromium is missing; SOCKS_E2E_REQUIRE_NODE=1 and
// SOCKS_E2E_REQUIRE_BROWSER=1 turn those skips into failures (for CI).
package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/socks-dev/socks/internal/emulatortest"
	"github.com/socks-dev/socks/internal/srcroot"
)

const (
	// commandTimeout bounds one short socks command (chatter, publish).
	commandTimeout = 30 * time.Second
	// startTimeout bounds how long `socks serve` may take to print its URL.
	startTimeout = 15 * time.Second
	// stopTimeout bounds how long `socks serve` may take to exit after
	// SIGINT. The gateway gives clients a 1 s grace to answer its close
	// frame and gives up on them after 5 s.
	stopTimeout = 10 * time.Second
	// receiveTimeout bounds the wait for a message that must arrive.
	receiveTimeout = 10 * time.Second
	// silenceWindow is how long a client must stay silent to show that a
	// message did not reach it. It is waited only after a positive delivery
	// (or a `publish --wait` report) proved that the broker already handled
	// the message, so it only has to cover the last hop.
	silenceWindow = 300 * time.Millisecond
)

var (
	// socksBin is the binary TestMain built.
	socksBin string
	// moduleDir is the module root (for testdata/).
	moduleDir string
	// workDir is TestMain's scratch dir, where the binaries go.
	workDir string
)

// The Lambda function's bootstrap, built as deploy and the release build
// it (emulatortest.BuildBootstrap: the function only) by the first test that starts
// it (startFunction); the other tests never pay for the build.
var (
	bootstrapOnce sync.Once
	bootstrapBin  string
	bootstrapErr  error
)

func TestMain(m *testing.M) {
	os.Exit(runMain(m))
}

func runMain(m *testing.M) int {
	root, err := srcroot.Join()
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 1
	}
	tmp, err := os.MkdirTemp("", "socks-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 1
	}
	defer os.RemoveAll(tmp)

	bin := filepath.Join(tmp, "socks")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	// Built as the release is (.goreleaser.yaml: CGO_ENABLED=0, -trimpath),
	// which is also how the suite's other builds of ./cmd/socks build it
	// (cmd/socks's release test, internal/emulatortest, awsops's bootstrap):
	// they share the compiled packages in the build cache. With cgo, net
	// and every package above it were compiled once more for this binary
	// alone (87 s of a cold build's 144 s on the 2-core test machine).
	gobuild := exec.CommandContext(ctx, goTool(), "build", "-trimpath", "-o", bin, "./cmd/socks")
	gobuild.Dir = root
	gobuild.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := gobuild.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "e2e: go build -o %s ./cmd/socks: %v\n%s", bin, err, out)
		return 1
	}
	socksBin, moduleDir, workDir = bin, root, tmp
	return m.Run()
}

// goTool is the go command that runs this test, else the one on PATH.
func goTool() string {
	if goroot := os.Getenv("GOROOT"); goroot != "" {
		if p := filepath.Join(goroot, "bin", "go"); fileExists(p) {
			return p
		}
	}
	return "go"
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

// socksEnv is the environment of every socks process: the test's own,
// without anything that would select another backend or state dir, with
// colour off and XDG_STATE_HOME pointed at a scratch dir as a safety net
// (every command also gets --state-dir).
func socksEnv(scratch string) []string {
	var env []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(k, "SOCKS_") || k == "XDG_STATE_HOME" || k == "NO_COLOR" || k == "CLICOLOR_FORCE" {
			continue
		}
		env = append(env, kv)
	}
	return append(env, "NO_COLOR=1", "XDG_STATE_HOME="+scratch)
}

// testContext is bounded by d and by the test's own deadline (minus a
// margin to report), and ends when the test does.
func testContext(t testing.TB, d time.Duration) context.Context {
	t.Helper()
	ctx := t.Context()
	if dl, ok := t.(interface{ Deadline() (time.Time, bool) }); ok {
		if deadline, ok := dl.Deadline(); ok {
			var cancel context.CancelFunc
			ctx, cancel = context.WithDeadline(ctx, deadline.Add(-5*time.Second))
			t.Cleanup(cancel)
		}
	}
	ctx, cancel := context.WithTimeout(ctx, d)
	t.Cleanup(cancel)
	return ctx
}

// result is what one socks command did.
type result struct {
	args   []string
	code   int
	stdout string
	stderr string
}

func (r result) String() string {
	return fmt.Sprintf("socks %s\nexit %d\nstdout: %q\nstderr: %q", quoteArgs(r.args), r.code, r.stdout, r.stderr)
}

// quoteArgs shows arguments readably, abbreviating long ones.
func quoteArgs(args []string) string {
	q := make([]string, len(args))
	for i, a := range args {
		if len(a) > 60 {
			a = a[:40] + fmt.Sprintf("…(%d bytes)", len(a))
		}
		q[i] = fmt.Sprintf("%q", a)
	}
	return strings.Join(q, " ")
}

// runSocks runs the binary with exactly args (no --state-dir added) and
// stdin (nil: /dev/null), bounded by commandTimeout.
func runSocks(t testing.TB, stdin io.Reader, args ...string) result {
	t.Helper()
	return runEnv(t, socksEnv(t.TempDir()), stdin, args...)
}

// runEnv runs the binary with env and args, bounded by commandTimeout.
func runEnv(t testing.TB, env []string, stdin io.Reader, args ...string) result {
	t.Helper()
	return runVia(t, nil, env, stdin, args...)
}

// runVia is runEnv with the binary run by the command via (its argv, the
// binary and args following it), as `sh -c 'ulimit -f 0; exec "$@"' sh`.
func runVia(t testing.TB, via []string, env []string, stdin io.Reader, args ...string) result {
	t.Helper()
	ctx := testContext(t, commandTimeout)
	argv := append(append(slices.Clone(via), socksBin), args...)
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Env = env
	cmd.Stdin = stdin
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	cmd.WaitDelay = 2 * time.Second
	err := cmd.Run()
	r := result{args: args, stdout: stdout.String(), stderr: stderr.String()}
	var exitErr *exec.ExitError
	switch {
	case err == nil:
	case ctx.Err() != nil:
		t.Fatalf("socks %s did not finish within %s (killed)\nstdout: %q\nstderr: %q", quoteArgs(args), commandTimeout, r.stdout, r.stderr)
	case errors.As(err, &exitErr):
		r.code = exitErr.ExitCode()
	default:
		t.Fatalf("running socks %s: %v", quoteArgs(args), err)
	}
	return r
}

// stack is one user's local socks installation: a state dir of its own.
type stack struct {
	t   testing.TB
	dir string
}

func newStack(t testing.TB) *stack {
	return &stack{t: t, dir: t.TempDir()}
}

// run runs `socks ARGS --state-dir DIR`.
func (s *stack) run(args ...string) result {
	s.t.Helper()
	return runSocks(s.t, nil, append(args, "--state-dir", s.dir)...)
}

// runIn is run with stdin.
func (s *stack) runIn(stdin io.Reader, args ...string) result {
	s.t.Helper()
	return runSocks(s.t, stdin, append(args, "--state-dir", s.dir)...)
}

// must runs a command that has to succeed and returns its trimmed stdout.
func (s *stack) must(args ...string) string {
	s.t.Helper()
	r := s.run(args...)
	if r.code != 0 {
		s.t.Fatalf("want exit 0:\n%s", r)
	}
	return strings.TrimSpace(r.stdout)
}

// issue returns a fresh chatter ID for geek (`socks chatter issue`).
func (s *stack) issue(geek string, extra ...string) string {
	s.t.Helper()
	id := s.must(append([]string{"chatter", "issue", "--geek", geek}, extra...)...)
	if id == "" || strings.ContainsAny(id, " \t\n") {
		s.t.Fatalf("chatter issue printed %q; want one chatter ID", id)
	}
	return id
}

// report is the JSON `socks publish --wait --json` prints.
type report struct {
	ID     string `json:"id"`
	Queued bool   `json:"queued"`
	Report *struct {
		Targets   int      `json:"targets"`
		Delivered int      `json:"delivered"`
		Gone      int      `json:"gone"`
		Failed    int      `json:"failed"`
		Errors    []string `json:"errors"`
	} `json:"report"`
}

func (r report) String() string {
	if r.Report == nil {
		return fmt.Sprintf("%s (no report)", r.ID)
	}
	return fmt.Sprintf("%s targets=%d delivered=%d gone=%d failed=%d", r.ID, r.Report.Targets, r.Report.Delivered, r.Report.Gone, r.Report.Failed)
}

// publishWait runs `socks publish ARGS --wait --json`, which must succeed,
// and returns the broker's report.
func (s *stack) publishWait(args ...string) report {
	s.t.Helper()
	r := s.run(append(append([]string{"publish"}, args...), "--wait", "--wait-timeout", "20s", "--json")...)
	if r.code != 0 {
		s.t.Fatalf("want exit 0:\n%s", r)
	}
	return parseReport(s.t, r)
}

func parseReport(t testing.TB, r result) report {
	t.Helper()
	var rep report
	if err := json.Unmarshal([]byte(r.stdout), &rep); err != nil || rep.Report == nil {
		t.Fatalf("publish --wait --json printed no report (%v):\n%s", err, r)
	}
	return rep
}

// countConnections reports how many connection records the state holds, the
// way a user finds out: a message to every topic reaches every recorded
// connection, and `publish --wait` says how many it targeted.
func (s *stack) countConnections() int {
	s.t.Helper()
	return s.publishWait("--topic", ".", "--message", "census").Report.Targets
}

// proc is a socks process running in the background.
type proc struct {
	t      testing.TB
	args   []string
	cmd    *exec.Cmd
	stdout *syncBuffer
	stderr *syncBuffer
	done   chan struct{} // closed when the process exited
	err    error         // cmd.Wait's error, once done is closed

	stopOnce sync.Once
	code     int
}

// start starts `socks ARGS` in the background. It is interrupted (and, if
// it does not exit within stopTimeout, killed) when the test ends.
func start(t testing.TB, args ...string) *proc {
	t.Helper()
	return startEnv(t, socksEnv(t.TempDir()), args...)
}

// startEnv starts the binary in the background with env; it is stopped
// like start's.
func startEnv(t testing.TB, env []string, args ...string) *proc {
	t.Helper()
	return startBin(t, socksBin, env, args...)
}

// startFunction starts the Lambda function's bootstrap as Lambda starts
// it: no arguments, with env (which sets AWS_LAMBDA_RUNTIME_API).
func startFunction(t testing.TB, env []string) *proc {
	t.Helper()
	bootstrapOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		bootstrapBin, bootstrapErr = emulatortest.BuildBootstrap(ctx, workDir)
	})
	if bootstrapErr != nil {
		t.Fatal(bootstrapErr)
	}
	return startBin(t, bootstrapBin, env)
}

// startBin starts bin with args and env, as startEnv does.
func startBin(t testing.TB, bin string, env []string, args ...string) *proc {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Env = env
	p := &proc{t: t, args: args, cmd: cmd, stdout: newSyncBuffer(), stderr: newSyncBuffer(), done: make(chan struct{})}
	cmd.Stdout, cmd.Stderr = p.stdout, p.stderr
	cmd.WaitDelay = 2 * time.Second
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting socks %s: %v", quoteArgs(args), err)
	}
	go func() {
		p.err = cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() { p.stop() })
	return p
}

// interrupt sends SIGINT, as Ctrl-C does.
func (p *proc) interrupt() {
	if err := p.cmd.Process.Signal(os.Interrupt); err != nil && !errors.Is(err, os.ErrProcessDone) {
		p.t.Errorf("SIGINT to socks %s: %v", p.args[0], err)
	}
}

// wait waits at most d for the process to exit and returns its exit code
// (-1 when a signal killed it) and whether it exited.
func (p *proc) wait(d time.Duration) (int, bool) {
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-p.done:
		return p.cmd.ProcessState.ExitCode(), true
	case <-timer.C:
		return 0, false
	}
}

// result waits (bounded by commandTimeout) for the process to exit by itself
// and returns what it did.
func (p *proc) result() result {
	p.t.Helper()
	code, ok := p.wait(commandTimeout)
	if !ok {
		p.t.Fatalf("socks %s did not finish within %s\nstderr: %q", quoteArgs(p.args), commandTimeout, p.stderr)
	}
	return result{args: p.args, code: code, stdout: p.stdout.String(), stderr: p.stderr.String()}
}

// stop interrupts the process and waits for it; one that does not exit
// within stopTimeout is killed and the test fails. It returns the exit code
// and may be called more than once.
func (p *proc) stop() int {
	p.stopOnce.Do(func() {
		select {
		case <-p.done:
		default:
			p.interrupt()
		}
		code, ok := p.wait(stopTimeout)
		if !ok {
			_ = p.cmd.Process.Kill()
			<-p.done
			p.t.Errorf("socks %s did not exit within %s of SIGINT; killed it\nstderr: %q", p.args[0], stopTimeout, p.stderr)
			code = -1
		}
		p.code = code
	})
	return p.code
}

// kill ends the process with SIGKILL, as a crash would: no close frames,
// no $disconnect, no cleanup.
func (p *proc) kill() {
	p.stopOnce.Do(func() {
		_ = p.cmd.Process.Signal(syscall.SIGKILL)
		if _, ok := p.wait(stopTimeout); !ok {
			p.t.Errorf("socks %s survived SIGKILL for %s", p.args[0], stopTimeout)
		}
		p.code = -1
	})
}

// awaitStderr waits (bounded by d) until the process has written want on
// stderr; it fails the test if the process exits or d passes first.
func (p *proc) awaitStderr(want string, d time.Duration) {
	p.t.Helper()
	deadline := time.Now().Add(d)
	for !strings.Contains(p.stderr.String(), want) {
		select {
		case <-p.done:
			p.t.Fatalf("socks %s exited before writing %q on stderr:\n%s", quoteArgs(p.args), want, p.stderr)
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			p.t.Fatalf("socks %s did not write %q on stderr within %s:\n%s", quoteArgs(p.args), want, d, p.stderr)
		}
	}
}

// server is a `socks serve` running in the background.
type server struct {
	*proc
	URL string // the ws:// URL serve printed
}

// serve starts `socks serve --addr 127.0.0.1:0 EXTRA` on the stack's state
// dir (EXTRA's own --addr instead, when it has one: serve refuses two)
// and waits (bounded) for the URL it prints. The server is stopped with
// SIGINT when the test ends.
func (s *stack) serve(extra ...string) *server {
	s.t.Helper()
	args := []string{"serve", "--state-dir", s.dir}
	if !slices.Contains(extra, "--addr") {
		args = append(args, "--addr", "127.0.0.1:0")
	}
	p := start(s.t, append(args, extra...)...)
	srv := &server{proc: p}

	timer := time.NewTimer(startTimeout)
	defer timer.Stop()
	select {
	case line := <-p.stdout.firstLine:
		srv.URL = strings.TrimSpace(line)
	case <-p.done:
		s.t.Fatalf("socks serve exited before printing its URL (%v)\nstdout: %q\nstderr: %q", p.err, p.stdout, p.stderr)
	case <-timer.C:
		p.kill()
		s.t.Fatalf("socks serve printed no URL within %s\nstderr: %q", startTimeout, p.stderr)
	}
	u, err := url.Parse(srv.URL)
	if err != nil || u.Scheme != "ws" || !strings.HasPrefix(u.Host, "127.0.0.1:") || u.Port() == "0" {
		s.t.Fatalf("socks serve printed %q as its first line; want ws://127.0.0.1:PORT/", srv.URL)
	}
	return srv
}

// connectURL is the URL a browser would open for geek with chatter ID id on
// topics (a comma list; "" leaves the parameter out).
func (srv *server) connectURL(geek, id, topics string) string {
	q := url.Values{}
	if geek != "" {
		q.Set("geek", geek)
	}
	if id != "" {
		q.Set("id", id)
	}
	if topics != "" {
		q.Set("topic", topics)
	}
	return srv.URL + "?" + q.Encode()
}

// syncBuffer is a goroutine-safe buffer that also hands out its first line.
type syncBuffer struct {
	mu        sync.Mutex
	buf       bytes.Buffer
	firstLine chan string // receives the first complete line, once
	sent      bool
}

func newSyncBuffer() *syncBuffer {
	return &syncBuffer{firstLine: make(chan string, 1)}
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	n, err := b.buf.Write(p)
	if !b.sent {
		if line, _, ok := strings.Cut(b.buf.String(), "\n"); ok {
			b.sent = true
			b.firstLine <- line
		}
	}
	return n, err
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// dial opens a WebSocket connection the way a browser would, bounded. The
// connection is closed when the test ends.
func dial(t testing.TB, rawURL string) (*websocket.Conn, *http.Response, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	d := websocket.Dialer{HandshakeTimeout: 5 * time.Second}
	conn, resp, err := d.DialContext(ctx, rawURL, nil)
	if conn != nil {
		t.Cleanup(func() { conn.Close() })
	}
	return conn, resp, err
}

// mustDial is dial for a connection that must be accepted.
func mustDial(t testing.TB, rawURL string) *websocket.Conn {
	t.Helper()
	conn, resp, err := dial(t, rawURL)
	if err != nil {
		status := "no response"
		if resp != nil {
			b, _ := io.ReadAll(io.LimitReader(resp.Body, 1024))
			status = fmt.Sprintf("%s: %s", resp.Status, b)
		}
		t.Fatalf("connecting to %s: %v (%s)", redact(rawURL), err, status)
	}
	return conn
}

// redact hides the chatter ID in a connect URL for logs.
func redact(rawURL string) string {
	u, err := url.Parse(rawURL)
	if err != nil {
		return "(unparsable URL)"
	}
	q := u.Query()
	if q.Has("id") {
		q.Set("id", "REDACTED")
	}
	u.RawQuery = q.Encode()
	return u.String()
}

// readText reads the next message, which must be a text message arriving
// within receiveTimeout.
func readText(t testing.TB, conn *websocket.Conn) string {
	t.Helper()
	_ = conn.SetReadDeadline(time.Now().Add(receiveTimeout))
	kind, data, err := conn.ReadMessage()
	if err != nil {
		t.Fatalf("want a message within %s: %v", receiveTimeout, err)
	}
	if kind != websocket.TextMessage {
		t.Fatalf("got a message of type %d (%q); want a text message", kind, data)
	}
	return string(data)
}

// expectSilence fails the test if conn receives anything within d. A read
// that timed out leaves a gorilla connection unusable, so call it last.
func expectSilence(t testing.TB, conn *websocket.Conn, d time.Duration) {
	t.Helper()
	_ = conn.SetReadDeadline(time.Now().Add(d))
	_, data, err := conn.ReadMessage()
	if err == nil {
		t.Errorf("got %q; want nothing", data)
		return
	}
	var ne net.Error
	if !errors.As(err, &ne) || !ne.Timeout() {
		t.Errorf("want silence for %s, but the connection ended: %v", d, err)
	}
}

// checkFailure checks the shape every failing command must have: the exit
// code, nothing on stdout, and on stderr one line "socks: …" containing
// phrase (optionally followed by the usage hint line), free of escape codes.
func checkFailure(t testing.TB, r result, code int, phrase string) {
	t.Helper()
	if r.code != code {
		t.Errorf("exit code %d; want %d\n%s", r.code, code, r)
	}
	if r.stdout != "" {
		t.Errorf("stdout %q; want nothing on stdout\n%s", r.stdout, r)
	}
	if strings.ContainsRune(r.stderr, '\x1b') {
		t.Errorf("stderr has escape codes though it is not a terminal: %q", r.stderr)
	}
	lines := strings.Split(strings.TrimRight(r.stderr, "\n"), "\n")
	if len(lines) == 0 || !strings.HasPrefix(lines[0], "socks: ") {
		t.Errorf("stderr %q; want a first line starting %q", r.stderr, "socks: ")
		return
	}
	if !strings.Contains(lines[0], phrase) {
		t.Errorf("error %q does not say %q", lines[0], phrase)
	}
	switch {
	case len(lines) == 1:
	case len(lines) == 2 && code == 2 && strings.HasPrefix(lines[1], "Run '") && strings.HasSuffix(lines[1], " --help' for usage."):
	default:
		t.Errorf("stderr has %d lines; want the error on one line (plus the usage hint for exit 2):\n%s", len(lines), r.stderr)
	}
}

// checkEmpty checks what a list command with nothing to list does: exit 0,
// nothing on stdout, and note on stderr.
func checkEmpty(t testing.TB, r result, note string) {
	t.Helper()
	if r.code != 0 || r.stdout != "" || !strings.Contains(r.stderr, note) {
		t.Errorf("want exit 0, an empty stdout and %q on stderr:\n%s", note, r)
	}
}

// busyAddr holds a loopback port busy until the test ends and returns its
// address.
func busyAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	return ln.Addr().String()
}

// lineReader hands out the lines a process writes, one by one.
type lineReader struct {
	lines chan string
	done  chan struct{}
}

func newLineReader(r io.Reader) *lineReader {
	lr := &lineReader{lines: make(chan string, 256), done: make(chan struct{})}
	go func() {
		defer close(lr.done)
		sc := bufio.NewScanner(r)
		sc.Buffer(make([]byte, 0, 64*1024), 4*1024*1024)
		for sc.Scan() {
			lr.lines <- sc.Text()
		}
		close(lr.lines)
	}()
	return lr
}

// next returns the next line, or fails the test after d or at EOF.
func (lr *lineReader) next(t testing.TB, what string, d time.Duration) string {
	t.Helper()
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case line, ok := <-lr.lines:
		if !ok {
			t.Fatalf("want %s, but the output ended", what)
		}
		return line
	case <-timer.C:
		t.Fatalf("want %s within %s", what, d)
	}
	return ""
}
