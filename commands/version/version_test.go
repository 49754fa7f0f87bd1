package version

import (
	"context"
	"testing"

	"github.com/socks-dev/socks/commands/cmdutil"
	"github.com/socks-dev/socks/internal/build"
	"github.com/socks-dev/socks/iostreams"
)

func TestVersionRunPrintsTheLineOrTheJSON(t *testing.T) {
	info := build.Info{Version: "v1.2.0", Commit: "3f1c0a9e", Date: "2026-11-30", Go: "go1.26.8"}
	for _, tc := range []struct {
		name string
		json bool
		want string
	}{
		{"plain, the line --version prints", false, "socks v1.2.0 (3f1c0a9e, 2026-11-30) go1.26.8\n"},
		{"--json, the build info", true, `{"version":"v1.2.0","commit":"3f1c0a9e","date":"2026-11-30","go":"go1.26.8"}` + "\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ios, _, stdout, stderr := iostreams.Test()
			if err := versionRun(t.Context(), &Options{IO: ios, Build: info, JSON: tc.json}); err != nil {
				t.Fatal(err)
			}
			if stdout.String() != tc.want || stderr.Len() != 0 {
				t.Errorf("stdout %q, stderr %q; want %q and nothing on stderr", stdout, stderr, tc.want)
			}
		})
	}
}

func TestVersionFlagsReachTheOptions(t *testing.T) {
	info := build.Info{Version: "v1.2.0", Go: "go1.26.8"}
	for _, tc := range []struct {
		args     []string
		wantJSON bool
	}{
		{nil, false},
		{[]string{"--json"}, true},
	} {
		ios, _, _, _ := iostreams.Test()
		f := &cmdutil.Factory{IOStreams: ios, Build: info}
		var got *Options
		cmd := NewCmdVersion(f, func(_ context.Context, opts *Options) error {
			got = opts
			return nil
		})
		cmd.SetArgs(tc.args)
		if err := cmd.ExecuteContext(t.Context()); err != nil {
			t.Fatalf("%q: %v", tc.args, err)
		}
		if got == nil || got.JSON != tc.wantJSON || got.Build != info || got.IO != ios {
			t.Errorf("%q: options %+v; want JSON %v, the factory's build info and streams", tc.args, got, tc.wantJSON)
		}
	}
}
