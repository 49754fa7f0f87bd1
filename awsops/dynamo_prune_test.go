package awsops

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/socks-dev/socks/pubsub"
)

func TestPruneLeaseLetsOnePruneInAtATime(t *testing.T) {
	a := newTestStore(t)
	bPuts := &cancelAfterPuts{DynamoDBAPI: testDynamoClient(t), after: 3}
	b := NewDynamoStore(bPuts, a.Tables())
	b.backoff = func(int) time.Duration { return time.Millisecond }
	var aWaited, bWaited atomic.Int32
	actx, releaseA, err := a.LockPrune(t.Context(), func() { aWaited.Add(1) })
	if err != nil {
		t.Fatal(err)
	}
	if n := aWaited.Load(); n != 0 {
		t.Errorf("a prune that took a free lease was told %d times that it waits", n)
	}
	// b waits for the lease until its context ends, once it has asked
	// for the lease three times: on that event, not after 500 ms by the
	// clock, which on a loaded machine could pass before DynamoDB Local
	// answered b's first ask, so that b was never told it waits.
	wctx, cancel := context.WithCancel(t.Context())
	bPuts.cancel.Store(&cancel)
	_, _, err = b.LockPrune(wctx, func() { bWaited.Add(1) })
	bPuts.cancel.Store(nil)
	cancel()
	if err == nil {
		t.Fatal("a second prune took the lease while the first held it")
	}
	// Said once, however many times it polled.
	if n := bWaited.Load(); n != 1 {
		t.Errorf("a prune waiting for a held lease was told %d times that it waits; want once", n)
	}
	done := make(chan error, 1)
	go func() {
		_, release, err := b.LockPrune(t.Context(), nil)
		if err == nil {
			release()
		}
		done <- err
	}()
	releaseA()
	if err := <-done; err != nil {
		t.Fatalf("the second prune did not get the lease once it was released: %v", err)
	}
	if actx.Err() == nil {
		t.Error("the context of a released lease is still live")
	}
}

