package config

import (
	"context"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/socks-dev/socks/config"
	"github.com/socks-dev/socks/iostreams"
)

func TestAWSSettingsAreShownWithSecretsMasked(t *testing.T) {
	env := map[string]string{
		"HOME":                        t.TempDir(),
		"AWS_ACCESS_KEY_ID":           "AKIAIOSFODNN7EXAMPLE",
		"AWS_SECRET_ACCESS_KEY":       "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
		"AWS_SESSION_TOKEN":           "FwoGZXIvYXdzEXAMPLETOKEN",
		"SOCKS_DYNAMODB_ENDPOINT_URL": "http://127.0.0.1:8000",
	}
	getenv := func(k string) string { return env[k] }
	for _, asJSON := range []bool{false, true} {
		ios, _, out, _ := iostreams.Test()
		opts := &Options{
			IO:     ios,
			Getenv: getenv,
			JSON:   asJSON,
			Config: func() (config.Config, error) {
				return config.Resolve(config.Flags{Backend: "aws", Stack: "prod", Region: "eu-west-1"}, getenv)
			},
		}
		if err := configRun(context.Background(), opts); err != nil {
			t.Fatal(err)
		}
		got := out.String()
		for _, secret := range []string{"AKIAIOSFODNN7", "wJalrXUtnFEMI", "EXAMPLEKEY", "FwoGZXIv"} {
			if strings.Contains(got, secret) {
				t.Errorf("json=%v: output shows %q:\n%s", asJSON, secret, got)
			}
		}
		for _, want := range []string{"****************MPLE", "set (hidden)", "prod-connections", "prod-envelopes-dlq", "eu-west-1", "http://127.0.0.1:8000"} {
			if !strings.Contains(got, want) {
				t.Errorf("json=%v: output lacks %q:\n%s", asJSON, want, got)
			}
		}
	}
}

func TestMaskKey(t *testing.T) {
	for in, want := range map[string]string{"": "", "abc": "***", "AKIAIOSFODNN7EXAMPLE": "****************MPLE"} {
		if got := MaskKey(in); got != want {
			t.Errorf("MaskKey(%q) = %q; want %q", in, got, want)
		}
	}
}

func TestPerServiceEndpointsOverrideTheCommonOne(t *testing.T) {
	for _, tc := range []struct {
		name               string
		flags              config.Flags
		env                map[string]string
		wantDynamo, wantSQ string
	}{
		{"the common endpoint serves both", config.Flags{Endpoint: "http://127.0.0.1:1"}, nil, "http://127.0.0.1:1", "http://127.0.0.1:1"},
		{"each service's variable beats the common flag",
			config.Flags{Endpoint: "http://127.0.0.1:1"},
			map[string]string{"SOCKS_DYNAMODB_ENDPOINT_URL": "http://127.0.0.1:2", "SOCKS_SQS_ENDPOINT_URL": "http://127.0.0.1:3"},
			"http://127.0.0.1:2", "http://127.0.0.1:3"},
		{"one service's variable leaves the other on the common endpoint",
			config.Flags{}, map[string]string{"SOCKS_ENDPOINT_URL": "http://127.0.0.1:1", "SOCKS_SQS_ENDPOINT_URL": "http://127.0.0.1:3"},
			"http://127.0.0.1:1", "http://127.0.0.1:3"},
		{"a service's flag beats its variable",
			config.Flags{DynamoDBEndpoint: "http://127.0.0.1:4"}, map[string]string{"SOCKS_DYNAMODB_ENDPOINT_URL": "http://127.0.0.1:2"},
			"http://127.0.0.1:4", ""},
		{"nothing set means AWS's own endpoints", config.Flags{}, nil, "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			env := map[string]string{"HOME": "/nonexistent"}
			for k, v := range tc.env {
				env[k] = v
			}
			cfg, err := config.Resolve(tc.flags, func(k string) string { return env[k] })
			if err != nil {
				t.Fatal(err)
			}
			if cfg.AWS.DynamoDBEndpoint() != tc.wantDynamo || cfg.AWS.SQSEndpoint() != tc.wantSQ {
				t.Errorf("DynamoDB %q, SQS %q; want %q, %q", cfg.AWS.DynamoDBEndpoint(), cfg.AWS.SQSEndpoint(), tc.wantDynamo, tc.wantSQ)
			}
		})
	}
}

