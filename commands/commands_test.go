package commands_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/socks-dev/socks/commands"
	"github.com/socks-dev/socks/commands/cmdutil"
	"github.com/socks-dev/socks/internal/build"
	"github.com/socks-dev/socks/iostreams"
)

type result struct {
	code   int
	stdout string
	stderr string
}

func run(t *testing.T, stateDir, stdin string, args ...string) result {
	t.Helper()
	ios, in, out, errOut := iostreams.Test()
	in.WriteString(stdin)
	env := map[string]string{"HOME": t.TempDir(), "SOCKS_STATE_DIR": stateDir}
	f := &cmdutil.Factory{
		IOStreams: ios,
		Getenv:    func(k string) string { return env[k] },
		Now:       time.Now,
		Build:     build.Info{Version: "1.2.3", Commit: "abc", Go: "go1.26"},
	}
	code := commands.Run(context.Background(), f, args)
	return result{code, out.String(), errOut.String()}
}

func TestExitCodesAndErrors(t *testing.T) {
	dir := t.TempDir()
	blocker := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(blocker, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name     string
		args     []string
		stdin    string
		state    string
		wantCode int
		wantErr  string
	}{
		{"version works", []string{"version"}, "", dir, 0, ""},
		{"an unknown flag is a usage error", []string{"publish", "--nope"}, "", dir, 2, "unknown flag: --nope"},
		{"an unknown command is a usage error", []string{"pubilsh"}, "", dir, 2, "unknown command"},
		{"publish without a topic is a usage error", []string{"publish", "--message", "hi"}, "", dir, 2, `"topic" not set`},
		{"an empty topic is refused", []string{"publish", "--topic", "", "--message", "x"}, "", dir, 2, "topic is empty"},
		{"an overlong geek is refused", []string{"publish", "--topic", "t", "--geek", strings.Repeat("g", 129), "--message", "x"}, "", dir, 2, "at most 128"},
		{"a control character in a topic is refused", []string{"publish", "--topic", "up\x07dates", "--message", "x"}, "", dir, 2, "control character"},
		{"bad JSON is refused", []string{"publish", "--topic", "t", "--body", "{nope"}, "", dir, 2, "not valid JSON"},
		{"bad JSON on stdin is refused", []string{"publish", "--topic", "t"}, "nope", dir, 2, "not valid JSON"},
		{"a body over 128 KB is refused", []string{"publish", "--topic", "t", "--body", `"` + strings.Repeat("x", 128*1024) + `"`}, "", dir, 2, "128 KB"},
		{"two body flags are refused", []string{"publish", "--topic", "t", "--body", "1", "--message", "x"}, "", dir, 2, "none of the others can be"},
		{"an unusable state dir names itself", []string{"chatter", "issue", "--geek", "alice"}, "", filepath.Join(blocker, "sub"), 1, "state dir"},
		{"an empty chatter list exits 3", []string{"chatter", "list"}, "", dir, 3, "no chatter IDs"},
		{"a bad ttl is a usage error", []string{"chatter", "issue", "--geek", "alice", "--ttl", "-1h"}, "", dir, 2, "ttl"},
		{"revoke needs --id or --all", []string{"chatter", "revoke", "--geek", "alice"}, "", dir, 2, "at least one of the flags"},
		{"an unknown backend is a usage error", []string{"--backend", "gcp", "config"}, "", dir, 2, "unknown backend"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := run(t, tt.state, tt.stdin, tt.args...)
			if r.code != tt.wantCode {
				t.Fatalf("exit %d, want %d; stderr: %s", r.code, tt.wantCode, r.stderr)
			}
			if tt.wantErr == "" {
				return
			}
			first := strings.SplitN(r.stderr, "\n", 2)[0]
			if !strings.Contains(first, tt.wantErr) {
				t.Fatalf("first stderr line %q does not contain %q", first, tt.wantErr)
			}
			if tt.wantCode == 2 && r.stdout != "" {
				t.Fatalf("a usage error printed on stdout: %q", r.stdout)
			}
		})
	}
}

func TestChatterIssueListRevoke(t *testing.T) {
	dir := t.TempDir()
	r := run(t, dir, "", "chatter", "issue", "--geek", "alice")
	if r.code != 0 {
		t.Fatalf("issue: %d %s", r.code, r.stderr)
	}
	secret := strings.TrimSpace(r.stdout)
	if !strings.HasPrefix(secret, "sc_") || len(secret) < 30 {
		t.Fatalf("issued %q", secret)
	}
	r = run(t, dir, "", "chatter", "list", "--geek", "alice")
	if r.code != 0 || strings.Contains(r.stdout, secret) {
		t.Fatalf("list: code %d, output %q (must not show the secret)", r.code, r.stdout)
	}
	lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
	if len(lines) != 2 || !strings.HasPrefix(lines[0], "GEEK\tFINGERPRINT") {
		t.Fatalf("plain list output = %q", r.stdout)
	}
	fp := strings.Split(lines[1], "\t")[1]
	r = run(t, dir, "", "chatter", "revoke", "--geek", "alice", "--id", fp)
	if r.code != 0 || !strings.Contains(r.stdout, "revoked 1 chatter ID") {
		t.Fatalf("revoke by fingerprint: %d %q %q", r.code, r.stdout, r.stderr)
	}
	r = run(t, dir, "", "chatter", "revoke", "--geek", "alice", "--id", secret)
	if r.code != 3 {
		t.Fatalf("revoking again must find nothing (exit 3), got %d", r.code)
	}
}

func TestPublishQueuesAndPrintsTheID(t *testing.T) {
	dir := t.TempDir()
	r := run(t, dir, "", "publish", "--geek", "alice", "--topic", "updates", "--message", "hi", "--id", "m-42")
	if r.code != 0 || strings.TrimSpace(r.stdout) != "m-42" {
		t.Fatalf("publish: %d %q %q", r.code, r.stdout, r.stderr)
	}
	if !strings.Contains(r.stderr, "no local gateway is running") {
		t.Fatalf("publishing with no gateway should say the message waits: %q", r.stderr)
	}
	r = run(t, dir, "", "publish", "--topic", "updates", "--message", "hi", "--wait", "--wait-timeout", "200ms")
	if r.code != cmdutil.ExitTimeout || !strings.Contains(r.stderr, "is the broker running") {
		t.Fatalf("--wait with no broker: %d %q", r.code, r.stderr)
	}
	r = run(t, dir, "", "publish", "--topic", "updates", "--message", "hi", "--direct")
	if r.code != 1 || !strings.Contains(r.stderr, "socks serve") {
		t.Fatalf("--direct with no gateway: %d %q", r.code, r.stderr)
	}
}

func TestVersionJSON(t *testing.T) {
	r := run(t, t.TempDir(), "", "version", "--json")
	if r.code != 0 || !strings.Contains(r.stdout, `"version":"1.2.3"`) {
		t.Fatalf("version --json: %q", r.stdout)
	}
}

func TestEveryCommandHasAnExample(t *testing.T) {
	r := run(t, t.TempDir(), "", "__complete", "")
	if r.code != 0 {
		t.Fatalf("completion: %d %s", r.code, r.stderr)
	}
	for _, c := range []string{"chatter", "config", "demo", "listen", "publish", "serve", "version"} {
		if !strings.Contains(r.stdout, c) {
			t.Errorf("completion does not offer %q", c)
		}
		h := run(t, t.TempDir(), "", c, "--help")
		if h.code != 0 || !strings.Contains(h.stdout, "Examples:") {
			t.Errorf("%s --help has no examples", c)
		}
	}
}
