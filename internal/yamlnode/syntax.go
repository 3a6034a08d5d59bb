package yamlnode

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strconv"
	"strings"
	"unicode/utf8"

	"gopkg.in/yaml.v3"
)

// SyntaxError places an error that gopkg.in/yaml.v3 returned while decoding
// src at the line and column (1-based, in runes) of its cause, and explains
// the usual traps of the format with a hint in parentheses (docs/rules.md,
// "YAML note"): a value starting with { that is not a mapping, {…} inside
// an unquoted [...] list, a tab in the indentation, a key or list item
// indented unlike its siblings, a quote or bracket never closed, and
// "key: value: more".
//
// yaml.v3 gives no column and often blames the line where the enclosing
// construct started, so the culprit is found again: it is the first line L
// such that decoding lines 1..L fails with the very same error, and the
// column is where decoding that line's prefix starts failing, unless a trap
// names a better one. msg is yaml.v3's message without its "yaml: line N:"
// prefix, followed by the hint when one applies; a tab in the indentation
// is explained by the hint alone.
//
// The line is never earlier than yaml.v3's, except where yaml.v3's is
// worse: the end of the input, for a quote or bracket left open on line 1.
// line and col are 0 only when no line can be found; an error that is not
// yaml.v3's comes back as its text alone.
func SyntaxError(src []byte, err error) (line, col int, msg string) {
	text := err.Error()
	rest, ok := strings.CutPrefix(text, "yaml: ")
	if !ok {
		return 0, 0, text
	}
	msg = rest
	reported := 0
	if m := yamlLineRE.FindStringSubmatch(rest); m != nil {
		reported, _ = strconv.Atoi(m[1])
		msg = m[2]
	}
	s := newSyntax(src, text, reported, msg)
	n := len(s.lines)
	if n == 0 {
		return reported, 0, msg
	}
	line = s.culpritLine(reported)
	if line == 0 {
		line = reported
	}
	if line == 0 {
		return 0, 0, msg
	}
	line = min(line, n)
	line, col, hint, replace := s.trap(line, reported, msg)
	switch {
	case replace:
		return line, col, hint
	case hint != "":
		return line, col, msg + " (" + hint + ")"
	}
	return line, col, msg
}

var (
	yamlLineRE      = regexp.MustCompile(`^line (\d+): (.*)$`)
	unknownAnchorRE = regexp.MustCompile(`^unknown anchor '(.*)' referenced$`)
)

// syntaxBudget bounds the bytes decoded again while looking for the
// culprit, so that a broken file of megabytes costs a second, not minutes.
const syntaxBudget = 32 << 20

// syntax is one broken document stream and the error decoding it gave.
type syntax struct {
	src     []byte
	want    string   // the full error text, "yaml: line N: msg"
	wantMsg string   // its message alone
	atEnd   bool     // its line is the end of src
	lines   []string // without their line breaks
	starts  []int    // byte offset of each line in src
	budget  int
}

func newSyntax(src []byte, want string, line int, msg string) *syntax {
	s := &syntax{src: src, want: want, wantMsg: msg, atEnd: endLine(src, line), budget: syntaxBudget}
	for off := 0; off < len(src); {
		s.starts = append(s.starts, off)
		end, size := nextBreak(src[off:])
		s.lines = append(s.lines, string(src[off:off+end]))
		off += end + size
	}
	return s
}

// nextBreak returns the offset and length of the first line break in b,
// as yaml.v3 counts them (\n, \r\n, \r, and U+0085, U+2028, U+2029), or
// len(b) and 0.
func nextBreak(b []byte) (at, size int) {
	for i := 0; i < len(b); i++ {
		switch {
		case b[i] == '\n':
			return i, 1
		case b[i] == '\r' && i+1 < len(b) && b[i+1] == '\n':
			return i, 2
		case b[i] == '\r':
			return i, 1
		case b[i] == 0xC2 && i+1 < len(b) && b[i+1] == 0x85:
			return i, 2
		case b[i] == 0xE2 && i+2 < len(b) && b[i+1] == 0x80 && (b[i+2] == 0xA8 || b[i+2] == 0xA9):
			return i, 3
		}
	}
	return len(b), 0
}

