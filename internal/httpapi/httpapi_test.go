package httpapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestHealthz(t *testing.T) {
	srv, _ := server(t, &fakeStatus{}, Options{})
	resp, body := get(t, srv.URL+"/healthz")
	if resp.StatusCode != 200 || body != "ok\n" {
		t.Errorf("GET /healthz = %d %q, want 200 \"ok\\n\"", resp.StatusCode, body)
	}
}

// TestReadyz flips one status through every state /readyz tells apart.
func TestReadyz(t *testing.T) {
	f := newFixture(t)
	rs := f.status.rs
	srv, _ := server(t, f.status, Options{})
	for _, tc := range []struct {
		name      string
		loaded    bool
		connected bool
		ready     bool
		code      int
		body      string
	}{
		{"before the first load", false, true, true, 503, "no rules loaded\n"},
		{"disconnected", true, false, false, 503, "not connected to the broker\n"},
		{"subscribing", true, true, false, 503, "not yet subscribed to every filter\n"},
		{"ready", true, true, true, 200, "ready\n"},
		{"connection lost", true, false, false, 503, "not connected to the broker\n"},
		{"ready again", true, true, true, 200, "ready\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f.status.set(func(s *fakeStatus) {
				s.rs = nil
				if tc.loaded {
					s.rs = rs
				}
				s.connected, s.ready = tc.connected, tc.ready
			})
			resp, body := get(t, srv.URL+"/readyz")
			if resp.StatusCode != tc.code || body != tc.body {
				t.Errorf("GET /readyz = %d %q, want %d %q", resp.StatusCode, body, tc.code, tc.body)
			}
		})
	}
}

// objectKeys returns the keys of a JSON object in the order written.
func objectKeys(t *testing.T, raw json.RawMessage) []string {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(raw))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		t.Fatalf("not an object: %s", raw)
	}
	var keys []string
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			t.Fatal(err)
		}
		keys = append(keys, tok.(string))
		var skip json.RawMessage
		if err := dec.Decode(&skip); err != nil {
			t.Fatal(err)
		}
	}
	return keys
}

func TestAPIRules(t *testing.T) {
	f := newFixture(t)
	srv, _ := server(t, f.status, Options{})
	resp, body := get(t, srv.URL+"/api/rules")
	if resp.StatusCode != 200 {
		t.Fatalf("GET /api/rules: %s\n%s", resp.Status, body)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type = %q, want application/json", ct)
	}

	var raw struct {
		Rules []json.RawMessage `json:"rules"`
	}
	if err := json.Unmarshal([]byte(body), &raw); err != nil {
		t.Fatalf("decoding: %v\n%s", err, body)
	}
	if got := objectKeys(t, json.RawMessage(body)); !slices.Equal(got, []string{"rules"}) {
		t.Errorf("top-level keys %v, want [rules]", got)
	}
	if len(raw.Rules) != 3 {
		t.Fatalf("%d rules, want 3 (the loaded set only)\n%s", len(raw.Rules), body)
	}
	// Stable field order; the documented keys are always present.
	wantKeys := map[string][]string{
		"hot": {"name", "description", "file", "line", "filters", "enabled", "enabled_by", "stateful", "actions",
			"fires", "errors", "condition_errors", "action_results", "loop_cutoffs", "keys_evicted", "last_fired"},
		"door": {"name", "description", "file", "line", "filters", "enabled", "enabled_by", "stateful", "for", "cooldown", "actions", "on_clear",
			"fires", "errors", "condition_errors", "action_results", "loop_cutoffs", "keys_evicted", "last_fired"},
	}
	for i, name := range []string{"hot", "door"} {
		if got := objectKeys(t, raw.Rules[i]); !slices.Equal(got, wantKeys[name]) {
			t.Errorf("rule %s: keys\n got %v\nwant %v", name, got, wantKeys[name])
		}
	}

	var got RulesResponse
	if err := json.Unmarshal([]byte(body), &got); err != nil {
		t.Fatal(err)
	}
	at := firedAt
	want := []RuleInfo{
		{
			Name: "hot", Description: "Kitchen above 30 °C", File: "rules/home.yaml", Line: 3,
			Filters: []string{"home/{room}/temperature"}, Enabled: true, EnabledBy: "file", Actions: []string{"publish", "log"},
			Fires: 1, Errors: 2, ConditionErrors: 1, LoopCutoffs: 2, LastFired: &at,
			ActionResults: map[string]Results{"publish": {OK: 1}, "log": {Error: 1}},
		},
		{
			Name: "door", File: "rules/home.yaml", Line: 10,
			Filters: []string{"home/door", "home/{room}/door"}, Enabled: true, EnabledBy: "file", Stateful: true,
			For: "2m0s", Cooldown: "10m0s", Actions: []string{"webhook"}, OnClear: []string{"log"},
			Errors: 1, KeysEvicted: 3,
			ActionResults: map[string]Results{"webhook": {OK: 1, Error: 1}, "log": {}},
		},
		{
			Name: "off", File: "rules/home.yaml", Line: 19,
			Filters: []string{"x/#"}, EnabledBy: "file", Actions: []string{"log"},
			ActionResults: map[string]Results{"log": {}},
		},
	}
	for i := range want {
		g, w := fmt.Sprintf("%+v", got.Rules[i]), fmt.Sprintf("%+v", want[i])
		if g != w || !timeEqual(got.Rules[i].LastFired, want[i].LastFired) {
			t.Errorf("rule %d:\n got %s last_fired %v\nwant %s last_fired %v", i, g, got.Rules[i].LastFired, w, want[i].LastFired)
		}
	}

	// last_fired is RFC 3339, or null.
	var loose struct {
		Rules []map[string]any `json:"rules"`
	}
	if err := json.Unmarshal([]byte(body), &loose); err != nil {
		t.Fatal(err)
	}
	s, _ := loose.Rules[0]["last_fired"].(string)
	if ts, err := time.Parse(time.RFC3339, s); err != nil || !ts.Equal(firedAt) {
		t.Errorf("hot last_fired = %q (%v), want RFC 3339 of %v", s, err, firedAt)
	}
	if v, ok := loose.Rules[1]["last_fired"]; !ok || v != nil {
		t.Errorf("door last_fired = %v (present %v), want null", v, ok)
	}
}

