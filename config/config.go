// Package config resolves the effective configuration of one socks
// invocation: which backend, where the local state lives, and (for the AWS
// backend) region, names and endpoints. Precedence is flag, then environment
// variable, then the selected profile of the config file (file.go), then
// default. Only this package knows the environment variable names.
package config

import (
	"cmp"
	"encoding/json"
	"fmt"
	"maps"
	"net/url"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"time"

	"github.com/socks-dev/socks/pubsub"
)

// Backends.
const (
	BackendLocal = "local"
	BackendAWS   = "aws"
)

// Environment variables socks reads.
const (
	EnvBackend     = "SOCKS_BACKEND"
	EnvStateDir    = "SOCKS_STATE_DIR"
	EnvStack       = "SOCKS_STACK"
	EnvRegion      = "SOCKS_REGION"
	EnvEndpointURL = "SOCKS_ENDPOINT_URL"
	EnvWebSocket   = "SOCKS_WEBSOCKET_URL"
	EnvCallback    = "SOCKS_CALLBACK_URL"
	EnvProfile     = "SOCKS_PROFILE"

	// EnvDynamoDBEndpointURL and EnvSQSEndpointURL point one service at
	// its own endpoint (emulators listen on separate ports); each takes
	// precedence over --endpoint-url for its service.
	EnvDynamoDBEndpointURL = "SOCKS_DYNAMODB_ENDPOINT_URL"
	EnvSQSEndpointURL      = "SOCKS_SQS_ENDPOINT_URL"

	// EnvAttemptTimeout bounds each HTTP attempt of every AWS call (a Go
	// duration above 0; awsops.DefaultAttemptTimeout when unset).
	EnvAttemptTimeout = "SOCKS_ATTEMPT_TIMEOUT"

	// EnvMapping holds the event mapping as JSON (for Lambda, where there
	// is no config file): {"topics":["/detail/entityId"],"users":"/detail/userId"}.
	EnvMapping = "SOCKS_EVENT_MAPPING"
)

// StateFile is the name of the embedded database inside the state dir.
const StateFile = "socks.db"

// Flags are the global flag values as given on the command line ("" = unset).
type Flags struct {
	Backend   string
	StateDir  string
	Stack     string
	Region    string
	Endpoint  string
	Profile   string
	Callback  string
	WebSocket string

	// DynamoDBEndpoint and SQSEndpoint override Endpoint for one service.
	DynamoDBEndpoint string
	SQSEndpoint      string

	// ConfigFile and ConfigProfile select the config file and its profile.
	ConfigFile    string
	ConfigProfile string

	// NewProfile is set by a command that saves into the selected
	// profile (deploy): a profile named by --config-profile or
	// SOCKS_CONFIG_PROFILE that the file lacks, or a file that does not
	// exist yet, is then a new, empty profile for it to create, unless
	// the name is a near miss of one the file has (a typo would deploy
	// with none of its settings).
	NewProfile bool
}

// Config is the effective configuration.
type Config struct {
	Backend  string `json:"backend"`
	StateDir string `json:"stateDir"`
	// Source says where Backend came from: "flag", "env", "profile NAME"
	// or "default".
	BackendSource string `json:"backendSource"`
	AWS           AWS    `json:"aws"`
	// ConfigFile is the config file read ("" if none) and Profile the
	// profile of it in effect ("" if none).
	ConfigFile string `json:"configFile,omitempty"`
	Profile    string `json:"profile,omitempty"`
	// NewProfile says that Profile is not in ConfigFile yet (or the file
	// does not exist): Flags.NewProfile let it be created.
	NewProfile bool `json:"-"`
	// Sources says where each setting that is set came from, by the
	// setting's name in the config file ("region": "profile prod").
	Sources map[string]string `json:"sources"`
	// Mapping turns EventBridge events whose detail is not an envelope
	// into envelopes; nil when none is configured.
	Mapping *pubsub.Mapping `json:"mapping,omitempty"`
	// Notes are what a user should know about how the settings were
	// chosen: an AWS_REGION or AWS_PROFILE in the environment that the
	// selected profile overrode (`socks config` shows them).
	Notes []string `json:"notes,omitempty"`
	// envs names the variable each setting whose source is "env" was
	// read from: the region has three (SOCKS_REGION, AWS_REGION,
	// AWS_DEFAULT_REGION).
	envs map[string]string
}

