package mqttwire

import (
	"fmt"
)

// Connect5 is what an MQTT 5 CONNECT carries (§3.1).
type Connect5 struct {
	ClientID   string
	CleanStart bool
	KeepAlive  uint16 // seconds
	Username   string // sent when not empty
	Password   string // sent when not empty; MQTT 5 allows it without a user name (§3.1.2.9)
	Will       *Will  // nil: no will
	Properties Properties
}

// Will is the will message of a CONNECT (§3.1.2.5, §3.1.3.2). A decoded
// Payload aliases the packet.
type Will struct {
	Topic      string
	Payload    []byte
	QoS        byte
	Retain     bool
	Properties Properties
}

// CONNECT flags of MQTT 5 beyond those of 3.1.1 (§3.1.2.3).
const (
	connectFlagReserved byte = 0x01
	connectFlagWill     byte = 0x04
	connectFlagWillQoS  byte = 0x18
	connectFlagRetain   byte = 0x20
)

// AppendConnect5 appends an MQTT 5 CONNECT (protocol version 5). Strings
// that MQTT cannot carry (too long, ill-formed UTF-8), properties CONNECT
// or a will may not carry, and a will QoS over 2 are errors.
func AppendConnect5(b []byte, c *Connect5) ([]byte, error) {
	for _, f := range []struct{ name, s string }{{"client identifier", c.ClientID}, {"user name", c.Username}} {
		if problem := stringProblem(f.s); problem != "" {
			return b, fmt.Errorf("CONNECT %s: %s", f.name, problem)
		}
	}
	if len(c.Password) > MaxStringLength {
		return b, fmt.Errorf("CONNECT password: %d bytes is over the MQTT limit of %d", len(c.Password), MaxStringLength)
	}
	pn, send, err := propsLen(&c.Properties, TypeConnect)
	if err != nil {
		return b, err
	}
	if send.Has(PropAuthenticationData) && !send.Has(PropAuthenticationMethod) { // §3.1.2.11.10
		return b, fmt.Errorf("CONNECT property Authentication Data without an Authentication Method")
	}
	n := 10 + VarIntLen(pn) + pn + 2 + len(c.ClientID) // protocol name, version, flags, keep alive; properties; client id
	var flags byte
	if c.CleanStart {
		flags |= ConnectFlagClean
	}
	var wn int
	var wsend PropSet
	if w := c.Will; w != nil {
		if problem := stringProblem(w.Topic); problem != "" {
			return b, fmt.Errorf("CONNECT will topic: %s", problem)
		}
		if len(w.Payload) > MaxStringLength {
			return b, fmt.Errorf("CONNECT will payload: %d bytes is over the MQTT limit of %d", len(w.Payload), MaxStringLength)
		}
		if w.QoS > 2 {
			return b, fmt.Errorf("CONNECT will QoS %d, want 0, 1 or 2", w.QoS)
		}
		if wn, wsend, err = propsLen(&w.Properties, ctxWill); err != nil {
			return b, err
		}
		flags |= connectFlagWill | w.QoS<<3
		if w.Retain {
			flags |= connectFlagRetain
		}
		n += VarIntLen(wn) + wn + 2 + len(w.Topic) + 2 + len(w.Payload)
	}
	if c.Username != "" {
		flags |= ConnectFlagUsername
		n += 2 + len(c.Username)
	}
	if c.Password != "" {
		flags |= ConnectFlagPassword
		n += 2 + len(c.Password)
	}
	if n > MaxRemainingLength {
		return b, fmt.Errorf("CONNECT of %d bytes is over the MQTT limit of %d", n, MaxRemainingLength)
	}
	b = append(b, TypeConnect<<4)
	b = AppendRemainingLength(b, n)
	b = AppendString(b, "MQTT")
	b = append(b, Version5, flags, byte(c.KeepAlive>>8), byte(c.KeepAlive))
	b = appendProps(b, &c.Properties, send, pn)
	b = AppendString(b, c.ClientID)
	if w := c.Will; w != nil {
		b = appendProps(b, &w.Properties, wsend, wn)
		b = AppendString(b, w.Topic)
		b = appendBinary(b, w.Payload)
	}
	if c.Username != "" {
		b = AppendString(b, c.Username)
	}
	if c.Password != "" {
		b = AppendString(b, c.Password)
	}
	return b, nil
}

