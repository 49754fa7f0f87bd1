package local_test

import (
	"context"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/socks-dev/socks/local"
	"github.com/socks-dev/socks/pubsub"
	"github.com/socks-dev/socks/store"
)

// TestAMessageTheQueueDeadLettersByItselfIsReported receives messages
// until the queue moves them to the dead letters by itself (no broker
// ever settled them: killed each time): the message's report says so,
// with the reason, so that `publish --wait` answers instead of waiting.
// A follow-up's dead letter settles its connections in the report of its
// message; an original's makes a report when there was none.
func TestAMessageTheQueueDeadLettersByItselfIsReported(t *testing.T) {
	ctx := context.Background()
	db, err := local.Open(ctx, filepath.Join(t.TempDir(), "socks.db"), local.Options{MaxReceives: 2})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	q := db.Queue()
	original := pubsub.Envelope{ID: "m-original", Topics: []string{"updates"}, Body: json.RawMessage(`1`)}
	followUp := pubsub.Envelope{ID: "m-followed", Topics: []string{"updates"}, Body: json.RawMessage(`2`),
		FollowUp: pubsub.FollowUp{Connections: []string{"c1", "c2"}, Attempt: 1}}
	before := store.Report{MessageID: "m-followed", Targets: 3, Delivered: 1, Failed: 2, Pending: 2, At: time.Now()}.
		HandOn([][]string{{"c2", "c1"}})
	if err := db.Store().PutReport(ctx, before); err != nil {
		t.Fatal(err)
	}
	for _, env := range []pubsub.Envelope{original, followUp} {
		data, err := env.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		if _, err := q.Send(ctx, data); err != nil {
			t.Fatal(err)
		}
	}
	for range 2 {
		if msgs, err := q.Receive(ctx, 10, 0, 0); err != nil || len(msgs) != 2 {
			t.Fatalf("Receive = %d messages, %v; want 2", len(msgs), err)
		}
	}
	if msgs, err := q.Receive(ctx, 10, 0, 0); err != nil || len(msgs) != 0 {
		t.Fatalf("Receive = %d messages, %v; want none (both dead-lettered)", len(msgs), err)
	}
	rep, err := db.Store().GetReport(ctx, "m-original")
	if err != nil || !rep.DeadLettered || rep.Pending != 0 || !strings.Contains(strings.Join(rep.Errors, " "), "received 2 times") {
		t.Fatalf("report of the original = %+v, %v; want dead-lettered with the reason", rep, err)
	}
	rep, err = db.Store().GetReport(ctx, "m-followed")
	if err != nil || !rep.DeadLettered || rep.Pending != 0 || rep.Targets != 3 || rep.Delivered != 1 || rep.Failed != 2 ||
		!strings.Contains(strings.Join(rep.Errors, " "), "received 2 times") {
		t.Fatalf("report of the follow-up's message = %+v, %v; want its counts kept, none pending, dead-lettered with the reason", rep, err)
	}
}
