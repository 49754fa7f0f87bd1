// Package gateway is a local emulation of an API Gateway WebSocket API: it
// accepts WebSocket clients, invokes a route Handler with the same event
// shapes API Gateway gives a Lambda function ($connect, $disconnect,
// $default and action routes selected by $request.body.action), enforces
// API Gateway's limits (128 KB messages, 32 KB frames both ways, idle
// timeout, maximum connection duration; gorilla/websocket does not expose
// frame sizes, so the hijacked connection's inbound bytes pass through a
// frame-header tracker), and serves the @connections Management API
// (POST, GET, DELETE) on the same port so that the AWS SDK's
// apigatewaymanagementapi client works against it unchanged.
//
// A connection is registered before its $connect runs, since $connect
// writes its record: a POST, GET or DELETE for it in that moment waits
// for the $connect and the 101 (at most the 29 s integration timeout) and
// is answered as what the connection became, where API Gateway answers
// 410 Gone. A refused or failed $connect answers them 410, leaves nothing
// registered and calls no $disconnect.
//
// Close codes sent to clients:
//
//	1000 "connection deleted"  DELETE /@connections/{id}
//	1001 "Going away"          idle timeout or maximum duration (as AWS)
//	1001 "going away"          Shutdown
//	1008 "slow consumer"       more than Options.MaxQueuedBytes bytes
//	                           waited to be written to the client
//	1008 "too many frames"     the client kept sending over
//	                           Options.MaxFramesPerSecond
//	1009 "message too big"     the client sent a message over 128 KB
//	1009 "frame too big"       the client sent a frame over 32 KB
//	1007 "invalid UTF-8"       the client sent a text message that is not
//	                           UTF-8 (RFC 6455 §8.1); it is not routed
//	1002 "close frame of 1 byte"
//	                           the client sent a close frame whose payload
//	                           is 1 byte (the frame tracker refuses it)
//	1002 (what was wrong)      the client broke the WebSocket protocol
//	                           otherwise (gorilla/websocket sends it)
//
// The $disconnect event carries that code and reason, or the client's own
// close code and reason, or 1006 when the connection broke without a
// close frame (or with gorilla's 1002).
package gateway

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/gorilla/websocket"

	"github.com/socks-dev/socks/faults"
	"github.com/socks-dev/socks/internal/logsafe"
	"github.com/socks-dev/socks/pubsub"
)

// Handler is what API Gateway invokes for each route.
type Handler interface {
	Handle(ctx context.Context, req events.APIGatewayWebsocketProxyRequest) (events.APIGatewayProxyResponse, error)
}

