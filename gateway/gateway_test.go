package gateway

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/apigatewaymanagementapi"
	"github.com/aws/aws-sdk-go-v2/service/apigatewaymanagementapi/types"
	"github.com/gorilla/websocket"

	"github.com/socks-dev/socks/awsops"
	"github.com/socks-dev/socks/pubsub"
	"github.com/socks-dev/socks/store"
	"github.com/socks-dev/socks/store/storetest"
)

// wait bounds every wait in these tests.
const wait = 5 * time.Second

type event = events.APIGatewayWebsocketProxyRequest
type response = events.APIGatewayProxyResponse

// fakeHandler records every event. By default it accepts every $connect
// and answers messages with nothing.
type fakeHandler struct {
	connect func(event) (response, error)
	message func(event) (response, error)
	// disconnect, when set, is the error of each $disconnect.
	disconnect func(event) error

	mu       sync.Mutex
	events   []event
	accepted map[string]bool   // connection IDs whose $connect was accepted
	tags     map[string]string // ?tag= → connection ID
}

func newFakeHandler() *fakeHandler {
	return &fakeHandler{accepted: map[string]bool{}, tags: map[string]string{}}
}

func (h *fakeHandler) Handle(ctx context.Context, req event) (response, error) {
	h.mu.Lock()
	h.events = append(h.events, req)
	h.mu.Unlock()
	switch req.RequestContext.EventType {
	case "CONNECT":
		resp, err := response{StatusCode: 200}, error(nil)
		if h.connect != nil {
			resp, err = h.connect(req)
		}
		if err == nil && resp.StatusCode/100 == 2 {
			h.mu.Lock()
			h.accepted[req.RequestContext.ConnectionID] = true
			if tag := req.QueryStringParameters["tag"]; tag != "" {
				h.tags[tag] = req.RequestContext.ConnectionID
			}
			h.mu.Unlock()
		}
		return resp, err
	case "MESSAGE":
		if h.message != nil {
			return h.message(req)
		}
	case "DISCONNECT":
		if h.disconnect != nil {
			if err := h.disconnect(req); err != nil {
				return response{}, err
			}
		}
	}
	return response{StatusCode: 200}, nil
}

// find returns the events matching keep.
func (h *fakeHandler) find(keep func(event) bool) []event {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []event
	for _, ev := range h.events {
		if keep(ev) {
			out = append(out, ev)
		}
	}
	return out
}

// waitFor waits for the first event matching keep.
func (h *fakeHandler) waitFor(t *testing.T, what string, keep func(event) bool) event {
	t.Helper()
	deadline := time.Now().Add(wait)
	for {
		if evs := h.find(keep); len(evs) > 0 {
			return evs[0]
		}
		if time.Now().After(deadline) {
			t.Fatalf("no %s within %v", what, wait)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// waitDisconnect waits for the $disconnect of id.
func (h *fakeHandler) waitDisconnect(t *testing.T, id string) event {
	t.Helper()
	return h.waitFor(t, "$disconnect of "+id, func(ev event) bool {
		return ev.RequestContext.RouteKey == "$disconnect" && ev.RequestContext.ConnectionID == id
	})
}

// checkDisconnectedOnce fails unless every accepted connection got exactly
// one $disconnect and no refused one got any.
func (h *fakeHandler) checkDisconnectedOnce(t *testing.T) {
	t.Helper()
	counts := map[string]int{}
	for _, ev := range h.find(func(ev event) bool { return ev.RequestContext.RouteKey == "$disconnect" }) {
		counts[ev.RequestContext.ConnectionID]++
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	for id := range h.accepted {
		if counts[id] != 1 {
			t.Errorf("connection %s: %d $disconnect calls, want exactly 1", id, counts[id])
		}
	}
	for id, n := range counts {
		if !h.accepted[id] {
			t.Errorf("connection %s was never accepted but got %d $disconnect calls", id, n)
		}
	}
}

// idOf returns the connection ID of the client dialed with ?tag=tag.
func (h *fakeHandler) idOf(tag string) string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.tags[tag]
}

// start runs a gateway on a loopback port until the test ends, then shuts it
// down and checks that Serve returned nil and every connection got one
// $disconnect.
func start(t *testing.T, h *fakeHandler, opts Options) (*Gateway, string) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return startOn(t, h, opts, ln)
}

func startOn(t *testing.T, h *fakeHandler, opts Options, ln net.Listener) (*Gateway, string) {
	t.Helper()
	opts.Handler = h
	g, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- g.Serve(ln) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), wait)
		defer cancel()
		if err := g.Shutdown(ctx); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
		select {
		case err := <-served:
			if err != nil {
				t.Errorf("Serve returned %v after Shutdown, want nil", err)
			}
		case <-time.After(wait):
			t.Errorf("Serve did not return after Shutdown")
		}
		h.checkDisconnectedOnce(t)
	})
	return g, ln.Addr().String()
}

var tagCounter atomic.Int64

// dial connects a client at path with query; the client is closed when the
// test ends.
func dial(t *testing.T, addr, path string, query url.Values, header http.Header) (*websocket.Conn, *http.Response, error) {
	t.Helper()
	return dialWith(t, websocket.DefaultDialer, addr, path, query, header)
}

func dialWith(t *testing.T, d *websocket.Dialer, addr, path string, query url.Values, header http.Header) (*websocket.Conn, *http.Response, error) {
	t.Helper()
	u := url.URL{Scheme: "ws", Host: addr, Path: path, RawQuery: query.Encode()}
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	ws, resp, err := d.DialContext(ctx, u.String(), header)
	if err == nil {
		t.Cleanup(func() { ws.Close() })
	}
	return ws, resp, err
}

// connect dials a client that the handler accepts and returns it with its
// connection ID.
func connect(t *testing.T, h *fakeHandler, addr string) (*websocket.Conn, string) {
	t.Helper()
	return connectWith(t, h, websocket.DefaultDialer, addr, "/")
}

func connectWith(t *testing.T, h *fakeHandler, d *websocket.Dialer, addr, path string) (*websocket.Conn, string) {
	t.Helper()
	tag := strconv.FormatInt(tagCounter.Add(1), 10)
	ws, resp, err := dialWith(t, d, addr, path, url.Values{"tag": {tag}}, nil)
	if err != nil {
		t.Fatalf("dial: %v (response %v)", err, resp)
	}
	id := h.idOf(tag)
	if id == "" {
		t.Fatal("connected without a $connect")
	}
	return ws, id
}

// readMessage returns the client's next message.
func readMessage(t *testing.T, ws *websocket.Conn) []byte {
	t.Helper()
	_ = ws.SetReadDeadline(time.Now().Add(wait))
	_, data, err := ws.ReadMessage()
	if err != nil {
		t.Fatalf("reading: %v", err)
	}
	return data
}

// readClose reads until the server closes the connection and returns the
// close frame's code and text.
func readClose(t *testing.T, ws *websocket.Conn) (int, string) {
	t.Helper()
	_ = ws.SetReadDeadline(time.Now().Add(wait))
	for {
		if _, _, err := ws.ReadMessage(); err != nil {
			var ce *websocket.CloseError
			if !errors.As(err, &ce) {
				t.Fatalf("read error %v, want a close frame", err)
			}
			return ce.Code, ce.Text
		}
	}
}

// wantClose checks the close frame a client receives and the $disconnect
// status the handler gets.
func wantClose(t *testing.T, h *fakeHandler, ws *websocket.Conn, id string, code int, reason string) {
	t.Helper()
	gotCode, gotReason := readClose(t, ws)
	if gotCode != code || gotReason != reason {
		t.Errorf("close frame %d %q, want %d %q", gotCode, gotReason, code, reason)
	}
	ev := h.waitDisconnect(t, id)
	rc := ev.RequestContext
	if rc.DisconnectStatusCode != int64(code) || rc.DisconnectReason == nil || *rc.DisconnectReason != reason {
		t.Errorf("$disconnect status %d %v, want %d %q", rc.DisconnectStatusCode, rc.DisconnectReason, code, reason)
	}
	if rc.EventType != "DISCONNECT" {
		t.Errorf("$disconnect event type %q", rc.EventType)
	}
}

// sdkClient returns the AWS SDK's Management API client for g.
func sdkClient(g *Gateway, addr string) *apigatewaymanagementapi.Client {
	return awsops.NewManagementClient(awsops.LocalConfig(), g.ManagementEndpoint(addr), 4)
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	t.Cleanup(cancel)
	return ctx
}

func TestNewRejectsBadOptions(t *testing.T) {
	h := newFakeHandler()
	for name, opts := range map[string]Options{
		"no handler":             {},
		"a stage with a slash":   {Handler: h, Stage: "a/b"},
		"an action route with $": {Handler: h, Routes: []string{"$default"}},
		"an empty action route":  {Handler: h, Routes: []string{""}},
	} {
		if _, err := New(opts); err == nil {
			t.Errorf("New with %s: no error", name)
		}
	}
}

func TestConnectEventDescribesTheUpgradeRequest(t *testing.T) {
	h := newFakeHandler()
	fixed := time.Date(2026, 3, 4, 5, 6, 7, 890_000_000, time.UTC)
	_, addr := start(t, h, Options{Stage: "dev", Now: func() time.Time { return fixed }})

	header := http.Header{"User-Agent": {"socks-test/1"}, "X-Custom": {"one", "two"}}
	_, _, err := dial(t, addr, "/dev", url.Values{"geek": {"Friendless"}, "topic": {"a", "b"}}, header)
	if err != nil {
		t.Fatal(err)
	}
	ev := h.waitFor(t, "$connect", func(ev event) bool { return ev.RequestContext.RouteKey == "$connect" })
	rc := ev.RequestContext
	if rc.EventType != "CONNECT" || rc.MessageDirection != "IN" || rc.APIID != "local" || rc.Stage != "dev" {
		t.Errorf("request context %+v", rc)
	}
	if id, err := base64.URLEncoding.DecodeString(rc.ConnectionID); len(rc.ConnectionID) != 16 || err != nil || len(id) != 11 {
		t.Errorf("connection ID %q is not 16 characters of base64 of 11 bytes", rc.ConnectionID)
	}
	if rc.ConnectedAt != fixed.UnixMilli() || rc.RequestTimeEpoch != fixed.UnixMilli() {
		t.Errorf("connectedAt %d, requestTimeEpoch %d, want %d", rc.ConnectedAt, rc.RequestTimeEpoch, fixed.UnixMilli())
	}
	if rc.RequestID == "" || rc.DomainName != addr {
		t.Errorf("requestId %q, domainName %q (want %q)", rc.RequestID, rc.DomainName, addr)
	}
	if rc.Identity.SourceIP != "127.0.0.1" || rc.Identity.UserAgent != "socks-test/1" {
		t.Errorf("identity %+v", rc.Identity)
	}
	if ev.QueryStringParameters["geek"] != "Friendless" || ev.QueryStringParameters["topic"] != "b" {
		t.Errorf("query %v", ev.QueryStringParameters)
	}
	if got := ev.MultiValueQueryStringParameters["topic"]; len(got) != 2 || got[0] != "a" || got[1] != "b" {
		t.Errorf("multi-value query %v", ev.MultiValueQueryStringParameters)
	}
	if ev.Headers["X-Custom"] != "two" || len(ev.MultiValueHeaders["X-Custom"]) != 2 || ev.Headers["Host"] != addr {
		t.Errorf("headers %v / %v", ev.Headers, ev.MultiValueHeaders)
	}
}

func TestRefusedConnectGetsTheStatusAndBodyWithoutUpgrade(t *testing.T) {
	for _, tc := range []struct {
		name       string
		connect    func(event) (response, error)
		wantStatus int
		wantBody   string
	}{
		{
			name: "a 401 response",
			connect: func(event) (response, error) {
				return response{StatusCode: 401, Body: `{"message":"bad chatter id"}`}, nil
			},
			wantStatus: 401, wantBody: `{"message":"bad chatter id"}`,
		},
		{
			name: "a 403 response",
			connect: func(event) (response, error) {
				return response{StatusCode: 403, Body: "no"}, nil
			},
			wantStatus: 403, wantBody: "no",
		},
		{
			name:       "a handler error",
			connect:    func(event) (response, error) { return response{}, errors.New("boom") },
			wantStatus: 500, wantBody: `{"message":"Internal server error"}`,
		},
		// A 1xx is no final answer (RFC 9110 §15.2): net/http sent it as
		// an interim one, then 200 with the body (101: a switch that
		// never came).
		{
			name: "a 100 response is a 500",
			connect: func(event) (response, error) {
				return response{StatusCode: 100, Body: "continue?"}, nil
			},
			wantStatus: 500, wantBody: "continue?",
		},
		{
			name: "a 101 response is a 500",
			connect: func(event) (response, error) {
				return response{StatusCode: 101, Body: "switch?"}, nil
			},
			wantStatus: 500, wantBody: "switch?",
		},
		{
			name: "a 199 response is a 500",
			connect: func(event) (response, error) {
				return response{StatusCode: 199}, nil
			},
			wantStatus: 500, wantBody: "",
		},
		{
			name: "a status of no three digits is a 500",
			connect: func(event) (response, error) {
				return response{StatusCode: 1000, Body: "x"}, nil
			},
			wantStatus: 500, wantBody: "x",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newFakeHandler()
			h.connect = tc.connect
			g, addr := start(t, h, Options{})
			_, resp, err := dial(t, addr, "/", nil, nil)
			if !errors.Is(err, websocket.ErrBadHandshake) || resp == nil {
				t.Fatalf("dial: %v, want a refused handshake", err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tc.wantStatus || string(body) != tc.wantBody {
				t.Errorf("got %d %q, want %d %q", resp.StatusCode, body, tc.wantStatus, tc.wantBody)
			}
			if g.Count() != 0 {
				t.Errorf("Count = %d after a refused connect", g.Count())
			}
		})
	}
}

func TestSubprotocolIsHonouredOnlyWhenTheHandlerEchoesIt(t *testing.T) {
	for _, tc := range []struct {
		name, echo, want string
	}{
		{"an echoed protocol is selected", "b", "b"},
		{"no echo selects none", "", ""},
		{"an echo the client did not offer is ignored", "z", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newFakeHandler()
			h.connect = func(event) (response, error) {
				resp := response{StatusCode: 200}
				if tc.echo != "" {
					resp.Headers = map[string]string{"sec-websocket-protocol": tc.echo}
				}
				return resp, nil
			}
			_, addr := start(t, h, Options{})
			d := *websocket.DefaultDialer
			d.Subprotocols = []string{"a", "b"}
			ws, _, err := dialWith(t, &d, addr, "/", nil, nil)
			if err != nil {
				t.Fatal(err)
			}
			if ws.Subprotocol() != tc.want {
				t.Errorf("subprotocol %q, want %q", ws.Subprotocol(), tc.want)
			}
		})
	}
}

