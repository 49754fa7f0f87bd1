// Package publish implements `socks publish`.
package publish

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"strings"
	"sync"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/spf13/cobra"

	"github.com/socks-dev/socks/awsops"
	"github.com/socks-dev/socks/backend"
	"github.com/socks-dev/socks/broker"
	"github.com/socks-dev/socks/commands/cmdutil"
	"github.com/socks-dev/socks/config"
	"github.com/socks-dev/socks/internal/infile"
	"github.com/socks-dev/socks/internal/text"
	"github.com/socks-dev/socks/iostreams"
	"github.com/socks-dev/socks/pubsub"
	"github.com/socks-dev/socks/store"
)

// Options are the inputs of `socks publish`.
type Options struct {
	IO      *iostreams.IOStreams
	Backend func(context.Context) (*backend.Backend, error)
	Now     func() time.Time

	Geeks    []string
	Topics   []string
	Message  string
	Body     string
	BodyFile string
	ID       string

	Wait        bool
	WaitTimeout time.Duration
	Direct      bool
	Concurrency int
	JSON        bool

	// As prints the envelope as a producer sends it ("eventbridge" or
	// "sns") instead of publishing it; Source, DetailType and EventBus
	// fill the EventBridge entry.
	As         string
	Source     string
	DetailType string
	EventBus   string

	// set by the command: which body flags were given, and which of
	// goesWith's flags were
	messageSet, bodySet bool
	given               map[string]bool
}

// goesWith lists the flags that apply only with another, or only without
// it (without set): given otherwise, each was ignored without a word, so
// publishRun refuses it, whatever its value, saying why.
var goesWith = []struct {
	flag, with string
	without    bool
	on         func(*Options) bool
	why        string
}{
	{"wait-timeout", "wait", false, func(o *Options) bool { return o.Wait }, "without it publish waits for no broker, so there is nothing to time out"},
	{"concurrency", "direct", false, func(o *Options) bool { return o.Direct }, "without it the message goes on the queue, and the broker that takes it posts as many at once as its own --concurrency says"},
	{"source", "as eventbridge", false, asEventBridge, "only an EventBridge entry has a Source"},
	{"detail-type", "as eventbridge", false, asEventBridge, "only an EventBridge entry has a DetailType"},
	{"event-bus", "as eventbridge", false, asEventBridge, "only an EventBridge entry names a bus"},
	{"json", "as", true, asAny, "--as publishes nothing and prints what a producer sends, JSON of the producer's shape, so there is no result for --json to print"},
	{"wait", "as", true, asAny, "--as publishes nothing and prints what a producer sends, so no broker takes a message for --wait to wait for"},
	{"direct", "as", true, asAny, "--as publishes nothing and prints what a producer sends, so there is no message for --direct to fan out"},
}

// asAny is --as given a producer.
func asAny(o *Options) bool { return o.As != "" }

func asEventBridge(o *Options) bool { return o.As == AsEventBridge }

