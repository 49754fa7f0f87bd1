package routes_test

import (
	"context"
	"encoding/base64"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/socks-dev/socks/pubsub"
	"github.com/socks-dev/socks/store"
)

// An authorizer context is not socks's: whatever it claims, the geek is
// the one whose chatter ID was checked.
func TestConnectTrustsTheChatterIDNotAnAuthorizerContext(t *testing.T) {
	h, s, now := newHandler(t)
	ctx := context.Background()
	alice, _, _ := store.IssueChatterID(ctx, s, "alice", time.Hour, now)
	for _, tc := range []struct {
		name       string
		q          map[string]string
		authorizer any
		status     int
	}{
		{"an authorizer naming another geek does not change whose connection it is", map[string]string{"geek": "alice", "id": alice}, map[string]any{"principalId": "bob", "geek": "bob"}, 200},
		{"an authorizer naming the geek does not stand in for a chatter ID", map[string]string{"geek": "alice"}, map[string]any{"principalId": "alice", "geek": "alice"}, 401},
		{"an authorizer that is not an object changes nothing", map[string]string{"geek": "alice", "id": alice}, "bob", 200},
		{"alice's chatter ID does not admit bob, whatever the authorizer says", map[string]string{"geek": "bob", "id": alice}, map[string]any{"geek": "alice"}, 403},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ev := connectEvent("c-auth", tc.q)
			ev.RequestContext.Authorizer = tc.authorizer
			resp, err := h.Handle(ctx, ev)
			if err != nil || resp.StatusCode != tc.status {
				t.Fatalf("status %d, %v; want %d", resp.StatusCode, err, tc.status)
			}
			c, err := s.GetConnection(ctx, "c-auth")
			switch {
			case tc.status != 200 && !errors.Is(err, store.ErrNotFound):
				t.Errorf("refused, yet recorded %+v (%v)", c, err)
			case tc.status == 200 && (err != nil || c.Geek != "alice"):
				t.Errorf("record %+v, %v; want alice's", c, err)
			}
			_ = s.DeleteConnection(ctx, "c-auth")
		})
	}
}

// connectAs connects id as geek on topics, or fails the test.
func connectAs(t *testing.T, h interface {
	Handle(context.Context, events.APIGatewayWebsocketProxyRequest) (events.APIGatewayProxyResponse, error)
}, s store.Store, id, geek, topics string, now time.Time) {
	t.Helper()
	secret, _, err := store.IssueChatterID(context.Background(), s, geek, time.Hour, now)
	if err != nil {
		t.Fatal(err)
	}
	if resp, err := h.Handle(context.Background(), connectEvent(id, map[string]string{"geek": geek, "id": secret, "topic": topics})); err != nil || resp.StatusCode != 200 {
		t.Fatalf("connect %s: %d %s %v", id, resp.StatusCode, resp.Body, err)
	}
}

// A frame can only ever change its own connection's topics: a geek, a
// connection ID or a binary frame in it reaches no other connection, and
// no frame on a connection that was never admitted writes anything.
func TestAFrameChangesOnlyItsOwnConnection(t *testing.T) {
	h, s, now := newHandler(t)
	ctx := context.Background()
	connectAs(t, h, s, "c-alice", "alice", "updates", now)
	connectAs(t, h, s, "c-bob", "bob", "bills", now)
	subscribeFrame := `{"action":"subscribe","topics":["secrets"],"geek":"bob","connectionId":"c-bob"}`
	for _, tc := range []struct {
		name     string
		ev       events.APIGatewayWebsocketProxyRequest
		wantType string
		alice    []string
	}{
		{"a subscribe naming another geek and connection subscribes the sender", messageEvent("c-alice", "subscribe", subscribeFrame), "subscribed", []string{"secrets", "updates"}},
		{"an unsubscribe naming another geek unsubscribes the sender", messageEvent("c-alice", "unsubscribe", `{"action":"unsubscribe","topics":["secrets","bills"],"geek":"bob"}`), "unsubscribed", []string{"updates"}},
		{"a binary frame holding a subscribe is not one", func() events.APIGatewayWebsocketProxyRequest {
			ev := messageEvent("c-alice", "$default", base64.StdEncoding.EncodeToString([]byte(subscribeFrame)))
			ev.IsBase64Encoded = true
			return ev
		}(), "error", []string{"updates"}},
		{"a base64 body on the subscribe route is not read as JSON", func() events.APIGatewayWebsocketProxyRequest {
			ev := messageEvent("c-alice", "subscribe", base64.StdEncoding.EncodeToString([]byte(subscribeFrame)))
			ev.IsBase64Encoded = true
			return ev
		}(), "error", []string{"updates"}},
		{"a route the handlers do not know is the default route", messageEvent("c-alice", "sendmessage", subscribeFrame), "error", []string{"updates"}},
		{"a subscribe on a connection never admitted writes nothing", messageEvent("c-ghost", "subscribe", subscribeFrame), "error", []string{"updates"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, err := h.Handle(ctx, tc.ev)
			if err != nil {
				t.Fatal(err)
			}
			if r := reply(t, resp.Body); r.Type != tc.wantType {
				t.Errorf("reply %+v; want type %s", r, tc.wantType)
			}
			if c, err := s.GetConnection(ctx, "c-alice"); err != nil || !slices.Equal(sorted(c.Topics), tc.alice) {
				t.Errorf("alice's connection %+v, %v; want topics %v", c, err, tc.alice)
			}
			if c, err := s.GetConnection(ctx, "c-bob"); err != nil || c.Geek != "bob" || !slices.Equal(c.Topics, []string{"bills"}) {
				t.Errorf("bob's connection %+v, %v; want it as it was", c, err)
			}
			if c, err := s.GetConnection(ctx, "c-ghost"); !errors.Is(err, store.ErrNotFound) {
				t.Errorf("a connection never admitted was recorded: %+v, %v", c, err)
			}
		})
	}
}

