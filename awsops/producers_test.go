package awsops

import (
	"context"
	"encoding/json"
	"slices"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/eventbridge"
	evtypes "github.com/aws/aws-sdk-go-v2/service/eventbridge/types"
	"github.com/aws/aws-sdk-go-v2/service/sns"
	snstypes "github.com/aws/aws-sdk-go-v2/service/sns/types"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
)

// fakeProducers is EventBridge, SNS and one SQS queue in memory.
type fakeProducers struct {
	QueueAdminAPI
	queueARN, policy string
	rules            map[string]*eventbridge.DescribeRuleOutput
	targets          map[string][]evtypes.Target
	subs             map[string][]snstypes.Subscription // by topic
	raw              map[string]string                  // by subscription ARN
	calls            []string
	// pending: Subscribe leaves the subscription pending confirmation,
	// as SNS does with a topic of another account; unlisted: it is not
	// listed yet (ListSubscriptionsByTopic is read a moment later).
	pending, unlisted bool
}

func newFakeProducers() *fakeProducers {
	return &fakeProducers{
		queueARN: "arn:aws:sqs:us-east-1:123456789012:s-envelopes",
		rules:    map[string]*eventbridge.DescribeRuleOutput{}, targets: map[string][]evtypes.Target{},
		subs: map[string][]snstypes.Subscription{"arn:aws:sns:us-east-1:123456789012:jobs": nil}, raw: map[string]string{},
	}
}

