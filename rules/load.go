package rules

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/mqtt-rules/mqtt-rules/actions"
	"github.com/mqtt-rules/mqtt-rules/internal/sun"
	"github.com/mqtt-rules/mqtt-rules/internal/topic"
	"github.com/mqtt-rules/mqtt-rules/internal/window"
	"github.com/mqtt-rules/mqtt-rules/internal/yamlnode"
)

// Loader loads rule sets. It keeps the programs compiled by its last load,
// so that reloading a large set recompiles only the expressions that
// changed. A Loader is not safe for concurrent use.
type Loader struct {
	// LookupEnv resolves ${NAME} references; nil means os.LookupEnv.
	LookupEnv func(name string) (string, bool)

	// Allow lists the flags given that unlock gated action kinds (see
	// actions.Kind.Gate), e.g. "--allow-exec".
	Allow []string

	// Location is where the engine is (--latitude, --longitude); a rule
	// with a sun trigger does not load without one, unless NoLocationOK.
	Location *sun.Location
	// NoLocationOK loads sun rules without a Location: a dry run, where
	// they simply do not fire (a test case may give its own location).
	NoLocationOK bool

	// Brokers are the names of the config's brokers besides "default"
	// (docs/brokers.md); a rule or publish naming another is a load error,
	// unless AnyBroker: a dry run, which connects to none.
	Brokers   []string
	AnyBroker bool

	c *compiler
}

// NewLoader returns a Loader that reads the process environment.
func NewLoader() *Loader {
	return &Loader{c: newCompiler()}
}

// Load loads every rule file under paths into one RuleSet (see Loader.Load).
func Load(paths ...string) (*RuleSet, error) {
	return NewLoader().Load(paths...)
}

// Load reads every rule file under paths (docs/rules.md: files, or directories
// searched recursively following symlinks, skipping names that start with "."
// and *_test.yaml files), and compiles them into one RuleSet. On any problem
// it returns a nil set and an Errors holding every problem found.
func (l *Loader) Load(paths ...string) (*RuleSet, error) {
	files, err := Files(paths...)
	if err != nil {
		return nil, err
	}
	sources := make([]Source, 0, len(files))
	var errs Errors
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			errs = append(errs, &Error{File: f, Msg: readError(err)})
			continue
		}
		sources = append(sources, Source{Name: f, Data: b})
	}
	rs, err := l.LoadSources(sources...)
	if err != nil {
		var es Errors
		if errors.As(err, &es) {
			errs = append(errs, es...)
		}
	}
	if len(errs) > 0 {
		errs.sort()
		return nil, errs
	}
	return rs, nil
}

// Source is the content of one rule file.
type Source struct {
	Name string // the file name errors are reported with
	Data []byte
}

// LoadSources compiles rule files already in memory, in the order given.
func (l *Loader) LoadSources(sources ...Source) (*RuleSet, error) {
	if l.c == nil {
		l.c = newCompiler()
	}
	l.c.begin()
	defer l.c.end()
	lookup := l.LookupEnv
	if lookup == nil {
		lookup = os.LookupEnv
	}
	rs := &RuleSet{byName: map[string]*Rule{}}
	var errs Errors
	seen := map[string]string{} // rule name -> where first defined
	for _, src := range sources {
		fl := &fileLoader{name: src.Name, src: src.Data, c: l.c, errs: &errs, allow: l.Allow, location: l.Location, noLocationOK: l.NoLocationOK, brokers: l.Brokers, anyBroker: l.AnyBroker}
		fl.yr = yamlnode.Reader{LookupEnv: fl.lookup(lookup), Report: fl.report}
		before := len(errs)
		loaded := fl.load()
		env := fl.envValues()
		for _, e := range errs[before:] {
			// An error quotes what it found, which may be a ${NAME} value:
			// errors are logged and shown on the status page.
			e.Msg, e.Rule = actions.Mask(e.Msg, env), actions.Mask(e.Rule, env)
		}
		for _, r := range loaded {
			r.EnvValues = env
			if prev, ok := seen[r.Name]; ok {
				errs = append(errs, &Error{File: r.File, Line: r.nameLine, Col: r.nameCol, Rule: r.Name,
					Msg: fmt.Sprintf("name: already used by the rule at %s", prev)})
				continue
			}
			seen[r.Name] = fmt.Sprintf("%s:%d", r.File, r.Line)
			r.Index = len(rs.Rules)
			rs.Rules = append(rs.Rules, r)
			rs.byName[r.Name] = r
		}
		rs.Files = append(rs.Files, src.Name)
		rs.Remember = append(rs.Remember, fl.remember...)
	}
	if len(errs) > 0 {
		errs.sort()
		return nil, errs
	}
	// Disabled rules are indexed (and subscribed) too: control can enable
	// them at run time (docs/homeassistant.md); the engine skips them.
	for _, r := range rs.Rules {
		for i, f := range r.Filters {
			rs.index.Add(f, ref{rule: int32(r.Index), filter: int32(i)})
		}
	}
	rs.findLoops()
	rs.collectWorld()
	return rs, nil
}

