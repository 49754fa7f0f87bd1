//go:build !socks.lambdaonly

package awsops

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/arn"
	"github.com/aws/aws-sdk-go-v2/service/apigatewayv2"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatchlogs"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/sts"

	"github.com/socks-dev/socks/config"
	"github.com/socks-dev/socks/internal/text"
)

// The control-plane clients `socks deploy` calls, each narrowed to exactly
// the SDK methods used (tests and fakes implement only these).

// DeployIAMAPI is the part of the IAM client deploy calls.
type DeployIAMAPI interface {
	GetRole(ctx context.Context, params *iam.GetRoleInput, optFns ...func(*iam.Options)) (*iam.GetRoleOutput, error)
	CreateRole(ctx context.Context, params *iam.CreateRoleInput, optFns ...func(*iam.Options)) (*iam.CreateRoleOutput, error)
	DeleteRole(ctx context.Context, params *iam.DeleteRoleInput, optFns ...func(*iam.Options)) (*iam.DeleteRoleOutput, error)
	GetRolePolicy(ctx context.Context, params *iam.GetRolePolicyInput, optFns ...func(*iam.Options)) (*iam.GetRolePolicyOutput, error)
	PutRolePolicy(ctx context.Context, params *iam.PutRolePolicyInput, optFns ...func(*iam.Options)) (*iam.PutRolePolicyOutput, error)
	DeleteRolePolicy(ctx context.Context, params *iam.DeleteRolePolicyInput, optFns ...func(*iam.Options)) (*iam.DeleteRolePolicyOutput, error)
	ListRolePolicies(ctx context.Context, params *iam.ListRolePoliciesInput, optFns ...func(*iam.Options)) (*iam.ListRolePoliciesOutput, error)
	ListAttachedRolePolicies(ctx context.Context, params *iam.ListAttachedRolePoliciesInput, optFns ...func(*iam.Options)) (*iam.ListAttachedRolePoliciesOutput, error)
	DetachRolePolicy(ctx context.Context, params *iam.DetachRolePolicyInput, optFns ...func(*iam.Options)) (*iam.DetachRolePolicyOutput, error)
	UpdateAssumeRolePolicy(ctx context.Context, params *iam.UpdateAssumeRolePolicyInput, optFns ...func(*iam.Options)) (*iam.UpdateAssumeRolePolicyOutput, error)
}

// DeployLambdaAPI is the part of the Lambda client deploy calls.
type DeployLambdaAPI interface {
	GetFunction(ctx context.Context, params *lambda.GetFunctionInput, optFns ...func(*lambda.Options)) (*lambda.GetFunctionOutput, error)
	CreateFunction(ctx context.Context, params *lambda.CreateFunctionInput, optFns ...func(*lambda.Options)) (*lambda.CreateFunctionOutput, error)
	UpdateFunctionCode(ctx context.Context, params *lambda.UpdateFunctionCodeInput, optFns ...func(*lambda.Options)) (*lambda.UpdateFunctionCodeOutput, error)
	UpdateFunctionConfiguration(ctx context.Context, params *lambda.UpdateFunctionConfigurationInput, optFns ...func(*lambda.Options)) (*lambda.UpdateFunctionConfigurationOutput, error)
	DeleteFunction(ctx context.Context, params *lambda.DeleteFunctionInput, optFns ...func(*lambda.Options)) (*lambda.DeleteFunctionOutput, error)
	GetPolicy(ctx context.Context, params *lambda.GetPolicyInput, optFns ...func(*lambda.Options)) (*lambda.GetPolicyOutput, error)
	AddPermission(ctx context.Context, params *lambda.AddPermissionInput, optFns ...func(*lambda.Options)) (*lambda.AddPermissionOutput, error)
	RemovePermission(ctx context.Context, params *lambda.RemovePermissionInput, optFns ...func(*lambda.Options)) (*lambda.RemovePermissionOutput, error)
	ListEventSourceMappings(ctx context.Context, params *lambda.ListEventSourceMappingsInput, optFns ...func(*lambda.Options)) (*lambda.ListEventSourceMappingsOutput, error)
	CreateEventSourceMapping(ctx context.Context, params *lambda.CreateEventSourceMappingInput, optFns ...func(*lambda.Options)) (*lambda.CreateEventSourceMappingOutput, error)
	UpdateEventSourceMapping(ctx context.Context, params *lambda.UpdateEventSourceMappingInput, optFns ...func(*lambda.Options)) (*lambda.UpdateEventSourceMappingOutput, error)
	DeleteEventSourceMapping(ctx context.Context, params *lambda.DeleteEventSourceMappingInput, optFns ...func(*lambda.Options)) (*lambda.DeleteEventSourceMappingOutput, error)
}

