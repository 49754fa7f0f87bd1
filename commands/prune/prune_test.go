package prune

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/socks-dev/socks/backend"
	"github.com/socks-dev/socks/commands/cmdutil"
	"github.com/socks-dev/socks/internal/lockedbuf"
	"github.com/socks-dev/socks/iostreams"
	"github.com/socks-dev/socks/local"
	"github.com/socks-dev/socks/ops"
	"github.com/socks-dev/socks/ops/opstest"
	"github.com/socks-dev/socks/pubsub"
	"github.com/socks-dev/socks/store"
)

var now = time.Date(2030, time.June, 1, 12, 0, 0, 0, time.UTC)

func TestFlags(t *testing.T) {
	for _, tc := range []struct {
		name string
		args string
		want func(*Options) bool
	}{
		{"the defaults prune for real with a 2 h max age", "", func(o *Options) bool {
			return !o.DryRun && o.MaxAge == 2*time.Hour && o.Concurrency == ops.DefaultConcurrency && !o.Verbose && !o.JSON
		}},
		{"every flag is read", "--dry-run --max-age 3h --concurrency 4 --segments 8 -v --json", func(o *Options) bool {
			return o.DryRun && o.MaxAge == 3*time.Hour && o.Concurrency == 4 && o.Segments == 8 && o.Verbose && o.JSON
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ios, _, _, _ := iostreams.Test()
			var got *Options
			cmd := NewCmdPrune(&cmdutil.Factory{IOStreams: ios, Now: time.Now}, func(_ context.Context, o *Options) error {
				got = o
				return nil
			})
			args := strings.Fields(tc.args)
			cmd.SetArgs(args)
			cmd.SetOut(&bytes.Buffer{})
			cmd.SetErr(&bytes.Buffer{})
			if err := cmd.Execute(); err != nil {
				t.Fatal(err)
			}
			if got == nil || !tc.want(got) {
				t.Errorf("options %+v", got)
			}
		})
	}
}

type fixture struct {
	opts   *Options
	out    *bytes.Buffer
	errOut *bytes.Buffer
	store  store.Store
	queue  store.Queue
	pusher *opstest.FakePusher
}

