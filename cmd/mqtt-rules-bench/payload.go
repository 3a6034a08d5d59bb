package main

import (
	"bytes"
	"math"
	"strconv"
)

// payloadCodec writes and reads the load tool's payloads:
//
//	{"value":31,"run":8123456,"seq":42,"ts":1732572000123456789}
//
// value makes the threshold rule fire; run tells this run's messages from
// leftovers of an earlier one; seq numbers the message; ts is its send
// time in Unix nanoseconds. Because the engine republishes the payload
// unchanged, the receiver finds seq and ts after a fixed prefix, without
// a JSON decoder.
type payloadCodec struct {
	prefix []byte // {"value":V,"run":R,"seq":
}

// tsField separates seq from ts.
var tsField = []byte(`,"ts":`)

// newPayloadCodec returns a codec for payloads with the given value (a
// JSON number) and run id.
func newPayloadCodec(value string, run int64) *payloadCodec {
	p := []byte(`{"value":`)
	p = append(p, value...)
	p = append(p, `,"run":`...)
	p = strconv.AppendInt(p, run, 10)
	p = append(p, `,"seq":`...)
	return &payloadCodec{prefix: p}
}

// appendPayload appends the payload of message seq sent at ts to dst.
func (c *payloadCodec) appendPayload(dst []byte, seq, ts int64) []byte {
	dst = append(dst, c.prefix...)
	dst = strconv.AppendInt(dst, seq, 10)
	dst = append(dst, tsField...)
	dst = strconv.AppendInt(dst, ts, 10)
	return append(dst, '}')
}

// parse returns the seq and ts of a payload written by this codec; ok is
// false for any other payload (another run's, or not the tool's at all).
func (c *payloadCodec) parse(b []byte) (seq, ts int64, ok bool) {
	if !bytes.HasPrefix(b, c.prefix) {
		return 0, 0, false
	}
	b = b[len(c.prefix):]
	seq, b, ok = parseInt(b)
	if !ok || !bytes.HasPrefix(b, tsField) {
		return 0, 0, false
	}
	ts, b, ok = parseInt(b[len(tsField):])
	if !ok || len(b) != 1 || b[0] != '}' {
		return 0, 0, false
	}
	return seq, ts, true
}

// parseInt parses the decimal integer (optionally negative) at the start
// of b and returns it with the rest of b.
func parseInt(b []byte) (int64, []byte, bool) {
	neg := len(b) > 0 && b[0] == '-'
	if neg {
		b = b[1:]
	}
	var n int64
	i := 0
	for ; i < len(b) && b[i] >= '0' && b[i] <= '9'; i++ {
		d := int64(b[i] - '0')
		if n > (math.MaxInt64-d)/10 {
			return 0, b, false // overflows int64
		}
		n = n*10 + d
	}
	if i == 0 {
		return 0, b, false
	}
	if neg {
		n = -n
	}
	return n, b[i:], true
}
