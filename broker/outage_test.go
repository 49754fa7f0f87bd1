package broker_test

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/socks-dev/socks/broker"
	"github.com/socks-dev/socks/internal/lockedbuf"
	"github.com/socks-dev/socks/store"
)

// outageQueue is a queue whose receives fail while down says so, on the
// call's number (from 0); after the call numbered stopAt it ends the run.
type outageQueue struct {
	store.Queue
	calls  int
	down   func(call int) bool
	stopAt int
	stop   context.CancelFunc
}

func (q *outageQueue) Receive(ctx context.Context, n int, vis, wait time.Duration) ([]store.Message, error) {
	call := q.calls
	q.calls++
	if call >= q.stopAt {
		q.stop()
		return nil, ctx.Err()
	}
	if q.down(call) {
		return nil, errors.New("cannot write the state file: the disk is full")
	}
	return []store.Message{}, nil
}

// TestAQueueThatCannotBeReceivedFromIsLoggedWhenItStartsEachMinuteAndWhenItEnds:
// a broker whose receives keep failing (a state file that takes no
// writes: a full disk, another process holding its lock) logs one line
// when they start to fail, a reminder each minute of its clock saying how
// many failed meanwhile, and one line when a receive passes again. Before,
// it logged every failure, about one a second (its backoff is at most
// 2 s), for as long as the outage lasted.
func TestAQueueThatCannotBeReceivedFromIsLoggedWhenItStartsEachMinuteAndWhenItEnds(t *testing.T) {
	var logs lockedbuf.Buffer
	now := time.Date(2026, 12, 2, 1, 0, 0, 0, time.UTC)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	// Receives 1 to 150 fail, one a second of the broker's clock, then
	// receives pass; 200 to 209 fail again.
	q := &outageQueue{stopAt: 215, stop: cancel, down: func(call int) bool {
		return call >= 1 && call <= 150 || call >= 200 && call < 210
	}}
	b := &broker.Broker{
		Queue:  q,
		Now:    func() time.Time { return now },
		Logger: slog.New(slog.NewTextHandler(&logs, nil)),
		Sleep: func(ctx context.Context, d time.Duration) error {
			now = now.Add(time.Second)
			return nil
		},
	}
	if err := b.Run(ctx); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(logs.String()), "\n")
	want := []struct{ says []string }{
		{[]string{"level=ERROR", `msg="receiving from the queue"`, "the disk is full"}},
		{[]string{"level=ERROR", "still fails", "failures=60", "the disk is full"}},
		{[]string{"level=ERROR", "still fails", "failures=60"}},
		{[]string{"level=INFO", "again", "failures=150"}},
		{[]string{"level=ERROR", `msg="receiving from the queue"`}},
		{[]string{"level=INFO", "again", "failures=10"}},
	}
	if len(lines) != len(want) {
		t.Fatalf("%d log lines; want %d (the start, a reminder a minute, the end, of each outage):\n%s", len(lines), len(want), logs.String())
	}
	for i, w := range want {
		for _, s := range w.says {
			if !strings.Contains(lines[i], s) {
				t.Errorf("line %d %q does not say %q", i, lines[i], s)
			}
		}
	}
}
