package backend

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/socks-dev/socks/config"
)

// TestTheLocalPusherFollowsTheGatewayToItsNewAddress: the pusher of a
// long-running process (`socks broker`) was made for the address the
// gateway recorded when it started. The gateway stops and starts again
// elsewhere (another free port): a call that cannot reach the old address
// looks the record up again and is made at the new one, as are the calls
// after it. It posted to the old address, refused, until the broker
// dead-lettered every message.
func TestTheLocalPusherFollowsTheGatewayToItsNewAddress(t *testing.T) {
	b, err := Open(t.Context(), config.Config{Backend: config.BackendLocal, StateDir: t.TempDir()}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	var posts atomic.Int32
	gateway := func() *httptest.Server {
		return httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Method == http.MethodPost && strings.HasPrefix(r.URL.Path, "/@connections/") {
				posts.Add(1)
				return
			}
			http.NotFound(w, r)
		}))
	}
	record := func(srv *httptest.Server) {
		t.Helper()
		for k, v := range map[string]string{MetaGatewayWebSocket: "ws" + strings.TrimPrefix(srv.URL, "http") + "/", MetaGatewayManagement: srv.URL} {
			if err := b.DB.SetMeta(t.Context(), k, v); err != nil {
				t.Fatal(err)
			}
		}
	}
	first := gateway()
	record(first)
	p, err := b.Pusher(t.Context(), 4)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Post(t.Context(), "c1", []byte("1")); err != nil || posts.Load() != 1 {
		t.Fatalf("Post to the first gateway: %v (%d posts)", err, posts.Load())
	}
	first.Close()
	second := gateway()
	defer second.Close()
	record(second)
	for i := range 3 {
		if err := p.Post(t.Context(), "c1", []byte("2")); err != nil {
			t.Fatalf("Post %d once the gateway moved: %v; want it made at the new address", i+1, err)
		}
	}
	if n := posts.Load(); n != 4 {
		t.Errorf("%d posts arrived; want 4", n)
	}
}

// TestTheLocalPusherFollowsWhenTheOldGatewayClosesTheConnection: the
// gateway was stopped (or killed) with a call under way, or the
// connection kept alive to it was closed as the call went out: the call
// fails with EOF, not with a refused connect, and is made again at the
// address the record names now. It stood (a retry, later), and
// TestTheLocalPusherFollowsTheGatewayToItsNewAddress failed so at times.
func TestTheLocalPusherFollowsWhenTheOldGatewayClosesTheConnection(t *testing.T) {
	b, err := Open(t.Context(), config.Config{Backend: config.BackendLocal, StateDir: t.TempDir()}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	// The old gateway reads each call and closes the connection unanswered.
	old, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer old.Close()
	go func() {
		for {
			c, err := old.Accept()
			if err != nil {
				return
			}
			if r, err := http.ReadRequest(bufio.NewReader(c)); err == nil {
				_, _ = io.Copy(io.Discard, r.Body)
			}
			_ = c.Close()
		}
	}()
	var posts atomic.Int32
	next := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost && strings.HasPrefix(r.URL.Path, "/@connections/") {
			posts.Add(1)
			return
		}
		http.NotFound(w, r)
	}))
	defer next.Close()
	record := func(mgmt string) {
		t.Helper()
		for k, v := range map[string]string{MetaGatewayWebSocket: "ws" + strings.TrimPrefix(mgmt, "http") + "/", MetaGatewayManagement: mgmt} {
			if err := b.DB.SetMeta(t.Context(), k, v); err != nil {
				t.Fatal(err)
			}
		}
	}
	record("http://" + old.Addr().String())
	p, err := b.Pusher(t.Context(), 4)
	if err != nil {
		t.Fatal(err)
	}
	record(next.URL)
	if err := p.Post(t.Context(), "c1", []byte("1")); err != nil {
		t.Fatalf("Post as the old gateway closed the connection: %v; want it made at the new address", err)
	}
	if n := posts.Load(); n != 1 {
		t.Errorf("%d posts arrived at the new address; want 1", n)
	}
}
