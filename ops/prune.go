package ops

import (
	"context"
	"fmt"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/socks-dev/socks/pubsub"
	"github.com/socks-dev/socks/store"
)

// Reason says why Prune deletes a connection record.
type Reason int

const (
	// TooOld: connected longer ago than the maximum age, so dead by
	// definition (API Gateway closes every connection after 2 h). Deleted
	// without a Management API call.
	TooOld Reason = iota
	// Expired: past its expiry, which the backend's TTL has not removed yet.
	// Deleted without a Management API call.
	Expired
	// Gone: the Management API answered 410 Gone.
	Gone
)

func (r Reason) String() string {
	switch r {
	case TooOld:
		return "too old"
	case Expired:
		return "expired"
	case Gone:
		return "gone"
	}
	return fmt.Sprintf("Reason(%d)", int(r))
}

// PruneOptions tune Prune. The zero value prunes for real with the
// defaults, at time.Now().
type PruneOptions struct {
	// Now is the current time (default time.Now()).
	Now time.Time
	// MaxAge: records connected at least this long ago are dead by
	// definition (default pubsub.MaxConnectionDuration, 2 h).
	MaxAge time.Duration
	// Concurrency bounds the Management API calls in flight (default
	// DefaultConcurrency).
	Concurrency int
	// Segments is how many parallel segments ScanConnections reads
	// (default DefaultSegments).
	Segments int
	// CheckTimeout bounds each Management API check, its throttling
	// retries included (default DefaultCheckTimeout): a check not
	// answered by then counts as an error and its record is kept.
	CheckTimeout time.Duration
	// DryRun decides and counts everything but deletes nothing.
	DryRun bool
	// Queue, when it keeps its dead letters until asked
	// (store.ExpiredDeadLetterDeleter: the local queue), has those past
	// store.DeadLetterRetention deleted too. SQS deletes them by itself.
	Queue store.Queue
	// Log, when set, is told every decision, one line each. It may be
	// called from several goroutines at once.
	Log func(line string)
	// Progress, when set, is called with the number of records examined so
	// far after each page. It may be called from several goroutines at once.
	Progress func(checked int)
	// Waiting, when set, is called once if the run must wait for the
	// store's prune lease, which another prune holds (a BulkPruner, not a
	// dry run).
	Waiting func()
	// Leased, when set, is called once the store's prune lease is taken
	// (a BulkPruner, not a dry run); the function it returns is called
	// once the lease is given up.
	Leased func() (released func())
}

func (o PruneOptions) withDefaults() PruneOptions {
	if o.Now.IsZero() {
		o.Now = time.Now()
	}
	if o.MaxAge <= 0 {
		o.MaxAge = pubsub.MaxConnectionDuration
	}
	if o.Concurrency <= 0 {
		o.Concurrency = DefaultConcurrency
	}
	if o.Segments <= 0 {
		o.Segments = DefaultSegments
	}
	if o.CheckTimeout <= 0 {
		o.CheckTimeout = DefaultCheckTimeout
	}
	return o
}

// PruneDeleted counts the records one Prune run deleted, by reason.
type PruneDeleted struct {
	TooOld  int `json:"tooOld"`
	Expired int `json:"expired"`
	Gone    int `json:"gone"`
}

// Total is the sum over every reason.
func (d PruneDeleted) Total() int { return d.TooOld + d.Expired + d.Gone }

func (d *PruneDeleted) add(r Reason, n int) {
	switch r {
	case TooOld:
		d.TooOld += n
	case Expired:
		d.Expired += n
	case Gone:
		d.Gone += n
	}
}

// PruneResult is what one Prune run did. Every examined record is counted
// once: Checked = Deleted.Total() + Vanished + Kept + Unchecked + Errors.
type PruneResult struct {
	DryRun bool `json:"dryRun"`
	// Checked is how many connection records were examined (by a run an
	// error stopped, before it stopped).
	Checked int `json:"checked"`
	// Deleted counts the records this run deleted (with DryRun: would
	// delete), by reason. Records another run (or a $disconnect) deleted
	// first are not counted here but in Vanished.
	Deleted PruneDeleted `json:"deleted"`
	// Vanished counts the records this run meant to delete that were
	// already gone when it did.
	Vanished int `json:"vanished"`
	// Kept counts the records the Management API confirmed live.
	Kept int `json:"kept"`
	// Unchecked counts the records younger than the maximum age that could
	// not be checked because there was no Management API (no gateway
	// running). They are kept.
	Unchecked int `json:"unchecked"`
	// Errors counts the records whose check failed (anything but 410 Gone
	// or success). They are kept.
	Errors int `json:"errors"`
	// ErrorSamples holds the first few of those errors.
	ErrorSamples []string `json:"errorSamples,omitempty"`
	// ChatterIDs counts the expired chatter IDs deleted (with DryRun:
	// that would be deleted).
	ChatterIDs int `json:"chatterIdsDeleted"`
	// DeadLetters counts the dead letters past their retention deleted
	// (with DryRun: that would be deleted); always 0 on SQS, which
	// deletes them by itself.
	DeadLetters int `json:"deadLettersDeleted"`
}