func TestMessagesAreRoutedByAction(t *testing.T) {
	h := newFakeHandler()
	h.message = func(ev event) (response, error) {
		return response{StatusCode: 200, Body: "route " + ev.RequestContext.RouteKey}, nil
	}
	_, addr := start(t, h, Options{Routes: []string{"subscribe", "unsubscribe", "ping"}})
	ws, id := connect(t, h, addr)

	for _, tc := range []struct{ body, route string }{
		{`{"action":"subscribe","topics":["a"]}`, "subscribe"},
		{`{"action":"unsubscribe","topics":["a"]}`, "unsubscribe"},
		{`{"action":"ping"}`, "ping"},
		{`{"action":"broadcast"}`, "$default"},
		{`{"action":5}`, "$default"},
		{`{"topics":["a"]}`, "$default"},
		{`not json`, "$default"},
		{`["action","ping"]`, "$default"},
	} {
		if err := ws.WriteMessage(websocket.TextMessage, []byte(tc.body)); err != nil {
			t.Fatal(err)
		}
		if got := string(readMessage(t, ws)); got != "route "+tc.route {
			t.Errorf("%s: reply %q, want route %s", tc.body, got, tc.route)
		}
		ev := h.waitFor(t, "message "+tc.body, func(ev event) bool {
			return ev.RequestContext.EventType == "MESSAGE" && ev.Body == tc.body
		})
		rc := ev.RequestContext
		if rc.RouteKey != tc.route || rc.ConnectionID != id || rc.MessageID == nil || rc.MessageID == "" || rc.MessageDirection != "IN" {
			t.Errorf("%s: request context %+v", tc.body, rc)
		}
	}
}

func TestAHandlerErrorOnAMessageSendsInternalServerError(t *testing.T) {
	h := newFakeHandler()
	h.message = func(event) (response, error) { return response{}, errors.New("boom") }
	_, addr := start(t, h, Options{})
	ws, id := connect(t, h, addr)
	if err := ws.WriteMessage(websocket.TextMessage, []byte("hi")); err != nil {
		t.Fatal(err)
	}
	got := string(readMessage(t, ws))
	if !strings.Contains(got, `"message":"Internal server error"`) || !strings.Contains(got, id) {
		t.Errorf("reply %s", got)
	}
}

func TestClientEndingsCallDisconnectOnce(t *testing.T) {
	h := newFakeHandler()
	g, addr := start(t, h, Options{})

	t.Run("a client close frame passes its code and reason", func(t *testing.T) {
		ws, id := connect(t, h, addr)
		msg := websocket.FormatCloseMessage(4000, "bye")
		if err := ws.WriteControl(websocket.CloseMessage, msg, time.Now().Add(wait)); err != nil {
			t.Fatal(err)
		}
		rc := h.waitDisconnect(t, id).RequestContext
		if rc.DisconnectStatusCode != 4000 || *rc.DisconnectReason != "bye" {
			t.Errorf("$disconnect %d %q", rc.DisconnectStatusCode, *rc.DisconnectReason)
		}
	})
	t.Run("a post between the answer to a client's close frame and the reader's end leaves the client's code", func(t *testing.T) {
		ws, id := connect(t, h, addr)
		// The reader answers a client's close frame before it hands the
		// frame on: a post can come in between. The answer is written
		// here, as the reader does, and the post comes after it.
		c := g.lookup(context.Background(), id)
		if err := c.ws.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(4000, ""), time.Now().Add(wait)); err != nil {
			t.Fatal(err)
		}
		if err := g.Pusher().Post(ctxT(t), id, []byte("late")); !store.IsGone(err) {
			t.Fatalf("a post after the close frame: %v; want gone", err)
		}
		if err := ws.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(4000, "bye"), time.Now().Add(wait)); err != nil {
			t.Fatal(err)
		}
		rc := h.waitDisconnect(t, id).RequestContext
		if rc.DisconnectStatusCode != 4000 || *rc.DisconnectReason != "bye" {
			t.Errorf("$disconnect %d %q; want the client's 4000 bye", rc.DisconnectStatusCode, *rc.DisconnectReason)
		}
	})
	t.Run("a dropped TCP connection is 1006", func(t *testing.T) {
		ws, id := connect(t, h, addr)
		ws.UnderlyingConn().Close()
		rc := h.waitDisconnect(t, id).RequestContext
		if rc.DisconnectStatusCode != 1006 {
			t.Errorf("$disconnect %d %q", rc.DisconnectStatusCode, *rc.DisconnectReason)
		}
	})
	deadline := time.Now().Add(wait)
	for g.Count() != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("Count = %d after every client left", g.Count())
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestIdleConnectionIsClosedWithGoingAway(t *testing.T) {
	// The idle clock is the test's: elapsed is the time since the
	// connection started, and each send on tick is one firing of the
	// connection's idle timer.
	var elapsed atomic.Int64
	advance := func(d time.Duration) { elapsed.Add(int64(d)) }
	tick := make(chan time.Time)
	h := newFakeHandler()
	h.message = func(event) (response, error) { return response{StatusCode: 200, Body: "seen"}, nil }
	const idle = 10 * time.Minute
	_, addr := start(t, h, Options{IdleTimeout: idle, idleTick: tick,
		since: func(time.Time) time.Duration { return time.Duration(elapsed.Load()) }})
	ws, id := connect(t, h, addr)
	fire := func() {
		select {
		case tick <- time.Now():
		case <-time.After(wait):
			t.Fatal("the connection's idle timer is not waiting")
		}
	}
	// roundTrip sends a message and waits for the handler's reply: the
	// gateway has seen the activity. (The sweeper takes a tick only once
	// it has finished with the one before.)
	roundTrip := func() {
		t.Helper()
		if err := ws.WriteMessage(websocket.TextMessage, []byte("hello")); err != nil {
			t.Fatal(err)
		}
		if got := string(readMessage(t, ws)); got != "seen" {
			t.Fatalf("got %q; want the reply", got)
		}
	}

	// Activity keeps the connection open: a message at 3/4 of the idle
	// timeout, then the timer at 3/2 (only 3/4 quiet).
	advance(idle * 3 / 4)
	roundTrip()
	advance(idle * 3 / 4)
	fire()
	roundTrip()

	// Quiet for the whole idle timeout: closed with 1001 "Going away".
	advance(idle)
	fire()
	_ = ws.SetReadDeadline(time.Now().Add(wait))
	_, _, err := ws.ReadMessage()
	var ce *websocket.CloseError
	if !errors.As(err, &ce) || ce.Code != websocket.CloseGoingAway || ce.Text != "Going away" {
		t.Fatalf("read error %v, want close 1001 Going away", err)
	}
	rc := h.waitDisconnect(t, id).RequestContext
	if rc.DisconnectStatusCode != 1001 {
		t.Errorf("$disconnect %d", rc.DisconnectStatusCode)
	}
}

// TestMessagesPostedToAClientKeepItActiveAsOnAWS: API Gateway's idle
// timeout counts messages sent either way, so a client that only
// receives (a dashboard told something every few minutes) stays
// connected; the local gateway closed it 10 minutes after its last
// message of its own, however much was posted to it. The gateway's own
// pings do not count.
func TestMessagesPostedToAClientKeepItActiveAsOnAWS(t *testing.T) {
	var elapsed atomic.Int64
	advance := func(d time.Duration) { elapsed.Add(int64(d)) }
	tick := make(chan time.Time)
	h := newFakeHandler()
	const idle = 10 * time.Minute
	swept := make(chan struct{})
	g, addr := start(t, h, Options{IdleTimeout: idle, idleTick: tick, idleSwept: swept, pingPeriod: time.Millisecond,
		since: func(time.Time) time.Duration { return time.Duration(elapsed.Load()) }})
	ws, id := connect(t, h, addr)
	// The client reads all the time: messages, the gateway's pings (each
	// answered), and at last the close frame.
	pings := make(chan struct{}, 1)
	ws.SetPingHandler(func(data string) error {
		select {
		case pings <- struct{}{}:
		default:
		}
		return ws.WriteControl(websocket.PongMessage, []byte(data), time.Now().Add(wait))
	})
	messages, closed := make(chan string, 4), make(chan error, 1)
	go func() {
		for {
			_, data, err := ws.ReadMessage()
			if err != nil {
				closed <- err
				return
			}
			messages <- string(data)
		}
	}()
	// fire sweeps once with the idle clock as it is, and returns once the
	// sweep is done.
	fire := func() {
		t.Helper()
		select {
		case tick <- time.Now():
		case <-time.After(wait):
			t.Fatal("the idle sweep is not waiting")
		}
		select {
		case <-swept:
		case <-time.After(wait):
			t.Fatal("the idle sweep did not end")
		}
	}
	for i, post := range []func() error{
		func() error { return g.Pusher().Post(ctxT(t), id, []byte("in process")) },
		func() error {
			if s := rawManagement(t, http.MethodPost, "http://"+addr+"/@connections/"+url.PathEscape(id), []byte("over HTTP"), true).StatusCode; s != http.StatusOK {
				return fmt.Errorf("status %d", s)
			}
			return nil
		},
	} {
		advance(idle * 3 / 4)
		if err := post(); err != nil {
			t.Fatalf("post %d: %v", i, err)
		}
		select {
		case <-messages:
		case err := <-closed:
			t.Fatalf("post %d: closed: %v", i, err)
		case <-time.After(wait):
			t.Fatalf("post %d never arrived", i)
		}
		fire()
		advance(idle * 3 / 4) // the client has been quiet for longer than idle
		fire()
		if g.Count() != 1 {
			t.Fatalf("post %d: closed %v after the post, the client quiet since its start", i, idle*3/4)
		}
	}
	// Pinged meanwhile, and nothing either way for the idle timeout:
	// closed with 1001.
	select {
	case <-pings:
	case <-time.After(wait):
		t.Fatal("never pinged")
	}
	advance(idle / 4)
	fire()
	select {
	case err := <-closed:
		var ce *websocket.CloseError
		if !errors.As(err, &ce) || ce.Code != websocket.CloseGoingAway || ce.Text != "Going away" {
			t.Fatalf("read error %v, want close 1001 Going away", err)
		}
	case <-time.After(wait):
		t.Fatal("not closed after the idle timeout")
	}
}

func TestConnectionIsClosedAtTheMaximumDuration(t *testing.T) {
	h := newFakeHandler()
	const maxDuration = 400 * time.Millisecond
	_, addr := start(t, h, Options{MaxDuration: maxDuration})
	began := time.Now()
	ws, id := connect(t, h, addr)
	wantClose(t, h, ws, id, websocket.CloseGoingAway, "Going away")
	if d := time.Since(began); d < maxDuration {
		t.Errorf("closed after %v, want at least %v", d, maxDuration)
	}
}

func TestAMessageOverTheLimitClosesWith1009(t *testing.T) {
	h := newFakeHandler()
	h.message = func(ev event) (response, error) {
		return response{StatusCode: 200, Body: strconv.Itoa(len(ev.Body))}, nil
	}
	_, addr := start(t, h, Options{})
	ws, id := connect(t, h, addr)
	if err := ws.WriteMessage(websocket.TextMessage, bytes.Repeat([]byte("x"), pubsub.MaxMessageBytes)); err != nil {
		t.Fatal(err)
	}
	if got := string(readMessage(t, ws)); got != strconv.Itoa(pubsub.MaxMessageBytes) {
		t.Fatalf("a message of exactly the limit: reply %q", got)
	}
	if err := ws.WriteMessage(websocket.TextMessage, bytes.Repeat([]byte("x"), pubsub.MaxMessageBytes+1)); err != nil {
		t.Fatal(err)
	}
	wantClose(t, h, ws, id, websocket.CloseMessageTooBig, "message too big")
}

// smallBuffers shrinks the kernel buffers of accepted connections so that a
// client that does not read backs up the gateway's writes quickly.
type smallBuffers struct{ net.Listener }

func (l smallBuffers) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if tc, ok := c.(*net.TCPConn); ok {
		_ = tc.SetWriteBuffer(4096)
	}
	return c, err
}

func TestASlowConsumerIsDisconnectedWithPolicyViolation(t *testing.T) {
	// Both pushers: the Management API over HTTP, and in process.
	t.Run("management API", func(t *testing.T) {
		testSlowConsumer(t, func(_ *Gateway, addr, id string, body []byte) (bool, error) {
			switch status := rawManagement(t, http.MethodPost, "http://"+addr+"/@connections/"+url.PathEscape(id), body, true).StatusCode; status {
			case http.StatusGone:
				return true, nil
			case http.StatusOK:
				return false, nil
			default:
				return false, fmt.Errorf("status %d", status)
			}
		})
	})
	t.Run("in process", func(t *testing.T) {
		testSlowConsumer(t, func(g *Gateway, _, id string, body []byte) (bool, error) {
			err := g.Pusher().Post(ctxT(t), id, body)
			if store.IsGone(err) {
				return true, nil
			}
			return false, err
		})
	})
}

func testSlowConsumer(t *testing.T, post func(g *Gateway, addr, id string, body []byte) (gone bool, err error)) {
	h := newFakeHandler()
	g, addr, ws, id := slowClient(t, h, Options{}, 4096)

	// The client reads nothing; posts must never block, and once its
	// backlog would pass the bound (DefaultMaxQueuedBytes) the connection
	// is gone.
	body := bytes.Repeat([]byte("x"), 1024)
	posted := 0
	for ; ; posted++ {
		if posted == 5000 {
			t.Fatal("5000 posts to a client that reads nothing were all accepted")
		}
		gone, err := post(g, addr, id, body)
		if err != nil {
			t.Fatalf("post %d: %v", posted, err)
		}
		if gone {
			break
		}
	}
	t.Logf("gone after %d posts", posted)
	code, text := readClose(t, ws)
	if code != websocket.ClosePolicyViolation || text != "slow consumer" {
		t.Errorf("close %d %q, want 1008 slow consumer", code, text)
	}
	rc := h.waitDisconnect(t, id).RequestContext
	if rc.DisconnectStatusCode != 1008 {
		t.Errorf("$disconnect %d", rc.DisconnectStatusCode)
	}
}

