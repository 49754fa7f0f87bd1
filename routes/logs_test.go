package routes_test

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/socks-dev/socks/pubsub"
	"github.com/socks-dev/socks/store"
)

// failing is a store whose admissions fail, naming the geek as the local
// store's error does, with err.
type failing struct {
	store.Store
	err error
}

func (f failing) AdmitConnection(_ context.Context, id, geek, _ string, _ time.Time, _ int, _ func(store.ChatterID) (pubsub.Connection, error)) (int, error) {
	return 0, fmt.Errorf("admitting connection %s of %s: %w", id, geek, f.err)
}

// TestLogsHoldNoChatterIDAClientSent: a chatter ID pasted into ?geek= by
// mistake is a valid geek name, and one pasted into ?topic= a valid topic.
// The routes logged the geek whole at Error when the store failed during
// $connect (in the attribute, and in the error, which names it), and a
// connection's topics whole when it connected. Every line writes anything
// shaped like a chatter ID sc_(hidden), as the gateway's refusals do.
func TestLogsHoldNoChatterIDAClientSent(t *testing.T) {
	id := pubsub.NewChatterID()
	for _, tc := range []struct {
		name  string
		fail  error  // of the store, nil for none
		geek  string // else alice, with a chatter ID of hers
		topic string
		want  string // a line that holds
	}{
		{"the store fails", fmt.Errorf("the disk failed"), id, "", "admitting a connection"},
		{"the store cannot be written", fmt.Errorf("full: %w", store.ErrUnavailable), id, "", "admitting a connection"},
		{"a chatter ID as a topic", nil, "", id, "connected"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h, s, now := newHandler(t)
			var logs bytes.Buffer
			h.Logger = slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
			q := map[string]string{"geek": tc.geek, "id": id}
			if tc.geek == "" {
				secret, _, err := store.IssueChatterID(t.Context(), s, "alice", time.Hour, now)
				if err != nil {
					t.Fatal(err)
				}
				q = map[string]string{"geek": "alice", "id": secret}
			}
			if tc.topic != "" {
				q["topic"] = tc.topic
			}
			if tc.fail != nil {
				h.Store = failing{s, tc.fail}
			}
			resp, err := h.Handle(t.Context(), connectEvent("connA", q))
			if tc.fail == nil && (err != nil || resp.StatusCode != 200) {
				t.Fatalf("status %d %q, %v; want it connected", resp.StatusCode, resp.Body, err)
			}
			got := logs.String()
			if !strings.Contains(got, tc.want) || !strings.Contains(got, "sc_(hidden)") {
				t.Errorf("logged %q; want a line %q with the chatter ID written sc_(hidden)", got, tc.want)
			}
			if strings.Contains(got, id[3:23]) {
				t.Errorf("the log holds the chatter ID: %s", got)
			}
		})
	}
}
