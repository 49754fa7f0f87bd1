package awsops

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/smithy-go"

	"github.com/socks-dev/socks/pubsub"
	"github.com/socks-dev/socks/store"
)

// fakeDynamo implements the DynamoDBAPI methods a test sets; any other call
// panics through the nil embedded interface.
type fakeDynamo struct {
	DynamoDBAPI
	getItem        func(*dynamodb.GetItemInput) (*dynamodb.GetItemOutput, error)
	batchWriteItem func(*dynamodb.BatchWriteItemInput) (*dynamodb.BatchWriteItemOutput, error)
	transact       func(*dynamodb.TransactWriteItemsInput) (*dynamodb.TransactWriteItemsOutput, error)
	deleteItem     func(*dynamodb.DeleteItemInput) (*dynamodb.DeleteItemOutput, error)
	batchGetItem   func(*dynamodb.BatchGetItemInput) (*dynamodb.BatchGetItemOutput, error)
	scan           func(*dynamodb.ScanInput) (*dynamodb.ScanOutput, error)
	queryItems     func(*dynamodb.QueryInput) (*dynamodb.QueryOutput, error)
}

func (f *fakeDynamo) Scan(_ context.Context, in *dynamodb.ScanInput, _ ...func(*dynamodb.Options)) (*dynamodb.ScanOutput, error) {
	return f.scan(in)
}

func (f *fakeDynamo) Query(_ context.Context, in *dynamodb.QueryInput, _ ...func(*dynamodb.Options)) (*dynamodb.QueryOutput, error) {
	return f.queryItems(in)
}

func (f *fakeDynamo) BatchGetItem(_ context.Context, in *dynamodb.BatchGetItemInput, _ ...func(*dynamodb.Options)) (*dynamodb.BatchGetItemOutput, error) {
	return f.batchGetItem(in)
}

func (f *fakeDynamo) GetItem(_ context.Context, in *dynamodb.GetItemInput, _ ...func(*dynamodb.Options)) (*dynamodb.GetItemOutput, error) {
	return f.getItem(in)
}

func (f *fakeDynamo) BatchWriteItem(_ context.Context, in *dynamodb.BatchWriteItemInput, _ ...func(*dynamodb.Options)) (*dynamodb.BatchWriteItemOutput, error) {
	return f.batchWriteItem(in)
}

func (f *fakeDynamo) TransactWriteItems(_ context.Context, in *dynamodb.TransactWriteItemsInput, _ ...func(*dynamodb.Options)) (*dynamodb.TransactWriteItemsOutput, error) {
	return f.transact(in)
}

func (f *fakeDynamo) DeleteItem(_ context.Context, in *dynamodb.DeleteItemInput, _ ...func(*dynamodb.Options)) (*dynamodb.DeleteItemOutput, error) {
	return f.deleteItem(in)
}

func newFakeStore(api DynamoDBAPI) (*DynamoStore, *[]int) {
	s := NewDynamoStore(api, TablesFor("fake"))
	var mu sync.Mutex
	var backoffs []int
	s.backoff = func(attempt int) time.Duration {
		mu.Lock()
		defer mu.Unlock()
		backoffs = append(backoffs, attempt)
		return 0
	}
	return s, &backoffs
}

func chatterKeys(n int) []item {
	keys := make([]item, n)
	for i := range keys {
		keys[i] = chatterKey("Friendless", fmt.Sprintf("%064d", i))
	}
	return keys
}

