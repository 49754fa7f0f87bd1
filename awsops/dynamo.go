package awsops

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/socks-dev/socks/internal/backoff"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"golang.org/x/sync/errgroup"

	"github.com/socks-dev/socks/pubsub"
	"github.com/socks-dev/socks/store"
)

// DynamoDBAPI is the part of the DynamoDB client that DynamoStore calls;
// *dynamodb.Client satisfies it.
type DynamoDBAPI interface {
	GetItem(ctx context.Context, params *dynamodb.GetItemInput, optFns ...func(*dynamodb.Options)) (*dynamodb.GetItemOutput, error)
	PutItem(ctx context.Context, params *dynamodb.PutItemInput, optFns ...func(*dynamodb.Options)) (*dynamodb.PutItemOutput, error)
	UpdateItem(ctx context.Context, params *dynamodb.UpdateItemInput, optFns ...func(*dynamodb.Options)) (*dynamodb.UpdateItemOutput, error)
	Query(ctx context.Context, params *dynamodb.QueryInput, optFns ...func(*dynamodb.Options)) (*dynamodb.QueryOutput, error)
	Scan(ctx context.Context, params *dynamodb.ScanInput, optFns ...func(*dynamodb.Options)) (*dynamodb.ScanOutput, error)
	BatchWriteItem(ctx context.Context, params *dynamodb.BatchWriteItemInput, optFns ...func(*dynamodb.Options)) (*dynamodb.BatchWriteItemOutput, error)
	BatchGetItem(ctx context.Context, params *dynamodb.BatchGetItemInput, optFns ...func(*dynamodb.Options)) (*dynamodb.BatchGetItemOutput, error)
	TransactWriteItems(ctx context.Context, params *dynamodb.TransactWriteItemsInput, optFns ...func(*dynamodb.Options)) (*dynamodb.TransactWriteItemsOutput, error)
	DeleteItem(ctx context.Context, params *dynamodb.DeleteItemInput, optFns ...func(*dynamodb.Options)) (*dynamodb.DeleteItemOutput, error)
}

var _ DynamoDBAPI = (*dynamodb.Client)(nil)

var _ store.Store = (*DynamoStore)(nil)

// DynamoDB limits and the store's own bounds.
const (
	// maxBatchWrite is BatchWriteItem's limit.
	maxBatchWrite = 25
	// maxTransact is TransactWriteItems' limit.
	maxTransact = 100
	// batchAttempts bounds the calls for one chunk of a batch whose items
	// keep coming back unprocessed.
	batchAttempts = 10
	// txAttempts bounds the optimistic retries of a connection update that
	// raced another writer.
	txAttempts = 8
	// batchWorkers is how many batch calls one operation runs at once.
	batchWorkers = 8
	// queryWorkers is how many Queries FindTargets runs at once.
	queryWorkers = 16
	// maxScanWorkers bounds the goroutines of a parallel Scan.
	maxScanWorkers = 16
	// broadcastSegments is how many segments a broadcast Scan reads in
	// parallel.
	broadcastSegments = 4
	// listPageSize is how many connections ListConnections hands to fn
	// at once.
	listPageSize = 500
	// reportTTL is how long a report is kept.
	reportTTL = 24 * time.Hour
)

// DynamoStore is the store.Store kept in DynamoDB (docs/tables.md).
//
// Connection topics come back sorted, as in the local backend. Every read
// hides expired items, because DynamoDB's TTL deletes them up to about two
// days late; ScanConnections and ListConnections with IncludeExpired are the
// only ways to see them.
type DynamoStore struct {
	api    DynamoDBAPI
	tables Tables

	itemsRead atomic.Int64

	// now is the clock of report expiry (the Store methods take the time
	// elsewhere).
	now func() time.Time
	// backoff is the pause before retry attempt n (1, 2, ...) of a batch
	// or a transaction.
	backoff func(attempt int) time.Duration
	// leaseRenew is how often a prune renews its lease (LockPrune), and
	// leaseTTL how long the lease lasts after it was written.
	leaseRenew, leaseTTL time.Duration
}

// NewDynamoStore returns a store on the tables, calling api.
func NewDynamoStore(api DynamoDBAPI, tables Tables) *DynamoStore {
	return &DynamoStore{api: api, tables: tables, now: time.Now, backoff: defaultBackoff, leaseRenew: pruneLeaseRenew, leaseTTL: pruneLeaseTTL}
}

// Tables returns the tables the store uses.
func (s *DynamoStore) Tables() Tables { return s.tables }

// ItemsRead counts the items DynamoDB read for this store so far (before
// filters): ScannedCount of every Query and Scan page, plus the items
// GetItem returned. It shows that fan-out is a key lookup:
// finding one geek's connections reads that geek's items only.
func (s *DynamoStore) ItemsRead() int64 { return s.itemsRead.Load() }

// defaultBackoff is exponential with full jitter: up to 50 ms, 100 ms, ...
// capped at 5 s.
func defaultBackoff(attempt int) time.Duration {
	return backoff.FullJitter(attempt-1, 50*time.Millisecond, 5*time.Second)
}

// ---------------------------------------------------------------- chatter IDs

// PutChatterID records an issued chatter ID (its hash only), replacing one
// with the same geek and hash.
func (s *DynamoStore) PutChatterID(ctx context.Context, c store.ChatterID) error {
	if c.Hash == "" {
		return fmt.Errorf("recording a chatter ID for %s: the hash is empty", c.Geek)
	}
	_, err := s.api.PutItem(ctx, &dynamodb.PutItemInput{
		TableName: aws.String(s.tables.ChatterIDs),
		Item:      chatterItem(c),
	})
	if err != nil {
		return fmt.Errorf("recording a chatter ID for %s: %w", c.Geek, wrapTable("PutItem", s.tables.ChatterIDs, err))
	}
	return nil
}

// VerifyChatterID reads the item keyed by the secret's hash under geek
// (a strongly consistent GetItem, so an ID works at once after it was
// issued), compares the hashes in constant time, and returns nil,
// store.ErrUnauthorized or store.ErrExpired.
func (s *DynamoStore) VerifyChatterID(ctx context.Context, geek, secret string, now time.Time) (store.ChatterID, error) {
	want := pubsub.HashChatterID(secret)
	out, err := s.api.GetItem(ctx, &dynamodb.GetItemInput{
		TableName:      aws.String(s.tables.ChatterIDs),
		Key:            chatterKey(geek, want),
		ConsistentRead: aws.Bool(true),
	})
	if err != nil {
		return store.ChatterID{}, fmt.Errorf("verifying a chatter ID for %s: %w", geek, wrapTable("GetItem", s.tables.ChatterIDs, err))
	}
	if out.Item == nil {
		return store.ChatterID{}, fmt.Errorf("geek %s: %w", geek, store.ErrUnauthorized)
	}
	s.itemsRead.Add(1)
	c, err := itemChatterID(out.Item)
	if subtle.ConstantTimeCompare([]byte(c.Hash), []byte(want)) != 1 || c.Geek != geek {
		return store.ChatterID{}, fmt.Errorf("geek %s: %w", geek, store.ErrUnauthorized)
	}
	if err != nil {
		// Refused, never read as "any topic".
		return store.ChatterID{}, &store.UnusableChatterIDError{Geek: geek, Fingerprint: c.Fingerprint(), Reason: err.Error()}
	}
	if c.Expired(now) {
		return store.ChatterID{}, fmt.Errorf("geek %s: %w", geek, store.ErrExpired)
	}
	return c, nil
}

