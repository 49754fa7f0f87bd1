package ops_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/socks-dev/socks/awsops"
	"github.com/socks-dev/socks/internal/emulatortest"
	"github.com/socks-dev/socks/ops"
	"github.com/socks-dev/socks/ops/opstest"
	"github.com/socks-dev/socks/pubsub"
	"github.com/socks-dev/socks/store"
)

// dynamoLocal returns the DynamoDB Local endpoint scripts/emulators
// started (emulatortest.DynamoDB: skipped when it is not set, failed under
// SOCKS_REQUIRE_EMULATORS=1, refused off loopback: the test creates and
// deletes tables).
func dynamoLocal(t *testing.T) string { return emulatortest.DynamoDB(t) }

// dynamoLocalB is dynamoLocal for tests and benchmarks.
func dynamoLocalB(t testing.TB) string { return emulatortest.DynamoDB(t) }

// freshStore is the AWS backend's store on DynamoDB Local, on tables of
// its own named after prefix, deleted when t ends.
func freshStore(t *testing.T, prefix string) *awsops.DynamoStore {
	t.Helper()
	api := awsops.NewDynamoDB(awsops.LocalConfig(), dynamoLocal(t))
	var b [6]byte
	_, _ = rand.Read(b[:])
	tables := awsops.TablesFor(prefix + hex.EncodeToString(b[:]))
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
	return awsops.NewDynamoStore(api, tables)
}

// TestPruneOnDynamoDBLocal runs the prune acceptance suite against the AWS
// backend's store on DynamoDB Local, with a fake Management API.
func TestPruneOnDynamoDBLocal(t *testing.T) {
	s := freshStore(t, "prune-")
	fake := opstest.NewFakePusher()
	opstest.RunPrune(t, opstest.PruneHarness{
		Store:  s,
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

// TestPruneAsksTheManagementAPIOnlyAboutRowsYoungerThanTwoHours runs Prune
// on DynamoDB Local with the real Management API client (awsops.Pusher)
// pointed at a fake endpoint on loopback that counts every request by
// connection ID and answers 410 Gone: records connected over 2 h ago are
// dead by definition and must cost no call at all; each younger one costs
// exactly one GET.
func TestPruneAsksTheManagementAPIOnlyAboutRowsYoungerThanTwoHours(t *testing.T) {
	s := freshStore(t, "prune-calls-")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	var mu sync.Mutex
	calls := map[string]int{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id, _ := url.PathUnescape(strings.TrimPrefix(r.URL.EscapedPath(), "/@connections/"))
		mu.Lock()
		calls[r.Method+" "+id]++
		mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("X-Amzn-ErrorType", "GoneException")
		w.WriteHeader(http.StatusGone)
		_, _ = w.Write([]byte(`{"message":"Gone"}`))
	}))
	defer srv.Close()
	pusher := awsops.NewPusher(awsops.NewManagementClient(awsops.LocalConfig(), srv.URL, 8))

	now := time.Now()
	var conns []pubsub.Connection
	for i := range 400 {
		c := pubsub.Connection{ID: fmt.Sprintf("old-%04d=", i), Geek: fmt.Sprintf("geek%d", i%7), Topics: []string{"updates"},
			// Connected just over 2 h ago; not expired, so only the age
			// tells that it is dead.
			ConnectedAt: now.Add(-pubsub.MaxConnectionDuration - time.Second), ExpiresAt: now.Add(time.Hour)}
		if i%4 == 0 {
			c.ID = fmt.Sprintf("young-%04d=", i)
			c.ConnectedAt = now.Add(-pubsub.MaxConnectionDuration + time.Minute)
		}
		conns = append(conns, c)
	}
	if err := s.ImportConnections(ctx, conns); err != nil {
		t.Fatal(err)
	}
	res, err := ops.Prune(ctx, s, pusher, ops.PruneOptions{Now: now})
	if err != nil {
		t.Fatalf("Prune: %v (%+v)", err, res)
	}
	if want := (ops.PruneDeleted{TooOld: 300, Gone: 100}); res.Deleted != want || res.Errors != 0 {
		t.Errorf("Prune deleted %+v with %d errors %v; want %+v and none", res.Deleted, res.Errors, res.ErrorSamples, want)
	}
	mu.Lock()
	defer mu.Unlock()
	total := 0
	for _, c := range conns {
		want := 0
		if strings.HasPrefix(c.ID, "young-") {
			want = 1
		}
		if got := calls["GET "+c.ID]; got != want {
			t.Errorf("%s (connected %s ago): %d Management API GETs, want %d", c.ID, now.Sub(c.ConnectedAt).Round(time.Second), got, want)
		}
		total += want
	}
	n := 0
	for _, v := range calls {
		n += v
	}
	if n != total {
		t.Errorf("the Management API got %d requests in all (%v), want %d", n, calls, total)
	}
}
