package app

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mqtt-rules/mqtt-rules/engine"
	"github.com/mqtt-rules/mqtt-rules/internal/control"
	"github.com/mqtt-rules/mqtt-rules/internal/httpapi"
	"github.com/mqtt-rules/mqtt-rules/internal/testbroker"
)

// controlRules: a stateless rule, one whose firings repeat until
// acknowledged, and one to run by hand.
const controlRules = `
rules:
  - name: kitchen-too-hot
    topic: home/{room}/temperature
    when: payload.value > 30
    actions:
      - publish: {topic: "alerts/{{ room }}/hot", payload: "{{ payload.value }}"}
  - name: door-open
    topic: home/door
    when: payload == "open"
    clear_when: payload == "closed"
    repeat: 1s
    actions:
      - publish: {topic: alerts/door, payload: "open {{ repeat }}"}
  - name: announce
    topic: announce/in
    actions:
      - publish: {topic: alerts/announce, payload: "{{ payload.text }} by {{ trigger }}"}
`

// watcher keeps the last message of every topic a subscriber receives.
type watcher struct {
	sub  *testbroker.Subscriber
	last map[string]testbroker.Msg
}

func watchTopics(t *testing.T, url string, filters ...string) *watcher {
	return &watcher{sub: testbroker.Subscribe(t, url, filters...), last: map[string]testbroker.Msg{}}
}

// await returns the last message on topic once its payload satisfies ok
// (nil: any), taking the messages that arrive meanwhile; it fails the
// test after 10 s.
func (w *watcher) await(t *testing.T, topic string, ok func(payload string) bool) testbroker.Msg {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		if m, seen := w.last[topic]; seen && (ok == nil || ok(string(m.Payload))) {
			return m
		}
		m, got := w.sub.TryNext(time.Until(deadline))
		if !got {
			t.Fatalf("no message on %s as wanted within 10s; the last: %q", topic, w.last[topic].Payload)
		}
		w.last[m.Topic] = m
	}
}

// next takes the next message, failing the test after 10 s.
func (w *watcher) next(t *testing.T) testbroker.Msg {
	t.Helper()
	m := w.sub.Next(t, 10*time.Second)
	w.last[m.Topic] = m
	return m
}

// withoutRule returns a rule file without the named rule.
func withoutRule(src, name string) string {
	i := strings.Index(src, "  - name: "+name+"\n")
	j := strings.Index(src[i+1:], "  - name: ")
	if j < 0 {
		return src[:i]
	}
	return src[:i] + src[i+1+j:]
}

func has(s string) func(string) bool { return func(p string) bool { return strings.Contains(p, s) } }

func controlCount(a *App, action, origin string) uint64 {
	for _, c := range a.Control().Counts() {
		if c.Action == action && c.Origin == origin {
			return c.N
		}
	}
	return 0
}

