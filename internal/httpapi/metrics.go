package httpapi

import (
	"fmt"
	"log/slog"
	"net/http"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/mqtt-rules/mqtt-rules/actions"
	"github.com/mqtt-rules/mqtt-rules/engine"
)

// actionKinds are the values of the `action` label, in the order emitted.
var actionKinds = actions.Kinds()

// dropReasons are always emitted, zeros included, so alerts and dashboards
// can rely on the series existing.
var dropReasons = [...]string{engine.DropTooLarge, engine.DropQueueFull, engine.DropLoop}

func newDesc(name, help string, labels ...string) *prometheus.Desc {
	return prometheus.NewDesc(name, help, labels, nil)
}

// The metrics of docs/operations.md, Metrics (their names and labels are a
// contract), then the extras.
var (
	descReceived = newDesc("mqtt_rules_messages_received_total",
		"Messages the engine received from the broker.")
	descFires = newDesc("mqtt_rules_rule_fires_total",
		"Times a rule fired.", "rule")
	descCondErrors = newDesc("mqtt_rules_condition_errors_total",
		"Messages for which a rule's condition (when, key, clear_when) failed to evaluate; the rule did not fire.", "rule")
	descActions = newDesc("mqtt_rules_actions_total",
		"Actions finished, by rule, kind (publish, webhook, log) and result (ok, error).", "rule", "action", "result")
	descDuration = newDesc("mqtt_rules_action_duration_seconds",
		"How long actions took, webhook retries included, by kind.", "action")
	descReloads = newDesc("mqtt_rules_reloads_total",
		"Rule reload attempts, by result (ok, error); the load at start is not counted.", "result")
	descLoaded = newDesc("mqtt_rules_rules_loaded",
		"Rules in the active rule set.")
	descConnected = newDesc("mqtt_rules_broker_connected",
		"1 while the connection to the broker is up, else 0, by broker (default: the one of --broker).", "broker")
	descDropped = newDesc("mqtt_rules_messages_dropped_total",
		"Messages and actions dropped, by reason (too_large, queue_full, loop, ...).", "reason")
	descLoopCutoffs = newDesc("mqtt_rules_loop_cutoffs_total",
		"Publishes not made because their chain of republished messages would exceed --max-hops.", "rule")

	descSuppressed = newDesc("mqtt_rules_firings_suppressed_total",
		"Firings a rule did not run, by reason: mode (mode: single while the key's sequence waits, or a full queue).", "rule", "reason")
	descEvicted = newDesc("mqtt_rules_state_keys_evicted_total",
		"State keys a stateful rule dropped because it tracked --max-keys keys.", "rule")
	descBuildInfo = newDesc("mqtt_rules_build_info",
		"Always 1; the version label says which build runs.", "version")
	descReady = newDesc("mqtt_rules_ready",
		"1 when rules are loaded and the engine is connected and subscribed to every filter (as /readyz), else 0.")
	descReloadOK = newDesc("mqtt_rules_last_reload_successful",
		"1 when the last load of the rules succeeded, 0 when it was rejected (the previous rules keep running).")
	descRemembered = newDesc("mqtt_rules_remembered_topics",
		"Topics whose latest message the engine remembers for state() and states().")
	descRememberedEvicted = newDesc("mqtt_rules_remembered_evicted_total",
		"Remembered topics dropped, least recently updated first, because --max-remembered topics were remembered.")
	descControl = newDesc("mqtt_rules_control_total",
		"Control actions, by action (enable, disable, ack, run, invalid) and origin (mqtt, http).", "action", "origin")
)

// collector reads a Status at scrape time. Per-rule series cover the rules
// of the current set only.
type collector struct {
	status  Status
	version string
	control Control // nil: no control metrics
}

var _ prometheus.Collector = (*collector)(nil)

// Describe sends every metric's descriptor: the collector is checked.
func (c *collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{
		descReceived, descFires, descCondErrors, descActions, descDuration,
		descReloads, descLoaded, descConnected, descDropped, descLoopCutoffs,
		descEvicted, descBuildInfo, descReady, descReloadOK, descRemembered, descRememberedEvicted, descSuppressed,
		descControl,
	} {
		ch <- d
	}
}

