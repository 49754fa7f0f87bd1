// Package emulatortest gives tests the local AWS peers that scripts/emulators
// starts: the endpoints of DynamoDB Local, ElasticMQ and moto (all on
// loopback), and AWS's Lambda Runtime Interface Emulator (RIE), which
// StartRIE runs with a given bootstrap binary on a free loopback port.
//
// Every accessor skips the test with instructions when its variable is not
// set, and fails it instead under SOCKS_REQUIRE_EMULATORS=1 (as `make test`
// sets), so a missing peer is never a silent pass. Endpoints that are not on
// loopback are refused: these tests create and delete resources and must
// never reach a real AWS account.
package emulatortest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"

	"github.com/socks-dev/socks/internal/loopback"
	"github.com/socks-dev/socks/internal/procgroup"
)

// The variables scripts/emulators exports.
const (
	EnvDynamoDB        = "SOCKS_TEST_DYNAMODB_ENDPOINT"
	EnvSQS             = "SOCKS_TEST_SQS_ENDPOINT"
	EnvMoto            = "SOCKS_TEST_MOTO_ENDPOINT"
	EnvRIE             = "SOCKS_TEST_RIE"
	EnvRequire         = "SOCKS_REQUIRE_EMULATORS"
	howToRun           = "run `make test`, or `scripts/emulators run -- go test ./PKG/`"
	rieInvocationsPath = "/2015-03-31/functions/function/invocations"
)

// missing skips t, or fails it under SOCKS_REQUIRE_EMULATORS=1.
func missing(t testing.TB, name string) {
	t.Helper()
	msg := fmt.Sprintf("%s is not set (emulators not running): %s", name, howToRun)
	if os.Getenv(EnvRequire) == "1" {
		t.Fatalf("%s; %s=1 requires it", msg, EnvRequire)
	}
	t.Skip(msg)
}

// endpoint returns the loopback URL in the variable name.
func endpoint(t testing.TB, name string) string {
	t.Helper()
	raw := os.Getenv(name)
	if raw == "" {
		missing(t, name)
	}
	if !Loopback(raw) {
		t.Fatalf("refusing %s=%q: these tests only talk to emulators on 127.0.0.1 or localhost", name, raw)
	}
	return Dialable(raw)
}

// Dialable returns raw, a URL Loopback takes, with its host as Go dials
// it: "localhost." (which Loopback takes, and Go would look up in DNS)
// as localhost (loopback.Addr).
func Dialable(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return raw
	}
	if h := loopback.Addr(u.Host); h != u.Host {
		u.Host = h
		return u.String()
	}
	return raw
}

// Loopback reports whether raw is an http(s) URL on localhost or a
// loopback address.
func Loopback(raw string) bool {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") {
		return false
	}
	return loopback.Name(u.Hostname())
}

// DynamoDB is the endpoint of DynamoDB Local.
func DynamoDB(t testing.TB) string { t.Helper(); return endpoint(t, EnvDynamoDB) }

// SQS is the endpoint of ElasticMQ.
func SQS(t testing.TB) string { t.Helper(); return endpoint(t, EnvSQS) }

// Moto is the endpoint of moto in server mode: every AWS service socks
// calls (IAM, Lambda, API Gateway v2, STS, CloudWatch Logs, DynamoDB, SQS)
// on one port. Its state is shared by every test of the run: give each test
// its own names.
func Moto(t testing.TB) string { t.Helper(); return endpoint(t, EnvMoto) }

// MotoRegion is the region of the control-plane tests on moto.
const MotoRegion = "us-east-1"

// MotoAWS is the set-up of a test of the control plane on moto: an SDK
// config in MotoRegion with the credentials "test" (nothing read from the
// environment or ~/.aws), and moto's endpoint, for
// awsops.NewControlPlane(cfg, awsops.Endpoints{All: endpoint}). (It does
// not build the ControlPlane itself: awsops's own tests use this package,
// which therefore cannot import awsops.)
func MotoAWS(t testing.TB) (cfg aws.Config, endpoint string) {
	t.Helper()
	endpoint = Moto(t)
	return aws.Config{Region: MotoRegion, Credentials: credentials.NewStaticCredentialsProvider("test", "test", "")}, endpoint
}

// RIEPath is the aws-lambda-rie binary scripts/emulators built.
func RIEPath(t testing.TB) string {
	t.Helper()
	p := os.Getenv(EnvRIE)
	if p == "" {
		missing(t, EnvRIE)
	}
	if fi, err := os.Stat(p); err != nil || fi.IsDir() {
		t.Fatalf("%s=%q is not a file: %v (scripts/emulators fetch builds it)", EnvRIE, p, err)
	}
	return p
}

