// Package serve implements `socks serve`: the local gateway and broker.
package serve

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/spf13/cobra"
	"golang.org/x/sync/errgroup"

	"github.com/socks-dev/socks/backend"
	"github.com/socks-dev/socks/broker"
	"github.com/socks-dev/socks/commands/cmdutil"
	"github.com/socks-dev/socks/config"
	"github.com/socks-dev/socks/faults"
	"github.com/socks-dev/socks/gateway"
	"github.com/socks-dev/socks/internal/loopback"
	"github.com/socks-dev/socks/internal/text"
	"github.com/socks-dev/socks/iostreams"
	"github.com/socks-dev/socks/pubsub"
	"github.com/socks-dev/socks/routes"
	"github.com/socks-dev/socks/store"
	"github.com/socks-dev/socks/web"
)

// DefaultMaxConnections is how many connections `socks serve` serves at
// most unless told.
const DefaultMaxConnections = 10000

// DefaultAddr is where `socks serve` listens by default.
const DefaultAddr = "127.0.0.1:8765"

// shutdownGrace is how long Ctrl-C waits for clients to answer their close
// frames and for Management API calls to end before dropping them.
const shutdownGrace = 5 * time.Second

// reconnectGrace bounds how long serve, starting after a gateway that was
// killed, or stopped within restartWindow, with clients connected, waits for them to reconnect before its
// broker delivers: `socks listen` and socks.js retry after 0.5 s, 1 s,
// 2 s, 4 s, ..., so those dropped a few seconds before are back within it.
const reconnectGrace = 10 * time.Second

// restartWindow is how recent a clean stop must be for the next serve to
// wait for the clients it closed: by then `socks listen` and socks.js,
// backing off up to their 10 attempts, have reconnected or given up.
const restartWindow = 10 * time.Minute

// awaitReconnects waits until the gateway holds n connections, grace
// passes or ctx ends, and returns how many it holds.
func awaitReconnects(ctx context.Context, gw *gateway.Gateway, n int, grace time.Duration) int {
	deadline := time.NewTimer(grace)
	defer deadline.Stop()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for gw.Count() < n {
		select {
		case <-ctx.Done():
			return gw.Count()
		case <-deadline.C:
			return gw.Count()
		case <-tick.C:
		}
	}
	return gw.Count()
}

// Options are the inputs of `socks serve`.
type Options struct {
	IO      *iostreams.IOStreams
	Backend func(context.Context) (*backend.Backend, error)
	Now     func() time.Time
	// Stopping records what serve finishes after Ctrl-C, for Main to say.
	Stopping *cmdutil.Stopping

	Addr        string
	Stage       string
	IdleTimeout time.Duration
	MaxDuration time.Duration
	NoBroker    bool
	Concurrency int
	// Faults is the --faults spec (package faults); empty for none.
	Faults string
	// Pprof, when set, is a loopback address to serve net/http/pprof on.
	Pprof string
	// Limits (docs/protocol.md).
	MaxTopics             int
	MaxConnectionsPerGeek int
	MaxConnections        int
	MaxQueuedBytes        int
	MaxFramesPerSecond    int
	AllowOrigins          []string
	// RequireSignature makes @connections calls need the key pair even
	// on loopback; off loopback they always do.
	RequireSignature bool
	// KeysFile holds the key pair (default: the state dir's).
	KeysFile string
	Verbose  bool
	Quiet    bool
	// JSON prints the endpoints as one JSON object instead of the
	// WebSocket URL.
	JSON bool

	// Ready, when set, is called with the endpoints once serving (tests,
	// demo).
	Ready func(websocketURL, managementURL string)

	// shutdownGrace bounds the wait for clients and calls to end at
	// Ctrl-C (default shutdownGrace).
	shutdownGrace time.Duration
	// awaitingBroker, when set, is called when Ctrl-C's shutdown begins
	// waiting for the broker to finish the messages in hand (tests).
	awaitingBroker func()
	// sweepTick, when set, replaces the hourly ticker of the sweep of
	// the state file, and swept is called after each pass (tests).
	sweepTick <-chan time.Time
	swept     func(sweep)
}

// sweepEvery is how often serve removes from a local state file what
// has had its time: chatter IDs and connection records expired a day
// ago, reports older than a day, dead letters past their retention.
const sweepEvery = time.Hour

// expiredChatterKept is how long an expired chatter ID stays in a local
// state file under serve: a day, as a delivery report, so that `chatter
// list` still shows that day why a $connect was refused.
const expiredChatterKept = 24 * time.Hour

// expiredConnectionKept is how long the expired record of a connection
// whose $disconnect never came or failed stays in a local state file under
// serve: a day, as an expired chatter ID, so that `subs list --all` still
// shows it that day.
const expiredConnectionKept = 24 * time.Hour

// deadLetterDays is store.DeadLetterRetention in days, for the log (a
// time.Duration would print as "14ns").
const deadLetterDays = int(store.DeadLetterRetention / (24 * time.Hour))

// sweep is what one pass of the sweep removed.
type sweep struct {
	chatterIDs, connections, reports, deadLetters int
	err                                           error
}

