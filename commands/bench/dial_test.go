package bench

import (
	"bufio"
	"context"
	"crypto/sha1"
	"encoding/base64"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// rawGateway answers each upgrade with answer(accept key), then holds the
// connection until the client goes.
func rawGateway(t *testing.T, answer func(c net.Conn, accept string)) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				req, err := http.ReadRequest(bufio.NewReader(c))
				if err != nil {
					return
				}
				sum := sha1.Sum([]byte(req.Header.Get("Sec-WebSocket-Key") + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"))
				answer(c, base64.StdEncoding.EncodeToString(sum[:]))
				_, _ = io.Copy(io.Discard, c)
			}()
		}
	}()
	return "ws://" + ln.Addr().String() + "/"
}

// TestABenchTargetAnsweringWithWhatWasNotAskedForIsRefused: bench may be
// pointed at any URL. Its dialer took permessage-deflate unasked, whose
// frames the read limit counts compressed (a deflate bomb), and a
// subprotocol it never offered; each is refused, saying so, as listen's.
func TestABenchTargetAnsweringWithWhatWasNotAskedForIsRefused(t *testing.T) {
	for _, extra := range []string{
		"Sec-WebSocket-Extensions: permessage-deflate; server_no_context_takeover; client_no_context_takeover\r\n",
		"Sec-WebSocket-Protocol: other\r\n",
	} {
		u := rawGateway(t, func(c net.Conn, accept string) {
			_, _ = fmt.Fprintf(c, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: %s\r\n%s\r\n", accept, extra)
		})
		ws, err := dial(t.Context(), u, "", 5*time.Second)
		if err == nil {
			ws.Close()
			t.Fatalf("%q: dial took the answer; want it refused", extra)
		}
		if !strings.Contains(err.Error(), "not asked for") {
			t.Errorf("%q: dial: %v; want it to say the server answered with what was not asked for", extra, err)
		}
	}
}

// TestABenchTargetsEndlessHandshakeAnswerIsBounded: header lines without
// end were all read and kept until the handshake timeout (30 s).
func TestABenchTargetsEndlessHandshakeAnswerIsBounded(t *testing.T) {
	const most = 256 << 20
	sent := make(chan int, 1)
	u := rawGateway(t, func(c net.Conn, _ string) {
		line := []byte("X-Filler: " + strings.Repeat("a", 4000) + "\r\n")
		n, _ := c.Write([]byte("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"))
		for n < most {
			m, err := c.Write(line)
			n += m
			if err != nil {
				break
			}
		}
		sent <- n
	})
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	_, err := dial(ctx, u, "", time.Minute)
	if err == nil || !strings.Contains(err.Error(), "over 1 MB") {
		t.Errorf("dial: %v; want it to say the answer to the handshake ran over 1 MB", err)
	}
	if n := <-sent; n >= most {
		t.Errorf("the client read all %d bytes sent; want it to stop past 1 MB", n)
	}
}