func TestPlainOutputSaysWhereTheBackendCameFrom(t *testing.T) {
	for _, tc := range []struct {
		name  string
		flags config.Flags
		env   map[string]string
		want  string
	}{
		{"nothing set is the default", config.Flags{}, nil, "backend\tlocal\tdefault\n"},
		{"the variable is named", config.Flags{}, map[string]string{"SOCKS_BACKEND": "aws"}, "backend\taws\t$SOCKS_BACKEND\n"},
		{"the flag beats the variable", config.Flags{Backend: "local"}, map[string]string{"SOCKS_BACKEND": "aws"}, "backend\tlocal\tflag\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			env := map[string]string{"HOME": t.TempDir()}
			for k, v := range tc.env {
				env[k] = v
			}
			getenv := func(k string) string { return env[k] }
			ios, _, out, _ := iostreams.Test()
			opts := &Options{IO: ios, Getenv: getenv, Config: func() (config.Config, error) { return config.Resolve(tc.flags, getenv) }}
			if err := configRun(context.Background(), opts); err != nil {
				t.Fatal(err)
			}
			if !strings.HasPrefix(out.String(), tc.want) {
				t.Errorf("output starts %q, want %q", out.String(), tc.want)
			}
		})
	}
}

// TestASettingFromTheEnvironmentNamesItsVariable: the source column said
// "env" whichever variable set a setting, though the region is read from
// three ($SOCKS_REGION, $AWS_REGION, $AWS_DEFAULT_REGION): it names the
// variable, as an error about the value does. --json keeps "env".
func TestASettingFromTheEnvironmentNamesItsVariable(t *testing.T) {
	for _, tc := range []struct {
		env  map[string]string
		want []string
	}{
		{map[string]string{"AWS_REGION": "eu-west-1"}, []string{"region\teu-west-1\t$AWS_REGION\n"}},
		{map[string]string{"AWS_DEFAULT_REGION": "eu-west-1"}, []string{"region\teu-west-1\t$AWS_DEFAULT_REGION\n"}},
		{map[string]string{"SOCKS_REGION": "eu-west-1", "AWS_REGION": "us-east-1"}, []string{"region\teu-west-1\t$SOCKS_REGION\n"}},
		{map[string]string{"SOCKS_REGION": "eu-west-1", "SOCKS_STACK": "prod", "SOCKS_EVENT_MAPPING": `{"topics":["/detail/id"]}`},
			[]string{"stack\tprod\t$SOCKS_STACK\n", "\t$SOCKS_EVENT_MAPPING\n"}},
	} {
		t.Run(strings.Join(slices.Sorted(maps.Keys(tc.env)), ","), func(t *testing.T) {
			env := map[string]string{"HOME": t.TempDir(), "SOCKS_BACKEND": "aws"}
			maps.Copy(env, tc.env)
			getenv := func(k string) string { return env[k] }
			for _, asJSON := range []bool{false, true} {
				ios, _, out, _ := iostreams.Test()
				opts := &Options{IO: ios, Getenv: getenv, JSON: asJSON, Config: func() (config.Config, error) { return config.Resolve(config.Flags{}, getenv) }}
				if err := configRun(context.Background(), opts); err != nil {
					t.Fatal(err)
				}
				want := tc.want
				if asJSON {
					want = []string{`"region":"env"`}
				}
				for _, w := range want {
					if !strings.Contains(out.String(), w) {
						t.Errorf("json=%v: output lacks %q:\n%s", asJSON, w, out)
					}
				}
			}
		})
	}
}

