package cmdutil

import (
	"context"
	"io"
	"log/slog"

	"github.com/socks-dev/socks/backend"
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

// GiveBackOrphans is what a broker (serve's, or `socks broker`) does as
// it starts, before b.HoldBroker: when no other broker runs, it makes the
// messages that brokers killed with them in hand left hidden on the local
// queue visible at once (backend.GiveBackOrphans), and logs how many.
func GiveBackOrphans(ctx context.Context, b *backend.Backend, logger *slog.Logger) error {
	n, err := b.GiveBackOrphans(ctx)
	if n > 0 {
		logger.Warn("gave back the messages a broker that stopped had in hand (killed?)", "messages", n)
	}
	return err
}
