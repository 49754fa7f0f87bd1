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
	"github.com/socks-dev/socks/pubsub"
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

// TestFaultsReachTheManagementAPI: an injected 500 carries the gateway's
// run ID too, as every Management API answer does: a broker beside it
// takes it for the gateway's failure (a retry), not for another program's
// answer.
func TestFaultsReachTheManagementAPI(t *testing.T) {
	h := newFakeHandler()
	g, addr := start(t, h, Options{Faults: injector(t, "post500=1")})
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
	if got := resp.Header.Get(pubsub.GatewayIDHeader); got != g.ID() {
		t.Errorf("the injected 500 carries %s %q; want %q", pubsub.GatewayIDHeader, got, g.ID())
	}
}

// TestASlowPostStillHasItsTimeForItsBodyAndAnswer: a slow fault holds a
// post before it is handled, as an API Gateway slow to start would; the
// call's body and answer then have their usual time. The gateway's bounds
// on a request (bodyWait for the body, responseWait for the answer) ran
// from its headers, so a delay longer than bodyWait failed a body the
// client had long sent with 400 "could not read the request body" (the
// socket's read deadline had passed), and one longer than responseWait
// lost the answer.
func TestASlowPostStillHasItsTimeForItsBodyAndAnswer(t *testing.T) {
	h := newFakeHandler()
	_, addr := start(t, h, Options{
		Faults:       injector(t, "slow=1:600ms"),
		bodyWait:     200 * time.Millisecond,
		responseWait: 200 * time.Millisecond,
	})
	ws, id := connect(t, h, addr)
	// More than net/http's 4 KB buffer takes in with the headers: the
	// rest is read from the socket after the delay.
	body := strings.Repeat("x", 64<<10)
	req, _ := http.NewRequest(http.MethodPost, "http://"+addr+"/@connections/"+url.PathEscape(id), strings.NewReader(body))
	req.Header.Set("Authorization", "AWS4-HMAC-SHA256 test")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("a slow post got no answer: %v", err)
	}
	msg, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("a slow post answered %s %q; want 200", resp.Status, msg)
	}
	if got := readMessage(t, ws); string(got) != body {
		t.Fatalf("client read %d bytes; want the %d posted", len(got), len(body))
	}
}