// NewCmdPublish returns `socks publish`.
func NewCmdPublish(f *cmdutil.Factory, runF func(context.Context, *Options) error) *cobra.Command {
	opts := &Options{IO: f.IOStreams, Backend: f.StackBackend(cmdutil.NeedDir, "nothing was queued"), Now: f.Now}
	cmd := &cobra.Command{
		Use:   "publish --topic T [--geek NAME]... (--message TEXT | --body JSON | --body-file F | < stdin)",
		Short: "Publish a message to geeks and topics",
		Long: `Publish puts an envelope on the queue; the broker ('socks serve' locally)
delivers its body to every matching connection.

  --topic is required ('.' means every topic); repeat it or give a comma
  list (a,b) for several, the same rule as 'listen --topic' and ?topic=.
  --geek narrows delivery to those users; without it every subscriber of
  the topics gets the message.

The body is JSON: --message wraps text as a JSON string, --body takes JSON
as given, --body-file reads it from a file ('-' for stdin, as does
--body -), and piped stdin is read when no body flag is given. With no body
at all (no flag, nothing piped) the topic's name is published as the event
key, since pages listen for keys; on a terminal publish never waits for
stdin. A body over 128 KB is refused: API Gateway cannot deliver it (a
--message counts as the JSON string sent, its quotes and backslashes
escaped). A body is UTF-8 text: send binary data encoded (base64) in a
JSON string. The UTF-8 byte order mark a file or stdin may start with
(Notepad, PowerShell) is dropped; a body in UTF-16 is refused.

In scripts, give the body with a flag (an event key is --message KEY): with
one, publish never reads stdin, so it neither waits on a stdin its parent
holds open (Node's exec, ssh) nor eats the input of a 'while read' loop.
Without one it reads stdin to its end whenever stdin is not a terminal.

Prints the message ID. --wait waits until the broker settled the message
(its follow-ups, which retry failed connections, included) and reports how
many connections got it, were gone, or failed for good (targets=0: no
open connection matched the geeks and topics): exit 1 if any failed or
the message was dead-lettered, exit 4 if the wait times out after
--wait-timeout, which goes with --wait only (with the counts so far and
pending=N when only follow-ups are left). On the local backend, --wait
with no 'socks serve' running, or with 'socks serve
--no-broker' and no 'socks broker', fails at once and queues nothing,
since nothing would deliver it. A state dir that does not exist (a
mistyped --state-dir) exits 3 and makes and queues nothing: 'socks serve
--state-dir DIR' makes it. --direct skips the queue and fans out at once
from this process, --concurrency posts at a time (for troubleshooting;
needs a running gateway); --concurrency goes with --direct only.

--as eventbridge|sns publishes nothing: it prints what a producer sends
instead, to paste or pipe into the AWS CLI or console (JSON already, of the
producer's shape: --json does not go with it). For eventbridge the
--entries of 'aws events put-events' (Source, DetailType, and the envelope
as the Detail string; the same three fields go into the console's "Send
events"); for sns the --message of 'aws sns publish'. The broker takes both
off the queue once the EventBridge rule or SNS subscription delivers them
(socks provision --eventbridge-rule, --sns-topic).`,
		Example: `  socks publish --geek Friendless --topic updates
  socks publish --geek Friendless --topic updates --message 'stats refreshed'
  socks publish --topic news --body '{"headline":"v2 is out"}' --wait
  echo '{"progress":42}' | socks publish --geek Friendless --topic jobs
  socks publish --topic . --body-file notice.json --direct
  aws events put-events --entries "$(socks publish --topic jobs --geek Friendless --message done --as eventbridge)"
  aws sns publish --topic-arn "$ARN" --message "$(socks publish --topic jobs --message done --as sns)"`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.messageSet = cmd.Flags().Changed("message")
			opts.bodySet = cmd.Flags().Changed("body")
			opts.given = map[string]bool{}
			for _, g := range goesWith {
				opts.given[g.flag] = cmd.Flags().Changed(g.flag)
			}
			if runF != nil {
				return runF(cmd.Context(), opts)
			}
			return publishRun(cmd.Context(), opts)
		},
	}
	fl := cmd.Flags()
	fl.StringArrayVarP(&opts.Geeks, "geek", "g", nil, "deliver only to this user (repeatable)")
	fl.StringArrayVarP(&opts.Topics, "topic", "t", nil, "topic to publish to, '.' for every topic (repeatable, or a comma list; required)")
	fl.StringVarP(&opts.Message, "message", "m", "", "text body, sent as a JSON string")
	fl.StringVar(&opts.Body, "body", "", "JSON body ('-' for stdin)")
	fl.StringVar(&opts.BodyFile, "body-file", "", "read the JSON body from a file ('-' for stdin)")
	_ = cmd.MarkFlagFilename("body-file", "json")
	fl.StringVar(&opts.ID, "id", "", "message ID for tracing and de-duplication (default: random)")
	fl.BoolVar(&opts.Wait, "wait", false, "wait for the broker and report the deliveries")
	fl.DurationVar(&opts.WaitTimeout, "wait-timeout", 30*time.Second, "how long --wait waits")
	fl.BoolVar(&opts.Direct, "direct", false, "fan out now from this process, without the queue")
	fl.IntVar(&opts.Concurrency, "concurrency", broker.DefaultConcurrency, "with --direct only: posts in flight at once")
	fl.BoolVar(&opts.JSON, "json", false, "print the result as JSON (not with --as)")
	fl.StringVar(&opts.As, "as", "", "print what a producer sends instead of publishing: eventbridge or sns")
	fl.StringVar(&opts.Source, "source", pubsub.DefaultEventSource, "with --as eventbridge: the entry's Source")
	fl.StringVar(&opts.DetailType, "detail-type", pubsub.DefaultDetailType, "with --as eventbridge: the entry's DetailType")
	fl.StringVar(&opts.EventBus, "event-bus", "", "with --as eventbridge: the entry's EventBusName (default: the default bus)")
	_ = cmd.MarkFlagRequired("topic")
	cmd.MarkFlagsMutuallyExclusive("message", "body", "body-file")
	cmd.MarkFlagsMutuallyExclusive("wait", "direct")
	return cmd
}

