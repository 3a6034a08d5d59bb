//go:build unix

package actions

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// The test binary doubles as the programs exec actions run: with
// MQTT_RULES_EXEC_HELPER set it does what that says and exits, so the tests
// need nothing installed and run the same everywhere.
func TestMain(m *testing.M) {
	if mode := os.Getenv("MQTT_RULES_EXEC_HELPER"); mode != "" {
		os.Exit(execHelper(mode, os.Args[1:]))
	}
	os.Exit(m.Run())
}

func execHelper(mode string, args []string) int {
	switch mode {
	case "args": // print the arguments as a JSON list
		b, _ := json.Marshal(args)
		os.Stdout.Write(b)
	case "cat":
		io.Copy(os.Stdout, os.Stdin)
	case "exit":
		n, _ := strconv.Atoi(args[0])
		fmt.Fprintln(os.Stderr, "failing on purpose")
		return n
	case "flood": // write args[0] bytes to stdout
		n, _ := strconv.Atoi(args[0])
		chunk := []byte(strings.Repeat("x", 4096))
		for n > 0 {
			k := min(n, len(chunk))
			os.Stdout.Write(chunk[:k])
			n -= k
		}
	case "spawn": // start a sleeping child, write its pid to args[0], sleep
		child := exec.Command(os.Args[0])
		child.Env = append(os.Environ(), "MQTT_RULES_EXEC_HELPER=sleep")
		if err := child.Start(); err != nil {
			return 2
		}
		os.WriteFile(args[0], []byte(strconv.Itoa(child.Process.Pid)), 0o600)
		time.Sleep(time.Hour) // killed by the timeout under test
	case "spawnexit": // start a sleeping child holding stdout, write its pid to args[0], exit 0
		child := exec.Command(os.Args[0])
		child.Env = append(os.Environ(), "MQTT_RULES_EXEC_HELPER=sleep")
		child.Stdout = os.Stdout
		if err := child.Start(); err != nil {
			return 2
		}
		os.WriteFile(args[0], []byte(strconv.Itoa(child.Process.Pid)), 0o600)
	case "getenv": // print the values of the variables named, one per line
		for _, name := range args {
			v, ok := os.LookupEnv(name)
			fmt.Printf("%s=%s %v\n", name, v, ok)
		}
	case "sleep":
		time.Sleep(time.Hour) // killed by the timeout under test
	case "wait": // create args[1], then wait until the file args[0] exists (at most a minute)
		if len(args) > 1 {
			os.WriteFile(args[1], nil, 0o600)
		}
		for range 60_000 {
			if _, err := os.Stat(args[0]); err == nil {
				return 0
			}
			time.Sleep(time.Millisecond)
		}
		return 3
	}
	return 0
}

// helperCommand returns an exec action running the test binary in mode.
func helperCommand(t *testing.T, mode string, args ...string) *Exec {
	t.Helper()
	t.Setenv("MQTT_RULES_EXEC_HELPER", mode) // the program inherits the environment
	return &Exec{Args: append([]string{os.Args[0]}, args...), Timeout: 10 * time.Second}
}

func execRequest(rule string, e *Exec) Request {
	return Request{Kind: KindExec, Rule: rule, Topic: "home/door", Action: e}
}

// TestExecArgvWithoutShell: every argument reaches the program as one
// argument, whatever shell syntax it holds.
func TestExecArgvWithoutShell(t *testing.T) {
	pub := &fakePublisher{}
	h := newHarness(t, Config{Publisher: pub})
	args := []string{"a; rm -rf /tmp/nothing", "$(id)", "two words", "`uname`", "|", ""}
	e := helperCommand(t, "args", args...)
	e.PublishOutput = "out/args"
	h.x.Do(execRequest("r", e))
	done := h.rec.waitRule(t, "r", 1)
	if done[0].err != nil || done[0].kind != KindExec {
		t.Fatalf("outcome %+v, want ok", done[0])
	}
	pub.waitFor(t, 1)
	got := pub.got[0]
	want, _ := json.Marshal(args)
	if got.Topic != "out/args" || string(got.Payload) != string(want) {
		t.Errorf("published %s %s, want out/args %s", got.Topic, got.Payload, want)
	}
}

