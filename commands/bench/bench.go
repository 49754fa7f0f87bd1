// Package bench implements `socks bench`: it measures a running stack —
// the local gateway by default, or any ws:// or wss:// URL — from the
// outside, as a client sees it.
package bench

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"net/url"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"
	"github.com/spf13/cobra"

	"github.com/socks-dev/socks/backend"
	"github.com/socks-dev/socks/commands/cmdutil"
	"github.com/socks-dev/socks/config"
	"github.com/socks-dev/socks/internal/loopback"
	"github.com/socks-dev/socks/internal/text"
	"github.com/socks-dev/socks/iostreams"
	"github.com/socks-dev/socks/pubsub"
	"github.com/socks-dev/socks/store"
	"github.com/socks-dev/socks/ui"
	"github.com/socks-dev/socks/wsclient"
)

// How the bench gets chatter IDs and publishes.
const (
	AuthStore = "store" // issue chatter IDs in the configured backend's store
	AuthNone  = "none"  // connect without (a server that does not check)

	PublishQueue     = "queue"     // envelopes on the configured backend's queue
	PublishBroadcast = "broadcast" // POST CALLBACK/@broadcast (the bench ceiling)
)

// API Gateway's quotas the bench stays under against a real endpoint.
const (
	// awsConnectRate is API Gateway's default new-connection quota per
	// second (per account and region).
	awsConnectRate = 500
	// awsPostRate is the @connections throttle (requests per second).
	awsPostRate = 10000
	// paceShare is the share of each quota the bench uses when pacing.
	paceShare = 0.8
)

// Options are the inputs of `socks bench`.
type Options struct {
	IO      *iostreams.IOStreams
	Backend func(context.Context) (*backend.Backend, error)
	Now     func() time.Time
	// Stopping records what the bench finishes after Ctrl-C, for Main
	// to say.
	Stopping *cmdutil.Stopping

	URL         string
	Callback    string
	Auth        string
	Publish     string
	PID         int
	Connections int
	Dialers     int
	Fanouts     int
	Samples     int
	IdleSamples int
	Idle        time.Duration
	IdleSet     bool // --idle was given
	Timeout     time.Duration
	NoPace      bool
	// ConnectRate is --connect-rate, the connects' pace a second (0:
	// not given, API Gateway's pace against a remote endpoint).
	ConnectRate    int
	ConnectRateSet bool // --connect-rate was given
	JSON           bool
}

// NewCmdBench returns `socks bench`.
func NewCmdBench(f *cmdutil.Factory, runF func(context.Context, *Options) error) *cobra.Command {
	opts := &Options{IO: f.IOStreams, Backend: f.StackBackend(cmdutil.NeedState, "nothing was measured"), Now: f.Now, Stopping: f.Stopping}
	cmd := &cobra.Command{
		Use:   "bench [--url ws://HOST/ --callback http://HOST/]",
		Short: "Measure a running stack: connects/s, fan-out, latency, memory",
		Long: `Bench measures a running stack from the outside, as clients see it, in four
bounded phases:

  latency    one listener; publish one message at a time and time each
             from publish to receipt: p50, p95 and p99; with
             --idle-samples, more, each after --idle of silence (the first
             receipt after the stack was idle; the listener pings every
             minute meanwhile, as listen does, to outlast API Gateway's
             10-minute idle timeout: API Gateway answers a ping itself,
             so no route runs and the stack stays idle)
  connects   open --connections clients with --dialers at once: connects/s
  memory     for a gateway on this machine: its resident memory (RSS, as
             /proc reads it, with no GC forced: garbage not yet collected
             counts) per idle connection (Linux; the local gateway's
             process, or --pid, which must listen at the URL measured).
             A process reuses what it freed before it grows: a gateway
             that held more clients before (an earlier bench) reads
             low, so bench a freshly started one
  fan-out    publish --fanouts messages to every client: deliveries/s

By default it measures the local gateway ('socks serve' on the same state
dir): it issues chatter IDs in the local store and publishes through the
local queue, as 'socks publish' does. Its chatter IDs are for geeks named
bench-RUN-N; it revokes them when it ends, also on Ctrl-C or an error.
One it cannot revoke is a warning, and expires 15 minutes after it was
issued (paced, 15 minutes after the connects are due to end), as do all
of them when a second Ctrl-C stops the bench at once.

--url points it at any ws:// or wss:// endpoint, with --callback its
Management API (callback) URL. Chatter IDs then come from the configured
backend's store (--backend aws: the stack's DynamoDB table), or with
--auth none from nowhere; messages go through the configured backend's
queue, or with --publish broadcast to CALLBACK/@broadcast (the raw
WebSocket ceiling of 'make bench').

Against a real API Gateway (a --url or --callback that is not this machine)
bench warns that it costs money (connection minutes, messages, Lambda,
DynamoDB and SQS requests), and paces itself under API Gateway's quotas:
each connect starts at least 1/400 s after the one before (the quota is
500/s; after a stall it does not catch up in a burst), and each fan-out to N
clients at least N/8,000 s after the one before, so that the broker's
@connections posts stay under 8,000/s on average (the throttle is 10,000;
within one fan-out the broker posts as fast as it does). --no-pace lifts
that. --connect-rate N sets the connects' pace to N a second instead of
400: against a remote endpoint at most 500 (the quota), unless --no-pace
too, which then lifts the fan-outs' pacing only; on this machine it paces
a target that is otherwise not paced. Paced, the connects/s figure is the
pace, not what the target can do.

Progress goes to standard error (a spinner, when standard output and error
are terminals, and not with --json); the results to standard
output, as a table or with --json. A bench that does not end every phase
(a refused connect, a message that does not arrive within --timeout, a
connection the server closes, Ctrl-C) still prints what it measured, with
"complete": false and the error (in the table: "incomplete", and a dash
for what was not measured), and exits non-zero: 1, or 130 after Ctrl-C.
A phase that ends early reports no figure: latency percentiles without
the message that did not arrive would flatter the target. On the local
backend a state dir nothing has run with (a mistyped --state-dir) exits
3 before anything is measured, and nothing is made there; with no
broker to deliver the queue (serve --no-broker) it exits 1 as early.`,
		Example: `  # The local gateway of this state dir ('socks serve' running)
  socks bench

  # More clients, opened 100 at once; the figures as JSON for a script
  socks bench --connections 5000 --dialers 100 --json | jq .fanOut

  # A raw WebSocket server on this machine (make bench's ceiling), and
  # the memory of its process 4242, which listens on port 9000
  socks bench --url ws://127.0.0.1:9000/ --callback http://127.0.0.1:9000 --auth none --publish broadcast --pid 4242

  # A deployed stack: warns of the cost, and paces under API Gateway's
  # quotas; chatter IDs from the stack's table, messages by its queue
  socks --backend aws bench --url wss://abc123.execute-api.eu-west-1.amazonaws.com/prod --callback https://abc123.execute-api.eu-west-1.amazonaws.com/prod --connections 200

  # The same, its clients opened at 100 a second (an account whose
  # connect quota is shared with production)
  socks --backend aws bench --url wss://abc123.execute-api.eu-west-1.amazonaws.com/prod --callback https://abc123.execute-api.eu-west-1.amazonaws.com/prod --connections 200 --connect-rate 100`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.IdleSet = cmd.Flags().Changed("idle")
			opts.ConnectRateSet = cmd.Flags().Changed("connect-rate")
			if runF != nil {
				return runF(cmd.Context(), opts)
			}
			return benchRun(cmd.Context(), opts)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&opts.URL, "url", "", "WebSocket URL to measure (default: the local gateway)")
	fl.StringVar(&opts.Callback, "callback", "", "the Management API (callback) URL of --url")
	fl.StringVar(&opts.Auth, "auth", AuthStore, "chatter IDs: 'store' (issue them in the configured backend) or 'none'")
	fl.StringVar(&opts.Publish, "publish", PublishQueue, "how to publish: 'queue' (the configured backend's) or 'broadcast' (POST CALLBACK/@broadcast)")
	fl.IntVar(&opts.PID, "pid", 0, "process ID of the gateway at --url (it must listen there), for memory per connection (default: the local gateway's, without --url; else no memory figure)")
	fl.IntVarP(&opts.Connections, "connections", "n", 1000, "clients to open")
	fl.IntVar(&opts.Dialers, "dialers", 50, "clients opening at once")
	fl.IntVar(&opts.Fanouts, "fanouts", 3, "messages published to every client")
	fl.IntVar(&opts.Samples, "samples", 50, "latency samples")
	fl.IntVar(&opts.IdleSamples, "idle-samples", 0, "latency samples more, each after --idle of silence (0: none)")
	fl.DurationVar(&opts.Idle, "idle", 2*time.Second, "the silence before each --idle-samples sample")
	fl.DurationVar(&opts.Timeout, "timeout", time.Minute, "longest wait for any one handshake (at most 30s) or message")
	fl.BoolVar(&opts.NoPace, "no-pace", false, "do not pace under API Gateway's quotas against a remote endpoint")
	fl.IntVar(&opts.ConnectRate, "connect-rate", 0, fmt.Sprintf("connects a second to pace the clients at (default: %.0f against a remote endpoint, where more than %d, API Gateway's quota, needs --no-pace; none on this machine)", awsConnectRate*paceShare, awsConnectRate))
	fl.BoolVar(&opts.JSON, "json", false, "print the results as JSON")
	return cmd
}

