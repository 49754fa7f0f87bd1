// Package docsays checks, for tests, that a page of docs/ still says what
// the code runs with: the numbers and words a test builds from the
// constants and defaults.
package docsays

import (
	"os"
	"strings"
	"testing"

	"github.com/socks-dev/socks/internal/srcroot"
)

// Says fails t for each of says that docs/page does not say. Each is
// looked for in the page's text with every run of spaces and line breaks
// made one space, so that the page's lines may break anywhere.
func Says(t testing.TB, page string, says ...string) {
	t.Helper()
	path, err := srcroot.Join("docs", page)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	flat := strings.Join(strings.Fields(string(raw)), " ")
	for _, s := range says {
		if !strings.Contains(flat, s) {
			t.Errorf("docs/%s no longer says %q: fix the doc or this test", page, s)
		}
	}
}
