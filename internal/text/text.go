// Package text holds the small wording helpers the commands share.
package text

import (
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Plural returns noun as is for one, else with an "s": Plural(2, "table")
// is "tables".
func Plural(n int, noun string) string {
	if n == 1 {
		return noun
	}
	return noun + "s"
}

// Pluralize returns n followed by noun, made plural unless n is one:
// Pluralize(1, "table") is "1 table", Pluralize(3, "table") "3 tables".
func Pluralize(n int, noun string) string {
	return strconv.Itoa(n) + " " + Plural(n, noun)
}

// Thousands writes n with a comma every three digits, as the docs write
// numbers: Thousands(10000) is "10,000".
func Thousands(n int) string {
	s := strconv.Itoa(n)
	start := 0
	if n < 0 {
		start = 1
	}
	for i := len(s) - 3; i > start; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}

// And joins items as a sentence does: "a", "a and b", "a, b and c".
func And(items []string) string { return list(items, " and ") }

// Or joins items as a choice: "a", "a or b", "a, b or c".
func Or(items []string) string { return list(items, " or ") }

func list(items []string, last string) string {
	switch len(items) {
	case 0:
		return ""
	case 1:
		return items[0]
	}
	return strings.Join(items[:len(items)-1], ", ") + last + items[len(items)-1]
}

// WasWere is "was" for one, else "were".
func WasWere(n int) string {
	if n == 1 {
		return "was"
	}
	return "were"
}

// EditDistance is the Levenshtein distance between a and b, by bytes:
// how far a slip (a mistyped flag, key or name) is from what was meant.
func EditDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// ShellWord quotes s for a POSIX shell when it holds anything the shell
// would act on, so that a hint naming a path can be pasted as it is.
func ShellWord(s string) string {
	if s != "" && strings.Trim(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-./:@%+=,") == "" {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// CapQuoted returns s with each Go-quoted string in it (as %q and
// strconv.Quote write them: "alice\n") that holds more than max
// characters cut to its first max and "…", quoted again; the rest of s
// is kept. For a log line that quotes what a client sent.
func CapQuoted(s string, max int) string {
	if !strings.Contains(s, `"`) {
		return s
	}
	var b strings.Builder
	for {
		i := strings.IndexByte(s, '"')
		if i < 0 {
			b.WriteString(s)
			return b.String()
		}
		b.WriteString(s[:i])
		s = s[i:]
		q, err := strconv.QuotedPrefix(s)
		if err != nil {
			// A quote mark that opens no quoted string.
			b.WriteByte('"')
			s = s[1:]
			continue
		}
		s = s[len(q):]
		if v, err := strconv.Unquote(q); err == nil && utf8.RuneCountInString(v) > max {
			q = strconv.Quote(string([]rune(v)[:max]) + "…")
		}
		b.WriteString(q)
	}
}

// CapBytes returns s cut to its first max bytes and "…" when it holds
// more, dropping the invalid UTF-8 of the prefix (a rune cut in two at
// the end): for a bound on bytes, where a message's size counts (a
// queue's attribute, a follow-up envelope's lastError).
func CapBytes(s string, max int) string {
	if len(s) <= max {
		return s
	}
	return strings.ToValidUTF8(s[:max], "") + "…"
}

// CapJSON is CapBytes for JSON text s (a marshalled value): the cut never
// ends inside an escape (`\u00`, a lone `\`), but before it. In JSON text
// a backslash is only ever the start of an escape, so escapes are found by
// reading from the start.
func CapJSON(s string, max int) string {
	if len(s) <= max {
		return s
	}
	cut := s[:max]
	for i := 0; i < len(cut); i++ {
		if cut[i] != '\\' {
			continue
		}
		n := 2 // \" \\ \/ \b \f \n \r \t
		if i+1 < len(s) && s[i+1] == 'u' {
			n = 6 // \uXXXX
		}
		if i+n > len(cut) {
			cut = cut[:i]
			break
		}
		i += n - 1
	}
	return strings.ToValidUTF8(cut, "") + "…"
}

// Cap returns s cut to its first max characters and "…" when it holds
// more.
func Cap(s string, max int) string {
	if utf8.RuneCountInString(s) <= max {
		return s
	}
	return string([]rune(s)[:max]) + "…"
}

// Size is n bytes as a person reads a size: "900 bytes", "128 KiB",
// "1 MiB", and, when n is no whole number of them, to a tenth with the
// bytes beside it ("195.3 KiB (200000 bytes)"), so that a size just over
// a limit never reads as the limit itself.
func Size(n int) string {
	const kib, mib = 1 << 10, 1 << 20
	switch {
	case n == 1:
		return "1 byte"
	case n < kib:
		return fmt.Sprintf("%d bytes", n)
	case n%mib == 0:
		return fmt.Sprintf("%d MiB", n/mib)
	case n%kib == 0 && n < mib:
		return fmt.Sprintf("%d KiB", n/kib)
	case n < mib:
		return fmt.Sprintf("%.1f KiB (%d bytes)", float64(n)/kib, n)
	}
	return fmt.Sprintf("%.1f MiB (%d bytes)", float64(n)/mib, n)
}