func TestBatchWriteRetriesUnprocessedItems(t *testing.T) {
	t.Run("unprocessed items are sent again until every item is written", func(t *testing.T) {
		var mu sync.Mutex
		written := make(map[string]int)
		calls := 0
		api := &fakeDynamo{batchWriteItem: func(in *dynamodb.BatchWriteItemInput) (*dynamodb.BatchWriteItemOutput, error) {
			mu.Lock()
			defer mu.Unlock()
			calls++
			reqs := in.RequestItems["fake-chatter"]
			if len(reqs) > maxBatchWrite {
				t.Errorf("a batch of %d items, more than %d", len(reqs), maxBatchWrite)
			}
			// Throttle: process only the first three of each call.
			done := min(3, len(reqs))
			for _, r := range reqs[:done] {
				written[getS(r.DeleteRequest.Key, attrSK)]++
			}
			out := &dynamodb.BatchWriteItemOutput{}
			if done < len(reqs) {
				out.UnprocessedItems = map[string][]types.WriteRequest{"fake-chatter": reqs[done:]}
			}
			return out, nil
		}}
		s, backoffs := newFakeStore(api)
		if n, err := s.batchDelete(t.Context(), "fake-chatter", chatterKeys(30)); err != nil || n != 30 {
			t.Fatalf("batchDelete = %d, %v; want 30 processed", n, err)
		}
		if len(written) != 30 {
			t.Errorf("%d distinct items written, want 30", len(written))
		}
		for k, n := range written {
			if n != 1 {
				t.Errorf("%s written %d times", k, n)
			}
		}
		// 25 items in chunk one take 9 calls, 5 in chunk two take 2.
		if calls != 11 || len(*backoffs) != 9 {
			t.Errorf("%d calls and %d backoffs, want 11 and 9", calls, len(*backoffs))
		}
	})
	t.Run("items that stay unprocessed fail loudly after the bounded attempts", func(t *testing.T) {
		api := &fakeDynamo{batchWriteItem: func(in *dynamodb.BatchWriteItemInput) (*dynamodb.BatchWriteItemOutput, error) {
			return &dynamodb.BatchWriteItemOutput{UnprocessedItems: in.RequestItems}, nil
		}}
		s, _ := newFakeStore(api)
		n, err := s.batchDelete(t.Context(), "fake-chatter", chatterKeys(3))
		if n != 0 {
			t.Errorf("batchDelete processed %d of the items that stayed unprocessed", n)
		}
		if err == nil || !strings.Contains(err.Error(), "left 3 items unprocessed after 10 attempts") {
			t.Errorf("batchDelete = %v, want it to give up after 10 attempts", err)
		}
	})
	t.Run("a cancelled context stops the retries", func(t *testing.T) {
		api := &fakeDynamo{batchWriteItem: func(in *dynamodb.BatchWriteItemInput) (*dynamodb.BatchWriteItemOutput, error) {
			return &dynamodb.BatchWriteItemOutput{UnprocessedItems: in.RequestItems}, nil
		}}
		s := NewDynamoStore(api, TablesFor("fake"))
		s.backoff = func(int) time.Duration { return time.Hour }
		ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
		defer cancel()
		if _, err := s.batchDelete(ctx, "fake-chatter", chatterKeys(3)); !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("batchDelete = %v, want the context's error", err)
		}
	})
}

func TestBatchGetAsksAgainForUnprocessedKeys(t *testing.T) {
	records := map[string]item{}
	var keys []item
	for i := range 150 {
		c := pubsub.Connection{ID: fmt.Sprintf("c%03d", i), Geek: "Friendless", Topics: []string{"updates"}}
		records[getS(connKey(c.ID), attrPK)] = connItem(c, 1)
		keys = append(keys, connKey(c.ID))
	}
	t.Run("unprocessed keys are asked for again, consistently, until every item is read", func(t *testing.T) {
		var mu sync.Mutex
		calls := 0
		api := &fakeDynamo{batchGetItem: func(in *dynamodb.BatchGetItemInput) (*dynamodb.BatchGetItemOutput, error) {
			mu.Lock()
			defer mu.Unlock()
			calls++
			ka := in.RequestItems["fake-connections"]
			if len(ka.Keys) > maxBatchGet || !aws.ToBool(ka.ConsistentRead) {
				t.Errorf("a call for %d keys, consistent %v; want at most %d, consistent", len(ka.Keys), aws.ToBool(ka.ConsistentRead), maxBatchGet)
			}
			// Throttled: only the first twenty keys of each call are read.
			done := min(20, len(ka.Keys))
			out := &dynamodb.BatchGetItemOutput{Responses: map[string][]item{}}
			for _, k := range ka.Keys[:done] {
				out.Responses["fake-connections"] = append(out.Responses["fake-connections"], records[getS(k, attrPK)])
			}
			if done < len(ka.Keys) {
				rest := ka
				rest.Keys = ka.Keys[done:]
				out.UnprocessedKeys = map[string]types.KeysAndAttributes{"fake-connections": rest}
			}
			return out, nil
		}}
		s, _ := newFakeStore(api)
		got, err := s.batchGet(t.Context(), "fake-connections", keys)
		if err != nil {
			t.Fatal(err)
		}
		seen := map[string]int{}
		for _, it := range got {
			seen[getS(it, attrID)]++
		}
		if len(got) != 150 || len(seen) != 150 {
			t.Errorf("read %d items, %d distinct; want each of the 150 once", len(got), len(seen))
		}
		// 100 keys take 5 calls, 50 take 3.
		if calls != 8 {
			t.Errorf("%d calls; want 8", calls)
		}
	})
	t.Run("keys that stay unprocessed fail loudly after the bounded attempts", func(t *testing.T) {
		api := &fakeDynamo{batchGetItem: func(in *dynamodb.BatchGetItemInput) (*dynamodb.BatchGetItemOutput, error) {
			return &dynamodb.BatchGetItemOutput{UnprocessedKeys: in.RequestItems}, nil
		}}
		s, _ := newFakeStore(api)
		_, err := s.batchGet(t.Context(), "fake-connections", keys[:3])
		if err == nil || !strings.Contains(err.Error(), "left 3 keys unprocessed after 10 attempts") {
			t.Errorf("batchGet = %v; want it to give up after 10 attempts", err)
		}
		// Told apart from other failures (doctor's migration check
		// says it stopped early, not that permissions are missing).
		if !errors.Is(err, ErrThrottled) {
			t.Errorf("batchGet = %v; want it to be ErrThrottled", err)
		}
	})
}