// Envelope builds and validates the envelope the options describe. A
// wait for the body (on stdin, from a FIFO) ends with ctx.
func (opts *Options) Envelope(ctx context.Context) (pubsub.Envelope, error) {
	env := pubsub.Envelope{ID: opts.ID, Users: pubsub.Unique(opts.Geeks)}
	for _, g := range opts.Geeks {
		if strings.Contains(g, ",") {
			// --geek takes several, as separate values, but (unlike
			// --topic) not a comma list: a comma is no geek's.
			return env, cmdutil.FlagErrorf("--geek %q: a geek name may not contain a comma; give several geeks as separate values%s", g, separateGeeks(g))
		}
	}
	topics, err := pubsub.TopicList(opts.Topics)
	if err != nil {
		return env, &cmdutil.FlagError{Err: err}
	}
	env.Topics = topics
	// The addressing first: a mistake there is reported before the body
	// is read (stdin) or the topic taken as the event key, with its note.
	pre := env
	pre.Body = json.RawMessage("null")
	if err := pre.Validate(); err != nil {
		return env, &cmdutil.FlagError{Err: err}
	}
	body, err := opts.body(ctx, topics)
	if err != nil {
		return env, err
	}
	env.Body = body
	if env.ID == "" {
		env.ID = pubsub.NewMessageID()
	}
	if err := env.Validate(); err != nil {
		return env, &cmdutil.FlagError{Err: err}
	}
	return env, nil
}

// separateGeeks shows the comma list g as separate --geek values, when
// each of its names is a valid one.
func separateGeeks(g string) string {
	var b strings.Builder
	for _, name := range strings.Split(g, ",") {
		if name == "" {
			continue
		}
		if pubsub.ValidateGeek(name) != nil {
			return ""
		}
		b.WriteString(" --geek " + name)
	}
	if b.Len() == 0 {
		return ""
	}
	return ":" + b.String()
}

func (opts *Options) body(ctx context.Context, topics []string) (json.RawMessage, error) {
	var raw []byte
	switch {
	case opts.messageSet:
		if !utf8.ValidString(opts.Message) {
			return nil, cmdutil.FlagErrorf("--message is not valid UTF-8: %s", binaryHint)
		}
		body := jsonString(opts.Message)
		if n := len(pubsub.QueueText(body)); n > pubsub.MaxMessageBytes {
			return nil, cmdutil.FlagErrorf("--message is %s as the JSON string sent (quotes, backslashes, control characters, U+FFFE and U+FFFF are escaped, and grow); API Gateway delivers at most %s per message", text.Size(n), text.Size(pubsub.MaxMessageBytes))
		}
		return body, nil
	case opts.bodySet && opts.Body != "-":
		raw = []byte(opts.Body)
	case opts.bodySet, opts.BodyFile == "-":
		b, err := infile.Read(ctx, opts.IO.In, pubsub.MaxEnvelopeBytes)
		return checkBody(b, err, "stdin")
	case opts.BodyFile != "":
		// A FIFO (`<(cmd)`) is a body as a file is; its wait for a
		// writer, as a wait for a pipe's bytes, ends with ctx.
		b, err := infile.ReadStream(ctx, opts.BodyFile, pubsub.MaxEnvelopeBytes)
		if errors.Is(err, fs.ErrNotExist) {
			return nil, cmdutil.FlagErrorf("--body-file %s: no such file", opts.BodyFile)
		} else if ne := (*infile.NotRegularError)(nil); errors.As(err, &ne) {
			return nil, cmdutil.FlagErrorf("--body-file %s is %s: give the file that holds the JSON body", opts.BodyFile, ne.What)
		} else if pe := (*fs.PathError)(nil); errors.As(err, &pe) {
			return nil, cmdutil.FlagErrorf("--body-file %s: %v", opts.BodyFile, pe.Err)
		}
		return checkBody(b, err, opts.BodyFile)
	case !opts.IO.IsStdinTTY() && opts.IO.In != nil:
		b, err := readRaw(ctx, opts.IO.In, "stdin")
		if err != nil {
			return nil, err
		}
		if len(pubsub.TrimJSONSpace(b)) == 0 {
			// Nothing piped (stdin is /dev/null, or cron's empty input).
			return opts.topicAsKey(topics)
		}
		return checkJSON(b, "stdin")
	default:
		// On a terminal: never wait for typed input.
		return opts.topicAsKey(topics)
	}
	return checkJSON(raw, "--body")
}

