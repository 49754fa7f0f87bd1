package cmdutil

import (
	"context"
	"fmt"
	"strings"

	"github.com/socks-dev/socks/iostreams"
)

// maxAnswer bounds what Ask reads of an answer: a stack name, or "yes".
const maxAnswer = 4 << 10

// Ask writes prompt on stderr and returns the line typed on stdin, trimmed
// (at most maxAnswer bytes of it); "" (after ending the prompt's line)
// when stdin ends first, or ctx does (the first Ctrl-C).
func Ask(ctx context.Context, ios *iostreams.IOStreams, prompt string) string {
	fmt.Fprint(ios.ErrOut, prompt)
	line, err := readLineCtx(ctx, ios.In, maxAnswer)
	if err != nil || line == "" {
		fmt.Fprintln(ios.ErrOut)
	}
	return strings.TrimSpace(line)
}
