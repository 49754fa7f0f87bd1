package awsops

import (
	"context"
	"errors"
	"maps"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	lambdatypes "github.com/aws/aws-sdk-go-v2/service/lambda/types"
	"github.com/aws/smithy-go"

	"github.com/socks-dev/socks/config"
	"github.com/socks-dev/socks/internal/emulatortest"
	"github.com/socks-dev/socks/internal/refusing"
)

// fakeCreate is a Lambda API whose CreateFunction fails with errs in turn,
// then succeeds.
type fakeCreate struct {
	DeployLambdaAPI
	errs  []error
	calls int
}

func (f *fakeCreate) CreateFunction(context.Context, *lambda.CreateFunctionInput, ...func(*lambda.Options)) (*lambda.CreateFunctionOutput, error) {
	f.calls++
	if f.calls <= len(f.errs) {
		return nil, f.errs[f.calls-1]
	}
	return &lambda.CreateFunctionOutput{FunctionArn: aws.String("arn:aws:lambda:us-east-1:1:function:s-socks")}, nil
}

var errRoleNotReady = &smithy.GenericAPIError{Code: "InvalidParameterValueException", Message: "The role defined for the function cannot be assumed by Lambda."}

// TestCreateFunctionRetriesARoleNotAssumableYet: a new role that Lambda
// cannot assume yet is retried, within a bound; other errors are not.
func TestCreateFunctionRetriesARoleNotAssumableYet(t *testing.T) {
	newDeployer := func(api DeployLambdaAPI, slept *time.Duration) *Deployer {
		d := &Deployer{CP: &ControlPlane{Lambda: api}, Spec: DeploySpec{Stack: "s", Region: "us-east-1", Zip: []byte("zip")}.withDefaults(),
			Sleep: func(_ context.Context, d time.Duration) error { *slept += d; return nil }}
		d.st.roleARN = "arn:aws:iam::1:role/s-socks-function"
		return d
	}
	t.Run("the error three times, then success", func(t *testing.T) {
		var slept time.Duration
		f := &fakeCreate{errs: []error{errRoleNotReady, errRoleNotReady, errRoleNotReady}}
		d := newDeployer(f, &slept)
		if err := d.applyFunction(t.Context(), ActionCreate); err != nil {
			t.Fatal(err)
		}
		if f.calls != 4 || slept != 3*roleRetryDelay || d.st.functionARN == "" {
			t.Errorf("calls %d, slept %s, arn %q", f.calls, slept, d.st.functionARN)
		}
	})
	t.Run("always the error: gives up at the bound", func(t *testing.T) {
		var slept time.Duration
		errs := make([]error, 1000)
		for i := range errs {
			errs[i] = errRoleNotReady
		}
		f := &fakeCreate{errs: errs}
		err := newDeployer(f, &slept).applyFunction(t.Context(), ActionCreate)
		if err == nil || !strings.Contains(err.Error(), "cannot be assumed") {
			t.Fatalf("err %v", err)
		}
		if slept > roleRetryBound || slept < roleRetryBound-roleRetryDelay {
			t.Errorf("waited %s in all; the bound is %s", slept, roleRetryBound)
		}
	})
	t.Run("another error is not retried", func(t *testing.T) {
		var slept time.Duration
		f := &fakeCreate{errs: []error{&smithy.GenericAPIError{Code: "InvalidParameterValueException", Message: "Unzipped size must be smaller than 262144000 bytes"}}}
		if err := newDeployer(f, &slept).applyFunction(t.Context(), ActionCreate); err == nil || f.calls != 1 || slept != 0 {
			t.Errorf("err %v, calls %d, slept %s", err, f.calls, slept)
		}
	})
}

// hits is a loopback server that counts the requests it got and answers
// them all with an error.
type hits struct {
	*httptest.Server
	mu sync.Mutex
	n  int
}

func newHits(t *testing.T) *hits {
	h := &hits{}
	h.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h.mu.Lock()
		h.n++
		h.mu.Unlock()
		w.WriteHeader(http.StatusBadRequest)
		_, _ = w.Write([]byte(`{"__type":"ValidationException","message":"no"}`))
	}))
	t.Cleanup(h.Close)
	return h
}

func (h *hits) count() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.n
}

