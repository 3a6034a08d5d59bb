package mqttwire

// MQTT 5.0 on the wire. In the v5*.go files clause numbers ([MQTT-x.y.z-n])
// and section numbers (§x.y.z) refer to the MQTT 5.0 specification (OASIS
// Standard, March 2019); the 3.1.1 functions in wire.go are untouched by
// them. A connection speaks one version: the functions and types whose
// names end in 5 are its MQTT 5 packets; PINGREQ and PINGRESP are the same
// in both versions, and Reader reads either.
//
// Decoders never panic and never allocate in proportion to a length field
// before checking it against the bytes that are there. What they refuse is
// a *DecodeError that names the packet, the field or property, and the
// reason code a CONNACK or DISCONNECT about it carries (§4.13).

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"
)

// Protocol versions, the Protocol Level byte of CONNECT [MQTT-3.1.2-2].
const (
	Version311 byte = 4 // MQTT 3.1.1
	Version5   byte = 5 // MQTT 5.0
)

// MaxVarInt is the largest value a Variable Byte Integer encodes (§1.5.5).
const MaxVarInt = MaxRemainingLength

// ErrProtocol marks an MQTT 5 Protocol Error (§4.13): a packet that parses
// but breaks a rule of the protocol. A *DecodeError with a reason code other
// than ReasonMalformedPacket is ErrProtocol.
var ErrProtocol = errors.New("protocol error")

// DecodeError is an MQTT 5 packet that a decoder refused. Its text is the
// reason code's name and what was wrong, e.g. "protocol error: CONNACK
// property Receive Maximum is 0".
type DecodeError struct {
	// Reason is the reason code a CONNACK or DISCONNECT about the packet
	// carries: ReasonMalformedPacket, ReasonProtocolError,
	// ReasonTopicAliasInvalid or ReasonUnsupportedProtocolVersion.
	Reason ReasonCode
	// Detail says which packet and field, and what was wrong.
	Detail string
}

// Error returns the reason code's name and the detail.
func (e *DecodeError) Error() string { return e.Reason.Name() + ": " + e.Detail }

// Is reports whether e is ErrMalformed (a Malformed Packet) or ErrProtocol
// (any other refusal).
func (e *DecodeError) Is(target error) bool {
	switch target {
	case ErrMalformed:
		return e.Reason == ReasonMalformedPacket
	case ErrProtocol:
		return e.Reason != ReasonMalformedPacket
	}
	return false
}

func malformed(format string, a ...any) error {
	return &DecodeError{Reason: ReasonMalformedPacket, Detail: fmt.Sprintf(format, a...)}
}

func protocolErr(format string, a ...any) error {
	return &DecodeError{Reason: ReasonProtocolError, Detail: fmt.Sprintf(format, a...)}
}

// AppendVarInt appends n as a Variable Byte Integer (§1.5.5), in the fewest
// bytes [MQTT-1.5.5-1]; n must be between 0 and MaxVarInt.
func AppendVarInt(b []byte, n int) []byte { return AppendRemainingLength(b, n) }

// VarIntLen returns how many bytes AppendVarInt takes for n.
func VarIntLen(n int) int {
	switch {
	case n < 1<<7:
		return 1
	case n < 1<<14:
		return 2
	case n < 1<<21:
		return 3
	}
	return 4
}

// DecodeVarInt decodes the Variable Byte Integer at the start of b (§1.5.5)
// and returns it and how many bytes encode it. One that b cuts short, or
// one longer than four bytes, is a Malformed Packet.
func DecodeVarInt(b []byte) (n, k int, err error) {
	n, k = varint(b)
	if k <= 0 {
		return 0, 0, malformed("variable byte integer %s", varintProblem(k))
	}
	return n, k, nil
}

// varint decodes the Variable Byte Integer at the start of b. k is the
// number of bytes read, 0 when b ends inside the integer and -1 when it
// runs over four bytes. A longer encoding than needed is accepted: the
// minimum is a duty of the sender [MQTT-1.5.5-1].
func varint(b []byte) (n, k int) {
	for i := 0; i < 4 && i < len(b); i++ {
		n |= int(b[i]&0x7f) << (7 * i)
		if b[i] < 0x80 {
			return n, i + 1
		}
	}
	if len(b) < 4 {
		return 0, 0
	}
	return 0, -1
}

func varintProblem(k int) string {
	if k == 0 {
		return "cut short"
	}
	return "longer than four bytes"
}

// PacketSize returns the size of a whole packet whose remaining length is
// n: the fixed header and n, the size that a Maximum Packet Size limits
// (§3.1.2.11.4, [MQTT-3.2.2-15]).
func PacketSize(n int) int { return 1 + VarIntLen(n) + n }

// utf8Problem says what makes b not a UTF-8 Encoded String, or "": it must
// be well-formed UTF-8 without surrogates [MQTT-1.5.4-1] and must not hold
// U+0000 [MQTT-1.5.4-2].
func utf8Problem(b []byte) string {
	if !utf8.Valid(b) {
		return "ill-formed UTF-8"
	}
	if bytes.IndexByte(b, 0) >= 0 {
		return "U+0000 in a UTF-8 string"
	}
	return ""
}

// stringProblem is utf8Problem for a string to encode, with its length.
func stringProblem(s string) string {
	if len(s) > MaxStringLength {
		return fmt.Sprintf("string of %d bytes is over the MQTT limit of %d", len(s), MaxStringLength)
	}
	if !utf8.ValidString(s) {
		return "ill-formed UTF-8"
	}
	if strings.IndexByte(s, 0) >= 0 {
		return "U+0000 in a UTF-8 string"
	}
	return ""
}

// readField reads a two-byte length and that many bytes from the start of
// b: a UTF-8 Encoded String's or Binary Data's bytes (§1.5.4, §1.5.6). The
// field aliases b. problem is set when b ends before the field does.
func readField(b []byte) (field, rest []byte, problem string) {
	if len(b) < 2 {
		return nil, nil, fmt.Sprintf("length cut short (%d bytes left)", len(b))
	}
	n := int(b[0])<<8 | int(b[1])
	if n > len(b)-2 {
		return nil, nil, fmt.Sprintf("%d bytes, beyond the %d left", n, len(b)-2)
	}
	return b[2 : 2+n : 2+n], b[2+n:], ""
}

// readString is readField for a UTF-8 Encoded String, which it also checks.
func readString(b []byte) (s, rest []byte, problem string) {
	s, rest, problem = readField(b)
	if problem == "" {
		problem = utf8Problem(s)
	}
	return s, rest, problem
}

// checkFlags checks the flags of a fixed header whose flags are reserved
// [MQTT-2.1.3-1].
func checkFlags(p Packet, want byte) error {
	if p.Header&0x0f != want {
		return malformed("%s with fixed header flags %#x, want %#x", TypeName(p.Type()), p.Header&0x0f, want)
	}
	return nil
}
