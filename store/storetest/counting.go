package storetest

import (
	"context"
	"sync/atomic"

	"github.com/socks-dev/socks/store"
)

// CountingPusher is a store.Pusher that accepts every post and counts it,
// keeping nothing else: Get finds every connection and Delete succeeds.
// Tests that measure what a broker keeps, or count what reached the
// pusher behind a wrapper, share it.
type CountingPusher struct{ posts atomic.Int64 }

// Post counts the post.
func (p *CountingPusher) Post(context.Context, string, []byte) error {
	p.posts.Add(1)
	return nil
}

// Get reports every connection as found.
func (p *CountingPusher) Get(context.Context, string) (store.ConnectionInfo, error) {
	return store.ConnectionInfo{}, nil
}

// Delete succeeds.
func (p *CountingPusher) Delete(context.Context, string) error { return nil }

// Posts is the number of posts so far.
func (p *CountingPusher) Posts() int64 { return p.posts.Load() }