func (f *fakeProducers) GetQueueUrl(_ context.Context, in *sqs.GetQueueUrlInput, _ ...func(*sqs.Options)) (*sqs.GetQueueUrlOutput, error) {
	return &sqs.GetQueueUrlOutput{QueueUrl: aws.String("http://q/" + aws.ToString(in.QueueName))}, nil
}
func (f *fakeProducers) GetQueueAttributes(context.Context, *sqs.GetQueueAttributesInput, ...func(*sqs.Options)) (*sqs.GetQueueAttributesOutput, error) {
	a := map[string]string{"QueueArn": f.queueARN}
	if f.policy != "" {
		a["Policy"] = f.policy
	}
	return &sqs.GetQueueAttributesOutput{Attributes: a}, nil
}
func (f *fakeProducers) SetQueueAttributes(_ context.Context, in *sqs.SetQueueAttributesInput, _ ...func(*sqs.Options)) (*sqs.SetQueueAttributesOutput, error) {
	f.calls = append(f.calls, "SetQueueAttributes")
	f.policy = in.Attributes["Policy"]
	return &sqs.SetQueueAttributesOutput{}, nil
}
func (f *fakeProducers) DescribeRule(_ context.Context, in *eventbridge.DescribeRuleInput, _ ...func(*eventbridge.Options)) (*eventbridge.DescribeRuleOutput, error) {
	r, ok := f.rules[aws.ToString(in.EventBusName)+"/"+aws.ToString(in.Name)]
	if !ok {
		return nil, &evtypes.ResourceNotFoundException{}
	}
	return r, nil
}
func (f *fakeProducers) PutRule(_ context.Context, in *eventbridge.PutRuleInput, _ ...func(*eventbridge.Options)) (*eventbridge.PutRuleOutput, error) {
	f.calls = append(f.calls, "PutRule")
	arn := "arn:aws:events:us-east-1:123456789012:rule/" + aws.ToString(in.Name)
	f.rules[aws.ToString(in.EventBusName)+"/"+aws.ToString(in.Name)] = &eventbridge.DescribeRuleOutput{Arn: aws.String(arn), EventPattern: in.EventPattern, State: in.State}
	return &eventbridge.PutRuleOutput{RuleArn: aws.String(arn)}, nil
}
func (f *fakeProducers) ListTargetsByRule(_ context.Context, in *eventbridge.ListTargetsByRuleInput, _ ...func(*eventbridge.Options)) (*eventbridge.ListTargetsByRuleOutput, error) {
	return &eventbridge.ListTargetsByRuleOutput{Targets: f.targets[aws.ToString(in.Rule)]}, nil
}
func (f *fakeProducers) PutTargets(_ context.Context, in *eventbridge.PutTargetsInput, _ ...func(*eventbridge.Options)) (*eventbridge.PutTargetsOutput, error) {
	f.calls = append(f.calls, "PutTargets")
	f.targets[aws.ToString(in.Rule)] = append(f.targets[aws.ToString(in.Rule)], in.Targets...)
	return &eventbridge.PutTargetsOutput{}, nil
}
func (f *fakeProducers) RemoveTargets(_ context.Context, in *eventbridge.RemoveTargetsInput, _ ...func(*eventbridge.Options)) (*eventbridge.RemoveTargetsOutput, error) {
	f.calls = append(f.calls, "RemoveTargets")
	delete(f.targets, aws.ToString(in.Rule))
	return &eventbridge.RemoveTargetsOutput{}, nil
}
func (f *fakeProducers) DeleteRule(_ context.Context, in *eventbridge.DeleteRuleInput, _ ...func(*eventbridge.Options)) (*eventbridge.DeleteRuleOutput, error) {
	f.calls = append(f.calls, "DeleteRule")
	delete(f.rules, aws.ToString(in.EventBusName)+"/"+aws.ToString(in.Name))
	return &eventbridge.DeleteRuleOutput{}, nil
}
func (f *fakeProducers) Subscribe(_ context.Context, in *sns.SubscribeInput, _ ...func(*sns.Options)) (*sns.SubscribeOutput, error) {
	f.calls = append(f.calls, "Subscribe")
	arn := aws.ToString(in.TopicArn) + ":sub-1"
	listed := arn
	if f.pending {
		listed = "PendingConfirmation"
	}
	if !f.unlisted {
		f.subs[aws.ToString(in.TopicArn)] = append(f.subs[aws.ToString(in.TopicArn)], snstypes.Subscription{SubscriptionArn: aws.String(listed), Protocol: in.Protocol, Endpoint: in.Endpoint})
	}
	f.raw[arn] = in.Attributes["RawMessageDelivery"]
	if f.pending && !in.ReturnSubscriptionArn {
		// SNS's answer for a subscription that waits for confirmation.
		return &sns.SubscribeOutput{SubscriptionArn: aws.String("pending confirmation")}, nil
	}
	return &sns.SubscribeOutput{SubscriptionArn: aws.String(arn)}, nil
}
func (f *fakeProducers) Unsubscribe(_ context.Context, in *sns.UnsubscribeInput, _ ...func(*sns.Options)) (*sns.UnsubscribeOutput, error) {
	f.calls = append(f.calls, "Unsubscribe")
	for t, subs := range f.subs {
		f.subs[t] = slices.DeleteFunc(subs, func(s snstypes.Subscription) bool {
			return aws.ToString(s.SubscriptionArn) == aws.ToString(in.SubscriptionArn)
		})
	}
	return &sns.UnsubscribeOutput{}, nil
}
func (f *fakeProducers) ListSubscriptionsByTopic(_ context.Context, in *sns.ListSubscriptionsByTopicInput, _ ...func(*sns.Options)) (*sns.ListSubscriptionsByTopicOutput, error) {
	subs, ok := f.subs[aws.ToString(in.TopicArn)]
	if !ok {
		return nil, &snstypes.NotFoundException{}
	}
	return &sns.ListSubscriptionsByTopicOutput{Subscriptions: subs}, nil
}
func (f *fakeProducers) ListSubscriptions(context.Context, *sns.ListSubscriptionsInput, ...func(*sns.Options)) (*sns.ListSubscriptionsOutput, error) {
	var all []snstypes.Subscription
	for _, subs := range f.subs {
		all = append(all, subs...)
	}
	return &sns.ListSubscriptionsOutput{Subscriptions: all}, nil
}
func (f *fakeProducers) GetSubscriptionAttributes(_ context.Context, in *sns.GetSubscriptionAttributesInput, _ ...func(*sns.Options)) (*sns.GetSubscriptionAttributesOutput, error) {
	return &sns.GetSubscriptionAttributesOutput{Attributes: map[string]string{"RawMessageDelivery": f.raw[aws.ToString(in.SubscriptionArn)]}}, nil
}

