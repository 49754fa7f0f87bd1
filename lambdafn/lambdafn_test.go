package lambdafn

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/socks-dev/socks/broker"
	"github.com/socks-dev/socks/local"
	"github.com/socks-dev/socks/pubsub"
	"github.com/socks-dev/socks/routes"
	"github.com/socks-dev/socks/store"
)

// The recorded events in testdata/lambda were captured from an API Gateway
// WebSocket API and an SQS event source mapping; their times are around
// eventTime, and connect.json carries fixtureSecret as its chatter ID.
// connect-header.json is connect.json with the chatter ID moved out of the
// query string into Sec-WebSocket-Protocol, as socks.js sends it with
// protocol "header" (API Gateway passes the header as one value).
var eventTime = time.UnixMilli(1769088100000).UTC()

const (
	fixtureSecret = "sc_RECORDED-FIXTURE-not-a-real-secret"
	fixtureConn   = "Fq2mXeTBDoECFyA="
	fixtureDomain = "https://abc123defg.execute-api.eu-west-1.amazonaws.com/prod"
)

func readEvent(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "testdata", "lambda", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// posts records what a pusher was asked to post, and fails the
// connections it is told to.
type posts struct {
	mu       sync.Mutex
	endpoint string
	got      map[string][]string
	fail     map[string]error
	stuck    string // a post to this connection hangs until its context ends
}

func (p *posts) Post(ctx context.Context, id string, data []byte) error {
	if id == p.stuck {
		<-ctx.Done()
		return &store.PushError{Kind: store.KindOther, Op: "PostToConnection", ConnectionID: id, Err: ctx.Err()}
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if err, ok := p.fail[id]; ok {
		return err
	}
	p.got[id] = append(p.got[id], string(data))
	return nil
}

func (p *posts) Get(context.Context, string) (store.ConnectionInfo, error) {
	return store.ConnectionInfo{}, nil
}

func (p *posts) Delete(context.Context, string) error { return nil }

// deadQueue is a store.Queue that records dead letters and follow-ups; the
// Lambda path calls nothing else on it.
type deadQueue struct {
	store.Queue
	mu       sync.Mutex
	reasons  map[string]string
	fail     error
	sent     []string
	sendFail error
	// deadlines holds the deadline of each SendBatch and DeadLetter call's
	// context (the zero time for none).
	deadlines []time.Time
	// hidden holds the visibility each receipt was given.
	hidden map[string]time.Duration
	// afterSend, when set, is called with the bodies of each SendBatch
	// once they are sent.
	afterSend func(bodies [][]byte)
}

func (q *deadQueue) ChangeVisibility(_ context.Context, receipt string, d time.Duration) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.hidden == nil {
		q.hidden = map[string]time.Duration{}
	}
	q.hidden[receipt] = d
	return nil
}

func (q *deadQueue) called(ctx context.Context) {
	dl, _ := ctx.Deadline()
	q.deadlines = append(q.deadlines, dl)
}

func (q *deadQueue) SendBatch(ctx context.Context, bodies [][]byte) ([]string, error) {
	q.mu.Lock()
	q.called(ctx)
	if q.sendFail != nil {
		q.mu.Unlock()
		return nil, q.sendFail
	}
	ids := make([]string, len(bodies))
	for i, b := range bodies {
		q.sent = append(q.sent, string(b))
		ids[i] = fmt.Sprintf("follow-up-%d", len(q.sent))
	}
	after := q.afterSend
	q.mu.Unlock()
	if after != nil {
		after(bodies)
	}
	return ids, nil
}

func (q *deadQueue) DeadLetter(ctx context.Context, m store.Message, reason string) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.called(ctx)
	if q.fail != nil {
		return q.fail
	}
	if m.Receipt == "" {
		return errors.New("no receipt")
	}
	q.reasons[m.ID] = reason
	return nil
}

type fixture struct {
	h      *Handler
	store  store.Store
	queue  *deadQueue
	pusher *posts
	// pushers counts the pushers made, by endpoint.
	pushers map[string]int
}

// fixtureStore returns a local store on the events' clock (and that
// clock), with the fixture's chatter ID issued to Friendless.
func fixtureStore(t testing.TB) (store.Store, func() time.Time) {
	t.Helper()
	now := func() time.Time { return eventTime }
	db, err := local.Open(t.Context(), filepath.Join(t.TempDir(), "socks.db"), local.Options{Now: now})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	s := db.Store()
	if err := s.PutChatterID(t.Context(), store.ChatterID{
		Geek: "Friendless", Hash: pubsub.HashChatterID(fixtureSecret), IssuedAt: eventTime.Add(-time.Hour), ExpiresAt: eventTime.Add(time.Hour),
	}); err != nil {
		t.Fatal(err)
	}
	return s, now
}

