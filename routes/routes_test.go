package routes_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/aws/aws-lambda-go/events"

	"github.com/socks-dev/socks/local"
	"github.com/socks-dev/socks/pubsub"
	"github.com/socks-dev/socks/routes"
	"github.com/socks-dev/socks/store"
)

func newHandler(t testing.TB) (*routes.Handler, store.Store, time.Time) {
	t.Helper()
	db, err := local.Open(context.Background(), filepath.Join(t.TempDir(), "socks.db"), local.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	now := time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)
	return &routes.Handler{Store: db.Store(), Now: func() time.Time { return now }}, db.Store(), now
}

func connectEvent(id string, q map[string]string) events.APIGatewayWebsocketProxyRequest {
	return events.APIGatewayWebsocketProxyRequest{
		QueryStringParameters: q,
		RequestContext: events.APIGatewayWebsocketProxyRequestContext{
			RouteKey: "$connect", EventType: "CONNECT", ConnectionID: id,
		},
	}
}

func messageEvent(id, route, body string) events.APIGatewayWebsocketProxyRequest {
	return events.APIGatewayWebsocketProxyRequest{
		Body: body,
		RequestContext: events.APIGatewayWebsocketProxyRequestContext{
			RouteKey: route, EventType: "MESSAGE", ConnectionID: id,
		},
	}
}

// inSteps hides the local store's AdmitConnection: the routes then admit
// in steps, as they do on a Store without it.
type inSteps struct{ store.Store }

func TestConnect(t *testing.T) {
	t.Run("in one write", func(t *testing.T) {
		h, s, now := newHandler(t)
		testConnect(t, h, s, now)
	})
	t.Run("in steps", func(t *testing.T) {
		h, s, now := newHandler(t)
		h.Store = inSteps{s}
		testConnect(t, h, s, now)
	})
}