func (f *fakeProducers) SetSubscriptionAttributes(_ context.Context, in *sns.SetSubscriptionAttributesInput, _ ...func(*sns.Options)) (*sns.SetSubscriptionAttributesOutput, error) {
	f.raw[aws.ToString(in.SubscriptionArn)] = aws.ToString(in.AttributeValue)
	return &sns.SetSubscriptionAttributesOutput{}, nil
}

func TestProducersAreCreatedOnceWithTheirPolicy(t *testing.T) {
	ctx := t.Context()
	f := newFakeProducers()
	f.policy = `{"Version":"2012-10-17","Statement":[{"Sid":"Theirs","Effect":"Allow","Principal":"*","Action":"sqs:GetQueueUrl","Resource":"*"}]}`
	q := QueuesFor("s")
	p := Producers{
		Rule:   &EventRule{Name: RuleFor("s"), Sources: []string{"com.example.site"}, DetailTypes: []string{"EntityChanged"}},
		Topics: []string{"arn:aws:sns:us-east-1:123456789012:jobs"},
	}
	plan, err := CheckProducers(ctx, f, f, f, q, p)
	if err != nil || len(plan.Drift) != 0 {
		t.Fatalf("plan %+v, %v", plan, err)
	}
	if err := CreateProducers(ctx, f, f, f, q, p, plan); err != nil {
		t.Fatal(err)
	}
	t.Run("the rule matches the source and detail type and targets the queue", func(t *testing.T) {
		r := f.rules["default/s-envelopes"]
		if r == nil || aws.ToString(r.EventPattern) != `{"detail-type":["EntityChanged"],"source":["com.example.site"]}` || r.State != evtypes.RuleStateEnabled {
			t.Fatalf("rule %+v", r)
		}
		if ts := f.targets["s-envelopes"]; len(ts) != 1 || aws.ToString(ts[0].Arn) != f.queueARN || aws.ToString(ts[0].Id) != RuleTargetID {
			t.Errorf("targets %+v", ts)
		}
	})
	t.Run("the policy keeps others' statements and lets only the rule and the topic send", func(t *testing.T) {
		var pol struct {
			Statement []map[string]any
		}
		if err := json.Unmarshal([]byte(f.policy), &pol); err != nil || len(pol.Statement) != 3 {
			t.Fatalf("policy %s (%v)", f.policy, err)
		}
		want := map[string]string{
			"events.amazonaws.com": "arn:aws:events:us-east-1:123456789012:rule/s-envelopes",
			"sns.amazonaws.com":    "arn:aws:sns:us-east-1:123456789012:jobs",
		}
		for _, st := range pol.Statement[1:] {
			principal := st["Principal"].(map[string]any)["Service"].(string)
			source := st["Condition"].(map[string]any)["ArnEquals"].(map[string]any)["aws:SourceArn"]
			if want[principal] != source || st["Action"] != "sqs:SendMessage" || st["Resource"] != f.queueARN || st["Effect"] != "Allow" {
				t.Errorf("statement %v", st)
			}
			delete(want, principal)
		}
		if len(want) != 0 {
			t.Errorf("no statement for %v", want)
		}
	})
	t.Run("the queue subscribes to the topic without raw delivery", func(t *testing.T) {
		subs := f.subs["arn:aws:sns:us-east-1:123456789012:jobs"]
		if len(subs) != 1 || aws.ToString(subs[0].Endpoint) != f.queueARN || f.raw[aws.ToString(subs[0].SubscriptionArn)] != "false" {
			t.Errorf("subscriptions %+v raw %v", subs, f.raw)
		}
	})
	t.Run("a second run changes nothing", func(t *testing.T) {
		calls := len(f.calls)
		plan, err := CheckProducers(ctx, f, f, f, q, p)
		if err != nil || len(plan.Changes) != 0 || len(plan.Drift) != 0 {
			t.Fatalf("plan %+v, %v", plan, err)
		}
		if err := CreateProducers(ctx, f, f, f, q, p, plan); err != nil || len(f.calls) != calls {
			t.Errorf("calls %v, %v", f.calls[calls:], err)
		}
	})
	t.Run("drift is reported, not papered over", func(t *testing.T) {
		other := p
		other.Rule = &EventRule{Name: RuleFor("s"), Sources: []string{"com.example.other"}, DetailTypes: []string{"EntityChanged"}}
		other.RawDelivery = true
		plan, err := CheckProducers(ctx, f, f, f, q, other)
		if err != nil {
			t.Fatal(err)
		}
		var aspects []string
		for _, d := range plan.Drift {
			aspects = append(aspects, d.Aspect)
		}
		// The same rule with another pattern, the same subscription with
		// another raw delivery setting.
		if !slices.Equal(aspects, []string{AspectPattern, AspectRaw}) || !strings.Contains(plan.Drift[0].Fix, "aws events put-rule") {
			t.Errorf("drift %+v", plan.Drift)
		}
	})
	t.Run("teardown removes the rule and the subscription", func(t *testing.T) {
		done, err := DeleteProducers(ctx, f, f, f, q, p)
		if err != nil || len(done) != 2 || len(f.rules) != 0 || len(f.subs["arn:aws:sns:us-east-1:123456789012:jobs"]) != 0 {
			t.Errorf("deleted %v (%v); rules %v subs %v", done, err, f.rules, f.subs)
		}
		again, err := DeleteProducers(ctx, f, f, f, q, p)
		if err != nil || len(again) != 0 {
			t.Errorf("a second teardown deleted %v, %v", again, err)
		}
	})
}

