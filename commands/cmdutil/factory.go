// Package cmdutil holds what every command shares: the Factory that supplies
// streams, configuration and backends, and the typed errors that Main maps to
// exit codes.
package cmdutil

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/socks-dev/socks/awsops"
	"github.com/socks-dev/socks/backend"
	"github.com/socks-dev/socks/config"
	"github.com/socks-dev/socks/internal/build"
	"github.com/socks-dev/socks/iostreams"
	"github.com/socks-dev/socks/local"
	"github.com/socks-dev/socks/store"
)

// Factory is built once in commands.Main and handed to every command.
type Factory struct {
	IOStreams *iostreams.IOStreams
	Getenv    func(string) string
	Now       func() time.Time
	Build     build.Info
	// Flags holds the global flags; root binds them, commands read them
	// through Config.
	Flags config.Flags
	// Stopping is what the command finishes after a first Ctrl-C, for
	// Main to say (nil: nothing is recorded).
	Stopping *Stopping

	// jsonOut is the running command's --json, as root records it
	// (SetJSONOut) before the command runs: what Main writes on its own
	// (the notes of Ctrl-C, from the signal handler's goroutine) follows
	// it as the command's stderr lines do (ErrUI).
	jsonOut atomic.Bool

	mu      sync.Mutex
	backend *backend.Backend
}

// SetJSONOut records whether the running command was given --json.
func (f *Factory) SetJSONOut(v bool) { f.jsonOut.Store(v) }

// JSONOut reports whether the running command was given --json (false
// before root has parsed its flags, and for a command without one).
func (f *Factory) JSONOut() bool { return f.jsonOut.Load() }

// Config resolves the effective configuration.
func (f *Factory) Config() (config.Config, error) {
	cfg, err := config.Resolve(f.Flags, f.Getenv)
	if err != nil {
		return config.Config{}, &FlagError{Err: err}
	}
	return cfg, nil
}

// Backend opens the configured backend once per invocation.
func (f *Factory) Backend(ctx context.Context) (*backend.Backend, error) {
	return f.openBackend(ctx, false)
}

// openBackend is Backend; readOnly opens the local state file for reading
// only (see ListStore).
func (f *Factory) openBackend(ctx context.Context, readOnly bool) (*backend.Backend, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.backend != nil {
		return f.backend, nil
	}
	cfg, err := f.Config()
	if err != nil {
		return nil, err
	}
	if unused := cfg.UnusedAWSSettings(); len(unused) > 0 && f.IOStreams != nil {
		// A profile's name is any string the config file holds: Notef
		// shows it escaped.
		Notef(f.IOStreams.ErrOut, "warning: %s set, but the backend is local (the default), which does not use them: select AWS with --backend aws (or %s=aws), or pass --backend local\n",
			strings.Join(unused, ", "), config.EnvBackend)
	}
	if cfg.Backend == config.BackendAWS {
		// A missing table or queue names the settings as the user gave
		// them ($SOCKS_STACK, a profile's stack), not always the flags.
		awsops.ExplainStackFrom(cfg.Origins("stack", "region"))
	}
	b, err := backend.Open(ctx, cfg, backend.Options{Now: f.Now, Version: f.Build.Version, ReadOnly: readOnly})
	if err != nil {
		return nil, err
	}
	f.backend = b
	return b, nil
}

// ReadOnlyBackend is Backend with the local state file opened for reading
// only (see ListStore): `socks doctor` reads a state dir the user may not
// write with it.
func (f *Factory) ReadOnlyBackend(ctx context.Context) (*backend.Backend, error) {
	return f.openBackend(ctx, true)
}

// AWSBackend opens the configured backend for a command that works on AWS
// resources only (verb names it in the error): any other backend is a
// usage error that says how to select AWS.
func (f *Factory) AWSBackend(ctx context.Context, verb string) (*backend.Backend, error) {
	cfg, err := f.Config()
	if err != nil {
		return nil, err
	}
	if cfg.Backend != config.BackendAWS {
		return nil, FlagErrorf("%s works on AWS resources, and the backend is %s: select AWS with --backend aws (or %s=aws)", verb, cfg.Backend, config.EnvBackend)
	}
	return f.Backend(ctx)
}

