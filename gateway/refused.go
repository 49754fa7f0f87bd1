package gateway

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/socks-dev/socks/internal/text"
	"github.com/socks-dev/socks/pubsub"
)

// Refused handshakes are logged at Info, so that a developer whose page
// gets 403 sees why on serve's terminal, but at most refusalBurst in each
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
// ?topic=), where a chatter ID may have been pasted by mistake: the log
// shows each quoted value cut to refusalQuoted characters
// (refusalQuotedVerbose with debug logs on), fewer than the 32 random
// ones of a chatter ID, a value shaped like a chatter ID as sc_(hidden)
// (pubsub.HideChatterIDs), and at most refusalReason characters of the
// reason, or of a string attribute (the origin). The answer, to the
// client that sent it, is not shortened.
const (
	refusalQuoted        = 16
	refusalQuotedVerbose = 24
	refusalReason        = 400
)

// loggedRefusal is s, a refusal's reason or attribute, as it is logged.
func loggedRefusal(s string, verbose bool) string {
	quoted := refusalQuoted
	if verbose {
		quoted = refusalQuotedVerbose
	}
	return text.Cap(text.CapQuoted(pubsub.HideChatterIDs(s), quoted), refusalReason)
}

// refused logs a handshake refused with status and reason (the answer's
// words: loggedRefusal shortens what they quote), and attrs, unless too
// many were logged in this window.
func (g *Gateway) refused(status int, reason string, attrs ...any) {
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
		for i, a := range attrs {
			if s, ok := a.(string); ok && i%2 == 1 {
				attrs[i] = loggedRefusal(s, all)
			}
		}
		g.log.Info("connect refused", append([]any{"status", status, "reason", loggedRefusal(reason, all)}, attrs...)...)
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
	g.log.Info(fmt.Sprintf("connects refused and not logged (at most %d a minute are)", refusalBurst), "count", n)
}
