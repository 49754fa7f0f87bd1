package ops

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"net"
	"syscall"
	"time"

	"github.com/aws/smithy-go"

	"github.com/socks-dev/socks/backend"
	"github.com/socks-dev/socks/config"
	"github.com/socks-dev/socks/local"
	"github.com/socks-dev/socks/pubsub"
	"github.com/socks-dev/socks/store"
)

// Status is the outcome of one doctor check.
type Status string

const (
	StatusOK   Status = "ok"
	StatusWarn Status = "warn"
	StatusFail Status = "fail"
	// StatusSkip: the check could not run because an earlier one failed
	// (for example the backend did not open).
	StatusSkip Status = "skip"
)

// Result is what one check found.
type Result struct {
	Name   string `json:"name"`
	Status Status `json:"status"`
	// Detail says what was found, in one line.
	Detail string `json:"detail"`
	// TimeLabel and Time, when Time is set, complete Detail with a time
	// that the output shows relative on a terminal and in RFC 3339
	// otherwise: Detail + ", " + TimeLabel + " " + time.
	TimeLabel string    `json:"timeLabel,omitempty"`
	Time      time.Time `json:"time,omitzero"`
	// Fix says what to do about a warning or failure.
	Fix string `json:"fix,omitempty"`
}

// Check is one doctor check. Run looks at the environment (gathered once,
// before any check runs) and must not change anything.
//
// The AWS backend's checks (endpoints, credentials and the identity they
// resolve to, the tables and queues existing with the right shape through
// provision's drift check) are Checks too, listed in AWSChecks.
type Check struct {
	Name string
	Run  func(ctx context.Context, env *Env) Result
}

// Env is what the checks look at. GatherEnv fills it for a configuration;
// tests build it by hand.
type Env struct {
	Config config.Config
	Now    time.Time

	// StateFile is the local state file; StateFileMissing says that it did
	// not exist, in which case the backend was not opened (opening would
	// create an empty one).
	StateFile        string
	StateFileMissing bool
	// StateFileErr is what the check of the opened state file's structure
	// found wrong (local.DB.CheckIntegrity).
	StateFileErr error
	// StateFileUnchecked says that the check of the structure did not
	// finish within checkTimeout (a very large file): nothing was found.
	StateFileUnchecked bool

	// WriteLocked says that another process held the local state file's
	// write lock for longer than the doctor asked for it (writeLockWait).
	WriteLocked bool

	// NotWritable is why the local state dir or file could not be opened
	// for writing (local.ErrNotWritable); the backend was then opened for
	// reading only (a backup, a read-only mount), and serve and publish
	// cannot run with it.
	NotWritable error

	// Store and Queue are the opened backend's, nil when OpenErr says why
	// not.
	Store   store.Store
	Queue   store.Queue
	OpenErr error

	// Gateway is what the local gateway recorded in the state file (local
	// backend); zero when no gateway is recorded.
	Gateway GatewayRecord
	// GatewayErr is why the record could not be read.
	GatewayErr error

	// Endpoint is the Management API endpoint in effect ("" when none) and
	// Pusher a client for it (nil when there is none; PusherErr says why).
	Endpoint  string
	Pusher    store.Pusher
	PusherErr error

	// AWS is what the AWS backend's checks look at; nil on the local
	// backend or when the backend did not open.
	AWS *AWSEnv

	// stats is the queue's depth, read once for the queue and dead-letter
	// checks (on SQS a read walks the dead letters).
	stats *statsResult
	// asked is the Management API's answer to a GET of a made-up
	// connection, asked once for the queue, gateway and Management API
	// checks.
	asked *error
}

type statsResult struct {
	st  store.QueueStats
	err error
}

// queueStats reads the queue's depth (once).
func (e *Env) queueStats(ctx context.Context) (store.QueueStats, error) {
	if e.stats == nil {
		st, err := e.Queue.Stats(ctx)
		e.stats = &statsResult{st: st, err: err}
	}
	return e.stats.st, e.stats.err
}