// Store opens the backend and returns its store.
func (f *Factory) Store(ctx context.Context) (store.Store, error) {
	b, err := f.Backend(ctx)
	if err != nil {
		return nil, err
	}
	return b.Store, nil
}

// NoStateError says that the local state dir holds no state file: nothing
// has run with it (or its name is mistyped).
type NoStateError struct {
	Dir string
	// Missing says the dir itself does not exist.
	Missing bool
	// Undone, when set, says what the command did not do ("nothing was
	// queued"); the error then says how to make the state dir.
	Undone string
	// Default says that no flag, variable or profile named the dir: the
	// user typed no name to check, and most likely has not run `socks
	// serve` yet.
	Default bool
}

func (e *NoStateError) Error() string {
	why := "it holds no " + config.StateFile
	if e.Missing {
		why = "it does not exist"
	}
	if e.Default {
		msg := fmt.Sprintf("nothing has run with the default state dir %s yet (%s): start the local stack with `socks serve`, or give --state-dir or %s if it runs with another", e.Dir, why, config.EnvStateDir)
		if e.Undone != "" {
			msg += "; " + e.Undone
		}
		return msg
	}
	msg := fmt.Sprintf("nothing has run with state dir %s yet (%s): check --state-dir or %s", e.Dir, why, config.EnvStateDir)
	if e.Undone != "" {
		msg += fmt.Sprintf("; %s. `socks serve --state-dir %s` ", e.Undone, e.Dir)
		if e.Missing {
			msg += "makes it"
		} else {
			msg += "starts the stack there"
		}
	}
	return msg
}

// Need says what a command that starts no stack needs of a local state
// dir before it opens it, so that a mistyped --state-dir makes nothing:
// opening makes the dir and a state file in it, where no `socks serve`
// or `socks broker` (the commands that start a stack, and make them)
// would ever look.
type Need int

const (
	// NeedDir: the dir exists. The command adds to a stack that may
	// start there later (publish queues, chatter issue issues); a dir
	// made by serve, by such a command or by the user is used as it is.
	NeedDir Need = iota + 1
	// NeedState: the state file exists. The command reads or changes
	// what a stack left there (revokes, redrives, prunes, lists), or
	// talks to its gateway (listen, bench).
	NeedState
)

// StackBackend returns Backend for a command that starts no stack: on
// the local backend a state dir without what need says is a
// *NoStateError before anything is opened or made, which Main maps to
// ExitNotFound. undone, when set, says what the command did not do
// ("nothing was queued"), and the error then says how to make the dir.
func (f *Factory) StackBackend(need Need, undone string) func(context.Context) (*backend.Backend, error) {
	return func(ctx context.Context) (*backend.Backend, error) {
		if err := f.checkState(need, undone); err != nil {
			return nil, err
		}
		return f.Backend(ctx)
	}
}

// StackStore is StackBackend for the store.
func (f *Factory) StackStore(need Need, undone string) func(context.Context) (store.Store, error) {
	open := f.StackBackend(need, undone)
	return func(ctx context.Context) (store.Store, error) {
		b, err := open(ctx)
		if err != nil {
			return nil, err
		}
		return b.Store, nil
	}
}

// ReadStore is Store for commands that only read, or change what is
// there (StackStore with NeedState): a mistyped --state-dir would pass
// for an empty installation. The command says so and shows nothing.
func (f *Factory) ReadStore(ctx context.Context) (store.Store, error) {
	return f.StackStore(NeedState, "")(ctx)
}

