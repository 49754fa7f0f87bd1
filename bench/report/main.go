// Command report writes BENCHMARKS.md from what scripts/bench measured: the
// Go benchmarks' output and the JSON of `socks bench` runs against the
// local gateway and the ceiling. Each figure is the median of the runs with
// its spread (lowest–highest); each ratio is of medians; each target of
// issue 10 says whether it is met.
package main

import (
	"bufio"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"
)

// benchResult mirrors the JSON of `socks bench` (commands/bench.Result).
type benchResult struct {
	Connects float64 `json:"connectsPerSecond"`
	FanOut   struct {
		PerSecond float64 `json:"deliveriesPerSecond"`
	} `json:"fanOut"`
	Latency struct {
		P50       float64 `json:"p50Ms"`
		P95       float64 `json:"p95Ms"`
		P99       float64 `json:"p99Ms"`
		AfterIdle *struct {
			IdleMs float64 `json:"idleMs"`
			Max    float64 `json:"maxMs"`
		} `json:"afterIdle"`
	} `json:"latency"`
	Memory *struct {
		BeforeKiB     float64 `json:"beforeKiB"`
		AfterKiB      float64 `json:"afterKiB"`
		PerConnection float64 `json:"perConnectionKiB"`
	} `json:"memory"`
	Connections int `json:"connections"`
}

// figure is a row of a table of socks bench results: its name and how to
// read it from one run.
type figure struct {
	name string
	fn   func(benchResult) (float64, bool)
}

// series is one figure over several runs.
type series []float64

func (s series) median() float64 {
	if len(s) == 0 {
		return 0
	}
	v := slices.Clone(s)
	slices.Sort(v)
	if len(v)%2 == 1 {
		return v[len(v)/2]
	}
	return (v[len(v)/2-1] + v[len(v)/2]) / 2
}

func (s series) String() string {
	if len(s) == 0 {
		return "—"
	}
	lo, hi := slices.Min(s), slices.Max(s)
	return fmt.Sprintf("%s (%s–%s, n=%d)", num(s.median()), num(lo), num(hi), len(s))
}

func num(f float64) string {
	switch {
	case f >= 100:
		return strconv.FormatFloat(f, 'f', 0, 64)
	case f >= 10:
		return strconv.FormatFloat(f, 'f', 1, 64)
	default:
		return strconv.FormatFloat(f, 'f', 2, 64)
	}
}

// goBench is the parsed Go benchmark output: benchmark → variant → unit →
// values.
type goBench map[string]map[string]map[string]series

func parseGo(path string) (goBench, []string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, err
	}
	defer f.Close()
	out := goBench{}
	var order []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 4 || !strings.HasPrefix(fields[0], "Benchmark") {
			continue
		}
		name := fields[0]
		if i := strings.LastIndex(name, "-"); i > 0 {
			if _, err := strconv.Atoi(name[i+1:]); err == nil {
				name = name[:i]
			}
		}
		bench, variant, _ := strings.Cut(name, "/")
		if out[bench] == nil {
			out[bench] = map[string]map[string]series{}
			order = append(order, bench)
		}
		// A benchmark that takes its variants in turn (internal/benchturn)
		// reports each one's figure as unit@variant; its ns/op is of all
		// of them together and means nothing.
		alternating := strings.Contains(sc.Text(), "@")
		for i := 2; i+1 < len(fields); i += 2 {
			v, err := strconv.ParseFloat(fields[i], 64)
			if err != nil {
				continue
			}
			unit, vv := fields[i+1], variant
			if alternating {
				var ok bool
				if unit, vv, ok = strings.Cut(unit, "@"); !ok {
					continue
				}
			}
			if out[bench][vv] == nil {
				out[bench][vv] = map[string]series{}
			}
			out[bench][vv][unit] = append(out[bench][vv][unit], v)
		}
	}
	return out, order, sc.Err()
}

func (g goBench) get(bench, variant, unit string) series { return g[bench][variant][unit] }

func readRuns(pattern string) ([]benchResult, error) {
	files, err := filepath.Glob(pattern)
	if err != nil {
		return nil, err
	}
	sort.Strings(files)
	var out []benchResult
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			return nil, err
		}
		var r benchResult
		if err := json.Unmarshal(data, &r); err != nil {
			return nil, fmt.Errorf("%s: %w", f, err)
		}
		out = append(out, r)
	}
	return out, nil
}