// askManagement asks the Management API (Pusher) for a made-up
// connection, once, and returns the error it answered with: nil only
// when it answered as if the connection existed.
func (e *Env) askManagement(ctx context.Context) error {
	if e.asked == nil {
		_, err := e.Pusher.Get(ctx, randomConnectionID())
		e.asked = &err
	}
	return *e.asked
}

// strangerAtGateway reports whether the local gateway holds the state dir
// (or the lock cannot tell) and something listens at the Management API
// address it recorded, but what answers there is not that gateway
// (backend.NotThisGatewayError): the serve listens elsewhere (another
// interface, another address family), or another program took that
// address. The broker delivers nothing there.
func (e *Env) strangerAtGateway(ctx context.Context) bool {
	g := e.Gateway
	if !e.Local() || !g.Recorded() || g.DialErr != nil || g.Stale || e.Pusher == nil {
		return false
	}
	var foreign *backend.NotThisGatewayError
	return errors.As(e.askManagement(ctx), &foreign)
}

// GatewayRecord is what a running `socks serve` records about itself.
type GatewayRecord struct {
	WebSocket  string `json:"webSocket,omitempty"`
	Management string `json:"management,omitempty"`
	PID        string `json:"pid,omitempty"`
	// DialErr is the error of a TCP connect to the Management endpoint's
	// host (nil: something listens there).
	DialErr error `json:"-"`
	// Stale says that no gateway holds the state dir's gateway lock
	// (backend.GatewayRunning): the record was left by a gateway that was
	// killed, and whatever listens at its address is something else.
	Stale bool `json:"-"`
	// Broker says whether a broker runs for the state dir (serve's own or
	// `socks broker`: backend.Broker); BrokerErr, why that is not known.
	Broker    bool  `json:"broker"`
	BrokerErr error `json:"-"`
	// Holder is the pid of a gateway that holds the state dir's gateway
	// lock with no record (backend.GatewayPID): it is starting, or
	// stopping. 0 when none does, or when there is a record.
	Holder int `json:"-"`
}

// Delivering reports whether a gateway answers and a broker runs: what
// it takes for queued messages to be delivered.
func (g GatewayRecord) Delivering() bool {
	return g.Recorded() && g.DialErr == nil && !g.Stale && g.Broker
}

// Recorded reports whether a gateway recorded itself.
func (g GatewayRecord) Recorded() bool { return g.Management != "" }

// Local reports whether the environment is the local backend.
func (e *Env) Local() bool { return e.Config.Backend == config.BackendLocal }

// Checks returns the doctor's checks for a backend, in the order they are
// shown.
func Checks(backendName string) []Check {
	checks := []Check{{Name: "backend", Run: checkBackend}}
	if backendName == config.BackendLocal {
		checks = append(checks, Check{Name: "state file", Run: checkStateFile})
	} else {
		checks = append(checks, AWSChecks...)
	}
	queue, dead, conns := checkQueue, checkDeadLetters, checkConnections
	if backendName != config.BackendLocal {
		queue, dead, conns = unlessQueuesMissing(queue), unlessQueuesMissing(dead), unlessTableUnusable(conns)
	}
	checks = append(checks,
		Check{Name: "queue", Run: queue},
		Check{Name: "dead letters", Run: dead},
		Check{Name: "connections", Run: conns},
	)
	if backendName == config.BackendLocal {
		checks = append(checks, Check{Name: "local gateway", Run: checkGateway})
		return append(checks, Check{Name: "management API", Run: checkManagementAPI})
	}
	checks = append(checks, Check{Name: "migration", Run: unlessTableUnusable(checkMigration)})
	return append(checks, Check{Name: "management API", Run: checkAWSManagementAPI})
}

// Report is the outcome of every check.
type Report struct {
	Backend string   `json:"backend"`
	OK      bool     `json:"ok"`
	Failed  int      `json:"failed"`
	Warned  int      `json:"warned"`
	Checks  []Result `json:"checks"`
}

// checkTimeout bounds one check.
const checkTimeout = 10 * time.Second