// end returns the byte offset just after line l (1-based), its break
// included.
func (s *syntax) end(l int) int {
	if l >= len(s.starts) {
		return len(s.src)
	}
	return s.starts[l]
}

// endLine reports whether line is one yaml.v3 gives for the end of b: it
// does when the construct left open there started on line 1.
func endLine(b []byte, line int) bool {
	n := 0
	for off := 0; ; n++ {
		at, size := nextBreak(b[off:])
		if size == 0 {
			break
		}
		off += at + size
	}
	return line > 0 && (line == n || line == n+1)
}

// failsSame reports whether decoding prefix gives the same error as the
// whole stream did: the same text or, when that error was at the end of
// the stream, the same message at the end of prefix. It reports false
// once the budget is spent.
func (s *syntax) failsSame(prefix []byte) bool {
	if s.budget < len(prefix) {
		return false
	}
	s.budget -= len(prefix)
	err := decodeAll(prefix)
	if err == nil {
		return false
	}
	if err.Error() == s.want {
		return true
	}
	m := yamlLineRE.FindStringSubmatch(strings.TrimPrefix(err.Error(), "yaml: "))
	if !s.atEnd || m == nil || m[2] != s.wantMsg {
		return false
	}
	line, _ := strconv.Atoi(m[1])
	return endLine(prefix, line)
}

// decodeErr returns the error decoding prefix gives, or "".
func (s *syntax) decodeErr(prefix []byte) string {
	if s.budget < len(prefix) {
		return ""
	}
	s.budget -= len(prefix)
	if err := decodeAll(prefix); err != nil {
		return err.Error()
	}
	return ""
}

func decodeAll(b []byte) error {
	dec := yaml.NewDecoder(bytes.NewReader(b))
	for {
		var doc yaml.Node
		err := dec.Decode(&doc)
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
	}
}

// culpritLine returns the first line L from reported on such that lines
// 1..L fail as the whole stream does, or 0. yaml.v3 reports the line where
// the failing construct started (minus one for parser errors), never a
// later one, so the search starts there, line by line for a while, then
// by bisection; but for a construct started on line 1 it reports the
// problem's line, which is the end of the stream when the construct is
// never closed, so the search then starts at line 1.
func (s *syntax) culpritLine(reported int) int {
	n := len(s.lines)
	lo := max(1, reported)
	if s.atEnd {
		lo = 1
	}
	if lo > n {
		return 0
	}
	const linear = 64
	for l := lo; l <= n && l < lo+linear; l++ {
		if s.failsSame(s.src[:s.end(l)]) {
			return l
		}
	}
	a, b := lo+linear, n
	if a > b || !s.failsSame(s.src) {
		return 0
	}
	for a < b {
		m := (a + b) / 2
		if s.failsSame(s.src[:s.end(m)]) {
			b = m
		} else {
			a = m + 1
		}
	}
	return a
}

// culpritCol returns the column of the character on line l at which
// decoding starts failing as the whole stream does, or the line's first
// non-blank column.
func (s *syntax) culpritCol(l int) int {
	text := s.lines[l-1]
	if len(text) <= 512 {
		start := s.starts[l-1]
		for i, col := 0, 1; i < len(text); col++ {
			_, size := utf8.DecodeRuneInString(text[i:])
			i += size
			if s.failsSame(s.src[:start+i]) {
				return col
			}
		}
	}
	return firstNonBlank(text)
}

func firstNonBlank(text string) int {
	i := strings.IndexFunc(text, func(r rune) bool { return r != ' ' && r != '\t' })
	if i < 0 {
		return 1
	}
	return runeCol(text, i)
}

// runeCol is the 1-based column of byte offset i of text.
func runeCol(text string, i int) int { return utf8.RuneCountInString(text[:i]) + 1 }

