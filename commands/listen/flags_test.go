package listen

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/socks-dev/socks/commands/cmdutil"
	"github.com/socks-dev/socks/iostreams"
)

// parse runs `listen ARGS` through runF and returns the options it got.
func parse(t *testing.T, args ...string) (*Options, error) {
	t.Helper()
	ios, _, _, _ := iostreams.Test()
	f := &cmdutil.Factory{IOStreams: ios, Now: time.Now}
	var got *Options
	cmd := NewCmdListen(f, func(_ context.Context, o *Options) error {
		got = o
		return nil
	})
	cmd.SetArgs(args)
	cmd.SetOut(io.Discard)
	cmd.SetErr(io.Discard)
	err := cmd.Execute()
	return got, err
}

func TestFlagsAreParsed(t *testing.T) {
	o, err := parse(t, "--geek", "alice", "-t", "updates", "--topic", "news,updates", "--url", "wss://h.example/prod",
		"--id", "s3cret", "-n", "3", "--timeout", "1s", "--until", `"done"`, "--json", "--no-input", "--show-ping",
		"--max-retries", "0", "--max-connection", "30m", "--ping-interval", "10s",
		"-H", "X-Trace: abc", "--header", "x-other:1", "--subprotocol", "socks.v1", "--origin", "https://site.example", "--insecure")
	if err != nil {
		t.Fatal(err)
	}
	if o.Geek != "alice" || strings.Join(o.Topics, ",") != "updates,news" || o.URL != "wss://h.example/prod" || o.ID != "s3cret" {
		t.Errorf("geek %q topics %q url %q id %q", o.Geek, o.Topics, o.URL, o.ID)
	}
	if o.Count != 3 || o.Timeout != time.Second || o.until == nil || !o.until.MatchString(`{"s":"done"}`) {
		t.Errorf("count %d timeout %s until %v", o.Count, o.Timeout, o.until)
	}
	if !o.JSON || !o.NoInput || !o.ShowPing || o.MaxRetries != 0 || o.MaxConnection != 30*time.Minute || o.PingInterval != 10*time.Second {
		t.Errorf("json %v no-input %v show-ping %v max-retries %d max-connection %s ping %s", o.JSON, o.NoInput, o.ShowPing, o.MaxRetries, o.MaxConnection, o.PingInterval)
	}
	want := http.Header{"X-Trace": {"abc"}, "X-Other": {"1"}}
	if o.header.Get("X-Trace") != "abc" || o.header.Get("X-Other") != "1" || len(o.header) != len(want) {
		t.Errorf("header %v; want %v", o.header, want)
	}
	w := o.wsOptions()
	if w.UserAgent != "socks/dev" {
		t.Errorf("User-Agent %q; want socks/dev for a build without a version", w.UserAgent)
	}
	if w.Origin != "https://site.example" || !w.Insecure || len(w.Subprotocols) != 1 || w.PingPeriod != 10*time.Second {
		t.Errorf("wsclient options %+v", w)
	}
}

func TestFlagDefaults(t *testing.T) {
	o, err := parse(t, "--geek", "alice")
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(o.Topics, ",") != "." {
		t.Errorf("topics %q; want every topic (.)", o.Topics)
	}
	if o.MaxRetries != DefaultMaxRetries || o.MaxConnection != DefaultMaxConnection || o.PingInterval != DefaultPingInterval {
		t.Errorf("max-retries %d max-connection %s ping-interval %s", o.MaxRetries, o.MaxConnection, o.PingInterval)
	}
	if o.MaxConnection >= 2*time.Hour || o.PingInterval >= 10*time.Minute {
		t.Error("the defaults do not beat the gateway's 2 h cap and 10 min idle timeout")
	}
}

