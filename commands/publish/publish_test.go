package publish

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/socks-dev/socks/awsops"
	"github.com/socks-dev/socks/backend"
	"github.com/socks-dev/socks/commands/cmdutil"
	"github.com/socks-dev/socks/config"
	"github.com/socks-dev/socks/iostreams"
	"github.com/socks-dev/socks/pubsub"
	"github.com/socks-dev/socks/store"
)

// parse runs `publish ARGS` through runF and returns the options it got.
func parse(t *testing.T, ios *iostreams.IOStreams, args ...string) *Options {
	t.Helper()
	f := &cmdutil.Factory{IOStreams: ios, Now: time.Now}
	var got *Options
	cmd := NewCmdPublish(f, func(_ context.Context, o *Options) error {
		got = o
		return nil
	})
	cmd.SetArgs(args)
	cmd.SetOut(io.Discard)
	cmd.SetErr(io.Discard)
	if err := cmd.Execute(); err != nil {
		t.Fatalf("publish %s: %v", strings.Join(args, " "), err)
	}
	return got
}

func TestTopicsFollowTheOneCommaRule(t *testing.T) {
	for _, tc := range []struct {
		name  string
		flags []string
		want  []string
	}{
		{"a comma list is several topics", []string{"--topic", "a,b"}, []string{"a", "b"}},
		{"repeated flags and comma lists mix, duplicates go, order stays", []string{"-t", "b,a", "--topic", "c", "-t", "a"}, []string{"b", "a", "c"}},
		{"one topic is one topic", []string{"--topic", "updates"}, []string{"updates"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ios, _, _, _ := iostreams.Test()
			o := parse(t, ios, append(tc.flags, "--message", "x")...)
			env, err := o.Envelope(t.Context())
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(env.Topics, tc.want) {
				t.Errorf("publish topics %q; want %q", env.Topics, tc.want)
			}
			// The connect URL's ?topic= and listen --topic give the same.
			var values []string
			for i := 0; i < len(tc.flags); i += 2 {
				values = append(values, tc.flags[i+1])
			}
			url, err := pubsub.SplitTopics(strings.Join(values, ","))
			if err != nil || !slices.Equal(url, env.Topics) {
				t.Errorf("?topic=%s gives %q (%v); publish gave %q", strings.Join(values, ","), url, err, env.Topics)
			}
		})
	}
	t.Run("an empty item in a comma list is refused, as in a URL", func(t *testing.T) {
		ios, _, _, _ := iostreams.Test()
		o := parse(t, ios, "--topic", "a,", "--message", "x")
		var fe *cmdutil.FlagError
		if _, err := o.Envelope(t.Context()); !errors.As(err, &fe) || !strings.Contains(err.Error(), "empty") {
			t.Errorf("got %v; want a usage error about an empty topic", err)
		}
		if _, err := pubsub.SplitTopics("a,"); err == nil {
			t.Error("?topic=a, is accepted; the rules differ")
		}
	})
}

func TestNoBodyPublishesTheTopicAsTheEventKey(t *testing.T) {
	t.Run("on a terminal it never reads stdin", func(t *testing.T) {
		ios, _, _, errOut := iostreams.Test()
		// A terminal nobody types into: reading it would block forever.
		in, w := io.Pipe()
		t.Cleanup(func() { w.Close() })
		ios.In = in
		ios.SetTTY(true, false, false)
		o := parse(t, ios, "--geek", "Friendless", "--topic", "updates")
		done := make(chan struct{})
		var body string
		var err error
		go func() {
			defer close(done)
			var env pubsub.Envelope
			env, err = o.Envelope(t.Context())
			body = string(env.Body)
		}()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Fatal("publish waited for the terminal's input")
		}
		if err != nil || body != `"updates"` {
			t.Errorf("body %s, error %v; want \"updates\"", body, err)
		}
		if !strings.Contains(errOut.String(), `publishing the topic name "updates" as the event key`) {
			t.Errorf("stderr %q; want a note naming the event key", errOut)
		}
	})
	t.Run("with nothing piped it is the topic too", func(t *testing.T) {
		ios, _, _, errOut := iostreams.Test() // stdin: an empty buffer, not a terminal
		env, err := parse(t, ios, "--topic", "plays-updated").Envelope(t.Context())
		if err != nil || string(env.Body) != `"plays-updated"` || !strings.Contains(errOut.String(), "event key") {
			t.Errorf("body %s, error %v, stderr %q", env.Body, err, errOut)
		}
	})
	t.Run("piped JSON is still the body", func(t *testing.T) {
		ios, in, _, errOut := iostreams.Test()
		in.WriteString(`{"progress":42}` + "\n")
		env, err := parse(t, ios, "--topic", "jobs").Envelope(t.Context())
		if err != nil || string(env.Body) != `{"progress":42}` || errOut.Len() != 0 {
			t.Errorf("body %s, error %v, stderr %q", env.Body, err, errOut)
		}
	})
	for _, topics := range [][]string{{"--topic", "a,b"}, {"--topic", "."}} {
		t.Run("with "+topics[1]+" there is no one key, so it asks for a body", func(t *testing.T) {
			ios, _, _, _ := iostreams.Test()
			_, err := parse(t, ios, topics...).Envelope(t.Context())
			var fe *cmdutil.FlagError
			if !errors.As(err, &fe) || !strings.Contains(err.Error(), "no body") {
				t.Errorf("got %v; want a usage error saying there is no body", err)
			}
		})
	}
	t.Run("an empty --body-file - is still refused", func(t *testing.T) {
		ios, _, _, _ := iostreams.Test()
		_, err := parse(t, ios, "--topic", "t", "--body-file", "-").Envelope(t.Context())
		if err == nil || !strings.Contains(err.Error(), "empty") {
			t.Errorf("got %v; want the body called empty", err)
		}
	})
}

