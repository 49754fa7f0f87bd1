package awsops

import (
	"context"
	"errors"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	dbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

// TagApp is the tag provision puts on every table and queue it makes
// (app=socks, since the first AWS backend); teardown deletes only tables
// and queues that carry it.
const TagApp = "app"

// Foreign is a table or queue of a stack's names that is not the stack's:
// teardown leaves it alone, or, when it is another stack's, refuses.
type Foreign struct {
	Kind   string `json:"kind"`
	Name   string `json:"name"`
	Reason string `json:"reason"`
	// Stack is the other stack it is tagged as (socks:stack), when it is
	// one: teardown then deletes nothing.
	Stack string `json:"stack,omitempty"`
}

func (f Foreign) String() string { return f.Kind + " " + f.Name + ": " + f.Reason }

const foreignReason = "it has no app=socks tag, so socks did not make it; delete it yourself if it is yours to delete"

// otherStackForeign is a resource tagged as another stack's.
func otherStackForeign(kind, name, stack, other string) Foreign {
	return Foreign{Kind: kind, Name: name, Stack: other,
		Reason: fmt.Sprintf("it is tagged %s=%s, so it is stack %s's, not stack %s's: tear down stack %s with --stack %s", TagStack, other, other, stack, other, other)}
}

// notOwned says whether the table or queue kind name, carrying tags, is
// not stack's, and why: it lacks app=socks, or it is tagged as another
// stack's.
func notOwned(kind, name, stack string, tags map[string]string) (Foreign, bool) {
	s := tagsOf(tags)
	switch {
	case !s.socks:
		return Foreign{Kind: kind, Name: name, Reason: foreignReason}, true
	case s.otherStack(stack) != "":
		return otherStackForeign(kind, name, stack, s.stack), true
	}
	return Foreign{}, false
}

// OwnTables returns t without the tables that exist but are not the
// stack's (their names blanked, so DeleteTables skips them), and those
// tables. A table is the stack's when it has the app=socks tag and either
// socks:stack=t.Stack or no stack tag (made by a socks before stacks were
// tagged); one tagged as another stack's comes back with Foreign.Stack set.
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
		d, tags, err := tableTags(ctx, api, *n)
		switch {
		case errors.Is(err, errNoTags):
			// DynamoDB Local keeps no tags: the key schema provision
			// gives the table is the only sign left.
			if !sameKeys(d, want[*n]) {
				foreign = append(foreign, Foreign{Kind: KindTable, Name: *n, Reason: "its keys are not the ones socks gives it, so socks did not make it (this DynamoDB endpoint keeps no tags to tell); delete it yourself if it is yours to delete"})
				*n = ""
			}
			continue
		case err != nil:
			return t, nil, err
		case d == nil:
			continue
		}
		if f, ok := notOwned(KindTable, *n, t.Stack, tags); ok {
			foreign = append(foreign, f)
			*n = ""
		}
	}
	return t, foreign, nil
}

// OwnQueues returns q without the queues that exist but are not the
// stack's (their names blanked, so DeleteQueues skips them), and those
// queues; the stack's are as OwnTables says.
func OwnQueues(ctx context.Context, api QueueAdminAPI, q Queues) (Queues, []Foreign, error) {
	var foreign []Foreign
	for _, n := range []*string{&q.Main, &q.DeadLetter} {
		if *n == "" {
			continue
		}
		u, tags, err := queueTags(ctx, api, *n)
		if err != nil {
			return q, nil, err
		}
		if u == "" {
			continue
		}
		if f, ok := notOwned(KindQueue, *n, q.Stack, tags); ok {
			foreign = append(foreign, f)
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
