package statuspage

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"strconv"
	"sync"
	"time"

	"github.com/mqtt-rules/mqtt-rules/engine"
	"github.com/mqtt-rules/mqtt-rules/internal/httpapi"
	"github.com/mqtt-rules/mqtt-rules/rules"
)

// Columns are the per-rule numbers of the live feed, in the order of each
// row of the "full" and "tick" events. Times are unix milliseconds, 0 for
// none. The key counts are of the rule's first OverviewKeys active keys
// (a count that reaches it means "at least").
var Columns = []string{
	"fires",         // times the rule fired
	"errors",        // condition errors plus failed actions
	"last_fired",    // when it last fired
	"pending",       // keys whose for is running
	"firing",        // keys that fired and did not clear yet
	"cooldown",      // keys in cooldown
	"watching",      // keys with an absence timer and nothing else going on
	"next_deadline", // the soonest for end, absence or end of cooldown
	"keys",          // keys the rule tracks in all
	"enabled",       // 1 when the rule runs now (its file, or a control's override), else 0
	"by_control",    // 1 when a control (MQTT, HTTP) decided enabled, 0 when its file did
}

const nCols = 11

// OverviewKeys is how many active keys of a rule the overview reads per
// tick; the detail view lists up to DetailKeys.
const (
	OverviewKeys = 100
	DetailKeys   = 200
)

// maxReloadErrors bounds the reload errors a tick carries.
const maxReloadErrors = 50

type row [nCols]int64

// snapshotter makes the frames. It is used by the broadcaster goroutine
// only, so it keeps the previous rows without locks.
type snapshotter struct {
	st         httpapi.Status
	version    string
	sampler    *sampler
	keysBudget time.Duration
	now        func() time.Time
	control    bool // the rules event's Control

	instance string // random per process, so a page never mistakes one process's set for another's
	gens     uint64
	rs       *rules.RuleSet
	gen      string
	stats    []*engine.RuleStats
	stateful []int
	rules    []byte     // the "rules" event of gen
	prev     []row      // the rows of the last frame, nil at a new gen
	keys     [][6]int64 // per rule: pending, firing, cooldown, watching, next deadline, tracked
	keysNext int        // where the round of key reads goes on next tick
	seq      uint64
}

func newSnapshotter(st httpapi.Status, version string, s *sampler, keysBudget time.Duration) *snapshotter {
	var b [4]byte
	_, _ = rand.Read(b[:])
	return &snapshotter{st: st, version: version, sampler: s, keysBudget: keysBudget, now: time.Now, instance: hex.EncodeToString(b[:])}
}

// ruleMeta is a rule in the "rules" event: what the table shows (the
// detail view's rule event has the whole definition).
type ruleMeta struct {
	Name        string   `json:"name"`
	Description string   `json:"description,omitempty"`
	Filters     []string `json:"filters"`
	Enabled     bool     `json:"enabled"`
	Stateful    bool     `json:"stateful"`
	For         string   `json:"for,omitempty"`
	Cooldown    string   `json:"cooldown,omitempty"`
	Absent      string   `json:"absent,omitempty"`
	Repeat      string   `json:"repeat,omitempty"` // firings repeat until acknowledged
}

type rulesEvent struct {
	Gen          string   `json:"gen"`
	Columns      []string `json:"columns"`
	OverviewKeys int      `json:"overview_keys"`
	// Control is true when the page may enable, disable and acknowledge
	// (Options.Control): it shows the buttons.
	Control bool       `json:"control"`
	Rules   []ruleMeta `json:"rules"`
}

// status is the engine's state in every tick.
type status struct {
	Version        string                `json:"version"`
	Broker         string                `json:"broker"`    // the default broker's URL
	Connected      bool                  `json:"connected"` // to every broker
	Brokers        []httpapi.BrokerState `json:"brokers"`   // every broker, the default one first
	Ready          bool                  `json:"ready"`
	NotReadyReason string                `json:"not_ready_reason"`
	Received       uint64                `json:"received"`
	Remembered     int                   `json:"remembered"` // topics state() and states() remember
	Fires          uint64                `json:"fires"`      // of the loaded rules
	Errors         uint64                `json:"errors"`     // of the loaded rules
	Drops          map[string]uint64     `json:"drops"`
	Reloads        httpapi.Results       `json:"reloads"`
	LastReload     httpapi.ReloadInfo    `json:"last_reload"`
	Rules          int                   `json:"rules"`
}

