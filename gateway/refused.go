package gateway

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"
)

// Refused handshakes are logged at Info, so that a developer whose page
// gets 403 sees why on serve's terminal (and so are other requests the
// gateway refuses for what the browser sent: 431 for headers over
// API Gateway's bound, most often cookies), but at most refusalBurst in each
// refusalWindow of the gateway's clock: a page reconnecting in a loop, or
// a scan, does not fill the terminal. The rest are counted in one line
// when the next window's first refusal comes, or at shutdown. With debug
// logs on (serve -v) every refusal is logged.
const (
	refusalBurst  = 5
	refusalWindow = time.Minute
)

// refusals is the count behind the refused-handshake log lines.
type refusals struct {
	mu      sync.Mutex
	start   time.Time // of the current window
	logged  int       // in the current window
	dropped int       // not logged since the last count
}

// A refusal's reason may quote what the client sent (a bad ?geek= or
// ?topic=), where a chatter ID may have been pasted by mistake: the
// gateway's logger (logsafe.Logger) writes each quoted value cut to
// logsafe.Quoted characters (logsafe.QuotedVerbose with debug logs on),
// fewer than the 32 random ones of a chatter ID, a value shaped like a
// chatter ID as sc_(hidden), and at most logsafe.Max characters of the
// reason, or of a string attribute (the origin). The answer, to the
// client that sent it, is not shortened.

// refused logs a handshake refused with status and reason (the answer's
// words, which g.log shortens), and attrs, unless too many were logged
// in this window.
func (g *Gateway) refused(status int, reason string, attrs ...any) {
	g.logRefusal("connect refused", status, reason, attrs...)
}

// refusedRequest is refused for a request that is no handshake (the live
// page's, a Management API call), within the same few a minute.
func (g *Gateway) refusedRequest(status int, reason string, attrs ...any) {
	g.logRefusal("request refused", status, reason, attrs...)
}

func (g *Gateway) logRefusal(msg string, status int, reason string, attrs ...any) {
	all := g.log.Enabled(context.Background(), slog.LevelDebug)
	now := g.now()
	r := &g.refusals
	r.mu.Lock()
	dropped := 0
	if !now.Before(r.start.Add(refusalWindow)) || now.Before(r.start) {
		dropped, r.dropped = r.dropped, 0
		r.start, r.logged = now, 0
	}
	log := all || r.logged < refusalBurst
	if log {
		r.logged++
	} else {
		r.dropped++
	}
	r.mu.Unlock()
	if dropped > 0 {
		g.logDropped(dropped)
	}
	if log {
		g.log.Info(msg, append([]any{"status", status, "reason", reason}, attrs...)...)
	}
}

// flushRefusals logs the count of the refusals not logged yet.
func (g *Gateway) flushRefusals() {
	r := &g.refusals
	r.mu.Lock()
	dropped := r.dropped
	r.dropped = 0
	r.mu.Unlock()
	if dropped > 0 {
		g.logDropped(dropped)
	}
}

func (g *Gateway) logDropped(n int) {
	g.log.Info(fmt.Sprintf("connects and requests refused and not logged (at most %d a minute are)", refusalBurst), "count", n)
}
