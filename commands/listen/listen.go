// Package listen implements `socks listen`: see what a browser would see.
package listen

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/socks-dev/socks/backend"
	"github.com/socks-dev/socks/commands/cmdutil"
	"github.com/socks-dev/socks/iostreams"
	"github.com/socks-dev/socks/pubsub"
	"github.com/socks-dev/socks/wsclient"
)

// Defaults of the connection-keeping flags.
const (
	// DefaultMaxConnection renews a connection before API Gateway's 2-hour
	// cap ends it.
	DefaultMaxConnection = pubsub.MaxConnectionDuration - 5*time.Minute
	// DefaultPingInterval keeps the connection well inside the 10-minute
	// idle timeout and notices a dead one within one and a half intervals.
	DefaultPingInterval = time.Minute
	// MinPingInterval and MinMaxConnection bound --ping-interval and
	// --max-connection from below: 1ms flooded the gateway with pings, or
	// with fresh connections, a thousand a second. A renewal every few
	// seconds stays possible, to see a client through one.
	MinPingInterval  = time.Second
	MinMaxConnection = time.Second
	// DefaultMaxRetries is how many reconnects in a row may fail.
	DefaultMaxRetries = 10
)

// Conn is what listen needs of a connection; *wsclient.Conn has it.
type Conn interface {
	Frames() <-chan wsclient.Frame
	Pongs() <-chan time.Duration
	Err() error
	// TrySendJSON queues a frame without waiting (wsclient.ErrSendQueueFull
	// when the gateway is not reading): the loop that sends it also shows
	// what arrives.
	TrySendJSON(v any) error
	Close() error
}

// DialFunc opens a connection.
type DialFunc func(ctx context.Context, url string, opts wsclient.Options) (Conn, error)

func dialWS(ctx context.Context, url string, opts wsclient.Options) (Conn, error) {
	c, err := wsclient.Dial(ctx, url, opts)
	if err != nil {
		return nil, err // not a typed nil in the interface
	}
	return c, nil
}

// Options are the inputs of `socks listen`.
type Options struct {
	IO      *iostreams.IOStreams
	Backend func(context.Context) (*backend.Backend, error)
	Now     func() time.Time
	// Version goes into the User-Agent header as "socks/VERSION".
	Version string
	// Stopping records the chatter ID listen issued while it is to be
	// revoked, for what Main says on Ctrl-C.
	Stopping *cmdutil.Stopping
	// Dial connects (default wsclient.Dial); tests pass a fake.
	Dial DialFunc
	// Backoff paces reconnects (zero value: 0.5 s doubling up to 30 s).
	Backoff Backoff

	Geek   string
	Topics []string
	URL    string
	ID     string
	// IDFile names a file holding the chatter ID, so that it stays off
	// argv; the environment variable ChatterIDEnv does the same.
	IDFile string
	Getenv func(string) string
	// idTaken is set once completeID has taken the chatter ID from its
	// source, so that completing again (RunE, then listenRun) does not
	// count the ID it took as a second source.
	idTaken bool
	// idFrom names where the chatter ID came from ("--id", "--id-file
	// F", "$SOCKS_CHATTER_ID"), for the hint of a refusal.
	idFrom        string
	Count         int
	Timeout       time.Duration
	Until         string
	JSON          bool
	NoInput       bool
	ShowPing      bool
	MaxRetries    int
	MaxConnection time.Duration
	PingInterval  time.Duration
	Headers       []string
	Subprotocols  []string
	// IDIn is where the chatter ID travels: IDInHeader (the default, "")
	// or IDInQuery.
	IDIn     string
	Origin   string
	Insecure bool

	// Set by complete.
	until  *regexp.Regexp
	header http.Header
	// loc is the time zone of terminal timestamps (default time.Local).
	loc *time.Location
	// after waits before a reconnect (default time.After); tests record
	// the waits instead.
	after func(time.Duration) <-chan time.Time
	// renewAfter waits before a renewal: --max-connection after a
	// connection opened, or renewRetry (or longer, as a gateway's
	// Retry-After asks) after a renewal failed (default time.After);
	// tests renew when they choose, not when a wall-clock window a loaded
	// machine can outlast ends.
	renewAfter func(time.Duration) <-chan time.Time
	// closeGrace is how long closing waits for the gateway's answer to
	// the close frame (default wsclient's); tests make it long.
	closeGrace time.Duration
}