func TestExecStdin(t *testing.T) {
	pub := &fakePublisher{}
	h := newHarness(t, Config{Publisher: pub})
	e := helperCommand(t, "cat")
	e.Stdin = []byte(`{"door":"open"}`)
	e.PublishOutput = "out/cat"
	h.x.Do(execRequest("r", e))
	if d := h.rec.waitRule(t, "r", 1); d[0].err != nil {
		t.Fatalf("outcome %v", d[0].err)
	}
	pub.waitFor(t, 1)
	if string(pub.got[0].Payload) != `{"door":"open"}` {
		t.Errorf("stdout %q, want stdin back", pub.got[0].Payload)
	}
}

func TestExecFailures(t *testing.T) {
	for _, tc := range []struct {
		name string
		e    func(t *testing.T) *Exec
		want string
	}{
		{"exit status", func(t *testing.T) *Exec { return helperCommand(t, "exit", "3") }, "exit status 3"},
		{"no such file", func(*testing.T) *Exec { return &Exec{Args: []string{"/nonexistent/program"}} }, "exec /nonexistent/program: no such program"},
		{"not in PATH", func(*testing.T) *Exec { return &Exec{Args: []string{"no-such-program-mqtt-rules"}} }, "not found in PATH"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pub := &fakePublisher{}
			h := newHarness(t, Config{Publisher: pub})
			e := tc.e(t)
			e.PublishOutput = "out/x"
			h.x.Do(execRequest("r", e))
			d := h.rec.waitRule(t, "r", 1)
			if d[0].err == nil || !strings.Contains(d[0].err.Error(), tc.want) {
				t.Errorf("outcome %v, want an error holding %q", d[0].err, tc.want)
			}
			if len(h.log.lines("exec failed")) != 1 {
				t.Errorf("log %s, want one exec failed line", h.log.String())
			}
			if len(pub.got) != 0 {
				t.Errorf("published %d outputs of a failed program, want none", len(pub.got))
			}
		})
	}
}

// TestExecTimeoutKillsProcessGroup: a program that outlives its timeout is
// killed with the children it started.
func TestExecTimeoutKillsProcessGroup(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("no process groups")
	}
	h := newHarness(t, Config{})
	pidFile := filepath.Join(t.TempDir(), "child.pid")
	e := helperCommand(t, "spawn", pidFile)
	e.Timeout = 300 * time.Millisecond
	start := time.Now()
	h.x.Do(execRequest("r", e))
	d := h.rec.waitRule(t, "r", 1)
	if d[0].err == nil || !strings.Contains(d[0].err.Error(), "killed after its timeout of 300ms") {
		t.Fatalf("outcome %v, want killed after its timeout", d[0].err)
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("reported after %v, want soon after the 300ms timeout", took)
	}
	b, err := os.ReadFile(pidFile)
	if err != nil {
		t.Fatalf("the program did not start its child: %v", err)
	}
	pid, _ := strconv.Atoi(string(b))
	pollUntil(t, "the child to be killed", func() bool {
		err := syscall.Kill(pid, 0)
		return errors.Is(err, syscall.ESRCH)
	})
}

// TestExecBackgroundChildKilled: a program that exits 0 leaving a child
// behind (a "cmd &") succeeds, and the child goes with it even though it
// held the program's stdout open.
func TestExecBackgroundChildKilled(t *testing.T) {
	h := newHarness(t, Config{})
	pidFile := filepath.Join(t.TempDir(), "child.pid")
	h.x.Do(execRequest("r", helperCommand(t, "spawnexit", pidFile)))
	if d := h.rec.waitRule(t, "r", 1); d[0].err != nil {
		t.Fatalf("outcome %v, want ok: the program exited 0", d[0].err)
	}
	b, err := os.ReadFile(pidFile)
	if err != nil {
		t.Fatalf("the program did not start its child: %v", err)
	}
	pid, _ := strconv.Atoi(string(b))
	pollUntil(t, "the child to be killed", func() bool {
		return errors.Is(syscall.Kill(pid, 0), syscall.ESRCH)
	})
}

