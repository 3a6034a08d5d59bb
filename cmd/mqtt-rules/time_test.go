package main

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/mqtt-rules/mqtt-rules/internal/testbroker"
)

// TestDelaySurvivesKill9: a sequence waiting in a delay step resumes
// after the engine is killed with SIGKILL and restarted with its --state
// file, and runs once, no earlier than its delay.
func TestDelaySurvivesKill9(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	bin := buildBinary(t)
	url := testbroker.Mosquitto(t).URL()
	dir := t.TempDir()
	rules := `rules:
  - name: light
    topic: motion/{room}
    key: "{{ room }}"
    actions:
      - publish: {topic: "light/{{ room }}", payload: "on"}
      - delay: 4s
      - publish: {topic: "light/{{ room }}", payload: "off"}
`
	if err := os.WriteFile(filepath.Join(dir, "r.yaml"), []byte(rules), 0o644); err != nil {
		t.Fatal(err)
	}
	state := filepath.Join(t.TempDir(), "state.db")
	args := []string{"run", "--rules", dir, "--broker", url, "--state", state, "--log-level", "debug", "--client-id", "delay-kill9", "--http", "off"}
	sub := testbroker.Subscribe(t, url, "light/#")

	first := startProc(t, bin, args...)
	first.waitLog(t, "msg=subscribed", 10*time.Second)
	sent := time.Now()
	testbroker.Publish(t, url, "motion/hall", []byte("1"), 1, false)
	sub.Expect(t, 5*time.Second, "light/hall", "on")
	first.waitLog(t, `msg="state saved" keys=1`, 5*time.Second)
	if err := first.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	first.cmd.Wait()
	if time.Since(sent) >= 4*time.Second {
		t.Skip("the machine is too slow: the delay ended before the kill")
	}

	second := startProc(t, bin, args...)
	second.waitLog(t, `msg="state restored"`, 10*time.Second)
	sub.Expect(t, 10*time.Second, "light/hall", "off")
	if d := time.Since(sent); d < 4*time.Second {
		t.Errorf("off %v after the motion, before the 4s delay", d)
	}
	sub.ExpectNone(t, 500*time.Millisecond)
}

// TestTimeOnMosquitto: a schedule (@every 1s) and a 300 ms delay on a
// real broker and the real clock.
func TestTimeOnMosquitto(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	bin := buildBinary(t)
	url := testbroker.Mosquitto(t).URL()
	dir := t.TempDir()
	rules := `rules:
  - name: tick
    schedule: "@every 1s"
    actions: [{publish: {topic: tick, payload: "{{ trigger }}"}}]
  - name: blink
    topic: button
    actions:
      - publish: {topic: lamp, payload: "on"}
      - delay: 300ms
      - publish: {topic: lamp, payload: "off"}
`
	if err := os.WriteFile(filepath.Join(dir, "r.yaml"), []byte(rules), 0o644); err != nil {
		t.Fatal(err)
	}
	ticks := testbroker.Subscribe(t, url, "tick")
	lamp := testbroker.Subscribe(t, url, "lamp")
	p := startProc(t, bin, "run", "--rules", dir, "--broker", url, "--http", "off", "--client-id", "time-e2e")
	p.waitLog(t, "msg=subscribed", 10*time.Second)

	first := time.Now()
	ticks.Expect(t, 5*time.Second, "tick", "schedule")
	ticks.Expect(t, 5*time.Second, "tick", "schedule")
	ticks.Expect(t, 5*time.Second, "tick", "schedule")
	if d := time.Since(first); d < 1500*time.Millisecond {
		t.Errorf("three ticks within %v: not 1s apart", d)
	}

	testbroker.Publish(t, url, "button", []byte("1"), 1, false)
	lamp.Expect(t, 5*time.Second, "lamp", "on")
	on := time.Now()
	lamp.Expect(t, 5*time.Second, "lamp", "off")
	if d := time.Since(on); d < 250*time.Millisecond {
		t.Errorf("off %v after on, want about 300ms", d)
	}
}
