package e2e

import (
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// inbox collects the text frames a client receives.
type inbox struct {
	mu   sync.Mutex
	got  []string
	more chan struct{}
}

func collect(conn *websocket.Conn) *inbox {
	in := &inbox{more: make(chan struct{}, 1)}
	go func() {
		for {
			_, data, err := conn.ReadMessage()
			if err != nil {
				return
			}
			in.mu.Lock()
			in.got = append(in.got, string(data))
			in.mu.Unlock()
			select {
			case in.more <- struct{}{}:
			default:
			}
		}
	}()
	return in
}

// await waits (bounded by d) until the client has received body.
func (in *inbox) await(t *testing.T, body string, d time.Duration) {
	t.Helper()
	timer := time.NewTimer(d)
	defer timer.Stop()
	for {
		in.mu.Lock()
		got := slices.Contains(in.got, body)
		all := slices.Clone(in.got)
		in.mu.Unlock()
		if got {
			return
		}
		select {
		case <-in.more:
		case <-timer.C:
			t.Fatalf("the client did not receive %s within %s; it got %q", body, d, all)
		}
	}
}