// maxErrorSamples bounds PruneResult.ErrorSamples.
const maxErrorSamples = 5

// Classify says whether a connection record is dead without asking the
// Management API: TooOld or Expired with ok true, or ok false when only the
// Management API can tell.
func Classify(c pubsub.Connection, now time.Time, maxAge time.Duration) (r Reason, ok bool) {
	if maxAge <= 0 {
		maxAge = pubsub.MaxConnectionDuration
	}
	switch {
	case now.Sub(c.ConnectedAt) >= maxAge:
		return TooOld, true
	case c.Expired(now):
		return Expired, true
	}
	return 0, false
}

// BulkPruner is a store whose records a prune deletes faster while no
// other prune runs: awsops.DynamoStore, where a conditional DeleteItem per
// record (what keeps concurrent DeleteConnections calls counting each
// record once) costs several times a batched delete.
type BulkPruner interface {
	// LockPrune waits until the caller is the only prune of the store and
	// returns a context that ends if that stops being true, and the
	// function that lets the next prune in. waiting, when not nil, is
	// called once if another prune holds the lock, before the wait.
	LockPrune(ctx context.Context, waiting func()) (context.Context, func(), error)
	// DeleteDeadConnections is DeleteConnections for the holder of the
	// lock: it counts the records that existed, without guarding against
	// another prune deleting them at the same time (on an error, those
	// it deleted before it).
	DeleteDeadConnections(ctx context.Context, ids []string) (int, error)
}

