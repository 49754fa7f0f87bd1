package cmdutil

import (
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/socks-dev/socks/internal/text"
	"github.com/socks-dev/socks/iostreams"
	"github.com/socks-dev/socks/ui"
)

// Progress shows what a long operation is doing on stderr: a spinner line
// with the time taken when stdout and stderr are terminals
// (iostreams.CanSpin) and the command does not print --json, else one
// plain line per Status (NewProgress). Call Stop when the operation ends.
type Progress struct {
	w    io.Writer
	spin bool
	now  func() time.Time
	ui   *ui.UI

	mu      sync.Mutex
	line    string
	started time.Time
	stopCh  chan struct{}
	done    chan struct{}
}

var spinFrames = []string{"⠋", "⠙", "⠹", "⠸", "⠼", "⠴", "⠦", "⠧", "⠇", "⠏"}

// NewProgress starts a Progress on ios's stderr; jsonOut is the command's
// --json; now (nil: time.Now) times it.
//
// It holds the one rule of progress for every command: a spinner only
// for a person watching terminals, and never with --json, where the
// progress is shown as when piped: Status's plain "…" lines on stderr,
// nothing of Transient or Wait, no escape code (docs/json.md). A command
// whose progress is the spinner alone (Transient, Wait) so shows nothing
// piped or with --json; one that marks its lines (Printf) takes the
// styles from UI, never coloured with --json.
func NewProgress(ios *iostreams.IOStreams, jsonOut bool, now func() time.Time) *Progress {
	if now == nil {
		now = time.Now
	}
	p := &Progress{w: ios.ErrOut, spin: ios.CanSpin() && !jsonOut, now: now, ui: ErrUI(ios, jsonOut), started: now()}
	if p.spin {
		p.stopCh, p.done = make(chan struct{}), make(chan struct{})
		go p.loop()
	}
	return p
}

// UI is the styles of the lines written with Printf (ErrUI): with
// --json never coloured, so that a terminal gets no escape code from
// them, as it gets no spinner.
func (p *Progress) UI() *ui.UI { return p.ui }

// ErrUI is the styles of every line a command writes on stderr (its
// progress, warnings, notes, summaries), jsonOut being its --json: those
// of ui.NewErr, and with --json never coloured (ui.NewErrPlain), so that
// a terminal shows no escape code beside the JSON (docs/json.md), as it
// shows no spinner (NewProgress). Commands take their stderr styles from
// here (or Progress.UI), never from ui.NewErr.
func ErrUI(ios *iostreams.IOStreams, jsonOut bool) *ui.UI {
	if jsonOut {
		return ui.NewErrPlain(ios)
	}
	return ui.NewErr(ios)
}

// Spinning reports whether p draws a spinner (stdout and stderr are
// terminals, and no --json).
func (p *Progress) Spinning() bool { return p.spin }

func (p *Progress) loop() {
	defer close(p.done)
	t := time.NewTicker(100 * time.Millisecond)
	defer t.Stop()
	for i := 0; ; i++ {
		select {
		case <-p.stopCh:
			p.mu.Lock()
			fmt.Fprint(p.w, "\r\x1b[K")
			p.mu.Unlock()
			return
		case <-t.C:
			p.mu.Lock()
			if p.line != "" {
				fmt.Fprintf(p.w, "\r\x1b[K%s %s (%s)", spinFrames[i%len(spinFrames)], p.line, p.now().Sub(p.started).Round(100*time.Millisecond))
			}
			p.mu.Unlock()
		}
	}
}

// Status sets what is going on: the spinner's line, or a plain line
// ending in "…". It names resources AWS holds: what a terminal would act
// on is shown escaped (text.Sanitize), and a line break cannot leave the
// spinner's line behind.
func (p *Progress) Status(line string) {
	line = text.Sanitize(line, false)
	p.mu.Lock()
	defer p.mu.Unlock()
	p.line = line
	if !p.spin {
		fmt.Fprintln(p.w, line+"…")
	}
}

// Transient shows line on the spinner only: a short step that is not
// worth a line of its own.
func (p *Progress) Transient(line string) {
	if p.spin {
		p.Status(line)
	}
}

// Wait shows line on the spinner only, timed from now: one wait of
// several. "" stops drawing until the next Wait or Status.
func (p *Progress) Wait(line string) {
	if !p.spin {
		return
	}
	line = text.Sanitize(line, false)
	p.mu.Lock()
	defer p.mu.Unlock()
	p.line, p.started = line, p.now()
	if line == "" {
		fmt.Fprint(p.w, "\r\x1b[K")
	}
}

// Printf writes a line of its own on stderr, over the spinner's line (the
// spinner goes on below it).
func (p *Progress) Printf(format string, args ...any) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.spin {
		fmt.Fprint(p.w, "\r\x1b[K")
	}
	fmt.Fprintf(p.w, format, args...)
}

// Stop clears the spinner line.
func (p *Progress) Stop() {
	if p.spin && p.stopCh != nil {
		close(p.stopCh)
		<-p.done
		p.stopCh = nil
	}
}
