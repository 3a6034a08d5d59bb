package main

import (
	"math"
	"strconv"
	"testing"
)

func TestPayloadRoundTrip(t *testing.T) {
	c := newPayloadCodec("31", 123)
	p := c.appendPayload(nil, 42, 1_732_572_000_123_456_789)
	if want := `{"value":31,"run":123,"seq":42,"ts":1732572000123456789}`; string(p) != want {
		t.Fatalf("payload = %s, want %s", p, want)
	}
	seq, ts, ok := c.parse(p)
	if !ok || seq != 42 || ts != 1_732_572_000_123_456_789 {
		t.Errorf("parse = %d, %d, %v; want 42, 1732572000123456789, true", seq, ts, ok)
	}
}

func TestPayloadParseRejects(t *testing.T) {
	c := newPayloadCodec("31", 123)
	tests := []string{
		``,
		`{"value":31}`,
		`{"value":31,"run":124,"seq":1,"ts":2}`, // another run
		`{"value":32,"run":123,"seq":1,"ts":2}`, // another value
		`{"value":31,"run":123,"seq":,"ts":2}`,
		`{"value":31,"run":123,"seq":1,"ts":}`,
		`{"value":31,"run":123,"seq":1,"ts":2`,
		`{"value":31,"run":123,"seq":1,"ts":2} `,
		`{"value":31,"run":123,"seq":1,"time":2}`,
		`{"value":31,"run":123,"seq":99999999999999999999,"ts":2}`,
	}
	for _, p := range tests {
		if seq, ts, ok := c.parse([]byte(p)); ok {
			t.Errorf("parse(%s) = %d, %d, true; want false", p, seq, ts)
		}
	}
}

func TestParseInt(t *testing.T) {
	tests := []struct {
		in   string
		want int64
		rest string
		ok   bool
	}{
		{"0}", 0, "}", true},
		{"-17,", -17, ",", true},
		{strconv.FormatInt(math.MaxInt64, 10), math.MaxInt64, "", true},
		{"9223372036854775808", 0, "", false},
		{"x", 0, "", false},
		{"-", 0, "", false},
	}
	for _, tt := range tests {
		got, rest, ok := parseInt([]byte(tt.in))
		if ok != tt.ok || (ok && (got != tt.want || string(rest) != tt.rest)) {
			t.Errorf("parseInt(%q) = %d, %q, %v; want %d, %q, %v", tt.in, got, rest, ok, tt.want, tt.rest, tt.ok)
		}
	}
}

func FuzzPayloadParse(f *testing.F) {
	c := newPayloadCodec("31", 5)
	f.Add([]byte(`{"value":31,"run":5,"seq":1,"ts":2}`))
	f.Add([]byte(`{"value":31,"run":5,"seq":-1,"ts":-2}`))
	f.Add([]byte(`{}`))
	f.Fuzz(func(t *testing.T, p []byte) {
		seq, ts, ok := c.parse(p)
		if !ok {
			return
		}
		if again := c.appendPayload(nil, seq, ts); string(again) != string(p) {
			// leading zeros or "-0" parse too; the values must still agree
			s2, t2, ok2 := c.parse(again)
			if !ok2 || s2 != seq || t2 != ts {
				t.Errorf("parse(%s) = %d, %d; re-encoded %s parses differently", p, seq, ts, again)
			}
		}
	})
}

func BenchmarkPayload(b *testing.B) {
	c := newPayloadCodec("31", 123456789)
	buf := make([]byte, 0, 128)
	b.ReportAllocs()
	var seq int64
	for b.Loop() {
		buf = c.appendPayload(buf[:0], seq, 1_732_572_000_123_456_789)
		if _, _, ok := c.parse(buf); !ok {
			b.Fatal("parse failed")
		}
		seq++
	}
}