// ConnectVersion returns the protocol version of a CONNECT: Version311,
// Version5, or another level that a server refuses (§3.1.2.2). A protocol
// name other than "MQTT" is an error with ReasonUnsupportedProtocolVersion
// [MQTT-3.1.2-1].
func ConnectVersion(p Packet) (byte, error) {
	if p.Type() != TypeConnect {
		return 0, malformed("got %s, want CONNECT", TypeName(p.Type()))
	}
	name, rest, problem := readField(p.Body)
	if problem != "" {
		return 0, malformed("CONNECT protocol name: %s", problem)
	}
	if string(name) != "MQTT" {
		return 0, &DecodeError{Reason: ReasonUnsupportedProtocolVersion, Detail: fmt.Sprintf("CONNECT protocol name %q, want \"MQTT\"", name)}
	}
	if len(rest) < 1 {
		return 0, malformed("CONNECT without a protocol version")
	}
	return rest[0], nil
}

// DecodeConnect5 decodes an MQTT 5 CONNECT (§3.1) into c, all of which it
// sets. A protocol version other than 5 is an error with
// ReasonUnsupportedProtocolVersion; see ConnectVersion to tell the
// versions apart first.
func DecodeConnect5(p Packet, c *Connect5) error {
	*c = Connect5{}
	v, err := ConnectVersion(p)
	if err != nil {
		return err
	}
	if v != Version5 {
		return &DecodeError{Reason: ReasonUnsupportedProtocolVersion, Detail: fmt.Sprintf("CONNECT protocol version %d, want 5", v)}
	}
	if err := checkFlags(p, 0); err != nil {
		return err
	}
	b := p.Body[7:] // protocol name and version
	if len(b) < 3 {
		return malformed("CONNECT cut short after the protocol version")
	}
	flags := b[0]
	c.KeepAlive = uint16(b[1])<<8 | uint16(b[2])
	b = b[3:]
	if flags&connectFlagReserved != 0 { // [MQTT-3.1.2-3]
		return malformed("CONNECT reserved flag set")
	}
	c.CleanStart = flags&ConnectFlagClean != 0
	willQoS := flags & connectFlagWillQoS >> 3
	if flags&connectFlagWill == 0 && flags&(connectFlagWillQoS|connectFlagRetain) != 0 { // [MQTT-3.1.2-11], [MQTT-3.1.2-13]
		return malformed("CONNECT will QoS or will retain without a will")
	}
	if willQoS == 3 { // [MQTT-3.1.2-12]
		return malformed("CONNECT will QoS 3")
	}
	if b, err = decodeProps(b, TypeConnect, &c.Properties); err != nil {
		return err
	}
	if c.Properties.Present.Has(PropAuthenticationData) && !c.Properties.Present.Has(PropAuthenticationMethod) { // §3.1.2.11.10
		return protocolErr("CONNECT property Authentication Data without an Authentication Method")
	}
	// The payload, in the order of [MQTT-3.1.3-1].
	var s []byte
	var problem string
	if s, b, problem = readString(b); problem != "" {
		return malformed("CONNECT client identifier: %s", problem)
	}
	c.ClientID = string(s)
	if flags&connectFlagWill != 0 {
		w := &Will{QoS: willQoS, Retain: flags&connectFlagRetain != 0}
		if b, err = decodeProps(b, ctxWill, &w.Properties); err != nil {
			return err
		}
		if s, b, problem = readString(b); problem != "" {
			return malformed("CONNECT will topic: %s", problem)
		}
		w.Topic = string(s)
		if w.Payload, b, problem = readField(b); problem != "" {
			return malformed("CONNECT will payload: %s", problem)
		}
		c.Will = w
	}
	if flags&ConnectFlagUsername != 0 {
		if s, b, problem = readString(b); problem != "" {
			return malformed("CONNECT user name: %s", problem)
		}
		c.Username = string(s)
	}
	if flags&ConnectFlagPassword != 0 {
		if s, b, problem = readField(b); problem != "" {
			return malformed("CONNECT password: %s", problem)
		}
		c.Password = string(s)
	}
	if len(b) != 0 {
		return malformed("CONNECT with %d bytes after its payload", len(b))
	}
	return nil
}

// Connack5 is what an MQTT 5 CONNACK carries (§3.2).
type Connack5 struct {
	SessionPresent bool
	Reason         ReasonCode
	Properties     Properties
}

// Err returns the refusal as a *ReasonError, e.g. `connection refused:
// 0x86 bad user name or password (reason: "token expired")`, or nil when
// the server accepted the connection.
func (c *Connack5) Err() error { return reasonErr(TypeConnack, c.Reason, &c.Properties) }