// newFixture returns a handler on a local store, with the fixture's chatter
// ID issued to Friendless.
func newFixture(t testing.TB) *fixture {
	t.Helper()
	s, now := fixtureStore(t)
	f := &fixture{
		store:   s,
		queue:   &deadQueue{reasons: map[string]string{}},
		pusher:  &posts{got: map[string][]string{}, fail: map[string]error{}},
		pushers: map[string]int{},
	}
	f.h = &Handler{
		Routes: &routes.Handler{Store: s, Now: now},
		Broker: &broker.Broker{Store: s, Queue: f.queue, Now: now, Sleep: func(context.Context, time.Duration) error { return nil }},
		Pusher: func(endpoint string) store.Pusher {
			f.pushers[endpoint]++
			f.pusher.endpoint = endpoint
			return f.pusher
		},
		Callback: "https://callback.example/prod",
	}
	return f
}

func (f *fixture) websocket(t *testing.T, payload []byte) events.APIGatewayProxyResponse {
	t.Helper()
	out, err := f.h.Invoke(t.Context(), payload)
	if err != nil {
		t.Fatalf("Invoke: %v", err)
	}
	var resp events.APIGatewayProxyResponse
	if err := json.Unmarshal(out, &resp); err != nil {
		t.Fatalf("response %s: %v", out, err)
	}
	return resp
}

func (f *fixture) connection(t *testing.T, id string) (pubsub.Connection, error) {
	t.Helper()
	return f.store.GetConnection(t.Context(), id)
}

func TestWebSocketEventsRunTheRouteHandlers(t *testing.T) {
	f := newFixture(t)

	t.Run("connect with the recorded chatter ID records the connection with its topics", func(t *testing.T) {
		// Handled at the event's requestTimeEpoch, as a $connect is
		// (within API Gateway's 29 s of its connectedAt; the fixture's
		// clock is 99 s after it, and a connectedAt before the connect
		// window is taken as its start).
		f.h.Routes.Now = func() time.Time { return time.UnixMilli(1769088001125) }
		defer func() { f.h.Routes.Now = func() time.Time { return eventTime } }()
		resp := f.websocket(t, readEvent(t, "connect.json"))
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("status %d (%s); want 200", resp.StatusCode, resp.Body)
		}
		c, err := f.connection(t, fixtureConn)
		if err != nil {
			t.Fatal(err)
		}
		if c.Geek != "Friendless" || !slices.Equal(c.Topics, []string{"news", "updates"}) || !c.ConnectedAt.Equal(time.UnixMilli(1769088001123)) {
			t.Errorf("recorded %+v", c)
		}
	})

	t.Run("connect with another chatter ID is refused with 403 and records nothing", func(t *testing.T) {
		ev := strings.ReplaceAll(string(readEvent(t, "connect.json")), fixtureSecret, "sc_wrong")
		ev = strings.ReplaceAll(ev, fixtureConn, "other-connection")
		resp := f.websocket(t, []byte(ev))
		if resp.StatusCode != http.StatusForbidden {
			t.Errorf("status %d; want 403", resp.StatusCode)
		}
		if _, err := f.connection(t, "other-connection"); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("refused connection recorded: %v", err)
		}
	})

	t.Run("connect with the chatter ID in Sec-WebSocket-Protocol answers with the header socks only", func(t *testing.T) {
		resp := f.websocket(t, readEvent(t, "connect-header.json"))
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("status %d (%s); want 200", resp.StatusCode, resp.Body)
		}
		if got := resp.Headers["Sec-WebSocket-Protocol"]; got != "socks" {
			t.Errorf("response headers %v; want Sec-WebSocket-Protocol: socks (API Gateway copies it into the 101, and browsers need it)", resp.Headers)
		}
		c, err := f.connection(t, "Fq2mYHdODoECJ-w=")
		if err != nil {
			t.Fatal(err)
		}
		if c.Geek != "Friendless" || !slices.Equal(c.Topics, []string{"news", "updates"}) {
			t.Errorf("recorded %+v", c)
		}
	})

	t.Run("connect with a wrong chatter ID in Sec-WebSocket-Protocol is refused without the header", func(t *testing.T) {
		ev := strings.ReplaceAll(string(readEvent(t, "connect-header.json")), fixtureSecret, "sc_wrong")
		resp := f.websocket(t, []byte(ev))
		if resp.StatusCode != http.StatusForbidden {
			t.Errorf("status %d; want 403", resp.StatusCode)
		}
		if _, ok := resp.Headers["Sec-WebSocket-Protocol"]; ok {
			t.Errorf("a refused connect answered with Sec-WebSocket-Protocol: %v", resp.Headers)
		}
	})

	t.Run("subscribe answers with the route response listing every topic", func(t *testing.T) {
		resp := f.websocket(t, readEvent(t, "subscribe.json"))
		if resp.StatusCode != http.StatusOK || resp.Body != `{"type":"subscribed","topics":["news","plays","updates"]}` {
			t.Errorf("status %d body %s", resp.StatusCode, resp.Body)
		}
	})

	t.Run("default answers with an error frame and keeps the connection", func(t *testing.T) {
		resp := f.websocket(t, readEvent(t, "default.json"))
		var reply routes.Reply
		if err := json.Unmarshal([]byte(resp.Body), &reply); err != nil || resp.StatusCode != http.StatusOK || reply.Type != "error" ||
			!strings.Contains(reply.Error, "unknown action sendmessage") || !strings.Contains(reply.Error, "clients cannot publish") {
			t.Errorf("status %d body %s", resp.StatusCode, resp.Body)
		}
		if _, err := f.connection(t, fixtureConn); err != nil {
			t.Errorf("connection after $default: %v", err)
		}
	})

	t.Run("disconnect deletes the connection by its ID", func(t *testing.T) {
		resp := f.websocket(t, readEvent(t, "disconnect.json"))
		if resp.StatusCode != http.StatusOK {
			t.Errorf("status %d", resp.StatusCode)
		}
		if _, err := f.connection(t, fixtureConn); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("after $disconnect: %v; want not found", err)
		}
		targets, err := f.store.FindTargets(t.Context(), nil, []string{"plays"}, eventTime)
		if err != nil || len(targets) != 0 {
			t.Errorf("subscriptions left: %v %v", targets, err)
		}
	})
}

