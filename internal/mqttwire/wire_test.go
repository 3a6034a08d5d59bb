package mqttwire

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"
	"testing/iotest"
)

func TestRemainingLength(t *testing.T) {
	// The boundaries of [MQTT-2.2.3]'s table.
	tests := []struct {
		n   int
		enc []byte
	}{
		{0, []byte{0x00}},
		{127, []byte{0x7f}},
		{128, []byte{0x80, 0x01}},
		{16383, []byte{0xff, 0x7f}},
		{16384, []byte{0x80, 0x80, 0x01}},
		{2097151, []byte{0xff, 0xff, 0x7f}},
		{2097152, []byte{0x80, 0x80, 0x80, 0x01}},
		{MaxRemainingLength, []byte{0xff, 0xff, 0xff, 0x7f}},
	}
	for _, tt := range tests {
		if got := AppendRemainingLength(nil, tt.n); !bytes.Equal(got, tt.enc) {
			t.Errorf("AppendRemainingLength(%d) = % x, want % x", tt.n, got, tt.enc)
		}
		n, k, err := DecodeRemainingLength(tt.enc)
		if n != tt.n || k != len(tt.enc) || err != nil {
			t.Errorf("DecodeRemainingLength(% x) = %d, %d, %v, want %d, %d, nil", tt.enc, n, k, err, tt.n, len(tt.enc))
		}
		if _, k, err := DecodeRemainingLength(tt.enc[:len(tt.enc)-1]); k != 0 || err != nil {
			t.Errorf("DecodeRemainingLength(% x) (cut short) = k %d, %v, want 0, nil", tt.enc[:len(tt.enc)-1], k, err)
		}
	}
	if _, _, err := DecodeRemainingLength([]byte{0x80, 0x80, 0x80, 0x80, 0x01}); !errors.Is(err, ErrMalformed) {
		t.Errorf("five length bytes: %v, want ErrMalformed", err)
	}
}

func TestEncodePackets(t *testing.T) {
	tests := []struct {
		name string
		got  []byte
		want []byte
	}{
		{"publish QoS 0", AppendPublish(nil, "a/b", []byte("hi"), 0, false, false, 9),
			[]byte{0x30, 7, 0, 3, 'a', '/', 'b', 'h', 'i'}},
		{"publish QoS 1 retained dup", AppendPublish(nil, "t", []byte{1}, 1, true, true, 0x1234),
			[]byte{0x3b, 6, 0, 1, 't', 0x12, 0x34, 1}},
		{"publish QoS 2 empty", AppendPublish(nil, "t", nil, 2, false, false, 1),
			[]byte{0x34, 5, 0, 1, 't', 0, 1}},
		{"puback", AppendAck(nil, TypePuback<<4, 0x0102), []byte{0x40, 2, 1, 2}},
		{"pubrel", AppendAck(nil, HeaderPubrel, 7), []byte{0x62, 2, 0, 7}},
		{"subscribe", AppendSubscribe(nil, 5, []string{"a/#", "b"}, 1),
			[]byte{0x82, 12, 0, 5, 0, 3, 'a', '/', '#', 1, 0, 1, 'b', 1}},
		{"unsubscribe", AppendUnsubscribe(nil, 6, []string{"a/#"}),
			[]byte{0xa2, 7, 0, 6, 0, 3, 'a', '/', '#'}},
	}
	for _, tt := range tests {
		if !bytes.Equal(tt.got, tt.want) {
			t.Errorf("%s: % x, want % x", tt.name, tt.got, tt.want)
		}
	}
}

func TestEncodeConnect(t *testing.T) {
	got, err := AppendConnect(nil, Connect{ClientID: "id", CleanSession: true, KeepAlive: 30, Username: "u", Password: "p"})
	if err != nil {
		t.Fatal(err)
	}
	want := []byte{0x10, 20, 0, 4, 'M', 'Q', 'T', 'T', 4, 0xc2, 0, 30, 0, 2, 'i', 'd', 0, 1, 'u', 0, 1, 'p'}
	if !bytes.Equal(got, want) {
		t.Errorf("CONNECT % x, want % x", got, want)
	}
	got, _ = AppendConnect(nil, Connect{ClientID: "id", KeepAlive: 0x0102})
	want = []byte{0x10, 14, 0, 4, 'M', 'Q', 'T', 'T', 4, 0, 1, 2, 0, 2, 'i', 'd'}
	if !bytes.Equal(got, want) {
		t.Errorf("CONNECT without credentials % x, want % x", got, want)
	}
	if _, err := AppendConnect(nil, Connect{ClientID: strings.Repeat("x", 70000)}); err == nil {
		t.Error("a client id of 70000 bytes: no error")
	}
}

