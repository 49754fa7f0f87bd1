package provision

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/socks-dev/socks/awsops"
	"github.com/socks-dev/socks/internal/emulatortest"
	"github.com/socks-dev/socks/iostreams"
	"github.com/socks-dev/socks/pubsub"
)

// TestProvisionMigratesAnExistingConnectionsTable runs provision on
// DynamoDB Local and ElasticMQ against a connections table holding records
// of an earlier socks (no geek items): --dry-run counts them and changes
// nothing, a run adds their geek items so that a fan-out to their geek
// finds them, and the next run has nothing to do.
func TestProvisionMigratesAnExistingConnectionsTable(t *testing.T) {
	cfg := awsops.LocalConfig()
	db := awsops.NewDynamoDB(cfg, emulatortest.DynamoDB(t))
	sq := awsops.NewSQS(cfg, emulatortest.SQS(t))
	var b [6]byte
	_, _ = rand.Read(b[:])
	stack := "migrate-" + hex.EncodeToString(b[:])
	target := func(context.Context) (*Target, error) {
		return &Target{
			Tables: awsops.TablesFor(stack), Queues: awsops.QueuesFor(stack),
			DB: awsops.QuietNotFound(db), SQS: sq, Data: db, Stack: stack, Region: cfg.Region,
		}, nil
	}
	ios, _, out, _ := iostreams.Test()
	run := func(t *testing.T, dryRun bool) string {
		t.Helper()
		out.Reset()
		opts := &Options{IO: ios, Target: target, Now: time.Now, Wait: time.Minute, BrokerTimeout: awsops.DefaultBrokerTimeout, DryRun: dryRun}
		if err := provisionRun(t.Context(), opts); err != nil {
			t.Fatal(err)
		}
		return out.String()
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		tios, _, _, _ := iostreams.Test()
		if err := teardownRun(ctx, &TeardownOptions{IO: tios, Target: target, Now: time.Now, Yes: true, Wait: time.Minute}); err != nil {
			t.Errorf("teardown: %v", err)
		}
	})
	run(t, false)

	tables := awsops.TablesFor(stack)
	s := awsops.NewDynamoStore(db, tables)
	now := time.Now()
	var conns []pubsub.Connection
	for i := range 3 {
		conns = append(conns, pubsub.Connection{ID: fmt.Sprintf("old-%d", i), Geek: "alice", Topics: []string{"news"}, ConnectedAt: now, ExpiresAt: now.Add(time.Hour)})
	}
	if err := s.ImportConnections(t.Context(), conns); err != nil {
		t.Fatal(err)
	}
	// The earlier layout had no geek items (docs/tables.md).
	for _, c := range conns {
		_, err := db.DeleteItem(t.Context(), &dynamodb.DeleteItemInput{TableName: aws.String(tables.Connections), Key: map[string]types.AttributeValue{
			"pk": &types.AttributeValueMemberS{Value: "GEEK#" + c.Geek}, "sk": &types.AttributeValueMemberS{Value: "CONN#" + c.ID},
		}})
		if err != nil {
			t.Fatal(err)
		}
	}
	found := func() int {
		got, err := s.FindTargets(t.Context(), []string{"alice"}, []string{"news"}, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		return len(got)
	}
	if n := found(); n != 0 {
		t.Fatalf("a fan-out to alice found %d connections before the migration; the seed is wrong", n)
	}
	want := "would migrate 3 geek items of table " + tables.Connections
	if got := run(t, true); !strings.Contains(got, want) {
		t.Errorf("provision --dry-run said %q, want %q", got, want)
	}
	if n := found(); n != 0 {
		t.Errorf("provision --dry-run changed the table: a fan-out to alice finds %d", n)
	}
	want = "migrated 3 geek items of table " + tables.Connections
	if got := run(t, false); !strings.Contains(got, want) {
		t.Errorf("provision said %q, want %q", got, want)
	}
	if n := found(); n != 3 {
		t.Errorf("after provision a fan-out to alice finds %d connections, want 3", n)
	}
	if got := run(t, false); got != "nothing to do: 3 tables and 2 queues are in place\n" {
		t.Errorf("provision again said %q", got)
	}
}
