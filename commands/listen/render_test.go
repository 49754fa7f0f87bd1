package listen

import (
	"bytes"
	"encoding/json"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/socks-dev/socks/iostreams"
	"github.com/socks-dev/socks/ui"
)

var at = time.Date(2026, 1, 2, 3, 4, 5, 678e6, time.UTC)

// term is the terminal renderer, styled or not, with the clock in UTC.
func term(styled bool) *renderer {
	return newRenderer(ui.NewFor(io.Discard, styled), true, time.UTC)
}

func msg(data string) Line { return messageLine(at, false, []byte(data)) }

func TestStyledMessageGolden(t *testing.T) {
	l := msg(`{"n":1,"s":"x","b":false,"z":null,"a":[]}`)
	l.Topic = "updates"
	want := "\x1b[38;5;241m03:04:05.678\x1b[0m \x1b[38;5;39mupdates\x1b[0m\n" +
		"  {\n" +
		"    \x1b[38;5;39m\"n\"\x1b[0m: \x1b[38;5;214m1\x1b[0m,\n" +
		"    \x1b[38;5;39m\"s\"\x1b[0m: \x1b[38;5;42m\"x\"\x1b[0m,\n" +
		"    \x1b[38;5;39m\"b\"\x1b[0m: \x1b[38;5;229mfalse\x1b[0m,\n" +
		"    \x1b[38;5;39m\"z\"\x1b[0m: \x1b[38;5;241mnull\x1b[0m,\n" +
		"    \x1b[38;5;39m\"a\"\x1b[0m: []\n" +
		"  }\n"
	if got := term(true).render(l); got != want {
		t.Errorf("got\n%q\nwant\n%q", got, want)
	}
}

func TestStyledStateAndReplyGolden(t *testing.T) {
	r := term(true)
	for _, tc := range []struct {
		name string
		line Line
		want string
	}{
		{"connected is green with the URL, geek and topics",
			Line{Time: at, Kind: KindState, State: StateConnected, URL: "ws://127.0.0.1:1/", Geek: "alice", Topics: []string{"updates"}},
			"\x1b[38;5;241m03:04:05.678\x1b[0m \x1b[38;5;42m● connected\x1b[0m ws://127.0.0.1:1/ as \x1b[38;5;39malice\x1b[0m on updates\n"},
		{"an error reply is red",
			Line{Time: at, Kind: KindReply, Body: json.RawMessage(`{"type":"error","error":"nope"}`)},
			"\x1b[38;5;241m03:04:05.678\x1b[0m \x1b[38;5;203m← error\x1b[0m nope\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := r.render(tc.line); got != tc.want {
				t.Errorf("got\n%q\nwant\n%q", got, tc.want)
			}
		})
	}
}

