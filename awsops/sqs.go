package awsops

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"
	"golang.org/x/sync/errgroup"

	"github.com/socks-dev/socks/internal/backoff"
	"github.com/socks-dev/socks/internal/text"
	"github.com/socks-dev/socks/pubsub"
	"github.com/socks-dev/socks/store"
)

// SQSAPI is the part of the SQS client that SQSQueue calls; *sqs.Client
// satisfies it.
type SQSAPI interface {
	GetQueueUrl(ctx context.Context, params *sqs.GetQueueUrlInput, optFns ...func(*sqs.Options)) (*sqs.GetQueueUrlOutput, error)
	GetQueueAttributes(ctx context.Context, params *sqs.GetQueueAttributesInput, optFns ...func(*sqs.Options)) (*sqs.GetQueueAttributesOutput, error)
	SendMessage(ctx context.Context, params *sqs.SendMessageInput, optFns ...func(*sqs.Options)) (*sqs.SendMessageOutput, error)
	SendMessageBatch(ctx context.Context, params *sqs.SendMessageBatchInput, optFns ...func(*sqs.Options)) (*sqs.SendMessageBatchOutput, error)
	ReceiveMessage(ctx context.Context, params *sqs.ReceiveMessageInput, optFns ...func(*sqs.Options)) (*sqs.ReceiveMessageOutput, error)
	DeleteMessage(ctx context.Context, params *sqs.DeleteMessageInput, optFns ...func(*sqs.Options)) (*sqs.DeleteMessageOutput, error)
	DeleteMessageBatch(ctx context.Context, params *sqs.DeleteMessageBatchInput, optFns ...func(*sqs.Options)) (*sqs.DeleteMessageBatchOutput, error)
	ChangeMessageVisibility(ctx context.Context, params *sqs.ChangeMessageVisibilityInput, optFns ...func(*sqs.Options)) (*sqs.ChangeMessageVisibilityOutput, error)
	ChangeMessageVisibilityBatch(ctx context.Context, params *sqs.ChangeMessageVisibilityBatchInput, optFns ...func(*sqs.Options)) (*sqs.ChangeMessageVisibilityBatchOutput, error)
}

var _ SQSAPI = (*sqs.Client)(nil)

var (
	_ store.Queue            = (*SQSQueue)(nil)
	_ store.DeadLetterFinder = (*SQSQueue)(nil)
	_ store.EachPurger       = (*SQSQueue)(nil)
	_ store.EachRedriver     = (*SQSQueue)(nil)
)

// Message attributes of a dead letter that SQSQueue.DeadLetter wrote.
const (
	attrDeadReason   = "socks-reason"
	attrDeadOrigID   = "socks-original-id"
	attrDeadReceives = "socks-receive-count"
	attrDeadSentAt   = "socks-sent-at" // unix milliseconds of the first send
)

const (
	// maxBatchBytes is the most one SendMessageBatch carries (SQS counts
	// the sum of the bodies against the 1 MiB message limit).
	maxBatchBytes = pubsub.MaxEnvelopeBytes
	// maxVisibility is SQS's longest visibility timeout (12 h).
	maxVisibility = 12 * time.Hour
	// deadLetterHold is how long listing, redriving or purging hides the
	// dead letters it walks; they are made visible again at the end, so
	// this only matters if the process dies half way.
	deadLetterHold = 30 * time.Second
	// maxDeadLetterWalk bounds how many dead letters one walk reads
	// (SQSOptions.DeadLetterWalk may lower it).
	maxDeadLetterWalk = 10000
	// maxPurgePasses bounds the walks of one purge of all the dead
	// letters, each of up to maxDeadLetterWalk: a purge of all goes on
	// past the first walk until none are left, up to 1,000,000.
	maxPurgePasses = 100
	// maxStatsWalk bounds the walk Stats makes for the oldest failure time;
	// past it OldestDeadAt is the oldest of those read.
	maxStatsWalk = 1000
)

// SQSOptions tune an SQSQueue.
type SQSOptions struct {
	// MaxReceives is how often a message may be received before Receive
	// moves it to the dead-letter queue itself, with a reason (default
	// store.DefaultMaxReceives). The main queue's redrive policy (at
	// MaxReceives+2, see Queues.CreateInputs) is only a safety net.
	MaxReceives int
	// Reports, when set, get the report of a message Receive moves to the
	// dead letters (store.ReportDeadLettered), as the local queue records
	// it: no broker settled it, so no other report says so.
	Reports store.ReportReplacer
	// DeadLetterWalk bounds how many dead letters one read of them takes
	// (a listing, a lookup, a redrive, one pass of a purge): 0 or more
	// than 10,000 is 10,000. Tests set a few, to reach the bound.
	DeadLetterWalk int
}

// deadLetterWalk is how many dead letters one read of them takes.
func (q *SQSQueue) deadLetterWalk() int {
	if n := q.opts.DeadLetterWalk; n > 0 && n < maxDeadLetterWalk {
		return n
	}
	return maxDeadLetterWalk
}

// SQSQueue is the store.Queue on an SQS standard queue and its dead-letter
// queue, through the JSON protocol.
//
//   - IDs are SQS message IDs. A dead letter keeps the ID of the message
//     that failed (the socks-original-id attribute), so the broker's logs,
//     ListDeadLetters, Redrive and PurgeDeadLetters speak of the same ID.
//   - Delete and ChangeVisibility with a receipt SQS no longer accepts (the
//     message was deleted or received again) do nothing and return nil, as
//     the local backend does; DeadLetter returns an error wrapping
//     store.ErrStaleReceipt.
//   - Dead letters are read by receiving them from the dead-letter queue:
//     ListDeadLetters, Redrive, PurgeDeadLetters and Stats hide the dead
//     letters they walk for up to 30 s and make them visible again when
//     done, so two operators walking the same dead letters at once may each
//     see part of them. Redrive and PurgeDeadLetters extend that hold while
//     they work (keepHeld), so no other walk takes what they are taking.
type SQSQueue struct {
	api    SQSAPI
	queues Queues
	opts   SQSOptions

	mu sync.Mutex
	// urlOf holds the URL of each queue name resolved so far.
	urlOf map[string]string
	// logger gets what goes wrong out of the caller's sight (SetLogger).
	logger *slog.Logger
	// now is the clock by which a redrive or purge extends the hold of
	// the dead letters it has not finished (time.Now; tests set it).
	now func() time.Time
}

// SetLogger makes l get, at Warn, what goes wrong that Receive does not
// return: a dead letter's report it could not write. Without it that is
// dropped.
func (q *SQSQueue) SetLogger(l *slog.Logger) {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.logger = l
}

// NewSQSQueue returns the queue pair named by queues. Each queue URL is
// resolved by name when first needed, once: a publisher that only sends
// needs no permission on the dead-letter queue.
func NewSQSQueue(api SQSAPI, queues Queues, opts SQSOptions) *SQSQueue {
	if opts.MaxReceives <= 0 {
		opts.MaxReceives = store.DefaultMaxReceives
	}
	return &SQSQueue{api: api, queues: queues, opts: opts, urlOf: make(map[string]string, 2), now: time.Now}
}

// Queues returns the queue names.
func (q *SQSQueue) Queues() Queues { return q.queues }

// url resolves the URL of the queue called name with GetQueueUrl, once.
func (q *SQSQueue) url(ctx context.Context, name string) (string, error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if u, ok := q.urlOf[name]; ok {
		return u, nil
	}
	out, err := q.api.GetQueueUrl(ctx, &sqs.GetQueueUrlInput{QueueName: aws.String(name)})
	if err != nil {
		return "", wrapQueue("GetQueueUrl", name, err)
	}
	u := aws.ToString(out.QueueUrl)
	q.urlOf[name] = u
	return u, nil
}