func timeEqual(a, b *time.Time) bool {
	if a == nil || b == nil {
		return a == b
	}
	return a.Equal(*b)
}

func TestAPIRulesBeforeTheFirstLoad(t *testing.T) {
	srv, _ := server(t, &fakeStatus{}, Options{})
	_, body := get(t, srv.URL+"/api/rules")
	if strings.Join(strings.Fields(body), "") != `{"rules":[]}` {
		t.Errorf("GET /api/rules = %s, want {\"rules\":[]}", body)
	}
}

func TestAPIStatus(t *testing.T) {
	f := newFixture(t)
	f.status.set(func(s *fakeStatus) {
		s.ready = false
		s.broker = "mqtts://user:secret@broker.example.com:8883"
		s.reload = Reload{At: firedAt, Took: 1500 * time.Microsecond, Err: loadErrors(t), Rules: 3, Reload: true}
	})
	srv, _ := server(t, f.status, Options{Version: "v1.2.3"})
	resp, body := get(t, srv.URL+"/api/status")
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/json" {
		t.Fatalf("GET /api/status: %s %s\n%s", resp.Status, resp.Header.Get("Content-Type"), body)
	}
	if got, want := objectKeys(t, json.RawMessage(body)), []string{
		"version", "broker", "connected", "brokers", "ready", "not_ready_reason", "rules_loaded", "filters",
		"messages_received", "drops", "reloads", "last_reload",
	}; !slices.Equal(got, want) {
		t.Errorf("keys\n got %v\nwant %v", got, want)
	}
	var got struct {
		StatusResponse
		LastReload struct {
			At     string   `json:"at"`
			TookMS float64  `json:"took_ms"`
			OK     bool     `json:"ok"`
			Errors []string `json:"errors"`
			Rules  int      `json:"rules"`
			Reload bool     `json:"reload"`
		} `json:"last_reload"`
	}
	if err := json.Unmarshal([]byte(body), &got); err != nil {
		t.Fatal(err)
	}
	checks := []struct {
		what      string
		got, want any
	}{
		{"version", got.Version, "v1.2.3"},
		{"broker", got.Broker, "mqtts://user:xxxxx@broker.example.com:8883"},
		{"connected", got.Connected, true},
		{"ready", got.Ready, false},
		{"not_ready_reason", got.NotReadyReason, "not yet subscribed to every filter"},
		{"rules_loaded", got.RulesLoaded, 3},
		{"filters", fmt.Sprint(got.Filters), "[home/+/door home/+/temperature home/door x/#]"}, // the disabled rule is subscribed too: control may enable it
		{"messages_received", got.MessagesReceived, uint64(6)},
		{"drops", fmt.Sprint(got.Drops), "map[dead_letter_full:1 loop:0 queue_full:1 too_large:1]"},
		{"reloads", got.Reloads, Results{OK: 2, Error: 1}},
		{"last_reload.at", got.LastReload.At, firedAt.Format(time.RFC3339Nano)},
		{"last_reload.took_ms", got.LastReload.TookMS, 1.5},
		{"last_reload.ok", got.LastReload.OK, false},
		{"last_reload.errors", strings.Join(got.LastReload.Errors, "\n"), loadErrors(t).Error()},
		{"last_reload.rules", got.LastReload.Rules, 3},
		{"last_reload.reload", got.LastReload.Reload, true},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s = %v, want %v", c.what, c.got, c.want)
		}
	}
	if len(got.LastReload.Errors) != 2 || !strings.HasPrefix(got.LastReload.Errors[0], `rules/bad.yaml:4:`) {
		t.Errorf("last_reload.errors = %q, want 2 lines file:line:col: rule \"x\": msg", got.LastReload.Errors)
	}
	if strings.Contains(body, "secret") {
		t.Errorf("the broker password leaked: %s", body)
	}
}

