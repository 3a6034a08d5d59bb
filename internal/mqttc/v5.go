package mqttc

// MQTT 5 in the client: what its packets carry beyond 3.1.1's, and the
// limits the broker sets in CONNACK. In this file clause numbers
// ([MQTT-x.y.z-n]) and section numbers (§x.y.z) refer to the MQTT 5.0
// specification.

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/mqtt-rules/mqtt-rules/actions"
	"github.com/mqtt-rules/mqtt-rules/internal/mqttwire"
)

// The subscriber sends no Receive Maximum in CONNECT, which means 65535
// (§3.1.2.11.3): as under MQTT 3.1.1, how many QoS 1 and 2 messages the
// broker sends ahead of their acknowledgements is the broker's own limit
// (mosquitto's max_inflight_messages; BENCHMARKS.md runs it at 1000). The
// subscriber needs no lower bound: it acknowledges each message as soon
// as OnMessage returned, in one write per batch it read (about 1000 small
// messages in a 64 KiB read), and TCP pushes back while OnMessage waits.
// A Receive Maximum would also change the embedded broker: mochi v2.7.9
// then takes, for every packet the client sends, a path that read-locks
// its in-flight map twice (Inflight.NextImmediate calls GetAll), which
// deadlocks the connection when a publish to the client write-locks it
// in between; without one its send quota is 0 and that path is never
// taken. (TestOnMessageOrder/embedded/v5 hung on it.) 65535 ids is also
// the most QoS 2 messages that can await their PUBREL, so the broker
// cannot exceed it.

// topicAliasMaximum is the Topic Alias Maximum the subscriber sends in
// CONNECT: the broker may replace up to this many topic names by a
// number (§3.1.2.11.5). The publisher sends none (0: no aliases).
const topicAliasMaximum = 100

// appProps are the properties of an application message that
// Message.Properties carries.
const appProps = mqttwire.PropSet(1<<mqttwire.PropPayloadFormatIndicator | 1<<mqttwire.PropMessageExpiryInterval |
	1<<mqttwire.PropContentType | 1<<mqttwire.PropResponseTopic | 1<<mqttwire.PropCorrelationData | 1<<mqttwire.PropUserProperty)

// versionName names a protocol version as Options.Protocol does.
func versionName(v5 bool) string {
	if v5 {
		return "5"
	}
	return "3.1.1"
}

// protoError is a breach of MQTT 5 by the broker beyond what mqttwire's
// decoders refuse: the client ends the connection with a DISCONNECT that
// carries reason [MQTT-4.13.1-1].
type protoError struct {
	reason mqttwire.ReasonCode
	detail string
}

// Error returns the reason code's name and what was wrong.
func (e *protoError) Error() string { return e.reason.Name() + ": " + e.detail }

// disconnectReason returns the reason code of the DISCONNECT that the
// client sends before it closes a connection that err ended, and false
// when it sends none: the broker disconnected, or err is not the broker's
// breach of the protocol.
func disconnectReason(err error) (mqttwire.ReasonCode, bool) {
	var de *mqttwire.DecodeError
	var pe *protoError
	switch {
	case errors.Is(err, errBrokerDisconnect):
		return 0, false // [MQTT-3.14.4-1]: the connection is closed, nothing sent
	case errors.As(err, &de):
		return de.Reason, true
	case errors.As(err, &pe):
		return pe.reason, true
	case errors.Is(err, mqttwire.ErrMalformed):
		return mqttwire.ReasonMalformedPacket, true
	}
	return 0, false
}

// appendDisconnect5 appends an MQTT 5 DISCONNECT with reason and detail
// as its Reason String, which the broker may log (§3.14.2.2.3).
func appendDisconnect5(b []byte, reason mqttwire.ReasonCode, detail string) ([]byte, error) {
	if !utf8.ValidString(detail) || strings.IndexByte(detail, 0) >= 0 {
		detail = ""
	}
	if len(detail) > 200 {
		detail = detail[:200]
		for !utf8.ValidString(detail) {
			detail = detail[:len(detail)-1]
		}
	}
	return mqttwire.AppendDisconnect5(b, reason, &mqttwire.Properties{ReasonString: detail})
}