// TestControlOverMQTT steers the rules over the control topics on
// mosquitto: set changes behaviour and the retained state, ack stops
// repeats, run fires the actions with the message's payload, and bad
// commands change nothing.
func TestControlOverMQTT(t *testing.T) {
	url := testbroker.Mosquitto(t).URL()
	a := start(t, Config{Rules: []string{writeRules(t, controlRules)}, Broker: url, ClientID: "ctl", Control: true})
	const base = "mqtt-rules/ctl/rule/"
	sub := watchTopics(t, url, "mqtt-rules/ctl/#", "alerts/#")
	pub := testbroker.NewPublisher(t, url)

	m := sub.await(t, "mqtt-rules/ctl/status", nil)
	if string(m.Payload) != "online" || !m.Retained {
		t.Errorf("status %q retained %v, want retained online", m.Payload, m.Retained)
	}
	m = sub.await(t, base+"kitchen-too-hot/state", nil)
	if want := `{"enabled":true,"fires":0,"last_fired":null,"firing_keys":0}`; string(m.Payload) != want || !m.Retained {
		t.Errorf("state %s (retained %v), want retained %s", m.Payload, m.Retained, want)
	}

	// set OFF: the state says so at once, and a hot kitchen fires nothing.
	pub.Publish(base+"kitchen-too-hot/set", []byte("OFF"), 1, false)
	sub.await(t, base+"kitchen-too-hot/state", has(`"enabled":false`))
	if on, by, _ := a.Enabled("kitchen-too-hot"); on || by != engine.ByControl {
		t.Errorf("enabled %v by %s, want false by control", on, by)
	}
	received := a.Counters().Received()
	pub.Publish("home/kitchen/temperature", []byte(`{"value": 35}`), 1, false)
	waitFor(t, 10*time.Second, "the message to be handled", func() bool { return a.Counters().Received() > received })
	if n := a.Counters().Rule("kitchen-too-hot").Fires.Load(); n != 0 {
		t.Errorf("the disabled rule fired %d times", n)
	}

	// enable (the other spelling): it fires again.
	pub.Publish(base+"kitchen-too-hot/set", []byte("enable"), 1, false)
	sub.await(t, base+"kitchen-too-hot/state", has(`"enabled":true`))
	pub.Publish("home/kitchen/temperature", []byte(`{"value": 36}`), 1, false)
	sub.await(t, "alerts/kitchen/hot", func(p string) bool { return p == "36" })
	sub.await(t, base+"kitchen-too-hot/state", has(`"fires":1`))

	// ack: the repeats stop, the episode stays firing.
	pub.Publish("home/door", []byte("open"), 1, false)
	sub.await(t, "alerts/door", func(p string) bool { return p == "open 1" }) // a repeat
	pub.Publish(base+"door-open/ack", []byte(control.AckAll), 1, false)
	waitFor(t, 10*time.Second, "the ack", func() bool { return controlCount(a, control.ActionAck, control.OriginMQTT) == 1 })
	fires := a.Counters().Rule("door-open").Fires.Load()
	keys, _ := a.Engine().Keys("door-open", 0)
	if len(keys) != 1 || !keys[0].Firing || !keys[0].Acked {
		t.Errorf("door-open's keys after the ack: %+v, want one firing and acknowledged", keys)
	}
	// Two and a half repeat intervals without a repeat.
	for end := time.Now().Add(2500 * time.Millisecond); time.Now().Before(end); time.Sleep(20 * time.Millisecond) {
		if n := a.Counters().Rule("door-open").Fires.Load(); n != fires {
			t.Fatalf("door-open fired %d more times after the ack", n-fires)
		}
	}
	sub.await(t, base+"door-open/state", has(`"firing_keys":1`))

	// run: the actions, not the condition, with the message's payload.
	pub.Publish(base+"announce/run", []byte(`{"text": "hello"}`), 1, false)
	sub.await(t, "alerts/announce", func(p string) bool { return p == "hello by control" })

	// Bad commands: counted as invalid, nothing changes.
	for _, c := range []struct{ topic, payload string }{
		{base + "kitchen-too-hot/set", "maybe"},
		{base + "no-such-rule/set", "OFF"},
		{base + "announce/run", strings.Repeat("x", 2000)},
	} {
		pub.Publish(c.topic, []byte(c.payload), 1, false)
	}
	waitFor(t, 10*time.Second, "three invalid", func() bool { return controlCount(a, control.ActionInvalid, control.OriginMQTT) == 3 })
	if on, _, _ := a.Enabled("kitchen-too-hot"); !on {
		t.Error("a bad command disabled kitchen-too-hot")
	}
	if n := a.Counters().Rule("announce").Fires.Load(); n != 1 {
		t.Errorf("announce fired %d times, want once", n)
	}
	// The engine's own retained state never came back as a command.
	for _, action := range []string{control.ActionEnable, control.ActionDisable} {
		if n := controlCount(a, action, control.OriginMQTT); n != 1 {
			t.Errorf("%s/mqtt counted %d, want 1", action, n)
		}
	}
}

