package gateway

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/aws/aws-lambda-go/events"
	"github.com/gorilla/websocket"

	"github.com/socks-dev/socks/internal/loopback"
	"github.com/socks-dev/socks/pubsub"
)

// pingPayload marks the gateway's own pings, so that the pongs answering
// them do not count as client activity: otherwise every live client would
// stay active forever and the idle timeout could never fire.
var pingPayload = []byte("socks-gateway")

// outbound is one message queued for a client.
type outbound struct {
	kind int // websocket.TextMessage or websocket.BinaryMessage
	data []byte
	// pm, when set, is data prepared as one frame (the in-process pusher's
	// fan-outs): written as is.
	pm *websocket.PreparedMessage
}

// conn is one WebSocket connection. Its one goroutine is the reader,
// started once upgraded. Whoever sends to the client writes, one at a time
// under wmu, and a write never waits for the client (see frameConn). The
// gateway's sweeper pings it and closes it at its idle timeout and
// maximum duration; once it ends, a goroutine runs finish.
type conn struct {
	g  *Gateway
	id string
	// ws and fc are set once upgraded, under wmu (and g.mu for ws).
	ws *websocket.Conn
	fc *frameConn

	connectedAt time.Time // g.now() at $connect
	start       time.Time // time.Now() at $connect, for the timers
	sourceIP    string
	userAgent   string
	host        string

	// wmu serialises the data writes (gorilla takes one writer at a
	// time); it is held from the registration through $connect and the
	// upgrade, so that a close meanwhile waits for them (see finish).
	wmu sync.Mutex
	// ended, made under g.mu by the first call that waits for the
	// connection's $connect (see awaitConnect), is closed under g.mu once
	// the $connect and the upgrade have ended, either way.
	ended chan struct{}
	// Inbound rate: tokens left and when they were last refilled
	// (reader goroutine only), and refusals in a row.
	tokens   float64
	refilled time.Time
	refused  int
	// lastActive is time.Since(start) at the last inbound frame;
	// lastActiveAt the g.now() of it in Unix milliseconds.
	lastActive   atomic.Int64
	lastActiveAt atomic.Int64
	// nextPing is the time since start of the next ping (the sweeper's
	// own).
	nextPing time.Duration
	// posted counts the messages posted to the client (the Management
	// API, the in-process pusher): activity for the idle timeout, as on
	// API Gateway. The sweeper notes when it sees the count change
	// (lastPost, the time since start; seenPosts), so that a post costs
	// one atomic add.
	posted    atomic.Uint32
	seenPosts uint32
	lastPost  time.Duration

	accepted  atomic.Bool // its $connect accepted it (set before the 101)
	closeOnce sync.Once
	closed    atomic.Bool // set by closeWith
	// Set once by closeWith.
	closeCode   int
	closeReason string
	closeFrame  bool // finish sends a close frame
	// readerDone is closed when the reader has ended, finished when
	// finish has; both made by closeWith.
	readerDone chan struct{}
	finished   chan struct{}
}

// newID returns an API Gateway-like ID: 16 characters of URL-safe base64 of
// 11 random bytes, for example "L0SM9cOFvHcCIhw=".
func newID() string {
	var b [11]byte
	_, _ = rand.Read(b[:]) // never fails
	return base64.URLEncoding.EncodeToString(b[:])
}

// runID returns a new gateway's run ID: 128 random bits.
func runID() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // never fails
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// connSeq numbers this process's connections, from a random start.
var connSeq atomic.Uint32

func init() {
	var b [4]byte
	_, _ = rand.Read(b[:]) // never fails
	connSeq.Store(binary.BigEndian.Uint32(b[:]))
}

// newConnID returns a connection ID shaped as newID's, whose first three
// bytes are the connection's number (connSeq) and the other eight random:
// the IDs of connections made close together are close in order, so that
// their records (in the state file, kept in order of ID) share pages. With
// random IDs each record of a burst of connects changed pages of its own,
// several of 4 KiB to write per $connect.
func newConnID() string {
	var b [11]byte
	n := connSeq.Add(1)
	b[0], b[1], b[2] = byte(n>>16), byte(n>>8), byte(n)
	_, _ = rand.Read(b[3:]) // never fails
	return base64.URLEncoding.EncodeToString(b[:])
}

// isClosing reports whether the connection is ending.
func (c *conn) isClosing() bool { return c.closed.Load() }

