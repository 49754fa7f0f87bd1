package awsops

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsmiddleware "github.com/aws/aws-sdk-go-v2/aws/middleware"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/smithy-go/middleware"
	"golang.org/x/sync/errgroup"

	"github.com/socks-dev/socks/internal/backoff"
	"github.com/socks-dev/socks/pubsub"
	"github.com/socks-dev/socks/store"
)

// Pruning in bulk (docs/tables.md, "Pruning"): a prune run holds the
// stack's prune lease, so no other prune deletes the same records, and
// deletes with BatchWriteItem instead of a conditional DeleteItem per
// record.
const (
	// pruneLeaseTTL is how long a prune lease lasts after it was taken or
	// last renewed: a prune that crashed keeps the next one waiting this
	// long at most.
	pruneLeaseTTL = time.Minute
	// pruneLeaseRenew is how often the holder renews it.
	pruneLeaseRenew = 10 * time.Second
	// maxBatchGet is BatchGetItem's limit.
	maxBatchGet = 100

	// The lease item in the connections table (no connection key starts
	// with these, and it carries no by-geek keys).
	pkPruneLease = "PRUNE"
	skPruneLease = "LEASE"
	attrOwner    = "owner"
	attrUntilMs  = "untilMs"
)

// ErrPruneLeaseLost is the cause of the context LockPrune returns when the
// lease could not be renewed: another prune may hold it now, so this one
// must stop deleting.
var ErrPruneLeaseLost = errors.New("lost the prune lease (renewing it failed): stopped so as not to race another prune")

// LockPrune waits until it holds the stack's prune lease, an item in the
// connections table taken with a conditional PutItem (it is free, its
// holder let it lapse, or it is already this call's: the SDK sent again a
// PutItem whose answer was lost), and keeps renewing it until release is
// called. The returned context is cancelled, with ErrPruneLeaseLost as its
// cause, if a renewal fails or is not answered before the lease it renews
// would lapse (less a tenth of its term); a throttled renewal is tried
// again, with the store's backoff, until then. While waiting (the lease
// held, or its take throttled) it polls with the store's backoff, until
// ctx ends; waiting, when not nil, is called once the first time it finds
// the lease held.
func (s *DynamoStore) LockPrune(ctx context.Context, waiting func()) (context.Context, func(), error) {
	var b [16]byte
	_, _ = rand.Read(b[:])
	owner := hex.EncodeToString(b[:])
	// The lease's end is by AWS's clock, as every prune reads it: by this
	// machine's, one hours ahead left a lease that kept the others waiting
	// those hours once its prune was killed. Unread, this machine's.
	clock := &store.FollowedClock{Local: s.now}
	_ = clock.Sync(ctx, s)
	var taken time.Time
	for attempt := 1; ; attempt++ {
		taken = time.Now()
		ok, err := s.putLease(ctx, owner, clock.Now(), false)
		// Throttled (another prune's deletes may be what keeps the
		// table busy), it waits as for a lease held.
		if err != nil && !isThrottle(err) {
			return nil, nil, fmt.Errorf("taking the prune lease: %w", err)
		}
		if ok {
			break
		}
		if err == nil && waiting != nil {
			waiting()
			waiting = nil
		}
		if err := backoff.Sleep(ctx, s.backoff(min(attempt, 6))); err != nil {
			return nil, nil, fmt.Errorf("waiting for another prune to finish: %w", err)
		}
	}
	lctx, cancel := context.WithCancelCause(ctx)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		t := time.NewTicker(s.leaseRenew)
		defer t.Stop()
		// held is when the lease last written lapses, less a margin: a
		// renewal not answered by then ends the run before another prune
		// can take the lease.
		held := taken.Add(s.leaseTTL - s.leaseTTL/10)
		for {
			select {
			case <-stop:
				return
			case <-lctx.Done():
				return
			case <-t.C:
				start := time.Now()
				rctx, done := context.WithDeadline(lctx, held)
				var ok bool
				var err error
				for attempt := 1; ; attempt++ {
					// Asked again: the monotonic time followed since the
					// last ask stands still while the machine is
					// suspended, and a renewal by it after a sleep longer
					// than the lease would end the lease already, by
					// AWS's clock, for another to take.
					ok, err = s.putLease(rctx, owner, clock.Follow(rctx, s), true)
					// Throttled (the run's own deletes may be what keeps
					// the table busy), the lease still holds until held:
					// tried again until then, or until released.
					if err == nil || !isThrottle(err) || released(stop) || backoff.Sleep(rctx, s.backoff(min(attempt, 6))) != nil {
						break
					}
				}
				done()
				switch {
				case err != nil && released(stop):
					return
				case err != nil && lctx.Err() == nil:
					cancel(fmt.Errorf("%w: %v", ErrPruneLeaseLost, err))
					return
				case err != nil:
					return
				case !ok:
					cancel(fmt.Errorf("%w: it lapsed and another prune took it", ErrPruneLeaseLost))
					return
				}
				held = start.Add(s.leaseTTL - s.leaseTTL/10)
			}
		}
	})
	var once sync.Once
	release := func() {
		once.Do(func() {
			close(stop)
			wg.Wait()
			ctx, done := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
			defer done()
			// Only our own lease; if it lapsed, someone else's is left.
			_, _ = s.api.DeleteItem(ctx, &dynamodb.DeleteItemInput{
				TableName:                 aws.String(s.tables.Connections),
				Key:                       item{attrPK: avS(pkPruneLease), attrSK: avS(skPruneLease)},
				ConditionExpression:       aws.String("#owner = :me"),
				ExpressionAttributeNames:  map[string]string{"#owner": attrOwner},
				ExpressionAttributeValues: map[string]types.AttributeValue{":me": avS(owner)},
			})
			cancel(nil)
		})
	}
	return lctx, release, nil
}

