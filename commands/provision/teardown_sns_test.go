package provision

import (
	"context"
	"encoding/json"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sns"
	snstypes "github.com/aws/aws-sdk-go-v2/service/sns/types"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/aws/smithy-go"

	"github.com/socks-dev/socks/awsops"
	"github.com/socks-dev/socks/internal/emulatortest"
	"github.com/socks-dev/socks/internal/lockedbuf"
	"github.com/socks-dev/socks/iostreams"
)

// denyingTopics refuses to list the subscriptions of one topic, as SNS
// does for a topic of another account.
type denyingTopics struct {
	awsops.TopicsAPI
	denied string
}

func (d denyingTopics) ListSubscriptionsByTopic(ctx context.Context, in *sns.ListSubscriptionsByTopicInput, optFns ...func(*sns.Options)) (*sns.ListSubscriptionsByTopicOutput, error) {
	if aws.ToString(in.TopicArn) == d.denied {
		return nil, &snstypes.AuthorizationErrorException{Message: aws.String("User is not authorized to perform: SNS:ListSubscriptionsByTopic")}
	}
	return d.TopicsAPI.ListSubscriptionsByTopic(ctx, in, optFns...)
}

// TestTeardownUnsubscribesTheQueueFromItsTopicsWithoutTheFlag: a stack
// provisioned with --sns-topic, torn down without it, kept the queue's
// subscription, which outlived the queue. Teardown now finds the topics
// in socks's own statements of the queue's policy, lists the subscription
// in the confirmation, in a dry run and in --json, and removes it (a dry
// run does not), and only it: another queue's subscription to the same
// topic stays. --sns-topic adds topics; one that does not exist is a
// warning. A topic whose subscriptions cannot be listed is a warning
// saying what to run, in --json too, and teardown carries on. On moto.
func TestTeardownUnsubscribesTheQueueFromItsTopicsWithoutTheFlag(t *testing.T) {
	cfg, moto := emulatortest.MotoAWS(t)
	cp := awsops.NewControlPlane(cfg, awsops.Endpoints{All: moto})
	snsc := cp.SNS.(*sns.Client)
	stack, other := randomStack("tdsns"), randomStack("tdsnsother")
	ctx := t.Context()
	var topics []string
	for _, n := range []string{"jobs", "theirs"} {
		tp, err := snsc.CreateTopic(ctx, &sns.CreateTopicInput{Name: aws.String(randomStack(n))})
		if err != nil {
			t.Fatal(err)
		}
		topics = append(topics, aws.ToString(tp.TopicArn))
	}
	jobs, denied := topics[0], topics[1]
	for _, s := range []struct {
		stack  string
		topics []string
	}{{stack, topics}, {other, topics[:1]}} {
		makeData(t, cp.DB, cp.SQS, s.stack, s.stack)
		q := awsops.QueuesFor(s.stack)
		p := awsops.Producers{Topics: s.topics}
		plan, err := awsops.CheckProducers(ctx, cp.Events, cp.SNS, cp.SQS, q, p)
		if err != nil {
			t.Fatal(err)
		}
		if err := awsops.CreateProducers(ctx, cp.Events, cp.SNS, cp.SQS, q, p, plan); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			_, _ = awsops.DeleteProducers(ctx, cp.Events, cp.SNS, cp.SQS, q, p)
		})
	}
	subsOf := func(topic string) []string {
		t.Helper()
		out, err := snsc.ListSubscriptionsByTopic(ctx, &sns.ListSubscriptionsByTopicInput{TopicArn: aws.String(topic)})
		if err != nil {
			t.Fatal(err)
		}
		var eps []string
		for _, s := range out.Subscriptions {
			eps = append(eps, aws.ToString(s.Endpoint))
		}
		return eps
	}
	queueARN := func(stack string) string {
		return "arn:aws:sqs:" + cfg.Region + ":123456789012:" + awsops.QueuesFor(stack).Main
	}
	if got := subsOf(jobs); len(got) != 2 {
		t.Fatalf("subscriptions of %s before teardown: %v; want both queues", jobs, got)
	}

	target := func(context.Context) (*Target, error) {
		return &Target{Tables: awsops.TablesFor(stack), Queues: awsops.QueuesFor(stack), DB: awsops.QuietNotFound(cp.DB), SQS: cp.SQS, Events: cp.Events,
			SNS: denyingTopics{TopicsAPI: cp.SNS, denied: denied}, Stack: stack, Region: cfg.Region}, nil
	}
	ios, in, _, errOut := iostreams.Test()
	ios.SetTTY(true, false, false)
	in.WriteString("no\n")
	if err := teardownRun(ctx, &TeardownOptions{IO: ios, Target: target, Now: time.Now, Wait: time.Minute}); err == nil {
		t.Fatal("teardown went on without the stack name typed")
	}
	if !strings.Contains(errOut.String(), "sns subscription "+jobs+" -> "+queueARN(stack)) || !strings.Contains(errOut.String(), "3 tables and 2 queues and 1 other resource") {
		t.Errorf("the confirmation does not list the subscription to %s:\n%s", jobs, errOut)
	}

	// A dry run lists the subscription, and removes nothing.
	ios, _, out, errOut := iostreams.Test()
	if err := teardownRun(ctx, &TeardownOptions{IO: ios, Target: target, Now: time.Now, Wait: time.Minute, DryRun: true}); err != nil {
		t.Fatalf("teardown --dry-run: %v\n%s", err, errOut)
	}
	if !strings.Contains(out.String(), "would delete sns subscription "+jobs+" -> "+queueARN(stack)+"\n") {
		t.Errorf("teardown --dry-run does not list the subscription to %s:\n%s", jobs, out)
	}
	if got := subsOf(jobs); len(got) != 2 {
		t.Fatalf("subscriptions of %s after teardown --dry-run: %v; want both queues", jobs, got)
	}
	dryPlan := strings.ReplaceAll(out.String(), "would delete ", "")

	ios, _, out, errOut = iostreams.Test()
	// --sns-topic adds to what the policy names: the same topic again, and
	// one that does not exist (a typo), which is a warning.
	typo := "arn:aws:sns:" + cfg.Region + ":123456789012:" + randomStack("typo")
	opts := &TeardownOptions{IO: ios, Target: target, Now: time.Now, Wait: time.Minute, Yes: true, JSON: true}
	opts.SNSTopics = []string{jobs, typo}
	if err := teardownRun(ctx, opts); err != nil {
		t.Fatalf("teardown: %v\n%s", err, errOut)
	}
	var res TeardownResult
	if err := json.Unmarshal(out.Bytes(), &res); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	if !slices.Contains(res.Deleted, awsops.Change{Kind: awsops.KindSubscription, Name: jobs + " -> " + queueARN(stack)}) {
		t.Errorf("--json deleted %v; want the subscription to %s", res.Deleted, jobs)
	}
	// The dry run listed them in the order teardown deleted them: the
	// subscription first, before the queue it sends to.
	var deleted strings.Builder
	for _, c := range res.Deleted {
		deleted.WriteString(c.String() + "\n")
	}
	if deleted.String() != dryPlan || !strings.HasPrefix(dryPlan, "sns subscription ") {
		t.Errorf("teardown --dry-run listed:\n%s\nteardown deleted, in order:\n%s", dryPlan, &deleted)
	}
	if len(res.UnreadableTopics) != 1 || res.UnreadableTopics[0].Topic != denied || !strings.Contains(res.UnreadableTopics[0].Fix, "aws sns unsubscribe") {
		t.Errorf("--json unreadableTopics %+v; want %s with what to run", res.UnreadableTopics, denied)
	}
	teardownAsDocumented(t, out.String())
	if !strings.Contains(errOut.String(), "warning: SNS topic "+typo+" given to --sns-topic does not exist") {
		t.Errorf("no warning for the topic %s that does not exist:\n%s", typo, errOut)
	}
	if !strings.Contains(errOut.String(), "warning: could not list the subscriptions of SNS topic "+denied) {
		t.Errorf("no warning for %s:\n%s", denied, errOut)
	}
	if got := subsOf(jobs); !slices.Equal(got, []string{queueARN(other)}) {
		t.Errorf("subscriptions of %s after teardown: %v; want only the other stack's queue %s", jobs, got, queueARN(other))
	}
}

