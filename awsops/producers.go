//go:build !socks.lambdaonly

package awsops

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/eventbridge"
	evtypes "github.com/aws/aws-sdk-go-v2/service/eventbridge/types"
	"github.com/aws/aws-sdk-go-v2/service/sns"
	snstypes "github.com/aws/aws-sdk-go-v2/service/sns/types"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/socks-dev/socks/pubsub"
)

// The producers of the envelopes queue: an EventBridge rule targeting it,
// and SNS topics it subscribes to, each allowed to send to it by a
// statement of the queue's policy that names the rule or topic as
// aws:SourceArn.

// Kinds of producer resources, for changes and drift.
const (
	KindRule         = "eventbridge rule"
	KindRuleTarget   = "rule target"
	KindSubscription = "sns subscription"
	KindPolicy       = "queue policy statement"
)

// Aspects of producer drift.
const (
	AspectPattern   = "event pattern"
	AspectState     = "state"
	AspectStatement = "statement"
	AspectRaw       = "raw message delivery"
	// AspectConfirmation: the queue's subscription to a topic waits for
	// confirmation (SNS lists it as "PendingConfirmation").
	AspectConfirmation = "confirmation"
)

// DefaultBus is EventBridge's default event bus.
const DefaultBus = "default"

// RuleTargetID is the ID of the queue among the rule's targets.
const RuleTargetID = "socks-envelopes"

// EventRule is the EventBridge rule that sends matching events to the
// envelopes queue.
type EventRule struct {
	// Name is the rule's name (RuleFor(stack)).
	Name string `json:"name"`
	// Bus is the event bus ("" or DefaultBus: the default bus).
	Bus string `json:"bus"`
	// Sources and DetailTypes are the event pattern: an event matches
	// when its source is one of Sources and its detail-type one of
	// DetailTypes.
	Sources     []string `json:"sources"`
	DetailTypes []string `json:"detailTypes"`
}

// maxRuleName is EventBridge's longest rule name.
const maxRuleName = 64

// RuleFor names the rule of stack: STACK-envelopes.
func RuleFor(stack string) string { return stack + "-envelopes" }

func (r EventRule) bus() string {
	if r.Bus == "" {
		return DefaultBus
	}
	return r.Bus
}

// Pattern is the rule's event pattern as JSON.
func (r EventRule) Pattern() string {
	p := map[string][]string{"source": sorted(r.Sources), "detail-type": sorted(r.DetailTypes)}
	b, _ := json.Marshal(p)
	return string(b)
}

// Validate checks the rule's settings.
func (r EventRule) Validate() error {
	if r.Name == "" {
		return errors.New("the EventBridge rule has no name")
	}
	if len(r.Name) > maxRuleName {
		return fmt.Errorf("the EventBridge rule name %s is %d characters long; EventBridge allows %d: choose a shorter --stack", r.Name, len(r.Name), maxRuleName)
	}
	for _, c := range r.Name {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '-' || c == '_') {
			return fmt.Errorf("the EventBridge rule name %q may only hold letters, digits, '.', '-' and '_': check --stack", r.Name)
		}
	}
	if len(r.Sources) == 0 || len(r.DetailTypes) == 0 {
		return errors.New("the EventBridge rule needs at least one source and one detail type")
	}
	for _, s := range append(slices.Clone(r.Sources), r.DetailTypes...) {
		if strings.TrimSpace(s) == "" {
			return errors.New("an EventBridge source or detail type is empty")
		}
	}
	return nil
}

func sorted(s []string) []string {
	out := slices.Clone(s)
	slices.Sort(out)
	return slices.Compact(out)
}

// Producers are what provision sets up to deliver to the envelopes queue.
type Producers struct {
	// Rule, when set, is the EventBridge rule targeting the queue.
	Rule *EventRule `json:"rule,omitempty"`
	// Topics are SNS topic ARNs the queue subscribes to.
	Topics []string `json:"topics,omitempty"`
	// RawDelivery turns SNS raw message delivery on for the
	// subscriptions (the queue then gets the bare message).
	RawDelivery bool `json:"rawDelivery"`
}

// Empty reports whether no producer is asked for.
func (p Producers) Empty() bool { return p.Rule == nil && len(p.Topics) == 0 }

// EventsAPI is the part of the EventBridge client the producers use.
type EventsAPI interface {
	DescribeRule(ctx context.Context, params *eventbridge.DescribeRuleInput, optFns ...func(*eventbridge.Options)) (*eventbridge.DescribeRuleOutput, error)
	PutRule(ctx context.Context, params *eventbridge.PutRuleInput, optFns ...func(*eventbridge.Options)) (*eventbridge.PutRuleOutput, error)
	ListTargetsByRule(ctx context.Context, params *eventbridge.ListTargetsByRuleInput, optFns ...func(*eventbridge.Options)) (*eventbridge.ListTargetsByRuleOutput, error)
	PutTargets(ctx context.Context, params *eventbridge.PutTargetsInput, optFns ...func(*eventbridge.Options)) (*eventbridge.PutTargetsOutput, error)
	RemoveTargets(ctx context.Context, params *eventbridge.RemoveTargetsInput, optFns ...func(*eventbridge.Options)) (*eventbridge.RemoveTargetsOutput, error)
	DeleteRule(ctx context.Context, params *eventbridge.DeleteRuleInput, optFns ...func(*eventbridge.Options)) (*eventbridge.DeleteRuleOutput, error)
}