func TestConnectionUpdatesRetryWhenAnotherWriterWon(t *testing.T) {
	c := pubsub.Connection{ID: "c1", Geek: "Friendless", Topics: []string{"updates"}}
	var mu sync.Mutex
	version := int64(1)
	attempts := 0
	api := &fakeDynamo{
		getItem: func(*dynamodb.GetItemInput) (*dynamodb.GetItemOutput, error) {
			mu.Lock()
			defer mu.Unlock()
			return &dynamodb.GetItemOutput{Item: connItem(c, version)}, nil
		},
		transact: func(in *dynamodb.TransactWriteItemsInput) (*dynamodb.TransactWriteItemsOutput, error) {
			mu.Lock()
			defer mu.Unlock()
			attempts++
			if attempts == 1 {
				// Someone else subscribed in between.
				version++
				return nil, &types.TransactionCanceledException{
					Message:             aws.String("Transaction cancelled"),
					CancellationReasons: []types.CancellationReason{{Code: aws.String("None")}, {Code: aws.String("ConditionalCheckFailed")}},
				}
			}
			last := in.TransactItems[len(in.TransactItems)-1].Put
			if v := last.ExpressionAttributeValues[":v"].(*types.AttributeValueMemberN).Value; v != fmt.Sprint(version) {
				t.Errorf("the retry is conditioned on version %s, want the re-read %d", v, version)
			}
			return &dynamodb.TransactWriteItemsOutput{}, nil
		},
	}
	s, backoffs := newFakeStore(api)
	got, err := s.AddTopics(t.Context(), "c1", []string{"news"}, 0)
	if err != nil {
		t.Fatal(err)
	}
	if attempts != 2 || len(*backoffs) != 1 {
		t.Errorf("%d attempts and %d backoffs, want 2 and 1", attempts, len(*backoffs))
	}
	if strings.Join(got.Topics, ",") != "news,updates" {
		t.Errorf("topics = %q", got.Topics)
	}
}

func TestStoreErrorsAreExplained(t *testing.T) {
	cases := []struct {
		name string
		err  error
		want string
	}{
		{"a missing table", &smithy.OperationError{ServiceID: "DynamoDB", OperationName: "GetItem", Err: &types.ResourceNotFoundException{Message: aws.String("Requested resource not found")}},
			"connection c1: table fake-connections does not exist: run `socks provision`"},
		{"missing permissions", apiErr("GetItem", "AccessDeniedException", "not authorized"),
			"connection c1: access denied: the credentials lack permission for GetItem on table fake-connections"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			api := &fakeDynamo{getItem: func(*dynamodb.GetItemInput) (*dynamodb.GetItemOutput, error) { return nil, tc.err }}
			s, _ := newFakeStore(api)
			_, err := s.GetConnection(t.Context(), "c1")
			if err == nil || !strings.HasPrefix(err.Error(), tc.want) {
				t.Errorf("GetConnection = %v, want %q", err, tc.want)
			}
			if errors.Is(err, store.ErrNotFound) {
				t.Error("an AWS failure reads as ErrNotFound")
			}
		})
	}
}

