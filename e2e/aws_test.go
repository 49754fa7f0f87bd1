package e2e

// The AWS backend end to end: the real binary against DynamoDB Local and
// ElasticMQ (scripts/emulators), driven as an operator would — provision,
// drift, chatter, a local gateway on the DynamoDB store, publish to SQS, the
// broker worker, teardown — plus the errors a misconfigured machine gets,
// and the binary in Lambda mode against a fake Lambda Runtime API.
//
// Every process gets a scrubbed environment: dummy credentials, empty AWS
// config files, no instance metadata, and endpoints on loopback only, so
// nothing here can reach a real AWS account.

import (
	"bytes"
	"cmp"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	dynamotypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/socks-dev/socks/internal/emulatortest"
	"github.com/socks-dev/socks/internal/refusing"
)

const (
	envTestDynamo    = emulatortest.EnvDynamoDB
	envTestSQS       = emulatortest.EnvSQS
	envRequireEmuls  = emulatortest.EnvRequire
	emulatorsMissing = "emulators not running: run `make test` or `scripts/emulators run -- go test ./e2e/`"
)

// emulators returns the endpoints of DynamoDB Local and ElasticMQ
// (emulatortest: the test is skipped when they are not set, failed under
// SOCKS_REQUIRE_EMULATORS=1, and endpoints off loopback are refused).
func emulators(t *testing.T) (dynamoURL, sqsURL string) {
	t.Helper()
	return emulatortest.DynamoDB(t), emulatortest.SQS(t)
}

// awsEnv is the environment of an AWS-backend socks process: the test's
// own without any AWS_, SOCKS_ or colour setting, then dummy credentials, a
// region, empty shared config files, no instance metadata, and set (which
// may remove a variable with an empty value). Unless set gives endpoints,
// every endpoint is a loopback port that refuses connections (refusing.URL).
func awsEnv(t *testing.T, set map[string]string) []string {
	t.Helper()
	dir := t.TempDir()
	empty := filepath.Join(dir, "empty")
	if err := os.WriteFile(empty, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	vars := map[string]string{
		"NO_COLOR":                    "1",
		"XDG_STATE_HOME":              dir,
		"AWS_ACCESS_KEY_ID":           "test",
		"AWS_SECRET_ACCESS_KEY":       "test",
		"AWS_REGION":                  "us-east-1",
		"AWS_CONFIG_FILE":             empty,
		"AWS_SHARED_CREDENTIALS_FILE": empty,
		"AWS_EC2_METADATA_DISABLED":   "true",
		"SOCKS_ENDPOINT_URL":          refusing.URL(t),
	}
	for k, v := range set {
		vars[k] = v
	}
	var env []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(k, "AWS_") || strings.HasPrefix(k, "SOCKS_") || k == "XDG_STATE_HOME" || k == "NO_COLOR" || k == "CLICOLOR_FORCE" {
			continue
		}
		env = append(env, kv)
	}
	for k, v := range vars {
		if v != "" {
			env = append(env, k+"="+v)
		}
	}
	return env
}

// emulatorEnv is awsEnv pointing DynamoDB and SQS at the emulators.
func emulatorEnv(t *testing.T) []string {
	dynamoURL, sqsURL := emulators(t)
	return awsEnv(t, map[string]string{"SOCKS_DYNAMODB_ENDPOINT_URL": dynamoURL, "SOCKS_SQS_ENDPOINT_URL": sqsURL})
}

func uniqueStack(prefix string) string {
	var b [4]byte
	_, _ = rand.Read(b[:])
	return prefix + "-" + hex.EncodeToString(b[:])
}

// awsStack runs socks commands on one stack of the AWS backend.
type awsStack struct {
	t    *testing.T
	env  []string
	name string
}

func (s *awsStack) args(args ...string) []string {
	return append(args, "--backend", "aws", "--stack", s.name)
}

func (s *awsStack) run(args ...string) result {
	s.t.Helper()
	return runEnv(s.t, s.env, nil, s.args(args...)...)
}

func (s *awsStack) must(args ...string) string {
	s.t.Helper()
	r := s.run(args...)
	if r.code != 0 {
		s.t.Fatalf("want exit 0:\n%s", r)
	}
	return r.stdout
}

// cleanup runs a command from t.Cleanup, when the test's context has
// already ended; a failure is reported, not fatal.
func (s *awsStack) cleanup(args ...string) {
	ctx, cancel := context.WithTimeout(context.Background(), commandTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, socksBin, s.args(args...)...)
	cmd.Env = s.env
	if out, err := cmd.CombinedOutput(); err != nil {
		s.t.Errorf("cleanup: socks %s: %v\n%s", quoteArgs(args), err, out)
	}
}