// AppendConnack5 appends an MQTT 5 CONNACK.
func AppendConnack5(b []byte, c *Connack5) ([]byte, error) {
	pn, send, err := propsLen(&c.Properties, TypeConnack)
	if err != nil {
		return b, err
	}
	n := 2 + VarIntLen(pn) + pn
	if n > MaxRemainingLength {
		return b, fmt.Errorf("CONNACK of %d bytes is over the MQTT limit of %d", n, MaxRemainingLength)
	}
	b = append(b, TypeConnack<<4)
	b = AppendRemainingLength(b, n)
	b = append(b, b2i(c.SessionPresent), byte(c.Reason))
	return appendProps(b, &c.Properties, send, pn), nil
}

// legacyConnack maps the return codes of a 3.1.1 CONNACK to their MQTT 5
// reason codes.
var legacyConnack = [6]ReasonCode{0, ReasonUnsupportedProtocolVersion, ReasonClientIdentifierNotValid,
	ReasonServerUnavailable, ReasonBadUsernameOrPassword, ReasonNotAuthorized}

// DecodeConnack5 decodes an MQTT 5 CONNACK (§3.2) into c, all of which it
// sets. A CONNACK of two bytes
// is the 3.1.1 form, with which a server that does not speak MQTT 5
// answers a version 5 CONNECT: its return codes 1 to 5 become their MQTT
// 5 reason codes, so that 1 (unacceptable protocol version) is
// ReasonUnsupportedProtocolVersion.
func DecodeConnack5(p Packet, c *Connack5) error {
	*c = Connack5{}
	if p.Type() != TypeConnack {
		return malformed("got %s, want CONNACK", TypeName(p.Type()))
	}
	if err := checkFlags(p, 0); err != nil {
		return err
	}
	b := p.Body
	if len(b) < 2 {
		return malformed("CONNACK of %d bytes", len(b))
	}
	if b[0]&0xfe != 0 { // [MQTT-3.2.2-1]
		return malformed("CONNACK acknowledge flags %#x, want 0 or 1", b[0])
	}
	c.SessionPresent = b[0] == 1
	c.Reason = ReasonCode(b[1])
	if len(b) == 2 {
		if int(b[1]) < len(legacyConnack) {
			c.Reason = legacyConnack[b[1]]
		}
		return nil
	}
	rest, err := decodeProps(b[2:], TypeConnack, &c.Properties)
	if err != nil {
		return err
	}
	if len(rest) != 0 {
		return malformed("CONNACK with %d bytes after its properties", len(rest))
	}
	return nil
}

// Publish5 is a decoded MQTT 5 PUBLISH: the fields of a 3.1.1 PUBLISH,
// whose Topic and Payload alias the packet, and the properties. With a
// Topic Alias, Topic may be empty: the receiver maps it (§3.3.2.3.4).
type Publish5 struct {
	Publish
	Properties Properties
}

// PublishLength5 returns the remaining length of an MQTT 5 PUBLISH, or the
// error AppendPublish5 would return.
func PublishLength5(topic string, payload []byte, qos byte, props *Properties) (int, error) {
	n, _, _, err := publishLength5(topic, payload, qos, props)
	return n, err
}

func publishLength5(topic string, payload []byte, qos byte, props *Properties) (n, pn int, send PropSet, err error) {
	if qos > 2 {
		return 0, 0, 0, fmt.Errorf("PUBLISH at QoS %d, want 0, 1 or 2", qos)
	}
	if len(topic) > MaxStringLength {
		return 0, 0, 0, fmt.Errorf("PUBLISH topic of %d bytes is over the MQTT limit of %d", len(topic), MaxStringLength)
	}
	if topic == "" && (props == nil || props.TopicAlias == 0) { // §3.3.2.1
		return 0, 0, 0, fmt.Errorf("PUBLISH without a topic name or a topic alias")
	}
	if props != nil {
		if pn, send, err = propsLen(props, TypePublish); err != nil {
			return 0, 0, 0, err
		}
	}
	n = PublishLength(topic, payload, qos) + VarIntLen(pn) + pn
	if n > MaxRemainingLength {
		return 0, 0, 0, fmt.Errorf("PUBLISH of %d bytes is over the MQTT limit of %d", n, MaxRemainingLength)
	}
	return n, pn, send, nil
}

