package main

import (
	"bytes"
	"encoding/json"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/mqtt-rules/mqtt-rules/internal/testbroker"
)

func TestParseFlags(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want string // substring of the error; "" for success
	}{
		{"defaults", nil, ""},
		{"all", []string{"--broker", "tcp://127.0.0.1:1", "--count", "10", "--rate", "500", "--qos", "1", "--topics", "3", "--sub", "x/#", "--value", "30.5", "--timeout", "1s", "--warmup", "0", "--engine-pid", "1", "--window", "10"}, ""},
		{"qos 2", []string{"--qos", "2"}, "--qos 2"},
		{"zero count", []string{"--count", "0"}, "--count 0"},
		{"negative rate", []string{"--rate", "-1"}, "--rate -1"},
		{"format without %d", []string{"--topic-format", "sensors/x"}, "--topic-format"},
		{"format with two verbs", []string{"--topic-format", "a/%d/%s"}, "--topic-format"},
		{"groups", []string{"--topic-format", "home/g%[2]d/d%[1]d/sensor", "--group", "50"}, ""},
		{"group without its verb", []string{"--topic-format", "home/d%d/sensor", "--group", "50"}, "--topic-format"},
		{"negative group", []string{"--group", "-1"}, "--group -1"},
		{"tls broker", []string{"--broker", "ssl://h:8883"}, "--broker"},
		{"window", []string{"--window", "0"}, "--window 0"},
		{"negative pace", []string{"--pace", "-1ms"}, "--pace -1ms"},
		{"stray argument", []string{"extra"}, "unexpected arguments"},
		{"errors collected", []string{"--qos", "3", "--count", "-1"}, "--count -1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stderr bytes.Buffer
			_, err := parseFlags(tt.args, &stderr)
			if tt.want == "" && err != nil || tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)) {
				t.Errorf("parseFlags(%q) = %v, want %q", tt.args, err, tt.want)
			}
		})
	}
	cfg, err := parseFlags([]string{"--value", "31"}, &bytes.Buffer{})
	if err != nil || cfg.Value != "31" || cfg.Sub != "alerts/#" || cfg.Timeout.Seconds() != 5 {
		t.Errorf("defaults: %+v, %v", cfg, err)
	}
}

func TestTopicName(t *testing.T) {
	cfg := config{TopicFormat: "home/g%[2]d/d%[1]d/sensor", Group: 50}
	if got := topicName(cfg, 123); got != "home/g2/d123/sensor" {
		t.Errorf("topicName = %q", got)
	}
	if got := topicName(config{TopicFormat: "sensors/%d/temperature"}, 7); got != "sensors/7/temperature" {
		t.Errorf("topicName = %q", got)
	}
}

// runJSON runs the tool with args and decodes its JSON line.
func runJSON(t *testing.T, args ...string) map[string]any {
	t.Helper()
	var stdout, stderr bytes.Buffer
	if code := runMain(t.Context(), args, &stdout, &stderr); code != exitOK {
		t.Fatalf("exit %d, stderr: %s", code, stderr.String())
	}
	lines := strings.Split(strings.TrimSpace(stdout.String()), "\n")
	if len(lines) != 1 {
		t.Fatalf("stdout has %d lines, want 1: %s", len(lines), stdout.String())
	}
	var res map[string]any
	if err := json.Unmarshal([]byte(lines[0]), &res); err != nil {
		t.Fatalf("output %s: %v", lines[0], err)
	}
	return res
}

func TestRunBaseline(t *testing.T) {
	b := testbroker.Mosquitto(t, testbroker.WithConfig("max_queued_messages 0\nmax_inflight_messages 1000"))
	tests := []struct {
		name string
		args []string
	}{
		{"qos0 flat out", []string{"--qos", "0", "--count", "5000"}},
		{"qos1 flat out", []string{"--qos", "1", "--count", "5000", "--window", "64"}},
		{"qos1 paced", []string{"--qos", "1", "--count", "300", "--rate", "3000", "--warmup", "10"}},
		{"qos0 paced one by one", []string{"--qos", "0", "--count", "200", "--rate", "2000", "--pace", "0"}},
		{"engine pid", []string{"--qos", "0", "--count", "1000", "--engine-pid", strconv.Itoa(os.Getpid())}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			args := append([]string{"--broker", b.URL(), "--sub", "sensors/+/temperature", "--topics", "10", "--label", "x"}, tt.args...)
			res := runJSON(t, args...)
			count := res["sent"]
			for key, want := range map[string]any{"received": count, "lost": 0.0, "duplicates": 0.0, "label": "x"} {
				if res[key] != want {
					t.Errorf("%s = %v, want %v (result %v)", key, res[key], want, res)
				}
			}
			for _, key := range []string{"qos", "rate_target", "duration_s", "in_rate", "out_rate", "p50_us", "p90_us", "p99_us", "max_us"} {
				if _, ok := res[key]; !ok {
					t.Errorf("no %q in %v", key, res)
				}
			}
			if !(res["p50_us"].(float64) <= res["p99_us"].(float64) && res["p99_us"].(float64) <= res["max_us"].(float64)) {
				t.Errorf("percentiles out of order: %v", res)
			}
			_, engine := res["engine_cpu_us_per_msg"]
			if wantEngine := strings.Contains(tt.name, "engine"); engine != wantEngine {
				t.Errorf("engine fields present = %v, want %v: %v", engine, wantEngine, res)
			}
			if engine && res["engine_rss_kb"].(float64) <= 0 {
				t.Errorf("engine_rss_kb = %v, want > 0", res["engine_rss_kb"])
			}
		})
	}
}

func TestRunNothingComesBack(t *testing.T) {
	b := testbroker.Mosquitto(t)
	var stdout, stderr bytes.Buffer
	code := runMain(t.Context(), []string{"--broker", b.URL(), "--sub", "alerts/#", "--count", "10", "--ready-timeout", "300ms"}, &stdout, &stderr)
	if code != exitError || !strings.Contains(stderr.String(), "nothing came back") || stdout.Len() != 0 {
		t.Errorf("exit %d, stdout %q, stderr %q; want exit 1 and 'nothing came back'", code, stdout.String(), stderr.String())
	}
}

func TestRunCountsLossAndStopsWhenIdle(t *testing.T) {
	b := testbroker.Mosquitto(t)
	// Two topics, one subscribed: every other message is "lost". --idle
	// ends the wait long before --timeout.
	start := time.Now()
	res := runJSON(t, "--broker", b.URL(), "--topics", "2", "--sub", "sensors/0/temperature",
		"--count", "1000", "--warmup", "10", "--timeout", "60s", "--idle", "300ms")
	if res["sent"] != 1000.0 || res["received"] != 500.0 || res["lost"] != 500.0 || res["duplicates"] != 0.0 {
		t.Errorf("sent %v received %v lost %v duplicates %v; want 1000 500 500 0", res["sent"], res["received"], res["lost"], res["duplicates"])
	}
	if d := time.Since(start); d > 30*time.Second {
		t.Errorf("run took %v: --idle did not end the wait", d)
	}
}
