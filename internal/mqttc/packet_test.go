package mqttc

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
		{maxRemainingLength, []byte{0xff, 0xff, 0xff, 0x7f}},
	}
	for _, tt := range tests {
		if got := appendRemainingLength(nil, tt.n); !bytes.Equal(got, tt.enc) {
			t.Errorf("appendRemainingLength(%d) = % x, want % x", tt.n, got, tt.enc)
		}
		n, k, err := decodeRemainingLength(tt.enc)
		if n != tt.n || k != len(tt.enc) || err != nil {
			t.Errorf("decodeRemainingLength(% x) = %d, %d, %v, want %d, %d, nil", tt.enc, n, k, err, tt.n, len(tt.enc))
		}
		if _, k, err := decodeRemainingLength(tt.enc[:len(tt.enc)-1]); k != 0 || err != nil {
			t.Errorf("decodeRemainingLength(% x) (cut short) = k %d, %v, want 0, nil", tt.enc[:len(tt.enc)-1], k, err)
		}
	}
	if _, _, err := decodeRemainingLength([]byte{0x80, 0x80, 0x80, 0x80, 0x01}); !errors.Is(err, errMalformed) {
		t.Errorf("five length bytes: %v, want errMalformed", err)
	}
}

func TestEncodePackets(t *testing.T) {
	tests := []struct {
		name string
		got  []byte
		want []byte
	}{
		{"publish QoS 0", appendPublish(nil, "a/b", []byte("hi"), 0, false, false, 9),
			[]byte{0x30, 7, 0, 3, 'a', '/', 'b', 'h', 'i'}},
		{"publish QoS 1 retained dup", appendPublish(nil, "t", []byte{1}, 1, true, true, 0x1234),
			[]byte{0x3b, 6, 0, 1, 't', 0x12, 0x34, 1}},
		{"publish QoS 2 empty", appendPublish(nil, "t", nil, 2, false, false, 1),
			[]byte{0x34, 5, 0, 1, 't', 0, 1}},
		{"puback", appendAck(nil, pktPuback<<4, 0x0102), []byte{0x40, 2, 1, 2}},
		{"pubrel", appendAck(nil, fixedHeaderPubrel, 7), []byte{0x62, 2, 0, 7}},
		{"subscribe", appendSubscribe(nil, 5, []string{"a/#", "b"}, 1),
			[]byte{0x82, 12, 0, 5, 0, 3, 'a', '/', '#', 1, 0, 1, 'b', 1}},
		{"unsubscribe", appendUnsubscribe(nil, 6, []string{"a/#"}),
			[]byte{0xa2, 7, 0, 6, 0, 3, 'a', '/', '#'}},
	}
	for _, tt := range tests {
		if !bytes.Equal(tt.got, tt.want) {
			t.Errorf("%s: % x, want % x", tt.name, tt.got, tt.want)
		}
	}
}

func TestEncodeConnect(t *testing.T) {
	got, err := appendConnect(nil, connectPacket{clientID: "id", cleanSession: true, keepAlive: 30, username: "u", password: "p"})
	if err != nil {
		t.Fatal(err)
	}
	want := []byte{0x10, 20, 0, 4, 'M', 'Q', 'T', 'T', 4, 0xc2, 0, 30, 0, 2, 'i', 'd', 0, 1, 'u', 0, 1, 'p'}
	if !bytes.Equal(got, want) {
		t.Errorf("CONNECT % x, want % x", got, want)
	}
	got, _ = appendConnect(nil, connectPacket{clientID: "id", keepAlive: 0x0102})
	want = []byte{0x10, 14, 0, 4, 'M', 'Q', 'T', 'T', 4, 0, 1, 2, 0, 2, 'i', 'd'}
	if !bytes.Equal(got, want) {
		t.Errorf("CONNECT without credentials % x, want % x", got, want)
	}
	if _, err := appendConnect(nil, connectPacket{clientID: strings.Repeat("x", 70000)}); err == nil {
		t.Error("a client id of 70000 bytes: no error")
	}
}

