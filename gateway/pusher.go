package gateway

import (
	"bytes"
	"context"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"

	"github.com/socks-dev/socks/pubsub"
	"github.com/socks-dev/socks/store"
)

// Pusher returns a store.Pusher that delivers to this gateway's connections
// in process, without the HTTP hop of the Management API: what the broker
// inside `socks serve` uses. It has the Management API's meanings exactly
// (the same conformance suite, storetest.RunPusher, covers both): an unknown
// or closing connection is gone for Post, Get and Delete; one still in its
// $connect is waited for and answered as what it becomes; a body over
// 128 KB is too large; a connection whose backlog would pass
// Options.MaxQueuedBytes is closed as a slow consumer and is gone. A body
// posted to many connections is framed once (one
// websocket.PreparedMessage), as long as it fits in one frame.
func (g *Gateway) Pusher() store.Pusher { return &pusher{g: g} }

type pusher struct {
	g *Gateway
	// last is the most recently posted body with its prepared frame: a
	// fan-out posts the same body to every target.
	last atomic.Pointer[prepared]
}

// prepared is a private copy of a posted body and, when it fits in one
// frame, its prepared message.
type prepared struct {
	data []byte
	pm   *websocket.PreparedMessage
}

func (p *pusher) prepare(data []byte) (*prepared, error) {
	if last := p.last.Load(); last != nil && bytes.Equal(last.data, data) {
		return last, nil
	}
	// A copy: the caller may reuse data once Post returns, while the
	// message still waits in the connection's queue.
	pr := &prepared{data: bytes.Clone(data)}
	if len(data) <= pubsub.MaxFrameBytes {
		pm, err := websocket.NewPreparedMessage(websocket.TextMessage, pr.data)
		if err != nil {
			return nil, err
		}
		pr.pm = pm
	}
	p.last.Store(pr)
	return pr, nil
}

// NonBlocking reports true: Post never waits on the client; it hands the
// message to the connection or refuses it at once, so the broker posts to
// it synchronously. (Only a connection still in its $connect is waited
// for, the moment between its record's write and the 101.)
func (p *pusher) NonBlocking() bool { return true }

func pushError(kind store.PushErrorKind, op, id string, status int) error {
	return &store.PushError{Kind: kind, Op: op, ConnectionID: id, Status: status}
}

func (p *pusher) Post(ctx context.Context, id string, data []byte) error {
	const op = "PostToConnection"
	if err := ctx.Err(); err != nil {
		return &store.PushError{Kind: store.KindOther, Op: op, ConnectionID: id, Err: err}
	}
	if len(data) > pubsub.MaxMessageBytes {
		return pushError(store.KindTooLarge, op, id, http.StatusRequestEntityTooLarge)
	}
	c := p.g.lookup(ctx, id)
	if c == nil {
		return pushError(store.KindGone, op, id, http.StatusGone)
	}
	pr, err := p.prepare(data)
	if err != nil {
		return &store.PushError{Kind: store.KindOther, Op: op, ConnectionID: id, Err: err}
	}
	if !c.post(outbound{kind: websocket.TextMessage, data: pr.data, pm: pr.pm}) {
		return pushError(store.KindGone, op, id, http.StatusGone)
	}
	return nil
}

func (p *pusher) Get(ctx context.Context, id string) (store.ConnectionInfo, error) {
	const op = "GetConnection"
	if err := ctx.Err(); err != nil {
		return store.ConnectionInfo{}, &store.PushError{Kind: store.KindOther, Op: op, ConnectionID: id, Err: err}
	}
	c := p.g.lookup(ctx, id)
	if c == nil {
		return store.ConnectionInfo{}, pushError(store.KindGone, op, id, http.StatusGone)
	}
	// The Management API's precision: milliseconds, UTC.
	return store.ConnectionInfo{
		ConnectedAt:  c.connectedAt.UTC().Truncate(time.Millisecond),
		LastActiveAt: time.UnixMilli(c.lastActiveAt.Load()).UTC(),
		SourceIP:     c.sourceIP,
		UserAgent:    c.userAgent,
	}, nil
}

func (p *pusher) Delete(ctx context.Context, id string) error {
	const op = "DeleteConnection"
	if err := ctx.Err(); err != nil {
		return &store.PushError{Kind: store.KindOther, Op: op, ConnectionID: id, Err: err}
	}
	c := p.g.lookup(ctx, id)
	if c == nil {
		return pushError(store.KindGone, op, id, http.StatusGone)
	}
	c.closeWith(websocket.CloseNormalClosure, reasonDeleted, true)
	return nil
}