// TopicsAPI is the part of the SNS client the producers use.
type TopicsAPI interface {
	Subscribe(ctx context.Context, params *sns.SubscribeInput, optFns ...func(*sns.Options)) (*sns.SubscribeOutput, error)
	Unsubscribe(ctx context.Context, params *sns.UnsubscribeInput, optFns ...func(*sns.Options)) (*sns.UnsubscribeOutput, error)
	ListSubscriptionsByTopic(ctx context.Context, params *sns.ListSubscriptionsByTopicInput, optFns ...func(*sns.Options)) (*sns.ListSubscriptionsByTopicOutput, error)
	ListSubscriptions(ctx context.Context, params *sns.ListSubscriptionsInput, optFns ...func(*sns.Options)) (*sns.ListSubscriptionsOutput, error)
	GetSubscriptionAttributes(ctx context.Context, params *sns.GetSubscriptionAttributesInput, optFns ...func(*sns.Options)) (*sns.GetSubscriptionAttributesOutput, error)
	SetSubscriptionAttributes(ctx context.Context, params *sns.SetSubscriptionAttributesInput, optFns ...func(*sns.Options)) (*sns.SetSubscriptionAttributesOutput, error)
}

var (
	_ EventsAPI = (*eventbridge.Client)(nil)
	_ TopicsAPI = (*sns.Client)(nil)
)

// NewEventBridge returns an EventBridge client for cfg, sending every
// request to endpointURL when it is not empty. Each attempt is bounded
// (see DefaultAttemptTimeout and WithAttemptTimeout).
func NewEventBridge(cfg aws.Config, endpointURL string, opts ...ClientOption) *eventbridge.Client {
	c := resolveClientOptions(opts)
	return eventbridge.NewFromConfig(cfg, func(o *eventbridge.Options) {
		o.APIOptions = append(slices.Clip(o.APIOptions), addAttemptTimeout(c.attemptTimeout, 0))
		if endpointURL != "" {
			o.BaseEndpoint = aws.String(endpointURL)
		}
	})
}

// NewSNS returns an SNS client for cfg, sending every request to
// endpointURL when it is not empty. Each attempt is bounded (see
// DefaultAttemptTimeout and WithAttemptTimeout).
func NewSNS(cfg aws.Config, endpointURL string, opts ...ClientOption) *sns.Client {
	c := resolveClientOptions(opts)
	return sns.NewFromConfig(cfg, func(o *sns.Options) {
		o.APIOptions = append(slices.Clip(o.APIOptions), addAttemptTimeout(c.attemptTimeout, 0))
		if endpointURL != "" {
			o.BaseEndpoint = aws.String(endpointURL)
		}
	})
}

// QueuePolicyStatement is one statement of an SQS queue policy.
type QueuePolicyStatement struct {
	Sid       string                       `json:"Sid"`
	Effect    string                       `json:"Effect"`
	Principal map[string]string            `json:"Principal"`
	Action    string                       `json:"Action"`
	Resource  string                       `json:"Resource"`
	Condition map[string]map[string]string `json:"Condition"`
}

// queuePolicy is an SQS queue policy; statements other than socks's are kept
// as they are.
type queuePolicy struct {
	Version   string            `json:"Version"`
	ID        string            `json:"Id,omitempty"`
	Statement []json.RawMessage `json:"Statement"`
}

// parseQueuePolicy reads a queue's policy as SQS returns it (see
// policyStatements). Its error says what is wrong, after "its policy".
func parseQueuePolicy(raw string) (queuePolicy, error) {
	var head struct {
		Version string `json:"Version"`
		ID      string `json:"Id"`
	}
	st, err := policyStatements(raw, &head)
	if err != nil {
		return queuePolicy{}, err
	}
	return queuePolicy{Version: head.Version, ID: head.ID, Statement: st}, nil
}

// policyKeys are the elements of a policy document socks reads. IAM's
// names are case-sensitive, where encoding/json would read "StAtement"
// as Statement: a policy with such a key is refused (pubsub.Keys).
var policyKeys = pubsub.KeysOf[struct {
	Version   string          `json:"Version"`
	ID        string          `json:"Id"`
	Statement json.RawMessage `json:"Statement"`
}]()

// policyStatements reads a policy document into doc (its other elements;
// a struct without a Statement field) and returns its statements: Statement is a list of statements or, as
// IAM's grammar allows, one statement. Its error says what is wrong, in
// words that follow "its policy" or "the policy".
func policyStatements(raw string, doc any) ([]json.RawMessage, error) {
	if reason := pubsub.CheckJSONObject([]byte(raw), policyKeys); reason != "" {
		return nil, errors.New(reason)
	}
	if err := json.Unmarshal([]byte(raw), doc); err != nil {
		return nil, errors.New(pubsub.DescribeJSONError(err))
	}
	var statements struct {
		Statement json.RawMessage `json:"Statement"`
	}
	_ = json.Unmarshal([]byte(raw), &statements) // it decoded as an object above
	var out []json.RawMessage
	switch st := bytes.TrimSpace(statements.Statement); {
	case len(st) == 0 || string(st) == "null":
	case st[0] == '{':
		out = []json.RawMessage{st}
	case st[0] == '[':
		if err := json.Unmarshal(st, &out); err != nil {
			return nil, errors.New(pubsub.DescribeJSONError(err))
		}
	default:
		return nil, errors.New("has a Statement that is neither a statement nor a list of them")
	}
	return out, nil
}

// SendStatement is the statement that lets service (events.amazonaws.com,
// sns.amazonaws.com) send to the queue, only on behalf of sourceARN.
func SendStatement(service, queueARN, sourceARN string) QueuePolicyStatement {
	sum := sha256.Sum256([]byte(sourceARN))
	name := "Events"
	if strings.HasPrefix(service, "sns.") {
		name = "SNS"
	}
	return QueuePolicyStatement{
		Sid:       "Socks" + name + hex.EncodeToString(sum[:6]),
		Effect:    "Allow",
		Principal: map[string]string{"Service": service},
		Action:    "sqs:SendMessage",
		Resource:  queueARN,
		Condition: map[string]map[string]string{"ArnEquals": {"aws:SourceArn": sourceARN}},
	}
}

