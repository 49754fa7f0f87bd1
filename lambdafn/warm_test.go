package lambdafn

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/socks-dev/socks/broker"
	"github.com/socks-dev/socks/routes"
	"github.com/socks-dev/socks/store"
	"github.com/socks-dev/socks/store/storetest"
)

// quietQueue is the SQS queue of the Lambda path, keeping nothing.
type quietQueue struct{ store.Queue }

func (quietQueue) ChangeVisibility(context.Context, string, time.Duration) error { return nil }
func (quietQueue) SendBatch(_ context.Context, bodies [][]byte) ([]string, error) {
	return make([]string, len(bodies)), nil
}
func (quietQueue) DeadLetter(context.Context, store.Message, string) error { return nil }

// A warm container serves invocation after invocation with one Handler
// for hours: what it keeps must not grow with them. Thousands of
// connections through $connect, subscribe, $default and $disconnect, with
// SQS batches fanned out to them, leave behind no goroutine, no
// Management API client past the first, no connection record, and no heap
// that grows with them.
func TestAWarmHandlerKeepsNothingPerInvocation(t *testing.T) {
	s, now := fixtureStore(t)
	pusher := &storetest.CountingPusher{}
	var clients atomic.Int64
	h := &Handler{
		Routes: &routes.Handler{Store: s, Now: now},
		Broker: &broker.Broker{Store: s, Queue: quietQueue{}, Now: now, Sleep: func(context.Context, time.Duration) error { return nil }},
		Pusher: func(string) store.Pusher {
			clients.Add(1)
			return pusher
		},
		Callback: "https://abc123defg.execute-api.eu-west-1.amazonaws.com/prod",
	}
	events := map[string]string{}
	for _, name := range []string{"connect.json", "subscribe.json", "default.json", "disconnect.json", "sqs-batch.json"} {
		events[name] = string(readEvent(t, name))
	}
	invoke := func(name string, replace ...string) []byte {
		t.Helper()
		out, err := h.Invoke(t.Context(), []byte(strings.NewReplacer(replace...).Replace(events[name])))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		return out
	}
	cycle := func(i int) {
		id := fmt.Sprintf("warm-%d=", i)
		if out := invoke("connect.json", fixtureConn, id); !strings.Contains(string(out), fmt.Sprintf(`"statusCode":%d`, http.StatusOK)) {
			t.Fatalf("connect %d: %s", i, out)
		}
		invoke("subscribe.json", fixtureConn, id)
		invoke("default.json", fixtureConn, id)
		if i%5 == 0 {
			// Each batch's messages are new ones: their reports are
			// kept in the store, never in the handler.
			invoke("sqs-batch.json", `\"id\":\"m-`, fmt.Sprintf(`\"id\":\"m-%d-`, i), `"messageId": "`, fmt.Sprintf(`"messageId": "%d-`, i))
		}
		invoke("disconnect.json", fixtureConn, id)
	}
	heap := func() uint64 {
		runtime.GC()
		runtime.GC()
		var m runtime.MemStats
		runtime.ReadMemStats(&m)
		return m.HeapAlloc
	}

	for i := range 50 {
		cycle(i)
	}
	baseGoroutines, baseHeap := runtime.NumGoroutine(), heap()
	const cycles = 200
	for i := 50; i < 50+cycles; i++ {
		cycle(i)
	}

	if pusher.Posts() == 0 {
		t.Fatal("no SQS batch posted to a connection: the fan-outs were not exercised")
	}
	if n := clients.Load(); n != 1 {
		t.Errorf("%d Management API clients made for one endpoint; want one, kept", n)
	}
	if left, err := s.FindTargets(t.Context(), []string{"Friendless"}, nil, eventTime); err != nil || len(left) != 0 {
		t.Errorf("connection records left after every $disconnect: %d (%v)", len(left), err)
	}
	if _, err := s.GetConnection(t.Context(), fmt.Sprintf("warm-%d=", cycles)); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("a connection's record is still there after its $disconnect: %v", err)
	}
	// Goroutines that end a batch (the heartbeat, the fan-out's workers)
	// may still be on their way out: wait for them, bounded.
	for deadline := time.Now().Add(10 * time.Second); runtime.NumGoroutine() > baseGoroutines; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			t.Fatalf("%d goroutines after %d more invocation cycles; %d before:\n%s", runtime.NumGoroutine(), cycles, baseGoroutines, buf[:runtime.Stack(buf, true)])
		}
	}
	// Over 840 invocations: a kilobyte kept for each would be 840 KB.
	if grown := int64(heap()) - int64(baseHeap); grown > 512<<10 {
		t.Errorf("the heap grew by %d bytes over %d invocation cycles; want it bounded", grown, cycles)
	}
}