// AWS holds the AWS backend's settings.
type AWS struct {
	Profile     string `json:"profile,omitempty"`
	Region      string `json:"region,omitempty"`
	Stack       string `json:"stack"`
	EndpointURL string `json:"endpointUrl,omitempty"`
	// WebSocketURL is what clients connect to (wss://...).
	WebSocketURL string `json:"webSocketUrl,omitempty"`
	// CallbackURL is the Management API endpoint
	// (https://{api-id}.execute-api.{region}.amazonaws.com/{stage}).
	CallbackURL string `json:"callbackUrl,omitempty"`

	// DynamoDBEndpointURL and SQSEndpointURL override EndpointURL for one
	// service; DynamoDBEndpoint and SQSEndpoint say which is in effect.
	DynamoDBEndpointURL string `json:"dynamodbEndpointUrl,omitempty"`
	SQSEndpointURL      string `json:"sqsEndpointUrl,omitempty"`
}

// DynamoDBEndpoint is the endpoint DynamoDB calls go to ("" for AWS's own):
// the DynamoDB override, else the common endpoint URL.
func (a AWS) DynamoDBEndpoint() string {
	if a.DynamoDBEndpointURL != "" {
		return a.DynamoDBEndpointURL
	}
	return a.EndpointURL
}

// SQSEndpoint is the endpoint SQS calls go to ("" for AWS's own): the SQS
// override, else the common endpoint URL.
func (a AWS) SQSEndpoint() string {
	if a.SQSEndpointURL != "" {
		return a.SQSEndpointURL
	}
	return a.EndpointURL
}

// DefaultStack is the name prefix of the AWS resources.
const DefaultStack = "socks"

// StatePath is the embedded database's path.
func (c Config) StatePath() string { return filepath.Join(c.StateDir, StateFile) }

// ManagementKeysFile is the file in the state dir holding the key pair a
// local gateway requires @connections calls to be signed with, as an AWS
// shared credentials file with the profile ManagementProfile.
const ManagementKeysFile = "management-credentials"

// ManagementProfile is the profile name in ManagementKeysFile.
const ManagementProfile = "socks-local"

// ManagementKeysPath is where the local gateway's key pair is kept.
func (c Config) ManagementKeysPath() string { return filepath.Join(c.StateDir, ManagementKeysFile) }

