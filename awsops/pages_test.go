package awsops

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/apigatewayv2"
	apitypes "github.com/aws/aws-sdk-go-v2/service/apigatewayv2/types"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatchlogs"
	logtypes "github.com/aws/aws-sdk-go-v2/service/cloudwatchlogs/types"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	dbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/eventbridge"
	evtypes "github.com/aws/aws-sdk-go-v2/service/eventbridge/types"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	lambdatypes "github.com/aws/aws-sdk-go-v2/service/lambda/types"
	"github.com/aws/aws-sdk-go-v2/service/sns"
	snstypes "github.com/aws/aws-sdk-go-v2/service/sns/types"
)

// endlessPages answers page after page: with the same NextToken each
// time (repeat) or a new one. It gives up after a bound the code under
// test must stop well before, so that a test of code that never stops
// ends all the same.
type endlessPages struct {
	repeat bool
	calls  int
}

const endlessBound = 5 * maxListPages

func (e *endlessPages) token() (*string, error) {
	if e.calls++; e.calls > endlessBound {
		return nil, errors.New("the listing was read past every bound (test)")
	}
	if e.repeat {
		return aws.String("same"), nil
	}
	return aws.String("t" + strconv.Itoa(e.calls)), nil
}

type endlessSNS struct {
	TopicsAPI
	endlessPages
	queueARN string
}

func (e *endlessSNS) ListSubscriptions(context.Context, *sns.ListSubscriptionsInput, ...func(*sns.Options)) (*sns.ListSubscriptionsOutput, error) {
	next, err := e.token()
	if err != nil {
		return nil, err
	}
	return &sns.ListSubscriptionsOutput{NextToken: next, Subscriptions: []snstypes.Subscription{{
		SubscriptionArn: aws.String("arn:aws:sns:us-east-1:123456789012:jobs:sub-1"), TopicArn: aws.String("arn:aws:sns:us-east-1:123456789012:jobs"),
		Protocol: aws.String("sqs"), Endpoint: aws.String(e.queueARN),
	}}}, nil
}

func (e *endlessSNS) ListSubscriptionsByTopic(_ context.Context, in *sns.ListSubscriptionsByTopicInput, _ ...func(*sns.Options)) (*sns.ListSubscriptionsByTopicOutput, error) {
	next, err := e.token()
	if err != nil {
		return nil, err
	}
	// The same subscription on every page: of queueARN, or (none set) of
	// another queue, so that findSubscription reads on.
	endpoint := e.queueARN
	if endpoint == "" {
		endpoint = "arn:aws:sqs:us-east-1:123456789012:other"
	}
	return &sns.ListSubscriptionsByTopicOutput{NextToken: next, Subscriptions: []snstypes.Subscription{{
		SubscriptionArn: aws.String(aws.ToString(in.TopicArn) + ":sub-1"), TopicArn: in.TopicArn,
		Protocol: aws.String("sqs"), Endpoint: aws.String(endpoint),
	}}}, nil
}

type endlessAPIs struct {
	DeployAPIGatewayAPI
	endlessPages
}

func (e *endlessAPIs) GetApis(context.Context, *apigatewayv2.GetApisInput, ...func(*apigatewayv2.Options)) (*apigatewayv2.GetApisOutput, error) {
	next, err := e.token()
	if err != nil {
		return nil, err
	}
	return &apigatewayv2.GetApisOutput{NextToken: next, Items: []apitypes.Api{{ApiId: aws.String("a1"), Tags: map[string]string{TagStack: "s"}}}}, nil
}

func (e *endlessAPIs) GetRoutes(context.Context, *apigatewayv2.GetRoutesInput, ...func(*apigatewayv2.Options)) (*apigatewayv2.GetRoutesOutput, error) {
	next, err := e.token()
	if err != nil {
		return nil, err
	}
	return &apigatewayv2.GetRoutesOutput{NextToken: next, Items: []apitypes.Route{{RouteId: aws.String("r1"), RouteKey: aws.String("$default")}}}, nil
}

func (e *endlessAPIs) GetStages(context.Context, *apigatewayv2.GetStagesInput, ...func(*apigatewayv2.Options)) (*apigatewayv2.GetStagesOutput, error) {
	next, err := e.token()
	if err != nil {
		return nil, err
	}
	return &apigatewayv2.GetStagesOutput{NextToken: next, Items: []apitypes.Stage{{StageName: aws.String("live")}}}, nil
}

type endlessMappings struct {
	DeployLambdaAPI
	endlessPages
}

