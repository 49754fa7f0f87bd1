package ops_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/socks-dev/socks/backend"
	"github.com/socks-dev/socks/config"
	"github.com/socks-dev/socks/internal/refusing"
	"github.com/socks-dev/socks/local"
	"github.com/socks-dev/socks/ops"
	"github.com/socks-dev/socks/ops/opstest"
	"github.com/socks-dev/socks/pubsub"
	"github.com/socks-dev/socks/store"
)

func localEnv(t *testing.T) *ops.Env {
	db := openDB(t, local.Options{Now: func() time.Time { return now }})
	return &ops.Env{
		Config:    config.Config{Backend: config.BackendLocal, BackendSource: "default", StateDir: "/state"},
		Now:       now,
		StateFile: "/state/socks.db",
		Store:     db.Store(),
		Queue:     db.Queue(),
		Gateway:   ops.GatewayRecord{WebSocket: "ws://127.0.0.1:1/", Management: "http://127.0.0.1:1", PID: "42", Broker: true},
	}
}

func find(rep ops.Report, name string) ops.Result {
	for _, r := range rep.Checks {
		if r.Name == name {
			return r
		}
	}
	return ops.Result{}
}

func TestTheManagementAPICheck(t *testing.T) {
	for _, tc := range []struct {
		name     string
		endpoint func(t *testing.T) string
		status   ops.Status
		phrases  []string
	}{
		{"an endpoint answering 410 for a made-up connection is healthy",
			func(t *testing.T) string { return opstest.APIServer(t, 410, "GoneException") }, ops.StatusOK, []string{"410"}},
		{"403 names the stage, credentials and permission",
			func(t *testing.T) string { return opstest.APIServer(t, 403, "ForbiddenException") }, ops.StatusFail, []string{"403", "stage", "credentials", "execute-api:ManageConnections"}},
		{"404 names the host and path",
			func(t *testing.T) string { return opstest.APIServer(t, 404, "") }, ops.StatusFail, []string{"404", "host and path"}},
		{"connection refused means the gateway is down",
			func(t *testing.T) string { return refusing.URL(t) }, ops.StatusFail, []string{"connection refused", "gateway is down", "socks serve"}},
		{"an endpoint answering 200 for a made-up connection is not a Management API",
			func(t *testing.T) string { return opstest.APIServer(t, 200, "") }, ops.StatusFail, []string{"as if it existed"}},
		{"an endpoint refusing a made-up connection's well-formed ID (400) is not taken for a Management API",
			func(t *testing.T) string { return opstest.APIServer(t, 400, "BadRequestException") }, ops.StatusFail, []string{"400"}},
		{"a server error is reported with its status",
			func(t *testing.T) string { return opstest.APIServer(t, 500, "InternalServerErrorException") }, ops.StatusFail, []string{"500"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			env := localEnv(t)
			env.Endpoint = tc.endpoint(t)
			env.Pusher = backend.LocalPusher(env.Endpoint, 1)
			rep := ops.RunChecks(context.Background(), env, ops.Checks(config.BackendLocal))
			r := find(rep, "management API")
			if r.Status != tc.status {
				t.Errorf("status %s; want %s: %+v", r.Status, tc.status, r)
			}
			text := r.Detail + " " + r.Fix
			for _, p := range tc.phrases {
				if !strings.Contains(text, p) {
					t.Errorf("%q does not say %q", text, p)
				}
			}
			if tc.status == ops.StatusFail && (rep.OK || r.Fix == "") {
				t.Errorf("a failure must fail the report and say what to do: %+v", rep)
			}
		})
	}
}

