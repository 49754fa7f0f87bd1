package awsops

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"golang.org/x/sync/errgroup"

	"github.com/socks-dev/socks/internal/backoff"
)

// MigrateGeekItems brings a connections table written by an earlier socks
// to this version's layout, where every connection record has a geek item
// (GEEK#geek / CONN#id, docs/tables.md) holding a copy of it, which a
// fan-out to users reads. It adds the geek item a record lacks, rewrites
// one whose version is not its record's, and deletes one whose record is
// gone or has another geek. Those last two are what a writer of the
// earlier layout (a Lambda function not updated yet) leaves when it
// changes or deletes a record after a migration, so running it again once
// the last such writer is gone puts every record right.
//
// It reads the records and geek items with a strongly consistent parallel
// Scan of the base table (not the by-geek index, which is eventually
// consistent and may lack a record made a moment ago), and writes each
// change in a transaction that checks that the record and the geek item
// are still as read, so it is safe while the stack serves: whatever
// changed meanwhile is left to the writer of the change. It returns how
// many geek items it added, rewrote or deleted; with dryRun, how many it
// would. `socks provision` runs it; run again, it changes nothing.
func (s *DynamoStore) MigrateGeekItems(ctx context.Context, dryRun bool) (int, error) {
	var (
		mu      sync.Mutex
		records = map[string]item{} // by connection ID
		geeks   []item
	)
	err := s.parallelScan(ctx, s.migrationScan(), broadcastSegments, func(items []item) error {
		mu.Lock()
		defer mu.Unlock()
		for _, it := range items {
			if getS(it, attrSK) == skConnection {
				records[getS(it, attrID)] = it
			} else {
				geeks = append(geeks, it)
			}
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("migrating the connections table: %w", err)
	}
	var fixes []func(context.Context) (bool, error)
	matched := make(map[string]bool, len(records))
	for _, g := range geeks {
		id, geek, gv := getS(g, attrID), getS(g, attrGeek), itemVersion(g)
		rec := records[id]
		switch geekItemChange(rec, g) {
		case changeDelete:
			fixes = append(fixes, func(ctx context.Context) (bool, error) { return s.deleteGeekItem(ctx, geek, id, gv) })
		case changeRewrite:
			matched[id] = true
			fixes = append(fixes, func(ctx context.Context) (bool, error) { return s.putGeekItem(ctx, rec, &gv) })
		default:
			matched[id] = true
		}
	}
	for id, rec := range records {
		if !matched[id] {
			fixes = append(fixes, func(ctx context.Context) (bool, error) { return s.putGeekItem(ctx, rec, nil) })
		}
	}
	if dryRun {
		return len(fixes), nil
	}
	var done atomic.Int64
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(batchWorkers)
	for _, fix := range fixes {
		g.Go(func() error {
			ok, err := fix(gctx)
			if ok {
				done.Add(1)
			}
			return err
		})
	}
	if err := g.Wait(); err != nil {
		return int(done.Load()), fmt.Errorf("migrating the connections table: %w", err)
	}
	return int(done.Load()), nil
}

// putGeekItem writes the geek item of the record rec if the record is
// still at its version and the geek item still absent (was nil) or at
// version *was; ok false when either changed.
func (s *DynamoStore) putGeekItem(ctx context.Context, rec item, was *int64) (bool, error) {
	c, err := itemConnection(rec)
	if err != nil {
		return false, err
	}
	version := itemVersion(rec)
	put := &types.Put{
		TableName:                aws.String(s.tables.Connections),
		Item:                     geekItem(c, version),
		ConditionExpression:      aws.String("attribute_not_exists(#pk)"),
		ExpressionAttributeNames: map[string]string{"#pk": attrPK},
	}
	if was != nil {
		put.ConditionExpression = aws.String("#v = :was")
		put.ExpressionAttributeNames = map[string]string{"#v": attrVersion}
		put.ExpressionAttributeValues = map[string]types.AttributeValue{":was": avN(*was)}
	}
	return s.migrationTx(ctx, "writing the geek item of connection "+c.ID, []types.TransactWriteItem{
		{ConditionCheck: &types.ConditionCheck{
			TableName: aws.String(s.tables.Connections), Key: connKey(c.ID),
			ConditionExpression:       aws.String("#v = :v"),
			ExpressionAttributeNames:  map[string]string{"#v": attrVersion},
			ExpressionAttributeValues: map[string]types.AttributeValue{":v": avN(version)},
		}},
		{Put: put},
	})
}

// deleteGeekItem deletes the geek item of connection id under geek, at
// version was, if its record is still absent or of another geek; ok false
// when either changed.
func (s *DynamoStore) deleteGeekItem(ctx context.Context, geek, id string, was int64) (bool, error) {
	return s.migrationTx(ctx, "deleting the leftover geek item of connection "+id, []types.TransactWriteItem{
		{ConditionCheck: &types.ConditionCheck{
			TableName: aws.String(s.tables.Connections), Key: connKey(id),
			ConditionExpression:       aws.String("attribute_not_exists(#pk) OR #geek <> :geek"),
			ExpressionAttributeNames:  map[string]string{"#pk": attrPK, "#geek": attrGeek},
			ExpressionAttributeValues: map[string]types.AttributeValue{":geek": avS(geek)},
		}},
		{Delete: &types.Delete{
			TableName: aws.String(s.tables.Connections), Key: geekKey(geek, id),
			ConditionExpression:       aws.String("#v = :was"),
			ExpressionAttributeNames:  map[string]string{"#v": attrVersion},
			ExpressionAttributeValues: map[string]types.AttributeValue{":was": avN(was)},
		}},
	})
}

// migrationTx runs one change of the migration: ok false when a condition
// failed (something changed since the read, and its writer put it right).
// A transaction canceled for any other reason (throttled, or in conflict
// with another transaction on the same items) is tried again, up to
// txAttempts times.
func (s *DynamoStore) migrationTx(ctx context.Context, what string, items []types.TransactWriteItem) (bool, error) {
	for attempt := 1; ; attempt++ {
		err := s.transact(ctx, items)
		switch {
		case err == nil:
			return true, nil
		case conditionFailed(err):
			return false, nil
		case !isTxConflict(err):
			return false, err
		case attempt >= txAttempts:
			return false, fmt.Errorf("%s: gave up after %d attempts: %w", what, attempt, err)
		}
		if err := backoff.Sleep(ctx, s.backoff(attempt)); err != nil {
			return false, err
		}
	}
}

// sameConnection reports whether two items hold the same connection
// record. A geek item of the record's version may still differ: left by an
// earlier incarnation of the ID that reached the same version.
func sameConnection(a, b item) bool {
	ca, errA := itemConnection(a)
	cb, errB := itemConnection(b)
	return errA == nil && errB == nil && ca.ID == cb.ID && ca.Geek == cb.Geek &&
		slices.Equal(ca.Topics, cb.Topics) && slices.Equal(ca.Allowed, cb.Allowed) &&
		ca.ConnectedAt.Equal(cb.ConnectedAt) && ca.ExpiresAt.Equal(cb.ExpiresAt)
}

// migrationScan is the Scan of the migration: the connection records and
// the geek items, strongly consistent.
func (s *DynamoStore) migrationScan() *dynamodb.ScanInput {
	return &dynamodb.ScanInput{
		TableName:                aws.String(s.tables.Connections),
		ConsistentRead:           aws.Bool(true),
		FilterExpression:         aws.String("#sk = :conn OR begins_with(#pk, :geek)"),
		ExpressionAttributeNames: map[string]string{"#pk": attrPK, "#sk": attrSK},
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":conn": avS(skConnection),
			":geek": avS(prefixGeek),
		},
	}
}

// The change the migration makes to one geek item (geekItemChange).
const (
	changeNone = iota
	changeAdd
	changeRewrite
	changeDelete
)

// geekItemChange says what the migration does about the geek item g of the
// record rec, either nil when absent: add it (no g), rewrite it from the
// record (another version or other contents) or delete it (no record, or
// the record has another geek).
func geekItemChange(rec, g item) int {
	switch {
	case g == nil && rec == nil:
		return changeNone
	case g == nil:
		return changeAdd
	case rec == nil || getS(rec, attrGeek) != getS(g, attrGeek):
		return changeDelete
	case itemVersion(rec) != itemVersion(g) || !sameConnection(rec, g):
		return changeRewrite
	}
	return changeNone
}

// pendingPage is how many items one page of PendingMigration's Scan reads
// at most.
const pendingPage = 250

// PendingMigration is what DynamoStore.PendingMigration found.
type PendingMigration struct {
	// Changes counts the geek items to add, rewrite or delete that the
	// items read belong to: all of them when Whole.
	Changes int
	// Read counts the items the Scan read (its ScannedCount).
	Read int
	// Whole: the Scan read the whole table.
	Whole bool
}

// PendingMigration tells whether the connections table holds records that
// MigrateGeekItems would change, reading at most maxRead items of it and
// writing nothing (`socks doctor` runs it with read-only credentials).
// It Scans the table as the migration does, strongly consistent, a page
// of at most pendingPage items at a time, and reads the other item of each
// record and geek item found (its geek item, or its record) with a
// consistent BatchGetItem, until the Scan ends or has read maxRead items.
// So the count is the migration's only when the whole table was read;
// otherwise it counts what the items read show. On an error it returns,
// with the error, what the pages it finished showed (Read counts only
// their items). Read while the stack
// serves, a connection made or dropped between the reads of its record
// and its geek item may be counted, as it would be by a dry run of the
// migration.
func (s *DynamoStore) PendingMigration(ctx context.Context, maxRead int) (PendingMigration, error) {
	var p PendingMigration
	seen := map[geekPair]bool{}
	in := s.migrationScan()
	pages := pageTokens{what: "DynamoDB Scan"}
	for p.Read < maxRead {
		in.Limit = aws.Int32(int32(min(pendingPage, maxRead-p.Read)))
		out, err := s.api.Scan(ctx, in)
		if err != nil {
			return p, fmt.Errorf("reading the connections table: %w", wrapTable("Scan", s.tables.Connections, err))
		}
		s.itemsRead.Add(int64(out.ScannedCount))
		n, err := s.pendingChanges(ctx, out.Items, seen)
		if err != nil {
			// p is what the pages before this one showed.
			return p, fmt.Errorf("reading the connections table: %w", err)
		}
		p.Read += int(out.ScannedCount)
		p.Changes += n
		if len(out.LastEvaluatedKey) == 0 {
			p.Whole = true
			return p, nil
		}
		if err := pages.nextKey(out.LastEvaluatedKey); err != nil {
			return p, fmt.Errorf("reading the connections table: %w", wrapTable("Scan", s.tables.Connections, err))
		}
		in.ExclusiveStartKey = out.LastEvaluatedKey
	}
	return p, nil
}

// geekPair names a record's geek item, or a geek item: its geek and the
// connection ID.
type geekPair struct{ geek, id string }

// pendingChanges counts the changes the migration would make to the pairs
// of record and geek item that items (records and geek items of one
// page) belong to, reading the other item of each pair; the pairs in seen
// were counted already (the record and its geek item on different pages)
// and are not counted again.
func (s *DynamoStore) pendingChanges(ctx context.Context, items []item, seen map[geekPair]bool) (int, error) {
	var (
		pairs []geekPair
		keys  []item
		asked = map[string]bool{}
	)
	ask := func(k item) {
		if key := getS(k, attrPK) + "\x00" + getS(k, attrSK); !asked[key] {
			asked[key] = true
			keys = append(keys, k)
		}
	}
	for _, it := range items {
		pr := geekPair{getS(it, attrGeek), getS(it, attrID)}
		if seen[pr] {
			continue
		}
		seen[pr] = true
		pairs = append(pairs, pr)
		ask(connKey(pr.id))
		ask(geekKey(pr.geek, pr.id))
	}
	got, err := s.batchGet(ctx, s.tables.Connections, keys)
	if err != nil {
		return 0, err
	}
	records, geeks := map[string]item{}, map[geekPair]item{}
	for _, it := range got {
		if getS(it, attrSK) == skConnection {
			records[getS(it, attrID)] = it
		} else {
			geeks[geekPair{getS(it, attrGeek), getS(it, attrID)}] = it
		}
	}
	n := 0
	for _, pr := range pairs {
		rec, g := records[pr.id], geeks[pr]
		if g == nil && rec != nil && getS(rec, attrGeek) != pr.geek {
			// A geek item of another geek, gone since the Scan: the
			// record's own pair is counted where the Scan finds it.
			continue
		}
		if geekItemChange(rec, g) != changeNone {
			n++
		}
	}
	return n, nil
}