// localBackend opens a local state dir the way the factory does; the
// backend is closed when the test ends.
func localBackend(t *testing.T) (open func(context.Context) (*backend.Backend, error), opened func() *backend.Backend) {
	t.Helper()
	dir := t.TempDir()
	var b *backend.Backend
	t.Cleanup(func() {
		if b != nil {
			b.Close()
		}
	})
	open = func(ctx context.Context) (*backend.Backend, error) {
		if b != nil {
			return b, nil
		}
		var err error
		b, err = backend.Open(ctx, config.Config{Backend: config.BackendLocal, StateDir: dir}, backend.Options{})
		return b, err
	}
	return open, func() *backend.Backend { return b }
}

// recordGateway records a gateway in b's state file the way `socks serve`
// does, with something listening at its address, so that b.Gateway finds
// it running.
func recordGateway(t *testing.T, b *backend.Backend) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	for k, v := range map[string]string{
		backend.MetaGatewayWebSocket:  "ws://" + ln.Addr().String() + "/",
		backend.MetaGatewayManagement: "http://" + ln.Addr().String(),
	} {
		if err := b.DB.SetMeta(t.Context(), k, v); err != nil {
			t.Fatal(err)
		}
	}
	if _, _, err := b.Gateway(t.Context()); err != nil {
		t.Fatalf("the recorded gateway is not found running: %v", err)
	}
}

