//go:build !socks.lambdaonly

package awsops

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/service/apigatewayv2"
	apitypes "github.com/aws/aws-sdk-go-v2/service/apigatewayv2/types"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatchlogs"
	logtypes "github.com/aws/aws-sdk-go-v2/service/cloudwatchlogs/types"
	dynamotypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	iamtypes "github.com/aws/aws-sdk-go-v2/service/iam/types"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	lambdatypes "github.com/aws/aws-sdk-go-v2/service/lambda/types"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"

	"github.com/socks-dev/socks/config"
	"github.com/socks-dev/socks/internal/backoff"
	"github.com/socks-dev/socks/pubsub"
	"github.com/socks-dev/socks/routes"
)

// What `socks deploy` stands up, the same as docs/template.yaml declares
// (TestTemplateAndDeployAgree keeps the two in step).
const (
	DeployRuntime  = "provided.al2023"
	DeployHandler  = "bootstrap"
	DeployMemoryMB = 256
	// DeployRouteSelection picks the route from the frame's "action".
	DeployRouteSelection = "$request.body.action"
	// DeployBatchSize and DeployBatchWindow shape the SQS event source.
	DeployBatchSize   = 10
	DeployBatchWindow = 0
	// DeployPolicyName is the role's one inline policy.
	DeployPolicyName = "socks"
	// DeployPermissionID is the Sid of the function's permission for the API.
	DeployPermissionID = "socks-apigateway"
	// Defaults of the settable parts.
	DefaultDeployStage          = "prod"
	DefaultDeployArch           = "arm64"
	DefaultThrottlingBurstLimit = 500
	DefaultThrottlingRateLimit  = 1000
	DefaultMaximumConcurrency   = 10
	// reportBatchItemFailures lets the function fail single records.
	reportBatchItemFailures = "ReportBatchItemFailures"
)

// DeployRoutes are the WebSocket API's routes. TwoWay routes answer the
// client: they have a $default route response.
var DeployRoutes = []struct {
	Key    string
	TwoWay bool
}{
	{"$connect", false},
	{"$disconnect", false},
	{"$default", true},
	{"subscribe", true},
	{"unsubscribe", true},
	{"ping", true},
}

// DeploySpec is what deploy makes for one stack.
type DeploySpec struct {
	Stack  string
	Region string
	// Stage is the API stage (default "prod").
	Stage string
	// Arch is "arm64" or "x86_64".
	Arch string
	// Timeout is the function timeout (default DefaultBrokerTimeout); the
	// queue's visibility timeout is six times it.
	Timeout time.Duration
	// Zip is the function's deployment package (bootstrap at its root).
	// Nil on a dry run that has none: the code is then not compared.
	Zip []byte
	// ThrottlingBurstLimit and ThrottlingRateLimit are the stage's
	// default route throttling.
	ThrottlingBurstLimit int32
	ThrottlingRateLimit  float64
	// MaximumConcurrency bounds the broker invocations the SQS event source
	// starts.
	MaximumConcurrency int32
	// Wait bounds the wait for new tables and for the new role.
	Wait time.Duration
	// Producers are the EventBridge rule and SNS topics that deliver to
	// the envelopes queue (none when empty).
	Producers Producers
	// EventMapping, when not empty, is the event mapping (JSON) the
	// function reads from SOCKS_EVENT_MAPPING.
	EventMapping string
	// MaxTopics and MaxConnectionsPerGeek are the function's limits
	// (SOCKS_MAX_TOPICS, SOCKS_MAX_CONNECTIONS_PER_GEEK; 0: the defaults).
	MaxTopics             int
	MaxConnectionsPerGeek int
	// AcceptSettings, on a check by someone who does not know the flags
	// deploy was given (doctor), takes the settable parts as deployed:
	// the architecture, the throttling, the maximum concurrency and the
	// function's limits are then not drift.
	AcceptSettings bool
}

func (s DeploySpec) withDefaults() DeploySpec {
	if s.Stage == "" {
		s.Stage = DefaultDeployStage
	}
	if s.Arch == "" {
		s.Arch = DefaultDeployArch
	}
	if s.Timeout <= 0 {
		s.Timeout = DefaultBrokerTimeout
	}
	if s.ThrottlingBurstLimit <= 0 {
		s.ThrottlingBurstLimit = DefaultThrottlingBurstLimit
	}
	if s.ThrottlingRateLimit <= 0 {
		s.ThrottlingRateLimit = DefaultThrottlingRateLimit
	}
	if s.MaximumConcurrency <= 0 {
		s.MaximumConcurrency = DefaultMaximumConcurrency
	}
	if s.Wait <= 0 {
		s.Wait = DefaultCreateWait
	}
	if s.MaxTopics <= 0 {
		s.MaxTopics = pubsub.MaxTopicsPerConnection
	}
	if s.MaxConnectionsPerGeek <= 0 {
		s.MaxConnectionsPerGeek = routes.DefaultMaxConnectionsPerGeek
	}
	return s
}

// Names of the stack's control-plane resources.
func (s DeploySpec) FunctionName() string { return s.Stack + "-socks" }
func (s DeploySpec) RoleName() string     { return s.Stack + "-socks-function" }
func (s DeploySpec) APIName() string      { return s.Stack + "-websocket" }
func (s DeploySpec) LogGroupName() string { return "/aws/lambda/" + s.FunctionName() }

// Actions of a planned step.
const (
	ActionNone   = "ok"
	ActionCreate = "create"
	ActionUpdate = "update"
	ActionDelete = "delete"
)

// DeployStep is one resource in a plan: what it is, what deploy does
// to it, and why (the drift found, "is ...; want ...").
type DeployStep struct {
	Kind   string   `json:"kind"`
	Name   string   `json:"name"`
	Action string   `json:"action"`
	Drift  []string `json:"drift,omitempty"`

	// id is the resource's own ID where its name is not enough to find
	// it (an API), for Undeploy.
	id string
}

func (s DeployStep) String() string { return s.Kind + " " + s.Name }

// DeployResult is the outcome of Deploy.
type DeployResult struct {
	Stack        string       `json:"stack"`
	Region       string       `json:"region"`
	DryRun       bool         `json:"dryRun"`
	Steps        []DeployStep `json:"steps"`
	APIID        string       `json:"apiId,omitempty"`
	WebSocketURL string       `json:"websocketUrl,omitempty"`
	CallbackURL  string       `json:"callbackUrl,omitempty"`
	FunctionARN  string       `json:"functionArn,omitempty"`
	QueueURL     string       `json:"queueUrl,omitempty"`
	// Migrated counts the geek items added, brought up to date or deleted
	// in an existing connections table (DynamoStore.MigrateGeekItems),
	// after the function was updated; with a dry run, those to be.
	Migrated int `json:"migrated"`
}

// Changed reports whether any step creates, updates or deletes something,
// or the connections table is migrated.
func (r DeployResult) Changed() bool {
	if r.Migrated > 0 {
		return true
	}
	for _, s := range r.Steps {
		if s.Action != ActionNone {
			return true
		}
	}
	return false
}

// Deployer plans and applies a stack on a control plane.
type Deployer struct {
	CP   *ControlPlane
	Spec DeploySpec
	// Progress, when set, is told of each step when it is checked (Action
	// known) and, unless a dry run, again when it is done.
	Progress func(step DeployStep, done bool)
	// Sleep waits between the retries of CreateFunction (default a timer).
	Sleep func(context.Context, time.Duration) error

	st deployState
}

// deployState is what the steps learn as they go.
type deployState struct {
	account     string
	part        string
	apiID       string
	apiEndpoint string
	roleARN     string
	functionARN string
	integration string
	queueARN    string
	queueURL    string
	// unconfirmed are the queue's subscriptions pending confirmation
	// that the producers step found (UnconfirmedError).
	unconfirmed []Drift
	tables      Tables
	queues      Queues
	// conflicts are the drifts of the tables that deploy cannot put
	// right (a key, an index, a status): applyData stops on them.
	conflicts []Drift
	// tagRepairs are the tables and queues socks made before it tagged
	// stacks: applyData tags them.
	tagRepairs []Drift
	// foreignPermissions are the Sids of the function's policy that are
	// not deploy's; permissionWrong says deploy's own says something else.
	foreignPermissions []string
	permissionWrong    bool
	// otherStages are the API's stages besides Spec.Stage; stageDrift
	// says that the stage's own settings differ.
	otherStages []string
	stageDrift  bool
}

// deployStepDef is one resource of the stack: check finds it (through its
// tagged parent when it cannot carry tags) and says what to do; apply does
// it. Later steps may use what earlier ones found. New kinds of resources
// are added to the list in steps.
type deployStepDef struct {
	kind  string
	name  func() string
	check func(ctx context.Context) (action string, drift []string, err error)
	apply func(ctx context.Context, action string) error
}

func (d *Deployer) steps() []deployStepDef {
	s := d.Spec
	steps := []deployStepDef{
		{"tables and queues", func() string { return s.Stack + "-*" }, d.checkData, d.applyData},
		{"log group", s.LogGroupName, d.checkLogGroup, d.applyLogGroup},
		{"websocket api", s.APIName, d.checkAPI, d.applyAPI},
		{"role", s.RoleName, d.checkRole, d.applyRole},
		{"role policy", func() string { return s.RoleName() + "/" + DeployPolicyName }, d.checkRolePolicy, d.applyRolePolicy},
		{"function", s.FunctionName, d.checkFunction, d.applyFunction},
		{"integration", func() string { return s.APIName() + " lambda proxy" }, d.checkIntegration, d.applyIntegration},
		{"routes", func() string { return s.APIName() + " routes" }, d.checkRoutes, d.applyRoutes},
		{"stage", func() string { return s.APIName() + "/" + s.Stage }, d.checkStage, d.applyStage},
		{"permission", func() string { return s.FunctionName() + "/" + DeployPermissionID }, d.checkPermission, d.applyPermission},
		{"event source mapping", func() string { return s.Queues().Main + " -> " + s.FunctionName() }, d.checkMapping, d.applyMapping},
	}
	if !s.Producers.Empty() {
		steps = append(steps, deployStepDef{"producers", s.producersName, d.checkProducers, d.applyProducers})
	}
	return steps
}

