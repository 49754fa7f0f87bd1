//go:build !(unix && !aix) && !windows

package filelock

import (
	"errors"
	"os"
)

func lock(*os.File, bool) error { return errors.ErrUnsupported }

func unlock(*os.File) error { return errors.ErrUnsupported }

// dirLocks: directories cannot be locked here.
const dirLocks = false
