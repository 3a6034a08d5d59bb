package control

import (
	"strings"
	"time"
	"unicode/utf8"
)

// Offer takes a message the engine received when it is a control message
// (docs/homeassistant.md, "Control topics") and reports whether it did:
// a command on BASE/rule/<name>/set, /ack or /run is the controller's
// alone — rules do not see it. A command is checked here, on the
// subscriber's reader, and queued for Run: one that names no loaded rule,
// has an unknown payload, is larger than MaxPayload or was retained (a
// stale command the broker replays on subscribing) is refused and counted
// as invalid; one over the rate or the queue's bound is dropped and
// counted (DropFlood). A retained discovery config of this engine is
// also looked at (to clear a removed rule's), but left to the rules as
// well. Offer never blocks; it takes payload.
func (c *Controller) Offer(topic string, payload []byte, retained bool) bool {
	if !c.topics {
		return false
	}
	rest, ok := strings.CutPrefix(topic, c.ruleTopics)
	if !ok {
		if retained && len(payload) > 0 && c.ownConfig(topic) {
			c.enqueue(command{topic: topic, stale: true})
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
	case "run":
		req.Action, req.Payload = ActionRun, payload
	default:
		return false // the state topic, or not ours
	}
	var why string
	switch {
	case len(payload) > MaxPayload:
		why = "payload larger than 1 KiB"
	case req.Action == "":
		why = "unknown payload (want ON, OFF, enable or disable)"
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
