package backend

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"sync"
	"testing"
	"time"

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

// TestMain lets TestABrokerInAnotherProcessIsAlwaysSeen run this test
// binary as the brokers and the probes, each its own process.
func TestMain(m *testing.M) {
	role, dir := os.Getenv("SOCKS_TEST_BROKER_ROLE"), os.Getenv("SOCKS_TEST_BROKER_DIR")
	if role == "" {
		os.Exit(m.Run())
	}
	brokerRole(role, dir)
}

// brokerRole plays one process of TestABrokerInAnotherProcessIsAlwaysSeen;
// it exits 1 on any error.
func brokerRole(role, dir string) {
	fail := func(err error) {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	b, err := Open(context.Background(), config.Config{Backend: config.BackendLocal, StateDir: dir}, Options{})
	if err != nil {
		fail(err)
	}
	defer b.Close()
	switch role {
	case "hold": // until stdin closes
		release, err := b.HoldBroker()
		if err != nil {
			fail(err)
		}
		fmt.Println("held")
		_, _ = io.Copy(io.Discard, os.Stdin)
		release()
	case "churn": // start and stop, over and over
		for range 200 {
			release, err := b.HoldBroker()
			if err != nil {
				fail(err)
			}
			release()
		}
	case "probe":
		for i := range 100 {
			if err := b.Broker(); err != nil {
				fail(fmt.Errorf("probe %d: %w", i, err))
			}
		}
	}
}

// The same as TestABrokerThatHoldsOnIsAlwaysSeen, with every broker and
// every probe a process of its own.
func TestABrokerInAnotherProcessIsAlwaysSeen(t *testing.T) {
	dir := t.TempDir()
	cmd := func(role string) (*exec.Cmd, *bytes.Buffer) {
		c := exec.Command(os.Args[0], "-test.run=^$")
		c.Env = append(os.Environ(), "SOCKS_TEST_BROKER_ROLE="+role, "SOCKS_TEST_BROKER_DIR="+dir)
		var errOut bytes.Buffer
		c.Stderr = &errOut
		return c, &errOut
	}
	holder, holderErr := cmd("hold")
	stdin, err := holder.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	out, err := holder.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := holder.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		stdin.Close()
		if err := holder.Wait(); err != nil {
			t.Errorf("the broker that held on: %v\n%s", err, holderErr)
		}
	}()
	if line, err := bufio.NewReader(out).ReadString('\n'); line != "held\n" {
		t.Fatalf("the broker did not start: %q %v\n%s", line, err, holderErr)
	}
	roles := []string{"churn", "churn", "probe", "probe", "probe", "probe"}
	others := make([]*exec.Cmd, len(roles))
	errs := make([]*bytes.Buffer, len(roles))
	for i, role := range roles {
		others[i], errs[i] = cmd(role)
		if err := others[i].Start(); err != nil {
			t.Fatal(err)
		}
	}
	for i, c := range others {
		if err := c.Wait(); err != nil {
			t.Errorf("process %d (%s) while a broker held on: %v\n%s", i, roles[i], err, errs[i])
		}
	}
}

