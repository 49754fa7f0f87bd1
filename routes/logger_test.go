package routes

import (
	"io"
	"log/slog"
	"testing"
)

// TestTheLoggerIsWrappedOnce: logger, called for every line (a $connect's
// 'connected'), wraps Logger in logsafe once, not a new logger and
// handler for each line; and wraps the new one when Logger is changed.
func TestTheLoggerIsWrappedOnce(t *testing.T) {
	h := &Handler{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
	first := h.logger()
	if n := testing.AllocsPerRun(100, func() { _ = h.logger() }); n != 0 {
		t.Errorf("logger allocates %v times a call; want it wrapped once", n)
	}
	if h.logger() != first {
		t.Error("logger returned another logger for the same Logger")
	}
	h.Logger = slog.New(slog.NewJSONHandler(io.Discard, nil))
	if l := h.logger(); l == first || l.Handler() == first.Handler() {
		t.Error("logger kept the wrapping of the Logger it had before")
	}
}
