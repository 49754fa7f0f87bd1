package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestEmulatorsSayWhyABrokenJavaCannotRunThem: a java on the PATH that
// fails its version probe (a broken JRE, a dangling alternative) made
// scripts/emulators, and so make test and make bench, exit 1 without a
// word: set -o pipefail ended it at the probe, before its message.
func TestEmulatorsSayWhyABrokenJavaCannotRunThem(t *testing.T) {
	t.Parallel()
	bin := t.TempDir()
	if err := os.WriteFile(filepath.Join(bin, "java"), []byte("#!/bin/sh\necho broken >&2\nexit 1\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("bash", filepath.Join(moduleDir, "scripts", "emulators"), "start")
	var env []string
	for _, e := range os.Environ() {
		if !strings.HasPrefix(e, "JAVA_HOME=") && !strings.HasPrefix(e, "PATH=") && !strings.HasPrefix(e, "SOCKS_EMULATOR_CACHE=") {
			env = append(env, e)
		}
	}
	cmd.Env = append(env, "PATH="+bin+string(os.PathListSeparator)+os.Getenv("PATH"), "SOCKS_EMULATOR_CACHE="+t.TempDir())
	out, err := cmd.CombinedOutput()
	if err == nil {
		t.Fatalf("scripts/emulators start succeeded with a broken java:\n%s", out)
	}
	if !strings.Contains(string(out), "java at "+filepath.Join(bin, "java")) || !strings.Contains(string(out), "install a Java 17+ runtime") {
		t.Errorf("scripts/emulators start failed (%v) saying %q; want it to name the java and the fix", err, out)
	}
}
