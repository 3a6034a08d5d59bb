package statuspage_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/mqtt-rules/mqtt-rules/internal/app"
	"github.com/mqtt-rules/mqtt-rules/internal/httpapi"
	"github.com/mqtt-rules/mqtt-rules/internal/statuspage"
	"github.com/mqtt-rules/mqtt-rules/internal/testbroker"
)

// LoadEnv=1 runs TestLoad.
const LoadEnv = "MQTT_RULES_LOAD"

// loadRules writes n rules, each on its own sensor (sensors/I/{kind});
// every fifth is stateful (a cooldown or a for).
func loadRules(n int) string {
	var b strings.Builder
	b.WriteString("rules:\n")
	for i := range n {
		fmt.Fprintf(&b, "  - name: rule-%04d\n    description: Sensor %d above its threshold\n    topic: sensors/%d/{kind}\n    when: payload.value > %d\n", i, i, i, 90+i%10)
		switch i % 10 {
		case 0:
			b.WriteString("    cooldown: 10s\n")
		case 5:
			b.WriteString("    for: 2s\n")
		}
		b.WriteString("    actions:\n      - log: {message: \"{{ topic }} at {{ payload.value }}\", level: debug}\n")
	}
	return b.String()
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// sseCounter reads an event stream and counts bytes per event.
type sseCounter struct {
	mu     sync.Mutex
	bytes  map[string]int
	count  map[string]int
	maxLen map[string]int
}

func countStream(t *testing.T, ctx context.Context, url string) *sseCounter {
	c := &sseCounter{bytes: map[string]int{}, count: map[string]int{}, maxLen: map[string]int{}}
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("GET %s: %v %v", url, resp, err)
	}
	go func() {
		defer resp.Body.Close()
		r := bufio.NewReaderSize(resp.Body, 64<<10)
		name, size := "", 0
		for {
			line, err := r.ReadString('\n')
			if err != nil {
				return
			}
			size += len(line)
			switch {
			case strings.HasPrefix(line, "event: "):
				name = strings.TrimSpace(strings.TrimPrefix(line, "event: "))
			case line == "\n":
				if name != "" {
					c.mu.Lock()
					c.bytes[name] += size
					c.count[name]++
					c.maxLen[name] = max(c.maxLen[name], size)
					c.mu.Unlock()
				}
				name, size = "", 0
			}
		}
	}()
	return c
}

func (c *sseCounter) snapshot() (bytes, count, maxLen map[string]int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	cp := func(m map[string]int) map[string]int {
		out := map[string]int{}
		for k, v := range m {
			out[k] = v
		}
		return out
	}
	return cp(c.bytes), cp(c.count), cp(c.maxLen)
}