// released reports whether stop is closed.
func released(stop <-chan struct{}) bool {
	select {
	case <-stop:
		return true
	default:
		return false
	}
}

// putLease writes the lease for owner until now + s.leaseTTL: taking it
// (it is absent, lapsed or already owner's at now) or renewing it (owner
// holds it). ok false: the condition failed.
func (s *DynamoStore) putLease(ctx context.Context, owner string, now time.Time, renew bool) (bool, error) {
	until := now.Add(s.leaseTTL)
	in := &dynamodb.PutItemInput{
		TableName: aws.String(s.tables.Connections),
		Item: item{
			attrPK: avS(pkPruneLease), attrSK: avS(skPruneLease),
			attrOwner: avS(owner), attrUntilMs: avN(millis(until)),
			// DynamoDB's TTL removes a lease left behind, some day.
			attrTTL: avN(ttlSeconds(until.Add(time.Hour))),
		},
		// Its own lease too: a PutItem that wrote it but whose answer
		// was lost is sent again by the SDK's retryer.
		ConditionExpression:      aws.String("attribute_not_exists(#pk) OR #until < :now OR #owner = :me"),
		ExpressionAttributeNames: map[string]string{"#pk": attrPK, "#until": attrUntilMs, "#owner": attrOwner},
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":now": avN(millis(now)),
			":me":  avS(owner),
		},
	}
	if renew {
		in.ConditionExpression = aws.String("#owner = :me")
		in.ExpressionAttributeNames = map[string]string{"#owner": attrOwner}
		in.ExpressionAttributeValues = map[string]types.AttributeValue{":me": avS(owner)}
	}
	_, err := s.api.PutItem(ctx, in)
	var failed *types.ConditionalCheckFailedException
	if errors.As(err, &failed) {
		return false, nil
	}
	if err != nil {
		return false, wrapTable("PutItem", s.tables.Connections, err)
	}
	return true, nil
}

// DeleteDeadConnections deletes the records of dead connections for a
// prune that holds the lease (LockPrune), and returns how many of them
// existed (on an error, how many records it deleted before it). It reads
// the records with consistent BatchGetItem calls (100 keys each) and
// deletes their geek and subscription items, then the records, with
// BatchWriteItem (25 per call, several at once, unprocessed items sent
// again after a backoff): no conditional write per record, and
// no copy ever left without its record. The lease keeps other prunes from
// counting the same records; a $disconnect of one of them between the read
// and the delete would be counted here too.
func (s *DynamoStore) DeleteDeadConnections(ctx context.Context, ids []string) (int, error) {
	keys := make([]item, 0, len(ids))
	for _, id := range pubsub.Unique(ids) {
		keys = append(keys, connKey(id))
	}
	records, err := s.batchGet(ctx, s.tables.Connections, keys)
	if err != nil {
		return 0, fmt.Errorf("reading %d connection records: %w", len(keys), err)
	}
	var deps, recs []item
	for _, it := range records {
		c, err := itemConnection(it)
		if err != nil {
			return 0, err
		}
		deps = append(deps, dependentKeys(c)...)
		recs = append(recs, connKey(c.ID))
	}
	// The geek and subscription items first, the records last: a run that
	// fails half way (a hot topic partition throttled past the retries, a
	// run killed) leaves whole records, which name what is left of
	// theirs, for the next prune; never a copy without its record, which
	// no prune would find and a fan-out would keep reaching.
	if _, err := s.batchDelete(ctx, s.tables.Connections, deps); err != nil {
		return 0, fmt.Errorf("deleting the geek and subscription items of %d connection records: %w", len(records), err)
	}
	// Those of the calls that went through before a failure are deleted
	// all the same, and counted.
	n, err := s.batchDelete(ctx, s.tables.Connections, recs)
	if err != nil {
		return n, fmt.Errorf("deleting %d connection records: %w", len(records), err)
	}
	return len(records), nil
}