// Result is what bench prints with --json. Rates are per second.
type Result struct {
	URL    string `json:"url"`
	Remote bool   `json:"remote"`
	Paced  bool   `json:"paced"`
	// Complete is false when the bench ended before its last phase did
	// (an error, or Ctrl-C): the figures are those of the phases that
	// ended, zero for the others, and Error says why. Such a run exits
	// non-zero.
	Complete bool   `json:"complete"`
	Error    string `json:"error,omitempty"`
	// Connections is the clients asked for, Connected those that
	// connected (fewer when the connects did not all succeed).
	Connections int     `json:"connections"`
	Connected   int     `json:"connected"`
	Connects    float64 `json:"connectsPerSecond"`
	FanOut      FanOut  `json:"fanOut"`
	Latency     Latency `json:"latency"`
	Memory      *Memory `json:"memory,omitempty"`
}

// FanOut is the fan-out phase's result.
type FanOut struct {
	Publishes  int     `json:"publishes"`
	Deliveries int     `json:"deliveries"`
	PerSecond  float64 `json:"deliveriesPerSecond"`
}

// Latency is the latency phase's result, in milliseconds.
type Latency struct {
	Samples int     `json:"samples"`
	P50     float64 `json:"p50Ms"`
	P95     float64 `json:"p95Ms"`
	P99     float64 `json:"p99Ms"`
	Max     float64 `json:"maxMs"`
	// AfterIdle is the samples taken each after a silence (--idle-samples).
	AfterIdle *AfterIdle `json:"afterIdle,omitempty"`
}

// AfterIdle is the latency of messages published after a silence: the
// first receipt once the stack has been idle.
type AfterIdle struct {
	Samples int     `json:"samples"`
	IdleMs  float64 `json:"idleMs"`
	P50     float64 `json:"p50Ms"`
	Max     float64 `json:"maxMs"`
}

// Memory is the gateway's resident memory before and after the clients
// connected.
type Memory struct {
	PID           int     `json:"pid"`
	BeforeKiB     int64   `json:"beforeKiB"`
	AfterKiB      int64   `json:"afterKiB"`
	PerConnection float64 `json:"perConnectionKiB"`
}

// pacing bounds the bench's own rates (0: unbounded).
type pacing struct {
	connectsPerSecond   float64
	deliveriesPerSecond float64
}

// plan is what bench measures and how, decided before any connection.
type plan struct {
	wsURL, callback string
	remote          bool
	pid             int
	pace            pacing
	publish         func(ctx context.Context, topic string, body []byte) error
	// lost is the advice when a published message does not arrive: it
	// depends on the path it took (the broker, or a POST to @broadcast).
	lost  string
	query func(ctx context.Context, i int, topic string) (string, error)

	// What the bench times, waits and reads memory with: the clock,
	// time.Sleep and /proc in a run; tests give known ones, so that a
	// figure can be checked against the answer it must give.
	now   func() time.Time
	sleep func(ctx context.Context, d time.Duration) error
	rss   func(pid int) (int64, error)
}

// realClock sets p's clock, sleep and memory reader to the real ones.
func (p *plan) realClock() {
	p.now, p.sleep, p.rss = time.Now, sleep, rssKiB
}

// Pace returns the pacing for a target: under API Gateway's quotas
// against a remote one unless noPace, none on this machine; connectRate
// (--connect-rate, 0 when not given) paces the connects instead,
// wherever the target is and with noPace too.
func Pace(remote, noPace bool, connectRate int) (connectsPerSecond, deliveriesPerSecond float64) {
	if remote && !noPace {
		connectsPerSecond, deliveriesPerSecond = awsConnectRate*paceShare, awsPostRate*paceShare
	}
	if connectRate > 0 {
		connectsPerSecond = float64(connectRate)
	}
	return connectsPerSecond, deliveriesPerSecond
}

// IsRemote reports whether rawURL's host is not this machine: not
// localhost, loopback, the unspecified address (0.0.0.0, which reaches
// this machine) or an address of one of its interfaces (a `socks serve
// --addr 192.168.1.5:8765`). Any other name is remote: a bench would
// rather warn and pace than not.
func IsRemote(rawURL string) bool {
	u, err := url.Parse(rawURL)
	if err != nil {
		return true
	}
	h := u.Hostname()
	if loopback.Name(h) {
		return false
	}
	ip := net.ParseIP(h)
	switch {
	case ip == nil:
		return true
	case ip.IsLoopback() || ip.IsUnspecified():
		return false
	}
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return true
	}
	for _, a := range addrs {
		if ipn, ok := a.(*net.IPNet); ok && ipn.IP.Equal(ip) {
			return false
		}
	}
	return true
}

// Bounds of the counts a bench takes.
const (
	maxConnections = 1_000_000
	maxFanouts     = 10_000
	maxSamples     = 100_000
)

