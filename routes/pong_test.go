package routes_test

import (
	"context"
	"testing"
	"time"
)

// TestAPongIsTimedInUTCToTheMillisecond: the pong's time is RFC 3339 in
// UTC to the millisecond (docs/protocol.md, "Client frames"), as every
// time socks shows, whatever the zone and precision of the clock.
func TestAPongIsTimedInUTCToTheMillisecond(t *testing.T) {
	h, _, _ := newHandler(t)
	zone := time.FixedZone("UTC+5:30", 5*3600+1800)
	h.Now = func() time.Time { return time.Date(2026, 11, 22, 17, 30, 0, 123456789, zone) }
	resp, err := h.Handle(context.Background(), messageEvent("c1", "ping", `{"action":"ping"}`))
	if err != nil {
		t.Fatal(err)
	}
	if want := `{"type":"pong","time":"2026-11-22T12:00:00.123Z"}`; resp.Body != want {
		t.Errorf("pong %s; want %s", resp.Body, want)
	}
}
