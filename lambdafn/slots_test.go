package lambdafn

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/socks-dev/socks/awsops"
	"github.com/socks-dev/socks/broker"
	"github.com/socks-dev/socks/internal/build"
	"github.com/socks-dev/socks/internal/emulatortest"
	"github.com/socks-dev/socks/internal/refusing"
	"github.com/socks-dev/socks/pubsub"
)

// TestTheRecordsOfABatchShareTheManagementClientsConnections: a batch's
// records are handled DefaultWorkers at once, each posting to
// broker.DefaultConcurrency connections at once, all through the one
// Management API client New builds. Its pool was sized to one record's
// posts (32) and nothing else bounded them: the others waited in the
// client's pool with their 10 s timeout running, and one that waited long
// enough failed, never sent, and was tried again (with the endpoint
// holding each post as long as it takes here, 683 posts for 320). The
// function's posts now take postSlots, as many as the client has
// connections, before their timeout starts
// (TestAPostsTimeoutStartsOnceItHasASlot, broker). Here the endpoint
// holds the posts in waves, each until postSlots of them are under way
// at once (which they can only be with a connection each; with fewer, a
// wave is held past the post timeout): every post of a full batch is
// sent once, and never more than postSlots at once.
func TestTheRecordsOfABatchShareTheManagementClientsConnections(t *testing.T) {
	const holdFor = broker.DefaultPostTimeout + 5*time.Second
	want := int64(DefaultWorkers * broker.DefaultConcurrency)
	var inFlight, most, requests atomic.Int64
	var mu sync.Mutex
	wave, inWave := make(chan struct{}), 0
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		requests.Add(1)
		n := inFlight.Add(1)
		defer inFlight.Add(-1)
		for m := most.Load(); n > m && !most.CompareAndSwap(m, n); m = most.Load() {
		}
		mu.Lock()
		mine := wave
		if inWave++; inWave == postSlots {
			close(wave)
			wave, inWave = make(chan struct{}), 0
		}
		mu.Unlock()
		select {
		case <-mine:
		case <-r.Context().Done():
			return
		case <-time.After(holdFor):
		}
		w.WriteHeader(http.StatusOK)
	}))
	t.Cleanup(srv.Close)

	f := newFixture(t)
	f.h.Broker.Concurrency = broker.DefaultConcurrency
	f.h.Broker.PostSlots = make(chan struct{}, postSlots)
	f.h.Pusher = managementPushers(awsops.LocalConfig())
	f.h.Callback = srv.URL + "/prod"
	var ev events.SQSEvent
	for r := range DefaultWorkers {
		ids := make([]string, broker.DefaultConcurrency)
		for i := range ids {
			ids[i] = fmt.Sprintf("conn-%d-%d", r, i)
		}
		body, err := pubsub.Envelope{ID: fmt.Sprintf("m-%d", r), Users: []string{"Friendless"}, Topics: []string{"updates"}, Body: []byte(`1`), FollowUp: pubsub.FollowUp{Connections: ids, Attempt: 1}}.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		ev.Records = append(ev.Records, events.SQSMessage{
			MessageId: fmt.Sprintf("rec-%d", r), ReceiptHandle: fmt.Sprintf("receipt-%d", r), EventSource: SourceSQS,
			Body: string(body), Attributes: map[string]string{"ApproximateReceiveCount": "1"},
		})
	}
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	start := time.Now()
	resp, err := f.h.HandleSQS(ctx, ev)
	if err != nil {
		t.Fatal(err)
	}
	if got := failures(resp); len(got) != 0 || len(f.queue.sent) != 0 {
		t.Errorf("batch item failures %v, follow-ups %q; want every post delivered", got, f.queue.sent)
	}
	for r := range DefaultWorkers {
		rep, err := f.store.GetReport(t.Context(), fmt.Sprintf("m-%d", r))
		if err != nil || rep.Delivered != broker.DefaultConcurrency || len(rep.Errors) != 0 {
			t.Errorf("report of m-%d %+v, %v; want %d delivered (errors: %s)", r, rep, err, broker.DefaultConcurrency, strings.Join(rep.Errors, "; "))
			break
		}
	}
	// Each post was sent once: none timed out waiting for a connection
	// and was tried again.
	if n, m := requests.Load(), most.Load(); n != want || m > postSlots {
		t.Errorf("%d posts reached the endpoint, at most %d at once (in %s); want each of the %d sent once, at most %d at once", n, m, time.Since(start).Round(time.Second), want, postSlots)
	}
}

// TestTheFunctionNewBuildsPostsThroughItsSlots: the Handler New builds
// shares postSlots across its records (the test above sets them itself).
func TestTheFunctionNewBuildsPostsThroughItsSlots(t *testing.T) {
	emulatortest.FakeCredentials(t)
	// Nothing is called at init; the endpoint refuses connections all the same.
	env := map[string]string{"SOCKS_STACK": "prod", "AWS_REGION": "eu-west-1", "SOCKS_ENDPOINT_URL": refusing.URL(t), "SOCKS_CALLBACK_URL": "https://abc123defg.execute-api.eu-west-1.amazonaws.com/prod"}
	h, err := New(t.Context(), func(k string) string { return env[k] }, build.Info{}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	if got := cap(h.Broker.PostSlots); got != postSlots || postSlots != broker.DefaultConcurrency {
		t.Errorf("the broker's PostSlots hold %d; want %d, the Management API client's connections", got, postSlots)
	}
}
