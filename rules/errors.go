package rules

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
)

// Error is one problem in a rule file, at the place it was found.
type Error struct {
	File string
	Line int // 0 when unknown
	Col  int // 0 when unknown
	Rule string
	Msg  string // what is wrong, starting with the key it concerns: "when: unknown name \"paylod\""
}

// Error formats as file:line:col: rule "name": msg.
func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString(e.File)
	if e.Line > 0 {
		fmt.Fprintf(&b, ":%d", e.Line)
		if e.Col > 0 {
			fmt.Fprintf(&b, ":%d", e.Col)
		}
	}
	b.WriteString(": ")
	if e.Rule != "" {
		fmt.Fprintf(&b, "rule %q: ", e.Rule)
	}
	b.WriteString(e.Msg)
	return b.String()
}

// Errors is every problem found while loading a rule set, sorted by file
// and position.
type Errors []*Error

// Error returns one line per problem.
func (es Errors) Error() string {
	lines := make([]string, len(es))
	for i, e := range es {
		lines[i] = e.Error()
	}
	return strings.Join(lines, "\n")
}

func (es Errors) sort() {
	slices.SortStableFunc(es, func(a, b *Error) int {
		return cmp.Or(cmp.Compare(a.File, b.File), cmp.Compare(a.Line, b.Line), cmp.Compare(a.Col, b.Col))
	})
}