// TestBadFlagsAreUsageErrors covers listen's own checks of its flags;
// what cobra and root refuse before listen sees the flags (a missing
// --geek, a stray argument) is in TestCobrasRefusalsReadAsUsersSeeThem,
// through the path the binary takes.
func TestBadFlagsAreUsageErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"a bad geek name", []string{"--geek", "a b"}, "geek"},
		{"a bad topic name", []string{"--geek", "a", "--topic", "bad topic"}, "topic"},
		{"a negative count", []string{"--geek", "a", "--count", "-1"}, "--count"},
		{"a negative timeout", []string{"--geek", "a", "--timeout", "-1s"}, "--timeout"},
		{"a negative max-retries", []string{"--geek", "a", "--max-retries", "-1"}, "--max-retries"},
		{"a ping interval over the idle timeout", []string{"--geek", "a", "--ping-interval", "10m"}, "--ping-interval"},
		// 1ms flooded the gateway with pings, and a 1ms --max-connection
		// renewed (a new connection, maybe a new chatter ID) without end.
		{"a ping interval under a second", []string{"--geek", "a", "--ping-interval", "1ms"}, "--ping-interval 1ms is too short: give at least 1s"},
		{"a max-connection under a second", []string{"--geek", "a", "--max-connection", "1ms"}, "--max-connection 1ms is too short: give at least 1s, or 0 to never renew"},
		{"an http URL", []string{"--geek", "a", "--url", "http://127.0.0.1:1/"}, "ws or wss"},
		// Pasted from a browser's connect URL: the ID in it was ignored
		// (listen issued its own) and shown in every "connected" line.
		{"a chatter ID in --url", []string{"--geek", "a", "--url", "ws://127.0.0.1:1/?geek=a&id=sc_secret"}, "--id-file"},
		{"a chatter ID in an http --url", []string{"--geek", "a", "--url", "http://127.0.0.1:1/?id=sc_secret"}, "--id-file"},
		// `--url "$URL"` with URL unset connected to the local gateway
		// instead; `--id "$ID"` issued a chatter ID there.
		{"an empty --url", []string{"--geek", "a", "--url", ""}, "--url is empty"},
		{"an empty --id", []string{"--geek", "a", "--id", " "}, "--id is empty"},
		{"an empty --id-file", []string{"--geek", "a", "--id-file", ""}, "--id-file is empty"},
		{"an empty --origin", []string{"--geek", "a", "--origin", ""}, "--origin is empty"},
		{"an empty --until", []string{"--geek", "a", "--until", ""}, "--until is empty"},
		// --id-in takes header or query; an empty one ("$WHERE" unset)
		// was taken as the default, header.
		{"an unknown --id-in", []string{"--geek", "a", "--id-in", "headers"}, `--id-in "headers": give header or query`},
		{"an empty --id-in", []string{"--geek", "a", "--id-in", ""}, "--id-in is empty"},
		{"a geek in --url", []string{"--geek", "a", "--url", "ws://127.0.0.1:1/?geek=eve"}, "--geek"},
		{"a topic in --url", []string{"--geek", "a", "--url", "ws://127.0.0.1:1/?topic=news"}, "--topic"},
		{"a bad regular expression", []string{"--geek", "a", "--until", "("}, "--until"},
		{"a header without a colon", []string{"--geek", "a", "-H", "X-Trace"}, "'Key: Value'"},
		{"a header the handshake sets", []string{"--geek", "a", "-H", "Sec-WebSocket-Protocol: x"}, "--subprotocol"},
		{"an Origin header", []string{"--geek", "a", "-H", "origin: x"}, "--origin"},
		{"a bad subprotocol", []string{"--geek", "a", "--subprotocol", "a b"}, "--subprotocol"},
		{"a missing --id-file", []string{"--geek", "a", "--id-file", "/nonexistent/socks-id"}, "cannot read /nonexistent/socks-id"},
		{"an empty --id-file", []string{"--geek", "a", "--id-file", writeFile(t, "  \n")}, "is empty"},
		{"a huge --id-file", []string{"--geek", "a", "--id-file", writeFile(t, strings.Repeat("sc_x", 5000))}, "more than 4096 bytes"},
		{"a chatter ID with a control character", []string{"--geek", "a", "--id", "sc_ab\x01cd"}, "has U+0001 (a control character) inside it"},
		// A chatter ID is sc_ and URL-safe base64: a C1 control, an
		// invisible formatting character (pasted with it from a chat or
		// a web page), a space or a letter beyond ASCII is none of it.
		{"a chatter ID with a C1 control character", []string{"--geek", "a", "--id", "sc_ab\u0085cd"}, "letters, digits, '-' and '_'"},
		{"a chatter ID with a zero width space", []string{"--geek", "a", "--id", "sc_ab\u200bcd"}, "letters, digits, '-' and '_'"},
		{"a chatter ID with a right-to-left override", []string{"--geek", "a", "--id", "sc_ab\u202ecd"}, "letters, digits, '-' and '_'"},
		{"a chatter ID with a space", []string{"--geek", "a", "--id", "sc_ab cd"}, "letters, digits, '-' and '_'"},
		{"a chatter ID with a letter beyond ASCII", []string{"--geek", "a", "--id", "sc_abécd"}, "letters, digits, '-' and '_'"},
		{"a chatter ID from a file with a zero width space", []string{"--geek", "a", "--id-file", writeFile(t, "sc_ab\u200bcd\n")}, "letters, digits, '-' and '_'"},
		{"--id and --id-file together", []string{"--geek", "a", "--id", "sc_abc", "--id-file", writeFile(t, "sc_def")}, "one way"},
	} {
		t.Run(tc.name+" is refused", func(t *testing.T) {
			o, err := parse(t, tc.args...)
			if err == nil {
				t.Fatalf("no error; runF got %+v", o)
			}
			if o != nil {
				t.Error("runF ran despite the error")
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q does not mention %q", err, tc.want)
			}
			if strings.Contains(err.Error(), "sc_") || strings.ContainsAny(err.Error(), "\x01\u0085\u200b\u202eé") {
				t.Errorf("error %q echoes a chatter ID", err)
			}
			var fe *cmdutil.FlagError
			if !errors.As(err, &fe) {
				t.Errorf("error %v is not a usage error", err)
			}
		})
	}
}

