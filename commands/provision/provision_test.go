package provision

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
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

	"github.com/socks-dev/socks/awsops"
	"github.com/socks-dev/socks/commands/cmdutil"
	"github.com/socks-dev/socks/config"
	"github.com/socks-dev/socks/internal/emulatortest"
	"github.com/socks-dev/socks/internal/jsondoc"
	"github.com/socks-dev/socks/internal/refusing"
	"github.com/socks-dev/socks/iostreams"
)

// account is a DynamoDB and SQS account in memory, enough for provision
// and teardown: tables described as created, TTL, queues with attributes.
// It counts the calls that change something.
type account struct {
	mu     sync.Mutex
	tables map[string]*dynamotypes.TableDescription
	ttl    map[string]bool
	queues map[string]map[string]string
	tags   map[string]map[string]string // by table or queue name
	writes []string
}

func newAccount() *account {
	return &account{tables: map[string]*dynamotypes.TableDescription{}, ttl: map[string]bool{}, queues: map[string]map[string]string{}, tags: map[string]map[string]string{}}
}

func (a *account) wrote(op, name string) {
	a.writes = append(a.writes, op+" "+name)
}

func (a *account) CreateTable(_ context.Context, in *dynamodb.CreateTableInput, _ ...func(*dynamodb.Options)) (*dynamodb.CreateTableOutput, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	name := aws.ToString(in.TableName)
	a.wrote("CreateTable", name)
	if _, ok := a.tables[name]; ok {
		return nil, &dynamotypes.ResourceInUseException{}
	}
	a.tags[name] = map[string]string{}
	for _, t := range in.Tags {
		a.tags[name][aws.ToString(t.Key)] = aws.ToString(t.Value)
	}
	d := &dynamotypes.TableDescription{TableName: in.TableName, TableArn: aws.String(tableARNPrefix + name), TableStatus: dynamotypes.TableStatusActive, KeySchema: in.KeySchema, AttributeDefinitions: in.AttributeDefinitions}
	for _, g := range in.GlobalSecondaryIndexes {
		d.GlobalSecondaryIndexes = append(d.GlobalSecondaryIndexes, dynamotypes.GlobalSecondaryIndexDescription{IndexName: g.IndexName, KeySchema: g.KeySchema, Projection: g.Projection})
	}
	a.tables[name] = d
	return &dynamodb.CreateTableOutput{}, nil
}

func (a *account) DescribeTable(_ context.Context, in *dynamodb.DescribeTableInput, _ ...func(*dynamodb.Options)) (*dynamodb.DescribeTableOutput, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	d, ok := a.tables[aws.ToString(in.TableName)]
	if !ok {
		return nil, &dynamotypes.ResourceNotFoundException{}
	}
	return &dynamodb.DescribeTableOutput{Table: d}, nil
}

func (a *account) DeleteTable(_ context.Context, in *dynamodb.DeleteTableInput, _ ...func(*dynamodb.Options)) (*dynamodb.DeleteTableOutput, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	name := aws.ToString(in.TableName)
	if _, ok := a.tables[name]; !ok {
		return nil, &dynamotypes.ResourceNotFoundException{}
	}
	a.wrote("DeleteTable", name)
	delete(a.tables, name)
	delete(a.ttl, name)
	return &dynamodb.DeleteTableOutput{}, nil
}

func (a *account) DescribeTimeToLive(_ context.Context, in *dynamodb.DescribeTimeToLiveInput, _ ...func(*dynamodb.Options)) (*dynamodb.DescribeTimeToLiveOutput, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	d := &dynamotypes.TimeToLiveDescription{TimeToLiveStatus: dynamotypes.TimeToLiveStatusDisabled}
	if a.ttl[aws.ToString(in.TableName)] {
		d = &dynamotypes.TimeToLiveDescription{TimeToLiveStatus: dynamotypes.TimeToLiveStatusEnabled, AttributeName: aws.String("expiresAt")}
	}
	return &dynamodb.DescribeTimeToLiveOutput{TimeToLiveDescription: d}, nil
}

func (a *account) UpdateTimeToLive(_ context.Context, in *dynamodb.UpdateTimeToLiveInput, _ ...func(*dynamodb.Options)) (*dynamodb.UpdateTimeToLiveOutput, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.wrote("UpdateTimeToLive", aws.ToString(in.TableName))
	a.ttl[aws.ToString(in.TableName)] = aws.ToBool(in.TimeToLiveSpecification.Enabled)
	return &dynamodb.UpdateTimeToLiveOutput{}, nil
}

const queueURLPrefix = "http://127.0.0.1:9324/000000000000/"

func (a *account) CreateQueue(_ context.Context, in *sqs.CreateQueueInput, _ ...func(*sqs.Options)) (*sqs.CreateQueueOutput, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	name := aws.ToString(in.QueueName)
	a.wrote("CreateQueue", name)
	attrs := map[string]string{"QueueArn": "arn:aws:sqs:us-east-1:000000000000:" + name, "VisibilityTimeout": "30"}
	for k, v := range in.Attributes {
		attrs[k] = v
	}
	a.queues[name] = attrs
	a.tags[name] = in.Tags
	return &sqs.CreateQueueOutput{QueueUrl: aws.String(queueURLPrefix + name)}, nil
}