// Queues and Tables name the stack's data-plane resources.
func (s DeploySpec) Queues() Queues { return QueuesFor(s.Stack) }
func (s DeploySpec) Tables() Tables { return TablesFor(s.Stack) }

// Deploy checks every resource of the stack in order and, unless dryRun,
// creates or updates what is missing or drifted. A dry run changes
// nothing; resources that depend on a missing one are reported as to be
// created.
func (d *Deployer) Deploy(ctx context.Context, dryRun bool) (DeployResult, error) {
	d.Spec = d.Spec.withDefaults()
	if err := d.prepare(ctx); err != nil {
		return DeployResult{}, err
	}
	res := DeployResult{Stack: d.Spec.Stack, Region: d.Spec.Region, DryRun: dryRun, Steps: []DeployStep{}}
	for _, def := range d.steps() {
		action, drift, err := def.check(ctx)
		if err != nil {
			return res, fmt.Errorf("checking %s %s: %w", def.kind, def.name(), err)
		}
		step := DeployStep{Kind: def.kind, Name: def.name(), Action: action, Drift: drift}
		res.Steps = append(res.Steps, step)
		if d.Progress != nil {
			d.Progress(step, false)
		}
		if dryRun || action == ActionNone {
			continue
		}
		if err := d.applyStep(ctx, def, action, drift); err != nil {
			return res, fmt.Errorf("%s %s %s: %w", actionVerb(action), def.kind, def.name(), err)
		}
		if d.Progress != nil {
			d.Progress(step, true)
		}
	}
	// The connections table is migrated after the function, so that the
	// earlier socks no longer writes the layout it migrates from
	// (docs/deploy.md, "Upgrading").
	n, err := d.migrate(ctx, dryRun)
	res.Migrated = n
	d.fillOutputs(&res)
	if err != nil && !dryRun {
		return res, &MigrationError{Stack: d.Spec.Stack, Err: err}
	}
	if err == nil && len(d.st.unconfirmed) > 0 {
		return res, &UnconfirmedError{Stack: d.Spec.Stack, Drift: d.st.unconfirmed, Planned: dryRun && res.Changed()}
	}
	return res, err
}

// conflictRereads bounds how often a step is read again after a create
// answered that what it makes exists: once per create at most (the routes
// step makes the most, six routes and their responses).
const conflictRereads = 16

// alreadyExistsCodes are AWS's answers to a create of what exists, by
// service: API Gateway, Lambda, IAM, CloudWatch Logs.
var alreadyExistsCodes = []string{"ConflictException", "ResourceConflictException", "EntityAlreadyExists", "ResourceAlreadyExistsException"}

// applyStep applies def, which its check found to need action for drift.
// A create answered that what it makes exists (the SDK retried a create
// the server had done, its answer lost in transit, or another deploy made
// it meanwhile) is not a failure: the step is read again, as the next
// deploy would, and finished from what is there. A read that finds the
// step as before the apply (the same action and drift) shows that the
// answer was no such create but a conflict the apply did not cause (an
// update in progress, a mapping that is another function's): it ends
// with that answer, not applied again.
//
// A create sent once (sendOnce) whose answer was a failure the SDK would
// have retried (UnansweredCreateError) is read again the same way after a
// backoff: what the server made all the same is taken, and only when the
// read finds nothing is it sent again, up to retry.DefaultMaxAttempts
// times in all, as the SDK would have.
//
// Stopped (Ctrl-C) after such a failure, while it waits, reads or sends
// again, it ends at once with that failure, which says what may have been
// made and what to run, where the cancellation would say nothing of it.
func (d *Deployer) applyStep(ctx context.Context, def deployStepDef, action string, drift []string) (err error) {
	var mayExist error // the last UnansweredCreateError
	defer func() {
		if err != nil && mayExist != nil && ctx.Err() != nil {
			err = mayExist
		}
	}()
	err = def.apply(ctx, action)
	sent := 1
	for tries := 0; err != nil && tries < conflictRereads; tries++ {
		var lost *UnansweredCreateError
		unanswered := errors.As(err, &lost)
		switch {
		case unanswered && sent >= retry.DefaultMaxAttempts:
			return err
		case unanswered:
			mayExist = err
			if serr := d.sleep(ctx, backoff.FullJitter(sent-1, time.Second, 20*time.Second)); serr != nil {
				return serr
			}
		case !isCode(err, alreadyExistsCodes...):
			return err
		}
		again, againDrift, cerr := def.check(ctx)
		if cerr != nil {
			return cerr
		}
		if again == ActionNone {
			return nil
		}
		if !unanswered && again == action && slices.Equal(againDrift, drift) {
			return err
		}
		if unanswered {
			sent++
		}
		action, drift = again, againDrift
		err = def.apply(ctx, action)
	}
	return err
}

// sendOnce turns the SDK's retries off for one call, but for throttling:
// a create whose resource has no name of its own that a second create
// would collide with (CreateApi, CreateIntegration), which the SDK's
// retryer would make twice when the server did the first attempt but its
// answer was lost (a 5xx, a reset connection, no answer in the attempt's
// bound); and the route creates (CreateRoute, CreateRouteResponse), whose
// key API Gateway keeps unique (a second create is a ConflictException,
// handled as such) but an emulator may not (moto made the route twice). Such a failure comes back as an UnansweredCreateError, and
// applyStep reads the step again before it creates anything more. A
// throttled attempt (429 TooManyRequestsException) is an answer saying
// that nothing was made: the SDK's retryer tries it again as it would
// any call, with its pauses and its bound on attempts.
func sendOnce(o *apigatewayv2.Options) { o.Retryer = throttlesOnly{o.Retryer} }

// throttlesOnly is a retryer that retries only the failures of its own
// retryer that are throttling (retry.DefaultThrottles).
type throttlesOnly struct{ aws.Retryer }

func (r throttlesOnly) IsErrorRetryable(err error) bool {
	return isThrottle(err) && r.Retryer.IsErrorRetryable(err)
}

func (r throttlesOnly) GetAttemptToken(ctx context.Context) (func(error) error, error) {
	if v2, ok := r.Retryer.(aws.RetryerV2); ok {
		return v2.GetAttemptToken(ctx)
	}
	return r.GetInitialToken(), nil
}

// UnansweredCreateError is the failure of a create sent once (sendOnce)
// that the SDK's retryer would have tried again: what it asked for may
// have been made all the same.
type UnansweredCreateError struct {
	Err error
}

func (e *UnansweredCreateError) Error() string {
	return e.Err.Error() + "; it may have been made all the same: run socks deploy again, which takes what is there (or socks teardown, which removes it)"
}

func (e *UnansweredCreateError) Unwrap() error { return e.Err }

// unansweredOr is err of a create sent once, explained, and an
// UnansweredCreateError when the SDK would have retried it: not a
// throttle, whose answer says nothing was made (and which sendOnce
// retried).
func unansweredOr(err error) error {
	if retry.IsErrorRetryables(retry.DefaultRetryables).IsErrorRetryable(err) == aws.TrueTernary && !isThrottle(err) {
		return &UnansweredCreateError{Err: Explain(err)}
	}
	return Explain(err)
}

// MigrationError is Deploy's error when every resource is in place but
// the migration of the connections table failed: the stack is deployed
// and serves (the result holds its URLs), and `socks provision`, or
// deploy again, finishes the migration.
type MigrationError struct {
	Stack string
	Err   error
}

func (e *MigrationError) Error() string {
	return fmt.Sprintf("stack %s is deployed, but %v; run `socks provision` (or `socks deploy` again) to finish the migration (docs/deploy.md, \"Upgrading\")", e.Stack, e.Err)
}

func (e *MigrationError) Unwrap() error { return e.Err }

// UnconfirmedError is Deploy's error when every resource is in place but
// SNS lists the queue's subscription to a topic as pending confirmation
// (AspectConfirmation: a topic of another account). Deploy cannot put
// that right: the queue's owner confirms it, with the Token of the
// message SNS sent to the queue (the broker dead-letters it with the
// command to run). The stack is deployed and serves (the result holds its
// URLs); nothing from that topic arrives until it is confirmed.
type UnconfirmedError struct {
	Stack string
	Drift []Drift
	// Planned: a dry run that would still change the stack, which is
	// then not said to be deployed.
	Planned bool
}

func (e *UnconfirmedError) Error() string {
	parts := make([]string, len(e.Drift))
	for i, d := range e.Drift {
		parts[i] = fmt.Sprintf("%s %s is %s: %s", d.Kind, d.Name, d.Is, d.Fix)
	}
	if e.Planned {
		return fmt.Sprintf("stack %s is not all in place yet (deploy would change what is shown), and %s", e.Stack, strings.Join(parts, "; "))
	}
	return fmt.Sprintf("stack %s is deployed, but %s", e.Stack, strings.Join(parts, "; "))
}

// Serves reports whether err, Deploy's, is one after which every resource
// is in place and the stack serves, the result holding its URLs: a
// MigrationError or an UnconfirmedError (of a dry run, with the plan: one
// that is Planned would still change the stack).
func Serves(err error) bool {
	var m *MigrationError
	var u *UnconfirmedError
	return errors.As(err, &m) || errors.As(err, &u)
}