// Options configures a Gateway.
type Options struct {
	// Handler is invoked for every route. Required.
	Handler Handler
	// Stage, when set, is the API's stage name: clients may connect at "/"
	// and "/STAGE", and the Management API answers at "/@connections/{id}"
	// and "/STAGE/@connections/{id}".
	Stage string
	// Routes are the action route keys besides $default, for example
	// "subscribe", "unsubscribe", "ping".
	Routes []string
	// IdleTimeout closes a connection over which nothing was sent for
	// this long, either way: no message from the client, none posted to
	// it (the gateway's pings and the client's answers do not count), as
	// API Gateway's idle timeout (default pubsub.IdleTimeout).
	IdleTimeout time.Duration
	// MaxDuration closes a connection this long after it opened (default
	// pubsub.MaxConnectionDuration).
	MaxDuration time.Duration
	// MaxQueuedBytes bounds the bytes waiting to be written to one
	// connection, those its socket did not take at once (default
	// DefaultMaxQueuedBytes). A message that would pass it closes the
	// connection with 1008 "slow consumer" instead of growing memory.
	MaxQueuedBytes int
	// MaxConnections bounds the open connections of the gateway (0: no
	// bound). Upgrades over it are refused with 503 and the reason.
	MaxConnections int
	// MaxFramesPerSecond bounds the messages one client may send per
	// second (default DefaultMaxFramesPerSecond, a burst of as many
	// allowed). Each message over it gets an error frame and is not
	// routed; a client that keeps flooding (more than twice the rate
	// refused in a row) is closed with 1008 "too many frames".
	MaxFramesPerSecond int
	// AllowOrigins, when set, are the only Origin header values an
	// upgrade may carry ("https://app.example"); an upgrade with another
	// Origin is refused with 403. Requests without Origin (non-browser
	// clients) pass. Default: any origin, as API Gateway.
	AllowOrigins []string
	// Credentials, when set, is the key pair every @connections call
	// must be signed with (SigV4, any region and service); others get
	// 403. Unset, any Authorization header is accepted, as on loopback,
	// from calls whose Host is localhost or a loopback address only (a
	// browser page that points its own name at 127.0.0.1 gets 403).
	Credentials *Credentials
	// Logger receives debug logs of connections, the refused handshakes
	// at Info (a few a minute, every one at debug level) and warnings about
	// handler errors (default: discard).
	Logger *slog.Logger
	// Site, when set, answers the plain HTTP requests that are neither a
	// WebSocket upgrade nor a Management API call: GET / without an
	// Upgrade header, and every other path (default: API Gateway's 403).
	// `socks serve` serves socks.js and the live page with it.
	Site http.Handler
	// Now is the clock for the times reported in events and by
	// GET /@connections (default time.Now). Timeouts use the monotonic
	// clock, but a connection is also closed once Now passes its
	// connectedAt plus MaxDuration, its record's expiry.
	Now func() time.Time
	// Faults, when set, makes the gateway misbehave on purpose: its posts
	// on the Management API, its connect rate and its $disconnect events
	// (see package faults).
	Faults *faults.Injector

	// Tests control the idle timeout's clock: since measures time from a
	// connection's start (default time.Since), and idleTick, when set,
	// replaces the sweeper's ticks for the idle timeout: each value sent
	// on it checks every connection once.
	since    func(time.Time) time.Duration
	idleTick chan time.Time
	// idleSwept, when set, receives once the sweep of each idleTick
	// value is done.
	idleSwept chan struct{}
	// pingPeriod is how often each client is pinged (default pingPeriod).
	pingPeriod time.Duration
	// readTimedOut, when set, is told the outcome of each read deadline
	// that passed (see frameConn.drained).
	readTimedOut func(alive bool)
	// httpIdleTimeout is how long a kept-alive HTTP connection may wait
	// for its next request (default httpIdleTimeout).
	httpIdleTimeout time.Duration
	// bodyWait bounds the reading of a request's body (default
	// bodyWait).
	bodyWait time.Duration
	// responseWait bounds the answer to one plain HTTP request, from its
	// headers to the last byte written (default responseWait).
	responseWait time.Duration
	// awaitingConnect, when set, is called when a call begins to wait for
	// a connection's $connect.
	awaitingConnect func()
	// connState, when set, is told each change of an HTTP connection's
	// state.
	connState func(net.Conn, http.ConnState)
	// disconnectRetry and disconnectRetryMax are the first and the
	// longest pause before a failed $disconnect is called again
	// (defaults: the constants; see redisconnect.go).
	disconnectRetry, disconnectRetryMax time.Duration
}

