package text

import (
	"encoding/json"
	"maps"
	"strings"
	"testing"
)

func TestSanitizeShowsWhatATerminalWouldActOn(t *testing.T) {
	for _, tc := range []struct {
		name, in, want string
		keepNewlines   bool
	}{
		{"plain text is kept", "hello, 世界 👩‍💻 é", "hello, 世界 👩‍💻 é", false},
		{"an OSC 52 clipboard write is shown", "\x1b]52;c;aGk=\x07", `\x1b]52;c;aGk=\x07`, false},
		{"a cursor move is shown", "a\x1b[1A\x1b[2Kb", `a\x1b[1A\x1b[2Kb`, false},
		{"a C1 CSI is shown", "\u009b31m", `\u009b31m`, false},
		{"a bidi override is shown", "abc\u202edef", `abc\u202edef`, false},
		{"the Arabic letter mark is shown", "a\u061cb", `a\u061cb`, false},
		{"a zero-width space is shown", "ad\u200bmin", `ad\u200bmin`, false},
		{"a word joiner is shown", "ad\u2060min", `ad\u2060min`, false},
		{"a byte order mark is shown", "\ufeffx", `\ufeffx`, false},
		{"a line separator is shown", "a\u2028b", `a\u2028b`, false},
		{"a soft hyphen is shown", "a\u00adb", `a\u00adb`, false},
		{"tag characters are shown, in a form that reads back", "x\U000E0041", `x\U000e0041`, false},
		{"newlines are shown unless kept", "a\nb", `a\nb`, false},
		{"newlines are kept when asked", "a\nb\r\n", "a\nb\\r\n", true},
		{"invalid UTF-8 is shown byte by byte", "a\xffb", `a\xffb`, false},
		// Joiners hold emoji sequences and Persian words together.
		{"joiners in running text are kept", "👩‍💻 می\u200cخواهم", "👩‍💻 می\u200cخواهم", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := Sanitize(tc.in, tc.keepNewlines); got != tc.want {
				t.Errorf("Sanitize(%q) = %q, want %q", tc.in, got, tc.want)
			}
		})
	}
}

func TestSanitizeNameShowsEveryInvisibleCharacter(t *testing.T) {
	// A name (a geek, a topic, an ID) that holds an invisible character
	// looks like another name: every one is shown, joiners too.
	for _, tc := range []struct{ name, in, want string }{
		{"a plain name is kept", "Friendless", "Friendless"},
		{"a wide or accented name is kept", "日本-é-🦄", "日本-é-🦄"},
		{"a zero-width joiner is shown", "ad\u200dmin", `ad\u200dmin`},
		{"a zero-width non-joiner is shown", "ad\u200cmin", `ad\u200cmin`},
		{"a Hangul filler (blank but a letter) is shown", "admin\u3164", `admin\u3164`},
		{"a no-break space is shown", "ad\u00a0min", `ad\u00a0min`},
		{"an escape sequence is shown", "a\x1b]0;t\x07", `a\x1b]0;t\x07`},
		{"a newline is shown", "a\nb", `a\nb`},
		{"a bidi override is shown", "\u202eevil", `\u202eevil`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := SanitizeName(tc.in); got != tc.want {
				t.Errorf("SanitizeName(%q) = %q, want %q", tc.in, got, tc.want)
			}
		})
	}
}

func TestFieldKeepsDataExactButOnOneLine(t *testing.T) {
	// Piped output is data: only what would break a tab-separated line
	// is escaped, and the backslash that escapes it.
	in := "a\tb\nc\rd \x1b[31m \u202e \\t"
	want := `a\tb\nc\rd ` + "\x1b[31m \u202e " + `\\t`
	if got := Field(in); got != want {
		t.Errorf("Field(%q) = %q, want %q", in, got, want)
	}
	if s := "plain"; Field(s) != s {
		t.Errorf("Field changed %q", s)
	}
	if strings.ContainsAny(Field(in), "\t\n\r") {
		t.Errorf("Field(%q) left a tab or line break", in)
	}
}

