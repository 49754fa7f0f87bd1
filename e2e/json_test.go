package e2e

// docs/json.md documents what every read command prints with --json;
// TestJSONOutputIsAsDocumented runs each command it names against a local
// stack, with a warning firing, and checks that stdout is one JSON value
// with no field the page does not show, no field of another type, and
// every field the page shows but those it marks optional.

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
)

// jsonDoc is one command of docs/json.md and the example it shows.
type jsonDoc struct {
	command string
	example string
	// optional are the fields the section's words mark optional
	// ("`name` (optional...", "`name`, optional", or a list "(optional:
	// `a`, `b`)"): left out when they do not apply.
	optional map[string]bool
	words    string // the section's words, its lines joined
}

// optionalField is how docs/json.md marks a field that may be left out.
var optionalField = regexp.MustCompile("`([A-Za-z_]+)`(?: \\(optional|, optional)")

// optionalList is a list of optional fields, "(optional: `a`, `b`)", and
// fieldName one field of it.
var (
	optionalList = regexp.MustCompile(`\(optional: ([^)]*)\)`)
	fieldName    = regexp.MustCompile("`([A-Za-z_]+)`")
)

func jsonDocs(t *testing.T) []jsonDoc {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(moduleDir, "docs", "json.md"))
	if err != nil {
		t.Fatal(err)
	}
	heading := regexp.MustCompile("^## `(socks .+)`$")
	var docs []jsonDoc
	var cur *jsonDoc
	in := false
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		line := sc.Text()
		switch {
		case in && line == "```":
			in = false
		case in:
			cur.example += line
		case line == "```json":
			if cur == nil || cur.example != "" {
				t.Fatalf("docs/json.md: a json block that is not the first under a command heading")
			}
			in = true
		case heading.MatchString(line):
			docs = append(docs, jsonDoc{command: heading.FindStringSubmatch(line)[1]})
			cur = &docs[len(docs)-1]
		case cur != nil:
			cur.words += " " + line
		}
	}
	for i := range docs {
		docs[i].optional = map[string]bool{}
		for _, m := range optionalField.FindAllStringSubmatch(docs[i].words, -1) {
			docs[i].optional[m[1]] = true
		}
		for _, list := range optionalList.FindAllStringSubmatch(docs[i].words, -1) {
			for _, m := range fieldName.FindAllStringSubmatch(list[1], -1) {
				docs[i].optional[m[1]] = true
			}
		}
	}
	return docs
}

// undocumented returns the paths of got that doc does not show, or shows
// with another JSON type. Bodies (any JSON a producer sent) are not looked
// into.
func undocumented(path string, doc, got any) []string {
	if got == nil || doc == nil {
		return nil
	}
	switch g := got.(type) {
	case map[string]any:
		d, ok := doc.(map[string]any)
		if !ok {
			return []string{fmt.Sprintf("%s is an object; the page shows %T", path, doc)}
		}
		var out []string
		for k, v := range g {
			dv, ok := d[k]
			switch {
			case !ok:
				out = append(out, path+"."+k+" is not on the page")
			case k == "body":
			default:
				out = append(out, undocumented(path+"."+k, dv, v)...)
			}
		}
		return out
	case []any:
		d, ok := doc.([]any)
		if !ok {
			return []string{fmt.Sprintf("%s is an array; the page shows %T", path, doc)}
		}
		if len(g) == 0 {
			return nil
		}
		if len(d) == 0 {
			return []string{path + " has items; the page shows none"}
		}
		var out []string
		for _, v := range g {
			out = append(out, undocumented(path+"[]", d[0], v)...)
		}
		return out
	default:
		if fmt.Sprintf("%T", got) != fmt.Sprintf("%T", doc) {
			return []string{fmt.Sprintf("%s is a %T; the page shows a %T", path, got, doc)}
		}
		return nil
	}
}

// missing returns the paths of the fields doc shows that got lacks, but
// those named in optional. Bodies are not looked into, nor the items of
// an empty array.
func missing(path string, doc, got any, optional map[string]bool) []string {
	switch d := doc.(type) {
	case map[string]any:
		g, ok := got.(map[string]any)
		if !ok {
			return nil // undocumented says so
		}
		var out []string
		for k, dv := range d {
			gv, ok := g[k]
			switch {
			case !ok && !optional[k]:
				out = append(out, path+"."+k+" is on the page but not in the output (if it may be left out, mark it optional)")
			case !ok, k == "body":
			default:
				out = append(out, missing(path+"."+k, dv, gv, optional)...)
			}
		}
		return out
	case []any:
		g, ok := got.([]any)
		if !ok || len(d) == 0 {
			return nil
		}
		var out []string
		for _, v := range g {
			out = append(out, missing(path+"[]", d[0], v, optional)...)
		}
		return out
	}
	return nil
}

