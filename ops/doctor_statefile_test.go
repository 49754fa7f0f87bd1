package ops_test

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/socks-dev/socks/local"
	"github.com/socks-dev/socks/ops"
)

// A state file whose quick_check did not finish within the check's time
// (a very large file) is a warning that says so and how to run the full
// check by hand, not a failure and not a doctor that hangs.
func TestAStateFileCheckThatRunsOutOfTimeIsAWarningWithTheCommandToRunIt(t *testing.T) {
	path := filepath.Join(t.TempDir(), "socks.db")
	db, err := local.Open(context.Background(), path, local.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	env := &ops.Env{StateFile: path, Store: db.Store(), StateFileUnchecked: true}
	r := ops.CheckStateFile(context.Background(), env)
	if r.Status != ops.StatusWarn || !strings.Contains(r.Detail, "not checked within 10s") || !strings.Contains(r.Fix, "sqlite3 "+path+" 'PRAGMA quick_check'") {
		t.Fatalf("result %+v; want a warning that the check did not finish and how to run it", r)
	}
}
