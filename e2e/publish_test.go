package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gorilla/websocket"
)

// TestPublishReachesExactlyTheAddressedClient is the whole path a site uses:
// serve, issue a chatter ID, connect like a browser, publish from another
// process, and only the addressed geek on the addressed topic receives it.
func TestPublishReachesExactlyTheAddressedClient(t *testing.T) {
	t.Parallel()
	s := newStack(t)
	srv := s.serve()

	alice := s.issue("alice")
	bob := s.issue("bob")

	aliceUpdates := mustDial(t, srv.connectURL("alice", alice, "updates"))
	bobUpdates := mustDial(t, srv.connectURL("bob", bob, "updates"))
	aliceNews := mustDial(t, srv.connectURL("alice", alice, "news"))

	rep := s.publishWait("--geek", "alice", "--topic", "updates", "--body", `{"n":1}`)
	if r := rep.Report; r.Targets != 1 || r.Delivered != 1 || r.Gone != 0 || r.Failed != 0 {
		t.Errorf("publish --wait reported %s; want targets=1 delivered=1", rep)
	}

	t.Run("alice on updates receives exactly the body", func(t *testing.T) {
		if got := readText(t, aliceUpdates); got != `{"n":1}` {
			t.Errorf("got %q; want %q", got, `{"n":1}`)
		}
	})
	// The broker already handled the message (publish --wait returned), so a
	// short silence proves that the others were not sent it.
	for _, tc := range []struct {
		name string
		conn *websocket.Conn
	}{
		{"bob on updates receives nothing", bobUpdates},
		{"alice on news receives nothing", aliceNews},
		{"alice on updates receives nothing more", aliceUpdates},
	} {
		// Not parallel: a parallel subtest may wait for a free slot longer
		// than the gateway's 60 s ping timeout, while nobody reads these
		// connections and answers the gateway's pings.
		t.Run(tc.name, func(t *testing.T) {
			expectSilence(t, tc.conn, silenceWindow)
		})
	}
}

// TestPublishedBodyArrivesAsGiven publishes the body in each way the CLI
// offers and checks what the browser-side client receives, byte for byte.
func TestPublishedBodyArrivesAsGiven(t *testing.T) {
	t.Parallel()
	s := newStack(t)
	srv := s.serve()
	conn := mustDial(t, srv.connectURL("carol", s.issue("carol"), "bodies"))

	dir := t.TempDir()
	writeFile := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	// A JSON string of exactly 128 KB: the most API Gateway delivers, sent
	// in several 32 KB frames.
	biggest := `"` + strings.Repeat("x", 128*1024-2) + `"`

	for _, tc := range []struct {
		name  string
		stdin string
		args  []string
		want  string
	}{
		{name: "a JSON object given with --body arrives as given", args: []string{"--body", `{"n":1,"s":"é"}`}, want: `{"n":1,"s":"é"}`},
		{name: "a spaced-out JSON body arrives compacted", args: []string{"--body", " {\n  \"n\" : [1, 2]\n} "}, want: `{"n":[1,2]}`},
		{name: "a --message arrives as a JSON string", args: []string{"--message", `stats "refreshed"`}, want: `"stats \"refreshed\""`},
		{name: "a --body-file arrives as its JSON", args: []string{"--body-file", writeFile("body.json", `{"from":"file"}`+"\n")}, want: `{"from":"file"}`},
		{name: "piped stdin arrives as its JSON", stdin: `{"from":"stdin"}`, want: `{"from":"stdin"}`},
		{name: "a body of exactly 128 KB arrives whole", args: []string{"--body-file", writeFile("big.json", biggest)}, want: biggest},
	} {
		t.Run(tc.name, func(t *testing.T) {
			args := append([]string{"publish", "--geek", "carol", "--topic", "bodies", "--wait", "--wait-timeout", "20s", "--json"}, tc.args...)
			var r result
			if tc.stdin != "" {
				r = s.runIn(strings.NewReader(tc.stdin), args...)
			} else {
				r = s.run(args...)
			}
			if r.code != 0 {
				t.Fatalf("want exit 0:\n%s", r)
			}
			if rep := parseReport(t, r); rep.Report.Delivered != 1 {
				t.Errorf("publish --wait reported %s; want delivered=1", rep)
			}
			if got := readText(t, conn); got != tc.want {
				if len(got) > 200 || len(tc.want) > 200 {
					t.Errorf("got %d bytes; want %d bytes", len(got), len(tc.want))
				} else {
					t.Errorf("got %q; want %q", got, tc.want)
				}
			}
		})
	}
}