// trap looks for one of the known traps on line l (or, for a quote or
// bracket left open, above it) and returns its place and a hint, or line
// l, the column culpritCol finds and no hint. replace means the hint says
// all and replaces yaml.v3's message.
func (s *syntax) trap(l, reported int, msg string) (line, col int, hint string, replace bool) {
	text := s.lines[l-1]
	p := parseLine(text)
	if i := strings.IndexByte(text[:p.lead], '\t'); i >= 0 {
		return l, runeCol(text, i), "tab character in indentation: YAML indents with spaces only", true
	}
	if q, qc, ok := s.openQuote(l); ok {
		return q, qc, fmt.Sprintf("the quote opened here is closed only on line %d: is a closing quote missing?", l), false
	}
	if msg == "found unexpected end of stream" {
		if i := unclosedQuote(text, p); i >= 0 {
			return l, runeCol(text, i), "the quote opened here is never closed", false
		}
	}
	if m := unknownAnchorRE.FindStringSubmatch(msg); m != nil {
		if i := strings.Index(text, "*"+m[1]); i >= 0 {
			return l, runeCol(text, i), "", false // yaml.v3's message says it
		}
	}
	if i, eg := flowListBrace(text, p); i >= 0 {
		return l, runeCol(text, i), "{ inside [...] starts a YAML mapping: quote the items" + eg, false
	}
	if i, eg := braceValue(text, p); i >= 0 {
		return l, runeCol(text, i), "a value starting with { is read as a YAML mapping: quote it" + eg, false
	}
	if msg == "mapping values are not allowed in this context" {
		if i, eg := secondColon(text, p); i >= 0 {
			return l, runeCol(text, i), `a value holding ": " must be quoted` + eg, false
		}
	}
	if i := afterQuote(text, p); i >= 0 {
		return l, runeCol(text, i), "text after the closing quote: quote the whole value", false
	}
	if strings.HasPrefix(msg, "did not find expected ',' or ") || msg == "did not find expected node content" {
		// The list or mapping left open is on this line or above it, not
		// above yaml.v3's line unless on line 1 (whose constructs yaml.v3
		// never names).
		for j := l; j >= 1; j-- {
			if j < reported && j > 1 {
				continue
			}
			t := s.lines[j-1]
			q := parseLine(t)
			if q.val < len(t) && (t[q.val] == '[' || t[q.val] == '{') && flowEnd(t, q.val) < 0 {
				closing := ']'
				if t[q.val] == '{' {
					closing = '}'
				}
				return j, runeCol(t, q.val), fmt.Sprintf("the %c opened here is not closed on its line: is a %c missing?", t[q.val], closing), false
			}
		}
	}
	content, opener, base, indent := s.blockScalar(l)
	if opener > 0 && p.lead > base && p.lead < indent {
		return l, p.lead + 1, fmt.Sprintf("less indented than the first line, at column %d, of the text block that starts on line %d: indent all its lines at least as much", indent+1, opener), false
	}
	if c, hint := s.misindented(l, p, content); hint != "" {
		return l, c, hint, false
	}
	return l, s.culpritCol(l), "", false
}

// afterQuote finds text after a quoted value that closes on its line, as
// in name: "a" b, returning the offset of that text, or -1.
func afterQuote(text string, p lineParts) int {
	if p.val >= len(text) || (text[p.val] != '"' && text[p.val] != '\'') {
		return -1
	}
	e := quoteEnd(text, p.val)
	if e < 0 {
		return -1
	}
	j := e + 1
	for j < len(text) && (text[j] == ' ' || text[j] == '\t') {
		j++
	}
	if j == len(text) || text[j] == '#' && j > e+1 || text[j] == ':' {
		return -1
	}
	return j
}

var blockIndicatorRE = regexp.MustCompile(`^[|>][-+0-9]*$`)

