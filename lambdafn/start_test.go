package lambdafn

import (
	"bytes"
	"strings"
	"testing"

	"github.com/socks-dev/socks/internal/build"
)

// TestAFunctionWithABadAttemptTimeoutFailsAtStartInWords: a function whose
// SOCKS_ATTEMPT_TIMEOUT is not a duration above 0 (a bare 5) does not
// start, rather than run on the 15 s default the user meant to change:
// Main returns 1 before the runtime loop (Lambda's Runtime.ExitError at
// init) and its one line on stderr, which CloudWatch Logs keeps, names the
// variable, the value and the fix.
func TestAFunctionWithABadAttemptTimeoutFailsAtStartInWords(t *testing.T) {
	for value, want := range map[string]string{
		"5":   `socks: SOCKS_ATTEMPT_TIMEOUT "5" is not a duration: give a number with a unit, as 5s or 1m` + "\n",
		"-2s": `socks: SOCKS_ATTEMPT_TIMEOUT "-2s" must be above 0` + "\n",
	} {
		env := map[string]string{"SOCKS_STACK": "prod", "AWS_REGION": "eu-west-1", "SOCKS_ATTEMPT_TIMEOUT": value}
		var stderr bytes.Buffer
		if code := Main(t.Context(), func(k string) string { return env[k] }, build.Info{}, &stderr); code != 1 {
			t.Errorf("SOCKS_ATTEMPT_TIMEOUT=%s: Main returned %d; want 1", value, code)
		}
		if got := stderr.String(); got != want || strings.Count(got, "\n") != 1 {
			t.Errorf("SOCKS_ATTEMPT_TIMEOUT=%s: stderr %q; want %q", value, got, want)
		}
	}
}
