// Package refusing gives tests a loopback address that refuses every
// connection for as long as the test runs.
//
// The usual way, listening on 127.0.0.1:0 and closing the listener, frees
// the port the moment it is found: another process (an emulator, another
// test binary, a client's ephemeral port) may take it before the test
// dials it, and the test then reaches a stranger instead of a refusal.
// Here the port is held: on Unix by a TCP socket bound to it that never
// listens, so that a connection to it is refused (the kernel answers its
// SYN with a reset) and no one else can bind it until the test ends.
// Elsewhere (Windows) the port is a closed listener's, as before.
package refusing

import (
	"testing"
)

// Addr returns a "127.0.0.1:port" address where every connection is
// refused until t and its cleanups end. It fails t when no port can be
// held.
func Addr(t testing.TB) string {
	t.Helper()
	addr, release, err := hold()
	if err != nil {
		t.Fatalf("holding a loopback port that refuses connections: %v", err)
	}
	t.Cleanup(func() {
		if err := release(); err != nil {
			t.Errorf("releasing the refusing port %s: %v", addr, err)
		}
	})
	return addr
}

// URL returns "http://" and Addr(t): an endpoint URL where every request
// fails on a refused connection until t ends.
func URL(t testing.TB) string {
	t.Helper()
	return "http://" + Addr(t)
}