// mainURL is the URL of the envelope queue.
func (q *SQSQueue) mainURL(ctx context.Context) (string, error) { return q.url(ctx, q.queues.Main) }

// deadURL is the URL of the dead-letter queue.
func (q *SQSQueue) deadURL(ctx context.Context) (string, error) {
	return q.url(ctx, q.queues.DeadLetter)
}

// Send enqueues one message body and returns its SQS message ID.
func (q *SQSQueue) Send(ctx context.Context, body []byte) (string, error) {
	ids, err := q.SendBatch(ctx, [][]byte{body})
	if err != nil {
		return "", err
	}
	return ids[0], nil
}

// BatchFailure is one entry SQS refused in a SendMessageBatch.
type BatchFailure struct {
	// Index is the entry's position in the bodies given to SendBatch.
	Index       int
	Code        string
	Message     string
	SenderFault bool
}

// sendWorkers bounds the SendMessageBatch calls of one SendBatch in flight.
const sendWorkers = 8

// SendBatchError says which entries of a SendBatch were not sent. IDs holds
// the message IDs of the others ("" for a failed entry), so a caller can
// retry just the failures.
type SendBatchError struct {
	Queue  string
	Failed []BatchFailure
	IDs    []string
}

func (e *SendBatchError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "SQS refused %d of %d messages sent to queue %s:", len(e.Failed), len(e.IDs), e.Queue)
	for _, f := range e.Failed {
		who := "SQS"
		if f.SenderFault {
			who = "sender"
		}
		fmt.Fprintf(&b, " message %d: %s (%s, %s's fault);", f.Index+1, f.Message, f.Code, who)
	}
	return strings.TrimSuffix(b.String(), ";")
}

// SendBatch enqueues bodies with SendMessageBatch, ten (and at most 1 MiB)
// per call (a JSON body's raw U+FFFE and U+FFFF, which SQS refuses, written
// as JSON escapes: pubsub.QueueText), sendWorkers calls at once (a standard queue keeps no order
// anyway), and returns their IDs in the order of bodies. If SQS
// refuses some entries it returns a *SendBatchError listing them, with the
// IDs of those that were sent.
func (q *SQSQueue) SendBatch(ctx context.Context, bodies [][]byte) ([]string, error) {
	if len(bodies) == 0 {
		return nil, nil
	}
	bodies = slices.Clone(bodies)
	for i, b := range bodies {
		if len(b) == 0 {
			return nil, fmt.Errorf("message %d of %d is empty: a queue message needs a body", i+1, len(bodies))
		}
		b = pubsub.QueueText(b)
		bodies[i] = b
		if len(b) > pubsub.MaxEnvelopeBytes {
			return nil, fmt.Errorf("message %d of %d is %d bytes; a queue message holds at most %d bytes", i+1, len(bodies), len(b), pubsub.MaxEnvelopeBytes)
		}
	}
	mainURL, err := q.mainURL(ctx)
	if err != nil {
		return nil, err
	}
	// The calls: ten bodies (at most 1 MiB) each, sendWorkers in flight.
	type call struct{ start, end int }
	var calls []call
	for start := 0; start < len(bodies); {
		end, size := start, 0
		for end < len(bodies) && end-start < store.MaxBatch && size+len(bodies[end]) <= maxBatchBytes {
			size += len(bodies[end])
			end++
		}
		calls = append(calls, call{start, end})
		start = end
	}
	ids := make([]string, len(bodies))
	var (
		mu       sync.Mutex
		failed   []BatchFailure
		firstErr error
		sent     int
	)
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(sendWorkers)
	for _, c := range calls {
		g.Go(func() error {
			entries := make([]types.SendMessageBatchRequestEntry, 0, c.end-c.start)
			for i := c.start; i < c.end; i++ {
				entries = append(entries, types.SendMessageBatchRequestEntry{
					Id:          aws.String(strconv.Itoa(i)),
					MessageBody: aws.String(string(bodies[i])),
				})
			}
			out, err := q.api.SendMessageBatch(gctx, &sqs.SendMessageBatchInput{QueueUrl: aws.String(mainURL), Entries: entries})
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				if firstErr == nil {
					firstErr = wrapQueue("SendMessageBatch", q.queues.Main, err)
				}
				return err // stops the calls not yet started
			}
			for _, s := range out.Successful {
				if i, err := strconv.Atoi(aws.ToString(s.Id)); err == nil && i >= c.start && i < c.end {
					ids[i] = aws.ToString(s.MessageId)
					sent++
				}
			}
			for _, f := range out.Failed {
				i, _ := strconv.Atoi(aws.ToString(f.Id))
				failed = append(failed, BatchFailure{Index: i, Code: aws.ToString(f.Code), Message: aws.ToString(f.Message), SenderFault: f.SenderFault})
			}
			return nil
		})
	}
	_ = g.Wait()
	if firstErr != nil {
		if sent == 0 {
			return nil, firstErr
		}
		return ids, fmt.Errorf("sent %d of %d messages, then: %w", sent, len(bodies), firstErr)
	}
	if len(failed) > 0 {
		slices.SortFunc(failed, func(a, b BatchFailure) int { return a.Index - b.Index })
		return ids, &SendBatchError{Queue: q.queues.Main, Failed: failed, IDs: ids}
	}
	return ids, nil
}

// seconds rounds d up to whole seconds within [0, limit].
func seconds(d, limit time.Duration) int32 {
	d = min(max(d, 0), limit)
	return int32((d + time.Second - 1) / time.Second)
}

var receiveAttributes = []types.MessageSystemAttributeName{
	types.MessageSystemAttributeNameApproximateReceiveCount,
	types.MessageSystemAttributeNameSentTimestamp,
}

// Receive returns up to n messages (1 to 10), long-polling up to wait (at
// most 20 s, rounded up to whole seconds) for the first, and hides them for
// visibility (rounded up to whole seconds; 0 makes them visible again at
// once). A message received more than MaxReceives times is moved to the
// dead-letter queue with a reason instead of being returned; if that move
// fails, the other messages are returned (the error only when there are
// none).
func (q *SQSQueue) Receive(ctx context.Context, n int, visibility, wait time.Duration) ([]store.Message, error) {
	mainURL, err := q.mainURL(ctx)
	if err != nil {
		return nil, err
	}
	n = min(max(n, 1), store.MaxBatch)
	deadline := time.Now().Add(min(max(wait, 0), store.MaxWait))
	for {
		in := &sqs.ReceiveMessageInput{
			QueueUrl:                    aws.String(mainURL),
			MaxNumberOfMessages:         int32(n),
			WaitTimeSeconds:             seconds(time.Until(deadline), store.MaxWait),
			VisibilityTimeout:           seconds(visibility, maxVisibility),
			MessageSystemAttributeNames: receiveAttributes,
		}
		// The SDK leaves a zero VisibilityTimeout out of the request (the
		// queue's default applies), so a zero visibility is set after
		// the receive.
		out, err := q.api.ReceiveMessage(ctx, in)
		if err != nil {
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			return nil, wrapQueue("ReceiveMessage", q.queues.Main, err)
		}
		msgs := make([]store.Message, 0, len(out.Messages))
		moved := false
		var deadErr error
		for _, m := range out.Messages {
			msg := toMessage(m)
			if msg.ReceiveCount > q.opts.MaxReceives {
				// A failed move leaves this message for the next receive
				// (and in the end the redrive policy); the others of
				// the batch are returned all the same.
				reason := fmt.Sprintf("received %d times without being handled (max %d)", msg.ReceiveCount, q.opts.MaxReceives)
				if err := q.DeadLetter(ctx, msg, reason); err != nil {
					deadErr = cmp.Or(deadErr, err)
				} else {
					moved = true
					q.reportDeadLetter(ctx, msg, reason)
				}
				continue
			}
			msgs = append(msgs, msg)
		}
		if len(msgs) == 0 && deadErr != nil {
			return nil, deadErr
		}
		if in.VisibilityTimeout == 0 && len(msgs) > 0 {
			receipts := make([]string, len(msgs))
			for i, m := range msgs {
				receipts[i] = m.Receipt
			}
			if err := q.changeVisibilityBatch(ctx, mainURL, q.queues.Main, receipts, 0); err != nil {
				return nil, err
			}
		}
		if len(msgs) > 0 || !moved || time.Until(deadline) <= 0 {
			return msgs, nil
		}
	}
}

