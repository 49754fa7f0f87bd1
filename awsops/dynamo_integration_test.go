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

	"github.com/socks-dev/socks/pubsub"
	"github.com/socks-dev/socks/store"
	"github.com/socks-dev/socks/store/storetest"
)

// seedConnections writes conns with ImportConnections: BatchWriteItem,
// laid out as PutConnection lays them out, without its read and
// transaction per record.
func seedConnections(t *testing.T, s *DynamoStore, conns []pubsub.Connection) {
	t.Helper()
	if err := s.ImportConnections(t.Context(), conns); err != nil {
		t.Fatalf("seeding %d connections: %v", len(conns), err)
	}
}

// TestFanOutToOneGeekAmongTenThousandReadsOnlyThatGeeksItems runs beside
// the package's other parallel tests: its tables are its own, and the
// items read are counted by its own store.
func TestFanOutToOneGeekAmongTenThousandReadsOnlyThatGeeksItems(t *testing.T) {
	t.Parallel()
	s := newTestStore(t)
	now := time.Now().Truncate(time.Second)
	live := func(id, geek string, topics ...string) pubsub.Connection {
		return pubsub.Connection{ID: id, Geek: geek, Topics: topics, ConnectedAt: now.Add(-time.Minute), ExpiresAt: now.Add(time.Hour)}
	}

	// 10,000 connections of 2,000 other geeks, each following "updates"
	// (and every third one "." as well), plus the one geek we address.
	var pop []pubsub.Connection
	for i := range 10000 {
		c := live(fmt.Sprintf("conn-%05d", i), fmt.Sprintf("geek-%04d", i%2000), "updates")
		if i%3 == 0 {
			c.Topics = append(c.Topics, pubsub.AllTopics)
		}
		pop = append(pop, c)
	}
	needle := []pubsub.Connection{
		live("needle-1", "needle", "updates"),
		live("needle-2", "needle", pubsub.AllTopics),
		live("needle-3", "needle", "news"),
	}
	expired := live("needle-old", "needle", "updates")
	// Expired over five years ago, which DynamoDB Local's TTL sweeper
	// (every 10 s) leaves alone: the reads below count it.
	expired.ExpiresAt = now.AddDate(-6, 0, 0)
	start := time.Now()
	seedConnections(t, s, append(append(pop, needle...), expired))
	t.Logf("seeded %d connections in %s", len(pop)+len(needle)+1, time.Since(start).Round(time.Millisecond))

	cases := []struct {
		name      string
		users     []string
		topics    []string
		want      []string
		wantReads int64
	}{
		// One Query of the geek partition GEEK#needle: the geek's four
		// geek items (the expired one is filtered by the server, but it
		// was read), whatever the topics.
		{"one geek on one topic reads that geek's connections", []string{"needle"}, []string{"updates"}, []string{"needle-1", "needle-2"}, 4},
		{"one geek on the wildcard topic reads that geek's connections", []string{"needle"}, []string{"."}, []string{"needle-1", "needle-2", "needle-3"}, 4},
		{"one geek on a topic nobody else follows reads that geek's connections", []string{"needle"}, []string{"news"}, []string{"needle-2", "needle-3"}, 4},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			before := s.ItemsRead()
			got, err := s.FindTargets(t.Context(), tc.users, tc.topics, now)
			if err != nil {
				t.Fatal(err)
			}
			reads := s.ItemsRead() - before
			ids := make([]string, len(got))
			for i, c := range got {
				ids[i] = c.ID
			}
			if !slices.Equal(ids, tc.want) {
				t.Errorf("FindTargets = %q, want %q", ids, tc.want)
			}
			if reads != tc.wantReads {
				t.Errorf("FindTargets read %d items, want %d (only the geek's)", reads, tc.wantReads)
			}
		})
	}

	t.Run("a topic-wide message to 10,000 subscribers reads whole pages", func(t *testing.T) {
		api := &countingDynamo{DynamoDBAPI: s.api}
		cs := NewDynamoStore(api, s.tables)
		got, err := cs.FindTargets(t.Context(), nil, []string{"updates"}, now)
		if err != nil {
			t.Fatal(err)
		}
		// The subscription items are all alike: the biggest bounds them.
		size := 0
		for _, c := range got {
			size = max(size, itemSize(subItem(c, "updates", 1)))
		}
		// DynamoDB reads up to 1 MB per page (before the filter and the
		// projection): Queries on TOPIC#updates and TOPIC#. may take no
		// more pages than their items fill, plus a last one each.
		read := cs.ItemsRead()
		bound := (read*int64(size)+(1<<20)-1)/(1<<20) + 2
		pages := api.queries.Load()
		t.Logf("%d items read (at most %d bytes each) in %d pages", read, size, pages)
		if pages > bound {
			t.Errorf("%d Query pages for %d items of at most %d bytes, want at most %d: pages are not whole", pages, read, size, bound)
		}
		if n := api.limited.Load(); n != 0 {
			t.Errorf("%d Queries set a Limit, want none", n)
		}
	})

	t.Run("a topic without users reads that topic's subscribers, which shows the counter counts", func(t *testing.T) {
		before := s.ItemsRead()
		got, err := s.FindTargets(t.Context(), nil, []string{"updates"}, now)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != 10002 {
			t.Errorf("FindTargets(updates) found %d connections, want 10002", len(got))
		}
		// 10,000 + needle-1 + needle-old on TOPIC#updates, 3,334 + needle-2 on TOPIC#.
		if reads := s.ItemsRead() - before; reads != 10002+3335 {
			t.Errorf("read %d items, want %d", reads, 10002+3335)
		}
	})
}

