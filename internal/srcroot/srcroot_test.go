package srcroot

import (
	"os"
	"path/filepath"
	"testing"
)

// TestFindTellsTheCheckoutFromAnyFolderInsideIt finds this checkout from
// its own folders, and none from a folder outside it or from a module of
// another name.
func TestFindTellsTheCheckoutFromAnyFolderInsideIt(t *testing.T) {
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	for _, dir := range []string{root, filepath.Join(root, "internal", "srcroot"), filepath.Join(root, "cmd", "socks")} {
		if got := Find(dir); got != root {
			t.Errorf("Find(%q) = %q; want %q", dir, got, root)
		}
	}
	if got := Find(""); got != root {
		t.Errorf("Find(\"\") from the package folder = %q; want %q", got, root)
	}
	if got := Find(t.TempDir()); got != "" {
		t.Errorf("Find(a temporary folder) = %q; want none", got)
	}
	other := t.TempDir()
	if err := os.WriteFile(filepath.Join(other, "go.mod"), []byte("module example.com/other\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(other, "cmd", "socks"), 0o755); err != nil {
		t.Fatal(err)
	}
	if got := Find(filepath.Join(other, "cmd", "socks")); got != "" {
		t.Errorf("Find(in another module) = %q; want none", got)
	}
	p, err := Join("docs", "json.md")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(p); err != nil {
		t.Errorf("Join(docs, json.md) = %q: %v", p, err)
	}
}
