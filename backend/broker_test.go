package backend

import (
	"errors"
	"sync"
	"testing"

	"github.com/socks-dev/socks/config"
)

func TestBrokersAreKnownWhileTheyHoldOn(t *testing.T) {
	b, err := Open(t.Context(), config.Config{Backend: config.BackendLocal, StateDir: t.TempDir()}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	want := func(t *testing.T, what error) {
		t.Helper()
		if err := b.Broker(); !errors.Is(err, what) {
			t.Fatalf("Broker() = %v; want %v", err, what)
		}
	}
	t.Run("none before any broker ran", func(t *testing.T) { want(t, ErrNoBroker) })
	first, err := b.HoldBroker()
	if err != nil {
		t.Fatal(err)
	}
	t.Run("one broker is known", func(t *testing.T) { want(t, nil) })
	t.Run("asking again still finds it", func(t *testing.T) { want(t, nil) })
	second, err := b.HoldBroker()
	if err != nil {
		t.Fatal(err)
	}
	first()
	t.Run("of two brokers, the one left is known", func(t *testing.T) { want(t, nil) })
	second()
	t.Run("none once both stopped", func(t *testing.T) { want(t, ErrNoBroker) })
}

func TestOnAWSTheBrokerIsNotAsked(t *testing.T) {
	b := &Backend{Config: config.Config{Backend: config.BackendAWS}}
	release, err := b.HoldBroker()
	if err != nil {
		t.Fatal(err)
	}
	release()
	if err := b.Broker(); err != nil {
		t.Fatalf("Broker() on AWS = %v; want nil (the Lambda function is the broker)", err)
	}
}

// Probes take the lock file for an instant: probes at once must not take
// each other for a broker.
func TestProbesAtOnceDoNotSeeEachOtherAsBrokers(t *testing.T) {
	b, err := Open(t.Context(), config.Config{Backend: config.BackendLocal, StateDir: t.TempDir()}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	errs := make(chan error, 8*50)
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 50 {
				errs <- b.Broker()
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if !errors.Is(err, ErrNoBroker) {
			t.Fatalf("a probe beside other probes got %v; want ErrNoBroker", err)
		}
	}
}

// A publisher may never be told that no broker runs while one holds on
// all along, however many probes run at once and however many other
// brokers start and stop meanwhile.
func TestABrokerThatHoldsOnIsAlwaysSeen(t *testing.T) {
	b, err := Open(t.Context(), config.Config{Backend: config.BackendLocal, StateDir: t.TempDir()}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	release, err := b.HoldBroker()
	if err != nil {
		t.Fatal(err)
	}
	defer release()
	stop := make(chan struct{})
	var churn sync.WaitGroup
	for range 3 {
		churn.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				r, err := b.HoldBroker()
				if err != nil {
					t.Error(err)
					return
				}
				r()
			}
		})
	}
	errs := make(chan error, 6*100)
	var probes sync.WaitGroup
	for range 6 {
		probes.Go(func() {
			for range 100 {
				errs <- b.Broker()
			}
		})
	}
	probes.Wait()
	close(stop)
	churn.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatalf("a probe got %v while a broker held on all along", err)
		}
	}
}
