package broker_test

import (
	"context"
	"net/url"
	"path/filepath"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/gorilla/websocket"

	"github.com/socks-dev/socks/broker"
	"github.com/socks-dev/socks/local"
	"github.com/socks-dev/socks/pubsub"
	"github.com/socks-dev/socks/routes"
	"github.com/socks-dev/socks/store"
)

// heldConnects is the routes' handler whose $connect, once it has written
// the connection's record, waits for the test before it answers.
type heldConnects struct {
	routes   *routes.Handler
	recorded chan string // the ID of a $connect that wrote its record
	release  chan struct{}
}

func (h *heldConnects) Handle(ctx context.Context, req events.APIGatewayWebsocketProxyRequest) (events.APIGatewayProxyResponse, error) {
	resp, err := h.routes.Handle(ctx, req)
	if req.RequestContext.RouteKey == routes.RouteConnect && err == nil && resp.StatusCode == 200 {
		h.recorded <- req.RequestContext.ConnectionID
		select {
		case <-h.release:
		case <-ctx.Done():
		}
	}
	return resp, err
}

// announcingPusher says when the broker posts, then posts.
type announcingPusher struct {
	store.Pusher
	posting chan string
}

func (p announcingPusher) NonBlocking() bool { return store.NonBlocking(p.Pusher) }

func (p announcingPusher) Post(ctx context.Context, id string, body []byte) error {
	p.posting <- id
	return p.Pusher.Post(ctx, id, body)
}

// A message fanned out while a connection is in its $connect (its record
// written, the 101 not sent yet: the broker finds it) reaches the client
// once it has opened, and its record stays. The gateway used to answer 410
// then, and the broker deleted the record of the connection about to
// open, which never received anything in its 2 hours.
func TestAFanOutDuringAConnectReachesTheClientAndKeepsItsRecord(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	db, err := local.Open(ctx, filepath.Join(t.TempDir(), "socks.db"), local.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	h := &heldConnects{routes: &routes.Handler{Store: db.Store()}, recorded: make(chan string, 1), release: make(chan struct{})}
	gw, addr, stop := serveGateway(t, h)
	defer stop()
	secret, _, err := store.IssueChatterID(ctx, db.Store(), "alice", time.Hour, time.Now())
	if err != nil {
		t.Fatal(err)
	}

	type dialed struct {
		ws  *websocket.Conn
		err error
	}
	dials := make(chan dialed, 1)
	go func() {
		q := url.Values{"geek": {"alice"}, "id": {secret}, "topic": {"news"}}
		ws, _, err := websocket.DefaultDialer.DialContext(ctx, "ws://"+addr+"/?"+q.Encode(), nil)
		dials <- dialed{ws, err}
	}()
	var id string
	select {
	case id = <-h.recorded:
	case <-ctx.Done():
		t.Fatal("no $connect wrote a record")
	}

	posting := make(chan string, 1)
	br := &broker.Broker{Store: db.Store(), Pusher: announcingPusher{gw.Pusher(), posting}}
	type delivered struct {
		rep store.Report
		err error
	}
	deliveries := make(chan delivered, 1)
	go func() {
		rep, err := br.Deliver(ctx, pubsub.Envelope{ID: "m-during-connect", Topics: []string{"news"}, Body: []byte(`{"n":1}`)})
		deliveries <- delivered{rep, err}
	}()
	select {
	case got := <-posting:
		if got != id {
			t.Fatalf("the broker posts to %s; want the connecting %s", got, id)
		}
	case <-ctx.Done():
		t.Fatal("the broker did not post to the connection in its $connect")
	}
	close(h.release)

	d := <-dials
	if d.err != nil {
		t.Fatalf("dial: %v", d.err)
	}
	defer d.ws.Close()
	dl := <-deliveries
	if dl.err != nil || dl.rep.Delivered != 1 || dl.rep.Gone != 0 {
		t.Errorf("Deliver: %+v, %v; want delivered 1, gone 0", dl.rep, dl.err)
	}
	_ = d.ws.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, data, err := d.ws.ReadMessage(); err != nil || string(data) != `{"n":1}` {
		t.Errorf("the client read %q, %v; want the message", data, err)
	}
	if _, err := db.Store().GetConnection(ctx, id); err != nil {
		t.Errorf("the record of the connection: %v; want it kept", err)
	}
}