// sweepState deletes from the local state file, at start and then every
// sweepEvery until ctx ends, what nothing else removes there (on AWS,
// DynamoDB's TTL and SQS's retention do): the chatter IDs expired a day
// or more before now (every visit of the live page and every renewal of
// `socks listen` issues one, and without prune-stale in a cron job they
// piled up), the connection records expired a day or more before now
// (their $disconnect never came or failed), the delivery reports older
// than a day (which a report write
// deletes only a few of, on the broker's path), and the dead letters that
// failed store.DeadLetterRetention (14 days) or more before now, as SQS
// deletes them. A failed pass is logged and the next one tries again.
func (opts *Options) sweepState(ctx context.Context, s store.Store, q store.Queue, logger *slog.Logger) {
	tick := opts.sweepTick
	if tick == nil {
		t := time.NewTicker(sweepEvery)
		defer t.Stop()
		tick = t.C
	}
	for {
		var p sweep
		now := opts.now()
		var err error
		p.chatterIDs, err = s.DeleteExpiredChatterIDs(ctx, now.Add(-expiredChatterKept))
		switch {
		case err != nil && ctx.Err() == nil:
			logger.Warn("removing chatter IDs expired a day ago", "err", err)
		case p.chatterIDs > 0:
			logger.Info("removed chatter IDs expired a day ago", "count", p.chatterIDs)
		}
		p.err = err
		if d, ok := s.(store.ExpiredConnectionDeleter); ok {
			p.connections, err = d.DeleteExpiredConnections(ctx, now.Add(-expiredConnectionKept))
			switch {
			case err != nil && ctx.Err() == nil:
				logger.Warn("removing connection records expired a day ago", "err", err)
			case p.connections > 0:
				logger.Info("removed connection records expired a day ago (their $disconnect never came or failed)", "count", p.connections)
			}
			p.err = errors.Join(p.err, err)
		}
		if d, ok := s.(store.ExpiredReportDeleter); ok {
			p.reports, err = d.DeleteExpiredReports(ctx, now)
			switch {
			case err != nil && ctx.Err() == nil:
				logger.Warn("removing delivery reports older than a day", "err", err)
			case p.reports > 0:
				logger.Info("removed delivery reports older than a day", "count", p.reports)
			}
			p.err = errors.Join(p.err, err)
		}
		if d, ok := q.(store.ExpiredDeadLetterDeleter); ok {
			p.deadLetters, err = d.DeleteExpiredDeadLetters(ctx, now)
			switch {
			case err != nil && ctx.Err() == nil:
				logger.Warn("removing dead letters past their retention", "days", deadLetterDays, "err", err)
			case p.deadLetters > 0:
				logger.Info("removed dead letters past their retention", "days", deadLetterDays, "count", p.deadLetters)
			}
			p.err = errors.Join(p.err, err)
		}
		if opts.swept != nil {
			opts.swept(p)
		}
		select {
		case <-ctx.Done():
			return
		case <-tick:
		}
	}
}

// NewCmdServe returns `socks serve`.
func NewCmdServe(f *cmdutil.Factory, runF func(context.Context, *Options) error) *cobra.Command {
	opts := &Options{IO: f.IOStreams, Backend: f.Backend, Now: f.Now, Stopping: f.Stopping}
	cmd := &cobra.Command{
		Use:   "serve [--addr 127.0.0.1:PORT]",
		Short: "Run the local WebSocket gateway and broker",
		Long: `Serve runs a WebSocket gateway that behaves like API Gateway, and the broker
that delivers published messages, on the local state file.

Clients connect to ws://ADDR/ (and ws://ADDR/STAGE with --stage) with
?geek=NAME&id=CHATTER_ID&topic=T, or with ?geek=NAME&topic=T and the
subprotocols "socks" and the chatter ID. The Management API answers at
http://ADDR/@connections/{id} (POST, GET, DELETE), as on AWS.

Over plain HTTP it also serves the browser client at http://ADDR/socks.js
(and socks.d.ts), with Access-Control-Allow-Origin: *, and a live page at
http://ADDR/ that shows what is published to a geek. On the local backend,
listening on loopback (without --require-signature), that page may get a
short-lived chatter ID from the gateway; requests from any other origin are
refused.

API Gateway's limits apply: 32 KB frames, 128 KB messages, 10 minutes idle,
2 hours per connection (shorten them with the flags to test), URLs of 4,096
characters, 10,240 bytes of request line and headers. The WebSocket
URL is printed on standard output once it is listening (with --json, one
JSON line with every endpoint: WebSocket, Management API, live page,
profiles, whether the broker runs, the state dir); logs go to standard
error. Ctrl-C closes every connection with a close frame and exits 0;
Ctrl-C again stops it at once (exit 130), with no close frames.

--faults makes the gateway misbehave the way AWS sometimes does, to test
producers, brokers and browsers against it: posts answered 500 or 429,
connections reset before or after the message was delivered, slow answers,
lost $disconnect events, a limited connect rate. Each fault is NAME=P with
P the probability (0 to 1): post500, post429, reset, reset-after,
slow=P:DURATION, drop-disconnect; connect-rate=N/s; seed=N repeats the
draws. What was injected is logged at exit. docs/reliability.md says how
socks itself copes with each.

SIGUSR1 logs the runtime figures (goroutines, connections, heap, open
files), to look for leaks. --pprof serves Go's profiles on a loopback
address; a CPU profile, trace or delta profile lasts at most 60 seconds
(a longer ?seconds= is refused, 400).`,
		Example: `  socks serve
  socks serve --addr 127.0.0.1:0 --stage dev
  socks serve --addr 127.0.0.1:0 --json > serve.json &   # then: jq -r .management serve.json
  socks serve --idle-timeout 30s --max-duration 5m -v
  socks serve --faults 'post500=0.1,post429=0.05,reset=0.02,slow=0.02:2s,drop-disconnect=0.1,connect-rate=500/s'
  socks serve --pprof 127.0.0.1:6060   # then: go tool pprof http://127.0.0.1:6060/debug/pprof/profile`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			// What the user typed is checked before Run, where a zero
			// limit (an Options built in code) means the default.
			if err := opts.checkLimits(); err != nil {
				return err
			}
			if runF != nil {
				return runF(cmd.Context(), opts)
			}
			return Run(cmd.Context(), opts)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&opts.Addr, "addr", DefaultAddr, "address to listen on (port 0 picks a free port)")
	fl.StringVar(&opts.Stage, "stage", "", "also accept connections at /STAGE, as API Gateway does")
	fl.DurationVar(&opts.IdleTimeout, "idle-timeout", pubsub.IdleTimeout, "close connections idle this long (at most API Gateway's 10m)")
	fl.DurationVar(&opts.MaxDuration, "max-duration", pubsub.MaxConnectionDuration, "close connections older than this (at most API Gateway's 2h)")
	fl.IntVar(&opts.MaxTopics, "max-topics", pubsub.MaxTopicsPerConnection, "topics one connection may follow (1 to 50)")
	fl.IntVar(&opts.MaxConnectionsPerGeek, "max-connections-per-geek", routes.DefaultMaxConnectionsPerGeek, "live connections one geek may hold; more are refused with 429")
	fl.IntVar(&opts.MaxConnections, "max-connections", DefaultMaxConnections, "open connections this gateway serves; more are refused with 503")
	fl.IntVar(&opts.MaxQueuedBytes, "max-queued-bytes", gateway.DefaultMaxQueuedBytes, "bytes waiting for one client before it is closed as a slow consumer (1008)")
	fl.IntVar(&opts.MaxFramesPerSecond, "max-frames-per-second", gateway.DefaultMaxFramesPerSecond, "messages one client may send per second; a flood gets error frames, then 1008")
	fl.StringSliceVar(&opts.AllowOrigins, "allow-origin", nil, "browser origins allowed to connect (repeatable or comma-separated; default any; the live page served here may always connect)")
	fl.BoolVar(&opts.RequireSignature, "require-signature", false, "require SigV4-signed @connections calls on loopback too (always required on other addresses)")
	fl.StringVar(&opts.KeysFile, "keys-file", "", "AWS shared credentials file (profile "+config.ManagementProfile+") with the key pair to require (default: "+config.ManagementKeysFile+" in the state dir, created when missing)")
	_ = cmd.MarkFlagFilename("keys-file")
	fl.BoolVar(&opts.NoBroker, "no-broker", false, "run the gateway only; do not deliver queued messages")
	fl.IntVar(&opts.Concurrency, "concurrency", broker.DefaultConcurrency, "posts in flight at once per message")
	fl.StringVar(&opts.Faults, "faults", "", "inject faults: "+faults.Syntax)
	fl.BoolVarP(&opts.Verbose, "verbose", "v", false, "log more: every refused handshake (without it, at most 5 a minute), each WebSocket's source IP and close code, slow consumers (connections, deliveries and refused handshakes are logged without it)")
	fl.BoolVarP(&opts.Quiet, "quiet", "q", false, "log only warnings and errors")
	fl.StringVar(&opts.Pprof, "pprof", "", "serve Go profiles (net/http/pprof) on this loopback address, e.g. 127.0.0.1:6060; ?seconds= at most 60")
	fl.BoolVar(&opts.JSON, "json", false, "print the endpoints as one JSON line (websocket, management, page, broker; stateDir on the local backend, pprof with --pprof) instead of the WebSocket URL")
	cmd.MarkFlagsMutuallyExclusive("verbose", "quiet")
	return cmd
}

