package bench

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/socks-dev/socks/backend"
	"github.com/socks-dev/socks/bench/ceiling"
	"github.com/socks-dev/socks/broker"
	"github.com/socks-dev/socks/gateway"
	"github.com/socks-dev/socks/internal/benchturn"
	"github.com/socks-dev/socks/local"
	"github.com/socks-dev/socks/pubsub"
	"github.com/socks-dev/socks/routes"
	"github.com/socks-dev/socks/store"
)

// size picks the full or the -short population.
func size(full, short int) int {
	if testing.Short() {
		return short
	}
	return full
}

// body is the message every fan-out and post sends.
var body = []byte(`{"event":"bench","payload":"0123456789abcdef0123456789abcdef"}`)

// stack is one server under test with its clients.
type stack struct {
	wsURL string
	// base is the http:// base of the Management API (or the ceiling's).
	base string
	// ids returns the server-side IDs of the open connections.
	ids func() []string
	// count returns the number of open connections on the server.
	count func() int
	// dialQuery returns the query string of the i-th client.
	dialQuery func(b *testing.B, i int) string

	received atomic.Int64
	mu       sync.Mutex
	target   int64
	reached  chan struct{}
	clients  []*websocket.Conn
}

// startCeiling starts the ceiling server on loopback.
func startCeiling(b *testing.B) *stack {
	srv := ceiling.New()
	addr := serve(b, srv)
	return &stack{
		wsURL:     "ws://" + addr + "/",
		base:      "http://" + addr,
		ids:       srv.IDs,
		count:     srv.Count,
		dialQuery: func(*testing.B, int) string { return "" },
	}
}

func serve(b *testing.B, h http.Handler) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	srv := &http.Server{Handler: h}
	go func() { _ = srv.Serve(ln) }()
	b.Cleanup(func() { _ = srv.Close() })
	return ln.Addr().String()
}

// socksStack is the local gateway with the real routes over a local state
// file: what `socks serve` runs.
type socksStack struct {
	*stack
	db  *local.DB
	gw  *gateway.Gateway
	mgm string
}

func startSocks(b *testing.B) *socksStack {
	ctx := context.Background()
	db, err := local.Open(ctx, filepath.Join(b.TempDir(), "socks.db"), local.Options{})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { db.Close() })
	gw, err := gateway.New(gateway.Options{Handler: &routes.Handler{Store: db.Store()}, Routes: routes.ActionRoutes})
	if err != nil {
		b.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	go func() { _ = gw.Serve(ln) }()
	b.Cleanup(func() {
		sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		_ = gw.Shutdown(sctx)
	})
	addr := ln.Addr().String()
	s := &socksStack{db: db, gw: gw, mgm: gw.ManagementEndpoint(addr)}
	var secrets sync.Map
	s.stack = &stack{
		wsURL: "ws://" + addr + "/",
		base:  s.mgm,
		ids: func() []string {
			var ids []string
			_ = db.Store().ListConnections(ctx, store.ConnectionFilter{}, time.Now(), func(page []pubsub.Connection) error {
				for _, c := range page {
					ids = append(ids, c.ID)
				}
				return nil
			})
			return ids
		},
		count: gw.Count,
		dialQuery: func(b *testing.B, i int) string {
			geek := fmt.Sprintf("geek%05d", i)
			secret, ok := secrets.Load(geek)
			if !ok {
				s, _, err := store.IssueChatterID(ctx, db.Store(), geek, time.Hour, time.Now())
				if err != nil {
					b.Fatal(err)
				}
				secrets.Store(geek, s)
				secret = s
			}
			return "?geek=" + geek + "&id=" + secret.(string) + "&topic=bench"
		},
	}
	return s
}

// connect opens n clients with the given number of dialers; each client
// counts what it receives.
func (s *stack) connect(b *testing.B, n, dialers int) []*websocket.Conn {
	conns := make([]*websocket.Conn, n)
	queries := make([]string, n)
	for i := range n {
		queries[i] = s.dialQuery(b, i)
	}
	var next atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, dialers)
	for range dialers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= n {
					return
				}
				c, _, err := websocket.DefaultDialer.Dial(s.wsURL+queries[i], nil)
				if err != nil {
					errs <- err
					return
				}
				conns[i] = c
			}
		}()
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		b.Fatalf("dialing: %v", err)
	}
	return conns
}

// listen starts a reader for each client that counts messages.
func (s *stack) listen(conns []*websocket.Conn) {
	s.clients = append(s.clients, conns...)
	for _, c := range conns {
		go func() {
			for {
				if _, _, err := c.ReadMessage(); err != nil {
					return
				}
				if s.received.Add(1) == s.want() {
					s.mu.Lock()
					if s.reached != nil {
						close(s.reached)
						s.reached = nil
					}
					s.mu.Unlock()
				}
			}
		}()
	}
}

func (s *stack) want() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.target
}

// expect arms a wait for n more messages.
func (s *stack) expect(n int) chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.target = s.received.Load() + int64(n)
	ch := make(chan struct{})
	s.reached = ch
	return ch
}

func (s *stack) wait(b *testing.B, ch chan struct{}) {
	select {
	case <-ch:
	case <-time.After(60 * time.Second):
		b.Fatalf("received %d of %d messages", s.received.Load(), s.want())
	}
}

func (s *stack) closeClients() {
	for _, c := range s.clients {
		c.Close()
	}
	s.clients = nil
}