// RIE is a running Runtime Interface Emulator serving one function.
type RIE struct {
	// URL is the emulator's invocation URL.
	URL string

	cmd    *exec.Cmd
	mu     sync.Mutex
	output bytes.Buffer
	done   chan struct{}
}

// StartRIE runs bootstrap (the function's executable, started by the RIE
// as Lambda would: no arguments, AWS_LAMBDA_RUNTIME_API set) under the
// Runtime Interface Emulator, both on free loopback ports. env is the whole
// environment of the emulator and so of the function (nothing of the test
// process leaks in). The emulator and the function are killed when the test
// ends.
func StartRIE(t testing.TB, bootstrap string, env []string) *RIE {
	t.Helper()
	rie := RIEPath(t)
	var last error
	for attempt := 0; attempt < 3; attempt++ {
		r, err := startRIE(t, rie, bootstrap, env)
		if err == nil {
			return r
		}
		last = err
	}
	t.Fatalf("starting the Runtime Interface Emulator: %v", last)
	return nil
}

func startRIE(t testing.TB, rie, bootstrap string, env []string) (*RIE, error) {
	ports, err := freePorts(2)
	if err != nil {
		return nil, err
	}
	addr := fmt.Sprintf("127.0.0.1:%d", ports[0])
	r := &RIE{URL: "http://" + addr + rieInvocationsPath, done: make(chan struct{})}
	r.cmd = exec.Command(rie,
		"--log-level", "error",
		"--runtime-interface-emulator-address", addr,
		"--runtime-api-address", fmt.Sprintf("127.0.0.1:%d", ports[1]),
		bootstrap)
	r.cmd.Env = env
	r.cmd.Stdout = (*lockedWriter)(r)
	r.cmd.Stderr = (*lockedWriter)(r)
	// Its own process group, so the function the emulator starts dies
	// with it.
	procgroup.Own(r.cmd)
	if err := r.cmd.Start(); err != nil {
		return nil, err
	}
	go func() { _ = r.cmd.Wait(); close(r.done) }()
	t.Cleanup(r.Stop)

	deadline := time.Now().Add(30 * time.Second)
	for {
		conn, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			_ = conn.Close()
			return r, nil
		}
		select {
		case <-r.done:
			return nil, fmt.Errorf("the emulator exited during start-up: %s", r.Output())
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			r.Stop()
			return nil, fmt.Errorf("the emulator did not listen on %s within 30 s: %s", addr, r.Output())
		}
	}
}

type lockedWriter RIE

func (w *lockedWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.output.Write(p)
}

// Output is what the emulator and the function wrote so far.
func (r *RIE) Output() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.output.String()
}

// Stop kills the emulator and the function (idempotent).
func (r *RIE) Stop() {
	if r.cmd.Process != nil {
		procgroup.Kill(r.cmd.Process)
	}
	select {
	case <-r.done:
	case <-time.After(10 * time.Second):
	}
}

// Invoke sends payload to the function and returns its response body (the
// function's result, or the RIE's JSON error object when it failed).
func (r *RIE) Invoke(ctx context.Context, payload []byte) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, r.URL, bytes.NewReader(payload))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("invoking the function under the RIE: %w; output: %s", err, r.Output())
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return body, fmt.Errorf("the RIE answered %s: %s; output: %s", resp.Status, body, r.Output())
	}
	return body, nil
}

// freePorts returns n distinct free TCP ports on 127.0.0.1.
func freePorts(n int) ([]int, error) {
	var ports []int
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			_ = l.Close()
		}
	}()
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		ls = append(ls, l)
		addr, ok := l.Addr().(*net.TCPAddr)
		if !ok {
			return nil, errors.New("not a TCP address")
		}
		ports = append(ports, addr.Port)
	}
	return ports, nil
}

// FakeCredentials gives the SDK, for the rest of t, the credentials "test",
// no shared config or credentials file, no instance metadata and no
// AWS_ENDPOINT_URL: a test that loads an AWS config then calls only what it
// points at (and nothing a developer's own ~/.aws sets).
func FakeCredentials(t testing.TB) {
	t.Helper()
	for k, v := range map[string]string{
		"AWS_ACCESS_KEY_ID":           "test",
		"AWS_SECRET_ACCESS_KEY":       "test",
		"AWS_CONFIG_FILE":             "/dev/null",
		"AWS_SHARED_CREDENTIALS_FILE": "/dev/null",
		"AWS_EC2_METADATA_DISABLED":   "true",
		"AWS_ENDPOINT_URL":            "",
	} {
		t.Setenv(k, v)
	}
}