// TestTeardownUnsubscribesAQueueThatIsAlreadyGone: the queue's
// subscriptions were looked for only while the queue existed (its policy
// names the topics, its ARN is the endpoint), so once the queue was
// deleted first (by hand, or by a teardown of a socks from before it
// removed them) teardown found nothing and the subscription stayed,
// sending to nowhere. Teardown now builds the queue's ARN from the
// account and region, finds the account's subscriptions whose endpoint it
// is, lists them in --json and removes them, and only them: another
// queue's subscription to the same topic stays. On moto.
func TestTeardownUnsubscribesAQueueThatIsAlreadyGone(t *testing.T) {
	cfg, moto := emulatortest.MotoAWS(t)
	cp := awsops.NewControlPlane(cfg, awsops.Endpoints{All: moto})
	snsc := cp.SNS.(*sns.Client)
	stack, other := randomStack("tdgone"), randomStack("tdgoneother")
	ctx := t.Context()
	tp, err := snsc.CreateTopic(ctx, &sns.CreateTopicInput{Name: aws.String(randomStack("jobs"))})
	if err != nil {
		t.Fatal(err)
	}
	jobs := aws.ToString(tp.TopicArn)
	for _, s := range []string{stack, other} {
		makeData(t, cp.DB, cp.SQS, s, s)
		q := awsops.QueuesFor(s)
		p := awsops.Producers{Topics: []string{jobs}}
		plan, err := awsops.CheckProducers(ctx, cp.Events, cp.SNS, cp.SQS, q, p)
		if err != nil {
			t.Fatal(err)
		}
		if err := awsops.CreateProducers(ctx, cp.Events, cp.SNS, cp.SQS, q, p, plan); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			_, _ = awsops.DeleteProducers(ctx, cp.Events, cp.SNS, cp.SQS, q, p)
		})
	}
	queueARN := func(stack string) string {
		return "arn:aws:sqs:" + cfg.Region + ":123456789012:" + awsops.QueuesFor(stack).Main
	}
	subsOf := func(topic string) []string {
		t.Helper()
		out, err := snsc.ListSubscriptionsByTopic(ctx, &sns.ListSubscriptionsByTopicInput{TopicArn: aws.String(topic)})
		if err != nil {
			t.Fatal(err)
		}
		var eps []string
		for _, s := range out.Subscriptions {
			eps = append(eps, aws.ToString(s.Endpoint))
		}
		return eps
	}
	// The queues went first.
	if err := awsops.DeleteQueues(ctx, cp.SQS, awsops.QueuesFor(stack)); err != nil {
		t.Fatal(err)
	}
	if got := subsOf(jobs); len(got) != 2 {
		t.Fatalf("subscriptions of %s before teardown: %v; want both queues", jobs, got)
	}

	ios, _, out, errOut := iostreams.Test()
	opts := &TeardownOptions{IO: ios, Now: time.Now, Wait: time.Minute, Yes: true, JSON: true}
	opts.Target = func(context.Context) (*Target, error) {
		return &Target{Tables: awsops.TablesFor(stack), Queues: awsops.QueuesFor(stack), DB: awsops.QuietNotFound(cp.DB), SQS: cp.SQS, Events: cp.Events, SNS: cp.SNS,
			Stack: stack, Region: cfg.Region, Deployer: &awsops.Deployer{CP: cp, Spec: awsops.DeploySpec{Stack: stack, Region: cfg.Region}}}, nil
	}
	if err := teardownRun(ctx, opts); err != nil {
		t.Fatalf("teardown: %v\n%s", err, errOut)
	}
	var res TeardownResult
	if err := json.Unmarshal(out.Bytes(), &res); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	if !slices.Contains(res.Deleted, awsops.Change{Kind: awsops.KindSubscription, Name: jobs + " -> " + queueARN(stack)}) {
		t.Errorf("--json deleted %v; want the subscription to %s of the queue that is gone", res.Deleted, jobs)
	}
	if got := subsOf(jobs); !slices.Equal(got, []string{queueARN(other)}) {
		t.Errorf("subscriptions of %s after teardown: %v; want only the other stack's queue %s", jobs, got, queueARN(other))
	}
}

