package actions

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"time"

	"github.com/mqtt-rules/mqtt-rules/internal/topic"
)

// Defaults and bounds of exec actions (docs/rules.md, "exec").
const (
	DefaultExecTimeout     = 30 * time.Second
	DefaultExecConcurrency = 4
	DefaultExecQueue       = 100
	// DefaultExecOutput is how much of a program's stdout, and of its
	// stderr, is kept; the rest is read and counted, not kept.
	DefaultExecOutput = 64 << 10
)

// KindExec runs a program directly, without a shell: `- exec: {command:
// [ARGV…], stdin, timeout, publish_output}`. Each argument is a template
// and stays one argument whatever it renders to. Refused at load unless
// the engine runs with --allow-exec (docs/rules.md, "exec").
var KindExec = register(&Kind{
	Name: "exec",
	Keys: []string{"command", "stdin", "timeout", "publish_output"},
	Synonyms: map[string]string{
		"cmd": "command", "args": "command", "argv": "command", "program": "command", "run": "command",
		"input": "stdin", "payload": "stdin", "body": "stdin",
		"publish": "publish_output", "output": "publish_output", "topic": "publish_output",
	},
	Gate:    "--allow-exec",
	GateWhy: "run programs on this machine",
	Compile: compileExec,
})

// ExecSpec is a compiled exec action.
type ExecSpec struct {
	Command       []Template // the program, then its arguments
	Stdin         Template   // nil: no input
	Timeout       time.Duration
	PublishOutput Template // nil: stdout is logged only
	Broker        string   // where stdout is published: the rule's broker
}

func compileExec(d *Decoder) Spec {
	spec := &ExecSpec{Timeout: DefaultExecTimeout, Broker: d.RuleBroker}
	for _, kv := range d.Pairs() {
		switch kv.Key.Value {
		case "command":
			items, ok := d.List(kv.Value, "command", "the program and its arguments, e.g. [/usr/bin/notify-send, \"{{ topic }}\"]", false)
			if !ok {
				continue
			}
			if len(items) == 0 {
				d.KeyErrorf(kv.Value, "command", "empty: give the program, then its arguments")
				continue
			}
			for i, n := range items {
				if t := d.Template(n, fmt.Sprintf("command[%d]", i)); t != nil {
					spec.Command = append(spec.Command, t)
				}
			}
			if len(spec.Command) > 0 && spec.Command[0].IsLiteral() && spec.Command[0].Source() == "" {
				d.KeyErrorf(items[0], "command[0]", "the program is empty")
			}
		case "stdin":
			spec.Stdin = d.Template(kv.Value, "stdin")
		case "timeout":
			spec.Timeout, _ = d.Duration(kv.Value, "timeout")
		case "publish_output":
			spec.PublishOutput = d.Template(kv.Value, "publish_output")
			if spec.PublishOutput != nil && spec.PublishOutput.IsLiteral() {
				if err := topic.ValidateName(spec.PublishOutput.Source()); err != nil {
					d.KeyErrorf(kv.Value, "publish_output", "%v", err)
				}
			}
		}
	}
	if spec.Command == nil {
		d.Missing("command", "the program and its arguments, as a list")
	}
	if d.Failed() {
		return nil
	}
	return spec
}

// Templates implements Spec.
func (s *ExecSpec) Templates() []Template {
	out := append([]Template(nil), s.Command...)
	if s.Stdin != nil {
		out = append(out, s.Stdin)
	}
	if s.PublishOutput != nil {
		out = append(out, s.PublishOutput)
	}
	return out
}

// PublishTopic returns the topic stdout is published to, or nil: loop
// analysis (docs/reliability.md) reads it.
func (s *ExecSpec) PublishTopic() Template { return s.PublishOutput }