// ListChatterIDs lists the chatter IDs of geek with a Query, or of every
// geek with a Scan of the chatter table (an operator listing) when geek is
// "", expired ones included, ordered by geek then issue time.
func (s *DynamoStore) ListChatterIDs(ctx context.Context, geek string) ([]store.ChatterID, error) {
	var out []store.ChatterID
	collect := func(items []item) error {
		for _, it := range items {
			// Listed, counted and pruned even when its allowed topics
			// cannot be read: VerifyChatterID refuses it, and the
			// listing says why.
			c, err := itemChatterID(it)
			if err != nil {
				c.Refused = err.Error()
			}
			out = append(out, c)
		}
		return nil
	}
	var err error
	if geek == "" {
		err = s.scan(ctx, &dynamodb.ScanInput{TableName: aws.String(s.tables.ChatterIDs)}, collect)
	} else {
		err = s.query(ctx, s.chatterQuery(geek, ""), collect)
	}
	if err != nil {
		return nil, fmt.Errorf("listing chatter IDs: %w", err)
	}
	slices.SortFunc(out, func(a, b store.ChatterID) int {
		if c := strings.Compare(a.Geek, b.Geek); c != 0 {
			return c
		}
		if c := a.IssuedAt.Compare(b.IssuedAt); c != 0 {
			return c
		}
		return strings.Compare(a.Hash, b.Hash)
	})
	return out, nil
}

// chatterQuery finds geek's chatter IDs whose hash starts with prefix.
func (s *DynamoStore) chatterQuery(geek, prefix string) *dynamodb.QueryInput {
	return &dynamodb.QueryInput{
		TableName:              aws.String(s.tables.ChatterIDs),
		KeyConditionExpression: aws.String("#pk = :pk AND begins_with(#sk, :sk)"),
		ExpressionAttributeNames: map[string]string{
			"#pk": attrPK,
			"#sk": attrSK,
		},
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":pk": avS(prefixGeek + geek),
			":sk": avS(prefixChatter + prefix),
		},
		ConsistentRead: aws.Bool(true),
	}
}

var _ store.LiveChatterIDCounter = (*DynamoStore)(nil)

// CountLiveChatterIDs counts geek's chatter IDs live at now with a Query
// that asks for COUNT, the expiry a filter: no item comes back, whatever
// number of expired ones the geek has left. An item without a numeric
// expiresAtMs is not live, as VerifyChatterID refuses it. The Query still
// pages at 1 MB of items evaluated; the count is of every page.
func (s *DynamoStore) CountLiveChatterIDs(ctx context.Context, geek string, now time.Time) (int, error) {
	in := s.chatterQuery(geek, "")
	in.Select = types.SelectCount
	in.FilterExpression = aws.String("#exp > :now")
	in.ExpressionAttributeNames["#exp"] = attrExpiresAtMs
	in.ExpressionAttributeValues[":now"] = avN(millis(now))
	n := 0
	p := dynamodb.NewQueryPaginator(s.api, in)
	pages := pageTokens{what: "DynamoDB Query"}
	for p.HasMorePages() {
		out, err := nextPage(ctx, s, p.NextPage)
		if err == nil {
			err = pages.nextKey(out.LastEvaluatedKey)
		}
		if err != nil {
			return 0, wrapTable("Query", s.tables.ChatterIDs, err)
		}
		s.itemsRead.Add(int64(out.ScannedCount))
		n += int(out.Count)
	}
	return n, nil
}

// RevokeChatterIDs deletes geek's chatter IDs whose hash starts with one of
// prefixes (a Query on the sort key per prefix). A nil prefixes revokes all
// of geek's IDs; an empty non-nil slice and empty prefixes revoke nothing.
func (s *DynamoStore) RevokeChatterIDs(ctx context.Context, geek string, prefixes []string) (int, error) {
	if prefixes == nil {
		prefixes = []string{""}
	} else {
		prefixes = slices.DeleteFunc(slices.Clone(prefixes), func(p string) bool { return p == "" })
	}
	found := make(map[string]bool)
	var keys []item
	for _, p := range pubsub.Unique(prefixes) {
		err := s.query(ctx, s.chatterQuery(geek, p), func(items []item) error {
			for _, it := range items {
				// By its key: the hash attribute of an item a backend
				// wrote may be missing or wrong.
				sk := getS(it, attrSK)
				if !found[sk] {
					found[sk] = true
					keys = append(keys, item{attrPK: it[attrPK], attrSK: it[attrSK]})
				}
			}
			return nil
		})
		if err != nil {
			return 0, fmt.Errorf("revoking chatter IDs of %s: %w", geek, err)
		}
	}
	if _, err := s.batchDelete(ctx, s.tables.ChatterIDs, keys); err != nil {
		return 0, fmt.Errorf("revoking chatter IDs of %s: %w", geek, err)
	}
	return len(keys), nil
}

// DeleteExpiredChatterIDs removes the chatter IDs expired at now,
// including items without a numeric expiresAtMs, which VerifyChatterID
// refuses as expired. It scans the chatter table: TTL does the same job for
// free, this is for operators who want it done now.
func (s *DynamoStore) DeleteExpiredChatterIDs(ctx context.Context, now time.Time) (int, error) {
	var keys []item
	err := s.scan(ctx, s.expiredChatterScan(now), func(items []item) error {
		for _, it := range items {
			keys = append(keys, item{attrPK: it[attrPK], attrSK: it[attrSK]})
		}
		return nil
	})
	var olds []item
	if err == nil {
		// DeleteItem with the old image, so that concurrent runs count
		// each deletion once.
		olds, err = s.deleteReturning(ctx, s.tables.ChatterIDs, keys)
	}
	if err != nil {
		// Those deleted before the failure are gone all the same.
		return len(olds), fmt.Errorf("deleting expired chatter IDs: %w", err)
	}
	return len(olds), nil
}

