// Package topic implements MQTT 3.1.1 topic names and filters (§4.7 of the
// specification): validation, matching, a trie index whose matching cost does
// not depend on how many filters it holds, and the reduction of a set of
// filters to subscriptions that never overlap.
//
// Comments cite the normative statements they implement, e.g. [MQTT-4.7.1-2].
//
// Filters may name the levels they match: a level written {name} matches one
// level like + and binds it to name; {name...} as the last level matches like #.
package topic

import (
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"
)

// MaxLen is the longest topic name or filter in bytes [MQTT-4.7.3-3].
const MaxLen = 65535

// Kind is what a filter level matches.
type Kind uint8

// Level kinds.
const (
	Literal Kind = iota // the level text itself
	Plus                // any one level: + or {name}
	Hash                // the parent level and any number of levels below it: # or {name...}
)

// Level is one level of a filter.
type Level struct {
	Kind Kind
	Text string // the literal text; "+" or "#" for wildcards
	Name string // capture name for {name} / {name...}; "" otherwise

	// Prefix and Suffix are the literal text around a capture that does
	// not fill its level ({room}_motion): the level is subscribed as + and
	// matches only levels with that prefix and suffix; the capture binds
	// what is between them.
	Prefix, Suffix string
}

// Filter is a parsed topic filter.
type Filter struct {
	Source string  // as written, captures included: home/{room}/temperature
	MQTT   string  // as subscribed, captures replaced by wildcards: home/+/temperature
	Levels []Level // Source split on "/"

	// Patterned tells that a level has a capture with text around it
	// (zigbee2mqtt/{room}_motion): a topic that matches MQTT must also
	// pass MatchPatterns.
	Patterned bool
}

// Parse validates a topic filter as MQTT 3.1.1 §4.7 requires, accepting the
// named captures {name} and {name...}.
func Parse(s string) (*Filter, error) {
	if err := validateString(s); err != nil {
		return nil, err
	}
	parts := strings.Split(s, "/")
	f := &Filter{Source: s, Levels: make([]Level, len(parts))}
	mqtt := make([]string, len(parts))
	names := map[string]bool{}
	for i, p := range parts {
		last := i == len(parts)-1
		lv := Level{Kind: Literal, Text: p}
		switch {
		case p == "#":
			// [MQTT-4.7.1-2] '#' stands alone in its level and is the last character.
			if !last {
				return nil, fmt.Errorf("filter %q: # must be the last level", s)
			}
			lv.Kind = Hash
		case p == "+":
			lv.Kind = Plus
		case strings.HasPrefix(p, "{") && strings.HasSuffix(p, "}") && len(p) > 2 && !strings.ContainsAny(p[1:len(p)-1], "{}"):
			name := p[1 : len(p)-1]
			lv.Kind = Plus
			lv.Text = "+"
			if rest, ok := strings.CutSuffix(name, "..."); ok {
				if !last {
					return nil, fmt.Errorf("filter %q: capture %s must be the last level", s, p)
				}
				name = rest
				lv.Kind = Hash
				lv.Text = "#"
			}
			if !isIdent(name) {
				return nil, fmt.Errorf("filter %q: capture name %q is not an identifier (letters, digits, _; not starting with a digit)", s, name)
			}
			if names[name] {
				return nil, fmt.Errorf("filter %q: capture name %q used twice", s, name)
			}
			names[name] = true
			lv.Name = name
		case strings.ContainsAny(p, "+#"):
			// [MQTT-4.7.1-2] [MQTT-4.7.1-3] wildcards occupy a whole level.
			return nil, fmt.Errorf("filter %q: level %q: + and # must fill a whole level", s, p)
		case strings.ContainsAny(p, "{}"):
			// A capture with literal text around it: {room}_motion.
			open, end := strings.IndexByte(p, '{'), strings.IndexByte(p, '}')
			if open < 0 || end < open || strings.ContainsAny(p[end+1:], "{}") || strings.ContainsAny(p[:open], "{}") {
				return nil, fmt.Errorf("filter %q: level %q: a capture is written {name}, once per level (text around it is fine: {room}_motion)", s, p)
			}
			name := p[open+1 : end]
			if strings.HasSuffix(name, "...") {
				return nil, fmt.Errorf("filter %q: level %q: {name...} fills its level and ends the filter; it takes no text around it", s, p)
			}
			if !isIdent(name) {
				return nil, fmt.Errorf("filter %q: capture name %q is not an identifier (letters, digits, _; not starting with a digit)", s, name)
			}
			if names[name] {
				return nil, fmt.Errorf("filter %q: capture name %q used twice", s, name)
			}
			names[name] = true
			lv = Level{Kind: Plus, Text: "+", Name: name, Prefix: p[:open], Suffix: p[end+1:]}
			f.Patterned = true
		}
		f.Levels[i] = lv
		mqtt[i] = lv.Text
	}
	f.MQTT = s
	if len(names) > 0 {
		f.MQTT = strings.Join(mqtt, "/")
	}
	return f, nil
}

