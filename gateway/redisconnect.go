package gateway

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/socks-dev/socks/store"
)

// A $disconnect whose handler failed (its store could not be written: a
// full disk, the state file's lock held by another process) left the
// connection's record, which counted against its geek's connection cap
// (routes' MaxConnectionsPerGeek) until it expired, up to MaxDuration
// later: a post to it, answered 410, was the only other way it went. The
// gateway keeps such a $disconnect, at most maxLostDisconnects of them,
// and calls it again from its sweep, in passes of at most
// maxLostPerPass: the first disconnectRetry after the failure, then with
// the pause doubling up to disconnectRetryMax while it keeps failing.
// Each kept one has its own pause, so that one whose delete fails for a
// reason of its own holds up no other; a failure of the store itself
// (store.ErrUnavailable: the others would fail too) ends the pass and
// pauses them all, the pause doubling likewise until a call passes. One
// whose record has expired (its connectedAt plus MaxDuration, by Now)
// counts against nothing and is dropped without a call. At Shutdown the
// passes stop; once the clients' $disconnects have run, each kept one
// (those failing as the clients were closed too) is called once more in
// a last pass, within Shutdown's time (finalLost). A successful
// $disconnect costs nothing of this.
const (
	maxLostDisconnects = 10000
	maxLostPerPass     = 100
	disconnectRetry    = time.Second
	disconnectRetryMax = time.Minute
)

// lostDisconnect is what a $disconnect that failed needs to be called
// again: the connection's fields its event carries, and when.
type lostDisconnect struct {
	id, sourceIP, userAgent, host, reason string
	code                                  int
	connectedAt                           time.Time
	next                                  time.Time     // of its next call
	wait                                  time.Duration // the pause after its next failure
}

// lostDisconnects are the $disconnects to call again. Only the goroutine
// that calls them (running) removes any or changes their times; a
// failure appends.
type lostDisconnects struct {
	mu          sync.Mutex
	pending     []lostDisconnect
	max         int // kept at most (maxLostDisconnects)
	perPass     int // calls in a pass at most (maxLostPerPass)
	first, most time.Duration
	// next is when the next pass is due: the earliest of the kept ones'
	// next, but not before paused, while the store cannot be written.
	next    time.Time
	paused  time.Time
	wait    time.Duration // the store's pause after its next failure
	running bool
	done    chan struct{} // closed when the running one ends
	// stopped at Shutdown, which cancels ctx, the context of the calls
	// of the passes; final once the last pass (finalLost) has begun:
	// none is kept from then on.
	stopped, final bool
	ctx            context.Context
	cancel         context.CancelFunc
}

// keepLost keeps c's $disconnect, which failed, to call it again, and
// says how it is called again, or why it is not: past the bound, or
// stopped.
func (g *Gateway) keepLost(c *conn) (kept bool, how string) {
	l := &g.lost
	l.mu.Lock()
	defer l.mu.Unlock()
	switch {
	case l.final:
		return false, "the gateway has stopped"
	case len(l.pending) >= l.max:
		return false, fmt.Sprintf("%d wait to be called again already, the most kept", len(l.pending))
	}
	next := time.Now().Add(l.first)
	if len(l.pending) == 0 && !l.running {
		l.wait, l.next = l.first, next
	}
	l.next = earlier(l.next, next)
	l.pending = append(l.pending, lostDisconnect{id: c.id, sourceIP: c.sourceIP, userAgent: c.userAgent, host: c.host,
		reason: c.closeReason, code: c.closeCode, connectedAt: c.connectedAt, next: next, wait: l.first})
	if l.stopped {
		return true, "it is called once more as the gateway stops"
	}
	return true, "it is called again until it passes or the connection's record expires"
}

// lostDisconnects is how many $disconnects wait to be called again.
func (g *Gateway) lostDisconnects() int {
	g.lost.mu.Lock()
	defer g.lost.mu.Unlock()
	return len(g.lost.pending)
}

// retryLost starts a pass calling the kept $disconnects again, in a
// goroutine of its own (a call may wait for the store's lock: the sweep
// does not), when some are kept, one is due and none is running. The
// sweep calls it at each tick.
func (g *Gateway) retryLost() {
	l := &g.lost
	l.mu.Lock()
	defer l.mu.Unlock()
	now := time.Now()
	if len(l.pending) == 0 || l.running || l.stopped || now.Before(l.next) || now.Before(l.paused) {
		return
	}
	l.running, l.done = true, make(chan struct{})
	go g.callLost(l.done)
}