// AppendPublish5 appends an MQTT 5 PUBLISH (§3.3); id is left out at QoS
// 0, props may be nil. An empty topic needs props.TopicAlias. As for
// AppendPublish, the caller checks the topic name (UTF-8, no wildcards);
// AppendPublish5 refuses a QoS over 2, sizes over MQTT's limits and
// properties that MQTT cannot carry or PUBLISH may not. On error b is
// returned unchanged.
func AppendPublish5(b []byte, topic string, payload []byte, qos byte, retain, dup bool, id uint16, props *Properties) ([]byte, error) {
	n, pn, send, err := publishLength5(topic, payload, qos, props)
	if err != nil {
		return b, err
	}
	h := TypePublish<<4 | qos<<1
	if retain {
		h |= FlagRetain
	}
	if dup {
		h |= FlagDup
	}
	b = append(b, h)
	b = AppendRemainingLength(b, n)
	b = AppendString(b, topic)
	if qos > 0 {
		b = append(b, byte(id>>8), byte(id))
	}
	if send == 0 {
		b = append(b, 0)
	} else {
		b = appendProps(b, props, send, pn)
	}
	return append(b, payload...), nil
}

// DecodePublish5 decodes an MQTT 5 PUBLISH's flags, variable header,
// properties and payload (§3.3) into m, all of which it sets. Topic,
// Payload and CorrelationData alias the packet. A PUBLISH without string
// properties allocates nothing; one with them allocates one copy of them
// all, and a slice for User Properties or Subscription Identifiers. As
// DecodePublish does, it leaves the topic name's UTF-8 unchecked: the
// broker checked it [MQTT-1.5.4-1].
func DecodePublish5(p Packet, m *Publish5) error {
	*m = Publish5{}
	m.QoS = (p.Header >> 1) & 0x03
	m.Dup = p.Header&FlagDup != 0
	m.Retain = p.Header&FlagRetain != 0
	if m.QoS > 2 { // [MQTT-3.3.1-4]
		return malformed("PUBLISH with QoS 3")
	}
	b := p.Body
	if len(b) < 2 {
		return malformed("PUBLISH without a topic")
	}
	tl := int(b[0])<<8 | int(b[1])
	b = b[2:]
	if len(b) < tl {
		return malformed("PUBLISH topic of %d bytes in a body of %d", tl, len(p.Body))
	}
	m.Topic, b = b[:tl], b[tl:]
	if m.QoS > 0 {
		if len(b) < 2 {
			return malformed("PUBLISH at QoS %d without a packet id", m.QoS)
		}
		m.ID = uint16(b[0])<<8 | uint16(b[1])
		b = b[2:]
	}
	if len(b) > 0 && b[0] == 0 {
		b = b[1:] // no properties
	} else {
		var err error
		if b, err = decodeProps(b, TypePublish, &m.Properties); err != nil {
			return err
		}
	}
	if tl == 0 && m.Properties.TopicAlias == 0 { // §3.3.2.1
		return protocolErr("PUBLISH without a topic name or a topic alias")
	}
	m.Payload = b
	return nil
}

// Ack5 is an MQTT 5 PUBACK, PUBREC, PUBREL or PUBCOMP (§3.4-3.7).
type Ack5 struct {
	ID         uint16
	Reason     ReasonCode
	Properties Properties
}

// Err returns a failure reason code as a *ReasonError ("PUBACK refused:
// 0x87 not authorized"), or nil; t is the acknowledgement's packet type.
func (a *Ack5) Err(t byte) error { return reasonErr(t, a.Reason, &a.Properties) }

// AppendAck5 appends PUBACK, PUBREC, PUBREL or PUBCOMP (header is the
// whole first byte, with its flags, as for AppendAck). With reason 0 and
// no properties it is the short form of §3.4.2.1, the same bytes as
// AppendAck; with no properties, the reason code without a Property
// Length (§3.4.2.2.1).
func AppendAck5(b []byte, header byte, id uint16, reason ReasonCode, props *Properties) ([]byte, error) {
	t := header >> 4
	if t < TypePuback || t > TypePubcomp {
		return b, fmt.Errorf("AppendAck5 of %s, want PUBACK, PUBREC, PUBREL or PUBCOMP", TypeName(t))
	}
	pn, send, err := propsLen(props, t)
	if err != nil {
		return b, err
	}
	switch {
	case send == 0 && reason == 0:
		return append(b, header, 2, byte(id>>8), byte(id)), nil
	case send == 0:
		return append(b, header, 3, byte(id>>8), byte(id), byte(reason)), nil
	}
	n := 3 + VarIntLen(pn) + pn
	if n > MaxRemainingLength {
		return b, fmt.Errorf("%s of %d bytes is over the MQTT limit of %d", TypeName(t), n, MaxRemainingLength)
	}
	b = append(b, header)
	b = AppendRemainingLength(b, n)
	b = append(b, byte(id>>8), byte(id), byte(reason))
	return appendProps(b, props, send, pn), nil
}

