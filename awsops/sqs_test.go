package awsops

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"
	"github.com/aws/smithy-go"

	"github.com/socks-dev/socks/internal/lockedbuf"
	"github.com/socks-dev/socks/store"
)

// fakeSQS implements the SQSAPI methods a test sets.
type fakeSQS struct {
	SQSAPI
	sendBatch   func(*sqs.SendMessageBatchInput) (*sqs.SendMessageBatchOutput, error)
	attributes  func(*sqs.GetQueueAttributesInput) (*sqs.GetQueueAttributesOutput, error)
	receive     func(*sqs.ReceiveMessageInput) (*sqs.ReceiveMessageOutput, error)
	deleteBatch func(*sqs.DeleteMessageBatchInput) (*sqs.DeleteMessageBatchOutput, error)
	// released gets the receipts each ChangeMessageVisibilityBatch makes
	// visible again (timeout 0), under mu (the calls are concurrent).
	mu       sync.Mutex
	released []string
	// denied names queues whose GetQueueUrl is refused; resolved counts
	// the GetQueueUrl calls by name.
	denied   map[string]bool
	resolved map[string]int
}

func (f *fakeSQS) GetQueueAttributes(_ context.Context, in *sqs.GetQueueAttributesInput, _ ...func(*sqs.Options)) (*sqs.GetQueueAttributesOutput, error) {
	return f.attributes(in)
}

func (f *fakeSQS) ReceiveMessage(_ context.Context, in *sqs.ReceiveMessageInput, _ ...func(*sqs.Options)) (*sqs.ReceiveMessageOutput, error) {
	return f.receive(in)
}

func (f *fakeSQS) DeleteMessageBatch(ctx context.Context, in *sqs.DeleteMessageBatchInput, _ ...func(*sqs.Options)) (*sqs.DeleteMessageBatchOutput, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return f.deleteBatch(in)
}

func (f *fakeSQS) GetQueueUrl(_ context.Context, in *sqs.GetQueueUrlInput, _ ...func(*sqs.Options)) (*sqs.GetQueueUrlOutput, error) {
	name := aws.ToString(in.QueueName)
	if f.resolved == nil {
		f.resolved = make(map[string]int)
	}
	f.resolved[name]++
	if f.denied[name] {
		return nil, &smithy.OperationError{ServiceID: "SQS", OperationName: "GetQueueUrl", Err: &smithy.GenericAPIError{Code: "AccessDenied", Message: "not authorized"}}
	}
	return &sqs.GetQueueUrlOutput{QueueUrl: aws.String("http://127.0.0.1:9324/000000000000/" + aws.ToString(in.QueueName))}, nil
}

func (f *fakeSQS) SendMessageBatch(ctx context.Context, in *sqs.SendMessageBatchInput, _ ...func(*sqs.Options)) (*sqs.SendMessageBatchOutput, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return f.sendBatch(in)
}

func TestSendBatchFailsLoudlyOnPartialFailures(t *testing.T) {
	var sizes []int
	var mu sync.Mutex
	api := &fakeSQS{sendBatch: func(in *sqs.SendMessageBatchInput) (*sqs.SendMessageBatchOutput, error) {
		mu.Lock() // SendBatch makes its calls concurrently
		sizes = append(sizes, len(in.Entries))
		mu.Unlock()
		out := &sqs.SendMessageBatchOutput{}
		for _, e := range in.Entries {
			if strings.Contains(aws.ToString(e.MessageBody), "bad") {
				out.Failed = append(out.Failed, types.BatchResultErrorEntry{
					Id: e.Id, Code: aws.String("InvalidMessageContents"), Message: aws.String("invalid characters"), SenderFault: true,
				})
				continue
			}
			out.Successful = append(out.Successful, types.SendMessageBatchResultEntry{Id: e.Id, MessageId: aws.String("id-" + aws.ToString(e.Id))})
		}
		return out, nil
	}}
	q := NewSQSQueue(api, QueuesFor("fake"), SQSOptions{})
	bodies := make([][]byte, 23)
	for i := range bodies {
		bodies[i] = []byte(`{"ok":true}`)
	}
	bodies[4], bodies[17] = []byte(`{"bad":1}`), []byte(`{"bad":2}`)
	ids, err := q.SendBatch(t.Context(), bodies)
	var be *SendBatchError
	if !errors.As(err, &be) {
		t.Fatalf("SendBatch = %v, want a *SendBatchError", err)
	}
	if len(be.Failed) != 2 || be.Failed[0].Index != 4 || be.Failed[1].Index != 17 {
		t.Errorf("failed entries = %+v, want 4 and 17", be.Failed)
	}
	if !strings.Contains(err.Error(), "message 5: invalid characters (InvalidMessageContents, sender's fault)") ||
		!strings.Contains(err.Error(), "refused 2 of 23 messages") {
		t.Errorf("error %q does not list the failures", err)
	}
	if len(ids) != 23 || ids[4] != "" || ids[17] != "" || ids[0] != "id-0" || ids[22] != "id-22" {
		t.Errorf("ids = %q, want the sent ones in order and blanks for the failures", ids)
	}
	slices.Sort(sizes)
	if len(sizes) != 3 || sizes[0] != 3 || sizes[1] != 10 || sizes[2] != 10 {
		t.Errorf("batch sizes = %v, want 10, 10, 3", sizes)
	}
}