// topicAsKey is the body of a publish given none: the topic's name, as the
// event key pages listen for ("plays-updated" on topic plays-updated).
func (opts *Options) topicAsKey(topics []string) (json.RawMessage, error) {
	if len(topics) != 1 || topics[0] == pubsub.AllTopics {
		return nil, cmdutil.FlagErrorf("no body: give --message, --body, --body-file or pipe JSON on stdin (with one topic and no body, the topic's name is sent as the event key)")
	}
	fmt.Fprintf(opts.IO.ErrOut, "note: no body given: publishing the topic name %q as the event key\n", topics[0])
	return jsonString(topics[0]), nil
}

// jsonString is s as a JSON string, as written: <, > and & stay themselves
// (json.Marshal would write \u003c), so the browser gets the text as typed.
func jsonString(s string) json.RawMessage {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(s) // a string always encodes
	return bytes.TrimSuffix(b.Bytes(), []byte("\n"))
}

// binaryHint says what to do with a body that is not UTF-8 text.
const binaryHint = "a body is JSON, which is text; send binary data encoded in a JSON string (base64, for example)"

// checkBody checks a body read from name (b, with the read's error).
func checkBody(b []byte, err error, name string) (json.RawMessage, error) {
	if b, err = checkRead(b, err, name); err != nil {
		return nil, err
	}
	return checkJSON(b, name)
}

// readRaw reads a body from r (stdin), refusing one too big for any
// queue message; the wait for it ends with ctx.
func readRaw(ctx context.Context, r io.Reader, name string) ([]byte, error) {
	b, err := infile.Read(ctx, r, pubsub.MaxEnvelopeBytes)
	return checkRead(b, err, name)
}

// checkRead refuses a body read from name (b, with the read's error) that
// is too big for any queue message, and returns it without the UTF-8
// byte order mark a file saved by Notepad or PowerShell starts with (RFC
// 8259 lets a parser ignore one), as --id-file's and --keys-file's
// (text.UTF8File); a body in UTF-16 is refused, saying to save it as
// UTF-8.
func checkRead(b []byte, err error, name string) ([]byte, error) {
	if errors.Is(err, context.Canceled) {
		return nil, err // interrupted: Main says so
	}
	if err != nil {
		return nil, fmt.Errorf("reading the body from %s: %w", name, err)
	}
	if len(b) > pubsub.MaxEnvelopeBytes {
		// Read no further: its size is not known.
		return nil, cmdutil.FlagErrorf("the body from %s is over %s; API Gateway delivers at most %s per message", name, text.Size(pubsub.MaxEnvelopeBytes), text.Size(pubsub.MaxMessageBytes))
	}
	if b, err = text.UTF8File(b); err != nil {
		return nil, cmdutil.FlagErrorf("the body from %s: %v", name, err)
	}
	return b, nil
}

// checkJSON checks a body and compacts it. Only JSON's own whitespace
// (the newline that ends a file or echo's output, an indent) is taken off
// its ends: a vertical tab, a form feed or U+00A0 there makes it JSON no
// parser reads, and it is refused, saying so.
func checkJSON(b []byte, name string) (json.RawMessage, error) {
	b = pubsub.TrimJSONSpace(b)
	if len(b) == 0 {
		return nil, cmdutil.FlagErrorf("the body from %s is empty: give a JSON body, --message TEXT for plain text, or no body flag to publish the topic's name", name)
	}
	if why := pubsub.CheckJSON(b); why != "" {
		if bom := text.ByteOrderMark(b); bom != "" {
			// Neither --message nor base64 is the fix. A file's or
			// stdin's first mark was dropped (checkRead): this is
			// --body's, or a file's second.
			if name == "--body" {
				return nil, cmdutil.FlagErrorf("--body starts with a byte order mark (%s), which JSON does not allow: remove it, or give the file with --body-file, which drops one", bom)
			}
			return nil, cmdutil.FlagErrorf("the body from %s starts with two byte order marks (%s): one is dropped, and JSON does not allow the other; save it as UTF-8 with one or none", name, bom)
		}
		if !utf8.Valid(b) {
			return nil, cmdutil.FlagErrorf("the body from %s %s: %s", name, why, binaryHint)
		}
		if r := spaceAtEnd(b); r != 0 {
			return nil, cmdutil.FlagErrorf("the body from %s %s: it has %U at an end, and JSON allows only spaces, tabs and newlines around a value", name, why, r)
		}
		return nil, cmdutil.FlagErrorf("the body from %s %s; use --message for plain text", name, why)
	}
	// Compact, so that what arrives is exactly the JSON value.
	var buf bytes.Buffer
	if err := json.Compact(&buf, b); err != nil {
		return nil, cmdutil.FlagErrorf("the body from %s: %v", name, err)
	}
	if buf.Len() > pubsub.MaxMessageBytes {
		return nil, cmdutil.FlagErrorf("the body from %s is %s; API Gateway delivers at most %s per message", name, text.Size(buf.Len()), text.Size(pubsub.MaxMessageBytes))
	}
	return buf.Bytes(), nil
}

