package listen

import (
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
