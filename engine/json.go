package engine

import (
	"errors"
	"strconv"
	"unicode/utf16"
	"unicode/utf8"
	"unsafe"
)

// A JSON decoder for payloads, producing what encoding/json's Unmarshal
// into an `any` produces (objects as map[string]any, arrays as []any,
// numbers as float64), with fewer allocations: strings without escapes are
// views of the payload (which the engine owns and never changes), and an
// object can be decoded for a few of its keys only — the ones the rules
// read — while the rest is validated and skipped.

// maxDepth is the deepest nesting accepted, as in encoding/json.
const maxDepth = 10000

var errSyntax = errors.New("invalid JSON")

type jsonDecoder struct {
	b     []byte
	i     int
	depth int
}

// decodeJSON decodes a whole JSON document; ok is false when b is not valid
// JSON (or holds a number out of float64's range, or nests too deep).
func decodeJSON(b []byte) (v any, ok bool) {
	d := jsonDecoder{b: b}
	v, err := d.value()
	if err != nil {
		return nil, false
	}
	d.space()
	return v, d.i == len(d.b)
}

// decodeFields decodes a JSON object for the given keys only, into dst
// (created when nil). It validates the whole document. ok is false when b
// is not valid JSON; object is false when it is valid JSON but not an
// object (the caller then decodes it whole).
func decodeFields(b []byte, keys []string, dst map[string]any) (m map[string]any, object, ok bool) {
	d := jsonDecoder{b: b}
	d.space()
	if d.i >= len(d.b) || d.b[d.i] != '{' {
		return nil, false, true
	}
	m = dst
	if m == nil {
		m = make(map[string]any, len(keys))
	}
	d.i++
	d.depth++
	d.space()
	if d.peek() == '}' {
		d.i++
		d.space()
		return m, true, d.i == len(d.b)
	}
	for {
		d.space()
		raw, escaped, err := d.rawString()
		if err != nil {
			return nil, true, false
		}
		d.space()
		if d.peek() != ':' {
			return nil, true, false
		}
		d.i++
		d.space()
		want := -1
		for j, k := range keys {
			if !escaped && k == raw || escaped && k == unescape(raw) {
				want = j
				break
			}
		}
		if want >= 0 {
			v, err := d.value()
			if err != nil {
				return nil, true, false
			}
			name := keys[want] // the rule's own string: no copy
			m[name] = v        // a later duplicate key wins, as in encoding/json
		} else if err := d.skip(); err != nil {
			return nil, true, false
		}
		d.space()
		switch d.peek() {
		case ',':
			d.i++
			continue
		case '}':
			d.i++
			d.space()
			return m, true, d.i == len(d.b)
		}
		return nil, true, false
	}
}

func (d *jsonDecoder) peek() byte {
	if d.i < len(d.b) {
		return d.b[d.i]
	}
	return 0
}

func (d *jsonDecoder) space() {
	for d.i < len(d.b) {
		switch d.b[d.i] {
		case ' ', '\t', '\n', '\r':
			d.i++
		default:
			return
		}
	}
}

// value decodes one value.
func (d *jsonDecoder) value() (any, error) {
	d.space()
	switch c := d.peek(); {
	case c == '{':
		return d.object()
	case c == '[':
		return d.array()
	case c == '"':
		raw, escaped, err := d.rawString()
		if err != nil {
			return nil, err
		}
		if escaped {
			return unescape(raw), nil
		}
		return raw, nil
	case c == 't':
		return true, d.literal("true")
	case c == 'f':
		return false, d.literal("false")
	case c == 'n':
		return nil, d.literal("null")
	case c == '-' || c >= '0' && c <= '9':
		return d.number()
	}
	return nil, errSyntax
}

func (d *jsonDecoder) literal(s string) error {
	if len(d.b)-d.i < len(s) || string(d.b[d.i:d.i+len(s)]) != s {
		return errSyntax
	}
	d.i += len(s)
	return nil
}