// closeWith ends the connection once with code and reason (the $disconnect
// status), and starts finish. When frame is set, finish sends a close
// frame with them first; it is not when the client already sent one or
// the connection broke.
func (c *conn) closeWith(code int, reason string, frame bool) {
	c.closeOnce.Do(func() {
		c.closeCode, c.closeReason, c.closeFrame = code, reason, frame
		c.readerDone = make(chan struct{})
		c.finished = make(chan struct{})
		c.closed.Store(true)
		go c.finish()
	})
}

// enqueue writes a message to the client without waiting for it (what the
// socket does not take at once waits in the connection's backlog). It
// reports false when the connection is ending; a message that would take
// the backlog over Options.MaxQueuedBytes ends it as a slow consumer.
func (c *conn) enqueue(m outbound) bool {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if c.isClosing() || c.ws == nil {
		return false
	}
	if q := c.fc.queuedBytes(); q+len(m.data) > c.g.opts.MaxQueuedBytes {
		c.g.log.Debug("slow consumer", "connectionId", c.id, "queuedBytes", q)
		c.closeWith(websocket.ClosePolicyViolation, reasonSlowConsumer, true)
		return false
	}
	if err := c.write(m); err != nil {
		c.writeFailed(err)
		return false
	}
	return true
}

// post enqueues a message posted to the client (see enqueue), which
// counts as activity for the idle timeout.
func (c *conn) post(m outbound) bool {
	if !c.enqueue(m) {
		return false
	}
	c.posted.Add(1)
	return true
}

// writeFailed ends the connection after a failed write. A write after the
// close frame ends nothing: whoever sent that frame ends the connection,
// with its status (finish, or the reader with the client's close frame,
// which it answers before it returns it).
func (c *conn) writeFailed(err error) {
	if errors.Is(err, websocket.ErrCloseSent) {
		return
	}
	c.g.log.Debug("write failed", "connectionId", c.id, "err", err)
	c.closeWith(websocket.CloseAbnormalClosure, reasonAbnormal, false)
}

// touch records inbound activity.
func (c *conn) touch() {
	c.lastActive.Store(int64(c.g.opts.since(c.start)))
	c.lastActiveAt.Store(c.g.now().UnixMilli())
}

// originAllowed reports whether a browser page of origin may connect to
// the gateway reached at host: any page when --allow-origin is not set;
// otherwise the origins it lists, and the gateway's own pages (the live
// page), whose origin is http:// and the loopback address the browser
// asked for. A page that points its own name at 127.0.0.1 sends that name
// as Host, so it is not taken for the gateway's own.
func (g *Gateway) originAllowed(origin, host string) bool {
	if len(g.opts.AllowOrigins) == 0 || slices.Contains(g.opts.AllowOrigins, origin) {
		return true
	}
	return loopback.Host(host) && origin == "http://"+host
}

