package awsops

import (
	"context"
	"errors"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/socks-dev/socks/store"
)

// slowDLQ is a dead-letter queue on a fake clock, each call taking step
// of it, with another command's walk beside: whatever dead letter is
// visible when a call comes, its hold lapsed, the other walk receives
// (a new receipt), as a concurrent `dlq redrive --all` would.
type slowDLQ struct {
	SQSAPI
	mu   sync.Mutex
	now  time.Time
	step time.Duration
	// visibleAt and receipt of each dead letter still in the queue, by ID.
	visibleAt map[string]time.Time
	receipt   map[string]string
	// held are those this walk received: the other walk takes one
	// only once its hold has lapsed.
	held map[string]bool
	// stolen, when set, is taken by the other walk at stealAt whatever
	// its hold (as after this process stood still past it).
	stolen  string
	stealAt time.Time
	// sent are the IDs sent back to the main queue; taken, those the
	// other walk received.
	sent, taken []string
	// heldElsewhere is how many more dead letters another walk held
	// when this one began (in flight, never received here).
	heldElsewhere int
}

func newSlowDLQ(n int, step time.Duration) *slowDLQ {
	f := &slowDLQ{now: time.Unix(1e9, 0), step: step, visibleAt: map[string]time.Time{}, receipt: map[string]string{}, held: map[string]bool{}}
	for i := range n {
		id := "d" + strconv.Itoa(i)
		f.visibleAt[id] = f.now
		f.receipt[id] = id + "-r0"
	}
	return f
}

func (f *slowDLQ) clock() time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.now
}

// tick is each call: its time passes, then the other walk takes the
// dead letters whose hold has lapsed.
func (f *slowDLQ) tick() {
	f.now = f.now.Add(f.step)
	if _, ok := f.visibleAt[f.stolen]; ok && !f.stealAt.IsZero() && !f.now.Before(f.stealAt) {
		f.stealAt = time.Time{}
		f.visibleAt[f.stolen] = f.now
	}
	for id, at := range f.visibleAt {
		if f.held[id] && !f.now.Before(at) {
			f.taken = append(f.taken, id)
			f.receipt[id] = id + "-other"
			f.visibleAt[id] = f.now.Add(deadLetterHold)
		}
	}
}

func (f *slowDLQ) GetQueueUrl(_ context.Context, in *sqs.GetQueueUrlInput, _ ...func(*sqs.Options)) (*sqs.GetQueueUrlOutput, error) {
	return &sqs.GetQueueUrlOutput{QueueUrl: aws.String("http://127.0.0.1:9324/000000000000/" + aws.ToString(in.QueueName))}, nil
}

func (f *slowDLQ) GetQueueAttributes(context.Context, *sqs.GetQueueAttributesInput, ...func(*sqs.Options)) (*sqs.GetQueueAttributesOutput, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return &sqs.GetQueueAttributesOutput{Attributes: map[string]string{
		string(types.QueueAttributeNameApproximateNumberOfMessages):           strconv.Itoa(len(f.visibleAt)),
		string(types.QueueAttributeNameApproximateNumberOfMessagesNotVisible): strconv.Itoa(f.heldElsewhere),
	}}, nil
}

