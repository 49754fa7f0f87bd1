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
