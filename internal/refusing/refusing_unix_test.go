//go:build unix

package refusing_test

import (
	"errors"
	"net"
	"net/http"
	"runtime"
	"syscall"
	"testing"

	"github.com/socks-dev/socks/internal/refusing"
)

// TestTheAddressRefusesAndNoOneElseMayListenThere: a connection to Addr
// is refused, again and again, and while the test holds the port nobody
// can listen on it (on 127.0.0.1, nor, on Linux, on every interface), as
// another process taking a closed listener's port could: the address
// stays refused for the whole test.
func TestTheAddressRefusesAndNoOneElseMayListenThere(t *testing.T) {
	addr := refusing.Addr(t)
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatal(err)
	}
	wantRefused := func(when string) {
		t.Helper()
		c, err := net.Dial("tcp", addr)
		if err == nil {
			c.Close()
			t.Fatalf("%s: a connection to %s was accepted; want it refused", when, addr)
		}
		if !errors.Is(err, syscall.ECONNREFUSED) {
			t.Fatalf("%s: dialling %s: %v; want connection refused", when, addr, err)
		}
	}
	wantRefused("at first")
	wantRefused("dialled again")

	others := []string{addr}
	if runtime.GOOS == "linux" {
		// Where a server on every interface would listen. (BSD lets a
		// socket with SO_REUSEADDR bind the wildcard beside a bound
		// address.)
		others = append(others, ":"+port)
	}
	for _, at := range others {
		ln, err := net.Listen("tcp", at)
		if err == nil {
			ln.Close()
			t.Fatalf("another socket listened on %s while the port was held", at)
		}
		if !errors.Is(err, syscall.EADDRINUSE) {
			t.Errorf("listening on %s: %v; want the address in use", at, err)
		}
	}
	wantRefused("after others tried to listen there")

	resp, err := http.Get(refusing.URL(t))
	if err == nil {
		resp.Body.Close()
		t.Fatal("an HTTP request to URL was answered; want it refused")
	}
	if !errors.Is(err, syscall.ECONNREFUSED) {
		t.Errorf("GET URL: %v; want connection refused", err)
	}
}

// TestEachAddressIsItsOwn: two calls hold two ports, both refusing.
func TestEachAddressIsItsOwn(t *testing.T) {
	a, b := refusing.Addr(t), refusing.Addr(t)
	if a == b {
		t.Fatalf("two calls gave the same address %s", a)
	}
	for _, addr := range []string{a, b} {
		if c, err := net.Dial("tcp", addr); !errors.Is(err, syscall.ECONNREFUSED) {
			if c != nil {
				c.Close()
			}
			t.Errorf("dialling %s: %v; want connection refused", addr, err)
		}
	}
}
