package awsops

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"
)

// visibilityBatchAPI answers ChangeMessageVisibilityBatch by receipt: a
// request with a "down" receipt fails as a whole, "stale" entries are
// refused as stale, "refused" ones for another reason; it counts the
// calls in flight at once.
type visibilityBatchAPI struct {
	SQSAPI
	mu                  sync.Mutex
	inFlight, maxFlight int
	calls               int
}

func (f *visibilityBatchAPI) GetQueueUrl(_ context.Context, in *sqs.GetQueueUrlInput, _ ...func(*sqs.Options)) (*sqs.GetQueueUrlOutput, error) {
	return &sqs.GetQueueUrlOutput{QueueUrl: aws.String("http://127.0.0.1:9324/000000000000/" + aws.ToString(in.QueueName))}, nil
}

func (f *visibilityBatchAPI) ChangeMessageVisibilityBatch(ctx context.Context, in *sqs.ChangeMessageVisibilityBatchInput, _ ...func(*sqs.Options)) (*sqs.ChangeMessageVisibilityBatchOutput, error) {
	f.mu.Lock()
	f.calls++
	f.inFlight++
	f.maxFlight = max(f.maxFlight, f.inFlight)
	f.mu.Unlock()
	defer func() {
		f.mu.Lock()
		f.inFlight--
		f.mu.Unlock()
	}()
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	out := &sqs.ChangeMessageVisibilityBatchOutput{}
	for _, e := range in.Entries {
		r := aws.ToString(e.ReceiptHandle)
		switch {
		case strings.HasPrefix(r, "down"):
			return nil, errors.New("connection reset")
		case strings.HasPrefix(r, "stale"):
			out.Failed = append(out.Failed, types.BatchResultErrorEntry{Id: e.Id, Code: aws.String("ReceiptHandleIsInvalid"), Message: aws.String("stale")})
		case strings.HasPrefix(r, "refused"):
			out.Failed = append(out.Failed, types.BatchResultErrorEntry{Id: e.Id, Code: aws.String("InvalidParameterValue"), Message: aws.String("no")})
		default:
			out.Successful = append(out.Successful, types.ChangeMessageVisibilityBatchResultEntry{Id: e.Id})
		}
	}
	return out, nil
}

// The calls of changeVisibilityEach run at once; each receipt still gets
// its own outcome at its own place, whichever call ends first.
func TestChangeVisibilityEachGivesEveryReceiptItsOwnOutcomeFromConcurrentCalls(t *testing.T) {
	api := &visibilityBatchAPI{}
	q := NewSQSQueue(api, QueuesFor("fake"), SQSOptions{})
	// 95 receipts: ten calls, the fourth (30..39) failing as a whole.
	receipts := make([]string, 95)
	for i := range receipts {
		switch {
		case i == 35:
			receipts[i] = fmt.Sprintf("down-%d", i)
		case i%7 == 0:
			receipts[i] = fmt.Sprintf("stale-%d", i)
		case i%11 == 0:
			receipts[i] = fmt.Sprintf("refused-%d", i)
		default:
			receipts[i] = fmt.Sprintf("ok-%d", i)
		}
	}
	for run := range 20 {
		errs := q.changeVisibilityEach(t.Context(), "http://127.0.0.1:9324/000000000000/fake-dlq", "fake-dlq", receipts, deadLetterHold)
		if len(errs) != len(receipts) {
			t.Fatalf("run %d: %d errors for %d receipts", run, len(errs), len(receipts))
		}
		for i, err := range errs {
			var want string
			switch {
			case i >= 30 && i < 40:
				want = "connection reset"
			case i%7 == 0:
				want = errTaken.Error()
			case i%11 == 0:
				want = "(InvalidParameterValue)"
			}
			switch {
			case want == "" && err != nil:
				t.Fatalf("run %d: receipt %d (%s): %v; want nil", run, i, receipts[i], err)
			case want != "" && (err == nil || !strings.Contains(err.Error(), want)):
				t.Fatalf("run %d: receipt %d (%s): %v; want one saying %q", run, i, receipts[i], err, want)
			}
		}
	}
	if api.maxFlight > sendWorkers {
		t.Errorf("%d calls in flight at once; want at most %d", api.maxFlight, sendWorkers)
	}
	// ChangeVisibilityBatch (the broker's) counts stale ones changed.
	errs := q.ChangeVisibilityBatch(t.Context(), receipts, time.Second)
	for i, err := range errs {
		if i%7 == 0 && i != 35 && err != nil {
			t.Errorf("ChangeVisibilityBatch: stale receipt %d: %v; want nil", i, err)
		}
	}
	if errs[35] == nil || errs[1] != nil {
		t.Errorf("ChangeVisibilityBatch: errs[35] = %v, errs[1] = %v; want a failure and nil", errs[35], errs[1])
	}
}

// Cancelled part way, or before, every receipt not changed has an error:
// none is reported changed that was not.
func TestChangeVisibilityEachCancelledFailsEveryReceipt(t *testing.T) {
	api := &visibilityBatchAPI{}
	q := NewSQSQueue(api, QueuesFor("fake"), SQSOptions{})
	receipts := make([]string, 45)
	for i := range receipts {
		receipts[i] = fmt.Sprintf("ok-%d", i)
	}
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	errs := q.changeVisibilityEach(ctx, "http://127.0.0.1:9324/000000000000/fake-dlq", "fake-dlq", receipts, deadLetterHold)
	if len(errs) != len(receipts) {
		t.Fatalf("%d errors for %d receipts", len(errs), len(receipts))
	}
	for i, err := range errs {
		if !errors.Is(err, context.Canceled) {
			t.Errorf("receipt %d: %v; want context.Canceled", i, err)
		}
	}
}
