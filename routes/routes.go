// Package routes holds the WebSocket route handlers — $connect, $disconnect,
// subscribe, unsubscribe, ping and $default — written once against API
// Gateway's event shapes. The Lambda entry point and the local gateway call
// the same Handler.
package routes

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/socks-dev/socks/internal/logsafe"
	"github.com/socks-dev/socks/internal/outage"
	"github.com/socks-dev/socks/internal/text"
	"github.com/socks-dev/socks/pubsub"
	"github.com/socks-dev/socks/store"
)

// Route keys.
const (
	RouteConnect     = "$connect"
	RouteDisconnect  = "$disconnect"
	RouteDefault     = "$default"
	RouteSubscribe   = "subscribe"
	RouteUnsubscribe = "unsubscribe"
	RoutePing        = "ping"
)

// EventMessage is the requestContext.eventType of a client's frame.
const EventMessage = "MESSAGE"

// ActionRoutes are the route keys selected by $request.body.action.
var ActionRoutes = []string{RouteSubscribe, RouteUnsubscribe, RoutePing}

// Reply is the frame sent back to a client for an action (the route
// response). Type is "subscribed", "unsubscribed", "pong" or "error". A
// subscribed or unsubscribed reply always carries topics, [] when none are
// left (nil leaves the field out, an empty list does not).
type Reply struct {
	Type   string   `json:"type"`
	Topics []string `json:"topics,omitzero"`
	Error  string   `json:"error,omitempty"`
	Time   string   `json:"time,omitempty"`
}

// NotRegistered is the error reply to a subscribe or unsubscribe of a
// connection whose record is gone (prune-stale, its expiry, a store
// wiped): nothing published reaches it, so a client opens a fresh
// connection (socks.js NOT_REGISTERED, socks listen).
const NotRegistered = "this connection is not registered; reconnect"

// DefaultMaxConnectionsPerGeek is how many live connections one geek may
// hold unless configured.
const DefaultMaxConnectionsPerGeek = 100

// Environment variables that set the limits where there are no flags (the
// Lambda function).
const (
	EnvMaxTopics             = "SOCKS_MAX_TOPICS"
	EnvMaxConnectionsPerGeek = "SOCKS_MAX_CONNECTIONS_PER_GEEK"
)

// SetLimitsFromEnv sets MaxTopics and MaxConnectionsPerGeek from the
// environment variables that are set; a value out of range is an error.
func (h *Handler) SetLimitsFromEnv(getenv func(string) string) error {
	for _, l := range []struct {
		env      string
		min, max int
		dst      *int
	}{
		{EnvMaxTopics, 1, pubsub.MaxTopicsPerConnection, &h.MaxTopics},
		{EnvMaxConnectionsPerGeek, 1, 1 << 30, &h.MaxConnectionsPerGeek},
	} {
		v := getenv(l.env)
		if v == "" {
			continue
		}
		n, err := strconv.Atoi(v)
		if err != nil || n < l.min || n > l.max {
			return fmt.Errorf("%s must be a whole number from %d to %d", l.env, l.min, l.max)
		}
		*l.dst = n
	}
	return nil
}

// Handler serves every route. Its zero value is not usable: set Store.
type Handler struct {
	Store store.Store
	// MaxDuration is how long a connection record lives (API Gateway's
	// 2 h cap by default).
	MaxDuration time.Duration
	// MaxTopics bounds the topics one connection follows (0:
	// pubsub.MaxTopicsPerConnection).
	MaxTopics int
	// MaxConnectionsPerGeek bounds the live connections of one geek (0:
	// DefaultMaxConnectionsPerGeek; negative: no bound). Connects over it
	// are refused with 429.
	MaxConnectionsPerGeek int
	Now                   func() time.Time
	Logger                *slog.Logger
	// safe is Logger as logger wraps it, made once (a $connect logs).
	safe atomic.Pointer[safeLogger]
	// noRouteSaid has a bit for each of ActionRoutes that came to
	// $default, said once (see noRoute).
	noRouteSaid atomic.Uint32
	// admitting logs the store's failures to record a connection (a
	// full disk, the state file's lock held; DynamoDB unreachable) as
	// an outage: a line when it starts, a reminder each minute with the
	// count, a line when a connection is recorded again. In Lambda each
	// container has its own (its first failure logs the start). Set up
	// at the first failure (admissionFailed).
	admitting      outage.Log
	admittingSetUp sync.Once
}

