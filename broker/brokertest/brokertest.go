// Package brokertest runs the recorded queue messages of testdata/events
// through a broker and checks that each reaches exactly the connections its
// envelope or mapping names, or is dead-lettered with its reason. Every
// backend, and the Lambda handler, runs the same cases from its own tests:
//
//	brokertest.RunRecorded(t, brokertest.Harness{Store: s, Handle: ...})
package brokertest

import (
	"context"
	"encoding/json"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/socks-dev/socks/broker"
	"github.com/socks-dev/socks/internal/srcroot"
	"github.com/socks-dev/socks/pubsub"
	"github.com/socks-dev/socks/store"
)

// Harness is what RunRecorded needs from a backend.
type Harness struct {
	// NewStore returns a fresh, empty store for one case.
	NewStore func(t *testing.T) store.Store
	// Handle puts body on the backend's queue (or hands it to the Lambda
	// handler as an SQS record) and has a broker on s, with mapping m and
	// pusher p, handle it. It returns the dead-letter reason, or "" when
	// the message was handled.
	Handle func(t *testing.T, s store.Store, body []byte, m *pubsub.Mapping, p store.Pusher) (deadLetter string)
}

// Manifest is testdata/events/deliveries.json.
type Manifest struct {
	Connections []struct {
		ID     string   `json:"id"`
		Geek   string   `json:"geek"`
		Topics []string `json:"topics"`
	} `json:"connections"`
	Cases []Case `json:"cases"`
}

// Case is one recorded message and what it must come to.
type Case struct {
	Name    string          `json:"name"`
	File    string          `json:"file"`
	Mapping *pubsub.Mapping `json:"mapping"`
	// Delivered maps connection IDs to the body each receives; every
	// other connection receives nothing.
	Delivered  map[string]string `json:"delivered"`
	DeadLetter string            `json:"deadLetter"`
}

// Dir is the directory of the recorded messages, in the checkout above
// the working directory (a test's package folder).
func Dir(t testing.TB) string {
	t.Helper()
	dir, err := srcroot.Join("testdata", "events")
	if err != nil {
		t.Fatal(err)
	}
	return dir
}

// Load reads the manifest and the body of each case.
func Load(t testing.TB) (Manifest, map[string][]byte) {
	t.Helper()
	var m Manifest
	b, err := os.ReadFile(filepath.Join(Dir(t), "deliveries.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("deliveries.json: %v", err)
	}
	bodies := map[string][]byte{}
	for _, c := range m.Cases {
		b, err := os.ReadFile(filepath.Join(Dir(t), c.File))
		if err != nil {
			t.Fatal(err)
		}
		bodies[c.File] = b
	}
	return m, bodies
}

// Recorder is a store.Pusher that records what each connection got.
type Recorder struct {
	mu  sync.Mutex
	Got map[string][]string
}

// Post records body for id.
func (r *Recorder) Post(_ context.Context, id string, body []byte) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.Got == nil {
		r.Got = map[string][]string{}
	}
	r.Got[id] = append(r.Got[id], string(body))
	return nil
}

// Get is not used by the broker.
func (r *Recorder) Get(context.Context, string) (store.ConnectionInfo, error) {
	return store.ConnectionInfo{}, nil
}

// Delete is not used by the broker.
func (r *Recorder) Delete(context.Context, string) error { return nil }

// RunRecorded runs every case of the manifest.
func RunRecorded(t *testing.T, h Harness) {
	m, bodies := Load(t)
	now := time.Now().Truncate(time.Second)
	for _, c := range m.Cases {
		t.Run(c.Name, func(t *testing.T) {
			s := h.NewStore(t)
			for _, conn := range m.Connections {
				err := s.PutConnection(t.Context(), pubsub.Connection{
					ID: conn.ID, Geek: conn.Geek, Topics: conn.Topics, ConnectedAt: now, ExpiresAt: now.Add(time.Hour),
				})
				if err != nil {
					t.Fatal(err)
				}
			}
			rec := &Recorder{}
			reason := h.Handle(t, s, bodies[c.File], c.Mapping, rec)
			if c.DeadLetter != "" {
				if !strings.Contains(reason, c.DeadLetter) {
					t.Errorf("dead-letter reason %q; want it to contain %q", reason, c.DeadLetter)
				}
			} else if reason != "" {
				t.Errorf("dead-lettered (%s); want it delivered", reason)
			}
			want := map[string][]string{}
			for id, body := range c.Delivered {
				want[id] = []string{body}
			}
			rec.mu.Lock()
			defer rec.mu.Unlock()
			if !maps.EqualFunc(rec.Got, want, slices.Equal) && (len(rec.Got) != 0 || len(want) != 0) {
				t.Errorf("delivered %q; want exactly %q", rec.Got, want)
			}
		})
	}
}

// Reason checks that the handled message m left the queue and returns the
// reason of the dead letter it became ("" if it was delivered).
func Reason(t *testing.T, q store.Queue, m store.Message, out broker.Outcome) string {
	t.Helper()
	if !out.Done && !out.DeadLettered {
		t.Fatalf("the message stays on the queue: %v", out.Err)
	}
	if !out.DeadLettered {
		return ""
	}
	dead, err := q.ListDeadLetters(t.Context(), 0)
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range dead {
		if d.ID == m.ID {
			return d.Reason
		}
	}
	t.Fatalf("message %s is not among the dead letters %+v", m.ID, dead)
	return ""
}
