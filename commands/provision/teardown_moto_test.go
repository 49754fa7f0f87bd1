package provision

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/eventbridge"

	"github.com/socks-dev/socks/awsops"
	"github.com/socks-dev/socks/internal/emulatortest"
	"github.com/socks-dev/socks/iostreams"
)

// TestTeardownRemovesTheStacksRuleWithoutTheFlag: a stack deployed (or
// provisioned) with --eventbridge-rule, torn down without the flag, used
// to keep its rule STACK-envelopes, sending every matching event to a
// queue that no longer exists. Teardown finds the rule by its name and
// its socks target on the queue, and deletes it with the rest.
func TestTeardownRemovesTheStacksRuleWithoutTheFlag(t *testing.T) {
	cfg, moto := emulatortest.MotoAWS(t)
	cp := awsops.NewControlPlane(cfg, awsops.Endpoints{All: moto})
	stack := "tdrule-" + strings.ReplaceAll(time.Now().Format("150405.000000"), ".", "")
	queues, tables := awsops.QueuesFor(stack), awsops.TablesFor(stack)
	rule := &awsops.EventRule{Name: awsops.RuleFor(stack), Sources: []string{"s"}, DetailTypes: []string{"d"}}
	ctx := t.Context()
	if _, err := awsops.EnsureTables(ctx, cp.DB, tables, time.Minute); err != nil {
		t.Fatal(err)
	}
	if _, _, err := awsops.EnsureQueues(ctx, cp.SQS, queues, awsops.QueueSettings{}); err != nil {
		t.Fatal(err)
	}
	p := awsops.Producers{Rule: rule}
	plan, err := awsops.CheckProducers(ctx, cp.Events, cp.SNS, cp.SQS, queues, p)
	if err != nil {
		t.Fatal(err)
	}
	if err := awsops.CreateProducers(ctx, cp.Events, cp.SNS, cp.SQS, queues, p, plan); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		_, _ = awsops.DeleteProducers(ctx, cp.Events, cp.SNS, cp.SQS, queues, p)
		_ = awsops.DeleteQueues(ctx, cp.SQS, queues)
		_ = awsops.DeleteTables(ctx, cp.DB, tables, time.Minute)
	})

	ios, _, out, errOut := iostreams.Test()
	opts := &TeardownOptions{IO: ios, Now: time.Now, Wait: time.Minute, Yes: true}
	opts.EventBus = awsops.DefaultBus
	opts.Target = func(context.Context) (*Target, error) {
		return &Target{Tables: tables, Queues: queues, DB: cp.DB, SQS: cp.SQS, Events: cp.Events, SNS: cp.SNS, Stack: stack, Region: cfg.Region,
			Deployer: &awsops.Deployer{CP: cp, Spec: awsops.DeploySpec{Stack: stack, Region: cfg.Region}}}, nil
	}
	if err := teardownRun(ctx, opts); err != nil {
		t.Fatalf("teardown: %v\n%s", err, errOut)
	}
	if _, err := cp.Events.DescribeRule(ctx, &eventbridge.DescribeRuleInput{Name: aws.String(rule.Name)}); err == nil {
		t.Errorf("the rule %s is still there after teardown; stdout:\n%s", rule.Name, out)
	}
	if !strings.Contains(out.String(), "deleted eventbridge rule default/"+rule.Name) && !strings.Contains(out.String(), rule.Name) {
		t.Errorf("teardown did not say it deleted the rule:\n%s", out)
	}
}

// TestATeardownInterruptedBetweenTheRulesTargetAndTheRuleIsFinished: a
// teardown stopped after it removed the rule's target and before it
// deleted the rule left a rule that a rerun without --eventbridge-rule did
// not find (it looked for the target), kept for good. The rerun now also
// takes the rule of the stack's name that socks made for the stack's queue
// (its description says so) and that sends nowhere. On moto.
func TestATeardownInterruptedBetweenTheRulesTargetAndTheRuleIsFinished(t *testing.T) {
	cfg, moto := emulatortest.MotoAWS(t)
	cp := awsops.NewControlPlane(cfg, awsops.Endpoints{All: moto})
	stack := randomStack("tdhalfrule")
	queues, tables := awsops.QueuesFor(stack), awsops.TablesFor(stack)
	rule := &awsops.EventRule{Name: awsops.RuleFor(stack), Sources: []string{"s"}, DetailTypes: []string{"d"}}
	ctx := t.Context()
	makeData(t, cp.DB, cp.SQS, stack, stack)
	p := awsops.Producers{Rule: rule}
	plan, err := awsops.CheckProducers(ctx, cp.Events, cp.SNS, cp.SQS, queues, p)
	if err != nil {
		t.Fatal(err)
	}
	if err := awsops.CreateProducers(ctx, cp.Events, cp.SNS, cp.SQS, queues, p, plan); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		_, _ = cp.Events.DeleteRule(ctx, &eventbridge.DeleteRuleInput{Name: aws.String(rule.Name)})
	})
	// The first teardown got this far.
	if _, err := cp.Events.RemoveTargets(ctx, &eventbridge.RemoveTargetsInput{Rule: aws.String(rule.Name), Ids: []string{awsops.RuleTargetID}}); err != nil {
		t.Fatal(err)
	}

	ios, in, out, errOut := iostreams.Test()
	ios.SetTTY(true, false, false)
	in.WriteString(stack + "\n")
	opts := &TeardownOptions{IO: ios, Now: time.Now, Wait: time.Minute}
	opts.EventBus = awsops.DefaultBus
	opts.Target = func(context.Context) (*Target, error) {
		return &Target{Tables: tables, Queues: queues, DB: cp.DB, SQS: cp.SQS, Events: cp.Events, SNS: cp.SNS, Stack: stack, Region: cfg.Region,
			Deployer: &awsops.Deployer{CP: cp, Spec: awsops.DeploySpec{Stack: stack, Region: cfg.Region}}}, nil
	}
	if err := teardownRun(ctx, opts); err != nil {
		t.Fatalf("teardown: %v\n%s", err, errOut)
	}
	if !strings.Contains(errOut.String(), "  eventbridge rule default/"+rule.Name+"\n") {
		t.Errorf("the confirmation does not list the rule:\n%s", errOut)
	}
	if _, err := cp.Events.DescribeRule(ctx, &eventbridge.DescribeRuleInput{Name: aws.String(rule.Name)}); err == nil {
		t.Errorf("the rule %s is still there after the rerun; stdout:\n%s", rule.Name, out)
	}
}
