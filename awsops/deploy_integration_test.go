package awsops

import (
	"context"
	"encoding/json"
	"os"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/apigatewayv2"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatchlogs"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	dynamotypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	lambdatypes "github.com/aws/aws-sdk-go-v2/service/lambda/types"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/socks-dev/socks/internal/emulatortest"
	"github.com/socks-dev/socks/pubsub"
)

// The control plane on moto: every service on the one moto server that
// scripts/emulators starts, shared by the package's tests (each test its
// own stack name), set up by emulatortest.MotoAWS as in ops and commands.

func motoPlane(t *testing.T) *ControlPlane {
	t.Helper()
	cfg, moto := emulatortest.MotoAWS(t)
	return NewControlPlane(cfg, Endpoints{All: moto})
}

var (
	bootstrapOnce sync.Once
	bootstrapZip  []byte
	bootstrapErr  error
)

// testZip is the function's bootstrap as deploy builds it
// (emulatortest.BuildBootstrap), for this machine's architecture (so the
// RIE can run it), packed as deploy packs it; built once per test binary.
func testZip(t *testing.T) []byte {
	t.Helper()
	bootstrapOnce.Do(func() {
		dir, err := os.MkdirTemp("", "socks-bootstrap")
		if err != nil {
			bootstrapErr = err
			return
		}
		defer os.RemoveAll(dir)
		bin, err := emulatortest.BuildBootstrap(context.Background(), dir, "GOOS=linux", "GOARCH="+runtime.GOARCH)
		if err != nil {
			bootstrapErr = err
			return
		}
		raw, err := os.ReadFile(bin)
		if err != nil {
			bootstrapErr = err
			return
		}
		bootstrapZip, bootstrapErr = LambdaZip(raw)
	})
	if bootstrapErr != nil {
		t.Fatalf("building the bootstrap: %v", bootstrapErr)
	}
	return bootstrapZip
}

func testDeployer(t *testing.T, cp *ControlPlane, stack string, zip []byte) *Deployer {
	arch := "arm64"
	if runtime.GOARCH == "amd64" {
		arch = "amd64"
	}
	return &Deployer{CP: cp, Spec: DeploySpec{Stack: stack, Region: "us-east-1", Arch: arch, Zip: zip, Wait: time.Minute},
		Sleep: func(context.Context, time.Duration) error { return nil }}
}

// removeStackAtCleanup removes what d deployed, and the stack's queues and
// tables, when the test ends.
func removeStackAtCleanup(t *testing.T, cp *ControlPlane, d *Deployer) {
	t.Cleanup(func() {
		ctx := cleanupContext(t)
		if steps, err := d.Deployed(ctx); err == nil {
			_ = d.Undeploy(ctx, steps)
		}
		_ = DeleteQueues(ctx, cp.SQS, d.Spec.Queues())
		_ = DeleteTables(ctx, cp.DB, d.Spec.Tables(), time.Minute)
	})
}

func deploy(t *testing.T, d *Deployer, dryRun bool) DeployResult {
	t.Helper()
	res, err := d.Deploy(t.Context(), dryRun)
	if err != nil {
		t.Fatalf("deploy (dry run %v): %v", dryRun, err)
	}
	return res
}

func changed(res DeployResult) []string {
	var out []string
	for _, s := range res.Steps {
		if s.Action != ActionNone {
			out = append(out, s.Action+" "+s.Kind+": "+strings.Join(s.Drift, "; "))
		}
	}
	return out
}

// wantOneDrift checks that a dry run of stack finds one change only, one
// that starts with prefix ("update role: ") and names each of names; why
// says what was done by hand.
func wantOneDrift(t *testing.T, cp *ControlPlane, stack string, zip []byte, why, prefix string, names ...string) {
	t.Helper()
	got := changed(deploy(t, testDeployer(t, cp, stack, zip), true))
	ok := len(got) == 1 && strings.HasPrefix(got[0], prefix)
	for _, name := range names {
		ok = ok && strings.Contains(got[0], name)
	}
	if !ok {
		t.Fatalf("dry run %s: %v; want one change only, %q naming %q", why, got, prefix, names)
	}
}

// putRight deploys stack and checks that a dry run then finds nothing to
// change.
func putRight(t *testing.T, cp *ControlPlane, stack string, zip []byte) {
	t.Helper()
	deploy(t, testDeployer(t, cp, stack, zip), false)
	if got := changed(deploy(t, testDeployer(t, cp, stack, zip), true)); len(got) != 0 {
		t.Fatalf("after deploy put it right: %v", got)
	}
}

