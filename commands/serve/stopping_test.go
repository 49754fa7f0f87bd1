package serve

import (
	"strings"
	"testing"
)

// TestWhatAForcedStopLeavesIsSaidForEachKindOfServe: a serve on the AWS
// store has no next serve that deletes the records its clients left, and
// one without a broker has no message in hand.
func TestWhatAForcedStopLeavesIsSaidForEachKindOfServe(t *testing.T) {
	for _, tc := range []struct {
		name            string
		noBroker, local bool
		want, notWant   []string
	}{
		{"local, with its broker", false, true,
			[]string{"finishing the messages in hand", "the next socks serve on this state dir deletes their records", "delivered again by the next broker"},
			[]string{"prune-stale"}},
		{"local, --no-broker", true, true,
			[]string{"closing the connections, for at most 5s", "the next socks serve on this state dir deletes their records"},
			[]string{"in hand"}},
		{"AWS store, with its broker", false, false,
			[]string{"their records stay in the connections table until `socks prune-stale`", "comes back on the queue after the visibility timeout"},
			[]string{"next socks serve", "next broker"}},
		{"AWS store, --no-broker", true, false,
			[]string{"their records stay in the connections table until `socks prune-stale`"},
			[]string{"in hand", "next socks serve"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := stoppingWork(tc.noBroker, tc.local)
			said := w.What + " / " + w.Left
			for _, s := range tc.want {
				if !strings.Contains(said, s) {
					t.Errorf("%q does not say %q", said, s)
				}
			}
			for _, s := range tc.notWant {
				if strings.Contains(said, s) {
					t.Errorf("%q says %q", said, s)
				}
			}
		})
	}
}
