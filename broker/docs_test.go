package broker

import (
	"fmt"
	"testing"
	"time"

	"github.com/socks-dev/socks/internal/docsays"
	"github.com/socks-dev/socks/internal/text"
	"github.com/socks-dev/socks/pubsub"
	"github.com/socks-dev/socks/store"
)

// TestReliabilityIsAsDocumented checks the numbers docs/reliability.md
// gives for the broker's rules (post timeout and tries, receives, attempts,
// hand-on and report retries, follow-up size) against the constants the
// broker runs with.
func TestReliabilityIsAsDocumented(t *testing.T) {
	postTimeout := int(DefaultPostTimeout / time.Second)
	docsays.Says(t, "reliability.md",
		fmt.Sprintf("each post is bounded by %d s", postTimeout),
		fmt.Sprintf("up to %d tries in all. A 403", DefaultPostTries),
		fmt.Sprintf("After %d receives (`DefaultMaxReceives`", store.DefaultMaxReceives),
		fmt.Sprintf("dead-lettered after %d receives — its dead letter", store.DefaultMaxReceives),
		fmt.Sprintf("A follow-up received after %d attempts (`broker.DefaultMaxAttempts`)", DefaultMaxAttempts),
		fmt.Sprintf("(%d receives, %d follow-ups)", store.DefaultMaxReceives, DefaultMaxAttempts),
		fmt.Sprintf("after a jittered backoff, up to %d times", reportAttempts),
		fmt.Sprintf("each for up to %s connections", text.Thousands(pubsub.MaxFollowUpConnections)),
		fmt.Sprintf("(over %s connections handed on)", text.Thousands(pubsub.MaxFollowUpConnections)),
		fmt.Sprintf("slower than the %d s post timeout", postTimeout),
		fmt.Sprintf("at most %d per recipient in one handling (%d tries)", DefaultPostTries-1, DefaultPostTries),
		fmt.Sprintf("at most %d (%d receives)", store.DefaultMaxReceives-1, store.DefaultMaxReceives),
		fmt.Sprintf("within the same %d receives", store.DefaultMaxReceives),
		fmt.Sprintf("handed on only after %d throttled tries", DefaultPostTries),
		fmt.Sprintf("wait up to the %d s post timeout", postTimeout),
		fmt.Sprintf("after a backoff, up to %d tries in all", handOnTries),
		fmt.Sprintf("dead-lettered after %d receives, naming its connections", store.DefaultMaxReceives),
	)
}
