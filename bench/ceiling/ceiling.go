// Package ceiling is the raw gorilla/websocket server socks's performance is
// measured against: it upgrades every request at "/", writes the body of
// POST /@connections/{id} to that connection, and writes the body of
// POST /@broadcast to every connection as one websocket.PreparedMessage.
// It has no routes, no store and no limits beyond a bounded body size: it
// is what the hardware and gorilla can do, the ceiling for the ratios in
// BENCHMARKS.md. It is never part of the socks binary.
package ceiling

import (
	"crypto/rand"
	"encoding/base64"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/gorilla/websocket"
)

// maxBody bounds a posted body (API Gateway's 128 KB message limit).
const maxBody = 128 * 1024

// writeWait bounds one write to a client.
const writeWait = 10 * time.Second

// Server is the ceiling server; it is an http.Handler.
type Server struct {
	upgrader websocket.Upgrader

	// upgrading is read-held from before an upgrade until its connection
	// is registered: a broadcast write-locks it, so that every client that
	// has seen its 101 response gets the broadcast.
	upgrading sync.RWMutex

	mu    sync.RWMutex
	conns map[string]*conn
}

// conn serialises writes to one client.
type conn struct {
	mu sync.Mutex
	ws *websocket.Conn
}

// New returns a Server.
func New() *Server {
	return &Server{
		upgrader: websocket.Upgrader{
			// Zero sizes let gorilla reuse the HTTP server's buffers.
			WriteBufferPool: &sync.Pool{},
			CheckOrigin:     func(*http.Request) bool { return true },
		},
		conns: make(map[string]*conn),
	}
}

// Count returns the number of open connections.
func (s *Server) Count() int {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return len(s.conns)
}

// ServeHTTP upgrades at "/" and serves POST /@connections/{id} and POST
// /@broadcast.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch p := r.URL.Path; {
	case p == "/":
		s.upgrade(w, r)
	case p == "/@broadcast" && r.Method == http.MethodPost:
		s.broadcast(w, r)
	case strings.HasPrefix(p, "/@connections/") && r.Method == http.MethodPost:
		s.post(w, r, strings.TrimPrefix(p, "/@connections/"))
	default:
		http.NotFound(w, r)
	}
}

func (s *Server) upgrade(w http.ResponseWriter, r *http.Request) {
	s.upgrading.RLock()
	ws, err := s.upgrader.Upgrade(w, r, nil)
	if err != nil {
		s.upgrading.RUnlock()
		return
	}
	var b [11]byte
	_, _ = rand.Read(b[:])
	id := base64.URLEncoding.EncodeToString(b[:])
	c := &conn{ws: ws}
	s.mu.Lock()
	s.conns[id] = c
	s.mu.Unlock()
	s.upgrading.RUnlock()
	// The handler's goroutine is the reader; there is no other per
	// connection.
	for {
		if _, _, err := ws.NextReader(); err != nil {
			break
		}
	}
	s.mu.Lock()
	delete(s.conns, id)
	s.mu.Unlock()
	ws.Close()
}

func readBody(w http.ResponseWriter, r *http.Request) ([]byte, bool) {
	data, err := io.ReadAll(io.LimitReader(r.Body, maxBody+1))
	if err != nil || len(data) > maxBody {
		http.Error(w, "bad body", http.StatusRequestEntityTooLarge)
		return nil, false
	}
	return data, true
}

func (s *Server) post(w http.ResponseWriter, r *http.Request, id string) {
	data, ok := readBody(w, r)
	if !ok {
		return
	}
	s.mu.RLock()
	c := s.conns[id]
	s.mu.RUnlock()
	if c == nil {
		http.Error(w, "gone", http.StatusGone)
		return
	}
	c.mu.Lock()
	_ = c.ws.SetWriteDeadline(time.Now().Add(writeWait))
	err := c.ws.WriteMessage(websocket.TextMessage, data)
	c.mu.Unlock()
	if err != nil {
		http.Error(w, "gone", http.StatusGone)
		return
	}
	w.WriteHeader(http.StatusOK)
}

// broadcast writes the body to every connection as one PreparedMessage,
// with as many writers as there are CPUs' worth of work, and answers with
// the number of connections written to.
func (s *Server) broadcast(w http.ResponseWriter, r *http.Request) {
	data, ok := readBody(w, r)
	if !ok {
		return
	}
	pm, err := websocket.NewPreparedMessage(websocket.TextMessage, data)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	s.upgrading.Lock()
	//lint:ignore SA2001 waiting for the upgrades in flight is the point
	s.upgrading.Unlock()
	s.mu.RLock()
	conns := make([]*conn, 0, len(s.conns))
	for _, c := range s.conns {
		conns = append(conns, c)
	}
	s.mu.RUnlock()
	var wg sync.WaitGroup
	const writers = 32
	next := make(chan *conn)
	for range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for c := range next {
				c.mu.Lock()
				_ = c.ws.SetWriteDeadline(time.Now().Add(writeWait))
				_ = c.ws.WritePreparedMessage(pm)
				c.mu.Unlock()
			}
		}()
	}
	for _, c := range conns {
		next <- c
	}
	close(next)
	wg.Wait()
	w.WriteHeader(http.StatusOK)
	_, _ = io.WriteString(w, itoa(len(conns)))
}

func itoa(n int) string {
	if n == 0 {
		return "0"
	}
	var b [20]byte
	i := len(b)
	for n > 0 {
		i--
		b[i] = byte('0' + n%10)
		n /= 10
	}
	return string(b[i:])
}

// IDs returns the IDs of the open connections, for POST /@connections/{id}.
func (s *Server) IDs() []string {
	s.mu.RLock()
	defer s.mu.RUnlock()
	ids := make([]string, 0, len(s.conns))
	for id := range s.conns {
		ids = append(ids, id)
	}
	return ids
}