func testConnect(t *testing.T, h *routes.Handler, s store.Store, now time.Time) {
	ctx := context.Background()
	secret, _, err := store.IssueChatterID(ctx, s, "alice", time.Hour, now)
	if err != nil {
		t.Fatal(err)
	}
	bobSecret, _, _ := store.IssueChatterID(ctx, s, "bob", time.Hour, now)
	expired, _, _ := store.IssueChatterID(ctx, s, "alice", time.Minute, now.Add(-time.Hour))

	tests := []struct {
		name       string
		query      map[string]string
		wantStatus int
		wantBody   string
	}{
		{"a valid chatter ID connects", map[string]string{"geek": "alice", "id": secret, "topic": "updates,news"}, 200, ""},
		{"a missing chatter ID is 401", map[string]string{"geek": "alice"}, 401, "missing chatter ID"},
		{"a missing geek is 401", map[string]string{"id": secret}, 401, "missing geek"},
		{"another geek's chatter ID is 403", map[string]string{"geek": "alice", "id": bobSecret}, 403, "refused"},
		{"a made-up chatter ID is 403", map[string]string{"geek": "alice", "id": pubsub.NewChatterID()}, 403, "refused"},
		{"an expired chatter ID is 403", map[string]string{"geek": "alice", "id": expired}, 403, "expired"},
		{"a bad geek name is 400", map[string]string{"geek": "al ice", "id": secret}, 400, "whitespace"},
		{"a bad topic is 400", map[string]string{"geek": "alice", "id": secret, "topic": "a,,b"}, 400, "empty"},
		{"a topic with a control character is 400", map[string]string{"geek": "alice", "id": secret, "topic": "up\x01dates"}, 400, "control character"},
		{"a topic of invalid UTF-8 is 400", map[string]string{"geek": "alice", "id": secret, "topic": "up\xffdates"}, 400, "not valid UTF-8"},
		{"a 129-byte topic is 400", map[string]string{"geek": "alice", "id": secret, "topic": strings.Repeat("t", 129)}, 400, "at most 128"},
		{"thousands of topics are 400", map[string]string{"geek": "alice", "id": secret, "topic": manyTopics(5000)}, 400, "at most 50"},
		{"a geek of invalid UTF-8 is 400", map[string]string{"geek": "al\xffice", "id": secret}, 400, "not valid UTF-8"},
		{"a huge geek is 400", map[string]string{"geek": strings.Repeat("g", 100000), "id": secret}, 400, "at most 128"},
		{"a huge chatter ID is 403 and not echoed", map[string]string{"geek": "alice", "id": strings.Repeat("s", 100000)}, 403, "refused"},
		{"an empty geek is 401", map[string]string{"geek": "", "id": secret}, 401, "missing geek"},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			id := "conn" + string(rune('A'+i))
			resp, err := h.Handle(ctx, connectEvent(id, tt.query))
			if err != nil {
				t.Fatal(err)
			}
			if resp.StatusCode != tt.wantStatus || !strings.Contains(resp.Body, tt.wantBody) {
				t.Fatalf("status %d body %q, want %d containing %q", resp.StatusCode, resp.Body, tt.wantStatus, tt.wantBody)
			}
			if strings.Contains(resp.Body, secret) || (tt.query["id"] != "" && strings.Contains(resp.Body, tt.query["id"])) {
				t.Fatal("the response echoes the chatter ID")
			}
			if len(resp.Body) > 1024 {
				t.Fatalf("the refusal is %d bytes long; it echoes the input", len(resp.Body))
			}
			c, err := s.GetConnection(ctx, id)
			if tt.wantStatus != 200 {
				if !errors.Is(err, store.ErrNotFound) {
					t.Fatalf("a refused connect wrote a record: %+v, %v", c, err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			sort.Strings(c.Topics)
			if c.Geek != "alice" || strings.Join(c.Topics, ",") != "news,updates" || !c.ExpiresAt.Equal(now.Add(pubsub.MaxConnectionDuration)) {
				t.Fatalf("record = %+v", c)
			}
		})
	}
}

// unwritable is a store whose writes fail as the local one's do on a full
// disk.
// Its error names the connection and the geek, as the local store's does.
// With err set, it fails with that instead.
type unwritable struct {
	store.Store
	err error
}

func (u unwritable) AdmitConnection(_ context.Context, id, geek, _ string, _ time.Time, _ int, _ func(store.ChatterID) (pubsub.Connection, error)) (int, error) {
	err := u.err
	if err == nil {
		err = store.ErrUnavailable
	}
	return 0, fmt.Errorf("admitting connection %s of %s: %w", id, geek, err)
}

// A $connect the store cannot record is the server's failure, said as
// such: 503 with a reason, as other refusals, and no error (API Gateway's
// 500 "Internal server error").
func TestAConnectTheStoreCannotRecordIs503(t *testing.T) {
	h, s, now := newHandler(t)
	secret, _, err := store.IssueChatterID(context.Background(), s, "alice", time.Hour, now)
	if err != nil {
		t.Fatal(err)
	}
	h.Store = unwritable{Store: s}
	resp, err := h.Handle(context.Background(), connectEvent("connA", map[string]string{"geek": "alice", "id": secret}))
	if err != nil || resp.StatusCode != 503 || !strings.Contains(resp.Body, "cannot record the connection now") {
		t.Fatalf("status %d body %q err %v; want 503 saying the server cannot record it", resp.StatusCode, resp.Body, err)
	}
}

func TestConnectWithTheChatterIDInSecWebSocketProtocol(t *testing.T) {
	h, s, now := newHandler(t)
	ctx := context.Background()
	secret, _, err := store.IssueChatterID(ctx, s, "alice", time.Hour, now)
	if err != nil {
		t.Fatal(err)
	}
	query := map[string]string{"geek": "alice", "topic": "updates"}
	tests := []struct {
		name       string
		query      map[string]string
		headers    map[string]string
		multi      map[string][]string
		wantStatus int
		wantProto  string
	}{
		{"socks and the ID in one header connect and echo only socks", query,
			map[string]string{"Sec-WebSocket-Protocol": "socks, " + secret}, nil, 200, "socks"},
		{"the ID may come first and the header name in any case", query,
			map[string]string{"sec-websocket-protocol": secret + ",socks"}, nil, 200, "socks"},
		{"the header sent twice connects", query,
			nil, map[string][]string{"Sec-WebSocket-Protocol": {"socks", secret}}, 200, "socks"},
		{"a query-string ID still connects, echoing socks when offered", map[string]string{"geek": "alice", "id": secret},
			map[string]string{"Sec-WebSocket-Protocol": "socks"}, nil, 200, "socks"},
		{"a query-string ID without the header sets no header", map[string]string{"geek": "alice", "id": secret},
			nil, nil, 200, ""},
		{"the ID without the socks subprotocol is not read", query,
			map[string]string{"Sec-WebSocket-Protocol": secret}, nil, 401, ""},
		{"socks without an ID is 401", query,
			map[string]string{"Sec-WebSocket-Protocol": "socks"}, nil, 401, ""},
		{"a made-up ID in the header is 403", query,
			map[string]string{"Sec-WebSocket-Protocol": "socks, " + pubsub.NewChatterID()}, nil, 403, ""},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ev := connectEvent("hdr"+string(rune('A'+i)), tt.query)
			ev.Headers, ev.MultiValueHeaders = tt.headers, tt.multi
			resp, err := h.Handle(ctx, ev)
			if err != nil {
				t.Fatal(err)
			}
			if resp.StatusCode != tt.wantStatus {
				t.Fatalf("status %d body %q; want %d", resp.StatusCode, resp.Body, tt.wantStatus)
			}
			if got := resp.Headers["Sec-WebSocket-Protocol"]; got != tt.wantProto {
				t.Errorf("Sec-WebSocket-Protocol %q; want %q", got, tt.wantProto)
			}
			for k, v := range resp.Headers {
				if strings.Contains(k+v, secret) {
					t.Errorf("the response header %s: %s carries the chatter ID", k, v)
				}
			}
			if strings.Contains(resp.Body, secret) {
				t.Error("the response body carries the chatter ID")
			}
		})
	}
}

