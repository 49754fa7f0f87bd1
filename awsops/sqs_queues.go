package awsops

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/arn"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/socks-dev/socks/pubsub"

	"github.com/socks-dev/socks/store"
)

// Queues names the SQS queues of one stack.
type Queues struct {
	// Main carries envelopes from publishers to the broker.
	Main string `json:"main"`
	// DeadLetter holds the envelopes the broker could not handle.
	DeadLetter string `json:"deadLetter"`
	// Stack is the stack the queues belong to: new queues are tagged
	// socks:stack=Stack ("" in tests that name queues by hand: no tag).
	Stack string `json:"-"`
}

// QueuesFor returns the queue names of stack: STACK-envelopes and
// STACK-envelopes-dlq.
func QueuesFor(stack string) Queues {
	return Queues{Main: stack + "-envelopes", DeadLetter: stack + "-envelopes-dlq", Stack: stack}
}

// Names lists the queue names, the dead-letter queue first (it must exist
// before the main queue's redrive policy can name it).
func (q Queues) Names() []string { return []string{q.DeadLetter, q.Main} }

// DeletionOrder lists the queue names in the order DeleteQueues deletes
// them, the reverse of Names: the main queue first, so that no queue is
// left whose redrive policy names a dead-letter queue that is gone.
func (q Queues) DeletionOrder() []string { return []string{q.Main, q.DeadLetter} }

// Validate checks that both names are valid standard queue names.
func (q Queues) Validate() error {
	for _, n := range q.Names() {
		if n == "" || len(n) > 80 {
			return fmt.Errorf("queue name %q must be 1 to 80 characters long: check --stack", n)
		}
		if !queueNameChars(n) {
			return fmt.Errorf("queue name %q may only hold letters, digits, '_' and '-': check --stack", n)
		}
	}
	return nil
}

// queueNameChars reports whether s holds only what a standard queue's
// name may: letters, digits, '_' and '-'.
func queueNameChars(s string) bool {
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_' || r == '-') {
			return false
		}
	}
	return true
}

// isQueueARN reports whether s is an SQS queue's ARN,
// arn:PARTITION:sqs:REGION:ACCOUNT:QUEUE: QUEUE a name SQS allows (1 to
// 80 characters, a FIFO queue's ending in ".fifo"), the other parts
// letters, digits, '_' and '-'.
func isQueueARN(s string) bool {
	a, err := arn.Parse(s)
	if err != nil || a.Service != "sqs" || len(a.Resource) > 80 {
		return false
	}
	for _, part := range []string{a.Partition, a.Region, a.AccountID, strings.TrimSuffix(a.Resource, ".fifo")} {
		if part == "" || !queueNameChars(part) {
			return false
		}
	}
	return true
}

// maxMessageSize is both queues' MaximumMessageSize: the largest envelope
// socks sends, which SQS's default (256 KiB before 2025) would refuse.
var maxMessageSize = strconv.Itoa(pubsub.MaxEnvelopeBytes)

// Queue settings (docs/tables.md explains the numbers).
const (
	// DefaultBrokerTimeout is the broker's time limit per batch (its Lambda
	// function timeout).
	DefaultBrokerTimeout = 30 * time.Second
	// visibilityFactor: AWS asks for a visibility timeout of at least six
	// times the function timeout on an SQS event source, so that a batch
	// the poller retries is not handed out twice.
	visibilityFactor = 6
	// redriveSlack is how many receives past store.DefaultMaxReceives the
	// main queue's redrive policy allows before SQS moves a message by
	// itself: the broker dead-letters first, with a reason; the policy is
	// the safety net for a broker that crashes on a message.
	redriveSlack = 2
	// mainRetention keeps undelivered envelopes for 4 days (SQS's default).
	mainRetention = 4 * 24 * time.Hour
	// deadRetention keeps dead letters for 14 days (SQS's maximum), longer
	// than mainRetention: a message the redrive policy moves keeps its
	// original enqueue time. The local queue keeps them as long.
	deadRetention = store.DeadLetterRetention
)

