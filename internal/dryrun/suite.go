package dryrun

import (
	"errors"
	"fmt"
	"github.com/mqtt-rules/mqtt-rules/actions"
	"io"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/mqtt-rules/mqtt-rules/internal/sun"
	"github.com/mqtt-rules/mqtt-rules/rules"
)

// ErrNoTests is returned by RunTests when the paths hold no test file.
var ErrNoTests = errors.New("no rule test files (*_test.yaml)")

// ErrNoCases is returned by RunTests when no case matches SuiteOptions.Run.
var ErrNoCases = errors.New("no test case matches --run")

// SuiteOptions configures RunTests.
type SuiteOptions struct {
	// Verbose shows every case, with every message and why each rule did
	// or did not fire.
	Verbose bool
	// Run, when set, runs only the cases whose name it matches.
	Run *regexp.Regexp
	// LookupEnv resolves ${NAME} in rule and test files (nil: the process
	// environment).
	LookupEnv func(string) (string, bool)
	// TimeZone and Location are --timezone and --latitude/--longitude; a
	// case's timezone: and location: win.
	TimeZone *time.Location
	Location *sun.Location
}

// Summary counts the cases of a RunTests.
type Summary struct {
	Passed, Failed int
	Files          int // test files run
	Broken         int // test files or rule sets that did not load (their cases count as failed)
}

// OK reports whether every case passed and everything loaded.
func (s Summary) OK() bool { return s.Failed == 0 && s.Broken == 0 }

// RunTests finds the rule test files (*_test.yaml, *_test.yml) under paths
// and runs every case, writing a report to w. Each test file runs against
// the rule files its rule_files: key names (relative to it) when it has
// one; otherwise against every rule file under paths, loaded as one set as
// `mqtt-rules run --rules` would; and when paths hold no rule file at all
// (only test files were named), against the rule files of the test file's
// own folder.
//
// The report has a block for every failing case (see WriteResult), a line
// per file, and a last line "N passed, M failed". The error is ErrNoTests
// or a path that cannot be read; failures are in the Summary.
func RunTests(w io.Writer, paths []string, opts SuiteOptions) (Summary, error) {
	var sum Summary
	tests, err := TestFiles(paths...)
	if err != nil {
		return sum, err
	}
	if len(tests) == 0 {
		return sum, fmt.Errorf("%w under %s", ErrNoTests, strings.Join(paths, ", "))
	}
	ruleFiles, err := rules.Files(paths...)
	if err != nil {
		return sum, err
	}
	sets := &ruleSets{lookup: opts.LookupEnv, location: opts.Location, byKey: map[string]*loaded{}}
	width := 0
	for _, t := range tests {
		width = max(width, len(t))
	}
	for _, path := range tests {
		sum.Files++
		tf, err := LoadTestFile(path, opts.LookupEnv)
		if err != nil {
			sum.Broken++
			writeLoadError(w, "test file "+path, err)
			fmt.Fprintf(w, "FAIL  %-*s  does not load\n", width, path)
			continue
		}
		src := ruleFiles
		switch {
		case len(tf.RuleFiles) > 0:
			src = tf.RuleFiles
		case len(src) == 0:
			src = []string{filepath.Dir(path)}
		}
		set := sets.load(src, caseLocation(tf), tf)
		if len(set.skipped) > 0 && !set.noted {
			set.noted = true
			for _, e := range set.skipped {
				fmt.Fprintf(w, "note: %s\n      %s is left out of these tests: set the variable, or give it under env: in the test file\n", e, e.File)
			}
		}
		if set.err != nil {
			if !set.reported {
				set.reported = true
				sum.Broken++
				writeLoadError(w, "rules "+strings.Join(src, ", "), set.err)
			}
			fmt.Fprintf(w, "FAIL  %-*s  its rules do not load\n", width, path)
			continue
		}
		passed, failed := 0, 0
		for _, c := range tf.Cases {
			if opts.Run != nil && !opts.Run.MatchString(c.Name) {
				continue
			}
			res := RunCaseWith(set.rs, c, Options{TimeZone: opts.TimeZone, Location: opts.Location})
			WriteResult(w, set.rs, res, opts.Verbose)
			if res.Passed {
				passed++
			} else {
				failed++
			}
		}
		sum.Passed += passed
		sum.Failed += failed
		switch {
		case passed+failed == 0 && opts.Run != nil:
			// No case of this file matches --run.
		case failed > 0:
			fmt.Fprintf(w, "FAIL  %-*s  %d of %d %s failed\n", width, path, failed, passed+failed, plural(passed+failed, "case"))
		default:
			fmt.Fprintf(w, "ok    %-*s  %d %s\n", width, path, passed, plural(passed, "case"))
		}
	}
	if opts.Run != nil && sum.Passed+sum.Failed+sum.Broken == 0 {
		return sum, fmt.Errorf("%w %q", ErrNoCases, opts.Run)
	}
	if sum.Broken > 0 {
		fmt.Fprintf(w, "%d test or rule %s did not load (counted as failed)\n", sum.Broken, plural(sum.Broken, "file"))
	}
	fmt.Fprintf(w, "%d passed, %d failed\n", sum.Passed, sum.Failed+sum.Broken)
	return sum, nil
}

