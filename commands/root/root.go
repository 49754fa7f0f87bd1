// Package root builds the socks command tree.
package root

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	benchcmd "github.com/socks-dev/socks/commands/bench"
	brokercmd "github.com/socks-dev/socks/commands/broker"
	"github.com/socks-dev/socks/commands/chatter"
	"github.com/socks-dev/socks/commands/clientjs"
	"github.com/socks-dev/socks/commands/cmdutil"
	configcmd "github.com/socks-dev/socks/commands/config"
	"github.com/socks-dev/socks/commands/demo"
	"github.com/socks-dev/socks/commands/deploy"
	"github.com/socks-dev/socks/commands/dlq"
	"github.com/socks-dev/socks/commands/docs"
	"github.com/socks-dev/socks/commands/doctor"
	"github.com/socks-dev/socks/commands/listen"
	"github.com/socks-dev/socks/commands/provision"
	"github.com/socks-dev/socks/commands/prune"
	"github.com/socks-dev/socks/commands/publish"
	"github.com/socks-dev/socks/commands/serve"
	"github.com/socks-dev/socks/commands/subs"
	"github.com/socks-dev/socks/commands/version"
	"github.com/socks-dev/socks/config"
	"github.com/socks-dev/socks/internal/text"
)

const exitCodes = `Exit codes:
  0    success
  1    error
  2    bad flags, arguments or input
  3    nothing found (one named thing, or a state dir nothing has run in;
       an empty list is exit 0)
  4    a wait timed out (listen --timeout, publish --wait)
  5    the gateway refused the connection (401/403)
  130  interrupted (Ctrl-C, SIGTERM); also a second Ctrl-C, which stops
       at once what the first let finish
  141  standard output was closed (| head -1); the command cleaned up
  143  a second SIGTERM stopped the command at once`

// globalFlags are the persistent flags NewCmdRoot defines, all strings
// whose absence means a default.
var globalFlags = []string{"backend", "state-dir", "stack", "region", "config", "config-profile", "profile",
	"endpoint-url", "dynamodb-endpoint-url", "sqs-endpoint-url", "callback-url", "websocket-url"}