func TestConcurrentSubscribesOnOneConnectionAreAllKept(t *testing.T) {
	s := newTestStore(t)
	now := time.Now().Truncate(time.Second)
	c := pubsub.Connection{ID: "c1", Geek: "Friendless", Topics: []string{"updates"}, ConnectedAt: now, ExpiresAt: now.Add(time.Hour)}
	if err := s.PutConnection(t.Context(), c); err != nil {
		t.Fatal(err)
	}
	const n = 8
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Go(func() {
			if _, err := s.AddTopics(t.Context(), "c1", []string{fmt.Sprintf("topic-%d", i)}, 0); err != nil {
				errs <- err
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Errorf("AddTopics: %v", err)
	}
	got, err := s.GetConnection(t.Context(), "c1")
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Topics) != n+1 {
		t.Errorf("topics = %q, want updates and all %d added", got.Topics, n)
	}
	for i := range n {
		topic := fmt.Sprintf("topic-%d", i)
		found, err := s.FindTargets(t.Context(), nil, []string{topic}, now)
		if err != nil || len(found) != 1 {
			t.Errorf("FindTargets(%s) = %d connections, %v; want c1", topic, len(found), err)
		}
	}
}

func TestConnectionWithMoreTopicsThanOneTransactionHolds(t *testing.T) {
	s := newTestStore(t)
	now := time.Now().Truncate(time.Second)
	topics := func(prefix string, n int) []string {
		var out []string
		for i := range n {
			out = append(out, fmt.Sprintf("%s-%03d", prefix, i))
		}
		return out
	}
	// Replacing 60 topics by 60 others is 121 writes: more than the 100
	// one transaction holds.
	c := pubsub.Connection{ID: "c1", Geek: "Friendless", Topics: topics("old", 60), ConnectedAt: now, ExpiresAt: now.Add(time.Hour)}
	if err := s.PutConnection(t.Context(), c); err != nil {
		t.Fatal(err)
	}
	c.Topics = topics("new", 60)
	if err := s.PutConnection(t.Context(), c); err != nil {
		t.Fatal(err)
	}
	for _, topic := range []string{"old-000", "old-059"} {
		if found, err := s.FindTargets(t.Context(), nil, []string{topic}, now); err != nil || len(found) != 0 {
			t.Errorf("FindTargets(%s) = %d, %v; want nothing", topic, len(found), err)
		}
	}
	if found, err := s.FindTargets(t.Context(), nil, []string{"new-042"}, now); err != nil || len(found) != 1 || len(found[0].Topics) != 60 {
		t.Errorf("FindTargets(new-042) = %v, %v; want c1 with 60 topics", found, err)
	}
	if err := s.DeleteConnection(t.Context(), "c1"); err != nil {
		t.Fatal(err)
	}
	out, err := s.api.Scan(t.Context(), &dynamodb.ScanInput{TableName: aws.String(s.tables.Connections), Select: types.SelectCount})
	if err != nil {
		t.Fatal(err)
	}
	if out.Count != 0 {
		t.Errorf("%d items left after DeleteConnection, want none", out.Count)
	}
}

func TestEnsureTablesIsIdempotentAndEnablesTTL(t *testing.T) {
	api := testDynamoClient(t)
	tables := newTestTables(t, api)
	created, err := EnsureTables(t.Context(), api, tables, time.Minute)
	if err != nil || len(created) != 0 {
		t.Fatalf("EnsureTables again = %q, %v; want nothing created", created, err)
	}
	for _, n := range tables.Names() {
		d, err := api.DescribeTimeToLive(t.Context(), &dynamodb.DescribeTimeToLiveInput{TableName: aws.String(n)})
		if err != nil {
			t.Fatal(err)
		}
		if desc := d.TimeToLiveDescription; desc == nil || aws.ToString(desc.AttributeName) != "expiresAt" ||
			desc.TimeToLiveStatus != types.TimeToLiveStatusEnabled {
			t.Errorf("table %s: TTL = %+v, want enabled on expiresAt", n, desc)
		}
	}
}

func TestMissingTablesAreExplained(t *testing.T) {
	api := testDynamoClient(t)
	tables := TablesFor(uniqueName("missing"))
	s := NewDynamoStore(api, tables)
	_, err := s.GetConnection(t.Context(), "c1")
	want := "table " + tables.Connections + " does not exist: run `socks provision`"
	if err == nil || !contains(err.Error(), want) {
		t.Errorf("GetConnection on a missing table = %v, want %q", err, want)
	}
	var rnf *types.ResourceNotFoundException
	if !errors.As(err, &rnf) {
		t.Errorf("the error does not unwrap to *types.ResourceNotFoundException: %#v", err)
	}
	if errors.Is(err, store.ErrNotFound) {
		t.Error("a missing table reads as a missing record")
	}
	_, err = s.FindTargets(t.Context(), []string{"Friendless"}, []string{"."}, time.Now())
	if err == nil || !contains(err.Error(), "does not exist: run `socks provision`") {
		t.Errorf("FindTargets on a missing table = %v", err)
	}
}

func TestMissingIndexIsExplained(t *testing.T) {
	api := testDynamoClient(t)
	tables := TablesFor(uniqueName("noindex"))
	// The connections table as someone made it by hand: the right key, no
	// by-geek index.
	in := tables.CreateInputs()[0]
	in.GlobalSecondaryIndexes = nil
	in.AttributeDefinitions = in.AttributeDefinitions[:2]
	if _, err := api.CreateTable(t.Context(), in); err != nil {
		t.Fatal(err)
	}
	deleteTablesAtCleanup(t, api, tables)
	if err := dynamodb.NewTableExistsWaiter(api).Wait(t.Context(), &dynamodb.DescribeTableInput{TableName: in.TableName}, time.Minute); err != nil {
		t.Fatal(err)
	}
	s := NewDynamoStore(api, tables)
	want := "index " + ByGeekIndex + " of table " + tables.Connections + " was refused"
	calls := map[string]func() error{
		"listing every connection": func() error {
			return s.ListConnections(t.Context(), store.ConnectionFilter{}, time.Now(), func([]pubsub.Connection) error { return nil })
		},
		"a prune walk": func() error {
			return s.ScanConnections(t.Context(), 2, func([]pubsub.Connection) error { return nil })
		},
	}
	for name, call := range calls {
		t.Run(name+" says the index is missing and how to add it", func(t *testing.T) {
			err := call()
			if err == nil || !contains(err.Error(), want) || !contains(err.Error(), "`socks provision` or `socks doctor`") {
				t.Errorf("error = %v, want it to say %q and what to run", err, want)
			}
		})
	}
}

// TestFindTargetsQueriesGrowWithUsersPlusTopics is issue 10's target on
// the emulator: an envelope to users on topics costs at most users +
// topics + 1 Queries (the wildcard is one more topic), not users × topics,
// and reads at most twice the matches plus one page per Query.
func TestFindTargetsQueriesGrowWithUsersPlusTopics(t *testing.T) {
	api := &countingDynamo{DynamoDBAPI: testDynamoClient(t)}
	s := NewDynamoStore(api, newTestTables(t, testDynamoClient(t)))
	const users, topics = 10, 10
	us, ts := seedUsersOnTopics(t, s, users, topics)
	cases := []struct {
		name          string
		users, topics []string
		matches       int
	}{
		{"10 users on 10 topics", us, ts, users},
		{"10 users on the wildcard", us, []string{pubsub.AllTopics}, users},
		{"no users, 10 topics", nil, ts, users},
		{"3 users on a topic nobody follows", us[:3], []string{"nobody"}, 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			q0, r0 := api.queries.Load(), s.ItemsRead()
			got, err := s.FindTargets(t.Context(), tc.users, tc.topics, time.Now())
			if err != nil {
				t.Fatal(err)
			}
			queries, reads := api.queries.Load()-q0, s.ItemsRead()-r0
			t.Logf("%d Queries, %d items read, %d matches", queries, reads, len(got))
			if len(got) != tc.matches {
				t.Errorf("found %d connections, want %d", len(got), tc.matches)
			}
			if bound := int64(len(tc.users) + len(tc.topics) + 1); queries > bound {
				t.Errorf("%d Queries, want at most users + topics + 1 = %d", queries, bound)
			}
			// A match is an item that answers the envelope: a target's
			// geek item when users are given, otherwise each of its
			// subscriptions to an addressed topic (a connection on 10
			// addressed topics is found under each; FindTargets returns
			// it once). Every page here is the Query's only one.
			matches := int64(len(got))
			if len(tc.users) == 0 {
				matches = 0
				for _, c := range got {
					for _, topic := range c.Topics {
						if topic == pubsub.AllTopics || slices.Contains(tc.topics, topic) {
							matches++
						}
					}
				}
			}
			if bound := 2*matches + queries; reads > bound {
				t.Errorf("read %d items for %d matching items in %d Queries, want at most %d", reads, matches, queries, bound)
			}
		})
	}
}

