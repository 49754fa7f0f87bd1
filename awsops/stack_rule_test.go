package awsops

import (
	"context"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/eventbridge"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"

	evtypes "github.com/aws/aws-sdk-go-v2/service/eventbridge/types"
)

// queueGone answers as SQS does once the queue is deleted.
type queueGone struct{ *fakeProducers }

func (queueGone) GetQueueUrl(context.Context, *sqs.GetQueueUrlInput, ...func(*sqs.Options)) (*sqs.GetQueueUrlOutput, error) {
	return nil, &sqstypes.QueueDoesNotExist{Message: aws.String("The specified queue does not exist.")}
}

// TestStackRuleMatchesTheQueuesARN: teardown's lookup of the stack's
// EventBridge rule took a rule whose socks target sent to any queue of
// the stack's main queue's name, in another region or account too. With
// the queue there, its ARN must match; once the queue is gone (a teardown
// rerun after it deleted the queue), its name still does. A rule of the
// stack's name without any target is the stack's only when it carries the
// description provision gives it (a teardown stopped between removing the
// target and deleting the rule; docs/deploy.md, Permissions): someone
// else's rule of that name, with or without targets, is never taken (and
// so never deleted).
func TestStackRuleMatchesTheQueuesARN(t *testing.T) {
	q := QueuesFor("s")
	elsewhere := "arn:aws:sqs:eu-west-1:210987654321:" + q.Main
	ours := ruleDescription(q)
	for _, tc := range []struct {
		name        string
		sq          QueueAdminAPI
		targets     []evtypes.Target // nil: socks's target to the queue's ARN
		description string
		want        bool
	}{
		{"the queue's own ARN", nil, nil, "", true},
		{"a queue of the same name in another region and account", nil, []evtypes.Target{{Id: aws.String(RuleTargetID), Arn: aws.String(elsewhere)}}, "", false},
		{"the queue gone: its name", queueGone{}, []evtypes.Target{{Id: aws.String(RuleTargetID), Arn: aws.String(elsewhere)}}, "", true},
		{"no target left, socks's description", nil, []evtypes.Target{}, ours, true},
		{"no target left, socks's description, the queue gone", queueGone{}, []evtypes.Target{}, ours, true},
		{"no target, another description", nil, []evtypes.Target{}, "nightly reports", false},
		{"no target, no description", nil, []evtypes.Target{}, "", false},
		{"another's target, socks's description", nil, []evtypes.Target{{Id: aws.String("theirs"), Arn: aws.String("arn:aws:lambda:us-east-1:123456789012:function:theirs")}}, ours, false},
		{"socks's target ID to another kind of target", nil, []evtypes.Target{{Id: aws.String(RuleTargetID), Arn: aws.String("arn:aws:lambda:us-east-1:123456789012:function:" + q.Main)}}, ours, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFakeProducers()
			targets := tc.targets
			if targets == nil {
				targets = []evtypes.Target{{Id: aws.String(RuleTargetID), Arn: aws.String(f.queueARN)}}
			}
			f.targets[RuleFor("s")] = targets
			f.rules[DefaultBus+"/"+RuleFor("s")] = &eventbridge.DescribeRuleOutput{Name: aws.String(RuleFor("s")), Description: aws.String(tc.description)}
			var sq QueueAdminAPI = f
			if g, ok := tc.sq.(queueGone); ok {
				g.fakeProducers = f
				sq = g
			}
			r, err := StackRule(t.Context(), f, sq, q, "s", "")
			if err != nil {
				t.Fatal(err)
			}
			if got := r != nil; got != tc.want {
				t.Errorf("StackRule = %+v; want the rule %t", r, tc.want)
			}
		})
	}
}