// DeployAPIGatewayAPI is the part of the API Gateway v2 client deploy calls.
type DeployAPIGatewayAPI interface {
	GetApis(ctx context.Context, params *apigatewayv2.GetApisInput, optFns ...func(*apigatewayv2.Options)) (*apigatewayv2.GetApisOutput, error)
	CreateApi(ctx context.Context, params *apigatewayv2.CreateApiInput, optFns ...func(*apigatewayv2.Options)) (*apigatewayv2.CreateApiOutput, error)
	UpdateApi(ctx context.Context, params *apigatewayv2.UpdateApiInput, optFns ...func(*apigatewayv2.Options)) (*apigatewayv2.UpdateApiOutput, error)
	DeleteApi(ctx context.Context, params *apigatewayv2.DeleteApiInput, optFns ...func(*apigatewayv2.Options)) (*apigatewayv2.DeleteApiOutput, error)
	GetIntegrations(ctx context.Context, params *apigatewayv2.GetIntegrationsInput, optFns ...func(*apigatewayv2.Options)) (*apigatewayv2.GetIntegrationsOutput, error)
	CreateIntegration(ctx context.Context, params *apigatewayv2.CreateIntegrationInput, optFns ...func(*apigatewayv2.Options)) (*apigatewayv2.CreateIntegrationOutput, error)
	UpdateIntegration(ctx context.Context, params *apigatewayv2.UpdateIntegrationInput, optFns ...func(*apigatewayv2.Options)) (*apigatewayv2.UpdateIntegrationOutput, error)
	GetRoutes(ctx context.Context, params *apigatewayv2.GetRoutesInput, optFns ...func(*apigatewayv2.Options)) (*apigatewayv2.GetRoutesOutput, error)
	CreateRoute(ctx context.Context, params *apigatewayv2.CreateRouteInput, optFns ...func(*apigatewayv2.Options)) (*apigatewayv2.CreateRouteOutput, error)
	UpdateRoute(ctx context.Context, params *apigatewayv2.UpdateRouteInput, optFns ...func(*apigatewayv2.Options)) (*apigatewayv2.UpdateRouteOutput, error)
	DeleteRoute(ctx context.Context, params *apigatewayv2.DeleteRouteInput, optFns ...func(*apigatewayv2.Options)) (*apigatewayv2.DeleteRouteOutput, error)
	GetRouteResponses(ctx context.Context, params *apigatewayv2.GetRouteResponsesInput, optFns ...func(*apigatewayv2.Options)) (*apigatewayv2.GetRouteResponsesOutput, error)
	CreateRouteResponse(ctx context.Context, params *apigatewayv2.CreateRouteResponseInput, optFns ...func(*apigatewayv2.Options)) (*apigatewayv2.CreateRouteResponseOutput, error)
	GetStage(ctx context.Context, params *apigatewayv2.GetStageInput, optFns ...func(*apigatewayv2.Options)) (*apigatewayv2.GetStageOutput, error)
	CreateStage(ctx context.Context, params *apigatewayv2.CreateStageInput, optFns ...func(*apigatewayv2.Options)) (*apigatewayv2.CreateStageOutput, error)
	UpdateStage(ctx context.Context, params *apigatewayv2.UpdateStageInput, optFns ...func(*apigatewayv2.Options)) (*apigatewayv2.UpdateStageOutput, error)
	GetStages(ctx context.Context, params *apigatewayv2.GetStagesInput, optFns ...func(*apigatewayv2.Options)) (*apigatewayv2.GetStagesOutput, error)
	DeleteStage(ctx context.Context, params *apigatewayv2.DeleteStageInput, optFns ...func(*apigatewayv2.Options)) (*apigatewayv2.DeleteStageOutput, error)
}

