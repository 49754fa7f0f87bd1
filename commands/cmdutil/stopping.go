package cmdutil

import (
	"maps"
	"slices"
	"sync"
)

// Stopping holds what a command still finishes once a first Ctrl-C (or
// SIGTERM) has stopped it, and what stopping at once, on a second one,
// leaves behind. Main says the first when the first signal comes (on a
// terminal) and the second when a second one ends the process at once.
// A nil *Stopping records nothing: tests and the Lambda need none.
type Stopping struct {
	mu   sync.Mutex
	next int
	work map[int]func() Work
}

// Work is one thing a command finishes after a first Ctrl-C.
type Work struct {
	// What is being finished, as a phrase that follows "stopping: ":
	// "revoking the chatter ID listen issued".
	What string
	// Left says what stopping at once leaves behind and what becomes of
	// it, as a sentence: "the chatter ID ... expires by itself at 01:05".
	Left string
}

// Add records w until done is called (once the work is done, or nothing
// is left to finish). done may be called more than once.
func (s *Stopping) Add(w Work) (done func()) {
	return s.AddFunc(func() Work { return w })
}

// AddFunc records, until done is called, work that says what it is as the
// command stands when asked: Pending calls now each time. What is left to
// finish changes then without the command recording anything anew (serve
// says it finishes messages only while its broker holds a batch, counted
// as it takes each one). now is called from any goroutine, without s
// locked.
func (s *Stopping) AddFunc(now func() Work) (done func()) {
	if s == nil {
		return func() {}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.work == nil {
		s.work = map[int]func() Work{}
	}
	id := s.next
	s.next++
	s.work[id] = now
	return func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		delete(s.work, id)
	}
}

// Pending is the work recorded and not done, in the order it was added.
func (s *Stopping) Pending() []Work {
	if s == nil {
		return nil
	}
	s.mu.Lock()
	now := make([]func() Work, 0, len(s.work))
	for _, id := range slices.Sorted(maps.Keys(s.work)) {
		now = append(now, s.work[id])
	}
	s.mu.Unlock()
	out := make([]Work, len(now))
	for i, f := range now {
		out[i] = f()
	}
	return out
}
