package routes_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/socks-dev/socks/pubsub"
	"github.com/socks-dev/socks/store"
)

// FuzzConnectQuery sends $connect any geek, topic list and chatter ID in
// its query string (docs/reliability.md, "Connect query strings"): it
// never fails, answers only 200, 400, 401 or 403, connects only the geek
// of a real chatter ID to topics that ID allows, records exactly the
// topics named (nothing at all when refused), and refuses in under 1 KB
// with words that do not depend on the chatter ID given: a wrong ID is
// never echoed.
func FuzzConnectQuery(f *testing.F) {
	h, s, now := newHandler(f)
	ctx := context.Background()
	anyID, _, err := store.IssueChatterID(ctx, s, "alice", time.Hour, now)
	if err != nil {
		f.Fatal(err)
	}
	limited, _, err := store.IssueChatterID(ctx, s, "bob", time.Hour, now, "updates", "entity:*")
	if err != nil {
		f.Fatal(err)
	}
	ids := map[string]string{"alice": anyID, "bob": limited}
	allowed := map[string][]string{"bob": {"updates", "entity:*"}}
	f.Add("alice", "news,updates", uint8(0), "")
	f.Add("bob", "entity:42,updates", uint8(0), "")
	f.Add("bob", "news", uint8(0), "")
	f.Add("bob", "", uint8(0), "")
	f.Add("alice", "", uint8(1), "sc_made-up")
	f.Add("", "a", uint8(1), "x")
	f.Add("alice", "a,,b", uint8(0), "")
	f.Add("al ice", "\x00", uint8(2), "")
	n := 0
	f.Fuzz(func(t *testing.T, geek, topic string, how uint8, made string) {
		n++
		// The ID: the geek's own, the other geek's, or one made up.
		id := made
		switch how % 3 {
		case 0:
			id = ids[geek]
		case 2:
			id = ids["alice"]
			if geek == "alice" {
				id = ids["bob"]
			}
		}
		connect := func(cid, id string) (int, string) {
			q := map[string]string{"geek": geek, "topic": topic, "id": id}
			resp, err := h.Handle(ctx, connectEvent(cid, q))
			if err != nil {
				t.Fatalf("geek %q topic %q: %v", geek, topic, err)
			}
			return resp.StatusCode, resp.Body
		}
		cid := fmt.Sprintf("fz%d", n)
		status, body := connect(cid, id)
		c, gerr := s.GetConnection(ctx, cid)
		if status != 200 {
			if !errors.Is(gerr, store.ErrNotFound) {
				t.Fatalf("geek %q topic %q: refused with %d but recorded %+v (%v)", geek, topic, status, c, gerr)
			}
			switch status {
			case 400, 401, 403:
			default:
				t.Fatalf("geek %q topic %q: answered %d %q", geek, topic, status, body)
			}
			if len(body) > 1024 {
				t.Fatalf("geek %q topic %q: a refusal of %d bytes", geek, topic, len(body))
			}
			if id != "" && (id != ids[geek] || geek == "") {
				// Another wrong ID gets the same words.
				if _, again := connect(cid+"b", id+"Q"); again != body {
					t.Fatalf("geek %q: the refusal depends on the chatter ID given:\n%q\n%q", geek, body, again)
				}
			}
			return
		}
		defer func() { _, _ = h.Handle(ctx, disconnectEvent(cid)) }()
		if ids[geek] == "" || id != ids[geek] {
			t.Fatalf("geek %q connected with chatter ID %q", geek, id)
		}
		want, err := pubsub.SplitTopics(topic)
		if err != nil {
			t.Fatalf("topic %q connected, though SplitTopics refuses it: %v", topic, err)
		}
		for _, tp := range want {
			if !pubsub.TopicAllowed(allowed[geek], tp) {
				t.Fatalf("geek %q connected to %q, outside %q", geek, tp, allowed[geek])
			}
		}
		if gerr != nil || c.Geek != geek || !slices.Equal(sorted(c.Topics), sorted(want)) {
			t.Fatalf("geek %q topic %q: recorded %+v (%v); want topics %q", geek, topic, c, gerr, want)
		}
	})
}

func disconnectEvent(id string) events.APIGatewayWebsocketProxyRequest {
	return events.APIGatewayWebsocketProxyRequest{RequestContext: events.APIGatewayWebsocketProxyRequestContext{RouteKey: "$disconnect", EventType: "DISCONNECT", ConnectionID: id}}
}
