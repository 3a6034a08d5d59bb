package rules

import (
	"errors"
	"fmt"
	"maps"
	"regexp"
	"strings"
	"unicode/utf8"

	"github.com/expr-lang/expr"
	"github.com/expr-lang/expr/file"
	"github.com/expr-lang/expr/types"
)

// compiler compiles expressions and templates, sharing one program between
// identical sources with the same capture names: generated rule sets repeat
// their expressions, and a reload recompiles only what changed.
type compiler struct {
	programs map[progKey]*Program
	decls    map[string]types.Map
	used     map[progKey]bool // cache keys used by the current load
}

// progKey identifies a compiled program: its source, the capture names it
// was checked against, and whether it must be boolean.
type progKey struct {
	src      string
	captures string // the capture names, then "|" and the window names
	asBool   bool
}

// scope is what a rule's expressions see beyond the environment every rule
// has: its capture names and its windows.
type scope struct {
	captures []string
	windows  []string // nil: `windows` is not in scope (a rule without windows, or its key)
}

func (sc scope) key() string {
	return strings.Join(sc.captures, ",") + "|" + strings.Join(sc.windows, ",")
}

func newCompiler() *compiler {
	return &compiler{programs: map[progKey]*Program{}, decls: map[string]types.Map{}}
}

// begin starts a load; end drops the cached programs that load did not use,
// so the cache stays as big as one rule set.
func (c *compiler) begin() { c.used = map[progKey]bool{} }

func (c *compiler) end() {
	for k := range c.programs {
		if !c.used[k] {
			delete(c.programs, k)
		}
	}
	c.used = nil
}

func (c *compiler) decl(sc scope) types.Map {
	k := sc.key()
	d, ok := c.decls[k]
	if !ok {
		d = maps.Clone(baseTypes)
		if sc.windows != nil {
			d[VarWindows] = windowsType(sc.windows)
		}
		for _, n := range sc.captures {
			d[n] = types.String
		}
		c.decls[k] = d
	}
	return d
}

// program compiles an expression; asBool makes a non-boolean result type a
// compile error. Errors are *posError with the offset in src.
func (c *compiler) program(src string, sc scope, asBool bool) (*Program, error) {
	key := progKey{src: src, captures: sc.key(), asBool: asBool}
	if c.used != nil {
		c.used[key] = true
	}
	if p, ok := c.programs[key]; ok {
		return p, nil
	}
	if strings.TrimSpace(src) == "" {
		return nil, &posError{err: errors.New("empty expression")}
	}
	u := &usage{captures: map[string]bool{}}
	for _, n := range sc.captures {
		u.captures[n] = true
	}
	opts := []expr.Option{expr.Env(c.decl(sc)), toJSONOption, expr.Patch(u), expr.Patch(fastFetch{})}
	if asBool {
		opts = append(opts, expr.AsBool())
	}
	prog, err := expr.Compile(src, opts...)
	if err != nil {
		return nil, exprError(src, err)
	}
	p := &Program{Source: src, prog: prog, uses: u.uses, payload: u.payload(), world: u.world}
	for i := range p.world { // expr counts runes; the loader counts bytes
		p.world[i].Off = byteOffset(src, p.world[i].Off)
	}
	c.programs[key] = p
	return p, nil
}

// template compiles a string with {{ expr }} parts.
func (c *compiler) template(src string, sc scope) (*Template, error) {
	lits, exprs, offs, err := splitTemplate(src)
	if err != nil {
		return nil, err
	}
	t := &Template{src: src}
	if len(exprs) == 0 {
		return t, nil
	}
	for i, e := range exprs {
		p, err := c.program(e, sc, false)
		if err != nil {
			var pe *posError
			if errors.As(err, &pe) {
				return nil, &posError{off: offs[i] + pe.off, err: fmt.Errorf("{{%s}}: %w", e, pe.err)}
			}
			return nil, err
		}
		t.parts = append(t.parts, part{text: lits[i], prog: p})
		t.uses |= p.uses
		t.payload.add(p.payload)
		for _, w := range p.world {
			w.Off += offs[i]
			t.world = append(t.world, w)
		}
	}
	if last := lits[len(lits)-1]; last != "" {
		t.parts = append(t.parts, part{text: last})
	}
	return t, nil
}

var unknownName = regexp.MustCompile(`^unknown name (\S+)$`)

// exprError turns an expr compile error into a message without expr's
// source snippet, at the byte offset where expr located it.
func exprError(src string, err error) error {
	var fe *file.Error
	if !errors.As(err, &fe) {
		return &posError{err: err}
	}
	msg := fe.Message
	if m := unknownName.FindStringSubmatch(msg); m != nil {
		msg = fmt.Sprintf("unknown name %q", m[1])
	}
	return &posError{off: byteOffset(src, fe.From), err: errors.New(msg)}
}

// byteOffset turns expr's offsets, which count runes, into bytes.
func byteOffset(src string, runeOff int) int {
	off, runes := 0, 0
	for off < len(src) && runes < runeOff {
		_, size := utf8.DecodeRuneInString(src[off:])
		off += size
		runes++
	}
	return off
}
