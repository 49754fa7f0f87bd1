// Package srcroot finds the socks source checkout a process runs in: the
// folder whose go.mod is this module's. Tests find testdata and docs from
// it, not from runtime.Caller, whose file names a -trimpath build (as
// scripts/test runs, so that a clone in another folder reuses the build
// cache) gives as module paths; `socks deploy` builds the function from it.
package srcroot

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
)

// Find returns the socks source checkout at dir or above it (the working
// directory when dir is ""), or "" when there is none.
func Find(dir string) string {
	if dir == "" {
		wd, err := os.Getwd()
		if err != nil {
			return ""
		}
		dir = wd
	}
	for {
		mod, err := os.ReadFile(filepath.Join(dir, "go.mod"))
		if err == nil && strings.HasPrefix(string(mod), "module github.com/socks-dev/socks\n") {
			if _, err := os.Stat(filepath.Join(dir, "cmd", "socks")); err == nil {
				return dir
			}
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return ""
		}
		dir = parent
	}
}

// Join is the path elem of the checkout above the working directory (a
// package's folder under go test).
func Join(elem ...string) (string, error) {
	root := Find("")
	if root == "" {
		return "", errors.New("no socks source checkout (the go.mod of github.com/socks-dev/socks) at or above the working directory")
	}
	return filepath.Join(append([]string{root}, elem...)...), nil
}