func TestAMissingTopicIsOneClearError(t *testing.T) {
	f := newFakeProducers()
	_, err := CheckProducers(t.Context(), f, f, f, QueuesFor("s"), Producers{Topics: []string{"arn:aws:sns:us-east-1:123456789012:nope"}})
	if err == nil || !strings.Contains(err.Error(), "SNS topic arn:aws:sns:us-east-1:123456789012:nope does not exist") {
		t.Fatalf("err = %v", err)
	}
}

func TestAStatementWithOurSidThatSaysOtherwiseIsDrift(t *testing.T) {
	f := newFakeProducers()
	topic := "arn:aws:sns:us-east-1:123456789012:jobs"
	st := SendStatement(SNSPrincipal, f.queueARN, topic)
	st.Principal = map[string]string{"AWS": "*"}
	b, _ := json.Marshal(map[string]any{"Version": "2012-10-17", "Statement": []any{st}})
	f.policy = string(b)
	plan, err := CheckProducers(t.Context(), f, f, f, QueuesFor("s"), Producers{Topics: []string{topic}})
	if err != nil || len(plan.Drift) != 1 || plan.Drift[0].Aspect != AspectStatement {
		t.Fatalf("plan %+v, %v", plan, err)
	}
}

// TestRepairProducersPutsDriftRight: deploy puts right what provision only
// reports — another pattern, raw delivery and a statement of socks's Sid
// that says otherwise — keeping the statements that are not socks's.
func TestRepairProducersPutsDriftRight(t *testing.T) {
	ctx := t.Context()
	f := newFakeProducers()
	q := QueuesFor("s")
	topic := "arn:aws:sns:us-east-1:123456789012:jobs"
	p := Producers{Rule: &EventRule{Name: RuleFor("s"), Sources: []string{"a"}, DetailTypes: []string{"b"}}, Topics: []string{topic}}
	f.policy = `{"Version":"2012-10-17","Statement":[{"Sid":"Theirs","Effect":"Allow","Principal":"*","Action":"sqs:GetQueueUrl","Resource":"*"}]}`
	plan, err := CheckProducers(ctx, f, f, f, q, p)
	if err != nil {
		t.Fatal(err)
	}
	if err := CreateProducers(ctx, f, f, f, q, p, plan); err != nil {
		t.Fatal(err)
	}
	// Hand edits: another pattern, raw delivery on, the SNS statement
	// opened to everyone.
	edited := p
	edited.Rule = &EventRule{Name: RuleFor("s"), Sources: []string{"other"}, DetailTypes: []string{"b"}}
	edited.RawDelivery = true
	plan, err = CheckProducers(ctx, f, f, f, q, edited)
	if err != nil {
		t.Fatal(err)
	}
	if err := RepairProducers(ctx, f, f, f, q, edited, plan); err != nil {
		t.Fatal(err)
	}
	var pol struct{ Statement []json.RawMessage }
	if err := json.Unmarshal([]byte(f.policy), &pol); err != nil {
		t.Fatal(err)
	}
	for i, raw := range pol.Statement {
		var s QueuePolicyStatement
		if json.Unmarshal(raw, &s) == nil && s.Principal["Service"] == SNSPrincipal {
			s.Principal = map[string]string{"AWS": "*"}
			pol.Statement[i], _ = json.Marshal(s)
		}
	}
	b, _ := json.Marshal(map[string]any{"Version": "2012-10-17", "Statement": pol.Statement})
	f.policy = string(b)

	plan, err = CheckProducers(ctx, f, f, f, q, p)
	if err != nil {
		t.Fatal(err)
	}
	var aspects []string
	for _, d := range plan.Drift {
		aspects = append(aspects, d.Aspect)
	}
	slices.Sort(aspects)
	if !slices.Equal(aspects, []string{AspectPattern, AspectRaw, AspectStatement}) {
		t.Fatalf("drift %v; want pattern, raw delivery and statement", plan.Drift)
	}
	if err := RepairProducers(ctx, f, f, f, q, p, plan); err != nil {
		t.Fatal(err)
	}
	if err := CreateProducers(ctx, f, f, f, q, p, plan); err != nil {
		t.Fatal(err)
	}
	after, err := CheckProducers(ctx, f, f, f, q, p)
	if err != nil || len(after.Drift) != 0 || len(after.Changes) != 0 {
		t.Fatalf("after repair: %+v, %v", after, err)
	}
	if !strings.Contains(f.policy, `"Sid":"Theirs"`) || strings.Count(f.policy, `"Sid":"SocksSNS`) != 1 {
		t.Errorf("policy after repair: %s", f.policy)
	}
}

