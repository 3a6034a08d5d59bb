package httpapi

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"
)

// secretRules has a webhook whose secrets come from the environment.
const secretRules = `
rules:
  - name: notify
    description: "Tell ${TEAM_NAME}"
    topic: "home/{room}/door"
    when: payload == "open"
    key: "{{ room }}"
    clear_when: payload == "closed"
    for: 2m
    actions:
      - webhook:
          url: "https://hooks.example.com/x?room={{ room }}&access_token=${HOOK_TOKEN}"
          method: put
          headers:
            Authorization: "Bearer ${HOOK_TOKEN}"
            X-Api-Key: "${HOOK_TOKEN}"
            X-Room: "{{ room }}"
          body: '{"secret":"${HOOK_TOKEN}","room":"{{ room }}"}'
          timeout: 3s
          retries: 1
      - publish: {topic: "alerts/{{ room }}", qos: 1, retain: true}
    on_clear:
      - log: {message: "{{ room }} closed", level: warn}
`

const hookToken = "hk-7f3a9c2e51"

func TestAPIRuleDefinition(t *testing.T) {
	t.Setenv("HOOK_TOKEN", hookToken)
	t.Setenv("TEAM_NAME", "ops")
	f := newFixture(t)
	f.status.set(func(f *fakeStatus) { f.rs = loadRules(t, secretRules) })
	srv, _ := server(t, f.status, Options{})

	resp, body := get(t, srv.URL+"/api/rules/notify")
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/json" {
		t.Fatalf("GET /api/rules/notify = %d %s\n%s", resp.StatusCode, resp.Header.Get("Content-Type"), body)
	}
	if strings.Contains(body, hookToken) {
		t.Errorf("the definition shows the secret:\n%s", body)
	}
	var d RuleDefinition
	if err := json.Unmarshal([]byte(body), &d); err != nil {
		t.Fatal(err)
	}
	if d.Name != "notify" || d.Description != "Tell ops" || d.File != "rules/other.yaml" || d.Line != 3 || !d.Enabled || !d.Stateful {
		t.Errorf("head of the definition: %+v", d)
	}
	if d.When != `payload == "open"` || d.Key != "{{ room }}" || d.ClearWhen != `payload == "closed"` || d.For != "2m0s" || d.Cooldown != "" {
		t.Errorf("conditions: when %q key %q clear_when %q for %q cooldown %q", d.When, d.Key, d.ClearWhen, d.For, d.Cooldown)
	}
	if len(d.Filters) != 1 || d.Filters[0] != "home/{room}/door" {
		t.Errorf("filters %v", d.Filters)
	}
	if len(d.Actions) != 2 || len(d.OnClear) != 1 {
		t.Fatalf("actions %+v, on_clear %+v", d.Actions, d.OnClear)
	}
	wh := d.Actions[0]
	want := []FieldDefinition{
		{Name: "method", Value: "PUT"},
		{Name: "url", Value: "https://hooks.example.com/x?room={{ room }}&access_token=[REDACTED]"},
		{Name: "headers.Authorization", Value: "[REDACTED]"},
		{Name: "headers.X-Api-Key", Value: "[REDACTED]"},
		{Name: "headers.X-Room", Value: "{{ room }}"},
		{Name: "timeout", Value: "3s"},
		{Name: "retries", Value: "1"},
		// The secret found by its environment variable's name.
		{Name: "body", Value: `{"secret":"[REDACTED]","room":"{{ room }}"}`, Text: true},
	}
	if wh.Kind != "webhook" || !slices.Equal(wh.Fields, want) {
		t.Errorf("webhook %+v,\nwant fields %+v", wh, want)
	}
	wantPub := []FieldDefinition{
		{Name: "topic", Value: "alerts/{{ room }}"},
		{Name: "qos", Value: "1"},
		{Name: "retain", Value: "true"},
		{Name: "payload", Text: true, Note: "the message's payload"},
	}
	if p := d.Actions[1]; p.Kind != "publish" || !slices.Equal(p.Fields, wantPub) {
		t.Errorf("publish %+v, want fields %+v", p, wantPub)
	}
	wantLog := []FieldDefinition{{Name: "level", Value: "warn"}, {Name: "message", Value: "{{ room }} closed", Text: true}}
	if l := d.OnClear[0]; l.Kind != "log" || !slices.Equal(l.Fields, wantLog) {
		t.Errorf("on_clear %+v, want fields %+v", l, wantLog)
	}

	if resp, _ := get(t, srv.URL+"/api/rules/nope"); resp.StatusCode != 404 {
		t.Errorf("an unknown rule: %d, want 404", resp.StatusCode)
	}
	// /api/rules itself is unchanged.
	if resp, body := get(t, srv.URL+"/api/rules"); resp.StatusCode != 200 || !strings.Contains(body, `"name": "notify"`) {
		t.Errorf("/api/rules: %d %s", resp.StatusCode, body)
	}
}