func (opts *Options) check() error {
	switch {
	case opts.Connections < 1:
		return cmdutil.FlagErrorf("--connections must be at least 1")
	case opts.Dialers < 1:
		return cmdutil.FlagErrorf("--dialers must be at least 1")
	case opts.Fanouts < 0 || opts.Samples < 0 || opts.IdleSamples < 0:
		return cmdutil.FlagErrorf("--fanouts, --samples and --idle-samples must not be negative")
	// Counts are allocated up front: bound them before a huge one panics.
	case opts.Connections > maxConnections:
		return cmdutil.FlagErrorf("--connections %d is more than one bench opens: give at most %d", opts.Connections, maxConnections)
	case opts.Fanouts > maxFanouts:
		return cmdutil.FlagErrorf("--fanouts %d is out of range: give at most %d", opts.Fanouts, maxFanouts)
	case opts.Samples > maxSamples || opts.IdleSamples > maxSamples:
		return cmdutil.FlagErrorf("--samples and --idle-samples take at most %d each", maxSamples)
	case opts.IdleSamples > 0 && (opts.Idle <= 0 || opts.Idle > 10*time.Minute):
		return cmdutil.FlagErrorf("--idle must be above 0 and at most 10m")
	case opts.IdleSet && opts.IdleSamples == 0:
		return cmdutil.FlagErrorf("--idle is the silence before each --idle-samples sample: give --idle-samples too (e.g. --idle-samples 3 --idle %s)", opts.Idle)
	case opts.PID < 0:
		return cmdutil.FlagErrorf("--pid %d: give the process ID of the gateway (above 0), or leave --pid out", opts.PID)
	case opts.Timeout <= 0:
		return cmdutil.FlagErrorf("--timeout must be above 0")
	case opts.ConnectRateSet && opts.ConnectRate <= 0:
		return cmdutil.FlagErrorf("--connect-rate %d: give the connects a second above 0, or leave it out (--no-pace lifts the pacing against a remote endpoint)", opts.ConnectRate)
	case opts.Auth != AuthStore && opts.Auth != AuthNone:
		return cmdutil.FlagErrorf("--auth is 'store' or 'none', not %q", opts.Auth)
	case opts.Publish != PublishQueue && opts.Publish != PublishBroadcast:
		return cmdutil.FlagErrorf("--publish is 'queue' or 'broadcast', not %q", opts.Publish)
	case opts.URL != "" && opts.Callback == "":
		return cmdutil.FlagErrorf("--url needs --callback, the Management API URL of the same stage")
	case opts.URL == "" && opts.Callback != "":
		return cmdutil.FlagErrorf("--callback needs --url")
	case opts.Publish == PublishBroadcast && opts.URL == "":
		return cmdutil.FlagErrorf("--publish broadcast needs --url and --callback (a bench ceiling)")
	}
	if opts.URL != "" {
		u, err := url.Parse(opts.URL)
		if err != nil || (u.Scheme != "ws" && u.Scheme != "wss") || u.Host == "" {
			return cmdutil.FlagErrorf("--url %q: give a ws:// or wss:// URL", opts.URL)
		}
		if u.RawQuery != "" || u.ForceQuery || u.Fragment != "" {
			// Each client's query (geek, chatter ID, topic) is added to it.
			return cmdutil.FlagErrorf("--url %q: give it without a query or fragment; bench adds each client's", opts.URL)
		}
		if u, err := url.Parse(opts.Callback); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return cmdutil.FlagErrorf("--callback %q: give an http:// or https:// URL", opts.Callback)
		}
	}
	return nil
}

// ownFiles is a margin for the files the bench opens besides its clients:
// standard streams, the state file, the latency listener, HTTP clients.
const ownFiles = 64

func benchRun(ctx context.Context, opts *Options) error {
	if err := opts.check(); err != nil {
		return err
	}
	// Each client is a file: past the limit the connects fail mid-run.
	if limit, ok := openFileLimit(); ok && uint64(opts.Connections)+ownFiles > limit {
		// The limit is the hard one (ulimit -Hn): Go raised the soft
		// limit to it as socks started, whatever `ulimit -n` says.
		where := "as root, or in the system's limits (/etc/security/limits.conf, systemd's LimitNOFILE)"
		if runtime.GOOS == "darwin" {
			where = "and kern.maxfilesperproc, which caps it on macOS (sudo sysctl kern.maxfilesperproc=N)"
		}
		return cmdutil.FlagErrorf("--connections %d is more clients than this process may open: it may open %d files (the hard limit, ulimit -Hn, which socks raises its own to), and the bench needs about %d more for itself; raise the hard limit to %d (ulimit -Hn %d, %s) or give at most --connections %d",
			opts.Connections, limit, ownFiles, opts.Connections+ownFiles, opts.Connections+ownFiles, where, max(0, int64(limit)-ownFiles))
	}
	run := newRunID()
	p := plan{wsURL: opts.URL, callback: opts.Callback, pid: opts.PID}
	p.realClock()
	recordedPID := false
	var b *backend.Backend
	needBackend := opts.Auth == AuthStore || opts.Publish == PublishQueue || opts.URL == ""
	if needBackend {
		var err error
		if b, err = opts.Backend(ctx); err != nil {
			return err
		}
	}
	if p.wsURL == "" {
		if b.DB == nil {
			// A bench of a deployed stack costs money: it is never
			// started without being pointed at it.
			if ws, cb, err := b.Gateway(ctx); err == nil {
				return cmdutil.FlagErrorf("on the AWS backend give --url and --callback: bench measures the local gateway only on the local backend; for the configured stack: --url %s --callback %s", ws, cb)
			}
			return cmdutil.FlagErrorf("on the AWS backend give --url and --callback: bench measures the local gateway only on the local backend")
		}
		ws, mgmt, err := b.Gateway(ctx)
		if err != nil {
			return err
		}
		p.wsURL, p.callback = ws, mgmt
		if p.pid == 0 {
			if v, ok, _ := b.DB.GetMeta(ctx, backend.MetaGatewayPID); ok {
				p.pid, _ = strconv.Atoi(v)
				recordedPID = p.pid != 0
			}
		}
	}
	// Published to a remote callback, the bench costs as much as one
	// whose clients are remote.
	p.remote = IsRemote(p.wsURL) || IsRemote(p.callback)
	if p.remote && p.pid != 0 {
		return cmdutil.FlagErrorf("--pid measures memory of a gateway on this machine; %s is not", p.wsURL)
	}
	if p.pid != 0 {
		// The memory read must be the gateway's, not that of whatever
		// process has a stale or mistaken PID.
		warn := func(format string, args ...any) { fmt.Fprintf(opts.IO.ErrOut, format, args...) }
		if err := checkPID(warn, &p, recordedPID); err != nil {
			return err
		}
	}
	if p.remote && !opts.NoPace && opts.ConnectRate > awsConnectRate {
		return cmdutil.FlagErrorf("--connect-rate %d is above API Gateway's quota of %d new connections a second, and %s is not on this machine: give at most %d, or --no-pace too to go past the quota (API Gateway throttles the connects above it)", opts.ConnectRate, awsConnectRate, p.wsURL, awsConnectRate)
	}
	p.pace.connectsPerSecond, p.pace.deliveriesPerSecond = Pace(p.remote, opts.NoPace, opts.ConnectRate)
	if p.remote {
		warnRemote(p, opts)
	} else if svc := awsServices(b, opts); len(svc) > 0 {
		// A loopback gateway (a tunnel, a local relay) with the AWS
		// backend still issues chatter IDs and publishes in AWS.
		clients := opts.Connections
		if opts.Samples+opts.IdleSamples > 0 {
			clients++ // the latency listener
		}
		warnf(opts, "the gateway is on this machine, but the bench uses AWS's own %s: it costs requests (%d clients, about %d messages)\n",
			strings.Join(svc, " and "), clients, opts.Connections*opts.Fanouts+opts.Samples+opts.IdleSamples)
	}

	switch opts.Auth {
	case AuthNone:
		p.query = func(_ context.Context, _ int, topic string) (string, error) { return "?topic=" + topic, nil }
	default:
		auth := newStoreAuth(ctx, b.Store, run, opts.Now, opts, p.pace)
		p.query = auth.query
		defer opts.Stopping.Add(auth.stoppingWork())()
		// However the bench ends (done, failed, Ctrl-C), the IDs it
		// issued stop working with it rather than 15 minutes later.
		defer auth.revoke(ctx, opts.IO)
	}
	switch opts.Publish {
	case PublishBroadcast:
		p.publish, p.lost = broadcaster(p.callback, opts.Timeout)
	default:
		p.lost = b.ConsumerQuestion()
		// Nothing delivers a local queue without a broker: say so now,
		// not after --timeout.
		if err := b.Broker(); errors.Is(err, backend.ErrNoBroker) {
			return err
		}
		if b.DB != nil && opts.URL != "" {
			// The local broker posts to the local gateway only: a queued
			// message never reaches the clients of another server.
			if gw, _, err := b.Gateway(ctx); err == nil && !sameLocalServer(gw, opts.URL) {
				p.lost = fmt.Sprintf("messages queued on the local backend go to the local gateway (%s), not to %s: give --url %s, or --publish broadcast for a server that is not socks", gw, opts.URL, gw)
				warnf(opts, "%s\n", p.lost)
			}
		}
		q := b.Queue
		p.publish = func(ctx context.Context, topic string, body []byte) error {
			env := pubsub.Envelope{ID: pubsub.NewMessageID(), Topics: []string{topic}, Body: body}
			data, err := env.Marshal()
			if err != nil {
				return err
			}
			if _, err := q.Send(ctx, data); err != nil {
				return fmt.Errorf("publishing: %w", err)
			}
			return nil
		}
	}

	// What was measured is printed however the bench ends; a bench that
	// did not end its last phase says so, and exits non-zero.
	res, err := measure(ctx, opts, p, run)
	res.Complete = err == nil
	if err != nil {
		res.Error = err.Error()
		if errors.Is(err, context.Canceled) {
			res.Error = "interrupted"
		}
	}
	if perr := printResult(opts, res); err == nil {
		err = perr
	}
	return err
}

