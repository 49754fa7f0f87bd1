package logsafe

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"

	"github.com/socks-dev/socks/pubsub"
)

func TestHandlerShortensWhatALineCarries(t *testing.T) {
	id := pubsub.NewChatterID()
	long := strings.Repeat("b", 40)
	for _, verbose := range []bool{false, true} {
		var buf bytes.Buffer
		level := slog.LevelInfo
		if verbose {
			level = slog.LevelDebug
		}
		l := Logger(slog.New(slog.NewJSONHandler(&buf, &slog.HandlerOptions{Level: level})))
		if Logger(l) != l {
			t.Error("Logger wrapped a logger twice")
		}
		l = l.With("with", id)
		l.Info("line", "geek", id, "err", fmt.Errorf("geek %q of %s", long, id), "topics", []string{"news", id},
			slog.Group("g", "q", id), "n", 7)
		got := buf.String()
		if strings.Contains(got, id[3:23]) {
			t.Errorf("-v %v: the line holds the chatter ID: %s", verbose, got)
		}
		quoted := Quoted
		if verbose {
			quoted = QuotedVerbose
		}
		for _, want := range []string{
			`"with":"sc_(hidden)"`, `"geek":"sc_(hidden)"`, `"topics":["news","sc_(hidden)"]`, `"g":{"q":"sc_(hidden)"}`, `"n":7`,
			`"err":"geek \"` + long[:quoted] + `…\" of sc_(hidden)"`,
		} {
			if !strings.Contains(got, want) {
				t.Errorf("-v %v: logged %s; want it to hold %s", verbose, got, want)
			}
		}
	}
}

func TestErrorKeepsWhatItWraps(t *testing.T) {
	id := pubsub.NewChatterID()
	base := errors.New("base")
	err := Error(fmt.Errorf("geek %s: %w", id, base), false)
	if err.Error() != "geek sc_(hidden): base" || !errors.Is(err, base) {
		t.Errorf("Error = %q (is base: %v); want the words shortened, wrapping base", err, errors.Is(err, base))
	}
	if Error(nil, false) != nil {
		t.Error("Error(nil) is not nil")
	}
}

// stringer is a value a line may carry that prints itself.
type stringer struct{ s string }

func (s stringer) String() string { return s.s }

// valuer is a slog.LogValuer that resolves to a group.
type valuer struct{ s string }

func (v valuer) LogValue() slog.Value { return slog.GroupValue(slog.String("inner", v.s)) }

// TestHandlerShortensEveryKindOfValue: a chatter ID is hidden however a
// line carries it: in its message, a fmt.Stringer, a []any, a []byte, a
// struct, a LogValuer (in a group too), an error that wraps another with
// %w; with the text handler and the JSON one. Before, only strings,
// errors and []string were: a Stringer, a []any, a []byte or a struct
// was written whole.
func TestHandlerShortensEveryKindOfValue(t *testing.T) {
	id := pubsub.NewChatterID()
	for _, h := range []struct {
		name string
		new  func(*bytes.Buffer) slog.Handler
	}{
		{"text", func(b *bytes.Buffer) slog.Handler { return slog.NewTextHandler(b, nil) }},
		{"json", func(b *bytes.Buffer) slog.Handler { return slog.NewJSONHandler(b, nil) }},
	} {
		for _, line := range []struct {
			name  string
			msg   string
			attrs []any
		}{
			{"message", "geek " + id, nil},
			{"Stringer", "line", []any{"v", stringer{id}}},
			{"[]any", "line", []any{"v", []any{"news", id}}},
			{"[]byte", "line", []any{"v", []byte(id)}},
			{"struct", "line", []any{"v", struct{ Geek string }{id}}},
			{"map", "line", []any{"v", map[string]string{"geek": id}}},
			{"LogValuer", "line", []any{"v", valuer{id}}},
			{"LogValuer in a group", "line", []any{slog.Group("g", "v", valuer{id})}},
			{"%w chain", "line", []any{"err", fmt.Errorf("outer: %w", fmt.Errorf("geek %s: %w", id, errors.New("base")))}},
			// ?geek= given the ID without its sc_: a valid geek name,
			// logged as the "connected" line's geek.
			{"a geek that is the ID without its prefix", "connected", []any{"geek", id[3:]}},
			{"a refusal quoting the ID without its prefix", "refused", []any{"reason", `geek "` + id[3:] + `" already has 5 open connections`}},
		} {
			var buf bytes.Buffer
			Logger(slog.New(h.new(&buf))).Info(line.msg, line.attrs...)
			got := buf.String()
			if strings.Contains(got, id[3:23]) || !strings.Contains(got, "sc_(hidden)") {
				t.Errorf("%s, %s: logged %s; want the chatter ID written sc_(hidden)", h.name, line.name, got)
			}
		}
	}
	// A value with nothing to hide is written as it was.
	var buf bytes.Buffer
	Logger(slog.New(slog.NewJSONHandler(&buf, nil))).Info("line", "v", []any{"news", 7}, "m", map[string]int{"n": 7})
	if got := buf.String(); !strings.Contains(got, `"v":["news",7]`) || !strings.Contains(got, `"m":{"n":7}`) {
		t.Errorf("logged %s; want the values as they were", got)
	}
}

