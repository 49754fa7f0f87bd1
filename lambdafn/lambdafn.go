// Package lambdafn runs the socks binary as an AWS Lambda function
// (provided.al2023, the executable named bootstrap). One function serves
// every event it is wired to, told apart by shape:
//
//   - API Gateway WebSocket events (requestContext.routeKey) go to the route
//     handlers of package routes: $connect, $disconnect, subscribe,
//     unsubscribe, ping and $default;
//   - SQS events (Records[].eventSource "aws:sqs") go to the broker, one
//     broker.Decide per record of the stack's envelope queue, answered
//     with partial batch failures.
//
// commands.Main enters Main when Detect says the process is a Lambda
// function.
package lambdafn

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-lambda-go/lambdacontext"
	"github.com/aws/aws-sdk-go-v2/aws"
	"golang.org/x/sync/errgroup"

	"github.com/socks-dev/socks/awsops"
	"github.com/socks-dev/socks/backend"
	"github.com/socks-dev/socks/broker"
	"github.com/socks-dev/socks/config"
	"github.com/socks-dev/socks/internal/build"
	"github.com/socks-dev/socks/internal/logsafe"
	"github.com/socks-dev/socks/internal/text"
	"github.com/socks-dev/socks/pubsub"
	"github.com/socks-dev/socks/routes"
	"github.com/socks-dev/socks/store"
)

// EnvRuntimeAPI is set by Lambda in a function's environment.
const EnvRuntimeAPI = "AWS_LAMBDA_RUNTIME_API"

// Detect reports whether the process was started by Lambda: the runtime API
// is in the environment and there are no command-line arguments (Lambda
// starts bootstrap without any; `socks ARGS` in a Lambda shell stays a CLI).
func Detect(getenv func(string) string, args []string) bool {
	return getenv(EnvRuntimeAPI) != "" && len(args) == 0
}

// Defaults.
const (
	// DefaultWorkers is how many records of an SQS batch are handled at
	// once (a batch holds at most 10).
	DefaultWorkers = store.MaxBatch
	// SourceSQS is the eventSource of an SQS record.
	SourceSQS = "aws:sqs"
)

// Handler serves the function's events. Set Routes, Broker (with Store and
// Queue) and Pusher; the rest default.
type Handler struct {
	// Routes handles WebSocket events.
	Routes *routes.Handler
	// Broker decides SQS records; its Pusher is set per batch from
	// Pusher(endpoint).
	Broker *broker.Broker
	// Pusher returns the Management API client for an endpoint (called
	// once per endpoint; the client is kept for later invocations).
	Pusher func(endpoint string) store.Pusher
	// Callback is the Management API endpoint (SOCKS_CALLBACK_URL), the
	// only one SQS batches are posted to. When it is empty no post is
	// made: each batch's records with targets are retried and in the end
	// dead-lettered with what to set, never lost. (An endpoint is never
	// taken from a WebSocket event: with two stages on one function the
	// last event's stage is the wrong one half the time, and its
	// Management API answers 410 Gone for the other's connections, which
	// the broker then deletes.)
	Callback string
	// EnvelopeQueue is the name of the stack's envelope queue
	// (STACK-envelopes), the only queue whose records are served (see
	// HandleSQS). Empty: every record is served, whatever its queue.
	EnvelopeQueue string
	// MaxReceives is how often a failing record is tried before it is
	// dead-lettered with the reason (default store.DefaultMaxReceives).
	MaxReceives int
	// Workers bounds the records handled at once (default DefaultWorkers).
	Workers int
	Logger  *slog.Logger

	mu      sync.Mutex
	pushers map[string]store.Pusher
}

func (h *Handler) logger() *slog.Logger {
	if h.Logger != nil {
		return h.Logger
	}
	return slog.New(slog.DiscardHandler)
}

// probe is the part of any event that tells its kind.
type probe struct {
	RequestContext *struct {
		RouteKey     string `json:"routeKey"`
		ConnectionID string `json:"connectionId"`
	} `json:"requestContext"`
	Records []struct {
		EventSource string `json:"eventSource"`
	} `json:"Records"`
}

// UnsupportedEventError says the function got an event it does not serve.
type UnsupportedEventError struct{ Detail string }

func (e *UnsupportedEventError) Error() string {
	return "unsupported event (" + e.Detail + "): socks serves API Gateway WebSocket events (requestContext.routeKey) and SQS events (Records[].eventSource \"aws:sqs\"); check the function's triggers"
}