// Render implements Spec.
func (s *ExecSpec) Render(r Renderer, _ []byte) (Action, error) {
	x := &Exec{Args: make([]string, len(s.Command)), Timeout: s.Timeout, Broker: s.Broker}
	for i, t := range s.Command {
		a, err := r.Render(t)
		if err != nil {
			return nil, fmt.Errorf("command[%d]: %w", i, err)
		}
		if strings.IndexByte(a, 0) >= 0 {
			return nil, fmt.Errorf("command[%d]: renders a NUL byte, which no argument can hold", i)
		}
		x.Args[i] = a
	}
	if x.Args[0] == "" {
		return nil, errors.New("command[0]: the program renders empty")
	}
	if s.Stdin != nil {
		b, err := r.Append(nil, s.Stdin)
		if err != nil {
			return nil, fmt.Errorf("stdin: %w", err)
		}
		x.Stdin = b
	}
	if s.PublishOutput != nil {
		t, err := r.Render(s.PublishOutput)
		if err != nil {
			return nil, fmt.Errorf("publish_output: %w", err)
		}
		if err := topic.ValidateName(t); err != nil {
			return nil, fmt.Errorf("rendered publish_output: %w", err)
		}
		x.PublishOutput = t
	}
	return x, nil
}

// Describe implements Spec.
func (s *ExecSpec) Describe() []Field {
	srcs := make([]string, len(s.Command))
	for i, t := range s.Command {
		srcs[i] = t.Source()
	}
	out := []Field{{Name: "command", Value: jsonList(srcs), Bare: true, JSON: true},
		{Name: "timeout", Value: FormatDuration(s.Timeout), Quiet: true}}
	if s.PublishOutput != nil {
		out = append(out, Field{Name: "publish_output", Value: s.PublishOutput.Source()})
	}
	if s.Stdin != nil {
		out = append(out, Field{Name: "stdin", Value: s.Stdin.Source(), Text: true})
	}
	return out
}

func jsonList(items []string) string {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(items)
	return strings.TrimSuffix(b.String(), "\n")
}

// Exec is a rendered exec action: a program with its arguments.
type Exec struct {
	Args          []string // Args[0] is the program: a path, or a name looked up in PATH
	Stdin         []byte   // nil: no input
	Timeout       time.Duration
	PublishOutput string // "": do not publish stdout
	Broker        string // where stdout is published ("": the default broker)
}

// Fields implements Action.
func (e *Exec) Fields() []Field {
	out := []Field{{Name: "command", Value: jsonList(e.Args), Bare: true, JSON: true},
		{Name: "timeout", Value: FormatDuration(e.Timeout), Quiet: true}}
	if e.PublishOutput != "" {
		out = append(out, Field{Name: "publish_output", Value: e.PublishOutput})
	}
	if e.Stdin != nil {
		out = append(out, Field{Name: "stdin", Value: string(e.Stdin), Text: true})
	}
	return out
}

// run queues the program for the executor's exec workers: at most
// ExecConcurrency run at once, ExecQueue wait; beyond that the action is
// dropped as "queue_full".
func (e *Exec) run(x *Executor, req *Request, once *reportOnce) {
	r := *req
	x.mu.Lock()
	if x.closed {
		x.mu.Unlock()
		once.claim()
		x.rep.ActionDone(req.Rule, req.Kind, fmt.Errorf("exec: %w", ErrShuttingDown), 0)
		return
	}
	// Under x.mu and not closed: Close cannot be waiting for the workers
	// yet, so starting them here cannot race its wait.
	x.startExecWorkers()
	// Running and waiting programs count alike, whether or not a worker
	// has taken the request off the channel yet.
	if x.execInFlight < x.execWorkers+x.execWaiting {
		x.execInFlight++
		x.execQueue <- &r // never blocks: its capacity is the bound
		x.mu.Unlock()
		once.claim()
		return
	}
	x.mu.Unlock()
	once.claim()
	x.rep.Dropped(req.Rule, req.Kind, "queue_full")
	x.rep.ActionDone(req.Rule, req.Kind, fmt.Errorf("exec %s: %w", e.Args[0], ErrQueueFull), 0)
	if n := x.execDrops.Count(time.Now(), dropLogEvery); n > 0 {
		x.log.Warn("exec queue full, dropping programs", "rule", req.Rule, "action", req.Kind.String(),
			"concurrency", x.execWorkers, "queue", x.execWaiting, "dropped", n)
	}
}