func (a *account) GetQueueUrl(_ context.Context, in *sqs.GetQueueUrlInput, _ ...func(*sqs.Options)) (*sqs.GetQueueUrlOutput, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if _, ok := a.queues[aws.ToString(in.QueueName)]; !ok {
		return nil, &sqstypes.QueueDoesNotExist{}
	}
	return &sqs.GetQueueUrlOutput{QueueUrl: aws.String(queueURLPrefix + aws.ToString(in.QueueName))}, nil
}

func (a *account) GetQueueAttributes(_ context.Context, in *sqs.GetQueueAttributesInput, _ ...func(*sqs.Options)) (*sqs.GetQueueAttributesOutput, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	attrs, ok := a.queues[strings.TrimPrefix(aws.ToString(in.QueueUrl), queueURLPrefix)]
	if !ok {
		return nil, &sqstypes.QueueDoesNotExist{}
	}
	return &sqs.GetQueueAttributesOutput{Attributes: attrs}, nil
}

func (a *account) SetQueueAttributes(context.Context, *sqs.SetQueueAttributesInput, ...func(*sqs.Options)) (*sqs.SetQueueAttributesOutput, error) {
	panic("provision must not change an existing queue")
}

func (a *account) DeleteQueue(_ context.Context, in *sqs.DeleteQueueInput, _ ...func(*sqs.Options)) (*sqs.DeleteQueueOutput, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	name := strings.TrimPrefix(aws.ToString(in.QueueUrl), queueURLPrefix)
	a.wrote("DeleteQueue", name)
	delete(a.queues, name)
	return &sqs.DeleteQueueOutput{}, nil
}

const tableARNPrefix = "arn:aws:dynamodb:us-east-1:000000000000:table/"

func (a *account) ListTagsOfResource(_ context.Context, in *dynamodb.ListTagsOfResourceInput, _ ...func(*dynamodb.Options)) (*dynamodb.ListTagsOfResourceOutput, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	out := &dynamodb.ListTagsOfResourceOutput{}
	for k, v := range a.tags[strings.TrimPrefix(aws.ToString(in.ResourceArn), tableARNPrefix)] {
		out.Tags = append(out.Tags, dynamotypes.Tag{Key: aws.String(k), Value: aws.String(v)})
	}
	return out, nil
}

func (a *account) ListQueueTags(_ context.Context, in *sqs.ListQueueTagsInput, _ ...func(*sqs.Options)) (*sqs.ListQueueTagsOutput, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	return &sqs.ListQueueTagsOutput{Tags: a.tags[strings.TrimPrefix(aws.ToString(in.QueueUrl), queueURLPrefix)]}, nil
}

func (a *account) TagResource(_ context.Context, in *dynamodb.TagResourceInput, _ ...func(*dynamodb.Options)) (*dynamodb.TagResourceOutput, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	name := strings.TrimPrefix(aws.ToString(in.ResourceArn), tableARNPrefix)
	a.wrote("TagResource", name)
	if a.tags[name] == nil {
		a.tags[name] = map[string]string{}
	}
	for _, t := range in.Tags {
		a.tags[name][aws.ToString(t.Key)] = aws.ToString(t.Value)
	}
	return &dynamodb.TagResourceOutput{}, nil
}

func (a *account) TagQueue(_ context.Context, in *sqs.TagQueueInput, _ ...func(*sqs.Options)) (*sqs.TagQueueOutput, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	name := strings.TrimPrefix(aws.ToString(in.QueueUrl), queueURLPrefix)
	a.wrote("TagQueue", name)
	if a.tags[name] == nil {
		a.tags[name] = map[string]string{}
	}
	for k, v := range in.Tags {
		a.tags[name][k] = v
	}
	return &sqs.TagQueueOutput{}, nil
}

func (a *account) target(stack string) TargetFunc {
	return func(context.Context) (*Target, error) {
		return &Target{
			Tables: awsops.TablesFor(stack), Queues: awsops.QueuesFor(stack),
			DB: a, SQS: a, Stack: stack, Region: "us-east-1",
		}, nil
	}
}

func provisionOpts(a *account) (*Options, func() (string, string)) {
	ios, _, out, errOut := iostreams.Test()
	return &Options{
			IO: ios, Target: a.target("prod"), Now: time.Now,
			Wait: time.Second, BrokerTimeout: awsops.DefaultBrokerTimeout,
		}, func() (string, string) {
			o, e := out.String(), errOut.String()
			out.Reset()
			errOut.Reset()
			return o, e
		}
}

