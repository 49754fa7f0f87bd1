package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"
)

const requireNodeEnv = "SOCKS_E2E_REQUIRE_NODE"

var (
	npmOnce sync.Once
	npmErr  error
)

// withoutNode skips t, saying what is missing and how to install it
// (install), or fails it when SOCKS_E2E_REQUIRE_NODE=1, which scripts/test
// sets, so that CI cannot pass a Node test by skipping it.
func withoutNode(t *testing.T, missing, install string) {
	t.Helper()
	if os.Getenv(requireNodeEnv) == "1" {
		t.Fatalf("%s (%s=1 requires the Node tests)", missing, requireNodeEnv)
	}
	t.Skipf("%s; to run this test: %s, and set %s=1 in CI so that it cannot skip", missing, install, requireNodeEnv)
}

// nodeAndNPM is what the Node tests need, and how to install it.
const nodeAndNPM = "Node 18+ and npm (Debian: apt-get install -y nodejs npm)"

// npmCI says how to install the packages of testdata/NAME.
func npmCI(name string) string {
	return fmt.Sprintf("run scripts/test, or: cd testdata/%s && npm ci, with %s", name, nodeAndNPM)
}

// nodeClientDir returns testdata/node-client with its dependencies
// installed (`npm ci`, once, when node_modules is missing) and the node
// binary. Without node and npm it skips, or fails when
// SOCKS_E2E_REQUIRE_NODE=1.
func nodeClientDir(t *testing.T) (dir, node string) {
	t.Helper()
	unavailable := func(format string, args ...any) {
		t.Helper()
		withoutNode(t, fmt.Sprintf(format, args...), "install "+nodeAndNPM)
	}
	node, err := exec.LookPath("node")
	if err != nil {
		unavailable("node is not installed")
	}
	npm, err := exec.LookPath("npm")
	if err != nil {
		unavailable("npm is not installed")
	}
	dir = filepath.Join(moduleDir, "testdata", "node-client")
	npmOnce.Do(func() {
		if fileExists(filepath.Join(dir, "node_modules", "ws", "package.json")) {
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, npm, "ci", "--no-audit", "--no-fund")
		cmd.Dir = dir
		if out, err := cmd.CombinedOutput(); err != nil {
			npmErr = fmt.Errorf("npm ci in %s: %v\n%s", dir, err, out)
		}
	})
	if npmErr != nil {
		unavailable("cannot install the Node client's dependencies: %v", npmErr)
	}
	return dir, node
}

// TestNodeClient connects with the `ws` library on Node, a client socks
// did not write, and exercises what a client may do: subscribe, receive,
// ping.
func TestNodeClient(t *testing.T) {
	t.Parallel()
	dir, node := nodeClientDir(t)
	s := newStack(t)
	srv := s.serve()

	ctx := testContext(t, 60*time.Second)
	cmd := exec.CommandContext(ctx, node, "client.mjs", srv.connectURL("dana", s.issue("dana"), "updates"),
		"--count", "4", "--timeout", "30000", "--subscribe", "extra")
	cmd.Dir = dir
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdoutR, stdoutW := io.Pipe()
	stderr := newSyncBuffer()
	cmd.Stdout, cmd.Stderr = stdoutW, stderr
	cmd.WaitDelay = 2 * time.Second
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting node client.mjs: %v", err)
	}
	exited := make(chan error, 1)
	go func() {
		err := cmd.Wait()
		stdoutW.Close()
		exited <- err
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-exited
	})
	frames := newLineReader(stdoutR)
	next := func(t *testing.T, what string) string {
		t.Helper()
		line := frames.next(t, what, receiveTimeout)
		t.Logf("node received %s", line)
		return line
	}

	steps := []struct {
		name string
		run  func(t *testing.T)
	}{
		{"the subscribe reply comes back as a subscribed frame", func(t *testing.T) {
			var reply struct {
				Type   string   `json:"type"`
				Topics []string `json:"topics"`
			}
			line := next(t, "the subscribe reply")
			if err := json.Unmarshal([]byte(line), &reply); err != nil {
				t.Fatalf("the reply %q is not JSON: %v", line, err)
			}
			if reply.Type != "subscribed" || !slices.Contains(reply.Topics, "extra") || !slices.Contains(reply.Topics, "updates") {
				t.Errorf("reply %q; want type subscribed with topics extra and updates", line)
			}
		}},
		{"a message to the topic it connected with arrives", func(t *testing.T) {
			s.publishWait("--geek", "dana", "--topic", "updates", "--body", `{"on":"updates"}`)
			if got := next(t, "the message on updates"); got != `{"on":"updates"}` {
				t.Errorf("got %q; want %q", got, `{"on":"updates"}`)
			}
		}},
		{"a message to the topic it subscribed to arrives", func(t *testing.T) {
			s.publishWait("--topic", "extra", "--body", `{"on":"extra"}`)
			if got := next(t, "the message on extra"); got != `{"on":"extra"}` {
				t.Errorf("got %q; want %q", got, `{"on":"extra"}`)
			}
		}},
		{"a ping gets a pong", func(t *testing.T) {
			if _, err := io.WriteString(stdin, `{"action":"ping"}`+"\n"); err != nil {
				t.Fatalf("writing to the client: %v", err)
			}
			var reply struct {
				Type string `json:"type"`
			}
			line := next(t, "the pong")
			if err := json.Unmarshal([]byte(line), &reply); err != nil || reply.Type != "pong" {
				t.Errorf("reply %q; want a frame of type pong", line)
			}
		}},
		{"the client exits 0 after its frames", func(t *testing.T) {
			select {
			case err := <-exited:
				exited <- err // for the cleanup
				if err != nil {
					t.Errorf("client.mjs: %v\nstderr: %q", err, stderr)
				}
			case <-time.After(receiveTimeout):
				t.Errorf("client.mjs still runs after 4 frames\nstderr: %q", stderr)
			}
		}},
	}
	for _, step := range steps {
		if !t.Run(step.name, step.run) {
			t.Logf("client.mjs stderr: %q", stderr)
			break
		}
	}
}