// newFixture seeds a local store with one record of each kind: too old,
// expired, gone and live.
func newFixture(t *testing.T) *fixture {
	t.Helper()
	db, err := local.Open(context.Background(), filepath.Join(t.TempDir(), "socks.db"), local.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	s := db.Store()
	for _, c := range []pubsub.Connection{
		{ID: "old", Geek: "a", Topics: []string{"t"}, ConnectedAt: now.Add(-3 * time.Hour), ExpiresAt: now.Add(-time.Hour)},
		{ID: "exp", Geek: "a", Topics: []string{"t"}, ConnectedAt: now.Add(-30 * time.Minute), ExpiresAt: now.Add(-time.Minute)},
		{ID: "gone", Geek: "a", Topics: []string{"t"}, ConnectedAt: now.Add(-time.Minute), ExpiresAt: now.Add(time.Hour)},
		{ID: "live", Geek: "a", Topics: []string{"t"}, ConnectedAt: now.Add(-time.Minute), ExpiresAt: now.Add(time.Hour)},
	} {
		if err := s.PutConnection(context.Background(), c); err != nil {
			t.Fatal(err)
		}
	}
	fake := opstest.NewFakePusher()
	fake.SetLive(store.ConnectionInfo{}, "live")
	ios, _, out, errOut := iostreams.Test()
	return &fixture{
		opts: &Options{
			IO:          ios,
			Store:       func(context.Context) (store.Store, error) { return s, nil },
			Queue:       func(context.Context) (store.Queue, error) { return db.Queue(), nil },
			Pusher:      func(context.Context, int) (store.Pusher, error) { return fake, nil },
			Now:         func() time.Time { return now },
			MaxAge:      2 * time.Hour,
			Concurrency: 4,
			Segments:    2,
		},
		out: out, errOut: errOut, store: s, queue: db.Queue(), pusher: fake,
	}
}

func TestPruneRun(t *testing.T) {
	t.Run("a run prints one summary line and nothing on stderr", func(t *testing.T) {
		fx := newFixture(t)
		if err := pruneRun(context.Background(), fx.opts); err != nil {
			t.Fatal(err)
		}
		want := "checked=4 deleted=3 too_old=1 expired=1 gone=1 vanished=0 kept=1 unchecked=0 errors=0 chatter_ids=0 dead_letters=0\n"
		if fx.out.String() != want {
			t.Errorf("stdout %q; want %q", fx.out, want)
		}
		if fx.errOut.Len() != 0 {
			t.Errorf("stderr %q; want nothing (cron-friendly)", fx.errOut)
		}
	})
	t.Run("a dry run says so and -v logs every decision", func(t *testing.T) {
		fx := newFixture(t)
		fx.opts.DryRun, fx.opts.Verbose = true, true
		if err := pruneRun(context.Background(), fx.opts); err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(fx.out.String(), "dry_run=true checked=4 deleted=3 ") {
			t.Errorf("stdout %q", fx.out)
		}
		if n := strings.Count(fx.errOut.String(), "would delete "); n != 3 {
			t.Errorf("stderr has %d 'would delete' lines; want 3:\n%s", n, fx.errOut)
		}
		if !strings.Contains(fx.errOut.String(), `keep live geek=a reason="live"`) {
			t.Errorf("stderr does not log the live record:\n%s", fx.errOut)
		}
	})
	t.Run("--json prints the counts", func(t *testing.T) {
		fx := newFixture(t)
		fx.opts.JSON = true
		if err := pruneRun(context.Background(), fx.opts); err != nil {
			t.Fatal(err)
		}
		var got struct {
			Checked int `json:"checked"`
			Deleted struct {
				TooOld, Expired, Gone int
			} `json:"deleted"`
			DeletedTotal int `json:"deletedTotal"`
			Kept         int `json:"kept"`
		}
		if err := json.Unmarshal(fx.out.Bytes(), &got); err != nil {
			t.Fatalf("%v: %s", err, fx.out)
		}
		if got.Checked != 4 || got.DeletedTotal != 3 || got.Deleted.Gone != 1 || got.Kept != 1 {
			t.Errorf("got %+v from %s", got, fx.out)
		}
	})
	t.Run("failed checks exit non-zero after the summary", func(t *testing.T) {
		fx := newFixture(t)
		fx.pusher.Fail(errors.New("connection reset"), "live")
		err := pruneRun(context.Background(), fx.opts)
		if err == nil || !strings.Contains(err.Error(), "1 connection check failed and was kept") || !strings.Contains(err.Error(), "socks doctor") {
			t.Errorf("error %v; want the failed check and what to do", err)
		}
		if !strings.Contains(fx.out.String(), "errors=1") {
			t.Errorf("stdout %q; want the summary", fx.out)
		}
	})
	t.Run("without a gateway younger records are unchecked, kept and noted", func(t *testing.T) {
		fx := newFixture(t)
		fx.opts.Pusher = func(context.Context, int) (store.Pusher, error) {
			return nil, fmt.Errorf("opening: %w", backend.ErrNoGateway)
		}
		if err := pruneRun(context.Background(), fx.opts); err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(fx.out.String(), "deleted=2 ") || !strings.Contains(fx.out.String(), "unchecked=2 ") {
			t.Errorf("stdout %q", fx.out)
		}
		if !strings.Contains(fx.errOut.String(), "note: no local gateway is running, so 2 records younger than 2h0m0s could not be checked") {
			t.Errorf("stderr %q", fx.errOut)
		}
	})
	t.Run("a run that deleted nothing and hit no error prints nothing at all", func(t *testing.T) {
		fx := newFixture(t)
		if err := pruneRun(context.Background(), fx.opts); err != nil {
			t.Fatal(err)
		}
		fx.out.Reset()
		// Only the live record is left; without a gateway it is not even
		// checked, which must not make cron mail a note every run either.
		for _, pusher := range []func(context.Context, int) (store.Pusher, error){
			fx.opts.Pusher,
			func(context.Context, int) (store.Pusher, error) { return nil, backend.ErrNoGateway },
		} {
			fx.opts.Pusher = pusher
			if err := pruneRun(context.Background(), fx.opts); err != nil {
				t.Fatal(err)
			}
			if fx.out.Len() != 0 || fx.errOut.Len() != 0 {
				t.Errorf("stdout %q, stderr %q; want nothing on either", fx.out, fx.errOut)
			}
		}
		t.Run("-v and --json still report", func(t *testing.T) {
			fx.opts.Verbose = true
			if err := pruneRun(context.Background(), fx.opts); err != nil {
				t.Fatal(err)
			}
			if !strings.HasPrefix(fx.out.String(), "checked=1 deleted=0 ") || fx.errOut.Len() == 0 {
				t.Errorf("-v: stdout %q, stderr %q; want the summary and the log", fx.out, fx.errOut)
			}
			fx.out.Reset()
			fx.opts.Verbose, fx.opts.JSON = false, true
			if err := pruneRun(context.Background(), fx.opts); err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(fx.out.String(), `"deletedTotal":0`) {
				t.Errorf("--json: stdout %q; want the summary", fx.out)
			}
		})
	})
	t.Run("a run that deleted only dead letters past their retention says so", func(t *testing.T) {
		fx := newFixture(t)
		if err := pruneRun(context.Background(), fx.opts); err != nil {
			t.Fatal(err)
		}
		fx.out.Reset()
		// Dead-lettered by the real clock: years before the run's now.
		ctx := context.Background()
		if _, err := fx.queue.Send(ctx, []byte(`{"n":1}`)); err != nil {
			t.Fatal(err)
		}
		msgs, err := fx.queue.Receive(ctx, 1, time.Minute, 0)
		if err != nil || len(msgs) != 1 {
			t.Fatalf("Receive = %v, %v", msgs, err)
		}
		if err := fx.queue.DeadLetter(ctx, msgs[0], "test"); err != nil {
			t.Fatal(err)
		}
		if err := pruneRun(ctx, fx.opts); err != nil {
			t.Fatal(err)
		}
		if !strings.HasSuffix(fx.out.String(), " chatter_ids=0 dead_letters=1\n") {
			t.Errorf("stdout %q; want the summary with the dead letter deleted", fx.out)
		}
		if st, err := fx.queue.Stats(ctx); err != nil || st.Dead != 0 {
			t.Errorf("Stats = %+v, %v; want no dead letter left", st, err)
		}
	})
	t.Run("bad flags are usage errors", func(t *testing.T) {
		for _, mut := range []func(*Options){
			func(o *Options) { o.MaxAge = 0 },
			func(o *Options) { o.Concurrency = 0 },
			func(o *Options) { o.Segments = 0 },
		} {
			fx := newFixture(t)
			mut(fx.opts)
			var fe *cmdutil.FlagError
			if err := pruneRun(context.Background(), fx.opts); !errors.As(err, &fe) {
				t.Errorf("got %v; want a usage error", err)
			}
		}
	})
	t.Run("a max age under 2 h warns", func(t *testing.T) {
		fx := newFixture(t)
		fx.opts.MaxAge = 10 * time.Minute
		if err := pruneRun(context.Background(), fx.opts); err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(fx.errOut.String(), "warning: --max-age 10m0s is below") {
			t.Errorf("stderr %q", fx.errOut)
		}
	})
	t.Run("a max age under 2 h set in cron says nothing on a run that deleted nothing", func(t *testing.T) {
		// README: a run that deleted nothing and hit no error prints
		// nothing, so cron mails nothing; the warning is for runs that
		// delete (and on a terminal).
		fx := newFixture(t)
		fx.opts.MaxAge = 10 * time.Minute
		if err := pruneRun(context.Background(), fx.opts); err != nil {
			t.Fatal(err)
		}
		fx.out.Reset()
		fx.errOut.Reset()
		if err := pruneRun(context.Background(), fx.opts); err != nil {
			t.Fatal(err)
		}
		if fx.out.Len() != 0 || fx.errOut.Len() != 0 {
			t.Errorf("second run: stdout %q, stderr %q; want nothing at all", fx.out, fx.errOut)
		}
	})
}

// holdingPusher holds every Get until release is closed.
type holdingPusher struct {
	store.Pusher
	release chan struct{}
}

func (h holdingPusher) Get(ctx context.Context, id string) (store.ConnectionInfo, error) {
	<-h.release
	return h.Pusher.Get(ctx, id)
}

func TestPruneProgress(t *testing.T) {
	// prune-stale drew a spinner of its own; it now uses cmdutil.Progress
	// like every other long command: a spinner frame and the time taken,
	// only on terminals, never with -v or --json.
	run := func(t *testing.T, tty bool, mut func(*Options), until func(string) bool) string {
		t.Helper()
		fx := newFixture(t)
		mut(fx.opts)
		fx.opts.IO.SetTTY(false, tty, tty)
		errOut := &lockedbuf.Buffer{}
		fx.opts.IO.ErrOut = errOut
		release := make(chan struct{})
		fx.opts.Pusher = func(context.Context, int) (store.Pusher, error) {
			return holdingPusher{Pusher: fx.pusher, release: release}, nil
		}
		done := make(chan error, 1)
		go func() { done <- pruneRun(context.Background(), fx.opts) }()
		if until != nil {
			deadline := time.After(30 * time.Second)
			for !until(errOut.String()) {
				select {
				case <-deadline:
					close(release)
					<-done
					t.Fatalf("stderr %q never showed the progress", errOut)
				case <-time.After(10 * time.Millisecond):
				}
			}
		}
		close(release)
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		return errOut.String()
	}
	t.Run("on terminals the shared spinner counts the records checked and is cleared", func(t *testing.T) {
		spinning := regexp.MustCompile(`\r\x1b\[K. pruning… \d+ records checked \(`)
		got := run(t, true, func(*Options) {}, spinning.MatchString)
		if !strings.HasSuffix(got, "\r\x1b[K") {
			t.Errorf("stderr %q; want the spinner line cleared at the end", got)
		}
	})
	for _, tc := range []struct {
		name string
		tty  bool
		mut  func(*Options)
	}{
		{"off a terminal nothing is drawn", false, func(*Options) {}},
		{"--json on a terminal draws nothing", true, func(o *Options) { o.JSON = true }},
		{"-v on a terminal logs lines and draws no spinner", true, func(o *Options) { o.Verbose = true }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := run(t, tc.tty, tc.mut, nil); strings.Contains(got, "pruning") || strings.Contains(got, "\x1b") {
				t.Errorf("stderr %q; want no spinner", got)
			}
		})
	}
}

