package backoff

import (
	"context"
	"errors"
	"testing"
	"time"
)

func TestFullJitterStaysWithinItsCeiling(t *testing.T) {
	for _, tc := range []struct {
		name      string
		shift     int
		base, max time.Duration
		ceiling   time.Duration
	}{
		{"the first try waits at most the base", 0, 50 * time.Millisecond, 2 * time.Second, 50 * time.Millisecond},
		{"each try doubles the ceiling", 3, 50 * time.Millisecond, 2 * time.Second, 400 * time.Millisecond},
		{"the ceiling stops at max", 10, 50 * time.Millisecond, 2 * time.Second, 2 * time.Second},
		{"a huge shift does not overflow past max", 1000, time.Second, 5 * time.Second, 5 * time.Second},
		{"a negative shift is the first try", -3, 50 * time.Millisecond, 2 * time.Second, 50 * time.Millisecond},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for range 1000 {
				if d := FullJitter(tc.shift, tc.base, tc.max); d <= 0 || d > tc.ceiling {
					t.Fatalf("FullJitter(%d, %s, %s) = %s; want in (0, %s]", tc.shift, tc.base, tc.max, d, tc.ceiling)
				}
			}
		})
	}
}

func TestSleepEndsWithItsContext(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := Sleep(ctx, time.Hour); !errors.Is(err, context.Canceled) {
		t.Fatalf("Sleep on a cancelled context = %v; want context.Canceled", err)
	}
	if err := Sleep(context.Background(), time.Nanosecond); err != nil {
		t.Fatalf("Sleep(1ns) = %v", err)
	}
}

func TestEqualJitterStaysWithinHalfAndTheWholeStep(t *testing.T) {
	const base, max = 500 * time.Millisecond, 30 * time.Second
	for _, tc := range []struct {
		name     string
		shift    int
		u        float64
		min, max time.Duration // the wait is in [min, max]
	}{
		{"the lowest draw is half the first step", 0, 0, 250 * time.Millisecond, 250 * time.Millisecond},
		{"the highest draw is just under the first step", 0, 0.999999, 499 * time.Millisecond, 500 * time.Millisecond},
		{"each try doubles the step", 3, 0, 2 * time.Second, 2 * time.Second},
		{"the step stops at max", 10, 0.999999, 29999 * time.Millisecond, max},
		{"a huge shift does not overflow past max", 1 << 30, 0, max / 2, max / 2},
		{"a negative shift is the first try", -3, 0, 250 * time.Millisecond, 250 * time.Millisecond},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if d := EqualJitter(tc.shift, base, max, tc.u); d < tc.min || d > tc.max {
				t.Errorf("EqualJitter(%d, %s, %s, %v) = %s; want in [%s, %s]", tc.shift, base, max, tc.u, d, tc.min, tc.max)
			}
		})
	}
	t.Run("a max below base is raised to base", func(t *testing.T) {
		if d := EqualJitter(5, time.Second, time.Millisecond, 0); d != 500*time.Millisecond {
			t.Errorf("EqualJitter = %s; want 500ms", d)
		}
	})
	t.Run("a base near the largest duration does not overflow", func(t *testing.T) {
		const huge = time.Duration(1<<63 - 1)
		if d := EqualJitter(3, huge/3, huge, 0.5); d <= 0 {
			t.Errorf("EqualJitter = %s; want a positive wait", d)
		}
	})
}
