package e2e

import (
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// TestServeServesSocksJSWithCORS fetches what `socks serve` serves over
// plain HTTP, as curl would.
func TestServeServesSocksJSWithCORS(t *testing.T) {
	t.Parallel()
	s := newStack(t)
	srv := s.serve()
	gw := "http://" + strings.TrimSuffix(strings.TrimPrefix(srv.URL, "ws://"), "/")
	for _, name := range []string{"socks.js", "socks.d.ts"} {
		t.Run(name+" comes with Access-Control-Allow-Origin: *", func(t *testing.T) {
			resp, err := http.Get(gw + "/" + name)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			want, err := os.ReadFile(filepath.Join(moduleDir, "web", name))
			if err != nil {
				t.Fatal(err)
			}
			if resp.StatusCode != 200 || string(body) != string(want) {
				t.Errorf("status %d, %d bytes; want 200 and web/%s", resp.StatusCode, len(body), name)
			}
			if got := resp.Header.Get("Access-Control-Allow-Origin"); got != "*" {
				t.Errorf("Access-Control-Allow-Origin %q; want *", got)
			}
		})
	}
	t.Run("client-js writes the same files", func(t *testing.T) {
		dir := filepath.Join(t.TempDir(), "vendor")
		out := s.must("client-js", "--out", dir)
		for _, name := range []string{"socks.js", "socks.d.ts"} {
			if !strings.Contains(out, filepath.Join(dir, name)) {
				t.Errorf("client-js printed %q; want the path of %s", out, name)
			}
			got, err := os.ReadFile(filepath.Join(dir, name))
			want, _ := os.ReadFile(filepath.Join(moduleDir, "web", name))
			if err != nil || string(got) != string(want) {
				t.Errorf("%s: %v, %d bytes; want web/%s", name, err, len(got), name)
			}
		}
	})
	t.Run("a chatter ID is refused to another origin", func(t *testing.T) {
		for _, h := range []map[string]string{
			{"Origin": "http://127.0.0.1:1", "Sec-Fetch-Site": "same-site"},
			{"Origin": "https://evil.example", "Sec-Fetch-Site": "cross-site"},
			{}, // curl: no Origin
		} {
			req, _ := http.NewRequest("POST", gw+"/chatter-id", strings.NewReader(`{"geek":"erin"}`))
			req.Header.Set("Content-Type", "application/json")
			for k, v := range h {
				req.Header.Set(k, v)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusForbidden || strings.Contains(string(body), "sc_") {
				t.Errorf("with %v: status %d %q; want 403 and no ID", h, resp.StatusCode, body)
			}
		}
		// (An empty list exits 3 or 0, depending on the socks version.)
		if r := s.run("chatter", "list", "--geek", "erin", "--json"); (r.code != 0 && r.code != 3) || strings.Contains(r.stdout, "erin") {
			t.Errorf("a refused request recorded a chatter ID, or the list failed:\n%s", r)
		}
	})
}

// TestLivePage opens the page `socks serve` serves at / in headless
// chromium, the way a person would: it gets a short-lived chatter ID from
// its own gateway, connects, and shows a published message; then the same
// page is looked at on a phone-sized screen.
func TestLivePage(t *testing.T) {
	t.Parallel()
	findChromium(t)
	s := newStack(t)
	srv := s.serve()
	gw := "http://" + strings.TrimSuffix(strings.TrimPrefix(srv.URL, "ws://"), "/")
	browser := startChromium(t, gw+"/?geek=erin&topic=updates&connect=1", newEventLog())
	devtools := browser.devtools(t)

	devtools.waitEval(t, `document.getElementById("state").textContent`, "open", browserTimeout)
	if rep := s.publishWait("--geek", "erin", "--topic", "updates", "--message", "plays-updated"); rep.Report.Delivered != 1 {
		t.Errorf("publish --wait reported %s; want delivered=1", rep)
	}
	devtools.waitEval(t, `document.querySelector("#events li.message code").textContent`, "plays-updated", receiveTimeout)
	// A hostile body is shown as text, never parsed as HTML.
	hostile := `<img src=x onerror="document.title='pwned'"><script>document.title='pwned'</script>`
	s.publishWait("--geek", "erin", "--topic", "updates", "--message", hostile)
	devtools.waitEval(t, `document.querySelector("#events li.message code").textContent`, hostile, receiveTimeout)
	if got := devtools.eval(t, `document.querySelectorAll("#events img, #events script").length + " " + document.title`); got != "0 socks · live" {
		t.Errorf("a published body became markup in the page: elements and title %q", got)
	}
	devtools.screenshot(t, "desktop")

	// The gateway restarts after erin's chatter IDs were revoked, while
	// the geek field reads another name: the page asks for a fresh ID for
	// the geek it connected as, reconnects and shows open (in its colour).
	state := `document.getElementById("state")`
	devtools.eval(t, `document.getElementById("geek").value = "mallory"`)
	s.must("chatter", "revoke", "--geek", "erin", "--all")
	addr := strings.TrimSuffix(strings.TrimPrefix(srv.URL, "ws://"), "/")
	if code := srv.stop(); code != 0 {
		t.Errorf("serve exited %d; want 0", code)
	}
	s.serve("--addr", addr)
	devtools.waitEval(t, `document.querySelector("#events li.state code").textContent`, "resync: messages sent while disconnected are not replayed", browserTimeout)
	if got := devtools.eval(t, state+`.textContent + " " + `+state+`.dataset.state`); got != "open open" {
		t.Errorf("after the reconnect the state reads %q; want open, styled as open", got)
	}
	devtools.phone(t)
	if w := devtools.eval(t, `String(document.documentElement.scrollWidth <= window.innerWidth)`); w != "true" {
		t.Errorf("the page scrolls sideways on a phone-sized screen")
	}
	devtools.screenshot(t, "phone")
}

// TestLivePageConnectsWhenAllowOriginNamesOthers: `--allow-origin` names
// the user's own app; the live page the gateway serves itself still
// connects and shows what is published.
func TestLivePageConnectsWhenAllowOriginNamesOthers(t *testing.T) {
	t.Parallel()
	findChromium(t)
	s := newStack(t)
	srv := s.serve("--allow-origin", "https://app.example")
	gw := "http://" + strings.TrimSuffix(strings.TrimPrefix(srv.URL, "ws://"), "/")
	browser := startChromium(t, gw+"/?geek=erin&topic=updates&connect=1", newEventLog())
	devtools := browser.devtools(t)
	devtools.waitEval(t, `document.getElementById("state").textContent`, "open", browserTimeout)
	if rep := s.publishWait("--geek", "erin", "--topic", "updates", "--message", "allowed-too"); rep.Report.Delivered != 1 {
		t.Errorf("publish --wait reported %s; want delivered=1", rep)
	}
	devtools.waitEval(t, `document.querySelector("#events li.message code").textContent`, "allowed-too", receiveTimeout)
}

// TestLivePageGivesNoChatterIDToAnotherGateway opens the live page through
// a link that points it at another WebSocket server and connects at once,
// as a hostile page could: the page must not get a chatter ID from its
// gateway and send it there.
func TestLivePageGivesNoChatterIDToAnotherGateway(t *testing.T) {
	t.Parallel()
	findChromium(t)
	s := newStack(t)
	srv := s.serve()
	gw := "http://" + strings.TrimSuffix(strings.TrimPrefix(srv.URL, "ws://"), "/")
	var mu sync.Mutex
	var offered []string
	elsewhere := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		offered = append(offered, r.Header.Get("Sec-WebSocket-Protocol")+" "+r.URL.RawQuery)
		mu.Unlock()
		http.Error(w, "no", http.StatusForbidden)
	}))
	t.Cleanup(elsewhere.Close)
	q := url.Values{"geek": {"erin"}, "url": {"ws://" + strings.TrimPrefix(elsewhere.URL, "http://") + "/"}, "connect": {"1"}}
	browser := startChromium(t, gw+"/?"+q.Encode(), newEventLog())
	devtools := browser.devtools(t)

	devtools.waitEval(t, `document.querySelector("#events li.state code").textContent.startsWith("this page gets chatter IDs for its own gateway only")`, "true", browserTimeout)
	mu.Lock()
	defer mu.Unlock()
	for _, o := range offered {
		if strings.Contains(o, "sc_") {
			t.Errorf("the other server was offered a chatter ID (%d bytes of Sec-WebSocket-Protocol and query)", len(o))
		}
	}
	if r := s.run("chatter", "list", "--geek", "erin", "--json"); strings.Contains(r.stdout, "erin") {
		t.Errorf("the gateway issued erin a chatter ID:\n%s", r)
	}
}