func (opts *Options) now() time.Time {
	if opts.Now != nil {
		return opts.Now()
	}
	return time.Now()
}

// Run serves until ctx is done.
func Run(ctx context.Context, opts *Options) error {
	if opts.IdleTimeout <= 0 || opts.MaxDuration <= 0 {
		return cmdutil.FlagErrorf("--idle-timeout and --max-duration must be above 0")
	}
	if opts.Concurrency < 1 {
		return cmdutil.FlagErrorf("--concurrency must be at least 1")
	}
	var pprofLn net.Listener
	if opts.Pprof != "" {
		ln, err := listenPprof(opts.Pprof)
		if err != nil {
			return err
		}
		pprofLn = ln
		defer pprofLn.Close()
	}
	opts.defaultLimits()
	if err := opts.checkLimits(); err != nil {
		return err
	}
	spec, err := faults.Parse(opts.Faults)
	if err != nil {
		return cmdutil.FlagErrorf("--faults: %v", err)
	}
	var inj *faults.Injector
	if !spec.IsZero() {
		inj = faults.New(spec)
	}
	b, err := opts.Backend(ctx)
	if err != nil {
		return err
	}
	// forgot counts the connection records a killed gateway left, closed
	// the clients a gateway stopped cleanly a moment ago closed: both are
	// waited for before the broker delivers.
	forgot, closed := 0, 0
	// On the AWS backend serve runs a local gateway over the AWS store and
	// queue (for testing against emulators); only the local backend records
	// the gateway for other processes to find.
	locked := false
	if b.DB != nil {
		// The lock makes two serves started at once take turns. Held, it
		// says that a record left behind is stale (its gateway was
		// killed), even when something else now listens at its address;
		// without file locks the record is the only check.
		var release func()
		release, locked, err = b.HoldGateway()
		if errors.Is(err, backend.ErrGatewayRunning) {
			return runningError(ctx, b)
		}
		if err != nil {
			return err
		}
		defer release()
		if !locked {
			if err := checkNotRunning(ctx, b); err != nil {
				return err
			}
		} else if err := forgetKilled(ctx, b); err != nil {
			return err
		}
	}
	// "localhost." is localhost (as a Host header naming it is), but
	// Go's resolver does not find it in the hosts file.
	ln, err := net.Listen("tcp", loopback.Addr(opts.Addr))
	if err != nil {
		if errors.Is(err, syscall.EADDRINUSE) {
			return fmt.Errorf("address %s is already in use: stop what uses it or pick another with --addr 127.0.0.1:PORT (port 0 picks a free one)", opts.Addr)
		}
		return fmt.Errorf("cannot listen on %s: %w", opts.Addr, err)
	}
	if locked {
		// Listening, so starting for good: a serve that cannot listen
		// leaves what follows to the next one.
		//
		// The one gateway of the state dir: the connection records in
		// it are those of a gateway that was killed before its
		// $disconnects, counting against their geeks' caps.
		if forgot, err = b.DB.Store().DeleteAllConnections(ctx); err != nil {
			_ = ln.Close()
			return err
		}
		// A gateway stopped cleanly a moment ago ran every $disconnect,
		// so its clients are not among the records: it left their count.
		if closed, err = takeClosed(ctx, b, opts.now()); err != nil {
			_ = ln.Close()
			return err
		}
	}
	logger := cmdutil.NewLogger(opts.IO.ErrOut, opts.Verbose, opts.Quiet)
	// On the AWS backend the records are written and judged by AWS's
	// clock, as the Lambda's are (store.Clock), not this machine's, which
	// may be set off: asked again every store.ClockSync.
	if _, ok := b.Store.(store.Clock); ok {
		now, stopClock := store.FollowEvery(ctx, b.Store, opts.now, store.ClockSync, func(err error) {
			logger.Debug("reading the time by the store's clock", "err", err)
		})
		defer stopClock()
		o := *opts
		o.Now = now
		opts = &o
	}
	// holding counts the batches the broker has in hand (broker.Holding):
	// Ctrl-C's note, and the shutdown's log, say it finishes them only
	// when there are some.
	var holding atomic.Int32
	defer opts.Stopping.AddFunc(func() cmdutil.Work { return stoppingWork(holding.Load() > 0, b.DB != nil) })()
	if forgot > 0 {
		logger.Warn("deleted the connection records of a gateway that stopped without closing them (killed?)", "connections", forgot)
	}

	site := web.SiteOptions{}
	if pageMayIssue(ln.Addr(), b.DB != nil, opts.RequireSignature) {
		site.Issue = func(ctx context.Context, geek string, ttl time.Duration) (string, time.Time, error) {
			now := opts.now()
			id, c, err := store.IssueChatterID(ctx, b.Store, geek, ttl, now)
			if errors.Is(err, store.ErrLimit) {
				err = &web.LimitError{Err: err, RetryAfter: untilOneExpires(ctx, b.Store, geek, now)}
			}
			return id, c.ExpiresAt, err
		}
	}

	// Off loopback, anyone who reaches the port could push to any client:
	// the Management API then requires the key pair.
	var keys *aws.Credentials
	exposed := !isLoopback(ln.Addr())
	if exposed || opts.RequireSignature {
		path := opts.KeysFile
		if path == "" {
			path = b.Config.ManagementKeysPath()
		}
		creds, err := backend.EnsureManagementKeys(path)
		if err != nil {
			_ = ln.Close()
			return err
		}
		keys = &creds
		if exposed {
			fmt.Fprintf(opts.IO.ErrOut, "warning: %s is reachable beyond this machine; @connections calls must be signed (SigV4) with the key pair in %s (see `socks config`)\n", addrAsGiven(opts.Addr, ln.Addr()), path)
		}
	}

	origins := make([]string, 0, len(opts.AllowOrigins))
	for _, o := range opts.AllowOrigins {
		o, _ = browserOrigin(o) // checked above
		origins = append(origins, o)
	}

	handler := &routes.Handler{
		Store: b.Store, MaxDuration: opts.MaxDuration, Now: opts.Now, Logger: logger.With("component", "routes"),
		MaxTopics: opts.MaxTopics, MaxConnectionsPerGeek: opts.MaxConnectionsPerGeek,
	}
	gw, err := gateway.New(gateway.Options{
		Handler:     handler,
		Stage:       opts.Stage,
		Routes:      routes.ActionRoutes,
		IdleTimeout: opts.IdleTimeout,
		MaxDuration: opts.MaxDuration,
		Logger:      logger.With("component", "gateway"),
		Now:         opts.Now,
		Faults:      inj,
		Site:        web.Site(site),

		MaxConnections:     opts.MaxConnections,
		MaxQueuedBytes:     opts.MaxQueuedBytes,
		MaxFramesPerSecond: opts.MaxFramesPerSecond,
		AllowOrigins:       origins,
		Credentials:        gatewayCredentials(keys),
	})
	if err != nil {
		_ = ln.Close()
		return err
	}
	addr := ReachableAddr(ln.Addr())
	wsURL := "ws://" + addr + "/"
	if opts.Stage != "" {
		wsURL += opts.Stage
	}
	mgmtURL := gw.ManagementEndpoint(addr)
	if b.DB != nil {
		if !opts.NoBroker {
			// Known before the gateway is recorded and its URL announced,
			// so that a publish --wait that follows finds the broker; and
			// let go after the record is gone, so that one during the
			// shutdown is told that no gateway runs, not that a gateway
			// runs without a broker. Before it, what brokers killed
			// with messages in hand left hidden is given back.
			if err := cmdutil.GiveBackOrphans(ctx, b, logger); err != nil {
				_ = ln.Close()
				return err
			}
			release, err := b.HoldBroker()
			if err != nil {
				_ = ln.Close()
				return err
			}
			defer release()
		}
		if err := record(ctx, b, wsURL, mgmtURL, gw.ID()); err != nil {
			_ = ln.Close()
			return err
		}
		defer forget(b, mgmtURL)
	}

	ends := Endpoints{WebSocket: wsURL, Management: mgmtURL, Page: "http://" + addr + "/", Broker: !opts.NoBroker}
	if b.DB != nil {
		ends.StateDir = b.Config.StateDir
	}
	if pprofLn != nil {
		ends.Pprof = fmt.Sprintf("http://%s/debug/pprof/", pprofLn.Addr())
		fmt.Fprintf(opts.IO.ErrOut, "profiles on %s\n", ends.Pprof)
	}
	if err := announce(opts.IO, ends, opts.JSON, issueHint(b.Config)); err != nil {
		return err
	}
	if inj != nil {
		logger.Warn("injecting faults", "faults", spec.String())
		defer func() { logger.Warn("faults injected", "counts", inj.Summary()) }()
	}
	if opts.Ready != nil {
		opts.Ready(wsURL, mgmtURL)
	}

	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return gw.Serve(ln) })
	// A state file deleted or replaced under serve: stop rather than
	// serve a file no other process sees.
	g.Go(func() error { return b.WatchStateFile(gctx) })
	if pprofLn != nil {
		srv := pprofServer(pprofBodyWait, pprofIdle, pprofWrite)
		g.Go(func() error {
			if err := srv.Serve(pprofLn); !errors.Is(err, http.ErrServerClosed) {
				return fmt.Errorf("serving profiles: %w", err)
			}
			return nil
		})
		g.Go(func() error {
			<-gctx.Done()
			return srv.Close()
		})
	}
	if b.DB != nil {
		// On AWS the tables' TTL and the queues' retention remove them.
		g.Go(func() error { opts.sweepState(gctx, b.Store, b.Queue, logger); return nil })
	}
	stats, stopStats := statsSignals()
	defer stopStats()
	go logStats(gctx, logger, gw, stats)
	brokerDone := make(chan struct{}) // closed once the broker has returned
	if !opts.NoBroker {
		// In process: no HTTP hop, one prepared frame per body; the
		// Management API stays for other processes and AWS. The faults
		// act on this seam as they do on the Management API, so the
		// broker's posts meet them once.
		var pusher store.Pusher = gw.Pusher()
		if inj != nil {
			pusher = inj.Pusher(pusher)
		}
		br := &broker.Broker{
			Store:       b.Store,
			Queue:       b.Queue,
			Pusher:      pusher,
			Concurrency: opts.Concurrency,
			Wait:        time.Second,
			Now:         opts.Now,
			Logger:      logger.With("component", "broker"),
			Mapping:     b.Config.Mapping,
			Holding: func() func() {
				holding.Add(1)
				return func() { holding.Add(-1) }
			},
		}
		g.Go(func() error {
			defer close(brokerDone)
			if awaited := forgot + closed; awaited > 0 {
				// Recovering from a gateway killed, or stopped a moment
				// ago, with clients connected: the messages waiting now (published while
				// it was down, or given back from its broker) would reach
				// only the clients back already.
				logger.Info("waiting for the clients of the gateway that stopped to reconnect before delivering", "clients", awaited, "at_most", reconnectGrace)
				back := awaitReconnects(gctx, gw, awaited, reconnectGrace)
				logger.Info("delivering", "reconnected", back, "clients", awaited)
			}
			return br.Run(gctx)
		})
	} else {
		close(brokerDone)
	}
	g.Go(func() error {
		<-gctx.Done()
		// A client connecting now would be closed in a moment: refuse it
		// saying why, as the broker finishes what it has in hand.
		gw.StopAccepting()
		grace := opts.shutdownGrace
		if grace <= 0 {
			grace = shutdownGrace
		}
		if b.DB != nil {
			// Not found from now on: a publish --wait is told at once
			// that no gateway runs, rather than queueing for a broker
			// that receives nothing more (the lock, held till the end,
			// still keeps another serve out).
			forget(b, mgmtURL)
		}
		// The broker finishes the messages in hand first, while their
		// clients are still connected: closed under its fan-out, they
		// were found gone and the message deleted. It receives no more;
		// what waits in the queue is for the next broker.
		if !opts.NoBroker {
			if holding.Load() > 0 {
				logger.Info("shutting down: finishing the messages in hand")
			}
			if opts.awaitingBroker != nil {
				opts.awaitingBroker()
			}
			t := time.NewTimer(grace)
			select {
			case <-brokerDone:
			case <-t.C:
				// An idle broker may not have returned either (a receive
				// that waits for a state file another process holds
				// locked): it had no messages in hand to finish.
				if holding.Load() > 0 {
					logger.Warn("shutting down: the broker did not finish the messages in hand within " + grace.String() + "; closing the connections anyway")
				} else {
					logger.Warn("shutting down: the broker did not stop within " + grace.String() + "; closing the connections anyway")
				}
			}
			t.Stop()
		}
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), grace)
		defer cancel()
		logger.Info("shutting down: closing connections")
		closing := gw.Count()
		err := gw.Shutdown(sctx)
		if b.DB != nil && closing > 0 {
			recordClosed(b, closing, opts.now())
		}
		if errors.Is(err, context.DeadlineExceeded) && sctx.Err() != nil {
			// Not a failure of serve: what was still open is dropped,
			// and $disconnect has run for every connection.
			logger.Warn("shutting down: dropped the clients and @connections calls still open after " + grace.String())
			return nil
		}
		return err
	})
	if err := g.Wait(); err != nil && !errors.Is(err, context.Canceled) {
		return err
	}
	logger.Info("stopped")
	return nil
}

