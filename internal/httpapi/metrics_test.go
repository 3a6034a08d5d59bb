package httpapi

import (
	"github.com/mqtt-rules/mqtt-rules/actions"
	"math"
	"runtime"
	"slices"
	"strings"
	"testing"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/mqtt-rules/mqtt-rules/engine"
)

// scrape fetches /metrics and parses it as the Prometheus text format.
func scrape(t *testing.T, url string, header ...string) map[string]*dto.MetricFamily {
	t.Helper()
	resp, body := get(t, url+"/metrics", header...)
	if resp.StatusCode != 200 {
		t.Fatalf("GET /metrics: %s\n%s", resp.Status, body)
	}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain; version=0.0.4") {
		t.Errorf("Content-Type = %q, want the text format", ct)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	mfs, err := p.TextToMetricFamilies(strings.NewReader(body))
	if err != nil {
		t.Fatalf("parsing /metrics: %v\n%s", err, body)
	}
	return mfs
}

// series returns the samples of a family as "label=value,..." -> value
// (the parser sorts labels by name); a histogram's value is its count.
func series(mf *dto.MetricFamily) map[string]float64 {
	out := map[string]float64{}
	for _, m := range mf.GetMetric() {
		var v float64
		switch {
		case m.Counter != nil:
			v = m.GetCounter().GetValue()
		case m.Gauge != nil:
			v = m.GetGauge().GetValue()
		case m.Histogram != nil:
			v = float64(m.GetHistogram().GetSampleCount())
		}
		out[labelString(m)] = v
	}
	return out
}

func labelString(m *dto.Metric) string {
	var parts []string
	for _, l := range m.GetLabel() {
		parts = append(parts, l.GetName()+"="+l.GetValue())
	}
	return strings.Join(parts, ",")
}

func labelNames(m *dto.Metric) []string {
	var out []string
	for _, l := range m.GetLabel() {
		out = append(out, l.GetName())
	}
	slices.Sort(out)
	return out
}

// TestMetricsSpecNames checks every metric of docs/operations.md, Metrics
// (the contract ones and the extras) is exposed with its type and exactly
// its label names.
func TestMetricsSpecNames(t *testing.T) {
	f := newFixture(t)
	srv, _ := server(t, f.status, Options{Version: "1.2.3"})
	mfs := scrape(t, srv.URL)
	for _, tc := range []struct {
		name   string
		typ    dto.MetricType
		labels []string // sorted
	}{
		{"mqtt_rules_messages_received_total", dto.MetricType_COUNTER, nil},
		{"mqtt_rules_rule_fires_total", dto.MetricType_COUNTER, []string{"rule"}},
		{"mqtt_rules_condition_errors_total", dto.MetricType_COUNTER, []string{"rule"}},
		{"mqtt_rules_actions_total", dto.MetricType_COUNTER, []string{"action", "result", "rule"}},
		{"mqtt_rules_action_duration_seconds", dto.MetricType_HISTOGRAM, []string{"action"}},
		{"mqtt_rules_reloads_total", dto.MetricType_COUNTER, []string{"result"}},
		{"mqtt_rules_rules_loaded", dto.MetricType_GAUGE, nil},
		{"mqtt_rules_broker_connected", dto.MetricType_GAUGE, []string{"broker"}},
		{"mqtt_rules_messages_dropped_total", dto.MetricType_COUNTER, []string{"reason"}},
		{"mqtt_rules_loop_cutoffs_total", dto.MetricType_COUNTER, []string{"rule"}},
		// Extras.
		{"mqtt_rules_state_keys_evicted_total", dto.MetricType_COUNTER, []string{"rule"}},
		{"mqtt_rules_build_info", dto.MetricType_GAUGE, []string{"version"}},
		{"mqtt_rules_ready", dto.MetricType_GAUGE, nil},
		{"mqtt_rules_last_reload_successful", dto.MetricType_GAUGE, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			mf := mfs[tc.name]
			if mf == nil {
				t.Fatalf("%s missing", tc.name)
			}
			if mf.GetType() != tc.typ {
				t.Errorf("type = %v, want %v", mf.GetType(), tc.typ)
			}
			if mf.GetHelp() == "" {
				t.Error("no HELP")
			}
			if len(mf.GetMetric()) == 0 {
				t.Fatal("no series")
			}
			for _, m := range mf.GetMetric() {
				if got := labelNames(m); !slices.Equal(got, tc.labels) {
					t.Errorf("series {%s}: label names %v, want %v", labelString(m), got, tc.labels)
				}
			}
		})
	}
	for _, name := range []string{"go_goroutines", "promhttp_metric_handler_errors_total"} {
		if mfs[name] == nil {
			t.Errorf("%s missing", name)
		}
	}
	if runtime.GOOS == "linux" && mfs["process_start_time_seconds"] == nil {
		t.Error("process_start_time_seconds missing")
	}
}

