package awsops

import (
	"context"
	"strconv"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/apigatewayv2"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatchlogs"
	logtypes "github.com/aws/aws-sdk-go-v2/service/cloudwatchlogs/types"
	"github.com/aws/aws-sdk-go-v2/service/eventbridge"
	evtypes "github.com/aws/aws-sdk-go-v2/service/eventbridge/types"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	lambdatypes "github.com/aws/aws-sdk-go-v2/service/lambda/types"
	"github.com/aws/smithy-go"
)

// pageOf answers one item per page: the page that token names (none: the
// first) and the token of the next page, nil on the last.
func pageOf(token *string, n int) (int, *string) {
	i := 0
	if t := aws.ToString(token); t != "" {
		i, _ = strconv.Atoi(t)
	}
	if i+1 < n {
		return i, aws.String(strconv.Itoa(i + 1))
	}
	return i, nil
}

// pagedLogs answers DescribeLogGroups one group a page, in order.
type pagedLogs struct {
	DeployLogsAPI
	groups []string
	tags   map[string]string
}

func (p *pagedLogs) DescribeLogGroups(_ context.Context, in *cloudwatchlogs.DescribeLogGroupsInput, _ ...func(*cloudwatchlogs.Options)) (*cloudwatchlogs.DescribeLogGroupsOutput, error) {
	i, next := pageOf(in.NextToken, len(p.groups))
	g := p.groups[i]
	return &cloudwatchlogs.DescribeLogGroupsOutput{NextToken: next, LogGroups: []logtypes.LogGroup{{
		LogGroupName: aws.String(g), LogGroupArn: aws.String("arn:aws:logs:us-east-1:123456789012:log-group:" + g)}}}, nil
}

func (p *pagedLogs) ListTagsForResource(context.Context, *cloudwatchlogs.ListTagsForResourceInput, ...func(*cloudwatchlogs.Options)) (*cloudwatchlogs.ListTagsForResourceOutput, error) {
	return &cloudwatchlogs.ListTagsForResourceOutput{Tags: p.tags}, nil
}

// pagedMappings answers ListEventSourceMappings one mapping a page; the
// function is not there (GetFunction).
type pagedMappings struct {
	DeployLambdaAPI
	arns []string
}

func (p *pagedMappings) ListEventSourceMappings(_ context.Context, in *lambda.ListEventSourceMappingsInput, _ ...func(*lambda.Options)) (*lambda.ListEventSourceMappingsOutput, error) {
	i, next := pageOf(in.Marker, len(p.arns))
	return &lambda.ListEventSourceMappingsOutput{NextMarker: next, EventSourceMappings: []lambdatypes.EventSourceMappingConfiguration{{
		UUID: aws.String("m" + strconv.Itoa(i)), EventSourceArn: aws.String(p.arns[i])}}}, nil
}

func (p *pagedMappings) GetFunction(context.Context, *lambda.GetFunctionInput, ...func(*lambda.Options)) (*lambda.GetFunctionOutput, error) {
	return nil, &smithy.GenericAPIError{Code: "ResourceNotFoundException", Message: "Function not found"}
}

type noAPIs struct{ DeployAPIGatewayAPI }

func (noAPIs) GetApis(context.Context, *apigatewayv2.GetApisInput, ...func(*apigatewayv2.Options)) (*apigatewayv2.GetApisOutput, error) {
	return &apigatewayv2.GetApisOutput{}, nil
}

type noRole struct{ DeployIAMAPI }

func (noRole) GetRole(context.Context, *iam.GetRoleInput, ...func(*iam.Options)) (*iam.GetRoleOutput, error) {
	return nil, &smithy.GenericAPIError{Code: "NoSuchEntity", Message: "The role cannot be found."}
}

// pagedTargets answers ListTargetsByRule one target a page.
type pagedTargets struct{ *fakeProducers }