// stoppingWork is what serve finishes after Ctrl-C, and what a second
// one, stopping it at once, leaves behind: the messages its broker has in
// hand first, if any (inHand), then the connections.
func stoppingWork(inHand, local bool) cmdutil.Work {
	records := "the next socks serve on this state dir deletes their records and waits for them"
	again := "is delivered again by the next broker"
	if !local {
		records = "their records stay in the connections table until `socks prune-stale` deletes them"
		again = "comes back on the queue after the visibility timeout"
	}
	left := "its clients got no close frame and no $disconnect ran for them; they reconnect, and " + records
	if !inHand {
		return cmdutil.Work{What: "closing the connections, for at most " + shutdownGrace.String(), Left: left}
	}
	return cmdutil.Work{
		What: "finishing the messages in hand, then closing the connections, for at most " + shutdownGrace.String() + " each",
		Left: left + "; a message it had in hand " + again + ", so a client may get it twice",
	}
}

// validPort reports whether p is a port number net.Listen takes (0: any).
func validPort(p string) bool {
	n, err := strconv.Atoi(p)
	return err == nil && n >= 0 && n <= 65535
}

// checkLimits refuses limits out of their ranges (docs/protocol.md), and
// stages and origins that are not ones.
func (opts *Options) checkLimits() error {
	if _, port, err := net.SplitHostPort(opts.Addr); err != nil || !validPort(port) {
		return cmdutil.FlagErrorf("--addr %q: give HOST:PORT, as %s (port 0 picks a free one)", opts.Addr, DefaultAddr)
	}
	// API Gateway's limits hold whatever one asks: a client that worked
	// locally for longer would be cut off on AWS.
	if opts.IdleTimeout > pubsub.IdleTimeout {
		return cmdutil.FlagErrorf("--idle-timeout %v is longer than API Gateway's %v: the local gateway keeps AWS's limits (shorten them to test, never lengthen them)", opts.IdleTimeout, pubsub.IdleTimeout)
	}
	if opts.MaxDuration > pubsub.MaxConnectionDuration {
		return cmdutil.FlagErrorf("--max-duration %v is longer than API Gateway's %v: the local gateway keeps AWS's limits (shorten them to test, never lengthen them)", opts.MaxDuration, pubsub.MaxConnectionDuration)
	}
	if opts.MaxTopics < 1 || opts.MaxTopics > pubsub.MaxTopicsPerConnection {
		return cmdutil.FlagErrorf("--max-topics %d is out of range: give 1 to %d", opts.MaxTopics, pubsub.MaxTopicsPerConnection)
	}
	if !gateway.ValidStage(opts.Stage) {
		return cmdutil.FlagErrorf("--stage %q: use only letters, digits, '-' and '_'", opts.Stage)
	}
	if opts.MaxConnectionsPerGeek < 1 {
		return cmdutil.FlagErrorf("--max-connections-per-geek must be at least 1")
	}
	switch {
	case opts.MaxConnections < 1:
		return cmdutil.FlagErrorf("--max-connections must be at least 1")
	case opts.MaxQueuedBytes < pubsub.MaxMessageBytes:
		return cmdutil.FlagErrorf("--max-queued-bytes must be at least %d, one message of the largest size", pubsub.MaxMessageBytes)
	case opts.MaxFramesPerSecond < 1:
		return cmdutil.FlagErrorf("--max-frames-per-second must be at least 1")
	}
	for _, o := range opts.AllowOrigins {
		if _, err := browserOrigin(o); err != nil {
			return err
		}
	}
	return nil
}

