package publish

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/socks-dev/socks/backend"
	"github.com/socks-dev/socks/commands/cmdutil"
	"github.com/socks-dev/socks/iostreams"
	"github.com/socks-dev/socks/pubsub"
)

// runAs runs `socks publish ARGS` and returns stdout.
func runAs(t *testing.T, args ...string) (string, error) {
	t.Helper()
	ios, _, out, _ := iostreams.Test()
	f := &cmdutil.Factory{IOStreams: ios}
	cmd := NewCmdPublish(f, func(ctx context.Context, opts *Options) error {
		opts.Backend = func(context.Context) (*backend.Backend, error) {
			t.Error("--as opened a backend")
			return nil, errors.New("no backend in this test")
		}
		return publishRun(ctx, opts)
	})
	cmd.SetContext(context.Background())
	cmd.SetArgs(args)
	cmd.SetOut(ios.ErrOut)
	cmd.SetErr(ios.ErrOut)
	cmd.SilenceUsage, cmd.SilenceErrors = true, true
	err := cmd.Execute()
	return out.String(), err
}

func TestPublishAsEventBridgePrintsPutEventsEntries(t *testing.T) {
	out, err := runAs(t, "--topic", "jobs", "--geek", "Friendless", "--body", `{"key": "reports/42.csv"}`, "--as", "eventbridge", "--source", "com.example.jobs", "--detail-type", "JobFinished")
	if err != nil {
		t.Fatal(err)
	}
	var entries []Entry
	if err := json.Unmarshal([]byte(out), &entries); err != nil || len(entries) != 1 || strings.Count(out, "\n") != 1 {
		t.Fatalf("want one line with one entry: %q (%v)", out, err)
	}
	e := entries[0]
	if e.Source != "com.example.jobs" || e.DetailType != "JobFinished" || e.EventBusName != "" {
		t.Errorf("entry %+v", e)
	}
	t.Run("EventBridge's delivery of it is taken off the queue as the envelope", func(t *testing.T) {
		// The event EventBridge makes of an entry: Detail parsed into detail.
		event, _ := json.Marshal(map[string]any{
			"version": "0", "id": "ev-1", "detail-type": e.DetailType, "source": e.Source,
			"account": "123456789012", "time": "2026-11-29T12:00:00Z", "region": "us-east-1", "resources": []string{},
			"detail": json.RawMessage(e.Detail),
		})
		env, err := pubsub.ParseMessage(event, nil)
		if err != nil {
			t.Fatal(err)
		}
		if env.ID != "ev-1" || !slices.Equal(env.Users, []string{"Friendless"}) || !slices.Equal(env.Topics, []string{"jobs"}) || string(env.Body) != `{"key":"reports/42.csv"}` {
			t.Errorf("envelope %+v", env)
		}
	})
}

func TestPublishAsSNSPrintsTheMessage(t *testing.T) {
	out, err := runAs(t, "--topic", "jobs", "--message", "done", "--id", "job-7", "--as", "sns")
	if err != nil {
		t.Fatal(err)
	}
	if out != `{"id":"job-7","topics":["jobs"],"body":"done"}`+"\n" {
		t.Fatalf("printed %q", out)
	}
	note, _ := json.Marshal(map[string]any{"Type": "Notification", "MessageId": "n-1", "TopicArn": "arn:aws:sns:us-east-1:123456789012:jobs", "Message": strings.TrimSpace(out)})
	env, err := pubsub.ParseMessage(note, nil)
	if err != nil || env.ID != "job-7" || string(env.Body) != `"done"` {
		t.Fatalf("the notification of it parses to %+v, %v", env, err)
	}
}

func TestPublishAsRefusesWhatDoesNotFit(t *testing.T) {
	for _, tt := range []struct {
		name string
		args []string
		want string
	}{
		{"an unknown producer", []string{"--as", "kinesis"}, `--as "kinesis": use "eventbridge" or "sns"`},
		{"EventBridge flags with sns", []string{"--as", "sns", "--source", "x"}, "--source goes with --as eventbridge"},
		// Given at their defaults they were taken: given at all, they are
		// refused, as every flag that goes with another is.
		{"an EventBridge flag with sns at its default", []string{"--as", "sns", "--source", "socks"}, "--source goes with --as eventbridge"},
		{"an empty source", []string{"--as", "eventbridge", "--source", ""}, "--source and --detail-type must not be empty"},
		// Refused as every flag that does not go with another is (goesWith),
		// not in cobra's words.
		{"--as with --wait", []string{"--as", "sns", "--wait"}, "--wait does not go with --as: --as publishes nothing"},
		{"--as with --direct", []string{"--as", "sns", "--direct"}, "--direct does not go with --as: --as publishes nothing"},
		{"--as with --wait=false", []string{"--as", "eventbridge", "--wait=false"}, "--wait does not go with --as"},
		{"--as eventbridge with --json", []string{"--as", "eventbridge", "--json"}, "--json does not go with --as"},
		{"--as sns with --json=false", []string{"--as", "sns", "--json=false"}, "--json does not go with --as"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			out, err := runAs(t, append([]string{"--topic", "jobs", "--message", "m"}, tt.args...)...)
			if err == nil || !strings.Contains(err.Error(), tt.want) || out != "" {
				t.Fatalf("err = %v, out %q; want %q and nothing printed", err, out, tt.want)
			}
		})
	}
}

