package awsops

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"slices"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsmiddleware "github.com/aws/aws-sdk-go-v2/aws/middleware"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials/ec2rolecreds"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	dynamotypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"
	"github.com/aws/smithy-go"
	"github.com/aws/smithy-go/logging"
	"github.com/aws/smithy-go/middleware"

	socksconfig "github.com/socks-dev/socks/config"
	"github.com/socks-dev/socks/internal/infile"
	"github.com/socks-dev/socks/internal/loopback"
)

// Settings select the AWS account, region and endpoint socks talks to.
type Settings struct {
	// Profile is a shared config profile ("" for the SDK's default chain).
	Profile string
	// Region overrides the region of the environment and the profile.
	Region string
	// RegionFrom names where Region came from, as the user would change
	// it ("--region", "$SOCKS_REGION", "region of profile P in config
	// file F"); "" is --region.
	RegionFrom string
	// EndpointURL points every client at an emulator or a proxy (for example
	// DynamoDB Local). Empty means the real AWS endpoints. LoadConfig does
	// not use it: pass it to NewDynamoDB and NewSQS.
	EndpointURL string
	// Version goes into the user agent as "socks/VERSION" ("dev" if empty).
	Version string
}

// credentialsTimeout bounds the credentials check of LoadConfig: without it
// a machine with no credentials waits for the EC2 metadata service.
const credentialsTimeout = 5 * time.Second

// ErrNoRegion says that no region was configured.
var ErrNoRegion = errors.New("no AWS region: set --region, AWS_REGION or a profile's region")

// NoCredentialsError says that the SDK found no usable credentials.
type NoCredentialsError struct {
	// Err is the SDK's error (kept for errors.As, not always shown).
	Err error
	// NoneConfigured is true when nothing gave credentials: no profile,
	// no keys, no web identity or container variables, and the SDK's last
	// resort, the EC2 instance metadata service, had none either (on a
	// laptop it cannot be reached at all).
	NoneConfigured bool
	// Profile is the shared config profile in use (--profile or
	// AWS_PROFILE; "default" or "" when none was chosen).
	Profile string
}

func (e *NoCredentialsError) Error() string {
	if e.NoneConfigured && e.Profile != "" && e.Profile != "default" {
		return fmt.Sprintf("no AWS credentials found: AWS profile %q has no credentials: run `aws configure --profile %s` or `aws sso login --profile %s`, "+
			"or choose another profile; or use the local backend (--backend local)", e.Profile, e.Profile, e.Profile)
	}
	if e.NoneConfigured {
		// The SDK's words here are its whole provider chain ending in a
		// probe of the instance metadata service (169.254.169.254):
		// noise for the user, who only needs to know how to give
		// credentials.
		return "no AWS credentials found: set AWS_PROFILE (or --profile) to a profile made by `aws configure` or `aws sso login`, " +
			"or set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (on EC2, ECS or Lambda: give it a role); " +
			"or use the local backend (--backend local)"
	}
	source := "the configured AWS credentials"
	if e.Profile != "" {
		source = fmt.Sprintf("the credentials of AWS profile %q", e.Profile)
	}
	return "no AWS credentials found: " + source + " could not be retrieved (refresh them, for example `aws sso login`, " +
		"or set AWS_PROFILE or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY): " + e.Err.Error()
}

func (e *NoCredentialsError) Unwrap() error { return e.Err }

