package main

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/mqtt-rules/mqtt-rules/internal/testbroker"
)

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
)

// buildBinary builds mqtt-rules once per test run, into a directory that
// TestMain removes.
func buildBinary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "mqtt-rules-bin-")
		if err != nil {
			buildErr = err
			return
		}
		binPath = filepath.Join(dir, "mqtt-rules")
		if out, err := exec.Command("go", "build", "-o", binPath, ".").CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binPath
}

func TestMain(m *testing.M) {
	code := m.Run()
	if binPath != "" {
		os.RemoveAll(filepath.Dir(binPath))
	}
	os.Exit(code)
}

// proc is a running mqtt-rules whose stderr lines are readable.
type proc struct {
	cmd   *exec.Cmd
	lines chan string
	log   strings.Builder
}

func startProc(t *testing.T, bin string, args ...string) *proc {
	t.Helper()
	p := &proc{cmd: exec.Command(bin, args...), lines: make(chan string, 1000)}
	stderr, err := p.cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			p.lines <- sc.Text()
		}
		close(p.lines)
	}()
	t.Cleanup(func() {
		p.cmd.Process.Kill()
		p.cmd.Wait()
	})
	return p
}

// waitLog waits for a stderr line containing s.
func (p *proc) waitLog(t *testing.T, s string, timeout time.Duration) {
	t.Helper()
	deadline := time.After(timeout)
	for {
		select {
		case l, ok := <-p.lines:
			if !ok {
				t.Fatalf("process exited before logging %q:\n%s", s, p.log.String())
			}
			p.log.WriteString(l + "\n")
			if strings.Contains(l, s) {
				return
			}
		case <-deadline:
			t.Fatalf("no log line with %q within %v:\n%s", s, timeout, p.log.String())
		}
	}
}

// TestStateSurvivesKill9 kills the engine with SIGKILL while a `for` is
// pending and checks that the restarted engine fires it on time, from the
// state file alone.
func TestStateSurvivesKill9(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	bin := buildBinary(t)
	url := testbroker.Mosquitto(t).URL()
	dir := t.TempDir()
	rules := "rules:\n  - name: door\n    topic: door/+\n    when: payload == \"open\"\n    for: 3s\n    actions: [{publish: {topic: \"alert/{{ wildcards[0] }}\", payload: open for 3s}}]\n"
	if err := os.WriteFile(filepath.Join(dir, "door.yaml"), []byte(rules), 0o644); err != nil {
		t.Fatal(err)
	}
	state := filepath.Join(t.TempDir(), "state.db")
	args := []string{"run", "--rules", dir, "--broker", url, "--state", state, "--log-level", "debug", "--client-id", "kill9-test", "--http", "off"}

	sub := testbroker.Subscribe(t, url, "alert/#")
	first := startProc(t, bin, args...)
	first.waitLog(t, "msg=subscribed", 10*time.Second)
	sent := time.Now()
	testbroker.Publish(t, url, "door/front", []byte("open"), 1, false)
	first.waitLog(t, `msg="state saved" keys=1`, 5*time.Second)
	if err := first.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	first.cmd.Wait()
	if time.Since(sent) >= 3*time.Second {
		t.Skip("the machine is too slow: the for elapsed before the kill")
	}
	if _, ok := sub.TryNext(0); ok {
		t.Fatal("fired before the kill")
	}

	second := startProc(t, bin, args...)
	second.waitLog(t, "msg=\"state restored\"", 10*time.Second)
	m := sub.Next(t, 10*time.Second)
	if m.Topic != "alert/front" || string(m.Payload) != "open for 3s" {
		t.Errorf("got %s, want alert/front=open for 3s", m)
	}
	if d := time.Since(sent); d < 3*time.Second {
		t.Errorf("fired %v after the message, before the 3s had passed", d)
	}
	if _, ok := sub.TryNext(500 * time.Millisecond); ok {
		t.Error("fired twice")
	}
}

// TestSIGHUPReloads sends SIGHUP to a running engine and watches the
// reload counter move.
func TestSIGHUPReloads(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	bin := buildBinary(t)
	url := testbroker.Mosquitto(t).URL()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "r.yaml"), []byte("rules: [{name: r, topic: a, actions: [{log: x}]}]"), 0o644); err != nil {
		t.Fatal(err)
	}
	p := startProc(t, bin, "run", "--rules", dir, "--broker", url, "--http", "off", "--client-id", "hup-test")
	p.waitLog(t, "msg=subscribed", 10*time.Second)
	if err := p.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	p.waitLog(t, `msg="rules reloaded" rules=1`, 10*time.Second)
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := p.cmd.Wait(); err != nil {
		t.Errorf("exit after SIGTERM: %v, want status 0", err)
	}
}