// sqsFixture adds the connections the recorded batch addresses: Friendless
// on updates, whose posts succeed, and Dilettante on updates, whose posts
// fail.
func sqsFixture(t testing.TB) *fixture {
	f := newFixture(t)
	for _, c := range []pubsub.Connection{
		{ID: "conn-friendless", Geek: "Friendless", Topics: []string{"updates"}, ConnectedAt: eventTime.Add(-time.Minute), ExpiresAt: eventTime.Add(time.Hour)},
		{ID: "conn-dilettante", Geek: "Dilettante", Topics: []string{"updates"}, ConnectedAt: eventTime.Add(-time.Minute), ExpiresAt: eventTime.Add(time.Hour)},
	} {
		if err := f.store.PutConnection(t.Context(), c); err != nil {
			t.Fatal(err)
		}
	}
	f.pusher.fail["conn-dilettante"] = &store.PushError{Kind: store.KindOther, Op: "PostToConnection", ConnectionID: "conn-dilettante", Status: 500, Err: errors.New("internal error")}
	return f
}

func (f *fixture) sqs(t *testing.T, payload []byte) events.SQSEventResponse {
	t.Helper()
	out, err := f.h.Invoke(t.Context(), payload)
	if err != nil {
		t.Fatalf("Invoke: %v", err)
	}
	var resp events.SQSEventResponse
	if err := json.Unmarshal(out, &resp); err != nil {
		t.Fatalf("response %s: %v", out, err)
	}
	return resp
}

func failures(resp events.SQSEventResponse) []string {
	var ids []string
	for _, f := range resp.BatchItemFailures {
		ids = append(ids, f.ItemIdentifier)
	}
	slices.Sort(ids)
	return ids
}

