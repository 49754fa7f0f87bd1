package storetest

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"math/big"
	"testing"
	"time"

	"github.com/socks-dev/socks/pubsub"
	"github.com/socks-dev/socks/store"
)

// PusherHarness is what RunPusher needs from a backend: the Pusher under
// test and a way to open a real client connection through the gateway it
// talks to.
type PusherHarness struct {
	// Pusher is the implementation under test.
	Pusher store.Pusher
	// Connect opens a WebSocket client connection and returns its
	// connection ID, a function returning the next message the client
	// receives (or an error once the connection is closed or timeout
	// passes), and a function closing the client. The harness closes the
	// client itself at the end of the test too.
	Connect func(t *testing.T) (id string, next func(timeout time.Duration) ([]byte, error), closeFn func())
}

// pusherWait bounds every wait of the suite.
const pusherWait = 5 * time.Second

// RunPusher runs the conformance suite for a store.Pusher against a live
// gateway.
func RunPusher(t *testing.T, h PusherHarness) {
	t.Helper()
	ctx := func(t *testing.T) context.Context {
		ctx, cancel := context.WithTimeout(context.Background(), pusherWait)
		t.Cleanup(cancel)
		return ctx
	}

	t.Run("post delivers the exact bytes", func(t *testing.T) {
		id, next, closeFn := h.Connect(t)
		defer closeFn()
		bodies := []struct {
			name string
			data []byte
		}{
			{"a JSON object", []byte(`{"users":["Friendless"],"body":{"n":1,"s":"ünïcødé ✓"}}`)},
			{"a 100 KB body", pusherPattern(100 * 1024)},
			{"a body of exactly the 128 KB limit", pusherPattern(pubsub.MaxMessageBytes)},
			{"a body with quotes and escapes", []byte("\"quoted\"\t\\back\\slash\n")},
		}
		for _, b := range bodies {
			name, want := b.name, b.data
			if err := h.Pusher.Post(ctx(t), id, want); err != nil {
				t.Fatalf("Post %s: %v", name, err)
			}
			got, err := next(pusherWait)
			if err != nil {
				t.Fatalf("reading %s: %v", name, err)
			}
			if !bytes.Equal(got, want) {
				t.Fatalf("%s: client received %d bytes that differ from the %d posted", name, len(got), len(want))
			}
		}
	})

	t.Run("a message over 128 KB is too large", func(t *testing.T) {
		id, _, closeFn := h.Connect(t)
		defer closeFn()
		err := h.Pusher.Post(ctx(t), id, pusherPattern(pubsub.MaxMessageBytes+1))
		wantPushErrorKind(t, err, store.KindTooLarge, "PostToConnection", id)
	})

	t.Run("get describes a live connection", func(t *testing.T) {
		before := time.Now()
		id, _, closeFn := h.Connect(t)
		defer closeFn()
		info, err := h.Pusher.Get(ctx(t), id)
		if err != nil {
			t.Fatalf("Get: %v", err)
		}
		if info.ConnectedAt.IsZero() || info.LastActiveAt.IsZero() {
			t.Fatalf("Get = %+v, want connectedAt and lastActiveAt", info)
		}
		// Lenient bounds: the gateway's clock may differ from ours a little.
		if d := info.ConnectedAt.Sub(before); d < -time.Minute || d > time.Minute {
			t.Errorf("connectedAt %v is not near %v", info.ConnectedAt, before)
		}
		if info.LastActiveAt.Before(info.ConnectedAt) {
			t.Errorf("lastActiveAt %v is before connectedAt %v", info.LastActiveAt, info.ConnectedAt)
		}
		if info.SourceIP == "" {
			t.Errorf("Get = %+v, want a source IP", info)
		}
	})

	t.Run("an unknown connection is gone for post, get and delete", func(t *testing.T) {
		id := pusherUnknownID()
		wantPushErrorKind(t, h.Pusher.Post(ctx(t), id, []byte("hello")), store.KindGone, "PostToConnection", id)
		_, err := h.Pusher.Get(ctx(t), id)
		wantPushErrorKind(t, err, store.KindGone, "GetConnection", id)
		wantPushErrorKind(t, h.Pusher.Delete(ctx(t), id), store.KindGone, "DeleteConnection", id)
	})

	// No gateway issues such an ID: API Gateway refuses it (400, "Invalid
	// connectionId"), the local gateway finds no such connection (410);
	// either way it can never be reached, and its record goes.
	t.Run("an ID no gateway issues is gone for post, get and delete", func(t *testing.T) {
		const id = "not an ID!"
		for op, err := range map[string]error{
			"PostToConnection": h.Pusher.Post(ctx(t), id, []byte("hello")),
			"GetConnection":    func() error { _, err := h.Pusher.Get(ctx(t), id); return err }(),
			"DeleteConnection": h.Pusher.Delete(ctx(t), id),
		} {
			if !store.IsGone(err) {
				t.Errorf("%s %q = %v, want gone", op, id, err)
			}
		}
	})

	t.Run("delete closes the client and a later post is gone", func(t *testing.T) {
		id, next, closeFn := h.Connect(t)
		defer closeFn()
		if err := h.Pusher.Delete(ctx(t), id); err != nil {
			t.Fatalf("Delete: %v", err)
		}
		if data, err := next(pusherWait); err == nil {
			t.Fatalf("after Delete the client received %q, want the connection closed", data)
		}
		// The connection may take a moment to be gone everywhere.
		deadline := time.Now().Add(pusherWait)
		for {
			_, err := h.Pusher.Get(ctx(t), id)
			if store.IsGone(err) {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("Get after Delete = %v, want gone", err)
			}
			time.Sleep(50 * time.Millisecond)
		}
		wantPushErrorKind(t, h.Pusher.Post(ctx(t), id, []byte("too late")), store.KindGone, "PostToConnection", id)
	})
}

// wantPushErrorKind fails unless err is a *store.PushError of kind for op and id.
func wantPushErrorKind(t *testing.T, err error, kind store.PushErrorKind, op, id string) {
	t.Helper()
	var pe *store.PushError
	if !errors.As(err, &pe) {
		t.Fatalf("%s = %v (%T), want a *store.PushError", op, err, err)
	}
	if pe.Kind != kind {
		t.Fatalf("%s: kind %v, want %v (%v)", op, pe.Kind, kind, err)
	}
	if pe.Op != op || pe.ConnectionID != id {
		t.Fatalf("PushError names %s %s, want %s %s", pe.Op, pe.ConnectionID, op, id)
	}
}

// pusherPattern returns n bytes of printable, non-repeating-looking text, so
// that a shifted or truncated delivery is caught.
func pusherPattern(n int) []byte {
	const alphabet = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789{}[]:,\""
	b := make([]byte, n)
	for i := range b {
		b[i] = alphabet[(i*7+i/len(alphabet))%len(alphabet)]
	}
	return b
}

// pusherUnknownID returns a well-formed connection ID that no gateway issued.
func pusherUnknownID() string {
	const letters = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
	b := make([]byte, 15, 16)
	for i := range b {
		n, _ := rand.Int(rand.Reader, big.NewInt(int64(len(letters))))
		b[i] = letters[n.Int64()]
	}
	return string(append(b, '='))
}
