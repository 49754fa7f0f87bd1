package ops_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/lambda"

	"github.com/socks-dev/socks/awsops"
	"github.com/socks-dev/socks/internal/emulatortest"
	"github.com/socks-dev/socks/ops"
)

// deployOnMoto deploys spec (in us-east-1, with a stand-in bootstrap) to
// moto and removes the stack when the test ends.
func deployOnMoto(t *testing.T, spec awsops.DeploySpec) (*awsops.ControlPlane, *awsops.Deployer) {
	t.Helper()
	cfg, moto := emulatortest.MotoAWS(t)
	cp := awsops.NewControlPlane(cfg, awsops.Endpoints{All: moto})
	zip, err := awsops.LambdaZip([]byte("#!/bin/sh\n"))
	if err != nil {
		t.Fatal(err)
	}
	spec.Region, spec.Zip, spec.Wait = cfg.Region, zip, time.Minute
	d := &awsops.Deployer{CP: cp, Spec: spec}
	if _, err := d.Deploy(t.Context(), false); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if steps, err := d.Deployed(ctx); err == nil {
			_ = d.Undeploy(ctx, steps)
		}
		_ = awsops.DeleteQueues(ctx, cp.SQS, d.Spec.Queues())
		_ = awsops.DeleteTables(ctx, cp.DB, d.Spec.Tables(), time.Minute)
	})
	return cp, d
}

// TestDoctorChecksTheDeployedStack deploys a stack to moto, and doctor's
// "deployed stack" check passes; a disabled mapping then fails it, saying
// so; a stack that deploy never made has nothing more to check.
func TestDoctorChecksTheDeployedStack(t *testing.T) {
	stack := "doc-" + strings.ReplaceAll(time.Now().Format("150405.000000"), ".", "")
	cp, d := deployOnMoto(t, awsops.DeploySpec{Stack: stack})
	run := func(stack string) ops.Result {
		env := &ops.Env{AWS: &ops.AWSEnv{Deployed: ops.DeployedCheck(cp, stack, emulatortest.MotoRegion, "", func() awsops.QueueSettings { return awsops.QueueSettings{} })}}
		var c ops.Check
		for _, x := range ops.AWSChecks {
			if x.Name == "deployed stack" {
				c = x
			}
		}
		if c.Run == nil {
			t.Fatal("no deployed stack check")
		}
		return ops.RunChecks(t.Context(), env, []ops.Check{c}).Checks[0]
	}

	if r := run(stack); r.Status != ops.StatusOK || !strings.Contains(r.Detail, "routes, integration") {
		t.Errorf("healthy stack: %+v", r)
	}
	m, err := awsops.StackMapping(t.Context(), cp.Lambda, d.Spec.FunctionName(), "")
	if err != nil || m == nil {
		t.Fatalf("mapping %v %v", m, err)
	}
	if _, err := cp.Lambda.UpdateEventSourceMapping(t.Context(), &lambda.UpdateEventSourceMappingInput{UUID: m.UUID, Enabled: aws.Bool(false)}); err != nil {
		t.Fatal(err)
	}
	if r := run(stack); r.Status != ops.StatusFail || !strings.Contains(r.Detail, "event source mapping: state is Disabled; want Enabled") || !strings.Contains(r.Fix, "socks deploy") {
		t.Errorf("disabled mapping: %+v", r)
	}
	if r := run(stack + "-none"); r.Status != ops.StatusOK || !strings.Contains(r.Detail, "nothing more to check") {
		t.Errorf("a stack deploy never made: %+v", r)
	}
}

// TestDoctorAcceptsTheSettingsDeployWasGiven: doctor does not know the
// flags deploy had (--arch, --throttle-*, --max-concurrency, --max-topics,
// --max-connections-per-geek), so a stack deployed with other values than
// the defaults is healthy, not drifted.
func TestDoctorAcceptsTheSettingsDeployWasGiven(t *testing.T) {
	stack := "docset-" + strings.ReplaceAll(time.Now().Format("150405.000000"), ".", "")
	cp, _ := deployOnMoto(t, awsops.DeploySpec{Stack: stack,
		Arch: "amd64", ThrottlingBurstLimit: 100, ThrottlingRateLimit: 50, MaximumConcurrency: 40, MaxTopics: 20, MaxConnectionsPerGeek: 3})
	res, err := ops.DeployedCheck(cp, stack, emulatortest.MotoRegion, "", func() awsops.QueueSettings { return awsops.QueueSettings{} })(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range res.Steps {
		if s.Action != awsops.ActionNone {
			t.Errorf("doctor sees %s as %s: %v", s, s.Action, s.Drift)
		}
	}
}
