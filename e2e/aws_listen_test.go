package e2e

import (
	"encoding/json"
	"io"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// TestAWSListenReceivesWhatTheBrokerDelivers runs `socks listen --backend
// aws` against a `socks serve --backend aws` gateway, without --id: listen
// issues its own chatter ID in DynamoDB and revokes it on exit. A message
// published to another topic does not reach it; one published to its topic
// and delivered by `socks broker --backend aws` does, and --count 1 then
// exits 0.
func TestAWSListenReceivesWhatTheBrokerDelivers(t *testing.T) {
	t.Parallel()
	s := &awsStack{t: t, env: emulatorEnv(t), name: uniqueStack("listen")}
	s.provision()
	srv, mgmt := s.serve()
	brk := startEnv(t, s.env, s.args("broker", "--callback-url", mgmt, "--wait", "1s")...)

	cmd := exec.Command(socksBin, s.args("listen", "--url", srv.URL, "--geek", "alice", "--topic", "updates", "--count", "1", "--no-input")...)
	cmd.Env = s.env
	outR, outW := io.Pipe()
	errR, errW := io.Pipe()
	errBuf := newSyncBuffer()
	cmd.Stdout, cmd.Stderr = outW, io.MultiWriter(errW, errBuf)
	cmd.WaitDelay = 2 * time.Second
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting socks listen: %v", err)
	}
	done := make(chan error, 1)
	go func() {
		err := cmd.Wait()
		outW.Close()
		errW.Close()
		done <- err
	}()
	t.Cleanup(func() {
		select {
		case <-done:
		default:
			_ = cmd.Process.Kill()
			<-done
		}
	})
	stdout, stderr := newLineReader(outR), newLineReader(errR)
	waitListenLine(t, stderr, "a connected line on stderr", listenWait, func(l string) bool {
		return strings.Contains(l, " connected "+srv.URL)
	})

	t.Run("listen issued a chatter ID in DynamoDB", func(t *testing.T) {
		var ids []struct {
			Geek    string `json:"geek"`
			Expired bool   `json:"expired"`
		}
		r := s.run("chatter", "list", "--geek", "alice", "--json")
		if err := json.Unmarshal([]byte(r.stdout), &ids); err != nil || len(ids) != 1 || ids[0].Geek != "alice" || ids[0].Expired {
			t.Errorf("want one valid chatter ID for alice (%v):\n%s", err, r)
		}
		if out := s.must("subs", "list", "--geek", "alice"); strings.Count(out, "\talice\tupdates\t") != 1 {
			t.Errorf("subs list does not show listen's connection on updates:\n%s", out)
		}
	})

	t.Run("a message for another topic is handled by the broker and does not reach it", func(t *testing.T) {
		r := s.run("publish", "--geek", "alice", "--topic", "news", "--message", "not for you", "--wait", "--wait-timeout", "20s", "--json")
		if rep := parseReport(t, r); rep.Report.Targets != 0 {
			t.Errorf("report %s; want no target", rep)
		}
	})

	t.Run("a message for its topic arrives and --count 1 exits 0", func(t *testing.T) {
		s.must("publish", "--geek", "alice", "--topic", "updates", "--body", `{"stats":"refreshed"}`)
		line := stdout.next(t, "the delivered message", receiveTimeout)
		p := parseListenLine(t, line)
		if p.Kind != "message" || string(p.Body) != `{"stats":"refreshed"}` {
			t.Errorf("listen printed %q; want the updates message, not the news one", line)
		}
		timer := time.NewTimer(commandTimeout)
		defer timer.Stop()
		select {
		case err := <-done:
			done <- err // for the cleanup
			if err != nil {
				t.Errorf("listen --count 1: %v; want exit 0\nstderr: %s", err, errBuf)
			}
		case <-timer.C:
			t.Fatalf("listen --count 1 did not exit within %s of its message", commandTimeout)
		}
		for l := range stdout.lines {
			t.Errorf("listen printed more after its one message: %q", l)
		}
	})

	t.Run("the chatter ID listen issued is revoked on exit", func(t *testing.T) {
		checkEmpty(t, s.run("chatter", "list", "--geek", "alice"), "no chatter IDs for alice")
	})

	t.Run("the broker logged the delivery and stops cleanly", func(t *testing.T) {
		if code := brk.stop(); code != 0 {
			t.Errorf("broker exit %d; want 0\nstderr: %s", code, brk.stderr)
		}
		if !strings.Contains(brk.stderr.String(), "msg=delivered") {
			t.Errorf("broker stderr has no delivery log:\n%s", brk.stderr)
		}
	})
}
