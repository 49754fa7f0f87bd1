package e2e

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/socks-dev/socks/backend"
	"github.com/socks-dev/socks/broker"
	"github.com/socks-dev/socks/local"
	"github.com/socks-dev/socks/ops/opstest"
	"github.com/socks-dev/socks/pubsub"
	"github.com/socks-dev/socks/store"
)

// openState opens the stack's state file in this process, as a second
// user of the file next to the socks processes, for seeding what the CLI
// cannot make (records of dead connections, dead letters). It is closed
// when the test ends.
func (s *stack) openState() *local.DB {
	s.t.Helper()
	db, err := local.Open(testContext(s.t, commandTimeout), filepath.Join(s.dir, "socks.db"), local.Options{})
	if err != nil {
		s.t.Fatalf("opening the state file: %v", err)
	}
	s.t.Cleanup(func() { db.Close() })
	return db
}

// managementURL is the Management API endpoint the running gateway
// recorded.
func managementURL(t *testing.T, db *local.DB) string {
	t.Helper()
	mgmt, ok, err := db.GetMeta(testContext(t, commandTimeout), backend.MetaGatewayManagement)
	if err != nil || !ok {
		t.Fatalf("no gateway recorded in the state file (%v)", err)
	}
	return mgmt
}

// pruneSummary is what `socks prune-stale --json` prints.
type pruneSummary struct {
	DryRun  bool `json:"dryRun"`
	Checked int  `json:"checked"`
	Deleted struct {
		TooOld  int `json:"tooOld"`
		Expired int `json:"expired"`
		Gone    int `json:"gone"`
	} `json:"deleted"`
	DeletedTotal int      `json:"deletedTotal"`
	Vanished     int      `json:"vanished"`
	Kept         int      `json:"kept"`
	Unchecked    int      `json:"unchecked"`
	Errors       int      `json:"errors"`
	ErrorSamples []string `json:"errorSamples"`
	ChatterIDs   int      `json:"chatterIdsDeleted"`
}

func parsePrune(t *testing.T, r result) pruneSummary {
	t.Helper()
	var p pruneSummary
	if err := json.Unmarshal([]byte(r.stdout), &p); err != nil {
		t.Fatalf("prune-stale --json printed no summary (%v):\n%s", err, r)
	}
	return p
}

// seedDead writes records of dead connections: tooOld connected 3 h ago,
// expired ones (TTL lag), and gone ones the gateway never knew, connected
// 10 minutes before the time it returns (that of the seeding).
//
// The past expiries are over five years ago: DynamoDB Local's TTL sweeper
// (every 10 s) deletes expired items at any moment, which would make the
// counts of doctor and prune-stale fall short, but TTL leaves alone what
// expired over five years ago.
func seedDead(t *testing.T, st store.Store, tooOld, expired, gone int) (now time.Time) {
	t.Helper()
	ctx := testContext(t, 2*time.Minute)
	now = time.Now()
	longAgo := now.AddDate(-6, 0, 0)
	for i := range tooOld + expired + gone {
		c := pubsub.Connection{ID: fmt.Sprintf("dead-%04d=", i), Geek: fmt.Sprintf("ghost%d", i%7), Topics: []string{"updates"}}
		switch {
		case i < tooOld:
			c.ConnectedAt, c.ExpiresAt = now.Add(-3*time.Hour), longAgo
		case i < tooOld+expired:
			c.ConnectedAt, c.ExpiresAt = now.Add(-30*time.Minute), longAgo
		default:
			c.ConnectedAt, c.ExpiresAt = now.Add(-10*time.Minute), now.Add(110*time.Minute)
		}
		if err := st.PutConnection(ctx, c); err != nil {
			t.Fatalf("seeding %s: %v", c.ID, err)
		}
	}
	return now
}

