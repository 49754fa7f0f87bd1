// Package atomicfile writes a file whole or not at all. The data goes to
// a temporary file beside it (".NAME-*.tmp"), synced, which is then put in
// place in one step, and the directory is synced after so that the step
// survives a crash. A reader never sees part of the data; a write that
// fails leaves the file as it was and no temporary file behind.
//
// A crash (kill -9, power lost) between making the temporary file and
// putting it in place leaves the file as it was and the temporary file
// beside it. The next write of the same file removes such leftovers once
// they are older than LeftoverAge (a younger one may be another writer's
// at work), and only its own file's.
//
// Create makes a new file and never replaces one (a hard link, which
// fails when the name is taken): of writers creating it at once, one
// wins. Replace puts the new file over the old one (a rename). Neither
// follows a symbolic link at the file's name, nor opens what is there.
package atomicfile

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// LeftoverAge is how old a temporary file of a write must be before a
// later write of the same file takes it for the leftover of a crash and
// removes it. A write at work keeps its temporary file for moments, not
// an hour.
const LeftoverAge = time.Hour

// Step is a step of a write, for Writer.Before.
type Step string

// The steps of a write, in order. The temporary file is made (Temp),
// filled (Write, Chmod, Sync) and put in place (Link or Rename), then the
// directory is synced (SyncDir). Where hard links are refused, Create
// makes the file in place instead (InPlace) and fills it as the
// temporary file was.
const (
	Temp    Step = "temp"
	Write   Step = "write"
	Chmod   Step = "chmod"
	Sync    Step = "sync"
	Link    Step = "link"
	InPlace Step = "in place"
	Rename  Step = "rename"
	SyncDir Step = "sync dir"
)

// Writer writes files. Its zero value is ready to use; a package keeps
// one of its own so that its tests can set Before.
type Writer struct {
	// Before, when set, runs before each step with the file the step acts
	// on (the directory, for Temp and SyncDir); an error it returns is
	// taken as the step's own. Tests use it to make a step fail as a full
	// disk or a file system without hard links would, or to see when it
	// runs.
	Before func(step Step, name string) error
}

// Replace is Writer.Replace of the zero Writer.
func Replace(path string, data []byte, perm fs.FileMode, check func() error) error {
	return Writer{}.Replace(path, data, perm, check)
}

// Create makes path a file holding data, with permission bits perm,
// unless something is at path already (a file, a link, a FIFO): then the
// error is fs.ErrExist (errors.Is) and path is left alone. Of writers
// creating path at once, exactly one succeeds.
//
// Where the file system refuses hard links (FAT or exFAT on a USB stick,
// some FUSE mounts, a Windows share), path is created in place with
// O_EXCL instead, and removed again if filling it fails. One writer still
// wins, but a reader may find the file empty or partly written until it
// is filled, and a crash then may leave it so.
func (w Writer) Create(path string, data []byte, perm fs.FileMode) error {
	return w.write(path, data, perm, func(tmp string) error {
		err := w.step(Link, path, func() error { return os.Link(tmp, path) })
		if err == nil || errors.Is(err, fs.ErrExist) {
			return err
		}
		return w.createInPlace(path, data, perm)
	})
}

// Replace makes path a file holding data, with permission bits perm,
// whether or not a file is at path already; a symbolic link at path is
// replaced, not followed. check, when not nil, runs just before the
// rename: its error stops the write and is returned as it is.
func (w Writer) Replace(path string, data []byte, perm fs.FileMode, check func() error) error {
	return w.write(path, data, perm, func(tmp string) error {
		if check != nil {
			if err := check(); err != nil {
				return err
			}
		}
		return w.step(Rename, path, func() error { return os.Rename(tmp, path) })
	})
}