// QueueSettings tune the queues CreateInputs describes.
type QueueSettings struct {
	// BrokerTimeout is the broker's time limit per batch (default
	// DefaultBrokerTimeout); the main queue's visibility timeout is six
	// times it.
	BrokerTimeout time.Duration
	// MaxReceives is the broker's dead-letter limit (default
	// store.DefaultMaxReceives); the redrive policy moves a message after
	// MaxReceives+2 receives.
	MaxReceives int
}

func (s QueueSettings) withDefaults() QueueSettings {
	if s.BrokerTimeout <= 0 {
		s.BrokerTimeout = DefaultBrokerTimeout
	}
	if s.MaxReceives <= 0 {
		s.MaxReceives = store.DefaultMaxReceives
	}
	return s
}

// VisibilityTimeout is the main queue's default visibility timeout.
func (s QueueSettings) VisibilityTimeout() time.Duration {
	s = s.withDefaults()
	return min(max(visibilityFactor*s.BrokerTimeout, 30*time.Second), maxVisibility)
}

// MaxReceiveCount is the redrive policy's maxReceiveCount.
func (s QueueSettings) MaxReceiveCount() int { return s.withDefaults().MaxReceives + redriveSlack }

func secondsAttr(d time.Duration) string { return strconv.Itoa(int(d / time.Second)) }

// DeadLetterInput describes the dead-letter queue.
func (q Queues) DeadLetterInput() *sqs.CreateQueueInput {
	return &sqs.CreateQueueInput{
		QueueName: aws.String(q.DeadLetter),
		Attributes: map[string]string{
			string(types.QueueAttributeNameMessageRetentionPeriod): secondsAttr(deadRetention),
			string(types.QueueAttributeNameMaximumMessageSize):     maxMessageSize,
		},
		Tags: q.tags("dead-letters"),
	}
}

// MainInput describes the main queue, whose redrive policy sends to the
// dead-letter queue with ARN deadLetterARN. The queue's default long poll is
// left at 0: every Receive passes its own wait, and the SDK leaves a wait of
// 0 out of the request, so a queue default would turn short polls into long
// ones.
func (q Queues) MainInput(deadLetterARN string, s QueueSettings) *sqs.CreateQueueInput {
	policy, _ := json.Marshal(map[string]string{
		"deadLetterTargetArn": deadLetterARN,
		"maxReceiveCount":     strconv.Itoa(s.MaxReceiveCount()),
	})
	return &sqs.CreateQueueInput{
		QueueName: aws.String(q.Main),
		Attributes: map[string]string{
			string(types.QueueAttributeNameVisibilityTimeout):             secondsAttr(s.VisibilityTimeout()),
			string(types.QueueAttributeNameMessageRetentionPeriod):        secondsAttr(mainRetention),
			string(types.QueueAttributeNameReceiveMessageWaitTimeSeconds): "0",
			string(types.QueueAttributeNameRedrivePolicy):                 string(policy),
			string(types.QueueAttributeNameMaximumMessageSize):            maxMessageSize,
		},
		Tags: q.tags("envelopes"),
	}
}

// tags are what a new queue of role carries: app=socks, its role, and its
// stack.
func (q Queues) tags(role string) map[string]string {
	t := map[string]string{TagApp: "socks", "socks:role": role}
	if q.Stack != "" {
		t[TagStack] = q.Stack
	}
	return t
}

// CreateInputs describes both queues, the dead-letter queue first: create
// it, read its QueueArn, and pass that here again for the main queue (or
// use EnsureQueues, which does exactly that).
func (q Queues) CreateInputs(deadLetterARN string, s QueueSettings) []*sqs.CreateQueueInput {
	return []*sqs.CreateQueueInput{q.DeadLetterInput(), q.MainInput(deadLetterARN, s)}
}

