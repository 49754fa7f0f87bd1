// Package benchturn runs the contenders of a benchmark in turn, a round of
// each per iteration, so that their rates are measured on the same machine.
//
// On this project's shared, noisy 2-core machine, a ratio of two
// sub-benchmarks run a minute apart moved with the machine (0.37 to 0.62
// for the same build's connects), and a baseline run after the other
// variant met a warmer emulator. Rounds taken in turn see the same
// machine.
package benchturn

import (
	"testing"
	"time"
)

// Contender is one side of a benchmark that alternates: Round runs one
// round of it and returns how many units it handled and the time they
// took (what it does before and after, such as seeding or closing
// clients, is not counted).
type Contender struct {
	Name  string
	Round func(b *testing.B) (int, time.Duration)
}

// Alternate runs one round of each contender per iteration of b.Loop, the
// first one's turn moving along each time, and reports each contender's
// rate as unit@Name (bench/report reads Name as the variant).
func Alternate(b *testing.B, unit string, contenders ...Contender) {
	b.Helper()
	counts := make([]int, len(contenders))
	took := make([]time.Duration, len(contenders))
	turn := 0
	for b.Loop() {
		for k := range contenders {
			i := (turn + k) % len(contenders)
			n, d := contenders[i].Round(b)
			counts[i] += n
			took[i] += d
		}
		turn++
	}
	for i, c := range contenders {
		b.ReportMetric(float64(counts[i])/took[i].Seconds(), unit+"@"+c.Name)
	}
}
