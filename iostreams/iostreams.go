// Package iostreams carries a command's standard streams and what is known
// about them (terminal or not, colour wanted or not), so that no command
// reads os.Stdout or the environment directly and tests can pin everything.
package iostreams

import (
	"bytes"
	"errors"
	"io"
	"os"
	"strings"
	"sync"
	"syscall"

	"golang.org/x/term"

	"github.com/socks-dev/socks/internal/text"
)

// IOStreams is the set of streams a command reads and writes.
type IOStreams struct {
	In     io.Reader
	Out    io.Writer
	ErrOut io.Writer

	stdinTTY  bool
	stdoutTTY bool
	stderrTTY bool
	noColor   bool
	width     int
	// notUTF8 is set when the locale is not UTF-8 (LANG=C).
	notUTF8 bool
	// dumb is set for TERM=dumb.
	dumb bool
	// rawOut and rawErr are set for a Windows console on which escape
	// sequences could not be turned on (needEscapes): a dumb terminal too.
	rawOut, rawErr bool

	stdout    *os.File // the process's own, when System made s
	outClosed <-chan struct{}
	watchOnce sync.Once
}

// System returns the process's real streams. getenv is consulted for
// NO_COLOR, TERM=dumb and CLICOLOR_FORCE.
func System(getenv func(string) string) *IOStreams {
	s := &IOStreams{
		In:        os.Stdin,
		Out:       closedPipe{w: os.Stdout, name: "standard output"},
		ErrOut:    closedPipe{w: os.Stderr, name: "standard error"},
		stdinTTY:  term.IsTerminal(int(os.Stdin.Fd())),
		stdoutTTY: term.IsTerminal(int(os.Stdout.Fd())),
		stderrTTY: term.IsTerminal(int(os.Stderr.Fd())),
		width:     80,
		stdout:    os.Stdout,
	}
	if w, _, err := term.GetSize(int(os.Stdout.Fd())); err == nil && w > 0 {
		s.width = w
	}
	if !UTF8Locale(getenv) {
		// The glyphs and borders drawn for people would be mojibake,
		// and the bytes of other text C1 controls.
		s.notUTF8 = true
		if s.stdoutTTY {
			s.Out = closedPipe{w: ASCIIGlyphs(os.Stdout), name: "standard output"}
		}
		if s.stderrTTY {
			s.ErrOut = closedPipe{w: ASCIIGlyphs(os.Stderr), name: "standard error"}
		}
	}
	if getenv("NO_COLOR") != "" {
		s.noColor = true
	}
	if getenv("TERM") == "dumb" {
		s.noColor, s.dumb = true, true
	}
	s.needEscapes(enableEscapes, os.Stdout, os.Stderr)
	if getenv("CLICOLOR_FORCE") != "" && getenv("CLICOLOR_FORCE") != "0" {
		s.stdoutTTY = true
	}
	return s
}

// Test returns streams backed by buffers, none of them a terminal.
func Test() (*IOStreams, *bytes.Buffer, *bytes.Buffer, *bytes.Buffer) {
	in, out, errOut := &bytes.Buffer{}, &bytes.Buffer{}, &bytes.Buffer{}
	return &IOStreams{In: in, Out: out, ErrOut: errOut, width: 80}, in, out, errOut
}

// IsStdinTTY reports whether standard input is a terminal.
func (s *IOStreams) IsStdinTTY() bool { return s.stdinTTY }

// IsStdoutTTY reports whether standard output is a terminal.
func (s *IOStreams) IsStdoutTTY() bool { return s.stdoutTTY }

// IsStderrTTY reports whether standard error is a terminal.
func (s *IOStreams) IsStderrTTY() bool { return s.stderrTTY }

// SetTTY pins the terminal flags (tests).
func (s *IOStreams) SetTTY(stdin, stdout, stderr bool) {
	s.stdinTTY, s.stdoutTTY, s.stderrTTY = stdin, stdout, stderr
}

