package bench

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// idleClientsEnv, set to 1, makes the test binary the client process of
// BenchmarkIdleMemory instead of running tests (see idleClients).
const idleClientsEnv = "SOCKS_BENCH_IDLE_CLIENTS"

func TestMain(m *testing.M) {
	if os.Getenv(idleClientsEnv) == "1" {
		os.Exit(idleClients(os.Stdin, os.Stdout))
	}
	os.Exit(m.Run())
}

// idleClients reads WebSocket URLs from in, one a line, up to an empty
// line; dials them all (16 at a time); writes "ready" to out; and holds
// the connections, reading nothing, until in is closed.
func idleClients(in io.Reader, out io.Writer) int {
	sc := bufio.NewScanner(in)
	var urls []string
	for sc.Scan() && sc.Text() != "" {
		urls = append(urls, sc.Text())
	}
	conns := make([]*websocket.Conn, len(urls))
	errs := make([]error, len(urls))
	var wg sync.WaitGroup
	next := make(chan int)
	for range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				conns[i], _, errs[i] = websocket.DefaultDialer.Dial(urls[i], nil)
			}
		}()
	}
	for i := range urls {
		next <- i
	}
	close(next)
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			fmt.Fprintln(out, "dialing:", err)
			return 1
		}
	}
	fmt.Fprintln(out, "ready")
	_, _ = io.Copy(io.Discard, in)
	for _, c := range conns {
		c.Close()
	}
	return 0
}

// BenchmarkIdleMemory holds N idle clients on the server, from a separate
// client process (this test binary again, see idleClients), and reports
// what the server process holds per connection: heap (HeapInuse) and
// goroutine stacks (StackInuse) after a GC, their sum, and goroutines. The
// ceiling keeps one goroutine per connection; socks keeps what `socks
// serve` keeps, with the connection's durable record.
func BenchmarkIdleMemory(b *testing.B) {
	n := size(2000, 300)
	run := func(b *testing.B, s *stack) {
		urls := make([]string, n)
		for i := range n {
			urls[i] = s.wsURL + s.dialQuery(b, i)
		}
		// What the server runs without clients: each measurement starts
		// once the goroutines of the last one's clients have ended.
		base := settledGoroutines(b, -1)
		var heap, stacks, goroutines float64
		iterations := 0
		for b.Loop() {
			settledGoroutines(b, base)
			h, st, g := idleCost(b, s, urls)
			heap, stacks, goroutines = heap+h, stacks+st, goroutines+g
			iterations++
		}
		per := func(v float64) float64 { return v / float64(iterations) / float64(n) }
		b.ReportMetric(per(heap+stacks)/1024, "KiB/conn")
		b.ReportMetric(per(heap)/1024, "heap-KiB/conn")
		b.ReportMetric(per(stacks)/1024, "stack-KiB/conn")
		b.ReportMetric(per(goroutines), "goroutines/conn")
	}
	b.Run("ceiling", func(b *testing.B) { run(b, startCeiling(b)) })
	b.Run("socks", func(b *testing.B) { run(b, startSocks(b).stack) })
}

// idleCost connects a client process to every URL, and returns how much
// the server's heap, stacks and goroutines grew once they were all idle.
func idleCost(b *testing.B, s *stack, urls []string) (heap, stacks, goroutines float64) {
	b.Helper()
	waitCount(b, s.count, 0)
	before, g0 := settledMemory()

	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), idleClientsEnv+"=1")
	stdin, err := cmd.StdinPipe()
	if err != nil {
		b.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	defer func() {
		stdin.Close()
		_ = cmd.Wait()
		waitCount(b, s.count, 0)
	}()
	if _, err := io.WriteString(stdin, strings.Join(urls, "\n")+"\n\n"); err != nil {
		b.Fatal(err)
	}
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if strings.TrimSpace(line) != "ready" {
		b.Fatalf("client process: %q %v", line, err)
	}
	waitCount(b, s.count, len(urls))

	after, g1 := settledMemory()
	return float64(after.HeapInuse) - float64(before.HeapInuse),
		float64(after.StackInuse) - float64(before.StackInuse),
		float64(g1 - g0)
}

// settledGoroutines waits (for at most a minute) until no more than want
// goroutines run, or, when want is negative, until their number stops
// falling, and returns it.
func settledGoroutines(b *testing.B, want int) int {
	deadline := time.Now().Add(time.Minute)
	last := runtime.NumGoroutine()
	for time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
		n := runtime.NumGoroutine()
		if want >= 0 && n <= want || want < 0 && n >= last {
			return n
		}
		last = n
	}
	b.Fatalf("%d goroutines still run, want %d", runtime.NumGoroutine(), want)
	return 0
}

// settledMemory returns the memory statistics and goroutine count after
// two garbage collections.
func settledMemory() (runtime.MemStats, int) {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m, runtime.NumGoroutine()
}