// Principals of the producers.
const (
	EventsPrincipal = "events.amazonaws.com"
	SNSPrincipal    = "sns.amazonaws.com"
)

// ProducerPlan is what CheckProducers found: what to create, and what
// differs from what socks sets up.
type ProducerPlan struct {
	Changes []Change
	Drift   []Drift
	// Unconfirmed are the subscriptions CreateProducers made that SNS
	// holds pending confirmation (AspectConfirmation drift, with how to
	// confirm them): the next check finds them as Drift.
	Unconfirmed []Drift
	// set by CheckProducers for CreateProducers
	queueURL, queueARN, ruleARN string
	policy                      queuePolicy
	statements                  []QueuePolicyStatement
	// subs are the existing subscriptions by topic ARN.
	subs map[string]string
}

// CheckProducers compares the producers with what exists, reading only.
// The queue must exist (provision creates it first).
func CheckProducers(ctx context.Context, ev EventsAPI, tp TopicsAPI, sq QueueAdminAPI, q Queues, p Producers) (*ProducerPlan, error) {
	plan := &ProducerPlan{}
	u, err := sq.GetQueueUrl(ctx, &sqs.GetQueueUrlInput{QueueName: aws.String(q.Main)})
	if err != nil {
		return nil, Explain(wrapQueue("GetQueueUrl", q.Main, err))
	}
	plan.queueURL = aws.ToString(u.QueueUrl)
	attrs, err := sq.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{
		QueueUrl:       u.QueueUrl,
		AttributeNames: []sqstypes.QueueAttributeName{sqstypes.QueueAttributeNameQueueArn, sqstypes.QueueAttributeNamePolicy},
	})
	if err != nil {
		return nil, Explain(wrapQueue("GetQueueAttributes", q.Main, err))
	}
	plan.queueARN = attrs.Attributes[string(sqstypes.QueueAttributeNameQueueArn)]
	if raw := attrs.Attributes[string(sqstypes.QueueAttributeNamePolicy)]; raw != "" {
		if plan.policy, err = parseQueuePolicy(raw); err != nil {
			return nil, fmt.Errorf("queue %s: its policy %v", q.Main, err)
		}
	}

	if r := p.Rule; r != nil {
		if err := r.Validate(); err != nil {
			return nil, err
		}
		if err := checkRule(ctx, ev, *r, plan); err != nil {
			return nil, err
		}
	}
	for _, topic := range p.Topics {
		if err := checkTopic(ctx, tp, topic, p.RawDelivery, plan); err != nil {
			return nil, err
		}
	}
	for _, st := range plan.statements {
		checkStatement(q.Main, st, plan)
	}
	return plan, nil
}

func ruleLabel(r EventRule) string { return r.bus() + "/" + r.Name }

// Change is the rule as a change, the way DeleteProducers reports it.
func (r EventRule) Change() Change { return Change{Kind: KindRule, Name: ruleLabel(r)} }

func checkRule(ctx context.Context, ev EventsAPI, r EventRule, plan *ProducerPlan) error {
	out, err := ev.DescribeRule(ctx, &eventbridge.DescribeRuleInput{Name: aws.String(r.Name), EventBusName: aws.String(r.bus())})
	var missing *evtypes.ResourceNotFoundException
	switch {
	case errors.As(err, &missing):
		plan.Changes = append(plan.Changes, Change{Kind: KindRule, Name: ruleLabel(r)}, Change{Kind: KindRuleTarget, Name: ruleLabel(r) + " -> " + plan.queueARN})
		// The ARN is known once the rule exists; the statement is
		// planned with it then.
		plan.Changes = append(plan.Changes, Change{Kind: KindPolicy, Name: "EventBridge rule " + ruleLabel(r)})
		return nil
	case err != nil:
		return fmt.Errorf("reading EventBridge rule %s: %w", ruleLabel(r), err)
	}
	plan.ruleARN = aws.ToString(out.Arn)
	if !samePattern(aws.ToString(out.EventPattern), r.Pattern()) {
		plan.Drift = append(plan.Drift, Drift{Kind: KindRule, Name: ruleLabel(r), Aspect: AspectPattern,
			Is: aws.ToString(out.EventPattern), Want: r.Pattern(),
			Fix: fmt.Sprintf("aws events put-rule --name %s --event-bus-name %s --event-pattern '%s', or provision with the rule's --source and --detail-type", r.Name, r.bus(), r.Pattern())})
	}
	if out.State != "" && out.State != evtypes.RuleStateEnabled {
		plan.Drift = append(plan.Drift, Drift{Kind: KindRule, Name: ruleLabel(r), Aspect: AspectState, Is: string(out.State), Want: string(evtypes.RuleStateEnabled),
			Fix: fmt.Sprintf("aws events enable-rule --name %s --event-bus-name %s", r.Name, r.bus())})
	}
	targets, err := ruleTargets(ctx, ev, r)
	if err != nil {
		return err
	}
	found := false
	for _, t := range targets {
		if aws.ToString(t.Arn) == plan.queueARN {
			found = true
		}
	}
	if !found {
		plan.Changes = append(plan.Changes, Change{Kind: KindRuleTarget, Name: ruleLabel(r) + " -> " + plan.queueARN})
	}
	plan.statements = append(plan.statements, SendStatement(EventsPrincipal, plan.queueARN, plan.ruleARN))
	return nil
}