// Resolve computes the effective configuration from flags and the
// environment (getenv), falling back to defaults.
func Resolve(f Flags, getenv func(string) string) (Config, error) {
	prof, profName, cfgFile, isNew, err := loadProfile(f, getenv)
	if err != nil {
		return Config{}, err
	}
	c := Config{ConfigFile: cfgFile, Profile: profName, NewProfile: isNew, Sources: map[string]string{}, envs: map[string]string{}}
	// pick takes the first of flag, environment variable, profile value.
	pick := func(key, flag, env, fromProfile string) string {
		switch {
		case flag != "":
			c.Sources[key] = "flag"
			return flag
		case env != "" && getenv(env) != "":
			c.Sources[key], c.envs[key] = "env", env
			return getenv(env)
		case fromProfile != "":
			c.Sources[key] = "profile " + profName
			return fromProfile
		}
		return ""
	}
	// Any case is taken; an unknown value is quoted as it was written.
	backend := pick("backend", f.Backend, EnvBackend, prof.Backend)
	c.Backend = strings.ToLower(backend)
	if c.Backend == "" {
		c.Backend, c.Sources["backend"] = BackendLocal, "default"
	}
	c.BackendSource = c.Sources["backend"]
	if c.Backend != BackendLocal && c.Backend != BackendAWS {
		return Config{}, c.refused("backend", fmt.Errorf("unknown backend %q (%s): use %q (the embedded default) or %q", backend, c.Origin("backend"), BackendLocal, BackendAWS))
	}
	if v := getenv(EnvAttemptTimeout); v != "" {
		// Read by awsops (every AWS client, and the Management API
		// client `socks broker` posts with on the local backend too),
		// which would leave its default for a value it cannot take: the
		// user set it for a reason.
		d, err := time.ParseDuration(v)
		switch {
		case err != nil:
			return Config{}, &EnvError{fmt.Errorf("$%s %q is not a duration: give a number with a unit, as 5s or 1m", EnvAttemptTimeout, v)}
		case d <= 0:
			return Config{}, &EnvError{fmt.Errorf("$%s %q must be above 0", EnvAttemptTimeout, v)}
		}
	}
	dir := pick("state_dir", f.StateDir, EnvStateDir, prof.StateDir)
	if dir != "" && c.Sources["state_dir"] == "profile "+profName {
		// No shell read the file: socks expands ~ itself, and a relative
		// path is taken from the file's folder, not from wherever socks
		// happens to run.
		d, err := profilePath(dir, cfgFile, getenv)
		if err != nil {
			return Config{}, fmt.Errorf("state_dir %q of profile %s: %w", dir, profName, err)
		}
		dir = d
	} else {
		// From a flag or the environment the shell has expanded ~
		// already, except in --state-dir=~/x or a quoted value.
		d, err := ExpandHome(dir, getenv)
		if err != nil {
			if c.Sources["state_dir"] == "env" {
				return Config{}, &EnvError{fmt.Errorf("$%s %q: %w", EnvStateDir, dir, err)}
			}
			return Config{}, fmt.Errorf("--state-dir %q: %w", dir, err)
		}
		dir = d
	}
	if dir == "" {
		d, err := DefaultStateDir(getenv)
		if err != nil {
			return Config{}, err
		}
		dir, c.Sources["state_dir"] = d, "default"
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return Config{}, fmt.Errorf("state dir %q: %w", dir, err)
	}
	c.StateDir = abs

	c.AWS.Stack = pick("stack", f.Stack, EnvStack, prof.Stack)
	if c.AWS.Stack == "" {
		c.AWS.Stack, c.Sources["stack"] = DefaultStack, "default"
	}
	// The AWS SDK's own AWS_REGION, AWS_DEFAULT_REGION and AWS_PROFILE
	// come after every socks setting, the selected profile included: they
	// are every AWS tool's and often left set in a shell, while the
	// profile names its region and account on purpose. One that a profile
	// overrode is noted, for `socks config`.
	sdkEnv := func(key, value, flag, socksEnv string, envs ...string) {
		for _, env := range envs {
			if v := getenv(env); v != "" && v != value && c.Sources[key] == "profile "+profName {
				c.Notes = append(c.Notes, fmt.Sprintf("%s=%s is ignored: profile %s sets %s %s (%s or %s overrides it)",
					env, v, profName, key, value, flag, socksEnv))
			}
		}
	}
	c.AWS.Region = pick("region", f.Region, EnvRegion, prof.Region)
	sdkEnv("region", c.AWS.Region, "--region", EnvRegion, "AWS_REGION", "AWS_DEFAULT_REGION")
	for _, env := range []string{"AWS_REGION", "AWS_DEFAULT_REGION"} {
		if c.AWS.Region == "" {
			c.AWS.Region = pick("region", "", env, "")
		}
	}
	c.AWS.EndpointURL = pick("endpoint_url", f.Endpoint, EnvEndpointURL, prof.EndpointURL)
	c.AWS.DynamoDBEndpointURL = pick("dynamodb_endpoint_url", f.DynamoDBEndpoint, EnvDynamoDBEndpointURL, prof.DynamoDBEndpoint)
	c.AWS.SQSEndpointURL = pick("sqs_endpoint_url", f.SQSEndpoint, EnvSQSEndpointURL, prof.SQSEndpoint)
	// With none of these, the SDK reads AWS_PROFILE itself.
	c.AWS.Profile = pick("aws_profile", f.Profile, EnvProfile, prof.AWSProfile)
	sdkEnv("aws_profile", c.AWS.Profile, "--profile", EnvProfile, "AWS_PROFILE")
	c.AWS.WebSocketURL = pick("websocket_url", f.WebSocket, EnvWebSocket, prof.WebSocketURL)
	c.AWS.CallbackURL = pick("callback_url", f.Callback, EnvCallback, prof.CallbackURL)
	if c.Mapping, err = resolveMapping(&c, getenv, prof.Mapping, profName); err != nil {
		return Config{}, err
	}
	if err := c.checkAWS(); err != nil {
		return Config{}, err
	}
	return c, nil
}