func TestTablesCreateInputs(t *testing.T) {
	tables := TablesFor("prod")
	if tables != (Tables{Connections: "prod-connections", ChatterIDs: "prod-chatter", Reports: "prod-reports", Stack: "prod"}) {
		t.Fatalf("TablesFor = %+v", tables)
	}
	ins := tables.CreateInputs()
	if len(ins) != 3 {
		t.Fatalf("%d inputs", len(ins))
	}
	for _, in := range ins {
		if in.BillingMode != types.BillingModePayPerRequest {
			t.Errorf("%s: billing %s, want on demand", aws.ToString(in.TableName), in.BillingMode)
		}
	}
	conns := ins[0]
	if len(conns.GlobalSecondaryIndexes) != 1 || aws.ToString(conns.GlobalSecondaryIndexes[0].IndexName) != ByGeekIndex {
		t.Errorf("connections table indexes = %+v, want %s", conns.GlobalSecondaryIndexes, ByGeekIndex)
	}
	for _, ttl := range tables.TTLInputs() {
		if aws.ToString(ttl.TimeToLiveSpecification.AttributeName) != "expiresAt" || !aws.ToBool(ttl.TimeToLiveSpecification.Enabled) {
			t.Errorf("TTL of %s = %+v", aws.ToString(ttl.TableName), ttl.TimeToLiveSpecification)
		}
	}
	if err := TablesFor("bad stack").Validate(); err == nil {
		t.Error("a stack with a space validates")
	}
}

func TestItemsRoundTrip(t *testing.T) {
	c := pubsub.Connection{
		ID: "L0SM9cOFvHcCIhw=", Geek: "Friendless", Topics: []string{"news", "updates"},
		ConnectedAt: time.UnixMilli(1700000000123).UTC(), ExpiresAt: time.UnixMilli(1700007200456).UTC(),
	}
	for name, it := range map[string]item{"connection": connItem(c, 3), "subscription": subItem(c, "news", 3)} {
		got, err := itemConnection(it)
		if err != nil {
			t.Fatal(err)
		}
		if got.ID != c.ID || got.Geek != c.Geek || !got.ConnectedAt.Equal(c.ConnectedAt) || !got.ExpiresAt.Equal(c.ExpiresAt) ||
			strings.Join(got.Topics, ",") != "news,updates" || itemVersion(it) != 3 {
			t.Errorf("%s item round trip = %+v", name, got)
		}
		// TTL in whole seconds, rounded up: never before the expiry.
		if ttl, _ := getN(it, attrTTL); ttl != 1700007201 {
			t.Errorf("%s item expiresAt = %d, want 1700007201", name, ttl)
		}
	}
	if got := getS(subItem(c, "news", 1), attrSK); got != "GEEK#Friendless#CONN#L0SM9cOFvHcCIhw=" {
		t.Errorf("subscription sort key = %q", got)
	}
}

// TestDeleteReturningCountsOnlyItsOwnDeletes: every DeleteItem is
// conditioned on the item existing, and a delete whose condition failed
// (another caller deleted the item first) is not counted.
func TestDeleteReturningCountsOnlyItsOwnDeletes(t *testing.T) {
	var mu sync.Mutex
	calls := 0
	api := &fakeDynamo{deleteItem: func(in *dynamodb.DeleteItemInput) (*dynamodb.DeleteItemOutput, error) {
		mu.Lock()
		calls++
		mu.Unlock()
		if aws.ToString(in.ConditionExpression) != "attribute_exists(#pk)" || in.ExpressionAttributeNames["#pk"] != attrPK {
			t.Errorf("DeleteItem condition = %q %v; want attribute_exists of the partition key",
				aws.ToString(in.ConditionExpression), in.ExpressionAttributeNames)
		}
		if in.ReturnValues != types.ReturnValueAllOld {
			t.Errorf("DeleteItem ReturnValues = %q; want ALL_OLD", in.ReturnValues)
		}
		// chatterKeys(10) end in the digits 0 to 9: the odd ones are gone.
		if sk := getS(in.Key, attrSK); (sk[len(sk)-1]-'0')%2 == 1 {
			// What DynamoDB answers when the item is already gone; the
			// SDK also hands back the item (empty here) on this error.
			return nil, &types.ConditionalCheckFailedException{Message: aws.String("The conditional request failed")}
		}
		return &dynamodb.DeleteItemOutput{Attributes: in.Key}, nil
	}}
	s, _ := newFakeStore(api)
	olds, err := s.deleteReturning(t.Context(), "fake-chatter", chatterKeys(10))
	if err != nil {
		t.Fatal(err)
	}
	if calls != 10 || len(olds) != 5 {
		t.Errorf("%d DeleteItem calls, %d counted as deleted; want 10 and 5", calls, len(olds))
	}

	api.deleteItem = func(*dynamodb.DeleteItemInput) (*dynamodb.DeleteItemOutput, error) {
		return nil, &smithy.GenericAPIError{Code: "InternalServerError", Message: "boom"}
	}
	if _, err := s.deleteReturning(t.Context(), "fake-chatter", chatterKeys(3)); err == nil {
		t.Error("deleteReturning ignored a failed DeleteItem")
	}
}

