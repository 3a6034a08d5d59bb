// Package mqttwire is MQTT 3.1.1 and MQTT 5.0 on the wire: the control
// packets the engine's client and the load tool send, a buffered reader
// of the ones they receive, and their decoding. It knows nothing of
// sessions, connections or retries. Clause numbers refer to the MQTT
// 3.1.1 specification, except in the v5*.go files (MQTT 5.0: the
// functions and types whose names end in 5, properties and reason codes).
package mqttwire

import (
	"bufio"
	"errors"
	"fmt"
	"io"
)

// Control packet types, the high nibble of the fixed header
// [MQTT-2.2.1].
const (
	TypeConnect     byte = 1
	TypeConnack     byte = 2
	TypePublish     byte = 3
	TypePuback      byte = 4
	TypePubrec      byte = 5
	TypePubrel      byte = 6
	TypePubcomp     byte = 7
	TypeSubscribe   byte = 8
	TypeSuback      byte = 9
	TypeUnsubscribe byte = 10
	TypeUnsuback    byte = 11
	TypePingreq     byte = 12
	TypePingresp    byte = 13
	TypeDisconnect  byte = 14
	TypeAuth        byte = 15 // MQTT 5 only; reserved in 3.1.1
)

// MaxRemainingLength is the largest remaining length four bytes of seven
// bits can encode [MQTT-2.2.3].
const MaxRemainingLength = 268_435_455

// CONNACK return codes [MQTT-3.2.2.3].
const (
	ConnackAccepted              byte = 0
	ConnackBadProtocolVersion    byte = 1
	ConnackIDRejected            byte = 2
	ConnackServerUnavailable     byte = 3
	ConnackBadUsernameOrPassword byte = 4
	ConnackNotAuthorized         byte = 5
)

// ConnackReason says why a broker refused a connection with CONNACK
// return code code [MQTT-3.2.2.3]; "" for ConnackAccepted.
func ConnackReason(code byte) string {
	switch code {
	case ConnackAccepted:
		return ""
	case ConnackBadProtocolVersion:
		return "unacceptable protocol version"
	case ConnackIDRejected:
		return "client identifier rejected"
	case ConnackServerUnavailable:
		return "server unavailable"
	case ConnackBadUsernameOrPassword:
		return "bad username or password"
	case ConnackNotAuthorized:
		return "not authorized"
	}
	return fmt.Sprintf("CONNACK return code %d", code)
}

// SubackFailure is a SUBACK return code: the broker refused the filter
// [MQTT-3.9.3].
const SubackFailure byte = 0x80

// Fixed-header bytes with the flags MQTT requires, and the flags of
// PUBLISH and CONNECT.
const (
	HeaderPubrel        byte = TypePubrel<<4 | 0x02      // [MQTT-3.6.1-1]
	HeaderSubscribe     byte = TypeSubscribe<<4 | 0x02   // [MQTT-3.8.1-1]
	HeaderUnsubscribe   byte = TypeUnsubscribe<<4 | 0x02 // [MQTT-3.10.1-1]
	FlagDup             byte = 0x08
	FlagRetain          byte = 0x01
	ConnectFlagClean    byte = 0x02
	ConnectFlagPassword byte = 0x40
	ConnectFlagUsername byte = 0x80
)

// MaxStringLength is the longest string MQTT can encode [MQTT-1.5.3].
const MaxStringLength = 65535

const (
	// A body larger than the read buffer is read into memory that grows
	// as the data arrives, from bigReadFirst doubling up to steps of
	// bigReadChunk: the length the broker claims is not trusted up front.
	bigReadFirst = 16 << 10
	bigReadChunk = 1 << 20
)

// ErrMalformed marks a packet that breaks MQTT 3.1.1; a client closes the
// connection it came by. An MQTT 5 Malformed Packet (a *DecodeError with
// ReasonMalformedPacket) is ErrMalformed too.
var ErrMalformed = errors.New("malformed packet")

