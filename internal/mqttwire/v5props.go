package mqttwire

import (
	"fmt"
	"math/bits"
)

// PropID is an MQTT 5 property identifier (§2.2.2.2). The identifier is a
// Variable Byte Integer on the wire, but every one MQTT 5 defines is below
// 0x80, one byte.
type PropID byte

// The MQTT 5 properties (§2.2.2.2, Table 2-4), with their data types.
const (
	PropPayloadFormatIndicator          PropID = 0x01 // byte
	PropMessageExpiryInterval           PropID = 0x02 // four-byte integer
	PropContentType                     PropID = 0x03 // UTF-8 string
	PropResponseTopic                   PropID = 0x08 // UTF-8 string
	PropCorrelationData                 PropID = 0x09 // binary data
	PropSubscriptionIdentifier          PropID = 0x0B // variable byte integer
	PropSessionExpiryInterval           PropID = 0x11 // four-byte integer
	PropAssignedClientIdentifier        PropID = 0x12 // UTF-8 string
	PropServerKeepAlive                 PropID = 0x13 // two-byte integer
	PropAuthenticationMethod            PropID = 0x15 // UTF-8 string
	PropAuthenticationData              PropID = 0x16 // binary data
	PropRequestProblemInformation       PropID = 0x17 // byte
	PropWillDelayInterval               PropID = 0x18 // four-byte integer
	PropRequestResponseInformation      PropID = 0x19 // byte
	PropResponseInformation             PropID = 0x1A // UTF-8 string
	PropServerReference                 PropID = 0x1C // UTF-8 string
	PropReasonString                    PropID = 0x1F // UTF-8 string
	PropReceiveMaximum                  PropID = 0x21 // two-byte integer
	PropTopicAliasMaximum               PropID = 0x22 // two-byte integer
	PropTopicAlias                      PropID = 0x23 // two-byte integer
	PropMaximumQoS                      PropID = 0x24 // byte
	PropRetainAvailable                 PropID = 0x25 // byte
	PropUserProperty                    PropID = 0x26 // UTF-8 string pair
	PropMaximumPacketSize               PropID = 0x27 // four-byte integer
	PropWildcardSubscriptionAvailable   PropID = 0x28 // byte
	PropSubscriptionIdentifierAvailable PropID = 0x29 // byte
	PropSharedSubscriptionAvailable     PropID = 0x2A // byte
)

// String returns the property's name in the specification, e.g. "Receive
// Maximum", or its identifier in hex when MQTT 5 defines none.
func (id PropID) String() string {
	if int(id) < len(propTable) && propTable[id].name != "" {
		return propTable[id].name
	}
	return fmt.Sprintf("0x%02x", byte(id))
}

// PropSet is a set of property identifiers.
type PropSet uint64

// Has reports whether id is in s.
func (s PropSet) Has(id PropID) bool { return id < 64 && s&(1<<id) != 0 }

// With returns s with id added; id must be below 64.
func (s PropSet) With(id PropID) PropSet { return s | 1<<(id&63) }

// StringPair is a User Property: a name and a value (§1.5.7).
type StringPair struct {
	Key, Value string
}

