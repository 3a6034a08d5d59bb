package mqttwire

import (
	"fmt"
	"strings"
)

// ReasonCode is an MQTT 5 reason code (§2.4): below 0x80 an operation
// succeeded, from 0x80 it failed.
type ReasonCode byte

// MQTT 5 reason codes (§2.4, Table 2-6). 0x00 has three names, by packet.
const (
	ReasonSuccess                             ReasonCode = 0x00 // CONNACK, PUBACK, PUBREC, PUBREL, PUBCOMP, UNSUBACK, AUTH
	ReasonNormalDisconnection                 ReasonCode = 0x00 // DISCONNECT
	ReasonGrantedQoS0                         ReasonCode = 0x00 // SUBACK
	ReasonGrantedQoS1                         ReasonCode = 0x01 // SUBACK
	ReasonGrantedQoS2                         ReasonCode = 0x02 // SUBACK
	ReasonDisconnectWithWill                  ReasonCode = 0x04 // DISCONNECT
	ReasonNoMatchingSubscribers               ReasonCode = 0x10 // PUBACK, PUBREC
	ReasonNoSubscriptionExisted               ReasonCode = 0x11 // UNSUBACK
	ReasonContinueAuthentication              ReasonCode = 0x18 // AUTH
	ReasonReauthenticate                      ReasonCode = 0x19 // AUTH
	ReasonUnspecifiedError                    ReasonCode = 0x80
	ReasonMalformedPacket                     ReasonCode = 0x81
	ReasonProtocolError                       ReasonCode = 0x82
	ReasonImplementationSpecificError         ReasonCode = 0x83
	ReasonUnsupportedProtocolVersion          ReasonCode = 0x84
	ReasonClientIdentifierNotValid            ReasonCode = 0x85
	ReasonBadUsernameOrPassword               ReasonCode = 0x86
	ReasonNotAuthorized                       ReasonCode = 0x87
	ReasonServerUnavailable                   ReasonCode = 0x88
	ReasonServerBusy                          ReasonCode = 0x89
	ReasonBanned                              ReasonCode = 0x8A
	ReasonServerShuttingDown                  ReasonCode = 0x8B
	ReasonBadAuthenticationMethod             ReasonCode = 0x8C
	ReasonKeepAliveTimeout                    ReasonCode = 0x8D
	ReasonSessionTakenOver                    ReasonCode = 0x8E
	ReasonTopicFilterInvalid                  ReasonCode = 0x8F
	ReasonTopicNameInvalid                    ReasonCode = 0x90
	ReasonPacketIdentifierInUse               ReasonCode = 0x91
	ReasonPacketIdentifierNotFound            ReasonCode = 0x92
	ReasonReceiveMaximumExceeded              ReasonCode = 0x93
	ReasonTopicAliasInvalid                   ReasonCode = 0x94
	ReasonPacketTooLarge                      ReasonCode = 0x95
	ReasonMessageRateTooHigh                  ReasonCode = 0x96
	ReasonQuotaExceeded                       ReasonCode = 0x97
	ReasonAdministrativeAction                ReasonCode = 0x98
	ReasonPayloadFormatInvalid                ReasonCode = 0x99
	ReasonRetainNotSupported                  ReasonCode = 0x9A
	ReasonQoSNotSupported                     ReasonCode = 0x9B
	ReasonUseAnotherServer                    ReasonCode = 0x9C
	ReasonServerMoved                         ReasonCode = 0x9D
	ReasonSharedSubscriptionsNotSupported     ReasonCode = 0x9E
	ReasonConnectionRateExceeded              ReasonCode = 0x9F
	ReasonMaximumConnectTime                  ReasonCode = 0xA0
	ReasonSubscriptionIdentifiersNotSupported ReasonCode = 0xA1
	ReasonWildcardSubscriptionsNotSupported   ReasonCode = 0xA2
)

