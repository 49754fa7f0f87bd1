// Package ui holds every lipgloss style socks uses, built from a renderer
// bound to the output writer, and the helpers that print tables and times the
// same way everywhere: styled on a terminal, plain tab-separated text and
// RFC 3339 times otherwise. Logic packages never import lipgloss.
package ui

import (
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/charmbracelet/lipgloss"
	"github.com/charmbracelet/lipgloss/table"
	"github.com/charmbracelet/x/ansi"
	"github.com/muesli/termenv"

	"github.com/socks-dev/socks/internal/text"
	"github.com/socks-dev/socks/iostreams"
)

// UI renders for one output stream.
type UI struct {
	w      io.Writer
	styled bool
	// ascii is set for a terminal whose locale is not UTF-8.
	ascii bool
	width int // of the terminal; 0 when unknown
	now   func() time.Time

	Title   lipgloss.Style
	Label   lipgloss.Style
	Muted   lipgloss.Style
	Good    lipgloss.Style
	Bad     lipgloss.Style
	Warn    lipgloss.Style
	Accent  lipgloss.Style
	Code    lipgloss.Style
	tableHd lipgloss.Style
	border  lipgloss.Style
}

// New returns styles for ios.Out. The layout for people (tables, relative
// times, glyphs) is on when stdout is a terminal; colour too, unless
// NO_COLOR (or TERM=dumb) turns it off, which changes nothing else.
func New(ios *iostreams.IOStreams) *UI {
	u := newUI(ios.Out, ios.IsStdoutTTY(), ios.ColorEnabled(), ios.Width())
	u.ascii = u.styled && !ios.UTF8()
	return u
}

// NewErr returns styles for ios.ErrOut (progress and state lines): the
// layout for people when stderr is a terminal, coloured unless NO_COLOR.
func NewErr(ios *iostreams.IOStreams) *UI {
	u := newUI(ios.ErrOut, ios.IsStderrTTY(), ios.ColorEnabledStderr(), ios.Width())
	u.ascii = u.styled && !ios.UTF8()
	return u
}

// NewErrPlain returns NewErr's styles, never coloured (as with
// NO_COLOR): for the lines a command that prints --json writes on stderr
// beside its progress (cmdutil.Progress.UI), which a terminal shows with
// no escape code. On a terminal what they quote from outside is still
// shown escaped (Text, Name).
func NewErrPlain(ios *iostreams.IOStreams) *UI {
	u := newUI(ios.ErrOut, ios.IsStderrTTY(), false, ios.Width())
	u.ascii = u.styled && !ios.UTF8()
	return u
}

// NewFor returns styles for an arbitrary writer, styled (and coloured) or
// not.
func NewFor(w io.Writer, styled bool) *UI { return newUI(w, styled, styled, 0) }

func newUI(w io.Writer, styled, colour bool, width int) *UI {
	r := lipgloss.NewRenderer(w)
	if colour {
		// Pinned rather than detected so that output (and tests) do not
		// depend on the terminal emulator's advertised capabilities.
		r.SetColorProfile(termenv.ANSI256)
	} else {
		r.SetColorProfile(termenv.Ascii)
	}
	u := &UI{w: w, styled: styled, width: width, now: time.Now}
	u.Title = r.NewStyle().Bold(true).Foreground(lipgloss.Color("212"))
	u.Label = r.NewStyle().Foreground(lipgloss.Color("245"))
	u.Muted = r.NewStyle().Foreground(lipgloss.Color("241"))
	u.Good = r.NewStyle().Foreground(lipgloss.Color("42"))
	u.Bad = r.NewStyle().Foreground(lipgloss.Color("203"))
	u.Warn = r.NewStyle().Foreground(lipgloss.Color("214"))
	u.Accent = r.NewStyle().Foreground(lipgloss.Color("39"))
	u.Code = r.NewStyle().Foreground(lipgloss.Color("229"))
	u.tableHd = r.NewStyle().Bold(true).Foreground(lipgloss.Color("212")).Padding(0, 1)
	u.border = r.NewStyle().Foreground(lipgloss.Color("238"))
	return u
}

// Styled reports whether output has the layout for people (a terminal),
// coloured or not.
func (u *UI) Styled() bool { return u.styled }

// Text is running text from outside socks (a dead letter's reason, an
// error an AWS service sent) for one line of output: on a terminal, what
// the terminal would act on or what would hide in it is shown escaped
// (text.Sanitize: \x1b, \u202e, \n); piped, it is exact but for a tab,
// line break or backslash, written \t, \n, \\ (text.Field).
func (u *UI) Text(s string) string {
	if u.styled {
		return u.ForLocale(text.Sanitize(s, false))
	}
	return text.Field(s)
}

// Name is a name from outside socks (a geek, a topic, a connection or
// message ID, a table or queue name): as Text, but on a terminal every
// character not drawn visibly is shown escaped too, so that a name never
// looks like another (text.SanitizeName).
func (u *UI) Name(s string) string {
	if u.styled {
		return u.ForLocale(text.SanitizeName(s))
	}
	return text.Field(s)
}

// Block is text from outside socks printed on lines of its own (a
// message body): as Text on a terminal, but its newlines kept; piped, it
// is exact.
func (u *UI) Block(s string) string {
	if u.styled {
		return u.ForLocale(text.Sanitize(s, true))
	}
	return s
}