// collectWorld gathers what the set remembers: the remember: lists and the
// literal arguments of state() and states().
func (rs *RuleSet) collectWorld() {
	rs.remember = map[string][]string{"": rs.Remember}
	rs.states = map[string][]string{}
	for _, r := range rs.Rules {
		for _, w := range r.world {
			if w.Filter {
				rs.states[r.Broker] = append(rs.states[r.Broker], w.Arg)
			}
			rs.remember[r.Broker] = append(rs.remember[r.Broker], w.Arg)
		}
	}
	for b, fs := range rs.remember {
		for i, f := range fs {
			fs[i] = mqttFilter(f)
		}
		slices.Sort(fs)
		rs.remember[b] = slices.Compact(fs)
	}
	for b, fs := range rs.states {
		slices.Sort(fs)
		rs.states[b] = slices.Compact(fs)
	}
	rs.Remember, rs.StatesFilters = rs.remember[""], rs.states[""]
}

// mqttFilter returns a filter as subscribed: captures become wildcards.
func mqttFilter(s string) string {
	f, err := topic.Parse(s)
	if err != nil {
		return s // checked at load
	}
	return f.MQTT
}

func readError(err error) string {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err.Error()
	}
	return err.Error()
}

// Files lists the rule files under paths, sorted, each once: files named
// directly (whatever their extension, unless they are test files), and the
// *.yaml / *.yml files found in directories (see FindFiles).
func Files(paths ...string) ([]string, error) {
	return FindFiles("rules path", paths, func(name string, named bool) bool {
		if named {
			return !IsTestFile(name)
		}
		return IsRuleFile(name)
	})
}

// FindFiles lists the files under paths that keep accepts, sorted within
// each path, each file once even when reached twice. A path that is a file
// is kept when keep(name, true) says so; a directory is searched
// recursively, following symlinks (a cycle is walked once) and skipping
// entries whose name starts with "." — which also keeps a Kubernetes
// ConfigMap's ..data and ..2026_… folders from counting twice — and its
// files are kept when keep(name, false) says so. what names the paths in
// errors ("rules path").
func FindFiles(what string, paths []string, keep func(name string, named bool) bool) ([]string, error) {
	var out []string
	seen := map[string]bool{}
	add := func(p string) {
		real, err := filepath.EvalSymlinks(p)
		if err != nil {
			real = p
		}
		if !seen[real] {
			seen[real] = true
			out = append(out, p)
		}
	}
	for _, p := range paths {
		st, err := os.Stat(p)
		if err != nil {
			return nil, fmt.Errorf("%s %s: %s", what, p, readError(err))
		}
		if !st.IsDir() {
			if keep(filepath.Base(p), true) {
				add(p)
			}
			continue
		}
		w := walker{what: what, keep: keep, visited: map[string]bool{}}
		if err := w.walk(p); err != nil {
			return nil, err
		}
		slices.Sort(w.files)
		for _, f := range w.files {
			add(f)
		}
	}
	return out, nil
}

type walker struct {
	what    string
	keep    func(name string, named bool) bool
	visited map[string]bool // real paths of directories walked: breaks symlink cycles
	files   []string
}

func (w *walker) walk(dir string) error {
	real, err := filepath.EvalSymlinks(dir)
	if err != nil {
		return fmt.Errorf("%s %s: %s", w.what, dir, readError(err))
	}
	if w.visited[real] {
		return nil
	}
	w.visited[real] = true
	entries, err := os.ReadDir(dir)
	if err != nil {
		return fmt.Errorf("%s %s: %s", w.what, dir, readError(err))
	}
	for _, e := range entries {
		name := e.Name()
		if strings.HasPrefix(name, ".") {
			continue
		}
		p := filepath.Join(dir, name)
		st, err := os.Stat(p) // follows symlinks
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				continue // a dangling symlink, or a file removed meanwhile
			}
			return fmt.Errorf("%s %s: %s", w.what, p, readError(err))
		}
		switch {
		case st.IsDir():
			if err := w.walk(p); err != nil {
				return err
			}
		case w.keep(name, false):
			w.files = append(w.files, p)
		}
	}
	return nil
}