// A connectedAt later than the handler's clock (a forged or odd event)
// must not make a record that outlives the 2 h every connection is held
// to, which prune-stale relies on.
func TestAConnectedAtInTheFutureDoesNotOutliveTheMaximumDuration(t *testing.T) {
	h, s, now := newHandler(t)
	ctx := context.Background()
	secret, _, _ := store.IssueChatterID(ctx, s, "alice", time.Hour, now)
	ev := connectEvent("c-future", map[string]string{"geek": "alice", "id": secret})
	ev.RequestContext.ConnectedAt = now.Add(365 * 24 * time.Hour).UnixMilli()
	if resp, err := h.Handle(ctx, ev); err != nil || resp.StatusCode != 200 {
		t.Fatalf("status %d, %v", resp.StatusCode, err)
	}
	c, err := s.GetConnection(ctx, "c-future")
	if err != nil {
		t.Fatal(err)
	}
	if c.ConnectedAt.After(now) || c.ExpiresAt.After(now.Add(pubsub.MaxConnectionDuration)) {
		t.Errorf("record connected at %v, expiring %v; want neither past now (%v) and its 2 h", c.ConnectedAt, c.ExpiresAt, now)
	}
}

// A connectedAt far in the past (a forged or odd event) made a record
// already expired, though the $connect was answered 200: the client was
// connected and reached by nothing. A $connect runs within API Gateway's
// 29 s integration timeout of the connection's start, so a connectedAt
// older than pubsub.ConnectWindow is not the connection's: the record is
// taken as connected then, and lives its 2 h from there, never past now
// plus its 2 h.
func TestAConnectedAtFarInThePastDoesNotMakeARecordAlreadyExpired(t *testing.T) {
	for _, tc := range []struct {
		name    string
		ago     time.Duration
		wantAgo time.Duration
	}{
		{"a year ago is taken as the start of the connect window", 365 * 24 * time.Hour, pubsub.ConnectWindow},
		{"just past the 2 h is taken as the start of the connect window", pubsub.MaxConnectionDuration + time.Millisecond, pubsub.ConnectWindow},
		{"a minute ago is taken as the start of the connect window", time.Minute, pubsub.ConnectWindow},
		{"within the connect window is kept", 10 * time.Second, 10 * time.Second},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h, s, now := newHandler(t)
			ctx := context.Background()
			secret, _, _ := store.IssueChatterID(ctx, s, "alice", time.Hour, now)
			ev := connectEvent("c-past", map[string]string{"geek": "alice", "id": secret, "topic": "updates"})
			ev.RequestContext.ConnectedAt = now.Add(-tc.ago).UnixMilli()
			if resp, err := h.Handle(ctx, ev); err != nil || resp.StatusCode != 200 {
				t.Fatalf("status %d, %v", resp.StatusCode, err)
			}
			c, err := s.GetConnection(ctx, "c-past")
			if err != nil {
				t.Fatal(err)
			}
			if c.Expired(now) {
				t.Fatalf("record connected at %v expires %v: already expired at %v", c.ConnectedAt, c.ExpiresAt, now)
			}
			if want := now.Add(-tc.wantAgo); !c.ConnectedAt.Equal(want) || !c.ExpiresAt.Equal(want.Add(pubsub.MaxConnectionDuration)) {
				t.Errorf("record connected at %v expiring %v; want %v and its 2 h", c.ConnectedAt, c.ExpiresAt, want)
			}
			// The broker finds it.
			ids, err := s.FindTargets(ctx, []string{"alice"}, []string{"updates"}, now)
			if err != nil || len(ids) != 1 {
				t.Errorf("targets of alice: %v, %v; want the connection", ids, err)
			}
		})
	}
}

func sorted(in []string) []string { return slices.Sorted(slices.Values(in)) }

// A client's frame is a MESSAGE event: were the route selection ever to
// give it the key $disconnect (a frame {"action":"$disconnect"}), it must
// not delete the sender's record, which would let a geek hold connections
// past its cap; nor may a MESSAGE with the key $connect admit anything.
func TestAMessageCannotRunTheConnectOrDisconnectRoute(t *testing.T) {
	h, s, now := newHandler(t)
	ctx := context.Background()
	connectAs(t, h, s, "c-alice", "alice", "updates", now)
	for _, route := range []string{"$disconnect", "$connect"} {
		t.Run(route, func(t *testing.T) {
			ev := messageEvent("c-alice", route, `{"action":"`+route+`"}`)
			resp, err := h.Handle(ctx, ev)
			if err != nil {
				t.Fatal(err)
			}
			if r := reply(t, resp.Body); r.Type != "error" {
				t.Errorf("reply %+v; want an error frame", r)
			}
			if c, err := s.GetConnection(ctx, "c-alice"); err != nil || !slices.Equal(c.Topics, []string{"updates"}) {
				t.Errorf("alice's connection after the frame: %+v, %v", c, err)
			}
		})
	}
}
