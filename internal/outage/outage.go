// Package outage logs a failure that repeats, such as a loop's that
// cannot write the state file (a full disk, another process holding its
// lock), as a few lines: one when it starts, a reminder every so often
// saying how many failed meanwhile, and one when it ends. Logged at each
// try, such a loop wrote a line a second for as long as the outage lasted,
// and the $connect route a line for each client refused.
package outage

import (
	"log/slog"
	"sync"
	"sync/atomic"
	"time"
)

// DefaultEvery is how often a Log reminds that the failure goes on.
const DefaultEvery = time.Minute

// Log is the log of one repeated operation. Its methods may be called
// from several goroutines at once (the $connects of many clients). Set
// the fields before the first call. Between outages a try that passes
// costs an atomic load (Begin, then Passed), with no lock.
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

	// latest is the number of the outage's latest failure while one is
	// under way, else 0; written under mu.
	latest atomic.Uint64
	// mu orders the lines: they are logged under it.
	mu           sync.Mutex
	numbered     uint64    // failures numbered, ever
	began, said  time.Time // the first failure, and the last line
	total, since int       // failures in all, and since the last line
}

// A Try is what Begin saw: the outage under way when a try began, if any
// (its latest failure's number, 0 for none).
type Try uint64

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
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	l.numbered++
	failing := l.latest.Swap(l.numbered) != 0
	l.total++
	l.since++
	if !failing {
		l.began, l.said, l.total, l.since = now, now, 1, 0
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

// Begin notes that a try begins, for Passed: one atomic load.
func (l *Log) Begin() Try { return Try(l.latest.Load()) }

// Passed notes that t, a try begun with Begin, passed. It ends the outage
// (logged with how many failed and for how long) when t began during it
// and after its latest failure: a try that began earlier (before the
// disk filled, or while the lock another try waited for in vain was
// held) says nothing of now, and tries that overlap do not log a start
// and an end for each failure. A try begun between outages costs
// nothing more.
func (l *Log) Passed(t Try) {
	if t == 0 {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.latest.Load() != uint64(t) {
		return
	}
	l.Logger.Info(l.What+" again", "failures", l.total, "after", max(l.now().Sub(l.began), 0).Round(time.Second).String())
	l.latest.Store(0)
}

// OK notes a success of a loop's try, which began after the loop's last
// failure: it ends the outage, if one is under way. Between outages it
// costs an atomic load.
func (l *Log) OK() { l.Passed(l.Begin()) }