// reportAttempts bounds the writes of one dead letter's report that lose
// to another writer of it (store.UpdateReport).
const reportAttempts = 10

// reportDeadLetter records, when q has Reports, that Receive moved m to
// the dead letters for reason. It is done: a report that cannot be
// written is logged (SetLogger) and leaves the message in the dead letters
// all the same (`socks dlq list` shows it), and its --wait runs out of
// time as before.
func (q *SQSQueue) reportDeadLetter(ctx context.Context, m store.Message, reason string) {
	if q.opts.Reports == nil {
		return
	}
	wait := func(ctx context.Context, attempt int) error {
		return backoff.Sleep(ctx, backoff.FullJitter(attempt, 50*time.Millisecond, 2*time.Second))
	}
	if err := store.ReportDeadLettered(ctx, q.opts.Reports, m.ID, m.Body, nil, reason, time.Now(), reportAttempts, wait); err != nil {
		q.mu.Lock()
		log := q.logger
		q.mu.Unlock()
		if log != nil {
			// As the broker logs its own report failures.
			log.Warn("recording report", "message", m.ID, "receives", m.ReceiveCount, "err", err)
		}
	}
}

func toMessage(m types.Message) store.Message {
	msg := store.Message{
		ID:      aws.ToString(m.MessageId),
		Receipt: aws.ToString(m.ReceiptHandle),
		Body:    []byte(aws.ToString(m.Body)),
	}
	msg.ReceiveCount, _ = strconv.Atoi(m.Attributes[string(types.MessageSystemAttributeNameApproximateReceiveCount)])
	if ms, err := strconv.ParseInt(m.Attributes[string(types.MessageSystemAttributeNameSentTimestamp)], 10, 64); err == nil {
		msg.SentAt = fromMillis(ms)
	}
	return msg
}

// staleReceipt reports whether SQS refused a receipt because the message
// was deleted or received again since.
func staleReceipt(err error) bool {
	var invalid *types.ReceiptHandleIsInvalid
	var notInflight *types.MessageNotInflight
	return errors.As(err, &invalid) || errors.As(err, &notInflight)
}

// Delete removes a handled message by its receipt. A stale receipt does
// nothing and returns nil.
func (q *SQSQueue) Delete(ctx context.Context, receipt string) error {
	mainURL, err := q.mainURL(ctx)
	if err != nil {
		return err
	}
	_, err = q.api.DeleteMessage(ctx, &sqs.DeleteMessageInput{QueueUrl: aws.String(mainURL), ReceiptHandle: aws.String(receipt)})
	if err != nil && !staleReceipt(err) {
		return wrapQueue("DeleteMessage", q.queues.Main, err)
	}
	return nil
}

// ChangeVisibility makes a received message visible again after d (rounded
// up to whole seconds; 0: at once). A stale receipt does nothing and
// returns nil.
func (q *SQSQueue) ChangeVisibility(ctx context.Context, receipt string, d time.Duration) error {
	mainURL, err := q.mainURL(ctx)
	if err != nil {
		return err
	}
	_, err = q.api.ChangeMessageVisibility(ctx, &sqs.ChangeMessageVisibilityInput{
		QueueUrl:          aws.String(mainURL),
		ReceiptHandle:     aws.String(receipt),
		VisibilityTimeout: seconds(d, maxVisibility),
	})
	if err != nil && !staleReceipt(err) {
		return wrapQueue("ChangeMessageVisibility", q.queues.Main, err)
	}
	return nil
}

// ChangeVisibilityBatch is ChangeVisibility for each of receipts, with
// ChangeMessageVisibilityBatch: one request for every ten receipts.
// Entries SQS refuses for a stale receipt count as changed; each other
// refused entry gets its own error, and a request that failed as a whole
// fails its ten.
func (q *SQSQueue) ChangeVisibilityBatch(ctx context.Context, receipts []string, d time.Duration) []error {
	if len(receipts) == 0 {
		return nil
	}
	mainURL, err := q.mainURL(ctx)
	if err != nil {
		errs := make([]error, len(receipts))
		for i := range errs {
			errs[i] = err
		}
		return errs
	}
	// A stale receipt: nothing to change, as in ChangeVisibility.
	errs := q.changeVisibilityEach(ctx, mainURL, q.queues.Main, receipts, d)
	failed := false
	for i, err := range errs {
		if err == errTaken {
			errs[i] = nil
		}
		failed = failed || errs[i] != nil
	}
	if !failed {
		return nil
	}
	return errs
}

// DeadLetter sends a copy of the received message m to the dead-letter
// queue with the reason, its original ID, receive count and send time as
// message attributes, then deletes it from the main queue.
//
// It first hides m for deadLetterHold with its receipt: SQS refusing that
// receipt (the message was deleted, or its visibility timeout ended and it
// may be received again) is an error wrapping store.ErrStaleReceipt, with
// nothing copied. If the delete fails after the copy, the message may be
// handled again and dead-lettered twice (the error says so, wrapping
// store.ErrStaleReceipt when SQS refused the receipt); it is never lost.
func (q *SQSQueue) DeadLetter(ctx context.Context, m store.Message, reason string) error {
	if m.Receipt == "" {
		return fmt.Errorf("dead-lettering message %s: it has no receipt; only a received message can be dead-lettered", m.ID)
	}
	reason = store.DeadLetterReason(reason)
	mainURL, err := q.mainURL(ctx)
	if err != nil {
		return err
	}
	deadURL, err := q.deadURL(ctx)
	if err != nil {
		return err
	}
	attrs := deadAttrs(m, reason)
	// Hold it for the copy and the delete; a receipt SQS refuses is
	// someone else's message now, or none.
	_, err = q.api.ChangeMessageVisibility(ctx, &sqs.ChangeMessageVisibilityInput{
		QueueUrl:          aws.String(mainURL),
		ReceiptHandle:     aws.String(m.Receipt),
		VisibilityTimeout: seconds(deadLetterHold, maxVisibility),
	})
	if staleReceipt(err) {
		return fmt.Errorf("dead-lettering message %s: %w", m.ID, store.ErrStaleReceipt)
	}
	if err != nil {
		return fmt.Errorf("dead-lettering message %s: %w", m.ID, wrapQueue("ChangeMessageVisibility", q.queues.Main, err))
	}
	_, err = q.api.SendMessage(ctx, &sqs.SendMessageInput{
		QueueUrl:          aws.String(deadURL),
		MessageBody:       aws.String(string(m.Body)),
		MessageAttributes: attrs,
	})
	if err != nil {
		return fmt.Errorf("dead-lettering message %s: %w", m.ID, wrapQueue("SendMessage", q.queues.DeadLetter, err))
	}
	_, err = q.api.DeleteMessage(ctx, &sqs.DeleteMessageInput{QueueUrl: aws.String(mainURL), ReceiptHandle: aws.String(m.Receipt)})
	if staleReceipt(err) {
		return fmt.Errorf("dead-lettering message %s (copied to the dead-letter queue, but not removed from the queue): %w", m.ID, store.ErrStaleReceipt)
	}
	if err != nil {
		return fmt.Errorf("dead-lettering message %s (copied to the dead-letter queue, but not removed from the queue): %w", m.ID, wrapQueue("DeleteMessage", q.queues.Main, err))
	}
	return nil
}

