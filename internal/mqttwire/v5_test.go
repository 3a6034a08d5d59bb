package mqttwire

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"reflect"
	"runtime"
	"strings"
	"testing"
	"testing/iotest"
)

// ps is the set of ids, for the Present of expected properties.
func ps(ids ...PropID) PropSet {
	var s PropSet
	for _, id := range ids {
		s = s.With(id)
	}
	return s
}

// pkt is a packet of header and the concatenated body parts.
func pkt(header byte, parts ...[]byte) []byte {
	body := bytes.Join(parts, nil)
	return append(AppendRemainingLength([]byte{header}, len(body)), body...)
}

// str is s as a UTF-8 Encoded String: a two-byte length and the bytes.
func str(s string) []byte { return AppendString(nil, s) }

// by is its arguments as bytes, to write packets.
func by(b ...byte) []byte { return b }

// readOne reads the packet in b with a Reader of a small buffer, so that
// larger packets take the path of packets larger than the buffer.
func readOne(t testing.TB, b []byte) Packet {
	t.Helper()
	pr := NewReader(bufio.NewReaderSize(bytes.NewReader(b), 16))
	p, err := pr.Next()
	if err != nil {
		t.Fatalf("read % x: %v", b, err)
	}
	if _, err := pr.Next(); err != io.EOF {
		t.Fatalf("read % x: after the packet %v, want io.EOF", b, err)
	}
	return p
}

// decode5 decodes p with the MQTT 5 decoder of its type.
func decode5(p Packet) (any, error) {
	var err error
	switch p.Type() {
	case TypeConnect:
		var m Connect5
		err = DecodeConnect5(p, &m)
		return m, err
	case TypeConnack:
		var m Connack5
		err = DecodeConnack5(p, &m)
		return m, err
	case TypePublish:
		var m Publish5
		err = DecodePublish5(p, &m)
		return m, err
	case TypePuback, TypePubrec, TypePubrel, TypePubcomp:
		var m Ack5
		err = DecodeAck5(p, &m)
		return m, err
	case TypeSubscribe:
		var m Subscribe5
		err = DecodeSubscribe5(p, &m)
		return m, err
	case TypeSuback:
		var m Suback5
		err = DecodeSuback5(p, &m)
		return m, err
	case TypeUnsubscribe:
		var m Unsubscribe5
		err = DecodeUnsubscribe5(p, &m)
		return m, err
	case TypeUnsuback:
		var m Unsuback5
		err = DecodeUnsuback5(p, &m)
		return m, err
	case TypeDisconnect:
		var m Disconnect5
		err = DecodeDisconnect5(p, &m)
		return m, err
	case TypeAuth:
		var m Auth5
		err = DecodeAuth5(p, &m)
		return m, err
	}
	return nil, fmt.Errorf("no MQTT 5 decoder for %s", TypeName(p.Type()))
}

// encode5 encodes what decode5 decoded from a packet whose first byte was
// header.
func encode5(header byte, m any) ([]byte, error) {
	switch m := m.(type) {
	case Connect5:
		return AppendConnect5(nil, &m)
	case Connack5:
		return AppendConnack5(nil, &m)
	case Publish5:
		return AppendPublish5(nil, string(m.Topic), m.Payload, m.QoS, m.Retain, m.Dup, m.ID, &m.Properties)
	case Ack5:
		return AppendAck5(nil, header, m.ID, m.Reason, &m.Properties)
	case Subscribe5:
		return AppendSubscribe5(nil, m.ID, m.Subscriptions, &m.Properties)
	case Suback5:
		return AppendSuback5(nil, m.ID, m.Reasons, &m.Properties)
	case Unsubscribe5:
		return AppendUnsubscribe5(nil, m.ID, m.Filters, &m.Properties)
	case Unsuback5:
		return AppendUnsuback5(nil, m.ID, m.Reasons, &m.Properties)
	case Disconnect5:
		return AppendDisconnect5(nil, m.Reason, &m.Properties)
	case Auth5:
		return AppendAuth5(nil, m.Reason, &m.Properties)
	}
	return nil, fmt.Errorf("no MQTT 5 encoder for %T", m)
}

// same is reflect.DeepEqual, except that a nil slice equals an empty one:
// a decoder's empty fields alias an empty part of the packet.
func same(a, b any) bool { return sameValue(reflect.ValueOf(a), reflect.ValueOf(b)) }

func sameValue(a, b reflect.Value) bool {
	if a.IsValid() != b.IsValid() || a.IsValid() && a.Type() != b.Type() {
		return false
	}
	if !a.IsValid() {
		return true
	}
	switch a.Kind() {
	case reflect.Slice:
		if a.Len() != b.Len() {
			return false
		}
		for i := range a.Len() {
			if !sameValue(a.Index(i), b.Index(i)) {
				return false
			}
		}
		return true
	case reflect.Pointer, reflect.Interface:
		if a.IsNil() || b.IsNil() {
			return a.IsNil() == b.IsNil()
		}
		return sameValue(a.Elem(), b.Elem())
	case reflect.Struct:
		for i := range a.NumField() {
			if !sameValue(a.Field(i), b.Field(i)) {
				return false
			}
		}
		return true
	}
	return reflect.DeepEqual(a.Interface(), b.Interface())
}

func TestVarInt(t *testing.T) {
	tests := []struct {
		n   int
		enc []byte
	}{
		{0, by(0x00)},
		{127, by(0x7f)},
		{128, by(0x80, 0x01)},
		{16383, by(0xff, 0x7f)},
		{16384, by(0x80, 0x80, 0x01)},
		{2097151, by(0xff, 0xff, 0x7f)},
		{2097152, by(0x80, 0x80, 0x80, 0x01)},
		{MaxVarInt, by(0xff, 0xff, 0xff, 0x7f)},
	}
	for _, tt := range tests {
		if got := AppendVarInt(nil, tt.n); !bytes.Equal(got, tt.enc) {
			t.Errorf("AppendVarInt(%d) = % x, want % x", tt.n, got, tt.enc)
		}
		if got := VarIntLen(tt.n); got != len(tt.enc) {
			t.Errorf("VarIntLen(%d) = %d, want %d", tt.n, got, len(tt.enc))
		}
		n, k, err := DecodeVarInt(append(tt.enc, 0xaa))
		if n != tt.n || k != len(tt.enc) || err != nil {
			t.Errorf("DecodeVarInt(% x) = %d, %d, %v, want %d, %d, nil", tt.enc, n, k, err, tt.n, len(tt.enc))
		}
		if _, _, err := DecodeVarInt(tt.enc[:len(tt.enc)-1]); !errors.Is(err, ErrMalformed) || !strings.Contains(err.Error(), "cut short") {
			t.Errorf("DecodeVarInt(% x) (cut short): %v, want a malformed packet, cut short", tt.enc[:len(tt.enc)-1], err)
		}
	}
	if _, _, err := DecodeVarInt(by(0x80, 0x80, 0x80, 0x80, 0x01)); !errors.Is(err, ErrMalformed) || !strings.Contains(err.Error(), "longer than four bytes") {
		t.Errorf("five bytes: %v, want a malformed packet, longer than four bytes", err)
	}
	if got := PacketSize(127); got != 129 {
		t.Errorf("PacketSize(127) = %d, want 129", got)
	}
	if got := PacketSize(128); got != 131 {
		t.Errorf("PacketSize(128) = %d, want 131", got)
	}
}

// allConnackProps is a CONNACK that carries every property CONNACK may,
// several at a zero that means something.
var allConnackProps = Properties{
	Present:                  ps(PropSessionExpiryInterval, PropReceiveMaximum, PropMaximumQoS, PropRetainAvailable, PropMaximumPacketSize, PropAssignedClientIdentifier, PropTopicAliasMaximum, PropReasonString, PropUserProperty, PropWildcardSubscriptionAvailable, PropSubscriptionIdentifierAvailable, PropSharedSubscriptionAvailable, PropServerKeepAlive, PropResponseInformation, PropServerReference, PropAuthenticationMethod, PropAuthenticationData),
	SessionExpiryInterval:    3600,
	ReceiveMaximum:           20,
	MaximumQoS:               0,
	RetainAvailable:          false,
	MaximumPacketSize:        1 << 20,
	AssignedClientIdentifier: "auto-7f3a",
	TopicAliasMaximum:        10,
	ReasonString:             "welcome",
	UserProperties:           []StringPair{{"region", "eu"}, {"region", "us"}, {"", ""}},
	WildcardSubAvailable:     true,
	SubIDAvailable:           false,
	SharedSubAvailable:       true,
	ServerKeepAlive:          0,
	ResponseInformation:      "resp/",
	ServerReference:          "other:1883",
	AuthenticationMethod:     "SCRAM-SHA-1",
	AuthenticationData:       []byte{0, 1, 2},
}