// CountExpiredChatterIDs counts the chatter IDs DeleteExpiredChatterIDs
// would remove at now: the same Scan with Select COUNT, so that no item
// comes back (prune-stale's dry run).
func (s *DynamoStore) CountExpiredChatterIDs(ctx context.Context, now time.Time) (int, error) {
	in := s.expiredChatterScan(now)
	in.Select = types.SelectCount
	n := 0
	p := dynamodb.NewScanPaginator(s.api, in)
	pages := pageTokens{what: "DynamoDB Scan"}
	for p.HasMorePages() {
		out, err := nextPage(ctx, s, p.NextPage)
		if err == nil {
			err = pages.nextKey(out.LastEvaluatedKey)
		}
		if err != nil {
			return 0, fmt.Errorf("counting expired chatter IDs: %w", wrapTable("Scan", s.tables.ChatterIDs, err))
		}
		s.itemsRead.Add(int64(out.ScannedCount))
		n += int(out.Count)
	}
	return n, nil
}

// expiredChatterScan is the Scan of the chatter IDs expired at now,
// including items without a numeric expiresAtMs, which VerifyChatterID
// refuses as expired.
func (s *DynamoStore) expiredChatterScan(now time.Time) *dynamodb.ScanInput {
	return &dynamodb.ScanInput{
		TableName:                aws.String(s.tables.ChatterIDs),
		FilterExpression:         aws.String("NOT attribute_type(#exp, :n) OR #exp <= :now"),
		ExpressionAttributeNames: map[string]string{"#exp": attrExpiresAtMs},
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":now": avN(millis(now)),
			":n":   avS("N"),
		},
	}
}

// ---------------------------------------------------------------- connections

// PutConnection records (or replaces) a connection and its subscription
// items in one transaction, conditioned on the record's version so that a
// concurrent update is never half-overwritten. Geek and topics must be valid
// names (a *pubsub.InvalidError otherwise): they are parts of keys.
func (s *DynamoStore) PutConnection(ctx context.Context, c pubsub.Connection) error {
	if c.ID == "" {
		return &pubsub.InvalidError{Field: "connection ID", Reason: "is empty"}
	}
	if err := pubsub.ValidateGeek(c.Geek); err != nil {
		return err
	}
	for _, t := range c.Topics {
		if err := pubsub.ValidateTopic(t); err != nil {
			return err
		}
	}
	c.Topics = normalizeTopics(c.Topics)
	_, err := s.update(ctx, c.ID, func(*pubsub.Connection) (*pubsub.Connection, bool, error) {
		return &c, true, nil
	})
	if err != nil {
		return fmt.Errorf("recording connection %s: %w", c.ID, err)
	}
	return nil
}

// GetConnection returns a connection record, expired or not (a strongly
// consistent GetItem); store.ErrNotFound if there is none.
func (s *DynamoStore) GetConnection(ctx context.Context, id string) (pubsub.Connection, error) {
	c, _, err := s.readConnection(ctx, id)
	if err != nil {
		return pubsub.Connection{}, fmt.Errorf("connection %s: %w", id, err)
	}
	if c == nil {
		return pubsub.Connection{}, fmt.Errorf("connection %s: %w", id, store.ErrNotFound)
	}
	return *c, nil
}

// AddTopics subscribes a connection to more topics, up to max in all, and
// returns the updated record; store.ErrNotFound if the connection is
// unknown, store.ErrLimit (with the record as it is) if it would follow
// more than max. The count is taken from the record read and the write is
// conditioned on that record's version, so a concurrent subscribe from any
// other client makes this one read again and count again.
func (s *DynamoStore) AddTopics(ctx context.Context, id string, topics []string, max int) (pubsub.Connection, error) {
	for _, t := range topics {
		if err := pubsub.ValidateTopic(t); err != nil {
			return pubsub.Connection{}, err
		}
	}
	if max < 1 {
		max = pubsub.MaxTopicsPerConnection
	}
	over := 0
	c, err := s.update(ctx, id, func(old *pubsub.Connection) (*pubsub.Connection, bool, error) {
		over = 0
		if old == nil {
			return nil, false, store.ErrNotFound
		}
		next := *old
		next.Topics = normalizeTopics(append(slices.Clone(old.Topics), topics...))
		if len(next.Topics) > max {
			over = len(next.Topics)
			return old, false, nil
		}
		return &next, !slices.Equal(next.Topics, old.Topics), nil
	})
	if err != nil {
		return pubsub.Connection{}, fmt.Errorf("subscribing connection %s: %w", id, err)
	}
	if over > 0 {
		return *c, fmt.Errorf("subscribing connection %s would make %d topics, over %d: %w", id, over, max, store.ErrLimit)
	}
	return *c, nil
}

// RemoveTopics unsubscribes a connection from topics and returns the
// updated record; store.ErrNotFound if the connection is unknown. Topics the
// connection does not follow are ignored.
func (s *DynamoStore) RemoveTopics(ctx context.Context, id string, topics []string) (pubsub.Connection, error) {
	c, err := s.update(ctx, id, func(old *pubsub.Connection) (*pubsub.Connection, bool, error) {
		if old == nil {
			return nil, false, store.ErrNotFound
		}
		next := *old
		next.Topics = slices.DeleteFunc(slices.Clone(old.Topics), func(t string) bool { return slices.Contains(topics, t) })
		return &next, len(next.Topics) != len(old.Topics), nil
	})
	if err != nil {
		return pubsub.Connection{}, fmt.Errorf("unsubscribing connection %s: %w", id, err)
	}
	return *c, nil
}

// DeleteConnection removes a connection, its geek item and all its
// subscriptions, found from the topic list on the connection item, in one
// transaction. Deleting
// an unknown ID is not an error.
func (s *DynamoStore) DeleteConnection(ctx context.Context, id string) error {
	_, err := s.update(ctx, id, func(old *pubsub.Connection) (*pubsub.Connection, bool, error) {
		return nil, old != nil, nil
	})
	if err != nil {
		return fmt.Errorf("deleting connection %s: %w", id, err)
	}
	return nil
}

var _ store.GoneConnectionDeleter = (*DynamoStore)(nil)

// DeleteGoneConnection deletes connection id, which the Management API
// answered 410 Gone, as DeleteConnection does (the same read and
// transaction), unless its record connected less than pubsub.ConnectWindow
// before now: that connection may still be in its $connect, which wrote the
// record before API Gateway opens it.
func (s *DynamoStore) DeleteGoneConnection(ctx context.Context, id string, now time.Time) (bool, error) {
	deleted := false
	_, err := s.update(ctx, id, func(old *pubsub.Connection) (*pubsub.Connection, bool, error) {
		deleted = old != nil && now.Sub(old.ConnectedAt) >= pubsub.ConnectWindow
		return nil, deleted, nil
	})
	if err != nil {
		return false, fmt.Errorf("connection %s: %w", id, err)
	}
	return deleted, nil
}