// TestControlPlaneEndpoints: the one endpoint reaches every service, a
// per-service setting beats it for DynamoDB, and the SDK's own
// AWS_ENDPOINT_URL_<SERVICE> beats both.
func TestControlPlaneEndpoints(t *testing.T) {
	all, dynamo, iamOnly := newHits(t), newHits(t), newHits(t)
	emulatortest.FakeCredentials(t)
	t.Setenv("AWS_ENDPOINT_URL_IAM", iamOnly.URL)
	cfg, err := LoadConfig(t.Context(), Settings{Region: "us-east-1"})
	if err != nil {
		t.Fatal(err)
	}
	cfg.RetryMaxAttempts = 1
	cp := NewControlPlane(cfg, Endpoints{All: all.URL, DynamoDB: dynamo.URL})
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()

	_, err = cp.IAM.GetRole(ctx, &iam.GetRoleInput{RoleName: aws.String("r")})
	if err == nil || iamOnly.count() != 1 || all.count() != 0 {
		t.Errorf("IAM: err %v; AWS_ENDPOINT_URL_IAM got %d, --endpoint-url got %d", err, iamOnly.count(), all.count())
	}
	_, _ = cp.Lambda.GetFunction(ctx, &lambda.GetFunctionInput{FunctionName: aws.String("f")})
	_, _ = cp.STS.GetCallerIdentity(ctx, nil)
	if all.count() != 2 {
		t.Errorf("Lambda and STS: --endpoint-url got %d requests, want 2", all.count())
	}
	_, _ = cp.DB.DescribeTable(ctx, &dynamodb.DescribeTableInput{TableName: aws.String("t")})
	if dynamo.count() != 1 || all.count() != 2 {
		t.Errorf("DynamoDB: its own endpoint got %d, --endpoint-url %d", dynamo.count(), all.count())
	}
	if errors.Is(err, context.DeadlineExceeded) {
		t.Fatal(err)
	}
}

// TestAStackWhoseDataPlaneIsOnItsOwnEmulatorsHasNoControlPlane: "When
// --dynamodb-endpoint-url or --sqs-endpoint-url is set, the data plane is
// on emulators of its own: teardown and doctor then leave the control
// plane alone ..., and deploy refuses to run" (docs/deploy.md, "Against
// the emulators"). All three take the stack's control plane from
// StackControlPlane: none with either override, whatever --endpoint-url
// says; with --endpoint-url alone (moto) every control-plane call goes
// there; one split between an emulator and AWS itself is refused.
func TestAStackWhoseDataPlaneIsOnItsOwnEmulatorsHasNoControlPlane(t *testing.T) {
	emulatortest.FakeCredentials(t)
	cfg, err := LoadConfig(t.Context(), Settings{Region: "us-east-1"})
	if err != nil {
		t.Fatal(err)
	}
	cfg.RetryMaxAttempts = 1
	moto := newHits(t)
	for _, a := range []config.AWS{
		{Stack: "dev", DynamoDBEndpointURL: moto.URL},
		{Stack: "dev", SQSEndpointURL: moto.URL},
		{Stack: "dev", EndpointURL: moto.URL, DynamoDBEndpointURL: moto.URL, SQSEndpointURL: moto.URL},
	} {
		if cp, err := StackControlPlane(cfg, a); cp != nil || err != nil {
			t.Errorf("%+v: control plane %v, %v; want none", a, cp, err)
		}
	}
	cp, err := StackControlPlane(cfg, config.AWS{Stack: "dev", EndpointURL: moto.URL})
	if err != nil || cp == nil {
		t.Fatalf("--endpoint-url alone: control plane %v, %v; want one", cp, err)
	}
	_, _ = cp.IAM.GetRole(t.Context(), &iam.GetRoleInput{RoleName: aws.String("dev-socks-function")})
	if moto.count() != 1 {
		t.Errorf("--endpoint-url alone: it got %d calls of 1", moto.count())
	}
	t.Setenv("AWS_ENDPOINT_URL_IAM", moto.URL)
	if cp, err := StackControlPlane(cfg, config.AWS{Stack: "dev"}); cp != nil || err == nil {
		t.Errorf("IAM on an emulator, the rest on AWS: control plane %v, %v; want it refused", cp, err)
	}
}

