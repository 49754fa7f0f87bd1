// Package jsondoc reads docs/json.md, which documents what every command
// prints with --json, and checks a command's output against it: no field
// the page does not show, no field of another type, every field the page
// shows but those it marks optional, one line, and times in UTC to the
// millisecond. The e2e tests run the commands the page names; tests that
// make a command fail (an injected error) check its error shape too.
package jsondoc

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/socks-dev/socks/internal/srcroot"
)

// Section is one command of docs/json.md and the example it shows.
type Section struct {
	// Command is the heading's command, "socks ... --json".
	Command string
	Example string
	// Optional are the fields the section's words mark optional ("`name`
	// (optional...", "`name`, optional", or a list "(optional: `a`,
	// `b`)"): left out when they do not apply.
	Optional map[string]bool
	Words    string // the section's words, its lines joined
}

// optionalField is how docs/json.md marks a field that may be left out.
var optionalField = regexp.MustCompile("`([A-Za-z_]+)`(?: \\(optional|, optional)")

// optionalList is a list of optional fields, "(optional: `a`, `b`)", and
// fieldName one field of it.
var (
	optionalList = regexp.MustCompile(`\(optional: ([^)]*)\)`)
	fieldName    = regexp.MustCompile("`([A-Za-z_]+)`")
)

// Path is where docs/json.md is: in the checkout above the working
// directory (a test's package folder).
func Path() (string, error) { return srcroot.Join("docs", "json.md") }

// Read parses docs/json.md into its sections, in the page's order.
func Read() ([]Section, error) {
	p, err := Path()
	if err != nil {
		return nil, err
	}
	b, err := os.ReadFile(p)
	if err != nil {
		return nil, err
	}
	heading := regexp.MustCompile("^## `(socks .+)`$")
	var docs []Section
	var cur *Section
	in := false
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		line := sc.Text()
		switch {
		case in && line == "```":
			in = false
		case in:
			cur.Example += line
		case line == "```json":
			if cur == nil || cur.Example != "" {
				return nil, fmt.Errorf("docs/json.md: a json block that is not the first under a command heading (after %q)", line)
			}
			in = true
		case heading.MatchString(line):
			docs = append(docs, Section{Command: heading.FindStringSubmatch(line)[1]})
			cur = &docs[len(docs)-1]
		case cur != nil:
			cur.Words += " " + line
		}
	}
	for i := range docs {
		docs[i].Optional = map[string]bool{}
		for _, m := range optionalField.FindAllStringSubmatch(docs[i].Words, -1) {
			docs[i].Optional[m[1]] = true
		}
		for _, list := range optionalList.FindAllStringSubmatch(docs[i].Words, -1) {
			for _, m := range fieldName.FindAllStringSubmatch(list[1], -1) {
				docs[i].Optional[m[1]] = true
			}
		}
	}
	return docs, nil
}

// Find returns the section whose command is command.
func Find(command string) (Section, error) {
	docs, err := Read()
	if err != nil {
		return Section{}, err
	}
	for _, d := range docs {
		if d.Command == command {
			return d, nil
		}
	}
	return Section{}, fmt.Errorf("docs/json.md has no section `%s`", command)
}

// Check returns what in stdout, a command's --json output, differs from
// the section: stdout not one JSON value on one line, fields the page
// does not show or shows with another type, fields it shows but not
// optional that are missing, and times not written as the page says.
func (d Section) Check(stdout string) []string {
	var doc any
	if err := json.Unmarshal([]byte(d.Example), &doc); err != nil {
		return []string{fmt.Sprintf("the page's example is not JSON: %v\n%s", err, d.Example)}
	}
	var got any
	dec := json.NewDecoder(strings.NewReader(stdout))
	if err := dec.Decode(&got); err != nil || dec.More() {
		return []string{fmt.Sprintf("stdout is not one JSON value (%v):\n%s", err, stdout)}
	}
	var out []string
	for _, p := range undocumented("", doc, got) {
		out = append(out, fmt.Sprintf("%s: %s\nstdout: %s", d.Command, p, stdout))
	}
	for _, p := range missing("", doc, got, d.Optional) {
		out = append(out, fmt.Sprintf("%s: %s\nstdout: %s", d.Command, p, stdout))
	}
	// The page's rule: one line, times in UTC to the millisecond.
	if strings.Count(stdout, "\n") != 1 {
		out = append(out, fmt.Sprintf("%s: stdout is not one line:\n%s", d.Command, stdout))
	}
	for _, p := range badTimes("", got) {
		out = append(out, fmt.Sprintf("%s: %s", d.Command, p))
	}
	return out
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

// Unseen returns the paths of the fields the section's example shows
// that none of outputs (each a command's --json output) has: with the
// outputs of every case a test can make, the fields it never saw, whose
// documentation nothing checked. Bodies are not looked into.
func (d Section) Unseen(outputs []string) []string {
	var doc any
	if err := json.Unmarshal([]byte(d.Example), &doc); err != nil {
		return []string{fmt.Sprintf("the page's example is not JSON: %v", err)}
	}
	seen := map[string]bool{}
	for _, o := range outputs {
		var got any
		if json.Unmarshal([]byte(o), &got) == nil {
			paths("", got, seen)
		}
	}
	want := map[string]bool{}
	paths("", doc, want)
	var out []string
	for p := range want {
		if !seen[p] {
			out = append(out, p)
		}
	}
	slices.Sort(out)
	return out
}

// paths adds to set the path of every field of v, arrays' items as "[]".
func paths(path string, v any, set map[string]bool) {
	switch v := v.(type) {
	case map[string]any:
		for k, e := range v {
			set[path+"."+k] = true
			if k != "body" {
				paths(path+"."+k, e, set)
			}
		}
	case []any:
		for _, e := range v {
			paths(path+"[]", e, set)
		}
	}
}