// LoadConfig is the one place socks loads AWS configuration: the shared
// config and credentials files, the environment, the profile and region of
// s, the socks user agent and the SDK's standard retryer. It fails with
// ErrNoRegion when no region is set anywhere and with a *NoCredentialsError
// when no credentials can be retrieved.
func LoadConfig(ctx context.Context, s Settings) (aws.Config, error) {
	version := s.Version
	if version == "" {
		version = "dev"
	}
	opts := []func(*config.LoadOptions) error{
		config.WithAPIOptions([]func(*middleware.Stack) error{
			awsmiddleware.AddUserAgentKeyValue("socks", version),
		}),
		config.WithRetryer(func() aws.Retryer { return retry.NewStandard() }),
		// The SDK's own log lines ("SDK ... WARN falling back to IMDSv1",
		// a checksum warning on DynamoDB Local's error answers) are for
		// SDK developers; socks reports what fails in its own words.
		config.WithLogger(logging.Nop{}),
		// An endpoint URL on "localhost." is this machine's (an
		// emulator; see OnThisMachine) and is dialled there.
		config.WithHTTPClient(awshttp.NewBuildableClient().WithTransportOptions(loopback.Transport)),
	}
	if s.Region != "" {
		opts = append(opts, config.WithRegion(s.Region))
	}
	if s.Profile != "" {
		opts = append(opts, config.WithSharedConfigProfile(s.Profile))
	}
	if err := checkSharedFiles(); err != nil {
		return aws.Config{}, err
	}
	cfg, err := config.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		var missing config.SharedConfigProfileNotExistError
		if errors.As(err, &missing) {
			return aws.Config{}, fmt.Errorf("AWS profile %q is not configured: check --profile or AWS_PROFILE against ~/.aws/config: %w", missing.Profile, err)
		}
		return aws.Config{}, fmt.Errorf("loading the AWS configuration: %w", err)
	}
	if cfg.Region == "" {
		return aws.Config{}, ErrNoRegion
	}
	// Each request's body is the transport's own (see ownBodyClient).
	// Set after loading: the loader adds a custom CA bundle to the
	// buildable client it was given.
	cfg.HTTPClient = withOwnBodies(cfg.HTTPClient)
	// Every endpoint has the region as a host label: one with a dot
	// would send the calls to another host name.
	if err := socksconfig.CheckRegion(cfg.Region, regionSource(cfg, s)); err != nil {
		return aws.Config{}, err
	}
	if cfg.Credentials == nil {
		return aws.Config{}, &NoCredentialsError{Err: errors.New("no credentials provider is configured"), NoneConfigured: true}
	}
	cctx, cancel := context.WithTimeout(ctx, credentialsTimeout)
	defer cancel()
	if _, err := cfg.Credentials.Retrieve(cctx); err != nil {
		// The SDK falls back to the instance metadata provider only when
		// nothing else is configured. IMDS stays on: on EC2 and ECS it is
		// how credentials are found; only the error is shaped.
		fellBack := aws.IsCredentialsProvider(cfg.Credentials, (*ec2rolecreds.Provider)(nil))
		return aws.Config{}, &NoCredentialsError{Err: err, NoneConfigured: fellBack, Profile: profileOf(cfg, s.Profile)}
	}
	return cfg, nil
}

// checkSharedFiles refuses a shared AWS config or credentials file (at
// AWS_CONFIG_FILE and AWS_SHARED_CREDENTIALS_FILE, or the SDK's default
// ~/.aws/config and ~/.aws/credentials) that is not a regular file: the
// SDK reads each whole, and a FIFO held every AWS command in that read for
// ever, out of reach of Ctrl-C; a directory got the SDK's "read all". A
// missing file is the SDK's to judge. The cost is a stat of each.
func checkSharedFiles() error {
	for _, f := range []struct {
		env, what string
		defaults  []string
	}{
		{"AWS_CONFIG_FILE", "config", config.DefaultSharedConfigFiles},
		{"AWS_SHARED_CREDENTIALS_FILE", "credentials", config.DefaultSharedCredentialsFiles},
	} {
		names, from := f.defaults, "the default"
		if v := os.Getenv(f.env); v != "" {
			names, from = []string{v}, "$"+f.env
		}
		for _, name := range names {
			var nr *infile.NotRegularError
			if err := infile.CheckRegular(name); errors.As(err, &nr) {
				return fmt.Errorf("the shared AWS %s file %s (%s) is %s, not a regular file: the AWS SDK would wait on it or fail; point %s at a file (or %s to read none)",
					f.what, name, from, nr.What, f.env, os.DevNull)
			}
		}
	}
	return nil
}

