package ops_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	dynamotypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"
	"github.com/aws/smithy-go"

	"github.com/socks-dev/socks/awsops"
	"github.com/socks-dev/socks/config"
	"github.com/socks-dev/socks/local"
	"github.com/socks-dev/socks/ops"
	"github.com/socks-dev/socks/ops/opstest"
	"github.com/socks-dev/socks/pubsub"
	"github.com/socks-dev/socks/store"
)

// fakeTables answers DescribeTable and DescribeTimeToLive as DynamoDB
// does for the tables provision creates, less what a test removed.
type fakeTables struct {
	tables  awsops.Tables
	missing map[string]bool // table name → absent
	noIndex map[string]bool // table name → its indexes absent
	ttlOff  map[string]bool // table name → TTL off
	// untagged: table name → tagged app=socks without socks:stack (made
	// by a socks before stacks were tagged).
	untagged map[string]bool
	err      error // every call fails with it
	tagsErr  error // ListTagsOfResource fails with it
}

const tableARNPrefix = "arn:aws:dynamodb:us-east-1:000000000000:table/"

func (f *fakeTables) ListTagsOfResource(_ context.Context, in *dynamodb.ListTagsOfResourceInput, _ ...func(*dynamodb.Options)) (*dynamodb.ListTagsOfResourceOutput, error) {
	if f.tagsErr != nil {
		return nil, f.tagsErr
	}
	return &dynamodb.ListTagsOfResourceOutput{Tags: socksTags(strings.TrimPrefix(aws.ToString(in.ResourceArn), tableARNPrefix), f.tables.Stack, f.untagged)}, nil
}

// socksTags are the tags of the table or queue name as provision makes
// them, without socks:stack when untagged says so.
func socksTags(name, stack string, untagged map[string]bool) []dynamotypes.Tag {
	tags := []dynamotypes.Tag{{Key: aws.String(awsops.TagApp), Value: aws.String("socks")}}
	if !untagged[name] {
		tags = append(tags, dynamotypes.Tag{Key: aws.String(awsops.TagStack), Value: aws.String(stack)})
	}
	return tags
}

func (f *fakeTables) DescribeTable(_ context.Context, in *dynamodb.DescribeTableInput, _ ...func(*dynamodb.Options)) (*dynamodb.DescribeTableOutput, error) {
	if f.err != nil {
		return nil, f.err
	}
	name := aws.ToString(in.TableName)
	if f.missing[name] {
		return nil, &dynamotypes.ResourceNotFoundException{Message: aws.String("Requested resource not found")}
	}
	for _, c := range f.tables.CreateInputs() {
		if aws.ToString(c.TableName) != name {
			continue
		}
		desc := &dynamotypes.TableDescription{
			TableName: c.TableName, TableArn: aws.String(tableARNPrefix + name), TableStatus: dynamotypes.TableStatusActive,
			KeySchema: c.KeySchema, AttributeDefinitions: c.AttributeDefinitions,
		}
		if !f.noIndex[name] {
			for _, g := range c.GlobalSecondaryIndexes {
				desc.GlobalSecondaryIndexes = append(desc.GlobalSecondaryIndexes, dynamotypes.GlobalSecondaryIndexDescription{
					IndexName: g.IndexName, KeySchema: g.KeySchema, Projection: g.Projection,
				})
			}
		}
		return &dynamodb.DescribeTableOutput{Table: desc}, nil
	}
	return nil, &dynamotypes.ResourceNotFoundException{}
}

func (f *fakeTables) DescribeTimeToLive(_ context.Context, in *dynamodb.DescribeTimeToLiveInput, _ ...func(*dynamodb.Options)) (*dynamodb.DescribeTimeToLiveOutput, error) {
	name := aws.ToString(in.TableName)
	if f.ttlOff[name] {
		return &dynamodb.DescribeTimeToLiveOutput{TimeToLiveDescription: &dynamotypes.TimeToLiveDescription{TimeToLiveStatus: dynamotypes.TimeToLiveStatusDisabled}}, nil
	}
	for _, in := range f.tables.TTLInputs() {
		if aws.ToString(in.TableName) == name {
			return &dynamodb.DescribeTimeToLiveOutput{TimeToLiveDescription: &dynamotypes.TimeToLiveDescription{
				TimeToLiveStatus: dynamotypes.TimeToLiveStatusEnabled, AttributeName: in.TimeToLiveSpecification.AttributeName,
			}}, nil
		}
	}
	return nil, &dynamotypes.ResourceNotFoundException{}
}

