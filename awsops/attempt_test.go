package awsops

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/apigatewayv2"
	apitypes "github.com/aws/aws-sdk-go-v2/service/apigatewayv2/types"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatchlogs"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/eventbridge"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/sns"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"
	"github.com/aws/aws-sdk-go-v2/service/sts"

	"github.com/socks-dev/socks/internal/refusing"
	"github.com/socks-dev/socks/store"
)

// silentServer is an endpoint on 127.0.0.1 that accepts every request and
// answers none of the first hang of them (all of them when hang < 0); the
// others get answer. It counts the requests it got.
type silentServer struct {
	*httptest.Server
	requests atomic.Int64
}

func newSilentServer(t *testing.T, hang int64, answer string) *silentServer {
	t.Helper()
	s := &silentServer{}
	stop := make(chan struct{})
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.ReadAll(r.Body)
		if n := s.requests.Add(1); hang < 0 || n <= hang {
			select {
			case <-r.Context().Done():
			case <-stop:
			}
			return
		}
		w.Header().Set("Content-Type", "application/x-amz-json-1.0")
		_, _ = io.WriteString(w, answer)
	}))
	t.Cleanup(func() {
		close(stop)
		s.Close()
	})
	return s
}

// within runs call and fails the test if it has not returned by a generous
// deadline (the call has no deadline of its own: only the attempt bound can
// end it).
func within(t *testing.T, what string, call func() error) error {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- call() }()
	select {
	case err := <-done:
		return err
	case <-time.After(2 * time.Minute):
		t.Fatalf("%s still hangs on an endpoint that never answers", what)
		return nil
	}
}

func TestAPruneOnADynamoDBThatNeverAnswersFails(t *testing.T) {
	srv := newSilentServer(t, -1, "")
	api := NewDynamoDB(dummyConfig(), srv.URL, WithAttemptTimeout(50*time.Millisecond))
	s := NewDynamoStore(api, TablesFor("hung"))
	err := within(t, "DeleteDeadConnections", func() error {
		_, err := s.DeleteDeadConnections(context.Background(), []string{"c1", "c2"})
		return err
	})
	var ate *AttemptTimeoutError
	if !errors.As(err, &ate) {
		t.Fatalf("DeleteDeadConnections = %v; want an attempt timeout", err)
	}
	if got := srv.requests.Load(); got < 2 {
		t.Errorf("the endpoint got %d attempts; want the timed-out attempt retried", got)
	}
}

func TestAHungDynamoDBAttemptIsRetried(t *testing.T) {
	srv := newSilentServer(t, 1, `{}`)
	api := NewDynamoDB(dummyConfig(), srv.URL, WithAttemptTimeout(50*time.Millisecond))
	err := within(t, "DeleteItem", func() error {
		_, err := api.DeleteItem(context.Background(), &dynamodb.DeleteItemInput{
			TableName: aws.String("t"),
			Key:       map[string]types.AttributeValue{"pk": &types.AttributeValueMemberS{Value: "x"}},
		})
		return err
	})
	if err != nil {
		t.Fatalf("DeleteItem after one silent attempt = %v; want the retry to succeed", err)
	}
	if got := srv.requests.Load(); got != 2 {
		t.Errorf("the endpoint got %d requests; want 2 (the silent one and its retry)", got)
	}
}

func TestAnSQSQueueThatNeverAnswersFails(t *testing.T) {
	srv := newSilentServer(t, -1, "")
	q := NewSQSQueue(NewSQS(dummyConfig(), srv.URL, WithAttemptTimeout(50*time.Millisecond)), QueuesFor("hung"), SQSOptions{})
	err := within(t, "SQS Send", func() error {
		_, err := q.Send(context.Background(), []byte(`{}`))
		return err
	})
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Send = %v; want an attempt timeout", err)
	}
}

func TestAnEventBridgeThatNeverAnswersFails(t *testing.T) {
	srv := newSilentServer(t, -1, "")
	api := NewEventBridge(dummyConfig(), srv.URL, WithAttemptTimeout(50*time.Millisecond))
	err := within(t, "EventBridge DescribeRule", func() error {
		_, err := api.DescribeRule(context.Background(), &eventbridge.DescribeRuleInput{Name: aws.String("hung")})
		return err
	})
	var ate *AttemptTimeoutError
	if !errors.As(err, &ate) {
		t.Fatalf("DescribeRule = %v; want an attempt timeout", err)
	}
	if got := srv.requests.Load(); got < 2 {
		t.Errorf("the endpoint got %d attempts; want the timed-out attempt retried", got)
	}
}

