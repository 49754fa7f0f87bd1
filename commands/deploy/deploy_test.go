package deploy

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/BurntSushi/toml"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/eventbridge"
	evtypes "github.com/aws/aws-sdk-go-v2/service/eventbridge/types"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/sns"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/socks-dev/socks/awsops"
	"github.com/socks-dev/socks/commands/cmdutil"
	"github.com/socks-dev/socks/commands/provision"
	"github.com/socks-dev/socks/config"
	"github.com/socks-dev/socks/internal/emulatortest"
	"github.com/socks-dev/socks/internal/jsondoc"
	"github.com/socks-dev/socks/internal/refusing"
	"github.com/socks-dev/socks/iostreams"
	"github.com/socks-dev/socks/pubsub"
)

func stackName(prefix string) string {
	var b [5]byte
	_, _ = rand.Read(b[:])
	return prefix + "-" + hex.EncodeToString(b[:])
}

// TestDeployCommandOnMoto runs `socks deploy` as the command does, on moto:
// a dry run on an empty account
// lists every resource and changes nothing; the deploy prints both URLs
// and writes them into the selected profile; a second deploy says
// "nothing to do".
func TestDeployCommandOnMoto(t *testing.T) {
	cfg, moto := emulatortest.MotoAWS(t)
	cp := awsops.NewControlPlane(cfg, awsops.Endpoints{All: moto})
	stack := stackName("cmd")
	cfgFile := filepath.Join(t.TempDir(), "config.toml")
	handWritten := "# my socks\ndefault_profile = \"moto\" # the emulator\n\n[profiles.moto]\nbackend = \"aws\" # keep\n\n# the end\n"
	if err := os.WriteFile(cfgFile, []byte(handWritten), 0o644); err != nil {
		t.Fatal(err)
	}
	arch := "arm64"
	if runtime.GOARCH == "amd64" {
		arch = "amd64"
	}
	// A package of the right shape: the function is not run here (awsops
	// runs the real one under the RIE), and building it would cost a
	// cross-compile of the whole binary.
	zipFile := shellZipFile(t)
	run := func(t *testing.T, dryRun bool, asJSON ...bool) (string, string) {
		t.Helper()
		ios, _, out, errOut := iostreams.Test()
		opts := &Options{
			IO: ios, Arch: arch, Stage: "prod", FunctionTimeout: 30 * time.Second, ThrottleBurst: 500, ThrottleRate: 1000,
			MaxConcurrency: 10, DryRun: dryRun, Wait: time.Minute, LambdaZip: zipFile, JSON: len(asJSON) > 0,
			MaxTopics: 20, MaxConnectionsPerGeek: 100,
			Target: func(context.Context) (*Target, error) {
				return &Target{CP: cp, Stack: stack, Region: cfg.Region, ConfigFile: cfgFile, Profile: "moto"}, nil
			},
		}
		if err := deployRun(t.Context(), opts); err != nil {
			t.Fatalf("deploy: %v\nstderr: %s", err, errOut)
		}
		return out.String(), errOut.String()
	}
	t.Cleanup(func() {
		d := &awsops.Deployer{CP: cp, Spec: awsops.DeploySpec{Stack: stack, Region: cfg.Region}}
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if steps, err := d.Deployed(ctx); err == nil {
			_ = d.Undeploy(ctx, steps)
		}
	})

	out, progress := run(t, true)
	for _, kind := range []string{"tables and queues", "log group", "websocket api", "role", "role policy", "function", "integration", "routes", "stage", "permission", "event source mapping"} {
		if !strings.Contains(out, "would create "+kind+" ") {
			t.Errorf("dry run does not list %s:\n%s", kind, out)
		}
	}
	if api, err := awsops.FindStackAPI(t.Context(), cp.APIGW, stack); err != nil || api != nil {
		t.Errorf("the dry run created an API (%v)", err)
	}
	// The plan is the answer, once: no progress line per resource
	// repeating it (TestADryRunShowsItsPlanOnce).
	if strings.Contains(progress, "would ") {
		t.Errorf("dry-run progress repeats the plan:\n%s", progress)
	}

	out, progress = run(t, false)
	if strings.Count(progress, "\n") < 11 {
		t.Errorf("progress, one line per resource:\n%s", progress)
	}
	if !strings.Contains(out, "websocket url: wss://") || !strings.Contains(out, "callback url:  https://") || !strings.Contains(out, "saved both into config profile moto") {
		t.Errorf("deploy output:\n%s", out)
	}
	var file config.File
	if _, err := toml.DecodeFile(cfgFile, &file); err != nil {
		t.Fatal(err)
	}
	p := file.Profiles["moto"]
	if !strings.HasPrefix(p.WebSocketURL, "wss://") || !strings.HasSuffix(p.WebSocketURL, "/prod") || !strings.HasPrefix(p.CallbackURL, "https://") || p.Stack != stack || p.Backend != "aws" {
		t.Errorf("profile after deploy: %+v", p)
	}
	// Only the keys deploy sets were added; the rest is as written.
	if got, want := readFile(t, cfgFile), strings.Replace(handWritten, "# keep\n", "# keep\nstack = \""+stack+"\"\nregion = \"us-east-1\"\ncallback_url = \""+
		p.CallbackURL+"\"\nwebsocket_url = \""+p.WebSocketURL+"\"\n", 1); got != want {
		t.Errorf("config file after deploy:\n%s\nwant\n%s", got, want)
	}
	// The profile is what the other commands resolve.
	home := t.TempDir()
	resolved, err := config.Resolve(config.Flags{ConfigFile: cfgFile}, func(k string) string {
		if k == "HOME" {
			return home
		}
		return ""
	})
	if err != nil || resolved.AWS.CallbackURL != p.CallbackURL {
		t.Errorf("resolved %+v, %v", resolved.AWS, err)
	}

	fn, err := cp.Lambda.GetFunction(t.Context(), &lambda.GetFunctionInput{FunctionName: aws.String(stack + "-socks")})
	if err != nil {
		t.Fatal(err)
	}
	if env := fn.Configuration.Environment; env == nil || env.Variables["SOCKS_MAX_TOPICS"] != "20" || env.Variables["SOCKS_MAX_CONNECTIONS_PER_GEEK"] != "100" {
		t.Errorf("--max-topics 20 --max-connections-per-geek 100: the function's environment is %+v", env)
	}

	out, _ = run(t, false)
	if !strings.HasPrefix(out, "nothing to do: ") {
		t.Errorf("second deploy:\n%s", out)
	}

	// A profile written as an inline table cannot be edited in place:
	// deploy rewrites the file, keeps the original and says so.
	inline := "default_profile = \"moto\"\nprofiles = { moto = { backend = \"aws\" } } # inline\n"
	if err := os.WriteFile(cfgFile, []byte(inline), 0o644); err != nil {
		t.Fatal(err)
	}
	out, progress = run(t, false, true)
	if !strings.Contains(progress, "warning: "+cfgFile+" could not be edited in place") || !strings.Contains(progress, cfgFile+".bak") {
		t.Errorf("no warning of the rewrite on stderr:\n%s", progress)
	}
	if readFile(t, cfgFile+".bak") != inline {
		t.Errorf("the original was not kept in %s.bak", cfgFile)
	}
	var summary struct {
		Stack        string              `json:"stack"`
		Changed      bool                `json:"changed"`
		WebSocketURL string              `json:"websocketUrl"`
		CallbackURL  string              `json:"callbackUrl"`
		Steps        []awsops.DeployStep `json:"steps"`
		Warning      string              `json:"configWarning"`
	}
	if err := json.Unmarshal([]byte(out), &summary); err != nil {
		t.Fatalf("--json: %v\n%s", err, out)
	}
	if summary.Stack != stack || summary.Changed || summary.WebSocketURL != p.WebSocketURL || summary.CallbackURL != p.CallbackURL || len(summary.Steps) != 11 {
		t.Errorf("--json summary: %+v", summary)
	}
	if !strings.Contains(summary.Warning, "could not be edited in place") || !strings.Contains(summary.Warning, cfgFile+".bak") {
		t.Errorf("--json: configWarning %q; want the rewrite and the .bak named", summary.Warning)
	}

	t.Run("producers and the event mapping", func(t *testing.T) {
		producersOnMoto(t, cfg, cp, stack, zipFile, cfgFile, arch)
	})
}