// regionSource names where the region of cfg, loaded with s, came from:
// s's own, or the SDK's environment variable or shared config profile.
func regionSource(cfg aws.Config, s Settings) string {
	if s.Region != "" {
		return cmp.Or(s.RegionFrom, "--region")
	}
	file := config.DefaultSharedConfigFilename()
	for _, src := range cfg.ConfigSources {
		if e, ok := src.(config.EnvConfig); ok {
			file = cmp.Or(e.SharedConfigFile, file)
			if e.Region == cfg.Region {
				if os.Getenv("AWS_REGION") == cfg.Region {
					return "$AWS_REGION"
				}
				return "$AWS_DEFAULT_REGION"
			}
		}
	}
	for _, src := range cfg.ConfigSources {
		if c, ok := src.(config.SharedConfig); ok && c.Region == cfg.Region {
			return fmt.Sprintf("the region of AWS profile %q in %s", c.Profile, file)
		}
	}
	return "--region, AWS_REGION or the AWS profile's region"
}

// profileOf is the shared config profile cfg was loaded with (AWS_PROFILE
// included), or asked when the sources do not say.
func profileOf(cfg aws.Config, asked string) string {
	for _, src := range cfg.ConfigSources {
		switch c := src.(type) {
		case config.SharedConfig:
			return cmp.Or(c.Profile, asked)
		case *config.SharedConfig:
			return cmp.Or(c.Profile, asked)
		}
	}
	return asked
}

// NewDynamoDB returns a DynamoDB client for cfg, sending every request to
// endpointURL when it is not empty. With an endpoint override (an emulator
// such as DynamoDB Local, whose error responses carry no X-Amz-Crc32 header)
// the CRC32 response check is off, which also silences the SDK's spurious
// "failed to close HTTP response body" warning (see skipCRC). Each attempt
// is bounded (see DefaultAttemptTimeout and WithAttemptTimeout), and each
// request body is the transport's own (see ownBodyClient).
func NewDynamoDB(cfg aws.Config, endpointURL string, opts ...ClientOption) *dynamodb.Client {
	c := resolveClientOptions(opts)
	return dynamodb.NewFromConfig(cfg, func(o *dynamodb.Options) {
		o.HTTPClient = withOwnBodies(o.HTTPClient)
		o.APIOptions = append(slices.Clip(o.APIOptions), addAttemptTimeout(c.attemptTimeout, 0))
		if endpointURL != "" {
			o.BaseEndpoint = aws.String(endpointURL)
			o.DisableValidateResponseChecksum = true
		}
	})
}

// NewSQS returns an SQS client (JSON protocol) for cfg, sending every
// request to endpointURL when it is not empty. Each attempt is bounded
// (see DefaultAttemptTimeout and WithAttemptTimeout); ReceiveMessage gets
// its long poll on top. Each request body is the transport's own (see
// ownBodyClient).
func NewSQS(cfg aws.Config, endpointURL string, opts ...ClientOption) *sqs.Client {
	c := resolveClientOptions(opts)
	return sqs.NewFromConfig(cfg, func(o *sqs.Options) {
		o.HTTPClient = withOwnBodies(o.HTTPClient)
		o.APIOptions = append(slices.Clip(o.APIOptions), addAttemptTimeout(c.attemptTimeout, 0))
		if endpointURL != "" {
			o.BaseEndpoint = aws.String(endpointURL)
		}
	})
}

// ResourceError is an AWS call that failed on a named table or queue. The
// store and the queue return their SDK failures wrapped in it, so Explain
// can say which resource is missing or forbidden.
type ResourceError struct {
	// Op is the API operation ("Query", "SendMessageBatch", ...).
	Op string
	// Kind is "table" or "queue".
	Kind string
	// Name is the table or queue name.
	Name string
	// Index is the table's index the call read ("" for the table itself).
	Index string
	Err   error
}

func (e *ResourceError) Error() string {
	if msg := explain(e.Err, e); msg != "" {
		return msg
	}
	if e.Index != "" {
		return fmt.Sprintf("%s on index %s of %s %s: %v", e.Op, e.Index, e.Kind, e.Name, e.Err)
	}
	return fmt.Sprintf("%s on %s %s: %v", e.Op, e.Kind, e.Name, e.Err)
}

func (e *ResourceError) Unwrap() error { return e.Err }

