package cmdutil

import (
	"io"
	"log/slog"
)

// NewLogger returns the text logger of the long-running commands (serve,
// broker) on w: debug with verbose, warnings and errors only with quiet,
// else info.
func NewLogger(w io.Writer, verbose, quiet bool) *slog.Logger {
	level := slog.LevelInfo
	switch {
	case verbose:
		level = slog.LevelDebug
	case quiet:
		level = slog.LevelWarn
	}
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: level}))
}
