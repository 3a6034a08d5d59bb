package app

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mqtt-rules/mqtt-rules/internal/testbroker"
)

// relay is a rule file whose rule republishes in/<name> to out/<name>
// with a payload saying which version of the file it comes from.
func relay(name, version string) string {
	return fmt.Sprintf("rules:\n  - name: %s\n    topic: in/%s\n    actions: [{publish: {topic: out/%s, payload: %q, qos: 1}}]\n", name, name, name, version)
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

// saveLikeAnEditor writes content next to path and renames it over path,
// as vim, VS Code and sed -i do.
func saveLikeAnEditor(t *testing.T, path, content string) {
	t.Helper()
	tmp := filepath.Join(filepath.Dir(path), "."+filepath.Base(path)+".swp")
	writeFile(t, tmp, content)
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

// reloadHarness is an app watching a rules directory on mosquitto, with a
// subscriber on out/# and a publisher.
type reloadHarness struct {
	t   *testing.T
	a   *App
	dir string
	url string
	sub *testbroker.Subscriber
	pub *testbroker.Publisher
}

func newReloadHarness(t *testing.T, files map[string]string) *reloadHarness {
	url := testbroker.Mosquitto(t).URL()
	dir := t.TempDir()
	for name, content := range files {
		writeFile(t, filepath.Join(dir, name), content)
	}
	h := &reloadHarness{t: t, dir: dir, url: url}
	h.a = start(t, Config{Rules: []string{dir}, Broker: url})
	h.sub = testbroker.Subscribe(t, url, "out/#")
	h.pub = testbroker.NewPublisher(t, url)
	return h
}

// answers publishes in/<name> until out/<name> answers with version, or
// fails after a deadline. Messages with another version are skipped.
func (h *reloadHarness) answers(name, version string) {
	h.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		h.pub.Publish("in/"+name, []byte("ping"), 1, false)
		if m, ok := h.sub.TryNext(200 * time.Millisecond); ok && m.Topic == "out/"+name && string(m.Payload) == version {
			return
		}
	}
	h.t.Fatalf("in/%s never answered %q", name, version)
}

// silent checks that in/<name> no longer gets an answer.
func (h *reloadHarness) silent(name string) {
	h.t.Helper()
	for { // drain answers to earlier pings
		if _, ok := h.sub.TryNext(100 * time.Millisecond); !ok {
			break
		}
	}
	h.pub.Publish("in/"+name, []byte("ping"), 1, false)
	if m, ok := h.sub.TryNext(500 * time.Millisecond); ok {
		h.t.Errorf("in/%s still answered: %s", name, m)
	}
}

func (h *reloadHarness) reloads() (ok, failed uint64) { return h.a.Counters().Reloads() }

func TestReloadNewFile(t *testing.T) {
	h := newReloadHarness(t, map[string]string{"a.yaml": relay("a", "v1")})
	h.answers("a", "v1")
	writeFile(t, filepath.Join(h.dir, "sub", "b.yaml"), relay("b", "v1"))
	h.answers("b", "v1")
	h.answers("a", "v1")
}

func TestReloadEditorSave(t *testing.T) {
	h := newReloadHarness(t, map[string]string{"a.yaml": relay("a", "v1")})
	h.answers("a", "v1")
	saveLikeAnEditor(t, filepath.Join(h.dir, "a.yaml"), relay("a", "v2"))
	h.answers("a", "v2")
}

func TestReloadInvalidKeepsOldRulesThenFixApplies(t *testing.T) {
	h := newReloadHarness(t, map[string]string{"a.yaml": relay("a", "v1")})
	h.answers("a", "v1")
	bad := relay("a", "v2") + "    when: paylod == 1\n"
	writeFile(t, filepath.Join(h.dir, "a.yaml"), bad)
	waitFor(t, 10*time.Second, "the bad reload to be counted", func() bool { _, f := h.reloads(); return f == 1 })
	st := h.a.LastReload()
	if st.Err == nil || !strings.Contains(st.Err.Error(), `a.yaml:5:11: rule "a": when: unknown name "paylod"`) {
		t.Errorf("last reload error = %v, want the location of the typo", st.Err)
	}
	h.answers("a", "v1") // the old set keeps running
	writeFile(t, filepath.Join(h.dir, "a.yaml"), relay("a", "v3"))
	h.answers("a", "v3")
}

// TestReloadConfigMapSymlinkSwap updates a Kubernetes ConfigMap mount the
// way the kubelet does: new timestamped directory, ..data_tmp symlink to
// it renamed over ..data, old directory removed.
func TestReloadConfigMapSymlinkSwap(t *testing.T) {
	url := testbroker.Mosquitto(t).URL()
	mount := t.TempDir()
	gen := func(n int, content string) {
		ts := fmt.Sprintf("..2026_11_25_12_00_0%d.000000%d", n, n)
		writeFile(t, filepath.Join(mount, ts, "a.yaml"), content)
		if err := os.Symlink(ts, filepath.Join(mount, "..data_tmp")); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(filepath.Join(mount, "..data_tmp"), filepath.Join(mount, "..data")); err != nil {
			t.Fatal(err)
		}
		if n > 1 {
			os.RemoveAll(filepath.Join(mount, fmt.Sprintf("..2026_11_25_12_00_0%d.000000%d", n-1, n-1)))
		}
	}
	gen(1, relay("a", "v1"))
	if err := os.Symlink("..data/a.yaml", filepath.Join(mount, "a.yaml")); err != nil {
		t.Fatal(err)
	}
	h := &reloadHarness{t: t, dir: mount, url: url}
	h.a = start(t, Config{Rules: []string{mount}, Broker: url})
	h.sub = testbroker.Subscribe(t, url, "out/#")
	h.pub = testbroker.NewPublisher(t, url)
	h.answers("a", "v1")
	gen(2, relay("a", "v2"))
	h.answers("a", "v2")
	if n := len(h.a.Rules().Rules); n != 1 {
		t.Errorf("%d rules loaded, want 1 (the ..data folders must not load twice)", n)
	}
}

func TestReloadRemovedFileUnsubscribes(t *testing.T) {
	h := newReloadHarness(t, map[string]string{"a.yaml": relay("a", "v1"), "b.yaml": relay("b", "v1")})
	h.answers("b", "v1")
	if err := os.Remove(filepath.Join(h.dir, "b.yaml")); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "b's filter to be unsubscribed", func() bool {
		return !slices.Contains(h.a.client.Filters(), "in/b")
	})
	h.silent("b")
	h.answers("a", "v1")
}

