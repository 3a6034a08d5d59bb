package main

import (
	"errors"
	"flag"
	"fmt"
	"io"

	"github.com/mqtt-rules/mqtt-rules/rules"
)

// validateCmd loads and compiles rule files without running them
// (docs/rules.md, Rule files).
func validateCmd(args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("validate", stderr, "validate [--config FILE] [--allow-exec] [--latitude N --longitude N] PATH...")
	configFile := fs.String("config", "", "the config file of `mqtt-rules run`: its rules (when no PATH is given), allow_exec, place and brokers: are checked as run would")
	allowExec := fs.Bool("allow-exec", false, "accept exec actions, as `mqtt-rules run --allow-exec` does")
	var place placeFlags
	place.define(fs)
	paths, err := parseArgs(fs, args)
	if err != nil {
		return usageCode(err)
	}
	var brokers []string
	if *configFile != "" {
		// Read it as run does, with the command line's values winning.
		rfs := newFlagSet("run", io.Discard, "run")
		var ro runOptions
		ro.define(rfs)
		for _, f := range []string{"allow-exec", "timezone", "latitude", "longitude"} {
			if v := fs.Lookup(f); v != nil && isSet(fs, f) {
				_ = rfs.Set(f, v.Value.String())
			}
		}
		if err := ro.parse(rfs, []string{"--config", *configFile}); err != nil {
			fmt.Fprintf(stderr, "mqtt-rules validate: %v\n", err)
			return exitInvalid
		}
		if len(paths) == 0 {
			paths = ro.cfg.Rules
		}
		*allowExec = ro.cfg.AllowExec
		place = ro.place
		for _, b := range ro.cfg.Brokers {
			brokers = append(brokers, b.Name)
		}
	}
	if len(paths) == 0 {
		fmt.Fprintln(stderr, "mqtt-rules validate: name at least one rule file or directory")
		fs.Usage()
		return exitUsage
	}
	_, loc, err := place.parse()
	if err != nil {
		fmt.Fprintf(stderr, "mqtt-rules validate: %v\n", err)
		return exitUsage
	}
	ld := rules.NewLoader()
	ld.Location = loc
	ld.Brokers = brokers
	if *allowExec {
		ld.Allow = []string{"--allow-exec"}
	}
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
		return exitInvalid
	}
	for _, w := range rs.Warnings() {
		fmt.Fprintf(stderr, "warning: %s\n", w)
	}
	fmt.Fprintf(stdout, "ok: %d %s in %d %s\n", len(rs.Rules), plural(len(rs.Rules), "rule"), len(rs.Files), plural(len(rs.Files), "file"))
	return exitOK
}

// isSet reports whether the command line set the flag.
func isSet(fs *flag.FlagSet, name string) bool {
	set := false
	fs.Visit(func(f *flag.Flag) { set = set || f.Name == name })
	return set
}

func plural(n int, word string) string {
	if n == 1 {
		return word
	}
	return word + "s"
}