// safeLogger is a logger (of) and logsafe's wrapping of it.
type safeLogger struct{ of, safe *slog.Logger }

func (h *Handler) now() time.Time {
	if h.Now != nil {
		return h.Now()
	}
	return time.Now()
}

// logger returns h.Logger as the routes log with it: every line carries
// what a client sent (a ?geek= or ?topic=, which may be a chatter ID
// pasted by mistake, or an error naming it), which logsafe shortens.
func (h *Handler) logger() *slog.Logger {
	if h.Logger == nil {
		return discardLogger
	}
	if s := h.safe.Load(); s != nil && s.of == h.Logger {
		return s.safe
	}
	s := &safeLogger{of: h.Logger, safe: logsafe.Logger(h.Logger)}
	h.safe.Store(s)
	return s.safe
}

var discardLogger = slog.New(slog.DiscardHandler)

// Handle dispatches one API Gateway WebSocket event by its route key. A
// client's frame (a MESSAGE event) never runs $connect or $disconnect,
// whatever key it was given: it goes to $default, so that no frame can
// delete its own record (and hold connections past the geek's cap).
func (h *Handler) Handle(ctx context.Context, req events.APIGatewayWebsocketProxyRequest) (events.APIGatewayProxyResponse, error) {
	rc := &req.RequestContext
	route := rc.RouteKey
	if rc.EventType == EventMessage && (route == RouteConnect || route == RouteDisconnect) {
		route = RouteDefault
	}
	switch route {
	case RouteConnect:
		return h.connect(ctx, &req)
	case RouteDisconnect:
		return h.disconnect(ctx, rc.ConnectionID)
	case RouteSubscribe, RouteUnsubscribe, RoutePing:
		return h.action(ctx, route, rc.ConnectionID, req.Body)
	default:
		// API Gateway sends a frame whose action has no route of its own
		// to $default: an API made by hand, or by an older template,
		// without one. Its action is still served, and the missing route
		// named once. The frame is checked once, for both (up to 128 KB).
		isJSON := pubsub.CheckJSON([]byte(req.Body)) == ""
		if route == RouteDefault && isJSON {
			if action := actionOf(req.Body); action != "" {
				h.noRoute(action)
				return h.action(ctx, action, rc.ConnectionID, req.Body)
			}
		}
		return h.fallback(req.Body, isJSON), nil
	}
}

// action serves one of ActionRoutes.
func (h *Handler) action(ctx context.Context, action, id, body string) (events.APIGatewayProxyResponse, error) {
	if action == RoutePing {
		return reply(Reply{Type: "pong", Time: h.now().UTC().Format(pubsub.TimeMillis)}), nil
	}
	return h.changeTopics(ctx, action, id, body)
}

// actionOf is the frame's action when it is one of ActionRoutes, or "".
// The body has passed pubsub.CheckJSON.
func actionOf(body string) string {
	// The key "action" exactly, as API Gateway's route selection reads
	// it (encoding/json would match "Action" too).
	var fields map[string]json.RawMessage
	var action string
	if json.Unmarshal([]byte(body), &fields) != nil || json.Unmarshal(fields["action"], &action) != nil || !slices.Contains(ActionRoutes, action) {
		return ""
	}
	return action
}

// noRoute warns, once for each action, that a frame with that action came
// to $default: the API lacks the action's route.
func (h *Handler) noRoute(action string) {
	bit := uint32(1) << slices.Index(ActionRoutes, action)
	if h.noRouteSaid.Or(bit)&bit != 0 {
		return
	}
	h.logger().Warn("a frame with action "+action+" came to $default: the WebSocket API has no "+action+" route, so $default serves it; run socks deploy (or add the route) to give it its own",
		"action", action)
}

