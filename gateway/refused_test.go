package gateway

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/socks-dev/socks/pubsub"
)

// syncBuffer is a bytes.Buffer a logger writes to from the server's
// goroutines while the test reads it.
type syncBuffer struct {
	mu  sync.Mutex
	b   bytes.Buffer // since the last lines
	all bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.all.Write(p)
	return s.b.Write(p)
}

// lines returns the lines written since the last call.
func (s *syncBuffer) lines() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	text := strings.TrimSpace(s.b.String())
	s.b.Reset()
	if text == "" {
		return nil
	}
	return strings.Split(text, "\n")
}

// TestRefusedConnectsAreLoggedAtInfoAFewAMinute: a developer whose page got
// 403 saw nothing on serve's terminal without -v. Each refused handshake
// is logged at Info with its status and reason (never the chatter ID), at
// most refusalBurst a minute by the gateway's clock; the rest are counted
// in one line when the next minute's first refusal comes, or at shutdown.
func TestRefusedConnectsAreLoggedAtInfoAFewAMinute(t *testing.T) {
	var mu sync.Mutex
	clock := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	now := func() time.Time {
		mu.Lock()
		defer mu.Unlock()
		return clock
	}
	advance := func(d time.Duration) {
		mu.Lock()
		clock = clock.Add(d)
		mu.Unlock()
	}
	var logs syncBuffer
	h := newFakeHandler()
	const reason = "chatter ID refused: unknown, revoked, issued for another geek, or expired and since deleted; issue a new one"
	h.connect = func(event) (response, error) {
		return response{StatusCode: http.StatusForbidden, Body: reason}, nil
	}
	g, addr := start(t, h, Options{
		Now:          now,
		AllowOrigins: []string{"https://app.example"},
		Logger:       slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelInfo})),
	})
	const secret = "xc_SecretThatMustNotBeLogged"
	refuse := func(header http.Header, want int) {
		t.Helper()
		ws, resp, err := dial(t, addr, "/", url.Values{"geek": {"alice"}, "id": {secret}}, header)
		if err == nil {
			ws.Close()
			t.Fatal("connected; want a refusal")
		}
		if resp == nil || resp.StatusCode != want {
			t.Fatalf("dial: %v; want status %d", err, want)
		}
	}

	refuse(nil, http.StatusForbidden)
	got := logs.lines()
	if len(got) != 1 || !strings.Contains(got[0], "level=INFO") || !strings.Contains(got[0], "status=403") || !strings.Contains(got[0], reason) {
		t.Fatalf("after one refusal the log is %q; want one Info line with status=403 and the reason", got)
	}
	// The origin, which the answer does not echo, is what the operator
	// needs to allow it.
	refuse(http.Header{"Origin": {"https://other.example"}}, http.StatusForbidden)
	got = logs.lines()
	if len(got) != 1 || !strings.Contains(got[0], "status=403") || !strings.Contains(got[0], "origin=https://other.example") || !strings.Contains(got[0], "--allow-origin") {
		t.Fatalf("after a refused origin the log is %q; want one line with status=403, the origin and --allow-origin", got)
	}
	for range refusalBurst + 2 {
		refuse(nil, http.StatusForbidden)
	}
	if got = logs.lines(); len(got) != refusalBurst-2 {
		t.Fatalf("%d more refusals in the first minute logged %q; want %d lines, %d in all that minute", refusalBurst+2, got, refusalBurst-2, refusalBurst)
	}
	advance(refusalWindow - time.Second)
	refuse(nil, http.StatusForbidden)
	if got = logs.lines(); len(got) != 0 {
		t.Fatalf("a refusal still in the first minute logged %q; want nothing", got)
	}
	advance(time.Second)
	refuse(nil, http.StatusForbidden)
	got = logs.lines()
	if len(got) != 2 || !strings.Contains(got[0], "count=5") || !strings.Contains(got[1], "status=403") {
		t.Fatalf("the first refusal of the next minute logged %q; want a count of the 5 not logged, then it", got)
	}
	// Those not logged when the gateway stops are counted then.
	for range refusalBurst + 3 {
		refuse(nil, http.StatusForbidden)
	}
	logs.lines()
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	if err := g.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	got = logs.lines()
	if len(got) != 1 || !strings.Contains(got[0], "count=4") {
		t.Fatalf("at shutdown the log is %q; want one line counting the 4 refusals not logged", got)
	}
	logs.mu.Lock()
	all := logs.all.String()
	logs.mu.Unlock()
	if strings.Contains(all, secret) {
		t.Fatalf("the log holds the chatter ID: %s", all)
	}
}

