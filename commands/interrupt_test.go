package commands

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/spf13/cobra"

	"github.com/socks-dev/socks/commands/cmdutil"
	"github.com/socks-dev/socks/commands/root"
	"github.com/socks-dev/socks/iostreams"
)

// stuckCommand is a command that, once its context ends, finishes work
// that never ends (until the test lets it go): what a second Ctrl-C is
// for. It records its work in f.Stopping while it runs.
// started is closed once the work is recorded.
func stuckCommand(f *cmdutil.Factory, started, interrupted chan<- struct{}, release <-chan struct{}) func(context.Context) int {
	return func(ctx context.Context) int {
		done := f.Stopping.Add(cmdutil.Work{What: "revoking the chatter ID listen issued", Left: "the chatter ID is not revoked: it expires at noon"})
		defer done()
		close(started)
		<-ctx.Done()
		close(interrupted)
		<-release
		return cmdutil.ExitOK
	}
}

// pressedTwice runs a command through interruptible that does first,
// then (if first returns 0) has work to finish once Ctrl-C comes
// (stuckCommand); presses Ctrl-C, and again a burst later on clock, and
// returns the exit code.
func pressedTwice(f *cmdutil.Factory, clock *testClock, first func(context.Context) int) int {
	caught := make(chan os.Signal)
	started, interrupted, release := make(chan struct{}), make(chan struct{}), make(chan struct{})
	defer close(release)
	codes := make(chan int, 1)
	stuck := stuckCommand(f, started, interrupted, release)
	go func() {
		codes <- interruptible(caught, f, func(ctx context.Context) int {
			if code := first(ctx); code != cmdutil.ExitOK {
				return code
			}
			return stuck(ctx)
		})
	}()
	select {
	case <-started:
	case code := <-codes:
		return code
	}
	caught <- os.Interrupt
	<-interrupted
	clock.advance(signalBurst)
	caught <- os.Interrupt
	return <-codes
}

// testClock is a clock the test moves on by hand, as f.Now.
type testClock struct {
	mu  sync.Mutex
	now time.Time
}

func newTestClock() *testClock {
	return &testClock{now: time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)}
}

func (c *testClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *testClock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

func TestASecondSignalStopsAtOnceWithItsExitCodeAndSaysWhatIsLeft(t *testing.T) {
	for _, tc := range []struct {
		name         string
		first, again os.Signal
		code         int
		says         string
	}{
		{"Ctrl-C twice exits 130", os.Interrupt, os.Interrupt, 130, "second Ctrl-C"},
		{"SIGTERM twice exits 143", syscall.SIGTERM, syscall.SIGTERM, 143, "second SIGTERM"},
		{"Ctrl-C after SIGTERM exits 130", syscall.SIGTERM, os.Interrupt, 130, "second Ctrl-C"},
		{"SIGTERM after a hangup exits 143", syscall.SIGHUP, syscall.SIGTERM, 143, "second SIGTERM"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ios, _, _, stderr := iostreams.Test()
			clock := newTestClock()
			f := &cmdutil.Factory{IOStreams: ios, Now: clock.Now, Stopping: &cmdutil.Stopping{}}
			caught := make(chan os.Signal, 2)
			started, interrupted, release := make(chan struct{}), make(chan struct{}), make(chan struct{})
			defer close(release)
			codes := make(chan int, 1)
			go func() { codes <- interruptible(caught, f, stuckCommand(f, started, interrupted, release)) }()
			<-started
			caught <- tc.first
			<-interrupted
			// A press of its own: as long after the first as the window
			// of one burst (signalBurst).
			clock.advance(signalBurst)
			caught <- tc.again
			if code := <-codes; code != tc.code {
				t.Errorf("exit %d; want %d", code, tc.code)
			}
			want := "socks: stopped at once by a " + tc.says + ": the chatter ID is not revoked: it expires at noon\n"
			if got := stderr.String(); got != want {
				t.Errorf("stderr %q; want %q (and, off a terminal, no note on the first signal)", got, want)
			}
		})
	}
}