// TestAWSStackFromProvisionToDelivery provisions a stack, shows that a
// second run changes nothing, then delivers a published message through SQS
// and the broker worker to a client of a local gateway on the DynamoDB
// store, and tears the stack down, after a dry run of teardown that
// deleted nothing.
func TestAWSStackFromProvisionToDelivery(t *testing.T) {
	t.Parallel()
	s := &awsStack{t: t, env: emulatorEnv(t), name: uniqueStack("e2e")}
	t.Cleanup(func() { s.cleanup("teardown", "--yes") })

	t.Run("provision creates the three tables and two queues", func(t *testing.T) {
		out := s.must("provision")
		for _, want := range []string{"table " + s.name + "-connections", "table " + s.name + "-chatter", "table " + s.name + "-reports",
			"queue " + s.name + "-envelopes-dlq", "queue " + s.name + "-envelopes"} {
			if !strings.Contains(out, "created "+want+"\n") {
				t.Errorf("stdout %q does not say it created %s", out, want)
			}
		}
	})
	t.Run("provision again says there is nothing to do", func(t *testing.T) {
		if out := s.must("provision"); out != "nothing to do: 3 tables and 2 queues are in place\n" {
			t.Errorf("stdout %q", out)
		}
		var res struct {
			Changes []any `json:"changes"`
			InPlace []any `json:"inPlace"`
			Drift   []any `json:"drift"`
		}
		if err := json.Unmarshal([]byte(s.must("provision", "--dry-run", "--json")), &res); err != nil || len(res.Changes) != 0 || len(res.InPlace) != 5 || len(res.Drift) != 0 {
			t.Errorf("provision --dry-run --json: %+v (%v)", res, err)
		}
	})
	if t.Failed() {
		t.FailNow()
	}

	chatterID := strings.TrimSpace(s.must("chatter", "issue", "--geek", "alice"))
	srv := &server{proc: startEnv(t, s.env, s.args("serve", "--no-broker", "--addr", "127.0.0.1:0")...)}
	select {
	case line := <-srv.stdout.firstLine:
		srv.URL = strings.TrimSpace(line)
	case <-srv.done:
		t.Fatalf("socks serve --backend aws exited: %v\nstderr: %q", srv.err, srv.stderr)
	case <-time.After(startTimeout):
		t.Fatalf("socks serve --backend aws printed no URL within %s\nstderr: %q", startTimeout, srv.stderr)
	}
	conn := mustDial(t, srv.connectURL("alice", chatterID, "updates"))
	bystander := mustDial(t, srv.connectURL("alice", chatterID, "news"))

	body := `{"n":1,"s":"é","list":[1,2,3]}`
	if out := s.must("publish", "--geek", "alice", "--topic", "updates", "--body", body); strings.TrimSpace(out) == "" {
		t.Fatalf("publish printed no message ID")
	}
	management := strings.TrimSuffix("http"+strings.TrimPrefix(srv.URL, "ws"), "/")
	brk := startEnv(t, s.env, s.args("broker", "--callback-url", management, "--wait", "1s")...)

	t.Run("the broker delivers exactly the published body to the addressed client", func(t *testing.T) {
		if got := readText(t, conn); got != body {
			t.Errorf("got %q; want %q", got, body)
		}
	})
	t.Run("publish --wait reports the broker's delivery from the reports table", func(t *testing.T) {
		r := s.run("publish", "--geek", "alice", "--topic", "updates", "--message", "second", "--wait", "--wait-timeout", "20s", "--json")
		rep := parseReport(t, r)
		if rep.Report.Targets != 1 || rep.Report.Delivered != 1 {
			t.Errorf("report %s; want targets=1 delivered=1", rep)
		}
		if got := readText(t, conn); got != `"second"` {
			t.Errorf("got %q", got)
		}
	})
	t.Run("the client on another topic received nothing", func(t *testing.T) {
		expectSilence(t, bystander, silenceWindow)
	})
	t.Run("on the AWS store the chatter ID also works in Sec-WebSocket-Protocol", func(t *testing.T) {
		_, resp, err := dialOffering(t, srv.connectURL("alice", "", "updates"), "socks", chatterID)
		if err != nil {
			t.Fatalf("connect: %v", err)
		}
		if got := resp.Header.Get("Sec-WebSocket-Protocol"); got != "socks" {
			t.Errorf("Sec-WebSocket-Protocol %q; want socks", got)
		}
	})
	t.Run("serve --backend aws serves socks.js but gives the live page no chatter ID", func(t *testing.T) {
		if resp, err := http.Get(management + "/socks.js"); err != nil || resp.StatusCode != 200 || resp.Header.Get("Access-Control-Allow-Origin") != "*" {
			t.Errorf("GET /socks.js: %v %v", resp, err)
		} else {
			resp.Body.Close()
		}
		req, _ := http.NewRequest("POST", management+"/chatter-id", strings.NewReader(`{"geek":"alice"}`))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Origin", management) // the page's own origin
		req.Header.Set("Sec-Fetch-Site", "same-origin")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusNotFound || strings.Contains(string(b), "sc_") {
			t.Errorf("status %d %q; want 404: never a chatter ID on the AWS store", resp.StatusCode, b)
		}
	})
	t.Run("the broker stops cleanly on SIGINT and logged the deliveries", func(t *testing.T) {
		if code := brk.stop(); code != 0 {
			t.Errorf("broker exit %d; want 0\nstderr: %s", code, brk.stderr)
		}
		if !strings.Contains(brk.stderr.String(), "msg=delivered") {
			t.Errorf("broker stderr has no delivery log:\n%s", brk.stderr)
		}
	})

	t.Run("teardown refuses without --yes when stdin is not a terminal", func(t *testing.T) {
		checkFailure(t, s.run("teardown"), 2, "without --yes")
		if out := s.must("provision", "--dry-run"); !strings.HasPrefix(out, "nothing to do") {
			t.Errorf("after a refused teardown: %q", out)
		}
	})
	t.Run("teardown --dry-run lists the five resources, asks nothing and deletes nothing", func(t *testing.T) {
		// Standard input is not a terminal, and there is no --yes.
		out := s.must("teardown", "--dry-run")
		for _, want := range []string{"table " + s.name + "-connections", "table " + s.name + "-chatter", "table " + s.name + "-reports",
			"queue " + s.name + "-envelopes-dlq", "queue " + s.name + "-envelopes"} {
			if !strings.Contains(out, "would delete "+want+"\n") {
				t.Errorf("stdout %q does not say it would delete %s", out, want)
			}
		}
		if n := strings.Count(out, "\n"); n != 5 {
			t.Errorf("stdout %q; want the five resources, one a line", out)
		}
		if out := s.must("provision", "--dry-run"); out != "nothing to do: 3 tables and 2 queues are in place\n" {
			t.Errorf("after teardown --dry-run provision --dry-run says %q", out)
		}
	})
	t.Run("teardown --yes deletes the five resources", func(t *testing.T) {
		srv.stop()
		out := s.must("teardown", "--yes")
		if n := strings.Count(out, "deleted "); n != 5 {
			t.Errorf("stdout %q; want 5 deleted resources", out)
		}
		if out := s.must("provision", "--dry-run"); strings.Count(out, "would create ") != 5 {
			t.Errorf("after teardown provision --dry-run says %q", out)
		}
	})
}

