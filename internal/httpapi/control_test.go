package httpapi

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/mqtt-rules/mqtt-rules/actions"
	"github.com/mqtt-rules/mqtt-rules/engine"
	"github.com/mqtt-rules/mqtt-rules/internal/control"
)

// enablerStatus is the fixture's Status with the engine's effective
// enabled, as internal/app's.
type enablerStatus struct{ *fakeStatus }

func (s enablerStatus) Enabled(rule string) (bool, string, bool) { return s.engine.Enabled(rule) }

var _ Enabler = enablerStatus{}

// post makes a POST with the headers given as name, value pairs.
func post(t *testing.T, url, body string, header ...string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("POST %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

func controlFixture(t *testing.T, token string) (*fixture, *control.Controller, string) {
	t.Helper()
	f := newFixture(t)
	ctl, err := control.New(control.Config{Engine: f.engine})
	if err != nil {
		t.Fatal(err)
	}
	srv, _ := server(t, enablerStatus{f.status}, Options{Token: token, Control: ctl, LocalOnly: true})
	return f, ctl, srv.URL
}

// TestControlEndpoints drives the control endpoints with the token, with
// the status page's cookie and with cross-site attempts.
func TestControlEndpoints(t *testing.T) {
	const token = "control-token"
	f, ctl, base := controlFixture(t, token)
	bearer := []string{"Authorization", "Bearer " + token}
	cookie := "Cookie"
	session := TokenCookie + "=" + cookieValue(token)
	csrf := []string{CSRFHeader, CSRFValue}
	sameOrigin := "http://" + strings.TrimPrefix(base, "http://")
	tests := []struct {
		name   string
		method string
		path   string
		body   string
		header []string
		code   int
	}{
		{"bearer disables", "POST", "/api/rules/hot/disable", "", bearer, 200},
		{"bearer from curl needs no CSRF header", "POST", "/api/rules/hot/enable", "", bearer, 200},
		{"GET is not allowed", "GET", "/api/rules/hot/disable", "", bearer, 405},
		{"PUT is not allowed", "PUT", "/api/rules/hot/disable", "", bearer, 405},
		{"no credentials", "POST", "/api/rules/hot/disable", "", nil, 401},
		{"wrong token", "POST", "/api/rules/hot/disable", "", []string{"Authorization", "Bearer nope"}, 401},
		{"cookie without the CSRF header", "POST", "/api/rules/hot/disable", "", []string{cookie, session}, 403},
		{"cookie with a wrong CSRF header", "POST", "/api/rules/hot/disable", "", []string{cookie, session, CSRFHeader, "x"}, 403},
		{"cookie, header, foreign Origin", "POST", "/api/rules/hot/disable", "", append([]string{cookie, session, "Origin", "https://evil.example"}, csrf...), 403},
		{"cookie, header, cross-site fetch", "POST", "/api/rules/hot/disable", "", append([]string{cookie, session, "Sec-Fetch-Site", "cross-site"}, csrf...), 403},
		{"bearer from a foreign page", "POST", "/api/rules/hot/disable", "", append([]string{"Origin", "https://evil.example"}, bearer...), 403},
		{"the page: cookie, header, same origin", "POST", "/api/rules/hot/disable", "", append([]string{cookie, session, "Origin", sameOrigin, "Sec-Fetch-Site", "same-origin"}, csrf...), 200},
		{"unknown rule", "POST", "/api/rules/cold/disable", "", bearer, 404},
		{"ack all keys", "POST", "/api/rules/door/ack", "", bearer, 200},
		{"ack one key", "POST", "/api/rules/door/ack?key=home/door", "", bearer, 200},
		{"run of a disabled rule", "POST", "/api/rules/hot/run", `{"value": 99}`, bearer, 409},
		{"enable again", "POST", "/api/rules/hot/enable", "", bearer, 200},
		{"run", "POST", "/api/rules/hot/run", `{"value": 99}`, bearer, 200},
		{"run larger than 1 KiB", "POST", "/api/rules/hot/run", strings.Repeat("x", control.MaxPayload+1), bearer, 413},
		{"unknown action", "POST", "/api/rules/hot/toggle", "", bearer, 404},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, err := http.NewRequest(tt.method, base+tt.path, strings.NewReader(tt.body))
			if err != nil {
				t.Fatal(err)
			}
			for i := 0; i+1 < len(tt.header); i += 2 {
				req.Header.Set(tt.header[i], tt.header[i+1])
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tt.code {
				t.Errorf("%s %s = %d %s, want %d", tt.method, tt.path, resp.StatusCode, b, tt.code)
			}
		})
	}
	// What they did: two disables, two enables, two acks, one run and three
	// invalid (the unknown rule, the run of the disabled rule and the large
	// run).
	want := map[string]uint64{"disable/http": 2, "enable/http": 2, "ack/http": 2, "run/http": 1, "invalid/http": 3}
	for _, c := range ctl.Counts() {
		if got := c.N; got != want[c.Action+"/"+c.Origin] {
			t.Errorf("control %s/%s = %d, want %d", c.Action, c.Origin, got, want[c.Action+"/"+c.Origin])
		}
	}
	var ran []string
	for _, r := range f.rec.reqs {
		if p, ok := r.Action.(*actions.Publish); ok && r.Rule == "hot" && r.Topic == "" {
			ran = append(ran, p.Topic)
		}
	}
	if len(ran) != 1 {
		t.Errorf("run fired hot's publish %d times (%v), want once", len(ran), ran)
	}

	// The answer says what changed; /api/rules shows who decided.
	resp, body := post(t, base+"/api/rules/door/disable", "", bearer...)
	var res control.Result
	if err := json.Unmarshal([]byte(body), &res); err != nil || resp.StatusCode != 200 {
		t.Fatalf("disable door: %d %s", resp.StatusCode, body)
	}
	if want := (control.Result{Rule: "door", Action: "disable", Changed: true, Enabled: false, EnabledBy: engine.ByControl}); res != want {
		t.Errorf("disable door: %+v, want %+v", res, want)
	}
	_, body = get(t, base+"/api/rules", bearer...)
	var rules RulesResponse
	if err := json.Unmarshal([]byte(body), &rules); err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, r := range rules.Rules {
		got[r.Name] = map[bool]string{true: "on", false: "off"}[r.Enabled] + " by " + r.EnabledBy
	}
	wantRules := map[string]string{"hot": "on by file", "door": "off by control", "off": "off by file"}
	for n, w := range wantRules {
		if got[n] != w {
			t.Errorf("/api/rules %s: %s, want %s", n, got[n], w)
		}
	}

	// The metric.
	_, metrics := get(t, base+"/metrics", bearer...)
	for _, line := range []string{
		`mqtt_rules_control_total{action="disable",origin="http"} 3`,
		`mqtt_rules_control_total{action="invalid",origin="http"} 3`,
		`mqtt_rules_control_total{action="enable",origin="mqtt"} 0`,
	} {
		if !strings.Contains(metrics, line+"\n") {
			t.Errorf("/metrics lacks %s", line)
		}
	}
}

// TestControlNeedsToken: without --http-token the API is read-only.
func TestControlNeedsToken(t *testing.T) {
	f, ctl, base := controlFixture(t, "")
	for _, a := range []string{"enable", "disable", "ack", "run"} {
		resp, body := post(t, base+"/api/rules/hot/"+a, "", CSRFHeader, CSRFValue)
		if resp.StatusCode != 403 || !strings.Contains(body, "--http-token") {
			t.Errorf("POST %s without a token: %d %s, want 403 naming --http-token", a, resp.StatusCode, body)
		}
	}
	if on, _, _ := f.engine.Enabled("hot"); !on {
		t.Error("hot was disabled")
	}
	for _, c := range ctl.Counts() {
		if c.N != 0 {
			t.Errorf("counted %s/%s", c.Action, c.Origin)
		}
	}
}
