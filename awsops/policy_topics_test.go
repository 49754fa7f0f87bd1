package awsops

import (
	"encoding/json"
	"slices"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
)

// TestPolicyTopicsTakesOnlySocksOwnStatements: teardown unsubscribes the
// queue from the topics PolicyTopics returns, so it must read only the
// statements provision writes: Sid SocksSNS of that very topic, principal
// sns.amazonaws.com. A statement copied under a socks-like Sid for another
// topic, one of another principal, one with Principal "*", and a policy
// whose Statement is one object are read without error and without
// topics that are not socks's.
func TestPolicyTopicsTakesOnlySocksOwnStatements(t *testing.T) {
	q := QueuesFor("prod")
	arn := fakeQueuePrefix + q.Main
	ours := "arn:aws:sns:us-east-1:000000000000:jobs"
	copied := SendStatement(SNSPrincipal, arn, "arn:aws:sns:us-east-1:000000000000:other")
	copied.Condition["ArnEquals"]["aws:SourceArn"] = "arn:aws:sns:us-east-1:000000000000:theirs"
	rule := SendStatement(EventsPrincipal, arn, "arn:aws:events:us-east-1:000000000000:rule/prod-envelopes")
	anyone := map[string]any{"Sid": "Anyone", "Effect": "Allow", "Principal": "*", "Action": "sqs:SendMessage", "Resource": arn}
	for _, tc := range []struct {
		name   string
		policy any
		want   []string
	}{
		{"a list", map[string]any{"Version": "2012-10-17", "Statement": []any{SendStatement(SNSPrincipal, arn, ours), copied, rule, anyone}}, []string{ours}},
		{"one statement", map[string]any{"Version": "2012-10-17", "Statement": SendStatement(SNSPrincipal, arn, ours)}, []string{ours}},
		{"none of socks's", map[string]any{"Version": "2012-10-17", "Statement": []any{copied, anyone}}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFakeAccount()
			f.addQueue(&sqs.CreateQueueInput{QueueName: aws.String(q.Main)})
			raw, err := json.Marshal(tc.policy)
			if err != nil {
				t.Fatal(err)
			}
			f.queues[q.Main]["Policy"] = string(raw)
			got, err := PolicyTopics(t.Context(), f, q)
			if err != nil || !slices.Equal(got, tc.want) {
				t.Errorf("PolicyTopics = %v, %v; want %v", got, err, tc.want)
			}
		})
	}
	got, err := PolicyTopics(t.Context(), newFakeAccount(), q)
	if err != nil || got != nil {
		t.Errorf("PolicyTopics of a queue that does not exist = %v, %v; want none", got, err)
	}
}
