package atomicfile_test

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/socks-dev/socks/internal/atomicfile"
)

// refuseLinks is a Writer on a file system without hard links (FAT,
// exFAT, some FUSE mounts): its link fails with EPERM, as Linux's vfat
// does.
var refuseLinks = atomicfile.Writer{Before: func(step atomicfile.Step, name string) error {
	if step == atomicfile.Link {
		return &os.LinkError{Op: "link", New: name, Err: syscall.EPERM}
	}
	return nil
}}

// writers are the Writers Create is tested with.
var writers = []struct {
	name string
	w    atomicfile.Writer
}{
	{"with hard links", atomicfile.Writer{}},
	{"where hard links are refused", refuseLinks},
}

func entries(t *testing.T, dir string) []string {
	t.Helper()
	es, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range es {
		names = append(names, e.Name())
	}
	return names
}

func assertFile(t *testing.T, path, want string, perm fs.FileMode) {
	t.Helper()
	got, err := os.ReadFile(path)
	if err != nil || string(got) != want {
		t.Errorf("%s holds %q, %v; want %q", path, got, err, want)
	}
	if runtime.GOOS == "windows" {
		return
	}
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != perm {
		t.Errorf("%s: mode %v, %v; want %04o", path, fi.Mode().Perm(), err, perm)
	}
}

func TestCreateMakesTheFileWhole(t *testing.T) {
	for _, tt := range writers {
		for _, perm := range []fs.FileMode{0o600, 0o640} {
			t.Run(fmt.Sprintf("%s, mode %04o", tt.name, perm), func(t *testing.T) {
				path := filepath.Join(t.TempDir(), "key")
				if err := tt.w.Create(path, []byte("pair\n"), perm); err != nil {
					t.Fatalf("Create: %v", err)
				}
				assertFile(t, path, "pair\n", perm)
				if got := entries(t, filepath.Dir(path)); !slices.Equal(got, []string{"key"}) {
					t.Errorf("the directory holds %q; want the file alone", got)
				}
			})
		}
	}
}

// Create never replaces what is at the path, and never follows a link
// there (to make or write the file it points at).
func TestCreateNeverReplacesWhatIsThere(t *testing.T) {
	for _, tt := range writers {
		t.Run(tt.name+", a file", func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "key")
			if err := os.WriteFile(path, []byte("old"), 0o600); err != nil {
				t.Fatal(err)
			}
			if err := tt.w.Create(path, []byte("new"), 0o600); !errors.Is(err, fs.ErrExist) {
				t.Fatalf("Create over a file: %v; want fs.ErrExist", err)
			}
			assertFile(t, path, "old", 0o600)
			if got := entries(t, filepath.Dir(path)); !slices.Equal(got, []string{"key"}) {
				t.Errorf("the directory holds %q; want the file alone", got)
			}
		})
		t.Run(tt.name+", a link to nothing", func(t *testing.T) {
			if runtime.GOOS == "windows" {
				t.Skip("symbolic links need privileges")
			}
			dir := t.TempDir()
			path, victim := filepath.Join(dir, "key"), filepath.Join(dir, "victim")
			if err := os.Symlink(victim, path); err != nil {
				t.Fatal(err)
			}
			if err := tt.w.Create(path, []byte("new"), 0o600); !errors.Is(err, fs.ErrExist) {
				t.Fatalf("Create over a link: %v; want fs.ErrExist", err)
			}
			if _, err := os.Lstat(victim); !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("the link was followed: %v", err)
			}
		})
	}
}

// Writers creating one file at once: exactly one wins, the others are
// told it exists, and the file is the winner's, whole. With hard links a
// loser reads it whole at once.
func TestOneOfManyCreatesWins(t *testing.T) {
	for _, tt := range writers {
		t.Run(tt.name, func(t *testing.T) {
			for round := range 20 {
				path := filepath.Join(t.TempDir(), "key")
				const n = 8
				errs := make([]error, n)
				read := make([]string, n)
				var wg sync.WaitGroup
				start := make(chan struct{})
				for i := range n {
					wg.Go(func() {
						<-start
						errs[i] = tt.w.Create(path, data(i), 0o600)
						if errors.Is(errs[i], fs.ErrExist) {
							b, _ := os.ReadFile(path)
							read[i] = string(b)
						}
					})
				}
				close(start)
				wg.Wait()
				winner := -1
				for i, err := range errs {
					switch {
					case err == nil && winner >= 0:
						t.Fatalf("round %d: writers %d and %d both created the file", round, winner, i)
					case err == nil:
						winner = i
					case !errors.Is(err, fs.ErrExist):
						t.Fatalf("round %d: writer %d: %v", round, i, err)
					}
				}
				if winner < 0 {
					t.Fatalf("round %d: no writer created the file", round)
				}
				assertFile(t, path, string(data(winner)), 0o600)
				if got := entries(t, filepath.Dir(path)); !slices.Equal(got, []string{"key"}) {
					t.Fatalf("round %d: the directory holds %q; want the file alone", round, got)
				}
				if tt.name != "with hard links" {
					continue
				}
				for i := range n {
					if i != winner && read[i] != string(data(winner)) {
						t.Fatalf("round %d: writer %d read %q; want the winner's whole file", round, i, read[i])
					}
				}
			}
		})
	}
}

