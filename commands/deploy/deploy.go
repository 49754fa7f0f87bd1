// Package deploy implements `socks deploy`: the whole AWS stack (tables,
// queues, role, function, WebSocket API, permission, event source mapping)
// from the binary, idempotent, with drift reported and a dry run.
package deploy

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/socks-dev/socks/awsops"
	"github.com/socks-dev/socks/commands/cmdutil"
	"github.com/socks-dev/socks/config"
	"github.com/socks-dev/socks/gateway"
	"github.com/socks-dev/socks/internal/build"
	"github.com/socks-dev/socks/internal/infile"
	"github.com/socks-dev/socks/internal/srcroot"
	"github.com/socks-dev/socks/internal/text"
	"github.com/socks-dev/socks/iostreams"
	"github.com/socks-dev/socks/pubsub"
	"github.com/socks-dev/socks/routes"
)

// Target is where deploy works: the stack's control plane and names.
type Target struct {
	CP     *awsops.ControlPlane
	Stack  string
	Region string
	// ConfigFile and Profile are the config file and its selected profile
	// ("" when none): deploy writes the URLs there.
	ConfigFile, Profile string
	// Mapping is the event mapping configured (profile or
	// SOCKS_EVENT_MAPPING), nil when none: deploy sets it on the function.
	Mapping *pubsub.Mapping
}

// TargetFunc opens the target (tests substitute their own).
type TargetFunc func(ctx context.Context) (*Target, error)

// ControlPlaneTarget opens the AWS backend of f and the control-plane
// clients on its configuration and endpoint (--endpoint-url for every
// service). DynamoDB or SQS on an endpoint of its own is refused, and so
// is a control plane half on emulators and half on AWS itself, before
// anything is called.
func ControlPlaneTarget(f *cmdutil.Factory, verb string) TargetFunc {
	return func(ctx context.Context) (*Target, error) {
		b, err := f.AWSBackend(ctx, verb)
		if err != nil {
			return nil, err
		}
		cfg := b.Config
		a := cfg.AWS
		cp, err := awsops.StackControlPlane(*b.AWS, a)
		switch {
		case err != nil:
			return nil, err
		case cp == nil:
			// Teardown and doctor look for the function, API and role
			// only where DynamoDB and SQS are too: a stack split over
			// two places would be left behind.
			return nil, cmdutil.FlagErrorf("%s puts the whole stack behind one endpoint, and DynamoDB or SQS has one of its own (--dynamodb-endpoint-url, --sqs-endpoint-url): drop them and give --endpoint-url alone (moto serves DynamoDB and SQS too), or neither for AWS itself", verb)
		}
		if cfg.NewProfile && f.IOStreams != nil {
			cmdutil.Notef(f.IOStreams.ErrOut, "note: config profile %s is not in %s yet: deploy adds it, with the URLs (a --dry-run does not)\n", cfg.Profile, cfg.ConfigFile)
		}
		return &Target{CP: cp, Stack: a.Stack, Region: b.AWS.Region, ConfigFile: cfg.ConfigFile, Profile: cfg.Profile, Mapping: cfg.Mapping}, nil
	}
}

// Options are the inputs of `socks deploy`.
type Options struct {
	IO     *iostreams.IOStreams
	Target TargetFunc
	Getenv func(string) string

	LambdaZip             string
	Arch                  string
	Stage                 string
	FunctionTimeout       time.Duration
	ThrottleBurst         int32
	ThrottleRate          float64
	MaxConcurrency        int32
	MaxTopics             int
	MaxConnectionsPerGeek int
	DryRun                bool
	JSON                  bool
	Wait                  time.Duration
	// SourceDir is the source checkout to build from when LambdaZip is
	// empty ("" to look upwards from the working directory).
	SourceDir string

	cmdutil.ProducerFlags
}

