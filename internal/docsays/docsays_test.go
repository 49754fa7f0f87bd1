package docsays

import (
	"fmt"
	"strings"
	"testing"
)

// recorder is a testing.TB that keeps what Says reports.
type recorder struct {
	testing.TB
	errs []string
}

func (r *recorder) Helper() {}
func (r *recorder) Errorf(format string, args ...any) {
	r.errs = append(r.errs, fmt.Sprintf(format, args...))
}

func TestSaysFindsWordsAcrossLineBreaksAndNamesThoseMissing(t *testing.T) {
	r := &recorder{TB: t}
	// protocol.md's first paragraph, whose line breaks after "The same".
	Says(r, "protocol.md", "# Wire formats and limits", "The same formats hold on AWS and on the local gateway", "a sentence no page holds")
	if len(r.errs) != 1 || !strings.Contains(r.errs[0], `no longer says "a sentence no page holds"`) {
		t.Errorf("reported %q; want only the missing sentence", r.errs)
	}
}