// Properties are the properties of an MQTT 5 packet (§2.2.2), or of a
// will (§3.1.3.2). Each packet type allows some of them (Table 2-4);
// encoders refuse the others, decoders report them as malformed.
//
// Decoding: strings are copies (one allocation for all the strings of a
// packet), safe to keep; CorrelationData and AuthenticationData alias the
// packet, like Publish.Payload, and are valid until the next read. Present
// holds every property the packet carried.
//
// Encoding: a property is sent when its field is not the zero value or its
// identifier is in Present, so Present is how to send a zero that means
// something, such as Maximum QoS 0, Retain Available 0 or a Session Expiry
// Interval of 0: p.Present = p.Present.With(PropRetainAvailable).
//
// Several properties default to a value other than zero when absent (noted
// below); read them together with Present.
type Properties struct {
	// Present holds the identifiers of the properties a decoded packet
	// carried, and those an encoder sends even at their zero value.
	Present PropSet

	// Application messages: PUBLISH and the will.

	PayloadFormatIndicator  byte     // 0x01: 0 unspecified bytes, 1 UTF-8 (§3.3.2.3.2)
	MessageExpiryInterval   uint32   // 0x02, seconds; absent: the message does not expire (see Present)
	ContentType             string   // 0x03
	ResponseTopic           string   // 0x08
	CorrelationData         []byte   // 0x09
	SubscriptionIdentifiers []uint32 // 0x0B: PUBLISH from the server may carry several; SUBSCRIBE at most one
	TopicAlias              uint16   // 0x23, PUBLISH only; 0 is absent (a Topic Alias of 0 is not permitted)
	WillDelayInterval       uint32   // 0x18, seconds, will only

	// Connection: CONNECT, CONNACK, DISCONNECT, AUTH.

	SessionExpiryInterval      uint32 // 0x11, seconds; absent in CONNACK or DISCONNECT: the CONNECT's (see Present)
	ReceiveMaximum             uint16 // 0x21; 0 is absent, which means 65535
	MaximumPacketSize          uint32 // 0x27; 0 is absent, which means no limit
	TopicAliasMaximum          uint16 // 0x22; absent: 0
	RequestResponseInformation bool   // 0x19, CONNECT
	RequestProblemInformation  bool   // 0x17, CONNECT; absent means true (see Present)
	AuthenticationMethod       string // 0x15
	AuthenticationData         []byte // 0x16

	// CONNACK: what the server grants.

	AssignedClientIdentifier string // 0x12
	ServerKeepAlive          uint16 // 0x13, seconds; absent: the CONNECT's Keep Alive (see Present)
	MaximumQoS               byte   // 0x24, 0 or 1; absent means 2 (see Present)
	RetainAvailable          bool   // 0x25; absent means true (see Present)
	WildcardSubAvailable     bool   // 0x28; absent means true (see Present)
	SubIDAvailable           bool   // 0x29; absent means true (see Present)
	SharedSubAvailable       bool   // 0x2A; absent means true (see Present)
	ResponseInformation      string // 0x1A
	ServerReference          string // 0x1C, CONNACK and DISCONNECT

	// Diagnostics.

	ReasonString   string       // 0x1F
	UserProperties []StringPair // 0x26: in order, repeats kept
}

// Property data types (§2.2.2.2).
const (
	propByte = iota + 1
	propUint16
	propUint32
	propVarInt
	propString
	propBinary
	propPair
)

// ctxWill stands, where properties take a packet type, for the will
// properties of CONNECT: type 0 is reserved.
const ctxWill byte = 0

// Where a property may appear: bit t for packet type t, bit 0 for the will.
const (
	inWill        = 1 << ctxWill
	inConnect     = 1 << TypeConnect
	inConnack     = 1 << TypeConnack
	inPublish     = 1 << TypePublish
	inAcks        = 1<<TypePuback | 1<<TypePubrec | 1<<TypePubrel | 1<<TypePubcomp
	inSubscribe   = 1 << TypeSubscribe
	inSuback      = 1 << TypeSuback
	inUnsubscribe = 1 << TypeUnsubscribe
	inUnsuback    = 1 << TypeUnsuback
	inDisconnect  = 1 << TypeDisconnect
	inAuth        = 1 << TypeAuth
)

type propInfo struct {
	name string
	typ  uint8
	in   uint16 // packet types (and the will) that may carry it
}

// maxPropID is the largest property identifier MQTT 5 defines.
const maxPropID = PropSharedSubscriptionAvailable