// QueueAdminAPI is the part of the SQS client that EnsureQueues and
// DeleteQueues call; *sqs.Client satisfies it.
type QueueAdminAPI interface {
	CreateQueue(ctx context.Context, params *sqs.CreateQueueInput, optFns ...func(*sqs.Options)) (*sqs.CreateQueueOutput, error)
	GetQueueUrl(ctx context.Context, params *sqs.GetQueueUrlInput, optFns ...func(*sqs.Options)) (*sqs.GetQueueUrlOutput, error)
	GetQueueAttributes(ctx context.Context, params *sqs.GetQueueAttributesInput, optFns ...func(*sqs.Options)) (*sqs.GetQueueAttributesOutput, error)
	SetQueueAttributes(ctx context.Context, params *sqs.SetQueueAttributesInput, optFns ...func(*sqs.Options)) (*sqs.SetQueueAttributesOutput, error)
	DeleteQueue(ctx context.Context, params *sqs.DeleteQueueInput, optFns ...func(*sqs.Options)) (*sqs.DeleteQueueOutput, error)
	ListQueueTags(ctx context.Context, params *sqs.ListQueueTagsInput, optFns ...func(*sqs.Options)) (*sqs.ListQueueTagsOutput, error)
	TagQueue(ctx context.Context, params *sqs.TagQueueInput, optFns ...func(*sqs.Options)) (*sqs.TagQueueOutput, error)
}

var _ QueueAdminAPI = (*sqs.Client)(nil)

// EnsureQueues creates the dead-letter queue and the main queue with its
// redrive policy, or brings the attributes of existing ones up to date. It
// is idempotent and returns the queue URLs.
func EnsureQueues(ctx context.Context, api QueueAdminAPI, q Queues, s QueueSettings) (mainURL, deadURL string, err error) {
	if err := q.Validate(); err != nil {
		return "", "", err
	}
	deadURL, err = ensureQueue(ctx, api, q.DeadLetterInput())
	if err != nil {
		return "", "", err
	}
	arn, err := queueARNAt(ctx, api, deadURL, q.DeadLetter)
	if err != nil {
		return "", "", err
	}
	mainURL, err = ensureQueue(ctx, api, q.MainInput(arn, s))
	if err != nil {
		return "", "", err
	}
	return mainURL, deadURL, nil
}

// ensureQueue creates a queue, or sets the attributes of the existing one
// of that name.
func ensureQueue(ctx context.Context, api QueueAdminAPI, in *sqs.CreateQueueInput) (string, error) {
	name := aws.ToString(in.QueueName)
	out, err := api.CreateQueue(ctx, in)
	if err == nil {
		return aws.ToString(out.QueueUrl), nil
	}
	var exists *types.QueueNameExists
	if !errors.As(err, &exists) {
		return "", Explain(wrapQueue("CreateQueue", name, err))
	}
	u, err := api.GetQueueUrl(ctx, &sqs.GetQueueUrlInput{QueueName: in.QueueName})
	if err != nil {
		return "", Explain(wrapQueue("GetQueueUrl", name, err))
	}
	if _, err := api.SetQueueAttributes(ctx, &sqs.SetQueueAttributesInput{QueueUrl: u.QueueUrl, Attributes: in.Attributes}); err != nil {
		return "", Explain(wrapQueue("SetQueueAttributes", name, err))
	}
	return aws.ToString(u.QueueUrl), nil
}

// DeleteQueues deletes both queues; queues that do not exist, and blank
// names (see OwnQueues), are skipped.
func DeleteQueues(ctx context.Context, api QueueAdminAPI, q Queues) error {
	return DeleteQueuesReporting(ctx, api, q, nil)
}

// DeleteQueuesReporting is DeleteQueues, calling gone (when not nil) with
// each queue's name once it is deleted (or found gone).
func DeleteQueuesReporting(ctx context.Context, api QueueAdminAPI, q Queues, gone func(name string)) error {
	if gone == nil {
		gone = func(string) {}
	}
	for _, n := range q.DeletionOrder() {
		if n == "" {
			continue
		}
		u, err := api.GetQueueUrl(ctx, &sqs.GetQueueUrlInput{QueueName: aws.String(n)})
		var missing *types.QueueDoesNotExist
		if errors.As(err, &missing) {
			gone(n)
			continue
		}
		if err != nil {
			return Explain(wrapQueue("GetQueueUrl", n, err))
		}
		if _, err := api.DeleteQueue(ctx, &sqs.DeleteQueueInput{QueueUrl: u.QueueUrl}); err != nil && !errors.As(err, &missing) {
			return Explain(wrapQueue("DeleteQueue", n, err))
		}
		gone(n)
	}
	return nil
}
