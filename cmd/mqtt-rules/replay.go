package main

import (
	"fmt"
	"io"
	"os"
	"time"

	"github.com/mqtt-rules/mqtt-rules/internal/dryrun"
	"github.com/mqtt-rules/mqtt-rules/rules"
)

// replayCmd runs a capture (see record) through a rule set on a virtual
// clock and prints what would fire; with --against, only the firings that
// differ from a baseline set (docs/testing.md, 6. Record and replay).
func replayCmd(args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("replay", stderr, "replay FILE --rules PATH... [--against PATH...] [--until D|TIME]")
	var rulePaths, against stringList
	fs.Var(&rulePaths, "rules", "rule file or directory, repeatable (default ./rules); with --against, the candidate")
	fs.Var(&against, "against", "baseline rule file or directory, repeatable: print only the firings that differ (+ candidate only, - baseline only)")
	until := fs.String("until", "", "where the virtual clock stops: a duration after the last message (30m) or an RFC 3339 time (default: at the last message)")
	var place placeFlags
	place.define(fs)
	pos, err := parseArgs(fs, args)
	if err != nil {
		return usageCode(err)
	}
	usageErr := func(format string, a ...any) int {
		fmt.Fprintf(stderr, "mqtt-rules replay: "+format+"\n", a...)
		return exitUsage
	}
	if len(pos) != 1 {
		fmt.Fprintln(stderr, "mqtt-rules replay: name one capture file (written by mqtt-rules record; - reads standard input)")
		fs.Usage()
		return exitUsage
	}
	var opts dryrun.ReplayOptions
	zone, loc, err := place.parse()
	if err != nil {
		return usageErr("%v", err)
	}
	opts.TimeZone, opts.Location = zone, loc
	if *until != "" {
		if d, err := time.ParseDuration(*until); err == nil && d >= 0 {
			opts.After = d
		} else if t, err := time.Parse(time.RFC3339Nano, *until); err == nil {
			opts.Until = t
		} else {
			return usageErr("--until %q: want a duration after the last message (30m) or an RFC 3339 time", *until)
		}
	}
	if len(rulePaths) == 0 {
		rulePaths = stringList{"./rules"}
	}
	cand, ok := loadRules(rulePaths, stderr, loc)
	if !ok {
		return exitInvalid
	}
	sets := []*rules.RuleSet{cand}
	if len(against) > 0 {
		base, ok := loadRules(against, stderr, loc)
		if !ok {
			return exitInvalid
		}
		sets = append(sets, base)
	}

	var in io.Reader = os.Stdin
	name := pos[0]
	if name == "-" {
		name = "standard input"
	} else {
		f, err := os.Open(pos[0])
		if err != nil {
			fmt.Fprintf(stderr, "mqtt-rules replay: %v\n", err)
			return exitInvalid
		}
		defer f.Close()
		in = f
	}

	firings := make([][]dryrun.Firing, len(sets))
	st, err := dryrun.Replay(dryrun.NewCaptureReader(in, name), sets, opts, func(set int, f dryrun.Firing) {
		if len(sets) == 1 {
			fmt.Fprintln(stdout, f)
			firings[set] = append(firings[set], dryrun.Firing{}) // counted only
			return
		}
		firings[set] = append(firings[set], f)
	})
	if err != nil {
		fmt.Fprintf(stderr, "mqtt-rules replay: %v\n", err)
		return exitInvalid
	}
	if st.Reordered > 0 {
		fmt.Fprintf(stderr, "warning: %d %s stamped earlier than the one before, replayed at its time\n", st.Reordered, plural(st.Reordered, "message"))
	}
	span := "no message"
	if st.Messages > 0 {
		span = fmt.Sprintf("%d %s from %s to %s, clock stopped at %s", st.Messages, plural(st.Messages, "message"),
			st.First.Format(dryrun.FiringTimeFormat), st.Last.Format(dryrun.FiringTimeFormat), st.End.Format(dryrun.FiringTimeFormat))
	}
	if len(sets) == 1 {
		fmt.Fprintf(stderr, "replayed %s: %d %s\n", span, len(firings[0]), plural(len(firings[0]), "firing"))
		return exitOK
	}
	diff := dryrun.Diff(firings[1], firings[0])
	for _, d := range diff {
		fmt.Fprintln(stdout, d)
	}
	if len(diff) == 0 {
		fmt.Fprintln(stdout, "no difference")
	}
	fmt.Fprintf(stderr, "replayed %s: candidate %d %s, baseline %d %s, %d %s\n", span,
		len(firings[0]), plural(len(firings[0]), "firing"), len(firings[1]), plural(len(firings[1]), "firing"),
		len(diff), plural(len(diff), "difference"))
	return exitOK
}