// setRules starts a new generation when the rule set changed.
func (s *snapshotter) setRules(rs *rules.RuleSet) {
	if rs == s.rs && s.gen != "" {
		return
	}
	s.rs = rs
	s.gens++
	s.gen = s.instance + "-" + strconv.FormatUint(s.gens, 10)
	s.prev, s.stats, s.stateful, s.keys, s.keysNext = nil, nil, nil, nil, 0
	ev := rulesEvent{Gen: s.gen, Columns: Columns, OverviewKeys: OverviewKeys, Control: s.control, Rules: []ruleMeta{}}
	var counters *engine.Counters
	if c := s.st.Counters(); c != nil {
		counters = c
	} else {
		counters = engine.NewCounters()
	}
	if rs != nil {
		red := httpapi.NewRedactor()
		s.stats = make([]*engine.RuleStats, len(rs.Rules))
		s.keys = make([][6]int64, len(rs.Rules))
		for i, r := range rs.Rules {
			s.stats[i] = counters.Rule(r.Name)
			if r.Stateful() {
				s.stateful = append(s.stateful, i)
			}
			m := ruleMeta{
				Name: r.Name, Description: red.With(r.EnvValues).Text(r.Description),
				Filters: make([]string, len(r.Filters)), Enabled: r.Enabled, Stateful: r.Stateful(),
				For: dur(r.For), Cooldown: dur(r.Cooldown), Absent: dur(r.Absent), Repeat: dur(r.Repeat),
			}
			for j, f := range r.Filters {
				m.Filters[j] = f.Source
			}
			ev.Rules = append(ev.Rules, m)
		}
	}
	s.rules = sse("rules", mustJSON(ev))
}

func dur(d time.Duration) string {
	if d <= 0 {
		return ""
	}
	return d.String()
}

// tick makes the next frame.
func (s *snapshotter) tick() *frame {
	s.setRules(s.st.Rules())
	now := s.now()
	s.seq++
	s.readKeys(now)

	rows := make([]row, len(s.stats))
	var fires, errs uint64
	en, _ := s.st.(httpapi.Enabler)
	for i, st := range s.stats {
		r := &rows[i]
		r[0] = int64(st.Fires.Load())
		r[1] = int64(st.Errors())
		if t := st.LastFired(); !t.IsZero() {
			r[2] = t.UnixMilli()
		}
		copy(r[3:], s.keys[i][:])
		rule := s.rs.Rules[i]
		on, by := rule.Enabled, engine.ByFile
		if en != nil {
			if o, b, ok := en.Enabled(rule.Name); ok {
				on, by = o, b
			}
		}
		if on {
			r[9] = 1
		}
		if by == engine.ByControl {
			r[10] = 1
		}
		fires += uint64(r[0])
		errs += uint64(r[1])
	}
	head := s.head(now, fires, errs)

	f := &frame{seq: s.seq, gen: s.gen, rules: s.rules}
	if s.sampler != nil {
		f.ratesVersion, f.rates = s.sampler.sseEvent()
	}
	if s.prev != nil {
		var b bytes.Buffer
		b.Grow(len(head) + 32)
		b.Write(head)
		b.WriteString(`,"changed":[`)
		n := 0
		for i := range rows {
			if rows[i] == s.prev[i] {
				continue
			}
			if n > 0 {
				b.WriteByte(',')
			}
			n++
			b.WriteByte('[')
			b.Write(strconv.AppendInt(b.AvailableBuffer(), int64(i), 10))
			for _, v := range rows[i] {
				b.WriteByte(',')
				b.Write(strconv.AppendInt(b.AvailableBuffer(), v, 10))
			}
			b.WriteByte(']')
		}
		b.WriteString("]}")
		f.delta = sse("tick", b.Bytes())
	}
	f.full = sync.OnceValue(func() []byte { return fullEvent(head, rows) })
	s.prev = rows
	return f
}