// gatewayBackend is a local backend with a gateway recorded as running
// (recordGateway) and no broker: open is what publish opens, b the same
// backend.
func gatewayBackend(t *testing.T) (open func(context.Context) (*backend.Backend, error), b *backend.Backend) {
	t.Helper()
	open, _ = localBackend(t)
	b, err := open(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	recordGateway(t, b)
	return open, b
}

// brokerBackend is gatewayBackend with a broker known to run: this test
// holds the broker's lock until it ends.
func brokerBackend(t *testing.T) (open func(context.Context) (*backend.Backend, error), b *backend.Backend) {
	t.Helper()
	open, b = gatewayBackend(t)
	release, err := b.HoldBroker()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(release)
	return open, b
}

func queued(t *testing.T, b *backend.Backend) int {
	t.Helper()
	st, err := b.Queue.Stats(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	return st.Visible + st.InFlight
}

func TestWaitWithNoGatewayFailsAtOnceAndQueuesNothing(t *testing.T) {
	ios, _, out, _ := iostreams.Test()
	open, opened := localBackend(t)
	o := parse(t, ios, "--topic", "updates", "--message", "hi", "--wait")
	o.Backend = open
	// A wait this long would show as a hung test, not a slow pass.
	o.WaitTimeout = time.Hour
	err := publishRun(t.Context(), o)
	if err == nil || !strings.Contains(err.Error(), "no local gateway is running") || !strings.Contains(err.Error(), "socks serve") {
		t.Fatalf("got %v; want an error saying no gateway runs and to start socks serve", err)
	}
	if out.Len() != 0 {
		t.Errorf("stdout %q; want nothing (nothing was queued)", out)
	}
	if n := queued(t, opened()); n != 0 {
		t.Errorf("%d messages queued; want none", n)
	}
}

func TestAGatewayWithoutABroker(t *testing.T) {
	t.Run("--wait fails at once and queues nothing", func(t *testing.T) {
		ios, _, out, _ := iostreams.Test()
		open, b := gatewayBackend(t)
		o := parse(t, ios, "--topic", "updates", "--message", "hi", "--wait")
		o.Backend = open
		o.WaitTimeout = time.Hour // a wait would show as a hung test
		err := publishRun(t.Context(), o)
		if err == nil || !strings.Contains(err.Error(), "no broker does") || !strings.Contains(err.Error(), "socks broker") ||
			!strings.Contains(err.Error(), "without --no-broker") || !strings.Contains(err.Error(), "nothing was queued") {
			t.Fatalf("got %v; want an error saying no broker runs, nothing was queued, and to start one", err)
		}
		if strings.Contains(err.Error(), "\n") {
			t.Errorf("the error %q is more than one line", err)
		}
		if out.Len() != 0 {
			t.Errorf("stdout %q; want nothing (nothing was queued)", out)
		}
		if n := queued(t, b); n != 0 {
			t.Errorf("%d messages queued; want none", n)
		}
	})
	t.Run("without --wait the message is queued with a note", func(t *testing.T) {
		ios, _, out, errOut := iostreams.Test()
		open, b := gatewayBackend(t)
		o := parse(t, ios, "--topic", "updates", "--message", "hi", "--id", "m1")
		o.Backend = open
		if err := publishRun(t.Context(), o); err != nil {
			t.Fatal(err)
		}
		if got := strings.TrimSpace(out.String()); got != "m1" {
			t.Errorf("stdout %q; want the message ID", got)
		}
		if !strings.Contains(errOut.String(), "note: a gateway runs but no broker does") || !strings.Contains(errOut.String(), "socks broker") {
			t.Errorf("stderr %q; want a note that the message waits for a broker", errOut)
		}
		if n := queued(t, b); n != 1 {
			t.Errorf("%d messages queued; want 1", n)
		}
	})
	t.Run("without --wait, a broker check that cannot tell does not stop the message", func(t *testing.T) {
		ios, _, out, errOut := iostreams.Test()
		open, b := gatewayBackend(t)
		// The probe cannot open the lock file (as when another process
		// is stopped holding its turn, it cannot tell).
		if err := os.Mkdir(filepath.Join(b.Config.StateDir, backend.BrokerLockFile), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := b.Broker(); err == nil || errors.Is(err, backend.ErrNoBroker) {
			t.Fatalf("Broker() = %v; want it unable to tell", err)
		}
		o := parse(t, ios, "--topic", "updates", "--message", "hi", "--id", "m3")
		o.Backend = open
		if err := publishRun(t.Context(), o); err != nil {
			t.Fatalf("publish without --wait failed: %v", err)
		}
		if got := strings.TrimSpace(out.String()); got != "m3" {
			t.Errorf("stdout %q; want the message ID", got)
		}
		if !strings.Contains(errOut.String(), "note: cannot tell whether a broker runs") {
			t.Errorf("stderr %q; want a note that socks cannot tell whether a broker runs", errOut)
		}
		if n := queued(t, b); n != 1 {
			t.Errorf("%d messages queued; want 1", n)
		}
	})
	t.Run("with a broker known, --wait queues and waits for the report", func(t *testing.T) {
		ios, _, out, errOut := iostreams.Test()
		open, b := brokerBackend(t)
		// The report is written as the message is queued, as if the
		// broker had been quick: publish finds it on its first look.
		b.Queue = &reportingQueue{Queue: b.Queue, store: b.Store, report: store.Report{MessageID: "m2", Targets: 1, Delivered: 1, At: time.Now()}}
		o := parse(t, ios, "--topic", "updates", "--message", "hi", "--id", "m2", "--wait")
		o.Backend = open
		o.WaitTimeout = time.Hour
		if err := publishRun(t.Context(), o); err != nil {
			t.Fatal(err)
		}
		if got := out.String(); !strings.HasPrefix(got, "m2\ttargets=1\tdelivered=1") {
			t.Errorf("stdout %q; want the report", got)
		}
		if errOut.Len() != 0 {
			t.Errorf("stderr %q; want no note", errOut)
		}
		if n := queued(t, b); n != 1 {
			t.Errorf("%d messages queued; want 1", n)
		}
	})
}

// reportingQueue records report in store as a message is sent, as a broker
// that handled it at once would.
type reportingQueue struct {
	store.Queue
	store  store.Store
	report store.Report
}

func (q *reportingQueue) Send(ctx context.Context, body []byte) (string, error) {
	id, err := q.Queue.Send(ctx, body)
	if err != nil {
		return id, err
	}
	return id, q.store.PutReport(ctx, q.report)
}

// slowBroker is a store whose broker reports on the message only after
// publish has looked once after sending it: until then a look finds what
// the store held before.
type slowBroker struct {
	store.Store
	sent   *bool
	looked bool
	report store.Report
}

func (s *slowBroker) GetReport(ctx context.Context, id string) (store.Report, error) {
	rep, err := s.Store.GetReport(ctx, id)
	if *s.sent && !s.looked {
		s.looked = true
		if perr := s.Store.PutReport(ctx, s.report); perr != nil {
			return rep, perr
		}
	}
	return rep, err
}

// sentQueue notes that a message was sent.
type sentQueue struct {
	store.Queue
	sent *bool
}

func (q *sentQueue) Send(ctx context.Context, body []byte) (string, error) {
	*q.sent = true
	return q.Queue.Send(ctx, body)
}

func TestWaitWithAReusedIDWaitsForThisMessagesReport(t *testing.T) {
	// `--id` is for tracing: a producer may reuse one (job-42-done). The
	// report of the earlier message with that ID is not this one's.
	ios, _, out, _ := iostreams.Test()
	open, b := brokerBackend(t)
	old := store.Report{MessageID: "job-42", Targets: 0, At: time.Now().Add(-time.Hour)}
	if err := b.Store.PutReport(t.Context(), old); err != nil {
		t.Fatal(err)
	}
	sent := false
	b.Queue = &sentQueue{Queue: b.Queue, sent: &sent}
	b.Store = &slowBroker{Store: b.Store, sent: &sent,
		report: store.Report{MessageID: "job-42", Targets: 2, Delivered: 2, At: time.Now()}}
	o := parse(t, ios, "--topic", "updates", "--message", "again", "--id", "job-42", "--wait")
	o.Backend = open
	o.WaitTimeout = time.Hour // a wait that never ends shows as a hung test
	if err := publishRun(t.Context(), o); err != nil {
		t.Fatal(err)
	}
	if got := out.String(); !strings.HasPrefix(got, "job-42\ttargets=2\tdelivered=2") {
		t.Errorf("stdout %q; want this message's report (targets=2), not the earlier message's (targets=0)", got)
	}
}

func TestMessageIsSentAsTyped(t *testing.T) {
	for _, msg := range []string{`<b>Tom & Jerry</b>`, `a "quoted" \ line` + "\n", "émoji 🎲"} {
		ios, _, _, _ := iostreams.Test()
		env, err := parse(t, ios, "--topic", "t", "--message", msg).Envelope(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		var back string
		if err := json.Unmarshal(env.Body, &back); err != nil || back != msg {
			t.Errorf("--message %q: body %s decodes to %q (%v)", msg, env.Body, back, err)
		}
		if strings.Contains(string(env.Body), `\u00`) {
			t.Errorf("--message %q: body %s escapes HTML characters", msg, env.Body)
		}
	}
}

// heldOpen is a stdin that a parent holds open and never writes to (Node's
// exec, an ssh session, a `while read` loop's input): a read blocks.
func heldOpen(t *testing.T, ios *iostreams.IOStreams) {
	t.Helper()
	in, w := io.Pipe()
	t.Cleanup(func() { w.Close() })
	ios.In = in
}

// envelopeWithin is o.Envelope(t.Context()), failed if it blocks (on stdin).
func envelopeWithin(t *testing.T, o *Options) (pubsub.Envelope, error) {
	t.Helper()
	type result struct {
		env pubsub.Envelope
		err error
	}
	done := make(chan result, 1)
	go func() {
		env, err := o.Envelope(t.Context())
		done <- result{env, err}
	}()
	select {
	case r := <-done:
		return r.env, r.err
	case <-time.After(10 * time.Second):
		t.Fatal("publish blocked reading a stdin nobody writes to")
		return pubsub.Envelope{}, nil
	}
}

func TestABodyFlagNeverReadsStdin(t *testing.T) {
	file := filepath.Join(t.TempDir(), "notice.json")
	if err := os.WriteFile(file, []byte(`{"notice":1}`), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name  string
		flags []string
		want  string
	}{
		{"--message", []string{"--message", "updates"}, `"updates"`},
		{"--body", []string{"--body", `{"n":1}`}, `{"n":1}`},
		{"--body-file with a file", []string{"--body-file", file}, `{"notice":1}`},
	} {
		t.Run(tc.name+" is the body, whatever stdin holds open", func(t *testing.T) {
			ios, _, _, _ := iostreams.Test()
			heldOpen(t, ios) // a pipe, not a terminal
			env, err := envelopeWithin(t, parse(t, ios, append([]string{"--geek", "Friendless", "--topic", "updates"}, tc.flags...)...))
			if err != nil || string(env.Body) != tc.want {
				t.Errorf("body %s, error %v; want %s", env.Body, err, tc.want)
			}
		})
	}
	t.Run("--body - asks for stdin, as --body-file - does", func(t *testing.T) {
		ios, in, _, _ := iostreams.Test()
		ios.SetTTY(true, false, false) // asked for, so read even from a terminal
		in.WriteString(`{"progress":42}` + "\n")
		env, err := envelopeWithin(t, parse(t, ios, "--topic", "jobs", "--body", "-"))
		if err != nil || string(env.Body) != `{"progress":42}` {
			t.Errorf("body %s, error %v; want the JSON from stdin", env.Body, err)
		}
	})
}

// closingQueue closes the local database before the send, so that the
// local queue's own send fails.
type closingQueue struct {
	store.Queue
	b *backend.Backend
}

func (q *closingQueue) Send(ctx context.Context, body []byte) (string, error) {
	q.b.DB.Close()
	return q.Queue.Send(ctx, body)
}

func TestAFailedSendSaysSoOnceInOneLine(t *testing.T) {
	// The error read "enqueueing the message: sending a message to the
	// local queue: …": the same thing said twice.
	ios, _, out, _ := iostreams.Test()
	open, opened := localBackend(t)
	b, err := open(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	b.Queue = &closingQueue{Queue: b.Queue, b: b}
	o := parse(t, ios, "--topic", "updates", "--message", "hi")
	o.Backend = open
	err = publishRun(t.Context(), o)
	if err == nil {
		t.Fatal("the send failed but publish did not say so")
	}
	msg := err.Error()
	want := "the message could not be queued on the local queue in " + opened().Config.StatePath() + ": "
	if !strings.HasPrefix(msg, want) || strings.Count(msg, "queue") != 2 || strings.Contains(msg, "enqueueing") || strings.ContainsRune(msg, '\n') {
		t.Errorf("error %q; want one line starting %q that says it once", msg, want)
	}
	if out.Len() != 0 {
		t.Errorf("stdout %q; want nothing (nothing was queued)", out)
	}
}

// silentQueue's Send fails as an SQS call does when the queue never
// answers: each attempt of op timed out.
type silentQueue struct {
	store.Queue
	op string
}

func (q *silentQueue) Send(context.Context, []byte) (string, error) {
	return "", fmt.Errorf("SendMessageBatch on queue socks-envelopes: operation error SQS: %s, exceeded maximum number of attempts, 3, %w", q.op,
		&awsops.AttemptTimeoutError{Op: q.op, Bound: 15 * time.Second})
}

// TestASendTheQueueNeverAnsweredMayHaveQueuedTheMessage: a queue that took
// the request and never answered (a frozen ElasticMQ, a network that
// dropped the answer) may still queue it, once per attempt; publish says
// so rather than that it was not queued, so that the user knows a retry
// may deliver it twice. A queue that never answered the look-up of its URL
// got no message.
func TestASendTheQueueNeverAnsweredMayHaveQueuedTheMessage(t *testing.T) {
	for op, want := range map[string]string{
		"SendMessageBatch": "may have been queued",
		"GetQueueUrl":      "could not be queued",
	} {
		ios, _, out, _ := iostreams.Test()
		open, b := brokerBackend(t)
		b.Queue = &silentQueue{Queue: b.Queue, op: op}
		o := parse(t, ios, "--topic", "updates", "--message", "hi")
		o.Backend = open
		err := publishRun(t.Context(), o)
		if err == nil || !strings.Contains(err.Error(), want) || strings.Contains(err.Error(), "operation error") {
			t.Errorf("%s never answered: got %v; want an error saying the message %s, in words", op, err, want)
		}
		if out.Len() != 0 {
			t.Errorf("stdout %q; want nothing", out)
		}
	}
}
