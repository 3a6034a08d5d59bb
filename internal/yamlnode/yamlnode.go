// Package yamlnode reads values out of yaml.v3 node trees for the strict
// file formats of this project (rule files, rule test files): aliases and
// merge keys resolved, duplicate keys reported, ${ENV} expanded inside
// scalars, and every problem reported at the node where it was found so
// that errors carry file:line:col.
package yamlnode

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// Reader reads scalars and mappings, reporting problems through Report.
type Reader struct {
	// LookupEnv resolves ${NAME}; nil means os.LookupEnv.
	LookupEnv func(name string) (string, bool)
	// Report records a problem at node n. owner names what the value
	// belongs to (a rule's or a test's name, or "") for the caller's
	// message.
	Report func(n *yaml.Node, owner, msg string)
}

func (r *Reader) errorf(n *yaml.Node, owner, format string, args ...any) {
	r.Report(n, owner, fmt.Sprintf(format, args...))
}

// Pair is one key and value of a mapping.
type Pair struct{ Key, Value *yaml.Node }

// Pairs returns a mapping's key/value pairs with aliases resolved and merge
// keys (<<: *anchor) applied, reporting keys given twice.
func (r *Reader) Pairs(m *yaml.Node, owner string) []Pair {
	var out, merged []Pair
	seen := map[string]bool{}
	for i := 0; i+1 < len(m.Content); i += 2 {
		k, v := m.Content[i], Resolve(m.Content[i+1])
		if k.Value == "<<" && k.Tag == "!!merge" {
			srcs := []*yaml.Node{v}
			if v.Kind == yaml.SequenceNode {
				srcs = v.Content
			}
			for _, s := range srcs {
				s = Resolve(s)
				if s.Kind != yaml.MappingNode {
					r.errorf(s, owner, "<<: merges mappings only, not %s", KindName(s))
					continue
				}
				merged = append(merged, r.Pairs(s, owner)...)
			}
			continue
		}
		if seen[k.Value] {
			r.errorf(k, owner, "%s: key given twice", k.Value)
			continue
		}
		seen[k.Value] = true
		out = append(out, Pair{k, v})
	}
	for _, kv := range merged {
		if !seen[kv.Key.Value] {
			seen[kv.Key.Value] = true
			out = append(out, kv)
		}
	}
	return out
}

// Str returns a scalar's text with ${ENV} references expanded.
func (r *Reader) Str(n *yaml.Node, owner, key string) (string, bool) {
	if n.Kind != yaml.ScalarNode {
		r.errorf(n, owner, "%s: must be a string, not %s", key, KindName(n))
		return "", false
	}
	if n.Tag == "!!null" {
		r.errorf(n, owner, "%s: empty", key)
		return "", false
	}
	lookup := r.LookupEnv
	if lookup == nil {
		lookup = os.LookupEnv
	}
	s, err := ExpandEnv(n.Value, lookup)
	if err != nil {
		r.errorf(n, owner, "%s: %v", key, err)
		return "", false
	}
	return s, true
}

// Duration reads a Go duration; zero is accepted only when allowZero.
// Negative durations never are.
func (r *Reader) Duration(n *yaml.Node, owner, key string, allowZero bool) (time.Duration, bool) {
	s, ok := r.Str(n, owner, key)
	if !ok {
		return 0, false
	}
	d, err := time.ParseDuration(s)
	switch {
	case err != nil:
		r.errorf(n, owner, "%s: %q is not a duration (write 500ms, 30s, 5m, 1h30m)", key, s)
		return 0, false
	case d < 0 || d == 0 && !allowZero:
		want := "positive"
		if allowZero {
			want = "zero or more"
		}
		r.errorf(n, owner, "%s: must be %s, not %s", key, want, s)
		return 0, false
	}
	return d, true
}

// Bool reads true/false (and YAML 1.1's yes/no/on/off).
func (r *Reader) Bool(n *yaml.Node, owner, key string) (bool, bool) {
	s, ok := r.Str(n, owner, key)
	if !ok {
		return false, false
	}
	switch strings.ToLower(s) {
	case "true", "yes", "on":
		return true, true
	case "false", "no", "off":
		return false, true
	}
	r.errorf(n, owner, "%s: %q is not true or false", key, s)
	return false, false
}

