//go:build !unix

package local

import (
	"io/fs"
	"os"
)

// writable tells whether the file at path may be written (nil), or why
// not, from its read-only attribute, opening nothing.
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