// Invoke serves one raw event (the lambda.Handler interface): it tells the
// event's kind by its shape and answers with the JSON of the response.
func (h *Handler) Invoke(ctx context.Context, payload []byte) ([]byte, error) {
	resp, err := h.Dispatch(ctx, payload)
	if err != nil {
		return nil, err
	}
	return json.Marshal(resp)
}

// Dispatch decodes payload by its shape and serves it: an
// events.APIGatewayProxyResponse for a WebSocket event, an
// events.SQSEventResponse for an SQS batch.
func (h *Handler) Dispatch(ctx context.Context, payload []byte) (any, error) {
	var p probe
	if len(bytes.TrimSpace(payload)) == 0 {
		return nil, &UnsupportedEventError{Detail: "the event is empty"}
	}
	if err := json.Unmarshal(payload, &p); err != nil {
		return nil, &UnsupportedEventError{Detail: "the event " + pubsub.DescribeJSONError(err)}
	}
	switch {
	case p.RequestContext != nil && p.RequestContext.RouteKey != "" && p.RequestContext.ConnectionID != "":
		var req events.APIGatewayWebsocketProxyRequest
		if err := json.Unmarshal(payload, &req); err != nil {
			return nil, fmt.Errorf("the WebSocket event %s: it is not as API Gateway writes one; check the function's triggers", pubsub.DescribeJSONError(err))
		}
		return h.HandleWebSocket(ctx, req)
	case len(p.Records) > 0:
		for i, r := range p.Records {
			if r.EventSource != SourceSQS {
				return nil, &UnsupportedEventError{Detail: fmt.Sprintf("record %d has eventSource %q", i+1, r.EventSource)}
			}
		}
		var ev events.SQSEvent
		if err := json.Unmarshal(payload, &ev); err != nil {
			return nil, fmt.Errorf("the SQS event %s: it is not as SQS writes one; check the function's triggers", pubsub.DescribeJSONError(err))
		}
		return h.HandleSQS(ctx, ev)
	}
	return nil, &UnsupportedEventError{Detail: "no requestContext.routeKey with a connectionId, and no Records"}
}

// HandleWebSocket serves an API Gateway WebSocket event with the route
// handlers. The reply of a two-way route is the response body, which API
// Gateway sends back to the client when the route has a route response.
// An error, which the Lambda runtime writes to the function's log, is in
// the words logsafe gives it, as the routes' own log lines are: it may
// name what the client sent (a ?geek= that is a chatter ID pasted by
// mistake).
func (h *Handler) HandleWebSocket(ctx context.Context, req events.APIGatewayWebsocketProxyRequest) (events.APIGatewayProxyResponse, error) {
	resp, err := h.Routes.Handle(ctx, req)
	return resp, logsafe.Error(err, h.logger().Enabled(ctx, slog.LevelDebug))
}