// serveUpgrade handles a WebSocket upgrade request: $connect, then the
// connection's life, then $disconnect.
func (g *Gateway) serveUpgrade(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet || !websocket.IsWebSocketUpgrade(r) ||
		r.Header.Get("Sec-Websocket-Version") != "13" || r.Header.Get("Sec-Websocket-Key") == "" {
		w.Header().Set("Sec-WebSocket-Version", "13")
		http.Error(w, "Upgrade Required", http.StatusUpgradeRequired)
		return
	}
	if n := len(r.RequestURI); n > maxURLLength {
		// What the URL holds is not echoed: it may hold a chatter ID.
		reason := fmt.Sprintf("URI Too Long: this WebSocket URL is %d characters long, and API Gateway takes at most %d; ask for fewer or shorter topics", n, maxURLLength)
		g.refused(http.StatusRequestURITooLong, reason)
		http.Error(w, reason, http.StatusRequestURITooLong)
		return
	}
	query, err := url.ParseQuery(r.URL.RawQuery)
	if err != nil {
		// Go drops a pair holding a raw ';' or a malformed %-escape, and
		// the rest would reach $connect: ?topic=news;sport as no topic,
		// that is every topic. The query is not echoed: it may hold a
		// chatter ID.
		const reason = "Bad Request: the query string holds a raw ';' or a malformed %-escape, which would be dropped: escape ';' as %3B and '%' as %25"
		g.refused(http.StatusBadRequest, reason)
		http.Error(w, reason, http.StatusBadRequest)
		return
	}
	if !validKey(r.Header.Get("Sec-Websocket-Key")) {
		// The upgrade would refuse it after $connect recorded the
		// connection.
		http.Error(w, "Bad Request: Sec-WebSocket-Key must be the base64 of 16 bytes", http.StatusBadRequest)
		return
	}
	if r.ContentLength != 0 {
		// Likewise: the upgrade drops a connection whose bytes came
		// before its 101.
		http.Error(w, "Bad Request: an upgrade request has no body", http.StatusBadRequest)
		return
	}
	if origin := r.Header.Get("Origin"); origin != "" && !g.originAllowed(origin, r.Host) {
		// The Origin is not echoed: it is the caller's input. The log
		// names it, for the operator who may want to allow it.
		const reason = "this origin may not connect: the gateway allows only the origins given with --allow-origin"
		g.refused(http.StatusForbidden, reason, "origin", origin)
		http.Error(w, reason, http.StatusForbidden)
		return
	}
	now := g.now()
	c := &conn{
		g:           g,
		id:          newConnID(),
		connectedAt: now,
		start:       time.Now(),
		sourceIP:    remoteIP(r.RemoteAddr),
		userAgent:   r.UserAgent(),
		host:        r.Host,
		nextPing:    g.opts.pingPeriod,
	}
	c.touch()
	// Registered before $connect, which writes the connection's record:
	// a call for it made from then on (a fan-out that found the record)
	// waits for the $connect and the upgrade to end (see lookup), where
	// API Gateway answers 410 and the broker would delete the record of a
	// connection about to open. wmu is held until the upgrade is done, so
	// that a close meanwhile (Shutdown) waits for it too (see finish).
	g.mu.Lock()
	if g.closing {
		g.mu.Unlock()
		w.Header().Set("Retry-After", strconv.Itoa(int(retryAfterShutdown/time.Second)))
		http.Error(w, "this gateway is shutting down: connect again in a few seconds, to the one that replaces it", http.StatusServiceUnavailable)
		return
	}
	if max := g.opts.MaxConnections; max > 0 && g.upgrades >= max {
		g.mu.Unlock()
		reason := fmt.Sprintf("this gateway already serves %d connections, the most allowed (--max-connections); try again later", max)
		g.refused(http.StatusServiceUnavailable, reason)
		http.Error(w, reason, http.StatusServiceUnavailable)
		return
	}
	g.upgrades++
	g.wg.Add(1)
	c.wmu.Lock() // c is not visible yet: never waits
	g.conns[c.id] = c
	g.mu.Unlock()
	release := func() {
		g.mu.Lock()
		g.upgrades--
		g.mu.Unlock()
		g.wg.Done()
	}
	upgraded := false
	defer func() {
		if !upgraded {
			release()
		}
	}()

	req := c.event("$connect", "CONNECT", now)
	req.Headers, req.MultiValueHeaders = requestHeaders(r, c.sourceIP)
	req.QueryStringParameters, req.MultiValueQueryStringParameters = queryParameters(query)
	ctx, cancel := g.handlerContext()
	resp, err := g.opts.Handler.Handle(ctx, req)
	cancel()
	if err != nil || resp.StatusCode < 200 || resp.StatusCode > 299 {
		// No $disconnect, as on API Gateway: the handler wrote no record.
		// The calls waiting for the $connect get 410.
		c.wmu.Unlock()
		g.forget(c)
		if err != nil {
			g.log.Warn("$connect handler failed", "connectionId", c.id, "err", err)
			writeAPIError(w, http.StatusInternalServerError, "", "Internal server error")
			return
		}
		g.refused(resp.StatusCode, resp.Body)
		refuse(w, resp)
		return
	}

	var respHeader http.Header
	if p := responseHeader(resp, "Sec-WebSocket-Protocol"); p != "" && offered(r, p) {
		respHeader = http.Header{"Sec-Websocket-Protocol": {p}}
	}
	c.accepted.Store(true) // for Count: the client may see the 101 before c.ws is set
	// Every inbound byte passes a frame-size check (API Gateway's 32 KB).
	ws, err := g.upgrader.Upgrade(frameLimitWriter{w, pubsub.MaxFrameBytes, c.writeFailed, pongWait, g.opts.readTimedOut}, r, respHeader)
	if err != nil {
		c.wmu.Unlock()
		// The handler recorded the connection: tell it that it is gone.
		g.log.Debug("upgrade failed", "connectionId", c.id, "err", err)
		c.closeWith(websocket.CloseAbnormalClosure, "upgrade failed", false)
		g.forget(c)
		g.disconnect(c)
		return
	}
	g.mu.Lock()
	c.ws = ws // under mu for Shutdown's forced close, and lookup
	c.connectEnded()
	g.mu.Unlock()
	c.fc = ws.NetConn().(*frameConn)
	c.wmu.Unlock()
	// A Shutdown begun since the registration has closed c (closeWith):
	// finish, which waited for wmu, now sends the close frame.
	g.log.Debug("connected", "connectionId", c.id, "sourceIp", c.sourceIP)

	// The connection lives in a goroutine of its own, whose stack starts
	// small, rather than under this handler's frames.
	upgraded = true
	go func() {
		defer release()
		c.readLoop() // returns once closeWith has run
		close(c.readerDone)
		<-c.finished
		g.forget(c)
		g.disconnect(c)
	}()
}

