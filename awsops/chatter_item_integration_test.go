package awsops

import (
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

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
