package main

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mqtt-rules/mqtt-rules/internal/testbroker"
)

func runCLI(t *testing.T, ctx context.Context, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	code = cli(ctx, args, &out, &errb)
	return code, out.String(), errb.String()
}

func TestValidateExamples(t *testing.T) {
	code, out, errs := runCLI(t, context.Background(), "validate", "--latitude", "52.52", "--longitude", "13.40", "../../examples")
	if code != exitOK {
		t.Fatalf("validate examples: exit %d\n%s", code, errs)
	}
	if !strings.HasPrefix(out, "ok: ") {
		t.Errorf("stdout = %q", out)
	}
}

func TestValidateReportsLocation(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "home.yaml")
	src := "rules:\n  - name: x\n    topic: home/+/temperature\n    when: paylod.value > 30\n    actions: [{log: hi}]\n"
	if err := os.WriteFile(bad, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	code, _, errs := runCLI(t, context.Background(), "validate", dir)
	if code != exitInvalid {
		t.Errorf("exit = %d, want %d", code, exitInvalid)
	}
	want := bad + `:4:11: rule "x": when: unknown name "paylod"`
	if !strings.Contains(errs, want) {
		t.Errorf("stderr = %q, want it to contain %q", errs, want)
	}
}

// TestValidateWithConfig: validate --config checks a rule's broker: against
// the config's brokers, and takes the config's rules when no path is given.
func TestValidateWithConfig(t *testing.T) {
	dir := t.TempDir()
	rulesDir := filepath.Join(dir, "rules")
	if err := os.Mkdir(rulesDir, 0o755); err != nil {
		t.Fatal(err)
	}
	src := "rules:\n  - {name: up, broker: cloud, topic: a, actions: [{log: x}]}\n"
	if err := os.WriteFile(filepath.Join(rulesDir, "r.yaml"), []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	config := filepath.Join(dir, "mqtt-rules.yaml")
	if err := os.WriteFile(config, []byte("rules: ["+rulesDir+"]\nbrokers:\n  cloud: {broker: tcp://cloud.example:1883}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if code, out, errs := runCLI(t, context.Background(), "validate", "--config", config); code != exitOK || !strings.HasPrefix(out, "ok: 1 rule") {
		t.Errorf("validate --config: exit %d, %q %q", code, out, errs)
	}
	code, _, errs := runCLI(t, context.Background(), "validate", rulesDir)
	if code != exitInvalid || !strings.Contains(errs, `no broker "cloud" in the config (brokers: default)`) {
		t.Errorf("validate without the config: exit %d, %q", code, errs)
	}
}

func TestUsageErrors(t *testing.T) {
	for _, args := range [][]string{
		{},
		{"frobnicate"},
		{"validate"},
		{"validate", "--no-such-flag", "x"},
		{"run", "--log-format", "xml"},
		{"run", "--max-payload", "lots"},
	} {
		if code, _, _ := runCLI(t, context.Background(), args...); code != exitUsage {
			t.Errorf("mqtt-rules %q: exit %d, want %d", args, code, exitUsage)
		}
	}
}

func TestVersion(t *testing.T) {
	code, out, _ := runCLI(t, context.Background(), "version")
	if code != exitOK || !strings.HasPrefix(out, "mqtt-rules ") {
		t.Errorf("version: exit %d, %q", code, out)
	}
}

func TestFlagsAfterPaths(t *testing.T) {
	fs := newFlagSet("x", &bytes.Buffer{}, "x")
	v := fs.Bool("v", false, "")
	pos, err := parseArgs(fs, []string{"a", "-v", "b", "--", "-c"})
	if err != nil || !*v || strings.Join(pos, ",") != "a,b,-c" {
		t.Errorf("parseArgs = %q, %v, v=%v", pos, err, *v)
	}
}

func TestParseSize(t *testing.T) {
	for in, want := range map[string]int{"262144": 262144, "256KiB": 262144, "1MiB": 1 << 20, "2 MB": 2 << 20, "0": 0} {
		if got, err := parseSize(in); err != nil || got != want {
			t.Errorf("parseSize(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "-1", "1TiB", "x"} {
		if _, err := parseSize(bad); err == nil {
			t.Errorf("parseSize(%q) accepted", bad)
		}
	}
}

func TestRunEmbeddedPortTaken(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	code, _, errs := runCLI(t, context.Background(), "run", "--rules", "../../examples", "--latitude", "52.52", "--longitude", "13.40", "--embedded-broker", l.Addr().String())
	if code != exitInvalid {
		t.Errorf("exit = %d, want %d", code, exitInvalid)
	}
	errs = strings.TrimSpace(errs)
	if strings.Count(errs, "\n") != 0 || !strings.Contains(errs, "--broker") || !strings.Contains(errs, "address already in use") {
		t.Errorf("stderr = %q, want one line naming --broker", errs)
	}
}

// TestRunExamples runs the command as a newcomer does, on the bundled
// examples with the embedded broker, and makes an example rule fire.
func TestRunExamples(t *testing.T) {
	addr := fmt.Sprintf("127.0.0.1:%d", testbroker.FreePort(t))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan int, 1)
	var stderr bytes.Buffer
	go func() {
		done <- cli(ctx, []string{"run", "--rules", "../../examples", "--latitude", "52.52", "--longitude", "13.40", "--embedded-broker", addr, "--client-id", "cmd-test", "--http", "off"}, &bytes.Buffer{}, &syncWriter{w: &stderr})
	}()
	url := "tcp://" + addr
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.Dial("tcp", addr)
		if err == nil {
			c.Close()
			break
		}
		if time.Now().After(deadline) {
			cancel()
			t.Fatalf("the embedded broker never listened: %v", err)
		}
		time.Sleep(10 * time.Millisecond)
	}
	sub := testbroker.Subscribe(t, url, "zigbee2mqtt/+/light/set")
	// The engine subscribes right after the broker listens; publish until
	// the rule answers (QoS 0 messages sent before it subscribed are lost).
	var got testbroker.Msg
	for i := 0; ; i++ {
		testbroker.Publish(t, url, "zigbee2mqtt/hallway/motion", []byte(`{"occupancy":true,"illuminance_lux":12}`), 0, false)
		if m, ok := sub.TryNext(200 * time.Millisecond); ok {
			got = m
			break
		}
		if i == 50 {
			t.Fatal("the example rule never published")
		}
	}
	if got.Topic != "zigbee2mqtt/hallway/light/set" || !strings.Contains(string(got.Payload), `"state":"ON"`) {
		t.Errorf("got %s", got)
	}
	cancel()
	select {
	case code := <-done:
		if code != exitOK {
			t.Errorf("run exit = %d after SIGINT-like cancel, want 0", code)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("run did not stop")
	}
}

type syncWriter struct {
	mu sync.Mutex
	w  *bytes.Buffer
}

func (s *syncWriter) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.Write(p)
}

func TestValidateWarnsAboutSelfLoop(t *testing.T) {
	dir := t.TempDir()
	src := "rules:\n  - name: echo\n    topic: a/#\n    actions:\n      - publish: {topic: a/b}\n"
	if err := os.WriteFile(filepath.Join(dir, "loop.yaml"), []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	code, _, errs := runCLI(t, context.Background(), "validate", dir)
	if code != exitOK {
		t.Errorf("exit = %d, want 0 (a warning)", code)
	}
	if !strings.Contains(errs, `loop.yaml:5: rule "echo": publish topic "a/b" can match the rule's own topic filter`) {
		t.Errorf("stderr = %q", errs)
	}
}
