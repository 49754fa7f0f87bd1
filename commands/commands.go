// Package commands wires the cobra command tree and maps errors to exit
// codes. Cobra never reaches below this folder.
package commands

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"regexp"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/socks-dev/socks/commands/cmdutil"
	"github.com/socks-dev/socks/commands/root"
	"github.com/socks-dev/socks/config"
	"github.com/socks-dev/socks/internal/build"
	"github.com/socks-dev/socks/internal/text"
	"github.com/socks-dev/socks/iostreams"
	"github.com/socks-dev/socks/lambdafn"
)

// Main runs the CLI with the process's arguments and environment and returns
// the exit code.
func Main(info build.Info) int {
	if lambdafn.Detect(os.Getenv, os.Args[1:]) {
		// Started by Lambda as bootstrap: serve events, not a command line.
		return lambdafn.Main(context.Background(), os.Getenv, info, os.Stderr)
	}
	f := &cmdutil.Factory{
		IOStreams: iostreams.System(os.Getenv),
		Getenv:    os.Getenv,
		Now:       time.Now,
		Build:     info,
		Stopping:  &cmdutil.Stopping{},
	}
	// A closed terminal window sends SIGHUP: it ends a command as Ctrl-C
	// does (listen revokes the chatter ID it issued, serve closes its
	// connections), unless the command runs under nohup, which ignores it.
	sigs := []os.Signal{os.Interrupt, syscall.SIGTERM}
	if !signal.Ignored(syscall.SIGHUP) {
		sigs = append(sigs, syscall.SIGHUP)
	}
	caught := make(chan os.Signal, 4)
	signal.Notify(caught, sigs...)
	defer signal.Stop(caught)
	// Without this a write to a closed stdout (`socks listen | head -1`)
	// kills the process on the spot: no close frame, no revoking the
	// chatter ID listen issued. Caught, the write fails with EPIPE, which
	// the command returns and exitCode maps to ExitClosedPipe.
	signal.Notify(make(chan os.Signal, 1), syscall.SIGPIPE)
	return interruptible(caught, f, func(ctx context.Context) int { return Run(ctx, f, os.Args[1:]) })
}

// signalBurst is how long after the first signal others count as part
// of it: one press of Ctrl-C. A process manager for a local stack
// (foreman, honcho, overmind, concurrently, a shell's `trap 'kill -INT
// $child' INT`) passes the signal on, or sends SIGTERM, when Ctrl-C is
// pressed once, while the terminal has sent SIGINT to the whole process
// group: socks gets two signals within milliseconds (tens, for a busy
// Ruby or Python manager on a loaded laptop). A person who presses again
// to stop at once does it on reading the note the first press brought up,
// which takes longer than half a second; one who hammers Ctrl-C presses
// more than twice, and a press after the window stops at once.
const signalBurst = 500 * time.Millisecond

