package broker_test

import (
	"context"
	"fmt"
	"runtime"
	"testing"
	"time"

	"github.com/socks-dev/socks/store/storetest"
)

// A broker (`socks broker`, or the one inside `socks serve`) runs for days:
// what it keeps must not grow with the messages it handles. Compressed:
// one Run handles a stream of messages, in bursts, to ten connections; once
// each burst is delivered, it holds no more goroutines than after the
// first, and its heap has not grown with the messages; the queue is empty.
func TestARunningBrokerKeepsNothingPerMessage(t *testing.T) {
	f := newFixture(t)
	pusher := &storetest.CountingPusher{}
	f.broker.Pusher = pusher
	for i := range 10 {
		f.connect(t, fmt.Sprintf("c%d", i), fmt.Sprintf("geek%d", i%3), "updates")
	}
	ctx, cancel := context.WithCancel(t.Context())
	ran := make(chan error, 1)
	go func() { ran <- f.broker.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-ran; err != nil {
			t.Errorf("Run: %v", err)
		}
	}()

	sent := 0
	burst := func(n int) {
		t.Helper()
		bodies := make([][]byte, n)
		for i := range bodies {
			data, err := envelope(nil, []string{"updates"}, fmt.Sprint(sent+i)).Marshal()
			if err != nil {
				t.Fatal(err)
			}
			bodies[i] = data
		}
		if _, err := f.db.Queue().SendBatch(t.Context(), bodies); err != nil {
			t.Fatal(err)
		}
		sent += n
		want := int64(sent * 10)
		for deadline := time.Now().Add(time.Minute); pusher.Posts() < want; time.Sleep(5 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("%d posts within a minute; want %d", pusher.Posts(), want)
			}
		}
		// The last message's delete follows its posts: wait for the queue
		// to be empty.
		for deadline := time.Now().Add(time.Minute); ; time.Sleep(5 * time.Millisecond) {
			st, err := f.db.Queue().Stats(t.Context())
			if err != nil {
				t.Fatal(err)
			}
			if st.Visible+st.InFlight == 0 && st.Dead == 0 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("the queue still holds %+v a minute after every post", st)
			}
		}
	}
	heap := func() uint64 {
		runtime.GC()
		runtime.GC()
		var m runtime.MemStats
		runtime.ReadMemStats(&m)
		return m.HeapAlloc
	}

	burst(100)
	// The broker waits in its long poll, its batch's goroutines ended.
	baseGoroutines, baseHeap := runtime.NumGoroutine(), heap()
	const bursts = 8
	for range bursts {
		burst(100)
	}
	for deadline := time.Now().Add(10 * time.Second); runtime.NumGoroutine() > baseGoroutines; time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			t.Fatalf("%d goroutines after %d more messages; %d before:\n%s", runtime.NumGoroutine(), bursts*100, baseGoroutines, buf[:runtime.Stack(buf, true)])
		}
	}
	// 800 messages and 8,000 posts: a kilobyte kept for each message
	// would be 800 KB.
	if grown := int64(heap()) - int64(baseHeap); grown > 400<<10 {
		t.Errorf("the heap grew by %d bytes over %d messages; want it bounded", grown, bursts*100)
	}
}