// NewCmdDeploy returns `socks deploy`.
func NewCmdDeploy(f *cmdutil.Factory, runF func(context.Context, *Options) error) *cobra.Command {
	opts := &Options{IO: f.IOStreams, Target: ControlPlaneTarget(f, "deploy"), Getenv: f.Getenv}
	cmd := &cobra.Command{
		Use:   "deploy [--stack NAME] [--region R] [--lambda-zip FILE] [--arch arm64|amd64] [--dry-run]",
		Short: "Create or update the whole AWS stack: tables, queues, role, function, WebSocket API",
		Long: `Deploy stands up everything docs/template.yaml describes, and nothing more:

  tables and queues   as 'socks provision' makes them (visibility timeout 6x
                      the function timeout, dead-letter redrive)
  log group           /aws/lambda/STACK-socks
  websocket api       STACK-websocket, routes $connect, $disconnect, $default,
                      subscribe, unsubscribe and ping on one Lambda proxy
                      integration, an auto-deploying stage with throttling
  role                STACK-socks-function: its own tables, queues, API
                      (execute-api:ManageConnections) and log group only
  function            STACK-socks, provided.al2023, handler bootstrap
  permission          lambda:InvokeFunction for the API (SourceArn: its ARN)
  mapping             the envelope queue to the function, with
                      ReportBatchItemFailures
  producers           with --eventbridge-rule and --sns-topic, as 'socks
                      provision' makes them (the rule, its target, the
                      subscriptions and the queue policy statements)

The function's package is --lambda-zip, or, from a source checkout, built
with 'go build' for --arch. When the selected profile (or
SOCKS_EVENT_MAPPING) has an event mapping, the function gets it as
SOCKS_EVENT_MAPPING; its limits (--max-topics, --max-connections-per-geek,
as 'socks serve' has them) are SOCKS_MAX_TOPICS and
SOCKS_MAX_CONNECTIONS_PER_GEEK. Every resource that carries tags is tagged
socks:stack=STACK, which is how deploy, teardown and doctor find it again.

It is idempotent: a second run says "nothing to do". A resource that differs
(a missing route, a wrong timeout, a foreign policy statement, a disabled
mapping) is drift: it is reported with what would change, and put right.
A subscription of the queue pending confirmation (--sns-topic of another
account) deploy cannot put right: it deploys the rest, prints the URLs, and
exits 1 saying how to confirm it. --dry-run prints the plan and changes
nothing.

Once the function is in place, a connections table written by an earlier
socks is migrated as 'socks provision' does it (docs/deploy.md,
"Upgrading").

On success it prints the wss:// URL and the callback URL, and writes them
into the selected config profile (--config-profile; created, with the
default config file, when missing; a file named by --config must exist),
so listen, publish --wait, subs list --live, prune-stale and doctor work
right after.
'socks teardown' removes all of it.`,
		Example: `  socks deploy --backend aws --region eu-west-1 --stack prod
  socks deploy --backend aws --stack prod --dry-run
  socks deploy --backend aws --stack prod --lambda-zip dist/bootstrap.zip --arch arm64 --json
  socks deploy --backend aws --stack prod --eventbridge-rule --source com.example.site --detail-type EntityChanged
  socks deploy --backend aws --stack prod --sns-topic arn:aws:sns:eu-west-1:123456789012:jobs
  socks deploy --backend aws --endpoint-url http://127.0.0.1:5000 --stack test   # moto`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			// Deploy saves the URLs into the selected profile, creating
			// it (and the file) when missing.
			f.Flags.NewProfile = true
			if runF != nil {
				return runF(cmd.Context(), opts)
			}
			return deployRun(cmd.Context(), opts)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&opts.LambdaZip, "lambda-zip", "", "the function's deployment package (a zip with bootstrap at its root); default: build it from the source checkout")
	_ = cmd.MarkFlagFilename("lambda-zip", "zip")
	fl.StringVar(&opts.Arch, "arch", awsops.DefaultDeployArch, "the function's architecture: arm64 or amd64")
	fl.StringVar(&opts.Stage, "stage", awsops.DefaultDeployStage, "the WebSocket API stage")
	fl.DurationVar(&opts.FunctionTimeout, "function-timeout", awsops.DefaultBrokerTimeout, "the function timeout (the queue's visibility timeout is 6 times it)")
	fl.Int32Var(&opts.ThrottleBurst, "throttle-burst", awsops.DefaultThrottlingBurstLimit, "the stage's throttling burst limit")
	fl.Float64Var(&opts.ThrottleRate, "throttle-rate", awsops.DefaultThrottlingRateLimit, "the stage's throttling rate limit (requests per second)")
	fl.Int32Var(&opts.MaxConcurrency, "max-concurrency", awsops.DefaultMaximumConcurrency, "most concurrent broker invocations the SQS event source starts")
	fl.IntVar(&opts.MaxTopics, "max-topics", pubsub.MaxTopicsPerConnection, "topics one connection may follow (1 to 50)")
	fl.IntVar(&opts.MaxConnectionsPerGeek, "max-connections-per-geek", routes.DefaultMaxConnectionsPerGeek, "live connections one geek may hold; more are refused with 429")
	fl.BoolVar(&opts.DryRun, "dry-run", false, "print the plan, with the drift found, and change nothing")
	fl.BoolVar(&opts.JSON, "json", false, "print the result as JSON")
	fl.DurationVar(&opts.Wait, "wait", awsops.DefaultCreateWait, "how long to wait for new tables and function updates")
	opts.ProducerFlags.Bind(cmd, true)
	return cmd
}

