package schedule

import (
	"fmt"
	"strconv"
	"strings"
)

// A field is one of the five cron fields. check reads a field's text with the
// same grammar as robfig/cron so that an error can name the field and the
// value at fault; robfig/cron then builds the schedule from the text check
// returns.
type field struct {
	name     string
	min, max int      // the values * stands for
	top      int      // the largest value written: 7 (Sunday) for day-of-week, else max
	names    []string // names[i] is the value base+i
	base     int
	wantName string // the names, listed for an error message
}

var fields = [5]field{
	{name: "minute", min: 0, max: 59, top: 59},
	{name: "hour", min: 0, max: 23, top: 23},
	{name: "day-of-month", min: 1, max: 31, top: 31},
	{
		name: "month", min: 1, max: 12, top: 12, base: 1,
		names:    []string{"jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"},
		wantName: "jan, feb, mar, apr, may, jun, jul, aug, sep, oct, nov or dec",
	},
	{
		name: "day-of-week", min: 0, max: 6, top: 7, base: 0,
		names:    []string{"sun", "mon", "tue", "wed", "thu", "fri", "sat"},
		wantName: "sun, mon, tue, wed, thu, fri or sat",
	},
}

const (
	fieldDom   = 2
	fieldMonth = 3
	fieldDow   = 4
)

func (f *field) errorf(format string, args ...any) error {
	return fmt.Errorf(f.name+": "+format, args...)
}

// check validates text, a comma-separated list of items, each `*`, a value or
// a range `a-b`, optionally followed by a step `/n` (a single value with a
// step, `a/n`, means `a-max/n`). It returns the text for robfig/cron, which
// is text itself except that Sunday written as 7 (`7`, `5-7`, `fri-sun`)
// becomes 0.
func (f *field) check(text string) (string, error) {
	items := strings.Split(text, ",")
	var out []string // nil while text needs no rewriting
	for i, it := range items {
		if it == "" {
			return "", f.errorf("empty item in list %q", text)
		}
		lo, hi, step, err := f.item(it)
		if err != nil {
			return "", err
		}
		if hi <= f.max {
			if out != nil {
				out = append(out, it)
			}
			continue
		}
		// Only day-of-week gets here: its range reaches 7, which robfig/cron
		// does not read. List the days with Sunday as 0.
		if out == nil {
			out = append(make([]string, 0, len(items)), items[:i]...)
		}
		var days []string
		for v := lo; v <= hi; v += step {
			days = append(days, strconv.Itoa(v%7))
		}
		out = append(out, strings.Join(days, ","))
	}
	if out == nil {
		return text, nil
	}
	return strings.Join(out, ","), nil
}

// item reads one list item and returns the values it covers: lo to hi by step.
func (f *field) item(it string) (lo, hi, step int, err error) {
	rng, stepText, hasStep := strings.Cut(it, "/")
	step = 1
	if hasStep {
		switch n, ok := number(stepText); {
		case strings.Contains(stepText, "/"):
			return 0, 0, 0, f.errorf("%q has more than one step", it)
		case stepText == "":
			return 0, 0, 0, f.errorf("%q is missing its step", it)
		case !ok:
			return 0, 0, 0, f.errorf("step %q is not a number", stepText)
		case n < 1 || n > f.max-f.min:
			return 0, 0, 0, f.errorf("step %s is out of range 1-%d", stepText, f.max-f.min)
		default:
			step = n
		}
	}
	if rng == "*" {
		return f.min, f.max, step, nil
	}
	a, b, isRange := strings.Cut(rng, "-")
	if a == "" || isRange && (b == "" || strings.Contains(b, "-")) {
		return 0, 0, 0, f.errorf("%q is not a number or a range", it)
	}
	if lo, err = f.value(a, -1); err != nil {
		return 0, 0, 0, err
	}
	switch {
	case isRange:
		if hi, err = f.value(b, lo); err != nil {
			return 0, 0, 0, err
		}
	case hasStep:
		hi = max(lo, f.max)
	default:
		hi = lo
	}
	if lo > hi {
		if hasStep {
			return 0, 0, 0, f.errorf("range %s runs backwards", rng)
		}
		return 0, 0, 0, f.errorf("range %s runs backwards; use a list such as %s,%s",
			rng, f.span(a, f.bound(f.max, a)), f.span(f.bound(f.min, b), b))
	}
	return lo, hi, step, nil
}

// value reads a number or a name. start is the value at the start of the
// range tok ends, or -1: Sunday ends a range starting on another day as 7.
func (f *field) value(tok string, start int) (int, error) {
	if n, ok := number(tok); ok {
		if n < f.min || n > f.top {
			return 0, f.errorf("%s is out of range %d-%d", tok, f.min, f.top)
		}
		return n, nil
	} else if isDigits(tok) {
		return 0, f.errorf("%s is out of range %d-%d", tok, f.min, f.top)
	}
	if f.names == nil {
		return 0, f.errorf("%q is not a number", tok)
	}
	if !isLetters(tok) {
		return 0, f.errorf("%q is not a number or a name", tok)
	}
	for i, name := range f.names {
		if strings.EqualFold(tok, name) {
			v := f.base + i
			if v == 0 && start > 0 {
				v = 7
			}
			return v, nil
		}
	}
	return 0, f.errorf("unknown name %q (want %s)", tok, f.wantName)
}

// bound writes the field's value v as a name when like is a name.
func (f *field) bound(v int, like string) string {
	if f.names != nil && isLetters(like) {
		return f.names[v-f.base]
	}
	return strconv.Itoa(v)
}

func (f *field) span(a, b string) string {
	if a == b {
		return a
	}
	return a + "-" + b
}

// number reads a decimal number of at most four digits (enough for any field).
func number(s string) (int, bool) {
	if len(s) == 0 || len(s) > 4 || !isDigits(s) {
		return 0, false
	}
	n, err := strconv.Atoi(s)
	return n, err == nil
}

func isDigits(s string) bool {
	for i := range len(s) {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != ""
}

func isLetters(s string) bool {
	for i := range len(s) {
		if c := s[i] | 0x20; c < 'a' || c > 'z' {
			return false
		}
	}
	return s != ""
}