// waitCount waits until the server has n open connections.
func waitCount(b *testing.B, count func() int, n int) {
	deadline := time.Now().Add(60 * time.Second)
	for count() != n {
		if time.Now().After(deadline) {
			b.Fatalf("server has %d connections, want %d", count(), n)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// BenchmarkFanOutVsCeiling delivers one message to every one of N live
// clients, in turn on each server: the ceiling writes one PreparedMessage
// to each; socks fans an envelope out with the broker, as `socks serve`
// does. deliveries/s is the figure.
func BenchmarkFanOutVsCeiling(b *testing.B) {
	n := size(1000, 200)
	ctx := context.Background()
	ceil := startCeiling(b)
	ceil.listen(ceil.connect(b, n, 16))
	defer ceil.closeClients()
	waitCount(b, ceil.count, n)
	client := &http.Client{}
	ceilingRound := func(b *testing.B) (int, time.Duration) {
		start := time.Now()
		ch := ceil.expect(n)
		resp, err := client.Post(ceil.base+"/@broadcast", "application/json", bytes.NewReader(body))
		if err != nil || resp.StatusCode != http.StatusOK {
			b.Fatalf("broadcast: %v %v", resp, err)
		}
		resp.Body.Close()
		ceil.wait(b, ch)
		return n, time.Since(start)
	}
	socks := func(pusher func(s *socksStack) store.Pusher) func(b *testing.B) (int, time.Duration) {
		s := startSocks(b)
		s.listen(s.connect(b, n, 16))
		b.Cleanup(s.closeClients)
		waitCount(b, s.count, n)
		br := &broker.Broker{Store: s.db.Store(), Pusher: pusher(s)}
		env := pubsub.Envelope{Topics: []string{"bench"}, Body: body}
		return func(b *testing.B) (int, time.Duration) {
			start := time.Now()
			ch := s.expect(n)
			rep, err := br.Deliver(ctx, env)
			if err != nil || rep.Delivered != n {
				b.Fatalf("delivered %d of %d: %v %v", rep.Delivered, n, err, rep.Errors)
			}
			s.wait(b, ch)
			return n, time.Since(start)
		}
	}
	benchturn.Alternate(b, "deliveries/s",
		benchturn.Contender{Name: "ceiling", Round: ceilingRound},
		// The broker of `socks broker` (and the first one of `socks
		// serve`): the Management API over HTTP.
		benchturn.Contender{Name: "socks-http", Round: socks(func(s *socksStack) store.Pusher {
			return backend.LocalPusher(s.mgm, broker.DefaultConcurrency)
		})},
		// The broker inside `socks serve`: in process.
		benchturn.Contender{Name: "socks-inprocess", Round: socks(func(s *socksStack) store.Pusher { return s.gw.Pusher() })},
	)
}

// BenchmarkPostVsCeiling posts to connections by ID over HTTP with 64
// workers, in turn to each server, with the same plain HTTP client against
// both; posts/s is the figure.
func BenchmarkPostVsCeiling(b *testing.B) {
	n := size(1000, 200)
	const workers = 64
	const perOp = 2000
	poster := func(s *stack) func(b *testing.B) (int, time.Duration) {
		s.listen(s.connect(b, n, 16))
		b.Cleanup(s.closeClients)
		waitCount(b, s.count, n)
		ids := s.ids()
		if len(ids) != n {
			b.Fatalf("%d IDs, want %d", len(ids), n)
		}
		client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: workers}}
		return func(b *testing.B) (int, time.Duration) {
			start := time.Now()
			ch := s.expect(perOp)
			var next atomic.Int64
			var wg sync.WaitGroup
			for range workers {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for {
						i := next.Add(1) - 1
						if i >= perOp {
							return
						}
						req, _ := http.NewRequest(http.MethodPost, s.base+"/@connections/"+ids[int(i)%n], bytes.NewReader(body))
						// The local gateway wants an Authorization header,
						// as API Gateway does; it does not verify it.
						req.Header.Set("Authorization", "AWS4-HMAC-SHA256 bench")
						resp, err := client.Do(req)
						if err != nil || resp.StatusCode != http.StatusOK {
							b.Errorf("post: %v %v", resp, err)
							return
						}
						resp.Body.Close()
					}
				}()
			}
			wg.Wait()
			s.wait(b, ch)
			return perOp, time.Since(start)
		}
	}
	benchturn.Alternate(b, "posts/s",
		benchturn.Contender{Name: "ceiling", Round: poster(startCeiling(b))},
		benchturn.Contender{Name: "socks", Round: poster(startSocks(b).stack)},
	)
}

// BenchmarkConnectVsCeiling opens N connections with 100 dialers, in turn
// to each server, and closes them again (not timed): the ceiling only
// upgrades; socks checks the chatter ID and records the connection durably
// in its state file, as `socks serve` does. connects/s is the figure.
func BenchmarkConnectVsCeiling(b *testing.B) {
	n := size(2000, 300)
	const dialers = 100
	connector := func(s *stack) func(b *testing.B) (int, time.Duration) {
		for i := range n {
			s.dialQuery(b, i) // chatter IDs issued before the clock runs
		}
		return func(b *testing.B) (int, time.Duration) {
			start := time.Now()
			conns := s.connect(b, n, dialers)
			took := time.Since(start)
			for _, c := range conns {
				c.Close()
			}
			waitCount(b, s.count, 0)
			// The count drops as soon as a connection starts closing,
			// before its $disconnect: wait for the server's records too
			// (the ceiling's IDs are its count), so that the closes of
			// one round stay out of the next round's time.
			waitCount(b, func() int { return len(s.ids()) }, 0)
			return n, took
		}
	}
	benchturn.Alternate(b, "connects/s",
		benchturn.Contender{Name: "ceiling", Round: connector(startCeiling(b))},
		benchturn.Contender{Name: "socks", Round: connector(startSocks(b).stack)},
	)
}