// adminClients are SDK clients on the emulators, for what the test does by
// hand.
func adminClients(t *testing.T) (*dynamodb.Client, *sqs.Client) {
	dynamoURL, sqsURL := emulators(t)
	cfg := aws.Config{Region: "us-east-1", Credentials: credentials.NewStaticCredentialsProvider("test", "test", "")}
	db := dynamodb.NewFromConfig(cfg, func(o *dynamodb.Options) { o.BaseEndpoint = aws.String(dynamoURL) })
	q := sqs.NewFromConfig(cfg, func(o *sqs.Options) { o.BaseEndpoint = aws.String(sqsURL) })
	return db, q
}

// createIndexlessTable makes stack's connections table by hand, with the
// right keys but without the by-geek index (and so without TTL), as a
// drifted table for provision and doctor to report. It returns its name.
func createIndexlessTable(t *testing.T, ctx context.Context, db *dynamodb.Client, stack string) string {
	t.Helper()
	table := stack + "-connections"
	_, err := db.CreateTable(ctx, &dynamodb.CreateTableInput{
		TableName:   aws.String(table),
		BillingMode: dynamotypes.BillingModePayPerRequest,
		AttributeDefinitions: []dynamotypes.AttributeDefinition{
			{AttributeName: aws.String("pk"), AttributeType: dynamotypes.ScalarAttributeTypeS},
			{AttributeName: aws.String("sk"), AttributeType: dynamotypes.ScalarAttributeTypeS},
		},
		KeySchema: []dynamotypes.KeySchemaElement{
			{AttributeName: aws.String("pk"), KeyType: dynamotypes.KeyTypeHash},
			{AttributeName: aws.String("sk"), KeyType: dynamotypes.KeyTypeRange},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	return table
}

// TestAWSProvisionReportsDriftAndChangesNothing makes a connections table by
// hand without the by-geek index (and so without TTL), and a queue without a
// redrive policy: provision reports each drift with the fix, exits 1, and
// neither changes them nor creates the rest.
func TestAWSProvisionReportsDriftAndChangesNothing(t *testing.T) {
	t.Parallel()
	s := &awsStack{t: t, env: emulatorEnv(t), name: uniqueStack("drift")}
	db, q := adminClients(t)
	ctx := t.Context()
	table := createIndexlessTable(t, ctx, db, s.name)
	queue, err := q.CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String(s.name + "-envelopes"), Attributes: map[string]string{"VisibilityTimeout": "30"}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		_, _ = db.DeleteTable(cctx, &dynamodb.DeleteTableInput{TableName: aws.String(table)})
		_, _ = q.DeleteQueue(cctx, &sqs.DeleteQueueInput{QueueUrl: queue.QueueUrl})
	})

	r := s.run("provision")
	t.Run("each drift is reported with what is, what should be and the fix", func(t *testing.T) {
		if r.code != 1 || r.stdout != "" {
			t.Errorf("exit %d, stdout %q; want 1 and nothing on stdout", r.code, r.stdout)
		}
		for _, want := range []string{
			"drift: table " + table + ": index by-geek\n  is:   absent\n  want: partition key gpk (S), sort key gsk (S), all attributes projected\n  fix:  add it: aws dynamodb update-table --table-name " + table,
			"drift: table " + table + ": time to live\n  is:   off",
			"drift: queue " + s.name + "-envelopes: redrive policy\n  is:   none",
			"drift: queue " + s.name + "-envelopes: visibility timeout\n  is:   30 s\n  want: at least 180 s",
			"socks: 4 things of stack " + s.name,
			"nothing was changed",
		} {
			if !strings.Contains(r.stderr, want) {
				t.Errorf("stderr does not say %q:\n%s", want, r.stderr)
			}
		}
	})
	t.Run("--json prints the drift for scripts and exits 1 too", func(t *testing.T) {
		r := s.run("provision", "--dry-run", "--json")
		var res struct {
			Drift []struct{ Kind, Name, Aspect, Is, Want, Fix string } `json:"drift"`
		}
		if err := json.Unmarshal([]byte(r.stdout), &res); err != nil || r.code != 1 || len(res.Drift) != 4 {
			t.Errorf("exit %d, %d drifts (%v):\n%s", r.code, len(res.Drift), err, r)
		}
	})
	t.Run("the hand-made table and queue are left as they were and nothing else was created", func(t *testing.T) {
		d, err := db.DescribeTable(ctx, &dynamodb.DescribeTableInput{TableName: aws.String(table)})
		if err != nil || len(d.Table.GlobalSecondaryIndexes) != 0 {
			t.Errorf("table %s: %v, indexes %v", table, err, d)
		}
		ttl, err := db.DescribeTimeToLive(ctx, &dynamodb.DescribeTimeToLiveInput{TableName: aws.String(table)})
		if err != nil || (ttl.TimeToLiveDescription != nil && ttl.TimeToLiveDescription.TimeToLiveStatus != dynamotypes.TimeToLiveStatusDisabled) {
			t.Errorf("TTL of %s was changed: %+v %v", table, ttl.TimeToLiveDescription, err)
		}
		attrs, err := q.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{QueueUrl: queue.QueueUrl, AttributeNames: []sqstypes.QueueAttributeName{sqstypes.QueueAttributeNameAll}})
		if err != nil || attrs.Attributes["VisibilityTimeout"] != "30" || attrs.Attributes["RedrivePolicy"] != "" {
			t.Errorf("queue attributes changed: %v %v", attrs, err)
		}
		var missing *dynamotypes.ResourceNotFoundException
		if _, err := db.DescribeTable(ctx, &dynamodb.DescribeTableInput{TableName: aws.String(s.name + "-chatter")}); !errors.As(err, &missing) {
			t.Errorf("table %s-chatter: %v; want it not created", s.name, err)
		}
		var noQueue *sqstypes.QueueDoesNotExist
		if _, err := q.GetQueueUrl(ctx, &sqs.GetQueueUrlInput{QueueName: aws.String(s.name + "-envelopes-dlq")}); !errors.As(err, &noQueue) {
			t.Errorf("queue %s-envelopes-dlq: %v; want it not created", s.name, err)
		}
	})
}

