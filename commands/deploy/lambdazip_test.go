package deploy

import (
	"archive/zip"
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/socks-dev/socks/commands/cmdutil"
	"github.com/socks-dev/socks/iostreams"
)

// zipOf writes a zip of the given files (name: mode) to a temporary file;
// a mode with fs.ModeDir is a directory.
func zipOf(t *testing.T, files map[string]os.FileMode) string {
	t.Helper()
	var buf bytes.Buffer
	w := zip.NewWriter(&buf)
	for name, mode := range files {
		h := &zip.FileHeader{Name: name, Method: zip.Deflate}
		h.SetMode(mode)
		f, err := w.CreateHeader(h)
		if err != nil {
			t.Fatal(err)
		}
		if !mode.IsDir() {
			if _, err := f.Write([]byte("#!/bin/sh\n")); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return writeTemp(t, buf.Bytes())
}

func writeTemp(t *testing.T, b []byte) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "pkg.zip")
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestADeploymentPackageLambdaCannotRunIsRefusedBeforeAnyAWSCall: a
// --lambda-zip that is not a zip, has no bootstrap at its root, has one
// that is a directory or not executable, is over Lambda's 50 MB
// for an upload, or unzips to over its 250 MB, or a path that is a
// directory, is refused as a flag error saying what is wrong and what
// Lambda needs, before the target is resolved (no AWS call, nothing
// made). Before, the file was read whole (whatever its size) and
// uploaded as it was: Lambda refused the first and the too big ones
// after deploy had made the tables, the API and the role, and took the
// others, whose every invocation then failed (Runtime.InvalidEntrypoint)
// while deploy said the stack was deployed.
func TestADeploymentPackageLambdaCannotRunIsRefusedBeforeAnyAWSCall(t *testing.T) {
	overUpload := filepath.Join(t.TempDir(), "big.zip")
	f, err := os.Create(overUpload)
	if err == nil {
		// Sparse: no disk is used for it.
		err = f.Truncate(50<<20 + 1)
	}
	if err == nil {
		err = f.Close()
	}
	if err != nil {
		t.Fatal(err)
	}
	// A zip whose entry says it unzips to 251 MB, its data a few bytes
	// (Lambda counts what the entries unzip to).
	var big bytes.Buffer
	w := zip.NewWriter(&big)
	h := &zip.FileHeader{Name: "bootstrap", Method: zip.Store, UncompressedSize64: 251 << 20, CompressedSize64: 1}
	h.SetMode(0o755)
	raw, err := w.CreateRaw(h)
	if err == nil {
		_, err = raw.Write([]byte{0})
	}
	if err == nil {
		err = w.Close()
	}
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, zip string
		says      []string
	}{
		{"not a zip", writeTemp(t, []byte("#!/bin/sh\necho hello\n")), []string{"is not a zip file"}},
		{"no bootstrap at its root", zipOf(t, map[string]os.FileMode{"dist/bootstrap": 0o755, "README.md": 0o644}), []string{"has no bootstrap at its root", "dist/bootstrap"}},
		{"bootstrap not executable", zipOf(t, map[string]os.FileMode{"bootstrap": 0o644}), []string{"bootstrap is not executable", "chmod +x"}},
		{"bootstrap a directory", zipOf(t, map[string]os.FileMode{"bootstrap/": os.ModeDir | 0o755}), []string{"bootstrap is not a file"}},
		{"over 50 MB", overUpload, []string{"over the 50 MB", "Lambda takes"}},
		{"unzips to over 250 MB", writeTemp(t, big.Bytes()), []string{"unzips to 251 MB", "over the 250 MB"}},
		{"a directory", t.TempDir(), []string{"is a directory", "give the zip file"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ios, _, _, _ := iostreams.Test()
			asked := false
			opts := &Options{
				IO: ios, Arch: "arm64", Stage: "prod", FunctionTimeout: 30 * time.Second, MaxConcurrency: 10,
				ThrottleBurst: 500, ThrottleRate: 1000, Wait: time.Minute, MaxTopics: 50, MaxConnectionsPerGeek: 100, LambdaZip: tc.zip,
				Target: func(context.Context) (*Target, error) {
					asked = true
					return nil, errors.New("the target was resolved")
				},
			}
			err := deployRun(t.Context(), opts)
			var fe *cmdutil.FlagError
			if !errors.As(err, &fe) || asked {
				t.Fatalf("err = %v (target resolved: %v); want a flag error before the target is resolved", err, asked)
			}
			for _, s := range append(tc.says, "--lambda-zip", tc.zip) {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("%q does not say %q", err, s)
				}
			}
		})
	}
	t.Run("a package Lambda runs goes on", func(t *testing.T) {
		ios, _, _, _ := iostreams.Test()
		refused := errors.New("the target is refused")
		opts := &Options{
			IO: ios, Arch: "arm64", Stage: "prod", FunctionTimeout: 30 * time.Second, MaxConcurrency: 10,
			ThrottleBurst: 500, ThrottleRate: 1000, Wait: time.Minute, MaxTopics: 50, MaxConnectionsPerGeek: 100,
			LambdaZip: zipOf(t, map[string]os.FileMode{"bootstrap": 0o755, "lib/": os.ModeDir | 0o755, "lib/data": 0o644}),
			Target:    func(context.Context) (*Target, error) { return nil, refused },
		}
		if err := deployRun(t.Context(), opts); !errors.Is(err, refused) {
			t.Errorf("err = %v; want the package taken and the target asked for", err)
		}
		// A link at bootstrap, to the binary beside it: Lambda keeps it.
		opts.LambdaZip = zipOf(t, map[string]os.FileMode{"bootstrap": os.ModeSymlink | 0o777, "bin/socks": 0o755})
		if err := deployRun(t.Context(), opts); !errors.Is(err, refused) {
			t.Errorf("err = %v; want the package with a link at bootstrap taken and the target asked for", err)
		}
	})
}
