package awsops

import (
	"context"
	"errors"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	dbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"
)

// TagStack is the tag every taggable resource of a stack carries (the
// tables and queues, and what deploy stands up); its value is the stack
// name. Deploy and teardown find the API by it and check it on the role,
// the function and the log group.
const TagStack = "socks:stack"

// Aspects of the stack tag (CheckStackTags).
const (
	// AspectStackTag: a table or queue socks made (app=socks) before it
	// tagged them with their stack. Not a conflict: provision and deploy
	// add the tag, which changes nothing else.
	AspectStackTag = "stack tag"
	// AspectOtherStack: the table or queue is tagged as another stack's.
	AspectOtherStack = "stack"
)

// Repair reports whether the drift is one that provision and deploy put
// right by themselves, without touching data: a missing stack tag.
func (d Drift) Repair() bool { return d.Aspect == AspectStackTag }

// Repairs returns the drifts that are repairs (Drift.Repair).
func Repairs(drifts []Drift) []Drift {
	var out []Drift
	for _, d := range drifts {
		if d.Repair() {
			out = append(out, d)
		}
	}
	return out
}

// tagState is what the tags of a table or queue say about its owner.
type tagState struct {
	// socks: it has app=socks.
	socks bool
	// stack is its socks:stack tag ("" when it has none).
	stack string
}

func tagsOf(m map[string]string) tagState {
	return tagState{socks: m[TagApp] == "socks", stack: m[TagStack]}
}

// otherStack returns the stack a socks resource is tagged as when that is
// not stack ("" when it is stack's, or untagged).
func (s tagState) otherStack(stack string) string {
	if stack != "" && s.stack != "" && s.stack != stack {
		return s.stack
	}
	return ""
}

// errNoTags: the endpoint keeps no tags (DynamoDB Local).
var errNoTags = errors.New("this endpoint keeps no tags")

// StackTagTableAPI and StackTagQueueAPI are the parts of the DynamoDB and
// SQS clients CheckStackTags calls (read only); TableAdminAPI and
// QueueAdminAPI satisfy them.
type (
	StackTagTableAPI interface {
		DescribeTable(ctx context.Context, params *dynamodb.DescribeTableInput, optFns ...func(*dynamodb.Options)) (*dynamodb.DescribeTableOutput, error)
		ListTagsOfResource(ctx context.Context, params *dynamodb.ListTagsOfResourceInput, optFns ...func(*dynamodb.Options)) (*dynamodb.ListTagsOfResourceOutput, error)
	}
	StackTagQueueAPI interface {
		GetQueueUrl(ctx context.Context, params *sqs.GetQueueUrlInput, optFns ...func(*sqs.Options)) (*sqs.GetQueueUrlOutput, error)
		ListQueueTags(ctx context.Context, params *sqs.ListQueueTagsInput, optFns ...func(*sqs.Options)) (*sqs.ListQueueTagsOutput, error)
	}
)

var (
	_ StackTagTableAPI = TableAdminAPI(nil)
	_ StackTagQueueAPI = QueueAdminAPI(nil)
)

// tableTags reads the tags of table name (nil, nil when it does not exist;
// errNoTags on DynamoDB Local), with its description.
func tableTags(ctx context.Context, api StackTagTableAPI, name string) (*dbtypes.TableDescription, map[string]string, error) {
	d, err := api.DescribeTable(ctx, &dynamodb.DescribeTableInput{TableName: aws.String(name)})
	var missing *dbtypes.ResourceNotFoundException
	if errors.As(err, &missing) {
		return nil, nil, nil
	}
	if err != nil {
		return nil, nil, Explain(wrapTable("DescribeTable", name, err))
	}
	m := map[string]string{}
	in := &dynamodb.ListTagsOfResourceInput{ResourceArn: d.Table.TableArn}
	pages := pageTokens{what: "DynamoDB ListTagsOfResource"}
	for {
		tags, err := api.ListTagsOfResource(ctx, in)
		if isCode(err, "UnknownOperationException") {
			// DynamoDB Local: "Tagging is not currently supported".
			return d.Table, nil, errNoTags
		}
		if err != nil {
			return d.Table, nil, Explain(wrapTable("ListTagsOfResource", name, err))
		}
		for _, t := range tags.Tags {
			m[aws.ToString(t.Key)] = aws.ToString(t.Value)
		}
		more, err := pages.next(tags.NextToken)
		if err != nil {
			return d.Table, nil, fmt.Errorf("reading the tags of table %s: %w; list them with `aws dynamodb list-tags-of-resource --resource-arn %s`", name, err, aws.ToString(d.Table.TableArn))
		}
		if !more {
			return d.Table, m, nil
		}
		in.NextToken = tags.NextToken
	}
}

