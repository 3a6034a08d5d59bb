package mqttc

import (
	"bufio"
	"errors"
	"fmt"
	"io"
)

// MQTT 3.1.1 control packet types, the high nibble of the fixed header
// [MQTT-2.2.1].
const (
	pktConnect     byte = 1
	pktConnack     byte = 2
	pktPublish     byte = 3
	pktPuback      byte = 4
	pktPubrec      byte = 5
	pktPubrel      byte = 6
	pktPubcomp     byte = 7
	pktSubscribe   byte = 8
	pktSuback      byte = 9
	pktUnsubscribe byte = 10
	pktUnsuback    byte = 11
	pktPingreq     byte = 12
	pktPingresp    byte = 13
	pktDisconnect  byte = 14
)

// maxRemainingLength is the largest remaining length four bytes of seven
// bits can encode [MQTT-2.2.3].
const maxRemainingLength = 268_435_455

// CONNACK return codes [MQTT-3.2.2.3].
const (
	connackAccepted              byte = 0
	connackBadProtocolVersion    byte = 1
	connackIDRejected            byte = 2
	connackServerUnavailable     byte = 3
	connackBadUsernameOrPassword byte = 4
	connackNotAuthorized         byte = 5
)

// subackFailure is a SUBACK return code: the broker refused the filter
// [MQTT-3.9.3].
const subackFailure byte = 0x80

// Fixed-header bytes and flags.
const (
	fixedHeaderPubrel      byte = pktPubrel<<4 | 0x02      // [MQTT-3.6.1-1]
	fixedHeaderSubscribe   byte = pktSubscribe<<4 | 0x02   // [MQTT-3.8.1-1]
	fixedHeaderUnsubscribe byte = pktUnsubscribe<<4 | 0x02 // [MQTT-3.10.1-1]
	publishFlagDup         byte = 0x08
	publishFlagRetain      byte = 0x01
	connectFlagClean       byte = 0x02
	connectFlagPassword    byte = 0x40
	connectFlagUsername    byte = 0x80
)

const (
	maxStringLength = 65535 // [MQTT-1.5.3]
	// A body larger than the read buffer is read into memory that grows
	// as the data arrives, from bigReadFirst doubling up to steps of
	// bigReadChunk: the length the broker claims is not trusted up front.
	bigReadFirst = 16 << 10
	bigReadChunk = 1 << 20
)

// errMalformed marks a packet from the broker that breaks MQTT 3.1.1; the
// connection is closed when one arrives.
var errMalformed = errors.New("malformed packet")

// typeName returns the name of control packet type t, for errors.
func typeName(t byte) string {
	names := [16]string{"reserved", "CONNECT", "CONNACK", "PUBLISH", "PUBACK", "PUBREC", "PUBREL", "PUBCOMP",
		"SUBSCRIBE", "SUBACK", "UNSUBSCRIBE", "UNSUBACK", "PINGREQ", "PINGRESP", "DISCONNECT", "reserved"}
	return names[t&0x0f]
}

