package actions

import (
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/mqtt-rules/mqtt-rules/internal/topic"
)

// KindPublish publishes an MQTT message: `- publish: {topic, payload, qos,
// retain}` (docs/rules.md, "Actions").
var KindPublish = register(&Kind{
	Name: "publish",
	Keys: []string{"topic", "payload", "qos", "retain"},
	Synonyms: map[string]string{
		"body": "payload", "message": "payload", "msg": "payload", "data": "payload",
		"retained": "retain", "url": "topic",
	},
	Compile: compilePublish,
})

// PublishSpec is a compiled publish action.
type PublishSpec struct {
	Topic   Template
	Payload Template // nil: the triggering message's payload
	QoS     byte
	Retain  bool
}

func compilePublish(d *Decoder) Spec {
	spec := &PublishSpec{}
	for _, kv := range d.Pairs() {
		switch kv.Key.Value {
		case "topic":
			spec.Topic = d.Template(kv.Value, "topic")
			if spec.Topic != nil && spec.Topic.IsLiteral() {
				if err := topic.ValidateName(spec.Topic.Source()); err != nil {
					d.KeyErrorf(kv.Value, "topic", "%v", err)
				}
			}
		case "payload":
			spec.Payload = d.Template(kv.Value, "payload")
		case "qos":
			q, _ := d.Int(kv.Value, "qos", 0, 2)
			spec.QoS = byte(q)
		case "retain":
			spec.Retain, _ = d.Bool(kv.Value, "retain")
		}
	}
	if spec.Topic == nil {
		d.Missing("topic", "")
	}
	if d.Failed() {
		return nil
	}
	return spec
}

// Templates implements Spec.
func (s *PublishSpec) Templates() []Template {
	if s.Payload == nil {
		return []Template{s.Topic}
	}
	return []Template{s.Topic, s.Payload}
}

// PublishTopic returns the topic the action publishes to: loop analysis
// (docs/reliability.md) reads it.
func (s *PublishSpec) PublishTopic() Template { return s.Topic }

// Render implements Spec.
func (s *PublishSpec) Render(r Renderer, payload []byte) (Action, error) {
	t, err := r.Render(s.Topic)
	if err != nil {
		return nil, fmt.Errorf("topic: %w", err)
	}
	if err := topic.ValidateName(t); err != nil {
		return nil, fmt.Errorf("rendered topic: %w", err)
	}
	if s.Payload != nil {
		if payload, err = r.Append(nil, s.Payload); err != nil {
			return nil, fmt.Errorf("payload: %w", err)
		}
	}
	return &Publish{Topic: t, Payload: payload, QoS: s.QoS, Retain: s.Retain}, nil
}

// Describe implements Spec.
func (s *PublishSpec) Describe() []Field {
	payload := Field{Name: "payload", Text: true, Note: "the message's payload"}
	if s.Payload != nil {
		payload.Value, payload.Note = s.Payload.Source(), ""
	}
	return []Field{
		{Name: "topic", Value: s.Topic.Source(), Bare: true},
		{Name: "qos", Value: strconv.Itoa(int(s.QoS))},
		{Name: "retain", Value: strconv.FormatBool(s.Retain)},
		payload,
	}
}

// Publish is a rendered MQTT publish. Its topic has been validated (not
// empty, no wildcards).
type Publish struct {
	Topic   string
	Payload []byte
	QoS     byte
	Retain  bool

	// Properties are MQTT 5 properties to send with it; nil: none. Over
	// an MQTT 3.1.1 connection they are dropped (docs/mqtt5.md).
	Properties *Properties
	// Broker names the connection to publish on (docs/brokers.md); "":
	// the default broker.
	Broker string
}

// Properties are the MQTT 5 properties of a message that rules read
// (`properties` in the environment) and publish actions set
// (docs/mqtt5.md). The engine's MQTT client fills them for received
// messages and sends them with publishes over MQTT 5.
type Properties struct {
	User            []UserProperty // in order; a name may repeat
	ContentType     string
	ResponseTopic   string
	CorrelationData []byte
	// MessageExpiry is the message expiry interval in seconds, when set.
	MessageExpiry *uint32
	// PayloadFormat is the payload format indicator (0 bytes, 1 UTF-8),
	// when set.
	PayloadFormat *byte
}

// UserProperty is one MQTT 5 user property.
type UserProperty struct{ Name, Value string }

// Fields implements Action.
func (p *Publish) Fields() []Field {
	return []Field{
		{Name: "topic", Value: p.Topic, Bare: true},
		{Name: "qos", Value: strconv.Itoa(int(p.QoS))},
		{Name: "retain", Value: strconv.FormatBool(p.Retain)},
		{Name: "payload", Value: string(p.Payload), Text: true},
	}
}

// MQTTMessage returns the message the action publishes: the engine's loop
// guard (docs/reliability.md) recognises it when it comes back.
func (p *Publish) MQTTMessage() *Publish { return p }

func (p *Publish) run(x *Executor, req *Request, once *reportOnce) {
	if x.pub == nil {
		once.claim()
		x.rep.ActionDone(req.Rule, req.Kind, fmt.Errorf("publish %s: %w", p.Topic, ErrNoConnection), 0)
		return
	}
	rule, kind, start := req.Rule, req.Kind, time.Now()
	x.pub.Publish(p, func(err error) {
		if !once.claim() {
			return // the Publisher broke its contract by calling done twice
		}
		if errors.Is(err, ErrQueueFull) {
			x.rep.Dropped(rule, kind, "queue_full")
			if n := x.pubDrops.Count(time.Now(), dropLogEvery); n > 0 {
				x.log.Warn("publish queue full, dropping publishes", "rule", rule, "action", kind.Name, "dropped", n)
			}
		}
		if err != nil {
			err = fmt.Errorf("publish %s: %w", p.Topic, err)
		}
		x.rep.ActionDone(rule, kind, err, time.Since(start))
	})
}