// broadcaster publishes by POST CALLBACK/@broadcast (a bench ceiling);
// lost is the advice when a message does not arrive.
func broadcaster(callback string, timeout time.Duration) (publish func(context.Context, string, []byte) error, lost string) {
	// A --callback on "localhost." is dialled on localhost, as --url is.
	transport := http.DefaultTransport.(*http.Transport).Clone()
	loopback.Transport(transport)
	client := &http.Client{Timeout: timeout, Transport: transport}
	target := strings.TrimSuffix(callback, "/") + "/@broadcast"
	lost = fmt.Sprintf("%s took it without sending it on: is it a bench ceiling, which sends what is posted to every client?", target)
	return func(ctx context.Context, _ string, body []byte) error {
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, target, bytes.NewReader(body))
		if err != nil {
			return err
		}
		resp, err := client.Do(req)
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			var ue *url.Error
			if errors.As(err, &ue) && ue.Timeout() {
				return fmt.Errorf("broadcasting to %s: no answer within %s", target, timeout)
			}
			if errors.As(err, &ue) {
				err = ue.Err
			}
			return fmt.Errorf("broadcasting to %s: %w", target, wsclient.InUsersWords(err, "before it answered"))
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("broadcasting: %s answered %s (is it a bench ceiling?)", target, resp.Status)
		}
		return nil
	}, lost
}

// sameLocalServer reports whether two URLs on this machine reach the same
// server: the same port, each on loopback (127.0.0.1, localhost, ::1).
func sameLocalServer(a, b string) bool {
	return !IsRemote(a) && !IsRemote(b) && urlPort(a) == urlPort(b)
}

// awsServices names the AWS services of AWS itself (not an emulator on
// this machine) the bench calls: DynamoDB for --auth store, SQS for
// --publish queue, on the AWS backend.
func awsServices(b *backend.Backend, opts *Options) []string {
	if b == nil || b.Config.Backend != config.BackendAWS {
		return nil
	}
	var out []string
	if e := b.Config.AWS.DynamoDBEndpoint(); opts.Auth == AuthStore && (e == "" || IsRemote(e)) {
		out = append(out, "DynamoDB")
	}
	if e := b.Config.AWS.SQSEndpoint(); opts.Publish == PublishQueue && (e == "" || IsRemote(e)) {
		out = append(out, "SQS")
	}
	return out
}

// warnf writes a warning on standard error: "warning:" marked on a
// terminal, never coloured with --json (cmdutil.ErrUI).
func warnf(opts *Options, format string, args ...any) {
	fmt.Fprintf(opts.IO.ErrOut, "%s "+format, append([]any{cmdutil.ErrUI(opts.IO, opts.JSON).Warn.Render("warning:")}, args...)...)
}

// warnRemote tells the user what benching a real API Gateway costs and how
// the bench paces itself.
func warnRemote(p plan, opts *Options) {
	ios := opts.IO
	far := p.wsURL
	if !IsRemote(far) {
		far = p.callback
	}
	warnf(opts, "%s is not on this machine: if it is a real API Gateway, this bench costs money\n", far)
	fmt.Fprintf(ios.ErrOut, "  (connection minutes, %d connections, about %d messages, and the Lambda, DynamoDB and SQS requests behind them)\n",
		opts.Connections, opts.Connections*opts.Fanouts+opts.Samples+opts.IdleSamples)
	switch {
	case p.pace.deliveriesPerSecond > 0:
		fmt.Fprintf(ios.ErrOut, "  paced under API Gateway's quotas: at most %.0f connects/s (quota %d/s; --connect-rate sets it), fan-outs spaced to stay under %.0f @connections posts/s (throttle %d/s); --no-pace lifts this\n",
			p.pace.connectsPerSecond, awsConnectRate, p.pace.deliveriesPerSecond, awsPostRate)
	case p.pace.connectsPerSecond > 0:
		fmt.Fprintf(ios.ErrOut, "  connects paced at %.0f connects/s (--connect-rate), fan-outs not paced (--no-pace): above %d connects/s or %d posts/s API Gateway throttles and the figures mean little\n", p.pace.connectsPerSecond, awsConnectRate, awsPostRate)
	default:
		fmt.Fprintf(ios.ErrOut, "  not paced (--no-pace): above %d connects/s or %d posts/s API Gateway throttles and the figures mean little\n", awsConnectRate, awsPostRate)
	}
}

// benchIDTTL is how long the chatter IDs bench issues are valid, should
// it not revoke them.
const benchIDTTL = 15 * time.Minute

// revokeBound bounds the revocation of a bench's chatter IDs, and
// revokeWorkers the revocations in flight at once.
const (
	revokeBound   = time.Minute
	revokeWorkers = 8
)

// storeAuth issues one chatter ID per client in s, valid ttl, and revokes
// them all when the bench ends.
type storeAuth struct {
	s     store.Store
	run   string
	clock store.FollowedClock
	now   func() time.Time
	ttl   time.Duration

	mu     sync.Mutex
	issued []store.ChatterID
}

// newStoreAuth returns the chatter ID source of a bench of opts paced by
// pace: its IDs are valid benchIDTTL after the paced connects are due to
// end, not from their issue (paced at 400/s, 360,000 clients take 15
// minutes to connect, and the last would be refused with expired IDs).
// Their times are by the store's clock (store.Clock, asked once here; now
// keeps the time from there), by which the gateway judges them (on AWS,
// the Lambda's): from a machine whose clock was set behind by more than
// their life every connect was refused.
func newStoreAuth(ctx context.Context, s store.Store, run string, now func() time.Time, opts *Options, pace pacing) *storeAuth {
	ttl := benchIDTTL
	if pace.connectsPerSecond > 0 {
		ttl += time.Duration(math.Ceil(float64(opts.Connections) / pace.connectsPerSecond * float64(time.Second)))
	}
	a := &storeAuth{s: s, run: run, ttl: min(ttl, pubsub.MaxChatterTTL)}
	a.clock.Local = now
	a.clock.Follow(ctx, s)
	a.now = a.clock.Now
	return a
}