// migrate runs DynamoStore.MigrateGeekItems on the connections table, if
// it exists.
func (d *Deployer) migrate(ctx context.Context, dryRun bool) (int, error) {
	if d.CP.Data == nil {
		return 0, nil
	}
	n, err := NewDynamoStore(d.CP.Data, d.Spec.Tables()).MigrateGeekItems(ctx, dryRun)
	var missing *dynamotypes.ResourceNotFoundException
	if dryRun && errors.As(err, &missing) {
		return 0, nil // a dry run on a stack whose tables are still to make
	}
	return n, err
}

func actionVerb(a string) string {
	switch a {
	case ActionCreate:
		return "creating"
	case ActionUpdate:
		return "updating"
	case ActionDelete:
		return "deleting"
	}
	return "checking"
}

func (d *Deployer) fillOutputs(res *DeployResult) {
	res.APIID = d.st.apiID
	res.FunctionARN = d.st.functionARN
	res.QueueURL = d.st.queueURL
	if d.st.apiID == "" {
		return
	}
	host := d.st.apiID + ".execute-api." + d.Spec.Region + ".amazonaws.com"
	if u, err := url.Parse(d.st.apiEndpoint); err == nil && u.Host != "" {
		host = u.Host
	}
	res.WebSocketURL = "wss://" + host + "/" + d.Spec.Stage
	res.CallbackURL = "https://" + host + "/" + d.Spec.Stage
}

// prepare learns the account (for ARNs) and validates the names.
func (d *Deployer) prepare(ctx context.Context) error {
	if d.Spec.Stack == "" || d.Spec.Region == "" {
		return errors.New("deploy needs a stack and a region")
	}
	if err := d.Spec.Tables().Validate(); err != nil {
		return err
	}
	if err := d.Spec.Queues().Validate(); err != nil {
		return err
	}
	if len(d.Spec.RoleName()) > 64 || len(d.Spec.FunctionName()) > 64 {
		longest := 64 - (len(d.Spec.RoleName()) - len(d.Spec.Stack))
		return fmt.Errorf("stack name %q is %d characters long, and IAM role names (%s) stop at 64: choose a --stack of at most %d", d.Spec.Stack, len(d.Spec.Stack), d.Spec.RoleName(), longest)
	}
	id, err := d.CP.STS.GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{})
	if err != nil {
		return fmt.Errorf("finding the AWS account: %w", Explain(err))
	}
	d.st = deployState{account: aws.ToString(id.Account), part: callerPartition(id, d.Spec.Region), tables: d.Spec.Tables(), queues: d.Spec.Queues()}
	return nil
}

func (d *Deployer) tags() map[string]string {
	return map[string]string{"app": "socks", TagStack: d.Spec.Stack}
}

func (d *Deployer) arn(service, resource string) string {
	return fmt.Sprintf("arn:%s:%s:%s:%s:%s", d.st.part, service, d.Spec.Region, d.st.account, resource)
}

// ---------------------------------------------------------------- data

func (d *Deployer) queueSettings() QueueSettings {
	return QueueSettings{BrokerTimeout: d.Spec.Timeout}
}

func (d *Deployer) checkData(ctx context.Context) (string, []string, error) {
	drifts, err := CheckDrift(ctx, d.CP.DB, d.CP.SQS, d.st.tables, d.st.queues, d.queueSettings())
	if err != nil {
		return "", nil, err
	}
	tagDrifts, err := CheckStackTags(ctx, d.CP.DB, d.CP.SQS, d.st.tables, d.st.queues)
	if err != nil {
		return "", nil, err
	}
	drifts = append(drifts, tagDrifts...)
	d.st.tagRepairs = Repairs(tagDrifts)
	action := ActionNone
	var out []string
	d.st.conflicts = nil
	for _, dr := range drifts {
		if dr.Missing() {
			if action == ActionNone {
				action = ActionCreate
			}
			out = append(out, fmt.Sprintf("%s %s is missing", dr.Kind, dr.Name))
			continue
		}
		action = ActionUpdate
		out = append(out, fmt.Sprintf("%s %s: %s is %s; want %s", dr.Kind, dr.Name, dr.Aspect, dr.Is, dr.Want))
		if dr.Kind == KindTable && dr.Aspect != AspectTTL && !dr.Repair() || dr.Aspect == AspectOtherStack {
			d.st.conflicts = append(d.st.conflicts, dr)
		}
	}
	// The queue's ARN, when it exists, whatever differs: the mapping and
	// the producers are found by it.
	d.learnQueues(ctx)
	return action, out, nil
}

// learnQueues reads the queue URL and ARNs of existing queues.
func (d *Deployer) learnQueues(ctx context.Context) {
	u, err := d.CP.SQS.GetQueueUrl(ctx, &sqs.GetQueueUrlInput{QueueName: aws.String(d.st.queues.Main)})
	if err != nil {
		return
	}
	d.st.queueURL = aws.ToString(u.QueueUrl)
	if arn, err := queueARNAt(ctx, d.CP.SQS, d.st.queueURL, d.st.queues.Main); err == nil {
		d.st.queueARN = arn
	}
}

func (d *Deployer) applyData(ctx context.Context, _ string) error {
	if len(d.st.conflicts) > 0 {
		// Tables cannot change their key or indexes in place: stop
		// before anything is made on top of them.
		var msgs []string
		for _, c := range d.st.conflicts {
			msgs = append(msgs, c.String())
		}
		return fmt.Errorf("deploy cannot put this right, so it changed nothing: %s", strings.Join(msgs, "; "))
	}
	if _, err := EnsureTables(ctx, d.CP.DB, d.st.tables, d.Spec.Wait); err != nil {
		return err
	}
	mainURL, _, err := EnsureQueues(ctx, d.CP.SQS, d.st.queues, d.queueSettings())
	if err != nil {
		return err
	}
	if _, err := ApplyStackTags(ctx, d.CP.DB, d.CP.SQS, d.st.tables, d.st.queues, d.st.tagRepairs); err != nil {
		return err
	}
	d.learnQueues(ctx)
	d.st.queueURL = mainURL
	return nil
}

// ---------------------------------------------------------------- log group

func (d *Deployer) checkLogGroup(ctx context.Context) (string, []string, error) {
	g, err := findLogGroup(ctx, d.CP.Logs, d.Spec.LogGroupName())
	switch {
	case err != nil:
		return "", nil, err
	case g != nil:
		return ActionNone, nil, nil
	}
	return ActionCreate, nil, nil
}

// findLogGroup returns the log group called name (nil when there is
// none). CloudWatch Logs looks log groups up by name prefix (or by a
// pattern found anywhere in the name), not by exact name, so others
// whose names begin with name (the log group of a function s-socks-old
// beside s-socks's) can fill the pages before it: every page is read.
func findLogGroup(ctx context.Context, logs DeployLogsAPI, name string) (*logtypes.LogGroup, error) {
	in := &cloudwatchlogs.DescribeLogGroupsInput{LogGroupNamePrefix: aws.String(name)}
	pages := pageTokens{what: "CloudWatch Logs DescribeLogGroups"}
	for {
		out, err := logs.DescribeLogGroups(ctx, in)
		if err != nil {
			return nil, Explain(err)
		}
		for i := range out.LogGroups {
			if aws.ToString(out.LogGroups[i].LogGroupName) == name {
				return &out.LogGroups[i], nil
			}
		}
		more, err := pages.next(out.NextToken)
		if err != nil {
			return nil, fmt.Errorf("looking for log group %s: %w; list the log groups with `aws logs describe-log-groups --log-group-name-prefix %s`", name, err, name)
		}
		if !more {
			return nil, nil
		}
		in.NextToken = out.NextToken
	}
}

func (d *Deployer) applyLogGroup(ctx context.Context, _ string) error {
	_, err := d.CP.Logs.CreateLogGroup(ctx, &cloudwatchlogs.CreateLogGroupInput{LogGroupName: aws.String(d.Spec.LogGroupName()), Tags: d.tags()})
	return Explain(err)
}

// ---------------------------------------------------------------- API

// findAPI returns the WebSocket API tagged with the stack.
func (d *Deployer) findAPI(ctx context.Context) (*apitypes.Api, error) {
	return FindStackAPI(ctx, d.CP.APIGW, d.Spec.Stack)
}

// FindStackAPI returns the API whose TagStack tag is stack (nil if none).
// More than one (two deploys of the stack that ran at once) is an error
// naming them: which is the stack's cannot be told.
func FindStackAPI(ctx context.Context, api DeployAPIGatewayAPI, stack string) (*apitypes.Api, error) {
	apis, err := StackAPIs(ctx, api, stack)
	switch {
	case err != nil || len(apis) == 0:
		return nil, err
	case len(apis) > 1:
		var ids []string
		for _, a := range apis {
			ids = append(ids, aws.ToString(a.ApiId))
		}
		return nil, fmt.Errorf("%d WebSocket APIs are tagged %s=%s (%s), as when two deploys of the stack ran at once: delete all but one (aws apigatewayv2 delete-api --api-id ID), or all of them with socks teardown, and deploy again",
			len(apis), TagStack, stack, strings.Join(ids, ", "))
	}
	return &apis[0], nil
}

// StackAPIs returns every API whose TagStack tag is stack.
func StackAPIs(ctx context.Context, api DeployAPIGatewayAPI, stack string) ([]apitypes.Api, error) {
	var found []apitypes.Api
	var next *string
	pages := pageTokens{what: "API Gateway GetApis"}
	for {
		out, err := api.GetApis(ctx, &apigatewayv2.GetApisInput{NextToken: next})
		if err != nil {
			return nil, Explain(err)
		}
		for _, a := range out.Items {
			if a.Tags[TagStack] == stack {
				found = append(found, a)
			}
		}
		more, err := pages.next(out.NextToken)
		if err != nil {
			return nil, fmt.Errorf("looking for the WebSocket APIs tagged %s=%s: %w; list them with `aws apigatewayv2 get-apis`", TagStack, stack, err)
		}
		if !more {
			return found, nil
		}
		next = out.NextToken
	}
}