// deadAttrs are the message attributes DeadLetter gives the copy of m it
// sends to the dead-letter queue, which toDeadLetter reads: the reason
// (as store.DeadLetterReason gives it), and m's ID, receive count and
// send time.
func deadAttrs(m store.Message, reason string) map[string]types.MessageAttributeValue {
	attrs := map[string]types.MessageAttributeValue{
		attrDeadReason:   {DataType: aws.String("String"), StringValue: aws.String(reason)},
		attrDeadReceives: {DataType: aws.String("Number"), StringValue: aws.String(strconv.Itoa(m.ReceiveCount))},
	}
	if m.ID != "" {
		attrs[attrDeadOrigID] = types.MessageAttributeValue{DataType: aws.String("String"), StringValue: aws.String(m.ID)}
	}
	if !m.SentAt.IsZero() {
		attrs[attrDeadSentAt] = types.MessageAttributeValue{DataType: aws.String("Number"), StringValue: aws.String(strconv.FormatInt(millis(m.SentAt), 10))}
	}
	return attrs
}

// deadMessage is a dead letter as received from the dead-letter queue.
type deadMessage struct {
	letter store.DeadLetter
	// sqsID is the message ID in the dead-letter queue (the same as
	// letter.ID for messages the redrive policy moved).
	sqsID string
	// taken is set when SQS refused to extend its hold (keepHeld): its
	// receipt is stale, another command took it.
	taken bool
}

// toDeadLetter reads a message the dead-letter queue handed out: one
// DeadLetter sent there (its attributes, deadAttrs, say what it was), or
// one the main queue's redrive policy moved, which keeps the attributes
// its producer gave it, whatever they hold.
func toDeadLetter(m types.Message) deadMessage {
	raw := toMessage(m)
	d := store.DeadLetter{
		ID:           raw.ID,
		Body:         raw.Body,
		ReceiveCount: raw.ReceiveCount,
		SentAt:       raw.SentAt,
		FailedAt:     raw.SentAt,
		Receipt:      raw.Receipt,
	}
	if v, ok := m.MessageAttributes[attrDeadOrigID]; ok && aws.ToString(v.StringValue) != "" {
		d.ID = aws.ToString(v.StringValue)
	}
	if v, ok := m.MessageAttributes[attrDeadReason]; ok {
		// Capped as socks writes it: one a producer gave the message the
		// redrive policy moved may be as long as SQS takes.
		d.Reason = store.DeadLetterReason(aws.ToString(v.StringValue))
	} else {
		// Moved by the main queue's redrive policy, not by socks.
		d.Reason = fmt.Sprintf("moved by the queue's redrive policy after about %d receives", raw.ReceiveCount)
	}
	if v, ok := m.MessageAttributes[attrDeadReceives]; ok {
		if n, err := strconv.Atoi(aws.ToString(v.StringValue)); err == nil && n >= 0 {
			d.ReceiveCount = n
		}
	}
	if v, ok := m.MessageAttributes[attrDeadSentAt]; ok {
		if ms, err := strconv.ParseInt(aws.ToString(v.StringValue), 10, 64); err == nil {
			d.SentAt = fromMillis(ms)
		}
	}
	return deadMessage{letter: d, sqsID: raw.ID}
}

// walkDeadLetters receives every visible dead letter (up to limit),
// hiding each for deadLetterHold, and returns them oldest failure first,
// with how many were hidden already when it began (held by another walk,
// such as another socks command's, for up to deadLetterHold), and whether
// more than limit were there (more): it receives one past limit to know,
// and makes that one visible again.
// The caller must release (make visible again) or delete each. The walk
// keeps the hold of those it has received (keepHeld, by kept: when it was
// last extended, set here as the walk begins).
func (q *SQSQueue) walkDeadLetters(ctx context.Context, limit int, kept *time.Time) (dms []deadMessage, held int, more bool, err error) {
	deadURL, err := q.deadURL(ctx)
	if err != nil {
		return nil, 0, false, err
	}
	expect, err := q.depth(ctx, deadURL, q.queues.DeadLetter)
	if err != nil {
		return nil, 0, false, err
	}
	dms, more, err = q.walk(ctx, deadURL, limit, expect.Visible, kept, true)
	return dms, expect.InFlight, more, err
}

// heldError is the error of a redrive, purge, lookup or listing that did
// what it could but, with held dead letters hidden by another walk, may
// not have taken all it was asked to: all of them (ids nil) or IDs it did
// not find.
func heldError(verb string, held int, ids []string, chosen []deadMessage) error {
	if held == 0 || (ids != nil && len(chosen) == len(pubsub.Unique(ids))) {
		return nil
	}
	return heldErr(fmt.Sprintf("%s dead letters: %s held by %s for up to %s",
		verb, text.Pluralize(held, "dead letter")+" "+text.WasWere(held), otherReader, deadLetterHold))
}

// unreadError is the error of a lookup, redrive or purge by IDs (ids) that
// did not find them all among the walked dead letters, when the walk
// stopped at its bound with more left (more): those not found may be
// among the dead letters past it, which no walk reads while these are
// there. With ids nil (all of them: a listing, a redrive of all) it is
// moreError's.
func (q *SQSQueue) unreadError(verb string, more bool, ids []string, chosen []deadMessage) error {
	if !more {
		return nil
	}
	if ids == nil {
		return q.moreError(verb, len(chosen))
	}
	found := make(map[string]bool, len(chosen))
	for _, d := range chosen {
		found[d.letter.ID], found[d.sqsID] = true, true
	}
	var unread []string
	for _, id := range pubsub.Unique(ids) {
		if !found[id] {
			unread = append(unread, id)
		}
	}
	if len(unread) == 0 {
		return nil
	}
	shown := strings.Join(unread[:min(len(unread), 10)], " ")
	if len(unread) > 10 {
		shown += fmt.Sprintf(" and %d more", len(unread)-10)
	}
	return unreadErr(fmt.Sprintf("%s dead letters: %s (%s) not among the first %s read, and there are more (a read stops there, and SQS hands them out in no order): purge or redrive the others first, then run it again, or look for %s in the AWS console (SQS, queue %s, Send and receive messages, Poll for messages)",
		verb, text.Pluralize(len(unread), "dead letter")+" "+text.WasWere(len(unread)), shown, text.Thousands(q.deadLetterWalk()), pronoun(len(unread)), q.queues.DeadLetter))
}

// moreError is the error, store.ErrDeadLettersUnread, of a listing or a
// redrive of all the dead letters that took n, the first a read takes,
// with more left past them.
func (q *SQSQueue) moreError(verb string, n int) error {
	done := map[string]string{"listing": "listed", "redriving": "redrove", "purging": "purged"}[verb]
	again := map[string]string{"listing": "purge or redrive these, then run it again to see the others", "redriving": "run it again to redrive the others", "purging": "run it again to purge the others"}[verb]
	return unreadErr(fmt.Sprintf("%s dead letters: %s the first %s read, and there are more (a read stops at %s): %s",
		verb, done, text.Pluralize(n, "dead letter"), text.Thousands(q.deadLetterWalk()), again))
}