// Collect sends the current values.
func (c *collector) Collect(ch chan<- prometheus.Metric) {
	emit := func(d *prometheus.Desc, t prometheus.ValueType, v float64, labels ...string) {
		m, err := prometheus.NewConstMetric(d, t, v, labels...)
		if err != nil {
			m = prometheus.NewInvalidMetric(d, err)
		}
		ch <- m
	}
	st := c.status
	rs := st.Rules()
	loaded := 0
	if rs != nil {
		loaded = len(rs.Rules)
	}
	emit(descBuildInfo, prometheus.GaugeValue, 1, c.version)
	emit(descLoaded, prometheus.GaugeValue, float64(loaded))
	for _, b := range st.Brokers() {
		emit(descConnected, prometheus.GaugeValue, boolValue(b.Connected), b.Name)
	}
	emit(descReady, prometheus.GaugeValue, boolValue(notReady(st) == ""))
	emit(descReloadOK, prometheus.GaugeValue, boolValue(st.LastReload().Err == nil))
	if c.control != nil {
		for _, n := range c.control.Counts() {
			emit(descControl, prometheus.CounterValue, float64(n.N), n.Action, n.Origin)
		}
	}

	cs := st.Counters()
	if cs == nil {
		return
	}
	emit(descReceived, prometheus.CounterValue, float64(cs.Received()))
	topics, evicted := cs.Remembered()
	emit(descRemembered, prometheus.GaugeValue, float64(topics))
	emit(descRememberedEvicted, prometheus.CounterValue, float64(evicted))
	ok, failed := cs.Reloads()
	emit(descReloads, prometheus.CounterValue, float64(ok), "ok")
	emit(descReloads, prometheus.CounterValue, float64(failed), "error")

	drops := cs.Drops()
	for _, reason := range dropReasons {
		emit(descDropped, prometheus.CounterValue, float64(drops[reason]), reason)
		delete(drops, reason)
	}
	for reason, n := range drops {
		emit(descDropped, prometheus.CounterValue, float64(n), reason)
	}

	for _, k := range actionKinds {
		h := cs.ActionDurations(k)
		if h == nil {
			continue
		}
		ch <- constHistogram(h, k.String())
	}

	if rs == nil {
		return
	}
	for _, r := range rs.Rules {
		s := cs.Rule(r.Name)
		emit(descFires, prometheus.CounterValue, float64(s.Fires.Load()), r.Name)
		emit(descCondErrors, prometheus.CounterValue, float64(s.ConditionErrors.Load()), r.Name)
		emit(descLoopCutoffs, prometheus.CounterValue, float64(s.LoopCutoffs.Load()), r.Name)
		emit(descEvicted, prometheus.CounterValue, float64(s.KeysEvicted.Load()), r.Name)
		emit(descSuppressed, prometheus.CounterValue, float64(s.Suppressed.Load()), r.Name, "mode")
		for _, k := range actionKinds {
			ok, failed := s.Actions(k)
			emit(descActions, prometheus.CounterValue, float64(ok), r.Name, k.String(), "ok")
			emit(descActions, prometheus.CounterValue, float64(failed), r.Name, k.String(), "error")
		}
	}
}

// constHistogram turns an engine histogram into a Prometheus one.
func constHistogram(h *engine.Histogram, action string) prometheus.Metric {
	cumulative, count, sum := h.Snapshot()
	buckets := make(map[float64]uint64, len(engine.HistogramBuckets))
	for i, le := range engine.HistogramBuckets {
		buckets[le] = cumulative[i] // the last, +Inf, is count
	}
	m, err := prometheus.NewConstHistogram(descDuration, count, sum, buckets, action)
	if err != nil {
		return prometheus.NewInvalidMetric(descDuration, err)
	}
	return m
}

func boolValue(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// newMetricsHandler serves the metrics of s from a registry of its own,
// with the Go runtime and process collectors.
func newMetricsHandler(s Status, version string, ctl Control, log *slog.Logger) http.Handler {
	reg := prometheus.NewRegistry()
	reg.MustRegister(
		&collector{status: s, version: version, control: ctl},
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	return promhttp.HandlerFor(reg, promhttp.HandlerOpts{
		ErrorLog:      promLogger{log},
		ErrorHandling: promhttp.ContinueOnError,
		Registry:      reg, // counts promhttp_metric_handler_errors_total
	})
}

// promLogger lets promhttp report gathering errors through slog.
type promLogger struct{ log *slog.Logger }

func (l promLogger) Println(v ...any) {
	l.log.Warn("metrics: " + strings.TrimSuffix(fmt.Sprintln(v...), "\n"))
}
