package main

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/socks-dev/socks/internal/build"
	"github.com/socks-dev/socks/internal/emulatortest"
	"github.com/socks-dev/socks/internal/refusing"
	"github.com/socks-dev/socks/lambdafn"
)

// TestTheBootstrapLinksOnlyTheFunction: the Lambda function's bootstrap,
// built as deploy, the release and the benchmarks build it
// (build.LambdaTags), links what the function runs and none of the rest
// of socks: no command line (cobra, the commands, lipgloss), no local
// backend (SQLite), no control-plane clients (deploy's IAM, Lambda, API
// Gateway v2 and CloudWatch Logs; the producers' SNS and EventBridge). STS
// stays: the SDK's credential chain (assume-role profiles) links it.
func TestTheBootstrapLinksOnlyTheFunction(t *testing.T) {
	list := exec.Command("go", "list", "-deps", "-tags", build.LambdaTags, build.LambdaPackage)
	list.Dir = filepath.Join("..", "..")
	list.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH=arm64")
	out, err := list.Output()
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			t.Fatalf("go list -deps -tags %s %s: %v\n%s", build.LambdaTags, build.LambdaPackage, err, ee.Stderr)
		}
		t.Fatal(err)
	}
	deps := strings.Fields(string(out))
	for _, want := range []string{"github.com/socks-dev/socks/lambdafn", "github.com/aws/aws-lambda-go/lambda", "github.com/aws/aws-sdk-go-v2/service/dynamodb", "github.com/aws/aws-sdk-go-v2/service/sqs"} {
		if !slices.Contains(deps, want) {
			t.Errorf("the bootstrap does not link %s, which the function needs", want)
		}
	}
	unwanted := []string{
		"modernc.org/sqlite",
		"github.com/socks-dev/socks/local",
		"github.com/spf13/cobra",
		"github.com/socks-dev/socks/commands",
		"github.com/charmbracelet/lipgloss",
		"github.com/aws/aws-sdk-go-v2/service/iam",
		"github.com/aws/aws-sdk-go-v2/service/lambda",
		"github.com/aws/aws-sdk-go-v2/service/apigatewayv2",
		"github.com/aws/aws-sdk-go-v2/service/cloudwatchlogs",
		"github.com/aws/aws-sdk-go-v2/service/sns",
		"github.com/aws/aws-sdk-go-v2/service/eventbridge",
	}
	for _, dep := range deps {
		for _, u := range unwanted {
			if dep == u || strings.HasPrefix(dep, u+"/") {
				t.Errorf("the bootstrap links %s", dep)
			}
		}
	}
}

// TestTheBootstrapIsTheFunctionOnly: started as a command (with
// arguments, or outside Lambda), the bootstrap says that it is the Lambda
// function only and exits 2, a usage error, instead of running a command.
func TestTheBootstrapIsTheFunctionOnly(t *testing.T) {
	bin, err := emulatortest.BuildBootstrap(t.Context(), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		args []string
		env  []string
	}{
		// A Runtime API that refuses: a bootstrap that went on to ask it
		// for an event fails at once, reaching nothing.
		{"a command", []string{"version"}, []string{lambdafn.EnvRuntimeAPI + "=" + refusing.Addr(t)}},
		{"outside Lambda", nil, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cmd := exec.Command(bin, tc.args...)
			cmd.Env = append([]string{"PATH=/usr/bin:/bin", "HOME=" + t.TempDir()}, tc.env...)
			var stdout, stderr strings.Builder
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			err := cmd.Run()
			var ee *exec.ExitError
			if !errors.As(err, &ee) || ee.ExitCode() != 2 {
				t.Fatalf("bootstrap %q: %v; want exit status 2\nstdout: %s\nstderr: %s", tc.args, err, stdout.String(), stderr.String())
			}
			if stdout.Len() != 0 || stderr.String() != notTheCLI+"\n" {
				t.Errorf("bootstrap %q printed %q on stdout and %q on stderr; want only %q on stderr", tc.args, stdout.String(), stderr.String(), notTheCLI)
			}
		})
	}
}

// TestTheBootstrapIsBuiltOneWay: the release (.goreleaser.yaml's lambda
// build), the benchmarks (scripts/bench) and the build commands of
// docs/deploy.md and docs/template.yaml build the bootstrap from
// build.LambdaPackage with build.LambdaTags, as socks deploy does.
func TestTheBootstrapIsBuiltOneWay(t *testing.T) {
	root := filepath.Join("..", "..")
	read := func(name string) string {
		b, err := os.ReadFile(filepath.Join(root, name))
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}

	// The lambda build: from its "- id: lambda" under builds: to the next
	// build or the end of the builds.
	cfg := read(".goreleaser.yaml")
	_, builds, _ := strings.Cut(cfg, "\nbuilds:\n")
	builds, _, _ = strings.Cut(builds, "\narchives:\n")
	_, lambda, ok := strings.Cut(builds, "  - id: lambda\n")
	if !ok {
		t.Fatal(".goreleaser.yaml has no lambda build")
	}
	lambda, _, _ = strings.Cut(lambda, "\n  - id: ")
	var main string
	var flags []string
	for l := range strings.SplitSeq(lambda, "\n") {
		l = strings.TrimSpace(l)
		if v, ok := strings.CutPrefix(l, "main: "); ok {
			main = v
		}
		if v, ok := strings.CutPrefix(l, "- -"); ok {
			flags = append(flags, "-"+v)
		}
	}
	if main != build.LambdaPackage || !slices.Contains(flags, "-tags="+build.LambdaTags) {
		t.Errorf(".goreleaser.yaml's lambda build has main %q and flags %q; want main %s and -tags=%s", main, flags, build.LambdaPackage, build.LambdaTags)
	}

	// Every go build of the bootstrap in the bench script and the docs.
	for _, c := range []struct{ file, output string }{
		{"scripts/bench", `"$bin/bootstrap"`},
		{"docs/deploy.md", "build/bootstrap"},
		{"docs/template.yaml", "build/bootstrap"},
	} {
		n := 0
		for l := range strings.SplitSeq(read(c.file), "\n") {
			if !strings.Contains(l, "go build") || !strings.Contains(l, "-o "+c.output) {
				continue
			}
			n++
			if !strings.Contains(l, " -tags "+build.LambdaTags+" ") || !strings.HasSuffix(strings.TrimSpace(l), " "+build.LambdaPackage) {
				t.Errorf("%s builds the bootstrap with %q; want -tags %s and %s", c.file, strings.TrimSpace(l), build.LambdaTags, build.LambdaPackage)
			}
		}
		if n == 0 {
			t.Errorf("%s has no go build ... -o %s", c.file, c.output)
		}
	}
}