// ruleTargets lists the targets of rule r, every page of them. An error
// of the API is wrapped (%w), so that a caller can tell the rule missing.
func ruleTargets(ctx context.Context, ev EventsAPI, r EventRule) ([]evtypes.Target, error) {
	in := &eventbridge.ListTargetsByRuleInput{Rule: aws.String(r.Name), EventBusName: aws.String(r.bus())}
	pages := pageTokens{what: "EventBridge ListTargetsByRule"}
	var targets []evtypes.Target
	for {
		out, err := ev.ListTargetsByRule(ctx, in)
		if err != nil {
			return nil, fmt.Errorf("listing the targets of EventBridge rule %s: %w", ruleLabel(r), Explain(err))
		}
		targets = append(targets, out.Targets...)
		more, err := pages.next(out.NextToken)
		if err != nil {
			return nil, fmt.Errorf("listing the targets of EventBridge rule %s: %w; list them with `aws events list-targets-by-rule --rule %s --event-bus-name %s`", ruleLabel(r), err, r.Name, r.bus())
		}
		if !more {
			return targets, nil
		}
		in.NextToken = out.NextToken
	}
}

func samePattern(is, want string) bool {
	var a, b map[string][]string
	if json.Unmarshal([]byte(is), &a) != nil || json.Unmarshal([]byte(want), &b) != nil || len(a) != len(b) {
		return false
	}
	for k, v := range b {
		if !slices.Equal(sorted(a[k]), v) {
			return false
		}
	}
	return true
}

func checkTopic(ctx context.Context, tp TopicsAPI, topic string, raw bool, plan *ProducerPlan) error {
	sub, pending, err := findSubscription(ctx, tp, topic, plan.queueARN)
	if err != nil {
		return err
	}
	plan.statements = append(plan.statements, SendStatement(SNSPrincipal, plan.queueARN, topic))
	if sub == "" && pending {
		// Subscribing again would not confirm it: the endpoint's owner
		// must, with the token SNS sent to the queue.
		plan.Drift = append(plan.Drift, pendingDrift(topic, plan.queueARN))
		return nil
	}
	if sub == "" {
		plan.Changes = append(plan.Changes, Change{Kind: KindSubscription, Name: topic + " -> " + plan.queueARN})
		return nil
	}
	if plan.subs == nil {
		plan.subs = map[string]string{}
	}
	plan.subs[topic] = sub
	attrs, err := tp.GetSubscriptionAttributes(ctx, &sns.GetSubscriptionAttributesInput{SubscriptionArn: aws.String(sub)})
	if err != nil {
		return fmt.Errorf("reading SNS subscription %s: %w", sub, err)
	}
	is := attrs.Attributes["RawMessageDelivery"] == "true"
	if is != raw {
		plan.Drift = append(plan.Drift, Drift{Kind: KindSubscription, Name: topic + " -> " + plan.queueARN, Aspect: AspectRaw,
			Is: fmt.Sprint(is), Want: fmt.Sprint(raw),
			Fix: fmt.Sprintf("aws sns set-subscription-attributes --subscription-arn %s --attribute-name RawMessageDelivery --attribute-value %t (the broker takes both; provision with --sns-raw=%t to keep it)", sub, raw, is)})
	}
	return nil
}

// pendingDrift is the drift of the queue's subscription to topic that
// waits for confirmation (SNS lists it as "PendingConfirmation"), with
// how to confirm it.
func pendingDrift(topic, queueARN string) Drift {
	return Drift{Kind: KindSubscription, Name: topic + " -> " + queueARN, Aspect: AspectConfirmation,
		Is: "pending confirmation", Want: "confirmed",
		Fix: fmt.Sprintf("the topic is another account's, and SNS delivers nothing until the queue's owner confirms the subscription: "+
			"the broker dead-letters the SubscriptionConfirmation message SNS sent to the queue with the command that does, Token included "+
			"(`socks dlq list` finds it, `socks dlq show ID` shows it whole): `aws sns confirm-subscription --topic-arn %s --token TOKEN`; then run socks provision (or socks deploy) again", topic)}
}

// findSubscription returns the ARN of the queue's confirmed subscription
// to topic ("" when there is none), and whether one waits for
// confirmation (confirmedSubscription).
func findSubscription(ctx context.Context, tp TopicsAPI, topic, queueARN string) (arn string, pending bool, err error) {
	in := &sns.ListSubscriptionsByTopicInput{TopicArn: aws.String(topic)}
	pages := pageTokens{what: "SNS ListSubscriptionsByTopic"}
	for {
		out, err := tp.ListSubscriptionsByTopic(ctx, in)
		var missing *snstypes.NotFoundException
		if errors.As(err, &missing) {
			return "", false, fmt.Errorf("SNS topic %s does not exist: create it, or check the ARN given to --sns-topic", topic)
		}
		if err != nil {
			return "", false, fmt.Errorf("listing the subscriptions of SNS topic %s: %w", topic, err)
		}
		for _, s := range out.Subscriptions {
			if aws.ToString(s.Protocol) != "sqs" || aws.ToString(s.Endpoint) != queueARN {
				continue
			}
			if !confirmedSubscription(s) {
				pending = true
				continue
			}
			return aws.ToString(s.SubscriptionArn), false, nil
		}
		more, err := pages.next(out.NextToken)
		if err != nil {
			return "", false, fmt.Errorf("listing the subscriptions of SNS topic %s: %w; list them with `aws sns list-subscriptions-by-topic --topic-arn %s`", topic, err, topic)
		}
		if !more {
			return "", pending, nil
		}
		in.NextToken = out.NextToken
	}
}