// interruptible runs run with a context that ends at the first signal
// from caught, and returns its exit code. The command then finishes what
// f.Stopping records (on a terminal, it says what, and that Ctrl-C again
// stops at once). A second SIGINT or SIGTERM does: interruptible returns
// 128 + its number at once, saying what is left behind, and main's
// os.Exit ends run where it is. Signals within signalBurst of the first,
// by f.Now (nil: time.Now) as each arrives, are part of it: one press,
// passed on. A SIGHUP never stops at once: a terminal closed after Ctrl-C
// is no one asking to cut the cleanup short.
//
// Nothing may be left broken by that: the state file is SQLite, whose
// transactions survive the process ending anywhere (a kill -9 does no
// worse), and the locks socks holds are dropped by the system.
func interruptible(caught <-chan os.Signal, f *cmdutil.Factory, run func(context.Context) int) int {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	now := f.Now
	if now == nil {
		now = time.Now
	}
	done := make(chan int, 1)
	go func() { done <- run(ctx) }()
	// Each signal is timed as it arrives, not once the loop below takes
	// it: the note of the first may wait on a terminal whose output is
	// stalled (a flood over a slow ssh link, Ctrl-S), and the signal a
	// process manager passed on meanwhile is still part of that press.
	type timedSignal struct {
		sig os.Signal
		at  time.Time
	}
	timed := make(chan timedSignal, cap(caught))
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		for {
			select {
			case sig := <-caught:
				select {
				case timed <- timedSignal{sig, now()}:
				case <-stop:
					return
				}
			case <-stop:
				return
			}
		}
	}()
	interrupted := false
	var first time.Time
	for {
		select {
		case code := <-done:
			return code
		case ts := <-timed:
			sig := ts.sig
			if !interrupted {
				interrupted = true
				first = ts.at
				// What is pending is read before the cancel: work that
				// ends the moment it is cancelled would otherwise be gone
				// from the list before the note, which then said nothing.
				pending := f.Stopping.Pending()
				cancel()
				if f.IOStreams.IsStderrTTY() {
					sayStopping(f.IOStreams.ErrOut, overLine(f.IOStreams, f.JSONOut()), sig, pending)
				}
				continue
			}
			if sig == syscall.SIGHUP || ts.at.Sub(first) < signalBurst {
				continue
			}
			select {
			case code := <-done:
				// It ended meanwhile: its own exit code is the truer one.
				return code
			default:
			}
			return stopAtOnce(f.IOStreams.ErrOut, overLine(f.IOStreams, f.JSONOut()), sig, f.Stopping.Pending())
		}
	}
}

// overLine starts a line of Main's own on a terminal's stderr: over a
// spinner's line (prune-stale, bench), which has no newline and is drawn
// again below, as cmdutil.Progress.Printf writes, and over the "^C" the
// terminal echoed. A dumb terminal (TERM=dumb, or a Windows console that
// cannot act on escape sequences: iostreams.Dumb) would show the sequence
// that clears the line as junk, and draws no spinner: there the line
// only starts again ("\r", over the "^C"). So it does for a command
// given --json (jsonOut, Factory.JSONOut): it draws no spinner either,
// and its stderr carries no escape code (docs/json.md). Off a terminal
// it is "".
func overLine(ios *iostreams.IOStreams, jsonOut bool) string {
	switch {
	case !ios.IsStderrTTY():
		return ""
	case ios.Dumb(), jsonOut:
		return "\r"
	}
	return "\r\x1b[K"
}

// sayStopping tells the person who pressed Ctrl-C (or sent sig) on a
// terminal what the command still finishes, and how to stop it at once,
// on a line that starts with over (overLine). It says nothing when the
// command finishes nothing: it ends at once.
func sayStopping(w io.Writer, over string, sig os.Signal, pending []cmdutil.Work) {
	if len(pending) == 0 {
		return
	}
	what := make([]string, len(pending))
	for i, p := range pending {
		what[i] = p.What
	}
	again := signalName(sig)
	if sig == syscall.SIGHUP {
		// A second SIGHUP does not stop at once; Ctrl-C does.
		again = "Ctrl-C"
	}
	fmt.Fprintf(w, over+"socks: stopping: %s (%s again stops at once)\n", text.Sanitize(strings.Join(what, "; "), false), again)
}

// stopAtOnce says that the command was stopped at once by sig, a second
// signal, and what that leaves behind, and returns the exit code: 128 +
// the signal's number, as a shell reports a command a signal ended. On a
// terminal it is a line of its own, starting with over (overLine).
func stopAtOnce(w io.Writer, over string, sig os.Signal, pending []cmdutil.Work) int {
	msg := "socks: stopped at once by a second " + signalName(sig)
	var left []string
	for _, p := range pending {
		if p.Left != "" {
			left = append(left, p.Left)
		}
	}
	if len(left) > 0 {
		msg += ": " + strings.Join(left, "; ")
	}
	fmt.Fprintln(w, over+text.Sanitize(msg, false))
	if sig == syscall.SIGTERM {
		return cmdutil.ExitTerminated
	}
	return cmdutil.ExitInterrupted
}

// signalName names sig as a person sends it.
func signalName(sig os.Signal) string {
	switch sig {
	case os.Interrupt:
		return "Ctrl-C"
	case syscall.SIGTERM:
		return "SIGTERM"
	}
	return sig.String()
}