func pick(runs []benchResult, fn func(benchResult) (float64, bool)) series {
	var s series
	for _, r := range runs {
		if v, ok := fn(r); ok {
			s = append(s, v)
		}
	}
	return s
}

type target struct {
	what, measured string
	ratio          float64
	want           string
	met            bool
	known          bool
	noisy          bool
}

// noisy reports whether the runs of a series disagree too much to decide a
// target on: a run at or below zero, or a spread wider than the median.
func (s series) noisy() bool {
	if len(s) == 0 {
		return false
	}
	lo, hi := slices.Min(s), slices.Max(s)
	return lo <= 0 || hi-lo > s.median()
}

func main() {
	goOut := flag.String("go", "", "Go benchmark output")
	socksRuns := flag.String("socks", "", "glob of `socks bench --json` files against the local gateway")
	ceilRuns := flag.String("ceiling", "", "glob of `socks bench --json` files against the ceiling")
	socksMem := flag.String("socks-mem", "", "glob of `socks bench --json` memory runs against fresh local gateways")
	ceilMem := flag.String("ceiling-mem", "", "glob of `socks bench --json` memory runs against fresh ceilings")
	versionMs := flag.String("version-ms", "", "comma-separated wall times of `socks version`, in ms")
	publishLatFile := flag.String("publish-lat", "", "the JSON of bench/publishlat: separate `socks publish` processes to a listener, and `socks version` processes")
	machine := flag.String("machine", "", "file describing the machine")
	command := flag.String("command", "make bench", "the command that reruns this")
	notes := flag.String("notes", "", "hand-written notes (what the profiles showed) to include")
	profile := flag.String("profile", "", "pprof -top output of the gateway during a fan-out")
	extra := flag.String("extra", "", "file of extra figures (name<TAB>value lines)")
	out := flag.String("out", "BENCHMARKS.md", "file to write")
	short := flag.Bool("short", false, "a `scripts/bench -short` run: say so at the top, with its sizes")
	flag.Parse()

	g, order, err := parseGo(*goOut)
	check(err)
	socks, err := readRuns(*socksRuns)
	check(err)
	ceil, err := readRuns(*ceilRuns)
	check(err)
	socksM, ceilM := socks, ceil
	if *socksMem != "" {
		socksM, err = readRuns(*socksMem)
		check(err)
		ceilM, err = readRuns(*ceilMem)
		check(err)
	}
	var pl *publishLat
	if *publishLatFile != "" {
		data, err := os.ReadFile(*publishLatFile)
		check(err)
		pl = &publishLat{}
		check(json.Unmarshal(data, pl))
	}
	var version series
	for _, s := range strings.Split(*versionMs, ",") {
		if v, err := strconv.ParseFloat(strings.TrimSpace(s), 64); err == nil {
			version = append(version, v)
		}
	}
	if pl != nil && len(version) == 0 {
		// Timed in Go, as the publish processes are: the shell's
		// $(date) around each run added a fork to every one.
		version = pl.VersionMs
	}

	var b strings.Builder
	w := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }
	w("# Benchmarks\n\n")
	w("Written by `scripts/bench` (do not edit by hand: edit `bench/NOTES.md` and rerun).\n")
	w("socks is measured side by side with a raw gorilla/websocket server built\n")
	w("from this repository (`bench/ceiling`: upgrade; `POST /@connections/{id}`\n")
	w("writes the body; `POST /@broadcast` writes one `PreparedMessage` to every\n")
	w("connection), and with naive baselines, in one run on one machine. The\n")
	w("**ratios** are the result; absolute numbers depend on the machine and on\n")
	w("whatever else runs on it. Each figure is the median of the runs, with the\n")
	w("lowest and highest in brackets. Tests never assert on time.\n\n")
	w("%s", modeNote(*short))
	w("Rerun:\n\n```sh\n%s\n```\n\n", *command)
	if *machine != "" {
		data, err := os.ReadFile(*machine)
		check(err)
		w("## Machine and conditions\n\n```\n%s```\n\n", data)
	}

	// socks bench side by side.
	connects := func(r benchResult) (float64, bool) { return r.Connects, r.Connects > 0 }
	fanout := func(r benchResult) (float64, bool) { return r.FanOut.PerSecond, r.FanOut.PerSecond > 0 }
	p50 := func(r benchResult) (float64, bool) { return r.Latency.P50, r.Latency.P50 > 0 }
	p95 := func(r benchResult) (float64, bool) { return r.Latency.P95, r.Latency.P95 > 0 }
	p99 := func(r benchResult) (float64, bool) { return r.Latency.P99, r.Latency.P99 > 0 }
	idleMax := func(r benchResult) (float64, bool) {
		if a := r.Latency.AfterIdle; a != nil {
			return a.Max, true
		}
		return 0, false
	}
	idleMs := 0.0
	for _, r := range socks {
		if a := r.Latency.AfterIdle; a != nil {
			idleMs = a.IdleMs
		}
	}
	mem := func(r benchResult) (float64, bool) {
		if r.Memory == nil {
			return 0, false
		}
		return r.Memory.PerConnection, true
	}
	memBefore := func(r benchResult) (float64, bool) {
		if r.Memory == nil {
			return 0, false
		}
		return r.Memory.BeforeKiB / 1024, true
	}
	memAfter := func(r benchResult) (float64, bool) {
		if r.Memory == nil {
			return 0, false
		}
		return r.Memory.AfterKiB / 1024, true
	}
	n := 0
	if len(socks) > 0 {
		n = socks[0].Connections
	}
	w("## `socks bench`: the local gateway against the ceiling\n\n")
	w("Each is a separate process on loopback; `socks bench` runs in a third,\n")
	w("alternating between them, with %d clients. The local gateway is\n", n)
	w("`socks serve` with its broker: each message is published through the\n")
	w("local queue, as `socks publish` does. The ceiling is sent the same\n")
	w("message by `POST /@broadcast`.\n\n")
	w("| measure | socks | ceiling | socks / ceiling |\n| --- | --- | --- | --- |\n")
	rows := []figure{
		{"connects/s (with the chatter check and a durable record on socks)", connects},
		{"fan-out deliveries/s", fanout},
		{"publish→receive p50, ms", p50},
		{"publish→receive p95, ms", p95},
		{"publish→receive p99, ms", p99},
	}
	if idleMs > 0 {
		rows = append(rows, figure{fmt.Sprintf("publish→receive after %s idle, the slowest, ms", idleFor(idleMs)), idleMax})
	}
	if *socksMem == "" {
		rows = append(rows, figure{"memory per idle connection, KiB", mem})
	}
	for _, r := range rows {
		s, c := pick(socks, r.fn), pick(ceil, r.fn)
		w("| %s | %s | %s | %s |\n", r.name, s, c, ratio(s.median(), c.median()))
	}
	if len(version) > 0 {
		w("| `socks version` wall time, ms | %s | | |\n", version)
	}
	w("\n")
	if pl != nil {
		w("### A separate `socks publish` process to a listener\n\n")
		w("`bench/publishlat` starts `socks publish` as a process, one at a time, and\n")
		w("times it from the start of the process to a listener's receipt of its\n")
		w("message; then `socks version` processes, started and waited for the same\n")
		w("way. Percentiles are the nearest rank.\n\n")
		w("| measure | ms |\n| --- | --- |\n")
		w("| `socks publish` process → receipt, p50 | %s |\n", num(quantile(pl.PublishMs, 0.5)))
		w("| `socks publish` process → receipt, p95 (%d samples) | %s |\n", len(pl.PublishMs), num(quantile(pl.PublishMs, 0.95)))
		if len(pl.IdlePublishMs) > 0 {
			w("| the same after %s idle, the slowest of %d | %s |\n", idleFor(pl.IdleMs), len(pl.IdlePublishMs), num(slices.Max(pl.IdlePublishMs)))
		}
		w("| `socks version` process | %s |\n", series(pl.VersionMs))
		if len(pl.IdleVersionMs) > 0 {
			// For the after-idle figure: how much of it any process
			// started after a silence pays.
			w("| `socks version` process after %s idle, the slowest of %d | %s |\n", idleFor(pl.IdleMs), len(pl.IdleVersionMs), num(slices.Max(pl.IdleVersionMs)))
		}
		w("\n")
	}
	if *socksMem != "" {
		m := 0
		if len(socksM) > 0 {
			m = socksM[0].Connections
		}
		w("### Memory per idle connection\n\n")
		w("Each run starts a fresh `socks serve` (with its broker) and a fresh\n")
		w("ceiling, opens %d idle clients to it with `socks bench --fanouts 0\n", m)
		w("--samples 0`, waits until the process's resident memory (VmRSS) stops\n")
		w("moving, and divides the growth by the clients.\n\n")
		w("| measure | socks | ceiling | socks / ceiling |\n| --- | --- | --- | --- |\n")
		for _, r := range []figure{
			{"resident memory before the clients, MiB", memBefore},
			{fmt.Sprintf("resident memory with %d idle clients, MiB", m), memAfter},
			{"memory per idle connection, KiB", mem},
		} {
			s, c := pick(socksM, r.fn), pick(ceilM, r.fn)
			w("| %s | %s | %s | %s |\n", r.name, s, c, ratio(s.median(), c.median()))
		}
		w("\n")
	}

	// Go benchmarks.
	w("## Go benchmarks (`go test -bench`), side by side in one process\n\n")
	w("%s", goIntro(*short))
	w("| benchmark | variant | figure | ratio to the first variant |\n| --- | --- | --- | --- |\n")
	for _, bench := range order {
		var variants []string
		for v := range g[bench] {
			variants = append(variants, v)
		}
		variants = orderVariants(variants)
		for _, v := range variants {
			unit := mainUnit(g[bench][v])
			s := g[bench][v][unit]
			base := g[bench][variants[0]][unit]
			w("| %s | %s | %s %s | %s |\n", bench, orDash(v), s, unit, ratio(s.median(), base.median()))
		}
	}
	w("\n")
	if idle := g["BenchmarkIdleMemory"]; len(idle) > 0 {
		w("### Memory per idle connection, broken down (`BenchmarkIdleMemory`)\n\n")
		w("The gateway and the ceiling in this process, the clients in another;\n")
		w("after a GC, the heap in use and the goroutine stacks, divided by the\n")
		w("connections.\n\n")
		w("| variant | KiB/conn | heap KiB/conn | stack KiB/conn | goroutines/conn |\n| --- | --- | --- | --- | --- |\n")
		for _, v := range orderVariants(keys(idle)) {
			u := idle[v]
			w("| %s | %s | %s | %s | %s |\n", v, u["KiB/conn"], u["heap-KiB/conn"], u["stack-KiB/conn"], u["goroutines/conn"])
		}
		w("\n")
	}

	// Targets.
	var ts []target
	add := func(what, measured string, r float64, want string, ok func(float64) bool) {
		known := r > 0
		ts = append(ts, target{what: what, measured: measured, ratio: r, want: want, met: known && ok(r), known: known, noisy: lastNoisy})
		lastNoisy = false
	}
	ge := func(x float64) func(float64) bool { return func(r float64) bool { return r >= x } }
	le := func(x float64) func(float64) bool { return func(r float64) bool { return r <= x } }
	fanGo := bestSocks(g, "BenchmarkFanOutVsCeiling", "deliveries/s")
	add("1. fan-out ≥ 0.7× the ceiling (socks bench)", "deliveries/s", rat(pick(socks, fanout), pick(ceil, fanout)), "≥ 0.7", ge(0.7))
	add("1. fan-out ≥ 0.7× the ceiling (Go benchmark, best socks path)", fanGo.name, rat(fanGo.s, g.get("BenchmarkFanOutVsCeiling", "ceiling", "deliveries/s")), "≥ 0.7", ge(0.7))
	if pl != nil {
		ts = append(ts, pl.targets()...)
	} else if len(version) > 0 {
		// Without bench/publishlat: an estimate, and a flattering one. A
		// separate `socks publish` process costs its start-up (taken as
		// `socks version`'s, though publish also reads its config and
		// opens the state file) plus the publish-to-receive time bench
		// measures from its own process.
		add("2. a separate publish process: p95 ≤ 3× `socks version` (estimated, not measured)", "(version + bench p95) / version", (version.median()+pick(socks, p95).median())/version.median(), "≤ 3", le(3))
		if idle := pick(socks, idleMax); len(idle) > 0 {
			add("2. the same right after an idle period", "(version + slowest after idle) / version", (version.median()+slices.Max(idle))/version.median(), "≤ 3", le(3))
		}
	}
	add("3. memory per idle connection ≤ 1.0× the ceiling (socks bench, fresh processes)", "KiB per connection", rat(pick(socksM, mem), pick(ceilM, mem)), "≤ 1.0", le(1.0))
	add("3. memory per idle connection ≤ 1.0× the ceiling (Go benchmark: heap + stacks)", "KiB/conn", rat(g.get("BenchmarkIdleMemory", "socks", "KiB/conn"), g.get("BenchmarkIdleMemory", "ceiling", "KiB/conn")), "≤ 1.0", le(1.0))
	add("4. connects/s ≥ 0.6× the ceiling (socks bench)", "connects/s", rat(pick(socks, connects), pick(ceil, connects)), "≥ 0.6", ge(0.6))
	add("4. connects/s ≥ 0.6× the ceiling (Go benchmark)", "connects/s", rat(g.get("BenchmarkConnectVsCeiling", "socks", "connects/s"), g.get("BenchmarkConnectVsCeiling", "ceiling", "connects/s")), "≥ 0.6", ge(0.6))
	add("5. @connections POST/s ≥ 0.9× the ceiling", "posts/s", rat(g.get("BenchmarkPostVsCeiling", "socks", "posts/s"), g.get("BenchmarkPostVsCeiling", "ceiling", "posts/s")), "≥ 0.9", ge(0.9))
	if q := g.get("BenchmarkFindTargetsQueries", "", "queries/op"); len(q) > 0 {
		ts = append(ts, target{what: "6. Queries per envelope at 10 users × 10 topics ≤ 25", measured: "queries", ratio: q.median(), want: "≤ 25", met: q.median() <= 25, known: true})
		read, matches := g.get("BenchmarkFindTargetsQueries", "", "items-read/op"), g.get("BenchmarkFindTargetsQueries", "", "matches/op")
		if len(read) > 0 && len(matches) > 0 {
			bound := 2*matches.median() + q.median()
			ts = append(ts, target{what: "6. items read at 10 × 10 ≤ 2× the matches + one page per Query", measured: "items read / (2 × matches + Queries)", ratio: read.median() / bound, want: "≤ 1", met: read.median() <= bound, known: true})
		}
	}
	add("6. prune-stale ≥ 10× naive scan-get-delete", "rows/s", rat(g.get("BenchmarkPruneStale", "prune", "rows/s"), g.get("BenchmarkPruneStale", "naive-scan-get-delete", "rows/s")), "≥ 10", ge(10))
	add("6. SQS batched publish ≥ 5× one request each", "envelopes/s", rat(g.get("BenchmarkSQSPublish", "batched", "envelopes/s"), g.get("BenchmarkSQSPublish", "naive-one-each", "envelopes/s")), "≥ 5", ge(5))
	w("## Targets (issue 10)\n\n| target | measured as | result | wanted | met |\n| --- | --- | --- | --- | --- |\n")
	for _, t := range ts {
		verdict := "no"
		switch {
		case !t.known:
			verdict = "not measured"
		case t.noisy:
			verdict = "not decided: the runs disagree too much (see the spread above)"
		case t.met:
			verdict = "**yes**"
		}
		w("| %s | %s | %s | %s | %s |\n", t.what, t.measured, num(t.ratio), t.want, verdict)
	}
	w("\n")
	if *extra != "" {
		data, err := os.ReadFile(*extra)
		check(err)
		w("## Other figures\n\n| figure | value |\n| --- | --- |\n")
		for _, line := range strings.Split(strings.TrimSpace(string(data)), "\n") {
			if k, v, ok := strings.Cut(line, "\t"); ok {
				w("| %s | %s |\n", k, v)
			}
		}
		w("\n")
	}
	if *profile != "" {
		data, err := os.ReadFile(*profile)
		check(err)
		w("## CPU profile of the local gateway during the fan-outs (this run)\n\n```\n%s```\n\n", data)
	}
	if *notes != "" {
		data, err := os.ReadFile(*notes)
		check(err)
		w("%s", data)
	}
	check(os.WriteFile(*out, []byte(b.String()), 0o644))
}