// TestDeletesLeaveNoItemBehind: $disconnect (DeleteConnection), prune
// (DeleteConnections) and a change of geek remove the connection's geek
// item and subscription items along with its record.
func TestDeletesLeaveNoItemBehind(t *testing.T) {
	s := newTestStore(t)
	now := time.Now()
	rawItems := func() []string {
		var keys []string
		err := s.scan(t.Context(), &dynamodb.ScanInput{TableName: aws.String(s.tables.Connections), ConsistentRead: aws.Bool(true)}, func(items []item) error {
			for _, it := range items {
				keys = append(keys, getS(it, attrPK)+" "+getS(it, attrSK))
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		slices.Sort(keys)
		return keys
	}
	c := pubsub.Connection{ID: "c1", Geek: "Friendless", Topics: []string{"news", "updates", "."}, ConnectedAt: now, ExpiresAt: now.Add(time.Hour)}
	if err := s.PutConnection(t.Context(), c); err != nil {
		t.Fatal(err)
	}
	if got := len(rawItems()); got != 5 {
		t.Fatalf("a connection on 3 topics left %d items %v, want 5 (record, geek item, 3 subscriptions)", got, rawItems())
	}
	c.Geek = "Other"
	if err := s.PutConnection(t.Context(), c); err != nil {
		t.Fatal(err)
	}
	if got, want := rawItems(), []string{"CONN#c1 CONN", "GEEK#Other CONN#c1", "TOPIC#. GEEK#Other#CONN#c1", "TOPIC#news GEEK#Other#CONN#c1", "TOPIC#updates GEEK#Other#CONN#c1"}; !slices.Equal(got, want) {
		t.Errorf("after a change of geek the table holds %q, want %q", got, want)
	}
	if err := s.DeleteConnection(t.Context(), "c1"); err != nil {
		t.Fatal(err)
	}
	if got := rawItems(); len(got) != 0 {
		t.Errorf("DeleteConnection left %q", got)
	}
	if err := s.ImportConnections(t.Context(), []pubsub.Connection{c, {ID: "c2", Geek: "Friendless", Topics: []string{"news"}, ConnectedAt: now}}); err != nil {
		t.Fatal(err)
	}
	if n, err := s.DeleteConnections(t.Context(), []string{"c1", "c2", "c3"}); err != nil || n != 2 {
		t.Fatalf("DeleteConnections = %d, %v; want 2", n, err)
	}
	if got := rawItems(); len(got) != 0 {
		t.Errorf("DeleteConnections left %q", got)
	}
}

// itemSize is the size DynamoDB counts for an item: the names and values of
// its attributes (numbers counted as their digits, lists with 3 bytes of
// overhead plus 1 per element).
func itemSize(it item) int {
	n := 0
	for name, v := range it {
		n += len(name)
		switch v := v.(type) {
		case *types.AttributeValueMemberS:
			n += len(v.Value)
		case *types.AttributeValueMemberN:
			n += len(v.Value)
		case *types.AttributeValueMemberL:
			n += 3
			for _, e := range v.Value {
				n++
				if s, ok := e.(*types.AttributeValueMemberS); ok {
					n += len(s.Value)
				}
			}
		}
	}
	return n
}

// TestMigrateGeekItemsBringsAnOldTableUpToDate: records written without
// geek items (as socks before them did) are found by a fan-out to their
// geek only after the migration, which adds exactly the missing items and
// nothing on a second run.
func TestMigrateGeekItemsBringsAnOldTableUpToDate(t *testing.T) {
	s := newTestStore(t)
	now := time.Now()
	var reqs []types.WriteRequest
	for i := range 30 {
		c := pubsub.Connection{ID: fmt.Sprintf("old-%02d", i), Geek: fmt.Sprintf("geek%d", i%3), Topics: []string{"news"}, ConnectedAt: now, ExpiresAt: now.Add(time.Hour)}
		// The earlier layout: the record and its subscription items.
		reqs = append(reqs,
			types.WriteRequest{PutRequest: &types.PutRequest{Item: connItem(c, 1)}},
			types.WriteRequest{PutRequest: &types.PutRequest{Item: subItem(c, "news", 1)}})
	}
	if err := s.batchWrite(t.Context(), s.tables.Connections, reqs); err != nil {
		t.Fatal(err)
	}
	// One record written by this version already has its geek item.
	if err := s.PutConnection(t.Context(), pubsub.Connection{ID: "new", Geek: "geek0", Topics: []string{"news"}, ConnectedAt: now, ExpiresAt: now.Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	find := func() int {
		got, err := s.FindTargets(t.Context(), []string{"geek0"}, []string{"news"}, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		return len(got)
	}
	if n := find(); n != 1 {
		t.Fatalf("before the migration a fan-out to geek0 found %d connections, want the 1 new one", n)
	}
	// The by-geek index is eventually consistent: wait (bounded) until the
	// dry run sees every old record.
	deadline := time.Now().Add(30 * time.Second)
	for {
		n, err := s.MigrateGeekItems(t.Context(), true)
		if err != nil {
			t.Fatal(err)
		}
		if n == 30 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("a dry run counts %d records to migrate, want 30", n)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if n := find(); n != 1 {
		t.Errorf("a dry run changed the table: geek0 has %d connections found", n)
	}
	if n, err := s.MigrateGeekItems(t.Context(), false); err != nil || n != 30 {
		t.Fatalf("MigrateGeekItems = %d, %v; want 30", n, err)
	}
	if n := find(); n != 11 {
		t.Errorf("after the migration a fan-out to geek0 found %d connections, want 11", n)
	}
	if n, err := s.MigrateGeekItems(t.Context(), false); err != nil || n != 0 {
		t.Errorf("a second migration = %d, %v; want 0", n, err)
	}
}

// TestAReportWrittenWithoutAVersionIsReadAndReplacedOnce puts a report
// item as older code wrote it, with no version attribute: it is read (at
// version 0), and of two replacements from that read only the first
// lands.
func TestAReportWrittenWithoutAVersionIsReadAndReplacedOnce(t *testing.T) {
	s := newTestStore(t)
	ctx := t.Context()
	now := time.Now()
	_, err := s.api.PutItem(ctx, &dynamodb.PutItemInput{
		TableName: aws.String(s.tables.Reports),
		Item: item{
			attrReportID: avS("m-1"),
			attrReport:   avS(storetest.UnversionedReport),
			attrAt:       avN(millis(now)),
			attrTTL:      avN(ttlSeconds(now.Add(reportTTL))),
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	storetest.CheckUnversionedReport(t, s)
}

// cancelOnce is DynamoDB Local whose TransactWriteItems cancels the first
// transaction touching each connection with a reason that is not a failed
// condition (ThrottlingError, TransactionConflict), as DynamoDB does under
// load: a retry succeeds.
type cancelOnce struct {
	DynamoDBAPI
	mu       sync.Mutex
	canceled map[string]bool
}

func (c *cancelOnce) TransactWriteItems(ctx context.Context, in *dynamodb.TransactWriteItemsInput, opts ...func(*dynamodb.Options)) (*dynamodb.TransactWriteItemsOutput, error) {
	var key string
	for _, it := range in.TransactItems {
		if it.ConditionCheck != nil {
			key = getS(it.ConditionCheck.Key, attrPK)
		}
	}
	c.mu.Lock()
	first := key != "" && !c.canceled[key]
	c.canceled[key] = true
	n := len(c.canceled)
	c.mu.Unlock()
	if first {
		code := "ThrottlingError"
		if n%2 == 0 {
			code = "TransactionConflict"
		}
		reasons := make([]types.CancellationReason, len(in.TransactItems))
		for i := range reasons {
			reasons[i].Code = aws.String("None")
		}
		reasons[len(reasons)-1].Code = aws.String(code)
		return nil, &types.TransactionCanceledException{Message: aws.String("Transaction cancelled [" + code + "]"), CancellationReasons: reasons}
	}
	return c.DynamoDBAPI.TransactWriteItems(ctx, in, opts...)
}

// TestMigrateGeekItemsRetriesTransactionsCanceledUnderLoad: a migration
// transaction canceled because DynamoDB throttled it or another
// transaction held the item is tried again; only a failed condition (the
// record changed, or its geek item appeared) means the item is not
// needed. Taking every cancellation for that left records without geek
// items, invisible to a fan-out to their geek, with provision saying the
// table was migrated.
func TestMigrateGeekItemsRetriesTransactionsCanceledUnderLoad(t *testing.T) {
	s := newTestStore(t)
	now := time.Now()
	var reqs []types.WriteRequest
	for i := range 20 {
		c := pubsub.Connection{ID: fmt.Sprintf("old-%02d", i), Geek: "geek0", Topics: []string{"news"}, ConnectedAt: now, ExpiresAt: now.Add(time.Hour)}
		// The earlier layout: the record and its subscription items.
		reqs = append(reqs,
			types.WriteRequest{PutRequest: &types.PutRequest{Item: connItem(c, 1)}},
			types.WriteRequest{PutRequest: &types.PutRequest{Item: subItem(c, "news", 1)}})
	}
	if err := s.batchWrite(t.Context(), s.tables.Connections, reqs); err != nil {
		t.Fatal(err)
	}
	// The by-geek index is eventually consistent: wait (bounded) until a
	// dry run sees every old record.
	deadline := time.Now().Add(30 * time.Second)
	for {
		n, err := s.MigrateGeekItems(t.Context(), true)
		if err != nil {
			t.Fatal(err)
		}
		if n == 20 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("a dry run counts %d records to migrate, want 20", n)
		}
		time.Sleep(50 * time.Millisecond)
	}
	loaded := NewDynamoStore(&cancelOnce{DynamoDBAPI: s.api, canceled: map[string]bool{}}, s.tables)
	loaded.backoff = func(int) time.Duration { return 0 }
	if n, err := loaded.MigrateGeekItems(t.Context(), false); err != nil || n != 20 {
		t.Errorf("MigrateGeekItems under load = %d, %v; want 20", n, err)
	}
	got, err := s.FindTargets(t.Context(), []string{"geek0"}, []string{"news"}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 20 {
		t.Errorf("after the migration a fan-out to geek0 finds %d connections, want 20", len(got))
	}
}

// TestMigrateGeekItemsRepairsWhatAnOlderWriterChangedSince: during an
// upgrade a Lambda function of the earlier socks (no geek items) may go
// on writing after provision migrated the table: it subscribes a
// connection to another topic (the geek item keeps the old topics), takes
// a $disconnect (the geek item stays without its record) and a $connect
// (a record without a geek item). Provision run again brings each back in
// line, so a fan-out to users reaches exactly the live connections with
// their topics; nothing an older writer wrote is lost. Until then a
// fan-out to users misses what the older writer changed (the hazard
// docs/deploy.md's "Upgrading" names), and doctor's check counts it.
func TestMigrateGeekItemsRepairsWhatAnOlderWriterChangedSince(t *testing.T) {
	s := newTestStore(t)
	ctx := t.Context()
	now := time.Now()
	conn := func(id, geek string, topics ...string) pubsub.Connection {
		return pubsub.Connection{ID: id, Geek: geek, Topics: topics, ConnectedAt: now, ExpiresAt: now.Add(time.Hour)}
	}
	// oldPut and oldDelete write as the earlier layout's writer did: the
	// record and its subscription items, nothing else.
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
	oldDelete := func(c pubsub.Connection) {
		t.Helper()
		reqs := []types.WriteRequest{{DeleteRequest: &types.DeleteRequest{Key: connKey(c.ID)}}}
		for _, topic := range c.Topics {
			reqs = append(reqs, types.WriteRequest{DeleteRequest: &types.DeleteRequest{Key: subKey(topic, c.Geek, c.ID)}})
		}
		if err := s.batchWrite(ctx, s.tables.Connections, reqs); err != nil {
			t.Fatal(err)
		}
	}
	find := func(users []string, topics ...string) []string {
		t.Helper()
		got, err := s.FindTargets(ctx, users, topics, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		ids := make([]string, 0, len(got))
		for _, c := range got {
			ids = append(ids, c.ID)
		}
		slices.Sort(ids)
		return ids
	}

	a, b, c := conn("a", "geek0", "news"), conn("b", "geek0", "news"), conn("c", "geek1", "news")
	for _, x := range []pubsub.Connection{a, b, c} {
		oldPut(x, 1)
	}
	if n, err := s.MigrateGeekItems(ctx, false); err != nil || n != 3 {
		t.Fatalf("the first migration = %d, %v; want 3", n, err)
	}

	// The earlier socks's Lambda function, still running, writes on.
	a2 := conn("a", "geek0", "news", "updates")
	oldPut(a2, 2)
	oldDelete(b)
	d := conn("d", "geek1", "news")
	oldPut(d, 1)

	// The hazard until provision runs again: a fan-out to users misses
	// a's new topic and d, and still targets b, whose connection is gone;
	// fan-outs to topics see the records as they are.
	for _, tc := range []struct {
		users  []string
		topics []string
		want   []string
	}{
		{[]string{"geek0"}, []string{"updates"}, nil},
		{[]string{"geek0"}, []string{"news"}, []string{"a", "b"}},
		{[]string{"geek1"}, []string{"news"}, []string{"c"}},
		{nil, []string{"news"}, []string{"a", "c", "d"}},
		{nil, []string{"updates"}, []string{"a"}},
	} {
		if got := find(tc.users, tc.topics...); !slices.Equal(got, tc.want) && (len(got) != 0 || len(tc.want) != 0) {
			t.Errorf("before the second migration a fan-out to %q on %q finds %q, want %q", tc.users, tc.topics, got, tc.want)
		}
	}
	// Doctor's check sees them.
	if p, err := s.PendingMigration(ctx, 1000); err != nil || p.Changes != 3 || !p.Whole {
		t.Errorf("PendingMigration after the older writes = %+v, %v; want 3 changes, the whole table read", p, err)
	}
	if n, err := s.MigrateGeekItems(ctx, true); err != nil || n != 3 {
		t.Fatalf("a dry run after the older writes = %d, %v; want 3 (a's topics, b's leftover, d's missing item)", n, err)
	}
	if got := find([]string{"geek0"}, "updates"); len(got) != 0 {
		t.Fatalf("the dry run changed the table: a fan-out to geek0 on updates finds %q", got)
	}
	if n, err := s.MigrateGeekItems(ctx, false); err != nil || n != 3 {
		t.Fatalf("the migration after the older writes = %d, %v; want 3", n, err)
	}
	for _, tc := range []struct {
		users  []string
		topics []string
		want   []string
	}{
		{[]string{"geek0"}, []string{"updates"}, []string{"a"}},
		{[]string{"geek0"}, []string{"news"}, []string{"a"}},
		{[]string{"geek1"}, []string{"news"}, []string{"c", "d"}},
		{nil, []string{"news"}, []string{"a", "c", "d"}},
		{nil, []string{"updates"}, []string{"a"}},
	} {
		if got := find(tc.users, tc.topics...); !slices.Equal(got, tc.want) {
			t.Errorf("after the migration a fan-out to %q on %q finds %q, want %q", tc.users, tc.topics, got, tc.want)
		}
	}
	if n, err := s.MigrateGeekItems(ctx, false); err != nil || n != 0 {
		t.Errorf("a migration run again = %d, %v; want 0", n, err)
	}
}

// TestMigrateGeekItemsWhileAnOlderWriterWritesLeavesEveryRecordRight
// tries to break "safe while the stack serves": a writer of the earlier
// layout (conditional transactions on the record's version, no geek
// items, as it wrote them) connects, subscribes and disconnects while
// migrations run; it connects deleted IDs again, which API Gateway never
// does, so a record may come back to a version its leftover geek item
// has, with other topics. Once it has stopped, one more migration leaves every
// record with a geek item of its version and topics, and no geek item
// without its record; no record or subscription the writer made is lost.
func TestMigrateGeekItemsWhileAnOlderWriterWritesLeavesEveryRecordRight(t *testing.T) {
	s := newTestStore(t)
	ctx := t.Context()
	table := aws.String(s.tables.Connections)
	now := time.Now()
	get := func(id string) (pubsub.Connection, int64, bool) {
		out, err := s.api.GetItem(ctx, &dynamodb.GetItemInput{TableName: table, Key: connKey(id), ConsistentRead: aws.Bool(true)})
		if err != nil || out.Item == nil {
			return pubsub.Connection{}, 0, false
		}
		c, err := itemConnection(out.Item)
		return c, itemVersion(out.Item), err == nil
	}
	// oldWrite replaces the record at version v (0: none) by next (nil:
	// delete) with its subscription items, as the earlier layout did.
	oldWrite := func(prev *pubsub.Connection, v int64, next *pubsub.Connection) error {
		cond, names, values := "attribute_not_exists(#pk)", map[string]string{"#pk": attrPK}, map[string]types.AttributeValue(nil)
		if prev != nil {
			cond, names, values = "#v = :v", map[string]string{"#v": attrVersion}, map[string]types.AttributeValue{":v": avN(v)}
		}
		var items []types.TransactWriteItem
		if prev != nil {
			for _, topic := range prev.Topics {
				if next == nil || !slices.Contains(next.Topics, topic) {
					items = append(items, types.TransactWriteItem{Delete: &types.Delete{TableName: table, Key: subKey(topic, prev.Geek, prev.ID)}})
				}
			}
		}
		if next == nil {
			items = append(items, types.TransactWriteItem{Delete: &types.Delete{TableName: table, Key: connKey(prev.ID),
				ConditionExpression: aws.String(cond), ExpressionAttributeNames: names, ExpressionAttributeValues: values}})
		} else {
			for _, topic := range next.Topics {
				items = append(items, types.TransactWriteItem{Put: &types.Put{TableName: table, Item: subItem(*next, topic, v+1)}})
			}
			items = append(items, types.TransactWriteItem{Put: &types.Put{TableName: table, Item: connItem(*next, v+1),
				ConditionExpression: aws.String(cond), ExpressionAttributeNames: names, ExpressionAttributeValues: values}})
		}
		err := s.transact(ctx, items)
		if conditionFailed(err) || isTxConflict(err) {
			return nil // the earlier socks tried again; this writer moves on
		}
		return err
	}
	conn := func(i int, topics ...string) pubsub.Connection {
		return pubsub.Connection{ID: fmt.Sprintf("c%02d", i), Geek: fmt.Sprintf("geek%d", i%4), Topics: topics, ConnectedAt: now, ExpiresAt: now.Add(time.Hour)}
	}
	const n = 24
	for i := range n {
		c := conn(i, "news")
		if err := oldWrite(nil, 0, &c); err != nil {
			t.Fatal(err)
		}
	}

	writerDone := make(chan error, 1)
	go func() {
		for round := range 4 {
			for i := range n + 8 {
				id := fmt.Sprintf("c%02d", i)
				prev, v, ok := get(id)
				var err error
				switch {
				case !ok:
					c := conn(i, "news")
					err = oldWrite(nil, 0, &c)
				case (i+round)%3 == 0:
					err = oldWrite(&prev, v, nil)
				default:
					next := prev
					next.Topics = append(slices.Clone(prev.Topics), fmt.Sprintf("t%d", round))
					err = oldWrite(&prev, v, &next)
				}
				if err != nil {
					writerDone <- err
					return
				}
			}
		}
		writerDone <- nil
	}()
	for range 3 {
		if _, err := s.MigrateGeekItems(ctx, false); err != nil {
			t.Fatalf("a migration while the older writer writes: %v", err)
		}
	}
	if err := <-writerDone; err != nil {
		t.Fatal(err)
	}
	if _, err := s.MigrateGeekItems(ctx, false); err != nil {
		t.Fatal(err)
	}

	var mu sync.Mutex
	records, geeks, subs := map[string]item{}, map[string]item{}, map[string]int{}
	err := s.parallelScan(ctx, &dynamodb.ScanInput{TableName: table, ConsistentRead: aws.Bool(true)}, 1, func(items []item) error {
		mu.Lock()
		defer mu.Unlock()
		for _, it := range items {
			switch pk := getS(it, attrPK); {
			case getS(it, attrSK) == skConnection:
				records[getS(it, attrID)] = it
			case strings.HasPrefix(pk, prefixGeek):
				geeks[getS(it, attrID)] = it
			case strings.HasPrefix(pk, prefixTopic):
				subs[getS(it, attrID)]++
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(records) == 0 {
		t.Fatal("the older writer left no record; the test proves nothing")
	}
	for id, rec := range records {
		c, _ := itemConnection(rec)
		g, ok := geeks[id]
		if !ok {
			t.Errorf("record %s (version %d) has no geek item", id, itemVersion(rec))
			continue
		}
		gc, _ := itemConnection(g)
		if itemVersion(g) != itemVersion(rec) || gc.Geek != c.Geek || !slices.Equal(gc.Topics, c.Topics) {
			t.Errorf("record %s is version %d, %s, %q; its geek item version %d, %s, %q", id, itemVersion(rec), c.Geek, c.Topics, itemVersion(g), gc.Geek, gc.Topics)
		}
		if subs[id] != len(c.Topics) {
			t.Errorf("record %s follows %d topics and has %d subscription items", id, len(c.Topics), subs[id])
		}
	}
	for id := range geeks {
		if _, ok := records[id]; !ok {
			t.Errorf("geek item of %s has no record", id)
		}
	}
}

// betweenParts is DynamoDB that calls hook once, after the first part of
// a connection write too large for one transaction (a transaction that
// checks the record's version besides its writes) has gone through.
type betweenParts struct {
	DynamoDBAPI
	hook func()
	once sync.Once
}

func (b *betweenParts) TransactWriteItems(ctx context.Context, in *dynamodb.TransactWriteItemsInput, opts ...func(*dynamodb.Options)) (*dynamodb.TransactWriteItemsOutput, error) {
	out, err := b.DynamoDBAPI.TransactWriteItems(ctx, in, opts...)
	part := false
	for _, it := range in.TransactItems {
		part = part || (it.ConditionCheck != nil && len(in.TransactItems) > 1)
	}
	if err == nil && part {
		b.once.Do(b.hook)
	}
	return out, err
}

// TestAMigrationBetweenThePartsOfALargeWriteLeavesTheGeekItemRight: a
// connection write of this socks too large for one transaction (50
// topics replaced by 50 others: 101 actions) goes in parts, the record
// last. A migration that ran between the parts found the geek item
// already at the next version beside the record at its own, "rewrote"
// it back to the record, and the record's last part left it so: a geek
// item with the old topics, which fan-outs to the geek read, under a
// record with the new. The geek item goes with the record, in its part.
func TestAMigrationBetweenThePartsOfALargeWriteLeavesTheGeekItemRight(t *testing.T) {
	base := newTestStore(t)
	ctx := t.Context()
	topics := func(prefix string) []string {
		var ts []string
		for i := range pubsub.MaxTopicsPerConnection {
			ts = append(ts, fmt.Sprintf("%s%02d", prefix, i))
		}
		return ts
	}
	now := time.Now()
	c := pubsub.Connection{ID: "big", Geek: "alice", Topics: topics("a"), ConnectedAt: now, ExpiresAt: now.Add(time.Hour)}
	if err := base.PutConnection(ctx, c); err != nil {
		t.Fatal(err)
	}
	migrated := 0
	api := &betweenParts{DynamoDBAPI: base.api}
	api.hook = func() {
		n, err := base.MigrateGeekItems(ctx, false)
		if err != nil {
			t.Errorf("the migration between the parts: %v", err)
		}
		migrated = n
	}
	s := NewDynamoStore(api, base.tables)
	c.Topics = topics("b")
	if err := s.PutConnection(ctx, c); err != nil {
		t.Fatal(err)
	}
	api.once.Do(func() { t.Fatal("the write went in one transaction; the test proves nothing") })

	table := aws.String(base.tables.Connections)
	rec, err := base.api.GetItem(ctx, &dynamodb.GetItemInput{TableName: table, Key: connKey("big"), ConsistentRead: aws.Bool(true)})
	if err != nil || rec.Item == nil {
		t.Fatalf("the record: %v", err)
	}
	g, err := base.api.GetItem(ctx, &dynamodb.GetItemInput{TableName: table, Key: geekKey("alice", "big"), ConsistentRead: aws.Bool(true)})
	if err != nil || g.Item == nil {
		t.Fatalf("the geek item: %v", err)
	}
	if !sameConnection(rec.Item, g.Item) || itemVersion(rec.Item) != itemVersion(g.Item) {
		gc, _ := itemConnection(g.Item)
		t.Errorf("after a migration between the parts (it changed %d): record version %d, geek item version %d with topics %q..; want the record's copy",
			migrated, itemVersion(rec.Item), itemVersion(g.Item), gc.Topics[:2])
	}
	found, err := base.FindTargets(ctx, []string{"alice"}, []string{"b00"}, time.Now())
	if err != nil || len(found) != 1 {
		t.Errorf("a fan-out to alice on topic b00 finds %v, %v; want the connection", found, err)
	}
}
