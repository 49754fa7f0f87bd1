package awsops

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"golang.org/x/sync/errgroup"

	"github.com/socks-dev/socks/internal/backoff"
	"github.com/socks-dev/socks/pubsub"
)

// MigrateGeekItems brings a connections table written by an earlier socks
// to this version's layout: it adds the geek item (GEEK#geek / CONN#id,
// docs/tables.md) of every connection record that has none, so that a
// fan-out to users finds the connections made before the upgrade. It walks
// the by-geek index, looks the geek items up with consistent BatchGetItem
// calls, and writes each missing one in a transaction that checks the
// record's version, so it is safe while the stack serves: a record changed
// or deleted meanwhile is skipped (the writer of the change wrote its geek
// item). It returns how many it added; with dryRun, how many it would add.
// `socks provision` runs it; running it again adds nothing.
func (s *DynamoStore) MigrateGeekItems(ctx context.Context, dryRun bool) (int, error) {
	var (
		mu      sync.Mutex
		records []item
	)
	err := s.parallelScan(ctx, &dynamodb.ScanInput{
		TableName: aws.String(s.tables.Connections),
		IndexName: aws.String(ByGeekIndex),
	}, broadcastSegments, func(items []item) error {
		mu.Lock()
		records = append(records, items...)
		mu.Unlock()
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("migrating the connections table: %w", err)
	}
	keys := make([]item, 0, len(records))
	for _, it := range records {
		keys = append(keys, geekKey(getS(it, attrGeek), getS(it, attrID)))
	}
	have, err := s.batchGet(ctx, s.tables.Connections, keys)
	if err != nil {
		return 0, fmt.Errorf("migrating the connections table: %w", err)
	}
	present := make(map[string]bool, len(have))
	for _, it := range have {
		present[itemKey(it)] = true
	}
	var missing []item
	for _, it := range records {
		if !present[itemKey(geekKey(getS(it, attrGeek), getS(it, attrID)))] {
			missing = append(missing, it)
		}
	}
	if dryRun {
		return len(missing), nil
	}
	var added atomic.Int64
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(batchWorkers)
	for _, it := range missing {
		g.Go(func() error {
			c, err := itemConnection(it)
			if err != nil {
				return err
			}
			ok, err := s.addGeekItem(gctx, c, itemVersion(it))
			if ok {
				added.Add(1)
			}
			return err
		})
	}
	if err := g.Wait(); err != nil {
		return int(added.Load()), fmt.Errorf("migrating the connections table: %w", err)
	}
	return int(added.Load()), nil
}

// addGeekItem writes the geek item of c if the record is still at version
// and the item is still absent; ok false when either changed. A
// transaction canceled for any other reason (throttled, or in conflict
// with another transaction on the same items) is tried again, up to
// txAttempts times.
func (s *DynamoStore) addGeekItem(ctx context.Context, c pubsub.Connection, version int64) (bool, error) {
	table := aws.String(s.tables.Connections)
	for attempt := 1; ; attempt++ {
		err := s.transact(ctx, []types.TransactWriteItem{
			{ConditionCheck: &types.ConditionCheck{
				TableName: table, Key: connKey(c.ID),
				ConditionExpression:       aws.String("#v = :v"),
				ExpressionAttributeNames:  map[string]string{"#v": attrVersion},
				ExpressionAttributeValues: map[string]types.AttributeValue{":v": avN(version)},
			}},
			{Put: &types.Put{
				TableName: table, Item: geekItem(c, version),
				ConditionExpression:      aws.String("attribute_not_exists(#pk)"),
				ExpressionAttributeNames: map[string]string{"#pk": attrPK},
			}},
		})
		switch {
		case err == nil:
			return true, nil
		case conditionFailed(err):
			return false, nil
		case !isTxConflict(err):
			return false, err
		case attempt >= txAttempts:
			return false, fmt.Errorf("adding the geek item of connection %s: gave up after %d attempts: %w", c.ID, attempt, err)
		}
		if err := backoff.Sleep(ctx, s.backoff(attempt)); err != nil {
			return false, err
		}
	}
}