// TestARecordWhoseGatewayHoldsNoLockIsNotBelieved: a gateway killed with
// kill -9 leaves its record and its lock file; once something else
// listens at the recorded address, the record looked alive, and publish
// --direct, listen and bench went to that other process.
func TestARecordWhoseGatewayHoldsNoLockIsNotBelieved(t *testing.T) {
	other, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	dir := t.TempDir()
	b, err := Open(t.Context(), config.Config{Backend: config.BackendLocal, StateDir: dir}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	mgmt := "http://" + other.Addr().String()
	for k, v := range map[string]string{MetaGatewayWebSocket: "ws://" + other.Addr().String() + "/", MetaGatewayManagement: mgmt} {
		if err := b.DB.SetMeta(t.Context(), k, v); err != nil {
			t.Fatal(err)
		}
	}
	// No gateway since the lock ran here: the record and a connect are
	// all there is to go by.
	if _, got, err := b.Gateway(t.Context()); err != nil || got != mgmt {
		t.Fatalf("without a lock file: Gateway = %q, %v; want the record", got, err)
	}
	release, locked, err := b.HoldGateway()
	if err != nil || !locked {
		t.Fatalf("HoldGateway: %v (locked %v)", err, locked)
	}
	if _, got, err := b.Gateway(t.Context()); err != nil || got != mgmt {
		t.Fatalf("while its gateway runs: Gateway = %q, %v; want the record", got, err)
	}
	release() // kill -9
	if _, got, err := b.Gateway(t.Context()); !errors.Is(err, ErrNoGateway) {
		t.Fatalf("after its gateway died: Gateway = %q, %v; want ErrNoGateway", got, err)
	}
}

// TestOrphansAreGivenBackOnlyWhenNoBrokerRuns: a message hidden on the
// local queue is given back at once when no broker runs (its receiver
// died with it), and left alone while a broker that may still handle it
// holds on.
func TestOrphansAreGivenBackOnlyWhenNoBrokerRuns(t *testing.T) {
	ctx := t.Context()
	b, err := Open(ctx, config.Config{Backend: config.BackendLocal, StateDir: t.TempDir()}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if _, err := b.Queue.Send(ctx, []byte(`{"topics":["updates"],"body":1}`)); err != nil {
		t.Fatal(err)
	}
	if msgs, err := b.Queue.Receive(ctx, 1, time.Hour, 0); err != nil || len(msgs) != 1 {
		t.Fatalf("Receive = %d messages, %v; want 1", len(msgs), err)
	}
	inFlight := func(t *testing.T, want int) {
		t.Helper()
		st, err := b.Queue.Stats(ctx)
		if err != nil || st.InFlight != want || st.Visible != 1-want {
			t.Fatalf("Stats = %+v, %v; want %d in flight of 1", st, err, want)
		}
	}

	release, err := b.HoldBroker()
	if err != nil {
		t.Fatal(err)
	}
	t.Run("with a broker running, nothing is given back", func(t *testing.T) {
		if n, err := b.GiveBackOrphans(ctx); n != 0 || err != nil {
			t.Errorf("GiveBackOrphans = %d, %v; want 0, nil", n, err)
		}
		inFlight(t, 1)
	})
	release()
	t.Run("with none, the hidden message is given back", func(t *testing.T) {
		if n, err := b.GiveBackOrphans(ctx); n != 1 || err != nil {
			t.Errorf("GiveBackOrphans = %d, %v; want 1, nil", n, err)
		}
		inFlight(t, 0)
		msgs, err := b.Queue.Receive(ctx, 1, time.Hour, 0)
		if err != nil || len(msgs) != 1 || msgs[0].ReceiveCount != 2 {
			t.Errorf("Receive = %+v, %v; want the message, received for the second time", msgs, err)
		}
	})
}

// TestTheGatewayNamesItsPIDInItsLock: the gateway that holds the state
// dir's gateway lock names its pid in it, for a serve refused the lock to
// say which process to stop while the record names none (the gateway is
// starting, or stopping: the record goes first); the next gateway names
// its own.
func TestTheGatewayNamesItsPIDInItsLock(t *testing.T) {
	b, err := Open(t.Context(), config.Config{Backend: config.BackendLocal, StateDir: t.TempDir()}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if pid := b.GatewayPID(); pid != 0 {
		t.Errorf("before any gateway: GatewayPID = %d; want 0", pid)
	}
	for range 2 {
		release, locked, err := b.HoldGateway()
		if err != nil || !locked {
			t.Fatalf("HoldGateway: %v (locked %v)", err, locked)
		}
		if pid := b.GatewayPID(); pid != os.Getpid() {
			t.Errorf("GatewayPID = %d; want this process's %d", pid, os.Getpid())
		}
		release()
		if pid := b.GatewayPID(); pid != 0 {
			t.Errorf("once the gateway let go (or was killed): GatewayPID = %d; want 0", pid)
		}
	}
}
