package awsops

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"
)

// Change is one resource that provisioning creates.
type Change struct {
	Kind string `json:"kind"`
	Name string `json:"name"`
}

func (c Change) String() string { return c.Kind + " " + c.Name }

// PlanChanges lists the resources to create for the missing ones among
// drifts, in the order CreateMissing creates them: tables, then the
// dead-letter queue before the main queue whose redrive policy names it.
func PlanChanges(drifts []Drift) []Change {
	var tables, queues []Change
	for _, d := range drifts {
		if !d.Missing() {
			continue
		}
		c := Change{Kind: d.Kind, Name: d.Name}
		if d.Kind == KindTable {
			tables = append(tables, c)
		} else {
			queues = append(queues, c)
		}
	}
	return append(tables, queues...)
}

// Phases of a change that CreateMissing reports.
const (
	PhaseCreating = "creating"
	// PhaseWaiting: the table was created and is not active yet.
	PhaseWaiting = "waiting"
	// PhaseTTL: time to live is being turned on.
	PhaseTTL  = "enabling TTL"
	PhaseDone = "done"
)

// Progress is one step of CreateMissing.
type Progress struct {
	Change Change
	Phase  string
	// Elapsed is the time since CreateMissing started.
	Elapsed time.Duration
}

// CreateOptions tune CreateMissing.
type CreateOptions struct {
	// Settings shape the main queue.
	Settings QueueSettings
	// Wait bounds the wait for the new tables to become active (default
	// five minutes).
	Wait time.Duration
	// Progress, when set, is called at each phase of each change, from the
	// calling goroutine.
	Progress func(Progress)
	// Now is the clock of Progress.Elapsed.
	Now func() time.Time
}

// DefaultCreateWait bounds how long CreateMissing waits for new tables.
const DefaultCreateWait = 5 * time.Minute

// CreateMissing creates the resources changes names (PlanChanges of a
// CheckDrift without conflicts): each table with its index, waiting for it
// with the SDK's waiter (bounded by opts.Wait) and then turning TTL on; the
// dead-letter queue; the main queue with its redrive policy. It touches
// nothing that exists already. It returns the changes it completed; when a
// CreateTable fails, or a table appeared otherwise than wanted, it still
// completes the other tables it created, and creates no queue.
func CreateMissing(ctx context.Context, db TableAdminAPI, sq QueueAdminAPI, t Tables, q Queues, changes []Change, opts CreateOptions) ([]Change, error) {
	now := opts.Now
	if now == nil {
		now = time.Now
	}
	wait := opts.Wait
	if wait <= 0 {
		wait = DefaultCreateWait
	}
	start := now()
	report := func(c Change, phase string) {
		if opts.Progress != nil {
			opts.Progress(Progress{Change: c, Phase: phase, Elapsed: now().Sub(start)})
		}
	}
	inputs := make(map[string]*dynamodb.CreateTableInput)
	for _, in := range t.CreateInputs() {
		inputs[aws.ToString(in.TableName)] = in
	}
	ttl := make(map[string]*dynamodb.UpdateTimeToLiveInput)
	for _, in := range t.TTLInputs() {
		ttl[aws.ToString(in.TableName)] = in
	}

	var done, creating []Change
	// stopped is the first error of a CreateTable that failed, or of a
	// table that appeared otherwise than wanted or whose TTL could not be
	// turned on: the other tables created are still waited for and given
	// their TTL, so that a rerun finds them whole (a table without TTL is
	// drift, which provision refuses), and then it is returned.
	var stopped error
	appeared := map[string]bool{}
	for _, c := range changes {
		if c.Kind != KindTable {
			continue
		}
		in, ok := inputs[c.Name]
		if !ok {
			return done, fmt.Errorf("table %s is not one of the stack's tables %v", c.Name, t.Names())
		}
		report(c, PhaseCreating)
		made, err := createTable(ctx, db, in)
		if err != nil {
			stopped = err
			break
		}
		appeared[c.Name] = !made
		creating = append(creating, c)
	}
	if len(creating) > 0 {
		deadline := now().Add(wait)
		waiter := dynamodb.NewTableExistsWaiter(db, func(o *dynamodb.TableExistsWaiterOptions) {
			o.MinDelay = 200 * time.Millisecond
			o.MaxDelay = 5 * time.Second
		})
		for _, c := range creating {
			report(c, PhaseWaiting)
			left := deadline.Sub(now())
			if left <= 0 {
				left = time.Millisecond
			}
			if err := waiter.Wait(ctx, &dynamodb.DescribeTableInput{TableName: aws.String(c.Name)}, left); err != nil {
				if ctx.Err() != nil {
					return done, ctx.Err()
				}
				err = fmt.Errorf("table %s did not become active within %s (run `socks provision` again to keep waiting): %w",
					c.Name, wait, Explain(wrapTable("DescribeTable", c.Name, err)))
				if stopped != nil {
					// The first failure, which the rerun meets again,
					// is said first.
					err = fmt.Errorf("%w; and %w", stopped, err)
				}
				return done, err
			}
			if appeared[c.Name] {
				// Made by the SDK's retry of this create, or by another
				// provision: taken as done only when it is as wanted.
				// One that is not stops CreateMissing as a failed
				// CreateTable does, once the other tables are finished.
				if err := checkAppeared(ctx, db, inputs[c.Name], "provisioning", "provision"); err != nil {
					if stopped == nil {
						stopped = err
					}
					continue
				}
			}
			report(c, PhaseTTL)
			if err := ensureTTL(ctx, db, ttl[c.Name]); err != nil {
				if ctx.Err() != nil {
					return done, ctx.Err()
				}
				if stopped == nil {
					stopped = err
				}
				continue
			}
			report(c, PhaseDone)
			done = append(done, c)
		}
	}
	if stopped != nil {
		return done, stopped
	}

	for _, c := range changes {
		if c.Kind != KindQueue {
			continue
		}
		var in *sqs.CreateQueueInput
		switch c.Name {
		case q.DeadLetter:
			in = q.DeadLetterInput()
		case q.Main:
			arn, err := queueARN(ctx, sq, q.DeadLetter)
			if err != nil {
				return done, err
			}
			in = q.MainInput(arn, opts.Settings)
		default:
			return done, fmt.Errorf("queue %s is not one of the stack's queues %v", c.Name, q.Names())
		}
		report(c, PhaseCreating)
		if _, err := sq.CreateQueue(ctx, in); err != nil {
			var exists *sqstypes.QueueNameExists
			if errors.As(err, &exists) {
				return done, fmt.Errorf("queue %s appeared with other settings while provisioning (another `socks provision`?): run `socks provision` again to check it", c.Name)
			}
			return done, Explain(wrapQueue("CreateQueue", c.Name, err))
		}
		report(c, PhaseDone)
		done = append(done, c)
	}
	return done, nil
}