func TestAnSNSThatNeverAnswersFails(t *testing.T) {
	srv := newSilentServer(t, -1, "")
	api := NewSNS(dummyConfig(), srv.URL, WithAttemptTimeout(50*time.Millisecond))
	err := within(t, "SNS ListSubscriptionsByTopic", func() error {
		_, err := api.ListSubscriptionsByTopic(context.Background(), &sns.ListSubscriptionsByTopicInput{
			TopicArn: aws.String("arn:aws:sns:us-east-1:000000000000:hung"),
		})
		return err
	})
	var ate *AttemptTimeoutError
	if !errors.As(err, &ate) {
		t.Fatalf("ListSubscriptionsByTopic = %v; want an attempt timeout", err)
	}
	if got := srv.requests.Load(); got < 2 {
		t.Errorf("the endpoint got %d attempts; want the timed-out attempt retried", got)
	}
}

func TestAManagementAPIThatNeverAnswersFailsThePush(t *testing.T) {
	srv := newSilentServer(t, -1, "")
	p := NewPusher(NewManagementClient(LocalConfig(), srv.URL, 1, WithAttemptTimeout(50*time.Millisecond)))
	err := within(t, "Post", func() error { return p.Post(context.Background(), "c1", []byte(`{}`)) })
	if err == nil {
		t.Fatal("a post to a Management API that never answers succeeded")
	}
	if got := srv.requests.Load(); got != 1 {
		t.Errorf("the Management API got %d requests; want 1 (the broker owns retries)", got)
	}
}

// deadlineRecorder is an HTTP client that records the deadline of each
// request and answers it with an empty JSON object.
type deadlineRecorder struct{ left atomic.Int64 }

func (d *deadlineRecorder) Do(r *http.Request) (*http.Response, error) {
	if dl, ok := r.Context().Deadline(); ok {
		d.left.Store(int64(time.Until(dl)))
	}
	return emptyJSONAnswer(r), nil
}

// emptyJSONAnswer is a 200 answer to r with an empty JSON object, which
// every DynamoDB and SQS call this package's tests make reads as done.
func emptyJSONAnswer(r *http.Request) *http.Response {
	return &http.Response{
		StatusCode: http.StatusOK,
		Header:     http.Header{"Content-Type": {"application/x-amz-json-1.0"}},
		Body:       io.NopCloser(strings.NewReader(`{}`)),
		Request:    r,
	}
}

func TestReceiveMessageMayLongPollPastTheAttemptBound(t *testing.T) {
	rec := &deadlineRecorder{}
	cfg := dummyConfig()
	cfg.HTTPClient = rec
	api := NewSQS(cfg, "http://127.0.0.1:1", WithAttemptTimeout(10*time.Second))
	ctx := context.Background()
	if _, err := api.SendMessage(ctx, &sqs.SendMessageInput{QueueUrl: aws.String("http://127.0.0.1:1/q"), MessageBody: aws.String("x")}); err != nil {
		t.Fatalf("SendMessage: %v", err)
	}
	if left := time.Duration(rec.left.Load()); left <= 0 || left > 10*time.Second {
		t.Errorf("SendMessage's attempt had %s left; want at most the 10s bound", left)
	}
	if _, err := api.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{QueueUrl: aws.String("http://127.0.0.1:1/q"), WaitTimeSeconds: 20}); err != nil {
		t.Fatalf("ReceiveMessage: %v", err)
	}
	if left := time.Duration(rec.left.Load()); left <= store.MaxWait {
		t.Errorf("ReceiveMessage's attempt had %s left; want more than its long poll of %s", left, store.MaxWait)
	}
}

// hungControlPlane is the control plane with every service on one endpoint
// that never answers, each attempt bounded by 50ms.
func hungControlPlane(t *testing.T) *ControlPlane {
	srv := newSilentServer(t, -1, "")
	return NewControlPlane(dummyConfig(), Endpoints{All: srv.URL}, WithAttemptTimeout(50*time.Millisecond))
}