// DecodeAck5 decodes an MQTT 5 PUBACK, PUBREC, PUBREL or PUBCOMP, in its
// full or short forms (§3.4.2.1, §3.4.2.2.1), into a, all of which it sets.
func DecodeAck5(p Packet, a *Ack5) error {
	*a = Ack5{}
	t := p.Type()
	if t < TypePuback || t > TypePubcomp {
		return malformed("got %s, want PUBACK, PUBREC, PUBREL or PUBCOMP", TypeName(t))
	}
	var flags byte
	if t == TypePubrel {
		flags = HeaderPubrel & 0x0f // [MQTT-3.6.1-1]
	}
	if err := checkFlags(p, flags); err != nil {
		return err
	}
	b := p.Body
	if len(b) < 2 {
		return malformed("%s of %d bytes, want a packet id", TypeName(t), len(b))
	}
	a.ID = uint16(b[0])<<8 | uint16(b[1])
	if len(b) == 2 {
		return nil
	}
	a.Reason = ReasonCode(b[2])
	if len(b) == 3 {
		return nil
	}
	rest, err := decodeProps(b[3:], t, &a.Properties)
	if err != nil {
		return err
	}
	if len(rest) != 0 {
		return malformed("%s with %d bytes after its properties", TypeName(t), len(rest))
	}
	return nil
}

// Subscription is a topic filter and its subscription options (§3.8.3.1).
type Subscription struct {
	Filter            string
	QoS               byte // the maximum QoS
	NoLocal           bool // not sent what this connection's client id published [MQTT-3.8.3-3]
	RetainAsPublished bool // keep the RETAIN flag messages were published with
	RetainHandling    byte // 0 send retained messages at subscribe, 1 only for a new subscription, 2 not
}

// Subscription options byte (§3.8.3.1).
const (
	subOptQoS            byte = 0x03
	subOptNoLocal        byte = 0x04
	subOptRetainAsPub    byte = 0x08
	subOptRetainHandling byte = 0x30
	subOptReserved       byte = 0xc0
)

// Subscribe5 is what an MQTT 5 SUBSCRIBE carries (§3.8).
type Subscribe5 struct {
	ID            uint16
	Subscriptions []Subscription
	Properties    Properties // Subscription Identifier (at most one) and User Properties
}

// AppendSubscribe5 appends an MQTT 5 SUBSCRIBE for subs [MQTT-3.8]; a
// subscription identifier is props.SubscriptionIdentifiers[0].
func AppendSubscribe5(b []byte, id uint16, subs []Subscription, props *Properties) ([]byte, error) {
	if len(subs) == 0 { // [MQTT-3.8.3-2]
		return b, fmt.Errorf("SUBSCRIBE without a topic filter")
	}
	pn, send, err := propsLen(props, TypeSubscribe)
	if err != nil {
		return b, err
	}
	n := 2 + VarIntLen(pn) + pn
	for _, s := range subs {
		if problem := stringProblem(s.Filter); problem != "" {
			return b, fmt.Errorf("SUBSCRIBE topic filter: %s", problem)
		}
		if s.QoS > 2 || s.RetainHandling > 2 {
			return b, fmt.Errorf("SUBSCRIBE %q: QoS %d, retain handling %d, want each 0, 1 or 2", s.Filter, s.QoS, s.RetainHandling)
		}
		n += 2 + len(s.Filter) + 1
	}
	if n > MaxRemainingLength {
		return b, fmt.Errorf("SUBSCRIBE of %d bytes is over the MQTT limit of %d", n, MaxRemainingLength)
	}
	b = append(b, HeaderSubscribe)
	b = AppendRemainingLength(b, n)
	b = append(b, byte(id>>8), byte(id))
	b = appendProps(b, props, send, pn)
	for _, s := range subs {
		b = AppendString(b, s.Filter)
		o := s.QoS | s.RetainHandling<<4
		if s.NoLocal {
			o |= subOptNoLocal
		}
		if s.RetainAsPublished {
			o |= subOptRetainAsPub
		}
		b = append(b, o)
	}
	return b, nil
}