func TestPlainTerminalRendering(t *testing.T) {
	text := func(s string) *string { return &s }
	for _, tc := range []struct {
		name string
		line Line
		want string
	}{
		{"a short JSON body stays on the time's line", msg(`"stats refreshed"`),
			"03:04:05.678 \"stats refreshed\"\n"},
		{"an object is indented under the time and topic", func() Line { l := msg(`{"a":{"b":[1,{"c":true}]},"d":{}}`); l.Topic = "t"; return l }(),
			"03:04:05.678 t\n  {\n    \"a\": {\n      \"b\": [\n        1,\n        {\n          \"c\": true\n        }\n      ]\n    },\n    \"d\": {}\n  }\n"},
		{"numbers keep their exact text", msg(`[1.50, 1e400, -0]`),
			"03:04:05.678\n  [\n    1.50,\n    1e400,\n    -0\n  ]\n"},
		{"escape sequences in JSON strings are shown escaped", msg(`{"k\u001b":"\u001b]0;pwned\u0007 \u009b31m \u202e"}`),
			"03:04:05.678\n  {\n    \"k\\u001b\": \"\\u001b]0;pwned\\u0007 \\u009b31m \\u202e\"\n  }\n"},
		{"raw C1 and DEL bytes inside JSON strings are shown escaped", msg("[\"a\u0085b\u007fc\"]"),
			"03:04:05.678\n  [\n    \"a\\u0085b\\u007fc\"\n  ]\n"},
		{"plain text keeps its newlines and escapes control characters", Line{Time: at, Kind: KindMessage, Text: text("hi\x1b[2J\tthere\r\nnext \u009b")},
			"03:04:05.678\n  hi\\x1b[2J\\tthere\\r\n  next \\u009b\n"},
		{"empty text says so", Line{Time: at, Kind: KindMessage, Text: text("")},
			"03:04:05.678 (empty text)\n"},
		{"binary data is hex dumped", messageLine(at, true, []byte("\x00\x1b[31mAB")),
			"03:04:05.678 (binary, 8 bytes)\n  00000000  00 1b 5b 33 31 6d 41 42                           |..[31mAB|\n"},
		{"text that is not UTF-8 is hex dumped", messageLine(at, false, []byte{'o', 'k', 0xff}),
			"03:04:05.678 (text that is not valid UTF-8, 3 bytes)\n  00000000  6f 6b ff                                          |ok.|\n"},
		{"an empty binary frame is just announced", messageLine(at, true, nil),
			"03:04:05.678 (binary, 0 bytes)\n"},
		{"a subscribed reply lists the topics", Line{Time: at, Kind: KindReply, Body: json.RawMessage(`{"type":"subscribed","topics":["news","updates"]}`)},
			"03:04:05.678 ← subscribed news, updates\n"},
		{"a pong reply shows its round trip", Line{Time: at, Kind: KindReply, Body: json.RawMessage(`{"type":"pong","time":"x"}`), RTTMS: 1.5},
			"03:04:05.678 ← pong 1.5ms\n"},
		{"a handler failure reply is an error", Line{Time: at, Kind: KindReply, Body: json.RawMessage(`{"message":"Internal server error","connectionId":"c"}`)},
			"03:04:05.678 ← error Internal server error\n"},
		{"the gateway's error nothing waited for says so", Line{Time: at, Kind: KindError, Body: json.RawMessage(`{"message":"Forbidden","connectionId":"c","requestId":"r"}`), Error: "the gateway failed a frame (requestId r): Forbidden \x1b"},
			"03:04:05.678 ✗ the gateway failed a frame (requestId r): Forbidden \\x1b\n"},
		{"a drop shows the close code and reason", Line{Time: at, Kind: KindState, State: StateDisconnected, Code: 1001, Reason: "Going away"},
			"03:04:05.678 ○ disconnected: 1001 Going away\n"},
		{"a drop without a close frame shows the error", Line{Time: at, Kind: KindState, State: StateDisconnected, Error: "read: connection reset"},
			"03:04:05.678 ○ disconnected: read: connection reset\n"},
		{"a reconnect shows the wait and the attempt", Line{Time: at, Kind: KindState, State: StateReconnecting, RetryInMS: 1500, Attempt: 2, MaxAttempts: 10, Error: "dial tcp: refused"},
			"03:04:05.678 ↻ reconnecting in 1.5s (attempt 2 of 10): dial tcp: refused\n"},
		{"unlimited reconnects do not show a maximum", Line{Time: at, Kind: KindState, State: StateReconnecting, RetryInMS: 500, Attempt: 7},
			"03:04:05.678 ↻ reconnecting in 500ms (attempt 7)\n"},
		{"renewing names the cap", Line{Time: at, Kind: KindState, State: StateRenewing},
			"03:04:05.678 ↻ renewing the connection before the gateway's 2h0m0s limit\n"},
		{"closed says why", Line{Time: at, Kind: KindState, State: StateClosed, Code: 1000, Reason: "after 3 messages"},
			"03:04:05.678 ■ closed (after 3 messages)\n"},
		{"a ping shows its round trip", Line{Time: at, Kind: KindPing, RTTMS: 0.25},
			"03:04:05.678 · ping 250µs\n"},
		{"a notice is shown escaped", Line{Time: at, Kind: kindNotice, Error: "unknown command \x1b"},
			"03:04:05.678 unknown command \\x1b\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := term(false).render(tc.line); got != tc.want {
				t.Errorf("got\n%s\nwant\n%s\n(%q)", got, tc.want, got)
			}
		})
	}
}