func (d *Deployer) checkAPI(ctx context.Context) (string, []string, error) {
	a, err := d.findAPI(ctx)
	if err != nil || a == nil {
		return ActionCreate, nil, err
	}
	d.st.apiID, d.st.apiEndpoint = aws.ToString(a.ApiId), aws.ToString(a.ApiEndpoint)
	if got := aws.ToString(a.RouteSelectionExpression); got != DeployRouteSelection {
		return ActionUpdate, []string{fmt.Sprintf("route selection expression is %q; want %q", got, DeployRouteSelection)}, nil
	}
	return ActionNone, nil, nil
}

func (d *Deployer) applyAPI(ctx context.Context, action string) error {
	if action == ActionUpdate {
		_, err := d.CP.APIGW.UpdateApi(ctx, &apigatewayv2.UpdateApiInput{ApiId: aws.String(d.st.apiID), RouteSelectionExpression: aws.String(DeployRouteSelection)})
		return Explain(err)
	}
	out, err := d.CP.APIGW.CreateApi(ctx, &apigatewayv2.CreateApiInput{
		Name:                     aws.String(d.Spec.APIName()),
		ProtocolType:             apitypes.ProtocolTypeWebsocket,
		RouteSelectionExpression: aws.String(DeployRouteSelection),
		Tags:                     d.tags(),
	}, sendOnce)
	if err != nil {
		return unansweredOr(err)
	}
	d.st.apiID, d.st.apiEndpoint = aws.ToString(out.ApiId), aws.ToString(out.ApiEndpoint)
	return nil
}

// ---------------------------------------------------------------- role

const lambdaTrustPolicy = `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"lambda.amazonaws.com"},"Action":"sts:AssumeRole"}]}`

func (d *Deployer) checkRole(ctx context.Context) (string, []string, error) {
	out, err := d.CP.IAM.GetRole(ctx, &iam.GetRoleInput{RoleName: aws.String(d.Spec.RoleName())})
	if isCode(err, "NoSuchEntity") {
		return ActionCreate, nil, nil
	}
	if err != nil {
		return "", nil, Explain(err)
	}
	if !hasStackTag(out.Role.Tags, d.Spec.Stack) {
		return "", nil, fmt.Errorf("role %s exists but is not tagged %s=%s: it is not this stack's; remove it or choose another --stack", d.Spec.RoleName(), TagStack, d.Spec.Stack)
	}
	d.st.roleARN = aws.ToString(out.Role.Arn)
	var drift []string
	if td := trustDrift(aws.ToString(out.Role.AssumeRolePolicyDocument)); len(td) > 0 {
		drift = append(drift, strings.Join(td, "; ")+"; want "+lambdaTrustPolicy)
	}
	attached, err := d.CP.IAM.ListAttachedRolePolicies(ctx, &iam.ListAttachedRolePoliciesInput{RoleName: aws.String(d.Spec.RoleName())})
	if err != nil {
		return "", nil, Explain(err)
	}
	for _, p := range attached.AttachedPolicies {
		drift = append(drift, fmt.Sprintf("managed policy %s is attached; want none (least privilege)", aws.ToString(p.PolicyArn)))
	}
	inline, err := d.CP.IAM.ListRolePolicies(ctx, &iam.ListRolePoliciesInput{RoleName: aws.String(d.Spec.RoleName())})
	if err != nil {
		return "", nil, Explain(err)
	}
	for _, n := range inline.PolicyNames {
		if n != DeployPolicyName {
			drift = append(drift, fmt.Sprintf("inline policy %s is on the role; want only %s", n, DeployPolicyName))
		}
	}
	if len(drift) > 0 {
		return ActionUpdate, drift, nil
	}
	return ActionNone, nil, nil
}

// trustDrift says how the trust policy doc (as IAM returns it, URL-encoded
// or not) differs from Lambda's alone: Lambda may not assume the role, or
// a statement allows someone else (another account, a service, anyone),
// or something besides sts:AssumeRole, who would then act with the role's
// rights. Deny statements and conditions only narrow it: they are kept.
func trustDrift(doc string) []string {
	if dec, err := url.QueryUnescape(doc); err == nil && strings.HasPrefix(strings.TrimSpace(dec), "{") {
		doc = dec
	}
	statements, err := policyStatements(doc, &struct{}{})
	if err != nil {
		return []string{"trust policy cannot be read"}
	}
	lambdaMay := false
	var out []string
	for _, raw := range statements {
		var st struct {
			Sid          string          `json:"Sid"`
			Effect       string          `json:"Effect"`
			Action       json.RawMessage `json:"Action"`
			NotAction    json.RawMessage `json:"NotAction"`
			Principal    json.RawMessage `json:"Principal"`
			NotPrincipal json.RawMessage `json:"NotPrincipal"`
		}
		if json.Unmarshal(raw, &st) != nil {
			return []string{"trust policy cannot be read"}
		}
		if st.Effect != "Allow" {
			continue
		}
		var others []string
		var principal map[string]json.RawMessage
		switch {
		case len(st.NotPrincipal) > 0:
			others = append(others, "everyone but "+string(st.NotPrincipal))
		case json.Unmarshal(st.Principal, &principal) != nil:
			others = append(others, string(st.Principal)) // "*": anyone
		}
		for kind, raw := range principal {
			for _, who := range stringOrList(raw) {
				if kind != "Service" || who != "lambda.amazonaws.com" {
					others = append(others, kind+" "+who)
				}
			}
		}
		sort.Strings(others)
		actions := stringOrList(st.Action)
		var extra []string
		if len(st.NotAction) > 0 {
			extra = append(extra, "every action but "+string(st.NotAction))
		}
		for _, a := range actions {
			if a != "sts:AssumeRole" {
				extra = append(extra, a)
			}
		}
		label := "a statement"
		if st.Sid != "" {
			label = "statement " + st.Sid
		}
		switch {
		case len(others) > 0:
			out = append(out, fmt.Sprintf("trust policy %s lets %s assume the role", label, strings.Join(others, ", ")))
		case len(extra) > 0:
			out = append(out, fmt.Sprintf("trust policy %s allows %s", label, strings.Join(extra, ", ")))
		case slices.Contains(actions, "sts:AssumeRole"):
			lambdaMay = true
		}
	}
	if !lambdaMay {
		out = append([]string{"trust policy does not let lambda.amazonaws.com assume the role"}, out...)
	}
	return out
}

func hasStackTag(tags []iamtypes.Tag, stack string) bool {
	for _, t := range tags {
		if aws.ToString(t.Key) == TagStack && aws.ToString(t.Value) == stack {
			return true
		}
	}
	return false
}

func (d *Deployer) applyRole(ctx context.Context, action string) error {
	name := aws.String(d.Spec.RoleName())
	if action == ActionUpdate {
		if _, err := d.CP.IAM.UpdateAssumeRolePolicy(ctx, &iam.UpdateAssumeRolePolicyInput{RoleName: name, PolicyDocument: aws.String(lambdaTrustPolicy)}); err != nil {
			return Explain(err)
		}
		attached, err := d.CP.IAM.ListAttachedRolePolicies(ctx, &iam.ListAttachedRolePoliciesInput{RoleName: name})
		if err != nil {
			return Explain(err)
		}
		for _, p := range attached.AttachedPolicies {
			if _, err := d.CP.IAM.DetachRolePolicy(ctx, &iam.DetachRolePolicyInput{RoleName: name, PolicyArn: p.PolicyArn}); err != nil {
				return Explain(err)
			}
		}
		inline, err := d.CP.IAM.ListRolePolicies(ctx, &iam.ListRolePoliciesInput{RoleName: name})
		if err != nil {
			return Explain(err)
		}
		for _, n := range inline.PolicyNames {
			if n != DeployPolicyName {
				if _, err := d.CP.IAM.DeleteRolePolicy(ctx, &iam.DeleteRolePolicyInput{RoleName: name, PolicyName: aws.String(n)}); err != nil {
					return Explain(err)
				}
			}
		}
		return nil
	}
	var tags []iamtypes.Tag
	for k, v := range d.tags() {
		tags = append(tags, iamtypes.Tag{Key: aws.String(k), Value: aws.String(v)})
	}
	sort.Slice(tags, func(i, j int) bool { return aws.ToString(tags[i].Key) < aws.ToString(tags[j].Key) })
	out, err := d.CP.IAM.CreateRole(ctx, &iam.CreateRoleInput{
		RoleName:                 name,
		AssumeRolePolicyDocument: aws.String(lambdaTrustPolicy),
		Description:              aws.String("socks function of stack " + d.Spec.Stack),
		Tags:                     tags,
	})
	if err != nil {
		return Explain(err)
	}
	d.st.roleARN = aws.ToString(out.Role.Arn)
	return nil
}

