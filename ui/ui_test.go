package ui_test

import (
	"strings"
	"testing"

	"github.com/charmbracelet/lipgloss"

	"github.com/socks-dev/socks/internal/text"
	"github.com/socks-dev/socks/iostreams"
	"github.com/socks-dev/socks/ui"
)

var (
	headers = []string{"CONNECTION", "GEEK", "TOPICS", "CONNECTED", "LAST ACTIVE"}
	rows    = [][]string{
		{"-iu-xQjaBcG88zo=", "Friendless", "jobs,news,updates,entity:42", "3m ago", "-"},
		{"Bq1-xQjaBcG88zo=", "Alice", "updates", "1h02m ago", "now"},
	}
)

// terminal is stdout on a terminal of the given width.
func terminal(width int, noColor bool) (*iostreams.IOStreams, *strings.Builder) {
	ios, _, _, _ := iostreams.Test()
	var out strings.Builder
	ios.Out = &out
	ios.SetTTY(false, true, false)
	ios.SetNoColor(noColor)
	ios.SetWidth(width)
	return ios, &out
}

func TestNoColorKeepsTheTerminalLayout(t *testing.T) {
	ios, out := terminal(200, true)
	u := ui.New(ios)
	if !u.Styled() {
		t.Fatal("NO_COLOR on a terminal switched to the layout for scripts; it should only drop the colour")
	}
	if err := u.Table(headers, rows); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(out.String(), "\x1b[") {
		t.Errorf("NO_COLOR output has escape codes:\n%q", out)
	}
	if strings.Contains(out.String(), "\t") || !strings.Contains(out.String(), "Friendless") {
		t.Errorf("NO_COLOR on a terminal printed tab-separated lines, not a table:\n%s", out)
	}
}

func TestATableFitsANarrowTerminal(t *testing.T) {
	for _, width := range []int{60, 40, 12} {
		ios, out := terminal(width, false)
		if err := ui.New(ios).Table(headers, rows); err != nil {
			t.Fatal(err)
		}
		for _, line := range strings.Split(strings.TrimRight(out.String(), "\n"), "\n") {
			// A line of the table's borders that the terminal wraps
			// mangles the whole table; a long value on a line of its
			// own may wrap.
			if w := lipgloss.Width(line); w > width && strings.ContainsAny(line, "│─") {
				t.Errorf("a %d-column terminal got a bordered line %d columns wide, which it wraps:\n%s", width, w, out)
				break
			}
		}
		for _, r := range rows {
			for _, cell := range r {
				if !strings.Contains(out.String(), cell) {
					t.Errorf("a %d-column terminal lost %q:\n%s", width, cell, out)
				}
			}
		}
	}
	t.Run("a wide terminal still gets the table", func(t *testing.T) {
		ios, out := terminal(200, true)
		if err := ui.New(ios).Table(headers, rows); err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(out.String(), "│ Friendless │") {
			t.Errorf("no table on a 200-column terminal:\n%s", out)
		}
	})
}

func TestTableColumnsStayAlignedWithWideAndCombiningText(t *testing.T) {
	ios, out := terminal(200, false)
	rows := [][]string{
		{"日本語の名前", "e\u0301\u0301\u0301", "x"},
		{"👩‍💻", "ｆｕｌｌ", "🦄🦄"},
		{"a", "b", "c"},
	}
	if err := ui.New(ios).Table([]string{"A", "B", "C"}, rows); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimRight(out.String(), "\n"), "\n")
	for _, l := range lines {
		if lipgloss.Width(l) != lipgloss.Width(lines[0]) {
			t.Fatalf("the table's lines differ in width:\n%s", out)
		}
	}
}

func TestOutsideTextIsEscapedOnlyOnATerminal(t *testing.T) {
	const evil = "a\tb\x1b]52;c;aGk=\x07\u202e\u200dz"
	ios, _ := terminal(200, true)
	u := ui.New(ios)
	for name, tc := range map[string]struct{ got, want string }{
		"text on a terminal":  {u.Text(evil), `a\tb\x1b]52;c;aGk=\x07\u202e` + "\u200dz"},
		"name on a terminal":  {u.Name(evil), `a\tb\x1b]52;c;aGk=\x07\u202e\u200dz`},
		"block on a terminal": {u.Block("l1\n" + evil), "l1\n" + `a\tb\x1b]52;c;aGk=\x07\u202e` + "\u200dz"},
		"text piped":          {ui.NewFor(nil, false).Text(evil), `a\tb` + evil[3:]},
		"name piped":          {ui.NewFor(nil, false).Name(evil), `a\tb` + evil[3:]},
		"block piped":         {ui.NewFor(nil, false).Block("l1\n" + evil), "l1\n" + evil},
	} {
		if tc.got != tc.want {
			t.Errorf("%s: got %q, want %q", name, tc.got, tc.want)
		}
	}
}

func TestAPipedTableKeepsEachRowOneLineOfItsColumns(t *testing.T) {
	// A value with a tab or a line break (no valid name has one, but a
	// table another backend wrote may) must not make a column or a row
	// for a script to read.
	var out strings.Builder
	u := ui.NewFor(&out, false)
	if err := u.Table([]string{"ID", "GEEK"}, [][]string{{"c1", "evil\tx\nc2\tadmin"}}); err != nil {
		t.Fatal(err)
	}
	if want := "ID\tGEEK\nc1\tevil\\tx\\nc2\\tadmin\n"; out.String() != want {
		t.Errorf("got %q, want %q", out.String(), want)
	}
}

func TestAPipedTableTellsABackslashFromALineBreak(t *testing.T) {
	// A name holding a backslash and an n, and one holding a line
	// break, were both written a\nb: a script could not tell them
	// apart. Each cell is escaped once, by u.Name, not again by Table.
	var out strings.Builder
	u := ui.NewFor(&out, false)
	rows := [][]string{{u.Name(`a\nb`), u.Name("a\nb")}, {u.Name(`C:\state`), u.Text(`\`)}}
	if err := u.Table([]string{"LITERAL", "LINE BREAK"}, rows); err != nil {
		t.Fatal(err)
	}
	if want := "LITERAL\tLINE BREAK\n" + `a\\nb` + "\t" + `a\nb` + "\n" + `C:\\state` + "\t" + `\\` + "\n"; out.String() != want {
		t.Errorf("got %q, want %q", out.String(), want)
	}
}

func TestTruncateLetsNoEscapeThrough(t *testing.T) {
	// ansi.Truncate keeps an escape sequence whole, as zero columns, and
	// cuts a C1 one in two: Truncate shows what a terminal would act on
	// escaped, whether or not s went through Text first.
	for _, s := range []string{"ab\x1b]52;c;aGk=\x07cdefghijkl", "ab\u009b31mcdefghijkl", "ab\x1b[8mcdefghijkl"} {
		got := ui.Truncate(s, 5)
		for _, r := range got {
			if text.UnsafeRune(r) {
				t.Errorf("Truncate(%q, 5) = %q: %U raw", s, got, r)
			}
		}
		if lipgloss.Width(got) > 5 {
			t.Errorf("Truncate(%q, 5) = %q, wider than 5", s, got)
		}
	}
	if got := ui.Truncate(`ab\x1b`, 20); got != `ab\x1b` {
		t.Errorf("Truncate changed text that was already shown escaped: %q", got)
	}
}