func (d *jsonDecoder) object() (any, error) {
	if d.depth++; d.depth > maxDepth {
		return nil, errSyntax
	}
	defer func() { d.depth-- }()
	d.i++ // {
	m := map[string]any{}
	d.space()
	if d.peek() == '}' {
		d.i++
		return m, nil
	}
	for {
		d.space()
		raw, escaped, err := d.rawString()
		if err != nil {
			return nil, err
		}
		if escaped {
			raw = unescape(raw)
		}
		d.space()
		if d.peek() != ':' {
			return nil, errSyntax
		}
		d.i++
		v, err := d.value()
		if err != nil {
			return nil, err
		}
		m[raw] = v
		d.space()
		switch d.peek() {
		case ',':
			d.i++
		case '}':
			d.i++
			return m, nil
		default:
			return nil, errSyntax
		}
	}
}

func (d *jsonDecoder) array() (any, error) {
	if d.depth++; d.depth > maxDepth {
		return nil, errSyntax
	}
	defer func() { d.depth-- }()
	d.i++ // [
	a := []any{}
	d.space()
	if d.peek() == ']' {
		d.i++
		return a, nil
	}
	for {
		v, err := d.value()
		if err != nil {
			return nil, err
		}
		a = append(a, v)
		d.space()
		switch d.peek() {
		case ',':
			d.i++
		case ']':
			d.i++
			return a, nil
		default:
			return nil, errSyntax
		}
	}
}

// number parses a JSON number as float64. Out of range is an error, as in
// encoding/json.
func (d *jsonDecoder) number() (any, error) {
	start := d.i
	if _, err := d.scanNumber(); err != nil {
		return nil, err
	}
	f, err := strconv.ParseFloat(view(d.b[start:d.i]), 64)
	if err != nil {
		return nil, errSyntax
	}
	return f, nil
}

// scanNumber moves past a number, checking its grammar.
func (d *jsonDecoder) scanNumber() (exponent bool, err error) {
	if d.peek() == '-' {
		d.i++
	}
	switch c := d.peek(); {
	case c == '0':
		d.i++
	case c >= '1' && c <= '9':
		for d.i < len(d.b) && d.b[d.i] >= '0' && d.b[d.i] <= '9' {
			d.i++
		}
	default:
		return false, errSyntax
	}
	if d.peek() == '.' {
		d.i++
		if c := d.peek(); c < '0' || c > '9' {
			return false, errSyntax
		}
		for d.i < len(d.b) && d.b[d.i] >= '0' && d.b[d.i] <= '9' {
			d.i++
		}
	}
	if c := d.peek(); c == 'e' || c == 'E' {
		d.i++
		if c := d.peek(); c == '+' || c == '-' {
			d.i++
		}
		if c := d.peek(); c < '0' || c > '9' {
			return false, errSyntax
		}
		for d.i < len(d.b) && d.b[d.i] >= '0' && d.b[d.i] <= '9' {
			d.i++
		}
		return true, nil
	}
	return false, nil
}

// rawString moves past a string and returns its content between the
// quotes as a view of the payload, and whether the caller must unescape it:
// when it holds escapes, or invalid UTF-8 (which encoding/json accepts and
// replaces by U+FFFD, as unescape does). Control characters are errors.
func (d *jsonDecoder) rawString() (string, bool, error) {
	if d.peek() != '"' {
		return "", false, errSyntax
	}
	d.i++
	start := d.i
	escaped := false
	for d.i < len(d.b) {
		c := d.b[d.i]
		switch {
		case c == '"':
			s := view(d.b[start:d.i])
			d.i++
			return s, escaped, nil
		case c == '\\':
			escaped = true
			d.i++
			if d.i >= len(d.b) {
				return "", false, errSyntax
			}
			switch d.b[d.i] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				d.i++
			case 'u':
				if len(d.b)-d.i < 5 {
					return "", false, errSyntax
				}
				for _, h := range d.b[d.i+1 : d.i+5] {
					if !isHex(h) {
						return "", false, errSyntax
					}
				}
				d.i += 5
			default:
				return "", false, errSyntax
			}
		case c < 0x20:
			return "", false, errSyntax
		case c < utf8.RuneSelf:
			d.i++
		default:
			r, size := utf8.DecodeRune(d.b[d.i:])
			if r == utf8.RuneError && size == 1 {
				escaped = true // replaced by U+FFFD when unescaped
			}
			d.i += size
		}
	}
	return "", false, errSyntax
}