// roundTrips are packets of every type; each encodes, reads back through
// a Reader and decodes to want.
var roundTrips = []struct {
	name   string
	encode func() ([]byte, error)
	want   any
}{
	{"CONNECT minimal",
		func() ([]byte, error) {
			return AppendConnect5(nil, &Connect5{ClientID: "c1", CleanStart: true, KeepAlive: 30})
		},
		Connect5{ClientID: "c1", CleanStart: true, KeepAlive: 30}},
	{"CONNECT with will, credentials, every property", func() ([]byte, error) {
		return AppendConnect5(nil, &Connect5{
			ClientID: "engine", KeepAlive: 60, Username: "u", Password: "p\x00ss",
			Will: &Will{Topic: "status/engine", Payload: []byte("offline"), QoS: 1, Retain: true, Properties: Properties{
				PayloadFormatIndicator: 1, MessageExpiryInterval: 300, ContentType: "text/plain", ResponseTopic: "r/1",
				CorrelationData: []byte{9, 9}, WillDelayInterval: 5, UserProperties: []StringPair{{"k", "v"}},
			}},
			Properties: Properties{
				Present:               ps(PropRequestProblemInformation),
				SessionExpiryInterval: 0xFFFFFFFF, ReceiveMaximum: 100, MaximumPacketSize: 1 << 16, TopicAliasMaximum: 16,
				RequestResponseInformation: true, RequestProblemInformation: false,
				AuthenticationMethod: "TOKEN", AuthenticationData: []byte("t0k"),
				UserProperties: []StringPair{{"app", "mqtt-rules"}},
			},
		})
	}, Connect5{
		ClientID: "engine", KeepAlive: 60, Username: "u", Password: "p\x00ss",
		Will: &Will{Topic: "status/engine", Payload: []byte("offline"), QoS: 1, Retain: true, Properties: Properties{
			Present:                ps(PropPayloadFormatIndicator, PropMessageExpiryInterval, PropContentType, PropResponseTopic, PropCorrelationData, PropWillDelayInterval, PropUserProperty),
			PayloadFormatIndicator: 1, MessageExpiryInterval: 300, ContentType: "text/plain", ResponseTopic: "r/1",
			CorrelationData: []byte{9, 9}, WillDelayInterval: 5, UserProperties: []StringPair{{"k", "v"}},
		}},
		Properties: Properties{
			Present:               ps(PropSessionExpiryInterval, PropReceiveMaximum, PropMaximumPacketSize, PropTopicAliasMaximum, PropRequestResponseInformation, PropRequestProblemInformation, PropAuthenticationMethod, PropAuthenticationData, PropUserProperty),
			SessionExpiryInterval: 0xFFFFFFFF, ReceiveMaximum: 100, MaximumPacketSize: 1 << 16, TopicAliasMaximum: 16,
			RequestResponseInformation: true,
			AuthenticationMethod:       "TOKEN", AuthenticationData: []byte("t0k"),
			UserProperties: []StringPair{{"app", "mqtt-rules"}},
		},
	}},
	{"CONNECT password without user name, QoS 2 will without properties", func() ([]byte, error) {
		return AppendConnect5(nil, &Connect5{ClientID: "", Password: "secret", Will: &Will{Topic: "w", QoS: 2}})
	}, Connect5{Password: "secret", Will: &Will{Topic: "w", QoS: 2}}},
	{"CONNACK with every property",
		func() ([]byte, error) {
			return AppendConnack5(nil, &Connack5{SessionPresent: true, Properties: allConnackProps})
		},
		Connack5{SessionPresent: true, Properties: allConnackProps}},
	{"CONNACK refused",
		func() ([]byte, error) {
			return AppendConnack5(nil, &Connack5{Reason: ReasonBadUsernameOrPassword, Properties: Properties{ReasonString: "token expired"}})
		},
		Connack5{Reason: ReasonBadUsernameOrPassword, Properties: Properties{Present: ps(PropReasonString), ReasonString: "token expired"}}},
	{"PUBLISH QoS 0 without properties",
		func() ([]byte, error) { return AppendPublish5(nil, "a/b", []byte("hi"), 0, false, false, 0, nil) },
		Publish5{Publish: Publish{Topic: []byte("a/b"), Payload: []byte("hi")}}},
	{"PUBLISH QoS 1 with every property", func() ([]byte, error) {
		return AppendPublish5(nil, "sensors/1", []byte(`{"t":21}`), 1, true, false, 7, &Properties{
			Present:                ps(PropMessageExpiryInterval),
			PayloadFormatIndicator: 1, TopicAlias: 3, ContentType: "application/json", ResponseTopic: "replies/1",
			CorrelationData: []byte("req-1"), SubscriptionIdentifiers: []uint32{1, MaxVarInt, 1},
			UserProperties: []StringPair{{"a", "1"}, {"b", "2"}, {"a", "3"}},
		})
	}, Publish5{
		Publish: Publish{Topic: []byte("sensors/1"), Payload: []byte(`{"t":21}`), QoS: 1, Retain: true, ID: 7},
		Properties: Properties{
			Present:                ps(PropMessageExpiryInterval, PropPayloadFormatIndicator, PropTopicAlias, PropContentType, PropResponseTopic, PropCorrelationData, PropSubscriptionIdentifier, PropUserProperty),
			PayloadFormatIndicator: 1, TopicAlias: 3, ContentType: "application/json", ResponseTopic: "replies/1",
			CorrelationData: []byte("req-1"), SubscriptionIdentifiers: []uint32{1, MaxVarInt, 1},
			UserProperties: []StringPair{{"a", "1"}, {"b", "2"}, {"a", "3"}},
		},
	}},
	{"PUBLISH QoS 2 with an empty topic and a topic alias",
		func() ([]byte, error) {
			return AppendPublish5(nil, "", nil, 2, false, true, 0xffff, &Properties{TopicAlias: 65535})
		},
		Publish5{Publish: Publish{QoS: 2, Dup: true, ID: 0xffff}, Properties: Properties{Present: ps(PropTopicAlias), TopicAlias: 65535}}},
	{"PUBACK short",
		func() ([]byte, error) { return AppendAck5(nil, TypePuback<<4, 1, ReasonSuccess, nil) },
		Ack5{ID: 1}},
	{"PUBREC reason without properties",
		func() ([]byte, error) {
			return AppendAck5(nil, TypePubrec<<4, 2, ReasonNoMatchingSubscribers, &Properties{})
		},
		Ack5{ID: 2, Reason: ReasonNoMatchingSubscribers}},
	{"PUBREL with a reason string",
		func() ([]byte, error) {
			return AppendAck5(nil, HeaderPubrel, 3, ReasonPacketIdentifierNotFound, &Properties{ReasonString: "lost"})
		},
		Ack5{ID: 3, Reason: ReasonPacketIdentifierNotFound, Properties: Properties{Present: ps(PropReasonString), ReasonString: "lost"}}},
	{"PUBCOMP success with user properties",
		func() ([]byte, error) {
			return AppendAck5(nil, TypePubcomp<<4, 4, ReasonSuccess, &Properties{UserProperties: []StringPair{{"x", "y"}}})
		},
		Ack5{ID: 4, Properties: Properties{Present: ps(PropUserProperty), UserProperties: []StringPair{{"x", "y"}}}}},
	{"SUBSCRIBE with options and a subscription identifier", func() ([]byte, error) {
		return AppendSubscribe5(nil, 10, []Subscription{
			{Filter: "a/#", QoS: 1},
			{Filter: "$share/g/b/+", QoS: 2, NoLocal: true, RetainAsPublished: true, RetainHandling: 2},
		}, &Properties{SubscriptionIdentifiers: []uint32{42}, UserProperties: []StringPair{{"k", "v"}}})
	}, Subscribe5{ID: 10,
		Subscriptions: []Subscription{
			{Filter: "a/#", QoS: 1},
			{Filter: "$share/g/b/+", QoS: 2, NoLocal: true, RetainAsPublished: true, RetainHandling: 2},
		},
		Properties: Properties{Present: ps(PropSubscriptionIdentifier, PropUserProperty), SubscriptionIdentifiers: []uint32{42}, UserProperties: []StringPair{{"k", "v"}}},
	}},
	{"SUBACK",
		func() ([]byte, error) {
			return AppendSuback5(nil, 10, []ReasonCode{ReasonGrantedQoS0, ReasonGrantedQoS1, ReasonGrantedQoS2, ReasonNotAuthorized, ReasonWildcardSubscriptionsNotSupported}, &Properties{ReasonString: "partly"})
		},
		Suback5{ID: 10, Reasons: []ReasonCode{0, 1, 2, 0x87, 0xa2}, Properties: Properties{Present: ps(PropReasonString), ReasonString: "partly"}}},
	{"UNSUBSCRIBE",
		func() ([]byte, error) {
			return AppendUnsubscribe5(nil, 11, []string{"a/#", "b"}, &Properties{UserProperties: []StringPair{{"k", "v"}}})
		},
		Unsubscribe5{ID: 11, Filters: []string{"a/#", "b"}, Properties: Properties{Present: ps(PropUserProperty), UserProperties: []StringPair{{"k", "v"}}}}},
	{"UNSUBACK",
		func() ([]byte, error) {
			return AppendUnsuback5(nil, 11, []ReasonCode{ReasonSuccess, ReasonNoSubscriptionExisted}, nil)
		},
		Unsuback5{ID: 11, Reasons: []ReasonCode{0, 0x11}}},
	{"DISCONNECT zero-length",
		func() ([]byte, error) { return AppendDisconnect5(nil, ReasonNormalDisconnection, nil) },
		Disconnect5{}},
	{"DISCONNECT reason only",
		func() ([]byte, error) { return AppendDisconnect5(nil, ReasonDisconnectWithWill, nil) },
		Disconnect5{Reason: ReasonDisconnectWithWill}},
	{"DISCONNECT with properties",
		func() ([]byte, error) {
			return AppendDisconnect5(nil, ReasonUseAnotherServer, &Properties{Present: ps(PropSessionExpiryInterval), ReasonString: "moving", ServerReference: "b:1883", UserProperties: []StringPair{{"k", "v"}}})
		},
		Disconnect5{Reason: ReasonUseAnotherServer, Properties: Properties{Present: ps(PropSessionExpiryInterval, PropReasonString, PropServerReference, PropUserProperty), ReasonString: "moving", ServerReference: "b:1883", UserProperties: []StringPair{{"k", "v"}}}}},
	{"AUTH short",
		func() ([]byte, error) { return AppendAuth5(nil, ReasonSuccess, nil) },
		Auth5{}},
	{"AUTH continue",
		func() ([]byte, error) {
			return AppendAuth5(nil, ReasonContinueAuthentication, &Properties{AuthenticationMethod: "SCRAM-SHA-1", AuthenticationData: []byte("challenge"), ReasonString: "more"})
		},
		Auth5{Reason: ReasonContinueAuthentication, Properties: Properties{Present: ps(PropAuthenticationMethod, PropAuthenticationData, PropReasonString), AuthenticationMethod: "SCRAM-SHA-1", AuthenticationData: []byte("challenge"), ReasonString: "more"}}},
}

