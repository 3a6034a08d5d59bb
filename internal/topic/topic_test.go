package topic

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
)

func TestParse(t *testing.T) {
	tests := []struct {
		in       string
		mqtt     string
		captures []string
		err      string
	}{
		{in: "sport/tennis/player1", mqtt: "sport/tennis/player1"},
		{in: "sport/#", mqtt: "sport/#"},
		{in: "#", mqtt: "#"},
		{in: "+", mqtt: "+"},
		{in: "+/tennis/#", mqtt: "+/tennis/#"},
		{in: "sport/+/player1", mqtt: "sport/+/player1"},
		{in: "/finance", mqtt: "/finance"},
		{in: "a//b", mqtt: "a//b"},
		{in: "$SYS/#", mqtt: "$SYS/#"},
		{in: "home/{room}/temperature", mqtt: "home/+/temperature", captures: []string{"room"}},
		{in: "zigbee2mqtt/{device}/{rest...}", mqtt: "zigbee2mqtt/+/#", captures: []string{"device", "rest"}},
		{in: "{all...}", mqtt: "#", captures: []string{"all"}},
		// [MQTT-4.7.1-2]
		{in: "sport/tennis#", err: "must fill a whole level"},
		{in: "sport/tennis/#/ranking", err: "# must be the last level"},
		{in: "#/a", err: "# must be the last level"},
		// [MQTT-4.7.1-3]
		{in: "sport+", err: "must fill a whole level"},
		{in: "a/b+/c", err: "must fill a whole level"},
		// [MQTT-4.7.3-1] [MQTT-4.7.3-2]
		{in: "", err: "topic is empty"},
		{in: "a/\x00", err: "NUL"},
		{in: "a/\xff", err: "not valid UTF-8"},
		{in: strings.Repeat("a", MaxLen+1), err: "more than 65535"},
		{in: "home/{room", err: "a capture is written {name}"},
		{in: "home/{1room}/x", err: "not an identifier"},
		{in: "home/{room}/{room}", err: "used twice"},
		{in: "home/{rest...}/x", err: "must be the last level"},
		{in: "home/{}/x", err: "not an identifier"},
		// A capture with text around it, subscribed as +.
		{in: "zigbee2mqtt/{room}_motion", mqtt: "zigbee2mqtt/+", captures: []string{"room"}},
		{in: "tele/sonoff-{id}/SENSOR", mqtt: "tele/+/SENSOR", captures: []string{"id"}},
		{in: "a/{x}_{y}", err: "once per level"},
		{in: "a/x_{rest...}", err: "takes no text around it"},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%.40q", tt.in), func(t *testing.T) {
			f, err := Parse(tt.in)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("Parse(%q) error = %v, want one containing %q", tt.in, err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatalf("Parse(%q): %v", tt.in, err)
			}
			if f.MQTT != tt.mqtt {
				t.Errorf("MQTT = %q, want %q", f.MQTT, tt.mqtt)
			}
			if got := f.Captures(); !slices.Equal(got, tt.captures) {
				t.Errorf("Captures = %q, want %q", got, tt.captures)
			}
		})
	}
}

// The examples of MQTT 3.1.1 §4.7.1 and §4.7.2, plus empty levels.
var matchCases = []struct {
	filter, topic string
	want          bool
}{
	{"sport/tennis/player1/#", "sport/tennis/player1", true},
	{"sport/tennis/player1/#", "sport/tennis/player1/ranking", true},
	{"sport/tennis/player1/#", "sport/tennis/player1/score/wimbledon", true},
	{"sport/#", "sport", true},
	{"#", "sport/tennis", true},
	{"sport/tennis/+", "sport/tennis/player1", true},
	{"sport/tennis/+", "sport/tennis/player1/ranking", false},
	{"sport/+", "sport", false},
	{"sport/+", "sport/", true},
	{"+/+", "/finance", true},
	{"/+", "/finance", true},
	{"+", "/finance", false},
	{"+/tennis/#", "sport/tennis/player1", true},
	{"sport/+/player1", "sport/tennis/player1", true},
	{"a//b", "a//b", true},
	{"a/+/b", "a//b", true},
	{"a/+", "a/b/c", false},
	{"a/b", "a/b/c", false},
	{"a/b/c", "a/b", false},
	{"A/b", "a/b", false},
	// [MQTT-4.7.2-1]
	{"#", "$SYS/broker/clients", false},
	{"+/monitor/Clients", "$SYS/monitor/Clients", false},
	{"$SYS/#", "$SYS/monitor/Clients", true},
	{"$SYS/monitor/+", "$SYS/monitor/Clients", true},
	{"$SYS/#", "$SYS", true},
	{"a/$x", "a/$x", true},
	{"a/+", "a/$x", true},
}