// callLost is a pass: it drops the kept $disconnects whose record has
// expired, and calls those due, at most maxLostPerPass, in turn. One
// that passes is dropped; one that fails is called again after its own
// pause, which doubles; a failure of the store (store.ErrUnavailable)
// ends the pass and pauses every one.
func (g *Gateway) callLost(done chan struct{}) {
	defer close(done)
	l := &g.lost
	healed := 0
	l.mu.Lock()
	defer func() {
		l.running = false
		l.mu.Unlock()
		if healed > 0 {
			g.log.Info("called again the $disconnects that had failed: their connections' records are gone", "connections", healed)
		}
	}()
	now := g.now()
	kept := l.pending[:0]
	for _, d := range l.pending {
		if now.Before(d.connectedAt.Add(g.opts.MaxDuration)) {
			kept = append(kept, d)
		}
	}
	clear(l.pending[len(kept):])
	l.pending = kept
	// The calls, of those due as the pass starts; their order in pending
	// stays. Only this goroutine removes from pending, and keepLost
	// appends: an index stays the same entry while the lock is let go.
	calls := 0
	for i := 0; i < len(l.pending) && calls < l.perPass && !l.stopped; {
		d := l.pending[i]
		if time.Now().Before(d.next) {
			i++
			continue
		}
		calls++
		l.mu.Unlock()
		err := g.callDisconnect(l.ctx, d)
		l.mu.Lock()
		if err == nil {
			healed++
			l.wait = l.first
			l.pending = slices.Delete(l.pending, i, i+1)
			continue
		}
		if l.stopped {
			break
		}
		if errors.Is(err, store.ErrUnavailable) {
			g.log.Debug("$disconnect called again failed: the store cannot be written", "connectionId", d.id, "err", err)
			l.paused = time.Now().Add(l.wait)
			l.wait = min(2*l.wait, l.most)
			break
		}
		g.log.Debug("$disconnect called again failed", "connectionId", d.id, "err", err)
		l.pending[i].next = time.Now().Add(d.wait)
		l.pending[i].wait = min(2*d.wait, l.most)
		i++
	}
	if len(l.pending) == 0 {
		l.pending, l.wait = nil, l.first
		return
	}
	l.next = l.pending[0].next
	for _, d := range l.pending[1:] {
		l.next = earlier(l.next, d.next)
	}
}

// earlier is the earlier of a and b.
func earlier(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}

// stopLost ends the calls of kept $disconnects (Shutdown), cancelling
// the one in progress and waiting for it.
func (g *Gateway) stopLost() {
	l := &g.lost
	l.cancel()
	l.mu.Lock()
	l.stopped = true
	done := l.done
	running := l.running
	l.mu.Unlock()
	if running {
		<-done
	}
}

// finalLost is the last pass, at Shutdown once the clients'
// $disconnects have run (the passes stopped by stopLost): it calls each
// kept $disconnect whose record has not expired once more, at most
// perPass of them, within ctx (Shutdown's), stopping at a failure of the
// store (store.ErrUnavailable), and says how many passed and how many
// are left. From then on none is kept.
func (g *Gateway) finalLost(ctx context.Context) {
	l := &g.lost
	l.mu.Lock()
	l.final = true
	pending := l.pending
	l.pending = nil
	l.mu.Unlock()
	now := g.now()
	healed, left, calls := 0, 0, 0
	var last error
	for i, d := range pending {
		if !now.Before(d.connectedAt.Add(g.opts.MaxDuration)) {
			continue
		}
		if ctx.Err() != nil || calls >= l.perPass || errors.Is(last, store.ErrUnavailable) {
			left++
			continue
		}
		calls++
		if err := g.callDisconnect(ctx, d); err != nil {
			g.log.Debug("$disconnect called once more as the gateway stops failed", "connectionId", pending[i].id, "err", err)
			last = err
			left++
			continue
		}
		healed++
	}
	if healed > 0 {
		g.log.Info("called again the $disconnects that had failed: their connections' records are gone", "connections", healed)
	}
	if left > 0 {
		attrs := []any{"disconnects", left}
		if last != nil {
			attrs = append(attrs, "err", last)
		}
		g.log.Warn("shutting down: $disconnects that failed are not called again: their connections' records stay until they expire or are pruned (a local serve deletes them as it starts)", attrs...)
	}
}

// callDisconnect invokes $disconnect for d within ctx.
func (g *Gateway) callDisconnect(ctx context.Context, d lostDisconnect) error {
	c := &conn{g: g, id: d.id, sourceIP: d.sourceIP, userAgent: d.userAgent, host: d.host, connectedAt: d.connectedAt,
		closeCode: d.code, closeReason: d.reason}
	ctx, cancel := context.WithTimeout(ctx, integrationTimeout)
	defer cancel()
	_, err := g.opts.Handler.Handle(ctx, c.disconnectEvent(g.now()))
	return err
}

// disconnectEvent is the $disconnect event of c at now.
func (c *conn) disconnectEvent(now time.Time) events.APIGatewayWebsocketProxyRequest {
	req := c.event("$disconnect", "DISCONNECT", now)
	req.Headers = map[string]string{"Host": c.host, "X-Forwarded-For": c.sourceIP}
	req.MultiValueHeaders = map[string][]string{"Host": {c.host}, "X-Forwarded-For": {c.sourceIP}}
	req.RequestContext.DisconnectStatusCode = int64(c.closeCode)
	reason := c.closeReason
	req.RequestContext.DisconnectReason = &reason
	return req
}
