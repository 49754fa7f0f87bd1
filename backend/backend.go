// Package backend opens the store, queue and pusher of the configured
// backend: the embedded local stack or AWS.
package backend

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/socks-dev/socks/awsops"
	"github.com/socks-dev/socks/config"
	"github.com/socks-dev/socks/internal/filelock"
	"github.com/socks-dev/socks/pubsub"
	"github.com/socks-dev/socks/store"
)

// Meta keys the local gateway records in the state file so that other
// processes find it.
const (
	MetaGatewayWebSocket  = "gateway.websocket"
	MetaGatewayManagement = "gateway.management"
	MetaGatewayPID        = "gateway.pid"
	// MetaGatewayID is the gateway's run ID (gateway.Gateway.ID), which
	// it sends in pubsub.GatewayIDHeader on every Management API answer:
	// the pusher of a process that follows the gateway takes no answer
	// without it (another program at the recorded address).
	MetaGatewayID = "gateway.id"
	// MetaGatewayClosed is written by a gateway that stopped cleanly: how
	// many clients it closed, and when (Unix milliseconds), as
	// "CLIENTS@MS". The next serve reads and deletes it, and waits for
	// those clients to reconnect before its broker delivers.
	MetaGatewayClosed = "gateway.closed"
)

// Files in the state dir by which local brokers make themselves known. A
// running broker (`socks serve` without --no-broker, `socks broker`) holds
// a shared lock on BrokerLockFile for its lifetime (HoldBroker); the
// operating system drops the lock when the process ends, however it ends,
// so a broker that crashed or was killed is never believed. A probe
// (Broker) takes BrokerLockFile exclusively for an instant, which it
// cannot while any broker holds it; BrokerProbeFile makes the probes take
// turns, since two at once would each see the other as a broker.
const (
	BrokerLockFile  = "broker.lock"
	BrokerProbeFile = "broker.probe"
)

// GatewayLockFile is held exclusively by the local gateway (`socks serve`)
// for its lifetime (HoldGateway): one gateway per state dir, however many
// start at once. The operating system drops it when the process ends.
const GatewayLockFile = "gateway.lock"

// ErrGatewayRunning says that another process serves the state dir's
// gateway (it holds GatewayLockFile).
var ErrGatewayRunning = errors.New("a gateway is already running for this state dir")

// Options tune Open.
type Options struct {
	Now func() time.Time
	// Version goes into the AWS user agent.
	Version string
	// ReadOnly opens the local backend's existing state file for reading
	// only, writing nothing in the state dir (local.Options.ReadOnly).
	ReadOnly bool
}

// Backend is an opened backend.
type Backend struct {
	Config config.Config
	Store  store.Store
	Queue  store.Queue
	// DB is the embedded database (local backend only; nil in the
	// Lambda-only build, which has no local backend: BuildTags).
	DB *localDB
	// AWS is the loaded AWS configuration (AWS backend only).
	AWS *aws.Config
	// Dynamo and SQS are the AWS backend's store and queue, for the
	// commands that need more than the seams (provision, doctor).
	Dynamo *awsops.DynamoStore
	SQS    *awsops.SQSQueue
}

// QueueName names b's queue for messages: "queue NAME" on AWS, "the local
// queue in STATE_FILE" on the local backend.
func (b *Backend) QueueName() string {
	if b.SQS != nil {
		return "queue " + b.SQS.Queues().Main
	}
	return "the local queue in " + b.Config.StatePath()
}

// ConsumerQuestion is what to ask when a message on b's queue was not
// handled in time: who should be consuming the queue. On AWS that is the
// Lambda function or `socks broker --backend aws`; on the local backend
// the broker of `socks serve`.
func (b *Backend) ConsumerQuestion() string {
	if b.Config.Backend == config.BackendAWS {
		return "is the queue consumed, by the Lambda function (socks deploy) or by `socks broker --backend aws`?"
	}
	return "is the broker running (socks serve)?"
}

