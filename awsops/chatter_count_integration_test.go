package awsops

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/socks-dev/socks/pubsub"
	"github.com/socks-dev/socks/store"
)

// chatterQueries is DynamoDB Local that records the Queries made on the
// chatter table, page by page, and pages each of them at limit items
// evaluated (0: only at DynamoDB's own 1 MB).
type chatterQueries struct {
	DynamoDBAPI
	table string
	limit int32

	mu    sync.Mutex
	pages []queryPage
}

// queryPage is one page of a recorded Query.
type queryPage struct {
	selectCount    bool
	items          int
	count, scanned int32
}

func (c *chatterQueries) Query(ctx context.Context, in *dynamodb.QueryInput, opts ...func(*dynamodb.Options)) (*dynamodb.QueryOutput, error) {
	if aws.ToString(in.TableName) != c.table {
		return c.DynamoDBAPI.Query(ctx, in, opts...)
	}
	if c.limit > 0 {
		cp := *in
		cp.Limit = aws.Int32(c.limit)
		in = &cp
	}
	out, err := c.DynamoDBAPI.Query(ctx, in, opts...)
	if err == nil {
		c.mu.Lock()
		c.pages = append(c.pages, queryPage{selectCount: in.Select == types.SelectCount, items: len(out.Items), count: out.Count, scanned: out.ScannedCount})
		c.mu.Unlock()
	}
	return out, err
}

// take returns the pages recorded so far and forgets them.
func (c *chatterQueries) take() []queryPage {
	c.mu.Lock()
	defer c.mu.Unlock()
	p := c.pages
	c.pages = nil
	return p
}

// onlyCounted fails unless pages are at least minPages pages of Queries
// that asked for COUNT and got no item back.
func onlyCounted(t *testing.T, what string, pages []queryPage, minPages int) {
	t.Helper()
	if len(pages) < minPages {
		t.Errorf("%s: %d Query pages on the chatter table; want at least %d", what, len(pages), minPages)
	}
	for i, p := range pages {
		if !p.selectCount || p.items != 0 {
			t.Errorf("%s: Query page %d asked for COUNT %v and got %d items back; want a COUNT with no items", what, i, p.selectCount, p.items)
		}
	}
}

// putRawChatter writes a chatter item as a backend in another language
// might: it is c's item with the attributes of change set (nil deletes).
func putRawChatter(t *testing.T, s *DynamoStore, c store.ChatterID, change map[string]types.AttributeValue) {
	t.Helper()
	it := chatterItem(c)
	for k, v := range change {
		if v == nil {
			delete(it, k)
		} else {
			it[k] = v
		}
	}
	if _, err := s.api.PutItem(t.Context(), &dynamodb.PutItemInput{TableName: aws.String(s.tables.ChatterIDs), Item: it}); err != nil {
		t.Fatal(err)
	}
}