// TestExecEnvWithoutSecrets: a program does not inherit the engine's
// variables whose names look secret; others it does.
func TestExecEnvWithoutSecrets(t *testing.T) {
	pub := &fakePublisher{}
	h := newHarness(t, Config{Publisher: pub})
	t.Setenv("MQTT_RULES_HTTP_TOKEN", "s3cret-token-value")
	t.Setenv("HOME_API_KEY", "another-secret")
	t.Setenv("MY_ROOM", "kitchen")
	e := helperCommand(t, "getenv", "MQTT_RULES_HTTP_TOKEN", "HOME_API_KEY", "MY_ROOM", "MQTT_RULES_RULE")
	e.PublishOutput = "out/env"
	h.x.Do(execRequest("r", e))
	if d := h.rec.waitRule(t, "r", 1); d[0].err != nil {
		t.Fatalf("outcome %v, want ok", d[0].err)
	}
	pub.waitFor(t, 1)
	want := "MQTT_RULES_HTTP_TOKEN= false\nHOME_API_KEY= false\nMY_ROOM=kitchen true\nMQTT_RULES_RULE=r true\n"
	if got := string(pub.got[0].Payload); got != want {
		t.Errorf("program saw\n%s\nwant\n%s", got, want)
	}
}

// TestExecOutputBound: a program that floods stdout is read to its end but
// only ExecOutput bytes are kept.
func TestExecOutputBound(t *testing.T) {
	pub := &fakePublisher{}
	h := newHarness(t, Config{Publisher: pub, ExecOutput: 1024})
	e := helperCommand(t, "flood", strconv.Itoa(10<<20))
	e.PublishOutput = "out/flood"
	h.x.Do(execRequest("r", e))
	if d := h.rec.waitRule(t, "r", 1); d[0].err != nil {
		t.Fatalf("outcome %v, want ok", d[0].err)
	}
	pub.waitFor(t, 1)
	if n := len(pub.got[0].Payload); n != 1024 {
		t.Errorf("published %d bytes, want the 1024 kept", n)
	}
	lines := h.log.lines("exec done")
	if len(lines) != 1 || !strings.Contains(lines[0], fmt.Sprintf("(%d more bytes not kept)", 10<<20-1024)) {
		t.Errorf("log %q, want the bytes not kept counted", lines)
	}
}

// TestExecConcurrencyBound: at most ExecConcurrency programs run, ExecQueue
// wait, the rest are dropped and counted; other actions never wait.
func TestExecConcurrencyBound(t *testing.T) {
	h := newHarness(t, Config{ExecConcurrency: 2, ExecQueue: 1})
	dir := t.TempDir()
	release := filepath.Join(dir, "release")
	started := func(i int) string { return filepath.Join(dir, fmt.Sprintf("started-%d", i)) }
	for i := range 2 {
		h.x.Do(execRequest(fmt.Sprintf("r%d", i), helperCommand(t, "wait", release, started(i))))
	}
	pollUntil(t, "two programs to run", func() bool {
		_, e0 := os.Stat(started(0))
		_, e1 := os.Stat(started(1))
		return e0 == nil && e1 == nil
	})
	for i := 2; i < 4; i++ {
		h.x.Do(execRequest(fmt.Sprintf("r%d", i), helperCommand(t, "wait", release)))
	}
	// The fourth found two running and one waiting: dropped at once.
	d := h.rec.waitRule(t, "r3", 1)
	if !errors.Is(d[0].err, ErrQueueFull) {
		t.Errorf("fourth program: %v, want queue full", d[0].err)
	}
	if _, drops := h.rec.snapshot(); len(drops) != 1 || drops[0].reason != "queue_full" || drops[0].kind != KindExec {
		t.Errorf("drops %+v, want one exec queue_full", drops)
	}
	// A log action does not wait for the programs.
	h.x.Do(Request{Kind: KindLog, Rule: "log", Action: &Log{Message: "still logging"}})
	if d := h.rec.waitRule(t, "log", 1); d[0].err != nil {
		t.Errorf("log: %v", d[0].err)
	}
	if err := os.WriteFile(release, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		if d := h.rec.waitRule(t, fmt.Sprintf("r%d", i), 1); d[0].err != nil {
			t.Errorf("program %d: %v", i, d[0].err)
		}
	}
}

func TestExecFields(t *testing.T) {
	e := &Exec{Args: []string{"/usr/bin/notify", "door \"open\"", "x"}, Stdin: []byte("in"), Timeout: 5 * time.Second, PublishOutput: "out"}
	var got []string
	for _, f := range e.Fields() {
		got = append(got, f.Name+"="+f.Value)
	}
	want := []string{`command=["/usr/bin/notify","door \"open\"","x"]`, "timeout=5s", "publish_output=out", "stdin=in"}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("fields %q, want %q", got, want)
	}
}