// confirmedSubscription reports whether SNS lists s with an ARN. One not
// confirmed yet is listed as "PendingConfirmation" (and one being deleted
// as "Deleted"), with no ARN that Unsubscribe or GetSubscriptionAttributes
// takes: SNS deletes it unconfirmed, and no one confirms it once the queue
// is gone.
func confirmedSubscription(s snstypes.Subscription) bool {
	return strings.HasPrefix(aws.ToString(s.SubscriptionArn), "arn:")
}

// checkStatement plans the statement st: missing, or drift when a
// statement with its Sid says something else.
func checkStatement(queue string, st QueuePolicyStatement, plan *ProducerPlan) {
	want, _ := json.Marshal(st)
	for _, raw := range plan.policy.Statement {
		var have QueuePolicyStatement
		if json.Unmarshal(raw, &have) != nil || have.Sid != st.Sid {
			continue
		}
		got, _ := json.Marshal(have)
		if string(got) != string(want) {
			plan.Drift = append(plan.Drift, Drift{Kind: KindPolicy, Name: queue + " " + st.Sid, Aspect: AspectStatement,
				Is: string(raw), Want: string(want),
				Fix: "remove statement " + st.Sid + " from the queue's policy (aws sqs set-queue-attributes) and provision again"})
		}
		return
	}
	plan.Changes = append(plan.Changes, Change{Kind: KindPolicy, Name: queue + " " + st.Sid})
}

// CreateProducers creates what plan lists as missing: the rule and its
// target, the subscriptions, and the queue policy statements, leaving
// other statements of the policy as they are. A subscription it makes
// that SNS answers is pending confirmation is added to plan.Unconfirmed.
func CreateProducers(ctx context.Context, ev EventsAPI, tp TopicsAPI, sq QueueAdminAPI, q Queues, p Producers, plan *ProducerPlan) error {
	if len(plan.Changes) == 0 {
		return nil
	}
	if r := p.Rule; r != nil {
		if plan.ruleARN == "" {
			out, err := ev.PutRule(ctx, &eventbridge.PutRuleInput{
				Name: aws.String(r.Name), EventBusName: aws.String(r.bus()), EventPattern: aws.String(r.Pattern()),
				State: evtypes.RuleStateEnabled, Description: aws.String(ruleDescription(q)),
			})
			if err != nil {
				return fmt.Errorf("creating EventBridge rule %s: %w", ruleLabel(*r), err)
			}
			plan.ruleARN = aws.ToString(out.RuleArn)
			plan.statements = append(plan.statements, SendStatement(EventsPrincipal, plan.queueARN, plan.ruleARN))
			checkStatement(q.Main, plan.statements[len(plan.statements)-1], plan)
		}
		if slices.ContainsFunc(plan.Changes, func(c Change) bool { return c.Kind == KindRuleTarget }) {
			out, err := ev.PutTargets(ctx, &eventbridge.PutTargetsInput{
				Rule: aws.String(r.Name), EventBusName: aws.String(r.bus()),
				Targets: []evtypes.Target{{Id: aws.String(RuleTargetID), Arn: aws.String(plan.queueARN)}},
			})
			if err == nil && out.FailedEntryCount > 0 {
				err = fmt.Errorf("%s", aws.ToString(out.FailedEntries[0].ErrorMessage))
			}
			if err != nil {
				return fmt.Errorf("adding queue %s as the target of EventBridge rule %s: %w", q.Main, ruleLabel(*r), err)
			}
		}
	}
	// The policy first, so that no message SNS sends is refused.
	if err := putStatements(ctx, sq, q, plan); err != nil {
		return err
	}
	for _, topic := range p.Topics {
		if !slices.Contains(plan.Changes, Change{Kind: KindSubscription, Name: topic + " -> " + plan.queueARN}) {
			continue
		}
		// Without ReturnSubscriptionArn, SNS answers "pending
		// confirmation" in place of the ARN of a subscription it holds
		// pending (a topic of another account), delivering nothing: the
		// answer says so, where a listing of the topic's subscriptions
		// read right after may not list it yet.
		out, err := tp.Subscribe(ctx, &sns.SubscribeInput{
			TopicArn: aws.String(topic), Protocol: aws.String("sqs"), Endpoint: aws.String(plan.queueARN),
			Attributes: map[string]string{"RawMessageDelivery": fmt.Sprint(p.RawDelivery)},
		})
		if err != nil {
			return fmt.Errorf("subscribing queue %s to SNS topic %s: %w", q.Main, topic, err)
		}
		if strings.EqualFold(aws.ToString(out.SubscriptionArn), "pending confirmation") {
			plan.Unconfirmed = append(plan.Unconfirmed, pendingDrift(topic, plan.queueARN))
		}
	}
	return nil
}

func putStatements(ctx context.Context, sq QueueAdminAPI, q Queues, plan *ProducerPlan) error {
	pol := plan.policy
	if pol.Version == "" {
		pol.Version = "2012-10-17"
	}
	added := false
	for _, st := range plan.statements {
		if slices.Contains(plan.Changes, Change{Kind: KindPolicy, Name: q.Main + " " + st.Sid}) {
			b, _ := json.Marshal(st)
			pol.Statement = append(pol.Statement, b)
			added = true
		}
	}
	if !added {
		return nil
	}
	b, err := json.Marshal(pol)
	if err != nil {
		return err
	}
	_, err = sq.SetQueueAttributes(ctx, &sqs.SetQueueAttributesInput{
		QueueUrl:   aws.String(plan.queueURL),
		Attributes: map[string]string{string(sqstypes.QueueAttributeNamePolicy): string(b)},
	})
	if err != nil {
		return Explain(wrapQueue("SetQueueAttributes", q.Main, err))
	}
	plan.policy = pol
	return nil
}

