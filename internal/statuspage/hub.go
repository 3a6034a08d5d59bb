package statuspage

import (
	"errors"
	"sync"
	"sync/atomic"
	"time"
)

// frame is one tick of the live feed, shared by every page.
type frame struct {
	seq uint64
	gen string // the rule set the rows are of

	// rules is the "rules" event of gen: the rules' names, filters and
	// settings, sent to a page that does not have them yet.
	rules []byte
	// delta is the "tick" event: the rows that changed since frame seq-1
	// of the same gen; nil when there is none (the first frame of a gen).
	delta []byte
	// full is the "full" event, every row; built on first use, by the
	// first page that needs it (a new page, or one that missed a frame).
	full func() []byte

	ratesVersion uint64
	rates        []byte // the "rates" event
}

// errTooMany is returned by subscribe when MaxClients pages are open.
var errTooMany = errors.New("too many open status pages")

// hub runs the broadcaster: while at least one page is subscribed, one
// goroutine makes a frame every interval and offers it to each page's
// channel of one frame. A page that has not taken the previous frame yet
// gets the new one in its place: a slow page skips frames (and catches up
// with a full snapshot), it never holds up the others, and memory stays one
// frame per page. With no page open nothing runs.
type hub struct {
	interval time.Duration
	max      int
	tick     func() *frame // called by the broadcaster goroutine only

	mu      sync.Mutex
	clients map[*client]struct{}
	quit    chan struct{} // closes to stop the running broadcaster; nil when none runs
	done    chan struct{} // closed when the last broadcaster started has exited
	last    *frame        // the latest frame, handed to a new page at once

	ticks     atomic.Uint64 // frames made, for tests and measurements
	skipped   atomic.Uint64 // frames a slow page did not take
	tickNanos atomic.Int64  // time spent making frames
	tickMax   atomic.Int64  // the longest
}

// client is one open page.
type client struct {
	ch chan *frame
}

func newHub(interval time.Duration, max int, tick func() *frame) *hub {
	done := make(chan struct{})
	close(done)
	return &hub{interval: interval, max: max, tick: tick, clients: map[*client]struct{}{}, done: done}
}

// subscribe adds a page, starting the broadcaster if it is the first. The
// page's channel holds the latest frame already, when there is one.
func (h *hub) subscribe() (*client, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(h.clients) >= h.max {
		return nil, errTooMany
	}
	c := &client{ch: make(chan *frame, 1)}
	h.clients[c] = struct{}{}
	if h.last != nil {
		c.ch <- h.last
	}
	if h.quit == nil {
		quit, prev, done := make(chan struct{}), h.done, make(chan struct{})
		h.quit, h.done = quit, done
		go h.run(quit, prev, done)
	}
	return c, nil
}

// unsubscribe removes a page, stopping the broadcaster if it was the last.
func (h *hub) unsubscribe(c *client) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if _, ok := h.clients[c]; !ok {
		return
	}
	delete(h.clients, c)
	if len(h.clients) == 0 && h.quit != nil {
		close(h.quit)
		h.quit, h.last = nil, nil
	}
}

// clientCount returns how many pages are subscribed.
func (h *hub) clientCount() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.clients)
}

// idle returns a channel closed once no broadcaster goroutine runs (as of
// the call: a page that subscribes later starts one).
func (h *hub) idle() <-chan struct{} {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.done
}

// run is the broadcaster. It waits for the previous one to exit, so tick
// never runs twice at once, then ticks until quit closes.
func (h *hub) run(quit, prev <-chan struct{}, done chan<- struct{}) {
	defer close(done)
	<-prev
	t := time.NewTicker(h.interval)
	defer t.Stop()
	for {
		select {
		case <-quit:
			return
		default:
		}
		start := time.Now()
		f := h.tick()
		h.timed(time.Since(start))
		h.publish(f, quit)
		select {
		case <-quit:
			return
		case <-t.C:
		}
	}
}

// publish offers f to every page without blocking.
func (h *hub) publish(f *frame, quit <-chan struct{}) {
	h.ticks.Add(1)
	h.mu.Lock()
	defer h.mu.Unlock()
	select {
	case <-quit:
		return // stopped while ticking: this frame belongs to no one
	default:
	}
	h.last = f
	for c := range h.clients {
		select {
		case c.ch <- f:
			continue
		default:
		}
		// The page has not taken the previous frame: replace it.
		select {
		case <-c.ch:
			h.skipped.Add(1)
		default:
		}
		select {
		case c.ch <- f:
		default:
		}
	}
}

func (h *hub) timed(d time.Duration) {
	h.tickNanos.Add(int64(d))
	for {
		m := h.tickMax.Load()
		if int64(d) <= m || h.tickMax.CompareAndSwap(m, int64(d)) {
			return
		}
	}
}