// RolePolicy is the role's inline policy: its own tables, its envelopes
// queue, sending to its dead-letter queue, ManageConnections on its own
// API's stage, and its own log group.
func (d *Deployer) RolePolicy() PolicyDocument {
	tableARN := func(n string) string { return d.arn("dynamodb", "table/"+n) }
	t := d.st.tables
	apiID := d.st.apiID
	if apiID == "" {
		apiID = "API_ID"
	}
	conn := func(method string) string {
		return d.arn("execute-api", apiID+"/"+d.Spec.Stage+"/"+method+"/@connections/*")
	}
	logGroup := d.arn("logs", "log-group:"+d.Spec.LogGroupName())
	return PolicyDocument{
		Version: "2012-10-17",
		Statement: []PolicyStatement{
			{Sid: "Tables", Effect: "Allow", Action: []string{
				"dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:DeleteItem", "dynamodb:UpdateItem",
				"dynamodb:ConditionCheckItem", "dynamodb:Query", "dynamodb:Scan",
				"dynamodb:BatchGetItem", "dynamodb:BatchWriteItem",
			}, Resource: []string{tableARN(t.Connections), tableARN(t.Connections) + "/index/*", tableARN(t.ChatterIDs), tableARN(t.Reports)}},
			{Sid: "Queues", Effect: "Allow", Action: []string{
				"sqs:SendMessage", "sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:ChangeMessageVisibility",
				"sqs:GetQueueAttributes", "sqs:GetQueueUrl",
			}, Resource: []string{d.arn("sqs", d.st.queues.Main)}},
			// The function only sends to the dead-letter queue; reading
			// and deleting dead letters is the operator's (socks dlq).
			{Sid: "DeadLetters", Effect: "Allow", Action: []string{"sqs:SendMessage", "sqs:GetQueueUrl"},
				Resource: []string{d.arn("sqs", d.st.queues.DeadLetter)}},
			{Sid: "ManageConnections", Effect: "Allow", Action: []string{"execute-api:ManageConnections"},
				Resource: []string{conn("POST"), conn("GET"), conn("DELETE")}},
			{Sid: "Logs", Effect: "Allow", Action: []string{"logs:CreateLogStream", "logs:PutLogEvents"},
				Resource: []string{logGroup + ":*"}},
		},
	}
}

// PolicyDocument is an IAM policy in the shape socks writes (every Action
// and Resource a list).
type PolicyDocument struct {
	Version   string            `json:"Version"`
	Statement []PolicyStatement `json:"Statement"`
}

// PolicyStatement is one statement of a PolicyDocument.
type PolicyStatement struct {
	Sid      string   `json:"Sid,omitempty"`
	Effect   string   `json:"Effect"`
	Action   []string `json:"Action"`
	Resource []string `json:"Resource"`
}

// ParsePolicy reads a policy document as IAM returns it (URL-encoded or
// not; Action and Resource a string or a list).
func ParsePolicy(doc string) (PolicyDocument, error) {
	if dec, err := url.QueryUnescape(doc); err == nil && strings.HasPrefix(strings.TrimSpace(dec), "{") {
		doc = dec
	}
	var head struct {
		Version string `json:"Version"`
	}
	statements, err := policyStatements(doc, &head)
	if err != nil {
		return PolicyDocument{}, fmt.Errorf("reading a policy document: the policy %v", err)
	}
	p := PolicyDocument{Version: head.Version}
	for _, raw := range statements {
		var s struct {
			Sid      string          `json:"Sid"`
			Effect   string          `json:"Effect"`
			Action   json.RawMessage `json:"Action"`
			Resource json.RawMessage `json:"Resource"`
		}
		if err := json.Unmarshal(raw, &s); err != nil {
			return PolicyDocument{}, fmt.Errorf("reading a policy document: a statement %s", pubsub.DescribeJSONError(err))
		}
		p.Statement = append(p.Statement, PolicyStatement{Sid: s.Sid, Effect: s.Effect, Action: stringOrList(s.Action), Resource: stringOrList(s.Resource)})
	}
	return p, nil
}

func stringOrList(raw json.RawMessage) []string {
	var one string
	if json.Unmarshal(raw, &one) == nil {
		return []string{one}
	}
	var many []string
	_ = json.Unmarshal(raw, &many)
	return many
}

// policyDiff lists how got differs from want, statement by statement.
func policyDiff(got, want PolicyDocument) []string {
	index := func(p PolicyDocument) map[string]PolicyStatement {
		m := map[string]PolicyStatement{}
		for i, s := range p.Statement {
			key := s.Sid
			if key == "" {
				key = fmt.Sprintf("#%d", i+1)
			}
			m[key] = s
		}
		return m
	}
	g, w := index(got), index(want)
	var out []string
	for _, s := range want.Statement {
		have, ok := g[s.Sid]
		switch {
		case !ok:
			out = append(out, fmt.Sprintf("statement %s is missing", s.Sid))
		case have.Effect != s.Effect || !sameSet(have.Action, s.Action) || !sameSet(have.Resource, s.Resource):
			out = append(out, fmt.Sprintf("statement %s is %s on %s; want %s on %s", s.Sid,
				strings.Join(have.Action, ","), strings.Join(have.Resource, ","), strings.Join(s.Action, ","), strings.Join(s.Resource, ",")))
		}
	}
	keys := make([]string, 0, len(g))
	for k := range g {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if _, ok := w[k]; !ok {
			s := g[k]
			out = append(out, fmt.Sprintf("foreign statement %s (%s %s on %s) would be removed", k, s.Effect, strings.Join(s.Action, ","), strings.Join(s.Resource, ",")))
		}
	}
	return out
}

func sameSet(a, b []string) bool {
	x, y := slices.Clone(a), slices.Clone(b)
	slices.Sort(x)
	slices.Sort(y)
	return slices.Equal(slices.Compact(x), slices.Compact(y))
}

func (d *Deployer) checkRolePolicy(ctx context.Context) (string, []string, error) {
	if d.st.roleARN == "" {
		return ActionCreate, nil, nil
	}
	out, err := d.CP.IAM.GetRolePolicy(ctx, &iam.GetRolePolicyInput{RoleName: aws.String(d.Spec.RoleName()), PolicyName: aws.String(DeployPolicyName)})
	if isCode(err, "NoSuchEntity") {
		return ActionCreate, nil, nil
	}
	if err != nil {
		return "", nil, Explain(err)
	}
	got, err := ParsePolicy(aws.ToString(out.PolicyDocument))
	if err != nil {
		return ActionUpdate, []string{err.Error()}, nil
	}
	if diff := policyDiff(got, d.RolePolicy()); len(diff) > 0 {
		return ActionUpdate, diff, nil
	}
	return ActionNone, nil, nil
}

func (d *Deployer) applyRolePolicy(ctx context.Context, _ string) error {
	doc, _ := json.Marshal(d.RolePolicy())
	_, err := d.CP.IAM.PutRolePolicy(ctx, &iam.PutRolePolicyInput{
		RoleName: aws.String(d.Spec.RoleName()), PolicyName: aws.String(DeployPolicyName), PolicyDocument: aws.String(string(doc)),
	})
	return Explain(err)
}

// ---------------------------------------------------------------- function

func (d *Deployer) callbackURL() string {
	host := d.st.apiID + ".execute-api." + d.Spec.Region + ".amazonaws.com"
	if u, err := url.Parse(d.st.apiEndpoint); err == nil && u.Host != "" {
		host = u.Host
	}
	return "https://" + host + "/" + d.Spec.Stage
}

// FunctionEnvironment is the function's environment.
func (d *Deployer) FunctionEnvironment() map[string]string {
	s := d.Spec.withDefaults()
	env := map[string]string{
		"SOCKS_STACK":                   d.Spec.Stack,
		"SOCKS_CALLBACK_URL":            d.callbackURL(),
		routes.EnvMaxTopics:             strconv.Itoa(s.MaxTopics),
		routes.EnvMaxConnectionsPerGeek: strconv.Itoa(s.MaxConnectionsPerGeek),
	}
	if d.Spec.EventMapping != "" {
		env[config.EnvMapping] = d.Spec.EventMapping
	}
	return env
}

func (d *Deployer) arch() lambdatypes.Architecture {
	if d.Spec.Arch == "amd64" || d.Spec.Arch == "x86_64" {
		return lambdatypes.ArchitectureX8664
	}
	return lambdatypes.ArchitectureArm64
}

// CodeSHA256 is the base64 SHA-256 of zip, as Lambda reports CodeSha256.
func CodeSHA256(zip []byte) string {
	sum := sha256.Sum256(zip)
	return base64.StdEncoding.EncodeToString(sum[:])
}

func (d *Deployer) checkFunction(ctx context.Context) (string, []string, error) {
	out, err := d.CP.Lambda.GetFunction(ctx, &lambda.GetFunctionInput{FunctionName: aws.String(d.Spec.FunctionName())})
	if isCode(err, "ResourceNotFoundException") {
		return ActionCreate, nil, nil
	}
	if err != nil {
		return "", nil, Explain(err)
	}
	if out.Tags[TagStack] != d.Spec.Stack {
		return "", nil, fmt.Errorf("function %s exists but is not tagged %s=%s: it is not this stack's; remove it or choose another --stack", d.Spec.FunctionName(), TagStack, d.Spec.Stack)
	}
	c := out.Configuration
	d.st.functionARN = aws.ToString(c.FunctionArn)
	var drift []string
	want := func(what string, is, want any) {
		if fmt.Sprint(is) != fmt.Sprint(want) {
			drift = append(drift, fmt.Sprintf("%s is %v; want %v", what, is, want))
		}
	}
	want("runtime", c.Runtime, DeployRuntime)
	want("handler", aws.ToString(c.Handler), DeployHandler)
	want("timeout", fmt.Sprintf("%ds", aws.ToInt32(c.Timeout)), fmt.Sprintf("%ds", int(d.Spec.Timeout/time.Second)))
	want("memory", fmt.Sprintf("%d MB", aws.ToInt32(c.MemorySize)), fmt.Sprintf("%d MB", DeployMemoryMB))
	if d.st.roleARN != "" {
		want("role", aws.ToString(c.Role), d.st.roleARN)
	}
	if len(c.Architectures) > 0 && !d.Spec.AcceptSettings {
		want("architecture", c.Architectures[0], d.arch())
	}
	var env map[string]string
	if c.Environment != nil {
		env = c.Environment.Variables
	}
	wantEnv := d.FunctionEnvironment()
	for k, v := range wantEnv {
		if d.Spec.AcceptSettings && (k == routes.EnvMaxTopics || k == routes.EnvMaxConnectionsPerGeek) && env[k] != "" {
			continue
		}
		want("environment "+k, fmt.Sprintf("%q", env[k]), fmt.Sprintf("%q", v))
	}
	// Deploy sets the whole environment: a variable it does not set (an
	// event mapping the profile no longer has, one added by hand) is
	// drift. A check that cannot know the profile's mapping takes it as
	// deployed.
	extra := make([]string, 0, len(env))
	for k := range env {
		if _, ok := wantEnv[k]; !ok && !(d.Spec.AcceptSettings && k == config.EnvMapping) {
			extra = append(extra, k)
		}
	}
	sort.Strings(extra)
	for _, k := range extra {
		drift = append(drift, fmt.Sprintf("environment %s is %q; want it unset", k, env[k]))
	}
	if d.Spec.Zip != nil {
		want("code SHA-256", aws.ToString(c.CodeSha256), CodeSHA256(d.Spec.Zip))
	}
	if len(drift) > 0 {
		return ActionUpdate, drift, nil
	}
	return ActionNone, nil, nil
}