// DeployLogsAPI is the part of the CloudWatch Logs client deploy calls.
type DeployLogsAPI interface {
	DescribeLogGroups(ctx context.Context, params *cloudwatchlogs.DescribeLogGroupsInput, optFns ...func(*cloudwatchlogs.Options)) (*cloudwatchlogs.DescribeLogGroupsOutput, error)
	CreateLogGroup(ctx context.Context, params *cloudwatchlogs.CreateLogGroupInput, optFns ...func(*cloudwatchlogs.Options)) (*cloudwatchlogs.CreateLogGroupOutput, error)
	DeleteLogGroup(ctx context.Context, params *cloudwatchlogs.DeleteLogGroupInput, optFns ...func(*cloudwatchlogs.Options)) (*cloudwatchlogs.DeleteLogGroupOutput, error)
	ListTagsForResource(ctx context.Context, params *cloudwatchlogs.ListTagsForResourceInput, optFns ...func(*cloudwatchlogs.Options)) (*cloudwatchlogs.ListTagsForResourceOutput, error)
}

// DeploySTSAPI is the part of the STS client deploy calls.
type DeploySTSAPI interface {
	GetCallerIdentity(ctx context.Context, params *sts.GetCallerIdentityInput, optFns ...func(*sts.Options)) (*sts.GetCallerIdentityOutput, error)
}

var (
	_ DeployIAMAPI        = (*iam.Client)(nil)
	_ DeployLambdaAPI     = (*lambda.Client)(nil)
	_ DeployAPIGatewayAPI = (*apigatewayv2.Client)(nil)
	_ DeployLogsAPI       = (*cloudwatchlogs.Client)(nil)
	_ DeploySTSAPI        = (*sts.Client)(nil)
)

// ControlPlane holds the clients of every service deploy and teardown call.
type ControlPlane struct {
	IAM    DeployIAMAPI
	Lambda DeployLambdaAPI
	APIGW  DeployAPIGatewayAPI
	Logs   DeployLogsAPI
	STS    DeploySTSAPI
	DB     TableAdminAPI
	SQS    QueueAdminAPI
	// Data reads and writes the tables' items, for the migration of the
	// connections table (DynamoStore.MigrateGeekItems); nil skips it.
	Data DynamoDBAPI
	// Events and SNS set up the producers of DeploySpec.Producers.
	Events EventsAPI
	SNS    TopicsAPI

	// endpoints are where the calls of each service go (NewControlPlane).
	endpoints []ServiceEndpoint
}

// Endpoints point the clients of NewControlPlane somewhere other than AWS:
// All for every service (moto serves them all on one port), DynamoDB and
// SQS for one service each. The SDK's own AWS_ENDPOINT_URL_<SERVICE>
// variable beats both for its service.
type Endpoints struct {
	All, DynamoDB, SQS string
}

// serviceEndpoint is the endpoint override for the service whose SDK
// environment name is id (for example "IAM", "API_GATEWAY_V2"): "" when
// AWS_ENDPOINT_URL_<id> is set (the SDK then uses it), else perService,
// else all.
func serviceEndpoint(id, perService, all string) string {
	if os.Getenv("AWS_ENDPOINT_URL_"+id) != "" {
		return ""
	}
	if perService != "" {
		return perService
	}
	return all
}