// fullEvent is the "full" event: head, then every row.
func fullEvent(head []byte, rows []row) []byte {
	b := make([]byte, 0, len(head)+len(rows)*24+16)
	b = append(b, head...)
	b = append(b, `,"rows":[`...)
	for i := range rows {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, '[')
		for j, v := range rows[i] {
			if j > 0 {
				b = append(b, ',')
			}
			b = strconv.AppendInt(b, v, 10)
		}
		b = append(b, ']')
	}
	b = append(b, "]}"...)
	return sse("full", b)
}

// head is the start of a tick's JSON object, without its closing brace:
// sequence, generation, server time and the engine's status.
func (s *snapshotter) head(now time.Time, fires, errs uint64) []byte {
	st := status{
		Version:        s.version,
		NotReadyReason: httpapi.NotReady(s.st),
		Fires:          fires,
		Errors:         errs,
		Drops:          map[string]uint64{},
		LastReload:     httpapi.ReloadOf(s.st.LastReload()),
	}
	st.Brokers, st.Broker, st.Connected = httpapi.BrokerSummary(s.st)
	st.Ready = st.NotReadyReason == ""
	if s.rs != nil {
		st.Rules = len(s.rs.Rules)
	}
	if c := s.st.Counters(); c != nil {
		st.Received = c.Received()
		st.Remembered, _ = c.Remembered()
		st.Drops = c.Drops()
		st.Reloads.OK, st.Reloads.Error = c.Reloads()
	}
	if n := len(st.LastReload.Errors); n > maxReloadErrors {
		st.LastReload.Errors = append(st.LastReload.Errors[:maxReloadErrors:maxReloadErrors],
			"… and "+strconv.Itoa(n-maxReloadErrors)+" more (see the log)")
	}
	b := []byte(`{"seq":`)
	b = strconv.AppendUint(b, s.seq, 10)
	b = append(b, `,"gen":`...)
	b = strconv.AppendQuote(b, s.gen)
	b = append(b, `,"now":`...)
	b = strconv.AppendInt(b, now.UnixMilli(), 10)
	b = append(b, `,"status":`...)
	b = append(b, mustJSON(st)...)
	return b
}

// readKeys refreshes the key counts of stateful rules, in rounds: each tick
// reads rules until keysBudget is spent (at least one), going on next tick
// where it stopped, so a set with many busy stateful rules costs the engine
// a bounded time per tick (Engine.Keys holds its state lock while it walks
// a rule's keys). Deadlines are absolute, so the page counts down between
// reads.
func (s *snapshotter) readKeys(now time.Time) {
	n := len(s.stateful)
	if n == 0 {
		return
	}
	start := time.Now()
	for done := 0; done < n; done++ {
		if done > 0 && time.Since(start) > s.keysBudget {
			break
		}
		i := s.stateful[s.keysNext]
		s.keysNext = (s.keysNext + 1) % n
		keys, tracked := s.st.Keys(s.rs.Rules[i].Name, OverviewKeys)
		var c [6]int64 // pending, firing, cooldown, watching, next deadline, tracked
		soonest := func(t time.Time) {
			if ms := t.UnixMilli(); t.After(now) && (c[4] == 0 || ms < c[4]) {
				c[4] = ms
			}
		}
		for _, k := range keys {
			cooling := k.CooldownUntil.After(now)
			switch {
			case k.Pending:
				c[0]++
			case k.Firing:
				c[1]++
			}
			if cooling {
				c[2]++
			}
			if !k.Pending && !k.Firing && !cooling && !k.Deadline.IsZero() {
				c[3]++
			}
			soonest(k.Deadline)
			soonest(k.CooldownUntil)
		}
		c[5] = int64(tracked)
		s.keys[i] = c
	}
}

// mustJSON encodes v, whose types (strings, numbers, maps and slices of
// them) cannot fail to encode.
func mustJSON(v any) []byte {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return []byte("null")
	}
	return bytes.TrimRight(b.Bytes(), "\n")
}

// sse formats one server-sent event; data must hold no newline (compact
// JSON has none).
func sse(event string, data []byte) []byte {
	b := make([]byte, 0, len(event)+len(data)+16)
	b = append(b, "event: "...)
	b = append(b, event...)
	b = append(b, "\ndata: "...)
	b = append(b, data...)
	b = append(b, "\n\n"...)
	return b
}
