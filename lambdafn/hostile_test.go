package lambdafn

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/aws/aws-lambda-go/events"

	"github.com/socks-dev/socks/pubsub"
	"github.com/socks-dev/socks/store"
)

// sqsRecord is one record of a made-up SQS batch.
type sqsRecord struct{ id, body, receives string }

// sqsBatch is the payload of an SQS event holding records.
func sqsBatch(t *testing.T, records ...sqsRecord) []byte {
	t.Helper()
	var rs []map[string]any
	for i, r := range records {
		rs = append(rs, map[string]any{
			"messageId": r.id, "receiptHandle": "receipt-" + r.id + "-" + string(rune('a'+i)), "body": r.body,
			"attributes":  map[string]string{"ApproximateReceiveCount": r.receives, "SentTimestamp": "1769088100000"},
			"eventSource": SourceSQS, "eventSourceARN": "arn:aws:sqs:eu-west-1:123456789012:prod-envelopes",
		})
	}
	b, err := json.Marshal(map[string]any{"Records": rs})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// withDomain is the recorded $default event with its requestContext's
// domainName, stage and apiId replaced.
func withDomain(t *testing.T, domain, stage, apiID string) []byte {
	t.Helper()
	var ev map[string]any
	if err := json.Unmarshal(readEvent(t, "default.json"), &ev); err != nil {
		t.Fatal(err)
	}
	rc := ev["requestContext"].(map[string]any)
	rc["domainName"], rc["stage"], rc["apiId"] = domain, stage, apiID
	b, err := json.Marshal(ev)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// A client (or anyone who can invoke the function) must not be able to
// point the broker's Management API calls, and so the bodies it posts, at
// a host of their choosing through an event's requestContext: no event's
// domain or stage is ever an endpoint (only SOCKS_CALLBACK_URL is).
func TestAnEventCannotSteerTheManagementEndpoint(t *testing.T) {
	for _, tc := range []struct{ name, domain, stage, apiID string }{
		{"the API's own domain with another stage", "abc123defg.execute-api.eu-west-1.amazonaws.com", "dev", "abc123defg"},
		{"an execute-api label inside another domain", "abc123defg.execute-api.evil.example", "prod", "abc123defg"},
		{"the API's domain followed by another", "abc123defg.execute-api.eu-west-1.amazonaws.com.evil.example", "prod", "abc123defg"},
		{"user info before another host", "abc123defg.execute-api.eu-west-1.amazonaws.com@evil.example", "prod", "abc123defg"},
		{"a stage that climbs out of the path", "abc123defg.execute-api.eu-west-1.amazonaws.com", "prod/../../evil", "abc123defg"},
		{"a domain of another API than the event's", "zzz999zzzz.execute-api.eu-west-1.amazonaws.com", "prod", "abc123defg"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, callback := range []string{"", "https://callback.example/prod"} {
				f := sqsFixture(t)
				f.h.Callback = callback
				f.websocket(t, readEvent(t, "default.json")) // the API's own endpoint
				f.websocket(t, withDomain(t, tc.domain, tc.stage, tc.apiID))
				f.sqs(t, readEvent(t, "sqs-batch.json"))
				want := map[string]int{}
				if callback != "" {
					want[callback] = 1
				}
				if !maps.Equal(f.pushers, want) {
					t.Errorf("SOCKS_CALLBACK_URL %q: pushers %v; want %v", callback, f.pushers, want)
				}
			}
		})
	}
}

// A record SQS hands over twice in one batch (same message ID) is one
// message: handled once, and reported once.
func TestSQSDuplicateRecordsInABatchAreHandledOnce(t *testing.T) {
	const delivered = `{"id":"m-dup","users":["Friendless"],"topics":["updates"],"body":"once"}`
	const failing = `{"id":"m-dup-fail","users":["Dilettante"],"topics":["updates"],"body":"never"}`
	t.Run("a delivered record is posted once and not reported failed", func(t *testing.T) {
		f := sqsFixture(t)
		resp := f.sqs(t, sqsBatch(t, sqsRecord{"dup", delivered, "1"}, sqsRecord{"dup", delivered, "1"}))
		if got := failures(resp); len(got) != 0 {
			t.Errorf("batch item failures %v; want none", got)
		}
		if got := f.pusher.got["conn-friendless"]; !slices.Equal(got, []string{`"once"`}) {
			t.Errorf("posted %q; want one post", got)
		}
	})
	t.Run("a failing record is reported failed once", func(t *testing.T) {
		f := sqsFixture(t)
		resp := f.sqs(t, sqsBatch(t, sqsRecord{"dup", failing, "1"}, sqsRecord{"other", delivered, "1"}, sqsRecord{"dup", failing, "1"}))
		if got := failures(resp); !slices.Equal(got, []string{"dup"}) {
			t.Errorf("batch item failures %v; want [dup]", got)
		}
		// SQS heeds only the latest receipt of a message received twice.
		if _, ok := f.queue.hidden["receipt-dup-c"]; !ok || len(f.queue.hidden) != 1 {
			t.Errorf("visibility changed for %v; want only the later receipt receipt-dup-c", f.queue.hidden)
		}
	})
}

// Every record of a batch is reported failed exactly when it was not
// handled, whatever it holds.
func TestSQSBatchOfOddRecordsIsReportedExactly(t *testing.T) {
	f := sqsFixture(t)
	resp := f.sqs(t, sqsBatch(t,
		sqsRecord{"empty", "", "1"},
		sqsRecord{"not-json", "\x00\x01binary", "1"},
		sqsRecord{"array", `[1,2,3]`, "1"},
		sqsRecord{"huge", `{"users":["Friendless"],"topics":["updates"],"body":"` + strings.Repeat("x", 200*1024) + `"}`, "1"},
		sqsRecord{"no-receives", `{"users":["Dilettante"],"topics":["updates"],"body":1}`, ""},
		sqsRecord{"fine", `{"users":["Friendless"],"topics":["updates"],"body":2}`, "1"},
	))
	if got := failures(resp); !slices.Equal(got, []string{"no-receives"}) {
		t.Errorf("batch item failures %v; want only the undeliverable record", got)
	}
	for _, id := range []string{"empty", "not-json", "array", "huge"} {
		if r := f.queue.reasons[id]; !strings.HasPrefix(r, "unusable envelope") {
			t.Errorf("dead letter %s: reason %q", id, r)
		}
	}
	if got := f.pusher.got["conn-friendless"]; !slices.Equal(got, []string{"2"}) {
		t.Errorf("posted %q; want only the fine record's body", got)
	}
}

func TestInvokeRefusesAScheduledEvent(t *testing.T) {
	f := newFixture(t)
	_, err := f.h.Invoke(t.Context(), []byte(`{"version":"0","id":"53dc4d37","detail-type":"Scheduled Event","source":"aws.events","account":"123456789012","time":"2026-01-22T13:20:00Z","region":"eu-west-1","resources":["arn:aws:events:eu-west-1:123456789012:rule/prune"],"detail":{}}`))
	var ue *UnsupportedEventError
	if !errors.As(err, &ue) {
		t.Errorf("err = %v; want an UnsupportedEventError", err)
	}
}

// failingPuts is a store whose connection writes fail (and that has no
// AdmitConnection, so the routes admit in steps and reach the write).
type failingPuts struct{ store.Store }

func (failingPuts) PutConnection(context.Context, pubsub.Connection) error {
	return errors.New("connection table unavailable")
}

// No chatter ID, right or wrong, reaches the function's logs (CloudWatch),
// whichever way the connect goes.
func TestTheFunctionNeverLogsAChatterID(t *testing.T) {
	f := newFixture(t)
	var logs bytes.Buffer
	logger := slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	f.h.Logger = logger
	f.h.Routes.Logger = logger
	const wrong = "sc_WRONG-but-looks-like-one-0123456789"
	connect := string(readEvent(t, "connect.json"))
	header := string(readEvent(t, "connect-header.json"))
	for _, ev := range []string{
		connect,
		header,
		strings.ReplaceAll(connect, fixtureSecret, wrong),
		strings.ReplaceAll(header, fixtureSecret, wrong),
		strings.ReplaceAll(connect, fixtureSecret, wrong+strings.Repeat("x", 5000)),
	} {
		if _, err := f.h.Invoke(t.Context(), []byte(ev)); err != nil {
			t.Fatal(err)
		}
	}
	f.h.Routes.Store = failingPuts{f.store}
	if _, err := f.h.Invoke(t.Context(), []byte(strings.ReplaceAll(connect, fixtureConn, "conn-failing"))); err == nil {
		t.Error("a connect whose record cannot be written succeeded")
	}
	if logs.Len() == 0 {
		t.Fatal("nothing was logged: the check below would prove nothing")
	}
	for _, secret := range []string{fixtureSecret, wrong, "sc_"} {
		if strings.Contains(logs.String(), secret) {
			t.Errorf("the logs carry %q:\n%s", secret, logs.String())
		}
	}
}

// FuzzDispatch feeds the function any payload: it never panics, and an SQS
// batch's answer names only its records' message IDs, each at most once.
func FuzzDispatch(f *testing.F) {
	for _, name := range []string{"connect.json", "connect-header.json", "subscribe.json", "default.json", "disconnect.json", "sqs-batch.json"} {
		b, err := os.ReadFile(filepath.Join("..", "testdata", "lambda", name))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte(`{"Records":[{"eventSource":"aws:sqs","messageId":"a","body":"{}"},{"eventSource":"aws:sqs","messageId":"a","body":"[]"}]}`))
	f.Add([]byte(`{"requestContext":{"routeKey":"$disconnect","eventType":"MESSAGE","connectionId":"x"}}`))
	fx := sqsFixture(f)
	f.Fuzz(func(t *testing.T, payload []byte) {
		resp, err := fx.h.Dispatch(context.Background(), payload)
		r, ok := resp.(events.SQSEventResponse)
		if err != nil || !ok {
			return
		}
		var ev events.SQSEvent
		if err := json.Unmarshal(payload, &ev); err != nil {
			t.Fatalf("answered %+v for a batch that does not decode: %v", r, err)
		}
		ids := map[string]bool{}
		for _, rec := range ev.Records {
			ids[rec.MessageId] = true
		}
		seen := map[string]bool{}
		for _, fail := range r.BatchItemFailures {
			if !ids[fail.ItemIdentifier] || seen[fail.ItemIdentifier] {
				t.Fatalf("batch item failure %q is not one of the batch's records, or is named twice: %+v", fail.ItemIdentifier, r)
			}
			seen[fail.ItemIdentifier] = true
		}
	})
}

// docs/deploy.md: one "delivered" log line per message handled, and a
// "dead-lettered" line with the reason per message dead-lettered.
func TestTheFunctionLogsEachMessagesFate(t *testing.T) {
	f := sqsFixture(t)
	var logs bytes.Buffer
	f.h.Logger = slog.New(slog.NewJSONHandler(&logs, nil))
	f.sqs(t, readEvent(t, "sqs-batch.json"))
	got := map[string][]string{}
	for line := range strings.SplitSeq(strings.TrimSpace(logs.String()), "\n") {
		var l struct{ Msg, Message, Reason string }
		if err := json.Unmarshal([]byte(line), &l); err != nil {
			t.Fatalf("log line %q is not JSON: %v", line, err)
		}
		if l.Msg == "delivered" || (l.Msg == "dead-lettered" && l.Reason != "") {
			got[l.Msg] = append(got[l.Msg], l.Message)
		}
	}
	slices.Sort(got["delivered"])
	slices.Sort(got["dead-lettered"])
	want := map[string][]string{
		"delivered":     {"059f36b4-87a3-44ab-83d2-661975830a7d", "a1b2c3d4-e5f6-4a7b-8c9d-0e1f2a3b4c5d"},
		"dead-lettered": {"2e1424d4-f796-459a-8184-9c92662be6da", "c7a1e9d3-0b2f-4e6a-8d5c-3f1b7e9a2c4d", "f0e1d2c3-b4a5-4968-8776-655443322110"},
	}
	for msg, ids := range want {
		if !slices.Equal(got[msg], ids) {
			t.Errorf("%q lines for %v; want %v\n%s", msg, got[msg], ids, logs.String())
		}
	}
}

// A record without a messageId (SQS always sets one: an event made by
// hand) cannot be reported as a batch item failure: Lambda takes an empty
// itemIdentifier for the failure of the whole batch, and would deliver its
// other records again.
func TestSQSRecordWithoutAMessageID(t *testing.T) {
	const failing = `{"id":"m-no-id","users":["Dilettante"],"topics":["updates"],"body":"never"}`
	const delivered = `{"id":"m-fine","users":["Friendless"],"topics":["updates"],"body":"once"}`
	t.Run("one to retry is dead-lettered with why, and the batch's other records are done", func(t *testing.T) {
		f := sqsFixture(t)
		resp := f.sqs(t, sqsBatch(t, sqsRecord{"", failing, "1"}, sqsRecord{"fine", delivered, "1"}))
		if got := failures(resp); len(got) != 0 {
			t.Errorf("batch item failures %q; want none (an empty itemIdentifier fails the whole batch)", got)
		}
		if r := f.queue.reasons[""]; !strings.Contains(r, "no delivery succeeded") || !strings.Contains(r, "no messageId") {
			t.Errorf("dead letter reason %q; want the failure and that the record has no messageId", r)
		}
		if got := f.pusher.got["conn-friendless"]; !slices.Equal(got, []string{`"once"`}) {
			t.Errorf("posted %q; want the other record's body once", got)
		}
	})
	t.Run("one delivered is done", func(t *testing.T) {
		f := sqsFixture(t)
		resp := f.sqs(t, sqsBatch(t, sqsRecord{"", delivered, "1"}))
		if got := failures(resp); len(got) != 0 || len(f.queue.reasons) != 0 {
			t.Errorf("batch item failures %q, dead letters %v; want none", got, f.queue.reasons)
		}
	})
	t.Run("when the dead-lettering fails too, the whole batch fails and none is lost", func(t *testing.T) {
		f := sqsFixture(t)
		f.queue.fail = errors.New("SendMessage: access denied")
		_, err := f.h.Invoke(t.Context(), sqsBatch(t, sqsRecord{"fine", delivered, "1"}, sqsRecord{"", failing, "1"}))
		if err == nil || !strings.Contains(err.Error(), "record 2 of 2 has no messageId") {
			t.Fatalf("Invoke = %v; want an error failing the batch for record 2, which has no messageId", err)
		}
	})
}

// An event of another shape than socks serves is refused in words, the
// operator's to read in the invocation error and the function's log: a
// JSON object with a field of another type was called "not a JSON
// object", with encoding/json's Go type names.
func TestAnEventOfAnotherShapeIsRefusedInWords(t *testing.T) {
	f := newFixture(t)
	for _, tc := range []struct{ payload, want string }{
		{`{"requestContext":"x"}`, `the event has "requestContext" as a string; it must be an object`},
		{`{"Records":{"eventSource":"aws:sqs"}}`, `the event has "Records" as an object; it must be a list`},
		{`{"Records":[{"eventSource":5}]}`, `the event has "Records.eventSource" as a number; it must be a string`},
		{`[1,2]`, "the event must be a JSON object, not an array"},
		{`hello`, "the event is not valid JSON (it breaks at byte 1)"},
		{` `, "the event is empty"},
		// A WebSocket event, but not as API Gateway writes one.
		{`{"requestContext":{"routeKey":"$default","connectionId":"c1","connectedAt":"soon"}}`, `the WebSocket event has "requestContext.connectedAt" as a string; it must be a number`},
		{`{"requestContext":{"routeKey":"$default","connectionId":"c1"},"body":{"action":"ping"}}`, `the WebSocket event has "body" as an object; it must be a string`},
		// An SQS event, but not as SQS writes one: valid JSON whose
		// binary message attribute is not base64 was called "not valid
		// JSON".
		{`{"Records":[{"eventSource":"aws:sqs","messageAttributes":{"a":{"dataType":"Binary","binaryValue":"AAEC!!"}}}]}`, `the SQS event has a binary value that is not base64 (it breaks at its byte 4)`},
	} {
		_, err := f.h.Invoke(t.Context(), []byte(tc.payload))
		if err == nil {
			t.Errorf("%s: served; want it refused", tc.payload)
			continue
		}
		msg := err.Error()
		var ue *UnsupportedEventError
		if errors.As(err, &ue) != !(strings.HasPrefix(tc.want, "the WebSocket event") || strings.HasPrefix(tc.want, "the SQS event")) {
			t.Errorf("%s: %q is an UnsupportedEventError: %v; want one only for an event of another kind", tc.payload, msg, errors.As(err, &ue))
		}
		if !strings.Contains(msg, tc.want) || !strings.Contains(msg, "check the function's triggers") {
			t.Errorf("%s: %q; want it to say %q and to check the function's triggers", tc.payload, msg, tc.want)
		}
		for _, leak := range []string{"json:", "Go struct", "Go value", "lambdafn.", "events."} {
			if strings.Contains(msg, leak) {
				t.Errorf("%s: %q shows Go internals (%q)", tc.payload, msg, leak)
			}
		}
	}
}

// fromQueues is batch with the eventSourceARN of each record whose message
// ID arns names replaced by that ARN.
func fromQueues(t *testing.T, batch []byte, arns map[string]string) []byte {
	t.Helper()
	var ev struct{ Records []map[string]any }
	if err := json.Unmarshal(batch, &ev); err != nil {
		t.Fatal(err)
	}
	for _, r := range ev.Records {
		if arn, ok := arns[r["messageId"].(string)]; ok {
			r["eventSourceARN"] = arn
		}
	}
	b, err := json.Marshal(ev)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// A batch whose records come from a queue other than the stack's envelope
// queue (an event source mapping from the dead-letter queue, from another
// stack's queue, or one added by hand) is miswired: socks serves only its
// own queue's records. The others are neither delivered (another stack's
// envelopes would reach this stack's connections; dead letters would be
// redriven unasked) nor dead-lettered or made visible again with their
// receipt on the main queue, which is not theirs: each is a batch item
// failure, left to its own queue and its redrive policy, and the log says
// which queue is wired and which one socks serves (a FIFO queue's too). The stack's own records
// of the batch are served as ever.
func TestSQSRecordsFromAnotherQueueAreLeftToIt(t *testing.T) {
	const (
		delivered = `{"users":["Friendless"],"topics":["updates"],"body":"own"}`
		far       = `{"users":["Friendless"],"topics":["updates"],"body":"far"}`
		failing   = `{"users":["Dilettante"],"topics":["updates"],"body":"never"}`
		dlq       = "arn:aws:sqs:eu-west-1:123456789012:prod-envelopes-dlq"
		staging   = "arn:aws:sqs:eu-west-1:123456789012:staging-envelopes"
		// A FIFO queue's records, whose order socks's parallel handling
		// and retries would not keep (its own queue is a standard one).
		fifo = "arn:aws:sqs:eu-west-1:123456789012:prod-envelopes.fifo"
	)
	f := sqsFixture(t)
	f.h.EnvelopeQueue = "prod-envelopes"
	var logs bytes.Buffer
	f.h.Logger = slog.New(slog.NewJSONHandler(&logs, nil))
	payload := fromQueues(t, sqsBatch(t,
		sqsRecord{"own", delivered, "1"},
		sqsRecord{"own-retry", failing, "1"},
		sqsRecord{"far-fine", far, "1"},
		sqsRecord{"far-poison", "not an envelope", "1"},
		sqsRecord{"far-retry", failing, "2"},
		sqsRecord{"far-last", failing, "5"},
		sqsRecord{"far-over", far, "9"},
		sqsRecord{"far-odd", far, "1"},
		sqsRecord{"far-fifo", far, "1"},
	), map[string]string{
		"far-fine": dlq, "far-poison": dlq, "far-retry": staging, "far-last": staging, "far-over": dlq,
		"far-odd": "not an ARN", "far-fifo": fifo,
	})
	got := failures(f.sqs(t, payload))
	want := []string{"far-fifo", "far-fine", "far-last", "far-odd", "far-over", "far-poison", "far-retry", "own-retry"}
	if !slices.Equal(got, want) {
		t.Errorf("batch item failures %v; want %v (every record of another queue left to it)", got, want)
	}
	if p := f.pusher.got["conn-friendless"]; !slices.Equal(p, []string{`"own"`}) {
		t.Errorf("posted %q; want only the stack's own record", p)
	}
	if len(f.queue.reasons) != 0 {
		t.Errorf("dead letters %v; want none (a record of another queue is not the main queue's to move)", f.queue.reasons)
	}
	for receipt := range f.queue.hidden {
		if !strings.HasPrefix(receipt, "receipt-own-") {
			t.Errorf("visibility changed on the main queue with %s, another queue's receipt", receipt)
		}
	}
	if _, ok := f.queue.hidden["receipt-own-retry-b"]; !ok {
		t.Errorf("visibility changed for %v; want the stack's own record to retry backed off as ever", f.queue.hidden)
	}
	var said bool
	for line := range strings.SplitSeq(strings.TrimSpace(logs.String()), "\n") {
		var l struct {
			Level, Msg, Queue string
			From              []string
		}
		if err := json.Unmarshal([]byte(line), &l); err != nil {
			t.Fatalf("log line %q is not JSON: %v", line, err)
		}
		if l.Level == "ERROR" && l.Queue == "prod-envelopes" && slices.Equal(l.From, []string{dlq, staging, "not an ARN", fifo}) &&
			strings.Contains(l.Msg, "check the function's triggers") {
			said = true
		}
	}
	if !said {
		t.Errorf("no ERROR line names the queues wired, the stack's queue and what to check:\n%s", logs.String())
	}
}

// A record of another queue without a messageId (an event made by hand)
// cannot be left to its queue alone: Lambda takes an empty itemIdentifier
// for the failure of the whole batch, so the invocation fails, saying
// why, and the whole batch comes back (TestSQSRecordWithoutAMessageID).
func TestSQSRecordFromAnotherQueueWithoutAMessageIDFailsTheBatch(t *testing.T) {
	f := sqsFixture(t)
	f.h.EnvelopeQueue = "prod-envelopes"
	payload := fromQueues(t, sqsBatch(t,
		sqsRecord{"own", `{"users":["Friendless"],"topics":["updates"],"body":"own"}`, "1"},
		sqsRecord{"", `{"users":["Friendless"],"topics":["updates"],"body":"far"}`, "1"},
	), map[string]string{"": "arn:aws:sqs:eu-west-1:123456789012:staging-envelopes"})
	_, err := f.h.Invoke(t.Context(), payload)
	if err == nil || !strings.Contains(err.Error(), "record 2 of 2 has no messageId and comes from another queue than the stack's envelope queue prod-envelopes") {
		t.Errorf("Invoke = %v; want an error failing the batch for record 2, another queue's without a messageId", err)
	}
	if got := f.pusher.got["conn-friendless"]; !slices.Equal(got, []string{`"own"`}) || len(f.queue.hidden) != 0 || len(f.queue.reasons) != 0 {
		t.Errorf("posted %q, visibility changed %v, dead letters %v; want the own record's body only, nothing done with the other's receipt", got, f.queue.hidden, f.queue.reasons)
	}
}
