package e2e

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/eventbridge"
	evtypes "github.com/aws/aws-sdk-go-v2/service/eventbridge/types"
	"github.com/aws/aws-sdk-go-v2/service/sns"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/socks-dev/socks/internal/emulatortest"
)

// recordEnv, set to 1, makes TestProvisionedProducersDeliverToTheQueue
// write what moto delivered into testdata/events/ (the recorded messages
// the broker tests take off the queue). Without it the test checks that
// moto still delivers messages of the recorded shape.
const recordEnv = "SOCKS_RECORD_EVENTS"

// motoStack is an AWS stack whose every service is moto's.
type motoStack struct {
	*awsStack
	events *eventbridge.Client
	sns    *sns.Client
	sqs    *sqs.Client
}

func newMotoStack(t *testing.T, prefix string) *motoStack {
	moto := emulatortest.Moto(t)
	cfg := aws.Config{Region: "us-east-1", Credentials: credentials.NewStaticCredentialsProvider("test", "test", "")}
	return &motoStack{
		awsStack: &awsStack{t: t, env: awsEnv(t, map[string]string{"SOCKS_ENDPOINT_URL": moto}), name: uniqueStack(prefix)},
		events:   eventbridge.NewFromConfig(cfg, func(o *eventbridge.Options) { o.BaseEndpoint = aws.String(moto) }),
		sns:      sns.NewFromConfig(cfg, func(o *sns.Options) { o.BaseEndpoint = aws.String(moto) }),
		sqs:      sqs.NewFromConfig(cfg, func(o *sqs.Options) { o.BaseEndpoint = aws.String(moto) }),
	}
}

func (s *motoStack) topic(name string) string {
	s.t.Helper()
	out, err := s.sns.CreateTopic(s.t.Context(), &sns.CreateTopicInput{Name: aws.String(s.name + "-" + name)})
	if err != nil {
		s.t.Fatal(err)
	}
	return aws.ToString(out.TopicArn)
}

func (s *motoStack) queueURL() string {
	s.t.Helper()
	out, err := s.sqs.GetQueueUrl(s.t.Context(), &sqs.GetQueueUrlInput{QueueName: aws.String(s.name + "-envelopes")})
	if err != nil {
		s.t.Fatal(err)
	}
	return aws.ToString(out.QueueUrl)
}

// drain receives every message on the queue until one whose body contains
// last has arrived, deleting them, and returns the bodies in order.
func (s *motoStack) drain(last string) []string {
	s.t.Helper()
	u := s.queueURL()
	var bodies []string
	for deadline := time.Now().Add(receiveTimeout); time.Now().Before(deadline); {
		out, err := s.sqs.ReceiveMessage(s.t.Context(), &sqs.ReceiveMessageInput{QueueUrl: aws.String(u), MaxNumberOfMessages: 10, WaitTimeSeconds: 1})
		if err != nil {
			s.t.Fatal(err)
		}
		for _, m := range out.Messages {
			bodies = append(bodies, aws.ToString(m.Body))
			if _, err := s.sqs.DeleteMessage(s.t.Context(), &sqs.DeleteMessageInput{QueueUrl: aws.String(u), ReceiptHandle: m.ReceiptHandle}); err != nil {
				s.t.Fatal(err)
			}
		}
		if len(bodies) > 0 && strings.Contains(bodies[len(bodies)-1], last) {
			return bodies
		}
	}
	s.t.Fatalf("no message containing %q arrived within %s; got %q", last, receiveTimeout, bodies)
	return nil
}

// putEvents sends the entries `socks publish --as eventbridge` printed, or
// entries made here, as `aws events put-events --entries` does.
func (s *motoStack) putEvents(entries []evtypes.PutEventsRequestEntry) {
	s.t.Helper()
	out, err := s.events.PutEvents(s.t.Context(), &eventbridge.PutEventsInput{Entries: entries})
	if err != nil || out.FailedEntryCount != 0 {
		s.t.Fatalf("put-events: %v %+v", err, out)
	}
}

func entry(source, detailType, detail string) evtypes.PutEventsRequestEntry {
	return evtypes.PutEventsRequestEntry{Source: aws.String(source), DetailType: aws.String(detailType), Detail: aws.String(detail)}
}

// policy returns the statements of the queue's policy.
func (s *motoStack) policy() []map[string]any {
	s.t.Helper()
	out, err := s.sqs.GetQueueAttributes(s.t.Context(), &sqs.GetQueueAttributesInput{QueueUrl: aws.String(s.queueURL()), AttributeNames: []sqstypes.QueueAttributeName{sqstypes.QueueAttributeNamePolicy}})
	if err != nil {
		s.t.Fatal(err)
	}
	var pol struct{ Statement []map[string]any }
	if err := json.Unmarshal([]byte(out.Attributes["Policy"]), &pol); err != nil {
		s.t.Fatalf("queue policy %q: %v", out.Attributes["Policy"], err)
	}
	return pol.Statement
}

