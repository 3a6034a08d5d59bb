package statuspage

import (
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/mqtt-rules/mqtt-rules/engine"
)

func fetch(t *testing.T, url string, header ...string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, string(b)
}

// TestPage checks the page and its files: served from the binary, with a
// content security policy that allows nothing from elsewhere, revalidated
// by ETag.
func TestPage(t *testing.T) {
	f := newFixture(t, "")
	srv, _ := serve(t, f, Options{}, "")
	resp, html := fetch(t, srv.URL+"/")
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "text/html; charset=utf-8" {
		t.Fatalf("GET / = %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	csp := resp.Header.Get("Content-Security-Policy")
	for _, want := range []string{"default-src 'none'", "script-src 'self'", "connect-src 'self'", "frame-ancestors 'none'"} {
		if !strings.Contains(csp, want) {
			t.Errorf("Content-Security-Policy %q lacks %q", csp, want)
		}
	}
	refs := regexp.MustCompile(`(?:src|href)="([^"#]+)"`).FindAllStringSubmatch(html, -1)
	if len(refs) < 3 {
		t.Fatalf("the page refers to %v", refs)
	}
	for _, m := range refs {
		ref := m[1]
		if !strings.HasPrefix(ref, "/") || strings.HasPrefix(ref, "//") {
			t.Errorf("the page refers to %q, not a file of its own", ref)
			continue
		}
		if resp, _ := fetch(t, srv.URL+ref); resp.StatusCode != 200 {
			t.Errorf("GET %s (referred to by the page) = %d", ref, resp.StatusCode)
		}
	}
	// Nothing is loaded from the internet: no URL in any file but the SVG
	// namespace.
	for name, a := range New(f, Options{}).assets {
		body := strings.ReplaceAll(string(a.body), "http://www.w3.org/2000/svg", "")
		if m := regexp.MustCompile(`(?i)(https?:)?//[a-z0-9.-]+\.[a-z]{2,}`).FindString(body); m != "" {
			t.Errorf("%s refers to %q", name, m)
		}
	}
	for file, ctype := range map[string]string{"app.js": "text/javascript; charset=utf-8", "app.css": "text/css; charset=utf-8", "icon.svg": "image/svg+xml"} {
		resp, _ := fetch(t, srv.URL+"/ui/"+file)
		if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != ctype || resp.Header.Get("ETag") == "" {
			t.Errorf("GET /ui/%s = %d %q etag %q", file, resp.StatusCode, resp.Header.Get("Content-Type"), resp.Header.Get("ETag"))
			continue
		}
		if resp, _ := fetch(t, srv.URL+"/ui/"+file, "If-None-Match", resp.Header.Get("ETag")); resp.StatusCode != http.StatusNotModified {
			t.Errorf("GET /ui/%s with its ETag = %d, want 304", file, resp.StatusCode)
		}
	}
	for _, path := range []string{"/ui/nope.js", "/ui/index.html", "/index.html", "/nope"} {
		if resp, _ := fetch(t, srv.URL+path); resp.StatusCode != 404 {
			t.Errorf("GET %s = %d, want 404", path, resp.StatusCode)
		}
	}
	// HEAD of the stream answers at once.
	req, _ := http.NewRequest(http.MethodHead, srv.URL+"/api/live", nil)
	hc := &http.Client{Timeout: 5 * time.Second}
	if resp, err := hc.Do(req); err != nil || resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "text/event-stream" {
		t.Errorf("HEAD /api/live: %v %v", resp, err)
	} else {
		resp.Body.Close()
	}
	// The API routes of httpapi are still there.
	for _, path := range []string{"/api/rules", "/api/status", "/metrics", "/healthz", "/api/rules/hot/trace", "/api/rules/hot", "/api/rules/door/keys"} {
		if resp, body := fetch(t, srv.URL+path); resp.StatusCode != 200 {
			t.Errorf("GET %s = %d %s", path, resp.StatusCode, body)
		}
	}
}

// TestNoSecrets reads everything the page reads and finds neither the
// webhook's secret nor the broker's password.
func TestNoSecrets(t *testing.T) {
	f := newFixture(t, "")
	f.engine.Handle(engine.Message{Topic: "home/hall/door", Payload: []byte("open")})
	srv, _ := serve(t, f, Options{Interval: fast}, "")
	var all strings.Builder
	for _, path := range []string{"/", "/ui/app.js", "/api/rules", "/api/status", "/api/rates", "/api/rules/door", "/api/rules/door/keys", "/api/rules/door/trace"} {
		_, body := fetch(t, srv.URL+path)
		all.WriteString(body)
	}
	s := openStream(t, srv.URL+"/api/live?rule=door")
	for range 4 {
		all.WriteString(s.next(t, 5*time.Second).data)
	}
	for _, secret := range []string{secretValue, "hunter2"} {
		if strings.Contains(all.String(), secret) {
			t.Errorf("%q is on the page", secret)
		}
	}
	if !strings.Contains(all.String(), "[REDACTED]") {
		t.Error("no [REDACTED] anywhere: is the door rule's webhook shown?")
	}
}

// TestRates checks the sampler's buckets and /api/rates.
func TestRates(t *testing.T) {
	c := engine.NewCounters()
	s := newSampler(func() *engine.Counters { return c }, 5*time.Second, 3)
	t0 := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	s.sample(t0) // the starting totals
	if r := s.rates(); len(r.Received) != 0 || r.Buckets != 3 || r.StepMS != 5000 {
		t.Errorf("after the first sample: %+v", r)
	}
	rec := engine.New(engine.Config{Actions: nopActions{}, Counters: c})
	rec.SetRules(newFixture(t, "").engine.Rules())
	for i := range 4 {
		for range i + 1 {
			rec.Handle(engine.Message{Topic: "home/kitchen/temperature", Payload: []byte(`{"value": 35}`)})
		}
		rec.Handle(engine.Message{Topic: "home/kitchen/temperature", Payload: []byte(`oops`)})
		c.Drop("queue_full")
		s.sample(t0.Add(time.Duration(i+1) * 5 * time.Second))
	}
	r := s.rates()
	want := fmt.Sprint([]uint64{3, 4, 5}, []uint64{2, 3, 4}, []uint64{1, 1, 1}, []uint64{1, 1, 1})
	if got := fmt.Sprint(r.Received, r.Fires, r.Errors, r.Drops); got != want {
		t.Errorf("received, fires, errors, drops = %s, want %s (the last 3 buckets)", got, want)
	}
	if r.End != t0.Add(20*time.Second).UnixMilli() {
		t.Errorf("end %d, want %d", r.End, t0.Add(20*time.Second).UnixMilli())
	}
	v1, ev1 := s.sseEvent()
	v2, ev2 := s.sseEvent()
	if v1 != v2 || &ev1[0] != &ev2[0] {
		t.Error("the rates event is encoded again without a new sample")
	}

	srv, _ := serve(t, newFixture(t, ""), Options{}, "")
	resp, body := fetch(t, srv.URL+"/api/rates")
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/json" {
		t.Fatalf("/api/rates: %d %s", resp.StatusCode, body)
	}
	got := decode[Rates](t, body)
	if got.StepMS != DefaultStep.Milliseconds() || got.Buckets != DefaultBuckets || got.Received == nil {
		t.Errorf("/api/rates: %s", body)
	}
}