// limitedBuffer keeps the first max bytes written to it and counts the
// rest, so a program that floods its output neither blocks nor grows
// memory.
type limitedBuffer struct {
	buf     []byte
	max     int
	dropped int64
}

func (b *limitedBuffer) Write(p []byte) (int, error) {
	if room := b.max - len(b.buf); room > 0 {
		b.buf = append(b.buf, p[:min(room, len(p))]...)
		b.dropped += int64(len(p) - min(room, len(p)))
	} else {
		b.dropped += int64(len(p))
	}
	return len(p), nil
}

// String returns what was kept, as valid UTF-8, with a note of what was
// not.
func (b *limitedBuffer) String() string {
	s := strings.ToValidUTF8(string(b.buf), "\uFFFD")
	if b.dropped > 0 {
		s += fmt.Sprintf("… (%d more bytes not kept)", b.dropped)
	}
	return s
}

// runExec runs one queued program to its end and reports it: ok when it
// exits 0; an error when it cannot start, exits otherwise, or outlives its
// timeout — then its whole process group is killed.
func (x *Executor) runExec(r *Request) {
	e := r.Action.(*Exec)
	start := time.Now()
	var once reportOnce
	defer func() {
		if p := recover(); p != nil {
			x.log.Error("action panicked", "rule", r.Rule, "action", r.Kind.String(), "panic", p)
			if once.claim() {
				x.rep.ActionDone(r.Rule, r.Kind, fmt.Errorf("exec action panicked: %v", p), time.Since(start))
			}
		}
	}()
	name := e.Args[0]
	if x.base.Err() != nil {
		x.cancelled.Add(1)
		once.claim()
		x.rep.ActionDone(r.Rule, r.Kind, fmt.Errorf("exec %s: not run: %w", name, ErrShuttingDown), 0)
		return
	}
	timeout := e.Timeout
	if timeout <= 0 {
		timeout = DefaultExecTimeout
	}
	ctx, cancel := context.WithTimeout(x.base, timeout)
	defer cancel()

	cmd := exec.Command(name, e.Args[1:]...)
	cmd.Env = append(programEnv(os.Environ()), "MQTT_RULES_RULE="+r.Rule, "MQTT_RULES_TOPIC="+r.Topic, "MQTT_RULES_KEY="+r.Key)
	if e.Stdin != nil {
		cmd.Stdin = bytes.NewReader(e.Stdin)
	}
	stdout := &limitedBuffer{max: x.execOutput}
	stderr := &limitedBuffer{max: x.execOutput}
	cmd.Stdout, cmd.Stderr = stdout, stderr
	// The program may leave children holding its output pipes open: do
	// not wait for them longer than this after it exits or is killed.
	cmd.WaitDelay = time.Second
	newProcessGroup(cmd)

	err := cmd.Start()
	if err != nil {
		once.claim()
		err = fmt.Errorf("exec %s: %w", name, startError(err))
		x.log.Warn("exec failed", "rule", r.Rule, "topic", r.Topic, "action", r.Kind.String(), "err", Mask(err.Error(), r.Secrets))
		x.rep.ActionDone(r.Rule, r.Kind, err, time.Since(start))
		return
	}
	waited := make(chan error, 1)
	go func() { waited <- cmd.Wait() }()
	timedOut := false
	select {
	case err = <-waited:
	case <-ctx.Done():
		timedOut = errors.Is(ctx.Err(), context.DeadlineExceeded)
		killProcessGroup(cmd)
		err = <-waited
	}
	// Whatever the program left running in its group (a "cmd &") goes
	// with it: an action's processes do not outlive the action.
	killProcessGroup(cmd)
	if errors.Is(err, exec.ErrWaitDelay) && cmd.ProcessState != nil && cmd.ProcessState.Success() {
		err = nil // it exited 0; a child held its output open past WaitDelay
	}
	took := time.Since(start)

	attrs := []any{"rule", r.Rule, "topic", r.Topic, "action", r.Kind.String(), "program", name, "took", took.Round(time.Millisecond)}
	if out := stdout.String(); out != "" {
		attrs = append(attrs, "stdout", Mask(out, r.Secrets))
	}
	if out := stderr.String(); out != "" {
		attrs = append(attrs, "stderr", Mask(out, r.Secrets))
	}
	switch {
	case timedOut:
		err = fmt.Errorf("exec %s: killed after its timeout of %s", name, FormatDuration(timeout))
	case x.base.Err() != nil && err != nil:
		x.cancelled.Add(1)
		err = fmt.Errorf("exec %s: killed at shutdown: %w", name, ErrShuttingDown)
	case err != nil:
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			err = fmt.Errorf("exec %s: %s", name, ee.ProcessState)
		} else {
			err = fmt.Errorf("exec %s: %w", name, err)
		}
	}
	once.claim()
	if err != nil {
		x.log.Warn("exec failed", append(attrs, "err", err)...)
		x.rep.ActionDone(r.Rule, r.Kind, err, took)
		return
	}
	x.log.Info("exec done", attrs...)
	x.rep.ActionDone(r.Rule, r.Kind, nil, took)
	if e.PublishOutput != "" {
		x.publishOutput(r, e, stdout.buf)
	}
}