func TestNoTopicMeansEveryTopic(t *testing.T) {
	h, s, now := newHandler(t)
	ctx := context.Background()
	secret, _, _ := store.IssueChatterID(ctx, s, "alice", time.Hour, now)
	if resp, _ := h.Handle(ctx, connectEvent("c1", map[string]string{"geek": "alice", "id": secret})); resp.StatusCode != 200 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	c, err := s.GetConnection(ctx, "c1")
	if err != nil || len(c.Topics) != 1 || c.Topics[0] != pubsub.AllTopics {
		t.Fatalf("record = %+v, %v", c, err)
	}
}

func reply(t *testing.T, body string) routes.Reply {
	t.Helper()
	var r routes.Reply
	if err := json.Unmarshal([]byte(body), &r); err != nil {
		t.Fatalf("reply %q is not JSON: %v", body, err)
	}
	return r
}

func TestActions(t *testing.T) {
	h, s, now := newHandler(t)
	ctx := context.Background()
	secret, _, _ := store.IssueChatterID(ctx, s, "alice", time.Hour, now)
	if resp, _ := h.Handle(ctx, connectEvent("c1", map[string]string{"geek": "alice", "id": secret, "topic": "updates"})); resp.StatusCode != 200 {
		t.Fatal("connect failed")
	}
	steps := []struct {
		name      string
		route     string
		body      string
		wantType  string
		wantInErr string
		topics    string
	}{
		{"subscribe adds topics", "subscribe", `{"action":"subscribe","topics":["news","jobs"]}`, "subscribed", "", "jobs,news,updates"},
		{"unsubscribe removes one", "unsubscribe", `{"action":"unsubscribe","topics":["news"]}`, "unsubscribed", "", "jobs,updates"},
		{"a single topic field works", "subscribe", `{"action":"subscribe","topic":"alerts"}`, "subscribed", "", "alerts,jobs,updates"},
		{"an entityId is one more topic", "subscribe", `{"action":"subscribe","entityId":"myTestEntityId"}`, "subscribed", "", "alerts,jobs,myTestEntityId,updates"},
		{"unsubscribe takes an entityId too", "unsubscribe", `{"action":"unsubscribe","entityId":"myTestEntityId"}`, "unsubscribed", "", "alerts,jobs,updates"},
		{"an entityId beside topics adds both", "subscribe", `{"action":"subscribe","topics":["news"],"entityId":"e1"}`, "subscribed", "", "alerts,e1,jobs,news,updates"},
		{"a bad entityId is an error frame", "subscribe", `{"action":"subscribe","entityId":"a b"}`, "error", "whitespace", ""},
		{"subscribe without topics is an error frame", "subscribe", `{"action":"subscribe"}`, "error", "needs", ""},
		{"a bad topic name is an error frame", "subscribe", `{"action":"subscribe","topics":["a b"]}`, "error", "whitespace", ""},
		{"ping answers pong", "ping", `{"action":"ping"}`, "pong", "", ""},
		{"an unknown action gets an error frame", "$default", `{"action":"broadcast","body":"hi all"}`, "error", "unknown action broadcast", ""},
		{"non-JSON gets an error frame", "$default", `hello`, "error", "clients cannot publish", ""},
		{"topics as a string gets an error frame in words", "subscribe", `{"action":"subscribe","topics":"x"}`, "error", `"topics" as a string; it must be a list of strings`, ""},
		{"topics as a number gets an error frame in words", "subscribe", `{"action":"subscribe","topics":7}`, "error", `"topics" as a number`, ""},
		{"topics holding objects get an error frame in words", "unsubscribe", `{"action":"unsubscribe","topics":[{"a":1}]}`, "error", `"topics" as an object`, ""},
		{"a frame that is an array gets an error frame", "subscribe", `[1,2,3]`, "error", "must be a JSON object, not an array", ""},
		{"an empty subscribe frame gets an error frame", "subscribe", ``, "error", "the frame is empty", ""},
		{"an empty frame gets an error frame", "$default", ``, "error", "unknown frame", ""},
		{"a truncated frame gets an error frame", "subscribe", `{"action":"subscribe","topics":["a"`, "error", "not valid JSON", ""},
		{"a frame of invalid UTF-8 gets an error frame", "subscribe", "{\"action\":\"subscribe\",\"topics\":[\"\xff\"]}", "error", "not valid UTF-8", ""},
		{"a JSON nesting bomb gets an error frame", "subscribe", `{"action":"subscribe","topics":` + strings.Repeat("[", 10000) + strings.Repeat("]", 10000) + `}`, "error", "nests more than 64 levels", ""},
		{"a control character in a topic gets an error frame", "subscribe", `{"action":"subscribe","topics":["a\u0007b"]}`, "error", "control character", ""},
		{"thousands of topics get an error frame", "subscribe", `{"action":"subscribe","topics":[` + quoted(manyTopics(5000)) + `]}`, "error", "at most 50", ""},
		{"duplicate topics count once", "subscribe", `{"action":"subscribe","topics":["news","news","news"]}`, "subscribed", "", "alerts,e1,jobs,news,updates"},
		// An API without the action's route (made by hand, or an older
		// template) sends the frame to $default, which served it as an
		// "unknown action subscribe": the client's own action refused.
		{"a subscribe that reaches $default is served", "$default", `{"action":"subscribe","topics":["late"]}`, "subscribed", "", "alerts,e1,jobs,late,news,updates"},
		{"an unsubscribe that reaches $default is served", "$default", `{"action":"unsubscribe","topics":["late"]}`, "unsubscribed", "", "alerts,e1,jobs,news,updates"},
		{"a ping that reaches $default is answered", "$default", `{"action":"ping"}`, "pong", "", ""},
		// Route selection reads the key "action" exactly.
		{"an Action key that reaches $default is no action", "$default", `{"Action":"subscribe","topics":["late"]}`, "error",
			`the frame has key "Action", not "action": keys are case-sensitive; send {"action":"subscribe"`, ""},
		// encoding/json reads a key whatever its case, the last of two
		// counting; a client's own JSON.parse reads two keys.
		{"a Topics key is refused", "subscribe", `{"action":"subscribe","Topics":["secrets"]}`, "error", `the frame has key "Topics", not "topics": keys are case-sensitive`, ""},
		{"a Topics key beside topics is refused", "subscribe", `{"action":"subscribe","topics":["news"],"Topics":["secrets"]}`, "error", `the frame has key "Topics", not "topics": keys are case-sensitive`, ""},
		{"an Action key beside action is refused", "unsubscribe", `{"action":"unsubscribe","Action":"subscribe","topics":["news"]}`, "error", `the frame has key "Action", not "action": keys are case-sensitive`, ""},
		{"a topiC key is refused", "subscribe", `{"action":"subscribe","topiC":"secrets"}`, "error", `the frame has key "topiC", not "topic": keys are case-sensitive`, ""},
		{"an entityID key is refused", "subscribe", `{"action":"subscribe","entityID":"secrets"}`, "error", `the frame has key "entityID", not "entityId": keys are case-sensitive`, ""},
		{"a Topics key that reaches $default is refused", "$default", `{"action":"subscribe","Topics":["secrets"]}`, "error", `the frame has key "Topics", not "topics": keys are case-sensitive`, ""},
		{"an unknown key in another case is ignored", "subscribe", `{"action":"subscribe","topics":["news"],"Geek":"bob"}`, "subscribed", "", "alerts,e1,jobs,news,updates"},
		{"a numeric action gets an error frame", "$default", `{"action":42}`, "error", "unknown action 42", ""},
		{"a huge unknown action is cut short", "$default", `{"action":"` + strings.Repeat("z", 5000) + `"}`, "error", "zzz…", ""},
		// Cut between letters, not through one (the half letter became U+FFFD).
		{"a long unknown action of two-byte letters is cut between letters", "$default", `{"action":"a` + strings.Repeat("é", 100) + `"}`, "error", "ééé…: send", ""},
		// Cut between escapes of the JSON text shown, not through one
		// ("<" is \u003c: the cut at 61 bytes fell after \u003; the
		// space makes the action no topic name, shown as JSON).
		{"a long unknown action of escapes is cut between escapes", "$default", `{"action":"a` + strings.Repeat("<", 40) + ` "}`, "error", `unknown action "a` + strings.Repeat(`\u003c`, 9) + "…: send", ""},
		{"a long unknown action of escaped backslashes is cut between escapes", "$default", `{"action":"a` + strings.Repeat(`\\`, 40) + ` "}`, "error", `unknown action "a` + strings.Repeat(`\\`, 29) + "…: send", ""},
	}
	for _, st := range steps {
		t.Run(st.name, func(t *testing.T) {
			resp, err := h.Handle(ctx, messageEvent("c1", st.route, st.body))
			if err != nil {
				t.Fatal(err)
			}
			r := reply(t, resp.Body)
			for _, leak := range []string{"json:", "Go struct", "Go value", "routes."} {
				if strings.Contains(r.Error, leak) {
					t.Errorf("the error frame shows Go internals (%q): %s", leak, r.Error)
				}
			}
			if strings.ContainsRune(r.Error, utf8.RuneError) {
				t.Errorf("the error frame holds a broken letter (U+FFFD): %s", r.Error)
			}
			if len(resp.Body) > 2048 {
				t.Errorf("the reply is %d bytes; it echoes the frame", len(resp.Body))
			}
			if r.Type != st.wantType || !strings.Contains(r.Error, st.wantInErr) {
				t.Fatalf("reply = %+v, want type %q with error containing %q", r, st.wantType, st.wantInErr)
			}
			if st.topics != "" && strings.Join(r.Topics, ",") != st.topics {
				t.Fatalf("topics = %v, want %s", r.Topics, st.topics)
			}
		})
	}
	c, _ := s.GetConnection(ctx, "c1")
	if strings.Join(c.Topics, ",") == "" {
		t.Fatal("the connection lost its topics")
	}
}