// brokerDisconnect is the error that ends a session the broker closed
// with an MQTT 5 DISCONNECT: its reason code, Reason String and Server
// Reference, e.g. `the broker sent DISCONNECT: 0x8b server shutting down
// (reason: "maintenance")`.
func brokerDisconnect(p mqttwire.Packet) error {
	var d mqttwire.Disconnect5
	if err := mqttwire.DecodeDisconnect5(p, &d); err != nil {
		return fmt.Errorf("%w: %w", errBrokerDisconnect, err)
	}
	re := &mqttwire.ReasonError{Packet: mqttwire.TypeDisconnect, Reason: d.Reason,
		ReasonString: d.Properties.ReasonString, ServerReference: d.Properties.ServerReference}
	return fmt.Errorf("%w: %s", errBrokerDisconnect, strings.TrimPrefix(re.Error(), "disconnected: "))
}

// connect5 returns the MQTT 5 CONNECT of cn. The subscriber's carries the
// will (with no will properties: no delay, as a 3.1.1 will), a Session
// Expiry Interval that keeps its session as 3.1.1's persistent session
// does (unless Options say otherwise), its Receive Maximum and Topic
// Alias Maximum; the publisher's a clean start whose session ends with the
// connection. Neither asks for enhanced authentication (§4.12).
func (c *Client) connect5(cn *conn, keepAlive uint16) ([]byte, error) {
	cp := mqttwire.Connect5{
		ClientID:   cn.id,
		CleanStart: cn.clean,
		KeepAlive:  keepAlive,
	}
	if c.s.Username != "" {
		cp.Username, cp.Password = c.s.Username, c.s.Password
	}
	if cn == c.sub {
		if w := c.s.Will; w != nil {
			cp.Will = &mqttwire.Will{Topic: w.Topic, Payload: w.Payload, QoS: w.QoS, Retain: w.Retain}
		}
		cp.Properties.TopicAliasMaximum = topicAliasMaximum // no Receive Maximum: see above
		cp.Properties.SessionExpiryInterval = c.s.expiry    // 0 with a clean session: absent
	}
	return mqttwire.AppendConnect5(nil, &cp)
}

// setV5 makes s an MQTT 5 session under the limits of the broker's
// CONNACK properties p: Maximum QoS, Retain Available, Maximum Packet
// Size and Receive Maximum for what s sends, Server Keep Alive for its
// keep-alive (§3.2.2.3).
func (s *session) setV5(p *mqttwire.Properties, aliasMax uint16, cfg func(keepAlive uint16) sessionConfig) {
	s.v5 = true
	s.aliasMax = aliasMax
	if p.Present.Has(mqttwire.PropMaximumQoS) {
		s.maxQoS = p.MaximumQoS
	}
	s.noRetain = p.Present.Has(mqttwire.PropRetainAvailable) && !p.RetainAvailable
	s.noSubIDs = p.Present.Has(mqttwire.PropSubscriptionIdentifierAvailable) && !p.SubIDAvailable
	s.maxPacket = p.MaximumPacketSize
	s.sendMax = p.ReceiveMaximum
	if s.sendMax == 0 {
		s.sendMax = 65535 // absent (§3.2.2.3.3)
	}
	if p.Present.Has(mqttwire.PropServerKeepAlive) { // [MQTT-3.2.2-21]
		s.configure(cfg(p.ServerKeepAlive))
	}
}

// errRetainNotAvailable refuses a retained publish to a broker that said
// Retain Available 0 [MQTT-3.2.2-14].
var errRetainNotAvailable = errors.New("the broker does not support retained messages (CONNACK Retain Available 0)")

// appendPublish5 is appendPublish under MQTT 5.
func (s *session) appendPublish5(b []byte, topic string, payload []byte, qos byte, retain, dup bool, id uint16, props *actions.Properties) ([]byte, error) {
	if retain && s.noRetain {
		return b, errRetainNotAvailable
	}
	start := len(b)
	var err error
	if props == nil {
		b, err = mqttwire.AppendPublish5(b, topic, payload, qos, retain, dup, id, nil)
	} else {
		b, err = appendPublishProps(b, topic, payload, qos, retain, dup, id, props)
	}
	if err != nil {
		return b, err
	}
	if n := len(b) - start; s.maxPacket != 0 && n > int(s.maxPacket) { // [MQTT-3.1.2-24]
		return b[:start], fmt.Errorf("PUBLISH of %d bytes is over the broker's Maximum Packet Size of %d", n, s.maxPacket)
	}
	return b, nil
}

// appendPublishProps appends a PUBLISH with props: a function of its own,
// so that a publish without properties does not pay for their conversion.
func appendPublishProps(b []byte, topic string, payload []byte, qos byte, retain, dup bool, id uint16, props *actions.Properties) ([]byte, error) {
	var wp mqttwire.Properties
	wireProperties(props, &wp)
	return mqttwire.AppendPublish5(b, topic, payload, qos, retain, dup, id, &wp)
}