func TestProvisionCreatesWhatIsMissingAndIsIdempotent(t *testing.T) {
	a := newAccount()
	opts, output := provisionOpts(a)

	t.Run("a dry run on an empty account says what it would create and creates nothing", func(t *testing.T) {
		opts.DryRun = true
		defer func() { opts.DryRun = false }()
		if err := provisionRun(t.Context(), opts); err != nil {
			t.Fatal(err)
		}
		out, _ := output()
		want := "would create table prod-connections\nwould create table prod-chatter\nwould create table prod-reports\n" +
			"would create queue prod-envelopes-dlq\nwould create queue prod-envelopes\n"
		if out != want {
			t.Errorf("stdout %q\nwant %q", out, want)
		}
		if len(a.writes) != 0 {
			t.Errorf("a dry run wrote %v", a.writes)
		}
	})
	t.Run("the first run creates the tables with TTL and both queues, with progress on stderr", func(t *testing.T) {
		if err := provisionRun(t.Context(), opts); err != nil {
			t.Fatal(err)
		}
		out, errOut := output()
		if strings.Count(out, "created ") != 5 {
			t.Errorf("stdout %q", out)
		}
		for _, want := range []string{"creating table prod-connections…", "waiting for table prod-connections to become active…", "queue prod-envelopes is ready"} {
			if !strings.Contains(errOut, want) {
				t.Errorf("stderr %q lacks %q", errOut, want)
			}
		}
		if strings.ContainsRune(errOut, '\r') || strings.ContainsRune(errOut, '\x1b') {
			t.Errorf("stderr is not a terminal but got a spinner: %q", errOut)
		}
		if !a.ttl["prod-chatter"] || a.queues["prod-envelopes"]["VisibilityTimeout"] != "180" {
			t.Errorf("TTL %v, queue %v", a.ttl, a.queues["prod-envelopes"])
		}
	})
	t.Run("a second run changes nothing and says so", func(t *testing.T) {
		before := len(a.writes)
		if err := provisionRun(t.Context(), opts); err != nil {
			t.Fatal(err)
		}
		out, errOut := output()
		if out != "nothing to do: 3 tables and 2 queues are in place\n" || errOut != "" {
			t.Errorf("stdout %q stderr %q", out, errOut)
		}
		if len(a.writes) != before {
			t.Errorf("a second run wrote %v", a.writes[before:])
		}
	})
	t.Run("a missing queue alone is created, the rest is said to be in place", func(t *testing.T) {
		delete(a.queues, "prod-envelopes-dlq")
		if err := provisionRun(t.Context(), opts); err != nil {
			t.Fatal(err)
		}
		if out, _ := output(); out != "created queue prod-envelopes-dlq\nalready in place: 3 tables and 1 queue\n" {
			t.Errorf("stdout %q", out)
		}
	})
}