// TestReadPackets reads packets split at every possible point.
func TestReadPackets(t *testing.T) {
	big := bytes.Repeat([]byte("0123456789"), 20000) // larger than the reader's buffer
	var stream []byte
	stream = appendPublish(stream, "s/1", []byte("one"), 1, false, false, 1)
	stream = appendAck(stream, pktPuback<<4, 2)
	stream = append(stream, pktPingresp<<4, 0)
	stream = appendPublish(stream, "s/big", big, 0, true, false, 0)
	stream = appendPublish(stream, "s/2", nil, 2, false, true, 3)

	for _, r := range []struct {
		name string
		r    io.Reader
	}{
		{"whole", bytes.NewReader(stream)},
		{"byte by byte", iotest.OneByteReader(bytes.NewReader(stream))},
		{"half", iotest.HalfReader(bytes.NewReader(stream))},
	} {
		t.Run(r.name, func(t *testing.T) {
			pr := packetReader{r: bufio.NewReaderSize(r.r, 64)}
			p, err := pr.next()
			m, _ := decodePublish(p)
			if err != nil || string(m.topic) != "s/1" || string(m.payload) != "one" || m.qos != 1 || m.id != 1 {
				t.Fatalf("packet 1: %+v %v", m, err)
			}
			p, err = pr.next()
			if id, _ := decodeID(p); err != nil || p.typ() != pktPuback || id != 2 {
				t.Fatalf("packet 2: %s id %d %v, want PUBACK 2", typeName(p.typ()), id, err)
			}
			if p, err = pr.next(); err != nil || p.typ() != pktPingresp || len(p.body) != 0 {
				t.Fatalf("packet 3: %s %v, want PINGRESP", typeName(p.typ()), err)
			}
			p, err = pr.next()
			m, _ = decodePublish(p)
			if err != nil || string(m.topic) != "s/big" || !bytes.Equal(m.payload, big) || !m.retain {
				t.Fatalf("packet 4: topic %q, %d bytes, retain %v, %v", m.topic, len(m.payload), m.retain, err)
			}
			p, err = pr.next()
			m, _ = decodePublish(p)
			if err != nil || string(m.topic) != "s/2" || len(m.payload) != 0 || m.qos != 2 || !m.dup || m.id != 3 {
				t.Fatalf("packet 5: %+v %v", m, err)
			}
			if _, err := pr.next(); err != io.EOF {
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
		{"length too long", []byte{0x30, 0x80, 0x80, 0x80, 0x80, 0x01}, errMalformed},
		{"body cut short", []byte{0x30, 10, 0, 1, 'a'}, io.ErrUnexpectedEOF},
		{"huge length, no body", []byte{0x30, 0xff, 0xff, 0xff, 0x7f, 1, 2, 3}, io.ErrUnexpectedEOF},
	}
	for _, tt := range tests {
		pr := packetReader{r: bufio.NewReaderSize(bytes.NewReader(tt.in), 16)}
		if _, err := pr.next(); !errors.Is(err, tt.want) {
			t.Errorf("%s: %v, want %v", tt.name, err, tt.want)
		}
	}

	decodes := []struct {
		name string
		p    packet
	}{
		{"publish empty", packet{header: 0x30}},
		{"publish topic beyond body", packet{header: 0x30, body: []byte{0, 5, 'a'}}},
		{"publish QoS 3", packet{header: 0x36, body: []byte{0, 1, 'a', 0, 1}}},
		{"publish QoS 1 no id", packet{header: 0x32, body: []byte{0, 1, 'a', 0}}},
	}
	for _, tt := range decodes {
		if _, err := decodePublish(tt.p); !errors.Is(err, errMalformed) {
			t.Errorf("decodePublish %s: %v, want errMalformed", tt.name, err)
		}
	}
	if _, err := decodeID(packet{header: 0x40, body: []byte{1}}); !errors.Is(err, errMalformed) {
		t.Errorf("PUBACK of one byte: %v, want errMalformed", err)
	}
	for _, p := range []packet{{header: 0x20, body: []byte{0}}, {header: 0x30, body: []byte{0, 0}}, {header: 0x20, body: []byte{0, 0, 0}}} {
		if _, _, err := decodeConnack(p); !errors.Is(err, errMalformed) {
			t.Errorf("decodeConnack(%x % x): %v, want errMalformed", p.header, p.body, err)
		}
	}
	if present, code, err := decodeConnack(packet{header: 0x20, body: []byte{1, 5}}); !present || code != 5 || err != nil {
		t.Errorf("decodeConnack(01 05) = %v, %d, %v, want true, 5, nil", present, code, err)
	}
}

// TestComplete: complete tells whether next can return without reading.
func TestComplete(t *testing.T) {
	pkt := appendPublish(nil, "a", []byte("payload"), 0, false, false, 0)
	for cut := 0; cut <= len(pkt); cut++ {
		br := bufio.NewReader(bytes.NewReader(pkt[:cut]))
		_, _ = br.Peek(cut) // buffer what there is
		pr := packetReader{r: br}
		if got, want := pr.complete(), cut == len(pkt); got != want {
			t.Errorf("%d of %d bytes buffered: complete() = %v, want %v", cut, len(pkt), got, want)
		}
	}
}

// FuzzReadPacket feeds arbitrary bytes, as a broker might send, to the
// packet reader and the decoders: errors are fine, panics are not, and a
// decoded PUBLISH encodes back to the bytes it came from.
func FuzzReadPacket(f *testing.F) {
	f.Add(appendPublish(nil, "a/b", []byte("x"), 1, false, true, 3))
	f.Add(appendPublish(nil, "t", nil, 0, true, false, 0))
	f.Add(appendAck(nil, pktPuback<<4, 1))
	f.Add([]byte{pktSuback << 4, 3, 0, 1, 0x80})
	f.Add([]byte{pktConnack << 4, 2, 0, 5})
	f.Add([]byte{0x30, 0xff, 0xff, 0xff, 0x7f})
	f.Add([]byte{0x32, 3, 0, 1, 'a'})
	f.Fuzz(func(t *testing.T, in []byte) {
		pr := packetReader{r: bufio.NewReaderSize(bytes.NewReader(in), 16)}
		for range 64 {
			pr.complete()
			p, err := pr.next()
			if err != nil {
				return
			}
			switch p.typ() {
			case pktPublish:
				m, err := decodePublish(p)
				if err != nil {
					continue
				}
				again := appendPublish(nil, string(m.topic), m.payload, m.qos, m.retain, m.dup, m.id)
				want := append([]byte{p.header}, appendRemainingLength(nil, len(p.body))...)
				want = append(want, p.body...)
				if !bytes.Equal(again, want) {
					t.Fatalf("PUBLISH % x encodes back as % x", want, again)
				}
			case pktConnack:
				_, _, _ = decodeConnack(p)
			default:
				_, _ = decodeID(p)
			}
		}
	})
}

func BenchmarkReadPublish(b *testing.B) {
	one := appendPublish(nil, "sensors/123/temperature", []byte(`{"value":31,"run":1,"seq":42,"ts":1732572000123456789}`), 1, false, false, 7)
	stream := bytes.Repeat(one, 1000)
	r := bytes.NewReader(stream)
	pr := packetReader{r: bufio.NewReaderSize(r, readBuffer)}
	b.ReportAllocs()
	b.SetBytes(int64(len(one)))
	for i := 0; b.Loop(); i++ {
		if i%1000 == 0 {
			r.Reset(stream)
			pr.r.Reset(r)
			pr.discard = 0
		}
		p, err := pr.next()
		if err != nil {
			b.Fatal(err)
		}
		if _, err := decodePublish(p); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkAppendPublish(b *testing.B) {
	payload := []byte(`{"value":31,"run":1,"seq":42,"ts":1732572000123456789}`)
	buf := make([]byte, 0, 4096)
	b.ReportAllocs()
	for b.Loop() {
		buf = appendPublish(buf[:0], "alerts/123/temperature", payload, 1, false, false, 7)
	}
}

// TestReadClaimedLengthNotTrusted: a packet that claims far more than the
// broker sends ends as a truncated stream without the claimed memory
// being allocated.
func TestReadClaimedLengthNotTrusted(t *testing.T) {
	claimed := 200 << 20
	in := append([]byte{pktPublish << 4}, appendRemainingLength(nil, claimed)...)
	in = append(in, "0123456789"...)
	pr := packetReader{r: bufio.NewReaderSize(bytes.NewReader(in), 16)}
	_, err := pr.next()
	if !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("next() = %v, want io.ErrUnexpectedEOF", err)
	}
	if c := cap(pr.big); c > bigReadFirst {
		t.Fatalf("allocated %d bytes for a body of which 10 arrived, want at most %d", c, bigReadFirst)
	}
}