// TestLivePageMasksAPastedChatterID pastes a chatter ID into the live page
// as a person would: the field shows dots, not the secret (a screen share
// or a screenshot must not show it), a "show" toggle reveals it and hides
// it again, and the page connects with the pasted ID without issuing one.
func TestLivePageMasksAPastedChatterID(t *testing.T) {
	t.Parallel()
	findChromium(t)
	s := newStack(t)
	srv := s.serve()
	gw := "http://" + strings.TrimSuffix(strings.TrimPrefix(srv.URL, "ws://"), "/")
	id := strings.TrimSpace(s.must("chatter", "issue", "--geek", "erin"))
	browser := startChromium(t, gw+"/?geek=erin&topic=updates", newEventLog())
	devtools := browser.devtools(t)

	field := `document.getElementById("chatter")`
	// The page's script has run (it fills in the gateway URL) and its
	// toggle's listener is there: the field is in the HTML before that.
	devtools.waitEval(t, `document.getElementById("url").value !== ""`, "true", browserTimeout)
	devtools.eval(t, field+`.focus()`)
	devtools.call(t, "Input.insertText", map[string]any{"text": id}, nil) // a paste
	if got := devtools.eval(t, field+`.value === `+strconv.Quote(id)); got != "true" {
		t.Fatalf("the pasted chatter ID is not in the field (%s)", got)
	}
	if got := devtools.eval(t, field+`.type`); got != "password" {
		t.Errorf("the chatter ID field is type %q; want password, so that the secret is not on screen", got)
	}
	if got := devtools.eval(t, `document.body.innerText.includes(`+strconv.Quote(id)+`)`); got != "false" {
		t.Errorf("the page's text shows the chatter ID")
	}
	toggle := `document.getElementById("show-chatter")`
	devtools.eval(t, toggle+`.click()`)
	if got := devtools.eval(t, field+`.type + " " + `+toggle+`.checked`); got != "text true" {
		t.Errorf("after show: field type and toggle %q; want text true", got)
	}
	devtools.eval(t, toggle+`.click()`)
	if got := devtools.eval(t, field+`.type`); got != "password" {
		t.Errorf("after hide: field type %q; want password", got)
	}
	devtools.eval(t, `document.getElementById("go").click()`)
	devtools.waitEval(t, `document.getElementById("state").textContent`, "open", browserTimeout)
	s.publishWait("--geek", "erin", "--topic", "updates", "--message", "plays-updated")
	devtools.waitEval(t, `document.querySelector("#events li.message code")?.textContent`, "plays-updated", receiveTimeout)
	if got := devtools.eval(t, field+`.type`); got != "password" {
		t.Errorf("connected: field type %q; want password", got)
	}
	if r := s.run("chatter", "list", "--geek", "erin", "--json"); strings.Count(r.stdout, `"fingerprint"`) != 1 {
		t.Errorf("want only the pasted chatter ID for erin, none issued by the page:\n%s", r)
	}
}

// TestLivePageSaysWhyAGeekAtItsLimitGetsNoChatterID: the gateway answers
// the page 429 for a geek already holding as many live chatter IDs as
// allowed (it was a 500), and the page shows that refusal in its words,
// with when a place frees up, since socks.js shows no getChatterId error.
func TestLivePageSaysWhyAGeekAtItsLimitGetsNoChatterID(t *testing.T) {
	t.Parallel()
	findChromium(t)
	s := newStack(t)
	srv := s.serve()
	for range 100 { // store.DefaultMaxLiveChatterIDs
		s.issue("full", "--ttl", "1h")
	}
	gw := "http://" + strings.TrimSuffix(strings.TrimPrefix(srv.URL, "ws://"), "/")
	browser := startChromium(t, gw+"/?geek=full&topic=updates&connect=1", newEventLog())
	devtools := browser.devtools(t)
	devtools.waitEval(t, `String([...document.querySelectorAll("#events li.state code")].some((c) => /^no chatter ID \(429\): geek full already holds 100 live chatter IDs.*revoke.*\(a place frees up in \d+ s\)$/.test(c.textContent)))`, "true", browserTimeout)
}