// RunChecks runs checks in order against env.
func RunChecks(ctx context.Context, env *Env, checks []Check) Report {
	rep := Report{Backend: env.Config.Backend, Checks: make([]Result, 0, len(checks))}
	for _, c := range checks {
		cctx, cancel := context.WithTimeout(ctx, checkTimeout)
		r := c.Run(cctx, env)
		cancel()
		r.Name = c.Name
		switch r.Status {
		case StatusFail:
			rep.Failed++
		case StatusWarn:
			rep.Warned++
		case StatusOK, StatusSkip:
		default:
			r.Status = StatusFail
			rep.Failed++
		}
		rep.Checks = append(rep.Checks, r)
	}
	rep.OK = rep.Failed == 0
	return rep
}

func ok(detail string) Result { return Result{Status: StatusOK, Detail: detail} }

func warn(detail, fix string) Result { return Result{Status: StatusWarn, Detail: detail, Fix: fix} }

func fail(detail, fix string) Result { return Result{Status: StatusFail, Detail: detail, Fix: fix} }

func skip(detail string) Result { return Result{Status: StatusSkip, Detail: detail} }

const stateDirFix = "pass --state-dir or set " + config.EnvStateDir + " to the directory `socks serve` uses"

// keepStateFile says why a state file that cannot be written now is not
// to be moved away.
const keepStateFile = "keep the file: it holds the queue, the dead letters and the chatter IDs"

const notWritableFix = "make the state dir and its files writable by the user running socks (keep them: they hold the queue, the dead letters and the chatter IDs), or " + stateDirFix

func checkBackend(ctx context.Context, env *Env) Result {
	r := checkBackendOnly(ctx, env)
	if m := env.Config.Mapping; m != nil {
		// A bad mapping never gets here: the configuration is refused.
		r.Detail += "; event mapping " + m.String()
	}
	for _, n := range env.Config.Notes {
		r.Detail += "; " + n
	}
	return r
}

func checkBackendOnly(_ context.Context, env *Env) Result {
	cfg := env.Config
	switch cfg.Backend {
	case config.BackendLocal:
		return ok(fmt.Sprintf("local (%s), state dir %s", cfg.Source("backend"), cfg.StateDir))
	case config.BackendAWS:
		detail := fmt.Sprintf("aws (%s), stack %s, region %s", cfg.Source("backend"), cfg.AWS.Stack, orDash(cfg.AWS.Region))
		if src := cfg.Source("region"); src != "" {
			detail += " (" + src + ")"
		}
		if cfg.AWS.EndpointURL != "" {
			detail += ", endpoint URL " + cfg.AWS.EndpointURL
		}
		if env.OpenErr != nil {
			return fail(detail+": "+env.OpenErr.Error(), "check the AWS settings (`socks config`), or use the local backend: aws is selected by "+cfg.Origin("backend"))
		}
		if cfg.AWS.Region == "" {
			return fail(detail, "set the region with "+config.EnvRegion+" or AWS_REGION")
		}
		return ok(detail)
	}
	return fail(fmt.Sprintf("unknown backend %q", cfg.Backend), "use --backend local or --backend aws")
}

