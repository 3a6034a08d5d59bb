package app

import (
	"net"
	"strings"
	"testing"
	"time"

	"github.com/mqtt-rules/mqtt-rules/internal/httpapi"
	"github.com/mqtt-rules/mqtt-rules/internal/testbroker"
)

// TestBridgeTwoBrokers: two mosquitto instances bridged by a rule in each
// direction; a pair of rules that mirror a topic tree both ways is a loop
// across the brokers, cut at --max-hops.
func TestBridgeTwoBrokers(t *testing.T) {
	local, cloud := testbroker.Mosquitto(t).URL(), testbroker.Mosquitto(t).URL()
	dir := writeRules(t, `
rules:
  - name: up
    topic: sensors/{room}/temperature
    actions:
      - publish: {broker: cloud, topic: "site1/{{ room }}/temperature", payload: "{{ raw }}", qos: 1}
  - name: down
    broker: cloud
    topic: site1/cmd/{device}
    actions:
      - publish: {broker: default, topic: "cmd/{{ device }}", payload: "{{ raw }}", qos: 1}
  - name: mirror-up
    topic: mirror/#
    actions: [{publish: {broker: cloud, topic: "{{ topic }}", payload: "{{ raw }}"}}]
  - name: mirror-down
    broker: cloud
    topic: mirror/#
    actions: [{publish: {topic: "{{ topic }}", payload: "{{ raw }}", broker: default}}]
`)
	a := start(t, Config{Rules: []string{dir}, Broker: local, MaxHops: 4,
		Brokers: []BrokerConfig{{Name: "cloud", URL: cloud}}})
	waitFor(t, 10*time.Second, "ready", a.Ready)
	if bs := a.Brokers(); len(bs) != 2 || bs[0].Name != "default" || bs[1].Name != "cloud" || !bs[1].Connected {
		t.Fatalf("Brokers() = %+v", bs)
	}

	cloudSub := testbroker.Subscribe(t, cloud, "site1/#", "mirror/#")
	localSub := testbroker.Subscribe(t, local, "cmd/#")
	testbroker.Publish(t, local, "sensors/kitchen/temperature", []byte("21.5"), 1, false)
	cloudSub.Expect(t, 10*time.Second, "site1/kitchen/temperature", "21.5")
	testbroker.Publish(t, cloud, "site1/cmd/heater", []byte("on"), 1, false)
	localSub.Expect(t, 10*time.Second, "cmd/heater", "on")

	// The mirror: local → cloud (hop 1) → local (2) → cloud (3) → local
	// (4), then cut.
	testbroker.Publish(t, local, "mirror/x", []byte("m"), 1, false)
	waitFor(t, 10*time.Second, "the loop to be cut", func() bool {
		c := a.Counters()
		return c.Rule("mirror-up").LoopCutoffs.Load()+c.Rule("mirror-down").LoopCutoffs.Load() == 1
	})
	fires := a.Counters().Rule("mirror-up").Fires.Load() + a.Counters().Rule("mirror-down").Fires.Load()
	if fires != 5 {
		t.Errorf("the mirror rules fired %d times, want 5 (hops 0..4, the last one cut)", fires)
	}
	if n := a.Counters().Rule("up").LoopCutoffs.Load() + a.Counters().Rule("down").LoopCutoffs.Load(); n != 0 {
		t.Errorf("the bridge rules were cut %d times", n)
	}
}

// TestOneBrokerDown: with the cloud broker unreachable the local one keeps
// working, and /readyz says which broker is missing.
func TestOneBrokerDown(t *testing.T) {
	local := testbroker.Mosquitto(t).URL()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	down := "tcp://" + ln.Addr().String()
	ln.Close() // nothing listens there now
	dir := writeRules(t, `
rules:
  - name: relay
    topic: in/#
    actions: [{publish: {topic: "out/{{ topic }}", payload: "{{ raw }}"}}]
  - name: cloud-side
    broker: cloud
    topic: c/#
    actions: [{log: x}]
`)
	a := start(t, Config{Rules: []string{dir}, Broker: local, Brokers: []BrokerConfig{{Name: "cloud", URL: down}}})
	waitFor(t, 10*time.Second, "the default broker to be ready", func() bool { return a.Brokers()[0].Ready })
	sub := testbroker.Subscribe(t, local, "out/#")
	testbroker.Publish(t, local, "in/a", []byte("1"), 0, false)
	sub.Expect(t, 10*time.Second, "out/in/a", "1")
	if a.Ready() {
		t.Error("Ready with the cloud broker down")
	}
	why := httpapi.NotReady(a)
	if !strings.Contains(why, "not connected to the broker cloud ("+down+")") || strings.Contains(why, "default") {
		t.Errorf("not ready because %q, want the cloud broker named, not the default one", why)
	}
}

// TestBrokerNamesChecked: a rule naming a broker the config lacks does not
// start; the names of the config are checked.
func TestBrokerNamesChecked(t *testing.T) {
	dir := writeRules(t, "rules:\n  - {name: r, broker: clod, topic: a, actions: [{log: x}]}\n")
	_, err := Start(Config{Rules: []string{dir}, Broker: "tcp://127.0.0.1:1", NoWatch: true, HTTP: "off",
		Brokers: []BrokerConfig{{Name: "cloud", URL: "tcp://127.0.0.1:1"}}})
	if err == nil || !strings.Contains(err.Error(), `no broker "clod" in the config (brokers: default, cloud) (did you mean "cloud"?)`) {
		t.Errorf("Start = %v, want the unknown broker named", err)
	}
	for _, bad := range [][]BrokerConfig{
		{{Name: "default", URL: "tcp://h:1"}},
		{{Name: "a", URL: "tcp://h:1"}, {Name: "a", URL: "tcp://h:2"}},
		{{Name: "a b", URL: "tcp://h:1"}},
		{{Name: "a"}},
	} {
		if _, err := Start(Config{Rules: []string{dir}, Broker: "tcp://127.0.0.1:1", NoWatch: true, HTTP: "off", Brokers: bad}); err == nil {
			t.Errorf("Start with brokers %+v succeeded", bad)
		}
	}
}