// TestPublishAsEventBridgeMeasuresTheEntryAsEventBridgeDoes: EventBridge
// counts an entry's Source, DetailType and Detail in UTF-8 bytes, the
// Detail as the string it is, not as escaped in the JSON of --entries.
// A body at the 128 KB limit made of quotes grew past 256 KB once escaped
// twice, and was refused though EventBridge takes it.
func TestPublishAsEventBridgeMeasuresTheEntryAsEventBridgeDoes(t *testing.T) {
	quotes := `"` + strings.Repeat(`\"`, (pubsub.MaxMessageBytes-2)/2) + `"`
	out, err := runAs(t, "--topic", "jobs", "--body", quotes, "--as", "eventbridge")
	if err != nil {
		t.Fatalf("a body at the limit, of quotes: %v; want the entry printed", err)
	}
	var entries []Entry
	if err := json.Unmarshal([]byte(out), &entries); err != nil || len(entries) != 1 {
		t.Fatalf("stdout is not one entry: %v", err)
	}
	if n := len(entries[0].Source) + len(entries[0].DetailType) + len(entries[0].Detail); n > pubsub.MaxEventBridgeEntryBytes {
		t.Fatalf("the test's entry is %d bytes as EventBridge counts it", n)
	}

	// 1,000 geeks of 128 bytes, a body at the limit and a long source:
	// over 256 KB as EventBridge counts it too.
	args := []string{"--topic", "jobs", "--body", quotes, "--as", "eventbridge", "--source", strings.Repeat("s", 250)}
	for i := range 1000 {
		args = append(args, "--geek", fmt.Sprintf("%04d%s", i, strings.Repeat("g", pubsub.MaxNameLength-4)))
	}
	out, err = runAs(t, args...)
	if err == nil || !strings.Contains(err.Error(), "as EventBridge counts it") || !strings.Contains(err.Error(), "at most 256 KiB per PutEvents entry") || out != "" {
		t.Fatalf("err = %v, out %d bytes; want the entry refused, saying its size as EventBridge counts it and the limit", err, len(out))
	}
}

func TestPublishAsOnANonUTF8TerminalPrintsTheSameEnvelope(t *testing.T) {
	// The terminal's ASCII stand-ins for socks's glyphs are not for the
	// envelope printed: "⠸" (a spinner frame, a backslash there) must
	// stay "⠸" (escaped there, \u2838: the same JSON), and the line JSON.
	for _, as := range []string{AsSNS, AsEventBridge} {
		ios, _, _, _ := iostreams.Test()
		var out strings.Builder
		ios.Out = iostreams.ASCIIGlyphs(&out)
		f := &cmdutil.Factory{IOStreams: ios}
		cmd := NewCmdPublish(f, func(ctx context.Context, opts *Options) error { return publishRun(ctx, opts) })
		cmd.SetContext(context.Background())
		cmd.SetArgs([]string{"--topic", "jobs", "--message", "⠸ → ✓", "--as", as})
		cmd.SetOut(ios.ErrOut)
		cmd.SetErr(ios.ErrOut)
		cmd.SilenceUsage, cmd.SilenceErrors = true, true
		if err := cmd.Execute(); err != nil {
			t.Fatal(err)
		}
		data := []byte(out.String())
		if as == AsEventBridge {
			var entries []Entry
			if err := json.Unmarshal(data, &entries); err != nil || len(entries) != 1 {
				t.Fatalf("--as %s printed %q (%v)", as, out.String(), err)
			}
			data = []byte(entries[0].Detail)
		}
		var env pubsub.Envelope
		var body string
		if err := json.Unmarshal(data, &env); err != nil || json.Unmarshal(env.Body, &body) != nil || body != "⠸ → ✓" {
			t.Errorf("--as %s printed %q, whose body reads back as %q (%v)", as, out.String(), body, err)
		}
	}
}