// publishOutput publishes a program's stdout (as much as was kept) on the
// rule's broker, one hop further than the message that fired the rule.
func (x *Executor) publishOutput(r *Request, e *Exec, out []byte) {
	topic := e.PublishOutput
	if x.pub == nil {
		x.log.Warn("exec output not published: no MQTT connection", "rule", r.Rule, "topic", topic)
		return
	}
	p := &Publish{Topic: topic, Payload: bytes.Clone(out), Broker: e.Broker}
	if g := x.guard.Load(); g != nil && !(*g).AllowPublish(r.Rule, p, r.Hop+1) {
		return // a loop cut: counted and logged by the guard
	}
	x.pub.Publish(p, func(err error) {
		if err != nil {
			x.log.Warn("exec output not published", "rule", r.Rule, "topic", topic, "err", err)
		}
	})
}

// programEnv is the engine's environment without the variables whose
// names look secret (token, password, key, …): a program gets what its
// command line or stdin give it from ${NAME}, not every credential the
// engine was started with (docs/rules.md, "exec").
func programEnv(env []string) []string {
	out := make([]string, 0, len(env))
	for _, kv := range env {
		name, _, _ := strings.Cut(kv, "=")
		if !LooksSecret(name) {
			out = append(out, kv)
		}
	}
	return out
}

// startError says why a program did not start in words a user can act on.
func startError(err error) error {
	var ee *exec.Error
	if errors.As(err, &ee) && errors.Is(ee.Err, exec.ErrNotFound) {
		return fmt.Errorf("program not found in PATH (%s); give its full path", os.Getenv("PATH"))
	}
	if errors.Is(err, os.ErrNotExist) {
		return errors.New("no such program")
	}
	if errors.Is(err, os.ErrPermission) {
		return errors.New("permission denied (is it executable?)")
	}
	return err
}

// startExecWorkers starts the exec workers on first use.
func (x *Executor) startExecWorkers() {
	x.execOnce.Do(func() {
		x.wg.Add(x.execWorkers)
		for range x.execWorkers {
			go func() {
				defer x.wg.Done()
				for r := range x.execQueue {
					x.runExec(r)
					x.mu.Lock()
					x.execInFlight--
					x.mu.Unlock()
				}
			}()
		}
	})
}

var _ io.Writer = (*limitedBuffer)(nil)
