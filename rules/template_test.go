package rules

import (
	"math"
	"testing"
	"time"
)

func compileTemplate(t *testing.T, src string, captures ...string) *Template {
	t.Helper()
	tpl, err := newCompiler().template(src, scope{captures: captures})
	if err != nil {
		t.Fatalf("template %q: %v", src, err)
	}
	return tpl
}

func TestRenderValueKinds(t *testing.T) {
	tests := []struct {
		name  string
		value any
		want  string
	}{
		{"fraction", 31.5, "31.5"},
		{"integral float", 30.0, "30"},
		{"million", 1e6, "1000000"},
		{"below 1e15", 123456789012345.0, "123456789012345"},
		{"1e20", 1e20, "100000000000000000000"},
		{"1e21", 1e21, "1e+21"},
		{"tiny", 1e-7, "1e-7"},
		{"small", 0.000001, "0.000001"},
		{"negative", -2.25, "-2.25"},
		{"zero", 0.0, "0"},
		{"int", 42, "42"},
		{"nil", nil, ""},
		{"true", true, "true"},
		{"false", false, "false"},
		{"string", "on", "on"},
		{"map", map[string]any{"b": 2.0, "a": "x<y&z", "c": []any{1.0, "°C"}}, `{"a":"x<y&z","b":2,"c":[1,"°C"]}`},
		{"list", []any{1.5, nil, true}, `[1.5,null,true]`},
		{"empty map", map[string]any{}, `{}`},
		{"NaN", math.NaN(), "NaN"},
		{"inf", math.Inf(-1), "-Inf"},
	}
	tpl := compileTemplate(t, "{{ payload.v }}")
	mixed := compileTemplate(t, "v={{ payload.v }};")
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := NewEvaluator()
			e.Vars[VarPayload] = map[string]any{"v": tt.value}
			got, err := e.Render(tpl)
			if err != nil || got != tt.want {
				t.Errorf("{{ payload.v }} with %#v = %q, %v; want %q", tt.value, got, err, tt.want)
			}
			got, err = e.Render(mixed)
			if err != nil || got != "v="+tt.want+";" {
				t.Errorf("v={{ payload.v }}; with %#v = %q, %v; want %q", tt.value, got, err, "v="+tt.want+";")
			}
		})
	}
}

func TestRenderTemplates(t *testing.T) {
	now := time.Date(2026, 11, 25, 21, 0, 0, 5, time.UTC)
	vars := map[string]any{
		VarTopic:     "home/kitchen/temperature",
		VarPayload:   map[string]any{"value": 31.5, "unit": "°C"},
		VarRaw:       `{"value":31.5,"unit":"°C"}`,
		VarWildcards: []string{"kitchen"},
		VarSegments:  []string{"home", "kitchen", "temperature"},
		VarNow:       now,
		VarQoS:       1,
		VarRetained:  false,
		"room":       "kitchen",
	}
	tests := []struct{ src, want string }{
		{"plain text", "plain text"},
		{"", ""},
		{"{{ topic }}", "home/kitchen/temperature"},
		{"alerts/{{ wildcards[0] }}/hot", "alerts/kitchen/hot"},
		{`{"room":"{{ room }}","value":{{ payload.value }}}`, `{"room":"kitchen","value":31.5}`},
		{"{{ toJSON(payload) }}", `{"unit":"°C","value":31.5}`},
		{"{{ payload }}", `{"unit":"°C","value":31.5}`},
		{`{{ {"a": {"b": 1}} }}`, `{"a":{"b":1}}`},
		{`{{ "}}" }}`, `}}`},
		{"{{ fromJSON(raw).value * 2 }}", "63"},
		{"{{ segments }}", `["home","kitchen","temperature"]`},
		{"{{ now }}", "2026-11-25T21:00:00.000000005Z"},
		{"{{ qos }}/{{ retained }}", "1/false"},
		{"{{ payload.missing }}", ""},
		{"{{ upper(room) }}!", "KITCHEN!"},
	}
	for _, tt := range tests {
		tpl := compileTemplate(t, tt.src, "room")
		e := NewEvaluator()
		for k, v := range vars {
			e.Vars[k] = v
		}
		got, err := e.Render(tpl)
		if err != nil || got != tt.want {
			t.Errorf("render %q = %q, %v; want %q", tt.src, got, err, tt.want)
		}
	}
}

func TestRenderRuntimeError(t *testing.T) {
	tpl := compileTemplate(t, "x {{ payload.a.b }}")
	e := NewEvaluator()
	e.Vars[VarPayload] = "not a map"
	if _, err := e.Render(tpl); err == nil {
		t.Fatal("want an error fetching a field of a string")
	}
}

func TestTemplateSplitErrors(t *testing.T) {
	for _, src := range []string{"{{ a", "{{ a } }}x", "{{ }}"} {
		if _, err := newCompiler().template(src, scope{}); err == nil {
			t.Errorf("template %q compiled, want an error", src)
		}
	}
}

func TestCondition(t *testing.T) {
	c := newCompiler()
	p, err := c.program("payload.value > 30", scope{}, true)
	if err != nil {
		t.Fatal(err)
	}
	e := NewEvaluator()
	for _, tt := range []struct {
		payload any
		want    bool
		err     bool
	}{
		{map[string]any{"value": 31.0}, true, false},
		{map[string]any{"value": 29.0}, false, false},
		{"text", false, true},
		{map[string]any{}, false, true},
	} {
		e.Vars[VarPayload] = tt.payload
		got, err := e.Condition(p)
		if got != tt.want || (err != nil) != tt.err {
			t.Errorf("payload %v: got %v, %v; want %v, error=%v", tt.payload, got, err, tt.want, tt.err)
		}
	}
	if ok, err := e.Condition(nil); !ok || err != nil {
		t.Error("a nil condition must hold")
	}
}

func FuzzTemplate(f *testing.F) {
	for _, s := range []string{"a {{ topic }} b", `{{ {"a":{"b":1}} }}`, "{{ '}}' }}", "{{", "}}", "{{ payload.x ?? 1 }}"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, src string) {
		tpl, err := newCompiler().template(src, scope{})
		if err != nil {
			return
		}
		e := NewEvaluator()
		e.Vars[VarTopic] = "a/b"
		e.Vars[VarPayload] = map[string]any{"x": 1.0}
		e.Render(tpl) // must not panic
	})
}