// TestIssuingCountsTheLiveChatterIDsWithoutReadingThem: an issue on
// DynamoDB read every chatter item of the geek (a Query returning them
// all, expired ones included) only to count the live ones. It asks for
// COUNT, with the expiry as a filter, so no item comes back; the count
// adds up every page, and counts what ChatterID.Expired calls live: an
// ID expiring at now (or without a numeric expiry) is not, one expiring
// a millisecond later is.
func TestIssuingCountsTheLiveChatterIDsWithoutReadingThem(t *testing.T) {
	base := newTestStore(t)
	rec := &chatterQueries{DynamoDBAPI: base.api, table: base.tables.ChatterIDs, limit: 2}
	s := NewDynamoStore(rec, base.tables)
	// Half a millisecond past a millisecond: the stored expiries are
	// whole milliseconds.
	now := time.UnixMilli(4_000_000_000_123).Add(500 * time.Microsecond).UTC()
	id := func(geek string, expires time.Time) store.ChatterID {
		return store.ChatterID{Geek: geek, Hash: pubsub.HashChatterID(pubsub.NewChatterID()), IssuedAt: now.Add(-2 * time.Hour), ExpiresAt: expires}
	}
	for range 5 {
		putRawChatter(t, s, id("alice", now.Add(time.Hour)), nil)
	}
	putRawChatter(t, s, id("alice", now.Add(-time.Hour)), nil)
	putRawChatter(t, s, id("alice", now.Truncate(time.Millisecond)), nil)
	putRawChatter(t, s, id("alice", now.Truncate(time.Millisecond).Add(time.Millisecond)), nil)
	putRawChatter(t, s, id("alice", now.Add(time.Hour)), map[string]types.AttributeValue{attrExpiresAtMs: nil})
	putRawChatter(t, s, id("alice", now.Add(time.Hour)), map[string]types.AttributeValue{attrExpiresAtMs: avS(fmt.Sprint(now.Add(time.Hour).UnixMilli()))})
	putRawChatter(t, s, id("bob", now.Add(time.Hour)), nil)

	for _, at := range []time.Time{now.Add(-90 * time.Minute), now.Add(-time.Millisecond), now, now.Add(time.Millisecond), now.Add(2 * time.Hour)} {
		for _, geek := range []string{"alice", "bob", "carol"} {
			ids, err := s.ListChatterIDs(t.Context(), geek)
			if err != nil {
				t.Fatal(err)
			}
			want := 0
			for _, c := range ids {
				if !c.Expired(at) {
					want++
				}
			}
			rec.take()
			got, err := s.CountLiveChatterIDs(t.Context(), geek, at)
			if err != nil || got != want {
				t.Errorf("CountLiveChatterIDs(%s, now%+v) = %d, %v; want %d", geek, at.Sub(now), got, err, want)
			}
			onlyCounted(t, fmt.Sprintf("counting %s's at now%+v", geek, at.Sub(now)), rec.take(), 1)
		}
	}
	if got, err := s.CountLiveChatterIDs(t.Context(), "alice", now); err != nil || got != 6 {
		t.Fatalf("alice holds %d live chatter IDs, %v; want 6", got, err)
	}
	// Ten items of alice's, two evaluated a page: at least five pages.
	onlyCounted(t, "counting alice's", rec.take(), 5)

	if _, _, err := store.IssueChatterIDWithin(t.Context(), s, "alice", time.Hour, now, 7); err != nil {
		t.Fatalf("the 7th live ID: %v", err)
	}
	onlyCounted(t, "issuing the 7th", rec.take(), 5)
	_, _, err := store.IssueChatterIDWithin(t.Context(), s, "alice", time.Hour, now, 7)
	if !errors.Is(err, store.ErrLimit) || !strings.Contains(err.Error(), "already holds 7 live chatter IDs") {
		t.Errorf("the 8th live ID: %v; want ErrLimit saying 7 are live", err)
	}
	onlyCounted(t, "refusing the 8th", rec.take(), 5)
}

// TestCountingLiveChatterIDsAddsUpPagesOfAMegabyte: a COUNT Query still
// stops at 1 MB of items evaluated and says where to go on; the count is
// of every page, not of the first.
func TestCountingLiveChatterIDsAddsUpPagesOfAMegabyte(t *testing.T) {
	base := newTestStore(t)
	rec := &chatterQueries{DynamoDBAPI: base.api, table: base.tables.ChatterIDs}
	s := NewDynamoStore(rec, base.tables)
	now := time.Now()
	// Six items of some 300 KB (a backend's own attribute): about 1.8 MB.
	pad := avS(strings.Repeat("p", 300<<10))
	for range 6 {
		putRawChatter(t, s, store.ChatterID{Geek: "alice", Hash: pubsub.HashChatterID(pubsub.NewChatterID()), IssuedAt: now, ExpiresAt: now.Add(time.Hour)}, map[string]types.AttributeValue{"session": pad})
	}
	got, err := s.CountLiveChatterIDs(t.Context(), "alice", now)
	if err != nil || got != 6 {
		t.Errorf("CountLiveChatterIDs = %d, %v; want 6", got, err)
	}
	onlyCounted(t, "counting 1.8 MB of items", rec.take(), 2)
}
