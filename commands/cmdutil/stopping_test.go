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