// NewCmdRoot returns the root command with every subcommand.
func NewCmdRoot(f *cmdutil.Factory) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "socks <command>",
		Short: "Push server events to browsers over WebSockets, on AWS or locally",
		Long: `socks runs and operates a publish/subscribe push system over WebSockets.

In production it runs on API Gateway WebSocket APIs, Lambda, DynamoDB and
SQS. With no configuration it uses an embedded local stack instead: a
WebSocket gateway that behaves like API Gateway ('socks serve') and a state
file shared by every socks process.

A browser connects with a chatter ID (a per-login secret):
  ws://HOST/?geek=NAME&id=CHATTER_ID&topic=updates
and receives whatever is published to that geek and topic.`,
		Example: `  # See the whole flow on a throwaway local stack
  socks demo

  # Run the local gateway and broker, then publish from another terminal
  socks serve
  socks publish --geek Friendless --topic updates --message 'stats refreshed'`,
		SilenceUsage:  true,
		SilenceErrors: true,
		// A global flag given empty (--config-profile "$P" with P unset)
		// would quietly mean the default: another profile, state or stack.
		PersistentPreRunE: func(c *cobra.Command, _ []string) error {
			// Every command's --json, recorded where Main's signal
			// handler reads it: its notes on stderr follow the flag too.
			if fl := c.Flags().Lookup("json"); fl != nil && fl.Value.Type() == "bool" {
				f.SetJSONOut(fl.Value.String() == "true")
			}
			return cmdutil.NotEmpty(c, globalFlags...)
		},
	}
	// socks --version (and -v) as `socks version`.
	cmd.Version = version.Line(f.Build)
	cmd.SetVersionTemplate("{{.Version}}\n")
	cmd.SetIn(f.IOStreams.In)
	cmd.SetOut(f.IOStreams.Out)
	cmd.SetErr(f.IOStreams.ErrOut)
	// A noun (subs, dlq) runs only to refuse a mistyped verb: its usage
	// is its commands, not a usage line of its own.
	usage := strings.Replace(cmd.UsageTemplate(), "Usage:{{if .Runnable}}", "Usage:{{if and .Runnable (not .HasAvailableSubCommands)}}", 1)
	// A command that refuses the global flags (demo) does not list them.
	usage = strings.Replace(usage, "{{if .HasAvailableInheritedFlags}}",
		`{{if and .HasAvailableInheritedFlags (not (index .Annotations "`+cmdutil.RefusesInheritedFlags+`"))}}`, 1)
	cmd.SetUsageTemplate(usage + "\n" + exitCodes + "\n")
	cmd.Annotations = map[string]string{docs.Appendix: exitCodes}
	cmd.SetFlagErrorFunc(func(c *cobra.Command, err error) error {
		return &cmdutil.FlagError{Err: flagValueError(c, err)}
	})

	pf := cmd.PersistentFlags()
	pf.StringVar(&f.Flags.Backend, "backend", "", fmt.Sprintf("backend to use: local or aws (env %s; default local)", config.EnvBackend))
	pf.StringVar(&f.Flags.StateDir, "state-dir", "", fmt.Sprintf("directory of the local state file (env %s; default $XDG_STATE_HOME/socks, else ~/.local/state/socks)", config.EnvStateDir))
	pf.StringVar(&f.Flags.Stack, "stack", "", fmt.Sprintf("AWS: name prefix of the tables and queues (env %s; default %q)", config.EnvStack, config.DefaultStack))
	pf.StringVar(&f.Flags.Region, "region", "", fmt.Sprintf("AWS: region (env %s; else the config profile's region, then AWS_REGION, AWS_DEFAULT_REGION, the AWS profile's region)", config.EnvRegion))
	pf.StringVar(&f.Flags.ConfigFile, "config", "", fmt.Sprintf("config file with named profiles (env %s; default $XDG_CONFIG_HOME/socks/config.toml, else ~/.config/socks/config.toml)", config.EnvConfig))
	pf.StringVar(&f.Flags.ConfigProfile, "config-profile", "", fmt.Sprintf("profile of the config file to use (env %s; default: the file's default_profile)", config.EnvConfigProfile))
	_ = cmd.MarkPersistentFlagFilename("config", "toml")
	pf.StringVar(&f.Flags.Profile, "profile", "", fmt.Sprintf("AWS: shared config profile (env %s; else the config profile's aws_profile, then AWS_PROFILE)", config.EnvProfile))
	pf.StringVar(&f.Flags.Endpoint, "endpoint-url", "", fmt.Sprintf("AWS: send every AWS call here (DynamoDB, SQS and, for deploy, IAM, Lambda, API Gateway, STS, CloudWatch Logs), e.g. an emulator; AWS_ENDPOINT_URL_<SERVICE> overrides it per service (env %s)", config.EnvEndpointURL))
	pf.StringVar(&f.Flags.DynamoDBEndpoint, "dynamodb-endpoint-url", "", fmt.Sprintf("AWS: send DynamoDB calls here, overriding --endpoint-url (env %s)", config.EnvDynamoDBEndpointURL))
	pf.StringVar(&f.Flags.SQSEndpoint, "sqs-endpoint-url", "", fmt.Sprintf("AWS: send SQS calls here, overriding --endpoint-url (env %s)", config.EnvSQSEndpointURL))
	pf.StringVar(&f.Flags.Callback, "callback-url", "", fmt.Sprintf("AWS: the Management API endpoint https://{api-id}.execute-api.{region}.amazonaws.com/{stage} (env %s)", config.EnvCallback))
	pf.StringVar(&f.Flags.WebSocket, "websocket-url", "", fmt.Sprintf("AWS: the wss:// URL clients connect to (env %s)", config.EnvWebSocket))
	_ = cmd.RegisterFlagCompletionFunc("backend", cobra.FixedCompletions([]string{config.BackendLocal, config.BackendAWS}, cobra.ShellCompDirectiveNoFileComp))
	_ = cmd.MarkPersistentFlagDirname("state-dir")

	cmd.AddCommand(
		demo.NewCmdDemo(f, nil),
		serve.NewCmdServe(f, nil),
		clientjs.NewCmdClientJS(f, nil),
		chatter.NewCmdChatter(f),
		publish.NewCmdPublish(f, nil),
		listen.NewCmdListen(f, nil),
		subs.NewCmdSubs(f),
		prune.NewCmdPrune(f, nil),
		doctor.NewCmdDoctor(f, nil),
		dlq.NewCmdDLQ(f),
		brokercmd.NewCmdBroker(f, nil),
		benchcmd.NewCmdBench(f, nil),
		provision.NewCmdProvision(f, nil),
		provision.NewCmdTeardown(f, nil),
		deploy.NewCmdDeploy(f, nil),
		configcmd.NewCmdConfig(f, nil),
		version.NewCmdVersion(f, nil),
		docs.NewCmdDocs(f, nil),
	)
	// Cobra's own completion command, made now (after SetOut, which its
	// scripts are written to) so that it gets an example like the rest.
	cmd.InitDefaultCompletionCmd()
	if c, _, err := cmd.Find([]string{"completion"}); err == nil && c != cmd {
		c.Example = "  source <(socks completion bash)\n  socks completion zsh > \"${fpath[1]}/_socks\""
		c.Annotations = map[string]string{verbKind: "shell"}
	}
	// `socks help nope` printed "Unknown help topic" and the whole usage
	// on stdout, and exited 0: a usage error, as an unknown command is.
	cmd.InitDefaultHelpCmd()
	if h, _, err := cmd.Find([]string{"help"}); err == nil && h != cmd && h.Run != nil {
		show := h.Run
		h.Run = nil
		h.RunE = func(c *cobra.Command, args []string) error {
			msg := fmt.Sprintf("unknown help topic %q", strings.Join(args, " "))
			t, rest, err := c.Root().Find(args)
			if t == nil || err != nil {
				if s := c.Root().SuggestionsFor(args[0]); len(s) > 0 {
					return cmdutil.FlagErrorf("%s: did you mean %s?", msg, text.Or(s))
				}
				return cmdutil.FlagErrorf("%s: `socks help` lists the commands", msg)
			}
			// `socks help subs lst` showed the help of subs and exited
			// 0: a word left over after the command found is as
			// unknown a topic as `socks help nope`.
			if i := slices.IndexFunc(rest, func(a string) bool { return !strings.HasPrefix(a, "-") }); i >= 0 {
				name := strings.TrimPrefix(t.CommandPath(), c.Root().Name()+" ")
				// One suggestion, or none: a word as near to several
				// verbs is a slip of none of them (completion tcsh).
				switch s := t.SuggestionsFor(rest[i]); {
				case len(s) == 1:
					return cmdutil.FlagErrorf("%s: did you mean %s %s?", msg, name, s[0])
				case t.HasSubCommands():
					return cmdutil.FlagErrorf("%s: `socks help %s` lists its commands", msg, name)
				default:
					return cmdutil.FlagErrorf("%s: `socks help %s` shows its help", msg, name)
				}
			}
			show(c, args)
			return nil
		}
	}
	// Every subcommand reports bad arguments as usage errors, saying what
	// it takes rather than cobra's "unknown command" or "accepts 1
	// arg(s)".
	for _, c := range allCommands(cmd) {
		// A flag that takes a path expands ~ where no shell did
		// (--id-file=~/x); before OneValueEach, which then keeps the
		// value as given.
		cmdutil.ExpandHomeInPaths(c.PersistentFlags(), f.Getenv)
		cmdutil.ExpandHomeInPaths(c.Flags(), f.Getenv)
		// A flag that holds one value given two refuses the second,
		// rather than keep it and drop the first without a word.
		cmdutil.OneValueEach(c.PersistentFlags())
		cmdutil.OneValueEach(c.Flags())
		if c.HasParent() && c.HasSubCommands() && !c.Runnable() {
			// A noun (subs, dlq, chatter): cobra printed its help and
			// exited 0 for a mistyped verb, so `socks subs lst` in a
			// script passed. Unknown flags are ignored here so that
			// `socks dlq redrvie --all` names the verb, not --all.
			c.FParseErrWhitelist.UnknownFlags = true
			c.SuggestionsMinimumDistance = 2
			c.Args = cobra.ArbitraryArgs
			c.RunE = unknownVerb
			continue
		}
		if c.Args != nil {
			args := c.Args
			c.Args = func(c *cobra.Command, a []string) error {
				if err := args(c, a); err != nil {
					return &cmdutil.FlagError{Err: argsError(c, args, a)}
				}
				return nil
			}
		}
	}
	return cmd
}