func TestSQSBatchReportsOnlyTheRecordsToRetry(t *testing.T) {
	f := sqsFixture(t)
	resp := f.sqs(t, readEvent(t, "sqs-batch.json"))

	t.Run("only the record whose deliveries all failed, with receives left, is a batch item failure", func(t *testing.T) {
		if got := failures(resp); !slices.Equal(got, []string{"8f3b4c2a-5d6e-4f70-9a1b-2c3d4e5f6a7b"}) {
			t.Errorf("batch item failures %v", got)
		}
	})
	t.Run("the delivered record's body reached the addressed connection exactly, through the configured callback", func(t *testing.T) {
		if got := f.pusher.got["conn-friendless"]; !slices.Equal(got, []string{`{"stats":"refreshed","plays":1234}`}) {
			t.Errorf("posted %q", got)
		}
		if f.pusher.endpoint != "https://callback.example/prod" || f.pushers[f.pusher.endpoint] != 1 {
			t.Errorf("pushers %v", f.pushers)
		}
		rep, err := f.store.GetReport(t.Context(), "m-delivered")
		if err != nil || rep.Delivered != 1 || rep.Targets != 1 {
			t.Errorf("report %+v, %v", rep, err)
		}
	})
	t.Run("poison, exhausted and over-received records are dead-lettered with the reason", func(t *testing.T) {
		want := map[string]string{
			"2e1424d4-f796-459a-8184-9c92662be6da": "unusable envelope: ",
			"c7a1e9d3-0b2f-4e6a-8d5c-3f1b7e9a2c4d": "failed 5 times; last error: no delivery succeeded: 1 failed",
			"f0e1d2c3-b4a5-4968-8776-655443322110": "received 6 times without being handled (max 5)",
		}
		if len(f.queue.reasons) != len(want) {
			t.Errorf("dead letters %v; want %d", f.queue.reasons, len(want))
		}
		for id, prefix := range want {
			if r, ok := f.queue.reasons[id]; !ok || !strings.HasPrefix(r, prefix) {
				t.Errorf("dead letter %s: reason %q, want it to start %q", id, r, prefix)
			}
		}
		rep, err := f.store.GetReport(t.Context(), "m-last-try")
		if err != nil || rep.Failed != 1 || len(rep.Errors) == 0 || !strings.HasPrefix(rep.Errors[len(rep.Errors)-1], "failed 5 times") {
			t.Errorf("report of the dead-lettered message %+v, %v", rep, err)
		}
	})
	t.Run("a message over the receive limit is not tried again", func(t *testing.T) {
		if n := len(f.pusher.got["conn-friendless"]); n != 1 {
			t.Errorf("Friendless got %d posts; want only the delivered record's", n)
		}
	})
	t.Run("a message for nobody is done", func(t *testing.T) {
		rep, err := f.store.GetReport(t.Context(), "m-nobody")
		if err != nil || rep.Targets != 0 {
			t.Errorf("report %+v, %v", rep, err)
		}
	})
}

func TestSQSRecordsWhoseDeadLetteringFailsAreRetried(t *testing.T) {
	f := sqsFixture(t)
	f.queue.fail = errors.New("SendMessage: access denied")
	got := failures(f.sqs(t, readEvent(t, "sqs-batch.json")))
	want := []string{
		"2e1424d4-f796-459a-8184-9c92662be6da",
		"8f3b4c2a-5d6e-4f70-9a1b-2c3d4e5f6a7b",
		"c7a1e9d3-0b2f-4e6a-8d5c-3f1b7e9a2c4d",
		"f0e1d2c3-b4a5-4968-8776-655443322110",
	}
	if !slices.Equal(got, want) {
		t.Errorf("batch item failures %v; want %v (every record not done, none lost)", got, want)
	}
}

func TestSQSWithoutACallbackURL(t *testing.T) {
	t.Run("records with targets are retried, none is lost", func(t *testing.T) {
		f := sqsFixture(t)
		f.h.Callback = ""
		got := failures(f.sqs(t, readEvent(t, "sqs-batch.json")))
		if !slices.Contains(got, "059f36b4-87a3-44ab-83d2-661975830a7d") || len(f.pushers) != 0 {
			t.Errorf("failures %v, pushers %v; want the deliverable record retried and no pusher made", got, f.pushers)
		}
		if r := f.queue.reasons["c7a1e9d3-0b2f-4e6a-8d5c-3f1b7e9a2c4d"]; !strings.Contains(r, "SOCKS_CALLBACK_URL") {
			t.Errorf("the exhausted record's reason %q does not say what to set", r)
		}
	})
	// An instance used to post a batch to the endpoint of the last
	// WebSocket event it served: with two stages on one function, the
	// other stage's endpoint, where every connection ID is unknown (410
	// Gone: the broker deleted the right stage's connections). The
	// variable is the only endpoint: a batch of an instance without it
	// is retried, whatever WebSocket events it served.
	t.Run("no WebSocket event gives a batch an endpoint", func(t *testing.T) {
		f := sqsFixture(t)
		f.h.Callback = ""
		// The dev stage's Management API knows none of prod's
		// connections, as API Gateway's does not.
		prodPusher := f.h.Pusher
		f.h.Pusher = func(endpoint string) store.Pusher {
			if strings.HasSuffix(endpoint, "/dev") {
				f.pushers[endpoint]++
				return goneEverywhere{}
			}
			return prodPusher(endpoint)
		}
		f.websocket(t, readEvent(t, "default.json")) // the API's own domain, stage prod
		f.websocket(t, withDomain(t, "abc123defg.execute-api.eu-west-1.amazonaws.com", "dev", "abc123defg"))
		got := failures(f.sqs(t, readEvent(t, "sqs-batch.json")))
		if len(f.pushers) != 0 || len(f.pusher.got) != 0 {
			t.Errorf("pushers %v, posts %v; want none: no endpoint is known", f.pushers, f.pusher.got)
		}
		if !slices.Contains(got, "059f36b4-87a3-44ab-83d2-661975830a7d") {
			t.Errorf("failures %v; want the deliverable record retried, not lost", got)
		}
		if _, err := f.connection(t, "conn-friendless"); err != nil {
			t.Errorf("prod's connection was deleted by a batch posted to another stage: %v", err)
		}
	})
	t.Run("each batch says in one log line what to set", func(t *testing.T) {
		f := sqsFixture(t)
		f.h.Callback = ""
		var logs bytes.Buffer
		f.h.Logger = slog.New(slog.NewJSONHandler(&logs, nil))
		f.sqs(t, readEvent(t, "sqs-batch.json"))
		var first struct{ Level, Msg, Err string }
		line, _, _ := strings.Cut(logs.String(), "\n")
		if err := json.Unmarshal([]byte(line), &first); err != nil {
			t.Fatalf("log %q: %v", logs.String(), err)
		}
		if first.Level != "ERROR" || !strings.Contains(first.Msg+first.Err, "SOCKS_CALLBACK_URL") || !strings.Contains(first.Msg+first.Err, "retried") {
			t.Errorf("first log line %q; want an ERROR naming SOCKS_CALLBACK_URL and saying the batch is retried", line)
		}
	})
}

