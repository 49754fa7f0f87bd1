package cmdutil

import (
	"bytes"
	"encoding/json"
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
