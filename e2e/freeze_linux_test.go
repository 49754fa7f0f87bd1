//go:build linux

package e2e

// Hung peers, for real: the processes are frozen with SIGSTOP and thawed
// with SIGCONT, as a stalled VM, a stop-the-world pause or a debugger
// would. A frozen peer still accepts TCP connections (the kernel completes
// the handshakes and buffers the requests) and answers nothing, so its
// callers meet the per-attempt bound (awsops.DefaultAttemptTimeout,
// shortened by SOCKS_ATTEMPT_TIMEOUT here), not a refusal.

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/socks-dev/socks/internal/emulatortest"
)

// privateEmulators is a DynamoDB Local and ElasticMQ of the test's own
// (`scripts/emulators run --data-only`: no moto, which it does not need),
// which it may freeze without stalling the other tests, which share the
// run's emulators.
type privateEmulators struct {
	dynamoURL, sqsURL string
	dynamoPID, sqsPID int
}

// startPrivateEmulators starts a private set and stops it when the test
// ends. Like every emulator test it is skipped, or failed under
// SOCKS_REQUIRE_EMULATORS=1, when the emulators are not set up.
func startPrivateEmulators(t *testing.T) *privateEmulators {
	t.Helper()
	emulatortest.DynamoDB(t)
	cmd := exec.Command(filepath.Join(moduleDir, "scripts", "emulators"), "run", "--data-only", "--",
		"sh", "-c", `env | grep '^SOCKS_TEST_'; echo ready; exec cat >/dev/null`)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	stderr := newSyncBuffer()
	cmd.Stderr = stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatalf("scripts/emulators run: %v", err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	pe := &privateEmulators{}
	t.Cleanup(func() {
		// A stopped process leaves SIGTERM pending: thaw them first.
		pe.thaw(pe.dynamoPID)
		pe.thaw(pe.sqsPID)
		_ = stdin.Close() // ends the command; the script stops the peers
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			<-done
		}
	})

	vars := map[string]string{}
	lines := make(chan string)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	timer := time.NewTimer(2 * time.Minute)
	defer timer.Stop()
	for ready := false; !ready; {
		select {
		case line, ok := <-lines:
			if !ok {
				t.Fatalf("scripts/emulators run ended before the peers were ready:\n%s", stderr)
			}
			if line == "ready" {
				ready = true
			}
			if k, v, ok := strings.Cut(line, "="); ok {
				vars[k] = v
			}
		case <-timer.C:
			t.Fatalf("the private emulators were not ready within 2 minutes:\n%s", stderr)
		}
	}
	pe.dynamoURL, pe.sqsURL = vars[emulatortest.EnvDynamoDB], vars[emulatortest.EnvSQS]
	pe.dynamoPID, _ = strconv.Atoi(vars["SOCKS_TEST_DYNAMODB_PID"])
	pe.sqsPID, _ = strconv.Atoi(vars["SOCKS_TEST_SQS_PID"])
	if !emulatortest.Loopback(pe.dynamoURL) || !emulatortest.Loopback(pe.sqsURL) || pe.dynamoPID <= 1 || pe.sqsPID <= 1 {
		t.Fatalf("scripts/emulators run gave %v", vars)
	}
	// The data plane only, and not the moto of the run around this test
	// (its endpoint is in this process's environment) passed on as if
	// it were the private set's.
	if v, ok := vars[emulatortest.EnvMoto]; ok {
		t.Fatalf("scripts/emulators run --data-only gave a moto endpoint %q", v)
	}
	return pe
}

// freeze stops pid (SIGSTOP) until thaw; it is thawed when the test ends.
func (pe *privateEmulators) freeze(t *testing.T, pid int) {
	t.Helper()
	if err := syscall.Kill(pid, syscall.SIGSTOP); err != nil {
		t.Fatalf("SIGSTOP %d: %v", pid, err)
	}
	t.Cleanup(func() { pe.thaw(pid) })
}

func (pe *privateEmulators) thaw(pid int) {
	if pid > 1 {
		_ = syscall.Kill(pid, syscall.SIGCONT)
	}
}

