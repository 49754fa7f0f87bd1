package cmdutil

import (
	"slices"
	"testing"
)

func TestStoppingKeepsWhatIsNotDoneInTheOrderItCame(t *testing.T) {
	var s Stopping
	doneA := s.Add(Work{What: "a"})
	s.Add(Work{What: "b"})
	doneC := s.Add(Work{What: "c"})
	doneA()
	doneA() // twice is harmless
	s.Add(Work{What: "d"})
	doneC()
	var got []string
	for _, w := range s.Pending() {
		got = append(got, w.What)
	}
	if !slices.Equal(got, []string{"b", "d"}) {
		t.Errorf("pending %q; want [b d]", got)
	}

	var none *Stopping
	none.Add(Work{What: "x"})()
	if p := none.Pending(); len(p) != 0 {
		t.Errorf("a nil Stopping has %v pending; want nothing", p)
	}
}

// TestWorkAddedAsAFuncSaysWhatItIsWhenAsked: a command whose work changes
// as it runs (serve's broker holding a batch or none) records it once;
// Pending asks it each time, and it keeps its place among the others.
func TestWorkAddedAsAFuncSaysWhatItIsWhenAsked(t *testing.T) {
	var s Stopping
	s.Add(Work{What: "a"})
	busy := false
	done := s.AddFunc(func() Work {
		if busy {
			return Work{What: "finishing, then closing"}
		}
		return Work{What: "closing"}
	})
	s.Add(Work{What: "c"})
	whats := func() []string {
		var got []string
		for _, w := range s.Pending() {
			got = append(got, w.What)
		}
		return got
	}
	if got := whats(); !slices.Equal(got, []string{"a", "closing", "c"}) {
		t.Errorf("idle: pending %q; want [a closing c]", got)
	}
	busy = true
	if got := whats(); !slices.Equal(got, []string{"a", "finishing, then closing", "c"}) {
		t.Errorf("busy: pending %q; want [a finishing, then closing c]", got)
	}
	done()
	if got := whats(); !slices.Equal(got, []string{"a", "c"}) {
		t.Errorf("done: pending %q; want [a c]", got)
	}

	var none *Stopping
	none.AddFunc(func() Work { t.Error("a nil Stopping asked the work"); return Work{} })()
}
