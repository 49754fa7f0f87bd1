// Package config implements `socks config`: the effective configuration.
package config

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/socks-dev/socks/awsops"
	"github.com/socks-dev/socks/commands/cmdutil"
	"github.com/socks-dev/socks/config"
	"github.com/socks-dev/socks/iostreams"
	"github.com/socks-dev/socks/ui"
)

// Options are the inputs of `socks config`.
type Options struct {
	IO     *iostreams.IOStreams
	Config func() (config.Config, error)
	// Getenv reads the AWS credential variables, to say whether they are
	// set (never their secret values).
	Getenv func(string) string
	JSON   bool
}

// NewCmdConfig returns `socks config`.
func NewCmdConfig(f *cmdutil.Factory, runF func(context.Context, *Options) error) *cobra.Command {
	opts := &Options{IO: f.IOStreams, Config: f.Config, Getenv: f.Getenv}
	cmd := &cobra.Command{
		Use:   "config",
		Short: "Print the effective configuration",
		Long: `Print the configuration socks would use: the backend, where it came from
(flag, environment, config profile or default), the config file it read
(or, with none, where it would read one) and the local state directory;
on the AWS backend also the stack with its table and queue
names, the region, profile, endpoints, and which credentials the SDK will
use (the access key ID masked but for its last four characters, secrets
only as "set"; a web identity token file, AWS_WEB_IDENTITY_TOKEN_FILE, and
the role it assumes, AWS_ROLE_ARN, by name). A "note"
line names an AWS_REGION, AWS_DEFAULT_REGION or AWS_PROFILE in the
environment that the selected config profile overrode.

A local gateway on an address other than loopback (or with serve
--require-signature) requires @connections calls signed with the key pair
in the state dir; "gateway keys" names the file, and "sign with" the
environment that makes the AWS CLI, boto3 and the SDKs use it.`,
		Example: "  socks config\n  SOCKS_STATE_DIR=/tmp/s socks config --json",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if runF != nil {
				return runF(cmd.Context(), opts)
			}
			return configRun(cmd.Context(), opts)
		},
	}
	cmd.Flags().BoolVar(&opts.JSON, "json", false, "print as JSON")
	return cmd
}

// Output is what `socks config --json` prints: the configuration, and on
// the AWS backend the resource names and the masked credentials.
type Output struct {
	config.Config
	Resources   *Resources   `json:"resources,omitempty"`
	Credentials *Credentials `json:"credentials,omitempty"`
	// GatewayKeys says where the local gateway's key pair is and how to
	// sign @connections calls with it; never the secret.
	GatewayKeys *GatewayKeys `json:"gatewayKeys"`
}

// GatewayKeys describes the key pair file of the local gateway.
type GatewayKeys struct {
	File    string `json:"file"`
	Profile string `json:"profile"`
	Exists  bool   `json:"exists"`
	// Use is the environment that makes the AWS CLI, boto3 and the SDKs
	// sign with the key pair.
	Use string `json:"use"`
}

// Resources are the AWS stack's table and queue names.
type Resources struct {
	Tables awsops.Tables `json:"tables"`
	Queues awsops.Queues `json:"queues"`
}

// Credentials says which credential variables are set, never their
// secrets.
type Credentials struct {
	// AccessKeyID is AWS_ACCESS_KEY_ID masked but for its last four
	// characters ("" when unset).
	AccessKeyID     string `json:"accessKeyId,omitempty"`
	SecretAccessKey string `json:"secretAccessKey"`
	SessionToken    string `json:"sessionToken"`
	// WebIdentityTokenFile is AWS_WEB_IDENTITY_TOKEN_FILE, and RoleARN
	// AWS_ROLE_ARN, the role the SDK assumes with that token (neither
	// is a secret; both "" when the file is not set).
	WebIdentityTokenFile string `json:"webIdentityTokenFile,omitempty"`
	RoleARN              string `json:"roleArn,omitempty"`
	// Source says where the SDK will look: "environment" when the keys
	// are set, else the profile or the default chain.
	Source string `json:"source"`
}

// MaskKey hides all but the last four characters of an access key ID.
func MaskKey(k string) string {
	if k == "" {
		return ""
	}
	if len(k) <= 4 {
		return strings.Repeat("*", len(k))
	}
	return strings.Repeat("*", len(k)-4) + k[len(k)-4:]
}

