// Package config resolves the effective configuration of one socks
// invocation: which backend, where the local state lives, and (for the AWS
// backend) region, names and endpoints. Precedence is flag, then environment
// variable, then default. Only this package knows the environment variable
// names.
package config

import (
	"fmt"
	"path/filepath"
	"strings"
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
}

// Config is the effective configuration.
type Config struct {
	Backend  string `json:"backend"`
	StateDir string `json:"stateDir"`
	// Source says where Backend came from: "flag", "env" or "default".
	BackendSource string `json:"backendSource"`
	AWS           AWS    `json:"aws"`
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

// Resolve computes the effective configuration from flags and the
// environment (getenv), falling back to defaults.
func Resolve(f Flags, getenv func(string) string) (Config, error) {
	pick := func(flag, env string) (string, string) {
		if flag != "" {
			return flag, "flag"
		}
		if v := getenv(env); v != "" {
			return v, "env"
		}
		return "", "default"
	}
	var c Config
	c.Backend, c.BackendSource = pick(f.Backend, EnvBackend)
	if c.Backend == "" {
		c.Backend = BackendLocal
	}
	c.Backend = strings.ToLower(c.Backend)
	if c.Backend != BackendLocal && c.Backend != BackendAWS {
		return Config{}, fmt.Errorf("unknown backend %q: use %q (the embedded default) or %q", c.Backend, BackendLocal, BackendAWS)
	}
	dir, _ := pick(f.StateDir, EnvStateDir)
	if dir == "" {
		d, err := DefaultStateDir(getenv)
		if err != nil {
			return Config{}, err
		}
		dir = d
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return Config{}, fmt.Errorf("state dir %q: %w", dir, err)
	}
	c.StateDir = abs

	c.AWS.Stack, _ = pick(f.Stack, EnvStack)
	if c.AWS.Stack == "" {
		c.AWS.Stack = DefaultStack
	}
	c.AWS.Region, _ = pick(f.Region, EnvRegion)
	if c.AWS.Region == "" {
		c.AWS.Region = getenv("AWS_REGION")
	}
	if c.AWS.Region == "" {
		c.AWS.Region = getenv("AWS_DEFAULT_REGION")
	}
	c.AWS.EndpointURL, _ = pick(f.Endpoint, EnvEndpointURL)
	c.AWS.DynamoDBEndpointURL, _ = pick(f.DynamoDBEndpoint, EnvDynamoDBEndpointURL)
	c.AWS.SQSEndpointURL, _ = pick(f.SQSEndpoint, EnvSQSEndpointURL)
	c.AWS.Profile, _ = pick(f.Profile, EnvProfile)
	c.AWS.WebSocketURL, _ = pick(f.WebSocket, EnvWebSocket)
	c.AWS.CallbackURL, _ = pick(f.Callback, EnvCallback)
	return c, nil
}

// DefaultStateDir follows the XDG base directory spec:
// $XDG_STATE_HOME/socks, else $HOME/.local/state/socks.
func DefaultStateDir(getenv func(string) string) (string, error) {
	if x := getenv("XDG_STATE_HOME"); x != "" && filepath.IsAbs(x) {
		return filepath.Join(x, "socks"), nil
	}
	home := getenv("HOME")
	if home == "" {
		return "", fmt.Errorf("cannot find a state directory: HOME is not set; pass --state-dir or set %s", EnvStateDir)
	}
	return filepath.Join(home, ".local", "state", "socks"), nil
}