// forget removes c from the connections (and wakes the calls waiting for
// its $connect, when it never opened).
func (g *Gateway) forget(c *conn) {
	g.mu.Lock()
	delete(g.conns, c.id)
	c.connectEnded()
	g.mu.Unlock()
}

// connectEnded wakes the calls waiting for c's $connect; under g.mu.
func (c *conn) connectEnded() {
	if c.ended != nil {
		close(c.ended)
		c.ended = nil
	}
}

// disconnect invokes $disconnect for c.
func (g *Gateway) disconnect(c *conn) {
	g.log.Debug("disconnected", "connectionId", c.id, "code", c.closeCode, "reason", c.closeReason)
	if g.opts.Faults != nil && g.opts.Faults.DropDisconnect() {
		g.log.Debug("$disconnect dropped (--faults drop-disconnect)", "connectionId", c.id)
		return
	}
	// Not cancelled by a Shutdown that ran out of time: the record must go
	// (bounded by the integration timeout), or it is left for prune-stale.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(g.ctx), integrationTimeout)
	defer cancel()
	if _, err := g.opts.Handler.Handle(ctx, c.disconnectEvent(g.now())); err != nil {
		// Its record counts against its geek's cap while it stays:
		// called again once the handler can pass (redisconnect.go).
		if kept, how := g.keepLost(c); kept {
			g.log.Warn("$disconnect handler failed; "+how, "connectionId", c.id, "err", err)
		} else {
			g.log.Warn("$disconnect handler failed; not called again ("+how+"): the connection's record stays until it expires or is pruned", "connectionId", c.id, "err", err)
		}
	}
}

// readLoop reads client frames until the connection ends, invoking the
// routes for each message.
func (c *conn) readLoop() {
	ws := c.ws
	_ = ws.SetReadDeadline(time.Now().Add(pongWait))
	ws.SetPingHandler(func(data string) error {
		c.touch()
		_ = ws.SetReadDeadline(time.Now().Add(pongWait))
		// A pong is bytes queued for the client like any other: a client
		// that pings without reading is a slow consumer too.
		if c.fc.queuedBytes()+len(data)+2 > c.g.opts.MaxQueuedBytes {
			c.g.log.Debug("slow consumer", "connectionId", c.id, "queuedBytes", c.fc.queuedBytes())
			c.closeWith(websocket.ClosePolicyViolation, reasonSlowConsumer, true)
			return nil
		}
		err := ws.WriteControl(websocket.PongMessage, []byte(data), time.Now().Add(writeWait))
		var ne net.Error
		if errors.Is(err, websocket.ErrCloseSent) || errors.As(err, &ne) && ne.Timeout() {
			return nil
		}
		return err
	})
	ws.SetPongHandler(func(data string) error {
		if data != string(pingPayload) {
			c.touch() // an unsolicited pong is the client's own keep-alive
		}
		return ws.SetReadDeadline(time.Now().Add(pongWait))
	})
	for {
		kind, r, err := ws.NextReader()
		if err != nil {
			c.readFailed(err)
			return
		}
		c.touch()
		_ = ws.SetReadDeadline(time.Now().Add(pongWait))
		// The read limit: at most one byte past the largest message.
		data, err := io.ReadAll(io.LimitReader(r, pubsub.MaxMessageBytes+1))
		if err != nil {
			c.readFailed(err)
			return
		}
		c.touch()
		if len(data) > pubsub.MaxMessageBytes {
			// Keep reading (NextReader discards the rest of the message) so
			// that the client's answer to the close frame arrives.
			c.closeWith(websocket.CloseMessageTooBig, reasonTooBig, true)
			continue
		}
		if c.isClosing() {
			continue // after a close frame, messages are discarded
		}
		if kind == websocket.TextMessage && !utf8.Valid(data) {
			// RFC 6455 §8.1: a text message that is not UTF-8 fails the
			// connection; §7.4.1 gives it 1007. API Gateway's documents
			// say nothing of it, and its events are JSON, which cannot
			// carry such bytes. Reading goes on, for the client's answer.
			c.closeWith(websocket.CloseInvalidFramePayloadData, reasonInvalidUTF8, true)
			continue
		}
		if !c.allowFrame() {
			continue
		}
		c.route(kind, data)
	}
}