// propTable is Table 2-4 of §2.2.2.2.
var propTable = [maxPropID + 1]propInfo{
	PropPayloadFormatIndicator:          {"Payload Format Indicator", propByte, inPublish | inWill},
	PropMessageExpiryInterval:           {"Message Expiry Interval", propUint32, inPublish | inWill},
	PropContentType:                     {"Content Type", propString, inPublish | inWill},
	PropResponseTopic:                   {"Response Topic", propString, inPublish | inWill},
	PropCorrelationData:                 {"Correlation Data", propBinary, inPublish | inWill},
	PropSubscriptionIdentifier:          {"Subscription Identifier", propVarInt, inPublish | inSubscribe},
	PropSessionExpiryInterval:           {"Session Expiry Interval", propUint32, inConnect | inConnack | inDisconnect},
	PropAssignedClientIdentifier:        {"Assigned Client Identifier", propString, inConnack},
	PropServerKeepAlive:                 {"Server Keep Alive", propUint16, inConnack},
	PropAuthenticationMethod:            {"Authentication Method", propString, inConnect | inConnack | inAuth},
	PropAuthenticationData:              {"Authentication Data", propBinary, inConnect | inConnack | inAuth},
	PropRequestProblemInformation:       {"Request Problem Information", propByte, inConnect},
	PropWillDelayInterval:               {"Will Delay Interval", propUint32, inWill},
	PropRequestResponseInformation:      {"Request Response Information", propByte, inConnect},
	PropResponseInformation:             {"Response Information", propString, inConnack},
	PropServerReference:                 {"Server Reference", propString, inConnack | inDisconnect},
	PropReasonString:                    {"Reason String", propString, inConnack | inAcks | inSuback | inUnsuback | inDisconnect | inAuth},
	PropReceiveMaximum:                  {"Receive Maximum", propUint16, inConnect | inConnack},
	PropTopicAliasMaximum:               {"Topic Alias Maximum", propUint16, inConnect | inConnack},
	PropTopicAlias:                      {"Topic Alias", propUint16, inPublish},
	PropMaximumQoS:                      {"Maximum QoS", propByte, inConnack},
	PropRetainAvailable:                 {"Retain Available", propByte, inConnack},
	PropUserProperty:                    {"User Property", propPair, inConnect | inConnack | inPublish | inWill | inAcks | inSubscribe | inSuback | inUnsubscribe | inUnsuback | inDisconnect | inAuth},
	PropMaximumPacketSize:               {"Maximum Packet Size", propUint32, inConnect | inConnack},
	PropWildcardSubscriptionAvailable:   {"Wildcard Subscription Available", propByte, inConnack},
	PropSubscriptionIdentifierAvailable: {"Subscription Identifier Available", propByte, inConnack},
	PropSharedSubscriptionAvailable:     {"Shared Subscription Available", propByte, inConnack},
}

// allowedProps[t] is the set of properties packet type t (or ctxWill) may
// carry.
var allowedProps = func() (a [16]PropSet) {
	for id, info := range propTable {
		for t := range a {
			if info.in&(1<<t) != 0 {
				a[t] |= 1 << id
			}
		}
	}
	return a
}()

// ctxName names where properties are, for errors: a packet type's name, or
// "CONNECT will".
func ctxName(ctx byte) string {
	if ctx == ctxWill {
		return "CONNECT will"
	}
	return TypeName(ctx)
}

// repeatable reports whether property id may appear more than once in ctx:
// User Property anywhere, Subscription Identifier in PUBLISH (§3.3.4).
func repeatable(id PropID, ctx byte) bool {
	return id == PropUserProperty || id == PropSubscriptionIdentifier && ctx == TypePublish
}

// decodeProps decodes the properties, Property Length first, at the start
// of b into p, for packet type ctx, and returns the bytes after them.
func decodeProps(b []byte, ctx byte, p *Properties) ([]byte, error) {
	n, k := varint(b)
	if k <= 0 {
		if len(b) == 0 {
			return nil, malformed("%s without a property length", ctxName(ctx))
		}
		return nil, malformed("%s property length %s", ctxName(ctx), varintProblem(k))
	}
	b = b[k:]
	if n > len(b) {
		return nil, malformed("%s property length %d is beyond the %d bytes left", ctxName(ctx), n, len(b))
	}
	if n > 0 {
		if err := parseProps(b[:n], ctx, p); err != nil {
			return nil, err
		}
	}
	return b[n:], nil
}