// goneEverywhere is the Management API of a stage that has none of the
// connections: every one is gone (410).
type goneEverywhere struct{}

func (goneEverywhere) Post(_ context.Context, id string, _ []byte) error {
	return &store.PushError{Kind: store.KindGone, Op: "PostToConnection", ConnectionID: id, Status: http.StatusGone, Err: errors.New("gone")}
}

func (goneEverywhere) Get(_ context.Context, id string) (store.ConnectionInfo, error) {
	return store.ConnectionInfo{}, &store.PushError{Kind: store.KindGone, Op: "GetConnection", ConnectionID: id, Status: http.StatusGone, Err: errors.New("gone")}
}

func (goneEverywhere) Delete(_ context.Context, id string) error {
	return &store.PushError{Kind: store.KindGone, Op: "DeleteConnection", ConnectionID: id, Status: http.StatusGone, Err: errors.New("gone")}
}

func TestInvokeRefusesEventsItDoesNotServe(t *testing.T) {
	f := newFixture(t)
	for _, tc := range []struct{ name, payload string }{
		{"an S3 notification", `{"Records":[{"eventSource":"aws:s3","s3":{}}]}`},
		{"a batch mixing SQS and SNS records", `{"Records":[{"eventSource":"aws:sqs"},{"EventSource":"aws:sns"}]}`},
		{"an HTTP API request, which has a route key but no connection", `{"version":"2.0","routeKey":"GET /","requestContext":{"routeKey":"GET /","http":{"method":"GET"}}}`},
		{"an empty object", `{}`},
		{"not JSON", `hello`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := f.h.Invoke(t.Context(), []byte(tc.payload))
			var ue *UnsupportedEventError
			if !errors.As(err, &ue) || !strings.Contains(err.Error(), "check the function's triggers") {
				t.Errorf("err = %v; want an UnsupportedEventError", err)
			}
		})
	}
}

func TestDetect(t *testing.T) {
	env := func(v string) func(string) string {
		return func(k string) string {
			if k == EnvRuntimeAPI {
				return v
			}
			return ""
		}
	}
	for _, tc := range []struct {
		name string
		api  string
		args []string
		want bool
	}{
		{"Lambda starting bootstrap is Lambda mode", "127.0.0.1:9001", nil, true},
		{"a command in a Lambda shell stays a command", "127.0.0.1:9001", []string{"doctor"}, false},
		{"no runtime API is the CLI", "", nil, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := Detect(env(tc.api), tc.args); got != tc.want {
				t.Errorf("Detect = %v; want %v", got, tc.want)
			}
		})
	}
}

func TestMessageReadsTheRecordAttributes(t *testing.T) {
	m := Message(events.SQSMessage{
		MessageId: "id", ReceiptHandle: "r", Body: "b",
		Attributes: map[string]string{"ApproximateReceiveCount": "3", "SentTimestamp": "1769088100000"},
	})
	if m.ID != "id" || m.Receipt != "r" || string(m.Body) != "b" || m.ReceiveCount != 3 || !m.SentAt.Equal(eventTime) {
		t.Errorf("got %+v", m)
	}
}