// batchGet reads the items with keys from table with consistent
// BatchGetItem calls of up to 100 keys, a few at once, asking again for
// the keys DynamoDB returns unprocessed (or all of them, when it throttled
// the whole call) after a backoff. Missing items are left out.
func (s *DynamoStore) batchGet(ctx context.Context, table string, keys []item) ([]item, error) {
	var (
		mu  sync.Mutex
		out []item
	)
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(batchWorkers)
	for part := range slices.Chunk(keys, maxBatchGet) {
		g.Go(func() error {
			pending := &types.KeysAndAttributes{Keys: part, ConsistentRead: aws.Bool(true)}
			for attempt := 1; ; attempt++ {
				res, err := s.api.BatchGetItem(gctx, &dynamodb.BatchGetItemInput{
					RequestItems: map[string]types.KeysAndAttributes{table: *pending},
				})
				if err != nil {
					// None of the keys read, throttled: as many attempts
					// as unprocessed keys get.
					if !isThrottle(err) || attempt >= batchAttempts {
						return wrapTable("BatchGetItem", table, err)
					}
					if err := backoff.Sleep(gctx, s.backoff(attempt)); err != nil {
						return err
					}
					continue
				}
				s.itemsRead.Add(int64(len(res.Responses[table])))
				mu.Lock()
				out = append(out, res.Responses[table]...)
				mu.Unlock()
				next, ok := res.UnprocessedKeys[table]
				if !ok || len(next.Keys) == 0 {
					return nil
				}
				if attempt >= batchAttempts {
					return fmt.Errorf("BatchGetItem on table %s left %d keys unprocessed after %d attempts (%w): try again later", table, len(next.Keys), attempt, ErrThrottled)
				}
				if err := backoff.Sleep(gctx, s.backoff(attempt)); err != nil {
					return err
				}
				pending = &next
			}
		})
	}
	err := g.Wait()
	return out, err
}

var _ store.Clock = (*DynamoStore)(nil)

// Now returns the time by AWS's clock (store.Clock): the Date of
// DynamoDB's answer to a read, to the second, which makes it a little
// earlier than AWS's time, never later. The read is a Query of the
// chatter table for no geek, which a publisher's role may run (`socks
// chatter issue`, once per page that connects: one request); a role that
// may not (a broker's split from the routes') reads the lease item of the
// connections table instead. Without a Date (a stand-in that sends none)
// it is this machine's.
func (s *DynamoStore) Now(ctx context.Context) (time.Time, error) {
	var md middleware.Metadata
	in := s.chatterQuery("", "")
	in.Select, in.Limit, in.ConsistentRead = types.SelectCount, aws.Int32(1), aws.Bool(false)
	q, qerr := s.api.Query(ctx, in)
	if qerr == nil {
		md = q.ResultMetadata
	} else {
		out, err := s.api.GetItem(ctx, &dynamodb.GetItemInput{
			TableName:                aws.String(s.tables.Connections),
			Key:                      item{attrPK: avS(pkPruneLease), attrSK: avS(skPruneLease)},
			ProjectionExpression:     aws.String("#pk"),
			ExpressionAttributeNames: map[string]string{"#pk": attrPK},
		})
		if err != nil {
			return time.Time{}, wrapTable("GetItem", s.tables.Connections, err)
		}
		md = out.ResultMetadata
	}
	if at, ok := awsmiddleware.GetServerTime(md); ok && !at.IsZero() {
		return at, nil
	}
	return s.now(), nil
}