// DeleteConnections removes many connections at once and returns how many
// this call removed. It reads the records (consistent BatchGetItem) and
// deletes their geek and subscription items with BatchWriteItem first, the
// records last, each with DeleteItem returning its old image, so that two
// prunes racing over the same records count each deletion once; the copies
// named by an old image of another version than the one read (a subscribe
// in between) are deleted after. A call that fails half way leaves whole
// records, which name what is left of theirs, for the next one; never a
// geek or subscription item without its record. Unlike DeleteConnection it
// does not guard against a concurrent subscribe on the same connection: it
// is meant for pruning dead ones.
func (s *DynamoStore) DeleteConnections(ctx context.Context, ids []string) (int, error) {
	keys := make([]item, 0, len(ids))
	for _, id := range pubsub.Unique(ids) {
		keys = append(keys, connKey(id))
	}
	records, err := s.batchGet(ctx, s.tables.Connections, keys)
	if err != nil {
		return 0, fmt.Errorf("reading %d connection records: %w", len(keys), err)
	}
	// read holds the version of each record read.
	read := make(map[string]int64, len(records))
	var deps []item
	for _, it := range records {
		c, err := itemConnection(it)
		if err != nil {
			return 0, err
		}
		read[c.ID] = itemVersion(it)
		deps = append(deps, dependentKeys(c)...)
	}
	if _, err := s.batchDelete(ctx, s.tables.Connections, deps); err != nil {
		return 0, fmt.Errorf("deleting the subscriptions of %d connections: %w", len(records), err)
	}
	olds, err := s.deleteReturning(ctx, s.tables.Connections, keys)
	if err != nil {
		// The records deleted before the failure are gone all the same.
		return len(olds), fmt.Errorf("deleting %d connections: %w", len(ids), err)
	}
	var late []item
	for _, old := range olds {
		c, err := itemConnection(old)
		if err != nil {
			return 0, err
		}
		if v, ok := read[c.ID]; !ok || v != itemVersion(old) {
			// Written since the read (every write raises the version,
			// and rewrites the copies): delete what it names.
			late = append(late, dependentKeys(c)...)
		}
	}
	if _, err := s.batchDelete(ctx, s.tables.Connections, late); err != nil {
		return len(olds), fmt.Errorf("deleting the subscriptions of %d connections: %w", len(olds), err)
	}
	return len(olds), nil
}

// dependentKeys are the keys of the items that go with connection c's
// record: its geek item and one subscription item per topic.
func dependentKeys(c pubsub.Connection) []item {
	keys := make([]item, 0, 1+len(c.Topics))
	keys = append(keys, geekKey(c.Geek, c.ID))
	for _, t := range c.Topics {
		keys = append(keys, subKey(t, c.Geek, c.ID))
	}
	return keys
}

// deleteConcurrency bounds the DeleteItem calls deleteReturning makes at
// once.
const deleteConcurrency = 16

// deleteReturning deletes keys from table with DeleteItem (ReturnValues
// ALL_OLD), in parallel, and returns the old images of the items that
// existed: exactly the ones this call deleted.
//
// Each delete is conditioned on the item existing, and an item whose
// condition failed (ConditionalCheckFailedException: someone else deleted
// it first) is not counted. The old image of an unconditional DeleteItem
// does not prove that this call deleted the item: DynamoDB Local returns it
// to every one of several concurrent deletes of the same item, so two
// prunes at once would each count it. A conditional delete is decided
// atomically, so exactly one of them succeeds.
func (s *DynamoStore) deleteReturning(ctx context.Context, table string, keys []item) ([]item, error) {
	var (
		mu   sync.Mutex
		olds []item
	)
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(deleteConcurrency)
	for _, k := range keys {
		g.Go(func() error {
			out, err := s.api.DeleteItem(gctx, &dynamodb.DeleteItemInput{
				TableName:                aws.String(table),
				Key:                      k,
				ConditionExpression:      aws.String("attribute_exists(#pk)"),
				ExpressionAttributeNames: map[string]string{"#pk": attrPK},
				ReturnValues:             types.ReturnValueAllOld,
			})
			var gone *types.ConditionalCheckFailedException
			if errors.As(err, &gone) {
				return nil
			}
			if err != nil {
				return wrapTable("DeleteItem", table, err)
			}
			if len(out.Attributes) > 0 {
				mu.Lock()
				olds = append(olds, out.Attributes)
				mu.Unlock()
			}
			return nil
		})
	}
	err := g.Wait()
	return olds, err
}

// readConnection reads a connection item with a strongly consistent
// GetItem; nil if there is none.
func (s *DynamoStore) readConnection(ctx context.Context, id string) (*pubsub.Connection, int64, error) {
	out, err := s.api.GetItem(ctx, &dynamodb.GetItemInput{
		TableName:      aws.String(s.tables.Connections),
		Key:            connKey(id),
		ConsistentRead: aws.Bool(true),
	})
	if err != nil {
		return nil, 0, wrapTable("GetItem", s.tables.Connections, err)
	}
	if out.Item == nil {
		return nil, 0, nil
	}
	s.itemsRead.Add(1)
	c, err := itemConnection(out.Item)
	if err != nil {
		return nil, 0, err
	}
	return &c, itemVersion(out.Item), nil
}

// update reads connection id, asks change for its next state (nil: delete)
// and writes it conditioned on the version read, retrying when another
// writer got there first. It returns the state written (or the current one
// when change asked for no write).
func (s *DynamoStore) update(ctx context.Context, id string, change func(old *pubsub.Connection) (next *pubsub.Connection, write bool, err error)) (*pubsub.Connection, error) {
	for attempt := 1; ; attempt++ {
		old, version, err := s.readConnection(ctx, id)
		if err != nil {
			return nil, err
		}
		next, write, err := change(old)
		if err != nil {
			return nil, err
		}
		if !write {
			if next == nil {
				next = old
			}
			return next, nil
		}
		err = s.writeConnection(ctx, old, version, next)
		if err == nil {
			return next, nil
		}
		if !isTxConflict(err) {
			return nil, err
		}
		if attempt >= txAttempts {
			return nil, fmt.Errorf("gave up after %d attempts, other writers kept changing the record: %w", attempt, err)
		}
		if err := backoff.Sleep(ctx, s.backoff(attempt)); err != nil {
			return nil, err
		}
	}
}

