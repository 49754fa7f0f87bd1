package dlq

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/socks-dev/socks/awsops"
	"github.com/socks-dev/socks/commands/cmdutil"
	"github.com/socks-dev/socks/internal/emulatortest"
)

// TestShowOfADeadLetterAnotherCommandHoldsSaysItIsHeld runs on ElasticMQ:
// while another command (another dlq command's walk, or any consumer of
// the dead-letter queue) has the dead letter in flight, SQS hides it, and
// `dlq show ID` answered that there is no such dead letter (exit 3). It
// says that dead letters are held, for how long, and to run it again
// then, exiting 1 as redrive does; once they are let go it shows it.
func TestShowOfADeadLetterAnotherCommandHoldsSaysItIsHeld(t *testing.T) {
	api := awsops.NewSQS(awsops.LocalConfig(), emulatortest.SQS(t))
	var b [6]byte
	_, _ = rand.Read(b[:])
	queues := awsops.QueuesFor("dlqshow-" + hex.EncodeToString(b[:]))
	_, deadURL, err := awsops.EnsureQueues(t.Context(), api, queues, awsops.QueueSettings{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := awsops.DeleteQueues(ctx, api, queues); err != nil {
			t.Errorf("deleting queues: %v", err)
		}
	})
	q := awsops.NewSQSQueue(api, queues, awsops.SQSOptions{})
	ctx := t.Context()
	if _, err := q.Send(ctx, []byte(`{"topics":["t"],"body":1}`)); err != nil {
		t.Fatal(err)
	}
	msgs, err := q.Receive(ctx, 1, time.Minute, time.Second)
	if err != nil || len(msgs) != 1 {
		t.Fatalf("receive: %d, %v", len(msgs), err)
	}
	if err := q.DeadLetter(ctx, msgs[0], "test"); err != nil {
		t.Fatal(err)
	}
	id := msgs[0].ID

	// Another command holds it: received from the dead-letter queue, as
	// a walk does, for 30 s.
	held, err := api.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{QueueUrl: aws.String(deadURL), MaxNumberOfMessages: 10, VisibilityTimeout: 30, WaitTimeSeconds: 1})
	if err != nil || len(held.Messages) != 1 {
		t.Fatalf("holding the dead letter: %d, %v", len(held.Messages), err)
	}
	ios, _, out, _ := streams()
	opts := &ShowOptions{IO: ios, Queue: qf(q), Now: time.Now, ID: id}
	err = showRun(ctx, opts)
	if exit := (*cmdutil.ExitCodeError)(nil); errors.As(err, &exit) && exit.Code != cmdutil.ExitError {
		t.Errorf("show of a held dead letter exits %d (%v); want 1, as a redrive of it", exit.Code, err)
	}
	if err == nil || !strings.Contains(err.Error(), "1 dead letter was held by another") || !strings.Contains(err.Error(), "30s") || !strings.Contains(err.Error(), "run it again") {
		t.Errorf("show of a held dead letter: %v; want it said to be held, for up to 30s, and to run it again then", err)
	}
	if out.Len() != 0 {
		t.Errorf("stdout %q; want nothing", out)
	}

	// Let go, it is shown.
	if _, err := api.ChangeMessageVisibility(ctx, &sqs.ChangeMessageVisibilityInput{QueueUrl: aws.String(deadURL), ReceiptHandle: held.Messages[0].ReceiptHandle, VisibilityTimeout: 0}); err != nil {
		t.Fatal(err)
	}
	if err := showRun(ctx, opts); err != nil || !strings.Contains(out.String(), id) {
		t.Errorf("show once let go: %v, stdout %q; want the dead letter", err, out)
	}
}

// heldQueue returns an SQS queue on ElasticMQ with a dead letter for each
// of bodies, their IDs, and its dead-letter queue's URL.
func heldQueue(t *testing.T, bodies ...string) (*awsops.SQSQueue, *sqs.Client, []string, string) {
	t.Helper()
	return sqsDeadLetters(t, awsops.SQSOptions{}, bodies...)
}