// Where listen presents its chatter ID (--id-in).
const (
	// IDInHeader offers it as a WebSocket subprotocol next to "socks"
	// (Sec-WebSocket-Protocol: socks, ID), out of the URL and so out of
	// the access logs of whatever is on the way: the default.
	IDInHeader = "header"
	// IDInQuery puts it in the connect URL's ?id=, for a path that drops
	// Sec-WebSocket-Protocol.
	IDInQuery = "query"
)

// NewCmdListen returns `socks listen`.
func NewCmdListen(f *cmdutil.Factory, runF func(context.Context, *Options) error) *cobra.Command {
	opts := &Options{IO: f.IOStreams, Backend: f.StackBackend(cmdutil.NeedState, "nothing was connected"), Now: f.Now, Version: f.Build.Version, Getenv: f.Getenv, Stopping: f.Stopping}
	cmd := &cobra.Command{
		Use:   "listen --geek NAME [--topic T]...",
		Short: "Connect as a geek and print every message that arrives",
		Long: `Listen connects to the gateway the way a browser does and prints every
message it receives.

The URL is the running local gateway's (or the configured backend's), or
--url. The chatter ID is read from --id-file, or $SOCKS_CHATTER_ID, or --id
(which other local users can see in the process list); without any, listen
issues a short-lived one itself, issues a new one if it expired before a
reconnect (by this machine's clock, or by the gateway's, once, when the
gateway refuses it as expired), and revokes it on exit. A chatter ID is
never echoed. Only ASCII spaces and tabs around it, and a line's end, are
taken off it: one holding anything else (a no-break space or a zero-width
space that came with a paste) is refused, naming that character. The ID
travels in Sec-WebSocket-Protocol (next to "socks"), out of URLs and
access logs; --id-in query puts it in ?id= for a path that drops that
header.

On a terminal: a header, then each message with its time (and topic when
known: the body's own "topic" field, or the one topic followed), JSON
pretty-printed and coloured, binary or non-UTF-8 data as a hex dump, and
what the terminal would act on or what hides in text shown escaped
(control characters, bidi controls, zero-width spaces: \x1b, \u202e,
\u200b; in a topic, joiners too). State changes (connected, disconnected
with the close code, reconnecting in Ns) are shown as they happen.

Piped, or with --json: one JSON object per line on standard output, with
"time", "kind" ("message", "reply", and with --json also "state",
"ping" and "error"), and "body" (JSON), "text" (other UTF-8) or "base64"
(binary, with "binary": true, or text that is not UTF-8); "topic" when
known. A "state" line has "state": "connected" (with "url", "geek" and
"topics"), "disconnected" (with the close "code" and "reason"),
"reconnecting" (with "retryInMs", "attempt" and "maxAttempts", 0 left
out), "renewing" or "closed" ("code" and "reason"); any of them may say
what failed in "error". A "ping" line has "rttMs". Piped without --json,
state and error lines go to standard error as text. An "error" line is
the gateway's own error frame (API Gateway's
{"message","connectionId","requestId"}) answering nothing typed: not a
message, so not counted by --count nor matched by --until.

Type while connected (unless --no-input, which background jobs want: the
terminal stops a background process that reads it; so do scripts, since
a piped standard input is read as typed lines too, and in a 'while read'
loop listen would take the loop's input):
  subscribe T [T...]     follow more topics
  unsubscribe T [T...]   stop following topics
  ping                   ask the gateway for a pong
  quit                   close and exit 0
The gateway's answers are shown. Topics followed this way are kept across
reconnects. A command typed while the gateway takes no data (16 frames
already wait to be written to it) is not sent, and listen says so. An answer
"this connection is not registered; reconnect" (the gateway lost the
connection's record: pruned, expired, its store wiped, so nothing published
reaches it) closes the connection and opens a fresh one, with the usual
backoff, following every topic.

Keeping the connection: a WebSocket ping every --ping-interval (the
gateway drops connections idle for 10 minutes), a fresh connection before
the gateway's 2-hour cap (--max-connection; a message both connections
carry while they overlap is shown once), and after a drop, reconnects
with exponential backoff and jitter (0.5 s doubling to 30 s). A reconnect
whose connection ends within 10 s counts as failed, so a gateway that
accepts and drops at once uses up --max-retries too. A refused upgrade
with Retry-After (a 503 from a gateway shutting down, a 429 at its
connection cap) is retried no sooner than it asks, up to 60 s. The first
connection is not retried. A refused upgrade (401/403) is never retried;
once a connection was open, any other refusal (a captive portal's 200, a
404 while the API is redeployed) is retried, saying its status, and
counts against --max-retries.
A message delivered while no connection is open is never shown: it
reaches the listeners connected then, and nothing keeps it for one that
is away (the disconnected and connected lines, on standard error when
piped without --json, say when).

Exit codes of listen:
  0    --count messages arrived, --until matched, quit, or Ctrl-C
  1    an error, or --max-retries reconnects in a row failed
  2    bad flags
  3    on the local backend, nothing has run with the state dir (a
       mistyped --state-dir; nothing is made there)
  4    --timeout passed without a message
  5    the gateway refused the connection (401/403)
  130  a second Ctrl-C (143: a second SIGTERM) stopped it at once, before
       it revoked the chatter ID it issued: that one expires by itself
       within the hour, and listen says which it is`,
		Example: `  socks listen --geek Friendless --topic updates
  socks listen --geek Friendless --json | jq --unbuffered 'select(.kind == "message") | .body'
  socks listen --geek Friendless --topic jobs --count 1 --timeout 30s
  socks listen --geek Friendless --until '"done"' --no-input
  socks listen --url wss://abc.execute-api.eu-west-1.amazonaws.com/prod \
    --geek Friendless --id-file ~/.socks-id -H 'X-Trace: 1'
  SOCKS_CHATTER_ID=$(socks chatter issue -g Friendless --ttl 1h) socks listen -g Friendless`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			// Each of these left out means something else: the backend's
			// gateway, an issued chatter ID, no Origin, no --until, the
			// chatter ID in the header.
			if err := cmdutil.NotEmpty(cmd, "url", "id", "id-file", "origin", "until", "id-in"); err != nil {
				return err
			}
			if err := checkIntervals(opts); err != nil {
				return err
			}
			if err := opts.complete(cmd.Context()); err != nil {
				return err
			}
			if runF != nil {
				return runF(cmd.Context(), opts)
			}
			return listenRun(cmd.Context(), opts)
		},
	}
	fl := cmd.Flags()
	fl.StringVarP(&opts.Geek, "geek", "g", "", "the user to connect as (required)")
	fl.StringArrayVarP(&opts.Topics, "topic", "t", nil, "topic to follow (repeatable, or a comma list; default '.', every topic)")
	fl.StringVar(&opts.URL, "url", "", "WebSocket URL, without ?geek, ?id or ?topic (default: the backend's; locally, the running 'socks serve')")
	fl.StringVar(&opts.ID, "id", "", "chatter ID to present; visible in the process list, prefer --id-file or $"+ChatterIDEnv+" (default: issue a short-lived one and revoke it on exit)")
	fl.StringVar(&opts.IDFile, "id-file", "", "read the chatter ID to present from this file (\"-\": standard input; on a terminal it asks for one line)")
	_ = cmd.MarkFlagFilename("id-file")
	fl.IntVarP(&opts.Count, "count", "n", 0, "exit 0 after this many messages (0: listen on)")
	fl.DurationVar(&opts.Timeout, "timeout", 0, "exit 4 when no message arrived for this long (restarts with each message; 0: wait for ever)")
	fl.StringVar(&opts.Until, "until", "", "exit 0 after a message whose body matches this regular expression")
	fl.BoolVar(&opts.JSON, "json", false, "print every event, state changes too, as one JSON object per line")
	fl.BoolVar(&opts.NoInput, "no-input", false, "do not read commands from standard input (for scripts)")
	fl.BoolVar(&opts.ShowPing, "show-ping", false, "show the round trip of each keepalive ping")
	fl.IntVar(&opts.MaxRetries, "max-retries", DefaultMaxRetries, "give up after this many failed reconnects in a row (0: never give up)")
	fl.DurationVar(&opts.MaxConnection, "max-connection", DefaultMaxConnection, "open a fresh connection after this long, at least "+MinMaxConnection.String()+" (0: never), before the gateway's 2 h cap")
	fl.DurationVar(&opts.PingInterval, "ping-interval", DefaultPingInterval, "keepalive ping interval, at least "+MinPingInterval.String()+" and under the 10 min idle timeout")
	fl.StringArrayVarP(&opts.Headers, "header", "H", nil, "extra handshake header 'Key: Value' (repeatable)")
	fl.StringArrayVar(&opts.Subprotocols, "subprotocol", nil, "WebSocket subprotocol to offer (repeatable)")
	fl.StringVar(&opts.IDIn, "id-in", IDInHeader, "where the chatter ID travels: header (Sec-WebSocket-Protocol, out of URLs and access logs) or query (?id=, for a proxy that drops that header)")
	fl.StringVar(&opts.Origin, "origin", "", "Origin header to send, as a browser on that site would")
	fl.BoolVar(&opts.Insecure, "insecure", false, "skip TLS certificate checks (wss:// test endpoints only)")
	_ = cmd.MarkFlagRequired("geek")
	return cmd
}

