package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/socks-dev/socks/awsops"
	"github.com/socks-dev/socks/internal/emulatortest"
)

// TestDeployAndTeardownOnMoto drives the binary as an operator would, with
// every AWS call sent to moto by --endpoint-url (SOCKS_ENDPOINT_URL): deploy
// a stack with one plain progress line per resource when piped, a second
// deploy that has nothing to do, `teardown --dry-run` that lists what
// `teardown --yes` then removes and removes nothing, `teardown --yes` that
// removes everything deploy made, and a dry run afterwards that would
// create it all again.
func TestDeployAndTeardownOnMoto(t *testing.T) {
	t.Parallel()
	moto := emulatortest.Moto(t)
	s := &awsStack{t: t, env: awsEnv(t, map[string]string{"SOCKS_ENDPOINT_URL": moto}), name: uniqueStack("deploy")}
	t.Cleanup(func() { s.cleanup("teardown", "--yes") })

	raw, err := os.ReadFile(socksBin)
	if err != nil {
		t.Fatal(err)
	}
	pkg, err := awsops.LambdaZip(raw)
	if err != nil {
		t.Fatal(err)
	}
	zipFile := filepath.Join(t.TempDir(), "socks-lambda.zip")
	if err := os.WriteFile(zipFile, pkg, 0o644); err != nil {
		t.Fatal(err)
	}

	r := s.run("deploy", "--lambda-zip", zipFile)
	if r.code != 0 {
		t.Fatalf("deploy:\n%s", r)
	}
	if !strings.Contains(r.stdout, "websocket url: wss://") || !strings.Contains(r.stdout, "callback url:  https://") {
		t.Errorf("deploy printed no URLs:\n%s", r.stdout)
	}
	if strings.Contains(r.stderr, "\x1b[") {
		t.Errorf("progress has escape codes when piped:\n%q", r.stderr)
	}
	for _, kind := range []string{"log group", "websocket api", "role", "function", "routes", "stage", "permission", "event source mapping"} {
		if !strings.Contains(r.stderr, "created "+kind+" ") {
			t.Errorf("no progress line for %s:\n%s", kind, r.stderr)
		}
	}

	if out := s.must("deploy", "--lambda-zip", zipFile); !strings.HasPrefix(out, "nothing to do: ") {
		t.Errorf("second deploy:\n%s", out)
	}

	// A dry run lists what teardown then deletes, one for one and in the
	// order it deletes them, and deletes none of it: stdin is not a
	// terminal, and there is no --yes.
	dry := s.must("teardown", "--dry-run")
	if out := s.must("deploy", "--lambda-zip", zipFile); !strings.HasPrefix(out, "nothing to do: ") {
		t.Errorf("deploy after teardown --dry-run:\n%s", out)
	}
	out := s.must("teardown", "--yes")
	if got, want := strings.ReplaceAll(dry, "would delete ", "deleted "), out; got != want {
		t.Errorf("teardown --dry-run said:\n%s\nteardown --yes said:\n%s", dry, out)
	}
	for _, want := range []string{"deleted function " + s.name + "-socks", "deleted role " + s.name + "-socks-function", "deleted websocket api " + s.name + "-websocket", "deleted table " + s.name + "-connections", "deleted queue " + s.name + "-envelopes"} {
		if !strings.Contains(out, want) {
			t.Errorf("teardown does not say %q:\n%s", want, out)
		}
	}
	plan := s.must("deploy", "--dry-run", "--lambda-zip", zipFile)
	if n := strings.Count(plan, "would create "); n != 11 {
		t.Errorf("after teardown a dry run would create %d resources, want all 11:\n%s", n, plan)
	}
	if out := s.must("teardown", "--yes"); !strings.Contains(out, "nothing to delete") {
		t.Errorf("the dry run made something:\n%s", out)
	}
}