func TestTheShortestIntervalsAllowedAreAccepted(t *testing.T) {
	o, err := parse(t, "--geek", "a", "--ping-interval", "1s", "--max-connection", "1s")
	if err != nil || o.PingInterval != time.Second || o.MaxConnection != time.Second {
		t.Fatalf("err %v, options %+v; want ping 1s, max-connection 1s", err, o)
	}
	if o, err := parse(t, "--geek", "a", "--max-connection", "0"); err != nil || o.MaxConnection != 0 {
		t.Fatalf("--max-connection 0 (never renew): err %v, options %+v", err, o)
	}
}

func TestHelpDocumentsTheIntervalBounds(t *testing.T) {
	var b strings.Builder
	cmd := NewCmdListen(&cmdutil.Factory{}, nil)
	cmd.SetOut(&b)
	if err := cmd.Help(); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"interval, at least 1s", "long, at least 1s"} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("--help does not say %q", want)
		}
	}
}

func TestHelpDocumentsExitCodes(t *testing.T) {
	cmd := NewCmdListen(&cmdutil.Factory{}, nil)
	for _, want := range []string{"Exit codes of listen:", "4    --timeout", "5    the gateway refused", "0    --count", "--max-retries"} {
		if !strings.Contains(cmd.Long, want) {
			t.Errorf("--help does not say %q", want)
		}
	}
}

func writeFile(t *testing.T, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "id")
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestTheChatterIDComesFromAFileOrTheEnvironment(t *testing.T) {
	file := writeFile(t, "sc_fromfile\n")
	o, err := parse(t, "--geek", "a", "--id-file", file)
	if err != nil || o.ID != "sc_fromfile" {
		t.Fatalf("--id-file: id %q, %v; want sc_fromfile", o.ID, err)
	}
	ios, _, _, _ := iostreams.Test()
	f := &cmdutil.Factory{IOStreams: ios, Now: time.Now, Getenv: func(k string) string {
		if k == ChatterIDEnv {
			return "sc_fromenv"
		}
		return ""
	}}
	var got *Options
	cmd := NewCmdListen(f, func(_ context.Context, o *Options) error { got = o; return nil })
	cmd.SetArgs([]string{"--geek", "a"})
	cmd.SetOut(io.Discard)
	cmd.SetErr(io.Discard)
	if err := cmd.Execute(); err != nil || got.ID != "sc_fromenv" {
		t.Fatalf("$%s: %+v, %v; want sc_fromenv", ChatterIDEnv, got, err)
	}
	// listenRun completes the options again after RunE did: the ID taken
	// from the environment is not a second source.
	if err := got.complete(t.Context()); err != nil || got.ID != "sc_fromenv" {
		t.Fatalf("completing again: id %q, %v; want sc_fromenv and no error", got.ID, err)
	}
	cmd = NewCmdListen(f, func(_ context.Context, o *Options) error { return nil })
	cmd.SetArgs([]string{"--geek", "a", "--id", "sc_fromflag"})
	cmd.SetOut(io.Discard)
	cmd.SetErr(io.Discard)
	if err := cmd.Execute(); err == nil || !strings.Contains(err.Error(), "one way") || strings.Contains(err.Error(), "sc_from") {
		t.Fatalf("--id with $%s set: %v; want a refusal that echoes neither", ChatterIDEnv, err)
	}
}

