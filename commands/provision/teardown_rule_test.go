package provision

import (
	"context"
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/eventbridge"
	evtypes "github.com/aws/aws-sdk-go-v2/service/eventbridge/types"

	"github.com/socks-dev/socks/awsops"
	"github.com/socks-dev/socks/iostreams"
)

// noRules is an EventBridge bus without any rule.
type noRules struct{ awsops.EventsAPI }

func (noRules) DescribeRule(context.Context, *eventbridge.DescribeRuleInput, ...func(*eventbridge.Options)) (*eventbridge.DescribeRuleOutput, error) {
	return nil, &evtypes.ResourceNotFoundException{}
}

// TestTeardownWithTheRuleFlagAndNoRuleDoesNotPlanIt: teardown
// --eventbridge-rule where the rule does not exist (a stack provisioned
// without it, or a rerun after it went) listed the rule among what it
// deletes and, when it stopped later, among what is "still there" (in
// words and in --json's "left"), though there was never a rule. It now
// warns that the rule does not exist, as for an --sns-topic that does
// not, and plans only what exists.
func TestTeardownWithTheRuleFlagAndNoRuleDoesNotPlanIt(t *testing.T) {
	a := provisioned(t)
	ios, _, out, errOut := iostreams.Test()
	opts := &TeardownOptions{IO: ios, Now: time.Now, Wait: time.Second, Yes: true, JSON: true}
	opts.EventBridgeRule, opts.EventBus = true, awsops.DefaultBus
	opts.Target = func(context.Context) (*Target, error) {
		return &Target{Tables: awsops.TablesFor("prod"), Queues: awsops.QueuesFor("prod"), DB: refusingOneTable{a, "prod-chatter"}, SQS: a, Events: noRules{}, Stack: "prod", Region: "us-east-1"}, nil
	}
	err := teardownRun(t.Context(), opts)
	if err == nil || !strings.Contains(err.Error(), "injected") {
		t.Fatalf("teardown with DeleteTable of prod-chatter refused: %v", err)
	}
	if strings.Contains(err.Error(), "rule") {
		t.Errorf("the error says a rule is left: %v", err)
	}
	var res struct {
		Left []awsops.Change `json:"left"`
	}
	if err := json.Unmarshal(out.Bytes(), &res); err != nil {
		t.Fatalf("--json after teardown stopped: %v\n%q", err, out)
	}
	if slices.ContainsFunc(res.Left, func(c awsops.Change) bool { return c.Kind == awsops.KindRule }) {
		t.Errorf("--json's left %v has a rule that does not exist", res.Left)
	}
	if !strings.Contains(errOut.String(), "EventBridge rule default/prod-envelopes") || !strings.Contains(errOut.String(), "does not exist") {
		t.Errorf("stderr %q; want a warning that the rule does not exist", errOut)
	}
}