// DecodeSubscribe5 decodes an MQTT 5 SUBSCRIBE (§3.8) into m, all of which
// it sets.
func DecodeSubscribe5(p Packet, m *Subscribe5) error {
	*m = Subscribe5{}
	if p.Type() != TypeSubscribe {
		return malformed("got %s, want SUBSCRIBE", TypeName(p.Type()))
	}
	if err := checkFlags(p, HeaderSubscribe&0x0f); err != nil { // [MQTT-3.8.1-1]
		return err
	}
	b := p.Body
	if len(b) < 2 {
		return malformed("SUBSCRIBE of %d bytes, want a packet id", len(b))
	}
	m.ID = uint16(b[0])<<8 | uint16(b[1])
	b, err := decodeProps(b[2:], TypeSubscribe, &m.Properties)
	if err != nil {
		return err
	}
	if len(b) == 0 { // [MQTT-3.8.3-2]
		return protocolErr("SUBSCRIBE without a topic filter")
	}
	for len(b) > 0 {
		f, rest, problem := readString(b)
		if problem != "" {
			return malformed("SUBSCRIBE topic filter %d: %s", len(m.Subscriptions)+1, problem)
		}
		if len(rest) < 1 {
			return malformed("SUBSCRIBE topic filter %q without subscription options", f)
		}
		o := rest[0]
		b = rest[1:]
		switch {
		case o&subOptReserved != 0: // [MQTT-3.8.3-5]
			return malformed("SUBSCRIBE %q: reserved subscription options %#x", f, o)
		case o&subOptQoS == 3: // §3.8.3.1
			return protocolErr("SUBSCRIBE %q: maximum QoS 3", f)
		case o&subOptRetainHandling == 0x30: // §3.8.3.1
			return protocolErr("SUBSCRIBE %q: retain handling 3", f)
		}
		m.Subscriptions = append(m.Subscriptions, Subscription{
			Filter:            string(f),
			QoS:               o & subOptQoS,
			NoLocal:           o&subOptNoLocal != 0,
			RetainAsPublished: o&subOptRetainAsPub != 0,
			RetainHandling:    o & subOptRetainHandling >> 4,
		})
	}
	return nil
}

// Suback5 is what an MQTT 5 SUBACK carries (§3.9): a reason code per topic
// filter, in the order of the SUBSCRIBE [MQTT-3.9.3-1].
type Suback5 struct {
	ID         uint16
	Reasons    []ReasonCode
	Properties Properties
}

// Unsuback5 is what an MQTT 5 UNSUBACK carries (§3.11): a reason code per
// topic filter, in the order of the UNSUBSCRIBE [MQTT-3.11.3-1].
type Unsuback5 struct {
	ID         uint16
	Reasons    []ReasonCode
	Properties Properties
}

// AppendSuback5 appends an MQTT 5 SUBACK.
func AppendSuback5(b []byte, id uint16, reasons []ReasonCode, props *Properties) ([]byte, error) {
	return appendReasonAck(b, TypeSuback<<4, id, reasons, props)
}

// AppendUnsuback5 appends an MQTT 5 UNSUBACK.
func AppendUnsuback5(b []byte, id uint16, reasons []ReasonCode, props *Properties) ([]byte, error) {
	return appendReasonAck(b, TypeUnsuback<<4, id, reasons, props)
}

func appendReasonAck(b []byte, header byte, id uint16, reasons []ReasonCode, props *Properties) ([]byte, error) {
	t := header >> 4
	if len(reasons) == 0 {
		return b, fmt.Errorf("%s without a reason code", TypeName(t))
	}
	pn, send, err := propsLen(props, t)
	if err != nil {
		return b, err
	}
	n := 2 + VarIntLen(pn) + pn + len(reasons)
	if n > MaxRemainingLength {
		return b, fmt.Errorf("%s of %d bytes is over the MQTT limit of %d", TypeName(t), n, MaxRemainingLength)
	}
	b = append(b, header)
	b = AppendRemainingLength(b, n)
	b = append(b, byte(id>>8), byte(id))
	b = appendProps(b, props, send, pn)
	for _, r := range reasons {
		b = append(b, byte(r))
	}
	return b, nil
}