// fakeQueues answers GetQueueUrl and GetQueueAttributes as SQS does for
// the queues provision creates, less what a test removed.
type fakeQueues struct {
	queues     awsops.Queues
	missing    map[string]bool
	visibility string // the main queue's, when set
	untagged   map[string]bool
	err        error
	tagsErr    error // ListQueueTags fails with it
}

func (f *fakeQueues) ListQueueTags(_ context.Context, in *sqs.ListQueueTagsInput, _ ...func(*sqs.Options)) (*sqs.ListQueueTagsOutput, error) {
	if f.tagsErr != nil {
		return nil, f.tagsErr
	}
	name := aws.ToString(in.QueueUrl)
	tags := map[string]string{}
	for _, t := range socksTags(name[strings.LastIndexByte(name, '/')+1:], f.queues.Stack, f.untagged) {
		tags[aws.ToString(t.Key)] = aws.ToString(t.Value)
	}
	return &sqs.ListQueueTagsOutput{Tags: tags}, nil
}

const arnPrefix = "arn:aws:sqs:us-east-1:000000000000:"

func (f *fakeQueues) GetQueueUrl(_ context.Context, in *sqs.GetQueueUrlInput, _ ...func(*sqs.Options)) (*sqs.GetQueueUrlOutput, error) {
	if f.err != nil {
		return nil, f.err
	}
	name := aws.ToString(in.QueueName)
	if f.missing[name] {
		return nil, &sqstypes.QueueDoesNotExist{}
	}
	return &sqs.GetQueueUrlOutput{QueueUrl: aws.String("http://sqs.test/000000000000/" + name)}, nil
}

func (f *fakeQueues) GetQueueAttributes(_ context.Context, in *sqs.GetQueueAttributesInput, _ ...func(*sqs.Options)) (*sqs.GetQueueAttributesOutput, error) {
	name := aws.ToString(in.QueueUrl)
	name = name[strings.LastIndexByte(name, '/')+1:]
	attrs := map[string]string{"QueueArn": arnPrefix + name}
	if name == f.queues.Main {
		for k, v := range f.queues.MainInput(arnPrefix+f.queues.DeadLetter, awsops.QueueSettings{}).Attributes {
			attrs[k] = v
		}
		if f.visibility != "" {
			attrs["VisibilityTimeout"] = f.visibility
		}
	}
	return &sqs.GetQueueAttributesOutput{Attributes: attrs}, nil
}

// awsEnv is a healthy AWS stack "prod" behind fakes, on an emulator
// endpoint, with a Management API answering 410.
func awsEnv(t *testing.T) (*ops.Env, *fakeTables, *fakeQueues) {
	t.Helper()
	db := openDB(t, local.Options{Now: func() time.Time { return now }})
	tables, queues := awsops.TablesFor("prod"), awsops.QueuesFor("prod")
	ft := &fakeTables{tables: tables, missing: map[string]bool{}, noIndex: map[string]bool{}, ttlOff: map[string]bool{}, untagged: map[string]bool{}}
	fq := &fakeQueues{queues: queues, missing: map[string]bool{}, untagged: map[string]bool{}}
	env := &ops.Env{
		Config: config.Config{Backend: config.BackendAWS, BackendSource: "flag", AWS: config.AWS{
			Stack: "prod", Region: "us-east-1", DynamoDBEndpointURL: "http://127.0.0.1:8000", SQSEndpointURL: "http://127.0.0.1:9324",
			CallbackURL: "http://127.0.0.1:1",
		}},
		Now:      now,
		Store:    db.Store(),
		Queue:    db.Queue(),
		Endpoint: "http://127.0.0.1:1",
		Pusher:   opstest.NewFakePusher(),
		AWS: &ops.AWSEnv{
			Credentials: credentials.NewStaticCredentialsProvider("AKIAEXAMPLEKEY1234", "secret", ""),
			DB:          ft, SQS: fq, Tables: tables, Queues: queues,
			Migration: func(context.Context) (awsops.PendingMigration, error) {
				return awsops.PendingMigration{Read: 30, Whole: true}, nil
			},
		},
	}
	return env, ft, fq
}