// TestRoundTrip5: every packet type encodes, reads back and decodes to
// what was encoded, and encodes again to the same bytes.
func TestRoundTrip5(t *testing.T) {
	for _, tt := range roundTrips {
		t.Run(tt.name, func(t *testing.T) {
			b, err := tt.encode()
			if err != nil {
				t.Fatalf("encode: %v", err)
			}
			p := readOne(t, b)
			got, err := decode5(p)
			if err != nil {
				t.Fatalf("decode % x: %v", b, err)
			}
			if !same(got, tt.want) {
				t.Fatalf("decode % x:\n got %+v\nwant %+v", b, got, tt.want)
			}
			again, err := encode5(p.Header, got)
			if err != nil {
				t.Fatalf("encode the decoded packet: %v", err)
			}
			if !bytes.Equal(again, b) {
				t.Errorf("encoded again % x, want % x", again, b)
			}
		})
	}
}

// TestRoundTrip5Stream reads every packet of roundTrips from one stream,
// split at every point the readers of iotest choose.
func TestRoundTrip5Stream(t *testing.T) {
	var stream []byte
	for _, tt := range roundTrips {
		b, err := tt.encode()
		if err != nil {
			t.Fatalf("%s: %v", tt.name, err)
		}
		stream = append(stream, b...)
	}
	for _, r := range []struct {
		name string
		r    io.Reader
	}{
		{"whole", bytes.NewReader(stream)},
		{"byte by byte", iotest.OneByteReader(bytes.NewReader(stream))},
		{"half", iotest.HalfReader(bytes.NewReader(stream))},
	} {
		t.Run(r.name, func(t *testing.T) {
			pr := NewReader(bufio.NewReaderSize(r.r, 32))
			for _, tt := range roundTrips {
				p, err := pr.Next()
				if err != nil {
					t.Fatalf("%s: %v", tt.name, err)
				}
				got, err := decode5(p)
				if err != nil || !same(got, tt.want) {
					t.Fatalf("%s:\n got %+v, %v\nwant %+v", tt.name, got, err, tt.want)
				}
			}
			if _, err := pr.Next(); err != io.EOF {
				t.Fatalf("after the last packet: %v, want io.EOF", err)
			}
		})
	}
}