// RepairProducers puts right the drift plan found (deploy does, where
// provision only reports it): the rule's pattern and state, the
// subscriptions' raw delivery, and statements of socks's Sids that say
// something else. CreateProducers then adds what is missing.
func RepairProducers(ctx context.Context, ev EventsAPI, tp TopicsAPI, sq QueueAdminAPI, q Queues, p Producers, plan *ProducerPlan) error {
	fixRule, fixed := false, map[string]bool{}
	for _, d := range plan.Drift {
		switch d.Kind {
		case KindRule:
			fixRule = true
		case KindPolicy:
			fixed[strings.TrimPrefix(d.Name, q.Main+" ")] = true
		}
	}
	if r := p.Rule; r != nil && fixRule {
		if _, err := ev.PutRule(ctx, &eventbridge.PutRuleInput{
			Name: aws.String(r.Name), EventBusName: aws.String(r.bus()), EventPattern: aws.String(r.Pattern()),
			State: evtypes.RuleStateEnabled, Description: aws.String(ruleDescription(q)),
		}); err != nil {
			return fmt.Errorf("updating EventBridge rule %s: %w", ruleLabel(*r), err)
		}
	}
	for _, topic := range p.Topics {
		sub := plan.subs[topic]
		if sub == "" || !slices.ContainsFunc(plan.Drift, func(d Drift) bool { return d.Kind == KindSubscription && d.Name == topic+" -> "+plan.queueARN }) {
			continue
		}
		if _, err := tp.SetSubscriptionAttributes(ctx, &sns.SetSubscriptionAttributesInput{
			SubscriptionArn: aws.String(sub), AttributeName: aws.String("RawMessageDelivery"), AttributeValue: aws.String(fmt.Sprint(p.RawDelivery)),
		}); err != nil {
			return fmt.Errorf("setting raw message delivery of SNS subscription %s: %w", sub, err)
		}
	}
	if len(fixed) > 0 {
		// Drop the statements that say something else; CreateProducers
		// writes them again as socks makes them.
		kept := plan.policy.Statement[:0:0]
		for _, raw := range plan.policy.Statement {
			var have QueuePolicyStatement
			if json.Unmarshal(raw, &have) == nil && fixed[have.Sid] {
				plan.Changes = append(plan.Changes, Change{Kind: KindPolicy, Name: q.Main + " " + have.Sid})
				continue
			}
			kept = append(kept, raw)
		}
		plan.policy.Statement = kept
	}
	plan.Drift = nil
	return nil
}

// DeleteProducers removes the rule (its queue target, then the rule) and
// the queue's subscriptions to topics; what does not exist is skipped. The
// policy statements go with the queue. It returns what it removed.
func DeleteProducers(ctx context.Context, ev EventsAPI, tp TopicsAPI, sq QueueAdminAPI, q Queues, p Producers) ([]Change, error) {
	var done []Change
	if r := p.Rule; r != nil {
		_, err := ev.DescribeRule(ctx, &eventbridge.DescribeRuleInput{Name: aws.String(r.Name), EventBusName: aws.String(r.bus())})
		var missing *evtypes.ResourceNotFoundException
		switch {
		case errors.As(err, &missing):
		case err != nil:
			return done, fmt.Errorf("reading EventBridge rule %s: %w", ruleLabel(*r), err)
		default:
			if _, err := ev.RemoveTargets(ctx, &eventbridge.RemoveTargetsInput{Rule: aws.String(r.Name), EventBusName: aws.String(r.bus()), Ids: []string{RuleTargetID}}); err != nil {
				return done, fmt.Errorf("removing the target of EventBridge rule %s: %w", ruleLabel(*r), err)
			}
			if _, err := ev.DeleteRule(ctx, &eventbridge.DeleteRuleInput{Name: aws.String(r.Name), EventBusName: aws.String(r.bus())}); err != nil {
				return done, fmt.Errorf("deleting EventBridge rule %s (does it have targets socks did not add?): %w", ruleLabel(*r), err)
			}
			done = append(done, Change{Kind: KindRule, Name: ruleLabel(*r)})
		}
	}
	if len(p.Topics) == 0 {
		return done, nil
	}
	arn, err := queueARN(ctx, sq, q.Main)
	if err != nil {
		return done, err
	}
	for _, topic := range p.Topics {
		sub, _, err := findSubscription(ctx, tp, topic, arn)
		if err != nil {
			return done, err
		}
		if sub == "" {
			continue
		}
		if _, err := tp.Unsubscribe(ctx, &sns.UnsubscribeInput{SubscriptionArn: aws.String(sub)}); err != nil {
			return done, fmt.Errorf("unsubscribing queue %s from SNS topic %s: %w", q.Main, topic, err)
		}
		done = append(done, Change{Kind: KindSubscription, Name: topic + " -> " + arn})
	}
	return done, nil
}

// RuleExists reports whether rule r exists on its bus.
func RuleExists(ctx context.Context, ev EventsAPI, r EventRule) (bool, error) {
	_, err := ev.DescribeRule(ctx, &eventbridge.DescribeRuleInput{Name: aws.String(r.Name), EventBusName: aws.String(r.bus())})
	var missing *evtypes.ResourceNotFoundException
	switch {
	case errors.As(err, &missing):
		return false, nil
	case err != nil:
		return false, fmt.Errorf("reading EventBridge rule %s: %w", ruleLabel(r), Explain(err))
	}
	return true, nil
}

// ruleDescription is the description provision gives the rule that sends
// to q.
func ruleDescription(q Queues) string { return "socks: events for the envelopes queue " + q.Main }