// TypeName returns the name of control packet type t, for errors.
func TypeName(t byte) string {
	names := [16]string{"reserved", "CONNECT", "CONNACK", "PUBLISH", "PUBACK", "PUBREC", "PUBREL", "PUBCOMP",
		"SUBSCRIBE", "SUBACK", "UNSUBSCRIBE", "UNSUBACK", "PINGREQ", "PINGRESP", "DISCONNECT", "AUTH"}
	return names[t&0x0f]
}

// AppendRemainingLength appends n in the variable-length encoding of the
// fixed header [MQTT-2.2.3]; n must be at most MaxRemainingLength.
func AppendRemainingLength(b []byte, n int) []byte {
	for {
		d := byte(n & 0x7f)
		n >>= 7
		if n > 0 {
			d |= 0x80
		}
		b = append(b, d)
		if n == 0 {
			return b
		}
	}
}

// DecodeRemainingLength decodes the remaining length at the start of b. It
// returns the length and how many bytes encode it; k is 0 when b ends
// before the encoding does, and err is set when the encoding is longer
// than four bytes [MQTT-2.2.3].
func DecodeRemainingLength(b []byte) (n, k int, err error) {
	mult := 1
	for i := 0; i < 4; i++ {
		if i >= len(b) {
			return 0, 0, nil
		}
		d := b[i]
		n += int(d&0x7f) * mult
		if d&0x80 == 0 {
			return n, i + 1, nil
		}
		mult <<= 7
	}
	return 0, 0, fmt.Errorf("remaining length longer than four bytes: %w", ErrMalformed)
}

// AppendString appends s with its two-byte length [MQTT-1.5.3].
func AppendString(b []byte, s string) []byte {
	b = append(b, byte(len(s)>>8), byte(len(s)))
	return append(b, s...)
}

// Connect is what CONNECT carries [MQTT-3.1].
type Connect struct {
	ClientID     string
	CleanSession bool
	KeepAlive    uint16 // seconds
	Username     string // sent when not empty
	Password     string // sent when username is
}

// AppendConnect appends CONNECT for protocol level 4 (MQTT 3.1.1), without
// a will. Over-long strings are an error.
func AppendConnect(b []byte, c Connect) ([]byte, error) {
	for _, s := range []string{c.ClientID, c.Username, c.Password} {
		if len(s) > MaxStringLength {
			return b, fmt.Errorf("connect: string of %d bytes is over the MQTT limit of %d", len(s), MaxStringLength)
		}
	}
	n := 10 + 2 + len(c.ClientID) // protocol name, level, flags, keep-alive; client id
	var flags byte
	if c.CleanSession {
		flags |= ConnectFlagClean
	}
	if c.Username != "" {
		flags |= ConnectFlagUsername | ConnectFlagPassword
		n += 2 + len(c.Username) + 2 + len(c.Password)
	}
	b = append(b, TypeConnect<<4)
	b = AppendRemainingLength(b, n)
	b = AppendString(b, "MQTT")
	b = append(b, 4, flags, byte(c.KeepAlive>>8), byte(c.KeepAlive))
	b = AppendString(b, c.ClientID)
	if c.Username != "" {
		b = AppendString(b, c.Username)
		b = AppendString(b, c.Password)
	}
	return b, nil
}

// PublishLength returns the remaining length of a PUBLISH packet.
func PublishLength(topic string, payload []byte, qos byte) int {
	n := 2 + len(topic) + len(payload)
	if qos > 0 {
		n += 2
	}
	return n
}