// reasonNames are the names of §2.4's table, lower-cased for messages.
var reasonNames = [256]string{
	0x00: "success",
	0x01: "granted QoS 1",
	0x02: "granted QoS 2",
	0x04: "disconnect with will message",
	0x10: "no matching subscribers",
	0x11: "no subscription existed",
	0x18: "continue authentication",
	0x19: "re-authenticate",
	0x80: "unspecified error",
	0x81: "malformed packet",
	0x82: "protocol error",
	0x83: "implementation specific error",
	0x84: "unsupported protocol version",
	0x85: "client identifier not valid",
	0x86: "bad user name or password",
	0x87: "not authorized",
	0x88: "server unavailable",
	0x89: "server busy",
	0x8A: "banned",
	0x8B: "server shutting down",
	0x8C: "bad authentication method",
	0x8D: "keep alive timeout",
	0x8E: "session taken over",
	0x8F: "topic filter invalid",
	0x90: "topic name invalid",
	0x91: "packet identifier in use",
	0x92: "packet identifier not found",
	0x93: "receive maximum exceeded",
	0x94: "topic alias invalid",
	0x95: "packet too large",
	0x96: "message rate too high",
	0x97: "quota exceeded",
	0x98: "administrative action",
	0x99: "payload format invalid",
	0x9A: "retain not supported",
	0x9B: "QoS not supported",
	0x9C: "use another server",
	0x9D: "server moved",
	0x9E: "shared subscriptions not supported",
	0x9F: "connection rate exceeded",
	0xA0: "maximum connect time",
	0xA1: "subscription identifiers not supported",
	0xA2: "wildcard subscriptions not supported",
}

// Name returns the reason code's name in §2.4, lower-cased ("not
// authorized"); 0x00 is "success". An unknown code is "unknown reason code".
func (r ReasonCode) Name() string {
	if n := reasonNames[r]; n != "" {
		return n
	}
	return "unknown reason code"
}

// String returns the code in hex and its name, as users read it in errors:
// "0x87 not authorized".
func (r ReasonCode) String() string { return fmt.Sprintf("0x%02x %s", byte(r), r.Name()) }

// IsError reports whether r says an operation failed (0x80 or more).
func (r ReasonCode) IsError() bool { return r >= 0x80 }

// ReasonText is r.String() for a code that packet type t carried: 0x00 is
// "normal disconnection" in DISCONNECT and "granted QoS 0" in SUBACK.
func ReasonText(t byte, r ReasonCode) string {
	if r == 0 {
		switch t {
		case TypeDisconnect:
			return "0x00 normal disconnection"
		case TypeSuback:
			return "0x00 granted QoS 0"
		}
	}
	return r.String()
}

// ReasonError is a failure reason code (0x80 or more) that the peer sent,
// as an error, with the Reason String and Server Reference properties that
// came with it.
type ReasonError struct {
	Packet          byte // the packet type that carried the code: TypeConnack, TypeDisconnect, TypePuback, ...
	Reason          ReasonCode
	ReasonString    string // the Reason String property, "" when absent
	ServerReference string // the Server Reference property, "" when absent
}

// Error renders the refusal as users read it, e.g. `connection refused:
// 0x86 bad user name or password (reason: "token expired")` for CONNACK
// and `disconnected: 0x8b server shutting down` for DISCONNECT.
func (e *ReasonError) Error() string {
	var b strings.Builder
	switch e.Packet {
	case TypeConnack:
		b.WriteString("connection refused: ")
	case TypeDisconnect:
		b.WriteString("disconnected: ")
	default:
		b.WriteString(TypeName(e.Packet))
		b.WriteString(" refused: ")
	}
	b.WriteString(ReasonText(e.Packet, e.Reason))
	if e.ReasonString != "" || e.ServerReference != "" {
		b.WriteString(" (")
		if e.ReasonString != "" {
			fmt.Fprintf(&b, "reason: %q", e.ReasonString)
		}
		if e.ServerReference != "" {
			if e.ReasonString != "" {
				b.WriteString(", ")
			}
			fmt.Fprintf(&b, "server reference: %q", e.ServerReference)
		}
		b.WriteString(")")
	}
	return b.String()
}

// reasonErr returns a *ReasonError for a failure code, else nil.
func reasonErr(t byte, r ReasonCode, p *Properties) error {
	if !r.IsError() {
		return nil
	}
	return &ReasonError{Packet: t, Reason: r, ReasonString: p.ReasonString, ServerReference: p.ServerReference}
}
