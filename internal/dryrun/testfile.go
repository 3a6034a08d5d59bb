package dryrun

import (
	"bytes"
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/mqtt-rules/mqtt-rules/internal/yamlnode"
	"io"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/mqtt-rules/mqtt-rules/actions"
	"github.com/mqtt-rules/mqtt-rules/internal/sun"
	"github.com/mqtt-rules/mqtt-rules/internal/topic"
	"github.com/mqtt-rules/mqtt-rules/rules"
)

// TestFile is a rule test file (*_test.yaml, docs/testing.md, 2. Write a
// test), parsed.
type TestFile struct {
	Path string
	// RuleFiles are the paths of its rule_files: key, resolved against the
	// test file's folder; empty when it has none (it then runs against the
	// rule set the command line names).
	RuleFiles []string
	Cases     []*Case
	// Env gives ${NAME} values for the test file and for the rules it
	// tests, before the process environment (docs/testing.md): rule tests
	// need no production secrets.
	Env map[string]string
}

// Lookup returns how ${NAME} resolves for the file's rules: its env:, then
// base (nil: the process environment).
func (tf *TestFile) Lookup(base func(string) (string, bool)) func(string) (string, bool) {
	if base == nil {
		base = os.LookupEnv
	}
	if len(tf.Env) == 0 {
		return base
	}
	return func(name string) (string, bool) {
		if v, ok := tf.Env[name]; ok {
			return v, true
		}
		return base(name)
	}
}

// Case is one test case: messages fed at offsets from Start, and the
// actions expected, in order.
type Case struct {
	Name  string
	File  string
	Line  int
	Start time.Time // when the virtual clock starts; zero: DefaultStart
	// TimeZone and Location, when set, are the case's own --timezone and
	// --latitude/--longitude (docs/time.md).
	TimeZone *time.Location
	Location *sun.Location
	Messages []Message
	// Until is how long after Start the clock runs: the timers due by then
	// fire. Default: the last message's At.
	Until  time.Duration
	Expect []Expectation
}

// Message is one message of a case.
type Message struct {
	Line    int
	Topic   string
	Payload []byte
	At      time.Duration // offset from the case's start
	QoS     byte
	Retain  bool

	// Broker is the broker it comes from ("": the default one); only the
	// rules on that broker see it (docs/brokers.md). Properties are its
	// MQTT 5 properties (docs/mqtt5.md), nil for none.
	Broker     string
	Properties *actions.Properties
}

// Expectation is one entry of a case's expect: list. Only the fields it
// gives are compared.
type Expectation struct {
	Line, Col int
	Rule      string         // "": any rule
	At        *time.Duration // when the action runs, as an offset from the start
	OnClear   *bool          // whether it is an on_clear action
	Kind      *actions.Kind
	Fields    []ExpectedField // in written order
}

// ExpectedField is one field an expectation gives: a key of the action's
// kind (publish's topic, log's message), compared with the action's field
// of that name (see actions.Field). A mapping under a key whose action
// fields are "key.name" (webhook headers) gives one expected field per
// name instead.
type ExpectedField struct {
	Name  string
	Value Value
	Line  int
	Sub   []ExpectedField // the entries of a mapping value, by their own names
}

// Value is an expected payload or body: text compared byte for byte, or,
// when the test file gives a mapping or a list, JSON compared by value
// (key order and spacing do not matter).
type Value struct {
	Text   string
	JSON   any
	IsJSON bool
}

// Error is a problem in a rule test file, at the place it was found.
type Error struct {
	File string
	Line int
	Col  int
	Test string // the case's name, when known
	Msg  string
}

// Error formats as file:line:col: test "name": msg.
func (e *Error) Error() string {
	return yamlnode.FormatError(e.File, e.Line, e.Col, "test", e.Test, e.Msg)
}

// Errors is every problem found in a test file, in file order.
type Errors []*Error

// Error returns one line per problem.
func (es Errors) Error() string { return yamlnode.JoinErrors(es) }