// pusher returns the kept pusher for endpoint.
func (h *Handler) pusher(endpoint string) store.Pusher {
	if endpoint == "" {
		return noEndpoint{}
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if p, ok := h.pushers[endpoint]; ok {
		return p
	}
	if h.pushers == nil {
		h.pushers = make(map[string]store.Pusher)
	}
	p := h.Pusher(endpoint)
	h.pushers[endpoint] = p
	return p
}

// noEndpoint is the pusher when no Management API endpoint is known: every
// post fails with what to set, so messages with targets are retried and in
// the end dead-lettered with that reason, never lost.
type noEndpoint struct{}

var errNoEndpoint = errors.New("no Management API endpoint: set " + config.EnvCallback +
	" to https://{api-id}.execute-api.{region}.amazonaws.com/{stage} in the function's environment")

func (noEndpoint) Post(_ context.Context, id string, _ []byte) error {
	return &store.PushError{Kind: store.KindOther, Op: "PostToConnection", ConnectionID: id, Err: errNoEndpoint}
}

func (noEndpoint) Get(_ context.Context, id string) (store.ConnectionInfo, error) {
	return store.ConnectionInfo{}, &store.PushError{Kind: store.KindOther, Op: "GetConnection", ConnectionID: id, Err: errNoEndpoint}
}

func (noEndpoint) Delete(_ context.Context, id string) error {
	return &store.PushError{Kind: store.KindOther, Op: "DeleteConnection", ConnectionID: id, Err: errNoEndpoint}
}

// HandleSQS decides every record of an SQS batch and reports the records to
// retry as batch item failures (the event source mapping must have
// ReportBatchItemFailures on). A record is retried only when none of its
// deliveries could be done; when some could, the connections whose
// delivery failed are handed on in a follow-up envelope first (and if that
// cannot be enqueued, the record is retried). A record that can never be handled (an
// envelope that does not parse), one received more than MaxReceives times,
// and one that failed on its last allowed receive are moved to the
// dead-letter queue with the reason and reported as successes, so that SQS
// deletes them; if that move fails, the record is retried instead. A
// record to retry is made visible again after a backoff of a second per
// receive (broker.RetryLater), as in the queue loop. The fan-out, and then
// the settling, stop a little before the invocation's deadline (see
// batchContexts), so that the answer always goes out. A message that
// appears twice in the batch (the same message ID) is handled once. A
// record without a messageId (SQS always sets one) cannot be a batch item
// failure: one that is to be retried is dead-lettered instead, and if that
// fails the whole batch fails (an error), as Lambda would take an empty
// itemIdentifier anyway. A record of another queue than EnvelopeQueue is
// not handled but reported as a batch item failure, left to its queue
// (see notOurs), and the batch's log says which queues are wired. A
// record whose turn comes after the fan-out's end (a batch of more than
// Workers records, whose first ones took the time) is not tried either:
// with no time left it would fail at once, and on its last receive be
// dead-lettered for a failure that never was; it is a batch item failure,
// left to come back when the queue's visibility timeout ends, and the log
// says how many were not tried.
func (h *Handler) HandleSQS(ctx context.Context, ev events.SQSEvent) (events.SQSEventResponse, error) {
	if h.Callback == "" {
		h.logger().Error("no "+config.EnvCallback+" in the function's environment: this batch's messages are not posted; "+
			"those with targets are retried and in the end dead-lettered (socks dlq redrive, once it is set)", "err", errNoEndpoint)
	}
	br := *h.Broker
	br.Pusher = h.pusher(h.Callback)
	br.MaxReceives = h.MaxReceives
	if br.MaxReceives <= 0 {
		br.MaxReceives = store.DefaultMaxReceives
	}
	if br.Logger == nil {
		br.Logger = h.Logger
	}
	settle, fanOut, cancel := batchContexts(ctx)
	defer cancel()

	workers := h.Workers
	if workers <= 0 {
		workers = DefaultWorkers
	}
	failed := make([]bool, len(ev.Records))
	// A message SQS hands over twice in one batch is handled once, and
	// reported once: under its last record, whose receipt is the one SQS
	// heeds (the latest received).
	last := make(map[string]int, len(ev.Records))
	for i, r := range ev.Records {
		last[r.MessageId] = i
	}
	// A record of another queue than the stack's is left to its queue
	// (see notOurs).
	var foreign []bool
	var from []string
	var untried atomic.Int64
	g := new(errgroup.Group)
	g.SetLimit(workers)
	for i, r := range ev.Records {
		if r.MessageId != "" && last[r.MessageId] != i {
			continue
		}
		if h.notOurs(r) {
			if foreign == nil {
				foreign = make([]bool, len(ev.Records))
			}
			foreign[i], failed[i] = true, true
			if arn := text.CapBytes(r.EventSourceARN, maxARNBytes); len(from) < maxQueuesNamed && !slices.Contains(from, arn) {
				from = append(from, arn)
			}
			continue
		}
		g.Go(func() error {
			if fanOut.Err() != nil {
				// Its turn came after the fan-out's time: not tried.
				failed[i] = true
				untried.Add(1)
				return nil
			}
			failed[i] = !record(settle, fanOut, &br, r)
			return nil
		})
	}
	if foreign != nil {
		n := 0
		for _, f := range foreign {
			if f {
				n++
			}
		}
		h.logger().Error(fmt.Sprintf("%s of this batch %s received from another queue than the stack's envelope queue, %s: not handled, "+
			"but left to that queue as batch item failures (its own redrive policy applies); check the function's triggers%s",
			text.Pluralize(n, "record"), text.WasWere(n), h.EnvelopeQueue, listMappings()),
			"queue", h.EnvelopeQueue, "from", from, "records", n)
	}
	_ = g.Wait()
	if n := int(untried.Load()); n > 0 {
		h.logger().Warn(fmt.Sprintf("%s of this batch %s not tried: the invocation's time for delivering had run out first; "+
			"each is a batch item failure, received again once the queue's visibility timeout ends. "+
			"The function handles %d records at once: if batches often outlast its timeout, lower the event source mapping's batch size, or raise the function's timeout",
			text.Pluralize(n, "record"), text.WasWere(n), workers), "records", n)
	}
	resp := events.SQSEventResponse{BatchItemFailures: []events.SQSBatchItemFailure{}}
	for i, f := range failed {
		if f && ev.Records[i].MessageId == "" {
			// It cannot be reported alone (see record): the whole batch
			// comes back, its delivered records a second time, none lost.
			if foreign != nil && foreign[i] {
				return events.SQSEventResponse{}, fmt.Errorf("SQS record %d of %d has no messageId and comes from another queue than the stack's envelope queue %s: the whole batch is retried; check the function's triggers", i+1, len(ev.Records), h.EnvelopeQueue)
			}
			return events.SQSEventResponse{}, fmt.Errorf("SQS record %d of %d has no messageId and could not be dead-lettered: the whole batch is retried", i+1, len(ev.Records))
		}
	}
	for i, f := range failed {
		if f {
			resp.BatchItemFailures = append(resp.BatchItemFailures, events.SQSBatchItemFailure{ItemIdentifier: ev.Records[i].MessageId})
		}
	}
	return resp, nil
}

// maxQueuesNamed bounds the other queues the log line of a batch names,
// and maxARNBytes each name (an SQS queue's ARN is at most 150 bytes).
const (
	maxQueuesNamed = 10
	maxARNBytes    = 256
)

// listMappings is the command that lists the function's event source
// mappings, when the function's name is known, for a log line to end
// with.
func listMappings() string {
	if lambdacontext.FunctionName == "" {
		return ""
	}
	return ": remove the event source mapping of each other queue (`aws lambda list-event-source-mappings --function-name " + lambdacontext.FunctionName + "` lists them)"
}

// notOurs reports whether r comes from another queue than the stack's
// envelope queue (its eventSourceARN names another, or is not an SQS
// queue's ARN): an event source mapping from the dead-letter queue, from
// another stack's queue, or one added by hand. Such a record is neither
// delivered (another stack's envelopes would reach this stack's
// connections, dead letters would be redriven unasked) nor dead-lettered
// or made visible again, which would take its receipt to the main queue,
// whose receipt it is not: it is a batch item failure, left to its own
// queue and that queue's redrive policy. A handler without an
// EnvelopeQueue serves every record.
func (h *Handler) notOurs(r events.SQSMessage) bool {
	return h.EnvelopeQueue != "" && queueName(r.EventSourceARN) != h.EnvelopeQueue
}

// queueName is the queue name of an SQS queue's ARN
// (arn:PARTITION:sqs:REGION:ACCOUNT:NAME), or "" for any other string.
func queueName(arn string) string {
	rest, ok := strings.CutPrefix(arn, "arn:")
	if !ok {
		return ""
	}
	fields := [4]string{}
	for i := range fields {
		if fields[i], rest, ok = strings.Cut(rest, ":"); !ok {
			return ""
		}
	}
	if fields[1] != "sqs" || strings.Contains(rest, ":") {
		return ""
	}
	return rest
}

// Message turns an SQS record into the queue message the broker decides.
func Message(r events.SQSMessage) store.Message {
	m := store.Message{ID: r.MessageId, Receipt: r.ReceiptHandle, Body: []byte(r.Body)}
	m.ReceiveCount, _ = strconv.Atoi(r.Attributes["ApproximateReceiveCount"])
	if ms, err := strconv.ParseInt(r.Attributes["SentTimestamp"], 10, 64); err == nil {
		m.SentAt = time.UnixMilli(ms).UTC()
	}
	return m
}

// record handles one SQS record and reports whether SQS may delete it. The
// fan-out runs under fanOut, the rest under ctx.
func record(ctx, fanOut context.Context, br *broker.Broker, r events.SQSMessage) bool {
	m := Message(r)
	if m.ReceiveCount > br.MaxReceives {
		var out broker.Outcome
		br.DeadLetter(ctx, m, &out, fmt.Sprintf("received %d times without being handled (max %d)", m.ReceiveCount, br.MaxReceives))
		return out.DeadLettered
	}
	out := br.Decide(fanOut, m)
	if br.Settle(ctx, m, &out) {
		return true
	}
	if m.ID == "" {
		// A record to retry is reported by its messageId, and Lambda takes
		// an empty itemIdentifier for the failure of the whole batch: every
		// other record of it would be delivered again. SQS always sets
		// the ID, so this is an event made by hand; its record goes to the
		// dead letters with why, to be redriven, rather than retried.
		br.DeadLetter(ctx, m, &out, fmt.Sprintf("%v (not retried: its SQS record has no messageId, which a batch item failure needs)", out.Err))
		return out.DeadLettered
	}
	br.RetryLater(ctx, m)
	return false
}

// batchContexts returns the contexts a batch is handled under: the
// fan-out ends shortly before the invocation's deadline, so that the
// records can still be settled, and the settling (follow-ups, reports,
// dead letters) ends a little before it too, so that the partial batch
// failures are always returned: a function that times out has its whole
// batch received again, delivered records included. A record whose
// settling is cut short is retried.
func batchContexts(ctx context.Context) (settle, fanOut context.Context, cancel context.CancelFunc) {
	deadline, ok := ctx.Deadline()
	if !ok {
		fanOut, cancel = context.WithCancel(ctx)
		return ctx, fanOut, cancel
	}
	margin := min(maxSettleMargin, time.Until(deadline)/10)
	settle, cancelSettle := context.WithDeadline(ctx, deadline.Add(-margin/answerShare))
	fanOut, cancelFanOut := context.WithDeadline(settle, deadline.Add(-margin))
	return settle, fanOut, func() { cancelFanOut(); cancelSettle() }
}

const (
	// maxSettleMargin is the most batchContexts keeps back, after the
	// fan-out, for settling and answering.
	maxSettleMargin = 2 * time.Second
	// answerShare: 1/answerShare of that margin is kept for the answer.
	answerShare = 4
)

// New builds the handler from the function's environment: the AWS backend
// of SOCKS_STACK in AWS_REGION (endpoint overrides included), and the
// Management API endpoint from SOCKS_CALLBACK_URL (or SOCKS_WEBSOCKET_URL).
func New(ctx context.Context, getenv func(string) string, info build.Info, logger *slog.Logger) (*Handler, error) {
	cfg, err := config.Resolve(config.Flags{Backend: config.BackendAWS, StateDir: os.TempDir()}, getenv)
	if err != nil {
		return nil, err
	}
	b, err := backend.Open(ctx, cfg, backend.Options{Version: info.Version})
	if err != nil {
		return nil, err
	}
	_, callback, err := b.Gateway(ctx)
	if err != nil {
		// WebSocket events are served without it; SQS batches are not
		// posted (see Handler.Callback), each one saying so.
		callback = ""
		logger.Error("no "+config.EnvCallback+" in the function's environment: SQS batches will not be delivered until it is set", "err", err)
	}
	awsCfg := *b.AWS
	rh := &routes.Handler{Store: b.Store, Logger: logger.With("component", "routes")}
	if err := rh.SetLimitsFromEnv(getenv); err != nil {
		return nil, err
	}
	return &Handler{
		Routes:        rh,
		Broker:        &broker.Broker{Store: b.Store, Queue: b.Queue, Concurrency: broker.DefaultConcurrency, PostSlots: make(chan struct{}, postSlots), Logger: logger.With("component", "broker"), Mapping: cfg.Mapping},
		Pusher:        managementPushers(awsCfg),
		Callback:      callback,
		EnvelopeQueue: awsops.QueuesFor(cfg.AWS.Stack).Main,
		Logger:        logger,
	}, nil
}

// managementPushers returns Handler.Pusher for New: a Management API
// client for the endpoint with a connection for each of the broker's
// PostSlots (postSlots).
func managementPushers(cfg aws.Config) func(endpoint string) store.Pusher {
	return func(endpoint string) store.Pusher {
		return awsops.NewPusher(awsops.NewManagementClient(cfg, endpoint, postSlots))
	}
}

// postSlots bounds the posts under way at once in the function: the
// records of a batch (DefaultWorkers at once, each posting to
// broker.DefaultConcurrency connections at once) share one Management
// API client with as many connections. Without the bound, the posts past
// them waited in the client's pool with their 10 s timeout running (a
// request past net/http's MaxConnsPerHost is queued), and one that waited
// long enough failed, never sent, and was tried again.
const postSlots = broker.DefaultConcurrency

// Main runs the Lambda runtime loop with the handler New builds; it only
// returns when the handler cannot be built (the error goes to stderr, where
// Lambda logs it, and the code is 1).
func Main(ctx context.Context, getenv func(string) string, info build.Info, stderr io.Writer) int {
	// Its failures name the function's settings, not a command's flags.
	awsops.ExplainAsLambda(true)
	logger := slog.New(slog.NewJSONHandler(stderr, nil))
	h, err := New(ctx, getenv, info, logger)
	if err != nil {
		fmt.Fprintln(stderr, "socks: "+strings.ReplaceAll(err.Error(), "\n", " "))
		return 1
	}
	lambda.StartWithOptions(h, lambda.WithContext(ctx))
	return 0
}
