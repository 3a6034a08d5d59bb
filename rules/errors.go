package rules

import (
	"cmp"
	"slices"

	"github.com/mqtt-rules/mqtt-rules/internal/yamlnode"
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
	return yamlnode.FormatError(e.File, e.Line, e.Col, "rule", e.Rule, e.Msg)
}

// Errors is every problem found while loading a rule set, sorted by file
// and position.
type Errors []*Error

// Error returns one line per problem.
func (es Errors) Error() string { return yamlnode.JoinErrors(es) }

func (es Errors) sort() {
	slices.SortStableFunc(es, func(a, b *Error) int {
		return cmp.Or(cmp.Compare(a.File, b.File), cmp.Compare(a.Line, b.Line), cmp.Compare(a.Col, b.Col))
	})
}
