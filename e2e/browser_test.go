package e2e

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/socks-dev/socks/internal/procgroup"
)

const (
	requireBrowserEnv = "SOCKS_E2E_REQUIRE_BROWSER"
	// chromiumEnv names another Chromium-based browser binary to use.
	chromiumEnv = "SOCKS_E2E_CHROMIUM"
	// browserTimeout bounds the browser's start and its first report; a
	// cold chromium on a small CI box takes a few seconds.
	browserTimeout = 45 * time.Second
)

// findChromium returns the browser binary, or skips (fails when
// SOCKS_E2E_REQUIRE_BROWSER=1) with the install hint.
func findChromium(t *testing.T) string {
	t.Helper()
	if p := os.Getenv(chromiumEnv); p != "" {
		return p
	}
	for _, name := range []string{"chromium", "chromium-browser"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if fileExists("/usr/bin/chromium") {
		return "/usr/bin/chromium"
	}
	msg := "chromium is not installed"
	if os.Getenv(requireBrowserEnv) == "1" {
		t.Fatalf("%s (%s=1 requires the browser test); install it with: apt-get install -y chromium", msg, requireBrowserEnv)
	}
	t.Skipf("%s; to run this test: apt-get install -y chromium (or set %s to a Chromium binary), and set %s=1 in CI so that it cannot skip", msg, chromiumEnv, requireBrowserEnv)
	return ""
}

// pageEvent is what the pages in testdata/browser POST back.
type pageEvent struct {
	Event    string `json:"event"`
	Data     string `json:"data"`
	DOM      string `json:"dom"`
	Code     int    `json:"code"`
	Reason   string `json:"reason"`
	WasClean bool   `json:"wasClean"`
	Error    string `json:"error"`
	// socks.html
	Client  string `json:"client"`
	State   string `json:"state"`
	Attempt int    `json:"attempt"`
	Delay   int    `json:"delay"`
	Key     string `json:"key"`
	OK      bool   `json:"ok"`
	Topics  string `json:"topics"`
}

// eventLog keeps every report of a page, in order, for waits that start
// from a mark.
type eventLog struct {
	mu      sync.Mutex
	evs     []pageEvent
	changed chan struct{}
}

func newEventLog() *eventLog { return &eventLog{changed: make(chan struct{})} }

func (l *eventLog) add(ev pageEvent) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.evs = append(l.evs, ev)
	close(l.changed)
	l.changed = make(chan struct{})
}

// mark is the position of the next report.
func (l *eventLog) mark() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.evs)
}

// since returns the reports from mark on, and a channel closed at the next.
func (l *eventLog) since(mark int) ([]pageEvent, <-chan struct{}) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]pageEvent(nil), l.evs[mark:]...), l.changed
}

// testSite serves the pages of testdata/browser on its own origin
// (127.0.0.1 and a port of its own) and collects their reports at /report.
func testSite(t *testing.T) (*httptest.Server, *eventLog) {
	t.Helper()
	log := newEventLog()
	mux := http.NewServeMux()
	for _, name := range []string{"index.html", "socks.html"} {
		page, err := os.ReadFile(filepath.Join(moduleDir, "testdata", "browser", name))
		if err != nil {
			t.Fatal(err)
		}
		mux.HandleFunc("GET /"+name, func(w http.ResponseWriter, r *http.Request) {
			// Not http.ServeFile: it redirects .../index.html to .../
			w.Header().Set("Content-Type", "text/html; charset=utf-8")
			w.Header().Set("Cache-Control", "no-store")
			_, _ = w.Write(page)
		})
	}
	mux.HandleFunc("POST /report", func(w http.ResponseWriter, r *http.Request) {
		var ev pageEvent
		if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<20)).Decode(&ev); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		log.add(ev)
		w.WriteHeader(http.StatusNoContent)
	})
	mux.HandleFunc("/", http.NotFound)
	site := httptest.NewServer(mux) // listens on 127.0.0.1
	t.Cleanup(site.Close)
	return site, log
}

// chromium is a headless browser showing one page.
type chromium struct {
	t      *testing.T
	cmd    *exec.Cmd
	stderr *syncBuffer
	exited chan struct{}
	log    *eventLog
}

