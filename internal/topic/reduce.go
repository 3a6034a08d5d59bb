package topic

import (
	"slices"
	"strings"
)

// Overlap reports whether some topic name matches both MQTT filters a and b.
func Overlap(a, b string) bool {
	al, bl := strings.Split(a, "/"), strings.Split(b, "/")
	// [MQTT-4.7.2-1] a filter starting with a wildcard matches no $ topic, so
	// it cannot overlap a filter whose first level is a $ literal.
	if dollarOnly(al) && wildFirst(bl) || dollarOnly(bl) && wildFirst(al) {
		return false
	}
	for i := 0; ; i++ {
		aEnd, bEnd := i == len(al), i == len(bl)
		if !aEnd && al[i] == "#" || !bEnd && bl[i] == "#" {
			// # matches its parent level too, but when that leaves a topic
			// of one empty level there is no such topic [MQTT-4.7.3-1].
			return !(i == 1 && (aEnd || bEnd) && (al[0] == "" || bl[0] == ""))
		}
		if aEnd || bEnd {
			return aEnd && bEnd
		}
		if al[i] != "+" && bl[i] != "+" && al[i] != bl[i] {
			return false
		}
	}
}

// Covers reports whether every topic name matching filter b matches filter a.
func Covers(a, b string) bool {
	al, bl := strings.Split(a, "/"), strings.Split(b, "/")
	if wildFirst(al) && dollarOnly(bl) {
		return false // [MQTT-4.7.2-1]
	}
	for i := 0; ; i++ {
		if i < len(al) && al[i] == "#" {
			return true
		}
		if i == len(al) || i == len(bl) {
			return len(al) == len(bl)
		}
		switch {
		case bl[i] == "#":
			// Only a # covers a #, except that +/# covers # (a topic has at
			// least one level, so # never matches zero levels at the root).
			return i == 0 && len(al) == 2 && al[0] == "+" && al[1] == "#"
		case al[i] == "+":
		case al[i] != bl[i] || bl[i] == "+":
			return false
		}
	}
}

func wildFirst(l []string) bool  { return l[0] == "+" || l[0] == "#" }
func dollarOnly(l []string) bool { return strings.HasPrefix(l[0], "$") }

// generalize returns the most specific filter that covers both a and b,
// which overlap.
func generalize(a, b string) string {
	al, bl := strings.Split(a, "/"), strings.Split(b, "/")
	out := make([]string, 0, max(len(al), len(bl)))
	for i := 0; ; i++ {
		aEnd, bEnd := i == len(al), i == len(bl)
		switch {
		case aEnd && bEnd:
			return strings.Join(out, "/")
		case aEnd || bEnd || al[i] == "#" || bl[i] == "#":
			return strings.Join(append(out, "#"), "/")
		case al[i] == bl[i]:
			out = append(out, al[i])
		default:
			out = append(out, "+")
		}
	}
}

// Reduce returns the subscriptions to make so that a broker delivers every
// topic matching any of the MQTT filters exactly once: no two of the returned
// filters overlap, and each given filter is covered by one of them.
//
// MQTT 3.1.1 §3.3.5 lets a server send one copy of a message per matching
// subscription of a client (mosquitto 2.0.11 and mochi send one copy; the
// specification does not promise it), and overlapping shared subscriptions
// ($share/group/…) each pick a member of the group, so one message could
// reach two instances. Either way one message would be processed twice.
// Overlapping
// filters are replaced by their most specific generalisation (a/+/c and a/b/+
// become a/+/+; a/# and a/b become a/#); the engine's own index still decides
// which rules a message reaches, so a broader subscription only costs traffic.
// The result is sorted.
func Reduce(filters []string) []string {
	cur := slices.Clone(filters)
	for {
		slices.Sort(cur)
		cur = slices.Compact(cur)
		var ix Index[int]
		parsed := make([][]string, len(cur))
		for i, f := range cur {
			ix.Add(mqttFilter(f), i)
			parsed[i] = strings.Split(f, "/")
		}
		parent := make([]int, len(cur))
		for i := range parent {
			parent[i] = i
		}
		var find func(int) int
		find = func(i int) int {
			for parent[i] != i {
				parent[i] = parent[parent[i]]
				i = parent[i]
			}
			return i
		}
		merged := false
		var hits []int
		for i := range cur {
			hits = ix.overlapping(parsed[i], hits[:0])
			for _, j := range hits {
				if ri, rj := find(i), find(j); ri != rj {
					parent[max(ri, rj)] = min(ri, rj)
					merged = true
				}
			}
		}
		if !merged {
			return cur
		}
		gen := make(map[int]string, len(cur))
		for i, f := range cur {
			r := find(i)
			if g, ok := gen[r]; ok {
				gen[r] = generalize(g, f)
			} else {
				gen[r] = f
			}
		}
		next := make([]string, 0, len(gen))
		for _, g := range gen {
			next = append(next, g)
		}
		cur = next
	}
}

