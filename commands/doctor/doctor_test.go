package doctor_test

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/socks-dev/socks/backend"
	"github.com/socks-dev/socks/commands"
	"github.com/socks-dev/socks/commands/cmdutil"
	"github.com/socks-dev/socks/commands/doctor"
	"github.com/socks-dev/socks/config"
	"github.com/socks-dev/socks/internal/build"
	"github.com/socks-dev/socks/internal/refusing"
	"github.com/socks-dev/socks/iostreams"
	"github.com/socks-dev/socks/local"
	"github.com/socks-dev/socks/ops"
	"github.com/socks-dev/socks/ops/opstest"
	"github.com/socks-dev/socks/pubsub"
	"github.com/socks-dev/socks/store"
	"github.com/socks-dev/socks/ui"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

// now is the fixed clock of the golden tests.
var now = time.Date(2030, time.June, 1, 12, 0, 0, 0, time.UTC)

// fixedEnv is a local stack with fixed paths and times: a real state file
// (in a temp dir, but shown as /home/geek/...) and a fake Management API.
func fixedEnv(t *testing.T) *ops.Env {
	t.Helper()
	db, err := local.Open(context.Background(), filepath.Join(t.TempDir(), "socks.db"), local.Options{Now: func() time.Time { return now.Add(-3 * time.Hour) }})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return &ops.Env{
		Config:    config.Config{Backend: config.BackendLocal, BackendSource: "default", Sources: map[string]string{"backend": "default"}, StateDir: "/home/geek/.local/state/socks"},
		Now:       now,
		StateFile: "/home/geek/.local/state/socks/socks.db",
		Store:     db.Store(),
		Queue:     db.Queue(),
		Gateway:   ops.GatewayRecord{WebSocket: "ws://127.0.0.1:8765/", Management: "http://127.0.0.1:8765", PID: "4242", Broker: true},
		Endpoint:  "http://127.0.0.1:8765",
		Pusher:    opstest.NewFakePusher(),
	}
}

// refusingPusher fails every call as a dial to a closed port does.
type refusingPusher struct{ opstest.FakePusher }

func (*refusingPusher) Get(_ context.Context, id string) (store.ConnectionInfo, error) {
	return store.ConnectionInfo{}, &store.PushError{Op: "GetConnection", ConnectionID: id,
		Err: &net.OpError{Op: "dial", Net: "tcp", Err: os.NewSyscallError("connect", syscall.ECONNREFUSED)}}
}