func TestSendBatchSplitsByBytes(t *testing.T) {
	var sizes []int
	var mu sync.Mutex
	api := &fakeSQS{sendBatch: func(in *sqs.SendMessageBatchInput) (*sqs.SendMessageBatchOutput, error) {
		mu.Lock() // SendBatch makes its calls concurrently
		sizes = append(sizes, len(in.Entries))
		mu.Unlock()
		out := &sqs.SendMessageBatchOutput{}
		for _, e := range in.Entries {
			out.Successful = append(out.Successful, types.SendMessageBatchResultEntry{Id: e.Id, MessageId: e.Id})
		}
		return out, nil
	}}
	q := NewSQSQueue(api, QueuesFor("fake"), SQSOptions{})
	big := []byte(`"` + strings.Repeat("x", 400*1024) + `"`)
	if _, err := q.SendBatch(t.Context(), [][]byte{big, big, big, big, big}); err != nil {
		t.Fatal(err)
	}
	slices.Sort(sizes)
	if len(sizes) != 3 || sizes[0] != 1 || sizes[1] != 2 || sizes[2] != 2 {
		t.Errorf("batch sizes = %v, want 2, 2, 1 (at most 1 MiB each)", sizes)
	}
	if _, err := q.SendBatch(t.Context(), [][]byte{{}}); err == nil {
		t.Error("an empty body was accepted")
	}
}

func TestSeconds(t *testing.T) {
	for _, tc := range []struct {
		d    time.Duration
		want int32
	}{
		{0, 0}, {-time.Second, 0}, {time.Millisecond, 1}, {time.Second, 1}, {1500 * time.Millisecond, 2}, {time.Minute, 20},
	} {
		if got := seconds(tc.d, 20*time.Second); got != tc.want {
			t.Errorf("seconds(%s) = %d, want %d", tc.d, got, tc.want)
		}
	}
}

func TestQueueSettings(t *testing.T) {
	var s QueueSettings
	if s.VisibilityTimeout() != 180*time.Second || s.MaxReceiveCount() != 7 {
		t.Errorf("defaults: visibility %s, maxReceiveCount %d; want 180 s and 7", s.VisibilityTimeout(), s.MaxReceiveCount())
	}
	ins := QueuesFor("prod").CreateInputs("arn:aws:sqs:us-east-1:1:prod-envelopes-dlq", QueueSettings{BrokerTimeout: time.Minute})
	if aws.ToString(ins[0].QueueName) != "prod-envelopes-dlq" || aws.ToString(ins[1].QueueName) != "prod-envelopes" {
		t.Fatalf("names %s, %s", aws.ToString(ins[0].QueueName), aws.ToString(ins[1].QueueName))
	}
	main := ins[1].Attributes
	if main["VisibilityTimeout"] != "360" || main["ReceiveMessageWaitTimeSeconds"] != "0" ||
		main["RedrivePolicy"] != `{"deadLetterTargetArn":"arn:aws:sqs:us-east-1:1:prod-envelopes-dlq","maxReceiveCount":"7"}` {
		t.Errorf("main queue attributes = %v", main)
	}
	if ins[0].Attributes["MessageRetentionPeriod"] != "1209600" {
		t.Errorf("dead-letter retention = %s, want 14 days", ins[0].Attributes["MessageRetentionPeriod"])
	}
}

// TestPurgeUsesTheNewestReceiptOfADeadLetterSeenTwice: a walk over many dead
// letters can outlast their hold, so one comes again with a new receipt;
// SQS may keep a message deleted with an older receipt.
func TestPurgeUsesTheNewestReceiptOfADeadLetterSeenTwice(t *testing.T) {
	receives := 0
	var deleted []string
	api := &fakeSQS{
		attributes: func(*sqs.GetQueueAttributesInput) (*sqs.GetQueueAttributesOutput, error) {
			return &sqs.GetQueueAttributesOutput{Attributes: map[string]string{
				string(types.QueueAttributeNameApproximateNumberOfMessages): "2",
			}}, nil
		},
		receive: func(*sqs.ReceiveMessageInput) (*sqs.ReceiveMessageOutput, error) {
			receives++
			msg := func(id, receipt string) types.Message {
				return types.Message{MessageId: aws.String(id), ReceiptHandle: aws.String(receipt), Body: aws.String(`{}`)}
			}
			switch receives {
			case 1:
				return &sqs.ReceiveMessageOutput{Messages: []types.Message{msg("m1", "m1-first")}}, nil
			case 2:
				return &sqs.ReceiveMessageOutput{Messages: []types.Message{msg("m1", "m1-second"), msg("m2", "m2-first")}}, nil
			}
			return &sqs.ReceiveMessageOutput{}, nil
		},
		deleteBatch: func(in *sqs.DeleteMessageBatchInput) (*sqs.DeleteMessageBatchOutput, error) {
			for _, e := range in.Entries {
				deleted = append(deleted, aws.ToString(e.ReceiptHandle))
			}
			return deletedAll(in)
		},
	}
	q := NewSQSQueue(api, QueuesFor("fake"), SQSOptions{})
	n, err := q.PurgeDeadLetters(t.Context(), nil)
	if err != nil || n != 2 {
		t.Fatalf("PurgeDeadLetters = %d, %v; want 2 purged", n, err)
	}
	slices.Sort(deleted)
	if !slices.Equal(deleted, []string{"m1-second", "m2-first"}) {
		t.Errorf("deleted with receipts %q, want the newest of each message", deleted)
	}
}