// TestEncode5Bytes pins the bytes of the short forms and of a few packets.
func TestEncode5Bytes(t *testing.T) {
	must := func(b []byte, err error) []byte {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	tests := []struct {
		name string
		got  []byte
		want []byte
	}{
		{"PUBLISH without properties", must(AppendPublish5(nil, "a/b", []byte("hi"), 0, false, false, 9, nil)),
			by(0x30, 8, 0, 3, 'a', '/', 'b', 0, 'h', 'i')},
		{"PUBLISH with a topic alias and no topic", must(AppendPublish5(nil, "", []byte("x"), 1, false, false, 0x1234, &Properties{TopicAlias: 5})),
			by(0x32, 9, 0, 0, 0x12, 0x34, 3, 0x23, 0, 5, 'x')},
		{"PUBLISH with empty properties", must(AppendPublish5(nil, "t", nil, 0, true, false, 0, &Properties{})),
			by(0x31, 4, 0, 1, 't', 0)},
		{"PUBACK short, as 3.1.1", must(AppendAck5(nil, TypePuback<<4, 7, 0, nil)), AppendAck(nil, TypePuback<<4, 7)},
		{"PUBREC reason only", must(AppendAck5(nil, TypePubrec<<4, 7, ReasonNoMatchingSubscribers, nil)), by(0x50, 3, 0, 7, 0x10)},
		{"PUBACK with a reason string", must(AppendAck5(nil, TypePuback<<4, 7, ReasonNotAuthorized, &Properties{ReasonString: "no"})),
			by(0x40, 9, 0, 7, 0x87, 5, 0x1f, 0, 2, 'n', 'o')},
		{"DISCONNECT normal", must(AppendDisconnect5(nil, 0, nil)), by(0xe0, 0)},
		{"DISCONNECT reason only", must(AppendDisconnect5(nil, ReasonSessionTakenOver, &Properties{})), by(0xe0, 1, 0x8e)},
		{"AUTH short", must(AppendAuth5(nil, 0, nil)), by(0xf0, 0)},
		{"CONNECT minimal", must(AppendConnect5(nil, &Connect5{ClientID: "id", CleanStart: true, KeepAlive: 30})),
			by(0x10, 15, 0, 4, 'M', 'Q', 'T', 'T', 5, 0x02, 0, 30, 0, 0, 2, 'i', 'd')},
		{"CONNECT session expiry and will", must(AppendConnect5(nil, &Connect5{ClientID: "i", KeepAlive: 1,
			Properties: Properties{SessionExpiryInterval: 0x01020304}, Will: &Will{Topic: "w", Payload: []byte("p"), QoS: 2, Retain: true}})),
			pkt(0x10, str("MQTT"), by(5, 0x34, 0, 1, 5, 0x11, 1, 2, 3, 4), str("i"), by(0), str("w"), str("p"))},
		{"CONNACK refused", must(AppendConnack5(nil, &Connack5{Reason: ReasonBadUsernameOrPassword, Properties: Properties{ReasonString: "x"}})),
			by(0x20, 7, 0, 0x86, 4, 0x1f, 0, 1, 'x')},
		{"SUBSCRIBE options", must(AppendSubscribe5(nil, 5, []Subscription{{Filter: "a/#", QoS: 1, NoLocal: true, RetainAsPublished: true, RetainHandling: 2}}, &Properties{SubscriptionIdentifiers: []uint32{1}})),
			by(0x82, 11, 0, 5, 2, 0x0b, 1, 0, 3, 'a', '/', '#', 0x2d)},
		{"UNSUBSCRIBE", must(AppendUnsubscribe5(nil, 6, []string{"a/#"}, nil)), by(0xa2, 8, 0, 6, 0, 0, 3, 'a', '/', '#')},
		{"SUBACK", must(AppendSuback5(nil, 6, []ReasonCode{1, 0x80}, nil)), by(0x90, 5, 0, 6, 0, 1, 0x80)},
	}
	for _, tt := range tests {
		if !bytes.Equal(tt.got, tt.want) {
			t.Errorf("%s: % x, want % x", tt.name, tt.got, tt.want)
		}
	}
}

// publish5 is a PUBLISH to "t" at QoS 0 whose properties are props,
// Property Length first.
func publish5(props ...byte) []byte { return pkt(0x30, str("t"), props, by('x')) }

// withProps is props after their Property Length.
func withProps(props ...byte) []byte { return append(AppendVarInt(nil, len(props)), props...) }

// TestDecode5Errors: each kind of bad input is an error of its own, never
// a panic, that says which packet and property and is ErrMalformed or
// ErrProtocol as §4.13 classes it.
func TestDecode5Errors(t *testing.T) {
	connect := func(flags byte, props []byte, rest ...[]byte) []byte {
		return pkt(0x10, str("MQTT"), by(5, flags, 0, 10), props, str("c"), bytes.Join(rest, nil))
	}
	tests := []struct {
		name   string
		in     []byte
		reason ReasonCode
		want   string
	}{
		// The property codec (§2.2.2).
		{"unknown property identifier", publish5(withProps(0x05, 0)...), ReasonMalformedPacket,
			"malformed packet: PUBLISH property identifier 0x05 is unknown"},
		{"unknown two-byte property identifier", publish5(withProps(0x80, 0x01, 0)...), ReasonMalformedPacket,
			"PUBLISH property identifier 0x80 is unknown"},
		{"property identifier cut short", publish5(withProps(0x80)...), ReasonMalformedPacket,
			"PUBLISH property identifier cut short"},
		{"property not allowed in the packet", publish5(withProps(0x12, 0, 1, 'a')...), ReasonMalformedPacket,
			"malformed packet: PUBLISH may not carry property Assigned Client Identifier (0x12)"},
		{"property not allowed in a will", connect(0x04, withProps(), withProps(0x11, 0, 0, 0, 1), str("w"), str("p")), ReasonMalformedPacket,
			"CONNECT will may not carry property Session Expiry Interval"},
		{"duplicate Content Type", publish5(withProps(0x03, 0, 1, 'a', 0x03, 0, 1, 'b')...), ReasonProtocolError,
			"protocol error: PUBLISH property Content Type more than once"},
		{"duplicate Topic Alias", publish5(withProps(0x23, 0, 1, 0x23, 0, 2)...), ReasonProtocolError,
			"PUBLISH property Topic Alias more than once"},
		{"duplicate Message Expiry Interval", publish5(withProps(0x02, 0, 0, 0, 1, 0x02, 0, 0, 0, 1)...), ReasonProtocolError,
			"PUBLISH property Message Expiry Interval more than once"},
		{"duplicate Subscription Identifier in SUBSCRIBE", pkt(0x82, by(0, 1), withProps(0x0b, 1, 0x0b, 2), str("a"), by(0)), ReasonProtocolError,
			"SUBSCRIBE property Subscription Identifier more than once"},
		{"duplicate Reason String in CONNACK", pkt(0x20, by(0, 0x87), withProps(0x1f, 0, 0, 0x1f, 0, 0)), ReasonProtocolError,
			"CONNACK property Reason String more than once"},
		{"property length beyond the packet", publish5(10, 0x01, 1), ReasonMalformedPacket,
			"malformed packet: PUBLISH property length 10 is beyond the 3 bytes left"},
		{"oversized property length", publish5(0xff, 0xff, 0xff, 0x7f), ReasonMalformedPacket,
			"PUBLISH property length 268435455 is beyond the 1 bytes left"},
		{"property length of five bytes", publish5(0x80, 0x80, 0x80, 0x80, 0x01), ReasonMalformedPacket,
			"PUBLISH property length longer than four bytes"},
		{"property length cut short", pkt(0x30, str("t"), by(0x80)), ReasonMalformedPacket,
			"PUBLISH property length cut short"},
		{"no property length", pkt(0x32, str("t"), by(0, 1)), ReasonMalformedPacket,
			"PUBLISH without a property length"},
		{"string beyond the properties", publish5(withProps(0x03, 0, 9, 'a')...), ReasonMalformedPacket,
			"PUBLISH property Content Type: 9 bytes, beyond the 1 left"},
		{"string length cut short", publish5(withProps(0x08, 0)...), ReasonMalformedPacket,
			"PUBLISH property Response Topic: length cut short"},
		{"four-byte integer cut short", publish5(withProps(0x02, 0, 0)...), ReasonMalformedPacket,
			"PUBLISH property Message Expiry Interval cut short"},
		{"two-byte integer cut short", publish5(withProps(0x23, 0)...), ReasonMalformedPacket,
			"PUBLISH property Topic Alias cut short"},
		{"byte cut short", publish5(withProps(0x01)...), ReasonMalformedPacket,
			"PUBLISH property Payload Format Indicator cut short"},
		{"subscription identifier cut short", publish5(withProps(0x0b, 0x80)...), ReasonMalformedPacket,
			"PUBLISH property Subscription Identifier cut short"},
		{"binary data beyond the properties", publish5(withProps(0x09, 0, 3, 1)...), ReasonMalformedPacket,
			"PUBLISH property Correlation Data: 3 bytes, beyond the 1 left"},
		{"ill-formed UTF-8", publish5(withProps(0x03, 0, 1, 0xff)...), ReasonMalformedPacket,
			"PUBLISH property Content Type: ill-formed UTF-8"},
		{"a surrogate", publish5(withProps(0x08, 0, 3, 0xed, 0xa0, 0x80)...), ReasonMalformedPacket,
			"PUBLISH property Response Topic: ill-formed UTF-8"},
		{"U+0000 in a user property name", publish5(withProps(0x26, 0, 1, 0, 0, 1, 'v')...), ReasonMalformedPacket,
			"PUBLISH property User Property name: U+0000 in a UTF-8 string"},
		{"user property value cut short", publish5(withProps(0x26, 0, 1, 'k', 0, 5, 'v')...), ReasonMalformedPacket,
			"PUBLISH property User Property value: 5 bytes, beyond the 1 left"},
		// Values a property may not take.
		{"Receive Maximum 0 in CONNACK", pkt(0x20, by(0, 0), withProps(0x21, 0, 0)), ReasonProtocolError,
			"protocol error: CONNACK property Receive Maximum is 0"},
		{"Receive Maximum 0 in CONNECT", connect(0, withProps(0x21, 0, 0)), ReasonProtocolError,
			"CONNECT property Receive Maximum is 0"},
		{"Maximum Packet Size 0", pkt(0x20, by(0, 0), withProps(0x27, 0, 0, 0, 0)), ReasonProtocolError,
			"CONNACK property Maximum Packet Size is 0"},
		{"Maximum QoS 2", pkt(0x20, by(0, 0), withProps(0x24, 2)), ReasonProtocolError,
			"CONNACK property Maximum QoS is 2, want 0 or 1"},
		{"Retain Available 2", pkt(0x20, by(0, 0), withProps(0x25, 2)), ReasonProtocolError,
			"CONNACK property Retain Available is 2, want 0 or 1"},
		{"Request Problem Information 2", connect(0, withProps(0x17, 2)), ReasonProtocolError,
			"CONNECT property Request Problem Information is 2, want 0 or 1"},
		{"Payload Format Indicator 2", publish5(withProps(0x01, 2)...), ReasonProtocolError,
			"PUBLISH property Payload Format Indicator is 2, want 0 or 1"},
		{"Topic Alias 0", publish5(withProps(0x23, 0, 0)...), ReasonTopicAliasInvalid,
			"topic alias invalid: PUBLISH property Topic Alias is 0"},
		{"Subscription Identifier 0", publish5(withProps(0x0b, 0)...), ReasonProtocolError,
			"PUBLISH property Subscription Identifier is 0"},
		// PUBLISH.
		{"PUBLISH without topic or topic alias", pkt(0x30, by(0, 0, 0)), ReasonProtocolError,
			"protocol error: PUBLISH without a topic name or a topic alias"},
		{"PUBLISH QoS 3", pkt(0x36, str("t"), by(0, 1, 0)), ReasonMalformedPacket, "PUBLISH with QoS 3"},
		{"PUBLISH topic beyond the body", pkt(0x30, by(0, 5, 'a')), ReasonMalformedPacket, "PUBLISH topic of 5 bytes in a body of 3"},
		{"PUBLISH without a packet id", pkt(0x32, str("t"), by(0)), ReasonMalformedPacket, "PUBLISH at QoS 1 without a packet id"},
		{"PUBLISH without a topic", pkt(0x30, by(0)), ReasonMalformedPacket, "PUBLISH without a topic"},
		// CONNECT.
		{"CONNECT reserved flag", connect(0x01, withProps()), ReasonMalformedPacket, "CONNECT reserved flag set"},
		{"CONNECT will QoS 3", connect(0x1c, withProps()), ReasonMalformedPacket, "CONNECT will QoS 3"},
		{"CONNECT will retain without a will", connect(0x20, withProps()), ReasonMalformedPacket, "CONNECT will QoS or will retain without a will"},
		{"CONNECT will QoS without a will", connect(0x08, withProps()), ReasonMalformedPacket, "CONNECT will QoS or will retain without a will"},
		{"CONNECT protocol version 4", pkt(0x10, str("MQTT"), by(4, 2, 0, 10), str("c")), ReasonUnsupportedProtocolVersion,
			"unsupported protocol version: CONNECT protocol version 4, want 5"},
		{"CONNECT protocol name", pkt(0x10, str("MQIsdp"), by(3, 2, 0, 10), str("c")), ReasonUnsupportedProtocolVersion,
			`CONNECT protocol name "MQIsdp", want "MQTT"`},
		{"CONNECT Authentication Data without Method", connect(0, withProps(0x16, 0, 1, 'x')), ReasonProtocolError,
			"CONNECT property Authentication Data without an Authentication Method"},
		{"CONNECT user name missing", connect(0x80, withProps()), ReasonMalformedPacket, "CONNECT user name: length cut short"},
		{"CONNECT trailing bytes", connect(0, withProps(), by(1)), ReasonMalformedPacket, "CONNECT with 1 bytes after its payload"},
		{"CONNECT header flags", append(by(0x11), connect(0, withProps())[1:]...), ReasonMalformedPacket,
			"CONNECT with fixed header flags 0x1, want 0x0"},
		{"CONNECT cut short", pkt(0x10, str("MQTT"), by(5, 2)), ReasonMalformedPacket, "CONNECT cut short after the protocol version"},
		// CONNACK.
		{"CONNACK reserved flags", pkt(0x20, by(2, 0, 0)), ReasonMalformedPacket, "CONNACK acknowledge flags 0x2, want 0 or 1"},
		{"CONNACK trailing bytes", pkt(0x20, by(0, 0, 0, 9)), ReasonMalformedPacket, "CONNACK with 1 bytes after its properties"},
		{"CONNACK header flags", append(by(0x21), pkt(0x20, by(0, 0, 0))[1:]...), ReasonMalformedPacket, "CONNACK with fixed header flags 0x1"},
		{"CONNACK of one byte", pkt(0x20, by(0)), ReasonMalformedPacket, "CONNACK of 1 bytes"},
		// Acknowledgements.
		{"PUBREL header flags", pkt(0x60, by(0, 1)), ReasonMalformedPacket, "PUBREL with fixed header flags 0x0, want 0x2"},
		{"PUBACK header flags", pkt(0x42, by(0, 1)), ReasonMalformedPacket, "PUBACK with fixed header flags 0x2, want 0x0"},
		{"PUBACK trailing bytes", pkt(0x40, by(0, 1, 0, 0, 9)), ReasonMalformedPacket, "PUBACK with 1 bytes after its properties"},
		{"PUBACK without a packet id", pkt(0x40, by(0)), ReasonMalformedPacket, "PUBACK of 1 bytes, want a packet id"},
		{"PUBCOMP with a Topic Alias", pkt(0x70, by(0, 1, 0), withProps(0x23, 0, 1)), ReasonMalformedPacket,
			"PUBCOMP may not carry property Topic Alias"},
		// SUBSCRIBE, SUBACK, UNSUBSCRIBE, UNSUBACK.
		{"SUBSCRIBE without topic filters", pkt(0x82, by(0, 1, 0)), ReasonProtocolError, "SUBSCRIBE without a topic filter"},
		{"SUBSCRIBE reserved options", pkt(0x82, by(0, 1, 0), str("a"), by(0x40)), ReasonMalformedPacket, `SUBSCRIBE "a": reserved subscription options 0x40`},
		{"SUBSCRIBE QoS 3", pkt(0x82, by(0, 1, 0), str("a"), by(3)), ReasonProtocolError, `SUBSCRIBE "a": maximum QoS 3`},
		{"SUBSCRIBE retain handling 3", pkt(0x82, by(0, 1, 0), str("a"), by(0x30)), ReasonProtocolError, `SUBSCRIBE "a": retain handling 3`},
		{"SUBSCRIBE without options", pkt(0x82, by(0, 1, 0), str("a")), ReasonMalformedPacket, `SUBSCRIBE topic filter "a" without subscription options`},
		{"SUBSCRIBE header flags", pkt(0x80, by(0, 1, 0), str("a"), by(0)), ReasonMalformedPacket, "SUBSCRIBE with fixed header flags 0x0, want 0x2"},
		{"SUBACK without reason codes", pkt(0x90, by(0, 1, 0)), ReasonProtocolError, "SUBACK without a reason code"},
		{"UNSUBSCRIBE without topic filters", pkt(0xa2, by(0, 1, 0)), ReasonProtocolError, "UNSUBSCRIBE without a topic filter"},
		{"UNSUBSCRIBE filter ill-formed", pkt(0xa2, by(0, 1, 0, 0, 1, 0xff)), ReasonMalformedPacket, "UNSUBSCRIBE topic filter 1: ill-formed UTF-8"},
		{"UNSUBACK with a Server Reference", pkt(0xb0, by(0, 1), withProps(0x1c, 0, 0), by(0)), ReasonMalformedPacket,
			"UNSUBACK may not carry property Server Reference"},
		// DISCONNECT, AUTH.
		{"DISCONNECT header flags", pkt(0xe1), ReasonMalformedPacket, "DISCONNECT with fixed header flags 0x1"},
		{"DISCONNECT with a Topic Alias", pkt(0xe0, by(0), withProps(0x23, 0, 1)), ReasonMalformedPacket, "DISCONNECT may not carry property Topic Alias"},
		{"AUTH without Authentication Method", pkt(0xf0, by(0x18, 0)), ReasonProtocolError, "protocol error: AUTH without an Authentication Method"},
		{"AUTH reason only", pkt(0xf0, by(0x18)), ReasonProtocolError, "AUTH without an Authentication Method"},
		{"AUTH header flags", pkt(0xf2), ReasonMalformedPacket, "AUTH with fixed header flags 0x2"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := decode5(readOne(t, tt.in))
			var de *DecodeError
			if !errors.As(err, &de) {
				t.Fatalf("% x: %v, want a *DecodeError", tt.in, err)
			}
			if de.Reason != tt.reason || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("% x:\n got %v (reason %s)\nwant %q (reason %s)", tt.in, err, de.Reason, tt.want, tt.reason)
			}
			wantMalformed := tt.reason == ReasonMalformedPacket
			if errors.Is(err, ErrMalformed) != wantMalformed || errors.Is(err, ErrProtocol) == wantMalformed {
				t.Errorf("errors.Is(%v): ErrMalformed %v, ErrProtocol %v, want %v, %v", err,
					errors.Is(err, ErrMalformed), errors.Is(err, ErrProtocol), wantMalformed, !wantMalformed)
			}
		})
	}
}