// unknownAccount fails GetCallerIdentity, as STS does with expired
// credentials or an endpoint that cannot be reached.
type unknownAccount struct{}

func (unknownAccount) GetCallerIdentity(context.Context, *sts.GetCallerIdentityInput, ...func(*sts.Options)) (*sts.GetCallerIdentityOutput, error) {
	return nil, &smithy.GenericAPIError{Code: "ExpiredToken", Message: "The security token included in the request is expired"}
}

// TestTeardownOfAGoneQueueGoesOnWhenTheAccountIsUnknown: the ARN a gone
// queue had is built from the account STS names; when STS fails, teardown
// still deletes the rest of the stack, and says that it could not look
// for the queue's subscriptions and what to run. On moto.
func TestTeardownOfAGoneQueueGoesOnWhenTheAccountIsUnknown(t *testing.T) {
	cfg, moto := emulatortest.MotoAWS(t)
	cp := awsops.NewControlPlane(cfg, awsops.Endpoints{All: moto})
	stack := randomStack("tdnosts")
	ctx := t.Context()
	makeData(t, cp.DB, cp.SQS, stack, stack)
	if err := awsops.DeleteQueues(ctx, cp.SQS, awsops.QueuesFor(stack)); err != nil {
		t.Fatal(err)
	}
	noSTS := *cp
	noSTS.STS = unknownAccount{}
	ios, _, out, errOut := iostreams.Test()
	opts := &TeardownOptions{IO: ios, Now: time.Now, Wait: time.Minute, Yes: true, JSON: true}
	opts.Target = func(context.Context) (*Target, error) {
		return &Target{Tables: awsops.TablesFor(stack), Queues: awsops.QueuesFor(stack), DB: awsops.QuietNotFound(cp.DB), SQS: cp.SQS, Events: cp.Events, SNS: cp.SNS,
			Stack: stack, Region: cfg.Region, Deployer: &awsops.Deployer{CP: &noSTS, Spec: awsops.DeploySpec{Stack: stack, Region: cfg.Region}}}, nil
	}
	if err := teardownRun(ctx, opts); err != nil {
		t.Fatalf("teardown with STS failing: %v\n%s", err, errOut)
	}
	var res TeardownResult
	if err := json.Unmarshal(out.Bytes(), &res); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	if !slices.Contains(res.Deleted, awsops.Change{Kind: awsops.KindTable, Name: awsops.TablesFor(stack).Connections}) {
		t.Errorf("--json deleted %v; want the stack's tables", res.Deleted)
	}
	if !strings.Contains(errOut.String(), "could not look for the SNS subscriptions of queue "+awsops.QueuesFor(stack).Main) || !strings.Contains(errOut.String(), "aws sns unsubscribe") {
		t.Errorf("teardown did not say it could not look for the gone queue's subscriptions:\n%s", errOut)
	}
}

