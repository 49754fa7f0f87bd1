package commands_test

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/spf13/cobra"

	"github.com/socks-dev/socks/commands"
	"github.com/socks-dev/socks/commands/cmdutil"
	"github.com/socks-dev/socks/commands/root"
	"github.com/socks-dev/socks/config"
	"github.com/socks-dev/socks/internal/build"
	"github.com/socks-dev/socks/internal/text"
	"github.com/socks-dev/socks/iostreams"
	"github.com/socks-dev/socks/local"
	"github.com/socks-dev/socks/pubsub"
	"github.com/socks-dev/socks/store"
)

// Text from outside socks that would drive a terminal: an OSC 52
// clipboard write, a title, cursor moves that hide lines, a C1 CSI, a
// bidi override and a zero-width space. None of it is SGR, so none of it
// can pass for socks's own colours.
const (
	evilGeek  = "g\x1b]52;c;aGk=\x07\u202eeg"
	evilTopic = "t\u200bt\x1b[1A\x1b[2K"
	evilID    = "c\x1b]0;owned\x07\u009b2J"
	evilHash  = "\x1b[8mhidden-hash"
	evilBody  = `{"s":"b\u001b[2J"}` + "\n\x1b]52;c;aGk=\x07\u202e body"
	evilWhy   = "failed: \x1b[1A\x1b[2Kfine\u202e"
)

