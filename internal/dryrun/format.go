package dryrun

import (
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/mqtt-rules/mqtt-rules/actions"
	"github.com/mqtt-rules/mqtt-rules/engine"
	"github.com/mqtt-rules/mqtt-rules/rules"
)

// Line renders an action on one line from its fields (actions.Field),
// secrets redacted:
//
//	publish alerts/kitchen/hot qos=1 retain=false payload={"value":31}
//	webhook POST https://hooks.example.com/notify headers={Authorization: [REDACTED]} body={"value":31}
//	log warn: kitchen at 31
//
// Bare fields come first without their names, then name=value, fields of
// a mapping key grouped as key={Name: value, …}, and the free text last,
// shown as it is unless it holds control characters or is not UTF-8: then
// it is quoted as a Go string. The text of a kind's shorthand key (log's
// message) follows a colon.
func Line(req actions.Request) string {
	if req.Action == nil {
		return req.Kind.String()
	}
	var b strings.Builder
	b.WriteString(req.Kind.String())
	fields := req.Action.Fields()
	for _, f := range fields {
		if f.Bare && !f.Text {
			b.WriteString(" " + f.Show(f.Value, req.Secrets))
		}
	}
	for i := 0; i < len(fields); i++ {
		f := fields[i]
		if f.Bare || f.Quiet || f.Text {
			continue
		}
		group, _, dotted := strings.Cut(f.Name, ".")
		if !dotted {
			b.WriteString(" " + f.Name + "=" + f.Show(f.Value, req.Secrets))
			continue
		}
		var items []string
		for ; i < len(fields) && strings.HasPrefix(fields[i].Name, group+"."); i++ {
			items = append(items, strings.TrimPrefix(fields[i].Name, group+".")+": "+fields[i].Show(fields[i].Value, req.Secrets))
		}
		i--
		b.WriteString(" " + group + "={" + strings.Join(items, ", ") + "}")
	}
	for _, f := range fields {
		if !f.Text {
			continue
		}
		if f.Name == req.Kind.Shorthand {
			b.WriteString(": " + Text([]byte(f.Show(f.Value, req.Secrets))))
		} else {
			b.WriteString(" " + f.Name + "=" + Text([]byte(f.Show(f.Value, req.Secrets))))
		}
	}
	return b.String()
}

// Full writes an action over several lines, every field shown and secrets
// redacted, each line starting with indent:
//
//	publish  alerts/kitchen/hot  qos 1  retain false
//	         {"room":"kitchen","value":31}
//	webhook  POST https://hooks.example.com/notify  timeout 5s  retries 3
//	         Authorization: [REDACTED]
//	         {"value":31}
//	log      warn  kitchen at 31
func Full(w io.Writer, indent string, req actions.Request) {
	const pad = "         "
	if req.Action == nil {
		fmt.Fprintf(w, "%s%s\n", indent, req.Kind)
		return
	}
	fields := req.Action.Fields()
	var head []string
	var bare []string
	var details []string
	var texts []actions.Field
	for _, f := range fields {
		v := f.Show(f.Value, req.Secrets)
		switch {
		case f.Text:
			texts = append(texts, f)
		case f.Bare:
			bare = append(bare, v)
		case strings.Contains(f.Name, "."):
			_, sub, _ := strings.Cut(f.Name, ".")
			details = append(details, sub+": "+v)
		default:
			head = append(head, f.Name+" "+v)
		}
	}
	line := fmt.Sprintf("%-8s", req.Kind)
	if len(bare) > 0 {
		line += " " + strings.Join(bare, " ")
	}
	for _, h := range head {
		line += "  " + h
	}
	// A short text of the kind's shorthand key (log's message) fits the
	// head line.
	if len(texts) == 1 && texts[0].Name == req.Kind.Shorthand && len(head) == 0 && len(details) == 0 {
		if v := texts[0].Show(texts[0].Value, req.Secrets); !strings.Contains(v, "\n") {
			fmt.Fprintf(w, "%s%s  %s\n", indent, line, Text([]byte(v)))
			return
		}
	}
	fmt.Fprintf(w, "%s%s\n", indent, strings.TrimRight(line, " "))
	for _, d := range details {
		fmt.Fprintf(w, "%s%s%s\n", indent, pad, d)
	}
	for _, f := range texts {
		v := f.Show(f.Value, req.Secrets)
		if v == "" {
			fmt.Fprintf(w, "%s%s(empty)\n", indent, pad)
			continue
		}
		for _, l := range blockLines([]byte(v)) {
			fmt.Fprintf(w, "%s%s%s\n", indent, pad, l)
		}
	}
}

// Text shows a payload, a body or a message on one line: as it is when it
// is printable UTF-8 (a final line break shown as ⏎), as a quoted Go
// string otherwise; "" when empty.
func Text(b []byte) string {
	if len(b) == 0 {
		return `""`
	}
	s := string(b)
	body, nl := strings.CutSuffix(s, "\n")
	if !printable(body, false) {
		return strconv.Quote(s)
	}
	if nl {
		return body + "⏎"
	}
	return body
}

// blockLines splits a payload into the lines Full shows: its own lines
// when it is printable UTF-8, else one quoted line.
func blockLines(b []byte) []string {
	s := strings.TrimSuffix(string(b), "\n")
	if !printable(s, true) {
		return []string{strconv.Quote(string(b))}
	}
	return strings.Split(s, "\n")
}

