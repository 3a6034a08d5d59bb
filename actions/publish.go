package actions

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/mqtt-rules/mqtt-rules/internal/topic"
	"github.com/mqtt-rules/mqtt-rules/internal/yamlnode"
)

// KindPublish publishes an MQTT message: `- publish: {topic, payload, qos,
// retain}` (docs/rules.md, "Actions").
var KindPublish = register(&Kind{
	Name: "publish",
	Keys: []string{"topic", "payload", "qos", "retain", "properties", "broker"},
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
	// Properties are the MQTT 5 properties to send (docs/mqtt5.md); nil:
	// none.
	Properties *PropertiesSpec
	// Broker is where to publish (docs/brokers.md): "" the default one.
	Broker string
}

// PropertiesSpec are the compiled `properties:` of a publish.
type PropertiesSpec struct {
	User            []UserPropertySpec // in written order
	ContentType     Template
	ResponseTopic   Template
	CorrelationData Template
	MessageExpiry   time.Duration // 0: none
}

// UserPropertySpec is one user property: its name and value template.
type UserPropertySpec struct {
	Name  string
	Value Template
}

var propertyKeys = []string{"user", "content_type", "response_topic", "correlation_data", "message_expiry"}

// compileProperties reads a publish's properties: mapping.
func compileProperties(d *Decoder, n *yaml.Node) *PropertiesSpec {
	kvs, ok := d.Mapping(n, "properties", strings.Join(propertyKeys, ", "))
	if !ok {
		return nil
	}
	p := &PropertiesSpec{}
	for _, kv := range kvs {
		switch k := kv.Key.Value; k {
		case "user":
			us, ok := d.Mapping(kv.Value, "properties.user", "user property names to value templates")
			if !ok {
				continue
			}
			for _, u := range us {
				if t := d.Template(u.Value, "properties.user."+u.Key.Value); t != nil {
					p.User = append(p.User, UserPropertySpec{Name: u.Key.Value, Value: t})
				}
			}
		case "content_type":
			p.ContentType = d.Template(kv.Value, "properties.content_type")
		case "response_topic":
			p.ResponseTopic = d.Template(kv.Value, "properties.response_topic")
		case "correlation_data":
			p.CorrelationData = d.Template(kv.Value, "properties.correlation_data")
		case "message_expiry":
			p.MessageExpiry, _ = d.Duration(kv.Value, "properties.message_expiry")
			if p.MessageExpiry > 0 && p.MessageExpiry < time.Second {
				d.KeyErrorf(kv.Value, "properties.message_expiry", "MQTT counts it in whole seconds: at least 1s")
			}
		default:
			d.KeyErrorf(kv.Key, "properties", "unknown key %q%s (properties: %s)", k, yamlnode.Suggest(k, propertyKeys), strings.Join(propertyKeys, ", "))
		}
	}
	return p
}

func compilePublish(d *Decoder) Spec {
	spec := &PublishSpec{Broker: d.RuleBroker}
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
		case "properties":
			spec.Properties = compileProperties(d, kv.Value)
		case "broker":
			spec.Broker, _ = d.Broker(kv.Value, "broker")
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
	out := []Template{s.Topic}
	if s.Payload != nil {
		out = append(out, s.Payload)
	}
	if p := s.Properties; p != nil {
		for _, u := range p.User {
			out = append(out, u.Value)
		}
		for _, t := range []Template{p.ContentType, p.ResponseTopic, p.CorrelationData} {
			if t != nil {
				out = append(out, t)
			}
		}
	}
	return out
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
	p := &Publish{Topic: t, Payload: payload, QoS: s.QoS, Retain: s.Retain, Broker: s.Broker}
	if s.Properties != nil {
		if p.Properties, err = s.Properties.render(r); err != nil {
			return nil, err
		}
	}
	return p, nil
}

// render evaluates the properties' templates; a property that renders
// empty is not sent.
func (ps *PropertiesSpec) render(r Renderer) (*Properties, error) {
	p := &Properties{}
	for _, u := range ps.User {
		v, err := r.Render(u.Value)
		if err != nil {
			return nil, fmt.Errorf("properties.user.%s: %w", u.Name, err)
		}
		p.User = append(p.User, UserProperty{Name: u.Name, Value: v})
	}
	for _, f := range []struct {
		name string
		t    Template
		dst  *string
	}{{"content_type", ps.ContentType, &p.ContentType}, {"response_topic", ps.ResponseTopic, &p.ResponseTopic}} {
		if f.t == nil {
			continue
		}
		v, err := r.Render(f.t)
		if err != nil {
			return nil, fmt.Errorf("properties.%s: %w", f.name, err)
		}
		*f.dst = v
	}
	if p.ResponseTopic != "" {
		if err := topic.ValidateName(p.ResponseTopic); err != nil {
			return nil, fmt.Errorf("properties.response_topic: %w", err)
		}
	}
	if ps.CorrelationData != nil {
		v, err := r.Append(nil, ps.CorrelationData)
		if err != nil {
			return nil, fmt.Errorf("properties.correlation_data: %w", err)
		}
		if len(v) > 0 {
			p.CorrelationData = v
		}
	}
	if ps.MessageExpiry > 0 {
		secs := uint32(min(ps.MessageExpiry/time.Second, math.MaxUint32))
		p.MessageExpiry = &secs
	}
	return p, nil
}

// Describe implements Spec.
func (s *PublishSpec) Describe() []Field {
	payload := Field{Name: "payload", Text: true, Note: "the message's payload"}
	if s.Payload != nil {
		payload.Value, payload.Note = s.Payload.Source(), ""
	}
	out := []Field{
		{Name: "topic", Value: s.Topic.Source(), Bare: true},
		{Name: "qos", Value: strconv.Itoa(int(s.QoS))},
		{Name: "retain", Value: strconv.FormatBool(s.Retain), Bool: true},
	}
	if s.Broker != "" {
		out = append(out, Field{Name: "broker", Value: s.Broker})
	}
	if p := s.Properties; p != nil {
		for _, u := range p.User {
			out = append(out, Field{Name: "properties.user." + u.Name, Value: u.Value.Source()})
		}
		for _, f := range []struct {
			name string
			t    Template
		}{{"content_type", p.ContentType}, {"response_topic", p.ResponseTopic}, {"correlation_data", p.CorrelationData}} {
			if f.t != nil {
				out = append(out, Field{Name: "properties." + f.name, Value: f.t.Source()})
			}
		}
		if p.MessageExpiry > 0 {
			out = append(out, Field{Name: "properties.message_expiry", Value: FormatDuration(p.MessageExpiry)})
		}
	}
	return append(out, payload)
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
	out := []Field{
		{Name: "topic", Value: p.Topic, Bare: true},
		{Name: "qos", Value: strconv.Itoa(int(p.QoS))},
		{Name: "retain", Value: strconv.FormatBool(p.Retain), Bool: true},
	}
	if p.Broker != "" {
		out = append(out, Field{Name: "broker", Value: p.Broker})
	}
	if pr := p.Properties; pr != nil {
		for _, u := range pr.User {
			out = append(out, Field{Name: "properties.user." + u.Name, Value: u.Value})
		}
		if pr.ContentType != "" {
			out = append(out, Field{Name: "properties.content_type", Value: pr.ContentType})
		}
		if pr.ResponseTopic != "" {
			out = append(out, Field{Name: "properties.response_topic", Value: pr.ResponseTopic})
		}
		if pr.CorrelationData != nil {
			out = append(out, Field{Name: "properties.correlation_data", Value: string(pr.CorrelationData)})
		}
		if pr.MessageExpiry != nil {
			out = append(out, Field{Name: "properties.message_expiry", Value: FormatDuration(time.Duration(*pr.MessageExpiry) * time.Second)})
		}
	}
	return append(out, Field{Name: "payload", Value: string(p.Payload), Text: true})
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
	if p.Properties != nil {
		x.noteDroppedProperties(req.Rule, p)
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