func TestGolden(t *testing.T) {
	for _, tc := range []struct {
		name  string
		setup func(t *testing.T, env *ops.Env)
	}{
		{"healthy", func(t *testing.T, env *ops.Env) {
			ctx := context.Background()
			for i, ago := range []time.Duration{5 * time.Minute, 42 * time.Minute} {
				c := pubsub.Connection{ID: fmt.Sprintf("conn%d=", i), Geek: "alice", Topics: []string{"updates"}, ConnectedAt: now.Add(-ago), ExpiresAt: now.Add(time.Hour)}
				if err := env.Store.PutConnection(ctx, c); err != nil {
					t.Fatal(err)
				}
			}
		}},
		{"problems", func(t *testing.T, env *ops.Env) {
			ctx := context.Background()
			for i, ago := range []time.Duration{3 * time.Hour, 90 * time.Minute} {
				c := pubsub.Connection{ID: fmt.Sprintf("conn%d=", i), Geek: "alice", Topics: []string{"updates"}, ConnectedAt: now.Add(-ago), ExpiresAt: now.Add(-ago).Add(2 * time.Hour)}
				if err := env.Store.PutConnection(ctx, c); err != nil {
					t.Fatal(err)
				}
			}
			for range 2 {
				if _, err := env.Queue.Send(ctx, []byte(`{"topics":["updates"],"body":1}`)); err != nil {
					t.Fatal(err)
				}
			}
			msgs, err := env.Queue.Receive(ctx, 1, time.Minute, time.Second)
			if err != nil || len(msgs) != 1 {
				t.Fatalf("receive: %v %v", msgs, err)
			}
			if err := env.Queue.DeadLetter(ctx, msgs[0], "failed 5 times; last error: throttled"); err != nil {
				t.Fatal(err)
			}
			env.Gateway.DialErr = errors.New("dial tcp 127.0.0.1:8765: connect: connection refused")
			env.Pusher = &refusingPusher{}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			env := fixedEnv(t)
			tc.setup(t, env)
			rep := ops.RunChecks(context.Background(), env, ops.Checks(config.BackendLocal))
			for _, styled := range []bool{true, false} {
				var buf bytes.Buffer
				u := ui.NewFor(&buf, styled)
				u.SetNow(func() time.Time { return now })
				if err := doctor.Render(&buf, u, rep); err != nil {
					t.Fatal(err)
				}
				kind := "plain"
				if styled {
					kind = "styled"
				}
				golden(t, filepath.Join("testdata", tc.name+"."+kind+".golden"), buf.Bytes())
				if !styled && bytes.ContainsRune(buf.Bytes(), '\x1b') {
					t.Errorf("plain output has escape codes:\n%s", buf.String())
				}
				// An "ok" line has no fix: its line ended in a tab (an
				// empty fourth column) on the plain output, trailing
				// white space on the styled one.
				for _, line := range strings.Split(strings.TrimSuffix(buf.String(), "\n"), "\n") {
					if trimmed := strings.TrimRight(line, " \t"); trimmed != line {
						t.Errorf("%s line %q ends in white space", kind, line)
					}
				}
			}
		})
	}
}

func golden(t *testing.T, path string, got []byte) {
	t.Helper()
	if *update {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test ./commands/doctor -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs (run go test ./commands/doctor -update if the change is intended)\ngot:\n%s\nwant:\n%s", path, got, want)
	}
}

type result struct {
	code           int
	stdout, stderr string
}