func TestAPIKeys(t *testing.T) {
	f := newFixture(t)
	srv, _ := server(t, f.status, Options{})
	resp, body := get(t, srv.URL+"/api/rules/door/keys")
	if resp.StatusCode != 200 {
		t.Fatalf("keys: %d %s", resp.StatusCode, body)
	}
	var k struct {
		Rule    string `json:"rule"`
		Tracked int    `json:"tracked"`
		Keys    []struct {
			Key      string    `json:"key"`
			Pending  bool      `json:"pending"`
			Firing   bool      `json:"firing"`
			Deadline time.Time `json:"deadline"`
		} `json:"keys"`
	}
	if err := json.Unmarshal([]byte(body), &k); err != nil {
		t.Fatal(err)
	}
	// The fixture's door message is pending for 2m.
	if k.Rule != "door" || k.Tracked != 1 || len(k.Keys) != 1 || k.Keys[0].Key != "home/door" || !k.Keys[0].Pending || k.Keys[0].Deadline.IsZero() {
		t.Errorf("keys of door: %s", body)
	}
	if k.Keys[0].Deadline.Location() != time.UTC {
		t.Errorf("deadline %v, want UTC", k.Keys[0].Deadline)
	}
	if resp, body := get(t, srv.URL+"/api/rules/hot/keys"); resp.StatusCode != 200 || !strings.Contains(body, `"keys": []`) {
		t.Errorf("keys of a stateless rule: %d %s, want an empty list", resp.StatusCode, body)
	}
	for _, q := range []string{"?limit=0", "?limit=x", "?limit=100000"} {
		if resp, _ := get(t, srv.URL+"/api/rules/door/keys"+q); resp.StatusCode != 400 {
			t.Errorf("keys%s: %d, want 400", q, resp.StatusCode)
		}
	}
	if resp, _ := get(t, srv.URL+"/api/rules/door/keys?limit=1"); resp.StatusCode != 200 {
		t.Errorf("keys?limit=1: %d", resp.StatusCode)
	}
	if resp, _ := get(t, srv.URL+"/api/rules/nope/keys"); resp.StatusCode != 404 {
		t.Errorf("keys of an unknown rule: %d, want 404", resp.StatusCode)
	}
}