// appendRemainingLength appends n in the variable-length encoding of the
// fixed header [MQTT-2.2.3]; n must be at most maxRemainingLength.
func appendRemainingLength(b []byte, n int) []byte {
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

// decodeRemainingLength decodes the remaining length at the start of b. It
// returns the length and how many bytes encode it; k is 0 when b ends
// before the encoding does, and err is set when the encoding is longer
// than four bytes [MQTT-2.2.3].
func decodeRemainingLength(b []byte) (n, k int, err error) {
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
	return 0, 0, fmt.Errorf("remaining length longer than four bytes: %w", errMalformed)
}

// appendString appends s with its two-byte length [MQTT-1.5.3].
func appendString(b []byte, s string) []byte {
	b = append(b, byte(len(s)>>8), byte(len(s)))
	return append(b, s...)
}

// connectPacket is what CONNECT carries [MQTT-3.1].
type connectPacket struct {
	clientID     string
	cleanSession bool
	keepAlive    uint16 // seconds
	username     string // sent when not empty
	password     string // sent when username is
}

// appendConnect appends CONNECT for protocol level 4 (MQTT 3.1.1), without
// a will. Over-long strings are an error.
func appendConnect(b []byte, c connectPacket) ([]byte, error) {
	for _, s := range []string{c.clientID, c.username, c.password} {
		if len(s) > maxStringLength {
			return b, fmt.Errorf("connect: string of %d bytes is over the MQTT limit of %d", len(s), maxStringLength)
		}
	}
	n := 10 + 2 + len(c.clientID) // protocol name, level, flags, keep-alive; client id
	var flags byte
	if c.cleanSession {
		flags |= connectFlagClean
	}
	if c.username != "" {
		flags |= connectFlagUsername | connectFlagPassword
		n += 2 + len(c.username) + 2 + len(c.password)
	}
	b = append(b, pktConnect<<4)
	b = appendRemainingLength(b, n)
	b = appendString(b, "MQTT")
	b = append(b, 4, flags, byte(c.keepAlive>>8), byte(c.keepAlive))
	b = appendString(b, c.clientID)
	if c.username != "" {
		b = appendString(b, c.username)
		b = appendString(b, c.password)
	}
	return b, nil
}

// publishLength returns the remaining length of a PUBLISH packet.
func publishLength(topic string, payload []byte, qos byte) int {
	n := 2 + len(topic) + len(payload)
	if qos > 0 {
		n += 2
	}
	return n
}

// appendPublish appends a PUBLISH packet [MQTT-3.3]; id is left out at
// QoS 0. The caller checks the sizes (checkPublish).
func appendPublish(b []byte, topic string, payload []byte, qos byte, retain, dup bool, id uint16) []byte {
	h := pktPublish<<4 | qos<<1
	if retain {
		h |= publishFlagRetain
	}
	if dup {
		h |= publishFlagDup
	}
	b = append(b, h)
	b = appendRemainingLength(b, publishLength(topic, payload, qos))
	b = appendString(b, topic)
	if qos > 0 {
		b = append(b, byte(id>>8), byte(id))
	}
	return append(b, payload...)
}

// appendAck appends a packet whose body is a packet id: PUBACK, PUBREC,
// PUBREL or PUBCOMP (header is the whole first byte, with its flags).
func appendAck(b []byte, header byte, id uint16) []byte {
	return append(b, header, 2, byte(id>>8), byte(id))
}

// appendSubscribe appends SUBSCRIBE for filters, each at qos [MQTT-3.8].
func appendSubscribe(b []byte, id uint16, filters []string, qos byte) []byte {
	n := 2
	for _, f := range filters {
		n += 2 + len(f) + 1
	}
	b = append(b, fixedHeaderSubscribe)
	b = appendRemainingLength(b, n)
	b = append(b, byte(id>>8), byte(id))
	for _, f := range filters {
		b = appendString(b, f)
		b = append(b, qos)
	}
	return b
}

// appendUnsubscribe appends UNSUBSCRIBE for filters [MQTT-3.10].
func appendUnsubscribe(b []byte, id uint16, filters []string) []byte {
	n := 2
	for _, f := range filters {
		n += 2 + len(f)
	}
	b = append(b, fixedHeaderUnsubscribe)
	b = appendRemainingLength(b, n)
	b = append(b, byte(id>>8), byte(id))
	for _, f := range filters {
		b = appendString(b, f)
	}
	return b
}

// packet is one control packet as read: its first byte and its body. The
// body may alias the reader's buffer; it is valid until the next read.
type packet struct {
	header byte
	body   []byte
}

func (p packet) typ() byte { return p.header >> 4 }

// packetReader reads control packets from a buffered connection, in place
// where the packet fits the buffer.
type packetReader struct {
	r       *bufio.Reader
	discard int    // bytes of the last packet still in r
	big     []byte // body of a packet larger than r's buffer
}

// next returns the next packet. Its body is valid until the next call. A
// stream that ends inside a packet is io.ErrUnexpectedEOF.
func (pr *packetReader) next() (packet, error) {
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
			return packet{}, err
		}
		header = hdr[0]
		if n, k, err = decodeRemainingLength(hdr[1:]); err != nil {
			return packet{}, err // after four length bytes at the latest
		}
	}
	size := 1 + k + n
	if size <= pr.r.Size() {
		b, err := pr.r.Peek(size)
		if err != nil {
			if errors.Is(err, io.EOF) {
				err = io.ErrUnexpectedEOF
			}
			return packet{}, err
		}
		pr.discard = size
		return packet{header: header, body: b[1+k:]}, nil
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
			return packet{}, err
		}
	}
	return packet{header: header, body: pr.big}, nil
}