// stoppingWork is what the bench finishes after Ctrl-C, revoking the
// chatter IDs it issued, and what a second one leaves: the IDs, valid for
// a.ttl (longer than benchIDTTL when paced), said in whole minutes
// rounded up.
func (a *storeAuth) stoppingWork() cmdutil.Work {
	minutes := int(math.Ceil(a.ttl.Minutes()))
	return cmdutil.Work{
		What: "revoking the chatter IDs the bench issued, for at most a minute",
		Left: fmt.Sprintf("the chatter IDs the bench issued are not revoked: each expires by itself within %d minutes of being issued", minutes),
	}
}

func (a *storeAuth) query(ctx context.Context, i int, topic string) (string, error) {
	geek := fmt.Sprintf("bench-%s-%d", a.run, i)
	// Each bench geek is new and gets one ID: no count of its live IDs,
	// which would double the round trips to the store.
	secret, c, err := store.IssueChatterIDWithin(ctx, a.s, geek, a.ttl, a.now(), 0)
	if err != nil {
		return "", fmt.Errorf("issuing a chatter ID for the bench: %w", err)
	}
	a.mu.Lock()
	a.issued = append(a.issued, c)
	a.mu.Unlock()
	return "?geek=" + url.QueryEscape(geek) + "&id=" + url.QueryEscape(secret) + "&topic=" + url.QueryEscape(topic), nil
}

// revoke revokes the chatter IDs a issued, within revokeBound even once
// ctx is cancelled (Ctrl-C). What it cannot revoke is a warning on
// stderr, not a failed bench: those IDs expire on their own.
func (a *storeAuth) revoke(ctx context.Context, ios *iostreams.IOStreams) {
	a.mu.Lock()
	issued := a.issued
	a.mu.Unlock()
	if len(issued) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), revokeBound)
	defer cancel()
	var (
		next     atomic.Int64
		mu       sync.Mutex
		failed   int
		firstErr error
		expires  time.Time
		wg       sync.WaitGroup
	)
	for range min(revokeWorkers, len(issued)) {
		wg.Go(func() {
			for {
				i := int(next.Add(1) - 1)
				if i >= len(issued) {
					return
				}
				c := issued[i]
				if _, err := a.s.RevokeChatterIDs(ctx, c.Geek, []string{c.Hash}); err != nil {
					mu.Lock()
					failed++
					if firstErr == nil {
						firstErr = err
					}
					expires = later(expires, c.ExpiresAt)
					mu.Unlock()
				}
			}
		})
	}
	wg.Wait()
	if failed > 0 {
		fmt.Fprintf(ios.ErrOut, "warning: %s the bench issued %s not revoked (%v); they expire at %s\n",
			text.Pluralize(failed, "chatter ID"), text.WasWere(failed), firstErr, expires.UTC().Format(time.RFC3339))
	}
}