// jsonTime is an RFC 3339 time as docs/json.md has them: in UTC, with at
// most a millisecond fraction.
var jsonTime = regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,3})?Z$`)

// badTimes lists the strings of v that are RFC 3339 times not written as
// jsonTime.
func badTimes(path string, v any) []string {
	var bad []string
	switch v := v.(type) {
	case map[string]any:
		for k, e := range v {
			bad = append(bad, badTimes(path+"."+k, e)...)
		}
	case []any:
		for i, e := range v {
			bad = append(bad, badTimes(fmt.Sprintf("%s[%d]", path, i), e)...)
		}
	case string:
		if _, err := time.Parse(time.RFC3339Nano, v); err == nil && !jsonTime.MatchString(v) {
			bad = append(bad, fmt.Sprintf("%s is %q; times are RFC 3339 in UTC to the millisecond", path, v))
		}
	}
	return bad
}

func TestJSONOutputIsAsDocumented(t *testing.T) {
	t.Parallel()
	docs := jsonDocs(t)
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
	// theirs; provision, deploy and teardown). bench runs a tiny bench
	// of the stack's gateway.
	for _, c := range []string{"chatter issue", "chatter list", "chatter revoke", "subs list", "subs stats", "publish", "dlq list", "dlq show", "dlq redrive", "dlq purge", "doctor", "prune-stale", "broker", "version", "config", "demo", "bench"} {
		if !slices.ContainsFunc(docs, func(d jsonDoc) bool { return strings.HasPrefix(d.command, "socks "+c+" ") }) {
			t.Errorf("docs/json.md has no section for socks %s --json", c)
		}
	}

	for _, d := range docs {
		t.Run(d.command, func(t *testing.T) {
			var doc any
			if err := json.Unmarshal([]byte(d.example), &doc); err != nil {
				t.Fatalf("the page's example is not JSON: %v\n%s", err, d.example)
			}
			args := strings.Fields(strings.ReplaceAll(d.command, "q-3f1c...", dead))[1:]
			s.t, f.t = t, t
			defer func() { s.t, f.t = f.root, f.root }()
			if strings.Contains(d.command, "dlq purge") {
				f.deadLetter() // the one before was redriven
			}
			// An AWS setting with the local backend makes the command
			// warn: the warning goes to stderr, stdout stays JSON.
			env := append(socksEnv(t.TempDir()), "SOCKS_CALLBACK_URL=http://127.0.0.1:9/")
			r := runEnv(t, env, nil, append(args, "--state-dir", s.dir)...)
			if r.code != 0 {
				t.Fatalf("want exit 0:\n%s", r)
			}
			if warns := !slices.Contains([]string{"version", "config", "demo"}, args[0]); warns && !strings.Contains(r.stderr, "warning: SOCKS_CALLBACK_URL") {
				t.Errorf("no warning about SOCKS_CALLBACK_URL on stderr, so this does not show stdout stays JSON when one fires:\n%s", r)
			}
			var got any
			dec := json.NewDecoder(strings.NewReader(r.stdout))
			if err := dec.Decode(&got); err != nil || dec.More() {
				t.Fatalf("stdout is not one JSON value (%v):\n%s", err, r.stdout)
			}
			for _, p := range undocumented("", doc, got) {
				t.Errorf("%s: %s\nstdout: %s", d.command, p, r.stdout)
			}
			for _, p := range missing("", doc, got, d.optional) {
				t.Errorf("%s: %s\nstdout: %s", d.command, p, r.stdout)
			}
			// The page's rule: one line, times in UTC to the millisecond.
			if strings.Count(r.stdout, "\n") != 1 {
				t.Errorf("%s: stdout is not one line:\n%s", d.command, r.stdout)
			}
			for _, p := range badTimes("", got) {
				t.Errorf("%s: %s", d.command, p)
			}
		})
	}
}