func TestUnsubscribeReplyAlwaysCarriesTopics(t *testing.T) {
	h, s, now := newHandler(t)
	ctx := context.Background()
	secret, _, _ := store.IssueChatterID(ctx, s, "alice", time.Hour, now)
	if resp, _ := h.Handle(ctx, connectEvent("c1", map[string]string{"geek": "alice", "id": secret, "topic": "a,b"})); resp.StatusCode != 200 {
		t.Fatal("connect failed")
	}
	for _, tc := range []struct{ body, want string }{
		{`{"action":"unsubscribe","topics":["a"]}`, `{"type":"unsubscribed","topics":["b"]}`},
		{`{"action":"unsubscribe","topics":["b"]}`, `{"type":"unsubscribed","topics":[]}`},
		{`{"action":"unsubscribe","topics":["b"]}`, `{"type":"unsubscribed","topics":[]}`},
	} {
		resp, err := h.Handle(ctx, messageEvent("c1", "unsubscribe", tc.body))
		if err != nil {
			t.Fatal(err)
		}
		if resp.Body != tc.want {
			t.Errorf("%s got %s; want %s", tc.body, resp.Body, tc.want)
		}
	}
	t.Run("other replies still leave topics out", func(t *testing.T) {
		resp, _ := h.Handle(ctx, messageEvent("c1", "ping", `{"action":"ping"}`))
		if strings.Contains(resp.Body, "topics") {
			t.Errorf("pong %s carries topics", resp.Body)
		}
	})
}