// Subprotocol is the WebSocket subprotocol a client offers to send its
// chatter ID in Sec-WebSocket-Protocol instead of the query string: it
// offers "socks" and the ID, and $connect answers with "socks" only.
const Subprotocol = "socks"

// protocolChatterID returns the chatter ID a client offered in
// Sec-WebSocket-Protocol next to Subprotocol, and whether it offered
// Subprotocol at all. API Gateway passes the header as one comma-separated
// value; a client may also send it more than once.
func protocolChatterID(req *events.APIGatewayWebsocketProxyRequest) (id string, offered bool) {
	var values []string
	for k, vs := range req.MultiValueHeaders {
		if strings.EqualFold(k, "Sec-WebSocket-Protocol") {
			values = append(values, vs...)
		}
	}
	if len(values) == 0 {
		for k, v := range req.Headers {
			if strings.EqualFold(k, "Sec-WebSocket-Protocol") {
				values = append(values, v)
			}
		}
	}
	for _, v := range values {
		for p := range strings.SplitSeq(v, ",") {
			switch p = strings.TrimSpace(p); {
			case p == Subprotocol:
				offered = true
			case p != "" && id == "":
				id = p
			}
		}
	}
	if !offered {
		return "", false
	}
	return id, true
}

func (h *Handler) connect(ctx context.Context, req *events.APIGatewayWebsocketProxyRequest) (events.APIGatewayProxyResponse, error) {
	resp, err := h.admit(ctx, req)
	if _, offered := protocolChatterID(req); offered && err == nil && resp.StatusCode == http.StatusOK {
		// Browsers fail a handshake whose answer does not name one of the
		// offered subprotocols; echo "socks" only, never the ID.
		resp.Headers = map[string]string{"Sec-WebSocket-Protocol": Subprotocol}
	}
	return resp, err
}