// output is what deploy prints with --json: the plan and what was done
// and, when it failed, the error.
type output struct {
	awsops.DeployResult
	// Changed is left out (nil) when deploy failed before every step was
	// in place.
	Changed      *bool  `json:"changed,omitempty"`
	SavedProfile string `json:"savedProfile,omitempty"`
	// ConfigWarning says that the config file was rewritten whole (its
	// original kept as .bak).
	ConfigWarning string `json:"configWarning,omitempty"`
	// Error says why deploy failed: a step, the migration, a subscription
	// waiting for confirmation, the profile not saved, or what stopped it
	// before its first step.
	Error string `json:"error,omitempty"`
}

func deployRun(ctx context.Context, opts *Options) (err error) {
	// out is what deploy planned and did: with --json it is printed once,
	// at the end, with the error when it failed, also before there was a
	// plan (cmdutil.EndJSON).
	out := output{DeployResult: awsops.DeployResult{DryRun: opts.DryRun, Steps: []awsops.DeployStep{}}}
	if opts.JSON {
		defer func() {
			err = cmdutil.EndJSON(opts.IO.Out, err, func(why string) any {
				out.Error = why
				return out
			})
		}()
	}
	if opts.Wait <= 0 {
		return cmdutil.FlagErrorf("--wait must be above 0")
	}
	if opts.Arch != "arm64" && opts.Arch != "amd64" {
		return cmdutil.FlagErrorf("--arch must be arm64 or amd64, not %q", opts.Arch)
	}
	if opts.FunctionTimeout < 3*time.Second || opts.FunctionTimeout > 15*time.Minute {
		return cmdutil.FlagErrorf("--function-timeout must be between 3s and 15m (Lambda's limits)")
	}
	if opts.MaxConcurrency < 2 || opts.MaxConcurrency > 1000 {
		return cmdutil.FlagErrorf("--max-concurrency must be between 2 and 1000 (Lambda's limits)")
	}
	if opts.ThrottleBurst < 1 {
		return cmdutil.FlagErrorf("--throttle-burst must be at least 1")
	}
	if opts.ThrottleRate <= 0 {
		return cmdutil.FlagErrorf("--throttle-rate must be above 0")
	}
	if !validStage(opts.Stage) {
		return cmdutil.FlagErrorf("--stage %q must be 1 to 128 letters, digits, '-' or '_' (API Gateway's rule)", opts.Stage)
	}
	if opts.MaxTopics < 1 || opts.MaxTopics > pubsub.MaxTopicsPerConnection {
		return cmdutil.FlagErrorf("--max-topics %d is out of range: give 1 to %d", opts.MaxTopics, pubsub.MaxTopicsPerConnection)
	}
	if opts.MaxConnectionsPerGeek < 1 {
		return cmdutil.FlagErrorf("--max-connections-per-geek must be at least 1")
	}
	// A package Lambda could not run is said before anything is asked of
	// AWS.
	var zip []byte
	if opts.LambdaZip != "" {
		var err error
		if zip, err = readLambdaZip(opts.LambdaZip); err != nil {
			return err
		}
	}
	// The target first: a configuration deploy refuses is said before a
	// build of the function that can take minutes.
	tgt, err := opts.Target(ctx)
	if err != nil {
		return err
	}
	out.Stack, out.Region = tgt.Stack, tgt.Region
	producers, err := opts.Producers(tgt.Stack)
	if err != nil {
		return err
	}
	if opts.LambdaZip == "" {
		if src := srcroot.Find(opts.SourceDir); src != "" {
			fmt.Fprintf(opts.IO.ErrOut, "building the function for linux/%s from %s\n", opts.Arch, src)
			zip, err = BuildZip(ctx, src, opts.Arch)
			if err != nil {
				return err
			}
		} else if !opts.DryRun {
			return cmdutil.FlagErrorf("no function package: pass --lambda-zip FILE (a zip with bootstrap at its root), or run deploy from a socks source checkout to build one")
		}
	}
	mapping := ""
	if tgt.Mapping != nil {
		b, err := json.Marshal(tgt.Mapping)
		if err != nil {
			return fmt.Errorf("writing the event mapping for the function: %w", err)
		}
		mapping = string(b)
	}
	d := &awsops.Deployer{CP: tgt.CP, Spec: awsops.DeploySpec{
		Stack: tgt.Stack, Region: tgt.Region, Stage: opts.Stage, Arch: opts.Arch, Timeout: opts.FunctionTimeout, Zip: zip,
		ThrottlingBurstLimit: opts.ThrottleBurst, ThrottlingRateLimit: opts.ThrottleRate, MaximumConcurrency: opts.MaxConcurrency, Wait: opts.Wait,
		Producers: producers, EventMapping: mapping,
		MaxTopics: opts.MaxTopics, MaxConnectionsPerGeek: opts.MaxConnectionsPerGeek,
	}}
	show, stop := progressPrinter(opts.IO, opts.DryRun, opts.JSON)
	d.Progress = show
	res, err := d.Deploy(ctx, opts.DryRun)
	stop()
	// A migration that failed once every resource is in place, or a
	// subscription pending confirmation, leaves a stack that serves
	// (awsops.Serves): its URLs are saved and printed as after a success,
	// and the command still ends with the error.
	if err != nil && !awsops.Serves(err) {
		if len(res.Steps) > 0 {
			// What was done before the failure: the steps up to the one
			// that failed (the last).
			out.DeployResult = res
		}
		return err
	}
	changed := res.Changed()
	out.DeployResult, out.Changed = res, &changed
	saved, warning, unsaved := "", "", ""
	if !opts.DryRun && res.WebSocketURL != "" && tgt.Profile != "" && tgt.ConfigFile != "" {
		w, serr := config.SaveProfile(tgt.ConfigFile, tgt.Profile, func(p *config.Profile) {
			p.Backend, p.Stack, p.Region = config.BackendAWS, tgt.Stack, tgt.Region
			p.WebSocketURL, p.CallbackURL = res.WebSocketURL, res.CallbackURL
		})
		if serr != nil {
			// The stack serves: its URLs are printed (and --json with
			// the error) as after any other failure once it is in place.
			serr = fmt.Errorf("the stack is deployed, but writing the URLs into profile %s of %s failed: %w; fix that and run socks deploy again (it changes nothing else), or set the URLs printed yourself", tgt.Profile, tgt.ConfigFile, serr)
			err = errors.Join(err, serr)
			unsaved = tgt.Profile
		} else {
			if w != "" {
				cmdutil.Notef(opts.IO.ErrOut, "warning: %s\n", w)
			}
			saved, warning = tgt.Profile, w
		}
	}
	if opts.JSON {
		out.SavedProfile, out.ConfigWarning = saved, warning
		return err // the migration's, the confirmation's, or nil: printed with out
	}
	if perr := printResult(opts.IO.Out, res, saved, unsaved, err != nil); perr != nil {
		return perr
	}
	return err // the migration's, the confirmation's, or nil
}