// sqsDeadLetters is heldQueue with the queue's options.
func sqsDeadLetters(t *testing.T, opts awsops.SQSOptions, bodies ...string) (*awsops.SQSQueue, *sqs.Client, []string, string) {
	t.Helper()
	api := awsops.NewSQS(awsops.LocalConfig(), emulatortest.SQS(t))
	var b [6]byte
	_, _ = rand.Read(b[:])
	queues := awsops.QueuesFor("dlqheld-" + hex.EncodeToString(b[:]))
	_, deadURL, err := awsops.EnsureQueues(t.Context(), api, queues, awsops.QueueSettings{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := awsops.DeleteQueues(ctx, api, queues); err != nil {
			t.Errorf("deleting queues: %v", err)
		}
	})
	q := awsops.NewSQSQueue(api, queues, opts)
	ctx := t.Context()
	var ids []string
	for _, body := range bodies {
		if _, err := q.Send(ctx, []byte(body)); err != nil {
			t.Fatal(err)
		}
		msgs, err := q.Receive(ctx, 1, time.Minute, time.Second)
		if err != nil || len(msgs) != 1 {
			t.Fatalf("receive: %d, %v", len(msgs), err)
		}
		if err := q.DeadLetter(ctx, msgs[0], "test"); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, msgs[0].ID)
	}
	return q, api, ids, deadURL
}

// TestListWhileAnotherCommandHoldsDeadLettersSaysSo runs on ElasticMQ:
// while another command has dead letters in flight, SQS hides them, and
// `dlq list` showed the others only, saying nothing. It says on stderr how
// many were held, for how long, and to run it again then, as show,
// redrive and purge do (--json too: its array has no place for a count);
// once they are let go it lists them all, with no note.
func TestListWhileAnotherCommandHoldsDeadLettersSaysSo(t *testing.T) {
	q, api, ids, deadURL := heldQueue(t, `{"topics":["t"],"body":1}`, `{"topics":["t"],"body":2}`)
	ctx := t.Context()
	held, err := api.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{QueueUrl: aws.String(deadURL), MaxNumberOfMessages: 1, VisibilityTimeout: 30, WaitTimeSeconds: 1})
	if err != nil || len(held.Messages) != 1 {
		t.Fatalf("holding a dead letter: %d, %v", len(held.Messages), err)
	}
	for _, asJSON := range []bool{false, true} {
		ios, _, out, errOut := streams()
		if err := listRun(ctx, &ListOptions{IO: ios, Queue: qf(q), Now: time.Now, JSON: asJSON}); err != nil {
			t.Fatalf("--json %v: %v", asJSON, err)
		}
		listed := 0
		for _, id := range ids {
			if strings.Contains(out.String(), id) {
				listed++
			}
		}
		if listed != 1 {
			t.Errorf("--json %v: stdout %q lists %d of the dead letters; want the one not held", asJSON, out, listed)
		}
		note := errOut.String()
		if !strings.Contains(note, "1 dead letter was held by another") || !strings.Contains(note, "30s") || !strings.Contains(note, "run it again") || strings.Contains(note, "no dead letters") {
			t.Errorf("--json %v: stderr %q; want a note that 1 dead letter was held, for up to 30s, and to run it again then", asJSON, note)
		}
	}

	// Let go, both are listed, with no note.
	if _, err := api.ChangeMessageVisibility(ctx, &sqs.ChangeMessageVisibilityInput{QueueUrl: aws.String(deadURL), ReceiptHandle: held.Messages[0].ReceiptHandle, VisibilityTimeout: 0}); err != nil {
		t.Fatal(err)
	}
	ios, _, out, errOut := streams()
	if err := listRun(ctx, &ListOptions{IO: ios, Queue: qf(q), Now: time.Now}); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), ids[0]) || !strings.Contains(out.String(), ids[1]) || errOut.Len() != 0 {
		t.Errorf("once let go: stdout %q, stderr %q; want both listed and no note", out, errOut)
	}
}