func (f *slowDLQ) ReceiveMessage(_ context.Context, in *sqs.ReceiveMessageInput, _ ...func(*sqs.Options)) (*sqs.ReceiveMessageOutput, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.tick()
	ids := make([]string, 0, len(f.visibleAt))
	for id := range f.visibleAt {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	var out sqs.ReceiveMessageOutput
	for _, id := range ids {
		if len(out.Messages) == int(in.MaxNumberOfMessages) {
			break
		}
		if f.now.Before(f.visibleAt[id]) {
			continue
		}
		f.receipt[id] = id + "-r" + strconv.Itoa(len(f.taken)+len(f.sent))
		f.held[id] = true
		f.visibleAt[id] = f.now.Add(time.Duration(in.VisibilityTimeout) * time.Second)
		out.Messages = append(out.Messages, types.Message{MessageId: aws.String(id), ReceiptHandle: aws.String(f.receipt[id]), Body: aws.String(`{"id":"` + id + `"}`)})
	}
	return &out, nil
}

// idOf is the dead letter whose current receipt is r, or "".
func (f *slowDLQ) idOf(r string) string {
	for id, cur := range f.receipt {
		if cur == r {
			if _, ok := f.visibleAt[id]; ok {
				return id
			}
		}
	}
	return ""
}

// ChangeMessageVisibilityBatch takes no time of the fake clock: SQSQueue
// makes these calls concurrently, and the receives, sends and deletes,
// one after another, are the time a walk and its batches take.
func (f *slowDLQ) ChangeMessageVisibilityBatch(_ context.Context, in *sqs.ChangeMessageVisibilityBatchInput, _ ...func(*sqs.Options)) (*sqs.ChangeMessageVisibilityBatchOutput, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out sqs.ChangeMessageVisibilityBatchOutput
	for _, e := range in.Entries {
		id := f.idOf(aws.ToString(e.ReceiptHandle))
		if id == "" {
			out.Failed = append(out.Failed, types.BatchResultErrorEntry{Id: e.Id, Code: aws.String("ReceiptHandleIsInvalid"), Message: aws.String("stale"), SenderFault: true})
			continue
		}
		f.visibleAt[id] = f.now.Add(time.Duration(e.VisibilityTimeout) * time.Second)
		out.Successful = append(out.Successful, types.ChangeMessageVisibilityBatchResultEntry{Id: e.Id})
	}
	return &out, nil
}

func (f *slowDLQ) SendMessageBatch(_ context.Context, in *sqs.SendMessageBatchInput, _ ...func(*sqs.Options)) (*sqs.SendMessageBatchOutput, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.tick()
	var out sqs.SendMessageBatchOutput
	for _, e := range in.Entries {
		f.sent = append(f.sent, aws.ToString(e.MessageBody))
		out.Successful = append(out.Successful, types.SendMessageBatchResultEntry{Id: e.Id, MessageId: aws.String("m" + strconv.Itoa(len(f.sent)))})
	}
	return &out, nil
}

func (f *slowDLQ) DeleteMessageBatch(_ context.Context, in *sqs.DeleteMessageBatchInput, _ ...func(*sqs.Options)) (*sqs.DeleteMessageBatchOutput, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.tick()
	var out sqs.DeleteMessageBatchOutput
	for _, e := range in.Entries {
		id := f.idOf(aws.ToString(e.ReceiptHandle))
		if id == "" {
			out.Failed = append(out.Failed, types.BatchResultErrorEntry{Id: e.Id, Code: aws.String("ReceiptHandleIsInvalid"), Message: aws.String("stale"), SenderFault: true})
			continue
		}
		delete(f.visibleAt, id)
		out.Successful = append(out.Successful, types.DeleteMessageBatchResultEntry{Id: e.Id})
	}
	return &out, nil
}

// TestARedriveOutlastingItsHoldKeepsItsDeadLetters: a redrive whose walk
// and batches take longer than the 30 s hold (each call 0.5 s of a fake
// clock, 400 dead letters) extends the hold of the dead letters it has
// not finished, so another command's walk beside it receives none of
// them, and each is sent back once. Before, the other walk received the
// later ones once the hold lapsed, and both sent them.
func TestARedriveOutlastingItsHoldKeepsItsDeadLetters(t *testing.T) {
	f := newSlowDLQ(400, 500*time.Millisecond)
	q := NewSQSQueue(f, QueuesFor("fake"), SQSOptions{})
	q.now = f.clock
	n, err := q.Redrive(t.Context(), nil)
	if err != nil || n != 400 {
		t.Errorf("Redrive = %d, %v; want 400, nil", n, err)
	}
	if len(f.taken) > 0 {
		t.Errorf("the other walk received %d dead letters the redrive held (%v); want none: the hold is kept until each is deleted", len(f.taken), f.taken[:min(len(f.taken), 5)])
	}
	if len(f.sent) != 400 || len(f.visibleAt) != 0 {
		t.Errorf("sent %d, left %d; want 400 sent, none left", len(f.sent), len(f.visibleAt))
	}
}

// TestAPurgeOutlastingItsHoldKeepsItsDeadLetters is the same for a purge
// whose walk alone outlasts the hold (700 dead letters: 35 s).
func TestAPurgeOutlastingItsHoldKeepsItsDeadLetters(t *testing.T) {
	f := newSlowDLQ(700, 500*time.Millisecond)
	q := NewSQSQueue(f, QueuesFor("fake"), SQSOptions{})
	q.now = f.clock
	n, err := q.PurgeDeadLetters(t.Context(), nil)
	if err != nil || n != 700 {
		t.Errorf("PurgeDeadLetters = %d, %v; want 700, nil", n, err)
	}
	if len(f.taken) > 0 {
		t.Errorf("the other walk received %d dead letters the purge held; want none", len(f.taken))
	}
}

// TestARedriveSendsNotADeadLetterWhoseHoldItCouldNotExtend: a dead letter
// another command took from the redrive (SQS refuses to extend its hold:
// the receipt is stale) is not sent back, so not delivered twice; the
// redrive says it was taken.
func TestARedriveSendsNotADeadLetterWhoseHoldItCouldNotExtend(t *testing.T) {
	f := newSlowDLQ(400, 500*time.Millisecond)
	// d99 is redriven last (IDs sort as strings); it is taken just after
	// the walk (41 calls).
	f.stolen, f.stealAt = "d99", f.now.Add(21*time.Second)
	q := NewSQSQueue(f, QueuesFor("fake"), SQSOptions{})
	q.now = f.clock
	n, err := q.Redrive(t.Context(), nil)
	if n != 399 || !errors.Is(err, store.ErrDeadLettersHeld) || !strings.Contains(err.Error(), "1 dead letter was taken by another socks command") {
		t.Errorf("Redrive = %d, %v; want 399 and that 1 dead letter was taken by another command", n, err)
	}
	if slices.Contains(f.sent, `{"id":"d99"}`) {
		t.Errorf("sent d99 back though another command took it; want it not sent")
	}
	if !slices.Contains(f.taken, "d99") || len(f.sent) != 399 {
		t.Errorf("taken %v, sent %d; want d99 taken by the other walk, the 399 others sent", f.taken, len(f.sent))
	}
}

// TestARedriveWithATakenDeadLetterStillSaysOthersWereHeld: a redrive that
// skipped a dead letter another command took, and that began with others
// held by another walk (so not redriven), says both: before, the taken one
// hid the held ones, and the operator was not told to run it again later.
func TestARedriveWithATakenDeadLetterStillSaysOthersWereHeld(t *testing.T) {
	f := newSlowDLQ(400, 500*time.Millisecond)
	f.heldElsewhere = 2
	f.stolen, f.stealAt = "d99", f.now.Add(21*time.Second)
	q := NewSQSQueue(f, QueuesFor("fake"), SQSOptions{})
	q.now = f.clock
	n, err := q.Redrive(t.Context(), nil)
	if n != 399 || !errors.Is(err, store.ErrDeadLettersHeld) ||
		!strings.Contains(err.Error(), "1 dead letter was taken by another socks command") ||
		!strings.Contains(err.Error(), "2 dead letters were held by") {
		t.Errorf("Redrive = %d, %v; want 399 and that 1 dead letter was taken and 2 were held by another command", n, err)
	}
}

// TestAPurgeWithATakenDeadLetterStillSaysOthersWereHeld is the same for a
// purge.
func TestAPurgeWithATakenDeadLetterStillSaysOthersWereHeld(t *testing.T) {
	f := newSlowDLQ(400, 500*time.Millisecond)
	f.heldElsewhere = 2
	f.stolen, f.stealAt = "d99", f.now.Add(21*time.Second)
	q := NewSQSQueue(f, QueuesFor("fake"), SQSOptions{})
	q.now = f.clock
	n, err := q.PurgeDeadLetters(t.Context(), nil)
	if n != 399 || !errors.Is(err, store.ErrDeadLettersHeld) ||
		!strings.Contains(err.Error(), "1 dead letter was taken by another socks command") ||
		!strings.Contains(err.Error(), "2 dead letters were held by") {
		t.Errorf("PurgeDeadLetters = %d, %v; want 399 and that 1 dead letter was taken and 2 were held by another command", n, err)
	}
}
