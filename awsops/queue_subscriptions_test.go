package awsops

import (
	"context"
	"slices"
	"strconv"
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

// pagedSubscriptions answers ListSubscriptions with pages, one a call,
// each but the last with a NextToken naming the next.
type pagedSubscriptions struct {
	TopicsAPI
	pages [][]snstypes.Subscription
	calls int
}

func (p *pagedSubscriptions) ListSubscriptions(_ context.Context, in *sns.ListSubscriptionsInput, _ ...func(*sns.Options)) (*sns.ListSubscriptionsOutput, error) {
	p.calls++
	i := 0
	if t := aws.ToString(in.NextToken); t != "" {
		i, _ = strconv.Atoi(strings.TrimPrefix(t, "p"))
	}
	out := &sns.ListSubscriptionsOutput{Subscriptions: p.pages[i]}
	if i+1 < len(p.pages) {
		out.NextToken = aws.String("p" + strconv.Itoa(i+1))
	}
	return out, nil
}

// TestTheSearchForAGoneQueuesSubscriptionsReportsItsPages: teardown
// looks for the subscriptions of a queue that is gone among every SNS
// subscription of the account, page by page, which on a large account
// takes minutes; it showed nothing meanwhile, as if it hung. The search
// now reports, after each page, the pages and subscriptions read so far,
// so that teardown can show them.
func TestTheSearchForAGoneQueuesSubscriptionsReportsItsPages(t *testing.T) {
	const queue = "arn:aws:sqs:us-east-1:123456789012:gone"
	sub := func(i int, endpoint string) snstypes.Subscription {
		topic := "arn:aws:sns:us-east-1:123456789012:t" + strconv.Itoa(i)
		return snstypes.Subscription{SubscriptionArn: aws.String(topic + ":sub"), TopicArn: aws.String(topic), Protocol: aws.String("sqs"), Endpoint: aws.String(endpoint)}
	}
	other := "arn:aws:sqs:us-east-1:123456789012:other"
	tp := &pagedSubscriptions{pages: [][]snstypes.Subscription{
		{sub(1, other), sub(2, other), sub(3, other)},
		{sub(4, queue), sub(5, other)},
		{sub(6, other), sub(7, other), sub(8, other)},
	}}
	type read struct{ pages, subscriptions int }
	var got []read
	subs, _, _, err := GoneQueueSubscriptions(t.Context(), tp, queue, nil, func(pages, subscriptions int) {
		got = append(got, read{pages, subscriptions})
	})
	if err != nil || len(subs) != 1 || subs[0].ARN != "arn:aws:sns:us-east-1:123456789012:t4:sub" {
		t.Fatalf("GoneQueueSubscriptions = %v, %v; want the subscription of page 2", subs, err)
	}
	if want := []read{{1, 3}, {2, 5}, {3, 8}}; !slices.Equal(got, want) {
		t.Errorf("progress %v; want %v: after each page, the pages and subscriptions read so far", got, want)
	}
	// Without a callback, the search is the same.
	tp.calls = 0
	if subs, _, _, err := GoneQueueSubscriptions(t.Context(), tp, queue, nil, nil); err != nil || len(subs) != 1 || tp.calls != 3 {
		t.Errorf("GoneQueueSubscriptions without progress = %v, %v after %d pages; want the one subscription after 3", subs, err, tp.calls)
	}
}