// producersOnMoto deploys the producers to the stack TestDeployCommandOnMoto
// made, with the flags as the command line gives them, and an event
// mapping in the profile; reads them back with the SDK; a second deploy
// says nothing to do; a disabled rule is drift that deploy puts right; and
// teardown's same flags remove them.
func producersOnMoto(t *testing.T, cfg aws.Config, cp *awsops.ControlPlane, stack, zipFile, cfgFile, arch string) {
	ctx := t.Context()
	moto := emulatortest.Moto(t)
	snsc := awsops.NewSNS(cfg, moto)
	ev := awsops.NewEventBridge(cfg, moto)
	topic, err := snsc.CreateTopic(ctx, &sns.CreateTopicInput{Name: aws.String(stack + "-jobs")})
	if err != nil {
		t.Fatal(err)
	}
	topicARN := aws.ToString(topic.TopicArn)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		_, _ = awsops.DeleteProducers(ctx, ev, snsc, cp.SQS, awsops.QueuesFor(stack), awsops.Producers{Rule: &awsops.EventRule{Name: awsops.RuleFor(stack)}, Topics: []string{topicARN}})
		_, _ = snsc.DeleteTopic(ctx, &sns.DeleteTopicInput{TopicArn: aws.String(topicARN)})
	})
	mapping := &pubsub.Mapping{Topics: []string{"/detail/entityId"}, Users: "/detail/userId"}
	run := func(t *testing.T, dryRun bool) string {
		t.Helper()
		f := &cmdutil.Factory{Getenv: func(string) string { return "" }}
		ios, _, out, errOut := iostreams.Test()
		f.IOStreams = ios
		cmd := NewCmdDeploy(f, func(ctx context.Context, opts *Options) error {
			opts.Target = func(context.Context) (*Target, error) {
				return &Target{CP: cp, Stack: stack, Region: cfg.Region, ConfigFile: cfgFile, Profile: "moto", Mapping: mapping}, nil
			}
			return deployRun(ctx, opts)
		})
		args := []string{"--lambda-zip", zipFile, "--arch", arch, "--function-timeout", "30s",
			"--eventbridge-rule", "--source", "com.example.site", "--detail-type", "EntityChanged", "--sns-topic", topicARN}
		if dryRun {
			args = append(args, "--dry-run")
		}
		cmd.SetArgs(args)
		cmd.SetOut(io.Discard)
		cmd.SetErr(io.Discard)
		if err := cmd.ExecuteContext(ctx); err != nil {
			t.Fatalf("deploy %v: %v\nstderr: %s", args, err, errOut)
		}
		return out.String()
	}

	out := run(t, true)
	if !strings.Contains(out, "would create producers rule default/"+awsops.RuleFor(stack)+", topic "+topicARN) ||
		!strings.Contains(out, "would update function ") || !strings.Contains(out, "SOCKS_EVENT_MAPPING") {
		t.Errorf("dry run with producers and a mapping:\n%s", out)
	}
	if _, err := ev.DescribeRule(ctx, &eventbridge.DescribeRuleInput{Name: aws.String(awsops.RuleFor(stack))}); err == nil {
		t.Errorf("the dry run made the rule")
	}

	out = run(t, false)
	if !strings.Contains(out, "deployed stack "+stack+": 2 of 12 resources") {
		t.Errorf("deploy with producers:\n%s", out)
	}

	// Read it all back.
	queues := awsops.QueuesFor(stack)
	qurl, err := cp.SQS.GetQueueUrl(ctx, &sqs.GetQueueUrlInput{QueueName: aws.String(queues.Main)})
	if err != nil {
		t.Fatal(err)
	}
	attrs, err := cp.SQS.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{QueueUrl: qurl.QueueUrl, AttributeNames: []sqstypes.QueueAttributeName{sqstypes.QueueAttributeNameAll}})
	if err != nil {
		t.Fatal(err)
	}
	queueARN := attrs.Attributes["QueueArn"]
	rule, err := ev.DescribeRule(ctx, &eventbridge.DescribeRuleInput{Name: aws.String(awsops.RuleFor(stack))})
	if err != nil {
		t.Fatalf("the rule: %v", err)
	}
	var pattern map[string][]string
	if err := json.Unmarshal([]byte(aws.ToString(rule.EventPattern)), &pattern); err != nil ||
		!slices.Equal(pattern["source"], []string{"com.example.site"}) || !slices.Equal(pattern["detail-type"], []string{"EntityChanged"}) || rule.State != evtypes.RuleStateEnabled {
		t.Errorf("rule pattern %s, state %s (%v)", aws.ToString(rule.EventPattern), rule.State, err)
	}
	targets, err := ev.ListTargetsByRule(ctx, &eventbridge.ListTargetsByRuleInput{Rule: aws.String(awsops.RuleFor(stack))})
	if err != nil || len(targets.Targets) != 1 || aws.ToString(targets.Targets[0].Arn) != queueARN || aws.ToString(targets.Targets[0].Id) != awsops.RuleTargetID {
		t.Errorf("rule targets %+v (%v); want the queue %s", targets, err, queueARN)
	}
	subs, err := snsc.ListSubscriptionsByTopic(ctx, &sns.ListSubscriptionsByTopicInput{TopicArn: aws.String(topicARN)})
	if err != nil || len(subs.Subscriptions) != 1 || aws.ToString(subs.Subscriptions[0].Endpoint) != queueARN || aws.ToString(subs.Subscriptions[0].Protocol) != "sqs" {
		t.Errorf("subscriptions %+v (%v); want the queue", subs, err)
	}
	var policy struct {
		Statement []awsops.QueuePolicyStatement `json:"Statement"`
	}
	if err := json.Unmarshal([]byte(attrs.Attributes["Policy"]), &policy); err != nil {
		t.Fatalf("queue policy %q: %v", attrs.Attributes["Policy"], err)
	}
	for _, want := range []awsops.QueuePolicyStatement{
		awsops.SendStatement(awsops.EventsPrincipal, queueARN, aws.ToString(rule.Arn)),
		awsops.SendStatement(awsops.SNSPrincipal, queueARN, topicARN),
	} {
		if !slices.ContainsFunc(policy.Statement, func(s awsops.QueuePolicyStatement) bool {
			return s.Sid == want.Sid && s.Condition["ArnEquals"]["aws:SourceArn"] == want.Condition["ArnEquals"]["aws:SourceArn"] && s.Principal["Service"] == want.Principal["Service"]
		}) {
			t.Errorf("queue policy %+v has no statement %+v", policy.Statement, want)
		}
	}
	fn, err := cp.Lambda.GetFunction(ctx, &lambda.GetFunctionInput{FunctionName: aws.String(stack + "-socks")})
	if err != nil {
		t.Fatal(err)
	}
	var got pubsub.Mapping
	if err := json.Unmarshal([]byte(fn.Configuration.Environment.Variables[config.EnvMapping]), &got); err != nil || !slices.Equal(got.Topics, mapping.Topics) || got.Users != mapping.Users {
		t.Errorf("function %s = %q (%v)", config.EnvMapping, fn.Configuration.Environment.Variables[config.EnvMapping], err)
	}

	if out := run(t, false); !strings.HasPrefix(out, "nothing to do: all 12 resources") {
		t.Errorf("second deploy with producers:\n%s", out)
	}

	t.Run("a disabled rule is drift that deploy puts right", func(t *testing.T) {
		if _, err := ev.DisableRule(ctx, &eventbridge.DisableRuleInput{Name: aws.String(awsops.RuleFor(stack))}); err != nil {
			t.Fatal(err)
		}
		if out := run(t, true); !strings.Contains(out, "would update producers ") || !strings.Contains(out, "state is DISABLED; want ENABLED") {
			t.Errorf("dry run after the rule was disabled:\n%s", out)
		}
		run(t, false)
		if r, err := ev.DescribeRule(ctx, &eventbridge.DescribeRuleInput{Name: aws.String(awsops.RuleFor(stack))}); err != nil || r.State != evtypes.RuleStateEnabled {
			t.Errorf("after deploy the rule is %v (%v)", r.State, err)
		}
		if out := run(t, false); !strings.HasPrefix(out, "nothing to do: ") {
			t.Errorf("deploy after the fix:\n%s", out)
		}
	})

	t.Run("teardown with the same flags removes them", func(t *testing.T) {
		f := &cmdutil.Factory{Getenv: func(string) string { return "" }}
		f.IOStreams, _, _, _ = iostreams.Test()
		var td *provision.TeardownOptions
		cmd := provision.NewCmdTeardown(f, func(_ context.Context, o *provision.TeardownOptions) error { td = o; return nil })
		cmd.SetArgs([]string{"--yes", "--eventbridge-rule", "--sns-topic", topicARN})
		if err := cmd.Execute(); err != nil {
			t.Fatal(err)
		}
		p, err := td.Producers(stack)
		if err != nil {
			t.Fatal(err)
		}
		removed, err := awsops.DeleteProducers(ctx, cp.Events, cp.SNS, cp.SQS, queues, p)
		if err != nil || len(removed) != 2 {
			t.Errorf("teardown removed %v (%v); want the rule and the subscription", removed, err)
		}
		if _, err := ev.DescribeRule(ctx, &eventbridge.DescribeRuleInput{Name: aws.String(awsops.RuleFor(stack))}); err == nil {
			t.Errorf("the rule is still there")
		}
		if subs, err := snsc.ListSubscriptionsByTopic(ctx, &sns.ListSubscriptionsByTopicInput{TopicArn: aws.String(topicARN)}); err != nil || len(subs.Subscriptions) != 0 {
			t.Errorf("subscriptions left: %+v (%v)", subs, err)
		}
	})
}

