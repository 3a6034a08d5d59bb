package engine

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
)

var jsonCases = []string{
	`{"value": 31.5}`, `31.5`, `-0`, `0.5e-3`, `1E+2`, `"on"`, `true`, `false`, `null`,
	`{"a":{"b":[1,2,{"c":null}]},"d":"x"}`, `[]`, `{}`, ` { "a" : 1 } `, `[1,"two",true,null,{}]`,
	`"esc \" \\ \/ \b \f \n \r \t \u00e9 \ud83d\ude00"`, `"lone \ud83d x"`, `"bad \ud83d\u0041"`,
	"\"\xff invalid utf8\"", `{"a":1,"a":2}`, `"°C"`,
	// invalid
	``, ` `, `{`, `{"a"}`, `{"a":}`, `{"a":1,}`, `[1,]`, `01`, `1.`, `.5`, `-`, `1e`, `+1`,
	`tru`, `nul`, `"\x"`, `"\u12"`, "\"\x01\"", `{"a":1} x`, `1e400`, `-1e400`, `"unterminated`,
	`{a:1}`, `['a']`, `NaN`, `Infinity`,
}

// TestDecodeJSONMatchesEncodingJSON checks the payload decoder against
// encoding/json: same value for valid JSON, an error for invalid JSON.
func TestDecodeJSONMatchesEncodingJSON(t *testing.T) {
	for _, c := range append(jsonCases, strings.Repeat("[", 10001)+strings.Repeat("]", 10001)) {
		checkAgainstStdlib(t, []byte(c))
	}
}

func checkAgainstStdlib(t *testing.T, b []byte) {
	t.Helper()
	var want any
	werr := json.Unmarshal(b, &want)
	got, ok := decodeJSON(b)
	if (werr == nil) != ok {
		t.Fatalf("%.60q: valid=%v, encoding/json says %v", b, ok, werr)
	}
	if ok && !reflect.DeepEqual(got, want) {
		t.Fatalf("%.60q: got %#v, want %#v", b, got, want)
	}
}

func TestDecodeFields(t *testing.T) {
	tests := []struct {
		in     string
		keys   []string
		want   map[string]any
		object bool
		ok     bool
	}{
		{`{"value":31,"unit":"C","other":{"deep":[1,2]}}`, []string{"value"}, map[string]any{"value": 31.0}, true, true},
		{`{"value":31,"unit":"C"}`, []string{"unit", "missing"}, map[string]any{"unit": "C"}, true, true},
		{`{"v\u0061lue":1}`, []string{"value"}, map[string]any{"value": 1.0}, true, true},
		{`{"value":1,"value":2}`, []string{"value"}, map[string]any{"value": 2.0}, true, true},
		{`{"value":1,"x":[}`, []string{"value"}, nil, true, false},
		{`{"value":1} trailing`, []string{"value"}, nil, true, false},
		{`{"x":1e400,"value":1}`, []string{"value"}, nil, true, false},
		{`31.5`, []string{"value"}, nil, false, true},
		{`{}`, []string{"value"}, map[string]any{}, true, true},
	}
	for _, tt := range tests {
		m, object, ok := decodeFields([]byte(tt.in), tt.keys, nil)
		if object != tt.object || ok != tt.ok {
			t.Errorf("%s: object=%v ok=%v, want %v %v", tt.in, object, ok, tt.object, tt.ok)
			continue
		}
		if ok && object && !reflect.DeepEqual(m, tt.want) {
			t.Errorf("%s: %#v, want %#v", tt.in, m, tt.want)
		}
	}
}

func FuzzDecodeJSON(f *testing.F) {
	for _, c := range jsonCases {
		f.Add([]byte(c))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		checkAgainstStdlib(t, b)
		// A partial decode agrees on validity and on the keys it takes.
		var full map[string]any
		fullOK := json.Unmarshal(b, &full) == nil
		m, object, ok := decodeFields(b, []string{"value", "a"}, nil)
		if !object {
			return
		}
		if ok != fullOK {
			t.Fatalf("%q: partial ok=%v, full ok=%v", b, ok, fullOK)
		}
		if ok {
			for _, k := range []string{"value", "a"} {
				if !reflect.DeepEqual(m[k], full[k]) {
					t.Fatalf("%q: field %s = %#v, want %#v", b, k, m[k], full[k])
				}
			}
		}
	})
}
