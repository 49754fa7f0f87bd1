package text

import (
	"fmt"
	"strings"
	"unicode/utf8"
)

// UnsafeRune reports runes a terminal may interpret: C0 controls, DEL, C1
// controls (ESC and CSI among them) and the bidirectional overrides that
// can make text read differently than it is.
func UnsafeRune(r rune) bool {
	switch {
	case r < 0x20, r == 0x7f, r >= 0x80 && r < 0xa0:
		return true
	case r >= 0x202a && r <= 0x202e, r >= 0x2066 && r <= 0x2069, r == 0x200e, r == 0x200f:
		return true
	}
	return false
}

// Sanitize makes text from outside safe to print: unsafe runes become
// visible escapes (\t, \r, \x1b, \u009b ...). Newlines are kept when
// keepNewlines is set.
func Sanitize(s string, keepNewlines bool) string {
	if !strings.ContainsFunc(s, func(r rune) bool { return UnsafeRune(r) || r == utf8.RuneError }) {
		return s
	}
	var b strings.Builder
	for i, r := range s {
		if r == utf8.RuneError {
			if _, size := utf8.DecodeRuneInString(s[i:]); size == 1 {
				fmt.Fprintf(&b, `\x%02x`, s[i])
				continue
			}
		}
		if !UnsafeRune(r) {
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
			if r < 0x80 {
				fmt.Fprintf(&b, `\x%02x`, r)
			} else {
				fmt.Fprintf(&b, `\u%04x`, r)
			}
		}
	}
	return b.String()
}