// wrapTable wraps a DynamoDB failure on table (nil stays nil; context
// errors are returned as they are).
func wrapTable(op, table string, err error) error {
	return wrapResource(op, "table", table, "", err)
}

// wrapIndex wraps a DynamoDB failure of a Query or Scan on index of table
// ("" for the table itself).
func wrapIndex(op, table, index string, err error) error {
	return wrapResource(op, "table", table, index, err)
}

// wrapQueue wraps an SQS failure on queue.
func wrapQueue(op, queue string, err error) error {
	return wrapResource(op, "queue", queue, "", err)
}

func wrapResource(op, kind, name, index string, err error) error {
	if err == nil {
		return nil
	}
	var re *ResourceError
	if errors.As(err, &re) {
		return err
	}
	return &ResourceError{Op: op, Kind: kind, Name: name, Index: index, Err: err}
}

// ErrThrottled is in the errors of a batch call whose items DynamoDB kept
// leaving unprocessed, throttled, past the bounded attempts (the SDK's
// own throttling errors are told by retry.IsErrorThrottles).
var ErrThrottled = errors.New("throttled")

// ExplainedError is an AWS failure with an actionable message. It unwraps
// to the SDK error, so errors.As on the typed SDK errors still works.
type ExplainedError struct {
	Msg string
	Err error
}

func (e *ExplainedError) Error() string { return e.Msg }
func (e *ExplainedError) Unwrap() error { return e.Err }

// Explain turns an AWS SDK failure into an error that says what to do:
// a missing table, index or queue, a queue deleted under a minute ago,
// denied or rejected credentials, an endpoint that cannot be reached or
// does not answer (within an attempt's bound, or the time the caller gave
// the call). It recognises the SDK's
// typed errors and the error codes of smithy.APIError, never message text.
// Other errors are returned unchanged (nil stays nil).
func Explain(err error) error {
	if err == nil {
		return nil
	}
	var ee *ExplainedError
	if errors.As(err, &ee) {
		return err
	}
	var re *ResourceError
	errors.As(err, &re)
	if msg := explain(err, re); msg != "" {
		return &ExplainedError{Msg: msg, Err: err}
	}
	return err
}

// Error codes of credential failures (smithy.APIError.ErrorCode).
var (
	accessDeniedCodes = map[string]bool{
		"AccessDenied":              true,
		"AccessDeniedException":     true,
		"UnauthorizedOperation":     true,
		"AuthorizationError":        true,
		"KMS.AccessDeniedException": true,
	}
	rejectedCredentialCodes = map[string]bool{
		"UnrecognizedClientException": true,
		"InvalidClientTokenId":        true,
		"InvalidSignatureException":   true,
		"SignatureDoesNotMatch":       true,
		"IncompleteSignature":         true,
		"MissingAuthenticationToken":  true,
	}
	expiredCredentialCodes = map[string]bool{
		"ExpiredToken":          true,
		"ExpiredTokenException": true,
		"RequestExpired":        true,
	}
)

// asLambda is set in a Lambda function (ExplainAsLambda).
var asLambda atomic.Bool

// OnThisMachine reports whether rawURL's host is this machine (an
// emulator).
func OnThisMachine(rawURL string) bool {
	u, err := url.Parse(rawURL)
	if err != nil || u.Host == "" {
		return false
	}
	return loopback.Name(u.Hostname())
}

// isThrottle reports whether err is a throttling failure, as the SDK's
// retryer tells them (retry.DefaultThrottles).
func isThrottle(err error) bool {
	return retry.IsErrorThrottles(retry.DefaultThrottles).IsErrorThrottle(err) == aws.TrueTernary
}

// isCode reports whether err is an AWS API error with one of codes.
func isCode(err error, codes ...string) bool {
	var ae smithy.APIError
	return errors.As(err, &ae) && slices.Contains(codes, ae.ErrorCode())
}

// ExplainAsLambda makes the explanations of this process's AWS failures
// (Explain, and the errors of the stores and queues) fit a Lambda
// function, or a command again when on is false: they name the settings
// of the function's environment, not a command's flags, and a call cut
// off by its deadline is said to have run out of the invocation's time
// (the fan-out or settling window, which may have been a moment), not to
// have met an endpoint that does not answer. lambdafn.Main sets it before
// the first invocation.
func ExplainAsLambda(on bool) { asLambda.Store(on) }