// readingConn returns the frameConn of connection id once its reader has
// set its first read deadline (readLoop's first step, in a goroutine that
// may start late on a busy machine): a deadline a test sets before that
// was overwritten by it, and the reader then waited the whole pong wait.
func readingConn(t *testing.T, g *Gateway, id string) *frameConn {
	t.Helper()
	c := g.lookup(ctxT(t), id)
	c.wmu.Lock() // fc is set under it
	fc := c.fc
	c.wmu.Unlock()
	for end := time.Now().Add(wait); fc.deadline.Load() == noDeadline; time.Sleep(time.Millisecond) {
		if time.Now().After(end) {
			t.Fatalf("the reader of %s set no read deadline in %v", id, wait)
		}
	}
	return fc
}

// slowClient dials a client with a small socket buffer behind a listener
// with small ones, so that what it does not read backs up in the gateway
// quickly.
func slowClient(t *testing.T, h *fakeHandler, opts Options, readBuffer int) (*Gateway, string, *websocket.Conn, string) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	g, addr := startOn(t, h, opts, smallBuffers{ln})
	d := *websocket.DefaultDialer
	d.NetDialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := (&net.Dialer{}).DialContext(ctx, network, addr)
		if tc, ok := c.(*net.TCPConn); ok {
			_ = tc.SetReadBuffer(readBuffer)
		}
		return c, err
	}
	ws, id := connectWith(t, h, &d, addr, "/")
	return g, addr, ws, id
}

// A client that reads late gets everything posted meanwhile, in order:
// what its socket did not take waits in the connection's backlog, which
// is written out behind it, frame by frame, big messages too.
func TestMessagesPostedToAClientThatReadsLateArriveInOrder(t *testing.T) {
	h := newFakeHandler()
	g, addr, ws, id := slowClient(t, h, Options{}, 64<<10)
	p := g.Pusher()
	var want [][]byte
	for i := range 150 {
		size := 1000 + i*7
		if i%50 == 49 {
			size = pubsub.MaxFrameBytes*2 + 5 // several frames
		}
		body := append([]byte(strconv.Itoa(i)+":"), bytes.Repeat([]byte{'a' + byte(i%26)}, size)...)
		var err error
		if i%2 == 0 {
			err = p.Post(ctxT(t), id, body)
		} else if status := rawManagement(t, http.MethodPost, "http://"+addr+"/@connections/"+url.PathEscape(id), body, true).StatusCode; status != http.StatusOK {
			err = fmt.Errorf("status %d", status)
		}
		if err != nil {
			t.Fatalf("post %d: %v", i, err)
		}
		want = append(want, body)
	}
	if c := g.lookup(context.Background(), id); c == nil || c.fc.queuedBytes() == 0 {
		t.Fatal("nothing waits in the backlog: the test did not reach it")
	}
	for i, w := range want {
		if got := readMessage(t, ws); !bytes.Equal(got, w) {
			t.Fatalf("message %d: got %d bytes starting %q; want %d bytes starting %q", i, len(got), got[:min(len(got), 12)], len(w), w[:12])
		}
	}
}

// A client that drains a big backlog slowly, sending nothing meanwhile, is
// alive: the gateway's pings wait behind the backlog and their pongs come
// late, so the pong wait that passes while the client took bytes of its
// backlog since the last one is put off. One that passes with nothing taken
// still closes the connection ("ping timeout"). The pong wait is made to
// pass at once (its read deadline set to now) rather than waited for.
func TestAClientDrainingABigBacklogSlowlyIsNotClosedForPingTimeout(t *testing.T) {
	h := newFakeHandler()
	checked := make(chan bool, 4)
	g, _, ws, id := slowClient(t, h, Options{MaxQueuedBytes: 64 << 20, readTimedOut: func(alive bool) { checked <- alive }}, 64<<10)
	fc := readingConn(t, g, id)
	pongWaitPasses := func() bool {
		t.Helper()
		_ = fc.Conn.SetReadDeadline(time.Now())
		select {
		case alive := <-checked:
			return alive
		case <-time.After(wait):
			t.Fatalf("the read deadline passed and the reader did not check it in %v", wait)
			return false
		}
	}
	// The client reads nothing until several flusher chunks wait.
	p := g.Pusher()
	var want [][]byte
	for fc.queuedBytes() < 4*flushChunk {
		if len(want) == 10000 {
			t.Fatal("10000 posts and no backlog")
		}
		body := append([]byte(strconv.Itoa(len(want))+":"), bytes.Repeat([]byte("x"), 1024)...)
		if err := p.Post(ctxT(t), id, body); err != nil {
			t.Fatalf("post %d: %v", len(want), err)
		}
		want = append(want, body)
	}
	read := 0
	readNext := func() {
		t.Helper()
		if got := readMessage(t, ws); !bytes.Equal(got, want[read]) {
			t.Fatalf("message %d: got %q…", read, got[:min(len(got), 12)])
		}
		read++
	}
	// It reads slowly: once a byte of the second chunk is read, the first
	// was taken by the socket.
	for fc.flushed.Load() == 0 {
		if read == len(want) {
			t.Fatal("the whole backlog read and no chunk flushed")
		}
		readNext()
	}
	if !pongWaitPasses() {
		t.Fatal("a client that took bytes of its backlog was closed for ping timeout")
	}
	for read < len(want) {
		readNext()
	}
	// Its last chunks were taken after that check: the next is put off
	// too; the one after, with nothing taken since, ends the connection.
	if !pongWaitPasses() {
		t.Fatal("a client that took the rest of its backlog was closed for ping timeout")
	}
	if pongWaitPasses() {
		t.Fatal("a client that took nothing and sent nothing for the pong wait was kept")
	}
	rc := h.waitDisconnect(t, id).RequestContext
	if rc.DisconnectStatusCode != websocket.CloseAbnormalClosure || rc.DisconnectReason == nil || *rc.DisconnectReason != "ping timeout" {
		t.Errorf("$disconnect %d %v, want 1006 ping timeout", rc.DisconnectStatusCode, rc.DisconnectReason)
	}
}

// The sweeper pings every client, again and again, with the gateway's own
// payload.
func TestEveryClientIsPingedPeriodically(t *testing.T) {
	h := newFakeHandler()
	_, addr := start(t, h, Options{pingPeriod: 20 * time.Millisecond})
	pings := make(chan string, 16)
	for range 2 {
		ws, _ := connect(t, h, addr)
		ws.SetPingHandler(func(data string) error {
			select {
			case pings <- data:
			default:
			}
			return nil
		})
		go func() {
			for {
				if _, _, err := ws.ReadMessage(); err != nil {
					return
				}
			}
		}()
	}
	for i := range 6 { // three each at least, or more of one
		select {
		case data := <-pings:
			if data != string(pingPayload) {
				t.Fatalf("ping %d carries %q", i, data)
			}
		case <-time.After(wait):
			t.Fatalf("%d pings in %v", i, wait)
		}
	}
}

// An idle connection keeps one goroutine, its reader: writes, pings and
// timeouts need none of their own.
func TestAnIdleConnectionKeepsOneGoroutine(t *testing.T) {
	// The gateways of the tests before this one stop in their cleanups,
	// and their goroutines end soon after: one counted in before that
	// ended during the count made it read 19 for 20 (CI). Wait for them
	// first, so that every goroutine counted is this test's gateway's.
	for deadline := time.Now().Add(wait); gatewayGoroutines() > 0; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%d goroutines of the gateways of earlier tests still run after %v", gatewayGoroutines(), wait)
		}
	}
	h := newFakeHandler()
	_, addr := start(t, h, Options{})
	connect(t, h, addr) // the gateway's own goroutines are running
	// The gateway's other goroutines, counted before the connections:
	// one of them that ends meanwhile (as a goroutine of the first
	// connect's) made a plain difference read 19 for 20 (CI). The read
	// loops are counted exactly; the others may only not grow.
	before := gatewayGoroutines() - readLoops()
	const n = 20
	for range n {
		connect(t, h, addr) // the client side reads nothing: no goroutine
	}
	deadline := time.Now().Add(wait)
	for {
		loops := readLoops()
		others := gatewayGoroutines() - loops
		if loops == n+1 && others <= before {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d idle connections (and the first) keep %d read loops and %d other goroutines (before: %d); want one read loop each and no other goroutine", n, loops, others, before)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// readLoops counts the goroutines running a connection's read loop.
func readLoops() int {
	return strings.Count(allStacks(), "gateway.(*conn).readLoop(")
}

// gatewayGoroutines counts the goroutines running the gateway's code, but
// for the tests' own: other tests' HTTP clients come and go meanwhile.
func gatewayGoroutines() int {
	count := 0
	for _, g := range strings.Split(allStacks(), "\n\n") {
		if strings.Contains(g, "socks/gateway.") && !strings.Contains(g, "socks/gateway.Test") {
			count++
		}
	}
	return count
}

// allStacks is the stacks of every goroutine.
func allStacks() string {
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			return string(buf[:n])
		}
		buf = make([]byte, 2*len(buf))
	}
}

