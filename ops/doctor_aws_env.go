package ops

import (
	"context"
	"net/url"
	"path"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	dynamotypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"
	"github.com/aws/aws-sdk-go-v2/service/sts"

	"github.com/socks-dev/socks/awsops"
	"github.com/socks-dev/socks/backend"
	"github.com/socks-dev/socks/config"
	"github.com/socks-dev/socks/pubsub"
)

// AWSEnv is what the AWS backend's checks look at: the raw SDK clients of
// the stack's tables and queues, its names, and where its credentials come
// from. GatherEnv fills it from the opened backend; tests build it with
// fakes.
type AWSEnv struct {
	// Credentials is the provider of the loaded AWS configuration.
	Credentials aws.CredentialsProvider
	// Identity asks STS who the credentials belong to. It is nil when an
	// endpoint override is set: emulators have no STS, and the real one
	// must not be asked about credentials meant for an emulator.
	Identity func(ctx context.Context) (Identity, error)

	// DB and SQS are read-only clients for the drift check and the
	// stack tags.
	DB  TableReadAPI
	SQS QueueReadAPI
	// Tables and Queues are the stack's resource names.
	Tables awsops.Tables
	Queues awsops.Queues
	// Settings are those provision used (the broker timeout sets the
	// main queue's minimum visibility timeout).
	Settings awsops.QueueSettings

	// Deployed checks what `socks deploy` made (a dry run of deploy). It
	// is nil when DynamoDB or SQS has an endpoint of its own: the data
	// plane is then on emulators, and the control plane is not asked.
	Deployed func(ctx context.Context) (awsops.DeployResult, error)

	// Migration reads (a bounded part of) the connections table for
	// records that a migration would change (DynamoStore.PendingMigration).
	// It is nil when the backend has no DynamoDB store.
	Migration func(ctx context.Context) (awsops.PendingMigration, error)

	// Connections reads a bounded part of the connection records for the
	// connections check (DynamoStore.ReadConnections, at most
	// ConnectionsReadLimit items), calling fn with each page. It is nil
	// when the backend has no DynamoDB store: the check then lists them
	// through the Store.
	Connections func(ctx context.Context, fn func([]pubsub.Connection) error) (awsops.ConnectionsRead, error)

	// The drift of the tables and of the queues, compared once.
	tables, queues *driftResult
}

// TableReadAPI and QueueReadAPI are what the drift check and the stack
// tag check read; *dynamodb.Client and *sqs.Client satisfy them.
type (
	TableReadAPI interface {
		awsops.DriftTableAPI
		awsops.StackTagTableAPI
	}
	QueueReadAPI interface {
		awsops.DriftQueueAPI
		awsops.StackTagQueueAPI
	}
)

// Identity is who the AWS credentials belong to.
type Identity struct {
	Account string
	ARN     string
}

// driftResult is what CheckDrift found for one kind of resource.
type driftResult struct {
	drifts []awsops.Drift
	err    error
}

// CallerIdentityAPI is the part of the STS client the identity check
// calls; *sts.Client satisfies it.
type CallerIdentityAPI interface {
	GetCallerIdentity(ctx context.Context, params *sts.GetCallerIdentityInput, optFns ...func(*sts.Options)) (*sts.GetCallerIdentityOutput, error)
}

var _ CallerIdentityAPI = (*sts.Client)(nil)

// STSIdentity returns an Identity function on api.
func STSIdentity(api CallerIdentityAPI) func(context.Context) (Identity, error) {
	return func(ctx context.Context) (Identity, error) {
		out, err := api.GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{})
		if err != nil {
			return Identity{}, awsops.Explain(err)
		}
		return Identity{Account: aws.ToString(out.Account), ARN: aws.ToString(out.Arn)}, nil
	}
}

// endpointOverride reports whether DynamoDB or SQS calls go somewhere
// other than AWS (an emulator or a proxy).
func endpointOverride(a config.AWS) bool {
	return a.EndpointURL != "" || a.DynamoDBEndpointURL != "" || a.SQSEndpointURL != ""
}

