//go:build !unix

package backend

import "os"

// checkPrivate checks nothing where files have no Unix owner and mode.
func checkPrivate(string, os.FileInfo) error { return nil }

// checkOwnDir checks nothing where files have no Unix owner and mode.
func checkOwnDir(string) error { return nil }

// dirWritable tells whether files can be made in dir by making one and
// removing it.
func dirWritable(dir string) error {
	f, err := os.CreateTemp(dir, ".probe-*")
	if err != nil {
		return err
	}
	name := f.Name()
	_ = f.Close()
	_ = os.Remove(name)
	return nil
}
