package serve

import (
	"net"
	"testing"
)

func TestThePageGetsChatterIDsOnlyOnTheLocalBackendOnLoopback(t *testing.T) {
	tests := []struct {
		name  string
		addr  net.Addr
		local bool
		want  bool
	}{
		{"local backend on 127.0.0.1", &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 8765}, true, true},
		{"local backend on ::1", &net.TCPAddr{IP: net.IPv6loopback, Port: 8765}, true, true},
		{"aws backend on 127.0.0.1", &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 8765}, false, false},
		{"local backend on every address", &net.TCPAddr{IP: net.IPv4zero, Port: 8765}, true, false},
		{"local backend on every IPv6 address", &net.TCPAddr{IP: net.IPv6unspecified, Port: 8765}, true, false},
		{"local backend on a LAN address", &net.TCPAddr{IP: net.IPv4(192, 168, 1, 20), Port: 8765}, true, false},
		{"a Unix socket", &net.UnixAddr{Name: "/tmp/socks.sock", Net: "unix"}, true, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := pageMayIssue(tt.addr, tt.local); got != tt.want {
				t.Errorf("pageMayIssue(%v, local=%v) = %v; want %v", tt.addr, tt.local, got, tt.want)
			}
		})
	}
}