// wantHung fails unless err is an attempt timeout that Explain puts in one
// line naming call.
func wantHung(t *testing.T, err error, call string) {
	t.Helper()
	var ate *AttemptTimeoutError
	if !errors.As(err, &ate) {
		t.Fatalf("err = %v; want an attempt timeout", err)
	}
	msg := Explain(err).Error()
	if strings.Contains(msg, "\n") || !strings.Contains(msg, call+" got no answer within 50ms on each of its 3 attempts") {
		t.Errorf("error %q; want one line saying %s got no answer within 50ms on each of its 3 attempts", msg, call)
	}
}

func TestEveryControlPlaneClientThatNeverAnswersFails(t *testing.T) {
	cp := hungControlPlane(t)
	ctx := context.Background()
	for _, tc := range []struct {
		call string
		run  func() error
	}{
		{"STS GetCallerIdentity", func() error { _, err := cp.STS.GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{}); return err }},
		{"IAM GetRole", func() error {
			_, err := cp.IAM.GetRole(ctx, &iam.GetRoleInput{RoleName: aws.String("hung")})
			return err
		}},
		{"Lambda GetFunction", func() error {
			_, err := cp.Lambda.GetFunction(ctx, &lambda.GetFunctionInput{FunctionName: aws.String("hung")})
			return err
		}},
		{"Lambda UpdateFunctionCode", func() error {
			_, err := cp.Lambda.UpdateFunctionCode(ctx, &lambda.UpdateFunctionCodeInput{FunctionName: aws.String("hung"), ZipFile: []byte("PK")})
			return err
		}},
		{"ApiGatewayV2 GetApis", func() error { _, err := cp.APIGW.GetApis(ctx, &apigatewayv2.GetApisInput{}); return err }},
		{"CloudWatch Logs DescribeLogGroups", func() error {
			_, err := cp.Logs.DescribeLogGroups(ctx, &cloudwatchlogs.DescribeLogGroupsInput{})
			return err
		}},
		{"DynamoDB DescribeTable", func() error {
			_, err := cp.DB.DescribeTable(ctx, &dynamodb.DescribeTableInput{TableName: aws.String("hung")})
			return err
		}},
		{"SQS GetQueueUrl", func() error {
			_, err := cp.SQS.GetQueueUrl(ctx, &sqs.GetQueueUrlInput{QueueName: aws.String("hung")})
			return err
		}},
	} {
		t.Run(tc.call, func(t *testing.T) {
			t.Parallel()
			wantHung(t, within(t, tc.call, tc.run), tc.call)
		})
	}
}

// TestDeployAndTeardownOnAControlPlaneThatNeverAnswersFail: deploy and
// teardown (which first finds what is deployed) fail with a one-line error
// instead of hanging.
func TestDeployAndTeardownOnAControlPlaneThatNeverAnswersFail(t *testing.T) {
	zip, err := LambdaZip([]byte("#!/bin/sh\n"))
	if err != nil {
		t.Fatal(err)
	}
	d := &Deployer{CP: hungControlPlane(t), Spec: DeploySpec{Stack: "hung", Region: "us-east-1", Arch: "arm64", Zip: zip, Wait: time.Minute}}
	err = within(t, "deploy", func() error {
		_, err := d.Deploy(context.Background(), false)
		return err
	})
	wantHung(t, err, "STS GetCallerIdentity")
	err = within(t, "teardown", func() error {
		_, err := d.Deployed(context.Background())
		return err
	})
	var ate *AttemptTimeoutError
	if !errors.As(err, &ate) || strings.Contains(err.Error(), "\n") {
		t.Fatalf("finding what is deployed = %v; want a one-line attempt timeout", err)
	}
}