// seedOutsideText writes, below socks's own checks (as a backend in
// another language may write them), a connection, a chatter ID and a
// dead letter holding text that would drive a terminal.
func seedOutsideText(t *testing.T, dir string) {
	t.Helper()
	ctx := context.Background()
	db, err := local.Open(ctx, filepath.Join(dir, config.StateFile), local.Options{Now: time.Now})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	s := db.Store()
	now := time.Now()
	if err := s.PutConnection(ctx, pubsub.Connection{ID: evilID, Geek: evilGeek, Topics: []string{evilTopic}, ConnectedAt: now, ExpiresAt: now.Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	if err := s.PutChatterID(ctx, store.ChatterID{Geek: evilGeek, Hash: evilHash, IssuedAt: now, ExpiresAt: now.Add(time.Hour), Topics: []string{evilTopic}}); err != nil {
		t.Fatal(err)
	}
	q := db.Queue()
	if _, err := q.Send(ctx, []byte(evilBody)); err != nil {
		t.Fatal(err)
	}
	msgs, err := q.Receive(ctx, 1, time.Minute, time.Second)
	if err != nil || len(msgs) != 1 {
		t.Fatalf("receive: %v %v", msgs, err)
	}
	if err := q.DeadLetter(ctx, msgs[0], evilWhy); err != nil {
		t.Fatal(err)
	}
}

// runOn runs args with stdout and stderr terminals, or both piped.
func runOn(t *testing.T, dir string, tty bool, args ...string) result {
	t.Helper()
	ios, _, out, errOut := iostreams.Test()
	ios.SetTTY(false, tty, tty)
	ios.SetWidth(400)
	env := map[string]string{"HOME": t.TempDir(), "SOCKS_STATE_DIR": dir}
	f := &cmdutil.Factory{
		IOStreams: ios,
		Getenv:    func(k string) string { return env[k] },
		Now:       time.Now,
		Build:     build.Info{Version: "1.2.3", Commit: "abc", Go: "go1.26"},
	}
	code := commands.Run(context.Background(), f, args)
	return result{code, out.String(), errOut.String()}
}

// coveredElsewhere are the commands this test does not run, and where
// what they print from outside is tested.
var coveredElsewhere = map[string]string{
	"listen":    "commands/listen TestNamesFromOutsideAreShownEscaped, TestPlainTerminalRendering, FuzzRenderNeverEmitsControlCharacters; e2e TestListenInATerminal",
	"serve":     "runs on; its log lines: commands/cmdutil TestLogLinesShowOutsideValuesEscaped",
	"deploy":    "AWS; its drifts: commands/deploy TestADriftQuotingAWSCannotDriveTheTerminal",
	"provision": "AWS; its drifts: commands/provision TestADriftQuotingAWSCannotDriveTheTerminal",
	"teardown":  "AWS; its warnings go through cmdutil.Notef, its errors through Main",
	"demo":      "starts its own stack and prints only what it sent",
	"bench":     "starts its own stack and prints only measurements",
	"client-js": "prints socks.js, socks's own file",
}

// sgr is socks's own styling, and its spinner's clearing of its line:
// the only escapes it writes.
var sgr = regexp.MustCompile(`\x1b\[[0-9;]*m|\r\x1b\[K`)

// rawUnsafe returns the first rune of s, socks's colours aside, that a
// terminal would act on or that hides in text.
func rawUnsafe(s string) (rune, bool) {
	for _, r := range sgr.ReplaceAllString(s, "") {
		if r != '\n' && text.UnsafeRune(r) {
			return r, true
		}
	}
	return 0, false
}

func TestOutsideTextCannotDriveTheTerminal(t *testing.T) {
	// The state dir's path is named in notes and errors: a directory's
	// name may hold anything but '/' and NUL.
	dir := filepath.Join(t.TempDir(), "state\x1b]0;t\x07")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if r := run(t, dir, "", "chatter", "issue", "--geek", "zed"); r.code != 0 {
		t.Fatal(r.stderr)
	}
	seedOutsideText(t, dir)
	r := runOn(t, dir, false, "dlq", "list")
	dead := strings.SplitN(strings.Split(r.stdout, "\n")[1], "\t", 2)[0]
	// Every command that prints what the store or the queue holds, and
	// an error that echoes what it was given; the others are in
	// coveredElsewhere.
	walked := [][]string{
		{"subs", "list"},
		{"subs", "list", "--topic", "t"},
		{"subs", "stats"},
		{"chatter", "list"},
		{"dlq", "list"},
		{"dlq", "show", dead},
		{"dlq", "show", evilID},
		{"dlq", "redrive", evilID},
		{"config"},
		{"doctor"},
		{"prune-stale", "--dry-run"},
		{"prune-stale", "--dry-run", "-v"},
		{"dlq", "list", "--state-dir", filepath.Join(dir, "nothing\u202e")},
		{"dlq", "purge", evilID, "--yes"},
		{"chatter", "revoke", "--geek", "nobody", "--id", "3fa4c09b1e2d"},
		{"chatter", "issue", "--geek", "g\x1b[2J"},
		{"publish", "--topic", "t", "--message", evilBody},
		{"broker", "--once", "--wait", "0s"},
		{"version"},
	}
	t.Run("every command is walked here or covered elsewhere", func(t *testing.T) {
		ios, _, _, _ := iostreams.Test()
		top := root.NewCmdRoot(&cmdutil.Factory{IOStreams: ios, Getenv: func(string) string { return "" }})
		var walk func(c *cobra.Command)
		walk = func(c *cobra.Command) {
			for _, sub := range c.Commands() {
				if sub.Hidden || sub.Name() == "help" || c.Name() == "completion" {
					continue
				}
				walk(sub)
				if sub.HasSubCommands() {
					continue
				}
				path := strings.TrimPrefix(sub.CommandPath(), "socks ")
				if _, ok := coveredElsewhere[path]; ok {
					continue
				}
				if !slices.ContainsFunc(walked, func(args []string) bool { return strings.HasPrefix(strings.Join(args, " ")+" ", path+" ") }) {
					t.Errorf("socks %s is neither walked by this test nor in coveredElsewhere", path)
				}
			}
		}
		walk(top)
	})
	for _, args := range walked {
		name := strings.Join(args, " ")
		t.Run(name+" on a terminal shows it escaped", func(t *testing.T) {
			r := runOn(t, dir, true, args...)
			for stream, got := range map[string]string{"stdout": r.stdout, "stderr": r.stderr} {
				if c, ok := rawUnsafe(got); ok {
					t.Errorf("%s has %U raw (exit %d):\n%q", stream, c, r.code, got)
				}
			}
		})
		t.Run(name+" --json is JSON that a terminal shows without acting on", func(t *testing.T) {
			r := runOn(t, dir, true, append(args, "--json")...)
			if r.code == 0 && !json.Valid([]byte(r.stdout)) {
				t.Errorf("not JSON: %q", r.stdout)
			}
			if c, ok := rawUnsafe(r.stdout); ok {
				t.Errorf("stdout has %U raw:\n%q", c, r.stdout)
			}
		})
	}
	t.Run("piped, the data is exact", func(t *testing.T) {
		for _, tc := range []struct {
			args []string
			want []string
		}{
			{[]string{"subs", "list"}, []string{evilID, evilGeek, evilTopic}},
			{[]string{"subs", "stats"}, []string{evilID, evilTopic}},
			{[]string{"chatter", "list"}, []string{evilGeek, evilHash[:12]}},
			{[]string{"dlq", "list"}, []string{evilWhy}},
			{[]string{"dlq", "show", dead}, []string{evilBody, evilWhy}},
		} {
			r := runOn(t, dir, false, tc.args...)
			for _, w := range tc.want {
				if !strings.Contains(r.stdout, w) {
					t.Errorf("%s piped does not hold %q exactly:\n%q", strings.Join(tc.args, " "), w, r.stdout)
				}
			}
		}
	})
	t.Run("with --json, the data reads back exactly", func(t *testing.T) {
		var conns []pubsub.Connection
		r := runOn(t, dir, true, "subs", "list", "--json")
		if err := json.Unmarshal([]byte(r.stdout), &conns); err != nil || len(conns) != 1 || conns[0].Geek != evilGeek || conns[0].ID != evilID || conns[0].Topics[0] != evilTopic {
			t.Errorf("subs list --json reads back as %+v (%v)", conns, err)
		}
		var letter struct {
			Reason   string  `json:"reason"`
			BodyText *string `json:"bodyText"`
		}
		r = runOn(t, dir, true, "dlq", "show", dead, "--json")
		if err := json.Unmarshal([]byte(r.stdout), &letter); err != nil || letter.Reason != evilWhy || letter.BodyText == nil || *letter.BodyText != evilBody {
			t.Errorf("dlq show --json reads back as %+v (%v)", letter, err)
		}
	})
}
