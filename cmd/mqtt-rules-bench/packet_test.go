package main

import (
	"bufio"
	"bytes"
	"errors"
	"strings"
	"testing"
)

func TestRemainingLength(t *testing.T) {
	tests := []struct {
		n    int
		want []byte
	}{
		{0, []byte{0x00}},
		{127, []byte{0x7f}},
		{128, []byte{0x80, 0x01}},
		{16_383, []byte{0xff, 0x7f}},
		{16_384, []byte{0x80, 0x80, 0x01}},
		{2_097_151, []byte{0xff, 0xff, 0x7f}},
		{2_097_152, []byte{0x80, 0x80, 0x80, 0x01}},
		{maxRemainingLen, []byte{0xff, 0xff, 0xff, 0x7f}},
	}
	for _, tt := range tests {
		got := appendRemainingLength(nil, tt.n)
		if !bytes.Equal(got, tt.want) {
			t.Errorf("appendRemainingLength(%d) = % x, want % x", tt.n, got, tt.want)
		}
		var buf bytes.Buffer
		w := bufio.NewWriter(&buf)
		writeRemainingLength(w, tt.n)
		if err := w.Flush(); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(buf.Bytes(), tt.want) {
			t.Errorf("writeRemainingLength(%d) = % x, want % x", tt.n, buf.Bytes(), tt.want)
		}
		n, err := readRemainingLength(bytes.NewReader(tt.want))
		if err != nil || n != tt.n {
			t.Errorf("readRemainingLength(% x) = %d, %v; want %d", tt.want, n, err, tt.n)
		}
	}
	if _, err := readRemainingLength(bytes.NewReader([]byte{0xff, 0xff, 0xff, 0xff, 0x01})); !errors.Is(err, errMalformed) {
		t.Errorf("five-byte remaining length: err = %v, want errMalformed", err)
	}
}

func TestConnectPacket(t *testing.T) {
	got := connectPacket("c1", true, 60)
	want := []byte{
		0x10, 14, // CONNECT, remaining length
		0, 4, 'M', 'Q', 'T', 'T', // protocol name
		4,     // level 3.1.1
		0x02,  // clean session
		0, 60, // keep-alive
		0, 2, 'c', '1', // client id
	}
	if !bytes.Equal(got, want) {
		t.Errorf("connectPacket = % x, want % x", got, want)
	}
	if got := connectPacket("", false, 0); got[9] != 0 {
		t.Errorf("connect flags without clean session = %#x, want 0", got[9])
	}
}

func TestSubscribePacket(t *testing.T) {
	got := subscribePacket(0x0102, []string{"a/#", "b"}, 1)
	want := []byte{
		0x82, 12, // SUBSCRIBE with flags 0010, remaining length
		0x01, 0x02, // packet id
		0, 3, 'a', '/', '#', 1,
		0, 1, 'b', 1,
	}
	if !bytes.Equal(got, want) {
		t.Errorf("subscribePacket = % x, want % x", got, want)
	}
}

func TestPublishRoundTrip(t *testing.T) {
	long := strings.Repeat("x", 300) // a remaining length over 127
	tests := []struct {
		name    string
		topic   string
		payload string
		qos     byte
		id      uint16
		dup     bool
	}{
		{"qos0", "sensors/1/temperature", `{"value":31}`, 0, 0, false},
		{"qos1", "a/b", "hello", 1, 65535, false},
		{"qos1 dup", "a", "x", 1, 7, true},
		{"empty payload", "t", "", 0, 0, false},
		{"long payload", "t/long", long, 1, 300, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var buf bytes.Buffer
			w := bufio.NewWriter(&buf)
			writePublish(w, tt.topic, []byte(tt.payload), tt.qos, tt.id, tt.dup)
			writeAck(w, typePuback, tt.id)
			if err := w.Flush(); err != nil {
				t.Fatal(err)
			}
			r := bufio.NewReader(&buf)
			p, scratch, err := readPacket(r, nil)
			if err != nil {
				t.Fatalf("readPacket: %v", err)
			}
			if p.typ() != typePublish {
				t.Fatalf("type = %d, want %d", p.typ(), typePublish)
			}
			m, err := decodePublish(p)
			if err != nil {
				t.Fatalf("decodePublish: %v", err)
			}
			if string(m.Topic) != tt.topic || string(m.Payload) != tt.payload || m.QoS != tt.qos || m.Dup != tt.dup || m.Retain {
				t.Errorf("got topic %q payload %q qos %d dup %v retain %v; want %q %q %d %v false",
					m.Topic, m.Payload, m.QoS, m.Dup, m.Retain, tt.topic, tt.payload, tt.qos, tt.dup)
			}
			if tt.qos > 0 && m.ID != tt.id {
				t.Errorf("id = %d, want %d", m.ID, tt.id)
			}
			p, _, err = readPacket(r, scratch)
			if err != nil {
				t.Fatalf("readPacket puback: %v", err)
			}
			id, err := decodeID(p)
			if p.typ() != typePuback || err != nil || id != tt.id {
				t.Errorf("puback: type %d id %d err %v; want type %d id %d", p.typ(), id, err, typePuback, tt.id)
			}
		})
	}
}

func TestDecodePublishMalformed(t *testing.T) {
	tests := []struct {
		name   string
		header byte
		body   []byte
	}{
		{"qos 3", 0x36, []byte{0, 1, 'a', 0, 1}},
		{"no topic length", 0x30, []byte{0}},
		{"topic past end", 0x30, []byte{0, 5, 'a'}},
		{"qos1 without id", 0x32, []byte{0, 1, 'a', 0}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := decodePublish(packet{header: tt.header, body: tt.body}); !errors.Is(err, errMalformed) {
				t.Errorf("err = %v, want errMalformed", err)
			}
		})
	}
	if _, err := decodeID(packet{header: typePuback << 4, body: []byte{1}}); !errors.Is(err, errMalformed) {
		t.Errorf("short puback: err = %v, want errMalformed", err)
	}
}

func TestConnackError(t *testing.T) {
	if err := connackError(0); err != nil {
		t.Errorf("code 0: %v, want nil", err)
	}
	for code, want := range map[byte]string{2: "identifier rejected", 5: "not authorized", 9: "return code 9"} {
		if err := connackError(code); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("code %d: %v, want %q", code, err, want)
		}
	}
}

func TestReadPacketTruncated(t *testing.T) {
	r := bufio.NewReader(bytes.NewReader([]byte{0x30, 10, 0, 1, 'a'}))
	if _, _, err := readPacket(r, nil); err == nil {
		t.Error("truncated packet: no error")
	}
}
