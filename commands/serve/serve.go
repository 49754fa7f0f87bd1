// Package serve implements `socks serve`: the local gateway and broker.
package serve

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/sync/errgroup"

	"github.com/socks-dev/socks/backend"
	"github.com/socks-dev/socks/broker"
	"github.com/socks-dev/socks/commands/cmdutil"
	"github.com/socks-dev/socks/faults"
	"github.com/socks-dev/socks/gateway"
	"github.com/socks-dev/socks/iostreams"
	"github.com/socks-dev/socks/pubsub"
	"github.com/socks-dev/socks/routes"
	"github.com/socks-dev/socks/ui"
)

// DefaultAddr is where `socks serve` listens by default.
const DefaultAddr = "127.0.0.1:8765"

// Options are the inputs of `socks serve`.
type Options struct {
	IO      *iostreams.IOStreams
	Backend func(context.Context) (*backend.Backend, error)
	Now     func() time.Time

	Addr        string
	Stage       string
	IdleTimeout time.Duration
	MaxDuration time.Duration
	NoBroker    bool
	Concurrency int
	Verbose     bool
	Quiet       bool
	// Faults is the --faults spec (package faults); empty for none.
	Faults string

	// Ready, when set, is called with the endpoints once serving (tests,
	// demo).
	Ready func(websocketURL, managementURL string)
}

// NewCmdServe returns `socks serve`.
func NewCmdServe(f *cmdutil.Factory, runF func(context.Context, *Options) error) *cobra.Command {
	opts := &Options{IO: f.IOStreams, Backend: f.Backend, Now: f.Now}
	cmd := &cobra.Command{
		Use:   "serve [--addr 127.0.0.1:PORT]",
		Short: "Run the local WebSocket gateway and broker",
		Long: `Serve runs a WebSocket gateway that behaves like API Gateway, and the broker
that delivers published messages, on the local state file.

Clients connect to ws://ADDR/ (and ws://ADDR/STAGE with --stage) with
?geek=NAME&id=CHATTER_ID&topic=T. The Management API answers at
http://ADDR/@connections/{id} (POST, GET, DELETE), as on AWS.

API Gateway's limits apply: 32 KB frames, 128 KB messages, 10 minutes idle,
2 hours per connection (shorten them with the flags to test). The WebSocket
URL is printed on standard output once it is listening; logs go to
standard error. Ctrl-C closes every connection with a close frame and exits.

--faults makes the gateway misbehave the way AWS sometimes does, to test
producers, brokers and browsers against it: posts answered 500 or 429,
connections reset before or after the message was delivered, slow answers,
lost $disconnect events, a limited connect rate. Each fault is NAME=P with
P the probability (0 to 1): post500, post429, reset, reset-after,
slow=P:DURATION, drop-disconnect; connect-rate=N/s; seed=N repeats the
draws. What was injected is logged at exit. docs/reliability.md says how
socks itself copes with each.

SIGUSR1 logs the runtime figures (goroutines, connections, heap, open
files), to look for leaks.`,
		Example: `  socks serve
  socks serve --addr 127.0.0.1:0 --stage dev
  socks serve --idle-timeout 30s --max-duration 5m -v
  socks serve --faults 'post500=0.1,post429=0.05,reset=0.02,slow=0.02:2s,drop-disconnect=0.1,connect-rate=500/s'`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if runF != nil {
				return runF(cmd.Context(), opts)
			}
			return Run(cmd.Context(), opts)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&opts.Addr, "addr", DefaultAddr, "address to listen on (port 0 picks a free port)")
	fl.StringVar(&opts.Stage, "stage", "", "also accept connections at /STAGE, as API Gateway does")
	fl.DurationVar(&opts.IdleTimeout, "idle-timeout", pubsub.IdleTimeout, "close connections idle this long")
	fl.DurationVar(&opts.MaxDuration, "max-duration", pubsub.MaxConnectionDuration, "close connections older than this")
	fl.BoolVar(&opts.NoBroker, "no-broker", false, "run the gateway only; do not deliver queued messages")
	fl.IntVar(&opts.Concurrency, "concurrency", broker.DefaultConcurrency, "posts in flight at once per message")
	fl.StringVar(&opts.Faults, "faults", "", "inject faults: "+faults.Syntax)
	fl.BoolVarP(&opts.Verbose, "verbose", "v", false, "log every connection and delivery")
	fl.BoolVarP(&opts.Quiet, "quiet", "q", false, "log only warnings and errors")
	cmd.MarkFlagsMutuallyExclusive("verbose", "quiet")
	return cmd
}