func later(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

func newRunID() string {
	var b [4]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// probe is a bench message: the run, the phase and a sequence number.
type probe struct {
	Bench string `json:"bench"`
	Seq   int    `json:"seq"`
}

var dialer = &websocket.Dialer{
	HandshakeTimeout: 30 * time.Second,
	ReadBufferSize:   1024,
	WriteBufferSize:  1024,
}

// progress shows which phase bench is in: cmdutil.Progress's spinner on
// terminals, nothing with --json or off a terminal (cmdutil.NewProgress;
// the results are the output, and a line per step would drown them). The
// zero progress shows nothing.
type progress struct{ p *cmdutil.Progress }

func newProgress(opts *Options, now func() time.Time) progress {
	if p := cmdutil.NewProgress(opts.IO, opts.JSON, now); p.Spinning() {
		return progress{p}
	}
	return progress{}
}

func (p progress) printf(format string, args ...any) {
	if p.p != nil {
		p.p.Transient(fmt.Sprintf(format, args...))
	}
}

// warnf writes a line of its own on stderr: over the spinner's line on a
// terminal, which goes on below it.
func (p progress) warnf(errOut io.Writer, format string, args ...any) {
	if p.p != nil {
		p.p.Printf(format, args...)
		return
	}
	fmt.Fprintf(errOut, format, args...)
}

func (p progress) done() {
	if p.p != nil {
		p.p.Stop()
	}
}

func measure(ctx context.Context, opts *Options, p plan, run string) (Result, error) {
	res := Result{URL: p.wsURL, Remote: p.remote, Paced: p.pace.connectsPerSecond > 0 || p.pace.deliveriesPerSecond > 0, Connections: opts.Connections}
	prog := newProgress(opts, p.now)
	defer prog.done()
	topicLat, topicFan := "bench-"+run+"-lat", "bench-"+run+"-fan"
	connects := newPacer(p.pace.connectsPerSecond, p.now, p.sleep)
	posts := newPacer(p.pace.deliveriesPerSecond, p.now, p.sleep)

	// Latency: one listener, one message at a time. A phase that ends
	// early reports nothing: the message that did not arrive is the
	// slowest, and percentiles without it would flatter the target.
	if opts.Samples > 0 || opts.IdleSamples > 0 {
		lat, err := latency(ctx, opts, p, run, topicLat, prog, posts)
		if err != nil {
			return res, err
		}
		res.Latency = lat
	}

	// Memory before, connects, memory after.
	var before int64
	if p.pid != 0 {
		// Settled as the figure after is: a gateway just started, or
		// just done with the latency listener, is still moving.
		prog.printf("reading the gateway's memory (pid %d) before the clients", p.pid)
		var err error
		if before, err = settledRSS(ctx, p); err != nil {
			return res, err
		}
	}
	d := &deliveries{seq: -1}
	clients, elapsed, err := connectAll(ctx, opts, p, run, topicFan, prog, d, connects)
	defer func() {
		for _, c := range clients {
			if c != nil {
				c.Close()
			}
		}
	}()
	for _, c := range clients {
		if c != nil {
			res.Connected++
		}
	}
	if err != nil {
		return res, err
	}
	res.Connects = float64(opts.Connections) / elapsed.Seconds()
	if p.pid != 0 {
		// Let the gateway settle (the last $connect writes, buffers).
		prog.printf("reading the gateway's memory (pid %d) with %d idle clients", p.pid, opts.Connections)
		after, err := settledRSS(ctx, p)
		if err != nil {
			return res, err
		}
		// Divided by clients the server no longer holds, the figure
		// would be too low.
		if err := d.overLimit(); err != nil {
			return res, fmt.Errorf("memory per connection not measured: %w", err)
		}
		if c := d.closedCount(); c > 0 {
			return res, fmt.Errorf("the server closed %d of the %d idle connections before their memory was read: memory per connection not measured", c, opts.Connections)
		}
		if after < before {
			// The gateway gave memory back (a GC) as the clients came:
			// noise larger than what they cost, not a negative cost.
			prog.warnf(opts.IO.ErrOut, "warning: memory per connection not measured: the gateway's resident memory fell (%d → %d KiB) while %d clients connected; more --connections make it tell\n", before, after, opts.Connections)
		} else {
			res.Memory = &Memory{PID: p.pid, BeforeKiB: before, AfterKiB: after, PerConnection: float64(after-before) / float64(opts.Connections)}
		}
	}

	// Fan-out: each message to every client, the next once all have it.
	var total time.Duration
	for i := range opts.Fanouts {
		prog.printf("fan-out %d/%d to %d clients", i+1, opts.Fanouts, opts.Connections)
		// Spaced so that the posts behind the fan-outs stay under the
		// rate on average.
		if err := posts.wait(ctx, opts.Connections); err != nil {
			return res, err
		}
		done, failed, err := d.expect(i, opts.Connections)
		if err != nil {
			return res, fmt.Errorf("fan-out %d: %w", i+1, err)
		}
		body, _ := json.Marshal(probe{Bench: run, Seq: i})
		start := p.now()
		if err := p.publish(ctx, topicFan, body); err != nil {
			return res, err
		}
		select {
		case <-done:
		case <-failed:
			if err := d.overLimit(); err != nil {
				return res, fmt.Errorf("fan-out %d: %w", i+1, err)
			}
			return res, fmt.Errorf("fan-out %d: the server closed %d of the %d connections, %d of them before this message reached them", i+1, d.closedCount(), opts.Connections, d.missingCount())
		case <-time.After(opts.Timeout):
			return res, fmt.Errorf("fan-out %d: %d of %d clients received the message within %s: %s", i+1, d.gotCount(), opts.Connections, opts.Timeout, p.lost)
		case <-ctx.Done():
			return res, ctx.Err()
		}
		total += p.now().Sub(start)
		res.FanOut.Publishes++
		res.FanOut.Deliveries += opts.Connections
		res.FanOut.PerSecond = float64(res.FanOut.Deliveries) / total.Seconds()
	}
	return res, nil
}

// deliveries counts, for the fan-out in progress, the clients that have
// its message: a client's first copy of it, never a repeat, another frame
// or another run's message. A client whose connection ends without it
// fails the fan-out at once: it can no longer arrive.
type deliveries struct {
	mu      sync.Mutex
	seq     int // the fan-out in progress; -1 before the first
	got     int
	want    int
	done    chan struct{} // closed once got reaches want
	failed  chan struct{} // closed once missing is above 0
	closed  int           // clients whose connection ended
	missing int           // of those, while seq was in progress and without it
	tooBig  error         // the first client's message over readLimit
}

// expect starts fan-out seq to want clients. It fails when a connection
// has already ended: that client cannot receive it.
func (d *deliveries) expect(seq, want int) (done, failed <-chan struct{}, err error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.tooBig != nil {
		return nil, nil, d.tooBig
	}
	if d.closed > 0 {
		return nil, nil, fmt.Errorf("the server closed %d of the %d connections before it was published", d.closed, want)
	}
	d.seq, d.got, d.want, d.missing = seq, 0, want, 0
	d.done, d.failed = make(chan struct{}), make(chan struct{})
	return d.done, d.failed, nil
}

// message records a client's first copy of message seq.
func (d *deliveries) message(seq int) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if seq != d.seq || d.done == nil {
		return
	}
	d.got++
	if d.got == d.want {
		close(d.done)
	}
}

// ended records a client's connection ending with err; last is the last
// message it received.
func (d *deliveries) ended(last int, err error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.closed++
	if d.tooBig == nil {
		d.tooBig = tooBig(err)
	}
	if d.failed != nil && d.seq >= 0 && last < d.seq {
		d.missing++
		if d.missing == 1 {
			close(d.failed)
		}
	}
}

func (d *deliveries) closedCount() int  { d.mu.Lock(); defer d.mu.Unlock(); return d.closed }
func (d *deliveries) missingCount() int { d.mu.Lock(); defer d.mu.Unlock(); return d.missing }
func (d *deliveries) gotCount() int     { d.mu.Lock(); defer d.mu.Unlock(); return d.got }
func (d *deliveries) overLimit() error  { d.mu.Lock(); defer d.mu.Unlock(); return d.tooBig }

// pacer spaces events to at most rate a second: each starts no sooner
// than 1/rate after the one before it, however late that one started. A
// schedule fixed at the start (event i at start + i/rate) let the events
// held up behind a stall go all at once when it cleared: a burst far
// above the rate. A pacer of rate 0 does not wait.
type pacer struct {
	interval time.Duration
	now      func() time.Time
	sleep    func(context.Context, time.Duration) error

	mu   sync.Mutex
	next time.Time
}

func newPacer(rate float64, now func() time.Time, sleep func(context.Context, time.Duration) error) *pacer {
	p := &pacer{now: now, sleep: sleep}
	if rate > 0 {
		// Rounded up: never a little faster than the rate.
		p.interval = time.Duration(math.Ceil(float64(time.Second) / rate))
	}
	return p
}

// wait waits for the turn of n events together (the posts of one
// fan-out), and holds the next turn back by n intervals.
func (p *pacer) wait(ctx context.Context, n int) error {
	if p.interval == 0 {
		return ctx.Err()
	}
	p.mu.Lock()
	now := p.now()
	at := p.next
	if at.Before(now) {
		at = now
	}
	p.next = at.Add(time.Duration(n) * p.interval)
	p.mu.Unlock()
	return p.sleep(ctx, at.Sub(now))
}

// latency measures publish-to-receive times with one listener.
func latency(ctx context.Context, opts *Options, p plan, run, topic string, prog progress, posts *pacer) (Latency, error) {
	q, err := p.query(ctx, 0, topic)
	if err != nil {
		return Latency{}, err
	}
	ws, err := dial(ctx, p.wsURL, q, opts.Timeout)
	if err != nil {
		return Latency{}, err
	}
	// The reader hands on each message of this run once, the first copy
	// in order: a repeat or an older one is dropped as it is read, as the
	// fan-out's clients drop them. Handed on, a target's flood of repeats
	// filled got while nothing read it (a publish, a silence), the reader
	// stopped reading, and a target that posts as it publishes (a
	// ceiling) hung the bench in the publish. When the phase returns, the
	// reader ends: stop frees it from a send, the close from a read.
	got := make(chan int, 16)
	stop, readerDone := make(chan struct{}), make(chan struct{})
	var ended error // why got was closed
	defer func() {
		close(stop)
		ws.Close()
		<-readerDone
	}()
	go func() {
		defer close(readerDone)
		defer close(got)
		last := math.MinInt
		for {
			_, data, err := ws.ReadMessage()
			if err != nil {
				ended = err
				return
			}
			var m probe
			if json.Unmarshal(data, &m) != nil || m.Bench != run || m.Seq <= last {
				continue
			}
			last = m.Seq
			select {
			case got <- m.Seq:
			case <-stop:
				return
			}
		}
	}()
	// A first message that is not timed: the listener's subscription is
	// in place once it arrives.
	if err := p.publish(ctx, topic, mustJSON(probe{Bench: run, Seq: -1})); err != nil {
		return Latency{}, err
	}
	if err := awaitSeq(ctx, got, &ended, -1, opts.Timeout, p.lost); err != nil {
		return Latency{}, err
	}
	one := func(seq int) (time.Duration, error) {
		start := p.now()
		if err := p.publish(ctx, topic, mustJSON(probe{Bench: run, Seq: seq})); err != nil {
			return 0, err
		}
		if err := awaitSeq(ctx, got, &ended, seq, opts.Timeout, p.lost); err != nil {
			return 0, err
		}
		return p.now().Sub(start), nil
	}
	times := make([]time.Duration, 0, opts.Samples)
	for i := range opts.Samples {
		prog.printf("latency %d/%d", i+1, opts.Samples)
		if err := posts.wait(ctx, 1); err != nil {
			return Latency{}, err
		}
		d, err := one(i)
		if err != nil {
			return Latency{}, err
		}
		times = append(times, d)
	}
	var lat Latency
	if len(times) > 0 {
		lat = Latency{Samples: len(times), P50: quantileMs(times, 0.50), P95: quantileMs(times, 0.95), P99: quantileMs(times, 0.99), Max: quantileMs(times, 1)}
	}
	var idle []time.Duration
	for i := range opts.IdleSamples {
		prog.printf("latency after %s idle %d/%d", opts.Idle, i+1, opts.IdleSamples)
		if err := silence(ctx, p, ws, opts.Idle); err != nil {
			return Latency{}, err
		}
		d, err := one(opts.Samples + i)
		if err != nil {
			return Latency{}, err
		}
		idle = append(idle, d)
	}
	if len(idle) > 0 {
		lat.AfterIdle = &AfterIdle{Samples: len(idle), IdleMs: float64(opts.Idle) / float64(time.Millisecond), P50: quantileMs(idle, 0.50), Max: quantileMs(idle, 1)}
	}
	return lat, nil
}

// keepalive is the longest the latency listener stays silent: listen's
// ping interval (listen.DefaultPingInterval), well under API Gateway's
// 10-minute idle timeout (pubsub.IdleTimeout), which --idle may reach.
const keepalive = time.Minute

// silence waits d before an --idle-samples sample, pinging ws every
// keepalive meanwhile: a WebSocket ping, listen's keepalive, which API
// Gateway answers itself, so that no route (no Lambda) runs and the
// stack stays as idle as the sample is to find it. A silent listener was
// closed by the idle timeout as --idle 10m ended. A ping that cannot be
// written is not an error here: the reader sees the connection end.
func silence(ctx context.Context, p plan, ws *websocket.Conn, d time.Duration) error {
	for left := d; left > 0; left -= keepalive {
		if err := p.sleep(ctx, min(left, keepalive)); err != nil {
			return err
		}
		if left > keepalive {
			_ = ws.WriteControl(websocket.PingMessage, []byte("socks-bench"), time.Now().Add(writeWait))
		}
	}
	return nil
}

// writeWait bounds the write of a keepalive ping.
const writeWait = 10 * time.Second

// quantileMs is the q quantile of ds (sorted in place), in milliseconds:
// the nearest rank, so a p99 of fewer than 100 samples is the slowest.
func quantileMs(ds []time.Duration, q float64) float64 {
	slices.Sort(ds)
	i := int(q*float64(len(ds))+0.999999) - 1
	i = max(0, min(i, len(ds)-1))
	return float64(ds[i]) / float64(time.Millisecond)
}

// awaitSeq waits for message seq; lost is the advice when it does not
// arrive in time. got gives each message once, in increasing order, so
// the loop takes at most seq+2 of them (-1 is the first) before seq or a
// later one: a message not yet published, which only a target that makes
// them up sends, and after which seq would be dropped as older.
func awaitSeq(ctx context.Context, got <-chan int, ended *error, seq int, timeout time.Duration, lost string) error {
	t := time.NewTimer(timeout)
	defer t.Stop()
	for {
		select {
		case s, ok := <-got:
			if !ok {
				if err := tooBig(*ended); err != nil {
					return fmt.Errorf("the latency listener: %w", err)
				}
				return errors.New("the server closed the latency listener's connection")
			}
			switch {
			case s == seq:
				return nil
			case s > seq:
				waiting := fmt.Sprintf("message %d", seq+1)
				if seq < 0 {
					waiting = "its first message, untimed"
				}
				return fmt.Errorf("the server sent the latency listener message %d of this bench before it was published (waiting for %s): it makes up messages, and the bench cannot time it", s+1, waiting)
			}
		case <-t.C:
			if seq < 0 {
				return fmt.Errorf("the latency listener's first message (untimed) did not arrive within %s: %s", timeout, lost)
			}
			return fmt.Errorf("latency message %d did not arrive within %s: %s", seq+1, timeout, lost)
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

func mustJSON(v any) []byte {
	b, _ := json.Marshal(v)
	return b
}

// connectAll opens the clients, Dialers at once, paced by connects, and
// returns them (nil where a client did not connect) with the time the
// connects took (chatter IDs are issued before the clock starts). Each
// client's messages of this run go to d, once each: other frames (error
// frames, junk) and repeats are not deliveries. The first connect that
// fails stops the others (a target that refuses or throttles is not
// pressed further); the error says how many had connected.
func connectAll(ctx context.Context, opts *Options, p plan, run, topic string, prog progress, d *deliveries, connects *pacer) ([]*websocket.Conn, time.Duration, error) {
	n := opts.Connections
	queries, err := issueAll(ctx, opts, p, topic, prog)
	if err != nil {
		return nil, 0, err
	}
	conns := make([]*websocket.Conn, n)
	var next, done, failed atomic.Int64
	var firstErr error
	var errOnce sync.Once
	var wg sync.WaitGroup
	start := p.now()
	for range min(opts.Dialers, n) {
		wg.Go(func() {
			for {
				i := int(next.Add(1) - 1)
				if i >= n || ctx.Err() != nil {
					return
				}
				if connects.wait(ctx, 1) != nil {
					return
				}
				ws, err := dial(ctx, p.wsURL, queries[i], opts.Timeout)
				if err != nil {
					failed.Add(1)
					errOnce.Do(func() { firstErr = err })
					next.Store(int64(n)) // stop the other dialers
					return
				}
				conns[i] = ws
				go func() {
					last := -1
					for {
						_, data, err := ws.ReadMessage()
						if err != nil {
							d.ended(last, err)
							ws.Close()
							return
						}
						var m probe
						if json.Unmarshal(data, &m) == nil && m.Bench == run && m.Seq > last {
							last = m.Seq
							d.message(m.Seq)
						}
					}
				}()
				prog.printf("connecting %d/%d", done.Add(1), n)
			}
		})
	}
	wg.Wait()
	elapsed := p.now().Sub(start)
	switch {
	case ctx.Err() != nil:
		return conns, elapsed, ctx.Err()
	case firstErr != nil:
		return conns, elapsed, fmt.Errorf("%w (%d of %d clients had connected; %s failed)", firstErr, done.Load(), n, text.Pluralize(int(failed.Load()), "connect"))
	}
	return conns, elapsed, nil
}

// issueWorkers bounds the chatter IDs issued at once.
const issueWorkers = 16

// issueAll returns the query of each of the Connections clients (a
// chatter ID each), issued several at once: one at a time, a store in
// another region (tens of ms a round trip) kept thousands of clients
// waiting for minutes before the first connect. The first error stops the
// others.
func issueAll(ctx context.Context, opts *Options, p plan, topic string, prog progress) ([]string, error) {
	n := opts.Connections
	queries := make([]string, n)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		next, issued atomic.Int64
		errOnce      sync.Once
		firstErr     error
		wg           sync.WaitGroup
	)
	for range min(opts.Dialers, issueWorkers, n) {
		wg.Go(func() {
			for {
				i := int(next.Add(1) - 1)
				if i >= n || ctx.Err() != nil {
					return
				}
				q, err := p.query(ctx, i+1, topic)
				if err != nil {
					errOnce.Do(func() { firstErr = err; cancel() })
					return
				}
				queries[i] = q
				prog.printf("issuing chatter IDs %d/%d", issued.Add(1), n)
			}
		})
	}
	wg.Wait()
	if firstErr != nil {
		return nil, firstErr
	}
	return queries, ctx.Err()
}

// dial opens one client of wsURL (with query q) within timeout. The
// dialer's context bounds the handshake only by its deadline; a cancelled
// ctx (Ctrl-C) also ends a handshake that a target never answers.
func dial(ctx context.Context, wsURL, q string, timeout time.Duration) (*websocket.Conn, error) {
	dctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	d := *dialer
	d.NetDialContext = netDial
	// DialWith: the answer to the handshake bounded, an extension or a
	// subprotocol not offered refused (a deflate bomb past readLimit), and
	// a handshake the target holds ended when dctx ends (Ctrl-C): the
	// dialer itself watches dctx only until the TCP connection is made.
	ws, resp, err := wsclient.DialWith(dctx, &d, wsURL+q, nil)
	if err != nil && resp != nil && resp.StatusCode != http.StatusSwitchingProtocols {
		// What the server answered, as the other clients of socks say it.
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 1024))
		resp.Body.Close()
		err = &wsclient.HandshakeError{Status: resp.StatusCode, Reason: strings.TrimSpace(string(body))}
	}
	if err == nil {
		ws.SetReadLimit(readLimit)
	}
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		if dctx.Err() != nil || errors.Is(err, os.ErrDeadlineExceeded) {
			return nil, fmt.Errorf("cannot connect to %s: no answer within %s", wsURL, min(timeout, dialer.HandshakeTimeout))
		}
		return nil, fmt.Errorf("cannot connect to %s: %w", wsURL, wsclient.InUsersWords(err, "during the handshake"))
	}
	return ws, nil
}