// TestDecode5Accepts what is valid though unusual.
func TestDecode5Accepts(t *testing.T) {
	tests := []struct {
		name string
		in   []byte
		want any
	}{
		{"repeated user properties keep their order", publish5(withProps(0x26, 0, 1, 'a', 0, 1, '1', 0x26, 0, 1, 'a', 0, 1, '2')...),
			Publish5{Publish: Publish{Topic: []byte("t"), Payload: []byte("x")},
				Properties: Properties{Present: ps(PropUserProperty), UserProperties: []StringPair{{"a", "1"}, {"a", "2"}}}}},
		{"several subscription identifiers in PUBLISH", publish5(withProps(0x0b, 1, 0x0b, 0x80, 0x01)...),
			Publish5{Publish: Publish{Topic: []byte("t"), Payload: []byte("x")},
				Properties: Properties{Present: ps(PropSubscriptionIdentifier), SubscriptionIdentifiers: []uint32{1, 128}}}},
		{"a Variable Byte Integer longer than needed", publish5(withProps(0x0b, 0x81, 0x00)...),
			Publish5{Publish: Publish{Topic: []byte("t"), Payload: []byte("x")},
				Properties: Properties{Present: ps(PropSubscriptionIdentifier), SubscriptionIdentifiers: []uint32{1}}}},
		{"a 3.1.1 CONNACK refusing version 5", pkt(0x20, by(0, 1)), Connack5{Reason: ReasonUnsupportedProtocolVersion}},
		{"a 3.1.1 CONNACK: bad user name or password", pkt(0x20, by(0, 4)), Connack5{Reason: ReasonBadUsernameOrPassword}},
		{"a 3.1.1 CONNACK accepting", pkt(0x20, by(1, 0)), Connack5{SessionPresent: true}},
		{"DISCONNECT with an empty property length", pkt(0xe0, by(0x8b, 0)), Disconnect5{Reason: ReasonServerShuttingDown}},
		{"PUBACK with an empty property length", pkt(0x40, by(0, 9, 0x10, 0)), Ack5{ID: 9, Reason: ReasonNoMatchingSubscribers}},
		{"a topic name that is not UTF-8, as DecodePublish reads it", pkt(0x30, by(0, 1, 0xff, 0), by('x')),
			Publish5{Publish: Publish{Topic: []byte{0xff}, Payload: []byte("x")}}},
		{"CONNECT with empty user name and password", pkt(0x10, str("MQTT"), by(5, 0xc0, 0, 0, 0), str("c"), str(""), str("")),
			Connect5{ClientID: "c"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := decode5(readOne(t, tt.in))
			if err != nil || !same(got, tt.want) {
				t.Errorf("% x:\n got %+v, %v\nwant %+v", tt.in, got, err, tt.want)
			}
		})
	}
}

