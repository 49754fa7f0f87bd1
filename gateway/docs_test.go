package gateway

import (
	"fmt"
	"testing"
	"time"

	"github.com/socks-dev/socks/internal/docsays"
	"github.com/socks-dev/socks/internal/text"
)

// TestTheGatewaysNumbersAreAsDocumented checks the numbers docs/protocol.md
// gives for the local gateway's own bounds against the constants it runs
// with (serve's flag defaults and the shared limits are checked by
// commands/serve's TestProtocolLimitsAreAsDocumented): the URL and header
// bounds, the integration timeout a call to a connecting ID waits, the
// signature's age, the Retry-After of a shutting-down gateway and the
// failed $disconnects kept.
func TestTheGatewaysNumbersAreAsDocumented(t *testing.T) {
	docsays.Says(t, "protocol.md",
		fmt.Sprintf("| WebSocket URL | %s characters |", text.Thousands(maxURLLength)),
		fmt.Sprintf("| request line and headers | %s bytes", text.Thousands(maxHeaderBytes)),
		fmt.Sprintf("net/http reads at most %d KB of line and headers", headerCeiling>>10),
		fmt.Sprintf("(at most its %d s integration timeout)", int(connectWait/time.Second)),
		fmt.Sprintf("more than %d minutes old", int(maxClockSkew/time.Minute)),
		fmt.Sprintf("is more than %d minutes off", int(maxClockSkew/time.Minute)),
		fmt.Sprintf("with `Retry-After: %d`", int(retryAfterShutdown/time.Second)),
		fmt.Sprintf("(at most %s kept)", text.Thousands(maxLostDisconnects)),
	)
}