// freezeProc stops a socks process until thawProc; it is thawed when the
// test ends, so that it can be stopped.
func freezeProc(t *testing.T, p *os.Process) {
	t.Helper()
	if err := p.Signal(syscall.SIGSTOP); err != nil {
		t.Fatalf("SIGSTOP %d: %v", p.Pid, err)
	}
	t.Cleanup(func() { thawProc(p) })
}

func thawProc(p *os.Process) { _ = p.Signal(syscall.SIGCONT) }

// awaitQueued waits (bounded by receiveTimeout) until the stack's queue
// on sqsURL holds a message, waiting or in flight.
func awaitQueued(t *testing.T, sqsURL, stack string) {
	t.Helper()
	cfg := aws.Config{Region: "us-east-1", Credentials: credentials.NewStaticCredentialsProvider("test", "test", "")}
	api := sqs.NewFromConfig(cfg, func(o *sqs.Options) { o.BaseEndpoint = aws.String(sqsURL) })
	ctx := testContext(t, receiveTimeout)
	out, err := api.GetQueueUrl(ctx, &sqs.GetQueueUrlInput{QueueName: aws.String(stack + "-envelopes")})
	if err != nil {
		t.Fatal(err)
	}
	for {
		attrs, err := api.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{
			QueueUrl: out.QueueUrl,
			AttributeNames: []sqstypes.QueueAttributeName{
				sqstypes.QueueAttributeNameApproximateNumberOfMessages,
				sqstypes.QueueAttributeNameApproximateNumberOfMessagesNotVisible,
			},
		})
		if err == nil {
			for _, v := range attrs.Attributes {
				if v != "0" {
					return
				}
			}
		}
		select {
		case <-ctx.Done():
			t.Fatalf("no message was queued within %s (%v)", receiveTimeout, err)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// TestFrozenEmulators runs the cases that freeze DynamoDB Local or
// ElasticMQ, one after the other on one private pair (starting a pair
// costs more than the cases).
func TestFrozenEmulators(t *testing.T) {
	t.Parallel()
	pe := startPrivateEmulators(t)
	t.Run("publish and the broker lose nothing and end every wait", func(t *testing.T) {
		frozenDynamoDBAndSQSLoseNothingAndEndEveryWait(t, pe)
	})
	t.Run("the Lambda function answers before its deadline", func(t *testing.T) {
		theLambdaFunctionAnswersBeforeItsDeadlineWithAFrozenPeer(t, pe)
	})
}

// frozenDynamoDBAndSQSLoseNothingAndEndEveryWait freezes DynamoDB
// Local and then ElasticMQ (SIGSTOP) under `socks serve --backend aws`,
// `socks broker` and `socks publish`, each call attempt bounded by 1 s.
//
//   - A `publish --wait` on a frozen store ends within --wait-timeout,
//     though each attempt may take 10 minutes, saying nothing was queued
//     (it looked for an earlier report first and held for three attempts,
//     45 s by default, then failed naming a report of a message it never
//     queued).
//   - A `publish --wait` whose message is queued, and whose reads of the
//     report then go unanswered for longer than the attempts, waits on and
//     reports the delivery once the store answers (it failed at the first
//     unanswered read, exit 1, though the message was delivered).
//   - A `publish` on a frozen queue fails with exit 1, saying the message
//     could not be queued; the broker, never restarted, delivers what is
//     published once the queue answers.
func frozenDynamoDBAndSQSLoseNothingAndEndEveryWait(t *testing.T, pe *privateEmulators) {
	s := &awsStack{t: t, name: uniqueStack("frozen"), env: awsEnv(t, map[string]string{
		"SOCKS_DYNAMODB_ENDPOINT_URL": pe.dynamoURL,
		"SOCKS_SQS_ENDPOINT_URL":      pe.sqsURL,
		"SOCKS_ATTEMPT_TIMEOUT":       "1s",
	})}
	s.must("provision")
	srv, mgmt := s.startServe(t)
	in := collect(mustDial(t, srv.connectURL("alice", strings.TrimSpace(s.must("chatter", "issue", "--geek", "alice")), "updates")))
	brk := startEnv(t, s.env, s.args("broker", "--callback-url", mgmt, "--wait", "1s", "--visibility", "3s")...)
	brk.awaitStderr("broker started", startTimeout)
	publish := func(body string, extra ...string) []string {
		return s.args(append([]string{"publish", "--geek", "alice", "--topic", "updates", "--body", body}, extra...)...)
	}
	delivered := func(r result) {
		t.Helper()
		if r.code != 0 {
			t.Fatalf("want exit 0:\n%s", r)
		}
		if rep := parseReport(t, r); rep.Report.Targets != 1 || rep.Report.Delivered != 1 {
			t.Errorf("publish --wait reported %s; want targets=1 delivered=1", rep)
		}
	}
	delivered(runEnv(t, s.env, nil, publish(`"before"`, "--wait", "--wait-timeout", "20s", "--json")...))
	in.await(t, `"before"`, receiveTimeout)

	// The store frozen: --wait-timeout bounds the wait, however long an
	// attempt may take.
	pe.freeze(t, pe.dynamoPID)
	slow := append(slices.Clone(s.env), "SOCKS_ATTEMPT_TIMEOUT=10m")
	r := runEnv(t, slow, nil, publish(`"refused"`, "--wait", "--wait-timeout", "2s")...)
	checkFailure(t, r, 1, "nothing was queued")
	if strings.Contains(r.stderr, "operation error") {
		t.Errorf("the error shows the SDK's words:\n%s", r.stderr)
	}
	pe.thaw(pe.dynamoPID)

	// The store frozen while a queued message waits for its broker (frozen
	// too, so that the report is still to come).
	freezeProc(t, brk.cmd.Process)
	wait := startEnv(t, s.env, publish(`"during"`, "--wait", "--wait-timeout", "90s", "--json")...)
	awaitQueued(t, pe.sqsURL, s.name)
	pe.freeze(t, pe.dynamoPID)
	wait.awaitStderr("still waiting", commandTimeout)
	pe.thaw(pe.dynamoPID)
	thawProc(brk.cmd.Process)
	delivered(wait.result())
	in.await(t, `"during"`, receiveTimeout)

	// The queue frozen: a publish is refused in words, and the broker
	// recovers by itself.
	pe.freeze(t, pe.sqsPID)
	r = runEnv(t, s.env, nil, publish(`"unqueued"`)...)
	checkFailure(t, r, 1, "could not be queued")
	pe.thaw(pe.sqsPID)
	delivered(runEnv(t, s.env, nil, publish(`"after"`, "--wait", "--wait-timeout", "60s", "--json")...))
	in.await(t, `"after"`, receiveTimeout)
	select {
	case <-brk.done:
		t.Errorf("the broker exited across the freezes:\n%s", brk.stderr)
	default:
	}
}

// TestAFrozenServeKeepsWhatIsPublishedAndThenDeliversIt freezes `socks
// serve` (SIGSTOP) under a raw WebSocket client and a `socks listen`: a
// `publish --wait` meanwhile ends at its --wait-timeout, exit 4, saying the
// message is still pending though a broker runs; a plain publish is queued.
// Thawed, the same serve delivers both to both clients.
func TestAFrozenServeKeepsWhatIsPublishedAndThenDeliversIt(t *testing.T) {
	t.Parallel()
	s := newStack(t)
	srv := s.serve()
	in := collect(mustDial(t, srv.connectURL("alice", s.issue("alice"), "updates")))
	l := s.listenPiped("--geek", "bob", "--topic", "updates", "--json")
	l.waitConnected(true)

	freezeProc(t, srv.cmd.Process)
	r := s.run("publish", "--topic", "updates", "--body", `{"n":1}`, "--wait", "--wait-timeout", "1s")
	if r.code != 4 || !strings.Contains(r.stderr, "still pending") {
		t.Errorf("publish --wait on a frozen serve: want exit 4 saying the message is still pending:\n%s", r)
	}
	if r := s.run("publish", "--topic", "updates", "--body", `{"n":2}`); r.code != 0 {
		t.Errorf("publish on a frozen serve: want exit 0 (queued):\n%s", r)
	}
	thawProc(srv.cmd.Process)

	for _, body := range []string{`{"n":1}`, `{"n":2}`} {
		in.await(t, body, receiveTimeout)
	}
	got := map[string]bool{}
	for len(got) < 2 {
		line, _ := waitListenLine(t, l.stdout, "both messages published while serve was frozen", listenWait, func(s string) bool {
			return parseListenLine(t, s).Kind == "message"
		})
		got[string(parseListenLine(t, line).Body)] = true
	}
}

// TestAFrozenListenerIsClosedAsASlowConsumerWhileOthersReceive freezes a
// `socks listen` (SIGSTOP) while large messages flow to its topic: once
// the kernel's buffers and the gateway's --max-queued-bytes are full, the
// gateway closes it with 1008 "slow consumer", and a client beside it
// receives every message. Thawed, the listener reports the close and
// reconnects by itself.
func TestAFrozenListenerIsClosedAsASlowConsumerWhileOthersReceive(t *testing.T) {
	t.Parallel()
	const msgs = 150 // of 100 KB: more than the kernel buffers on loopback
	s := newStack(t)
	srv := s.serve("--max-queued-bytes", "131072")
	in := collect(mustDial(t, srv.connectURL("alice", s.issue("alice"), "flood")))
	l := s.listenPiped("--geek", "bob", "--topic", "flood", "--json")
	l.waitConnected(true)

	freezeProc(t, l.cmd.Process)
	pad := strings.Repeat("x", 100_000)
	var bodies [][]byte
	for n := range msgs {
		bodies = append(bodies, []byte(fmt.Sprintf(`{"topics":["flood"],"body":{"n":%d,"pad":%q}}`, n, pad)))
	}
	if _, err := s.openState().Queue().SendBatch(testContext(t, commandTimeout), bodies); err != nil {
		t.Fatal(err)
	}
	in.await(t, fmt.Sprintf(`{"n":%d,"pad":%q}`, msgs-1, pad), 2*receiveTimeout)
	thawProc(l.cmd.Process)

	line, _ := waitListenLine(t, l.stdout, "the close for a slow consumer", listenWait, func(s string) bool {
		p := parseListenLine(t, s)
		return p.Kind == "state" && p.State == "disconnected"
	})
	if !strings.Contains(line, `"code":1008`) || !strings.Contains(line, "slow consumer") {
		t.Errorf("the frozen listener was closed with %s; want 1008 slow consumer", line)
	}
	l.waitConnected(true)
	in.mu.Lock()
	n := len(in.got)
	in.mu.Unlock()
	if n < msgs {
		t.Errorf("the client beside the frozen listener got %d of %d messages", n, msgs)
	}
}

// TestAFrozenBrokerBesideAnotherLosesNothingAndDuplicatesAtMostOnce
// freezes `socks broker` (SIGSTOP) with a message in hand (every post is
// answered after 1 s): a second broker receives it once the first one's
// --visibility has passed and delivers it, and `publish --wait` reports
// that. Thawed, the first finishes its stale handling without touching the
// message again: at most one extra copy, nothing dead-lettered, the queue
// empty, and both brokers go on delivering.
func TestAFrozenBrokerBesideAnotherLosesNothingAndDuplicatesAtMostOnce(t *testing.T) {
	t.Parallel()
	s := newStack(t)
	srv := s.serve("--no-broker", "--faults", "slow=1:1s")
	in := collect(mustDial(t, srv.connectURL("alice", s.issue("alice"), "updates")))
	first := s.broker("--visibility", "2s")
	wait := start(t, "publish", "--geek", "alice", "--topic", "updates", "--body", `{"n":1}`,
		"--wait", "--wait-timeout", "60s", "--json", "--state-dir", s.dir)
	s.awaitInHand(1)
	freezeProc(t, first.cmd.Process)
	s.broker("--visibility", "2s")

	r := wait.result()
	if r.code != 0 {
		t.Fatalf("publish --wait across the frozen broker:\n%s", r)
	}
	if rep := parseReport(t, r); rep.Report.Targets != 1 || rep.Report.Delivered != 1 {
		t.Errorf("publish --wait reported %s; want targets=1 delivered=1", rep)
	}
	in.await(t, `{"n":1}`, receiveTimeout)

	thawProc(first.cmd.Process)
	deadline := time.Now().Add(commandTimeout)
	for !regexp.MustCompile(`msg=(delivered|"will retry")`).MatchString(first.stderr.String()) {
		if time.Now().After(deadline) {
			t.Fatalf("the thawed broker did not finish its message within %s:\n%s", commandTimeout, first.stderr)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if rep := s.publishWait("--geek", "alice", "--topic", "updates", "--body", `{"n":2}`); rep.Report.Delivered != 1 {
		t.Errorf("after the thaw publish --wait reported %s; want delivered=1", rep)
	}
	in.await(t, `{"n":2}`, receiveTimeout)
	in.mu.Lock()
	copies := 0
	for _, g := range in.got {
		if g == `{"n":1}` {
			copies++
		}
	}
	in.mu.Unlock()
	if copies > 2 {
		t.Errorf("the client got %d copies of the message; want at most 2 (one extra, from the frozen broker's post)", copies)
	}
	if n := s.queued(t); n != 0 {
		t.Errorf("the queue holds %d messages; want none", n)
	}
	if dead := deadLetters(t, s.run); len(dead) != 0 {
		t.Errorf("dead letters %+v; want none", dead)
	}
}

// theLambdaFunctionAnswersBeforeItsDeadlineWithAFrozenPeer runs the
// Lambda binary (a fake Runtime API giving each invocation 4 s) on a
// private pair of emulators, with the default 15 s attempt bound, so that
// only the invocation's deadline can end a call to a frozen peer:
//
//   - the Management API is a `socks serve` frozen with SIGSTOP: the batch
//     is answered before the deadline, the record reported for a retry
//     (no post succeeded);
//   - DynamoDB Local is frozen: the connections cannot be looked up, and
//     the record is reported for a retry before the deadline.
func theLambdaFunctionAnswersBeforeItsDeadlineWithAFrozenPeer(t *testing.T, pe *privateEmulators) {
	endpoints := map[string]string{"SOCKS_DYNAMODB_ENDPOINT_URL": pe.dynamoURL, "SOCKS_SQS_ENDPOINT_URL": pe.sqsURL}
	s := &awsStack{t: t, name: uniqueStack("frozenfn"), env: awsEnv(t, endpoints)}
	s.must("provision")
	secret := strings.TrimSpace(s.must("chatter", "issue", "--geek", "Friendless"))
	gw := newStack(t).serve()
	freezeProc(t, gw.cmd.Process)

	api := newRuntimeAPI(t)
	api.deadline = 4 * time.Second
	fnEnv := map[string]string{
		"AWS_LAMBDA_RUNTIME_API": api.addr,
		"SOCKS_STACK":            s.name,
		"SOCKS_CALLBACK_URL":     strings.TrimSuffix("http"+strings.TrimPrefix(gw.URL, "ws"), "/"),
	}
	for k, v := range endpoints {
		fnEnv[k] = v
	}
	fn := startFunction(t, awsEnv(t, fnEnv))
	defer fn.kill()
	if a := api.invoke(t, "req-connect", connectEvent(t, secret)); a.kind != "response" || !strings.Contains(string(a.body), `"statusCode":200`) {
		t.Fatalf("$connect: %s: %s\nstderr: %s", a.kind, a.body, fn.stderr)
	}
	cfg := aws.Config{Region: "us-east-1", Credentials: credentials.NewStaticCredentialsProvider("test", "test", "")}
	q := sqs.NewFromConfig(cfg, func(o *sqs.Options) { o.BaseEndpoint = aws.String(pe.sqsURL) })
	retried := func(what, id string, a answer) {
		t.Helper()
		if want := fmt.Sprintf(`{"batchItemFailures":[{"itemIdentifier":%q}]}`, id); a.kind != "response" || string(a.body) != want {
			t.Errorf("%s: %s %s; want %s\nstderr: %s", what, a.kind, a.body, want, fn.stderr)
		}
		// Retried for the frozen peer, not left unhandled as another
		// queue's record would be.
		if strings.Contains(fn.stderr.String(), "from another queue") {
			t.Errorf("%s: the record was taken for another queue's:\n%s", what, fn.stderr)
		}
	}

	payload, ids := sqsBatch(t, q, s.name, `{"users":["Friendless"],"topics":["updates"],"body":1}`)
	retried("a frozen Management API", ids[0], api.invoke(t, "req-frozen-gateway", payload))

	payload, ids = sqsBatch(t, q, s.name, `{"users":["Friendless"],"topics":["updates"],"body":2}`)
	pe.freeze(t, pe.dynamoPID)
	retried("a frozen DynamoDB", ids[0], api.invoke(t, "req-frozen-store", payload))
}