// MustParse is Parse for filters known to be valid; it panics otherwise.
// Meant for tests and package-level values.
func MustParse(s string) *Filter {
	f, err := Parse(s)
	if err != nil {
		panic(err)
	}
	return f
}

// Captures returns the names the filter binds, in level order.
func (f *Filter) Captures() []string {
	var names []string
	for _, l := range f.Levels {
		if l.Name != "" {
			names = append(names, l.Name)
		}
	}
	return names
}

// HasWildcard reports whether the filter matches more than one topic.
func (f *Filter) HasWildcard() bool {
	for _, l := range f.Levels {
		if l.Kind != Literal {
			return true
		}
	}
	return false
}

// MatchPatterns reports whether the levels of a topic that matches f's
// MQTT filter also have the text around f's in-level captures.
func (f *Filter) MatchPatterns(levels []string) bool {
	for i, l := range f.Levels {
		if l.Prefix == "" && l.Suffix == "" || i >= len(levels) {
			continue
		}
		v := levels[i]
		if len(v) < len(l.Prefix)+len(l.Suffix) || !strings.HasPrefix(v, l.Prefix) || !strings.HasSuffix(v, l.Suffix) {
			return false
		}
	}
	return true
}

// Wildcards appends to dst what each wildcard level of f matched in topic,
// whose levels are given: a + level's text, then for # the remaining levels
// joined with "/" ("" when # matched the parent level only). The strings are
// slices of topic. topic must match f.
func (f *Filter) Wildcards(topic string, levels []string, dst []string) []string {
	off := 0
	for i, l := range f.Levels {
		switch l.Kind {
		case Plus:
			dst = append(dst, levels[i])
		case Hash:
			if i >= len(levels) {
				dst = append(dst, "")
			} else {
				dst = append(dst, topic[off:])
			}
			return dst
		}
		if i < len(levels) {
			off += len(levels[i]) + 1
		}
	}
	return dst
}

// ValidateName checks a topic name that is to be published: not empty, no
// wildcards, no NUL, valid UTF-8, at most MaxLen bytes. It runs for every
// publish with a templated topic, so it makes one pass over the bytes.
func ValidateName(name string) error {
	if name == "" || len(name) > MaxLen {
		return validateString(name)
	}
	ascii := true
	for i := 0; i < len(name); i++ {
		switch c := name[i]; {
		case c == '+' || c == '#':
			// [MQTT-4.7.1-1] wildcards are not allowed in topic names.
			return fmt.Errorf("topic %q holds a wildcard (+ or #)", name)
		case c == 0:
			return validateString(name)
		case c >= utf8.RuneSelf:
			ascii = false
		}
	}
	if !ascii && !utf8.ValidString(name) {
		return validateString(name)
	}
	return nil
}

var errEmpty = errors.New("topic is empty")

func validateString(s string) error {
	switch {
	case s == "": // [MQTT-4.7.3-1]
		return errEmpty
	case len(s) > MaxLen: // [MQTT-4.7.3-3]
		return fmt.Errorf("topic is %d bytes long, more than %d", len(s), MaxLen)
	case strings.IndexByte(s, 0) >= 0: // [MQTT-4.7.3-2]
		return fmt.Errorf("topic %q holds a NUL character", s)
	case !utf8.ValidString(s): // [MQTT-1.5.3-1]
		return fmt.Errorf("topic %q is not valid UTF-8", s)
	}
	return nil
}

func isIdent(s string) bool {
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

// Split appends the levels of topic to dst; the strings are slices of topic.
func Split(topic string, dst []string) []string {
	for {
		i := strings.IndexByte(topic, '/')
		if i < 0 {
			return append(dst, topic)
		}
		dst = append(dst, topic[:i])
		topic = topic[i+1:]
	}
}

// Match reports whether the topic name matches the MQTT filter (wildcards
// + and #, no captures). It is the plain reference implementation that the
// Index is tested against.
func Match(filter, name string) bool {
	fl := strings.Split(filter, "/")
	nl := strings.Split(name, "/")
	// [MQTT-4.7.2-1] filters starting with a wildcard do not match $ topics.
	if strings.HasPrefix(name, "$") && (fl[0] == "+" || fl[0] == "#") {
		return false
	}
	for i, f := range fl {
		if f == "#" {
			return true // matches the parent level too: sport/# matches sport
		}
		if i >= len(nl) {
			return false
		}
		if f != "+" && f != nl[i] {
			return false
		}
	}
	return len(fl) == len(nl)
}