// checkAWS refuses, on the AWS backend, a region or an endpoint socks
// cannot take, as bad input from wherever it was given: the AWS backend
// checks them again (awsops.LoadConfig, backend.Open), but only as a
// failure of the environment.
func (c Config) checkAWS() error {
	if c.Backend != BackendAWS {
		return nil
	}
	if c.AWS.Region != "" {
		if err := CheckRegion(c.AWS.Region, c.Origin("region")); err != nil {
			return c.refused("region", err)
		}
	}
	for _, e := range []struct{ key, url string }{
		{"endpoint_url", c.AWS.EndpointURL},
		{"dynamodb_endpoint_url", c.AWS.DynamoDBEndpointURL},
		{"sqs_endpoint_url", c.AWS.SQSEndpointURL},
	} {
		if err := CheckEndpoint(c.Origin(e.key), e.url); err != nil {
			return c.refused(e.key, err)
		}
	}
	return nil
}

// refused types err, the value of setting key refused, by where it came
// from: from a profile it is a *FileError and from the environment an
// *EnvError (no flag of the command is wrong: the file or the variable
// is); from a flag it stays as it is.
func (c Config) refused(key string, err error) error {
	switch src := c.Sources[key]; {
	case strings.HasPrefix(src, "profile "):
		return &FileError{err}
	case src == "env":
		return &EnvError{err}
	}
	return err
}

// CheckEndpoint refuses an endpoint override (named by what, as Origin
// names it) that is not a URL, so that a typo never falls through to a
// real AWS endpoint.
func CheckEndpoint(what, raw string) error {
	if raw == "" {
		return nil
	}
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("bad %s %q: give a URL such as http://127.0.0.1:8000", what, raw)
	}
	return nil
}