func TestProvisionReportsDriftAndChangesNothing(t *testing.T) {
	a := newAccount()
	opts, output := provisionOpts(a)
	if err := provisionRun(t.Context(), opts); err != nil {
		t.Fatal(err)
	}
	output()
	a.tables["prod-connections"].GlobalSecondaryIndexes = nil
	a.queues["prod-envelopes"]["VisibilityTimeout"] = "60"
	delete(a.queues, "prod-envelopes-dlq")
	before := len(a.writes)

	err := provisionRun(t.Context(), opts)
	var exit *cmdutil.ExitCodeError
	if !errors.As(err, &exit) || exit.Code != cmdutil.ExitError {
		t.Fatalf("err = %v; want exit 1", err)
	}
	for _, want := range []string{"2 things of stack prod in us-east-1 differ", "nothing was changed", "fix them as shown"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
	out, errOut := output()
	if out != "" {
		t.Errorf("stdout %q; want nothing", out)
	}
	for _, want := range []string{
		"drift: table prod-connections: index by-geek\n  is:   absent\n  want: partition key gpk (S), sort key gsk (S), all attributes projected\n  fix:  add it: aws dynamodb update-table",
		"drift: queue prod-envelopes: visibility timeout\n  is:   60 s\n  want: at least 180 s",
	} {
		if !strings.Contains(errOut, want) {
			t.Errorf("stderr lacks %q:\n%s", want, errOut)
		}
	}
	if len(a.writes) != before {
		t.Errorf("drift, and still wrote %v (the missing dead-letter queue must wait too)", a.writes[before:])
	}

	t.Run("with --json the drift is on stdout for scripts", func(t *testing.T) {
		opts.JSON = true
		defer func() { opts.JSON = false }()
		if err := provisionRun(t.Context(), opts); err == nil {
			t.Fatal("want an error")
		}
		out, _ := output()
		var res Result
		if err := json.Unmarshal([]byte(out), &res); err != nil || len(res.Drift) != 2 || len(res.Changes) != 1 || res.Drift[0].Fix == "" {
			t.Errorf("%+v (%v)", res, err)
		}
	})
}

func TestProvisionFlags(t *testing.T) {
	f := &cmdutil.Factory{Getenv: func(string) string { return "" }}
	f.IOStreams, _, _, _ = iostreams.Test()
	var got *Options
	cmd := NewCmdProvision(f, func(_ context.Context, o *Options) error { got = o; return nil })
	cmd.SetArgs([]string{"--dry-run", "--json", "--wait", "90s", "--broker-timeout", "1m"})
	if err := cmd.Execute(); err != nil {
		t.Fatal(err)
	}
	if !got.DryRun || !got.JSON || got.Wait != 90*time.Second || got.BrokerTimeout != time.Minute {
		t.Errorf("options %+v", got)
	}
	if s := got.settings(); s.VisibilityTimeout() != 6*time.Minute {
		t.Errorf("visibility for a 1m broker timeout = %s; want 6m", s.VisibilityTimeout())
	}

	for _, tc := range []struct {
		name string
		set  func(*Options)
	}{
		{"a zero wait", func(o *Options) { o.Wait = 0 }},
		{"a broker timeout over Lambda's 15 minutes", func(o *Options) { o.BrokerTimeout = 16 * time.Minute }},
		{"a broker timeout under a second", func(o *Options) { o.BrokerTimeout = time.Millisecond }},
	} {
		t.Run(tc.name+" is a usage error", func(t *testing.T) {
			opts, _ := provisionOpts(newAccount())
			opts.Target = func(context.Context) (*Target, error) { t.Fatal("the target must not be opened"); return nil, nil }
			tc.set(opts)
			var fe *cmdutil.FlagError
			if err := provisionRun(t.Context(), opts); !errors.As(err, &fe) {
				t.Errorf("err = %v; want a usage error", err)
			}
		})
	}
}

func TestProvisionOnTheLocalBackendIsAUsageError(t *testing.T) {
	f := &cmdutil.Factory{Getenv: func(k string) string {
		if k == "HOME" {
			return t.TempDir()
		}
		return ""
	}}
	_, err := targetFunc(f, "provision")(t.Context())
	var fe *cmdutil.FlagError
	if !errors.As(err, &fe) || !strings.Contains(err.Error(), "--backend aws") {
		t.Errorf("err = %v; want a usage error naming --backend aws", err)
	}
}

func teardownOpts(a *account, stdin string, tty bool) (*TeardownOptions, func() (string, string)) {
	ios, in, out, errOut := iostreams.Test()
	in.WriteString(stdin)
	ios.SetTTY(tty, false, false)
	return &TeardownOptions{IO: ios, Target: a.target("prod"), Now: time.Now, Wait: time.Second}, func() (string, string) {
		return out.String(), errOut.String()
	}
}

func provisioned(t *testing.T) *account {
	a := newAccount()
	opts, _ := provisionOpts(a)
	if err := provisionRun(t.Context(), opts); err != nil {
		t.Fatal(err)
	}
	a.writes = nil
	return a
}

func TestTeardown(t *testing.T) {
	t.Run("without --yes on a non-terminal stdin it refuses before touching anything", func(t *testing.T) {
		a := provisioned(t)
		opts, _ := teardownOpts(a, "prod\n", false)
		opts.Target = func(context.Context) (*Target, error) { t.Fatal("the target must not be opened"); return nil, nil }
		var fe *cmdutil.FlagError
		if err := teardownRun(t.Context(), opts); !errors.As(err, &fe) || !strings.Contains(err.Error(), "--yes") {
			t.Errorf("err = %v; want a usage error naming --yes", err)
		}
	})
	t.Run("on a terminal a wrong answer deletes nothing", func(t *testing.T) {
		a := provisioned(t)
		opts, output := teardownOpts(a, "yes\n", true)
		err := teardownRun(t.Context(), opts)
		var exit *cmdutil.ExitCodeError
		if !errors.As(err, &exit) || exit.Code != 1 || !strings.Contains(err.Error(), "nothing was deleted") {
			t.Errorf("err = %v", err)
		}
		_, errOut := output()
		if !strings.Contains(errOut, "This deletes 3 tables and 2 queues of stack prod in us-east-1") || !strings.Contains(errOut, "Type the stack name (prod)") {
			t.Errorf("prompt %q", errOut)
		}
		if len(a.writes) != 0 {
			t.Errorf("wrote %v", a.writes)
		}
	})
	t.Run("with --json a wrong answer prints what was found, nothing deleted, with the error", func(t *testing.T) {
		a := provisioned(t)
		opts, output := teardownOpts(a, "yes\n", true)
		opts.JSON = true
		err := teardownRun(t.Context(), opts)
		var exit *cmdutil.ExitCodeError
		if !errors.As(err, &exit) || exit.Code != 1 {
			t.Fatalf("err = %v; want exit 1", err)
		}
		out, _ := output()
		var got struct {
			Stack   string          `json:"stack"`
			Deleted []awsops.Change `json:"deleted"`
			Error   string          `json:"error"`
		}
		if jerr := json.Unmarshal([]byte(out), &got); jerr != nil || got.Stack != "prod" || got.Deleted == nil || len(got.Deleted) != 0 || got.Error != err.Error() {
			t.Errorf("stdout %q (%v); want stack prod, deleted [] and the error %q", out, jerr, err)
		}
		if len(a.writes) != 0 {
			t.Errorf("wrote %v", a.writes)
		}
	})
	t.Run("on a terminal typing the stack name deletes everything", func(t *testing.T) {
		a := provisioned(t)
		opts, output := teardownOpts(a, "prod\n", true)
		if err := teardownRun(t.Context(), opts); err != nil {
			t.Fatal(err)
		}
		out, _ := output()
		if strings.Count(out, "deleted ") != 5 || len(a.tables) != 0 || len(a.queues) != 0 {
			t.Errorf("stdout %q, tables %v, queues %v", out, a.tables, a.queues)
		}
	})
	t.Run("--yes deletes without asking, and a second run has nothing to delete", func(t *testing.T) {
		a := provisioned(t)
		opts, _ := teardownOpts(a, "", false)
		opts.Yes = true
		if err := teardownRun(t.Context(), opts); err != nil {
			t.Fatal(err)
		}
		if len(a.tables) != 0 || len(a.queues) != 0 {
			t.Errorf("left tables %v queues %v", a.tables, a.queues)
		}
		opts, output := teardownOpts(a, "", false)
		opts.Yes = true
		if err := teardownRun(t.Context(), opts); err != nil {
			t.Fatal(err)
		}
		if out, _ := output(); out != "nothing to delete: no table or queue of stack prod in us-east-1 exists\n" {
			t.Errorf("stdout %q", out)
		}
	})
	t.Run("a table and a queue socks did not make are left alone, and --json says why", func(t *testing.T) {
		a := provisioned(t)
		tables, queues := awsops.TablesFor("prod"), awsops.QueuesFor("prod")
		a.tags[tables.Connections], a.tags[queues.Main] = nil, map[string]string{"app": "billing"}
		opts, output := teardownOpts(a, "", false)
		opts.Yes, opts.JSON = true, true
		if err := teardownRun(t.Context(), opts); err != nil {
			t.Fatal(err)
		}
		out, errOut := output()
		var res TeardownResult
		if err := json.Unmarshal([]byte(out), &res); err != nil {
			t.Fatalf("%v: %q", err, out)
		}
		if len(res.Skipped) != 2 || res.Skipped[0].Name != tables.Connections || res.Skipped[1].Name != queues.Main || !strings.Contains(res.Skipped[0].Reason, "no app=socks tag") {
			t.Errorf("skipped %+v", res.Skipped)
		}
		if len(res.Deleted) != 3 || slices.Contains(res.Deleted, awsops.Change{Kind: awsops.KindTable, Name: tables.Connections}) {
			t.Errorf("deleted %+v", res.Deleted)
		}
		if _, ok := a.tables[tables.Connections]; !ok || len(a.tables) != 1 {
			t.Errorf("tables left %v, want only %s", a.tables, tables.Connections)
		}
		if _, ok := a.queues[queues.Main]; !ok || len(a.queues) != 1 {
			t.Errorf("queues left %v, want only %s", a.queues, queues.Main)
		}
		if !strings.Contains(errOut, "leaving table "+tables.Connections+" alone: it has no app=socks tag") {
			t.Errorf("stderr %q", errOut)
		}
	})
}

// TestTeardownDryRunDeletesNothingAndAsksNothing: teardown --dry-run reads
// what teardown reads and prints the plan, "would delete ..." (with
// --json, "deleted" with dryRun true, as provision --dry-run's "changes"),
// without --yes, with standard input a terminal or not: it asks nothing
// (the answer waiting on standard input is left unread) and deletes
// nothing. A table tagged as another stack's refuses the plan itself, as
// teardown does: exit 1, nothing deleted.
func TestTeardownDryRunDeletesNothingAndAsksNothing(t *testing.T) {
	// In the order teardown deletes them
	// (TestTeardownListsWhatItDeletesInTheOrderItDeletesThem).
	plan := "would delete queue prod-envelopes\nwould delete queue prod-envelopes-dlq\n" +
		"would delete table prod-connections\nwould delete table prod-chatter\nwould delete table prod-reports\n"
	dryRun := func(t *testing.T, a *account, tty, jsonOut bool) (out, errOut string, err error) {
		t.Helper()
		ios, in, stdout, stderr := iostreams.Test()
		in.WriteString("prod\n")
		ios.SetTTY(tty, false, false)
		opts := &TeardownOptions{IO: ios, Target: a.target("prod"), Now: time.Now, Wait: time.Second, DryRun: true, JSON: jsonOut}
		tables, queues := len(a.tables), len(a.queues)
		err = teardownRun(t.Context(), opts)
		if in.String() != "prod\n" || strings.Contains(stderr.String(), "Type the stack name") {
			t.Errorf("the dry run asked for the stack name: stdin left %q, stderr %q", in.String(), stderr.String())
		}
		if len(a.writes) != 0 || len(a.tables) != tables || len(a.queues) != queues {
			t.Errorf("the dry run wrote %v; tables left %d of %d, queues %d of %d", a.writes, len(a.tables), tables, len(a.queues), queues)
		}
		return stdout.String(), stderr.String(), err
	}
	for _, tty := range []bool{false, true} {
		t.Run(fmt.Sprintf("stdin a terminal %v: it lists the five it would delete", tty), func(t *testing.T) {
			out, _, err := dryRun(t, provisioned(t), tty, false)
			if err != nil {
				t.Fatal(err)
			}
			if out != plan {
				t.Errorf("stdout %q\nwant %q", out, plan)
			}
		})
	}
	t.Run("--json: deleted is the plan, with dryRun true", func(t *testing.T) {
		out, _, err := dryRun(t, provisioned(t), false, true)
		if err != nil {
			t.Fatal(err)
		}
		var res TeardownResult
		if err := json.Unmarshal([]byte(out), &res); err != nil {
			t.Fatalf("%v: %q", err, out)
		}
		want := []awsops.Change{
			{Kind: awsops.KindQueue, Name: "prod-envelopes"}, {Kind: awsops.KindQueue, Name: "prod-envelopes-dlq"},
			{Kind: awsops.KindTable, Name: "prod-connections"}, {Kind: awsops.KindTable, Name: "prod-chatter"}, {Kind: awsops.KindTable, Name: "prod-reports"},
		}
		if !res.DryRun || !slices.Equal(res.Deleted, want) {
			t.Errorf("--json %s; want dryRun true and deleted %v", out, want)
		}
		teardownAsDocumented(t, out)
	})
	t.Run("nothing to delete says so", func(t *testing.T) {
		out, _, err := dryRun(t, newAccount(), false, false)
		if err != nil || out != "nothing to delete: no table or queue of stack prod in us-east-1 exists\n" {
			t.Errorf("stdout %q, err %v", out, err)
		}
	})
	t.Run("a table of another stack refuses the plan", func(t *testing.T) {
		a := provisioned(t)
		a.tags["prod-reports"][awsops.TagStack] = "other"
		out, _, err := dryRun(t, a, false, true)
		var exit *cmdutil.ExitCodeError
		if !errors.As(err, &exit) || exit.Code != cmdutil.ExitError || !strings.Contains(err.Error(), "stack other") {
			t.Fatalf("err = %v; want exit 1 naming stack other", err)
		}
		var res teardownOutput
		if jerr := json.Unmarshal([]byte(out), &res); jerr != nil || !res.DryRun || len(res.Deleted) != 0 || res.Error != err.Error() {
			t.Errorf("--json %s (%v); want dryRun true, deleted [] and the error", out, jerr)
		}
		teardownAsDocumented(t, out)
	})
}

// TestTeardownListsWhatItDeletesInTheOrderItDeletesThem: the
// confirmation and the dry run listed the tables before the queues, the
// dead-letter queue before the main one, and the rule and the SNS
// subscriptions last, while teardown deletes the rule and the
// subscriptions first (they would send to a queue that is gone), then
// what deploy made, the queues (the main one first) and the tables; its
// "deleted" lines came in yet another order. The confirmation, the dry
// run and the "deleted" lines now list the same sequence, the one in
// which the calls are made.
func TestTeardownListsWhatItDeletesInTheOrderItDeletesThem(t *testing.T) {
	lines := func(s, prefix string) []string {
		var out []string
		for l := range strings.Lines(s) {
			if rest, ok := strings.CutPrefix(l, prefix); ok {
				out = append(out, strings.TrimSuffix(rest, "\n"))
			}
		}
		return out
	}
	a := provisioned(t)
	opts, output := teardownOpts(a, "prod\n", true)
	if err := teardownRun(t.Context(), opts); err != nil {
		t.Fatal(err)
	}
	var calls []string
	for _, w := range a.writes {
		if rest, ok := strings.CutPrefix(w, "DeleteTable "); ok {
			calls = append(calls, "table "+rest)
		} else if rest, ok := strings.CutPrefix(w, "DeleteQueue "); ok {
			calls = append(calls, "queue "+rest)
		}
	}
	want := []string{"queue prod-envelopes", "queue prod-envelopes-dlq", "table prod-connections", "table prod-chatter", "table prod-reports"}
	if !slices.Equal(calls, want) {
		t.Fatalf("teardown deleted %v; want %v (the deletion order is not this test's to change)", calls, want)
	}
	out, errOut := output()
	if got := lines(errOut, "  "); !slices.Equal(got, want) {
		t.Errorf("the confirmation lists %q; want the order of the deletions, %q", got, want)
	}
	if got := lines(out, "deleted "); !slices.Equal(got, want) {
		t.Errorf("teardown says it deleted %q; want the order of the deletions, %q", got, want)
	}

	ios, _, dry, _ := iostreams.Test()
	if err := teardownRun(t.Context(), &TeardownOptions{IO: ios, Target: provisioned(t).target("prod"), Now: time.Now, Wait: time.Second, DryRun: true}); err != nil {
		t.Fatal(err)
	}
	if got := lines(dry.String(), "would delete "); !slices.Equal(got, want) {
		t.Errorf("the dry run lists %q; want the order of the deletions, %q", got, want)
	}
}

// TestProducersHalfOnEmulatorsAreRefused: with DynamoDB and SQS on
// emulators and no --endpoint-url, provision --eventbridge-rule or
// --sns-topic, and teardown with them, sent EventBridge and SNS calls to
// AWS itself (a rule made, or a subscription deleted, in the account of
// the credentials). They are refused before anything is called. (The
// emulators here are ports that refuse connections: an unrefused run
// fails on DynamoDB first, and never reaches AWS.)
func TestProducersHalfOnEmulatorsAreRefused(t *testing.T) {
	emulatortest.FakeCredentials(t)
	factory := func(t *testing.T) *cmdutil.Factory {
		env := map[string]string{"HOME": t.TempDir()}
		ios, _, _, _ := iostreams.Test()
		closed := refusing.URL(t)
		return &cmdutil.Factory{IOStreams: ios, Getenv: func(k string) string { return env[k] }, Now: time.Now, Flags: config.Flags{
			Backend: config.BackendAWS, Region: "us-east-1", Stack: "halfway",
			DynamoDBEndpoint: closed, SQSEndpoint: closed,
		}}
	}
	rule := cmdutil.ProducerFlags{EventBridgeRule: true, EventBus: awsops.DefaultBus, Sources: []string{"a.b"}, DetailTypes: []string{"C"}}
	topic := cmdutil.ProducerFlags{EventBus: awsops.DefaultBus, SNSTopics: []string{"arn:aws:sns:us-east-1:123456789012:jobs"}}
	check := func(t *testing.T, err error) {
		t.Helper()
		if err == nil || !strings.Contains(err.Error(), "AWS itself") || !strings.Contains(err.Error(), "--endpoint-url") {
			t.Errorf("err = %v; want it refused: EventBridge and SNS calls would go to AWS itself", err)
		}
	}
	for name, p := range map[string]cmdutil.ProducerFlags{"--eventbridge-rule": rule, "--sns-topic": topic} {
		t.Run("provision "+name, func(t *testing.T) {
			f := factory(t)
			opts := &Options{IO: f.IOStreams, Target: targetFunc(f, "provision"), Now: time.Now, Wait: time.Second, BrokerTimeout: awsops.DefaultBrokerTimeout, ProducerFlags: p}
			check(t, provisionRun(t.Context(), opts))
		})
		t.Run("teardown "+name, func(t *testing.T) {
			f := factory(t)
			opts := &TeardownOptions{IO: f.IOStreams, Target: targetFunc(f, "teardown"), Now: time.Now, Wait: time.Second, Yes: true, ProducerFlags: p}
			check(t, teardownRun(t.Context(), opts))
		})
	}
	t.Run("provision without producers", func(t *testing.T) {
		f := factory(t)
		tgt, err := targetFunc(f, "provision")(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		if tgt.Deployer != nil {
			t.Error("the control plane would be asked, on AWS itself")
		}
		if err := tgt.checkProducerEndpoints(awsops.Producers{}); err != nil {
			t.Errorf("provision without producers on the emulators refused: %v", err)
		}
	})
}

// refusingDelete is the account where DeleteTable is refused.
type refusingDelete struct{ *account }

func (refusingDelete) DeleteTable(context.Context, *dynamodb.DeleteTableInput, ...func(*dynamodb.Options)) (*dynamodb.DeleteTableOutput, error) {
	return nil, errors.New("refused (injected)")
}

// TestTeardownJSONSaysWhatWasDeletedWhenItStops: teardown --json that
// stopped half-way (the tables refused) printed nothing on stdout, though
// the queues were already gone. It prints what it deleted and the error,
// and still fails.
func TestTeardownJSONSaysWhatWasDeletedWhenItStops(t *testing.T) {
	a := provisioned(t)
	ios, _, out, _ := iostreams.Test()
	opts := &TeardownOptions{IO: ios, Now: time.Now, Wait: time.Second, Yes: true, JSON: true}
	opts.Target = func(context.Context) (*Target, error) {
		r := refusingDelete{a}
		return &Target{Tables: awsops.TablesFor("prod"), Queues: awsops.QueuesFor("prod"), DB: r, SQS: a, Stack: "prod", Region: "us-east-1"}, nil
	}
	if err := teardownRun(t.Context(), opts); err == nil || !strings.Contains(err.Error(), "injected") {
		t.Fatalf("teardown with DeleteTable refused: %v", err)
	}
	var res struct {
		Deleted []awsops.Change `json:"deleted"`
		Error   string          `json:"error"`
	}
	if err := json.Unmarshal(out.Bytes(), &res); err != nil {
		t.Fatalf("--json after teardown stopped: %v\n%q", err, out)
	}
	want := []awsops.Change{{Kind: awsops.KindQueue, Name: "prod-envelopes-dlq"}, {Kind: awsops.KindQueue, Name: "prod-envelopes"}}
	if len(a.queues) != 0 || !sameChanges(res.Deleted, want) || !strings.Contains(res.Error, "injected") {
		t.Errorf("--json after teardown stopped: %+v; want the two queues deleted and the error (queues left %v)", res, a.queues)
	}
	teardownAsDocumented(t, out.String())
}

// teardownAsDocumented checks teardown's --json output against its
// section of docs/json.md (e2e's TestAWSJSONOutputIsAsDocumented checks
// the shapes moto makes without an injected error).
func teardownAsDocumented(t *testing.T, stdout string) {
	t.Helper()
	d, err := jsondoc.Find("socks teardown --backend aws --yes --json")
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range d.Check(stdout) {
		t.Error(p)
	}
}

func sameChanges(a, b []awsops.Change) bool {
	if len(a) != len(b) {
		return false
	}
	for _, c := range a {
		if !slices.Contains(b, c) {
			return false
		}
	}
	return true
}

// refusingOneTable is the account where DeleteTable of one table is
// refused, as IAM does for an operator without dynamodb:DeleteTable on it.
type refusingOneTable struct {
	*account
	name string
}

func (r refusingOneTable) DeleteTable(ctx context.Context, in *dynamodb.DeleteTableInput, o ...func(*dynamodb.Options)) (*dynamodb.DeleteTableOutput, error) {
	if aws.ToString(in.TableName) == r.name {
		return nil, errors.New("AccessDeniedException: not authorized to perform dynamodb:DeleteTable (injected)")
	}
	return r.account.DeleteTable(ctx, in, o...)
}

// TestTeardownThatStopsSaysWhatIsLeft: teardown stopped by a table it may
// not delete left out of --json's "deleted" the table it had deleted just
// before, and said only "run it again". It now lists every table and
// queue it deleted, and says, in words and in --json's "left", what is
// still there; a rerun with the permission finishes the job.
func TestTeardownThatStopsSaysWhatIsLeft(t *testing.T) {
	a := provisioned(t)
	ios, _, out, _ := iostreams.Test()
	opts := &TeardownOptions{IO: ios, Now: time.Now, Wait: time.Second, Yes: true, JSON: true}
	var db awsops.TableAdminAPI = refusingOneTable{a, "prod-chatter"}
	opts.Target = func(context.Context) (*Target, error) {
		return &Target{Tables: awsops.TablesFor("prod"), Queues: awsops.QueuesFor("prod"), DB: db, SQS: a, Stack: "prod", Region: "us-east-1"}, nil
	}
	err := teardownRun(t.Context(), opts)
	if err == nil || !strings.Contains(err.Error(), "injected") || !strings.Contains(err.Error(), "table prod-chatter") || !strings.Contains(err.Error(), "table prod-reports") {
		t.Fatalf("teardown with DeleteTable of prod-chatter refused: %v; want the error, naming the two tables left", err)
	}
	var res struct {
		Deleted []awsops.Change `json:"deleted"`
		Left    []awsops.Change `json:"left"`
		Error   string          `json:"error"`
	}
	if err := json.Unmarshal(out.Bytes(), &res); err != nil {
		t.Fatalf("--json after teardown stopped: %v\n%q", err, out)
	}
	deleted := []awsops.Change{{Kind: awsops.KindQueue, Name: "prod-envelopes-dlq"}, {Kind: awsops.KindQueue, Name: "prod-envelopes"}, {Kind: awsops.KindTable, Name: "prod-connections"}}
	left := []awsops.Change{{Kind: awsops.KindTable, Name: "prod-chatter"}, {Kind: awsops.KindTable, Name: "prod-reports"}}
	if !sameChanges(res.Deleted, deleted) || !sameChanges(res.Left, left) {
		t.Errorf("--json after teardown stopped: deleted %v, left %v; want deleted %v, left %v", res.Deleted, res.Left, deleted, left)
	}
	teardownAsDocumented(t, out.String())
	if _, ok := a.tables["prod-connections"]; ok {
		t.Error("prod-connections is still there")
	}

	db = a
	out.Reset()
	if err := teardownRun(t.Context(), opts); err != nil {
		t.Fatalf("the rerun: %v", err)
	}
	if len(a.tables) != 0 || len(a.queues) != 0 {
		t.Errorf("after the rerun tables %v and queues %v are left", a.tables, a.queues)
	}
}

// refusingCreate is the account where CreateTable of one table is
// refused, as IAM does for an operator without dynamodb:CreateTable on it.
type refusingCreate struct {
	*account
	name string
}

func (r refusingCreate) CreateTable(ctx context.Context, in *dynamodb.CreateTableInput, o ...func(*dynamodb.Options)) (*dynamodb.CreateTableOutput, error) {
	if aws.ToString(in.TableName) == r.name {
		return nil, errors.New("AccessDeniedException: not authorized to perform dynamodb:CreateTable (injected)")
	}
	return r.account.CreateTable(ctx, in, o...)
}

// TestProvisionJSONSaysWhatWasCreatedWhenItStops: provision --json that
// stopped part of the way (a table it may not create) printed nothing on
// stdout, though a table was already made, where deploy and teardown
// print what they did and the error. It prints in `changes` what it
// created, in `left` what it did not, and the `error`, as docs/json.md
// shows, and still fails.
func TestProvisionJSONSaysWhatWasCreatedWhenItStops(t *testing.T) {
	a := newAccount()
	opts, output := provisionOpts(a)
	opts.JSON = true
	opts.Target = func(context.Context) (*Target, error) {
		return &Target{Tables: awsops.TablesFor("prod"), Queues: awsops.QueuesFor("prod"), DB: refusingCreate{a, "prod-chatter"}, SQS: a, Stack: "prod", Region: "us-east-1"}, nil
	}
	err := provisionRun(t.Context(), opts)
	if err == nil || !strings.Contains(err.Error(), "injected") {
		t.Fatalf("provision with CreateTable of prod-chatter refused: %v", err)
	}
	out, _ := output()
	var res struct {
		Changes []awsops.Change `json:"changes"`
		Left    []awsops.Change `json:"left"`
		Error   string          `json:"error"`
	}
	if err := json.Unmarshal([]byte(out), &res); err != nil {
		t.Fatalf("--json after provision stopped: %v\n%q", err, out)
	}
	created := []awsops.Change{{Kind: awsops.KindTable, Name: "prod-connections"}}
	left := []awsops.Change{{Kind: awsops.KindTable, Name: "prod-chatter"}, {Kind: awsops.KindTable, Name: "prod-reports"}, {Kind: awsops.KindQueue, Name: "prod-envelopes-dlq"}, {Kind: awsops.KindQueue, Name: "prod-envelopes"}}
	if !sameChanges(res.Changes, created) || !sameChanges(res.Left, left) || !strings.Contains(res.Error, "injected") {
		t.Errorf("--json after provision stopped: %s; want changes %v, left %v and the error", out, created, left)
	}
	d, err := jsondoc.Find("socks provision --backend aws --json")
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range d.Check(out) {
		t.Error(p)
	}

	// With the permission, a second run finishes the job.
	opts.Target = a.target("prod")
	if err := provisionRun(t.Context(), opts); err != nil {
		out, errOut := output()
		t.Fatalf("the rerun: %v\n%s\n%s", err, out, errOut)
	}
	if len(a.tables) != 3 || len(a.queues) != 2 || !a.ttl["prod-connections"] {
		t.Errorf("after the rerun: tables %v, queues %v, TTL %v", a.tables, a.queues, a.ttl)
	}
}

func TestADriftQuotingAWSCannotDriveTheTerminal(t *testing.T) {
	// What a drift says is, AWS holds: anyone with write access to the
	// account chose it.
	ios, _, _, errOut := iostreams.Test()
	ios.SetTTY(false, true, true)
	ios.SetNoColor(true)
	printDrift(ios, false, []awsops.Drift{{Kind: "queue", Name: "prod\x1b[2J", Aspect: "policy", Is: "\x1b]52;c;aGk=\x07\u202e", Want: "socks's", Fix: "run \x1b[1Aprovision"}})
	got := errOut.String()
	if strings.ContainsAny(got, "\x1b\x07\u202e") || !strings.Contains(got, `\x1b]52;c;aGk=\x07\u202e`) || !strings.Contains(got, `prod\x1b[2J`) {
		t.Errorf("stderr on a terminal %q: want the drift shown escaped", got)
	}
}
