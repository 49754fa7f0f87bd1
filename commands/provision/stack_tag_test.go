package provision

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	dbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/socks-dev/socks/awsops"
	"github.com/socks-dev/socks/commands/cmdutil"
	"github.com/socks-dev/socks/internal/emulatortest"
	"github.com/socks-dev/socks/iostreams"
)

func randomStack(prefix string) string {
	var b [5]byte
	_, _ = rand.Read(b[:])
	return prefix + "-" + hex.EncodeToString(b[:])
}

// makeData creates the tables and queues of stack the way a socks of
// tagStack would have: tagged socks:stack=tagStack, or, with tagStack "",
// without a stack tag (a socks from before stacks were tagged).
func makeData(t *testing.T, db awsops.TableAdminAPI, sq awsops.QueueAdminAPI, stack, tagStack string) {
	t.Helper()
	tables, queues := awsops.TablesFor(stack), awsops.QueuesFor(stack)
	tables.Stack, queues.Stack = tagStack, tagStack
	if _, err := awsops.EnsureTables(t.Context(), db, tables, time.Minute); err != nil {
		t.Fatal(err)
	}
	if _, _, err := awsops.EnsureQueues(t.Context(), sq, queues, awsops.QueueSettings{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		_ = awsops.DeleteQueues(ctx, sq, queues)
		_ = awsops.DeleteTables(ctx, db, tables, time.Minute)
	})
}

// stackTags reads the socks:stack tag of each table and queue of stack
// that exists, by name ("" for none; tables missing where the endpoint
// keeps no tags).
func stackTags(t *testing.T, db *dynamodb.Client, sq *sqs.Client, stack string) map[string]string {
	t.Helper()
	got := map[string]string{}
	for _, n := range awsops.TablesFor(stack).Names() {
		d, err := db.DescribeTable(t.Context(), &dynamodb.DescribeTableInput{TableName: aws.String(n)})
		if err != nil {
			continue
		}
		tags, err := db.ListTagsOfResource(t.Context(), &dynamodb.ListTagsOfResourceInput{ResourceArn: d.Table.TableArn})
		if err != nil {
			continue
		}
		got[n] = ""
		for _, tag := range tags.Tags {
			if aws.ToString(tag.Key) == awsops.TagStack {
				got[n] = aws.ToString(tag.Value)
			}
		}
	}
	for _, n := range awsops.QueuesFor(stack).Names() {
		u, err := sq.GetQueueUrl(t.Context(), &sqs.GetQueueUrlInput{QueueName: aws.String(n)})
		if err != nil {
			continue
		}
		tags, err := sq.ListQueueTags(t.Context(), &sqs.ListQueueTagsInput{QueueUrl: u.QueueUrl})
		if err != nil {
			t.Fatal(err)
		}
		got[n] = tags.Tags[awsops.TagStack]
	}
	return got
}

// TestProvisionTagsWhatWasMadeBeforeStacksWereTagged: tables and queues
// that an earlier socks made carry app=socks but no socks:stack tag.
// provision --dry-run lists them in "repaired" and tags nothing; provision
// tags them, and the next run has nothing to do. New ones are tagged when
// made. On moto (both keep tags) and on DynamoDB Local and ElasticMQ
// (DynamoDB Local keeps no tags: only the queues are tagged there).
func TestProvisionTagsWhatWasMadeBeforeStacksWereTagged(t *testing.T) {
	cfg, moto := emulatortest.MotoAWS(t)
	local := awsops.LocalConfig()
	for _, tc := range []struct {
		name        string
		db          *dynamodb.Client
		sq          *sqs.Client
		taggedTable bool
	}{
		{"moto", awsops.NewDynamoDB(cfg, moto), awsops.NewSQS(cfg, moto), true},
		{"DynamoDB Local and ElasticMQ", awsops.NewDynamoDB(local, emulatortest.DynamoDB(t)), awsops.NewSQS(local, emulatortest.SQS(t)), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			stack := randomStack("tagme")
			makeData(t, tc.db, tc.sq, stack, "")
			target := func(context.Context) (*Target, error) {
				return &Target{Tables: awsops.TablesFor(stack), Queues: awsops.QueuesFor(stack), DB: awsops.QuietNotFound(tc.db), SQS: tc.sq, Stack: stack, Region: "us-east-1"}, nil
			}
			ios, _, out, errOut := iostreams.Test()
			run := func(dryRun bool) Result {
				t.Helper()
				out.Reset()
				opts := &Options{IO: ios, Target: target, Now: time.Now, Wait: time.Minute, BrokerTimeout: awsops.DefaultBrokerTimeout, DryRun: dryRun, JSON: true}
				if err := provisionRun(t.Context(), opts); err != nil {
					t.Fatalf("provision: %v\n%s", err, errOut)
				}
				var res Result
				if err := json.Unmarshal(out.Bytes(), &res); err != nil {
					t.Fatalf("%v: %s", err, out)
				}
				return res
			}
			want := 2
			if tc.taggedTable {
				want = 5
			}
			res := run(true)
			if len(res.Repaired) != want || len(res.Drift) != 0 || len(res.Changes) != 0 {
				t.Fatalf("dry run: repaired %+v, drift %+v, changes %+v; want %d repairs and nothing else", res.Repaired, res.Drift, res.Changes, want)
			}
			for _, r := range res.Repaired {
				if r.Aspect != awsops.AspectStackTag || r.Want != awsops.TagStack+"="+stack {
					t.Errorf("repair %+v; want the stack tag %s=%s", r, awsops.TagStack, stack)
				}
			}
			for n, v := range stackTags(t, tc.db, tc.sq, stack) {
				if v != "" {
					t.Errorf("the dry run tagged %s %s", n, v)
				}
			}
			if res := run(false); len(res.Repaired) != want {
				t.Fatalf("provision repaired %+v; want %d", res.Repaired, want)
			}
			tags := stackTags(t, tc.db, tc.sq, stack)
			if len(tags) != want {
				t.Errorf("tags %v: want %d resources with tags", tags, want)
			}
			for n, v := range tags {
				if v != stack {
					t.Errorf("%s is tagged %s=%q after provision; want %s", n, awsops.TagStack, v, stack)
				}
			}
			if res := run(false); len(res.Repaired) != 0 || len(res.Changes) != 0 {
				t.Errorf("the second run: repaired %+v, changes %+v; want nothing to do", res.Repaired, res.Changes)
			}

			// New ones carry the tag from the start.
			fresh := randomStack("tagnew")
			ftarget := func(context.Context) (*Target, error) {
				return &Target{Tables: awsops.TablesFor(fresh), Queues: awsops.QueuesFor(fresh), DB: awsops.QuietNotFound(tc.db), SQS: tc.sq, Stack: fresh, Region: "us-east-1"}, nil
			}
			t.Cleanup(func() {
				ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
				defer cancel()
				tios, _, _, _ := iostreams.Test()
				_ = teardownRun(ctx, &TeardownOptions{IO: tios, Target: ftarget, Now: time.Now, Yes: true, Wait: time.Minute})
			})
			if err := provisionRun(t.Context(), &Options{IO: ios, Target: ftarget, Now: time.Now, Wait: time.Minute, BrokerTimeout: awsops.DefaultBrokerTimeout}); err != nil {
				t.Fatal(err)
			}
			tags = stackTags(t, tc.db, tc.sq, fresh)
			if len(tags) != want {
				t.Errorf("tags %v: want %d resources with tags", tags, want)
			}
			for n, v := range tags {
				if v != fresh {
					t.Errorf("new %s is tagged %s=%q; want %s", n, awsops.TagStack, v, fresh)
				}
			}
		})
	}
}