// leasedStore is a store with a prune lease (ops.BulkPruner, as
// DynamoDB's): LockPrune waits for the lease until free is closed, and
// sees, once it holds it and as it gives it up, what the command records
// it still finishes.
type leasedStore struct {
	store.Store
	waiting  chan struct{}
	free     chan struct{}
	stopping *cmdutil.Stopping
	held     []cmdutil.Work
	released []cmdutil.Work
}

func (s *leasedStore) LockPrune(ctx context.Context, waiting func()) (context.Context, func(), error) {
	select {
	case <-s.free:
	default:
		if waiting != nil {
			waiting()
		}
	}
	close(s.waiting)
	select {
	case <-s.free:
	case <-ctx.Done():
		return nil, nil, fmt.Errorf("waiting for another prune to finish: %w", ctx.Err())
	}
	return ctx, func() { s.released = s.stopping.Pending() }, nil
}

func (s *leasedStore) DeleteDeadConnections(ctx context.Context, ids []string) (int, error) {
	s.held = s.stopping.Pending()
	return s.Store.DeleteConnections(ctx, ids)
}

// TestTheStopNoteNamesThePruneLeaseOnlyWhileItIsHeld: prune-stale
// recorded "giving up the stack's prune lease" from the start, so Ctrl-C
// while it waited for another prune's lease said it was giving up a lease
// it did not hold, and a second Ctrl-C that the lease was left to lapse.
// It is recorded from when the lease is taken until it is given up.
func TestTheStopNoteNamesThePruneLeaseOnlyWhileItIsHeld(t *testing.T) {
	t.Run("waiting for the lease", func(t *testing.T) {
		fx := newFixture(t)
		ls := &leasedStore{Store: fx.store, waiting: make(chan struct{}), free: make(chan struct{}), stopping: &cmdutil.Stopping{}}
		fx.opts.Store = func(context.Context) (store.Store, error) { return ls, nil }
		fx.opts.Stopping = ls.stopping
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- pruneRun(ctx, fx.opts) }()
		<-ls.waiting
		if p := ls.stopping.Pending(); len(p) != 0 {
			t.Errorf("while waiting for another prune's lease, recorded %+v; want nothing (no lease is held)", p)
		}
		cancel()
		if err := <-done; !errors.Is(err, context.Canceled) {
			t.Errorf("pruneRun = %v; want it cancelled", err)
		}
	})
	t.Run("holding it", func(t *testing.T) {
		fx := newFixture(t)
		ls := &leasedStore{Store: fx.store, waiting: make(chan struct{}), free: make(chan struct{}), stopping: &cmdutil.Stopping{}}
		close(ls.free)
		fx.opts.Store = func(context.Context) (store.Store, error) { return ls, nil }
		fx.opts.Stopping = ls.stopping
		if err := pruneRun(context.Background(), fx.opts); err != nil {
			t.Fatal(err)
		}
		if len(ls.held) != 1 || !strings.Contains(ls.held[0].What, "prune lease") {
			t.Errorf("while the lease was held, recorded %+v; want the lease", ls.held)
		}
		if len(ls.released) != 1 {
			t.Errorf("as the lease was given up, recorded %+v; want the lease until it is given up", ls.released)
		}
		if p := ls.stopping.Pending(); len(p) != 0 {
			t.Errorf("once prune-stale ended, recorded %+v; want nothing", p)
		}
	})
}

