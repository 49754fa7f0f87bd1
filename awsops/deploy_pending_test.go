package awsops

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsmiddleware "github.com/aws/aws-sdk-go-v2/aws/middleware"
	"github.com/aws/aws-sdk-go-v2/service/sns"
	"github.com/aws/smithy-go/middleware"

	"github.com/socks-dev/socks/internal/emulatortest"
)

// listedAsPending makes SNS list every subscription of an SQS queue as
// "PendingConfirmation", as it lists one that a topic of another account
// waits to have confirmed (moto confirms them at once), and answer a
// Subscribe without ReturnSubscriptionArn "pending confirmation", as it
// answers one it holds so.
func listedAsPending(cfg aws.Config) aws.Config {
	cfg.APIOptions = append(slices.Clone(cfg.APIOptions), func(s *middleware.Stack) error {
		return s.Initialize.Add(middleware.InitializeMiddlewareFunc("listedAsPending", func(ctx context.Context, in middleware.InitializeInput, next middleware.InitializeHandler) (middleware.InitializeOutput, middleware.Metadata, error) {
			out, md, err := next.HandleInitialize(ctx, in)
			if sub, ok := out.Result.(*sns.SubscribeOutput); ok && err == nil {
				if params, ok := in.Parameters.(*sns.SubscribeInput); ok && !params.ReturnSubscriptionArn && aws.ToString(params.Protocol) == "sqs" {
					sub.SubscriptionArn = aws.String("pending confirmation")
				}
			}
			if err != nil || awsmiddleware.GetOperationName(ctx) != "ListSubscriptionsByTopic" {
				return out, md, err
			}
			if list, ok := out.Result.(*sns.ListSubscriptionsByTopicOutput); ok {
				for i := range list.Subscriptions {
					if aws.ToString(list.Subscriptions[i].Protocol) == "sqs" {
						list.Subscriptions[i].SubscriptionArn = aws.String("PendingConfirmation")
					}
				}
			}
			return out, md, err
		}), middleware.After)
	})
	return cfg
}

// TestADeployWithASubscriptionPendingConfirmationSaysWhatToDo: deploy
// reported the queue's subscription pending confirmation as drift of the
// producers step that it put right ("update"), at every run, though it
// cannot: it made nothing, and never reached "nothing to do". It is now
// what provision makes of it: no update, and, every other resource in
// place, an UnconfirmedError (the stack serves) naming the topic and how
// to confirm it. Once it is confirmed, deploy has nothing to do.
func TestADeployWithASubscriptionPendingConfirmationSaysWhatToDo(t *testing.T) {
	t.Parallel()
	cfg, moto := emulatortest.MotoAWS(t)
	topic, err := motoPlane(t).SNS.(*sns.Client).CreateTopic(t.Context(), &sns.CreateTopicInput{Name: aws.String(uniqueName("jobs"))})
	if err != nil {
		t.Fatal(err)
	}
	topicARN := aws.ToString(topic.TopicArn)
	stack := uniqueName("pending")
	deployer := func(cp *ControlPlane) *Deployer {
		d := testDeployer(t, cp, stack, shellZip(t))
		d.Spec.Producers = Producers{Topics: []string{topicARN}}
		return d
	}
	removeStackAtCleanup(t, motoPlane(t), deployer(motoPlane(t)))
	deploy(t, deployer(motoPlane(t)), false)

	pending := NewControlPlane(listedAsPending(cfg), Endpoints{All: moto})
	for _, dryRun := range []bool{true, false} {
		res, err := deployer(pending).Deploy(t.Context(), dryRun)
		var unconfirmed *UnconfirmedError
		if !errors.As(err, &unconfirmed) {
			t.Fatalf("deploy (dry run %v) with the subscription pending: %v; want an UnconfirmedError", dryRun, err)
		}
		msg := err.Error()
		for _, want := range []string{topicARN, "pending confirmation", "aws sns confirm-subscription --topic-arn " + topicARN, "socks dlq"} {
			if !strings.Contains(msg, want) {
				t.Errorf("err = %q; want it to say %q", msg, want)
			}
		}
		if got := changed(res); len(got) != 0 {
			t.Errorf("deploy (dry run %v) with the subscription pending changes %v; want nothing", dryRun, got)
		}
		if res.WebSocketURL == "" || !Serves(err) {
			t.Errorf("deploy (dry run %v): url %q, Serves %v; want the stack's URLs and a stack that serves", dryRun, res.WebSocketURL, Serves(err))
		}
	}
	// A dry run that would still change something does not say the
	// stack is deployed.
	d := deployer(pending)
	d.Spec.Timeout = d.Spec.withDefaults().Timeout + time.Second
	res, err := d.Deploy(t.Context(), true)
	var unconfirmed *UnconfirmedError
	if !errors.As(err, &unconfirmed) || len(changed(res)) == 0 {
		t.Fatalf("dry run with another function timeout: %v, changes %v; want an UnconfirmedError and the function's update", err, changed(res))
	}
	if msg := err.Error(); strings.Contains(msg, "is deployed") || !strings.Contains(msg, "aws sns confirm-subscription --topic-arn "+topicARN) {
		t.Errorf("err = %q; want the command, and not that the stack is deployed when the dry run would still update it", msg)
	}
	if got := changed(deploy(t, deployer(motoPlane(t)), true)); len(got) != 0 {
		t.Errorf("with the subscription confirmed, deploy would change %v; want nothing", got)
	}
}

// TestTheFirstDeployOfASubscriptionLeftPendingSaysHowToConfirmIt: the
// deploy that subscribed the queue to a topic of another account said the
// stack was deployed although SNS held the subscription pending
// confirmation (and delivered nothing): only the next deploy, which reads
// the subscriptions, said so. The deploy that subscribes now reads what
// it made the same way and ends with the UnconfirmedError, saying how to
// confirm it.
func TestTheFirstDeployOfASubscriptionLeftPendingSaysHowToConfirmIt(t *testing.T) {
	t.Parallel()
	cfg, moto := emulatortest.MotoAWS(t)
	topic, err := motoPlane(t).SNS.(*sns.Client).CreateTopic(t.Context(), &sns.CreateTopicInput{Name: aws.String(uniqueName("jobs"))})
	if err != nil {
		t.Fatal(err)
	}
	topicARN := aws.ToString(topic.TopicArn)
	pending := NewControlPlane(listedAsPending(cfg), Endpoints{All: moto})
	d := testDeployer(t, pending, uniqueName("firstpending"), shellZip(t))
	d.Spec.Producers = Producers{Topics: []string{topicARN}}
	removeStackAtCleanup(t, motoPlane(t), d)
	res, err := d.Deploy(t.Context(), false)
	var unconfirmed *UnconfirmedError
	if !errors.As(err, &unconfirmed) || !strings.Contains(err.Error(), "aws sns confirm-subscription --topic-arn "+topicARN) {
		t.Fatalf("the deploy that made the subscription, left pending: %v; want an UnconfirmedError with the command to confirm it", err)
	}
	if res.WebSocketURL == "" || !Serves(err) || !res.Changed() {
		t.Errorf("url %q, Serves %v, changed %v; want the stack's URLs, a stack that serves, and what was made", res.WebSocketURL, Serves(err), res.Changed())
	}
}
