package text

import "testing"

func TestPluralize(t *testing.T) {
	for _, tc := range []struct {
		n    int
		want string
	}{{0, "0 dead letters"}, {1, "1 dead letter"}, {2, "2 dead letters"}} {
		if got := Pluralize(tc.n, "dead letter"); got != tc.want {
			t.Errorf("Pluralize(%d) = %q, want %q", tc.n, got, tc.want)
		}
	}
}

func TestEditDistance(t *testing.T) {
	for _, tc := range []struct {
		a, b string
		want int
	}{
		{"", "", 0},
		{"region", "region", 0},
		{"regoin", "region", 2},
		{"topic", "topics", 1},
		{"", "abc", 3},
		{"kitten", "sitting", 3},
	} {
		if got := EditDistance(tc.a, tc.b); got != tc.want {
			t.Errorf("EditDistance(%q, %q) = %d; want %d", tc.a, tc.b, got, tc.want)
		}
	}
}

func TestCapQuoted(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{`no quotes`, `no quotes`},
		{`geek "alice" is fine`, `geek "alice" is fine`},
		{`geek "abcdefghij" contains`, `geek "abcde…" contains`},
		{`"abcdefghij\n" and "ab"`, `"abcde…" and "ab"`},
		{`"ëëëëëëë"`, `"ëëëëë…"`},
		{`"abcde"`, `"abcde"`},
		{`an open "quote mark`, `an open "quote mark`},
		{`"a\"bcdefg" after`, `"a\"bcd…" after`},
	} {
		if got := CapQuoted(tc.in, 5); got != tc.want {
			t.Errorf("CapQuoted(%s, 5) = %s, want %s", tc.in, got, tc.want)
		}
	}
	if got := Cap("abcdef", 3); got != "abc…" {
		t.Errorf("Cap = %q", got)
	}
	if got := Cap("abc", 3); got != "abc" {
		t.Errorf("Cap = %q", got)
	}
}

// TestCapBytes: a bound on bytes keeps the text whole up to it, and a
// rune it cuts in two is dropped, not left half.
func TestCapBytes(t *testing.T) {
	for _, tc := range []struct {
		s    string
		max  int
		want string
	}{
		{"abc", 3, "abc"},
		{"abcd", 3, "abc…"},
		{"aé", 2, "a…"}, // é is two bytes: the cut halves it
		{"", 0, ""},
	} {
		if got := CapBytes(tc.s, tc.max); got != tc.want {
			t.Errorf("CapBytes(%q, %d) = %q; want %q", tc.s, tc.max, got, tc.want)
		}
	}
}

// CapJSON cuts JSON text as CapBytes does, but never through an escape:
// a cut that left `\u00` or a lone `\` showed a broken escape.
func TestCapJSONNeverEndsMidEscape(t *testing.T) {
	for _, tc := range []struct {
		s    string
		max  int
		want string
	}{
		{`"abc"`, 5, `"abc"`},
		{`"abcd"`, 3, `"ab…`},
		{`"a\u003c\u003c"`, 10, `"a\u003c…`}, // cut after \u of the second
		{`"a\u003c\u003c"`, 8, `"a\u003c…`},  // the first whole
		{`"a\u003c\u003c"`, 7, `"a…`},        // \u003 is not an escape yet
		{`"a\\\\\\"`, 5, `"a\\…`},            // \\ is one escape: not cut after its \
		{`"a\\\"x"`, 6, `"a\\\"…`},           // \\ then \"
		{`"a\\\"x"`, 5, `"a\\…`},             // not \\ then a lone \
		{`"aé\n"`, 3, `"a…`},                 // é halved, as CapBytes
		{`{"k":"\t\t\t"}`, 9, `{"k":"\t…`},
	} {
		got := CapJSON(tc.s, tc.max)
		if got != tc.want {
			t.Errorf("CapJSON(%q, %d) = %q; want %q", tc.s, tc.max, got, tc.want)
		}
	}
}

func TestSizeIsInUnitsAPersonReads(t *testing.T) {
	for _, tc := range []struct {
		n    int
		want string
	}{
		{0, "0 bytes"},
		{1, "1 byte"},
		{1023, "1023 bytes"},
		{1024, "1 KiB"},
		{131072, "128 KiB"},
		{131073, "128.0 KiB (131073 bytes)"},
		{200000, "195.3 KiB (200000 bytes)"},
		{1 << 20, "1 MiB"},
		{3 << 19, "1.5 MiB (1572864 bytes)"},
		{5 << 20, "5 MiB"},
	} {
		if got := Size(tc.n); got != tc.want {
			t.Errorf("Size(%d) = %q, want %q", tc.n, got, tc.want)
		}
	}
}

func TestThousands(t *testing.T) {
	for n, want := range map[int]string{0: "0", 7: "7", 999: "999", 1000: "1,000", 10240: "10,240", 100000: "100,000", 1234567: "1,234,567", -1000: "-1,000", -999: "-999", -123456: "-123,456"} {
		if got := Thousands(n); got != want {
			t.Errorf("Thousands(%d) = %q; want %q", n, got, want)
		}
	}
}