// allowFrame applies the inbound rate (a token bucket of
// MaxFramesPerSecond, as deep as that): a message over it gets an error
// frame instead of being routed, and a client refused more than twice the
// rate in a row is closed with 1008 "too many frames".
func (c *conn) allowFrame() bool {
	rate := float64(c.g.opts.MaxFramesPerSecond)
	now := time.Now()
	if c.refilled.IsZero() {
		c.tokens = rate
	} else {
		c.tokens = min(rate, c.tokens+now.Sub(c.refilled).Seconds()*rate)
	}
	c.refilled = now
	if c.tokens >= 1 {
		c.tokens--
		c.refused = 0
		return true
	}
	c.refused++
	if c.refused > 2*c.g.opts.MaxFramesPerSecond {
		c.closeWith(websocket.ClosePolicyViolation, reasonFlood, true)
		return false
	}
	msg := fmt.Sprintf(`{"type":"error","error":"%s: send at most %d per second; this one was dropped, and a client that keeps on is disconnected (1008)"}`, pubsub.TooManyFrames, c.g.opts.MaxFramesPerSecond)
	c.enqueue(outbound{kind: websocket.TextMessage, data: []byte(msg)})
	return false
}

// readFailed ends the connection after a read error.
func (c *conn) readFailed(err error) {
	if errors.Is(err, errFrameTooBig) {
		c.g.log.Debug("frame too big", "connectionId", c.id, "limit", pubsub.MaxFrameBytes)
	}
	c.closeWith(readErrorStatus(err))
}

// readErrorStatus is the $disconnect status for a read error.
func readErrorStatus(err error) (code int, reason string, frame bool) {
	// Nothing more can be read after a frame the tracker refused: the
	// close frame is sent, the rest discarded (see finish).
	if errors.Is(err, errFrameTooBig) {
		return websocket.CloseMessageTooBig, reasonFrameTooBig, true
	}
	if errors.Is(err, errShortClose) {
		return websocket.CloseProtocolError, reasonShortClose, true
	}
	var ce *websocket.CloseError
	if errors.As(err, &ce) {
		// gorilla has already answered the close frame.
		if ce.Code == websocket.CloseNoStatusReceived {
			return ce.Code, "Client-side close frame status not set", false
		}
		return ce.Code, ce.Text, false
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return websocket.CloseAbnormalClosure, "ping timeout", false
	}
	return websocket.CloseAbnormalClosure, reasonAbnormal, false
}

// route selects the route for a message ($request.body.action) and invokes
// it; a non-empty response body is sent back to the client.
func (c *conn) route(kind int, data []byte) {
	routeKey := "$default"
	req := c.event("", "MESSAGE", c.g.now())
	if kind == websocket.TextMessage {
		req.Body = string(data)
		routeKey = c.g.routeKey(data)
	} else {
		req.Body = base64.StdEncoding.EncodeToString(data)
		req.IsBase64Encoded = true
	}
	req.RequestContext.RouteKey = routeKey
	req.RequestContext.MessageID = newID()

	ctx, cancel := c.g.handlerContext()
	resp, err := c.g.opts.Handler.Handle(ctx, req)
	cancel()
	if err != nil {
		c.g.log.Warn("route handler failed", "route", routeKey, "connectionId", c.id, "err", err)
		msg, _ := json.Marshal(map[string]string{
			"message":      "Internal server error",
			"connectionId": c.id,
			"requestId":    req.RequestContext.RequestID,
		})
		c.enqueue(outbound{kind: websocket.TextMessage, data: msg})
		return
	}
	if resp.Body == "" {
		return
	}
	body, binary := responseBody(resp)
	reply := outbound{kind: websocket.TextMessage, data: body}
	if binary {
		reply.kind = websocket.BinaryMessage
	}
	c.enqueue(reply)
}