func writeLoadError(w io.Writer, what string, err error) {
	fmt.Fprintf(w, "--- ERROR: %s\n", what)
	for _, l := range strings.Split(err.Error(), "\n") {
		fmt.Fprintf(w, "    %s\n", l)
	}
}

// loaded is a rule set loaded for test files, or why it did not load.
type loaded struct {
	rs       *rules.RuleSet
	err      error
	reported bool
	// skipped are the errors of rule files left out because a ${NAME} of
	// theirs is not set: a test of other rules needs no unrelated secret.
	skipped []*rules.Error
	noted   bool
}

// ruleSets loads each distinct set of rule paths once.
type ruleSets struct {
	lookup   func(string) (string, bool)
	location *sun.Location // --latitude/--longitude
	byKey    map[string]*loaded
}

// caseLocation returns a location of the test file's cases, if one sets
// it: sun rules then load for the file even without --latitude.
func caseLocation(tf *TestFile) *sun.Location {
	for _, c := range tf.Cases {
		if c.Location != nil {
			return c.Location
		}
	}
	return nil
}

func (s *ruleSets) load(paths []string, caseLoc *sun.Location, tf *TestFile) *loaded {
	loc := s.location
	if loc == nil {
		loc = caseLoc
	}
	key := strings.Join(paths, "\x00") + fmt.Sprint("\x00", loc != nil, "\x00", envKey(tf.Env))
	if l, ok := s.byKey[key]; ok {
		return l
	}
	l := &loaded{}
	ld := rules.NewLoader()
	ld.Allow = actions.Gates() // a dry run runs no program
	ld.NoLocationOK = true     // sun rules do not fire without a location
	ld.AnyBroker = true        // nor does it connect to any broker
	ld.Location = loc
	ld.LookupEnv = tf.Lookup(s.lookup)
	l.rs, l.err = ld.Load(paths...)
	var es rules.Errors
	if errors.As(l.err, &es) && allUnsetVariables(es) {
		// Leave out the files that need a variable that is not set.
		skip := map[string]bool{}
		for _, e := range es {
			skip[e.File] = true
		}
		files, err := rules.Files(paths...)
		if err == nil {
			var keep []string
			for _, f := range files {
				if !skip[f] {
					keep = append(keep, f)
				}
			}
			l.skipped = es
			l.rs, l.err = ld.Load(keep...)
		}
	}
	if l.err == nil && len(l.rs.Files) == 0 {
		l.err = fmt.Errorf("no rule files under %s", strings.Join(paths, ", "))
	}
	s.byKey[key] = l
	return l
}

// allUnsetVariables reports whether every error is a ${NAME} that is not
// set.
func allUnsetVariables(es rules.Errors) bool {
	for _, e := range es {
		if !strings.Contains(e.Msg, "environment variable ") || !strings.Contains(e.Msg, " is not set") {
			return false
		}
	}
	return len(es) > 0
}

func envKey(env map[string]string) string {
	keys := make([]string, 0, len(env))
	for k, v := range env {
		keys = append(keys, k+"="+v)
	}
	slices.Sort(keys)
	return strings.Join(keys, "\x00")
}

// TestFiles lists the rule test files under paths (files named directly,
// or found in directories searched recursively, following symlinks and
// skipping names that start with "."), sorted, each once.
func TestFiles(paths ...string) ([]string, error) {
	return rules.FindFiles("test path", paths, func(name string, _ bool) bool {
		return rules.IsTestFile(name)
	})
}
