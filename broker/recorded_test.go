package broker_test

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/socks-dev/socks/broker"
	"github.com/socks-dev/socks/broker/brokertest"
	"github.com/socks-dev/socks/local"
	"github.com/socks-dev/socks/pubsub"
	"github.com/socks-dev/socks/store"
)

// TestRecordedEventsOnTheLocalBackend takes the recorded EventBridge events
// and SNS notifications off the embedded queue.
func TestRecordedEventsOnTheLocalBackend(t *testing.T) {
	dbs := map[store.Store]*local.DB{}
	brokertest.RunRecorded(t, brokertest.Harness{
		NewStore: func(t *testing.T) store.Store {
			db, err := local.Open(t.Context(), filepath.Join(t.TempDir(), "socks.db"), local.Options{})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { db.Close() })
			dbs[db.Store()] = db
			return db.Store()
		},
		Handle: func(t *testing.T, s store.Store, body []byte, m *pubsub.Mapping, p store.Pusher) string {
			q := dbs[s].Queue()
			if _, err := q.Send(t.Context(), body); err != nil {
				t.Fatal(err)
			}
			br := &broker.Broker{Store: s, Queue: q, Pusher: p, Mapping: m}
			msg := receiveOne(t, q, time.Minute)
			return brokertest.Reason(t, q, msg, br.Handle(t.Context(), msg))
		},
	})
}
