package awsops

import (
	"errors"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/socks-dev/socks/pubsub"
	"github.com/socks-dev/socks/routes"
	"github.com/socks-dev/socks/store"
)

// docs/chatter.md tells backends that write chatter items themselves to
// always write expiresAtMs. An item a backend wrote without it (or with
// only the TTL attribute) must not make an ID that never expires: $connect
// refuses it, and records nothing.
func TestAChatterItemWithoutExpiresAtMsIsRefused(t *testing.T) {
	s := newTestStore(t)
	now := time.Now()
	secret := pubsub.NewChatterID()
	it := chatterItem(store.ChatterID{Geek: "alice", Hash: pubsub.HashChatterID(secret), IssuedAt: now.Add(-time.Minute)})
	delete(it, attrExpiresAtMs)
	it[attrTTL] = avN(now.Add(time.Hour).Unix())
	if _, err := s.api.PutItem(t.Context(), &dynamodb.PutItemInput{TableName: aws.String(s.tables.ChatterIDs), Item: it}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.VerifyChatterID(t.Context(), "alice", secret, now); !errors.Is(err, store.ErrExpired) {
		t.Errorf("VerifyChatterID = %v; want ErrExpired", err)
	}
	h := &routes.Handler{Store: s, Now: func() time.Time { return now }}
	resp, err := h.Handle(t.Context(), events.APIGatewayWebsocketProxyRequest{
		QueryStringParameters: map[string]string{"geek": "alice", "id": secret},
		RequestContext:        events.APIGatewayWebsocketProxyRequestContext{RouteKey: routes.RouteConnect, EventType: "CONNECT", ConnectionID: "c-no-expiry"},
	})
	if err != nil || resp.StatusCode != http.StatusForbidden {
		t.Errorf("$connect answered %d %q, %v; want 403", resp.StatusCode, resp.Body, err)
	}
	if c, err := s.GetConnection(t.Context(), "c-no-expiry"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("a refused connect recorded %+v, %v", c, err)
	}
}

// TestAChatterItemWithoutANumericExpiryIsPruned: an item that $connect
// refuses as expired for lacking a numeric expiresAtMs (left out, or
// written as a string) is counted expired by a dry-run prune, and the
// prune itself deletes it; it skipped such items, so the dry run promised
// deletions the run never made and they stayed, with no TTL, for ever.
func TestAChatterItemWithoutANumericExpiryIsPruned(t *testing.T) {
	s := newTestStore(t)
	now := time.Now()
	for i, exp := range []types.AttributeValue{nil, avS(fmt.Sprint(now.Add(time.Hour).UnixMilli()))} {
		it := chatterItem(store.ChatterID{Geek: "alice", Hash: pubsub.HashChatterID(pubsub.NewChatterID()), IssuedAt: now.Add(-time.Minute)})
		delete(it, attrExpiresAtMs)
		if exp != nil {
			it[attrExpiresAtMs] = exp
		}
		if _, err := s.api.PutItem(t.Context(), &dynamodb.PutItemInput{TableName: aws.String(s.tables.ChatterIDs), Item: it}); err != nil {
			t.Fatalf("item %d: %v", i, err)
		}
	}
	if err := s.PutChatterID(t.Context(), store.ChatterID{Geek: "alice", Hash: pubsub.HashChatterID(pubsub.NewChatterID()), IssuedAt: now, ExpiresAt: now.Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	ids, err := s.ListChatterIDs(t.Context(), "alice")
	if err != nil {
		t.Fatal(err)
	}
	expired := 0
	for _, c := range ids {
		if c.Expired(now) {
			expired++
		}
	}
	if expired != 2 {
		t.Fatalf("%d of the %d items read as expired; want the 2 without a numeric expiresAtMs", expired, len(ids))
	}
	if n, err := s.DeleteExpiredChatterIDs(t.Context(), now); err != nil || n != 2 {
		t.Errorf("DeleteExpiredChatterIDs = %d, %v; want the 2 items that read as expired", n, err)
	}
	if ids, err := s.ListChatterIDs(t.Context(), "alice"); err != nil || len(ids) != 1 || ids[0].Expired(now) {
		t.Errorf("after the prune ListChatterIDs = %+v, %v; want the one live ID", ids, err)
	}
}