// admit checks a $connect's geek, chatter ID (from the query string, else
// from Sec-WebSocket-Protocol) and topics, and records the connection.
func (h *Handler) admit(ctx context.Context, req *events.APIGatewayWebsocketProxyRequest) (events.APIGatewayProxyResponse, error) {
	q := req.QueryStringParameters
	geek, secret := q["geek"], q["id"]
	if secret == "" {
		secret, _ = protocolChatterID(req)
	}
	if geek == "" {
		return refuse(http.StatusUnauthorized, "missing geek: connect with ?geek=NAME&id=CHATTER_ID"), nil
	}
	if err := pubsub.ValidateGeek(geek); err != nil {
		return refuse(http.StatusBadRequest, err.Error()), nil
	}
	if secret == "" {
		return refuse(http.StatusUnauthorized, "missing chatter ID: connect with ?geek=NAME&id=CHATTER_ID, or offer the subprotocols \"socks\" and the ID (issue one with `socks chatter issue --geek NAME`)"), nil
	}
	topics, err := pubsub.SplitTopics(q["topic"])
	if err != nil {
		return refuse(http.StatusBadRequest, err.Error()), nil
	}
	if len(topics) > h.maxTopics() {
		return refuse(http.StatusBadRequest, fmt.Sprintf("too many topics: %d named; a connection may follow at most %d", len(topics), h.maxTopics())), nil
	}
	now := h.now()
	limit := h.MaxConnectionsPerGeek
	if limit == 0 {
		limit = DefaultMaxConnectionsPerGeek
	}
	// API Gateway's connectedAt, within the connect window before now: a
	// $connect runs within the 29 s integration timeout of the
	// connection's start, so a later or much earlier one is an odd or
	// forged event's. A record must never outlive now plus maxDur, which
	// prune-stale relies on, nor be written already expired (answered
	// 200, the client was reached by nothing): taken as connected at the
	// window's start, it lives no longer than the connection can.
	connectedAt := now
	if at := time.UnixMilli(req.RequestContext.ConnectedAt); req.RequestContext.ConnectedAt > 0 && at.Before(now) {
		connectedAt = at
		if earliest := now.Add(-pubsub.ConnectWindow); at.Before(earliest) {
			connectedAt = earliest
		}
	}
	maxDur := h.MaxDuration
	if maxDur <= 0 {
		maxDur = pubsub.MaxConnectionDuration
	}
	// The closure below may run in the store's writer goroutine: it
	// captures the ID, not the whole event (which would then be moved to
	// the heap at every $connect).
	id := req.RequestContext.ConnectionID
	// record checks the topics against the verified chatter ID and
	// returns the connection record to write, or a *refusal.
	record := func(chatter store.ChatterID) (pubsub.Connection, error) {
		if q["topic"] == "" && len(chatter.Topics) > 0 {
			return pubsub.Connection{}, &refusal{http.StatusForbidden, fmt.Sprintf("this chatter ID may follow only %s: name them with ?topic=", strings.Join(chatter.Topics, ", "))}
		}
		if refused := notAllowed(chatter.Topics, topics); refused != "" {
			return pubsub.Connection{}, &refusal{http.StatusForbidden, refused}
		}
		return pubsub.Connection{
			ID:          id,
			Geek:        geek,
			Topics:      topics,
			Allowed:     chatter.Topics,
			ConnectedAt: connectedAt,
			ExpiresAt:   connectedAt.Add(maxDur),
		}, nil
	}
	var n int
	// An atomic load: what a pass costs between outages.
	try := h.admitting.Begin()
	if a, ok := h.Store.(store.ConnectionAdmitter); ok {
		// The chatter check, the count and the record in one write.
		n, err = a.AdmitConnection(ctx, id, geek, secret, now, limit, record)
	} else {
		n, err = h.admitInSteps(ctx, geek, secret, now, limit, record)
	}
	var r *refusal
	switch {
	case errors.As(err, &r):
		return refuse(r.status, r.reason), nil
	case errors.Is(err, store.ErrExpired):
		return refuse(http.StatusForbidden, pubsub.ChatterIDExpired+": issue a new one"), nil
	case errors.Is(err, store.ErrUnauthorized):
		if u, ok := errors.AsType[*store.UnusableChatterIDError](err); ok {
			// The client hears what an unknown ID hears; the operator,
			// whose backend wrote the record, why.
			h.logger().Warn("connect refused: the chatter ID's record cannot be honoured", "geek", geek, "chatterId", u.Fingerprint, "reason", u.Reason)
		}
		return refuse(http.StatusForbidden, "chatter ID refused: unknown, revoked, issued for another geek, or expired and since deleted; issue a new one"), nil
	case errors.Is(err, store.ErrLimit):
		return refuse(http.StatusTooManyRequests, fmt.Sprintf("geek %s already has %d open connections, the most allowed; close one (or run `socks prune-stale` if they are gone) and connect again", geek, n)), nil
	case errors.Is(err, store.ErrUnavailable):
		// The server is unable, not the client wrong: 503, whose reason
		// does not give away the server's files.
		h.admissionFailed(geek, err)
		return refuse(http.StatusServiceUnavailable, "the server cannot record the connection now (its storage cannot be written); try again later"), nil
	case err != nil:
		// The error names the geek, and is logged again by the gateway
		// (or Lambda's runtime), each through logsafe as this log is.
		h.admissionFailed(geek, err)
		return events.APIGatewayProxyResponse{}, err
	}
	h.admitting.Passed(try)
	h.logger().Info("connected", "connection", req.RequestContext.ConnectionID, "geek", geek, "topics", topics)
	return events.APIGatewayProxyResponse{StatusCode: http.StatusOK}, nil
}

// admissionFailed notes that the store failed to record a connection of
// geek with err: logged when it starts an outage of admissions, or with
// the count of those since when the last line is a minute old.
func (h *Handler) admissionFailed(geek string, err error) {
	h.admittingSetUp.Do(func() {
		h.admitting.Logger, h.admitting.What, h.admitting.Now = h.logger(), "admitting a connection", h.now
	})
	h.admitting.Failed(err, "geek", geek)
}