// DecodeSuback5 decodes an MQTT 5 SUBACK (§3.9) into m, all of which it
// sets.
func DecodeSuback5(p Packet, m *Suback5) error {
	*m = Suback5{}
	var err error
	m.ID, m.Reasons, err = decodeReasonAck(p, TypeSuback, &m.Properties)
	return err
}

// DecodeUnsuback5 decodes an MQTT 5 UNSUBACK (§3.11) into m, all of which
// it sets.
func DecodeUnsuback5(p Packet, m *Unsuback5) error {
	*m = Unsuback5{}
	var err error
	m.ID, m.Reasons, err = decodeReasonAck(p, TypeUnsuback, &m.Properties)
	return err
}

func decodeReasonAck(p Packet, t byte, props *Properties) (uint16, []ReasonCode, error) {
	if p.Type() != t {
		return 0, nil, malformed("got %s, want %s", TypeName(p.Type()), TypeName(t))
	}
	if err := checkFlags(p, 0); err != nil {
		return 0, nil, err
	}
	b := p.Body
	if len(b) < 2 {
		return 0, nil, malformed("%s of %d bytes, want a packet id", TypeName(t), len(b))
	}
	id := uint16(b[0])<<8 | uint16(b[1])
	b, err := decodeProps(b[2:], t, props)
	if err != nil {
		return id, nil, err
	}
	if len(b) == 0 { // one per filter, and a SUBSCRIBE or UNSUBSCRIBE has one at least
		return id, nil, protocolErr("%s without a reason code", TypeName(t))
	}
	reasons := make([]ReasonCode, len(b))
	for i, r := range b {
		reasons[i] = ReasonCode(r)
	}
	return id, reasons, nil
}

// Unsubscribe5 is what an MQTT 5 UNSUBSCRIBE carries (§3.10).
type Unsubscribe5 struct {
	ID         uint16
	Filters    []string
	Properties Properties // User Properties
}

// AppendUnsubscribe5 appends an MQTT 5 UNSUBSCRIBE for filters (§3.10).
func AppendUnsubscribe5(b []byte, id uint16, filters []string, props *Properties) ([]byte, error) {
	if len(filters) == 0 { // [MQTT-3.10.3-2]
		return b, fmt.Errorf("UNSUBSCRIBE without a topic filter")
	}
	pn, send, err := propsLen(props, TypeUnsubscribe)
	if err != nil {
		return b, err
	}
	n := 2 + VarIntLen(pn) + pn
	for _, f := range filters {
		if problem := stringProblem(f); problem != "" {
			return b, fmt.Errorf("UNSUBSCRIBE topic filter: %s", problem)
		}
		n += 2 + len(f)
	}
	if n > MaxRemainingLength {
		return b, fmt.Errorf("UNSUBSCRIBE of %d bytes is over the MQTT limit of %d", n, MaxRemainingLength)
	}
	b = append(b, HeaderUnsubscribe)
	b = AppendRemainingLength(b, n)
	b = append(b, byte(id>>8), byte(id))
	b = appendProps(b, props, send, pn)
	for _, f := range filters {
		b = AppendString(b, f)
	}
	return b, nil
}

// DecodeUnsubscribe5 decodes an MQTT 5 UNSUBSCRIBE (§3.10) into m, all of
// which it sets.
func DecodeUnsubscribe5(p Packet, m *Unsubscribe5) error {
	*m = Unsubscribe5{}
	if p.Type() != TypeUnsubscribe {
		return malformed("got %s, want UNSUBSCRIBE", TypeName(p.Type()))
	}
	if err := checkFlags(p, HeaderUnsubscribe&0x0f); err != nil { // [MQTT-3.10.1-1]
		return err
	}
	b := p.Body
	if len(b) < 2 {
		return malformed("UNSUBSCRIBE of %d bytes, want a packet id", len(b))
	}
	m.ID = uint16(b[0])<<8 | uint16(b[1])
	b, err := decodeProps(b[2:], TypeUnsubscribe, &m.Properties)
	if err != nil {
		return err
	}
	if len(b) == 0 { // [MQTT-3.10.3-2]
		return protocolErr("UNSUBSCRIBE without a topic filter")
	}
	for len(b) > 0 {
		f, rest, problem := readString(b)
		if problem != "" {
			return malformed("UNSUBSCRIBE topic filter %d: %s", len(m.Filters)+1, problem)
		}
		m.Filters = append(m.Filters, string(f))
		b = rest
	}
	return nil
}

