package e2e

// docs/json.md documents what every command prints with --json;
// TestJSONOutputIsAsDocumented runs each local command it names against a
// local stack, with a warning firing, and TestAWSJSONOutputIsAsDocumented
// each AWS operator command (`--backend aws` in its heading) on moto; both
// check with jsondoc that stdout is one JSON value with no field the page
// does not show, no field of another type, and every field the page shows
// but those it marks optional.

import (
	"slices"
	"strings"
	"testing"

	"github.com/socks-dev/socks/internal/jsondoc"
)

func TestJSONOutputIsAsDocumented(t *testing.T) {
	t.Parallel()
	docs, err := jsondoc.Read()
	if err != nil {
		t.Fatal(err)
	}
	if len(docs) < 10 {
		t.Fatalf("found only %d commands in docs/json.md; is the parsing broken?", len(docs))
	}
	s := newStack(t)
	srv := s.serve()
	f := &readmeFixture{root: t, t: t, s: s, vars: map[string]string{}}
	chatterID := s.issue("Friendless", "--topics", "news,updates")
	mustDial(t, srv.connectURL("Friendless", chatterID, "news,updates"))
	s.issue("Friendless") // one more, for revoke --all
	dead := f.deadLetter()

	// Every command with --json is on the page but those that need AWS
	// or run on (listen and serve: their --help and the README show
	// theirs; provision, deploy and teardown are checked on moto by
	// TestAWSJSONOutputIsAsDocumented). bench runs a tiny bench of the
	// stack's gateway.
	for _, c := range []string{"chatter issue", "chatter list", "chatter revoke", "subs list", "subs stats", "publish", "dlq list", "dlq show", "dlq redrive", "dlq purge", "doctor", "prune-stale", "broker", "version", "config", "demo", "bench"} {
		if !slices.ContainsFunc(docs, func(d jsondoc.Section) bool { return strings.HasPrefix(d.Command, "socks "+c+" ") }) {
			t.Errorf("docs/json.md has no section for socks %s --json", c)
		}
	}

	for _, d := range docs {
		if isAWSSection(d) {
			continue
		}
		t.Run(d.Command, func(t *testing.T) {
			args := strings.Fields(strings.ReplaceAll(d.Command, "q-3f1c...", dead))[1:]
			s.t, f.t = t, t
			defer func() { s.t, f.t = f.root, f.root }()
			if strings.Contains(d.Command, "dlq purge") {
				f.deadLetter() // the one before was redriven
			}
			// An AWS setting with the local backend makes the command
			// warn: the warning goes to stderr, stdout stays JSON.
			env := append(socksEnv(t.TempDir()), "SOCKS_CALLBACK_URL=http://127.0.0.1:9/")
			if args[0] != "demo" { // which runs on a stack of its own, and refuses --state-dir
				args = append(args, "--state-dir", s.dir)
			}
			r := runEnv(t, env, nil, args...)
			if r.code != 0 {
				t.Fatalf("want exit 0:\n%s", r)
			}
			if warns := !slices.Contains([]string{"version", "config", "demo"}, args[0]); warns && !strings.Contains(r.stderr, "warning: $SOCKS_CALLBACK_URL") {
				t.Errorf("no warning about SOCKS_CALLBACK_URL on stderr, so this does not show stdout stays JSON when one fires:\n%s", r)
			}
			for _, p := range d.Check(r.stdout) {
				t.Error(p)
			}
		})
	}
}

// isAWSSection reports whether d is an AWS operator command's section,
// run on moto by TestAWSJSONOutputIsAsDocumented.
func isAWSSection(d jsondoc.Section) bool {
	return strings.Contains(d.Command, " --backend aws ")
}