// refusal is a $connect refused with a status and a reason for the client.
type refusal struct {
	status int
	reason string
}

func (r *refusal) Error() string { return r.reason }

// admitInSteps is store.ConnectionAdmitter's AdmitConnection for a Store
// without it: it verifies the chatter ID, counts the geek's live
// connections and records the connection one after the other, so that
// concurrent connects may overshoot limit by at most their number.
func (h *Handler) admitInSteps(ctx context.Context, geek, secret string, now time.Time, limit int, record func(store.ChatterID) (pubsub.Connection, error)) (int, error) {
	chatter, err := h.Store.VerifyChatterID(ctx, geek, secret, now)
	if err != nil {
		return 0, fmt.Errorf("verifying chatter ID: %w", err)
	}
	c, err := record(chatter)
	if err != nil {
		return 0, err
	}
	if limit > 0 {
		n, err := h.liveConnections(ctx, geek, now, limit)
		if err != nil {
			return 0, fmt.Errorf("counting the connections of %s: %w", geek, err)
		}
		if n >= limit {
			return n, store.ErrLimit
		}
	}
	if err := h.Store.PutConnection(ctx, c); err != nil {
		return 0, fmt.Errorf("recording connection: %w", err)
	}
	return 0, nil
}

// liveConnections counts the live connection records of geek, up to at
// least limit: records, not a counter, so that one left by a lost
// $disconnect only counts until it expires or `socks prune-stale` removes
// it.
func (h *Handler) liveConnections(ctx context.Context, geek string, now time.Time, limit int) (int, error) {
	n := 0
	err := h.Store.ListConnections(ctx, store.ConnectionFilter{Geek: geek}, now, func(page []pubsub.Connection) error {
		n += len(page)
		if n >= limit {
			return errCounted // enough pages read
		}
		return nil
	})
	if errors.Is(err, errCounted) {
		err = nil
	}
	return n, err
}

var errCounted = errors.New("counted enough")

// notAllowed says which of topics the patterns (empty: any) do not allow,
// or "" when they allow them all.
func notAllowed(patterns, topics []string) string {
	var refused []string
	for _, t := range topics {
		if !pubsub.TopicAllowed(patterns, t) {
			refused = append(refused, t)
		}
	}
	if len(refused) == 0 {
		return ""
	}
	what := strings.Join(refused, ", ")
	if slices.Contains(refused, pubsub.AllTopics) {
		what = `"." (every topic)`
	}
	return fmt.Sprintf("this chatter ID may not follow %s; it may follow only %s", what, strings.Join(patterns, ", "))
}

func (h *Handler) disconnect(ctx context.Context, id string) (events.APIGatewayProxyResponse, error) {
	if err := h.Store.DeleteConnection(ctx, id); err != nil {
		return events.APIGatewayProxyResponse{}, fmt.Errorf("deleting connection %s: %w", id, err)
	}
	h.logger().Info("disconnected", "connection", id)
	return events.APIGatewayProxyResponse{StatusCode: http.StatusOK}, nil
}

type topicsRequest struct {
	Action string   `json:"action"`
	Topics []string `json:"topics"`
	// Topic is accepted as a convenience for a single topic, and EntityID
	// as one more, for clients written for the EventBridge design
	// ({"action":"subscribe","entityId":"..."}).
	Topic    string `json:"topic"`
	EntityID string `json:"entityId"`
}

// frameKeys are the keys of a client's frame: a key that differs from one
// of them only by case ("Topics") is refused, as encoding/json would read
// it where the client's own JSON.parse reads another key.
var frameKeys = pubsub.KeysOf[topicsRequest]()