// ForLocale escapes what is not ASCII in s, text from outside socks
// already made safe (text.Sanitize, SanitizeName), for a terminal whose
// locale is not UTF-8 (text.ASCII): there iostreams.ASCIIGlyphs would
// escape it only after a table was measured, and would give a character
// of the data that is also one of socks's glyphs its ASCII stand-in ("⠸"
// a backslash, "→" ">"). Elsewhere s is returned as it is.
func (u *UI) ForLocale(s string) string {
	if u.ascii {
		return text.ASCII(s)
	}
	return s
}

// SetNow pins the clock used for relative times (tests).
func (u *UI) SetNow(now func() time.Time) { u.now = now }

// Time formats t: relative ("3m ago") when styled, RFC 3339 otherwise.
func (u *UI) Time(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	if !u.styled {
		return t.UTC().Format(time.RFC3339)
	}
	return Relative(u.now().Sub(t))
}

// Relative renders a duration as a short human age: "now", "42s ago", "5m ago".
// A negative duration is in the future: "in 3h".
func Relative(d time.Duration) string {
	future := d < 0
	if future {
		d = -d
	}
	var s string
	switch {
	case d < time.Second:
		return "now"
	case d < time.Minute:
		s = fmt.Sprintf("%ds", int(d.Seconds()))
	case d < time.Hour:
		s = fmt.Sprintf("%dm", int(d.Minutes()))
	case d < 48*time.Hour:
		s = fmt.Sprintf("%dh%02dm", int(d.Hours()), int(d.Minutes())%60)
	default:
		s = fmt.Sprintf("%dd", int(d.Hours()/24))
	}
	if future {
		return "in " + s
	}
	return s + " ago"
}

// Table prints rows under headers: a bordered lipgloss table when styled,
// tab-separated lines (with a header line) otherwise. A cell from outside
// socks must have been through Text or Name (before any styling); a tab
// or line break left in a cell is written \t, \n or \r, so that each row
// stays one line of its columns. On a terminal too
// narrow for the table, whose wrapping would mangle every bordered line,
// each row is a block of "HEADER  value" lines instead.
func (u *UI) Table(headers []string, rows [][]string) error {
	rows = oneLineCells(rows)
	if !u.styled {
		return u.plain(headers, rows)
	}
	t := table.New().
		Border(lipgloss.RoundedBorder()).
		BorderStyle(u.border).
		Headers(headers...).
		Rows(rows...).
		StyleFunc(func(row, col int) lipgloss.Style {
			if row == table.HeaderRow {
				return u.tableHd
			}
			return lipgloss.NewStyle().Padding(0, 1)
		})
	out := t.Render()
	if u.width > 0 && lipgloss.Width(out) > u.width {
		return u.records(headers, rows)
	}
	_, err := fmt.Fprintln(u.w, out)
	return err
}

// oneLineCells is rows with text.OneLine applied to each cell: a cell
// from outside went through Text or Name already, whose escapes (a
// backslash written \\ piped) are not escaped again.
func oneLineCells(rows [][]string) [][]string {
	out := make([][]string, len(rows))
	for i, r := range rows {
		out[i] = make([]string, len(r))
		for j, c := range r {
			out[i][j] = text.OneLine(c)
		}
	}
	return out
}

func (u *UI) plain(headers []string, rows [][]string) error {
	var b strings.Builder
	b.WriteString(strings.Join(headers, "\t"))
	b.WriteByte('\n')
	for _, r := range rows {
		b.WriteString(strings.Join(r, "\t"))
		b.WriteByte('\n')
	}
	_, err := io.WriteString(u.w, b.String())
	return err
}

// records prints each row as a block of "HEADER  value" lines, blocks
// separated by a blank line: readable at any width.
func (u *UI) records(headers []string, rows [][]string) error {
	width := 0
	for _, h := range headers {
		width = max(width, lipgloss.Width(h))
	}
	var b strings.Builder
	for i, r := range rows {
		if i > 0 {
			b.WriteByte('\n')
		}
		for j, h := range headers {
			v := ""
			if j < len(r) {
				v = r[j]
			}
			fmt.Fprintf(&b, "%s  %s\n", u.Label.Render(h+strings.Repeat(" ", width-lipgloss.Width(h))), v)
		}
	}
	_, err := io.WriteString(u.w, b.String())
	return err
}

// Truncate cuts s to at most width columns of a terminal, ending in "…"
// when cut: wide characters (CJK, emoji) take two columns, and a
// character is never split from its combining marks. s is text for a
// terminal (Text, Name): what a terminal would act on still in it is
// shown escaped first (text.Sanitize), since ansi.Truncate would keep an
// escape sequence whole, as zero columns, or cut a C1 one in two.
func Truncate(s string, width int) string {
	return ansi.Truncate(text.Sanitize(s, false), width, "…")
}

// Check renders an ok/fail mark.
func (u *UI) Check(ok bool) string {
	if !u.styled {
		if ok {
			return "ok"
		}
		return "FAIL"
	}
	if ok {
		return u.Good.Render("✓")
	}
	return u.Bad.Render("✗")
}