// LoadTestFile reads and parses a rule test file; see ParseTestFile.
func LoadTestFile(path string, lookup func(string) (string, bool)) (*TestFile, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read test file: %w", err)
	}
	return ParseTestFile(path, b, lookup)
}

// ParseTestFile parses a rule test file. ${NAME} references in its values
// are expanded as in rule files, with lookup (nil: the process
// environment). Unknown keys and wrong values are errors; it returns an
// Errors holding every problem, each at its file:line:col.
func ParseTestFile(name string, data []byte, lookup func(string) (string, bool)) (*TestFile, error) {
	p := &parser{name: name}
	p.yr = yamlnode.Reader{LookupEnv: lookup, Report: p.report} // nil lookup: the process environment
	tf := &TestFile{Path: name}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	docs := 0
	for {
		var doc yaml.Node
		err := dec.Decode(&doc)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			e := &Error{File: name}
			e.Line, e.Col, e.Msg = yamlnode.SyntaxError(data, err)
			p.errs = append(p.errs, e)
			break
		}
		if len(doc.Content) == 0 {
			continue
		}
		docs++
		root := yamlnode.Resolve(doc.Content[0])
		p.env(tf, root)
		p.yr.LookupEnv = tf.Lookup(lookup)
		p.document(tf, root)
	}
	if docs == 0 && len(p.errs) == 0 {
		p.errs = append(p.errs, &Error{File: name, Msg: "empty test file: want a tests: list"})
	}
	if len(p.errs) > 0 {
		slices.SortStableFunc(p.errs, func(a, b *Error) int {
			return cmp.Or(cmp.Compare(a.Line, b.Line), cmp.Compare(a.Col, b.Col))
		})
		return nil, p.errs
	}
	return tf, nil
}

type parser struct {
	name string
	errs Errors
	yr   yamlnode.Reader
}

func (p *parser) errorf(n *yaml.Node, test, format string, args ...any) {
	p.report(n, test, fmt.Sprintf(format, args...))
}

func (p *parser) report(n *yaml.Node, test, msg string) {
	e := &Error{File: p.name, Test: test, Msg: msg}
	if n != nil {
		e.Line, e.Col = n.Line, n.Column
	}
	p.errs = append(p.errs, e)
}

var (
	fileKeys     = []string{"tests", "rule_files", "env"}
	caseKeys     = []string{"name", "start", "timezone", "location", "messages", "until", "expect"}
	messageKeys  = []string{"topic", "payload", "at", "qos", "retain", "broker", "properties"}
	propertyKeys = []string{"user", "content_type", "response_topic", "correlation_data", "message_expiry", "payload_format"}
)

// env reads a test file's env: mapping of ${NAME} values (plain text: no
// ${…} inside).
func (p *parser) env(tf *TestFile, root *yaml.Node) {
	if root.Kind != yaml.MappingNode {
		return
	}
	for i := 0; i+1 < len(root.Content); i += 2 {
		if root.Content[i].Value != "env" {
			continue
		}
		v := yamlnode.Resolve(root.Content[i+1])
		if v.Kind != yaml.MappingNode {
			p.errorf(v, "", "env: must be a mapping of variable names to values, e.g. env: {SLACK_URL: \"https://hooks.example.com/x\"}, not %s", yamlnode.KindName(v))
			return
		}
		if tf.Env == nil {
			tf.Env = map[string]string{}
		}
		for j := 0; j+1 < len(v.Content); j += 2 {
			k, val := v.Content[j], yamlnode.Resolve(v.Content[j+1])
			if !yamlnode.IsIdent(k.Value) {
				p.errorf(k, "", "env: %q is not a variable name", k.Value)
				continue
			}
			if val.Kind != yaml.ScalarNode {
				p.errorf(val, "", "env.%s: must be a string, not %s", k.Value, yamlnode.KindName(val))
				continue
			}
			tf.Env[k.Value] = val.Value
		}
	}
}