// TestAnErrorKeepsItsFix: an error is mostly the server's own words (a
// state file's paths, and the fix: the chmod that mends it, naming the
// file, its -wal and -shm) and is written whole up to MaxError
// characters, not cut at Max as a value a client sent is: the log line of
// a $connect refused 503 for a read-only -wal, the only place serve says
// why, lost the end of its fix. Past MaxError it is cut.
func TestAnErrorKeepsItsFix(t *testing.T) {
	p := "/home/someone/.local/state/socks-for-a-project/socks.db"
	err := fmt.Errorf("admitting connection AbCdEfGhIjKlMnO= of alice: state file %s is not writable: attempt to write a readonly database (8); make it and its -wal and -shm files writable by this user (chmod u+w %s %s-wal %s-shm), or set --state-dir or SOCKS_STATE_DIR", p, p, p, p)
	if len(err.Error()) <= Max {
		t.Fatalf("the error is %d characters; want one longer than Max", len(err.Error()))
	}
	var buf bytes.Buffer
	Logger(slog.New(slog.NewJSONHandler(&buf, nil))).Error("admitting a connection", "err", err)
	if !strings.Contains(buf.String(), "or set --state-dir or SOCKS_STATE_DIR\"") {
		t.Errorf("logged %s; want the whole error", buf.String())
	}
	if got := Error(err, false).Error(); got != err.Error() {
		t.Errorf("Error = %q; want the whole error", got)
	}
	long := errors.New(strings.Repeat("x", 2*MaxError))
	buf.Reset()
	Logger(slog.New(slog.NewJSONHandler(&buf, nil))).Error("line", "err", long)
	if strings.Contains(buf.String(), strings.Repeat("x", MaxError+1)) {
		t.Errorf("an error of %d characters was logged whole; want it cut to %d", 2*MaxError, MaxError)
	}
}

// nilErr is an error type whose Error reads its receiver: a nil *nilErr
// held in an error (a typed nil, not == nil) panics when asked its words.
type nilErr struct{ s string }

func (e *nilErr) Error() string { return e.s }

// TestATypedNilErrorIsWrittenAsNil: an error that is a nil pointer of a
// type whose Error reads its receiver (a function that returns a nil
// *T as an error) is written "<nil>", as fmt and slog write it, by
// Handler and by Error. Before, both called its Error, which panicked.
func TestATypedNilErrorIsWrittenAsNil(t *testing.T) {
	var typed *nilErr
	var err error = typed
	for _, h := range []struct {
		name string
		new  func(*bytes.Buffer) slog.Handler
		want string
	}{
		{"text", func(b *bytes.Buffer) slog.Handler { return slog.NewTextHandler(b, nil) }, "err=<nil>"},
		{"JSON", func(b *bytes.Buffer) slog.Handler { return slog.NewJSONHandler(b, nil) }, `"err":"<nil>"`},
	} {
		var buf bytes.Buffer
		func() {
			defer func() {
				if p := recover(); p != nil {
					t.Errorf("%s: logging a typed nil error panicked: %v", h.name, p)
				}
			}()
			slog.New(&Handler{inner: h.new(&buf)}).Info("line", "err", err)
		}()
		if !strings.Contains(buf.String(), h.want) {
			t.Errorf("%s: logged %q; want it to hold %s", h.name, buf.String(), h.want)
		}
	}
	var got string
	func() {
		defer func() {
			if p := recover(); p != nil {
				t.Errorf("Error of a typed nil error panicked: %v", p)
			}
		}()
		short := Error(err, false)
		got = short.Error()
		if !errors.Is(short, err) {
			t.Errorf("Error of a typed nil error does not wrap it")
		}
	}()
	if got != "<nil>" {
		t.Errorf("Error of a typed nil error says %q; want <nil>", got)
	}
}
