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
