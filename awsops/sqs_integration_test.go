package awsops

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"
)

func contains(s, sub string) bool { return strings.Contains(s, sub) }

func TestPoisonMessageGoesToTheDeadLettersAfterTheConfiguredReceives(t *testing.T) {
	q := newTestQueue(t, 0) // store.DefaultMaxReceives: 5
	id, err := q.Send(t.Context(), []byte(`{"users":["Friendless"],"topics":["updates"],"body":"poison"}`))
	if err != nil {
		t.Fatal(err)
	}
	// A broker that fails on the message every time: it never deletes it,
	// and it comes back at once (visibility 0).
	for n := 1; n <= 5; n++ {
		msgs, err := q.Receive(t.Context(), 1, 0, 2*time.Second)
		if err != nil || len(msgs) != 1 {
			t.Fatalf("receive %d: %d messages, %v", n, len(msgs), err)
		}
		if msgs[0].ID != id || msgs[0].ReceiveCount != n {
			t.Fatalf("receive %d: got %s with count %d", n, msgs[0].ID, msgs[0].ReceiveCount)
		}
	}
	// The sixth receive moves it instead of handing it out.
	if msgs, err := q.Receive(t.Context(), 1, 0, time.Second); err != nil || len(msgs) != 0 {
		t.Fatalf("receive 6: %d messages, %v; want none", len(msgs), err)
	}
	dls, err := q.ListDeadLetters(t.Context(), 0)
	if err != nil || len(dls) != 1 {
		t.Fatalf("ListDeadLetters = %d, %v; want 1", len(dls), err)
	}
	d := dls[0]
	if d.ID != id || d.ReceiveCount != 6 || d.Reason != "received 6 times without being handled (max 5)" {
		t.Errorf("dead letter %s count %d reason %q", d.ID, d.ReceiveCount, d.Reason)
	}
	st, err := q.Stats(t.Context())
	if err != nil || st.Visible != 0 || st.InFlight != 0 || st.Dead != 1 {
		t.Errorf("Stats = %+v, %v; want only 1 dead", st, err)
	}
}

func TestRedrivePolicyIsTheSafetyNetBehindTheBroker(t *testing.T) {
	// The queue's redrive policy moves a message after MaxReceives+2 = 3
	// receives; a broker that never dead-letters by itself (limit 100,
	// or one that crashes on the message) still cannot loop forever.
	api := testSQSClient(t)
	queues := newTestQueues(t, api, QueueSettings{MaxReceives: 1})
	q := NewSQSQueue(api, queues, SQSOptions{MaxReceives: 100})
	id, err := q.Send(t.Context(), []byte(`{"crash":true}`))
	if err != nil {
		t.Fatal(err)
	}
	for n := 1; n <= 3; n++ {
		msgs, err := q.Receive(t.Context(), 1, 0, 2*time.Second)
		if err != nil || len(msgs) != 1 || msgs[0].ReceiveCount != n {
			t.Fatalf("receive %d: %+v, %v", n, msgs, err)
		}
	}
	if msgs, err := q.Receive(t.Context(), 1, 0, time.Second); err != nil || len(msgs) != 0 {
		t.Fatalf("receive 4: %d messages, %v; want none", len(msgs), err)
	}
	dls, err := q.ListDeadLetters(t.Context(), 0)
	if err != nil || len(dls) != 1 {
		t.Fatalf("ListDeadLetters = %d, %v; want 1", len(dls), err)
	}
	if dls[0].ID != id || !contains(dls[0].Reason, "redrive policy") {
		t.Errorf("dead letter %s with reason %q; want %s moved by the redrive policy", dls[0].ID, dls[0].Reason, id)
	}
	if n, err := q.Redrive(t.Context(), []string{id}); err != nil || n != 1 {
		t.Fatalf("Redrive = %d, %v", n, err)
	}
	msgs, err := q.Receive(t.Context(), 1, time.Minute, 2*time.Second)
	if err != nil || len(msgs) != 1 || string(msgs[0].Body) != `{"crash":true}` || msgs[0].ReceiveCount != 1 {
		t.Fatalf("after Redrive: %+v, %v; want the message with a fresh count", msgs, err)
	}
}

