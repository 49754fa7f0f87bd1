package text

import "testing"

func TestPluralize(t *testing.T) {
	for _, tc := range []struct {
		n    int
		want string
	}{{0, "0 dead letters"}, {1, "1 dead letter"}, {2, "2 dead letters"}} {
		if got := Pluralize(tc.n, "dead letter"); got != tc.want {
			t.Errorf("Pluralize(%d) = %q, want %q", tc.n, got, tc.want)
		}
	}
}