const (
	// writeWait bounds one write of a frame to a client.
	writeWait = 10 * time.Second
	// pongWait is how long a client may stay silent, not even answering
	// pings, before the connection is considered dead, unless it took
	// bytes of its backlog meanwhile: its pings and pongs wait behind the
	// backlog (see frameConn.drained).
	pongWait = 60 * time.Second
	// pingPeriod is how often the gateway pings each client; less than
	// pongWait.
	pingPeriod = pongWait * 9 / 10
	// closeGrace is how long the gateway waits for a client to answer its
	// close frame before dropping the TCP connection.
	closeGrace = time.Second
	// integrationTimeout bounds one Handler call, as API Gateway's 29 s
	// integration timeout does.
	integrationTimeout = 29 * time.Second
	// connectWait bounds a call's wait for a connection still in its
	// $connect: the $connect began first, and its handler has
	// integrationTimeout.
	connectWait = integrationTimeout
	// httpIdleTimeout closes a kept-alive HTTP connection that sent no
	// next request for this long: longer than the Management API client's
	// own idle timeout (30 s) and Go's default (90 s), so that a client
	// gives a connection up before the gateway closes it under a request.
	httpIdleTimeout = 2 * time.Minute
	// bodyWait bounds the reading of a request's body: a Management API
	// call's (at most 128 KB), or what net/http reads of one a handler
	// left unread.
	bodyWait = 30 * time.Second
	// responseWait bounds the answer to one plain HTTP request (an
	// upgrade is rid of it when hijacked), from its headers to the last
	// byte written, so that a client that reads no answer is let go of:
	// the longest answer is a Management API call's, whose body may take
	// bodyWait, its connection's $connect connectWait, and its answer a
	// write.
	responseWait = bodyWait + connectWait + writeWait
	// maxSweepPeriod is the longest period of the sweeper, the one timer
	// of every connection's ping, idle timeout and maximum duration.
	maxSweepPeriod = time.Second
	// DefaultMaxQueuedBytes is the default bound of the bytes waiting to
	// be written to one connection: eight messages of the largest size.
	DefaultMaxQueuedBytes = 8 * pubsub.MaxMessageBytes
	// DefaultMaxFramesPerSecond is the default inbound message rate of one
	// connection.
	DefaultMaxFramesPerSecond = 50
	// apiID is the RequestContext.APIID of every event.
	apiID = "local"
	// maxHeaderBytes is MaxRequestHeaderBytes.
	maxHeaderBytes = MaxRequestHeaderBytes
	// headerReadSlop is what net/http reads past Server.MaxHeaderBytes
	// (its bufio slop): ServerMaxHeaderBytes is this much under
	// maxHeaderBytes, so that the bound is exact for a connection's
	// first request (TestRequestHeadersAreBoundedAsOnAPIGateway). A
	// kept-alive connection's next requests may pass it by up to this
	// much: net/http peeks at them before it sets the bound.
	headerReadSlop = 4096
	// headerCeiling is what the gateway's server reads of a request's
	// line and headers at most: over it net/http answers its own bare
	// 431 and closes, unlogged. Under it the gateway checks
	// maxHeaderBytes itself (headTooLarge), to say in its log what it
	// refused; a block of tiny headers this size costs some 0.8 MB to
	// parse, where net/http's default of 1 MB cost 26 MB.
	headerCeiling = 32 * 1024
	// maxURLLength bounds an upgrade's URL as received (its path and
	// query): API Gateway's hard quota for a WebSocket API's URL.
	maxURLLength = 4096
)

// MaxRequestHeaderBytes bounds a request's line and headers together:
// API Gateway takes at most 10,240 bytes of them (the quota its HTTP APIs
// state). Over it the gateway answers 431 Request Header Fields Too
// Large and closes, before any $connect or call, and logs the refusal
// (headTooLarge). net/http's default bound, 1 MB, let a block of tiny
// headers cost some 26 MB to parse, for each request.
const MaxRequestHeaderBytes = 10240

// ServerMaxHeaderBytes is the http.Server.MaxHeaderBytes that bounds a
// request's line and headers at MaxRequestHeaderBytes, net/http reading
// some past its MaxHeaderBytes, and answering its own 431 over it: for
// the other servers of `socks serve` (--pprof). The gateway's server
// reads up to headerCeiling and checks the bound itself.
const ServerMaxHeaderBytes = maxHeaderBytes - headerReadSlop

// Close codes and reasons the gateway sends; see the package comment.
const (
	reasonTimeout      = "Going away"
	reasonShutdown     = "going away"
	reasonSlowConsumer = "slow consumer"
	reasonFlood        = pubsub.TooManyFrames
	reasonTooBig       = "message too big"
	reasonFrameTooBig  = "frame too big"
	reasonDeleted      = "connection deleted"
	reasonInvalidUTF8  = "invalid UTF-8"
	reasonShortClose   = "close frame of 1 byte"
	// reasonAbnormal is the $disconnect reason of a connection that broke
	// without a close frame (code 1006, never sent).
	reasonAbnormal = "Connection closed abnormally"
)

var stageName = regexp.MustCompile(`^[A-Za-z0-9_-]+$`)

// ValidStage reports whether stage may be Options.Stage: empty, or
// letters, digits, '-' and '_'.
func ValidStage(stage string) bool { return stage == "" || stageName.MatchString(stage) }

