package main

import (
	"bytes"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mqtt-rules/mqtt-rules/internal/app"
)

func parseRun(t *testing.T, config string, args ...string) (*runOptions, error) {
	t.Helper()
	if config != "" {
		path := filepath.Join(t.TempDir(), "mqtt-rules.yaml")
		if err := os.WriteFile(path, []byte(config), 0o644); err != nil {
			t.Fatal(err)
		}
		args = append([]string{"--config", path}, args...)
	}
	fs := newFlagSet("run", &bytes.Buffer{}, "run")
	var o runOptions
	o.define(fs)
	return &o, o.parse(fs, args)
}

func TestConfigFile(t *testing.T) {
	t.Setenv("TEST_BROKER_HOST", "broker.lan")
	o, err := parseRun(t, `
# every key is a flag name in snake_case
broker: tcp://${TEST_BROKER_HOST}:1883
client_id: rules-1
rules:
  - /etc/mqtt-rules
  - /srv/more-rules
log_format: json
max_payload: 1MiB
state: /var/lib/mqtt-rules/state.db
`, "--client-id", "from-flag")
	if err != nil {
		t.Fatal(err)
	}
	c := o.cfg
	if c.Broker != "tcp://broker.lan:1883" {
		t.Errorf("broker = %q, want the env expanded", c.Broker)
	}
	if c.ClientID != "from-flag" {
		t.Errorf("client id = %q, want the flag to win", c.ClientID)
	}
	if !slices.Equal(c.Rules, []string{"/etc/mqtt-rules", "/srv/more-rules"}) {
		t.Errorf("rules = %q", c.Rules)
	}
	if o.logFormat != "json" || c.MaxPayload != 1<<20 || c.State != "/var/lib/mqtt-rules/state.db" {
		t.Errorf("log format %q, max payload %d, state %q", o.logFormat, c.MaxPayload, c.State)
	}
}

func TestConfigRulesFlagWins(t *testing.T) {
	o, err := parseRun(t, "rules: [a, b]\n", "--rules", "c")
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(o.cfg.Rules, []string{"c"}) {
		t.Errorf("rules = %q, want only the flag's", o.cfg.Rules)
	}
}

func TestConfigErrors(t *testing.T) {
	tests := []struct{ config, want string }{
		{"client-id: x\n", `:1:1: unknown key "client-id"`},
		{"brokr: x\n", `:1:1: unknown key "brokr"`},
		{"broker: [a, b]\n", ":1:9: broker: want a single value"},
		{"max_keys: lots\n", `:1:11: max_keys: "lots": parse error`},
		{"broker: ${TEST_UNSET_VAR}\n", ":1:9: broker: environment variable TEST_UNSET_VAR is not set"},
		{"- a\n", ":1:1: the config is a mapping"},
		{"brokers: [a]\n", ":1:10: brokers: want a mapping of broker names"},
		{"brokers:\n  default: {broker: tcp://h:1}\n", `:2:3: brokers: broker name "default" is the broker of --broker`},
		{"brokers:\n  cloud: {broker: tcp://h:1}\n  cloud: {broker: tcp://h:2}\n", `:3:3: brokers: "cloud" is given twice`},
		{"brokers:\n  cloud: {url: tcp://h:1}\n", `:2:11: brokers.cloud: unknown key "url" (did you mean "broker"? it is the URL)`},
		{"brokers:\n  cloud: {broker: tcp://h:1, protocol: 6}\n", `:2:40: brokers.cloud.protocol: "6": want 5, 3.1.1 or auto`},
		{"brokers:\n  cloud: {client_id: x}\n", `:2:3: brokers.cloud: broker (its URL, e.g. tcp://cloud.example:1883) missing`},
		{"protocol: 4.0\n", `--protocol: "4.0": want 5, 3.1.1 or auto`},
		{"brokers:\n  cloud: {broker: tcp://h:1, session_expiry: soon}\n", `brokers.cloud.session_expiry: "soon": want a duration`},
	}
	for _, tt := range tests {
		_, err := parseRun(t, tt.config)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("config %q: error %v, want it to contain %q", tt.config, err, tt.want)
		}
	}
}

func TestConfigBrokers(t *testing.T) {
	t.Setenv("TEST_CLOUD_PASSWORD", "s3cret")
	o, err := parseRun(t, `
broker: tcp://localhost:1883
brokers:
  cloud:
    broker: ssl://cloud.example:8883
    username: site1
    password: ${TEST_CLOUD_PASSWORD}
    protocol: "5"
  backup: {broker: tcp://backup.lan:1883, share_group: rules, session_expiry: 24h}
`)
	if err != nil {
		t.Fatal(err)
	}
	want := []app.BrokerConfig{
		{Name: "cloud", URL: "ssl://cloud.example:8883", Username: "site1", Password: "s3cret", Protocol: "5"},
		{Name: "backup", URL: "tcp://backup.lan:1883", ShareGroup: "rules", SessionExpiry: 24 * time.Hour},
	}
	if !slices.Equal(o.cfg.Brokers, want) {
		t.Errorf("brokers = %+v, want %+v", o.cfg.Brokers, want)
	}
	if o.cfg.Protocol != "auto" {
		t.Errorf("protocol = %q, want auto by default", o.cfg.Protocol)
	}
}

func TestExampleConfigParses(t *testing.T) {
	t.Setenv("MQTT_PASSWORD", "pw")
	src, err := os.ReadFile("../../docs/mqtt-rules.example.yaml")
	if err != nil {
		t.Fatal(err)
	}
	o, err := parseRun(t, string(src))
	if err != nil {
		t.Fatalf("docs/mqtt-rules.example.yaml: %v", err)
	}
	if o.cfg.Password != "pw" || o.cfg.ClientID != "mqtt-rules-house" || o.logFormat != "json" {
		t.Errorf("parsed %+v", o.cfg)
	}
}

// TestHTTPTokenWhiteSpace: a token read from a file keeps no trailing
// newline, and one that is only white space is a usage error rather than
// a server that locks every client out.
func TestHTTPTokenWhiteSpace(t *testing.T) {
	t.Setenv("MQTT_RULES_HTTP_TOKEN", "abc123\n")
	o, err := parseRun(t, "")
	if err != nil || o.cfg.HTTPToken != "abc123" {
		t.Errorf("token from the environment with a newline: %q, %v; want \"abc123\"", o.cfg.HTTPToken, err)
	}
	if _, err := parseRun(t, "http_token: \" \"\n"); err == nil || !strings.Contains(err.Error(), "--http-token") {
		t.Errorf("a blank token: %v, want a usage error naming --http-token", err)
	}
}
