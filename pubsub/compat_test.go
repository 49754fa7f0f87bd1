package pubsub

import (
	"encoding/json"
	"slices"
	"testing"
)

// TestQueueMessagesOfEarlierSocksAreReadTheSame pins the queue's wire
// format across versions (docs/protocol.md, "Versions"). Each body is what
// an earlier socks wrote (the commit that first wrote that shape is named):
// this one reads it with the same meaning, and writes the same envelope as
// the same bytes, so a broker of any of those versions reads what this one
// queues. Messages already on the queue at an upgrade, and a Lambda
// function of each version taking messages off one queue while it is
// updated, depend on it.
func TestQueueMessagesOfEarlierSocksAreReadTheSame(t *testing.T) {
	for _, tc := range []struct {
		name string
		body string
		want Envelope
	}{
		{
			"an envelope of the first socks (7934d7c)",
			`{"id":"m-0c1f6a7e8feb","users":["Friendless"],"topics":["updates"],"body":{"a":[1,"x"]}}`,
			Envelope{ID: "m-0c1f6a7e8feb", Users: []string{"Friendless"}, Topics: []string{"updates"}, Body: json.RawMessage(`{"a":[1,"x"]}`)},
		},
		{
			"an envelope to every subscriber, without an ID (7934d7c)",
			`{"topics":["."],"body":"plays-updated"}`,
			Envelope{Topics: []string{"."}, Body: json.RawMessage(`"plays-updated"`)},
		},
		{
			"a follow-up as brokers have written it since follow-ups began (bafe445)",
			`{"id":"m-1","users":["Friendless"],"topics":["updates"],"body":1,"connections":["L0SM9cOFvHcCIhw="],"attempt":2,"lastError":"HTTP 500"}`,
			Envelope{ID: "m-1", Users: []string{"Friendless"}, Topics: []string{"updates"}, Body: json.RawMessage(`1`),
				FollowUp: FollowUp{Connections: []string{"L0SM9cOFvHcCIhw="}, Attempt: 2, LastError: "HTTP 500"}},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseMessage([]byte(tc.body), nil)
			if err != nil {
				t.Fatalf("ParseMessage: %v", err)
			}
			if got.ID != tc.want.ID || !slices.Equal(got.Users, tc.want.Users) || !slices.Equal(got.Topics, tc.want.Topics) ||
				string(got.Body) != string(tc.want.Body) || got.Attempt != tc.want.Attempt || got.LastError != tc.want.LastError ||
				!slices.Equal(got.Connections, tc.want.Connections) {
				t.Errorf("read %+v, want %+v", got, tc.want)
			}
			out, err := tc.want.Marshal()
			if err != nil || string(out) != tc.body {
				t.Errorf("this socks writes %s (%v), want the bytes an earlier one wrote and reads: %s", out, err, tc.body)
			}
		})
	}
}