func TestDoctorChecks(t *testing.T) {
	t.Run("a healthy local stack passes every check", func(t *testing.T) {
		env := localEnv(t)
		env.Pusher = opstest.NewFakePusher()
		rep := ops.RunChecks(context.Background(), env, ops.Checks(config.BackendLocal))
		if !rep.OK || rep.Warned != 0 {
			t.Errorf("report %+v; want every check ok", rep)
		}
	})
	t.Run("dead letters and stale records warn", func(t *testing.T) {
		env := localEnv(t)
		env.Pusher = opstest.NewFakePusher()
		put(t, env.Store, conn("stale", 3*time.Hour, -time.Hour), conn("ok", time.Minute, time.Hour))
		ctx := ctxT(t)
		if _, err := env.Queue.Send(ctx, []byte(`{}`)); err != nil {
			t.Fatal(err)
		}
		msgs, err := env.Queue.Receive(ctx, 1, time.Minute, time.Second)
		if err != nil || len(msgs) != 1 {
			t.Fatalf("receive: %v %v", msgs, err)
		}
		if err := env.Queue.DeadLetter(ctx, msgs[0], "poison"); err != nil {
			t.Fatal(err)
		}
		rep := ops.RunChecks(ctx, env, ops.Checks(config.BackendLocal))
		if !rep.OK || rep.Warned != 2 {
			t.Errorf("report %+v; want ok with 2 warnings", rep)
		}
		if r := find(rep, "dead letters"); r.Status != ops.StatusWarn || !strings.Contains(r.Fix, "socks dlq") || !r.Time.Equal(now) {
			t.Errorf("dead letters: %+v", r)
		}
		if r := find(rep, "connections"); r.Status != ops.StatusWarn || !strings.Contains(r.Fix, "prune-stale") {
			t.Errorf("connections: %+v", r)
		}
	})
	t.Run("no gateway fails and skips the Management API", func(t *testing.T) {
		env := localEnv(t)
		env.Gateway = ops.GatewayRecord{}
		rep := ops.RunChecks(context.Background(), env, ops.Checks(config.BackendLocal))
		if rep.OK || find(rep, "local gateway").Status != ops.StatusFail || find(rep, "management API").Status != ops.StatusSkip {
			t.Errorf("report %+v", rep)
		}
	})
	t.Run("a gateway without a broker fails, and waiting messages say to start one", func(t *testing.T) {
		env := localEnv(t)
		env.Gateway.Broker = false
		env.Pusher = opstest.NewFakePusher()
		if _, err := env.Queue.Send(context.Background(), []byte(`{"topics":["updates"],"body":1}`)); err != nil {
			t.Fatal(err)
		}
		rep := ops.RunChecks(context.Background(), env, ops.Checks(config.BackendLocal))
		g := find(rep, "local gateway")
		if rep.OK || g.Status != ops.StatusFail || !strings.Contains(g.Detail, "no broker is running") ||
			!strings.Contains(g.Fix, "socks broker") || !strings.Contains(g.Fix, "without --no-broker") {
			t.Errorf("local gateway: %+v; want a failure saying no broker runs and how to start one", g)
		}
		if q := find(rep, "queue"); q.Status != ops.StatusWarn || !strings.Contains(q.Fix, "socks broker") {
			t.Errorf("queue: %+v; want a warning that the message waits for a broker", q)
		}
		if m := find(rep, "management API"); m.Status != ops.StatusOK {
			t.Errorf("management API: %+v; want ok (the gateway answers)", m)
		}
	})
	t.Run("a missing state file fails and skips what needs it", func(t *testing.T) {
		env := &ops.Env{Config: config.Config{Backend: config.BackendLocal}, StateFile: "/nope/socks.db", StateFileMissing: true}
		rep := ops.RunChecks(context.Background(), env, ops.Checks(config.BackendLocal))
		r := find(rep, "state file")
		if r.Status != ops.StatusFail || !strings.Contains(r.Fix, "--state-dir") {
			t.Errorf("state file: %+v", r)
		}
		if find(rep, "queue").Status != ops.StatusSkip {
			t.Errorf("queue should be skipped: %+v", rep)
		}
	})
}