// modeNote is what the top of the report says of a -short run (nothing
// of a full one).
func modeNote(short bool) string {
	if !short {
		return ""
	}
	return "**A `-short` run** (`make bench ARGS=-short`): everything small (fewer\n" +
		"clients, one iteration of each Go benchmark, smaller tables and queues\n" +
		"on the emulators), to show every figure and ratio quickly. The figures\n" +
		"are rough, so the verdicts on the targets are only a first look:\n" +
		"`make bench` is the full run.\n\n"
}

// goIntro is the paragraph before the Go benchmarks' table.
func goIntro(short bool) string {
	rounds := "(30 for\nfan-out and POST, 10 for connects)"
	if short {
		rounds = "(one\nin this -short run)"
	}
	return "The `…VsCeiling` benchmarks keep the ceiling and socks running in one\n" +
		"process and take them in turn, one round of each per iteration " + rounds + ", so both see the same machine; the\n" +
		"others run their variants one after the other.\n\n"
}

// idleFor says a silence of ms milliseconds: "2 s", "500 ms" (-short's
// 500 ms was "0 s").
func idleFor(ms float64) string {
	return (time.Duration(ms * float64(time.Millisecond))).String()
}

// publishLat is the JSON of bench/publishlat.
type publishLat struct {
	PublishMs     []float64 `json:"publishMs"`
	IdlePublishMs []float64 `json:"idlePublishMs"`
	IdleMs        float64   `json:"idleMs"`
	VersionMs     []float64 `json:"versionMs"`
	IdleVersionMs []float64 `json:"idleVersionMs"`
}

