package rules

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/expr-lang/expr/vm"
)

// Program is a compiled expression.
type Program struct {
	Source  string
	prog    *vm.Program
	uses    Uses
	payload payloadNeed
	world   []WorldRef // state()/states() calls with a literal argument
}

// Template is a compiled string with {{ expr }} parts (docs/rules.md,
// "Templates"). It implements actions.Template.
type Template struct {
	src     string
	parts   []part // literal text and expressions, alternating; empty for a literal template
	uses    Uses
	payload payloadNeed
	world   []WorldRef // state()/states() calls with a literal argument, offsets in src
}

type part struct {
	text string   // literal text before prog
	prog *Program // nil for the trailing literal
}

// Source returns the template as written.
func (t *Template) Source() string { return t.src }

// IsLiteral reports whether the template has no {{ }} parts, so that
// rendering it always gives Source.
func (t *Template) IsLiteral() bool { return len(t.parts) == 0 }

// Render evaluates the template. A template that is one {{ expr }} whose
// value is a string returns that string without copying.
func (e *Evaluator) Render(t *Template) (string, error) {
	if len(t.parts) == 0 {
		return t.src, nil
	}
	if len(t.parts) == 1 && t.parts[0].text == "" && t.parts[0].prog != nil {
		out, err := e.vm.Run(t.parts[0].prog.prog, e.Vars)
		if err != nil {
			return "", runError(err)
		}
		if s, ok := out.(string); ok {
			return s, nil
		}
		b, err := AppendValue(e.buf[:0], out)
		e.buf = b
		return string(b), err
	}
	b, err := e.Append(e.buf[:0], t)
	e.buf = b
	if err != nil {
		return "", err
	}
	return string(b), nil
}

// Append renders the template onto dst.
func (e *Evaluator) Append(dst []byte, t *Template) ([]byte, error) {
	if len(t.parts) == 0 {
		return append(dst, t.src...), nil
	}
	for _, p := range t.parts {
		dst = append(dst, p.text...)
		if p.prog == nil {
			continue
		}
		out, err := e.vm.Run(p.prog.prog, e.Vars)
		if err != nil {
			return dst, fmt.Errorf("{{ %s }}: %w", p.prog.Source, runError(err))
		}
		if dst, err = AppendValue(dst, out); err != nil {
			return dst, fmt.Errorf("{{ %s }}: %w", p.prog.Source, err)
		}
	}
	return dst, nil
}

// AppendValue appends v as a template renders it: a string as is; a number
// in its shortest form (31.5, 30, 1000000; exponents only outside
// [1e-6, 1e21), as in JSON); a bool as true/false; nil as nothing; a time
// in RFC 3339; maps, lists and anything else as compact JSON.
func AppendValue(dst []byte, v any) ([]byte, error) {
	switch v := v.(type) {
	case nil:
		return dst, nil
	case string:
		return append(dst, v...), nil
	case []byte:
		return append(dst, v...), nil
	case bool:
		return strconv.AppendBool(dst, v), nil
	case float64:
		return appendFloat(dst, v, 64), nil
	case float32:
		return appendFloat(dst, float64(v), 32), nil
	case int:
		return strconv.AppendInt(dst, int64(v), 10), nil
	case int64:
		return strconv.AppendInt(dst, v, 10), nil
	case int32:
		return strconv.AppendInt(dst, int64(v), 10), nil
	case int16:
		return strconv.AppendInt(dst, int64(v), 10), nil
	case int8:
		return strconv.AppendInt(dst, int64(v), 10), nil
	case uint:
		return strconv.AppendUint(dst, uint64(v), 10), nil
	case uint64:
		return strconv.AppendUint(dst, v, 10), nil
	case uint32:
		return strconv.AppendUint(dst, uint64(v), 10), nil
	case uint16:
		return strconv.AppendUint(dst, uint64(v), 10), nil
	case uint8:
		return strconv.AppendUint(dst, uint64(v), 10), nil
	case time.Time:
		return v.AppendFormat(dst, time.RFC3339Nano), nil
	case time.Duration:
		return append(dst, v.String()...), nil
	case json.Number:
		return append(dst, v...), nil
	}
	return appendJSON(dst, v)
}

// appendFloat formats like encoding/json (ECMAScript rules): integers
// without a fraction or exponent below 1e21, exponents for tiny numbers.
// NaN and infinities, which JSON cannot hold, render as NaN, +Inf, -Inf.
func appendFloat(dst []byte, f float64, bits int) []byte {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return strconv.AppendFloat(dst, f, 'g', -1, bits)
	}
	abs := math.Abs(f)
	format := byte('f')
	if abs != 0 && (abs < 1e-6 || abs >= 1e21) {
		format = 'e'
	}
	dst = strconv.AppendFloat(dst, f, format, -1, bits)
	if format == 'e' {
		// clean up e-09 to e-9
		n := len(dst)
		if n >= 4 && dst[n-4] == 'e' && dst[n-3] == '-' && dst[n-2] == '0' {
			dst[n-2] = dst[n-1]
			dst = dst[:n-1]
		}
	}
	return dst
}

var errNonFinite = errors.New("NaN and infinite numbers have no JSON form")

// appendJSON appends compact JSON without HTML escaping (so "<" and "&" stay
// readable) and without a trailing newline.
func appendJSON(dst []byte, v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		var uv *json.UnsupportedValueError
		if errors.As(err, &uv) {
			return dst, fmt.Errorf("%w: %s", errNonFinite, uv.Str)
		}
		return dst, err
	}
	return append(dst, bytes.TrimSuffix(buf.Bytes(), []byte("\n"))...), nil
}

// splitTemplate cuts a template into literal text and the sources of its
// {{ }} expressions, with each expression's byte offset in s. The end of an
// expression is the first "}}" outside string literals and outside braces
// the expression opened itself, so {{ {"a": {"b": 1}} }} works.
func splitTemplate(s string) (lits []string, exprs []string, offs []int, err error) {
	rest, base := s, 0
	for {
		i := strings.Index(rest, "{{")
		if i < 0 {
			lits = append(lits, rest)
			return lits, exprs, offs, nil
		}
		lits = append(lits, rest[:i])
		start := i + 2
		end, err := exprEnd(rest, start)
		if err != nil {
			return nil, nil, nil, &posError{off: base + i, err: err}
		}
		exprs = append(exprs, rest[start:end])
		offs = append(offs, base+start)
		rest, base = rest[end+2:], base+end+2
	}
}

func exprEnd(s string, i int) (int, error) {
	depth := 0
	var quote byte
	for ; i < len(s); i++ {
		c := s[i]
		switch {
		case quote != 0:
			if c == '\\' {
				i++
			} else if c == quote {
				quote = 0
			}
		case c == '"' || c == '\'' || c == '`':
			quote = c
		case c == '{':
			depth++
		case c == '}':
			if depth == 0 {
				if i+1 < len(s) && s[i+1] == '}' {
					return i, nil
				}
				return 0, errors.New("unmatched } in {{ }}")
			}
			depth--
		}
	}
	return 0, errors.New("{{ without a closing }}")
}

// posError is an error at a byte offset of a template or expression, which
// the loader turns into a file position.
type posError struct {
	off int
	err error
}

func (e *posError) Error() string { return e.err.Error() }
func (e *posError) Unwrap() error { return e.err }