// Gateway is a running local WebSocket API.
type Gateway struct {
	opts     Options
	routes   map[string]bool
	log      *slog.Logger
	now      func() time.Time
	upgrader websocket.Upgrader
	srv      *http.Server

	// ctx is the parent of every Handler call; cancelled when Shutdown gives
	// up waiting.
	ctx    context.Context
	cancel context.CancelFunc

	// refusals limits the log lines of refused handshakes.
	refusals refusals
	// lost are the $disconnects whose handler failed, to call again.
	lost lostDisconnects

	mu    sync.RWMutex
	conns map[string]*conn
	// closing refuses new upgrades: set by StopAccepting or Shutdown.
	closing bool
	// upgrades counts the upgrade requests in progress and the
	// connections they became, for MaxConnections.
	upgrades int
	// wg counts upgrade requests and the connections they became; Add is
	// only called under mu while !closing.
	wg           sync.WaitGroup
	shutdownOnce sync.Once
	shutdownDone chan struct{}
	sweepOnce    sync.Once

	// requestIDs numbers the Management API's responses (see requestID).
	requestIDs   atomic.Uint64
	requestIDTag string
	// id is this gateway's run ID (ID), and idHeader its header value.
	id       string
	idHeader []string

	// fresh holds the accepted connections that have not sent a request
	// yet (http.StateNew). Browsers open such sockets ahead of need; the
	// http.Server waits 5 s for each at Shutdown, so Shutdown closes them.
	freshMu sync.Mutex
	fresh   map[net.Conn]struct{}
}

