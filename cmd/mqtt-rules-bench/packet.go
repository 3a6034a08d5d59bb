package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
)

// MQTT 3.1.1 control packet types (the high nibble of the fixed header),
// [MQTT-2.2.1].
const (
	typeConnect     byte = 1
	typeConnack     byte = 2
	typePublish     byte = 3
	typePuback      byte = 4
	typeSubscribe   byte = 8
	typeSuback      byte = 9
	typePingreq     byte = 12
	typePingresp    byte = 13
	typeDisconnect  byte = 14
	maxRemainingLen      = 268_435_455 // [MQTT-2.2.3]: four bytes of 7 bits
)

// errMalformed reports a packet that does not follow MQTT 3.1.1.
var errMalformed = errors.New("malformed packet")

// appendRemainingLength appends n in the variable-length encoding of the
// fixed header [MQTT-2.2.3].
func appendRemainingLength(b []byte, n int) []byte {
	for {
		d := byte(n % 128)
		n /= 128
		if n > 0 {
			d |= 0x80
		}
		b = append(b, d)
		if n == 0 {
			return b
		}
	}
}

// writeRemainingLength writes n like appendRemainingLength, straight into w.
func writeRemainingLength(w *bufio.Writer, n int) {
	for {
		d := byte(n % 128)
		n /= 128
		if n > 0 {
			d |= 0x80
		}
		_ = w.WriteByte(d) // bufio errors are sticky and surface on Flush
		if n == 0 {
			return
		}
	}
}

// readRemainingLength reads the variable-length remaining length.
func readRemainingLength(r io.ByteReader) (int, error) {
	n, mult := 0, 1
	for i := 0; i < 4; i++ {
		d, err := r.ReadByte()
		if err != nil {
			return 0, err
		}
		n += int(d&0x7f) * mult
		if d&0x80 == 0 {
			return n, nil
		}
		mult *= 128
	}
	return 0, fmt.Errorf("remaining length over 4 bytes: %w", errMalformed)
}

// appendString appends a UTF-8 string with its two-byte length [MQTT-1.5.3].
func appendString(b []byte, s string) []byte {
	b = append(b, byte(len(s)>>8), byte(len(s)))
	return append(b, s...)
}

// connectPacket encodes CONNECT [MQTT-3.1] for protocol level 4 without
// will, username or password.
func connectPacket(clientID string, cleanSession bool, keepAliveSec uint16) []byte {
	var flags byte
	if cleanSession {
		flags |= 0x02
	}
	body := make([]byte, 0, 12+len(clientID))
	body = appendString(body, "MQTT")
	body = append(body, 4, flags, byte(keepAliveSec>>8), byte(keepAliveSec))
	body = appendString(body, clientID)
	b := []byte{typeConnect << 4}
	b = appendRemainingLength(b, len(body))
	return append(b, body...)
}

// subscribePacket encodes SUBSCRIBE [MQTT-3.8]; its fixed header flags
// must be 0010 [MQTT-3.8.1-1].
func subscribePacket(id uint16, filters []string, qos byte) []byte {
	body := []byte{byte(id >> 8), byte(id)}
	for _, f := range filters {
		body = appendString(body, f)
		body = append(body, qos)
	}
	b := []byte{typeSubscribe<<4 | 0x02}
	b = appendRemainingLength(b, len(body))
	return append(b, body...)
}

// publishLen returns the remaining length of a PUBLISH packet.
func publishLen(topic string, payload []byte, qos byte) int {
	n := 2 + len(topic) + len(payload)
	if qos > 0 {
		n += 2
	}
	return n
}

