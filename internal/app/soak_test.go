package app

import (
	"flag"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mqtt-rules/mqtt-rules/engine"
	"github.com/mqtt-rules/mqtt-rules/internal/testbroker"
)

var soak = flag.Duration("soak", 0, "run TestSoak for this long, e.g. -args -soak=5m (0 skips it)")

// TestSoak runs the engine on mosquitto for -soak with mixed traffic —
// good JSON, text, binary, oversized, deeply nested, a loop — and a flaky
// webhook (errors, 429s, slow answers, connection resets), then checks that
// goroutines and heap did not grow beyond a bound and that every message is
// accounted for: processed, skipped with a reason, or dropped with a
// counter.
//
//	go test -run TestSoak -v ./internal/app/ -args -soak=5m
func TestSoak(t *testing.T) {
	if *soak == 0 {
		t.Skip("runs only with -soak DURATION")
	}
	url := testbroker.Mosquitto(t, testbroker.WithConfig("max_queued_messages 0")).URL()
	var hooks, hookOK atomic.Int64
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hooks.Add(1)
		switch n := rand.IntN(10); {
		case n == 0:
			w.WriteHeader(http.StatusInternalServerError)
		case n == 1:
			w.Header().Set("Retry-After", "0")
			w.WriteHeader(http.StatusTooManyRequests)
		case n == 2:
			select { // slower than the action's timeout
			case <-time.After(300 * time.Millisecond):
			case <-r.Context().Done():
			}
		case n == 3:
			if c, _, err := w.(http.Hijacker).Hijack(); err == nil {
				c.(*net.TCPConn).SetLinger(0)
				c.Close()
			}
		default:
			hookOK.Add(1)
			w.WriteHeader(http.StatusNoContent)
		}
	}))
	t.Cleanup(hook.Close)
	dir := writeRules(t, fmt.Sprintf(`
rules:
  - name: relay
    topic: in/{kind}/{id}
    actions: [{publish: {topic: "out/{{ kind }}", qos: 1}}]
  - name: threshold
    topic: in/json/+
    when: payload.value > 50
    for: 50ms
    on_clear: [{log: {message: "{{ key }} cleared", level: debug}}]
    actions: [{webhook: {url: "%s/hook", timeout: 100ms, retries: 2}}]
  - name: silent
    topic: in/json/+
    key: "{{ wildcards[0] }}"
    absent: 200ms
    actions: [{log: {message: "{{ key }} silent", level: debug}}]
  - name: loop
    topic: loop/#
    actions: [{publish: {topic: loop/again}}]
`, hook.URL))
	a := start(t, Config{Rules: []string{dir}, Broker: url, MaxPayload: 4096, Logger: quietLogger()})
	sub := testbroker.Subscribe(t, url, "out/#")
	pub := testbroker.NewPublisher(t, url)

	kinds := []struct {
		kind    string
		payload func(i int) []byte
	}{
		{"json", func(i int) []byte { return fmt.Appendf(nil, `{"value": %d, "seq": %d}`, i%100, i) }},
		{"text", func(i int) []byte { return []byte("ON") }},
		{"binary", func(i int) []byte { return []byte{0, 0xff, byte(i)} }},
		{"empty", func(i int) []byte { return nil }},
		{"nested", func(i int) []byte { return []byte(strings.Repeat("[", 500) + strings.Repeat("]", 500)) }},
		{"huge", func(i int) []byte { return []byte(`{"value": 1e400}`) }},
		{"oversized", func(i int) []byte { return make([]byte, 5000) }},
	}
	sample := func() (int, uint64) {
		runtime.GC()
		var m runtime.MemStats
		runtime.ReadMemStats(&m)
		return runtime.NumGoroutine(), m.HeapAlloc
	}
	var sent, sentOversized, loops int
	var received atomic.Int64
	go func() {
		for {
			if _, ok := sub.TryNext(time.Second); ok {
				received.Add(1)
			} else if t.Context().Err() != nil {
				return
			}
		}
	}()
	deadline := time.Now().Add(*soak)
	warm := time.Now().Add(min(*soak/5, 30*time.Second))
	var g0 int
	var h0 uint64
	tick := time.NewTicker(time.Millisecond) // ~1,000 msg/s
	defer tick.Stop()
	for i := 0; time.Now().Before(deadline); i++ {
		<-tick.C
		if g0 == 0 && time.Now().After(warm) {
			g0, h0 = sample()
		}
		k := kinds[i%len(kinds)]
		pub.Publish(fmt.Sprintf("in/%s/%d", k.kind, i%50), k.payload(i), 1, false)
		sent++
		if k.kind == "oversized" {
			sentOversized++
		}
		if i%1000 == 0 {
			pub.Publish("loop/start", fmt.Appendf(nil, "%d", i), 1, false)
			loops++
		}
	}
	c := a.Counters()
	want := uint64(sent + loops*(1+engine.DefaultMaxHops))
	waitFor(t, 30*time.Second, "every message to reach the engine", func() bool { return c.Received() == want })
	waitFor(t, 30*time.Second, "every relayed message to come out", func() bool {
		return received.Load() == int64(sent-sentOversized)
	})
	g1, h1 := sample()
	t.Logf("sent %d (+%d loop chains), engine received %d, relayed %d, drops %v, webhook calls %d (%d ok), loop cutoffs %d",
		sent, loops, c.Received(), received.Load(), c.Drops(), hooks.Load(), hookOK.Load(), c.Rule("loop").LoopCutoffs.Load())
	t.Logf("goroutines %d -> %d, heap %.1f MiB -> %.1f MiB", g0, g1, float64(h0)/(1<<20), float64(h1)/(1<<20))
	if d := c.Drops()[engine.DropTooLarge]; d != uint64(sentOversized) {
		t.Errorf("too_large drops = %d, want %d", d, sentOversized)
	}
	if n := c.Rule("loop").LoopCutoffs.Load(); n != uint64(loops) {
		t.Errorf("loop cutoffs = %d, want %d", n, loops)
	}
	if g1 > g0+20 {
		t.Errorf("goroutines grew from %d to %d", g0, g1)
	}
	if h1 > h0+32<<20 {
		t.Errorf("heap grew from %d to %d bytes", h0, h1)
	}
	relay := c.Rule("relay")
	if relay.Fires.Load() != uint64(sent-sentOversized) {
		t.Errorf("relay fired %d, want %d", relay.Fires.Load(), sent-sentOversized)
	}
}

// quietLogger keeps only errors: a soak run's expected warnings (failing
// webhooks, cut loops) would drown the test output.
func quietLogger() *slog.Logger {
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError}))
}
