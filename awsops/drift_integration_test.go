package awsops

import (
	"context"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsmiddleware "github.com/aws/aws-sdk-go-v2/aws/middleware"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/smithy-go/middleware"
)

// TestCreateMissingThenNoDriftOnTheEmulators provisions a fresh stack on
// DynamoDB Local and ElasticMQ, and checks that the emulators then describe
// it exactly as provision meant it.
func TestCreateMissingThenNoDriftOnTheEmulators(t *testing.T) {
	db, sq := testDynamoClient(t), testSQSClient(t)
	stack := uniqueName("drift")
	tables, queues := TablesFor(stack), QueuesFor(stack)
	deleteTablesAtCleanup(t, db, tables)
	deleteQueuesAtCleanup(t, sq, queues)

	drifts, err := CheckDrift(t.Context(), db, sq, tables, queues, QueueSettings{})
	if err != nil {
		t.Fatal(err)
	}
	plan := PlanChanges(drifts)
	if len(plan) != 5 || len(Conflicts(drifts)) != 0 {
		t.Fatalf("on an empty stack: plan %v, drifts:\n%s", plan, driftLines(drifts))
	}
	if _, err := CreateMissing(t.Context(), db, sq, tables, queues, plan, CreateOptions{Wait: time.Minute}); err != nil {
		t.Fatal(err)
	}
	drifts, err = CheckDrift(t.Context(), db, sq, tables, queues, QueueSettings{})
	if err != nil {
		t.Fatal(err)
	}
	if len(drifts) != 0 {
		t.Errorf("after provisioning, drifts:\n%s", driftLines(drifts))
	}
}

// TestDriftOfResourcesMadeByHandOnTheEmulators makes a connections table
// without the index and TTL, and a main queue without a redrive policy and
// with a short visibility timeout, and checks that each drift is found.
func TestDriftOfResourcesMadeByHandOnTheEmulators(t *testing.T) {
	db, sq := testDynamoClient(t), testSQSClient(t)
	stack := uniqueName("hand")
	tables, queues := TablesFor(stack), QueuesFor(stack)
	in := tables.CreateInputs()[0]
	in.GlobalSecondaryIndexes = nil
	in.AttributeDefinitions = in.AttributeDefinitions[:2]
	if _, err := db.CreateTable(t.Context(), in); err != nil {
		t.Fatal(err)
	}
	q, err := sq.CreateQueue(t.Context(), &sqs.CreateQueueInput{QueueName: aws.String(queues.Main), Attributes: map[string]string{"VisibilityTimeout": "30"}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx := cleanupContext(t)
		_, _ = db.DeleteTable(ctx, &dynamodb.DeleteTableInput{TableName: in.TableName})
		_, _ = sq.DeleteQueue(ctx, &sqs.DeleteQueueInput{QueueUrl: q.QueueUrl})
	})

	drifts, err := CheckDrift(t.Context(), db, sq, tables, queues, QueueSettings{})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, d := range Conflicts(drifts) {
		got = append(got, d.Name+": "+d.Aspect)
	}
	want := []string{
		tables.Connections + ": index by-geek",
		tables.Connections + ": time to live",
		queues.Main + ": redrive policy",
		queues.Main + ": visibility timeout",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("conflicts:\n%s\nwant:\n%s\nall drifts:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"), driftLines(drifts))
	}
}

// TestCreateMissingFinishesTablesWhoseCreatesWereRetriedOnTheEmulators
// sends each CreateTable twice, as the SDK's retry of a call whose answer
// was lost does, so that DynamoDB Local answers the second with
// ResourceInUseException for the table the first made. Provision stopped
// there ("appeared while provisioning"); it now finishes, as deploy's
// EnsureTables did, and leaves no drift.
func TestCreateMissingFinishesTablesWhoseCreatesWereRetriedOnTheEmulators(t *testing.T) {
	endpoint, _ := emulatorEndpoints(t)
	cfg := dummyConfig()
	var retried atomic.Int32
	cfg.APIOptions = append(slices.Clone(cfg.APIOptions), func(s *middleware.Stack) error {
		return s.Initialize.Add(middleware.InitializeMiddlewareFunc("sentTwice", func(ctx context.Context, in middleware.InitializeInput, next middleware.InitializeHandler) (middleware.InitializeOutput, middleware.Metadata, error) {
			out, md, err := next.HandleInitialize(ctx, in)
			if err != nil || awsmiddleware.GetOperationName(ctx) != "CreateTable" {
				return out, md, err
			}
			retried.Add(1)
			return next.HandleInitialize(ctx, in)
		}), middleware.After)
	})
	db, sq := NewDynamoDB(cfg, endpoint), testSQSClient(t)
	stack := uniqueName("retried")
	tables, queues := TablesFor(stack), QueuesFor(stack)
	deleteTablesAtCleanup(t, db, tables)
	deleteQueuesAtCleanup(t, sq, queues)
	drifts, err := CheckDrift(t.Context(), db, sq, tables, queues, QueueSettings{})
	if err != nil {
		t.Fatal(err)
	}
	plan := PlanChanges(drifts)
	done, err := CreateMissing(t.Context(), db, sq, tables, queues, plan, CreateOptions{Wait: time.Minute})
	if err != nil {
		t.Fatalf("CreateMissing with every CreateTable sent twice: %v", err)
	}
	if !slices.Equal(done, plan) || int(retried.Load()) != len(tables.Names()) {
		t.Errorf("done %v after %d CreateTable sent twice; want %v after %d", done, retried.Load(), plan, len(tables.Names()))
	}
	drifts, err = CheckDrift(t.Context(), db, sq, tables, queues, QueueSettings{})
	if err != nil || len(drifts) != 0 {
		t.Errorf("after provisioning: drifts %s, err %v; want none", driftLines(drifts), err)
	}
}
