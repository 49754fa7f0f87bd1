package cmdutil

import (
	"errors"
	"fmt"

	"github.com/socks-dev/socks/pubsub"
)

// Exit codes, mapped once in commands.Main and documented in `socks --help`.
const (
	ExitOK = 0
	// ExitError is any failure.
	ExitError = 1
	// ExitUsage is a bad flag, argument or input value.
	ExitUsage = 2
	// ExitNotFound means a lookup of one named thing found nothing
	// (`socks dlq show ID`, a revoke or redrive that matched nothing); an
	// empty list (`socks subs list --geek X`) is ExitOK.
	ExitNotFound = 3
	// ExitTimeout means a wait ran out (listen --timeout, publish --wait).
	ExitTimeout = 4
	// ExitRefused means the gateway refused the connection (401/403).
	ExitRefused = 5
	// ExitInterrupted is the conventional code after SIGINT where the
	// command was cut short (a clean Ctrl-C in listen exits 0 instead).
	ExitInterrupted = 130
	// ExitTerminated is 128 + SIGTERM: a second SIGTERM, after a first
	// SIGTERM or Ctrl-C, stopped the command at once (a second Ctrl-C
	// exits ExitInterrupted).
	ExitTerminated = 143
	// ExitClosedPipe is 128 + SIGPIPE: the reader of standard output went
	// away (`| head -1`). The command stopped as after Ctrl-C and says
	// nothing, as a shell reports a pipeline stage that SIGPIPE ended.
	ExitClosedPipe = 141
)

// FlagError is a usage mistake: bad flags, arguments or input values.
type FlagError struct{ Err error }

func (e *FlagError) Error() string { return e.Err.Error() }
func (e *FlagError) Unwrap() error { return e.Err }

// FlagErrorf builds a *FlagError.
func FlagErrorf(format string, args ...any) error {
	return &FlagError{Err: fmt.Errorf(format, args...)}
}

// ExitCodeError carries a specific exit code; Err may be nil when the command
// already said everything it had to say.
type ExitCodeError struct {
	Code int
	Err  error
}

func (e *ExitCodeError) Error() string {
	if e.Err == nil {
		return fmt.Sprintf("exit status %d", e.Code)
	}
	return e.Err.Error()
}
func (e *ExitCodeError) Unwrap() error { return e.Err }

// Exit returns an error that makes Main exit with code, printing err if set.
func Exit(code int, err error) error { return &ExitCodeError{Code: code, Err: err} }

// IsUsage reports whether err ends the command with ExitUsage, as
// commands.Main maps it: a bad flag, argument or input value (a
// *FlagError, a value pubsub finds invalid), unless a code of its own
// (*ExitCodeError, *NoStateError) comes first. Cobra's own usage errors,
// which come before a command runs, Main recognises besides.
func IsUsage(err error) bool {
	if exit, ok := errors.AsType[*ExitCodeError](err); ok {
		return exit.Code == ExitUsage
	}
	if _, ok := errors.AsType[*NoStateError](err); ok {
		return false
	}
	_, ok := errors.AsType[*FlagError](err)
	return ok || pubsub.IsInvalid(err)
}