// blockScalar marks the lines before l that are the text of a block
// scalar (key: | or key: >). When such a text is still open at line l, it
// also returns the line of its indicator, the indentation its text must
// exceed (its key's) and the indentation of its first line, in bytes.
func (s *syntax) blockScalar(l int) (content []bool, opener, base, indent int) {
	content = make([]bool, l)
	base = -1 // while a text is open
	for j := 1; j < l; j++ {
		t := s.lines[j-1]
		if strings.TrimSpace(t) == "" {
			content[j-1] = base >= 0
			continue
		}
		q := parseLine(t)
		if base >= 0 && q.lead > base && (indent == 0 || q.lead >= indent) {
			if indent == 0 {
				indent = q.lead
			}
			content[j-1] = true
			continue
		}
		base, opener, indent = -1, 0, 0
		if blockIndicatorRE.MatchString(valueText(t, q)) {
			base, opener = q.lead, j
			if q.key >= 0 {
				base = q.key
			}
		}
	}
	if indent == 0 {
		return content, 0, 0, 0
	}
	return content, opener, base, indent
}

// lineParts is the block structure of one line, as byte offsets.
type lineParts struct {
	lead   int // end of the leading spaces and tabs
	dashes int // how many "- " sequence entries start the line
	key    int // start of a "key:" on the line, -1 if none
	colon  int // the key's ':'
	val    int // start of the value: after "key: ", after the dashes, or len(text)
}

func parseLine(text string) lineParts {
	i := 0
	for i < len(text) && (text[i] == ' ' || text[i] == '\t') {
		i++
	}
	p := lineParts{lead: i, key: -1, colon: -1}
	for i < len(text) && text[i] == '-' && (i+1 == len(text) || text[i+1] == ' ') {
		p.dashes++
		i++
		for i < len(text) && text[i] == ' ' {
			i++
		}
	}
	p.val = i
	if c := keyColon(text, i); c >= 0 {
		p.key, p.colon = i, c
		j := c + 1
		for j < len(text) && (text[j] == ' ' || text[j] == '\t') {
			j++
		}
		p.val = j
	}
	return p
}

// keyColon returns the offset of the ':' ending a block mapping key that
// starts at i, or -1.
func keyColon(text string, i int) int {
	if i >= len(text) {
		return -1
	}
	j := i
	switch text[i] {
	case '"', '\'':
		e := quoteEnd(text, i)
		if e < 0 {
			return -1
		}
		j = e + 1
		for j < len(text) && text[j] == ' ' {
			j++
		}
		if j < len(text) && text[j] == ':' && isSep(text, j+1) {
			return j
		}
		return -1
	case '[', '{', '#', '|', '>', '&', '*', '!', '%', '@', '`':
		return -1
	}
	for ; j < len(text); j++ {
		switch {
		case text[j] == ':' && isSep(text, j+1):
			return j
		case text[j] == '#' && text[j-1] == ' ':
			return -1
		}
	}
	return -1
}

// isSep reports whether offset i of text ends a token: a blank or the end.
func isSep(text string, i int) bool {
	return i >= len(text) || text[i] == ' ' || text[i] == '\t'
}

// quoteEnd returns the offset of the quote closing the one at i, or -1.
func quoteEnd(text string, i int) int {
	q := text[i]
	for j := i + 1; j < len(text); j++ {
		switch {
		case q == '"' && text[j] == '\\':
			j++
		case text[j] == q && q == '\'' && j+1 < len(text) && text[j+1] == '\'':
			j++
		case text[j] == q:
			return j
		}
	}
	return -1
}

// flowEnd returns the offset of the bracket closing the one at i, or -1
// when the line ends first.
func flowEnd(text string, i int) int {
	depth := 0
	for j := i; j < len(text); j++ {
		switch text[j] {
		case '"', '\'':
			e := quoteEnd(text, j)
			if e < 0 {
				return -1
			}
			j = e
		case '[', '{':
			depth++
		case ']', '}':
			depth--
			if depth == 0 {
				return j
			}
		}
	}
	return -1
}

