//go:build !unix

package writable

import (
	"io/fs"
	"os"
)

// Check tells whether the file at path may be written (nil), or why not,
// from its read-only attribute, opening nothing.
func Check(path string) error {
	fi, err := os.Stat(path)
	if err != nil {
		return err
	}
	if fi.Mode().Perm()&0o200 == 0 {
		return fs.ErrPermission
	}
	return nil
}

// Fix is the command that clears the read-only attribute of the file at
// path.
func Fix(path string) string { return `attrib -r "` + path + `"` }
