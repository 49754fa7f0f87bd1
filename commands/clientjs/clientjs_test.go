package clientjs

import (
	"bytes"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/socks-dev/socks/iostreams"
	"github.com/socks-dev/socks/web"
)

func TestClientJSWritesBothFiles(t *testing.T) {
	ios, _, stdout, _ := iostreams.Test()
	dir := filepath.Join(t.TempDir(), "vendor", "socks")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	// An older copy is replaced, and made readable by the web server.
	if err := os.WriteFile(filepath.Join(dir, "socks.js"), []byte("old"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := Run(t.Context(), &Options{IO: ios, Out: dir}); err != nil {
		t.Fatal(err)
	}
	var want []string
	for _, name := range web.ClientFiles {
		p := filepath.Join(dir, name)
		want = append(want, p)
		got, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		embedded, _ := web.ClientFile(name)
		if !bytes.Equal(got, embedded) {
			t.Errorf("%s differs from the embedded copy", p)
		}
		if fi, err := os.Stat(p); runtime.GOOS != "windows" && (err != nil || fi.Mode().Perm() != 0o644) {
			t.Errorf("%s: %v, %v; want mode 0644", p, fi, err)
		}
	}
	if got := strings.TrimSpace(stdout.String()); got != strings.Join(want, "\n") {
		t.Errorf("stdout %q; want the paths %q", got, want)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 2 {
		t.Errorf("the directory holds %d entries; want only the two files (no temporary leftovers)", len(entries))
	}
}

func TestClientJSCreatesTheDirectory(t *testing.T) {
	ios, _, _, _ := iostreams.Test()
	dir := filepath.Join(t.TempDir(), "new")
	if err := Run(t.Context(), &Options{IO: ios, Out: dir}); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "socks.d.ts")); err != nil {
		t.Error(err)
	}
}