// AppendPublish appends a PUBLISH packet [MQTT-3.3]; id is left out at
// QoS 0. The caller checks the sizes: the topic at most MaxStringLength
// bytes, the remaining length at most MaxRemainingLength.
func AppendPublish(b []byte, topic string, payload []byte, qos byte, retain, dup bool, id uint16) []byte {
	h := TypePublish<<4 | qos<<1
	if retain {
		h |= FlagRetain
	}
	if dup {
		h |= FlagDup
	}
	b = append(b, h)
	b = AppendRemainingLength(b, PublishLength(topic, payload, qos))
	b = AppendString(b, topic)
	if qos > 0 {
		b = append(b, byte(id>>8), byte(id))
	}
	return append(b, payload...)
}

// AppendAck appends a packet whose body is a packet id: PUBACK, PUBREC,
// PUBREL or PUBCOMP (header is the whole first byte, with its flags).
func AppendAck(b []byte, header byte, id uint16) []byte {
	return append(b, header, 2, byte(id>>8), byte(id))
}

// AppendSubscribe appends SUBSCRIBE for filters, each at qos [MQTT-3.8].
func AppendSubscribe(b []byte, id uint16, filters []string, qos byte) []byte {
	n := 2
	for _, f := range filters {
		n += 2 + len(f) + 1
	}
	b = append(b, HeaderSubscribe)
	b = AppendRemainingLength(b, n)
	b = append(b, byte(id>>8), byte(id))
	for _, f := range filters {
		b = AppendString(b, f)
		b = append(b, qos)
	}
	return b
}

// AppendUnsubscribe appends UNSUBSCRIBE for filters [MQTT-3.10].
func AppendUnsubscribe(b []byte, id uint16, filters []string) []byte {
	n := 2
	for _, f := range filters {
		n += 2 + len(f)
	}
	b = append(b, HeaderUnsubscribe)
	b = AppendRemainingLength(b, n)
	b = append(b, byte(id>>8), byte(id))
	for _, f := range filters {
		b = AppendString(b, f)
	}
	return b
}

// Packet is one control packet as read: its first byte and its body. The
// body may alias the reader's buffer; it is valid until the next read.
type Packet struct {
	Header byte
	Body   []byte
}

// Type returns the packet's control packet type.
func (p Packet) Type() byte { return p.Header >> 4 }

// Reader reads control packets from a buffered connection, in place
// where the packet fits the buffer. Make one with NewReader.
type Reader struct {
	r       *bufio.Reader
	discard int    // bytes of the last packet still in r
	big     []byte // body of a packet larger than r's buffer
}

// NewReader returns a Reader of the packets in r.
func NewReader(r *bufio.Reader) *Reader { return &Reader{r: r} }

// Next returns the next packet. Its body is valid until the next call. A
// stream that ends inside a packet is io.ErrUnexpectedEOF.
func (pr *Reader) Next() (Packet, error) {
	if pr.discard > 0 {
		_, _ = pr.r.Discard(pr.discard) // buffered: cannot fail
		pr.discard = 0
	}
	if cap(pr.big) > bigReadChunk {
		pr.big = nil // not kept after an exceptionally large packet
	}
	// The fixed header: a type byte and one to four length bytes.
	var header byte
	var n, k int
	for want := 2; k == 0; want++ {
		hdr, err := pr.r.Peek(want)
		if err != nil {
			if len(hdr) > 0 && errors.Is(err, io.EOF) {
				err = io.ErrUnexpectedEOF
			}
			return Packet{}, err
		}
		header = hdr[0]
		if n, k, err = DecodeRemainingLength(hdr[1:]); err != nil {
			return Packet{}, err // after four length bytes at the latest
		}
	}
	size := 1 + k + n
	if size <= pr.r.Size() {
		b, err := pr.r.Peek(size)
		if err != nil {
			if errors.Is(err, io.EOF) {
				err = io.ErrUnexpectedEOF
			}
			return Packet{}, err
		}
		pr.discard = size
		return Packet{Header: header, Body: b[1+k:]}, nil
	}
	// Larger than the buffer: read it into big, growing it as the data
	// arrives rather than trusting the length up front.
	_, _ = pr.r.Discard(1 + k)
	pr.big = pr.big[:0]
	for len(pr.big) < n {
		if len(pr.big) == cap(pr.big) {
			grow := min(n-len(pr.big), max(cap(pr.big), bigReadFirst), bigReadChunk)
			nb := make([]byte, len(pr.big), len(pr.big)+grow)
			copy(nb, pr.big)
			pr.big = nb
		}
		m, err := io.ReadFull(pr.r, pr.big[len(pr.big):min(cap(pr.big), n)])
		pr.big = pr.big[:len(pr.big)+m]
		if err != nil {
			if errors.Is(err, io.EOF) {
				err = io.ErrUnexpectedEOF
			}
			return Packet{}, err
		}
	}
	return Packet{Header: header, Body: pr.big}, nil
}

