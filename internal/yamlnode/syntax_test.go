package yamlnode

import (
	"errors"
	"regexp"
	"strconv"
	"testing"
)

func TestSyntaxError(t *testing.T) {
	const head = "rules:\n  - name: x\n"
	for _, tt := range []struct {
		name, src string
		line, col int
		msg       string
	}{
		{"brace value", head + "    topic: {device}/state\n    actions: [{log: hi}]\n",
			3, 12, `did not find expected key (a value starting with { is read as a YAML mapping: quote it, e.g. topic: "{device}/state")`},
		{"brace value, CRLF", "rules:\r\n  - name: x\r\n    topic: {device}/state\r\n",
			3, 12, `did not find expected key (a value starting with { is read as a YAML mapping: quote it, e.g. topic: "{device}/state")`},
		{"brace value with a comment", head + "    topic: {device}/state # the state\n",
			3, 12, `did not find expected key (a value starting with { is read as a YAML mapping: quote it, e.g. topic: "{device}/state")`},
		{"brace list item", head + "    topic:\n      - a/b\n      - {device}/state\n",
			5, 9, `did not find expected '-' indicator (a value starting with { is read as a YAML mapping: quote it, e.g. - "{device}/state")`},
		{"brace value in a later document", "a: 1\n---\nb: {x}/y\n",
			3, 4, `did not find expected key (a value starting with { is read as a YAML mapping: quote it, e.g. b: "{x}/y")`},
		{"brace in a flow list", head + "    topic: [home/{room}/t, office/#]\n",
			3, 18, `did not find expected ',' or ']' ({ inside [...] starts a YAML mapping: quote the items, e.g. topic: ["home/{room}/t", "office/#"])`},
		{"brace starting a flow list item", head + "    topic: [office/#, {room}/t]\n",
			3, 23, `did not find expected ',' or ']' ({ inside [...] starts a YAML mapping: quote the items, e.g. topic: ["office/#", "{room}/t"])`},
		{"tab indenting a key", head + "\ttopic: t\n",
			3, 1, "tab character in indentation: YAML indents with spaces only"},
		{"tab after spaces", head + "    topic: t\n  \t  when: y\n",
			4, 3, "tab character in indentation: YAML indents with spaces only"},
		{"key one space deeper", head + "    topic: t\n     when: y\n    actions: [{log: hi}]\n",
			4, 6, "mapping values are not allowed in this context (when: is at column 6; its sibling keys, like topic: on line 3, are at column 5)"},
		{"key one space shallower", head + "    topic: t\n   when: y\n    actions: [{log: hi}]\n",
			4, 4, "did not find expected '-' indicator (when: is at column 4; its sibling keys, like topic: on line 3, are at column 5)"},
		{"key after a nested list", head + "    actions:\n      - log: x\n     when: y\n",
			5, 6, "did not find expected key (when: is at column 6; its sibling keys, like actions: on line 3, are at column 5)"},
		{"action key shallower", head + "    actions:\n      - publish:\n          topic: a\n         payload: b\n",
			6, 10, "did not find expected key (payload: is at column 10; its sibling keys, like topic: on line 5, are at column 11)"},
		{"list item shallower", head + "    topic: t\n - name: y\n",
			4, 2, "did not find expected key (- is at column 2; the items of its list, like the one on line 2, are at column 3)"},
		{"list item deeper", head + "    topic: t\n   - name: y\n",
			4, 4, "did not find expected '-' indicator (- is at column 4; the items of its list, like the one on line 2, are at column 3)"},
		{"text block line shallower", head + "    when: |\n      a &&\n     b\n",
			5, 6, "did not find expected key (less indented than the first line, at column 7, of the text block that starts on line 3: indent all its lines at least as much)"},
		{"double quote never closed", head + "    topic: \"a/b\n    when: x\n",
			3, 12, "found unexpected end of stream (the quote opened here is never closed)"},
		{"single quote never closed", head + "    topic: 'a/b\n",
			3, 12, "found unexpected end of stream (the quote opened here is never closed)"},
		{"quote never closed in a flow list", head + "    topic: [\"a\", \"b]\n",
			3, 18, "found unexpected end of stream (the quote opened here is never closed)"},
		{"quote never closed on line 1", "a: \"b\nc: d\ne: f\n",
			1, 4, "found unexpected end of stream (the quote opened here is never closed)"},
		{"flow list never closed on line 1", "a: [b,\nc: d\n",
			1, 4, "did not find expected ',' or ']' (the [ opened here is not closed on its line: is a ] missing?)"},
		{"flow list not closed at the end", "tests: [\n",
			1, 8, "did not find expected node content (the [ opened here is not closed on its line: is a ] missing?)"},
		{"flow list not closed before the next key", head + "    topic: [a, b\n    when: x\n",
			3, 12, "did not find expected ',' or ']' (the [ opened here is not closed on its line: is a ] missing?)"},
		{"flow list on two lines not closed", head + "    topic: [a,\n      b\n    when: x\n",
			3, 12, "did not find expected ',' or ']' (the [ opened here is not closed on its line: is a ] missing?)"},
		{"quote closed by the next line's", head + "    topic: \"a/b\n    when: \"x\"\n",
			3, 12, "did not find expected key (the quote opened here is closed only on line 4: is a closing quote missing?)"},
		{"text after a quote", head + "    topic: \"a/b\" c\n",
			3, 18, "did not find expected key (text after the closing quote: quote the whole value)"},
		{"second colon", head + "    when: a: b\n",
			3, 12, `mapping values are not allowed in this context (a value holding ": " must be quoted, e.g. when: "a: b")`},
		{"second colon, value with double quotes", head + "    when: topic == \"a\": b\n",
			3, 23, `mapping values are not allowed in this context (a value holding ": " must be quoted, e.g. when: 'topic == "a": b')`},
		{"second colon on line 1", "a: b: c\n",
			1, 5, `mapping values are not allowed in this context (a value holding ": " must be quoted, e.g. a: "b: c")`},
		{"second colon after wide characters", "rules:\n  - name: ä\n    when: ä: b\n",
			3, 12, `mapping values are not allowed in this context (a value holding ": " must be quoted, e.g. when: "ä: b")`},
		{"flow list not closed", head + "    topic: t\n    actions: [{log: hi}\n",
			4, 14, "did not find expected ',' or ']' (the [ opened here is not closed on its line: is a ] missing?)"},
		{"flow mapping not closed", head + "    topic: {a: 1\n    when: x\n",
			3, 12, "did not find expected ',' or '}' (the { opened here is not closed on its line: is a } missing?)"},
		{"unknown anchor", head + "    topic: *t\n",
			3, 12, "unknown anchor 't' referenced"},
		{"character that cannot start a token", head + "    when: @a\n",
			3, 11, "found character that cannot start any token"},
		{"unknown escape", head + "    topic: \"a\\qb\"\n",
			3, 14, "found unknown escape character"},
		{"control character", "a: \x01\n",
			1, 4, "control characters are not allowed"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			err := decodeAll([]byte(tt.src))
			if err == nil {
				t.Fatalf("%q decodes", tt.src)
			}
			line, col, msg := SyntaxError([]byte(tt.src), err)
			if line != tt.line || col != tt.col || msg != tt.msg {
				t.Errorf("SyntaxError(%q)\n got %d:%d: %s\nwant %d:%d: %s\n(yaml.v3: %v)", tt.src, line, col, msg, tt.line, tt.col, tt.msg, err)
			}
		})
	}
}

