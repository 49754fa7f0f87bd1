package deploy

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/BurntSushi/toml"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"

	"github.com/socks-dev/socks/awsops"
	"github.com/socks-dev/socks/config"
	"github.com/socks-dev/socks/internal/emulatortest"
	"github.com/socks-dev/socks/iostreams"
)

func stackName(prefix string) string {
	var b [5]byte
	_, _ = rand.Read(b[:])
	return prefix + "-" + hex.EncodeToString(b[:])
}

// TestDeployCommandOnMoto runs `socks deploy` as the command does, on moto:
// a dry run on an empty account
// lists every resource and changes nothing; the deploy prints both URLs
// and writes them into the selected profile; a second deploy says
// "nothing to do".
func TestDeployCommandOnMoto(t *testing.T) {
	moto := emulatortest.Moto(t)
	cfg := aws.Config{Region: "us-east-1", Credentials: credentials.NewStaticCredentialsProvider("test", "test", "")}
	cp := awsops.NewControlPlane(cfg, awsops.Endpoints{All: moto})
	stack := stackName("cmd")
	cfgFile := filepath.Join(t.TempDir(), "config.toml")
	if err := os.WriteFile(cfgFile, []byte("default_profile = \"moto\"\n[profiles.moto]\nbackend = \"aws\"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	arch := "arm64"
	if runtime.GOARCH == "amd64" {
		arch = "amd64"
	}
	// A package of the right shape: the function is not run here (awsops
	// runs the real one under the RIE), and building it would cost a
	// cross-compile of the whole binary.
	pkg, err := awsops.LambdaZip([]byte("#!/bin/sh\n"))
	if err != nil {
		t.Fatal(err)
	}
	zipFile := filepath.Join(t.TempDir(), "socks-lambda.zip")
	if err := os.WriteFile(zipFile, pkg, 0o644); err != nil {
		t.Fatal(err)
	}
	run := func(t *testing.T, dryRun bool) (string, string) {
		t.Helper()
		ios, _, out, errOut := iostreams.Test()
		opts := &Options{
			IO: ios, Arch: arch, Stage: "prod", FunctionTimeout: 30 * time.Second, ThrottleBurst: 500, ThrottleRate: 1000,
			MaxConcurrency: 10, DryRun: dryRun, Wait: time.Minute, LambdaZip: zipFile,
			Target: func(context.Context) (*Target, error) {
				return &Target{CP: cp, Stack: stack, Region: "us-east-1", ConfigFile: cfgFile, Profile: "moto"}, nil
			},
		}
		if err := deployRun(t.Context(), opts); err != nil {
			t.Fatalf("deploy: %v\nstderr: %s", err, errOut)
		}
		return out.String(), errOut.String()
	}
	t.Cleanup(func() {
		d := &awsops.Deployer{CP: cp, Spec: awsops.DeploySpec{Stack: stack, Region: "us-east-1"}}
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if steps, err := d.Deployed(ctx); err == nil {
			_ = d.Undeploy(ctx, steps)
		}
	})

	out, progress := run(t, true)
	for _, kind := range []string{"tables and queues", "log group", "websocket api", "role", "role policy", "function", "integration", "routes", "stage", "permission", "event source mapping"} {
		if !strings.Contains(out, "would create "+kind+" ") {
			t.Errorf("dry run does not list %s:\n%s", kind, out)
		}
	}
	if api, err := awsops.FindStackAPI(t.Context(), cp.APIGW, stack); err != nil || api != nil {
		t.Errorf("the dry run created an API (%v)", err)
	}
	if strings.Count(progress, "\n") < 11 {
		t.Errorf("progress, one line per resource:\n%s", progress)
	}

	out, _ = run(t, false)
	if !strings.Contains(out, "websocket url: wss://") || !strings.Contains(out, "callback url:  https://") || !strings.Contains(out, "saved both into config profile moto") {
		t.Errorf("deploy output:\n%s", out)
	}
	var file config.File
	if _, err := toml.DecodeFile(cfgFile, &file); err != nil {
		t.Fatal(err)
	}
	p := file.Profiles["moto"]
	if !strings.HasPrefix(p.WebSocketURL, "wss://") || !strings.HasSuffix(p.WebSocketURL, "/prod") || !strings.HasPrefix(p.CallbackURL, "https://") || p.Stack != stack || p.Backend != "aws" {
		t.Errorf("profile after deploy: %+v", p)
	}
	// The profile is what the other commands resolve.
	home := t.TempDir()
	resolved, err := config.Resolve(config.Flags{ConfigFile: cfgFile}, func(k string) string {
		if k == "HOME" {
			return home
		}
		return ""
	})
	if err != nil || resolved.AWS.CallbackURL != p.CallbackURL {
		t.Errorf("resolved %+v, %v", resolved.AWS, err)
	}

	out, _ = run(t, false)
	if !strings.HasPrefix(out, "nothing to do: ") {
		t.Errorf("second deploy:\n%s", out)
	}
}

// TestSourceCheckout finds this checkout from a folder inside it, and no
// checkout from outside one.
func TestSourceCheckout(t *testing.T) {
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	if got := sourceCheckout(filepath.Join(root, "commands", "deploy")); got != root {
		t.Errorf("from commands/deploy: %q, want %q", got, root)
	}
	if got := sourceCheckout(t.TempDir()); got != "" {
		t.Errorf("from a temporary folder: %q", got)
	}
}
