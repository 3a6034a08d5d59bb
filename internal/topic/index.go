package topic

import "strings"

// Index maps filters to values and finds the values of every filter a topic
// matches. It is a trie over filter levels, so matching walks at most the
// levels of the topic along the literal, + and # branches that exist: its
// cost depends on the topic and on how many filters match, not on how many
// filters the index holds.
//
// An Index is built once and then only read; Match is safe for concurrent use
// once no more Add calls happen.
type Index[V any] struct {
	root node[V]
	n    int
}

type node[V any] struct {
	// The literal children: one is kept inline (key, child), which is how
	// most nodes of a large set look (sensors/<id>/temperature has one
	// child below each id); a second moves them all to the map.
	key      string
	child    *node[V]
	children map[string]*node[V]
	plus     *node[V]
	hash     []V // values of filters ending in # at this node
	here     []V // values of filters ending exactly at this node
}

// lookup returns the literal child for level k, or nil.
func (n *node[V]) lookup(k string) *node[V] {
	if n.children != nil {
		return n.children[k]
	}
	if n.child != nil && n.key == k {
		return n.child
	}
	return nil
}

// add returns the literal child for level k, creating it.
func (n *node[V]) add(k string) *node[V] {
	if c := n.lookup(k); c != nil {
		return c
	}
	c := &node[V]{}
	switch {
	case n.children != nil:
		n.children[k] = c
	case n.child == nil:
		n.key, n.child = k, c
	default:
		n.children = map[string]*node[V]{n.key: n.child, k: c}
		n.key, n.child = "", nil
	}
	return c
}

// each calls fn for every literal child.
func (n *node[V]) each(fn func(k string, c *node[V])) {
	if n.child != nil {
		fn(n.key, n.child)
	}
	for k, c := range n.children {
		fn(k, c)
	}
}

// Add registers v under filter f.
func (ix *Index[V]) Add(f *Filter, v V) {
	n := &ix.root
	for _, l := range f.Levels {
		switch l.Kind {
		case Hash:
			n.hash = append(n.hash, v)
			ix.n++
			return
		case Plus:
			if n.plus == nil {
				n.plus = &node[V]{}
			}
			n = n.plus
		default:
			n = n.add(l.Text)
		}
	}
	n.here = append(n.here, v)
	ix.n++
}

// Len returns how many filters were added.
func (ix *Index[V]) Len() int { return ix.n }

// Match appends to dst the values of every filter matching the topic whose
// levels are given (see Split), in no particular order.
func (ix *Index[V]) Match(levels []string, dst []V) []V {
	if len(levels) == 0 {
		return dst
	}
	root := &ix.root
	// [MQTT-4.7.2-1] a filter starting with a wildcard does not match a topic
	// starting with $: only literal first levels are tried for those.
	if strings.HasPrefix(levels[0], "$") {
		if c := root.lookup(levels[0]); c != nil {
			dst = c.match(levels, 1, dst)
		}
		return dst
	}
	return root.match(levels, 0, dst)
}

func (n *node[V]) match(levels []string, i int, dst []V) []V {
	// [MQTT-4.7.1-2] # matches the parent level and any number of child
	// levels: sport/# matches sport, sport/tennis and sport/tennis/player1.
	dst = append(dst, n.hash...)
	if i == len(levels) {
		return append(dst, n.here...)
	}
	if c := n.lookup(levels[i]); c != nil {
		dst = c.match(levels, i+1, dst)
	}
	// [MQTT-4.7.1-3] + matches exactly one level, empty levels included.
	if n.plus != nil {
		dst = n.plus.match(levels, i+1, dst)
	}
	return dst
}

// Any reports whether any filter in the index matches the topic whose
// levels are given, without collecting values.
func (ix *Index[V]) Any(levels []string) bool {
	if len(levels) == 0 {
		return false
	}
	root := &ix.root
	if strings.HasPrefix(levels[0], "$") {
		c := root.lookup(levels[0])
		return c != nil && c.any(levels, 1)
	}
	return root.any(levels, 0)
}

func (n *node[V]) any(levels []string, i int) bool {
	if len(n.hash) > 0 {
		return true
	}
	if i == len(levels) {
		return len(n.here) > 0
	}
	if c := n.lookup(levels[i]); c != nil && c.any(levels, i+1) {
		return true
	}
	return n.plus != nil && n.plus.any(levels, i+1)
}