// IsRuleFile reports whether a file name is a rule file: *.yaml or *.yml,
// not a rule test file.
func IsRuleFile(name string) bool {
	ext := filepath.Ext(name)
	return (ext == ".yaml" || ext == ".yml") && !IsTestFile(name)
}

// IsTestFile reports whether a file name is a rule test file (docs/testing.md).
func IsTestFile(name string) bool {
	return strings.HasSuffix(name, "_test.yaml") || strings.HasSuffix(name, "_test.yml")
}

// fileLoader walks the YAML nodes of one file.
type fileLoader struct {
	name         string
	src          []byte
	lines        []string
	c            *compiler
	errs         *Errors
	yr           yamlnode.Reader
	env          map[string]struct{} // values taken from the environment (see Rule.EnvValues)
	allow        []string            // see Loader.Allow
	location     *sun.Location       // see Loader.Location
	noLocationOK bool                // see Loader.NoLocationOK
	brokers      []string            // see Loader.Brokers
	anyBroker    bool                // see Loader.AnyBroker

	remember []string // the filters of the file's remember: lists
}

// MinEnvValueLen is the shortest environment value Rule.EnvValues keeps:
// shorter ones (a port, "on", a room name) would mask ordinary words.
const MinEnvValueLen = 8

// lookup resolves ${NAME} with l and records the value.
func (fl *fileLoader) lookup(l func(string) (string, bool)) func(string) (string, bool) {
	return func(name string) (string, bool) {
		v, ok := l(name)
		if ok && len(v) >= MinEnvValueLen && !PlainURL(name, v) {
			if fl.env == nil {
				fl.env = map[string]struct{}{}
			}
			fl.env[v] = struct{}{}
		}
		return v, ok
	}
}

// PlainURL reports whether an environment value is a URL that is no
// secret, so that logs, the status page and dry runs show it rather than
// [REDACTED] (docs/rules.md, "Environment variables"): its variable's name
// does not look secret (token, key, password, …), and it has no user or
// password, no query, no path segment that looks like a token (16
// characters or more mixing letters and digits, or 24 or more) and no
// path segment or host label "hook(s)" or "webhook(s)".
func PlainURL(name, value string) bool {
	if actions.LooksSecret(name) {
		return false
	}
	u, err := url.Parse(value)
	if err != nil || u.Scheme == "" || u.Host == "" || u.User != nil || u.RawQuery != "" || u.Fragment != "" {
		return false
	}
	for _, seg := range strings.Split(u.Path, "/") {
		if tokenLike(seg) || hookWord(seg) {
			return false
		}
	}
	for _, label := range strings.Split(u.Hostname(), ".") {
		if hookWord(label) {
			return false
		}
	}
	return true
}

// hookWord reports whether a path segment or host label says the URL is
// an incoming webhook (hooks.example.com/services/…, /api/webhooks/…),
// whose path is its secret however ordinary it looks.
func hookWord(s string) bool {
	switch strings.ToLower(s) {
	case "hook", "hooks", "webhook", "webhooks":
		return true
	}
	return false
}

func tokenLike(s string) bool {
	if len(s) >= 24 {
		return true
	}
	if len(s) < 16 {
		return false
	}
	letters, digits := false, false
	for _, c := range s {
		switch {
		case c >= '0' && c <= '9':
			digits = true
		case c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z':
			letters = true
		}
	}
	return letters && digits
}

// envValues returns the recorded values, longest first.
func (fl *fileLoader) envValues() []string {
	if len(fl.env) == 0 {
		return nil
	}
	out := make([]string, 0, len(fl.env))
	for v := range fl.env {
		out = append(out, v)
	}
	slices.SortFunc(out, func(a, b string) int {
		if len(a) != len(b) {
			return len(b) - len(a)
		}
		return strings.Compare(a, b)
	})
	return out
}

func (fl *fileLoader) load() []*Rule {
	dec := yaml.NewDecoder(bytes.NewReader(fl.src))
	var out []*Rule
	for {
		var doc yaml.Node
		err := dec.Decode(&doc)
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			e := &Error{File: fl.name}
			e.Line, e.Col, e.Msg = yamlnode.SyntaxError(fl.src, err)
			*fl.errs = append(*fl.errs, e)
			return nil
		}
		if len(doc.Content) == 0 {
			continue
		}
		out = append(out, fl.document(yamlnode.Resolve(doc.Content[0]))...)
	}
}

func (fl *fileLoader) errorf(n *yaml.Node, rule, format string, args ...any) {
	fl.report(n, rule, fmt.Sprintf(format, args...))
}