func TestSyntaxErrorNotYAML(t *testing.T) {
	line, col, msg := SyntaxError([]byte("a: b\n"), errors.New("read r.yaml: permission denied"))
	if line != 0 || col != 0 || msg != "read r.yaml: permission denied" {
		t.Errorf("got %d:%d: %s, want 0:0 and the error's text", line, col, msg)
	}
}

var reportedLine = regexp.MustCompile(`^yaml: line (\d+): `)

// FuzzSyntaxError checks that any broken document gets a place inside the
// document, no earlier than the line yaml.v3 reports unless that is the
// end of the document or the place is on line 1 (yaml.v3 never reports a
// construct started there), and a message.
func FuzzSyntaxError(f *testing.F) {
	for _, s := range []string{
		"rules:\n  - name: x\n    topic: {device}/state\n",
		"rules:\n  - name: x\n    topic: [home/{room}/t, office/#]\n",
		"rules:\n  - name: x\n\ttopic: t\n",
		"rules:\n  - name: x\n    topic: t\n   when: y\n",
		"a: \"b\n",
		"a: b: c\n",
		"a: |\n    x\n  y\n",
		"a: [b, {c: d}, 'e\n",
		"- - - a\n - b\n",
		"a: 1\n---\nb: *c\n",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, src string) {
		err := decodeAll([]byte(src))
		if err == nil {
			return
		}
		line, col, msg := SyntaxError([]byte(src), err)
		if msg == "" {
			t.Errorf("no message for %v", err)
		}
		if m := reportedLine.FindStringSubmatch(err.Error()); m != nil {
			reported, _ := strconv.Atoi(m[1])
			if line < reported && line != 1 && !endLine([]byte(src), reported) {
				t.Errorf("line %d, before yaml.v3's %d (%v)", line, reported, err)
			}
		}
		if line > 0 && col < 1 {
			t.Errorf("line %d without a column", line)
		}
		if n := len(newSyntax([]byte(src), "", 0, "").lines); line > n {
			t.Errorf("line %d after the last line, %d", line, n)
		}
	})
}