// spaceAtEnd returns the white space other than JSON's that b starts or
// ends with (a vertical tab, a form feed, U+0085, U+00A0), or 0.
func spaceAtEnd(b []byte) rune {
	if r, _ := utf8.DecodeRune(b); unicode.IsSpace(r) {
		return r
	}
	if r, _ := utf8.DecodeLastRune(b); unicode.IsSpace(r) {
		return r
	}
	return 0
}

// Result is what publish prints with --json.
type Result struct {
	ID     string        `json:"id"`
	Queued bool          `json:"queued"`
	Report *store.Report `json:"report,omitempty"`
}

// lockWaitNote returns what says, once, on a terminal (stderr a TTY),
// that a write waits for another process holding the state file at path
// (local.DB.NotifyLockWait), or nil off one: a script's stderr gets
// nothing more, and stdout (--json) never does. The write still fails
// with its own error if the lock stays taken.
func lockWaitNote(ios *iostreams.IOStreams, path string) func() {
	if !ios.IsStderrTTY() {
		return nil
	}
	var once sync.Once
	return func() {
		once.Do(func() {
			cmdutil.Notef(ios.ErrOut, "note: another process holds the state file %s (a stuck socks command, or a program such as an sqlite3 shell with a transaction open): waiting for it, about a minute in all before giving up\n", path)
		})
	}
}

