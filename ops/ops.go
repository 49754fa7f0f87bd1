// Package ops holds what operators run against a socks stack: pruning dead
// connection records (Prune), listing and counting subscriptions
// (ListConnections, Describe, CountSubscriptions) and the doctor's health
// checks (Check, Checks, RunChecks).
//
// Everything here is written against the store.Store, store.Queue and
// store.Pusher seams, so it works unchanged on every backend; the commands
// in commands/subs, commands/prune, commands/doctor and commands/dlq only
// parse flags and print.
package ops

import (
	"context"
	"errors"
	"time"

	"github.com/socks-dev/socks/internal/backoff"
	"github.com/socks-dev/socks/store"
)

// Defaults shared by the operations.
const (
	// DefaultConcurrency is how many Management API calls one operation
	// keeps in flight.
	DefaultConcurrency = 16
	// DefaultSegments is how many segments of the connection records
	// Prune reads in parallel.
	DefaultSegments = 4
	// DefaultCheckTimeout bounds each Management API check of Prune.
	DefaultCheckTimeout = 30 * time.Second
	// DeleteBatch is how many connections one DeleteConnections call
	// removes: DynamoDB's BatchWriteItem limit.
	DeleteBatch = 25
	// BulkDeleteBatch is how many records one
	// BulkPruner.DeleteDeadConnections call removes: DynamoDB's
	// BatchGetItem limit (the deletes go out 25 items per call).
	BulkDeleteBatch = 100
)

// throttleRetries bounds the retries of a throttled Management API call.
const throttleRetries = 4

// getWithRetry calls p.Get, retrying throttled calls after the shared
// full-jitter backoff (100 ms doubling, at most 800 ms), so that the
// checks a prune or `subs` runs at once do not retry in lockstep.
func getWithRetry(ctx context.Context, p store.Pusher, id string) (store.ConnectionInfo, error) {
	for attempt := 0; ; attempt++ {
		info, err := p.Get(ctx, id)
		if err == nil || store.PushErrorKindOf(err) != store.KindThrottled || attempt >= throttleRetries {
			return info, err
		}
		if werr := backoff.Sleep(ctx, backoff.FullJitter(attempt, 100*time.Millisecond, 800*time.Millisecond)); werr != nil {
			return info, errors.Join(err, werr)
		}
	}
}
