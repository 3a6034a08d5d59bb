// Package actions defines the action kinds of rule files — publish to
// MQTT, call HTTP webhooks, write log lines, … — one file per kind (see
// Kind), and runs them.
//
// The rules package compiles each action of a rule file through its Kind
// into a Spec; the engine renders a Spec for every firing into a Request
// (all templates evaluated) and hands it to an Executor. Nothing here
// evaluates expressions or knows about rules beyond their names.
package actions

import (
	"errors"
	"time"
)

// Request is one rendered action of one firing, with where it came from.
type Request struct {
	Kind  *Kind
	Rule  string // name of the rule that fired
	Topic string // topic of the message that fired it ("" for a timer firing without one)
	Key   string // the rule's state key for this firing
	Hop   int    // loop hop of the message that fired it: 0 for a message from outside the engine (docs/reliability.md)

	// Secrets are values to mask wherever the request is shown (logs,
	// errors, dead letters): what the rule's file took from the
	// environment (rules.Rule.EnvValues), longest first.
	Secrets []string

	// Action is the rendered action, of Kind.
	Action Action
}

// Reporter learns the outcome of every action and every drop. The engine
// implements it to keep per-rule counters; metrics hang off it too.
// Implementations must be safe for concurrent use and must not block.
type Reporter interface {
	// ActionDone is called once per Request when it finally succeeded or
	// failed (after any retries), with the time it took.
	ActionDone(rule string, kind *Kind, err error, took time.Duration)
	// Dropped is called when a request is not run at all, with the reason
	// as in the mqtt_rules_messages_dropped_total metric ("queue_full", ...).
	Dropped(rule string, kind *Kind, reason string)
}

// ErrQueueFull is the outcome of an action that was not run because the
// queue in front of its destination was full; it is counted as a drop with
// reason "queue_full".
var ErrQueueFull = errors.New("queue full")

// Publisher sends rendered publishes to the MQTT broker. The MQTT connection
// implements it.
type Publisher interface {
	// Publish queues p and calls done exactly once with the outcome: nil
	// once the broker took it (PUBACK for QoS 1), ErrQueueFull (possibly
	// before Publish returns) when its bounded queue is full, or another
	// error. It does not wait for the network, but may wait a bounded time
	// for room while connected (backpressure: internal/mqttc's
	// PublishBackpressure). p must not be changed after the call.
	Publish(p *Publish, done func(error))
}

// PropertyDropper is a Publisher that can tell whether the connection to a
// broker ("" the default one) drops MQTT 5 properties: it speaks MQTT
// 3.1.1 (docs/mqtt5.md).
type PropertyDropper interface {
	DropsProperties(broker string) bool
}

// LoopGuard decides whether a publish the executor makes for a rule after
// the fact — an exec's output — may be made: it is hop hops from an
// outside message, and chains of the engine's own publishes are cut at
// --max-hops (docs/reliability.md, "Loops"). The engine implements it.
type LoopGuard interface {
	AllowPublish(rule string, p *Publish, hop int) bool
}