// checkIntervals refuses a --ping-interval or --max-connection below its
// minimum. It checks what the user typed, in RunE: the session's own tests
// run listenRun with shorter ones to see renewals without waiting minutes.
func checkIntervals(o *Options) error {
	switch {
	case o.PingInterval > 0 && o.PingInterval < MinPingInterval:
		return cmdutil.FlagErrorf("--ping-interval %s is too short: give at least %s (a ping that often floods the gateway)", o.PingInterval, MinPingInterval)
	case o.MaxConnection > 0 && o.MaxConnection < MinMaxConnection:
		return cmdutil.FlagErrorf("--max-connection %s is too short: give at least %s, or 0 to never renew (each renewal opens a fresh connection)", o.MaxConnection, MinMaxConnection)
	}
	return nil
}

// reservedHeaders are set by the WebSocket handshake itself.
var reservedHeaders = map[string]string{
	"Upgrade":                  "",
	"Connection":               "",
	"Sec-Websocket-Key":        "",
	"Sec-Websocket-Version":    "",
	"Sec-Websocket-Extensions": "",
	"Sec-Websocket-Protocol":   " (use --subprotocol)",
	"Origin":                   " (use --origin)",
}

var headerName = regexp.MustCompile("^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")

// complete checks the flags and derives what they imply. It may run more
// than once.
// ChatterIDEnv is the environment variable listen reads a chatter ID from.
const ChatterIDEnv = "SOCKS_CHATTER_ID"