func publishRun(ctx context.Context, opts *Options) error {
	for _, g := range goesWith {
		switch {
		case !opts.given[g.flag] || g.on(opts) != g.without:
		case g.without:
			return cmdutil.FlagErrorf("--%s does not go with --%s: %s; leave --%s or --%s out", g.flag, g.with, g.why, g.flag, g.with)
		default:
			return cmdutil.FlagErrorf("--%s goes with --%s: %s; add --%s, or leave --%s out", g.flag, g.with, g.why, g.with, g.flag)
		}
	}
	if opts.WaitTimeout <= 0 {
		return cmdutil.FlagErrorf("--wait-timeout must be above 0")
	}
	if opts.Concurrency < 1 {
		return cmdutil.FlagErrorf("--concurrency must be at least 1")
	}
	if opts.As != "" {
		return printAs(ctx, opts)
	}
	env, err := opts.Envelope(ctx)
	if err != nil {
		return err
	}
	b, err := opts.Backend(ctx)
	if err != nil {
		return err
	}
	if b.DB != nil {
		// A write that waits for another process's lock on the state
		// file waits about a minute before it fails: said where a
		// person looks, once, as prune-stale says it waits for another.
		if note := lockWaitNote(opts.IO, b.DB.Path()); note != nil {
			b.DB.NotifyLockWait(note)
			defer b.DB.NotifyLockWait(nil)
		}
	}
	if opts.Direct {
		pusher, err := b.Pusher(ctx, opts.Concurrency)
		if err != nil {
			return err
		}
		br := &broker.Broker{Store: b.Store, Pusher: pusher, Concurrency: opts.Concurrency, Now: opts.Now}
		rep, err := br.Deliver(ctx, env)
		if err != nil {
			return err
		}
		if err := b.Store.PutReport(ctx, rep); err != nil {
			cmdutil.Notef(opts.IO.ErrOut, "warning: recording the report: %v\n", err)
		}
		return printResult(opts, Result{ID: env.ID, Report: &rep})
	}
	data, err := env.Marshal()
	if err != nil {
		return &cmdutil.FlagError{Err: err}
	}
	// On the local backend a running gateway is recorded in the state
	// file, and a running broker (`socks serve`, or `socks broker` beside a
	// `socks serve --no-broker`) holds its lock there: without both,
	// nothing will deliver the message.
	// Without --wait the answer only makes a note, so a check that cannot
	// tell (another process stopped while it asked) is one too, and it is
	// made after the message is queued: the broker is woken that much
	// sooner (the check costs a connect to the gateway and the brokers'
	// locks), and the note says the same.
	var missing, unknown error
	if opts.Wait && b.DB != nil {
		if missing, unknown = deliverers(ctx, b); unknown != nil {
			return unknown
		}
		switch missing {
		case backend.ErrNoGateway:
			return errors.New("--wait: no local gateway is running for this state dir, so no broker would handle the message; nothing was queued. Start `socks serve` (with the same --state-dir), or publish without --wait to leave it on the queue")
		case backend.ErrNoBroker:
			return errors.New("--wait: a gateway runs for this state dir but no broker does, so nothing would handle the message; nothing was queued. Start `socks broker` (with the same --state-dir), or restart `socks serve` without --no-broker, or publish without --wait to leave it on the queue")
		}
	}
	// A reused --id may have a report already, the earlier message's:
	// --wait waits for one made after it. The look is part of the wait,
	// so --wait-timeout bounds it too (a store that never answers held it
	// for three attempts of 15 s each), and a look that fails queues
	// nothing: there would be no telling the reports apart.
	var before *store.Report
	deadline := time.Now().Add(opts.WaitTimeout)
	if opts.Wait {
		lookCtx, cancel := context.WithDeadline(ctx, deadline)
		rep, err := b.Store.GetReport(lookCtx, env.ID)
		cancel()
		switch {
		case err == nil:
			before = &rep
		case errors.Is(err, store.ErrNotFound):
		case ctx.Err() != nil:
			return ctx.Err()
		case lookCtx.Err() != nil:
			return fmt.Errorf("--wait: the message reports (%s) did not answer within %s, so its report could not be waited for; nothing was queued. Try again when they answer, or publish without --wait", b.ReportsName(), opts.WaitTimeout)
		default:
			return fmt.Errorf("--wait: the message reports (%s) could not be read, so its report could not be waited for: %w; nothing was queued. Try again when they answer, or publish without --wait", b.ReportsName(), err)
		}
	}
	if _, err := b.Queue.Send(ctx, data); err != nil {
		// A queue that took the request and never answered (frozen, or
		// its answer lost on the way) may still queue it, once per
		// attempt: only a look-up of its URL that got no answer sent
		// nothing.
		if ate, ok := errors.AsType[*awsops.AttemptTimeoutError](err); ok {
			if ate.Op == "GetQueueUrl" {
				return fmt.Errorf("the message could not be queued on %s: it did not answer within %s, and the tries after", b.QueueName(), ate.Bound)
			}
			return fmt.Errorf("the message may have been queued on %s, or not: it took the message but did not answer within %s, and the tries after; publishing it again may deliver it twice", b.QueueName(), ate.Bound)
		}
		// The local queue's error says what it was doing ("sending a
		// message to the local queue: …"); say it once, with the cause.
		if b.DB != nil {
			if cause := errors.Unwrap(err); cause != nil {
				err = cause
			}
		}
		return fmt.Errorf("the message could not be queued on %s: %w", b.QueueName(), err)
	}
	res := Result{ID: env.ID, Queued: true}
	if !opts.Wait && b.DB != nil {
		missing, unknown = deliverers(ctx, b)
	}
	switch missing {
	case backend.ErrNoGateway:
		fmt.Fprintln(opts.IO.ErrOut, "note: no local gateway is running; the message waits in the queue until `socks serve` starts")
	case backend.ErrNoBroker:
		fmt.Fprintln(opts.IO.ErrOut, "note: a gateway runs but no broker does; the message waits in the queue until `socks broker` starts (with the same --state-dir), or `socks serve` restarts without --no-broker")
	}
	if unknown != nil {
		cmdutil.Notef(opts.IO.ErrOut, "note: %v; the message is queued all the same\n", unknown)
	}
	if !opts.Wait {
		return printResult(opts, res)
	}
	// The local checks above found a gateway's record and a broker's
	// lock: a timeout then is not for want of a broker.
	// A broker known to run now is asked again at a timeout: it may have
	// been killed during the wait.
	var brokerRuns func() error
	if b.DB != nil && missing == nil && unknown == nil {
		brokerRuns = b.Broker
	}
	// The wait ends at the deadline set before the look for an earlier
	// report, and says the --wait-timeout the user gave, not what was left
	// of it (48.952529ms).
	wctx, cancel := context.WithDeadline(ctx, deadline)
	defer cancel()
	rep, err := waitReport(wctx, b.Store, env.ID, opts.WaitTimeout, before, brokerRuns, consumerQuestion(b), opts.IO.ErrOut)
	if err != nil {
		if rep.MessageID != "" {
			// Handled, but follow-ups are still pending: what is known.
			res.Report = &rep
		}
		_ = printResult(opts, res)
		if ctx.Err() != nil && res.Report == nil {
			// Ctrl-C: Main says "interrupted", and this after it.
			return fmt.Errorf("message %s is queued all the same; only the wait for its report stopped", env.ID)
		}
		return err
	}
	res.Report = &rep
	return printResult(opts, res)
}