func checkStateFile(ctx context.Context, env *Env) Result {
	switch {
	case env.StateFileMissing:
		return fail("no state file at "+env.StateFile,
			"start the local stack with `socks serve` (it creates the file), or "+stateDirFix)
	case errors.Is(env.OpenErr, local.ErrNewerSchema):
		return fail(env.OpenErr.Error(), "upgrade socks: the file holds the state of a newer version, which moving it away would lose")
	case errors.Is(env.OpenErr, local.ErrInUseByOlder):
		return fail(env.OpenErr.Error(), "stop the process it names (it runs an older socks), then run the doctor again: this socks brings the file up to date first")
	case errors.Is(env.OpenErr, local.ErrNotWritable):
		return fail(problemOf(env.OpenErr), notWritableFix)
	case errors.Is(env.OpenErr, local.ErrLocked):
		return fail(env.OpenErr.Error(), "end the process that holds it locked (a stuck socks command, an sqlite3 shell with a transaction open), then run the doctor again; "+keepStateFile)
	case errors.Is(env.OpenErr, context.DeadlineExceeded):
		return fail(fmt.Sprintf("the state file %s did not open within %s: %v", env.StateFile, checkTimeout, env.OpenErr),
			"end the process that may hold it locked (a stuck socks command, an sqlite3 shell with a transaction open), then run the doctor again; "+keepStateFile)
	case errors.Is(env.OpenErr, store.ErrUnavailable):
		return fail(env.OpenErr.Error(), "free some space on its disk (or mend the disk), then run the doctor again; "+keepStateFile)
	case env.OpenErr != nil:
		return fail(env.OpenErr.Error(), "move the file away (socks creates a new one), or "+stateDirFix)
	case errors.Is(env.StateFileErr, local.ErrDamaged):
		return fail(env.StateFileErr.Error(), "stop the socks processes that use it and move the file away (socks creates a new one; what it held is lost), or save what SQLite can read with `sqlite3 "+env.StateFile+" .recover`; or "+stateDirFix)
	case env.StateFileErr != nil:
		return fail(env.StateFileErr.Error(), "check that the file and its directory are readable, then run the doctor again")
	}
	// A read of the connections table shows that the schema is readable.
	_, err := env.Store.GetConnection(ctx, "doctor-"+randomConnectionID())
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return fail(fmt.Sprintf("%s is not readable: %v", env.StateFile, err), "move the file away (socks creates a new one), or "+stateDirFix)
	}
	if env.StateFileUnchecked {
		return warn(fmt.Sprintf("%s, schema readable, but its structure was not checked within %s (a large file)", env.StateFile, checkTimeout),
			"run the full check by hand: `sqlite3 "+env.StateFile+" 'PRAGMA quick_check'` (it answers ok for a sound file)")
	}
	if env.WriteLocked {
		return warn(fmt.Sprintf("%s, schema readable, but another process has held its write lock for over %s: every write (serve's connects, publish, prune-stale) waits for it, and fails after about a minute", env.StateFile, writeLockWait),
			"end the process that holds it (a stuck socks command, an sqlite3 shell with a transaction open); "+keepStateFile)
	}
	if env.NotWritable != nil {
		return warn(env.StateFile+", schema readable, read only: "+problemOf(env.NotWritable),
			"`socks serve`, `socks publish` and the other commands that change the state cannot run with it: "+notWritableFix)
	}
	return ok(env.StateFile + ", schema readable")
}

// problemOf is what a local.ErrNotWritable error says is wrong, without
// the fix it ends with: the check's Fix column says that.
func problemOf(err error) string {
	var nw *local.NotWritableError
	if errors.As(err, &nw) {
		return nw.Problem()
	}
	return err.Error()
}

// needBackend returns a skip result when the backend did not open.
func needBackend(env *Env) (Result, bool) {
	if env.Store == nil || env.Queue == nil {
		return skip("skipped: the backend did not open"), false
	}
	return Result{}, true
}

func checkQueue(ctx context.Context, env *Env) Result {
	if r, ok := needBackend(env); !ok {
		return r
	}
	st, err := env.queueStats(ctx)
	if err != nil {
		return cannotRead("the queue", err, env)
	}
	detail := fmt.Sprintf("%d waiting, %d in flight", st.Visible, st.InFlight)
	if st.Visible > 0 && env.strangerAtGateway(ctx) {
		return warn(detail, "messages wait: what answers at the gateway's recorded address is not this state dir's `socks serve` (see the local gateway check); start `socks serve` again (with another --addr if that address stays taken)")
	}
	if st.Visible > 0 && env.Local() && !env.Gateway.Delivering() {
		if env.Gateway.Recorded() && env.Gateway.DialErr == nil && !env.Gateway.Stale {
			return warn(detail, "messages wait for a broker: "+brokerFix)
		}
		return warn(detail, "messages wait for the broker: start it with `socks serve`")
	}
	return ok(detail)
}