// New returns a Gateway; call Serve to accept clients.
func New(opts Options) (*Gateway, error) {
	if opts.Handler == nil {
		return nil, errors.New("gateway: Options.Handler is required")
	}
	if !ValidStage(opts.Stage) {
		return nil, fmt.Errorf("gateway: stage %q: use only letters, digits, '-' and '_'", opts.Stage)
	}
	routes := make(map[string]bool, len(opts.Routes))
	for _, r := range opts.Routes {
		if r == "" || strings.HasPrefix(r, "$") {
			return nil, fmt.Errorf("gateway: route key %q: action routes are non-empty and do not start with '$'", r)
		}
		routes[r] = true
	}
	if opts.IdleTimeout <= 0 {
		opts.IdleTimeout = pubsub.IdleTimeout
	}
	if opts.MaxDuration <= 0 {
		opts.MaxDuration = pubsub.MaxConnectionDuration
	}
	if opts.MaxQueuedBytes <= 0 {
		opts.MaxQueuedBytes = DefaultMaxQueuedBytes
	}
	if opts.MaxFramesPerSecond <= 0 {
		opts.MaxFramesPerSecond = DefaultMaxFramesPerSecond
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.since == nil {
		opts.since = time.Since
	}
	if opts.pingPeriod <= 0 {
		opts.pingPeriod = pingPeriod
	}
	if opts.httpIdleTimeout <= 0 {
		opts.httpIdleTimeout = httpIdleTimeout
	}
	if opts.bodyWait <= 0 {
		opts.bodyWait = bodyWait
	}
	if opts.responseWait <= 0 {
		opts.responseWait = responseWait
	}
	if opts.disconnectRetry <= 0 {
		opts.disconnectRetry = disconnectRetry
	}
	if opts.disconnectRetryMax <= 0 {
		opts.disconnectRetryMax = disconnectRetryMax
	}
	g := &Gateway{
		opts:   opts,
		routes: routes,
		// Its lines carry what clients sent (a refusal's reason, a
		// handler's error naming a ?geek=): logsafe shortens it.
		log: logsafe.Logger(opts.Logger),
		now: opts.Now,
		upgrader: websocket.Upgrader{
			// 0: gorilla reads through the reader Hijack returns (the
			// frame-tracked one, as big as the HTTP server's), instead of
			// allocating another 4 KB per connection.
			ReadBufferSize: 0,
			// Messages are written in frames of at most this size.
			WriteBufferSize: pubsub.MaxFrameBytes,
			WriteBufferPool: &sync.Pool{},
			// API Gateway does not check the Origin header.
			CheckOrigin: func(*http.Request) bool { return true },
		},
		conns:        make(map[string]*conn),
		requestIDTag: newID()[:8],
		id:           runID(),
		shutdownDone: make(chan struct{}),
		fresh:        make(map[net.Conn]struct{}),
	}
	// Shared by every answer, read-only: an Add would append to a copy
	// (its capacity is its length).
	g.idHeader = []string{g.id}[:1:1]
	g.lost.max, g.lost.perPass, g.lost.first, g.lost.most = maxLostDisconnects, maxLostPerPass, opts.disconnectRetry, opts.disconnectRetryMax
	g.lost.ctx, g.lost.cancel = context.WithCancel(context.Background())
	g.ctx, g.cancel = context.WithCancel(context.Background())
	g.srv = &http.Server{
		Handler:           http.HandlerFunc(g.serveHTTP),
		ReadHeaderTimeout: 10 * time.Second,
		MaxHeaderBytes:    headerCeiling - headerReadSlop,
		WriteTimeout:      opts.responseWait,
		IdleTimeout:       opts.httpIdleTimeout,
		ConnState:         g.trackFresh,
		ErrorLog:          slog.NewLogLogger(opts.Logger.Handler(), slog.LevelDebug),
	}
	return g, nil
}

// Serve accepts clients and Management API calls on ln. It blocks until
// Shutdown has finished and then returns nil; any other failure of the
// listener is returned at once.
func (g *Gateway) Serve(ln net.Listener) error {
	g.sweepOnce.Do(func() { go g.sweep() })
	err := g.srv.Serve(ln)
	if errors.Is(err, http.ErrServerClosed) {
		<-g.shutdownDone
		return nil
	}
	return err
}

// Shutdown stops accepting clients, sends each connected client a close
// frame 1001 "going away", waits (for at most a short grace each) for them to
// answer, calls $disconnect for each and closes them, then calls once more
// (within ctx) the $disconnects that failed. When ctx ends first it
// drops the remaining connections and Management API calls, cancels the
// Handler calls in progress, still waits for their $disconnect calls, and
// returns ctx's error.
func (g *Gateway) Shutdown(ctx context.Context) error {
	var err error
	ran := false
	g.shutdownOnce.Do(func() {
		ran = true
		err = g.shutdown(ctx)
	})
	if ran {
		return err
	}
	select {
	case <-g.shutdownDone:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// retryAfterShutdown is the Retry-After of an upgrade refused because the
// gateway is shutting down: about the time a restart takes.
const retryAfterShutdown = 5 * time.Second

// StopAccepting refuses new clients from now on with 503 saying that the
// gateway is shutting down (and a Retry-After), while the connected ones
// stay and the Management API still answers: the first step of a
// shutdown that lets work in hand finish before Shutdown closes them.
func (g *Gateway) StopAccepting() {
	g.mu.Lock()
	g.closing = true
	g.mu.Unlock()
}

func (g *Gateway) shutdown(ctx context.Context) error {
	defer close(g.shutdownDone)
	defer g.cancel()

	// The passes calling the $disconnects that failed stop (the call in
	// progress is cancelled): each is called once more, with those that
	// fail as the clients are closed, once these have run (finalLost).
	g.stopLost()

	g.mu.Lock()
	g.closing = true
	conns := make([]*conn, 0, len(g.conns))
	for _, c := range g.conns {
		conns = append(conns, c)
	}
	g.mu.Unlock()

	srvDone := make(chan error, 1)
	go func() { srvDone <- g.srv.Shutdown(ctx) }()
	g.closeFresh()

	// Connections registering from now on see g.closing and close themselves.
	for _, c := range conns {
		c.closeWith(websocket.CloseGoingAway, reasonShutdown, true)
	}
	allDone := make(chan struct{})
	go func() {
		g.wg.Wait()
		close(allDone)
	}()

	var err error
	select {
	case <-allDone:
	case <-ctx.Done():
		err = ctx.Err()
		g.cancel()
		g.mu.Lock()
		for _, c := range g.conns {
			if c.ws != nil {
				c.ws.Close()
			}
		}
		g.mu.Unlock()
		<-allDone
	}
	// Within ctx: with no time left, it says what is left.
	g.finalLost(ctx)
	// Again, for any accepted while the listener was closing.
	g.closeFresh()
	srvErr := <-srvDone
	if srvErr != nil {
		// Out of time: the HTTP requests still running (a Management
		// API call whose body never comes) are dropped too.
		_ = g.srv.Close()
	}
	// Last, to count the handshakes refused while the gateway stopped.
	g.flushRefusals()
	if err == nil {
		err = srvErr
	}
	return err
}

// sweep is the one timer of every connection, until Shutdown ends: each
// tick it pings the connections due a ping (every Options.pingPeriod) and closes
// with 1001 those idle for IdleTimeout (nothing from the client, nothing
// posted to it) or open for MaxDuration. It ticks
// every maxSweepPeriod, or more often when a timeout is short.
func (g *Gateway) sweep() {
	period := min(maxSweepPeriod, g.opts.IdleTimeout/8, g.opts.MaxDuration/8, g.opts.pingPeriod/8)
	t := time.NewTicker(max(period, 10*time.Millisecond))
	defer t.Stop()
	idleTick := g.opts.idleTick // nil unless a test drives the idle clock
	for {
		select {
		case <-g.ctx.Done():
			return
		case <-t.C:
			g.sweepConns(true, idleTick == nil)
			g.retryLost()
		case <-idleTick:
			g.sweepConns(false, true)
			if g.opts.idleSwept != nil {
				g.opts.idleSwept <- struct{}{}
			}
		}
	}
}

// sweepConns pings the connections due a ping and closes those open for
// MaxDuration (timers), and those quiet for IdleTimeout (idle). Either
// way it closes those whose record has expired by the wall clock (Now):
// connectedAt plus MaxDuration, the record's expiry, passes before the
// monotonic MaxDuration when the wall clock steps forward (a laptop
// resumed from sleep, whose monotonic clock stood still; a VM restored;
// NTP), and from then on the broker finds no record to deliver to.
func (g *Gateway) sweepConns(timers, idle bool) {
	var ping, timedOut []*conn
	// The wall clock's reading alone (Round(0) drops the monotonic one):
	// when both times carry a monotonic reading, as time.Now's and the
	// connectedAt it set do, Before compares those alone, and a wall
	// clock stepped forward would never be seen.
	now, wall := time.Now(), g.now().Round(0)
	g.mu.RLock() // nextPing, seenPosts and lastPost are the sweeper's own
	for _, c := range g.conns {
		if c.ws == nil || c.isClosing() {
			continue
		}
		if n := c.posted.Load(); n != c.seenPosts {
			c.seenPosts, c.lastPost = n, g.opts.since(c.start)
		}
		age := now.Sub(c.start)
		switch {
		case timers && age >= g.opts.MaxDuration:
			timedOut = append(timedOut, c)
		case !wall.Before(c.connectedAt.Add(g.opts.MaxDuration)):
			timedOut = append(timedOut, c)
		case idle && g.opts.since(c.start)-max(time.Duration(c.lastActive.Load()), c.lastPost) >= g.opts.IdleTimeout:
			timedOut = append(timedOut, c)
		case timers && age >= c.nextPing:
			c.nextPing = age + g.opts.pingPeriod
			ping = append(ping, c)
		}
	}
	g.mu.RUnlock()
	for _, c := range timedOut {
		c.closeWith(websocket.CloseGoingAway, reasonTimeout, true)
	}
	for _, c := range ping {
		c.ping()
	}
}

// trackFresh is the server's ConnState hook: it keeps the set of
// connections that have sent nothing yet.
func (g *Gateway) trackFresh(c net.Conn, state http.ConnState) {
	if g.opts.connState != nil {
		g.opts.connState(c, state)
	}
	g.freshMu.Lock()
	defer g.freshMu.Unlock()
	if state == http.StateNew {
		g.fresh[c] = struct{}{}
	} else {
		delete(g.fresh, c)
	}
}

// closeFresh closes the connections that have sent nothing yet: there is
// no request on them to finish.
func (g *Gateway) closeFresh() {
	g.freshMu.Lock()
	defer g.freshMu.Unlock()
	for c := range g.fresh {
		_ = c.Close()
		delete(g.fresh, c)
	}
}

// ID returns this gateway's run ID: random, new with each gateway, and
// sent in pubsub.GatewayIDHeader on every Management API answer. `socks
// serve` records it in the state dir beside the gateway's address, so
// that a process posting to that address can tell this gateway's answers
// from another program's that took the port after it stopped.
func (g *Gateway) ID() string { return g.id }

// ManagementEndpoint returns the Management API endpoint of a gateway
// serving on addr ("host:port"): "http://ADDR", or "http://ADDR/STAGE"
// when a stage is set. Give it to the SDK client as its BaseEndpoint.
func (g *Gateway) ManagementEndpoint(addr string) string {
	if g.opts.Stage == "" {
		return "http://" + addr
	}
	return "http://" + addr + "/" + g.opts.Stage
}

// Count returns the number of open connections: those whose $connect
// accepted them (from before the 101), not counting those being closed.
func (g *Gateway) Count() int {
	g.mu.RLock()
	defer g.mu.RUnlock()
	n := 0
	for _, c := range g.conns {
		if c.accepted.Load() && !c.isClosing() {
			n++
		}
	}
	return n
}

// lookup returns the open connection with id, or nil. A connection still
// in its $connect or upgrade is waited for (see awaitConnect) and returned
// if it opened: a call made then is answered as what the connection
// became.
func (g *Gateway) lookup(ctx context.Context, id string) *conn {
	g.mu.RLock()
	c := g.conns[id]
	connecting := c != nil && c.ws == nil
	g.mu.RUnlock()
	if connecting {
		c = g.awaitConnect(ctx, c)
	}
	if c == nil || c.isClosing() {
		return nil
	}
	return c
}

// awaitConnect waits until c's $connect and upgrade have ended, for at
// most connectWait or until ctx ends, and returns c if it opened, else
// nil. The $connect has written the record by the time anyone else knows
// the ID, so this is usually the rest of the handler's return and the
// 101; connectWait bounds it when the handler overruns its own bound, or
// posts to its own connection.
func (g *Gateway) awaitConnect(ctx context.Context, c *conn) *conn {
	g.mu.Lock()
	if c.ws == nil && g.conns[c.id] == c {
		if c.ended == nil {
			c.ended = make(chan struct{})
		}
		ended := c.ended
		g.mu.Unlock()
		if g.opts.awaitingConnect != nil {
			g.opts.awaitingConnect()
		}
		t := time.NewTimer(connectWait)
		select {
		case <-ended:
		case <-ctx.Done():
		case <-t.C:
		}
		t.Stop()
		g.mu.Lock()
	}
	open := c.ws != nil
	g.mu.Unlock()
	if !open {
		return nil
	}
	return c
}

// serveHTTP routes a request: upgrades at "/" or "/STAGE", the Management
// API at "[/STAGE]/@connections/{id}".
func (g *Gateway) serveHTTP(w http.ResponseWriter, r *http.Request) {
	g.bound(w, r)
	p := r.URL.EscapedPath()
	staged := false
	if s := "/" + g.opts.Stage; g.opts.Stage != "" && (p == s || strings.HasPrefix(p, s+"/")) {
		p, staged = strings.TrimPrefix(p, s), true
	}
	if strings.HasPrefix(p, connectionsPrefix) {
		// On every answer, refusals (431 too) and --faults' included,
		// as API Gateway names each of its answers: the caller takes
		// none without the run ID for this gateway's (see ID).
		w.Header()[pubsub.GatewayIDHeader] = g.idHeader
		w.Header()["X-Amzn-Requestid"] = []string{g.requestID()}
	}
	if n := headBytes(r); n > maxHeaderBytes {
		g.headTooLarge(w, r, n)
		return
	}
	switch {
	case g.opts.Site != nil && (p == "" || p == "/") && !isUpgrade(r):
		g.serveSite(w, r, p, staged)
	case p == "" || p == "/":
		if g.opts.Faults != nil && !g.opts.Faults.AllowConnect() {
			const reason = "Too many connects: the connect rate is limited by --faults connect-rate"
			g.refused(http.StatusTooManyRequests, reason)
			writeAPIError(w, http.StatusTooManyRequests, "LimitExceededException", reason)
			return
		}
		g.serveUpgrade(w, r)
	case strings.HasPrefix(p, connectionsPrefix):
		id := strings.TrimPrefix(p, connectionsPrefix)
		if g.opts.Faults == nil {
			g.serveManagement(w, r, id)
			return
		}
		g.opts.Faults.Management(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			// A slow fault held the call before it is handled, as a
			// gateway slow to start would: its body and answer still
			// have their time.
			g.bound(w, r)
			g.serveManagement(w, r, id)
		})).ServeHTTP(w, r)
	case g.opts.Site != nil:
		g.serveSite(w, r, p, staged)
	default:
		// What API Gateway answers for a path it has no resource for.
		writeAPIError(w, http.StatusForbidden, "ForbiddenException", "Forbidden")
	}
}

// bound puts r's bounds from now: a body that stops coming is not waited
// for past bodyWait, whoever reads it: a handler, or net/http, which reads
// what a handler left (up to 256 KB) before it answers; nor a client that
// reads no answer past responseWait (the server's WriteTimeout, the same,
// runs from the headers). Without them the server waits for ever, and
// anyone who reaches the port can hold sockets until the gateway runs out
// of files. An upgrade's connection is rid of both when hijacked.
func (g *Gateway) bound(w http.ResponseWriter, r *http.Request) {
	rc := http.NewResponseController(w)
	now := time.Now()
	if r.ContentLength != 0 {
		_ = rc.SetReadDeadline(now.Add(g.opts.bodyWait))
	}
	_ = rc.SetWriteDeadline(now.Add(g.opts.responseWait))
}

// serveSite hands r to the Site. A request under the stage (staged) is
// handed on with p, its escaped path under the stage, as its path: the
// site's paths are the same there ("/STAGE" and "/STAGE/" are "/", the
// live page, whose "./socks.js" is then "/STAGE/socks.js").
func (g *Gateway) serveSite(w http.ResponseWriter, r *http.Request, p string, staged bool) {
	if !staged {
		g.opts.Site.ServeHTTP(w, r)
		return
	}
	if p == "" {
		p = "/"
	}
	path, err := url.PathUnescape(p)
	if err != nil {
		http.NotFound(w, r)
		return
	}
	r2 := new(http.Request)
	*r2 = *r
	u := *r.URL
	u.Path, u.RawPath = path, p
	r2.URL = &u
	g.opts.Site.ServeHTTP(w, r2)
}

// isUpgrade reports whether r asks for any protocol upgrade: those stay
// with serveUpgrade, which answers the malformed ones.
func isUpgrade(r *http.Request) bool {
	return r.Header.Get("Upgrade") != "" || r.Header.Get("Sec-Websocket-Key") != ""
}

// headBytes is the length of r's request line and headers as a client
// writes them: "METHOD TARGET PROTO\r\n", a "Name: value\r\n" line for
// each value (Host's and Transfer-Encoding's, which net/http takes out
// of r.Header, too) and the blank line. net/http keeps no count of the
// bytes it read: a line sent with more white space than that (around a
// value, or folded) counts that much shorter.
func headBytes(r *http.Request) int {
	n := len(r.Method) + 1 + len(r.RequestURI) + 1 + len(r.Proto) + len("\r\n")
	line := func(name, value string) { n += len(name) + len(": ") + len(value) + len("\r\n") }
	if r.Host != "" {
		line("Host", r.Host)
	}
	if len(r.TransferEncoding) > 0 {
		line("Transfer-Encoding", strings.Join(r.TransferEncoding, ", "))
	}
	for name, values := range r.Header {
		for _, v := range values {
			line(name, v)
		}
	}
	return n + len("\r\n")
}

// headTooLarge answers a request whose line and headers are n bytes,
// over maxHeaderBytes, 431, closing the connection as net/http does for
// one over its own bound, and logs it as a refusal (a few a minute):
// most often it is a browser's cookies for localhost, which other local
// apps set too, and the page or its connect fails with nothing else to
// say why. The cookies themselves are not quoted: only their size.
func (g *Gateway) headTooLarge(w http.ResponseWriter, r *http.Request, n int) {
	reason := fmt.Sprintf("Request Header Fields Too Large: this request's line and headers are %d bytes, and API Gateway takes at most %d", n, maxHeaderBytes)
	if cookies := len(strings.Join(r.Header.Values("Cookie"), "")); cookies > 0 {
		reason += fmt.Sprintf("; %d bytes of them are cookies, which a browser sends for this host (localhost or 127.0.0.1, whatever the port, set by other local apps too): clear them", cookies)
	}
	if isUpgrade(r) {
		g.refused(http.StatusRequestHeaderFieldsTooLarge, reason)
	} else {
		g.refusedRequest(http.StatusRequestHeaderFieldsTooLarge, reason, "method", r.Method, "path", r.URL.EscapedPath())
	}
	w.Header().Set("Connection", "close")
	http.Error(w, reason, http.StatusRequestHeaderFieldsTooLarge)
}