// TestAPublisherNeedsNoPermissionOnTheDeadLetterQueue: deploy.md gives a
// publisher sqs:GetQueueUrl and sqs:SendMessage on the envelope queue only.
func TestAPublisherNeedsNoPermissionOnTheDeadLetterQueue(t *testing.T) {
	queues := QueuesFor("fake")
	api := &fakeSQS{
		denied: map[string]bool{queues.DeadLetter: true},
		sendBatch: func(in *sqs.SendMessageBatchInput) (*sqs.SendMessageBatchOutput, error) {
			out := &sqs.SendMessageBatchOutput{}
			for _, e := range in.Entries {
				out.Successful = append(out.Successful, types.SendMessageBatchResultEntry{Id: e.Id, MessageId: aws.String("m-" + aws.ToString(e.Id))})
			}
			return out, nil
		},
	}
	q := NewSQSQueue(api, queues, SQSOptions{})
	for range 3 {
		if _, err := q.Send(t.Context(), []byte(`{"body":1}`)); err != nil {
			t.Fatalf("Send = %v, want it to need the envelope queue only", err)
		}
	}
	if api.resolved[queues.Main] != 1 || api.resolved[queues.DeadLetter] != 0 {
		t.Errorf("GetQueueUrl calls = %v, want one for %s and none for %s", api.resolved, queues.Main, queues.DeadLetter)
	}
	_, err := q.ListDeadLetters(t.Context(), 0)
	if err == nil || !strings.Contains(err.Error(), "access denied: the credentials lack permission for GetQueueUrl on queue "+queues.DeadLetter) {
		t.Errorf("ListDeadLetters = %v, want it to say which queue it may not read", err)
	}
}

// TestAFailedDeadLetterMoveKeepsTheRestOfTheBatch: a message received
// over the limit is moved to the dead letters by Receive; when that move
// fails (here the dead-letter queue cannot be resolved) the other messages
// of the same receive must still be returned, not left hidden until their
// visibility timeout with one more receive counted against them.
func TestAFailedDeadLetterMoveKeepsTheRestOfTheBatch(t *testing.T) {
	queues := QueuesFor("fake")
	api := &fakeSQS{
		denied: map[string]bool{queues.DeadLetter: true},
		receive: func(*sqs.ReceiveMessageInput) (*sqs.ReceiveMessageOutput, error) {
			msg := func(id, count string) types.Message {
				return types.Message{MessageId: aws.String(id), ReceiptHandle: aws.String("r-" + id), Body: aws.String(`{"body":1}`),
					Attributes: map[string]string{string(types.MessageSystemAttributeNameApproximateReceiveCount): count}}
			}
			return &sqs.ReceiveMessageOutput{Messages: []types.Message{msg("worn-out", "9"), msg("fresh", "1")}}, nil
		},
	}
	q := NewSQSQueue(api, queues, SQSOptions{MaxReceives: 5})
	msgs, err := q.Receive(t.Context(), 10, time.Minute, 0)
	if err != nil {
		t.Fatalf("Receive = %v; want the fresh message despite the failed move of the other", err)
	}
	if len(msgs) != 1 || msgs[0].ID != "fresh" {
		t.Fatalf("Receive returned %+v; want the fresh message only", msgs)
	}
}

// movingSQS is a fakeSQS that also takes the calls that move a message to
// the dead letters.
type movingSQS struct{ *fakeSQS }

func (movingSQS) ChangeMessageVisibility(context.Context, *sqs.ChangeMessageVisibilityInput, ...func(*sqs.Options)) (*sqs.ChangeMessageVisibilityOutput, error) {
	return &sqs.ChangeMessageVisibilityOutput{}, nil
}
func (movingSQS) SendMessage(context.Context, *sqs.SendMessageInput, ...func(*sqs.Options)) (*sqs.SendMessageOutput, error) {
	return &sqs.SendMessageOutput{MessageId: aws.String("dead-1")}, nil
}
func (movingSQS) DeleteMessage(context.Context, *sqs.DeleteMessageInput, ...func(*sqs.Options)) (*sqs.DeleteMessageOutput, error) {
	return &sqs.DeleteMessageOutput{}, nil
}