// targets are issue 10's second target, measured: the p95 of separate
// `socks publish` processes, and the slowest after a silence, each against
// the median `socks version` process.
func (pl *publishLat) targets() []target {
	v := series(pl.VersionMs).median()
	one := func(what, measured string, ms float64, known bool) target {
		t := target{what: what, measured: measured, want: "≤ 3", known: known && v > 0 && ms > 0}
		if t.known {
			t.ratio = ms / v
			t.met = t.ratio <= 3
		}
		return t
	}
	out := []target{one("2. a separate `socks publish` process: p95 ≤ 3× `socks version`", "publish process → receipt p95 / version process median",
		quantile(pl.PublishMs, 0.95), len(pl.PublishMs) > 0)}
	if len(pl.IdlePublishMs) > 0 {
		out = append(out, one("2. the same right after an idle period", "the slowest publish after idle / version median", slices.Max(pl.IdlePublishMs), true))
	}
	return out
}

// quantile is the q quantile of s by the nearest rank, as socks bench
// takes its percentiles (0 for none).
func quantile(s []float64, q float64) float64 {
	if len(s) == 0 {
		return 0
	}
	v := slices.Clone(s)
	slices.Sort(v)
	i := int(q*float64(len(v))+0.999999) - 1
	return v[max(0, min(i, len(v)-1))]
}

