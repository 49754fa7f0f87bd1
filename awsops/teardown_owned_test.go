package awsops

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	dbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/socks-dev/socks/internal/emulatortest"
)

// TestTeardownLeavesTablesAndQueuesSocksDidNotMake: a table and a queue
// made by hand under the names of a stack (a typo, a shared name), without
// socks's tag, are reported as foreign and left alone with their items and
// messages by DeleteTables and DeleteQueues; the stack's tagged ones go.
// Tables on moto (DynamoDB Local keeps no tags), queues on ElasticMQ.
func TestTeardownLeavesTablesAndQueuesSocksDidNotMake(t *testing.T) {
	t.Parallel()
	cfg, moto := emulatortest.MotoAWS(t)
	db, sq := NewDynamoDB(cfg, moto), testSQSClient(t)
	ctx := t.Context()
	stack := uniqueName("own")
	tables, queues := TablesFor(stack), QueuesFor(stack)
	for _, in := range tables.CreateInputs() {
		if aws.ToString(in.TableName) == tables.Connections {
			in.Tags = nil // the user's own table, made by hand
		}
		if _, err := db.CreateTable(ctx, in); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() { _ = DeleteTables(cleanupContext(t), db, tables, time.Minute) })
	if _, err := db.PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String(tables.Connections), Item: map[string]dbtypes.AttributeValue{
		"pk": &dbtypes.AttributeValueMemberS{Value: "mine"}, "sk": &dbtypes.AttributeValueMemberS{Value: "mine"},
	}}); err != nil {
		t.Fatal(err)
	}
	if _, err := sq.CreateQueue(ctx, queues.DeadLetterInput()); err != nil {
		t.Fatal(err)
	}
	mine, err := sq.CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String(queues.Main)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = DeleteQueues(cleanupContext(t), sq, queues) })
	if _, err := sq.SendMessage(ctx, &sqs.SendMessageInput{QueueUrl: mine.QueueUrl, MessageBody: aws.String("mine")}); err != nil {
		t.Fatal(err)
	}

	ownTables, foreignTables, err := OwnTables(ctx, db, tables)
	if err != nil {
		t.Fatal(err)
	}
	ownQueues, foreignQueues, err := OwnQueues(ctx, sq, queues)
	if err != nil {
		t.Fatal(err)
	}
	foreign := append(foreignTables, foreignQueues...)
	if len(foreign) != 2 || foreign[0].Name != tables.Connections || foreign[1].Name != queues.Main || foreign[0].Reason == "" {
		t.Fatalf("foreign = %+v, want the hand-made table %s and queue %s", foreign, tables.Connections, queues.Main)
	}
	if err := DeleteQueues(ctx, sq, ownQueues); err != nil {
		t.Fatal(err)
	}
	if err := DeleteTables(ctx, db, ownTables, time.Minute); err != nil {
		t.Fatal(err)
	}

	got, err := db.GetItem(ctx, &dynamodb.GetItemInput{TableName: aws.String(tables.Connections), ConsistentRead: aws.Bool(true), Key: map[string]dbtypes.AttributeValue{
		"pk": &dbtypes.AttributeValueMemberS{Value: "mine"}, "sk": &dbtypes.AttributeValueMemberS{Value: "mine"},
	}})
	if err != nil || got.Item == nil {
		t.Fatalf("the hand-made table lost its item: %v, %v", got, err)
	}
	n, err := sq.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{QueueUrl: mine.QueueUrl, AttributeNames: []sqstypes.QueueAttributeName{sqstypes.QueueAttributeNameApproximateNumberOfMessages}})
	if err != nil || n.Attributes["ApproximateNumberOfMessages"] != "1" {
		t.Fatalf("the hand-made queue lost its message: %v, %v", n, err)
	}
	for _, name := range []string{tables.ChatterIDs, tables.Reports} {
		if _, err := db.DescribeTable(ctx, &dynamodb.DescribeTableInput{TableName: aws.String(name)}); !isCode(err, "ResourceNotFoundException") {
			t.Errorf("socks's table %s is still there: %v", name, err)
		}
	}
	if _, err := sq.GetQueueUrl(ctx, &sqs.GetQueueUrlInput{QueueName: aws.String(queues.DeadLetter)}); err == nil {
		t.Errorf("socks's queue %s is still there", queues.DeadLetter)
	}
}