func TestPruneLeaseLapsesAndItsHolderStops(t *testing.T) {
	a := newTestStore(t)
	a.leaseRenew = 20 * time.Millisecond
	actx, releaseA, err := a.LockPrune(t.Context(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer releaseA()
	// Another prune whose clock, the store's, is past the lease's end (as
	// if a had stalled for longer than the lease lasts) takes it over...
	ahead := func(h http.Header) {
		h.Set("Date", time.Now().Add(pruneLeaseTTL+2*time.Second).UTC().Format(http.TimeFormat))
	}
	b := NewDynamoStore(dynamodb.New(testDynamoClient(t).Options(), func(o *dynamodb.Options) {
		o.HTTPClient = &http.Client{Transport: dateSetter{http.DefaultTransport, ahead}}
	}), a.Tables())
	_, releaseB, err := b.LockPrune(t.Context(), nil)
	if err != nil {
		t.Fatalf("a lapsed lease could not be taken: %v", err)
	}
	defer releaseB()
	// ...and a's next renewal fails, which stops a.
	select {
	case <-actx.Done():
	case <-t.Context().Done():
		t.Fatal("the holder of a lapsed lease was not stopped")
	}
	if cause := context.Cause(actx); !errors.Is(cause, ErrPruneLeaseLost) {
		t.Errorf("cause = %v, want ErrPruneLeaseLost", cause)
	}
}

// hotTopics is DynamoDB Local with every topic partition throttled for
// good: BatchWriteItem processes the other items of each call and hands
// the subscription items (TOPIC#...) back unprocessed, as DynamoDB does
// with the writes to a hot partition.
type hotTopics struct{ DynamoDBAPI }

func (h *hotTopics) BatchWriteItem(ctx context.Context, in *dynamodb.BatchWriteItemInput, opts ...func(*dynamodb.Options)) (*dynamodb.BatchWriteItemOutput, error) {
	cool := map[string][]types.WriteRequest{}
	hot := map[string][]types.WriteRequest{}
	for table, reqs := range in.RequestItems {
		for _, r := range reqs {
			var key item
			if r.DeleteRequest != nil {
				key = r.DeleteRequest.Key
			} else {
				key = r.PutRequest.Item
			}
			if strings.HasPrefix(getS(key, attrPK), prefixTopic) {
				hot[table] = append(hot[table], r)
			} else {
				cool[table] = append(cool[table], r)
			}
		}
	}
	if len(cool) > 0 {
		if _, err := h.DynamoDBAPI.BatchWriteItem(ctx, &dynamodb.BatchWriteItemInput{RequestItems: cool}, opts...); err != nil {
			return nil, err
		}
	}
	return &dynamodb.BatchWriteItemOutput{UnprocessedItems: hot}, nil
}

// connectionItems returns the keys of every item of the connections table
// but the prune lease, by kind: the records (by connection ID) and the
// copies (geek and subscription items, by the ID they carry).
func connectionItems(t *testing.T, s *DynamoStore) (records, copies map[string][]string) {
	t.Helper()
	records, copies = map[string][]string{}, map[string][]string{}
	err := s.scan(t.Context(), &dynamodb.ScanInput{TableName: aws.String(s.tables.Connections), ConsistentRead: aws.Bool(true)}, func(items []item) error {
		for _, it := range items {
			pk, sk := getS(it, attrPK), getS(it, attrSK)
			switch {
			case pk == pkPruneLease:
			case sk == skConnection:
				records[getS(it, attrID)] = append(records[getS(it, attrID)], pk)
			default:
				copies[getS(it, attrID)] = append(copies[getS(it, attrID)], pk+" "+sk)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return records, copies
}

// TestAPruneThatFailsHalfWayLeavesNoCopyWithoutItsRecord: when a prune's
// deletes fail part of the way (a hot topic partition throttled past the
// retries; a run killed), every geek or subscription item left still has
// its record, which names it, so the next prune deletes it. A copy left
// without its record is never pruned (the prune walks the records), and a
// fan-out keeps finding it.
func TestAPruneThatFailsHalfWayLeavesNoCopyWithoutItsRecord(t *testing.T) {
	s := newTestStore(t)
	now := time.Now()
	var conns []pubsub.Connection
	var ids []string
	for i := range 60 {
		c := pubsub.Connection{ID: fmt.Sprintf("dead-%02d=", i), Geek: fmt.Sprintf("geek%d", i%4), Topics: []string{"news", "updates"},
			// No expiry: nothing but a prune ever deletes these items.
			ConnectedAt: now.Add(-3 * time.Hour)}
		conns = append(conns, c)
		ids = append(ids, c.ID)
	}
	for _, del := range []struct {
		name string
		fn   func(*DynamoStore) func(context.Context, []string) (int, error)
	}{
		{"DeleteDeadConnections", func(s *DynamoStore) func(context.Context, []string) (int, error) { return s.DeleteDeadConnections }},
		{"DeleteConnections", func(s *DynamoStore) func(context.Context, []string) (int, error) { return s.DeleteConnections }},
	} {
		t.Run(del.name, func(t *testing.T) {
			seedConnections(t, s, conns)
			throttled := NewDynamoStore(&hotTopics{DynamoDBAPI: s.api}, s.tables)
			throttled.backoff = func(int) time.Duration { return 0 }
			if n, err := del.fn(throttled)(t.Context(), ids); err == nil {
				t.Fatalf("%s under a throttled topic partition = %d, nil; want an error", del.name, n)
			}
			records, copies := connectionItems(t, s)
			for id, keys := range copies {
				if len(records[id]) == 0 {
					t.Errorf("%s failed half way and left %q of connection %s without its record", del.name, keys, id)
				}
			}
			if t.Failed() {
				return
			}
			// The next run, not throttled, finishes the job.
			n, err := del.fn(s)(t.Context(), ids)
			if err != nil {
				t.Fatal(err)
			}
			if n != len(records) {
				t.Errorf("the next run deleted %d records; want the %d left", n, len(records))
			}
			if records, copies := connectionItems(t, s); len(records)+len(copies) != 0 {
				t.Errorf("after the next run %d records and the copies of %d connections are left; want none", len(records), len(copies))
			}
		})
	}
}

// stuckRenewals is DynamoDB Local on which every renewal of a prune lease
// (a PutItem conditioned on its owner) hangs until its context ends or
// the test lets it go.
type stuckRenewals struct {
	DynamoDBAPI
	release chan struct{}
}

func (s *stuckRenewals) PutItem(ctx context.Context, in *dynamodb.PutItemInput, opts ...func(*dynamodb.Options)) (*dynamodb.PutItemOutput, error) {
	if cond := aws.ToString(in.ConditionExpression); strings.Contains(cond, "#owner") && !strings.Contains(cond, "attribute_not_exists") {
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-s.release:
		}
	}
	return s.DynamoDBAPI.PutItem(ctx, in, opts...)
}

// TestAPruneWhoseRenewalHangsStopsBeforeItsLeaseLapses: a renewal that
// never answers (a network that drops the request) must not let the
// holder run on past its lease, which another prune may then take: the
// holder's context ends before the lease it last wrote lapses. Before, it
// waited on the renewal for ever, deleting on, while a second prune took
// the lapsed lease; and releasing the lease hung as well.
func TestAPruneWhoseRenewalHangsStopsBeforeItsLeaseLapses(t *testing.T) {
	base := newTestStore(t)
	stuck := &stuckRenewals{DynamoDBAPI: base.api, release: make(chan struct{})}
	a := NewDynamoStore(stuck, base.Tables())
	a.leaseTTL, a.leaseRenew = 2*time.Second, 20*time.Millisecond
	actx, releaseA, err := a.LockPrune(t.Context(), nil)
	if err != nil {
		t.Fatal(err)
	}
	select {
	case <-actx.Done():
	case <-time.After(time.Minute):
		close(stuck.release)
		releaseA()
		t.Fatal("the holder of a lease whose renewal hangs was not stopped")
	}
	if cause := context.Cause(actx); !errors.Is(cause, ErrPruneLeaseLost) {
		t.Errorf("cause = %v, want ErrPruneLeaseLost", cause)
	}
	// Once it lapses, another prune takes it.
	b := NewDynamoStore(base.api, base.Tables())
	wctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	_, releaseB, err := b.LockPrune(wctx, nil)
	if err != nil {
		t.Fatalf("the lapsed lease could not be taken: %v", err)
	}
	releaseB()
	releaseA()
}

// lostLeaseAnswer is an HTTP client for DynamoDB Local that loses the
// answer to the first PutItem of a prune lease: the lease is written, and
// the SDK is told 500, so its retryer sends the PutItem again.
type lostLeaseAnswer struct {
	mu   sync.Mutex
	lost bool
}

func (l *lostLeaseAnswer) Do(req *http.Request) (*http.Response, error) {
	body, err := io.ReadAll(req.Body)
	if err != nil {
		return nil, err
	}
	req.Body = io.NopCloser(bytes.NewReader(body))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	l.mu.Lock()
	lose := !l.lost && strings.HasSuffix(req.Header.Get("X-Amz-Target"), ".PutItem") && bytes.Contains(body, []byte(`"`+pkPruneLease+`"`))
	l.lost = l.lost || lose
	l.mu.Unlock()
	if !lose {
		return resp, nil
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	msg := `{"__type":"com.amazonaws.dynamodb.v20120810#InternalServerError","message":"answer lost"}`
	return &http.Response{
		StatusCode: http.StatusInternalServerError, Status: "500 Internal Server Error", Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
		Header: http.Header{"Content-Type": {"application/x-amz-json-1.0"}, "X-Amzn-Errortype": {"InternalServerError"}},
		Body:   io.NopCloser(strings.NewReader(msg)), ContentLength: int64(len(msg)), Request: req,
	}, nil
}

// TestAPruneWhoseLeaseAnswerWasLostTakesItAtOnce: when DynamoDB wrote the
// lease but its answer was lost, the SDK sends the PutItem again, which
// finds the lease held, by this very prune. It is taken all the same; the
// prune waited for its own lease to lapse, a minute, before.
func TestAPruneWhoseLeaseAnswerWasLostTakesItAtOnce(t *testing.T) {
	base := newTestStore(t)
	endpoint, _ := emulatorEndpoints(t)
	lossy := &lostLeaseAnswer{}
	api := dynamodb.NewFromConfig(dummyConfig(), func(o *dynamodb.Options) {
		o.BaseEndpoint = aws.String(endpoint)
		o.DisableValidateResponseChecksum = true
		o.HTTPClient = lossy
		o.Retryer = retry.NewStandard(func(o *retry.StandardOptions) {
			o.Backoff = retry.BackoffDelayerFunc(func(int, error) (time.Duration, error) { return 0, nil })
		})
	})
	s := NewDynamoStore(api, base.Tables())
	// Far less than the lease's minute: the wait for it ends this.
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	_, release, err := s.LockPrune(ctx, nil)
	if err != nil {
		t.Fatalf("LockPrune after its lease's answer was lost: %v", err)
	}
	release()
	if !lossy.lost {
		t.Error("no lease PutItem answer was lost: the test tested nothing")
	}
}

// subscribeFirst is DynamoDB Local on which, just before the first
// DeleteItem of a connection record, another client subscribes that
// connection to one more topic.
type subscribeFirst struct {
	DynamoDBAPI
	other *DynamoStore
	once  sync.Once
	err   error
}

func (s *subscribeFirst) DeleteItem(ctx context.Context, in *dynamodb.DeleteItemInput, opts ...func(*dynamodb.Options)) (*dynamodb.DeleteItemOutput, error) {
	if pk := getS(in.Key, attrPK); strings.HasPrefix(pk, prefixConn) {
		s.once.Do(func() { _, s.err = s.other.AddTopics(ctx, strings.TrimPrefix(pk, prefixConn), []string{"sport"}, 0) })
	}
	return s.DynamoDBAPI.DeleteItem(ctx, in, opts...)
}

// TestDeleteConnectionsAfterASubscribeLeavesNoCopy: a subscribe landing
// between DeleteConnections' delete of a record's copies and its delete of
// the record writes the copies again (every write rewrites them); the
// record's old image, of a later version than the one read, names them,
// and they are deleted too.
func TestDeleteConnectionsAfterASubscribeLeavesNoCopy(t *testing.T) {
	s := newTestStore(t)
	now := time.Now()
	if err := s.PutConnection(t.Context(), pubsub.Connection{ID: "c1", Geek: "Friendless", Topics: []string{"news"}, ConnectedAt: now, ExpiresAt: now.Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	racing := &subscribeFirst{DynamoDBAPI: s.api, other: s}
	if n, err := NewDynamoStore(racing, s.tables).DeleteConnections(t.Context(), []string{"c1"}); err != nil || n != 1 {
		t.Fatalf("DeleteConnections = %d, %v; want 1", n, err)
	}
	if racing.err != nil {
		t.Fatalf("the racing subscribe: %v", racing.err)
	}
	if records, copies := connectionItems(t, s); len(records)+len(copies) != 0 {
		t.Errorf("left records %v and copies %v; want none", records, copies)
	}
}

// TestTheStoresClockIsAWSsWhateverThisMachinesSays: the records' times are
// AWS's (API Gateway's connectedAt, the Lambda's clock), so prune-stale
// judges them by the time DynamoDB answers with (store.Clock), not by
// this machine's clock, here hours off. The Date header is to the second:
// the time is never later than the service's.
func TestTheStoresClockIsAWSsWhateverThisMachinesSays(t *testing.T) {
	s := newTestStore(t)
	for _, skew := range []time.Duration{3 * time.Hour, -3 * time.Hour} {
		s.now = func() time.Time { return time.Now().Add(skew) }
		before := time.Now().Truncate(time.Second)
		got, err := s.Now(t.Context())
		after := time.Now()
		if err != nil {
			t.Fatal(err)
		}
		if got.Before(before) || got.After(after) {
			t.Errorf("this machine %v off: Now = %v; want from %v to %v, DynamoDB's", skew, got, before, after)
		}
	}
}

// noGetItem is a DynamoDB API whose GetItem is refused, as for a
// publisher's role (docs/deploy.md: Query and PutItem on the chatter
// table only).
type noGetItem struct{ DynamoDBAPI }

func (noGetItem) GetItem(context.Context, *dynamodb.GetItemInput, ...func(*dynamodb.Options)) (*dynamodb.GetItemOutput, error) {
	return nil, errors.New("AccessDeniedException: not authorized to perform dynamodb:GetItem")
}

// TestTheStoresClockIsReadWithAPublishersRights: `socks chatter issue`
// run with the publisher's policy cannot read the connections table;
// the time comes from a Query of the chatter table, which it may run.
func TestTheStoresClockIsReadWithAPublishersRights(t *testing.T) {
	s := newTestStore(t)
	s = NewDynamoStore(noGetItem{s.api}, s.Tables())
	s.now = func() time.Time { return time.Now().Add(3 * time.Hour) }
	before := time.Now().Truncate(time.Second)
	got, err := s.Now(t.Context())
	after := time.Now()
	if err != nil {
		t.Fatal(err)
	}
	if got.Before(before) || got.After(after) {
		t.Errorf("Now = %v; want from %v to %v, DynamoDB's", got, before, after)
	}
}

// dateSetter answers with the Date header its set puts there.
type dateSetter struct {
	next http.RoundTripper
	set  func(h http.Header)
}

func (d dateSetter) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := d.next.RoundTrip(r)
	if err == nil {
		d.set(resp.Header)
	}
	return resp, err
}

// TestAStoresClockWithoutAUsableDateIsThisMachines: a stand-in (a proxy,
// an emulator) that answers without a Date, or with one that is not a
// date, gives no time: the store's clock is this machine's, as before
// there was one, never the zero time (which would make every record
// look live) nor an error.
func TestAStoresClockWithoutAUsableDateIsThisMachines(t *testing.T) {
	s := newTestStore(t)
	here := time.Date(2031, 5, 6, 7, 8, 9, 0, time.UTC)
	for name, set := range map[string]func(http.Header){
		"no Date":      func(h http.Header) { h.Del("Date") },
		"a bad Date":   func(h http.Header) { h.Set("Date", "yesterday at noon") },
		"an empty one": func(h http.Header) { h.Set("Date", "") },
	} {
		api := dynamodb.New(testDynamoClient(t).Options(), func(o *dynamodb.Options) {
			o.HTTPClient = &http.Client{Transport: dateSetter{http.DefaultTransport, set}}
		})
		c := NewDynamoStore(api, s.Tables())
		c.now = func() time.Time { return here }
		got, err := c.Now(t.Context())
		if err != nil || !got.Equal(here) {
			t.Errorf("%s: Now = %v, %v; want this machine's %v", name, got, err, here)
		}
	}
}

// cancelAfterPuts calls cancel, when it is set, once the after-th PutItem
// since it was set has its answer.
type cancelAfterPuts struct {
	DynamoDBAPI
	after  int32
	puts   atomic.Int32
	cancel atomic.Pointer[context.CancelFunc]
}

func (c *cancelAfterPuts) PutItem(ctx context.Context, in *dynamodb.PutItemInput, o ...func(*dynamodb.Options)) (*dynamodb.PutItemOutput, error) {
	out, err := c.DynamoDBAPI.PutItem(ctx, in, o...)
	if cancel := c.cancel.Load(); cancel != nil && c.puts.Add(1) == c.after {
		(*cancel)()
	}
	return out, err
}

// countedReads counts the GetItem and Query calls of a DynamoDB API.
type countedReads struct {
	DynamoDBAPI
	getItems, queries *int
}

func (c countedReads) GetItem(ctx context.Context, in *dynamodb.GetItemInput, o ...func(*dynamodb.Options)) (*dynamodb.GetItemOutput, error) {
	*c.getItems++
	return c.DynamoDBAPI.GetItem(ctx, in, o...)
}

func (c countedReads) Query(ctx context.Context, in *dynamodb.QueryInput, o ...func(*dynamodb.Options)) (*dynamodb.QueryOutput, error) {
	*c.queries++
	return c.DynamoDBAPI.Query(ctx, in, o...)
}

// TestAPublishersClockIsOneRequest: `socks chatter issue`, run by a
// site's backend for each page that connects, reads the store's clock
// with the publisher's rights in one request: a GetItem of the
// connections table, which it may not run, came first, an
// AccessDeniedException per issue (one request more, and a denial in
// CloudTrail for each page). A role that may not read the chatter table
// (a broker's) still gets the time from the connections table.
func TestAPublishersClockIsOneRequest(t *testing.T) {
	s := newTestStore(t)
	var getItems, queries int
	p := NewDynamoStore(countedReads{noGetItem{s.api}, &getItems, &queries}, s.Tables())
	if _, err := p.Now(t.Context()); err != nil {
		t.Fatal(err)
	}
	if getItems+queries != 1 {
		t.Errorf("the publisher's clock took %d GetItem and %d Query; want one request", getItems, queries)
	}
	b := NewDynamoStore(noChatterQuery{s.api, s.Tables().ChatterIDs}, s.Tables())
	b.now = func() time.Time { return time.Now().Add(3 * time.Hour) }
	before := time.Now().Truncate(time.Second)
	got, err := b.Now(t.Context())
	if err != nil || got.Before(before) || got.After(time.Now()) {
		t.Errorf("without the chatter table: Now = %v, %v; want DynamoDB's", got, err)
	}
}

// noChatterQuery is a DynamoDB API that may not Query the chatter table
// (a broker function's role split from the routes').
type noChatterQuery struct {
	DynamoDBAPI
	chatter string
}

func (n noChatterQuery) Query(ctx context.Context, in *dynamodb.QueryInput, o ...func(*dynamodb.Options)) (*dynamodb.QueryOutput, error) {
	if aws.ToString(in.TableName) == n.chatter {
		return nil, errors.New("AccessDeniedException: not authorized to perform dynamodb:Query")
	}
	return n.DynamoDBAPI.Query(ctx, in, o...)
}

// TestALeaseTakenByAClockAheadLapsesByAWSsClock: the prune lease's end is
// written by the store's clock (AWS's), as the records' times are. Taken
// by a machine whose clock was hours ahead, then left (the prune killed),
// it kept every other prune waiting for those hours, where a lease lasts
// a minute after its holder stops; and a machine behind by more than the
// lease took one still held.
func TestALeaseTakenByAClockAheadLapsesByAWSsClock(t *testing.T) {
	a := newTestStore(t)
	a.now = func() time.Time { return time.Now().Add(3 * time.Hour) }
	a.leaseTTL = 100 * time.Millisecond
	actx, kill := context.WithCancel(t.Context())
	if _, _, err := a.LockPrune(actx, nil); err != nil {
		t.Fatal(err)
	}
	kill() // no renewal, no release
	b := NewDynamoStore(testDynamoClient(t), a.Tables())
	// A lease written by AWS's clock lapses within a second or two; the
	// bound only ends a failing run (it waited 3 hours).
	wctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	_, release, err := b.LockPrune(wctx, nil)
	if err != nil {
		t.Fatalf("the lease of a prune that stopped was never taken: %v", err)
	}
	release()
}

// TestALeaseRenewedAfterASuspendIsByAWSsClock: LockPrune read the store's
// clock once, as it took the lease, and renewed it by that reading plus
// the monotonic time elapsed since, which stands still while the machine
// is suspended. A prune whose machine slept longer than the lease lasts
// then renewed its lease to an end already past by AWS's clock, so another
// prune could take it while this one went on deleting. a.now lags here as
// the monotonic clock does over a suspend.
func TestALeaseRenewedAfterASuspendIsByAWSsClock(t *testing.T) {
	a := newTestStore(t)
	a.leaseRenew = 20 * time.Millisecond
	var lag atomic.Int64
	a.now = func() time.Time { return time.Now().Round(0).Add(-time.Duration(lag.Load())) }
	_, release, err := a.LockPrune(t.Context(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer release()
	until := func() int64 {
		out, err := a.api.GetItem(t.Context(), &dynamodb.GetItemInput{
			TableName:      aws.String(a.tables.Connections),
			Key:            item{attrPK: avS(pkPruneLease), attrSK: avS(skPruneLease)},
			ConsistentRead: aws.Bool(true),
		})
		if err != nil {
			t.Fatal(err)
		}
		n, _ := getN(out.Item, attrUntilMs)
		return n
	}
	lag.Store(int64(2 * pruneLeaseTTL)) // slept two minutes
	// Two renewals later, the second surely begun after the sleep.
	last, renewed := until(), 0
	for i := 0; renewed < 2; i++ {
		if i == 2000 {
			t.Fatal("the lease was not renewed")
		}
		time.Sleep(5 * time.Millisecond)
		if n := until(); n != last {
			last, renewed = n, renewed+1
		}
	}
	b := NewDynamoStore(testDynamoClient(t), a.Tables())
	now, err := b.Now(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	taken, err := b.putLease(t.Context(), "another prune", now, false)
	if err != nil {
		t.Fatal(err)
	}
	if taken {
		t.Errorf("another prune took the lease a holds and renews: it was renewed to %s, before AWS's time %s", time.UnixMilli(last).UTC(), now)
	}
}

// throttledRenewals is DynamoDB Local on which the first throttled
// renewals of a prune lease (a PutItem conditioned on its owner only) are
// answered ProvisionedThroughputExceededException, as past the SDK's
// retries on a table the prune's own deletes keep busy; renewed counts
// the renewals that went through.
type throttledRenewals struct {
	DynamoDBAPI
	mu        sync.Mutex
	throttled int
	renewed   chan struct{}
}

func (s *throttledRenewals) PutItem(ctx context.Context, in *dynamodb.PutItemInput, opts ...func(*dynamodb.Options)) (*dynamodb.PutItemOutput, error) {
	cond := aws.ToString(in.ConditionExpression)
	if !strings.Contains(cond, "#owner") || strings.Contains(cond, "attribute_not_exists") {
		return s.DynamoDBAPI.PutItem(ctx, in, opts...)
	}
	s.mu.Lock()
	throttle := s.throttled > 0
	if throttle {
		s.throttled--
	}
	s.mu.Unlock()
	if throttle {
		return nil, &types.ProvisionedThroughputExceededException{Message: aws.String("throttled by the test")}
	}
	out, err := s.DynamoDBAPI.PutItem(ctx, in, opts...)
	if err == nil {
		select {
		case s.renewed <- struct{}{}:
		default:
		}
	}
	return out, err
}

// TestAPruneWhoseRenewalIsThrottledKeepsItsLease: a renewal throttled past
// the SDK's retries leaves the lease held until it lapses, tens of
// seconds on: it is tried again, with the store's backoff, until then,
// and the run goes on. Before, the first throttled renewal stopped the
// run with "lost the prune lease", though no other prune could have it.
func TestAPruneWhoseRenewalIsThrottledKeepsItsLease(t *testing.T) {
	base := newTestStore(t)
	api := &throttledRenewals{DynamoDBAPI: base.api, throttled: 3, renewed: make(chan struct{})}
	a := NewDynamoStore(api, base.Tables())
	a.leaseRenew = 20 * time.Millisecond
	a.backoff = func(int) time.Duration { return time.Millisecond }
	actx, release, err := a.LockPrune(t.Context(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer release()
	// Two renewals through, the throttled ones before them.
	for range 2 {
		select {
		case <-api.renewed:
		case <-actx.Done():
			t.Fatalf("the run was stopped: %v", context.Cause(actx))
		}
	}
	if actx.Err() != nil {
		t.Fatalf("the run was stopped: %v", context.Cause(actx))
	}
	api.mu.Lock()
	defer api.mu.Unlock()
	if api.throttled != 0 {
		t.Errorf("%d throttled renewals left: the test tested nothing", api.throttled)
	}
}

// throttledTakes is DynamoDB Local on which the first attempts to take a
// prune lease (the PutItem conditioned on its absence) are answered
// ProvisionedThroughputExceededException.
type throttledTakes struct {
	DynamoDBAPI
	throttled atomic.Int32
}

func (s *throttledTakes) PutItem(ctx context.Context, in *dynamodb.PutItemInput, opts ...func(*dynamodb.Options)) (*dynamodb.PutItemOutput, error) {
	if strings.Contains(aws.ToString(in.ConditionExpression), "attribute_not_exists") && s.throttled.Add(-1) >= 0 {
		return nil, &types.ProvisionedThroughputExceededException{Message: aws.String("throttled by the test")}
	}
	return s.DynamoDBAPI.PutItem(ctx, in, opts...)
}

// TestAPruneWhoseLeaseTakeIsThrottledWaitsForIt: a prune waiting for the
// lease (another prune deleting meanwhile may be what keeps the table
// busy) whose try to take it is throttled past the SDK's retries tries
// again, as it does while the lease is held. Before, it failed with
// "taking the prune lease: ... ProvisionedThroughputExceededException".
func TestAPruneWhoseLeaseTakeIsThrottledWaitsForIt(t *testing.T) {
	base := newTestStore(t)
	api := &throttledTakes{DynamoDBAPI: base.api}
	api.throttled.Store(3)
	s := NewDynamoStore(api, base.Tables())
	s.backoff = func(int) time.Duration { return time.Millisecond }
	_, release, err := s.LockPrune(t.Context(), nil)
	if err != nil {
		t.Fatalf("LockPrune with throttled takes: %v", err)
	}
	release()
	if n := api.throttled.Load(); n >= 0 {
		t.Errorf("%d throttled takes left: the test tested nothing", n+1)
	}
}
