package rules

import (
	"fmt"
	"strings"
	"testing"

	"github.com/mqtt-rules/mqtt-rules/internal/topic"
)

// generated returns a rule file of n threshold rules, each on its own
// sensor topic with its own threshold and a templated publish.
func generated(n int) []byte {
	var b strings.Builder
	b.WriteString("rules:\n")
	for i := range n {
		fmt.Fprintf(&b, `  - name: sensor-%d-hot
    topic: sensors/%d/temperature
    when: payload.value > %d
    actions:
      - publish:
          topic: "alerts/%d/hot"
          payload: '{"sensor":%d,"value":{{ payload.value }}}'
`, i, i, 20+i%30, i, i)
	}
	return []byte(b.String())
}

// BenchmarkLoad10k loads 10,000 rules: "cold" with a new Loader, "reload"
// with the Loader of the previous load, as a hot reload does.
//
//	go test -run '^$' -bench Load10k -benchmem ./rules/
func BenchmarkLoad10k(b *testing.B) {
	src := Source{Name: "generated.yaml", Data: generated(10000)}
	b.Run("cold", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := NewLoader().LoadSources(src); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("reload", func(b *testing.B) {
		l := NewLoader()
		if _, err := l.LoadSources(src); err != nil {
			b.Fatal(err)
		}
		b.ReportAllocs()
		for b.Loop() {
			if _, err := l.LoadSources(src); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkMatch matches one topic against sets of 10 to 100,000 rules,
// one of which matches: the cost must not grow with the set.
//
//	go test -run '^$' -bench Match -benchmem ./rules/
func BenchmarkMatch(b *testing.B) {
	for _, n := range []int{10, 1000, 100000} {
		b.Run(fmt.Sprintf("rules=%d", n), func(b *testing.B) {
			rs := &RuleSet{byName: map[string]*Rule{}}
			for i := range n {
				f := topic.MustParse(fmt.Sprintf("sensors/%d/temperature", i))
				if i%10 == 0 {
					f = topic.MustParse(fmt.Sprintf("sensors/+/humidity/%d", i))
				}
				r := &Rule{Name: fmt.Sprint(i), Filters: []*topic.Filter{f}, Enabled: true, Index: i}
				rs.Rules = append(rs.Rules, r)
				rs.index.Add(f, ref{rule: int32(i), filter: 0})
			}
			var m Matcher
			name := fmt.Sprintf("sensors/%d/temperature", n/2+1)
			b.ReportAllocs()
			for b.Loop() {
				if ms, _ := m.Match(rs, name); len(ms) != 1 {
					b.Fatalf("%d matches", len(ms))
				}
			}
		})
	}
}

// BenchmarkRender renders a publish payload template with two expressions.
func BenchmarkRender(b *testing.B) {
	tpl, err := newCompiler().template(`{"room":"{{ room }}","value":{{ payload.value }}}`, scope{captures: []string{"room"}})
	if err != nil {
		b.Fatal(err)
	}
	e := NewEvaluator()
	e.Vars["room"] = "kitchen"
	e.Vars[VarPayload] = map[string]any{"value": 31.5}
	b.ReportAllocs()
	var buf []byte
	for b.Loop() {
		buf, err = e.Append(buf[:0], tpl)
		if err != nil {
			b.Fatal(err)
		}
	}
}