// failingDeletes is a store whose DeleteConnections deletes the first
// batch and then fails, as a store that goes away mid-run.
type failingDeletes struct {
	store.Store
	calls int
}

func (f *failingDeletes) DeleteConnections(ctx context.Context, ids []string) (int, error) {
	if f.calls++; f.calls > 1 {
		return 0, errors.New("connection refused")
	}
	return f.Store.DeleteConnections(ctx, ids)
}

// TestAPruneWhoseStoreFailsMidwaySaysWhatItDidAndARerunFinishes: the run
// prints what it deleted before the failure (--json too), exits non-zero
// naming the failure, and the next run deletes the rest.
func TestAPruneWhoseStoreFailsMidwaySaysWhatItDidAndARerunFinishes(t *testing.T) {
	for _, asJSON := range []bool{false, true} {
		fx := newFixture(t)
		for i := range 60 {
			c := pubsub.Connection{ID: fmt.Sprintf("old-%02d", i), Geek: "a", Topics: []string{"t"}, ConnectedAt: now.Add(-3 * time.Hour)}
			if err := fx.store.PutConnection(context.Background(), c); err != nil {
				t.Fatal(err)
			}
		}
		failing := &failingDeletes{Store: fx.store}
		fx.opts.Store = func(context.Context) (store.Store, error) { return failing, nil }
		fx.opts.Segments, fx.opts.JSON = 1, asJSON
		err := pruneRun(context.Background(), fx.opts)
		if err == nil || !strings.HasPrefix(err.Error(), "prune-stale stopped: ") || !strings.Contains(err.Error(), "connection refused") {
			t.Fatalf("json=%v: got %v; want the run stopped by the failure", asJSON, err)
		}
		first := ops.DeleteBatch
		if asJSON {
			var res struct {
				DeletedTotal int `json:"deletedTotal"`
			}
			if err := json.Unmarshal(fx.out.Bytes(), &res); err != nil || res.DeletedTotal != first {
				t.Errorf("json: stdout %q (%v); want deletedTotal %d", fx.out, err, first)
			}
		} else if !strings.Contains(fx.out.String(), fmt.Sprintf(" deleted=%d ", first)) {
			t.Errorf("stdout %q; want deleted=%d", fx.out, first)
		}
		fx.out.Reset()
		fx.opts.Store = func(context.Context) (store.Store, error) { return fx.store, nil }
		fx.opts.JSON = false
		if err := pruneRun(context.Background(), fx.opts); err != nil {
			t.Fatalf("json=%v: the rerun: %v", asJSON, err)
		}
		var left []string
		_ = fx.store.ScanConnections(context.Background(), 1, func(page []pubsub.Connection) error {
			for _, c := range page {
				left = append(left, c.ID)
			}
			return nil
		})
		if len(left) != 1 || left[0] != "live" {
			t.Errorf("json=%v: after the rerun %q are left; want only live", asJSON, left)
		}
	}
}

