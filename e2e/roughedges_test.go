package e2e

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/creack/pty"
	"github.com/gorilla/websocket"
)

// runOnTerminal runs `socks ARGS --state-dir DIR` with a pseudo-terminal as
// its stdin that nobody types into (stdout and stderr are pipes), bounded
// by commandTimeout: a command that waits for typed input is killed and
// the test fails.
func (s *stack) runOnTerminal(args ...string) result {
	s.t.Helper()
	ptmx, tty, err := pty.Open()
	if err != nil {
		s.t.Fatalf("opening a pseudo-terminal: %v", err)
	}
	defer ptmx.Close()
	defer tty.Close()
	args = append(args, "--state-dir", s.dir)
	ctx := testContext(s.t, commandTimeout)
	cmd := exec.CommandContext(ctx, socksBin, args...)
	cmd.Env = socksEnv(s.t.TempDir())
	cmd.Stdin = tty
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	cmd.WaitDelay = 2 * time.Second
	err = cmd.Run()
	r := result{args: args, stdout: stdout.String(), stderr: stderr.String()}
	var exitErr *exec.ExitError
	switch {
	case err == nil:
	case ctx.Err() != nil:
		s.t.Fatalf("socks %s waited for the terminal's input and was killed after %s\n%s", quoteArgs(args), commandTimeout, r)
	case errors.As(err, &exitErr):
		r.code = exitErr.ExitCode()
	default:
		s.t.Fatalf("running socks %s: %v", quoteArgs(args), err)
	}
	return r
}

// TestPublishAsAnOperatorTypesIt: `socks publish --geek Friendless --topic
// updates`, with no body, publishes the topic's name as the event key and
// says so, whether typed at a terminal (where it must not wait for input)
// or run with nothing piped in (cron); and `--topic a,b` reaches both
// topics, as `?topic=a,b` subscribes to both.
func TestPublishAsAnOperatorTypesIt(t *testing.T) {
	t.Parallel()
	s := newStack(t)
	srv := s.serve()
	updates := mustDial(t, srv.connectURL("Friendless", s.issue("Friendless"), "updates"))
	news := mustDial(t, srv.connectURL("Friendless", s.issue("Friendless"), "news"))
	both := mustDial(t, srv.connectURL("Friendless", s.issue("Friendless"), "news,updates"))

	for _, tc := range []struct {
		name string
		run  func(args ...string) result
	}{
		{"on a terminal", s.runOnTerminal},
		{"with nothing piped in", s.run},
	} {
		t.Run(tc.name+" the topic's name is the event key", func(t *testing.T) {
			r := tc.run("publish", "--geek", "Friendless", "--topic", "updates")
			if r.code != 0 || strings.TrimSpace(r.stdout) == "" {
				t.Fatalf("want exit 0 and the message ID:\n%s", r)
			}
			if !strings.Contains(r.stderr, `publishing the topic name "updates" as the event key`) {
				t.Errorf("stderr %q; want it to say the topic name is the event key", r.stderr)
			}
			if got := readText(t, updates); got != `"updates"` {
				t.Errorf("the updates client got %q; want the event key %q", got, `"updates"`)
			}
			if got := readText(t, both); got != `"updates"` {
				t.Errorf("the news,updates client got %q; want %q", got, `"updates"`)
			}
		})
	}

	t.Run("--topic a,b reaches subscribers of either, once each", func(t *testing.T) {
		rep := s.publishWait("--geek", "Friendless", "--topic", "news,updates", "--message", "both")
		if rep.Report.Targets != 3 || rep.Report.Delivered != 3 {
			t.Errorf("publish --wait reported %s; want targets=3 delivered=3", rep)
		}
		for name, conn := range map[string]func() string{
			"updates":      func() string { return readText(t, updates) },
			"news":         func() string { return readText(t, news) },
			"news,updates": func() string { return readText(t, both) },
		} {
			if got := conn(); got != `"both"` {
				t.Errorf("the %s client got %q; want %q", name, got, `"both"`)
			}
		}
		expectSilence(t, both, silenceWindow)
	})
}

// TestPublishWaitWithNoGatewayFailsAtOnce: with no `socks serve` on the
// state dir nothing can handle a message, so `publish --wait` says so at
// once (not after --wait-timeout), with the fix, and queues nothing.
func TestPublishWaitWithNoGatewayFailsAtOnce(t *testing.T) {
	t.Parallel()
	s := newStack(t)
	check := func(t *testing.T) {
		t.Helper()
		// An hour: were it to wait, runSocks would kill it after
		// commandTimeout and fail the test.
		r := s.run("publish", "--topic", "updates", "--message", "anyone?", "--wait", "--wait-timeout", "1h")
		checkFailure(t, r, 1, "no local gateway is running")
		if !strings.Contains(r.stderr, "socks serve") || !strings.Contains(r.stderr, "nothing was queued") {
			t.Errorf("stderr %q; want the fix (socks serve) and that nothing was queued", r.stderr)
		}
	}
	t.Run("before any serve ran", check)

	srv := s.serve()
	srv.kill()
	t.Run("after serve was killed and left its record behind", check)

	t.Run("nothing was queued", func(t *testing.T) {
		st, err := s.openState().Queue().Stats(testContext(t, commandTimeout))
		if err != nil {
			t.Fatal(err)
		}
		if st.Visible != 0 || st.InFlight != 0 {
			t.Errorf("queue %+v; want it empty", st)
		}
	})
}

