package broker

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/socks-dev/socks/pubsub"
	"github.com/socks-dev/socks/store"
)

// TestReliabilityIsAsDocumented checks the numbers docs/reliability.md
// gives for the broker's rules (post timeout and tries, receives, attempts,
// hand-on and report retries, follow-up size) against the constants the
// broker runs with.
func TestReliabilityIsAsDocumented(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join("..", "docs", "reliability.md"))
	if err != nil {
		t.Fatal(err)
	}
	doc := strings.Join(strings.Fields(string(raw)), " ")
	thousands := func(n int) string {
		s := fmt.Sprint(n)
		for i := len(s) - 3; i > 0; i -= 3 {
			s = s[:i] + "," + s[i:]
		}
		return s
	}
	postTimeout := int(DefaultPostTimeout / time.Second)
	for _, s := range []string{
		fmt.Sprintf("each post is bounded by %d s", postTimeout),
		fmt.Sprintf("up to %d tries in all. A 403", DefaultPostTries),
		fmt.Sprintf("After %d receives (`DefaultMaxReceives`", store.DefaultMaxReceives),
		fmt.Sprintf("dead-lettered after %d receives — its dead letter", store.DefaultMaxReceives),
		fmt.Sprintf("A follow-up received after %d attempts (`broker.DefaultMaxAttempts`)", DefaultMaxAttempts),
		fmt.Sprintf("(%d receives, %d follow-ups)", store.DefaultMaxReceives, DefaultMaxAttempts),
		fmt.Sprintf("after a jittered backoff, up to %d times", reportAttempts),
		fmt.Sprintf("each for up to %s connections", thousands(pubsub.MaxFollowUpConnections)),
		fmt.Sprintf("(over %s connections handed on)", thousands(pubsub.MaxFollowUpConnections)),
		fmt.Sprintf("slower than the %d s post timeout", postTimeout),
		fmt.Sprintf("at most %d per recipient in one handling (%d tries)", DefaultPostTries-1, DefaultPostTries),
		fmt.Sprintf("at most %d (%d receives)", store.DefaultMaxReceives-1, store.DefaultMaxReceives),
		fmt.Sprintf("within the same %d receives", store.DefaultMaxReceives),
		fmt.Sprintf("handed on only after %d throttled tries", DefaultPostTries),
		fmt.Sprintf("wait up to the %d s post timeout", postTimeout),
		fmt.Sprintf("after a backoff, up to %d tries in all", handOnTries),
		fmt.Sprintf("dead-lettered after %d receives, naming its connections", store.DefaultMaxReceives),
	} {
		if !strings.Contains(doc, s) {
			t.Errorf("docs/reliability.md no longer says %q: fix the doc or this test", s)
		}
	}
}
