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
