package awsops

import (
	"testing"
	"time"

	"github.com/socks-dev/socks/broker"
	"github.com/socks-dev/socks/broker/brokertest"
	"github.com/socks-dev/socks/pubsub"
	"github.com/socks-dev/socks/store"
)

// TestRecordedEventsOnTheAWSBackend takes the recorded EventBridge events
// and SNS notifications off SQS (ElasticMQ), with connections in DynamoDB
// (Local). One table set and queue pair serve every case: the connections
// are the same, and each case finds its own dead letter by message ID.
func TestRecordedEventsOnTheAWSBackend(t *testing.T) {
	s := newTestStore(t)
	q := newTestQueue(t, 0)
	brokertest.RunRecorded(t, brokertest.Harness{
		NewStore: func(*testing.T) store.Store { return s },
		Handle: func(t *testing.T, s store.Store, body []byte, m *pubsub.Mapping, p store.Pusher) string {
			if _, err := q.Send(t.Context(), body); err != nil {
				t.Fatal(err)
			}
			msgs, err := q.Receive(t.Context(), 1, time.Minute, 5*time.Second)
			if err != nil || len(msgs) != 1 {
				t.Fatalf("Receive = %d messages, %v", len(msgs), err)
			}
			br := &broker.Broker{Store: s, Queue: q, Pusher: p, Mapping: m}
			return brokertest.Reason(t, q, msgs[0], br.Handle(t.Context(), msgs[0]))
		},
	})
}