func TestMatchPatterns(t *testing.T) {
	f := MustParse("zigbee2mqtt/{room}_motion/{n}")
	for _, tc := range []struct {
		topic string
		want  bool
	}{
		{"zigbee2mqtt/hall_motion/1", true},
		{"zigbee2mqtt/_motion/1", true},
		{"zigbee2mqtt/hall_light/1", false},
		{"zigbee2mqtt/motion/1", false},
	} {
		if got := f.MatchPatterns(strings.Split(tc.topic, "/")); got != tc.want {
			t.Errorf("%s: MatchPatterns = %v, want %v", tc.topic, got, tc.want)
		}
	}
	if !f.Patterned || MustParse("a/{b}").Patterned {
		t.Error("Patterned is wrong")
	}
}

func TestMatch(t *testing.T) {
	for _, tt := range matchCases {
		if got := Match(tt.filter, tt.topic); got != tt.want {
			t.Errorf("Match(%q, %q) = %v, want %v", tt.filter, tt.topic, got, tt.want)
		}
	}
}

func TestIndexMatchesSpecExamples(t *testing.T) {
	for _, tt := range matchCases {
		var ix Index[string]
		ix.Add(MustParse(tt.filter), tt.filter)
		got := ix.Match(Split(tt.topic, nil), nil)
		if (len(got) == 1) != tt.want {
			t.Errorf("Index{%q}.Match(%q) = %q, want match=%v", tt.filter, tt.topic, got, tt.want)
		}
	}
}

// alphabet of levels for generated filters and topics; "c" appears only in
// topics, so + has something the filters never name.
var (
	filterLevels = []string{"a", "b", "", "$x", "+", "#"}
	topicLevels  = []string{"a", "b", "", "$x", "c"}
)

func randomFilter(r *rand.Rand, maxLevels int) string {
	n := 1 + r.IntN(maxLevels)
	parts := make([]string, n)
	for i := range parts {
		l := filterLevels[r.IntN(len(filterLevels))]
		if l == "#" && i != n-1 {
			l = "+"
		}
		parts[i] = l
	}
	if n == 1 && parts[0] == "" {
		return "a" // the empty filter is invalid
	}
	return strings.Join(parts, "/")
}

// allTopics lists every topic of 1..n levels over topicLevels.
func allTopics(n int) []string {
	level := slices.Clone(topicLevels)
	out := slices.Clone(level)
	for range n - 1 {
		var next []string
		for _, p := range level {
			for _, l := range topicLevels {
				next = append(next, p+"/"+l)
			}
		}
		out = append(out, next...)
		level = next
	}
	return slices.DeleteFunc(out, func(s string) bool { return s == "" }) // not a topic
}

func TestIndexAgainstReference(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	topics := allTopics(4)
	for round := range 200 {
		var ix Index[string]
		filters := make([]string, 1+r.IntN(20))
		for i := range filters {
			filters[i] = randomFilter(r, 3)
			ix.Add(MustParse(filters[i]), filters[i])
		}
		for _, tp := range topics {
			var want []string
			for _, f := range filters {
				if Match(f, tp) {
					want = append(want, f)
				}
			}
			got := ix.Match(Split(tp, nil), nil)
			slices.Sort(got)
			slices.Sort(want)
			if !slices.Equal(got, want) {
				t.Fatalf("round %d: filters %q, topic %q: index matched %q, reference %q", round, filters, tp, got, want)
			}
		}
	}
}

func TestOverlapAndCoversAgainstReference(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	topics := allTopics(4)
	for range 3000 {
		a, b := randomFilter(r, 3), randomFilter(r, 3)
		overlap, covers := false, true
		for _, tp := range topics {
			ma, mb := Match(a, tp), Match(b, tp)
			overlap = overlap || ma && mb
			covers = covers && (!mb || ma)
		}
		if got := Overlap(a, b); got != overlap {
			t.Fatalf("Overlap(%q, %q) = %v, want %v", a, b, got, overlap)
		}
		if got := Covers(a, b); got != covers {
			t.Fatalf("Covers(%q, %q) = %v, want %v", a, b, got, covers)
		}
	}
}