// run runs socks through commands.Run on stateDir.
func run(t *testing.T, stateDir string, args ...string) result {
	t.Helper()
	ios, _, out, errOut := iostreams.Test()
	env := map[string]string{"HOME": t.TempDir(), "SOCKS_STATE_DIR": stateDir}
	f := &cmdutil.Factory{
		IOStreams: ios,
		Getenv:    func(k string) string { return env[k] },
		Now:       time.Now,
		Build:     build.Info{Version: "test"},
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	code := commands.Run(ctx, f, args)
	return result{code, out.String(), errOut.String()}
}

// recordGateway writes a gateway record into the state file of dir, as
// `socks serve` does, pointing at mgmt, and holds the gateway lock as a
// running serve does until the test ends.
func recordGateway(t *testing.T, dir, mgmt string) {
	t.Helper()
	recordDeadGateway(t, dir, mgmt)
	b, err := backend.Open(context.Background(), config.Config{Backend: config.BackendLocal, StateDir: dir}, backend.Options{})
	if err != nil {
		t.Fatal(err)
	}
	release, locked, err := b.HoldGateway()
	if err != nil || !locked {
		t.Fatalf("holding the gateway lock: %v (locked %v)", err, locked)
	}
	t.Cleanup(func() {
		release()
		b.Close()
	})
}

// recordDeadGateway writes the record a gateway killed with kill -9 leaves
// behind, with its lock file, which no process holds any more.
func recordDeadGateway(t *testing.T, dir, mgmt string) {
	t.Helper()
	ctx := context.Background()
	if err := os.WriteFile(filepath.Join(dir, backend.GatewayLockFile), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	db, err := local.Open(ctx, filepath.Join(dir, config.StateFile), local.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for k, v := range map[string]string{
		backend.MetaGatewayWebSocket:  strings.Replace(mgmt, "http://", "ws://", 1) + "/",
		backend.MetaGatewayManagement: mgmt,
		backend.MetaGatewayPID:        "4242",
	} {
		if err := db.SetMeta(ctx, k, v); err != nil {
			t.Fatal(err)
		}
	}
}

// holdBroker makes a broker known for dir, as a running `socks broker`
// does, until the test ends.
func holdBroker(t *testing.T, dir string) {
	t.Helper()
	b, err := backend.Open(context.Background(), config.Config{Backend: config.BackendLocal, StateDir: dir}, backend.Options{})
	if err != nil {
		t.Fatal(err)
	}
	release, err := b.HoldBroker()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		release()
		b.Close()
	})
}

// TestDoctorNamesEachProblemAndExitsNonZero drives `socks doctor` against
// a state dir whose recorded Management API answers like a healthy
// gateway, like a wrong stage or credentials (403), like a wrong endpoint
// (404), or not at all (the gateway is down).
func TestDoctorNamesEachProblemAndExitsNonZero(t *testing.T) {
	for _, tc := range []struct {
		name     string
		endpoint func(t *testing.T) string
		code     int
		lines    []string // in the plain output
		noBroker bool
	}{
		{"a gateway answering 410 is healthy", func(t *testing.T) string { return opstest.APIServer(t, 410, "GoneException") }, 0,
			[]string{"ok\tlocal gateway\t", ", broker running\n", "ok\tmanagement API\t"}, false},
		{"a gateway without a broker is a problem", func(t *testing.T) string { return opstest.APIServer(t, 410, "GoneException") }, 1,
			[]string{"fail\tlocal gateway\t", "but no broker is running", "start `socks broker` (with the same --state-dir), or restart `socks serve` without --no-broker", "ok\tmanagement API\t"}, true},
		{"403 is a wrong stage, credentials or permissions", func(t *testing.T) string { return opstest.APIServer(t, 403, "ForbiddenException") }, 1,
			[]string{"fail\tmanagement API\t", "403 Forbidden: the stage is missing", "execute-api:ManageConnections"}, false},
		{"404 is a wrong endpoint", func(t *testing.T) string { return opstest.APIServer(t, 404, "") }, 1,
			[]string{"fail\tmanagement API\t", "404 Not Found", "check the host and path"}, false},
		{"connection refused is a gateway that is down", func(t *testing.T) string { return refusing.URL(t) }, 1,
			[]string{"fail\tlocal gateway\t", "does not answer", "fail\tmanagement API\t", "the gateway is down\tstart it with `socks serve`"}, false},
		// A gateway killed with kill -9, whose port another state dir's
		// serve now uses: that one answers 410, and a broker of this
		// state dir runs; it was reported as this state dir's gateway,
		// healthy.
		{"a record left by a killed gateway whose port is reused is a gateway that is down", func(t *testing.T) string { return opstest.APIServer(t, 410, "GoneException") }, 1,
			[]string{"fail\tlocal gateway\t", "is not running", "start it again with `socks serve`", "warn\tmanagement API\t", "not this state dir's gateway"}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			if strings.HasPrefix(tc.name, "a record left by a killed gateway") {
				recordDeadGateway(t, dir, tc.endpoint(t))
			} else {
				recordGateway(t, dir, tc.endpoint(t))
			}
			if !tc.noBroker {
				holdBroker(t, dir)
			}
			r := run(t, dir, "doctor")
			if r.code != tc.code {
				t.Errorf("exit %d; want %d\nstdout:\n%s\nstderr: %s", r.code, tc.code, r.stdout, r.stderr)
			}
			for _, l := range tc.lines {
				if !strings.Contains(r.stdout, l) {
					t.Errorf("output does not say %q:\n%s", l, r.stdout)
				}
			}
			if tc.code != 0 && !strings.HasPrefix(r.stderr, "socks: doctor found") {
				t.Errorf("stderr %q; want the count of problems", r.stderr)
			}
			js := run(t, dir, "doctor", "--json")
			if js.code != tc.code || !strings.Contains(js.stdout, `"ok":`+fmt.Sprint(tc.code == 0)) {
				t.Errorf("--json: exit %d\n%s", js.code, js.stdout)
			}
			// Nothing is "above" a JSON line that jq may have taken.
			if tc.code != 0 && (strings.Contains(js.stderr, "above") || !strings.Contains(js.stderr, `the "fix" of each failed check`)) {
				t.Errorf("--json stderr %q; want it to point at the checks' fix", js.stderr)
			}
		})
	}
	t.Run("no state file fails without creating one", func(t *testing.T) {
		dir := t.TempDir()
		r := run(t, dir, "doctor")
		if r.code != 1 || !strings.Contains(r.stdout, "fail\tstate file\tno state file at") {
			t.Errorf("exit %d\n%s", r.code, r.stdout)
		}
		if _, err := os.Stat(filepath.Join(dir, config.StateFile)); err == nil {
			t.Error("doctor created the state file")
		}
	})
}

