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
	"time"

	"github.com/aws/aws-lambda-go/events"

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

// ActionRoutes are the route keys selected by $request.body.action.
var ActionRoutes = []string{RouteSubscribe, RouteUnsubscribe, RoutePing}

// Reply is the frame sent back to a client for an action (the route
// response). Type is "subscribed", "unsubscribed", "pong" or "error".
type Reply struct {
	Type   string   `json:"type"`
	Topics []string `json:"topics,omitempty"`
	Error  string   `json:"error,omitempty"`
	Time   string   `json:"time,omitempty"`
}

// Handler serves every route. Its zero value is not usable: set Store.
type Handler struct {
	Store store.Store
	// MaxDuration is how long a connection record lives (API Gateway's
	// 2 h cap by default).
	MaxDuration time.Duration
	Now         func() time.Time
	Logger      *slog.Logger
}

func (h *Handler) now() time.Time {
	if h.Now != nil {
		return h.Now()
	}
	return time.Now()
}

func (h *Handler) logger() *slog.Logger {
	if h.Logger != nil {
		return h.Logger
	}
	return slog.New(slog.DiscardHandler)
}

// Handle dispatches one API Gateway WebSocket event by its route key.
func (h *Handler) Handle(ctx context.Context, req events.APIGatewayWebsocketProxyRequest) (events.APIGatewayProxyResponse, error) {
	rc := req.RequestContext
	switch rc.RouteKey {
	case RouteConnect:
		return h.connect(ctx, req)
	case RouteDisconnect:
		return h.disconnect(ctx, rc.ConnectionID)
	case RouteSubscribe, RouteUnsubscribe:
		return h.changeTopics(ctx, rc.RouteKey, rc.ConnectionID, req.Body)
	case RoutePing:
		return reply(Reply{Type: "pong", Time: h.now().UTC().Format(time.RFC3339Nano)}), nil
	default:
		return h.fallback(req.Body), nil
	}
}

func (h *Handler) connect(ctx context.Context, req events.APIGatewayWebsocketProxyRequest) (events.APIGatewayProxyResponse, error) {
	q := req.QueryStringParameters
	geek, secret := q["geek"], q["id"]
	if geek == "" {
		return refuse(http.StatusUnauthorized, "missing geek: connect with ?geek=NAME&id=CHATTER_ID"), nil
	}
	if err := pubsub.ValidateGeek(geek); err != nil {
		return refuse(http.StatusBadRequest, err.Error()), nil
	}
	if secret == "" {
		return refuse(http.StatusUnauthorized, "missing chatter ID: connect with ?geek=NAME&id=CHATTER_ID (issue one with `socks chatter issue --geek NAME`)"), nil
	}
	topics, err := pubsub.SplitTopics(q["topic"])
	if err != nil {
		return refuse(http.StatusBadRequest, err.Error()), nil
	}
	now := h.now()
	switch err := h.Store.VerifyChatterID(ctx, geek, secret, now); {
	case errors.Is(err, store.ErrExpired):
		return refuse(http.StatusForbidden, "chatter ID expired: issue a new one"), nil
	case errors.Is(err, store.ErrUnauthorized):
		return refuse(http.StatusForbidden, "chatter ID refused: unknown, revoked or issued for another geek"), nil
	case err != nil:
		h.logger().Error("verifying chatter ID", "geek", geek, "err", err)
		return events.APIGatewayProxyResponse{}, fmt.Errorf("verifying chatter ID: %w", err)
	}
	connectedAt := now
	if rc := req.RequestContext; rc.ConnectedAt > 0 {
		connectedAt = time.UnixMilli(rc.ConnectedAt)
	}
	maxDur := h.MaxDuration
	if maxDur <= 0 {
		maxDur = pubsub.MaxConnectionDuration
	}
	c := pubsub.Connection{
		ID:          req.RequestContext.ConnectionID,
		Geek:        geek,
		Topics:      topics,
		ConnectedAt: connectedAt,
		ExpiresAt:   connectedAt.Add(maxDur),
	}
	if err := h.Store.PutConnection(ctx, c); err != nil {
		return events.APIGatewayProxyResponse{}, fmt.Errorf("recording connection: %w", err)
	}
	h.logger().Info("connected", "connection", c.ID, "geek", geek, "topics", topics)
	return events.APIGatewayProxyResponse{StatusCode: http.StatusOK}, nil
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

func (h *Handler) changeTopics(ctx context.Context, route, id, body string) (events.APIGatewayProxyResponse, error) {
	var r topicsRequest
	if err := json.Unmarshal([]byte(body), &r); err != nil {
		return reply(Reply{Type: "error", Error: "frame is not valid JSON: " + err.Error()}), nil
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
			n := len(c.Topics)
			for _, t := range topics {
				if !slices.Contains(c.Topics, t) {
					n++
				}
			}
			if n > pubsub.MaxTopicsPerConnection {
				return reply(Reply{Type: "error", Error: fmt.Sprintf("a connection may follow at most %d topics; this would make %d", pubsub.MaxTopicsPerConnection, n), Topics: sorted(c.Topics)}), nil
			}
			c, err = h.Store.AddTopics(ctx, id, topics)
		}
	} else {
		c, err = h.Store.RemoveTopics(ctx, id, topics)
	}
	if errors.Is(err, store.ErrNotFound) {
		return reply(Reply{Type: "error", Error: "this connection is not registered; reconnect"}), nil
	}
	if err != nil {
		return events.APIGatewayProxyResponse{}, fmt.Errorf("%s for %s: %w", route, id, err)
	}
	return reply(Reply{Type: route + "d", Topics: sorted(c.Topics)}), nil
}

func (h *Handler) fallback(body string) events.APIGatewayProxyResponse {
	var probe struct {
		Action any `json:"action"`
	}
	const how = `send {"action":"subscribe","topics":[...]}, {"action":"unsubscribe","topics":[...]} or {"action":"ping"}; clients cannot publish`
	msg := "unknown frame: " + how
	if err := json.Unmarshal([]byte(body), &probe); err == nil && probe.Action != nil {
		msg = fmt.Sprintf("unknown action %v: %s", probe.Action, how)
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
