package lambdafn

import (
	"context"
	"encoding/json"
	"path/filepath"
	"testing"
	"time"

	"github.com/socks-dev/socks/broker"
	"github.com/socks-dev/socks/broker/brokertest"
	"github.com/socks-dev/socks/local"
	"github.com/socks-dev/socks/pubsub"
	"github.com/socks-dev/socks/store"
)

// TestRecordedEventsInLambdaMode hands the recorded EventBridge events and
// SNS notifications to the function as SQS records.
func TestRecordedEventsInLambdaMode(t *testing.T) {
	brokertest.RunRecorded(t, brokertest.Harness{
		NewStore: func(t *testing.T) store.Store {
			db, err := local.Open(t.Context(), filepath.Join(t.TempDir(), "socks.db"), local.Options{})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { db.Close() })
			return db.Store()
		},
		Handle: func(t *testing.T, s store.Store, body []byte, m *pubsub.Mapping, p store.Pusher) string {
			q := &deadQueue{reasons: map[string]string{}}
			h := &Handler{
				Broker:   &broker.Broker{Store: s, Queue: q, Mapping: m, Sleep: func(context.Context, time.Duration) error { return nil }},
				Pusher:   func(string) store.Pusher { return p },
				Callback: "https://callback.example/prod",
			}
			payload, err := json.Marshal(map[string]any{"Records": []map[string]any{{
				"messageId": "rec-1", "receiptHandle": "receipt-1", "body": string(body),
				"attributes":  map[string]string{"ApproximateReceiveCount": "1", "SentTimestamp": "1769088100000"},
				"eventSource": SourceSQS, "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:socks-envelopes",
			}}})
			if err != nil {
				t.Fatal(err)
			}
			out, err := h.Invoke(t.Context(), payload)
			if err != nil {
				t.Fatalf("Invoke: %v", err)
			}
			if string(out) != `{"batchItemFailures":[]}` {
				t.Fatalf("response %s: the record would be retried", out)
			}
			return q.reasons["rec-1"]
		},
	})
}