func (p *parser) document(tf *TestFile, root *yaml.Node) {
	if root.Kind == yaml.ScalarNode && root.Tag == "!!null" {
		return
	}
	if root.Kind != yaml.MappingNode {
		p.errorf(root, "", "a test file is a mapping with a tests: list, not %s", yamlnode.KindName(root))
		return
	}
	found := false
	for _, kv := range p.yr.Pairs(root, "") {
		switch k := kv.Key.Value; {
		case k == "tests":
			found = true
			if kv.Value.Kind != yaml.SequenceNode {
				p.errorf(kv.Value, "", "tests: must be a list of test cases (- name: …, messages: …, expect: …), not %s", yamlnode.KindName(kv.Value))
				continue
			}
			seen := map[string]int{}
			for i, n := range kv.Value.Content {
				c := p.testCase(yamlnode.Resolve(n), i)
				if c == nil {
					continue
				}
				if line, ok := seen[c.Name]; ok {
					p.errorf(n, c.Name, "name: already used by the test at line %d", line)
					continue
				}
				seen[c.Name] = c.Line
				tf.Cases = append(tf.Cases, c)
			}
		case k == "rule_files":
			for _, n := range p.stringList(kv.Value, "", "rule_files") {
				s, ok := p.yr.Str(n, "", "rule_files")
				if !ok {
					continue
				}
				if !filepath.IsAbs(s) {
					s = filepath.Join(filepath.Dir(p.name), s)
				}
				tf.RuleFiles = append(tf.RuleFiles, s)
			}
		case k == "env":
			// Read first, by env.
		case strings.HasPrefix(k, "x-"):
			// An extension field, for YAML anchors the cases share.
		default:
			p.errorf(kv.Key, "", "unknown key %q%s", k, yamlnode.Suggest(k, fileKeys))
		}
	}
	if !found {
		p.errorf(root, "", "no tests: list")
	}
}

// testCase parses the i-th case; nil when it has errors (recorded).
func (p *parser) testCase(n *yaml.Node, i int) *Case {
	before := len(p.errs)
	label := fmt.Sprintf("#%d", i+1)
	if n.Kind != yaml.MappingNode {
		p.errorf(n, "", "tests[%d]: a test is a mapping with name, messages and expect, not %s", i, yamlnode.KindName(n))
		return nil
	}
	c := &Case{File: p.name, Line: n.Line}
	// The name first, so every other error can say which case it is about.
	for j := 0; j+1 < len(n.Content); j += 2 {
		if n.Content[j].Value == "name" {
			if s, ok := p.yr.Str(yamlnode.Resolve(n.Content[j+1]), label, "name"); ok {
				c.Name, label = s, s
			}
			break
		}
	}
	kvs := p.yr.Pairs(n, label)
	if c.Name == "" && len(p.errs) == before {
		p.errorf(n, label, "name: missing (every test needs a name, shown when it fails)")
	}
	var until *yaml.Node
	for _, kv := range kvs {
		switch kv.Key.Value {
		case "name":
		case "messages":
			if kv.Value.Kind != yaml.SequenceNode || len(kv.Value.Content) == 0 {
				p.errorf(kv.Value, label, "messages: must be a list of at least one message ({topic: …, payload: …, at: …}), not %s", yamlnode.KindName(kv.Value))
				continue
			}
			var last time.Duration
			for j, mn := range kv.Value.Content {
				if m, ok := p.message(yamlnode.Resolve(mn), label, j, last); ok {
					c.Messages = append(c.Messages, m)
					last = m.At
				}
			}
		case "expect":
			if kv.Value.Kind == yaml.ScalarNode && kv.Value.Tag == "!!null" {
				continue // expect: with nothing: no action
			}
			if kv.Value.Kind != yaml.SequenceNode {
				p.errorf(kv.Value, label, "expect: must be a list of expected actions ({rule: …, publish: {…}}), not %s", yamlnode.KindName(kv.Value))
				continue
			}
			for j, en := range kv.Value.Content {
				if e, ok := p.expectation(yamlnode.Resolve(en), label, j); ok {
					c.Expect = append(c.Expect, e)
				}
			}
		case "until":
			until = kv.Value
			c.Until, _ = p.yr.Duration(kv.Value, label, "until", true)
		case "timezone":
			if s, ok := p.yr.Str(kv.Value, label, "timezone"); ok {
				loc, err := rules.LoadZone(s)
				if err != nil {
					p.errorf(kv.Value, label, "timezone: %v", err)
				}
				c.TimeZone = loc
			}
		case "location":
			c.Location = p.location(kv.Value, label)
		case "start":
			if s, ok := p.yr.Str(kv.Value, label, "start"); ok {
				t, err := time.Parse(time.RFC3339Nano, s)
				if err != nil {
					p.errorf(kv.Value, label, "start: %q is not an RFC 3339 time (write 2026-01-01T23:30:00+01:00)", s)
				}
				c.Start = t
			}
		default:
			p.errorf(kv.Key, label, "unknown key %q%s", kv.Key.Value, yamlnode.Suggest(kv.Key.Value, caseKeys))
		}
	}
	if !hasKey(kvs, "messages") && !hasKey(kvs, "until") {
		p.errorf(n, label, "messages: missing (the messages to feed, in order; a case of timed rules alone may give until: instead)")
	}
	if len(p.errs) > before {
		return nil
	}
	var last time.Duration
	if len(c.Messages) > 0 {
		last = c.Messages[len(c.Messages)-1].At
	}
	switch {
	case until == nil:
		c.Until = last
	case c.Until < last:
		p.errorf(until, label, "until: %s is before the last message (at: %s)", FormatDuration(c.Until), FormatDuration(last))
		return nil
	}
	return c
}