func TestSubscribeIsBounded(t *testing.T) {
	h, s, now := newHandler(t)
	ctx := context.Background()
	secret, _, _ := store.IssueChatterID(ctx, s, "alice", time.Hour, now)
	_, _ = h.Handle(ctx, connectEvent("c1", map[string]string{"geek": "alice", "id": secret, "topic": "t0"}))
	var topics []string
	for i := 1; i < pubsub.MaxTopicsPerConnection; i++ {
		topics = append(topics, "t"+strings.Repeat("x", i))
	}
	b, _ := json.Marshal(map[string]any{"action": "subscribe", "topics": topics})
	if r := mustReply(t, h, string(b)); r.Type != "subscribed" {
		t.Fatalf("filling up to the limit failed: %+v", r)
	}
	if r := mustReply(t, h, `{"action":"subscribe","topics":["one-too-many"]}`); r.Type != "error" || !strings.Contains(r.Error, "at most") {
		t.Fatalf("going over the limit: %+v", r)
	}
}

// manyTopics returns n distinct topic names, comma-separated.
func manyTopics(n int) string {
	names := make([]string, n)
	for i := range names {
		names[i] = "t" + strconv.Itoa(i)
	}
	return strings.Join(names, ",")
}

// quoted turns a comma list into quoted JSON strings.
func quoted(list string) string {
	return `"` + strings.ReplaceAll(list, ",", `","`) + `"`
}

