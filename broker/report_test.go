package broker_test

import (
	"context"
	"testing"
	"time"

	"github.com/socks-dev/socks/store"
)

// TestAReportSaysHowManyConnectionsAreStillHandedOn follows a message
// whose delivery to one connection fails and is handed on: its report
// says that one is pending until the follow-up settles it, so that
// `publish --wait` can wait for the follow-up rather than answer at the
// first handling.
func TestAReportSaysHowManyConnectionsAreStillHandedOn(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	q := f.db.Queue()
	f.connect(t, "ok", "alice", "updates")
	f.connect(t, "bad", "alice", "updates")
	f.connect(t, "worse", "alice", "updates")
	f.pusher.fail["bad"] = store.KindOther
	f.pusher.fail["worse"] = store.KindOther
	env := envelope(nil, []string{"updates"}, `1`)
	f.enqueue(t, env)
	if out := f.broker.Handle(ctx, receiveOne(t, q, time.Minute)); !out.HandedOn {
		t.Fatalf("outcome %+v; want the failures handed on", out)
	}
	report := func() store.Report {
		t.Helper()
		rep, err := f.db.Store().GetReport(ctx, env.ID)
		if err != nil {
			t.Fatal(err)
		}
		return rep
	}
	if rep := report(); rep.Pending != 2 || rep.Delivered != 1 || rep.DeadLettered {
		t.Fatalf("report after the original = %+v; want 1 delivered and 2 pending", rep)
	}
	// 'bad' recovers, 'worse' does not: 'worse' is handed on again.
	delete(f.pusher.fail, "bad")
	f.pusher.fail["worse"] = store.KindOther
	f.broker.MaxAttempts = 1
	if out := f.broker.Handle(ctx, receiveOne(t, q, time.Minute)); !out.HandedOn {
		t.Fatalf("follow-up outcome %+v; want 'worse' handed on again", out)
	}
	if rep := report(); rep.Pending != 1 || rep.Delivered != 2 || rep.Failed != 1 {
		t.Fatalf("report after the first follow-up = %+v; want 2 delivered, 1 failed and still pending", rep)
	}
	// The second follow-up is past its attempts: dead-lettered, settled.
	if out := f.broker.Handle(ctx, receiveOne(t, q, time.Minute)); !out.DeadLettered {
		t.Fatalf("second follow-up outcome %+v; want dead-lettered", out)
	}
	if rep := report(); rep.Pending != 0 || rep.Delivered != 2 || rep.Failed != 1 || !rep.DeadLettered {
		t.Fatalf("final report = %+v; want 2 delivered, 1 failed, none pending, dead-lettered", rep)
	}
}