// data is writer i's file: long enough that a write could be seen half
// done.
func data(i int) []byte {
	return []byte(strings.Repeat(fmt.Sprintf("writer %d\n", i), 1000))
}

func TestReplaceReplacesTheFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "config.toml")
	if err := os.WriteFile(path, []byte("old"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := atomicfile.Replace(path, []byte("new"), 0o640, nil); err != nil {
		t.Fatalf("Replace: %v", err)
	}
	assertFile(t, path, "new", 0o640)
	if got := entries(t, dir); !slices.Equal(got, []string{"config.toml"}) {
		t.Errorf("the directory holds %q; want the file alone", got)
	}
	t.Run("a link at the path is replaced, not followed", func(t *testing.T) {
		if runtime.GOOS == "windows" {
			t.Skip("symbolic links need privileges")
		}
		link := filepath.Join(dir, "link")
		if err := os.Symlink(path, link); err != nil {
			t.Fatal(err)
		}
		if err := atomicfile.Replace(link, []byte("mine"), 0o600, nil); err != nil {
			t.Fatalf("Replace: %v", err)
		}
		assertFile(t, link, "mine", 0o600)
		assertFile(t, path, "new", 0o640)
	})
}

func TestReplaceStopsWhenTheCheckFails(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "config.toml")
	if err := os.WriteFile(path, []byte("old"), 0o600); err != nil {
		t.Fatal(err)
	}
	changed := errors.New("changed")
	if err := atomicfile.Replace(path, []byte("new"), 0o600, func() error { return changed }); err != changed {
		t.Fatalf("Replace: %v; want the check's error as it is", err)
	}
	assertFile(t, path, "old", 0o600)
	if got := entries(t, dir); !slices.Equal(got, []string{"config.toml"}) {
		t.Errorf("the directory holds %q; want the file alone", got)
	}
}

// A write that fails at any step returns that step's error and leaves
// the file as it was (or missing) and no temporary file behind.
func TestAFailedStepLeavesNoTrace(t *testing.T) {
	type write struct {
		name    string
		old     string // "": no file before
		refused bool   // hard links refused
		steps   []atomicfile.Step
		inPlace []atomicfile.Step // steps of the file made in place
	}
	tempSteps := []atomicfile.Step{atomicfile.Temp, atomicfile.Write, atomicfile.Chmod, atomicfile.Sync}
	for _, wr := range []write{
		// A link that fails (other than for a name taken) is taken for a
		// file system without them: the file is made in place.
		{name: "Create", steps: tempSteps},
		{name: "Create where hard links are refused", refused: true, steps: tempSteps,
			inPlace: []atomicfile.Step{atomicfile.InPlace, atomicfile.Write, atomicfile.Chmod, atomicfile.Sync}},
		{name: "Replace of a file", old: "old", steps: append(tempSteps, atomicfile.Rename)},
		{name: "Replace of no file", steps: append(tempSteps, atomicfile.Rename)},
	} {
		fails := func(steps []atomicfile.Step, inPlace bool) {
			for _, step := range steps {
				t.Run(fmt.Sprintf("%s, failing at %s (in place %v)", wr.name, step, inPlace), func(t *testing.T) {
					dir := t.TempDir()
					path := filepath.Join(dir, "file")
					if wr.old != "" {
						if err := os.WriteFile(path, []byte(wr.old), 0o600); err != nil {
							t.Fatal(err)
						}
					}
					injected := errors.New("injected")
					ran := false
					w := atomicfile.Writer{Before: func(s atomicfile.Step, name string) error {
						if s == atomicfile.Link && wr.refused {
							return &os.LinkError{Op: "link", New: name, Err: syscall.EPERM}
						}
						if s == step && (name == path) == (inPlace || s == atomicfile.Link || s == atomicfile.Rename) {
							ran = true
							return injected
						}
						return nil
					}}
					var err error
					if strings.HasPrefix(wr.name, "Create") {
						err = w.Create(path, []byte("new"), 0o640)
					} else {
						err = w.Replace(path, []byte("new"), 0o640, nil)
					}
					if !ran || err != injected {
						t.Fatalf("err = %v (step reached: %v); want the injected failure", err, ran)
					}
					if wr.old == "" {
						if _, err := os.Lstat(path); !errors.Is(err, fs.ErrNotExist) {
							t.Errorf("a file was left: %v", err)
						}
						if got := entries(t, dir); len(got) != 0 {
							t.Errorf("the directory holds %q; want nothing", got)
						}
						return
					}
					assertFile(t, path, wr.old, 0o600)
					if got := entries(t, dir); !slices.Equal(got, []string{"file"}) {
						t.Errorf("the directory holds %q; want the file alone", got)
					}
				})
			}
		}
		fails(wr.steps, false)
		fails(wr.inPlace, true)
	}
}

