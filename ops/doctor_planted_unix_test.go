//go:build unix

package ops_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/socks-dev/socks/backend"
	"github.com/socks-dev/socks/config"
	"github.com/socks-dev/socks/ops"
)

// TestGatherEnvNamesALinkToNothingAtTheStateFile: a link to nothing
// planted at the state file (Stat followed it) passed for no state file:
// the doctor said "no state file" and to start `socks serve`, which then
// failed on the link. The open is tried, and its error names the link.
func TestGatherEnvNamesALinkToNothingAtTheStateFile(t *testing.T) {
	dir := t.TempDir()
	cfg := config.Config{Backend: config.BackendLocal, StateDir: dir}
	victim := filepath.Join(t.TempDir(), "precious")
	link := filepath.Join(dir, config.StateFile)
	if err := os.Symlink(victim, link); err != nil {
		t.Fatal(err)
	}
	open := func(ctx context.Context) (*backend.Backend, error) {
		return backend.Open(ctx, cfg, backend.Options{})
	}
	env := ops.GatherEnv(ctxT(t), cfg, open, nil, now)
	if env.StateFileMissing || env.OpenErr == nil || !strings.Contains(env.OpenErr.Error(), link+" is a symbolic link") {
		t.Errorf("missing %v, open error %v; want the open's error naming the link", env.StateFileMissing, env.OpenErr)
	}
	if _, err := os.Lstat(victim); !os.IsNotExist(err) {
		t.Errorf("the file the link points at was made (%v)", err)
	}
}