// TestDoctorTakesNoAnswerFromAnotherProgramAtTheGatewaysAddress: a
// gateway that recorded its run ID holds the state dir's lock (a serve
// starting again, its new address not recorded yet), and another program
// listens at the recorded address, answering as a Management API (410)
// without that ID. `socks doctor` reported a healthy Management API; it
// fails that check, saying what answered is not this state dir's serve
// and to start it again, in the plain output and in --json alike. The
// local gateway check, which said ok, warns, saying the same.
func TestDoctorTakesNoAnswerFromAnotherProgramAtTheGatewaysAddress(t *testing.T) {
	dir := t.TempDir()
	stranger := opstest.APIServer(t, 410, "GoneException")
	recordGateway(t, dir, stranger)
	db, err := local.Open(context.Background(), filepath.Join(dir, config.StateFile), local.Options{})
	if err != nil {
		t.Fatal(err)
	}
	err = db.SetMeta(context.Background(), backend.MetaGatewayID, "run-1")
	db.Close()
	if err != nil {
		t.Fatal(err)
	}
	holdBroker(t, dir)
	const (
		detail = "is not this state dir's `socks serve`"
		fix    = "start `socks serve` again"
	)
	r := run(t, dir, "doctor")
	var line, gateway string
	for _, l := range strings.Split(r.stdout, "\n") {
		if strings.Contains(l, "\tmanagement API\t") {
			line = l
		}
		if strings.Contains(l, "\tlocal gateway\t") {
			gateway = l
		}
	}
	if !strings.HasPrefix(gateway, "warn\tlocal gateway\t") || !strings.Contains(gateway, ", broker running, but what answers at "+stranger+" "+detail) || !strings.Contains(gateway, fix) {
		t.Errorf("local gateway %q; want a warning that what answers at %s %s, and to %s\n%s", gateway, stranger, detail, fix, r.stdout)
	}
	if r.code != 1 || !strings.HasPrefix(line, "fail\tmanagement API\t") || !strings.Contains(line, stranger+" "+detail) ||
		!strings.Contains(line, "another program may have taken its port") || !strings.Contains(line, fix) {
		t.Errorf("exit %d, management API %q; want it failing: what answers at %s %s, and to %s\n%s", r.code, line, stranger, detail, fix, r.stdout)
	}
	js := run(t, dir, "doctor", "--json")
	var rep ops.Report
	if err := json.Unmarshal([]byte(js.stdout), &rep); err != nil {
		t.Fatalf("--json: %v\n%s", err, js.stdout)
	}
	var got, gw ops.Result
	for _, c := range rep.Checks {
		switch c.Name {
		case "management API":
			got = c
		case "local gateway":
			gw = c
		}
	}
	if gw.Status != ops.StatusWarn || !strings.Contains(gw.Detail, detail) || !strings.Contains(gw.Fix, fix) {
		t.Errorf("--json: local gateway %+v; want the warning the plain output gives", gw)
	}
	if js.code != 1 || rep.OK || got.Status != ops.StatusFail || !strings.Contains(got.Detail, detail) || !strings.Contains(got.Fix, fix) {
		t.Errorf("--json: exit %d, ok %v, management API %+v; want it failing as the plain output says", js.code, rep.OK, got)
	}
}

