package build

import "testing"

// TestResolveDropsWhatTheReleaseToolDidNotKnow: goreleaser stamps commit
// "none" and the zero time when it cannot read the git state (a snapshot
// from a clone with no remote); `socks version` printed them as if they
// were the commit and the date.
func TestResolveDropsWhatTheReleaseToolDidNotKnow(t *testing.T) {
	got := Resolve("v0.0.1-next", "none", "0001-01-01T00:00:00Z")
	if got.Version != "v0.0.1-next" {
		t.Errorf("version %q; want v0.0.1-next", got.Version)
	}
	if got.Commit == "none" || got.Date == "0001-01-01T00:00:00Z" {
		t.Errorf("Resolve kept the placeholders: commit %q, date %q", got.Commit, got.Date)
	}

	got = Resolve("v1.2.0", "3f1c0a9e", "2026-11-30T12:00:00Z")
	if got.Version != "v1.2.0" || got.Commit != "3f1c0a9e" || got.Date != "2026-11-30T12:00:00Z" {
		t.Errorf("Resolve changed stamped values: %+v", got)
	}
}
