//go:build !unix

package config

import (
	"io/fs"
	"os"
)

// writable tells whether the file at path may be written (nil), or why
// not, from its read-only attribute, as local does for the state file.
func writable(path string) error {
	fi, err := os.Stat(path)
	if err != nil {
		return err
	}
	if fi.Mode().Perm()&0o200 == 0 {
		return fs.ErrPermission
	}
	return nil
}

// makeWritable is the command that clears the read-only attribute of the
// file at path.
func makeWritable(path string) string { return `attrib -r "` + path + `"` }