// netDial opens a client's TCP connection. A --url on "localhost." (this
// machine: not paced) is dialled on localhost: Go would look it up in
// DNS. Tests replace it.
var netDial = loopback.Dial(nil)

// readLimit is the largest message a client accepts, as listen's
// (wsclient): twice what API Gateway delivers, so that a target that
// sends more is reported rather than held.
const readLimit = wsclient.DefaultReadLimit

// tooBig is, when err is a client's read of a message over readLimit, the
// error that says so in the user's words; nil otherwise.
func tooBig(err error) error {
	if !errors.Is(err, websocket.ErrReadLimit) {
		return nil
	}
	return fmt.Errorf("the server sent a message over %d bytes, the most a bench client accepts (API Gateway delivers at most %d bytes a message)", readLimit, pubsub.MaxMessageBytes)
}

func sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// settledRSS reads a process's resident set size until it stops moving:
// two reads in a row, a quarter of a second apart, within 0.5% (or
// 64 KiB) of the one before, or the last of 20 reads (5 s).
func settledRSS(ctx context.Context, p plan) (int64, error) {
	prev, err := p.rss(p.pid)
	if err != nil {
		return 0, err
	}
	steady := 0
	for range 20 {
		if err := p.sleep(ctx, 250*time.Millisecond); err != nil {
			return 0, err
		}
		cur, err := p.rss(p.pid)
		if err != nil {
			return 0, err
		}
		d := cur - prev
		if d < 0 {
			d = -d
		}
		if d <= max(64, cur/200) {
			steady++
		} else {
			steady = 0
		}
		prev = cur
		if steady == 2 {
			break
		}
	}
	return prev, nil
}

