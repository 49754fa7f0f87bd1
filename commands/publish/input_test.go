package publish

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/socks-dev/socks/commands/cmdutil"
	"github.com/socks-dev/socks/iostreams"
	"github.com/socks-dev/socks/pubsub"
)

// TestAnIDThatIsNotUTF8IsAUsageError: `--id $'job-\xff'` was queued as
// "job-\uFFFD", so the report was made under another ID than the one
// --wait waited for.
func TestAnIDThatIsNotUTF8IsAUsageError(t *testing.T) {
	ios, _, _, _ := iostreams.Test()
	_, err := parse(t, ios, "--topic", "t", "--message", "x", "--id", "job-\xff").Envelope(t.Context())
	var fe *cmdutil.FlagError
	if !errors.As(err, &fe) || !strings.Contains(err.Error(), "not valid UTF-8") {
		t.Fatalf("publish --id job-\\xff = %v; want a usage error saying it is not valid UTF-8", err)
	}
}

// TestABodyThatIsNotUTF8IsRefusedWhateverItsFlag: --message used to send
// bytes that are not UTF-8 as U+FFFD without a word, while --body and
// --body-file refused them, advising --message, which then changed the
// data. Each flag refuses them now, saying to encode binary data.
func TestABodyThatIsNotUTF8IsRefusedWhateverItsFlag(t *testing.T) {
	binary := "\x89PNG\r\n\x1a\n\x00\xff"
	file := filepath.Join(t.TempDir(), "logo.png")
	if err := os.WriteFile(file, []byte(binary), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name  string
		flags []string
		stdin string
	}{
		{"--message", []string{"--message", "caf\xe9"}, ""},
		{"--body", []string{"--body", `"caf` + "\xe9" + `"`}, ""},
		{"--body-file", []string{"--body-file", file}, ""},
		{"piped stdin", nil, binary},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ios, in, _, _ := iostreams.Test()
			in.WriteString(tc.stdin)
			_, err := parse(t, ios, append([]string{"--topic", "t"}, tc.flags...)...).Envelope(t.Context())
			var fe *cmdutil.FlagError
			if !errors.As(err, &fe) || !strings.Contains(err.Error(), "not valid UTF-8") {
				t.Fatalf("got %v; want a usage error saying the body is not valid UTF-8", err)
			}
			if msg := err.Error(); strings.Contains(msg, "use --message") || !strings.Contains(msg, "base64") {
				t.Errorf("refusal %q; want it to say to encode binary data (base64), not to use --message", msg)
			}
		})
	}
}

// TestAnOversizedBodySaysItsSizeAsAPersonReadsIt: a body over what a
// queue message holds was refused as "over 1048576 bytes; API Gateway
// delivers at most 131072": the refusals say the size and the limit in
// KiB and MiB.
func TestAnOversizedBodySaysItsSizeAsAPersonReadsIt(t *testing.T) {
	file := filepath.Join(t.TempDir(), "big.json")
	if err := os.WriteFile(file, []byte(`"`+strings.Repeat("x", 200000-2)+`"`), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name  string
		flags []string
		stdin string
		want  string
	}{
		{"a body over what a queue message holds", nil, "[" + strings.Repeat(" ", 2<<20) + "]", "the body from stdin is over 1 MiB; API Gateway delivers at most 128 KiB per message"},
		{"a body file over the message limit", []string{"--body-file", file}, "", "the body from " + file + " is 195.3 KiB (200000 bytes); API Gateway delivers at most 128 KiB per message"},
		{"a --message over the message limit", []string{"--message", strings.Repeat("x", 200000-2)}, "", "--message is 195.3 KiB (200000 bytes) as the JSON string sent"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ios, in, _, _ := iostreams.Test()
			in.WriteString(tc.stdin)
			_, err := parse(t, ios, append([]string{"--topic", "t"}, tc.flags...)...).Envelope(t.Context())
			var fe *cmdutil.FlagError
			if !errors.As(err, &fe) || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "at most 128 KiB per message") {
				t.Fatalf("got %v; want a usage error saying %q and the limit, 128 KiB", err, tc.want)
			}
		})
	}
}

