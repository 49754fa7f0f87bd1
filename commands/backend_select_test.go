package commands_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/socks-dev/socks/commands"
	"github.com/socks-dev/socks/commands/cmdutil"
	"github.com/socks-dev/socks/internal/build"
	"github.com/socks-dev/socks/iostreams"
)

// TestAWSSettingsWithoutTheAWSBackendAreNotIgnoredSilently: AWS settings
// given while no backend is chosen (SOCKS_BACKEND forgotten) ran the
// command on the local backend without a word: a publish meant for the
// AWS stack was queued on this machine and reported as queued. The
// command still runs locally, and says which settings it does not use.
func TestAWSSettingsWithoutTheAWSBackendAreNotIgnoredSilently(t *testing.T) {
	for _, tc := range []struct {
		name string
		env  map[string]string
		args []string
		warn []string // "" none
	}{
		{"SOCKS_CALLBACK_URL without SOCKS_BACKEND", map[string]string{"SOCKS_CALLBACK_URL": "https://abc123.execute-api.eu-west-1.amazonaws.com/prod", "SOCKS_STACK": "prod"}, nil,
			[]string{"$SOCKS_CALLBACK_URL", "$SOCKS_STACK", "the backend is local (the default)", "--backend aws"}},
		{"--endpoint-url without --backend", nil, []string{"--endpoint-url", "http://127.0.0.1:4566"}, []string{"--endpoint-url", "--backend aws"}},
		{"an explicit local backend", map[string]string{"SOCKS_BACKEND": "local", "SOCKS_CALLBACK_URL": "https://abc123.execute-api.eu-west-1.amazonaws.com/prod"}, nil, nil},
		{"AWS_REGION alone (set for other tools)", map[string]string{"AWS_REGION": "eu-west-1"}, nil, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ios, _, out, errOut := iostreams.Test()
			env := map[string]string{"HOME": t.TempDir(), "SOCKS_STATE_DIR": t.TempDir()}
			for k, v := range tc.env {
				env[k] = v
			}
			f := &cmdutil.Factory{IOStreams: ios, Getenv: func(k string) string { return env[k] }, Now: time.Now, Build: build.Info{Version: "1.2.3"}}
			args := append(append([]string{}, tc.args...), "publish", "--geek", "alice", "--topic", "updates", "--message", "hi")
			if code := commands.Run(context.Background(), f, args); code != 0 {
				t.Fatalf("publish: exit %d %q %q", code, out, errOut)
			}
			warned := strings.Contains(errOut.String(), "warning:") && strings.Contains(errOut.String(), "backend is local")
			if len(tc.warn) == 0 {
				if warned {
					t.Errorf("stderr %q warns", errOut)
				}
				return
			}
			for _, w := range tc.warn {
				if !strings.Contains(errOut.String(), w) {
					t.Errorf("stderr %q does not say %q", errOut, w)
				}
			}
		})
	}
}