// parseProps decodes blk, a packet's properties without their length, into
// p. The strings are cut from one copy of blk, made at the first string.
func parseProps(blk []byte, ctx byte, p *Properties) error {
	var s string // blk, copied at the first string property
	where := ctxName(ctx)
	for i := 0; i < len(blk); {
		v, k := varint(blk[i:])
		if k <= 0 {
			return malformed("%s property identifier %s", where, varintProblem(k))
		}
		i += k
		if v >= len(propTable) || propTable[v].typ == 0 {
			return malformed("%s property identifier 0x%02x is unknown", where, v)
		}
		id := PropID(v)
		info := &propTable[id]
		if info.in&(1<<ctx) == 0 { // §2.2.2.2: not valid for its packet type
			return malformed("%s may not carry property %s (0x%02x)", where, info.name, v)
		}
		if p.Present.Has(id) && !repeatable(id, ctx) {
			return protocolErr("%s property %s more than once", where, info.name)
		}
		p.Present |= 1 << id
		rest := blk[i:]
		switch info.typ {
		case propByte:
			if len(rest) < 1 {
				return malformed("%s property %s cut short", where, info.name)
			}
			x := rest[0]
			i++
			// Every byte property is 0 or 1; a Protocol Error otherwise
			// (§3.1.2.11.6, §3.1.2.11.7, §3.2.2.3.4, §3.2.2.3.5,
			// §3.2.2.3.11-13). Payload Format Indicator defines only 0 and
			// 1 (§3.3.2.3.2).
			if x > 1 {
				return protocolErr("%s property %s is %d, want 0 or 1", where, info.name, x)
			}
			switch id {
			case PropPayloadFormatIndicator:
				p.PayloadFormatIndicator = x
			case PropRequestProblemInformation:
				p.RequestProblemInformation = x == 1
			case PropRequestResponseInformation:
				p.RequestResponseInformation = x == 1
			case PropMaximumQoS:
				p.MaximumQoS = x
			case PropRetainAvailable:
				p.RetainAvailable = x == 1
			case PropWildcardSubscriptionAvailable:
				p.WildcardSubAvailable = x == 1
			case PropSubscriptionIdentifierAvailable:
				p.SubIDAvailable = x == 1
			case PropSharedSubscriptionAvailable:
				p.SharedSubAvailable = x == 1
			}
		case propUint16:
			if len(rest) < 2 {
				return malformed("%s property %s cut short", where, info.name)
			}
			x := uint16(rest[0])<<8 | uint16(rest[1])
			i += 2
			switch id {
			case PropServerKeepAlive:
				p.ServerKeepAlive = x
			case PropReceiveMaximum:
				if x == 0 { // §3.1.2.11.3, §3.2.2.3.3
					return protocolErr("%s property Receive Maximum is 0", where)
				}
				p.ReceiveMaximum = x
			case PropTopicAliasMaximum:
				p.TopicAliasMaximum = x
			case PropTopicAlias:
				if x == 0 { // [MQTT-3.3.2-8]; §3.3.4 answers it with 0x94
					return &DecodeError{Reason: ReasonTopicAliasInvalid, Detail: where + " property Topic Alias is 0"}
				}
				p.TopicAlias = x
			}
		case propUint32:
			if len(rest) < 4 {
				return malformed("%s property %s cut short", where, info.name)
			}
			x := uint32(rest[0])<<24 | uint32(rest[1])<<16 | uint32(rest[2])<<8 | uint32(rest[3])
			i += 4
			switch id {
			case PropMessageExpiryInterval:
				p.MessageExpiryInterval = x
			case PropSessionExpiryInterval:
				p.SessionExpiryInterval = x
			case PropWillDelayInterval:
				p.WillDelayInterval = x
			case PropMaximumPacketSize:
				if x == 0 { // §3.1.2.11.4, §3.2.2.3.6
					return protocolErr("%s property Maximum Packet Size is 0", where)
				}
				p.MaximumPacketSize = x
			}
		case propVarInt: // Subscription Identifier
			x, k := varint(rest)
			if k <= 0 {
				return malformed("%s property %s %s", where, info.name, varintProblem(k))
			}
			i += k
			if x == 0 { // §3.3.2.3.8, §3.8.2.1.2
				return protocolErr("%s property Subscription Identifier is 0", where)
			}
			if p.SubscriptionIdentifiers == nil {
				p.SubscriptionIdentifiers = make([]uint32, 0, 1+countProp(blk[i:], id))
			}
			p.SubscriptionIdentifiers = append(p.SubscriptionIdentifiers, uint32(x))
		case propString, propBinary:
			f, _, problem := readField(rest)
			if problem != "" {
				return malformed("%s property %s: %s", where, info.name, problem)
			}
			start := i + 2
			i = start + len(f)
			if info.typ == propBinary {
				if id == PropCorrelationData {
					p.CorrelationData = f
				} else {
					p.AuthenticationData = f
				}
				break
			}
			if problem := utf8Problem(f); problem != "" {
				return malformed("%s property %s: %s", where, info.name, problem)
			}
			if s == "" {
				s = string(blk)
			}
			str := s[start:i]
			switch id {
			case PropContentType:
				p.ContentType = str
			case PropResponseTopic:
				p.ResponseTopic = str
			case PropAssignedClientIdentifier:
				p.AssignedClientIdentifier = str
			case PropAuthenticationMethod:
				p.AuthenticationMethod = str
			case PropResponseInformation:
				p.ResponseInformation = str
			case PropServerReference:
				p.ServerReference = str
			case PropReasonString:
				p.ReasonString = str
			}
		case propPair: // User Property [MQTT-1.5.7-1]
			key, after, problem := readString(rest)
			if problem != "" {
				return malformed("%s property User Property name: %s", where, problem)
			}
			val, _, problem := readString(after)
			if problem != "" {
				return malformed("%s property User Property value: %s", where, problem)
			}
			ks := i + 2
			vs := ks + len(key) + 2
			i = vs + len(val)
			if s == "" {
				s = string(blk)
			}
			if p.UserProperties == nil {
				p.UserProperties = make([]StringPair, 0, 1+countProp(blk[i:], id))
			}
			p.UserProperties = append(p.UserProperties, StringPair{s[ks : ks+len(key)], s[vs:i]})
		}
	}
	return nil
}

