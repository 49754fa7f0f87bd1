package awsops

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/socks-dev/socks/pubsub"
)

// readOnlyDynamo is DynamoDB Local for credentials that may only read:
// every write fails the test.
type readOnlyDynamo struct {
	DynamoDBAPI
	t *testing.T
}

func (r readOnlyDynamo) PutItem(context.Context, *dynamodb.PutItemInput, ...func(*dynamodb.Options)) (*dynamodb.PutItemOutput, error) {
	r.t.Error("PutItem: the check wrote")
	return nil, fmt.Errorf("AccessDenied")
}

func (r readOnlyDynamo) UpdateItem(context.Context, *dynamodb.UpdateItemInput, ...func(*dynamodb.Options)) (*dynamodb.UpdateItemOutput, error) {
	r.t.Error("UpdateItem: the check wrote")
	return nil, fmt.Errorf("AccessDenied")
}

func (r readOnlyDynamo) DeleteItem(context.Context, *dynamodb.DeleteItemInput, ...func(*dynamodb.Options)) (*dynamodb.DeleteItemOutput, error) {
	r.t.Error("DeleteItem: the check wrote")
	return nil, fmt.Errorf("AccessDenied")
}

func (r readOnlyDynamo) BatchWriteItem(context.Context, *dynamodb.BatchWriteItemInput, ...func(*dynamodb.Options)) (*dynamodb.BatchWriteItemOutput, error) {
	r.t.Error("BatchWriteItem: the check wrote")
	return nil, fmt.Errorf("AccessDenied")
}

func (r readOnlyDynamo) TransactWriteItems(context.Context, *dynamodb.TransactWriteItemsInput, ...func(*dynamodb.Options)) (*dynamodb.TransactWriteItemsOutput, error) {
	r.t.Error("TransactWriteItems: the check wrote")
	return nil, fmt.Errorf("AccessDenied")
}

