//go:build !unix

package backend

// checkPrivate checks nothing where files have no Unix owner and mode.
func checkPrivate(string) error { return nil }

// checkOwnDir checks nothing where files have no Unix owner and mode.
func checkOwnDir(string) error { return nil }

// dirWritable tells whether files can be made in dir by making one.
func dirWritable(dir string) error { return probeWritable(dir) }