// rawManagement calls the Management API without the SDK.
func rawManagement(t *testing.T, method, u string, body []byte, auth bool) *http.Response {
	t.Helper()
	req, err := http.NewRequestWithContext(ctxT(t), method, u, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if auth {
		req.Header.Set("Authorization", "AWS4-HMAC-SHA256 Credential=local/20260101/us-east-1/execute-api/aws4_request, SignedHeaders=host, Signature=00")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp
}

func TestShutdownSendsGoingAwayToEveryClient(t *testing.T) {
	h := newFakeHandler()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	g, err := New(Options{Handler: h})
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- g.Serve(ln) }()
	addr := ln.Addr().String()

	type client struct {
		id     string
		closed chan error
	}
	var clients []client
	for range 3 {
		ws, id := connect(t, h, addr)
		c := client{id, make(chan error, 1)}
		go func() {
			_ = ws.SetReadDeadline(time.Now().Add(wait))
			_, _, err := ws.ReadMessage()
			c.closed <- err
		}()
		clients = append(clients, c)
	}
	if g.Count() != 3 {
		t.Fatalf("Count = %d, want 3", g.Count())
	}

	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	if err := g.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	for _, c := range clients {
		err := <-c.closed
		var ce *websocket.CloseError
		if !errors.As(err, &ce) || ce.Code != websocket.CloseGoingAway {
			t.Errorf("client %s: %v, want close 1001", c.id, err)
		}
	}
	// Shutdown returns after every $disconnect.
	for _, c := range clients {
		n := len(h.find(func(ev event) bool {
			return ev.RequestContext.RouteKey == "$disconnect" && ev.RequestContext.ConnectionID == c.id
		}))
		if n != 1 {
			t.Errorf("client %s: %d $disconnect calls at the end of Shutdown", c.id, n)
		}
	}
	select {
	case err := <-served:
		if err != nil {
			t.Errorf("Serve = %v", err)
		}
	case <-time.After(wait):
		t.Error("Serve did not return")
	}
	if g.Count() != 0 {
		t.Errorf("Count = %d after Shutdown", g.Count())
	}
	if _, _, err := dial(t, addr, "/", nil, nil); err == nil {
		t.Error("a client connected after Shutdown")
	}
	if err := g.Shutdown(ctx); err != nil {
		t.Errorf("second Shutdown: %v", err)
	}
	h.checkDisconnectedOnce(t)
}

func TestTheSDKClientManagesConnections(t *testing.T) {
	for _, stage := range []string{"", "dev"} {
		t.Run("stage "+strconv.Quote(stage), func(t *testing.T) {
			h := newFakeHandler()
			// The gateway's clock, stopped: the times GetConnection
			// reports are exactly its time at the connect.
			at := time.Date(2026, 3, 4, 5, 6, 7, 890_000_000, time.UTC)
			g, addr := start(t, h, Options{Stage: stage, Now: func() time.Time { return at }})
			api := sdkClient(g, addr)
			ws, id := connect(t, h, addr)

			for _, n := range []int{0, 1, 5, 100 * 1024, pubsub.MaxMessageBytes} {
				want := bytes.Repeat([]byte("0123456789abcdef"), n/16+1)[:n]
				if n == 5 {
					want = []byte(`{"x":"ü"}`)
				}
				_, err := api.PostToConnection(ctxT(t), &apigatewaymanagementapi.PostToConnectionInput{ConnectionId: &id, Data: want})
				if err != nil {
					t.Fatalf("PostToConnection %d bytes: %v", len(want), err)
				}
				kind, got, err := ws.ReadMessage()
				if err != nil || kind != websocket.TextMessage || !bytes.Equal(got, want) {
					t.Fatalf("posted %d bytes, client read %d bytes of type %d (%v)", len(want), len(got), kind, err)
				}
			}

			out, err := api.GetConnection(ctxT(t), &apigatewaymanagementapi.GetConnectionInput{ConnectionId: &id})
			if err != nil {
				t.Fatalf("GetConnection: %v", err)
			}
			if out.ConnectedAt == nil || !out.ConnectedAt.Equal(at) || out.LastActiveAt == nil || !out.LastActiveAt.Equal(at) {
				t.Errorf("GetConnection times %v %v; want both %v, the gateway's clock at the connect", out.ConnectedAt, out.LastActiveAt, at)
			}
			if out.Identity == nil || aws.ToString(out.Identity.SourceIp) != "127.0.0.1" || !strings.HasPrefix(aws.ToString(out.Identity.UserAgent), "Go-http-client") {
				t.Errorf("GetConnection identity %+v", out.Identity)
			}

			tooBig := make([]byte, pubsub.MaxMessageBytes+1)
			_, err = api.PostToConnection(ctxT(t), &apigatewaymanagementapi.PostToConnectionInput{ConnectionId: &id, Data: tooBig})
			var tooLarge *types.PayloadTooLargeException
			if !errors.As(err, &tooLarge) {
				t.Errorf("posting %d bytes: %v, want PayloadTooLargeException", len(tooBig), err)
			}

			if _, err := api.DeleteConnection(ctxT(t), &apigatewaymanagementapi.DeleteConnectionInput{ConnectionId: &id}); err != nil {
				t.Fatalf("DeleteConnection: %v", err)
			}
			wantClose(t, h, ws, id, websocket.CloseNormalClosure, "connection deleted")

			for _, gone := range []string{id, "AAAAAAAAAAAAAAA="} {
				var goneErr *types.GoneException
				_, err := api.PostToConnection(ctxT(t), &apigatewaymanagementapi.PostToConnectionInput{ConnectionId: &gone, Data: []byte("x")})
				if !errors.As(err, &goneErr) {
					t.Errorf("PostToConnection %s: %v, want GoneException", gone, err)
				}
				_, err = api.GetConnection(ctxT(t), &apigatewaymanagementapi.GetConnectionInput{ConnectionId: &gone})
				if !errors.As(err, &goneErr) {
					t.Errorf("GetConnection %s: %v, want GoneException", gone, err)
				}
				_, err = api.DeleteConnection(ctxT(t), &apigatewaymanagementapi.DeleteConnectionInput{ConnectionId: &gone})
				if !errors.As(err, &goneErr) {
					t.Errorf("DeleteConnection %s: %v, want GoneException", gone, err)
				}
			}
		})
	}
}

func TestTheManagementAPIRefusesUnsignedRequestsAndWrongPaths(t *testing.T) {
	h := newFakeHandler()
	g, addr := start(t, h, Options{Stage: "dev"})
	_, id := connect(t, h, addr)

	t.Run("a request without Authorization is forbidden", func(t *testing.T) {
		resp := rawManagement(t, http.MethodPost, "http://"+addr+"/dev/@connections/"+url.PathEscape(id), []byte("x"), false)
		if resp.StatusCode != http.StatusForbidden || resp.Header.Get("X-Amzn-ErrorType") != "ForbiddenException" {
			t.Errorf("got %d %v", resp.StatusCode, resp.Header)
		}
		anonymous := apigatewaymanagementapi.New(apigatewaymanagementapi.Options{
			Region:       "us-east-1",
			BaseEndpoint: aws.String(g.ManagementEndpoint(addr)),
			Credentials:  aws.AnonymousCredentials{},
		})
		_, err := anonymous.PostToConnection(ctxT(t), &apigatewaymanagementapi.PostToConnectionInput{ConnectionId: &id, Data: []byte("x")})
		var forbidden *types.ForbiddenException
		if !errors.As(err, &forbidden) {
			t.Errorf("anonymous PostToConnection: %v, want ForbiddenException", err)
		}
	})
	t.Run("a wrong stage is forbidden", func(t *testing.T) {
		api := awsops.NewManagementClient(awsops.LocalConfig(), "http://"+addr+"/prod", 1)
		_, err := api.GetConnection(ctxT(t), &apigatewaymanagementapi.GetConnectionInput{ConnectionId: &id})
		var forbidden *types.ForbiddenException
		if !errors.As(err, &forbidden) {
			t.Errorf("GetConnection at the wrong stage: %v, want ForbiddenException", err)
		}
	})
	t.Run("a plain GET of the WebSocket URL asks for an upgrade", func(t *testing.T) {
		resp := rawManagement(t, http.MethodGet, "http://"+addr+"/dev", nil, false)
		if resp.StatusCode != http.StatusUpgradeRequired {
			t.Errorf("got %d", resp.StatusCode)
		}
	})
}

// A handshake that the upgrade would refuse anyway is refused before
// $connect: the route never records a connection that cannot open.
func TestHandshakesThatCannotSucceedNeverReachConnect(t *testing.T) {
	h := newFakeHandler()
	_, addr := start(t, h, Options{})
	for _, tc := range []struct {
		name, key string
	}{
		{"a key that is not base64", "not a key!"},
		{"a key of 15 bytes", base64.StdEncoding.EncodeToString(make([]byte, 15))},
		{"a key of 17 bytes", base64.StdEncoding.EncodeToString(make([]byte, 17))},
	} {
		t.Run(tc.name+" is 400 without a $connect", func(t *testing.T) {
			req, err := http.NewRequestWithContext(ctxT(t), http.MethodGet, "http://"+addr+"/?tag=badkey", nil)
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set("Upgrade", "websocket")
			req.Header.Set("Connection", "Upgrade")
			req.Header.Set("Sec-WebSocket-Version", "13")
			req.Header.Set("Sec-WebSocket-Key", tc.key)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusBadRequest {
				t.Errorf("status %d; want 400", resp.StatusCode)
			}
			if n := len(h.find(func(ev event) bool { return ev.RequestContext.EventType == "CONNECT" })); n != 0 {
				t.Errorf("%d $connect calls; want none", n)
			}
		})
	}
}

// A frame that breaks the protocol (here: not masked) gets a close frame
// 1002 naming what was wrong, and $disconnect runs (with 1006: the reader
// ends without a close frame of the client's).
func TestAFrameThatBreaksTheProtocolClosesWith1002(t *testing.T) {
	h := newFakeHandler()
	_, addr := start(t, h, Options{})
	c, br, id := rawUpgrade(t, h, addr, "unmasked")
	if _, err := c.Write([]byte{0x81, 0x02, 'h', 'i'}); err != nil { // FIN, text, unmasked "hi"
		t.Fatal(err)
	}
	if code, reason, _ := readRawClose(t, br); code != websocket.CloseProtocolError || !strings.Contains(reason, "MASK") {
		t.Errorf("close %d %q; want 1002 naming the mask", code, reason)
	}
	if rc := h.waitDisconnect(t, id).RequestContext; rc.DisconnectStatusCode != websocket.CloseAbnormalClosure {
		t.Errorf("$disconnect %d", rc.DisconnectStatusCode)
	}
}

// rawUpgrade opens a WebSocket connection by hand on a raw TCP socket
// (tagged tag for the fake handler), for tests that read or write frames
// byte by byte; it returns the socket, its reader past the 101, and the
// connection's ID. The socket closes when the test ends.
func rawUpgrade(t *testing.T, h *fakeHandler, addr, tag string) (net.Conn, *bufio.Reader, string) {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, wait)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	_ = c.SetDeadline(time.Now().Add(wait))
	fmt.Fprintf(c, "GET /?tag=%s HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"+
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n", tag, addr)
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, nil)
	if err != nil || resp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("handshake: %v %v", resp, err)
	}
	return c, br, h.idOf(tag)
}

// TestOutboundFramesAreAtMost32KB reads a posted message frame by frame on a
// raw connection.
func TestOutboundFramesAreAtMost32KB(t *testing.T) {
	h := newFakeHandler()
	_, addr := start(t, h, Options{})
	_, br, id := rawUpgrade(t, h, addr, "raw")

	want := bytes.Repeat([]byte("abcdefgh"), 100*1024/8)
	if s := rawManagement(t, http.MethodPost, "http://"+addr+"/@connections/"+url.PathEscape(id), want, true).StatusCode; s != 200 {
		t.Fatalf("post: %d", s)
	}
	var got []byte
	for frames := 0; ; frames++ {
		fin, opcode, payload := readServerFrame(t, br)
		if wantOp := byte(0); frames == 0 && opcode != 1 || frames > 0 && opcode != wantOp {
			t.Fatalf("frame %d: opcode %d", frames, opcode)
		}
		if n := len(payload); n > pubsub.MaxFrameBytes {
			t.Fatalf("frame %d: %d bytes, over %d", frames, n, pubsub.MaxFrameBytes)
		}
		got = append(got, payload...)
		if fin {
			break
		}
	}
	if !bytes.Equal(got, want) {
		t.Errorf("reassembled %d bytes, posted %d", len(got), len(want))
	}
}

func TestTheManagementAPIPusherConforms(t *testing.T) {
	runPusherSuite(t, func(g *Gateway, addr string) store.Pusher { return awsops.NewPusher(sdkClient(g, addr)) })
}

// TestEveryManagementAPIAnswerNamesTheGateway: every answer of the
// Management API carries the gateway's run ID (pubsub.GatewayIDHeader),
// refusals too, which `socks broker` checks on each; each gateway's is
// its own. The conformance suite runs with a client that takes no answer
// without it.
func TestEveryManagementAPIAnswerNamesTheGateway(t *testing.T) {
	var ids []string
	runPusherSuite(t, func(g *Gateway, addr string) store.Pusher {
		ids = append(ids, g.ID())
		check := awsops.WithResponseCheck(func(r *http.Response) error {
			if got := r.Header.Get(pubsub.GatewayIDHeader); got != g.ID() {
				return fmt.Errorf("%s %s answered %d with %s %q; want %q", r.Request.Method, r.Request.URL.Path, r.StatusCode, pubsub.GatewayIDHeader, got, g.ID())
			}
			return nil
		})
		return awsops.NewPusher(awsops.NewManagementClient(awsops.LocalConfig(), g.ManagementEndpoint(addr), 4, check))
	})
	// Its refusals: TestEveryManagementAPIAnswerCarriesARequestIDAndTheGatewaysID.
	g, _ := start(t, newFakeHandler(), Options{})
	if len(ids) != 1 || ids[0] == "" || g.ID() == "" || g.ID() == ids[0] {
		t.Errorf("run IDs %q and %q; want two, not empty, not equal", ids, g.ID())
	}
}

// The broker inside `socks serve` posts in process: the same suite, the
// same meanings.
func TestTheInProcessPusherConforms(t *testing.T) {
	runPusherSuite(t, func(g *Gateway, _ string) store.Pusher { return g.Pusher() })
}

func runPusherSuite(t *testing.T, pusher func(g *Gateway, addr string) store.Pusher) {
	h := newFakeHandler()
	g, addr := start(t, h, Options{Stage: "dev"})
	storetest.RunPusher(t, storetest.PusherHarness{
		Pusher: pusher(g, addr),
		Connect: func(t *testing.T) (string, func(time.Duration) ([]byte, error), func()) {
			ws, id := connectWith(t, h, websocket.DefaultDialer, addr, "/dev")
			next := func(timeout time.Duration) ([]byte, error) {
				_ = ws.SetReadDeadline(time.Now().Add(timeout))
				_, data, err := ws.ReadMessage()
				return data, err
			}
			return id, next, func() { ws.Close() }
		},
	})
}

func TestABinaryMessageGoesToDefaultBase64Encoded(t *testing.T) {
	h := newFakeHandler()
	h.message = func(ev event) (response, error) {
		// A base64 response body is sent back as a binary message.
		return response{StatusCode: 200, Body: ev.Body, IsBase64Encoded: ev.IsBase64Encoded}, nil
	}
	_, addr := start(t, h, Options{Routes: []string{"ping"}})
	ws, _ := connect(t, h, addr)
	sent := []byte{0, 1, 2, 0xff}
	if err := ws.WriteMessage(websocket.BinaryMessage, sent); err != nil {
		t.Fatal(err)
	}
	_ = ws.SetReadDeadline(time.Now().Add(wait))
	kind, got, err := ws.ReadMessage()
	if err != nil || kind != websocket.BinaryMessage || !bytes.Equal(got, sent) {
		t.Fatalf("reply %d %v %v", kind, got, err)
	}
	ev := h.waitFor(t, "the binary message", func(ev event) bool { return ev.RequestContext.EventType == "MESSAGE" })
	if ev.RequestContext.RouteKey != "$default" || !ev.IsBase64Encoded || ev.Body != base64.StdEncoding.EncodeToString(sent) {
		t.Errorf("event route %s base64 %v body %q", ev.RequestContext.RouteKey, ev.IsBase64Encoded, ev.Body)
	}
}

// writeFrames sends data as one message: gorilla sends it in frames of at
// most the client's write buffer size.
func writeFrames(t *testing.T, ws *websocket.Conn, data []byte) {
	t.Helper()
	w, err := ws.NextWriter(websocket.TextMessage)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write(data); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
}

// wantFrameTooBig checks that a client that sent a frame over the limit
// gets close 1009 "frame too big", and so does $disconnect. The client then
// closes, as browsers do, which ends the gateway's wait for the rest of the
// refused frame.
func wantFrameTooBig(t *testing.T, h *fakeHandler, ws *websocket.Conn, id string) {
	t.Helper()
	const reason = "frame too big"
	if code, text := readClose(t, ws); code != websocket.CloseMessageTooBig || text != reason {
		t.Errorf("close frame %d %q, want 1009 %q", code, text, reason)
	}
	ws.Close()
	rc := h.waitDisconnect(t, id).RequestContext
	if rc.DisconnectStatusCode != websocket.CloseMessageTooBig || rc.DisconnectReason == nil || *rc.DisconnectReason != reason {
		t.Errorf("$disconnect status %d %v, want 1009 %q", rc.DisconnectStatusCode, rc.DisconnectReason, reason)
	}
}

// lengthReplier answers each message with its length.
func lengthReplier() *fakeHandler {
	h := newFakeHandler()
	h.message = func(ev event) (response, error) {
		return response{StatusCode: 200, Body: strconv.Itoa(len(ev.Body))}, nil
	}
	return h
}

func TestAFrameOverTheLimitClosesWith1009(t *testing.T) {
	h := lengthReplier()
	_, addr := start(t, h, Options{})
	ws, id := connectWith(t, h, &websocket.Dialer{WriteBufferSize: 64 << 10}, addr, "/")
	writeFrames(t, ws, bytes.Repeat([]byte("x"), 40<<10)) // one 40 KB frame
	wantFrameTooBig(t, h, ws, id)
	if got := h.find(func(ev event) bool { return ev.RequestContext.EventType == "MESSAGE" }); len(got) != 0 {
		t.Errorf("%d messages routed, want none", len(got))
	}
}

func TestFramesOfAtMostTheLimitAreAccepted(t *testing.T) {
	h := lengthReplier()
	_, addr := start(t, h, Options{})

	// 100 KB in frames of 16 KB.
	ws, _ := connectWith(t, h, &websocket.Dialer{WriteBufferSize: 16 << 10}, addr, "/")
	sent := strings.Repeat("abcd", 100<<10/4)
	writeFrames(t, ws, []byte(sent))
	if got := string(readMessage(t, ws)); got != strconv.Itoa(len(sent)) {
		t.Fatalf("100 KB in 16 KB frames: reply %q", got)
	}
	ev := h.waitFor(t, "the 100 KB message", func(ev event) bool { return ev.RequestContext.EventType == "MESSAGE" })
	if ev.Body != sent || ev.RequestContext.RouteKey != "$default" {
		t.Errorf("routed %d bytes to %s, want %d to $default", len(ev.Body), ev.RequestContext.RouteKey, len(sent))
	}

	// One frame of exactly 32 KB, then one a byte bigger.
	ws, id := connectWith(t, h, &websocket.Dialer{WriteBufferSize: 64 << 10}, addr, "/")
	writeFrames(t, ws, bytes.Repeat([]byte("y"), pubsub.MaxFrameBytes))
	if got := string(readMessage(t, ws)); got != strconv.Itoa(pubsub.MaxFrameBytes) {
		t.Fatalf("a frame of exactly 32 KB: reply %q", got)
	}
	writeFrames(t, ws, bytes.Repeat([]byte("y"), pubsub.MaxFrameBytes+1))
	wantFrameTooBig(t, h, ws, id)
}