// clockedStore is a store whose records carry another clock's times (on
// AWS, API Gateway's and the Lambda's): store.Clock.
type clockedStore struct {
	store.Store
	now time.Time
}

func (s clockedStore) Now(context.Context) (time.Time, error) { return s.now, nil }

// TestAMachineWhoseClockIsOffPrunesByTheStoresClock: on AWS the records'
// times are AWS's. A laptop whose clock was hours ahead deleted the
// records of live connections as too old, without asking the Management
// API (the broker then delivered nothing to them), and one ahead by more
// than 30 s deleted a connection still in its $connect; one behind kept
// dead ones. The run judges by the store's clock.
func TestAMachineWhoseClockIsOffPrunesByTheStoresClock(t *testing.T) {
	for _, skew := range []time.Duration{3 * time.Hour, -3 * time.Hour} {
		t.Run(skew.String(), func(t *testing.T) {
			fx := newFixture(t)
			s := clockedStore{fx.store, now}
			fx.opts.Store = func(context.Context) (store.Store, error) { return s, nil }
			fx.opts.Now = func() time.Time { return now.Add(skew) }
			if err := pruneRun(context.Background(), fx.opts); err != nil {
				t.Fatal(err)
			}
			want := "checked=4 deleted=3 too_old=1 expired=1 gone=1 vanished=0 kept=1 unchecked=0 errors=0 chatter_ids=0 dead_letters=0\n"
			if fx.out.String() != want {
				t.Errorf("stdout %q; want %q", fx.out, want)
			}
			if _, err := fx.store.GetConnection(context.Background(), "live"); err != nil {
				t.Errorf("the live record: %v", err)
			}
		})
	}
}