// checkAppeared checks a table that CreateTable found already there (see
// createTable) as CheckDrift would, but for its time to live, which the
// caller (CreateMissing, EnsureTables) turns on next. doing and command
// name the caller's command in its message ("provisioning", "provision").
func checkAppeared(ctx context.Context, db TableAdminAPI, in *dynamodb.CreateTableInput, doing, command string) error {
	drifts, err := tableDrift(ctx, db, in)
	if err != nil {
		return err
	}
	var msgs []string
	for _, d := range Conflicts(drifts) {
		if d.Aspect != AspectTTL {
			msgs = append(msgs, fmt.Sprintf("%s is %s; want %s", d.Aspect, d.Is, d.Want))
		}
	}
	if len(msgs) > 0 {
		return fmt.Errorf("table %s appeared with other settings while %s (another `socks provision` or `socks deploy`, or made by hand?): %s; run `socks %s` again to check it",
			aws.ToString(in.TableName), doing, strings.Join(msgs, "; "), command)
	}
	return nil
}

// queueARN reads a queue's ARN.
func queueARN(ctx context.Context, api QueueAdminAPI, name string) (string, error) {
	u, err := api.GetQueueUrl(ctx, &sqs.GetQueueUrlInput{QueueName: aws.String(name)})
	if err != nil {
		return "", Explain(wrapQueue("GetQueueUrl", name, err))
	}
	return queueARNAt(ctx, api, aws.ToString(u.QueueUrl), name)
}

// queueARNAt reads the ARN of the queue called name at url.
func queueARNAt(ctx context.Context, api QueueAdminAPI, url, name string) (string, error) {
	out, err := api.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{
		QueueUrl:       aws.String(url),
		AttributeNames: []sqstypes.QueueAttributeName{sqstypes.QueueAttributeNameQueueArn},
	})
	if err != nil {
		return "", Explain(wrapQueue("GetQueueAttributes", name, err))
	}
	arn := out.Attributes[string(sqstypes.QueueAttributeNameQueueArn)]
	if arn == "" {
		return "", fmt.Errorf("queue %s has no QueueArn attribute", name)
	}
	return arn, nil
}
