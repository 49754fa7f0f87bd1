package cmdutil

import (
	"context"
	"io"
	"strings"
	"testing"

	"github.com/socks-dev/socks/iostreams"
)

// At `socks dlq purge`'s "[y/N]" (or teardown's stack name) the first
// Ctrl-C ended the command's context, which the prompt did not look at:
// the prompt stayed, and a second Ctrl-C was needed. An answer was read
// to its newline however long, into memory. The prompt now ends with
// the context, and an answer is read to maxAnswer bytes.
func TestAPromptEndsWithTheFirstSignalAndReadsABoundedAnswer(t *testing.T) {
	ios, _, _, errOut := iostreams.Test()
	pr, pw := io.Pipe()
	t.Cleanup(func() { pw.Close() })
	ios.In = pr
	ctx, cancel := context.WithCancel(context.Background())
	got := make(chan string, 1)
	go func() { got <- Ask(ctx, ios, "Purge? [y/N] ") }()
	cancel() // the first Ctrl-C
	if a := <-got; a != "" {
		t.Errorf("an interrupted prompt answered %q", a)
	}
	if errOut.String() != "Purge? [y/N] \n" {
		t.Errorf("stderr = %q; want the prompt and its line ended", errOut)
	}

	ios, in, _, _ := iostreams.Test()
	in.WriteString(strings.Repeat("y", 10*maxAnswer) + "\n")
	if a := Ask(t.Context(), ios, "? "); len(a) > maxAnswer+1 {
		t.Errorf("an answer of %d bytes read whole (%d)", 10*maxAnswer, len(a))
	}
	ios, in, _, _ = iostreams.Test()
	in.WriteString(" yes \n")
	if a := Ask(t.Context(), ios, "? "); a != "yes" {
		t.Errorf("answer %q; want yes", a)
	}
}