func TestBrokerTimeoutOutOfRangeIsAUsageError(t *testing.T) {
	for _, d := range []string{"500ms", "16m"} {
		r := run(t, t.TempDir(), "doctor", "--broker-timeout", d)
		if r.code != 2 || !strings.Contains(r.stderr, "--broker-timeout must be between 1s and 15m") {
			t.Errorf("--broker-timeout %s: exit %d, stderr %q; want 2 and the range", d, r.code, r.stderr)
		}
	}
}

// TestAStateFileFromANewerSocksSaysUpgradeNotMoveAway: a state file a
// newer socks wrote fails the state file check with "upgrade socks"; the
// doctor told the user to move it away, losing what it holds.
func TestAStateFileFromANewerSocksSaysUpgradeNotMoveAway(t *testing.T) {
	dir := t.TempDir()
	db, err := local.Open(context.Background(), filepath.Join(dir, config.StateFile), local.Options{})
	if err != nil {
		t.Fatal(err)
	}
	db.Close()
	raw, err := sql.Open("sqlite", filepath.Join(dir, config.StateFile)) // the driver local registers
	if err != nil {
		t.Fatal(err)
	}
	if _, err := raw.Exec(`PRAGMA user_version = 99`); err != nil {
		t.Fatal(err)
	}
	raw.Close()
	r := run(t, dir, "doctor")
	if r.code != 1 || !strings.Contains(r.stdout, "fail\tstate file\t") || !strings.Contains(r.stdout, "upgrade socks") {
		t.Fatalf("exit %d; want the state file check failing with upgrade socks:\n%s", r.code, r.stdout)
	}
	for _, line := range strings.Split(r.stdout, "\n") {
		if strings.Contains(line, "state file") && strings.Contains(line, "move the file away") {
			t.Errorf("doctor tells the user to move away a newer socks's state: %q", line)
		}
	}
}

