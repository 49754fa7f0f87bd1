package awsops

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	dynamotypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"
	"github.com/aws/smithy-go"
)

// fakeAccount is a DynamoDB and SQS account in memory: the tables and
// queues it holds, described the way the services describe them. It counts
// every call by operation, so tests prove that a check changed nothing.
type fakeAccount struct {
	mu     sync.Mutex
	tables map[string]*dynamotypes.TableDescription
	ttl    map[string]*dynamotypes.TimeToLiveDescription
	queues map[string]map[string]string // name → attributes
	calls  map[string]int
	// fail, when set, is returned by every call.
	fail error
}

const fakeQueuePrefix = "arn:aws:sqs:us-east-1:000000000000:"

func newFakeAccount() *fakeAccount {
	return &fakeAccount{
		tables: map[string]*dynamotypes.TableDescription{},
		ttl:    map[string]*dynamotypes.TimeToLiveDescription{},
		queues: map[string]map[string]string{},
		calls:  map[string]int{},
	}
}

func (f *fakeAccount) call(op string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls[op]++
	return f.fail
}

// writes counts the calls that would change something.
func (f *fakeAccount) writes() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := 0
	for op, c := range f.calls {
		if !strings.HasPrefix(op, "Describe") && !strings.HasPrefix(op, "Get") {
			n += c
		}
	}
	return n
}

// provisioned fills the account with the stack exactly as provision creates
// it.
func (f *fakeAccount) provisioned(t Tables, q Queues, s QueueSettings) {
	for _, in := range t.CreateInputs() {
		f.addTable(in)
	}
	for _, in := range t.TTLInputs() {
		f.ttl[aws.ToString(in.TableName)] = &dynamotypes.TimeToLiveDescription{
			TimeToLiveStatus: dynamotypes.TimeToLiveStatusEnabled, AttributeName: in.TimeToLiveSpecification.AttributeName,
		}
	}
	dead := q.DeadLetterInput()
	f.addQueue(dead)
	f.addQueue(q.MainInput(fakeQueuePrefix+q.DeadLetter, s))
}

func (f *fakeAccount) addTable(in *dynamodb.CreateTableInput) {
	d := &dynamotypes.TableDescription{
		TableName:            in.TableName,
		TableStatus:          dynamotypes.TableStatusActive,
		KeySchema:            in.KeySchema,
		AttributeDefinitions: in.AttributeDefinitions,
	}
	for _, g := range in.GlobalSecondaryIndexes {
		d.GlobalSecondaryIndexes = append(d.GlobalSecondaryIndexes, dynamotypes.GlobalSecondaryIndexDescription{
			IndexName: g.IndexName, KeySchema: g.KeySchema, Projection: g.Projection, IndexStatus: dynamotypes.IndexStatusActive,
		})
	}
	f.tables[aws.ToString(in.TableName)] = d
	f.ttl[aws.ToString(in.TableName)] = &dynamotypes.TimeToLiveDescription{TimeToLiveStatus: dynamotypes.TimeToLiveStatusDisabled}
}

func (f *fakeAccount) addQueue(in *sqs.CreateQueueInput) {
	attrs := map[string]string{"QueueArn": fakeQueuePrefix + aws.ToString(in.QueueName), "VisibilityTimeout": "30"}
	for k, v := range in.Attributes {
		attrs[k] = v
	}
	f.queues[aws.ToString(in.QueueName)] = attrs
}