func (fl *fileLoader) report(n *yaml.Node, rule, msg string) {
	e := &Error{File: fl.name, Rule: rule, Msg: msg}
	if n != nil {
		e.Line, e.Col = n.Line, n.Column
	}
	*fl.errs = append(*fl.errs, e)
}

func (fl *fileLoader) document(root *yaml.Node) []*Rule {
	if root.Kind == yaml.ScalarNode && root.Tag == "!!null" {
		return nil // an empty document
	}
	if root.Kind != yaml.MappingNode {
		fl.errorf(root, "", "a rule file is a mapping with a rules: list, not %s", yamlnode.KindName(root))
		return nil
	}
	var out []*Rule
	found := false
	for _, kv := range fl.yr.Pairs(root, "") {
		switch kv.Key.Value {
		case "rules":
			found = true
			if kv.Value.Kind == yaml.ScalarNode && kv.Value.Tag == "!!null" {
				continue // rules: with nothing yet
			}
			if kv.Value.Kind != yaml.SequenceNode {
				fl.errorf(kv.Value, "", "rules: must be a list of rules, not %s", yamlnode.KindName(kv.Value))
				continue
			}
			for i, n := range kv.Value.Content {
				if r := fl.rule(yamlnode.Resolve(n), i); r != nil {
					out = append(out, r)
				}
			}
		case "remember":
			fl.rememberList(kv.Value)
		default:
			if strings.HasPrefix(kv.Key.Value, "x-") {
				continue // an extension field, for YAML anchors shared by rules
			}
			fl.errorf(kv.Key, "", "unknown key %q%s", kv.Key.Value, yamlnode.Suggest(kv.Key.Value, []string{"rules", "remember"}))
		}
	}
	if !found {
		fl.errorf(root, "", "no rules: list")
	}
	return out
}

// rememberList reads a file's remember: list of topic filters whose latest
// messages state() and states() read (docs/world.md).
func (fl *fileLoader) rememberList(v *yaml.Node) {
	if v.Kind == yaml.ScalarNode && v.Tag == "!!null" {
		return
	}
	if v.Kind != yaml.SequenceNode {
		fl.errorf(v, "", "remember: must be a list of topic filters, e.g. [zigbee2mqtt/+/contact, home/mode], not %s", yamlnode.KindName(v))
		return
	}
	for i, n := range v.Content {
		n = yamlnode.Resolve(n)
		s, ok := fl.yr.Str(n, "", fmt.Sprintf("remember[%d]", i))
		if !ok {
			continue
		}
		f, err := topic.Parse(s)
		if err != nil {
			fl.errorf(n, "", "remember[%d]: %v", i, err)
			continue
		}
		if len(f.Captures()) > 0 {
			fl.errorf(n, "", "remember[%d]: %q: captures name levels of a rule's topic; write + or # here", i, s)
			continue
		}
		fl.remember = append(fl.remember, f.MQTT)
	}
}

// windows reads a rule's windows: a mapping of names to {value, over,
// max_samples} (docs/world.md, "Windows").
func (fl *fileLoader) windows(r *Rule, v *yaml.Node, label string) {
	if v.Kind != yaml.MappingNode {
		fl.errorf(v, label, "windows: must be a mapping of names to {value, over}, e.g. windows: {power: {value: payload.power, over: 10m}}, not %s", yamlnode.KindName(v))
		return
	}
	before := len(*fl.errs)
	keys := []string{"value", "over", "max_samples"}
	for _, kv := range fl.yr.Pairs(v, label) {
		name := kv.Key.Value
		where := "windows." + name
		if !yamlnode.IsIdent(name) {
			fl.errorf(kv.Key, label, "%s: a window name is an identifier (letters, digits, _), used as windows.%s", where, "NAME")
			continue
		}
		if kv.Value.Kind != yaml.MappingNode {
			fl.errorf(kv.Value, label, "%s: must be a mapping of value, over and max_samples, not %s", where, yamlnode.KindName(kv.Value))
			continue
		}
		w := WindowSpec{Name: name, MaxSamples: window.DefaultMaxSamples}
		var valueNode *yaml.Node
		for _, p := range fl.yr.Pairs(kv.Value, label) {
			switch p.Key.Value {
			case "value":
				valueNode = p.Value
			case "over":
				w.Over, _ = fl.yr.Duration(p.Value, label, where+".over", false)
			case "max_samples":
				w.MaxSamples, _ = fl.yr.Int(p.Value, label, where+".max_samples", 1, window.MaxSamplesLimit)
			default:
				fl.errorf(p.Key, label, "%s: unknown key %q%s", where, p.Key.Value, yamlnode.Suggest(p.Key.Value, keys))
			}
		}
		if valueNode == nil {
			fl.errorf(kv.Value, label, "%s: value missing (an expression giving a number, e.g. payload.power)", where)
			continue
		}
		if w.Over == 0 && len(*fl.errs) == before {
			fl.errorf(kv.Value, label, "%s: over missing (how far back the window reaches, e.g. 10m)", where)
			continue
		}
		// A value reads the message (and prev), not the windows it feeds.
		w.Value = fl.expression(valueNode, scope{captures: r.Captures}, label, where+".value", false)
		r.Windows = append(r.Windows, w)
	}
}

