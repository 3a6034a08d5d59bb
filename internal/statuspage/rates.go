package statuspage

import (
	"context"
	"encoding/json"
	"sync"
	"time"

	"github.com/mqtt-rules/mqtt-rules/engine"
)

// Rates are the page's charts: how many messages came in, how often rules
// fired, how many errors and drops there were, per bucket of Step, oldest
// first, the last bucket ending at End. A series holds at most the
// sampler's bucket count, fewer while the engine is young.
type Rates struct {
	StepMS   int64    `json:"step_ms"`
	Buckets  int      `json:"buckets"` // how many buckets a full series holds
	End      int64    `json:"end"`     // unix milliseconds
	Received []uint64 `json:"received"`
	Fires    []uint64 `json:"fires"`
	Errors   []uint64 `json:"errors"` // condition errors and failed actions
	Drops    []uint64 `json:"drops"`
}

// sampler keeps the rates. It runs whether or not a page is open, so a page
// shows the last minutes as soon as it opens; a sample every Step costs a
// few atomic loads per rule (see BenchmarkSample).
type sampler struct {
	counters func() *engine.Counters
	step     time.Duration
	buckets  int

	mu      sync.Mutex
	ring    [][4]uint64 // per bucket: received, fires, errors, drops
	next    int         // where the next bucket goes
	filled  int         // buckets in ring
	last    [4]uint64   // totals at the last sample
	started bool
	end     time.Time // when the last bucket ended
	version uint64    // counts samples
	event   []byte    // the "rates" SSE event of version, built on demand
	eventV  uint64
}

func newSampler(counters func() *engine.Counters, step time.Duration, buckets int) *sampler {
	return &sampler{counters: counters, step: step, buckets: buckets, ring: make([][4]uint64, buckets)}
}

// run samples every step until ctx ends.
func (s *sampler) run(ctx context.Context) {
	s.sample(time.Now())
	t := time.NewTicker(s.step)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			s.sample(now)
		}
	}
}

// totals returns the counters the rates follow, summed over every rule the
// engine ever counted (a removed rule's counters stay, so they never go
// back).
func (s *sampler) totals() [4]uint64 {
	var t [4]uint64
	c := s.counters()
	if c == nil {
		return t
	}
	t[0] = c.Received()
	c.Rules(func(_ string, r *engine.RuleStats) {
		t[1] += r.Fires.Load()
		t[2] += r.Errors()
	})
	for _, n := range c.Drops() {
		t[3] += n
	}
	return t
}

// sample closes a bucket at now: what the counters gained since the last
// sample. The first sample only takes the starting totals.
func (s *sampler) sample(now time.Time) {
	t := s.totals()
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.started {
		s.started, s.last, s.end = true, t, now
		return
	}
	var b [4]uint64
	for i := range t {
		if t[i] >= s.last[i] {
			b[i] = t[i] - s.last[i]
		}
	}
	s.last, s.end = t, now
	s.ring[s.next] = b
	s.next = (s.next + 1) % len(s.ring)
	s.filled = min(s.filled+1, len(s.ring))
	s.version++
}

// rates returns the series, oldest first.
func (s *sampler) rates() Rates {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.ratesLocked()
}

func (s *sampler) ratesLocked() Rates {
	r := Rates{
		StepMS:   s.step.Milliseconds(),
		Buckets:  s.buckets,
		Received: make([]uint64, 0, s.filled),
		Fires:    make([]uint64, 0, s.filled),
		Errors:   make([]uint64, 0, s.filled),
		Drops:    make([]uint64, 0, s.filled),
	}
	if !s.end.IsZero() {
		r.End = s.end.UnixMilli()
	}
	first := (s.next - s.filled + len(s.ring)) % len(s.ring)
	for i := range s.filled {
		b := s.ring[(first+i)%len(s.ring)]
		r.Received = append(r.Received, b[0])
		r.Fires = append(r.Fires, b[1])
		r.Errors = append(r.Errors, b[2])
		r.Drops = append(r.Drops, b[3])
	}
	return r
}

// event returns the rates as an SSE event and their version; the event is
// encoded once per sample, however many pages read it.
func (s *sampler) sseEvent() (version uint64, event []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.event == nil || s.eventV != s.version {
		data, _ := json.Marshal(s.ratesLocked()) // plain numbers: cannot fail
		s.event, s.eventV = sse("rates", data), s.version
	}
	return s.eventV, s.event
}