// browserOrigin returns origin as a browser sends it in the Origin header:
// scheme and host in lower case, without the scheme's default port.
func browserOrigin(origin string) (string, error) {
	u, err := url.Parse(origin)
	if err != nil || u.Scheme == "" || u.Host == "" || u.Path != "" || u.RawQuery != "" || u.Fragment != "" || u.User != nil || u.Opaque != "" {
		return "", cmdutil.FlagErrorf("--allow-origin takes origins like https://app.example (scheme and host, no path)")
	}
	scheme, host := strings.ToLower(u.Scheme), strings.ToLower(u.Host)
	if p := u.Port(); (scheme == "http" && p == "80") || (scheme == "https" && p == "443") {
		host = strings.TrimSuffix(host, ":"+p)
	}
	return scheme + "://" + host, nil
}

// defaultLimits gives every limit left at zero its default, so that code
// that builds Options (demo, tests) need not name them all.
func (opts *Options) defaultLimits() {
	for _, l := range []struct {
		v   *int
		def int
	}{
		{&opts.MaxTopics, pubsub.MaxTopicsPerConnection},
		{&opts.MaxConnectionsPerGeek, routes.DefaultMaxConnectionsPerGeek},
		{&opts.MaxConnections, DefaultMaxConnections},
		{&opts.MaxQueuedBytes, gateway.DefaultMaxQueuedBytes},
		{&opts.MaxFramesPerSecond, gateway.DefaultMaxFramesPerSecond},
	} {
		if *l.v == 0 {
			*l.v = l.def
		}
	}
}