func TestASlowConsumerIsClosedOnceItsQueuedBytesPassTheBound(t *testing.T) {
	h := newFakeHandler()
	const bound = 256 * 1024
	_, addr, ws, id := slowClient(t, h, Options{MaxQueuedBytes: bound}, 4096)
	body := bytes.Repeat([]byte("y"), 120*1024)
	posted := 0
	for ; ; posted++ {
		// The bound holds two such messages; a little more sits in the
		// socket buffers.
		if posted == 8 {
			t.Fatalf("%d posts of 120 KB to a client that reads nothing were all queued; the bound is %d bytes", posted, bound)
		}
		status := rawManagement(t, http.MethodPost, "http://"+addr+"/@connections/"+url.PathEscape(id), body, true).StatusCode
		if status == http.StatusGone {
			break
		}
		if status != http.StatusOK {
			t.Fatalf("post %d: status %d", posted, status)
		}
	}
	code, text := readClose(t, ws)
	if code != websocket.ClosePolicyViolation || text != "slow consumer" {
		t.Errorf("close %d %q, want 1008 slow consumer", code, text)
	}
	if rc := h.waitDisconnect(t, id).RequestContext; rc.DisconnectStatusCode != 1008 {
		t.Errorf("$disconnect %d", rc.DisconnectStatusCode)
	}
}

// The pongs answering a client's pings are bytes queued for it like any
// other: a client that pings without reading cannot grow its backlog past
// the bound, it is closed as a slow consumer.
func TestAClientThatPingsWithoutReadingIsClosedAsASlowConsumer(t *testing.T) {
	h := newFakeHandler()
	const bound = 16 * 1024
	g, _, ws, id := slowClient(t, h, Options{MaxQueuedBytes: bound}, 64<<10)
	payload := bytes.Repeat([]byte("p"), 125) // the most a control frame holds
	const pings = 4000                        // about 500 KB of pongs, 30 times the bound
	for i := range pings {
		if err := ws.WriteControl(websocket.PingMessage, payload, time.Now().Add(wait)); err != nil {
			t.Fatalf("ping %d: %v", i, err)
		}
	}
	// A message behind the pings: once it is routed, the gateway has
	// answered every ping (or the connection ended before it).
	if err := ws.WriteMessage(websocket.TextMessage, []byte(`{"action":"marker"}`)); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(wait)
	for g.lookup(context.Background(), id) != nil && len(h.find(func(ev event) bool {
		return ev.RequestContext.EventType == "MESSAGE" && ev.RequestContext.ConnectionID == id
	})) == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("the gateway neither routed the message behind %d pings nor closed the connection within %v", pings, wait)
		}
		time.Sleep(5 * time.Millisecond)
	}
	if c := g.lookup(context.Background(), id); c != nil {
		t.Fatalf("%d pings later the connection is open with %d bytes of pongs queued; the bound is %d", pings, c.fc.queuedBytes(), bound)
	}
	wantClose(t, h, ws, id, websocket.ClosePolicyViolation, reasonSlowConsumer)
}

func TestAFloodingClientGetsErrorFramesThenACloseWith1008(t *testing.T) {
	h := newFakeHandler()
	var routed atomic.Int64
	h.message = func(event) (response, error) {
		routed.Add(1)
		return response{StatusCode: 200}, nil
	}
	_, addr := start(t, h, Options{MaxFramesPerSecond: 2})
	ws, id := connect(t, h, addr)
	// Far more than the rate allows in the time it takes to send them.
	go func() {
		for range 500 {
			if ws.WriteMessage(websocket.TextMessage, []byte(`{"action":"ping"}`)) != nil {
				return
			}
		}
	}()
	errorFrames := 0
	_ = ws.SetReadDeadline(time.Now().Add(wait))
	for {
		_, data, err := ws.ReadMessage()
		var ce *websocket.CloseError
		if errors.As(err, &ce) {
			if ce.Code != websocket.ClosePolicyViolation || ce.Text != "too many frames" {
				t.Errorf("close %d %q; want 1008 too many frames", ce.Code, ce.Text)
			}
			break
		}
		if err != nil {
			t.Fatalf("reading: %v (after %d error frames)", err, errorFrames)
		}
		if !strings.Contains(string(data), "too many frames: send at most 2 per second") {
			t.Fatalf("frame %q; want the rate's error frame", data)
		}
		errorFrames++
	}
	if errorFrames == 0 {
		t.Error("the client was closed without an error frame first")
	}
	if n := routed.Load(); n >= 500 {
		t.Errorf("%d of 500 messages were routed", n)
	}
	if rc := h.waitDisconnect(t, id).RequestContext; rc.DisconnectStatusCode != 1008 {
		t.Errorf("$disconnect %d", rc.DisconnectStatusCode)
	}
}

func TestConnectionsOverTheGatewayCapAreRefusedWith503(t *testing.T) {
	h := newFakeHandler()
	g, addr := start(t, h, Options{MaxConnections: 2})
	first, firstID := connect(t, h, addr)
	connect(t, h, addr)
	_, resp, err := dial(t, addr, "/", nil, nil)
	if !errors.Is(err, websocket.ErrBadHandshake) || resp == nil {
		t.Fatalf("dial over the cap: %v; want a refused handshake", err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable || !strings.Contains(string(body), "the most allowed (--max-connections)") {
		t.Errorf("over the cap: %d %q; want 503 saying why", resp.StatusCode, body)
	}
	if g.Count() != 2 {
		t.Errorf("Count = %d; want 2", g.Count())
	}
	first.Close()
	h.waitDisconnect(t, firstID)
	// The slot is free once the first connection is gone.
	deadline := time.Now().Add(wait)
	for {
		ws, _, err := dial(t, addr, "/", nil, nil)
		if err == nil {
			ws.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no connect after one closed: %v", err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// port is the port of a host:port address.
func port(addr string) string {
	_, p, _ := net.SplitHostPort(addr)
	return p
}

func TestOnlyAllowedOriginsMayConnect(t *testing.T) {
	h := newFakeHandler()
	_, addr := start(t, h, Options{AllowOrigins: []string{"https://app.example"}})
	for _, tc := range []struct {
		origin string
		want   int
	}{
		{"https://app.example", http.StatusSwitchingProtocols},
		{"", http.StatusSwitchingProtocols}, // not a browser
		{"https://evil.example", http.StatusForbidden},
		{"null", http.StatusForbidden},
		// The gateway's own pages (the live page at its own address)
		// may connect whatever --allow-origin lists.
		{"http://" + addr, http.StatusSwitchingProtocols},
		{"http://" + strings.Replace(addr, "127.0.0.1", "localhost", 1), http.StatusSwitchingProtocols},
		// Opened at [::1] or at localhost on port 80 (no port in Host
		// or Origin), as the browser names it.
		{"http://[::1]:" + port(addr), http.StatusSwitchingProtocols},
		{"http://localhost", http.StatusSwitchingProtocols},
		{"https://" + addr, http.StatusForbidden},
		{"http://127.0.0.2:1", http.StatusForbidden},
		// A page that points its own name at 127.0.0.1 (DNS rebinding)
		// sends its own name as Host and Origin: it is not the gateway's.
		{"http://rebind.example:" + port(addr), http.StatusForbidden},
	} {
		header := http.Header{}
		if tc.origin != "" {
			header.Set("Origin", tc.origin)
		}
		if u, err := url.Parse(tc.origin); err == nil && u.Host != "" && !strings.HasPrefix(u.Host, "127.0.0.") {
			header.Set("Host", u.Host)
		}
		ws, resp, err := dial(t, addr, "/", nil, header)
		if err == nil {
			ws.Close()
		}
		if resp == nil {
			t.Fatalf("origin %q: %v", tc.origin, err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != tc.want {
			t.Errorf("origin %q: status %d; want %d", tc.origin, resp.StatusCode, tc.want)
		}
		if tc.want == http.StatusForbidden && (!strings.Contains(string(body), "--allow-origin") || strings.Contains(string(body), tc.origin)) {
			t.Errorf("origin %q: body %q; want the reason without echoing the origin", tc.origin, body)
		}
	}
}

func TestSiteAnswersPlainHTTPAndUpgradesStayWithTheRoutes(t *testing.T) {
	h := newFakeHandler()
	site := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, "site "+r.URL.Path)
	})
	_, addr := start(t, h, Options{Site: site, Stage: "dev"})
	// Under the stage, the site's paths are the same: the live page at
	// "/dev" and "/dev/", its "./socks.js" at "/dev/socks.js".
	for path, sitePath := range map[string]string{"/": "/", "/socks.js": "/socks.js", "/dev": "/", "/dev/": "/", "/dev/socks.js": "/socks.js", "/dev/chatter-id": "/chatter-id", "/devx": "/devx"} {
		t.Run("GET "+path+" without an upgrade goes to the site", func(t *testing.T) {
			resp, err := http.Get("http://" + addr + path)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 || string(body) != "site "+sitePath {
				t.Errorf("status %d body %q, want the site's %s", resp.StatusCode, body, sitePath)
			}
		})
	}
	t.Run("a WebSocket upgrade at / still reaches $connect", func(t *testing.T) {
		ws, _, err := dial(t, addr, "/", url.Values{}, nil)
		if err != nil {
			t.Fatal(err)
		}
		ws.Close()
	})
	t.Run("the Management API is not the site's", func(t *testing.T) {
		resp, err := http.Get("http://" + addr + "/@connections/nope")
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode == 200 || strings.HasPrefix(string(body), "site ") {
			t.Errorf("status %d body %q; want the Management API's refusal", resp.StatusCode, body)
		}
	})
}

func TestShutdownDoesNotWaitForSocketsThatSentNothing(t *testing.T) {
	h := newFakeHandler()
	g, addr := start(t, h, Options{})
	// A browser opens sockets ahead of need (it has fetched from this
	// origin before) and may never send anything on them.
	idle, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer idle.Close()
	// Make sure the server accepted it before shutting down.
	if resp, err := http.Get("http://" + addr + "/@connections/x"); err == nil {
		resp.Body.Close()
	}
	// http.Server alone waits 5 s for such a socket; a generous bound
	// below that tells the two apart.
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Second)
	defer cancel()
	if err := g.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown: %v; want nil (the idle socket is closed, not waited for)", err)
	}
	_ = idle.SetReadDeadline(time.Now().Add(wait))
	if _, err := idle.Read(make([]byte, 1)); err == nil {
		t.Error("the idle socket is still open after Shutdown")
	}
}

// A Management API call that never ends (its body never comes) is dropped
// when Shutdown runs out of time, like the WebSocket connections: nothing
// of the gateway is left running after Shutdown returns.
func TestShutdownOutOfTimeDropsCallsThatNeverEnd(t *testing.T) {
	h := newFakeHandler()
	g, addr := start(t, h, Options{})
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(wait))
	fmt.Fprintf(c, "POST /@connections/someone HTTP/1.1\r\nHost: %s\r\nAuthorization: unsigned\r\nContent-Length: 100\r\nExpect: 100-continue\r\n\r\n", addr)
	r := bufio.NewReader(c)
	// The 100 Continue says the handler is reading the body.
	if line, err := r.ReadString('\n'); err != nil || !strings.Contains(line, "100 Continue") {
		t.Fatalf("no 100 Continue: %q %v", line, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond) // the call never ends: any time runs out
	defer cancel()
	if err := g.Shutdown(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Shutdown = %v; want the context's deadline", err)
	}
	// Dropped: the socket ends (the rest of the 100 Continue answer may
	// come first).
	if _, err := io.Copy(io.Discard, r); err != nil {
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			t.Fatal("the call that never ends is still open after Shutdown")
		}
	}
}

// A kept-alive HTTP connection (a Management API client, a browser that
// fetched socks.js) that sends no further request is closed in the end: a
// producer that leaks its HTTP clients cannot pile up sockets in the
// gateway until it runs out of files.
func TestIdleKeptAliveHTTPConnectionsAreClosed(t *testing.T) {
	h := newFakeHandler()
	_, addr := start(t, h, Options{httpIdleTimeout: 50 * time.Millisecond})
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(wait))
	fmt.Fprintf(c, "GET /@connections/someone HTTP/1.1\r\nHost: %s\r\nAuthorization: unsigned\r\n\r\n", addr)
	r := bufio.NewReader(c)
	resp, err := http.ReadResponse(r, nil)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusGone || resp.Close {
		t.Fatalf("status %d, close %v; want 410 on a kept-alive connection", resp.StatusCode, resp.Close)
	}
	if _, err := r.ReadByte(); err != io.EOF {
		t.Fatalf("the idle kept-alive connection: %v; want it closed (EOF)", err)
	}
}

