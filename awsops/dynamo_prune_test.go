package awsops

import (
	"context"
	"errors"
	"testing"
	"time"
)

func TestPruneLeaseLetsOnePruneInAtATime(t *testing.T) {
	a := newTestStore(t)
	b := NewDynamoStore(testDynamoClient(t), a.Tables())
	actx, releaseA, err := a.LockPrune(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	// b waits for the lease until its context ends: the deadline bounds
	// the wait, nothing is timed.
	wctx, cancel := context.WithTimeout(t.Context(), 500*time.Millisecond)
	_, _, err = b.LockPrune(wctx)
	cancel()
	if err == nil {
		t.Fatal("a second prune took the lease while the first held it")
	}
	done := make(chan error, 1)
	go func() {
		_, release, err := b.LockPrune(t.Context())
		if err == nil {
			release()
		}
		done <- err
	}()
	releaseA()
	if err := <-done; err != nil {
		t.Fatalf("the second prune did not get the lease once it was released: %v", err)
	}
	if actx.Err() == nil {
		t.Error("the context of a released lease is still live")
	}
}

func TestPruneLeaseLapsesAndItsHolderStops(t *testing.T) {
	a := newTestStore(t)
	a.leaseRenew = 20 * time.Millisecond
	actx, releaseA, err := a.LockPrune(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	defer releaseA()
	// Another prune whose clock is past the lease's end (as if a had
	// stalled for longer than the lease lasts) takes it over...
	b := NewDynamoStore(testDynamoClient(t), a.Tables())
	b.now = func() time.Time { return time.Now().Add(pruneLeaseTTL + time.Second) }
	_, releaseB, err := b.LockPrune(t.Context())
	if err != nil {
		t.Fatalf("a lapsed lease could not be taken: %v", err)
	}
	defer releaseB()
	// ...and a's next renewal fails, which stops a.
	select {
	case <-actx.Done():
	case <-t.Context().Done():
		t.Fatal("the holder of a lapsed lease was not stopped")
	}
	if cause := context.Cause(actx); !errors.Is(cause, ErrPruneLeaseLost) {
		t.Errorf("cause = %v, want ErrPruneLeaseLost", cause)
	}
}