// TestPruneSuiteAgainstARealGateway runs ops.Prune's acceptance suite on
// the state file of a running `socks serve`, with real WebSocket clients
// as the live connections and the gateway's Management API as the pusher.
func TestPruneSuiteAgainstARealGateway(t *testing.T) {
	t.Parallel()
	s := newStack(t)
	srv := s.serve()
	chatterID := s.issue("live")
	db := s.openState()
	opstest.RunPrune(t, opstest.PruneHarness{
		Store:     db.Store(),
		Pusher:    backend.LocalPusher(managementURL(t, db), 8),
		Total:     1000,
		LiveCount: 20,
		Live: func(t *testing.T, n int) []string {
			for range n {
				mustDial(t, srv.connectURL("live", chatterID, "updates"))
			}
			var ids []string
			err := db.Store().ListConnections(testContext(t, commandTimeout), store.ConnectionFilter{Geek: "live"}, time.Now(), func(page []pubsub.Connection) error {
				for _, c := range page {
					ids = append(ids, c.ID)
				}
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			return ids
		},
	})
}

// TestPruneStaleFromTheCommandLine seeds 1,000 records next to live
// clients and drives `socks prune-stale` as cron would: a dry run, then two
// runs at once.
func TestPruneStaleFromTheCommandLine(t *testing.T) {
	t.Parallel()
	const live, tooOld, expired, gone = 10, 300, 190, 500
	s := newStack(t)
	srv := s.serve()
	chatterID := s.issue("alice")
	clients := make([]*websocket.Conn, live)
	for i := range clients {
		clients[i] = mustDial(t, srv.connectURL("alice", chatterID, "updates"))
	}
	seedDead(t, s.openState().Store(), tooOld, expired, gone)

	t.Run("a dry run reports every dead record and deletes nothing", func(t *testing.T) {
		r := s.run("prune-stale", "--dry-run", "--json")
		if r.code != 0 || r.stderr != "" {
			t.Fatalf("want exit 0 and a quiet stderr:\n%s", r)
		}
		p := parsePrune(t, r)
		if !p.DryRun || p.Checked != 1000 || p.Deleted.TooOld != tooOld || p.Deleted.Expired != expired || p.Deleted.Gone != gone || p.Kept != live || p.Errors != 0 {
			t.Errorf("dry run reported %+v", p)
		}
		stats := s.run("subs", "stats", "--json")
		if !strings.Contains(stats.stdout, fmt.Sprintf(`"connections":%d,`, live+gone)) {
			t.Errorf("after a dry run subs stats says %s; want %d open records", stats.stdout, live+gone)
		}
	})

	t.Run("two runs at once delete exactly the dead records and keep the live ones", func(t *testing.T) {
		runs := []*proc{
			start(t, "prune-stale", "--json", "--state-dir", s.dir),
			start(t, "prune-stale", "--json", "--state-dir", s.dir),
		}
		var sum pruneSummary
		for i, p := range runs {
			r := p.result()
			if r.code != 0 || r.stderr != "" {
				t.Errorf("run %d: want exit 0 and a quiet stderr:\n%s", i+1, r)
				continue
			}
			got := parsePrune(t, r)
			if got.Errors != 0 || got.Kept != live {
				t.Errorf("run %d reported %+v; want no errors and %d kept", i+1, got, live)
			}
			sum.Deleted.TooOld += got.Deleted.TooOld
			sum.Deleted.Expired += got.Deleted.Expired
			sum.Deleted.Gone += got.Deleted.Gone
		}
		if sum.Deleted.TooOld != tooOld || sum.Deleted.Expired != expired || sum.Deleted.Gone != gone {
			t.Errorf("the runs deleted %+v between them; want too old %d, expired %d, gone %d", sum.Deleted, tooOld, expired, gone)
		}
	})

	t.Run("only the live connections are listed afterwards", func(t *testing.T) {
		r := s.run("subs", "list", "--json")
		var listed []struct {
			Geek string `json:"geek"`
		}
		if err := json.Unmarshal([]byte(r.stdout), &listed); err != nil {
			t.Fatalf("%v\n%s", err, r)
		}
		if len(listed) != live {
			t.Errorf("%d connections listed; want the %d live ones", len(listed), live)
		}
		for _, l := range listed {
			if l.Geek != "alice" {
				t.Errorf("a record of %s survived", l.Geek)
			}
		}
		again := parsePrune(t, s.run("prune-stale", "--json"))
		if again.DeletedTotal != 0 || again.Kept != live {
			t.Errorf("a third run reported %+v; want nothing deleted", again)
		}
	})

	t.Run("the live clients still receive messages", func(t *testing.T) {
		rep := s.publishWait("--geek", "alice", "--topic", "updates", "--message", "still here")
		if rep.Report.Delivered != live {
			t.Errorf("publish reported %s; want %d delivered", rep, live)
		}
		for _, c := range clients {
			if got := readText(t, c); got != `"still here"` {
				t.Errorf("got %q", got)
			}
		}
	})
}

// TestPruneStaleWithoutAGateway keeps what it cannot check and says so.
func TestPruneStaleWithoutAGateway(t *testing.T) {
	t.Parallel()
	s := newStack(t)
	s.issue("alice")
	seedDead(t, s.openState().Store(), 3, 2, 4)
	r := s.run("prune-stale")
	if r.code != 0 {
		t.Fatalf("want exit 0:\n%s", r)
	}
	want := "checked=9 deleted=5 too_old=3 expired=2 gone=0 vanished=0 kept=0 unchecked=4 errors=0 chatter_ids=0 dead_letters=0\n"
	if r.stdout != want {
		t.Errorf("stdout %q; want %q", r.stdout, want)
	}
	if !strings.Contains(r.stderr, "no local gateway is running, so 4 records younger than 2h0m0s could not be checked and were kept; start `socks serve`") {
		t.Errorf("stderr %q; want the note about unchecked records", r.stderr)
	}
}

// TestDoctorNamesEachProblem runs `socks doctor` on a healthy stack, then
// with the gateway killed, then with the recorded endpoint answering 403
// and 404.
func TestDoctorNamesEachProblem(t *testing.T) {
	t.Parallel()
	s := newStack(t)
	srv := s.serve()
	s.issue("alice")

	t.Run("a healthy stack exits 0", func(t *testing.T) {
		r := s.run("doctor")
		if r.code != 0 || strings.Contains(r.stdout, "fail\t") {
			t.Errorf("want exit 0 and no failed check:\n%s", r)
		}
		if !strings.Contains(r.stdout, "ok\tmanagement API\t") || !strings.Contains(r.stdout, "ok\tlocal gateway\t") {
			t.Errorf("the gateway checks did not pass:\n%s", r.stdout)
		}
	})

	srv.kill()
	t.Run("a killed gateway is named with its fix", func(t *testing.T) {
		r := s.run("doctor")
		if r.code != 1 {
			t.Errorf("exit %d; want 1\n%s", r.code, r)
		}
		for _, want := range []string{"fail\tlocal gateway\t", "fail\tmanagement API\t", "the gateway is down", "socks serve"} {
			if !strings.Contains(r.stdout, want) {
				t.Errorf("output does not say %q:\n%s", want, r.stdout)
			}
		}
		if !strings.HasPrefix(r.stderr, "socks: doctor found 2 problems") {
			t.Errorf("stderr %q", r.stderr)
		}
	})

	db := s.openState()
	// The answers below are the recorded gateway's: they carry its run
	// ID, as the doctor takes no other's.
	id, _, err := db.GetMeta(testContext(t, commandTimeout), backend.MetaGatewayID)
	if err != nil || id == "" {
		t.Fatalf("the gateway's run ID: %q, %v; want the one serve recorded", id, err)
	}
	for _, tc := range []struct {
		status int
		says   []string
	}{
		{http.StatusForbidden, []string{"403 Forbidden", "stage", "credentials", "execute-api:ManageConnections"}},
		{http.StatusNotFound, []string{"404 Not Found", "no Management API at that host and path", "check the host and path"}},
	} {
		t.Run(fmt.Sprintf("an endpoint answering %d is explained", tc.status), func(t *testing.T) {
			api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set(pubsub.GatewayIDHeader, id)
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(tc.status)
				_, _ = w.Write([]byte(`{"message":"nope"}`))
			}))
			defer api.Close()
			if err := db.SetMeta(testContext(t, commandTimeout), backend.MetaGatewayManagement, api.URL); err != nil {
				t.Fatal(err)
			}
			r := s.run("doctor", "--json")
			if r.code != 1 {
				t.Errorf("exit %d; want 1\n%s", r.code, r)
			}
			var rep struct {
				OK     bool `json:"ok"`
				Checks []struct {
					Name, Status, Detail, Fix string
				} `json:"checks"`
			}
			if err := json.Unmarshal([]byte(r.stdout), &rep); err != nil {
				t.Fatalf("%v\n%s", err, r)
			}
			for _, c := range rep.Checks {
				if c.Name != "management API" {
					continue
				}
				text := c.Detail + " " + c.Fix
				if c.Status != "fail" {
					t.Errorf("management API check is %s; want fail", c.Status)
				}
				for _, w := range tc.says {
					if !strings.Contains(text, w) {
						t.Errorf("%q does not say %q", text, w)
					}
				}
			}
		})
	}
	// Another program at the killed serve's address, answering as a
	// Management API (410) without the run ID serve recorded.
	t.Run("another program at the gateway's address is not taken for it", func(t *testing.T) {
		stranger := opstest.APIServer(t, http.StatusGone, "GoneException")
		if err := db.SetMeta(testContext(t, commandTimeout), backend.MetaGatewayManagement, stranger); err != nil {
			t.Fatal(err)
		}
		r := s.run("doctor")
		if r.code != 1 {
			t.Errorf("exit %d; want 1\n%s", r.code, r)
		}
		for _, want := range []string{"fail\tlocal gateway\t", "warn\tmanagement API\twhat answers at " + stranger + " is not this state dir's `socks serve`", "another program may have taken its port", "start `socks serve` again"} {
			if !strings.Contains(r.stdout, want) {
				t.Errorf("output does not say %q:\n%s", want, r.stdout)
			}
		}
	})
}