func TestGatherEnv(t *testing.T) {
	dir := t.TempDir()
	cfg := config.Config{Backend: config.BackendLocal, StateDir: dir}
	open := func(ctx context.Context) (*backend.Backend, error) {
		return backend.Open(ctx, cfg, backend.Options{})
	}
	t.Run("a missing state file is not created", func(t *testing.T) {
		env := ops.GatherEnv(ctxT(t), cfg, open, nil, now)
		if !env.StateFileMissing || env.Store != nil {
			t.Errorf("env %+v; want the state file missing and nothing opened", env)
		}
		if _, err := os.Stat(filepath.Join(dir, config.StateFile)); err == nil {
			t.Error("GatherEnv created the state file")
		}
	})
	t.Run("a recorded gateway is dialled and gets a pusher", func(t *testing.T) {
		b, err := open(ctxT(t))
		if err != nil {
			t.Fatal(err)
		}
		defer b.Close()
		mgmt := opstest.APIServer(t, 410, "GoneException")
		for k, v := range map[string]string{backend.MetaGatewayWebSocket: "ws://x/", backend.MetaGatewayManagement: mgmt, backend.MetaGatewayPID: "7"} {
			if err := b.DB.SetMeta(ctxT(t), k, v); err != nil {
				t.Fatal(err)
			}
		}
		env := ops.GatherEnv(ctxT(t), cfg, func(context.Context) (*backend.Backend, error) { return b, nil }, nil, now)
		if env.Gateway.Management != mgmt || env.Gateway.PID != "7" || env.Gateway.DialErr != nil || env.Pusher == nil || env.Endpoint != mgmt {
			t.Errorf("env %+v", env)
		}
		var _ store.Pusher = env.Pusher
	})
	t.Run("a state file that cannot be written is read read-only, with a warning", func(t *testing.T) {
		b, err := open(ctxT(t))
		if err != nil {
			t.Fatal(err)
		}
		defer b.Close()
		denied := fmt.Errorf("opening: %w", local.DirNotWritable(dir, fs.ErrPermission))
		env := ops.GatherEnv(ctxT(t), cfg, func(context.Context) (*backend.Backend, error) { return nil, denied },
			func(context.Context) (*backend.Backend, error) { return b, nil }, now)
		if env.OpenErr != nil || env.Store == nil || !errors.Is(env.NotWritable, local.ErrNotWritable) {
			t.Fatalf("env %+v; want the read-only backend opened and why it is not writable", env)
		}
		rep := ops.RunChecks(ctxT(t), env, ops.Checks(config.BackendLocal))
		r := find(rep, "state file")
		if r.Status != ops.StatusWarn || !strings.Contains(r.Detail, "schema readable") || !strings.HasSuffix(r.Detail, "is not writable: permission denied") ||
			strings.Contains(r.Detail, "make it writable") || !strings.Contains(r.Fix, "socks serve") || !strings.Contains(r.Fix, "socks publish") || !strings.Contains(r.Fix, "writable") {
			t.Errorf("state file: %+v; want a warning that it is read only, saying what cannot run and how to fix it", r)
		}
		if q := find(rep, "queue"); q.Status != ops.StatusOK {
			t.Errorf("queue: %+v; want it read", q)
		}
	})
	t.Run("a state file that cannot be read read-only either fails as not writable", func(t *testing.T) {
		denied := local.DirNotWritable(dir, fs.ErrPermission)
		env := ops.GatherEnv(ctxT(t), cfg, func(context.Context) (*backend.Backend, error) { return nil, denied },
			func(context.Context) (*backend.Backend, error) {
				return nil, errors.New("cannot read its write-ahead log")
			}, now)
		r := find(ops.RunChecks(ctxT(t), env, ops.Checks(config.BackendLocal)), "state file")
		if !errors.Is(env.OpenErr, local.ErrNotWritable) || r.Status != ops.StatusFail || !strings.Contains(r.Fix, "writable") ||
			r.Detail != "state dir "+dir+" is not writable: permission denied" {
			t.Errorf("state file: %+v (open error %v); want the not-writable failure, its fix in the fix column only", r, env.OpenErr)
		}
	})
}

// slowQueue is a store.Queue whose Stats answers only when its context
// ends.
type slowQueue struct{ store.Queue }

func (q slowQueue) Stats(ctx context.Context) (store.QueueStats, error) {
	<-ctx.Done()
	return store.QueueStats{}, ctx.Err()
}

