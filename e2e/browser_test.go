package e2e

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
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

// pageEvent is what testdata/browser/index.html POSTs back.
type pageEvent struct {
	Event    string `json:"event"`
	Data     string `json:"data"`
	DOM      string `json:"dom"`
	Code     int    `json:"code"`
	Reason   string `json:"reason"`
	WasClean bool   `json:"wasClean"`
	Error    string `json:"error"`
}

// TestBrowserClient opens testdata/browser/index.html in headless chromium:
// the browser's own WebSocket connects, receives a published message into
// the page, and sees the close frame when serve stops.
func TestBrowserClient(t *testing.T) {
	t.Parallel()
	chromium := findChromium(t)
	s := newStack(t)
	srv := s.serve()

	events := make(chan pageEvent, 64)
	page, err := os.ReadFile(filepath.Join(moduleDir, "testdata", "browser", "index.html"))
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /index.html", func(w http.ResponseWriter, r *http.Request) {
		// Not http.ServeFile: it redirects .../index.html to .../
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Header().Set("Cache-Control", "no-store")
		_, _ = w.Write(page)
	})
	mux.HandleFunc("POST /report", func(w http.ResponseWriter, r *http.Request) {
		var ev pageEvent
		if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<20)).Decode(&ev); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		select {
		case events <- ev:
		default:
		}
		w.WriteHeader(http.StatusNoContent)
	})
	mux.HandleFunc("/", http.NotFound)
	site := httptest.NewServer(mux) // listens on 127.0.0.1
	t.Cleanup(site.Close)

	q := url.Values{
		"ws":     {srv.connectURL("erin", s.issue("erin"), "updates")},
		"report": {"/report"},
	}
	stderr := newSyncBuffer()
	cmd := exec.Command(chromium,
		"--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
		"--disable-background-networking", "--disable-extensions", "--disable-sync",
		"--no-first-run", "--no-default-browser-check", "--mute-audio",
		"--user-data-dir="+t.TempDir(), "--remote-debugging-port=0",
		"--enable-logging=stderr", "--v=0",
		site.URL+"/index.html?"+q.Encode())
	cmd.Env = append(os.Environ(), "HOME="+t.TempDir())
	cmd.Stdout, cmd.Stderr = stderr, stderr
	// Its own process group, so that the renderer and helper processes
	// end with it.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.WaitDelay = 2 * time.Second
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting %s: %v", chromium, err)
	}
	exited := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(exited)
	}()
	t.Cleanup(func() {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		select {
		case <-exited:
		case <-time.After(stopTimeout):
			t.Errorf("chromium (pid %d) did not exit after SIGKILL", cmd.Process.Pid)
		}
	})

	await := func(t *testing.T, want string, d time.Duration) pageEvent {
		t.Helper()
		timer := time.NewTimer(d)
		defer timer.Stop()
		for {
			select {
			case ev := <-events:
				t.Logf("page reported %+v", ev)
				if ev.Event == want {
					return ev
				}
				if ev.Event == "error" {
					t.Fatalf("the page reported an error while waiting for %q: %+v", want, ev)
				}
			case <-exited:
				t.Fatalf("chromium exited before the page reported %q\nchromium output:\n%s", want, browserLog(stderr))
			case <-timer.C:
				t.Fatalf("the page did not report %q within %s\nchromium output:\n%s", want, d, browserLog(stderr))
			}
		}
	}

	const body = `{"hello":"browser","n":1}`
	steps := []struct {
		name string
		run  func(t *testing.T)
	}{
		{"the page connects", func(t *testing.T) {
			await(t, "connected", browserTimeout)
		}},
		{"a published message lands in the page", func(t *testing.T) {
			if rep := s.publishWait("--geek", "erin", "--topic", "updates", "--body", body); rep.Report.Delivered != 1 {
				t.Errorf("publish --wait reported %s; want delivered=1", rep)
			}
			ev := await(t, "message", receiveTimeout)
			if ev.Data != body {
				t.Errorf("the page received %q; want %q", ev.Data, body)
			}
			if ev.DOM != body {
				t.Errorf("the page shows %q; want %q", ev.DOM, body)
			}
		}},
		{"stopping serve closes the page's socket with 1001", func(t *testing.T) {
			if code := srv.stop(); code != 0 {
				t.Errorf("serve exited %d; want 0", code)
			}
			ev := await(t, "closed", receiveTimeout)
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
