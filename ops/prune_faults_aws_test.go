package ops_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/socks-dev/socks/awsops"
	"github.com/socks-dev/socks/ops"
	"github.com/socks-dev/socks/pubsub"
	"github.com/socks-dev/socks/store"
)

// failingRecordDeletes is DynamoDB Local on which the BatchWriteItem
// calls that delete connection records (not their geek or subscription
// items) after the first ok fail, as a 500 past the SDK's retries does.
// A call either happens whole or not at all, and its answer is never
// lost: what the prune deleted is exactly what the table lost.
type failingRecordDeletes struct {
	awsops.DynamoDBAPI
	ok int

	mu    sync.Mutex
	calls int
}

func (f *failingRecordDeletes) BatchWriteItem(ctx context.Context, in *dynamodb.BatchWriteItemInput, opts ...func(*dynamodb.Options)) (*dynamodb.BatchWriteItemOutput, error) {
	records := false
	for _, reqs := range in.RequestItems {
		for _, r := range reqs {
			if r.DeleteRequest == nil {
				continue
			}
			if sk, ok := r.DeleteRequest.Key["sk"].(*types.AttributeValueMemberS); ok && sk.Value == "CONN" {
				records = true
			}
		}
	}
	if records {
		f.mu.Lock()
		f.calls++
		fail := f.calls > f.ok
		f.mu.Unlock()
		if fail {
			return nil, errors.New("InternalServerError: injected by the test")
		}
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return f.DynamoDBAPI.BatchWriteItem(context.WithoutCancel(ctx), in, opts...)
}

// countRecords counts the connection records left in s.
func countRecords(t *testing.T, s *awsops.DynamoStore) int {
	t.Helper()
	n := 0
	if err := s.ScanConnections(t.Context(), 1, func(page []pubsub.Connection) error {
		n += len(page)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return n
}

// TestAPruneThatFailsHalfWayCountsWhatItDeleted: a prune whose record
// deletes fail part of the way (a BatchWriteItem answered 500, or
// throttled past the retries) has deleted the records of the calls that
// went through, and says so: its counts (what --json prints) are what the
// table lost, and the next run counts the rest. Before, the whole batch
// of 100 counted 0, and the records its first calls deleted were never
// counted by any run.
func TestAPruneThatFailsHalfWayCountsWhatItDeleted(t *testing.T) {
	s := freshStore(t, "prune-half-")
	now := time.Now()
	var conns []pubsub.Connection
	for i := range 100 {
		conns = append(conns, pubsub.Connection{ID: fmt.Sprintf("dead-%03d=", i), Geek: fmt.Sprintf("geek%d", i%5), Topics: []string{"news"},
			ConnectedAt: now.Add(-3 * time.Hour)})
	}
	if err := s.ImportConnections(t.Context(), conns); err != nil {
		t.Fatal(err)
	}
	faulty := awsops.NewDynamoStore(&failingRecordDeletes{DynamoDBAPI: awsops.NewDynamoDB(awsops.LocalConfig(), dynamoLocal(t)), ok: 2}, s.Tables())
	res, err := ops.Prune(t.Context(), faulty, nil, ops.PruneOptions{Now: now, Segments: 1})
	if err == nil {
		t.Fatalf("Prune with failing deletes = %+v, nil; want an error", res)
	}
	left := countRecords(t, s)
	if left == len(conns) {
		t.Fatal("no record was deleted: the test tested nothing")
	}
	if got, want := res.Deleted.Total(), len(conns)-left; got != want || res.Deleted.TooOld != want {
		t.Errorf("the failed run reported %+v deleted; the table lost %d records", res.Deleted, want)
	}
	// The next run deletes and counts the rest.
	res, err = ops.Prune(t.Context(), s, nil, ops.PruneOptions{Now: now})
	if err != nil {
		t.Fatal(err)
	}
	if res.Deleted.TooOld != left || countRecords(t, s) != 0 {
		t.Errorf("the next run deleted %+v with %d records left; want %d too old and none left", res.Deleted, countRecords(t, s), left)
	}
}

// failingChatterDeletes is DynamoDB Local on which the DeleteItem calls
// of the chatter table after the first ok fail; a call either happens
// whole or not at all.
type failingChatterDeletes struct {
	awsops.DynamoDBAPI
	table string
	ok    int

	mu    sync.Mutex
	calls int
}

func (f *failingChatterDeletes) DeleteItem(ctx context.Context, in *dynamodb.DeleteItemInput, opts ...func(*dynamodb.Options)) (*dynamodb.DeleteItemOutput, error) {
	if aws.ToString(in.TableName) == f.table {
		f.mu.Lock()
		f.calls++
		fail := f.calls > f.ok
		f.mu.Unlock()
		if fail {
			return nil, errors.New("InternalServerError: injected by the test")
		}
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return f.DynamoDBAPI.DeleteItem(context.WithoutCancel(ctx), in, opts...)
}

// TestAPruneWhoseChatterDeletesFailCountsWhatItDeleted: the expired
// chatter IDs a prune deleted before a delete failed are counted
// (chatterIdsDeleted), not reported as 0.
func TestAPruneWhoseChatterDeletesFailCountsWhatItDeleted(t *testing.T) {
	s := freshStore(t, "prune-chatter-")
	now := time.Now()
	// Expired over five years ago, which DynamoDB Local's TTL sweeper
	// (every 10 s) leaves alone: expired an hour ago, some were swept
	// while the run went on, and the table lost more than it deleted.
	expired := now.AddDate(-6, 0, 0)
	for i := range 40 {
		if err := s.PutChatterID(t.Context(), store.ChatterID{Geek: "alice", Hash: fmt.Sprintf("ab%02d", i), IssuedAt: expired.Add(-48 * time.Hour), ExpiresAt: expired}); err != nil {
			t.Fatal(err)
		}
	}
	faulty := awsops.NewDynamoStore(&failingChatterDeletes{DynamoDBAPI: awsops.NewDynamoDB(awsops.LocalConfig(), dynamoLocal(t)), table: s.Tables().ChatterIDs, ok: 10}, s.Tables())
	res, err := ops.Prune(t.Context(), faulty, nil, ops.PruneOptions{Now: now})
	if err == nil {
		t.Fatalf("Prune with failing chatter deletes = %+v, nil; want an error", res)
	}
	ids, err := s.ListChatterIDs(t.Context(), "")
	if err != nil {
		t.Fatal(err)
	}
	if got, want := res.ChatterIDs, 40-len(ids); got != want || want == 0 {
		t.Errorf("the failed run reported %d chatter IDs deleted; the table lost %d", got, want)
	}
}

// cancelAfterCopies is DynamoDB Local on which the first BatchWriteItem
// that deletes connection records cancels the run instead (Ctrl-C between
// the copies' deletes and the records').
type cancelAfterCopies struct {
	awsops.DynamoDBAPI
	cancel context.CancelFunc
}

func (c *cancelAfterCopies) BatchWriteItem(ctx context.Context, in *dynamodb.BatchWriteItemInput, opts ...func(*dynamodb.Options)) (*dynamodb.BatchWriteItemOutput, error) {
	for _, reqs := range in.RequestItems {
		for _, r := range reqs {
			if sk, ok := r.DeleteRequest.Key["sk"].(*types.AttributeValueMemberS); ok && sk.Value == "CONN" {
				c.cancel()
				return nil, ctx.Err()
			}
		}
	}
	return c.DynamoDBAPI.BatchWriteItem(ctx, in, opts...)
}

// TestAPruneStoppedBetweenTheCopiesAndTheRecordsLeavesWholeRecords: Ctrl-C
// after a batch's geek and subscription items are deleted and before its
// records are: the run says it was cancelled and counts nothing deleted,
// gives the lease up (the next run takes it at once, not after its
// minute), and the next run deletes the records, counted.
func TestAPruneStoppedBetweenTheCopiesAndTheRecordsLeavesWholeRecords(t *testing.T) {
	s := freshStore(t, "prune-ctrlc-")
	now := time.Now()
	var conns []pubsub.Connection
	for i := range 30 {
		conns = append(conns, pubsub.Connection{ID: fmt.Sprintf("dead-%03d=", i), Geek: "geek", Topics: []string{"news"}, ConnectedAt: now.Add(-3 * time.Hour)})
	}
	if err := s.ImportConnections(t.Context(), conns); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	stopping := awsops.NewDynamoStore(&cancelAfterCopies{DynamoDBAPI: awsops.NewDynamoDB(awsops.LocalConfig(), dynamoLocal(t)), cancel: cancel}, s.Tables())
	res, err := ops.Prune(ctx, stopping, nil, ops.PruneOptions{Now: now, Segments: 1})
	if !errors.Is(err, context.Canceled) || res.Deleted.Total() != 0 {
		t.Fatalf("Prune cancelled between the copies and the records = %+v, %v; want none deleted and context.Canceled", res, err)
	}
	if left := countRecords(t, s); left != len(conns) {
		t.Fatalf("%d records left; want all %d", left, len(conns))
	}
	// Given up: taken at once (a lease left behind lasts a minute).
	lctx, lcancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer lcancel()
	res, err = ops.Prune(lctx, s, nil, ops.PruneOptions{Now: now})
	if err != nil {
		t.Fatalf("the next run: %v", err)
	}
	if res.Deleted.TooOld != len(conns) || countRecords(t, s) != 0 {
		t.Errorf("the next run deleted %+v with %d records left; want all %d, none left", res.Deleted, countRecords(t, s), len(conns))
	}
}