// Run executes args against f and returns the exit code. Tests call it.
func Run(ctx context.Context, f *cmdutil.Factory, args []string) int {
	cmd := root.NewCmdRoot(f)
	cmd.SetArgs(args)
	err := cmd.ExecuteContext(ctx)
	if cerr := f.Close(); cerr != nil && err == nil {
		err = cerr
	}
	return exitCode(ctx, f, cmd, args, err)
}

func exitCode(ctx context.Context, f *cmdutil.Factory, cmd *cobra.Command, args []string, err error) int {
	if err == nil {
		return cmdutil.ExitOK
	}
	var closed *iostreams.ClosedPipeError
	if errors.As(err, &closed) {
		// Nobody reads what would be said, and `| head -1` is no error.
		return cmdutil.ExitClosedPipe
	}
	errOut := f.IOStreams.ErrOut
	// After Ctrl-C (or SIGTERM) what failed most likely failed because of
	// it, whether or not its error says so (an interrupted go build, an
	// AWS call cut short): the exit code says interrupted, and the error,
	// when it is not just the cancellation, is kept after it.
	if errors.Is(err, context.Canceled) || ctx.Err() != nil {
		msg := "socks: interrupted"
		if !errors.Is(err, context.Canceled) {
			msg += ": " + oneLine(err)
		}
		fmt.Fprintln(errOut, msg)
		return cmdutil.ExitInterrupted
	}
	var exit *cmdutil.ExitCodeError
	if errors.As(err, &exit) {
		if exit.Err != nil {
			fmt.Fprintln(errOut, "socks: "+oneLine(exit.Err))
		}
		return exit.Code
	}
	var noState *cmdutil.NoStateError
	if errors.As(err, &noState) {
		// Nothing to show, redrive or prune there: most likely a
		// mistyped --state-dir, so no usage hint.
		fmt.Fprintln(errOut, "socks: "+oneLine(err))
		return cmdutil.ExitNotFound
	}
	if cmdutil.IsUsage(err) || isCobraUsage(err) {
		fmt.Fprintln(errOut, "socks: "+oneLine(cobraWords(err)))
		// No flag of the command fixes a broken config file or a value
		// of an environment variable socks cannot take: the error names
		// the file or the variable and what is wrong in it.
		var fileErr *config.FileError
		var envErr *config.EnvError
		if !errors.As(err, &fileErr) && !errors.As(err, &envErr) {
			fmt.Fprintf(errOut, "Run '%s --help' for usage.\n", commandPath(cmd, args))
		}
		return cmdutil.ExitUsage
	}
	fmt.Fprintln(errOut, "socks: "+oneLine(err))
	return cmdutil.ExitError
}

// commandPath names the command that failed, for the usage hint.
func commandPath(root *cobra.Command, args []string) string {
	c, _, err := root.Find(args)
	if err != nil || c == nil {
		return "socks"
	}
	return c.CommandPath()
}

// isCobraUsage recognises cobra's own usage errors (unknown flag or
// command, bad arguments), which it returns as plain errors.
func isCobraUsage(err error) bool {
	// Flag and argument errors are wrapped as *FlagError by root; cobra
	// reports an unknown subcommand (and its own required/group flag
	// checks) as plain errors, so those are recognised by their text.
	msg := err.Error()
	for _, p := range []string{"unknown command ", "required flag(s) ", "if any flags in the group ", "at least one of the flags in the group "} {
		if strings.HasPrefix(msg, p) {
			return true
		}
	}
	return false
}

// cobraWords words cobra's own usage errors as socks words its
// refusals: flags named with their dashes, and what to give instead.
//   - The root's "unknown command", whose suggestions stand on lines of
//     their own ("...\n\nDid you mean this?\n\tpublish\n", shown on one
//     line as "  Did you mean this? \tpublish"), as root words a noun's
//     mistyped verb: ": did you mean publish?", several as a choice
//     ("provision, prune-stale or publish").
//   - `required flag(s) "geek", "topic" not set`: "--geek and --topic
//     are required".
//   - "if any flags in the group [message body body-file] are set none
//     of the others can be; [body message] were all set": "--message and
//     --body do not go together: give only one of --message, --body or
//     --body-file".
//   - "at least one of the flags in the group [id id-file all] is
//     required": "give one of --id, --id-file or --all".
//
// A message that does not read exactly so (another error, or a newer
// cobra's wording) is returned as it is, never half reworded.
func cobraWords(err error) error {
	msg := err.Error()
	for _, words := range []func(string) (string, bool){cobraUnknownCommand, cobraRequired, cobraExclusive, cobraOneRequired} {
		if s, ok := words(msg); ok {
			return errors.New(s)
		}
	}
	return err
}

