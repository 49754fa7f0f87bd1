package ops_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/socks-dev/socks/awsops"
	"github.com/socks-dev/socks/config"
	"github.com/socks-dev/socks/ops"
	"github.com/socks-dev/socks/pubsub"
)

// TestTheConnectionsCheckReadsABoundedPartOnAWS runs on DynamoDB Local:
// doctor's connections check read the whole by-geek index of a stack (a
// full Scan of a table of millions), where the migration check reads at
// most MigrationReadLimit items. It reads at most its limit (3 here),
// says it stopped early with what the part read shows, and reads all of a
// table within the limit.
func TestTheConnectionsCheckReadsABoundedPartOnAWS(t *testing.T) {
	s := freshStore(t, "doctor-conns-")
	now := time.Now().UTC().Truncate(time.Second)
	for i := range 7 {
		c := pubsub.Connection{ID: fmt.Sprintf("c%d=", i), Geek: fmt.Sprintf("g%d", i), Topics: []string{"t"},
			ConnectedAt: now.Add(-time.Duration(i+1) * time.Minute), ExpiresAt: now.Add(time.Hour)}
		if i >= 5 {
			// Stale: expired over five years ago, which DynamoDB
			// Local's TTL sweeper (every 10 s) leaves alone. Expired a
			// minute ago, they were swept before the check read them
			// now and then ("5 open" of 5 items read).
			c.ExpiresAt = now.AddDate(-6, 0, 0)
		}
		if err := s.PutConnection(t.Context(), c); err != nil {
			t.Fatal(err)
		}
	}
	var conns ops.Check
	for _, c := range ops.Checks(config.BackendAWS) {
		if c.Name == "connections" {
			conns = c
		}
	}
	run := func(t *testing.T, limit int) (ops.Result, int64) {
		t.Helper()
		env, _, _ := awsEnv(t)
		env.Now, env.Store = now, s
		env.AWS.Connections = func(ctx context.Context, fn func([]pubsub.Connection) error) (awsops.ConnectionsRead, error) {
			return s.ReadConnections(ctx, limit, fn)
		}
		before := s.ItemsRead()
		rep := ops.RunChecks(t.Context(), env, []ops.Check{conns})
		return rep.Checks[0], s.ItemsRead() - before
	}
	t.Run("a table over the limit", func(t *testing.T) {
		r, read := run(t, 3)
		if read > 3 {
			t.Errorf("the check read %d items of the by-geek index; want at most 3, its limit", read)
		}
		if !strings.Contains(r.Detail, "in the first 3 records") || !strings.Contains(r.Detail, "stopped early") || !strings.Contains(r.Detail+r.Fix, "socks subs stats") {
			t.Errorf("connections %+v; want what the first 3 records show, said to have stopped early, with what counts them all", r)
		}
	})
	t.Run("a table within the limit", func(t *testing.T) {
		r, read := run(t, 100)
		if read != 7 || r.Status != ops.StatusWarn || !strings.HasPrefix(r.Detail, "5 open, 2 stale records") || strings.Contains(r.Detail, "stopped early") {
			t.Errorf("connections %+v after reading %d items; want all 7 read: 5 open, 2 stale", r, read)
		}
		if !r.Time.Equal(now.Add(-5 * time.Minute)) {
			t.Errorf("oldest connected %s; want %s", r.Time, now.Add(-5*time.Minute))
		}
	})
}