// Prune deletes the connection records of connections that are dead and
// returns what it did. It walks every record with s.ScanConnections, in
// parallel segments:
//
//   - a record connected at least MaxAge ago, or past its expiry, is deleted
//     without any Management API call;
//   - a younger one is checked with p.Get (at most Concurrency at once;
//     throttled calls are retried, within CheckTimeout) and deleted only
//     on 410 Gone, unless it connected less than pubsub.ConnectWindow ago
//     (it may still be in its $connect, when API Gateway answers 410
//     too). A live one is never deleted; any other failure (no answer
//     within CheckTimeout included) is counted in Errors and the
//     record is kept;
//   - when p is nil (no gateway to ask), younger records are counted as
//     Unchecked and kept.
//
// Deletes go out in batches of DeleteBatch. They are idempotent, and each
// run counts only what it actually deleted (DeleteConnections reports how
// many existed), so runs at once leave the same result as one. On a
// BulkPruner, a run that deletes (not a dry run) first waits for the
// store's prune lock and then deletes in bulk: runs at once take turns.
// Prune also deletes expired chatter IDs, and the dead letters of
// opts.Queue past their retention.
//
// The error is non-nil only when the walk or a delete failed; check
// failures are counted in the result, not returned.
func Prune(ctx context.Context, s store.Store, p store.Pusher, opts PruneOptions) (_ PruneResult, err error) {
	opts = opts.withDefaults()
	now := opts.Now
	pr := &pruner{s: s, opts: opts, res: PruneResult{DryRun: opts.DryRun}, pending: map[Reason][]string{}, del: s.DeleteConnections, batch: DeleteBatch}
	if bulk, ok := s.(BulkPruner); ok && !opts.DryRun {
		lctx, release, err := bulk.LockPrune(ctx, opts.Waiting)
		if err != nil {
			return pr.result(), err
		}
		if opts.Leased != nil {
			defer opts.Leased()()
		}
		defer release()
		parent := ctx
		ctx, pr.del, pr.batch = lctx, bulk.DeleteDeadConnections, BulkDeleteBatch
		defer func() {
			// A lost lock stopped the run: say so rather than "context
			// canceled".
			if err != nil && lctx.Err() != nil && parent.Err() == nil {
				err = fmt.Errorf("%w (%w)", context.Cause(lctx), err)
			}
		}()
	}

	checks, cctx := errgroup.WithContext(ctx)
	checks.SetLimit(opts.Concurrency)
	scanErr := s.ScanConnections(ctx, opts.Segments, func(page []pubsub.Connection) error {
		for i, c := range page {
			if r, ok := Classify(c, now, opts.MaxAge); ok {
				pr.logf("%s %s geek=%s connected=%s reason=%q", pr.verb(), c.ID, c.Geek, c.ConnectedAt.UTC().Format(time.RFC3339), r)
				if err := pr.remove(ctx, r, c.ID); err != nil {
					// Stopped within the page: what it examined so far,
					// this record too, is counted.
					pr.count(func(res *PruneResult) { res.Checked += i + 1 })
					return err
				}
				continue
			}
			if p == nil {
				pr.count(func(res *PruneResult) { res.Unchecked++ })
				pr.logf("keep %s geek=%s reason=%q", c.ID, c.Geek, "unchecked: no Management API")
				continue
			}
			if cctx.Err() != nil {
				pr.count(func(res *PruneResult) { res.Checked += i })
				return context.Cause(cctx)
			}
			checks.Go(func() error { return pr.check(cctx, p, c) })
		}
		pr.count(func(res *PruneResult) { res.Checked += len(page) })
		if opts.Progress != nil {
			pr.mu.Lock()
			n := pr.res.Checked
			pr.mu.Unlock()
			opts.Progress(n)
		}
		return nil
	})
	// A failed check goroutine cancels cctx, which stops the scan too: its
	// error is the cause, so report it rather than the scan's echo of it.
	if err := checks.Wait(); err != nil {
		return pr.result(), err
	}
	if scanErr != nil {
		return pr.result(), scanErr
	}
	if err := pr.flush(ctx); err != nil {
		return pr.result(), err
	}
	n, err := pruneChatterIDs(ctx, s, now, opts.DryRun)
	pr.count(func(res *PruneResult) { res.ChatterIDs = n })
	if err != nil {
		return pr.result(), fmt.Errorf("deleting expired chatter IDs: %w", err)
	}
	if q, ok := opts.Queue.(store.ExpiredDeadLetterDeleter); ok {
		n, err := pruneDeadLetters(ctx, q, now, opts.DryRun)
		pr.count(func(res *PruneResult) { res.DeadLetters = n })
		if err != nil {
			return pr.result(), err
		}
	}
	return pr.result(), nil
}

// pruner is the state of one Prune run, shared by the scan and check
// goroutines.
type pruner struct {
	s    store.Store
	opts PruneOptions

	mu      sync.Mutex
	res     PruneResult
	pending map[Reason][]string
	// del deletes a batch of records and says how many existed:
	// s.DeleteConnections, or BulkPruner.DeleteDeadConnections under the
	// lease.
	del func(ctx context.Context, ids []string) (int, error)
	// batch is how many records one del call gets.
	batch int
}

func (pr *pruner) count(fn func(*PruneResult)) {
	pr.mu.Lock()
	defer pr.mu.Unlock()
	fn(&pr.res)
}

func (pr *pruner) result() PruneResult {
	pr.mu.Lock()
	defer pr.mu.Unlock()
	res := pr.res
	res.ErrorSamples = append([]string(nil), pr.res.ErrorSamples...)
	return res
}

func (pr *pruner) verb() string {
	if pr.opts.DryRun {
		return "would delete"
	}
	return "delete"
}

func (pr *pruner) logf(format string, args ...any) {
	if pr.opts.Log != nil {
		pr.opts.Log(fmt.Sprintf(format, args...))
	}
}