// TestMetricsValues checks the values follow the engine's traffic.
func TestMetricsValues(t *testing.T) {
	f := newFixture(t)
	srv, _ := server(t, f.status, Options{Version: "1.2.3"})
	mfs := scrape(t, srv.URL)

	want := map[string]map[string]float64{
		"mqtt_rules_messages_received_total":  {"": 6},
		"mqtt_rules_rule_fires_total":         {"rule=hot": 1, "rule=door": 0, "rule=off": 0},
		"mqtt_rules_condition_errors_total":   {"rule=hot": 1, "rule=door": 0, "rule=off": 0},
		"mqtt_rules_loop_cutoffs_total":       {"rule=hot": 2, "rule=door": 0, "rule=off": 0},
		"mqtt_rules_state_keys_evicted_total": {"rule=hot": 0, "rule=door": 3, "rule=off": 0},
		"mqtt_rules_reloads_total":            {"result=ok": 2, "result=error": 1},
		"mqtt_rules_rules_loaded":             {"": 3},
		"mqtt_rules_broker_connected":         {"broker=default": 1},
		"mqtt_rules_ready":                    {"": 1},
		"mqtt_rules_last_reload_successful":   {"": 1},
		"mqtt_rules_build_info":               {"version=1.2.3": 1},
		"mqtt_rules_messages_dropped_total": {
			"reason=too_large": 1, "reason=queue_full": 1, "reason=loop": 0, "reason=dead_letter_full": 1,
		},
		"mqtt_rules_action_duration_seconds": {"action=publish": 1, "action=webhook": 2, "action=log": 1},
		"mqtt_rules_actions_total": {
			"action=publish,result=ok,rule=hot": 1, "action=log,result=error,rule=hot": 1,
			"action=webhook,result=ok,rule=door": 1, "action=webhook,result=error,rule=door": 1,
		},
	}
	// Every kind has its series, zeros included, for every rule.
	for _, k := range actions.Kinds() {
		d := want["mqtt_rules_action_duration_seconds"]
		if _, ok := d["action="+k.Name]; !ok {
			d["action="+k.Name] = 0
		}
		for _, rule := range []string{"hot", "door", "off"} {
			for _, result := range []string{"ok", "error"} {
				key := "action=" + k.Name + ",result=" + result + ",rule=" + rule
				if _, ok := want["mqtt_rules_actions_total"][key]; !ok {
					want["mqtt_rules_actions_total"][key] = 0
				}
			}
		}
	}
	for name, w := range want {
		t.Run(name, func(t *testing.T) {
			mf := mfs[name]
			if mf == nil {
				t.Fatalf("%s missing", name)
			}
			got := series(mf)
			for k, v := range w {
				if g, ok := got[k]; !ok {
					t.Errorf("{%s} missing", k)
				} else if g != v {
					t.Errorf("{%s} = %v, want %v", k, g, v)
				}
			}
			for k := range got {
				if _, ok := w[k]; !ok {
					t.Errorf("unexpected series {%s}", k)
				}
			}
		})
	}
}

