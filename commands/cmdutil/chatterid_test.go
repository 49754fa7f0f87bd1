package cmdutil

import (
	"errors"
	"strings"
	"testing"

	"github.com/socks-dev/socks/pubsub"
)

// TestAChatterIDLosesOnlyALinesSpaceAtItsEnds: listen and chatter revoke
// took a chatter ID with strings.TrimSpace, which also takes U+00A0,
// U+0085, a vertical tab and a form feed off its ends, so an ID pasted
// with a no-break space was taken, where publish refuses such a body and
// no issued ID holds one. Only what a line of a file, a terminal or a
// variable legitimately has around a value goes (ASCII spaces and tabs,
// CR, LF); anything else is refused, naming the character by its code
// point and where it is, and showing nothing of the ID.
func TestAChatterIDLosesOnlyALinesSpaceAtItsEnds(t *testing.T) {
	const secret = "sc_Zq8secretPart-_9"
	for _, tc := range []struct {
		name, in string
		want     string // "" taken as secret
	}{
		{"a file's newline", secret + "\n", ""},
		{"a Windows line end", secret + "\r\n", ""},
		{"spaces and tabs around it", " \t" + secret + "\t  \r\n", ""},
		{"nothing around it", secret, ""},
		{"a no-break space at its end", secret + "\u00a0", "U+00A0 (a no-break space) at its end"},
		{"a no-break space before the newline", secret + "\u00a0\n", "U+00A0 (a no-break space) at its end"},
		{"a no-break space at its start", "\u00a0" + secret, "U+00A0 (a no-break space) at its start"},
		{"a next line control at its end", secret + "\u0085", "U+0085 (a control character) at its end"},
		{"a vertical tab at its end", secret + "\v", "U+000B (a control character) at its end"},
		{"a form feed at its start", "\f" + secret, "U+000C (a control character) at its start"},
		{"a line separator at its end", secret + "\u2028", "U+2028 (white space) at its end"},
		{"an ideographic space at its end", secret + "\u3000", "U+3000 (white space) at its end"},
		{"a narrow no-break space at its end", secret + "\u202f", "U+202F (a narrow no-break space) at its end"},
		{"a byte order mark at its start", "\ufeff" + secret, "U+FEFF (an invisible formatting character) at its start"},
		{"a zero width space inside it", "sc_Zq8\u200bsecretPart", "U+200B (an invisible formatting character) inside it"},
		{"a space inside it", "sc_Zq8 secretPart", "U+0020 (a space) inside it"},
		{"an escape sequence inside it", "sc_Zq8\x1b[2JsecretPart", "U+001B (a control character) inside it"},
		{"a letter beyond ASCII", "sc_Zq8ésecretPart", "U+00E9 (a character beyond ASCII) inside it"},
		{"standard base64's padding", secret + "=", "U+003D ('=') at its end"},
		{"a byte that is not UTF-8", "sc_Zq8\xffsecretPart", "the byte 0xFF, which is not UTF-8, inside it"},
		{"a lone no-break space", "\u00a0", "U+00A0 (a no-break space) at its start"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			id := TrimChatterID(tc.in)
			err := CheckChatterIDAlphabet(id, "--id")
			if tc.want == "" {
				if err != nil || id != secret {
					t.Fatalf("%q taken as %q, %v; want %q", tc.in, id, err, secret)
				}
				return
			}
			var fe *FlagError
			if !errors.As(err, &fe) {
				t.Fatalf("%q taken as %q, %v; want a usage error", tc.in, id, err)
			}
			msg := err.Error()
			if !strings.Contains(msg, "the chatter ID from --id has "+tc.want) || !strings.Contains(msg, "letters, digits, '-' and '_'") {
				t.Errorf("refusal %q; want it to say that it has %s, and what a chatter ID holds", msg, tc.want)
			}
			if strings.Contains(msg, "secretPart") || strings.Contains(msg, "Zq8") {
				t.Errorf("refusal %q shows the ID", msg)
			}
		})
	}
}

// FuzzAChatterIDIsTakenTrimmedOrRefusedInSafeWords: any value given as a
// chatter ID (a line of a file, a typed line, a variable, --id) is either
// taken, with only ASCII spaces, tabs, CR and LF taken off its ends and
// nothing but the chatter ID alphabet left, or refused as a usage error in
// printable ASCII (no raw control, invisible or non-ASCII character of
// the value reaches a terminal) whose words are the same whatever
// letters, digits, '-' and '_' the value holds: they show none of it.
func FuzzAChatterIDIsTakenTrimmedOrRefusedInSafeWords(f *testing.F) {
	for _, s := range []string{
		"sc_abc\n", " sc_abc \r\n", "sc_abc\u00a0", "\u0085sc_abc", "sc_a\x1b[2Jb", "sc_\xff", "\ufeffsc_abc",
		"sc_ab\u202ecd", "\v", "", "0123456789ab\u00a0", "sc_abc\u2028\n", "\xe2\x80", "sc_abc=",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		id := TrimChatterID(raw)
		if id != strings.Trim(raw, " \t\r\n") {
			t.Fatalf("%q trimmed to %q; want only ASCII spaces, tabs, CR and LF off its ends", raw, id)
		}
		err := CheckChatterIDAlphabet(id, "--id")
		if err == nil {
			if !pubsub.InChatterIDAlphabet(id) {
				t.Fatalf("%q taken as %q, which holds what no chatter ID does", raw, id)
			}
			return
		}
		var fe *FlagError
		if !errors.As(err, &fe) {
			t.Fatalf("%q refused with %v, not a usage error", raw, err)
		}
		msg := err.Error()
		for i := 0; i < len(msg); i++ {
			if msg[i] < 0x20 || msg[i] > 0x7e {
				t.Fatalf("%q refused with %q, which holds the byte %#x", raw, msg, msg[i])
			}
		}
		// The same value with every letter, digit, '-' and '_' replaced:
		// the same words.
		other := []byte(id)
		for i := range other {
			if pubsub.InChatterIDAlphabet(string(other[i])) {
				other[i] = 'x'
			}
		}
		if err2 := CheckChatterIDAlphabet(string(other), "--id"); err2 == nil || err2.Error() != msg {
			t.Fatalf("%q refused with %q, but %q with %v: the words show the ID", raw, msg, other, err2)
		}
	})
}
