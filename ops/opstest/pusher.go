// Package opstest holds what tests of package ops share with the backends'
// own tests: fake and counting store.Pusher implementations and RunPrune,
// the acceptance suite of ops.Prune that runs against any store.Store and
// store.Pusher (the local backend now; the AWS backend with DynamoDB Local
// and a real gateway later).
package opstest

import (
	"context"
	"fmt"
	"sync"

	"github.com/socks-dev/socks/store"
)

// FakePusher is a store.Pusher that knows which connections are live: Get,
// Post and Delete succeed for those and answer 410 Gone for every other ID,
// except the IDs given an error with Fail. It is safe for concurrent use.
type FakePusher struct {
	mu   sync.Mutex
	live map[string]store.ConnectionInfo
	fail map[string]error
}

var _ store.Pusher = (*FakePusher)(nil)

// NewFakePusher returns a FakePusher with no live connection.
func NewFakePusher() *FakePusher {
	return &FakePusher{live: map[string]store.ConnectionInfo{}, fail: map[string]error{}}
}

// SetLive marks ids live, with info as what Get describes.
func (f *FakePusher) SetLive(info store.ConnectionInfo, ids ...string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, id := range ids {
		f.live[id] = info
	}
}

// Fail makes every call for ids return err.
func (f *FakePusher) Fail(err error, ids ...string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, id := range ids {
		f.fail[id] = err
	}
}

func (f *FakePusher) lookup(op, id string) (store.ConnectionInfo, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err, ok := f.fail[id]; ok {
		return store.ConnectionInfo{}, err
	}
	if info, ok := f.live[id]; ok {
		return info, nil
	}
	return store.ConnectionInfo{}, &store.PushError{Kind: store.KindGone, Op: op, ConnectionID: id, Status: 410}
}

// Post succeeds for a live connection.
func (f *FakePusher) Post(_ context.Context, id string, _ []byte) error {
	_, err := f.lookup("PostToConnection", id)
	return err
}

// Get describes a live connection.
func (f *FakePusher) Get(_ context.Context, id string) (store.ConnectionInfo, error) {
	return f.lookup("GetConnection", id)
}

// Delete closes a live connection: it is gone afterwards.
func (f *FakePusher) Delete(_ context.Context, id string) error {
	if _, err := f.lookup("DeleteConnection", id); err != nil {
		return err
	}
	f.mu.Lock()
	delete(f.live, id)
	f.mu.Unlock()
	return nil
}

// Throttled is the error a throttled Management API call returns.
func Throttled(id string) error {
	return &store.PushError{Kind: store.KindThrottled, Op: "GetConnection", ConnectionID: id, Status: 429, Err: fmt.Errorf("LimitExceededException")}
}

// CountingPusher wraps a store.Pusher and counts its calls by connection ID.
// It is safe for concurrent use.
type CountingPusher struct {
	P store.Pusher

	mu    sync.Mutex
	gets  map[string]int
	total int
}

var _ store.Pusher = (*CountingPusher)(nil)

// NewCountingPusher counts the calls to p.
func NewCountingPusher(p store.Pusher) *CountingPusher {
	return &CountingPusher{P: p, gets: map[string]int{}}
}

func (c *CountingPusher) count(id string, get bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.total++
	if get {
		c.gets[id]++
	}
}

// Post counts and forwards.
func (c *CountingPusher) Post(ctx context.Context, id string, data []byte) error {
	c.count(id, false)
	return c.P.Post(ctx, id, data)
}

// Get counts and forwards.
func (c *CountingPusher) Get(ctx context.Context, id string) (store.ConnectionInfo, error) {
	c.count(id, true)
	return c.P.Get(ctx, id)
}

// Delete counts and forwards.
func (c *CountingPusher) Delete(ctx context.Context, id string) error {
	c.count(id, false)
	return c.P.Delete(ctx, id)
}

// Gets returns how often Get was called for id.
func (c *CountingPusher) Gets(id string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.gets[id]
}

// Total returns how many calls of any kind were made.
func (c *CountingPusher) Total() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.total
}

// Reset forgets the counts.
func (c *CountingPusher) Reset() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gets = map[string]int{}
	c.total = 0
}