// unreadClock is a store whose clock cannot be read (a role that may not).
type unreadClock struct{ store.Store }

func (unreadClock) Now(context.Context) (time.Time, error) {
	return time.Time{}, errors.New("AccessDeniedException: not authorized")
}

// TestAStoreClockThatCannotBeReadLeavesThisMachinesClock: the run goes on
// by this machine's clock, as before there was a store clock, and -v
// says so.
func TestAStoreClockThatCannotBeReadLeavesThisMachinesClock(t *testing.T) {
	fx := newFixture(t)
	s := unreadClock{fx.store}
	fx.opts.Store = func(context.Context) (store.Store, error) { return s, nil }
	fx.opts.Verbose = true
	if err := pruneRun(context.Background(), fx.opts); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(fx.out.String(), "checked=4 deleted=3 too_old=1 expired=1 gone=1 ") {
		t.Errorf("stdout %q", fx.out)
	}
	if !strings.Contains(fx.errOut.String(), "note: reading the time by the store's clock: AccessDeniedException: not authorized; records are judged by this machine's clock\n") {
		t.Errorf("stderr %q; want the note", fx.errOut)
	}
}

// TestAPruneWaitingForAnotherSaysSo: a prune-stale waiting for the
// stack's prune lease (another run holds it; one that was killed holds it
// for up to a minute) waited without a word, and on a terminal looked
// hung. On a terminal the spinner says what it waits for, and -v says so
// in a note; from cron it stays quiet. With --json (no spinner) a terminal
// gets the note as a plain line, and cron still nothing.
func TestAPruneWaitingForAnotherSaysSo(t *testing.T) {
	run := func(t *testing.T, tty bool, mut func(*Options), until func(string) bool) string {
		t.Helper()
		fx := newFixture(t)
		mut(fx.opts)
		fx.opts.IO.SetTTY(false, tty, tty)
		errOut := &lockedbuf.Buffer{}
		fx.opts.IO.ErrOut = errOut
		ls := &leasedStore{Store: fx.store, waiting: make(chan struct{}), free: make(chan struct{}), stopping: &cmdutil.Stopping{}}
		fx.opts.Store = func(context.Context) (store.Store, error) { return ls, nil }
		fx.opts.Stopping = ls.stopping
		done := make(chan error, 1)
		go func() { done <- pruneRun(context.Background(), fx.opts) }()
		<-ls.waiting
		deadline := time.After(30 * time.Second)
		for until != nil && !until(errOut.String()) {
			select {
			case <-deadline:
				close(ls.free)
				<-done
				t.Fatalf("stderr %q never said that the run waits for another prune", errOut)
			case <-time.After(10 * time.Millisecond):
			}
		}
		close(ls.free)
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		return errOut.String()
	}
	t.Run("on a terminal the spinner says it", func(t *testing.T) {
		run(t, true, func(*Options) {}, regexp.MustCompile(`\r\x1b\[K. waiting for another prune-stale to finish \(`).MatchString)
	})
	t.Run("-v notes it", func(t *testing.T) {
		got := run(t, false, func(o *Options) { o.Verbose = true }, nil)
		if !strings.Contains(got, "note: another prune-stale holds the stack's prune lease: waiting for it to finish") {
			t.Errorf("stderr %q; want a note that the run waits", got)
		}
	})
	t.Run("from cron nothing is said", func(t *testing.T) {
		if got := run(t, false, func(*Options) {}, nil); got != "" {
			t.Errorf("stderr %q; want nothing", got)
		}
	})
	// --json draws no spinner: on a terminal the note is a plain line,
	// once; piped (the README's cron line) it stays quiet, as without
	// --json ("Quiet for cron": a run that deleted nothing prints nothing).
	t.Run("--json on a terminal notes it plainly", func(t *testing.T) {
		const note = "note: another prune-stale holds the stack's prune lease: waiting for it to finish"
		got := run(t, true, func(o *Options) { o.JSON = true }, nil)
		if strings.Count(got, note) != 1 || strings.Contains(got, "\x1b") || strings.Contains(got, "\r") {
			t.Errorf("stderr %q; want the note once, as a plain line", got)
		}
	})
	t.Run("--json from cron nothing is said", func(t *testing.T) {
		if got := run(t, false, func(o *Options) { o.JSON = true }, nil); got != "" {
			t.Errorf("stderr %q; want nothing", got)
		}
	})
}

// Without a callback URL nothing was tried: the error says what is missing
// and how to set it, not that the Management API could not be reached.
func TestAPruneWithoutACallbackURLSaysWhatIsMissing(t *testing.T) {
	fx := newFixture(t)
	fx.opts.Pusher = func(context.Context, int) (store.Pusher, error) {
		return nil, fmt.Errorf("%w: set --callback-url", backend.ErrNoEndpoint)
	}
	err := pruneRun(context.Background(), fx.opts)
	if err == nil || strings.Contains(err.Error(), "cannot reach") || !strings.Contains(err.Error(), "needs the Management API: no API Gateway endpoint configured: set --callback-url") {
		t.Fatalf("error %v; want what is missing and how to set it", err)
	}
}