// cannotRead fails a check whose read of the backend failed. A read that
// ran out of time says so: the fix for a missing table or queue would
// mislead.
func cannotRead(what string, err error, env *Env) Result {
	if errors.Is(err, context.DeadlineExceeded) {
		return fail(fmt.Sprintf("reading %s did not finish within %s", what, checkTimeout),
			"check that the backend answers from here (network, region, endpoint URL), then run the doctor again")
	}
	if !env.Local() && notAnsweredAsAWS(err) {
		return fail("cannot read "+what+": "+err.Error(),
			"check that the endpoint is DynamoDB's or SQS's and answers from here (--endpoint-url, --region, the network), then run the doctor again")
	}
	return fail("cannot read "+what+": "+err.Error(), backendFix(env))
}

// notAnsweredAsAWS reports whether err says that the endpoint was not
// reached, or answered with something that is not AWS's reply (an HTML
// page, garbage): provisioning mends neither.
func notAnsweredAsAWS(err error) bool {
	var (
		op    *net.OpError
		dns   *net.DNSError
		deser *smithy.DeserializationError
	)
	return errors.As(err, &op) || errors.As(err, &dns) || errors.As(err, &deser)
}

func backendFix(env *Env) string {
	if env.Local() {
		return "move the state file away (socks creates a new one), or " + stateDirFix
	}
	return "create the tables and queues with `socks provision`, or check " + env.Config.Origins("stack", "region") + ", and that the credentials may use them"
}

func checkDeadLetters(ctx context.Context, env *Env) Result {
	if r, ok := needBackend(env); !ok {
		return r
	}
	st, err := env.queueStats(ctx)
	if err != nil {
		return cannotRead("the dead letters", err, env)
	}
	if st.Dead == 0 {
		return ok("none")
	}
	r := warn(fmt.Sprintf("%d dead letter%s", st.Dead, plural(st.Dead)),
		"see why with `socks dlq list`; once the cause is fixed, `socks dlq redrive --all`, or drop them with `socks dlq purge --all`")
	if !st.OldestDeadAt.IsZero() {
		r.TimeLabel, r.Time = "oldest failed", st.OldestDeadAt
	}
	return r
}

// ConnectionsReadLimit is how many connection records the connections
// check reads at most on AWS (as MigrationReadLimit bounds the migration
// check), and countsAll what counts them all.
const (
	ConnectionsReadLimit = 2000
	countsAll            = "`socks subs stats` counts the open ones, `socks prune-stale --dry-run` the stale"
)

func checkConnections(ctx context.Context, env *Env) Result {
	if r, ok := needBackend(env); !ok {
		return r
	}
	var open, stale int
	var oldest *pubsub.Connection
	count := func(page []pubsub.Connection) error {
		for _, c := range page {
			if _, dead := Classify(c, env.Now, pubsub.MaxConnectionDuration); dead {
				stale++
				continue
			}
			open++
			if oldest == nil || c.ConnectedAt.Before(oldest.ConnectedAt) {
				oldest = &c
			}
		}
		return nil
	}
	// On AWS a bounded part, as the migration check reads: the whole
	// by-geek index of a big stack is a long, costly Scan.
	part := ""
	if env.AWS != nil && env.AWS.Connections != nil {
		read, err := env.AWS.Connections(ctx, count)
		why, stopped := readStoppedEarly(err, read.Read)
		switch {
		case stopped:
			part = fmt.Sprintf(" in the first %d records (stopped early, %s; %s)", read.Read, why, countsAll)
		case errors.Is(err, context.DeadlineExceeded):
			return cannotRead("the connections", err, env)
		case throttled(err):
			return fail("cannot read the connections: "+err.Error(), throttledFix(env))
		case err != nil:
			return cannotRead("the connections", err, env)
		case !read.Whole:
			part = fmt.Sprintf(" in the first %d records (stopped early, at doctor's limit; %s)", read.Read, countsAll)
		}
	} else if err := env.Store.ListConnections(ctx, store.ConnectionFilter{IncludeExpired: true}, env.Now, count); err != nil {
		return cannotRead("the connections", err, env)
	}
	r := ok(fmt.Sprintf("%d open%s", open, part))
	if stale > 0 {
		r = warn(fmt.Sprintf("%d open, %d stale record%s (expired or connected over %s ago)%s", open, stale, plural(stale), fmtHours(pubsub.MaxConnectionDuration), part),
			"delete them with `socks prune-stale` (run it from cron)")
	}
	if oldest != nil {
		r.TimeLabel, r.Time = "oldest connected", oldest.ConnectedAt
		if part != "" {
			// The oldest of a part: others may be older.
			r.TimeLabel = "oldest connected of those read"
		}
	}
	return r
}

