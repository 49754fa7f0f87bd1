package store_test

import (
	"testing"

	"github.com/socks-dev/socks/store"
)

func TestAFollowUpHandledTwiceIsCountedOnce(t *testing.T) {
	if store.FollowUpKey([]string{"a", "b"}) != store.FollowUpKey([]string{"b", "a"}) {
		t.Fatal("the key of a follow-up depends on the order of its connections")
	}
	if store.FollowUpKey([]string{"ab"}) == store.FollowUpKey([]string{"a", "b"}) {
		t.Fatal("two different sets of connections share a key")
	}
	// Three targets: one delivered, two handed on.
	r := store.Report{MessageID: "m", Targets: 3, Delivered: 1, Failed: 2, Pending: 2}.HandOn([][]string{{"b", "c"}})
	first := store.Report{Delivered: 1, Failed: 1, Pending: 1}
	r = r.Add(first, []string{"b", "c"}, [][]string{{"c"}})
	if r.Delivered != 2 || r.Failed != 1 || r.Pending != 1 {
		t.Fatalf("after the follow-up: %+v; want 2 delivered, 1 failed and pending", r)
	}
	// Handled again (its broker died before the delete): now both got it.
	again := store.Report{Delivered: 2}
	r = r.Add(again, []string{"c", "b"}, nil)
	if r.Delivered != 3 || r.Failed != 0 || r.Pending != 0 {
		t.Fatalf("after the follow-up again: %+v; want 3 delivered, none failed or pending", r)
	}
	// The follow-up to c its first handling made is no longer counted.
	if got := r.Add(store.Report{Delivered: 1}, []string{"c"}, nil); got.Delivered != 3 {
		t.Fatalf("the first handling's follow-up to c counted c again: %+v", got)
	}
	// A follow-up the report does not list adds nothing.
	if got := r.Add(store.Report{Delivered: 5}, []string{"x"}, nil); got.Delivered != r.Delivered {
		t.Fatalf("an unlisted follow-up added %d deliveries", got.Delivered-r.Delivered)
	}
}
