package gateway

import (
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/socks-dev/socks/faults"
)

func injector(t *testing.T, spec string) *faults.Injector {
	t.Helper()
	s, err := faults.Parse(spec)
	if err != nil {
		t.Fatal(err)
	}
	in := faults.New(s)
	frozen := time.Unix(1000, 0)
	in.SetClock(func() time.Time { return frozen })
	return in
}

func TestFaultsLimitTheConnectRateWith429(t *testing.T) {
	h := newFakeHandler()
	_, addr := start(t, h, Options{Faults: injector(t, "connect-rate=2/s")})
	connect(t, h, addr)
	connect(t, h, addr)
	// The clock stands still: the third connect in the same second is
	// over the rate.
	_, resp, err := dialWith(t, websocket.DefaultDialer, addr, "/", url.Values{}, nil)
	if err == nil || resp == nil || resp.StatusCode != http.StatusTooManyRequests {
		t.Fatalf("third connect: %v, %v; want 429", err, resp)
	}
	body, _ := io.ReadAll(resp.Body)
	if !strings.Contains(string(body), "connect rate") {
		t.Errorf("429 body %q does not say why", body)
	}
	if n := len(h.find(func(ev event) bool { return ev.RequestContext.RouteKey == "$connect" })); n != 2 {
		t.Errorf("%d $connect events; the refused connect must not reach the handler", n)
	}
}

func TestFaultsCanLoseDisconnectEvents(t *testing.T) {
	h := newFakeHandler()
	in := injector(t, "drop-disconnect=1")
	_, addr := start(t, h, Options{Faults: in})
	ws, id := connect(t, h, addr)
	ws.Close()
	deadline := time.Now().Add(wait)
	for in.Counts()[faults.DropDisconnect] == 0 {
		if time.Now().After(deadline) {
			t.Fatal("the $disconnect was never drawn")
		}
		time.Sleep(5 * time.Millisecond)
	}
	if evs := h.find(func(ev event) bool { return ev.RequestContext.RouteKey == "$disconnect" }); len(evs) != 0 {
		t.Fatalf("%d $disconnect events; want the one lost", len(evs))
	}
	// This connection was meant to get no $disconnect.
	h.mu.Lock()
	delete(h.accepted, id)
	h.mu.Unlock()
}

func TestFaultsReachTheManagementAPI(t *testing.T) {
	h := newFakeHandler()
	_, addr := start(t, h, Options{Faults: injector(t, "post500=1")})
	_, id := connect(t, h, addr)
	req, _ := http.NewRequest(http.MethodPost, "http://"+addr+"/@connections/"+url.PathEscape(id), strings.NewReader(`"x"`))
	req.Header.Set("Authorization", "AWS4-HMAC-SHA256 test")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 500 || resp.Header.Get("X-Amzn-Errortype") != "InternalServerErrorException" {
		t.Fatalf("POST answered %s %q; want an injected 500", resp.Status, resp.Header.Get("X-Amzn-Errortype"))
	}
}
