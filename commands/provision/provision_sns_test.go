package provision

import (
	"context"
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sns"

	"github.com/socks-dev/socks/awsops"
	"github.com/socks-dev/socks/internal/emulatortest"
	"github.com/socks-dev/socks/iostreams"
)

// listedAsPending lists every SQS subscription as "PendingConfirmation",
// as SNS lists one that waits for the queue's owner to confirm it (moto
// confirms them at once), and answers a Subscribe without
// ReturnSubscriptionArn "pending confirmation", as SNS answers one it
// holds so.
type listedAsPending struct{ awsops.TopicsAPI }

func (p listedAsPending) Subscribe(ctx context.Context, in *sns.SubscribeInput, optFns ...func(*sns.Options)) (*sns.SubscribeOutput, error) {
	out, err := p.TopicsAPI.Subscribe(ctx, in, optFns...)
	if err == nil && !in.ReturnSubscriptionArn && aws.ToString(in.Protocol) == "sqs" {
		out.SubscriptionArn = aws.String("pending confirmation")
	}
	return out, err
}

func (p listedAsPending) ListSubscriptionsByTopic(ctx context.Context, in *sns.ListSubscriptionsByTopicInput, optFns ...func(*sns.Options)) (*sns.ListSubscriptionsByTopicOutput, error) {
	out, err := p.TopicsAPI.ListSubscriptionsByTopic(ctx, in, optFns...)
	if err == nil {
		for i := range out.Subscriptions {
			if aws.ToString(out.Subscriptions[i].Protocol) == "sqs" {
				out.Subscriptions[i].SubscriptionArn = aws.String("PendingConfirmation")
			}
		}
	}
	return out, err
}

// TestTheProvisionThatSubscribesSaysWhenTheSubscriptionIsPending: the
// provision that subscribed the queue to a topic of another account said
// it had made it, and exited 0, although SNS held it pending confirmation
// and delivered nothing; only the next run said so. It now reads what it
// subscribed as the next run would: it says what it created, then that
// the subscription waits for confirmation and how to give it, and exits
// 1; --json has the created changes and the error. On moto.
func TestTheProvisionThatSubscribesSaysWhenTheSubscriptionIsPending(t *testing.T) {
	cfg, moto := emulatortest.MotoAWS(t)
	cp := awsops.NewControlPlane(cfg, awsops.Endpoints{All: moto})
	tp, err := cp.SNS.(*sns.Client).CreateTopic(t.Context(), &sns.CreateTopicInput{Name: aws.String(randomStack("jobs"))})
	if err != nil {
		t.Fatal(err)
	}
	jobs := aws.ToString(tp.TopicArn)
	for _, asJSON := range []bool{false, true} {
		stack := randomStack("pendingsub")
		tables, queues := awsops.TablesFor(stack), awsops.QueuesFor(stack)
		t.Cleanup(func() {
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			_, _ = awsops.DeleteProducers(ctx, cp.Events, cp.SNS, cp.SQS, queues, awsops.Producers{Topics: []string{jobs}})
			_ = awsops.DeleteQueues(ctx, cp.SQS, queues)
			_ = awsops.DeleteTables(ctx, cp.DB, tables, time.Minute)
		})
		ios, _, out, errOut := iostreams.Test()
		opts := &Options{IO: ios, Now: time.Now, Wait: time.Minute, BrokerTimeout: awsops.DefaultBrokerTimeout, JSON: asJSON}
		opts.SNSTopics = []string{jobs}
		opts.Target = func(context.Context) (*Target, error) {
			return &Target{Tables: tables, Queues: queues, DB: cp.DB, SQS: cp.SQS, Events: cp.Events, SNS: listedAsPending{cp.SNS}, Stack: stack, Region: cfg.Region}, nil
		}
		err := provisionRun(t.Context(), opts)
		if err == nil || !strings.Contains(err.Error(), "pending confirmation") {
			t.Fatalf("provision (--json %v) whose subscription is left pending: %v; want it to say so", asJSON, err)
		}
		sub := awsops.Change{Kind: awsops.KindSubscription, Name: jobs + " -> queue " + queues.Main}
		if !asJSON {
			// The drift block says how to confirm it, once: the final
			// error repeated the whole fix.
			fix := "aws sns confirm-subscription --topic-arn " + jobs
			if !strings.Contains(out.String(), "created "+sub.String()) || strings.Count(errOut.String()+err.Error(), fix) != 1 || !strings.Contains(errOut.String(), fix) {
				t.Errorf("provision with the subscription left pending: %v\nstdout:\n%s\nstderr:\n%s\nwant what it created, and how to confirm it said once, in the drift block", err, out, errOut)
			}
			continue
		}
		if !strings.Contains(err.Error(), "aws sns confirm-subscription --topic-arn "+jobs) {
			t.Errorf("--json: error %v; want how to confirm it, which --json says nowhere else", err)
		}
		// Once in each place: the JSON's error on stdout, and the error
		// Main prints on stderr (docs/json.md: "the error on standard
		// error as well"); no drift block besides it.
		fix := "aws sns confirm-subscription --topic-arn " + jobs
		if strings.Count(out.String(), fix) != 1 || strings.Contains(errOut.String(), fix) || strings.Count(err.Error(), fix) != 1 {
			t.Errorf("--json: stdout:\n%s\nstderr before the error:\n%s\nerror: %v\nwant how to confirm it once in the JSON and once in the error", out, errOut, err)
		}
		var res struct {
			Changes []awsops.Change `json:"changes"`
			Error   string          `json:"error"`
		}
		if err := json.Unmarshal(out.Bytes(), &res); err != nil || !slices.Contains(res.Changes, sub) || !strings.Contains(res.Error, "confirm-subscription") {
			t.Errorf("--json of provision with the subscription left pending (%v): %s", err, out)
		}
	}
}