// Keys returns the keys a rule takes, in the order docs list them.
func Keys() []string { return slices.Clone(ruleKeys) }

var ruleKeys = []string{"name", "description", "broker", "topic", "schedule", "sun", "timezone", "when", "key", "clear_when",
	"for", "cooldown", "absent", "windows", "repeat", "max_repeats", "mode", "max_queued", "enabled", "actions", "on_clear"}

var validName = regexp.MustCompile(`^[A-Za-z0-9_.-]+$`)

// rule compiles the i-th rule of a file; nil when it has errors (recorded).
func (fl *fileLoader) rule(n *yaml.Node, i int) *Rule {
	before := len(*fl.errs)
	if n.Kind != yaml.MappingNode {
		fl.errorf(n, "", "rules[%d]: a rule is a mapping with name, topic and actions, not %s", i, yamlnode.KindName(n))
		return nil
	}
	r := &Rule{File: fl.name, Line: n.Line, Enabled: true}
	// The name first, so every other error can say which rule it is about.
	label := fmt.Sprintf("#%d", i+1)
	for j := 0; j+1 < len(n.Content); j += 2 {
		if n.Content[j].Value == "name" {
			v := yamlnode.Resolve(n.Content[j+1])
			if s, ok := fl.yr.Str(v, label, "name"); ok {
				if !validName.MatchString(s) {
					fl.errorf(v, label, "name: %q may hold only letters, digits, _, . and -", s)
				} else {
					r.Name, label = s, s
					r.nameLine, r.nameCol = v.Line, v.Column
				}
			}
			break
		}
	}
	kvs := fl.yr.Pairs(n, label)
	if r.Name == "" && len(*fl.errs) == before {
		fl.errorf(n, label, "name: missing (every rule needs a unique name)")
	}
	r.NameValue = r.Name

	byKey := map[string]*yaml.Node{}
	for _, kv := range kvs {
		if !slices.Contains(ruleKeys, kv.Key.Value) {
			fl.errorf(kv.Key, label, "unknown key %q%s", kv.Key.Value, yamlnode.Suggest(kv.Key.Value, ruleKeys))
			continue
		}
		byKey[kv.Key.Value] = kv.Value
	}

	if v := byKey["description"]; v != nil {
		r.Description, _ = fl.yr.Str(v, label, "description")
	}
	if v := byKey["broker"]; v != nil {
		if s, ok := fl.yr.Str(v, label, "broker"); ok {
			switch {
			case s == "default":
			case fl.anyBroker || slices.Contains(fl.brokers, s):
				r.Broker = s
			default:
				known := append([]string{"default"}, fl.brokers...)
				fl.errorf(v, label, "broker: no broker %q in the config (brokers: %s)%s", s, strings.Join(known, ", "), yamlnode.Suggest(s, known))
			}
		}
	}
	if v := byKey["enabled"]; v != nil {
		r.Enabled, _ = fl.yr.Bool(v, label, "enabled")
	}

	// Filters and their captures.
	if v := byKey["topic"]; v != nil {
		fl.filters(r, v, label)
	} else if byKey["schedule"] == nil && byKey["sun"] == nil {
		fl.errorf(n, label, "topic: missing (a topic filter or a list of them; or a schedule: or sun: trigger)")
	} else {
		r.captureWild, r.captureLevel = [][]int{}, [][]topic.Level{}
	}

	for _, d := range []struct {
		key string
		dst *time.Duration
	}{{"for", &r.For}, {"cooldown", &r.Cooldown}, {"absent", &r.Absent}} {
		if v := byKey[d.key]; v != nil {
			*d.dst, _ = fl.yr.Duration(v, label, d.key, false)
		}
	}
	fl.timeKeys(r, byKey, label)
	if r.Absent > 0 {
		if byKey["for"] != nil {
			fl.errorf(byKey["for"], label, "for: cannot be combined with absent (absent fires on silence, for on a condition that holds)")
		}
		if byKey["clear_when"] != nil {
			fl.errorf(byKey["clear_when"], label, "clear_when: cannot be combined with absent (an absence clears on the next counting message)")
		}
	}

	filtersOK := len(*fl.errs) == before
	if v := byKey["windows"]; v != nil && filtersOK {
		fl.windows(r, v, label)
		filtersOK = len(*fl.errs) == before
	}
	if filtersOK {
		if v := byKey["when"]; v != nil {
			r.When = fl.program(v, r, label, "when")
		}
		if v := byKey["clear_when"]; v != nil {
			r.ClearWhen = fl.program(v, r, label, "clear_when")
		}
		if v := byKey["key"]; v != nil {
			r.Key = fl.template(v, r, label, "key")
		}
	}

	if v := byKey["actions"]; v == nil {
		fl.errorf(n, label, "actions: missing (at least one of %s)", actions.NameList())
	} else if filtersOK {
		r.Actions = fl.actions(v, r, label, "actions")
	}
	if v := byKey["on_clear"]; v != nil && filtersOK {
		r.OnClear = fl.actions(v, r, label, "on_clear")
	}

	if len(*fl.errs) > before {
		return nil
	}
	progs := []*Program{r.When, r.ClearWhen}
	for _, w := range r.Windows {
		progs = append(progs, w.Value)
	}
	for _, p := range progs {
		if p != nil {
			r.uses |= p.uses
			r.payload.add(p.payload)
			r.world = append(r.world, p.world...)
		}
	}
	for _, t := range r.templates() {
		r.uses |= t.uses
		r.payload.add(t.payload)
		r.world = append(r.world, t.world...)
	}
	if r.uses&UsesSun != 0 && r.uses != UsesAll && fl.location == nil && !fl.noLocationOK {
		fl.errorf(n, label, "sun: the rule reads sun, which needs the engine's location: run it with --latitude and --longitude (config keys latitude and longitude)")
		return nil
	}
	r.Fingerprint = fingerprint(r)
	h := sha256.New()
	hashNode(h, n)
	r.Definition = hex.EncodeToString(h.Sum(nil)[:12])
	return r
}