func TestALambdaUploadAttemptHasTimeForItsBody(t *testing.T) {
	rec := &deadlineRecorder{}
	cfg := dummyConfig()
	cfg.HTTPClient = rec
	cp := NewControlPlane(cfg, Endpoints{All: "http://127.0.0.1:1"}, WithAttemptTimeout(10*time.Second))
	ctx := context.Background()
	if _, err := cp.Lambda.GetFunction(ctx, &lambda.GetFunctionInput{FunctionName: aws.String("f")}); err != nil {
		t.Fatalf("GetFunction: %v", err)
	}
	if left := time.Duration(rec.left.Load()); left <= 0 || left > 10*time.Second {
		t.Errorf("GetFunction's attempt had %s left; want at most the 10s bound", left)
	}
	// 4 MiB of package, over 5 MiB of base64 in the request: more than
	// 40s at minUploadRate.
	if _, err := cp.Lambda.UpdateFunctionCode(ctx, &lambda.UpdateFunctionCodeInput{FunctionName: aws.String("f"), ZipFile: make([]byte, 4<<20)}); err != nil {
		t.Fatalf("UpdateFunctionCode: %v", err)
	}
	if left := time.Duration(rec.left.Load()); left <= 50*time.Second {
		t.Errorf("UpdateFunctionCode's attempt had %s left; want the 10s bound and the time to upload 4 MiB at %d KiB/s on top", left, minUploadRate>>10)
	}
	if _, err := cp.IAM.GetRole(ctx, &iam.GetRoleInput{RoleName: aws.String("r")}); err == nil {
		// IAM answers XML: the recorder's {} does not decode, and that
		// does not matter here.
		t.Log("GetRole decoded {}")
	}
	if left := time.Duration(rec.left.Load()); left <= 0 || left > 10*time.Second {
		t.Errorf("IAM GetRole's attempt had %s left; want at most the 10s bound", left)
	}
}

// TestTheAttemptBoundComesFromTheEnvironment: $SOCKS_ATTEMPT_TIMEOUT
// replaces the 15 s default of every client that was given none (so that
// the e2e tests can freeze an emulator for longer than one attempt), and a
// value that is not a duration above 0 leaves the default.
func TestTheAttemptBoundComesFromTheEnvironment(t *testing.T) {
	for value, want := range map[string]time.Duration{
		"":     DefaultAttemptTimeout,
		"2s":   2 * time.Second,
		"0s":   DefaultAttemptTimeout,
		"-1s":  DefaultAttemptTimeout,
		"soon": DefaultAttemptTimeout,
	} {
		t.Setenv(EnvAttemptTimeout, value)
		if got := resolveClientOptions(nil).attemptTimeout; got != want {
			t.Errorf("%s=%q: the attempt bound is %s; want %s", EnvAttemptTimeout, value, got, want)
		}
	}
	t.Setenv(EnvAttemptTimeout, "2s")
	if got := resolveClientOptions([]ClientOption{WithAttemptTimeout(time.Second)}).attemptTimeout; got != time.Second {
		t.Errorf("WithAttemptTimeout(1s) with %s=2s gives %s; want 1s", EnvAttemptTimeout, got)
	}
	t.Setenv(EnvAttemptTimeout, "50ms")
	srv := newSilentServer(t, -1, "")
	q := NewSQSQueue(NewSQS(dummyConfig(), srv.URL), QueuesFor("hung"), SQSOptions{})
	err := within(t, "Send", func() error {
		_, err := q.Send(context.Background(), []byte(`{"topics":["t"],"body":1}`))
		return err
	})
	var ate *AttemptTimeoutError
	if !errors.As(err, &ate) || ate.Bound != 50*time.Millisecond {
		t.Fatalf("Send with %s=50ms on an SQS that never answers = %v; want an attempt timeout of 50ms", EnvAttemptTimeout, err)
	}
}

// hungDelete is a queue on an SQS that takes every request without
// answering it, the queue's URL already resolved, with the attempt bound
// given; and a context whose deadline passes once the hung SQS has a
// request. The tests of a call cut off by its own deadline gave the whole
// call (an answered GetQueueUrl first) 100 ms by the clock: on a loaded
// machine the GetQueueUrl, or the SDK before it sent the DeleteMessage,
// could use them up, and the error then rightly named GetQueueUrl, or
// said the DeleteMessage was not sent.
func hungDelete(t *testing.T, attempt time.Duration) (*SQSQueue, context.Context) {
	t.Helper()
	stop, arrived := make(chan struct{}), make(chan struct{})
	var once sync.Once
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.ReadAll(r.Body)
		once.Do(func() { close(arrived) })
		select {
		case <-r.Context().Done():
		case <-stop:
		}
	}))
	t.Cleanup(func() {
		close(stop)
		srv.Close()
	})
	q := NewSQSQueue(NewSQS(dummyConfig(), srv.URL, WithAttemptTimeout(attempt)), QueuesFor("hung"), SQSOptions{})
	q.urlOf[q.queues.Main] = srv.URL + "/q" // as GetQueueUrl once answered
	return q, deadlineOnArrival{Context: context.Background(), arrived: arrived}
}