// validStage reports whether API Gateway takes name as a stage name: the
// local gateway's rule (letters, digits, '-', '_'), not empty, at most 128.
func validStage(name string) bool {
	return name != "" && len(name) <= 128 && gateway.ValidStage(name)
}

// printResult prints res; unfinished: Deploy's error says what is left
// to do (awsops.Serves), so it is not "nothing to do"; saved is the
// profile the URLs were saved into, unsaved the one they could not be.
func printResult(w io.Writer, res awsops.DeployResult, saved, unsaved string, unfinished bool) error {
	switch {
	case !res.Changed() && unfinished:
		fmt.Fprintf(w, "all %d resources of stack %s are in place\n", len(res.Steps), res.Stack)
	case !res.Changed():
		fmt.Fprintf(w, "nothing to do: all %d resources of stack %s are in place\n", len(res.Steps), res.Stack)
	case res.DryRun:
		for _, s := range res.Steps {
			if s.Action != awsops.ActionNone {
				fmt.Fprintf(w, "would %s %s\n", s.Action, s)
				for _, d := range s.Drift {
					fmt.Fprintf(w, "  %s\n", d)
				}
			}
		}
		if res.Migrated > 0 {
			fmt.Fprintf(w, "would migrate %s of table %s (docs/tables.md, Migration)\n", text.Pluralize(res.Migrated, "geek item"), awsops.TablesFor(res.Stack).Connections)
		}
		return nil
	default:
		n := 0
		for _, s := range res.Steps {
			if s.Action != awsops.ActionNone {
				n++
			}
		}
		fmt.Fprintf(w, "deployed stack %s: %d of %d resources created or updated\n", res.Stack, n, len(res.Steps))
		if res.Migrated > 0 {
			fmt.Fprintf(w, "migrated %s of table %s (docs/tables.md, Migration)\n", text.Pluralize(res.Migrated, "geek item"), awsops.TablesFor(res.Stack).Connections)
		}
	}
	if res.WebSocketURL != "" {
		fmt.Fprintf(w, "websocket url: %s\ncallback url:  %s\n", res.WebSocketURL, res.CallbackURL)
	}
	switch {
	case saved != "":
		fmt.Fprintf(w, "saved both into config profile %s\n", saved)
	case unsaved != "":
		fmt.Fprintf(w, "not saved into config profile %s (see the error); to use them: export %s=%s %s=%s\n", unsaved, config.EnvWebSocket, res.WebSocketURL, config.EnvCallback, res.CallbackURL)
	case res.WebSocketURL != "" && !res.DryRun:
		fmt.Fprintf(w, "no config profile is selected; to use them: export %s=%s %s=%s\n", config.EnvWebSocket, res.WebSocketURL, config.EnvCallback, res.CallbackURL)
	}
	return nil
}