// record writes body as testdata/events/NAME under SOCKS_RECORD_EVENTS=1;
// otherwise it checks that body has the keys of the recorded file.
func record(t *testing.T, name, body string) {
	t.Helper()
	path := filepath.Join(moduleDir, "testdata", "events", name)
	if os.Getenv(recordEnv) == "1" {
		if err := os.WriteFile(path, []byte(body+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	rec, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v: run with %s=1 to record it", err, recordEnv)
	}
	if got, want := keys(t, body), keys(t, string(rec)); !slices.Equal(got, want) {
		t.Errorf("moto delivers %s with keys %v; %s has %v (run with %s=1 to record again)", name, got, path, want, recordEnv)
	}
}

func keys(t *testing.T, body string) []string {
	var m map[string]json.RawMessage
	if err := json.Unmarshal([]byte(body), &m); err != nil {
		t.Fatalf("%q is not a JSON object: %v", body, err)
	}
	var out []string
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// TestProvisionedProducersDeliverToTheQueue provisions, on moto, an
// EventBridge rule and an SNS subscription for the envelopes queue, checks
// the policy that lets them send, sends through them what `socks publish
// --as` prints and what a site sends, and records what lands in the queue.
func TestProvisionedProducersDeliverToTheQueue(t *testing.T) {
	t.Parallel()
	s := newMotoStack(t, "producers")
	topic := s.topic("jobs")
	flags := []string{"--eventbridge-rule", "--source", "socks", "--source", "com.example.site", "--source", "com.example.jobs",
		"--detail-type", "envelope", "--detail-type", "EntityChanged", "--detail-type", "Job finished", "--sns-topic", topic}
	t.Cleanup(func() { s.cleanup(append([]string{"teardown", "--yes"}, flags[:1]...)...) })
	out := s.must(append([]string{"provision"}, flags...)...)
	for _, want := range []string{"created eventbridge rule default/" + s.name + "-envelopes", "created rule target", "created sns subscription " + topic, "created queue policy statement"} {
		if !strings.Contains(out, want) {
			t.Errorf("provision says:\n%s\nwant %q", out, want)
		}
	}

	// moto delivers EventBridge and SNS messages to a queue whatever its
	// policy says (checked by hand: with the policy removed both still
	// land), so the policy is checked here by its contents, as AWS would
	// read it.
	t.Run("the queue policy lets only the rule and the topic send", func(t *testing.T) {
		rule, err := s.events.DescribeRule(t.Context(), &eventbridge.DescribeRuleInput{Name: aws.String(s.name + "-envelopes")})
		if err != nil {
			t.Fatal(err)
		}
		want := map[string]string{"events.amazonaws.com": aws.ToString(rule.Arn), "sns.amazonaws.com": topic}
		for _, st := range s.policy() {
			principal, _ := st["Principal"].(map[string]any)["Service"].(string)
			cond, _ := st["Condition"].(map[string]any)["ArnEquals"].(map[string]any)
			if want[principal] == "" || cond["aws:SourceArn"] != want[principal] || st["Action"] != "sqs:SendMessage" || st["Effect"] != "Allow" {
				t.Errorf("statement %v", st)
				continue
			}
			delete(want, principal)
		}
		if len(want) != 0 {
			t.Errorf("no statement for %v", want)
		}
	})
	t.Run("a second run changes nothing", func(t *testing.T) {
		if out := s.must(append([]string{"provision"}, flags...)...); !strings.HasPrefix(out, "nothing to do") {
			t.Errorf("second provision:\n%s", out)
		}
	})

	t.Run("the entry publish --as eventbridge prints lands in the queue; a non-matching source does not", func(t *testing.T) {
		var entries []struct{ Source, DetailType, Detail string }
		printed := runSocks(t, nil, "publish", "--topic", "updates", "--geek", "Friendless", "--body", `{"stats":"refreshed"}`, "--as", "eventbridge")
		if err := json.Unmarshal([]byte(printed.stdout), &entries); err != nil || len(entries) != 1 {
			t.Fatalf("publish --as eventbridge printed %s (%v)", printed, err)
		}
		e := entries[0]
		s.putEvents([]evtypes.PutEventsRequestEntry{entry("com.example.other", e.DetailType, e.Detail)})
		s.putEvents([]evtypes.PutEventsRequestEntry{entry(e.Source, e.DetailType, e.Detail)})
		bodies := s.drain(`"refreshed"`)
		if len(bodies) != 1 {
			t.Fatalf("the queue got %q; want only the matching event", bodies)
		}
		record(t, "eventbridge-envelope.json", bodies[0])
	})
	t.Run("the site's own events land in the queue as they are", func(t *testing.T) {
		for _, ev := range []struct{ file, source, detailType, detail string }{
			{"eventbridge-entity.json", "com.example.site", "EntityChanged", `{"entityId":"myTestEntityId","message":"hello from EventBridge"}`},
			{"eventbridge-user.json", "com.example.jobs", "Job finished", `{"entityId":"jobs","userId":"Friendless","key":"reports/42.csv"}`},
			{"eventbridge-user-missing.json", "com.example.jobs", "Job finished", `{"entityId":"jobs","key":"reports/43.csv"}`},
		} {
			s.putEvents([]evtypes.PutEventsRequestEntry{entry(ev.source, ev.detailType, ev.detail)})
			bodies := s.drain(ev.detail[len(ev.detail)-12:])
			if len(bodies) != 1 {
				t.Fatalf("the queue got %q", bodies)
			}
			record(t, ev.file, bodies[0])
		}
	})
	t.Run("what publish --as sns prints, published to the topic, lands in the queue as a notification", func(t *testing.T) {
		printed := runSocks(t, nil, "publish", "--topic", "jobs", "--geek", "Friendless", "--body", `{"key":"reports/42.csv"}`, "--as", "sns")
		if printed.code != 0 {
			t.Fatalf("%s", printed)
		}
		for _, m := range []struct{ file, message string }{
			{"sns-envelope.json", strings.TrimSpace(printed.stdout)},
			{"sns-not-envelope.json", "job 42 finished"},
		} {
			if _, err := s.sns.Publish(t.Context(), &sns.PublishInput{TopicArn: aws.String(topic), Message: aws.String(m.message)}); err != nil {
				t.Fatal(err)
			}
			bodies := s.drain("Notification")
			var n struct{ Type, Message, TopicArn string }
			if len(bodies) != 1 || json.Unmarshal([]byte(bodies[0]), &n) != nil || n.Type != "Notification" || n.Message != m.message || n.TopicArn != topic {
				t.Fatalf("the queue got %q", bodies)
			}
			record(t, m.file, bodies[0])
		}
	})
	t.Run("teardown removes the rule and the subscription", func(t *testing.T) {
		// Without --eventbridge-rule and --sns-topic, as the README shows:
		// the rule is found by its name and target, the topic in the
		// queue's policy.
		if r := s.run("teardown", "--yes"); r.code != 0 {
			t.Fatalf("%s", r)
		}
		if _, err := s.events.DescribeRule(t.Context(), &eventbridge.DescribeRuleInput{Name: aws.String(s.name + "-envelopes")}); err == nil {
			t.Error("the rule is still there")
		}
		subs, err := s.sns.ListSubscriptionsByTopic(t.Context(), &sns.ListSubscriptionsByTopicInput{TopicArn: aws.String(topic)})
		if err != nil || len(subs.Subscriptions) != 0 {
			t.Errorf("subscriptions left: %+v, %v", subs, err)
		}
	})
}

// TestRawSNSDeliveryLandsAsTheBareMessage subscribes with --sns-raw.
func TestRawSNSDeliveryLandsAsTheBareMessage(t *testing.T) {
	t.Parallel()
	s := newMotoStack(t, "rawsns")
	topic := s.topic("jobs")
	t.Cleanup(func() { s.cleanup("teardown", "--yes") })
	s.must("provision", "--sns-topic", topic, "--sns-raw")
	printed := runSocks(t, nil, "publish", "--topic", "jobs", "--geek", "Friendless", "--body", `{"key":"reports/42.csv"}`, "--as", "sns")
	if _, err := s.sns.Publish(t.Context(), &sns.PublishInput{TopicArn: aws.String(topic), Message: aws.String(strings.TrimSpace(printed.stdout))}); err != nil {
		t.Fatal(err)
	}
	bodies := s.drain("reports/42.csv")
	if len(bodies) != 1 || bodies[0] != strings.TrimSpace(printed.stdout) {
		t.Fatalf("the queue got %q; want exactly %s", bodies, printed.stdout)
	}
	record(t, "sns-raw-envelope.json", bodies[0])
	t.Run("provision without --sns-raw reports the drift and changes nothing", func(t *testing.T) {
		r := s.run("provision", "--sns-topic", topic)
		if r.code != 1 || !strings.Contains(r.stderr, "raw message delivery\n  is:   true\n  want: false") {
			t.Errorf("%s", r)
		}
	})
}
