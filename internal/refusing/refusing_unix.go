//go:build unix

package refusing

import (
	"fmt"
	"net"
	"os"
	"strconv"
	"syscall"
)

// hold binds a TCP socket to a port the kernel picks on 127.0.0.1 and
// never listens on it. Without SO_REUSEADDR or SO_REUSEPORT on it, no other
// socket may bind the port while it is open; release closes it.
func hold() (addr string, release func() error, err error) {
	// As package net does: no child process started meanwhile inherits
	// the socket (it would hold the port after the test).
	syscall.ForkLock.RLock()
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM, 0)
	if err == nil {
		syscall.CloseOnExec(fd)
	}
	syscall.ForkLock.RUnlock()
	if err != nil {
		return "", nil, os.NewSyscallError("socket", err)
	}
	fail := func(call string, err error) (string, func() error, error) {
		_ = syscall.Close(fd)
		return "", nil, os.NewSyscallError(call, err)
	}
	if err := syscall.Bind(fd, &syscall.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		return fail("bind", err)
	}
	sa, err := syscall.Getsockname(fd)
	if err != nil {
		return fail("getsockname", err)
	}
	in4, ok := sa.(*syscall.SockaddrInet4)
	if !ok || in4.Port == 0 {
		return fail("getsockname", fmt.Errorf("bound to %#v, not a port on 127.0.0.1", sa))
	}
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(in4.Port)), func() error { return syscall.Close(fd) }, nil
}