// progressPrinter writes one line per resource to stderr: marked and
// coloured on a terminal, plain when piped or with --json
// (cmdutil.Progress.UI). On terminals a spinner with
// the time taken shows while a resource is being created or updated, the
// long waits of deploy (cmdutil.NewProgress: not with --json); stop
// clears it. A dry run shows none: its plan, on stdout, says the same,
// and a terminal showed it twice.
func progressPrinter(ios *iostreams.IOStreams, dryRun, jsonOut bool) (show func(awsops.DeployStep, bool), stop func()) {
	if dryRun {
		return func(awsops.DeployStep, bool) {}, func() {}
	}
	prog := cmdutil.NewProgress(ios, jsonOut, nil)
	u, printf := prog.UI(), prog.Printf
	show = func(s awsops.DeployStep, done bool) {
		// A step's name and drifts quote what AWS holds (u.Name,
		// u.Text).
		step := u.Name(s.String())
		switch {
		case done && s.Action == awsops.ActionDelete:
			printf("%s deleted %s\n", u.Good.Render("-"), step)
		case done:
			printf("%s %sd %s\n", u.Good.Render("✓"), s.Action, step)
		case s.Action == awsops.ActionNone:
			printf("%s %s is in place\n", u.Label.Render("="), step)
		default:
			verb := "creating"
			if s.Action == awsops.ActionUpdate {
				verb = "updating"
			}
			printf("%s %s %s\n", u.Code.Render("~"), verb, step)
			for _, d := range s.Drift {
				printf("    %s %s\n", u.Bad.Render("drift:"), u.Text(d))
			}
			prog.Wait(verb + " " + s.String())
			return
		}
		prog.Wait("")
	}
	return show, prog.Stop
}