// TestAMessageIsMeasuredAsTheJSONStringSent: a --message of quotes or
// control characters grows as it is escaped; the refusal says that the
// size is of the JSON string sent and names --message, and a message
// whose JSON string is exactly at the limit goes.
func TestAMessageIsMeasuredAsTheJSONStringSent(t *testing.T) {
	for _, tc := range []struct {
		name, msg string
		ok        bool
	}{
		{"text at the limit goes", strings.Repeat("x", pubsub.MaxMessageBytes-2), true},
		{"text one byte over is refused", strings.Repeat("x", pubsub.MaxMessageBytes-1), false},
		{"two-byte characters up to the limit go", strings.Repeat("é", (pubsub.MaxMessageBytes-2)/2), true},
		{"a four-byte character straddling the limit is refused", strings.Repeat("x", pubsub.MaxMessageBytes-4) + "🎲", false},
		{"quotes double as they are escaped", strings.Repeat(`"`, pubsub.MaxMessageBytes/2), false},
		{"U+FFFE doubles as the queue escapes it", strings.Repeat("\uFFFE", (pubsub.MaxMessageBytes-2)/3), false},
		{"control characters grow sixfold", strings.Repeat("\x01", pubsub.MaxMessageBytes/6+1), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ios, _, _, _ := iostreams.Test()
			env, err := parse(t, ios, "--topic", "t", "--message", tc.msg).Envelope(t.Context())
			if tc.ok {
				if err != nil || len(env.Body) > pubsub.MaxMessageBytes {
					t.Fatalf("got a body of %d bytes, %v; want it sent", len(env.Body), err)
				}
				return
			}
			var fe *cmdutil.FlagError
			if !errors.As(err, &fe) || !strings.Contains(err.Error(), "--message is") || !strings.Contains(err.Error(), "escaped") || !strings.Contains(err.Error(), "at most 128 KiB") {
				t.Fatalf("got %v; want a usage error naming --message, its escaped size and the limit", err)
			}
		})
	}
}

// TestABodyLosesOnlyJSONWhitespaceAtItsEnds: a body was trimmed with
// bytes.TrimSpace, which also takes a vertical tab, a form feed, U+0085 or
// U+00A0 off its ends, so `--body $'\v{}'` went out as {} although no
// JSON parser reads it. Only JSON's own whitespace (the trailing newline
// of a file or of echo, an indent) is dropped; the rest is refused,
// saying what JSON allows around a value.
func TestABodyLosesOnlyJSONWhitespaceAtItsEnds(t *testing.T) {
	for _, tc := range []struct {
		name, body string
		want       string // the body sent; "" for a refusal
	}{
		{"a trailing newline is dropped", "{\"a\":1}\n", `{"a":1}`},
		{"a CRLF, tabs and spaces are dropped", " \t{\"a\":1}\r\n", `{"a":1}`},
		{"a leading vertical tab is refused", "\v{}", ""},
		{"a trailing form feed is refused", "{}\f", ""},
		{"a trailing no-break space is refused", "{}\u00a0", ""},
		{"a trailing next-line is refused", "{}\u0085", ""},
	} {
		for _, how := range []string{"--body", "--body-file", "piped stdin"} {
			t.Run(tc.name+" from "+how, func(t *testing.T) {
				ios, in, _, _ := iostreams.Test()
				args := []string{"--topic", "t"}
				switch how {
				case "--body":
					args = append(args, "--body", tc.body)
				case "--body-file":
					file := filepath.Join(t.TempDir(), "body.json")
					if err := os.WriteFile(file, []byte(tc.body), 0o600); err != nil {
						t.Fatal(err)
					}
					args = append(args, "--body-file", file)
				default:
					in.WriteString(tc.body)
				}
				env, err := parse(t, ios, args...).Envelope(t.Context())
				if tc.want != "" {
					if err != nil || string(env.Body) != tc.want {
						t.Fatalf("sent %q, %v; want %q", env.Body, err, tc.want)
					}
					return
				}
				var fe *cmdutil.FlagError
				if !errors.As(err, &fe) || !strings.Contains(err.Error(), "only spaces, tabs and newlines") {
					t.Fatalf("sent %q, %v; want a usage error saying JSON allows only spaces, tabs and newlines around a value", env.Body, err)
				}
			})
		}
	}
}

