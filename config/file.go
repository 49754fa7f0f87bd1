package config

import (
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"sort"
	"strings"

	"github.com/BurntSushi/toml"

	"github.com/socks-dev/socks/pubsub"
)

// The config file: named profiles of settings, so that
// `socks --config-profile prod publish ...` needs no other flag.
//
//	# ~/.config/socks/config.toml
//	default_profile = "local"   # used when no profile is named
//
//	[profiles.prod]
//	backend = "aws"
//	region = "eu-west-1"
//	stack = "prod"
//	aws_profile = "company-prod"
//	callback_url = "https://abc123.execute-api.eu-west-1.amazonaws.com/prod"
//
//	[profiles.local]
//	state_dir = "/var/lib/socks"
//
//	[profiles.local.mapping]           # EventBridge events -> envelopes
//	topics = ["/detail/entityId"]
//	users = "/detail/userId"
//
// A flag beats an environment variable, which beats the profile, which beats
// the default.
const (
	// EnvConfig names the config file (default $XDG_CONFIG_HOME/socks/config.toml).
	EnvConfig = "SOCKS_CONFIG"
	// EnvConfigProfile names the profile to use.
	EnvConfigProfile = "SOCKS_CONFIG_PROFILE"
)

// File is the parsed config file.
type File struct {
	DefaultProfile string             `toml:"default_profile,omitempty"`
	Profiles       map[string]Profile `toml:"profiles"`
}

// Profile is one named set of settings; empty fields are unset.
type Profile struct {
	Backend          string `toml:"backend,omitempty"`
	StateDir         string `toml:"state_dir,omitempty"`
	Stack            string `toml:"stack,omitempty"`
	Region           string `toml:"region,omitempty"`
	AWSProfile       string `toml:"aws_profile,omitempty"`
	EndpointURL      string `toml:"endpoint_url,omitempty"`
	DynamoDBEndpoint string `toml:"dynamodb_endpoint_url,omitempty"`
	SQSEndpoint      string `toml:"sqs_endpoint_url,omitempty"`
	CallbackURL      string `toml:"callback_url,omitempty"`
	WebSocketURL     string `toml:"websocket_url,omitempty"`
	// Mapping turns EventBridge events that are not envelopes into
	// envelopes (see pubsub.Mapping).
	Mapping *pubsub.Mapping `toml:"mapping,omitempty"`
}

// DefaultConfigPath is $XDG_CONFIG_HOME/socks/config.toml, else
// $HOME/.config/socks/config.toml ("" when neither is set).
func DefaultConfigPath(getenv func(string) string) string {
	if x := getenv("XDG_CONFIG_HOME"); x != "" && filepath.IsAbs(x) {
		return filepath.Join(x, "socks", "config.toml")
	}
	if home := getenv("HOME"); home != "" {
		return filepath.Join(home, ".config", "socks", "config.toml")
	}
	return ""
}

// loadProfile reads the config file and returns the selected profile and
// its name ("" when none is selected). A missing file is no error unless it
// was named explicitly or a profile was asked for.
func loadProfile(f Flags, getenv func(string) string) (Profile, string, string, error) {
	path, explicit := f.ConfigFile, f.ConfigFile != ""
	if path == "" {
		path, explicit = getenv(EnvConfig), getenv(EnvConfig) != ""
	}
	if path == "" {
		path = DefaultConfigPath(getenv)
	}
	name := f.ConfigProfile
	if name == "" {
		name = getenv(EnvConfigProfile)
	}
	var file File
	if path != "" {
		md, err := toml.DecodeFile(path, &file)
		switch {
		case errors.Is(err, fs.ErrNotExist):
			if explicit {
				return Profile{}, "", path, fmt.Errorf("config file %s does not exist (from --config or %s)", path, EnvConfig)
			}
			path = ""
		case err != nil:
			return Profile{}, "", path, fmt.Errorf("config file %s: %w", path, err)
		default:
			if err := notATable(md, "profiles"); err != nil {
				return Profile{}, "", path, fmt.Errorf("config file %s: %w", path, err)
			}
			if undecoded := md.Undecoded(); len(undecoded) > 0 {
				keys := make([]string, len(undecoded))
				for i, k := range undecoded {
					keys[i] = k.String()
				}
				return Profile{}, "", path, fmt.Errorf("config file %s: unknown setting %s (known: %s)", path, strings.Join(keys, ", "), knownKeys)
			}
		}
	}
	if name == "" {
		name = file.DefaultProfile
	}
	if name == "" {
		return Profile{}, "", path, nil
	}
	p, ok := file.Profiles[name]
	if !ok {
		where := "no config file was found"
		if path != "" {
			where = fmt.Sprintf("%s has %s", path, profileNames(file))
		}
		return Profile{}, "", path, fmt.Errorf("unknown config profile %q: %s", name, where)
	}
	return p, name, path, nil
}

const knownKeys = "default_profile, and per profile: backend, state_dir, stack, region, aws_profile, endpoint_url, dynamodb_endpoint_url, sqs_endpoint_url, callback_url, websocket_url, mapping (topics, users, body)"

func profileNames(f File) string {
	if len(f.Profiles) == 0 {
		return "no profiles"
	}
	names := make([]string, 0, len(f.Profiles))
	for n := range f.Profiles {
		names = append(names, n)
	}
	sort.Strings(names)
	return "profiles " + strings.Join(names, ", ")
}

// notATable says when key is in a file as a value instead of a table:
// the TOML library decodes, for example, `profiles = 3` as no profiles at
// all, without an error.
func notATable(md toml.MetaData, key ...string) error {
	if typ := md.Type(key...); typ != "" && typ != "Hash" {
		return fmt.Errorf("%s must be a table of settings, not a value of type %s", toml.Key(key), strings.ToLower(typ))
	}
	return nil
}
