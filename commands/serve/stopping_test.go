package serve

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/socks-dev/socks/backend"
	"github.com/socks-dev/socks/commands/cmdutil"
	"github.com/socks-dev/socks/local"
	"github.com/socks-dev/socks/store"
)

// TestWhatAForcedStopLeavesIsSaidForEachKindOfServe: a serve on the AWS
// store has no next serve that deletes the records its clients left, and
// one whose broker holds no batch (idle, or --no-broker) has no message
// in hand.
func TestWhatAForcedStopLeavesIsSaidForEachKindOfServe(t *testing.T) {
	for _, tc := range []struct {
		name          string
		inHand, local bool
		want, notWant []string
	}{
		{"local, its broker holding a batch", true, true,
			[]string{"finishing the messages in hand, then closing the connections, for at most 5s each", "the next socks serve on this state dir deletes their records", "delivered again by the next broker"},
			[]string{"prune-stale"}},
		{"local, its broker idle or --no-broker", false, true,
			[]string{"closing the connections, for at most 5s", "the next socks serve on this state dir deletes their records"},
			[]string{"in hand", "each"}},
		{"AWS store, its broker holding a batch", true, false,
			[]string{"finishing the messages in hand", "their records stay in the connections table until `socks prune-stale`", "comes back on the queue after the visibility timeout"},
			[]string{"next socks serve", "next broker"}},
		{"AWS store, its broker idle or --no-broker", false, false,
			[]string{"closing the connections, for at most 5s", "their records stay in the connections table until `socks prune-stale`"},
			[]string{"in hand", "next socks serve"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := stoppingWork(tc.inHand, tc.local)
			said := w.What + " / " + w.Left
			for _, s := range tc.want {
				if !strings.Contains(said, s) {
					t.Errorf("%q does not say %q", said, s)
				}
			}
			for _, s := range tc.notWant {
				if strings.Contains(said, s) {
					t.Errorf("%q says %q", said, s)
				}
			}
		})
	}
}

// stopNotes notes what serve would say it finishes after Ctrl-C
// (Stopping.Pending) when its broker first waits for a batch, while it
// has the message in hand (its target lookup), and when it waits again
// after it; then it cancels serve, as Ctrl-C does.
type stopNotes struct {
	stopping *cmdutil.Stopping
	cancel   context.CancelFunc

	mu                    sync.Mutex
	before, inHand, after []cmdutil.Work
	looked                bool
}

type noteQueue struct {
	store.Queue
	n *stopNotes
}

func (q noteQueue) Receive(ctx context.Context, max int, vis, wait time.Duration) ([]store.Message, error) {
	q.n.mu.Lock()
	switch {
	case q.n.looked && q.n.after == nil:
		q.n.after = q.n.stopping.Pending()
		q.n.cancel()
	case !q.n.looked && q.n.before == nil:
		q.n.before = q.n.stopping.Pending()
	}
	q.n.mu.Unlock()
	return q.Queue.Receive(ctx, max, vis, wait)
}

type noteStore struct {
	*local.Store
	n *stopNotes
}

func (s noteStore) FindTargetIDs(ctx context.Context, users, topics []string, now time.Time) ([]string, error) {
	s.n.mu.Lock()
	s.n.inHand, s.n.looked = s.n.stopping.Pending(), true
	s.n.mu.Unlock()
	return s.Store.FindTargetIDs(ctx, users, topics, now)
}

// TestCtrlCSaysServeFinishesMessagesOnlyWhileItsBrokerHoldsSome: Ctrl-C
// to an idle serve said "finishing the messages in hand, then closing the
// connections", and a second one that a message it had in hand would be
// delivered again, though its broker held none. Both speak of messages
// only while the broker has a batch in hand, first, then of the
// connections; an idle serve, or one with --no-broker, only closes them.
func TestCtrlCSaysServeFinishesMessagesOnlyWhileItsBrokerHoldsSome(t *testing.T) {
	const idle = "closing the connections, for at most 5s"
	isIdle := func(p []cmdutil.Work) bool {
		return len(p) == 1 && p[0].What == idle && strings.Contains(p[0].Left, "no close frame") && !strings.Contains(p[0].Left, "in hand")
	}

	opts := testOptions(t)
	opts.Stopping = &cmdutil.Stopping{}
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute) // a bound, if the broker never waits again
	defer cancel()
	n := &stopNotes{stopping: opts.Stopping, cancel: cancel}
	open := opts.Backend
	other, err := open(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := other.Queue.Send(ctx, []byte(`{"id":"m-1","users":["Friendless"],"topics":["updates"],"body":"plays-updated"}`)); err != nil {
		t.Fatal(err)
	}
	opts.Backend = func(ctx context.Context) (*backend.Backend, error) {
		b, err := open(ctx)
		if err != nil {
			return nil, err
		}
		b.Store, b.Queue = noteStore{Store: b.DB.Store(), n: n}, noteQueue{Queue: b.Queue, n: n}
		return b, nil
	}
	if err := Run(ctx, opts); err != nil {
		t.Fatal(err)
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	if !isIdle(n.before) {
		t.Errorf("waiting for its first batch, Ctrl-C would say %+v; want only %q, nothing in hand", n.before, idle)
	}
	if len(n.inHand) != 1 || n.inHand[0].What != "finishing the messages in hand, then closing the connections, for at most 5s each" ||
		!strings.Contains(n.inHand[0].Left, "no close frame") || !strings.Contains(n.inHand[0].Left, "a message it had in hand is delivered again by the next broker") {
		t.Errorf("with a message in hand, Ctrl-C would say %+v; want the messages in hand, then the connections", n.inHand)
	}
	if !isIdle(n.after) {
		t.Errorf("waiting again after the message, Ctrl-C would say %+v; want only %q, nothing in hand", n.after, idle)
	}
	if p := opts.Stopping.Pending(); len(p) != 0 {
		t.Errorf("after the run: %+v still recorded", p)
	}

	t.Run("--no-broker", func(t *testing.T) {
		opts := testOptions(t)
		opts.Stopping, opts.NoBroker = &cmdutil.Stopping{}, true
		stop := startServe(t, opts)
		if p := opts.Stopping.Pending(); !isIdle(p) {
			t.Errorf("Ctrl-C would say %+v; want only %q", p, idle)
		}
		stop()
	})
}
