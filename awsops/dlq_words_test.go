package awsops

import (
	"strings"
	"testing"
)

// TestOneTakenDeadLetterIsNotCalledThey: the errors of a redrive or purge
// that could not delete dead letters another command took said of one
// "1 dead letter was ... so they may still be", "delete them", "purge
// them": the pronoun follows the count.
func TestOneTakenDeadLetterIsNotCalledThey(t *testing.T) {
	for _, tc := range []struct {
		err           error
		want, notWant []string
	}{
		{keptErr([]string{"m1"}, true), []string{"1 dead letter was", "delete it ", "so it may still be", "purge it with"}, []string{"delete them", " they ", "purge those", "redriving them", "deliver them"}},
		{keptErr([]string{"m1"}, false), []string{"1 dead letter was", "purge it with"}, []string{"purge them", "redriving them", "deliver them"}},
		{takenError("purging", 1), []string{"1 dead letter was", "delete it "}, []string{"delete them"}},
		{keptErr([]string{"m1", "m2"}, true), []string{"2 dead letters were", "delete them ", "so they may still be", "purge those left with"}, nil},
		{keptErr([]string{"m1", "m2"}, false), []string{"purge them with"}, nil},
		{takenError("purging", 2), []string{"2 dead letters were", "delete them "}, nil},
	} {
		msg := tc.err.Error()
		for _, w := range tc.want {
			if !strings.Contains(msg, w) {
				t.Errorf("%q; want it to say %q", msg, w)
			}
		}
		for _, w := range tc.notWant {
			if strings.Contains(msg, w) {
				t.Errorf("%q; want it not to say %q", msg, w)
			}
		}
	}
}
