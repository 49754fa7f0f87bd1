package cmdutil

import (
	"strings"
	"testing"

	"github.com/socks-dev/socks/internal/lockedbuf"
	"github.com/socks-dev/socks/iostreams"
)

// TestWithJSONProgressIsShownAsWhenPiped: the one rule of progress for
// every command. A spinner only when stdout and stderr are terminals and
// the command does not print --json; otherwise as piped: Status's plain
// "…" lines, nothing of Transient or Wait, no escape code.
func TestWithJSONProgressIsShownAsWhenPiped(t *testing.T) {
	for _, c := range []struct {
		name      string
		tty, json bool
		spin      bool
	}{
		{"on terminals", true, false, true},
		{"piped", false, false, false},
		{"--json on terminals", true, true, false},
		{"--json piped", false, true, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			ios, _, _, _ := iostreams.Test()
			ios.SetTTY(false, c.tty, c.tty)
			errOut := &lockedbuf.Buffer{}
			ios.ErrOut = errOut
			p := NewProgress(ios, c.json, nil)
			p.Status("creating table t")
			p.Transient("a short step")
			p.Wait("a wait")
			p.Printf("a line of its own\n")
			p.Stop()
			if p.Spinning() != c.spin {
				t.Errorf("Spinning() = %v, want %v", p.Spinning(), c.spin)
			}
			// The marks of a command's own lines (deploy's ✓) are
			// coloured on a terminal, never with --json.
			if mark := p.UI().Good.Render("✓"); strings.Contains(mark, "\x1b") != (c.tty && !c.json) {
				t.Errorf("UI().Good.Render = %q; want colour only on a terminal without --json", mark)
			}
			if c.spin {
				return // the spinner's own tests are its commands'
			}
			if got, want := errOut.String(), "creating table t…\na line of its own\n"; got != want {
				t.Errorf("stderr %q, want %q", got, want)
			}
		})
	}
}
