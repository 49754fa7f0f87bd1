package backend

import (
	"context"
	"maps"
	"os"
	"strings"
	"testing"

	"github.com/socks-dev/socks/config"
)

// awsEnvOffline gives the AWS SDK static credentials and nothing else to
// read (no shared files, no instance metadata, no endpoint variables), so
// that opening the backend contacts nothing.
func awsEnvOffline(t *testing.T) {
	dir := t.TempDir()
	for k, v := range map[string]string{
		"AWS_ACCESS_KEY_ID":           "AKIDEXAMPLE",
		"AWS_SECRET_ACCESS_KEY":       "secret",
		"AWS_SESSION_TOKEN":           "",
		"AWS_PROFILE":                 "",
		"AWS_DEFAULT_PROFILE":         "",
		"AWS_CONFIG_FILE":             dir + "/config",
		"AWS_SHARED_CREDENTIALS_FILE": dir + "/credentials",
		"AWS_EC2_METADATA_DISABLED":   "true",
		"AWS_ENDPOINT_URL":            "",
		"AWS_ENDPOINT_URL_DYNAMODB":   "",
		"AWS_ENDPOINT_URL_SQS":        "",
	} {
		t.Setenv(k, v) // restored when the test ends
		if v == "" {
			os.Unsetenv(k)
		}
	}
}

// TestHalfAnEmulatorNeverReachesAWS: with DynamoDB pointed at an emulator
// on this machine and SQS at nothing (or the other way round), one
// service's calls went to AWS itself: the messages of a local test on a
// real queue, or the reverse. Opening the backend refuses that, naming
// the missing setting, before any call.
func TestHalfAnEmulatorNeverReachesAWS(t *testing.T) {
	const emu = "http://127.0.0.1:1"
	for _, tc := range []struct {
		name       string
		set        func(a *config.AWS)
		env        map[string]string
		want       string // "" opens
		wantAlsoIn string
	}{
		{name: "DynamoDB on an emulator, SQS on AWS", set: func(a *config.AWS) { a.DynamoDBEndpointURL = emu }, want: "SQS", wantAlsoIn: "--sqs-endpoint-url"},
		{name: "SQS on an emulator, DynamoDB on AWS", set: func(a *config.AWS) { a.SQSEndpointURL = "http://localhost:9324" }, want: "DynamoDB", wantAlsoIn: "--dynamodb-endpoint-url"},
		{name: "DynamoDB on an emulator, SQS on AWS through AWS_ENDPOINT_URL_DYNAMODB", env: map[string]string{"AWS_ENDPOINT_URL_DYNAMODB": emu}, want: "SQS"},
		{name: "both on emulators", set: func(a *config.AWS) { a.DynamoDBEndpointURL, a.SQSEndpointURL = emu, "http://[::1]:9324" }},
		{name: "both through --endpoint-url", set: func(a *config.AWS) { a.EndpointURL = emu }},
		{name: "DynamoDB by flag, SQS by AWS_ENDPOINT_URL_SQS", set: func(a *config.AWS) { a.DynamoDBEndpointURL = emu }, env: map[string]string{"AWS_ENDPOINT_URL_SQS": "http://127.0.0.1:9324"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			awsEnvOffline(t)
			for k, v := range tc.env {
				t.Setenv(k, v)
			}
			cfg := config.Config{Backend: config.BackendAWS, StateDir: t.TempDir(), AWS: config.AWS{Region: "eu-west-1", Stack: "socks"}}
			if tc.set != nil {
				tc.set(&cfg.AWS)
			}
			b, err := Open(context.Background(), cfg, Options{})
			if tc.want == "" {
				if err != nil {
					t.Fatalf("Open: %v", err)
				}
				b.Close()
				return
			}
			if err == nil {
				b.Close()
				t.Fatalf("Open succeeded; want it refused: %s calls would go to AWS itself", tc.want)
			}
			if !strings.Contains(err.Error(), tc.want+" calls would go to AWS") || !strings.Contains(err.Error(), tc.wantAlsoIn) {
				t.Errorf("Open = %q; want it to say %s calls would go to AWS, and %s", err, tc.want, tc.wantAlsoIn)
			}
		})
	}
}

