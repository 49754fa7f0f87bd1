package bench

import (
	"context"
	"errors"
	"net"
	"net/http"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/socks-dev/socks/backend"
	"github.com/socks-dev/socks/bench/ceiling"
	"github.com/socks-dev/socks/commands/cmdutil"
	"github.com/socks-dev/socks/iostreams"
)

// otherProcess starts a process that is no gateway (sleep) and returns
// its PID; it is killed when the test ends.
func otherProcess(t *testing.T) int {
	t.Helper()
	cmd := exec.Command("sleep", "600")
	if err := cmd.Start(); err != nil {
		t.Skipf("cannot start another process: %v", err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	return cmd.Process.Pid
}

// goneProcess returns the PID of a process that has ended.
func goneProcess(t *testing.T) int {
	t.Helper()
	cmd := exec.Command("true")
	if err := cmd.Run(); err != nil {
		t.Skipf("cannot run another process: %v", err)
	}
	return cmd.Process.Pid
}

// TestOnlyTheGatewaysProcessIsMeasured: bench read the memory of whatever
// process had the PID the gateway recorded, or --pid, unchecked. A stale
// or mistaken PID (a record from a gateway in another PID namespace, a
// PID since reused, a typo) gave a figure of another process's memory:
// a sleeping process gave 0 KiB per connection. Bench now checks that the
// process listens on the port of the URL it measures: the recorded PID
// that does not is not measured (a warning says why), and a --pid that
// does not is refused before anything is measured.
func TestOnlyTheGatewaysProcessIsMeasured(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("memory is measured on Linux")
	}
	t.Run("a recorded PID of another process gives no memory figure", func(t *testing.T) {
		open := localBackend(t)
		startServe(t, open)
		b, _ := open(context.Background())
		other := otherProcess(t)
		if err := b.DB.SetMeta(context.Background(), backend.MetaGatewayPID, strconv.Itoa(other)); err != nil {
			t.Fatal(err)
		}
		opts := defaults()
		opts.Backend = open
		res, errOut := runBench(t, opts)
		checkFigures(t, res, 20, 2, 5)
		if res.Memory != nil {
			t.Errorf("memory %+v: measured process %d, which is not the gateway", res.Memory, other)
		}
		if want := "memory per connection not measured: process " + strconv.Itoa(other); !strings.Contains(errOut, want) {
			t.Errorf("stderr %q; want it to say %q", errOut, want)
		}
	})

	ceilingURL := func(t *testing.T) (wsURL, callback string, upgrades *atomic.Int64) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		c := ceiling.New()
		upgrades = &atomic.Int64{}
		srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path == "/" {
				upgrades.Add(1)
			}
			c.ServeHTTP(w, r)
		})}
		go func() { _ = srv.Serve(ln) }()
		t.Cleanup(func() { srv.Close() })
		return "ws://" + ln.Addr().String() + "/", "http://" + ln.Addr().String(), upgrades
	}
	for _, tc := range []struct {
		name string
		pid  func(t *testing.T) int
		want string
	}{
		{"a --pid that does not listen at --url is refused", otherProcess, "does not listen on port"},
		{"a --pid of no process is refused", goneProcess, "no process"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			wsURL, callback, upgrades := ceilingURL(t)
			opts := defaults()
			opts.URL, opts.Callback = wsURL, callback
			opts.Auth, opts.Publish = AuthNone, PublishBroadcast
			opts.PID = tc.pid(t)
			ios, _, out, _ := iostreams.Test()
			opts.IO, opts.Now, opts.JSON = ios, time.Now, true
			err := benchRun(context.Background(), opts)
			var fe *cmdutil.FlagError
			if !errors.As(err, &fe) || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), strconv.Itoa(opts.PID)) {
				t.Fatalf("bench = %v; want a flag error naming pid %d and saying %q", err, opts.PID, tc.want)
			}
			if n := upgrades.Load(); n != 0 || out.Len() != 0 {
				t.Errorf("%d upgrades and stdout %q before the refusal; want nothing measured", n, out)
			}
		})
	}
	t.Run("the --pid that listens at --url is measured", func(t *testing.T) {
		wsURL, callback, _ := ceilingURL(t)
		opts := defaults()
		opts.URL, opts.Callback = wsURL, callback
		opts.Auth, opts.Publish = AuthNone, PublishBroadcast
		opts.PID = os.Getpid()
		res, errOut := runBench(t, opts)
		if res.Memory == nil && !strings.Contains(errOut, "resident memory fell") {
			t.Errorf("no memory figure for this process, which serves the ceiling; stderr %q", errOut)
		}
	})
}

// TestWithoutProcTheLocalGatewayIsBenchedWithoutMemory: memory is read
// from /proc, which only Linux has. On macOS and Windows the local
// gateway's recorded PID made every `socks bench` fail at its memory
// phase ("cannot read the memory of process N"), after the latency
// phase, with exit 1. Without /proc the bench now measures everything
// else and says memory is not measured; --pid is refused up front.
func TestWithoutProcTheLocalGatewayIsBenchedWithoutMemory(t *testing.T) {
	defer func(f func() bool) { procReadable = f }(procReadable)
	procReadable = func() bool { return false }
	open := localBackend(t)
	startServe(t, open)
	opts := defaults()
	opts.Backend = open
	res, errOut := runBench(t, opts)
	checkFigures(t, res, 20, 2, 5)
	if !res.Complete || res.Memory != nil {
		t.Errorf("complete %v, memory %+v; want a complete bench without memory", res.Complete, res.Memory)
	}
	if !strings.Contains(errOut, "memory per connection not measured") || !strings.Contains(errOut, "Linux") {
		t.Errorf("stderr %q; want it to say memory is measured on Linux only", errOut)
	}

	opts = defaults()
	opts.Backend = open
	opts.PID = os.Getpid()
	ios, _, out, _ := iostreams.Test()
	opts.IO, opts.Now = ios, time.Now
	err := benchRun(context.Background(), opts)
	var fe *cmdutil.FlagError
	if !errors.As(err, &fe) || !strings.Contains(err.Error(), "Linux") || out.Len() != 0 {
		t.Errorf("bench --pid = %v, stdout %q; want a flag error saying memory is measured on Linux, and nothing measured", err, out)
	}
}

// A gateway that listens on [::1] or on every address (serve --addr
// [::1]:8765, 0.0.0.0:8765), benched at 127.0.0.1 or localhost, is still
// found listening on the URL's port: the check reads net/tcp and
// net/tcp6, by port.
func TestAGatewayListeningOnAnyAddressIsFoundByItsPort(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("read from /proc on Linux")
	}
	for _, addr := range []string{"127.0.0.1:0", "0.0.0.0:0", "[::1]:0", "[::]:0"} {
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			t.Logf("%s: %v (no such address here)", addr, err)
			continue
		}
		port := ln.Addr().(*net.TCPAddr).Port
		listens, known, err := listensOn(os.Getpid(), port)
		if !listens || !known || err != nil {
			t.Errorf("listening on %s (port %d): listens %v, known %v, %v; want found", addr, port, listens, known, err)
		}
		ln.Close()
		if listens, _, _ := listensOn(os.Getpid(), port); listens {
			t.Errorf("port %d closed still found listening", port)
		}
	}
}