func mustReply(t *testing.T, h *routes.Handler, body string) routes.Reply {
	t.Helper()
	resp, err := h.Handle(context.Background(), messageEvent("c1", "subscribe", body))
	if err != nil {
		t.Fatal(err)
	}
	return reply(t, resp.Body)
}

func TestDisconnectDeletesByConnectionID(t *testing.T) {
	h, s, now := newHandler(t)
	ctx := context.Background()
	secret, _, _ := store.IssueChatterID(ctx, s, "alice", time.Hour, now)
	_, _ = h.Handle(ctx, connectEvent("c1", map[string]string{"geek": "alice", "id": secret, "topic": "updates"}))
	resp, err := h.Handle(ctx, events.APIGatewayWebsocketProxyRequest{RequestContext: events.APIGatewayWebsocketProxyRequestContext{RouteKey: "$disconnect", ConnectionID: "c1"}})
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("disconnect: %d, %v", resp.StatusCode, err)
	}
	if _, err := s.GetConnection(ctx, "c1"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("record still there: %v", err)
	}
	targets, _ := s.FindTargets(ctx, []string{"alice"}, []string{"updates"}, now)
	if len(targets) != 0 {
		t.Fatalf("subscriptions survived the disconnect: %+v", targets)
	}
	// A second disconnect (API Gateway may retry) is harmless.
	if _, err := h.Handle(ctx, events.APIGatewayWebsocketProxyRequest{RequestContext: events.APIGatewayWebsocketProxyRequestContext{RouteKey: "$disconnect", ConnectionID: "c1"}}); err != nil {
		t.Fatal(err)
	}
}

// FuzzHandleFrame feeds arbitrary client frames to every message route: the
// handler must never fail, and must always answer with a JSON reply frame.
func FuzzHandleFrame(f *testing.F) {
	f.Add("subscribe", `{"action":"subscribe","topics":["a","b"]}`)
	f.Add("unsubscribe", `{"action":"unsubscribe","topic":"a"}`)
	f.Add("$default", `{"action":{"nested":true}}`)
	f.Add("ping", `not json`)
	f.Add("subscribe", `{"topics":[1,2,3]}`)
	f.Add("subscribe", `{"action":"subscribe","topics":["a"],"Topics":["b"]}`)
	f.Add("$default", `{"Action":"subscribe","topiCs":["a"]}`)
	h, s, now := newHandler(f)
	ctx := context.Background()
	secret, _, _ := store.IssueChatterID(ctx, s, "alice", time.Hour, now)
	if resp, _ := h.Handle(ctx, connectEvent("c1", map[string]string{"geek": "alice", "id": secret})); resp.StatusCode != 200 {
		f.Fatal("connect failed")
	}
	routesUnderTest := []string{"subscribe", "unsubscribe", "ping", "$default"}
	f.Fuzz(func(t *testing.T, route, body string) {
		r := routesUnderTest[len(route)%len(routesUnderTest)]
		resp, err := h.Handle(ctx, messageEvent("c1", r, body))
		if err != nil {
			t.Fatalf("route %s body %q: %v", r, body, err)
		}
		var rep routes.Reply
		if err := json.Unmarshal([]byte(resp.Body), &rep); err != nil || rep.Type == "" {
			t.Fatalf("route %s body %q: reply %q is not a typed JSON frame", r, body, resp.Body)
		}
	})
}

