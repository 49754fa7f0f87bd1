package writable_test

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/socks-dev/socks/internal/unpriv"
	"github.com/socks-dev/socks/internal/writable"
)

func TestCheckTellsAWritableFileFromAMissingOne(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "f")
	if err := os.WriteFile(file, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := writable.Check(file); err != nil {
		t.Errorf("Check(a file this user made 0600) = %v; want nil", err)
	}
	if err := writable.Check(filepath.Join(dir, "missing")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Check(a missing file) = %v; want fs.ErrNotExist", err)
	}
}

func TestCheckRefusesAReadOnlyFile(t *testing.T) {
	if !unpriv.Enter(t) { // root may write a file whatever its mode
		return
	}
	file := filepath.Join(t.TempDir(), "f")
	if err := os.WriteFile(file, []byte("x"), 0o400); err != nil {
		t.Fatal(err)
	}
	if err := writable.Check(file); !errors.Is(err, fs.ErrPermission) {
		t.Errorf("Check(a 0400 file) = %v; want fs.ErrPermission", err)
	}
}

func TestFixNamesTheFile(t *testing.T) {
	if got := writable.Fix("/tmp/a b"); !strings.Contains(got, "a b") {
		t.Errorf("Fix = %q; want a command naming the file", got)
	}
}