// A Management API call whose body stops coming is answered (400) and
// let go of after a while, not held for ever: off loopback, anyone can
// send one before its signature is checked.
func TestAManagementCallWhoseBodyStallsIsLetGo(t *testing.T) {
	for _, creds := range []*Credentials{nil, {AccessKeyID: "AKIDEXAMPLE", SecretAccessKey: "secret"}} {
		t.Run(fmt.Sprintf("signatures required %v", creds != nil), func(t *testing.T) {
			h := newFakeHandler()
			_, addr := start(t, h, Options{Credentials: creds, bodyWait: 50 * time.Millisecond})
			c, err := net.Dial("tcp", addr)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			_ = c.SetDeadline(time.Now().Add(wait))
			// With signatures required, the header claims the gateway's
			// key and the time now, or the body is not even read.
			auth, now := "unsigned", time.Now().UTC()
			if creds != nil {
				auth = "AWS4-HMAC-SHA256 Credential=" + creds.AccessKeyID + "/" + now.Format("20060102") + "/us-east-1/execute-api/aws4_request, SignedHeaders=host;x-amz-date, Signature=00"
			}
			fmt.Fprintf(c, "POST /@connections/someone HTTP/1.1\r\nHost: %s\r\nAuthorization: %s\r\nX-Amz-Date: %s\r\nContent-Length: 100\r\n\r\nonly a part", addr, auth, now.Format("20060102T150405Z"))
			resp, err := http.ReadResponse(bufio.NewReader(c), nil)
			if err != nil {
				t.Fatalf("no answer to a call whose body stalled: %v", err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusBadRequest {
				t.Errorf("status %d; want 400", resp.StatusCode)
			}
		})
	}
}

// Any request whose body stops coming is let go of after a while, not
// only a Management API call: a handler that does not read the body (the
// live page, socks.js, a refused upgrade, a 403) leaves net/http to read
// what is left of it (up to 256 KB) before the connection can be reused,
// and one that reads it (the site's POST /chatter-id) waits for it. With
// no deadline after the headers, either held the connection and a
// goroutine for ever: a few thousand such sockets from anyone who reaches
// the port ran the gateway out of files.
func TestARequestWhoseBodyStallsIsLetGo(t *testing.T) {
	site := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost {
			if _, err := io.ReadAll(r.Body); err != nil {
				http.Error(w, "could not read the body", http.StatusBadRequest)
				return
			}
		}
		_, _ = io.WriteString(w, "site")
	})
	h := newFakeHandler()
	h.connect = func(event) (response, error) { return response{StatusCode: http.StatusUnauthorized}, nil }
	_, addr := start(t, h, Options{Site: site, bodyWait: 50 * time.Millisecond})
	_, bare := start(t, newFakeHandler(), Options{bodyWait: 50 * time.Millisecond})
	key := "dGhlIHNhbXBsZSBub25jZQ=="
	for _, tc := range []struct {
		name, addr, head string
	}{
		{"a file of the site that reads no body", addr, "GET /socks.js HTTP/1.1\r\nHost: " + addr},
		{"a site call that reads its body", addr, "POST /chatter-id HTTP/1.1\r\nHost: " + addr},
		{"an upgrade its $connect refuses", addr, "GET / HTTP/1.1\r\nHost: " + addr + "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: " + key},
		{"a Management API call naming another host", addr, "POST /@connections/someone HTTP/1.1\r\nHost: rebind.attacker.example"},
		{"a path the gateway has no resource for", bare, "POST /elsewhere HTTP/1.1\r\nHost: " + bare},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := net.Dial("tcp", tc.addr)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			_ = c.SetDeadline(time.Now().Add(wait))
			fmt.Fprintf(c, "%s\r\nContent-Length: 100\r\n\r\nonly a part", tc.head)
			r := bufio.NewReader(c)
			resp, err := http.ReadResponse(r, nil)
			if err != nil {
				t.Fatalf("no answer to a request whose body stalled: %v", err)
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if _, err := r.ReadByte(); err != io.EOF {
				t.Fatalf("status %d, then %v; want the connection closed (EOF) once the body stalled", resp.StatusCode, err)
			}
		})
	}
}

// TestAClientThatReadsNoAnswerIsLetGo: a client that sends requests and
// reads none of the answers (pipelined requests for socks.js, say) fills
// the socket until the gateway's write blocks. With no write deadline it
// blocked for ever, holding the connection and a goroutine; now the write
// gives up after a while and the connection is closed.
func TestAClientThatReadsNoAnswerIsLetGo(t *testing.T) {
	closed := make(chan string, 64)
	big := bytes.Repeat([]byte("x"), 64<<10)
	site := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = w.Write(big) })
	_, addr := start(t, newFakeHandler(), Options{Site: site, responseWait: 50 * time.Millisecond, connState: func(c net.Conn, s http.ConnState) {
		if s == http.StateClosed {
			closed <- c.RemoteAddr().String()
		}
	}})
	c, err := net.DialTCP("tcp", nil, mustResolve(t, addr))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetReadBuffer(4096)
	_ = c.SetDeadline(time.Now().Add(wait))
	// More than the sockets' buffers hold (a few MB on loopback), never read.
	req := "GET /socks.js HTTP/1.1\r\nHost: " + addr + "\r\n\r\n"
	go func() { _, _ = io.WriteString(c, strings.Repeat(req, 2000)) }()
	timeout := time.After(wait)
	for {
		select {
		case a := <-closed:
			if a == c.LocalAddr().String() {
				return
			}
		case <-timeout:
			t.Fatalf("a client that reads no answer still holds its connection after %v", wait)
		}
	}
}

func mustResolve(t *testing.T, addr string) *net.TCPAddr {
	t.Helper()
	a, err := net.ResolveTCPAddr("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// TestBadManagementRequestsGetTheRightStatus sends the Management API what
// a broken producer might: each gets its status, with an error type and a
// body that does not echo the input, and the live connection is untouched.
func TestBadManagementRequestsGetTheRightStatus(t *testing.T) {
	h := newFakeHandler()
	g, addr := start(t, h, Options{})
	_, id := connect(t, h, addr)
	base := "http://" + addr + "/@connections/"
	// Long, with room for the rest of the request in its 10,240 bytes.
	hugeID := strings.Repeat("Z", 8000)
	for _, tc := range []struct {
		name, method, path string
		body               []byte
		chunked            bool
		want               int
	}{
		{"an unknown method is 405", http.MethodPut, base + url.PathEscape(id), []byte("x"), false, http.StatusMethodNotAllowed},
		{"an empty connection ID is 403", http.MethodPost, base, []byte("x"), false, http.StatusForbidden},
		{"a connection ID with an escaped slash is 410, no such connection", http.MethodPost, base + "a%2Fb", []byte("x"), false, http.StatusGone},
		{"a path below a connection ID is 403", http.MethodGet, base + url.PathEscape(id) + "/more", nil, false, http.StatusForbidden},
		{"an unknown connection ID is 410", http.MethodPost, base + "nope", []byte("x"), false, http.StatusGone},
		{"an 8 KB connection ID is 410", http.MethodGet, base + hugeID, nil, false, http.StatusGone},
		{"an ID of invalid UTF-8 is 410", http.MethodDelete, base + "%FF%FE", nil, false, http.StatusGone},
		{"a body over 128 KB is 413", http.MethodPost, base + url.PathEscape(id), bytes.Repeat([]byte("x"), pubsub.MaxMessageBytes+1), false, http.StatusRequestEntityTooLarge},
		{"a chunked body over 128 KB is 413", http.MethodPost, base + url.PathEscape(id), bytes.Repeat([]byte("x"), pubsub.MaxMessageBytes+1), true, http.StatusRequestEntityTooLarge},
		// Any call's, as with --require-signature: a DELETE with such a
		// body closed the connection, answered 204.
		{"a GET with a body over 128 KB is 413", http.MethodGet, base + url.PathEscape(id), bytes.Repeat([]byte("x"), pubsub.MaxMessageBytes+1), false, http.StatusRequestEntityTooLarge},
		{"a GET with a chunked body over 128 KB is 413", http.MethodGet, base + url.PathEscape(id), bytes.Repeat([]byte("x"), pubsub.MaxMessageBytes+1), true, http.StatusRequestEntityTooLarge},
		{"a DELETE with a body over 128 KB is 413", http.MethodDelete, base + url.PathEscape(id), bytes.Repeat([]byte("x"), pubsub.MaxMessageBytes+1), false, http.StatusRequestEntityTooLarge},
		{"a DELETE with a chunked body over 128 KB is 413", http.MethodDelete, base + url.PathEscape(id), bytes.Repeat([]byte("x"), pubsub.MaxMessageBytes+1), true, http.StatusRequestEntityTooLarge},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var body io.Reader = bytes.NewReader(tc.body)
			if tc.chunked {
				body = io.MultiReader(bytes.NewReader(tc.body)) // no length: sent chunked
			}
			req, err := http.NewRequestWithContext(ctxT(t), tc.method, tc.path, body)
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set("Authorization", "AWS4-HMAC-SHA256 Credential=local/20260101/us-east-1/execute-api/aws4_request, SignedHeaders=host, Signature=00")
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tc.want {
				t.Errorf("status %d %q; want %d", resp.StatusCode, b, tc.want)
			}
			if strings.Contains(string(b), hugeID) || len(b) > 1024 {
				t.Errorf("the answer (%d bytes) echoes the request", len(b))
			}
		})
	}
	if g.Count() != 1 {
		t.Errorf("Count = %d after the bad requests; want the one connection still open", g.Count())
	}
}

func TestWithCredentialsOnlySignedManagementCallsPass(t *testing.T) {
	h := newFakeHandler()
	creds := &Credentials{AccessKeyID: "AKSOCKSTEST", SecretAccessKey: "s3cret-for-the-test"}
	g, addr := start(t, h, Options{Stage: "dev", Credentials: creds})
	ws, id := connect(t, h, addr)
	client := func(key, secret string) *apigatewaymanagementapi.Client {
		return apigatewaymanagementapi.New(apigatewaymanagementapi.Options{
			Region:       "eu-west-1",
			BaseEndpoint: aws.String(g.ManagementEndpoint(addr)),
			Credentials:  credentials.NewStaticCredentialsProvider(key, secret, ""),
		})
	}

	// The SDK's own client, signing with the key pair, works.
	good := client(creds.AccessKeyID, creds.SecretAccessKey)
	if _, err := good.PostToConnection(ctxT(t), &apigatewaymanagementapi.PostToConnectionInput{ConnectionId: &id, Data: []byte(`{"signed":true}`)}); err != nil {
		t.Fatalf("a signed PostToConnection: %v", err)
	}
	if got := string(readMessage(t, ws)); got != `{"signed":true}` {
		t.Fatalf("the client got %q", got)
	}
	if _, err := good.GetConnection(ctxT(t), &apigatewaymanagementapi.GetConnectionInput{ConnectionId: &id}); err != nil {
		t.Fatalf("a signed GetConnection: %v", err)
	}

	for _, tc := range []struct {
		name string
		call func() error
	}{
		{"a wrong secret", func() error {
			_, err := client(creds.AccessKeyID, "wrong").PostToConnection(ctxT(t), &apigatewaymanagementapi.PostToConnectionInput{ConnectionId: &id, Data: []byte("x")})
			return err
		}},
		{"another access key", func() error {
			_, err := client("AKOTHER", creds.SecretAccessKey).GetConnection(ctxT(t), &apigatewaymanagementapi.GetConnectionInput{ConnectionId: &id})
			return err
		}},
		{"no signature at all", func() error {
			anonymous := apigatewaymanagementapi.New(apigatewaymanagementapi.Options{
				Region: "eu-west-1", BaseEndpoint: aws.String(g.ManagementEndpoint(addr)), Credentials: aws.AnonymousCredentials{},
			})
			_, err := anonymous.DeleteConnection(ctxT(t), &apigatewaymanagementapi.DeleteConnectionInput{ConnectionId: &id})
			return err
		}},
	} {
		t.Run(tc.name+" is forbidden", func(t *testing.T) {
			var forbidden *types.ForbiddenException
			if err := tc.call(); !errors.As(err, &forbidden) {
				t.Errorf("got %v; want ForbiddenException", err)
			}
		})
	}
	t.Run("a made-up signature is forbidden", func(t *testing.T) {
		resp := rawManagement(t, http.MethodPost, "http://"+addr+"/dev/@connections/"+url.PathEscape(id), []byte("x"), true)
		if resp.StatusCode != http.StatusForbidden {
			t.Errorf("got %d; want 403", resp.StatusCode)
		}
	})
	t.Run("a signed body swapped in transit is forbidden", func(t *testing.T) {
		req, _ := http.NewRequestWithContext(ctxT(t), http.MethodPost, "http://"+addr+"/dev/@connections/"+url.PathEscape(id), strings.NewReader("original"))
		sum := sha256.Sum256([]byte("original"))
		if err := v4.NewSigner().SignHTTP(ctxT(t), aws.Credentials{AccessKeyID: creds.AccessKeyID, SecretAccessKey: creds.SecretAccessKey}, req, hex.EncodeToString(sum[:]), "execute-api", "eu-west-1", time.Now()); err != nil {
			t.Fatal(err)
		}
		req.Body = io.NopCloser(strings.NewReader("tampered"))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusForbidden {
			t.Errorf("got %d; want 403", resp.StatusCode)
		}
	})
	if g.Count() != 1 {
		t.Errorf("Count = %d; the refused DeleteConnection must not have closed the connection", g.Count())
	}
	// Nothing the refused calls sent arrived: the next message is the
	// next signed one.
	if _, err := good.PostToConnection(ctxT(t), &apigatewaymanagementapi.PostToConnectionInput{ConnectionId: &id, Data: []byte("last")}); err != nil {
		t.Fatal(err)
	}
	if got := string(readMessage(t, ws)); got != "last" {
		t.Errorf("the client got %q after the refused calls; want only the signed %q", got, "last")
	}
}

func TestConcurrentConnectsNeverPassTheGatewayCap(t *testing.T) {
	h := newFakeHandler()
	g, addr := start(t, h, Options{MaxConnections: 3})
	const n = 12
	var wg sync.WaitGroup
	var accepted, refused atomic.Int64
	conns := make(chan *websocket.Conn, n)
	for range n {
		wg.Go(func() {
			ws, resp, err := dial(t, addr, "/", nil, nil)
			switch {
			case err == nil:
				accepted.Add(1)
				conns <- ws
			case resp != nil && resp.StatusCode == http.StatusServiceUnavailable:
				refused.Add(1)
			default:
				t.Errorf("dial: %v", err)
			}
		})
	}
	wg.Wait()
	close(conns)
	if accepted.Load() != 3 || refused.Load() != n-3 {
		t.Errorf("%d accepted, %d refused; want exactly 3 and %d", accepted.Load(), refused.Load(), n-3)
	}
	if g.Count() > 3 {
		t.Errorf("Count = %d; want at most 3", g.Count())
	}
	for ws := range conns {
		ws.Close()
	}
}

// Connection IDs keep API Gateway's shape, differ, and those made one
// after the other start with numbers one after the other, so that their
// records sort together; the rest of each is random.
func TestConnectionIDsFollowEachOther(t *testing.T) {
	var prev uint32
	seen := make(map[string]bool)
	for i := range 300 {
		id := newConnID()
		b, err := base64.URLEncoding.DecodeString(id)
		if len(id) != 16 || err != nil || len(b) != 11 {
			t.Fatalf("connection ID %q is not 16 characters of base64 of 11 bytes", id)
		}
		if seen[id] {
			t.Fatalf("connection ID %q made twice", id)
		}
		seen[id] = true
		n := uint32(b[0])<<16 | uint32(b[1])<<8 | uint32(b[2])
		// Another test's connect in between may take a number too.
		if step := (n - prev) & 0xffffff; i > 0 && (step < 1 || step > 1000) {
			t.Fatalf("connection ID %q numbered %d after %d", id, n, prev)
		}
		prev = n
	}
}