func (d *Deployer) functionConfig() (timeout, memory int32, env *lambdatypes.Environment) {
	return int32(d.Spec.Timeout / time.Second), DeployMemoryMB, &lambdatypes.Environment{Variables: d.FunctionEnvironment()}
}

// Role propagation: real IAM takes a few seconds before Lambda can assume
// a new role; CreateFunction says so with this message.
const (
	roleRetryBound = 2 * time.Minute
	roleRetryDelay = 2 * time.Second
)

func roleNotReady(err error) bool {
	var ae smithy.APIError
	return errors.As(err, &ae) && ae.ErrorCode() == "InvalidParameterValueException" &&
		strings.Contains(ae.ErrorMessage(), "cannot be assumed")
}

func (d *Deployer) sleep(ctx context.Context, dur time.Duration) error {
	if d.Sleep != nil {
		return d.Sleep(ctx, dur)
	}
	return backoff.Sleep(ctx, dur)
}

func (d *Deployer) applyFunction(ctx context.Context, action string) error {
	timeout, memory, env := d.functionConfig()
	name := aws.String(d.Spec.FunctionName())
	if action == ActionCreate {
		if d.Spec.Zip == nil {
			return errors.New("no deployment package: pass --lambda-zip or run from a source checkout")
		}
		in := &lambda.CreateFunctionInput{
			FunctionName:  name,
			Runtime:       lambdatypes.Runtime(DeployRuntime),
			Handler:       aws.String(DeployHandler),
			Role:          aws.String(d.st.roleARN),
			Code:          &lambdatypes.FunctionCode{ZipFile: d.Spec.Zip},
			Architectures: []lambdatypes.Architecture{d.arch()},
			Timeout:       aws.Int32(timeout),
			MemorySize:    aws.Int32(memory),
			Environment:   env,
			Description:   aws.String("socks WebSocket routes and SQS broker of stack " + d.Spec.Stack),
			Tags:          d.tags(),
		}
		for tries := 0; ; tries++ {
			out, err := d.CP.Lambda.CreateFunction(ctx, in)
			if err == nil {
				d.st.functionARN = aws.ToString(out.FunctionArn)
				return nil
			}
			if !roleNotReady(err) || time.Duration(tries+1)*roleRetryDelay > roleRetryBound {
				return Explain(err)
			}
			if err := d.sleep(ctx, roleRetryDelay); err != nil {
				return err
			}
		}
	}
	if d.Spec.Zip != nil {
		cur, err := d.CP.Lambda.GetFunction(ctx, &lambda.GetFunctionInput{FunctionName: name})
		if err != nil {
			return Explain(err)
		}
		if aws.ToString(cur.Configuration.CodeSha256) != CodeSHA256(d.Spec.Zip) || (len(cur.Configuration.Architectures) > 0 && cur.Configuration.Architectures[0] != d.arch()) {
			if _, err := d.CP.Lambda.UpdateFunctionCode(ctx, &lambda.UpdateFunctionCodeInput{
				FunctionName: name, ZipFile: d.Spec.Zip, Architectures: []lambdatypes.Architecture{d.arch()},
			}); err != nil {
				return Explain(err)
			}
			if err := d.waitFunctionUpdated(ctx); err != nil {
				return err
			}
		}
	}
	_, err := d.CP.Lambda.UpdateFunctionConfiguration(ctx, &lambda.UpdateFunctionConfigurationInput{
		FunctionName: name,
		Runtime:      lambdatypes.Runtime(DeployRuntime),
		Handler:      aws.String(DeployHandler),
		Role:         aws.String(d.st.roleARN),
		Timeout:      aws.Int32(timeout),
		MemorySize:   aws.Int32(memory),
		Environment:  env,
	})
	if err != nil {
		return Explain(err)
	}
	return d.waitFunctionUpdated(ctx)
}

// waitFunctionUpdated waits (bounded by Spec.Wait) until the function's
// last update is no longer in progress: Lambda refuses another update
// until then.
func (d *Deployer) waitFunctionUpdated(ctx context.Context) error {
	deadline := time.Now().Add(d.Spec.Wait)
	for {
		out, err := d.CP.Lambda.GetFunction(ctx, &lambda.GetFunctionInput{FunctionName: aws.String(d.Spec.FunctionName())})
		if err != nil {
			return Explain(err)
		}
		if out.Configuration.LastUpdateStatus != lambdatypes.LastUpdateStatusInProgress {
			if out.Configuration.LastUpdateStatus == lambdatypes.LastUpdateStatusFailed {
				return fmt.Errorf("the function update failed: %s", aws.ToString(out.Configuration.LastUpdateStatusReason))
			}
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("the function update was still in progress after %s", d.Spec.Wait)
		}
		if err := d.sleep(ctx, time.Second); err != nil {
			return err
		}
	}
}

// ---------------------------------------------------------------- integration

// IntegrationURI is the Lambda proxy integration URI of the function.
func (d *Deployer) IntegrationURI() string {
	fn := d.st.functionARN
	if fn == "" {
		fn = d.arn("lambda", "function:"+d.Spec.FunctionName())
	}
	return fmt.Sprintf("arn:%s:apigateway:%s:lambda:path/2015-03-31/functions/%s/invocations", d.st.part, d.Spec.Region, fn)
}

func (d *Deployer) checkIntegration(ctx context.Context) (string, []string, error) {
	if d.st.apiID == "" {
		return ActionCreate, nil, nil
	}
	out, err := d.CP.APIGW.GetIntegrations(ctx, &apigatewayv2.GetIntegrationsInput{ApiId: aws.String(d.st.apiID)})
	if err != nil {
		return "", nil, Explain(err)
	}
	var other *apitypes.Integration
	for i := range out.Items {
		it := &out.Items[i]
		if it.IntegrationType != apitypes.IntegrationTypeAwsProxy {
			continue
		}
		if aws.ToString(it.IntegrationUri) == d.IntegrationURI() {
			d.st.integration = aws.ToString(it.IntegrationId)
			return ActionNone, nil, nil
		}
		other = it
	}
	if other != nil {
		d.st.integration = aws.ToString(other.IntegrationId)
		return ActionUpdate, []string{fmt.Sprintf("integration URI is %s; want %s", aws.ToString(other.IntegrationUri), d.IntegrationURI())}, nil
	}
	return ActionCreate, nil, nil
}

func (d *Deployer) applyIntegration(ctx context.Context, action string) error {
	if action == ActionUpdate {
		_, err := d.CP.APIGW.UpdateIntegration(ctx, &apigatewayv2.UpdateIntegrationInput{
			ApiId: aws.String(d.st.apiID), IntegrationId: aws.String(d.st.integration), IntegrationUri: aws.String(d.IntegrationURI()),
		})
		return Explain(err)
	}
	out, err := d.CP.APIGW.CreateIntegration(ctx, &apigatewayv2.CreateIntegrationInput{
		ApiId:           aws.String(d.st.apiID),
		IntegrationType: apitypes.IntegrationTypeAwsProxy,
		IntegrationUri:  aws.String(d.IntegrationURI()),
	}, sendOnce)
	if err != nil {
		return unansweredOr(err)
	}
	d.st.integration = aws.ToString(out.IntegrationId)
	return nil
}

// ---------------------------------------------------------------- routes

func (d *Deployer) target() string { return "integrations/" + d.st.integration }

// routeState is what checkRoutes found: each route key's ID (absent when
// missing), and the routes to fix.
type routeState struct {
	ids        map[string]string
	toFix      map[string]bool
	noResponse map[string]bool
	// foreign are the IDs of routes deploy does not make.
	foreign []string
}