func (p *parser) message(n *yaml.Node, test string, j int, last time.Duration) (Message, bool) {
	before := len(p.errs)
	m := Message{Line: n.Line, At: last}
	where := fmt.Sprintf("messages[%d]", j)
	if n.Kind != yaml.MappingNode {
		p.errorf(n, test, "%s: a message is a mapping with topic and payload (and at, qos, retain), not %s", where, yamlnode.KindName(n))
		return m, false
	}
	kvs := p.yr.Pairs(n, test)
	for _, kv := range kvs {
		switch kv.Key.Value {
		case "topic":
			if s, ok := p.yr.Str(kv.Value, test, where+".topic"); ok {
				if err := topic.ValidateName(s); err != nil {
					p.errorf(kv.Value, test, "%s.topic: %v", where, err)
				}
				m.Topic = s
			}
		case "payload":
			if v, ok := p.value(kv.Value, test, where+".payload"); ok {
				m.Payload = []byte(v.Text) // a mapping or a list is sent as compact JSON
			}
		case "at":
			if d, ok := p.yr.Duration(kv.Value, test, where+".at", true); ok {
				if d < last {
					p.errorf(kv.Value, test, "%s.at: %s is before the previous message (at: %s); messages are fed in order", where, FormatDuration(d), FormatDuration(last))
				}
				m.At = d
			}
		case "qos":
			q, _ := p.yr.Int(kv.Value, test, where+".qos", 0, 2)
			m.QoS = byte(q)
		case "retain":
			m.Retain, _ = p.yr.Bool(kv.Value, test, where+".retain")
		case "broker":
			if s, ok := p.yr.Str(kv.Value, test, where+".broker"); ok && s != "default" {
				m.Broker = s
			}
		case "properties":
			m.Properties = p.properties(kv.Value, test, where+".properties")
		default:
			p.errorf(kv.Key, test, "%s: unknown key %q%s", where, kv.Key.Value, yamlnode.Suggest(kv.Key.Value, messageKeys))
		}
	}
	if !hasKey(kvs, "topic") {
		p.errorf(n, test, "%s: topic missing", where)
	}
	return m, len(p.errs) == before
}

