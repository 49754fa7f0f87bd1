package store

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/socks-dev/socks/pubsub"
)

// ReportReplacer is the part of a Store that changes reports by
// read-modify-write.
type ReportReplacer interface {
	GetReport(ctx context.Context, messageID string) (Report, error)
	ReplaceReport(ctx context.Context, r Report) error
}

// UpdateReport changes the report of message id by read-modify-write:
// change gets the report (nil: none) and returns the next one (nil: no
// write). The write is conditioned on the report read (ReplaceReport), so
// that two writers changing one report at the same instant (two brokers,
// two workers, a queue dead-lettering a message) never lose one's change:
// the one that loses reads again and redoes its change, after wait (which
// gets the attempt that lost), up to attempts times.
func UpdateReport(ctx context.Context, rs ReportReplacer, id string, attempts int, wait func(ctx context.Context, attempt int) error, change func(prev *Report) (*Report, error)) error {
	for attempt := 1; ; attempt++ {
		var prev *Report
		var version int64
		switch r, err := rs.GetReport(ctx, id); {
		case err == nil:
			prev, version = &r, r.Version
		case !errors.Is(err, ErrNotFound):
			return fmt.Errorf("reading the report it adds to: %w", err)
		}
		next, err := change(prev)
		if err != nil || next == nil {
			return err
		}
		next.Version = version
		err = rs.ReplaceReport(ctx, *next)
		if !errors.Is(err, ErrConflict) {
			return err
		}
		if attempt >= attempts {
			return fmt.Errorf("gave up after %d attempts, other brokers kept changing the report: %w", attempt, err)
		}
		if err := wait(ctx, attempt); err != nil {
			return err
		}
	}
}

// ReportDeadLettered records in rs, in the report of the queue message id
// with body, that it was dead-lettered for reason without being decided
// (DeadLettered): by a queue past its receives, or a broker that found it
// so. Without it, its report would never say, and `publish --wait` would
// wait in vain. mapping reads wrapped events (nil: the default). A body
// that does not parse has no report, and nothing is written.
func ReportDeadLettered(ctx context.Context, rs ReportReplacer, id string, body []byte, mapping *pubsub.Mapping, reason string, now time.Time, attempts int, wait func(ctx context.Context, attempt int) error) error {
	env, err := pubsub.ParseMessage(body, mapping)
	if err != nil {
		return nil
	}
	env.ID = cmp.Or(env.ID, id)
	return UpdateReport(ctx, rs, env.ID, attempts, wait, func(prev *Report) (*Report, error) {
		next := DeadLettered(prev, env, reason, now)
		return &next, nil
	})
}
