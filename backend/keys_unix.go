//go:build unix

package backend

import (
	"fmt"
	"os"
	"syscall"
)

// checkPrivate refuses a key file (followed through links) that another
// user owns or that others may read or write: its pair would be known to
// them, who could then sign calls to the gateway.
func checkPrivate(path string) error {
	fi, err := os.Stat(path)
	if err != nil {
		return fmt.Errorf("reading the gateway's key pair: %w", err)
	}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok && int(st.Uid) != os.Geteuid() {
		return fmt.Errorf("%s belongs to another user, who knows the key pair in it: remove it and socks writes a new one, or give --keys-file a file of your own", path)
	}
	if fi.Mode().Perm()&0o077 != 0 {
		return fmt.Errorf("%s may be read or changed by other users (mode %04o), who could then sign calls to the gateway: chmod 600 %s", path, fi.Mode().Perm(), path)
	}
	return nil
}