// TestAWSMisconfigurationsAreOneActionableLine checks what a machine that
// is not set up gets: one line saying what to do, and exit 1 (an endpoint
// given that is not a URL is bad input: exit 2, with the usage hint for a
// flag). A command missing its region or credentials, or given an
// endpoint that is not a URL, fails on its configuration before any
// request: the endpoint, a test server counting requests, gets none. One where nothing listens
// fails on the refusal (not on a timeout, which says "got no answer").
func TestAWSMisconfigurationsAreOneActionableLine(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name   string
		env    map[string]string
		args   []string
		phrase string
		// unreachable: the endpoint is a loopback port that refuses connections; else a server that
		// must get no request.
		unreachable bool
		// code is the exit code wanted (0: 1).
		code int
	}{
		{
			name:   "no region",
			env:    map[string]string{"AWS_REGION": ""},
			args:   []string{"provision", "--backend", "aws"},
			phrase: "no AWS region: set --region, AWS_REGION or a profile's region",
		},
		{
			name:   "no credentials",
			env:    map[string]string{"AWS_ACCESS_KEY_ID": "", "AWS_SECRET_ACCESS_KEY": ""},
			args:   []string{"provision", "--backend", "aws"},
			phrase: "no AWS credentials found: set AWS_PROFILE",
		},
		{
			name:        "an endpoint where nothing listens",
			args:        []string{"provision", "--backend", "aws", "--stack", "unreachable"},
			phrase:      "cannot reach http://127.0.0.1:",
			unreachable: true,
		},
		{
			name:   "a broker whose endpoint URL is not a URL",
			args:   []string{"broker", "--backend", "aws", "--sqs-endpoint-url", "127.0.0.1:9324", "--once"},
			phrase: "bad --sqs-endpoint-url \"127.0.0.1:9324\": give a URL",
			code:   2,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			env := maps.Clone(tc.env)
			var requests atomic.Int32
			if !tc.unreachable {
				// The SDK waits for an answer to each request it sends,
				// so any the command made was counted before it exited.
				srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					requests.Add(1)
					http.Error(w, "this test's endpoint takes no request", http.StatusInternalServerError)
				}))
				t.Cleanup(srv.Close)
				if env == nil {
					env = map[string]string{}
				}
				env["SOCKS_ENDPOINT_URL"] = srv.URL
			}
			r := runEnv(t, awsEnv(t, env), nil, tc.args...)
			checkFailure(t, r, cmp.Or(tc.code, 1), tc.phrase)
			if tc.unreachable && !strings.Contains(r.stderr, "connection refused") {
				t.Errorf("stderr %q; want it to fail on the refused connection", r.stderr)
			}
			if n := requests.Load(); n != 0 {
				t.Errorf("the endpoint got %d requests; want none: the configuration alone is wrong", n)
			}
		})
	}
}