// TestTokenCookie checks the browser's way in: /?token= sets a cookie that
// stands for the token on every endpoint.
func TestTokenCookie(t *testing.T) {
	const token = "cookie-test-token"
	f := newFixture(t)
	var logs bytes.Buffer
	srv, h := server(t, f.status, Options{Token: token, Logger: newTestLogger(&logs)})
	h.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("status page")) })
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

	resp, err := client.Get(srv.URL + "/?token=" + url.QueryEscape(token) + "&x=1")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/?x=1" {
		t.Fatalf("/?token=: %d Location %q, want 303 to /?x=1", resp.StatusCode, resp.Header.Get("Location"))
	}
	var c *http.Cookie
	for _, ck := range resp.Cookies() {
		if ck.Name == TokenCookie {
			c = ck
		}
	}
	if c == nil {
		t.Fatalf("no %s cookie: %v", TokenCookie, resp.Header["Set-Cookie"])
	}
	if !c.HttpOnly || c.SameSite != http.SameSiteLaxMode || c.Path != "/" || c.Secure || strings.Contains(c.Value, token) {
		t.Errorf("cookie %+v: want HttpOnly, SameSite=Lax, Path=/, not Secure over plain HTTP, and not the token", c)
	}
	for _, path := range []string{"/", "/api/rules", "/api/status", "/metrics", "/api/rules/hot/trace"} {
		if resp, body := get(t, srv.URL+path, "Cookie", c.Name+"="+c.Value); resp.StatusCode != 200 {
			t.Errorf("GET %s with the cookie: %d %s", path, resp.StatusCode, body)
		}
	}
	for _, tc := range []struct{ name, path, cookie string }{
		{"wrong cookie", "/api/rules", c.Name + "=" + strings.Repeat("0", len(c.Value))},
		{"token as cookie", "/api/rules", c.Name + "=" + token},
		{"other cookie", "/api/rules", "session=" + c.Value},
		{"query token off /", "/api/rules?token=" + token, ""},
		{"wrong query token", "/?token=nope", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req, _ := http.NewRequest(http.MethodGet, srv.URL+tc.path, nil)
			if tc.cookie != "" {
				req.Header.Set("Cookie", tc.cookie)
			}
			resp, err := client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != 401 || len(resp.Cookies()) != 0 {
				t.Errorf("GET %s: %d, cookies %v; want 401 and none", tc.path, resp.StatusCode, resp.Cookies())
			}
		})
	}

	// A browser without the token gets a form that asks for it.
	resp, body := get(t, srv.URL+"/", "Accept", "text/html,application/xhtml+xml")
	if resp.StatusCode != 401 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") || !strings.Contains(body, `name="token"`) {
		t.Errorf("/ in a browser without the token: %d %s\n%s", resp.StatusCode, resp.Header.Get("Content-Type"), body)
	}
	resp, body = get(t, srv.URL+"/?token=nope", "Accept", "text/html")
	if resp.StatusCode != 401 || !strings.Contains(body, "not the one") {
		t.Errorf("/?token=wrong in a browser: %d\n%s", resp.StatusCode, body)
	}
	// Probes stay open.
	if resp, _ := get(t, srv.URL+"/healthz?token=nope"); resp.StatusCode != 200 {
		t.Errorf("/healthz?token=nope: %d", resp.StatusCode)
	}
	if strings.Contains(logs.String(), token) || strings.Contains(logs.String(), c.Value) {
		t.Errorf("the token or its cookie is in the logs:\n%s", logs.String())
	}
}

// TestServeEndsStreamsOnShutdown checks that a request that waits for its
// context (an event stream) ends when the server shuts down, instead of
// holding it for ShutdownTimeout.
func TestServeEndsStreamsOnShutdown(t *testing.T) {
	h := NewHandler(&fakeStatus{}, Options{})
	entered := make(chan struct{})
	h.HandleFunc("GET /stream", func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(200)
		w.(http.Flusher).Flush()
		close(entered)
		<-r.Context().Done()
	})
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	r, err := Start(ctx, "127.0.0.1:0", h, nil)
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		resp, err := http.Get("http://" + r.Addr() + "/stream")
		if err == nil {
			resp.Body.Close()
		}
	}()
	within(t, entered, 5*time.Second, "the stream")
	start := time.Now()
	cancel()
	within(t, r.Done(), ShutdownTimeout, "shutdown")
	if took := time.Since(start); took > time.Second {
		t.Errorf("shutdown with an open stream took %v", took)
	}
}