func TestAnAWSRegionTheProfileOverrodeIsShown(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "config.toml")
	if err := os.WriteFile(file, []byte("[profiles.prod]\nbackend = \"aws\"\nregion = \"eu-west-1\"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"HOME": dir, "AWS_REGION": "us-east-1"}
	getenv := func(k string) string { return env[k] }
	for _, asJSON := range []bool{false, true} {
		ios, _, out, _ := iostreams.Test()
		opts := &Options{IO: ios, Getenv: getenv, JSON: asJSON, Config: func() (config.Config, error) {
			return config.Resolve(config.Flags{ConfigFile: file, ConfigProfile: "prod"}, getenv)
		}}
		if err := configRun(context.Background(), opts); err != nil {
			t.Fatal(err)
		}
		want := []string{"region\teu-west-1\tprofile prod\n", "note\tAWS_REGION=us-east-1 is ignored: profile prod sets region eu-west-1"}
		if asJSON {
			want = []string{`"region":"eu-west-1"`, `"notes":[`, `"AWS_REGION=us-east-1 is ignored: profile prod sets region eu-west-1`}
		}
		for _, w := range want {
			if !strings.Contains(out.String(), w) {
				t.Errorf("json=%v: output lacks %q:\n%s", asJSON, w, out)
			}
		}
	}
}

// The SDK uses a profile socks names (--profile, SOCKS_PROFILE, a config
// profile's aws_profile) before keys in the environment; only AWS_PROFILE
// comes after them. socks config said the environment's keys were used.
func TestANamedProfileBeatsKeysInTheEnvironment(t *testing.T) {
	base := map[string]string{"HOME": t.TempDir(), "AWS_ACCESS_KEY_ID": "AKIAIOSFODNN7EXAMPLE", "AWS_SECRET_ACCESS_KEY": "s"}
	tests := []struct {
		name  string
		flags config.Flags
		env   map[string]string
		want  string
	}{
		{"--profile", config.Flags{Profile: "prod"}, nil, "profile prod (the keys in AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY are not used)"},
		{"SOCKS_PROFILE", config.Flags{}, map[string]string{config.EnvProfile: "prod"}, "profile prod (the keys in AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY are not used)"},
		{"AWS_PROFILE comes after the keys", config.Flags{}, map[string]string{"AWS_PROFILE": "prod"}, "environment (AWS_ACCESS_KEY_ID)"},
		// The SDK takes keys from the environment only as a pair.
		{"a key without its secret is not used", config.Flags{}, map[string]string{"AWS_SECRET_ACCESS_KEY": "", "AWS_PROFILE": "prod"}, "profile prod; AWS_ACCESS_KEY_ID is set without AWS_SECRET_ACCESS_KEY, so it is not used"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := map[string]string{}
			for k, v := range base {
				env[k] = v
			}
			for k, v := range tt.env {
				env[k] = v
			}
			getenv := func(k string) string { return env[k] }
			tt.flags.Backend, tt.flags.Region = "aws", "eu-west-1"
			cfg, err := config.Resolve(tt.flags, getenv)
			if err != nil {
				t.Fatal(err)
			}
			if got := credentials(cfg, getenv).Source; got != tt.want {
				t.Errorf("source = %q, want %q", got, tt.want)
			}
		})
	}
}

// TestAWebIdentityTokenFileIsNamed: with AWS_WEB_IDENTITY_TOKEN_FILE (an
// EKS pod, a CI job's OIDC token) the SDK assumes AWS_ROLE_ARN with the
// token, after a profile socks names and keys in the environment but
// before AWS_PROFILE; socks config said "profile" or "the SDK's default
// chain" and never named it.
func TestAWebIdentityTokenFileIsNamed(t *testing.T) {
	const role = "arn:aws:iam::123456789012:role/ci"
	file := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(file, []byte("eyJhbGciOi.e30.sig"), 0o600); err != nil {
		t.Fatal(err)
	}
	missing := filepath.Join(t.TempDir(), "token")
	tests := []struct {
		name  string
		flags config.Flags
		env   map[string]string
		want  string
	}{
		{"alone", config.Flags{}, nil, "web identity: role " + role + ", assumed with the token in " + file + " (AWS_WEB_IDENTITY_TOKEN_FILE)"},
		{"before AWS_PROFILE", config.Flags{}, map[string]string{"AWS_PROFILE": "dev"}, "web identity: role " + role + ", assumed with the token in " + file + " (AWS_WEB_IDENTITY_TOKEN_FILE); AWS_PROFILE is not used"},
		{"without a role", config.Flags{}, map[string]string{"AWS_ROLE_ARN": ""}, "web identity, but AWS_ROLE_ARN is not set: the SDK fails; set AWS_ROLE_ARN to the role to assume with the token in " + file + " (AWS_WEB_IDENTITY_TOKEN_FILE), or unset it"},
		{"after keys in the environment", config.Flags{}, map[string]string{"AWS_ACCESS_KEY_ID": "AKIAIOSFODNN7EXAMPLE", "AWS_SECRET_ACCESS_KEY": "s"}, "environment (AWS_ACCESS_KEY_ID); AWS_WEB_IDENTITY_TOKEN_FILE is not used"},
		{"after a named profile", config.Flags{Profile: "prod"}, nil, "profile prod; AWS_WEB_IDENTITY_TOKEN_FILE is not used"},
		// The SDK reads the file when it first needs credentials, and
		// fails then if it is not there.
		{"with no such file", config.Flags{}, map[string]string{"AWS_WEB_IDENTITY_TOKEN_FILE": missing}, "web identity, but the token file " + missing + " (AWS_WEB_IDENTITY_TOKEN_FILE) does not exist: the SDK fails; point AWS_WEB_IDENTITY_TOKEN_FILE at the token, or unset it"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := map[string]string{"HOME": t.TempDir(), "AWS_WEB_IDENTITY_TOKEN_FILE": file, "AWS_ROLE_ARN": role}
			for k, v := range tt.env {
				env[k] = v
			}
			getenv := func(k string) string { return env[k] }
			tt.flags.Backend, tt.flags.Region = "aws", "eu-west-1"
			cfg, err := config.Resolve(tt.flags, getenv)
			if err != nil {
				t.Fatal(err)
			}
			c := credentials(cfg, getenv)
			if c.Source != tt.want {
				t.Errorf("source = %q, want %q", c.Source, tt.want)
			}
			if c.WebIdentityTokenFile != env["AWS_WEB_IDENTITY_TOKEN_FILE"] || c.RoleARN != env["AWS_ROLE_ARN"] {
				t.Errorf("web identity %q, role %q; want %q, %q", c.WebIdentityTokenFile, c.RoleARN, env["AWS_WEB_IDENTITY_TOKEN_FILE"], env["AWS_ROLE_ARN"])
			}
		})
	}
	// AWS_ROLE_ARN alone: the SDK assumes it only with a token, so it
	// is not used, which the line says.
	env := map[string]string{"HOME": t.TempDir(), "AWS_ROLE_ARN": role}
	getenv := func(k string) string { return env[k] }
	cfg, err := config.Resolve(config.Flags{Backend: "aws", Region: "eu-west-1"}, getenv)
	if err != nil {
		t.Fatal(err)
	}
	want := "the SDK's default chain (shared files, SSO, container or instance role); AWS_ROLE_ARN is not used: the SDK assumes it only with a token in AWS_WEB_IDENTITY_TOKEN_FILE"
	if c := credentials(cfg, getenv); c.Source != want || c.RoleARN != "" {
		t.Errorf("source = %q, role %q; want %q and no role", c.Source, c.RoleARN, want)
	}
}

