package control

import (
	"bytes"
	"context"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/mqtt-rules/mqtt-rules/actions"
	"github.com/mqtt-rules/mqtt-rules/internal/homeassistant"
	mqtttopic "github.com/mqtt-rules/mqtt-rules/internal/topic"
	"github.com/mqtt-rules/mqtt-rules/rules"
)

// stateKey is what a rule's state topic says.
type stateKey struct {
	enabled    bool
	fires      uint64
	lastFired  int64 // unix nanoseconds; 0: never
	firingKeys int
}

// json is the state topic's payload,
// {"enabled":true,"fires":12,"last_fired":"RFC 3339" or null,"firing_keys":1}.
func (k stateKey) json() []byte {
	b := make([]byte, 0, 96)
	b = append(b, `{"enabled":`...)
	b = strconv.AppendBool(b, k.enabled)
	b = append(b, `,"fires":`...)
	b = strconv.AppendUint(b, k.fires, 10)
	b = append(b, `,"last_fired":`...)
	if k.lastFired == 0 {
		b = append(b, "null"...)
	} else {
		b = append(b, '"')
		b = time.Unix(0, k.lastFired).UTC().AppendFormat(b, time.RFC3339Nano)
		b = append(b, '"')
	}
	b = append(b, `,"firing_keys":`...)
	b = strconv.AppendInt(b, int64(k.firingKeys), 10)
	return append(b, '}')
}

// Run carries out the queued control messages and keeps the state topics
// and discovery configs until ctx ends. Without Config.Topics it returns
// at once.
func (c *Controller) Run(ctx context.Context) {
	if !c.topics {
		return
	}
	tick := time.NewTicker(c.cfg.StateInterval)
	defer tick.Stop()
	c.checkRules()
	for {
		select {
		case <-ctx.Done():
			return
		case cmd := <-c.queue:
			_, _ = c.Do(cmd.req) // logged and counted
		case <-c.wake:
			c.flush()
		case <-tick.C:
			c.flush()
			if c.up {
				if c.rs != c.eng.Rules() {
					c.sync(false)
				}
				c.publishStates()
			}
		}
	}
}

// clearStale clears a retained discovery config or state topic of this
// engine unless a loaded rule has it, so Home Assistant removes the
// entity of a rule removed while the engine was not running.
func (c *Controller) clearStale(topic string) {
	if rest, ok := strings.CutPrefix(topic, c.ruleTopics); ok {
		name := strings.TrimSuffix(rest, "/state")
		if c.rs.Rule(name) != nil {
			return
		}
		c.log.Info("clearing the state topic of a rule no longer loaded", "topic", topic)
		c.publish(topic, nil)
		return
	}
	if c.ha == nil {
		return
	}
	if _, ok := c.desired()[topic]; !ok {
		c.log.Info("clearing the Home Assistant discovery config of a rule no longer loaded", "topic", topic)
		c.publish(topic, nil)
	}
}

// flush acts on what Do, RulesChanged, Connected, Offer (stale topics)
// and failed publishes asked for.
func (c *Controller) flush() {
	c.checkRules()
	c.mu.Lock()
	urgent, resync, failed := c.urgent, c.resync, c.failed
	gen, connUp := c.connGen, c.connUp
	c.urgent, c.resync, c.failed = nil, false, nil
	c.mu.Unlock()
	if gen != c.gen && connUp {
		// A connection came up since the last flush — maybe after one
		// that went down meanwhile: publish everything (again after a
		// reconnect: the broker may have restarted without its retained
		// messages).
		again := c.everUp
		c.gen, c.up, c.everUp = gen, true, true
		c.sync(again)
		resync = false
	} else if !connUp {
		c.gen, c.up = gen, false
	}
	if c.up && (resync || c.rs != c.eng.Rules()) {
		c.sync(false)
	}
	if !c.up || c.rs == nil {
		if len(failed) > 0 {
			// Kept for when the connection is back.
			c.mu.Lock()
			if c.failed == nil {
				c.failed = failed
			} else {
				for t := range failed {
					c.failed[t] = struct{}{}
				}
			}
			c.mu.Unlock()
		}
		// The stale topics wait in c.stale: the first sync, on
		// connecting, comes first.
		return
	}
	for name := range urgent {
		if r := c.rs.Rule(name); r != nil {
			c.publishState(r)
		}
	}
	for topic := range failed {
		c.retry(topic)
	}
	c.mu.Lock()
	stale := c.stale
	c.stale = nil
	c.mu.Unlock()
	for _, topic := range slices.Sorted(maps.Keys(stale)) {
		c.clearStale(topic)
	}
}