func checkGateway(ctx context.Context, env *Env) Result {
	g := env.Gateway
	switch {
	case errors.Is(env.OpenErr, local.ErrInUseByOlder):
		return fail("cannot tell: an older socks holds the state file (see the state file check)", "stop the process the state file check names, then run the doctor again")
	case env.StateFileMissing || env.OpenErr != nil:
		return fail("no local gateway: the state file did not open", "start it with `socks serve`")
	case env.GatewayErr != nil:
		return fail("cannot read the gateway record: "+env.GatewayErr.Error(), "start the gateway with `socks serve`")
	case !g.Recorded() && g.Holder > 0:
		return fail(fmt.Sprintf("a gateway (pid %d) holds this state dir but has not recorded its address: it is starting or stopping", g.Holder),
			"run the doctor again in a moment; if it stays so, that process is stuck: stop it, then start `socks serve`")
	case !g.Recorded():
		return fail("no local gateway is running for this state dir",
			"start it with `socks serve` (in another terminal, or as a service); or "+stateDirFix)
	case g.DialErr != nil:
		return fail(fmt.Sprintf("the gateway recorded at %s (pid %s) does not answer: %v", g.WebSocket, orDash(g.PID), g.DialErr),
			"it stopped without cleaning up: start it again with `socks serve`")
	case g.Stale:
		return fail(fmt.Sprintf("the gateway recorded at %s (pid %s) is not running (it holds no lock on the state dir); something else listens at its address", g.WebSocket, orDash(g.PID)),
			"it stopped without cleaning up: start it again with `socks serve` (with another --addr if that address stays taken)")
	}
	at := fmt.Sprintf("%s (pid %s)", g.WebSocket, orDash(g.PID))
	switch {
	case g.BrokerErr != nil:
		return fail(at+", but cannot tell whether a broker runs: "+g.BrokerErr.Error(), "check that the state dir is writable, or "+stateDirFix)
	case !g.Broker:
		return fail(at+", but no broker is running: published messages wait in the queue", brokerFix)
	case env.strangerAtGateway(ctx):
		// It holds the state dir, but the broker reaches something
		// else at its address (the Management API check fails).
		return warn(at+", broker running, but what answers at "+g.Management+" is not this state dir's `socks serve` (its answer does not carry the run ID the serve recorded): the serve listens elsewhere, or another program took that address, and the broker delivers nothing there", notThisGatewayFix)
	}
	return ok(at + ", broker running")
}

// brokerFix says how to start a broker beside a running gateway.
const brokerFix = "start `socks broker` (with the same --state-dir), or restart `socks serve` without --no-broker"

func checkManagementAPI(ctx context.Context, env *Env) Result {
	r := checkManagementEndpoint(ctx, env)
	if r.Status == StatusOK && env.Local() && env.Gateway.Stale {
		// What answers there is not this state dir's gateway.
		return warn(r.Detail+", but it is not this state dir's gateway, which is not running", "start it with `socks serve`")
	}
	return r
}