func TestDoctorQueueChecks(t *testing.T) {
	t.Run("a read that runs out of time says so instead of blaming the state file", func(t *testing.T) {
		env := localEnv(t)
		env.Pusher = opstest.NewFakePusher()
		env.Queue = slowQueue{env.Queue}
		ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
		defer cancel()
		rep := ops.RunChecks(ctx, env, ops.Checks(config.BackendLocal))
		for _, name := range []string{"queue", "dead letters"} {
			r := find(rep, name)
			if r.Status != ops.StatusFail || !strings.Contains(r.Detail, "did not finish") || strings.Contains(r.Fix, "state file") {
				t.Errorf("%s: %+v; want a failure saying the read did not finish, without the state-file fix", name, r)
			}
		}
	})
	t.Run("the queue and dead-letter checks read the queue's depth once", func(t *testing.T) {
		env := localEnv(t)
		env.Pusher = opstest.NewFakePusher()
		q := &countingQueue{Queue: env.Queue}
		env.Queue = q
		rep := ops.RunChecks(context.Background(), env, ops.Checks(config.BackendLocal))
		if !rep.OK || q.calls.Load() != 1 {
			t.Errorf("report %+v after %d Stats calls; want ok after 1", rep, q.calls.Load())
		}
	})
}

// countingQueue counts the Stats calls of a store.Queue.
type countingQueue struct {
	store.Queue
	calls atomic.Int32
}

func (q *countingQueue) Stats(ctx context.Context) (store.QueueStats, error) {
	q.calls.Add(1)
	return q.Queue.Stats(ctx)
}

// TestAStateFileThatCannotBeWrittenNowIsNotToBeMovedAway: a state file
// that failed to open because it cannot be written now (its disk full,
// or its lock held by another process: store.ErrUnavailable, and
// local.ErrLocked) fails the check with the fix for that (free space, or
// end the process), never "move the file away", which would lose the
// queue, the dead letters and the chatter IDs and mend neither.
func TestAStateFileThatCannotBeWrittenNowIsNotToBeMovedAway(t *testing.T) {
	for _, tc := range []struct {
		name string
		err  error
		fix  string
	}{
		{"a full disk", fmt.Errorf("cannot write the state file /state/socks.db: the disk is full; free some space and try again: %w", store.ErrUnavailable), "free some space"},
		{"a lock held", fmt.Errorf("state file /state/socks.db stayed locked by another process for 10s: %w: %w", local.ErrLocked, store.ErrUnavailable), "end the process"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			env := &ops.Env{Config: config.Config{Backend: config.BackendLocal, StateDir: "/state"}, StateFile: "/state/socks.db", OpenErr: tc.err}
			r := find(ops.RunChecks(ctxT(t), env, ops.Checks(config.BackendLocal)), "state file")
			if r.Status != ops.StatusFail || !strings.Contains(r.Fix, tc.fix) || strings.Contains(r.Fix, "move the file away") {
				t.Errorf("state file: %+v; want a failure whose fix says %q and not to move the file away", r, tc.fix)
			}
		})
	}
}

// TestTheBackendCheckNamesTheVariableTheRegionCameFrom: it said
// "region eu-west-1 (env)", though three variables set a region.
func TestTheBackendCheckNamesTheVariableTheRegionCameFrom(t *testing.T) {
	for _, v := range []string{"AWS_REGION", "AWS_DEFAULT_REGION", config.EnvRegion} {
		t.Run(v, func(t *testing.T) {
			env := map[string]string{"HOME": t.TempDir(), config.EnvBackend: config.BackendAWS, v: "eu-west-1"}
			cfg, err := config.Resolve(config.Flags{}, func(k string) string { return env[k] })
			if err != nil {
				t.Fatal(err)
			}
			r := find(ops.RunChecks(ctxT(t), &ops.Env{Config: cfg}, []ops.Check{{Name: "backend", Run: ops.Checks(config.BackendAWS)[0].Run}}), "backend")
			if want := "region eu-west-1 ($" + v + ")"; !strings.Contains(r.Detail, want) {
				t.Errorf("backend check %+v; want it to say %q", r, want)
			}
		})
	}
}

