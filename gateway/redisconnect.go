package gateway

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/aws/aws-lambda-go/events"
)

// A $disconnect whose handler failed (its store could not be written: a
// full disk, the state file's lock held by another process) left the
// connection's record, which counted against its geek's connection cap
// (routes' MaxConnectionsPerGeek) until it expired, up to MaxDuration
// later: a post to it, answered 410, was the only other way it went. The
// gateway keeps such a $disconnect, at most maxLostDisconnects of them,
// and calls it again from its sweep: the first
// disconnectRetry after the failure, then with the pause doubling up to
// disconnectRetryMax while the handler keeps failing. One whose record
// has expired (its connectedAt plus MaxDuration, by Now) counts against
// nothing and is dropped without a call. A successful $disconnect costs
// nothing of this.
const (
	maxLostDisconnects = 10000
	disconnectRetry    = time.Second
	disconnectRetryMax = time.Minute
)

// lostDisconnect is what a $disconnect that failed needs to be called
// again: the connection's fields its event carries.
type lostDisconnect struct {
	id, sourceIP, userAgent, host, reason string
	code                                  int
	connectedAt                           time.Time
}

// lostDisconnects are the $disconnects to call again. Only the goroutine
// that calls them (running) removes any; a failure appends.
type lostDisconnects struct {
	mu          sync.Mutex
	pending     []lostDisconnect
	max         int
	first, most time.Duration
	wait        time.Duration // the pause after the next failure
	next        time.Time     // of the next try
	running     bool
	done        chan struct{} // closed when the running one ends
	// stopped at Shutdown, which cancels ctx, the context of the calls.
	stopped bool
	ctx     context.Context
	cancel  context.CancelFunc
}

// keepLost keeps c's $disconnect, which failed, to call it again, and
// says why it did not when it did not: past the bound, or stopping.
func (g *Gateway) keepLost(c *conn) (why string) {
	l := &g.lost
	l.mu.Lock()
	defer l.mu.Unlock()
	switch {
	case l.stopped:
		return "the gateway is stopping"
	case len(l.pending) >= l.max:
		return fmt.Sprintf("%d wait to be called again already, the most kept", len(l.pending))
	}
	if len(l.pending) == 0 && !l.running {
		l.wait, l.next = l.first, time.Now().Add(l.first)
	}
	l.pending = append(l.pending, lostDisconnect{id: c.id, sourceIP: c.sourceIP, userAgent: c.userAgent, host: c.host,
		reason: c.closeReason, code: c.closeCode, connectedAt: c.connectedAt})
	return ""
}

// lostDisconnects is how many $disconnects wait to be called again.
func (g *Gateway) lostDisconnects() int {
	g.lost.mu.Lock()
	defer g.lost.mu.Unlock()
	return len(g.lost.pending)
}

// retryLost starts calling the kept $disconnects again, in a goroutine of
// its own (a call may wait for the store's lock: the sweep does not),
// when some are kept, their time has come and none is running. The
// sweep calls it at each tick.
func (g *Gateway) retryLost() {
	l := &g.lost
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.pending) == 0 || l.running || l.stopped || time.Now().Before(l.next) {
		return
	}
	l.running, l.done = true, make(chan struct{})
	go g.callLost(l.done)
}

// callLost calls the kept $disconnects in turn, dropping those whose
// record has expired, until one fails (the store still cannot be
// written: the rest would fail too), when the next try is set a longer
// pause away, or until none is left.
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
	for len(l.pending) > 0 && !l.stopped {
		d := l.pending[0]
		l.mu.Unlock()
		err := g.callDisconnect(d)
		l.mu.Lock()
		if err != nil {
			g.log.Debug("$disconnect called again failed", "connectionId", d.id, "err", err)
			l.next = time.Now().Add(l.wait)
			l.wait = min(2*l.wait, l.most)
			return
		}
		healed++
		l.pending[0] = lostDisconnect{}
		l.pending = l.pending[1:]
	}
	l.pending = nil
	l.wait = l.first
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

// callDisconnect invokes $disconnect for d.
func (g *Gateway) callDisconnect(d lostDisconnect) error {
	c := &conn{g: g, id: d.id, sourceIP: d.sourceIP, userAgent: d.userAgent, host: d.host, connectedAt: d.connectedAt,
		closeCode: d.code, closeReason: d.reason}
	ctx, cancel := context.WithTimeout(g.lost.ctx, integrationTimeout)
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
