package publish

import (
	"strings"
	"testing"

	"github.com/socks-dev/socks/iostreams"
)

// TestAPublishWaitingForTheStateFilesLockSaysSoOnceOnATerminal: a
// publish whose write found the state file locked by another process
// (local.DB.NotifyLockWait, after SQLite's first 10 s wait) was silent
// for about a minute before it failed; on a terminal it says once what
// it waits for, as prune-stale does for another prune's lease, in a note
// on stderr. Piped, it says nothing; stdout (where --json writes) never
// gets a word.
func TestAPublishWaitingForTheStateFilesLockSaysSoOnceOnATerminal(t *testing.T) {
	for _, tc := range []struct {
		name string
		tty  bool
		says []string
	}{
		{"on a terminal", true, []string{"note: ", "another process holds the state file /s/socks.db", "waiting for it", "about a minute"}},
		{"piped", false, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ios, _, out, errOut := iostreams.Test()
			ios.SetTTY(false, false, tc.tty)
			if wait := lockWaitNote(ios, "/s/socks.db"); wait != nil {
				wait()
				wait()
			}
			if out.Len() != 0 {
				t.Errorf("stdout %q; want nothing", out)
			}
			if len(tc.says) == 0 {
				if errOut.Len() != 0 {
					t.Errorf("stderr %q; want nothing", errOut)
				}
				return
			}
			if n := strings.Count(errOut.String(), "\n"); n != 1 {
				t.Errorf("stderr %q: %d lines; want one, said once", errOut, n)
			}
			for _, s := range tc.says {
				if !strings.Contains(errOut.String(), s) {
					t.Errorf("stderr %q does not say %q", errOut, s)
				}
			}
		})
	}
}