// consumerQuestion is what a --wait that saw no report asks: whether
// anything consumes b's queue. On AWS it also says where a message goes
// that its consumer dies on (a Lambda timeout, out of memory), since no
// report ever says it: SQS itself dead-letters it, minutes later.
func consumerQuestion(b *backend.Backend) string {
	ask := b.ConsumerQuestion()
	if b.Config.Backend == config.BackendAWS {
		ask += fmt.Sprintf(" If it is, a consumer that died on the message (a function timeout, out of memory) wrote no report: SQS hands the message out again after the queue's visibility timeout, and its redrive policy moves it to the dead letters after maxReceiveCount receives (%d as socks provisions it), still without one; `socks dlq list --backend aws` shows it then", awsops.QueueSettings{}.MaxReceiveCount())
	}
	return ask
}

// deliverers checks that a local gateway and a local broker run for b's
// state dir: missing is backend.ErrNoGateway or backend.ErrNoBroker when
// one does not, unknown the error of a check that could not tell.
func deliverers(ctx context.Context, b *backend.Backend) (missing, unknown error) {
	if _, _, err := b.Gateway(ctx); errors.Is(err, backend.ErrNoGateway) {
		return backend.ErrNoGateway, nil
	}
	if err := b.Broker(); errors.Is(err, backend.ErrNoBroker) {
		return backend.ErrNoBroker, nil
	} else if err != nil {
		return nil, err
	}
	return nil, nil
}

// WaitReport polls s for the broker's report on message id for up to
// timeout, until the report is settled: no connection is still pending in
// a follow-up (store.Report.Pending), so that the counts are the final
// ones. Running out of time is an ExitTimeout error that asks whether a
// broker runs, or says how many connections are still pending; the report
// seen last, if any, is returned with it.
func WaitReport(ctx context.Context, s store.Store, id string, timeout time.Duration) (store.Report, error) {
	return waitReport(ctx, s, id, timeout, nil, nil, (&backend.Backend{}).ConsumerQuestion(), nil)
}

