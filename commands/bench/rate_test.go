package bench

import (
	"context"
	"errors"
	"net"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/socks-dev/socks/commands/cmdutil"
	"github.com/socks-dev/socks/iostreams"
)

// TestTheConnectRateSetsTheConnectPace: against a remote endpoint bench
// paced connects at 400/s or, with --no-pace, not at all, with nothing
// between. --connect-rate N now paces them at N a second: under API
// Gateway's other pacing against a remote endpoint, alone with --no-pace
// (which still lifts the fan-outs' pacing), and on this machine too. The
// gaps are read on the fake clock, which moves only by the bench's sleeps.
func TestTheConnectRateSetsTheConnectPace(t *testing.T) {
	for _, tc := range []struct {
		name     string
		remote   bool
		noPace   bool
		rate     int
		wantGap  time.Duration // between connects
		fanPaced bool
	}{
		{"remote, slower than the default", true, false, 100, 10 * time.Millisecond, true},
		{"remote, --no-pace, above the quota", true, true, 1000, time.Millisecond, false},
		{"this machine", false, false, 50, 20 * time.Millisecond, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ft := newFakeTarget(t, newFakeClock())
			p := ft.plan()
			p.pid = 0
			p.pace.connectsPerSecond, p.pace.deliveriesPerSecond = Pace(tc.remote, tc.noPace, tc.rate)
			res, err := measure(context.Background(), measureOptions(10, 1, 3, 0, time.Minute), p, "")
			if err != nil {
				t.Fatal(err)
			}
			dialed, published := ft.gaps()
			if len(dialed) != 9 || slices.Min(dialed) < tc.wantGap {
				t.Errorf("connects %v apart; want 10, each at least %s after the one before", dialed, tc.wantGap)
			}
			if fanPaced := len(published) == 2 && slices.Min(published) >= 10*time.Second/8000; fanPaced != tc.fanPaced {
				t.Errorf("fan-outs %v apart; want them paced at 10/8000 s: %v", published, tc.fanPaced)
			}
			if !res.Paced {
				t.Error("result says not paced")
			}
		})
	}
	if c, _ := Pace(false, false, 0); c != 0 {
		t.Errorf("this machine without --connect-rate paced at %v connects/s", c)
	}
	if c, _ := Pace(true, false, 0); c != awsConnectRate*paceShare {
		t.Errorf("a remote endpoint without --connect-rate paced at %v connects/s; want %v", c, awsConnectRate*paceShare)
	}
}

// stackWS is a deployed stack's WebSocket URL: a remote endpoint, which
// no test dials (noDial).
const stackWS = "wss://abc123.execute-api.eu-west-1.amazonaws.com/prod"

// noDial makes every client connect fail, recording where it was sent:
// nothing outside this machine is dialled.
func noDial(t *testing.T) (dialed func() []string) {
	before := netDial
	t.Cleanup(func() { netDial = before })
	var mu sync.Mutex
	var addrs []string
	netDial = func(_ context.Context, _, addr string) (net.Conn, error) {
		mu.Lock()
		defer mu.Unlock()
		addrs = append(addrs, addr)
		return nil, errors.New("not dialled in a test")
	}
	return func() []string {
		mu.Lock()
		defer mu.Unlock()
		return append([]string(nil), addrs...)
	}
}

// TestAConnectRateAboveAPIGatewaysQuotaNeedsNoPace: against a remote
// endpoint --connect-rate above API Gateway's 500 new connections a
// second is refused before anything is measured, unless --no-pace says
// to go past the quotas; at or under it, or with --no-pace, the bench
// goes on, warning of the pace it keeps. A rate of 0 or less is refused
// anywhere. No client connects: the dialer records where it was sent.
func TestAConnectRateAboveAPIGatewaysQuotaNeedsNoPace(t *testing.T) {
	for _, tc := range []struct {
		name    string
		url     string
		rate    int
		noPace  bool
		refused string // what the usage error says; "" goes on
		warns   string
	}{
		{"above the quota", stackWS, 600, false, "--no-pace", ""},
		{"at the quota", stackWS, 500, false, "", "at most 500 connects/s"},
		{"above the quota with --no-pace", stackWS, 600, true, "", "600 connects/s"},
		{"above the quota on this machine", "ws://127.0.0.1:1/", 600, false, "", ""},
		{"zero", "ws://127.0.0.1:1/", 0, false, "--connect-rate", ""},
		{"negative", stackWS, -3, true, "--connect-rate", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dialed := noDial(t)
			opts := defaults()
			opts.URL, opts.Callback = tc.url, strings.Replace(strings.Replace(tc.url, "wss://", "https://", 1), "ws://", "http://", 1)
			opts.Auth, opts.Publish = AuthNone, PublishBroadcast
			opts.ConnectRate, opts.ConnectRateSet, opts.NoPace = tc.rate, true, tc.noPace
			opts.Backend = nil
			ios, _, _, errOut := iostreams.Test()
			opts.IO, opts.Now, opts.JSON = ios, time.Now, true
			err := benchRun(context.Background(), opts)
			if tc.refused != "" {
				if !cmdutil.IsUsage(err) || !strings.Contains(err.Error(), tc.refused) || !strings.Contains(err.Error(), "--connect-rate") {
					t.Errorf("bench = %v; want a usage error naming --connect-rate and %s", err, tc.refused)
				}
				if len(dialed()) != 0 {
					t.Errorf("dialled %q before refusing", dialed())
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), "cannot connect") {
				t.Fatalf("bench = %v; want it to go on to the first connect, which the test refuses", err)
			}
			if !strings.Contains(errOut.String(), tc.warns) {
				t.Errorf("stderr %q; want it to say %q", errOut, tc.warns)
			}
		})
	}
}

// TestThePacedTableSaysThePaceKept: the table said "paced to at most
// 400/s" whatever the pace; it now says the one kept.
func TestThePacedTableSaysThePaceKept(t *testing.T) {
	ios, _, out, _ := iostreams.Test()
	opts := defaults()
	opts.IO, opts.ConnectRate, opts.ConnectRateSet = ios, 250, true
	res := Result{URL: stackWS, Remote: true, Paced: true, Complete: true, Connections: 20, Connected: 20, Connects: 250}
	if err := printResult(opts, res); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "paced to at most 250/s") {
		t.Errorf("table %q; want it to say the pace, 250/s", out)
	}
}
