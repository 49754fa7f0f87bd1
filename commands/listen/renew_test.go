package listen

import (
	"maps"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// TestRenewShowsEveryFrameTheOldConnectionStillHeld uses the real wsclient:
// a burst that arrives on the old connection while the new one opens fills
// the client's frame queue, and its reader must hand every frame over
// before it can read the server's answer to the close frame.
func TestRenewShowsEveryFrameTheOldConnectionStillHeld(t *testing.T) {
	const burst = 150
	first := make(chan *websocket.Conn, 1)
	var up websocket.Upgrader
	var dials atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := dials.Add(1)
		if n == 2 {
			// The renewal is dialling: the old connection sends a burst
			// before the new one answers.
			old := <-first
			for i := range burst {
				if err := old.WriteMessage(websocket.TextMessage, []byte(`{"n":`+strconv.Itoa(i)+`}`)); err != nil {
					t.Errorf("burst: %v", err)
					return
				}
			}
		}
		ws, err := up.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		defer ws.Close()
		if n == 1 {
			first <- ws
		}
		for {
			if _, _, err := ws.ReadMessage(); err != nil {
				return
			}
		}
	}))
	defer srv.Close()

	r := start(t, newFakeDialer(), func(o *Options) {
		o.Dial, o.URL = dialWS, "ws"+strings.TrimPrefix(srv.URL, "http")
		o.MaxConnection, o.Count = 50*time.Millisecond, burst
	})
	if err := r.end(); err != nil {
		t.Fatalf("err %v; want exit 0 after %d messages", err, burst)
	}
	if got := r.count(map[string]any{"kind": "message"}); got != burst {
		t.Errorf("%d messages shown; want all %d", got, burst)
	}
}

// TestAMessageBothConnectionsOfARenewalCarryIsShownOnce: a message
// published after the renewal's new connection opened, and before the old
// one closed, reaches both; it is shown once. A body that reached the old
// connection before the new one opened is not matched, so a later message
// with the same body on the new one is shown too.
func TestAMessageBothConnectionsOfARenewalCarryIsShownOnce(t *testing.T) {
	d := newFakeDialer()
	d.hook = func(n int, made []*fakeConn) {
		if n != 1 {
			return
		}
		// The renewal is dialling: what the old connection holds when it
		// is drained, and what the new one receives meanwhile.
		old, next := made[0], made[1]
		old.pushAt(t, `{"n":1}`, time.Now().Add(-time.Minute)) // before the new one opened
		old.pushAt(t, `{"n":2}`, time.Now().Add(time.Minute))  // after: the new one has it too
		old.pushAt(t, `{"n":2}`, time.Now().Add(time.Minute))  // published twice, both reached both
		next.push(t, `{"n":2}`)
		next.push(t, `{"n":2}`)
		next.push(t, `{"n":1}`) // published again, after the first reached only the old one
		next.push(t, `{"n":3}`)
	}
	r := start(t, d, func(o *Options) { o.MaxConnection = 50 * time.Millisecond; o.Count = 5 })
	d.next(t)
	d.next(t)
	if err := r.end(); err != nil {
		t.Fatalf("err %v; want exit 0 after 5 messages", err)
	}
	got := map[float64]int{}
	for _, l := range r.lines() {
		if l["kind"] == "message" {
			got[l["body"].(map[string]any)["n"].(float64)]++
		}
	}
	if want := map[float64]int{1: 2, 2: 2, 3: 1}; !maps.Equal(got, want) {
		t.Errorf("shown %v times (by n); want %v", got, want)
	}
}

// TestAnExitWhileMessagesPourInDoesNotWaitOutTheCloseGrace: listen exits
// (--count reached, quit, Ctrl-C) with the connection's frame queue full,
// as on a busy topic. Its reader waited to hand over the next frame, which
// nobody took, so it never read the gateway's answer to the close frame:
// every such exit waited out the whole close grace (2 s; an hour here, so
// that the test cannot pass by waiting).
func TestAnExitWhileMessagesPourInDoesNotWaitOutTheCloseGrace(t *testing.T) {
	var up websocket.Upgrader
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ws, err := up.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		defer ws.Close()
		go func() {
			// Answers the client's close frame, then ends.
			for {
				if _, _, err := ws.ReadMessage(); err != nil {
					return
				}
			}
		}()
		for i := 0; ; i++ {
			if ws.WriteMessage(websocket.TextMessage, []byte(`{"n":`+strconv.Itoa(i)+`}`)) != nil {
				return
			}
		}
	}))
	defer srv.Close()
	r := start(t, newFakeDialer(), func(o *Options) {
		o.Dial, o.URL = dialWS, "ws"+strings.TrimPrefix(srv.URL, "http")
		o.Count, o.closeGrace = 1, time.Hour
	})
	if err := r.end(); err != nil {
		t.Fatalf("err %v; want exit 0 after a message", err)
	}
}