// TestAnOlderStateFileInUseSaysStopTheProcess: a state file of an older
// schema that a running `socks serve` (of the older socks) holds fails the
// state file check naming that serve and saying to stop it, not to move
// the file away; the doctor leaves the file as it was.
func TestAnOlderStateFileInUseSaysStopTheProcess(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	serve, err := backend.Open(ctx, config.Config{Backend: config.BackendLocal, StateDir: dir}, backend.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer serve.Close()
	release, locked, err := serve.HoldGateway()
	if err != nil || !locked {
		t.Fatalf("HoldGateway: %v (locked %v)", err, locked)
	}
	defer release()
	if err := serve.DB.SetMeta(ctx, backend.MetaGatewayPID, "4242"); err != nil {
		t.Fatal(err)
	}
	raw, err := sql.Open("sqlite", filepath.Join(dir, config.StateFile))
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	var v int
	if err := raw.QueryRow(`PRAGMA user_version`).Scan(&v); err != nil {
		t.Fatal(err)
	}
	if _, err := raw.Exec(fmt.Sprintf(`PRAGMA user_version = %d`, v-1)); err != nil {
		t.Fatal(err)
	}
	r := run(t, dir, "doctor")
	var line string
	for _, l := range strings.Split(r.stdout, "\n") {
		if strings.HasPrefix(l, "fail\tstate file\t") {
			line = l
		}
	}
	if r.code != 1 || !strings.Contains(line, "`socks serve` (pid 4242)") || !strings.Contains(line, "stop the process") || strings.Contains(line, "move the file away") {
		t.Fatalf("exit %d, state file check %q; want it failing, naming the serve and saying to stop it:\n%s", r.code, line, r.stdout)
	}
	// The gateway check does not tell the user to start a gateway that
	// runs: it is the one to stop.
	for _, l := range strings.Split(r.stdout, "\n") {
		if strings.Contains(l, "\tlocal gateway\t") && (strings.Contains(l, "start it with") || !strings.Contains(l, "older socks")) {
			t.Errorf("local gateway check %q; want it saying an older socks holds the state file, not to start a gateway", l)
		}
	}
	var after int
	if err := raw.QueryRow(`PRAGMA user_version`).Scan(&after); err != nil || after != v-1 {
		t.Fatalf("user_version after the doctor = %d, %v; want %d", after, err, v-1)
	}
}

func TestACheckQuotingOutsideTextCannotDriveTheTerminal(t *testing.T) {
	// A detail or fix quotes what an AWS service, an emulator or a
	// gateway answered: on a terminal it is shown escaped, piped it stays
	// one line of its columns.
	rep := ops.Report{Backend: "aws", Checks: []ops.Result{{
		Name: "queue", Status: ops.StatusFail,
		Detail: "GetQueueAttributes: \x1b]52;c;aGk=\x07denied\u202e\nnext\tcolumn",
		Fix:    "ask \x1b[1A\x1b[2Kthe admin",
	}}}
	var styled, plain bytes.Buffer
	if err := doctor.Render(&styled, ui.NewFor(&styled, true), rep); err != nil {
		t.Fatal(err)
	}
	got := regexp.MustCompile(`\x1b\[[0-9;]*m`).ReplaceAllString(styled.String(), "")
	if strings.ContainsAny(got, "\x1b\x07\u202e\t") || !strings.Contains(got, `\x1b]52;c;aGk=\x07denied\u202e\nnext\tcolumn`) || !strings.Contains(got, `ask \x1b[1A\x1b[2Kthe admin`) {
		t.Errorf("on a terminal the check is shown as\n%q", got)
	}
	if err := doctor.Render(&plain, ui.NewFor(&plain, false), rep); err != nil {
		t.Fatal(err)
	}
	want := "fail\tqueue\tGetQueueAttributes: \x1b]52;c;aGk=\x07denied\u202e\\nnext\\tcolumn\task \x1b[1A\x1b[2Kthe admin\n"
	if plain.String() != want {
		t.Errorf("piped, the check is\n%q\nwant\n%q", plain.String(), want)
	}
}

// TestTheHelpGivesTheMigrationCheckItsReadLimit: the help says how much of
// the connections table the migration check reads, as ops reads it.
func TestTheHelpGivesTheMigrationCheckItsReadLimit(t *testing.T) {
	cmd := doctor.NewCmdDoctor(&cmdutil.Factory{}, nil)
	n := strconv.Itoa(ops.MigrationReadLimit)
	if len(n) > 3 {
		n = n[:len(n)-3] + "," + n[len(n)-3:]
	}
	if want := "reads at most " + n + " items"; !strings.Contains(cmd.Long, want) {
		t.Errorf("doctor's help does not say %q", want)
	}
}

// TestAGatewayStartingOrStoppingIsNamedNotCalledMissing: a gateway holds
// the state dir's lock but has no record (it is starting, or stopping:
// the record goes first at Ctrl-C). The doctor said that no gateway runs
// and to start one, which a serve then refused; it names the process
// and says the gateway is starting or stopping.
func TestAGatewayStartingOrStoppingIsNamedNotCalledMissing(t *testing.T) {
	dir := t.TempDir()
	serve, err := backend.Open(context.Background(), config.Config{Backend: config.BackendLocal, StateDir: dir}, backend.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer serve.Close()
	release, locked, err := serve.HoldGateway()
	if err != nil || !locked {
		t.Fatalf("HoldGateway: %v (locked %v)", err, locked)
	}
	defer release()
	r := run(t, dir, "doctor")
	var line string
	for _, l := range strings.Split(r.stdout, "\n") {
		if strings.Contains(l, "\tlocal gateway\t") {
			line = l
		}
	}
	pid := "pid " + strconv.Itoa(os.Getpid())
	if r.code != 1 || !strings.Contains(line, pid) || !strings.Contains(line, "starting or stopping") || strings.Contains(line, "start it with") {
		t.Fatalf("exit %d, local gateway check %q; want it failing, naming %s as starting or stopping, not saying to start one:\n%s", r.code, line, pid, r.stdout)
	}
}