// A mapping with no scaling configuration at all (made by hand, or by an
// older deploy) has no bound on the broker's concurrency: that is drift,
// as a different bound is.
func TestAMappingWithoutScalingConfigIsDrift(t *testing.T) {
	m := &lambdatypes.EventSourceMappingConfiguration{
		State: aws.String("Enabled"), BatchSize: aws.Int32(DeployBatchSize), MaximumBatchingWindowInSeconds: aws.Int32(DeployBatchWindow),
		FunctionResponseTypes: []lambdatypes.FunctionResponseType{reportBatchItemFailures},
		ScalingConfig:         &lambdatypes.ScalingConfig{MaximumConcurrency: aws.Int32(7)},
	}
	if drift := MappingDrift(m, 7); len(drift) != 0 {
		t.Fatalf("the mapping deploy makes: drift %v", drift)
	}
	m.ScalingConfig = nil
	drift := MappingDrift(m, 7)
	if len(drift) != 1 || !strings.Contains(drift[0], "maximum concurrency") {
		t.Errorf("no scaling config: drift %v; want the maximum concurrency", drift)
	}
}

// TestAHalfEmulatedControlPlaneIsRefused: with DynamoDB and SQS on
// emulators (--dynamodb-endpoint-url, --sqs-endpoint-url) and no
// --endpoint-url, deploy sent STS, IAM, Lambda and the rest to AWS itself;
// the SDK's AWS_ENDPOINT_URL_<SERVICE> for one service did the same for the
// others. CheckEndpoints refuses both before anything is called; every
// service on emulators, or none, is fine.
func TestAHalfEmulatedControlPlaneIsRefused(t *testing.T) {
	emulatortest.FakeCredentials(t)
	t.Setenv("AWS_ENDPOINT_URL_LAMBDA", "")
	load := func(t *testing.T) aws.Config {
		cfg, err := LoadConfig(t.Context(), Settings{Region: "us-east-1"})
		if err != nil {
			t.Fatal(err)
		}
		return cfg
	}
	const local = "http://127.0.0.1:9"
	for _, tc := range []struct {
		name    string
		e       Endpoints
		lambda  string // AWS_ENDPOINT_URL_LAMBDA
		refused bool
	}{
		{"DynamoDB and SQS on emulators, the rest on AWS", Endpoints{DynamoDB: local, SQS: "http://localhost:9"}, "", true},
		{"only DynamoDB on an emulator", Endpoints{DynamoDB: local}, "", true},
		{"Lambda on an emulator by the SDK's variable", Endpoints{}, local, true},
		{"everything on one emulator", Endpoints{All: local}, "", false},
		{"everything on emulators, DynamoDB and SQS on their own", Endpoints{All: local, DynamoDB: "http://127.0.0.1:8", SQS: "http://[::1]:7"}, "", false},
		{"everything on AWS", Endpoints{}, "", false},
		{"a proxy that is not on this machine for one service", Endpoints{DynamoDB: "https://dynamodb.example.com"}, "", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv("AWS_ENDPOINT_URL_LAMBDA", tc.lambda)
			err := NewControlPlane(load(t), tc.e).CheckEndpoints()
			switch {
			case tc.refused && err == nil:
				t.Fatal("not refused: some calls go to an emulator on this machine and others to AWS itself")
			case !tc.refused && err != nil:
				t.Fatalf("refused: %v", err)
			case tc.refused && (!strings.Contains(err.Error(), "AWS itself") || !strings.Contains(err.Error(), "--endpoint-url")):
				t.Errorf("the refusal does not say where the calls would go and what to set: %v", err)
			}
		})
	}
}

// TestTheRoleMayOnlySendToTheDeadLetterQueue: the role's one queue
// statement gave the function ReceiveMessage, DeleteMessage and
// ChangeMessageVisibility on the dead-letter queue too, so it could read
// and delete the dead letters it only ever sends there (the broker's
// DeadLetter: GetQueueUrl and SendMessage). Least privilege: the main
// queue keeps what the function and its event source mapping call.
func TestTheRoleMayOnlySendToTheDeadLetterQueue(t *testing.T) {
	d := &Deployer{Spec: DeploySpec{Stack: "s", Region: "eu-west-1"}.withDefaults()}
	d.st = deployState{part: "aws", account: "123456789012", tables: d.Spec.Tables(), queues: d.Spec.Queues(), apiID: "api"}
	dlq, main := d.arn("sqs", d.st.queues.DeadLetter), d.arn("sqs", d.st.queues.Main)
	allowed := func(resource string) map[string]bool {
		m := map[string]bool{}
		for _, s := range d.RolePolicy().Statement {
			if s.Effect == "Allow" && slices.Contains(s.Resource, resource) {
				for _, a := range s.Action {
					m[a] = true
				}
			}
		}
		return m
	}
	got := allowed(dlq)
	want := map[string]bool{"sqs:SendMessage": true, "sqs:GetQueueUrl": true}
	if !maps.Equal(got, want) {
		t.Errorf("on the dead-letter queue the role allows %v; want only %v", slices.Sorted(maps.Keys(got)), slices.Sorted(maps.Keys(want)))
	}
	for _, a := range []string{"sqs:SendMessage", "sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:ChangeMessageVisibility", "sqs:GetQueueAttributes", "sqs:GetQueueUrl"} {
		if !allowed(main)[a] {
			t.Errorf("on the envelopes queue the role does not allow %s, which the function or its event source mapping calls", a)
		}
	}
}