func TestHeader(t *testing.T) {
	got := term(false).header("ws://127.0.0.1:1/", "alice", []string{"updates", "news"}, true)
	want := "socks listen\n" +
		"  endpoint  ws://127.0.0.1:1/\n" +
		"  geek      alice\n" +
		"  topics    updates, news\n" +
		"  state     connecting…\n" +
		"  type      subscribe T…  unsubscribe T…  ping  quit  help\n"
	if got != want {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}
	if got := term(false).header("ws://h/", "a", []string{"."}, false); strings.Contains(got, "type") || !strings.Contains(got, ". (every topic)") {
		t.Errorf("header without input:\n%s", got)
	}
}

func TestDeepNestingIsShownCompact(t *testing.T) {
	deep := strings.Repeat("[", 40) + `"\u001b"` + strings.Repeat("]", 40)
	got := term(false).render(msg(deep))
	want := "03:04:05.678 " + strings.Repeat("[", 40) + `"\u001b"` + strings.Repeat("]", 40) + "\n"
	if got != want {
		t.Errorf("got %q; want %q", got, want)
	}
}

func TestBinaryDumpIsBounded(t *testing.T) {
	r := term(false)
	r.maxDump = 16
	got := r.render(messageLine(at, true, bytes.Repeat([]byte{0xab}, 40)))
	if !strings.Contains(got, "… 24 more bytes") || strings.Count(got, "\n") != 3 {
		t.Errorf("got\n%s", got)
	}
}

// TestPlainStateLinesUseRFC3339: the times of state lines on a standard
// error that is not a terminal are those of --json lines: UTC, to the
// millisecond, three digits always (they had the clock's nanoseconds, and
// as many digits as those had).
func TestPlainStateLinesUseRFC3339(t *testing.T) {
	r := newRenderer(ui.NewFor(io.Discard, false), false, time.UTC)
	for when, want := range map[time.Time]string{
		at: "2026-01-02T03:04:05.678Z",
		time.Date(2026, 1, 2, 4, 4, 5, 678912345, time.FixedZone("CET", 3600)): "2026-01-02T03:04:05.678Z",
		time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC):                            "2026-01-02T03:04:05.000Z",
		time.Date(2026, 1, 2, 3, 4, 5, 5e8, time.UTC):                          "2026-01-02T03:04:05.500Z",
	} {
		got := r.render(Line{Time: when, Kind: KindState, State: StateConnected, URL: "ws://h/", Geek: "a", Topics: []string{"t"}})
		if want += " connected ws://h/ as a on t\n"; got != want {
			t.Errorf("got %q; want %q", got, want)
		}
	}
}

