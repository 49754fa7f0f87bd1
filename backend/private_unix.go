//go:build unix

package backend

import (
	"fmt"
	"os"
	"path/filepath"
	"syscall"

	"github.com/socks-dev/socks/config"
)

// checkPrivate refuses a key file at path (fi, the file read, followed
// through links) that another user owns or that others may read or
// write: its pair would be known to them, who could then sign calls to
// the gateway.
func checkPrivate(path string, fi os.FileInfo) error {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok && int(st.Uid) != os.Geteuid() {
		return fmt.Errorf("%s belongs to another user, who knows the key pair in it: remove it and socks writes a new one, or give --keys-file a file of your own", path)
	}
	if fi.Mode().Perm()&0o077 != 0 {
		return fmt.Errorf("%s may be read or changed by other users (mode %04o), who could then sign calls to the gateway: chmod 600 %s", path, fi.Mode().Perm(), path)
	}
	return nil
}

// checkOwnDir refuses a state dir (followed through links) that everyone
// may write to or that another user (other than root) owns: they could
// plant links where socks writes (the wake file, written at every
// publish) and so have it overwrite the user's files, or replace the
// state with their own. A group-writable directory is left alone (a
// user's private group is the usual one): what a member of its group
// plants there (a link, a FIFO) is refused file by file as it is opened
// (package planted).
func checkOwnDir(dir string) error {
	fi, err := os.Stat(dir)
	if err != nil {
		return fmt.Errorf("state dir %s: %w", dir, unwrapPath(err))
	}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok && int(st.Uid) != os.Geteuid() && st.Uid != 0 {
		return fmt.Errorf("state dir %s belongs to another user, who could change what socks reads and writes there: set --state-dir or %s to a directory of your own", dir, config.EnvStateDir)
	}
	if fi.Mode().Perm()&0o002 != 0 && fi.Mode()&os.ModeSticky != 0 {
		// Shared on purpose (/tmp): chmod o-w would break every other
		// program that uses it.
		return fmt.Errorf("state dir %s is shared by every user (mode %04o, as /tmp is), who could plant links where socks writes: make a directory of your own in it (mkdir -m 700 %s) and set --state-dir or %s to that", dir, fi.Mode().Perm()|0o1000, filepath.Join(dir, "socks"), config.EnvStateDir)
	}
	if fi.Mode().Perm()&0o002 != 0 {
		return fmt.Errorf("state dir %s may be written by every user (mode %04o), who could plant links where socks writes: chmod o-w %s, or set --state-dir or %s to a directory of your own", dir, fi.Mode().Perm(), dir, config.EnvStateDir)
	}
	return nil
}

// dirWritable tells whether this user may make files in dir: write and
// search permission, on a file system mounted read-write. It asks the
// kernel (access(2)) rather than making a file and removing it, which
// changed the directory at every command, so that the directory sync
// SQLite makes at a process's first commit had a change to write out.
func dirWritable(dir string) error {
	const wantWriteSearch = 0x2 | 0x1 // W_OK | X_OK
	if err := syscall.Access(dir, wantWriteSearch); err != nil {
		return &os.PathError{Op: "access", Path: dir, Err: err}
	}
	return nil
}