// TestReloadLosesNothing sends 1,000 msg/s with sequence numbers through a
// rule that does not change while the rule set is reloaded 20 times (with
// other rules and filters coming and going): every number comes out once.
func TestReloadLosesNothing(t *testing.T) {
	if testing.Short() {
		t.Skip("takes a few seconds")
	}
	url := testbroker.Mosquitto(t).URL()
	dir := t.TempDir()
	steady := "rules:\n  - name: steady\n    topic: seq/+\n    actions: [{publish: {topic: out/seq, qos: 1}}]\n"
	writeFile(t, filepath.Join(dir, "steady.yaml"), steady)
	a := start(t, Config{Rules: []string{dir}, Broker: url, NoWatch: true})
	sub := testbroker.Subscribe(t, url, "out/seq")
	pub := testbroker.NewPublisher(t, url)

	const total = 3000 // 3 s at 1,000 msg/s
	var wg sync.WaitGroup
	wg.Go(func() {
		tick := time.NewTicker(time.Millisecond)
		defer tick.Stop()
		for i := range total {
			<-tick.C
			pub.Publish(fmt.Sprintf("seq/%d", i%7), []byte(strconv.Itoa(i)), 1, false)
		}
	})
	wg.Go(func() {
		pace := time.NewTicker(100 * time.Millisecond) // spreads the reloads over the run
		defer pace.Stop()
		for i := range 20 {
			<-pace.C
			// Alternate extra rules whose filters overlap the steady one's, so
			// subscriptions are added and removed around it.
			extra := fmt.Sprintf("rules:\n  - name: extra-%d\n    topic: %s\n    actions: [{log: x}]\n", i, []string{"seq/#", "other/+", "seq/3"}[i%3])
			writeFile(t, filepath.Join(dir, "extra.yaml"), extra)
			if err := a.Reload(t.Context()); err != nil {
				t.Errorf("reload %d: %v", i, err)
			}
		}
	})
	seen := make([]int, total)
	for range total {
		m := sub.Next(t, 10*time.Second)
		n, err := strconv.Atoi(string(m.Payload))
		if err != nil || n < 0 || n >= total {
			t.Fatalf("unexpected output %s", m)
		}
		seen[n]++
	}
	wg.Wait()
	sub.ExpectNone(t, 300*time.Millisecond)
	for i, c := range seen {
		if c != 1 {
			t.Errorf("sequence %d came out %d times", i, c)
		}
	}
	if ok, failed := a.Counters().Reloads(); ok != 20 || failed != 0 {
		t.Errorf("reloads ok=%d failed=%d, want 20 and 0", ok, failed)
	}
}
