package listen

import (
	"net/http"
	"net/http/httptest"
	"os"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// openFDs counts this process's open file descriptors (-1 where /proc is
// not there to tell).
func openFDs() int {
	entries, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return -1
	}
	return len(entries)
}

// A `socks listen` left running for days renews its connection before
// every 2 h cap and reconnects after every drop. Compressed: a renewal
// every few milliseconds and a dropped connection now and then, against a
// real WebSocket server with the real client, for a few hundred
// connections. Each connection's messages arrive while the next opens, so
// the renewals' overlap is matched every time. Afterwards every
// connection is closed at the server, and the listener's goroutines and
// open files are back to what they were.
func TestAListenerKeepsNothingAcrossHundredsOfRenewalsAndDrops(t *testing.T) {
	const connections = 300
	baseGoroutines, baseFDs := runtime.NumGoroutine(), openFDs()

	var up websocket.Upgrader
	// running counts the server's handlers under way. Not a WaitGroup:
	// a handler starts when a dial reaches the server, concurrently with
	// the test's wait, and a WaitGroup's Add from zero must happen before
	// its Wait (the race detector reported it when the last handlers were
	// still closing as the test began to wait).
	var dials, open, running atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		running.Add(1)
		defer running.Add(-1)
		ws, err := up.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		n := dials.Add(1)
		open.Add(1)
		defer open.Add(-1)
		defer ws.Close()
		if n%10 == 0 {
			return // dropped: no close frame
		}
		for _, body := range []string{`{"n":1}`, `{"n":2}`} {
			if err := ws.WriteMessage(websocket.TextMessage, []byte(body)); err != nil {
				return
			}
		}
		for {
			if _, _, err := ws.ReadMessage(); err != nil {
				return
			}
		}
	}))

	r := start(t, newFakeDialer(), func(o *Options) {
		o.Dial, o.URL = dialWS, "ws"+strings.TrimPrefix(srv.URL, "http")
		o.MaxConnection, o.MaxRetries = 5*time.Millisecond, 0
	})
	deadline := time.Now().Add(2 * time.Minute)
	for dials.Load() < connections {
		select {
		case err := <-r.done:
			t.Fatalf("the listener ended after %d connections: %v\nstderr:\n%s", dials.Load(), err, r.errOut)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("only %d connections within 2 minutes", dials.Load())
		}
		time.Sleep(5 * time.Millisecond)
	}
	r.cancel()
	if err := r.end(); err != nil {
		t.Fatalf("listener: %v", err)
	}
	// Every connection the listener opened, it closed: the server's
	// handlers all end (each reads until its connection is closed).
	for deadline := time.Now().Add(wait); running.Load() > 0; time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%d of the server's handlers still run %s after the listener ended, %d connections open", running.Load(), wait, open.Load())
		}
	}
	if n := open.Load(); n != 0 {
		t.Errorf("%d connections still open at the server", n)
	}
	if got := r.count(map[string]any{"kind": "message"}); got < connections {
		t.Errorf("%d messages shown over %d connections; want at least one each", got, connections)
	}
	srv.Close()

	// The last goroutines (a closed connection's reader, the server's
	// own) end a moment after: wait for them, bounded.
	for deadline := time.Now().Add(wait); ; time.Sleep(5 * time.Millisecond) {
		g, fds := runtime.NumGoroutine(), openFDs()
		// The listener's typing goroutine and the test's stdin writer
		// end at the test's cleanup.
		if g <= baseGoroutines+2 && fds <= baseFDs {
			break
		}
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			t.Fatalf("after %d connections: %d goroutines (%d before), %d open files (%d before)\n%s",
				dials.Load(), g, baseGoroutines, fds, baseFDs, buf[:runtime.Stack(buf, true)])
		}
	}
}