// writeConnection replaces the record old (nil: none; version: its version)
// by next (nil: delete) with its geek item and its subscription items.
// Everything goes in one transaction when it fits in 100 actions (a record
// with 50 topics is 52); otherwise the deletions and puts of the
// subscription items go first in transactions that check the record's
// version, and the record itself last with its geek item.
func (s *DynamoStore) writeConnection(ctx context.Context, old *pubsub.Connection, version int64, next *pubsub.Connection) error {
	table := aws.String(s.tables.Connections)
	id := ""
	if old != nil {
		id = old.ID
	} else {
		id = next.ID
	}
	cond := aws.String("attribute_not_exists(#pk)")
	names := map[string]string{"#pk": attrPK}
	var values map[string]types.AttributeValue
	if old != nil {
		cond = aws.String("#v = :v")
		names = map[string]string{"#v": attrVersion}
		values = map[string]types.AttributeValue{":v": avN(version)}
	}

	keep := make(map[string]bool)
	var others []types.TransactWriteItem
	if next != nil {
		for _, t := range next.Topics {
			keep[t+"\x00"+next.Geek] = true
		}
	}
	if old != nil {
		for _, t := range old.Topics {
			if !keep[t+"\x00"+old.Geek] {
				others = append(others, types.TransactWriteItem{Delete: &types.Delete{
					TableName: table, Key: subKey(t, old.Geek, old.ID),
				}})
			}
		}
	}
	// The geek item follows the record, in the record's own transaction
	// (the last part of a write in parts): deleted with it, moved when
	// the geek changes, rewritten with every new version. Written in an
	// earlier part, it stood at the next version beside the record at its
	// own, and a migration between the parts put it back to the record.
	var final []types.TransactWriteItem
	if old != nil && (next == nil || next.Geek != old.Geek) {
		final = append(final, types.TransactWriteItem{Delete: &types.Delete{
			TableName: table, Key: geekKey(old.Geek, old.ID),
		}})
	}
	if next != nil {
		final = append(final, types.TransactWriteItem{Put: &types.Put{
			TableName: table, Item: geekItem(*next, version+1),
		}})
		for _, t := range next.Topics {
			others = append(others, types.TransactWriteItem{Put: &types.Put{
				TableName: table, Item: subItem(*next, t, version+1),
			}})
		}
		final = append(final, types.TransactWriteItem{Put: &types.Put{
			TableName: table, Item: connItem(*next, version+1),
			ConditionExpression: cond, ExpressionAttributeNames: names, ExpressionAttributeValues: values,
		}})
	} else {
		final = append(final, types.TransactWriteItem{Delete: &types.Delete{
			TableName: table, Key: connKey(id),
			ConditionExpression: cond, ExpressionAttributeNames: names, ExpressionAttributeValues: values,
		}})
	}
	for len(others)+len(final) > maxTransact {
		n := min(len(others), maxTransact-1)
		part := others[:n]
		others = others[n:]
		check := types.TransactWriteItem{ConditionCheck: &types.ConditionCheck{
			TableName: table, Key: connKey(id),
			ConditionExpression: cond, ExpressionAttributeNames: names, ExpressionAttributeValues: values,
		}}
		if err := s.transact(ctx, append(slices.Clone(part), check)); err != nil {
			return err
		}
	}
	return s.transact(ctx, append(others, final...))
}

func (s *DynamoStore) transact(ctx context.Context, items []types.TransactWriteItem) error {
	_, err := s.api.TransactWriteItems(ctx, &dynamodb.TransactWriteItemsInput{TransactItems: items})
	return wrapTable("TransactWriteItems", s.tables.Connections, err)
}

// isTxConflict reports whether a transaction failed because another writer
// changed the record (or DynamoDB throttled it), so a retry can succeed.
func isTxConflict(err error) bool {
	var tc *types.TransactionCanceledException
	if errors.As(err, &tc) {
		for _, r := range tc.CancellationReasons {
			switch aws.ToString(r.Code) {
			case "ConditionalCheckFailed", "TransactionConflict", "ThrottlingError", "ProvisionedThroughputExceeded":
				return true
			}
		}
		return false
	}
	var conflict *types.TransactionConflictException
	var inProgress *types.TransactionInProgressException
	return errors.As(err, &conflict) || errors.As(err, &inProgress)
}

// conditionFailed reports whether a transaction was canceled because one
// of its conditions failed (the record changed), rather than for a reason
// a retry of the same transaction can get past.
func conditionFailed(err error) bool {
	var tc *types.TransactionCanceledException
	if errors.As(err, &tc) {
		for _, r := range tc.CancellationReasons {
			if aws.ToString(r.Code) == "ConditionalCheckFailed" {
				return true
			}
		}
	}
	return false
}

// batchDelete deletes the items with keys from table and returns how many
// deletes DynamoDB processed, those of the calls that went through before
// a failure included.
func (s *DynamoStore) batchDelete(ctx context.Context, table string, keys []item) (int, error) {
	reqs := make([]types.WriteRequest, len(keys))
	for i, k := range keys {
		reqs[i] = types.WriteRequest{DeleteRequest: &types.DeleteRequest{Key: k}}
	}
	return s.batchWriteCounted(ctx, table, reqs)
}

// batchWrite runs reqs on table with BatchWriteItem in chunks of 25, a few
// chunks at once, sending the items DynamoDB returns unprocessed (or all
// of them, when it throttled the whole call) again after a backoff. It
// fails when a chunk still has unprocessed items after batchAttempts
// calls.
func (s *DynamoStore) batchWrite(ctx context.Context, table string, reqs []types.WriteRequest) error {
	_, err := s.batchWriteCounted(ctx, table, reqs)
	return err
}

// batchWriteCounted is batchWrite, and returns how many of reqs DynamoDB
// processed: all of them, or on a failure those of the calls that went
// through before it (a prune that stops half way counts what it deleted).
func (s *DynamoStore) batchWriteCounted(ctx context.Context, table string, reqs []types.WriteRequest) (int, error) {
	if len(reqs) == 0 {
		return 0, nil
	}
	var done atomic.Int64
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(batchWorkers)
	for part := range slices.Chunk(reqs, maxBatchWrite) {
		g.Go(func() error { return s.batchWriteChunk(gctx, table, part, &done) })
	}
	err := g.Wait()
	return int(done.Load()), err
}

// batchWriteChunk writes pending, adding to done how many DynamoDB
// processed.
func (s *DynamoStore) batchWriteChunk(ctx context.Context, table string, pending []types.WriteRequest, done *atomic.Int64) error {
	for attempt := 1; ; attempt++ {
		out, err := s.api.BatchWriteItem(ctx, &dynamodb.BatchWriteItemInput{
			RequestItems: map[string][]types.WriteRequest{table: pending},
		})
		switch {
		case err != nil && (!isThrottle(err) || attempt >= batchAttempts):
			return wrapTable("BatchWriteItem", table, err)
		case err != nil:
			// None of the items taken: DynamoDB says so with a throttling
			// error rather than handing them all back unprocessed, and
			// they get the same attempts.
		default:
			sent := len(pending)
			pending = out.UnprocessedItems[table]
			done.Add(int64(sent - len(pending)))
			if len(pending) == 0 {
				return nil
			}
			if attempt >= batchAttempts {
				return fmt.Errorf("BatchWriteItem on table %s left %d items unprocessed after %d attempts (%w): try again later", table, len(pending), attempt, ErrThrottled)
			}
		}
		if err := backoff.Sleep(ctx, s.backoff(attempt)); err != nil {
			return err
		}
	}
}

// ---------------------------------------------------------------- reads

// liveFilter keeps the items whose TTL has not passed at now (a coarse,
// second-granular filter: the exact check runs on the result) and the
// items without one.
func liveFilter(now time.Time) (string, map[string]string, map[string]types.AttributeValue) {
	return "attribute_not_exists(#ttl) OR #ttl > :now",
		map[string]string{"#ttl": attrTTL},
		map[string]types.AttributeValue{":now": avN(nowSeconds(now))}
}