// writePublish writes a PUBLISH packet [MQTT-3.3] into w without copying
// topic or payload into an intermediate buffer. id is ignored at QoS 0.
func writePublish(w *bufio.Writer, topic string, payload []byte, qos byte, id uint16, dup bool) {
	h := typePublish<<4 | qos<<1
	if dup {
		h |= 0x08
	}
	_ = w.WriteByte(h)
	writeRemainingLength(w, publishLen(topic, payload, qos))
	_ = w.WriteByte(byte(len(topic) >> 8))
	_ = w.WriteByte(byte(len(topic)))
	_, _ = w.WriteString(topic)
	if qos > 0 {
		_ = w.WriteByte(byte(id >> 8))
		_ = w.WriteByte(byte(id))
	}
	_, _ = w.Write(payload)
}

// writeAck writes a two-byte-body packet holding a packet id (PUBACK).
func writeAck(w *bufio.Writer, typ byte, id uint16) {
	_ = w.WriteByte(typ << 4)
	_ = w.WriteByte(2)
	_ = w.WriteByte(byte(id >> 8))
	_ = w.WriteByte(byte(id))
}

// packet is one control packet as read: its fixed-header byte and body.
// body aliases the reader's buffer and is valid until the next read.
type packet struct {
	header byte
	body   []byte
}

// typ returns the packet's control packet type.
func (p packet) typ() byte { return p.header >> 4 }

// readPacket reads one control packet from r into buf (grown as needed)
// and returns it with the buffer to reuse next time.
func readPacket(r *bufio.Reader, buf []byte) (packet, []byte, error) {
	h, err := r.ReadByte()
	if err != nil {
		return packet{}, buf, err
	}
	n, err := readRemainingLength(r)
	if err != nil {
		return packet{}, buf, err
	}
	if cap(buf) < n {
		buf = make([]byte, n, max(n, 2*cap(buf)))
	}
	buf = buf[:n]
	if _, err := io.ReadFull(r, buf); err != nil {
		return packet{}, buf, err
	}
	return packet{header: h, body: buf}, buf, nil
}

// publishMsg is a decoded PUBLISH. Topic and Payload alias the packet body.
type publishMsg struct {
	Topic   []byte
	Payload []byte
	QoS     byte
	Dup     bool
	Retain  bool
	ID      uint16
}

// decodePublish decodes a PUBLISH packet's variable header and payload.
func decodePublish(p packet) (publishMsg, error) {
	m := publishMsg{
		QoS:    (p.header >> 1) & 0x03,
		Dup:    p.header&0x08 != 0,
		Retain: p.header&0x01 != 0,
	}
	if m.QoS > 2 {
		return m, fmt.Errorf("publish qos 3: %w", errMalformed) // [MQTT-3.3.1-4]
	}
	b := p.body
	if len(b) < 2 {
		return m, fmt.Errorf("publish without topic: %w", errMalformed)
	}
	tl := int(b[0])<<8 | int(b[1])
	b = b[2:]
	if len(b) < tl {
		return m, fmt.Errorf("publish topic longer than packet: %w", errMalformed)
	}
	m.Topic, b = b[:tl], b[tl:]
	if m.QoS > 0 {
		if len(b) < 2 {
			return m, fmt.Errorf("publish without packet id: %w", errMalformed)
		}
		m.ID = uint16(b[0])<<8 | uint16(b[1])
		b = b[2:]
	}
	m.Payload = b
	return m, nil
}

// decodeID decodes the packet id of PUBACK or SUBACK.
func decodeID(p packet) (uint16, error) {
	if len(p.body) < 2 {
		return 0, fmt.Errorf("packet type %d without packet id: %w", p.typ(), errMalformed)
	}
	return uint16(p.body[0])<<8 | uint16(p.body[1]), nil
}

// connackError maps a CONNACK return code [MQTT-3.2.2.3] to an error.
func connackError(code byte) error {
	switch code {
	case 0:
		return nil
	case 1:
		return errors.New("connection refused: unacceptable protocol version")
	case 2:
		return errors.New("connection refused: identifier rejected")
	case 3:
		return errors.New("connection refused: server unavailable")
	case 4:
		return errors.New("connection refused: bad user name or password")
	case 5:
		return errors.New("connection refused: not authorized")
	default:
		return fmt.Errorf("connection refused: return code %d", code)
	}
}
