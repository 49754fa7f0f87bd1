// Package outage logs a failure that repeats, such as a loop's that
// cannot write the state file (a full disk, another process holding its
// lock), as a few lines: one when it starts, a reminder every so often
// saying how many failed meanwhile, and one when it ends. Logged at each
// try, such a loop wrote a line a second for as long as the outage lasted.
package outage

import (
	"log/slog"
	"time"
)

// DefaultEvery is how often a Log reminds that the failure goes on.
const DefaultEvery = time.Minute

// Log is the log of one repeated operation. Its methods are called from
// one goroutine at a time (a loop's). Set the fields before the first
// call.
type Log struct {
	// Logger receives the lines (Error while failing, Info at the end).
	Logger *slog.Logger
	// What names the operation, as its log line does ("receiving from
	// the queue").
	What string
	// Now is the clock of the reminders (default time.Now).
	Now func() time.Time
	// Every is how often a reminder is logged while it fails (default
	// DefaultEvery).
	Every time.Duration

	failing      bool
	began, said  time.Time // the first failure, and the last line
	total, since int       // failures in all, and since the last line
}

func (l *Log) now() time.Time {
	if l.Now != nil {
		return l.Now()
	}
	return time.Now()
}

// Failed notes a failure with err: logged when it is the first of an
// outage, or when the last line is Every old (with the count of those
// not logged). attrs are logged after err.
func (l *Log) Failed(err error, attrs ...any) {
	now := l.now()
	l.total++
	l.since++
	if !l.failing {
		l.failing, l.began, l.said, l.since = true, now, now, 0
		l.Logger.Error(l.What, append([]any{"err", err}, attrs...)...)
		return
	}
	every := l.Every
	if every <= 0 {
		every = DefaultEvery
	}
	if now.Sub(l.said) < every && !now.Before(l.said) {
		return
	}
	l.Logger.Error(l.What+" still fails", append([]any{"failures", l.since, "for", max(now.Sub(l.began), 0).Round(time.Second).String(), "err", err}, attrs...)...)
	l.said, l.since = now, 0
}

// OK notes a success: logged when it ends an outage, with how many
// failed and for how long. Between outages it costs a test of a bool.
func (l *Log) OK() {
	if !l.failing {
		return
	}
	l.Logger.Info(l.What+" again", "failures", l.total, "after", max(l.now().Sub(l.began), 0).Round(time.Second).String())
	l.failing, l.total, l.since = false, 0, 0
}
