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
