package publish

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/socks-dev/socks/backend"
	"github.com/socks-dev/socks/commands/cmdutil"
	"github.com/socks-dev/socks/config"
	"github.com/socks-dev/socks/iostreams"
	"github.com/socks-dev/socks/store"
)

// laterReports is a store whose broker records the next of reports each
// time publish looks after sending, before the look: the first handling
// of the message and then its follow-ups.
type laterReports struct {
	store.Store
	sent    *bool
	reports []store.Report
}

func (s *laterReports) GetReport(ctx context.Context, id string) (store.Report, error) {
	if *s.sent && len(s.reports) > 0 {
		if err := s.Store.PutReport(ctx, s.reports[0]); err != nil {
			return store.Report{}, err
		}
		s.reports = s.reports[1:]
	}
	return s.Store.GetReport(ctx, id)
}

func TestWaitWaitsForTheFollowUpsOfTheMessage(t *testing.T) {
	// The first handling delivered to one of three connections and handed
	// two on; the first follow-up delivered one more and handed the last
	// on again; the second delivered it. --wait prints the last.
	ios, _, out, errOut := iostreams.Test()
	open, b := brokerBackend(t)
	at := time.Now()
	sent := false
	b.Queue = &sentQueue{Queue: b.Queue, sent: &sent}
	b.Store = &laterReports{Store: b.Store, sent: &sent, reports: []store.Report{
		{MessageID: "m1", Targets: 3, Delivered: 1, Failed: 2, Pending: 2, Errors: []string{"HTTP 500"}, At: at},
		{MessageID: "m1", Targets: 3, Delivered: 2, Failed: 1, Pending: 1, Errors: []string{"HTTP 500"}, At: at.Add(time.Second)},
		{MessageID: "m1", Targets: 3, Delivered: 3, At: at.Add(2 * time.Second)},
	}}
	o := parse(t, ios, "--topic", "updates", "--message", "hi", "--id", "m1", "--wait")
	o.Backend = open
	o.WaitTimeout = time.Hour // a wait that never ends shows as a hung test
	if err := publishRun(t.Context(), o); err != nil {
		t.Fatalf("publish --wait: %v (stderr %q)", err, errOut)
	}
	if got := out.String(); got != "m1\ttargets=3\tdelivered=3\tgone=0\tfailed=0\n" {
		t.Errorf("stdout %q; want the report once the follow-ups settled it", got)
	}
}

// crashingBrokers receives a message sent to the queue until the queue
// dead-letters it by itself, as brokers killed while handling it would.
type crashingBrokers struct {
	store.Queue
}

func (q *crashingBrokers) Send(ctx context.Context, body []byte) (string, error) {
	id, err := q.Queue.Send(ctx, body)
	if err != nil {
		return id, err
	}
	for range 2 * store.DefaultMaxReceives {
		msgs, err := q.Queue.Receive(ctx, 1, 0, 0)
		if err != nil || len(msgs) == 0 {
			return id, err
		}
	}
	return id, errors.New("the queue never dead-lettered the message")
}

func TestWaitReportsAMessageTheQueueDeadLetteredByItself(t *testing.T) {
	ios, _, out, errOut := iostreams.Test()
	open, b := brokerBackend(t)
	b.Queue = &crashingBrokers{Queue: b.Queue}
	o := parse(t, ios, "--topic", "updates", "--message", "hi", "--id", "m-dead", "--wait")
	o.Backend = open
	o.WaitTimeout = time.Hour // a wait that never ends shows as a hung test
	err := publishRun(t.Context(), o)
	var exit *cmdutil.ExitCodeError
	if !errors.As(err, &exit) || exit.Code != cmdutil.ExitError || !strings.Contains(err.Error(), "dead-lettered") {
		t.Fatalf("publish --wait = %v; want exit 1 saying the message was dead-lettered", err)
	}
	if got := out.String(); !strings.HasPrefix(got, "m-dead\t") {
		t.Errorf("stdout %q; want the report", got)
	}
	if !strings.Contains(errOut.String(), "received 5 times without being handled") {
		t.Errorf("stderr %q; want the queue's reason", errOut)
	}
}

func TestWaitJSONLeavesTheBrokersBookkeepingOut(t *testing.T) {
	ios, _, out, _ := iostreams.Test()
	open, b := brokerBackend(t)
	rep := store.Report{MessageID: "m3", Targets: 2, Delivered: 2, At: time.Now()}.HandOn([][]string{{"c1"}})
	rep.Pending = 0 // its follow-up was settled
	b.Queue = &reportingQueue{Queue: b.Queue, store: b.Store, report: rep}
	o := parse(t, ios, "--topic", "updates", "--message", "hi", "--id", "m3", "--wait", "--json")
	o.Backend = open
	o.WaitTimeout = time.Hour // a wait that never ends shows as a hung test
	if err := publishRun(t.Context(), o); err != nil {
		t.Fatal(err)
	}
	if got := out.String(); !strings.Contains(got, `"delivered":2`) || strings.Contains(got, "followUps") {
		t.Errorf("stdout %q; want the report without the follow-ups' bookkeeping", got)
	}
}