// StackRule returns the stack's rule (RuleFor(stack) on bus) when it exists
// and sends to the stack's main queue with socks's target, so that teardown
// removes it even when --eventbridge-rule was not given (nil when not).
// The target's ARN must be the queue's; once the queue is gone (a rerun of
// a teardown that deleted it), its name is all there is to match. A
// rule of that name with no target at all is the stack's too when its
// description is the one provision gives it: a teardown that stopped
// between removing the target and deleting the rule left it.
func StackRule(ctx context.Context, ev EventsAPI, sq QueueAdminAPI, q Queues, stack, bus string) (*EventRule, error) {
	r := &EventRule{Name: RuleFor(stack), Bus: bus}
	targets, err := ruleTargets(ctx, ev, *r)
	var missing *evtypes.ResourceNotFoundException
	switch {
	case errors.As(err, &missing):
		return nil, nil
	case err != nil:
		return nil, err
	}
	arn, err := queueARN(ctx, sq, q.Main)
	var gone *sqstypes.QueueDoesNotExist
	switch {
	case errors.As(err, &gone):
		arn = ""
	case err != nil:
		return nil, err
	}
	for _, t := range targets {
		to := aws.ToString(t.Arn)
		if aws.ToString(t.Id) == RuleTargetID && (to == arn || arn == "" && arnName(to) == q.Main) {
			return r, nil
		}
	}
	if len(targets) == 0 {
		d, err := ev.DescribeRule(ctx, &eventbridge.DescribeRuleInput{Name: aws.String(r.Name), EventBusName: aws.String(r.bus())})
		switch {
		case errors.As(err, &missing):
			return nil, nil
		case err != nil:
			return nil, fmt.Errorf("reading EventBridge rule %s: %w", ruleLabel(*r), Explain(err))
		case aws.ToString(d.Description) == ruleDescription(q):
			return r, nil
		}
	}
	return nil, nil
}

// PlannedProducers lists what CreateProducers will create for a queue that
// does not exist yet (provision --dry-run on a new stack).
func PlannedProducers(q Queues, p Producers) []Change {
	var out []Change
	if r := p.Rule; r != nil {
		out = append(out, Change{Kind: KindRule, Name: ruleLabel(*r)}, Change{Kind: KindRuleTarget, Name: ruleLabel(*r) + " -> queue " + q.Main},
			Change{Kind: KindPolicy, Name: "EventBridge rule " + ruleLabel(*r)})
	}
	for _, t := range p.Topics {
		out = append(out, Change{Kind: KindSubscription, Name: t + " -> queue " + q.Main}, Change{Kind: KindPolicy, Name: "SNS topic " + t})
	}
	return out
}

// PolicyTopics returns the SNS topics that socks's own statements in the
// main queue's policy let send (provision writes one per --sns-topic, Sid
// SendStatement's, principal sns.amazonaws.com, aws:SourceArn the topic):
// the topics the queue may be subscribed to, so that teardown can find the
// subscriptions without --sns-topic. Statements of other Sids are not
// socks's and are ignored. A queue that does not exist has none.
func PolicyTopics(ctx context.Context, sq QueueAdminAPI, q Queues) ([]string, error) {
	u, err := sq.GetQueueUrl(ctx, &sqs.GetQueueUrlInput{QueueName: aws.String(q.Main)})
	var missing *sqstypes.QueueDoesNotExist
	if errors.As(err, &missing) {
		return nil, nil
	}
	if err != nil {
		return nil, Explain(wrapQueue("GetQueueUrl", q.Main, err))
	}
	attrs, err := sq.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{QueueUrl: u.QueueUrl,
		AttributeNames: []sqstypes.QueueAttributeName{sqstypes.QueueAttributeNamePolicy, sqstypes.QueueAttributeNameQueueArn}})
	if err != nil {
		return nil, Explain(wrapQueue("GetQueueAttributes", q.Main, err))
	}
	raw := attrs.Attributes[string(sqstypes.QueueAttributeNamePolicy)]
	if raw == "" {
		return nil, nil
	}
	pol, err := parseQueuePolicy(raw)
	if err != nil {
		return nil, fmt.Errorf("queue %s: its policy %s", q.Main, err)
	}
	arn := attrs.Attributes[string(sqstypes.QueueAttributeNameQueueArn)]
	var out []string
	for _, st := range pol.Statement {
		var have QueuePolicyStatement
		if json.Unmarshal(st, &have) != nil || have.Principal["Service"] != SNSPrincipal {
			continue
		}
		topic := have.Condition["ArnEquals"]["aws:SourceArn"]
		if topic == "" || have.Sid != SendStatement(SNSPrincipal, arn, topic).Sid {
			continue
		}
		out = append(out, topic)
	}
	return out, nil
}

// Subscription is one SNS subscription of the queue, found by its topic.
type Subscription struct {
	Topic string `json:"topic"`
	ARN   string `json:"arn"`
	// Queue is the ARN of the subscribed queue.
	Queue string `json:"queue"`
}

// Change is the subscription as a change, the way teardown lists it.
func (s Subscription) Change() Change {
	return Change{Kind: KindSubscription, Name: s.Topic + " -> " + s.Queue}
}

// UnreadableTopic is a topic whose subscriptions could not be listed
// (another account's, access denied): the queue's subscription to it, if
// any, must be removed by hand.
type UnreadableTopic struct {
	Topic string `json:"topic"`
	Error string `json:"error"`
	// Fix says what to run.
	Fix string `json:"fix"`
}