// ReadQueue is ReadStore for the queue (the dead letters): on the local
// backend the queue lives in the same state file.
func (f *Factory) ReadQueue(ctx context.Context) (store.Queue, error) {
	b, err := f.StackBackend(NeedState, "")(ctx)
	if err != nil {
		return nil, err
	}
	return b.Queue, nil
}

// ListStore is ReadStore for commands that write nothing (lists, stats):
// on the local backend the state file is opened for reading only, so that
// a state dir the user may read but not write (a backup, a read-only
// mount) can be read.
func (f *Factory) ListStore(ctx context.Context) (store.Store, error) {
	b, err := f.listBackend(ctx)
	if err != nil {
		return nil, err
	}
	return b.Store, nil
}

// ListQueue is ListStore for the queue (the dead letters).
func (f *Factory) ListQueue(ctx context.Context) (store.Queue, error) {
	b, err := f.listBackend(ctx)
	if err != nil {
		return nil, err
	}
	return b.Queue, nil
}

// listBackend opens the backend for ListStore and ListQueue. A state file
// of an older schema, which a read-only open cannot bring up to date, is
// opened read-write (which does, where the user may write it).
func (f *Factory) listBackend(ctx context.Context) (*backend.Backend, error) {
	if err := f.checkState(NeedState, ""); err != nil {
		return nil, err
	}
	b, err := f.openBackend(ctx, true)
	if errors.Is(err, local.ErrOlderSchema) {
		return f.openBackend(ctx, false)
	}
	return b, err
}

// checkState returns a *NoStateError when the backend is local and its
// state dir lacks what need says; undone is the error's Undone.
func (f *Factory) checkState(need Need, undone string) error {
	cfg, err := f.Config()
	if err != nil {
		return err
	}
	if cfg.Backend != config.BackendLocal {
		return nil
	}
	if _, err := os.Stat(cfg.StateDir); errors.Is(err, fs.ErrNotExist) {
		return &NoStateError{Dir: cfg.StateDir, Missing: true, Undone: undone, Default: cfg.Sources["state_dir"] == "default"}
	}
	if need == NeedState {
		// Lstat: a link to nothing planted there is not "no state file";
		// opening it says what it is (see package planted).
		if _, err := os.Lstat(cfg.StatePath()); errors.Is(err, fs.ErrNotExist) {
			return &NoStateError{Dir: cfg.StateDir, Undone: undone, Default: cfg.Sources["state_dir"] == "default"}
		}
	}
	return nil
}

// ReadWith opens a store or queue with open (a ReadStore or ReadQueue)
// and hands it to read. When the state dir holds no state file, it notes
// that on errOut and returns false and no error without calling read: the
// command shows an empty answer, and says nothing more about it being
// empty. A command about one named thing, or one that changes something,
// returns the *NoStateError instead, which Main maps to ExitNotFound.
func ReadWith[T any](ctx context.Context, open func(context.Context) (T, error), errOut io.Writer, read func(T) error) (found bool, err error) {
	s, err := open(ctx)
	var noState *NoStateError
	switch {
	case errors.As(err, &noState):
		Notef(errOut, "note: %s\n", noState.Error())
		return false, nil
	case err != nil:
		return false, err
	}
	return true, read(s)
}

// Queue opens the backend and returns its queue.
func (f *Factory) Queue(ctx context.Context) (store.Queue, error) {
	b, err := f.Backend(ctx)
	if err != nil {
		return nil, err
	}
	return b.Queue, nil
}

// Pusher opens the backend and returns its Management API pusher with
// keep-alive sized to concurrency; on the local backend the error wraps
// backend.ErrNoGateway when no gateway runs.
func (f *Factory) Pusher(ctx context.Context, concurrency int) (store.Pusher, error) {
	b, err := f.Backend(ctx)
	if err != nil {
		return nil, err
	}
	return b.Pusher(ctx, concurrency)
}

// Close releases what the factory opened.
func (f *Factory) Close() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.backend == nil {
		return nil
	}
	err := f.backend.Close()
	f.backend = nil
	return err
}
