//go:build unix

package deploy

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/socks-dev/socks/commands/cmdutil"
	"github.com/socks-dev/socks/iostreams"
)

// `--lambda-zip /dev/zero` (or a file far too big to be a function's
// package) was read whole into memory until it ran out, and a FIFO there
// held deploy in open(); a directory said only "read DIR: is a
// directory". Each is a usage error naming --lambda-zip and what is
// wrong, before anything is read or deployed.
func TestALambdaZipThatIsNoPackageIsRefusedUnread(t *testing.T) {
	dir := t.TempDir()
	fifo := filepath.Join(dir, "fifo.zip")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	big := filepath.Join(dir, "big.zip")
	f, err := os.Create(big)
	if err != nil {
		t.Fatal(err)
	}
	// Sparse: no disk is used.
	if err := f.Truncate(50<<20 + 1); err != nil {
		t.Fatal(err)
	}
	f.Close()
	for _, c := range []struct{ path, want string }{
		{"/dev/zero", "--lambda-zip /dev/zero is a device, not a file"},
		{fifo, "--lambda-zip " + fifo + " is a FIFO (named pipe), not a file"},
		{dir, "--lambda-zip " + dir + " is a directory, not a file"},
		{big, "--lambda-zip " + big + " is 51 MB, over the 50 MB Lambda takes"},
	} {
		ios, _, _, _ := iostreams.Test()
		opts := &Options{
			IO: ios, Arch: "arm64", Stage: "prod", FunctionTimeout: 30 * time.Second, ThrottleBurst: 500, ThrottleRate: 1000,
			MaxConcurrency: 10, DryRun: true, Wait: time.Minute, LambdaZip: c.path, MaxTopics: 20, MaxConnectionsPerGeek: 100,
			Target: func(context.Context) (*Target, error) {
				return &Target{Stack: "s", Region: "eu-west-1"}, nil
			},
		}
		err := deployRun(t.Context(), opts)
		var fe *cmdutil.FlagError
		if !errors.As(err, &fe) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("deploy --lambda-zip %s = %v; want a usage error saying %q", c.path, err, c.want)
		}
	}
}
