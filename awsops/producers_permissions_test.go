package awsops

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsmiddleware "github.com/aws/aws-sdk-go-v2/aws/middleware"
	"github.com/aws/aws-sdk-go-v2/service/eventbridge"
	evtypes "github.com/aws/aws-sdk-go-v2/service/eventbridge/types"
	"github.com/aws/aws-sdk-go-v2/service/sns"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"
	"github.com/aws/smithy-go/middleware"

	"github.com/socks-dev/socks/internal/emulatortest"
)

// actionRecorder records the IAM action of every call a client of its
// config makes ("sqs:GetQueueUrl"), also of a call that failed.
type actionRecorder struct {
	mu      sync.Mutex
	actions []string
}

// iamPrefixes are the IAM service prefixes of the SDK's service IDs.
var iamPrefixes = map[string]string{"SQS": "sqs:", "EventBridge": "events:", "SNS": "sns:"}

func (r *actionRecorder) config(cfg aws.Config) aws.Config {
	cfg.APIOptions = append(slices.Clone(cfg.APIOptions), func(s *middleware.Stack) error {
		return s.Initialize.Add(middleware.InitializeMiddlewareFunc("actionRecorder", func(ctx context.Context, in middleware.InitializeInput, next middleware.InitializeHandler) (middleware.InitializeOutput, middleware.Metadata, error) {
			service := awsmiddleware.GetServiceID(ctx)
			prefix, ok := iamPrefixes[service]
			if !ok {
				prefix = strings.ToLower(service) + ":"
			}
			r.mu.Lock()
			if a := prefix + awsmiddleware.GetOperationName(ctx); !slices.Contains(r.actions, a) {
				r.actions = append(r.actions, a)
			}
			r.mu.Unlock()
			return next.HandleInitialize(ctx, in)
		}), middleware.Before)
	})
	return cfg
}

