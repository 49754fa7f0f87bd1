package backend

import (
	"context"
	"errors"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/socks-dev/socks/store"
)

// refollowEvery bounds how often a followingPusher looks the gateway's
// record up again while its calls cannot reach the gateway: the calls of
// a fan-out failing at once cost one look-up, not one each.
const refollowEvery = 250 * time.Millisecond

// followingPusher is the pusher for the local state dir's gateway of a
// process that outlives it: `socks broker` found the gateway's address as
// it started, and a `socks serve` stopped and started again listens
// elsewhere (another free port, another --addr). A call that cannot reach
// the address it used (nothing listens there, the connection kept
// alive to it broke, or it closed with no answer) looks the record up again and, when it names
// another address, is made again there, as are the calls after it: the
// gateway there is another one (one runs per state dir), so a call made
// twice reaches no client twice (a connection ID of the old gateway is
// gone from the new one). Without a record, or with the same one, the
// call's own error stands (the broker retries it). An answer at the
// address that does not carry the recorded gateway's run ID is no answer
// of it (NotThisGatewayError: another program took the port of a serve
// that stopped): the call fails the same way, the record is looked up
// again, and no call is sent to that address any more.
type followingPusher struct {
	b           *Backend
	concurrency int

	// at is the address in use and its pusher: every call reads it
	// without a lock; only a look-up, under mu, replaces it.
	at     atomic.Pointer[pusherAt]
	mu     sync.Mutex
	looked time.Time // when the record was last looked up again
}

// pusherAt is a gateway's Management API address, its run ID ("" when
// it recorded none) and the pusher for it, which takes that gateway's
// answers only.
type pusherAt struct {
	mgmt, id string
	p        store.Pusher
	// foreign is set once an answer from mgmt was not the gateway's
	// (NotThisGatewayError): no call is sent there any more, so that
	// the program listening there gets no more message bodies; they wait
	// until the record names a gateway again.
	foreign atomic.Pointer[NotThisGatewayError]
}

func (f *followingPusher) Post(ctx context.Context, id string, data []byte) error {
	return follow(f, ctx, "PostToConnection", id, func(p store.Pusher) error { return p.Post(ctx, id, data) })
}

func (f *followingPusher) Get(ctx context.Context, id string) (store.ConnectionInfo, error) {
	var info store.ConnectionInfo
	err := follow(f, ctx, "GetConnection", id, func(p store.Pusher) (err error) {
		info, err = p.Get(ctx, id)
		return err
	})
	return info, err
}

func (f *followingPusher) Delete(ctx context.Context, id string) error {
	return follow(f, ctx, "DeleteConnection", id, func(p store.Pusher) error { return p.Delete(ctx, id) })
}

// follow makes call (op, on connection id) with the current pusher and,
// if it could not reach the gateway or what answered was not the gateway
// (NotThisGatewayError), once more with the pusher of the gateway the
// record names now, if another. At an address known not to be the
// gateway's, it looks the record up first, and without another gateway
// there it fails the call unsent.
func follow(f *followingPusher, ctx context.Context, op, id string, call func(store.Pusher) error) error {
	at := f.at.Load()
	if foreign := at.foreign.Load(); foreign != nil {
		next, ok := f.moved(ctx, at)
		if !ok {
			return &store.PushError{Kind: store.KindOther, Op: op, ConnectionID: id, Err: foreign}
		}
		return call(next)
	}
	err := call(at.p)
	var foreign *NotThisGatewayError
	if errors.As(err, &foreign) {
		at.foreign.Store(foreign)
	} else if err == nil || !unreachable(err) {
		return err
	}
	next, ok := f.moved(ctx, at)
	if !ok {
		return err
	}
	return call(next)
}

// moved returns the pusher for the gateway if used is no longer it, as
// the record names it now (another call may have looked it up already):
// another address, or another run ID (a serve started again at the same
// address).
func (f *followingPusher) moved(ctx context.Context, used *pusherAt) (store.Pusher, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if at := f.at.Load(); at != used {
		return at.p, true
	}
	if time.Since(f.looked) < refollowEvery {
		return nil, false
	}
	f.looked = time.Now()
	_, mgmt, err := f.b.Gateway(ctx)
	if err != nil {
		return nil, false
	}
	id, err := f.b.gatewayID(ctx)
	if err != nil || mgmt == used.mgmt && id == used.id {
		return nil, false
	}
	p, err := f.b.localPusher(mgmt, id, f.concurrency)
	if err != nil {
		return nil, false
	}
	f.at.Store(&pusherAt{mgmt: mgmt, id: id, p: p})
	return p, true
}

// unreachable reports whether err is a call's failure to reach the
// gateway on the network (nothing listens at its address, or the
// connection kept alive to it broke), rather than the gateway's answer:
// a connection closed with no answer (EOF: the gateway stopped with the
// call under way, or closed the kept-alive connection as it went out)
// is one too.
func unreachable(err error) bool {
	var op *net.OpError
	return errors.As(err, &op) || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF)
}
