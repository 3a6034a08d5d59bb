package httpapi

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/mqtt-rules/mqtt-rules/rules"
)

// TestDNSRebinding: a server on localhost without a token answers only
// requests whose Host names this machine; a page whose host name an
// attacker re-pointed at 127.0.0.1 gets 403 (but the probes still work).
func TestDNSRebinding(t *testing.T) {
	f := newFixture(t)
	get := func(h http.Handler, path, host string) int {
		r := httptest.NewRequest(http.MethodGet, path, nil)
		r.Host = host
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		return w.Code
	}
	local := NewHandler(f.status, Options{LocalOnly: true})
	for _, p := range []string{"/api/rules", "/api/rules/hot/trace", "/metrics", "/api/status"} {
		if code := get(local, p, "rebind.attacker.example:9464"); code != http.StatusForbidden {
			t.Errorf("GET %s with a foreign Host: %d, want 403", p, code)
		}
	}
	for _, host := range []string{"127.0.0.1:9464", "localhost:9464", "[::1]:9464", "status.localhost", "10.0.0.5:9464"} {
		if code := get(local, "/api/rules", host); code != http.StatusOK {
			t.Errorf("GET /api/rules with Host %s: %d, want 200", host, code)
		}
	}
	if code := get(local, "/healthz", "rebind.attacker.example"); code != http.StatusOK {
		t.Errorf("GET /healthz with a foreign Host: %d, want 200 (probes are open)", code)
	}
	// Bound elsewhere, the operator chose who may connect: host names work.
	if code := get(NewHandler(f.status, Options{}), "/api/rules", "rules.lan:9464"); code != http.StatusOK {
		t.Errorf("not LocalOnly, GET /api/rules with Host rules.lan: %d, want 200", code)
	}
	// With a token, the token decides.
	tok := NewHandler(f.status, Options{LocalOnly: true, Token: "s3cret-token"})
	r := httptest.NewRequest(http.MethodGet, "/api/rules", nil)
	r.Host = "rules.lan:9464"
	r.Header.Set("Authorization", "Bearer s3cret-token")
	w := httptest.NewRecorder()
	tok.ServeHTTP(w, r)
	if w.Code != http.StatusOK {
		t.Errorf("with the token and Host rules.lan: %d, want 200", w.Code)
	}
}

func TestIsLoopback(t *testing.T) {
	for addr, want := range map[string]bool{
		"127.0.0.1:9464": true, "[::1]:9464": true, "localhost:9464": true, "127.1.2.3:1": true,
		"0.0.0.0:9464": false, ":9464": false, "[::]:9464": false, "10.0.0.5:9464": false, "bad": false,
	} {
		if got := IsLoopback(addr); got != want {
			t.Errorf("IsLoopback(%q) = %v, want %v", addr, got, want)
		}
	}
}

// TestWebhookURLSecretEscaped: a ${NAME} value in a webhook URL is masked
// on the page also where the URL's rebuilding percent-escaped it.
func TestWebhookURLSecretEscaped(t *testing.T) {
	secret := "Zq9 x|r^Tk{7}w"
	l := rules.NewLoader()
	l.LookupEnv = func(n string) (string, bool) { return secret, n == "HOOK" }
	rs, err := l.LoadSources(rules.Source{Name: "r.yaml", Data: []byte(`
rules:
  - name: w
    topic: a/b
    actions:
      - webhook: {url: "https://hooks.example.com/services/${HOOK}/{{ topic }}"}
`)})
	if err != nil {
		t.Fatal(err)
	}
	got := Define(rs.Rules[0]).Actions[0].Value("url")
	for _, form := range []string{secret, url.PathEscape(secret), url.QueryEscape(secret)} {
		if strings.Contains(got, form) {
			t.Errorf("the definition shows the ${HOOK} value as %q: %s", form, got)
		}
	}
	if !strings.Contains(got, "[REDACTED]") {
		t.Errorf("url %s: want the value marked [REDACTED]", got)
	}
}