// A client the gateway closes (Shutdown's 1001, a DELETE's 1000) first
// gets what was posted to it and still waits in its backlog, in order,
// then the close frame: the broker counted those messages delivered.
func TestAClosedClientGetsItsBacklogBeforeTheCloseFrame(t *testing.T) {
	for _, tc := range []struct {
		name  string
		close func(t *testing.T, g *Gateway, addr, id string, ws *websocket.Conn)
		code  int
	}{
		{"shutdown", func(t *testing.T, g *Gateway, _, _ string, _ *websocket.Conn) {
			ctx, cancel := context.WithTimeout(context.Background(), 6*wait)
			defer cancel()
			if err := g.Shutdown(ctx); err != nil {
				t.Errorf("Shutdown: %v", err)
			}
		}, websocket.CloseGoingAway},
		{"DELETE", func(t *testing.T, _ *Gateway, addr, id string, _ *websocket.Conn) {
			if status := rawManagement(t, http.MethodDelete, "http://"+addr+"/@connections/"+url.PathEscape(id), nil, true).StatusCode; status != http.StatusNoContent {
				t.Errorf("DELETE: status %d", status)
			}
		}, websocket.CloseNormalClosure},
		// The client's own close frame is answered after the backlog
		// too: the socket was closed under it, so the client saw 1006
		// (abnormal closure, no answer to its close) and lost the
		// messages the broker had counted delivered.
		{"the client's close frame", func(t *testing.T, _ *Gateway, _, _ string, ws *websocket.Conn) {
			if err := ws.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, "bye"), time.Now().Add(wait)); err != nil {
				t.Errorf("close frame: %v", err)
			}
		}, websocket.CloseNormalClosure},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newFakeHandler()
			g, addr, ws, id := slowClient(t, h, Options{}, 4096)
			var want [][]byte
			for i := 0; ; i++ {
				if i == 5000 {
					t.Fatal("5000 posts and the backlog is still short: the test did not reach it")
				}
				body := append([]byte(strconv.Itoa(i)+":"), bytes.Repeat([]byte("x"), 1000)...)
				if err := g.Pusher().Post(ctxT(t), id, body); err != nil {
					t.Fatalf("post %d: %v", i, err)
				}
				want = append(want, body)
				// More than the flusher takes at once (flushChunk)
				// behind what it is writing. The small buffers keep it
				// slow (a delayed ACK for every 4 KiB), so all of that is
				// still queued when the close comes.
				if c := g.lookup(context.Background(), id); c != nil && c.fc.queuedBytes() > flushChunk+16<<10 {
					break
				}
			}
			closed := make(chan struct{})
			go func() {
				defer close(closed)
				tc.close(t, g, addr, id, ws)
			}()
			for i, w := range want {
				if got := readMessage(t, ws); !bytes.Equal(got, w) {
					t.Fatalf("message %d of %d: got %d bytes starting %q; want %q...", i, len(want), len(got), got[:min(len(got), 8)], w[:8])
				}
			}
			if code, _ := readClose(t, ws); code != tc.code {
				t.Errorf("close %d after the backlog; want %d", code, tc.code)
			}
			<-closed
		})
	}
}

// TestACallWithoutTheKeyIsRefusedBeforeItsBodyIsRead: on a gateway that
// requires signatures (off loopback, anyone may call), a call that is not
// signed, or not with the gateway's access key, or signed at a time out
// of bounds, is refused before its body is read: it used to be read
// first (up to 128 KB, for up to 30 s), so anyone could make the gateway
// hold a body per call it opened.
func TestACallWithoutTheKeyIsRefusedBeforeItsBodyIsRead(t *testing.T) {
	h := newFakeHandler()
	creds := &Credentials{AccessKeyID: "AKSOCKSTEST", SecretAccessKey: "s3cret-for-the-test"}
	_, addr := start(t, h, Options{Credentials: creds})
	now := time.Now().UTC()
	for name, auth := range map[string]string{
		"not SigV4":          "Bearer abc",
		"another access key": "AWS4-HMAC-SHA256 Credential=AKOTHER/" + now.Format("20060102") + "/us-east-1/execute-api/aws4_request, SignedHeaders=host;x-amz-date, Signature=00",
		"signed an hour ago": "AWS4-HMAC-SHA256 Credential=AKSOCKSTEST/" + now.Add(-time.Hour).Format("20060102") + "/us-east-1/execute-api/aws4_request, SignedHeaders=host;x-amz-date, Signature=00",
	} {
		t.Run(name, func(t *testing.T) {
			date := now.Format("20060102T150405Z")
			if strings.Contains(name, "hour") {
				date = now.Add(-time.Hour).Format("20060102T150405Z")
			}
			c, err := net.DialTimeout("tcp", addr, wait)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			_ = c.SetDeadline(time.Now().Add(wait))
			// The body is promised, and would be sent after a 100 Continue.
			fmt.Fprintf(c, "POST /@connections/someone HTTP/1.1\r\nHost: %s\r\nAuthorization: %s\r\nX-Amz-Date: %s\r\nContent-Length: %d\r\nExpect: 100-continue\r\n\r\n",
				addr, auth, date, pubsub.MaxMessageBytes)
			resp, err := http.ReadResponse(bufio.NewReader(c), nil)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusForbidden {
				t.Errorf("status %d; want 403 before the body (no 100 Continue)", resp.StatusCode)
			}
		})
	}
}