// EventBridge rule names are 1 to 64 characters; a stack whose queues fit
// in SQS's 80 can still give a rule name past it, which AWS would refuse
// only after provision made the tables and queues.
func TestARuleNameBeyondEventBridgesLimitIsRefusedUpFront(t *testing.T) {
	rule := func(stack string) EventRule {
		return EventRule{Name: RuleFor(stack), Sources: []string{"s"}, DetailTypes: []string{"d"}}
	}
	fits := strings.Repeat("s", 64-len(RuleFor("")))
	if err := rule(fits).Validate(); err != nil {
		t.Errorf("a %d-character rule name: %v", len(RuleFor(fits)), err)
	}
	long := fits + "x"
	if err := QueuesFor(long).Validate(); err != nil {
		t.Fatalf("the queues of the stack should fit: %v", err)
	}
	err := rule(long).Validate()
	if err == nil || !strings.Contains(err.Error(), "64") {
		t.Errorf("a %d-character rule name: %v; want refused with the limit", len(RuleFor(long)), err)
	}
	if err := rule("a/b").Validate(); err == nil {
		t.Errorf("a rule name with '/' was accepted")
	}
}

// TestASubscriptionLeftPendingIsToldBySubscribesAnswer: CreateProducers
// told a subscription it made that SNS holds pending confirmation by
// listing the topic's subscriptions right after Subscribe, and one not
// listed yet was taken for confirmed: provision exited 0 and deploy said
// the stack was deployed while SNS delivered nothing. SNS's answer to
// Subscribe says it ("pending confirmation"), whatever the listing shows
// yet: the subscription is in plan.Unconfirmed.
func TestASubscriptionLeftPendingIsToldBySubscribesAnswer(t *testing.T) {
	ctx := t.Context()
	topic := "arn:aws:sns:us-east-1:123456789012:jobs"
	for _, unlisted := range []bool{false, true} {
		f := newFakeProducers()
		f.pending, f.unlisted = true, unlisted
		q := QueuesFor("s")
		p := Producers{Topics: []string{topic}}
		plan, err := CheckProducers(ctx, f, f, f, q, p)
		if err != nil {
			t.Fatal(err)
		}
		if err := CreateProducers(ctx, f, f, f, q, p, plan); err != nil {
			t.Fatal(err)
		}
		if len(plan.Unconfirmed) != 1 || plan.Unconfirmed[0].Name != topic+" -> "+f.queueARN || plan.Unconfirmed[0].Aspect != AspectConfirmation {
			t.Errorf("not yet listed %v: unconfirmed = %+v; want the subscription to %s, pending confirmation", unlisted, plan.Unconfirmed, topic)
		}
	}
}