// check runs the AWS checks and returns the one named.
func check(t *testing.T, env *ops.Env, name string) (ops.Result, ops.Report) {
	t.Helper()
	rep := ops.RunChecks(context.Background(), env, ops.Checks(config.BackendAWS))
	for _, r := range rep.Checks {
		if r.Name == name {
			return r, rep
		}
	}
	t.Fatalf("no check %q in %+v", name, rep)
	return ops.Result{}, rep
}

func TestAWSDoctorChecks(t *testing.T) {
	t.Run("a healthy stack passes every check and skips the identity on an emulator", func(t *testing.T) {
		env, _, _ := awsEnv(t)
		rep := ops.RunChecks(context.Background(), env, ops.Checks(config.BackendAWS))
		if !rep.OK || rep.Warned != 0 {
			t.Errorf("report %+v; want every check ok", rep)
		}
		var names []string
		for _, r := range rep.Checks {
			names = append(names, r.Name)
		}
		want := "backend,endpoints,credentials,identity,tables,time to live,queues,deployed stack,queue,dead letters,connections,migration,management API"
		if got := strings.Join(names, ","); got != want {
			t.Errorf("checks %s; want %s", got, want)
		}
		if r := find(rep, "identity"); r.Status != ops.StatusSkip || r.Detail != "skipped: endpoint override (emulator)" {
			t.Errorf("identity: %+v", r)
		}
		if r := find(rep, "credentials"); !strings.Contains(r.Detail, "**************1234 from StaticCredentials") || strings.Contains(r.Detail, "secret") {
			t.Errorf("credentials: %+v", r)
		}
		if r := find(rep, "endpoints"); r.Detail != "DynamoDB at http://127.0.0.1:8000, SQS at http://127.0.0.1:9324, Management API at http://127.0.0.1:1" {
			t.Errorf("endpoints: %+v", r)
		}
	})

	for _, tc := range []struct {
		name    string
		change  func(env *ops.Env, ft *fakeTables, fq *fakeQueues)
		check   string
		status  ops.Status
		phrases []string
		skipped []string // checks that must be skipped as a consequence
	}{
		{"a missing table says run socks provision",
			func(_ *ops.Env, ft *fakeTables, _ *fakeQueues) { ft.missing["prod-connections"] = true },
			"tables", ops.StatusFail, []string{"missing: table prod-connections", "run `socks provision`"}, []string{"connections", "migration"}},
		{"a table without its index says how to add it",
			func(_ *ops.Env, ft *fakeTables, _ *fakeQueues) { ft.noIndex["prod-connections"] = true },
			"tables", ops.StatusFail, []string{"table prod-connections: index by-geek is absent", "aws dynamodb update-table --table-name prod-connections"}, []string{"connections", "migration"}},
		{"TTL off says how to turn it on",
			func(_ *ops.Env, ft *fakeTables, _ *fakeQueues) { ft.ttlOff["prod-chatter"] = true },
			"time to live", ops.StatusFail, []string{"table prod-chatter: time to live is off", "aws dynamodb update-time-to-live --table-name prod-chatter"}, nil},
		{"a missing main queue says run socks provision and skips the depth checks",
			func(_ *ops.Env, _ *fakeTables, fq *fakeQueues) { fq.missing["prod-envelopes"] = true },
			"queues", ops.StatusFail, []string{"missing: queue prod-envelopes", "run `socks provision`"}, []string{"queue", "dead letters"}},
		{"a short visibility timeout says how to set it",
			func(_ *ops.Env, _ *fakeTables, fq *fakeQueues) { fq.visibility = "30" },
			"queues", ops.StatusFail, []string{"visibility timeout is 30 s", "VisibilityTimeout=180"}, nil},
		{"a drift and a missing resource: fix the drift, then provision",
			func(_ *ops.Env, ft *fakeTables, _ *fakeQueues) {
				ft.noIndex["prod-connections"] = true
				ft.missing["prod-reports"] = true
			},
			"tables", ops.StatusFail, []string{"missing: table prod-reports; table prod-connections: index by-geek", "; then run `socks provision` to create what is missing"}, nil},
		// TestDoctorReportsTablesAndQueuesWithoutTheStackTag: provision
		// and deploy tag them (a repair); doctor said nothing of it.
		{"a table without the stack tag warns: run socks provision",
			func(_ *ops.Env, ft *fakeTables, _ *fakeQueues) { ft.untagged["prod-connections"] = true },
			"tables", ops.StatusWarn, []string{"without the socks:stack tag: table prod-connections", "run `socks provision`"}, nil},
		{"a queue without the stack tag warns: run socks provision",
			func(_ *ops.Env, _ *fakeTables, fq *fakeQueues) { fq.untagged["prod-envelopes-dlq"] = true },
			"queues", ops.StatusWarn, []string{"without the socks:stack tag: queue prod-envelopes-dlq", "run `socks provision`"}, nil},
		{"tables tagged as another stack's fail, naming it",
			func(_ *ops.Env, ft *fakeTables, _ *fakeQueues) { ft.tables.Stack = "staging" },
			"tables", ops.StatusFail, []string{"table prod-connections: stack is socks:stack=staging", "use --stack staging"}, nil},
		{"an untagged table beside a drift: fix the drift, then provision",
			func(_ *ops.Env, ft *fakeTables, _ *fakeQueues) {
				ft.noIndex["prod-connections"] = true
				ft.untagged["prod-reports"] = true
			},
			"tables", ops.StatusFail, []string{"without the socks:stack tag: table prod-reports; table prod-connections: index by-geek", "; then run `socks provision`"}, nil},
		// TestDoctorSaysWhichPermissionReadsTheStackTags: since doctor
		// reads the stack tags, credentials that may not read them failed
		// the check with a fix naming only DescribeTable and
		// DescribeTimeToLive (or GetQueueUrl and GetQueueAttributes).
		{"tags that may not be read name the permission",
			func(_ *ops.Env, ft *fakeTables, _ *fakeQueues) {
				ft.tagsErr = &smithy.GenericAPIError{Code: "AccessDeniedException", Message: "User is not authorized"}
			},
			"tables", ops.StatusFail, []string{"cannot describe the tables", "dynamodb:ListTagsOfResource"}, nil},
		{"queue tags that may not be read name the permission",
			func(_ *ops.Env, _ *fakeTables, fq *fakeQueues) {
				fq.tagsErr = &smithy.GenericAPIError{Code: "AccessDenied", Message: "User is not authorized"}
			},
			"queues", ops.StatusFail, []string{"cannot describe the queues", "sqs:ListQueueTags"}, nil},
		{"an unreachable DynamoDB fails the tables but not the queues",
			func(_ *ops.Env, ft *fakeTables, _ *fakeQueues) {
				ft.err = &net.OpError{Op: "dial", Net: "tcp", Err: os.NewSyscallError("connect", syscall.ECONNREFUSED)}
			},
			"tables", ops.StatusFail, []string{"cannot describe the tables", "connection refused", "--dynamodb-endpoint-url"}, []string{"time to live"}},
		// TestDoctorReportsRecordsStillToMigrate: doctor said nothing of
		// records an earlier socks (or its Lambda function still running
		// after an upgrade) wrote, which a fan-out to users misses.
		{"records to migrate in a table read whole warn with their count and provision",
			func(env *ops.Env, _ *fakeTables, _ *fakeQueues) {
				env.AWS.Migration = func(context.Context) (awsops.PendingMigration, error) {
					return awsops.PendingMigration{Changes: 3, Read: 120, Whole: true}, nil
				}
			},
			"migration", ops.StatusWarn, []string{"3 connection records to migrate in table prod-connections (read all 120 items)", "fan-outs to users may miss them", "run `socks provision`", "--function-timeout"}, nil},
		{"records to migrate in a table read in part warn with some, saying it stopped early",
			func(env *ops.Env, _ *fakeTables, _ *fakeQueues) {
				env.AWS.Migration = func(context.Context) (awsops.PendingMigration, error) {
					return awsops.PendingMigration{Changes: 2, Read: 2000}, nil
				}
			},
			"migration", ops.StatusWarn, []string{"some connection records to migrate in table prod-connections: 2 in the first 2000 items (stopped early", "socks provision --dry-run", "run `socks provision`"}, nil},
		{"none to migrate in a table read in part is ok, saying it stopped early",
			func(env *ops.Env, _ *fakeTables, _ *fakeQueues) {
				env.AWS.Migration = func(context.Context) (awsops.PendingMigration, error) {
					return awsops.PendingMigration{Read: 2000}, nil
				}
			},
			"migration", ops.StatusOK, []string{"no connection records to migrate in the first 2000 items of table prod-connections (stopped early"}, nil},
		// A Scan slower than doctor's 10 s (a table of low provisioned
		// read capacity, throttled) failed the check, "did not finish",
		// though it had read pages: it says what they showed now, as
		// when it stops at its item limit.
		{"records to migrate found before the time limit warn, saying it stopped early",
			func(env *ops.Env, _ *fakeTables, _ *fakeQueues) {
				env.AWS.Migration = func(context.Context) (awsops.PendingMigration, error) {
					return awsops.PendingMigration{Changes: 1, Read: 750}, fmt.Errorf("reading the connections table: %w", context.DeadlineExceeded)
				}
			},
			"migration", ops.StatusWarn, []string{"some connection records to migrate in table prod-connections: 1 in the first 750 items (stopped early, at doctor's time limit of 10s", "socks provision --dry-run", "run `socks provision`"}, nil},
		{"none to migrate before the time limit is ok, saying it stopped early",
			func(env *ops.Env, _ *fakeTables, _ *fakeQueues) {
				env.AWS.Migration = func(context.Context) (awsops.PendingMigration, error) {
					return awsops.PendingMigration{Read: 250}, fmt.Errorf("reading the connections table: %w", context.DeadlineExceeded)
				}
			},
			"migration", ops.StatusOK, []string{"no connection records to migrate in the first 250 items of table prod-connections (stopped early, at doctor's time limit of 10s"}, nil},
		// On a table of low provisioned read capacity the SDK gives up
		// after its three attempts, throttled, well within the 10 s.
		{"records to migrate found before the reads were throttled warn, saying it stopped early",
			func(env *ops.Env, _ *fakeTables, _ *fakeQueues) {
				env.AWS.Migration = func(context.Context) (awsops.PendingMigration, error) {
					throttled := &smithy.OperationError{ServiceID: "DynamoDB", OperationName: "Scan", Err: &retry.MaxAttemptsError{Attempt: 3,
						Err: &smithy.GenericAPIError{Code: "ProvisionedThroughputExceededException", Message: "The level of configured provisioned throughput for the table was exceeded"}}}
					return awsops.PendingMigration{Changes: 2, Read: 500}, fmt.Errorf("reading the connections table: %w", throttled)
				}
			},
			"migration", ops.StatusWarn, []string{"some connection records to migrate in table prod-connections: 2 in the first 500 items (stopped early, as DynamoDB throttled the reads", "socks provision --dry-run"}, nil},
		{"keys BatchGetItem left unprocessed after its attempts count as throttled",
			func(env *ops.Env, _ *fakeTables, _ *fakeQueues) {
				env.AWS.Migration = func(context.Context) (awsops.PendingMigration, error) {
					return awsops.PendingMigration{Read: 250}, fmt.Errorf("reading the connections table: BatchGetItem on table prod-connections left 3 keys unprocessed after 10 attempts (%w): try again later", awsops.ErrThrottled)
				}
			},
			"migration", ops.StatusOK, []string{"no connection records to migrate in the first 250 items of table prod-connections (stopped early, as DynamoDB throttled the reads"}, nil},
		{"reads throttled before any page fail, naming the throttling",
			func(env *ops.Env, _ *fakeTables, _ *fakeQueues) {
				env.AWS.Migration = func(context.Context) (awsops.PendingMigration, error) {
					return awsops.PendingMigration{}, fmt.Errorf("reading the connections table: %w", &smithy.GenericAPIError{Code: "ProvisionedThroughputExceededException", Message: "exceeded"})
				}
			},
			"migration", ops.StatusFail, []string{"cannot read the connections table: api error ProvisionedThroughputExceededException", "throttled", "run the doctor again later"}, nil},
		{"nothing read within the time limit fails",
			func(env *ops.Env, _ *fakeTables, _ *fakeQueues) {
				env.AWS.Migration = func(context.Context) (awsops.PendingMigration, error) {
					return awsops.PendingMigration{}, fmt.Errorf("reading the connections table: %w", context.DeadlineExceeded)
				}
			},
			"migration", ops.StatusFail, []string{"reading the connections table did not finish within 10s"}, nil},
		{"a table that may not be scanned names the permissions",
			func(env *ops.Env, _ *fakeTables, _ *fakeQueues) {
				env.AWS.Migration = func(context.Context) (awsops.PendingMigration, error) {
					return awsops.PendingMigration{}, &smithy.GenericAPIError{Code: "AccessDeniedException", Message: "User is not authorized"}
				}
			},
			"migration", ops.StatusFail, []string{"cannot read the connections table", "dynamodb:Scan", "dynamodb:BatchGetItem"}, nil},
		// The connections check reads a bounded part of the table, as
		// the migration check does, and stops early as it does: a
		// throttled Scan (a table of low provisioned read capacity,
		// which the migration check's Scan just used) failed it with
		// "create the tables with socks provision", though it had read
		// pages.
		{"connections read before the reads were throttled are said, stopping early",
			func(env *ops.Env, _ *fakeTables, _ *fakeQueues) {
				env.AWS.Connections = func(_ context.Context, fn func([]pubsub.Connection) error) (awsops.ConnectionsRead, error) {
					if err := fn([]pubsub.Connection{{ID: "a=", Geek: "g", ConnectedAt: now.Add(-time.Minute), ExpiresAt: now.Add(time.Hour)}}); err != nil {
						return awsops.ConnectionsRead{}, err
					}
					throttled := &smithy.OperationError{ServiceID: "DynamoDB", OperationName: "Scan", Err: &retry.MaxAttemptsError{Attempt: 3,
						Err: &smithy.GenericAPIError{Code: "ProvisionedThroughputExceededException", Message: "The level of configured provisioned throughput for the table was exceeded"}}}
					return awsops.ConnectionsRead{Read: 250}, fmt.Errorf("listing connections: %w", throttled)
				}
			},
			"connections", ops.StatusOK, []string{"1 open in the first 250 records (stopped early, as DynamoDB throttled the reads", "socks subs stats"}, nil},
		{"connection reads throttled before any page fail, naming the throttling",
			func(env *ops.Env, _ *fakeTables, _ *fakeQueues) {
				env.AWS.Connections = func(context.Context, func([]pubsub.Connection) error) (awsops.ConnectionsRead, error) {
					return awsops.ConnectionsRead{}, fmt.Errorf("listing connections: %w", &smithy.GenericAPIError{Code: "ProvisionedThroughputExceededException", Message: "exceeded"})
				}
			},
			"connections", ops.StatusFail, []string{"cannot read the connections", "ProvisionedThroughputExceededException", "throttled", "run the doctor again later"}, nil},
		{"no callback URL warns with how to set it",
			func(env *ops.Env, _ *fakeTables, _ *fakeQueues) {
				env.Config.AWS.CallbackURL, env.Endpoint, env.Pusher = "", "", nil
			},
			"management API", ops.StatusWarn, []string{"no Management API endpoint is configured", "--callback-url", config.EnvCallback}, nil},
		{"expired credentials fail",
			func(env *ops.Env, _ *fakeTables, _ *fakeQueues) {
				env.AWS.Credentials = aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
					return aws.Credentials{AccessKeyID: "ASIAEXAMPLE", CanExpire: true, Expires: now.Add(-time.Minute), Source: "SSOProvider"}, nil
				})
			},
			"credentials", ops.StatusFail, []string{"expired", "aws sso login"}, nil},
		{"credentials that cannot be retrieved fail",
			func(env *ops.Env, _ *fakeTables, _ *fakeQueues) {
				env.AWS.Credentials = aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
					return aws.Credentials{}, errors.New("the SSO session has expired")
				})
			},
			"credentials", ops.StatusFail, []string{"cannot retrieve credentials", "SSO session", "AWS_PROFILE"}, nil},
		{"the STS identity is shown without an endpoint override",
			func(env *ops.Env, _ *fakeTables, _ *fakeQueues) {
				env.AWS.Identity = func(context.Context) (ops.Identity, error) {
					return ops.Identity{Account: "123456789012", ARN: "arn:aws:iam::123456789012:user/ops"}, nil
				}
			},
			"identity", ops.StatusOK, []string{"arn:aws:iam::123456789012:user/ops (account 123456789012)"}, nil},
		{"credentials STS rejects fail",
			func(env *ops.Env, _ *fakeTables, _ *fakeQueues) {
				env.AWS.Identity = func(context.Context) (ops.Identity, error) {
					return ops.Identity{}, &smithy.GenericAPIError{Code: "InvalidClientTokenId", Message: "The security token included in the request is invalid."}
				}
			},
			"identity", ops.StatusFail, []string{"InvalidClientTokenId", "AWS_PROFILE"}, nil},
		{"no route to STS only warns",
			func(env *ops.Env, _ *fakeTables, _ *fakeQueues) {
				env.AWS.Identity = func(context.Context) (ops.Identity, error) {
					return ops.Identity{}, &net.OpError{Op: "dial", Net: "tcp", Err: errors.New("i/o timeout")}
				}
			},
			"identity", ops.StatusWarn, []string{"cannot ask STS", "no route to STS"}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			env, ft, fq := awsEnv(t)
			tc.change(env, ft, fq)
			r, rep := check(t, env, tc.check)
			if r.Status != tc.status {
				t.Errorf("%s is %s; want %s: %+v", tc.check, r.Status, tc.status, r)
			}
			text := r.Detail + " → " + r.Fix
			for _, p := range tc.phrases {
				if !strings.Contains(text, p) {
					t.Errorf("%q does not say %q", text, p)
				}
			}
			if tc.status == ops.StatusFail && (rep.OK || r.Fix == "") {
				t.Errorf("a failure must fail the report and say what to do: %+v", rep)
			}
			if tc.status != ops.StatusFail && !rep.OK {
				t.Errorf("report %+v; want ok", rep)
			}
			for _, name := range tc.skipped {
				if s := find(rep, name); s.Status != ops.StatusSkip {
					t.Errorf("%s is %s (%s); want it skipped", name, s.Status, s.Detail)
				}
			}
			if tc.check == "tables" && find(rep, "queues").Status != ops.StatusOK {
				t.Errorf("queues: %+v; want ok whatever the tables", find(rep, "queues"))
			}
		})
	}

	// A connections check that stopped early dated the oldest of the
	// records it read "oldest connected", as if it were the oldest of
	// them all.
	t.Run("the oldest connection of a part read is said to be of those read", func(t *testing.T) {
		for _, whole := range []bool{false, true} {
			env, _, _ := awsEnv(t)
			env.AWS.Connections = func(_ context.Context, fn func([]pubsub.Connection) error) (awsops.ConnectionsRead, error) {
				err := fn([]pubsub.Connection{{ID: "a=", Geek: "g", ConnectedAt: now.Add(-time.Minute), ExpiresAt: now.Add(time.Hour)}})
				return awsops.ConnectionsRead{Read: 2000, Whole: whole}, err
			}
			r, _ := check(t, env, "connections")
			want := "oldest connected of those read"
			if whole {
				want = "oldest connected"
			}
			if r.TimeLabel != want || !r.Time.Equal(now.Add(-time.Minute)) {
				t.Errorf("whole=%v: %+v; want %q, %s", whole, r, want, now.Add(-time.Minute))
			}
		}
	})

	t.Run("the broker timeout provision was given sets the visibility timeout wanted", func(t *testing.T) {
		env, _, fq := awsEnv(t)
		fq.visibility = "60"
		if r, _ := check(t, env, "queues"); r.Status != ops.StatusFail {
			t.Errorf("with the default broker timeout, 60 s must drift: %+v", r)
		}
		env, _, fq = awsEnv(t)
		fq.visibility = "60"
		env.AWS.Settings.BrokerTimeout = 10 * time.Second
		if r, _ := check(t, env, "queues"); r.Status != ops.StatusOK {
			t.Errorf("provisioned with --broker-timeout 10s, 60 s is right: %+v", r)
		}
	})

	t.Run("the backend line names the region's source and an AWS_REGION the profile overrode", func(t *testing.T) {
		env, _, _ := awsEnv(t)
		env.Config.Sources = map[string]string{"region": "profile prod"}
		env.Config.Notes = []string{"AWS_REGION=us-west-2 is ignored: profile prod sets region us-east-1 (--region or SOCKS_REGION overrides it)"}
		r, _ := check(t, env, "backend")
		if r.Status != ops.StatusOK || !strings.Contains(r.Detail, "region us-east-1 (profile prod)") || !strings.Contains(r.Detail, "AWS_REGION=us-west-2 is ignored") {
			t.Errorf("backend: %+v", r)
		}
	})

	t.Run("a backend that did not open skips the AWS checks", func(t *testing.T) {
		env := &ops.Env{Config: config.Config{Backend: config.BackendAWS, AWS: config.AWS{Stack: "prod", Region: "us-east-1", CallbackURL: "https://x"}},
			OpenErr: errors.New("no AWS credentials found")}
		rep := ops.RunChecks(context.Background(), env, ops.Checks(config.BackendAWS))
		if rep.Failed != 1 || find(rep, "backend").Status != ops.StatusFail {
			t.Errorf("report %+v; want only the backend failed", rep)
		}
		for _, name := range []string{"credentials", "identity", "tables", "time to live", "queues", "queue", "dead letters", "connections", "management API"} {
			if r := find(rep, name); r.Status != ops.StatusSkip {
				t.Errorf("%s: %+v; want skipped", name, r)
			}
		}
	})
}