// topicQuery finds the subscription items of topic, of geek only when geek
// is not "", live at now unless now is zero.
func (s *DynamoStore) topicQuery(topic, geek string, now time.Time) *dynamodb.QueryInput {
	in := &dynamodb.QueryInput{
		TableName:                 aws.String(s.tables.Connections),
		KeyConditionExpression:    aws.String("#pk = :pk"),
		ExpressionAttributeNames:  map[string]string{"#pk": attrPK},
		ExpressionAttributeValues: map[string]types.AttributeValue{":pk": avS(prefixTopic + topic)},
		ConsistentRead:            aws.Bool(true),
	}
	if geek != "" {
		in.KeyConditionExpression = aws.String("#pk = :pk AND begins_with(#sk, :sk)")
		in.ExpressionAttributeNames["#sk"] = attrSK
		in.ExpressionAttributeValues[":sk"] = avS(geekSortPrefix(geek))
	}
	addFilter(&in.FilterExpression, in.ExpressionAttributeNames, in.ExpressionAttributeValues, now)
	return in
}

// geekQuery finds the geek items of geek: one per connection of geek,
// read from the base table with a strongly consistent Query, so a
// connection made a moment ago is found.
func (s *DynamoStore) geekQuery(geek string, now time.Time) *dynamodb.QueryInput {
	in := &dynamodb.QueryInput{
		TableName:              aws.String(s.tables.Connections),
		KeyConditionExpression: aws.String("#pk = :pk AND begins_with(#sk, :sk)"),
		ExpressionAttributeNames: map[string]string{
			"#pk": attrPK,
			"#sk": attrSK,
		},
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":pk": avS(prefixGeek + geek),
			":sk": avS(prefixConn),
		},
		ConsistentRead: aws.Bool(true),
	}
	addFilter(&in.FilterExpression, in.ExpressionAttributeNames, in.ExpressionAttributeValues, now)
	return in
}

// broadcastScan walks the connection items of the base table with strongly
// consistent reads (the by-geek index could miss a connection made a
// moment ago), keeping the live ones.
func (s *DynamoStore) broadcastScan(now time.Time) *dynamodb.ScanInput {
	in := &dynamodb.ScanInput{
		TableName:                 aws.String(s.tables.Connections),
		ConsistentRead:            aws.Bool(true),
		ExpressionAttributeNames:  map[string]string{"#sk": attrSK},
		ExpressionAttributeValues: map[string]types.AttributeValue{":conn": avS(skConnection)},
	}
	addFilter(&in.FilterExpression, in.ExpressionAttributeNames, in.ExpressionAttributeValues, now)
	in.FilterExpression = aws.String("#sk = :conn AND (" + aws.ToString(in.FilterExpression) + ")")
	if now.IsZero() {
		in.FilterExpression = aws.String("#sk = :conn")
	}
	in.ProjectionExpression = fanOutProjection(in.ExpressionAttributeNames)
	return in
}

// fanOutProjection adds to names the attributes FindTargets reads (a
// connection's ID, geek, topics and times; not the keys, the version or
// the allowed patterns) and returns the ProjectionExpression, so that a
// 1 MB page holds as many subscribers as it can.
func fanOutProjection(names map[string]string) *string {
	attrs := []string{attrID, attrGeek, attrTopics, attrConnectedAt, attrExpiresAtMs}
	refs := make([]string, len(attrs))
	for i, a := range attrs {
		refs[i] = "#p" + strconv.Itoa(i)
		names[refs[i]] = a
	}
	return aws.String(strings.Join(refs, ", "))
}

// connectionScan walks the by-geek index, which holds one item per
// connection.
func (s *DynamoStore) connectionScan(now time.Time) *dynamodb.ScanInput {
	in := &dynamodb.ScanInput{
		TableName: aws.String(s.tables.Connections),
		IndexName: aws.String(ByGeekIndex),
	}
	if !now.IsZero() {
		in.ExpressionAttributeNames = map[string]string{}
		in.ExpressionAttributeValues = map[string]types.AttributeValue{}
		addFilter(&in.FilterExpression, in.ExpressionAttributeNames, in.ExpressionAttributeValues, now)
	}
	return in
}

func addFilter(expr **string, names map[string]string, values map[string]types.AttributeValue, now time.Time) {
	if now.IsZero() {
		return
	}
	f, n, v := liveFilter(now)
	*expr = aws.String(f)
	for k, x := range n {
		names[k] = x
	}
	for k, x := range v {
		values[k] = x
	}
}

// query runs a Query to the end with the generated paginator, calling fn
// with each page's items.
func (s *DynamoStore) query(ctx context.Context, in *dynamodb.QueryInput, fn func([]item) error) error {
	p := dynamodb.NewQueryPaginator(s.api, in)
	pages := pageTokens{what: "DynamoDB Query"}
	for p.HasMorePages() {
		out, err := nextPage(ctx, s, p.NextPage)
		if err == nil {
			err = pages.nextKey(out.LastEvaluatedKey)
		}
		if err != nil {
			return wrapIndex("Query", aws.ToString(in.TableName), aws.ToString(in.IndexName), err)
		}
		s.itemsRead.Add(int64(out.ScannedCount))
		if len(out.Items) > 0 {
			if err := fn(out.Items); err != nil {
				return err
			}
		}
	}
	return nil
}

// nextPage reads the next page of a paginated Query or Scan (next, a
// paginator's NextPage). A page DynamoDB throttled past the SDK's own
// retries (a hot partition, a table at its capacity) is asked again, from
// where the walk was (a paginator keeps its place on an error), after the
// store's jittered backoff, with the attempts a batch call gets: before,
// it ended the whole walk (a prune, a fan-out read again from the start).
func nextPage[T any](ctx context.Context, s *DynamoStore, next func(context.Context, ...func(*dynamodb.Options)) (T, error)) (T, error) {
	for attempt := 1; ; attempt++ {
		out, err := next(ctx)
		if err == nil || !isThrottle(err) || attempt >= batchAttempts {
			return out, err
		}
		if backoff.Sleep(ctx, s.backoff(attempt)) != nil {
			return out, err
		}
	}
}

// scan runs a Scan to the end (one segment, or the segment of in), calling
// fn with each page's items.
func (s *DynamoStore) scan(ctx context.Context, in *dynamodb.ScanInput, fn func([]item) error) error {
	p := dynamodb.NewScanPaginator(s.api, in)
	pages := pageTokens{what: "DynamoDB Scan"}
	for p.HasMorePages() {
		out, err := nextPage(ctx, s, p.NextPage)
		if err == nil {
			err = pages.nextKey(out.LastEvaluatedKey)
		}
		if err != nil {
			return wrapIndex("Scan", aws.ToString(in.TableName), aws.ToString(in.IndexName), err)
		}
		s.itemsRead.Add(int64(out.ScannedCount))
		if len(out.Items) > 0 {
			if err := fn(out.Items); err != nil {
				return err
			}
		}
	}
	return nil
}