// The directory is synced once the file is in place, and a directory
// that cannot be synced (Windows cannot open one to) does not fail a
// write that is done.
func TestTheDirectoryIsSyncedOnceTheFileIsInPlace(t *testing.T) {
	for _, tt := range writers {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "key")
			var synced []string
			refuse := tt.w.Before
			w := atomicfile.Writer{Before: func(s atomicfile.Step, name string) error {
				if refuse != nil {
					if err := refuse(s, name); err != nil {
						return err
					}
				}
				if s != atomicfile.SyncDir {
					return nil
				}
				b, _ := os.ReadFile(path)
				synced = append(synced, name+": "+string(b))
				return errors.New("cannot sync a directory here")
			}}
			if err := w.Create(path, []byte("pair"), 0o600); err != nil {
				t.Fatalf("Create: %v", err)
			}
			if want := []string{filepath.Dir(path) + ": pair"}; !slices.Equal(synced, want) {
				t.Errorf("synced %q; want %q", synced, want)
			}
		})
	}
}

// writes are the two kinds of write, of "new" with mode 0600.
var writes = []struct {
	name string
	do   func(path string) error
}{
	{"Create", func(path string) error { return atomicfile.Writer{}.Create(path, []byte("new"), 0o600) }},
	{"Replace", func(path string) error { return atomicfile.Replace(path, []byte("new"), 0o600, nil) }},
}

// A crash between making the temporary file and putting it in place
// leaves the temporary file behind. The next write of the same file
// removes such leftovers once they are older than
// atomicfile.LeftoverAge, and nothing else: not another file's, not a
// writer's at work now, not a directory that has the name (nor a link:
// TestALinkWithALeftoversNameIsKept).
func TestAWriteRemovesItsFilesOldLeftovers(t *testing.T) {
	for _, write := range writes {
		t.Run(write.name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "a")
			old := time.Now().Add(-atomicfile.LeftoverAge - time.Minute)
			fresh := time.Now().Add(-atomicfile.LeftoverAge + 10*time.Minute)
			mk := func(name string, mtime time.Time) {
				t.Helper()
				p := filepath.Join(dir, name)
				if err := os.WriteFile(p, []byte("part"), 0o600); err != nil {
					t.Fatal(err)
				}
				if err := os.Chtimes(p, mtime, mtime); err != nil {
					t.Fatal(err)
				}
			}
			mk(".a-123.tmp", old)        // a crashed write of a: removed
			mk(".a-4294967295.tmp", old) // another: removed
			mk(".a-77.tmp", fresh)       // a write of a at work: kept
			mk(".a-b-123.tmp", old)      // a crashed write of a-b: kept
			mk(".a-1-123.tmp", old)      // of a-1: kept
			mk(".ab-123.tmp", old)       // of ab: kept
			mk("a-123.tmp", old)         // not a temporary file (no dot): kept
			mk(".a-.tmp", old)           // no digits: kept
			mk("123.tmp", old)           // no name: kept
			mk(".a-12x.tmp", old)        // not digits: kept
			mk(".a-123.tmp.bak", old)    // other suffix: kept
			if err := os.Mkdir(filepath.Join(dir, ".a-5.tmp"), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.Chtimes(filepath.Join(dir, ".a-5.tmp"), old, old); err != nil {
				t.Fatal(err)
			}
			want := []string{".a-.tmp", ".a-1-123.tmp", ".a-12x.tmp", ".a-123.tmp.bak", ".a-5.tmp",
				".a-77.tmp", ".a-b-123.tmp", ".ab-123.tmp", "123.tmp", "a", "a-123.tmp"}
			if err := write.do(path); err != nil {
				t.Fatalf("%s: %v", write.name, err)
			}
			assertFile(t, path, "new", 0o600)
			got := entries(t, dir)
			slices.Sort(want)
			if !slices.Equal(got, want) {
				t.Errorf("the directory holds\n%q\nwant\n%q", got, want)
			}
		})
	}
}
