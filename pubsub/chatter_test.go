package pubsub

import (
	"strings"
	"testing"
)

func TestHideChatterIDs(t *testing.T) {
	// An ID as NewChatterID makes them (fixed, so that the cut-short
	// case below always holds both capitals and small letters).
	id := "sc_q3Vx-7LmN_0aKfZpT2yBcWd9hRjE4uGs"
	for _, tc := range []struct{ in, want string }{
		{"alice", "alice"},
		{id, "sc_(hidden)"},
		{`geek "` + id + ` " contains whitespace`, `geek "sc_(hidden) " contains whitespace`},
		{"x" + id + "#", "xsc_(hidden)#"},
		{id[:25], "sc_(hidden)"}, // cut short
		{id + "abc", "sc_(hidden)"},
		{"sc_short_name", "sc_short_name"},
		{"a " + id + ", " + id, "a sc_(hidden), sc_(hidden)"},
		{"alice" + id, "alicesc_(hidden)"}, // ?geek=alice with the ID pasted on
		// Names that hold "sc_" and 20 letters after it, in one case as
		// names are written, are not chatter IDs: 192 random bits
		// written in base64 hold capitals and small letters both.
		{"misc_operations_dashboard", "misc_operations_dashboard"},
		{`geek misc_operations_dashboard already has 5 open connections`, `geek misc_operations_dashboard already has 5 open connections`},
		{"disc_golf_tournament_results_2026", "disc_golf_tournament_results_2026"},
		// Its secret part pasted without the prefix (?geek=q3Vx...): 32
		// characters of base64, capitals and small letters both, alone.
		{id[3:], "sc_(hidden)"},
		{`geek "` + id[3:] + `" is not allowed`, `geek "sc_(hidden)" is not allowed`},
		{"x." + id[3:] + "#", "x.sc_(hidden)#"},
		// One whose secret part holds "sc_" 13 characters from its end
		// (fewer than 20 after it): it was kept whole.
		{"?geek=AAAAAAAAAAAAAAAAsc_aaaaaaaaaaaaa", "?geek=sc_(hidden)"},
		// Not that shape: a hash, a UUID, a longer or shorter name.
		{"d41d8cd98f00b204e9800998ecf8427e", "d41d8cd98f00b204e9800998ecf8427e"},
		{"0b6a5e2c-7d43-4f0e-9a51-3c2d1e0f9b87", "0b6a5e2c-7d43-4f0e-9a51-3c2d1e0f9b87"},
		{"MyTeamDashboardForTheWholeCompanyX", "MyTeamDashboardForTheWholeCompanyX"},
		{"ReleaseDashboard", "ReleaseDashboard"},
	} {
		if got := HideChatterIDs(tc.in); got != tc.want {
			t.Errorf("HideChatterIDs(%q) = %q, want %q", tc.in, got, tc.want)
		}
		if strings.Contains(HideChatterIDs(tc.in), id[3:23]) {
			t.Errorf("HideChatterIDs(%q) holds the ID", tc.in)
		}
	}
	for range 20 {
		if id := NewChatterID(); HideChatterIDs(id) != "sc_(hidden)" || HideChatterIDs(id[3:]) != "sc_(hidden)" {
			t.Errorf("HideChatterIDs(%q) = %q, without its prefix %q; want it hidden", id, HideChatterIDs(id), HideChatterIDs(id[3:]))
		}
	}
}
