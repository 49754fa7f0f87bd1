package main

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
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

// TestTheSecondTargetIsMeasuredFromTheStartOfThePublishProcess: with
// bench/publishlat's figures, the target is the p95 of whole publish
// processes over the median `socks version` process (no longer version
// plus socks bench's in-process p95, which left out what publish does
// before it sends).
func TestTheSecondTargetIsMeasuredFromTheStartOfThePublishProcess(t *testing.T) {
	pl := &publishLat{VersionMs: []float64{9, 10, 11}, IdleMs: 2000, IdlePublishMs: []float64{25, 35}}
	for i := 1; i <= 20; i++ {
		pl.PublishMs = append(pl.PublishMs, float64(i)) // p95 is 19
	}
	ts := pl.targets()
	if len(ts) != 2 {
		t.Fatalf("targets %+v, want the publish and the after-idle one", ts)
	}
	if ts[0].ratio != 1.9 || !ts[0].met || !ts[0].known {
		t.Errorf("publish target %+v, want 19 / 10 = 1.9, met", ts[0])
	}
	if ts[1].ratio != 3.5 || ts[1].met || !ts[1].known {
		t.Errorf("after-idle target %+v, want 35 / 10 = 3.5, not met", ts[1])
	}
	if got := (&publishLat{VersionMs: []float64{10}}).targets(); len(got) != 1 || got[0].known {
		t.Errorf("without publishes: %+v, want the target not measured", got)
	}
}

func TestAnIdleOfHalfASecondIsNotZeroSeconds(t *testing.T) {
	for ms, want := range map[float64]string{500: "500ms", 2000: "2s", 1500: "1.5s"} {
		if got := idleFor(ms); got != want {
			t.Errorf("idleFor(%v) = %q, want %q", ms, got, want)
		}
	}
}

// A -short run said nothing of being one but a line of the machine block,
// and claimed the full run's 30 and 10 iterations of the Go benchmarks.
func TestAShortReportSaysItIsOne(t *testing.T) {
	if got := modeNote(false); got != "" {
		t.Errorf("a full run's note: %q, want none", got)
	}
	if got := modeNote(true); !strings.Contains(got, "`-short` run") || !strings.Contains(got, "`make bench` is the full") {
		t.Errorf("a -short run's note: %q, want it to say it is one and what the full run is", got)
	}
	if got := goIntro(false); !strings.Contains(got, "(30 for\nfan-out and POST, 10 for connects)") {
		t.Errorf("the full run's Go intro: %q, want its 30 and 10 iterations", got)
	}
	if got := goIntro(true); strings.Contains(got, "30") || !strings.Contains(got, "(one\nin this -short run)") {
		t.Errorf("the -short run's Go intro: %q, want one iteration and not the full run's 30", got)
	}
}