// TestAWSMissingResourcesSayRunProvision uses a stack nobody provisioned.
func TestAWSMissingResourcesSayRunProvision(t *testing.T) {
	t.Parallel()
	s := &awsStack{t: t, env: emulatorEnv(t), name: uniqueStack("missing")}
	for _, tc := range []struct {
		name   string
		args   []string
		phrase string
	}{
		{"chatter issue on a missing table", []string{"chatter", "issue", "--geek", "alice"},
			"table " + s.name + "-chatter does not exist: run `socks provision`"},
		{"publish to a missing queue", []string{"publish", "--topic", "updates", "--message", "hi"},
			"queue " + s.name + "-envelopes does not exist: run `socks provision`"},
		{"the broker on a missing queue fails at once", []string{"broker", "--callback-url", "http://127.0.0.1:9"},
			"queue " + s.name + "-envelopes does not exist: run `socks provision`"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			checkFailure(t, s.run(tc.args...), 1, tc.phrase)
		})
	}
}

// runtimeAPI is a fake Lambda Runtime API: it hands out queued events to
// GET /runtime/invocation/next and records what the function answers.
type runtimeAPI struct {
	srv    *http.Server
	addr   string
	events chan invocation

	mu      sync.Mutex
	answers map[string]answer
	arrived chan string
	// deadline is how long each invocation is given (30 s when 0).
	deadline time.Duration
}

// timeout is the time each invocation is given.
func (api *runtimeAPI) timeout() time.Duration {
	api.mu.Lock()
	defer api.mu.Unlock()
	if api.deadline > 0 {
		return api.deadline
	}
	return 30 * time.Second
}

type invocation struct {
	id      string
	payload []byte
	// deadline, when set, is the Lambda-Runtime-Deadline-Ms header as
	// given ("-": none), in place of the API's timeout from now.
	deadline string
	// status, when set, is the answer to GET /next instead of the event.
	status int
}

type answer struct {
	kind string // "response" or "error"
	body []byte
}

func newRuntimeAPI(t *testing.T) *runtimeAPI {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	api := &runtimeAPI{addr: ln.Addr().String(), events: make(chan invocation, 16), answers: map[string]answer{}, arrived: make(chan string, 16)}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /2018-06-01/runtime/invocation/next", func(w http.ResponseWriter, r *http.Request) {
		select {
		case inv := <-api.events:
			if inv.status != 0 {
				http.Error(w, `{"errorMessage":"the Runtime API failed"}`, inv.status)
				return
			}
			w.Header().Set("Lambda-Runtime-Aws-Request-Id", inv.id)
			switch inv.deadline {
			case "":
				w.Header().Set("Lambda-Runtime-Deadline-Ms", fmt.Sprint(time.Now().Add(api.timeout()).UnixMilli()))
			case "-":
			default:
				w.Header().Set("Lambda-Runtime-Deadline-Ms", inv.deadline)
			}
			w.Header().Set("Lambda-Runtime-Invoked-Function-Arn", "arn:aws:lambda:us-east-1:000000000000:function:socks")
			w.Header().Set("Lambda-Runtime-Trace-Id", "Root=1-00000000-000000000000000000000000")
			_, _ = w.Write(inv.payload)
		case <-r.Context().Done():
		}
	})
	record := func(kind string) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			b, _ := io.ReadAll(r.Body)
			id := r.PathValue("id")
			api.mu.Lock()
			api.answers[id] = answer{kind: kind, body: b}
			api.mu.Unlock()
			api.arrived <- id
			w.WriteHeader(http.StatusAccepted)
		}
	}
	mux.HandleFunc("POST /2018-06-01/runtime/invocation/{id}/response", record("response"))
	mux.HandleFunc("POST /2018-06-01/runtime/invocation/{id}/error", record("error"))
	mux.HandleFunc("POST /2018-06-01/runtime/init/error", func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		t.Errorf("the function reported an init error: %s", b)
		w.WriteHeader(http.StatusAccepted)
	})
	api.srv = &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = api.srv.Serve(ln) }()
	t.Cleanup(func() { api.srv.Close() })
	return api
}