// routeKey is the route of a text message: $request.body.action when it
// names an action route, else $default. As in API Gateway, the key is
// "action" exactly: a struct field would also match "Action" or "ACTION".
func (g *Gateway) routeKey(data []byte) string {
	var body map[string]json.RawMessage
	var a string
	if json.Unmarshal(data, &body) == nil && json.Unmarshal(body["action"], &a) == nil && g.routes[a] {
		return a
	}
	return "$default"
}

// ping sends the gateway's ping.
func (c *conn) ping() {
	if err := c.ws.WriteControl(websocket.PingMessage, pingPayload, time.Now().Add(writeWait)); err != nil {
		c.writeFailed(err)
	}
}

// write sends one message in frames of at most pubsub.MaxFrameBytes.
func (c *conn) write(m outbound) error {
	if m.pm != nil {
		return c.ws.WritePreparedMessage(m.pm)
	}
	if len(m.data) <= pubsub.MaxFrameBytes {
		return c.ws.WriteMessage(m.kind, m.data) // one frame, unbuffered
	}
	w, err := c.ws.NextWriter(m.kind)
	if err != nil {
		return err
	}
	// gorilla writes one big Write as one frame: feed it frame-sized pieces
	// so that its 32 KB buffer (Upgrader.WriteBufferSize) bounds each frame.
	for data := m.data; len(data) > 0; {
		n := min(len(data), pubsub.MaxFrameBytes)
		if _, err := w.Write(data[:n]); err != nil {
			return err
		}
		data = data[n:]
	}
	return w.Close()
}

// finish sends the close frame when one is due, waits for the reader to
// end (the client's answering close frame) for at most closeGrace, and
// closes the connection. A client closed for its own conduct (1008 slow
// consumer or flood, 1009 too big) loses what is queued for it and not yet
// started; any other (1001 going away, 1000 deleted, its own close frame)
// first gets it, in order, for at most writeWait: the broker counted those
// messages delivered.
func (c *conn) finish() {
	defer close(c.finished)
	c.wmu.Lock() // a $connect, an upgrade or a write in progress ends first
	ws := c.ws
	c.wmu.Unlock()
	if ws == nil {
		return // the $connect or the upgrade failed
	}
	if c.closeFrame {
		if c.closeCode == websocket.ClosePolicyViolation || c.closeCode == websocket.CloseMessageTooBig {
			c.fc.discard()
		}
		msg := websocket.FormatCloseMessage(c.closeCode, c.closeReason)
		_ = ws.WriteControl(websocket.CloseMessage, msg, time.Now().Add(writeWait))
		c.fc.waitFlushed(writeWait)
		t := time.NewTimer(closeGrace)
		select {
		case <-c.readerDone:
			if c.fc.frameRefused() {
				c.fc.linger(closeGrace)
			}
		case <-t.C:
		}
		t.Stop()
	} else {
		// gorilla has answered the client's close frame (or, for a frame
		// that broke the protocol, sent 1002) behind the backlog: both go
		// out first, or the client sees no answer (1006). A connection
		// that broke (1006) gets a short wait: its writes fail at once.
		d := writeWait
		if c.closeCode == websocket.CloseAbnormalClosure {
			d = closeGrace
		}
		c.fc.waitFlushed(d)
	}
	ws.Close()
}

// event returns the common part of an event for c.
func (c *conn) event(routeKey, eventType string, now time.Time) events.APIGatewayWebsocketProxyRequest {
	requestID := newID()
	return events.APIGatewayWebsocketProxyRequest{
		RequestContext: events.APIGatewayWebsocketProxyRequestContext{
			RouteKey:          routeKey,
			EventType:         eventType,
			ExtendedRequestID: requestID,
			RequestTime:       now.UTC().Format("02/Jan/2006:15:04:05 -0700"),
			MessageDirection:  "IN",
			Stage:             c.g.opts.Stage,
			ConnectedAt:       c.connectedAt.UnixMilli(),
			RequestTimeEpoch:  now.UnixMilli(),
			Identity: events.APIGatewayRequestIdentity{
				SourceIP:  c.sourceIP,
				UserAgent: c.userAgent,
			},
			RequestID:    requestID,
			DomainName:   c.host,
			ConnectionID: c.id,
			APIID:        apiID,
		},
	}
}