// Disconnect5 is what an MQTT 5 DISCONNECT carries (§3.14).
type Disconnect5 struct {
	Reason     ReasonCode
	Properties Properties
}

// Err returns a failure reason code as a *ReasonError, e.g.
// `disconnected: 0x9c use another server (server reference: "b:1883")`,
// or nil for a reason code below 0x80.
func (d *Disconnect5) Err() error { return reasonErr(TypeDisconnect, d.Reason, &d.Properties) }

// AppendDisconnect5 appends an MQTT 5 DISCONNECT: two bytes for reason 0
// (normal disconnection) without properties (§3.14.2.1), the reason code
// alone when there are no properties (§3.14.2.2.1).
func AppendDisconnect5(b []byte, reason ReasonCode, props *Properties) ([]byte, error) {
	return appendReasonOnly(b, TypeDisconnect, reason, props)
}

// DecodeDisconnect5 decodes an MQTT 5 DISCONNECT, in its full or short
// forms (§3.14), into d, all of which it sets.
func DecodeDisconnect5(p Packet, d *Disconnect5) error {
	*d = Disconnect5{}
	var err error
	d.Reason, err = decodeReasonOnly(p, TypeDisconnect, &d.Properties)
	return err
}

// Auth5 is what an MQTT 5 AUTH carries (§3.15).
type Auth5 struct {
	Reason     ReasonCode // ReasonSuccess, ReasonContinueAuthentication or ReasonReauthenticate
	Properties Properties // Authentication Method (required), Authentication Data, ...
}

// AppendAuth5 appends an MQTT 5 AUTH: two bytes for reason 0 without
// properties (§3.15.2.1); otherwise props must carry the Authentication
// Method (§3.15.2.2.2).
func AppendAuth5(b []byte, reason ReasonCode, props *Properties) ([]byte, error) {
	if reason != 0 || props != nil && props.sendSet() != 0 {
		if props == nil || !props.sendSet().Has(PropAuthenticationMethod) {
			return b, fmt.Errorf("AUTH without an Authentication Method")
		}
	}
	return appendReasonOnly(b, TypeAuth, reason, props)
}

// DecodeAuth5 decodes an MQTT 5 AUTH (§3.15) into a, all of which it sets.
// Any but the short form must carry the Authentication Method
// (§3.15.2.2.2).
func DecodeAuth5(p Packet, a *Auth5) error {
	*a = Auth5{}
	var err error
	if a.Reason, err = decodeReasonOnly(p, TypeAuth, &a.Properties); err != nil {
		return err
	}
	if len(p.Body) > 0 && !a.Properties.Present.Has(PropAuthenticationMethod) {
		return protocolErr("AUTH without an Authentication Method")
	}
	return nil
}

// appendReasonOnly appends DISCONNECT or AUTH: a reason code and
// properties, both left out when 0 and none.
func appendReasonOnly(b []byte, t byte, reason ReasonCode, props *Properties) ([]byte, error) {
	pn, send, err := propsLen(props, t)
	if err != nil {
		return b, err
	}
	switch {
	case send == 0 && reason == 0:
		return append(b, t<<4, 0), nil
	case send == 0:
		return append(b, t<<4, 1, byte(reason)), nil
	}
	n := 1 + VarIntLen(pn) + pn
	if n > MaxRemainingLength {
		return b, fmt.Errorf("%s of %d bytes is over the MQTT limit of %d", TypeName(t), n, MaxRemainingLength)
	}
	b = append(b, t<<4)
	b = AppendRemainingLength(b, n)
	b = append(b, byte(reason))
	return appendProps(b, props, send, pn), nil
}

func decodeReasonOnly(p Packet, t byte, props *Properties) (ReasonCode, error) {
	if p.Type() != t {
		return 0, malformed("got %s, want %s", TypeName(p.Type()), TypeName(t))
	}
	if err := checkFlags(p, 0); err != nil { // [MQTT-3.14.1-1], [MQTT-3.15.1-1]
		return 0, err
	}
	b := p.Body
	if len(b) == 0 {
		return 0, nil
	}
	r := ReasonCode(b[0])
	if len(b) == 1 { // no Property Length: none (§3.14.2.2.1)
		return r, nil
	}
	rest, err := decodeProps(b[1:], t, props)
	if err != nil {
		return r, err
	}
	if len(rest) != 0 {
		return r, malformed("%s with %d bytes after its properties", TypeName(t), len(rest))
	}
	return r, nil
}