// failingReports is a report store whose reads fail.
type failingReports struct{}

func (failingReports) GetReport(context.Context, string) (store.Report, error) {
	return store.Report{}, errors.New("the table did not answer (injected)")
}
func (failingReports) ReplaceReport(context.Context, store.Report) error {
	return errors.New("the table did not answer (injected)")
}

// TestAReportOfADeadLetterThatCannotBeWrittenIsLogged: the queue moves a
// message past its receives to the dead letters itself and records so in
// its report; a failure to write that report was dropped without a word,
// while the broker logs its own report failures at Warn.
func TestAReportOfADeadLetterThatCannotBeWrittenIsLogged(t *testing.T) {
	api := movingSQS{&fakeSQS{
		receive: func(*sqs.ReceiveMessageInput) (*sqs.ReceiveMessageOutput, error) {
			return &sqs.ReceiveMessageOutput{Messages: []types.Message{{MessageId: aws.String("worn-out"), ReceiptHandle: aws.String("r-1"), Body: aws.String(`{"topics":["t"],"body":1}`),
				Attributes: map[string]string{string(types.MessageSystemAttributeNameApproximateReceiveCount): "9"}}}}, nil
		},
	}}
	var logged lockedbuf.Buffer
	q := NewSQSQueue(api, QueuesFor("fake"), SQSOptions{MaxReceives: 5, Reports: failingReports{}})
	q.SetLogger(slog.New(slog.NewTextHandler(&logged, nil)))
	if _, err := q.Receive(t.Context(), 10, time.Minute, 0); err != nil {
		t.Fatal(err)
	}
	out := logged.String()
	for _, want := range []string{"level=WARN", "worn-out", "injected"} {
		if !strings.Contains(out, want) {
			t.Errorf("log %q lacks %q; want the report's failure logged at Warn", out, want)
		}
	}
}

// deadLettersAPI is a dead-letter queue of n visible dead letters d0…,
// with held more hidden by another command's walk; deleteBatch answers
// the delete calls.
func deadLettersAPI(n, held int, deleteBatch func(*sqs.DeleteMessageBatchInput) (*sqs.DeleteMessageBatchOutput, error)) *fakeSQS {
	given := 0
	return &fakeSQS{
		attributes: func(*sqs.GetQueueAttributesInput) (*sqs.GetQueueAttributesOutput, error) {
			return &sqs.GetQueueAttributesOutput{Attributes: map[string]string{
				string(types.QueueAttributeNameApproximateNumberOfMessages):           strconv.Itoa(n),
				string(types.QueueAttributeNameApproximateNumberOfMessagesNotVisible): strconv.Itoa(held),
			}}, nil
		},
		receive: func(in *sqs.ReceiveMessageInput) (*sqs.ReceiveMessageOutput, error) {
			var out sqs.ReceiveMessageOutput
			for ; given < n && len(out.Messages) < int(in.MaxNumberOfMessages); given++ {
				id := "d" + strconv.Itoa(given)
				out.Messages = append(out.Messages, types.Message{MessageId: aws.String(id), ReceiptHandle: aws.String(id + "-r"), Body: aws.String(`{}`)})
			}
			return &out, nil
		},
		deleteBatch: deleteBatch,
	}
}

