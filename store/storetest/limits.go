package storetest

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/socks-dev/socks/pubsub"
	"github.com/socks-dev/socks/routes"
	"github.com/socks-dev/socks/store"
)

// Clients opens clients of one store: each call returns a separate client
// (its own connection pool or SDK client), as separate processes or Lambda
// invocations would hold, all reading and writing the same data.
type Clients func() store.Store

// RunLimits checks the limits that must hold when separate clients work on
// one store at once: no mutex inside one process helps. newStore returns
// an opener of clients of a fresh, empty store for each call.
func RunLimits(t *testing.T, newStore func(t *testing.T) Clients) {
	for _, tc := range limitTests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tc.run(t, newStore(t))
		})
	}
}

var limitTests = []struct {
	name string
	run  func(t *testing.T, open Clients)
}{
	{"ten concurrent subscribes of 40 topics from ten clients leave at most 50 topics", func(t *testing.T, open Clients) {
		ctx := t.Context()
		first := open()
		c := pubsub.Connection{ID: "c1", Geek: "Friendless", Topics: []string{"t0"}, ConnectedAt: Now, ExpiresAt: Now.Add(time.Hour)}
		if err := first.PutConnection(ctx, c); err != nil {
			t.Fatal(err)
		}
		const n, each = 10, 40
		handlers := make([]*routes.Handler, n)
		for i := range handlers {
			handlers[i] = &routes.Handler{Store: open(), Now: func() time.Time { return Now }}
		}
		replies := make([]routes.Reply, n)
		var wg sync.WaitGroup
		for i, h := range handlers {
			topics := make([]string, each)
			for j := range topics {
				topics[j] = fmt.Sprintf("c%d-t%d", i, j)
			}
			body, _ := json.Marshal(map[string]any{"action": "subscribe", "topics": topics})
			wg.Go(func() {
				resp, err := h.Handle(ctx, frame("c1", routes.RouteSubscribe, string(body)))
				if err != nil {
					t.Errorf("subscribe %d: %v", i, err)
					return
				}
				if err := json.Unmarshal([]byte(resp.Body), &replies[i]); err != nil {
					t.Errorf("subscribe %d: reply %q: %v", i, resp.Body, err)
				}
			})
		}
		wg.Wait()
		got, err := first.GetConnection(ctx, "c1")
		if err != nil {
			t.Fatal(err)
		}
		if len(got.Topics) > pubsub.MaxTopicsPerConnection {
			t.Fatalf("the connection follows %d topics; the limit is %d", len(got.Topics), pubsub.MaxTopicsPerConnection)
		}
		ok := 0
		for i, r := range replies {
			switch {
			case r.Type == "subscribed":
				ok++
			case r.Type == "error" && strings.Contains(r.Error, "at most 50 topics"):
			default:
				t.Errorf("subscribe %d got %+v; want subscribed or the limit's error frame", i, r)
			}
		}
		// 1 + 40 fits, 1 + 80 does not: exactly one subscribe wins.
		if ok != 1 || len(got.Topics) != 1+each {
			t.Errorf("%d subscribes succeeded and the connection follows %d topics; want 1 and %d", ok, len(got.Topics), 1+each)
		}
	}},
	{"a chatter ID limited to updates and entity:* cannot follow news", func(t *testing.T, open Clients) {
		ctx := t.Context()
		s := open()
		secret, _, err := store.IssueChatterID(ctx, s, "alice", time.Hour, Now, "updates", "entity:*")
		if err != nil {
			t.Fatal(err)
		}
		h := &routes.Handler{Store: open(), Now: func() time.Time { return Now }}
		for _, tc := range []struct {
			topic  string
			status int
		}{
			{"news", http.StatusForbidden},
			{"updates,news", http.StatusForbidden},
			{"", http.StatusForbidden},
			{".", http.StatusForbidden},
			{"entity", http.StatusForbidden},
			{"updates", http.StatusOK},
			{"updates,entity:42", http.StatusOK},
		} {
			id := "c-" + tc.topic
			resp, err := h.Handle(ctx, connect(id, "alice", secret, tc.topic))
			if err != nil {
				t.Fatal(err)
			}
			if resp.StatusCode != tc.status {
				t.Errorf("connect to %q: status %d %q; want %d", tc.topic, resp.StatusCode, resp.Body, tc.status)
			}
			if _, err := s.GetConnection(ctx, id); (err == nil) != (tc.status == http.StatusOK) {
				t.Errorf("connect to %q: record lookup %v; want a record only when accepted", tc.topic, err)
			}
		}
		for _, tc := range []struct {
			topics string
			want   string
		}{
			{`["news"]`, "error"},
			{`["entity:7","news"]`, "error"},
			{`["."]`, "error"},
			{`["entity:7"]`, "subscribed"},
		} {
			resp, err := h.Handle(ctx, frame("c-updates", routes.RouteSubscribe, `{"action":"subscribe","topics":`+tc.topics+`}`))
			if err != nil {
				t.Fatal(err)
			}
			var r routes.Reply
			_ = json.Unmarshal([]byte(resp.Body), &r)
			if r.Type != tc.want {
				t.Errorf("subscribe to %s: %+v; want %s", tc.topics, r, tc.want)
			}
		}
		c, err := s.GetConnection(ctx, "c-updates")
		if err != nil || strings.Join(c.Topics, ",") != "entity:7,updates" {
			t.Errorf("the connection follows %v (%v); want entity:7 and updates only", c.Topics, err)
		}
	}},
	{"concurrent issues from separate clients overshoot the live chatter IDs per geek by at most their number", func(t *testing.T, open Clients) {
		ctx := t.Context()
		s := open()
		// An expired ID takes no place.
		if _, _, err := store.IssueChatterIDWithin(ctx, s, "alice", time.Minute, Now.Add(-time.Hour), 3); err != nil {
			t.Fatal(err)
		}
		const limit, n = 3, 8
		var wg sync.WaitGroup
		errs := make([]error, n)
		for i := range n {
			c := open()
			wg.Go(func() {
				_, _, errs[i] = store.IssueChatterIDWithin(ctx, c, "alice", time.Hour, Now, limit)
			})
		}
		wg.Wait()
		issued := 0
		for i, err := range errs {
			switch {
			case err == nil:
				issued++
			case !errors.Is(err, store.ErrLimit):
				t.Errorf("issue %d: %v; want nil or ErrLimit", i, err)
			}
		}
		ids, err := s.ListChatterIDs(ctx, "alice")
		if err != nil {
			t.Fatal(err)
		}
		if live := len(ids) - 1; live != issued || live < limit || live > limit+n {
			t.Errorf("%d issues succeeded, %d live IDs; want between %d and %d, and equal", issued, live, limit, limit+n)
		}
		if _, _, err := store.IssueChatterIDWithin(ctx, s, "alice", time.Hour, Now, limit); !errors.Is(err, store.ErrLimit) || !strings.Contains(err.Error(), "live chatter IDs, the most allowed") {
			t.Errorf("an issue over the bound: %v; want ErrLimit saying why", err)
		}
		if _, err := s.RevokeChatterIDs(ctx, "alice", nil); err != nil {
			t.Fatal(err)
		}
		if _, _, err := store.IssueChatterIDWithin(ctx, s, "alice", time.Hour, Now, limit); err != nil {
			t.Errorf("an issue after revoking all: %v", err)
		}
	}},
	{"concurrent connects from separate clients overshoot the per-geek cap by at most their number", func(t *testing.T, open Clients) {
		ctx := t.Context()
		s := open()
		secret, _, err := store.IssueChatterID(ctx, s, "alice", time.Hour, Now)
		if err != nil {
			t.Fatal(err)
		}
		const limit, n = 3, 8
		var wg sync.WaitGroup
		statuses := make([]int, n)
		for i := range n {
			h := &routes.Handler{Store: open(), MaxConnectionsPerGeek: limit, Now: func() time.Time { return Now }}
			wg.Go(func() {
				resp, err := h.Handle(ctx, connect(fmt.Sprintf("c%d", i), "alice", secret, "updates"))
				if err != nil {
					t.Errorf("connect %d: %v", i, err)
				}
				statuses[i] = resp.StatusCode
			})
		}
		wg.Wait()
		live := countLive(t, s, "alice")
		accepted := 0
		for i, st := range statuses {
			switch st {
			case http.StatusOK:
				accepted++
			case http.StatusTooManyRequests:
			default:
				t.Errorf("connect %d: status %d; want 200 or 429", i, st)
			}
		}
		if live != accepted || live < limit || live > limit+n {
			t.Errorf("%d connects accepted, %d records; want between %d and %d, and equal", accepted, live, limit, limit+n)
		}
		// Now over the cap one at a time: refused with the reason.
		h := &routes.Handler{Store: open(), MaxConnectionsPerGeek: limit, Now: func() time.Time { return Now }}
		resp, err := h.Handle(ctx, connect("late", "alice", secret, "updates"))
		if err != nil || resp.StatusCode != http.StatusTooManyRequests || !strings.Contains(resp.Body, "open connections") {
			t.Errorf("a connect over the cap: %d %q %v; want 429 saying why", resp.StatusCode, resp.Body, err)
		}
		// Records a lost $disconnect left behind stop counting once they
		// are gone (prune-stale deletes them): nobody stays locked out.
		var ids []string
		for i := range n {
			ids = append(ids, fmt.Sprintf("c%d", i))
		}
		if _, err := s.DeleteConnections(ctx, ids); err != nil {
			t.Fatal(err)
		}
		resp, err = h.Handle(ctx, connect("after", "alice", secret, "updates"))
		if err != nil || resp.StatusCode != http.StatusOK {
			t.Errorf("a connect after the stale records went: %d %q %v; want 200", resp.StatusCode, resp.Body, err)
		}
	}},
	{"subscribes racing a $disconnect from separate clients leave no record and no subscription behind", func(t *testing.T, open Clients) {
		// docs/tables.md: DeleteConnection guards against a concurrent
		// subscribe. A subscription item left without its record would
		// be a target no $disconnect ever removes.
		ctx := t.Context()
		s := open()
		const rounds, subscribers = 10, 3
		var topics []string
		for r := range rounds {
			id := fmt.Sprintf("race%d", r)
			if err := s.PutConnection(ctx, pubsub.Connection{ID: id, Geek: "bob", Topics: []string{"t0"}, ConnectedAt: Now, ExpiresAt: Now.Add(time.Hour)}); err != nil {
				t.Fatal(err)
			}
			var wg sync.WaitGroup
			for i := range subscribers {
				topic := fmt.Sprintf("r%d-s%d", r, i)
				topics = append(topics, topic)
				h := &routes.Handler{Store: open(), Now: func() time.Time { return Now }}
				wg.Go(func() {
					if _, err := h.Handle(ctx, frame(id, routes.RouteSubscribe, `{"action":"subscribe","topics":["`+topic+`"]}`)); err != nil {
						t.Errorf("subscribe %s to %s: %v", id, topic, err)
					}
				})
			}
			h := &routes.Handler{Store: open(), Now: func() time.Time { return Now }}
			wg.Go(func() {
				if _, err := h.Handle(ctx, events.APIGatewayWebsocketProxyRequest{RequestContext: events.APIGatewayWebsocketProxyRequestContext{
					RouteKey: routes.RouteDisconnect, EventType: "DISCONNECT", ConnectionID: id,
				}}); err != nil {
					t.Errorf("disconnect %s: %v", id, err)
				}
			})
			wg.Wait()
			if c, err := s.GetConnection(ctx, id); !errors.Is(err, store.ErrNotFound) {
				t.Errorf("after its $disconnect, %s is %+v, %v; want no record", id, c, err)
			}
		}
		left, err := s.FindTargets(ctx, nil, append(topics, "t0"), Now)
		if err != nil {
			t.Fatal(err)
		}
		if len(left) != 0 || countLive(t, s, "bob") != 0 {
			t.Errorf("targets left behind: %+v", left)
		}
	}},
	{"eight concurrent read-modify-writes of one report from eight clients lose no update", func(t *testing.T, open Clients) {
		ctx := t.Context()
		if err := open().PutReport(ctx, store.Report{MessageID: "m-1", Targets: 8, At: Now}); err != nil {
			t.Fatal(err)
		}
		const writers = 8
		var wg sync.WaitGroup
		errs := make(chan error, writers)
		for range writers {
			s := open()
			wg.Go(func() {
				for range 200 {
					r, err := s.GetReport(ctx, "m-1")
					if err != nil {
						errs <- err
						return
					}
					r.Delivered++
					err = s.ReplaceReport(ctx, r)
					if !errors.Is(err, store.ErrConflict) {
						errs <- err
						return
					}
				}
				errs <- errors.New("still overtaken after 200 attempts")
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			if err != nil {
				t.Error(err)
			}
		}
		if got, err := open().GetReport(ctx, "m-1"); err != nil || got.Delivered != writers {
			t.Errorf("GetReport = %+v, %v; want %d deliveries, one per writer", got, err, writers)
		}
	}},
}

func countLive(t *testing.T, s store.Store, geek string) int {
	t.Helper()
	n := 0
	err := s.ListConnections(t.Context(), store.ConnectionFilter{Geek: geek}, Now, func(page []pubsub.Connection) error {
		n += len(page)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func connect(id, geek, secret, topic string) events.APIGatewayWebsocketProxyRequest {
	q := map[string]string{"geek": geek, "id": secret}
	if topic != "" {
		q["topic"] = topic
	}
	return events.APIGatewayWebsocketProxyRequest{
		QueryStringParameters: q,
		RequestContext: events.APIGatewayWebsocketProxyRequestContext{
			RouteKey: routes.RouteConnect, EventType: "CONNECT", ConnectionID: id,
		},
	}
}

func frame(id, route, body string) events.APIGatewayWebsocketProxyRequest {
	return events.APIGatewayWebsocketProxyRequest{
		Body: body,
		RequestContext: events.APIGatewayWebsocketProxyRequestContext{
			RouteKey: route, EventType: "MESSAGE", ConnectionID: id,
		},
	}
}