func TestLimitsComeFromTheEnvironment(t *testing.T) {
	env := map[string]string{routes.EnvMaxTopics: "7", routes.EnvMaxConnectionsPerGeek: "3"}
	var h routes.Handler
	if err := h.SetLimitsFromEnv(func(k string) string { return env[k] }); err != nil || h.MaxTopics != 7 || h.MaxConnectionsPerGeek != 3 {
		t.Fatalf("limits %d, %d, %v; want 7, 3", h.MaxTopics, h.MaxConnectionsPerGeek, err)
	}
	for _, bad := range []map[string]string{
		{routes.EnvMaxTopics: "51"},
		{routes.EnvMaxTopics: "0"},
		{routes.EnvMaxTopics: "lots"},
		{routes.EnvMaxConnectionsPerGeek: "-1"},
	} {
		if err := h.SetLimitsFromEnv(func(k string) string { return bad[k] }); err == nil || !strings.Contains(err.Error(), "must be a whole number") {
			t.Errorf("%v: %v; want a refusal", bad, err)
		}
	}
}

func TestAConfiguredTopicLimitHolds(t *testing.T) {
	h, s, now := newHandler(t)
	h.MaxTopics = 3
	ctx := context.Background()
	secret, _, _ := store.IssueChatterID(ctx, s, "alice", time.Hour, now)
	_, _ = h.Handle(ctx, connectEvent("c1", map[string]string{"geek": "alice", "id": secret, "topic": "a,b"}))
	if r := mustReply(t, h, `{"action":"subscribe","topics":["c"]}`); r.Type != "subscribed" {
		t.Fatalf("the third topic: %+v", r)
	}
	if r := mustReply(t, h, `{"action":"subscribe","topics":["d"]}`); r.Type != "error" || !strings.Contains(r.Error, "at most 3 topics") || len(r.Topics) != 3 {
		t.Fatalf("the fourth topic: %+v; want an error frame with the 3 topics kept", r)
	}
}

// TestAConfiguredTopicLimitHoldsAtConnect: the topics named in the
// $connect's query string count against the configured limit as a
// subscribe's do; a connect over it is refused with 400 and records
// nothing.
func TestAConfiguredTopicLimitHoldsAtConnect(t *testing.T) {
	h, s, now := newHandler(t)
	h.MaxTopics = 3
	ctx := context.Background()
	secret, _, _ := store.IssueChatterID(ctx, s, "alice", time.Hour, now)
	resp, err := h.Handle(ctx, connectEvent("over", map[string]string{"geek": "alice", "id": secret, "topic": "a,b,c,d"}))
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 400 || !strings.Contains(resp.Body, "at most 3") {
		t.Errorf("connect with 4 topics = %d %q; want 400 saying at most 3", resp.StatusCode, resp.Body)
	}
	if _, err := s.GetConnection(ctx, "over"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("the refused connect left a record (err=%v)", err)
	}
	resp, err = h.Handle(ctx, connectEvent("within", map[string]string{"geek": "alice", "id": secret, "topic": "a,b,c"}))
	if err != nil || resp.StatusCode != 200 {
		t.Errorf("connect with 3 topics = %d %q, %v; want 200", resp.StatusCode, resp.Body, err)
	}
}

// FuzzConnectSubprotocols sends $connect arbitrary Sec-WebSocket-Protocol
// values: it never fails, never answers with anything but "socks" (and
// does when it connects), and connects only with socks next to the right
// chatter ID (the first token that is not socks is read as the ID).
func FuzzConnectSubprotocols(f *testing.F) {
	h, s, now := newHandler(f)
	ctx := context.Background()
	secret, _, err := store.IssueChatterID(ctx, s, "alice", time.Hour, now)
	if err != nil {
		f.Fatal(err)
	}
	for _, seed := range []string{"socks, " + secret, secret + ",socks", "socks", "socks,,", " , socks ,x", "x, y", "", "socks, socks", "SOCKS, " + secret} {
		f.Add(seed)
	}
	n := 0
	f.Fuzz(func(t *testing.T, header string) {
		n++
		ev := connectEvent(fmt.Sprintf("fz%d", n), map[string]string{"geek": "alice"})
		ev.Headers = map[string]string{"Sec-WebSocket-Protocol": header}
		resp, err := h.Handle(ctx, ev)
		if err != nil {
			t.Fatalf("%q: %v", header, err)
		}
		if p, ok := resp.Headers["Sec-WebSocket-Protocol"]; ok && p != "socks" {
			t.Fatalf("%q: answered Sec-WebSocket-Protocol %q", header, p)
		}
		var offered, hasID bool
		for _, p := range strings.Split(header, ",") {
			switch strings.TrimSpace(p) {
			case "socks":
				offered = true
			case secret:
				hasID = true
			}
		}
		if resp.StatusCode == 200 && (!offered || !hasID) {
			t.Fatalf("%q: connected without socks and the chatter ID", header)
		}
		if resp.StatusCode == 200 && resp.Headers["Sec-WebSocket-Protocol"] != "socks" {
			t.Fatalf("%q: connected without answering socks", header)
		}
		if strings.Contains(resp.Body, secret) {
			t.Fatalf("%q: the answer carries the chatter ID", header)
		}
	})
}