// needEscapes turns on, with enable, the escape sequences socks writes
// (colour, the spinner's clearing of its line) on each of stdout and
// stderr that is a terminal: a Windows console acts on them only once
// told to (virtual-terminal processing; an older Windows 10 conhost is
// not by default), and shows them as junk before. A stream on which
// enable fails is taken for a dumb terminal, as with TERM=dumb: no
// colour on it, no spinner, no escape sequence (Dumb).
func (s *IOStreams) needEscapes(enable func(*os.File) error, stdout, stderr *os.File) {
	if s.stdoutTTY && enable(stdout) != nil {
		s.rawOut = true
	}
	if s.stderrTTY && enable(stderr) != nil {
		s.rawErr = true
	}
}

// ColorEnabled reports whether stdout should get colour and styling.
func (s *IOStreams) ColorEnabled() bool { return s.stdoutTTY && !s.noColor && !s.rawOut }

// ColorEnabledStderr reports whether stderr should get colour and styling.
func (s *IOStreams) ColorEnabledStderr() bool { return s.stderrTTY && !s.noColor && !s.rawErr }

// UTF8 reports whether the locale's character set is UTF-8 (UTF8Locale).
func (s *IOStreams) UTF8() bool { return !s.notUTF8 }

// SetUTF8 pins whether the locale is UTF-8 (tests).
func (s *IOStreams) SetUTF8(v bool) { s.notUTF8 = !v }

// SetNoColor pins the colour preference (tests).
func (s *IOStreams) SetNoColor(v bool) { s.noColor = v }

// CanSpin reports whether progress spinners may be drawn: only when both
// stdout and stderr are terminals, and not dumb ones.
func (s *IOStreams) CanSpin() bool { return s.stdoutTTY && s.stderrTTY && !s.Dumb() }

// Dumb reports whether the terminal is a dumb one (TERM=dumb: an editor's
// shell buffer, a CI log; or a Windows console on which escape sequences
// could not be turned on), which acts on no escape sequence: one that
// clears a line shows as junk. It moves to the line's start (\r) and to
// the next line, no more.
func (s *IOStreams) Dumb() bool { return s.dumb || s.rawOut || s.rawErr }

// SetDumb pins whether the terminal is a dumb one (tests).
func (s *IOStreams) SetDumb(v bool) { s.dumb, s.rawOut, s.rawErr = v, false, false }

// Width is the terminal width (80 when unknown).
func (s *IOStreams) Width() int { return s.width }

// SetWidth pins the terminal width (tests).
func (s *IOStreams) SetWidth(w int) { s.width = w }

// OutClosed returns a channel closed when standard output is a pipe whose
// reader has gone (`socks listen | head -1`, once head exited), so that a
// command that may wait long before it writes again can stop at once
// instead of at its next write. It is nil (never ready) when that cannot
// be told: a terminal, a file, the Test streams, or a system without
// poll(2). The first call starts the watch.
func (s *IOStreams) OutClosed() <-chan struct{} {
	s.watchOnce.Do(func() {
		if s.stdout != nil && s.outClosed == nil {
			s.outClosed = watchClosed(s.stdout)
		}
	})
	return s.outClosed
}

// SetOutClosed makes OutClosed return ch (tests).
func (s *IOStreams) SetOutClosed(ch <-chan struct{}) { s.outClosed = ch }

// ClosedPipeError is a write to a standard stream whose reader has gone
// (`socks listen | head -1`, once head exits). Main ends quietly on it.
type ClosedPipeError struct {
	Stream string // "standard output" or "standard error"
	Err    error
}

func (e *ClosedPipeError) Error() string { return e.Stream + " was closed: " + e.Err.Error() }
func (e *ClosedPipeError) Unwrap() error { return e.Err }

// closedPipe turns EPIPE from a write to w into a *ClosedPipeError, so that
// it is told apart from a broken network connection. (Writes to a closed
// pipe on fd 1 and 2 fail with EPIPE instead of killing the process
// because Main catches SIGPIPE.)
type closedPipe struct {
	w    io.Writer
	name string
}

func (c closedPipe) forData() io.Writer { return closedPipe{w: ForData(c.w), name: c.name} }

func (c closedPipe) asciiOnly() bool { return ASCIIOnly(c.w) }