// deadlineOnArrival is a context whose deadline passes when arrived is
// closed: the event, not a time on the clock.
type deadlineOnArrival struct {
	context.Context
	arrived <-chan struct{}
}

func (d deadlineOnArrival) Done() <-chan struct{} { return d.arrived }

func (d deadlineOnArrival) Err() error {
	select {
	case <-d.arrived:
		return context.DeadlineExceeded
	default:
		return nil
	}
}

// TestACallWhoseOwnDeadlinePassesSaysSoInWords is the broker deleting a
// handled message within its settle time on an SQS that takes the request
// and never answers, the attempt bound being longer than that time: the
// failure says the call got no answer in the time it was given, in one
// line, not the SDK's "StatusCode: 0, canceled, context deadline exceeded".
func TestACallWhoseOwnDeadlinePassesSaysSoInWords(t *testing.T) {
	q, ctx := hungDelete(t, time.Hour)
	err := within(t, "Delete", func() error { return q.Delete(ctx, "r1") })
	if err == nil {
		t.Fatal("a delete on an SQS that never answers succeeded")
	}
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("err = %v; want it to still be the call's deadline (errors.Is)", err)
	}
	msg := err.Error()
	if strings.Contains(msg, "\n") || strings.Contains(msg, "StatusCode") || strings.Contains(msg, "deadline exceeded") ||
		!strings.Contains(msg, "SQS DeleteMessage on queue hung-envelopes got no answer in the time it was given") {
		t.Errorf("error %q; want one line saying SQS DeleteMessage on queue hung-envelopes got no answer in the time it was given", msg)
	}
	if got := Explain(err).Error(); got != msg {
		t.Errorf("Explain = %q; want the same words %q", got, msg)
	}
}

// TestACallWhoseTimeHadRunOutBeforeItStartedSaysItWasNotSent: a call
// made with a context already past its deadline is not sent at all (the
// SDK stops before the first attempt). The Lambda function makes such
// calls when an invocation's time is spent (a record's settling after the
// settling window, or a Runtime API giving a deadline already past), and
// its log said the endpoint "takes requests but does not answer them",
// with an emulator to check, of a call that reached no endpoint.
func TestACallWhoseTimeHadRunOutBeforeItStartedSaysItWasNotSent(t *testing.T) {
	var requests atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		requests.Add(1)
		http.Error(w, "no", http.StatusInternalServerError)
	}))
	t.Cleanup(srv.Close)
	q := NewSQSQueue(NewSQS(dummyConfig(), srv.URL), QueuesFor("spent"), SQSOptions{})
	ctx, cancel := context.WithDeadline(context.Background(), time.Now().Add(-time.Second))
	defer cancel()
	err := q.ChangeVisibility(ctx, "r1", time.Second)
	if n := requests.Load(); n != 0 {
		t.Fatalf("%d requests reached the endpoint; want none, the time was spent", n)
	}
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("err = %v; want it to still be the call's deadline (errors.Is)", err)
	}
	msg := err.Error()
	if !strings.Contains(msg, "SQS GetQueueUrl on queue spent-envelopes was not sent: the time it was given had run out before it started") ||
		strings.Contains(msg, "does not answer") || strings.Contains(msg, "endpoint-url") {
		t.Errorf("error %q; want it to say the call was not sent, its time having run out, and nothing about the endpoint", msg)
	}
	if got := Explain(err).Error(); got != msg {
		t.Errorf("Explain = %q; want the same words %q", got, msg)
	}
}