// NewControlPlane returns the clients of every service socks deploys to,
// on cfg, sent to the endpoints e (empty: AWS's own). CheckEndpoints says
// whether some of them go to an emulator and others to AWS itself. Each
// attempt of every client is bounded (see DefaultAttemptTimeout and
// WithAttemptTimeout), a Lambda one with the time to upload its body on
// top (minUploadRate), so that a control plane that accepts a request and
// never answers fails deploy, teardown and provision instead of hanging
// them.
func NewControlPlane(cfg aws.Config, e Endpoints, opts ...ClientOption) *ControlPlane {
	c := resolveClientOptions(opts)
	base := func(id string) *string {
		if u := serviceEndpoint(id, "", e.All); u != "" {
			return aws.String(u)
		}
		return nil
	}
	iamc := iam.NewFromConfig(cfg, func(o *iam.Options) {
		o.APIOptions = append(slices.Clip(o.APIOptions), addAttemptTimeout(c.attemptTimeout, 0))
		if b := base("IAM"); b != nil {
			o.BaseEndpoint = b
		}
	})
	lambdac := lambda.NewFromConfig(cfg, func(o *lambda.Options) {
		o.APIOptions = append(slices.Clip(o.APIOptions), addAttemptTimeout(c.attemptTimeout, minUploadRate))
		if b := base("LAMBDA"); b != nil {
			o.BaseEndpoint = b
		}
	})
	apigwc := apigatewayv2.NewFromConfig(cfg, func(o *apigatewayv2.Options) {
		o.APIOptions = append(slices.Clip(o.APIOptions), addAttemptTimeout(c.attemptTimeout, 0))
		if b := base("APIGATEWAYV2"); b != nil {
			o.BaseEndpoint = b
		}
	})
	logsc := cloudwatchlogs.NewFromConfig(cfg, func(o *cloudwatchlogs.Options) {
		o.APIOptions = append(slices.Clip(o.APIOptions), addAttemptTimeout(c.attemptTimeout, 0))
		if b := base("CLOUDWATCH_LOGS"); b != nil {
			o.BaseEndpoint = b
		}
	})
	stsc := sts.NewFromConfig(cfg, func(o *sts.Options) {
		o.APIOptions = append(slices.Clip(o.APIOptions), addAttemptTimeout(c.attemptTimeout, 0))
		if b := base("STS"); b != nil {
			o.BaseEndpoint = b
		}
	})
	db := NewDynamoDB(cfg, serviceEndpoint("DYNAMODB", e.DynamoDB, e.All), opts...)
	sq := NewSQS(cfg, serviceEndpoint("SQS", e.SQS, e.All), opts...)
	ev := NewEventBridge(cfg, serviceEndpoint("EVENTBRIDGE", "", e.All), opts...)
	sn := NewSNS(cfg, serviceEndpoint("SNS", "", e.All), opts...)
	// Where each client's calls go in the end (the SDK's own
	// AWS_ENDPOINT_URL_<SERVICE> and AWS_ENDPOINT_URL included).
	at := func(u *string) string { return aws.ToString(u) }
	return &ControlPlane{
		IAM: iamc, Lambda: lambdac, APIGW: apigwc, Logs: logsc, STS: stsc,
		DB: QuietNotFound(db), Data: db, SQS: sq, Events: ev, SNS: sn,
		endpoints: []ServiceEndpoint{
			{"DynamoDB", at(db.Options().BaseEndpoint)},
			{"SQS", at(sq.Options().BaseEndpoint)},
			{"STS", at(stsc.Options().BaseEndpoint)},
			{"IAM", at(iamc.Options().BaseEndpoint)},
			{"Lambda", at(lambdac.Options().BaseEndpoint)},
			{"API Gateway", at(apigwc.Options().BaseEndpoint)},
			{"CloudWatch Logs", at(logsc.Options().BaseEndpoint)},
			{"EventBridge", at(ev.Options().BaseEndpoint)},
			{"SNS", at(sn.Options().BaseEndpoint)},
		},
	}
}