// TestControlOverHTTP disables a rule with the bearer token: the MQTT
// state follows; the page's cookie without the CSRF header is refused.
func TestControlOverHTTP(t *testing.T) {
	url := testbroker.Mosquitto(t).URL()
	a := start(t, Config{Rules: []string{writeRules(t, controlRules)}, Broker: url, ClientID: "ctl-http", Control: true, HTTP: "127.0.0.1:0", HTTPToken: "tok"})
	sub := watchTopics(t, url, "mqtt-rules/ctl-http/rule/+/state")
	sub.await(t, "mqtt-rules/ctl-http/rule/kitchen-too-hot/state", has(`"enabled":true`))
	do := func(header ...string) int {
		req, _ := http.NewRequest(http.MethodPost, "http://"+a.HTTPAddr()+"/api/rules/kitchen-too-hot/disable", nil)
		for i := 0; i+1 < len(header); i += 2 {
			req.Header.Set(header[i], header[i+1])
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	login, err := http.NewRequest(http.MethodGet, "http://"+a.HTTPAddr()+"/?token=tok", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := (&http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}).Do(login)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	var session string
	for _, c := range resp.Cookies() {
		if c.Name == httpapi.TokenCookie {
			session = c.Name + "=" + c.Value
		}
	}
	if session == "" {
		t.Fatal("no session cookie")
	}
	if code := do("Cookie", session); code != 403 {
		t.Errorf("cookie without %s: %d, want 403", httpapi.CSRFHeader, code)
	}
	if code := do("Cookie", session, httpapi.CSRFHeader, httpapi.CSRFValue, "Origin", "http://evil.example"); code != 403 {
		t.Errorf("cookie from another origin: %d, want 403", code)
	}
	if on, _, _ := a.Enabled("kitchen-too-hot"); !on {
		t.Fatal("a refused request disabled the rule")
	}
	if code := do("Authorization", "Bearer tok"); code != 200 {
		t.Fatalf("bearer: %d, want 200", code)
	}
	sub.await(t, "mqtt-rules/ctl-http/rule/kitchen-too-hot/state", has(`"enabled":false`))
	if n := controlCount(a, control.ActionDisable, control.OriginHTTP); n != 1 {
		t.Errorf("disable/http counted %d", n)
	}
}

// TestHomeAssistantDiscovery checks the discovery configs on mosquitto:
// every entity's fields, the clearing of a rule removed by a reload (real
// files, the app's reload), and of one removed while the engine was
// stopped.
func TestHomeAssistantDiscovery(t *testing.T) {
	url := testbroker.Mosquitto(t).URL()
	dir := writeRules(t, controlRules)
	file := filepath.Join(dir, "rules.yaml")
	sub := watchTopics(t, url, "homeassistant/#", "mqtt-rules/ha/rule/+/state")
	cfg := Config{Rules: []string{dir}, Broker: url, ClientID: "ha", HomeAssistant: "homeassistant", NoWatch: true, Version: "1.2.3", Logger: testLogger(t)}
	a, err := Start(cfg)
	if err != nil {
		t.Fatal(err)
	}
	closeApp := func(a *App) {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		a.Close(ctx)
	}
	defer func() { closeApp(a) }()

	configs := map[string]map[string]any{}
	for len(configs) < 10 { // 3 rules × 3, and door-open's button
		m := sub.next(t)
		if !strings.HasSuffix(m.Topic, "/config") {
			continue
		}
		var v map[string]any
		if err := json.Unmarshal(m.Payload, &v); err != nil {
			t.Fatalf("%s: not JSON: %v\n%s", m.Topic, err, m.Payload)
		}
		configs[m.Topic] = v
	}
	for topic, v := range configs {
		for _, k := range []string{"name", "unique_id", "default_entity_id", "object_id", "availability_topic", "payload_available", "payload_not_available", "device", "origin"} {
			if _, ok := v[k]; !ok {
				t.Errorf("%s has no %s", topic, k)
			}
		}
		if v["availability_topic"] != "mqtt-rules/ha/status" || v["payload_available"] != "online" || v["payload_not_available"] != "offline" {
			t.Errorf("%s: availability %v %v %v", topic, v["availability_topic"], v["payload_available"], v["payload_not_available"])
		}
		dev, _ := v["device"].(map[string]any)
		if ids, _ := dev["identifiers"].([]any); len(ids) != 1 || dev["name"] != "mqtt-rules ha" || dev["sw_version"] != "1.2.3" || dev["manufacturer"] != "mqtt-rules" {
			t.Errorf("%s: device %v", topic, dev)
		}
	}
	sw := configs["homeassistant/switch/ha/kitchen_too_hot/config"]
	for k, want := range map[string]any{
		"default_entity_id": "switch.mqtt_rules_kitchen_too_hot", "object_id": "mqtt_rules_kitchen_too_hot", "unique_id": "ha_kitchen_too_hot",
		"command_topic": "mqtt-rules/ha/rule/kitchen-too-hot/set", "state_topic": "mqtt-rules/ha/rule/kitchen-too-hot/state",
		"payload_on": "ON", "payload_off": "OFF", "value_template": "{{ 'ON' if value_json.enabled else 'OFF' }}",
	} {
		if sw[k] != want {
			t.Errorf("switch %s = %v, want %v", k, sw[k], want)
		}
	}
	if c := configs["homeassistant/sensor/ha/kitchen_too_hot_fires/config"]; c["state_class"] != "total_increasing" || c["value_template"] != "{{ value_json.fires }}" {
		t.Errorf("fires sensor: %v", c)
	}
	if c := configs["homeassistant/sensor/ha/kitchen_too_hot_last_fired/config"]; c["device_class"] != "timestamp" {
		t.Errorf("last fired sensor: %v", c)
	}
	ack := configs["homeassistant/button/ha/door_open_ack/config"]
	if ack["command_topic"] != "mqtt-rules/ha/rule/door-open/ack" || ack["payload_press"] != control.AckAll || ack["default_entity_id"] != "button.mqtt_rules_door_open_ack" {
		t.Errorf("ack button: %v", ack)
	}
	if c := configs["homeassistant/sensor/ha/kitchen_too_hot_fires/config"]; c["default_entity_id"] != "sensor.mqtt_rules_kitchen_too_hot_fires" {
		t.Errorf("fires sensor: default_entity_id %v", c["default_entity_id"])
	}
	if _, ok := configs["homeassistant/button/ha/kitchen_too_hot_ack/config"]; ok {
		t.Error("a rule without repeat has an acknowledge button")
	}

	// The switch works: HA's command turns the rule off.
	testbroker.Publish(t, url, sw["command_topic"].(string), []byte(sw["payload_off"].(string)), 1, false)
	sub.await(t, "mqtt-rules/ha/rule/kitchen-too-hot/state", has(`"enabled":false`))
	// So does the button: what it sends acknowledges every firing key.
	testbroker.Publish(t, url, "home/door", []byte("open"), 1, false)
	sub.await(t, "mqtt-rules/ha/rule/door-open/state", has(`"firing_keys":1`))
	testbroker.Publish(t, url, ack["command_topic"].(string), []byte(ack["payload_press"].(string)), 1, false)
	waitFor(t, 10*time.Second, "the button's ack", func() bool {
		keys, _ := a.Engine().Keys("door-open", 0)
		return len(keys) == 1 && keys[0].Acked
	})

	// A reload without door-open clears its configs and its state topic.
	writeFile(t, file, withoutRule(controlRules, "door-open"))
	if err := a.Reload(context.Background()); err != nil {
		t.Fatal(err)
	}
	cleared := map[string]bool{}
	want := []string{
		"homeassistant/switch/ha/door_open/config", "homeassistant/sensor/ha/door_open_fires/config",
		"homeassistant/sensor/ha/door_open_last_fired/config", "homeassistant/button/ha/door_open_ack/config",
		"mqtt-rules/ha/rule/door-open/state",
	}
	for len(cleared) < len(want) {
		m := sub.next(t)
		if len(m.Payload) == 0 {
			cleared[m.Topic] = true
		}
	}
	for _, topic := range want {
		if !cleared[topic] {
			t.Errorf("%s not cleared (cleared: %v)", topic, cleared)
		}
	}

	// A config left by an earlier run for a rule that is gone is cleared
	// when the engine starts.
	closeApp(a)
	const stale = "homeassistant/switch/ha/gone/config"
	testbroker.Publish(t, url, stale, []byte(`{"name":"gone"}`), 1, true)
	sub.await(t, stale, nil)
	a, err = Start(cfg)
	if err != nil {
		t.Fatal(err)
	}
	sub.await(t, stale, func(p string) bool { return p == "" })
	// The retained configs are those of the loaded rules only.
	fresh := testbroker.Subscribe(t, url, "homeassistant/#")
	var retained []string
	for {
		m, ok := fresh.TryNext(500 * time.Millisecond)
		if !ok {
			break
		}
		retained = append(retained, m.Topic)
	}
	if len(retained) != 6 || strings.Contains(strings.Join(retained, " "), "door_open") || strings.Contains(strings.Join(retained, " "), "gone") {
		t.Errorf("retained configs: %v, want kitchen-too-hot's and announce's 6", retained)
	}
}

// TestOverrideSurvivesRestart disables a rule over MQTT, restarts with
// the same --state file: still disabled by control; then a change of the
// rule's definition hands it back to its file.
func TestOverrideSurvivesRestart(t *testing.T) {
	url := testbroker.Mosquitto(t).URL()
	dir := writeRules(t, controlRules)
	state := filepath.Join(t.TempDir(), "state.db")
	cfg := Config{Rules: []string{dir}, Broker: url, ClientID: "ovr", Control: true, State: state, NoWatch: true, Logger: testLogger(t)}
	sub := watchTopics(t, url, "mqtt-rules/ovr/rule/kitchen-too-hot/state")
	run := func() *App {
		a, err := Start(cfg)
		if err != nil {
			t.Fatal(err)
		}
		waitFor(t, 10*time.Second, "ready", a.Ready)
		return a
	}
	stop := func(a *App) {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := a.Close(ctx); err != nil {
			t.Fatal(err)
		}
	}

	a := run()
	testbroker.Publish(t, url, "mqtt-rules/ovr/rule/kitchen-too-hot/set", []byte("OFF"), 1, false)
	sub.await(t, "mqtt-rules/ovr/rule/kitchen-too-hot/state", has(`"enabled":false`))
	stop(a)

	a = run()
	defer func() { stop(a) }()
	if on, by, _ := a.Enabled("kitchen-too-hot"); on || by != engine.ByControl {
		t.Errorf("after the restart: enabled %v by %s, want false by control", on, by)
	}
	// A change elsewhere in the file keeps the override.
	writeFile(t, filepath.Join(dir, "rules.yaml"), strings.Replace(controlRules, "repeat: 1s", "repeat: 2s", 1))
	if err := a.Reload(context.Background()); err != nil {
		t.Fatal(err)
	}
	if on, by, _ := a.Enabled("kitchen-too-hot"); on || by != engine.ByControl {
		t.Errorf("after a reload changing another rule: enabled %v by %s, want false by control", on, by)
	}
	// A change of the rule itself: its file decides again.
	writeFile(t, filepath.Join(dir, "rules.yaml"), strings.Replace(controlRules, "payload.value > 30", "payload.value > 31", 1))
	if err := a.Reload(context.Background()); err != nil {
		t.Fatal(err)
	}
	if on, by, _ := a.Enabled("kitchen-too-hot"); !on || by != engine.ByFile {
		t.Errorf("after the rule changed: enabled %v by %s, want true by file", on, by)
	}
	sub.await(t, "mqtt-rules/ovr/rule/kitchen-too-hot/state", has(`"enabled":true`))
}

// TestStatusTopic: retained online while running, offline after a clean
// shutdown; off publishes nothing and refuses --control.
func TestStatusTopic(t *testing.T) {
	url := testbroker.Mosquitto(t).URL()
	sub := watchTopics(t, url, "mqtt-rules/+/status", "custom/#")
	a, err := Start(Config{Rules: []string{writeRules(t, controlRules)}, Broker: url, ClientID: "st", NoWatch: true})
	if err != nil {
		t.Fatal(err)
	}
	if got := a.StatusTopic(); got != "mqtt-rules/st/status" {
		t.Errorf("status topic %q", got)
	}
	sub.await(t, "mqtt-rules/st/status", func(p string) bool { return p == "online" })
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	a.Close(ctx)
	sub.await(t, "mqtt-rules/st/status", func(p string) bool { return p == "offline" })
	if m, ok := testbroker.Subscribe(t, url, "mqtt-rules/st/status").TryNext(5 * time.Second); !ok || string(m.Payload) != "offline" || !m.Retained {
		t.Errorf("retained status after shutdown: %v %v, want offline", m, ok)
	}

	b := start(t, Config{Rules: []string{writeRules(t, controlRules)}, Broker: url, ClientID: "st2", StatusTopic: "custom/engine/state"})
	sub.await(t, "custom/engine/state", func(p string) bool { return p == "online" })
	if got := b.Control().Filters(); len(got) != 0 {
		t.Errorf("without --control: filters %v", got)
	}

	if _, err := Start(Config{Rules: []string{writeRules(t, controlRules)}, Broker: url, StatusTopic: StatusTopicOff, Control: true, NoWatch: true}); err == nil || !strings.Contains(err.Error(), "status topic") {
		t.Errorf("--control with --status-topic off: %v", err)
	}
}

// manyRules returns n rules r000, r001, … each on its own topic, with
// repeat (so each has four discovery configs) when asked.
func manyRules(n int, repeat bool) string {
	var b strings.Builder
	b.WriteString("rules:\n")
	for i := range n {
		fmt.Fprintf(&b, "  - name: r%03d\n    topic: in/%d\n    when: payload == \"on\"\n    clear_when: payload == \"off\"\n", i, i)
		if repeat {
			b.WriteString("    repeat: 1h\n")
		}
		b.WriteString("    actions: [{log: x}]\n")
	}
	return b.String()
}

// retainedMessages returns the retained non-empty messages under filter,
// by topic, once want of them have arrived and no more follows.
func retainedMessages(t *testing.T, url, filter string, want int) map[string]string {
	t.Helper()
	sub := testbroker.Subscribe(t, url, filter)
	got := map[string]string{}
	deadline := time.Now().Add(10 * time.Second)
	for len(got) < want && time.Now().Before(deadline) {
		m, ok := sub.TryNext(time.Until(deadline))
		if !ok {
			break
		}
		if m.Retained && len(m.Payload) > 0 {
			got[m.Topic] = string(m.Payload)
		}
	}
	// Nothing more is retained.
	for {
		m, ok := sub.TryNext(300 * time.Millisecond)
		if !ok {
			return got
		}
		if m.Retained && len(m.Payload) > 0 {
			got[m.Topic] = string(m.Payload)
		}
	}
}

// TestRestartClearsManyStaleConfigs restarts an engine of 120 rules with
// repeat (480 discovery configs) with 100 of them: the broker replays all
// 480 at start, far more than the control queue holds, yet all 80 configs
// of the removed rules are cleared and nothing is counted as a control
// flood.
func TestRestartClearsManyStaleConfigs(t *testing.T) {
	url := testbroker.Mosquitto(t).URL()
	dir := writeRules(t, manyRules(120, true))
	cfg := Config{Rules: []string{dir}, Broker: url, ClientID: "many", HomeAssistant: "homeassistant", NoWatch: true, Logger: testLogger(t)}
	const filter = "homeassistant/+/many/+/config"
	watch := watchTopics(t, url, filter)
	a, err := Start(cfg)
	if err != nil {
		t.Fatal(err)
	}
	watch.await(t, "homeassistant/button/many/r119_ack/config", nil) // the last one published
	if got := retainedMessages(t, url, filter, 480); len(got) != 480 {
		t.Fatalf("%d configs retained, want 480", len(got))
	}
	stopApp(a)

	writeFile(t, filepath.Join(dir, "rules.yaml"), manyRules(100, true))
	a, err = Start(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer stopApp(a)
	for i := 100; i < 120; i++ {
		for _, topic := range []string{
			"homeassistant/switch/many/r%03d/config", "homeassistant/sensor/many/r%03d_fires/config",
			"homeassistant/sensor/many/r%03d_last_fired/config", "homeassistant/button/many/r%03d_ack/config",
		} {
			watch.await(t, fmt.Sprintf(topic, i), func(p string) bool { return p == "" })
		}
	}
	got := retainedMessages(t, url, filter, 400)
	if len(got) != 400 {
		t.Errorf("%d configs retained, want the 400 of the loaded rules", len(got))
	}
	for topic := range got {
		var n int
		if _, err := fmt.Sscanf(topic[strings.LastIndex(topic[:len(topic)-len("/config")], "/")+1:], "r%03d", &n); err != nil || n >= 100 {
			t.Errorf("retained config of a removed rule: %s", topic)
		}
	}
	if d := a.Counters().Drops(); d[control.DropFlood] != 0 || d[control.DropStale] != 0 {
		t.Errorf("drops %v, want no %s nor %s", d, control.DropFlood, control.DropStale)
	}
}

// TestRestartClearsStaleStateTopics removes a rule while the engine is
// stopped: at the next start its retained state topic is cleared; the
// loaded rules' stay.
func TestRestartClearsStaleStateTopics(t *testing.T) {
	url := testbroker.Mosquitto(t).URL()
	dir := writeRules(t, controlRules)
	cfg := Config{Rules: []string{dir}, Broker: url, ClientID: "sst", Control: true, NoWatch: true, Logger: testLogger(t)}
	const filter = "mqtt-rules/sst/rule/+/state"
	watch := watchTopics(t, url, filter)
	a, err := Start(cfg)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range []string{"kitchen-too-hot", "door-open", "announce"} {
		watch.await(t, "mqtt-rules/sst/rule/"+r+"/state", nil)
	}
	stopApp(a)

	writeFile(t, filepath.Join(dir, "rules.yaml"), withoutRule(controlRules, "door-open"))
	a, err = Start(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer stopApp(a)
	watch.await(t, "mqtt-rules/sst/rule/door-open/state", func(p string) bool { return p == "" })
	got := retainedMessages(t, url, filter, 2)
	if _, ok := got["mqtt-rules/sst/rule/door-open/state"]; ok || len(got) != 2 {
		t.Errorf("retained states %v, want kitchen-too-hot's and announce's", got)
	}
	// The state topics the engine subscribes for this do not reach the
	// rules, which did not ask for them.
	if n := a.Counters().Received(); n != 0 {
		t.Errorf("the rules were given %d messages", n)
	}
}

// TestClearingRetainedCommand publishes a retained run command while the
// engine is connected — it is carried out once, live — then clears it as
// usual (an empty retained message, which the engine receives live and
// empty): the run and the ack refuse the empty payload, counted as
// invalid; nothing runs, nothing is acknowledged. A retained command left
// on the broker is not carried out again at the next start.
func TestClearingRetainedCommand(t *testing.T) {
	url := testbroker.Mosquitto(t).URL()
	cfg := Config{Rules: []string{writeRules(t, controlRules)}, Broker: url, ClientID: "clr", Control: true, NoWatch: true, Logger: testLogger(t)}
	a, err := Start(cfg)
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "ready", a.Ready)
	sub := watchTopics(t, url, "alerts/#")
	const base = "mqtt-rules/clr/rule/"
	testbroker.Publish(t, url, base+"announce/run", []byte(`{"text": "once"}`), 1, true)
	sub.await(t, "alerts/announce", func(p string) bool { return p == "once by control" })

	testbroker.Publish(t, url, "home/door", []byte("open"), 1, false)
	waitFor(t, 10*time.Second, "door-open firing", func() bool { return a.Engine().FiringKeys("door-open") == 1 })
	invalid := controlCount(a, control.ActionInvalid, control.OriginMQTT)
	testbroker.Publish(t, url, base+"announce/run", nil, 1, true) // = mosquitto_pub -r -n
	testbroker.Publish(t, url, base+"door-open/ack", nil, 1, true)
	waitFor(t, 10*time.Second, "both refused", func() bool {
		return controlCount(a, control.ActionInvalid, control.OriginMQTT) == invalid+2
	})
	if n := a.Counters().Rule("announce").Fires.Load(); n != 1 {
		t.Errorf("announce fired %d times, want once (the live retained command)", n)
	}
	if n := controlCount(a, control.ActionAck, control.OriginMQTT); n != 0 {
		t.Errorf("%d acks", n)
	}
	if keys, _ := a.Engine().Keys("door-open", 0); len(keys) != 1 || keys[0].Acked {
		t.Errorf("door-open's keys %+v, want one not acknowledged", keys)
	}

	// A retained command published while the engine is connected runs
	// once, live; the copy the broker replays at the next start is
	// refused.
	testbroker.Publish(t, url, base+"announce/run", []byte(`{"text": "left"}`), 1, true)
	sub.await(t, "alerts/announce", func(p string) bool { return p == "left by control" })
	stopApp(a)
	a, err = Start(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer stopApp(a)
	waitFor(t, 10*time.Second, "the replayed command refused", func() bool {
		return controlCount(a, control.ActionInvalid, control.OriginMQTT) == 1
	})
	if n := a.Counters().Rule("announce").Fires.Load(); n != 0 {
		t.Errorf("the replayed retained command ran the rule %d times", n)
	}
}

func stopApp(a *App) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	a.Close(ctx)
}