// countProp counts the properties id in blk, to size a slice; it stops at
// the first property it cannot step over. The count is at most len(blk)/2.
func countProp(blk []byte, id PropID) int {
	c := 0
	for len(blk) > 0 {
		v, k := varint(blk)
		if k <= 0 || v >= len(propTable) {
			return c
		}
		blk = blk[k:]
		var size int
		switch propTable[v].typ {
		case propByte:
			size = 1
		case propUint16:
			size = 2
		case propUint32:
			size = 4
		case propVarInt:
			if _, size = varint(blk); size <= 0 {
				return c
			}
		case propString, propBinary, propPair:
			f, rest, problem := readField(blk)
			if problem != "" {
				return c
			}
			size = 2 + len(f)
			if propTable[v].typ == propPair {
				if f, _, problem = readField(rest); problem != "" {
					return c
				}
				size += 2 + len(f)
			}
		default:
			return c
		}
		if size > len(blk) {
			return c
		}
		if PropID(v) == id {
			c++
		}
		blk = blk[size:]
	}
	return c
}

// sendSet returns the properties p sends: those whose field is not the
// zero value, and those in p.Present.
func (p *Properties) sendSet() PropSet {
	s := p.Present
	set := func(cond bool, id PropID) {
		if cond {
			s |= 1 << id
		}
	}
	set(p.PayloadFormatIndicator != 0, PropPayloadFormatIndicator)
	set(p.MessageExpiryInterval != 0, PropMessageExpiryInterval)
	set(p.ContentType != "", PropContentType)
	set(p.ResponseTopic != "", PropResponseTopic)
	set(len(p.CorrelationData) > 0, PropCorrelationData)
	set(len(p.SubscriptionIdentifiers) > 0, PropSubscriptionIdentifier)
	set(p.TopicAlias != 0, PropTopicAlias)
	set(p.WillDelayInterval != 0, PropWillDelayInterval)
	set(p.SessionExpiryInterval != 0, PropSessionExpiryInterval)
	set(p.ReceiveMaximum != 0, PropReceiveMaximum)
	set(p.MaximumPacketSize != 0, PropMaximumPacketSize)
	set(p.TopicAliasMaximum != 0, PropTopicAliasMaximum)
	set(p.RequestResponseInformation, PropRequestResponseInformation)
	set(p.RequestProblemInformation, PropRequestProblemInformation)
	set(p.AuthenticationMethod != "", PropAuthenticationMethod)
	set(len(p.AuthenticationData) > 0, PropAuthenticationData)
	set(p.AssignedClientIdentifier != "", PropAssignedClientIdentifier)
	set(p.ServerKeepAlive != 0, PropServerKeepAlive)
	set(p.MaximumQoS != 0, PropMaximumQoS)
	set(p.RetainAvailable, PropRetainAvailable)
	set(p.WildcardSubAvailable, PropWildcardSubscriptionAvailable)
	set(p.SubIDAvailable, PropSubscriptionIdentifierAvailable)
	set(p.SharedSubAvailable, PropSharedSubscriptionAvailable)
	set(p.ResponseInformation != "", PropResponseInformation)
	set(p.ServerReference != "", PropServerReference)
	set(p.ReasonString != "", PropReasonString)
	set(len(p.UserProperties) > 0, PropUserProperty)
	return s
}

