package serve

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/socks-dev/socks/broker"
	"github.com/socks-dev/socks/commands/cmdutil"
	"github.com/socks-dev/socks/internal/docsays"
	"github.com/socks-dev/socks/internal/text"
	"github.com/socks-dev/socks/iostreams"
	"github.com/socks-dev/socks/pubsub"
	"github.com/socks-dev/socks/store"
)

// TestProtocolLimitsAreAsDocumented reads the limit tables of
// docs/protocol.md and checks each value against what socks runs with:
// serve's flag defaults, and the constants of the fixed limits.
func TestProtocolLimitsAreAsDocumented(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join("..", "..", "docs", "protocol.md"))
	if err != nil {
		t.Fatal(err)
	}
	doc := string(raw)
	// rows maps the first cell of each table row of the section headed
	// heading to the row's second cell.
	rows := func(heading string) map[string]string {
		_, section, ok := strings.Cut(doc, "\n## "+heading+"\n")
		if !ok {
			t.Fatalf("docs/protocol.md has no section %q", heading)
		}
		section, _, _ = strings.Cut(section, "\n## ")
		out := map[string]string{}
		for _, line := range strings.Split(section, "\n") {
			cells := strings.Split(line, " | ")
			if !strings.HasPrefix(line, "| ") || len(cells) < 3 {
				continue
			}
			out[strings.TrimPrefix(cells[0], "| ")] = cells[1]
		}
		return out
	}
	ios, _, _, _ := iostreams.Test()
	flags := NewCmdServe(&cmdutil.Factory{IOStreams: ios}, nil).Flags()
	flag := func(name string) string {
		f := flags.Lookup(name)
		if f == nil {
			t.Fatalf("serve has no --%s", name)
		}
		return f.DefValue
	}
	flagInt := func(name string) int {
		n, err := strconv.Atoi(flag(name))
		if err != nil {
			t.Fatalf("--%s: %v", name, err)
		}
		return n
	}
	flagDuration := func(name string) time.Duration {
		d, err := time.ParseDuration(flag(name))
		if err != nil {
			t.Fatalf("--%s: %v", name, err)
		}
		return d
	}
	kb := func(n int) string { return fmt.Sprintf("%d KB", n>>10) }
	mib := func(n int) string { return fmt.Sprintf("%d MiB", n>>20) }

	check := func(heading string, want map[string]string) {
		got := rows(heading)
		for limit, value := range want {
			cell, ok := got[limit]
			if !ok {
				t.Errorf("docs/protocol.md, %s: no row %q", heading, limit)
				continue
			}
			if cell != value {
				t.Errorf("docs/protocol.md, %s, %s: the doc says %q; socks runs with %q", heading, limit, cell, value)
			}
		}
	}
	check("Limits (AWS's hard numbers, enforced locally too)", map[string]string{
		"message size":        kb(pubsub.MaxMessageBytes),
		"frame size":          kb(pubsub.MaxFrameBytes),
		"idle timeout":        fmt.Sprintf("%d min", int(flagDuration("idle-timeout")/time.Minute)),
		"connection lifetime": fmt.Sprintf("%d h", int(flagDuration("max-duration")/time.Hour)),
		"SQS batch":           fmt.Sprintf("%d messages", store.MaxBatch),
		"SQS long poll":       fmt.Sprintf("%d s", int(store.MaxWait/time.Second)),
		"SQS message":         mib(pubsub.MaxEnvelopeBytes),
	})
	check("Limits socks adds (each a setting)", map[string]string{
		"topics per connection":                        flag("max-topics"),
		"connections per geek":                         flag("max-connections-per-geek"),
		"live chatter IDs per geek":                    strconv.Itoa(store.DefaultMaxLiveChatterIDs),
		"users × (topics + 1) per envelope":            text.Thousands(pubsub.MaxLookupsPerEnvelope) + " lookups",
		"users per envelope":                           text.Thousands(pubsub.MaxUsersPerEnvelope),
		"inbound messages per second per connection":   fmt.Sprintf("%s (a burst of %[1]s)", flag("max-frames-per-second")),
		"open connections per `socks serve`":           text.Thousands(flagInt("max-connections")),
		"bytes queued per connection":                  fmt.Sprintf("%s (%d × %s)", mib(flagInt("max-queued-bytes")), flagInt("max-queued-bytes")/pubsub.MaxMessageBytes, kb(pubsub.MaxMessageBytes)),
		"JSON nesting of frames, envelopes and bodies": fmt.Sprintf("%d levels", pubsub.MaxJSONDepth),
	})

	// The same numbers in prose.
	docsays.Says(t, "protocol.md",
		fmt.Sprintf("live connection records (default %s)", flag("max-connections-per-geek")),
		fmt.Sprintf("`socks serve --max-connections` (default %s)", text.Thousands(flagInt("max-connections"))),
		fmt.Sprintf("A connection follows at most %s topics.", flag("max-topics")),
		fmt.Sprintf("more than `--max-queued-bytes` (%s by default)", mib(flagInt("max-queued-bytes"))),
		fmt.Sprintf("`SOCKS_MAX_TOPICS`, 1–%d)", pubsub.MaxTopicsPerConnection),
		fmt.Sprintf("at most %d", pubsub.MaxUsersPerEnvelope),
		fmt.Sprintf("| `topics` | required, 1 to %d distinct topics (as a connection's", pubsub.MaxTopicsPerConnection),
		fmt.Sprintf("timeouts of %d s", int(broker.DefaultPostTimeout/time.Second)),
		fmt.Sprintf("2 s cap, %d tries)", broker.DefaultPostTries),
		fmt.Sprintf("after %d receives it is dead-lettered", store.DefaultMaxReceives),
		fmt.Sprintf("Fan-out runs %s posts in flight per message by default", flag("concurrency")),
		fmt.Sprintf("the frame nests more than %d levels deep", pubsub.MaxJSONDepth),
	)
}