// TestSignalsInOneBurstCountAsOnePress: a process manager (foreman,
// honcho, overmind, concurrently, a shell's `trap 'kill -INT $child' INT`)
// passes on, or adds, a signal when Ctrl-C is pressed once, while the
// terminal sent SIGINT to the whole process group: two signals, within
// milliseconds, from one press. They used to stop socks at once (no close
// frames, no revoking); now a signal within signalBurst of the first is
// part of it and the command finishes. A signal after that (a third one,
// a press of its own) still stops at once, with its own exit code.
func TestSignalsInOneBurstCountAsOnePress(t *testing.T) {
	for _, tc := range []struct {
		name  string
		burst []os.Signal // the first, then the others 1 ms apart
		after os.Signal   // sent signalBurst after the first; nil: none
		code  int
		says  string
	}{
		{"Ctrl-C and the SIGINT a manager passes on", []os.Signal{os.Interrupt, os.Interrupt}, nil, 0, ""},
		{"Ctrl-C and the SIGTERM a manager sends", []os.Signal{os.Interrupt, syscall.SIGTERM}, nil, 0, ""},
		{"a closed terminal and the SIGTERM a manager sends", []os.Signal{syscall.SIGHUP, syscall.SIGTERM}, nil, 0, ""},
		{"three in a burst", []os.Signal{os.Interrupt, os.Interrupt, syscall.SIGTERM}, nil, 0, ""},
		{"a burst, then Ctrl-C again", []os.Signal{os.Interrupt, syscall.SIGTERM}, os.Interrupt, 130, "second Ctrl-C"},
		{"a burst, then SIGTERM", []os.Signal{os.Interrupt, os.Interrupt}, syscall.SIGTERM, 143, "second SIGTERM"},
		{"a burst, then a hangup", []os.Signal{os.Interrupt, syscall.SIGTERM}, syscall.SIGHUP, 0, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ios, _, _, stderr := iostreams.Test()
			clock := newTestClock()
			f := &cmdutil.Factory{IOStreams: ios, Now: clock.Now, Stopping: &cmdutil.Stopping{}}
			// Unbuffered: each send returns once interruptible has taken the one before.
			caught := make(chan os.Signal)
			started, interrupted, release := make(chan struct{}), make(chan struct{}), make(chan struct{})
			codes := make(chan int, 1)
			go func() { codes <- interruptible(caught, f, stuckCommand(f, started, interrupted, release)) }()
			<-started
			caught <- tc.burst[0]
			<-interrupted
			// sendOrEnded sends sig, or says interruptible returned (it
			// no longer takes signals) with its exit code.
			sendOrEnded := func(sig os.Signal) (code int, ended bool) {
				select {
				case caught <- sig:
					return 0, false
				case code := <-codes:
					return code, true
				}
			}
			for _, sig := range tc.burst[1:] {
				clock.advance(time.Millisecond)
				if code, ended := sendOrEnded(sig); ended {
					t.Fatalf("ended with exit %d before %v, in the burst: stderr %q", code, sig, stderr)
				}
			}
			// Up to the end of the window, still one burst.
			clock.advance(signalBurst - time.Duration(len(tc.burst))*time.Millisecond)
			if code, ended := sendOrEnded(syscall.SIGHUP); ended {
				t.Fatalf("a signal of the burst stopped it at once: exit %d, stderr %q", code, stderr)
			}
			if tc.after != nil {
				clock.advance(time.Millisecond)
				if code, ended := sendOrEnded(tc.after); ended {
					t.Fatalf("ended with exit %d before %v, after the burst: stderr %q", code, tc.after, stderr)
				}
			}
			if tc.code == 0 {
				// Still running: it takes a hangup, which never stops
				// at once, so the signals before it did not either.
				if code, ended := sendOrEnded(syscall.SIGHUP); ended {
					t.Fatalf("stopped at once: exit %d, stderr %q; want the command to finish", code, stderr)
				}
				close(release)
				if code := <-codes; code != cmdutil.ExitOK || stderr.Len() != 0 {
					t.Errorf("exit %d, stderr %q; want the command's own 0, and nothing said off a terminal", code, stderr)
				}
				return
			}
			defer close(release)
			if code := <-codes; code != tc.code {
				t.Errorf("exit %d; want %d", code, tc.code)
			}
			want := "socks: stopped at once by a " + tc.says + ": the chatter ID is not revoked: it expires at noon\n"
			if got := stderr.String(); got != want {
				t.Errorf("stderr %q; want %q", got, want)
			}
		})
	}
}