func (e *endlessMappings) GetFunction(context.Context, *lambda.GetFunctionInput, ...func(*lambda.Options)) (*lambda.GetFunctionOutput, error) {
	return &lambda.GetFunctionOutput{Tags: map[string]string{TagStack: "s"}}, nil
}

func (e *endlessMappings) ListEventSourceMappings(context.Context, *lambda.ListEventSourceMappingsInput, ...func(*lambda.Options)) (*lambda.ListEventSourceMappingsOutput, error) {
	next, err := e.token()
	if err != nil {
		return nil, err
	}
	return &lambda.ListEventSourceMappingsOutput{NextMarker: next, EventSourceMappings: []lambdatypes.EventSourceMappingConfiguration{{UUID: aws.String("m1")}}}, nil
}

type endlessLogs struct {
	DeployLogsAPI
	endlessPages
}

func (e *endlessLogs) DescribeLogGroups(_ context.Context, in *cloudwatchlogs.DescribeLogGroupsInput, _ ...func(*cloudwatchlogs.Options)) (*cloudwatchlogs.DescribeLogGroupsOutput, error) {
	next, err := e.token()
	if err != nil {
		return nil, err
	}
	return &cloudwatchlogs.DescribeLogGroupsOutput{NextToken: next, LogGroups: []logtypes.LogGroup{{LogGroupName: aws.String(aws.ToString(in.LogGroupNamePrefix) + "-old")}}}, nil
}

type endlessTargets struct {
	EventsAPI
	endlessPages
}

func (e *endlessTargets) ListTargetsByRule(context.Context, *eventbridge.ListTargetsByRuleInput, ...func(*eventbridge.Options)) (*eventbridge.ListTargetsByRuleOutput, error) {
	next, err := e.token()
	if err != nil {
		return nil, err
	}
	return &eventbridge.ListTargetsByRuleOutput{NextToken: next, Targets: []evtypes.Target{{Id: aws.String("other"), Arn: aws.String("arn:aws:sqs:us-east-1:123456789012:other")}}}, nil
}

type endlessTable struct {
	StackTagTableAPI
	endlessPages
}

func (e *endlessTable) DescribeTable(_ context.Context, in *dynamodb.DescribeTableInput, _ ...func(*dynamodb.Options)) (*dynamodb.DescribeTableOutput, error) {
	return &dynamodb.DescribeTableOutput{Table: &dbtypes.TableDescription{TableName: in.TableName,
		TableArn: aws.String("arn:aws:dynamodb:us-east-1:123456789012:table/" + aws.ToString(in.TableName))}}, nil
}

func (e *endlessTable) ListTagsOfResource(context.Context, *dynamodb.ListTagsOfResourceInput, ...func(*dynamodb.Options)) (*dynamodb.ListTagsOfResourceOutput, error) {
	next, err := e.token()
	if err != nil {
		return nil, err
	}
	return &dynamodb.ListTagsOfResourceOutput{NextToken: next, Tags: []dbtypes.Tag{{Key: aws.String(TagStack), Value: aws.String("s")}}}, nil
}