// TestABackendThatDidNotOpenSaysWhereAWSWasChosen: the fix of an AWS
// backend that did not open names where aws came from (a flag, the
// environment or a profile), not always $SOCKS_BACKEND, which a user who
// typed --backend aws never set.
func TestABackendThatDidNotOpenSaysWhereAWSWasChosen(t *testing.T) {
	for _, tc := range []struct {
		source, want, not string
	}{
		{"flag", "--backend", config.EnvBackend},
		{"env", "$" + config.EnvBackend, "--backend"},
		{"profile prod", "backend of profile prod", config.EnvBackend},
	} {
		t.Run(tc.source, func(t *testing.T) {
			cfg := config.Config{Backend: config.BackendAWS, BackendSource: tc.source, Sources: map[string]string{"backend": tc.source}}
			env := &ops.Env{Config: cfg, OpenErr: errors.New(`bad --endpoint-url "nope": give a URL such as http://127.0.0.1:8000`)}
			r := find(ops.RunChecks(ctxT(t), env, []ops.Check{{Name: "backend", Run: ops.Checks(config.BackendAWS)[0].Run}}), "backend")
			if r.Status != ops.StatusFail || !strings.Contains(r.Fix, tc.want) || strings.Contains(r.Fix, tc.not) {
				t.Errorf("backend from %s: %+v; want a failure whose fix names %q and not %q", tc.source, r, tc.want, tc.not)
			}
		})
	}
}

