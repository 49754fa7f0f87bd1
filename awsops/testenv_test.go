package awsops

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net"
	"net/url"
	"os"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
)

// The test peers: DynamoDB Local and ElasticMQ, started by
// scripts/emulators on loopback ports.
const (
	envDynamoEndpoint  = "SOCKS_TEST_DYNAMODB_ENDPOINT"
	envSQSEndpoint     = "SOCKS_TEST_SQS_ENDPOINT"
	envRequireEmulator = "SOCKS_REQUIRE_EMULATORS"
)

// emulatorEndpoints returns the emulator endpoints, or skips the test when
// they are not set (fails when SOCKS_REQUIRE_EMULATORS=1). It refuses any
// endpoint that is not on loopback: these tests create and delete tables
// and queues, and must never reach a real AWS account.
func emulatorEndpoints(t testing.TB) (dynamoURL, sqsURL string) {
	t.Helper()
	dynamoURL, sqsURL = os.Getenv(envDynamoEndpoint), os.Getenv(envSQSEndpoint)
	if dynamoURL == "" || sqsURL == "" {
		const how = "emulators not running: run `make test` or `scripts/emulators run -- go test ./awsops/`"
		if os.Getenv(envRequireEmulator) == "1" {
			t.Fatalf("%s (%s=1 requires %s and %s)", how, envRequireEmulator, envDynamoEndpoint, envSQSEndpoint)
		}
		t.Skip(how)
	}
	for name, raw := range map[string]string{envDynamoEndpoint: dynamoURL, envSQSEndpoint: sqsURL} {
		if err := checkLoopback(raw); err != nil {
			t.Fatalf("refusing %s=%q: %v; these tests only talk to emulators on 127.0.0.1 or localhost", name, raw, err)
		}
	}
	return dynamoURL, sqsURL
}

// checkLoopback accepts http URLs whose host is localhost or a loopback
// IP address.
func checkLoopback(raw string) error {
	u, err := url.Parse(raw)
	if err != nil {
		return err
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return &url.Error{Op: "parse", URL: raw, Err: errString("the scheme must be http")}
	}
	host := u.Hostname()
	if host == "localhost" {
		return nil
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsLoopback() {
		return nil
	}
	return errString("host " + host + " is not loopback")
}

type errString string

func (e errString) Error() string { return string(e) }

// dummyConfig is the AWS configuration of every test client: fixed dummy
// credentials and region, nothing read from the environment or the shared
// config files, so real credentials are never used.
func dummyConfig() aws.Config {
	return aws.Config{
		Region:      "us-east-1",
		Credentials: credentials.NewStaticCredentialsProvider("test", "test", ""),
		AppID:       "socks-test",
	}
}

func testDynamoClient(t testing.TB) *dynamodb.Client {
	t.Helper()
	endpoint, _ := emulatorEndpoints(t)
	return NewDynamoDB(dummyConfig(), endpoint)
}

func testSQSClient(t testing.TB) *sqs.Client {
	t.Helper()
	_, endpoint := emulatorEndpoints(t)
	return NewSQS(dummyConfig(), endpoint)
}

// uniqueName returns prefix with a random suffix, a valid table and queue
// name.
func uniqueName(prefix string) string {
	var b [6]byte
	_, _ = rand.Read(b[:])
	return prefix + "-" + hex.EncodeToString(b[:])
}

// cleanupContext is for t.Cleanup work, which runs after t.Context ended.
func cleanupContext(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// newTestTables creates fresh, uniquely named tables and deletes them when
// the test ends.
func newTestTables(t testing.TB, api *dynamodb.Client) Tables {
	t.Helper()
	tables := TablesFor(uniqueName("t"))
	if _, err := EnsureTables(t.Context(), api, tables, time.Minute); err != nil {
		t.Fatalf("creating tables: %v", err)
	}
	t.Cleanup(func() {
		if err := DeleteTables(cleanupContext(t), api, tables, time.Minute); err != nil {
			t.Errorf("deleting tables: %v", err)
		}
	})
	return tables
}

// newTestStore returns a DynamoStore on fresh tables.
func newTestStore(t testing.TB) *DynamoStore {
	t.Helper()
	api := testDynamoClient(t)
	return NewDynamoStore(api, newTestTables(t, api))
}

// newTestQueues creates a fresh, uniquely named queue pair and deletes it
// when the test ends.
func newTestQueues(t testing.TB, api *sqs.Client, s QueueSettings) Queues {
	t.Helper()
	queues := QueuesFor(uniqueName("q"))
	if _, _, err := EnsureQueues(t.Context(), api, queues, s); err != nil {
		t.Fatalf("creating queues: %v", err)
	}
	t.Cleanup(func() {
		if err := DeleteQueues(cleanupContext(t), api, queues); err != nil {
			t.Errorf("deleting queues: %v", err)
		}
	})
	return queues
}

// newTestQueue returns an SQSQueue on a fresh queue pair whose broker-side
// limit is maxReceives (0: the default).
func newTestQueue(t testing.TB, maxReceives int) *SQSQueue {
	t.Helper()
	api := testSQSClient(t)
	queues := newTestQueues(t, api, QueueSettings{MaxReceives: maxReceives})
	return NewSQSQueue(api, queues, SQSOptions{MaxReceives: maxReceives})
}

func TestCheckLoopback(t *testing.T) {
	for _, tc := range []struct {
		url string
		ok  bool
	}{
		{"http://127.0.0.1:8000", true},
		{"http://localhost:9324", true},
		{"http://[::1]:8000", true},
		{"http://127.0.0.2:8000", true},
		{"https://dynamodb.us-east-1.amazonaws.com", false},
		{"https://sqs.us-east-1.amazonaws.com", false},
		{"http://10.0.0.5:8000", false},
		{"http://localhost.example.com:8000", false},
		{"ftp://127.0.0.1", false},
		{"127.0.0.1:8000", false},
	} {
		t.Run(tc.url, func(t *testing.T) {
			err := checkLoopback(tc.url)
			if (err == nil) != tc.ok {
				t.Errorf("checkLoopback(%q) = %v, want ok=%v", tc.url, err, tc.ok)
			}
		})
	}
}