// Complete reports whether a whole packet is buffered, so that Next will
// not wait for the network.
func (pr *Reader) Complete() bool {
	b, _ := pr.r.Peek(pr.r.Buffered())
	b = b[pr.discard:]
	if len(b) < 2 {
		return false
	}
	n, k, err := DecodeRemainingLength(b[1:])
	if err != nil {
		return true // next reports it at once
	}
	return k > 0 && len(b) >= 1+k+n
}

// Publish is a decoded PUBLISH; Topic and Payload alias the packet.
type Publish struct {
	Topic   []byte
	Payload []byte
	QoS     byte
	Dup     bool
	Retain  bool
	ID      uint16
}

// DecodePublish decodes a PUBLISH packet's flags, variable header and
// payload [MQTT-3.3].
func DecodePublish(p Packet) (Publish, error) {
	m := Publish{
		QoS:    (p.Header >> 1) & 0x03,
		Dup:    p.Header&FlagDup != 0,
		Retain: p.Header&FlagRetain != 0,
	}
	if m.QoS > 2 {
		return m, fmt.Errorf("PUBLISH with QoS 3: %w", ErrMalformed) // [MQTT-3.3.1-4]
	}
	b := p.Body
	if len(b) < 2 {
		return m, fmt.Errorf("PUBLISH without a topic: %w", ErrMalformed)
	}
	tl := int(b[0])<<8 | int(b[1])
	b = b[2:]
	if len(b) < tl {
		return m, fmt.Errorf("PUBLISH topic of %d bytes in a body of %d: %w", tl, len(p.Body), ErrMalformed)
	}
	m.Topic, b = b[:tl], b[tl:]
	if m.QoS > 0 {
		if len(b) < 2 {
			return m, fmt.Errorf("PUBLISH at QoS %d without a packet id: %w", m.QoS, ErrMalformed)
		}
		m.ID = uint16(b[0])<<8 | uint16(b[1])
		b = b[2:]
	}
	m.Payload = b
	return m, nil
}

// DecodeID decodes the packet id that begins the body of PUBACK, PUBREC,
// PUBREL, PUBCOMP, SUBACK and UNSUBACK.
func DecodeID(p Packet) (uint16, error) {
	if len(p.Body) < 2 {
		return 0, fmt.Errorf("%s of %d bytes, want a packet id: %w", TypeName(p.Type()), len(p.Body), ErrMalformed)
	}
	return uint16(p.Body[0])<<8 | uint16(p.Body[1]), nil
}

// DecodeConnack returns CONNACK's session-present flag and return code
// [MQTT-3.2.2].
func DecodeConnack(p Packet) (sessionPresent bool, code byte, err error) {
	if p.Type() != TypeConnack {
		return false, 0, fmt.Errorf("got %s, want CONNACK: %w", TypeName(p.Type()), ErrMalformed)
	}
	if len(p.Body) != 2 {
		return false, 0, fmt.Errorf("CONNACK of %d bytes, want 2: %w", len(p.Body), ErrMalformed)
	}
	return p.Body[0]&0x01 != 0, p.Body[1], nil
}
