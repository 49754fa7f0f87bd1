//go:build unix

package commands_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestALinkToNothingPlantedAtTheStateFileIsNamed: a link to nothing
// planted at the state file of a state dir its group may write passed for
// no state file at all (Stat followed it): read commands noted that
// nothing had run there and showed an empty answer, and lookups exited 3,
// never naming the link. They say what is there and to remove it, and
// make nothing through it.
func TestALinkToNothingPlantedAtTheStateFileIsNamed(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "state")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, 0o770); err != nil {
		t.Fatal(err)
	}
	victim := filepath.Join(t.TempDir(), "precious")
	link := filepath.Join(dir, "socks.db")
	if err := os.Symlink(victim, link); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{{"subs", "list"}, {"dlq", "show", "q-1"}, {"chatter", "issue", "--geek", "zed"}} {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			r := run(t, dir, "", args...)
			if r.code != 1 || r.stdout != "" || !strings.Contains(r.stderr, link+" is a symbolic link to "+victim) || !strings.Contains(r.stderr, "remove it") {
				t.Errorf("exit %d, stdout %q, stderr %q; want 1 and an error naming the link, saying to remove it", r.code, r.stdout, r.stderr)
			}
			if _, err := os.Lstat(victim); !os.IsNotExist(err) {
				t.Errorf("the file the link points at was made (%v)", err)
			}
		})
	}
}

// TestAStateDirReachedThroughALinkIsUsedAsIs: only what is planted in the
// state dir is refused (package planted looks at the last part of each
// path); a state dir given as a link (--state-dir ~/link-to-dir), or
// below one (a $HOME that is a link, macOS's /tmp), is used as it is: the
// state file, its lock, wake and key files are made and used there.
func TestAStateDirReachedThroughALinkIsUsedAsIs(t *testing.T) {
	base := t.TempDir()
	real := filepath.Join(base, "real")
	if err := os.MkdirAll(filepath.Join(real, "state"), 0o700); err != nil {
		t.Fatal(err)
	}
	home := filepath.Join(base, "home")
	if err := os.Symlink("real", home); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ name, dir, made string }{
		{"a link to the state dir", home, real},
		{"a state dir below a link", filepath.Join(home, "state"), filepath.Join(real, "state")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, args := range [][]string{
				{"chatter", "issue", "--geek", "zed"},
				{"publish", "--topic", "updates", "--body", `{"n":1}`},
				{"chatter", "list", "--geek", "zed"},
				{"subs", "list"},
			} {
				if r := run(t, tc.dir, "", args...); r.code != 0 {
					t.Fatalf("socks %s with the state dir %s: exit %d, stderr %q", strings.Join(args, " "), tc.dir, r.code, r.stderr)
				}
			}
			if fi, err := os.Lstat(filepath.Join(tc.made, "socks.db")); err != nil || !fi.Mode().IsRegular() {
				t.Errorf("the state file in %s: %v, %v; want a regular file made there", tc.made, fi, err)
			}
		})
	}
}