func (c closedPipe) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	if err != nil && errors.Is(err, syscall.EPIPE) {
		err = &ClosedPipeError{Stream: c.name, Err: err}
	}
	return n, err
}

// UTF8Locale reports whether the locale's character set is UTF-8: the
// first of LC_ALL, LC_CTYPE and LANG that is set decides (C and POSIX are
// ASCII). With none set it is taken to be, as every terminal emulator of
// today is.
func UTF8Locale(getenv func(string) string) bool {
	for _, k := range []string{"LC_ALL", "LC_CTYPE", "LANG"} {
		if v := strings.ToLower(getenv(k)); v != "" {
			return strings.Contains(v, "utf-8") || strings.Contains(v, "utf8")
		}
	}
	return true
}

// asciiGlyphs are the glyphs socks draws for people (table borders, marks,
// arrows, spinners) and their ASCII stand-ins, one column wide each so that
// tables stay aligned.
var asciiGlyphs = strings.NewReplacer(
	"╭", "+", "╮", "+", "╰", "+", "╯", "+", "├", "+", "┤", "+", "┬", "+", "┴", "+", "┼", "+",
	"─", "-", "│", "|",
	"✓", "+", "✗", "x", "·", "-", "→", ">", "←", "<", "●", "*", "○", "o", "↻", "~", "■", "#",
	"…", ".", "µ", "u",
	"⠋", "|", "⠙", "/", "⠹", "-", "⠸", "\\", "⠼", "|", "⠴", "/", "⠦", "-", "⠧", "\\", "⠇", "|", "⠏", "/",
)

// ASCIIGlyphs writes to w with the glyphs socks draws replaced by ASCII,
// for a terminal whose locale is not UTF-8. What is left that is not
// ASCII (a geek's name, a message's body) is written as an escape
// (text.ASCII: \u00eb): to such a terminal each byte 0x80-0x9f of UTF-8
// is a C1 control. (ui.UI.Text and Name escape it before a table is
// measured, so that the table stays aligned.)
func ASCIIGlyphs(w io.Writer) io.Writer { return glyphWriter{w} }

type glyphWriter struct{ w io.Writer }

func (g glyphWriter) Write(p []byte) (int, error) {
	if _, err := io.WriteString(g.w, text.ASCII(asciiGlyphs.Replace(string(p)))); err != nil {
		return 0, err
	}
	return len(p), nil
}

func (g glyphWriter) forData() io.Writer { return asciiWriter(g) }

func (glyphWriter) asciiOnly() bool { return true }

// asciiWriter is a glyphWriter for data: what is not ASCII is written as
// an escape, and no glyph is replaced. A byte that is not UTF-8 (in a
// JSON string json.Valid takes) is written as U+FFFD, as a JSON reader
// reads it: \xff is not JSON.
type asciiWriter struct{ w io.Writer }

func (a asciiWriter) Write(p []byte) (int, error) {
	if _, err := io.WriteString(a.w, text.ASCII(strings.ToValidUTF8(string(p), "\uFFFD"))); err != nil {
		return 0, err
	}
	return len(p), nil
}

// ASCIIOnly reports whether w writes to a terminal whose locale is not
// UTF-8 (ASCIIGlyphs): text from outside socks written to it must be
// escaped first (text.ASCII), as ui.UI.ForLocale does, or a character of
// it that is also one of socks's glyphs gets that glyph's stand-in.
func ASCIIOnly(w io.Writer) bool {
	a, ok := w.(interface{ asciiOnly() bool })
	return ok && a.asciiOnly()
}

// ForData returns w for writing data whose every character counts, JSON
// (--json): on a terminal whose locale is not UTF-8 (ASCIIGlyphs), what
// is not ASCII is still written as an escape (\u00eb, the same JSON), but
// no character is taken for one of socks's glyphs and replaced by its
// ASCII stand-in ("⠸" by a backslash, "→" by ">"), which would change
// the data or leave something that is not JSON. Any other w is returned
// as it is.
func ForData(w io.Writer) io.Writer {
	if d, ok := w.(interface{ forData() io.Writer }); ok {
		return d.forData()
	}
	return w
}