// TestTrustDrift: the role's trust policy is Lambda's alone; conditions
// and Deny statements only narrow it.
func TestTrustDrift(t *testing.T) {
	lambdaStmt := `{"Effect":"Allow","Principal":{"Service":"lambda.amazonaws.com"},"Action":"sts:AssumeRole"}`
	doc := func(stmts ...string) string {
		return `{"Version":"2012-10-17","Statement":[` + strings.Join(stmts, ",") + `]}`
	}
	for _, tc := range []struct {
		name, doc string
		drift     bool
	}{
		{"deploy's own", lambdaTrustPolicy, false},
		{"URL-encoded, as IAM returns it", url.QueryEscape(lambdaTrustPolicy), false},
		{"lists and a condition", doc(`{"Effect":"Allow","Principal":{"Service":["lambda.amazonaws.com"]},"Action":["sts:AssumeRole"],"Condition":{"StringEquals":{"aws:SourceAccount":"1"}}}`), false},
		{"a Deny beside it", doc(lambdaStmt, `{"Effect":"Deny","Principal":"*","Action":"sts:AssumeRole"}`), false},
		{"another account beside it", doc(lambdaStmt, `{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::2:root"},"Action":"sts:AssumeRole"}`), true},
		{"anyone", doc(lambdaStmt, `{"Effect":"Allow","Principal":"*","Action":"sts:AssumeRole"}`), true},
		{"another service in the same statement", doc(`{"Effect":"Allow","Principal":{"Service":["lambda.amazonaws.com","ec2.amazonaws.com"]},"Action":"sts:AssumeRole"}`), true},
		{"everyone but someone", doc(lambdaStmt, `{"Effect":"Allow","NotPrincipal":{"AWS":"arn:aws:iam::2:root"},"Action":"sts:AssumeRole"}`), true},
		{"more than AssumeRole", doc(`{"Effect":"Allow","Principal":{"Service":"lambda.amazonaws.com"},"Action":["sts:AssumeRole","sts:TagSession"]}`), true},
		{"not Lambda", doc(`{"Effect":"Allow","Principal":{"Service":"ec2.amazonaws.com"},"Action":"sts:AssumeRole"}`), true},
		{"not JSON", "{", true},
	} {
		if got := trustDrift(tc.doc); (len(got) > 0) != tc.drift {
			t.Errorf("%s: drift %v; want drift %v", tc.name, got, tc.drift)
		}
	}
}

// TestDeployRefusesAStackNameAWSWouldRefuse: a stack name some resource
// cannot carry (too long for the role's 64 characters, a character SQS or
// Lambda refuse) is refused in the user's words, naming --stack, before
// any call (the control plane here is a port that refuses connections).
func TestDeployRefusesAStackNameAWSWouldRefuse(t *testing.T) {
	cp := NewControlPlane(dummyConfig(), Endpoints{All: refusing.URL(t)})
	for _, stack := range []string{strings.Repeat("s", 50), "a.b", "a b", "a/b", "prod;rm", "ünï", "a\x1b[31m"} {
		d := &Deployer{CP: cp, Spec: DeploySpec{Stack: stack, Region: "us-east-1"}}
		_, err := d.Deploy(t.Context(), true)
		if err == nil || !strings.Contains(err.Error(), "--stack") || strings.Contains(err.Error(), "127.0.0.1") {
			t.Errorf("stack %q: %v; want it refused before any call, naming --stack", stack, err)
		}
	}
	d := &Deployer{CP: cp, Spec: DeploySpec{Stack: strings.Repeat("s", 49), Region: "us-east-1"}}
	if _, err := d.Deploy(t.Context(), true); err == nil || !strings.Contains(err.Error(), "127.0.0.1") {
		t.Errorf("a 49-character stack: %v; want it taken (and the closed port reached)", err)
	}
}