// denyingListSubscriptions refuses sns:ListSubscriptions, as IAM does for
// an operator whose policy grants only what a live queue needs.
type denyingListSubscriptions struct{ awsops.TopicsAPI }

func (denyingListSubscriptions) ListSubscriptions(context.Context, *sns.ListSubscriptionsInput, ...func(*sns.Options)) (*sns.ListSubscriptionsOutput, error) {
	return nil, &snstypes.AuthorizationErrorException{Message: aws.String("User is not authorized to perform: SNS:ListSubscriptions")}
}

// TestTeardownJSONCarriesTheGoneQueuesWarnings: the warnings about the
// subscriptions of a queue that is gone (the account's subscriptions
// could not be listed; the account, and so the ARN the queue had, could
// not be learned) went to standard error only, so a script reading
// --json saw a clean teardown. They are in "notes" now, on each run while
// the permission is missing, also on the run that finds nothing to
// delete, in the shape docs/json.md shows. On moto.
func TestTeardownJSONCarriesTheGoneQueuesWarnings(t *testing.T) {
	cfg, moto := emulatortest.MotoAWS(t)
	cp := awsops.NewControlPlane(cfg, awsops.Endpoints{All: moto})
	stack := randomStack("tdnotes")
	ctx := t.Context()
	makeData(t, cp.DB, cp.SQS, stack, stack)
	if err := awsops.DeleteQueues(ctx, cp.SQS, awsops.QueuesFor(stack)); err != nil {
		t.Fatal(err)
	}
	noSTS := *cp
	noSTS.STS = unknownAccount{}
	for _, c := range []struct {
		name, want string
		cp         *awsops.ControlPlane
	}{
		{"without sns:ListSubscriptions, deleting the tables", "listing the account's SNS subscriptions", cp},
		{"without sns:ListSubscriptions, with nothing left to delete", "listing the account's SNS subscriptions", cp},
		{"when the account is unknown", "could not look for the SNS subscriptions of queue " + awsops.QueuesFor(stack).Main, &noSTS},
	} {
		t.Run(c.name, func(t *testing.T) {
			ios, _, out, errOut := iostreams.Test()
			opts := &TeardownOptions{IO: ios, Now: time.Now, Wait: time.Minute, Yes: true, JSON: true}
			opts.Target = func(context.Context) (*Target, error) {
				return &Target{Tables: awsops.TablesFor(stack), Queues: awsops.QueuesFor(stack), DB: awsops.QuietNotFound(cp.DB), SQS: cp.SQS, Events: cp.Events,
					SNS: denyingListSubscriptions{cp.SNS}, Stack: stack, Region: cfg.Region, Deployer: &awsops.Deployer{CP: c.cp, Spec: awsops.DeploySpec{Stack: stack, Region: cfg.Region}}}, nil
			}
			if err := teardownRun(ctx, opts); err != nil {
				t.Fatalf("teardown: %v\n%s", err, errOut)
			}
			if !strings.Contains(errOut.String(), "warning: ") || !strings.Contains(errOut.String(), c.want) {
				t.Errorf("standard error does not warn %q:\n%s", c.want, errOut)
			}
			var res struct {
				Notes []string `json:"notes"`
			}
			if err := json.Unmarshal(out.Bytes(), &res); err != nil {
				t.Fatalf("%v: %s", err, out)
			}
			if !slices.ContainsFunc(res.Notes, func(n string) bool { return strings.Contains(n, c.want) && strings.Contains(n, "aws sns unsubscribe") }) {
				t.Errorf("--json notes %q; want the warning %q with what to run\n%s", res.Notes, c.want, out)
			}
			teardownAsDocumented(t, out.String())
		})
	}
}

