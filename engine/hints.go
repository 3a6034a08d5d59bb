package engine

import (
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/mqtt-rules/mqtt-rules/rules"
)

// payloadHint explains a failed evaluation of a rule that reads the
// payload by what the payload was (docs/rules.md, "Conditions"): the most
// common cause is a payload of another shape than the rule expects — a
// text like "offline" where JSON was meant, or JSON without a field the
// rule reads. It returns "" when the payload looks as the rule expects.
func payloadHint(r *rules.Rule, payload any) string {
	if r.Uses()&rules.UsesPayload == 0 {
		return ""
	}
	fields, all := r.PayloadFields()
	switch p := payload.(type) {
	case string:
		return fmt.Sprintf("payload is the text %s, not a JSON object; guard with type(payload) == \"map\" && …", quoteShort(p))
	case float64:
		return fmt.Sprintf("payload is the number %s, not a JSON object; guard with type(payload) == \"map\" && …", strconv.FormatFloat(p, 'g', -1, 64))
	case bool:
		return fmt.Sprintf("payload is the JSON %t, not an object; guard with type(payload) == \"map\" && …", p)
	case nil:
		return "payload is JSON null, not an object; guard with payload != nil && …"
	case []any:
		return "payload is a JSON list, not an object; guard with type(payload) == \"map\" && …"
	case map[string]any:
		if all {
			return ""
		}
		var missing []string
		for _, f := range fields {
			if _, ok := p[f]; !ok {
				missing = append(missing, f)
			}
		}
		if len(missing) == 0 {
			return ""
		}
		has := make([]string, 0, len(p))
		for k := range p {
			has = append(has, k)
		}
		sort.Strings(has)
		if len(has) > 8 {
			has = append(has[:8], "…")
		}
		f := missing[0]
		return fmt.Sprintf("payload has no field %q (it has %s); write payload.%s ?? DEFAULT, or %q in payload && …",
			f, strings.Join(quoteAll(has), ", "), f, f)
	}
	return ""
}

func quoteShort(s string) string {
	if len(s) > 40 {
		s = s[:cutUTF8(s, 40)] + "…"
	}
	return strconv.Quote(s)
}

func quoteAll(s []string) []string {
	out := slices.Clone(s)
	for i, v := range out {
		if v != "…" {
			out[i] = strconv.Quote(v)
		}
	}
	return out
}