// TestTeardownRefusesWhatIsTaggedAsAnotherStacks: a table of stack A's
// names tagged socks:stack=B makes teardown of A delete nothing, exit 1,
// and name B, in words and in --json. Once it is tagged A, teardown
// deletes it with A's queues, which have no stack tag (made before stacks
// were tagged) and so are A's. On moto.
func TestTeardownRefusesWhatIsTaggedAsAnotherStacks(t *testing.T) {
	cfg, moto := emulatortest.MotoAWS(t)
	db, sq := awsops.NewDynamoDB(cfg, moto), awsops.NewSQS(cfg, moto)
	stack := randomStack("mine")
	other := randomStack("theirs")
	makeData(t, db, sq, stack, "")
	tables := awsops.TablesFor(stack)
	d, err := db.DescribeTable(t.Context(), &dynamodb.DescribeTableInput{TableName: aws.String(tables.Reports)})
	if err != nil {
		t.Fatal(err)
	}
	tag := func(s string) {
		t.Helper()
		if _, err := db.TagResource(t.Context(), &dynamodb.TagResourceInput{ResourceArn: d.Table.TableArn, Tags: []dbtypes.Tag{{Key: aws.String(awsops.TagStack), Value: aws.String(s)}}}); err != nil {
			t.Fatal(err)
		}
	}
	tag(other)
	target := func(context.Context) (*Target, error) {
		return &Target{Tables: tables, Queues: awsops.QueuesFor(stack), DB: awsops.QuietNotFound(db), SQS: sq, Stack: stack, Region: cfg.Region}, nil
	}
	ios, _, out, errOut := iostreams.Test()
	err = teardownRun(t.Context(), &TeardownOptions{IO: ios, Target: target, Now: time.Now, Yes: true, JSON: true, Wait: time.Minute})
	var ee *cmdutil.ExitCodeError
	if !errors.As(err, &ee) || ee.Code != cmdutil.ExitError || !strings.Contains(err.Error(), "stack "+other) || !strings.Contains(err.Error(), "deleted nothing") {
		t.Fatalf("teardown: %v; want exit 1, naming stack %s and saying it deleted nothing", err, other)
	}
	var res struct {
		TeardownResult
		Error string `json:"error"`
	}
	if err := json.Unmarshal(out.Bytes(), &res); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	if len(res.Deleted) != 0 || res.Error == "" || len(res.Skipped) != 1 || res.Skipped[0].Stack != other || res.Skipped[0].Name != tables.Reports {
		t.Errorf("--json: %s; want nothing deleted, the table skipped as stack %s's, and the error", out, other)
	}
	if got := stackTags(t, db, sq, stack); len(got) != 5 {
		t.Fatalf("after the refusal %d of 5 tables and queues are left (%v)", len(got), got)
	}

	tag(stack)
	out.Reset()
	if err := teardownRun(t.Context(), &TeardownOptions{IO: ios, Target: target, Now: time.Now, Yes: true, Wait: time.Minute}); err != nil {
		t.Fatalf("teardown: %v\n%s", err, errOut)
	}
	if got := stackTags(t, db, sq, stack); len(got) != 0 {
		t.Errorf("after teardown %v are left", got)
	}
}
