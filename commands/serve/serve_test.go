package serve

import (
	"net"
	"testing"
)

func TestOnlyLoopbackAddressesServeWithoutSignatures(t *testing.T) {
	for _, tc := range []struct {
		ip       string
		loopback bool
	}{
		{"127.0.0.1", true},
		{"127.0.0.2", true},
		{"::1", true},
		{"0.0.0.0", false},
		{"::", false},
		{"192.168.1.10", false},
	} {
		if got := isLoopback(&net.TCPAddr{IP: net.ParseIP(tc.ip), Port: 8765}); got != tc.loopback {
			t.Errorf("isLoopback(%s) = %v; want %v", tc.ip, got, tc.loopback)
		}
	}
}