// advice is what explain tells the reader to check, where it runs.
type advice struct {
	// stack and region: where the tables and queues are looked for.
	stackRegion string
	// endpoint: the endpoint setting.
	endpoint string
	// noAnswer: an endpoint that takes requests and answers none.
	noAnswer string
	// unreachable: an endpoint that cannot be reached.
	unreachable string
	// cutOff: a call whose own deadline passed while it was under way.
	cutOff string
}

const commandNoAnswer = "the endpoint takes requests but does not answer them; check --endpoint-url (is the emulator stuck?) and the network"

var (
	commandAdvice = advice{
		stackRegion: "--stack and --region",
		endpoint:    "--endpoint-url and --region",
		noAnswer:    commandNoAnswer,
		unreachable: "check --endpoint-url (is the emulator running?) and the network",
		cutOff:      commandNoAnswer,
	}
	lambdaAdvice = advice{
		stackRegion: "SOCKS_STACK in the function's environment (its tables and queues are those of the function's region)",
		endpoint:    "SOCKS_ENDPOINT_URL in the function's environment, when it is set",
		noAnswer:    "the endpoint takes requests but does not answer them; check the function's network and, when it is set, SOCKS_ENDPOINT_URL in its environment",
		unreachable: "check the function's network and, when it is set, SOCKS_ENDPOINT_URL in its environment",
		cutOff:      "the Lambda invocation's time ran out while the call was under way (the time left to its fan-out or settling, which may have been short)",
	}
)

// stackFrom, when set, names where a command's stack and region came
// from (ExplainStackFrom).
var stackFrom atomic.Pointer[string]

// ExplainStackFrom makes the explanations of this process's AWS failures
// name where the command's stack and region were set (origins, as
// config.Config.Origins says it: "$SOCKS_STACK and --region"), where a
// missing table or queue said to check --stack and --region whatever set
// them. The command's Factory sets it as it opens the AWS backend.
func ExplainStackFrom(origins string) { stackFrom.Store(&origins) }

func currentAdvice() advice {
	if asLambda.Load() {
		return lambdaAdvice
	}
	adv := commandAdvice
	if o := stackFrom.Load(); o != nil && *o != "" {
		adv.stackRegion = *o
	}
	return adv
}