// QueueARN is the ARN that the SQS queue called name has, or had, in
// region, in the account of cp's credentials (STS GetCallerIdentity):
// what a queue that is gone can still be found by, as the endpoint of its
// SNS subscriptions. Its partition is the credentials' (callerPartition).
func (cp *ControlPlane) QueueARN(ctx context.Context, region, name string) (string, error) {
	id, err := cp.STS.GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{})
	if err != nil {
		return "", fmt.Errorf("finding the AWS account: %w", Explain(err))
	}
	return fmt.Sprintf("arn:%s:sqs:%s:%s:%s", callerPartition(id, region), region, aws.ToString(id.Account), name), nil
}

// ServiceEndpoint is where the calls of one service go: URL is the
// endpoint override in effect, "" for AWS itself.
type ServiceEndpoint struct {
	Service, URL string
}

// CheckEndpoints refuses a control plane whose calls would go partly to
// an emulator on this machine and partly to AWS itself (see
// RefuseHalfEmulated). Nothing has been called when it says so.
// StackControlPlane returns the control plane of the stack whose settings
// are a, on cfg, at a.EndpointURL; none (nil, nil) when its data plane is
// on emulators of its own (a.DynamoDBEndpointURL or a.SQSEndpointURL):
// the function, API and role are looked for only where DynamoDB and SQS
// are too, so teardown and doctor then leave the control plane alone, and
// deploy refuses to run (docs/deploy.md, "Against the emulators"). The
// error is CheckEndpoints'.
func StackControlPlane(cfg aws.Config, a config.AWS) (*ControlPlane, error) {
	if a.DynamoDBEndpointURL != "" || a.SQSEndpointURL != "" {
		return nil, nil
	}
	cp := NewControlPlane(cfg, Endpoints{All: a.EndpointURL})
	if err := cp.CheckEndpoints(); err != nil {
		return nil, err
	}
	return cp, nil
}

func (cp *ControlPlane) CheckEndpoints() error {
	return RefuseHalfEmulated(cp.endpoints)
}

// RefuseHalfEmulated refuses services of which some go to an emulator on
// this machine and others to AWS itself: one endpoint setting forgotten
// (--endpoint-url beside --dynamodb-endpoint-url and --sqs-endpoint-url,
// say), and a test meant for emulators would make or delete real
// resources in the account of the credentials.
func RefuseHalfEmulated(eps []ServiceEndpoint) error {
	var local, remote []string
	at := ""
	for _, e := range eps {
		switch {
		case e.URL == "":
			remote = append(remote, e.Service)
		case OnThisMachine(e.URL):
			local = append(local, e.Service)
			if at == "" {
				at = e.URL
			}
		}
	}
	if len(local) == 0 || len(remote) == 0 {
		return nil
	}
	return fmt.Errorf("%s calls go to %s on this machine, but %s calls would go to AWS itself: point them all at emulators (--endpoint-url; moto serves every one of them), or none",
		text.And(local), at, text.And(remote))
}

// callerPartition is the ARN partition of the credentials STS described
// in id (aws, aws-cn, aws-us-gov, aws-eusc, aws-iso, ...), which every ARN
// of their account shares; partition(region) when id has no ARN that
// says (an emulator).
func callerPartition(id *sts.GetCallerIdentityOutput, region string) string {
	if a, err := arn.Parse(aws.ToString(id.Arn)); err == nil && a.Partition != "" {
		return a.Partition
	}
	return partition(region)
}

// partition is the ARN partition of region, as far as its name tells.
func partition(region string) string {
	switch {
	case strings.HasPrefix(region, "cn-"):
		return "aws-cn"
	case strings.HasPrefix(region, "us-gov-"):
		return "aws-us-gov"
	}
	return "aws"
}
