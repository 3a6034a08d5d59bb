package main

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/mqtt-rules/mqtt-rules/internal/testbroker"
)

// TestWillOnKill kills the engine with SIGKILL: the broker publishes its
// will, so a subscriber of the status topic sees offline (retained), then
// online again when it restarts.
func TestWillOnKill(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	bin := buildBinary(t)
	url := testbroker.Mosquitto(t).URL()
	dir := t.TempDir()
	rules := "rules:\n  - name: hot\n    topic: home/+/temperature\n    when: payload.value > 30\n    actions: [{log: hot}]\n"
	if err := os.WriteFile(filepath.Join(dir, "home.yaml"), []byte(rules), 0o644); err != nil {
		t.Fatal(err)
	}
	args := []string{"run", "--rules", dir, "--broker", url, "--client-id", "will-test", "--http", "off", "--control"}
	const status = "mqtt-rules/will-test/status"
	sub := testbroker.Subscribe(t, url, status)
	expect := func(payload string) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for {
			m, ok := sub.TryNext(time.Until(deadline))
			if !ok {
				t.Fatalf("no %s on %s within 10s", payload, status)
			}
			if string(m.Payload) == payload {
				return
			}
		}
	}

	p := startProc(t, bin, args...)
	p.waitLog(t, "msg=subscribed", 10*time.Second)
	expect("online")
	if err := p.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	p.cmd.Wait()
	expect("offline")
	if m, ok := testbroker.Subscribe(t, url, status).TryNext(5 * time.Second); !ok || string(m.Payload) != "offline" || !m.Retained {
		t.Errorf("retained status after the kill: %s (retained %v), want offline", m, m.Retained)
	}

	again := startProc(t, bin, args...)
	again.waitLog(t, "msg=subscribed", 10*time.Second)
	expect("online")
}

// TestControlFlags parses --status-topic, --control and the forms of
// --homeassistant, on the command line and in the config file.
func TestControlFlags(t *testing.T) {
	tests := []struct {
		name    string
		config  string
		args    []string
		ha      string
		control bool
		status  string
		err     string
	}{
		{name: "none"},
		{name: "control", args: []string{"--control"}, control: true},
		{name: "homeassistant alone", args: []string{"--homeassistant"}, ha: "homeassistant", control: true},
		{name: "homeassistant=PREFIX", args: []string{"--homeassistant=ha/discovery"}, ha: "ha/discovery", control: true},
		{name: "homeassistant=false", args: []string{"--homeassistant=false"}},
		{name: "homeassistant PREFIX", args: []string{"--homeassistant", "ha2"}, err: "--homeassistant=PREFIX"},
		{name: "homeassistant bad prefix", args: []string{"--homeassistant=ha/#"}, err: "must not hold"},
		{name: "status topic", args: []string{"--status-topic", "house/rules/status"}, status: "house/rules/status"},
		{name: "status topic off", args: []string{"--status-topic", "off"}, status: "off"},
		{name: "config file", config: "control: true\nstatus_topic: a/b\n", control: true, status: "a/b"},
		{name: "config file homeassistant", config: "homeassistant: true\n", ha: "homeassistant", control: true},
		{name: "config file prefix", config: "homeassistant: hass\n", ha: "hass", control: true},
		{name: "flag wins", config: "homeassistant: hass\n", args: []string{"--homeassistant=other"}, ha: "other", control: true},
		{name: "homeassistant=True", args: []string{"--homeassistant=True"}, ha: "homeassistant", control: true},
		{name: "homeassistant=1", args: []string{"--homeassistant=1"}, ha: "homeassistant", control: true},
		{name: "homeassistant=on", args: []string{"--homeassistant=on"}, ha: "homeassistant", control: true},
		{name: "homeassistant=NO", args: []string{"--homeassistant=NO"}},
		{name: "config file yes", config: "homeassistant: yes\n", ha: "homeassistant", control: true},
		{name: "config file Off", config: "homeassistant: Off\n"},
		{name: "config file 0", config: "homeassistant: 0\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o, err := parseRun(t, tt.config, tt.args...)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("err %v, want one with %q", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if c := o.cfg; c.HomeAssistant != tt.ha || c.Control != tt.control || c.StatusTopic != tt.status {
				t.Errorf("homeassistant %q control %v status %q, want %q %v %q", c.HomeAssistant, c.Control, c.StatusTopic, tt.ha, tt.control, tt.status)
			}
		})
	}
}

// TestHomeAssistantBooleanSpellings: every spelling strconv.ParseBool
// takes, and on/off/yes/no, in any case, is the boolean — never a
// discovery prefix named "True" or "1"; anything else is the prefix.
func TestHomeAssistantBooleanSpellings(t *testing.T) {
	spellings := []string{"1", "t", "T", "TRUE", "true", "True", "0", "f", "F", "FALSE", "false", "False"}
	for _, s := range []string{"on", "off", "yes", "no"} {
		spellings = append(spellings, s, strings.ToUpper(s), strings.ToUpper(s[:1])+s[1:])
	}
	spellings = append(spellings, "tRuE", " yes ")
	for _, v := range spellings {
		var on bool
		switch strings.ToLower(strings.TrimSpace(v)) {
		case "on", "yes":
			on = true
		case "off", "no":
		default:
			b, err := strconv.ParseBool(strings.ToLower(strings.TrimSpace(v)))
			if err != nil {
				t.Fatalf("%q: not a boolean spelling (%v)", v, err)
			}
			on = b
		}
		want := ""
		if on {
			want = "homeassistant"
		}
		var h haFlag
		if err := h.Set(v); err != nil || h.prefix != want {
			t.Errorf("Set(%q): prefix %q, %v; want %q", v, h.prefix, err, want)
		}
	}
	for _, v := range []string{"ha", "homeassistant", "ha/discovery", "truthy", "nope"} {
		var h haFlag
		if err := h.Set(v); err != nil || h.prefix != v {
			t.Errorf("Set(%q): prefix %q, %v; want the prefix %q", v, h.prefix, err, v)
		}
	}
}