// TestMetricsHistogram checks the action duration histogram: the engine's
// buckets, cumulative counts, and the sum in seconds.
func TestMetricsHistogram(t *testing.T) {
	f := newFixture(t)
	srv, _ := server(t, f.status, Options{})
	mf := scrape(t, srv.URL)["mqtt_rules_action_duration_seconds"]
	if mf == nil {
		t.Fatal("mqtt_rules_action_duration_seconds missing")
	}
	for _, tc := range []struct {
		action string
		count  uint64
		sum    float64
		le     map[float64]uint64 // cumulative count at some bounds
	}{
		{"publish", 1, 0.030, map[float64]uint64{0.025: 0, 0.05: 1, 10: 1}},
		{"log", 1, 0.002, map[float64]uint64{0.005: 1, 10: 1}},
		{"webhook", 2, 23, map[float64]uint64{2.5: 0, 5: 1, 10: 1}},
	} {
		t.Run(tc.action, func(t *testing.T) {
			var h *dto.Histogram
			for _, m := range mf.GetMetric() {
				if labelString(m) == "action="+tc.action {
					h = m.GetHistogram()
				}
			}
			if h == nil {
				t.Fatalf("no series for action=%s", tc.action)
			}
			if h.GetSampleCount() != tc.count {
				t.Errorf("count = %d, want %d", h.GetSampleCount(), tc.count)
			}
			if math.Abs(h.GetSampleSum()-tc.sum) > 1e-6 {
				t.Errorf("sum = %v, want %v", h.GetSampleSum(), tc.sum)
			}
			var bounds []float64
			var prev uint64
			for _, b := range h.GetBucket() {
				le := b.GetUpperBound()
				if !math.IsInf(le, 1) {
					bounds = append(bounds, le)
				}
				if b.GetCumulativeCount() < prev {
					t.Errorf("bucket le=%v: %d after %d, not cumulative", le, b.GetCumulativeCount(), prev)
				}
				prev = b.GetCumulativeCount()
				if w, ok := tc.le[le]; ok && b.GetCumulativeCount() != w {
					t.Errorf("bucket le=%v = %d, want %d", le, b.GetCumulativeCount(), w)
				}
			}
			if !slices.Equal(bounds, engine.HistogramBuckets[:]) {
				t.Errorf("bucket bounds %v, want %v", bounds, engine.HistogramBuckets)
			}
			if prev > tc.count {
				t.Errorf("last bucket %d exceeds the count %d", prev, tc.count)
			}
		})
	}
}

// TestMetricsFollowTheCurrentSet checks per-rule series cover the loaded
// rules only, and the gauges follow the status.
func TestMetricsFollowTheCurrentSet(t *testing.T) {
	f := newFixture(t)
	srv, _ := server(t, f.status, Options{})

	f.status.set(func(s *fakeStatus) { s.rs, s.connected, s.ready = nil, false, false })
	mfs := scrape(t, srv.URL)
	for name, want := range map[string]float64{
		"mqtt_rules_rules_loaded": 0, "mqtt_rules_broker_connected{broker=default}": 0, "mqtt_rules_ready": 0,
	} {
		name, labels, _ := strings.Cut(strings.TrimSuffix(name, "}"), "{")
		if got := series(mfs[name])[labels]; got != want {
			t.Errorf("no rules: %s = %v, want %v", name, got, want)
		}
	}
	for _, name := range []string{"mqtt_rules_rule_fires_total", "mqtt_rules_actions_total"} {
		if mf := mfs[name]; mf != nil {
			t.Errorf("no rules: %s has series %v", name, series(mf))
		}
	}
	if got := series(mfs["mqtt_rules_messages_dropped_total"]); len(got) != 4 {
		t.Errorf("no rules: drops %v, want the 3 fixed reasons and dead_letter_full", got)
	}

	// A reload that keeps only "hot".
	rs := loadRules(t, `
rules:
  - {name: hot, topic: home/+/temperature, actions: [{log: x}]}
`)
	f.engine.SetRules(rs)
	f.status.set(func(s *fakeStatus) { s.rs, s.connected = rs, true })
	mfs = scrape(t, srv.URL)
	if got := series(mfs["mqtt_rules_rule_fires_total"]); len(got) != 1 || got["rule=hot"] != 1 {
		t.Errorf("after the reload: fires %v, want only rule=hot 1 (counters kept across the reload)", got)
	}
	if got, want := len(mfs["mqtt_rules_actions_total"].GetMetric()), 2*actions.NumKinds(); got != want {
		t.Errorf("after the reload: %d actions_total series, want %d (one rule, ok and error per kind)", got, want)
	}
	if got := series(mfs["mqtt_rules_ready"])[""]; got != 0 {
		t.Errorf("connected but not subscribed: mqtt_rules_ready = %v, want 0", got)
	}
}

// TestMetricsLastReloadFailed checks the reload gauge follows LastReload.
func TestMetricsLastReloadFailed(t *testing.T) {
	f := newFixture(t)
	f.status.reload.Err = loadErrors(t)
	srv, _ := server(t, f.status, Options{})
	if got := series(scrape(t, srv.URL)["mqtt_rules_last_reload_successful"])[""]; got != 0 {
		t.Errorf("mqtt_rules_last_reload_successful = %v, want 0", got)
	}
}