// buildEnv is environ for the go build of the function, whose GOFLAGS
// (as the go tool reads it: from the environment, else from the go env
// file of `go env -w`) is goflags, with goenv as its go env file: GOFLAGS
// keeps only the flags that say how modules are found and stamped (-mod,
// -modcacherw, -buildvcs: a machine may need them to build at all), and
// GOEXPERIMENT is dropped. A developer's GOFLAGS=-race, -cover,
// -tags=..., -ldflags=... or -gcflags=... is for their own builds and
// tests; the deployed function is built as the release is. goenv is the
// developer's go env file without GOFLAGS and GOEXPERIMENT (see
// buildGoEnvFile): with an empty GOFLAGS or none in the environment the
// go tool reads the file's.
func buildEnv(environ []string, goflags, goenv string) []string {
	env := make([]string, 0, len(environ)+2)
	for _, kv := range environ {
		k, _, _ := strings.Cut(kv, "=")
		if k == "GOEXPERIMENT" || k == "GOFLAGS" || k == "GOENV" {
			continue
		}
		env = append(env, kv)
	}
	var kept []string
	for _, f := range strings.Fields(goflags) {
		name, _, _ := strings.Cut(strings.TrimLeft(f, "-"), "=")
		switch name {
		case "mod", "modcacherw", "buildvcs":
			kept = append(kept, f)
		}
	}
	return append(env, "GOFLAGS="+strings.Join(kept, " "), "GOENV="+goenv)
}

// buildGoEnvFile writes to path the go env file at from (`go env GOENV`;
// "off" or one that does not exist: none) without its GOFLAGS and
// GOEXPERIMENT, keeping the rest (GOPROXY, GOPRIVATE, GOTOOLCHAIN, ...).
func buildGoEnvFile(from, path string) error {
	var kept []string
	if from != "off" && from != "" {
		data, err := os.ReadFile(from)
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("reading the go env file: %w", err)
		}
		for _, line := range strings.Split(string(data), "\n") {
			k, _, _ := strings.Cut(line, "=")
			if k = strings.TrimSpace(k); k != "GOFLAGS" && k != "GOEXPERIMENT" && line != "" {
				kept = append(kept, line)
			}
		}
	}
	return os.WriteFile(path, []byte(strings.Join(append(kept, ""), "\n")), 0o600)
}

// functionBuildEnv is the environment of the go build of the function
// for linux/arch from src (see buildEnv), with its go env file in dir.
func functionBuildEnv(ctx context.Context, src, arch, dir string) ([]string, error) {
	cmd := exec.CommandContext(ctx, "go", "env", "GOFLAGS", "GOENV")
	cmd.Dir = src
	out, err := cmd.Output()
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return nil, goFailed("go env failed, so the function cannot be built", err, ee.Stderr)
		}
		return nil, fmt.Errorf("go env failed, so the function cannot be built: %w", err)
	}
	goflags, goenv, _ := strings.Cut(strings.TrimSuffix(string(out), "\n"), "\n")
	path := filepath.Join(dir, "go.env")
	if err := buildGoEnvFile(goenv, path); err != nil {
		return nil, err
	}
	return append(buildEnv(os.Environ(), goflags, path), "CGO_ENABLED=0", "GOOS=linux", "GOARCH="+arch, "GOAMD64=v1", "GOARM64=v8.0"), nil
}

