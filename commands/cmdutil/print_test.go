package cmdutil

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"strings"
	"syscall"
	"testing"

	"github.com/socks-dev/socks/iostreams"
	"github.com/socks-dev/socks/pubsub"
)

func TestJSONOnANonUTF8TerminalReadsBackTheSameStrings(t *testing.T) {
	// A terminal whose locale is not UTF-8 gets socks's glyphs as ASCII
	// (iostreams.ASCIIGlyphs), but --json carries data: a body or a name
	// holding one of those glyphs must read back as it is ("⠸" is a
	// spinner frame, whose stand-in is a backslash, which would make
	// "⠸n" read back as a newline, and "⠸" alone not JSON at all).
	in := map[string]string{"body": "⠸n ⠧ → ✓ … µ ─ │ ╭", "alone": "⠸", "geek": "Zoë🦄"}
	var out strings.Builder
	if err := PrintJSON(iostreams.ASCIIGlyphs(&out), in); err != nil {
		t.Fatal(err)
	}
	got := out.String()
	for i := 0; i < len(got); i++ {
		if got[i] >= 0x80 {
			t.Fatalf("byte %#x reached a terminal that is not UTF-8: %q", got[i], got)
		}
	}
	var back map[string]string
	if err := json.Unmarshal([]byte(got), &back); err != nil || !maps.Equal(back, in) {
		t.Errorf("%s reads back as %q (%v); want %q", got, back, err, in)
	}
}

func TestJSONWithABodyThatIsNotUTF8StaysJSONOnANonUTF8Terminal(t *testing.T) {
	// A dead letter's body is JSON whose strings may hold bytes that are
	// not UTF-8 (json.Valid takes them; a local queue may hold them):
	// escaped for the terminal, they read back as a JSON reader reads the
	// raw bytes, U+FFFD, and the line stays JSON.
	in := struct {
		Body json.RawMessage `json:"body"`
	}{json.RawMessage("\"a\xffb\"")}
	var raw, ascii strings.Builder
	if err := PrintJSON(&raw, in); err != nil {
		t.Fatal(err)
	}
	if err := PrintJSON(iostreams.ASCIIGlyphs(&ascii), in); err != nil {
		t.Fatal(err)
	}
	var want, got map[string]string
	if err := json.Unmarshal([]byte(raw.String()), &want); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal([]byte(ascii.String()), &got); err != nil || !maps.Equal(got, want) {
		t.Errorf("%q reads back as %q (%v); want %q", ascii.String(), got, err, want)
	}
}

// TestANoteOnANonUTF8TerminalKeepsItsDataExact: Notef's arguments are
// what came from outside socks (an AWS error, a tag's value, a name); on
// a terminal whose locale is not UTF-8 they went through the glyph
// stand-ins meant for socks's own marks, so a name holding "→" or "⠸"
// read "> " or a backslash. They are escaped as data (\u2192), and what
// the format itself draws still gets its stand-in.
func TestANoteOnANonUTF8TerminalKeepsItsDataExact(t *testing.T) {
	var out strings.Builder
	Notef(iostreams.ASCIIGlyphs(&out), "note: %s → %q\n", "a→b ⠸n Zoë", "x\x1by")
	want := `note: a\u2192b \u2838n Zo\u00eb > "x\x1by"` + "\n"
	if out.String() != want {
		t.Errorf("Notef wrote %q; want %q", out.String(), want)
	}
	// On a UTF-8 terminal, or anywhere else, nothing changes.
	var plain strings.Builder
	Notef(&plain, "note: %s → %d\n", "a→b", 3)
	if want := "note: a→b → 3\n"; plain.String() != want {
		t.Errorf("Notef wrote %q; want %q", plain.String(), want)
	}
}

// TestADumbTerminalGetsNoSpinner: on TERM=dumb the spinner's "\r\x1b[K"
// showed as junk; there Progress writes plain lines, as off a terminal.
func TestADumbTerminalGetsNoSpinner(t *testing.T) {
	ios, _, _, stderr := iostreams.Test()
	ios.SetTTY(false, true, true)
	ios.SetDumb(true)
	p := NewProgress(ios, false, nil)
	if p.Spinning() {
		t.Fatal("a spinner on a dumb terminal")
	}
	p.Status("creating the tables")
	p.Wait("")
	p.Printf("created %s\n", "socks-main")
	p.Stop()
	if got, want := stderr.String(), "creating the tables…\ncreated socks-main\n"; got != want {
		t.Errorf("stderr %q; want %q", got, want)
	}
}

func TestEndJSONPrintsTheObjectWithTheErrorUnlessTheCommandDidNotStart(t *testing.T) {
	type object struct {
		Done  []string `json:"done"`
		Error string   `json:"error,omitempty"`
	}
	failed := errors.New("cannot reach http://127.0.0.1:9")
	for _, tc := range []struct {
		name string
		err  error
		// want is stdout ("": nothing).
		want string
	}{
		{"a success prints the object without an error", nil, `{"done":[]}` + "\n"},
		{"a failure prints the object with its error", failed, `{"done":[],"error":"cannot reach http://127.0.0.1:9"}` + "\n"},
		{"a failure with an exit code of its own prints it too", Exit(ExitError, failed), `{"done":[],"error":"cannot reach http://127.0.0.1:9"}` + "\n"},
		{"a usage error prints nothing", FlagErrorf("--wait must be above 0"), ""},
		{"an invalid value prints nothing", fmt.Errorf("--geek: %w", &pubsub.InvalidError{Field: "geek", Reason: "empty"}), ""},
		{"a closed standard output prints nothing", &iostreams.ClosedPipeError{Stream: "standard output", Err: syscall.EPIPE}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out strings.Builder
			err := EndJSON(&out, tc.err, func(why string) any { return object{Done: []string{}, Error: why} })
			if err != tc.err {
				t.Errorf("returned %v; want the command's error %v, for its exit code", err, tc.err)
			}
			if out.String() != tc.want {
				t.Errorf("stdout %q; want %q", out.String(), tc.want)
			}
		})
	}
}
