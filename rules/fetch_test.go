package rules

import (
	"fmt"
	"testing"

	"github.com/expr-lang/expr"
	"github.com/expr-lang/expr/ast"
)

// fielder is a Fielder with one field, as the engine's state() values are.
type fielder struct{ V any }

func (f *fielder) Field(name string) (any, bool) {
	if name == "v" {
		return f.V, true
	}
	return nil, false
}

// TestFastFetchSameAsExpr: with the rewrite, every member read gives what
// expr's own gives, errors included.
func TestFastFetchSameAsExpr(t *testing.T) {
	env := map[string]any{
		"m":    map[string]any{"a": 1.5, "n": map[string]any{"b": "x"}, "nil": nil},
		"s":    "text",
		"null": nil,
		"list": []any{map[string]any{"a": 41.0}, map[string]any{"a": 42.0}},
		"f":    &fielder{V: map[string]any{"a": 7.0}},
		"ss":   map[string]string{"k": "v"},
	}
	for _, src := range []string{
		`m.a`, `m["a"]`, `m.missing`, `m.n.b`, `m.nil`, `m.nil?.x`, `m?.n?.b`, `null?.a.b`,
		`s.a`, `m.nil.a`, `m.n.b.c`,
		`any(list, {.a > 41})`, `map(list, .a)`, `f.v.a`, `f.nope`, `ss.k`, `ss.nope`,
		`m.a > 1 && m.n.b == "x"`,
	} {
		t.Run(src, func(t *testing.T) {
			want, wantErr := run(src, env, false)
			got, gotErr := run(src, env, true)
			if fmt.Sprint(got) != fmt.Sprint(want) || fmt.Sprint(gotErr) != fmt.Sprint(wantErr) {
				t.Errorf("with the rewrite %v, %v; expr's own %v, %v", got, gotErr, want, wantErr)
			}
		})
	}
}

// TestFastFetchRewrites checks the rewrite applies where it should: reads on
// values of unknown type, not method calls, optional reads or typed values.
func TestFastFetchRewrites(t *testing.T) {
	for _, tc := range []struct {
		src  string
		want int // calls of fetchAny in the tree
	}{
		{`payload.value`, 1},
		{`payload.a.b`, 2},
		{`prev?.payload`, 0},
		{`now.Hour()`, 0},
		{`topic == "a"`, 0},
		{`any(states("a/+"), {.payload.on})`, 2},
	} {
		c := newCompiler()
		p, err := c.program(tc.src, scope{}, false)
		if err != nil {
			t.Fatalf("%s: %v", tc.src, err)
		}
		n := 0
		for _, c := range p.prog.Constants {
			if _, ok := c.(func(any, any) any); ok {
				n++
			}
		}
		if (n > 0) != (tc.want > 0) {
			t.Errorf("%s: fetchAny among the constants %d times, want %d reads rewritten", tc.src, n, tc.want)
		}
	}
}

func run(src string, env map[string]any, fast bool) (any, error) {
	opts := []expr.Option{expr.Env(env)}
	if fast {
		opts = append(opts, expr.Patch(fastFetch{}))
	}
	p, err := expr.Compile(src, opts...)
	if err != nil {
		return nil, err
	}
	return expr.Run(p, env)
}

var _ ast.Visitor = fastFetch{}