// ReachableAddr is the host:port a person (and every other socks process on
// this machine) can connect to for a listener at a: a listener on every
// interface (0.0.0.0, [::]) is reached through the loopback address, not
// through the unspecified one.
func ReachableAddr(a net.Addr) string {
	tcp, ok := a.(*net.TCPAddr)
	if !ok || !tcp.IP.IsUnspecified() {
		return a.String()
	}
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(tcp.Port))
}

// addrAsGiven names the listener at a as the user gave it (given, the
// --addr): its host, with the port a holds (the one chosen for port 0). Go
// listens on 0.0.0.0 through a dual-stack socket whose address reads [::],
// which is not what the user typed. With no host given, a's own.
func addrAsGiven(given string, a net.Addr) string {
	host, _, err := net.SplitHostPort(given)
	tcp, ok := a.(*net.TCPAddr)
	if err != nil || host == "" || !ok {
		return a.String()
	}
	return net.JoinHostPort(host, strconv.Itoa(tcp.Port))
}

// untilOneExpires is how long until the first of geek's live chatter IDs
// expires, freeing a place under the limit: 0 when it cannot tell.
func untilOneExpires(ctx context.Context, s store.Store, geek string, now time.Time) time.Duration {
	ids, err := s.ListChatterIDs(ctx, geek)
	if err != nil {
		return 0
	}
	var first time.Time
	for _, c := range ids {
		if !c.Expired(now) && (first.IsZero() || c.ExpiresAt.Before(first)) {
			first = c.ExpiresAt
		}
	}
	if first.IsZero() {
		return 0
	}
	return first.Sub(now)
}

// pageMayIssue reports whether the live page may get chatter IDs from the
// gateway: only on the local backend (the local state is for playing with;
// never --backend aws), only listening on loopback (nothing but this
// machine can ask; web.Site also checks the request's origin), and not
// with --require-signature: the origin check stops browser pages, not the
// other processes of this machine that the flag says are not trusted.
func pageMayIssue(addr net.Addr, localBackend, requireSignature bool) bool {
	tcp, ok := addr.(*net.TCPAddr)
	return ok && localBackend && !requireSignature && tcp.IP.IsLoopback()
}

func checkNotRunning(ctx context.Context, b *backend.Backend) error {
	ws, _, err := b.Gateway(ctx)
	if errors.Is(err, backend.ErrNoGateway) {
		return nil // none recorded, or a stale record: take over
	}
	if err != nil {
		return err
	}
	pid, _, _ := b.DB.GetMeta(ctx, backend.MetaGatewayPID)
	return fmt.Errorf("%w (pid %s, %s): stop it first, or use another --state-dir", backend.ErrGatewayRunning, pid, ws)
}