// verbKind is the annotation of a noun whose verbs are not commands to
// the user: what a word that is none of them is called ("shell").
const verbKind = "socks_verb_kind"

// unknownVerb is the RunE of a noun: its help without arguments, a usage
// error naming the mistyped verb with them, and the verb it is a slip of,
// or every verb when it is a slip of none or of several alike (completion
// tcsh was "did you mean bash or fish or zsh?", powershell left out).
func unknownVerb(c *cobra.Command, args []string) error {
	if len(args) == 0 {
		return c.Help()
	}
	kind := "command"
	if k := c.Annotations[verbKind]; k != "" {
		kind = k
	}
	msg := fmt.Sprintf("unknown %s %q for %q", kind, args[0], c.CommandPath())
	if s := c.SuggestionsFor(args[0]); len(s) == 1 {
		return cmdutil.FlagErrorf("%s: did you mean %s?", msg, s[0])
	}
	var verbs []string
	for _, v := range c.Commands() {
		if v.IsAvailableCommand() {
			verbs = append(verbs, v.Name())
		}
	}
	return cmdutil.FlagErrorf("%s: give %s", msg, text.Or(verbs))
}

// argsError says what c takes when validate refused args: cobra said
// "unknown command" of a stray word for a command that has none, and
// "accepts 1 arg(s), received 0".
func argsError(c *cobra.Command, validate cobra.PositionalArgs, args []string) error {
	name := strings.TrimPrefix(c.CommandPath(), c.Root().Name()+" ") // Main says "socks: "
	takes := -1                                                      // the fewest arguments validate accepts
	for n := range 4 {
		if validate(c, make([]string, n)) == nil {
			takes = n
			break
		}
	}
	switch {
	case takes == 0 && len(args) > 0 && takesValueSet(c):
		// The stray word is most often the rest of a value with a
		// space in it.
		return fmt.Errorf("%s takes no arguments, but got %q: a value with spaces needs quotes", name, args[0])
	case takes == 0 && len(args) > 0:
		// No flag took a value, so the word is none's rest: most often
		// a value given without its flag (subs list NAME for --geek).
		return fmt.Errorf("%s takes no arguments, but got %q: give values with their flags", name, args[0])
	case takes > 0:
		return fmt.Errorf("%s takes %s, but got %d: %s", name, text.Pluralize(takes, "argument"), len(args), strings.TrimSuffix(c.UseLine(), " [flags]"))
	}
	return validate(c, args)
}

