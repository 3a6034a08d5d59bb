package main

import (
	"errors"
	"fmt"
	"github.com/mqtt-rules/mqtt-rules/actions"
	"io"
	"regexp"
	"strings"
	"time"

	"github.com/mqtt-rules/mqtt-rules/engine"
	"github.com/mqtt-rules/mqtt-rules/internal/dryrun"
	"github.com/mqtt-rules/mqtt-rules/internal/sun"
	"github.com/mqtt-rules/mqtt-rules/rules"
)

const testSynopsis = `test PATH... [-v] [--run REGEX]
       mqtt-rules test PATH... --message 'TOPIC=PAYLOAD'... [--explain] [--qos N] [--retain] [--now TIME] [--until D]

Without --message, runs the rule test files (*_test.yaml) found under PATH
against the rule files found under PATH (docs/testing.md). With --message,
dry-runs the messages through the rules: nothing is published, no webhook
is called.`

// testCmd runs rule test files, or dry-runs messages (docs/testing.md,
// 2. Write a test and 4. Dry-run messages).
func testCmd(args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("test", stderr, testSynopsis)
	var messages stringList
	fs.Var(&messages, "message", "dry-run a message, `TOPIC=PAYLOAD` (repeatable; the topic ends at the first =)")
	qos := fs.Int("qos", 0, "QoS of the --message messages (0, 1 or 2)")
	retain := fs.Bool("retain", false, "set the retain flag of the --message messages")
	explain := fs.Bool("explain", false, "say why each rule a message reached did or did not fire (with test files: as -v)")
	now := fs.String("now", "", "virtual `TIME` of the --message messages, RFC 3339 (default: the current time)")
	until := fs.Duration("until", 0, "with --message: run the virtual clock this much longer, showing the timers (for, absent) that fire")
	verbose := fs.Bool("v", false, "show every test case: each message, the rules it reached and why they did or did not fire")
	run := fs.String("run", "", "run only the test cases whose name matches this regular `expression`")
	var place placeFlags
	place.define(fs)
	paths, err := parseArgs(fs, args)
	if err != nil {
		return usageCode(err)
	}
	usageErr := func(format string, a ...any) int {
		fmt.Fprintf(stderr, "mqtt-rules test: "+format+"\n", a...)
		return exitUsage
	}
	if len(paths) == 0 {
		fmt.Fprintln(stderr, "mqtt-rules test: name at least one rule file or directory")
		fs.Usage()
		return exitUsage
	}
	zone, loc, err := place.parse()
	if err != nil {
		return usageErr("%v", err)
	}
	if len(messages) == 0 {
		opts := dryrun.SuiteOptions{Verbose: *verbose || *explain, TimeZone: zone, Location: loc}
		if *run != "" {
			re, err := regexp.Compile(*run)
			if err != nil {
				return usageErr("--run: %v", err)
			}
			opts.Run = re
		}
		sum, err := dryrun.RunTests(stdout, paths, opts)
		switch {
		case errors.Is(err, dryrun.ErrNoTests):
			return usageErr("%v; write one (see docs/testing.md), or dry-run messages with --message 'TOPIC=PAYLOAD'", err)
		case errors.Is(err, dryrun.ErrNoCases):
			return usageErr("%v", err)
		case err != nil:
			fmt.Fprintf(stderr, "mqtt-rules test: %v\n", err)
			return exitInvalid
		case !sum.OK():
			return exitInvalid
		}
		return exitOK
	}

	if *qos < 0 || *qos > 2 {
		return usageErr("--qos %d: want 0, 1 or 2", *qos)
	}
	if *until < 0 {
		return usageErr("--until %v: must not be negative", *until)
	}
	opts := dryrun.DryRunOptions{Explain: *explain, Until: *until, TimeZone: zone, Location: loc}
	if *now != "" {
		t, err := time.Parse(time.RFC3339Nano, *now)
		if err != nil {
			return usageErr("--now %q: not an RFC 3339 time (write 2026-01-01T23:30:00+01:00)", *now)
		}
		opts.Now = t
	}
	var msgs []engine.Message
	for _, s := range messages {
		m, err := dryrun.ParseMessage(s)
		if err != nil {
			return usageErr("--message: %v", err)
		}
		m.QoS, m.Retained = byte(*qos), *retain
		msgs = append(msgs, m)
	}
	rs, ok := loadRules(paths, stderr, loc)
	if !ok {
		return exitInvalid
	}
	dryrun.DryRun(stdout, rs, msgs, opts)
	return exitOK
}

// loadRules loads the rule files under paths, printing the errors (and
// warnings) to stderr as validate does.
func loadRules(paths []string, stderr io.Writer, loc *sun.Location) (*rules.RuleSet, bool) {
	ld := rules.NewLoader()
	ld.Location = loc
	ld.Allow = actions.Gates() // a dry run runs no program
	ld.NoLocationOK = true     // sun rules do not fire without a location
	ld.AnyBroker = true        // nor does it connect to any broker
	rs, err := ld.Load(paths...)
	if err != nil {
		var es rules.Errors
		if errors.As(err, &es) {
			for _, e := range es {
				fmt.Fprintln(stderr, e)
			}
			fmt.Fprintf(stderr, "%d %s\n", len(es), plural(len(es), "error"))
		} else {
			fmt.Fprintln(stderr, err)
		}
		return nil, false
	}
	if len(rs.Files) == 0 {
		fmt.Fprintf(stderr, "no rule files (*.yaml, *.yml) under %s\n", strings.Join(paths, ", "))
		return nil, false
	}
	for _, w := range rs.Warnings() {
		fmt.Fprintf(stderr, "warning: %s\n", w)
	}
	return rs, true
}