// runningError says that another gateway holds the state dir, with its
// record when it has one, else with the pid it named in its lock (it is
// starting, or stopping: the record goes at Ctrl-C).
func runningError(ctx context.Context, b *backend.Backend) error {
	if err := checkNotRunning(ctx, b); err != nil {
		return err
	}
	if pid := b.GatewayPID(); pid > 0 {
		return fmt.Errorf("%w (pid %d, starting or stopping): stop it first, or use another --state-dir", backend.ErrGatewayRunning, pid)
	}
	return fmt.Errorf("%w (starting, stopping, or its address is not reachable yet): stop it first, or use another --state-dir", backend.ErrGatewayRunning)
}

// record makes the gateway known in the state file: where it listens,
// its pid, and its run ID (gateway.Gateway.ID), which a broker beside it
// checks on every answer from that address. The ID goes first: a broker
// that reads the address reads this gateway's ID with it.
func record(ctx context.Context, b *backend.Backend, ws, mgmt, id string) error {
	for _, kv := range [][2]string{
		{backend.MetaGatewayID, id},
		{backend.MetaGatewayWebSocket, ws},
		{backend.MetaGatewayManagement, mgmt},
		{backend.MetaGatewayPID, strconv.Itoa(os.Getpid())},
	} {
		if err := b.DB.SetMeta(ctx, kv[0], kv[1]); err != nil {
			return fmt.Errorf("recording the gateway in the state file: %w", err)
		}
	}
	return nil
}

// recordClosed leaves, for the next serve, how many clients this gateway
// closed as it stopped, and when (backend.MetaGatewayClosed). A failure
// only costs those clients what waited while no gateway ran.
func recordClosed(b *backend.Backend, clients int, at time.Time) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = b.DB.SetMeta(ctx, backend.MetaGatewayClosed, fmt.Sprintf("%d@%d", clients, at.UnixMilli()))
}

// takeClosed reads and deletes what the last gateway left as it stopped
// cleanly, and returns how many clients it closed, if it stopped within
// restartWindow of now (0 otherwise, or when it left nothing readable).
func takeClosed(ctx context.Context, b *backend.Backend, now time.Time) (int, error) {
	v, ok, err := b.DB.GetMeta(ctx, backend.MetaGatewayClosed)
	if err != nil || !ok {
		return 0, err
	}
	if err := b.DB.DeleteMeta(ctx, backend.MetaGatewayClosed); err != nil {
		return 0, err
	}
	n, ms, found := strings.Cut(v, "@")
	clients, err1 := strconv.Atoi(n)
	at, err2 := strconv.ParseInt(ms, 10, 64)
	if !found || err1 != nil || err2 != nil || clients < 0 {
		return 0, nil
	}
	if since := now.Sub(time.UnixMilli(at)); since < 0 || since > restartWindow {
		return 0, nil
	}
	return clients, nil
}

// gatewayKeys are the state file's meta keys of the gateway record
// (record): forget and forgetKilled take all of them out.
var gatewayKeys = [...]string{backend.MetaGatewayWebSocket, backend.MetaGatewayManagement, backend.MetaGatewayPID, backend.MetaGatewayID}

// forget removes the gateway record, unless another gateway replaced it.
func forget(b *backend.Backend, mgmt string) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if cur, ok, err := b.DB.GetMeta(ctx, backend.MetaGatewayManagement); err != nil || !ok || cur != mgmt {
		return
	}
	for _, k := range gatewayKeys {
		_ = b.DB.DeleteMeta(ctx, k)
	}
}

// forgetKilled takes out, holding the gateway lock, the record a gateway
// killed before it could left: at once, before this serve listens, not
// only when it records itself, for the record looks live while the lock
// is held (a serve refused beside it named the killed one's pid; a
// broker took its address, which another process may listen at now).
// The next serve needs nothing of it, unlike the connection records and
// what a clean stop left (kept until this one listens).
func forgetKilled(ctx context.Context, b *backend.Backend) error {
	for _, k := range gatewayKeys {
		if err := b.DB.DeleteMeta(ctx, k); err != nil {
			return fmt.Errorf("deleting the record of a gateway that was killed: %w", err)
		}
	}
	return nil
}

// Endpoints are what `serve --json` prints once it is listening.
type Endpoints struct {
	WebSocket  string `json:"websocket"`
	Management string `json:"management"`
	Page       string `json:"page"`
	Pprof      string `json:"pprof,omitempty"`
	// Broker says whether this process delivers queued messages (not
	// --no-broker).
	Broker bool `json:"broker"`
	// StateDir is the local state dir (empty on the AWS store).
	StateDir string `json:"stateDir,omitempty"`
}

// announce prints the WebSocket URL (with asJSON, every endpoint as one
// JSON line) on standard output and, on a terminal, a summary on standard
// error, whose connect hint issues chatter IDs with the command issue:
// with asJSON not coloured (cmdutil.ErrUI).
func announce(ios *iostreams.IOStreams, e Endpoints, asJSON bool, issue string) error {
	if asJSON {
		if err := cmdutil.PrintJSON(ios.Out, e); err != nil {
			return err
		}
	} else {
		fmt.Fprintln(ios.Out, e.WebSocket)
	}
	if !ios.IsStderrTTY() {
		return nil
	}
	u := cmdutil.ErrUI(ios, asJSON)
	broker := "broker running"
	if !e.Broker {
		broker = "broker off"
	}
	fmt.Fprintf(ios.ErrOut, "%s gateway listening on %s\n  %s %s\n  %s %s (socks.js at %ssocks.js)\n",
		u.Title.Render("socks"), u.Accent.Render(e.WebSocket),
		u.Label.Render("management API"), e.Management,
		u.Label.Render("live page"), e.Page, e.Page)
	if e.StateDir != "" {
		fmt.Fprintf(ios.ErrOut, "  %s %s\n", u.Label.Render("state dir"), e.StateDir)
	}
	fmt.Fprintf(ios.ErrOut, "  %s\n  %s\n", u.Muted.Render(broker),
		u.Muted.Render("connect with ?geek=NAME&id=$("+issue+") · Ctrl-C to stop"))
	return nil
}