// invoke queues payload and waits for the function's answer.
func (api *runtimeAPI) invoke(t *testing.T, id string, payload []byte) answer {
	t.Helper()
	return api.invokeWith(t, invocation{id: id, payload: payload})
}

// invokeWith queues inv and waits for the function's answer.
func (api *runtimeAPI) invokeWith(t *testing.T, inv invocation) answer {
	t.Helper()
	id := inv.id
	api.events <- inv
	timer := time.NewTimer(receiveTimeout)
	defer timer.Stop()
	for {
		select {
		case got := <-api.arrived:
			if got != id {
				continue
			}
			api.mu.Lock()
			defer api.mu.Unlock()
			return api.answers[id]
		case <-timer.C:
			t.Fatalf("the function did not answer invocation %s within %s", id, receiveTimeout)
		}
	}
}

// TestAWSLambdaModeServesTheRuntimeAPI starts the function's bootstrap (as
// deploy and the release build it: the function only) the way Lambda
// starts it — no arguments, AWS_LAMBDA_RUNTIME_API set — and feeds it
// recorded events through a fake Runtime API. The events chosen need no
// table, so no emulator is needed; the endpoints are loopback ports that refuse connections.
func TestAWSLambdaModeServesTheRuntimeAPI(t *testing.T) {
	t.Parallel()
	api := newRuntimeAPI(t)
	env := awsEnv(t, map[string]string{
		"AWS_LAMBDA_RUNTIME_API":   api.addr,
		"AWS_LAMBDA_FUNCTION_NAME": "socks",
		"SOCKS_STACK":              "lambda-e2e",
	})
	fn := startFunction(t, env)
	defer fn.kill()

	event, err := os.ReadFile(filepath.Join(moduleDir, "testdata", "lambda", "default.json"))
	if err != nil {
		t.Fatal(err)
	}
	t.Run("a recorded $default event gets the route response", func(t *testing.T) {
		a := api.invoke(t, "req-default", event)
		var resp struct {
			StatusCode int    `json:"statusCode"`
			Body       string `json:"body"`
		}
		if err := json.Unmarshal(a.body, &resp); err != nil || a.kind != "response" || resp.StatusCode != 200 ||
			!strings.Contains(resp.Body, `"type":"error"`) || !strings.Contains(resp.Body, "clients cannot publish") {
			t.Errorf("%s: %s (%v)\nstderr: %s", a.kind, a.body, err, fn.stderr)
		}
	})
	t.Run("an event it does not serve is an invocation error naming the triggers", func(t *testing.T) {
		a := api.invoke(t, "req-s3", []byte(`{"Records":[{"eventSource":"aws:s3"}]}`))
		if a.kind != "error" || !bytes.Contains(a.body, []byte("check the function's triggers")) {
			t.Errorf("%s: %s", a.kind, a.body)
		}
	})
	// A Runtime API that misbehaves: the function answers each
	// invocation and goes on serving.
	t.Run("an SQS batch whose deadline has already passed is answered, each record to be retried", func(t *testing.T) {
		rec := func(id, body string) map[string]any {
			return map[string]any{"messageId": id, "receiptHandle": "receipt-" + id, "body": body, "eventSource": "aws:sqs",
				"eventSourceARN": "arn:aws:sqs:us-east-1:000000000000:lambda-e2e-envelopes",
				"attributes":     map[string]string{"ApproximateReceiveCount": "5"}}
		}
		payload, err := json.Marshal(map[string]any{"Records": []any{
			rec("m-poison", "this is not an envelope"), rec("m-last-try", `{"users":["Friendless"],"topics":["updates"],"body":1}`)}})
		if err != nil {
			t.Fatal(err)
		}
		a := api.invokeWith(t, invocation{id: "req-past", payload: payload, deadline: fmt.Sprint(time.Now().Add(-time.Minute).UnixMilli())})
		// Neither can be moved to the dead letters with no time left:
		// both are retried, neither lost.
		if a.kind != "response" || string(a.body) != `{"batchItemFailures":[{"itemIdentifier":"m-poison"},{"itemIdentifier":"m-last-try"}]}` {
			t.Errorf("%s: %s\nstderr: %s", a.kind, a.body, fn.stderr)
		}
		// Neither was tried, nor any call made for it: the log says so
		// and does not blame the endpoints. Its lines reach stderr's
		// buffer after the answer: wait, bounded, for the one that says
		// the records were not tried.
		notTried := func(log string) bool {
			for line := range strings.SplitSeq(log, "\n") {
				var l struct {
					Msg     string
					Records int
				}
				if json.Unmarshal([]byte(line), &l) == nil && l.Records == 2 && strings.Contains(l.Msg, "not tried: the invocation's time for delivering had run out first") {
					return true
				}
			}
			return false
		}
		log := fn.stderr.String()
		for deadline := time.Now().Add(receiveTimeout); !notTried(log) && time.Now().Before(deadline); log = fn.stderr.String() {
			time.Sleep(10 * time.Millisecond)
		}
		if !notTried(log) || strings.Contains(log, "does not answer") || strings.Contains(log, `"msg":"dead-letter`) {
			t.Errorf("the function's log does not say the records were not tried, or blames the endpoints, or speaks of dead letters:\n%s", log)
		}
	})
	t.Run("an invocation without a deadline is an invocation error", func(t *testing.T) {
		a := api.invokeWith(t, invocation{id: "req-no-deadline", payload: event, deadline: "-"})
		if a.kind != "error" || !bytes.Contains(a.body, []byte("deadline")) {
			t.Errorf("%s: %s", a.kind, a.body)
		}
	})
	t.Run("a ping after them is served", func(t *testing.T) {
		ping := `{"requestContext":{"routeKey":"ping","eventType":"MESSAGE","connectionId":"c1"},"body":"{\"action\":\"ping\"}"}`
		if a := api.invoke(t, "req-ping", []byte(ping)); a.kind != "response" || !bytes.Contains(a.body, []byte("pong")) {
			t.Errorf("%s: %s\nstderr: %s", a.kind, a.body, fn.stderr)
		}
	})
	t.Run("the process is still serving", func(t *testing.T) {
		select {
		case <-fn.done:
			t.Errorf("the function exited: %v\nstderr: %s", fn.err, fn.stderr)
		default:
		}
	})
	// Last: it ends the process.
	t.Run("a Runtime API whose next invocation fails ends the process with 1, for Lambda to start another", func(t *testing.T) {
		api.events <- invocation{status: http.StatusInternalServerError}
		select {
		case <-fn.done:
		case <-time.After(receiveTimeout):
			t.Fatalf("the function still runs %s after GET /next failed\nstderr: %s", receiveTimeout, fn.stderr)
		}
		var exit *exec.ExitError
		if !errors.As(fn.err, &exit) || exit.ExitCode() != 1 || !strings.Contains(fn.stderr.String(), "unexpected status code: 500") {
			t.Errorf("exit %v; want 1, with the status on stderr:\n%s", fn.err, fn.stderr)
		}
	})
}

