package pubsub

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// benchEnvelope is an envelope as the broker takes one off the queue: an
// ID, a user, a topic and a body of about 1 KB of nested JSON.
func benchEnvelope() []byte {
	items := make([]string, 20)
	for i := range items {
		items[i] = fmt.Sprintf(`{"n":%d,"name":"item %d","tags":["a","b"],"ok":true}`, i, i)
	}
	return []byte(`{"id":"m-0c1f6a7e8feb","users":["Friendless"],"topics":["updates"],"body":{"items":[` + strings.Join(items, ",") + `]}}`)
}

// BenchmarkParseEnvelope measures reading one envelope, as publish's
// checks and the broker's fan-out do for every message.
func BenchmarkParseEnvelope(b *testing.B) {
	data := benchEnvelope()
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ParseEnvelope(data); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkParseMessage measures what the broker calls for each queue
// message, for each shape that carries an envelope.
func BenchmarkParseMessage(b *testing.B) {
	sns, err := os.ReadFile(filepath.Join("..", "testdata", "events", "sns-envelope.json"))
	if err != nil {
		b.Fatal(err)
	}
	eventBridge, err := os.ReadFile(filepath.Join("..", "testdata", "events", "eventbridge-envelope.json"))
	if err != nil {
		b.Fatal(err)
	}
	for _, bc := range []struct {
		name string
		data []byte
	}{
		{"envelope", benchEnvelope()},
		{"sns", sns},
		{"eventbridge", eventBridge},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.SetBytes(int64(len(bc.data)))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := ParseMessage(bc.data, nil); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
