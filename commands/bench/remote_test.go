package bench

import (
	"net"
	"testing"
)

// TestAnAddressOfThisMachineIsNotRemote: bench took only loopback and
// "localhost" for this machine. `socks serve --addr 192.168.1.5:8765`
// (to reach it from a phone) records that URL, and `socks bench` then
// warned that it cost money, paced itself under API Gateway's quotas,
// and refused the gateway's own recorded PID ("--pid measures memory of
// a gateway on this machine"), a flag the user never gave. An address of
// one of this machine's interfaces is now this machine, as are
// LOCALHOST and 0.0.0.0; nothing is sent to any of them here.
func TestAnAddressOfThisMachineIsNotRemote(t *testing.T) {
	for _, u := range []string{"ws://LOCALHOST:8765/", "ws://0.0.0.0:8765/", "ws://[::]:8765/"} {
		if IsRemote(u) {
			t.Errorf("IsRemote(%s) = true; want false", u)
		}
	}
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		t.Skipf("cannot list this machine's addresses: %v", err)
	}
	// TEST-NET-3, unless this machine has it.
	other := net.ParseIP("203.0.113.7")
	ours := false
	for _, a := range addrs {
		if ipn, ok := a.(*net.IPNet); ok && ipn.IP.Equal(other) {
			ours = true
		}
	}
	if !ours && !IsRemote("ws://203.0.113.7:8765/") {
		t.Error("IsRemote(ws://203.0.113.7:8765/) = false; want true")
	}
	seen := 0
	for _, a := range addrs {
		ipn, ok := a.(*net.IPNet)
		if !ok || ipn.IP.IsLoopback() || ipn.IP.IsLinkLocalUnicast() {
			continue
		}
		seen++
		u := "ws://" + net.JoinHostPort(ipn.IP.String(), "8765") + "/"
		if IsRemote(u) {
			t.Errorf("IsRemote(%s) = true for an address of this machine; want false", u)
		}
	}
	if seen == 0 {
		t.Log("this machine has no address but loopback and link-local: only the names were checked")
	}
}