// hashNode writes a canonical form of a YAML tree: two rules written
// differently (flow or block style, comments, anchors) but meaning the same
// hash the same.
func hashNode(w io.Writer, n *yaml.Node) {
	n = yamlnode.Resolve(n)
	switch n.Kind {
	case yaml.ScalarNode:
		fmt.Fprintf(w, "s%d:%s;", len(n.Value), n.Value)
	case yaml.SequenceNode:
		fmt.Fprintf(w, "[%d", len(n.Content))
		for _, c := range n.Content {
			hashNode(w, c)
		}
		io.WriteString(w, "]")
	case yaml.MappingNode:
		fmt.Fprintf(w, "{%d", len(n.Content))
		for _, c := range n.Content {
			hashNode(w, c)
		}
		io.WriteString(w, "}")
	}
}

func (fl *fileLoader) filters(r *Rule, v *yaml.Node, label string) {
	var nodes []*yaml.Node
	switch v.Kind {
	case yaml.SequenceNode:
		if len(v.Content) == 0 {
			fl.errorf(v, label, "topic: empty list")
		}
		for _, c := range v.Content {
			nodes = append(nodes, yamlnode.Resolve(c))
		}
	default:
		nodes = []*yaml.Node{v}
	}
	seenCap := map[string]bool{}
	for _, fn := range nodes {
		s, ok := fl.yr.Str(fn, label, "topic")
		if !ok {
			continue
		}
		f, err := topic.Parse(s)
		if err != nil {
			fl.errorf(fn, label, "topic: %v", err)
			continue
		}
		for _, c := range f.Captures() {
			if reserved(c) {
				fl.errorf(fn, label, "topic: capture {%s} shadows a name of the expression environment; pick another name", c)
			}
			if !seenCap[c] {
				seenCap[c] = true
				r.Captures = append(r.Captures, c)
			}
		}
		r.Filters = append(r.Filters, f)
	}
	// Where each capture sits among each filter's wildcards.
	r.captureWild = make([][]int, len(r.Filters))
	r.captureLevel = make([][]topic.Level, len(r.Filters))
	for i, f := range r.Filters {
		idx := make([]int, len(r.Captures))
		for j := range idx {
			idx[j] = -1
		}
		if f.Patterned {
			r.captureLevel[i] = make([]topic.Level, len(r.Captures))
		}
		w := 0
		for _, l := range f.Levels {
			if l.Kind == topic.Literal {
				continue
			}
			if l.Name != "" {
				j := slices.Index(r.Captures, l.Name)
				idx[j] = w
				if f.Patterned {
					r.captureLevel[i][j] = l
				}
			}
			w++
		}
		r.captureWild[i] = idx
	}
}

