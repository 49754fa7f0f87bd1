package cmdutil

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"github.com/socks-dev/socks/internal/text"
)

func TestLogLinesShowOutsideValuesEscaped(t *testing.T) {
	// serve's and broker's log lines carry what clients sent (a geek, an
	// Origin, a close reason) and what AWS answered: slog's text handler
	// quotes a value, message or error holding anything not printable,
	// with Go's escapes, so none of it reaches the terminal raw.
	const evil = "g\x1b]52;c;aGk=\x07\u202e\u200b\u009b2J\nfake=line"
	var buf bytes.Buffer
	NewLogger(&buf, true, false).Warn("refused "+evil, "geek", evil, "err", errors.New(evil))
	line := strings.TrimSuffix(buf.String(), "\n")
	if strings.Contains(line, "\n") {
		t.Fatalf("one log call wrote several lines:\n%s", buf.String())
	}
	for _, r := range line {
		if text.UnsafeRune(r) {
			t.Fatalf("the log line has %U raw: %q", r, line)
		}
	}
	if !strings.Contains(line, `geek="g\x1b]52;c;aGk=\a\u202e\u200b\u009b2J\nfake=line"`) {
		t.Errorf("the geek is not shown quoted: %s", line)
	}
}