// hasProperties reports whether p sets any property MQTT 5 would send.
func hasProperties(p *actions.Properties) bool {
	return len(p.User) > 0 || p.ContentType != "" || p.ResponseTopic != "" || len(p.CorrelationData) > 0 ||
		p.MessageExpiry != nil || p.PayloadFormat != nil
}

// wireProperties sets out to the properties of a publish (§3.3.2.3).
func wireProperties(p *actions.Properties, out *mqttwire.Properties) {
	out.ContentType = p.ContentType
	out.ResponseTopic = p.ResponseTopic
	out.CorrelationData = p.CorrelationData
	if p.MessageExpiry != nil {
		out.MessageExpiryInterval = *p.MessageExpiry
		out.Present = out.Present.With(mqttwire.PropMessageExpiryInterval)
	}
	if p.PayloadFormat != nil {
		out.PayloadFormatIndicator = *p.PayloadFormat
		out.Present = out.Present.With(mqttwire.PropPayloadFormatIndicator)
	}
	if len(p.User) > 0 {
		out.UserProperties = make([]mqttwire.StringPair, len(p.User))
		for i, u := range p.User {
			out.UserProperties[i] = mqttwire.StringPair{Key: u.Name, Value: u.Value}
		}
	}
}

// messageProps is Message.Properties with room for its pointer fields:
// one allocation for them all.
type messageProps struct {
	actions.Properties
	expiry uint32
	format byte
}

// messageProperties returns the application properties of a received
// PUBLISH (§3.3.2.3), or nil when it carried none. Strings are p's (which
// are copies); correlation data is copied out of the packet.
func messageProperties(p *mqttwire.Properties) *actions.Properties {
	if p.Present&appProps == 0 {
		return nil
	}
	m := &messageProps{}
	m.ContentType = p.ContentType
	m.ResponseTopic = p.ResponseTopic
	if p.Present.Has(mqttwire.PropCorrelationData) {
		m.CorrelationData = append([]byte{}, p.CorrelationData...)
	}
	if p.Present.Has(mqttwire.PropMessageExpiryInterval) {
		m.expiry = p.MessageExpiryInterval
		m.MessageExpiry = &m.expiry
	}
	if p.Present.Has(mqttwire.PropPayloadFormatIndicator) {
		m.format = p.PayloadFormatIndicator
		m.PayloadFormat = &m.format
	}
	if len(p.UserProperties) > 0 {
		m.User = make([]actions.UserProperty, len(p.UserProperties))
		for i, u := range p.UserProperties {
			m.User[i] = actions.UserProperty{Name: u.Key, Value: u.Value}
		}
	}
	return &m.Properties
}

// resolveAlias maps m's Topic Alias to its topic name (§3.3.2.3.4): a
// PUBLISH with both sets the alias, one with an empty topic name uses it.
// An alias above the Topic Alias Maximum s sent [MQTT-3.3.2-9] or one
// never set is a protocol error (0 mqttwire already refused
// [MQTT-3.3.2-8]).
func (s *session) resolveAlias(m *mqttwire.Publish5) error {
	a := m.Properties.TopicAlias
	if a == 0 {
		return nil
	}
	if a > s.aliasMax {
		return &protoError{mqttwire.ReasonTopicAliasInvalid,
			fmt.Sprintf("PUBLISH property Topic Alias %d is over the Topic Alias Maximum of %d", a, s.aliasMax)}
	}
	if s.aliases == nil {
		s.aliases = make([]string, int(s.aliasMax)+1)
	}
	if len(m.Topic) > 0 {
		s.aliases[a] = string(m.Topic)
		return nil
	}
	t := s.aliases[a]
	if t == "" {
		return &protoError{mqttwire.ReasonProtocolError,
			fmt.Sprintf("PUBLISH property Topic Alias %d without a topic name, and the alias maps none yet", a)}
	}
	m.Topic = []byte(t)
	return nil
}