// TestAReadThatFailsNamesWhereTheStackCameFrom: a read of the stack that
// failed said to check --stack and --region whatever set them.
func TestAReadThatFailsNamesWhereTheStackCameFrom(t *testing.T) {
	for _, tc := range []struct {
		sources map[string]string
		want    string
	}{
		{nil, "check --stack and --region"},
		{map[string]string{"stack": "env", "region": "flag"}, "check $SOCKS_STACK and --region"},
		{map[string]string{"stack": "profile prod", "region": "profile prod"}, "check stack and region of profile prod in config file /f.toml"},
	} {
		t.Run(tc.want, func(t *testing.T) {
			env, _, _ := awsEnv(t)
			env.Config.Sources, env.Config.ConfigFile = tc.sources, "/f.toml"
			env.AWS.Connections = func(context.Context, func([]pubsub.Connection) error) (awsops.ConnectionsRead, error) {
				return awsops.ConnectionsRead{}, errors.New("listing connections: it broke")
			}
			if r, _ := check(t, env, "connections"); r.Status != ops.StatusFail || !strings.Contains(r.Fix, tc.want) {
				t.Errorf("connections check %+v; want a failure whose fix says %q", r, tc.want)
			}
		})
	}
}

// failingQueue is a store.Queue whose Stats fails with err.
type failingQueue struct {
	store.Queue
	err error
}