func TestJSONLines(t *testing.T) {
	text := "tab\there \x1b[31m \u009b \u202e"
	for _, tc := range []struct {
		name string
		line Line
		want string
	}{
		{"a JSON body is embedded as JSON", func() Line { l := msg(` {"n": 1, "h": "<b>"} `); l.Topic = "t"; return l }(),
			`{"time":"2026-01-02T03:04:05.678Z","kind":"message","topic":"t","body":{"n":1,"h":"<b>"}}`},
		{"text is a string with every control character escaped", Line{Time: at, Kind: KindMessage, Text: &text},
			`{"time":"2026-01-02T03:04:05.678Z","kind":"message","text":"tab\there \u001b[31m \u009b \u202e"}`},
		{"binary is base64", messageLine(at, true, []byte{0, 1, 2}),
			`{"time":"2026-01-02T03:04:05.678Z","kind":"message","base64":"AAEC","binary":true}`},
		{"non-UTF-8 text is base64 without the binary mark", messageLine(at, false, []byte{0xff}),
			`{"time":"2026-01-02T03:04:05.678Z","kind":"message","base64":"/w=="}`},
		{"an empty binary frame has an empty base64, as an empty text frame has an empty text", messageLine(at, true, nil),
			`{"time":"2026-01-02T03:04:05.678Z","kind":"message","base64":"","binary":true}`},
		{"a state line names the state", Line{Time: at, Kind: KindState, State: StateDisconnected, Code: 1001, Reason: "Going away"},
			`{"time":"2026-01-02T03:04:05.678Z","kind":"state","state":"disconnected","code":1001,"reason":"Going away"}`},
		{"a time is in UTC to the millisecond, whatever the clock's zone and precision (docs/json.md)",
			Line{Time: time.Date(2026, 1, 2, 4, 4, 5, 678912345, time.FixedZone("CET", 3600)), Kind: KindState, State: StateConnected},
			`{"time":"2026-01-02T03:04:05.678Z","kind":"state","state":"connected"}`},
		// As Go writes a time, trailing zeros of the fraction were left
		// out: lines of one stream had times of different widths, and
		// "05Z" sorted after "05.5Z" as text.
		{"a time on a whole second keeps its three digits, so that times sort as text",
			Line{Time: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC), Kind: KindState, State: StateConnected},
			`{"time":"2026-01-02T03:04:05.000Z","kind":"state","state":"connected"}`},
		{"a time on a tenth of a second keeps its trailing zeros",
			Line{Time: time.Date(2026, 1, 2, 3, 4, 5, 500999999, time.UTC), Kind: KindState, State: StateConnected},
			`{"time":"2026-01-02T03:04:05.500Z","kind":"state","state":"connected"}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var b bytes.Buffer
			if err := writeJSON(&b, tc.line); err != nil {
				t.Fatal(err)
			}
			got := b.String()
			if got != tc.want+"\n" {
				t.Errorf("got  %s\nwant %s", got, tc.want)
			}
			var back map[string]any
			if err := json.Unmarshal(b.Bytes(), &back); err != nil {
				t.Errorf("not JSON: %v", err)
			}
		})
	}
}

func TestBodyTopic(t *testing.T) {
	for body, want := range map[string]string{
		`{"topic":"jobs","n":1}`: "jobs",
		`{"topic":3}`:            "",
		`{"n":{"topic":"deep"}}`: "",
		`["topic"]`:              "",
		`"topic"`:                "",
	} {
		if got := bodyTopic(json.RawMessage(body)); got != want {
			t.Errorf("bodyTopic(%s) = %q; want %q", body, got, want)
		}
	}
}

func FuzzRenderNeverEmitsControlCharacters(f *testing.F) {
	for _, s := range []string{`{"a":"\u001b[31m"}`, "\x1b]0;x\x07", "[1,2,\"\u009b\"]", "\xff\xfe", ""} {
		f.Add([]byte(s), false)
	}
	f.Fuzz(func(t *testing.T, data []byte, binary bool) {
		l := messageLine(at, binary, data)
		out := term(false).render(l)
		for _, r := range out {
			if r != '\n' && unsafeRune(r) {
				t.Fatalf("rendering %q printed the control character %U:\n%q", data, r, out)
			}
		}
		var b bytes.Buffer
		if err := writeJSON(&b, l); err != nil {
			t.Fatal(err)
		}
		if !json.Valid(b.Bytes()) {
			t.Fatalf("JSON line is not JSON: %q", b.String())
		}
		for _, r := range strings.TrimSuffix(b.String(), "\n") {
			if unsafeRune(r) {
				t.Fatalf("JSON line has the raw control character %U: %q", r, b.String())
			}
		}
	})
}

func TestJSONLinesReadBackExactly(t *testing.T) {
	// Escaped for the terminal, but the same JSON: a script reads the
	// body a publisher sent, tag characters and zero-width space included.
	s := "a\u200bb \U000E0041 \u202e \x1b]52;c;aGk=\x07 👩‍💻"
	var b bytes.Buffer
	if err := writeJSON(&b, Line{Time: at, Kind: KindMessage, Text: &s}); err != nil {
		t.Fatal(err)
	}
	var back Line
	if err := json.Unmarshal(b.Bytes(), &back); err != nil || back.Text == nil || *back.Text != s {
		t.Fatalf("the JSON line %s reads back as %v (%v); want the text %q", b.String(), back.Text, err, s)
	}
}

func TestNamesFromOutsideAreShownEscaped(t *testing.T) {
	// A body's "topic" is the publisher's to choose: a joiner in it makes
	// it look like another topic, and an escape would drive the terminal.
	l := msg(`{"topic":"news\u200d\u001b]0;t\u0007","n":1}`)
	l.Topic = bodyTopic(l.Body)
	r := term(false)
	if got := r.render(l); !strings.HasPrefix(got, `03:04:05.678 news\u200d\x1b]0;t\x07`+"\n") {
		t.Errorf("the topic is shown as\n%q", got)
	}
	evil := "g\x1b[2J\u202e"
	for name, got := range map[string]string{
		"header":    r.header("ws://h/", evil, []string{"t\x1b[1A", "u"}, false),
		"connected": r.render(Line{Time: at, Kind: KindState, State: StateConnected, URL: "ws://h/", Geek: evil, Topics: []string{"t\x1b[1A"}}),
	} {
		if strings.Contains(got, "\x1b") || strings.Contains(got, "\u202e") {
			t.Errorf("the %s prints the geek or a topic raw:\n%q", name, got)
		}
		if !strings.Contains(got, `g\x1b[2J\u202e`) || !strings.Contains(got, `t\x1b[1A`) {
			t.Errorf("the %s does not show the geek and topic escaped:\n%q", name, got)
		}
	}
}

func TestJSONLinesOnANonUTF8TerminalReadBackExactly(t *testing.T) {
	// The terminal's ASCII stand-ins for socks's glyphs are not for a
	// body: "⠸" (a spinner frame, whose stand-in is a backslash) must
	// read back as "⠸", not make the line something other than JSON.
	s := "⠸ ⠸n → ✓ Zoë"
	var b bytes.Buffer
	if err := writeJSON(iostreams.ASCIIGlyphs(&b), Line{Time: at, Kind: KindMessage, Text: &s}); err != nil {
		t.Fatal(err)
	}
	var back Line
	if err := json.Unmarshal(b.Bytes(), &back); err != nil || back.Text == nil || *back.Text != s {
		t.Fatalf("the JSON line %s reads back as %v (%v); want the text %q", b.String(), back.Text, err, s)
	}
}

func TestANonUTF8TerminalShowsEveryCharacterOfTheDataEscaped(t *testing.T) {
	// On a terminal whose locale is not UTF-8, socks's glyphs get ASCII
	// stand-ins (iostreams.ASCIIGlyphs) and the rest that is not ASCII is
	// shown escaped. A body, topic or geek holding one of those glyphs is
	// data: shown escaped too, not as a stand-in ("⠸n" read as "\n",
	// "→" as ">").
	ios, _, _, _ := iostreams.Test()
	var out strings.Builder
	ios.Out = iostreams.ASCIIGlyphs(&out)
	ios.SetTTY(false, true, false)
	ios.SetNoColor(true)
	ios.SetUTF8(false)
	r := newRenderer(ui.New(ios), true, time.UTC)
	body := msg(`{"topic":"→news","k":"⠸n ✓"}`)
	body.Topic = bodyTopic(body.Body)
	text := "⠸ → ·"
	for _, l := range []Line{
		body,
		{Time: at, Kind: KindMessage, Text: &text},
		{Time: at, Kind: KindState, State: StateConnected, URL: "ws://h/→", Geek: "Zoë→", Topics: []string{"→news"}},
		{Time: at, Kind: KindState, State: StateDisconnected, Code: 1008, Reason: "no → way"},
		{Time: at, Kind: KindReply, Body: json.RawMessage(`{"type":"error","error":"→ refused"}`)},
	} {
		if _, err := io.WriteString(ios.Out, r.render(l)); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := io.WriteString(ios.Out, r.header("ws://h/→", "Zoë→", []string{"→news"}, false)); err != nil {
		t.Fatal(err)
	}
	got := out.String()
	for _, want := range []string{
		`\u2192news`, `"\u2838n \u2713"`, `\u2838 \u2192 \u00b7`, `ws://h/\u2192`, `Zo\u00eb\u2192`,
		`1008 no \u2192 way`, `\u2192 refused`,
	} {
		if !strings.Contains(got, want) {
			t.Errorf("no %s in\n%s", want, got)
		}
	}
	for _, stand := range []string{`"\n `, `> news`, `>news`, `no > way`} {
		if strings.Contains(got, stand) {
			t.Errorf("a glyph of the data was given its stand-in (%s):\n%s", stand, got)
		}
	}
}

// FuzzWhatTheServerSaysStaysOnItsLine: the words a server chooses (a
// close reason, an error reply, the topics of a reply, a refusal's body in
// a reconnecting line) are shown on the line that says so, escaped, on a
// terminal and on a standard error that is not one; with --json each is
// one line of JSON.
func FuzzWhatTheServerSaysStaysOnItsLine(f *testing.F) {
	for _, s := range []string{"Going away", "\x1b]52;c;aGk=\x07", "a\nb\r\u2028c\u202e", "\xff", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		body, _ := json.Marshal(map[string]any{"type": "error", "error": s})
		gw, _ := json.Marshal(map[string]any{"message": s, "connectionId": "c", "requestId": "r"})
		topics, _ := json.Marshal(map[string]any{"type": "subscribed", "topics": []string{s, "b"}})
		for _, l := range []Line{
			{Time: at, Kind: KindState, State: StateDisconnected, Code: 4000, Reason: s},
			{Time: at, Kind: KindState, State: StateDisconnected, Error: s},
			{Time: at, Kind: KindState, State: StateReconnecting, RetryInMS: 500, Attempt: 1, Error: s},
			{Time: at, Kind: KindState, State: StateRenewing, Error: s},
			{Time: at, Kind: KindState, State: StateConnected, URL: s, Geek: "g", Topics: []string{s}},
			{Time: at, Kind: KindReply, Body: body},
			{Time: at, Kind: KindReply, Body: gw},
			{Time: at, Kind: KindReply, Body: topics},
			{Time: at, Kind: kindNotice, Error: s},
			{Time: at, Kind: KindError, Body: gw, Error: s},
		} {
			for _, r := range []*renderer{term(false), newRenderer(ui.NewFor(io.Discard, false), false, time.UTC)} {
				out := r.render(l)
				line, ok := strings.CutSuffix(out, "\n")
				if !ok || strings.Contains(line, "\n") {
					t.Fatalf("%v is shown on more than one line: %q", l, out)
				}
				for _, c := range line {
					if unsafeRune(c) {
						t.Fatalf("%v is shown with the character %U: %q", l, c, out)
					}
				}
			}
			if l.Kind == kindNotice {
				continue
			}
			var b bytes.Buffer
			if err := writeJSON(&b, l); err != nil {
				t.Fatal(err)
			}
			line, ok := strings.CutSuffix(b.String(), "\n")
			if !ok || strings.Contains(line, "\n") || !json.Valid([]byte(line)) {
				t.Fatalf("%v as JSON is not one line of JSON: %q", l, b.String())
			}
		}
	})
}