func TestDeployRefusesLimitsOutOfRange(t *testing.T) {
	for _, tc := range []struct {
		topics, perGeek int
		want            string
	}{
		{0, 100, "--max-topics 0 is out of range"},
		{51, 100, "--max-topics 51 is out of range"},
		{50, 0, "--max-connections-per-geek must be at least 1"},
	} {
		ios, _, _, _ := iostreams.Test()
		opts := &Options{
			IO: ios, Arch: "arm64", Stage: "prod", FunctionTimeout: 30 * time.Second, MaxConcurrency: 10, ThrottleBurst: 500, ThrottleRate: 1000, Wait: time.Minute,
			MaxTopics: tc.topics, MaxConnectionsPerGeek: tc.perGeek,
			Target: func(context.Context) (*Target, error) {
				t.Fatal("a refused deploy resolved its target")
				return nil, nil
			},
		}
		err := deployRun(t.Context(), opts)
		var fe *cmdutil.FlagError
		if err == nil || !strings.Contains(err.Error(), tc.want) || !errors.As(err, &fe) {
			t.Errorf("--max-topics %d --max-connections-per-geek %d: err = %v, want a usage error saying %q", tc.topics, tc.perGeek, err, tc.want)
		}
	}
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestDeployRefusesSettingsItCannotKeep: a throttle of 0 or below was
// silently deployed as the default; a concurrency past Lambda's 1000 and
// a stage name API Gateway refuses failed only at the end, after the
// function and the API were made.
func TestDeployRefusesSettingsItCannotKeep(t *testing.T) {
	for _, tc := range []struct {
		name   string
		change func(*Options)
		want   string
	}{
		{"burst 0", func(o *Options) { o.ThrottleBurst = 0 }, "--throttle-burst"},
		{"burst -1", func(o *Options) { o.ThrottleBurst = -1 }, "--throttle-burst"},
		{"rate 0", func(o *Options) { o.ThrottleRate = 0 }, "--throttle-rate"},
		{"concurrency 1001", func(o *Options) { o.MaxConcurrency = 1001 }, "--max-concurrency"},
		{"empty stage", func(o *Options) { o.Stage = "" }, "--stage"},
		{"stage with a slash", func(o *Options) { o.Stage = "v1/beta" }, "--stage"},
		{"stage too long", func(o *Options) { o.Stage = strings.Repeat("s", 129) }, "--stage"},
		// Provision and teardown refused it; deploy took it silently for
		// the default wait.
		{"wait 0", func(o *Options) { o.Wait = 0 }, "--wait must be above 0"},
		{"wait -1s", func(o *Options) { o.Wait = -time.Second }, "--wait must be above 0"},
	} {
		ios, _, _, _ := iostreams.Test()
		opts := &Options{
			IO: ios, Arch: "arm64", Stage: "prod", FunctionTimeout: 30 * time.Second, MaxConcurrency: 10,
			ThrottleBurst: 500, ThrottleRate: 1000, MaxTopics: 50, MaxConnectionsPerGeek: 100, Wait: time.Minute,
			Target: func(context.Context) (*Target, error) {
				t.Fatal("a refused deploy resolved its target")
				return nil, nil
			},
		}
		tc.change(opts)
		err := deployRun(t.Context(), opts)
		var fe *cmdutil.FlagError
		if err == nil || !strings.Contains(err.Error(), tc.want) || !errors.As(err, &fe) {
			t.Errorf("%s: err = %v, want a usage error about %s", tc.name, err, tc.want)
		}
	}
}

// awsFactory is a Factory on the AWS backend with flags, and dummy
// credentials in the environment the SDK reads. Nothing it opens calls
// anything.
func awsFactory(t *testing.T, flags config.Flags) *cmdutil.Factory {
	t.Helper()
	emulatortest.FakeCredentials(t)
	flags.Backend, flags.Region = config.BackendAWS, "us-east-1"
	env := map[string]string{"HOME": t.TempDir()}
	ios, _, _, _ := iostreams.Test()
	return &cmdutil.Factory{IOStreams: ios, Getenv: func(k string) string { return env[k] }, Now: time.Now, Flags: flags}
}

// TestDeployRefusesAStackSplitOverEndpoints: with DynamoDB and SQS on
// emulators and no --endpoint-url, deploy sent STS, IAM, Lambda, API
// Gateway and the rest to AWS itself, making a real function and API for
// a test stack. With --endpoint-url too, the function and API went to it
// and the tables elsewhere, where teardown and doctor (which look for them
// only with --endpoint-url alone) never found them again. Both are refused
// before anything is called; --endpoint-url alone is not.
func TestDeployRefusesAStackSplitOverEndpoints(t *testing.T) {
	closed := refusing.URL(t)
	for _, tc := range []struct {
		name  string
		flags config.Flags
		want  string
	}{
		{"DynamoDB and SQS on emulators, no --endpoint-url", config.Flags{DynamoDBEndpoint: closed, SQSEndpoint: closed}, "--endpoint-url"},
		{"DynamoDB and SQS on endpoints of their own beside --endpoint-url", config.Flags{Endpoint: closed, DynamoDBEndpoint: refusing.URL(t), SQSEndpoint: refusing.URL(t)}, "--dynamodb-endpoint-url"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.flags.Stack = stackName("split")
			_, err := ControlPlaneTarget(awsFactory(t, tc.flags), "deploy")(t.Context())
			if err == nil {
				t.Fatal("deploy would go ahead; want it refused before any call")
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("err = %v; want it to name %s", err, tc.want)
			}
		})
	}
	t.Run("--endpoint-url alone", func(t *testing.T) {
		if _, err := ControlPlaneTarget(awsFactory(t, config.Flags{Endpoint: closed, Stack: stackName("one")}), "deploy")(t.Context()); err != nil {
			t.Fatalf("refused: %v", err)
		}
	})
}

