package text

import (
	"fmt"
	"strings"
	"unicode"
	"unicode/utf16"
	"unicode/utf8"
)

// Text from outside socks (a message body, a dead letter's reason, a name
// read from a table another backend wrote, an error an AWS service or an
// emulator sent) reaches the operator's terminal only through these
// helpers; package ui applies them to what it prints (ui.UI.Text, Name,
// Block and Table):
//   - on a terminal, Sanitize (running text) and SanitizeName (names and
//     IDs) write what a terminal would act on, or what would hide in it,
//     as visible escapes: \x1b, \u202e;
//   - piped, Field keeps the data exact and escapes only what would break
//     a tab-separated line, and the backslash, so that it reads back.

// UnsafeRune reports runes a terminal may interpret, or that hide in
// running text: C0 controls, DEL, C1 controls (ESC and CSI among them),
// the bidirectional controls that make text read differently than it is,
// and the invisible characters with no use in running text (zero-width
// space, word joiner, byte order mark, line and paragraph separators,
// soft hyphen, tag characters). The zero-width joiner and non-joiner are
// kept: emoji sequences and Persian or Indic words need them.
func UnsafeRune(r rune) bool {
	switch {
	case r < 0x20, r == 0x7f, r >= 0x80 && r < 0xa0:
		return true
	case r == 0x061c, r == 0x200e, r == 0x200f,
		r >= 0x202a && r <= 0x202e, r >= 0x2066 && r <= 0x2069:
		// Bidirectional controls.
		return true
	case r == 0x00ad, r == 0x180e, r == 0x200b, r == 0x2028, r == 0x2029,
		r >= 0x2060 && r <= 0x2064, r >= 0x206a && r <= 0x206f, r == 0xfeff,
		r >= 0xfff9 && r <= 0xfffb, r >= 0xe0000 && r <= 0xe007f:
		// Invisible.
		return true
	}
	return false
}

// UnsafeNameRune reports runes that must be shown escaped in a name (a
// geek, a topic, a connection or message ID, a table or queue name): the
// unsafe runes, and every other rune that is not printed as a visible
// glyph (joiners, no-break and other spaces, private use, the Hangul
// fillers), since a name holding one looks like another name.
func UnsafeNameRune(r rune) bool {
	switch {
	case UnsafeRune(r), r != ' ' && !unicode.IsPrint(r):
		return true
	case r == 0x034f, r == 0x115f, r == 0x1160, r == 0x17b4, r == 0x17b5, r == 0x3164, r == 0xffa0:
		// Default-ignorable letters and marks: drawn blank.
		return true
	}
	return false
}

// Sanitize makes running text from outside safe to print on a terminal:
// unsafe runes become visible escapes (\t, \r, \x1b, \u009b, \u202e ...),
// and so does each byte of invalid UTF-8 (\xff). Newlines are kept when
// keepNewlines is set.
func Sanitize(s string, keepNewlines bool) string {
	return escape(s, UnsafeRune, keepNewlines)
}

// SanitizeName makes a name from outside safe to print on a terminal, and
// tells it apart from every other name: what UnsafeNameRune reports is
// written as a visible escape.
func SanitizeName(s string) string {
	return escape(s, UnsafeNameRune, false)
}

// Field is s as one field of a tab-separated line, for output that is not
// a terminal: a tab, newline or carriage return (which no valid name
// holds) is written \t, \n, \r, so that each row stays one line of the
// same columns, and a backslash \\, so that a field reads back as the
// value it was (a value holding a backslash and an n is written a\\nb,
// one holding a line break a\nb); everything else is kept exact, for
// scripts. Field is applied once: its result escaped again reads back as
// the escapes.
func Field(s string) string {
	if !strings.ContainsAny(s, "\\\t\n\r") {
		return s
	}
	return fieldEscapes.Replace(s)
}