// TestDeadLetterRedriveDelivers dead-letters a valid envelope (as the
// broker does after repeated failures), shows it with its reason, and
// redrives it to a running broker, which delivers it to a connected client.
func TestDeadLetterRedriveDelivers(t *testing.T) {
	t.Parallel()
	s := newStack(t)
	chatterID := s.issue("alice")
	const reason = "failed 5 times; last error: PostToConnection: connection refused"
	deadLetter := func(body string) string {
		t.Helper()
		db, err := local.Open(testContext(t, commandTimeout), filepath.Join(s.dir, "socks.db"), local.Options{})
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		ctx := testContext(t, commandTimeout)
		q := db.Queue()
		if _, err := q.Send(ctx, []byte(body)); err != nil {
			t.Fatal(err)
		}
		msgs, err := q.Receive(ctx, 1, time.Minute, time.Second)
		if err != nil || len(msgs) != 1 {
			t.Fatalf("receiving the message to dead-letter: %v %v", msgs, err)
		}
		if err := q.DeadLetter(ctx, msgs[0], reason); err != nil {
			t.Fatal(err)
		}
		return msgs[0].ID
	}
	id := deadLetter(`{"id":"job-42","users":["alice"],"topics":["jobs"],"body":{"job":42,"done":true}}`)

	t.Run("list shows the failure reason", func(t *testing.T) {
		r := s.run("dlq", "list")
		if r.code != 0 || !strings.Contains(r.stdout, id+"\t") || !strings.Contains(r.stdout, "\t"+reason+"\n") {
			t.Errorf("want the dead letter and its reason:\n%s", r)
		}
	})
	t.Run("show prints the body", func(t *testing.T) {
		r := s.run("dlq", "show", id, "--json")
		var got struct {
			Reason string          `json:"reason"`
			Body   json.RawMessage `json:"body"`
		}
		if err := json.Unmarshal([]byte(r.stdout), &got); err != nil || got.Reason != reason || !strings.Contains(string(got.Body), `"done":true`) {
			t.Errorf("got %+v (%v)\n%s", got, err, r)
		}
	})

	srv := s.serve()
	conn := mustDial(t, srv.connectURL("alice", chatterID, "jobs"))
	t.Run("redrive gets it delivered", func(t *testing.T) {
		r := s.run("dlq", "redrive", id)
		if r.code != 0 || r.stdout != "redrove 1 dead letter onto the queue\n" {
			t.Fatalf("want exit 0:\n%s", r)
		}
		if got := readText(t, conn); got != `{"job":42,"done":true}` {
			t.Errorf("the client got %q", got)
		}
		checkEmpty(t, s.run("dlq", "list"), "no dead letters")
	})

	t.Run("a follow-up past its attempts is dead-lettered without a post and delivered once redriven", func(t *testing.T) {
		db := s.openState()
		ctx := testContext(t, commandTimeout)
		var connID string
		err := db.Store().ListConnections(ctx, store.ConnectionFilter{Geek: "alice"}, time.Now(), func(page []pubsub.Connection) error {
			for _, c := range page {
				connID = c.ID
			}
			return nil
		})
		if err != nil || connID == "" {
			t.Fatalf("finding alice's connection: %q, %v", connID, err)
		}
		// What the broker hands on when its follow-ups kept failing for
		// this connection: the running broker dead-letters it at once.
		used := pubsub.Envelope{ID: "job-43", Topics: []string{"jobs"}, Body: json.RawMessage(`{"job":43}`),
			FollowUp: pubsub.FollowUp{Connections: []string{connID}, Attempt: broker.DefaultMaxAttempts + 1, LastError: "HTTP 500"}}
		data, err := used.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		if _, err := db.Queue().Send(ctx, data); err != nil {
			t.Fatal(err)
		}
		var dead []store.DeadLetter
		for deadline := time.Now().Add(commandTimeout); len(dead) == 0; time.Sleep(100 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatal("the broker did not dead-letter the follow-up past its attempts")
			}
			_ = json.Unmarshal([]byte(s.run("dlq", "list", "--json").stdout), &dead)
		}
		if len(dead) != 1 || !strings.Contains(dead[0].Reason, fmt.Sprintf("after %d attempts", broker.DefaultMaxAttempts+1)) {
			t.Fatalf("dead letters %+v; want the follow-up, given up", dead)
		}
		r := s.run("dlq", "redrive", dead[0].ID)
		if r.code != 0 || r.stdout != "redrove 1 dead letter onto the queue\n" {
			t.Fatalf("want exit 0:\n%s", r)
		}
		if got := readText(t, conn); got != `{"job":43}` {
			t.Errorf("the client got %q", got)
		}
		var rep store.Report
		for deadline := time.Now().Add(commandTimeout); rep.Delivered == 0; time.Sleep(100 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("report %+v; want the redriven delivery counted", rep)
			}
			rep, _ = db.Store().GetReport(ctx, "job-43")
		}
		if rep.Targets != 1 || rep.Delivered != 1 || rep.Failed != 0 {
			t.Errorf("report %+v; want 1 of 1 delivered, none failed", rep)
		}
		checkEmpty(t, s.run("dlq", "list"), "no dead letters")
	})

	// Stop the gateway first: its broker wakes at once for a sent
	// message and would take the next one before deadLetter can.
	conn.Close()
	if code := srv.stop(); code != 0 {
		t.Fatalf("socks serve exited %d", code)
	}

	t.Run("purge refuses without --yes off a terminal, and purges with it", func(t *testing.T) {
		id := deadLetter(`{"topics":["jobs"],"body":"unwanted"}`)
		checkFailure(t, s.run("dlq", "purge", id), 2, "--yes")
		r := s.run("dlq", "purge", id, "--yes")
		if r.code != 0 || r.stdout != "purged 1 dead letter\n" {
			t.Errorf("want exit 0:\n%s", r)
		}
		checkFailure(t, s.run("dlq", "show", id), 3, "no dead letter "+id)
	})
}
