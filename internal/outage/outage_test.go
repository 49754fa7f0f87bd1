package outage

import (
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/socks-dev/socks/internal/lockedbuf"
)

// TestAClockSteppedBackDoesNotSilenceTheReminders: a wall clock stepped
// back (NTP, a restored VM) during an outage does not hold the next
// reminder back by the step: a failure at a time before the last line
// logs one, and the reminders go on from there.
func TestAClockSteppedBackDoesNotSilenceTheReminders(t *testing.T) {
	var logs lockedbuf.Buffer
	now := time.Date(2026, 12, 2, 2, 0, 0, 0, time.UTC)
	l := Log{Logger: slog.New(slog.NewTextHandler(&logs, nil)), What: "receiving", Now: func() time.Time { return now }}
	err := errors.New("full")
	l.Failed(err)
	now = now.Add(-time.Hour)
	l.Failed(err)
	now = now.Add(30 * time.Second)
	l.Failed(err)
	now = now.Add(30 * time.Second)
	l.Failed(err)
	l.OK()
	lines := strings.Split(strings.TrimSpace(logs.String()), "\n")
	want := []string{`msg=receiving err=full`, `msg="receiving still fails" failures=1`, `msg="receiving still fails" failures=2`, `msg="receiving again" failures=4`}
	if len(lines) != len(want) {
		t.Fatalf("%d lines; want %d:\n%s", len(lines), len(want), logs.String())
	}
	for i, w := range want {
		if !strings.Contains(lines[i], w) {
			t.Errorf("line %d %q does not say %q", i, lines[i], w)
		}
	}
}