func setOrNot(v string) string {
	if v == "" {
		return "not set"
	}
	return "set (hidden)"
}

func credentials(cfg config.Config, getenv func(string) string) *Credentials {
	if getenv == nil {
		getenv = func(string) string { return "" }
	}
	c := &Credentials{
		AccessKeyID:     MaskKey(getenv("AWS_ACCESS_KEY_ID")),
		SecretAccessKey: setOrNot(getenv("AWS_SECRET_ACCESS_KEY")),
		SessionToken:    setOrNot(getenv("AWS_SESSION_TOKEN")),
	}
	// A profile socks names goes to the SDK as its profile, which the
	// SDK uses before keys in the environment; then comes a web identity
	// token (AWS_WEB_IDENTITY_TOKEN_FILE, with the role AWS_ROLE_ARN);
	// AWS_PROFILE, which the SDK reads itself, comes after them. The SDK
	// takes keys from the environment only as a pair.
	id, secret := getenv("AWS_ACCESS_KEY_ID") != "", getenv("AWS_SECRET_ACCESS_KEY") != ""
	keys := id && secret
	webID := getenv("AWS_WEB_IDENTITY_TOKEN_FILE")
	if webID != "" {
		c.WebIdentityTokenFile, c.RoleARN = webID, getenv("AWS_ROLE_ARN")
	}
	const webIDUnused = "; AWS_WEB_IDENTITY_TOKEN_FILE is not used"
	switch profile := cfg.AWS.Profile; {
	case profile != "" && keys:
		c.Source = "profile " + profile + " (the keys in AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY are not used)"
	case profile != "":
		c.Source = "profile " + profile
	case keys:
		c.Source = "environment (AWS_ACCESS_KEY_ID)"
	case webID != "" && c.RoleARN == "":
		c.Source = "web identity, but AWS_ROLE_ARN is not set: the SDK fails; set AWS_ROLE_ARN to the role to assume with the token in " + webID + " (AWS_WEB_IDENTITY_TOKEN_FILE), or unset it"
	case webID != "" && unreadable(webID) != "":
		// The SDK reads the file when it first needs credentials.
		c.Source = "web identity, but the token file " + webID + " (AWS_WEB_IDENTITY_TOKEN_FILE) " + unreadable(webID) + ": the SDK fails; point AWS_WEB_IDENTITY_TOKEN_FILE at the token, or unset it"
	case webID != "":
		c.Source = "web identity: role " + c.RoleARN + ", assumed with the token in " + webID + " (AWS_WEB_IDENTITY_TOKEN_FILE)"
		if getenv("AWS_PROFILE") != "" {
			c.Source += "; AWS_PROFILE is not used"
		}
	case getenv("AWS_PROFILE") != "":
		c.Source = "profile " + getenv("AWS_PROFILE")
	default:
		c.Source = "the SDK's default chain (shared files, SSO, container or instance role)"
	}
	if webID != "" && (cfg.AWS.Profile != "" || keys) {
		c.Source += webIDUnused
	}
	if webID == "" && getenv("AWS_ROLE_ARN") != "" {
		c.Source += "; AWS_ROLE_ARN is not used: the SDK assumes it only with a token in AWS_WEB_IDENTITY_TOKEN_FILE"
	}
	switch {
	case id && !secret:
		c.Source += "; AWS_ACCESS_KEY_ID is set without AWS_SECRET_ACCESS_KEY, so it is not used"
	case secret && !id:
		c.Source += "; AWS_SECRET_ACCESS_KEY is set without AWS_ACCESS_KEY_ID, so it is not used"
	}
	return c
}

// unreadable says why the web identity token file at path cannot be
// read ("does not exist"), or "" when nothing is known against it. It is
// not opened: a named pipe would wait for its writer.
func unreadable(path string) string {
	st, err := os.Stat(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return "does not exist"
	case err != nil:
		return "cannot be read (" + err.Error() + ")"
	case st.IsDir():
		return "is a directory"
	}
	return ""
}

// webIdentityRow is the web identity token file and its role, or "-".
func webIdentityRow(c *Credentials) string {
	if c.WebIdentityTokenFile == "" {
		return "-"
	}
	role := c.RoleARN
	if role == "" {
		role = "no AWS_ROLE_ARN"
	}
	return c.WebIdentityTokenFile + " (role " + role + ")"
}