// TestTheWholeSocksBinaryServesAsTheFunctionToo: the socks command,
// started as Lambda starts bootstrap, serves the Runtime API as the
// function's own build does (a zip made from it before the function had a
// build of its own still works).
func TestTheWholeSocksBinaryServesAsTheFunctionToo(t *testing.T) {
	t.Parallel()
	api := newRuntimeAPI(t)
	fn := startEnv(t, awsEnv(t, map[string]string{
		"AWS_LAMBDA_RUNTIME_API": api.addr,
		"SOCKS_STACK":            "lambda-e2e-cli",
	}))
	defer fn.kill()
	event, err := os.ReadFile(filepath.Join(moduleDir, "testdata", "lambda", "default.json"))
	if err != nil {
		t.Fatal(err)
	}
	if a := api.invoke(t, "req-default", event); a.kind != "response" || !bytes.Contains(a.body, []byte(`"statusCode":200`)) || !bytes.Contains(a.body, []byte("clients cannot publish")) {
		t.Errorf("%s: %s\nstderr: %s", a.kind, a.body, fn.stderr)
	}
}

// TestAWSLambdaModeOnTheEmulators runs the Lambda binary on a provisioned
// stack: a recorded $connect event (with a freshly issued chatter ID)
// records the connection in DynamoDB, and an SQS batch taken off the real
// queue dead-letters its poison record through SQS and reports no failure.
func TestAWSLambdaModeOnTheEmulators(t *testing.T) {
	t.Parallel()
	dynamoURL, sqsURL := emulators(t)
	s := &awsStack{t: t, env: emulatorEnv(t), name: uniqueStack("lambda")}
	t.Cleanup(func() { s.cleanup("teardown", "--yes") })
	s.must("provision")
	secret := strings.TrimSpace(s.must("chatter", "issue", "--geek", "Friendless"))

	api := newRuntimeAPI(t)
	fn := startFunction(t, awsEnv(t, map[string]string{
		"AWS_LAMBDA_RUNTIME_API":      api.addr,
		"SOCKS_STACK":                 s.name,
		"SOCKS_DYNAMODB_ENDPOINT_URL": dynamoURL,
		"SOCKS_SQS_ENDPOINT_URL":      sqsURL,
		"SOCKS_CALLBACK_URL":          refusing.URL(t),
	}))
	defer fn.kill()

	t.Run("a recorded $connect event records the connection", func(t *testing.T) {
		a := api.invoke(t, "req-connect", connectEvent(t, secret))
		if a.kind != "response" || !bytes.Contains(a.body, []byte(`"statusCode":200`)) {
			t.Fatalf("%s: %s\nstderr: %s", a.kind, a.body, fn.stderr)
		}
		out := s.must("subs", "list", "--geek", "Friendless", "--json")
		if !strings.Contains(out, `"Fq2mXeTBDoECFyA="`) || !strings.Contains(out, `"updates"`) {
			t.Errorf("subs list: %s", out)
		}
	})

	t.Run("a poison record is dead-lettered with the reason and not reported as a failure", func(t *testing.T) {
		_, q := adminClients(t)
		payload, _ := sqsBatch(t, q, s.name, "this is not an envelope", `{"topics":["quiet"],"body":1}`)
		a := api.invoke(t, "req-sqs", payload)
		if a.kind != "response" || string(a.body) != `{"batchItemFailures":[]}` {
			t.Errorf("%s: %s\nstderr: %s", a.kind, a.body, fn.stderr)
		}
		var dead []struct{ Reason string }
		if err := json.Unmarshal([]byte(s.must("dlq", "list", "--json")), &dead); err != nil || len(dead) != 1 || !strings.HasPrefix(dead[0].Reason, "unusable envelope") {
			t.Errorf("dead letters %+v (%v); want the poison record with its reason", dead, err)
		}
	})
}

