package serve

import (
	"net"
	"testing"
)

func TestReachableAddr(t *testing.T) {
	for _, tc := range []struct {
		name string
		addr net.Addr
		want string
	}{
		{"every IPv4 interface is reached on loopback", &net.TCPAddr{IP: net.IPv4zero, Port: 40123}, "127.0.0.1:40123"},
		{"every interface, dual stack ([::]), is reached on loopback", &net.TCPAddr{IP: net.IPv6unspecified, Port: 40123}, "127.0.0.1:40123"},
		{"a loopback address stays", &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 8765}, "127.0.0.1:8765"},
		{"IPv6 loopback stays, bracketed", &net.TCPAddr{IP: net.IPv6loopback, Port: 8765}, "[::1]:8765"},
		{"a specific interface stays", &net.TCPAddr{IP: net.IPv4(192, 0, 2, 7), Port: 8765}, "192.0.2.7:8765"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := ReachableAddr(tc.addr); got != tc.want {
				t.Errorf("ReachableAddr(%s) = %q; want %q", tc.addr, got, tc.want)
			}
		})
	}
}

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
