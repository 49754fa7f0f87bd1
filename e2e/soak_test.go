package e2e

// The soak: many connections opening and closing while messages are
// published steadily, against `socks serve` on the local stack. Afterwards
// the server's goroutines, open files and heap return to their baseline and
// no connection record is left. The test command runs it for a minute with
// a few hundred connections; `make soak` for ten minutes with 2,000
// (SOCKS_SOAK_DURATION, SOCKS_SOAK_CONNECTIONS).

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/socks-dev/socks/local"
	"github.com/socks-dev/socks/pubsub"
)

// runtimeStats are the figures `socks serve` logs on SIGUSR1, with its RSS
// read from /proc.
type runtimeStats struct {
	goroutines, connections, openFiles int
	heapInuse, rss                     int64
}

func (s runtimeStats) String() string {
	return fmt.Sprintf("goroutines=%d connections=%d open files=%d heap in use=%.1f MB RSS=%.1f MB",
		s.goroutines, s.connections, s.openFiles, float64(s.heapInuse)/1e6, float64(s.rss)/1e6)
}

var statsLine = regexp.MustCompile(`msg="runtime stats" goroutines=(\d+) connections=(\d+) heap_inuse=(\d+) open_files=(\d+)`)

// stats asks serve for its runtime figures and waits (bounded) for them.
func (srv *server) stats(t *testing.T) runtimeStats {
	t.Helper()
	before := len(statsLine.FindAllStringSubmatch(srv.stderr.String(), -1))
	if err := askForStats(srv.cmd.Process); err != nil {
		t.Fatalf("SIGUSR1: %v", err)
	}
	deadline := time.Now().Add(receiveTimeout)
	for {
		all := statsLine.FindAllStringSubmatch(srv.stderr.String(), -1)
		if len(all) > before {
			m := all[len(all)-1]
			atoi := func(s string) int { n, _ := strconv.Atoi(s); return n }
			s := runtimeStats{goroutines: atoi(m[1]), connections: atoi(m[2]), openFiles: atoi(m[4])}
			s.heapInuse, _ = strconv.ParseInt(m[3], 10, 64)
			s.rss = rss(t, srv.cmd.Process.Pid)
			return s
		}
		if time.Now().After(deadline) {
			t.Fatalf("serve logged no runtime stats within %s of SIGUSR1:\n%s", receiveTimeout, srv.stderr)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// rss reads a process's resident set size from /proc (0 where there is
// none).
func rss(t *testing.T, pid int) int64 {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	m := regexp.MustCompile(`VmRSS:\s+(\d+) kB`).FindSubmatch(data)
	if m == nil {
		return 0
	}
	kb, _ := strconv.ParseInt(string(m[1]), 10, 64)
	return kb * 1024
}

func soakSetting(t *testing.T, name string, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

func TestSoak(t *testing.T) {
	if testing.Short() {
		t.Skip("the soak takes a minute; it runs without -short")
	}
	t.Parallel()
	duration, err := time.ParseDuration(soakSetting(t, "SOCKS_SOAK_DURATION", "60s"))
	if err != nil {
		t.Fatalf("SOCKS_SOAK_DURATION: %v", err)
	}
	conns, err := strconv.Atoi(soakSetting(t, "SOCKS_SOAK_CONNECTIONS", "200"))
	if err != nil || conns < 1 {
		t.Fatalf("SOCKS_SOAK_CONNECTIONS: %v", err)
	}
	st := newStack(t)
	srv := st.serve("-q")
	const geeks = 10
	topics := []string{"a", "b", "c", "d", "e"}
	ids := make([]string, geeks)
	for i := range ids {
		ids[i] = st.issue(fmt.Sprintf("soak-%d", i))
	}
	db, err := local.Open(t.Context(), filepath.Join(st.dir, "socks.db"), local.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()

	// One round of connections first, so that the baseline includes what
	// the first use allocates for good.
	dialOne := func(i int) *websocket.Conn {
		g := i % geeks
		c, _, err := dial(t, srv.connectURL(fmt.Sprintf("soak-%d", g), ids[g], topics[i%len(topics)]))
		if err != nil {
			return nil
		}
		return c
	}
	for i := range 20 {
		if c := dialOne(i); c != nil {
			c.Close()
		}
	}
	waitNoRecords(t, st)
	base := srv.stats(t)
	t.Logf("%s baseline taken", time.Now().Format(time.TimeOnly))

	var opened, refused, received, published atomic.Int64
	stop := time.Now().Add(duration)
	var wg sync.WaitGroup
	// Each slot keeps one connection open at a time: it connects,
	// subscribes (and maybe unsubscribes), reads for a while, then closes
	// cleanly or drops the TCP connection, and again.
	for slot := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(slot), 7))
			for time.Now().Before(stop) {
				c := dialOne(slot + int(opened.Load()))
				if c == nil {
					refused.Add(1)
					time.Sleep(100 * time.Millisecond)
					continue
				}
				opened.Add(1)
				// Follow one more topic, and now and then drop it again:
				// the routes' writes churn with the connections.
				extra := []string{topics[rng.IntN(len(topics))]}
				_ = c.WriteJSON(map[string]any{"action": "subscribe", "topics": extra})
				if rng.IntN(2) == 0 {
					_ = c.WriteJSON(map[string]any{"action": "unsubscribe", "topics": extra})
				}
				hold := time.Now().Add(time.Duration(500+rng.IntN(4500)) * time.Millisecond)
				_ = c.SetReadDeadline(hold)
				for {
					if _, _, err := c.ReadMessage(); err != nil {
						break
					}
					received.Add(1)
				}
				if rng.IntN(4) == 0 {
					c.UnderlyingConn().Close() // a dropped network, no close frame
				} else {
					_ = c.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, "bye"), time.Now().Add(time.Second))
					c.Close()
				}
			}
		}()
	}
	// Steady publishing: an envelope to one topic every 20 ms.
	for i := 0; time.Now().Before(stop); i++ {
		env := pubsub.Envelope{ID: fmt.Sprintf("soak-%d", i), Topics: []string{topics[i%len(topics)]}, Body: json.RawMessage(strconv.Itoa(i))}
		data, _ := env.Marshal()
		if _, err := db.Queue().Send(t.Context(), data); err != nil {
			t.Fatalf("publishing: %v", err)
		}
		published.Add(1)
		time.Sleep(20 * time.Millisecond)
	}
	wg.Wait()
	t.Logf("%s churn over", time.Now().Format(time.TimeOnly))
	waitNoRecords(t, st)
	t.Logf("%s no records left", time.Now().Format(time.TimeOnly))

	// The figures settle once the last $disconnect and the broker's
	// in-flight work are done: wait for that, bounded.
	var end runtimeStats
	settled := func(s runtimeStats) bool {
		return s.connections == 0 && s.goroutines <= base.goroutines+5 &&
			s.openFiles <= base.openFiles+5 && s.heapInuse <= base.heapInuse+32<<20
	}
	deadline := time.Now().Add(2 * time.Minute)
	for end = srv.stats(t); !settled(end) && time.Now().Before(deadline); end = srv.stats(t) {
		time.Sleep(time.Second)
	}
	summary := fmt.Sprintf("soak of %s with %d connection slots: %d connections opened (%d refused), %d messages published, %d frames received\n  baseline: %s\n  after:    %s",
		duration, conns, opened.Load(), refused.Load(), published.Load(), received.Load(), base, end)
	t.Log(summary)
	fmt.Fprintln(os.Stderr, summary)
	if !settled(end) {
		t.Errorf("serve did not return to its baseline: %s; baseline %s\nopen files: %s", end, base, openFileKinds(srv.cmd.Process.Pid))
	}
	if end.rss > 0 && end.rss > base.rss+256<<20 {
		t.Errorf("RSS grew from %.1f MB to %.1f MB", float64(base.rss)/1e6, float64(end.rss)/1e6)
	}
	// The state file's write-ahead log is folded into the file once it
	// passes 16 MB, whoever reads meanwhile (local.DB's endWrite).
	if fi, err := os.Stat(filepath.Join(st.dir, "socks.db-wal")); err == nil && fi.Size() > 32<<20 {
		t.Errorf("the state file's write-ahead log grew to %.1f MB", float64(fi.Size())/1e6)
	}
	if opened.Load() < int64(conns) || received.Load() == 0 {
		t.Errorf("the soak did too little to mean anything: %s", summary)
	}
}

// openFileKinds lists what a process's open file descriptors point to,
// with counts, for a failure message.
func openFileKinds(pid int) string {
	dir := fmt.Sprintf("/proc/%d/fd", pid)
	ents, err := os.ReadDir(dir)
	if err != nil {
		return err.Error()
	}
	kinds := map[string]int{}
	for _, e := range ents {
		target, err := os.Readlink(filepath.Join(dir, e.Name()))
		if err != nil {
			continue
		}
		if strings.HasPrefix(target, "socket:") {
			target = "socket"
		}
		kinds[target]++
	}
	return fmt.Sprint(kinds)
}

// waitNoRecords waits (bounded) until the state holds no connection
// record: every closed connection's record was removed.
func waitNoRecords(t *testing.T, st *stack) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		var listed []json.RawMessage
		r := st.run("subs", "list", "--json") // exits 3 when there are none
		out := r.stdout
		if err := json.Unmarshal([]byte(out), &listed); err != nil || (r.code != 0 && r.code != 3) {
			t.Fatalf("subs list --json: %v\n%s", err, r)
		}
		if len(listed) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d connection records left a minute after every client closed: %s", len(listed), out)
		}
		time.Sleep(500 * time.Millisecond)
	}
}