func TestSQSFanOutStopsBeforeTheInvocationDeadline(t *testing.T) {
	f := sqsFixture(t)
	if err := f.store.PutConnection(t.Context(), pubsub.Connection{
		ID: "conn-stuck", Geek: "Friendless", Topics: []string{"updates"}, ConnectedAt: eventTime.Add(-time.Minute), ExpiresAt: eventTime.Add(time.Hour),
	}); err != nil {
		t.Fatal(err)
	}
	f.pusher.stuck = "conn-stuck"
	ev := events.SQSEvent{Records: []events.SQSMessage{{
		MessageId: "rec-1", ReceiptHandle: "receipt-1", EventSource: SourceSQS,
		Body:       `{"id":"m-cut","users":["Friendless"],"topics":["updates"],"body":1}`,
		Attributes: map[string]string{"ApproximateReceiveCount": "1"},
	}}}
	deadline := time.Now().Add(3 * time.Second)
	ctx, cancel := context.WithDeadline(t.Context(), deadline)
	defer cancel()

	resp, err := f.h.HandleSQS(ctx, ev)
	if err != nil {
		t.Fatal(err)
	}
	if left := time.Until(deadline); left <= 0 {
		t.Errorf("HandleSQS answered %s after the invocation's deadline; Lambda would have retried the whole batch", -left)
	}
	if got := failures(resp); len(got) != 0 {
		t.Errorf("batch item failures %v; want none (conn-friendless got the message)", got)
	}
	rep, err := f.store.GetReport(t.Context(), "m-cut")
	if err != nil || rep.Delivered != 1 || rep.Failed != 1 {
		t.Errorf("report %+v, %v; want 1 delivered and 1 failed, recorded", rep, err)
	}
	if len(f.queue.sent) != 1 || !strings.Contains(f.queue.sent[0], `"connections":["conn-stuck"],"attempt":1`) {
		t.Errorf("follow-ups %q; want one for conn-stuck", f.queue.sent)
	}
}

func TestSQSRecordWhoseFollowUpCannotBeSentIsRetried(t *testing.T) {
	f := sqsFixture(t)
	if err := f.store.PutConnection(t.Context(), pubsub.Connection{
		ID: "conn-broken", Geek: "Friendless", Topics: []string{"updates"}, ConnectedAt: eventTime.Add(-time.Minute), ExpiresAt: eventTime.Add(time.Hour),
	}); err != nil {
		t.Fatal(err)
	}
	f.pusher.fail["conn-broken"] = &store.PushError{Kind: store.KindOther, Op: "PostToConnection", ConnectionID: "conn-broken", Status: 500}
	ev := events.SQSEvent{Records: []events.SQSMessage{{
		MessageId: "rec-1", ReceiptHandle: "receipt-1", EventSource: SourceSQS,
		Body:       `{"id":"m-half","users":["Friendless"],"topics":["updates"],"body":1}`,
		Attributes: map[string]string{"ApproximateReceiveCount": "1"},
	}}}
	f.queue.sendFail = errors.New("SendMessageBatch: throttled")
	resp, err := f.h.HandleSQS(t.Context(), ev)
	if err != nil {
		t.Fatal(err)
	}
	if got := failures(resp); !slices.Equal(got, []string{"rec-1"}) {
		t.Errorf("batch item failures %v; want rec-1 retried, since conn-broken's delivery could not be handed on", got)
	}
	f.queue.sendFail = nil
	resp, err = f.h.HandleSQS(t.Context(), ev)
	if err != nil {
		t.Fatal(err)
	}
	if got := failures(resp); len(got) != 0 || len(f.queue.sent) != 1 || !strings.Contains(f.queue.sent[0], `"connections":["conn-broken"]`) {
		t.Errorf("batch item failures %v, follow-ups %q; want rec-1 done with a follow-up for conn-broken", got, f.queue.sent)
	}
}

// TestSQSSettlingEndsBeforeTheInvocationDeadline: what settles a record
// after its fan-out (handing failed deliveries on, dead-lettering) must be
// bounded to end before the invocation does. Were a slow queue call to run
// into the invocation's deadline, Lambda would get no answer at all and
// receive the whole batch again, delivering its delivered records twice;
// bounded, only the record it held up is retried.
func TestSQSSettlingEndsBeforeTheInvocationDeadline(t *testing.T) {
	f := sqsFixture(t)
	ev := events.SQSEvent{Records: []events.SQSMessage{{
		MessageId: "rec-half", ReceiptHandle: "receipt-1", EventSource: SourceSQS,
		Body:       `{"id":"m-half","users":["Friendless","Dilettante"],"topics":["updates"],"body":1}`,
		Attributes: map[string]string{"ApproximateReceiveCount": "1"},
	}, {
		MessageId: "rec-poison", ReceiptHandle: "receipt-2", EventSource: SourceSQS,
		Body:       `not json`,
		Attributes: map[string]string{"ApproximateReceiveCount": "1"},
	}}}
	deadline := time.Now().Add(time.Hour)
	ctx, cancel := context.WithDeadline(t.Context(), deadline)
	defer cancel()
	// The follow-up fails as a call cut short by its deadline would.
	f.queue.sendFail = context.DeadlineExceeded

	resp, err := f.h.HandleSQS(ctx, ev)
	if err != nil {
		t.Fatal(err)
	}
	if got := failures(resp); !slices.Equal(got, []string{"rec-half"}) {
		t.Errorf("batch item failures %v; want rec-half retried (its follow-up failed) and rec-poison dead-lettered", got)
	}
	if len(f.queue.deadlines) != 2 {
		t.Fatalf("%d queue calls; want the follow-up and the dead letter", len(f.queue.deadlines))
	}
	for _, dl := range f.queue.deadlines {
		if dl.IsZero() || !dl.Before(deadline) {
			t.Errorf("a settling call's deadline is %v; want one before the invocation's (%v), so that the answer still goes out", dl, deadline)
		}
	}
}