// valueText returns the value at p.val without a trailing comment or
// blanks.
func valueText(text string, p lineParts) string {
	v := text[p.val:]
	for j := 0; j < len(v); j++ {
		switch {
		case (v[j] == '"' || v[j] == '\'') && (j == 0 || strings.ContainsRune(" [{,", rune(v[j-1]))):
			if e := quoteEnd(v, j); e >= 0 {
				j = e
			}
		case v[j] == '#' && j > 0 && (v[j-1] == ' ' || v[j-1] == '\t'):
			return strings.TrimRight(v[:j], " \t")
		}
	}
	return strings.TrimRight(v, " \t")
}

// example returns `, e.g. key: value` (or `- value`) for the line.
func example(text string, p lineParts, value string) string {
	if p.key >= 0 {
		return ", e.g. " + text[p.key:p.colon] + ": " + value
	}
	return ", e.g. - " + value
}

// quoted quotes a plain scalar for YAML, or returns "" when it holds both
// kinds of quotes.
func quoted(v string) string {
	switch {
	case !strings.ContainsAny(v, `"\`):
		return `"` + v + `"`
	case !strings.Contains(v, "'"):
		return "'" + v + "'"
	}
	return ""
}

// braceValue finds a value like {device}/state: it starts with { but does
// not end with the matching }. It returns the offset of the { and an
// example, or -1.
func braceValue(text string, p lineParts) (int, string) {
	if p.val >= len(text) || text[p.val] != '{' {
		return -1, ""
	}
	v := valueText(text, p)
	e := flowEnd(v, 0)
	if e < 0 || e == len(v)-1 {
		return -1, ""
	}
	eg := ""
	if q := quoted(v); q != "" {
		eg = example(text, p, q)
	}
	return p.val, eg
}

// flowListBrace finds a {…} inside an item of a [...] list that is not a
// whole flow mapping, like [home/{room}/t]. It returns the offset of its
// { and an example with every plain item quoted, or -1.
func flowListBrace(text string, p lineParts) (int, string) {
	if p.val >= len(text) || text[p.val] != '[' {
		return -1, ""
	}
	v := valueText(text, p)
	var items []string
	bad := -1
	start, depth, brace, closed := 1, 0, -1, false
	add := func(end int) {
		item := strings.TrimSpace(v[start:end])
		if item != "" {
			if brace >= 0 && bad < 0 && !isFlowMapping(item) {
				bad = brace
			}
			items = append(items, item)
		}
		start, brace = end+1, -1
	}
	for j := 1; j < len(v) && !closed; j++ {
		switch c := v[j]; {
		case c == '"' || c == '\'':
			e := quoteEnd(v, j)
			if e < 0 {
				return -1, ""
			}
			j = e
		case c == '[' || c == '{':
			if c == '{' && depth == 0 && brace < 0 {
				brace = j
			}
			depth++
		case (c == ']' || c == '}') && depth > 0:
			depth--
		case (c == ',' || c == ']') && depth == 0:
			add(j)
			closed = c == ']'
		}
	}
	if !closed && start < len(v) { // the list goes on on the next line
		add(len(v))
	}
	if bad < 0 {
		return -1, ""
	}
	for i, item := range items {
		if item[0] == '"' || item[0] == '\'' || item[0] == '[' || isFlowMapping(item) {
			continue
		}
		q := quoted(item)
		if q == "" {
			return p.val + bad, ""
		}
		items[i] = q
	}
	return p.val + bad, example(text, p, "["+strings.Join(items, ", ")+"]")
}

// isFlowMapping reports whether item is one whole {…}.
func isFlowMapping(item string) bool {
	return item[0] == '{' && flowEnd(item, 0) == len(item)-1
}

// secondColon finds the ": " inside a plain value, as in when: a: b,
// returning its offset and an example with the value quoted, or -1.
func secondColon(text string, p lineParts) (int, string) {
	if p.key < 0 || p.val >= len(text) || strings.IndexByte(`"'[{|>&*!`, text[p.val]) >= 0 {
		return -1, ""
	}
	v := valueText(text, p)
	for j := 0; j < len(v); j++ {
		if v[j] == ':' && isSep(v, j+1) {
			eg := ""
			if q := quoted(v); q != "" {
				eg = example(text, p, q)
			}
			return p.val + j, eg
		}
	}
	return -1, ""
}

// unclosedQuote returns the offset of a quote that opens the key or value
// of the line, or an item of a [...] list on it, and is not closed on the
// line, or -1.
func unclosedQuote(text string, p lineParts) int {
	at := []int{p.val}
	if p.val < len(text) && text[p.val] == '[' {
		for j := p.val + 1; j < len(text); j++ {
			if text[j] == ',' || text[j] == '[' {
				k := j + 1
				for k < len(text) && text[k] == ' ' {
					k++
				}
				at = append(at, k)
			}
		}
	}
	for _, i := range at {
		if i < len(text) && (text[i] == '"' || text[i] == '\'') && quoteEnd(text, i) < 0 {
			return i
		}
	}
	return -1
}

// openQuote reports whether line l starts inside a quoted scalar opened on
// an earlier line, returning where it opened: decoding lines 1..l-1 then
// ends in the middle of it.
func (s *syntax) openQuote(l int) (line, col int, ok bool) {
	if l < 2 {
		return 0, 0, false
	}
	m := yamlLineRE.FindStringSubmatch(strings.TrimPrefix(s.decodeErr(s.src[:s.end(l-1)]), "yaml: "))
	if m == nil || m[2] != "found unexpected end of stream" {
		return 0, 0, false
	}
	q, _ := strconv.Atoi(m[1])
	if q < 1 || q >= l {
		return 0, 0, false
	}
	text := s.lines[q-1]
	if i := unclosedQuote(text, parseLine(text)); i >= 0 {
		return q, runeCol(text, i), true
	}
	return 0, 0, false
}

// misindented checks where a line starts (its key, or its "- ") against
// the columns it may start at, found on the lines above it: the keys and
// list items of the previous line and of every less indented one (its
// ancestors). A line deeper than the previous one is fine only when that
// line opens a block ("key:" or "-"). It returns the line's column and a
// hint naming the nearest column of its kind, or "".
func (s *syntax) misindented(l int, p lineParts, content []bool) (int, string) {
	text := s.lines[l-1]
	if p.key < 0 && p.dashes == 0 {
		return 0, ""
	}
	c := p.lead
	type place struct {
		line, col int
		key       string // "" for a list item
	}
	var places []place
	limit := int(^uint(0) >> 1)
	first := true
	for j := l - 1; j >= 1 && limit > 0; j-- {
		t := s.lines[j-1]
		trimmed := strings.TrimSpace(t)
		if trimmed == "" || trimmed[0] == '#' || content[j-1] {
			continue
		}
		if strings.HasPrefix(t, "---") || strings.HasPrefix(t, "...") {
			break
		}
		q := parseLine(t)
		if first {
			first = false
			opens := q.val >= len(t) || t[q.val] == '#' || t[q.val] == '&' || t[q.val] == '!'
			if opens && c > q.lead {
				return 0, ""
			}
		}
		if q.key >= 0 && q.key < limit {
			places = append(places, place{j, q.key, t[q.key:q.colon]})
			limit = q.key
		}
		if q.dashes > 0 && q.lead < limit {
			places = append(places, place{line: j, col: q.lead})
		}
		limit = min(limit, q.lead)
	}
	var best *place
	for i, pl := range places {
		if pl.col == c {
			return 0, "" // a dash at a key's column is an indentless list
		}
		if (pl.key == "") != (p.dashes > 0) {
			continue
		}
		if best == nil || abs(pl.col-c) < abs(best.col-c) {
			best = &places[i]
		}
	}
	if best == nil {
		return 0, ""
	}
	if p.dashes > 0 {
		return c + 1, fmt.Sprintf("- is at column %d; the items of its list, like the one on line %d, are at column %d", c+1, best.line, best.col+1)
	}
	return c + 1, fmt.Sprintf("%s: is at column %d; its sibling keys, like %s: on line %d, are at column %d",
		text[p.key:p.colon], c+1, best.key, best.line, best.col+1)
}

func abs(i int) int {
	if i < 0 {
		return -i
	}
	return i
}
