package ops

import (
	"cmp"
	"context"
	"slices"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/socks-dev/socks/pubsub"
	"github.com/socks-dev/socks/store"
)

// ListConnections reads every connection matching filter, page by page
// through s.ListConnections, and returns them sorted by geek, then
// connection time, then connection ID.
func ListConnections(ctx context.Context, s store.Store, filter store.ConnectionFilter, now time.Time) ([]pubsub.Connection, error) {
	var out []pubsub.Connection
	err := s.ListConnections(ctx, filter, now, func(page []pubsub.Connection) error {
		out = append(out, page...)
		return nil
	})
	if err != nil {
		return nil, err
	}
	SortConnections(out)
	return out, nil
}

// SortConnections sorts by geek, then connection time, then connection ID.
func SortConnections(conns []pubsub.Connection) {
	slices.SortFunc(conns, func(a, b pubsub.Connection) int {
		return cmp.Or(
			cmp.Compare(a.Geek, b.Geek),
			a.ConnectedAt.Compare(b.ConnectedAt),
			cmp.Compare(a.ID, b.ID),
		)
	})
}

// LiveState says what the Management API said about a connection.
type LiveState string

const (
	// StateUnknown: not asked, or the call failed.
	StateUnknown LiveState = ""
	// StateLive: the connection is open.
	StateLive LiveState = "live"
	// StateGone: the connection no longer exists (410); its record is stale.
	StateGone LiveState = "gone"
)

// Liveness is what Describe found out about one connection.
type Liveness struct {
	State        LiveState
	LastActiveAt time.Time
	Err          error
}

// Describe asks the Management API about each connection (at most
// concurrency calls at once) and returns what it said, by connection ID.
// Failed calls are reported in Liveness.Err; the error is non-nil only when
// ctx ended.
func Describe(ctx context.Context, p store.Pusher, conns []pubsub.Connection, concurrency int) (map[string]Liveness, error) {
	if concurrency <= 0 {
		concurrency = DefaultConcurrency
	}
	out := make(map[string]Liveness, len(conns))
	var mu sync.Mutex
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(concurrency)
	for _, c := range conns {
		g.Go(func() error {
			info, err := getWithRetry(gctx, p, c.ID)
			l := Liveness{}
			switch {
			case err == nil:
				l.State, l.LastActiveAt = StateLive, info.LastActiveAt
			case store.IsGone(err):
				l.State = StateGone
			case gctx.Err() != nil:
				return context.Cause(gctx)
			default:
				l.Err = err
			}
			mu.Lock()
			out[c.ID] = l
			mu.Unlock()
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	return out, nil
}

// SubscriptionStats summarises the open connections.
type SubscriptionStats struct {
	// Connections is how many connection records are open (not expired).
	Connections int `json:"connections"`
	// Geeks is how many distinct geeks they belong to.
	Geeks int `json:"geeks"`
	// Topics counts the connections following each topic (a wildcard
	// subscription counts under ".").
	Topics []TopicCount `json:"topics"`
	// Oldest is the connection that opened first (nil when none).
	Oldest *pubsub.Connection `json:"oldest,omitempty"`
}

// TopicCount is how many connections follow one topic.
type TopicCount struct {
	Topic       string `json:"topic"`
	Connections int    `json:"connections"`
}

// CountSubscriptions reads every open connection, page by page, and counts
// them by topic, most followed first (then by name).
func CountSubscriptions(ctx context.Context, s store.Store, now time.Time) (SubscriptionStats, error) {
	var st SubscriptionStats
	geeks := map[string]bool{}
	topics := map[string]int{}
	err := s.ListConnections(ctx, store.ConnectionFilter{}, now, func(page []pubsub.Connection) error {
		for _, c := range page {
			st.Connections++
			geeks[c.Geek] = true
			for _, t := range c.Topics {
				topics[t]++
			}
			if st.Oldest == nil || c.ConnectedAt.Before(st.Oldest.ConnectedAt) ||
				(c.ConnectedAt.Equal(st.Oldest.ConnectedAt) && c.ID < st.Oldest.ID) {
				st.Oldest = &c
			}
		}
		return nil
	})
	if err != nil {
		return SubscriptionStats{}, err
	}
	st.Geeks = len(geeks)
	st.Topics = make([]TopicCount, 0, len(topics))
	for t, n := range topics {
		st.Topics = append(st.Topics, TopicCount{Topic: t, Connections: n})
	}
	slices.SortFunc(st.Topics, func(a, b TopicCount) int {
		return cmp.Or(cmp.Compare(b.Connections, a.Connections), cmp.Compare(a.Topic, b.Topic))
	})
	return st, nil
}
