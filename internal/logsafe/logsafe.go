// Package logsafe shortens, in a log line, what a client sent: a value it
// gave in its handshake (?geek=, ?topic=) or a frame, a refusal's reason
// that quotes one, an error that names one. A chatter ID pasted into the
// wrong place by mistake (?geek= takes one as a valid name) must not be
// written down, nor most of one.
//
// The lines of routes and of the gateway all carry such values, so their
// loggers are wrapped whole (Logger): the message and every value a
// line holds is written as String gives it (see Handler). An error that goes
// to a log the package's Handler does not write (the Lambda runtime logs
// a handler's error) is made one with Error.
package logsafe

import (
	"context"
	"fmt"
	"log/slog"
	"slices"

	"github.com/socks-dev/socks/internal/text"
	"github.com/socks-dev/socks/pubsub"
)

// Each Go-quoted value a logged string holds (as the reason of a refusal
// quotes the bad ?geek= it was given) is cut to Quoted characters
// (QuotedVerbose with debug logs on), fewer than the 32 random ones of a
// chatter ID; a logged string is cut to Max characters, and an error,
// mostly the server's own words (a state file's paths and the command
// that mends it), to MaxError.
const (
	Quoted        = 16
	QuotedVerbose = 24
	Max           = 400
	MaxError      = 1000
)

// String returns s as a log line holds it: anything shaped like a chatter
// ID written sc_(hidden) (pubsub.HideChatterIDs), each quoted value cut to
// Quoted characters (QuotedVerbose when verbose), and the whole to Max.
func String(s string, verbose bool) string {
	return shorten(s, verbose, Max)
}

// shorten is String with the whole cut to max.
func shorten(s string, verbose bool, max int) string {
	quoted := Quoted
	if verbose {
		quoted = QuotedVerbose
	}
	return text.Cap(text.CapQuoted(pubsub.HideChatterIDs(s), quoted), max)
}

// Logger returns l with its lines written as Handler writes them (l itself
// when it is so already).
func Logger(l *slog.Logger) *slog.Logger {
	if _, ok := l.Handler().(*Handler); ok {
		return l
	}
	return slog.New(&Handler{inner: l.Handler()})
}

// Handler is a slog.Handler that writes, through the one it wraps, a
// line's message and every string, error (cut to MaxError), []string
// and []byte of its attributes (in groups too, and what a LogValuer
// resolves to) as String gives it, verbose when the wrapped handler takes debug lines; any
// other value (a fmt.Stringer, a []any, a struct) is kept unless its
// words (fmt's %+v) hold something String shortens, then written as
// those words shortened.
type Handler struct{ inner slog.Handler }

// Enabled is the wrapped handler's.
func (h *Handler) Enabled(ctx context.Context, level slog.Level) bool {
	return h.inner.Enabled(ctx, level)
}

// Handle writes r with its attributes shortened.
func (h *Handler) Handle(ctx context.Context, r slog.Record) error {
	verbose := h.inner.Enabled(ctx, slog.LevelDebug)
	out := slog.NewRecord(r.Time, r.Level, String(r.Message, verbose), r.PC)
	r.Attrs(func(a slog.Attr) bool {
		out.AddAttrs(attr(a, verbose))
		return true
	})
	return h.inner.Handle(ctx, out)
}

// WithAttrs returns the handler with as, shortened, on every line.
func (h *Handler) WithAttrs(as []slog.Attr) slog.Handler {
	verbose := h.inner.Enabled(context.Background(), slog.LevelDebug)
	out := make([]slog.Attr, len(as))
	for i, a := range as {
		out[i] = attr(a, verbose)
	}
	return &Handler{inner: h.inner.WithAttrs(out)}
}

// WithGroup returns the handler with its lines' attributes in group name.
func (h *Handler) WithGroup(name string) slog.Handler {
	return &Handler{inner: h.inner.WithGroup(name)}
}

// attr returns a shortened.
func attr(a slog.Attr, verbose bool) slog.Attr {
	v := a.Value.Resolve()
	switch v.Kind() {
	case slog.KindString:
		return slog.String(a.Key, String(v.String(), verbose))
	case slog.KindGroup:
		group := v.Group()
		out := make([]slog.Attr, len(group))
		for i, g := range group {
			out[i] = attr(g, verbose)
		}
		return slog.Attr{Key: a.Key, Value: slog.GroupValue(out...)}
	case slog.KindAny:
		switch x := v.Any().(type) {
		case error:
			return slog.String(a.Key, shorten(words(x), verbose, MaxError))
		case []string:
			var out []string // made only when a string is shortened
			for i, s := range x {
				if short := String(s, verbose); short != s {
					if out == nil {
						out = slices.Clone(x)
					}
					out[i] = short
				}
			}
			if out != nil {
				return slog.Any(a.Key, out)
			}
		case []byte:
			return slog.String(a.Key, String(string(x), verbose))
		default:
			// Any other value (a fmt.Stringer, a []any, a struct, a
			// map) as a handler may write it: kept as it is unless its
			// words hold something to shorten, then those words
			// shortened.
			s := fmt.Sprintf("%+v", x)
			if short := String(s, verbose); short != s {
				return slog.String(a.Key, short)
			}
		}
	}
	return slog.Attr{Key: a.Key, Value: v}
}

// Error returns err with its words as String gives them (cut to
// MaxError, not Max), for a log the package's Handler does not write;
// errors.Is and errors.As see err through it. Nil stays nil.
func Error(err error, verbose bool) error {
	if err == nil {
		return nil
	}
	return &shortened{msg: shorten(words(err), verbose, MaxError), err: err}
}

// words returns err's words as fmt prints them: its Error, but "<nil>"
// for a nil pointer whose Error panics (a typed nil held in an error,
// which is not == nil), as fmt and slog write one.
func words(err error) string {
	return fmt.Sprint(err)
}

// shortened is an error in the words String gives it.
type shortened struct {
	msg string
	err error
}

func (e *shortened) Error() string { return e.msg }
func (e *shortened) Unwrap() error { return e.err }