// newAWSEnv builds the AWS checks' view of an opened AWS backend.
func newAWSEnv(b *backend.Backend) *AWSEnv {
	a := b.Config.AWS
	e := &AWSEnv{
		Credentials: b.AWS.Credentials,
		DB:          awsops.NewDynamoDB(*b.AWS, a.DynamoDBEndpoint()),
		SQS:         awsops.NewSQS(*b.AWS, a.SQSEndpoint()),
		Tables:      awsops.TablesFor(a.Stack),
		Queues:      awsops.QueuesFor(a.Stack),
	}
	if b.Dynamo != nil {
		e.Tables = b.Dynamo.Tables()
		e.Migration = func(ctx context.Context) (awsops.PendingMigration, error) {
			return b.Dynamo.PendingMigration(ctx, MigrationReadLimit)
		}
		e.Connections = func(ctx context.Context, fn func([]pubsub.Connection) error) (awsops.ConnectionsRead, error) {
			return b.Dynamo.ReadConnections(ctx, ConnectionsReadLimit, fn)
		}
	}
	if b.SQS != nil {
		e.Queues = b.SQS.Queues()
	}
	if !endpointOverride(a) {
		e.Identity = STSIdentity(sts.NewFromConfig(*b.AWS))
	}
	if cp, err := awsops.StackControlPlane(*b.AWS, a); cp != nil && err == nil {
		e.Deployed = DeployedCheck(cp, a.Stack, b.AWS.Region, a.CallbackURL, func() awsops.QueueSettings { return e.Settings })
	}
	return e
}

// DeployedCheck returns the Deployed function of AWSEnv for the stack on
// cp: a dry run of deploy, with the stage taken from the callback URL
// (default "prod") and the function timeout from the broker timeout; the
// settings doctor cannot know (architecture, throttling, concurrency,
// limits) are taken as deployed.
func DeployedCheck(cp *awsops.ControlPlane, stack, region, callback string, settings func() awsops.QueueSettings) func(context.Context) (awsops.DeployResult, error) {
	return func(ctx context.Context) (awsops.DeployResult, error) {
		stage := ""
		if u, err := url.Parse(callback); err == nil && callback != "" {
			stage = path.Base(strings.TrimSuffix(u.Path, "/"))
			if stage == "/" || stage == "." {
				stage = ""
			}
		}
		d := &awsops.Deployer{CP: cp, Spec: awsops.DeploySpec{Stack: stack, Region: region, Stage: stage, Timeout: settings().BrokerTimeout, AcceptSettings: true}}
		return d.Deploy(ctx, true)
	}
}

// tableDrift compares the tables (once), with their stack tags.
func (e *AWSEnv) tableDrift(ctx context.Context) ([]awsops.Drift, error) {
	if e.tables == nil {
		d, err := awsops.CheckDrift(ctx, e.DB, noQueues{}, e.Tables, e.Queues, e.Settings)
		if err == nil {
			var tags []awsops.Drift
			tags, err = awsops.CheckStackTags(ctx, e.DB, nil, e.Tables, awsops.Queues{})
			d = append(d, tags...)
		}
		e.tables = &driftResult{drifts: only(d, awsops.KindTable), err: err}
	}
	return e.tables.drifts, e.tables.err
}

// queueDrift compares the queues (once), with their stack tags.
func (e *AWSEnv) queueDrift(ctx context.Context) ([]awsops.Drift, error) {
	if e.queues == nil {
		d, err := awsops.CheckDrift(ctx, noTables{}, e.SQS, e.Tables, e.Queues, e.Settings)
		if err == nil {
			var tags []awsops.Drift
			tags, err = awsops.CheckStackTags(ctx, nil, e.SQS, awsops.Tables{}, e.Queues)
			d = append(d, tags...)
		}
		e.queues = &driftResult{drifts: only(d, awsops.KindQueue), err: err}
	}
	return e.queues.drifts, e.queues.err
}

func only(drifts []awsops.Drift, kind string) []awsops.Drift {
	var out []awsops.Drift
	for _, d := range drifts {
		if d.Kind == kind {
			out = append(out, d)
		}
	}
	return out
}

// noQueues and noTables answer as if nothing existed, so that CheckDrift
// compares the tables and the queues separately: a DynamoDB endpoint that
// cannot be reached then does not hide the state of the queues, nor the
// other way round.
type (
	noQueues struct{}
	noTables struct{}
)

func (noQueues) GetQueueUrl(context.Context, *sqs.GetQueueUrlInput, ...func(*sqs.Options)) (*sqs.GetQueueUrlOutput, error) {
	return nil, &sqstypes.QueueDoesNotExist{}
}

func (noQueues) GetQueueAttributes(context.Context, *sqs.GetQueueAttributesInput, ...func(*sqs.Options)) (*sqs.GetQueueAttributesOutput, error) {
	return nil, &sqstypes.QueueDoesNotExist{}
}

func (noTables) DescribeTable(context.Context, *dynamodb.DescribeTableInput, ...func(*dynamodb.Options)) (*dynamodb.DescribeTableOutput, error) {
	return nil, &dynamotypes.ResourceNotFoundException{}
}

func (noTables) DescribeTimeToLive(context.Context, *dynamodb.DescribeTimeToLiveInput, ...func(*dynamodb.Options)) (*dynamodb.DescribeTimeToLiveOutput, error) {
	return nil, &dynamotypes.ResourceNotFoundException{}
}