// decodeAck decodes PUBACK, PUBREC, PUBREL or PUBCOMP in s's protocol: the
// packet id and, under MQTT 5, the reason code and its Reason String. A
// failure reason code is refused, e.g. `PUBACK refused: 0x87 not
// authorized`.
func (s *session) decodeAck(p mqttwire.Packet) (id uint16, reason mqttwire.ReasonCode, refused error, err error) {
	if !s.v5 {
		id, err = mqttwire.DecodeID(p)
		return id, 0, nil, err
	}
	if len(p.Body) == 2 { // the short form: success (§3.4.2.1)
		flags := byte(0)
		if p.Type() == mqttwire.TypePubrel {
			flags = mqttwire.HeaderPubrel & 0x0f
		}
		if p.Header&0x0f == flags {
			return uint16(p.Body[0])<<8 | uint16(p.Body[1]), 0, nil, nil
		}
	}
	var a mqttwire.Ack5
	if err := mqttwire.DecodeAck5(p, &a); err != nil {
		return 0, 0, nil, err
	}
	return a.ID, a.Reason, a.Err(p.Type()), nil
}

// errNoEnhancedAuth refuses an AUTH packet: the client never starts
// enhanced authentication, and the server may send AUTH only in one
// [MQTT-4.12.0-6].
var errNoEnhancedAuth = &protoError{mqttwire.ReasonProtocolError, "AUTH from the broker, but the client did not ask for enhanced authentication"}

// subscriberPacket5 is subscriberPacket under MQTT 5.
func (c *Client) subscriberPacket5(s *session, p mqttwire.Packet) error {
	switch p.Type() {
	case mqttwire.TypePublish:
		var m mqttwire.Publish5
		if err := mqttwire.DecodePublish5(p, &m); err != nil {
			return err
		}
		if err := s.resolveAlias(&m); err != nil {
			return err
		}
		if s.copies.isCopy(&m) {
			return c.ackCopy(s, &m)
		}
		props := messageProperties(&m.Properties)
		switch m.QoS {
		case 0:
			c.deliver(&m.Publish, props, nil, 0)
		case 1:
			c.deliver(&m.Publish, props, s, mqttwire.TypePuback<<4)
		case 2:
			if _, seen := c.qos2In[m.ID]; !seen {
				if c.deliver(&m.Publish, props, s, mqttwire.TypePubrec<<4) {
					c.qos2In[m.ID] = struct{}{}
				}
				return nil
			}
			b := s.begin()
			b = mqttwire.AppendAck(b, mqttwire.TypePubrec<<4, m.ID)
			s.end(b)
		}
	case mqttwire.TypePubrel:
		id, _, _, err := s.decodeAck(p)
		if err != nil {
			return err
		}
		reason := mqttwire.ReasonSuccess
		if _, ok := c.qos2In[id]; !ok {
			reason = mqttwire.ReasonPacketIdentifierNotFound // §3.7.2.1
		}
		delete(c.qos2In, id)
		b := s.begin()
		b, _ = mqttwire.AppendAck5(b, mqttwire.TypePubcomp<<4, id, reason, nil)
		s.end(b)
	case mqttwire.TypeSuback:
		var a mqttwire.Suback5
		if err := mqttwire.DecodeSuback5(p, &a); err != nil {
			return err
		}
		s.acked(a.ID, reasonBytes(a.Reasons), a.Properties.ReasonString)
	case mqttwire.TypeUnsuback:
		var a mqttwire.Unsuback5
		if err := mqttwire.DecodeUnsuback5(p, &a); err != nil {
			return err
		}
		s.acked(a.ID, reasonBytes(a.Reasons), a.Properties.ReasonString)
	case mqttwire.TypePuback, mqttwire.TypePubcomp, mqttwire.TypePubrec:
		// The end of a status publish (Options.OnlineMessage, Will).
		id, reason, refused, err := s.decodeAck(p)
		if err != nil {
			return err
		}
		if p.Type() == mqttwire.TypePubrec && refused == nil {
			b := s.begin()
			b = mqttwire.AppendAck(b, mqttwire.HeaderPubrel, id)
			s.end(b)
			return nil
		}
		if refused != nil {
			c.sub.log.Warn("the broker refused a status publish", "err", refused)
		}
		s.acked(id, []byte{byte(reason)}, "")
	case mqttwire.TypeDisconnect:
		return brokerDisconnect(p)
	case mqttwire.TypeAuth:
		return errNoEnhancedAuth
	case mqttwire.TypePingresp:
	default:
		return &protoError{mqttwire.ReasonProtocolError, "unexpected " + mqttwire.TypeName(p.Type()) + " from the broker"}
	}
	return nil
}