func TestQueuesAreCreatedWithTheDocumentedSettings(t *testing.T) {
	api := testSQSClient(t)
	queues := newTestQueues(t, api, QueueSettings{BrokerTimeout: 40 * time.Second})
	// Idempotent: a second run updates instead of failing.
	mainURL, deadURL, err := EnsureQueues(t.Context(), api, queues, QueueSettings{BrokerTimeout: 40 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	out, err := api.GetQueueAttributes(t.Context(), &sqs.GetQueueAttributesInput{
		QueueUrl:       aws.String(mainURL),
		AttributeNames: []types.QueueAttributeName{types.QueueAttributeNameAll},
	})
	if err != nil {
		t.Fatal(err)
	}
	if v := out.Attributes["VisibilityTimeout"]; v != "240" {
		t.Errorf("VisibilityTimeout = %s, want 240 (6 x 40 s)", v)
	}
	dead, err := api.GetQueueAttributes(t.Context(), &sqs.GetQueueAttributesInput{
		QueueUrl:       aws.String(deadURL),
		AttributeNames: []types.QueueAttributeName{types.QueueAttributeNameQueueArn},
	})
	if err != nil {
		t.Fatal(err)
	}
	policy := out.Attributes["RedrivePolicy"]
	if !contains(policy, dead.Attributes["QueueArn"]) || !contains(strings.ReplaceAll(policy, `"`, ""), "maxReceiveCount:7") {
		t.Errorf("RedrivePolicy = %s, want the DLQ %s and maxReceiveCount 7", policy, dead.Attributes["QueueArn"])
	}
}

func TestMissingQueuesAreExplained(t *testing.T) {
	api := testSQSClient(t)
	queues := QueuesFor(uniqueName("missing"))
	q := NewSQSQueue(api, queues, SQSOptions{})
	_, err := q.Send(t.Context(), []byte(`{}`))
	want := "queue " + queues.Main + " does not exist: run `socks provision`"
	if err == nil || !contains(err.Error(), want) {
		t.Errorf("Send to a missing queue = %v, want %q", err, want)
	}
	var missing *types.QueueDoesNotExist
	if !errors.As(err, &missing) {
		t.Errorf("the error does not unwrap to *types.QueueDoesNotExist: %#v", err)
	}
}

// TestAMessageTheSQSQueueDeadLettersByItselfIsReported: SQSQueue.Receive moved
// a message past its receives (brokers that died on it every time) to the
// dead letters with a reason, but wrote no report, so `publish --wait`
// on AWS ran out of time where the local queue, which records one, said
// at once that the message was dead-lettered, and why.
func TestAMessageTheSQSQueueDeadLettersByItselfIsReported(t *testing.T) {
	api := testSQSClient(t)
	reports := newTestStore(t)
	q := NewSQSQueue(api, newTestQueues(t, api, QueueSettings{}), SQSOptions{Reports: reports})
	if _, err := q.Send(t.Context(), []byte(`{"id":"m-crash","users":["Friendless"],"topics":["updates"],"body":"poison"}`)); err != nil {
		t.Fatal(err)
	}
	for n := 1; n <= 5; n++ {
		if msgs, err := q.Receive(t.Context(), 1, 0, 2*time.Second); err != nil || len(msgs) != 1 {
			t.Fatalf("receive %d: %d messages, %v", n, len(msgs), err)
		}
	}
	if msgs, err := q.Receive(t.Context(), 1, 0, time.Second); err != nil || len(msgs) != 0 {
		t.Fatalf("receive 6: %d messages, %v; want none", len(msgs), err)
	}
	rep, err := reports.GetReport(t.Context(), "m-crash")
	if err != nil {
		t.Fatalf("the dead-lettered message has no report: %v", err)
	}
	if !rep.DeadLettered || len(rep.Errors) != 1 || rep.Errors[0] != "received 6 times without being handled (max 5)" {
		t.Errorf("report %+v; want it dead-lettered with the queue's reason", rep)
	}
}