// TestDeployOnMoto deploys a stack to moto and reads every resource back
// with the SDK, checking it against what docs/template.yaml declares; then
// a second deploy changes nothing; hand edits are drift that --dry-run
// reports and the next deploy undoes; teardown leaves nothing.
func TestDeployOnMoto(t *testing.T) {
	t.Parallel()
	cp := motoPlane(t)
	stack := uniqueName("dep")
	zip := testZip(t)
	ctx := t.Context()

	t.Run("a dry run on an empty account lists everything and changes nothing", func(t *testing.T) {
		d := testDeployer(t, cp, stack, zip)
		res := deploy(t, d, true)
		if len(res.Steps) != len(d.steps()) {
			t.Fatalf("steps: %+v", res.Steps)
		}
		for _, s := range res.Steps {
			if s.Action != ActionCreate {
				t.Errorf("%s: %s, want create", s, s.Action)
			}
		}
		if left, err := d.Deployed(ctx); err != nil || len(left) != 0 {
			t.Errorf("a dry run made %v (%v)", left, err)
		}
		if api, _ := FindStackAPI(ctx, cp.APIGW, stack); api != nil {
			t.Errorf("a dry run made API %s", aws.ToString(api.ApiId))
		}
	})

	d := testDeployer(t, cp, stack, zip)
	res := deploy(t, d, false)
	t.Cleanup(func() {
		d := testDeployer(t, cp, stack, nil)
		if steps, err := d.Deployed(cleanupContext(t)); err == nil {
			_ = d.Undeploy(cleanupContext(t), steps)
		}
	})
	if res.WebSocketURL == "" || !strings.HasPrefix(res.WebSocketURL, "wss://") || !strings.HasSuffix(res.CallbackURL, "/prod") {
		t.Errorf("outputs: %+v", res)
	}

	t.Run("every resource reads back as the template declares", func(t *testing.T) {
		checkDeployed(t, cp, d, res)
	})

	t.Run("a second deploy changes nothing", func(t *testing.T) {
		again := deploy(t, testDeployer(t, cp, stack, zip), false)
		if again.Changed() {
			t.Errorf("second deploy changed: %v", changed(again))
		}
	})

	for _, tc := range []struct {
		name string
		kind string
		edit func(t *testing.T)
	}{
		{"a route deleted", "routes", func(t *testing.T) {
			routes, err := cp.APIGW.(*apigatewayv2.Client).GetRoutes(ctx, &apigatewayv2.GetRoutesInput{ApiId: aws.String(res.APIID)})
			if err != nil {
				t.Fatal(err)
			}
			for _, r := range routes.Items {
				if aws.ToString(r.RouteKey) == "subscribe" {
					if _, err := cp.APIGW.(*apigatewayv2.Client).DeleteRoute(ctx, &apigatewayv2.DeleteRouteInput{ApiId: aws.String(res.APIID), RouteId: r.RouteId}); err != nil {
						t.Fatal(err)
					}
				}
			}
		}},
		{"the function timeout changed", "function", func(t *testing.T) {
			if _, err := cp.Lambda.UpdateFunctionConfiguration(ctx, &lambda.UpdateFunctionConfigurationInput{FunctionName: aws.String(d.Spec.FunctionName()), Timeout: aws.Int32(3)}); err != nil {
				t.Fatal(err)
			}
		}},
		{"the mapping disabled", "event source mapping", func(t *testing.T) {
			m, err := StackMapping(ctx, cp.Lambda, d.Spec.FunctionName(), "")
			if err != nil || m == nil {
				t.Fatalf("mapping: %v %v", m, err)
			}
			if _, err := cp.Lambda.UpdateEventSourceMapping(ctx, &lambda.UpdateEventSourceMappingInput{UUID: m.UUID, Enabled: aws.Bool(false)}); err != nil {
				t.Fatal(err)
			}
		}},
		{"a statement added to the role policy", "role policy", func(t *testing.T) {
			p := d.RolePolicy()
			p.Statement = append(p.Statement, PolicyStatement{Sid: "Sneaky", Effect: "Allow", Action: []string{"s3:*"}, Resource: []string{"*"}})
			doc, _ := json.Marshal(p)
			if _, err := cp.IAM.PutRolePolicy(ctx, &iam.PutRolePolicyInput{RoleName: aws.String(d.Spec.RoleName()), PolicyName: aws.String(DeployPolicyName), PolicyDocument: aws.String(string(doc))}); err != nil {
				t.Fatal(err)
			}
		}},
	} {
		t.Run("drift: "+tc.name, func(t *testing.T) {
			tc.edit(t)
			plan := deploy(t, testDeployer(t, cp, stack, zip), true)
			var got []string
			for _, s := range plan.Steps {
				if s.Action != ActionNone {
					got = append(got, s.Kind)
					if len(s.Drift) == 0 {
						t.Errorf("%s: %s without saying what would change", s, s.Action)
					}
				}
			}
			if len(got) != 1 || got[0] != tc.kind {
				t.Fatalf("dry run reports %v, want only %s: %v", got, tc.kind, changed(plan))
			}
			fixed := deploy(t, testDeployer(t, cp, stack, zip), false)
			if !fixed.Changed() {
				t.Errorf("deploy did not undo the edit")
			}
			if after := deploy(t, testDeployer(t, cp, stack, zip), true); after.Changed() {
				t.Errorf("after deploy still: %v", changed(after))
			}
		})
	}

	t.Run("teardown leaves nothing deploy made", func(t *testing.T) {
		td := testDeployer(t, cp, stack, nil)
		steps, err := td.Deployed(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(steps) != 5 {
			t.Errorf("found %v, want mapping, function, API, role and log group", steps)
		}
		if err := td.Undeploy(ctx, steps); err != nil {
			t.Fatal(err)
		}
		if err := DeleteQueues(ctx, cp.SQS, td.Spec.Queues()); err != nil {
			t.Fatal(err)
		}
		if err := DeleteTables(ctx, cp.DB, td.Spec.Tables(), time.Minute); err != nil {
			t.Fatal(err)
		}
		if left, err := td.Deployed(ctx); err != nil || len(left) != 0 {
			t.Errorf("left: %v (%v)", left, err)
		}
		plan := deploy(t, testDeployer(t, cp, stack, zip), true)
		for _, s := range plan.Steps {
			if s.Action != ActionCreate {
				t.Errorf("after teardown %s is %s, want create", s, s.Action)
			}
		}
	})
}

// TestDeployStopsOnATableItCannotPutRight: a table whose key differs
// cannot be changed in place. Deploy used to call it "update", leave the
// table as it was and go on to make the function, which then failed on
// every call; and every later deploy "updated" it again. Now it stops
// first, with the drift and its fix, and makes nothing.
func TestDeployStopsOnATableItCannotPutRight(t *testing.T) {
	t.Parallel()
	cp := motoPlane(t)
	stack := uniqueName("badkey")
	d := testDeployer(t, cp, stack, []byte("zip"))
	table := d.Spec.Tables().Connections
	if _, err := cp.DB.CreateTable(t.Context(), &dynamodb.CreateTableInput{
		TableName:            aws.String(table),
		AttributeDefinitions: []dynamotypes.AttributeDefinition{{AttributeName: aws.String("id"), AttributeType: dynamotypes.ScalarAttributeTypeS}},
		KeySchema:            []dynamotypes.KeySchemaElement{{AttributeName: aws.String("id"), KeyType: dynamotypes.KeyTypeHash}},
		BillingMode:          dynamotypes.BillingModePayPerRequest,
	}); err != nil {
		t.Fatal(err)
	}
	removeStackAtCleanup(t, cp, d)
	_, err := d.Deploy(t.Context(), false)
	if err == nil || !strings.Contains(err.Error(), table) || !strings.Contains(err.Error(), "key") {
		t.Fatalf("deploy over a table with another key: %v; want it refused, naming the table and its key", err)
	}
	if left, err := d.Deployed(t.Context()); err != nil || len(left) != 0 {
		t.Errorf("a refused deploy made %v (%v)", left, err)
	}
}

// TestATrustPolicyEditedByHandIsDrift: a role whose trust policy no longer
// lets Lambda assume it leaves the function without credentials on its
// next cold start. Deploy said "nothing to do"; now it is drift that the
// next deploy puts right.
func TestATrustPolicyEditedByHandIsDrift(t *testing.T) {
	t.Parallel()
	cp, stack, zip, d := shellStack(t, "trust")
	deploy(t, d, false)
	ec2 := `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"ec2.amazonaws.com"},"Action":"sts:AssumeRole"}]}`
	if _, err := cp.IAM.UpdateAssumeRolePolicy(t.Context(), &iam.UpdateAssumeRolePolicyInput{RoleName: aws.String(d.Spec.RoleName()), PolicyDocument: aws.String(ec2)}); err != nil {
		t.Fatal(err)
	}
	wantOneDrift(t, cp, stack, zip, "after the trust policy was edited", "update role: ", "trust policy")
	putRight(t, cp, stack, zip)
}

// TestTeardownLeavesALogGroupThatIsNotTheStacks: the log group
// /aws/lambda/STACK-socks of a function deploy did not make (not tagged
// socks:stack, as deploy tags its own) holds someone else's logs; teardown
// found it by name alone and deleted it.
func TestTeardownLeavesALogGroupThatIsNotTheStacks(t *testing.T) {
	t.Parallel()
	cp := motoPlane(t)
	d := testDeployer(t, cp, uniqueName("lg"), nil)
	name := d.Spec.LogGroupName()
	if _, err := cp.Logs.CreateLogGroup(t.Context(), &cloudwatchlogs.CreateLogGroupInput{LogGroupName: aws.String(name), Tags: map[string]string{"team": "other"}}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_, _ = cp.Logs.DeleteLogGroup(cleanupContext(t), &cloudwatchlogs.DeleteLogGroupInput{LogGroupName: aws.String(name)})
	})
	steps, err := d.Deployed(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if len(steps) != 0 {
		t.Errorf("teardown would delete %v; want nothing (the log group is not the stack's)", steps)
	}
}

// shellZip is a deployment package of the right shape, for tests that do
// not run the function.
// shellStack is a stack of its own on moto (named from prefix) with its
// deployer of the shell-script package, removed with its queues and
// tables when the test ends.
func shellStack(t *testing.T, prefix string) (cp *ControlPlane, stack string, zip []byte, d *Deployer) {
	t.Helper()
	cp = motoPlane(t)
	stack = uniqueName(prefix)
	zip = shellZip(t)
	d = testDeployer(t, cp, stack, zip)
	removeStackAtCleanup(t, cp, d)
	return cp, stack, zip, d
}

func shellZip(t *testing.T) []byte {
	t.Helper()
	zip, err := LambdaZip([]byte("#!/bin/sh\n"))
	if err != nil {
		t.Fatal(err)
	}
	return zip
}

// TestQueueDriftDoesNotHideTheMapping: with the queue drifted (its
// visibility timeout changed by hand), a dry run, and doctor's check,
// said the event source mapping was missing and would be created: the
// queue's ARN was read only when the queues had no drift at all.
func TestQueueDriftDoesNotHideTheMapping(t *testing.T) {
	t.Parallel()
	cp, stack, zip, d := shellStack(t, "qdrift")
	deploy(t, d, false)
	u, err := cp.SQS.GetQueueUrl(t.Context(), &sqs.GetQueueUrlInput{QueueName: aws.String(d.Spec.Queues().Main)})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cp.SQS.SetQueueAttributes(t.Context(), &sqs.SetQueueAttributesInput{QueueUrl: u.QueueUrl, Attributes: map[string]string{"VisibilityTimeout": "5"}}); err != nil {
		t.Fatal(err)
	}
	plan := deploy(t, testDeployer(t, cp, stack, zip), true)
	for _, s := range plan.Steps {
		want := ActionNone
		if s.Kind == "tables and queues" {
			want = ActionUpdate
		}
		if s.Action != want {
			t.Errorf("dry run with the queue's visibility timeout changed: %s is %s (%v); want %s", s, s.Action, s.Drift, want)
		}
	}
}

// TestAFunctionEnvironmentDeployDidNotSetIsDrift: deploy compared only the
// variables it sets, so a variable it no longer sets (the event mapping,
// after the profile lost it) or one added by hand (SOCKS_ENDPOINT_URL
// pointing the function elsewhere) stayed on the function while deploy
// said "nothing to do". Now each is drift, put right; doctor (which cannot
// know the profile's mapping) takes SOCKS_EVENT_MAPPING as deployed.
func TestAFunctionEnvironmentDeployDidNotSetIsDrift(t *testing.T) {
	t.Parallel()
	cp := motoPlane(t)
	stack := uniqueName("env")
	zip := shellZip(t)
	withMapping := testDeployer(t, cp, stack, zip)
	withMapping.Spec.EventMapping = `{"topics":["/detail/id"]}`
	removeStackAtCleanup(t, cp, withMapping)
	deploy(t, withMapping, false)

	wantOneDrift(t, cp, stack, zip, "without the mapping", "update function: ", "SOCKS_EVENT_MAPPING")
	doctor := testDeployer(t, cp, stack, nil)
	doctor.Spec.AcceptSettings = true
	if got := changed(deploy(t, doctor, true)); len(got) != 0 {
		t.Errorf("doctor's check, which cannot know the mapping: %v; want nothing", got)
	}
	putRight(t, cp, stack, zip)

	fn, err := cp.Lambda.GetFunction(t.Context(), &lambda.GetFunctionInput{FunctionName: aws.String(withMapping.Spec.FunctionName())})
	if err != nil {
		t.Fatal(err)
	}
	env := fn.Configuration.Environment.Variables
	if _, ok := env["SOCKS_EVENT_MAPPING"]; ok {
		t.Errorf("deploy left SOCKS_EVENT_MAPPING on the function: %v", env)
	}
	env["SOCKS_ENDPOINT_URL"] = "http://203.0.113.7:4566"
	if _, err := cp.Lambda.UpdateFunctionConfiguration(t.Context(), &lambda.UpdateFunctionConfigurationInput{
		FunctionName: aws.String(withMapping.Spec.FunctionName()), Environment: &lambdatypes.Environment{Variables: env},
	}); err != nil {
		t.Fatal(err)
	}
	for name, d := range map[string]*Deployer{"deploy": testDeployer(t, cp, stack, zip), "doctor": doctor} {
		got := changed(deploy(t, d, true))
		if len(got) != 1 || !strings.Contains(got[0], "SOCKS_ENDPOINT_URL") {
			t.Errorf("%s after SOCKS_ENDPOINT_URL was added by hand: %v; want it as drift", name, got)
		}
	}
	putRight(t, cp, stack, zip)
}

// TestTwoAPIsOfOneStack: two deploys of a stack that run at once (two CI
// jobs) each make an API tagged with the stack before one of them fails
// on the role or the function. Deploy then took whichever API came first
// (its URLs could change from run to run), and teardown deleted only that
// one: the other was left behind, serving nothing. Now deploy refuses,
// naming both, and teardown deletes every API of the stack.
func TestTwoAPIsOfOneStack(t *testing.T) {
	t.Parallel()
	cp, stack, _, d := shellStack(t, "twoapi")
	var ids []string
	for range 2 {
		out, err := cp.APIGW.CreateApi(t.Context(), &apigatewayv2.CreateApiInput{
			Name: aws.String(d.Spec.APIName()), ProtocolType: "WEBSOCKET", RouteSelectionExpression: aws.String(DeployRouteSelection),
			Tags: map[string]string{TagStack: stack, "app": "socks"},
		})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, aws.ToString(out.ApiId))
	}
	_, err := d.Deploy(t.Context(), true)
	if err == nil || !strings.Contains(err.Error(), ids[0]) || !strings.Contains(err.Error(), ids[1]) {
		t.Errorf("deploy with two APIs of the stack: %v; want it refused, naming both", err)
	}
	steps, err := d.Deployed(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if len(steps) != 2 {
		t.Errorf("teardown would delete %v; want both APIs", steps)
	}
	if err := d.Undeploy(t.Context(), steps); err != nil {
		t.Fatal(err)
	}
	for _, id := range ids {
		if _, err := cp.APIGW.(*apigatewayv2.Client).GetApi(t.Context(), &apigatewayv2.GetApiInput{ApiId: aws.String(id)}); err == nil {
			t.Errorf("API %s is still there after teardown", id)
		}
	}
}

// TestAForeignInvokePermissionIsDrift: deploy checked only its own
// statement of the function's resource policy, so one added by hand (any
// account or service may invoke the function, with events it makes up:
// a $connect for any geek, a batch of envelopes) stayed while deploy and
// doctor said all was in place. It is drift now, removed by deploy, as a
// foreign statement of the role's policy is.
func TestAForeignInvokePermissionIsDrift(t *testing.T) {
	t.Parallel()
	cp, stack, zip, d := shellStack(t, "perm")
	deploy(t, d, false)
	if _, err := cp.Lambda.AddPermission(t.Context(), &lambda.AddPermissionInput{
		FunctionName: aws.String(d.Spec.FunctionName()), StatementId: aws.String("anyone"),
		Action: aws.String("lambda:InvokeFunction"), Principal: aws.String("123456789012"),
	}); err != nil {
		t.Fatal(err)
	}
	wantOneDrift(t, cp, stack, zip, "after a statement was added to the function's policy", "update permission: ", "anyone")
	putRight(t, cp, stack, zip)
	pol, err := cp.Lambda.GetPolicy(t.Context(), &lambda.GetPolicyInput{FunctionName: aws.String(d.Spec.FunctionName())})
	if err != nil {
		t.Fatal(err)
	}
	if p := aws.ToString(pol.Policy); strings.Contains(p, "anyone") || !strings.Contains(p, DeployPermissionID) {
		t.Errorf("the function's policy after deploy: %s; want only %s", p, DeployPermissionID)
	}
}

// TestATrustPolicyThatAlsoTrustsOthersIsDrift: deploy checked only that
// the role's trust policy still let Lambda assume it, so a statement added
// beside it (another account may assume the role, and with it the tables,
// the queues and ManageConnections) was not drift. Now the trust policy
// must be Lambda's alone.
func TestATrustPolicyThatAlsoTrustsOthersIsDrift(t *testing.T) {
	t.Parallel()
	cp, stack, zip, d := shellStack(t, "trust2")
	deploy(t, d, false)
	both := `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"lambda.amazonaws.com"},"Action":"sts:AssumeRole"},` +
		`{"Sid":"Other","Effect":"Allow","Principal":{"AWS":"arn:aws:iam::210987654321:root"},"Action":"sts:AssumeRole"}]}`
	if _, err := cp.IAM.UpdateAssumeRolePolicy(t.Context(), &iam.UpdateAssumeRolePolicyInput{RoleName: aws.String(d.Spec.RoleName()), PolicyDocument: aws.String(both)}); err != nil {
		t.Fatal(err)
	}
	wantOneDrift(t, cp, stack, zip, "after another account was let assume the role", "update role: ", "210987654321")
	putRight(t, cp, stack, zip)
}

// TestTeardownDeletesEveryMappingOfTheFunction: teardown deleted the
// first event source mapping of the stack's function only. Lambda keeps a
// function's mappings when the function is deleted, so another one (from
// a second queue added by hand) was left, pointing at nothing.
func TestTeardownDeletesEveryMappingOfTheFunction(t *testing.T) {
	t.Parallel()
	cp, stack, _, d := shellStack(t, "maps")
	deploy(t, d, false)
	other := Queues{Main: stack + "-other", DeadLetter: stack + "-other-dlq"}
	if _, _, err := EnsureQueues(t.Context(), cp.SQS, other, QueueSettings{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = DeleteQueues(cleanupContext(t), cp.SQS, other) })
	arn, err := queueARN(t.Context(), cp.SQS, other.Main)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cp.Lambda.CreateEventSourceMapping(t.Context(), &lambda.CreateEventSourceMappingInput{
		FunctionName: aws.String(d.Spec.FunctionName()), EventSourceArn: aws.String(arn), BatchSize: aws.Int32(1),
	}); err != nil {
		t.Fatal(err)
	}
	steps, err := d.Deployed(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, s := range steps {
		if s.Kind == "event source mapping" {
			n++
		}
	}
	if n != 2 {
		t.Fatalf("teardown would delete %v; want both mappings of the function", steps)
	}
	if err := d.Undeploy(t.Context(), steps); err != nil {
		t.Fatal(err)
	}
	left, err := cp.Lambda.ListEventSourceMappings(t.Context(), &lambda.ListEventSourceMappingsInput{EventSourceArn: aws.String(arn)})
	if err != nil {
		t.Fatal(err)
	}
	if len(left.EventSourceMappings) != 0 {
		t.Errorf("after teardown %d mappings are left", len(left.EventSourceMappings))
	}
}

// TestAStageDeployNoLongerMakesIsDrift: deploy --stage dev on a stack
// deployed with the default stage made the new stage and left prod. The
// function posts through dev's endpoint and the role allows dev only, so
// clients that still connected at prod's URL were accepted and then never
// got a message. The stage deploy no longer makes is drift now, removed.
func TestAStageDeployNoLongerMakesIsDrift(t *testing.T) {
	t.Parallel()
	cp, stack, zip, d := shellStack(t, "stage")
	res := deploy(t, d, false)
	dev := func() *Deployer {
		d := testDeployer(t, cp, stack, zip)
		d.Spec.Stage = "dev"
		return d
	}
	var stageDrift []string
	for _, s := range deploy(t, dev(), true).Steps {
		if s.Kind == "stage" {
			stageDrift = s.Drift
		}
	}
	if !strings.Contains(strings.Join(stageDrift, "; "), "prod") {
		t.Errorf("dry run with --stage dev: stage drift %v; want stage prod named", stageDrift)
	}
	deploy(t, dev(), false)
	if got := changed(deploy(t, dev(), true)); len(got) != 0 {
		t.Errorf("after deploy --stage dev: %v", got)
	}
	stages, err := cp.APIGW.(*apigatewayv2.Client).GetStages(t.Context(), &apigatewayv2.GetStagesInput{ApiId: aws.String(res.APIID)})
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, s := range stages.Items {
		names = append(names, aws.ToString(s.StageName))
	}
	if len(names) != 1 || names[0] != "dev" {
		t.Errorf("stages after deploy --stage dev: %v; want only dev", names)
	}
}

// TestARouteDeployDidNotMakeIsDrift: a route added by hand to the stack's
// API (a key that forwards what clients send to another integration) was
// not drift. It is now, removed by deploy.
func TestARouteDeployDidNotMakeIsDrift(t *testing.T) {
	t.Parallel()
	cp, stack, zip, d := shellStack(t, "route")
	res := deploy(t, d, false)
	gw := cp.APIGW.(*apigatewayv2.Client)
	in, err := gw.CreateIntegration(t.Context(), &apigatewayv2.CreateIntegrationInput{
		ApiId: aws.String(res.APIID), IntegrationType: "HTTP_PROXY", IntegrationMethod: aws.String("POST"), IntegrationUri: aws.String("https://collector.example.com/"),
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := gw.CreateRoute(t.Context(), &apigatewayv2.CreateRouteInput{
		ApiId: aws.String(res.APIID), RouteKey: aws.String("sendmessage"), Target: aws.String("integrations/" + aws.ToString(in.IntegrationId)),
	}); err != nil {
		t.Fatal(err)
	}
	wantOneDrift(t, cp, stack, zip, "after a route was added by hand", "update routes: ", "sendmessage")
	putRight(t, cp, stack, zip)
	routes, err := gw.GetRoutes(t.Context(), &apigatewayv2.GetRoutesInput{ApiId: aws.String(res.APIID)})
	if err != nil {
		t.Fatal(err)
	}
	if len(routes.Items) != len(DeployRoutes) {
		t.Errorf("%d routes after deploy; want %d", len(routes.Items), len(DeployRoutes))
	}
}

// TestDeployMigratesTheConnectionsTableAfterTheFunction: a stack upgraded
// with `socks deploy` alone (no provision) holds connection records of
// the earlier layout, without geek items; deploy migrates them once the
// new function is in place (a dry run counts them), so a fan-out to their
// geek finds them at once rather than only after they reconnect.
func TestDeployMigratesTheConnectionsTableAfterTheFunction(t *testing.T) {
	t.Parallel()
	cp, _, _, d := shellStack(t, "upgrade")
	deploy(t, d, false)
	s := NewDynamoStore(cp.Data, d.Spec.Tables())
	now := time.Now()
	c := pubsub.Connection{ID: "old-1", Geek: "alice", Topics: []string{"news"}, ConnectedAt: now, ExpiresAt: now.Add(time.Hour)}
	// The earlier layout: the record and its subscription item.
	if err := s.batchWrite(t.Context(), s.tables.Connections, []dynamotypes.WriteRequest{
		{PutRequest: &dynamotypes.PutRequest{Item: connItem(c, 1)}},
		{PutRequest: &dynamotypes.PutRequest{Item: subItem(c, "news", 1)}},
	}); err != nil {
		t.Fatal(err)
	}
	if plan := deploy(t, d, true); plan.Migrated != 1 || !plan.Changed() {
		t.Errorf("a dry run on the old records: migrated %d, changed %v; want 1, true", plan.Migrated, plan.Changed())
	}
	if res := deploy(t, d, false); res.Migrated != 1 {
		t.Errorf("deploy migrated %d records, want 1", res.Migrated)
	}
	got, err := s.FindTargets(t.Context(), []string{"alice"}, []string{"news"}, time.Now())
	if err != nil || len(got) != 1 {
		t.Errorf("after deploy a fan-out to alice finds %v, %v; want old-1", got, err)
	}
	if res := deploy(t, d, false); res.Migrated != 0 || res.Changed() {
		t.Errorf("deploy again: migrated %d, changed %v; want nothing to do", res.Migrated, res.Changed())
	}
}

// TestDeployTagsWhatWasMadeBeforeStacksWereTagged: tables and queues of an
// earlier socks carry app=socks but no socks:stack. A dry run lists the tag
// as an update of "tables and queues"; deploy adds it; the next dry run
// has nothing to do. A queue tagged as another stack's stops deploy before
// it makes anything.
func TestDeployTagsWhatWasMadeBeforeStacksWereTagged(t *testing.T) {
	t.Parallel()
	cp, stack, zip, d := shellStack(t, "pretag")
	tables, queues := d.Spec.Tables(), d.Spec.Queues()
	tables.Stack, queues.Stack = "", ""
	if _, err := EnsureTables(t.Context(), cp.DB, tables, time.Minute); err != nil {
		t.Fatal(err)
	}
	if _, _, err := EnsureQueues(t.Context(), cp.SQS, queues, QueueSettings{}); err != nil {
		t.Fatal(err)
	}
	plan := deploy(t, testDeployer(t, cp, stack, zip), true)
	var data DeployStep
	for _, s := range plan.Steps {
		if s.Kind == "tables and queues" {
			data = s
		}
	}
	if data.Action != ActionUpdate || len(data.Drift) != 5 || !strings.Contains(data.Drift[0], TagStack+"="+stack) {
		t.Fatalf("dry run: %+v; want an update naming the 5 stack tags", data)
	}
	putRight(t, cp, stack, zip)
	drifts, err := CheckStackTags(t.Context(), cp.DB, cp.SQS, d.Spec.Tables(), d.Spec.Queues())
	if err != nil || len(drifts) != 0 {
		t.Fatalf("after deploy: %v, %v; want every table and queue tagged", drifts, err)
	}

	other := uniqueName("other")
	u, err := cp.SQS.GetQueueUrl(t.Context(), &sqs.GetQueueUrlInput{QueueName: aws.String(queues.DeadLetter)})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cp.SQS.TagQueue(t.Context(), &sqs.TagQueueInput{QueueUrl: u.QueueUrl, Tags: map[string]string{TagStack: other}}); err != nil {
		t.Fatal(err)
	}
	if _, err := testDeployer(t, cp, stack, zip).Deploy(t.Context(), false); err == nil || !strings.Contains(err.Error(), "stack "+other+"'s") {
		t.Fatalf("deploy over a queue of stack %s: %v; want it refused, naming the stack", other, err)
	}
}

// policyGoneMeanwhile lists one inline policy more than the role has: one
// that another teardown (or a person) removed between the list and the
// delete.
type policyGoneMeanwhile struct{ DeployIAMAPI }

func (p policyGoneMeanwhile) ListRolePolicies(ctx context.Context, in *iam.ListRolePoliciesInput, o ...func(*iam.Options)) (*iam.ListRolePoliciesOutput, error) {
	out, err := p.DeployIAMAPI.ListRolePolicies(ctx, in, o...)
	if err == nil {
		out.PolicyNames = append([]string{"removed-meanwhile"}, out.PolicyNames...)
	}
	return out, err
}

// TestTeardownDeletesARoleWhosePolicyWentMeanwhile: an inline policy
// already gone when teardown deleted it (NoSuchEntity) stopped the role's
// deletion, and Undeploy took that NoSuchEntity for the role itself being
// gone: teardown said it deleted the role, which was left behind. On moto.
func TestTeardownDeletesARoleWhosePolicyWentMeanwhile(t *testing.T) {
	t.Parallel()
	cp, _, _, d := shellStack(t, "rolegone")
	deploy(t, d, false)
	steps, err := d.Deployed(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	td := *d
	cpCopy := *cp
	cpCopy.IAM = policyGoneMeanwhile{cp.IAM}
	td.CP = &cpCopy
	if err := td.Undeploy(t.Context(), steps); err != nil {
		t.Fatalf("undeploy: %v", err)
	}
	if _, err := cp.IAM.GetRole(t.Context(), &iam.GetRoleInput{RoleName: aws.String(d.Spec.RoleName())}); !isCode(err, "NoSuchEntity") {
		t.Errorf("role %s is still there after teardown said it deleted it (%v)", d.Spec.RoleName(), err)
	}
}
