package bench

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/socks-dev/socks/iostreams"
)

// TestJSONFiguresAreRounded: --json printed every figure as the division
// left it ("deliveriesPerSecond":34135.9277852172, "p50Ms":2.403149,
// "perConnectionKiB":13.042666666666667), digits no clock or /proc read
// can back. Rates are now to 0.1 per second, milliseconds to the
// microsecond and KiB to 0.01, as docs/json.md says, each keeping three
// significant digits for a small figure (a rate below 0.05/s is not
// printed as 0, which reads "not measured").
func TestJSONFiguresAreRounded(t *testing.T) {
	res := Result{URL: "ws://127.0.0.1:8765/", Complete: true, Connections: 3, Connected: 3,
		Connects: 5370.591633772911,
		FanOut:   FanOut{Publishes: 3, Deliveries: 9, PerSecond: 34135.9277852172},
		Latency: Latency{Samples: 50, P50: 2.403149, P95: 5.957686, P99: 12.58099, Max: 12.5809999,
			AfterIdle: &AfterIdle{Samples: 1, IdleMs: 10.0000004, P50: 0.0123456, Max: 1234.5678901234}},
		Memory: &Memory{PID: 4242, BeforeKiB: 36888, AfterKiB: 40708, PerConnection: 13.042666666666667},
	}
	ios, _, out, _ := iostreams.Test()
	opts := defaults()
	opts.IO, opts.JSON = ios, true
	if err := printResult(opts, res); err != nil {
		t.Fatal(err)
	}
	var got map[string]any
	dec := json.NewDecoder(bytes.NewReader(out.Bytes()))
	dec.UseNumber()
	if err := dec.Decode(&got); err != nil {
		t.Fatalf("bench --json printed %q: %v", out, err)
	}
	want := map[string]string{
		"connectsPerSecond":          "5370.6",
		"fanOut.deliveriesPerSecond": "34135.9",
		"latency.p50Ms":              "2.403",
		"latency.p95Ms":              "5.958",
		"latency.p99Ms":              "12.581",
		"latency.maxMs":              "12.581",
		"latency.afterIdle.idleMs":   "10",
		"latency.afterIdle.p50Ms":    "0.0123",
		"latency.afterIdle.maxMs":    "1234.568",
		"memory.perConnectionKiB":    "13.04",
		"memory.beforeKiB":           "36888",
		"fanOut.deliveries":          "9",
	}
	for path, w := range want {
		var v any = got
		for _, k := range strings.Split(path, ".") {
			v = v.(map[string]any)[k]
		}
		if n, ok := v.(json.Number); !ok || n.String() != w {
			t.Errorf("%s is %v; want %s", path, v, w)
		}
	}
	// A rate too small for 0.1/s keeps its significant digits.
	if r := roundFigure(0.0412345, 1); r != 0.0412 {
		t.Errorf("roundFigure(0.0412345, 1) = %v; want 0.0412", r)
	}
}