// TestTheLogHoldsNoChatterIDPastedIntoAName: a chatter ID pasted into
// ?topic= (a valid topic name) was written whole in the "connected" log
// line at Info, and one pasted into ?geek= in the error line of a store
// that cannot record the connection, and in the error it returned (which
// the gateway, or Lambda, logs): they are written sc_(hidden), as the
// gateway's refusals are (pubsub.HideChatterIDs).
func TestTheLogHoldsNoChatterIDPastedIntoAName(t *testing.T) {
	broken := errors.New("the disk is on fire")
	geekIsID := func(secret string) map[string]string {
		return map[string]string{"geek": secret, "id": secret}
	}
	for _, tc := range []struct {
		name     string
		q        func(secret string) map[string]string
		fail     error
		wantLine string
	}{
		{"in ?topic=", func(secret string) map[string]string {
			return map[string]string{"geek": "alice", "id": secret, "topic": "news," + secret}
		}, nil, "connected"},
		{"in ?geek=, the store unavailable", geekIsID, store.ErrUnavailable, "admitting a connection"},
		{"in ?geek=, the store failing", geekIsID, broken, "admitting a connection"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h, s, now := newHandler(t)
			secret, _, err := store.IssueChatterID(context.Background(), s, "alice", time.Hour, now)
			if err != nil {
				t.Fatal(err)
			}
			var logs strings.Builder
			h.Logger = slog.New(slog.NewTextHandler(&logs, nil))
			if tc.fail != nil {
				h.Store = unwritable{Store: s, err: tc.fail}
			}
			_, err = h.Handle(context.Background(), connectEvent("connA", tc.q(secret)))
			if tc.fail == broken {
				// The error goes back whole to the gateway and to Lambda's
				// handler, which log it through logsafe (gateway
				// TestAFailedConnectsLogHoldsNoChatterID, lambdafn
				// TestAWebSocketErrorHoldsNoChatterID).
				if !errors.Is(err, broken) {
					t.Errorf("Handle returned %v; want the store's error", err)
				}
			} else if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(logs.String(), tc.wantLine) || !strings.Contains(logs.String(), "sc_(hidden)") {
				t.Errorf("logged %q; want a line %q naming sc_(hidden)", logs.String(), tc.wantLine)
			}
			if strings.Contains(logs.String(), secret[3:23]) {
				t.Errorf("the log holds the chatter ID: %s", logs.String())
			}
		})
	}
}

// TestAnActionWithoutItsRouteIsServedAndLoggedOnce: API Gateway sends a
// frame whose action has no route to $default. socks serves subscribe,
// unsubscribe and ping there too, and says once, as a warning, which
// route the API lacks and how to add it.
func TestAnActionWithoutItsRouteIsServedAndLoggedOnce(t *testing.T) {
	h, s, now := newHandler(t)
	var logs bytes.Buffer
	h.Logger = slog.New(slog.NewTextHandler(&logs, nil))
	ctx := context.Background()
	secret, _, _ := store.IssueChatterID(ctx, s, "alice", time.Hour, now)
	if resp, _ := h.Handle(ctx, connectEvent("c1", map[string]string{"geek": "alice", "id": secret, "topic": "a"})); resp.StatusCode != 200 {
		t.Fatalf("connect: %+v", resp)
	}
	for range 3 {
		resp, err := h.Handle(ctx, messageEvent("c1", "$default", `{"action":"subscribe","topics":["b"]}`))
		if err != nil {
			t.Fatal(err)
		}
		if r := reply(t, resp.Body); r.Type != "subscribed" {
			t.Fatalf("reply %+v; want subscribed", r)
		}
	}
	if n := strings.Count(logs.String(), "level=WARN"); n != 1 || !strings.Contains(logs.String(), "subscribe") || !strings.Contains(logs.String(), "socks deploy") {
		t.Errorf("logs %q: want one warning naming the missing subscribe route and socks deploy", logs.String())
	}
}