func checkManagementEndpoint(ctx context.Context, env *Env) Result {
	if env.Pusher == nil {
		switch {
		case env.Local() && !env.Gateway.Recorded():
			return skip("skipped: no local gateway, so no endpoint to ask")
		case env.PusherErr != nil:
			return fail("no Management API client: "+env.PusherErr.Error(), endpointFix(env))
		case env.Endpoint == "":
			return fail("no Management API endpoint is configured", endpointFix(env))
		}
		return skip("skipped: no Management API client")
	}
	err := env.askManagement(ctx)
	at := env.Endpoint
	if at == "" {
		at = "the Management API"
	}
	if err == nil {
		return fail(fmt.Sprintf("%s answered GET @connections for a made-up connection ID as if it existed", at),
			"the endpoint is not an API Gateway Management API: "+endpointFix(env))
	}
	var (
		pe      *store.PushError
		foreign *backend.NotThisGatewayError
	)
	status := 0
	if errors.As(err, &pe) {
		status = pe.Status
	}
	switch {
	case errors.As(err, &foreign):
		return notThisGateway(at, env)
	case store.PushErrorKindOf(err) == store.KindGone:
		// Only a 410: a 400 refuses the well-formed ID made up here,
		// which API Gateway does not.
		return ok(at + " answers (410 Gone for a made-up connection, as it should)")
	case errors.Is(err, syscall.ECONNREFUSED):
		if env.Local() {
			return fail(fmt.Sprintf("nothing listens at %s (connection refused): the gateway is down", at),
				"start it with `socks serve`")
		}
		return fail(fmt.Sprintf("nothing listens at %s (connection refused)", at), endpointFix(env))
	case status == 403 || store.PushErrorKindOf(err) == store.KindForbidden:
		return fail(fmt.Sprintf("%s refused with 403 Forbidden: the stage is missing from the endpoint, or the credentials are wrong, or they lack permission", at),
			"use the API's URL with its stage (https://API_ID.execute-api.REGION.amazonaws.com/STAGE), credentials for the API's account, and a role allowed execute-api:ManageConnections on it")
	case status == 404:
		return fail(fmt.Sprintf("%s answered 404 Not Found: there is no Management API at that host and path", at),
			"check the host and path: "+endpointFix(env))
	case errors.Is(err, context.DeadlineExceeded):
		return fail(fmt.Sprintf("%s did not answer within %s", at, checkTimeout), "check that the endpoint's host is reachable from here")
	}
	return fail(fmt.Sprintf("GET @connections at %s failed: %v", at, err), endpointFix(env))
}

// notThisGateway is the Management API check's result when what answered
// at the local gateway's recorded address is not that gateway: its answer
// lacked the run ID the gateway recorded (backend.NotThisGatewayError).
// It fails, or warns where the gateway check fails already because the
// gateway lock says that no serve runs (as for any answer there).
func notThisGateway(at string, env *Env) Result {
	detail := fmt.Sprintf("what answers at %s is not this state dir's `socks serve` (its answer does not carry the run ID the serve recorded): another program may have taken its port", at)
	if env.Gateway.Stale {
		return warn(detail+"; this state dir's gateway is not running", notThisGatewayFix)
	}
	return fail(detail, notThisGatewayFix)
}

// notThisGatewayFix is the fix where what answers at the local gateway's
// recorded address is not that gateway.
const notThisGatewayFix = "start `socks serve` again (with another --addr if that address stays taken); until then the broker delivers nothing there, and messages stay queued"

func endpointFix(env *Env) string {
	if env.Local() {
		return "use the management API URL that `socks serve` prints (http://127.0.0.1:PORT, with /STAGE when serve has --stage)"
	}
	return "set " + config.EnvCallback + " to the WebSocket API's https URL with its stage and without /@connections (https://API_ID.execute-api.REGION.amazonaws.com/STAGE)"
}

// randomConnectionID returns an ID shaped like API Gateway's (15
// alphanumerics and "="), which no connection has.
func randomConnectionID() string {
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
	b := make([]byte, 15)
	_, _ = rand.Read(b) // crypto/rand.Read never fails on supported platforms.
	for i := range b {
		b[i] = alphabet[int(b[i])%len(alphabet)]
	}
	return string(b) + "="
}

func plural(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func fmtHours(d time.Duration) string {
	if d%time.Hour == 0 {
		return fmt.Sprintf("%dh", int(d.Hours()))
	}
	return d.String()
}
