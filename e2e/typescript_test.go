package e2e

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// compiler is one TypeScript compiler testdata/ts-client pins: its package
// under node_modules, and the version pinned.
type compiler struct{ dir, version string }

// typeScript returns node, testdata/ts-client and the TypeScript compilers
// its package.json pins (typescript, and each npm alias of typescript such
// as "typescript5": "npm:typescript@5.9.3"), or skips (fails under
// SOCKS_E2E_REQUIRE_NODE=1) when node or one of them is missing or another
// version is installed.
func typeScript(t *testing.T) (node, dir string, compilers []compiler) {
	t.Helper()
	dir = filepath.Join(moduleDir, "testdata", "ts-client")
	var pinned struct{ DevDependencies map[string]string }
	if err := readJSON(filepath.Join(dir, "package.json"), &pinned); err != nil {
		t.Fatal(err)
	}
	for name, spec := range pinned.DevDependencies {
		if version, ok := strings.CutPrefix(spec, "npm:typescript@"); ok {
			compilers = append(compilers, compiler{name, version})
		} else if name == "typescript" {
			compilers = append(compilers, compiler{name, spec})
		}
	}
	if len(compilers) < 2 {
		t.Fatalf("%s pins %d TypeScript compilers, want the current one and the 5.x most users have: %v", dir, len(compilers), pinned.DevDependencies)
	}
	slices.SortFunc(compilers, func(a, b compiler) int { return strings.Compare(a.dir, b.dir) })
	node, err := exec.LookPath("node")
	for _, c := range compilers {
		if err != nil {
			break
		}
		var installed struct{ Name, Version string }
		if readJSON(filepath.Join(dir, "node_modules", c.dir, "package.json"), &installed) != nil {
			err = fmt.Errorf("%s has no node_modules/%s", dir, c.dir)
		} else if installed.Name != "typescript" || installed.Version != c.version {
			err = fmt.Errorf("%s has %s %s installed as %s, not the pinned typescript %s", dir, installed.Name, installed.Version, c.dir, c.version)
		}
	}
	if err != nil {
		withoutNode(t, fmt.Sprintf("the TypeScript compiler cannot run: %v", err), npmCI("ts-client"))
	}
	return node, dir, compilers
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
// teaches it, against web/socks.d.ts with each pinned tsc (the current
// one, and the newest 5.x, which most users have) under strict (and
// exactOptionalPropertyTypes): the declarations must accept what the
// README shows, and refuse each misuse usage.ts marks @ts-expect-error
// (tsc fails on a marker whose line compiles).
func TestTheTypeScriptDeclarationsOfSocksJSCompileUnderStrict(t *testing.T) {
	t.Parallel()
	node, dir, compilers := typeScript(t)
	for _, c := range compilers {
		t.Run("tsc-"+c.version, func(t *testing.T) {
			t.Parallel()
			ctx := testContext(t, 2*time.Minute)
			cmd := exec.CommandContext(ctx, node, filepath.Join(dir, "node_modules", c.dir, "bin", "tsc"), "--project", dir, "--pretty", "false")
			cmd.Dir = dir
			if out, err := cmd.CombinedOutput(); err != nil {
				t.Fatalf("tsc %s --project testdata/ts-client: %v: web/socks.d.ts does not fit usage.ts (fix the side that is wrong: the README teaches usage.ts):\n%s", c.version, err, out)
			}
		})
	}
}