// takesValueSet reports whether a flag that takes a value (not a bool)
// was given to c, whose value a stray word may be the rest of.
func takesValueSet(c *cobra.Command) bool {
	set := false
	c.Flags().Visit(func(f *pflag.Flag) {
		if f.Value.Type() != "bool" {
			set = true
		}
	})
	return set
}

// flagValueError says in words what a flag's value should be, for the
// kinds of value Go's parsers describe in their own terms ("time: missing
// unit in duration", "strconv.ParseInt: parsing ...").
func flagValueError(c *cobra.Command, err error) error {
	var repeated *cmdutil.RepeatedFlagError
	if errors.As(err, &repeated) {
		// pflag's wording would echo the value, and a duration's would
		// call it "not a duration".
		return repeated
	}
	var unknown *pflag.NotExistError
	if errors.As(err, &unknown) && unknown.GetSpecifiedShortnames() == "" {
		// A long flag: chatter issue spells it --topics where publish
		// and listen say --topic, and a slip said only "unknown flag".
		if near := nearestFlag(c, unknown.GetSpecifiedName()); near != "" {
			return fmt.Errorf("%w: did you mean --%s?", err, near)
		}
		return err
	}
	var bad *pflag.InvalidValueError
	if !errors.As(err, &bad) {
		return err
	}
	name := "--" + bad.GetFlag().Name
	if _, ok := bad.GetFlag().Annotations[cmdutil.ExpandsHome]; ok {
		// A ~ with no home folder to expand it to.
		return fmt.Errorf("%s %q: %w", name, bad.GetValue(), errors.Unwrap(bad))
	}
	switch bad.GetFlag().Value.Type() {
	case "duration":
		return fmt.Errorf("%s %q is not a duration: give a number with a unit, as 30s, 5m or 2h", name, bad.GetValue())
	case "int", "int8", "int16", "int32", "int64", "uint", "uint8", "uint16", "uint32", "uint64":
		return fmt.Errorf("%s %q is not a whole number", name, bad.GetValue())
	case "float32", "float64":
		return fmt.Errorf("%s %q is not a number", name, bad.GetValue())
	case "bool":
		return fmt.Errorf("%s=%q: give true or false (or the flag alone for true)", name, bad.GetValue())
	}
	return err
}

// nearestFlag is the flag of c (its own or inherited) that name is a slip
// of, at most two letters off, _ for - and case aside (as config's
// nearest key); "" when none is, or two are as near.
func nearestFlag(c *cobra.Command, name string) string {
	fold := func(s string) string { return strings.ReplaceAll(strings.ToLower(s), "_", "-") }
	name = fold(name)
	best, bestD, tie := "", 3, false
	visit := func(f *pflag.Flag) {
		if f.Hidden {
			return
		}
		switch d := text.EditDistance(name, fold(f.Name)); {
		case d < bestD:
			best, bestD, tie = f.Name, d, false
		case d == bestD && f.Name != best:
			tie = true
		}
	}
	c.Flags().VisitAll(visit)
	c.InheritedFlags().VisitAll(visit)
	if tie {
		return ""
	}
	return best
}

func allCommands(c *cobra.Command) []*cobra.Command {
	out := []*cobra.Command{c}
	for _, s := range c.Commands() {
		out = append(out, allCommands(s)...)
	}
	return out
}