func (h *Handler) changeTopics(ctx context.Context, route, id, body string) (events.APIGatewayProxyResponse, error) {
	if why := pubsub.CheckJSONObject([]byte(body), frameKeys); why != "" {
		return reply(Reply{Type: "error", Error: "the frame " + why}), nil
	}
	var r topicsRequest
	if err := json.Unmarshal([]byte(body), &r); err != nil {
		return reply(Reply{Type: "error", Error: "the frame " + pubsub.DescribeJSONError(err)}), nil
	}
	in := r.Topics
	for _, t := range []string{r.Topic, r.EntityID} {
		if t != "" {
			in = append(in, t)
		}
	}
	if len(in) == 0 {
		return reply(Reply{Type: "error", Error: fmt.Sprintf(`%s needs "topics": ["name", ...]`, route)}), nil
	}
	topics, err := pubsub.NormalizeTopics(in)
	if err != nil {
		return reply(Reply{Type: "error", Error: err.Error()}), nil
	}
	var c pubsub.Connection
	if route == RouteSubscribe {
		c, err = h.Store.GetConnection(ctx, id)
		if err == nil {
			if refused := notAllowed(c.Allowed, topics); refused != "" {
				return reply(Reply{Type: "error", Error: refused, Topics: sorted(c.Topics)}), nil
			}
			c, err = h.Store.AddTopics(ctx, id, topics, h.maxTopics())
		}
		if errors.Is(err, store.ErrLimit) {
			return reply(Reply{Type: "error", Error: fmt.Sprintf("a connection may follow at most %d topics; it follows %d, and these would add more than that", h.maxTopics(), len(c.Topics)), Topics: sorted(c.Topics)}), nil
		}
	} else {
		c, err = h.Store.RemoveTopics(ctx, id, topics)
	}
	if errors.Is(err, store.ErrNotFound) {
		return reply(Reply{Type: "error", Error: NotRegistered}), nil
	}
	if err != nil {
		return events.APIGatewayProxyResponse{}, fmt.Errorf("%s for %s: %w", route, id, err)
	}
	left := sorted(c.Topics)
	if left == nil {
		left = []string{}
	}
	return reply(Reply{Type: route + "d", Topics: left}), nil
}

func (h *Handler) maxTopics() int {
	if h.MaxTopics > 0 {
		return h.MaxTopics
	}
	return pubsub.MaxTopicsPerConnection
}

// fallback answers a frame that is no action; isJSON says that the body
// passed pubsub.CheckJSON.
func (h *Handler) fallback(body string, isJSON bool) events.APIGatewayProxyResponse {
	const how = `send {"action":"subscribe","topics":[...]}, {"action":"unsubscribe","topics":[...]} or {"action":"ping"}; clients cannot publish`
	msg := "unknown frame: " + how
	var fields map[string]json.RawMessage
	if isJSON && json.Unmarshal([]byte(body), &fields) == nil {
		var action any
		if why := pubsub.CheckKeys(fields, frameKeys); why != "" {
			// {"Action":"subscribe"}: no action, as API Gateway's route
			// selection reads the key "action" exactly.
			msg = "the frame " + why + "; " + how
		} else if json.Unmarshal(fields["action"], &action) == nil && action != nil {
			raw, _ := json.Marshal(action) // Decoded JSON always marshals.
			// Cut between letters and between escapes, so that the frame
			// holds no broken letter and no broken escape.
			shown := text.CapJSON(string(raw), 61)
			if name, ok := action.(string); ok && pubsub.ValidateTopic(name) == nil {
				shown = text.CapBytes(name, 61) // A plain name reads better unquoted.
			}
			msg = fmt.Sprintf("unknown action %s: %s", shown, how)
		}
	}
	return reply(Reply{Type: "error", Error: msg})
}

func refuse(status int, reason string) events.APIGatewayProxyResponse {
	return events.APIGatewayProxyResponse{
		StatusCode: status,
		Headers:    map[string]string{"Content-Type": "text/plain; charset=utf-8"},
		Body:       reason,
	}
}

func reply(r Reply) events.APIGatewayProxyResponse {
	b, _ := json.Marshal(r) // A Reply always marshals.
	return events.APIGatewayProxyResponse{StatusCode: http.StatusOK, Body: string(b)}
}

func sorted(in []string) []string { return slices.Sorted(slices.Values(in)) }