func TestWaitTimeoutWithARunningBrokerSaysItRunsAndTheMessageIsPending(t *testing.T) {
	// A gateway and a broker run (record and lock), but no report comes:
	// the broker cannot write its state (a full disk), for example. The
	// timeout says what is known, not "is the broker running?".
	ios, _, _, _ := iostreams.Test()
	open, b := brokerBackend(t)
	o := parse(t, ios, "--topic", "updates", "--message", "hi", "--id", "m-stuck", "--wait")
	o.Backend = open
	o.WaitTimeout = 50 * time.Millisecond
	err := publishRun(t.Context(), o)
	var exit *cmdutil.ExitCodeError
	if !errors.As(err, &exit) || exit.Code != cmdutil.ExitTimeout {
		t.Fatalf("publish --wait = %v; want a timeout", err)
	}
	msg := err.Error()
	if strings.Contains(msg, "is the broker running") || !strings.Contains(msg, "a broker is running") || !strings.Contains(msg, "pending") {
		t.Fatalf("timeout %q; want it to say a broker runs and the message is pending", msg)
	}
	// Most often the broker has it in hand, its delivery slower than
	// the wait (a slow gateway, a large fan-out): the timeout named a
	// full disk, and not that a longer wait would do.
	if !strings.Contains(msg, "being delivered") || !strings.Contains(msg, "--wait-timeout") {
		t.Errorf("timeout %q; want it to say the message may be being delivered, and that a longer --wait-timeout waits for it", msg)
	}
	if n := queued(t, b); n != 1 {
		t.Fatalf("%d messages queued; want the message still pending", n)
	}
}