// TestEncode5Errors: encoders refuse what MQTT cannot carry and leave b
// as it was.
func TestEncode5Errors(t *testing.T) {
	long := strings.Repeat("x", MaxStringLength+1)
	prefix := []byte("keep")
	tests := []struct {
		name string
		enc  func(b []byte) ([]byte, error)
		want string
	}{
		{"property not allowed", func(b []byte) ([]byte, error) {
			return AppendPublish5(b, "t", nil, 0, false, false, 0, &Properties{ReceiveMaximum: 5})
		}, "PUBLISH may not carry property Receive Maximum"},
		{"Present property not allowed", func(b []byte) ([]byte, error) {
			return AppendAck5(b, TypePuback<<4, 1, 0, &Properties{Present: ps(PropMaximumQoS)})
		}, "PUBACK may not carry property Maximum QoS"},
		{"will property not allowed", func(b []byte) ([]byte, error) {
			return AppendConnect5(b, &Connect5{Will: &Will{Topic: "w", Properties: Properties{TopicAlias: 1}}})
		}, "CONNECT will may not carry property Topic Alias"},
		{"string too long", func(b []byte) ([]byte, error) {
			return AppendPublish5(b, "t", nil, 0, false, false, 0, &Properties{ContentType: long})
		}, "PUBLISH property Content Type: string of 65536 bytes is over the MQTT limit of 65535"},
		{"ill-formed UTF-8 user property", func(b []byte) ([]byte, error) {
			return AppendPublish5(b, "t", nil, 0, false, false, 0, &Properties{UserProperties: []StringPair{{"k", "\xff"}}})
		}, "PUBLISH property User Property: ill-formed UTF-8"},
		{"topic too long", func(b []byte) ([]byte, error) {
			return AppendPublish5(b, long, nil, 0, false, false, 0, nil)
		}, "PUBLISH topic of 65536 bytes is over the MQTT limit of 65535"},
		{"binary too long", func(b []byte) ([]byte, error) {
			return AppendPublish5(b, "t", nil, 0, false, false, 0, &Properties{CorrelationData: []byte(long)})
		}, "PUBLISH property Correlation Data: 65536 bytes is over the MQTT limit of 65535"},
		{"empty topic without alias", func(b []byte) ([]byte, error) {
			return AppendPublish5(b, "", nil, 0, false, false, 0, &Properties{})
		}, "PUBLISH without a topic name or a topic alias"},
		{"PUBLISH QoS 3", func(b []byte) ([]byte, error) {
			return AppendPublish5(b, "t", nil, 3, false, false, 0, nil)
		}, "PUBLISH at QoS 3"},
		{"Topic Alias 0 sent", func(b []byte) ([]byte, error) {
			return AppendPublish5(b, "t", nil, 0, false, false, 0, &Properties{Present: ps(PropTopicAlias)})
		}, "PUBLISH property Topic Alias is 0, which MQTT does not permit"},
		{"Receive Maximum 0 sent", func(b []byte) ([]byte, error) {
			return AppendConnack5(b, &Connack5{Properties: Properties{Present: ps(PropReceiveMaximum)}})
		}, "CONNACK property Receive Maximum is 0"},
		{"Maximum QoS 2 sent", func(b []byte) ([]byte, error) {
			return AppendConnack5(b, &Connack5{Properties: Properties{MaximumQoS: 2}})
		}, "CONNACK property Maximum QoS is 2, want 0 or 1"},
		{"Subscription Identifier 0", func(b []byte) ([]byte, error) {
			return AppendPublish5(b, "t", nil, 0, false, false, 0, &Properties{SubscriptionIdentifiers: []uint32{0}})
		}, "PUBLISH property Subscription Identifier is 0"},
		{"Subscription Identifier too large", func(b []byte) ([]byte, error) {
			return AppendPublish5(b, "t", nil, 0, false, false, 0, &Properties{SubscriptionIdentifiers: []uint32{MaxVarInt + 1}})
		}, "PUBLISH property Subscription Identifier 268435456 is over the limit"},
		{"two Subscription Identifiers in SUBSCRIBE", func(b []byte) ([]byte, error) {
			return AppendSubscribe5(b, 1, []Subscription{{Filter: "a"}}, &Properties{SubscriptionIdentifiers: []uint32{1, 2}})
		}, "SUBSCRIBE property Subscription Identifier 2 times"},
		{"SUBSCRIBE without filters", func(b []byte) ([]byte, error) { return AppendSubscribe5(b, 1, nil, nil) },
			"SUBSCRIBE without a topic filter"},
		{"SUBSCRIBE retain handling 3", func(b []byte) ([]byte, error) {
			return AppendSubscribe5(b, 1, []Subscription{{Filter: "a", RetainHandling: 3}}, nil)
		}, `SUBSCRIBE "a": QoS 0, retain handling 3`},
		{"UNSUBSCRIBE without filters", func(b []byte) ([]byte, error) { return AppendUnsubscribe5(b, 1, nil, nil) },
			"UNSUBSCRIBE without a topic filter"},
		{"SUBACK without reason codes", func(b []byte) ([]byte, error) { return AppendSuback5(b, 1, nil, nil) },
			"SUBACK without a reason code"},
		{"AUTH without method", func(b []byte) ([]byte, error) { return AppendAuth5(b, ReasonContinueAuthentication, nil) },
			"AUTH without an Authentication Method"},
		{"CONNECT client id too long", func(b []byte) ([]byte, error) { return AppendConnect5(b, &Connect5{ClientID: long}) },
			"CONNECT client identifier: string of 65536 bytes"},
		{"CONNECT will QoS 3", func(b []byte) ([]byte, error) {
			return AppendConnect5(b, &Connect5{Will: &Will{Topic: "w", QoS: 3}})
		}, "CONNECT will QoS 3"},
		{"CONNECT Authentication Data without Method", func(b []byte) ([]byte, error) {
			return AppendConnect5(b, &Connect5{Properties: Properties{AuthenticationData: []byte{1}}})
		}, "CONNECT property Authentication Data without an Authentication Method"},
		{"ack of another type", func(b []byte) ([]byte, error) { return AppendAck5(b, TypeSuback<<4, 1, 0, nil) },
			"AppendAck5 of SUBACK"},
		{"unknown property in Present", func(b []byte) ([]byte, error) {
			return AppendDisconnect5(b, 0, &Properties{Present: ps(0x05)})
		}, "DISCONNECT may not carry property 0x05"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := tt.enc(prefix)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %v, want %q", err, tt.want)
			}
			if !bytes.Equal(b, prefix) {
				t.Errorf("b = %q after an error, want %q", b, prefix)
			}
		})
	}
}