func (f *fakeSQS) ChangeMessageVisibilityBatch(ctx context.Context, in *sqs.ChangeMessageVisibilityBatchInput, _ ...func(*sqs.Options)) (*sqs.ChangeMessageVisibilityBatchOutput, error) {
	if err := ctx.Err(); err != nil {
		return nil, err // as the SDK does: a cancelled call is not sent
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, e := range in.Entries {
		if e.VisibilityTimeout == 0 {
			f.released = append(f.released, aws.ToString(e.ReceiptHandle))
		}
	}
	return &sqs.ChangeMessageVisibilityBatchOutput{}, nil
}

// deletedAll answers a DeleteMessageBatch with every entry deleted.
func deletedAll(in *sqs.DeleteMessageBatchInput) (*sqs.DeleteMessageBatchOutput, error) {
	out := &sqs.DeleteMessageBatchOutput{}
	for _, e := range in.Entries {
		out.Successful = append(out.Successful, types.DeleteMessageBatchResultEntry{Id: e.Id})
	}
	return out, nil
}

// deletedBut answers a DeleteMessageBatch with every entry deleted but
// those whose receipt is in stale, refused as SQS refuses a receipt of a
// message received again or deleted since.
func deletedBut(stale ...string) func(*sqs.DeleteMessageBatchInput) (*sqs.DeleteMessageBatchOutput, error) {
	return func(in *sqs.DeleteMessageBatchInput) (*sqs.DeleteMessageBatchOutput, error) {
		out := &sqs.DeleteMessageBatchOutput{}
		for _, e := range in.Entries {
			if slices.Contains(stale, aws.ToString(e.ReceiptHandle)) {
				out.Failed = append(out.Failed, types.BatchResultErrorEntry{Id: e.Id, Code: aws.String("ReceiptHandleIsInvalid"), Message: aws.String("The receipt handle is not valid"), SenderFault: true})
				continue
			}
			out.Successful = append(out.Successful, types.DeleteMessageBatchResultEntry{Id: e.Id})
		}
		return out, nil
	}
}

// sendsAll makes api's SendMessageBatch send every entry.
func sendsAll(api *fakeSQS) *fakeSQS {
	api.sendBatch = func(in *sqs.SendMessageBatchInput) (*sqs.SendMessageBatchOutput, error) {
		out := &sqs.SendMessageBatchOutput{}
		for _, e := range in.Entries {
			out.Successful = append(out.Successful, types.SendMessageBatchResultEntry{Id: e.Id, MessageId: e.Id})
		}
		return out, nil
	}
	return api
}

// TestAPurgeThatStopsPartWayReleasesWhatItDidNotDelete: a purge cut short
// (interrupted, or a delete call failing) left the dead letters it had
// received but not deleted hidden for their whole 30 s hold, where a
// redrive makes them visible again at once.
func TestAPurgeThatStopsPartWayReleasesWhatItDidNotDelete(t *testing.T) {
	calls := 0
	var deleted []string
	api := deadLettersAPI(25, 0, func(in *sqs.DeleteMessageBatchInput) (*sqs.DeleteMessageBatchOutput, error) {
		if calls++; calls > 1 {
			return nil, context.Canceled
		}
		for _, e := range in.Entries {
			deleted = append(deleted, aws.ToString(e.ReceiptHandle))
		}
		return deletedAll(in)
	})
	q := NewSQSQueue(api, QueuesFor("fake"), SQSOptions{})
	n, err := q.PurgeDeadLetters(t.Context(), nil)
	if err == nil || n != 10 {
		t.Fatalf("PurgeDeadLetters = %d, %v; want the 10 of the first call and the failure", n, err)
	}
	var want []string
	for i := range 25 {
		if r := "d" + strconv.Itoa(i) + "-r"; !slices.Contains(deleted, r) {
			want = append(want, r)
		}
	}
	slices.Sort(want)
	slices.Sort(api.released)
	if !slices.Equal(api.released, want) {
		t.Errorf("made visible again %q; want the 15 not deleted", api.released)
	}
}

// TestADeleteSQSRefusesForAStaleReceiptIsNotCounted: a dead letter whose
// receipt SQS refused (another command received or deleted it since) was
// counted as purged, or redriven, with nothing said.
func TestADeleteSQSRefusesForAStaleReceiptIsNotCounted(t *testing.T) {
	q := NewSQSQueue(deadLettersAPI(3, 0, deletedBut("d1-r")), QueuesFor("fake"), SQSOptions{})
	n, err := q.PurgeDeadLetters(t.Context(), nil)
	if n != 2 || !errors.Is(err, store.ErrDeadLettersHeld) || !strings.Contains(err.Error(), "1 dead letter was taken by another socks command") {
		t.Errorf("PurgeDeadLetters = %d, %v; want 2 purged and the one another command took said so", n, err)
	}
	q = NewSQSQueue(sendsAll(deadLettersAPI(3, 0, deletedBut("d1-r"))), QueuesFor("fake"), SQSOptions{})
	n, err = q.Redrive(t.Context(), nil)
	if n != 2 || !errors.Is(err, store.ErrRedrivenButKept) || !strings.Contains(err.Error(), "taken by another socks command") || !strings.Contains(err.Error(), "socks dlq purge d1") {
		t.Errorf("Redrive = %d, %v; want 2 redriven and d1, sent back but taken by another command, named with the purge to run", n, err)
	}
}

func TestAPurgeThatFailsPartWayCountsWhatItDeleted(t *testing.T) {
	calls := 0
	api := deadLettersAPI(15, 0, func(in *sqs.DeleteMessageBatchInput) (*sqs.DeleteMessageBatchOutput, error) {
		if calls++; calls > 1 {
			return nil, errors.New("connection refused")
		}
		return deletedAll(in)
	})
	q := NewSQSQueue(api, QueuesFor("fake"), SQSOptions{})
	n, err := q.PurgeDeadLetters(t.Context(), nil)
	if err == nil || n != 10 {
		t.Errorf("PurgeDeadLetters = %d, %v; want the 10 of the first batch and the failure", n, err)
	}
}

func TestDeadLettersHeldByAnotherCommandAreNotTakenForNone(t *testing.T) {
	ok := deletedAll
	for _, ids := range [][]string{{"d7"}, nil} {
		q := NewSQSQueue(deadLettersAPI(1, 2, ok), QueuesFor("fake"), SQSOptions{})
		n, err := q.PurgeDeadLetters(t.Context(), ids)
		if !errors.Is(err, store.ErrDeadLettersHeld) || !strings.Contains(err.Error(), "2 dead letters") {
			t.Errorf("purge %q = %d, %v; want store.ErrDeadLettersHeld naming 2 held", ids, n, err)
		}
		api := deadLettersAPI(1, 2, ok)
		api.sendBatch = func(in *sqs.SendMessageBatchInput) (*sqs.SendMessageBatchOutput, error) {
			out := &sqs.SendMessageBatchOutput{}
			for _, e := range in.Entries {
				out.Successful = append(out.Successful, types.SendMessageBatchResultEntry{Id: e.Id, MessageId: e.Id})
			}
			return out, nil
		}
		q = NewSQSQueue(api, QueuesFor("fake"), SQSOptions{})
		n, err = q.Redrive(t.Context(), ids)
		if !errors.Is(err, store.ErrDeadLettersHeld) {
			t.Errorf("redrive %q = %d, %v; want store.ErrDeadLettersHeld", ids, n, err)
		}
	}
}

// TestARedriveWhoseDeleteFailsSaysToPurgeNotRerun: dead letters sent back
// whose delete from the dead-letter queue failed are named, with a purge
// to run: a rerun would deliver them twice.
func TestARedriveWhoseDeleteFailsSaysToPurgeNotRerun(t *testing.T) {
	api := deadLettersAPI(3, 0, func(*sqs.DeleteMessageBatchInput) (*sqs.DeleteMessageBatchOutput, error) {
		return nil, errors.New("connection refused")
	})
	api.sendBatch = func(in *sqs.SendMessageBatchInput) (*sqs.SendMessageBatchOutput, error) {
		out := &sqs.SendMessageBatchOutput{}
		for _, e := range in.Entries {
			out.Successful = append(out.Successful, types.SendMessageBatchResultEntry{Id: e.Id, MessageId: e.Id})
		}
		return out, nil
	}
	q := NewSQSQueue(api, QueuesFor("fake"), SQSOptions{})
	n, err := q.Redrive(t.Context(), nil)
	if n != 0 || !errors.Is(err, store.ErrRedrivenButKept) || !strings.Contains(err.Error(), "socks dlq purge d0 d1 d2") || !strings.Contains(err.Error(), "connection refused") {
		t.Errorf("Redrive = %d, %v; want store.ErrRedrivenButKept naming d0 d1 d2 with the purge to run", n, err)
	}
}

// TestTheHeldErrorNamesDoctorAmongTheWalkers: `socks doctor`'s dead
// letters check walks up to 1,000 of them (Stats, for the oldest failure
// time), hiding them as a dlq list does; a doctor run as a health check
// every minute held dead letters that a redrive, purge or show then said
// were held by "a dlq list, show, redrive or purge, or status", leaving
// out the one command that held them. It named "status" too, and socks
// has no status command.
func TestTheHeldErrorNamesDoctorAmongTheWalkers(t *testing.T) {
	err := heldError("redriving", 2, nil, nil)
	if !errors.Is(err, store.ErrDeadLettersHeld) || !strings.Contains(err.Error(), "doctor") {
		t.Errorf("heldError = %v; want it to name doctor among the commands that hold dead letters", err)
	}
	if strings.Contains(err.Error(), "status") {
		t.Errorf("heldError = %v; it names a status command, which socks does not have", err)
	}
}

// TestADeadLetterPastTheFirstTenThousandReadIsNotSaidToBeMissing: every
// read of the dead letters stops at 10,000; an ID past them was answered
// as no dead letter (dlq show, redrive and purge: exit 3), where it may
// well be one.
func TestADeadLetterPastTheFirstTenThousandReadIsNotSaidToBeMissing(t *testing.T) {
	const past = "d10004"
	check := func(what string, found bool, err error) {
		t.Helper()
		if found || !errors.Is(err, store.ErrDeadLettersUnread) || !strings.Contains(err.Error(), past) ||
			!strings.Contains(err.Error(), "not among the first 10,000 read") || !strings.Contains(err.Error(), "AWS console") {
			t.Errorf("%s of %s = %v, %v; want store.ErrDeadLettersUnread naming it, the first 10,000 read and the AWS console", what, past, found, err)
		}
	}
	q := NewSQSQueue(deadLettersAPI(maxDeadLetterWalk+5, 0, deletedAll), QueuesFor("fake"), SQSOptions{})
	_, found, err := q.FindDeadLetter(t.Context(), past)
	check("FindDeadLetter", found, err)
	q = NewSQSQueue(deadLettersAPI(maxDeadLetterWalk+5, 0, deletedAll), QueuesFor("fake"), SQSOptions{})
	n, err := q.PurgeDeadLetters(t.Context(), []string{"d3", past})
	check("PurgeDeadLetters", n != 1, err)
	q = NewSQSQueue(sendsAll(deadLettersAPI(maxDeadLetterWalk+5, 0, deletedAll)), QueuesFor("fake"), SQSOptions{})
	n, err = q.Redrive(t.Context(), []string{past})
	check("Redrive", n != 0, err)

	// One among them is found, and an unknown ID among fewer is missing.
	q = NewSQSQueue(deadLettersAPI(maxDeadLetterWalk+5, 0, deletedAll), QueuesFor("fake"), SQSOptions{})
	if d, found, err := q.FindDeadLetter(t.Context(), "d9999"); !found || err != nil || d.ID != "d9999" {
		t.Errorf("FindDeadLetter(d9999) = %v, %v, %v; want it found", d.ID, found, err)
	}
	q = NewSQSQueue(deadLettersAPI(3, 0, deletedAll), QueuesFor("fake"), SQSOptions{})
	if _, found, err := q.FindDeadLetter(t.Context(), "d7"); found || err != nil {
		t.Errorf("FindDeadLetter(d7) of 3 = %v, %v; want not found, no error", found, err)
	}
}

// TestAPurgeOrRedriveInterruptedAfterItsReadReleasesEveryDeadLetter: a
// purge or redrive interrupted (Ctrl-C) once it had read the dead letters
// made the others visible again with the cancelled context, which failed,
// and left every one it had read hidden for its hold, the chosen ones
// never released at all.
func TestAPurgeOrRedriveInterruptedAfterItsReadReleasesEveryDeadLetter(t *testing.T) {
	for _, verb := range []string{"purge", "redrive"} {
		ctx, cancel := context.WithCancel(t.Context())
		api := sendsAll(deadLettersAPI(3, 0, deletedAll))
		receive := api.receive
		api.receive = func(in *sqs.ReceiveMessageInput) (*sqs.ReceiveMessageOutput, error) {
			out, err := receive(in)
			if err == nil && len(out.Messages) == 0 {
				cancel() // Ctrl-C as the read ends
			}
			return out, err
		}
		q := NewSQSQueue(api, QueuesFor("fake"), SQSOptions{})
		var err error
		if verb == "purge" {
			_, err = q.PurgeDeadLetters(ctx, []string{"d1"})
		} else {
			_, err = q.Redrive(ctx, []string{"d1"})
		}
		if err == nil {
			t.Errorf("%s: no error; want the interruption", verb)
		}
		slices.Sort(api.released)
		if want := []string{"d0-r", "d1-r", "d2-r"}; !slices.Equal(api.released, want) {
			t.Errorf("%s: made visible again %q; want all %q read", verb, api.released, want)
		}
		cancel()
	}
}

// TestARedriveWhoseLaterSendFailsStillNamesTheTakenOnes: a redrive whose
// first batch was sent back but one of it taken by another command before
// its delete, and whose second batch's send then failed, said only the
// send's failure: the taken one, back on the queue and maybe still in the
// dead letters, went unnamed, and redriving again would deliver it twice.
func TestARedriveWhoseLaterSendFailsStillNamesTheTakenOnes(t *testing.T) {
	api := deadLettersAPI(15, 0, deletedBut("d1-r"))
	sends := 0
	api.sendBatch = func(in *sqs.SendMessageBatchInput) (*sqs.SendMessageBatchOutput, error) {
		if sends++; sends > 1 {
			return nil, errors.New("connection refused")
		}
		out := &sqs.SendMessageBatchOutput{}
		for _, e := range in.Entries {
			out.Successful = append(out.Successful, types.SendMessageBatchResultEntry{Id: e.Id, MessageId: e.Id})
		}
		return out, nil
	}
	q := NewSQSQueue(api, QueuesFor("fake"), SQSOptions{})
	n, err := q.Redrive(t.Context(), nil)
	if n != 9 || !errors.Is(err, store.ErrRedrivenButKept) || !strings.Contains(err.Error(), "socks dlq purge d1") || !strings.Contains(err.Error(), "connection refused") {
		t.Errorf("Redrive = %d, %v; want 9 redriven, d1 named with the purge to run, and the send's failure", n, err)
	}
}

// TestARedriveWhoseLaterDeleteFailsTellsTakenFromKept: a redrive whose
// later delete call failed named the dead letters an earlier batch sent
// back but another command took as "still in the dead letters", beside
// those it surely left there.
func TestARedriveWhoseLaterDeleteFailsTellsTakenFromKept(t *testing.T) {
	calls := 0
	api := sendsAll(deadLettersAPI(15, 0, func(in *sqs.DeleteMessageBatchInput) (*sqs.DeleteMessageBatchOutput, error) {
		if calls++; calls > 1 {
			return nil, errors.New("connection refused")
		}
		return deletedBut("d1-r")(in)
	}))
	q := NewSQSQueue(api, QueuesFor("fake"), SQSOptions{})
	n, err := q.Redrive(t.Context(), nil)
	if n != 9 || !errors.Is(err, store.ErrRedrivenButKept) {
		t.Fatalf("Redrive = %d, %v; want 9 redriven and the dead letters kept named", n, err)
	}
	msg := err.Error()
	if !strings.Contains(msg, "1 dead letter was sent back onto the queue (d1) but taken by another socks command") || strings.Contains(msg, "still in the dead letters (d1 ") || !strings.Contains(msg, "5 dead letters were sent back onto the queue but still in the dead letters") || !strings.Contains(msg, "connection refused") {
		t.Errorf("Redrive's error = %q; want d1 said taken, the 5 of the failed delete said still there, and the failure", msg)
	}
}

// TestAPurgeOfAllStopsAfterItsReadsSayingThereAreMore: a purge of all
// reads the dead letters again until none are left, but at most
// maxPurgePasses times: past them, with more left, it says how many it
// purged and to run it again (store.ErrDeadLettersUnread), its count so
// far told across the reads. (The fake hands out dead letters without
// end, one a read here.)
func TestAPurgeOfAllStopsAfterItsReadsSayingThereAreMore(t *testing.T) {
	q := NewSQSQueue(deadLettersAPI(10*maxPurgePasses, 0, deletedAll), QueuesFor("fake"), SQSOptions{DeadLetterWalk: 1})
	last := 0
	n, err := q.PurgeEach(t.Context(), nil, func(n int) { last = n })
	if n != maxPurgePasses || last != n || !errors.Is(err, store.ErrDeadLettersUnread) ||
		!strings.Contains(err.Error(), fmt.Sprintf("purged %d dead letters in %d reads", n, maxPurgePasses)) || !strings.Contains(err.Error(), "run it again") {
		t.Errorf("PurgeEach = %d (told %d), %v; want %d, told so, and an error saying there are more and to run it again", n, last, err, maxPurgePasses)
	}
}

// TestAPurgeOfAllGoesOnPastDeadLettersHeld: a read of a purge of all
// that finds dead letters held by another command, and more past those
// it takes, goes on to the next read; the held ones are said at the end,
// as a note (store.ErrDeadLettersHeld, not ErrDeadLettersUnread).
func TestAPurgeOfAllGoesOnPastDeadLettersHeld(t *testing.T) {
	// Reads of 1: d0 (d1 read to know of more), then d2.
	q := NewSQSQueue(deadLettersAPI(3, 2, deletedAll), QueuesFor("fake"), SQSOptions{DeadLetterWalk: 1})
	n, err := q.PurgeDeadLetters(t.Context(), nil)
	if n != 2 || !errors.Is(err, store.ErrDeadLettersHeld) || errors.Is(err, store.ErrDeadLettersUnread) {
		t.Errorf("PurgeDeadLetters = %d, %v; want both reads' 2 and the held ones said", n, err)
	}
}

// TestAPurgeOfAllGoesOnPastDeadLettersHeldAndTaken: a read of a purge of
// all that finds dead letters held by another command and one taken by
// another command before it could delete it, with more past those it
// takes, goes on to the next read, as it does past either alone; both
// are said at the end, as notes (store.ErrDeadLettersHeld). Before, it
// stopped after that first read with the notes only (exit 0), leaving
// the others unread and unsaid.
func TestAPurgeOfAllGoesOnPastDeadLettersHeldAndTaken(t *testing.T) {
	// Reads of 2: d0 (taken) and d1 (d2 read to know of more), then d3
	// and d4.
	q := NewSQSQueue(deadLettersAPI(5, 2, deletedBut("d0-r")), QueuesFor("fake"), SQSOptions{DeadLetterWalk: 2})
	n, err := q.PurgeDeadLetters(t.Context(), nil)
	if n != 3 || !errors.Is(err, store.ErrDeadLettersHeld) || errors.Is(err, store.ErrDeadLettersUnread) ||
		!strings.Contains(fmt.Sprint(err), "held by") || !strings.Contains(fmt.Sprint(err), "taken by") {
		t.Errorf("PurgeDeadLetters = %d, %v; want both reads' 3, and the held and the taken said", n, err)
	}
}

// TestARedriveOfAllWithDeadLettersHeldStillSaysThereAreMore: a redrive
// of all whose read found dead letters held by another command, and more
// past those it takes, says both (store.ErrDeadLettersHeld and
// ErrDeadLettersUnread, as a listing does): dlq redrive --all then exits
// 1 saying to run it again ("more": true). Before, the held note alone
// was said (exit 0), as if all the others had been redriven.
func TestARedriveOfAllWithDeadLettersHeldStillSaysThereAreMore(t *testing.T) {
	// A read of 1: d0 (d1 read to know of more); 2 held.
	q := NewSQSQueue(sendsAll(deadLettersAPI(3, 2, deletedAll)), QueuesFor("fake"), SQSOptions{DeadLetterWalk: 1})
	n, err := q.Redrive(t.Context(), nil)
	if n != 1 || !errors.Is(err, store.ErrDeadLettersUnread) || !errors.Is(err, store.ErrDeadLettersHeld) {
		t.Errorf("Redrive = %d, %v; want 1, and that there are more and that some were held", n, err)
	}
}