// TestListingsThatNeverEndAreBounded: GoneQueueSubscriptions (teardown)
// and StackAPIs (deploy, teardown), then the routes and stages deploy
// checks, the function's event source mappings (teardown; StackMapping),
// the stack's log group (findLogGroup: deploy, teardown), the targets of
// an EventBridge rule (ruleTargets: provision, teardown), a table's tags (CheckStackTags, teardown) and the subscriptions
// of a topic (provision, QueueSubscriptions) read page after page for as
// long as the API gave a NextToken: one that never stopped giving new
// ones kept them reading for ever, and the SDK's paginators, on a
// repeated token, stopped without a word, as if the listing were whole.
// A repeated token or more than maxListPages pages ends the listing with
// an error saying so and what to run instead.
func TestListingsThatNeverEndAreBounded(t *testing.T) {
	const queue = "arn:aws:sqs:us-east-1:123456789012:gone"
	for _, repeat := range []bool{true, false} {
		want := "more than 1,000 pages"
		if repeat {
			want = "the same page token twice"
		}
		tp := &endlessSNS{endlessPages: endlessPages{repeat: repeat}, queueARN: queue}
		subs, _, _, err := GoneQueueSubscriptions(t.Context(), tp, queue, nil, nil)
		if err == nil || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), "aws sns list-subscriptions") || tp.calls > maxListPages+1 {
			t.Errorf("repeat=%v: GoneQueueSubscriptions after %d pages: %v; want it stopped, saying %q and what to run", repeat, tp.calls, err, want)
		}
		if len(subs) != 1 {
			t.Errorf("repeat=%v: subscriptions %v; want the one read, once", repeat, subs)
		}
		api := &endlessAPIs{endlessPages: endlessPages{repeat: repeat}}
		_, err = StackAPIs(t.Context(), api, "s")
		if err == nil || !strings.Contains(err.Error(), want) || api.calls > maxListPages+1 {
			t.Errorf("repeat=%v: StackAPIs after %d pages: %v; want it stopped, saying %q", repeat, api.calls, err, want)
		}

		// stopped checks that a listing read at most maxListPages+1
		// pages and ended with an error saying want and run.
		stopped := func(name string, calls int, err error, run string) {
			t.Helper()
			if err == nil || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), run) || calls > maxListPages+1 {
				t.Errorf("repeat=%v: %s after %d pages: %v; want it stopped, saying %q and %q", repeat, name, calls, err, want, run)
			}
		}
		routes := &endlessAPIs{endlessPages: endlessPages{repeat: repeat}}
		d := &Deployer{CP: &ControlPlane{APIGW: routes}, Spec: DeploySpec{Stack: "s", Stage: "live"}}
		d.st.apiID = "a1"
		_, _, err = d.readRoutes(t.Context())
		stopped("readRoutes", routes.calls, err, "aws apigatewayv2 get-routes --api-id a1")
		stages := &endlessAPIs{endlessPages: endlessPages{repeat: repeat}}
		d.CP.APIGW = stages
		_, _, err = d.checkStage(t.Context())
		stopped("checkStage", stages.calls, err, "aws apigatewayv2 get-stages --api-id a1")

		mappings := &endlessMappings{endlessPages: endlessPages{repeat: repeat}}
		_, err = (&Deployer{CP: &ControlPlane{Lambda: mappings}, Spec: DeploySpec{Stack: "s"}}).Deployed(t.Context())
		stopped("Deployed", mappings.calls, err, "aws lambda list-event-source-mappings --function-name s-socks")

		mappings = &endlessMappings{endlessPages: endlessPages{repeat: repeat}}
		_, err = StackMapping(t.Context(), mappings, "s-socks", "arn:aws:sqs:us-east-1:123456789012:s-envelopes")
		stopped("StackMapping", mappings.calls, err, "aws lambda list-event-source-mappings --function-name s-socks")

		logs := &endlessLogs{endlessPages: endlessPages{repeat: repeat}}
		_, err = findLogGroup(t.Context(), logs, "/aws/lambda/s-socks")
		stopped("findLogGroup", logs.calls, err, "aws logs describe-log-groups --log-group-name-prefix /aws/lambda/s-socks")

		targets := &endlessTargets{endlessPages: endlessPages{repeat: repeat}}
		_, err = ruleTargets(t.Context(), targets, EventRule{Name: "s-socks"})
		stopped("ruleTargets", targets.calls, err, "aws events list-targets-by-rule --rule s-socks --event-bus-name default")

		table := &endlessTable{endlessPages: endlessPages{repeat: repeat}}
		_, _, err = tableTags(t.Context(), table, "events")
		stopped("tableTags", table.calls, err, "aws dynamodb list-tags-of-resource --resource-arn arn:aws:dynamodb:us-east-1:123456789012:table/events")

		const topic = "arn:aws:sns:us-east-1:123456789012:jobs"
		byTopic := &endlessSNS{endlessPages: endlessPages{repeat: repeat}}
		_, _, err = findSubscription(t.Context(), byTopic, topic, queue)
		stopped("findSubscription", byTopic.calls, err, "aws sns list-subscriptions-by-topic --topic-arn "+topic)
		byTopic = &endlessSNS{endlessPages: endlessPages{repeat: repeat}, queueARN: queue}
		subs, bad, missing := subscriptionsTo(t.Context(), byTopic, queue, []string{topic})
		if len(subs) != 1 || len(bad) != 1 || bad[0].Topic != topic || len(missing) != 0 {
			t.Errorf("repeat=%v: subscriptionsTo after %d pages: subscriptions %v, unreadable %+v, missing %v; want the one read, once, and the topic unreadable", repeat, byTopic.calls, subs, bad, missing)
		} else {
			stopped("subscriptionsTo", byTopic.calls, errors.New(bad[0].Error+"; "+bad[0].Fix), "aws sns list-subscriptions-by-topic --topic-arn "+topic)
		}
	}
}