func TestReasonCodes(t *testing.T) {
	tests := []struct {
		got, want string
	}{
		{ReasonNotAuthorized.String(), "0x87 not authorized"},
		{ReasonUnsupportedProtocolVersion.String(), "0x84 unsupported protocol version"},
		{ReasonBadUsernameOrPassword.String(), "0x86 bad user name or password"},
		{ReasonQoSNotSupported.String(), "0x9b QoS not supported"},
		{ReasonSuccess.String(), "0x00 success"},
		{ReasonCode(0x05).String(), "0x05 unknown reason code"},
		{ReasonText(TypeDisconnect, ReasonNormalDisconnection), "0x00 normal disconnection"},
		{ReasonText(TypeSuback, ReasonGrantedQoS0), "0x00 granted QoS 0"},
		{ReasonText(TypeSuback, ReasonGrantedQoS1), "0x01 granted QoS 1"},
		{ReasonText(TypeConnack, ReasonSuccess), "0x00 success"},
		{ReasonText(TypeDisconnect, ReasonServerShuttingDown), "0x8b server shutting down"},
	}
	for _, tt := range tests {
		if tt.got != tt.want {
			t.Errorf("got %q, want %q", tt.got, tt.want)
		}
	}
	// Every code of §2.4 has a name; no other code does.
	known := []ReasonCode{0x00, 0x01, 0x02, 0x04, 0x10, 0x11, 0x18, 0x19}
	for r := ReasonUnspecifiedError; r <= ReasonWildcardSubscriptionsNotSupported; r++ {
		known = append(known, r)
	}
	for r := range 256 {
		isKnown := false
		for _, k := range known {
			isKnown = isKnown || k == ReasonCode(r)
		}
		if name := ReasonCode(r).Name(); (name != "unknown reason code") != isKnown {
			t.Errorf("ReasonCode(%#02x).Name() = %q, known %v", r, name, isKnown)
		}
		if got, want := ReasonCode(r).IsError(), r >= 0x80; got != want {
			t.Errorf("ReasonCode(%#02x).IsError() = %v, want %v", r, got, want)
		}
	}
}

func TestReasonErrors(t *testing.T) {
	tests := []struct {
		name string
		err  error
		want string
	}{
		{"CONNACK refusal with a reason string", (&Connack5{Reason: ReasonBadUsernameOrPassword, Properties: Properties{ReasonString: "token expired"}}).Err(),
			`connection refused: 0x86 bad user name or password (reason: "token expired")`},
		{"CONNACK refusal", (&Connack5{Reason: ReasonUnsupportedProtocolVersion}).Err(),
			"connection refused: 0x84 unsupported protocol version"},
		{"DISCONNECT to another server", (&Disconnect5{Reason: ReasonUseAnotherServer, Properties: Properties{ServerReference: "b:1883"}}).Err(),
			`disconnected: 0x9c use another server (server reference: "b:1883")`},
		{"DISCONNECT with both", (&Disconnect5{Reason: ReasonServerMoved, Properties: Properties{ReasonString: "moved\n", ServerReference: "c"}}).Err(),
			`disconnected: 0x9d server moved (reason: "moved\n", server reference: "c")`},
		{"PUBACK refusal", (&Ack5{Reason: ReasonNotAuthorized}).Err(TypePuback), "PUBACK refused: 0x87 not authorized"},
	}
	for _, tt := range tests {
		if tt.err == nil || tt.err.Error() != tt.want {
			t.Errorf("%s: %v, want %s", tt.name, tt.err, tt.want)
		}
		var re *ReasonError
		if !errors.As(tt.err, &re) || !re.Reason.IsError() {
			t.Errorf("%s: %v is not a *ReasonError", tt.name, tt.err)
		}
	}
	for _, err := range []error{(&Connack5{}).Err(), (&Disconnect5{Reason: ReasonDisconnectWithWill}).Err(), (&Ack5{Reason: ReasonNoMatchingSubscribers}).Err(TypePuback)} {
		if err != nil {
			t.Errorf("success reason code: %v, want nil", err)
		}
	}
}

func TestConnectVersion(t *testing.T) {
	v311, _ := AppendConnect(nil, Connect{ClientID: "a"})
	v5, _ := AppendConnect5(nil, &Connect5{ClientID: "a"})
	for _, tt := range []struct {
		in   []byte
		want byte
	}{{v311, Version311}, {v5, Version5}} {
		if got, err := ConnectVersion(readOne(t, tt.in)); got != tt.want || err != nil {
			t.Errorf("ConnectVersion(% x) = %d, %v, want %d", tt.in, got, err, tt.want)
		}
	}
	var c Connect5
	if err := DecodeConnect5(readOne(t, v311), &c); !errors.Is(err, ErrProtocol) {
		t.Errorf("DecodeConnect5 of a 3.1.1 CONNECT: %v, want unsupported protocol version", err)
	}
}

func TestTypeNameAuth(t *testing.T) {
	if got := TypeName(TypeAuth); got != "AUTH" {
		t.Errorf("TypeName(15) = %q, want AUTH", got)
	}
}

// TestDecodePublish5Allocs: a PUBLISH without string properties decodes
// without allocating; strings cost one copy for all of them, and User
// Properties and Subscription Identifiers one slice each.
func TestDecodePublish5Allocs(t *testing.T) {
	tests := []struct {
		name  string
		props *Properties
		want  float64
	}{
		{"no properties", nil, 0},
		{"numbers", &Properties{PayloadFormatIndicator: 1, MessageExpiryInterval: 60, TopicAlias: 4}, 0},
		{"binary", &Properties{CorrelationData: []byte("req-1")}, 0},
		{"strings", &Properties{ContentType: "application/json", ResponseTopic: "r/1", CorrelationData: []byte("c")}, 1},
		{"user properties", &Properties{ContentType: "a", UserProperties: []StringPair{{"a", "1"}, {"b", "2"}, {"c", "3"}}}, 2},
		{"subscription identifiers", &Properties{SubscriptionIdentifiers: []uint32{1, 2, 3}}, 1},
	}
	for _, tt := range tests {
		b, err := AppendPublish5(nil, "sensors/1/temperature", []byte("21.5"), 1, false, false, 1, tt.props)
		if err != nil {
			t.Fatal(err)
		}
		p := readOne(t, b)
		var m Publish5
		got := testing.AllocsPerRun(100, func() { err = DecodePublish5(p, &m) })
		if err != nil || got != tt.want {
			t.Errorf("%s: %v allocations, %v, want %v", tt.name, got, err, tt.want)
		}
		if n := len(m.Properties.UserProperties); n != cap(m.Properties.UserProperties) {
			t.Errorf("%s: %d user properties in a slice of %d", tt.name, n, cap(m.Properties.UserProperties))
		}
	}
}