// pronoun is "it" for one, else "them".
func pronoun(n int) string {
	if n == 1 {
		return "it"
	}
	return "them"
}

// otherReader is who holds or takes the dead letters a walk cannot.
const otherReader = "another socks command reading them (a dlq list, show, redrive or purge, or doctor)"

// takenWords says why SQS refused to delete n walked dead letters with
// their receipt (errTaken).
func takenWords(n int) string {
	return fmt.Sprintf("taken by %s before this one could delete %s (this one's %s hold ran out)", otherReader, oneOrMany(n, "it", "them"), deadLetterHold)
}

// oneOrMany returns one when n is 1, else many: the pronoun that agrees
// with a count.
func oneOrMany(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

// takenError is the error, store.ErrDeadLettersHeld, of a purge that could
// not delete n of its dead letters: another command took them.
func takenError(verb string, n int) error {
	return heldErr(fmt.Sprintf("%s dead letters: %s %s", verb, text.Pluralize(n, "dead letter")+" "+text.WasWere(n), takenWords(n)))
}

// idsOf returns the IDs of dms.
func idsOf(dms []deadMessage) []string {
	ids := make([]string, len(dms))
	for i, d := range dms {
		ids[i] = d.letter.ID
	}
	return ids
}

// keptErr is an error that is store.ErrRedrivenButKept, naming the dead
// letters sent back but not deleted from the dead letters: still there,
// or, when taken, taken by another command (which may leave them there).
func keptErr(ids []string, taken bool) error {
	shown := ids[:min(len(ids), 10)]
	more := ""
	if len(ids) > len(shown) {
		more = fmt.Sprintf(" and %d more", len(ids)-len(shown))
	}
	n := len(ids)
	they, them := oneOrMany(n, "it", "they"), oneOrMany(n, "it", "them")
	if taken {
		return redrivenButKept(fmt.Sprintf("%s sent back onto the queue (%s%s) but %s, so %s may still be in the dead letters: redriving %s again would deliver %s twice; purge %s with `socks dlq purge %s`",
			text.Pluralize(n, "dead letter")+" "+text.WasWere(n), strings.Join(shown, " "), more, takenWords(n), they, them, them, oneOrMany(n, "it", "those left"), strings.Join(shown, " ")))
	}
	return redrivenButKept(fmt.Sprintf("%s sent back onto the queue but still in the dead letters (%s%s): redriving %s again would deliver %s twice; purge %s with `socks dlq purge %s`",
		text.Pluralize(n, "dead letter")+" "+text.WasWere(n), strings.Join(shown, " "), more, them, them, them, strings.Join(shown, " ")))
}

// redrivenButKept is an error that is store.ErrRedrivenButKept, in its
// own words.
type redrivenButKept string

func (e redrivenButKept) Error() string        { return string(e) }
func (e redrivenButKept) Is(target error) bool { return target == store.ErrRedrivenButKept }

// unreadErr is an error that is store.ErrDeadLettersUnread, in its own
// words.
type unreadErr string

func (e unreadErr) Error() string        { return string(e) }
func (e unreadErr) Is(target error) bool { return target == store.ErrDeadLettersUnread }

// heldErr is an error that is store.ErrDeadLettersHeld, in its own words.
type heldErr string

func (e heldErr) Error() string        { return string(e) }
func (e heldErr) Is(target error) bool { return target == store.ErrDeadLettersHeld }

// walk is walkDeadLetters once the dead-letter queue's URL and its
// approximate count of visible messages (expect) are known. With probe,
// it receives one past limit, to say whether there are more (more), and
// makes that one visible again.
func (q *SQSQueue) walk(ctx context.Context, deadURL string, limit, expect int, kept *time.Time, probe bool) (_ []deadMessage, more bool, _ error) {
	var out []deadMessage
	// seen maps a dead-letter queue message ID to its place in out.
	seen := make(map[string]int)
	*kept = q.now()
	want := limit
	if probe {
		want++
	}
	for len(out) < want {
		q.keepHeld(ctx, deadURL, out, kept)
		// A long poll of a second reaches every SQS server; a short poll
		// may miss messages. Stop once the expected count has come
		// without waiting for an empty answer.
		wait := int32(1)
		if len(out) >= expect {
			wait = 0
		}
		res, err := q.api.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{
			QueueUrl:                    aws.String(deadURL),
			MaxNumberOfMessages:         int32(min(store.MaxBatch, want-len(out))),
			VisibilityTimeout:           seconds(deadLetterHold, maxVisibility),
			WaitTimeSeconds:             wait,
			MessageSystemAttributeNames: receiveAttributes,
			MessageAttributeNames:       []string{"All"},
		})
		if err != nil {
			q.release(context.WithoutCancel(ctx), out)
			return nil, false, wrapQueue("ReceiveMessage", q.queues.DeadLetter, err)
		}
		if len(res.Messages) == 0 {
			break
		}
		for _, m := range res.Messages {
			d := toDeadLetter(m)
			if i, ok := seen[d.sqsID]; ok {
				// Its hold ran out during a long walk and it came again:
				// only the newest receipt surely deletes it.
				out[i].letter.Receipt = d.letter.Receipt
				out[i].taken = false
				continue
			}
			seen[d.sqsID] = len(out)
			out = append(out, d)
		}
	}
	if len(out) > limit {
		// Those received past limit (one) only tell that there are
		// more: the walk is the first limit received.
		if err := q.release(context.WithoutCancel(ctx), out[limit:]); err != nil {
			_ = q.release(context.WithoutCancel(ctx), out[:limit])
			return nil, false, err
		}
		out, more = out[:limit:limit], true
	}
	slices.SortStableFunc(out, func(a, b deadMessage) int {
		if c := a.letter.FailedAt.Compare(b.letter.FailedAt); c != 0 {
			return c
		}
		return strings.Compare(a.letter.ID, b.letter.ID)
	})
	return out, more, nil
}

// releaseRead makes rest, the walked dead letters a redrive or purge was
// not asked to take, visible again, even once ctx is cancelled (an
// interrupted command leaves none hidden for their hold); when it cannot,
// it releases chosen too, as the command then stops.
func (q *SQSQueue) releaseRead(ctx context.Context, rest, chosen []deadMessage) error {
	ctx = context.WithoutCancel(ctx)
	err := q.release(ctx, rest)
	if err != nil {
		_ = q.release(ctx, chosen)
	}
	return err
}

// keepHold is how often a redrive or purge (and the walk before it)
// extends the hold of the dead letters it holds and has not finished, back
// to deadLetterHold: so that no other command's walk receives them while
// it works, however long that takes.
const keepHold = deadLetterHold / 3

// keepHeld extends the hold of the dead letters of dms not yet taken back
// to deadLetterHold, when keepHold has passed since kept (by q.now), and
// sets kept. One whose receipt SQS refuses as stale is marked taken:
// another command received it once its hold ran out, or deleted it. Other
// failures are left to the delete that follows (a hold that then runs out
// is told as taken there).
func (q *SQSQueue) keepHeld(ctx context.Context, deadURL string, dms []deadMessage, kept *time.Time) {
	now := q.now()
	if now.Sub(*kept) < keepHold {
		return
	}
	*kept = now
	var receipts []string
	var of []int
	for i, d := range dms {
		if !d.taken {
			receipts = append(receipts, d.letter.Receipt)
			of = append(of, i)
		}
	}
	for i, err := range q.changeVisibilityEach(ctx, deadURL, q.queues.DeadLetter, receipts, deadLetterHold) {
		if errors.Is(err, errTaken) {
			dms[of[i]].taken = true
		}
	}
}