func TestAFieldReadsBackAsTheValueItWas(t *testing.T) {
	// A literal backslash and n, and a line break, were both written
	// \n: a script could not tell which the value held.
	unescape := strings.NewReplacer(`\\`, `\`, `\t`, "\t", `\n`, "\n", `\r`, "\r")
	for _, in := range []string{`a\nb`, "a\nb", `a\\nb`, "a\\\nb", `C:\Users\geek`, `\`, `\\`, "\t\\t"} {
		got := Field(in)
		if back := unescape.Replace(got); back != in {
			t.Errorf("Field(%q) = %q, which reads back as %q", in, got, back)
		}
	}
	if Field(`a\nb`) == Field("a\nb") {
		t.Errorf("a literal \\n and a line break are both written %q", Field("a\nb"))
	}
}

func TestEscapeJSONGivesTheSameJSON(t *testing.T) {
	in := map[string]string{"k\u202e": "\u009b31m \u2066 \U000E0041 tab\there\n"}
	data, err := json.Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	got := EscapeJSON(string(data))
	for _, r := range got {
		if UnsafeRune(r) {
			t.Fatalf("EscapeJSON left %U in %s", r, got)
		}
	}
	var back map[string]string
	if err := json.Unmarshal([]byte(got), &back); err != nil || !maps.Equal(back, in) {
		t.Errorf("EscapeJSON(%s) = %s, which reads back as %q (%v)", data, got, back, err)
	}
}

func TestASCIIEscapesEveryOtherByte(t *testing.T) {
	in := "Zoë ћ \U0001F984 \xff"
	want := `Zo\u00eb \u045b \ud83e\udd84 \xff`
	if got := ASCII(in); got != want {
		t.Errorf("ASCII(%q) = %q, want %q", in, got, want)
	}
}

// TestALongRunOfCombiningMarksIsCapped: a name or a body with hundreds
// of combining marks on one letter ("Zalgo" text) is drawn by a terminal
// as a smear over the lines above and below. After MaxMarks marks in a
// row the rest are shown as escapes; the marks of real scripts (two or
// three on a letter in Vietnamese, Hebrew or Tibetan) are kept.
func TestALongRunOfCombiningMarksIsCapped(t *testing.T) {
	zalgo := "Z" + strings.Repeat("\u0301", 50) + "a"
	kept := "Z" + strings.Repeat("\u0301", MaxMarks)
	escaped := strings.Repeat(`\u0301`, 50-MaxMarks)
	for name, f := range map[string]func(string) string{
		"Sanitize":     func(s string) string { return Sanitize(s, true) },
		"SanitizeName": SanitizeName,
	} {
		if got, want := f(zalgo), kept+escaped+"a"; got != want {
			t.Errorf("%s(Z and 50 marks) = %q; want %q", name, got, want)
		}
		for _, real := range []string{"Vi\u1ec7t", "e\u0302\u0323", "\u05e9\u05c1\u05b8", "\u0f56\u0f66\u0f92\u0fb2\u0f74\u0f56\u0f66", "1\ufe0f\u20e3"} {
			if got := f(real); got != real {
				t.Errorf("%s(%q) = %q; want it kept", name, real, got)
			}
		}
		// A letter between two runs starts the count again.
		two := strings.Repeat("a"+strings.Repeat("\u0301", MaxMarks), 3)
		if got := f(two); got != two {
			t.Errorf("%s(three letters with %d marks each) = %q; want it kept", name, MaxMarks, got)
		}
	}
	if got, want := EscapeJSON(`"`+zalgo+`"`), `"`+kept+strings.Repeat(`\u0301`, 50-MaxMarks)+`a"`; got != want {
		t.Errorf("EscapeJSON = %q; want %q", got, want)
	}
}

// TestAJoinerDoesNotRestartTheCountOfMarks: a zero-width joiner or
// non-joiner (kept in running text, for emoji and Persian or Indic words)
// between marks is drawn on the same letter, so a run of marks broken
// every MaxMarks by one still stacked hundreds on one letter; the count
// goes on over them, and only a letter (or anything else) starts it again.
func TestAJoinerDoesNotRestartTheCountOfMarks(t *testing.T) {
	marks := strings.Repeat("\u0301", MaxMarks)
	for _, j := range []rune{0x200d, 0x200c} {
		joiner := string(j)
		zalgo := "Z" + strings.Repeat(marks+joiner, 10)
		want := "Z" + marks + joiner + strings.Repeat(strings.Repeat(`\u0301`, MaxMarks)+joiner, 9)
		if got := Sanitize(zalgo, true); got != want {
			t.Errorf("Sanitize(Z and marks broken by %U) = %q; want %q", j, got, want)
		}
		if got := EscapeJSON(`"` + zalgo + `"`); got != `"`+want+`"` {
			t.Errorf("EscapeJSON(Z and marks broken by %U) = %q; want %q", j, got, `"`+want+`"`)
		}
	}
	// Real text with joiners is kept: an emoji sequence, a Persian word,
	// and letters with marks on each side of a joiner.
	for _, real := range []string{"👩\u200d👩\u200d👧", "\u0645\u06cc\u200c\u062e\u0648\u0627\u0647\u0645", "a\u0301\u0302\u200db\u0301\u0302\u0303\u0304\u0305"} {
		if got := Sanitize(real, true); got != real {
			t.Errorf("Sanitize(%q) = %q; want it kept", real, got)
		}
	}
}