// handlerContext returns the context of one Handler call.
func (g *Gateway) handlerContext() (context.Context, context.CancelFunc) {
	return context.WithTimeout(g.ctx, integrationTimeout)
}

// requestHeaders returns the upgrade request's headers as API Gateway passes
// them: single-valued (the last value) and multi-valued, with Host and the
// X-Forwarded-* headers a proxy adds.
func requestHeaders(r *http.Request, sourceIP string) (map[string]string, map[string][]string) {
	single := make(map[string]string, len(r.Header)+4)
	multi := make(map[string][]string, len(r.Header)+4)
	for k, v := range r.Header {
		if len(v) == 0 {
			continue
		}
		single[k] = v[len(v)-1]
		// The request's own values, not a copy: the request is done with
		// once the handshake is answered, and the capped slice makes an
		// append by the handler copy.
		multi[k] = v[:len(v):len(v)]
	}
	port := "80"
	if _, p, err := net.SplitHostPort(r.Host); err == nil {
		port = p
	}
	for _, h := range [...][2]string{
		{"Host", r.Host},
		{"X-Forwarded-For", sourceIP},
		{"X-Forwarded-Port", port},
		{"X-Forwarded-Proto", "http"},
	} {
		single[h[0]] = h[1]
		multi[h[0]] = []string{h[1]}
	}
	return single, multi
}

// queryParameters returns the query string q as API Gateway passes it:
// nil when there is none, else single-valued (the last value) and
// multi-valued.
func queryParameters(q url.Values) (map[string]string, map[string][]string) {
	if len(q) == 0 {
		return nil, nil
	}
	single := make(map[string]string, len(q))
	for k, v := range q {
		single[k] = v[len(v)-1]
	}
	return single, q
}

// responseHeader returns the handler response's header name, matched
// case-insensitively.
func responseHeader(resp events.APIGatewayProxyResponse, name string) string {
	for k, v := range resp.Headers {
		if strings.EqualFold(k, name) {
			return v
		}
	}
	for k, v := range resp.MultiValueHeaders {
		if strings.EqualFold(k, name) && len(v) > 0 {
			return v[0]
		}
	}
	return ""
}

// offered reports whether the client asked for subprotocol p, on any of
// its Sec-WebSocket-Protocol lines: several are one list (RFC 6455
// §11.3.4), and the routes read them all, where gorilla's Subprotocols
// reads the first alone.
func offered(r *http.Request, p string) bool {
	for _, v := range r.Header.Values("Sec-Websocket-Protocol") {
		for s := range strings.SplitSeq(v, ",") {
			if strings.TrimSpace(s) == p {
				return true
			}
		}
	}
	return false
}

// refuse answers a refused upgrade with the handler's status (never 2xx
// here), headers and body.
func refuse(w http.ResponseWriter, resp events.APIGatewayProxyResponse) {
	h := w.Header()
	for k, v := range resp.Headers {
		h.Set(k, v)
	}
	for k, vs := range resp.MultiValueHeaders {
		h.Del(k)
		for _, v := range vs {
			h.Add(k, v)
		}
	}
	body, _ := responseBody(resp)
	// A status net/http cannot send as a final answer is a 500: a 1xx is
	// interim (RFC 9110 §15.2), and net/http sent it so and then 200 with
	// the body (101: a switch that never came).
	status := resp.StatusCode
	if status < 200 || status > 999 {
		status = http.StatusInternalServerError
	}
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

// responseBody returns the handler response's body, base64-decoded when
// it says it is encoded and decodes, and whether it was decoded.
func responseBody(resp events.APIGatewayProxyResponse) ([]byte, bool) {
	if resp.IsBase64Encoded {
		if b, err := base64.StdEncoding.DecodeString(resp.Body); err == nil {
			return b, true
		}
	}
	return []byte(resp.Body), false
}

// validKey reports whether key is a Sec-WebSocket-Key the upgrade accepts:
// the base64 of 16 bytes (RFC 6455 §4.1).
func validKey(key string) bool {
	var b [18]byte // base64.StdEncoding.DecodedLen(24)
	if len(key) != 24 {
		return false
	}
	n, err := base64.StdEncoding.Decode(b[:], []byte(key))
	return err == nil && n == 16
}

// remoteIP returns the host part of a RemoteAddr.
func remoteIP(addr string) string {
	if h, _, err := net.SplitHostPort(addr); err == nil {
		return h
	}
	return addr
}