// propsLen checks the properties p sends in packet type ctx and returns
// the length of their encoding without the Property Length, and which
// they are. A nil p sends none.
func propsLen(p *Properties, ctx byte) (n int, send PropSet, err error) {
	if p == nil {
		return 0, 0, nil
	}
	send = p.sendSet()
	if bad := send &^ allowedProps[ctx]; bad != 0 {
		id := PropID(bits.TrailingZeros64(uint64(bad)))
		return 0, 0, fmt.Errorf("%s may not carry property %s", ctxName(ctx), id)
	}
	where := ctxName(ctx)
	str := func(id PropID, v string) {
		if problem := stringProblem(v); problem != "" && err == nil {
			err = fmt.Errorf("%s property %s: %s", where, id, problem)
		}
		n += 3 + len(v)
	}
	bin := func(id PropID, v []byte) {
		if len(v) > MaxStringLength && err == nil {
			err = fmt.Errorf("%s property %s: %d bytes is over the MQTT limit of %d", where, id, len(v), MaxStringLength)
		}
		n += 3 + len(v)
	}
	bit := func(id PropID, v byte) {
		if v > 1 && err == nil {
			err = fmt.Errorf("%s property %s is %d, want 0 or 1", where, id, v)
		}
		n += 2
	}
	nonzero := func(id PropID, zero bool) {
		if zero && err == nil {
			err = fmt.Errorf("%s property %s is 0, which MQTT does not permit", where, id)
		}
	}
	for s := send; s != 0; s &= s - 1 {
		switch id := PropID(bits.TrailingZeros64(uint64(s))); id {
		case PropPayloadFormatIndicator:
			bit(id, p.PayloadFormatIndicator)
		case PropMaximumQoS:
			bit(id, p.MaximumQoS)
		case PropRequestProblemInformation, PropRequestResponseInformation, PropRetainAvailable,
			PropWildcardSubscriptionAvailable, PropSubscriptionIdentifierAvailable, PropSharedSubscriptionAvailable:
			n += 2
		case PropServerKeepAlive, PropTopicAliasMaximum:
			n += 3
		case PropReceiveMaximum:
			nonzero(id, p.ReceiveMaximum == 0)
			n += 3
		case PropTopicAlias:
			nonzero(id, p.TopicAlias == 0)
			n += 3
		case PropMessageExpiryInterval, PropSessionExpiryInterval, PropWillDelayInterval:
			n += 5
		case PropMaximumPacketSize:
			nonzero(id, p.MaximumPacketSize == 0)
			n += 5
		case PropSubscriptionIdentifier:
			if ctx == TypeSubscribe && len(p.SubscriptionIdentifiers) > 1 && err == nil {
				err = fmt.Errorf("SUBSCRIBE property Subscription Identifier %d times, want at most once", len(p.SubscriptionIdentifiers))
			}
			for _, v := range p.SubscriptionIdentifiers {
				nonzero(id, v == 0)
				if v > MaxVarInt && err == nil {
					err = fmt.Errorf("%s property %s %d is over the limit of %d", where, id, v, MaxVarInt)
				}
				n += 1 + VarIntLen(int(v))
			}
		case PropContentType:
			str(id, p.ContentType)
		case PropResponseTopic:
			str(id, p.ResponseTopic)
		case PropAssignedClientIdentifier:
			str(id, p.AssignedClientIdentifier)
		case PropAuthenticationMethod:
			str(id, p.AuthenticationMethod)
		case PropResponseInformation:
			str(id, p.ResponseInformation)
		case PropServerReference:
			str(id, p.ServerReference)
		case PropReasonString:
			str(id, p.ReasonString)
		case PropCorrelationData:
			bin(id, p.CorrelationData)
		case PropAuthenticationData:
			bin(id, p.AuthenticationData)
		case PropUserProperty:
			for _, kv := range p.UserProperties {
				str(id, kv.Key)
				str(id, kv.Value)
				n-- // one identifier for the two strings
			}
		}
	}
	if err == nil && n > MaxVarInt {
		err = fmt.Errorf("%s properties of %d bytes are over the MQTT limit of %d", where, n, MaxVarInt)
	}
	if err != nil {
		return 0, 0, err
	}
	return n, send, nil
}

