package awsops

import (
	"context"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/socks-dev/socks/broker"
	"github.com/socks-dev/socks/pubsub"
	"github.com/socks-dev/socks/store"
)

// goneEverywhere answers 410 Gone to every call, as API Gateway does to a
// connection that is not open (yet, or any more).
type goneEverywhere struct{}

func (goneEverywhere) Post(_ context.Context, id string, _ []byte) error {
	return &store.PushError{Kind: store.KindGone, Op: opPost, ConnectionID: id, Status: 410}
}

func (goneEverywhere) Get(_ context.Context, id string) (store.ConnectionInfo, error) {
	return store.ConnectionInfo{}, &store.PushError{Kind: store.KindGone, Op: opGet, ConnectionID: id, Status: 410}
}

func (goneEverywhere) Delete(_ context.Context, id string) error {
	return &store.PushError{Kind: store.KindGone, Op: opDelete, ConnectionID: id, Status: 410}
}

// TestA410DuringConnectKeepsTheRecord: $connect writes the connection's
// record before it returns, and until the handshake ends API Gateway
// answers 410 Gone to posts to that connection. A message fanned out in
// that moment must not delete the record of a connection about to open
// (it would never receive anything); a record older than the connect
// window is removed on its first 410, as before.
func TestA410DuringConnectKeepsTheRecord(t *testing.T) {
	s := newTestStore(t)
	now := time.Now()
	for _, c := range []pubsub.Connection{
		{ID: "connecting=", Geek: "Friendless", Topics: []string{"updates"}, ConnectedAt: now.Add(-time.Second), ExpiresAt: now.Add(time.Hour)},
		{ID: "dead=", Geek: "Friendless", Topics: []string{"updates"}, ConnectedAt: now.Add(-pubsub.ConnectWindow - time.Second), ExpiresAt: now.Add(time.Hour)},
	} {
		if err := s.PutConnection(t.Context(), c); err != nil {
			t.Fatal(err)
		}
	}
	br := &broker.Broker{Store: s, Pusher: goneEverywhere{}, Now: func() time.Time { return now }}
	rep, err := br.Deliver(t.Context(), pubsub.Envelope{ID: "m-connecting", Users: []string{"Friendless"}, Topics: []string{"updates"}, Body: json.RawMessage(`1`)})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Targets != 2 || rep.Gone != 2 || rep.Delivered != 0 || rep.Failed != 0 {
		t.Fatalf("report = %+v; want both targets gone", rep)
	}
	if _, err := s.GetConnection(t.Context(), "connecting="); err != nil {
		t.Errorf("the record of the connection still in its $connect was deleted on a 410: %v", err)
	}
	if _, err := s.GetConnection(t.Context(), "dead="); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("the record of the dead connection is still there (err=%v)", err)
	}
}
