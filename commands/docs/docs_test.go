package docs_test

import (
	"bytes"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/socks-dev/socks/commands/cmdutil"
	"github.com/socks-dev/socks/commands/docs"
	"github.com/socks-dev/socks/commands/root"
	"github.com/socks-dev/socks/internal/build"
	"github.com/socks-dev/socks/iostreams"
)

// regenerate is the one command that brings docs/commands/ in step.
const regenerate = "run `make docs` and commit docs/commands/"

func newRoot(t *testing.T) (*docs.Options, *bytes.Buffer) {
	t.Helper()
	ios, _, _, errOut := iostreams.Test()
	f := &cmdutil.Factory{IOStreams: ios, Getenv: func(string) string { return "" }, Now: time.Now, Build: build.Info{Version: "1.2.3"}}
	return &docs.Options{IO: ios, Root: root.NewCmdRoot(f)}, errOut
}

func files(t *testing.T, dir string) map[string][]byte {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][]byte{}
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		out[e.Name()] = b
	}
	return out
}

// TestCommittedReferenceIsInStep regenerates the Markdown reference from
// the cobra tree and compares it with docs/commands/, file by file.
func TestCommittedReferenceIsInStep(t *testing.T) {
	opts, _ := newRoot(t)
	opts.Markdown = t.TempDir()
	if err := docs.Run(opts); err != nil {
		t.Fatal(err)
	}
	want := files(t, opts.Markdown)
	got := files(t, filepath.Join("..", "..", "docs", "commands"))
	for name, b := range want {
		have, ok := got[name]
		switch {
		case !ok:
			t.Errorf("docs/commands/%s is missing: %s", name, regenerate)
		case !bytes.Equal(have, b):
			t.Errorf("docs/commands/%s is out of step with the command's help: %s", name, regenerate)
		}
	}
	for name := range got {
		if _, ok := want[name]; !ok {
			t.Errorf("docs/commands/%s documents no command: %s", name, regenerate)
		}
	}
	if _, ok := want["socks_docs.md"]; ok {
		t.Error("the hidden docs command is in the reference")
	}
}

func TestManPagesCoverEveryCommand(t *testing.T) {
	opts, errOut := newRoot(t)
	opts.Man = t.TempDir()
	opts.Date = time.Date(2026, 1, 2, 0, 0, 0, 0, time.UTC)
	if err := docs.Run(opts); err != nil {
		t.Fatal(err)
	}
	man := files(t, opts.Man)
	var names []string
	for name := range man {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, want := range []string{"socks.1", "socks-publish.1", "socks-chatter-issue.1", "socks-prune-stale.1"} {
		if _, ok := man[want]; !ok {
			t.Errorf("no man page %s among %q", want, names)
		}
	}
	if p := man["socks-publish.1"]; !bytes.Contains(p, []byte(`.TH "SOCKS" "1" "Jan 2026"`)) || !bytes.Contains(p, []byte("event key")) {
		t.Errorf("socks-publish.1 lacks the header or the command's help:\n%s", p)
	}
	if !bytes.Contains(errOut.Bytes(), []byte("wrote the man pages into "+opts.Man)) {
		t.Errorf("stderr %q; want where the pages went", errOut)
	}
}

// TestManPagesDateFromSourceDateEpoch: the release builds the man pages
// in a before hook; their date comes from SOURCE_DATE_EPOCH (the commit's
// time there), not from the day the release ran, so that the same commit
// gives the same archives. A value that is not a time is refused.
func TestManPagesDateFromSourceDateEpoch(t *testing.T) {
	t.Setenv("SOURCE_DATE_EPOCH", "1741478400") // 2025-03-09T00:00:00Z
	opts, _ := newRoot(t)
	opts.Man = t.TempDir()
	if err := docs.Run(opts); err != nil {
		t.Fatal(err)
	}
	if p := files(t, opts.Man)["socks.1"]; !bytes.Contains(p, []byte(`.TH "SOCKS" "1" "Mar 2025"`)) {
		t.Errorf("socks.1's header has not the date of SOURCE_DATE_EPOCH:\n%.200s", p)
	}

	t.Setenv("SOURCE_DATE_EPOCH", "yesterday")
	opts, _ = newRoot(t)
	opts.Man = t.TempDir()
	err := docs.Run(opts)
	if err == nil || !strings.Contains(err.Error(), "SOURCE_DATE_EPOCH") {
		t.Errorf("Run with SOURCE_DATE_EPOCH=yesterday: %v; want an error naming it", err)
	}
}

// TestTheReferenceHasTheExitCodes: `socks --help` ends with the exit codes,
// which the generated reference and man page left out.
func TestTheReferenceHasTheExitCodes(t *testing.T) {
	opts, _ := newRoot(t)
	opts.Markdown, opts.Man = t.TempDir(), t.TempDir()
	if err := docs.Run(opts); err != nil {
		t.Fatal(err)
	}
	for _, page := range []string{filepath.Join(opts.Markdown, "socks.md"), filepath.Join(opts.Man, "socks.1")} {
		b, err := os.ReadFile(page)
		if err != nil {
			t.Fatal(err)
		}
		for _, want := range []string{"Exit codes:", "nothing found", "141"} {
			if !bytes.Contains(b, []byte(want)) {
				t.Errorf("%s lacks %q", filepath.Base(page), want)
			}
		}
	}
	if bytes.Count([]byte(opts.Root.Long), []byte("Exit codes:")) != 0 {
		t.Error("generating the reference left the exit codes in the root's help text, which --help shows after it too")
	}
}

// TestACommandThatRefusesTheGlobalFlagsDoesNotListThem: `socks demo`
// refuses --state-dir, --backend and the rest ("demo takes no
// --state-dir ... Run 'socks demo --help' for usage"), and its help and
// reference then listed them all under "Options inherited from parent
// commands". Its pages list none; another command's still do, and the
// flags stay shown there.
func TestACommandThatRefusesTheGlobalFlagsDoesNotListThem(t *testing.T) {
	opts, _ := newRoot(t)
	opts.Markdown, opts.Man = t.TempDir(), t.TempDir()
	if err := docs.Run(opts); err != nil {
		t.Fatal(err)
	}
	// The flag as each lists it (the descriptions name --state-dir too).
	const md, man = "--state-dir string", `state-dir\fP=`
	for _, tc := range []struct {
		page, flag string
		lists      bool
	}{
		{filepath.Join(opts.Markdown, "socks_demo.md"), md, false},
		{filepath.Join(opts.Man, "socks-demo.1"), man, false},
		{filepath.Join(opts.Markdown, "socks_publish.md"), md, true},
		{filepath.Join(opts.Man, "socks-publish.1"), man, true},
	} {
		b, err := os.ReadFile(tc.page)
		if err != nil {
			t.Fatal(err)
		}
		inherited := bytes.Contains(bytes.ToLower(b), []byte("inherited from parent commands"))
		stateDir := bytes.Contains(b, []byte(tc.flag))
		if inherited != tc.lists || stateDir != tc.lists {
			t.Errorf("%s: lists the inherited flags %v, --state-dir %v; want %v", filepath.Base(tc.page), inherited, stateDir, tc.lists)
		}
	}
}