// CheckRegion refuses a region (set where from names) that cannot be the
// host label AWS endpoints put it in: 1 to 63 letters, digits and '-',
// not at either end. One with a dot would send the calls to another host.
func CheckRegion(region, from string) error {
	ok := region != "" && len(region) <= 63 && region[0] != '-' && region[len(region)-1] != '-'
	for _, r := range region {
		ok = ok && (r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-')
	}
	if !ok {
		return fmt.Errorf("AWS region %q is not a region name (letters, digits and '-', like eu-west-1): check %s", region, from)
	}
	return nil
}

// settings are the settings with their key in the config file, flag and
// environment variable; awsOnly marks those only the AWS backend uses (not
// the region: AWS_REGION is set for other tools too).
var settings = []struct {
	key, flag, env string
	awsOnly        bool
}{
	{"backend", "--backend", EnvBackend, false},
	{"state_dir", "--state-dir", EnvStateDir, false},
	{"region", "--region", EnvRegion, false},
	{"callback_url", "--callback-url", EnvCallback, true},
	{"websocket_url", "--websocket-url", EnvWebSocket, true},
	{"stack", "--stack", EnvStack, true},
	{"endpoint_url", "--endpoint-url", EnvEndpointURL, true},
	{"dynamodb_endpoint_url", "--dynamodb-endpoint-url", EnvDynamoDBEndpointURL, true},
	{"sqs_endpoint_url", "--sqs-endpoint-url", EnvSQSEndpointURL, true},
	{"aws_profile", "--profile", EnvProfile, true},
}

// Origin names where setting key (its name in the config file) came from,
// as the user would find it to change it: its flag ("--stack"), the
// environment variable it was read from ("$SOCKS_STACK", "$AWS_REGION"),
// or the key in the profile ("stack of profile prod in config file F");
// the flag when the source is not known.
func (c Config) Origin(key string) string {
	for _, s := range settings {
		if s.key != key {
			continue
		}
		switch src := c.Sources[key]; {
		case src == "env":
			return "$" + cmp.Or(c.envs[key], s.env)
		case strings.HasPrefix(src, "profile "):
			o := key + " of " + src
			if c.ConfigFile != "" {
				o += " in config file " + c.ConfigFile
			}
			return o
		}
		return s.flag
	}
	return key
}

// Origins names where settings keys came from, as Origin does, joined
// with "and"; those of one profile are named once with it: "stack and
// region of profile prod in config file F".
func (c Config) Origins(keys ...string) string {
	var parts []string
	suffix := func(key string) string {
		o := c.Origin(key)
		if strings.HasPrefix(o, key+" of profile ") {
			return strings.TrimPrefix(o, key)
		}
		return ""
	}
	for i := 0; i < len(keys); i++ {
		s := suffix(keys[i])
		if s == "" {
			parts = append(parts, c.Origin(keys[i]))
			continue
		}
		names := []string{keys[i]}
		for i+1 < len(keys) && suffix(keys[i+1]) == s {
			i++
			names = append(names, keys[i])
		}
		parts = append(parts, strings.Join(names, " and ")+s)
	}
	return strings.Join(parts, " and ")
}

// Source is where setting key came from, as Sources says it but for one
// from the environment, named by its variable ("$AWS_REGION", not "env":
// the region is read from three); "" when it is not set.
func (c Config) Source(key string) string {
	src := c.Sources[key]
	if v := c.envs[key]; src == "env" && v != "" {
		return "$" + v
	}
	return src
}

// UnusedAWSSettings names the AWS settings given (by flag, environment
// variable or profile) while the backend is local by default, not chosen:
// a half-made AWS configuration, which the local backend would otherwise
// serve without a word.
func (c Config) UnusedAWSSettings() []string {
	if c.Backend != BackendLocal || c.BackendSource != "default" {
		return nil
	}
	var out []string
	for _, s := range settings {
		if !s.awsOnly {
			continue
		}
		switch src := c.Sources[s.key]; {
		case src == "flag" || src == "env":
			// The flag, or the variable as errors name it: $SOCKS_STACK.
			out = append(out, c.Origin(s.key))
		case strings.HasPrefix(src, "profile "):
			out = append(out, s.key+" ("+src+")")
		}
	}
	return out
}

// profilePath is where a path written in the config file cfgFile points:
// ~ and ~/... are in HOME, a relative path is in the file's folder.
func profilePath(p, cfgFile string, getenv func(string) string) (string, error) {
	if inHome(p) {
		return ExpandHome(p, getenv)
	}
	if filepath.IsAbs(p) || cfgFile == "" {
		return p, nil
	}
	return filepath.Join(filepath.Dir(cfgFile), p), nil
}

// ExpandHome expands a ~ at the start of path p that stands for the home
// folder (see inHome), as a shell would: every path socks takes goes
// through it, for no shell expands ~ in --flag=~/x, in a quoted value or
// in the config file. Any other path ("-" for standard input, "~user/x")
// is returned as written. With no home folder known, a ~ is an error
// that says so, rather than a folder named "~".
func ExpandHome(p string, getenv func(string) string) (string, error) {
	if !inHome(p) {
		return p, nil
	}
	home := homeDir(getenv)
	if home == "" {
		return "", fmt.Errorf("%s is not set, so ~ cannot be expanded: write the whole path", homeVar())
	}
	// Past "~/" (or, on Windows, `~\`).
	return filepath.Join(home, p[min(2, len(p)):]), nil
}

// inHome reports whether path p starts with a ~ that stands for the home
// folder: "~" or "~/...", and on Windows "~\..." too. "~user" is left
// as written.
func inHome(p string) bool {
	return p == "~" || strings.HasPrefix(p, "~/") || goos == "windows" && strings.HasPrefix(p, `~\`)
}

// DefaultStateDir follows the XDG base directory spec:
// $XDG_STATE_HOME/socks, else $HOME/.local/state/socks.
func DefaultStateDir(getenv func(string) string) (string, error) {
	if x := getenv("XDG_STATE_HOME"); x != "" && filepath.IsAbs(x) {
		return filepath.Join(x, "socks"), nil
	}
	home := homeDir(getenv)
	if home == "" {
		return "", fmt.Errorf("cannot find a state directory: %s is not set; pass --state-dir or set %s", homeVar(), EnvStateDir)
	}
	return filepath.Join(home, ".local", "state", "socks"), nil
}

// goos is runtime.GOOS; tests change it.
var goos = runtime.GOOS

// homeDir is the user's home folder ("" when unknown): HOME, else on
// Windows, which does not set HOME, USERPROFILE (as os.UserHomeDir).
func homeDir(getenv func(string) string) string {
	if h := getenv("HOME"); h != "" || goos != "windows" {
		return h
	}
	return getenv("USERPROFILE")
}

// homeVar names the variables homeDir reads, for an error.
func homeVar() string {
	if goos == "windows" {
		return "HOME (or USERPROFILE)"
	}
	return "HOME"
}

// resolveMapping takes the event mapping from SOCKS_EVENT_MAPPING, else from
// the profile, and checks its syntax.
func resolveMapping(c *Config, getenv func(string) string, fromProfile *pubsub.Mapping, profName string) (*pubsub.Mapping, error) {
	m, where := fromProfile, "profile "+profName
	if s := getenv(EnvMapping); s != "" {
		m, where = new(pubsub.Mapping), "$"+EnvMapping
		if err := jsonTwins(s); err != nil {
			return nil, &EnvError{err}
		}
		dec := json.NewDecoder(strings.NewReader(s))
		dec.DisallowUnknownFields()
		if err := dec.Decode(m); err != nil {
			return nil, &EnvError{fmt.Errorf("$%s %s: write JSON such as {\"topics\":[\"/detail/entityId\"],\"users\":\"/detail/userId\"}", EnvMapping, describeMappingError(s, err))}
		}
		c.Sources["mapping"], c.envs["mapping"] = "env", EnvMapping
	} else if m != nil {
		c.Sources["mapping"] = where
	}
	if m == nil {
		return nil, nil
	}
	if err := m.Check(); err != nil {
		err = fmt.Errorf("event mapping from %s: %w", where, err)
		switch {
		case where == "$"+EnvMapping:
			err = &EnvError{err}
		case c.ConfigFile != "":
			// No flag of the command is wrong: the file is.
			err = &FileError{fmt.Errorf("config file %s: %w", c.ConfigFile, err)}
		}
		return nil, err
	}
	return m, nil
}

// jsonTwins finds a key of the JSON object s (SOCKS_EVENT_MAPPING)
// written twice, in one case or two (nil when none, or when s is not an
// object, which the decoder then says). As in the config file
// (caseTwins), encoding/json matches keys whatever their case, and of
// two the last silently counts.
func jsonTwins(s string) error {
	dec := json.NewDecoder(strings.NewReader(s))
	if t, err := dec.Token(); err != nil || t != json.Delim('{') {
		return nil
	}
	var seen []string
	for dec.More() {
		t, err := dec.Token()
		if err != nil {
			return nil
		}
		k, _ := t.(string)
		for _, first := range seen {
			switch {
			case first == k:
				return fmt.Errorf("$%s sets %q twice; only one of them would count: keep one", EnvMapping, k)
			case strings.EqualFold(first, k):
				return fmt.Errorf("$%s sets %q after %q; %s", EnvMapping, k, first, caseTwinAdvice)
			}
		}
		seen = append(seen, k)
		var value json.RawMessage
		if err := dec.Decode(&value); err != nil {
			return nil
		}
	}
	return nil
}

// describeMappingError says what is wrong with the JSON mapping s that
// did not decode (err), in the user's words.
func describeMappingError(s string, err error) string {
	var fields map[string]json.RawMessage
	if json.Unmarshal([]byte(s), &fields) == nil {
		keys := slices.Sorted(maps.Keys(fields))
		for _, k := range keys {
			if !strings.EqualFold(k, "topics") && !strings.EqualFold(k, "users") && !strings.EqualFold(k, "body") {
				return fmt.Sprintf("has an unknown field %q (known: topics, users, body)", k)
			}
		}
	}
	return pubsub.DescribeJSONError(err)
}