// TestPendingMigrationCountsWhatAMigrationWouldChangeReadingOnly: the
// check doctor runs finds the records a writer of the earlier layout left
// (a record without its geek item, a geek item whose record is gone, one
// with the record's old topics), counts exactly what MigrateGeekItems
// would change when it reads the whole table (of one page or several),
// never reads more than it was allowed, and writes nothing.
func TestPendingMigrationCountsWhatAMigrationWouldChangeReadingOnly(t *testing.T) {
	s := newTestStore(t)
	ctx := t.Context()
	ro := NewDynamoStore(readOnlyDynamo{DynamoDBAPI: s.api, t: t}, s.tables)
	now := time.Now()
	conn := func(id, geek string, topics ...string) pubsub.Connection {
		return pubsub.Connection{ID: id, Geek: geek, Topics: topics, ConnectedAt: now, ExpiresAt: now.Add(time.Hour)}
	}
	var current []pubsub.Connection
	for i := range 40 {
		current = append(current, conn(fmt.Sprintf("new-%02d", i), fmt.Sprintf("geek%d", i%4), "news"))
	}
	seedConnections(t, s, current)
	const items = 40 * 3 // record, geek item and subscription item each

	p, err := ro.PendingMigration(ctx, 1000)
	if err != nil {
		t.Fatal(err)
	}
	if p != (PendingMigration{Changes: 0, Read: items, Whole: true}) {
		t.Errorf("on a migrated table PendingMigration = %+v, want nothing pending, %d items read, the whole table", p, items)
	}

	// The earlier layout's writer: a $connect (record and subscription
	// item, no geek item), a $disconnect (record and subscription item
	// deleted, the geek item left) and a subscribe (record and new
	// subscription item at the next version, the geek item left behind).
	oldPut := func(c pubsub.Connection, version int64) {
		t.Helper()
		reqs := []types.WriteRequest{{PutRequest: &types.PutRequest{Item: connItem(c, version)}}}
		for _, topic := range c.Topics {
			reqs = append(reqs, types.WriteRequest{PutRequest: &types.PutRequest{Item: subItem(c, topic, version)}})
		}
		if err := s.batchWrite(ctx, s.tables.Connections, reqs); err != nil {
			t.Fatal(err)
		}
	}
	oldPut(conn("old-connect", "geek9", "news"), 1)
	gone := current[1]
	if err := s.batchWrite(ctx, s.tables.Connections, []types.WriteRequest{
		{DeleteRequest: &types.DeleteRequest{Key: connKey(gone.ID)}},
		{DeleteRequest: &types.DeleteRequest{Key: subKey("news", gone.Geek, gone.ID)}},
	}); err != nil {
		t.Fatal(err)
	}
	moved := current[2]
	moved.Topics = []string{"news", "updates"}
	oldPut(moved, 2)

	want, err := s.MigrateGeekItems(ctx, true)
	if err != nil || want != 3 {
		t.Fatalf("a dry run of the migration = %d, %v; want 3", want, err)
	}
	p, err = ro.PendingMigration(ctx, 1000)
	if err != nil {
		t.Fatal(err)
	}
	if !p.Whole || p.Changes != want || p.Read > 1000 {
		t.Errorf("PendingMigration after the older writes = %+v, want the whole table read and %d changes", p, want)
	}

	// A table bigger than a page of the check: all of it read, every
	// change counted once (the rewritten geek item and its record may
	// come on different pages); with a lower limit, it reads no more.
	var old []types.WriteRequest
	for i := range 200 {
		c := conn(fmt.Sprintf("old-%03d", i), "geek8", "news")
		old = append(old, types.WriteRequest{PutRequest: &types.PutRequest{Item: connItem(c, 1)}})
	}
	if err := s.batchWrite(ctx, s.tables.Connections, old); err != nil {
		t.Fatal(err)
	}
	if want, err = s.MigrateGeekItems(ctx, true); err != nil || want != 203 {
		t.Fatalf("a dry run of the migration = %d, %v; want 203", want, err)
	}
	p, err = ro.PendingMigration(ctx, 100000)
	if err != nil {
		t.Fatal(err)
	}
	if !p.Whole || p.Changes != want || p.Read <= pendingPage {
		t.Errorf("PendingMigration on a table of several pages = %+v, want the whole table read and %d changes", p, want)
	}
	p, err = ro.PendingMigration(ctx, 150)
	if err != nil {
		t.Fatal(err)
	}
	// 200 of the table's 323 items are records without a geek item.
	if p.Whole || p.Changes == 0 || p.Read > 150 {
		t.Errorf("PendingMigration limited to 150 items = %+v, want some changes found in at most 150 items, not the whole table", p)
	}
	for _, limit := range []int{1, 7} {
		p, err = ro.PendingMigration(ctx, limit)
		if err != nil {
			t.Fatal(err)
		}
		if p.Whole || p.Read > limit || p.Read == 0 {
			t.Errorf("PendingMigration limited to %d items = %+v, want at most %d items read, not the whole table", limit, p, limit)
		}
	}

	if _, err := s.MigrateGeekItems(ctx, false); err != nil {
		t.Fatal(err)
	}
	p, err = ro.PendingMigration(ctx, 100000)
	if err != nil {
		t.Fatal(err)
	}
	if !p.Whole || p.Changes != 0 {
		t.Errorf("PendingMigration after the migration = %+v, want nothing pending and the whole table read", p)
	}
}

// slowBatchGet is DynamoDB Local whose BatchGetItem runs past the
// caller's deadline, as on a throttled table near doctor's time limit.
type slowBatchGet struct {
	DynamoDBAPI
}

func (slowBatchGet) BatchGetItem(context.Context, *dynamodb.BatchGetItemInput, ...func(*dynamodb.Options)) (*dynamodb.BatchGetItemOutput, error) {
	return nil, context.DeadlineExceeded
}

// A page whose Scan answered but whose other items were not read in time
// was still counted as read: doctor, stopped at its time limit, said "no
// connection records to migrate in the first N items" of items it had not
// looked at. Only the pages whose changes were counted are read.
func TestPendingMigrationStoppedInAPageCountsOnlyWhatItChecked(t *testing.T) {
	s := newTestStore(t)
	ctx := t.Context()
	c := pubsub.Connection{ID: "old-connect", Geek: "geek9", Topics: []string{"news"}, ConnectedAt: time.Now(), ExpiresAt: time.Now().Add(time.Hour)}
	// A record an earlier socks wrote: no geek item.
	if err := s.batchWrite(ctx, s.tables.Connections, []types.WriteRequest{{PutRequest: &types.PutRequest{Item: connItem(c, 1)}}}); err != nil {
		t.Fatal(err)
	}
	slow := NewDynamoStore(slowBatchGet{s.api}, s.tables)
	p, err := slow.PendingMigration(ctx, 1000)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want the deadline", err)
	}
	if p.Read != 0 || p.Changes != 0 || p.Whole {
		t.Errorf("PendingMigration stopped in its first page = %+v; want nothing read (the record to migrate was not checked)", p)
	}
}
