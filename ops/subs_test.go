package ops_test

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/socks-dev/socks/ops"
	"github.com/socks-dev/socks/ops/opstest"
	"github.com/socks-dev/socks/pubsub"
	"github.com/socks-dev/socks/store"
)

func TestListConnectionsReadsEveryPageSorted(t *testing.T) {
	s := newStore(t)
	// More than one page (500) of the local store.
	for i := range 1200 {
		c := conn(fmt.Sprintf("c-%04d", 1199-i), time.Duration(i%7)*time.Minute, time.Hour)
		c.Geek = fmt.Sprintf("g%d", i%3)
		put(t, s, c)
	}
	put(t, s, conn("expired", time.Hour, -time.Minute))
	got, err := ops.ListConnections(ctxT(t), s, store.ConnectionFilter{}, now)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1200 {
		t.Fatalf("listed %d; want 1200 (expired ones hidden)", len(got))
	}
	for i := 1; i < len(got); i++ {
		a, b := got[i-1], got[i]
		if a.Geek > b.Geek || (a.Geek == b.Geek && (a.ConnectedAt.After(b.ConnectedAt) ||
			(a.ConnectedAt.Equal(b.ConnectedAt) && a.ID > b.ID))) {
			t.Fatalf("not sorted at %d: %s/%s/%s before %s/%s/%s", i, a.Geek, a.ConnectedAt, a.ID, b.Geek, b.ConnectedAt, b.ID)
		}
	}
	only, err := ops.ListConnections(ctxT(t), s, store.ConnectionFilter{Geek: "g1"}, now)
	if err != nil {
		t.Fatal(err)
	}
	if len(only) != 400 {
		t.Errorf("--geek g1 listed %d; want 400", len(only))
	}
}

func TestDescribeAsksTheManagementAPI(t *testing.T) {
	fake := opstest.NewFakePusher()
	active := now.Add(-time.Minute)
	fake.SetLive(store.ConnectionInfo{LastActiveAt: active}, "live")
	fake.Fail(errors.New("boom"), "broken")
	conns := []pubsub.Connection{{ID: "live"}, {ID: "gone"}, {ID: "broken"}}
	got, err := ops.Describe(ctxT(t), fake, conns, 2)
	if err != nil {
		t.Fatal(err)
	}
	if l := got["live"]; l.State != ops.StateLive || !l.LastActiveAt.Equal(active) {
		t.Errorf("live: %+v", l)
	}
	if l := got["gone"]; l.State != ops.StateGone {
		t.Errorf("gone: %+v", l)
	}
	if l := got["broken"]; l.State != ops.StateUnknown || l.Err == nil {
		t.Errorf("broken: %+v", l)
	}
}

func TestCountSubscriptions(t *testing.T) {
	s := newStore(t)
	a := conn("a", 5*time.Minute, time.Hour)
	a.Topics = []string{"updates", "news"}
	b := conn("b", 50*time.Minute, time.Hour)
	b.Geek = "bob"
	c := conn("c", time.Minute, time.Hour)
	c.Topics = []string{pubsub.AllTopics}
	put(t, s, a, b, c, conn("expired", time.Hour, -time.Minute))
	st, err := ops.CountSubscriptions(ctxT(t), s, now)
	if err != nil {
		t.Fatal(err)
	}
	if st.Connections != 3 || st.Geeks != 2 || st.Oldest == nil || st.Oldest.ID != "b" {
		t.Errorf("got %+v; want 3 connections of 2 geeks, b the oldest", st)
	}
	want := "[{updates 2} {. 1} {news 1}]"
	if got := fmt.Sprint(st.Topics); got != want {
		t.Errorf("topics %s; want %s", got, want)
	}
}
