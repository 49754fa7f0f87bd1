package awsops

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/socks-dev/socks/internal/docsays"
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
		{"the purge's walks", `a purge of all walks again until none are left, up to (\d+)\s+walks`, []int{maxPurgePasses}},
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

// permissionsTable returns the rows (service, actions, resources) of the
// table of docs/deploy.md under heading, a bold line of its own.
func permissionsTable(t *testing.T, doc, heading string) [][]string {
	t.Helper()
	_, table, ok := strings.Cut(doc, "\n"+heading)
	if !ok {
		t.Fatalf("docs/deploy.md has no %s table", heading)
	}
	table, _, _ = strings.Cut(table, "\n\n**")
	var rows [][]string
	for _, line := range strings.Split(table, "\n") {
		if cells := strings.Split(line, " | "); strings.HasPrefix(line, "| ") && len(cells) == 3 {
			rows = append(rows, cells)
		}
	}
	return rows
}

// docActions lists the backquoted actions of a row's cell, with the
// service's prefix, leaving out what it says in parentheses.
func docActions(prefix, cell string) []string {
	var out []string
	cell = regexp.MustCompile(`\([^)]*\)`).ReplaceAllString(cell, "")
	for _, m := range regexp.MustCompile("`([A-Za-z:-]+)`").FindAllStringSubmatch(cell, -1) {
		a := m[1]
		if !strings.Contains(a, ":") {
			a = prefix + a
		}
		out = append(out, a)
	}
	return out
}

// TestDeployIsAsDocumented checks docs/deploy.md against what deploy
// makes: the function role's actions, table by table, and the numbers of
// the function, the queue and the event source mapping.
func TestDeployIsAsDocumented(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join("..", "docs", "deploy.md"))
	if err != nil {
		t.Fatal(err)
	}
	doc := string(raw)

	// The role's table: service, actions, resources.
	rows := permissionsTable(t, doc, "**The function's role**")
	actions := docActions
	d := &Deployer{Spec: DeploySpec{Stack: "s", Region: "us-east-1"}.withDefaults()}
	d.st = deployState{part: "aws", account: "1", tables: d.Spec.Tables(), queues: d.Spec.Queues(), apiID: "api"}
	statements := map[string][]string{}
	for _, s := range d.RolePolicy().Statement {
		statements[s.Sid] = s.Action
	}
	for _, c := range []struct {
		row     int // of the table, after its heading and rule
		service string
		prefix  string
		sid     string
	}{
		{2, "DynamoDB", "dynamodb:", "Tables"},
		{3, "SQS", "sqs:", "Queues"},
		{4, "SQS", "sqs:", "DeadLetters"},
		{5, "API Gateway", "", "ManageConnections"},
	} {
		if c.row >= len(rows) || strings.TrimPrefix(rows[c.row][0], "| ") != c.service {
			t.Errorf("docs/deploy.md's role table has no %s row %d: %q", c.service, c.row, rows)
			continue
		}
		got := actions(c.prefix, rows[c.row][1])
		if !sameSet(got, statements[c.sid]) || len(got) != len(statements[c.sid]) {
			t.Errorf("docs/deploy.md's role table, %s: %v; deploy grants %v (statement %s)", c.service, got, statements[c.sid], c.sid)
		}
	}
	if got := strings.Count(rows[5][2], "/@connections/*"); got != 3 {
		t.Errorf("docs/deploy.md's role table names %d @connections resources; deploy grants POST, GET and DELETE", got)
	}

	docsays.Says(t, "deploy.md",
		fmt.Sprintf("handler `%s`, %d MB, `--function-timeout`, default %d s", DeployHandler, DeployMemoryMB, int(DefaultBrokerTimeout/time.Second)),
		fmt.Sprintf("(`%s`, handler", DeployRuntime),
		fmt.Sprintf("the route selection expression `%s`", DeployRouteSelection),
		fmt.Sprintf("`--stage`, default `%s`", DefaultDeployStage),
		fmt.Sprintf("for `--arch` (`%s` by default)", DefaultDeployArch),
		"retries `CreateFunction` on exactly that error, for at most two minutes",
		fmt.Sprintf("redrive policy to the DLQ after %d receives; visibility timeout 6 × `--broker-timeout`, default %d s → %d s", QueueSettings{}.MaxReceiveCount(), int(DefaultBrokerTimeout/time.Second), int(QueueSettings{}.VisibilityTimeout()/time.Second)),
		fmt.Sprintf("(`maxReceiveCount` %d)", QueueSettings{}.MaxReceiveCount()),
		fmt.Sprintf("| batch size | **%d** |", DeployBatchSize),
		fmt.Sprintf("| maximum batching window | %d |", DeployBatchWindow),
		fmt.Sprintf("| function timeout | %d s (`FunctionTimeout`) |", int(DefaultBrokerTimeout/time.Second)),
		fmt.Sprintf("(%d s for %d s)", int(QueueSettings{}.VisibilityTimeout()/time.Second), int(DefaultBrokerTimeout/time.Second)),
		fmt.Sprintf("| maximum concurrency | e.g. %d (2–1000) |", DefaultMaximumConcurrency),
		fmt.Sprintf("(`--throttle-burst` %d and `--throttle-rate` %d requests per second by default)", DefaultThrottlingBurstLimit, DefaultThrottlingRateLimit),
		fmt.Sprintf("both queues take messages of up to %d MiB", pubsub.MaxEnvelopeBytes>>20),
	)
	if roleRetryBound != 2*time.Minute {
		t.Errorf("docs/deploy.md says deploy retries CreateFunction for at most two minutes; the code has %s", roleRetryBound)
	}
	flat := strings.Join(strings.Fields(doc), " ")
	var routes []string
	for _, r := range DeployRoutes {
		routes = append(routes, "`"+r.Key+"`")
	}
	if want := strings.Join(routes[:len(routes)-1], ", ") + " and " + routes[len(routes)-1]; !strings.Contains(flat, "the routes "+want) {
		t.Errorf("docs/deploy.md no longer names the routes as deploy makes them: %s", want)
	}
}