// manySubscriptions is an account with many SNS subscriptions: its
// ListSubscriptions gives extra pages of other queues' subscriptions,
// then the real listing. Before the real listing it calls before (nil:
// none).
type manySubscriptions struct {
	awsops.TopicsAPI
	extra  int
	before func()
}

func (m manySubscriptions) ListSubscriptions(ctx context.Context, in *sns.ListSubscriptionsInput, optFns ...func(*sns.Options)) (*sns.ListSubscriptionsOutput, error) {
	page := 0
	if t, ok := strings.CutPrefix(aws.ToString(in.NextToken), "extra-"); ok {
		page, _ = strconv.Atoi(t)
	} else if in.NextToken != nil {
		return m.TopicsAPI.ListSubscriptions(ctx, in, optFns...)
	}
	if page == m.extra {
		if m.before != nil {
			m.before()
		}
		return m.TopicsAPI.ListSubscriptions(ctx, &sns.ListSubscriptionsInput{}, optFns...)
	}
	out := &sns.ListSubscriptionsOutput{NextToken: aws.String("extra-" + strconv.Itoa(page+1))}
	for i := range 100 {
		topic := "arn:aws:sns:us-east-1:123456789012:other-" + strconv.Itoa(page)
		out.Subscriptions = append(out.Subscriptions, snstypes.Subscription{
			SubscriptionArn: aws.String(topic + ":sub-" + strconv.Itoa(i)), TopicArn: aws.String(topic),
			Protocol: aws.String("sqs"), Endpoint: aws.String("arn:aws:sqs:us-east-1:123456789012:other-" + strconv.Itoa(i)),
		})
	}
	return out, nil
}