// TestLoad measures the status page with 1,000 rules loaded and 10,000
// messages/s flowing through a real engine on mosquitto: the server's cost
// of a frame, the event sizes, the engine's CPU with and without pages
// open, and the page's render times in chromium. It prints the figures;
// it fails only when the page cannot keep up. Run it with
// MQTT_RULES_LOAD=1 (about a minute).
func TestLoad(t *testing.T) {
	if os.Getenv(LoadEnv) != "1" {
		t.Skip("set " + LoadEnv + "=1 to measure the page with 1,000 rules and 10,000 msg/s")
	}
	chromiumPath(t)
	const (
		nRules = 1000
		rate   = 10000 // messages/s
		kinds  = 5     // keys per rule
		window = 20 * time.Second
	)
	broker := testbroker.Mosquitto(t, testbroker.WithConfig("max_queued_messages 0\nmax_inflight_messages 1000"))
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "many.yaml"), []byte(loadRules(nRules)), 0o644); err != nil {
		t.Fatal(err)
	}
	a, err := app.Start(app.Config{Rules: []string{dir}, Broker: broker.URL(), ClientID: "statuspage-load", HTTP: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		a.Close(ctx)
	})
	for deadline := time.Now().Add(10 * time.Second); !a.Ready(); time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("not ready")
		}
	}
	// A page of our own beside the app's, to read its Stats.
	hctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	h := httpapi.NewHandler(a, httpapi.Options{})
	page := statuspage.New(a, statuspage.Options{Version: "load"})
	page.Register(hctx, h)
	srv, err := httpapi.Start(hctx, "127.0.0.1:0", h, nil)
	if err != nil {
		t.Fatal(err)
	}
	base := "http://" + srv.Addr()

	// The load: rate messages/s over nRules*kinds topics, QoS 0, from a
	// bare MQTT connection writing in batches (a few µs per message, so
	// the publisher takes little of the CPU the engine and the browser
	// share).
	pub := dialRaw(t, broker.Addr())
	var sent atomic.Int64
	stop := make(chan struct{})
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		tick := time.NewTicker(time.Millisecond)
		defer tick.Stop()
		start := time.Now()
		var n int64
		x := uint64(1)
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
			}
			due := int64(time.Since(start).Seconds() * rate)
			for ; n < due; n++ {
				i := int(n % (nRules * kinds))
				x = x*6364136223846793005 + 1442695040888963407
				pub.publish(fmt.Sprintf("sensors/%d/k%d", i%nRules, i/nRules), fmt.Appendf(nil, `{"value": %d}`, (x>>33)%100))
			}
			if err := pub.w.Flush(); err != nil {
				t.Errorf("publisher: %v\n%s", err, broker.Log())
				return
			}
			sent.Store(n)
		}
	}()
	t.Cleanup(func() {
		select {
		case <-stop:
		default:
			close(stop)
		}
		<-stopped
		pub.c.Close()
	})

	measure := func(d time.Duration) (cpu time.Duration, msgs uint64) {
		c0, r0, s0 := cpuTime(), a.Counters().Received(), sent.Load()
		time.Sleep(d) // a measurement window
		t.Logf("(%.0f msg/s sent)", float64(sent.Load()-s0)/d.Seconds())
		return cpuTime() - c0, a.Counters().Received() - r0
	}
	time.Sleep(10 * time.Second) // warm up
	idleCPU, idleMsgs := measure(window)
	t.Logf("no page open: %.0f msg/s received, process CPU %.1f %% (engine, publisher, test)", float64(idleMsgs)/window.Seconds(), 100*idleCPU.Seconds()/window.Seconds())

	// One page in chromium and one counting client.
	ctx := newBrowser(t, 1280, 900)
	counter := countStream(t, hctx, base+"/api/live")
	s0 := page.Stats()
	do(t, ctx, chromedp.Navigate(base+"/"))
	waitPage(t, ctx, 30*time.Second, "1,000 rules on the page", `document.querySelectorAll('#rules-body tr').length === 1000 && window.__statusPerf.frames > 0`, `document.title`)
	eval[bool](t, ctx, `(() => { window.__lag = {max: 0, n: 0, sum: 0}; let last = performance.now(); setInterval(() => { const now = performance.now(); const lag = Math.max(0, now - last - 100); last = now; __lag.max = Math.max(__lag.max, lag); __lag.sum += lag; __lag.n++; }, 100); return true; })()`)
	pageCPU, pageMsgs := measure(window)
	s1 := page.Stats()
	type perfT struct {
		RulesRenderMs, FirstFullAt, TotalFrameMs, LastFrameMs, MaxFrameMs, LongestTaskMs float64
		Frames, Bytes, LongTasks                                                         int
	}
	p := eval[perfT](t, ctx, `({RulesRenderMs: __statusPerf.rulesRenderMs, FirstFullAt: __statusPerf.firstFullAt, TotalFrameMs: __statusPerf.totalFrameMs, LastFrameMs: __statusPerf.lastFrameMs, MaxFrameMs: __statusPerf.maxFrameMs, LongestTaskMs: __statusPerf.longestTaskMs, Frames: __statusPerf.frames, Bytes: __statusPerf.bytes, LongTasks: __statusPerf.longTasks})`)
	lag := eval[map[string]float64](t, ctx, `__lag`)
	heap := eval[float64](t, ctx, `performance.memory ? performance.memory.usedJSHeapSize : 0`)
	do(t, ctx, chromedp.SendKeys(`#search`, "rule-09"))
	waitPage(t, ctx, 5*time.Second, "the filter", `[...document.querySelectorAll('#rules-body tr')].filter(r => !r.hidden).length === 100`, `document.getElementById('rule-count').textContent`)
	filterMs := eval[float64](t, ctx, `__statusPerf.filterMs`)
	bytes, count, maxLen := counter.snapshot()

	ticks := s1.Ticks - s0.Ticks
	t.Logf("one page open: %.0f msg/s received, process CPU %.1f %% (%+.1f points)", float64(pageMsgs)/window.Seconds(), 100*pageCPU.Seconds()/window.Seconds(), 100*(pageCPU-idleCPU).Seconds()/window.Seconds())
	t.Logf("server: %d frames, %v mean / %v max to make one (1,000 rules: counters, keys, encode), %d skipped", ticks, s1.TickMean, s1.TickMax, s1.Skipped)
	t.Logf("events: rules %d B once; full %d B (max %d); tick %.0f B mean (%d ticks, max %d B); rates %.0f B every 5 s",
		bytes["rules"], bytes["full"]/max(1, count["full"]), maxLen["full"], float64(bytes["tick"])/float64(max(1, count["tick"])), count["tick"], maxLen["tick"], float64(bytes["rates"])/float64(max(1, count["rates"])))
	t.Logf("browser: table of 1,000 rules built in %.1f ms; first snapshot on screen %.0f ms after navigation; %d frames applied in %.2f ms mean, %.1f ms max; event loop lag max %.0f ms (mean %.1f ms); long tasks %d (longest %.0f ms); search over 1,000 rows %.1f ms; JS heap %.1f MB",
		p.RulesRenderMs, p.FirstFullAt, p.Frames, p.TotalFrameMs/float64(max(1, p.Frames)), p.MaxFrameMs, lag["max"], lag["sum"]/max(1, lag["n"]), p.LongTasks, p.LongestTaskMs, filterMs, heap/1e6)

	// Many pages: the cost per page.
	var ms0, ms1 runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&ms0)
	pctx, pcancel := context.WithCancel(hctx)
	var counters []*sseCounter
	for range statuspage.DefaultMaxClients - 2 {
		counters = append(counters, countStream(t, pctx, base+"/api/live"))
	}
	manyCPU, manyMsgs := measure(window)
	runtime.GC()
	runtime.ReadMemStats(&ms1)
	s2 := page.Stats()
	t.Logf("%d pages open: %.0f msg/s received, process CPU %.1f %% (%+.1f points over none), heap %+.1f MB, %d frames skipped",
		s2.Pages, float64(manyMsgs)/window.Seconds(), 100*manyCPU.Seconds()/window.Seconds(), 100*(manyCPU-idleCPU).Seconds()/window.Seconds(), float64(int64(ms1.HeapInuse)-int64(ms0.HeapInuse))/1e6, s2.Skipped)
	pcancel()

	if float64(pageMsgs)/window.Seconds() < 0.9*rate {
		t.Errorf("the engine received %.0f msg/s with a page open, want about %d", float64(pageMsgs)/window.Seconds(), rate)
	}
	if p.MaxFrameMs > 100 {
		t.Errorf("a frame took %.0f ms to apply in the browser", p.MaxFrameMs)
	}
}