// waitReport is WaitReport for a report other than before, the one an
// earlier message with the same ID left (nil: none). brokerRuns, set when
// a broker was known to run as the message was queued (it held its lock),
// tells at a timeout whether one still does (backend.Backend.Broker):
// the timeout then says it does, that it stopped (ErrNoBroker), or why
// that cannot be told; unset, the timeout asks ask
// (backend.Backend.ConsumerQuestion).
// A read of the report that got no answer (a store that stopped
// answering for a while: each attempt bounded, then the call failed) does
// not end the wait, as the message is queued and a broker may still
// deliver it: it is noted once on notes (nil: nowhere) and the wait goes
// on; the timeout then says the report could not be read.
func waitReport(ctx context.Context, s store.Store, id string, timeout time.Duration, before *store.Report, brokerRuns func() error, ask string, notes io.Writer) (store.Report, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	delay := 20 * time.Millisecond
	var seen store.Report
	var unanswered error
	for {
		rep, err := s.GetReport(ctx, id)
		if err == nil && (before == nil || !rep.At.Equal(before.At)) {
			if rep.Pending == 0 {
				return rep, nil
			}
			seen = rep
		}
		if err != nil && !errors.Is(err, store.ErrNotFound) && ctx.Err() == nil {
			if !errors.Is(err, context.DeadlineExceeded) {
				return store.Report{}, fmt.Errorf("message %s is queued, but its report could not be read: %w", id, err)
			}
			if unanswered == nil && notes != nil {
				cmdutil.Notef(notes, "note: message %s is queued, but reading its report got no answer (%s); still waiting\n", id, noAnswerText(err))
			}
			unanswered = err
		}
		select {
		case <-ctx.Done():
			if !errors.Is(ctx.Err(), context.DeadlineExceeded) {
				return seen, ctx.Err()
			}
			if unanswered != nil && seen.MessageID == "" {
				return seen, cmdutil.Exit(cmdutil.ExitTimeout, fmt.Errorf("message %s is queued, but its report could not be read within %s: %s", id, timeout, noAnswerText(unanswered)))
			}
			if seen.MessageID != "" {
				return seen, cmdutil.Exit(cmdutil.ExitTimeout, fmt.Errorf("message %s was handled, but its delivery to %d connections, handed on in follow-ups, was not settled within %s", id, seen.Pending, timeout))
			}
			if brokerRuns != nil {
				switch err := brokerRuns(); {
				case err == nil:
					return seen, cmdutil.Exit(cmdutil.ExitTimeout, fmt.Errorf("message %s has no report after %s, though a broker is running for this state dir (it holds the broker lock): %s; for one handled but not recorded, the output of `socks serve` says why, such as a state file it cannot write (disk full)", id, timeout, stillPending))
				case !errors.Is(err, backend.ErrNoBroker):
					return seen, cmdutil.Exit(cmdutil.ExitTimeout, fmt.Errorf("message %s has no report after %s: %s; %w", id, timeout, stillPending, err))
				}
				return seen, cmdutil.Exit(cmdutil.ExitTimeout, fmt.Errorf("message %s was not handled within %s: the broker that ran for this state dir when it was queued has stopped (killed?), and none runs now; the message waits in the queue for the next one: start `socks broker` (with the same --state-dir), or `socks serve` without --no-broker", id, timeout))
			}
			return seen, cmdutil.Exit(cmdutil.ExitTimeout, fmt.Errorf("message %s was not handled within %s: %s", id, timeout, ask))
		case <-time.After(delay):
		}
		delay = min(delay*2, 250*time.Millisecond)
	}
}

// stillPending says where a message with no report after --wait-timeout
// may be while a broker runs: most often in its hands, delivered more
// slowly than the wait.
const stillPending = "the message is still pending: queued, being delivered (a slow gateway or a large fan-out: a longer --wait-timeout waits for it), or handled but not recorded"

// noAnswerText says err, a call that got no answer, in words: the
// operation and the bound of each attempt, without the SDK's wrapping.
func noAnswerText(err error) string {
	if ate, ok := errors.AsType[*awsops.AttemptTimeoutError](err); ok {
		return fmt.Sprintf("%s got no answer within %s, each try", ate.Op, ate.Bound)
	}
	return err.Error()
}

func printResult(opts *Options, res Result) error {
	out := opts.IO.Out
	if res.Report != nil {
		// The broker's bookkeeping of follow-ups is not the user's.
		r := *res.Report
		r.FollowUps = nil
		res.Report = &r
	}
	if opts.JSON {
		if err := cmdutil.PrintJSON(out, res); err != nil {
			return err
		}
	} else if res.Report == nil {
		fmt.Fprintln(out, res.ID)
	} else {
		r := res.Report
		fmt.Fprintf(out, "%s\ttargets=%d\tdelivered=%d\tgone=%d\tfailed=%d", res.ID, r.Targets, r.Delivered, r.Gone, r.Failed)
		if r.Pending > 0 {
			fmt.Fprintf(out, "\tpending=%d", r.Pending)
		}
		fmt.Fprintln(out)
		for _, e := range r.Errors {
			cmdutil.Notef(opts.IO.ErrOut, "error: %s\n", strings.TrimSpace(e))
		}
	}
	switch r := res.Report; {
	case r == nil || r.Pending > 0:
	case r.DeadLettered && r.Targets == 0:
		return cmdutil.Exit(cmdutil.ExitError, fmt.Errorf("message %s was dead-lettered before its connections were found (the error says why; `socks dlq list` shows it, `socks dlq redrive` retries it)", res.ID))
	case r.DeadLettered:
		return cmdutil.Exit(cmdutil.ExitError, fmt.Errorf("message %s was dead-lettered: %d of %d deliveries failed (the errors say why; `socks dlq list` shows it, `socks dlq redrive` retries it)", res.ID, r.Failed, r.Targets))
	case r.Failed > 0:
		return cmdutil.Exit(cmdutil.ExitError, fmt.Errorf("%d of %d deliveries failed", r.Failed, r.Targets))
	}
	return nil
}
