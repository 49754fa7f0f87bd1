package awsops

import (
	"context"
	"errors"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	dbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"
)

// TagApp is the tag provision puts on every table and queue it makes
// (app=socks, since the first AWS backend); teardown deletes only tables
// and queues that carry it.
const TagApp = "app"

// Foreign is a table or queue of a stack's names that socks did not make:
// teardown leaves it alone.
type Foreign struct {
	Kind   string `json:"kind"`
	Name   string `json:"name"`
	Reason string `json:"reason"`
}

func (f Foreign) String() string { return f.Kind + " " + f.Name + ": " + f.Reason }

const foreignReason = "it has no app=socks tag, so socks did not make it; delete it yourself if it is yours to delete"

// OwnTables returns t without the tables that exist but lack the app=socks
// tag (their names blanked, so DeleteTables skips them), and those tables.
// Tables that do not exist stay: deleting them is a no-op.
func OwnTables(ctx context.Context, api TableAdminAPI, t Tables) (Tables, []Foreign, error) {
	var foreign []Foreign
	want := map[string]*dynamodb.CreateTableInput{}
	for _, in := range t.CreateInputs() {
		want[aws.ToString(in.TableName)] = in
	}
	for _, n := range []*string{&t.Connections, &t.ChatterIDs, &t.Reports} {
		if *n == "" {
			continue
		}
		d, err := api.DescribeTable(ctx, &dynamodb.DescribeTableInput{TableName: aws.String(*n)})
		var missing *dbtypes.ResourceNotFoundException
		if errors.As(err, &missing) {
			continue
		}
		if err != nil {
			return t, nil, Explain(wrapTable("DescribeTable", *n, err))
		}
		tags, err := api.ListTagsOfResource(ctx, &dynamodb.ListTagsOfResourceInput{ResourceArn: d.Table.TableArn})
		reason := foreignReason
		ours := false
		switch {
		case isCode(err, "UnknownOperationException"):
			// DynamoDB Local keeps no tags ("Tagging is not currently
			// supported"): the key schema provision gives the table is
			// the only sign left.
			ours = sameKeys(d.Table, want[*n])
			reason = "its keys are not the ones socks gives it, so socks did not make it (this DynamoDB endpoint keeps no tags to tell); delete it yourself if it is yours to delete"
		case err != nil:
			return t, nil, Explain(wrapTable("ListTagsOfResource", *n, err))
		}
		if tags != nil {
			for _, tag := range tags.Tags {
				ours = ours || (aws.ToString(tag.Key) == TagApp && aws.ToString(tag.Value) == "socks")
			}
		}
		if !ours {
			foreign = append(foreign, Foreign{Kind: KindTable, Name: *n, Reason: reason})
			*n = ""
		}
	}
	return t, foreign, nil
}

// OwnQueues returns q without the queues that exist but lack the app=socks
// tag (their names blanked, so DeleteQueues skips them), and those queues.
func OwnQueues(ctx context.Context, api QueueAdminAPI, q Queues) (Queues, []Foreign, error) {
	var foreign []Foreign
	for _, n := range []*string{&q.Main, &q.DeadLetter} {
		if *n == "" {
			continue
		}
		u, err := api.GetQueueUrl(ctx, &sqs.GetQueueUrlInput{QueueName: aws.String(*n)})
		var missing *sqstypes.QueueDoesNotExist
		if errors.As(err, &missing) {
			continue
		}
		if err != nil {
			return q, nil, Explain(wrapQueue("GetQueueUrl", *n, err))
		}
		tags, err := api.ListQueueTags(ctx, &sqs.ListQueueTagsInput{QueueUrl: u.QueueUrl})
		if err != nil {
			return q, nil, Explain(wrapQueue("ListQueueTags", *n, err))
		}
		if tags.Tags[TagApp] != "socks" {
			foreign = append(foreign, Foreign{Kind: KindQueue, Name: *n, Reason: foreignReason})
			*n = ""
		}
	}
	return q, foreign, nil
}

// sameKeys reports whether table has the key schema (and index names) that
// in gives it.
func sameKeys(table *dbtypes.TableDescription, in *dynamodb.CreateTableInput) bool {
	if table == nil || in == nil {
		return false
	}
	keys := func(k []dbtypes.KeySchemaElement) string {
		s := ""
		for _, e := range k {
			s += aws.ToString(e.AttributeName) + "/" + string(e.KeyType) + ","
		}
		return s
	}
	if keys(table.KeySchema) != keys(in.KeySchema) || len(table.GlobalSecondaryIndexes) != len(in.GlobalSecondaryIndexes) {
		return false
	}
	for i, g := range in.GlobalSecondaryIndexes {
		if aws.ToString(table.GlobalSecondaryIndexes[i].IndexName) != aws.ToString(g.IndexName) || keys(table.GlobalSecondaryIndexes[i].KeySchema) != keys(g.KeySchema) {
			return false
		}
	}
	return true
}
