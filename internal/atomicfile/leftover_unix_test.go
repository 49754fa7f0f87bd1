//go:build unix

package atomicfile_test

import (
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/socks-dev/socks/internal/atomicfile"
)

// A symbolic link that has the name of an old leftover is not one (the
// write's own temporary files are regular files): it is kept, and so is
// what it points at.
func TestALinkWithALeftoversNameIsKept(t *testing.T) {
	for _, write := range writes {
		t.Run(write.name, func(t *testing.T) {
			dir := t.TempDir()
			old := time.Now().Add(-atomicfile.LeftoverAge - time.Minute)
			victim, link := filepath.Join(dir, "victim"), filepath.Join(dir, ".a-6.tmp")
			if err := os.WriteFile(victim, []byte("mine"), 0o600); err != nil {
				t.Fatal(err)
			}
			if err := os.Chtimes(victim, old, old); err != nil {
				t.Fatal(err)
			}
			if err := os.Symlink("victim", link); err != nil {
				t.Fatal(err)
			}
			tv := []unix.Timeval{unix.NsecToTimeval(old.UnixNano()), unix.NsecToTimeval(old.UnixNano())}
			if err := unix.Lutimes(link, tv); err != nil {
				t.Fatal(err)
			}
			if err := write.do(filepath.Join(dir, "a")); err != nil {
				t.Fatalf("%s: %v", write.name, err)
			}
			if got, want := entries(t, dir), []string{".a-6.tmp", "a", "victim"}; !slices.Equal(got, want) {
				t.Errorf("the directory holds %q; want %q", got, want)
			}
			assertFile(t, victim, "mine", 0o600)
		})
	}
}