// rawPub is a bare MQTT 3.1.1 connection that publishes at QoS 0.
type rawPub struct {
	c net.Conn
	w *bufio.Writer
}

func dialRaw(t *testing.T, addr string) *rawPub {
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	id := "statuspage-load-generator"
	// CONNECT: protocol MQTT 4, clean session, no keep-alive.
	vh := append([]byte{0, 4, 'M', 'Q', 'T', 'T', 4, 0x02, 0, 0, 0, byte(len(id))}, id...)
	pkt := append([]byte{0x10, byte(len(vh))}, vh...)
	if _, err := c.Write(pkt); err != nil {
		t.Fatal(err)
	}
	ack := make([]byte, 4)
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.ReadFull(c, ack); err != nil || ack[0] != 0x20 || ack[3] != 0 {
		t.Fatalf("CONNACK %x: %v", ack, err)
	}
	_ = c.SetReadDeadline(time.Time{})
	go func() { _, _ = io.Copy(io.Discard, c) }() // nothing comes at QoS 0
	return &rawPub{c: c, w: bufio.NewWriterSize(c, 64<<10)}
}

func (p *rawPub) publish(topic string, payload []byte) {
	n := 2 + len(topic) + len(payload)
	p.w.WriteByte(0x30)
	for {
		b := byte(n % 128)
		n /= 128
		if n > 0 {
			b |= 0x80
		}
		p.w.WriteByte(b)
		if n == 0 {
			break
		}
	}
	p.w.WriteByte(byte(len(topic) >> 8))
	p.w.WriteByte(byte(len(topic)))
	p.w.WriteString(topic)
	p.w.Write(payload)
}