// maxExpiry is the largest message expiry interval (seconds), a variable
// so that it converts to int at run time (32-bit ints hold less).
var maxExpiry uint64 = math.MaxUint32

// properties reads a message's MQTT 5 properties: user (a mapping of
// names to values), content_type, response_topic, correlation_data,
// message_expiry (seconds) and payload_format (0 or 1), as the environment's
// properties name them (docs/mqtt5.md).
func (p *parser) properties(n *yaml.Node, test, where string) *actions.Properties {
	if n.Kind != yaml.MappingNode {
		p.errorf(n, test, "%s: must be a mapping of %s, not %s", where, strings.Join(propertyKeys, ", "), yamlnode.KindName(n))
		return nil
	}
	pr := &actions.Properties{}
	for _, kv := range p.yr.Pairs(n, test) {
		at := where + "." + kv.Key.Value
		switch kv.Key.Value {
		case "user":
			if kv.Value.Kind != yaml.MappingNode {
				p.errorf(kv.Value, test, "%s: must be a mapping of names to values, not %s", at, yamlnode.KindName(kv.Value))
				continue
			}
			for _, u := range p.yr.Pairs(kv.Value, test) {
				if v, ok := p.yr.Str(u.Value, test, at+"."+u.Key.Value); ok {
					pr.User = append(pr.User, actions.UserProperty{Name: u.Key.Value, Value: v})
				}
			}
		case "content_type":
			pr.ContentType, _ = p.yr.Str(kv.Value, test, at)
		case "response_topic":
			if s, ok := p.yr.Str(kv.Value, test, at); ok {
				if err := topic.ValidateName(s); err != nil {
					p.errorf(kv.Value, test, "%s: %v", at, err)
				}
				pr.ResponseTopic = s
			}
		case "correlation_data":
			if s, ok := p.yr.Str(kv.Value, test, at); ok {
				pr.CorrelationData = []byte(s)
			}
		case "message_expiry":
			if v, ok := p.yr.Int(kv.Value, test, at, 0, int(min(maxExpiry, uint64(math.MaxInt)))); ok {
				e := uint32(v)
				pr.MessageExpiry = &e
			}
		case "payload_format":
			if v, ok := p.yr.Int(kv.Value, test, at, 0, 1); ok {
				f := byte(v)
				pr.PayloadFormat = &f
			}
		default:
			hint := yamlnode.Suggest(kv.Key.Value, propertyKeys)
			if hint == "" {
				hint = " (properties are " + strings.Join(propertyKeys, ", ") + ")"
			}
			p.errorf(kv.Key, test, "%s: unknown key %q%s", where, kv.Key.Value, hint)
		}
	}
	return pr
}

// location reads a case's location: {latitude, longitude}.
func (p *parser) location(n *yaml.Node, test string) *sun.Location {
	if n.Kind != yaml.MappingNode {
		p.errorf(n, test, "location: must be a mapping of latitude and longitude, e.g. {latitude: 52.52, longitude: 13.40}, not %s", yamlnode.KindName(n))
		return nil
	}
	var loc sun.Location
	var lat, lon bool
	for _, kv := range p.yr.Pairs(n, test) {
		s, ok := p.yr.Str(kv.Value, test, "location."+kv.Key.Value)
		if !ok {
			continue
		}
		f, err := strconv.ParseFloat(s, 64)
		switch kv.Key.Value {
		case "latitude":
			loc.Latitude, lat = f, err == nil
		case "longitude":
			loc.Longitude, lon = f, err == nil
		default:
			p.errorf(kv.Key, test, "location: unknown key %q%s", kv.Key.Value, yamlnode.Suggest(kv.Key.Value, []string{"latitude", "longitude"}))
			continue
		}
		if err != nil {
			p.errorf(kv.Value, test, "location.%s: %q is not a number of degrees", kv.Key.Value, s)
		}
	}
	if !lat || !lon {
		p.errorf(n, test, "location: give both latitude and longitude")
		return nil
	}
	if err := loc.Validate(); err != nil {
		p.errorf(n, test, "location: %v", err)
		return nil
	}
	return &loc
}