func (q failingQueue) Stats(context.Context) (store.QueueStats, error) {
	return store.QueueStats{}, q.err
}

// TestAnEndpointThatDoesNotAnswerAsAWSIsNotFixedByProvision: a read of
// the queue or of the connections table (the connections and migration
// checks) that failed because the endpoint did not answer as AWS does (a
// connection reset, a reply that is not DynamoDB's or SQS's: an HTML
// page, garbage) fails with the fix to check the endpoint, not with
// "create the tables and queues with `socks provision`" (or, for the
// migration, to check the credentials' dynamodb:Scan), which the line
// beside it contradicted ("cannot reach …; check --endpoint-url") and
// which mends nothing.
func TestAnEndpointThatDoesNotAnswerAsAWSIsNotFixedByProvision(t *testing.T) {
	for name, cause := range map[string]error{
		"a connection reset": awsops.Explain(&smithy.OperationError{ServiceID: "SQS", OperationName: "GetQueueUrl",
			Err: &url.Error{Op: "Post", URL: "http://127.0.0.1:9324/", Err: &net.OpError{Op: "read", Net: "tcp", Err: syscall.ECONNRESET}}}),
		"a reply that is not AWS's": &smithy.OperationError{ServiceID: "SQS", OperationName: "GetQueueUrl",
			Err: &smithy.DeserializationError{Err: errors.New("unexpected token at offset 0")}},
	} {
		t.Run(name, func(t *testing.T) {
			env, _, _ := awsEnv(t)
			env.Queue = failingQueue{env.Queue, fmt.Errorf("reading the queue's depth: %w", cause)}
			env.AWS.Connections = func(context.Context, func([]pubsub.Connection) error) (awsops.ConnectionsRead, error) {
				return awsops.ConnectionsRead{}, fmt.Errorf("listing connections: %w", cause)
			}
			env.AWS.Migration = func(context.Context) (awsops.PendingMigration, error) {
				return awsops.PendingMigration{}, fmt.Errorf("reading the connections table: %w", cause)
			}
			for _, c := range []string{"queue", "dead letters", "connections", "migration"} {
				r, _ := check(t, env, c)
				if r.Status != ops.StatusFail || strings.Contains(r.Fix, "provision") || !strings.Contains(r.Fix, "endpoint") {
					t.Errorf("%s: %+v; want a failure whose fix is to check the endpoint, not to provision", c, r)
				}
			}
		})
	}
	t.Run("a refusal by AWS keeps its fix", func(t *testing.T) {
		env, _, _ := awsEnv(t)
		env.Queue = failingQueue{env.Queue, &smithy.GenericAPIError{Code: "AccessDenied", Message: "not authorized"}}
		if r, _ := check(t, env, "queue"); r.Status != ops.StatusFail || !strings.Contains(r.Fix, "credentials may use them") {
			t.Errorf("queue: %+v; want the fix about the stack, the region and the credentials", r)
		}
	})
}