// TestTheStateFileOpenIsBoundedAsACheckIs: GatherEnv gives the backend's
// open (and the read-only open after it) the time a check has, not the
// caller's whole context; an open that ran out of it (a state file held
// locked by another process, whose every read SQLite retries) fails the
// state file check saying so, with the fix to end that process and keep
// the file, never to move it away. Before, the open had no bound: on a
// file an sqlite3 shell held in exclusive locking mode the doctor waited
// a minute (SQLite's 10 s wait, tried again five times) and then said
// the file "stayed locked by another process for 10s". Here the open
// says it ran out of time at once when it was given a deadline no later
// than a check's, and fails otherwise.
func TestTheStateFileOpenIsBoundedAsACheckIs(t *testing.T) {
	dir := t.TempDir()
	cfg := config.Config{Backend: config.BackendLocal, StateDir: dir}
	b, err := backend.Open(ctxT(t), cfg, backend.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	// bounded runs open when it was given a deadline no later than a
	// check's.
	bounded := func(open func() (*backend.Backend, error)) func(context.Context) (*backend.Backend, error) {
		return func(ctx context.Context) (*backend.Backend, error) {
			if dl, ok := ctx.Deadline(); !ok || time.Until(dl) > 10*time.Second {
				return nil, errors.New("the open was given no deadline, or one past a check's")
			}
			return open()
		}
	}
	t.Run("the open", func(t *testing.T) {
		env := ops.GatherEnv(ctxT(t), cfg, bounded(func() (*backend.Backend, error) {
			return nil, fmt.Errorf("opening state file %s: %w", cfg.StatePath(), context.DeadlineExceeded)
		}), nil, now)
		if !errors.Is(env.OpenErr, context.DeadlineExceeded) {
			t.Fatalf("open error %v; want the open bounded by a check's time", env.OpenErr)
		}
		r := find(ops.RunChecks(ctxT(t), env, ops.Checks(config.BackendLocal)), "state file")
		if r.Status != ops.StatusFail || !strings.Contains(r.Detail, "did not open within 10s") ||
			!strings.Contains(r.Fix, "end the process") || strings.Contains(r.Fix, "move the file away") {
			t.Errorf("state file: %+v; want a failure saying it did not open in time, to end the process holding it and keep the file", r)
		}
	})
	t.Run("the read-only open", func(t *testing.T) {
		env := ops.GatherEnv(ctxT(t), cfg, func(context.Context) (*backend.Backend, error) {
			return nil, local.DirNotWritable(dir, fs.ErrPermission)
		}, bounded(func() (*backend.Backend, error) { return b, nil }), now)
		if env.OpenErr != nil || env.Store == nil {
			t.Errorf("open error %v; want the read-only open bounded by a check's time, and opened", env.OpenErr)
		}
	})
}

// TestAStateFileHeldLockedIsReported: the doctor said ok while another
// process held the state file's write lock (a stuck socks command, an
// sqlite3 shell with a transaction open), under which every write waits
// and then fails after about a minute. It warns, naming what to end, and
// keeps the file; once the lock is let go it is ok again.
func TestAStateFileHeldLockedIsReported(t *testing.T) {
	dir := t.TempDir()
	cfg := config.Config{Backend: config.BackendLocal, StateDir: dir}
	open := func(ctx context.Context) (*backend.Backend, error) { return backend.Open(ctx, cfg, backend.Options{}) }
	gather := func() ops.Result {
		env := ops.GatherEnv(ctxT(t), cfg, open, nil, now)
		if env.OpenErr != nil {
			t.Fatalf("open: %v", env.OpenErr)
		}
		return find(ops.RunChecks(ctxT(t), env, ops.Checks(config.BackendLocal)), "state file")
	}
	b, err := open(ctxT(t))
	if err != nil {
		t.Fatal(err)
	}
	b.Close()
	if r := gather(); r.Status != ops.StatusOK {
		t.Fatalf("state file, unlocked: %+v; want ok", r)
	}

	other, err := sql.Open("sqlite", "file:"+cfg.StatePath())
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	tx, err := other.BeginTx(ctxT(t), nil)
	if err == nil {
		_, err = tx.ExecContext(ctxT(t), `INSERT INTO meta(key, value) VALUES ('held', 'x')`)
	}
	if err != nil {
		t.Fatal(err)
	}
	r := gather()
	if r.Status != ops.StatusWarn || !strings.Contains(r.Detail, "write lock") || !strings.Contains(r.Fix, "end the process") || !strings.Contains(r.Fix, "keep the file") {
		t.Errorf("state file, held locked by another process: %+v; want a warning saying so, to end that process and keep the file", r)
	}
	if err := tx.Rollback(); err != nil {
		t.Fatal(err)
	}
	if r := gather(); r.Status != ops.StatusOK {
		t.Errorf("state file, the lock let go: %+v; want ok", r)
	}
}

// TestTheManagementAPICheckTakesNoAnswerFromAnotherProgramAtTheGatewaysAddress:
// the doctor asked the local gateway's recorded address with a pusher
// that took any answer, so another program listening at a stopped
// serve's port (answering as a Management API, 410, without the run ID
// the gateway recorded) was reported a healthy Management API whenever
// the gateway lock could not tell (no lock file) or a serve held it (one
// starting again, its new address not recorded yet). What answers there
// is now checked as the broker checks it: not this state dir's serve, it
// fails, or warns where the gateway check already fails (the lock says
// no serve runs); the gateway check, which said ok there, warns. The serve's own answer, or any answer where the serve
// (of an older socks) recorded no run ID, is ok as before.
func TestTheManagementAPICheckTakesNoAnswerFromAnotherProgramAtTheGatewaysAddress(t *testing.T) {
	stranger := opstest.APIServer(t, 410, "GoneException")
	gateway := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set(pubsub.GatewayIDHeader, "run-1")
		w.Header().Set("X-Amzn-Errortype", "GoneException")
		w.WriteHeader(http.StatusGone)
		_, _ = w.Write([]byte(`{"message":"gone"}`))
	}))
	t.Cleanup(gateway.Close)
	const (
		noLockFile = iota // the lock cannot tell (GatewayRunning's known is false)
		lockHeld          // a serve holds the lock
		lockFree          // the lock says no serve runs
	)
	for _, tc := range []struct {
		name    string
		mgmt    string
		id      string // the run ID recorded
		lock    int
		gateway ops.Status
		status  ops.Status
	}{
		{"another program where the lock cannot tell fails", stranger, "run-1", noLockFile, ops.StatusWarn, ops.StatusFail},
		{"another program while a serve holds the lock fails", stranger, "run-1", lockHeld, ops.StatusWarn, ops.StatusFail},
		{"another program where the lock says no serve runs warns beside the failed gateway check", stranger, "run-1", lockFree, ops.StatusFail, ops.StatusWarn},
		{"the recorded serve's own answer is ok", gateway.URL, "run-1", lockHeld, ops.StatusOK, ops.StatusOK},
		{"any answer is ok where the serve recorded no run ID (an older socks)", stranger, "", lockHeld, ops.StatusOK, ops.StatusOK},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := config.Config{Backend: config.BackendLocal, StateDir: t.TempDir()}
			b, err := backend.Open(ctxT(t), cfg, backend.Options{})
			if err != nil {
				t.Fatal(err)
			}
			defer b.Close()
			for k, v := range map[string]string{backend.MetaGatewayWebSocket: "ws" + strings.TrimPrefix(tc.mgmt, "http") + "/", backend.MetaGatewayManagement: tc.mgmt, backend.MetaGatewayPID: "7", backend.MetaGatewayID: tc.id} {
				if err := b.DB.SetMeta(ctxT(t), k, v); err != nil {
					t.Fatal(err)
				}
			}
			switch tc.lock {
			case lockHeld:
				release, locked, err := b.HoldGateway()
				if err != nil || !locked {
					t.Fatalf("holding the gateway lock: %v (locked %v)", err, locked)
				}
				defer release()
			case lockFree:
				if err := os.WriteFile(filepath.Join(cfg.StateDir, backend.GatewayLockFile), nil, 0o600); err != nil {
					t.Fatal(err)
				}
			}
			release, err := b.HoldBroker()
			if err != nil {
				t.Fatal(err)
			}
			defer release()
			env := ops.GatherEnv(ctxT(t), cfg, func(context.Context) (*backend.Backend, error) { return b, nil }, nil, now)
			rep := ops.RunChecks(ctxT(t), env, ops.Checks(config.BackendLocal))
			if g := find(rep, "local gateway"); g.Status != tc.gateway {
				t.Errorf("local gateway: %+v; want %s", g, tc.gateway)
			}
			r := find(rep, "management API")
			if r.Status != tc.status {
				t.Fatalf("management API: %+v; want %s", r, tc.status)
			}
			if tc.status == ops.StatusOK {
				if !strings.Contains(r.Detail, "410 Gone") {
					t.Errorf("management API: %+v; want the 410 it answered", r)
				}
				return
			}
			for _, p := range []string{"at " + tc.mgmt + " is not this state dir's `socks serve`", "another program may have taken its port"} {
				if !strings.Contains(r.Detail, p) {
					t.Errorf("management API detail %q does not say %q", r.Detail, p)
				}
			}
			if !strings.Contains(r.Fix, "start `socks serve` again") {
				t.Errorf("management API fix %q; want it to say to start `socks serve` again", r.Fix)
			}
		})
	}
}