func (p *parser) expectation(n *yaml.Node, test string, j int) (Expectation, bool) {
	before := len(p.errs)
	e := Expectation{Line: n.Line, Col: n.Column}
	where := fmt.Sprintf("expect[%d]", j)
	kindNames := actions.NameList()
	if n.Kind != yaml.MappingNode {
		p.errorf(n, test, "%s: an expected action is a mapping with rule and one of %s, not %s", where, kindNames, yamlnode.KindName(n))
		return e, false
	}
	expectKeys := append([]string{"rule", "at", "on_clear"}, actions.Names()...)
	kinds := 0
	for _, kv := range p.yr.Pairs(n, test) {
		switch k := kv.Key.Value; k {
		case "rule":
			e.Rule, _ = p.yr.Str(kv.Value, test, where+".rule")
		case "at":
			if d, ok := p.yr.Duration(kv.Value, test, where+".at", true); ok {
				e.At = &d
			}
		case "on_clear":
			if b, ok := p.yr.Bool(kv.Value, test, where+".on_clear"); ok {
				e.OnClear = &b
			}
		default:
			kind := actions.Lookup(k)
			if kind == nil {
				p.errorf(kv.Key, test, "%s: unknown key %q%s", where, k, yamlnode.Suggest(k, expectKeys))
				continue
			}
			kinds++
			e.Kind = kind
			e.Fields = p.expectFields(kind, kv.Value, test, where+"."+k)
		}
	}
	if kinds != 1 {
		p.errorf(n, test, "%s: give exactly one of %s (found %d)", where, kindNames, kinds)
	}
	return e, len(p.errs) == before
}

// expectFields reads the fields an expectation gives for an action of
// kind k: nothing (any such action), its shorthand's text, or a mapping
// of the kind's keys.
func (p *parser) expectFields(k *actions.Kind, v *yaml.Node, test, where string) []ExpectedField {
	if v.Kind == yaml.ScalarNode && v.Tag == "!!null" {
		return nil // publish: with nothing: any publish
	}
	if v.Kind == yaml.ScalarNode && k.Shorthand != "" {
		if s, ok := p.yr.Str(v, test, where); ok {
			return []ExpectedField{{Name: k.Shorthand, Value: Value{Text: s}, Line: v.Line}}
		}
		return nil
	}
	if v.Kind != yaml.MappingNode {
		p.errorf(v, test, "%s: must be a mapping of %s (the fields to compare), not %s", where, strings.Join(k.Keys, ", "), yamlnode.KindName(v))
		return nil
	}
	var out []ExpectedField
	for _, kv := range p.yr.Pairs(v, test) {
		name := kv.Key.Value
		if !slices.Contains(k.Keys, name) {
			hint := yamlnode.Suggest(name, k.Keys)
			if meant, ok := k.Synonyms[name]; ok && hint == "" {
				hint = fmt.Sprintf(" (did you mean %q?)", meant)
			}
			p.errorf(kv.Key, test, "%s: unknown key %q%s", where, name, hint)
			continue
		}
		val, ok := p.value(kv.Value, test, where+"."+name)
		if !ok {
			continue
		}
		f := ExpectedField{Name: name, Value: val, Line: kv.Key.Line}
		f.Sub = p.subFields(kv.Value, test, where, name)
		out = append(out, f)
	}
	return out
}