// TestWithJSONTheNoticesOnAColourTerminalArePlain: `listen --json` wrote
// its notices (a typed mistake, standard input ended) on a colour
// terminal's stderr with a coloured time, though with --json a terminal
// shows no escape code (docs/json.md): the stderr styles come from
// cmdutil.ErrUI. Without --json a colour terminal still gets the colour.
func TestWithJSONTheNoticesOnAColourTerminalArePlain(t *testing.T) {
	at := time.Date(2026, 11, 30, 3, 4, 5, 678e6, time.UTC)
	stderr := func(jsonOut bool) string {
		ios, _, stdout, errOut := iostreams.Test()
		ios.SetTTY(false, false, true) // stdout piped to jq; colour on: NO_COLOR is not set
		p := newPrinter(&Options{IO: ios, JSON: jsonOut, loc: time.UTC})
		if err := p.emit(Line{Time: at, Kind: kindNotice, Error: "unknown command: sub"}); err != nil {
			t.Fatal(err)
		}
		if stdout.Len() > 0 {
			t.Errorf("stdout %q: want the notice on stderr only", stdout)
		}
		return errOut.String()
	}
	if got, want := stderr(true), "03:04:05.678 unknown command: sub\n"; got != want {
		t.Errorf("--json on a colour terminal: stderr %q, want %q, no escape code", got, want)
	}
	if got := stderr(false); !strings.Contains(got, "\x1b[") {
		t.Errorf("without --json on a colour terminal: stderr %q, want its colour", got)
	}
}