// program compiles a `when`-like condition of rule r (asBool) or another
// expression of it (a window's value).
func (fl *fileLoader) program(n *yaml.Node, r *Rule, rule, key string) *Program {
	return fl.expression(n, r.scope(), rule, key, true)
}

func (fl *fileLoader) expression(n *yaml.Node, sc scope, rule, key string, asBool bool) *Program {
	s, ok := fl.yr.Str(n, rule, key)
	if !ok {
		return nil
	}
	p, err := fl.c.program(s, sc, asBool)
	if err != nil {
		fl.exprErrorf(n, s, err, rule, key)
		return nil
	}
	if !fl.worldRefs(n, s, p.world, rule, key) {
		return nil
	}
	return p
}

func (fl *fileLoader) template(n *yaml.Node, r *Rule, rule, key string) *Template {
	sc := r.scope()
	if key == "key" {
		sc.windows = nil // the key picks the windows
	}
	return fl.templateIn(n, sc, rule, key)
}

func (fl *fileLoader) templateIn(n *yaml.Node, sc scope, rule, key string) *Template {
	s, ok := fl.yr.Str(n, rule, key)
	if !ok {
		return nil
	}
	t, err := fl.c.template(s, sc)
	if err != nil {
		fl.exprErrorf(n, s, err, rule, key)
		return nil
	}
	if !fl.worldRefs(n, s, t.world, rule, key) {
		return nil
	}
	return t
}

// worldRefs checks the literal arguments of state() and states(): a topic
// name and a filter; it reports each bad one where it is written.
func (fl *fileLoader) worldRefs(n *yaml.Node, s string, refs []WorldRef, rule, key string) bool {
	ok := true
	for _, w := range refs {
		var err error
		if w.Filter {
			var f *topic.Filter
			if f, err = topic.Parse(w.Arg); err == nil && len(f.Captures()) > 0 {
				err = fmt.Errorf("states(%q): captures name levels of a rule's topic; states() takes an MQTT filter: write + or # here", w.Arg)
			}
		} else if err = topic.ValidateName(w.Arg); err != nil && strings.ContainsAny(w.Arg, "+#") {
			err = fmt.Errorf("%w: state() reads one topic; states(%q) reads every topic a filter matches", err, w.Arg)
		}
		if err != nil {
			fl.exprErrorf(n, s, &posError{off: w.Off, err: err}, rule, key)
			ok = false
		}
	}
	return ok
}

// exprErrorf reports an expression or template error at the position within
// the scalar where it was found.
func (fl *fileLoader) exprErrorf(n *yaml.Node, s string, err error, rule, key string) {
	off := 0
	var pe *posError
	if errors.As(err, &pe) {
		off = pe.off
	}
	line, col := fl.position(n, s, off)
	*fl.errs = append(*fl.errs, &Error{File: fl.name, Line: line, Col: col, Rule: rule, Msg: fmt.Sprintf("%s: %v", key, err)})
}

// position maps a byte offset in a scalar's value to a file line and column.
// It is exact for plain and quoted scalars on one line and for literal
// blocks; for folded or escaped text it is close.
func (fl *fileLoader) position(n *yaml.Node, s string, off int) (int, int) {
	off = min(off, len(s))
	nl := strings.Count(s[:off], "\n")
	lineStart := strings.LastIndexByte(s[:off], '\n') + 1
	switch {
	case n.Style&(yaml.LiteralStyle|yaml.FoldedStyle) != 0:
		// Every line of a block scalar shares the first line's indentation.
		return n.Line + 1 + nl, fl.indent(n.Line+1) + 1 + off - lineStart
	case nl == 0:
		col := n.Column + off
		if n.Style&(yaml.DoubleQuotedStyle|yaml.SingleQuotedStyle) != 0 {
			col++
		}
		return n.Line, col
	default:
		line := n.Line + nl
		return line, fl.indent(line) + 1 + off - lineStart
	}
}

func (fl *fileLoader) indent(line int) int {
	if fl.lines == nil {
		fl.lines = strings.Split(string(fl.src), "\n")
	}
	if line < 1 || line > len(fl.lines) {
		return 0
	}
	l := fl.lines[line-1]
	return len(l) - len(strings.TrimLeft(l, " \t"))
}