func cobraUnknownCommand(msg string) (string, bool) {
	head, list, ok := strings.Cut(msg, "\n\nDid you mean this?\n")
	if !ok || !strings.HasPrefix(head, "unknown command ") {
		return "", false
	}
	return head + ": did you mean " + text.Or(strings.Fields(list)) + "?", true
}

// cobra's messages, as v1.10.2 writes them (ValidateRequiredFlags,
// ValidateFlagGroups).
var (
	cobraRequiredMsg    = regexp.MustCompile(`^required flag\(s\) "(.*)" not set$`)
	cobraExclusiveMsg   = regexp.MustCompile(`^if any flags in the group \[([^\]]*)\] are set none of the others can be; \[([^\]]*)\] were all set$`)
	cobraOneRequiredMsg = regexp.MustCompile(`^at least one of the flags in the group \[([^\]]*)\] is required$`)
)

func cobraRequired(msg string) (string, bool) {
	names, _, ok := cobraFlags(cobraRequiredMsg, msg, `", "`)
	if !ok {
		return "", false
	}
	if len(names) == 1 {
		return names[0] + " is required", true
	}
	return text.And(names) + " are required", true
}

func cobraExclusive(msg string) (string, bool) {
	group, m, ok := cobraFlags(cobraExclusiveMsg, msg, " ")
	if !ok {
		return "", false
	}
	given, ok := flagNames(strings.Split(m[2], " "))
	if !ok || len(given) < 2 {
		return "", false
	}
	// Named in the group's order, as the choice is: each given flag
	// once, and one of the group.
	count := map[string]int{}
	for _, f := range given {
		count[f]++
	}
	var inOrder []string
	for _, f := range group {
		switch count[f] {
		case 0:
		case 1:
			inOrder = append(inOrder, f)
			count[f] = 0
		default:
			return "", false
		}
	}
	if len(inOrder) != len(given) {
		return "", false
	}
	return text.And(inOrder) + " do not go together: give only one of " + text.Or(group), true
}

func cobraOneRequired(msg string) (string, bool) {
	group, _, ok := cobraFlags(cobraOneRequiredMsg, msg, " ")
	if !ok {
		return "", false
	}
	return "give one of " + text.Or(group), true
}

// cobraFlags matches msg against one of cobra's messages (re) and returns
// the flags of its first group, split at sep (flagNames), with the whole
// match for the groups after it; ok is false when msg is not that message
// or a name in the group is not a flag's.
func cobraFlags(re *regexp.Regexp, msg, sep string) (flags, match []string, ok bool) {
	match = re.FindStringSubmatch(msg)
	if match == nil {
		return nil, nil, false
	}
	flags, ok = flagNames(strings.Split(match[1], sep))
	return flags, match, ok
}

// flagNames are names as "--name", if every one is a flag's name as
// socks spells them (lower-case letters, digits and dashes).
func flagNames(names []string) ([]string, bool) {
	out := make([]string, len(names))
	for i, n := range names {
		if !flagName.MatchString(n) {
			return nil, false
		}
		out[i] = "--" + n
	}
	return out, true
}

var flagName = regexp.MustCompile(`^[a-z0-9][a-z0-9-]*$`)

// oneLine is err's message on one line, for people: what it quotes from
// outside (an ID given, an AWS service's words) may not drive the
// terminal, so what a terminal would act on is shown escaped
// (text.Sanitize).
func oneLine(err error) string {
	return text.Sanitize(strings.ReplaceAll(strings.TrimSpace(err.Error()), "\n", " "), false)
}
