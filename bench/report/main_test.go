package main

import (
	"os"
	"path/filepath"
	"slices"
	"testing"
)

// TestParseGoReadsSubBenchmarksAndAlternatingOnes reads both shapes of
// benchmark line: a variant named by its sub-benchmark, and variants
// reported together as unit@variant by a benchmark that alternates them.
func TestParseGoReadsSubBenchmarksAndAlternatingOnes(t *testing.T) {
	out := `goos: linux
BenchmarkFanOut/keepalive-2    	3	 11708894 ns/op
BenchmarkFanOut/keepalive-2    	3	 12708894 ns/op
BenchmarkConnectVsCeiling-2   	10	 500000000 ns/op	 12000 connects/s@ceiling	 7000 connects/s@socks
BenchmarkConnectVsCeiling-2   	10	 500000000 ns/op	 11000 connects/s@ceiling	 6500 connects/s@socks
PASS
`
	path := filepath.Join(t.TempDir(), "go.txt")
	if err := os.WriteFile(path, []byte(out), 0o644); err != nil {
		t.Fatal(err)
	}
	g, order, err := parseGo(path)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"BenchmarkFanOut", "BenchmarkConnectVsCeiling"}; !slices.Equal(order, want) {
		t.Errorf("order = %v, want %v", order, want)
	}
	if got := g.get("BenchmarkFanOut", "keepalive", "ns/op"); !slices.Equal(got, series{11708894, 12708894}) {
		t.Errorf("FanOut keepalive ns/op = %v", got)
	}
	if got := g.get("BenchmarkConnectVsCeiling", "ceiling", "connects/s"); !slices.Equal(got, series{12000, 11000}) {
		t.Errorf("ceiling connects/s = %v", got)
	}
	if got := g.get("BenchmarkConnectVsCeiling", "socks", "connects/s"); !slices.Equal(got, series{7000, 6500}) {
		t.Errorf("socks connects/s = %v", got)
	}
	// The ns/op of all variants together belongs to none of them.
	if v, ok := g["BenchmarkConnectVsCeiling"][""]; ok {
		t.Errorf("an alternating benchmark got a variant without a name: %v", v)
	}
}