// goSaidLines is how many of the last lines the go tool printed a
// failure of it keeps.
const goSaidLines = 5

// goFailed is the error of a go command that failed with err, having
// printed out: what, err, and the last goSaidLines lines of out on one
// line (Main and deploy --json show it as one), trimmed, separated by
// " / ". Go's progress ("go: downloading ...", hundreds of lines on a
// cold module cache) is left out, as are blank lines: a build cut short
// (signal: terminated) while downloading says only that.
func goFailed(what string, err error, out []byte) error {
	var said []string
	for line := range strings.Lines(string(out)) {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "go: downloading ") || strings.HasPrefix(line, "go: extracting ") {
			continue
		}
		said = append(said, line)
	}
	if len(said) == 0 {
		return fmt.Errorf("%s: %v", what, err)
	}
	if n := len(said) - goSaidLines; n > 0 {
		said = append([]string{fmt.Sprintf("... (%s before)", text.Pluralize(n, "line"))}, said[n:]...)
	}
	return fmt.Errorf("%s: %v: %s", what, err, strings.Join(said, " / "))
}

// readLambdaZip reads the --lambda-zip file at path, no more of it than
// Lambda takes, and checks that it is a package Lambda runs
// (awsops.CheckLambdaZip).
func readLambdaZip(path string) ([]byte, error) {
	// Opened without waiting (a FIFO no one writes would hold deploy in
	// open()), and only a regular file read: /dev/zero was read into
	// memory until it ran out. One byte past the limit says that the file
	// is over it.
	pkg, err := infile.ReadFile(path, awsops.MaxLambdaZip)
	if ne, ok := errors.AsType[*infile.NotRegularError](err); ok {
		return nil, cmdutil.FlagErrorf("--lambda-zip %s is %s, not a file: give the zip file (a zip with bootstrap at its root)", path, ne.What)
	} else if err != nil {
		return nil, cmdutil.FlagErrorf("--lambda-zip: %v", err)
	}
	if len(pkg) > awsops.MaxLambdaZip {
		size := int64(len(pkg))
		if fi, err := os.Stat(path); err == nil && fi.Mode().IsRegular() {
			size = fi.Size()
		}
		return nil, cmdutil.FlagErrorf("--lambda-zip %s %v", path, awsops.CheckLambdaZipSize(size))
	}
	if err := awsops.CheckLambdaZip(pkg); err != nil {
		return nil, cmdutil.FlagErrorf("--lambda-zip %s %v", path, err)
	}
	return pkg, nil
}

// BuildZip builds the function's bootstrap (build.LambdaPackage with
// build.LambdaTags) for linux/arch from the checkout src with the go tool
// and packs it as a deployment package.
func BuildZip(ctx context.Context, src, arch string) ([]byte, error) {
	if _, err := exec.LookPath("go"); err != nil {
		return nil, errors.New("building the function needs the go tool: install Go, or pass --lambda-zip")
	}
	dir, err := os.MkdirTemp("", "socks-deploy-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	bin := filepath.Join(dir, "bootstrap")
	// The function only (build.LambdaTags): no command line, no local
	// backend, no control-plane clients, as the release builds it.
	cmd := exec.CommandContext(ctx, "go", "build", "-trimpath", "-tags", build.LambdaTags, "-ldflags=-s -w", "-o", bin, build.LambdaPackage)
	cmd.Dir = src
	// The microarchitecture levels are the go tool's defaults, as in the
	// release, whatever the user's environment asks for their own
	// machine: the function runs on Lambda's. So are the build flags:
	// see buildEnv.
	if cmd.Env, err = functionBuildEnv(ctx, src, arch, dir); err != nil {
		return nil, err
	}
	if out, err := cmd.CombinedOutput(); err != nil {
		return nil, goFailed("go build of the function failed", err, out)
	}
	raw, err := os.ReadFile(bin)
	if err != nil {
		return nil, err
	}
	return awsops.LambdaZip(raw)
}
