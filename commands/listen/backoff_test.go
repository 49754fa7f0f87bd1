package listen

import (
	"testing"
	"time"
)

func TestBackoff(t *testing.T) {
	low := func() float64 { return 0 }
	high := func() float64 { return 0.999999 }
	for _, tc := range []struct {
		name   string
		b      Backoff
		tries  []int
		expect []time.Duration
	}{
		{"the lowest jitter gives half of each doubling step", Backoff{Jitter: low}, []int{0, 1, 2, 3},
			[]time.Duration{250 * time.Millisecond, 500 * time.Millisecond, time.Second, 2 * time.Second}},
		{"the highest jitter gives just under each step", Backoff{Jitter: high}, []int{0, 1, 2},
			[]time.Duration{500 * time.Millisecond, time.Second, 2 * time.Second}},
		{"delays stop growing at Max", Backoff{Min: time.Second, Max: 4 * time.Second, Jitter: high}, []int{2, 3, 10, 1000},
			[]time.Duration{4 * time.Second, 4 * time.Second, 4 * time.Second, 4 * time.Second}},
		{"a Max below Min is raised to Min", Backoff{Min: time.Second, Max: time.Millisecond, Jitter: low}, []int{0, 5},
			[]time.Duration{500 * time.Millisecond, 500 * time.Millisecond}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for i, n := range tc.tries {
				got := tc.b.Delay(n)
				want := tc.expect[i]
				if d := got - want; d < -time.Millisecond || d > time.Millisecond {
					t.Errorf("Delay(%d) = %s; want about %s", n, got, want)
				}
			}
		})
	}
	t.Run("the default jitter stays within half and the whole step", func(t *testing.T) {
		for range 200 {
			if d := (Backoff{}).Delay(2); d < time.Second || d >= 2*time.Second {
				t.Fatalf("Delay(2) = %s; want within [1s, 2s)", d)
			}
		}
	})
}