// mqttFilter wraps an already valid MQTT filter without captures.
func mqttFilter(s string) *Filter {
	parts := strings.Split(s, "/")
	f := &Filter{Source: s, MQTT: s, Levels: make([]Level, len(parts))}
	for i, p := range parts {
		switch p {
		case "+":
			f.Levels[i] = Level{Kind: Plus, Text: p}
		case "#":
			f.Levels[i] = Level{Kind: Hash, Text: p}
		default:
			f.Levels[i] = Level{Kind: Literal, Text: p}
		}
	}
	return f
}

// overlapping appends the values of every filter in the index that overlaps
// the filter whose levels are q.
func (ix *Index[V]) overlapping(q []string, dst []V) []V {
	root := &ix.root
	switch {
	case strings.HasPrefix(q[0], "$"):
		// [MQTT-4.7.2-1] only filters with the same literal first level.
		if c := root.lookup(q[0]); c != nil {
			dst = c.overlapping(q, 1, dst)
		}
		return dst
	case q[0] == "+" || q[0] == "#":
		// q matches no $ topic: skip stored filters that only match those.
		dst = append(dst, root.hash...)
		if q[0] == "#" {
			dst = root.plus.all(dst)
			root.each(func(k string, c *node[V]) {
				if !strings.HasPrefix(k, "$") {
					dst = c.all(dst)
				}
			})
			return dst
		}
		if root.plus != nil {
			dst = root.plus.overlapping(q, 1, dst)
		}
		root.each(func(k string, c *node[V]) {
			if !strings.HasPrefix(k, "$") {
				dst = c.overlapping(q, 1, dst)
			}
		})
		return dst
	}
	return root.overlapping(q, 0, dst)
}

func (n *node[V]) overlapping(q []string, i int, dst []V) []V {
	dst = append(dst, n.hash...) // a stored prefix/# overlaps whatever follows
	if i == len(q) {
		return append(dst, n.here...)
	}
	switch q[i] {
	case "#":
		dst = append(dst, n.here...) // q's # matches the parent level too
		dst = n.plus.all(dst)
		n.each(func(_ string, c *node[V]) { dst = c.all(dst) })
		// n.hash was added above.
		return dst
	case "+":
		n.each(func(_ string, c *node[V]) { dst = c.overlapping(q, i+1, dst) })
	default:
		if c := n.lookup(q[i]); c != nil {
			dst = c.overlapping(q, i+1, dst)
		}
	}
	if n.plus != nil {
		dst = n.plus.overlapping(q, i+1, dst)
	}
	return dst
}

// all appends every value stored at or below n.
func (n *node[V]) all(dst []V) []V {
	if n == nil {
		return dst
	}
	dst = append(dst, n.hash...)
	dst = append(dst, n.here...)
	dst = n.plus.all(dst)
	n.each(func(_ string, c *node[V]) { dst = c.all(dst) })
	return dst
}

// Overlaps reports whether some topic matches both the MQTT filter q and a
// filter in the index.
func (ix *Index[V]) Overlaps(q string) bool {
	return len(ix.overlapping(strings.Split(q, "/"), nil)) > 0
}