// release makes walked dead letters visible again, even once ctx is
// cancelled: an interrupted command leaves none hidden for their hold.
func (q *SQSQueue) release(ctx context.Context, dms []deadMessage) error {
	if len(dms) == 0 {
		return nil
	}
	deadURL, err := q.deadURL(ctx)
	if err != nil {
		return err
	}
	receipts := make([]string, len(dms))
	for i, d := range dms {
		receipts[i] = d.letter.Receipt
	}
	return q.changeVisibilityBatch(ctx, deadURL, q.queues.DeadLetter, receipts, 0)
}

// changeVisibilityBatch changes the visibility of each of receipts on the
// queue called name at url, and fails with every distinct error of
// changeVisibilityEach.
func (q *SQSQueue) changeVisibilityBatch(ctx context.Context, url, name string, receipts []string, d time.Duration) error {
	var distinct []error
	for _, err := range q.changeVisibilityEach(ctx, url, name, receipts, d) {
		if err != nil && err != errTaken && !slices.Contains(distinct, err) {
			distinct = append(distinct, err)
		}
	}
	return errors.Join(distinct...)
}

// changeVisibilityEach changes the visibility of each of receipts on the
// queue called name at url, with one ChangeMessageVisibilityBatch for every
// store.MaxBatch of them, and returns nil or one error per receipt (see
// store.Queue.ChangeVisibilityBatch), errTaken for one SQS refused as
// stale (nothing to change: callers that only release count it changed).
func (q *SQSQueue) changeVisibilityEach(ctx context.Context, url, name string, receipts []string, d time.Duration) []error {
	var (
		mu   sync.Mutex
		errs []error
	)
	fail := func(i int, err error) {
		mu.Lock()
		defer mu.Unlock()
		if errs == nil {
			errs = make([]error, len(receipts))
		}
		errs[i] = err
	}
	// sendWorkers calls in flight: extending the hold of 10,000 walked
	// dead letters must take well under that hold.
	var g errgroup.Group
	g.SetLimit(sendWorkers)
	for start := 0; start < len(receipts); start += store.MaxBatch {
		part := receipts[start:min(start+store.MaxBatch, len(receipts))]
		g.Go(func() error {
			entries := make([]types.ChangeMessageVisibilityBatchRequestEntry, len(part))
			for i, r := range part {
				entries[i] = types.ChangeMessageVisibilityBatchRequestEntry{
					Id:                aws.String(strconv.Itoa(i)),
					ReceiptHandle:     aws.String(r),
					VisibilityTimeout: seconds(d, maxVisibility),
				}
			}
			out, err := q.api.ChangeMessageVisibilityBatch(ctx, &sqs.ChangeMessageVisibilityBatchInput{QueueUrl: aws.String(url), Entries: entries})
			if err != nil {
				err = wrapQueue("ChangeMessageVisibilityBatch", name, err)
				for i := range part {
					fail(start+i, err)
				}
				return nil
			}
			for _, f := range out.Failed {
				i, err := strconv.Atoi(aws.ToString(f.Id))
				if err != nil || i < 0 || i >= len(part) {
					continue
				}
				switch aws.ToString(f.Code) {
				case "ReceiptHandleIsInvalid", "MessageNotInflight":
					fail(start+i, errTaken)
					continue
				}
				fail(start+i, fmt.Errorf("ChangeMessageVisibilityBatch on queue %s refused the message: %s (%s)", name, aws.ToString(f.Message), aws.ToString(f.Code)))
			}
			return nil
		})
	}
	_ = g.Wait()
	return errs
}

// errTaken is why SQS refused to delete a walked dead letter with its
// receipt, or to extend its hold: the receipt is stale, so another command
// received it (its hold ran out) or deleted it since; this walk deleted
// nothing.
var errTaken = errors.New("taken by another command")

// deleteBatch deletes the messages of receipts, store.MaxBatch a call, and
// returns how many SQS deleted, with nil or one error per receipt for
// those it did not: errTaken for one SQS refused as stale, else the
// refusal of its entry or the failure of its call. It stops after a call
// that failed, or refused an entry for another reason than a stale
// receipt: the receipts not tried get that failure.
func (q *SQSQueue) deleteBatch(ctx context.Context, url, name string, receipts []string) (int, []error) {
	return q.deleteBatchEach(ctx, url, name, receipts, nil, nil)
}

// deleteBatchEach is deleteBatch calling deleted (if not nil) with how many
// it has deleted so far after each call, and before each call keep (if not
// nil) with the index of the first receipt not yet tried.
func (q *SQSQueue) deleteBatchEach(ctx context.Context, url, name string, receipts []string, deleted func(n int), keep func(from int)) (int, []error) {
	n := 0
	var errs []error
	fail := func(i int, err error) {
		if errs == nil {
			errs = make([]error, len(receipts))
		}
		errs[i] = err
	}
	for start := 0; start < len(receipts); start += store.MaxBatch {
		if keep != nil {
			keep(start)
		}
		part := receipts[start:min(start+store.MaxBatch, len(receipts))]
		entries := make([]types.DeleteMessageBatchRequestEntry, len(part))
		for i, r := range part {
			entries[i] = types.DeleteMessageBatchRequestEntry{Id: aws.String(strconv.Itoa(i)), ReceiptHandle: aws.String(r)}
		}
		out, err := q.api.DeleteMessageBatch(ctx, &sqs.DeleteMessageBatchInput{QueueUrl: aws.String(url), Entries: entries})
		if err != nil {
			err = wrapQueue("DeleteMessageBatch", name, err)
			for i := start; i < len(receipts); i++ {
				fail(i, err)
			}
			return n, errs
		}
		done := make([]bool, len(part))
		for _, s := range out.Successful {
			if i, err := strconv.Atoi(aws.ToString(s.Id)); err == nil && i >= 0 && i < len(part) && !done[i] {
				done[i] = true
				n++
			}
		}
		var stop error
		for _, f := range out.Failed {
			i, err := strconv.Atoi(aws.ToString(f.Id))
			if err != nil || i < 0 || i >= len(part) || done[i] {
				continue
			}
			done[i] = true
			switch aws.ToString(f.Code) {
			case "ReceiptHandleIsInvalid", "MessageNotInflight":
				fail(start+i, errTaken)
				continue
			}
			err = fmt.Errorf("DeleteMessageBatch on queue %s refused the message: %s (%s)", name, aws.ToString(f.Message), aws.ToString(f.Code))
			fail(start+i, err)
			stop = cmp.Or(stop, err)
		}
		for i, ok := range done {
			if !ok {
				err := fmt.Errorf("DeleteMessageBatch on queue %s did not say whether it deleted the message", name)
				fail(start+i, err)
				stop = cmp.Or(stop, err)
			}
		}
		if deleted != nil {
			deleted(n)
		}
		if stop != nil {
			for i := start + len(part); i < len(receipts); i++ {
				fail(i, stop)
			}
			return n, errs
		}
	}
	return n, errs
}

// undeleted sorts the dead letters of dms that deleteBatch did not delete,
// by its errs: those another command took (errTaken), and those left,
// still held by this walk, with the first failure that left them.
func undeleted(dms []deadMessage, errs []error) (taken, left []deadMessage, failure error) {
	for i, err := range errs {
		switch {
		case err == nil:
		case errors.Is(err, errTaken):
			taken = append(taken, dms[i])
		default:
			left = append(left, dms[i])
			failure = cmp.Or(failure, err)
		}
	}
	return taken, left, failure
}

