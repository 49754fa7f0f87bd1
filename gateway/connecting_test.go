package gateway

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/socks-dev/socks/awsops"
	"github.com/socks-dev/socks/store"
)

// connectGate holds every $connect of a fakeHandler until the test lets it
// go: the way to be inside the moment between $connect writing the record
// and the upgrade, without a timing window.
type connectGate struct {
	entered chan string         // the connection ID of each $connect, once it is held
	release chan connectOutcome // what the held $connect answers
	waiting chan struct{}       // a call began to wait for a $connect (Options.awaitingConnect)
	dialed  chan dialOutcome    // dialAsync's result
}

type connectOutcome struct {
	resp response
	err  error
}

type dialOutcome struct {
	ws     *websocket.Conn
	status int // the refused handshake's status, or 0
	err    error
}

// gateConnects makes h's $connects wait for the test, and opts report a
// call waiting for one.
func gateConnects(h *fakeHandler, opts *Options) *connectGate {
	cg := &connectGate{
		entered: make(chan string, 1),
		release: make(chan connectOutcome, 1),
		waiting: make(chan struct{}, 8),
		dialed:  make(chan dialOutcome, 1),
	}
	h.connect = func(ev event) (response, error) {
		cg.entered <- ev.RequestContext.ConnectionID
		select {
		case o := <-cg.release:
			return o.resp, o.err
		case <-time.After(wait):
			return response{}, errors.New("the test never let the $connect go")
		}
	}
	opts.awaitingConnect = func() { cg.waiting <- struct{}{} }
	return cg
}

// dialAsync dials addr in the background; the result comes on cg.dialed.
func (cg *connectGate) dialAsync(t *testing.T, addr string) {
	go func() {
		ws, resp, err := dial(t, addr, "/", nil, nil)
		o := dialOutcome{ws: ws, err: err}
		if resp != nil && err != nil {
			o.status = resp.StatusCode
		}
		cg.dialed <- o
	}()
}

// held waits for the $connect and returns its connection ID.
func (cg *connectGate) held(t *testing.T) string {
	t.Helper()
	select {
	case id := <-cg.entered:
		return id
	case <-time.After(wait):
		t.Fatal("no $connect")
		return ""
	}
}

// awaitWaiting waits until a call waits for the held $connect.
func (cg *connectGate) awaitWaiting(t *testing.T) {
	t.Helper()
	select {
	case <-cg.waiting:
	case <-time.After(wait):
		t.Fatal("the call did not wait for the $connect")
	}
}

func (cg *connectGate) dialResult(t *testing.T) dialOutcome {
	t.Helper()
	select {
	case o := <-cg.dialed:
		return o
	case <-time.After(wait):
		t.Fatal("the dial did not end")
		return dialOutcome{}
	}
}

// registered returns how many connections g holds, open or in their
// $connect.
func registered(g *Gateway) int {
	g.mu.RLock()
	defer g.mu.RUnlock()
	return len(g.conns)
}