// A handshake whose $connect is still running when the gateway stops, and
// refuses after the minute's lines are used up, is counted in the line
// written at shutdown: the count was written first thing and such a
// refusal was lost.
func TestARefusalDuringShutdownIsCounted(t *testing.T) {
	clock := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	var logs syncBuffer
	h := newFakeHandler()
	entered := make(chan struct{}, 1)
	release := make(chan struct{})
	var hold sync.Once
	h.connect = func(event) (response, error) {
		held := false
		hold.Do(func() { held = true })
		if held {
			entered <- struct{}{}
			<-release
		}
		return response{StatusCode: http.StatusForbidden, Body: "refused"}, nil
	}
	g, addr := start(t, h, Options{
		Now:    func() time.Time { return clock },
		Logger: slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelInfo})),
	})
	// The first handshake is held in $connect; the burst is then used up.
	heldDone := make(chan struct{})
	go func() {
		defer close(heldDone)
		if ws, _, err := dial(t, addr, "/", url.Values{"geek": {"alice"}}, nil); err == nil {
			ws.Close()
		}
	}()
	<-entered
	for range refusalBurst {
		if ws, _, err := dial(t, addr, "/", url.Values{"geek": {"alice"}}, nil); err == nil {
			ws.Close()
			t.Fatal("connected; want a refusal")
		}
	}
	logs.lines()
	shutDown := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), wait)
		defer cancel()
		shutDown <- g.Shutdown(ctx)
	}()
	// Shutdown has begun once the listener is closed.
	deadline := time.Now().Add(wait)
	for {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			break
		}
		c.Close()
		if time.Now().After(deadline) {
			t.Fatal("the listener is still open")
		}
		runtime.Gosched()
	}
	close(release)
	<-heldDone
	if err := <-shutDown; err != nil {
		t.Fatal(err)
	}
	got := logs.lines()
	if len(got) != 1 || !strings.Contains(got[0], "count=1") {
		t.Fatalf("at shutdown the log is %q; want one line counting the refusal made during it", got)
	}
}

// TestARefusalsLogHoldsNoChatterID: a refusal's reason quotes the bad
// ?geek= or ?topic= it was given, and was logged whole: a chatter ID
// pasted into ?geek= by mistake (with the space or newline a paste
// brings) was written to serve's log. The log shows each quoted value
// cut short (16 characters at Info, 24 with -v, fewer than a chatter
// ID's 32 random ones), and a value shaped like a chatter ID as
// sc_(hidden), whatever the level; the answer still says it whole to the
// client that sent it.
func TestARefusalsLogHoldsNoChatterID(t *testing.T) {
	id := pubsub.NewChatterID()
	body := strings.TrimPrefix(id, "sc_")
	for _, tc := range []struct {
		name, geek, topic string
		want              string // in the logged reason
	}{
		{"a chatter ID pasted into ?geek= with a space", id + " ", "", `geek "sc_(hidden) " contains whitespace`},
		{"a chatter ID pasted into ?topic=", "alice", "news,x" + id + "#", `contains '#'`},
		{"a chatter ID's random part in ?geek=", body + "\n", "", `contains the control character`},
		{"a long name", "alice " + strings.Repeat("b", 100), "", `bbbbbbbbbb…" contains whitespace`},
	} {
		for _, verbose := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s, -v %v", tc.name, verbose), func(t *testing.T) {
				var logs syncBuffer
				level := slog.LevelInfo
				if verbose {
					level = slog.LevelDebug
				}
				h := newFakeHandler()
				var answer string
				h.connect = func(e event) (response, error) {
					q := e.QueryStringParameters
					err := pubsub.ValidateGeek(q["geek"])
					if err == nil {
						_, err = pubsub.SplitTopics(q["topic"])
					}
					if err == nil {
						t.Fatalf("geek %q topic %q are valid", q["geek"], q["topic"])
					}
					answer = err.Error()
					return response{StatusCode: http.StatusBadRequest, Body: answer}, nil
				}
				_, addr := start(t, h, Options{Logger: slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: level}))})
				q := url.Values{"geek": {tc.geek}, "id": {"sc_x"}}
				if tc.topic != "" {
					q.Set("topic", tc.topic)
				}
				if ws, _, err := dial(t, addr, "/", q, nil); err == nil {
					ws.Close()
					t.Fatal("connected; want a refusal")
				}
				var line string
				for _, l := range logs.lines() {
					if strings.Contains(l, "connect refused") {
						line = l
					}
				}
				if line == "" {
					t.Fatalf("no refusal logged; the answer was %q", answer)
				}
				if strings.Contains(line, id) || strings.Contains(line, body[:25]) || strings.Contains(line, strings.Repeat("b", 25)) {
					t.Fatalf("the log holds the chatter ID, or most of it: %s", line)
				}
				if want := strconv.Quote(tc.want); !strings.Contains(line, want[1:len(want)-1]) {
					t.Errorf("logged %s; want the reason, shortened, to hold %s", line, tc.want)
				}
			})
		}
	}
}

// TestAFailedConnectsLogHoldsNoChatterID: a $connect handler's error (the
// store failed) names the geek it was given, which may be a chatter ID
// pasted into ?geek= by mistake: a valid name. The gateway logged it
// whole at Warn. Its log writes anything shaped like a chatter ID
// sc_(hidden), as it does in a refusal's reason.
func TestAFailedConnectsLogHoldsNoChatterID(t *testing.T) {
	id := pubsub.NewChatterID()
	var logs syncBuffer
	h := newFakeHandler()
	h.connect = func(e event) (response, error) {
		return response{}, fmt.Errorf("admitting connection %s of %s: the disk failed", e.RequestContext.ConnectionID, e.QueryStringParameters["geek"])
	}
	_, addr := start(t, h, Options{Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	if ws, _, err := dial(t, addr, "/", url.Values{"geek": {id}, "id": {"sc_x"}}, nil); err == nil {
		ws.Close()
		t.Fatal("connected; want a failure")
	}
	// The line is written before the answer.
	var line string
	all := logs.lines()
	for _, l := range all {
		if strings.Contains(l, "$connect handler failed") {
			line = l
		}
	}
	if line == "" || !strings.Contains(line, "of sc_(hidden): the disk failed") {
		t.Errorf("logged %q; want the failure with the geek written sc_(hidden)", all)
	}
	if strings.Contains(line, id[3:23]) {
		t.Fatalf("the log holds the chatter ID: %s", line)
	}
}
