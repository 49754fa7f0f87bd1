// Package unpriv runs a test as root would run without its power over
// file permissions, for tests of what a read-only file refuses: root may
// write any file, so such a test cannot fail as root, and CI runs as
// root. It re-runs the test in a child process that setpriv(1) starts
// without CAP_DAC_OVERRIDE and CAP_DAC_READ_SEARCH, which the kernel's
// permission checks (access(2) included) then apply to root as to any
// user.
package unpriv

import (
	"os"
	"os/exec"
	"strings"
	"testing"
)

// childEnv marks the child process that Enter starts.
const childEnv = "SOCKS_TEST_UNPRIVILEGED"

// Enter reports whether the calling test should go on in this process:
// as another user than root, or in the child, yes. As root it runs the
// test (t.Name(), a top-level test) again in a child without the
// capabilities, fails t when the child fails or does not pass it, and
// returns false. Without setpriv it skips t, saying how to run it.
func Enter(t *testing.T) bool {
	t.Helper()
	if os.Geteuid() != 0 || os.Getenv(childEnv) != "" {
		return true
	}
	setpriv, err := exec.LookPath("setpriv")
	if err != nil {
		t.Skip("as root this test needs setpriv (util-linux) to run without the capability to override file permissions; install it or run the test as another user")
	}
	name := t.Name()
	cmd := exec.Command(setpriv, "--bounding-set=-dac_override,-dac_read_search",
		os.Args[0], "-test.run", "^"+name+"$", "-test.v", "-test.count=1")
	cmd.Env = append(os.Environ(), childEnv+"=1")
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "--- PASS: "+name) {
		t.Fatalf("%s without the capability to override file permissions (setpriv): %v\n%s", name, err, out)
	}
	return false
}