// TestServeJSONFieldsAreAsTheREADMESays: the README listed `pprof` among
// the fields of `serve --json`, which prints it only with --pprof. Every
// field serve prints is in the README's list, and every field of the list
// that serve leaves out is marked there with when it is present.
func TestServeJSONFieldsAreAsTheREADMESays(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join("..", "..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	_, section, ok := strings.Cut(string(raw), "\n### `socks serve`\n")
	if !ok {
		t.Fatal("README.md has no `socks serve` section")
	}
	_, list, ok := strings.Cut(strings.Join(strings.Fields(section), " "), "with `--json`, one JSON line with ")
	if !ok {
		t.Fatal("README's `socks serve` section does not say what --json prints")
	}
	list, _, _ = strings.Cut(list, ")")
	named := regexp.MustCompile("`([a-zA-Z]+)`").FindAllStringSubmatch(list, -1)
	if len(named) < 5 {
		t.Fatalf("README's list of serve --json fields is %q", list)
	}

	opts := testOptions(t)
	opts.JSON = true
	ios, _, out, _ := iostreams.Test()
	opts.IO = ios
	stop := startServe(t, opts)
	var got map[string]any
	if err := json.Unmarshal(out.Bytes(), &got); err != nil {
		t.Fatalf("serve --json printed %q: %v", out, err)
	}
	stop()
	inList := map[string]bool{}
	for _, m := range named {
		inList[m[1]] = true
		if _, printed := got[m[1]]; !printed && !strings.Contains(list, "`"+m[1]+"` only with") {
			t.Errorf("the README lists `%s` among the fields of serve --json without saying when it is there; serve without --pprof printed %s", m[1], out)
		}
	}
	for k := range got {
		if !inList[k] {
			t.Errorf("serve --json printed %q, which the README's list (%s) does not name", k, list)
		}
	}
}