// ListDeadLetters returns up to limit dead letters (all, up to 10,000, when
// limit <= 0), oldest failure first. It receives them from the dead-letter
// queue and makes them visible again before returning.
func (q *SQSQueue) ListDeadLetters(ctx context.Context, limit int) ([]store.DeadLetter, error) {
	dls, err := q.ListDeadLettersHeld(ctx, limit)
	if errors.Is(err, store.ErrDeadLettersHeld) || errors.Is(err, store.ErrDeadLettersUnread) {
		// Notes beside the list, which ListDeadLettersHeld's caller
		// hears.
		err = nil
	}
	return dls, err
}

// ListDeadLettersHeld is ListDeadLetters, with an error wrapping
// store.ErrDeadLettersHeld beside the list when dead letters were held by
// another walk, and so hidden from this one (store.HeldDeadLetterLister),
// and one wrapping store.ErrDeadLettersUnread when there were more than
// a read takes (and than limit, when it is above 0): both, joined, when
// both.
func (q *SQSQueue) ListDeadLettersHeld(ctx context.Context, limit int) ([]store.DeadLetter, error) {
	var kept time.Time
	dms, held, more, err := q.walkDeadLetters(ctx, q.deadLetterWalk(), &kept)
	if err != nil {
		return nil, fmt.Errorf("listing dead letters: %w", err)
	}
	if err := q.release(context.WithoutCancel(ctx), dms); err != nil {
		return nil, fmt.Errorf("listing dead letters: %w", err)
	}
	if limit > 0 && len(dms) >= limit {
		// As many as asked for: those past them are not missed.
		dms, more = dms[:limit], false
	}
	out := make([]store.DeadLetter, len(dms))
	for i, d := range dms {
		out[i] = d.letter
	}
	return out, errors.Join(heldError("listing", held, nil, dms), q.unreadError("listing", more, nil, dms))
}

// FindDeadLetter returns the dead letter with id (its ID or dead-letter
// queue message ID), reading them all as ListDeadLetters does; when none
// has it and others were held by another walk, the error wraps
// store.ErrDeadLettersHeld (store.DeadLetterFinder): SQS hides a dead
// letter in flight, and it may be that one.
func (q *SQSQueue) FindDeadLetter(ctx context.Context, id string) (store.DeadLetter, bool, error) {
	var kept time.Time
	dms, held, more, err := q.walkDeadLetters(ctx, q.deadLetterWalk(), &kept)
	if err != nil {
		return store.DeadLetter{}, false, fmt.Errorf("reading dead letters: %w", err)
	}
	if err := q.release(context.WithoutCancel(ctx), dms); err != nil {
		return store.DeadLetter{}, false, fmt.Errorf("reading dead letters: %w", err)
	}
	ids := []string{id}
	chosen, _ := pick(dms, ids)
	if len(chosen) > 0 {
		return chosen[0].letter, true, nil
	}
	return store.DeadLetter{}, false, cmp.Or(heldError("reading", held, ids, chosen), q.unreadError("reading", more, ids, chosen))
}

// pick splits walked dead letters into those whose ID (or dead-letter queue
// message ID) is in ids (all when ids is nil) and the rest.
func pick(dms []deadMessage, ids []string) (chosen, rest []deadMessage) {
	if ids == nil {
		return dms, nil
	}
	want := make(map[string]bool, len(ids))
	for _, id := range ids {
		want[id] = true
	}
	for _, d := range dms {
		if want[d.letter.ID] || want[d.sqsID] {
			chosen = append(chosen, d)
		} else {
			rest = append(rest, d)
		}
	}
	return chosen, rest
}

// Redrive sends the dead letters with the given IDs (all when ids is nil;
// none when it is empty) back to the main queue as new messages, with a
// fresh receive count and their body as pubsub.Redriven gives it (a
// follow-up starts its attempts again), and deletes them from the
// dead-letter queue. Unknown IDs are ignored. It returns how many moved.
func (q *SQSQueue) Redrive(ctx context.Context, ids []string) (int, error) {
	return q.RedriveEach(ctx, ids, nil)
}

// RedriveEach is Redrive telling each about every dead letter it sent
// back (store.EachRedriver).
func (q *SQSQueue) RedriveEach(ctx context.Context, ids []string, each func(store.DeadLetter)) (int, error) {
	if ids != nil && len(ids) == 0 {
		return 0, nil
	}
	// extended is when the hold of the dead letters not yet done was
	// last extended (keepHeld): the walk and the batches may outlast it.
	var extended time.Time
	dms, held, more, err := q.walkDeadLetters(ctx, q.deadLetterWalk(), &extended)
	if err != nil {
		return 0, fmt.Errorf("redriving dead letters: %w", err)
	}
	chosen, rest := pick(dms, ids)
	if err := q.releaseRead(ctx, rest, chosen); err != nil {
		return 0, fmt.Errorf("redriving dead letters: %w", err)
	}
	deadURL, err := q.deadURL(ctx)
	if err != nil {
		return 0, err
	}
	moved := 0
	// taken were sent back, but another command took them from the dead
	// letters before this one deleted them.
	var taken []deadMessage
	// skipped were taken by another command before this one sent them
	// back (SQS refused to extend their hold): not sent, so not twice.
	skipped := 0
	withSkipped := func(err error) error {
		if skipped == 0 {
			return err
		}
		return fmt.Errorf("%w; %w", err, takenError("redriving", skipped))
	}
	for start := 0; start < len(chosen); start += store.MaxBatch {
		end := min(start+store.MaxBatch, len(chosen))
		q.keepHeld(ctx, deadURL, chosen[start:], &extended)
		part := slices.DeleteFunc(slices.Clone(chosen[start:end]), func(d deadMessage) bool { return d.taken })
		skipped += end - start - len(part)
		if len(part) == 0 {
			continue
		}
		bodies := make([][]byte, len(part))
		for i, d := range part {
			bodies[i] = pubsub.Redriven(d.letter.Body)
		}
		sentIDs, sendErr := q.SendBatch(ctx, bodies)
		var sent []string
		var sentOf, unsent []deadMessage
		for i, d := range part {
			if i < len(sentIDs) && sentIDs[i] != "" {
				sent = append(sent, d.letter.Receipt)
				sentOf = append(sentOf, d)
				if each != nil {
					each(d.letter)
				}
			} else {
				unsent = append(unsent, d)
			}
		}
		deletedN, errs := q.deleteBatch(ctx, deadURL, q.queues.DeadLetter, sent)
		moved += deletedN
		takenNow, left, failure := undeleted(sentOf, errs)
		taken = append(taken, takenNow...)
		if failure != nil {
			_ = q.release(context.WithoutCancel(ctx), append(unsent, chosen[end:]...))
			kept := keptErr(idsOf(left), false)
			if len(taken) > 0 {
				// Taken may be gone from the dead letters: not said
				// to be there still, as those left surely are.
				return moved, withSkipped(fmt.Errorf("redriving dead letters: %w; %w: %w", keptErr(idsOf(taken), true), kept, failure))
			}
			return moved, withSkipped(fmt.Errorf("redriving dead letters: %w: %w", kept, failure))
		}
		if sendErr != nil {
			_ = q.release(context.WithoutCancel(ctx), append(unsent, chosen[end:]...))
			if len(taken) > 0 {
				return moved, withSkipped(fmt.Errorf("redriving dead letters: %w: %w", keptErr(idsOf(taken), true), sendErr))
			}
			return moved, withSkipped(fmt.Errorf("redriving dead letters: %w", sendErr))
		}
	}
	if len(taken) > 0 {
		return moved, withSkipped(fmt.Errorf("redriving dead letters: %w", keptErr(idsOf(taken), true)))
	}
	notAll := cmp.Or(heldError("redriving", held, ids, chosen), q.unreadError("redriving", more, ids, chosen))
	if ids == nil {
		// Of all of them, dead letters held and more past those a read
		// takes are two things left undone: both are said, as by a
		// listing.
		notAll = errors.Join(heldError("redriving", held, ids, chosen), q.unreadError("redriving", more, ids, chosen))
	}
	if skipped > 0 && notAll != nil {
		return moved, withSkipped(notAll)
	}
	if skipped > 0 {
		return moved, takenError("redriving", skipped)
	}
	return moved, notAll
}