// stalledWriter is a terminal whose output is stalled (a flood of output
// over a slow ssh link, Ctrl-S): a write waits until release is closed,
// after telling writing.
type stalledWriter struct {
	writing chan<- struct{}
	release <-chan struct{}
	mu      sync.Mutex
	got     strings.Builder
}

func (w *stalledWriter) Write(p []byte) (int, error) {
	w.writing <- struct{}{}
	<-w.release
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.got.Write(p)
}

func (w *stalledWriter) text() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.got.String()
}

// TestABurstIsTimedAsItArrivesNotOnceTheNoteIsWritten: the first signal's
// note goes to a terminal whose output may be stalled; the signal a
// process manager passed on a millisecond later was timed once the note
// was written, which could be seconds later, and so taken for a press of
// its own: stopped at once. Each signal is timed as it arrives.
func TestABurstIsTimedAsItArrivesNotOnceTheNoteIsWritten(t *testing.T) {
	ios, _, _, _ := iostreams.Test()
	ios.SetTTY(false, false, true)
	writing, unstall := make(chan struct{}, 4), make(chan struct{})
	w := &stalledWriter{writing: writing, release: unstall}
	ios.ErrOut = w
	clock := newTestClock()
	// timed tells each time the clock is read.
	timed := make(chan struct{}, 8)
	f := &cmdutil.Factory{IOStreams: ios, Now: func() time.Time { timed <- struct{}{}; return clock.Now() }, Stopping: &cmdutil.Stopping{}}
	caught := make(chan os.Signal, 4) // as Main's
	started, interrupted, release := make(chan struct{}), make(chan struct{}), make(chan struct{})
	unstallAll := sync.OnceFunc(func() { close(unstall) })
	t.Cleanup(func() {
		unstallAll()
		close(release)
	})
	codes := make(chan int, 1)
	go func() { codes <- interruptible(caught, f, stuckCommand(f, started, interrupted, release)) }()
	<-started
	caught <- os.Interrupt
	<-timed
	<-writing // the note, stalled
	clock.advance(time.Millisecond)
	caught <- syscall.SIGTERM
	select {
	case <-timed:
	case <-time.After(10 * time.Second):
		t.Fatal("the SIGTERM that came a millisecond after Ctrl-C was not timed while the note was stalled: it is timed once the note is written")
	}
	// The terminal takes its time to show the note.
	clock.advance(3 * time.Second)
	unstallAll()
	<-interrupted
	release <- struct{}{}
	if code := <-codes; code != cmdutil.ExitOK || strings.Contains(w.text(), "stopped at once") {
		t.Errorf("exit %d, stderr %q; want the command's own 0: Ctrl-C and the SIGTERM passed on are one press", code, w.text())
	}
}

// TestOnATerminalTheFirstCtrlCSaysWhatIsFinished: once, what is finished
// and how to stop at once; a command with nothing to finish says nothing.
func TestOnATerminalTheFirstCtrlCSaysWhatIsFinished(t *testing.T) {
	ios, _, _, stderr := iostreams.Test()
	ios.SetTTY(false, false, true)
	f := &cmdutil.Factory{IOStreams: ios, Stopping: &cmdutil.Stopping{}}
	caught := make(chan os.Signal, 2)
	started, interrupted, release := make(chan struct{}), make(chan struct{}), make(chan struct{})
	codes := make(chan int, 1)
	go func() { codes <- interruptible(caught, f, stuckCommand(f, started, interrupted, release)) }()
	<-started
	caught <- os.Interrupt
	<-interrupted
	close(release)
	if code := <-codes; code != cmdutil.ExitOK {
		t.Errorf("exit %d; want the command's own 0 when it finishes", code)
	}
	want := "\r\x1b[Ksocks: stopping: revoking the chatter ID listen issued (Ctrl-C again stops at once)\n"
	if got := stderr.String(); got != want {
		t.Errorf("stderr %q; want %q", got, want)
	}

	stderr.Reset()
	caught = make(chan os.Signal, 2)
	quick := func(ctx context.Context) int { <-ctx.Done(); return cmdutil.ExitInterrupted }
	caught <- os.Interrupt
	if code := interruptible(caught, f, quick); code != cmdutil.ExitInterrupted || stderr.Len() != 0 {
		t.Errorf("a command with nothing to finish: exit %d, stderr %q; want 130 and nothing said", code, stderr)
	}
}

