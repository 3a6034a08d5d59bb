// Package ratelog bounds how often a recurring event is logged: the first
// time, then at most once per interval, with the number of events left
// unlogged in between, so a flood of the same error costs one line per
// interval and loses no count.
package ratelog

import (
	"sync"
	"time"
)

// Limiter decides, for one source of events, which of them to log. The
// zero value is ready for use; a Limiter must not be copied after first
// use. Its methods are safe for concurrent use. Time is a parameter, so a
// caller with a virtual clock passes its own.
type Limiter struct {
	mu         sync.Mutex
	last       time.Time // when an event was last allowed; zero: never
	suppressed int       // events refused since then
}

// Allow records an event at now and reports whether to log it: yes for
// the first event and for one at least every after the last one allowed.
// suppressed is how many events it refused since the last one allowed
// (always 0 when ok is false).
func (l *Limiter) Allow(now time.Time, every time.Duration) (suppressed int, ok bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.last.IsZero() && now.Sub(l.last) < every {
		l.suppressed++
		return 0, false
	}
	n := l.suppressed
	l.last, l.suppressed = now, 0
	return n, true
}

// Count is Allow for callers that log a count of events: it returns how
// many to report now — this one and those refused since the last report —
// or 0 while the interval runs.
func (l *Limiter) Count(now time.Time, every time.Duration) int {
	suppressed, ok := l.Allow(now, every)
	if !ok {
		return 0
	}
	return suppressed + 1
}

// Flush returns the events refused since the last one allowed and forgets
// them, for a last line when their source goes away (at shutdown, say).
// It does not restart the interval.
func (l *Limiter) Flush() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := l.suppressed
	l.suppressed = 0
	return n
}
