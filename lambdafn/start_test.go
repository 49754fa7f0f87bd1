package lambdafn

import (
	"bytes"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/socks-dev/socks/awsops"
	"github.com/socks-dev/socks/internal/build"
	"github.com/socks-dev/socks/internal/emulatortest"
	"github.com/socks-dev/socks/internal/refusing"
)

// TestAFunctionWithABadAttemptTimeoutFailsAtStartInWords: a function whose
// SOCKS_ATTEMPT_TIMEOUT is not a duration above 0 (a bare 5) does not
// start, rather than run on the 15 s default the user meant to change:
// Main returns 1 before the runtime loop (Lambda's Runtime.ExitError at
// init) and its one line on stderr, which CloudWatch Logs keeps, names the
// variable, the value and the fix.
func TestAFunctionWithABadAttemptTimeoutFailsAtStartInWords(t *testing.T) {
	// Main makes the process's explanations a function's: not past this test.
	t.Cleanup(func() { awsops.ExplainAsLambda(false) })
	for value, want := range map[string]string{
		"5":   `socks: $SOCKS_ATTEMPT_TIMEOUT "5" is not a duration: give a number with a unit, as 5s or 1m` + "\n",
		"-2s": `socks: $SOCKS_ATTEMPT_TIMEOUT "-2s" must be above 0` + "\n",
	} {
		env := map[string]string{"SOCKS_STACK": "prod", "AWS_REGION": "eu-west-1", "SOCKS_ATTEMPT_TIMEOUT": value}
		var stderr bytes.Buffer
		if code := Main(t.Context(), func(k string) string { return env[k] }, build.Info{}, &stderr); code != 1 {
			t.Errorf("SOCKS_ATTEMPT_TIMEOUT=%s: Main returned %d; want 1", value, code)
		}
		if got := stderr.String(); got != want || strings.Count(got, "\n") != 1 {
			t.Errorf("SOCKS_ATTEMPT_TIMEOUT=%s: stderr %q; want %q", value, got, want)
		}
	}
}

// TestAFunctionWithoutACallbackURLSaysSoAtStart: deploy and the template
// always set SOCKS_CALLBACK_URL; a function made by hand without it still
// serves WebSocket events, but says at init, in one ERROR line that
// CloudWatch Logs keeps, that SQS batches will not be delivered until it
// is set (and each batch says so again: TestSQSWithoutACallbackURL).
func TestAFunctionWithoutACallbackURLSaysSoAtStart(t *testing.T) {
	emulatortest.FakeCredentials(t)
	for _, tc := range []struct {
		name, callback string
		wantErrorLog   bool
	}{
		{"without the variable", "", true},
		{"with the variable", "https://abc123defg.execute-api.eu-west-1.amazonaws.com/prod", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// Nothing is called at init; the endpoint refuses connections all the same.
			env := map[string]string{"SOCKS_STACK": "prod", "AWS_REGION": "eu-west-1", "SOCKS_ENDPOINT_URL": refusing.URL(t), "SOCKS_CALLBACK_URL": tc.callback}
			var logs bytes.Buffer
			h, err := New(t.Context(), func(k string) string { return env[k] }, build.Info{}, slog.New(slog.NewJSONHandler(&logs, nil)))
			if err != nil {
				t.Fatalf("New: %v", err)
			}
			if h.Callback != tc.callback {
				t.Errorf("Callback %q; want %q", h.Callback, tc.callback)
			}
			got := logs.String()
			said := strings.Contains(got, `"level":"ERROR"`) && strings.Contains(got, "SOCKS_CALLBACK_URL") && strings.Contains(got, "SQS batches will not be delivered")
			if said != tc.wantErrorLog || strings.Count(got, "\n") > 1 {
				t.Errorf("init logged %q; want an ERROR line about SOCKS_CALLBACK_URL: %v", got, tc.wantErrorLog)
			}
		})
	}
}

// TestTheFunctionReadsNoClockAtInitNorForAPing: the function runs on
// AWS's clock, so its broker and routes never ask DynamoDB the time
// (store.Clock, which the commands run outside Lambda read): not at
// init, which every cold start pays, nor for an event that needs no
// AWS call (a ping).
func TestTheFunctionReadsNoClockAtInitNorForAPing(t *testing.T) {
	emulatortest.FakeCredentials(t)
	var calls atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		http.Error(w, "no", http.StatusInternalServerError)
	}))
	defer srv.Close()
	env := map[string]string{"SOCKS_STACK": "prod", "AWS_REGION": "eu-west-1", "SOCKS_ENDPOINT_URL": srv.URL, "SOCKS_CALLBACK_URL": "https://abc123defg.execute-api.eu-west-1.amazonaws.com/prod"}
	h, err := New(t.Context(), func(k string) string { return env[k] }, build.Info{}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	if n := calls.Load(); n != 0 {
		t.Errorf("init made %d AWS requests; want none", n)
	}
	ping := `{"requestContext":{"routeKey":"ping","eventType":"MESSAGE","connectionId":"c1","requestId":"r1","stage":"prod","domainName":"abc123defg.execute-api.eu-west-1.amazonaws.com"},"body":"{\"action\":\"ping\"}"}`
	out, err := h.Invoke(t.Context(), []byte(ping))
	if err != nil || !strings.Contains(string(out), "pong") {
		t.Errorf("ping answered %s, %v; want a pong", out, err)
	}
	if n := calls.Load(); n != 0 {
		t.Errorf("a ping made %d AWS requests; want none", n)
	}
}

// TestTheFunctionNewBuildsServesOnlyItsStacksQueue: the handler New builds
// knows its stack's envelope queue, and leaves a batch of another queue's
// records to that queue (TestSQSRecordsFromAnotherQueueAreLeftToIt)
// without a request to AWS: nothing with their receipts on its own queue.
func TestTheFunctionNewBuildsServesOnlyItsStacksQueue(t *testing.T) {
	emulatortest.FakeCredentials(t)
	var calls atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		http.Error(w, "no", http.StatusInternalServerError)
	}))
	defer srv.Close()
	env := map[string]string{"SOCKS_STACK": "prod", "AWS_REGION": "eu-west-1", "SOCKS_ENDPOINT_URL": srv.URL, "SOCKS_CALLBACK_URL": "https://abc123defg.execute-api.eu-west-1.amazonaws.com/prod"}
	h, err := New(t.Context(), func(k string) string { return env[k] }, build.Info{}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	if h.EnvelopeQueue != "prod-envelopes" {
		t.Errorf("EnvelopeQueue %q; want prod-envelopes", h.EnvelopeQueue)
	}
	batch := `{"Records":[` +
		`{"messageId":"m1","receiptHandle":"r1","body":"not an envelope","attributes":{"ApproximateReceiveCount":"1"},"eventSource":"aws:sqs","eventSourceARN":"arn:aws:sqs:eu-west-1:123456789012:prod-envelopes-dlq"},` +
		`{"messageId":"m2","receiptHandle":"r2","body":"{\"users\":[\"u\"],\"body\":1}","attributes":{"ApproximateReceiveCount":"9"},"eventSource":"aws:sqs","eventSourceARN":"arn:aws:sqs:eu-west-1:123456789012:staging-envelopes"}]}`
	out, err := h.Invoke(t.Context(), []byte(batch))
	if err != nil || string(out) != `{"batchItemFailures":[{"itemIdentifier":"m1"},{"itemIdentifier":"m2"}]}` {
		t.Errorf("answered %s, %v; want both records left to their queue", out, err)
	}
	if n := calls.Load(); n != 0 {
		t.Errorf("the batch made %d AWS requests; want none", n)
	}
}