// TestAHangupNeverStopsTheCleanupShort: a terminal closed after Ctrl-C
// (SIGHUP) is no one asking to stop at once; the command finishes.
func TestAHangupNeverStopsTheCleanupShort(t *testing.T) {
	ios, _, _, stderr := iostreams.Test()
	clock := newTestClock()
	f := &cmdutil.Factory{IOStreams: ios, Now: clock.Now, Stopping: &cmdutil.Stopping{}}
	// Unbuffered: each send returns once interruptible has taken the one before.
	caught := make(chan os.Signal)
	started, interrupted, release := make(chan struct{}), make(chan struct{}), make(chan struct{})
	codes := make(chan int, 1)
	go func() { codes <- interruptible(caught, f, stuckCommand(f, started, interrupted, release)) }()
	<-started
	caught <- os.Interrupt
	<-interrupted
	clock.advance(signalBurst)
	caught <- syscall.SIGHUP
	caught <- syscall.SIGHUP
	close(release)
	if code := <-codes; code != cmdutil.ExitOK || strings.Contains(stderr.String(), "stopped at once") {
		t.Errorf("exit %d, stderr %q; want the command to finish (0)", code, stderr)
	}
}

// TestOnATerminalWhatMainSaysIsALineOfItsOwnOverASpinner: prune-stale and
// bench draw a spinner on stderr (a line with no newline, redrawn in
// place); the first Ctrl-C's note and the second's were written at its
// end ("⠋ pruning… 3 records checked (0.4s)^Csocks: stopping: …"). Like
// Progress.Printf, they clear the line first; off a terminal, the line
// is as it was.
func TestOnATerminalWhatMainSaysIsALineOfItsOwnOverASpinner(t *testing.T) {
	const spinner = "⠋ pruning… 3 records checked (0.4s)"
	for _, term := range []bool{true, false} {
		ios, _, _, stderr := iostreams.Test()
		ios.SetTTY(false, term, term)
		clock := newTestClock()
		f := &cmdutil.Factory{IOStreams: ios, Now: clock.Now, Stopping: &cmdutil.Stopping{}}
		code := pressedTwice(f, clock, func(context.Context) int {
			stderr.WriteString(spinner)
			return cmdutil.ExitOK
		})
		want := spinner + "socks: stopped at once by a second Ctrl-C: the chatter ID is not revoked: it expires at noon\n"
		if term {
			want = spinner + "\r\x1b[Ksocks: stopping: revoking the chatter ID listen issued (Ctrl-C again stops at once)\n" +
				"\r\x1b[Ksocks: stopped at once by a second Ctrl-C: the chatter ID is not revoked: it expires at noon\n"
		}
		if got := stderr.String(); code != cmdutil.ExitInterrupted || got != want {
			t.Errorf("stderr a terminal: %v: exit %d, stderr %q; want 130 and %q", term, code, got, want)
		}
	}
}

