package control

import (
	"strings"
	"time"
	"unicode/utf8"

	mqtttopic "github.com/mqtt-rules/mqtt-rules/internal/topic"
	"github.com/mqtt-rules/mqtt-rules/rules"
)

// Offer takes a message the engine received when it is a control message
// (docs/homeassistant.md, "Control topics") and reports whether it did:
// a command on BASE/rule/<name>/set, /ack or /run is the controller's
// alone — rules do not see it. A command is checked here, on the
// subscriber's reader, and queued for Run: one that names no loaded rule,
// has an unknown or (ack, run) empty payload, is larger than MaxPayload or
// was retained (a stale command the broker replays on subscribing) is
// refused and counted as invalid; one over the rate or the queue's bound
// is dropped and counted (DropFlood).
//
// A retained discovery config of this engine, or a retained state topic
// of a rule not loaded, is set aside for Run to check (and clear when it
// is a removed rule's), apart from the commands: the broker replays them
// all on subscribing, and they must not crowd the queue out. They go to
// the rules as well — a state topic only when a rule's filter matches it,
// as the engine subscribes the state topics for this check alone. Offer
// never blocks; it takes payload.
func (c *Controller) Offer(topic string, payload []byte, retained bool) bool {
	if !c.topics {
		return false
	}
	rest, ok := strings.CutPrefix(topic, c.ruleTopics)
	if !ok {
		if retained && len(payload) > 0 && c.ownConfig(topic) {
			c.addStale(topic)
		}
		return false
	}
	name, verb, ok := strings.Cut(rest, "/")
	if !ok {
		return false
	}
	req := Request{Rule: name, Origin: OriginMQTT}
	switch verb {
	case "set":
		switch strings.ToLower(strings.TrimSpace(string(payload))) {
		case "on", "enable":
			req.Action = ActionEnable
		case "off", "disable":
			req.Action = ActionDisable
		}
	case "ack":
		req.Action, req.Key = ActionAck, string(payload)
		if strings.TrimSpace(req.Key) == AckAll {
			req.Key = "" // every firing key
		}
	case "run":
		req.Action, req.Payload = ActionRun, payload
	case "state":
		if retained && len(payload) > 0 {
			if rs := c.eng.Rules(); rs == nil || rs.Rule(name) == nil {
				c.addStale(topic)
			}
		}
		return !c.rulesWant(topic)
	default:
		return false // not ours
	}
	var why string
	switch {
	case len(payload) > MaxPayload:
		why = "payload larger than 1 KiB"
	case req.Action == "":
		why = "unknown payload (want ON, OFF, enable or disable)"
	case len(payload) == 0 && verb == "ack":
		why = `empty payload (clearing a retained command?); send ` + AckAll + ` to acknowledge every firing key, or the key`
	case len(payload) == 0:
		why = "empty payload (clearing a retained command?); a run needs a payload, {} will do"
	case verb == "ack" && !utf8.Valid(payload):
		why = "the key is not UTF-8"
	case retained:
		why = "retained command (publish commands without the retain flag)"
	default:
		if rs := c.eng.Rules(); rs == nil || rs.Rule(name) == nil {
			why = "no rule of that name is loaded"
		}
	}
	if why != "" {
		c.refuse(OriginMQTT, "", topic, why)
		return true
	}
	if !c.take(time.Now()) {
		c.drop(topic, "control messages come faster than the rate limit")
		return true
	}
	c.enqueue(command{req: req, topic: topic})
	return true
}

// addStale sets a retained topic aside for Run to check: each topic once,
// at most Config.MaxStale; beyond that it is dropped and counted
// (DropStale).
func (c *Controller) addStale(topic string) {
	c.mu.Lock()
	_, dup := c.stale[topic]
	full := !dup && len(c.stale) >= c.cfg.MaxStale
	if !dup && !full {
		if c.stale == nil {
			c.stale = map[string]struct{}{}
		}
		c.stale[topic] = struct{}{}
	}
	c.mu.Unlock()
	if full {
		c.eng.Counters().Drop(DropStale)
		if n, ok := c.staleLog.Allow(time.Now(), logEvery); ok {
			c.log.Warn("retained topic not checked for a removed rule: too many wait", "topic", topic, "max", c.cfg.MaxStale, "also_dropped", n)
		}
		return
	}
	if !dup {
		select {
		case c.wake <- struct{}{}:
		default:
		}
	}
}

// stateFilters are the filters a rule set subscribes that can match one
// of the engine's state topics.
type stateFilters struct {
	rs      *rules.RuleSet
	filters []string
}

// rulesWant reports whether a rule of the active set subscribed a filter
// matching topic, one of the engine's state topics.
func (c *Controller) rulesWant(topic string) bool {
	rs := c.eng.Rules()
	if rs == nil {
		return false
	}
	sf := c.stateFilters.Load()
	if sf == nil || sf.rs != rs {
		sf = &stateFilters{rs: rs}
		for _, f := range rs.Filters() {
			if mqtttopic.Overlap(f, c.ruleTopics+"+/state") {
				sf.filters = append(sf.filters, f)
			}
		}
		c.stateFilters.Store(sf)
	}
	for _, f := range sf.filters {
		if mqtttopic.Match(f, topic) {
			return true
		}
	}
	return false
}

// ownConfig reports whether topic is one of this engine's discovery
// config topics: PREFIX/<component>/<node_id>/<object_id>/config.
func (c *Controller) ownConfig(topic string) bool {
	if c.ha == nil {
		return false
	}
	rest, ok := strings.CutPrefix(topic, c.ha.Prefix+"/")
	if !ok {
		return false
	}
	rest, ok = strings.CutSuffix(rest, "/config")
	if !ok {
		return false
	}
	parts := strings.Split(rest, "/")
	return len(parts) == 3 && parts[1] == c.haNode
}

// enqueue hands a command to Run, dropping it when the queue is full.
func (c *Controller) enqueue(cmd command) {
	select {
	case c.queue <- cmd:
	default:
		c.drop(cmd.topic, "the control queue is full")
	}
}

// drop counts and logs (at a bounded rate) a control message dropped.
func (c *Controller) drop(topic, why string) {
	c.eng.Counters().Drop(DropFlood)
	if n, ok := c.dropLog.Allow(time.Now(), logEvery); ok {
		c.log.Warn("control message dropped", "topic", topic, "reason", why, "also_dropped", n)
	}
}

// take takes a token of the rate limit: Rate per second, at most Burst
// saved up.
func (c *Controller) take(now time.Time) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.tokensAt.IsZero() {
		c.tokens = min(float64(c.cfg.Burst), c.tokens+now.Sub(c.tokensAt).Seconds()*c.cfg.Rate)
	}
	c.tokensAt = now
	if c.tokens < 1 {
		return false
	}
	c.tokens--
	return true
}