// issueHint is the `socks chatter issue` that, pasted into another
// terminal, issues where the gateway of c looks: with the state dir when
// it is not the default one (named by a flag, a variable or a profile),
// and on AWS with the flags serve was given (the environment and the
// profile apply to the other command too).
func issueHint(c config.Config) string {
	args := []string{"socks", "chatter", "issue"}
	if c.Backend != config.BackendAWS {
		if c.Sources["state_dir"] != "default" {
			args = append(args, "--state-dir", text.ShellWord(c.StateDir))
		}
	} else {
		for _, s := range []struct{ key, flag, value string }{
			{"backend", "--backend", c.Backend},
			{"stack", "--stack", c.AWS.Stack},
			{"region", "--region", c.AWS.Region},
			{"aws_profile", "--profile", c.AWS.Profile},
			{"endpoint_url", "--endpoint-url", c.AWS.EndpointURL},
			{"dynamodb_endpoint_url", "--dynamodb-endpoint-url", c.AWS.DynamoDBEndpointURL},
			{"sqs_endpoint_url", "--sqs-endpoint-url", c.AWS.SQSEndpointURL},
		} {
			if c.Sources[s.key] == "flag" {
				args = append(args, s.flag, text.ShellWord(s.value))
			}
		}
	}
	return strings.Join(append(args, "--geek", "NAME"), " ")
}

// listenPprof listens on addr for profiles, which must be a loopback
// address: profiles show what the process does and cost CPU to take.
func listenPprof(addr string) (net.Listener, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, cmdutil.FlagErrorf("--pprof %q: give a loopback address with a port, e.g. 127.0.0.1:6060", addr)
	}
	if !loopback.Name(host) {
		return nil, cmdutil.FlagErrorf("--pprof %q: profiles are served on loopback only (127.0.0.1, ::1 or localhost); use an SSH tunnel to reach them from elsewhere", addr)
	}
	ln, err := net.Listen("tcp", loopback.Addr(net.JoinHostPort(host, port)))
	if err != nil {
		return nil, fmt.Errorf("cannot listen on %s for --pprof: %w", addr, err)
	}
	if err := onLoopback(ln, addr); err != nil {
		ln.Close()
		return nil, err
	}
	return ln, nil
}

// onLoopback checks where ln, listening for addr, actually listens: a
// name (localhost) resolves through the system's resolver, which a hosts
// file can point anywhere.
func onLoopback(ln net.Listener, addr string) error {
	if a, ok := ln.Addr().(*net.TCPAddr); !ok || !a.IP.IsLoopback() {
		return cmdutil.FlagErrorf("--pprof %q listens on %s, not on loopback: give 127.0.0.1 or ::1", addr, ln.Addr())
	}
	return nil
}

// pprofBodyWait bounds the reading of a request's body by the profiles'
// server (none of its handlers needs one), pprofIdle a kept-alive
// connection's wait for its next request, and pprofWrite the writing of
// an answer, counted from when the request was read: net/http/pprof adds
// to it the seconds a CPU profile, a trace or a delta profile collects
// for (?seconds=N, at most pprofMaxSeconds), so such a profile is served
// and has pprofWrite to be written once collected.
const (
	pprofBodyWait = 10 * time.Second
	pprofIdle     = 2 * time.Minute
	pprofWrite    = 2 * time.Minute
)

// pprofServer serves net/http/pprof's handlers (not on the default mux),
// to requests that name a loopback host only (a page in the browser that
// points its own name at 127.0.0.1 may not read them) and not sent by
// another site's page (which could start hour-long profiles unread).
// A body that stops coming is not waited for past bodyWait, nor a next
// request past idle: net/http sets no deadline after the headers. (Not
// a ReadTimeout, which would also cut CPU profiles and traces short.) A
// client that does not read its answer is let go after write (plus a
// profile's seconds), where it held a goroutine and a socket for ever.
// A request's line and headers are bounded as the gateway's are (431
// over 10,240 bytes), where net/http's default of 1 MB let each cost
// some 26 MB to parse. A profile asked to last longer than
// pprofMaxSeconds is refused (capSeconds).
func pprofServer(bodyWait, idle, write time.Duration) *http.Server {
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	only := loopback.Only(capSeconds(mux))
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.ContentLength != 0 {
			_ = http.NewResponseController(w).SetReadDeadline(time.Now().Add(bodyWait))
		}
		only.ServeHTTP(w, r)
	})
	return &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: idle, WriteTimeout: write,
		MaxHeaderBytes: gateway.ServerMaxHeaderBytes}
}

// pprofMaxSeconds is the longest a CPU profile, a trace or a delta
// profile of --pprof may collect for (?seconds=N): net/http/pprof takes
// any length, and a day held a connection, and the CPU profiler, which
// one profile at a time may use, for a day.
const pprofMaxSeconds = 60

// capSeconds refuses, 400 in words, a request whose seconds (read as
// net/http/pprof reads it: r.FormValue, the query or a form body) is
// over pprofMaxSeconds, or is not a finite number though it parses as
// one (NaN, Inf). What does not parse, or is not over, goes to h, which
// defaults it or refuses it in its own words.
func capSeconds(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if v := r.FormValue("seconds"); v != "" {
			if sec, err := strconv.ParseFloat(v, 64); err == nil && !(sec <= pprofMaxSeconds) {
				http.Error(w, fmt.Sprintf("a profile or trace of socks serve --pprof lasts at most %d seconds: ask for ?seconds=%d or fewer", pprofMaxSeconds, pprofMaxSeconds), http.StatusBadRequest)
				return
			}
		}
		h.ServeHTTP(w, r)
	})
}

// isLoopback reports whether addr is a loopback address.
func isLoopback(addr net.Addr) bool {
	tcp, ok := addr.(*net.TCPAddr)
	return ok && tcp.IP.IsLoopback()
}

func gatewayCredentials(keys *aws.Credentials) *gateway.Credentials {
	if keys == nil {
		return nil
	}
	return &gateway.Credentials{AccessKeyID: keys.AccessKeyID, SecretAccessKey: keys.SecretAccessKey}
}