// TestTheProducersPermissionsAreAsDocumented: docs/deploy.md listed what
// an operator needs for provision and teardown, but not the actions of
// --eventbridge-rule and --sns-topic, so a least-privilege operator found
// each one missing by a failed deploy. Its "**The producers**" table now
// lists them, and this test makes every call of the producers' path
// (CheckProducers, RepairProducers and CreateProducers: provision's
// producers, and deploy's producers step, which is made of them) on
// moto, once to make the rule, its target, the subscription and the
// queue's policy, and once to put hand edits of each right, and checks
// that the table names exactly the actions they called, service by
// service.
func TestTheProducersPermissionsAreAsDocumented(t *testing.T) {
	cfg, moto := emulatortest.MotoAWS(t)
	ctx := t.Context()
	plain := NewControlPlane(cfg, Endpoints{All: moto})
	rec := &actionRecorder{}
	cp := NewControlPlane(rec.config(cfg), Endpoints{All: moto})

	stack := uniqueName("perm")
	q := QueuesFor(stack)
	if _, _, err := EnsureQueues(ctx, plain.SQS, q, QueueSettings{}); err != nil {
		t.Fatal(err)
	}
	tp, err := plain.SNS.(*sns.Client).CreateTopic(ctx, &sns.CreateTopicInput{Name: aws.String(uniqueName("jobs"))})
	if err != nil {
		t.Fatal(err)
	}
	topic := aws.ToString(tp.TopicArn)
	p := Producers{Rule: &EventRule{Name: RuleFor(stack), Sources: []string{"com.example"}, DetailTypes: []string{"Changed"}}, Topics: []string{topic}}
	t.Cleanup(func() {
		ctx := cleanupContext(t)
		_, _ = DeleteProducers(ctx, plain.Events, plain.SNS, plain.SQS, q, p)
		_ = DeleteQueues(ctx, plain.SQS, q)
	})
	// apply is what deploy's producers step does (provision: the same
	// without the repair).
	apply := func() {
		t.Helper()
		plan, err := CheckProducers(ctx, cp.Events, cp.SNS, cp.SQS, q, p)
		if err != nil {
			t.Fatal(err)
		}
		if err := RepairProducers(ctx, cp.Events, cp.SNS, cp.SQS, q, p, plan); err != nil {
			t.Fatal(err)
		}
		if err := CreateProducers(ctx, cp.Events, cp.SNS, cp.SQS, q, p, plan); err != nil {
			t.Fatal(err)
		}
	}
	apply()

	// Hand edits: another pattern, raw delivery on, socks's SNS
	// statement opened to everyone.
	if _, err := plain.Events.PutRule(ctx, &eventbridge.PutRuleInput{Name: aws.String(p.Rule.Name), EventPattern: aws.String(`{"source":["other"]}`), State: evtypes.RuleStateEnabled}); err != nil {
		t.Fatal(err)
	}
	subs, err := plain.SNS.ListSubscriptionsByTopic(ctx, &sns.ListSubscriptionsByTopicInput{TopicArn: aws.String(topic)})
	if err != nil || len(subs.Subscriptions) != 1 {
		t.Fatalf("subscriptions of %s: %v, %v", topic, subs, err)
	}
	if _, err := plain.SNS.SetSubscriptionAttributes(ctx, &sns.SetSubscriptionAttributesInput{SubscriptionArn: subs.Subscriptions[0].SubscriptionArn,
		AttributeName: aws.String("RawMessageDelivery"), AttributeValue: aws.String("true")}); err != nil {
		t.Fatal(err)
	}
	u, err := plain.SQS.GetQueueUrl(ctx, &sqs.GetQueueUrlInput{QueueName: aws.String(q.Main)})
	if err != nil {
		t.Fatal(err)
	}
	attrs, err := plain.SQS.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{QueueUrl: u.QueueUrl, AttributeNames: []sqstypes.QueueAttributeName{sqstypes.QueueAttributeNamePolicy}})
	if err != nil {
		t.Fatal(err)
	}
	var pol struct {
		Version   string
		Statement []QueuePolicyStatement
	}
	if err := json.Unmarshal([]byte(attrs.Attributes["Policy"]), &pol); err != nil {
		t.Fatal(err)
	}
	for i, s := range pol.Statement {
		if s.Principal["Service"] == SNSPrincipal {
			pol.Statement[i].Principal = map[string]string{"AWS": "*"}
		}
	}
	b, _ := json.Marshal(pol)
	if _, err := plain.SQS.SetQueueAttributes(ctx, &sqs.SetQueueAttributesInput{QueueUrl: u.QueueUrl, Attributes: map[string]string{"Policy": string(b)}}); err != nil {
		t.Fatal(err)
	}
	plan, err := CheckProducers(ctx, plain.Events, plain.SNS, plain.SQS, q, p)
	if err != nil || len(plan.Drift) != 3 {
		t.Fatalf("drift after the hand edits: %+v, %v; want pattern, raw delivery and statement", plan, err)
	}
	apply()
	if plan, err := CheckProducers(ctx, plain.Events, plain.SNS, plain.SQS, q, p); err != nil || len(plan.Drift)+len(plan.Changes) != 0 {
		t.Fatalf("after the repair: %+v, %v", plan, err)
	}

	raw, err := os.ReadFile(filepath.Join("..", "docs", "deploy.md"))
	if err != nil {
		t.Fatal(err)
	}
	rows := permissionsTable(t, string(raw), "**The producers**")
	for _, c := range []struct{ service, prefix string }{{"SQS", "sqs:"}, {"EventBridge", "events:"}, {"SNS", "sns:"}} {
		var called []string
		for _, a := range rec.actions {
			if strings.HasPrefix(a, c.prefix) {
				called = append(called, a)
			}
		}
		var documented []string
		for _, r := range rows {
			if strings.TrimPrefix(r[0], "| ") == c.service {
				documented = append(documented, docActions(c.prefix, r[1])...)
			}
		}
		slices.Sort(called)
		if !sameSet(documented, called) || len(documented) != len(called) {
			t.Errorf("docs/deploy.md's producers table, %s: %v; the producers called %v", c.service, documented, called)
		}
	}
	for _, a := range rec.actions {
		if _, ok := map[string]bool{"sqs:": true, "events:": true, "sns:": true}[a[:strings.Index(a, ":")+1]]; !ok {
			t.Errorf("the producers called %s, of a service the table has no row for", a)
		}
	}
}
