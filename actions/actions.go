// Package actions runs what rules decide: publish to MQTT, call HTTP
// webhooks, write log lines.
//
// The engine renders every action of a firing into a Request (all templates
// already evaluated) and hands it to an Executor. Nothing here evaluates
// expressions or knows about rules beyond their names.
package actions

import (
	"errors"
	"log/slog"
	"net/http"
	"time"
)

// Kind says which action a Request carries.
type Kind uint8

// The action kinds, named as in rule files and in the `action` metric label.
const (
	KindPublish Kind = iota + 1
	KindWebhook
	KindLog
)

// String returns the name used in rule files, logs and metric labels.
func (k Kind) String() string {
	switch k {
	case KindPublish:
		return "publish"
	case KindWebhook:
		return "webhook"
	case KindLog:
		return "log"
	}
	return "unknown"
}

// Publish is a rendered MQTT publish. Its topic has been validated (not
// empty, no wildcards).
type Publish struct {
	Topic   string
	Payload []byte
	QoS     byte
	Retain  bool
}

// Webhook is a rendered HTTP request.
type Webhook struct {
	Method  string
	URL     string
	Header  http.Header
	Body    []byte
	Timeout time.Duration // per attempt
	Retries int           // extra attempts after the first, on network errors, 5xx and 429
}

// Log is a rendered log line.
type Log struct {
	Message string
	Level   slog.Level
}

// Request is one rendered action of one firing, with where it came from.
// Exactly one of Publish, Webhook and Log is set, as Kind says.
type Request struct {
	Kind  Kind
	Rule  string // name of the rule that fired
	Topic string // topic of the message that fired it ("" for a timer firing without one)
	Key   string // the rule's state key for this firing
	Hop   int    // loop hop of the message that fired it: 0 for a message from outside the engine

	// Secrets are values to mask wherever the request is shown (logs,
	// errors, dead letters): what the rule's file took from the
	// environment (rules.Rule.EnvValues), longest first.
	Secrets []string

	Publish *Publish
	Webhook *Webhook
	Log     *Log
}

// Reporter learns the outcome of every action and every drop. The engine
// implements it to keep per-rule counters; metrics hang off it too.
// Implementations must be safe for concurrent use and must not block.
type Reporter interface {
	// ActionDone is called once per Request when it finally succeeded or
	// failed (after any retries), with the time it took.
	ActionDone(rule string, kind Kind, err error, took time.Duration)
	// Dropped is called when a request is not run at all, with the reason
	// as in the mqtt_rules_messages_dropped_total metric ("queue_full", ...).
	Dropped(rule string, kind Kind, reason string)
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