// strangerPusher answers every call as what listens at the gateway's
// recorded address does when it is not this state dir's serve.
type strangerPusher struct{ opstest.FakePusher }

func (*strangerPusher) Get(context.Context, string) (store.ConnectionInfo, error) {
	return store.ConnectionInfo{}, &backend.NotThisGatewayError{Addr: "127.0.0.1:1"}
}

// TestAStrangerAtTheGatewaysAddressIsNoGatewayThatDelivers: a serve holds
// the gateway lock, a broker runs, but another program answers at the
// Management API address the serve recorded (another interface, or
// address family). Only the Management API check said so: the gateway
// check said ok, and the queue check counted the broker as delivering
// the messages waiting. The gateway check warns, naming what answers,
// and so does the queue check when messages wait; the Management API is
// asked once.
func TestAStrangerAtTheGatewaysAddressIsNoGatewayThatDelivers(t *testing.T) {
	env := localEnv(t)
	p := opstest.NewCountingPusher(&strangerPusher{})
	env.Pusher, env.Endpoint = p, env.Gateway.Management
	if _, err := env.Queue.Send(context.Background(), []byte(`{"topics":["updates"],"body":1}`)); err != nil {
		t.Fatal(err)
	}
	rep := ops.RunChecks(context.Background(), env, ops.Checks(config.BackendLocal))
	const stranger = "at http://127.0.0.1:1 is not this state dir's `socks serve`"
	if g := find(rep, "local gateway"); g.Status != ops.StatusWarn || !strings.Contains(g.Detail, stranger) || !strings.Contains(g.Fix, "start `socks serve` again") {
		t.Errorf("local gateway: %+v; want a warning that what answers %s, and to start it again", g, stranger)
	}
	if q := find(rep, "queue"); q.Status != ops.StatusWarn || !strings.Contains(q.Fix, "not this state dir's `socks serve`") {
		t.Errorf("queue: %+v; want a warning that the waiting messages are not delivered", q)
	}
	if m := find(rep, "management API"); m.Status != ops.StatusFail || !strings.Contains(m.Detail, stranger) {
		t.Errorf("management API: %+v; want it failing as before", m)
	}
	if n := p.Total(); n != 1 {
		t.Errorf("the Management API was asked %d times; want once", n)
	}
}