// checkRules warns, once for each rule set (at start and after every
// reload), of the rules whose topic filter matches the engine's own state
// topics: each state publish fires them. One that matches its own state
// topic loops: its firing changes its state, which is published again a
// StateInterval later and fires it again — a loop --max-hops does not
// see, as the controller, not a rule, publishes the states
// (docs/homeassistant.md, "Rules that see the state topics").
func (c *Controller) checkRules() {
	rs := c.eng.Rules()
	if rs == nil || rs == c.checked {
		return
	}
	c.checked = rs
	states := c.ruleTopics + "+/state"
	var (
		levels []string
		fs     []*mqtttopic.Filter
	)
	for _, r := range rs.Rules {
		if r.Broker != "" {
			continue // the state topics are on the default broker
		}
		fs = fs[:0]
		for _, f := range r.Filters {
			if mqtttopic.Overlap(f.MQTT, states) {
				fs = append(fs, f)
			}
		}
		if len(fs) == 0 {
			continue
		}
		matches := func(t string) bool {
			levels = mqtttopic.Split(t, levels[:0])
			for _, f := range fs {
				if mqtttopic.Match(f.MQTT, t) && (!f.Patterned || f.MatchPatterns(levels)) {
					return true
				}
			}
			return false
		}
		if own := c.stateTopic(r.Name); matches(own) {
			c.log.Warn("rule matches its own state topic: its firings change the state, whose publish fires it again, for ever (--max-hops does not see this loop); guard it with a condition or a narrower filter (docs/homeassistant.md)",
				"rule", r.Name, "topic", own)
			continue
		}
		for _, o := range rs.Rules {
			if t := c.stateTopic(o.Name); matches(t) {
				c.log.Warn("rule matches the engine's state topics: every state publish of the rule they are of fires it (docs/homeassistant.md)",
					"rule", r.Name, "topic", t)
				break
			}
		}
	}
}

// sync brings the retained topics in line with the active rule set:
// discovery configs first (removed ones cleared), then the state topics
// (those of removed rules cleared). all publishes every one again.
func (c *Controller) sync(all bool) {
	c.rs = c.eng.Rules()
	if c.rs == nil {
		return
	}
	if c.ha != nil {
		want := c.desired()
		for topic := range c.configs {
			if _, ok := want[topic]; !ok {
				c.publish(topic, nil)
				delete(c.configs, topic)
			}
		}
		for _, cfg := range c.wantList {
			if all || !bytes.Equal(c.configs[cfg.Topic], cfg.Payload) {
				c.publish(cfg.Topic, cfg.Payload)
				c.configs[cfg.Topic] = cfg.Payload
			}
		}
	}
	for name := range c.states {
		if c.rs.Rule(name) == nil {
			c.publish(c.stateTopic(name), nil)
			delete(c.states, name)
		}
	}
	if all {
		clear(c.states)
	}
	c.publishStates()
}

// desired returns the discovery configs of the active set, by topic.
func (c *Controller) desired() map[string][]byte {
	if c.wantRS != c.rs || c.want == nil {
		c.wantRS = c.rs
		var rs []*rules.Rule
		if c.rs != nil {
			rs = c.rs.Rules
		}
		c.wantList = homeassistant.Configs(*c.ha, rs)
		c.want = make(map[string][]byte, len(c.wantList))
		for _, cfg := range c.wantList {
			c.want[cfg.Topic] = cfg.Payload
		}
	}
	return c.want
}

// publishStates publishes the state of every rule whose state changed.
func (c *Controller) publishStates() {
	if c.rs == nil {
		return
	}
	for _, r := range c.rs.Rules {
		c.publishState(r)
	}
}

// publishState publishes a rule's state when it changed since the last
// publish.
func (c *Controller) publishState(r *rules.Rule) {
	k := c.state(r.Name)
	if last, ok := c.states[r.Name]; ok && last == k {
		return
	}
	c.states[r.Name] = k
	c.publish(c.stateTopic(r.Name), k.json())
}

// state reads a rule's state from the engine.
func (c *Controller) state(name string) stateKey {
	var k stateKey
	k.enabled, _, _ = c.eng.Enabled(name)
	s := c.eng.Counters().Rule(name)
	k.fires = s.Fires.Load()
	if t := s.LastFired(); !t.IsZero() {
		k.lastFired = t.UnixNano()
	}
	k.firingKeys = c.eng.FiringKeys(name)
	return k
}

func (c *Controller) stateTopic(rule string) string {
	return c.ruleTopics + rule + "/state"
}

// retry writes a topic whose publish failed again, as it should be now.
func (c *Controller) retry(topic string) {
	if rest, ok := strings.CutPrefix(topic, c.ruleTopics); ok {
		name := strings.TrimSuffix(rest, "/state")
		if r := c.rs.Rule(name); r != nil {
			delete(c.states, name)
			c.publishState(r)
		} else {
			c.publish(topic, nil)
		}
		return
	}
	if c.ha == nil {
		return
	}
	if p, ok := c.desired()[topic]; ok {
		c.configs[topic] = p
		c.publish(topic, p)
	} else {
		c.publish(topic, nil)
	}
}

// publish publishes a retained message at QoS 1; an empty payload clears
// the topic's retained message. A failed publish is retried on the next
// flush.
func (c *Controller) publish(topic string, payload []byte) {
	c.pub.Publish(&actions.Publish{Topic: topic, Payload: payload, QoS: 1, Retain: true}, func(err error) {
		if err == nil {
			return
		}
		if n, ok := c.pubLog.Allow(time.Now(), logEvery); ok {
			c.log.Warn("control: publish failed; will retry", "topic", topic, "err", err, "also_failed", n)
		}
		c.mu.Lock()
		if c.failed == nil {
			c.failed = map[string]struct{}{}
		}
		c.failed[topic] = struct{}{}
		c.mu.Unlock()
		// Run retries on its next tick: waking it now could spin while
		// the broker is unreachable.
	})
}
