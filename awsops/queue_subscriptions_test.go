package awsops

import (
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sns"
	snstypes "github.com/aws/aws-sdk-go-v2/service/sns/types"
)

// arnOnlyTopics rejects an Unsubscribe whose SubscriptionArn is not an
// ARN, as SNS does for "PendingConfirmation".
type arnOnlyTopics struct{ *fakeProducers }

func (a arnOnlyTopics) Unsubscribe(ctx context.Context, in *sns.UnsubscribeInput, optFns ...func(*sns.Options)) (*sns.UnsubscribeOutput, error) {
	if !strings.HasPrefix(aws.ToString(in.SubscriptionArn), "arn:") {
		return nil, &snstypes.InvalidParameterException{Message: aws.String("Invalid parameter: SubscriptionArn Reason: An ARN must have at least 6 elements, not 1")}
	}
	return a.fakeProducers.Unsubscribe(ctx, in, optFns...)
}

// TestASubscriptionPendingConfirmationDoesNotStopTeardown: SNS lists a
// subscription not yet confirmed (a topic owner in another account
// subscribed the queue) with SubscriptionArn "PendingConfirmation", which
// Unsubscribe rejects. Teardown, which now unsubscribes every
// subscription of the queue to the topics of its policy, stopped on it
// before deleting the queue and the tables, at every rerun. It has no
// ARN to remove; SNS deletes it unconfirmed, and with the queue gone no
// one can confirm it. The confirmed subscription beside it goes.
func TestASubscriptionPendingConfirmationDoesNotStopTeardown(t *testing.T) {
	f := newFakeProducers()
	topic := "arn:aws:sns:us-east-1:210987654321:jobs"
	confirmed := topic + ":sub-1"
	f.subs[topic] = []snstypes.Subscription{
		{SubscriptionArn: aws.String("PendingConfirmation"), Protocol: aws.String("sqs"), Endpoint: aws.String(f.queueARN), TopicArn: aws.String(topic)},
		{SubscriptionArn: aws.String(confirmed), Protocol: aws.String("sqs"), Endpoint: aws.String(f.queueARN), TopicArn: aws.String(topic)},
	}
	tp := arnOnlyTopics{f}
	subs, bad, missing, err := QueueSubscriptions(t.Context(), tp, f, QueuesFor("s"), []string{topic})
	if err != nil || len(bad) != 0 || len(missing) != 0 {
		t.Fatalf("QueueSubscriptions: %v, unreadable %v, missing %v", err, bad, missing)
	}
	if len(subs) != 1 || subs[0].ARN != confirmed {
		t.Errorf("QueueSubscriptions = %+v; want the confirmed subscription alone", subs)
	}
	done, err := Unsubscribe(t.Context(), tp, subs)
	if err != nil || len(done) != 1 {
		t.Errorf("Unsubscribe = %v, %v; want the confirmed subscription removed", done, err)
	}
}

// arnOnlyAttributes rejects GetSubscriptionAttributes for a
// SubscriptionArn that is not an ARN, as SNS does.
type arnOnlyAttributes struct{ arnOnlyTopics }

func (a arnOnlyAttributes) GetSubscriptionAttributes(ctx context.Context, in *sns.GetSubscriptionAttributesInput, optFns ...func(*sns.Options)) (*sns.GetSubscriptionAttributesOutput, error) {
	if !strings.HasPrefix(aws.ToString(in.SubscriptionArn), "arn:") {
		return nil, &snstypes.InvalidParameterException{Message: aws.String("Invalid parameter: SubscriptionArn")}
	}
	return a.fakeProducers.GetSubscriptionAttributes(ctx, in, optFns...)
}

// TestASubscriptionPendingConfirmationIsDriftWithWhatToDo: provision
// --sns-topic found the queue's subscription "PendingConfirmation" (a
// topic owner in another account subscribed the queue) and failed on
// GetSubscriptionAttributes with SNS's "Invalid parameter". It is now
// drift saying to confirm it, nothing is subscribed again, and the
// statement that lets the topic send is still planned, so that messages
// arrive once it is confirmed. Teardown's DeleteProducers skips it as
// QueueSubscriptions does.
func TestASubscriptionPendingConfirmationIsDriftWithWhatToDo(t *testing.T) {
	f := newFakeProducers()
	topic := "arn:aws:sns:us-east-1:210987654321:jobs"
	f.subs[topic] = []snstypes.Subscription{
		{SubscriptionArn: aws.String("PendingConfirmation"), Protocol: aws.String("sqs"), Endpoint: aws.String(f.queueARN), TopicArn: aws.String(topic)},
	}
	tp := arnOnlyAttributes{arnOnlyTopics{f}}
	p := Producers{Topics: []string{topic}}
	plan, err := CheckProducers(t.Context(), f, tp, f, QueuesFor("s"), p)
	if err != nil {
		t.Fatalf("CheckProducers: %v", err)
	}
	if len(plan.Drift) != 1 || plan.Drift[0].Aspect != AspectConfirmation || !strings.Contains(plan.Drift[0].Fix, "confirm-subscription") || !strings.Contains(plan.Drift[0].Fix, "socks provision") {
		t.Errorf("drift = %+v; want the pending subscription, with how to confirm it", plan.Drift)
	}
	for _, c := range plan.Changes {
		if c.Kind == KindSubscription {
			t.Errorf("changes = %v; want no second subscription beside the pending one", plan.Changes)
		}
	}
	if !slices.Contains(plan.Changes, Change{Kind: KindPolicy, Name: "s-envelopes " + SendStatement(SNSPrincipal, f.queueARN, topic).Sid}) {
		t.Errorf("changes = %v; want the topic's statement in the queue's policy", plan.Changes)
	}
	if done, err := DeleteProducers(t.Context(), f, tp, f, QueuesFor("s"), p); err != nil || len(done) != 0 {
		t.Errorf("DeleteProducers = %v, %v; want the pending subscription left to SNS", done, err)
	}
}