// A profile's name is any string the config file (or SOCKS_CONFIG_PROFILE)
// holds. The value column showed it escaped, but the source column
// ("(profile NAME)") wrote it raw: on a terminal a name holding an escape
// sequence set the window title or hid the text after it.
func TestAProfileNameIsShownEscapedInTheSourceColumn(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "config.toml")
	if err := os.WriteFile(file, []byte("[profiles.\"x\\u001b]0;pwned\\u0007y\"]\nbackend = \"aws\"\nregion = \"eu-west-1\"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"HOME": dir, config.EnvConfigProfile: "x\x1b]0;pwned\x07y"}
	getenv := func(k string) string { return env[k] }
	// Off a terminal the output is data, shown as the value column is.
	for _, tty := range []bool{true} {
		ios, _, out, _ := iostreams.Test()
		ios.SetTTY(false, tty, false)
		opts := &Options{IO: ios, Getenv: getenv, Config: func() (config.Config, error) {
			return config.Resolve(config.Flags{ConfigFile: file}, getenv)
		}}
		if err := configRun(context.Background(), opts); err != nil {
			t.Fatal(err)
		}
		if strings.ContainsAny(out.String(), "\x07") || strings.Contains(out.String(), "\x1b]") {
			t.Errorf("tty=%v: the output holds the name's control characters raw:\n%q", tty, out)
		}
	}
}

// TestWithNoConfigFileItSaysWhereOneWouldBeRead: with no config file,
// `socks config` said "config file  -", leaving a newcomer who wants
// profiles to find in --help where to write one. It names the path it
// looked at; --json keeps configFile out, as before.
func TestWithNoConfigFileItSaysWhereOneWouldBeRead(t *testing.T) {
	home := t.TempDir()
	getenv := func(k string) string { return map[string]string{"HOME": home}[k] }
	want := "config file\t- (none at " + filepath.Join(home, ".config", "socks", "config.toml") + ")\n"
	for _, asJSON := range []bool{false, true} {
		ios, _, out, _ := iostreams.Test()
		opts := &Options{IO: ios, Getenv: getenv, JSON: asJSON, Config: func() (config.Config, error) { return config.Resolve(config.Flags{}, getenv) }}
		if err := configRun(context.Background(), opts); err != nil {
			t.Fatal(err)
		}
		switch {
		case !asJSON && !strings.Contains(out.String(), want):
			t.Errorf("output %q does not hold %q", out, want)
		case asJSON && strings.Contains(out.String(), "configFile"):
			t.Errorf("--json %q names a config file that is not there", out)
		}
	}
}