// skip moves past one value, validating it, without building it.
func (d *jsonDecoder) skip() error {
	d.space()
	switch c := d.peek(); {
	case c == '{' || c == '[':
		if d.depth++; d.depth > maxDepth {
			return errSyntax
		}
		defer func() { d.depth-- }()
		closing := byte('}')
		if c == '[' {
			closing = ']'
		}
		d.i++
		d.space()
		if d.peek() == closing {
			d.i++
			return nil
		}
		for {
			d.space()
			if closing == '}' {
				if _, _, err := d.rawString(); err != nil {
					return err
				}
				d.space()
				if d.peek() != ':' {
					return errSyntax
				}
				d.i++
			}
			if err := d.skip(); err != nil {
				return err
			}
			d.space()
			switch d.peek() {
			case ',':
				d.i++
			case closing:
				d.i++
				return nil
			default:
				return errSyntax
			}
		}
	case c == '"':
		_, _, err := d.rawString()
		return err
	case c == 't':
		return d.literal("true")
	case c == 'f':
		return d.literal("false")
	case c == 'n':
		return d.literal("null")
	case c == '-' || c >= '0' && c <= '9':
		start := d.i
		exponent, err := d.scanNumber()
		if err != nil {
			return err
		}
		// Out of range is invalid, as when decoded. Only an exponent or
		// more than 300 digits can leave float64's range: skip parsing
		// the common case.
		num := d.b[start:d.i]
		if exponent || len(num) > 300 {
			if _, err := strconv.ParseFloat(view(num), 64); err != nil {
				return errSyntax
			}
		}
		return nil
	}
	return errSyntax
}

func isHex(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F'
}

// unescape decodes the escapes of a string's content (already validated)
// and replaces invalid UTF-8 with U+FFFD, as encoding/json does.
func unescape(s string) string {
	out := make([]byte, 0, len(s))
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case c == '\\':
			i++
			switch s[i] {
			case 'b':
				out = append(out, '\b')
			case 'f':
				out = append(out, '\f')
			case 'n':
				out = append(out, '\n')
			case 'r':
				out = append(out, '\r')
			case 't':
				out = append(out, '\t')
			case 'u':
				r := rune(hex4(s[i+1 : i+5]))
				i += 5
				if utf16.IsSurrogate(r) {
					dec := utf8.RuneError
					if i+6 <= len(s) && s[i] == '\\' && s[i+1] == 'u' {
						dec = utf16.DecodeRune(r, rune(hex4(s[i+2:i+6])))
						if dec != utf8.RuneError {
							i += 6
						}
					}
					r = dec
				}
				out = utf8.AppendRune(out, r)
				continue
			default: // " \ /
				out = append(out, s[i])
			}
			i++
		case c < utf8.RuneSelf:
			out = append(out, c)
			i++
		default:
			r, size := utf8.DecodeRuneInString(s[i:])
			out = utf8.AppendRune(out, r) // RuneError for invalid bytes
			i += size
		}
	}
	return string(out)
}

func hex4(s string) uint16 {
	var v uint16
	for i := 0; i < 4; i++ {
		c := s[i]
		switch {
		case c >= '0' && c <= '9':
			c -= '0'
		case c >= 'a' && c <= 'f':
			c -= 'a' - 10
		default:
			c -= 'A' - 10
		}
		v = v<<4 | uint16(c)
	}
	return v
}

// view is a string sharing b's bytes; b must never change afterwards.
func view(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	return unsafe.String(unsafe.SliceData(b), len(b))
}
