package loopback

import "testing"

func TestHost(t *testing.T) {
	for host, want := range map[string]bool{
		"127.0.0.1:8765": true, "127.0.0.1": true, "127.1.2.3:80": true, "[::1]:6060": true, "::1": true, "[::1]": true,
		"localhost": true, "localhost:8765": true,
		"rebind.attacker.example:8765": false, "rebind.attacker.example": false,
		"127.0.0.1.attacker.example:8765": false, "localhost.attacker.example": false,
		"10.0.0.1:8765": false, "[::ffff:10.0.0.1]:1": false, "": false, "0.0.0.0:8765": false,
	} {
		if got := Host(host); got != want {
			t.Errorf("Host(%q) = %v, want %v", host, got, want)
		}
	}
}
