package e2e

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// typeScript returns node and testdata/ts-client, whose node_modules hold
// the typescript its package.json pins, or skips (fails under
// SOCKS_E2E_REQUIRE_NODE=1) when either is missing or another version is
// installed.
func typeScript(t *testing.T) (node, dir string) {
	t.Helper()
	dir = filepath.Join(moduleDir, "testdata", "ts-client")
	node, err := exec.LookPath("node")
	if err == nil {
		var pinned, installed struct {
			Version         string
			DevDependencies struct{ TypeScript string }
		}
		err = readJSON(filepath.Join(dir, "package.json"), &pinned)
		if err != nil {
			t.Fatal(err)
		}
		if readJSON(filepath.Join(dir, "node_modules", "typescript", "package.json"), &installed) != nil {
			err = fmt.Errorf("%s has no node_modules/typescript", dir)
		} else if installed.Version != pinned.DevDependencies.TypeScript {
			err = fmt.Errorf("%s has typescript %s installed, not the pinned %s", dir, installed.Version, pinned.DevDependencies.TypeScript)
		}
	}
	if err != nil {
		withoutNode(t, fmt.Sprintf("the TypeScript compiler cannot run: %v", err), npmCI("ts-client"))
	}
	return node, dir
}

func readJSON(path string, v any) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	return json.Unmarshal(b, v)
}

// TestTheTypeScriptDeclarationsOfSocksJSCompileUnderStrict compiles
// testdata/ts-client/usage.ts, a page that uses socks.js as the README
// teaches it, against web/socks.d.ts with the pinned tsc under strict (and
// exactOptionalPropertyTypes): the declarations must accept what the
// README shows, and refuse each misuse usage.ts marks @ts-expect-error
// (tsc fails on a marker whose line compiles).
func TestTheTypeScriptDeclarationsOfSocksJSCompileUnderStrict(t *testing.T) {
	t.Parallel()
	node, dir := typeScript(t)
	ctx := testContext(t, 2*time.Minute)
	cmd := exec.CommandContext(ctx, node, filepath.Join(dir, "node_modules", "typescript", "bin", "tsc"), "--project", dir, "--pretty", "false")
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("tsc --project testdata/ts-client: %v: web/socks.d.ts does not fit usage.ts (fix the side that is wrong: the README teaches usage.ts):\n%s", err, out)
	}
}