func TestReduce(t *testing.T) {
	tests := []struct {
		in, want []string
	}{
		{in: []string{"a/b", "a/b"}, want: []string{"a/b"}},
		{in: []string{"sensors/+/temperature", "sensors/+/humidity"}, want: []string{"sensors/+/humidity", "sensors/+/temperature"}},
		{in: []string{"home/#", "home/kitchen/temperature"}, want: []string{"home/#"}},
		{in: []string{"a/+/c", "a/b/+"}, want: []string{"a/+/+"}},
		{in: []string{"a/+", "a/#"}, want: []string{"a/#"}},
		{in: []string{"#", "$SYS/#"}, want: []string{"#", "$SYS/#"}},
		{in: []string{"+/x", "x/#", "y"}, want: []string{"+/#"}},
		{in: []string{"a", "a/+"}, want: []string{"a", "a/+"}},
	}
	for _, tt := range tests {
		if got := Reduce(tt.in); !slices.Equal(got, tt.want) {
			t.Errorf("Reduce(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestReduceProperties(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	for range 2000 {
		in := make([]string, 1+r.IntN(8))
		for i := range in {
			in[i] = randomFilter(r, 3)
		}
		out := Reduce(in)
		for i, a := range out {
			for _, b := range out[i+1:] {
				if Overlap(a, b) {
					t.Fatalf("Reduce(%q) = %q: %q and %q overlap", in, out, a, b)
				}
			}
		}
		for _, f := range in {
			if !slices.ContainsFunc(out, func(o string) bool { return Covers(o, f) }) {
				t.Fatalf("Reduce(%q) = %q: nothing covers %q", in, out, f)
			}
		}
	}
}

func TestReduceManyDistinctFiltersIsFast(t *testing.T) {
	in := make([]string, 10000)
	for i := range in {
		in[i] = fmt.Sprintf("sensors/%d/temperature", i)
	}
	in = append(in, "sensors/+/humidity")
	if got := Reduce(in); len(got) != len(in) {
		t.Fatalf("Reduce kept %d of %d non-overlapping filters", len(got), len(in))
	}
	in = append(in, "sensors/#")
	if got := Reduce(in); !slices.Equal(got, []string{"sensors/#"}) {
		t.Fatalf("Reduce with sensors/# = %d filters, want [sensors/#]", len(got))
	}
}

func TestWildcards(t *testing.T) {
	tests := []struct {
		filter, topic string
		want          []string
	}{
		{"home/+/temperature", "home/kitchen/temperature", []string{"kitchen"}},
		{"a/#", "a", []string{""}},
		{"a/#", "a/b/c", []string{"b/c"}},
		{"+/+/#", "x//y/z", []string{"x", "", "y/z"}},
		{"{room}/t/{rest...}", "k/t/1/2", []string{"k", "1/2"}},
		{"#", "a/b", []string{"a/b"}},
		{"a/b", "a/b", nil},
	}
	for _, tt := range tests {
		got := MustParse(tt.filter).Wildcards(tt.topic, Split(tt.topic, nil), nil)
		if !slices.Equal(got, tt.want) {
			t.Errorf("Wildcards(%q, %q) = %q, want %q", tt.filter, tt.topic, got, tt.want)
		}
	}
}

func TestValidateName(t *testing.T) {
	for _, ok := range []string{"a", "/", "a/b", "$SYS/x", "héllo/wörld"} {
		if err := ValidateName(ok); err != nil {
			t.Errorf("ValidateName(%q) = %v, want nil", ok, err)
		}
	}
	for _, bad := range []string{"", "a/+", "a/#", "a\x00b", "\xff"} {
		if err := ValidateName(bad); err == nil {
			t.Errorf("ValidateName(%q) = nil, want an error", bad)
		}
	}
}

func FuzzIndexMatch(f *testing.F) {
	for _, tt := range matchCases {
		f.Add(tt.filter, tt.topic)
	}
	f.Fuzz(func(t *testing.T, filter, name string) {
		p, err := Parse(filter)
		if err != nil || ValidateName(name) != nil {
			return
		}
		var ix Index[int]
		ix.Add(p, 1)
		got := len(ix.Match(Split(name, nil), nil)) == 1
		if want := Match(p.MQTT, name); got != want {
			t.Fatalf("filter %q topic %q: index %v, reference %v", filter, name, got, want)
		}
		if got {
			// Wildcards must not panic and must rebuild the topic's wildcard parts.
			p.Wildcards(name, Split(name, nil), nil)
		}
	})
}

func FuzzParse(f *testing.F) {
	for _, s := range []string{"a/{b}/#", "{x...}", "a/+/b", "#", "a/b#", "$SYS/+"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		p, err := Parse(s)
		if err != nil {
			return
		}
		// A parsed filter's MQTT form parses to itself.
		q, err := Parse(p.MQTT)
		if err != nil || q.MQTT != p.MQTT {
			t.Fatalf("Parse(%q).MQTT = %q does not round-trip: %v", s, p.MQTT, err)
		}
	})
}