// write removes the old leftovers of earlier writes of path, fills a
// temporary file in path's directory with data, has commit put it in
// place, then syncs the directory. The temporary file is gone afterwards,
// whatever happened.
func (w Writer) write(path string, data []byte, perm fs.FileMode, commit func(tmp string) error) error {
	dir := filepath.Dir(path)
	prefix, suffix := "."+filepath.Base(path)+"-", ".tmp"
	removeLeftovers(dir, prefix, suffix)
	var f *os.File
	err := w.step(Temp, dir, func() (err error) {
		f, err = os.CreateTemp(dir, prefix+"*"+suffix)
		return err
	})
	if err != nil {
		return err
	}
	defer os.Remove(f.Name()) // gone after a rename; still there after a link or a failure
	if err := w.fill(f, data, perm); err != nil {
		return err
	}
	if err := commit(f.Name()); err != nil {
		return err
	}
	// The file is in place already: a directory that cannot be synced
	// (Windows cannot open one to sync it) is no reason to call the write
	// failed.
	_ = w.step(SyncDir, dir, func() error {
		d, err := os.Open(dir)
		if err != nil {
			return err
		}
		defer d.Close()
		return d.Sync()
	})
	return nil
}

// removeLeftovers removes from dir the temporary files of earlier writes
// of the same file that a crash left behind: regular files named prefix,
// the decimal digits os.CreateTemp puts for its "*", then suffix, older
// than LeftoverAge. Digits alone between the two keep another file's
// apart: the leftovers of file "a-b" (".a-b-123.tmp") are not file a's
// (".a-" then "b-123", not digits). It does its best; what it cannot
// read or remove stays, and is no reason to fail the write.
func removeLeftovers(dir, prefix, suffix string) {
	es, err := os.ReadDir(dir)
	if err != nil {
		return
	}
	for _, e := range es {
		name := e.Name()
		if !strings.HasPrefix(name, prefix) || !strings.HasSuffix(name, suffix) ||
			len(name) < len(prefix)+len(suffix) || !allDigits(name[len(prefix):len(name)-len(suffix)]) {
			continue
		}
		p := filepath.Join(dir, name)
		fi, err := os.Lstat(p)
		if err != nil || !fi.Mode().IsRegular() || time.Since(fi.ModTime()) < LeftoverAge {
			continue
		}
		_ = os.Remove(p)
	}
}

// allDigits reports whether s is one or more decimal digits.
func allDigits(s string) bool {
	return s != "" && !strings.ContainsFunc(s, func(r rune) bool { return r < '0' || r > '9' })
}

// createPerm is the mode the files are created with (as os.CreateTemp
// makes them).
const createPerm fs.FileMode = 0o600

// createInPlace makes path a file holding data with O_EXCL, for a file
// system without hard links, and removes it if filling it fails (not to
// be taken later for a damaged file).
func (w Writer) createInPlace(path string, data []byte, perm fs.FileMode) error {
	var f *os.File
	err := w.step(InPlace, path, func() (err error) {
		f, err = os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, createPerm)
		return err
	})
	if err != nil {
		return err
	}
	if err := w.fill(f, data, perm); err != nil {
		_ = os.Remove(path)
		return err
	}
	return nil
}

// fill writes data to the new file f, gives it perm, syncs and closes it.
// A file made 0600 is chmodded only when perm is something else: a file
// system that keeps no permissions (FAT, exFAT) refuses most chmods, and
// would refuse the write of a private file (the key pair) for nothing.
func (w Writer) fill(f *os.File, data []byte, perm fs.FileMode) error {
	name := f.Name()
	err := w.step(Write, name, func() error { _, err := f.Write(data); return err })
	if err == nil && perm != createPerm {
		err = w.step(Chmod, name, func() error { return f.Chmod(perm) })
	}
	if err == nil {
		err = w.step(Sync, name, f.Sync)
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// step runs do, after w.Before.
func (w Writer) step(s Step, name string, do func() error) error {
	if w.Before != nil {
		if err := w.Before(s, name); err != nil {
			return err
		}
	}
	return do()
}
