package main

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/mqtt-rules/mqtt-rules/internal/testbroker"
)

// TestRememberedSurvivesKill9: a remembered topic's NON-retained value
// (which the broker does not keep) is still known after the engine is
// killed with SIGKILL and restarted with the same --state file.
func TestRememberedSurvivesKill9(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	bin := buildBinary(t)
	url := testbroker.Mosquitto(t).URL()
	dir := t.TempDir()
	rules := `rules:
  - name: night-light
    topic: motion
    when: state("home/mode")?.payload == "night"
    actions: [{publish: {topic: light, payload: "on ({{ state('home/mode').raw }})"}}]
`
	if err := os.WriteFile(filepath.Join(dir, "r.yaml"), []byte(rules), 0o644); err != nil {
		t.Fatal(err)
	}
	state := filepath.Join(t.TempDir(), "state.db")
	args := []string{"run", "--rules", dir, "--broker", url, "--state", state, "--log-level", "debug", "--client-id", "world-kill9", "--http", "off"}
	sub := testbroker.Subscribe(t, url, "light")

	first := startProc(t, bin, args...)
	first.waitLog(t, "msg=subscribed", 10*time.Second)
	testbroker.Publish(t, url, "home/mode", []byte("night"), 1, false) // not retained
	first.waitLog(t, "msg=\"remembered topics saved\" topics=1", 5*time.Second)
	if err := first.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	first.cmd.Wait()

	second := startProc(t, bin, args...)
	second.waitLog(t, "msg=subscribed", 10*time.Second)
	testbroker.Publish(t, url, "motion", []byte("1"), 1, false)
	sub.Expect(t, 10*time.Second, "light", "on (night)")
}

// TestRetainedSeenAtStart: a retained value published before the engine
// starts is in the store by the first evaluation (the engine subscribes
// to the remembered topic and the broker delivers it).
func TestRetainedSeenAtStart(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	bin := buildBinary(t)
	url := testbroker.Mosquitto(t).URL()
	dir := t.TempDir()
	rules := `remember: ["house/+/mode"]
rules:
  - name: r
    topic: motion/{floor}
    when: state("house/" + floor + "/mode")?.payload == "night"
    actions: [{publish: {topic: "light/{{ floor }}", payload: night}}]
`
	if err := os.WriteFile(filepath.Join(dir, "r.yaml"), []byte(rules), 0o644); err != nil {
		t.Fatal(err)
	}
	testbroker.Publish(t, url, "house/up/mode", []byte("night"), 1, true)
	sub := testbroker.Subscribe(t, url, "light/#")
	p := startProc(t, bin, "run", "--rules", dir, "--broker", url, "--http", "off", "--client-id", "world-retained")
	p.waitLog(t, "msg=subscribed", 10*time.Second)
	testbroker.Publish(t, url, "motion/up", []byte("1"), 1, false)
	sub.Expect(t, 10*time.Second, "light/up", "night")
}
