package pubsub

import (
	"strings"
	"testing"
)

func TestHideChatterIDs(t *testing.T) {
	id := NewChatterID()
	for _, tc := range []struct{ in, want string }{
		{"alice", "alice"},
		{id, "sc_(hidden)"},
		{`geek "` + id + ` " contains whitespace`, `geek "sc_(hidden) " contains whitespace`},
		{"x" + id + "#", "xsc_(hidden)#"},
		{id[:25], "sc_(hidden)"}, // cut short
		{id + "abc", "sc_(hidden)"},
		{"sc_short_name", "sc_short_name"},
		{"a " + id + ", " + id, "a sc_(hidden), sc_(hidden)"},
	} {
		if got := HideChatterIDs(tc.in); got != tc.want {
			t.Errorf("HideChatterIDs(%q) = %q, want %q", tc.in, got, tc.want)
		}
		if strings.Contains(HideChatterIDs(tc.in), id[3:23]) {
			t.Errorf("HideChatterIDs(%q) holds the ID", tc.in)
		}
	}
}