// printable reports whether s is valid UTF-8 without control characters
// (but line breaks, where multiline is true).
func printable(s string, multiline bool) bool {
	if !utf8.ValidString(s) {
		return false
	}
	for _, r := range s {
		if r == '\n' && multiline {
			continue
		}
		if unicode.IsControl(r) {
			return false
		}
	}
	return true
}

// FormatDuration writes a duration the way rule files do: 5m, 1h30m, 30s,
// 1.5s, 0s.
func FormatDuration(d time.Duration) string { return actions.FormatDuration(d) }

// Offset formats the time t as an offset from start: "5m", "1h30m", "0s".
func Offset(start, t time.Time) string { return FormatDuration(t.Sub(start)) }

// Printer writes steps as readable text: for each message or timer, the
// rules it reached, the value of their condition, what they did, and the
// actions of those that fired, fully rendered.
type Printer struct {
	W     io.Writer
	Rules *rules.RuleSet
	// Start, when set, makes every step start with its time as an offset
	// from Start ("+5m"); otherwise steps show no time.
	Start time.Time
	// Explain adds, under each rule, why it did or did not fire.
	Explain bool
	// Indent starts every line.
	Indent string
}

// Step writes one step.
func (p *Printer) Step(s Step) {
	in := p.Indent
	at := ""
	if !p.Start.IsZero() {
		at = "+" + Offset(p.Start, s.Time) + "  "
	}
	switch s.Trigger {
	case TriggerTimer:
		fmt.Fprintf(p.W, "%s%stimers due\n", in, at)
	default:
		var flags []string
		if s.Message.QoS > 0 {
			flags = append(flags, fmt.Sprintf("qos %d", s.Message.QoS))
		}
		if s.Message.Retained {
			flags = append(flags, "retained")
		}
		if s.Trigger == TriggerFeedback {
			flags = append(flags, "published by "+s.From)
		}
		extra := ""
		if len(flags) > 0 {
			extra = "  (" + strings.Join(flags, ", ") + ")"
		}
		fmt.Fprintf(p.W, "%s%smessage %s %s%s\n", in, at, s.Message.Topic, Text(s.Message.Payload), extra)
	}
	if len(s.Events) == 0 {
		fmt.Fprintf(p.W, "%s    no rule matches this topic\n", in)
		return
	}
	width := 0
	for _, ev := range s.Events {
		width = max(width, len(ev.Rule))
	}
	for _, ev := range s.Events {
		fmt.Fprintf(p.W, "%s    %-*s  %-10s  %s\n", in, width, ev.Rule, p.condition(ev), Outcome(ev))
		if p.Explain || ev.Outcome == engine.OutcomeError {
			fmt.Fprintf(p.W, "%s      why: %s\n", in, ev.Explain())
		}
		if p.Explain {
			// What the evaluation read of the world and of its windows.
			for _, l := range ev.Lookups {
				fmt.Fprintf(p.W, "%s      read: %s\n", in, l)
			}
			for _, w := range ev.Windows {
				fmt.Fprintf(p.W, "%s      window %s\n", in, w)
			}
		}
		for _, n := range ev.Notes {
			fmt.Fprintf(p.W, "%s      error: %s\n", in, n)
		}
		for _, a := range ev.Actions {
			Full(p.W, in+"      ", a)
		}
	}
}

// condition shows the value of a rule's `when` for an evaluation.
func (p *Printer) condition(ev Event) string {
	switch {
	case ev.Timer && ev.Trigger != "":
		return "(" + ev.Trigger + ")"
	case ev.Timer:
		return "(timer)"
	case ev.Outcome == engine.OutcomeError:
		return "when error"
	case ev.Cond == nil:
		return "-"
	}
	if p.Rules != nil {
		if r := p.Rules.Rule(ev.Rule); r != nil && r.When == nil {
			return "always"
		}
	}
	return fmt.Sprintf("when %t", *ev.Cond)
}

// Outcome says in a word or two what an evaluation did: "fired",
// "on_clear ran", "pending until +2m"...
func Outcome(ev Event) string {
	switch ev.Outcome {
	case engine.OutcomeFired:
		return "fired"
	case engine.OutcomeFalse:
		return "does not fire"
	case engine.OutcomeError:
		return "does not fire (error)"
	case engine.OutcomeCleared:
		return "cleared: on_clear ran"
	case engine.OutcomeBack:
		return "back after a silence: on_clear ran"
	case engine.OutcomePending:
		return "pending (for)"
	case engine.OutcomeCancelled:
		return "pending for cancelled"
	case engine.OutcomeCooldown:
		return "in cooldown"
	case engine.OutcomeEpisode:
		return "already firing"
	case engine.OutcomeStillFiring:
		return "still firing (clear_when does not hold)"
	case engine.OutcomeHeartbeat:
		return "heartbeat"
	case engine.OutcomeNotCounted:
		return "not a heartbeat"
	case engine.OutcomeQueued:
		return "fired, queued (mode: queued)"
	case engine.OutcomeSuppressed:
		return "ignored (mode)"
	case engine.OutcomeContinued:
		if ev.OnClear {
			return "delay over: on_clear continues"
		}
		return "delay over: continues"
	}
	return ev.Outcome.String()
}