// Decimals the figures of --json keep (docs/json.md): rates to 0.1 per
// second, milliseconds to the microsecond, KiB to 0.01 KiB. The clock and
// /proc back no more.
const (
	rateDecimals = 1
	msDecimals   = 3
	kibDecimals  = 2
)

// rounded returns r with its figures rounded for printing.
func (r Result) rounded() Result {
	r.Connects = roundFigure(r.Connects, rateDecimals)
	r.FanOut.PerSecond = roundFigure(r.FanOut.PerSecond, rateDecimals)
	l := &r.Latency
	for _, f := range []*float64{&l.P50, &l.P95, &l.P99, &l.Max} {
		*f = roundFigure(*f, msDecimals)
	}
	if l.AfterIdle != nil {
		a := *l.AfterIdle
		for _, f := range []*float64{&a.IdleMs, &a.P50, &a.Max} {
			*f = roundFigure(*f, msDecimals)
		}
		l.AfterIdle = &a
	}
	if r.Memory != nil {
		m := *r.Memory
		m.PerConnection = roundFigure(m.PerConnection, kibDecimals)
		r.Memory = &m
	}
	return r
}

// roundFigure rounds v to decimals places, or to three significant digits
// when that keeps more: a small figure (0.04 connects/s) is not printed as
// 0, which reads "not measured".
func roundFigure(v float64, decimals int) float64 {
	if v == 0 || math.IsInf(v, 0) || math.IsNaN(v) {
		return v
	}
	if d := 2 - int(math.Floor(math.Log10(math.Abs(v)))); d > decimals {
		decimals = d
	}
	p := math.Pow10(decimals)
	return math.Round(v*p) / p
}

// rssKiB reads a process's resident set size from /proc (Linux).
func rssKiB(pid int) (int64, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, fmt.Errorf("cannot read the memory of process %d (memory is measured on Linux, for a gateway on this machine): %w", pid, err)
	}
	for _, line := range strings.Split(string(data), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			f := strings.Fields(rest)
			if len(f) >= 1 {
				return strconv.ParseInt(f[0], 10, 64)
			}
		}
	}
	return 0, fmt.Errorf("process %d reports no resident memory", pid)
}

func printResult(opts *Options, res Result) error {
	if opts.JSON {
		return cmdutil.PrintJSON(opts.IO.Out, res.rounded())
	}
	u := ui.New(opts.IO)
	// A figure that was not measured is a dash, not a zero.
	fig := func(measured bool, format string, v float64) string {
		if !measured {
			return "—"
		}
		return fmt.Sprintf(format, v)
	}
	lat := res.Latency
	connectsHow := fmt.Sprintf("%d clients, %d dialers", res.Connections, opts.Dialers)
	if pace, _ := Pace(res.Remote, opts.NoPace, opts.ConnectRate); pace > 0 {
		// The figure is then the pace, not what the target can do.
		connectsHow += fmt.Sprintf(", paced to at most %.0f/s", pace)
	}
	if res.Connected < res.Connections {
		connectsHow = fmt.Sprintf("%d of %d clients connected", res.Connected, res.Connections)
	}
	// Nearest rank: with fewer than 1/(1-q) samples the quantile is the
	// slowest sample.
	rankHow := func(q float64) string {
		if lat.Samples > 0 && float64(lat.Samples) < 1/(1-q)-1e-9 {
			return fmt.Sprintf("the slowest: fewer than %.0f samples", 1/(1-q))
		}
		return ""
	}
	rows := [][]string{
		{"connects/s", fig(res.Connects > 0, "%.0f", res.Connects), connectsHow},
		{"fan-out deliveries/s", fig(res.FanOut.Publishes > 0, "%.0f", res.FanOut.PerSecond), text.Pluralize(res.FanOut.Publishes, "message") + " to every client"},
		{"publish→receive p50", fig(lat.Samples > 0, "%.1f ms", lat.P50), text.Pluralize(lat.Samples, "sample")},
		{"publish→receive p95", fig(lat.Samples > 0, "%.1f ms", lat.P95), rankHow(0.95)},
		{"publish→receive p99", fig(lat.Samples > 0, "%.1f ms", lat.P99), rankHow(0.99)},
	}
	if a := lat.AfterIdle; a != nil {
		rows = append(rows, []string{"publish→receive after idle, p50 / max", fmt.Sprintf("%.1f / %.1f ms", a.P50, a.Max), fmt.Sprintf("%s, each after %s of silence", text.Pluralize(a.Samples, "sample"), opts.Idle)})
	}
	if m := res.Memory; m != nil {
		rows = append(rows, []string{"memory per idle connection", fmt.Sprintf("%.1f KiB", m.PerConnection), fmt.Sprintf("resident (RSS, no GC forced) of pid %d: %d → %d KiB", m.PID, m.BeforeKiB, m.AfterKiB)})
	}
	incomplete := ""
	if !res.Complete {
		incomplete = "incomplete: the bench ended early, see the error; a dash was not measured"
	}
	if !u.Styled() {
		// Piped, every line is a row, the header first: the URL is one.
		rows = append([][]string{{"url", res.URL, incomplete}}, rows...)
		return u.Table([]string{"MEASURE", "VALUE", "HOW"}, rows)
	}
	head := res.URL
	if incomplete != "" {
		head += " (" + incomplete + ")"
	}
	fmt.Fprintln(opts.IO.Out, head)
	return u.Table([]string{"MEASURE", "VALUE", "HOW"}, rows)
}
