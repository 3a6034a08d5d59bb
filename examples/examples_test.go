// Package examples holds the rule sets users copy. This test plays the
// timelines their comments promise through the engine on a virtual clock.
package examples

import (
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mqtt-rules/mqtt-rules/actions"
	"github.com/mqtt-rules/mqtt-rules/engine"
	"github.com/mqtt-rules/mqtt-rules/rules"
)

var t0 = time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)

type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time  { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *clock) set(t time.Time) { c.mu.Lock(); defer c.mu.Unlock(); c.now = t }

type sink struct {
	c   *clock
	mu  sync.Mutex
	got []string
}

func (s *sink) Do(q actions.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	at := s.c.Now().Sub(t0)
	switch q.Kind {
	case actions.KindPublish:
		s.got = append(s.got, fmt.Sprintf("%v %s %s", at, q.Publish.Topic, q.Publish.Payload))
	case actions.KindLog:
		s.got = append(s.got, fmt.Sprintf("%v log %s", at, q.Log.Message))
	case actions.KindWebhook:
		s.got = append(s.got, fmt.Sprintf("%v webhook %s %s", at, q.Webhook.URL, q.Webhook.Body))
	}
}

// play loads a rule file, then sends each message at its offset, firing
// timers every second in between, up to the end offset.
func play(t *testing.T, file string, end time.Duration, msgs ...msg) []string {
	t.Helper()
	rs, err := rules.Load(file)
	if err != nil {
		t.Fatal(err)
	}
	c := &clock{now: t0}
	out := &sink{c: c}
	e := engine.New(engine.Config{Actions: out, Clock: c})
	e.SetRules(rs)
	step := func(to time.Duration) {
		for now := c.Now(); now.Before(t0.Add(to)); {
			now = now.Add(time.Second)
			if now.After(t0.Add(to)) {
				now = t0.Add(to)
			}
			c.set(now)
			e.Advance(now)
		}
	}
	for _, m := range msgs {
		step(m.at)
		e.Handle(engine.Message{Topic: m.topic, Payload: []byte(m.payload), Time: c.Now()})
	}
	step(end)
	return out.got
}

type msg struct {
	at             time.Duration
	topic, payload string
}

func check(t *testing.T, got []string, want ...string) {
	t.Helper()
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("got:\n  %s\nwant:\n  %s", strings.Join(got, "\n  "), strings.Join(want, "\n  "))
	}
}

func TestDoorOpen(t *testing.T) {
	got := play(t, "alerting/door-open.yaml", 10*time.Minute,
		msg{0, "zigbee2mqtt/garage/contact", `{"contact": false}`},
		msg{time.Minute, "zigbee2mqtt/garage/contact", `{"contact": false}`},
		msg{7 * time.Minute, "zigbee2mqtt/garage/contact", `{"contact": true}`},
		// Opened and closed within 5 minutes: no alert.
		msg{8 * time.Minute, "zigbee2mqtt/back/contact", `{"contact": false}`},
		msg{9 * time.Minute, "zigbee2mqtt/back/contact", `{"contact": true}`},
	)
	check(t, got,
		`5m0s alert/door/garage {"door":"garage","message":"garage open for 5 minutes","state":"open"}`,
		`5m0s log garage open for 5 minutes`,
		`7m0s alert/door/garage {"door":"garage","message":"garage closed again","state":"closed"}`,
	)
}

func TestSensorSilent(t *testing.T) {
	got := play(t, "alerting/sensor-silent.yaml", 60*time.Minute,
		msg{0, "sensors/attic/temperature", "21.5"},
		msg{10 * time.Minute, "sensors/attic/humidity", "40"},
		msg{40 * time.Minute, "sensors/attic/temperature", "20"},
	)
	check(t, got,
		`25m0s alert/silent/attic {"last_seen":"2026-11-25T12:10:00Z","last_topic":"sensors/attic/humidity","sensor":"attic","state":"silent"}`,
		`40m0s alert/silent/attic {"sensor":"attic","state":"back"}`,
		`55m0s alert/silent/attic {"last_seen":"2026-11-25T12:40:00Z","last_topic":"sensors/attic/temperature","sensor":"attic","state":"silent"}`,
	)
}

func TestStateChanged(t *testing.T) {
	got := play(t, "home-automation/state-changed.yaml", time.Minute,
		msg{0, "zigbee2mqtt/living/plug", `{"state":"OFF","power":0}`},
		msg{time.Second, "zigbee2mqtt/living/plug", `{"state":"OFF","power":0}`},
		msg{2 * time.Second, "zigbee2mqtt/living/plug", `{"state":"ON","power":65}`},
	)
	check(t, got,
		`2s home/events {"at":"2026-11-25T12:00:02Z","device":"plug","from":"OFF","room":"living","to":"ON"}`,
	)
}

func TestMotionLight(t *testing.T) {
	got := play(t, "home-automation/motion-light.yaml", 10*time.Minute,
		msg{0, "zigbee2mqtt/hallway/motion", `{"occupancy":true,"illuminance_lux":12}`},
		msg{time.Minute, "zigbee2mqtt/hallway/motion", `{"occupancy":false}`},
		msg{2 * time.Minute, "zigbee2mqtt/hallway/motion", `{"occupancy":true,"illuminance_lux":80}`},
		msg{3 * time.Minute, "zigbee2mqtt/hallway/motion", `{"occupancy":false}`},
		msg{4 * time.Minute, "zigbee2mqtt/hallway/motion", `{"occupancy":false}`},
	)
	check(t, got,
		`0s zigbee2mqtt/hallway/light/set {"brightness":200,"state":"ON"}`,
		`5m0s zigbee2mqtt/hallway/light/set {"state":"OFF"}`,
	)
}