// TestACommandThatPanicsStillCrashesWithItsTrace: the command runs off
// the main goroutine now; a panic in it still ends the process as an
// unrecovered panic does (exit 2, "panic:" and the goroutine's trace on
// stderr), and the deferred work of the command (revoking, closing) runs
// first, as before. The panic is made in a copy of this test binary.
func TestACommandThatPanicsStillCrashesWithItsTrace(t *testing.T) {
	if os.Getenv("SOCKS_TEST_PANIC") == "1" {
		ios, _, _, _ := iostreams.Test()
		f := &cmdutil.Factory{IOStreams: ios, Stopping: &cmdutil.Stopping{}}
		os.Exit(interruptible(make(chan os.Signal), f, func(context.Context) int {
			defer os.Stderr.WriteString("deferred work ran\n")
			panic("a bug in a command")
		}))
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestACommandThatPanicsStillCrashesWithItsTrace$")
	cmd.Env = append(os.Environ(), "SOCKS_TEST_PANIC=1")
	var stderr strings.Builder
	cmd.Stderr = &stderr
	err := cmd.Run()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 2 {
		t.Fatalf("a panicking command: %v; want exit 2\n%s", err, stderr.String())
	}
	for _, want := range []string{"deferred work ran\n", "panic: a bug in a command", "goroutine "} {
		if !strings.Contains(stderr.String(), want) {
			t.Errorf("stderr does not say %q:\n%s", want, stderr.String())
		}
	}
}

// TestOnADumbTerminalMainWritesNoEscapeSequence: on TERM=dumb (an
// editor's shell buffer) the "\r\x1b[K" written before the first Ctrl-C's
// note and the second's showed as junk. There no spinner is drawn, and
// the note's line starts with "\r" alone.
func TestOnADumbTerminalMainWritesNoEscapeSequence(t *testing.T) {
	ios, _, _, stderr := iostreams.Test()
	ios.SetTTY(false, true, true)
	ios.SetDumb(true)
	clock := newTestClock()
	f := &cmdutil.Factory{IOStreams: ios, Now: clock.Now, Stopping: &cmdutil.Stopping{}}
	caught := make(chan os.Signal)
	started, interrupted, release := make(chan struct{}), make(chan struct{}), make(chan struct{})
	codes := make(chan int, 1)
	go func() { codes <- interruptible(caught, f, stuckCommand(f, started, interrupted, release)) }()
	<-started
	caught <- os.Interrupt
	<-interrupted
	clock.advance(signalBurst)
	caught <- os.Interrupt
	code := <-codes
	close(release)
	want := "\rsocks: stopping: revoking the chatter ID listen issued (Ctrl-C again stops at once)\n" +
		"\rsocks: stopped at once by a second Ctrl-C: the chatter ID is not revoked: it expires at noon\n"
	if got := stderr.String(); code != cmdutil.ExitInterrupted || got != want {
		t.Errorf("exit %d, stderr %q; want 130 and %q", code, got, want)
	}
}

// TestWithJSONMainsNotesOnATerminalHaveNoEscapeSequence: the first
// Ctrl-C's note and the second's started with "\r\x1b[K" on a terminal
// stderr also when the command was given --json, which keeps escape codes
// off stderr (docs/json.md): the signal handler did not know the flag.
// Root records a command's --json in the Factory as it runs it, and the
// notes then only start the line again ("\r", over the "^C" the terminal
// echoed): with --json no spinner is drawn, so there is no line to clear.
func TestWithJSONMainsNotesOnATerminalHaveNoEscapeSequence(t *testing.T) {
	const notes = "socks: stopping: revoking the chatter ID listen issued (Ctrl-C again stops at once)\n" +
		"%ssocks: stopped at once by a second Ctrl-C: the chatter ID is not revoked: it expires at noon\n"
	for _, tc := range []struct {
		name string
		args []string
		over string
	}{
		{"a command given --json", []string{"version", "--json"}, "\r"},
		{"a command given --json=false", []string{"version", "--json=false"}, "\r\x1b[K"},
		{"a command without --json", []string{"version"}, "\r\x1b[K"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ios, _, _, stderr := iostreams.Test()
			ios.SetTTY(false, true, true)
			clock := newTestClock()
			f := &cmdutil.Factory{IOStreams: ios, Now: clock.Now, Stopping: &cmdutil.Stopping{}, Getenv: func(string) string { return "" }}
			// The command runs as Main runs it (root parses its flags).
			code := pressedTwice(f, clock, func(ctx context.Context) int { return Run(ctx, f, tc.args) })
			if code != cmdutil.ExitInterrupted {
				t.Fatalf("exit %d; want 130\nstderr %q", code, stderr)
			}
			want := tc.over + fmt.Sprintf(notes, tc.over)
			if got := stderr.String(); got != want {
				t.Errorf("stderr %q; want %q", got, want)
			}
		})
	}
}

// TestEveryCommandGoesThroughRootsPersistentPreRun: cobra runs only the
// nearest PersistentPreRun(E), so a command with one of its own would
// skip root's, which records --json for Main's notes (and refuses empty
// global flags).
func TestEveryCommandGoesThroughRootsPersistentPreRun(t *testing.T) {
	ios, _, _, _ := iostreams.Test()
	cmd := root.NewCmdRoot(&cmdutil.Factory{IOStreams: ios})
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		for _, s := range c.Commands() {
			if s.PersistentPreRun != nil || s.PersistentPreRunE != nil {
				t.Errorf("%s has a PersistentPreRun of its own: root's is not run for it", s.CommandPath())
			}
			walk(s)
		}
	}
	walk(cmd)
}