// TestConcurrentDeleteConnectionsCountEachRecordOnce races callers of
// DeleteConnections and DeleteExpiredChatterIDs over the same records on
// DynamoDB Local, whose unconditional DeleteItem returns the old image to
// every concurrent delete of an item: between them they must count each
// record exactly once, and delete the subscriptions too.
func TestConcurrentDeleteConnectionsCountEachRecordOnce(t *testing.T) {
	s := newTestStore(t)
	const n, callers = 300, 4
	now := time.Now().Truncate(time.Millisecond)
	longAgo := now.AddDate(-6, 0, 0)
	conns := make([]pubsub.Connection, n)
	ids := make([]string, n)
	for i := range conns {
		ids[i] = fmt.Sprintf("race-%04d=", i)
		conns[i] = pubsub.Connection{
			ID: ids[i], Geek: fmt.Sprintf("geek-%d", i%7), Topics: []string{"news", "updates"},
			// Expired over five years ago, which DynamoDB Local's TTL
			// sweeper (every 10 s) leaves alone: only the callers delete.
			ConnectedAt: now.Add(-3 * time.Hour), ExpiresAt: longAgo,
		}
	}
	seedConnections(t, s, conns)
	for i := range 20 {
		c := store.ChatterID{Geek: "race", Hash: fmt.Sprintf("%064d", i), IssuedAt: longAgo.Add(-time.Hour), ExpiresAt: longAgo}
		if err := s.PutChatterID(t.Context(), c); err != nil {
			t.Fatal(err)
		}
	}

	var wg sync.WaitGroup
	deleted := make([]int, callers)
	chatter := make([]int, callers)
	for i := range callers {
		wg.Go(func() {
			// Each caller goes through the IDs in its own order.
			mine := slices.Clone(ids)
			slices.Reverse(mine[:n*i/callers])
			for part := range slices.Chunk(mine, 50) {
				got, err := s.DeleteConnections(t.Context(), part)
				if err != nil {
					t.Errorf("DeleteConnections: %v", err)
					return
				}
				deleted[i] += got
			}
			got, err := s.DeleteExpiredChatterIDs(t.Context(), now)
			if err != nil {
				t.Errorf("DeleteExpiredChatterIDs: %v", err)
			}
			chatter[i] = got
		})
	}
	wg.Wait()
	var sum, sumChatter int
	for i := range callers {
		sum += deleted[i]
		sumChatter += chatter[i]
	}
	if sum != n || sumChatter != 20 {
		t.Errorf("the callers counted %v = %d connections and %v = %d chatter IDs as deleted; want %d and 20",
			deleted, sum, chatter, sumChatter, n)
	}
	left := 0
	err := s.scan(t.Context(), &dynamodb.ScanInput{TableName: aws.String(s.tables.Connections)}, func(items []item) error {
		left += len(items)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if left != 0 {
		t.Errorf("%d items (records or subscriptions) left in the connections table; want none", left)
	}
}

// TestABatchCallThrottledWholeIsRetriedLikeItsUnprocessedItems: DynamoDB
// answers a BatchWriteItem or BatchGetItem none of whose items it could
// take (all on a hot partition, such as the subscription items of one
// popular topic a prune deletes) with ProvisionedThroughputExceededException
// or ThrottlingException instead of handing them all back unprocessed.
// Past the SDK's retries (3 attempts, fewer once its retry quota is spent
// in a long run), it is the same condition as unprocessed items, and gets
// the same bounded attempts with the store's backoff. Before, it failed
// the call at once: a prune stopped on a hot topic where, with one item
// of the call taken, it would have carried on. Other failures are left to
// the SDK's retries.
func TestABatchCallThrottledWholeIsRetriedLikeItsUnprocessedItems(t *testing.T) {
	for _, throttle := range []error{
		&types.ProvisionedThroughputExceededException{Message: aws.String("The level of configured provisioned throughput for the table was exceeded.")},
		&smithy.GenericAPIError{Code: "ThrottlingException", Message: "Rate of requests exceeds the allowed throughput."},
	} {
		name := throttle.(smithy.APIError).ErrorCode()
		// failing answers the first fails calls with err, then lets ok
		// answer; it counts the calls.
		failing := func(fails int, err error, ok func()) (func() error, *int) {
			var mu sync.Mutex
			calls := 0
			return func() error {
				mu.Lock()
				defer mu.Unlock()
				calls++
				if calls <= fails {
					return err
				}
				ok()
				return nil
			}, &calls
		}
		t.Run(name+" BatchWriteItem", func(t *testing.T) {
			written := 0
			call, calls := failing(3, throttle, func() { written += 3 })
			api := &fakeDynamo{batchWriteItem: func(in *dynamodb.BatchWriteItemInput) (*dynamodb.BatchWriteItemOutput, error) {
				if err := call(); err != nil {
					return nil, err
				}
				return &dynamodb.BatchWriteItemOutput{}, nil
			}}
			s, backoffs := newFakeStore(api)
			n, err := s.batchDelete(t.Context(), "fake-chatter", chatterKeys(3))
			if err != nil || n != 3 || written != 3 {
				t.Fatalf("batchDelete throttled 3 times = %d, %v (%d written); want the 3 written", n, err, written)
			}
			if *calls != 4 || len(*backoffs) != 3 {
				t.Errorf("%d calls and %d backoffs; want 4 and 3", *calls, len(*backoffs))
			}
		})
		t.Run(name+" BatchGetItem", func(t *testing.T) {
			c := pubsub.Connection{ID: "c1", Geek: "Friendless"}
			call, calls := failing(3, throttle, func() {})
			api := &fakeDynamo{batchGetItem: func(in *dynamodb.BatchGetItemInput) (*dynamodb.BatchGetItemOutput, error) {
				if err := call(); err != nil {
					return nil, err
				}
				return &dynamodb.BatchGetItemOutput{Responses: map[string][]item{"fake-connections": {connItem(c, 1)}}}, nil
			}}
			s, backoffs := newFakeStore(api)
			got, err := s.batchGet(t.Context(), "fake-connections", []item{connKey(c.ID)})
			if err != nil || len(got) != 1 {
				t.Fatalf("batchGet throttled 3 times = %d items, %v; want the 1", len(got), err)
			}
			if *calls != 4 || len(*backoffs) != 3 {
				t.Errorf("%d calls and %d backoffs; want 4 and 3", *calls, len(*backoffs))
			}
		})
		t.Run(name+" for ever gives up after the bounded attempts", func(t *testing.T) {
			call, calls := failing(1<<30, throttle, func() {})
			api := &fakeDynamo{batchWriteItem: func(*dynamodb.BatchWriteItemInput) (*dynamodb.BatchWriteItemOutput, error) {
				return nil, call()
			}}
			s, _ := newFakeStore(api)
			n, err := s.batchDelete(t.Context(), "fake-chatter", chatterKeys(3))
			if err == nil || !errors.As(err, new(smithy.APIError)) || n != 0 {
				t.Errorf("batchDelete throttled for ever = %d, %v; want 0 and the throttling error", n, err)
			}
			if *calls != batchAttempts {
				t.Errorf("%d calls; want %d", *calls, batchAttempts)
			}
		})
	}
	t.Run("another failure is not retried", func(t *testing.T) {
		calls := 0
		api := &fakeDynamo{batchWriteItem: func(*dynamodb.BatchWriteItemInput) (*dynamodb.BatchWriteItemOutput, error) {
			calls++
			return nil, &types.InternalServerError{Message: aws.String("past the SDK's retries")}
		}}
		s, _ := newFakeStore(api)
		if _, err := s.batchDelete(t.Context(), "fake-chatter", chatterKeys(3)); err == nil || calls != 1 {
			t.Errorf("batchDelete answered 500 = %v after %d calls; want the error after 1", err, calls)
		}
	})
}

// TestAThrottledPageIsReadAgainNotTheWholeWalk: a Scan or Query page
// that DynamoDB throttled past the SDK's own retries (a hot partition, a
// table at its capacity) stopped the whole walk: prune-stale stopped, a
// broadcast or a topic's fan-out failed the message whole, to be read
// again from the start. The page is asked again, from where the walk
// was, with the store's jittered backoff and the attempts a batch call
// gets; a throttle that never ends still ends the walk.
func TestAThrottledPageIsReadAgainNotTheWholeWalk(t *testing.T) {
	throttle := &types.ProvisionedThroughputExceededException{Message: aws.String("The level of configured provisioned throughput for the table was exceeded.")}
	c1 := pubsub.Connection{ID: "c1", Geek: "Friendless", Topics: []string{"news"}}
	c2 := pubsub.Connection{ID: "c2", Geek: "Friendless", Topics: []string{"news"}}
	// pages answers two pages (c1, then c2), throttling the second
	// fails times; it records the start key of each call.
	pages := func(fails int) (func(start map[string]types.AttributeValue, one, two item) ([]item, map[string]types.AttributeValue, error), *[]string) {
		var calls []string
		return func(start map[string]types.AttributeValue, one, two item) ([]item, map[string]types.AttributeValue, error) {
			if start == nil {
				calls = append(calls, "first")
				return []item{one}, map[string]types.AttributeValue{"k": avS("c1")}, nil
			}
			calls = append(calls, "second")
			if fails > 0 {
				fails--
				return nil, nil, throttle
			}
			return []item{two}, nil, nil
		}, &calls
	}
	t.Run("Scan", func(t *testing.T) {
		page, calls := pages(3)
		s, backoffs := newFakeStore(&fakeDynamo{scan: func(in *dynamodb.ScanInput) (*dynamodb.ScanOutput, error) {
			items, next, err := page(in.ExclusiveStartKey, connItem(c1, 1), connItem(c2, 1))
			if err != nil {
				return nil, err
			}
			return &dynamodb.ScanOutput{Items: items, LastEvaluatedKey: next}, nil
		}})
		var got []string
		err := s.ScanConnections(t.Context(), 1, func(cs []pubsub.Connection) error {
			for _, c := range cs {
				got = append(got, c.ID)
			}
			return nil
		})
		if err != nil || !slices.Equal(got, []string{"c1", "c2"}) {
			t.Fatalf("ScanConnections with its second page throttled 3 times = %q, %v; want c1 and c2", got, err)
		}
		if want := []string{"first", "second", "second", "second", "second"}; !slices.Equal(*calls, want) || len(*backoffs) != 3 {
			t.Errorf("calls %q and %d backoffs; want %q and 3", *calls, len(*backoffs), want)
		}
	})
	t.Run("Query", func(t *testing.T) {
		page, calls := pages(3)
		s, backoffs := newFakeStore(&fakeDynamo{queryItems: func(in *dynamodb.QueryInput) (*dynamodb.QueryOutput, error) {
			items, next, err := page(in.ExclusiveStartKey, geekItem(c1, 1), geekItem(c2, 1))
			if err != nil {
				return nil, err
			}
			return &dynamodb.QueryOutput{Items: items, LastEvaluatedKey: next}, nil
		}})
		got, err := s.FindTargets(t.Context(), []string{"Friendless"}, []string{"news"}, time.Now())
		if err != nil || len(got) != 2 {
			t.Fatalf("FindTargets with its second page throttled 3 times = %v, %v; want c1 and c2", got, err)
		}
		if want := []string{"first", "second", "second", "second", "second"}; !slices.Equal(*calls, want) || len(*backoffs) != 3 {
			t.Errorf("calls %q and %d backoffs; want %q and 3", *calls, len(*backoffs), want)
		}
	})
	t.Run("for ever", func(t *testing.T) {
		page, calls := pages(1 << 30)
		s, _ := newFakeStore(&fakeDynamo{scan: func(in *dynamodb.ScanInput) (*dynamodb.ScanOutput, error) {
			items, next, err := page(in.ExclusiveStartKey, connItem(c1, 1), connItem(c2, 1))
			if err != nil {
				return nil, err
			}
			return &dynamodb.ScanOutput{Items: items, LastEvaluatedKey: next}, nil
		}})
		err := s.ScanConnections(t.Context(), 1, func([]pubsub.Connection) error { return nil })
		if !errors.As(err, new(*types.ProvisionedThroughputExceededException)) {
			t.Fatalf("ScanConnections throttled for ever = %v; want the throttle", err)
		}
		if n := len(*calls); n != 1+batchAttempts {
			t.Errorf("%d calls; want the first page and %d tries of the second", n, batchAttempts)
		}
	})
}

// TestAWalkStopsAtAPageKeyGivenTwice: the generated Query and Scan
// paginators follow LastEvaluatedKey with no check (the SDK's own
// duplicate-token stop is for string tokens), and so do the bounded
// reads of doctor; an endpoint that answered a page key it gave before
// (stuck on one, or going round two) had a fan-out, a prune, a count or
// doctor's reads ask for pages for ever. Each walk now stops there with
// an error saying so, as the control plane's listings do (pageTokens).
// The fake gives up after 50 pages, so that the code before this fix
// fails here rather than spinning.
func TestAWalkStopsAtAPageKeyGivenTwice(t *testing.T) {
	c := pubsub.Connection{ID: "c1", Geek: "Friendless", Topics: []string{"news"}}
	errGaveUp := errors.New("the fake endpoint gave up after 50 pages")
	for _, keys := range []struct {
		name string
		ring []string // the keys given in turn, round and round
	}{
		{"stuck on one key", []string{"a"}},
		{"going round two keys", []string{"a", "b"}},
	} {
		// page answers the nth call: one item and the next key of the
		// ring, ScannedCount 0 (a hostile endpoint: doctor's reads,
		// bounded by the items read, would not end either).
		var calls int
		page := func() (map[string]types.AttributeValue, error) {
			calls++
			if calls > 50 {
				return nil, errGaveUp
			}
			return map[string]types.AttributeValue{attrPK: avS(keys.ring[(calls-1)%len(keys.ring)]), attrSK: avS("x")}, nil
		}
		s, _ := newFakeStore(&fakeDynamo{
			scan: func(in *dynamodb.ScanInput) (*dynamodb.ScanOutput, error) {
				next, err := page()
				if err != nil {
					return nil, err
				}
				return &dynamodb.ScanOutput{Items: []item{connItem(c, 1)}, Count: 1, LastEvaluatedKey: next}, nil
			},
			queryItems: func(in *dynamodb.QueryInput) (*dynamodb.QueryOutput, error) {
				next, err := page()
				if err != nil {
					return nil, err
				}
				return &dynamodb.QueryOutput{Items: []item{geekItem(c, 1)}, Count: 1, LastEvaluatedKey: next}, nil
			},
			// (The migration's read asks for the geek items of what it
			// scanned: none.)
			batchGetItem: func(*dynamodb.BatchGetItemInput) (*dynamodb.BatchGetItemOutput, error) {
				return &dynamodb.BatchGetItemOutput{}, nil
			},
		})
		for _, w := range []struct {
			name string
			walk func(context.Context) error
		}{
			{"a parallel Scan of the connections (prune)", func(ctx context.Context) error {
				return s.ScanConnections(ctx, 1, func([]pubsub.Connection) error { return nil })
			}},
			{"a Query of a geek's connections (fan-out)", func(ctx context.Context) error {
				_, err := s.FindTargets(ctx, []string{"Friendless"}, []string{"news"}, time.Now())
				return err
			}},
			{"a count of live chatter IDs (Query)", func(ctx context.Context) error {
				_, err := s.CountLiveChatterIDs(ctx, "Friendless", time.Now())
				return err
			}},
			{"a count of expired chatter IDs (Scan)", func(ctx context.Context) error {
				_, err := s.CountExpiredChatterIDs(ctx, time.Now())
				return err
			}},
			{"doctor's bounded read of the connections", func(ctx context.Context) error {
				_, err := s.ReadConnections(ctx, 1000, func([]pubsub.Connection) error { return nil })
				return err
			}},
			{"doctor's bounded read of the migration", func(ctx context.Context) error {
				_, err := s.PendingMigration(ctx, 1000)
				return err
			}},
		} {
			t.Run(w.name+", "+keys.name, func(t *testing.T) {
				calls = 0
				err := w.walk(t.Context())
				if err == nil || errors.Is(err, errGaveUp) || !strings.Contains(err.Error(), "same LastEvaluatedKey twice") {
					t.Fatalf("after %d pages: %v; want it stopped at the key given twice", calls, err)
				}
				if want := len(keys.ring) + 1; calls != want {
					t.Errorf("%d pages read; want %d, up to the first key given again", calls, want)
				}
			})
		}
	}
	// The last page of a walk, and so the only page of most fan-out
	// Queries, costs no allocation.
	if n := testing.AllocsPerRun(100, func() {
		pages := pageTokens{what: "DynamoDB Query"}
		if pages.nextKey(nil) != nil {
			t.Fatal("a page with no key stopped the walk")
		}
	}); n != 0 {
		t.Errorf("a walk of one page allocates %v times; want 0", n)
	}
}