func (fl *fileLoader) actions(v *yaml.Node, r *Rule, rule, key string) []Action {
	names := actions.NameList()
	if v.Kind != yaml.SequenceNode {
		fl.errorf(v, rule, "%s: must be a list of actions (- log: …, - publish: …), not %s", key, yamlnode.KindName(v))
		return nil
	}
	if len(v.Content) == 0 {
		fl.errorf(v, rule, "%s: empty list", key)
		return nil
	}
	var out []Action
	for i, an := range v.Content {
		an = yamlnode.Resolve(an)
		where := fmt.Sprintf("%s[%d]", key, i)
		if an.Kind != yaml.MappingNode {
			fl.errorf(an, rule, "%s: an action is a mapping with one key, %s, not %s", where, names, yamlnode.KindName(an))
			continue
		}
		kvs := fl.yr.Pairs(an, rule)
		if len(kvs) != 1 {
			fl.errorf(an, rule, "%s: an action has exactly one key (%s), found %d", where, names, len(kvs))
			continue
		}
		k, val := kvs[0].Key, kvs[0].Value
		if k.Value == "delay" {
			if d, ok := fl.delay(val, rule, where); ok {
				out = append(out, Action{Delay: d, Line: k.Line})
				r.delays = true
			}
			continue
		}
		kind := actions.Lookup(k.Value)
		if kind == nil {
			fl.errorf(k, rule, "%s: unknown action %q (want %s)%s", where, k.Value, names, yamlnode.Suggest(k.Value, actions.Names()))
			continue
		}
		if kind.Gate != "" && !slices.Contains(fl.allow, kind.Gate) {
			fl.errorf(k, rule, "%s: %s actions %s and are refused unless the engine runs with %s", where, kind.Name, kind.GateWhy, kind.Gate)
			continue
		}
		d := actions.NewDecoder(kind, val, where+"."+kind.Name, rule, &fl.yr,
			func(n *yaml.Node, key string) actions.Template {
				if t := fl.template(n, r, rule, key); t != nil {
					return t
				}
				return nil
			},
			func(n *yaml.Node, msg string) { fl.report(n, rule, msg) })
		d.Brokers, d.AnyBroker, d.RuleBroker = fl.brokers, fl.anyBroker, r.Broker
		spec := kind.Compile(d)
		if spec == nil || d.Failed() {
			continue
		}
		out = append(out, Action{Kind: kind, Spec: spec, Line: k.Line})
	}
	return out
}

// templates returns every template of the rule: key and actions.
func (r *Rule) templates() []*Template {
	var out []*Template
	if r.Key != nil {
		out = append(out, r.Key)
	}
	for _, a := range slices.Concat(r.Actions, r.OnClear) {
		if a.Spec == nil {
			continue // a delay
		}
		for _, t := range a.Spec.Templates() {
			if t, ok := t.(*Template); ok && t != nil {
				out = append(out, t)
			}
		}
	}
	return out
}

func fingerprint(r *Rule) string {
	h := sha256.New()
	field := func(s string) { fmt.Fprintf(h, "%d:%s;", len(s), s) }
	field(r.Name)
	field(r.Broker)
	for _, f := range r.Filters {
		field(f.Source)
	}
	for _, p := range []*Program{r.When, r.ClearWhen} {
		if p != nil {
			field(p.Source)
		} else {
			field("-")
		}
	}
	if r.Key != nil {
		field(r.Key.Source())
	} else {
		field("-")
	}
	field(fmt.Sprint(r.For, r.Cooldown, r.Absent, len(r.OnClear) > 0))
	for _, w := range r.Windows {
		field(fmt.Sprint(w.Name, "=", w.Value.Source, ",", w.Over, ",", w.MaxSamples))
	}
	if r.Schedule != nil {
		field("schedule " + r.Schedule.String())
	}
	if r.Sun != nil {
		field("sun " + r.Sun.String())
	}
	if r.TimeZone != nil {
		field("timezone " + r.TimeZone.String())
	}
	field(fmt.Sprint(r.Mode, r.MaxQueued, r.Repeat, r.MaxRepeats))
	return hex.EncodeToString(h.Sum(nil)[:12])
}

// ExpandEnv replaces ${NAME} and ${NAME:-default} in s with the values
// lookup gives (os.LookupEnv when nil); $${ is a literal ${. An unset NAME
// without a default is an error naming it. Rule files and the config file
// use it.
func ExpandEnv(s string, lookup func(string) (string, bool)) (string, error) {
	if lookup == nil {
		lookup = os.LookupEnv
	}
	return yamlnode.ExpandEnv(s, lookup)
}