// TestAChatterIDLosesOnlyALinesWhiteSpace: listen took its chatter ID
// with strings.TrimSpace, so one pasted with a no-break space (U+00A0) or
// a next line (U+0085) at an end was taken, the character dropped, where
// publish refuses such input and no issued ID holds one. From --id,
// --id-file and $SOCKS_CHATTER_ID alike, only ASCII spaces, tabs, CR and
// LF come off its ends; anything else is refused, naming it and where it
// came from, never showing the ID.
func TestAChatterIDLosesOnlyALinesWhiteSpace(t *testing.T) {
	const secret = "sc_Zq8secretPart"
	for _, tc := range []struct {
		name, value string
		want        string // "" taken as secret
	}{
		{"a line's end", secret + "\r\n", ""},
		{"spaces and tabs around it", " \t" + secret + " \t", ""},
		{"a no-break space at its end", secret + "\u00a0", "has U+00A0 (a no-break space) at its end"},
		{"a no-break space before the line's end", secret + "\u00a0\n", "has U+00A0 (a no-break space) at its end"},
		{"a next line at its start", "\u0085" + secret, "has U+0085 (a control character) at its start"},
		{"a form feed at its end", secret + "\f", "has U+000C (a control character) at its end"},
	} {
		for _, from := range []string{"--id", "--id-file", "$" + ChatterIDEnv} {
			t.Run(tc.name+" from "+from, func(t *testing.T) {
				env := map[string]string{}
				args := []string{"--geek", "a"}
				switch from {
				case "--id":
					args = append(args, "--id", tc.value)
				case "--id-file":
					args = append(args, "--id-file", writeFile(t, tc.value))
				default:
					env[ChatterIDEnv] = tc.value
				}
				ios, _, _, _ := iostreams.Test()
				f := &cmdutil.Factory{IOStreams: ios, Now: time.Now, Getenv: func(k string) string { return env[k] }}
				var got *Options
				cmd := NewCmdListen(f, func(_ context.Context, o *Options) error { got = o; return nil })
				cmd.SetArgs(args)
				cmd.SetOut(io.Discard)
				cmd.SetErr(io.Discard)
				err := cmd.Execute()
				if tc.want == "" {
					if err != nil || got.ID != secret {
						t.Fatalf("%q from %s: %v; want %q taken", tc.value, from, err, secret)
					}
					return
				}
				var fe *cmdutil.FlagError
				if !errors.As(err, &fe) || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "the chatter ID from "+from) {
					t.Fatalf("%q from %s: %v; want a usage error saying the chatter ID from %s %s", tc.value, from, err, from, tc.want)
				}
				if strings.Contains(err.Error(), "secretPart") {
					t.Errorf("refusal %q shows the ID", err)
				}
			})
		}
	}
}

func TestAChatterIDFromATerminalIsPromptedForAndCtrlCStopsTheWait(t *testing.T) {
	// --id-file - on a terminal waited, silently, for the end of input
	// (Ctrl-D); Ctrl-C did nothing.
	newOpts := func() (*Options, *io.PipeWriter, fmt.Stringer) {
		ios, _, _, errOut := iostreams.Test()
		ios.SetTTY(true, false, false)
		pr, pw := io.Pipe()
		t.Cleanup(func() { pw.Close() })
		ios.In = pr
		return &Options{IO: ios, Geek: "alice", IDFile: "-", PingInterval: time.Minute}, pw, errOut
	}
	o, pw, errOut := newOpts()
	go func() { _, _ = io.WriteString(pw, "sc_typed\n") }() // and no end: a terminal
	if err := o.complete(t.Context()); err != nil || o.ID != "sc_typed" {
		t.Fatalf("id %q, %v; want the line typed", o.ID, err)
	}
	if !strings.Contains(errOut.String(), "chatter ID for alice") {
		t.Errorf("stderr %q; want a prompt", errOut)
	}

	o, _, _ = newOpts()
	ctx, cancel := context.WithCancel(t.Context())
	cancel() // Ctrl-C
	if err := o.complete(ctx); !errors.Is(err, context.Canceled) {
		t.Errorf("complete after Ctrl-C: %v; want it to stop waiting", err)
	}
}