// QueueSubscriptions lists the subscriptions of the main queue to topics:
// those of protocol sqs whose endpoint is exactly the queue's ARN, and
// nothing else; one pending confirmation has no ARN to remove and is
// left to SNS, which deletes it unconfirmed. A topic that does not exist has none (SNS deletes a
// topic's subscriptions with it) and is returned in missing; one that
// cannot be read is returned as unreadable, with what to run, and the
// others are still listed.
func QueueSubscriptions(ctx context.Context, tp TopicsAPI, sq QueueAdminAPI, q Queues, topics []string) (subs []Subscription, bad []UnreadableTopic, missing []string, err error) {
	if len(topics) == 0 {
		return nil, nil, nil, nil
	}
	arn, err := queueARN(ctx, sq, q.Main)
	if err != nil {
		return nil, nil, nil, err
	}
	subs, bad, missing = subscriptionsTo(ctx, tp, arn, topics)
	return subs, bad, missing, nil
}

// GoneQueueSubscriptions lists the subscriptions whose endpoint is
// queueARN, the ARN of a queue that no longer exists (deleted by hand, or
// by a teardown that did not remove them first), as QueueSubscriptions
// does: SNS keeps them, sending to nowhere. The queue's policy, which
// named its topics, went with it, so the account's own subscriptions are
// listed (ListSubscriptions: every topic the account subscribed it to,
// another account's included), and those of topics (--sns-topic) as
// well. When the account's subscriptions cannot be listed, listErr says
// so and what to run, and those of topics are still returned.
//
// On a large account the listing takes minutes: progress, when not nil,
// is called after each page of it with the pages and the subscriptions
// read so far.
func GoneQueueSubscriptions(ctx context.Context, tp TopicsAPI, queueARN string, topics []string, progress func(pages, subscriptions int)) (subs []Subscription, bad []UnreadableTopic, missing []string, listErr error) {
	subs, bad, missing = subscriptionsTo(ctx, tp, queueARN, topics)
	fix := fmt.Sprintf("run `aws sns list-subscriptions` and `aws sns unsubscribe --subscription-arn ARN` for each one whose endpoint is %s", queueARN)
	pages := pageTokens{what: "SNS ListSubscriptions"}
	in := &sns.ListSubscriptionsInput{}
	read := 0
	for {
		out, err := tp.ListSubscriptions(ctx, in)
		if err != nil {
			return subs, bad, missing, fmt.Errorf("listing the account's SNS subscriptions: %w; %s", Explain(err), fix)
		}
		read += len(out.Subscriptions)
		for _, s := range out.Subscriptions {
			if !confirmedSubscription(s) || aws.ToString(s.Protocol) != "sqs" || aws.ToString(s.Endpoint) != queueARN {
				continue
			}
			arn := aws.ToString(s.SubscriptionArn)
			if !slices.ContainsFunc(subs, func(have Subscription) bool { return have.ARN == arn }) {
				subs = append(subs, Subscription{Topic: aws.ToString(s.TopicArn), ARN: arn, Queue: queueARN})
			}
		}
		more, err := pages.next(out.NextToken)
		if progress != nil {
			progress(pages.pages, read)
		}
		if err != nil {
			return subs, bad, missing, fmt.Errorf("listing the account's SNS subscriptions: %w; %s", err, fix)
		}
		if !more {
			return subs, bad, missing, nil
		}
		in.NextToken = out.NextToken
	}
}

// subscriptionsTo lists the subscriptions of the queue whose ARN is arn
// to topics, as QueueSubscriptions says.
func subscriptionsTo(ctx context.Context, tp TopicsAPI, arn string, topics []string) (subs []Subscription, bad []UnreadableTopic, missing []string) {
	for _, topic := range topics {
		fix := fmt.Sprintf("with the topic owner's credentials, run `aws sns list-subscriptions-by-topic --topic-arn %s` and `aws sns unsubscribe --subscription-arn ARN` for the subscription whose endpoint is %s", topic, arn)
		in := &sns.ListSubscriptionsByTopicInput{TopicArn: aws.String(topic)}
		pages := pageTokens{what: "SNS ListSubscriptionsByTopic"}
	pages:
		for {
			out, err := tp.ListSubscriptionsByTopic(ctx, in)
			var notFound *snstypes.NotFoundException
			switch {
			case errors.As(err, &notFound):
				missing = append(missing, topic)
				break pages
			case err != nil:
				bad = append(bad, UnreadableTopic{Topic: topic, Error: Explain(err).Error(), Fix: fix})
				break pages
			}
			for _, s := range out.Subscriptions {
				if !confirmedSubscription(s) {
					continue
				}
				sub := aws.ToString(s.SubscriptionArn)
				// A page given twice (a repeated token) lists its
				// subscriptions twice.
				if aws.ToString(s.Protocol) == "sqs" && aws.ToString(s.Endpoint) == arn && !slices.ContainsFunc(subs, func(have Subscription) bool { return have.ARN == sub }) {
					subs = append(subs, Subscription{Topic: topic, ARN: sub, Queue: arn})
				}
			}
			more, err := pages.next(out.NextToken)
			if err != nil {
				bad = append(bad, UnreadableTopic{Topic: topic, Error: err.Error(), Fix: fix})
				break
			}
			if !more {
				break
			}
			in.NextToken = out.NextToken
		}
	}
	return subs, bad, missing
}

// Unsubscribe removes the subscriptions; one already gone is skipped. It
// returns what it removed.
func Unsubscribe(ctx context.Context, tp TopicsAPI, subs []Subscription) ([]Change, error) {
	var done []Change
	for _, s := range subs {
		_, err := tp.Unsubscribe(ctx, &sns.UnsubscribeInput{SubscriptionArn: aws.String(s.ARN)})
		var missing *snstypes.NotFoundException
		if err != nil && !errors.As(err, &missing) {
			return done, fmt.Errorf("unsubscribing %s from SNS topic %s: %w", arnName(s.Queue), s.Topic, Explain(err))
		}
		done = append(done, s.Change())
	}
	return done, nil
}
