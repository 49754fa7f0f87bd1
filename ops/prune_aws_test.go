package ops_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"net/url"
	"os"
	"testing"
	"time"

	"github.com/socks-dev/socks/awsops"
	"github.com/socks-dev/socks/ops/opstest"
	"github.com/socks-dev/socks/store"
)

// dynamoLocal returns the DynamoDB Local endpoint scripts/emulators
// started, or skips the test (fails under SOCKS_REQUIRE_EMULATORS=1). Only
// loopback endpoints are accepted: the test creates and deletes tables.
func dynamoLocal(t *testing.T) string { return dynamoLocalB(t) }

// dynamoLocalB is dynamoLocal for tests and benchmarks.
func dynamoLocalB(t testing.TB) string {
	t.Helper()
	endpoint := os.Getenv("SOCKS_TEST_DYNAMODB_ENDPOINT")
	if endpoint == "" {
		const how = "DynamoDB Local is not running: run `make test` or `scripts/emulators run -- go test ./ops/`"
		if os.Getenv("SOCKS_REQUIRE_EMULATORS") == "1" {
			t.Fatal(how)
		}
		t.Skip(how)
	}
	u, err := url.Parse(endpoint)
	if err != nil {
		t.Fatalf("SOCKS_TEST_DYNAMODB_ENDPOINT=%q: %v", endpoint, err)
	}
	if ip := net.ParseIP(u.Hostname()); u.Hostname() != "localhost" && (ip == nil || !ip.IsLoopback()) {
		t.Fatalf("refusing SOCKS_TEST_DYNAMODB_ENDPOINT=%q: not a loopback address", endpoint)
	}
	return endpoint
}

// TestPruneOnDynamoDBLocal runs the prune acceptance suite against the AWS
// backend's store on DynamoDB Local, with a fake Management API.
func TestPruneOnDynamoDBLocal(t *testing.T) {
	endpoint := dynamoLocal(t)
	api := awsops.NewDynamoDB(awsops.LocalConfig(), endpoint)
	var b [6]byte
	_, _ = rand.Read(b[:])
	tables := awsops.TablesFor("prune-" + hex.EncodeToString(b[:]))
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if _, err := awsops.EnsureTables(ctx, api, tables, time.Minute); err != nil {
		t.Fatalf("creating tables: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := awsops.DeleteTables(ctx, api, tables, time.Minute); err != nil {
			t.Errorf("deleting tables: %v", err)
		}
	})
	fake := opstest.NewFakePusher()
	opstest.RunPrune(t, opstest.PruneHarness{
		Store:  awsops.NewDynamoStore(api, tables),
		Pusher: fake,
		Live: func(t *testing.T, n int) []string {
			ids := make([]string, n)
			for i := range ids {
				ids[i] = fmt.Sprintf("live-%04d=", i)
			}
			fake.SetLive(store.ConnectionInfo{}, ids...)
			return ids
		},
	})
}