// emptyCheckout is a folder deploy takes for a socks source checkout,
// with no source in it.
func emptyCheckout(t *testing.T) string {
	t.Helper()
	src := t.TempDir()
	if err := os.WriteFile(filepath.Join(src, "go.mod"), []byte("module github.com/socks-dev/socks\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(src, "cmd", "socks"), 0o755); err != nil {
		t.Fatal(err)
	}
	return src
}

// TestDeployIsRefusedBeforeTheBuild: from a source checkout, deploy built
// the function (a cross-compile of minutes) before it opened its target,
// so a configuration it refuses (a stack split over endpoints, no
// credentials) was said only after the build.
func TestDeployIsRefusedBeforeTheBuild(t *testing.T) {
	src := emptyCheckout(t)
	ios, _, _, errOut := iostreams.Test()
	refused := errors.New("the target is refused")
	opts := &Options{
		IO: ios, Arch: "arm64", Stage: "prod", FunctionTimeout: 30 * time.Second, MaxConcurrency: 10,
		ThrottleBurst: 500, ThrottleRate: 1000, Wait: time.Minute, MaxTopics: 50, MaxConnectionsPerGeek: 100, SourceDir: src,
		Target: func(context.Context) (*Target, error) { return nil, refused },
	}
	if err := deployRun(t.Context(), opts); !errors.Is(err, refused) {
		t.Errorf("err = %v; want the target's refusal", err)
	}
	if strings.Contains(errOut.String(), "building") {
		t.Errorf("the function was built first:\n%s", errOut)
	}
}

// refusingLambda is Lambda where CreateFunction is refused.
type refusingLambda struct{ awsops.DeployLambdaAPI }

var errRefused = errors.New("refused (injected)")

func (refusingLambda) CreateFunction(context.Context, *lambda.CreateFunctionInput, ...func(*lambda.Options)) (*lambda.CreateFunctionOutput, error) {
	return nil, errRefused
}

// TestDeployJSONSaysWhatWasDoneWhenAStepFails: deploy --json that failed
// half-way printed nothing on stdout, so a script could not tell what it
// had made (the tables, the API, the role) before the function was
// refused. It prints the steps up to the one that failed, that step last,
// and the error, and still exits with the error.
func TestDeployJSONSaysWhatWasDoneWhenAStepFails(t *testing.T) {
	cfg, moto := emulatortest.MotoAWS(t)
	cp := awsops.NewControlPlane(cfg, awsops.Endpoints{All: moto})
	stack := stackName("half")
	removeStackAtEnd(t, cp, stack, cfg.Region)
	refusing := *cp
	refusing.Lambda = refusingLambda{cp.Lambda}
	zipFile := shellZipFile(t)
	ios, _, out, _ := iostreams.Test()
	opts := &Options{
		IO: ios, Arch: "arm64", Stage: "prod", FunctionTimeout: 30 * time.Second, ThrottleBurst: 500, ThrottleRate: 1000,
		MaxConcurrency: 10, Wait: time.Minute, LambdaZip: zipFile, JSON: true, MaxTopics: 20, MaxConnectionsPerGeek: 100,
		Target: func(context.Context) (*Target, error) {
			return &Target{CP: &refusing, Stack: stack, Region: cfg.Region}, nil
		},
	}
	if err := deployRun(t.Context(), opts); !errors.Is(err, errRefused) {
		t.Fatalf("deploy with CreateFunction refused: %v", err)
	}
	var res struct {
		Stack string              `json:"stack"`
		Steps []awsops.DeployStep `json:"steps"`
		Error string              `json:"error"`
	}
	if err := json.Unmarshal(out.Bytes(), &res); err != nil {
		t.Fatalf("--json after a failed step: %v\n%q", err, out)
	}
	var kinds []string
	for _, s := range res.Steps {
		kinds = append(kinds, s.Kind+" "+s.Action)
	}
	want := []string{"tables and queues create", "log group create", "websocket api create", "role create", "role policy create", "function create"}
	if res.Stack != stack || !slices.Equal(kinds, want) || !strings.Contains(res.Error, "creating function "+stack+"-socks") || !strings.Contains(res.Error, errRefused.Error()) {
		t.Errorf("--json after a failed step: stack %q, steps %v, error %q; want steps %v, the last the one that failed, and the error", res.Stack, kinds, res.Error, want)
	}
	asDocumented(t, out.String())
}

// asDocumented checks deploy's --json output against its section of
// docs/json.md (e2e's TestAWSJSONOutputIsAsDocumented checks the shapes
// moto makes without an injected error).
func asDocumented(t *testing.T, stdout string) {
	t.Helper()
	d, err := jsondoc.Find("socks deploy --backend aws --lambda-zip socks-lambda.zip --json")
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range d.Check(stdout) {
		t.Error(p)
	}
}

// shellZipFile writes a function package of the right shape (a shell
// script as its bootstrap) and returns its path: deploy uploads it, and
// nothing runs it (awsops runs the real function under the RIE).
func shellZipFile(t *testing.T) string {
	t.Helper()
	pkg, err := awsops.LambdaZip([]byte("#!/bin/sh\n"))
	if err != nil {
		t.Fatal(err)
	}
	zipFile := filepath.Join(t.TempDir(), "socks-lambda.zip")
	if err := os.WriteFile(zipFile, pkg, 0o644); err != nil {
		t.Fatal(err)
	}
	return zipFile
}

// scanDenied is DynamoDB where Scan is refused, as for an operator whose
// policy lacks dynamodb:Scan.
type scanDenied struct{ awsops.DynamoDBAPI }

var errScanDenied = errors.New("AccessDeniedException: not authorized to perform dynamodb:Scan (injected)")

func (scanDenied) Scan(context.Context, *dynamodb.ScanInput, ...func(*dynamodb.Options)) (*dynamodb.ScanOutput, error) {
	return nil, errScanDenied
}

// TestADeployWhoseMigrationFailsSaysTheStackIsDeployed: the migration of
// the connections table runs after every resource is in place; when it
// fails, deploy still exits with the error, but says that the stack is
// deployed and how to finish the migration, prints the URLs (and --json
// them, with the error) and saves them into the profile, as a deploy that
// succeeded does: the stack serves, and listen, publish --wait and doctor
// need them.
func TestADeployWhoseMigrationFailsSaysTheStackIsDeployed(t *testing.T) {
	cfg, moto := emulatortest.MotoAWS(t)
	cp := awsops.NewControlPlane(cfg, awsops.Endpoints{All: moto})
	stack := stackName("migfail")
	removeStackAtEnd(t, cp, stack, cfg.Region)
	denied := *cp
	denied.Data = scanDenied{cp.Data}
	zipFile := shellZipFile(t)
	cfgFile := filepath.Join(t.TempDir(), "config.toml")
	run := func(t *testing.T, asJSON bool) (out string, err error) {
		ios, _, stdout, _ := iostreams.Test()
		opts := &Options{
			IO: ios, Arch: "arm64", Stage: "prod", FunctionTimeout: 30 * time.Second, ThrottleBurst: 500, ThrottleRate: 1000,
			MaxConcurrency: 10, Wait: time.Minute, LambdaZip: zipFile, JSON: asJSON, MaxTopics: 20, MaxConnectionsPerGeek: 100,
			Target: func(context.Context) (*Target, error) {
				return &Target{CP: &denied, Stack: stack, Region: cfg.Region, ConfigFile: cfgFile, Profile: "moto"}, nil
			},
		}
		err = deployRun(t.Context(), opts)
		return stdout.String(), err
	}

	out, err := run(t, false)
	if !errors.Is(err, errScanDenied) {
		t.Fatalf("deploy with Scan denied: %v; want the migration's error", err)
	}
	for _, want := range []string{"stack " + stack + " is deployed", "socks provision"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
	if !strings.Contains(out, "websocket url: wss://") || !strings.Contains(out, "saved both into config profile moto") {
		t.Errorf("stdout of the deploy whose migration failed:\n%s", out)
	}
	var file config.File
	if _, err := toml.DecodeFile(cfgFile, &file); err != nil {
		t.Fatalf("the profile was not saved: %v", err)
	}
	if p := file.Profiles["moto"]; !strings.HasPrefix(p.WebSocketURL, "wss://") || p.Stack != stack {
		t.Errorf("profile after the deploy whose migration failed: %+v", p)
	}

	out, err = run(t, true)
	if !errors.Is(err, errScanDenied) {
		t.Fatalf("deploy --json with Scan denied: %v; want the migration's error", err)
	}
	var res struct {
		WebSocketURL string `json:"websocketUrl"`
		Error        string `json:"error"`
	}
	if err := json.Unmarshal([]byte(out), &res); err != nil || !strings.HasPrefix(res.WebSocketURL, "wss://") || !strings.Contains(res.Error, "socks provision") {
		t.Errorf("--json of a deploy whose migration failed (%v): %s", err, out)
	}
	asDocumented(t, out)
}

// removeStackAtEnd removes what a deploy of stack made on cp (its
// resources, then its queues and tables) when the test ends.
func removeStackAtEnd(t *testing.T, cp *awsops.ControlPlane, stack, region string) {
	t.Cleanup(func() {
		d := &awsops.Deployer{CP: cp, Spec: awsops.DeploySpec{Stack: stack, Region: region}}
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if steps, err := d.Deployed(ctx); err == nil {
			_ = d.Undeploy(ctx, steps)
		}
		_ = awsops.DeleteQueues(ctx, cp.SQS, awsops.QueuesFor(stack))
		_ = awsops.DeleteTables(ctx, cp.DB, awsops.TablesFor(stack), time.Minute)
	})
}

// pendingTopics lists every SQS subscription as "PendingConfirmation", as
// SNS lists one that a topic of another account waits to have confirmed
// (moto confirms them at once).
type pendingTopics struct{ awsops.TopicsAPI }

func (p pendingTopics) ListSubscriptionsByTopic(ctx context.Context, in *sns.ListSubscriptionsByTopicInput, optFns ...func(*sns.Options)) (*sns.ListSubscriptionsByTopicOutput, error) {
	out, err := p.TopicsAPI.ListSubscriptionsByTopic(ctx, in, optFns...)
	if err == nil {
		for i := range out.Subscriptions {
			if aws.ToString(out.Subscriptions[i].Protocol) == "sqs" {
				out.Subscriptions[i].SubscriptionArn = aws.String("PendingConfirmation")
			}
		}
	}
	return out, err
}

// TestADeployWithASubscriptionPendingConfirmationEndsSayingHowToConfirmIt:
// deploy said it updated the producers at every run while the queue's
// subscription waited for confirmation, which it cannot give. It now
// prints the stack as in place (not "nothing to do"), its URLs, saves
// them, and exits with the error naming the confirm-subscription command;
// --json has the error too.
func TestADeployWithASubscriptionPendingConfirmationEndsSayingHowToConfirmIt(t *testing.T) {
	cfg, moto := emulatortest.MotoAWS(t)
	cp := awsops.NewControlPlane(cfg, awsops.Endpoints{All: moto})
	stack := stackName("pending")
	removeStackAtEnd(t, cp, stack, cfg.Region)
	topic, err := cp.SNS.(*sns.Client).CreateTopic(t.Context(), &sns.CreateTopicInput{Name: aws.String(stack + "-jobs")})
	if err != nil {
		t.Fatal(err)
	}
	topicARN := aws.ToString(topic.TopicArn)
	pending := *cp
	pending.SNS = pendingTopics{cp.SNS}
	zipFile := shellZipFile(t)
	cfgFile := filepath.Join(t.TempDir(), "config.toml")
	run := func(t *testing.T, plane *awsops.ControlPlane, asJSON bool) (out string, err error) {
		ios, _, stdout, _ := iostreams.Test()
		opts := &Options{
			IO: ios, Arch: "arm64", Stage: "prod", FunctionTimeout: 30 * time.Second, ThrottleBurst: 500, ThrottleRate: 1000,
			MaxConcurrency: 10, Wait: time.Minute, LambdaZip: zipFile, JSON: asJSON, MaxTopics: 20, MaxConnectionsPerGeek: 100,
			ProducerFlags: cmdutil.ProducerFlags{SNSTopics: []string{topicARN}},
			Target: func(context.Context) (*Target, error) {
				return &Target{CP: plane, Stack: stack, Region: cfg.Region, ConfigFile: cfgFile, Profile: "moto"}, nil
			},
		}
		err = deployRun(t.Context(), opts)
		return stdout.String(), err
	}
	if _, err := run(t, cp, false); err != nil {
		t.Fatal(err)
	}

	out, err := run(t, &pending, false)
	var unconfirmed *awsops.UnconfirmedError
	if !errors.As(err, &unconfirmed) || !strings.Contains(err.Error(), "aws sns confirm-subscription --topic-arn "+topicARN) {
		t.Fatalf("deploy with the subscription pending: %v; want an UnconfirmedError with the command to confirm it", err)
	}
	if strings.Contains(out, "nothing to do") || !strings.Contains(out, "resources of stack "+stack+" are in place") ||
		!strings.Contains(out, "websocket url: wss://") || !strings.Contains(out, "saved both into config profile moto") {
		t.Errorf("stdout of the deploy with the subscription pending:\n%s", out)
	}

	out, err = run(t, &pending, true)
	var res struct {
		Changed      bool   `json:"changed"`
		WebSocketURL string `json:"websocketUrl"`
		Error        string `json:"error"`
	}
	if !errors.As(err, &unconfirmed) || json.Unmarshal([]byte(out), &res) != nil || res.Changed || !strings.HasPrefix(res.WebSocketURL, "wss://") || !strings.Contains(res.Error, "confirm-subscription") {
		t.Errorf("--json of the deploy with the subscription pending (%v): %s", err, out)
	}

	if out, err := run(t, cp, false); err != nil || !strings.Contains(out, "nothing to do") {
		t.Errorf("deploy with the subscription confirmed: %v\n%s", err, out)
	}
}

// A profile that cannot be saved (a config folder that is not one, a
// read-only one) ended the deploy with the error alone: the URLs of the
// stack just deployed were printed nowhere, and --json printed nothing.
// They are printed now, --json with the error, and the error says how to
// finish.
func TestADeployWhoseProfileCannotBeSavedStillPrintsTheURLs(t *testing.T) {
	cfg, moto := emulatortest.MotoAWS(t)
	cp := awsops.NewControlPlane(cfg, awsops.Endpoints{All: moto})
	stack := stackName("nosave")
	removeStackAtEnd(t, cp, stack, cfg.Region)
	zipFile := shellZipFile(t)
	notADir := filepath.Join(t.TempDir(), "socks")
	if err := os.WriteFile(notADir, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	cfgFile := filepath.Join(notADir, "config.toml")
	run := func(t *testing.T, asJSON bool) (out string, err error) {
		ios, _, stdout, _ := iostreams.Test()
		opts := &Options{
			IO: ios, Arch: "arm64", Stage: "prod", FunctionTimeout: 30 * time.Second, ThrottleBurst: 500, ThrottleRate: 1000,
			MaxConcurrency: 10, Wait: time.Minute, LambdaZip: zipFile, JSON: asJSON, MaxTopics: 20, MaxConnectionsPerGeek: 100,
			Target: func(context.Context) (*Target, error) {
				return &Target{CP: cp, Stack: stack, Region: cfg.Region, ConfigFile: cfgFile, Profile: "moto"}, nil
			},
		}
		err = deployRun(t.Context(), opts)
		return stdout.String(), err
	}
	out, err := run(t, false)
	if err == nil || !strings.Contains(err.Error(), "writing the URLs into profile moto of "+cfgFile+" failed") || !strings.Contains(err.Error(), "run socks deploy again") {
		t.Fatalf("deploy whose profile cannot be saved: %v", err)
	}
	if !strings.Contains(out, "websocket url: wss://") || !strings.Contains(out, "not saved into config profile moto") || strings.Contains(out, "no config profile is selected") {
		t.Errorf("stdout of the deploy whose profile could not be saved:\n%s", out)
	}
	out, err = run(t, true)
	var res struct {
		WebSocketURL string `json:"websocketUrl"`
		SavedProfile string `json:"savedProfile"`
		Error        string `json:"error"`
	}
	if jerr := json.Unmarshal([]byte(out), &res); jerr != nil || err == nil || !strings.HasPrefix(res.WebSocketURL, "wss://") || res.SavedProfile != "" || !strings.Contains(res.Error, "writing the URLs") {
		t.Errorf("--json of a deploy whose profile could not be saved (%v, %v): %s", err, jerr, out)
	}
	asDocumented(t, out)
}

// docs/deploy.md's first command names a profile no config file holds yet
// (`--config-profile prod`); deploy refused it as unknown before doing
// anything. Deploy takes it as new (the save creates it); other commands
// still refuse it.
func TestDeployTakesAProfileItWillCreate(t *testing.T) {
	env := map[string]string{"HOME": t.TempDir(), config.EnvBackend: config.BackendAWS, config.EnvRegion: "eu-west-1"}
	f := &cmdutil.Factory{Getenv: func(k string) string { return env[k] }}
	f.IOStreams, _, _, _ = iostreams.Test()
	f.Flags.ConfigProfile = "prod"
	if _, err := f.Config(); err == nil {
		t.Fatal("an unknown profile was taken outside deploy")
	}
	var got config.Config
	cmd := NewCmdDeploy(f, func(ctx context.Context, opts *Options) error {
		var err error
		got, err = f.Config()
		return err
	})
	cmd.SetArgs(nil)
	cmd.SetOut(io.Discard)
	cmd.SetErr(io.Discard)
	if err := cmd.ExecuteContext(t.Context()); err != nil {
		t.Fatal(err)
	}
	if want := filepath.Join(env["HOME"], ".config", "socks", "config.toml"); got.Profile != "prod" || !got.NewProfile || got.ConfigFile != want {
		t.Errorf("deploy's configuration: profile %q new=%v file %q; want the new profile prod in %s", got.Profile, got.NewProfile, got.ConfigFile, want)
	}
}