// maxIDFileBytes bounds what --id-file reads: a chatter ID is 35 bytes.
const maxIDFileBytes = 4096

func (o *Options) complete(ctx context.Context) error {
	if err := pubsub.ValidateGeek(o.Geek); err != nil {
		return &cmdutil.FlagError{Err: err}
	}
	if err := o.completeID(ctx); err != nil {
		return err
	}
	topics, err := pubsub.TopicList(o.Topics)
	if err != nil {
		return &cmdutil.FlagError{Err: err}
	}
	if len(topics) == 0 {
		topics = []string{pubsub.AllTopics}
	}
	o.Topics = topics
	switch {
	case o.Count < 0:
		return cmdutil.FlagErrorf("--count must not be negative")
	case o.Timeout < 0:
		return cmdutil.FlagErrorf("--timeout must not be negative")
	case o.MaxRetries < 0:
		return cmdutil.FlagErrorf("--max-retries must not be negative (0 means never give up)")
	case o.MaxConnection < 0:
		return cmdutil.FlagErrorf("--max-connection must not be negative (0 means never renew)")
	case o.PingInterval <= 0 || o.PingInterval >= pubsub.IdleTimeout:
		return cmdutil.FlagErrorf("--ping-interval %s is out of range: give a duration above 0 and under the gateway's %s idle timeout", o.PingInterval, pubsub.IdleTimeout)
	}
	if o.URL != "" {
		// Before anything echoes the URL: a browser's connect URL, pasted,
		// holds the chatter ID. Its geek and topics would be replaced.
		if u, err := url.Parse(o.URL); err == nil {
			q := u.Query()
			switch {
			case q.Has("id"):
				return cmdutil.FlagErrorf("--url holds a chatter ID (?id=), which listen would show: give the gateway's address alone, and the ID with --id-file or $%s", ChatterIDEnv)
			case q.Has("geek"):
				return cmdutil.FlagErrorf("--url holds ?geek=: give the gateway's address alone, and the geek with --geek")
			case q.Has("topic"):
				return cmdutil.FlagErrorf("--url holds ?topic=: give the gateway's address alone, and the topics with --topic")
			}
		}
		if _, err := wsclient.ConnectURL(o.URL, "", "", nil); err != nil {
			return cmdutil.FlagErrorf("--url: %v", err)
		}
	}
	if o.Until != "" {
		re, err := regexp.Compile(o.Until)
		if err != nil {
			return cmdutil.FlagErrorf("--until is not a valid regular expression: %v", err)
		}
		o.until = re
	}
	o.header = http.Header{}
	for _, h := range o.Headers {
		k, v, ok := strings.Cut(h, ":")
		k, v = strings.TrimSpace(k), strings.TrimSpace(v)
		if !ok || !headerName.MatchString(k) {
			return cmdutil.FlagErrorf("--header %q: give it as 'Key: Value'", h)
		}
		k = http.CanonicalHeaderKey(k)
		if hint, ok := reservedHeaders[k]; ok {
			return cmdutil.FlagErrorf("--header %s: the WebSocket handshake sets this header itself%s", k, hint)
		}
		if strings.ContainsAny(v, "\r\n\x00") {
			return cmdutil.FlagErrorf("--header %s: the value has a control character", k)
		}
		o.header.Add(k, v)
	}
	for _, p := range o.Subprotocols {
		if !headerName.MatchString(p) {
			return cmdutil.FlagErrorf("--subprotocol %q is not a valid protocol name", p)
		}
	}
	switch o.IDIn {
	case "":
		o.IDIn = IDInHeader
	case IDInHeader, IDInQuery:
	default:
		return cmdutil.FlagErrorf("--id-in %q: give header or query", o.IDIn)
	}
	if o.Origin != "" {
		if strings.ContainsAny(o.Origin, "\r\n\x00") {
			return cmdutil.FlagErrorf("--origin has a control character")
		}
	}
	return nil
}