// complete reports whether a whole packet is buffered, so that next will
// not wait for the network.
func (pr *packetReader) complete() bool {
	b, _ := pr.r.Peek(pr.r.Buffered())
	b = b[pr.discard:]
	if len(b) < 2 {
		return false
	}
	n, k, err := decodeRemainingLength(b[1:])
	if err != nil {
		return true // next reports it at once
	}
	return k > 0 && len(b) >= 1+k+n
}

// publishPacket is a decoded PUBLISH; topic and payload alias the packet.
type publishPacket struct {
	topic   []byte
	payload []byte
	qos     byte
	dup     bool
	retain  bool
	id      uint16
}

// decodePublish decodes a PUBLISH packet's flags, variable header and
// payload [MQTT-3.3].
func decodePublish(p packet) (publishPacket, error) {
	m := publishPacket{
		qos:    (p.header >> 1) & 0x03,
		dup:    p.header&publishFlagDup != 0,
		retain: p.header&publishFlagRetain != 0,
	}
	if m.qos > 2 {
		return m, fmt.Errorf("PUBLISH with QoS 3: %w", errMalformed) // [MQTT-3.3.1-4]
	}
	b := p.body
	if len(b) < 2 {
		return m, fmt.Errorf("PUBLISH without a topic: %w", errMalformed)
	}
	tl := int(b[0])<<8 | int(b[1])
	b = b[2:]
	if len(b) < tl {
		return m, fmt.Errorf("PUBLISH topic of %d bytes in a body of %d: %w", tl, len(p.body), errMalformed)
	}
	m.topic, b = b[:tl], b[tl:]
	if m.qos > 0 {
		if len(b) < 2 {
			return m, fmt.Errorf("PUBLISH at QoS %d without a packet id: %w", m.qos, errMalformed)
		}
		m.id = uint16(b[0])<<8 | uint16(b[1])
		b = b[2:]
	}
	m.payload = b
	return m, nil
}

// decodeID decodes the packet id that begins the body of PUBACK, PUBREC,
// PUBREL, PUBCOMP, SUBACK and UNSUBACK.
func decodeID(p packet) (uint16, error) {
	if len(p.body) < 2 {
		return 0, fmt.Errorf("%s of %d bytes, want a packet id: %w", typeName(p.typ()), len(p.body), errMalformed)
	}
	return uint16(p.body[0])<<8 | uint16(p.body[1]), nil
}

// decodeConnack returns CONNACK's session-present flag and return code
// [MQTT-3.2.2].
func decodeConnack(p packet) (sessionPresent bool, code byte, err error) {
	if p.typ() != pktConnack {
		return false, 0, fmt.Errorf("got %s, want CONNACK: %w", typeName(p.typ()), errMalformed)
	}
	if len(p.body) != 2 {
		return false, 0, fmt.Errorf("CONNACK of %d bytes, want 2: %w", len(p.body), errMalformed)
	}
	return p.body[0]&0x01 != 0, p.body[1], nil
}
