package main

import (
	"errors"
	"fmt"
	"io"

	"github.com/mqtt-rules/mqtt-rules/rules"
)

// validateCmd loads and compiles rule files without running them
// (docs/rules.md, Rule files).
func validateCmd(args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("validate", stderr, "validate [--allow-exec] [--latitude N --longitude N] PATH...")
	allowExec := fs.Bool("allow-exec", false, "accept exec actions, as `mqtt-rules run --allow-exec` does")
	var place placeFlags
	place.define(fs)
	paths, err := parseArgs(fs, args)
	if err != nil {
		return usageCode(err)
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

func plural(n int, word string) string {
	if n == 1 {
		return word
	}
	return word + "s"
}