// TestReadPackets reads packets split at every possible point.
func TestReadPackets(t *testing.T) {
	big := bytes.Repeat([]byte("0123456789"), 20000) // larger than the reader's buffer
	var stream []byte
	stream = AppendPublish(stream, "s/1", []byte("one"), 1, false, false, 1)
	stream = AppendAck(stream, TypePuback<<4, 2)
	stream = append(stream, TypePingresp<<4, 0)
	stream = AppendPublish(stream, "s/big", big, 0, true, false, 0)
	stream = AppendPublish(stream, "s/2", nil, 2, false, true, 3)

	for _, r := range []struct {
		name string
		r    io.Reader
	}{
		{"whole", bytes.NewReader(stream)},
		{"byte by byte", iotest.OneByteReader(bytes.NewReader(stream))},
		{"half", iotest.HalfReader(bytes.NewReader(stream))},
	} {
		t.Run(r.name, func(t *testing.T) {
			pr := NewReader(bufio.NewReaderSize(r.r, 64))
			p, err := pr.Next()
			m, _ := DecodePublish(p)
			if err != nil || string(m.Topic) != "s/1" || string(m.Payload) != "one" || m.QoS != 1 || m.ID != 1 {
				t.Fatalf("packet 1: %+v %v", m, err)
			}
			p, err = pr.Next()
			if id, _ := DecodeID(p); err != nil || p.Type() != TypePuback || id != 2 {
				t.Fatalf("packet 2: %s id %d %v, want PUBACK 2", TypeName(p.Type()), id, err)
			}
			if p, err = pr.Next(); err != nil || p.Type() != TypePingresp || len(p.Body) != 0 {
				t.Fatalf("packet 3: %s %v, want PINGRESP", TypeName(p.Type()), err)
			}
			p, err = pr.Next()
			m, _ = DecodePublish(p)
			if err != nil || string(m.Topic) != "s/big" || !bytes.Equal(m.Payload, big) || !m.Retain {
				t.Fatalf("packet 4: topic %q, %d bytes, retain %v, %v", m.Topic, len(m.Payload), m.Retain, err)
			}
			p, err = pr.Next()
			m, _ = DecodePublish(p)
			if err != nil || string(m.Topic) != "s/2" || len(m.Payload) != 0 || m.QoS != 2 || !m.Dup || m.ID != 3 {
				t.Fatalf("packet 5: %+v %v", m, err)
			}
			if _, err := pr.Next(); err != io.EOF {
				t.Fatalf("after the last packet: %v, want io.EOF", err)
			}
		})
	}
}

// TestReadMalformed: what a broker may send wrongly is an error, never a
// panic; a stream that ends inside a packet is io.ErrUnexpectedEOF.
func TestReadMalformed(t *testing.T) {
	tests := []struct {
		name string
		in   []byte
		want error
	}{
		{"empty", nil, io.EOF},
		{"header only", []byte{0x30}, io.ErrUnexpectedEOF},
		{"length cut short", []byte{0x30, 0x80}, io.ErrUnexpectedEOF},
		{"length too long", []byte{0x30, 0x80, 0x80, 0x80, 0x80, 0x01}, ErrMalformed},
		{"body cut short", []byte{0x30, 10, 0, 1, 'a'}, io.ErrUnexpectedEOF},
		{"huge length, no body", []byte{0x30, 0xff, 0xff, 0xff, 0x7f, 1, 2, 3}, io.ErrUnexpectedEOF},
	}
	for _, tt := range tests {
		pr := NewReader(bufio.NewReaderSize(bytes.NewReader(tt.in), 16))
		if _, err := pr.Next(); !errors.Is(err, tt.want) {
			t.Errorf("%s: %v, want %v", tt.name, err, tt.want)
		}
	}

	decodes := []struct {
		name string
		p    Packet
	}{
		{"publish empty", Packet{Header: 0x30}},
		{"publish topic beyond body", Packet{Header: 0x30, Body: []byte{0, 5, 'a'}}},
		{"publish QoS 3", Packet{Header: 0x36, Body: []byte{0, 1, 'a', 0, 1}}},
		{"publish QoS 1 no id", Packet{Header: 0x32, Body: []byte{0, 1, 'a', 0}}},
	}
	for _, tt := range decodes {
		if _, err := DecodePublish(tt.p); !errors.Is(err, ErrMalformed) {
			t.Errorf("DecodePublish %s: %v, want ErrMalformed", tt.name, err)
		}
	}
	if _, err := DecodeID(Packet{Header: 0x40, Body: []byte{1}}); !errors.Is(err, ErrMalformed) {
		t.Errorf("PUBACK of one byte: %v, want ErrMalformed", err)
	}
	for _, p := range []Packet{{Header: 0x20, Body: []byte{0}}, {Header: 0x30, Body: []byte{0, 0}}, {Header: 0x20, Body: []byte{0, 0, 0}}} {
		if _, _, err := DecodeConnack(p); !errors.Is(err, ErrMalformed) {
			t.Errorf("DecodeConnack(%x % x): %v, want ErrMalformed", p.Header, p.Body, err)
		}
	}
	if present, code, err := DecodeConnack(Packet{Header: 0x20, Body: []byte{1, 5}}); !present || code != 5 || err != nil {
		t.Errorf("DecodeConnack(01 05) = %v, %d, %v, want true, 5, nil", present, code, err)
	}
}