// ReportsName names where b keeps the brokers' reports: "table NAME" on
// AWS, "the state file STATE_FILE" on the local backend.
func (b *Backend) ReportsName() string {
	if b.Dynamo != nil {
		return "table " + b.Dynamo.Tables().Reports
	}
	return "the state file " + b.Config.StatePath()
}

// ErrNoEndpoint is the AWS backend's error when neither a callback URL
// nor a WebSocket URL is configured: nothing was tried.
var ErrNoEndpoint = errors.New("no API Gateway endpoint configured")

// ErrNoGateway says that no local gateway is running.
var ErrNoGateway = errors.New("no local gateway is running for this state dir: start one with `socks serve` (with the same --state-dir)")

// probeWait bounds how long Broker waits for another probe to finish (a
// probe holds the lock for an instant; one held this long is stuck).
const probeWait = 5 * time.Second

// ErrNoBroker says that no local broker is running.
var ErrNoBroker = errors.New("no broker is running for this state dir: start `socks serve` without --no-broker, or `socks broker` beside it (with the same --state-dir)")

// Open opens the backend cfg selects.
func Open(ctx context.Context, cfg config.Config, opts Options) (*Backend, error) {
	switch cfg.Backend {
	case config.BackendLocal:
		return openLocal(ctx, cfg, opts)
	case config.BackendAWS:
		for _, e := range []struct{ key, url string }{
			{"endpoint_url", cfg.AWS.EndpointURL},
			{"dynamodb_endpoint_url", cfg.AWS.DynamoDBEndpointURL},
			{"sqs_endpoint_url", cfg.AWS.SQSEndpointURL},
		} {
			// Named as the user set it: the flag, the variable or the
			// profile's key.
			if err := config.CheckEndpoint(cfg.Origin(e.key), e.url); err != nil {
				return nil, err
			}
		}
		awsCfg, err := awsops.LoadConfig(ctx, awsops.Settings{
			Profile: cfg.AWS.Profile, Region: cfg.AWS.Region, RegionFrom: cfg.Origin("region"), EndpointURL: cfg.AWS.EndpointURL, Version: opts.Version,
		})
		if err != nil {
			return nil, err
		}
		ddb, sqsc := awsops.NewDynamoDB(awsCfg, cfg.AWS.DynamoDBEndpoint()), awsops.NewSQS(awsCfg, cfg.AWS.SQSEndpoint())
		// The endpoints in effect, with the SDK's own AWS_ENDPOINT_URL_*.
		if err := guardHalfEmulated(aws.ToString(ddb.Options().BaseEndpoint), aws.ToString(sqsc.Options().BaseEndpoint)); err != nil {
			return nil, err
		}
		ds := awsops.NewDynamoStore(ddb, awsops.TablesFor(cfg.AWS.Stack))
		q := awsops.NewSQSQueue(sqsc, awsops.QueuesFor(cfg.AWS.Stack), awsops.SQSOptions{Reports: ds})
		return &Backend{Config: cfg, Store: ds, Queue: q, AWS: &awsCfg, Dynamo: ds, SQS: q}, nil
	}
	return nil, fmt.Errorf("unknown backend %q", cfg.Backend)
}