// TestACreateSentOnceThatGetsNoAnswerSaysSoInWords: a create sent once
// (sendOnce) that got no answer said "on each of its 1 attempts"; it says
// "on its attempt", and that it may have been made, with what to run.
func TestACreateSentOnceThatGetsNoAnswerSaysSoInWords(t *testing.T) {
	cp := hungControlPlane(t)
	err := within(t, "CreateApi", func() error {
		_, err := cp.APIGW.CreateApi(context.Background(), &apigatewayv2.CreateApiInput{Name: aws.String("hung"), ProtocolType: apitypes.ProtocolTypeWebsocket}, sendOnce)
		return unansweredOr(err)
	})
	var lost *UnansweredCreateError
	if !errors.As(err, &lost) {
		t.Fatalf("err = %v; want an UnansweredCreateError", err)
	}
	msg := err.Error()
	if !strings.Contains(msg, "ApiGatewayV2 CreateApi got no answer within 50ms on its attempt") || !strings.Contains(msg, "run socks deploy again") {
		t.Errorf("error %q; want it to say CreateApi got no answer on its attempt, and to deploy again", msg)
	}
}

// TestInALambdaFunctionAnExplanationFitsTheFunction: the Lambda function
// has no flags, and the time its calls are given is what its invocation
// has left (the fan-out or settling window, perhaps a moment). A call cut
// off by that deadline said "check --endpoint-url (is the emulator
// stuck?)"; in a function it says the invocation's time ran out, and no
// explanation names a flag.
func TestInALambdaFunctionAnExplanationFitsTheFunction(t *testing.T) {
	ExplainAsLambda(true)
	t.Cleanup(func() { ExplainAsLambda(false) })
	noFlags := func(t *testing.T, msg string) {
		t.Helper()
		for _, flag := range []string{"--endpoint-url", "--region", "--stack", "emulator"} {
			if strings.Contains(msg, flag) {
				t.Errorf("error %q names %q, which a Lambda function has not", msg, flag)
			}
		}
	}
	t.Run("a call cut off by the invocation's deadline says its time ran out", func(t *testing.T) {
		q, ctx := hungDelete(t, time.Hour)
		err := within(t, "Delete", func() error { return q.Delete(ctx, "r1") })
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("err = %v; want the call's deadline", err)
		}
		msg := err.Error()
		if !strings.Contains(msg, "SQS DeleteMessage on queue hung-envelopes got no answer in the time it was given") ||
			!strings.Contains(msg, "the Lambda invocation's time ran out") || strings.Contains(msg, "does not answer") {
			t.Errorf("error %q; want it to say the invocation's time ran out while the call was under way", msg)
		}
		noFlags(t, msg)
	})
	t.Run("an attempt that got no answer names the function's settings", func(t *testing.T) {
		q, _ := hungDelete(t, 50*time.Millisecond)
		err := within(t, "Delete", func() error { return q.Delete(context.Background(), "r1") })
		msg := err.Error()
		if !strings.Contains(msg, "got no answer within 50ms") || !strings.Contains(msg, "SOCKS_ENDPOINT_URL") {
			t.Errorf("error %q; want the attempt's bound and the function's endpoint setting", msg)
		}
		noFlags(t, msg)
	})
	t.Run("an endpoint that cannot be reached names the function's settings", func(t *testing.T) {
		q := NewSQSQueue(NewSQS(dummyConfig(), refusing.URL(t)), QueuesFor("gone"), SQSOptions{})
		err := q.Delete(context.Background(), "r1")
		msg := err.Error()
		if !strings.Contains(msg, "cannot reach") || !strings.Contains(msg, "SOCKS_ENDPOINT_URL") {
			t.Errorf("error %q; want it to say the endpoint cannot be reached, and the function's endpoint setting", msg)
		}
		noFlags(t, msg)
	})
	t.Run("a missing queue names the function's stack setting", func(t *testing.T) {
		msg := Explain(&ResourceError{Op: "GetQueueUrl", Kind: "queue", Name: "x-envelopes", Err: &sqstypes.QueueDoesNotExist{}}).Error()
		if !strings.Contains(msg, "SOCKS_STACK") {
			t.Errorf("error %q; want the function's stack setting", msg)
		}
		noFlags(t, msg)
	})
}