// TestAPageRebindingItsNameToLoopbackCannotCallTheManagementAPI: on
// loopback without a key pair, the Management API takes any Authorization
// header, which a page in the developer's browser cannot add to a request
// to 127.0.0.1. But a page that points its own name at 127.0.0.1 (DNS
// rebinding) calls the gateway as its own origin and may add any header:
// with a connection's ID it could push to it, read who it is or close it.
// Those calls name the page's host: refused with 403, the client untouched.
func TestAPageRebindingItsNameToLoopbackCannotCallTheManagementAPI(t *testing.T) {
	h := newFakeHandler()
	_, addr := start(t, h, Options{})
	ws, id := connect(t, h, addr)
	_, port, _ := net.SplitHostPort(addr)
	call := func(method, host, body string) (int, string) {
		t.Helper()
		req, err := http.NewRequest(method, "http://"+addr+"/@connections/"+url.PathEscape(id), strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		req.Host = host
		req.Header.Set("Authorization", "anything a page likes")
		req.Header.Set("Content-Type", "text/plain")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		got, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(got)
	}
	for _, host := range []string{"rebind.attacker.example:" + port, "rebind.attacker.example", "127.0.0.1.attacker.example:" + port} {
		for _, method := range []string{http.MethodPost, http.MethodGet, http.MethodDelete} {
			if code, body := call(method, host, "forged"); code != http.StatusForbidden || strings.Contains(body, "sourceIp") {
				t.Errorf("%s with Host %s: %d %q, want 403", method, host, code, body)
			}
		}
	}
	// The client is still open and got nothing from those calls: the
	// first message it reads is the one posted through a loopback name.
	for _, host := range []string{addr, "localhost:" + port} {
		if code, body := call(http.MethodPost, host, "from "+host); code != http.StatusOK {
			t.Fatalf("POST with Host %s: %d %q, want 200", host, code, body)
		}
		if got := string(readMessage(t, ws)); got != "from "+host {
			t.Fatalf("client read %q, want %q", got, "from "+host)
		}
	}
}

// TestAnotherSitesPageCannotCallTheManagementAPI: on loopback without a
// key pair the Management API takes any Authorization header, on the
// premise that a page in the developer's browser cannot send one to
// 127.0.0.1: a fetch with it is preflighted, and the preflight must not
// pass; what a page may send without one (a form, a no-cors fetch) must
// do nothing. Any call a browser says another site's page sent
// (Sec-Fetch-Site) is refused, even with the header. No answer allows the
// page to read it.
func TestAnotherSitesPageCannotCallTheManagementAPI(t *testing.T) {
	h := newFakeHandler()
	_, addr := start(t, h, Options{})
	ws, id := connect(t, h, addr)
	u := "http://" + addr + "/@connections/" + url.PathEscape(id)
	for _, tc := range []struct {
		name, method string
		header       map[string]string
	}{
		{"a preflight for a POST with Authorization", http.MethodOptions, map[string]string{"Origin": "https://evil.example", "Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "authorization,content-type", "Sec-Fetch-Site": "cross-site", "Sec-Fetch-Mode": "cors"}},
		{"a preflight for a DELETE", http.MethodOptions, map[string]string{"Origin": "https://evil.example", "Access-Control-Request-Method": "DELETE", "Sec-Fetch-Site": "cross-site", "Sec-Fetch-Mode": "cors"}},
		{"a form's POST", http.MethodPost, map[string]string{"Origin": "https://evil.example", "Content-Type": "text/plain", "Sec-Fetch-Site": "cross-site", "Sec-Fetch-Mode": "navigate"}},
		{"a no-cors fetch's POST", http.MethodPost, map[string]string{"Origin": "null", "Content-Type": "application/x-www-form-urlencoded", "Sec-Fetch-Site": "cross-site", "Sec-Fetch-Mode": "no-cors"}},
		// Were a browser to add an Authorization header itself, from
		// HTTP authentication the user once gave this address (Chromium
		// 156 does not, cross-site), a script could not have.
		{"a no-cors fetch's POST to which the browser added Authorization", http.MethodPost, map[string]string{"Origin": "https://evil.example", "Authorization": "Basic dXNlcjpwYXNz", "Content-Type": "text/plain", "Sec-Fetch-Site": "cross-site", "Sec-Fetch-Mode": "no-cors"}},
		{"a same-site page's DELETE to which the browser added Authorization", http.MethodDelete, map[string]string{"Origin": "http://localhost:3000", "Authorization": "Basic dXNlcjpwYXNz", "Sec-Fetch-Site": "same-site", "Sec-Fetch-Mode": "no-cors"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req, err := http.NewRequest(tc.method, u, strings.NewReader("forged"))
			if err != nil {
				t.Fatal(err)
			}
			for k, v := range tc.header {
				req.Header.Set(k, v)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusForbidden {
				t.Errorf("status %d; want 403", resp.StatusCode)
			}
			for k := range resp.Header {
				if strings.HasPrefix(k, "Access-Control-") {
					t.Errorf("answered with %s: %q", k, resp.Header.Get(k))
				}
			}
		})
	}
	// The client got none of those: the first message it reads is this.
	if err := postUnsigned(addr, id, "from this machine"); err != nil {
		t.Fatal(err)
	}
	if got := string(readMessage(t, ws)); got != "from this machine" {
		t.Fatalf("client read %q", got)
	}
}

func postUnsigned(addr, id, body string) error {
	req, err := http.NewRequest(http.MethodPost, "http://"+addr+"/@connections/"+url.PathEscape(id), strings.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "unsigned")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("POST: %s", resp.Status)
	}
	return nil
}

// TestOnceShutdownBeginsUpgradesAreRefusedSayingSo: from StopAccepting
// (serve calls it as Ctrl-C's shutdown begins, before it waits for the
// broker) a new client gets 503 saying that the gateway is shutting down,
// with a Retry-After, and no $connect; the clients already connected keep
// getting their messages until Shutdown closes them. New clients were
// accepted during that wait, and the upgrades Shutdown refused got a bare
// "Service Unavailable".
func TestOnceShutdownBeginsUpgradesAreRefusedSayingSo(t *testing.T) {
	h := newFakeHandler()
	g, addr := start(t, h, Options{})
	ws, id := connect(t, h, addr)
	g.StopAccepting()

	tag := strconv.FormatInt(tagCounter.Add(1), 10)
	_, resp, err := dial(t, addr, "/", url.Values{"tag": {tag}}, nil)
	if err == nil || resp == nil {
		t.Fatalf("an upgrade after StopAccepting: err %v, response %v; want a 503", err, resp)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable || !strings.Contains(string(body), "shutting down") || resp.Header.Get("Retry-After") == "" {
		t.Errorf("got %s %q (Retry-After %q); want 503 saying the gateway is shutting down, with a Retry-After", resp.Status, body, resp.Header.Get("Retry-After"))
	}
	if h.idOf(tag) != "" {
		t.Error("the refused upgrade reached $connect")
	}
	if err := g.Pusher().Post(ctxT(t), id, []byte("still here")); err != nil {
		t.Fatalf("posting to a client connected before: %v", err)
	}
	if got := readMessage(t, ws); string(got) != "still here" {
		t.Errorf("the client connected before read %q", got)
	}
}

// A gateway that was itself stopped (SIGSTOP, a paused VM) for longer than
// the pong wait sent no pings meanwhile, so its clients had nothing to
// answer: the read deadline that passed while it did not run is put off
// (and the next ping tells), rather than every client being closed for
// ping timeout at once when it runs again. A deadline that passes on time
// with nothing from the client still closes it. The stop is stood for by
// a deadline set a pong wait in the past.
func TestAGatewayThatWasStoppedDoesNotCloseItsClientsForPingTimeout(t *testing.T) {
	h := newFakeHandler()
	// Each check's verdict, with when the reader gave it: a check given
	// over stallSlack after its deadline was noticed late by the reader
	// itself (this machine did not run it), so "alive" is then right.
	type check struct {
		alive bool
		at    time.Time
	}
	checked := make(chan check, 4)
	g, _, _, id := slowClient(t, h, Options{readTimedOut: func(alive bool) { checked <- check{alive, time.Now()} }}, 64<<10)
	fc := readingConn(t, g, id)
	passes := func(deadline time.Time) check {
		t.Helper()
		_ = fc.SetReadDeadline(deadline)
		select {
		case c := <-checked:
			return c
		case <-time.After(wait):
			t.Fatalf("the read deadline passed and the reader did not check it in %v", wait)
			return check{}
		}
	}
	if !passes(time.Now().Add(-pongWait)).alive {
		t.Fatal("a client whose pong wait passed while the gateway did not run was closed for ping timeout")
	}
	// A deadline that passes on time closes the client, unless this
	// machine held the reader back for over stallSlack: then the check
	// tells nothing and is made again, a bounded number of times.
	for try := 1; ; try++ {
		deadline := time.Now()
		c := passes(deadline)
		if !c.alive {
			break
		}
		if c.at.Sub(deadline) <= stallSlack {
			t.Fatalf("a client that sent nothing for a pong wait that passed on time was kept (checked %v after its deadline)", c.at.Sub(deadline))
		}
		if try == 5 {
			t.Fatalf("the reader noticed each of %d deadlines over %v late: this machine is too busy to tell", try, stallSlack)
		}
	}
	rc := h.waitDisconnect(t, id).RequestContext
	if rc.DisconnectStatusCode != websocket.CloseAbnormalClosure || rc.DisconnectReason == nil || *rc.DisconnectReason != "ping timeout" {
		t.Errorf("$disconnect %d %v, want 1006 ping timeout", rc.DisconnectStatusCode, rc.DisconnectReason)
	}
}

// jsEmptyPost is PostToConnection with empty Data as the AWS SDK for
// JavaScript v3 (3.750.0) sent it, signed with AWS's example key pair: it
// signs "content-length:0", which the AWS SDK for Go's signer never does.
const jsEmptyPost = "POST /dev/@connections/abc%3D HTTP/1.1\r\n" +
	"Host: 127.0.0.1:8080\r\n" +
	"Content-Type: application/octet-stream\r\n" +
	"Content-Length: 0\r\n" +
	"X-Amz-User-Agent: aws-sdk-js/3.750.0\r\n" +
	"User-Agent: aws-sdk-js/3.750.0 ua/2.1 os/linux#6.18.44-fc-v595 lang/js md/nodejs#20.20.2 api/apigatewaymanagementapi#3.750.0 m/N,E,e\r\n" +
	"Amz-Sdk-Invocation-Id: 01df21b8-f389-4687-b1b7-837216138254\r\n" +
	"Amz-Sdk-Request: attempt=1; max=3\r\n" +
	"X-Amz-Date: 20261130T190541Z\r\n" +
	"X-Amz-Content-Sha256: e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855\r\n" +
	"Authorization: AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20261130/eu-west-1/execute-api/aws4_request, SignedHeaders=amz-sdk-invocation-id;amz-sdk-request;content-length;content-type;host;x-amz-content-sha256;x-amz-date;x-amz-user-agent, Signature=8345d6323776297ddb1bee423684f3e717972765598dadd4ed571a1c89550a25\r\n" +
	"\r\n"

// TestAnEmptyBodySignedWithItsContentLengthIsLetIn: the verifier accepts
// the JavaScript SDK's signature over "content-length:0" (it used to
// refuse it: the Go signer it re-signs with leaves a zero Content-Length
// out), and still refuses that request with any signed part changed, or
// with a body the signature did not cover.
func TestAnEmptyBodySignedWithItsContentLengthIsLetIn(t *testing.T) {
	if err := jsVerifies(t, []byte(jsEmptyPost)); err != nil {
		t.Fatalf("the JavaScript SDK's empty post was refused: %v", err)
	}
	for name, change := range map[string][2]string{
		"another connection":        {"abc%3D", "abd%3D"},
		"another content type":      {"application/octet-stream", "application/octet-strean"},
		"another invocation":        {"01df21b8", "01df21b9"},
		"a body it did not sign":    {"Content-Length: 0\r\n", "Content-Length: 1\r\n"},
		"content-length not signed": {"content-length;content-type", "content-type"},
		"another signature":         {"Signature=8345", "Signature=8346"},
	} {
		wire := strings.Replace(jsEmptyPost, change[0], change[1], 1)
		if name == "a body it did not sign" {
			wire += "x"
		}
		if wire == jsEmptyPost {
			t.Fatalf("%s: the change %q is not in the request", name, change[0])
		}
		if err := jsVerifies(t, []byte(wire)); !errors.Is(err, errBadSignature) {
			t.Errorf("%s: verify said %v; want %v", name, err, errBadSignature)
		}
	}
}

// jsVerifies returns the verifier's answer to wire, a request signed with
// the key pair and at the time of jsEmptyPost.
func jsVerifies(t testing.TB, wire []byte) error {
	t.Helper()
	creds := Credentials{AccessKeyID: "AKIDEXAMPLE", SecretAccessKey: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"}
	r, body, err := serverSide(wire)
	if err != nil {
		t.Fatalf("reading the request: %v", err)
	}
	auth, err := parseSigV4(r, creds, time.Date(2026, 11, 30, 19, 6, 0, 0, time.UTC))
	if err != nil {
		return err
	}
	return auth.verify(r, body, creds)
}

// TestAnEmptyPostIsDeliveredAsAnEmptyMessage: API Gateway's
// PostToConnection takes Data of 0 to 131072 bytes (its model's length
// constraint), so an empty post is answered 200 and the client gets an
// empty text message, as any other: with and without signatures, from the
// AWS SDK for Go's client (which leaves Content-Length: 0 unsigned).
func TestAnEmptyPostIsDeliveredAsAnEmptyMessage(t *testing.T) {
	for name, creds := range map[string]*Credentials{
		"unsigned on loopback": nil,
		"signed":               {AccessKeyID: "AKSOCKSTEST", SecretAccessKey: "s3cret-for-the-test"},
	} {
		t.Run(name, func(t *testing.T) {
			h := newFakeHandler()
			g, addr := start(t, h, Options{Credentials: creds})
			ws, id := connect(t, h, addr)
			key := Credentials{AccessKeyID: "local", SecretAccessKey: "local"}
			if creds != nil {
				key = *creds
			}
			api := apigatewaymanagementapi.New(apigatewaymanagementapi.Options{
				Region:       "eu-west-1",
				BaseEndpoint: aws.String(g.ManagementEndpoint(addr)),
				Credentials:  credentials.NewStaticCredentialsProvider(key.AccessKeyID, key.SecretAccessKey, ""),
			})
			for _, data := range []string{"", "after"} {
				if _, err := api.PostToConnection(ctxT(t), &apigatewaymanagementapi.PostToConnectionInput{ConnectionId: &id, Data: []byte(data)}); err != nil {
					t.Fatalf("PostToConnection(%q): %v", data, err)
				}
			}
			for _, want := range []string{"", "after"} {
				_ = ws.SetReadDeadline(time.Now().Add(wait))
				kind, got, err := ws.ReadMessage()
				if err != nil || kind != websocket.TextMessage || string(got) != want {
					t.Fatalf("the client read %d %q, %v; want the text message %q", kind, got, err, want)
				}
			}
		})
	}
}

// TestAWebSocketOutlivesThePlainRequestsBounds: a request's bounds
// (bodyWait on its body, responseWait on its answer: the socket's read and
// write deadlines) end with the upgrade, so a client quiet for longer
// still receives what is posted to it and is heard when it sends, with a
// subprotocol or without. The bounds here are long enough that no connect
// on a busy machine reaches them, and longer than any deadline the
// WebSocket sets: once upgraded, a deadline set on the socket at or past
// its accept plus the bound can only be one of theirs left behind, which
// would end the connection once passed. (It used to be shown with 20 ms
// bounds and a sleep past them, and a connect or a post that took longer
// than 20 ms on a loaded machine failed the test.)
func TestAWebSocketOutlivesThePlainRequestsBounds(t *testing.T) {
	h := newFakeHandler()
	h.connect = func(ev event) (response, error) {
		resp := response{StatusCode: 200}
		if ev.Headers["Sec-Websocket-Protocol"] != "" {
			resp.Headers = map[string]string{"sec-websocket-protocol": "b"}
		}
		return resp, nil
	}
	const bound = 1000 * time.Hour
	ln := newDeadlineListener(t)
	g, addr := startOn(t, h, Options{bodyWait: bound, responseWait: bound}, ln)
	plain, plainID := connect(t, h, addr)
	d := *websocket.DefaultDialer
	d.Subprotocols = []string{"a", "b"}
	sub, subID := connectWith(t, h, &d, addr, "/")
	if sub.Subprotocol() != "b" {
		t.Fatalf("subprotocol %q; want b", sub.Subprotocol())
	}
	noBoundLeft := func(name, when string, ws *websocket.Conn) {
		t.Helper()
		c := ln.conn(t, ws.LocalAddr())
		read, write := c.deadlines()
		if end := c.accepted.Add(bound); !read.Before(end) || !write.Before(end) {
			t.Errorf("%s, %s: the socket's read deadline is %v and its write deadline %v; want neither the request's bound (%v from its accept at %v)",
				name, when, read, write, bound, c.accepted)
		}
	}
	for _, c := range []struct {
		name string
		ws   *websocket.Conn
		id   string
	}{{"plain", plain, plainID}, {"with a subprotocol", sub, subID}} {
		noBoundLeft(c.name, "once upgraded", c.ws)
		if err := g.Pusher().Post(context.Background(), c.id, []byte("pushed")); err != nil {
			t.Fatalf("%s: push: %v", c.name, err)
		}
		if got := string(readMessage(t, c.ws)); got != "pushed" {
			t.Fatalf("%s: client read %q", c.name, got)
		}
		if err := postUnsigned(addr, c.id, "posted"); err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		if got := string(readMessage(t, c.ws)); got != "posted" {
			t.Fatalf("%s: client read %q", c.name, got)
		}
		body := "sent by the " + c.name + " client"
		if err := c.ws.WriteMessage(websocket.TextMessage, []byte(body)); err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		h.waitFor(t, "the "+c.name+" client's message", func(ev event) bool {
			return ev.RequestContext.EventType == "MESSAGE" && ev.Body == body
		})
		noBoundLeft(c.name, "after a push, a post and a message", c.ws)
	}
}

// deadlineListener hands out its TCP connections as deadlineConns, and
// finds them again by their client's address.
type deadlineListener struct {
	net.Listener
	mu    sync.Mutex
	conns map[string]*deadlineConn
}

func newDeadlineListener(t *testing.T) *deadlineListener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return &deadlineListener{Listener: ln, conns: make(map[string]*deadlineConn)}
}

func (l *deadlineListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return c, err
	}
	tc, ok := c.(*net.TCPConn)
	if !ok {
		c.Close()
		return nil, fmt.Errorf("accepted a %T, not a TCP connection", c)
	}
	dc := &deadlineConn{TCPConn: tc, accepted: time.Now()}
	l.mu.Lock()
	l.conns[c.RemoteAddr().String()] = dc
	l.mu.Unlock()
	return dc, nil
}

// conn returns the accepted connection of the client at client.
func (l *deadlineListener) conn(t *testing.T, client net.Addr) *deadlineConn {
	t.Helper()
	l.mu.Lock()
	defer l.mu.Unlock()
	c := l.conns[client.String()]
	if c == nil {
		t.Fatalf("no connection was accepted from %s", client)
	}
	return c
}

// deadlineConn is a TCP connection that notes the read and write
// deadlines set on it last (the zero time: none).
type deadlineConn struct {
	*net.TCPConn
	accepted    time.Time // before any deadline was set
	mu          sync.Mutex
	read, write time.Time
}

func (c *deadlineConn) SetDeadline(t time.Time) error {
	c.mu.Lock()
	c.read, c.write = t, t
	c.mu.Unlock()
	return c.TCPConn.SetDeadline(t)
}

func (c *deadlineConn) SetReadDeadline(t time.Time) error {
	c.mu.Lock()
	c.read = t
	c.mu.Unlock()
	return c.TCPConn.SetReadDeadline(t)
}

func (c *deadlineConn) SetWriteDeadline(t time.Time) error {
	c.mu.Lock()
	c.write = t
	c.mu.Unlock()
	return c.TCPConn.SetWriteDeadline(t)
}

// deadlines returns the read and write deadlines set last.
func (c *deadlineConn) deadlines() (read, write time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.read, c.write
}

// TestAManagementCallFromThisOriginOrTypedByTheUserIsServed: the refusal
// of calls another site's page sent (TestAnotherSitesPageCannotCallTheManagementAPI)
// leaves alone a fetch typed into the devtools of the gateway's own page
// (same-origin) and a request the user made themselves (none).
func TestAManagementCallFromThisOriginOrTypedByTheUserIsServed(t *testing.T) {
	h := newFakeHandler()
	_, addr := start(t, h, Options{})
	ws, id := connect(t, h, addr)
	for _, site := range []string{"same-origin", "none"} {
		req, err := http.NewRequest(http.MethodPost, "http://"+addr+"/@connections/"+url.PathEscape(id), strings.NewReader(site))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Authorization", "unsigned")
		req.Header.Set("Sec-Fetch-Site", site)
		if site == "same-origin" {
			req.Header.Set("Origin", "http://"+addr)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("Sec-Fetch-Site %s: %s; want 200", site, resp.Status)
		}
		if got := string(readMessage(t, ws)); got != site {
			t.Fatalf("client read %q; want %q", got, site)
		}
	}
}

// TestAConnectionIsClosedWhenItsRecordExpiresByAClockSteppedForward: the
// connection's record expires at its connectedAt plus MaxDuration by the
// wall clock, after which the broker no longer finds it (nor the geek's
// cap counts it) and prune-stale deletes it. A wall clock stepped forward
// (a laptop resumed from sleep, whose monotonic clock did not run; a VM
// restored; NTP) left the connection open for up to 2 h more, receiving
// nothing. It is closed with 1001 as at its maximum duration, so that its
// client connects again; a step back does not close it early.
func TestAConnectionIsClosedWhenItsRecordExpiresByAClockSteppedForward(t *testing.T) {
	var wall atomic.Int64
	wall.Store(time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC).UnixNano())
	step := func(d time.Duration) { wall.Add(int64(d)) }
	tick, swept := make(chan time.Time), make(chan struct{})
	h := newFakeHandler()
	g, addr := start(t, h, Options{idleTick: tick, idleSwept: swept,
		Now:   func() time.Time { return time.Unix(0, wall.Load()) },
		since: func(time.Time) time.Duration { return 0 }})
	ws, id := connect(t, h, addr)
	fire := func() {
		t.Helper()
		select {
		case tick <- time.Now():
		case <-time.After(wait):
			t.Fatal("the sweep is not waiting")
		}
		select {
		case <-swept:
		case <-time.After(wait):
			t.Fatal("the sweep did not end")
		}
	}
	for _, d := range []time.Duration{-3 * time.Hour, 3 * time.Hour, pubsub.MaxConnectionDuration - time.Millisecond} {
		step(d)
		fire()
		if g.Count() != 1 {
			t.Fatalf("closed after the clock stepped %v", d)
		}
	}
	step(time.Millisecond)
	fire()
	wantClose(t, h, ws, id, websocket.CloseGoingAway, "Going away")
}