// subFields returns the entries of a mapping value by their dotted names
// ("headers.Authorization", "properties.user.source"), each with its own
// entries when it is a mapping too; nil for any other value.
func (p *parser) subFields(n *yaml.Node, test, where, name string) []ExpectedField {
	if n.Kind != yaml.MappingNode {
		return nil
	}
	var out []ExpectedField
	for _, sub := range p.yr.Pairs(n, test) {
		subName := name + "." + sub.Key.Value
		if sv, ok := p.value(sub.Value, test, where+"."+subName); ok {
			out = append(out, ExpectedField{Name: subName, Value: sv, Line: sub.Key.Line,
				Sub: p.subFields(sub.Value, test, where, subName)})
		}
	}
	return out
}

// value parses a payload or body: a scalar is its text (empty for null); a
// mapping or a list is JSON.
func (p *parser) value(n *yaml.Node, test, key string) (Value, bool) {
	switch n.Kind {
	case yaml.ScalarNode:
		if n.Tag == "!!null" {
			return Value{}, true
		}
		s, ok := p.yr.Str(n, test, key)
		return Value{Text: s}, ok
	case yaml.MappingNode, yaml.SequenceNode:
		var buf bytes.Buffer
		if !p.appendJSON(&buf, n, test, key) {
			return Value{}, false
		}
		var v any
		if err := json.Unmarshal(buf.Bytes(), &v); err != nil {
			p.errorf(n, test, "%s: %v", key, err)
			return Value{}, false
		}
		return Value{Text: buf.String(), JSON: v, IsJSON: true}, true
	}
	p.errorf(n, test, "%s: must be text, a mapping or a list, not %s", key, yamlnode.KindName(n))
	return Value{}, false
}

// appendJSON writes a YAML node as compact JSON, mapping keys in written
// order.
func (p *parser) appendJSON(buf *bytes.Buffer, n *yaml.Node, test, key string) bool {
	n = yamlnode.Resolve(n)
	switch n.Kind {
	case yaml.MappingNode:
		buf.WriteByte('{')
		for i, kv := range p.yr.Pairs(n, test) {
			if i > 0 {
				buf.WriteByte(',')
			}
			k, _ := json.Marshal(kv.Key.Value)
			buf.Write(k)
			buf.WriteByte(':')
			if !p.appendJSON(buf, kv.Value, test, key) {
				return false
			}
		}
		buf.WriteByte('}')
	case yaml.SequenceNode:
		buf.WriteByte('[')
		for i, c := range n.Content {
			if i > 0 {
				buf.WriteByte(',')
			}
			if !p.appendJSON(buf, c, test, key) {
				return false
			}
		}
		buf.WriteByte(']')
	case yaml.ScalarNode:
		switch n.Tag {
		case "!!null":
			buf.WriteString("null")
		case "!!bool":
			var b bool
			if err := n.Decode(&b); err != nil {
				p.errorf(n, test, "%s: %v", key, err)
				return false
			}
			buf.WriteString(strconv.FormatBool(b))
		case "!!int", "!!float":
			var f float64
			if err := n.Decode(&f); err != nil || math.IsInf(f, 0) || math.IsNaN(f) {
				p.errorf(n, test, "%s: %q is not a JSON number", key, n.Value)
				return false
			}
			b, _ := json.Marshal(f)
			buf.Write(b)
		default:
			s, ok := p.yr.Str(n, test, key)
			if !ok {
				return false
			}
			b, _ := json.Marshal(s)
			buf.Write(b)
		}
	default:
		p.errorf(n, test, "%s: cannot be written as JSON", key)
		return false
	}
	return true
}

func (p *parser) stringList(n *yaml.Node, test, key string) []*yaml.Node {
	switch n.Kind {
	case yaml.SequenceNode:
		var out []*yaml.Node
		for _, c := range n.Content {
			out = append(out, yamlnode.Resolve(c))
		}
		return out
	case yaml.ScalarNode:
		return []*yaml.Node{n}
	}
	p.errorf(n, test, "%s: must be a path or a list of paths, not %s", key, yamlnode.KindName(n))
	return nil
}

func hasKey(kvs []yamlnode.Pair, key string) bool {
	for _, kv := range kvs {
		if kv.Key.Value == key {
			return true
		}
	}
	return false
}
