package awsops

import (
	"errors"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/socks-dev/socks/pubsub"
	"github.com/socks-dev/socks/store"
)

// TestNumbersWithAFractionAreReadAsTheNumbersTheyAre: DynamoDB takes a
// number with a fraction (Python's time.time() * 1000) as the number it
// is, and its own comparisons (filters, conditions) so compare it. Read
// with getN, which takes only integers, such an attribute was missing: a
// chatter ID's issuedAt was listed as 1970, a connection's connectedAt
// too, a connection's expiresAtMs made it never expire (fanned out to
// for as long as its TTL left the items), and a report's TTL made it
// never expire. Times are read as the millisecond they fall in, expiries
// rounded up, as DynamoDB's comparison with a whole millisecond (or
// second) orders them.
func TestNumbersWithAFractionAreReadAsTheNumbersTheyAre(t *testing.T) {
	s := newTestStore(t)
	base := time.UnixMilli(4_000_000_000_000).UTC()
	n := func(v string) types.AttributeValue { return &types.AttributeValueMemberN{Value: v} }
	put := func(table string, it item) {
		t.Helper()
		if _, err := s.api.PutItem(t.Context(), &dynamodb.PutItemInput{TableName: aws.String(table), Item: it}); err != nil {
			t.Fatal(err)
		}
	}

	t.Run("a chatter ID's issuedAt", func(t *testing.T) {
		c := store.ChatterID{Geek: "alice", Hash: pubsub.HashChatterID(pubsub.NewChatterID()), IssuedAt: base.Add(-time.Hour), ExpiresAt: base}
		putRawChatter(t, s, c, map[string]types.AttributeValue{attrIssuedAt: n("3999996400000.25")})
		ids, err := s.ListChatterIDs(t.Context(), "alice")
		if err != nil || len(ids) != 1 {
			t.Fatalf("ListChatterIDs = %v, %v", ids, err)
		}
		if !ids[0].IssuedAt.Equal(base.Add(-time.Hour)) {
			t.Errorf("issued at %s; want %s", ids[0].IssuedAt, base.Add(-time.Hour))
		}
	})

	t.Run("a connection's connectedAt and expiresAtMs", func(t *testing.T) {
		// Its TTL (whole seconds, rounded up) is written from base+1ms.
		c := pubsub.Connection{ID: "frac=", Geek: "bob", Topics: []string{"news"}, ConnectedAt: base.Add(-time.Hour), ExpiresAt: base.Add(time.Millisecond)}
		frac := map[string]types.AttributeValue{attrConnectedAt: n("3999996400000.7"), attrExpiresAtMs: n("4000000000000.5")}
		for _, it := range []item{connItem(c, 1), geekItem(c, 1), subItem(c, "news", 1)} {
			for k, v := range frac {
				it[k] = v
			}
			put(s.tables.Connections, it)
		}
		got, err := s.GetConnection(t.Context(), c.ID)
		if err != nil {
			t.Fatal(err)
		}
		if !got.ConnectedAt.Equal(base.Add(-time.Hour)) || !got.ExpiresAt.Equal(base.Add(time.Millisecond)) {
			t.Errorf("connected at %s, expires at %s; want %s and %s", got.ConnectedAt, got.ExpiresAt, base.Add(-time.Hour), base.Add(time.Millisecond))
		}
		for _, tt := range []struct {
			at   time.Time
			live bool
		}{{base, true}, {base.Add(time.Millisecond), false}, {base.Add(time.Hour), false}} {
			for _, users := range [][]string{{"bob"}, nil} {
				targets, err := s.FindTargets(t.Context(), users, []string{"news"}, tt.at)
				if err != nil {
					t.Fatal(err)
				}
				if live := len(targets) == 1; live != tt.live {
					t.Errorf("at base+%s, FindTargets(users %v) = %v; want live %v", tt.at.Sub(base), users, targets, tt.live)
				}
			}
		}
	})

	t.Run("a report's TTL", func(t *testing.T) {
		r := store.Report{MessageID: "m-frac", At: base.Add(-time.Minute)}
		if err := s.PutReport(t.Context(), r); err != nil {
			t.Fatal(err)
		}
		if _, err := s.api.UpdateItem(t.Context(), &dynamodb.UpdateItemInput{
			TableName:                 aws.String(s.tables.Reports),
			Key:                       item{attrReportID: avS(r.MessageID)},
			UpdateExpression:          aws.String("SET #ttl = :ttl"),
			ExpressionAttributeNames:  map[string]string{"#ttl": attrTTL},
			ExpressionAttributeValues: map[string]types.AttributeValue{":ttl": n("4000000000.5")},
		}); err != nil {
			t.Fatal(err)
		}
		for _, tt := range []struct {
			at   time.Time
			live bool
		}{{base.Add(700 * time.Millisecond), true}, {base.Add(1200 * time.Millisecond), false}} {
			s.now = func() time.Time { return tt.at }
			_, err := s.GetReport(t.Context(), r.MessageID)
			if live := err == nil; live != tt.live || !live && !errors.Is(err, store.ErrNotFound) {
				t.Errorf("at base+%s, GetReport: %v; want live %v", tt.at.Sub(base), err, tt.live)
			}
		}
		s.now = time.Now
	})
}
