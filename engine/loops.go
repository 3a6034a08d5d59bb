package engine

import (
	"hash/maphash"
	"sync"
	"time"
)

// DefaultMaxHops is how long a chain of the engine's own publishes may get
// (docs/reliability.md, "Loops"): an outside message is hop 0, a message the engine publishes
// while handling a hop-h message is hop h+1.
const DefaultMaxHops = 8

// echoWindow is how long a publish of the engine is remembered, so that
// the same topic and payload arriving within it is recognised as the
// engine's own message coming back.
const echoWindow = 10 * time.Second

// maxEchoes bounds how many publishes are remembered at once.
const maxEchoes = 100000

// loopGuard remembers the engine's publishes that could come back to it
// (their topic matches a filter of the set) with their hop.
type loopGuard struct {
	mu    sync.Mutex
	seed  maphash.Seed
	byKey map[uint64][]echo // per topic+payload, oldest first
	order []queued          // every echo in the order recorded, for expiry
}

type echo struct {
	hop     int
	expires time.Time
}

type queued struct {
	key     uint64
	expires time.Time
}

func newLoopGuard() *loopGuard {
	return &loopGuard{seed: maphash.MakeSeed(), byKey: map[uint64][]echo{}}
}

func (g *loopGuard) key(broker, topic string, payload []byte) uint64 {
	var h maphash.Hash
	h.SetSeed(g.seed)
	h.WriteString(broker)
	h.WriteByte(0)
	h.WriteString(topic)
	h.WriteByte(0)
	h.Write(payload)
	return h.Sum64()
}

// record remembers a publish the engine is about to make on a broker, at
// its hop.
func (g *loopGuard) record(broker, topic string, payload []byte, hop int, now time.Time) {
	k := g.key(broker, topic, payload)
	exp := now.Add(echoWindow)
	g.mu.Lock()
	defer g.mu.Unlock()
	g.expire(now)
	if len(g.order) >= maxEchoes {
		g.drop(g.order[0])
		g.order = g.order[1:]
	}
	g.byKey[k] = append(g.byKey[k], echo{hop: hop, expires: exp})
	g.order = append(g.order, queued{key: k, expires: exp})
}

// hop returns the hop of a received message: that of the oldest matching
// publish still remembered (which it then forgets), or 0 for a message from
// outside the engine.
func (g *loopGuard) hop(broker, topic string, payload []byte, now time.Time) int {
	k := g.key(broker, topic, payload)
	g.mu.Lock()
	defer g.mu.Unlock()
	g.expire(now)
	es := g.byKey[k]
	if len(es) == 0 {
		return 0
	}
	h := es[0].hop
	if len(es) == 1 {
		delete(g.byKey, k)
	} else {
		g.byKey[k] = es[1:]
	}
	return h
}

// expire forgets publishes older than the window.
func (g *loopGuard) expire(now time.Time) {
	n := 0
	for n < len(g.order) && !g.order[n].expires.After(now) {
		g.drop(g.order[n])
		n++
	}
	if n > 0 {
		g.order = g.order[n:]
	}
}

// drop forgets the echo q refers to, if it was not consumed already.
func (g *loopGuard) drop(q queued) {
	es := g.byKey[q.key]
	if len(es) > 0 && !es[0].expires.After(q.expires) {
		es = es[1:]
	}
	if len(es) == 0 {
		delete(g.byKey, q.key)
	} else {
		g.byKey[q.key] = es
	}
}
