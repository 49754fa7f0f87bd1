package routes_test

import (
	"context"
	"testing"
	"time"
)

// TestAPongIsTimedInUTCToTheMillisecond: the pong's time is RFC 3339 in
// UTC to the millisecond (docs/protocol.md, "Client frames"), as every
// time socks shows, whatever the zone and precision of the clock, with
// its three digits always, as `listen --json` writes times: one width,
// so that pongs sort as text. Before, a time on a whole second or a
// tenth had its trailing zeros left out ("12:00:00Z", "12:00:00.5Z").
func TestAPongIsTimedInUTCToTheMillisecond(t *testing.T) {
	zone := time.FixedZone("UTC+5:30", 5*3600+1800)
	for nanos, want := range map[int]string{
		123456789: "2026-11-22T12:00:00.123Z",
		500000000: "2026-11-22T12:00:00.500Z",
		0:         "2026-11-22T12:00:00.000Z",
		999999:    "2026-11-22T12:00:00.000Z",
	} {
		h, _, _ := newHandler(t)
		h.Now = func() time.Time { return time.Date(2026, 11, 22, 17, 30, 0, nanos, zone) }
		resp, err := h.Handle(context.Background(), messageEvent("c1", "ping", `{"action":"ping"}`))
		if err != nil {
			t.Fatal(err)
		}
		if want := `{"type":"pong","time":"` + want + `"}`; resp.Body != want {
			t.Errorf("pong at %d ns %s; want %s", nanos, resp.Body, want)
		}
	}
}
