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

// TestListingsThatNeverEndAreBounded: GoneQueueSubscriptions (teardown)
// and StackAPIs (deploy, teardown) read page after page for as long as
// the API gave a NextToken: one that repeated a token, or never stopped
// giving new ones, kept them reading for ever. A repeated token or more
// than maxListPages pages ends the listing with an error saying so.
func TestListingsThatNeverEndAreBounded(t *testing.T) {
	const queue = "arn:aws:sqs:us-east-1:123456789012:gone"
	for _, repeat := range []bool{true, false} {
		want := "more than 1,000 pages"
		if repeat {
			want = "the same page token twice"
		}
		tp := &endlessSNS{endlessPages: endlessPages{repeat: repeat}, queueARN: queue}
		subs, _, _, err := GoneQueueSubscriptions(t.Context(), tp, queue, nil)
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
	}
}
