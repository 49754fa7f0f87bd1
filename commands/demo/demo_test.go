package demo

import (
	"context"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/socks-dev/socks/iostreams"
)

func TestPipedOutputEndsWithAOneLineVerdict(t *testing.T) {
	for _, tc := range []struct {
		name string
		out  Outcome
		want string
	}{
		{"a demo that behaved", Outcome{OK: true, Refused: true, ElapsedMS: 12}, "ok: everything behaved in 12ms"},
		{"a demo that did not names each problem", Outcome{Problems: []string{"a forged chatter ID was not refused with 403", "bob received 1 message(s), expected 0"}},
			"FAIL: a forged chatter ID was not refused with 403; bob received 1 message(s), expected 0"},
		{"the verdict comes after the kept state dir", Outcome{OK: true, Refused: true, StateDir: "/tmp/x"}, "ok: everything behaved in 0ms"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ios, _, out, _ := iostreams.Test()
			if err := render(&Options{IO: ios}, nil, nil, tc.out); err != nil {
				t.Fatal(err)
			}
			lines := strings.Split(strings.TrimRight(out.String(), "\n"), "\n")
			if last := lines[len(lines)-1]; last != tc.want {
				t.Errorf("last line %q; want %q\n%s", last, tc.want, out)
			}
		})
	}
}

// TestADemoThatRunsOutOfTimeSaysSo: a demo cut short by its time limit
// said "context deadline exceeded" (or a step's error around it).
func TestADemoThatRunsOutOfTimeSaysSo(t *testing.T) {
	defer func(d time.Duration) { demoTimeout = d }(demoTimeout)
	demoTimeout = time.Nanosecond
	ios, _, _, _ := iostreams.Test()
	err := demoRun(context.Background(), &Options{IO: ios, Now: time.Now})
	if err == nil || strings.Contains(err.Error(), "deadline") || !strings.Contains(err.Error(), "did not finish within 1ns") {
		t.Fatalf("demo = %v; want it to say it did not finish in time, in its own words", err)
	}
}

// TestADemoWithNoTemporaryDirSaysWhichVariableToSet: a temporary dir
// that does not exist (TMPDIR set to a path that is gone) said
// "creating a temporary state dir: stat /gone: no such file or
// directory", with nothing to do about it. It names the dir and the
// variable that sets it.
func TestADemoWithNoTemporaryDirSaysWhichVariableToSet(t *testing.T) {
	gone := filepath.Join(t.TempDir(), "gone")
	name := "TMPDIR"
	if runtime.GOOS == "windows" {
		name = "TMP"
	}
	t.Setenv(name, gone)
	ios, _, _, _ := iostreams.Test()
	err := demoRun(t.Context(), &Options{IO: ios, Now: time.Now})
	if err == nil {
		t.Fatal("the demo ran with no temporary dir")
	}
	for _, s := range []string{gone, "set " + name + " to a writable directory"} {
		if !strings.Contains(err.Error(), s) {
			t.Errorf("%q does not say %q", err, s)
		}
	}
}
