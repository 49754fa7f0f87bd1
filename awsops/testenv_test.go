package awsops

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/http/httptrace"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsmiddleware "github.com/aws/aws-sdk-go-v2/aws/middleware"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/smithy-go/logging"
	"github.com/aws/smithy-go/middleware"

	"github.com/socks-dev/socks/internal/emulatortest"
)

// emulatorEndpoints returns the endpoints of DynamoDB Local and ElasticMQ
// that scripts/emulators started, as emulatortest gives them: the test is
// skipped when they are not set (failed under SOCKS_REQUIRE_EMULATORS=1),
// and endpoints off loopback are refused.
func emulatorEndpoints(t testing.TB) (dynamoURL, sqsURL string) {
	t.Helper()
	return emulatortest.DynamoDB(t), emulatortest.SQS(t)
}

// dummyConfig is the AWS configuration of the test clients of DynamoDB
// Local, ElasticMQ and the tests' own servers: fixed dummy credentials and
// region, nothing read from the environment or the shared config files, so
// real credentials are never used. The same as emulatortest.MotoAWS's,
// which the tests on moto use (it needs moto's endpoint).
func dummyConfig() aws.Config {
	return aws.Config{
		Region:      emulatortest.MotoRegion,
		Credentials: credentials.NewStaticCredentialsProvider("test", "test", ""),
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
	cfg := dummyConfig()
	logSDKAttempts(t, &cfg)
	return NewSQS(cfg, endpoint)
}

// envSDKLog names the environment variable that, when set, has the test
// clients log each SDK attempt to the test's log: the request's and the
// answer's headers, when the request was written (and its write error),
// the retries and each attempt's error. It is how a lost
// answer that the SDK retried is seen (an SQS receive served, its answer
// lost, the retry's long poll finding the message hidden).
const envSDKLog = "SOCKS_TEST_SDK_LOG"

// logSDKAttempts sets cfg to log each SDK attempt to t when $SOCKS_TEST_SDK_LOG
// is set.
func logSDKAttempts(t testing.TB, cfg *aws.Config) {
	if os.Getenv(envSDKLog) == "" {
		return
	}
	// The transport may report a request written after the test has
	// ended (the write can end after the answer), when t.Logf panics.
	var mu sync.Mutex
	done := false
	t.Cleanup(func() {
		mu.Lock()
		done = true
		mu.Unlock()
	})
	logf := func(format string, v ...any) {
		mu.Lock()
		defer mu.Unlock()
		if !done {
			t.Logf("%s SDK %s", time.Now().Format("15:04:05.000"), fmt.Sprintf(format, v...))
		}
	}
	cfg.ClientLogMode = aws.LogRetries | aws.LogRequest | aws.LogResponse
	cfg.Logger = logging.LoggerFunc(func(c logging.Classification, format string, v ...any) {
		logf("%s: %s", c, fmt.Sprintf(format, v...))
	})
	cfg.APIOptions = append(cfg.APIOptions, func(stack *middleware.Stack) error {
		return stack.Finalize.Insert(middleware.FinalizeMiddlewareFunc("socks.TestAttemptLog", func(ctx context.Context, in middleware.FinalizeInput, next middleware.FinalizeHandler) (middleware.FinalizeOutput, middleware.Metadata, error) {
			// The request's write ends after its answer comes when the
			// transport still reads the body the SDK has closed.
			ctx = httptrace.WithClientTrace(ctx, &httptrace.ClientTrace{
				GotFirstResponseByte: func() { logf("answer begins") },
				WroteRequest: func(i httptrace.WroteRequestInfo) {
					logf("request written: %v", i.Err)
				},
			})
			out, md, err := next.HandleFinalize(ctx, in)
			logf("attempt of %s ends: %v", awsmiddleware.GetOperationName(ctx), err)
			return out, md, err
		}), "Retry", middleware.After)
	})
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
	deleteTablesAtCleanup(t, api, tables)
	return tables
}

// deleteTablesAtCleanup deletes tables when the test ends.
func deleteTablesAtCleanup(t testing.TB, api TableAdminAPI, tables Tables) {
	t.Cleanup(func() {
		if err := DeleteTables(cleanupContext(t), api, tables, time.Minute); err != nil {
			t.Errorf("deleting tables: %v", err)
		}
	})
}

// deleteQueuesAtCleanup deletes queues when the test ends.
func deleteQueuesAtCleanup(t testing.TB, api QueueAdminAPI, queues Queues) {
	t.Cleanup(func() {
		if err := DeleteQueues(cleanupContext(t), api, queues); err != nil {
			t.Errorf("deleting queues: %v", err)
		}
	})
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
	deleteQueuesAtCleanup(t, api, queues)
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