// queueTags reads the URL and tags of queue name ("", nil, nil when it does
// not exist).
func queueTags(ctx context.Context, api StackTagQueueAPI, name string) (string, map[string]string, error) {
	u, err := api.GetQueueUrl(ctx, &sqs.GetQueueUrlInput{QueueName: aws.String(name)})
	var missing *sqstypes.QueueDoesNotExist
	if errors.As(err, &missing) {
		return "", nil, nil
	}
	if err != nil {
		return "", nil, Explain(wrapQueue("GetQueueUrl", name, err))
	}
	tags, err := api.ListQueueTags(ctx, &sqs.ListQueueTagsInput{QueueUrl: u.QueueUrl})
	if err != nil {
		return "", nil, Explain(wrapQueue("ListQueueTags", name, err))
	}
	if tags.Tags == nil {
		tags.Tags = map[string]string{}
	}
	return aws.ToString(u.QueueUrl), tags.Tags, nil
}

// stackTagDrift is the drift of one resource's stack tag, if any.
func stackTagDrift(kind, name, stack string, s tagState) (Drift, bool) {
	if !s.socks {
		// Not socks's (or made by hand): provision leaves its tags alone,
		// and teardown leaves it alone.
		return Drift{}, false
	}
	want := TagStack + "=" + stack
	switch {
	case s.stack == "":
		return Drift{Kind: kind, Name: name, Aspect: AspectStackTag, Is: "no " + TagStack + " tag (made by a socks before stacks were tagged)", Want: want,
			Fix: "provision or deploy adds the tag; it changes nothing else"}, true
	case s.stack != stack:
		return Drift{Kind: kind, Name: name, Aspect: AspectOtherStack, Is: TagStack + "=" + s.stack, Want: want,
			Fix: fmt.Sprintf("it is stack %s's: use --stack %s, or, if it truly is stack %s's, tag it %s", s.stack, s.stack, stack, want)}, true
	}
	return Drift{}, false
}

// CheckStackTags compares the socks:stack tag of the stack's existing
// tables and queues that socks made (app=socks) with t.Stack: one without
// it is a repair (AspectStackTag), one tagged as another stack's a
// conflict (AspectOtherStack). It only reads. Where the endpoint keeps no
// tags (DynamoDB Local) there is nothing to check.
func CheckStackTags(ctx context.Context, db StackTagTableAPI, sq StackTagQueueAPI, t Tables, q Queues) ([]Drift, error) {
	var out []Drift
	if t.Stack != "" {
		for _, n := range t.Names() {
			d, tags, err := tableTags(ctx, db, n)
			if errors.Is(err, errNoTags) || d == nil && err == nil {
				continue
			}
			if err != nil {
				return nil, err
			}
			if dr, ok := stackTagDrift(KindTable, n, t.Stack, tagsOf(tags)); ok {
				out = append(out, dr)
			}
		}
	}
	if q.Stack != "" {
		for _, n := range q.Names() {
			u, tags, err := queueTags(ctx, sq, n)
			if err != nil {
				return nil, err
			}
			if u == "" {
				continue
			}
			if dr, ok := stackTagDrift(KindQueue, n, q.Stack, tagsOf(tags)); ok {
				out = append(out, dr)
			}
		}
	}
	return out, nil
}

// ApplyStackTags tags each table and queue of a repair drift (see
// CheckStackTags) socks:stack=STACK. It returns the drifts it repaired.
func ApplyStackTags(ctx context.Context, db TableAdminAPI, sq QueueAdminAPI, t Tables, q Queues, drifts []Drift) ([]Drift, error) {
	var done []Drift
	for _, dr := range Repairs(drifts) {
		switch dr.Kind {
		case KindTable:
			d, err := db.DescribeTable(ctx, &dynamodb.DescribeTableInput{TableName: aws.String(dr.Name)})
			if err != nil {
				return done, Explain(wrapTable("DescribeTable", dr.Name, err))
			}
			if _, err := db.TagResource(ctx, &dynamodb.TagResourceInput{ResourceArn: d.Table.TableArn,
				Tags: []dbtypes.Tag{{Key: aws.String(TagStack), Value: aws.String(t.Stack)}}}); err != nil {
				return done, Explain(wrapTable("TagResource", dr.Name, err))
			}
		case KindQueue:
			u, err := sq.GetQueueUrl(ctx, &sqs.GetQueueUrlInput{QueueName: aws.String(dr.Name)})
			if err != nil {
				return done, Explain(wrapQueue("GetQueueUrl", dr.Name, err))
			}
			if _, err := sq.TagQueue(ctx, &sqs.TagQueueInput{QueueUrl: u.QueueUrl, Tags: map[string]string{TagStack: q.Stack}}); err != nil {
				return done, Explain(wrapQueue("TagQueue", dr.Name, err))
			}
		}
		done = append(done, dr)
	}
	return done, nil
}