func unwrapPath(err error) error {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// Close releases the backend.
func (b *Backend) Close() error {
	if b.DB != nil {
		return b.DB.Close()
	}
	return nil
}

// guardHalfEmulated refuses DynamoDB on an emulator on this machine with
// SQS on AWS itself, or the other way round (dynamo and sqs are the
// endpoints in effect, "" for AWS's own): one setting forgotten, and a
// local test would write to a real table or queue, or the reverse.
func guardHalfEmulated(dynamo, sqs string) error {
	const fix = "point both at emulators (--endpoint-url, or --dynamodb-endpoint-url and --sqs-endpoint-url), or neither"
	switch {
	case awsops.OnThisMachine(dynamo) && sqs == "":
		return fmt.Errorf("DynamoDB calls go to %s on this machine, but SQS calls would go to AWS itself: set --sqs-endpoint-url (%s) too; %s", dynamo, config.EnvSQSEndpointURL, fix)
	case awsops.OnThisMachine(sqs) && dynamo == "":
		return fmt.Errorf("SQS calls go to %s on this machine, but DynamoDB calls would go to AWS itself: set --dynamodb-endpoint-url (%s) too; %s", sqs, config.EnvDynamoDBEndpointURL, fix)
	}
	return nil
}

// Gateway returns the endpoints clients and the broker use: on the local
// backend, those the running `socks serve` recorded; on AWS, the configured
// WebSocket and callback (Management API) URLs.
func (b *Backend) Gateway(ctx context.Context) (websocketURL, managementURL string, err error) {
	if b.DB == nil {
		return b.awsEndpoints()
	}
	ws, ok, err := b.DB.GetMeta(ctx, MetaGatewayWebSocket)
	if err != nil {
		return "", "", err
	}
	mgmt, ok2, err := b.DB.GetMeta(ctx, MetaGatewayManagement)
	if err != nil {
		return "", "", err
	}
	if !ok || !ok2 {
		return "", "", ErrNoGateway
	}
	if running, known := b.GatewayRunning(); known && !running {
		// Killed without removing its record; what listens at its
		// address now (another state dir's gateway) is not it.
		return "", "", ErrNoGateway
	}
	if !Reachable(mgmt) {
		// The gateway died without removing its record (kill -9, a crash).
		return "", "", ErrNoGateway
	}
	return ws, mgmt, nil
}

// WatchStateFile returns nil when ctx ends, or an error (wrapping
// local.ErrReplaced) as soon as the local state file was deleted or
// replaced under this process, which must then stop: it would go on with a
// file no other process sees. On AWS it waits for ctx.
func (b *Backend) WatchStateFile(ctx context.Context) error {
	if b.DB == nil {
		<-ctx.Done()
		return nil
	}
	return b.DB.WatchReplaced(ctx)
}

// HoldBroker makes this process known as a running broker of the local
// state dir, until release is called or the process ends; brokers may run
// side by side, each holding it. On AWS, where the broker is the Lambda
// function on the queue, it does nothing.
func (b *Backend) HoldBroker() (release func(), err error) {
	if b.DB == nil {
		return func() {}, nil
	}
	// A probe holds the lock exclusively for an instant only: one held
	// for probeWait is a stopped process, and waiting on would hang the
	// broker's start.
	lock := filepath.Join(b.Config.StateDir, BrokerLockFile)
	l, err := filelock.Within(probeWait, func() (*filelock.Lock, bool, error) { return filelock.TryShared(lock) })
	if errors.Is(err, errors.ErrUnsupported) {
		return func() {}, nil // no file locks here: brokers go unseen, and Broker says so
	}
	if errors.Is(err, filelock.ErrTimeout) {
		return nil, fmt.Errorf("cannot make the broker known in %s: another socks process has held %s for %s (is one stopped?)", b.Config.StateDir, lock, probeWait)
	}
	if err != nil {
		return nil, fmt.Errorf("cannot make the broker known in %s: %w", b.Config.StateDir, unwrapPath(err))
	}
	return func() { _ = l.Unlock() }, nil
}

// gatewayWait bounds how long HoldGateway waits for the gateway lock: a
// probe (GatewayRunning) holds it for an instant, a gateway for its life.
const gatewayWait = time.Second

// HoldGateway makes this process the local state dir's one gateway until
// release is called or the process ends; it fails with ErrGatewayRunning
// while another process (or another HoldGateway in this one) is. locked
// says that the lock is real: then no gateway runs for the state dir but
// this one, whatever its record says. Without file locks it lets every
// caller through (locked false), and the record is the only check. On AWS
// it does nothing.
func (b *Backend) HoldGateway() (release func(), locked bool, err error) {
	if b.DB == nil {
		return func() {}, false, nil
	}
	l, err := filelock.Within(gatewayWait, func() (*filelock.Lock, bool, error) {
		return filelock.TryExclusive(filepath.Join(b.Config.StateDir, GatewayLockFile))
	})
	switch {
	case errors.Is(err, errors.ErrUnsupported):
		return func() {}, false, nil
	case errors.Is(err, filelock.ErrTimeout):
		return nil, false, ErrGatewayRunning
	case err != nil:
		return nil, false, fmt.Errorf("cannot take the gateway's lock in %s: %w", b.Config.StateDir, unwrapPath(err))
	}
	// Named at once, for a serve refused the lock while this one starts
	// or stops (and has no record) to say which process to stop. A
	// failure only leaves it unnamed.
	_ = l.SetOwner(strconv.Itoa(os.Getpid()))
	return func() { _ = l.Unlock() }, true, nil
}

// GatewayPID returns the pid of the gateway that holds the local state
// dir's gateway lock, as it named itself there (HoldGateway), or 0 when
// none holds it, or that cannot be told. It creates nothing.
func (b *Backend) GatewayPID() int {
	if running, known := b.GatewayRunning(); !running || !known {
		return 0
	}
	pid, err := strconv.Atoi(filelock.Owner(filepath.Join(b.Config.StateDir, GatewayLockFile)))
	if err != nil || pid <= 0 {
		return 0
	}
	return pid
}

// GatewayRunning reports whether a gateway holds the local state dir's
// gateway lock (HoldGateway); known is false where that cannot be told
// (no file locks, an unreadable state dir), and then only the record and
// a connect to its address say whether one runs. It creates nothing.
func (b *Backend) GatewayRunning() (running, known bool) {
	if b.DB == nil {
		return false, false
	}
	path := filepath.Join(b.Config.StateDir, GatewayLockFile)
	if _, err := os.Stat(path); err != nil {
		// Every gateway since the lock leaves the file behind: none
		// of those ran here.
		return false, false
	}
	l, got, err := filelock.TryShared(path)
	switch {
	case err != nil:
		return false, false
	case !got:
		return true, true
	}
	_ = l.Unlock()
	return false, true
}

// Broker returns nil when a broker is running for the local state dir
// (one that called HoldBroker and has not ended) and ErrNoBroker when none
// is. On AWS it returns nil: the broker is the Lambda function on the
// queue's event source, which `socks doctor` checks.
func (b *Backend) Broker() error {
	if b.DB == nil {
		return nil
	}
	running, err := b.whileNoBroker(nil)
	if errors.Is(err, errors.ErrUnsupported) {
		return nil // cannot tell: assume one runs, as before brokers were known
	}
	if err != nil || running {
		return err
	}
	return ErrNoBroker
}

// GiveBackOrphans makes the messages hidden on the local queue visible at
// once when no broker of the state dir runs, and returns how many: they
// were received by brokers that died with them in hand (kill -9, a crash),
// and would otherwise wait out their visibility timeout. A broker calls it
// as it starts, before HoldBroker. With another broker running, or on AWS
// (where SQS keeps its own visibility), it gives back nothing.
func (b *Backend) GiveBackOrphans(ctx context.Context) (int, error) {
	if b.DB == nil {
		return 0, nil
	}
	n := 0
	_, err := b.whileNoBroker(func() (err error) {
		n, err = b.DB.Queue().GiveBackInFlight(ctx)
		return err
	})
	if errors.Is(err, errors.ErrUnsupported) {
		return 0, nil // brokers go unseen here: none can be known gone
	}
	return n, err
}

// whileNoBroker takes the probes' turn and reports whether a broker runs
// (holds the broker lock). When none does, it runs fn (if any) holding
// that lock exclusively, so that no broker starts meanwhile.
func (b *Backend) whileNoBroker(fn func() error) (running bool, err error) {
	probe := filepath.Join(b.Config.StateDir, BrokerProbeFile)
	turn, err := filelock.Within(probeWait, func() (*filelock.Lock, bool, error) { return filelock.TryExclusive(probe) })
	if errors.Is(err, errors.ErrUnsupported) {
		return false, err
	}
	if errors.Is(err, filelock.ErrTimeout) {
		return false, fmt.Errorf("cannot tell whether a broker runs in %s: another socks process has held %s for %s (is one stopped?)", b.Config.StateDir, probe, probeWait)
	}
	if err != nil {
		return false, fmt.Errorf("cannot tell whether a broker runs in %s: %w", b.Config.StateDir, unwrapPath(err))
	}
	defer turn.Unlock()
	l, got, err := filelock.TryExclusive(filepath.Join(b.Config.StateDir, BrokerLockFile))
	if err != nil {
		return false, fmt.Errorf("cannot tell whether a broker runs in %s: %w", b.Config.StateDir, unwrapPath(err))
	}
	if !got {
		return true, nil // a broker holds it
	}
	defer l.Unlock()
	if fn != nil {
		return false, fn()
	}
	return false, nil
}

// Reachable reports whether something accepts TCP connections at the host
// of rawURL: a cheap liveness probe for a recorded local gateway, which a
// stale PID (reused, or a zombie) cannot fool.
func Reachable(rawURL string) bool {
	u, err := url.Parse(rawURL)
	if err != nil || u.Host == "" {
		return false
	}
	c, err := net.DialTimeout("tcp", u.Host, 500*time.Millisecond)
	if err != nil {
		return false
	}
	_ = c.Close()
	return true
}

func (b *Backend) awsEndpoints() (string, string, error) {
	ws, cb := b.Config.AWS.WebSocketURL, b.Config.AWS.CallbackURL
	if cb == "" && ws != "" {
		cb = wsToHTTP(ws)
	}
	if ws == "" && cb != "" {
		ws = httpToWS(cb)
	}
	if cb == "" {
		return "", "", fmt.Errorf("%w: set --callback-url or %s to https://{api-id}.execute-api.{region}.amazonaws.com/{stage} (or %s to the wss:// URL)", ErrNoEndpoint, config.EnvCallback, config.EnvWebSocket)
	}
	return ws, cb, nil
}

// WebSocketURL is where clients connect.
func (b *Backend) WebSocketURL(ctx context.Context) (string, error) {
	ws, _, err := b.Gateway(ctx)
	return ws, err
}

// Pusher returns a Management API pusher for the backend, with keep-alive
// sized to concurrency. On the local backend it follows the state dir's
// gateway to a new address when the one it found cannot be reached any
// more (a serve started again elsewhere), and takes no answer but that
// gateway's (NotThisGatewayError): another program may listen at the
// address a stopped serve left.
func (b *Backend) Pusher(ctx context.Context, concurrency int) (store.Pusher, error) {
	_, mgmt, err := b.Gateway(ctx)
	if err != nil {
		return nil, err
	}
	if b.AWS != nil {
		return awsops.NewPusher(awsops.NewManagementClient(*b.AWS, mgmt, concurrency)), nil
	}
	if b.DB == nil {
		return b.LocalPusher(mgmt, concurrency) // serve on the AWS backend: its own gateway
	}
	id, err := b.gatewayID(ctx)
	if err != nil {
		return nil, err
	}
	p, err := b.localPusher(mgmt, id, concurrency)
	if err != nil {
		return nil, err
	}
	f := &followingPusher{b: b, concurrency: concurrency}
	f.at.Store(&pusherAt{mgmt: mgmt, id: id, p: p})
	return f, nil
}

// gatewayID returns the run ID the local gateway recorded beside its
// address (MetaGatewayID), or "" when it recorded none (a serve of an
// older socks).
func (b *Backend) gatewayID(ctx context.Context) (string, error) {
	id, _, err := b.DB.GetMeta(ctx, MetaGatewayID)
	return id, err
}

// LocalPusher is the pusher for a local gateway of this state dir: it
// signs with the gateway's key pair when the state dir holds one (a
// gateway on a non-loopback address requires it), else with dummy
// credentials.
func (b *Backend) LocalPusher(endpoint string, concurrency int) (store.Pusher, error) {
	return b.localPusher(endpoint, "", concurrency)
}

// RecordedGatewayPusher is LocalPusher for the gateway the local state
// dir records at endpoint: it takes only the answers that carry the run
// ID recorded beside the address (NotThisGatewayError otherwise: another
// program may listen at the port of a serve that stopped), as the
// broker's pusher does, and any answer when none is recorded (a serve of
// an older socks). Unlike Pusher it asks endpoint only, following no
// serve elsewhere: `socks doctor` reports what answers there.
func (b *Backend) RecordedGatewayPusher(ctx context.Context, endpoint string, concurrency int) (store.Pusher, error) {
	if b.DB == nil {
		return b.LocalPusher(endpoint, concurrency)
	}
	id, err := b.gatewayID(ctx)
	if err != nil {
		return nil, err
	}
	return b.localPusher(endpoint, id, concurrency)
}

// localPusher is LocalPusher taking, when id is not "", only the answers
// of the gateway whose run ID is id.
func (b *Backend) localPusher(endpoint, id string, concurrency int) (store.Pusher, error) {
	var opts []awsops.ClientOption
	if id != "" {
		opts = append(opts, awsops.WithResponseCheck(checkGatewayID(endpoint, id)))
	}
	creds, ok, err := ReadManagementKeys(b.Config.ManagementKeysPath())
	if err != nil {
		return nil, err
	}
	if ok {
		return SignedLocalPusher(endpoint, concurrency, creds, opts...), nil
	}
	return LocalPusher(endpoint, concurrency, opts...), nil
}

// NotThisGatewayError is a call's failure when what answered at the
// gateway's recorded address is not the gateway that recorded it: its
// answer did not carry that gateway's run ID (pubsub.GatewayIDHeader).
// The serve stopped and another program listens at its port now (or
// another serve, of another state dir): nothing of the answer is taken,
// not even a 200 or a 410, and the call counts as failed (the broker
// retries it; the message stays queued).
type NotThisGatewayError struct {
	Addr string
}

func (e *NotThisGatewayError) Error() string {
	return "the server at " + e.Addr + " is not this state dir's socks serve (its answer did not carry the gateway's ID; another program may listen at the port of a serve that stopped): nothing was delivered, and the message stays queued until `socks serve` runs again"
}

// checkGatewayID returns the check (awsops.WithResponseCheck) that an
// answer from endpoint is the gateway's whose run ID is id.
func checkGatewayID(endpoint, id string) func(*http.Response) error {
	addr := endpoint
	if u, err := url.Parse(endpoint); err == nil && u.Host != "" {
		addr = u.Host
	}
	return func(r *http.Response) error {
		if r.Header.Get(pubsub.GatewayIDHeader) != id {
			return &NotThisGatewayError{Addr: addr}
		}
		return nil
	}
}

// LocalPusher is the pusher for a local gateway's Management API endpoint:
// the same SDK client code as on AWS, with dummy credentials.
func LocalPusher(endpoint string, concurrency int, opts ...awsops.ClientOption) store.Pusher {
	return awsops.NewPusher(awsops.NewManagementClient(awsops.LocalConfig(), endpoint, concurrency, opts...))
}

// httpToWS turns an http(s) base URL into ws(s).
func httpToWS(u string) string {
	if strings.HasPrefix(u, "https://") {
		return "wss://" + strings.TrimPrefix(u, "https://")
	}
	return "ws://" + strings.TrimPrefix(u, "http://")
}

// wsToHTTP turns a ws(s) URL into http(s).
func wsToHTTP(u string) string {
	if strings.HasPrefix(u, "wss://") {
		return "https://" + strings.TrimPrefix(u, "wss://")
	}
	return "http://" + strings.TrimPrefix(u, "ws://")
}
