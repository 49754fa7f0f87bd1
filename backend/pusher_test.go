package backend

import (
	"bufio"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/socks-dev/socks/config"
	"github.com/socks-dev/socks/pubsub"
	"github.com/socks-dev/socks/store"
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

// TestTheLocalPusherTakesNoAnswerFromAnotherProgramAtTheGatewaysAddress:
// the serve a broker follows stopped, and another program took its port:
// it answers every call 200 (or 410). The answers do not carry the
// gateway's run ID, so none is taken: the call fails (the broker retries
// it, the message stays queued), the calls after it are not sent there at
// all, and once the record names a gateway again (a serve started again,
// elsewhere), they are made there. The 200 counted the message delivered
// and the broker deleted it from the queue; a 410 deleted the
// connection's record.
func TestTheLocalPusherTakesNoAnswerFromAnotherProgramAtTheGatewaysAddress(t *testing.T) {
	b, err := Open(t.Context(), config.Config{Backend: config.BackendLocal, StateDir: t.TempDir()}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	var strangerCalls atomic.Int32
	status := atomic.Int32{}
	status.Store(http.StatusOK)
	stranger := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		strangerCalls.Add(1)
		if s := int(status.Load()); s == http.StatusGone {
			w.Header().Set("X-Amzn-Errortype", "GoneException")
			w.WriteHeader(s)
			_, _ = w.Write([]byte(`{"message":"gone"}`))
		}
	}))
	defer stranger.Close()
	var posts atomic.Int32
	gateway := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set(pubsub.GatewayIDHeader, "run-2")
		if r.Method == http.MethodPost && strings.HasPrefix(r.URL.Path, "/@connections/") {
			posts.Add(1)
			return
		}
		http.NotFound(w, r)
	}))
	defer gateway.Close()
	record := func(mgmt, id string) {
		t.Helper()
		for k, v := range map[string]string{MetaGatewayID: id, MetaGatewayWebSocket: "ws" + strings.TrimPrefix(mgmt, "http") + "/", MetaGatewayManagement: mgmt} {
			if err := b.DB.SetMeta(t.Context(), k, v); err != nil {
				t.Fatal(err)
			}
		}
	}
	// The serve that recorded run-1 is gone; the stranger listens at its
	// address.
	record(stranger.URL, "run-1")
	p, err := b.Pusher(t.Context(), 4)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []int{http.StatusOK, http.StatusGone} {
		status.Store(int32(s))
		// A fresh pusher for each, as a broker started now would have.
		p, err := b.Pusher(t.Context(), 4)
		if err != nil {
			t.Fatal(err)
		}
		err = p.Post(t.Context(), "c1", []byte("secret"))
		var pe *store.PushError
		var nt *NotThisGatewayError
		if !errors.As(err, &pe) || pe.Kind != store.KindOther || !errors.As(err, &nt) {
			t.Fatalf("Post answered %d by another program: %v; want a failure (KindOther) saying it is not the gateway", s, err)
		}
		if want := "the server at " + strings.TrimPrefix(stranger.URL, "http://") + " is not this state dir's socks serve"; !strings.Contains(err.Error(), want) {
			t.Errorf("error %q; want it to say %q", err, want)
		}
	}
	// The calls after the first are not sent to the stranger at all.
	if err := p.Post(t.Context(), "c1", []byte("secret")); err == nil {
		t.Fatal("first Post to the stranger succeeded")
	}
	before := strangerCalls.Load()
	for range 3 {
		if err := p.Post(t.Context(), "c1", []byte("secret")); err == nil {
			t.Fatal("Post to the stranger succeeded")
		}
	}
	if n := strangerCalls.Load(); n != before {
		t.Errorf("%d more calls reached the stranger once it was known not to be the gateway; want none", n-before)
	}
	// A serve starts again elsewhere: the calls go there. (The record is
	// looked up at most every refollowEvery: wait for that, bounded.)
	record(gateway.URL, "run-2")
	for i := 0; ; i++ {
		err := p.Post(t.Context(), "c1", []byte("hi"))
		if err == nil {
			break
		}
		if i == 100 {
			t.Fatalf("Post once a gateway runs again: %v", err)
		}
		time.Sleep(refollowEvery / 10)
	}
	if n := posts.Load(); n != 1 {
		t.Errorf("%d posts reached the gateway; want 1", n)
	}
	if n := strangerCalls.Load(); n != before {
		t.Errorf("%d calls reached the stranger after it was known; want none", n-before)
	}
}

// TestTheLocalPusherFollowsAServeStartedAgainAtTheSameAddress: the record
// names the same address with another run ID (serve restarted on the same
// --addr): the first answer, the new gateway's, does not carry the old ID;
// the record is looked up again and the call made again, taken.
func TestTheLocalPusherFollowsAServeStartedAgainAtTheSameAddress(t *testing.T) {
	b, err := Open(t.Context(), config.Config{Backend: config.BackendLocal, StateDir: t.TempDir()}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	var run atomic.Value
	run.Store("run-1")
	var posts atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set(pubsub.GatewayIDHeader, run.Load().(string))
		posts.Add(1)
	}))
	defer srv.Close()
	for k, v := range map[string]string{MetaGatewayID: "run-1", MetaGatewayWebSocket: "ws" + strings.TrimPrefix(srv.URL, "http") + "/", MetaGatewayManagement: srv.URL} {
		if err := b.DB.SetMeta(t.Context(), k, v); err != nil {
			t.Fatal(err)
		}
	}
	p, err := b.Pusher(t.Context(), 4)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Post(t.Context(), "c1", []byte("1")); err != nil {
		t.Fatalf("Post to run-1: %v", err)
	}
	run.Store("run-2")
	if err := b.DB.SetMeta(t.Context(), MetaGatewayID, "run-2"); err != nil {
		t.Fatal(err)
	}
	if err := p.Post(t.Context(), "c1", []byte("2")); err != nil {
		t.Fatalf("Post once the serve started again at the same address: %v; want it made again and taken", err)
	}
}