// Run serves until ctx is done.
func Run(ctx context.Context, opts *Options) error {
	if opts.IdleTimeout <= 0 || opts.MaxDuration <= 0 {
		return cmdutil.FlagErrorf("--idle-timeout and --max-duration must be above 0")
	}
	if opts.Concurrency < 1 {
		return cmdutil.FlagErrorf("--concurrency must be at least 1")
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
	// On the AWS backend serve runs a local gateway over the AWS store and
	// queue (for testing against emulators); only the local backend records
	// the gateway for other processes to find.
	if b.DB != nil {
		if err := checkNotRunning(ctx, b); err != nil {
			return err
		}
	}
	ln, err := net.Listen("tcp", opts.Addr)
	if err != nil {
		if errors.Is(err, syscall.EADDRINUSE) {
			return fmt.Errorf("address %s is already in use: stop what uses it or pick another with --addr 127.0.0.1:PORT (port 0 picks a free one)", opts.Addr)
		}
		return fmt.Errorf("cannot listen on %s: %w", opts.Addr, err)
	}
	logger := cmdutil.NewLogger(opts.IO.ErrOut, opts.Verbose, opts.Quiet)

	handler := &routes.Handler{Store: b.Store, MaxDuration: opts.MaxDuration, Now: opts.Now, Logger: logger.With("component", "routes")}
	gw, err := gateway.New(gateway.Options{
		Handler:     handler,
		Stage:       opts.Stage,
		Routes:      routes.ActionRoutes,
		IdleTimeout: opts.IdleTimeout,
		MaxDuration: opts.MaxDuration,
		Logger:      logger.With("component", "gateway"),
		Now:         opts.Now,
		Faults:      inj,
	})
	if err != nil {
		_ = ln.Close()
		return err
	}
	addr := ln.Addr().String()
	wsURL := "ws://" + addr + "/"
	if opts.Stage != "" {
		wsURL += opts.Stage
	}
	mgmtURL := gw.ManagementEndpoint(addr)
	if b.DB != nil {
		if err := record(ctx, b, wsURL, mgmtURL); err != nil {
			_ = ln.Close()
			return err
		}
		defer forget(b, mgmtURL)
	}

	announce(opts.IO, wsURL, mgmtURL, opts.NoBroker)
	if inj != nil {
		logger.Warn("injecting faults", "faults", spec.String())
		defer func() { logger.Warn("faults injected", "counts", inj.Summary()) }()
	}
	if opts.Ready != nil {
		opts.Ready(wsURL, mgmtURL)
	}

	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return gw.Serve(ln) })
	stats, stopStats := statsSignals()
	defer stopStats()
	go logStats(gctx, logger, gw, stats)
	if !opts.NoBroker {
		// The broker's posts meet the faults once: this pusher goes through
		// the gateway's Management API, where the faults act. A pusher
		// that delivers in process instead must be wrapped with
		// inj.Pusher.
		br := &broker.Broker{
			Store:       b.Store,
			Queue:       b.Queue,
			Pusher:      backend.LocalPusher(mgmtURL, opts.Concurrency),
			Concurrency: opts.Concurrency,
			Wait:        time.Second,
			Now:         opts.Now,
			Logger:      logger.With("component", "broker"),
		}
		g.Go(func() error { return br.Run(gctx) })
	}
	g.Go(func() error {
		<-gctx.Done()
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		logger.Info("shutting down: closing connections")
		return gw.Shutdown(sctx)
	})
	if err := g.Wait(); err != nil && !errors.Is(err, context.Canceled) {
		return err
	}
	logger.Info("stopped")
	return nil
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
	return fmt.Errorf("a gateway is already running for this state dir (pid %s, %s): stop it first, or use another --state-dir", pid, ws)
}

func record(ctx context.Context, b *backend.Backend, ws, mgmt string) error {
	for k, v := range map[string]string{
		backend.MetaGatewayWebSocket:  ws,
		backend.MetaGatewayManagement: mgmt,
		backend.MetaGatewayPID:        strconv.Itoa(os.Getpid()),
	} {
		if err := b.DB.SetMeta(ctx, k, v); err != nil {
			return fmt.Errorf("recording the gateway in the state file: %w", err)
		}
	}
	return nil
}

// forget removes the gateway record, unless another gateway replaced it.
func forget(b *backend.Backend, mgmt string) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if cur, ok, err := b.DB.GetMeta(ctx, backend.MetaGatewayManagement); err != nil || !ok || cur != mgmt {
		return
	}
	for _, k := range []string{backend.MetaGatewayWebSocket, backend.MetaGatewayManagement, backend.MetaGatewayPID} {
		_ = b.DB.DeleteMeta(ctx, k)
	}
}

func announce(ios *iostreams.IOStreams, ws, mgmt string, noBroker bool) {
	fmt.Fprintln(ios.Out, ws)
	if !ios.IsStderrTTY() {
		return
	}
	u := ui.NewErr(ios)
	broker := "broker running"
	if noBroker {
		broker = "broker off"
	}
	fmt.Fprintf(ios.ErrOut, "%s gateway listening on %s\n  %s %s\n  %s\n  %s\n",
		u.Title.Render("socks"), u.Accent.Render(ws),
		u.Label.Render("management API"), mgmt,
		u.Muted.Render(broker),
		u.Muted.Render("connect with ?geek=NAME&id=$(socks chatter issue --geek NAME) · Ctrl-C to stop"))
}