func configRun(_ context.Context, opts *Options) error {
	cfg, err := opts.Config()
	if err != nil {
		return err
	}
	out := Output{Config: cfg}
	if cfg.Backend == config.BackendAWS {
		out.Resources = &Resources{Tables: awsops.TablesFor(cfg.AWS.Stack), Queues: awsops.QueuesFor(cfg.AWS.Stack)}
		out.Credentials = credentials(cfg, opts.Getenv)
	}
	keysPath := cfg.ManagementKeysPath()
	_, statErr := os.Stat(keysPath)
	out.GatewayKeys = &GatewayKeys{
		File: keysPath, Profile: config.ManagementProfile, Exists: statErr == nil,
		Use: "AWS_SHARED_CREDENTIALS_FILE=" + keysPath + " AWS_PROFILE=" + config.ManagementProfile,
	}
	if opts.JSON {
		return cmdutil.PrintJSON(opts.IO.Out, out)
	}
	u := ui.New(opts.IO)
	src := cfg.Source
	rows := [][]string{
		{"backend", cfg.Backend, src("backend")},
		{"config file", configFileRow(cfg.ConfigFile, opts.Getenv), ""},
		{"profile", orDash(cfg.Profile), ""},
		{"state dir", cfg.StateDir, src("state_dir")},
		{"state file", cfg.StatePath(), ""},
	}
	if m := cfg.Mapping; m != nil {
		rows = append(rows, []string{"event mapping", m.String(), src("mapping")})
	}
	if k := out.GatewayKeys; k.Exists {
		rows = append(rows,
			[]string{"gateway keys", k.File + " (profile " + k.Profile + ")", ""},
			[]string{"sign with", k.Use, ""})
	} else {
		rows = append(rows, []string{"gateway keys", "none yet (`socks serve` writes " + k.File + " off loopback or with --require-signature)", ""})
	}
	if cfg.Backend == config.BackendAWS {
		a, r, c := cfg.AWS, out.Resources, out.Credentials
		rows = append(rows,
			[]string{"stack", a.Stack, src("stack")},
			[]string{"tables", strings.Join(r.Tables.Names(), ", "), ""},
			[]string{"queues", r.Queues.Main + ", " + r.Queues.DeadLetter, ""},
			[]string{"region", orDash(a.Region), src("region")},
			[]string{"aws profile", orDash(a.Profile), src("aws_profile")},
			[]string{"endpoint url", orDash(a.EndpointURL), src("endpoint_url")},
			[]string{"dynamodb url", orDash(a.DynamoDBEndpoint()), src("dynamodb_endpoint_url")},
			[]string{"sqs url", orDash(a.SQSEndpoint()), src("sqs_endpoint_url")},
			[]string{"websocket url", orDash(a.WebSocketURL), src("websocket_url")},
			[]string{"callback url", orDash(a.CallbackURL), src("callback_url")},
			[]string{"credentials", c.Source, ""},
			[]string{"web identity", webIdentityRow(c), ""},
			[]string{"access key", orDash(c.AccessKeyID), ""},
			[]string{"secret key", c.SecretAccessKey, ""},
			[]string{"session token", c.SessionToken, ""},
		)
	}
	for _, n := range cfg.Notes {
		rows = append(rows, []string{"note", n, ""})
	}
	for _, r := range rows {
		// A path or a URL may hold anything, as the environment that
		// set it, and a source names the profile, which is any string
		// the config file holds: u.Text shows them.
		r[1], r[2] = u.Text(r[1]), u.Text(r[2])
	}
	if !u.Styled() {
		// name, value and, for the backend, where it came from.
		for _, r := range rows {
			line := r[0] + "\t" + r[1]
			if r[2] != "" {
				line += "\t" + r[2]
			}
			fmt.Fprintln(opts.IO.Out, line)
		}
		return nil
	}
	for _, r := range rows {
		line := fmt.Sprintf("%s %s", u.Label.Render(fmt.Sprintf("%-13s", r[0])), r[1])
		if r[2] != "" {
			line += " " + u.Muted.Render("("+r[2]+")")
		}
		fmt.Fprintln(opts.IO.Out, line)
	}
	return nil
}

// configFileRow is the config file read, or "-" and where one would be
// read, for a newcomer who wants profiles.
func configFileRow(file string, getenv func(string) string) string {
	if file != "" || getenv == nil {
		return orDash(file)
	}
	if p := config.DefaultConfigPath(getenv); p != "" {
		return "- (none at " + p + ")"
	}
	return "-"
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