// appendProps appends the Property Length n and the properties send of p,
// as checked and measured by propsLen.
func appendProps(b []byte, p *Properties, send PropSet, n int) []byte {
	b = AppendVarInt(b, n)
	for s := send; s != 0; s &= s - 1 {
		id := PropID(bits.TrailingZeros64(uint64(s)))
		switch id {
		case PropPayloadFormatIndicator:
			b = append(b, byte(id), p.PayloadFormatIndicator)
		case PropMaximumQoS:
			b = append(b, byte(id), p.MaximumQoS)
		case PropRequestProblemInformation:
			b = append(b, byte(id), b2i(p.RequestProblemInformation))
		case PropRequestResponseInformation:
			b = append(b, byte(id), b2i(p.RequestResponseInformation))
		case PropRetainAvailable:
			b = append(b, byte(id), b2i(p.RetainAvailable))
		case PropWildcardSubscriptionAvailable:
			b = append(b, byte(id), b2i(p.WildcardSubAvailable))
		case PropSubscriptionIdentifierAvailable:
			b = append(b, byte(id), b2i(p.SubIDAvailable))
		case PropSharedSubscriptionAvailable:
			b = append(b, byte(id), b2i(p.SharedSubAvailable))
		case PropServerKeepAlive:
			b = append16(b, id, p.ServerKeepAlive)
		case PropTopicAliasMaximum:
			b = append16(b, id, p.TopicAliasMaximum)
		case PropReceiveMaximum:
			b = append16(b, id, p.ReceiveMaximum)
		case PropTopicAlias:
			b = append16(b, id, p.TopicAlias)
		case PropMessageExpiryInterval:
			b = append32(b, id, p.MessageExpiryInterval)
		case PropSessionExpiryInterval:
			b = append32(b, id, p.SessionExpiryInterval)
		case PropWillDelayInterval:
			b = append32(b, id, p.WillDelayInterval)
		case PropMaximumPacketSize:
			b = append32(b, id, p.MaximumPacketSize)
		case PropSubscriptionIdentifier:
			for _, v := range p.SubscriptionIdentifiers {
				b = AppendVarInt(append(b, byte(id)), int(v))
			}
		case PropContentType:
			b = AppendString(append(b, byte(id)), p.ContentType)
		case PropResponseTopic:
			b = AppendString(append(b, byte(id)), p.ResponseTopic)
		case PropAssignedClientIdentifier:
			b = AppendString(append(b, byte(id)), p.AssignedClientIdentifier)
		case PropAuthenticationMethod:
			b = AppendString(append(b, byte(id)), p.AuthenticationMethod)
		case PropResponseInformation:
			b = AppendString(append(b, byte(id)), p.ResponseInformation)
		case PropServerReference:
			b = AppendString(append(b, byte(id)), p.ServerReference)
		case PropReasonString:
			b = AppendString(append(b, byte(id)), p.ReasonString)
		case PropCorrelationData:
			b = appendBinary(append(b, byte(id)), p.CorrelationData)
		case PropAuthenticationData:
			b = appendBinary(append(b, byte(id)), p.AuthenticationData)
		case PropUserProperty:
			for _, kv := range p.UserProperties {
				b = AppendString(AppendString(append(b, byte(id)), kv.Key), kv.Value)
			}
		}
	}
	return b
}

func b2i(v bool) byte {
	if v {
		return 1
	}
	return 0
}

func append16(b []byte, id PropID, v uint16) []byte {
	return append(b, byte(id), byte(v>>8), byte(v))
}

func append32(b []byte, id PropID, v uint32) []byte {
	return append(b, byte(id), byte(v>>24), byte(v>>16), byte(v>>8), byte(v))
}

// appendBinary appends Binary Data: a two-byte length and the bytes (§1.5.6).
func appendBinary(b, v []byte) []byte {
	b = append(b, byte(len(v)>>8), byte(len(v)))
	return append(b, v...)
}