func (d *Deployer) readRoutes(ctx context.Context) (routeState, []string, error) {
	rs := routeState{ids: map[string]string{}, toFix: map[string]bool{}, noResponse: map[string]bool{}}
	var drift []string
	var next *string
	var items []apitypes.Route
	pages := pageTokens{what: "API Gateway GetRoutes"}
	for {
		out, err := d.CP.APIGW.GetRoutes(ctx, &apigatewayv2.GetRoutesInput{ApiId: aws.String(d.st.apiID), NextToken: next})
		if err != nil {
			return rs, nil, Explain(err)
		}
		items = append(items, out.Items...)
		more, err := pages.next(out.NextToken)
		if err != nil {
			return rs, nil, fmt.Errorf("listing the routes of WebSocket API %s: %w; list them with `aws apigatewayv2 get-routes --api-id %s`", d.st.apiID, err, d.st.apiID)
		}
		if !more {
			break
		}
		next = out.NextToken
	}
	byKey := map[string]apitypes.Route{}
	for _, r := range items {
		key := aws.ToString(r.RouteKey)
		byKey[key] = r
		if !isDeployRoute(key) {
			// Another key sends what clients send somewhere else.
			rs.foreign = append(rs.foreign, aws.ToString(r.RouteId))
			drift = append(drift, fmt.Sprintf("route %s is not deploy's (it targets %q); it would be removed", key, aws.ToString(r.Target)))
		}
	}
	for _, want := range DeployRoutes {
		r, ok := byKey[want.Key]
		if !ok {
			drift = append(drift, fmt.Sprintf("route %s is missing", want.Key))
			continue
		}
		rs.ids[want.Key] = aws.ToString(r.RouteId)
		if d.st.integration != "" && aws.ToString(r.Target) != d.target() {
			rs.toFix[want.Key] = true
			drift = append(drift, fmt.Sprintf("route %s targets %q; want %q", want.Key, aws.ToString(r.Target), d.target()))
		}
		wantRRSE := ""
		if want.TwoWay {
			wantRRSE = "$default"
		}
		if aws.ToString(r.RouteResponseSelectionExpression) != wantRRSE {
			rs.toFix[want.Key] = true
			drift = append(drift, fmt.Sprintf("route %s route response selection is %q; want %q", want.Key, aws.ToString(r.RouteResponseSelectionExpression), wantRRSE))
		}
		if want.TwoWay {
			rr, err := d.CP.APIGW.GetRouteResponses(ctx, &apigatewayv2.GetRouteResponsesInput{ApiId: aws.String(d.st.apiID), RouteId: r.RouteId},
				func(o *apigatewayv2.Options) { o.RetryMaxAttempts = 1 })
			if serverFault(err) {
				// Some emulators (moto 5) cannot list route responses:
				// the route's response selection above is all that can
				// be checked there.
				continue
			}
			if err != nil {
				return rs, nil, Explain(err)
			}
			found := false
			for _, x := range rr.Items {
				found = found || aws.ToString(x.RouteResponseKey) == "$default"
			}
			if !found {
				rs.noResponse[want.Key] = true
				drift = append(drift, fmt.Sprintf("route %s has no $default route response, so the client gets no answer", want.Key))
			}
		}
	}
	return rs, drift, nil
}

// isDeployRoute reports whether key is one of DeployRoutes.
func isDeployRoute(key string) bool {
	for _, r := range DeployRoutes {
		if r.Key == key {
			return true
		}
	}
	return false
}

func (d *Deployer) checkRoutes(ctx context.Context) (string, []string, error) {
	if d.st.apiID == "" {
		return ActionCreate, nil, nil
	}
	rs, drift, err := d.readRoutes(ctx)
	if err != nil {
		return "", nil, err
	}
	if len(rs.ids) == 0 && len(rs.foreign) == 0 {
		return ActionCreate, nil, nil
	}
	if len(drift) > 0 {
		return ActionUpdate, drift, nil
	}
	return ActionNone, nil, nil
}

func (d *Deployer) applyRoutes(ctx context.Context, _ string) error {
	rs, _, err := d.readRoutes(ctx)
	if err != nil {
		return err
	}
	for _, want := range DeployRoutes {
		var rrse *string
		if want.TwoWay {
			rrse = aws.String("$default")
		}
		id, ok := rs.ids[want.Key]
		switch {
		case !ok:
			out, err := d.CP.APIGW.CreateRoute(ctx, &apigatewayv2.CreateRouteInput{
				ApiId: aws.String(d.st.apiID), RouteKey: aws.String(want.Key), Target: aws.String(d.target()),
				RouteResponseSelectionExpression: rrse,
			}, sendOnce)
			if err != nil {
				return unansweredOr(err)
			}
			id = aws.ToString(out.RouteId)
			rs.noResponse[want.Key] = want.TwoWay
		case rs.toFix[want.Key]:
			in := &apigatewayv2.UpdateRouteInput{ApiId: aws.String(d.st.apiID), RouteId: aws.String(id), Target: aws.String(d.target())}
			if want.TwoWay {
				in.RouteResponseSelectionExpression = rrse
			} else {
				in.RouteResponseSelectionExpression = aws.String("")
			}
			if _, err := d.CP.APIGW.UpdateRoute(ctx, in); err != nil {
				return Explain(err)
			}
		}
		if rs.noResponse[want.Key] {
			if _, err := d.CP.APIGW.CreateRouteResponse(ctx, &apigatewayv2.CreateRouteResponseInput{
				ApiId: aws.String(d.st.apiID), RouteId: aws.String(id), RouteResponseKey: aws.String("$default"),
			}, sendOnce); err != nil {
				return unansweredOr(err)
			}
		}
	}
	for _, id := range rs.foreign {
		if _, err := d.CP.APIGW.DeleteRoute(ctx, &apigatewayv2.DeleteRouteInput{ApiId: aws.String(d.st.apiID), RouteId: aws.String(id)}); err != nil && !isCode(err, "NotFoundException") {
			return Explain(err)
		}
	}
	return nil
}

// ---------------------------------------------------------------- stage

func (d *Deployer) checkStage(ctx context.Context) (string, []string, error) {
	if d.st.apiID == "" {
		return ActionCreate, nil, nil
	}
	// Any other stage is one an earlier deploy made with another
	// --stage: the function posts through this stage's endpoint and the
	// role allows this stage only, so clients that connect there are
	// accepted and then never get a message.
	d.st.otherStages = nil
	var drift []string
	var next *string
	pages := pageTokens{what: "API Gateway GetStages"}
	for {
		out, err := d.CP.APIGW.GetStages(ctx, &apigatewayv2.GetStagesInput{ApiId: aws.String(d.st.apiID), NextToken: next})
		if err != nil {
			return "", nil, Explain(err)
		}
		for _, st := range out.Items {
			if name := aws.ToString(st.StageName); name != d.Spec.Stage {
				d.st.otherStages = append(d.st.otherStages, name)
				drift = append(drift, fmt.Sprintf("stage %s is not the stack's stage %s (clients that connect there never get a message); it would be removed", name, d.Spec.Stage))
			}
		}
		more, err := pages.next(out.NextToken)
		if err != nil {
			return "", nil, fmt.Errorf("listing the stages of WebSocket API %s: %w; list them with `aws apigatewayv2 get-stages --api-id %s`", d.st.apiID, err, d.st.apiID)
		}
		if !more {
			break
		}
		next = out.NextToken
	}
	out, err := d.CP.APIGW.GetStage(ctx, &apigatewayv2.GetStageInput{ApiId: aws.String(d.st.apiID), StageName: aws.String(d.Spec.Stage)})
	if isCode(err, "NotFoundException") {
		return ActionCreate, drift, nil
	}
	if err != nil {
		return "", nil, Explain(err)
	}
	d.st.stageDrift = false
	if !aws.ToBool(out.AutoDeploy) {
		d.st.stageDrift = true
		drift = append(drift, "auto-deploy is off; want on")
	}
	var burst int32
	var rate float64
	if s := out.DefaultRouteSettings; s != nil {
		burst, rate = aws.ToInt32(s.ThrottlingBurstLimit), aws.ToFloat64(s.ThrottlingRateLimit)
	}
	if !d.Spec.AcceptSettings && (burst != d.Spec.ThrottlingBurstLimit || rate != d.Spec.ThrottlingRateLimit) {
		d.st.stageDrift = true
		drift = append(drift, fmt.Sprintf("throttling is burst %d, rate %g; want burst %d, rate %g", burst, rate, d.Spec.ThrottlingBurstLimit, d.Spec.ThrottlingRateLimit))
	}
	if len(drift) > 0 {
		return ActionUpdate, drift, nil
	}
	return ActionNone, nil, nil
}

func (d *Deployer) routeSettings() *apitypes.RouteSettings {
	return &apitypes.RouteSettings{
		ThrottlingBurstLimit: aws.Int32(d.Spec.ThrottlingBurstLimit),
		ThrottlingRateLimit:  aws.Float64(d.Spec.ThrottlingRateLimit),
	}
}

func (d *Deployer) applyStage(ctx context.Context, action string) error {
	switch {
	case action == ActionUpdate && d.st.stageDrift:
		if _, err := d.CP.APIGW.UpdateStage(ctx, &apigatewayv2.UpdateStageInput{
			ApiId: aws.String(d.st.apiID), StageName: aws.String(d.Spec.Stage), AutoDeploy: aws.Bool(true), DefaultRouteSettings: d.routeSettings(),
		}); err != nil {
			return Explain(err)
		}
	case action == ActionCreate:
		// An auto-deploying stage: API Gateway deploys every change of
		// the routes by itself, so no CreateDeployment is needed.
		if _, err := d.CP.APIGW.CreateStage(ctx, &apigatewayv2.CreateStageInput{
			ApiId: aws.String(d.st.apiID), StageName: aws.String(d.Spec.Stage), AutoDeploy: aws.Bool(true),
			DefaultRouteSettings: d.routeSettings(), Tags: d.tags(),
		}); err != nil {
			return Explain(err)
		}
	}
	for _, name := range d.st.otherStages {
		if _, err := d.CP.APIGW.DeleteStage(ctx, &apigatewayv2.DeleteStageInput{ApiId: aws.String(d.st.apiID), StageName: aws.String(name)}); err != nil && !isCode(err, "NotFoundException") {
			return Explain(err)
		}
	}
	return nil
}

// ---------------------------------------------------------------- permission

// PermissionSourceARN is the SourceArn of the function's permission: any
// route of the stack's own API.
func (d *Deployer) PermissionSourceARN() string {
	return d.arn("execute-api", d.st.apiID+"/*")
}

// permissionStatement is the part of the function's resource policy deploy
// checks.
type permissionStatement struct {
	Sid       string          `json:"Sid"`
	Effect    string          `json:"Effect"`
	Principal json.RawMessage `json:"Principal"`
	Action    json.RawMessage `json:"Action"`
	Condition struct {
		ArnLike map[string]string `json:"ArnLike"`
	} `json:"Condition"`
}