// Int reads a whole number from lo to hi.
func (r *Reader) Int(n *yaml.Node, owner, key string, lo, hi int) (int, bool) {
	s, ok := r.Str(n, owner, key)
	if !ok {
		return 0, false
	}
	i, err := strconv.Atoi(s)
	if err != nil || i < lo || i > hi {
		r.errorf(n, owner, "%s: %q is not a whole number from %d to %d", key, s, lo, hi)
		return 0, false
	}
	return i, true
}

// Resolve follows aliases to the node they name.
func Resolve(n *yaml.Node) *yaml.Node {
	for n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	return n
}

// KindName describes a node for an error message: "a mapping", "a list",
// "empty", or a scalar's quoted value.
func KindName(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		if n.Tag == "!!null" {
			return "empty"
		}
		return fmt.Sprintf("%q", n.Value)
	}
	return "this"
}

// Suggest returns ` (did you mean "x"?)` for a key one or two edits away
// from a known one, else "".
func Suggest(got string, known []string) string {
	best := Closest(got, known)
	if best == "" {
		return ""
	}
	return fmt.Sprintf(" (did you mean %q?)", best)
}

// Closest returns the known key one or two edits away from got (the
// nearest), else "".
func Closest(got string, known []string) string {
	best, bestD := "", 3
	for _, k := range known {
		if d := editDistance(got, k); d < bestD {
			best, bestD = k, d
		}
	}
	return best
}

func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// ExpandEnv replaces ${NAME} and ${NAME:-default} in s with the values
// lookup gives; $${ is a literal ${. An unset NAME without a default is an
// error naming it; the default also applies when NAME is empty.
func ExpandEnv(s string, lookup func(string) (string, bool)) (string, error) {
	if !strings.Contains(s, "${") {
		return s, nil
	}
	var b strings.Builder
	for {
		i := strings.Index(s, "${")
		if i < 0 {
			b.WriteString(s)
			return b.String(), nil
		}
		if i > 0 && s[i-1] == '$' {
			b.WriteString(s[:i-1])
			b.WriteString("${")
			s = s[i+2:]
			continue
		}
		b.WriteString(s[:i])
		end := strings.IndexByte(s[i:], '}')
		if end < 0 {
			return "", errors.New("${ without a closing } (write $${ for a literal ${)")
		}
		ref := s[i+2 : i+end]
		name, def, hasDef := strings.Cut(ref, ":-")
		if !IsIdent(name) {
			return "", fmt.Errorf("${%s}: %q is not an environment variable name", ref, name)
		}
		val, ok := lookup(name)
		switch {
		case ok && (val != "" || !hasDef):
			b.WriteString(val)
		case hasDef:
			b.WriteString(def)
		default:
			return "", fmt.Errorf("environment variable %s is not set (write ${%s:-default} for a default)", name, name)
		}
		s = s[i+end+1:]
	}
}

// IsIdent reports whether s is an identifier: letters, digits and _, not
// starting with a digit.
func IsIdent(s string) bool {
	if s == "" {
		return false
	}
	for i, r := range s {
		switch {
		case r == '_', r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z':
		case r >= '0' && r <= '9' && i > 0:
		default:
			return false
		}
	}
	return true
}

// FormatError formats a problem found in a file as
// file:line:col: kind "name": msg, leaving out a zero line or column and
// an empty name (rule and test file errors share it).
func FormatError(file string, line, col int, kind, name, msg string) string {
	var b strings.Builder
	b.WriteString(file)
	if line > 0 {
		fmt.Fprintf(&b, ":%d", line)
		if col > 0 {
			fmt.Fprintf(&b, ":%d", col)
		}
	}
	b.WriteString(": ")
	if name != "" {
		fmt.Fprintf(&b, "%s %q: ", kind, name)
	}
	b.WriteString(msg)
	return b.String()
}

// JoinErrors returns one line per error.
func JoinErrors[E error](es []E) string {
	lines := make([]string, len(es))
	for i, e := range es {
		lines[i] = e.Error()
	}
	return strings.Join(lines, "\n")
}
