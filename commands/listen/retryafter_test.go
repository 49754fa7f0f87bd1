package listen

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// TestAGatewayThatSaysRetryAfterIsWaitedForThatLong: a gateway shutting
// down answers 503 with Retry-After: 5, one at its connection cap 429; the
// reconnect after either waits at least that long (at most
// maxRetryAfter), not the shorter backoff, and says so.
func TestAGatewayThatSaysRetryAfterIsWaitedForThatLong(t *testing.T) {
	var mu sync.Mutex
	upgrades := 0
	answers := []struct {
		status     int
		retryAfter string
	}{
		{http.StatusServiceUnavailable, "5"},
		{http.StatusTooManyRequests, "3600"},
		{http.StatusServiceUnavailable, "soon"}, // not a number: the backoff
	}
	up := websocket.Upgrader{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		n := upgrades
		upgrades++
		mu.Unlock()
		if n >= 1 && n <= len(answers) {
			a := answers[n-1]
			w.Header().Set("Retry-After", a.retryAfter)
			http.Error(w, "the gateway is shutting down", a.status)
			return
		}
		c, err := up.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		if n == 0 {
			// The gateway goes away: the listener reconnects.
			_ = c.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseGoingAway, "shutting down"), time.Now().Add(time.Second))
		}
		// Hold the connection until the client goes.
		for {
			if _, _, err := c.ReadMessage(); err != nil {
				c.Close()
				return
			}
		}
	}))
	t.Cleanup(srv.Close)

	var waits []time.Duration
	waited := make(chan time.Duration, 16)
	r := start(t, newFakeDialer(), func(o *Options) {
		o.Dial = nil // the real client, against the fake gateway
		o.URL = "ws://" + strings.TrimPrefix(srv.URL, "http://") + "/"
		o.after = func(d time.Duration) <-chan time.Time {
			waited <- d
			ch := make(chan time.Time, 1)
			ch <- time.Time{}
			return ch
		}
	})
	for len(waits) < 4 {
		select {
		case d := <-waited:
			waits = append(waits, d)
		case <-time.After(wait):
			t.Fatalf("the listener waited %v and then no more within %s\nstdout:\n%s\nstderr:\n%s", waits, wait, r.out, r.errOut)
		}
	}
	want := []struct {
		what     string
		min, max time.Duration
	}{
		{"after the drop: the backoff", time.Millisecond / 2, 2 * time.Millisecond},
		{"after 503 with Retry-After: 5", 5 * time.Second, 5 * time.Second},
		{"after 429 with Retry-After: 3600, capped", maxRetryAfter, maxRetryAfter},
		{"after 503 with a Retry-After that is no number: the backoff", time.Millisecond / 2, 2 * time.Millisecond},
	}
	for i, w := range want {
		if waits[i] < w.min || waits[i] > w.max {
			t.Errorf("%s: waited %s; want %s to %s", w.what, waits[i], w.min, w.max)
		}
	}
	// What the listener says matches what it waits.
	var said []float64
	for _, l := range r.lines() {
		if l["state"] == StateReconnecting {
			said = append(said, l["retryInMs"].(float64))
		}
	}
	if len(said) < 3 || said[1] != 5000 || said[2] != float64(maxRetryAfter.Milliseconds()) {
		t.Errorf("reconnecting lines say retry in %v ms; want 5000 then %d second and third", said, maxRetryAfter.Milliseconds())
	}
}

// TestAReconnectRefusedWithALongPageSaysItBriefly: a reconnect refused
// with a 5xx whose body is a web page (a load balancer's error page). The
// first connection's refusal shows the start of the body (maxReason); a
// reconnect's poured all the kilobyte read of it into each reconnecting
// line and into the error listen gave up with.
func TestAReconnectRefusedWithALongPageSaysItBriefly(t *testing.T) {
	page := "<!DOCTYPE html><title>502 Bad Gateway</title>" + strings.Repeat("<p>filler</p>", 200)
	var mu sync.Mutex
	upgrades := 0
	up := websocket.Upgrader{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		n := upgrades
		upgrades++
		mu.Unlock()
		if n > 0 {
			http.Error(w, page, http.StatusBadGateway)
			return
		}
		c, err := up.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		defer c.Close()
		_ = c.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseGoingAway, "bye"), time.Now().Add(time.Second))
		for {
			if _, _, err := c.ReadMessage(); err != nil {
				return
			}
		}
	}))
	t.Cleanup(srv.Close)
	r := start(t, newFakeDialer(), func(o *Options) {
		o.Dial = nil
		o.URL = "ws://" + strings.TrimPrefix(srv.URL, "http://") + "/"
		o.MaxRetries = 2
		o.after = func(time.Duration) <-chan time.Time {
			ch := make(chan time.Time, 1)
			ch <- time.Time{}
			return ch
		}
	})
	err := r.end()
	if err == nil || len(err.Error()) > 2*maxReason {
		t.Errorf("err %q (%d bytes); want the refusal with the start of the page", err, len(err.Error()))
	}
	for _, l := range r.lines() {
		if e, _ := l["error"].(string); l["state"] == StateReconnecting && len(e) > 2*maxReason {
			t.Errorf("a reconnecting line says %q (%d bytes); want the start of the page", e, len(e))
		}
	}
}