func (f *fakeAccount) DescribeTable(_ context.Context, in *dynamodb.DescribeTableInput, _ ...func(*dynamodb.Options)) (*dynamodb.DescribeTableOutput, error) {
	if err := f.call("DescribeTable"); err != nil {
		return nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	d, ok := f.tables[aws.ToString(in.TableName)]
	if !ok {
		return nil, &dynamotypes.ResourceNotFoundException{Message: aws.String("Requested resource not found")}
	}
	return &dynamodb.DescribeTableOutput{Table: d}, nil
}

func (f *fakeAccount) DescribeTimeToLive(_ context.Context, in *dynamodb.DescribeTimeToLiveInput, _ ...func(*dynamodb.Options)) (*dynamodb.DescribeTimeToLiveOutput, error) {
	if err := f.call("DescribeTimeToLive"); err != nil {
		return nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	return &dynamodb.DescribeTimeToLiveOutput{TimeToLiveDescription: f.ttl[aws.ToString(in.TableName)]}, nil
}

func (f *fakeAccount) CreateTable(_ context.Context, in *dynamodb.CreateTableInput, _ ...func(*dynamodb.Options)) (*dynamodb.CreateTableOutput, error) {
	if err := f.call("CreateTable"); err != nil {
		return nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.tables[aws.ToString(in.TableName)]; ok {
		return nil, &dynamotypes.ResourceInUseException{Message: aws.String("Table already exists")}
	}
	f.addTable(in)
	return &dynamodb.CreateTableOutput{}, nil
}

func (f *fakeAccount) DeleteTable(context.Context, *dynamodb.DeleteTableInput, ...func(*dynamodb.Options)) (*dynamodb.DeleteTableOutput, error) {
	panic("DeleteTable must not be called")
}

func (f *fakeAccount) UpdateTimeToLive(_ context.Context, in *dynamodb.UpdateTimeToLiveInput, _ ...func(*dynamodb.Options)) (*dynamodb.UpdateTimeToLiveOutput, error) {
	if err := f.call("UpdateTimeToLive"); err != nil {
		return nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.ttl[aws.ToString(in.TableName)] = &dynamotypes.TimeToLiveDescription{
		TimeToLiveStatus: dynamotypes.TimeToLiveStatusEnabled, AttributeName: in.TimeToLiveSpecification.AttributeName,
	}
	return &dynamodb.UpdateTimeToLiveOutput{}, nil
}

func (f *fakeAccount) GetQueueUrl(_ context.Context, in *sqs.GetQueueUrlInput, _ ...func(*sqs.Options)) (*sqs.GetQueueUrlOutput, error) {
	if err := f.call("GetQueueUrl"); err != nil {
		return nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.queues[aws.ToString(in.QueueName)]; !ok {
		return nil, &sqstypes.QueueDoesNotExist{Message: aws.String("The specified queue does not exist.")}
	}
	return &sqs.GetQueueUrlOutput{QueueUrl: aws.String("http://127.0.0.1:9324/000000000000/" + aws.ToString(in.QueueName))}, nil
}

func (f *fakeAccount) GetQueueAttributes(_ context.Context, in *sqs.GetQueueAttributesInput, _ ...func(*sqs.Options)) (*sqs.GetQueueAttributesOutput, error) {
	if err := f.call("GetQueueAttributes"); err != nil {
		return nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	u := aws.ToString(in.QueueUrl)
	attrs, ok := f.queues[u[strings.LastIndexByte(u, '/')+1:]]
	if !ok {
		return nil, &sqstypes.QueueDoesNotExist{}
	}
	out := map[string]string{}
	for _, n := range in.AttributeNames {
		if v, ok := attrs[string(n)]; ok {
			out[string(n)] = v
		}
	}
	return &sqs.GetQueueAttributesOutput{Attributes: out}, nil
}

func (f *fakeAccount) CreateQueue(_ context.Context, in *sqs.CreateQueueInput, _ ...func(*sqs.Options)) (*sqs.CreateQueueOutput, error) {
	if err := f.call("CreateQueue"); err != nil {
		return nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.queues[aws.ToString(in.QueueName)]; ok {
		return nil, &sqstypes.QueueNameExists{}
	}
	f.addQueue(in)
	return &sqs.CreateQueueOutput{QueueUrl: aws.String("http://127.0.0.1:9324/000000000000/" + aws.ToString(in.QueueName))}, nil
}

func (f *fakeAccount) SetQueueAttributes(context.Context, *sqs.SetQueueAttributesInput, ...func(*sqs.Options)) (*sqs.SetQueueAttributesOutput, error) {
	panic("SetQueueAttributes must not be called")
}

func (f *fakeAccount) DeleteQueue(context.Context, *sqs.DeleteQueueInput, ...func(*sqs.Options)) (*sqs.DeleteQueueOutput, error) {
	panic("DeleteQueue must not be called")
}

func (f *fakeAccount) ListTagsOfResource(context.Context, *dynamodb.ListTagsOfResourceInput, ...func(*dynamodb.Options)) (*dynamodb.ListTagsOfResourceOutput, error) {
	panic("ListTagsOfResource must not be called")
}

func (f *fakeAccount) ListQueueTags(context.Context, *sqs.ListQueueTagsInput, ...func(*sqs.Options)) (*sqs.ListQueueTagsOutput, error) {
	panic("ListQueueTags must not be called")
}

func (f *fakeAccount) TagResource(context.Context, *dynamodb.TagResourceInput, ...func(*dynamodb.Options)) (*dynamodb.TagResourceOutput, error) {
	panic("TagResource must not be called")
}

func (f *fakeAccount) TagQueue(context.Context, *sqs.TagQueueInput, ...func(*sqs.Options)) (*sqs.TagQueueOutput, error) {
	panic("TagQueue must not be called")
}

var (
	_ TableAdminAPI = (*fakeAccount)(nil)
	_ QueueAdminAPI = (*fakeAccount)(nil)
)

func TestCheckDrift(t *testing.T) {
	tables, queues := TablesFor("prod"), QueuesFor("prod")
	var settings QueueSettings
	type want struct{ name, aspect, is, fix string }
	for _, tc := range []struct {
		name   string
		mutate func(f *fakeAccount)
		want   []want
	}{
		{name: "a stack as provision creates it has no drift", mutate: func(*fakeAccount) {}},
		{
			name: "an empty account misses every table and queue, dead-letter queue before the main queue",
			mutate: func(f *fakeAccount) {
				*f = *newFakeAccount()
			},
			want: []want{
				{name: "prod-connections", aspect: AspectMissing},
				{name: "prod-chatter", aspect: AspectMissing},
				{name: "prod-reports", aspect: AspectMissing},
				{name: "prod-envelopes-dlq", aspect: AspectMissing},
				{name: "prod-envelopes", aspect: AspectMissing},
			},
		},
		{
			name: "a table keyed by a number is a key schema drift that says the key cannot change",
			mutate: func(f *fakeAccount) {
				d := f.tables["prod-reports"]
				d.AttributeDefinitions = []dynamotypes.AttributeDefinition{{AttributeName: aws.String("id"), AttributeType: dynamotypes.ScalarAttributeTypeN}}
			},
			want: []want{{name: "prod-reports", aspect: AspectKeySchema, is: "partition key id (N), no sort key", fix: "cannot change"}},
		},
		{
			name: "a connections table without the by-geek index says how to add it",
			mutate: func(f *fakeAccount) {
				f.tables["prod-connections"].GlobalSecondaryIndexes = nil
			},
			want: []want{{name: "prod-connections", aspect: "index by-geek", is: "absent",
				fix: `aws dynamodb update-table --table-name prod-connections --attribute-definitions AttributeName=gpk,AttributeType=S AttributeName=gsk,AttributeType=S --global-secondary-index-updates '[{"Create":{"IndexName":"by-geek","KeySchema":[{"AttributeName":"gpk","KeyType":"HASH"},{"AttributeName":"gsk","KeyType":"RANGE"}],"Projection":{"ProjectionType":"ALL"}}}]'`}},
		},
		{
			name: "an index that projects keys only is a drift",
			mutate: func(f *fakeAccount) {
				f.tables["prod-connections"].GlobalSecondaryIndexes[0].Projection = &dynamotypes.Projection{ProjectionType: dynamotypes.ProjectionTypeKeysOnly}
			},
			want: []want{{name: "prod-connections", aspect: "index by-geek", is: "partition key gpk (S), sort key gsk (S), keys only projected", fix: "Delete"}},
		},
		{
			name: "TTL off says which command turns it on",
			mutate: func(f *fakeAccount) {
				f.ttl["prod-chatter"] = &dynamotypes.TimeToLiveDescription{TimeToLiveStatus: dynamotypes.TimeToLiveStatusDisabled}
			},
			want: []want{{name: "prod-chatter", aspect: AspectTTL, is: "off: expired records are never deleted",
				fix: "aws dynamodb update-time-to-live --table-name prod-chatter --time-to-live-specification Enabled=true,AttributeName=expiresAt"}},
		},
		{
			name: "TTL on another attribute is a drift",
			mutate: func(f *fakeAccount) {
				f.ttl["prod-chatter"] = &dynamotypes.TimeToLiveDescription{TimeToLiveStatus: dynamotypes.TimeToLiveStatusEnabled, AttributeName: aws.String("ttl")}
			},
			want: []want{{name: "prod-chatter", aspect: AspectTTL, is: "on, attribute ttl", fix: "Enabled=false,AttributeName=ttl"}},
		},
		{
			name: "a table being deleted is reported once, by its status",
			mutate: func(f *fakeAccount) {
				f.tables["prod-chatter"].TableStatus = dynamotypes.TableStatusDeleting
			},
			want: []want{{name: "prod-chatter", aspect: AspectStatus, is: "DELETING", fix: "table-not-exists"}},
		},
		{
			name: "a table still being created (by another provision, a template) is reported, not called in place",
			mutate: func(f *fakeAccount) {
				f.tables["prod-connections"].TableStatus = dynamotypes.TableStatusCreating
			},
			want: []want{{name: "prod-connections", aspect: AspectStatus, is: "CREATING", fix: "aws dynamodb wait table-exists --table-name prod-connections"}},
		},
		{
			name: "a table being updated serves and is fine",
			mutate: func(f *fakeAccount) {
				f.tables["prod-connections"].TableStatus = dynamotypes.TableStatusUpdating
			},
		},
		{
			name: "an index still being built is reported, not called in place: DynamoDB refuses its reads until it is active",
			mutate: func(f *fakeAccount) {
				gsi := &f.tables["prod-connections"].GlobalSecondaryIndexes[0]
				gsi.IndexStatus, gsi.Backfilling = dynamotypes.IndexStatusCreating, aws.Bool(true)
			},
			want: []want{{name: "prod-connections", aspect: "index by-geek", is: "being built (CREATING, backfilling)", fix: "then run `socks provision` again"}},
		},
		{
			name: "an index the user added, and provisioned capacity, are left alone",
			mutate: func(f *fakeAccount) {
				d := f.tables["prod-connections"]
				d.GlobalSecondaryIndexes = append(d.GlobalSecondaryIndexes, dynamotypes.GlobalSecondaryIndexDescription{
					IndexName:  aws.String("mine"),
					KeySchema:  []dynamotypes.KeySchemaElement{{AttributeName: aws.String("geek"), KeyType: dynamotypes.KeyTypeHash}},
					Projection: &dynamotypes.Projection{ProjectionType: dynamotypes.ProjectionTypeKeysOnly},
				})
				d.BillingModeSummary = &dynamotypes.BillingModeSummary{BillingMode: dynamotypes.BillingModeProvisioned}
			},
		},
		{
			name: "a queue without a redrive policy says how to set it",
			mutate: func(f *fakeAccount) {
				delete(f.queues["prod-envelopes"], "RedrivePolicy")
			},
			want: []want{{name: "prod-envelopes", aspect: AspectRedrive, is: "none: a message that keeps failing is never moved to the dead letters",
				fix: `aws sqs set-queue-attributes --queue-url http://127.0.0.1:9324/000000000000/prod-envelopes --attributes '{"RedrivePolicy":"{\"deadLetterTargetArn\":\"arn:aws:sqs:us-east-1:000000000000:prod-envelopes-dlq\",\"maxReceiveCount\":\"7\"}"}'`}},
		},
		{
			name: "a redrive policy to another queue is a drift",
			mutate: func(f *fakeAccount) {
				f.queues["prod-envelopes"]["RedrivePolicy"] = `{"deadLetterTargetArn":"arn:aws:sqs:us-east-1:000000000000:other-dlq","maxReceiveCount":7}`
			},
			want: []want{{name: "prod-envelopes", aspect: AspectRedrive, is: "dead-letter target arn:aws:sqs:us-east-1:000000000000:other-dlq, maxReceiveCount 7"}},
		},
		{
			name: "a redrive policy that moves messages before the broker gives up is a drift",
			mutate: func(f *fakeAccount) {
				f.queues["prod-envelopes"]["RedrivePolicy"] = `{"deadLetterTargetArn":"arn:aws:sqs:us-east-1:000000000000:prod-envelopes-dlq","maxReceiveCount":3}`
			},
			want: []want{{name: "prod-envelopes", aspect: AspectRedrive, is: "dead-letter target prod-envelopes-dlq, maxReceiveCount 3: SQS moves messages before the broker can record why"}},
		},
		{
			name: "a redrive policy without a dead-letter target is unreadable, saying so",
			mutate: func(f *fakeAccount) {
				f.queues["prod-envelopes"]["RedrivePolicy"] = `{"maxReceiveCount":7}`
			},
			want: []want{{name: "prod-envelopes", aspect: AspectRedrive, is: `unreadable ("{\"maxReceiveCount\":7}" has no deadLetterTargetArn)`}},
		},
		{
			name: "a numeric maxReceiveCount above the broker's limit is fine",
			mutate: func(f *fakeAccount) {
				f.queues["prod-envelopes"]["RedrivePolicy"] = `{"deadLetterTargetArn":"arn:aws:sqs:us-east-1:000000000000:prod-envelopes-dlq","maxReceiveCount":10}`
			},
		},
		{
			name: "a visibility timeout under six times the broker timeout is a drift",
			mutate: func(f *fakeAccount) {
				f.queues["prod-envelopes"]["VisibilityTimeout"] = "30"
			},
			want: []want{{name: "prod-envelopes", aspect: AspectVisibility, is: "30 s",
				fix: "aws sqs set-queue-attributes --queue-url http://127.0.0.1:9324/000000000000/prod-envelopes --attributes VisibilityTimeout=180"}},
		},
		{
			name: "a longer visibility timeout is fine",
			mutate: func(f *fakeAccount) {
				f.queues["prod-envelopes"]["VisibilityTimeout"] = "900"
			},
		},
		{
			name: "a queue that refuses messages under 1 MiB is a drift (queues made before SQS's limit rose keep 256 KiB)",
			mutate: func(f *fakeAccount) {
				f.queues["prod-envelopes"]["MaximumMessageSize"] = "262144"
				f.queues["prod-envelopes-dlq"]["MaximumMessageSize"] = "262144"
			},
			want: []want{
				{name: "prod-envelopes-dlq", aspect: AspectMessageSize, is: "262144 bytes",
					fix: "aws sqs set-queue-attributes --queue-url http://127.0.0.1:9324/000000000000/prod-envelopes-dlq --attributes MaximumMessageSize=1048576"},
				{name: "prod-envelopes", aspect: AspectMessageSize, is: "262144 bytes",
					fix: "aws sqs set-queue-attributes --queue-url http://127.0.0.1:9324/000000000000/prod-envelopes --attributes MaximumMessageSize=1048576"},
			},
		},
		{
			name: "a queue that does not say its maximum message size is taken as fine (an emulator)",
			mutate: func(f *fakeAccount) {
				delete(f.queues["prod-envelopes"], "MaximumMessageSize")
			},
		},
		{
			name: "a missing dead-letter queue that the policy already names is only missing",
			mutate: func(f *fakeAccount) {
				delete(f.queues, "prod-envelopes-dlq")
			},
			want: []want{{name: "prod-envelopes-dlq", aspect: AspectMissing}},
		},
		{
			name: "several drifts are all reported",
			mutate: func(f *fakeAccount) {
				f.tables["prod-connections"].GlobalSecondaryIndexes = nil
				f.ttl["prod-connections"] = nil
				f.queues["prod-envelopes"]["VisibilityTimeout"] = "60"
				delete(f.queues["prod-envelopes"], "RedrivePolicy")
			},
			want: []want{
				{name: "prod-connections", aspect: "index by-geek"},
				{name: "prod-connections", aspect: AspectTTL},
				{name: "prod-envelopes", aspect: AspectRedrive},
				{name: "prod-envelopes", aspect: AspectVisibility},
			},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFakeAccount()
			f.provisioned(tables, queues, settings)
			tc.mutate(f)
			drifts, err := CheckDrift(t.Context(), f, f, tables, queues, settings)
			if err != nil {
				t.Fatal(err)
			}
			if len(drifts) != len(tc.want) {
				t.Fatalf("got %d drifts, want %d:\n%s", len(drifts), len(tc.want), driftLines(drifts))
			}
			for i, w := range tc.want {
				d := drifts[i]
				if d.Name != w.name || d.Aspect != w.aspect || (w.is != "" && d.Is != w.is) || !strings.Contains(d.Fix, w.fix) {
					t.Errorf("drift %d = %s\nwant %s %s, is %q, fix containing %q", i, d, w.name, w.aspect, w.is, w.fix)
				}
				if d.Is == "" || d.Want == "" || d.Fix == "" {
					t.Errorf("drift %d does not say what is, what should be and how to fix it: %+v", i, d)
				}
			}
			if n := f.writes(); n != 0 {
				t.Errorf("CheckDrift made %d calls that change something: %v", n, f.calls)
			}
		})
	}
}

func driftLines(ds []Drift) string {
	var b strings.Builder
	for _, d := range ds {
		b.WriteString(d.String() + "\n")
	}
	return b.String()
}

func TestCheckDriftExplainsFailedCalls(t *testing.T) {
	f := newFakeAccount()
	f.fail = &smithy.GenericAPIError{Code: "AccessDeniedException", Message: "not allowed"}
	_, err := CheckDrift(t.Context(), f, f, TablesFor("prod"), QueuesFor("prod"), QueueSettings{})
	if err == nil || !strings.Contains(err.Error(), "access denied") {
		t.Fatalf("err = %v; want an explained access denied", err)
	}
}

func TestCheckDriftRefusesBadNames(t *testing.T) {
	f := newFakeAccount()
	if _, err := CheckDrift(t.Context(), f, f, TablesFor("a b"), QueuesFor("a b"), QueueSettings{}); err == nil || !strings.Contains(err.Error(), "--stack") {
		t.Fatalf("err = %v; want a bad --stack", err)
	}
	if len(f.calls) != 0 {
		t.Errorf("calls %v; want none", f.calls)
	}
}

func TestCreateMissingCreatesOnlyWhatIsMissingInOrder(t *testing.T) {
	tables, queues := TablesFor("prod"), QueuesFor("prod")
	f := newFakeAccount()
	f.provisioned(tables, queues, QueueSettings{})
	delete(f.tables, "prod-reports")
	delete(f.ttl, "prod-reports")
	delete(f.queues, "prod-envelopes")
	delete(f.queues, "prod-envelopes-dlq")

	drifts, err := CheckDrift(t.Context(), f, f, tables, queues, QueueSettings{})
	if err != nil {
		t.Fatal(err)
	}
	if c := Conflicts(drifts); len(c) != 0 {
		t.Fatalf("conflicts: %s", driftLines(c))
	}
	plan := PlanChanges(drifts)
	wantPlan := []Change{{KindTable, "prod-reports"}, {KindQueue, "prod-envelopes-dlq"}, {KindQueue, "prod-envelopes"}}
	if !slices.Equal(plan, wantPlan) {
		t.Fatalf("plan %v; want %v", plan, wantPlan)
	}
	var phases []string
	done, err := CreateMissing(t.Context(), f, f, tables, queues, plan, CreateOptions{
		Wait:     time.Second,
		Progress: func(p Progress) { phases = append(phases, p.Change.Name+" "+p.Phase) },
	})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(done, wantPlan) {
		t.Errorf("done %v; want %v", done, wantPlan)
	}
	wantPhases := []string{
		"prod-reports creating", "prod-reports waiting", "prod-reports enabling TTL", "prod-reports done",
		"prod-envelopes-dlq creating", "prod-envelopes-dlq done",
		"prod-envelopes creating", "prod-envelopes done",
	}
	if !slices.Equal(phases, wantPhases) {
		t.Errorf("progress %q; want %q", phases, wantPhases)
	}
	if f.calls["CreateTable"] != 1 || f.calls["UpdateTimeToLive"] != 1 || f.calls["CreateQueue"] != 2 {
		t.Errorf("calls %v; want one CreateTable, one UpdateTimeToLive, two CreateQueue", f.calls)
	}
	drifts, err = CheckDrift(t.Context(), f, f, tables, queues, QueueSettings{})
	if err != nil || len(drifts) != 0 {
		t.Errorf("after CreateMissing: drifts %s, err %v; want none", driftLines(drifts), err)
	}
}

// retriedCreates is a fakeAccount whose CreateTable makes the table and
// then answers ResourceInUseException: what the SDK's retry of a
// CreateTable whose answer was lost gets from DynamoDB.
type retriedCreates struct{ *fakeAccount }

func (r retriedCreates) CreateTable(ctx context.Context, in *dynamodb.CreateTableInput, optFns ...func(*dynamodb.Options)) (*dynamodb.CreateTableOutput, error) {
	if _, err := r.fakeAccount.CreateTable(ctx, in, optFns...); err != nil {
		return nil, err
	}
	return r.fakeAccount.CreateTable(ctx, in, optFns...)
}

// TestCreateMissingFinishesATableWhoseCreateWasRetried: provision stopped
// with "appeared while provisioning" when the SDK retried a CreateTable
// DynamoDB had done, where deploy's EnsureTables carried on. They now
// share createTable: the table is waited for, TTL turned on, and the
// change done.
func TestCreateMissingFinishesATableWhoseCreateWasRetried(t *testing.T) {
	tables, queues := TablesFor("prod"), QueuesFor("prod")
	f := newFakeAccount()
	f.provisioned(tables, queues, QueueSettings{})
	delete(f.tables, "prod-reports")
	delete(f.ttl, "prod-reports")
	plan := []Change{{KindTable, "prod-reports"}}
	done, err := CreateMissing(t.Context(), retriedCreates{f}, f, tables, queues, plan, CreateOptions{Wait: time.Second})
	if err != nil {
		t.Fatalf("CreateMissing with the CreateTable retried: %v", err)
	}
	if !slices.Equal(done, plan) {
		t.Errorf("done %v; want %v", done, plan)
	}
	drifts, err := CheckDrift(t.Context(), f, f, tables, queues, QueueSettings{})
	if err != nil || len(drifts) != 0 {
		t.Errorf("after CreateMissing: drifts %s, err %v; want none", driftLines(drifts), err)
	}
}

// TestCreateMissingTakesATableThatAppearedMeanwhile: a table another
// provision made meanwhile, as this one would, is taken as done (its TTL,
// already on, is not turned on again); one of another key is not.
func TestCreateMissingTakesATableThatAppearedMeanwhile(t *testing.T) {
	tables, queues := TablesFor("prod"), QueuesFor("prod")
	f := newFakeAccount()
	f.provisioned(tables, queues, QueueSettings{})
	plan := []Change{{KindTable, "prod-chatter"}}
	done, err := CreateMissing(t.Context(), f, f, tables, queues, plan, CreateOptions{Wait: time.Second})
	if err != nil || !slices.Equal(done, plan) {
		t.Fatalf("CreateMissing = %v, %v; want %v done", done, err, plan)
	}
	if f.calls["UpdateTimeToLive"] != 0 {
		t.Errorf("calls %v; want no UpdateTimeToLive on a table whose TTL is on", f.calls)
	}

	f = newFakeAccount()
	f.provisioned(tables, queues, QueueSettings{})
	other := *f.tables["prod-chatter"]
	other.KeySchema = []dynamotypes.KeySchemaElement{{AttributeName: aws.String("other"), KeyType: dynamotypes.KeyTypeHash}}
	other.AttributeDefinitions = []dynamotypes.AttributeDefinition{{AttributeName: aws.String("other"), AttributeType: dynamotypes.ScalarAttributeTypeS}}
	f.tables["prod-chatter"] = &other
	_, err = CreateMissing(t.Context(), f, f, tables, queues, plan, CreateOptions{Wait: time.Second})
	if err == nil || !strings.Contains(err.Error(), "table prod-chatter appeared with other settings while provisioning") || !strings.Contains(err.Error(), "run `socks provision` again") {
		t.Fatalf("err = %v; want the table that appeared with another key named", err)
	}
}

// TestCreateMissingFinishesTheOtherTablesWhenOneAppearedOtherwise: a
// table that appeared with another key stopped CreateMissing before the
// tables it had created after it were given their TTL, so that once the
// user dealt with that table, the rerun refused the others as drift (time
// to live off), as 8274f82 fixed for a CreateTable that fails.
func TestCreateMissingFinishesTheOtherTablesWhenOneAppearedOtherwise(t *testing.T) {
	tables, queues := TablesFor("prod"), QueuesFor("prod")
	f := newFakeAccount()
	other := &dynamodb.CreateTableInput{
		TableName:            aws.String("prod-chatter"),
		KeySchema:            []dynamotypes.KeySchemaElement{{AttributeName: aws.String("other"), KeyType: dynamotypes.KeyTypeHash}},
		AttributeDefinitions: []dynamotypes.AttributeDefinition{{AttributeName: aws.String("other"), AttributeType: dynamotypes.ScalarAttributeTypeS}},
	}
	f.addTable(other)
	plan := []Change{{KindTable, "prod-chatter"}, {KindTable, "prod-reports"}}
	done, err := CreateMissing(t.Context(), f, f, tables, queues, plan, CreateOptions{Wait: time.Second})
	if err == nil || !strings.Contains(err.Error(), "table prod-chatter appeared with other settings") {
		t.Fatalf("err = %v; want the table that appeared with another key named", err)
	}
	if want := []Change{{KindTable, "prod-reports"}}; !slices.Equal(done, want) {
		t.Errorf("done %v; want %v", done, want)
	}
	if d := f.ttl["prod-reports"]; d == nil || d.TimeToLiveStatus != dynamotypes.TimeToLiveStatusEnabled {
		t.Errorf("prod-reports TTL %+v; want it on: the rerun refuses a table without it", d)
	}
	if f.calls["CreateQueue"] != 0 {
		t.Errorf("calls %v; want no queue created after a table that is not as wanted", f.calls)
	}
}

// stuckCreates is a fakeAccount whose CreateTable leaves the table
// CREATING for ever, and refuses (AccessDenied) to create deny.
type stuckCreates struct {
	*fakeAccount
	deny string
}

func (s stuckCreates) CreateTable(ctx context.Context, in *dynamodb.CreateTableInput, optFns ...func(*dynamodb.Options)) (*dynamodb.CreateTableOutput, error) {
	if aws.ToString(in.TableName) == s.deny {
		return nil, &smithy.GenericAPIError{Code: "AccessDeniedException", Message: "not authorized to perform: dynamodb:CreateTable"}
	}
	out, err := s.fakeAccount.CreateTable(ctx, in, optFns...)
	if err == nil {
		s.mu.Lock()
		s.tables[aws.ToString(in.TableName)].TableStatus = dynamotypes.TableStatusCreating
		s.mu.Unlock()
	}
	return out, err
}

// TestCreateMissingStoppedAndOutwaitedSaysBoth: a CreateTable refused
// after another table was created, which then did not become active in
// time, ended with the wait alone: the refusal, which the rerun meets
// again, was not said.
func TestCreateMissingStoppedAndOutwaitedSaysBoth(t *testing.T) {
	tables, queues := TablesFor("prod"), QueuesFor("prod")
	f := newFakeAccount()
	plan := []Change{{KindTable, "prod-chatter"}, {KindTable, "prod-reports"}}
	_, err := CreateMissing(t.Context(), stuckCreates{f, "prod-reports"}, f, tables, queues, plan, CreateOptions{Wait: time.Millisecond})
	if err == nil || !strings.Contains(err.Error(), "CreateTable on table prod-reports") || !strings.Contains(err.Error(), "table prod-chatter did not become active") {
		t.Fatalf("err = %v; want both the refused CreateTable of prod-reports and the wait for prod-chatter", err)
	}
	if strings.Contains(err.Error(), "\n") {
		t.Errorf("err = %q; want one line", err)
	}
	var ee *ExplainedError
	if !errors.As(err, &ee) {
		t.Errorf("err = %v; want the explained refusal kept", err)
	}
}

func TestCreateMissingExplainsFailures(t *testing.T) {
	f := newFakeAccount()
	f.fail = &smithy.GenericAPIError{Code: "AccessDeniedException", Message: "no"}
	_, err := CreateMissing(t.Context(), f, f, TablesFor("prod"), QueuesFor("prod"), []Change{{KindTable, "prod-chatter"}}, CreateOptions{})
	var ee *ExplainedError
	if !errors.As(err, &ee) || !strings.Contains(err.Error(), "CreateTable on table prod-chatter") {
		t.Fatalf("err = %v; want an explained access denied naming CreateTable and the table", err)
	}
}

// TestAQueueDeletedRecentlySaysToWaitAndRerun: provisioning within 60 s
// of a teardown failed with SQS's own words and code
// (AWS.SimpleQueueService.QueueDeletedRecently). It is one line saying to
// wait and run again, through Explain, whether the SDK gives its typed
// error or only the code.
func TestAQueueDeletedRecentlySaysToWaitAndRerun(t *testing.T) {
	queues := QueuesFor("prod")
	msg := "You must wait 60 seconds after deleting a queue before you can create another queue with the same name."
	for name, fail := range map[string]error{
		"typed":   &sqstypes.QueueDeletedRecently{Message: aws.String(msg), ErrorCodeOverride: aws.String("AWS.SimpleQueueService.QueueDeletedRecently")},
		"by code": &smithy.GenericAPIError{Code: "AWS.SimpleQueueService.QueueDeletedRecently", Message: msg},
	} {
		t.Run(name, func(t *testing.T) {
			f := newFakeAccount()
			f.fail = fail
			_, err := CreateMissing(t.Context(), f, f, TablesFor("prod"), queues, []Change{{KindQueue, queues.DeadLetter}}, CreateOptions{})
			if err == nil {
				t.Fatal("CreateMissing succeeded")
			}
			want := "queue " + queues.DeadLetter + " was deleted less than 60 seconds ago"
			if got := err.Error(); !strings.Contains(got, want) || !strings.Contains(got, "wait 60 seconds and run the command again") || strings.Contains(got, "\n") {
				t.Errorf("err = %q; want one line with %q, saying to wait and run again", got, want)
			}
			if !errors.Is(err, fail) {
				t.Error("the explained error does not wrap SQS's")
			}
		})
	}
}

// A main queue's RedrivePolicy is read as SQS writes it (the count a
// number, or a string as some emulators write it): a policy without a
// dead-letter target read as one to the queue "" ("dead-letter target ,
// maxReceiveCount 7"), a target that is no SQS queue's ARN or a count SQS
// never holds (0, -1, 5000) as a policy that merely differed, a key in
// another case ("MaxReceiveCount") as the key, and a count written as
// the JSON string "\u0037" as no number; JSON that did not parse was
// refused in encoding/json's words. Each is now unreadable, saying why.
func TestARedrivePolicyIsReadAsSQSWritesIt(t *testing.T) {
	const arn = "arn:aws:sqs:us-east-1:000000000000:prod-envelopes-dlq"
	for _, tc := range []struct {
		raw   string
		count int
	}{
		{`{"deadLetterTargetArn":"` + arn + `","maxReceiveCount":7}`, 7},
		{`{"deadLetterTargetArn":"` + arn + `","maxReceiveCount":"7"}`, 7},
		{`{"deadLetterTargetArn":"` + arn + `","maxReceiveCount":"\u0037"}`, 7},
		{`{"deadLetterTargetArn":"` + arn + `","maxReceiveCount":1000}`, 1000},
		{`{"maxReceiveCount":1,"deadLetterTargetArn":"arn:aws-cn:sqs:cn-north-1:1:q.fifo"}`, 1},
	} {
		target, count, err := parseRedrivePolicy(tc.raw)
		if err != nil || target == "" || count != tc.count {
			t.Errorf("%s: read as %q, %d, %v; want its target and %d", tc.raw, target, count, err, tc.count)
		}
	}
	for raw, why := range map[string]string{
		`{"maxReceiveCount":7}`:                                                                                 "has no deadLetterTargetArn",
		`{"deadLetterTargetArn":"","maxReceiveCount":7}`:                                                        "has no deadLetterTargetArn",
		`{"deadLetterTargetArn":"` + arn + `"}`:                                                                 "has no maxReceiveCount",
		`{"deadLetterTargetArn":"prod-envelopes-dlq","maxReceiveCount":7}`:                                      `has deadLetterTargetArn "prod-envelopes-dlq", which is no SQS queue's ARN`,
		`{"deadLetterTargetArn":"arn:aws:sns:us-east-1:1:prod-envelopes-dlq","maxReceiveCount":7}`:              "which is no SQS queue's ARN",
		`{"deadLetterTargetArn":"arn:aws:sqs:us-east-1:1:","maxReceiveCount":7}`:                                "which is no SQS queue's ARN",
		`{"deadLetterTargetArn":"arn:aws:sqs:us-east-1:1:a:b","maxReceiveCount":7}`:                             "which is no SQS queue's ARN",
		`{"deadLetterTargetArn":"` + arn + `","maxReceiveCount":0}`:                                             "has maxReceiveCount 0: SQS allows 1 to 1000",
		`{"deadLetterTargetArn":"` + arn + `","maxReceiveCount":-1}`:                                            "has maxReceiveCount -1: SQS allows 1 to 1000",
		`{"deadLetterTargetArn":"` + arn + `","maxReceiveCount":"5000"}`:                                        "has maxReceiveCount 5000: SQS allows 1 to 1000",
		`{"deadLetterTargetArn":"` + arn + `","maxReceiveCount":99999999999999999999}`:                          "has maxReceiveCount 99999999999999999999: SQS allows 1 to 1000",
		`{"deadLetterTargetArn":"` + arn + `","maxReceiveCount":7.5}`:                                           "has maxReceiveCount 7.5, not a whole number",
		`{"deadLetterTargetArn":"` + arn + `","maxReceiveCount":"+7"}`:                                          `has maxReceiveCount "+7", not a whole number`,
		`{"deadLetterTargetArn":"` + arn + `","maxReceiveCount":[ 7 ]}`:                                         "has maxReceiveCount a list, not a whole number",
		`{"deadLetterTargetArn":"` + arn + `","MaxReceiveCount":7}`:                                             `has key "MaxReceiveCount", not "maxReceiveCount": keys are case-sensitive`,
		`{"deadLetterTargetArn":7,"maxReceiveCount":7}`:                                                         `has "deadLetterTargetArn" as a number; it must be a string`,
		`{"deadLetterTargetArn":"arn:aws:sqs:us-east-1:1:\u001b[2J","maxReceiveCount":7}`:                       `has deadLetterTargetArn "arn:aws:sqs:us-east-1:1:\x1b[2J", which is no SQS queue's ARN`,
		`{"deadLetterTargetArn":"arn:aws:sqs:us-east-1:1:` + strings.Repeat("q", 81) + `","maxReceiveCount":7}`: "which is no SQS queue's ARN",
		`[]`: "must be a JSON object",
		`{`:  "is not valid JSON",
	} {
		target, count, err := parseRedrivePolicy(raw)
		if err == nil || !strings.Contains(err.Error(), why) || strings.Contains(err.Error(), "json:") {
			t.Errorf("%s: read as %q, %d, %v; want it refused saying %q", raw, target, count, err, why)
		}
	}
}
