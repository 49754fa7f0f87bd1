//go:build !unix

package refusing

import "net"

// hold finds a port by listening on it and closing the listener: here
// nothing keeps another process from taking it again before the test is
// done with it.
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