// parallelScan runs in as segments parallel Scan segments (at most 16 at
// once); fn may be called concurrently.
func (s *DynamoStore) parallelScan(ctx context.Context, in *dynamodb.ScanInput, segments int, fn func([]item) error) error {
	segments = max(segments, 1)
	if segments == 1 {
		return s.scan(ctx, in, fn)
	}
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(min(segments, maxScanWorkers))
	for i := range segments {
		seg := *in
		seg.Segment = aws.Int32(int32(i))
		seg.TotalSegments = aws.Int32(int32(segments))
		g.Go(func() error { return s.scan(gctx, &seg, fn) })
	}
	return g.Wait()
}

// connections converts items, keeping those live at now (all when now is
// zero) that follow at least one topic when withTopics.
func connections(items []item, now time.Time, withTopics bool) ([]pubsub.Connection, error) {
	out := make([]pubsub.Connection, 0, len(items))
	for _, it := range items {
		c, err := itemConnection(it)
		if err != nil {
			return nil, err
		}
		if !now.IsZero() && c.Expired(now) {
			continue
		}
		if withTopics && len(c.Topics) == 0 {
			continue
		}
		out = append(out, c)
	}
	return out, nil
}

// FindTargets returns the live connections that an envelope addressed to
// users (empty: everyone) and topics reaches, each once with its full topic
// list, ordered by connection ID, with the semantics of
// pubsub.Connection.Matches. Every read is strongly consistent, on the base
// table, and projects only what a target needs:
//
//   - users given (any topics, "." included): one Query per user of the
//     geek partition GEEK#user, which holds one item per connection of that
//     user with its topic list; the connections that follow none of the
//     topics are dropped here. Queries: users.
//   - topics without users: a Query per topic and one of "." (partitions
//     TOPIC#t). Queries: topics + 1.
//   - "." without users (a broadcast to all) is the one case that Scans:
//     the connection items, in parallel segments.
func (s *DynamoStore) FindTargets(ctx context.Context, users, topics []string, now time.Time) ([]pubsub.Connection, error) {
	users = pubsub.Unique(users)
	topics = pubsub.Unique(topics)
	if len(topics) == 0 {
		return nil, nil
	}
	var mu sync.Mutex
	found := make(map[string]pubsub.Connection)
	collect := func(items []item) error {
		conns, err := connections(items, now, true)
		if err != nil {
			return err
		}
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			if len(users) == 0 || c.Matches(users, topics) {
				found[c.ID] = c
			}
		}
		return nil
	}

	var err error
	switch {
	case len(users) > 0:
		err = s.queries(ctx, len(users), func(i int) *dynamodb.QueryInput { return project(s.geekQuery(users[i], now)) }, collect)
	case slices.Contains(topics, pubsub.AllTopics):
		err = s.parallelScan(ctx, s.broadcastScan(now), broadcastSegments, collect)
	default:
		topics = append(slices.Clip(topics), pubsub.AllTopics)
		err = s.queries(ctx, len(topics), func(i int) *dynamodb.QueryInput { return project(s.topicQuery(topics[i], "", now)) }, collect)
	}
	if err != nil {
		return nil, fmt.Errorf("finding the connections for users %v and topics %v: %w", users, topics, err)
	}
	out := make([]pubsub.Connection, 0, len(found))
	for _, c := range found {
		out = append(out, c)
	}
	slices.SortFunc(out, func(a, b pubsub.Connection) int { return strings.Compare(a.ID, b.ID) })
	return out, nil
}

// project narrows a fan-out Query to the attributes of fanOutProjection.
func project(in *dynamodb.QueryInput) *dynamodb.QueryInput {
	in.ProjectionExpression = fanOutProjection(in.ExpressionAttributeNames)
	return in
}

// queries runs n Queries, up to queryWorkers at once.
func (s *DynamoStore) queries(ctx context.Context, n int, input func(i int) *dynamodb.QueryInput, fn func([]item) error) error {
	if n == 1 {
		return s.query(ctx, input(0), fn)
	}
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(queryWorkers)
	for i := range n {
		g.Go(func() error { return s.query(gctx, input(i), fn) })
	}
	return g.Wait()
}

// ListConnections calls fn with pages of up to 500 connections matching
// filter, ordered by geek then connection ID. filter.Topic matches the
// connections subscribed to exactly that topic (a Query on TOPIC#topic,
// with the GEEK#geek# prefix when filter.Geek is set); filter.Geek alone
// Queries the geek's partition GEEK#geek (its geek items); no filter Scans
// the by-geek index. Expired records are hidden unless
// filter.IncludeExpired. The matches are read in full and sorted before
// the first page is handed over. An error from fn stops the walk and is
// returned as is.
func (s *DynamoStore) ListConnections(ctx context.Context, filter store.ConnectionFilter, now time.Time, fn func([]pubsub.Connection) error) error {
	readAt := now
	if filter.IncludeExpired {
		readAt = time.Time{}
	}
	found := make(map[string]pubsub.Connection)
	collect := func(items []item) error {
		conns, err := connections(items, readAt, false)
		if err != nil {
			return err
		}
		for _, c := range conns {
			found[c.ID] = c
		}
		return nil
	}
	var err error
	switch {
	case filter.Topic != "":
		err = s.query(ctx, s.topicQuery(filter.Topic, filter.Geek, readAt), collect)
	case filter.Geek != "":
		err = s.query(ctx, s.geekQuery(filter.Geek, readAt), collect)
	default:
		err = s.scan(ctx, s.connectionScan(readAt), collect)
	}
	if err != nil {
		return fmt.Errorf("listing connections: %w", err)
	}
	all := make([]pubsub.Connection, 0, len(found))
	for _, c := range found {
		all = append(all, c)
	}
	slices.SortFunc(all, func(a, b pubsub.Connection) int {
		if c := strings.Compare(a.Geek, b.Geek); c != 0 {
			return c
		}
		return strings.Compare(a.ID, b.ID)
	})
	for page := range slices.Chunk(all, listPageSize) {
		if err := fn(page); err != nil {
			return err
		}
	}
	return nil
}

// ConnectionsRead is what ReadConnections read.
type ConnectionsRead struct {
	// Read counts the items of the by-geek index the Scan read (its
	// ScannedCount): one per connection.
	Read int
	// Whole: the Scan read the whole index.
	Whole bool
}