// startChromium opens pageURL in headless chromium until the test ends;
// the page's reports go to log.
func startChromium(t *testing.T, pageURL string, log *eventLog) *chromium {
	t.Helper()
	bin := findChromium(t)
	stderr := newSyncBuffer()
	cmd := exec.Command(bin,
		"--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
		"--disable-background-networking", "--disable-extensions", "--disable-sync",
		"--no-first-run", "--no-default-browser-check", "--mute-audio",
		// A hidden page must not have its timers throttled.
		"--disable-background-timer-throttling", "--disable-renderer-backgrounding",
		"--window-size=900,1000",
		"--user-data-dir="+t.TempDir(), "--remote-debugging-port=0",
		"--enable-logging=stderr", "--v=0",
		pageURL)
	cmd.Env = append(os.Environ(), "HOME="+t.TempDir())
	cmd.Stdout, cmd.Stderr = stderr, stderr
	// Its own process group, so that the renderer and helper processes
	// end with it.
	procgroup.Own(cmd)
	cmd.WaitDelay = 2 * time.Second
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting %s: %v", bin, err)
	}
	c := &chromium{t: t, cmd: cmd, stderr: stderr, exited: make(chan struct{}), log: log}
	go func() {
		_ = cmd.Wait()
		close(c.exited)
	}()
	t.Cleanup(func() {
		procgroup.Kill(cmd.Process)
		select {
		case <-c.exited:
		case <-time.After(stopTimeout):
			t.Errorf("chromium (pid %d) did not exit after SIGKILL", cmd.Process.Pid)
		}
	})
	return c
}

// await waits at most d for a report from mark on that match accepts and
// returns it; a report of "error" fails the test.
func (c *chromium) await(t *testing.T, mark int, what string, d time.Duration, match func(pageEvent) bool) pageEvent {
	t.Helper()
	timer := time.NewTimer(d)
	defer timer.Stop()
	for {
		evs, changed := c.log.since(mark)
		for _, ev := range evs {
			if ev.Event == "error" {
				t.Fatalf("the page reported an error while waiting for %s: %+v", what, ev)
			}
			if match(ev) {
				return ev
			}
		}
		select {
		case <-changed:
		case <-c.exited:
			t.Fatalf("chromium exited before the page reported %s\nchromium output:\n%s", what, browserLog(c.stderr))
		case <-timer.C:
			t.Fatalf("the page did not report %s within %s; it reported:\n%s\nchromium output:\n%s", what, d, eventsString(evs), browserLog(c.stderr))
		}
	}
}

// awaitEvent waits for the first report of event from mark on.
func (c *chromium) awaitEvent(t *testing.T, mark int, event string, d time.Duration) pageEvent {
	t.Helper()
	return c.await(t, mark, fmt.Sprintf("%q", event), d, func(ev pageEvent) bool { return ev.Event == event })
}

func eventsString(evs []pageEvent) string {
	var b strings.Builder
	for _, ev := range evs {
		j, _ := json.Marshal(ev)
		b.Write(j)
		b.WriteByte('\n')
	}
	return b.String()
}

// TestBrowserClient opens testdata/browser/index.html in headless chromium:
// the browser's own WebSocket connects, receives a published message into
// the page, and sees the close frame when serve stops.
func TestBrowserClient(t *testing.T) {
	t.Parallel()
	findChromium(t)
	s := newStack(t)
	srv := s.serve()
	site, log := testSite(t)
	q := url.Values{
		"ws":     {srv.connectURL("erin", s.issue("erin"), "updates")},
		"report": {"/report"},
	}
	browser := startChromium(t, site.URL+"/index.html?"+q.Encode(), log)

	const body = `{"hello":"browser","n":1}`
	steps := []struct {
		name string
		run  func(t *testing.T)
	}{
		{"the page connects", func(t *testing.T) {
			browser.awaitEvent(t, 0, "connected", browserTimeout)
		}},
		{"a published message lands in the page", func(t *testing.T) {
			mark := log.mark()
			if rep := s.publishWait("--geek", "erin", "--topic", "updates", "--body", body); rep.Report.Delivered != 1 {
				t.Errorf("publish --wait reported %s; want delivered=1", rep)
			}
			ev := browser.awaitEvent(t, mark, "message", receiveTimeout)
			if ev.Data != body {
				t.Errorf("the page received %q; want %q", ev.Data, body)
			}
			if ev.DOM != body {
				t.Errorf("the page shows %q; want %q", ev.DOM, body)
			}
		}},
		{"stopping serve closes the page's socket with 1001", func(t *testing.T) {
			mark := log.mark()
			if code := srv.stop(); code != 0 {
				t.Errorf("serve exited %d; want 0", code)
			}
			ev := browser.awaitEvent(t, mark, "closed", receiveTimeout)
			if ev.Code != 1001 || !ev.WasClean {
				t.Errorf("the page saw close %d %q (clean: %v); want a clean 1001", ev.Code, ev.Reason, ev.WasClean)
			}
		}},
	}
	for _, step := range steps {
		if !t.Run(step.name, step.run) {
			break
		}
	}
}

// browserLog is chromium's output without the D-Bus noise of a machine
// without a session bus, at most its last 40 lines.
func browserLog(b *syncBuffer) string {
	var keep []string
	for _, line := range strings.Split(b.String(), "\n") {
		if !strings.Contains(line, "dbus") && strings.TrimSpace(line) != "" {
			keep = append(keep, line)
		}
	}
	if len(keep) > 40 {
		keep = keep[len(keep)-40:]
	}
	return strings.Join(keep, "\n")
}
