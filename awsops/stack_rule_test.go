package awsops

import (
	"context"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
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
// rerun after it deleted the queue), its name still does.
func TestStackRuleMatchesTheQueuesARN(t *testing.T) {
	q := QueuesFor("s")
	elsewhere := "arn:aws:sqs:eu-west-1:210987654321:" + q.Main
	for _, tc := range []struct {
		name   string
		sq     QueueAdminAPI
		target string
		want   bool
	}{
		{"the queue's own ARN", nil, "", true},
		{"a queue of the same name in another region and account", nil, elsewhere, false},
		{"the queue gone: its name", queueGone{}, elsewhere, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFakeProducers()
			target := tc.target
			if target == "" {
				target = f.queueARN
			}
			f.targets[RuleFor("s")] = []evtypes.Target{{Id: aws.String(RuleTargetID), Arn: aws.String(target)}}
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