// TestDecode5LengthsNotTrusted: lengths that claim more than the packet
// holds are errors, without the memory they claim being allocated.
func TestDecode5LengthsNotTrusted(t *testing.T) {
	many := bytes.Repeat(by(0x26, 0, 0, 0, 0), 1000) // a thousand empty user properties
	tests := []struct {
		name string
		in   []byte
	}{
		{"property length", publish5(0xff, 0xff, 0xff, 0x7f)},
		{"string length", publish5(withProps(0x03, 0xff, 0xff)...)},
		{"user properties then a bad length", publish5(withProps(append(bytes.Clone(many), 0x26, 0xff, 0xff)...)...)},
		{"SUBACK", pkt(0x90, by(0, 1), by(0xff, 0xff, 0xff, 0x7f))},
		{"CONNECT will payload", pkt(0x10, str("MQTT"), by(5, 0x04, 0, 0, 0), str("c"), by(0), str("w"), by(0xff, 0xff))},
	}
	for _, tt := range tests {
		p := readOne(t, tt.in)
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		const runs = 100
		for range runs {
			if _, err := decode5(p); err == nil {
				t.Fatalf("%s: no error", tt.name)
			}
		}
		runtime.ReadMemStats(&after)
		// What decoding allocates follows the bytes that are there (a
		// StringPair per five bytes at most), never what a length claims.
		if per := (after.TotalAlloc - before.TotalAlloc) / runs; per > 8*uint64(len(tt.in))+1024 {
			t.Errorf("%s: %d bytes allocated per decode of a %d-byte packet", tt.name, per, len(tt.in))
		}
	}
	// The same thousand user properties, well-formed: one slice, exactly.
	var m Publish5
	err := DecodePublish5(readOne(t, publish5(withProps(many...)...)), &m)
	if err != nil || len(m.Properties.UserProperties) != 1000 || cap(m.Properties.UserProperties) != 1000 {
		t.Errorf("a thousand user properties: %d in a slice of %d, %v", len(m.Properties.UserProperties), cap(m.Properties.UserProperties), err)
	}
}

// TestDecode5Overwrites: a struct decoded into again keeps nothing of the
// packet before, whether the decode succeeds or not.
func TestDecode5Overwrites(t *testing.T) {
	with, _ := AppendPublish5(nil, "a", []byte("1"), 1, true, true, 9, &benchProps)
	without, _ := AppendPublish5(nil, "b", nil, 0, false, false, 0, nil)
	var m Publish5
	if err := DecodePublish5(readOne(t, with), &m); err != nil || m.Properties.ContentType == "" {
		t.Fatalf("%+v, %v", m, err)
	}
	if err := DecodePublish5(readOne(t, without), &m); err != nil || !same(m, Publish5{Publish: Publish{Topic: []byte("b")}}) {
		t.Errorf("decoded again: %+v, %v", m, err)
	}
	_ = DecodePublish5(readOne(t, with), &m)
	if err := DecodePublish5(readOne(t, publish5(withProps(0x05)...)), &m); err == nil || m.Properties.ContentType != "" || m.ID != 0 {
		t.Errorf("decoded a bad packet again: %+v, %v", m, err)
	}
	var c Connack5
	_ = DecodeConnack5(readOne(t, pkt(0x20, by(1, 0x87), withProps(0x1f, 0, 1, 'r'))), &c)
	if err := DecodeConnack5(readOne(t, pkt(0x20, by(0, 0, 0))), &c); err != nil || !same(c, Connack5{}) {
		t.Errorf("CONNACK decoded again: %+v, %v", c, err)
	}
}

// TestDecodedStringsOutliveTheBuffer: strings are copies; binary data and
// the topic alias the packet, valid until the next read.
func TestDecodedStringsOutliveTheBuffer(t *testing.T) {
	b, _ := AppendPublish5(nil, "t", nil, 0, false, false, 0, &Properties{ContentType: "text/plain", UserProperties: []StringPair{{"k", "v"}}})
	p := readOne(t, b)
	p.Body = bytes.Clone(p.Body)
	var m Publish5
	if err := DecodePublish5(p, &m); err != nil {
		t.Fatal(err)
	}
	for i := range p.Body {
		p.Body[i] = '#'
	}
	if m.Properties.ContentType != "text/plain" || m.Properties.UserProperties[0] != (StringPair{"k", "v"}) {
		t.Errorf("after the buffer changed: %q %q", m.Properties.ContentType, m.Properties.UserProperties)
	}
}

// FuzzReadPacket5 reads arbitrary bytes, as a broker (or a client, for
// the packets a broker receives) might send them, as MQTT 5 packets:
// errors are *DecodeErrors, never panics, and what decodes encodes again
// and decodes to the same.
func FuzzReadPacket5(f *testing.F) {
	for _, tt := range roundTrips {
		b, err := tt.encode()
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add(publish5(withProps(0x26, 0, 1, 'a', 0, 1, '1', 0x0b, 1, 0x0b, 2, 0x03, 0, 1, 'c')...))
	f.Add(publish5(0xff, 0xff, 0xff, 0x7f))
	f.Add(pkt(0x20, by(0, 0), withProps(0x21, 0, 0)))
	f.Add(pkt(0x20, by(0, 1)))
	f.Add(pkt(0xf0, by(0x18, 0)))
	f.Fuzz(func(t *testing.T, in []byte) {
		pr := NewReader(bufio.NewReaderSize(bytes.NewReader(in), 16))
		for range 64 {
			pr.Complete()
			p, err := pr.Next()
			if err != nil {
				return
			}
			if typ := p.Type(); typ == 0 || typ == TypePingreq || typ == TypePingresp {
				continue
			}
			m, err := decode5(p)
			if err != nil {
				var de *DecodeError
				if !errors.As(err, &de) {
					t.Fatalf("%s % x: %v is not a *DecodeError", TypeName(p.Type()), p.Body, err)
				}
				continue
			}
			again, err := encode5(p.Header, m)
			if err != nil {
				t.Fatalf("%s % x decodes as %+v, which does not encode: %v", TypeName(p.Type()), p.Body, m, err)
			}
			n, k := varint(again[1:])
			if k <= 0 || 1+k+n != len(again) {
				t.Fatalf("%s encodes as % x, whose remaining length is wrong", TypeName(p.Type()), again)
			}
			m2, err := decode5(Packet{Header: again[0], Body: again[1+k:]})
			if err != nil || !same(m, m2) {
				t.Fatalf("%s % x decodes as\n%+v\nencodes as % x, which decodes as\n%+v, %v", TypeName(p.Type()), p.Body, m, again, m2, err)
			}
		}
	})
}

// benchProps are the properties of a request: what a rule's publish
// action may set (docs/rules.md).
var benchProps = Properties{
	MessageExpiryInterval: 60,
	ContentType:           "application/json",
	ResponseTopic:         "replies/123",
	CorrelationData:       []byte("req-42"),
	UserProperties:        []StringPair{{"trace", "4bf92f3577b34da6"}, {"site", "north"}},
}

var benchCases = []struct {
	name  string
	props *Properties
}{
	{"none", nil},
	{"alias+expiry", &Properties{TopicAlias: 3, MessageExpiryInterval: 60}},
	{"request", &benchProps},
}

func BenchmarkReadPublish5(b *testing.B) {
	for _, bc := range benchCases {
		b.Run(bc.name, func(b *testing.B) {
			one, err := AppendPublish5(nil, "sensors/123/temperature", []byte(`{"value":31,"run":1,"seq":42,"ts":1732572000123456789}`), 1, false, false, 7, bc.props)
			if err != nil {
				b.Fatal(err)
			}
			stream := bytes.Repeat(one, 1000)
			r := bytes.NewReader(stream)
			pr := NewReader(bufio.NewReaderSize(r, 64<<10))
			var m Publish5
			b.ReportAllocs()
			b.SetBytes(int64(len(one)))
			for i := 0; b.Loop(); i++ {
				if i%1000 == 0 {
					r.Reset(stream)
					pr.r.Reset(r)
					pr.discard = 0
				}
				p, err := pr.Next()
				if err != nil {
					b.Fatal(err)
				}
				if err := DecodePublish5(p, &m); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkAppendPublish5(b *testing.B) {
	payload := []byte(`{"value":31,"run":1,"seq":42,"ts":1732572000123456789}`)
	for _, bc := range benchCases {
		b.Run(bc.name, func(b *testing.B) {
			buf := make([]byte, 0, 4096)
			b.ReportAllocs()
			for b.Loop() {
				var err error
				if buf, err = AppendPublish5(buf[:0], "alerts/123/temperature", payload, 1, false, false, 7, bc.props); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