// A call made while a connection is in its $connect (its record written,
// the 101 not yet sent) waits for the $connect to end and is answered as
// what the connection became: a post is delivered right after the 101, a
// GET describes it, a DELETE closes it with 1000; a refused or failed
// $connect answers them 410 and leaves nothing behind. API Gateway answers
// 410 at once, and a broker would then delete the record of a connection
// about to open, which would never receive anything.
func TestACallDuringConnectIsAnsweredWhenTheConnectEnds(t *testing.T) {
	pushers := []struct {
		name   string
		pusher func(g *Gateway, addr string) store.Pusher
	}{
		{"in process", func(g *Gateway, _ string) store.Pusher { return g.Pusher() }},
		{"Management API", func(g *Gateway, addr string) store.Pusher { return awsops.NewPusher(sdkClient(g, addr)) }},
	}
	calls := []struct {
		name string
		call func(ctx context.Context, p store.Pusher, id string) error
		// opened checks what the client of an accepted $connect sees.
		opened func(t *testing.T, h *fakeHandler, ws *websocket.Conn, id string)
	}{
		{"a post", func(ctx context.Context, p store.Pusher, id string) error {
			return p.Post(ctx, id, []byte(`{"first":true}`))
		}, func(t *testing.T, _ *fakeHandler, ws *websocket.Conn, _ string) {
			if got := readMessage(t, ws); !bytes.Equal(got, []byte(`{"first":true}`)) {
				t.Errorf("the client's first message is %q; want the post", got)
			}
		}},
		{"a GET", func(ctx context.Context, p store.Pusher, id string) error {
			info, err := p.Get(ctx, id)
			if err == nil && (info.ConnectedAt.IsZero() || info.SourceIP != "127.0.0.1") {
				return errors.New("GET described the connection wrongly")
			}
			return err
		}, nil},
		{"a DELETE", func(ctx context.Context, p store.Pusher, id string) error {
			return p.Delete(ctx, id)
		}, func(t *testing.T, h *fakeHandler, ws *websocket.Conn, id string) {
			wantClose(t, h, ws, id, websocket.CloseNormalClosure, reasonDeleted)
		}},
	}
	outcomes := []struct {
		name   string
		answer connectOutcome
		status int // the dial's status when refused
	}{
		{"accepted", connectOutcome{resp: response{StatusCode: 200}}, 0},
		{"refused", connectOutcome{resp: response{StatusCode: 403, Body: "no"}}, http.StatusForbidden},
		{"failed", connectOutcome{err: errors.New("boom")}, http.StatusInternalServerError},
	}
	for _, p := range pushers {
		for _, c := range calls {
			for _, o := range outcomes {
				t.Run(c.name+" through the "+p.name+" to a $connect "+o.name, func(t *testing.T) {
					h := newFakeHandler()
					var opts Options
					cg := gateConnects(h, &opts)
					g, addr := start(t, h, opts)
					pusher := p.pusher(g, addr)

					cg.dialAsync(t, addr)
					id := cg.held(t)
					called := make(chan error, 1)
					go func() { called <- c.call(ctxT(t), pusher, id) }()
					cg.awaitWaiting(t)
					if n := g.Count(); n != 0 {
						t.Errorf("Count = %d during the $connect; want 0 (not open yet)", n)
					}
					cg.release <- o.answer

					d := cg.dialResult(t)
					var err error
					select {
					case err = <-called:
					case <-time.After(wait):
						t.Fatal("the call did not end after the $connect")
					}
					if o.status != 0 {
						if d.err == nil || d.status != o.status {
							t.Errorf("dial: %v (status %d); want refused with %d", d.err, d.status, o.status)
						}
						if !store.IsGone(err) {
							t.Errorf("the call: %v; want 410 gone", err)
						}
						if n := registered(g); n != 0 {
							t.Errorf("%d connections registered after a %s $connect; want none", n, o.name)
						}
						return // start's cleanup checks that no $disconnect came
					}
					if d.err != nil {
						t.Fatalf("dial: %v", d.err)
					}
					if err != nil {
						t.Errorf("the call: %v; want it answered for the open connection", err)
					}
					if c.opened != nil {
						c.opened(t, h, d.ws, id)
					}
				})
			}
		}
	}
}

// Shutdown while a connection is in its $connect waits for the $connect:
// accepted, the client gets the 101, then 1001 "going away" and a
// $disconnect; refused, the refusal and no $disconnect. Either way
// Shutdown returns nil and nothing stays registered.
func TestShutdownDuringAConnectEndsCleanly(t *testing.T) {
	for _, o := range []struct {
		name   string
		answer connectOutcome
	}{
		{"accepted", connectOutcome{resp: response{StatusCode: 200}}},
		{"refused", connectOutcome{resp: response{StatusCode: 403}}},
	} {
		t.Run("a $connect "+o.name, func(t *testing.T) {
			h := newFakeHandler()
			var opts Options
			cg := gateConnects(h, &opts)
			g, addr := start(t, h, opts)

			cg.dialAsync(t, addr)
			id := cg.held(t)
			shut := make(chan error, 1)
			go func() {
				ctx, cancel := context.WithTimeout(context.Background(), wait)
				defer cancel()
				shut <- g.Shutdown(ctx)
			}()
			deadline := time.Now().Add(wait)
			for {
				g.mu.RLock()
				closing := g.closing
				g.mu.RUnlock()
				if closing {
					break
				}
				if time.Now().After(deadline) {
					t.Fatal("Shutdown did not begin")
				}
				time.Sleep(time.Millisecond)
			}
			select {
			case err := <-shut:
				t.Fatalf("Shutdown returned %v during a $connect", err)
			default:
			}
			cg.release <- o.answer

			d := cg.dialResult(t)
			if o.answer.resp.StatusCode == 200 {
				if d.err != nil {
					t.Fatalf("dial: %v; want the upgrade, then the close", d.err)
				}
				wantClose(t, h, d.ws, id, websocket.CloseGoingAway, reasonShutdown)
			} else if d.status != o.answer.resp.StatusCode {
				t.Errorf("dial: %v (status %d); want %d", d.err, d.status, o.answer.resp.StatusCode)
			}
			select {
			case err := <-shut:
				if err != nil {
					t.Errorf("Shutdown: %v", err)
				}
			case <-time.After(wait):
				t.Fatal("Shutdown did not return after the $connect")
			}
			if n := registered(g); n != 0 {
				t.Errorf("%d connections registered after Shutdown", n)
			}
		})
	}
}