// check asks the Management API about a record younger than the maximum
// age and deletes it if the connection is gone. Only a failure to delete
// is returned; a failed check is counted.
func (pr *pruner) check(ctx context.Context, p store.Pusher, c pubsub.Connection) error {
	gctx, cancel := context.WithTimeout(ctx, pr.opts.CheckTimeout)
	_, err := getWithRetry(gctx, p, c.ID)
	timedOut := gctx.Err() != nil && ctx.Err() == nil
	cancel()
	if err != nil && timedOut && !store.IsGone(err) {
		err = fmt.Errorf("GetConnection %s: no answer from the Management API within %s", c.ID, pr.opts.CheckTimeout)
	}
	switch {
	case err == nil:
		pr.count(func(res *PruneResult) { res.Kept++ })
		pr.logf("keep %s geek=%s reason=%q", c.ID, c.Geek, "live")
		return nil
	case store.IsGone(err) && pr.opts.Now.Sub(c.ConnectedAt) < pubsub.ConnectWindow:
		// API Gateway answers 410 until a connection's $connect, which
		// wrote this record, has ended: it may be about to open.
		pr.count(func(res *PruneResult) { res.Kept++ })
		pr.logf("keep %s geek=%s reason=%q", c.ID, c.Geek, "connecting")
		return nil
	case store.IsGone(err):
		pr.logf("%s %s geek=%s connected=%s reason=%q", pr.verb(), c.ID, c.Geek, c.ConnectedAt.UTC().Format(time.RFC3339), Gone)
		return pr.remove(ctx, Gone, c.ID)
	case ctx.Err() != nil:
		return context.Cause(ctx)
	default:
		pr.count(func(res *PruneResult) {
			res.Errors++
			if len(res.ErrorSamples) < maxErrorSamples {
				res.ErrorSamples = append(res.ErrorSamples, err.Error())
			}
		})
		pr.logf("keep %s geek=%s reason=%q error=%q", c.ID, c.Geek, "check failed", err.Error())
		return nil
	}
}

// remove queues id for deletion and deletes a batch once DeleteBatch of
// the same reason are queued. In a dry run it only counts.
func (pr *pruner) remove(ctx context.Context, r Reason, id string) error {
	pr.mu.Lock()
	if pr.opts.DryRun {
		pr.res.Deleted.add(r, 1)
		pr.mu.Unlock()
		return nil
	}
	pr.pending[r] = append(pr.pending[r], id)
	var batch []string
	if len(pr.pending[r]) >= pr.batch {
		batch = pr.pending[r]
		pr.pending[r] = nil
	}
	pr.mu.Unlock()
	if batch == nil {
		return nil
	}
	return pr.deleteBatch(ctx, r, batch)
}

// flush deletes what is still queued.
func (pr *pruner) flush(ctx context.Context) error {
	pr.mu.Lock()
	pending := pr.pending
	pr.pending = map[Reason][]string{}
	pr.mu.Unlock()
	for _, r := range []Reason{TooOld, Expired, Gone} {
		ids := pending[r]
		for len(ids) > 0 {
			n := min(len(ids), pr.batch)
			if err := pr.deleteBatch(ctx, r, ids[:n]); err != nil {
				return err
			}
			ids = ids[n:]
		}
	}
	return nil
}

func (pr *pruner) deleteBatch(ctx context.Context, r Reason, ids []string) error {
	n, err := pr.del(ctx, ids)
	if err != nil {
		// A batch that failed half way deleted some: counted, so that
		// the summary is what the table lost. The rest are left for the
		// next run, which counts them.
		pr.count(func(res *PruneResult) { res.Deleted.add(r, n) })
		return fmt.Errorf("deleting %d connection records (%s): %w", len(ids), r, err)
	}
	pr.count(func(res *PruneResult) {
		res.Deleted.add(r, n)
		res.Vanished += len(ids) - n
	})
	return nil
}

// pruneDeadLetters deletes the dead letters of q expired at now, or in a
// dry run counts them.
func pruneDeadLetters(ctx context.Context, q store.ExpiredDeadLetterDeleter, now time.Time, dryRun bool) (int, error) {
	if dryRun {
		return q.CountExpiredDeadLetters(ctx, now)
	}
	return q.DeleteExpiredDeadLetters(ctx, now)
}

// pruneChatterIDs deletes the chatter IDs expired at now, or in a dry run
// counts them: by the store's count when it has one, else by listing
// every chatter ID.
func pruneChatterIDs(ctx context.Context, s store.Store, now time.Time, dryRun bool) (int, error) {
	if !dryRun {
		return s.DeleteExpiredChatterIDs(ctx, now)
	}
	if c, ok := s.(store.ExpiredChatterIDCounter); ok {
		return c.CountExpiredChatterIDs(ctx, now)
	}
	ids, err := s.ListChatterIDs(ctx, "")
	if err != nil {
		return 0, err
	}
	n := 0
	for _, c := range ids {
		if c.Expired(now) {
			n++
		}
	}
	return n, nil
}
