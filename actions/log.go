package actions

import (
	"context"
	"log/slog"
	"slices"
	"strings"
	"time"
)

// KindLog writes a line to the engine's log: `- log: TEXT`, or
// `- log: {message: TEXT, level: warn}` (docs/rules.md, "Actions").
var KindLog = register(&Kind{
	Name:      "log",
	Keys:      []string{"message", "level"},
	Shorthand: "message",
	Synonyms:  map[string]string{"text": "message", "msg": "message", "payload": "message", "body": "message"},
	Compile:   compileLog,
})

// LogSpec is a compiled log action.
type LogSpec struct {
	Message Template
	Level   slog.Level
}

func compileLog(d *Decoder) Spec {
	spec := &LogSpec{Level: slog.LevelInfo}
	for _, kv := range d.Pairs() {
		switch kv.Key.Value {
		case "message":
			spec.Message = d.Template(kv.Value, "message")
		case "level":
			if s, ok := d.Str(kv.Value, "level"); ok {
				if err := spec.Level.UnmarshalText([]byte(s)); err != nil || !slices.Contains([]string{"debug", "info", "warn", "error"}, strings.ToLower(s)) {
					d.KeyErrorf(kv.Value, "level", "%q is not debug, info, warn or error", s)
				}
			}
		}
	}
	if spec.Message == nil {
		d.Missing("message", "")
	}
	if d.Failed() {
		return nil
	}
	return spec
}

// Templates implements Spec.
func (s *LogSpec) Templates() []Template { return []Template{s.Message} }

// Render implements Spec.
func (s *LogSpec) Render(r Renderer, _ []byte) (Action, error) {
	m, err := r.Render(s.Message)
	if err != nil {
		return nil, err
	}
	return &Log{Message: m, Level: s.Level}, nil
}

// Describe implements Spec.
func (s *LogSpec) Describe() []Field {
	return []Field{
		{Name: "level", Value: levelName(s.Level), Bare: true},
		{Name: "message", Value: s.Message.Source(), Text: true},
	}
}

// Log is a rendered log line.
type Log struct {
	Message string
	Level   slog.Level
}

// Fields implements Action.
func (l *Log) Fields() []Field {
	return []Field{
		{Name: "level", Value: levelName(l.Level), Bare: true, Fold: true},
		{Name: "message", Value: l.Message, Text: true},
	}
}

func (l *Log) run(x *Executor, req *Request, once *reportOnce) {
	start := time.Now()
	x.log.LogAttrs(context.Background(), l.Level, l.Message,
		slog.String("rule", req.Rule), slog.String("topic", req.Topic), slog.String("action", req.Kind.String()))
	once.claim()
	x.rep.ActionDone(req.Rule, req.Kind, nil, time.Since(start))
}

func levelName(l slog.Level) string { return strings.ToLower(l.String()) }