// TestWaitTimeoutOnAWSAsksForTheLambdaOrTheBroker: on AWS the queue is
// consumed by the Lambda function or `socks broker --backend aws`, not by
// `socks serve`; a --wait that times out with no report asks about those.
func TestWaitTimeoutOnAWSAsksForTheLambdaOrTheBroker(t *testing.T) {
	ios, _, _, _ := iostreams.Test()
	openLocal, _ := localBackend(t)
	local, err := openLocal(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	// The AWS backend's seams, with the local store and queue behind them.
	aws := &backend.Backend{Config: config.Config{Backend: config.BackendAWS}, Store: local.Store, Queue: local.Queue}
	o := parse(t, ios, "--topic", "updates", "--message", "hi", "--id", "m-aws", "--wait")
	o.Backend = func(context.Context) (*backend.Backend, error) { return aws, nil }
	o.WaitTimeout = 50 * time.Millisecond
	err = publishRun(t.Context(), o)
	var exit *cmdutil.ExitCodeError
	if !errors.As(err, &exit) || exit.Code != cmdutil.ExitTimeout {
		t.Fatalf("publish --wait = %v; want a timeout", err)
	}
	msg := err.Error()
	if strings.Contains(msg, "socks serve") || !strings.Contains(msg, "Lambda function") || !strings.Contains(msg, "socks broker --backend aws") {
		t.Fatalf("timeout %q; want it to ask whether the Lambda function or `socks broker --backend aws` consumes the queue, not about socks serve", msg)
	}
	// It says the --wait-timeout given, not what was left of it after the
	// look for an earlier report (such as 48.952529ms).
	if !strings.Contains(msg, "within 50ms:") {
		t.Fatalf("timeout %q; want it to say the --wait-timeout given, within 50ms", msg)
	}
	// A consumer that dies on the message (a function timeout, out of
	// memory) writes no report, and SQS itself dead-letters it minutes
	// later, past any usual wait: the timeout says where to look then,
	// rather than only asking whether anything consumes the queue.
	if !strings.Contains(msg, "redrive policy") || !strings.Contains(msg, "socks dlq list --backend aws") {
		t.Fatalf("timeout %q; want it to say that SQS's redrive policy may dead-letter the message without a report, and how to see it", msg)
	}
}

// TestWaitReportTimeoutAsksForSocksServe: WaitReport (the local stack's
// demo) keeps asking about `socks serve`.
func TestWaitReportTimeoutAsksForSocksServe(t *testing.T) {
	open, _ := localBackend(t)
	b, err := open(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	_, err = WaitReport(t.Context(), b.Store, "m-none", 50*time.Millisecond)
	if err == nil || !strings.Contains(err.Error(), "is the broker running (socks serve)?") {
		t.Fatalf("WaitReport = %v; want the timeout to ask whether the broker runs (socks serve)", err)
	}
}

// TestAWaitCutShortByCtrlCSaysTheMessageIsQueued: Ctrl-C during --wait
// printed the ID and "socks: interrupted", leaving the user to guess
// whether the message went. It did: the error says it is queued and only
// the wait stopped (Main prints it after "interrupted", exit 130).
func TestAWaitCutShortByCtrlCSaysTheMessageIsQueued(t *testing.T) {
	ios, _, out, _ := iostreams.Test()
	open, b := brokerBackend(t)
	o := parse(t, ios, "--topic", "updates", "--message", "hi", "--id", "m-waited", "--wait")
	o.Backend = open
	o.WaitTimeout = time.Hour
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	go func() {
		for deadline := time.Now().Add(time.Minute); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
			if st, err := b.Queue.Stats(t.Context()); err == nil && st.Visible+st.InFlight > 0 {
				break
			}
		}
		cancel() // Ctrl-C
	}()
	err := publishRun(ctx, o)
	if err == nil || errors.Is(err, context.Canceled) || !strings.Contains(err.Error(), "m-waited is queued") {
		t.Fatalf("publish --wait cut short = %v; want it to say the message is queued", err)
	}
	if n := queued(t, b); n != 1 {
		t.Fatalf("%d messages queued; want the message", n)
	}
	if !strings.Contains(out.String(), "m-waited") {
		t.Errorf("stdout %q; want the message ID", out)
	}
}

// brokerDies is a queue whose only broker (the lock this test holds) is
// killed as the message is sent.
type brokerDies struct {
	store.Queue
	release func()
}

func (q *brokerDies) Send(ctx context.Context, body []byte) (string, error) {
	id, err := q.Queue.Send(ctx, body)
	q.release()
	return id, err
}

// TestWaitTimeoutAfterTheBrokerDiedSaysItStopped: a broker ran when the
// message was queued and was killed during the wait (its lock let go):
// the timeout said "though a broker is running for this state dir (it
// holds the broker lock)", which was no longer true; it says the broker
// stopped, and that the message waits for the next one.
func TestWaitTimeoutAfterTheBrokerDiedSaysItStopped(t *testing.T) {
	ios, _, _, _ := iostreams.Test()
	open, b := gatewayBackend(t)
	release, err := b.HoldBroker()
	if err != nil {
		t.Fatal(err)
	}
	var once sync.Once
	b.Queue = &brokerDies{Queue: b.Queue, release: func() { once.Do(release) }}
	t.Cleanup(func() { once.Do(release) })
	o := parse(t, ios, "--topic", "updates", "--message", "hi", "--wait")
	o.Backend = open
	o.WaitTimeout = 50 * time.Millisecond
	err = publishRun(t.Context(), o)
	var exit *cmdutil.ExitCodeError
	if !errors.As(err, &exit) || exit.Code != cmdutil.ExitTimeout {
		t.Fatalf("publish --wait = %v; want a timeout", err)
	}
	msg := err.Error()
	if strings.Contains(msg, "a broker is running") || !strings.Contains(msg, "stopped") || !strings.Contains(msg, "socks broker") {
		t.Fatalf("timeout %q; want it to say the broker stopped and to start one, not that one runs", msg)
	}
}

// TestWaitTimeoutWhenWhetherTheBrokerRunsCannotBeToldSaysSo: a broker ran
// when the message was queued; at the timeout whether one still runs
// cannot be told (the broker lock cannot be opened; another socks
// process holding the probe's turn does so for 5 s). The timeout said
// the broker had stopped (killed?) and to start one, which may be
// untrue: it says the message is still pending and why it cannot tell.
func TestWaitTimeoutWhenWhetherTheBrokerRunsCannotBeToldSaysSo(t *testing.T) {
	ios, _, _, _ := iostreams.Test()
	open, b := gatewayBackend(t)
	release, err := b.HoldBroker()
	if err != nil {
		t.Fatal(err)
	}
	defer release()
	lock := filepath.Join(b.Config.StateDir, backend.BrokerLockFile)
	var once sync.Once
	b.Queue = &brokerDies{Queue: b.Queue, release: func() {
		once.Do(func() {
			// The broker runs on, its lock's path no longer a file.
			if err := os.Remove(lock); err != nil {
				t.Error(err)
			}
			if err := os.Mkdir(lock, 0o700); err != nil {
				t.Error(err)
			}
		})
	}}
	o := parse(t, ios, "--topic", "updates", "--message", "hi", "--wait")
	o.Backend = open
	o.WaitTimeout = 50 * time.Millisecond
	err = publishRun(t.Context(), o)
	var exit *cmdutil.ExitCodeError
	if !errors.As(err, &exit) || exit.Code != cmdutil.ExitTimeout {
		t.Fatalf("publish --wait = %v; want a timeout", err)
	}
	msg := err.Error()
	if strings.Contains(msg, "stopped") || !strings.Contains(msg, "cannot tell whether a broker runs") || !strings.Contains(msg, "still pending") {
		t.Fatalf("timeout %q; want it to say the message is still pending and that whether a broker runs cannot be told, not that it stopped", msg)
	}
}