// explain returns the actionable message for err, or "" when there is none.
// re, when not nil, names the call and the resource.
func explain(err error, re *ResourceError) string {
	var op, kind, name, index string
	if re != nil {
		op, kind, name, index = re.Op, re.Kind, re.Name, re.Index
	}
	if op == "" {
		var oe *smithy.OperationError
		if errors.As(err, &oe) {
			op = oe.OperationName
		}
	}
	resource := "the resource"
	if name != "" {
		resource = kind + " " + name
	}
	adv := currentAdvice()

	var tableMissing *dynamotypes.ResourceNotFoundException
	if errors.As(err, &tableMissing) {
		if name == "" || kind != "table" {
			return "a DynamoDB table (or index) does not exist: run `socks provision`, or check " + adv.stackRegion + " (" + tableMissing.ErrorMessage() + ")"
		}
		return fmt.Sprintf("table %s does not exist: run `socks provision`, or check %s", name, adv.stackRegion)
	}
	var queueMissing *sqstypes.QueueDoesNotExist
	if errors.As(err, &queueMissing) {
		if name == "" || kind != "queue" {
			return "an SQS queue does not exist: run `socks provision`, or check " + adv.stackRegion
		}
		return fmt.Sprintf("queue %s does not exist: run `socks provision`, or check %s", name, adv.stackRegion)
	}

	var apiErr smithy.APIError
	if errors.As(err, &apiErr) {
		code := apiErr.ErrorCode()
		var deletedRecently *sqstypes.QueueDeletedRecently
		switch {
		case errors.As(err, &deletedRecently) || code == "AWS.SimpleQueueService.QueueDeletedRecently":
			// A teardown deleted the queue under a minute ago: SQS
			// refuses the name for 60 s and does not say how long is
			// left.
			queue := "the queue"
			if name != "" {
				queue = resource
			}
			return fmt.Sprintf("%s was deleted less than 60 seconds ago, and SQS refuses to make a queue of the same name until then: wait 60 seconds and run the command again", queue)
		case code == "ValidationException" && index != "" && kind == "table":
			// DynamoDB answers a read of an index the table lacks (or
			// one still being built) with a ValidationException.
			return fmt.Sprintf("%s on index %s of table %s was refused (%s): the index is missing or still being built; "+
				"run `socks provision` or `socks doctor` to see the command that adds it", op, index, name, apiErr.ErrorMessage())
		case accessDeniedCodes[code]:
			if op == "" {
				op = "this operation"
			}
			return fmt.Sprintf("access denied: the credentials lack permission for %s on %s (%s)", op, resource, apiErr.ErrorMessage())
		case rejectedCredentialCodes[code]:
			return fmt.Sprintf("the AWS credentials were rejected (%s): check the access key, the profile and the region", code)
		case expiredCredentialCodes[code]:
			return fmt.Sprintf("the AWS credentials have expired (%s): refresh them (for example `aws sso login`)", code)
		}
		return ""
	}

	// call names the call that got no answer: the service, the
	// operation and the resource.
	call := func(fallback string) string {
		c := cmp.Or(op, fallback)
		var oe *smithy.OperationError
		if errors.As(err, &oe) && oe.ServiceID != "" {
			c = oe.ServiceID + " " + c
		}
		if name != "" {
			c += " on " + resource
		}
		return c
	}
	var hung *AttemptTimeoutError
	if errors.As(err, &hung) {
		tries := "its attempt"
		var spent *retry.MaxAttemptsError
		if errors.As(err, &spent) && spent.Attempt > 1 {
			tries = fmt.Sprintf("each of its %d attempts", spent.Attempt)
		}
		return fmt.Sprintf("%s got no answer within %s on %s: %s", call(hung.Op), hung.Bound, tries, adv.noAnswer)
	}
	if op != "" && notSent(err) {
		// The caller's time was spent before the call began (the Lambda
		// function's settling after its window): no request was made, so
		// nothing is known of the endpoint.
		return fmt.Sprintf("%s was not sent: the time it was given had run out before it started", call(""))
	}
	if op != "" && errors.Is(err, context.DeadlineExceeded) {
		// The caller's own deadline passed before an attempt's bound
		// (the SDK's "StatusCode: 0, canceled, context deadline
		// exceeded").
		return fmt.Sprintf("%s got no answer in the time it was given: %s", call(""), adv.cutOff)
	}
	var dnsErr *net.DNSError
	if errors.As(err, &dnsErr) {
		return fmt.Sprintf("cannot reach %s: the name %s does not resolve (%v); check %s", endpointOf(err, dnsErr.Name), dnsErr.Name, dnsErr.Err, adv.endpoint)
	}
	var opErr *net.OpError
	if errors.As(err, &opErr) {
		addr := ""
		if opErr.Addr != nil {
			addr = opErr.Addr.String()
		}
		return fmt.Sprintf("cannot reach %s: %v; %s", endpointOf(err, addr), opErr.Err, adv.unreachable)
	}
	return ""
}

// notSent reports whether err is a call the SDK did not make because its
// context was past its deadline already: the retry middleware then
// returns the context's error itself, before any attempt (one cut short
// in flight or in a backoff carries the response or cancel error).
func notSent(err error) bool {
	var oe *smithy.OperationError
	return errors.As(err, &oe) && oe.Err == context.DeadlineExceeded
}

// endpointOf names the endpoint a failed request went to: the URL's scheme
// and host when the error carries it, else fallback.
func endpointOf(err error, fallback string) string {
	var ue *url.Error
	if errors.As(err, &ue) {
		if u, perr := url.Parse(ue.URL); perr == nil && u.Host != "" {
			return u.Scheme + "://" + u.Host
		}
	}
	if fallback == "" {
		return "the AWS endpoint"
	}
	return fallback
}