// ReadConnections walks the connection records, expired ones included,
// as ListConnections with IncludeExpired does, but reads at most maxRead
// items of the by-geek index (one per connection), in pages, calling fn
// with the connections of each (a bounded read, as PendingMigration's:
// `socks doctor` on a table of millions).
func (s *DynamoStore) ReadConnections(ctx context.Context, maxRead int, fn func([]pubsub.Connection) error) (ConnectionsRead, error) {
	var r ConnectionsRead
	in := s.connectionScan(time.Time{})
	pages := pageTokens{what: "DynamoDB Scan"}
	for r.Read < maxRead {
		in.Limit = aws.Int32(int32(min(pendingPage, maxRead-r.Read)))
		out, err := s.api.Scan(ctx, in)
		if err != nil {
			return r, fmt.Errorf("listing connections: %w", wrapIndex("Scan", s.tables.Connections, ByGeekIndex, err))
		}
		s.itemsRead.Add(int64(out.ScannedCount))
		r.Read += int(out.ScannedCount)
		conns, err := connections(out.Items, time.Time{}, false)
		if err != nil {
			return r, fmt.Errorf("listing connections: %w", err)
		}
		if len(conns) > 0 {
			if err := fn(conns); err != nil {
				return r, err
			}
		}
		if len(out.LastEvaluatedKey) == 0 {
			r.Whole = true
			return r, nil
		}
		if err := pages.nextKey(out.LastEvaluatedKey); err != nil {
			return r, fmt.Errorf("listing connections: %w", wrapIndex("Scan", s.tables.Connections, ByGeekIndex, err))
		}
		in.ExclusiveStartKey = out.LastEvaluatedKey
	}
	return r, nil
}

// ScanConnections walks every connection record, expired ones included,
// with a parallel Scan (Segment/TotalSegments) of the by-geek index, which
// holds exactly one item per connection, projected to the ID, geek, topics
// and times (not the allowed patterns); at most 16 segments are read at
// once and fn may be called concurrently. The first error stops the walk.
func (s *DynamoStore) ScanConnections(ctx context.Context, segments int, fn func([]pubsub.Connection) error) error {
	in := s.connectionScan(time.Time{})
	in.ExpressionAttributeNames = map[string]string{}
	in.ProjectionExpression = fanOutProjection(in.ExpressionAttributeNames)
	err := s.parallelScan(ctx, in, segments, func(items []item) error {
		conns, err := connections(items, time.Time{}, false)
		if err != nil {
			return err
		}
		if err := fn(conns); err != nil {
			return fnError{err}
		}
		return nil
	})
	var fe fnError
	if errors.As(err, &fe) {
		return fe.err
	}
	if err != nil {
		return fmt.Errorf("scanning connections: %w", err)
	}
	return nil
}

// fnError carries an error of a caller's callback through the scan, so it
// is returned as is.
type fnError struct{ err error }

func (e fnError) Error() string { return e.err.Error() }
func (e fnError) Unwrap() error { return e.err }

// ---------------------------------------------------------------- reports

// PutReport records what the broker did with a message, replacing an
// earlier report for the same message whatever its version (which it
// raises). It expires a day after its At (or after it is written, when At
// is zero).
func (s *DynamoStore) PutReport(ctx context.Context, r store.Report) error {
	return s.writeReport(ctx, r, false)
}

// ReplaceReport records r as PutReport does, conditioned on the stored
// report's version being still r.Version (0: no item, an item older code
// wrote without a version, or one past its TTL that DynamoDB has not
// deleted yet); when it is not, nothing is written and the error wraps
// store.ErrConflict.
func (s *DynamoStore) ReplaceReport(ctx context.Context, r store.Report) error {
	return s.writeReport(ctx, r, true)
}

func (s *DynamoStore) writeReport(ctx context.Context, r store.Report, check bool) error {
	if r.MessageID == "" {
		return errors.New("recording a report: the message ID is empty")
	}
	data, err := json.Marshal(r)
	if err != nil {
		return fmt.Errorf("encoding the report of %s: %w", r.MessageID, err)
	}
	in := &dynamodb.UpdateItemInput{
		TableName:                aws.String(s.tables.Reports),
		Key:                      item{attrReportID: avS(r.MessageID)},
		UpdateExpression:         aws.String("SET #r = :r, #at = :at, #ttl = :ttl ADD #v :one"),
		ExpressionAttributeNames: map[string]string{"#r": attrReport, "#at": attrAt, "#ttl": attrTTL, "#v": attrVersion},
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":r":   avS(string(data)),
			":at":  avN(millis(r.At)),
			":ttl": avN(ttlSeconds(reportExpiry(r, s.now()))),
			":one": avN(1),
		},
	}
	if check {
		in.UpdateExpression = aws.String("SET #r = :r, #at = :at, #ttl = :ttl, #v = :next")
		delete(in.ExpressionAttributeValues, ":one")
		in.ExpressionAttributeValues[":next"] = avN(r.Version + 1)
		if r.Version == 0 {
			in.ConditionExpression = aws.String("attribute_not_exists(#v) OR #ttl <= :now")
			in.ExpressionAttributeValues[":now"] = avN(nowSeconds(s.now()))
		} else {
			in.ConditionExpression = aws.String("#v = :v")
			in.ExpressionAttributeValues[":v"] = avN(r.Version)
		}
	}
	_, err = s.api.UpdateItem(ctx, in)
	var lost *types.ConditionalCheckFailedException
	if errors.As(err, &lost) {
		return fmt.Errorf("recording the report of %s: read at version %d: %w", r.MessageID, r.Version, store.ErrConflict)
	}
	if err != nil {
		return fmt.Errorf("recording the report of %s: %w", r.MessageID, wrapTable("UpdateItem", s.tables.Reports, err))
	}
	return nil
}

// reportExpiry is when r expires: a day after it was made (its At), or
// after now when it has no time.
func reportExpiry(r store.Report, now time.Time) time.Time {
	if r.At.IsZero() {
		return now.Add(reportTTL)
	}
	return r.At.Add(reportTTL)
}

// GetReport returns the report of a message (strongly consistent, since
// `publish --wait` polls for it); store.ErrNotFound until it exists and once
// it has expired.
func (s *DynamoStore) GetReport(ctx context.Context, messageID string) (store.Report, error) {
	out, err := s.api.GetItem(ctx, &dynamodb.GetItemInput{
		TableName:      aws.String(s.tables.Reports),
		Key:            item{attrReportID: avS(messageID)},
		ConsistentRead: aws.Bool(true),
	})
	if err != nil {
		return store.Report{}, fmt.Errorf("report of %s: %w", messageID, wrapTable("GetItem", s.tables.Reports, err))
	}
	if out.Item == nil {
		return store.Report{}, fmt.Errorf("report of %s: %w", messageID, store.ErrNotFound)
	}
	s.itemsRead.Add(1)
	if exp, ok := getCeilN(out.Item, attrTTL); ok && exp <= nowSeconds(s.now()) {
		return store.Report{}, fmt.Errorf("report of %s: %w", messageID, store.ErrNotFound)
	}
	r, err := store.ParseReport([]byte(getS(out.Item, attrReport)))
	if err != nil {
		return store.Report{}, fmt.Errorf("report of %s is damaged: %w", messageID, err)
	}
	r.Version, _ = getN(out.Item, attrVersion)
	return r, nil
}