// TestComplete: complete tells whether next can return without reading.
func TestComplete(t *testing.T) {
	pkt := AppendPublish(nil, "a", []byte("payload"), 0, false, false, 0)
	for cut := 0; cut <= len(pkt); cut++ {
		br := bufio.NewReader(bytes.NewReader(pkt[:cut]))
		_, _ = br.Peek(cut) // buffer what there is
		pr := NewReader(br)
		if got, want := pr.Complete(), cut == len(pkt); got != want {
			t.Errorf("%d of %d bytes buffered: complete() = %v, want %v", cut, len(pkt), got, want)
		}
	}
}

// FuzzReadPacket feeds arbitrary bytes, as a broker might send, to the
// packet reader and the decoders: errors are fine, panics are not, and a
// decoded PUBLISH encodes back to the bytes it came from.
func FuzzReadPacket(f *testing.F) {
	f.Add(AppendPublish(nil, "a/b", []byte("x"), 1, false, true, 3))
	f.Add(AppendPublish(nil, "t", nil, 0, true, false, 0))
	f.Add(AppendAck(nil, TypePuback<<4, 1))
	f.Add([]byte{TypeSuback << 4, 3, 0, 1, 0x80})
	f.Add([]byte{TypeConnack << 4, 2, 0, 5})
	f.Add([]byte{0x30, 0xff, 0xff, 0xff, 0x7f})
	f.Add([]byte{0x32, 3, 0, 1, 'a'})
	f.Fuzz(func(t *testing.T, in []byte) {
		pr := NewReader(bufio.NewReaderSize(bytes.NewReader(in), 16))
		for range 64 {
			pr.Complete()
			p, err := pr.Next()
			if err != nil {
				return
			}
			switch p.Type() {
			case TypePublish:
				m, err := DecodePublish(p)
				if err != nil {
					continue
				}
				again := AppendPublish(nil, string(m.Topic), m.Payload, m.QoS, m.Retain, m.Dup, m.ID)
				want := append([]byte{p.Header}, AppendRemainingLength(nil, len(p.Body))...)
				want = append(want, p.Body...)
				if !bytes.Equal(again, want) {
					t.Fatalf("PUBLISH % x encodes back as % x", want, again)
				}
			case TypeConnack:
				_, _, _ = DecodeConnack(p)
			default:
				_, _ = DecodeID(p)
			}
		}
	})
}

func BenchmarkReadPublish(b *testing.B) {
	one := AppendPublish(nil, "sensors/123/temperature", []byte(`{"value":31,"run":1,"seq":42,"ts":1732572000123456789}`), 1, false, false, 7)
	stream := bytes.Repeat(one, 1000)
	r := bytes.NewReader(stream)
	pr := NewReader(bufio.NewReaderSize(r, 64<<10))
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
		if _, err := DecodePublish(p); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkAppendPublish(b *testing.B) {
	payload := []byte(`{"value":31,"run":1,"seq":42,"ts":1732572000123456789}`)
	buf := make([]byte, 0, 4096)
	b.ReportAllocs()
	for b.Loop() {
		buf = AppendPublish(buf[:0], "alerts/123/temperature", payload, 1, false, false, 7)
	}
}

// TestReadClaimedLengthNotTrusted: a packet that claims far more than the
// broker sends ends as a truncated stream without the claimed memory
// being allocated.
func TestReadClaimedLengthNotTrusted(t *testing.T) {
	claimed := 200 << 20
	in := append([]byte{TypePublish << 4}, AppendRemainingLength(nil, claimed)...)
	in = append(in, "0123456789"...)
	pr := NewReader(bufio.NewReaderSize(bytes.NewReader(in), 16))
	_, err := pr.Next()
	if !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("next() = %v, want io.ErrUnexpectedEOF", err)
	}
	if c := cap(pr.big); c > bigReadFirst {
		t.Fatalf("allocated %d bytes for a body of which 10 arrived, want at most %d", c, bigReadFirst)
	}
}

func TestConnackReason(t *testing.T) {
	for code, want := range map[byte]string{0: "", 2: "client identifier rejected", 4: "bad username or password", 5: "not authorized", 9: "CONNACK return code 9"} {
		if got := ConnackReason(code); got != want {
			t.Errorf("ConnackReason(%d) = %q, want %q", code, got, want)
		}
	}
}