// connectEvent is the recorded $connect event of testdata/lambda with the
// chatter ID secret in it, connected now.
func connectEvent(t *testing.T, secret string) []byte {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(moduleDir, "testdata", "lambda", "connect.json"))
	if err != nil {
		t.Fatal(err)
	}
	var ev map[string]any
	if err := json.Unmarshal([]byte(strings.ReplaceAll(string(raw), "sc_RECORDED-FIXTURE-not-a-real-secret", secret)), &ev); err != nil {
		t.Fatal(err)
	}
	// Recorded long ago: connect now, or the record is already expired.
	ev["requestContext"].(map[string]any)["connectedAt"] = time.Now().UnixMilli()
	payload, _ := json.Marshal(ev)
	return payload
}

// sqsBatch sends bodies to stack's queue through q, receives them back (hidden
// for a minute) and returns the SQS event Lambda would get for them, and
// their message IDs in the order received.
func sqsBatch(t *testing.T, q *sqs.Client, stack string, bodies ...string) ([]byte, []string) {
	t.Helper()
	ctx := t.Context()
	u, err := q.GetQueueUrl(ctx, &sqs.GetQueueUrlInput{QueueName: aws.String(stack + "-envelopes")})
	if err != nil {
		t.Fatal(err)
	}
	for _, body := range bodies {
		if _, err := q.SendMessage(ctx, &sqs.SendMessageInput{QueueUrl: u.QueueUrl, MessageBody: aws.String(body)}); err != nil {
			t.Fatal(err)
		}
	}
	var records []map[string]any
	var ids []string
	for deadline := time.Now().Add(receiveTimeout); len(records) < len(bodies) && time.Now().Before(deadline); {
		out, err := q.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{
			QueueUrl: u.QueueUrl, MaxNumberOfMessages: 10, WaitTimeSeconds: 1, VisibilityTimeout: 60,
			MessageSystemAttributeNames: []sqstypes.MessageSystemAttributeName{sqstypes.MessageSystemAttributeNameAll},
		})
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range out.Messages {
			ids = append(ids, aws.ToString(m.MessageId))
			records = append(records, map[string]any{
				"messageId": aws.ToString(m.MessageId), "receiptHandle": aws.ToString(m.ReceiptHandle), "body": aws.ToString(m.Body),
				"attributes": m.Attributes, "messageAttributes": map[string]any{}, "eventSource": "aws:sqs",
				"eventSourceARN": "arn:aws:sqs:us-east-1:000000000000:" + stack + "-envelopes", "awsRegion": "us-east-1",
			})
		}
	}
	if len(records) != len(bodies) {
		t.Fatalf("received %d messages; want %d", len(records), len(bodies))
	}
	payload, _ := json.Marshal(map[string]any{"Records": records})
	return payload, ids
}
