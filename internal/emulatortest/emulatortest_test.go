package emulatortest

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/socks-dev/socks/internal/refusing"
)

// TestRIERunsTheSocksBinary builds the function's bootstrap as deploy and
// the release do (BuildBootstrap) and runs it under AWS's Runtime
// Interface Emulator as Lambda would: a recorded $default event (one that
// needs no table) gets the route's answer.
func TestRIERunsTheSocksBinary(t *testing.T) {
	RIEPath(t)
	bin, err := BuildBootstrap(t.Context(), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	event, err := os.ReadFile(filepath.Join("..", "..", "testdata", "lambda", "default.json"))
	if err != nil {
		t.Fatal(err)
	}
	r := StartRIE(t, bin, []string{
		"PATH=/usr/bin:/bin",
		"HOME=" + t.TempDir(),
		"AWS_REGION=us-east-1",
		"AWS_ACCESS_KEY_ID=test",
		"AWS_SECRET_ACCESS_KEY=test",
		"AWS_EC2_METADATA_DISABLED=true",
		"AWS_CONFIG_FILE=/dev/null",
		"AWS_SHARED_CREDENTIALS_FILE=/dev/null",
		"SOCKS_STACK=rie-selftest",
		// Loopback ports that refuse connections: the $default event
		// needs none of them.
		"SOCKS_DYNAMODB_ENDPOINT_URL=" + refusing.URL(t),
		"SOCKS_SQS_ENDPOINT_URL=" + refusing.URL(t),
		"SOCKS_CALLBACK_URL=" + refusing.URL(t),
	})
	body, err := r.Invoke(t.Context(), event)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(body), `"statusCode":200`) || !strings.Contains(string(body), "clients cannot publish") {
		t.Errorf("response: %s\noutput: %s", body, r.Output())
	}
}

func TestLoopback(t *testing.T) {
	for raw, want := range map[string]bool{
		"http://127.0.0.1:5000":                    true,
		"http://localhost:5000":                    true,
		"http://localhost.:5000":                   true,
		"http://[::1]:8000":                        true,
		"http://127.0.0.2:8000":                    true,
		"ftp://127.0.0.1":                          false,
		"https://dynamodb.us-east-1.amazonaws.com": false,
		"https://iam.amazonaws.com":                false,
		"http://10.1.2.3:5000":                     false,
		"127.0.0.1:5000":                           false,
		"http://localhost.example.com:5000/":       false,
	} {
		if got := Loopback(raw); got != want {
			t.Errorf("Loopback(%q) = %v, want %v", raw, got, want)
		}
	}
}

func TestMotoAWSIsTheOneSetUpOfTheControlPlaneTests(t *testing.T) {
	t.Setenv(EnvMoto, "http://127.0.0.1:5999")
	cfg, endpoint := MotoAWS(t)
	if endpoint != "http://127.0.0.1:5999" {
		t.Errorf("endpoint %q; want moto's", endpoint)
	}
	creds, err := cfg.Credentials.Retrieve(t.Context())
	if cfg.Region != MotoRegion || err != nil || creds.AccessKeyID != "test" || creds.SecretAccessKey != "test" {
		t.Errorf("config in %q with credentials %+v (%v); want %s and the fake credentials", cfg.Region, creds, err, MotoRegion)
	}
}

// TestAnEndpointOnLocalhostDotIsDialledOnLocalhost: an emulator's
// endpoint on "localhost." (which Loopback takes) is given to the tests
// as one Go dials: before, it was taken and then every call failed, Go
// looking "localhost." up in DNS.
func TestAnEndpointOnLocalhostDotIsDialledOnLocalhost(t *testing.T) {
	t.Setenv(EnvSQS, "http://localhost.:9324/x")
	if got, want := SQS(t), "http://localhost:9324/x"; got != want {
		t.Errorf("SQS = %q, want %q", got, want)
	}
	for raw, want := range map[string]string{
		"http://LOCALHOST.:1": "http://localhost:1", "http://localhost.": "http://localhost",
		"http://127.0.0.1:1": "http://127.0.0.1:1", "http://localhost:1": "http://localhost:1",
	} {
		if got := Dialable(raw); got != want {
			t.Errorf("Dialable(%q) = %q, want %q", raw, got, want)
		}
	}
}