func orderVariants(v []string) []string {
	// The ceiling or the first socks variant first, the naive last.
	rank := func(s string) int {
		switch {
		case s == "ceiling":
			return 0
		case strings.HasPrefix(s, "naive"):
			return 2
		}
		return 1
	}
	sort.SliceStable(v, func(i, j int) bool {
		if rank(v[i]) != rank(v[j]) {
			return rank(v[i]) < rank(v[j])
		}
		return v[i] < v[j]
	})
	return v
}

func mainUnit(units map[string]series) string {
	for _, u := range []string{"deliveries/s", "posts/s", "connects/s", "rows/s", "envelopes/s", "queries/op", "pages/op", "KiB/conn"} {
		if _, ok := units[u]; ok {
			return u
		}
	}
	return "ns/op"
}

type named struct {
	name string
	s    series
}

// bestSocks returns the socks variant of bench with the highest median.
func bestSocks(g goBench, bench, unit string) named {
	var best named
	for v, units := range g[bench] {
		if v == "ceiling" || !strings.HasPrefix(v, "socks") {
			continue
		}
		if s := units[unit]; s.median() > best.s.median() {
			best = named{v, s}
		}
	}
	return best
}

// lastNoisy is set by rat when either series it was given is noisy.
var lastNoisy bool

func rat(a, b series) float64 {
	lastNoisy = a.noisy() || b.noisy()
	if a.median() == 0 || b.median() == 0 {
		return 0
	}
	return a.median() / b.median()
}

func ratio(a, b float64) string {
	if a == 0 || b == 0 {
		return "—"
	}
	return fmt.Sprintf("%.2f×", a/b)
}

func orDash(s string) string {
	if s == "" {
		return "—"
	}
	return s
}

func check(err error) {
	if err != nil {
		fmt.Fprintln(os.Stderr, "report:", err)
		os.Exit(1)
	}
}

func keys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}