// TestSQSRecordToRetryComesBackAfterABackoff: a record none of whose
// deliveries could be made is retried, as in the queue loop, after a
// backoff of a second per receive, not after the queue's visibility
// timeout (6 times the function's timeout, 3 minutes by default).
func TestSQSRecordToRetryComesBackAfterABackoff(t *testing.T) {
	f := sqsFixture(t)
	ev := events.SQSEvent{Records: []events.SQSMessage{{
		MessageId: "rec-failing", ReceiptHandle: "receipt-failing", EventSource: SourceSQS,
		Body:       `{"id":"m-failing","users":["Dilettante"],"topics":["updates"],"body":1}`,
		Attributes: map[string]string{"ApproximateReceiveCount": "2"},
	}, {
		MessageId: "rec-delivered", ReceiptHandle: "receipt-delivered", EventSource: SourceSQS,
		Body:       `{"id":"m-delivered","users":["Friendless"],"topics":["updates"],"body":1}`,
		Attributes: map[string]string{"ApproximateReceiveCount": "1"},
	}}}
	resp, err := f.h.HandleSQS(t.Context(), ev)
	if err != nil {
		t.Fatal(err)
	}
	if got := failures(resp); !slices.Equal(got, []string{"rec-failing"}) {
		t.Fatalf("batch item failures %v; want rec-failing", got)
	}
	if d, ok := f.queue.hidden["receipt-failing"]; !ok || d != 2*time.Second {
		t.Errorf("the failing record's visibility: %v (set: %v); want 2s, a second per receive", d, ok)
	}
	if _, ok := f.queue.hidden["receipt-delivered"]; ok {
		t.Errorf("the delivered record's visibility was changed; SQS deletes it")
	}
}

// TestSQSReportOfAFollowUpHandledAtOnceIsKept: another invocation may
// receive and handle a follow-up the moment it is enqueued, before the
// record that handed it on has settled. The report must still add the
// follow-up's deliveries up, not be overwritten by the original's.
func TestSQSReportOfAFollowUpHandledAtOnceIsKept(t *testing.T) {
	f := sqsFixture(t)
	f.queue.afterSend = func(bodies [][]byte) {
		// conn-dilettante is back, and the follow-up is handled at once.
		f.pusher.mu.Lock()
		delete(f.pusher.fail, "conn-dilettante")
		f.pusher.mu.Unlock()
		resp, err := f.h.HandleSQS(t.Context(), events.SQSEvent{Records: []events.SQSMessage{{
			MessageId: "rec-follow-up", ReceiptHandle: "receipt-follow-up", EventSource: SourceSQS,
			Body: string(bodies[0]), Attributes: map[string]string{"ApproximateReceiveCount": "1"},
		}}})
		if err != nil || len(resp.BatchItemFailures) != 0 {
			t.Errorf("the follow-up: %+v, %v; want it handled", resp, err)
		}
	}
	resp, err := f.h.HandleSQS(t.Context(), events.SQSEvent{Records: []events.SQSMessage{{
		MessageId: "rec-half", ReceiptHandle: "receipt-half", EventSource: SourceSQS,
		Body:       `{"id":"m-half","users":["Friendless","Dilettante"],"topics":["updates"],"body":1}`,
		Attributes: map[string]string{"ApproximateReceiveCount": "1"},
	}}})
	if err != nil || len(resp.BatchItemFailures) != 0 {
		t.Fatalf("the original: %+v, %v; want it handled", resp, err)
	}
	if got := f.pusher.got["conn-dilettante"]; len(got) != 1 {
		t.Fatalf("conn-dilettante got %q; want the follow-up's post", got)
	}
	rep, err := f.store.GetReport(t.Context(), "m-half")
	if err != nil || rep.Targets != 2 || rep.Delivered != 2 || rep.Failed != 0 {
		t.Errorf("report %+v, %v; want 2 targets, both delivered (one by the follow-up), none failed", rep, err)
	}
}