// TestPruneStaleFromCronSaysNothingWhenNothingChanged: cron mails every
// line a job prints, so a run that deleted nothing and hit no error prints
// nothing; -v and --json always report.
func TestPruneStaleFromCronSaysNothingWhenNothingChanged(t *testing.T) {
	t.Parallel()
	s := newStack(t)
	srv := s.serve()
	mustDial(t, srv.connectURL("alice", s.issue("alice"), "updates"))

	t.Run("a plain run prints nothing", func(t *testing.T) {
		r := s.run("prune-stale")
		if r.code != 0 || r.stdout != "" || r.stderr != "" {
			t.Errorf("want exit 0 and nothing on stdout or stderr:\n%s", r)
		}
	})
	t.Run("-v reports the live connection it kept", func(t *testing.T) {
		r := s.run("prune-stale", "-v")
		if r.code != 0 || !strings.HasPrefix(r.stdout, "checked=1 deleted=0 ") || !strings.Contains(r.stderr, "keep ") {
			t.Errorf("want exit 0, the summary and the decision:\n%s", r)
		}
	})
	t.Run("--json reports", func(t *testing.T) {
		p := parsePrune(t, s.run("prune-stale", "--json"))
		if p.DeletedTotal != 0 || p.Kept != 1 {
			t.Errorf("prune-stale --json reported %+v; want nothing deleted and 1 kept", p)
		}
	})
}

// TestListenSendsASocksUserAgent: the gateway (API Gateway's identity, or
// the local one's GET @connections) sees socks/VERSION, not Go's default.
func TestListenSendsASocksUserAgent(t *testing.T) {
	t.Parallel()
	s := newStack(t)
	s.serve()
	l := s.listenPiped("--geek", "alice", "--topic", "updates", "--no-input")
	l.waitConnected(false)

	version := s.must("version", "--json")
	var v struct {
		Version string `json:"version"`
	}
	if err := json.Unmarshal([]byte(version), &v); err != nil || v.Version == "" {
		t.Fatalf("socks version --json printed %q (%v)", version, err)
	}
	var conns []struct {
		ID string `json:"connectionId"`
	}
	if err := json.Unmarshal([]byte(s.must("subs", "list", "--geek", "alice", "--json")), &conns); err != nil || len(conns) != 1 {
		t.Fatalf("subs list --json: %v, %d connections; want 1", err, len(conns))
	}
	req, err := http.NewRequestWithContext(testContext(t, commandTimeout), http.MethodGet, managementURL(t, s.openState())+"/@connections/"+conns[0].ID, nil)
	if err != nil {
		t.Fatal(err)
	}
	// Any signature will do locally; none at all is refused, as on AWS.
	req.Header.Set("Authorization", "AWS4-HMAC-SHA256 test")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET @connections/%s: %s", conns[0].ID, resp.Status)
	}
	var info struct {
		Identity struct {
			UserAgent string `json:"userAgent"`
		} `json:"identity"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&info); err != nil {
		t.Fatal(err)
	}
	if want := "socks/" + v.Version; info.Identity.UserAgent != want {
		t.Errorf("the gateway saw User-Agent %q; want %q", info.Identity.UserAgent, want)
	}
}

// TestServeSaysWhyItRefusedHeadersOverTheBound: a page, or its connect,
// whose cookies for localhost pushed the request past 10,240 bytes got
// net/http's bare 431 and `socks serve` logged nothing. Still 431, and
// serve's log now says what was refused and why: the size, the bound,
// the cookies.
func TestServeSaysWhyItRefusedHeadersOverTheBound(t *testing.T) {
	t.Parallel()
	s := newStack(t)
	srv := s.serve()
	cookies := "other_app_session=" + strings.Repeat("c", 12*1024)

	gw := "http://" + strings.TrimSuffix(strings.TrimPrefix(srv.URL, "ws://"), "/")
	req, err := http.NewRequestWithContext(testContext(t, commandTimeout), http.MethodGet, gw+"/", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Cookie", cookies)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusRequestHeaderFieldsTooLarge || !strings.Contains(string(body), "cookies") {
		t.Errorf("the page with 12 KB of cookies: %s %q; want 431 saying why", resp.Status, body)
	}
	srv.awaitStderr("request refused", startTimeout)

	ws, resp, err := websocket.DefaultDialer.Dial(srv.connectURL("alice", s.issue("alice"), "updates"), http.Header{"Cookie": {cookies}})
	if err == nil {
		ws.Close()
		t.Fatal("connected; want 431")
	}
	if resp == nil || resp.StatusCode != http.StatusRequestHeaderFieldsTooLarge {
		t.Fatalf("the connect with 12 KB of cookies: %v; want 431", err)
	}
	srv.awaitStderr("connect refused", startTimeout)
	for _, line := range strings.Split(srv.stderr.String(), "\n") {
		if !strings.Contains(line, "refused") {
			continue
		}
		if !strings.Contains(line, "status=431") || !strings.Contains(line, "at most 10240") || !strings.Contains(line, "cookies") {
			t.Errorf("serve logged %q; want the status, the size and bound, and the cookies named", line)
		}
		if strings.Contains(line, "ccccc") {
			t.Errorf("serve logged the cookies themselves: %q", line)
		}
	}
}
