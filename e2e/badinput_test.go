package e2e

import (
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestBadInputIsRefusedAndLeavesNothingBehind feeds the binary bad flags,
// names, bodies, state dirs and addresses. Each gets its documented exit
// code (2 for usage errors, 1 for a broken environment), one error line
// that names the problem, nothing on stdout — and nothing half-done: a
// client listening to everything alice may be sent receives only the one
// valid message published after them.
func TestBadInputIsRefusedAndLeavesNothingBehind(t *testing.T) {
	t.Parallel()
	s := newStack(t)
	srv := s.serve()
	conn := mustDial(t, srv.connectURL("alice", s.issue("alice"), "updates"))

	tmp := t.TempDir()
	regular := filepath.Join(tmp, "regular-file")
	write(t, regular, "not a directory")
	readOnly := filepath.Join(tmp, "read-only")
	if err := os.Mkdir(readOnly, 0o500); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.Chmod(readOnly, 0o700) })
	overLimit := `"` + strings.Repeat("x", 128*1024) + `"` // 128 KB + 2 bytes
	overFile := filepath.Join(tmp, "over.json")
	write(t, overFile, overLimit)
	// Valid JSON over 1 MiB, more than a queue message may hold.
	huge := `"` + strings.Repeat("y", 2<<20) + `"`

	long := strings.Repeat("a", 129)
	topics51 := []string{"publish", "--geek", "alice", "--message", "hi"}
	for i := range 51 {
		topics51 = append(topics51, "--topic", "t"+strings.Repeat("x", i))
	}
	pub := func(args ...string) []string {
		return append([]string{"publish", "--geek", "alice", "--topic", "updates"}, args...)
	}

	for _, tc := range []struct {
		name  string
		args  []string
		stdin string
		own   bool // args carry their own --state-dir
		// notAsRoot: permission bits do not stop root; those cases skip.
		notAsRoot bool
		code      int
		phrase    string
	}{
		{name: "publish without --topic is a usage error", args: []string{"publish", "--geek", "alice", "--message", "hi"}, code: 2, phrase: "socks: --topic is required"},
		{name: "publish to an empty topic is a usage error", args: []string{"publish", "--topic", "", "--message", "hi"}, code: 2, phrase: "topic is empty"},
		{name: "publish to a 129-byte topic is a usage error", args: []string{"publish", "--topic", long, "--message", "hi"}, code: 2, phrase: "at most 128"},
		{name: "publish to a topic with a control character is a usage error", args: []string{"publish", "--topic", "up\x01dates", "--message", "hi"}, code: 2, phrase: "control character"},
		{name: "publish to 51 topics is a usage error", args: topics51, code: 2, phrase: "at most 50"},
		{name: "publish to an empty geek is a usage error", args: []string{"publish", "--geek", "", "--topic", "updates", "--message", "hi"}, code: 2, phrase: "geek is empty"},
		{name: "publish to a 129-byte geek is a usage error", args: []string{"publish", "--geek", long, "--topic", "updates", "--message", "hi"}, code: 2, phrase: "at most 128"},
		{name: "publish to a geek with a control character is a usage error", args: []string{"publish", "--geek", "al\x01ice", "--topic", "updates", "--message", "hi"}, code: 2, phrase: "control character"},
		{name: "publish with an ID with a control character is a usage error", args: pub("--message", "hi", "--id", "m\x01"), code: 2, phrase: "id"},
		{name: "publish of a body that is not JSON is a usage error", args: pub("--body", "{nope"), code: 2, phrase: "not valid JSON"},
		{name: "publish of a body file over 128 KB is a usage error", args: pub("--body-file", overFile), code: 2, phrase: "delivers at most 128 KiB per message"},
		{name: "publish of piped stdin over 128 KB is a usage error", args: pub(), stdin: overLimit, code: 2, phrase: "delivers at most 128 KiB per message"},
		{name: "publish of valid JSON over 1 MiB on stdin is called too big, not invalid", args: pub(), stdin: huge, code: 2, phrase: "delivers at most 128 KiB per message"},
		{name: "publish of an empty --body-file - is a usage error", args: pub("--body-file", "-"), code: 2, phrase: "empty"},
		{name: "publish to several topics with no body is a usage error", args: []string{"publish", "--geek", "alice", "--topic", "updates,news"}, code: 2, phrase: "no body"},
		{name: "publish of a missing body file is a usage error", args: pub("--body-file", filepath.Join(tmp, "missing.json")), code: 2, phrase: "no such file"},
		{name: "publish with two body flags is a usage error", args: pub("--body", "{}", "--message", "hi"), code: 2, phrase: "socks: --message and --body do not go together: give only one of --message, --body or --body-file"},
		{name: "publish with --wait and --direct is a usage error", args: pub("--body", "{}", "--wait", "--direct"), code: 2, phrase: "socks: --wait and --direct do not go together: give only one of --wait or --direct"},
		{name: "publish with an unknown flag is a usage error", args: pub("--body", "{}", "--nope"), code: 2, phrase: "unknown flag: --nope"},
		{name: "publish with a stray argument is a usage error", args: pub("--body", "{}", "stray"), code: 2, phrase: `"stray"`},
		{name: "an unknown command is a usage error", args: []string{"pubilsh", "--topic", "updates"}, code: 2, phrase: `unknown command "pubilsh"`},
		{name: "an unknown backend is a usage error", args: pub("--body", "{}", "--backend", "nope"), code: 2, phrase: `unknown backend "nope"`},
		{name: "chatter issue without --geek is a usage error", args: []string{"chatter", "issue"}, code: 2, phrase: "socks: --geek is required"},
		{name: "chatter issue for an empty geek is a usage error", args: []string{"chatter", "issue", "--geek", ""}, code: 2, phrase: "geek is empty"},
		{name: "chatter issue for a 129-byte geek is a usage error", args: []string{"chatter", "issue", "--geek", long}, code: 2, phrase: "at most 128"},
		{name: "chatter issue for a geek with a control character is a usage error", args: []string{"chatter", "issue", "--geek", "al\x01ice"}, code: 2, phrase: "control character"},
		{name: "chatter issue with a zero --ttl is a usage error", args: []string{"chatter", "issue", "--geek", "alice", "--ttl", "0s"}, code: 2, phrase: "out of range"},
		{name: "chatter issue limited to a pattern with '*' inside is a usage error", args: []string{"chatter", "issue", "--geek", "alice", "--topics", "up*dates"}, code: 2, phrase: "may only end one"},
		{name: "listen with a missing --id-file is a usage error", args: []string{"listen", "--geek", "alice", "--id-file", filepath.Join(tmp, "missing-id"), "--timeout", "1s"}, code: 2, phrase: "--id-file: cannot read"},
		{name: "serve with --max-topics over 50 is a usage error", args: []string{"serve", "--addr", "127.0.0.1:0", "--max-topics", "51"}, code: 2, phrase: "--max-topics 51 is out of range"},
		{name: "serve with an --allow-origin that is not an origin is a usage error", args: []string{"serve", "--addr", "127.0.0.1:0", "--allow-origin", "nope"}, code: 2, phrase: "--allow-origin takes origins"},
		{name: "chatter revoke without --id, --id-file or --all is a usage error", args: []string{"chatter", "revoke", "--geek", "alice"}, code: 2, phrase: "socks: give one of --id, --id-file or --all"},
		{name: "listen to a topic with a control character is a usage error", args: []string{"listen", "--geek", "alice", "--topic", "up\x01dates", "--timeout", "1s"}, code: 2, phrase: "control character"},
		{name: "serve with a zero --idle-timeout is a usage error", args: []string{"serve", "--addr", "127.0.0.1:0", "--idle-timeout", "0s"}, code: 2, phrase: "--idle-timeout"},
		{name: "a second serve on a state dir whose gateway runs fails", args: []string{"serve", "--addr", "127.0.0.1:0"}, code: 1, phrase: "a gateway is already running"},
		{name: "serve on an address in use fails", args: []string{"serve", "--addr", busyAddr(t), "--state-dir", t.TempDir()}, own: true, code: 1, phrase: "already in use"},
		{name: "serve on an address that is not HOST:PORT is a usage error", args: []string{"serve", "--addr", "nope", "--state-dir", t.TempDir()}, own: true, code: 2, phrase: `--addr "nope": give HOST:PORT`},
		{name: "a state dir below a regular file fails", args: []string{"chatter", "issue", "--geek", "alice", "--state-dir", filepath.Join(regular, "sub")}, own: true, code: 1, phrase: "cannot create state dir"},
		{name: "a state dir that is a regular file fails", args: pub("--body", "{}", "--state-dir", regular), own: true, code: 1, phrase: "cannot create state dir"},
		{name: "a state dir without write permission fails", args: pub("--body", "{}", "--state-dir", readOnly), own: true, notAsRoot: true, code: 1, phrase: "not writable"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var via []string
			if tc.notAsRoot && os.Geteuid() == 0 {
				// Permission bits do not stop root: its socks runs
				// without the capability to override them, as
				// runUnprivileged does.
				via = []string{"setpriv", "--bounding-set=-dac_override,-dac_read_search"}
			}
			args := tc.args
			if !tc.own {
				args = append(args, "--state-dir", s.dir)
			}
			var stdin io.Reader
			if tc.stdin != "" {
				stdin = strings.NewReader(tc.stdin)
			}
			r := runVia(t, via, socksEnv(t.TempDir()), stdin, args...)
			checkFailure(t, r, tc.code, tc.phrase)
		})
	}

	t.Run("nothing was half-written", func(t *testing.T) {
		t.Run("the unwritable state dirs are untouched", func(t *testing.T) {
			if fileExists(filepath.Join(regular, "sub")) {
				t.Error("a path below a regular file exists")
			}
			if b, err := os.ReadFile(regular); err != nil || string(b) != "not a directory" {
				t.Errorf("the regular file changed: %q, %v", b, err)
			}
			if entries, _ := os.ReadDir(readOnly); len(entries) != 0 {
				t.Errorf("the read-only state dir holds %d entries; want none", len(entries))
			}
		})
		t.Run("the queue held only the one valid message published next", func(t *testing.T) {
			rep := s.publishWait("--geek", "alice", "--topic", "updates", "--body", `{"valid":true}`)
			if rep.Report.Delivered != 1 {
				t.Errorf("publish --wait reported %s; want delivered=1", rep)
			}
			if got := readText(t, conn); got != `{"valid":true}` {
				t.Errorf("alice first received %q; want only %q", got, `{"valid":true}`)
			}
			expectSilence(t, conn, silenceWindow)
		})
		t.Run("the running gateway survived the second serve", func(t *testing.T) {
			select {
			case <-srv.done:
				t.Errorf("serve exited\nstderr: %q", srv.stderr)
			default:
			}
		})
	})
}

func write(t testing.TB, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}
