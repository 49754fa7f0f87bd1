//go:build unix

package deploy

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/socks-dev/socks/iostreams"
)

// fakeGo puts on PATH a go tool that answers `go env` as a machine with no
// go env file would and runs build as the shell script given.
func fakeGo(t *testing.T, build string) {
	t.Helper()
	dir := t.TempDir()
	script := "#!/bin/sh\nif [ \"$1\" = env ]; then printf '\\noff\\n'; exit 0; fi\n" + build + "\n"
	if err := os.WriteFile(filepath.Join(dir, "go"), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", dir)
}

// TestAFailedFunctionBuildSaysWhatGoSaidLast: a go build of the function
// that failed, or was cut short, gave an error of everything go printed:
// hundreds of "go: downloading ..." lines squashed onto one line on
// stderr, and in deploy --json an error ending with a newline
// ("go build of the function failed: signal: terminated\n"). The error
// keeps the last lines go said but those, trimmed, and ends with no
// newline. The go tool is a fake: no real build runs.
func TestAFailedFunctionBuildSaysWhatGoSaidLast(t *testing.T) {
	const downloads = `i=0; while [ $i -lt 300 ]; do echo "go: downloading example.com/mod$i v1.$i.0" >&2; i=$((i+1)); done`
	for _, tc := range []struct {
		name  string
		build string
		want  string // the whole error
	}{
		{"a build that fails says go's last lines", downloads + `
echo "go: downloading example.com/late v0.1.0"
echo "cmd/socks/main.go:7:2: missing go.sum entry for module providing package example.com/x (imported by github.com/socks-dev/socks/cmd/socks); to add:" >&2
printf '\tgo get github.com/socks-dev/socks/cmd/socks  \n\n' >&2
exit 1`,
			"go build of the function failed: exit status 1: cmd/socks/main.go:7:2: missing go.sum entry for module providing package example.com/x (imported by github.com/socks-dev/socks/cmd/socks); to add: / go get github.com/socks-dev/socks/cmd/socks"},
		{"a build cut short with nothing said ends with the signal", `kill -TERM $$`, "go build of the function failed: signal: terminated"},
		{"a build cut short while downloading ends with the signal", downloads + "\nkill -TERM $$", "go build of the function failed: signal: terminated"},
		{"a long compile error keeps its last lines", `i=1; while [ $i -le 40 ]; do echo "cmd/socks/x.go:$i:1: undefined: v$i" >&2; i=$((i+1)); done; exit 1`,
			"go build of the function failed: exit status 1: ... (35 lines before) / cmd/socks/x.go:36:1: undefined: v36 / cmd/socks/x.go:37:1: undefined: v37 / cmd/socks/x.go:38:1: undefined: v38 / cmd/socks/x.go:39:1: undefined: v39 / cmd/socks/x.go:40:1: undefined: v40"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fakeGo(t, tc.build)
			src := emptyCheckout(t)
			ios, _, out, _ := iostreams.Test()
			opts := &Options{
				IO: ios, Arch: "arm64", Stage: "prod", FunctionTimeout: 30 * time.Second, MaxConcurrency: 10,
				ThrottleBurst: 500, ThrottleRate: 1000, Wait: time.Minute, MaxTopics: 50, MaxConnectionsPerGeek: 100,
				SourceDir: src, DryRun: true, JSON: true,
				Target: func(context.Context) (*Target, error) { return &Target{Stack: "socks", Region: "eu-west-1"}, nil },
			}
			err := deployRun(t.Context(), opts)
			if err == nil || err.Error() != tc.want {
				t.Errorf("err = %q;\n want %q", err, tc.want)
			}
			var res struct {
				Error string `json:"error"`
			}
			if jerr := json.Unmarshal(out.Bytes(), &res); jerr != nil {
				t.Fatalf("--json: %v\n%q", jerr, out)
			}
			if res.Error != tc.want || strings.ContainsAny(res.Error, "\n\r\t") {
				t.Errorf("--json error %q;\n want %q, on one line", res.Error, tc.want)
			}
		})
	}
}