// failingAdmissions is a store whose admissions fail, naming the geek as
// the local store's error does.
type failingAdmissions struct{ store.Store }

func (failingAdmissions) AdmitConnection(_ context.Context, id, geek, _ string, _ time.Time, _ int, _ func(store.ChatterID) (pubsub.Connection, error)) (int, error) {
	return 0, fmt.Errorf("admitting connection %s of %s: the table failed", id, geek)
}

// TestAWebSocketErrorHoldsNoChatterID: the error of a WebSocket event,
// which the Lambda runtime writes to the function's log, named the geek a
// client gave (the store failed), which may be a chatter ID pasted into
// ?geek= by mistake. It writes one sc_(hidden), as the routes' own log
// lines do.
func TestAWebSocketErrorHoldsNoChatterID(t *testing.T) {
	f := newFixture(t)
	f.h.Routes.Store = failingAdmissions{f.store}
	id := pubsub.NewChatterID()
	var ev events.APIGatewayWebsocketProxyRequest
	if err := json.Unmarshal(readEvent(t, "connect.json"), &ev); err != nil {
		t.Fatal(err)
	}
	ev.QueryStringParameters = map[string]string{"geek": id, "id": id}
	payload, err := json.Marshal(ev)
	if err != nil {
		t.Fatal(err)
	}
	_, err = f.h.Invoke(t.Context(), payload)
	if err == nil || !strings.Contains(err.Error(), "of sc_(hidden): the table failed") || strings.Contains(err.Error(), id[3:23]) {
		t.Fatalf("Invoke = %v; want the store's failure with the geek written sc_(hidden)", err)
	}
}

// TestSQSRecordsWhoseTurnComesAfterTheFanOutAreNotTried: a batch holds
// more records than are handled at once (an event source mapping with a
// batch size over 10 and a batching window: up to 10,000), and the
// records in hand use up the fan-out's time. Those whose turn comes after
// it were each "handled" with no time left: one on its last receive was
// dead-lettered as failed ("context deadline exceeded") though nothing
// was tried, a poison one dead-lettered, and each spent the settling's
// time, which the records in hand need. They are not tried now: each is a
// batch item failure, received again, and the log says how many and why.
func TestSQSRecordsWhoseTurnComesAfterTheFanOutAreNotTried(t *testing.T) {
	f := sqsFixture(t)
	f.h.Workers = 1
	var logs bytes.Buffer
	f.h.Logger = slog.New(slog.NewJSONHandler(&logs, nil))
	f.pusher.stuck = "conn-dilettante" // the first record holds the one worker until the fan-out ends
	const (
		stuck = `{"users":["Dilettante"],"topics":["updates"],"body":"stuck"}`
		fine  = `{"users":["Friendless"],"topics":["updates"],"body":"fine"}`
	)
	ev := events.SQSEvent{}
	for _, r := range []struct{ id, body, receives string }{
		{"first", stuck, "1"}, {"late-last", stuck, "5"}, {"late-poison", "not an envelope", "1"}, {"late-fine", fine, "1"}, {"late-over", fine, "9"},
	} {
		ev.Records = append(ev.Records, events.SQSMessage{
			MessageId: r.id, ReceiptHandle: "receipt-" + r.id, EventSource: SourceSQS, Body: r.body,
			Attributes: map[string]string{"ApproximateReceiveCount": r.receives},
		})
	}
	ctx, cancel := context.WithTimeout(t.Context(), time.Second)
	defer cancel()
	resp, err := f.h.HandleSQS(ctx, ev)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := failures(resp), []string{"first", "late-fine", "late-last", "late-over", "late-poison"}; !slices.Equal(got, want) {
		t.Errorf("batch item failures %v; want %v", got, want)
	}
	if len(f.queue.reasons) != 0 {
		t.Errorf("dead letters %v; want none: no record whose turn came after the fan-out was tried", f.queue.reasons)
	}
	if got := f.pusher.got["conn-friendless"]; len(got) != 0 {
		t.Errorf("posted %q after the fan-out's end", got)
	}
	if _, ok := f.queue.hidden["receipt-first"]; !ok || len(f.queue.hidden) != 1 {
		t.Errorf("visibility changed for %v; want the tried record's only", f.queue.hidden)
	}
	var said bool
	for line := range strings.SplitSeq(strings.TrimSpace(logs.String()), "\n") {
		var l struct {
			Level, Msg string
			Records    int
		}
		if json.Unmarshal([]byte(line), &l) == nil && l.Level == "WARN" && l.Records == 4 && strings.Contains(l.Msg, "not tried") {
			said = true
		}
	}
	if !said {
		t.Errorf("no WARN line says 4 records were not tried:\n%s", logs.String())
	}
}