// PurgeDeadLetters deletes the dead letters with the given IDs (all when ids
// is nil; none when it is empty) and returns how many it deleted.
func (q *SQSQueue) PurgeDeadLetters(ctx context.Context, ids []string) (int, error) {
	return q.PurgeEach(ctx, ids, nil)
}

// PurgeEach is PurgeDeadLetters telling purged how many it has deleted so
// far after each call (store.EachPurger). A purge of all (ids nil) reads
// and deletes the dead letters a read takes (10,000) again and again
// until none are left, up to maxPurgePasses reads; past them, or when a
// read deleted none of the more it found, it returns an error that is
// store.ErrDeadLettersUnread, saying to run it again.
func (q *SQSQueue) PurgeEach(ctx context.Context, ids []string, purged func(n int)) (int, error) {
	if ids != nil {
		n, _, err := q.purgePass(ctx, ids, purged)
		return n, err
	}
	total := 0
	// notes are the reads' notes that dead letters were held by another
	// command, or taken by one before this one deleted them (each
	// store.ErrDeadLettersHeld; the same words once): the purge goes on
	// with those it can take, and says so at the end.
	var notes []error
	note := func(err error) {
		if !slices.ContainsFunc(notes, func(n error) bool { return n.Error() == err.Error() }) {
			notes = append(notes, err)
		}
	}
	for pass := 1; ; pass++ {
		so := total
		n, more, err := q.purgePass(ctx, nil, func(n int) {
			if purged != nil {
				purged(so + n)
			}
		})
		total += n
		if err != nil && errors.Is(err, store.ErrDeadLettersHeld) {
			// Held or taken, or both: of all the dead letters, a
			// purge's only errors that are no failure.
			note(err)
			err = nil
		}
		switch {
		case err != nil:
			return total, err
		case !more:
			return total, errors.Join(notes...)
		case n == 0:
			return total, errors.Join(append([]error{q.moreError("purging", total)}, notes...)...)
		case pass == maxPurgePasses:
			return total, errors.Join(append([]error{unreadErr(fmt.Sprintf("purging dead letters: purged %s in %d reads of up to %s, and there are more: run it again to purge the others",
				text.Pluralize(total, "dead letter"), pass, text.Thousands(q.deadLetterWalk())))}, notes...)...)
		}
	}
}

// purgePass is one read of PurgeEach: it deletes those of the dead
// letters a read takes with the given IDs (all when ids is nil), and
// says whether there were more past them (more). IDs not found among
// them, with more, are an error that is store.ErrDeadLettersUnread; all
// of them (ids nil) with more is not an error.
func (q *SQSQueue) purgePass(ctx context.Context, ids []string, purged func(n int)) (n int, more bool, err error) {
	if ids != nil && len(ids) == 0 {
		return 0, false, nil
	}
	var kept time.Time
	dms, held, more, err := q.walkDeadLetters(ctx, q.deadLetterWalk(), &kept)
	if err != nil {
		return 0, false, fmt.Errorf("purging dead letters: %w", err)
	}
	chosen, rest := pick(dms, ids)
	if err := q.releaseRead(ctx, rest, chosen); err != nil {
		return 0, false, fmt.Errorf("purging dead letters: %w", err)
	}
	deadURL, err := q.deadURL(ctx)
	if err != nil {
		return 0, false, err
	}
	receipts := make([]string, len(chosen))
	for i, d := range chosen {
		receipts[i] = d.letter.Receipt
	}
	keep := func(from int) { q.keepHeld(ctx, deadURL, chosen[from:], &kept) }
	n, errs := q.deleteBatchEach(ctx, deadURL, q.queues.DeadLetter, receipts, purged, keep)
	taken, left, failure := undeleted(chosen, errs)
	// Those not deleted are made visible again, as by a redrive that
	// stops part way, not left hidden for the rest of their hold.
	if err := q.release(context.WithoutCancel(ctx), left); err != nil {
		failure = cmp.Or(failure, err)
	}
	notAll := cmp.Or(heldError("purging", held, ids, chosen), q.unreadError("purging", more && ids != nil, ids, chosen))
	switch {
	case failure != nil:
		return n, more, fmt.Errorf("purging dead letters: %w", failure)
	case len(taken) > 0 && notAll != nil:
		return n, more, fmt.Errorf("%w; %w", notAll, takenError("purging", len(taken)))
	case len(taken) > 0:
		return n, more, takenError("purging", len(taken))
	}
	return n, more, notAll
}

// depth reads a queue's approximate counts.
func (q *SQSQueue) depth(ctx context.Context, url, name string) (store.QueueStats, error) {
	out, err := q.api.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{
		QueueUrl: aws.String(url),
		AttributeNames: []types.QueueAttributeName{
			types.QueueAttributeNameApproximateNumberOfMessages,
			types.QueueAttributeNameApproximateNumberOfMessagesNotVisible,
		},
	})
	if err != nil {
		return store.QueueStats{}, wrapQueue("GetQueueAttributes", name, err)
	}
	var st store.QueueStats
	st.Visible, _ = strconv.Atoi(out.Attributes[string(types.QueueAttributeNameApproximateNumberOfMessages)])
	st.InFlight, _ = strconv.Atoi(out.Attributes[string(types.QueueAttributeNameApproximateNumberOfMessagesNotVisible)])
	return st, nil
}

// Stats reports the queues' approximate depth (GetQueueAttributes). SQS
// keeps no failure time, so OldestDeadAt comes from walking up to 1,000
// dead letters (they are hidden for a moment, as by ListDeadLetters).
func (q *SQSQueue) Stats(ctx context.Context) (store.QueueStats, error) {
	mainURL, err := q.mainURL(ctx)
	if err != nil {
		return store.QueueStats{}, fmt.Errorf("reading the queue's depth: %w", err)
	}
	st, err := q.depth(ctx, mainURL, q.queues.Main)
	if err != nil {
		return store.QueueStats{}, fmt.Errorf("reading the queue's depth: %w", err)
	}
	deadURL, err := q.deadURL(ctx)
	if err != nil {
		return store.QueueStats{}, fmt.Errorf("reading the dead-letter queue's depth: %w", err)
	}
	dead, err := q.depth(ctx, deadURL, q.queues.DeadLetter)
	if err != nil {
		return store.QueueStats{}, fmt.Errorf("reading the dead-letter queue's depth: %w", err)
	}
	st.Dead = dead.Visible + dead.InFlight
	if dead.Visible > 0 {
		var kept time.Time
		dms, _, err := q.walk(ctx, deadURL, maxStatsWalk, dead.Visible, &kept, false)
		if err != nil {
			return store.QueueStats{}, fmt.Errorf("reading the dead letters' age: %w", err)
		}
		if err := q.release(context.WithoutCancel(ctx), dms); err != nil {
			return store.QueueStats{}, fmt.Errorf("reading the dead letters' age: %w", err)
		}
		if len(dms) > 0 {
			st.OldestDeadAt = dms[0].letter.FailedAt
		}
	}
	return st, nil
}
