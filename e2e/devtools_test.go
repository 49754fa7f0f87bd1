package e2e

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// artifactsEnv names a directory to keep the browser tests' screenshots
// in; without it they go to the test's temporary directory (the path is
// logged either way).
const artifactsEnv = "SOCKS_E2E_ARTIFACTS"

var devtoolsURL = regexp.MustCompile(`DevTools listening on (ws://\S+)`)

// devtools is a connection to chromium's DevTools protocol, attached to
// the page the browser was started with.
type devtools struct {
	ws      *websocket.Conn
	session string
	next    int
}

// devtools connects to the browser's DevTools endpoint (printed on its
// stderr) and attaches to its first page.
func (c *chromium) devtools(t *testing.T) *devtools {
	t.Helper()
	deadline := time.Now().Add(browserTimeout)
	var endpoint string
	for endpoint == "" {
		if m := devtoolsURL.FindStringSubmatch(c.stderr.String()); m != nil {
			endpoint = m[1]
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("chromium printed no DevTools endpoint within %s\n%s", browserTimeout, browserLog(c.stderr))
		}
		time.Sleep(50 * time.Millisecond)
	}
	ws, _, err := websocket.DefaultDialer.Dial(endpoint, nil)
	if err != nil {
		t.Fatalf("connecting to chromium's DevTools at %s: %v", endpoint, err)
	}
	t.Cleanup(func() { ws.Close() })
	d := &devtools{ws: ws}
	var targets struct {
		TargetInfos []struct {
			TargetID string `json:"targetId"`
			Type     string `json:"type"`
		} `json:"targetInfos"`
	}
	d.call(t, "Target.getTargets", nil, &targets)
	for _, ti := range targets.TargetInfos {
		if ti.Type == "page" {
			var attached struct {
				SessionID string `json:"sessionId"`
			}
			d.call(t, "Target.attachToTarget", map[string]any{"targetId": ti.TargetID, "flatten": true}, &attached)
			d.session = attached.SessionID
			return d
		}
	}
	t.Fatalf("chromium shows no page: %+v", targets)
	return nil
}

// call sends one DevTools command and decodes its result into out.
func (d *devtools) call(t *testing.T, method string, params any, out any) {
	t.Helper()
	d.next++
	msg := map[string]any{"id": d.next, "method": method}
	if params != nil {
		msg["params"] = params
	}
	if d.session != "" {
		msg["sessionId"] = d.session
	}
	_ = d.ws.SetWriteDeadline(time.Now().Add(receiveTimeout))
	if err := d.ws.WriteJSON(msg); err != nil {
		t.Fatalf("DevTools %s: %v", method, err)
	}
	_ = d.ws.SetReadDeadline(time.Now().Add(browserTimeout))
	for {
		var resp struct {
			ID     int             `json:"id"`
			Result json.RawMessage `json:"result"`
			Error  *struct {
				Message string `json:"message"`
			} `json:"error"`
		}
		if err := d.ws.ReadJSON(&resp); err != nil {
			t.Fatalf("DevTools %s: %v", method, err)
		}
		if resp.ID != d.next {
			continue // an event, or the answer to an abandoned call
		}
		if resp.Error != nil {
			t.Fatalf("DevTools %s: %s", method, resp.Error.Message)
		}
		if out != nil {
			if err := json.Unmarshal(resp.Result, out); err != nil {
				t.Fatalf("DevTools %s: %v in %s", method, err, resp.Result)
			}
		}
		return
	}
}

// eval evaluates a JavaScript expression in the page and returns its value
// as a string.
func (d *devtools) eval(t *testing.T, expr string) string {
	t.Helper()
	var r struct {
		Result struct {
			Value any `json:"value"`
		} `json:"result"`
	}
	d.call(t, "Runtime.evaluate", map[string]any{"expression": expr, "returnByValue": true}, &r)
	return fmt.Sprint(r.Result.Value)
}

// screenshot saves the page as NAME.png in the artifacts directory and
// logs where.
func (d *devtools) screenshot(t *testing.T, name string) {
	t.Helper()
	var shot struct {
		Data string `json:"data"`
	}
	d.call(t, "Page.captureScreenshot", map[string]any{"format": "png"}, &shot)
	png, err := base64.StdEncoding.DecodeString(shot.Data)
	if err != nil || len(png) == 0 {
		t.Fatalf("the screenshot is not base64 PNG data (%v)", err)
	}
	dir := os.Getenv(artifactsEnv)
	if dir == "" {
		dir = t.TempDir()
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, strings.NewReplacer("/", "-", " ", "_").Replace(t.Name()+"-"+name)+".png")
	if err := os.WriteFile(p, png, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot: %s (%d bytes; set %s to keep them)", p, len(png), artifactsEnv)
}

// waitEval evaluates expr in the page until it returns want, for at most d.
func (d *devtools) waitEval(t *testing.T, expr, want string, dur time.Duration) {
	t.Helper()
	deadline := time.Now().Add(dur)
	for {
		got := d.eval(t, expr)
		if got == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s is %q after %s; want %q", expr, got, dur, want)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// phone makes the page's viewport a phone's.
func (d *devtools) phone(t *testing.T) {
	t.Helper()
	d.call(t, "Emulation.setDeviceMetricsOverride", map[string]any{
		"width": 390, "height": 844, "deviceScaleFactor": 2, "mobile": true,
	}, nil)
}
