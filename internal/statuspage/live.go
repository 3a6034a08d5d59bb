package statuspage

import (
	"bytes"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/mqtt-rules/mqtt-rules/actions"
	"github.com/mqtt-rules/mqtt-rules/engine"
	"github.com/mqtt-rules/mqtt-rules/internal/httpapi"
	"github.com/mqtt-rules/mqtt-rules/rules"
)

// live serves GET /api/live: the page's event stream (text/event-stream).
// Events, each one JSON object:
//
//   - rules: the loaded rules (names, filters, settings) and the
//     generation "gen" they are; sent first, and again after a reload. A
//     page that already has a generation passes it as ?gen= to skip it.
//   - full: the engine's status and one row of Columns per rule, in the
//     order of the rules event.
//   - tick: the status and only the rows that changed since the previous
//     frame, each as [index, columns...]; a page that missed a frame gets
//     a full one instead.
//   - rates: the charts' series (Rates), when a bucket closed.
//   - rule: with ?rule=NAME, that rule's definition (once per
//     generation), its active keys and its last evaluations with their
//     explanations, whenever they changed.
func (p *Page) live(w http.ResponseWriter, r *http.Request) {
	if r.Method == http.MethodHead {
		w.Header().Set("Content-Type", "text/event-stream")
		w.Header().Set("Cache-Control", "no-store")
		return
	}
	c, err := p.hub.subscribe()
	if errors.Is(err, errTooMany) {
		w.Header().Set("Retry-After", "5")
		http.Error(w, fmt.Sprintf("too many open status pages (at most %d); try again later", p.opts.MaxClients), http.StatusServiceUnavailable)
		p.log.Warn("status page: too many open pages", "max", p.opts.MaxClients, "remote", r.RemoteAddr)
		return
	}
	defer p.hub.unsubscribe(c)

	q := r.URL.Query()
	s := &stream{page: p, w: w, rc: http.NewResponseController(w), gen: q.Get("gen"), rule: q.Get("rule")}
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no") // a proxy must pass events on at once
	w.WriteHeader(http.StatusOK)
	// A page reconnects 2 s after losing the stream.
	if err := s.write([]byte("retry: 2000\n\n")); err != nil {
		return
	}
	for {
		select {
		case <-r.Context().Done():
			return
		case f := <-c.ch:
			if err := s.send(f); err != nil {
				p.log.Debug("status page: stream ended", "remote", r.RemoteAddr, "err", err)
				return
			}
		}
	}
}

// stream is what one page's event stream has been sent.
type stream struct {
	page *Page
	w    http.ResponseWriter
	rc   *http.ResponseController

	gen          string // the rules generation the page has
	seq          uint64 // the last frame sent; 0: none
	ratesVersion uint64
	ratesSent    bool

	rule      string // the rule of the detail view; "" for none
	ruleGen   string // the generation whose definition the page has
	ruleState []byte // the last rule event without its definition
}

// send writes what the page needs of frame f.
func (s *stream) send(f *frame) error {
	var out [][]byte
	if f.gen != s.gen {
		out = append(out, f.rules)
		s.gen, s.seq = f.gen, 0
	}
	if s.seq != 0 && f.seq == s.seq+1 && f.delta != nil {
		out = append(out, f.delta)
	} else {
		out = append(out, f.full())
	}
	s.seq = f.seq
	if f.rates != nil && (!s.ratesSent || f.ratesVersion != s.ratesVersion) {
		out = append(out, f.rates)
		s.ratesSent, s.ratesVersion = true, f.ratesVersion
	}
	if s.rule != "" {
		if ev := s.ruleEvent(f.gen); ev != nil {
			out = append(out, ev)
		}
	}
	return s.write(out...)
}

// write writes events and flushes them, giving up after WriteTimeout.
func (s *stream) write(events ...[]byte) error {
	_ = s.rc.SetWriteDeadline(time.Now().Add(s.page.opts.WriteTimeout)) // not every writer has deadlines
	for _, ev := range events {
		if _, err := s.w.Write(ev); err != nil {
			return err
		}
	}
	return s.rc.Flush()
}

// RuleEvent is the "rule" event of the detail view.
type RuleEvent struct {
	Name  string `json:"name"`
	Found bool   `json:"found"` // false: no such rule in the loaded set
	Gen   string `json:"gen"`
	// Definition is sent once per generation; absent in later events.
	Definition    *httpapi.RuleDefinition    `json:"definition,omitempty"`
	ActionResults map[string]httpapi.Results `json:"action_results"`
	Tracked       int                        `json:"tracked"` // keys the rule tracks
	Keys          []engine.KeyState          `json:"keys"`    // its active keys, at most DetailKeys
	Trace         []httpapi.TraceEntry       `json:"trace"`   // its last evaluations, oldest first
}

// ruleEvent returns the rule event for the page's rule when it changed,
// else nil.
func (s *stream) ruleEvent(gen string) []byte {
	st := s.page.st
	ev := RuleEvent{Name: s.rule, Gen: gen, ActionResults: map[string]httpapi.Results{}, Keys: []engine.KeyState{}, Trace: []httpapi.TraceEntry{}}
	var r *rules.Rule
	if rs := st.Rules(); rs != nil {
		r = rs.Rule(s.rule)
	}
	if r != nil {
		ev.Found = true
		ev.Trace = httpapi.TraceOf(st.Trace(r.Name))
		if r.Stateful() {
			k := httpapi.KeysOf(st, r.Name, DetailKeys)
			ev.Tracked, ev.Keys = k.Tracked, k.Keys
		}
		if c := st.Counters(); c != nil {
			rstats := c.Rule(r.Name)
			for _, k := range actions.Kinds() {
				if used(r.Actions, k) || used(r.OnClear, k) {
					ok, failed := rstats.Actions(k)
					ev.ActionResults[k.String()] = httpapi.Results{OK: ok, Error: failed}
				}
			}
		}
	}
	state := mustJSON(ev)
	needDef := s.ruleGen != gen
	if !needDef && bytes.Equal(state, s.ruleState) {
		return nil
	}
	s.ruleState = state
	if needDef {
		s.ruleGen = gen
		if ev.Found {
			d := httpapi.Define(r)
			ev.Definition = &d
			state = mustJSON(ev)
		}
	}
	return sse("rule", state)
}

func used(acts []rules.Action, k *actions.Kind) bool {
	for _, a := range acts {
		if a.Kind == k {
			return true
		}
	}
	return false
}