// TestAUTF8ByteOrderMarkIsDroppedFromAFileOrStdin: a body saved by
// Notepad or PowerShell starts with the UTF-8 byte order mark EF BB BF,
// which RFC 8259 lets a parser ignore; a body from a file or stdin lost
// it, as --id-file and --keys-file do (text.UTF8File), and is sent as
// the JSON after it. One mark only: a second is no encoding mark, and
// the body is refused, naming it.
func TestAUTF8ByteOrderMarkIsDroppedFromAFileOrStdin(t *testing.T) {
	for _, how := range []string{"--body-file", "--body-file -", "--body -", "piped stdin"} {
		t.Run("from "+how, func(t *testing.T) {
			env, err := bomBody(t, how, "\ufeff{\"a\": 1}\r\n")
			if err != nil || string(env.Body) != `{"a":1}` {
				t.Fatalf("sent %q, %v; want {\"a\":1}", env.Body, err)
			}
		})
		t.Run("two marks from "+how, func(t *testing.T) {
			env, err := bomBody(t, how, "\ufeff\ufeff{}")
			var fe *cmdutil.FlagError
			if !errors.As(err, &fe) || !strings.Contains(err.Error(), "byte order mark") {
				t.Fatalf("sent %q, %v; want a usage error naming the byte order mark", env.Body, err)
			}
		})
	}
}

// TestABodyWithAByteOrderMarkIsRefusedSayingSo: a body in UTF-16 (Windows
// PowerShell 5's >), or a --body argument with a mark (no file's encoding
// mark, but a character before the JSON), is refused, naming the mark,
// never advising --message or base64.
func TestABodyWithAByteOrderMarkIsRefusedSayingSo(t *testing.T) {
	for _, tc := range []struct{ name, how, body, want string }{
		{"UTF-16LE", "--body-file", "\xff\xfe{\x00}\x00\r\x00\n\x00", "UTF-16LE text: save it as UTF-8"},
		{"UTF-16LE", "piped stdin", "\xff\xfe{\x00}\x00\r\x00\n\x00", "UTF-16LE text: save it as UTF-8"},
		{"UTF-16BE", "--body-file", "\xfe\xff\x00{\x00}", "UTF-16BE text: save it as UTF-8"},
		{"UTF-16BE", "piped stdin", "\xfe\xff\x00{\x00}", "UTF-16BE text: save it as UTF-8"},
		{"UTF-8", "--body", "\ufeff{\"a\":1}", "byte order mark (UTF-8)"},
	} {
		t.Run(tc.name+" from "+tc.how, func(t *testing.T) {
			env, err := bomBody(t, tc.how, tc.body)
			var fe *cmdutil.FlagError
			if !errors.As(err, &fe) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("sent %q, %v; want a usage error saying %q", env.Body, err, tc.want)
			}
			if msg := err.Error(); strings.Contains(msg, "--message") || strings.Contains(msg, "base64") {
				t.Errorf("refusal %q; want no advice to use --message or base64", msg)
			}
		})
	}
}

// bomBody is the envelope publish makes of body given how: --body (the
// argument), --body-file (a file), --body-file - or --body - (stdin),
// or piped stdin.
func bomBody(t *testing.T, how, body string) (pubsub.Envelope, error) {
	t.Helper()
	ios, in, _, _ := iostreams.Test()
	args := []string{"--topic", "t"}
	switch how {
	case "--body":
		args = append(args, "--body", body)
	case "--body-file":
		file := filepath.Join(t.TempDir(), "body.json")
		if err := os.WriteFile(file, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		args = append(args, "--body-file", file)
	case "--body-file -":
		args = append(args, "--body-file", "-")
		in.WriteString(body)
	case "--body -":
		args = append(args, "--body", "-")
		in.WriteString(body)
	default:
		in.WriteString(body)
	}
	return parse(t, ios, args...).Envelope(t.Context())
}