// FunctionPermission returns the statement of the function's policy with
// the deploy Sid (nil when absent).
func FunctionPermission(ctx context.Context, api DeployLambdaAPI, function string) (*permissionStatement, error) {
	all, err := functionPolicy(ctx, api, function)
	if err != nil {
		return nil, err
	}
	for i := range all {
		if all[i].Sid == DeployPermissionID {
			return &all[i], nil
		}
	}
	return nil, nil
}

// functionPolicy returns every statement of the function's resource
// policy (none when it has no policy).
func functionPolicy(ctx context.Context, api DeployLambdaAPI, function string) ([]permissionStatement, error) {
	out, err := api.GetPolicy(ctx, &lambda.GetPolicyInput{FunctionName: aws.String(function)})
	if isCode(err, "ResourceNotFoundException") {
		return nil, nil
	}
	if err != nil {
		return nil, Explain(err)
	}
	var pol struct {
		Statement []permissionStatement `json:"Statement"`
	}
	if err := json.Unmarshal([]byte(aws.ToString(out.Policy)), &pol); err != nil {
		return nil, fmt.Errorf("reading the function's policy: %w", err)
	}
	return pol.Statement, nil
}

// SourceARN is the statement's AWS:SourceArn condition.
func (p *permissionStatement) SourceARN() string { return p.Condition.ArnLike["AWS:SourceArn"] }

func (d *Deployer) checkPermission(ctx context.Context) (string, []string, error) {
	if d.st.functionARN == "" || d.st.apiID == "" {
		return ActionCreate, nil, nil
	}
	all, err := functionPolicy(ctx, d.CP.Lambda, d.Spec.FunctionName())
	if err != nil {
		return "", nil, err
	}
	var p *permissionStatement
	var drift []string
	d.st.foreignPermissions, d.st.permissionWrong = nil, false
	for i := range all {
		st := &all[i]
		if st.Sid == DeployPermissionID {
			p = st
			continue
		}
		// Anyone else allowed to invoke the function can hand it events
		// it makes up (a $connect for any geek, a batch of envelopes).
		d.st.foreignPermissions = append(d.st.foreignPermissions, st.Sid)
		drift = append(drift, fmt.Sprintf("foreign statement %s (%s %s for %s) would be removed", st.Sid, st.Effect, string(st.Action), string(st.Principal)))
	}
	if p == nil {
		if len(drift) > 0 {
			return ActionUpdate, append(drift, "statement "+DeployPermissionID+" is missing"), nil
		}
		return ActionCreate, nil, nil
	}
	if p.SourceARN() != d.PermissionSourceARN() || !strings.Contains(string(p.Principal), "apigateway.amazonaws.com") {
		d.st.permissionWrong = true
		drift = append(drift, fmt.Sprintf("permission allows %s from %s; want apigateway.amazonaws.com from %s", string(p.Principal), p.SourceARN(), d.PermissionSourceARN()))
	}
	if len(drift) > 0 {
		return ActionUpdate, drift, nil
	}
	return ActionNone, nil, nil
}

func (d *Deployer) applyPermission(ctx context.Context, action string) error {
	remove := d.st.foreignPermissions
	if action == ActionUpdate && d.st.permissionWrong {
		remove = append(remove, DeployPermissionID)
	}
	for _, sid := range remove {
		if _, err := d.CP.Lambda.RemovePermission(ctx, &lambda.RemovePermissionInput{
			FunctionName: aws.String(d.Spec.FunctionName()), StatementId: aws.String(sid),
		}); err != nil && !isCode(err, "ResourceNotFoundException") {
			return Explain(err)
		}
	}
	if p, err := FunctionPermission(ctx, d.CP.Lambda, d.Spec.FunctionName()); err != nil || p != nil {
		return err // ours is in place
	}
	_, err := d.CP.Lambda.AddPermission(ctx, &lambda.AddPermissionInput{
		FunctionName: aws.String(d.Spec.FunctionName()),
		StatementId:  aws.String(DeployPermissionID),
		Action:       aws.String("lambda:InvokeFunction"),
		Principal:    aws.String("apigateway.amazonaws.com"),
		SourceArn:    aws.String(d.PermissionSourceARN()),
	})
	return Explain(err)
}

// ---------------------------------------------------------------- mapping

// StackMapping returns the event source mapping from the stack's queue to
// its function (nil when absent).
func StackMapping(ctx context.Context, api DeployLambdaAPI, function, queueARN string) (*lambdatypes.EventSourceMappingConfiguration, error) {
	in := &lambda.ListEventSourceMappingsInput{FunctionName: aws.String(function)}
	pages := pageTokens{what: "Lambda ListEventSourceMappings"}
	for {
		out, err := api.ListEventSourceMappings(ctx, in)
		if isCode(err, "ResourceNotFoundException") {
			return nil, nil
		}
		if err != nil {
			return nil, Explain(err)
		}
		for i := range out.EventSourceMappings {
			if queueARN == "" || aws.ToString(out.EventSourceMappings[i].EventSourceArn) == queueARN {
				return &out.EventSourceMappings[i], nil
			}
		}
		more, err := pages.next(out.NextMarker)
		if err != nil {
			return nil, fmt.Errorf("listing the event source mappings of function %s: %w; list them with `aws lambda list-event-source-mappings --function-name %s`", function, err, function)
		}
		if !more {
			return nil, nil
		}
		in.Marker = out.NextMarker
	}
}

// MappingDrift lists how m differs from the mapping deploy makes.
func MappingDrift(m *lambdatypes.EventSourceMappingConfiguration, maxConcurrency int32) []string {
	var drift []string
	if s := aws.ToString(m.State); s != "Enabled" && s != "Enabling" && s != "Creating" && s != "Updating" {
		drift = append(drift, fmt.Sprintf("state is %s; want Enabled", s))
	}
	if b := aws.ToInt32(m.BatchSize); b != DeployBatchSize {
		drift = append(drift, fmt.Sprintf("batch size is %d; want %d", b, DeployBatchSize))
	}
	if w := aws.ToInt32(m.MaximumBatchingWindowInSeconds); w != DeployBatchWindow {
		drift = append(drift, fmt.Sprintf("batching window is %ds; want %ds", w, DeployBatchWindow))
	}
	var types []string
	for _, t := range m.FunctionResponseTypes {
		types = append(types, string(t))
	}
	if !slices.Equal(types, []string{reportBatchItemFailures}) {
		drift = append(drift, fmt.Sprintf("function response types are %v; want [%s]", types, reportBatchItemFailures))
	}
	var concurrency int32
	if m.ScalingConfig != nil {
		concurrency = aws.ToInt32(m.ScalingConfig.MaximumConcurrency)
	}
	switch {
	case concurrency == 0:
		drift = append(drift, fmt.Sprintf("maximum concurrency is unset (no bound); want %d", maxConcurrency))
	case concurrency != maxConcurrency:
		drift = append(drift, fmt.Sprintf("maximum concurrency is %d; want %d", concurrency, maxConcurrency))
	}
	return drift
}

func (d *Deployer) checkMapping(ctx context.Context) (string, []string, error) {
	if d.st.functionARN == "" || d.st.queueARN == "" {
		return ActionCreate, nil, nil
	}
	m, err := StackMapping(ctx, d.CP.Lambda, d.Spec.FunctionName(), d.st.queueARN)
	if err != nil {
		return "", nil, err
	}
	if m == nil {
		return ActionCreate, nil, nil
	}
	want := d.Spec.MaximumConcurrency
	if d.Spec.AcceptSettings && m.ScalingConfig != nil && aws.ToInt32(m.ScalingConfig.MaximumConcurrency) > 0 {
		want = aws.ToInt32(m.ScalingConfig.MaximumConcurrency)
	}
	if drift := MappingDrift(m, want); len(drift) > 0 {
		return ActionUpdate, drift, nil
	}
	return ActionNone, nil, nil
}

func (d *Deployer) applyMapping(ctx context.Context, action string) error {
	scaling := &lambdatypes.ScalingConfig{MaximumConcurrency: aws.Int32(d.Spec.MaximumConcurrency)}
	if action == ActionUpdate {
		m, err := StackMapping(ctx, d.CP.Lambda, d.Spec.FunctionName(), d.st.queueARN)
		if err != nil || m == nil {
			return err
		}
		_, err = d.CP.Lambda.UpdateEventSourceMapping(ctx, &lambda.UpdateEventSourceMappingInput{
			UUID: m.UUID, Enabled: aws.Bool(true), BatchSize: aws.Int32(DeployBatchSize),
			MaximumBatchingWindowInSeconds: aws.Int32(DeployBatchWindow),
			FunctionResponseTypes:          []lambdatypes.FunctionResponseType{reportBatchItemFailures},
			ScalingConfig:                  scaling,
		})
		return Explain(err)
	}
	_, err := d.CP.Lambda.CreateEventSourceMapping(ctx, &lambda.CreateEventSourceMappingInput{
		FunctionName: aws.String(d.Spec.FunctionName()), EventSourceArn: aws.String(d.st.queueARN),
		Enabled: aws.Bool(true), BatchSize: aws.Int32(DeployBatchSize),
		MaximumBatchingWindowInSeconds: aws.Int32(DeployBatchWindow),
		FunctionResponseTypes:          []lambdatypes.FunctionResponseType{reportBatchItemFailures},
		ScalingConfig:                  scaling,
		Tags:                           d.tags(),
	})
	return Explain(err)
}

// serverFault reports whether err is an HTTP 5xx answer (after retries).
func serverFault(err error) bool {
	var re *smithyhttp.ResponseError
	return errors.As(err, &re) && re.HTTPStatusCode() >= 500
}
