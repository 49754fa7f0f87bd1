package cmdutil

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"

	"github.com/socks-dev/socks/internal/text"
	"github.com/socks-dev/socks/iostreams"
)

// PrintJSON writes v as one line of JSON, the --json output of every
// command. What encoding/json leaves raw that a terminal could act on
// (DEL, C1 controls, bidi controls, invisible characters: a message body's
// or a name's, when --json goes to a terminal) is written as a JSON
// escape too (text.EscapeJSON): the same JSON, so a script reads the data
// exactly. On a terminal whose locale is not UTF-8 it is written as data
// (iostreams.ForData): escaped to ASCII, no glyph replaced.
func PrintJSON(w io.Writer, v any) error {
	var buf bytes.Buffer
	if err := json.NewEncoder(&buf).Encode(v); err != nil {
		return err
	}
	_, err := io.WriteString(iostreams.ForData(w), text.EscapeJSON(buf.String()))
	return err
}

// EndJSON ends a command run with --json that prints one JSON object
// whatever happens (docs/json.md: provision, deploy, teardown), and has
// printed nothing yet: it prints out("") on w when err is nil, and
// out(why) when the command failed, why being err's message: the object
// as it stands (what the command found and did before it stopped; at
// worst every field in its empty form) with its `error` set, so that
// `socks deploy --json | jq .error` says why. It returns err, whose exit
// code and message on standard error are as without --json, or, when err
// is nil, the print's error. A usage error (IsUsage: exit 2; the command
// did not start, and the page's general rule leaves standard output
// empty) and a closed standard output print nothing.
func EndJSON(w io.Writer, err error, out func(why string) any) error {
	if err == nil {
		return PrintJSON(w, out(""))
	}
	if _, closed := errors.AsType[*iostreams.ClosedPipeError](err); closed || IsUsage(err) {
		return err
	}
	// The failure is what matters: a print that fails too (standard
	// output gone) is not said instead of it.
	_ = PrintJSON(w, out(err.Error()))
	return err
}

// Notef prints a line for people on w (standard error): a note or a
// warning without styling. Its arguments may quote what came from outside
// socks (an AWS service's error, a tag's value, a report's error), so
// what a terminal would act on anywhere in the line is shown escaped
// (text.Sanitize), newlines kept. On a terminal whose locale is not UTF-8
// (iostreams.ASCIIOnly) the arguments are data: what is not ASCII in
// them is escaped (text.ASCII, as ui.UI.ForLocale does), and only the
// format's own glyphs get their ASCII stand-ins.
func Notef(w io.Writer, format string, args ...any) {
	if iostreams.ASCIIOnly(w) {
		data := make([]any, len(args))
		for i, a := range args {
			data[i] = asciiArg{a}
		}
		args = data
	}
	_, _ = io.WriteString(w, text.Sanitize(fmt.Sprintf(format, args...), true))
}

// asciiArg formats its value as its verb would, then escapes it for a
// terminal whose locale is not UTF-8.
type asciiArg struct{ v any }

func (a asciiArg) Format(f fmt.State, verb rune) {
	_, _ = io.WriteString(f, text.ASCII(text.Sanitize(fmt.Sprintf(fmt.FormatString(f, verb), a.v), true)))
}
