package e2e

import (
	"encoding/json"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// TestMakeDemoIsTheREADMEsFirstCommand runs `make demo` exactly as the
// README tells a newcomer to, from the module root, and checks that the
// demo says who received what and that everything behaved.
func TestMakeDemoIsTheREADMEsFirstCommand(t *testing.T) {
	t.Parallel()
	if _, err := exec.LookPath("make"); err != nil {
		t.Fatalf("make is not installed: the README's first command needs it (%v)", err)
	}
	ctx := testContext(t, 3*time.Minute)
	cmd := exec.CommandContext(ctx, "make", "-s", "demo")
	cmd.Dir = moduleDir
	cmd.Env = socksEnv(t.TempDir())
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("make demo: %v\n%s", err, out)
	}
	for _, want := range []string{
		"#1 to alice on updates\talice (updates)\treceived\tok",
		"#1 to alice on updates\tbob (updates)\tnot received\tok",
		"#2 to every subscriber of news\tcarol (news)\treceived\tok",
		"forged chatter ID\tmallory\trefused (403)\tok",
	} {
		if !strings.Contains(string(out), want) {
			t.Errorf("make demo output lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(string(out), "FAIL") {
		t.Errorf("make demo reported a failure:\n%s", out)
	}
	lines := strings.Split(strings.TrimRight(string(out), "\n"), "\n")
	if last := lines[len(lines)-1]; !strings.HasPrefix(last, "ok: everything behaved") {
		t.Errorf("piped, the demo's last line is %q; want a one-line verdict starting %q", last, "ok: everything behaved")
	}
}

func TestDemoJSONSaysOK(t *testing.T) {
	t.Parallel()
	r := runSocks(t, nil, "demo", "--json")
	if r.code != 0 {
		t.Fatalf("socks demo --json: %s", r)
	}
	var out struct {
		OK       bool                         `json:"ok"`
		Refused  bool                         `json:"forgedChatterIdRefused"`
		Received map[string][]json.RawMessage `json:"received"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &out); err != nil {
		t.Fatalf("demo --json is not JSON: %v\n%s", err, r.stdout)
	}
	if !out.OK || !out.Refused || len(out.Received["alice"]) != 1 || len(out.Received["bob"]) != 0 || len(out.Received["carol"]) != 1 {
		t.Fatalf("demo --json = %+v", out)
	}
}