func (p pagedTargets) ListTargetsByRule(_ context.Context, in *eventbridge.ListTargetsByRuleInput, _ ...func(*eventbridge.Options)) (*eventbridge.ListTargetsByRuleOutput, error) {
	all := p.targets[aws.ToString(in.Rule)]
	if len(all) == 0 {
		return &eventbridge.ListTargetsByRuleOutput{}, nil
	}
	i, next := pageOf(in.NextToken, len(all))
	return &eventbridge.ListTargetsByRuleOutput{NextToken: next, Targets: all[i : i+1]}, nil
}

// TestListingsAreReadPastTheirFirstPage: the stack's log group (deploy's
// check, teardown's Deployed), the stack's event source mapping
// (StackMapping) and the targets of an EventBridge rule (provision's
// check, teardown's StackRule) were looked for on the first page of
// their listing only. Log groups are listed by name prefix, so others
// named like the stack's (/aws/lambda/s-socks-old...) came first and
// pushed it to page two: deploy planned to create it again, teardown
// left it. Each found on page two is found.
func TestListingsAreReadPastTheirFirstPage(t *testing.T) {
	spec := DeploySpec{Stack: "s"}.withDefaults()
	name := spec.LogGroupName()
	logs := &pagedLogs{groups: []string{name + "-old", name + "-older", name}, tags: map[string]string{TagStack: "s"}}
	d := &Deployer{CP: &ControlPlane{Logs: logs}, Spec: spec}
	if action, _, err := d.checkLogGroup(t.Context()); err != nil || action != ActionNone {
		t.Errorf("checkLogGroup with the log group on page 3 = %q, %v; want %q", action, err, ActionNone)
	}

	d = &Deployer{CP: &ControlPlane{Logs: logs, Lambda: &pagedMappings{}, APIGW: noAPIs{}, IAM: noRole{}}, Spec: spec}
	steps, err := d.Deployed(t.Context())
	found := false
	for _, s := range steps {
		found = found || s.Kind == "log group" && s.Name == name
	}
	if err != nil || !found {
		t.Errorf("Deployed with the log group on page 3 = %+v, %v; want the log group in it", steps, err)
	}

	const queue = "arn:aws:sqs:us-east-1:123456789012:s-envelopes"
	mappings := &pagedMappings{arns: []string{"arn:aws:sqs:us-east-1:123456789012:other", queue}}
	m, err := StackMapping(t.Context(), mappings, spec.FunctionName(), queue)
	if err != nil || m == nil || aws.ToString(m.EventSourceArn) != queue {
		t.Errorf("StackMapping with the mapping on page 2 = %+v, %v; want the mapping from %s", m, err, queue)
	}

	f := newFakeProducers()
	q := QueuesFor("s")
	f.targets[RuleFor("s")] = []evtypes.Target{
		{Id: aws.String("someone-elses"), Arn: aws.String("arn:aws:sqs:us-east-1:123456789012:other")},
		{Id: aws.String(RuleTargetID), Arn: aws.String(f.queueARN)},
	}
	r, err := StackRule(t.Context(), pagedTargets{f}, f, q, "s", "")
	if err != nil || r == nil {
		t.Errorf("StackRule with socks's target on page 2 = %+v, %v; want the rule", r, err)
	}

	rule := EventRule{Name: RuleFor("s"), Sources: []string{"app.orders"}}
	f.rules[rule.bus()+"/"+rule.Name] = &eventbridge.DescribeRuleOutput{Arn: aws.String("arn:aws:events:us-east-1:123456789012:rule/" + rule.Name),
		EventPattern: aws.String(rule.Pattern()), State: evtypes.RuleStateEnabled}
	plan := &ProducerPlan{queueARN: f.queueARN}
	if err := checkRule(t.Context(), pagedTargets{f}, rule, plan); err != nil {
		t.Fatal(err)
	}
	for _, c := range plan.Changes {
		if c.Kind == KindRuleTarget {
			t.Errorf("checkRule with the queue's target on page 2 plans %+v; want no new target", c)
		}
	}
}