func listenRun(ctx context.Context, opts *Options) error {
	if err := opts.complete(ctx); err != nil {
		return err
	}
	s := newSession(opts)
	defer s.ep.revoke(ctx)
	return s.run(ctx)
}

// UserAgent is what listen sends as User-Agent ("socks/dev" for a build
// without a version); -H 'User-Agent: ...' overrides it.
func UserAgent(version string) string {
	if version == "" {
		version = "dev"
	}
	return "socks/" + version
}

func (o *Options) wsOptions() wsclient.Options {
	return wsclient.Options{
		UserAgent:    UserAgent(o.Version),
		Header:       o.header,
		Origin:       o.Origin,
		Subprotocols: o.Subprotocols,
		Insecure:     o.Insecure,
		PingPeriod:   o.PingInterval,
		CloseGrace:   o.closeGrace,
	}
}

func (o *Options) wait(d time.Duration) <-chan time.Time {
	if o.after != nil {
		return o.after(d)
	}
	return time.After(d)
}

func (o *Options) renewWait(d time.Duration) <-chan time.Time {
	if o.renewAfter != nil {
		return o.renewAfter(d)
	}
	return time.After(d)
}

func (o *Options) now() time.Time {
	if o.Now != nil {
		return o.Now()
	}
	return time.Now()
}

// completeID takes the chatter ID from --id-file, $SOCKS_CHATTER_ID or
// --id (at most one of them) and checks its shape. Errors never show the
// value: it may be a secret, or a mistyped one.
func (o *Options) completeID(ctx context.Context) error {
	if o.idTaken {
		return nil
	}
	env := ""
	if o.Getenv != nil {
		env = cmdutil.TrimChatterID(o.Getenv(ChatterIDEnv))
	}
	given := 0
	for _, set := range []bool{o.ID != "", o.IDFile != "", env != ""} {
		if set {
			given++
		}
	}
	if given > 1 {
		return cmdutil.FlagErrorf("give the chatter ID one way: --id, --id-file or $%s", ChatterIDEnv)
	}
	from := "--id"
	switch {
	case o.IDFile != "":
		from = "--id-file " + o.IDFile
		// On a terminal, a person types or pastes it: ask for one line.
		b, err := cmdutil.ReadSecretFile(ctx, o.IO, "id-file", o.IDFile, fmt.Sprintf("chatter ID for %s (then Enter): ", o.Geek), maxIDFileBytes)
		if err != nil {
			return err
		}
		o.ID = cmdutil.TrimChatterID(b)
		if o.ID == "" {
			return cmdutil.FlagErrorf("--id-file %s is empty; put the chatter ID from `socks chatter issue` in it", o.IDFile)
		}
	case env != "":
		from = "$" + ChatterIDEnv
		o.ID = env
	}
	o.ID = cmdutil.TrimChatterID(o.ID)
	if err := cmdutil.CheckChatterIDAlphabet(o.ID, from); err != nil {
		return err
	}
	o.idTaken, o.idFrom = true, from
	return nil
}