// TestTeardownOnDynamoDBLocalLeavesATableWithOtherKeys: DynamoDB Local
// keeps no tags, so a table is socks's when it has the keys provision gives
// it: a hand-made table of the same name with other keys is left alone
// with its items, socks's own tables go.
func TestTeardownOnDynamoDBLocalLeavesATableWithOtherKeys(t *testing.T) {
	t.Parallel()
	db := testDynamoClient(t)
	ctx := t.Context()
	tables := TablesFor(uniqueName("own"))
	for _, in := range tables.CreateInputs() {
		if aws.ToString(in.TableName) == tables.Reports {
			in = &dynamodb.CreateTableInput{TableName: in.TableName, BillingMode: in.BillingMode,
				AttributeDefinitions: []dbtypes.AttributeDefinition{{AttributeName: aws.String("userId"), AttributeType: dbtypes.ScalarAttributeTypeS}},
				KeySchema:            []dbtypes.KeySchemaElement{{AttributeName: aws.String("userId"), KeyType: dbtypes.KeyTypeHash}}}
		}
		if _, err := db.CreateTable(ctx, in); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() { _ = DeleteTables(cleanupContext(t), db, tables, time.Minute) })
	key := map[string]dbtypes.AttributeValue{"userId": &dbtypes.AttributeValueMemberS{Value: "mine"}}
	if _, err := db.PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String(tables.Reports), Item: key}); err != nil {
		t.Fatal(err)
	}
	own, foreign, err := OwnTables(ctx, db, tables)
	if err != nil {
		t.Fatal(err)
	}
	if len(foreign) != 1 || foreign[0].Name != tables.Reports {
		t.Fatalf("foreign = %+v, want the hand-made %s", foreign, tables.Reports)
	}
	if err := DeleteTables(ctx, db, own, time.Minute); err != nil {
		t.Fatal(err)
	}
	got, err := db.GetItem(ctx, &dynamodb.GetItemInput{TableName: aws.String(tables.Reports), ConsistentRead: aws.Bool(true), Key: key})
	if err != nil || got.Item == nil {
		t.Fatalf("the hand-made table lost its item: %v, %v", got, err)
	}
	for _, name := range []string{tables.Connections, tables.ChatterIDs} {
		if _, err := db.DescribeTable(ctx, &dynamodb.DescribeTableInput{TableName: aws.String(name)}); !isCode(err, "ResourceNotFoundException") {
			t.Errorf("socks's table %s is still there: %v", name, err)
		}
	}
}

// stillDeleting is a DynamoDB whose tables are still being deleted when
// DeleteTable is called again (the state a teardown rerun meets on AWS;
// DynamoDB Local deletes at once): DeleteTable deletes but answers
// ResourceInUseException, as AWS does for a table in DELETING, and the
// first DescribeTable of each table says DELETING.
type stillDeleting struct {
	TableAdminAPI
	mu        sync.Mutex
	described map[string]bool
}

func (s *stillDeleting) DeleteTable(ctx context.Context, in *dynamodb.DeleteTableInput, optFns ...func(*dynamodb.Options)) (*dynamodb.DeleteTableOutput, error) {
	if _, err := s.TableAdminAPI.DeleteTable(ctx, in, optFns...); err != nil {
		return nil, err
	}
	return nil, &dbtypes.ResourceInUseException{Message: aws.String("Attempt to change a resource which is still in use: Table is being deleted: " + aws.ToString(in.TableName))}
}

func (s *stillDeleting) DescribeTable(ctx context.Context, in *dynamodb.DescribeTableInput, optFns ...func(*dynamodb.Options)) (*dynamodb.DescribeTableOutput, error) {
	s.mu.Lock()
	first := !s.described[aws.ToString(in.TableName)]
	s.described[aws.ToString(in.TableName)] = true
	s.mu.Unlock()
	if first {
		return &dynamodb.DescribeTableOutput{Table: &dbtypes.TableDescription{TableName: in.TableName, TableStatus: dbtypes.TableStatusDeleting}}, nil
	}
	return s.TableAdminAPI.DescribeTable(ctx, in, optFns...)
}

// TestTeardownRerunWhileATableIsBeingDeletedWaitsForIt: DeleteTables on
// tables AWS is still deleting (ResourceInUseException) waits for them to
// be gone instead of failing until they are.
func TestTeardownRerunWhileATableIsBeingDeletedWaitsForIt(t *testing.T) {
	t.Parallel()
	db := testDynamoClient(t)
	tables := TablesFor(uniqueName("del"))
	if _, err := EnsureTables(t.Context(), db, tables, time.Minute); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = DeleteTables(cleanupContext(t), db, tables, time.Minute) })
	if err := DeleteTables(t.Context(), &stillDeleting{TableAdminAPI: db, described: map[string]bool{}}, tables, time.Minute); err != nil {
		t.Fatalf("a rerun while the tables are being deleted: %v", err)
	}
	for _, name := range tables.Names() {
		if _, err := db.DescribeTable(t.Context(), &dynamodb.DescribeTableInput{TableName: aws.String(name)}); !isCode(err, "ResourceNotFoundException") {
			t.Errorf("table %s is still there: %v", name, err)
		}
	}
}
