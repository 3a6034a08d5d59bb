package rules

import (
	"reflect"

	"github.com/expr-lang/expr/ast"
	"github.com/expr-lang/expr/vm/runtime"
)

// Field access without reflection. expr reads `x.name` and `x["name"]` on
// a value whose type it does not know at compile time — the payload, a
// state() or states() element, prev — through reflection, about 100 ns a
// read. fastFetch rewrites those reads to a call of fetchAny, which reads
// the decoded JSON objects and the engine's values directly and hands
// anything else to expr's own reader, so results and errors are the same.
// fetchAny is a constant of the program, not an expr.Function: a function
// value with its signature is called straight from the VM's stack, where
// expr.Function calls in a loop (any(states(F), {.payload.x})) allocate
// their arguments, and a constant needs no look-up by name.

// Fielder is a value whose fields conditions read by name
// (state("t").payload): Field returns a field and whether it exists.
type Fielder interface {
	Field(name string) (any, bool)
}

// fetchAny is fetch as the VM calls it: func(any, any) any is one of its
// typed call signatures.
func fetchAny(v, name any) any { return fetch(v, name.(string)) }

// fetch reads field name of v as expr's member access does.
func fetch(v any, name string) any {
	switch x := v.(type) {
	case map[string]any:
		return x[name] // a missing key is nil, as expr gives it
	case Fielder:
		if f, ok := x.Field(name); ok {
			return f
		}
	}
	return runtime.Fetch(v, name) // also its errors: "cannot fetch name from T"
}

// fastFetch is the expr patcher that rewrites member reads with a constant
// name on values of unknown type to fetchName calls. Optional reads (a?.b)
// and method calls stay expr's own; a read inside an optional chain is
// still skipped by the chain's jump, as it is compiled in its place.
type fastFetch struct{}

func (fastFetch) Visit(node *ast.Node) {
	m, ok := (*node).(*ast.MemberNode)
	if !ok || m.Optional || m.Method {
		return
	}
	name, ok := m.Property.(*ast.StringNode)
	if !ok {
		return
	}
	if !rewritten(m.Node) {
		t := m.Node.Type()
		if t == nil || t.Kind() != reflect.Interface && t != mapStringAny {
			return // nil or a known type: expr's checker and its typed reads apply
		}
	}
	// Compiled programs keep their trees: reuse the member's own name
	// node. (Not one callee for all: the checker writes its type into
	// it, and loaders may compile at once.)
	call := &ast.CallNode{Callee: &ast.ConstantNode{Value: fetchAny}, Arguments: []ast.Node{m.Node, name}}
	ast.Patch(node, call)
}

var mapStringAny = reflect.TypeOf(map[string]any(nil))

// rewritten reports whether n is a read this patcher made (its type is
// not known until the checker runs again): a.b.c reads c of such a call.
func rewritten(n ast.Node) bool {
	c, ok := n.(*ast.CallNode)
	if !ok {
		return false
	}
	k, ok := c.Callee.(*ast.ConstantNode)
	if !ok {
		return false
	}
	_, ok = k.Value.(func(any, any) any)
	return ok
}