// copyGroup recognizes the copies of one message that a broker sends
// once per matching subscription (MQTT 5 §3.3.4 allows it; mosquitto
// does so to MQTT 5 clients): each carries the Subscription Identifiers
// of its subscriptions only, and they come one after the other, as the
// broker queues them together. A PUBLISH is a copy when it has the
// topic, payload, QoS and retain flag of the one before it and none of
// the identifiers seen on them: a message published again matches a
// subscription already seen. Each filter having its own identifier
// (subscribeNow), the reader delivers each message once, as it does under
// 3.1.1.
type copyGroup struct {
	key    []byte // topic, NUL, payload; NUL is in no topic [MQTT-4.7.3-2]
	qos    byte
	retain bool
	ids    []uint32 // every identifier of the message's copies so far
	valid  bool
}

// isCopy reports whether m is a copy of the message before it, and
// records it.
func (g *copyGroup) isCopy(m *mqttwire.Publish5) bool {
	ids := m.Properties.SubscriptionIdentifiers
	if len(ids) == 0 {
		g.valid = false
		return false
	}
	if g.valid && m.QoS == g.qos && m.Retain == g.retain && len(g.key) == len(m.Topic)+1+len(m.Payload) &&
		string(g.key[:len(m.Topic)]) == string(m.Topic) && string(g.key[len(m.Topic)+1:]) == string(m.Payload) {
		seen := false
		for _, id := range ids {
			seen = seen || slices.Contains(g.ids, id)
		}
		if !seen {
			g.ids = append(g.ids, ids...)
			return true
		}
	}
	g.key = append(append(append(g.key[:0], m.Topic...), 0), m.Payload...)
	if cap(g.key) > maxKeepBuf {
		g.key, g.valid = nil, false
		return false
	}
	g.qos, g.retain, g.valid = m.QoS, m.Retain, true
	g.ids = append(g.ids[:0], ids...)
	return false
}

// ackCopy acknowledges a copy of a message delivered already, which is
// not delivered again: PUBACK at QoS 1; PUBREC at QoS 2, its id recorded
// as for a delivered one (the PUBREL follows).
func (c *Client) ackCopy(s *session, m *mqttwire.Publish5) error {
	switch m.QoS {
	case 1:
		b := s.begin()
		b = mqttwire.AppendAck(b, mqttwire.TypePuback<<4, m.ID)
		s.end(b)
	case 2:
		c.qos2In[m.ID] = struct{}{}
		b := s.begin()
		b = mqttwire.AppendAck(b, mqttwire.TypePubrec<<4, m.ID)
		s.end(b)
	}
	return nil
}

// reasonBytes returns reason codes as bytes.
func reasonBytes(rs []mqttwire.ReasonCode) []byte {
	b := make([]byte, len(rs))
	for i, r := range rs {
		b[i] = byte(r)
	}
	return b
}

// publisherPacket5 is publisherPacket under MQTT 5: a failure reason code
// in PUBACK, or in PUBREC (which ends the exchange, no PUBREL follows
// [MQTT-4.3.3-4]), or in PUBCOMP is the error of that publish.
func (c *Client) publisherPacket5(s *session, p mqttwire.Packet) error {
	switch p.Type() {
	case mqttwire.TypePuback, mqttwire.TypePubcomp:
		id, _, refused, err := s.decodeAck(p)
		if err != nil {
			return err
		}
		c.ackPublish(s, id, refused)
	case mqttwire.TypePubrec:
		id, _, refused, err := s.decodeAck(p)
		if err != nil {
			return err
		}
		if refused != nil {
			c.ackPublish(s, id, refused)
			return nil
		}
		c.received(s, id)
	case mqttwire.TypePingresp:
	case mqttwire.TypeDisconnect:
		return brokerDisconnect(p)
	case mqttwire.TypeAuth:
		return errNoEnhancedAuth
	case mqttwire.TypePublish:
		// The publisher subscribes to nothing; acknowledge and drop.
		var m mqttwire.Publish5
		if err := mqttwire.DecodePublish5(p, &m); err != nil {
			return err
		}
		if err := s.resolveAlias(&m); err != nil {
			return err
		}
		if m.QoS > 0 {
			h := mqttwire.TypePuback << 4
			if m.QoS == 2 {
				h = mqttwire.TypePubrec << 4
			}
			b := s.begin()
			b = mqttwire.AppendAck(b, h, m.ID)
			s.end(b)
		}
	case mqttwire.TypePubrel:
		id, _, _, err := s.decodeAck(p)
		if err != nil {
			return err
		}
		b := s.begin()
		b = mqttwire.AppendAck(b, mqttwire.TypePubcomp<<4, id)
		s.end(b)
	default:
		return &protoError{mqttwire.ReasonProtocolError, "unexpected " + mqttwire.TypeName(p.Type()) + " from the broker"}
	}
	return nil
}
