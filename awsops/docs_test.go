package awsops

import (
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/socks-dev/socks/pubsub"
	"github.com/socks-dev/socks/store"
)

// TestTablesAreAsDocumented reads the numbers docs/tables.md gives for the
// DynamoDB and SQS backends and checks each against the constant it
// describes, so that a change of one without the other fails here.
func TestTablesAreAsDocumented(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join("..", "docs", "tables.md"))
	if err != nil {
		t.Fatal(err)
	}
	// The doc wraps its lines anywhere: match across them.
	doc := regexp.MustCompile(`\s+`).ReplaceAllString(string(raw), " ")
	seconds := func(d time.Duration) int { return int(d / time.Second) }
	vis := QueueSettings{}
	for _, c := range []struct {
		what    string
		pattern string // the groups of each match, in order, are want
		want    []int
	}{
		{"the tries of a read-modify-write", `retried \(up to (\d+) times, with backoff\)`, []int{txAttempts}},
		{"BatchGetItem's keys per call", "consistent `BatchGetItem` of the `CONN#id` items \\((\\d+) per call\\)", []int{maxBatchGet}},
		{"BatchWriteItem's items per call, calls at once and tries", `\((\d+) per call, (\d+) calls at once, unprocessed items retried with jittered backoff, at most (\d+) tries\)`, []int{maxBatchWrite, batchWorkers, batchAttempts}},
		{"the conditional deletes at once", "`ReturnValues: ALL_OLD`, (\\d+) at once\\)", []int{deleteConcurrency}},
		{"the user Queries at once", `\(consistent, up to (\d+) at once\)`, []int{queryWorkers}},
		{"the broadcast's segments", `parallel Scan\*\* of the base table \((\d+) segments`, []int{broadcastSegments}},
		{"the prune's Scan segments at once", `at most (\d+) segments at once`, []int{maxScanWorkers}},
		{"the writes of a transaction", `A transaction holds at most (\d+) writes`, []int{maxTransact}},
		{"the topics of a connection and the items they make", "at most (\\d+) topics \\(`pubsub.MaxTopicsPerConnection`\\), so a record, its geek item and all its subscriptions \\((\\d+)\\) fit", []int{pubsub.MaxTopicsPerConnection, pubsub.MaxTopicsPerConnection + 2}},
		{"the lease's renewal", `renewed every (\d+) s and lasting a minute`, []int{seconds(pruneLeaseRenew)}},
		{"the lease's last moment", `still unanswered (\d+) s after the lease was last written`, []int{seconds(pruneLeaseTTL - pruneLeaseTTL/10)}},
		{"the migration's tries", `is tried again, up to (\d+) times`, []int{txAttempts}},
		{"a report's errors", `the last (\d+) errors`, []int{store.MaxReportErrors}},
		{"a report's follow-up size", `fanned out to ([\d,]+) connections with every delivery handed on lists (\d+) follow-ups`, []int{100_000, 100_000 / pubsub.MaxFollowUpConnections}},
		{"the visibility timeout", "`VisibilityTimeout` = (\\d+) × the broker timeout \\(default (\\d+) s → \\*\\*(\\d+) s\\*\\*\\)", []int{visibilityFactor, seconds(DefaultBrokerTimeout), seconds(vis.VisibilityTimeout())}},
		{"the redrive policy", "`maxReceiveCount` = `store.DefaultMaxReceives` \\+ (\\d+) = \\*\\*(\\d+)\\*\\*", []int{redriveSlack, vis.MaxReceiveCount()}},
		{"the main queue's retention", `retention (\d+) days;`, []int{int(mainRetention / (24 * time.Hour))}},
		{"the dead letters' retention", `retention \*\*(\d+) days\*\*`, []int{int(deadRetention / (24 * time.Hour))}},
		{"the queues' message size", `\*\*(\d+) MiB\*\*`, []int{pubsub.MaxEnvelopeBytes >> 20}},
		{"the broker's receives", "more than `MaxReceives` \\((\\d+)\\) times", []int{store.DefaultMaxReceives}},
		{"a receive's longest wait", `passes its own wait \(≤ (\d+) s\)`, []int{seconds(store.MaxWait)}},
		{"the dead letters' walks", `receiving them from the DLQ with a (\d+) s visibility .* walk up to ([\d,]+); .Stats. walks up to ([\d,]+) for`, []int{seconds(deadLetterHold), maxDeadLetterWalk, maxStatsWalk}},
	} {
		matches := regexp.MustCompile(c.pattern).FindAllStringSubmatch(doc, -1)
		if len(matches) == 0 {
			t.Errorf("%s: docs/tables.md no longer says %q; fix the doc or this test", c.what, c.pattern)
			continue
		}
		for _, m := range matches {
			var got []int
			for _, g := range m[1:] {
				n, err := strconv.Atoi(strings.ReplaceAll(g, ",", ""))
				if err != nil {
					t.Fatalf("%s: %q is not a number", c.what, g)
				}
				got = append(got, n)
			}
			if !slices.Equal(got, c.want) {
				t.Errorf("%s: docs/tables.md says %q; the code has %v", c.what, m[0], c.want)
			}
		}
	}
	if pruneLeaseTTL != time.Minute || reportTTL != 24*time.Hour {
		t.Errorf("docs/tables.md says the prune lease lasts a minute and a report a day; the code has %s and %s", pruneLeaseTTL, reportTTL)
	}
}