// TestTeardownShowsItsSearchOfTheAccountsSubscriptionsOnATerminalOnly:
// when the queue is gone, teardown looks for its subscriptions among
// every SNS subscription of the account, page by page, which on a large
// account takes minutes, and showed nothing meanwhile: a terminal that
// looked frozen. On a terminal the spinner now says how many pages and
// subscriptions it has read; piped, or with --json, nothing more is
// written, and the output is the same. On moto.
func TestTeardownShowsItsSearchOfTheAccountsSubscriptionsOnATerminalOnly(t *testing.T) {
	cfg, moto := emulatortest.MotoAWS(t)
	cp := awsops.NewControlPlane(cfg, awsops.Endpoints{All: moto})
	const shown = "2 pages, 200 subscriptions read"
	for _, c := range []struct {
		name      string
		tty, json bool
	}{
		{"on a terminal", true, false},
		{"piped", false, false},
		{"with --json on a terminal", true, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			stack := randomStack("tdsearch")
			ctx := t.Context()
			makeData(t, cp.DB, cp.SQS, stack, stack)
			if err := awsops.DeleteQueues(ctx, cp.SQS, awsops.QueuesFor(stack)); err != nil {
				t.Fatal(err)
			}
			ios, _, out, _ := iostreams.Test()
			ios.SetTTY(false, c.tty, c.tty)
			ios.SetNoColor(true)
			errOut := &lockedbuf.Buffer{}
			ios.ErrOut = errOut
			tp := manySubscriptions{TopicsAPI: cp.SNS, extra: 2}
			// On a terminal, the last page waits for the spinner to
			// show the two pages read before it.
			saw := false
			if c.tty && !c.json {
				tp.before = func() {
					for deadline := time.Now().Add(time.Minute); !saw && time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
						saw = strings.Contains(errOut.String(), shown)
					}
				}
			}
			opts := &TeardownOptions{IO: ios, Now: time.Now, Wait: time.Minute, Yes: true, JSON: c.json}
			opts.Target = func(context.Context) (*Target, error) {
				return &Target{Tables: awsops.TablesFor(stack), Queues: awsops.QueuesFor(stack), DB: awsops.QuietNotFound(cp.DB), SQS: cp.SQS, Events: cp.Events, SNS: tp,
					Stack: stack, Region: cfg.Region, Deployer: &awsops.Deployer{CP: cp, Spec: awsops.DeploySpec{Stack: stack, Region: cfg.Region}}}, nil
			}
			if err := teardownRun(ctx, opts); err != nil {
				t.Fatalf("teardown: %v\n%s", err, errOut)
			}
			if tp.before != nil && !saw {
				t.Errorf("stderr %q; want the spinner to show %q while teardown reads the account's subscriptions", errOut, shown)
			}
			if !c.tty || c.json {
				if got := errOut.String(); strings.Contains(got, "subscriptions read") || strings.Contains(got, "looking through") {
					t.Errorf("stderr %q; want no progress of the search", got)
				}
			}
			connections := awsops.Change{Kind: awsops.KindTable, Name: awsops.TablesFor(stack).Connections}
			if c.json {
				var res TeardownResult
				if err := json.Unmarshal(out.Bytes(), &res); err != nil {
					t.Fatalf("%v: %s", err, out)
				}
				if !slices.Contains(res.Deleted, connections) {
					t.Errorf("--json deleted %v; want the stack's tables", res.Deleted)
				}
				teardownAsDocumented(t, out.String())
			} else if !strings.Contains(out.String(), "deleted "+connections.String()+"\n") || strings.Contains(out.String(), "subscriptions read") {
				t.Errorf("stdout %q; want the deleted tables, and no progress", out)
			}
		})
	}
}