// TestABadEndpointSaysWhereItCameFrom: an endpoint that is not a URL was
// refused as "bad --endpoint-url" whatever set it, so a user whose
// config profile or environment held it looked for a flag never given.
func TestABadEndpointSaysWhereItCameFrom(t *testing.T) {
	dir := t.TempDir()
	file := dir + "/config.toml"
	if err := os.WriteFile(file, []byte("[profiles.emu]\nbackend = \"aws\"\nregion = \"eu-west-1\"\nendpoint_url = \"localhost:8000\"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name  string
		flags config.Flags
		env   map[string]string
		want  string
	}{
		{name: "flag", flags: config.Flags{Backend: "aws", Region: "eu-west-1", Endpoint: "localhost:8000"}, want: `bad --endpoint-url "localhost:8000"`},
		{name: "environment", flags: config.Flags{Backend: "aws", Region: "eu-west-1"}, env: map[string]string{config.EnvSQSEndpointURL: "127.0.0.1:9324", config.EnvDynamoDBEndpointURL: "http://127.0.0.1:8000"},
			want: `bad $SOCKS_SQS_ENDPOINT_URL "127.0.0.1:9324"`},
		{name: "profile", flags: config.Flags{ConfigFile: file, ConfigProfile: "emu"},
			want: `bad endpoint_url of profile emu in config file ` + file + ` "localhost:8000"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			awsEnvOffline(t)
			e := map[string]string{"HOME": dir}
			for k, v := range tc.env {
				e[k] = v
			}
			// Refused by Resolve, as bad input; Open refuses it too.
			cfg, err := config.Resolve(tc.flags, func(k string) string { return e[k] })
			if err == nil {
				var b *Backend
				if b, err = Open(context.Background(), cfg, Options{}); err == nil {
					b.Close()
					t.Fatal("Open succeeded; want the endpoint refused")
				}
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Resolve or Open = %q; want it to contain %q", err, tc.want)
			}
		})
	}
}

// A region that is not a region name said "check --region, AWS_REGION or
// the profile's region" whatever set it; it names the one that did.
func TestABadRegionSaysWhereItCameFrom(t *testing.T) {
	dir := t.TempDir()
	file := dir + "/config.toml"
	if err := os.WriteFile(file, []byte("[profiles.emu]\nbackend = \"aws\"\nregion = \"eu.west-1\"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name  string
		flags config.Flags
		env   map[string]string
		want  string
	}{
		{name: "flag", flags: config.Flags{Backend: "aws", Region: "eu.west-1"}, want: "check --region"},
		{name: "SOCKS_REGION", flags: config.Flags{Backend: "aws"}, env: map[string]string{config.EnvRegion: "eu.west-1"}, want: "check $SOCKS_REGION"},
		{name: "AWS_REGION", flags: config.Flags{Backend: "aws"}, env: map[string]string{"AWS_REGION": "eu.west-1"}, want: "check $AWS_REGION"},
		{name: "profile", flags: config.Flags{ConfigFile: file, ConfigProfile: "emu"}, want: "check region of profile emu in config file " + file},
	} {
		t.Run(tc.name, func(t *testing.T) {
			awsEnvOffline(t)
			e := map[string]string{"HOME": dir}
			maps.Copy(e, tc.env)
			// Refused by Resolve, as bad input; Open refuses it too.
			cfg, err := config.Resolve(tc.flags, func(k string) string { return e[k] })
			if err == nil {
				var b *Backend
				if b, err = Open(context.Background(), cfg, Options{}); err == nil {
					b.Close()
					t.Fatal("Open succeeded; want the region refused")
				}
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Resolve or Open = %q; want it to contain %q", err, tc.want)
			}
		})
	}
}
