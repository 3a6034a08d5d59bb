package app

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/mqtt-rules/mqtt-rules/actions"
	"github.com/mqtt-rules/mqtt-rules/internal/testbroker"
)

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestMetricsAfterTraffic scrapes /metrics after real messages went
// through the engine and finds every metric of docs/operations.md
// (Metrics) with its labels.
func TestMetricsAfterTraffic(t *testing.T) {
	url := testbroker.Mosquitto(t).URL()
	dir := writeRules(t, `
rules:
  - name: hot
    topic: sensors/{id}/temperature
    when: payload.value > 30
    actions:
      - publish: {topic: "alerts/{{ id }}"}
      - log: "{{ id }} hot"
  - name: loop
    topic: loop/#
    actions: [{publish: {topic: loop/x}}]
`)
	a := start(t, Config{Rules: []string{dir}, Broker: url, HTTP: "127.0.0.1:0", MaxPayload: 100, MaxHops: 2})
	base := "http://" + a.HTTPAddr()
	sub := testbroker.Subscribe(t, url, "alerts/#")
	pub := testbroker.NewPublisher(t, url)
	pub.Publish("sensors/1/temperature", []byte(`{"value": 31}`), 1, false)
	pub.Publish("sensors/1/temperature", []byte(`not json`), 1, false)
	pub.Publish("sensors/1/temperature", []byte(strings.Repeat("x", 200)), 1, false)
	pub.Publish("loop/start", []byte("x"), 1, false)
	sub.Expect(t, 5*time.Second, "alerts/1", `{"value": 31}`)
	waitFor(t, 5*time.Second, "the loop to be cut and the publish to be acknowledged", func() bool {
		ok, _ := a.Counters().Rule("hot").Actions(actions.KindPublish)
		return a.Counters().Rule("loop").LoopCutoffs.Load() == 1 && ok == 1
	})
	a.Reload(t.Context())

	code, body := get(t, base+"/metrics")
	if code != 200 {
		t.Fatalf("/metrics: %d", code)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := parser.TextToMetricFamilies(strings.NewReader(body))
	if err != nil {
		t.Fatalf("parse /metrics: %v", err)
	}
	want := map[string][]string{
		"mqtt_rules_messages_received_total": nil,
		"mqtt_rules_rule_fires_total":        {"rule"},
		"mqtt_rules_condition_errors_total":  {"rule"},
		"mqtt_rules_actions_total":           {"action", "result", "rule"},
		"mqtt_rules_action_duration_seconds": {"action"},
		"mqtt_rules_reloads_total":           {"result"},
		"mqtt_rules_rules_loaded":            nil,
		"mqtt_rules_broker_connected":        {"broker"},
		"mqtt_rules_messages_dropped_total":  {"reason"},
		"mqtt_rules_loop_cutoffs_total":      {"rule"},
	}
	for name, labels := range want {
		f := fams[name]
		if f == nil || len(f.Metric) == 0 {
			t.Errorf("%s missing", name)
			continue
		}
		var got []string
		for _, l := range f.Metric[0].Label {
			got = append(got, l.GetName())
		}
		if strings.Join(got, ",") != strings.Join(labels, ",") {
			t.Errorf("%s labels %v, want %v", name, got, labels)
		}
	}
	for _, line := range []string{
		"mqtt_rules_messages_received_total 6", // 3 sensor messages, loop/start and its 2 echoes
		`mqtt_rules_rule_fires_total{rule="hot"} 1`,
		`mqtt_rules_condition_errors_total{rule="hot"} 1`,
		`mqtt_rules_actions_total{action="publish",result="ok",rule="hot"} 1`,
		`mqtt_rules_actions_total{action="log",result="ok",rule="hot"} 1`,
		`mqtt_rules_reloads_total{result="ok"} 1`,
		"mqtt_rules_rules_loaded 2",
		`mqtt_rules_broker_connected{broker="default"} 1`,
		`mqtt_rules_messages_dropped_total{reason="too_large"} 1`,
		`mqtt_rules_messages_dropped_total{reason="loop"} 1`,
		`mqtt_rules_loop_cutoffs_total{rule="loop"} 1`,
		`mqtt_rules_action_duration_seconds_count{action="publish"} 3`,
		"go_goroutines ",
		"process_resident_memory_bytes ",
	} {
		if !strings.Contains(body, line) {
			t.Errorf("/metrics lacks %q", line)
		}
	}
	code, body = get(t, base+"/api/rules")
	var api struct {
		Rules []struct {
			Name      string   `json:"name"`
			Filters   []string `json:"filters"`
			Enabled   bool     `json:"enabled"`
			Fires     int      `json:"fires"`
			Errors    int      `json:"errors"`
			LastFired *string  `json:"last_fired"`
		} `json:"rules"`
	}
	if err := json.Unmarshal([]byte(body), &api); err != nil || code != 200 || len(api.Rules) != 2 {
		t.Fatalf("/api/rules: %d %v %s", code, err, body)
	}
	hot := api.Rules[0]
	if hot.Name != "hot" || hot.Filters[0] != "sensors/{id}/temperature" || !hot.Enabled || hot.Fires != 1 || hot.Errors != 1 || hot.LastFired == nil {
		t.Errorf("/api/rules hot = %+v", hot)
	}
}

// TestReadyzFollowsTheBroker stops the broker and starts it again.
func TestReadyzFollowsTheBroker(t *testing.T) {
	b := testbroker.Mosquitto(t)
	dir := writeRules(t, "rules: [{name: r, topic: a, actions: [{log: x}]}]")
	a := start(t, Config{Rules: []string{dir}, Broker: b.URL(), HTTP: "127.0.0.1:0"})
	readyz := "http://" + a.HTTPAddr() + "/readyz"
	status := func() int { c, _ := get(t, readyz); return c }
	if c := status(); c != 200 {
		t.Fatalf("/readyz = %d while connected", c)
	}
	b.Stop()
	waitFor(t, 10*time.Second, "/readyz to answer 503", func() bool { return status() == 503 })
	if c, body := get(t, "http://"+a.HTTPAddr()+"/healthz"); c != 200 {
		t.Errorf("/healthz = %d %s while the broker is down", c, body)
	}
	b.Start()
	waitFor(t, 40*time.Second, "/readyz to answer 200 again", func() bool { return status() == 200 })
}