var fieldEscapes = strings.NewReplacer(`\`, `\\`, "\t", `\t`, "\n", `\n`, "\r", `\r`)

// OneLine is s with a tab, newline or carriage return written \t, \n,
// \r, and nothing else changed: for text that already went through
// Field, Sanitize or SanitizeName (whose escapes it must not escape
// again), or that socks wrote itself, as a value of a table.
func OneLine(s string) string {
	if !strings.ContainsAny(s, "\t\n\r") {
		return s
	}
	return lineBreaks.Replace(s)
}

var lineBreaks = strings.NewReplacer("\t", `\t`, "\n", `\n`, "\r", `\r`)

// MaxMarks is how many combining marks in a row (accents, vowel signs,
// the subjoined letters of Tibetan, a keycap: Unicode's Mn and Me) are
// drawn as they are: the marks of real scripts are two or three on a
// letter, and a terminal draws a long run ("Zalgo" text: hundreds on one
// letter) as a smear over the lines above and below. The marks past it
// are shown as escapes (\u0301), by Sanitize, SanitizeName and
// EscapeJSON alike.
const MaxMarks = 6

// mark reports whether r is a combining mark that stacks on the letter
// before it.
func mark(r rune) bool {
	return r >= 0x300 && unicode.In(r, unicode.Mn, unicode.Me)
}

// tooManyMarks reports whether s holds a run of more than MaxMarks
// marks.
func tooManyMarks(s string) bool {
	var marks markRun
	for _, r := range s {
		if marks.over(r) {
			return true
		}
	}
	return false
}

// markRun counts the marks in a row: past MaxMarks, the next one is
// shown escaped. A zero-width joiner or non-joiner between them neither
// counts nor ends the run: it is drawn on the same letter, and so are the
// marks after it.
type markRun int

// over reports whether r is a mark past MaxMarks in a row.
func (n *markRun) over(r rune) bool {
	switch {
	case r == 0x200c, r == 0x200d:
		return false
	case !mark(r):
		*n = 0
		return false
	}
	*n++
	return *n > MaxMarks
}

func escape(s string, unsafe func(rune) bool, keepNewlines bool) string {
	if !strings.ContainsFunc(s, func(r rune) bool { return unsafe(r) || r == utf8.RuneError }) && !tooManyMarks(s) {
		return s
	}
	var b strings.Builder
	var marks markRun
	for i, r := range s {
		if r == utf8.RuneError {
			if _, size := utf8.DecodeRuneInString(s[i:]); size == 1 {
				fmt.Fprintf(&b, `\x%02x`, s[i])
				marks = 0
				continue
			}
		}
		if over := marks.over(r); !over && !unsafe(r) {
			b.WriteRune(r)
			continue
		}
		switch r {
		case '\n':
			if keepNewlines {
				b.WriteByte('\n')
			} else {
				b.WriteString(`\n`)
			}
		case '\t':
			b.WriteString(`\t`)
		case '\r':
			b.WriteString(`\r`)
		default:
			switch {
			case r < 0x80:
				fmt.Fprintf(&b, `\x%02x`, r)
			case r <= 0xffff:
				fmt.Fprintf(&b, `\u%04x`, r)
			default:
				fmt.Fprintf(&b, `\U%08x`, r)
			}
		}
	}
	return b.String()
}

// EscapeJSON writes, as JSON escapes (\u009b, \u202e; a surrogate pair
// above U+FFFF), the runes UnsafeRune reports other than newline, and the
// combining marks past MaxMarks in a row. Applied to encoded JSON, where
// such runes can only stand inside strings, it gives the same JSON,
// which a terminal shows without acting on it.
func EscapeJSON(s string) string {
	unsafe := func(r rune) bool { return r != '\n' && UnsafeRune(r) }
	if !strings.ContainsFunc(s, unsafe) && !tooManyMarks(s) {
		return s
	}
	var b strings.Builder
	var marks markRun
	for _, r := range s {
		if over := marks.over(r); over || unsafe(r) {
			WriteJSONEscape(&b, r)
			continue
		}
		b.WriteRune(r)
	}
	return b.String()
}

// WriteJSONEscape writes r as a JSON \u escape: two, a surrogate pair,
// above U+FFFF.
func WriteJSONEscape(b *strings.Builder, r rune) {
	if r > 0xffff {
		r1, r2 := utf16.EncodeRune(r)
		fmt.Fprintf(b, `\u%04x\u%04x`, r1, r2)
		return
	}
	fmt.Fprintf(b, `\u%04x`, r)
}

// ASCII writes every rune of s that is not ASCII as a JSON escape
// (\u00eb; a surrogate pair above U+FFFF, so that --json stays JSON), and
// each byte of invalid UTF-8 as \xff: for a terminal whose locale is not
// UTF-8, to which each byte 0x80-0x9f of UTF-8 text is a C1 control ("ћ"
// is D1 9B, and 9B is CSI).
func ASCII(s string) string {
	if !strings.ContainsFunc(s, func(r rune) bool { return r >= utf8.RuneSelf }) {
		return s
	}
	var b strings.Builder
	for i, r := range s {
		switch {
		case r == utf8.RuneError:
			if _, size := utf8.DecodeRuneInString(s[i:]); size == 1 {
				fmt.Fprintf(&b, `\x%02x`, s[i])
			} else {
				b.WriteString(`\ufffd`)
			}
		case r < utf8.RuneSelf:
			b.WriteRune(r)
		default:
			WriteJSONEscape(&b, r)
		}
	}
	return b.String()
}
