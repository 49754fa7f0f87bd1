//go:build !unix

package refusing

import "net"

// Held says whether hold keeps others off the port: not here, where the
// port is found by listening on it and closing the listener, and another
// process may take it again before the test is done with it.
const Held = false

func hold() (addr string, release func() error, err error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, err
	}
	addr = ln.Addr().String()
	if err := ln.Close(); err != nil {
		return "", nil, err
	}
	return addr, func() error { return nil }, nil
}