func TestAPIStatusOtherError(t *testing.T) {
	f := newFixture(t)
	f.status.reload = Reload{Err: errors.New("reload: subscribe: timeout\nsecond line")}
	srv, _ := server(t, f.status, Options{})
	var got struct {
		LastReload struct {
			At     *string  `json:"at"`
			OK     bool     `json:"ok"`
			Errors []string `json:"errors"`
		} `json:"last_reload"`
	}
	_, body := get(t, srv.URL+"/api/status")
	if err := json.Unmarshal([]byte(body), &got); err != nil {
		t.Fatal(err)
	}
	if got.LastReload.At != nil || got.LastReload.OK || !slices.Equal(got.LastReload.Errors, []string{"reload: subscribe: timeout", "second line"}) {
		t.Errorf("last_reload = %+v, want at null, ok false, the error's lines", got.LastReload)
	}
}

func TestToken(t *testing.T) {
	const token = "s3cret-token"
	f := newFixture(t)
	var logs bytes.Buffer
	srv, h := server(t, f.status, Options{Token: token, Logger: newTestLogger(&logs)})
	h.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "status page") })

	for _, path := range []string{"/metrics", "/api/rules", "/api/status", "/", "/nope", "/healthz/"} {
		for _, tc := range []struct {
			name   string
			header []string
			code   int
		}{
			{"no header", nil, 401},
			{"wrong token", []string{"Authorization", "Bearer nope"}, 401},
			{"token prefix", []string{"Authorization", "Bearer s3cret"}, 401},
			{"basic scheme", []string{"Authorization", "Basic " + token}, 401},
			{"bare token", []string{"Authorization", token}, 401},
			{"bearer token", []string{"Authorization", "Bearer " + token}, 200},
			{"scheme in lower case", []string{"Authorization", "bearer " + token}, 200},
		} {
			t.Run(path+" "+tc.name, func(t *testing.T) {
				want := tc.code
				if want == 200 && (path == "/nope" || path == "/healthz/") {
					want = 404
				}
				resp, body := get(t, srv.URL+path, tc.header...)
				if resp.StatusCode != want {
					t.Errorf("GET %s = %d, want %d\n%s", path, resp.StatusCode, want, body)
				}
				if want == 401 && resp.Header.Get("WWW-Authenticate") == "" {
					t.Error("401 without WWW-Authenticate")
				}
				if want == 401 && strings.Contains(body, "mqtt_rules_") {
					t.Errorf("401 leaks data: %s", body)
				}
			})
		}
	}
	for _, path := range []string{"/healthz", "/readyz"} {
		if resp, body := get(t, srv.URL+path); resp.StatusCode != 200 {
			t.Errorf("GET %s without a token = %d %q, want 200", path, resp.StatusCode, body)
		}
	}
	if strings.Contains(logs.String(), token) {
		t.Errorf("the token is in the logs:\n%s", logs.String())
	}
}

func TestMethodNotAllowed(t *testing.T) {
	srv, _ := server(t, &fakeStatus{}, Options{})
	resp, err := http.Post(srv.URL+"/api/rules", "application/json", strings.NewReader("{}"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("POST /api/rules = %d, want 405", resp.StatusCode)
	}
}

func TestAPITrace(t *testing.T) {
	f := newFixture(t)
	srv, _ := server(t, f.status, Options{})
	resp, body := get(t, srv.URL+"/api/rules/hot/trace")
	if resp.StatusCode != 200 {
		t.Fatalf("trace: %d %s", resp.StatusCode, body)
	}
	var tr struct {
		Rule        string `json:"rule"`
		Evaluations []struct {
			Topic       string `json:"topic"`
			Outcome     string `json:"outcome"`
			Condition   *bool  `json:"condition"`
			Error       string `json:"error"`
			Payload     string `json:"payload"`
			Explanation string `json:"explanation"`
		} `json:"evaluations"`
	}
	if err := json.Unmarshal([]byte(body), &tr); err != nil {
		t.Fatalf("trace JSON: %v: %s", err, body)
	}
	var got []string
	for _, ev := range tr.Evaluations {
		got = append(got, ev.Outcome+": "+ev.Explanation+" ["+ev.Payload+"]")
	}
	want := []string{
		`fired: condition true: fired [{"value": 31}]`,
		`false: condition false: does not fire [{"value": 20}]`,
		`error: condition failed: ` + tr.Evaluations[2].Error + ` [not json]`,
	}
	if tr.Rule != "hot" || strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("trace of hot:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if tr.Evaluations[2].Error == "" {
		t.Error("a condition error without its message")
	}
	if resp, _ := get(t, srv.URL+"/api/rules/nope/trace"); resp.StatusCode != 404 {
		t.Errorf("trace of an unknown rule: %d, want 404", resp.StatusCode)
	}
}
