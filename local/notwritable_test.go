package local

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

func TestNotWritableKeepsTheProblemAndTheFixApart(t *testing.T) {
	// The doctor prints the fix in a column of its own: it takes the
	// problem from the error, not by cutting its text where a fix seems
	// to begin.
	file := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	_, openErr := Open(t.Context(), filepath.Join(file, "state", "socks.db"), Options{})
	for _, tc := range []struct {
		name        string
		err         error
		problem     string
		fixSays     []string
		problemNots []string
	}{
		{"a state dir that Open cannot create", openErr, "state dir " + filepath.Join(file, "state") + " is not writable: ",
			[]string{"make it writable", "--state-dir", "SOCKS_STATE_DIR"}, []string{"--state-dir", ";"}},
		{"a state dir made by DirNotWritable", DirNotWritable("/srv/socks (old); copy", &os.PathError{Op: "open", Path: "x", Err: syscall.EACCES}),
			"state dir /srv/socks (old); copy is not writable: permission denied", []string{"make it writable", "SOCKS_STATE_DIR"}, []string{"make it writable"}},
		{"a state file", fileNotWritable("/srv/socks.db"), "state file /srv/socks.db is not writable: permission denied",
			[]string{"chmod u+w /srv/socks.db", "--state-dir"}, []string{"chmod", "make it writable"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var nw *NotWritableError
			if !errors.As(tc.err, &nw) || !errors.Is(tc.err, ErrNotWritable) {
				t.Fatalf("error %v (%T); want a *NotWritableError that is ErrNotWritable", tc.err, tc.err)
			}
			if !strings.HasPrefix(nw.Problem(), tc.problem) {
				t.Errorf("problem %q; want it to begin %q", nw.Problem(), tc.problem)
			}
			for _, w := range tc.problemNots {
				if strings.Contains(strings.TrimPrefix(nw.Problem(), tc.problem), w) {
					t.Errorf("problem %q says %q, which is the fix's", nw.Problem(), w)
				}
			}
			for _, w := range tc.fixSays {
				if !strings.Contains(nw.Fix, w) {
					t.Errorf("fix %q does not say %q", nw.Fix, w)
				}
			}
			if want := nw.Problem() + "; " + nw.Fix; tc.err.Error() != want {
				t.Errorf("error %q; want the problem and the fix in one line, %q", tc.err, want)
			}
		})
	}
}
