package statuspage

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mqtt-rules/mqtt-rules/engine"
	"github.com/mqtt-rules/mqtt-rules/internal/httpapi"
)

const fast = 20 * time.Millisecond

// TestLiveStream follows the event stream as a page does: the rule set,
// a full snapshot, then ticks carrying only the rows that changed.
func TestLiveStream(t *testing.T) {
	f := newFixture(t, "")
	f.engine.Handle(engine.Message{Topic: "home/kitchen/temperature", Payload: []byte(`{"value": 31}`)})
	srv, _ := serve(t, f, Options{Interval: fast, Version: "1.2.3"}, "")
	s := openStream(t, srv.URL+"/api/live")

	ev := s.next(t, 5*time.Second)
	if ev.name != "rules" {
		t.Fatalf("first event %q, want rules", ev.name)
	}
	rd := decode[rulesData](t, ev.data)
	var names []string
	for _, r := range rd.Rules {
		names = append(names, r.Name)
	}
	if !slices.Equal(names, []string{"hot", "door", "off"}) || !slices.Equal(rd.Columns, Columns) || rd.Gen == "" {
		t.Fatalf("rules event: names %v, columns %v, gen %q", names, rd.Columns, rd.Gen)
	}
	if r := rd.Rules[1]; !r.Stateful || r.For != "1h0m0s" || r.Cooldown != "10m0s" || !slices.Equal(r.Filters, []string{"home/{room}/door"}) {
		t.Errorf("door in the rules event: %+v", r)
	}
	if rd.Rules[2].Enabled {
		t.Error("off is enabled in the rules event")
	}

	ev = s.next(t, 5*time.Second)
	if ev.name != "full" {
		t.Fatalf("second event %q, want full", ev.name)
	}
	full := decode[tickData](t, ev.data)
	if full.Gen != rd.Gen || len(full.Rows) != 3 {
		t.Fatalf("full: gen %q rows %d, want gen %q and 3 rows", full.Gen, len(full.Rows), rd.Gen)
	}
	if got := full.Rows[0][col("fires")]; got != 1 {
		t.Errorf("hot fires = %d, want 1", got)
	}
	if full.Rows[0][col("last_fired")] == 0 {
		t.Error("hot has no last_fired")
	}
	st := full.Status
	if !st.Connected || !st.Ready || st.Version != "1.2.3" || st.Received != 1 || st.Fires != 1 || st.Rules != 3 {
		t.Errorf("status: %+v", st)
	}
	if strings.Contains(st.Broker, "hunter2") {
		t.Errorf("the broker URL shows its password: %s", st.Broker)
	}
	if ev := s.next(t, 5*time.Second); ev.name != "rates" {
		t.Errorf("third event %q, want rates", ev.name)
	}

	// Quiet ticks carry no rows.
	tick := decode[tickData](t, s.until(t, 5*time.Second, "tick", nil).data)
	if len(tick.Changed) != 0 || tick.Seq <= full.Seq {
		t.Errorf("a quiet tick: seq %d after %d, changed %v", tick.Seq, full.Seq, tick.Changed)
	}

	// A firing shows as one changed row: hot's, index 0.
	f.engine.Handle(engine.Message{Topic: "home/kitchen/temperature", Payload: []byte(`{"value": 32}`)})
	tick = decode[tickData](t, s.until(t, 5*time.Second, "tick", func(d string) bool { return strings.Contains(d, `"changed":[[`) }).data)
	if len(tick.Changed) != 1 || tick.Changed[0][0] != 0 || tick.Changed[0][1+col("fires")] != 2 {
		t.Errorf("changed rows %v, want hot's with fires 2", tick.Changed)
	}
	if tick.Status.Received != 2 || tick.Status.Fires != 2 {
		t.Errorf("status after the firing: %+v", tick.Status)
	}

	// A pending for shows in door's key columns, with its deadline.
	before := time.Now()
	f.engine.Handle(engine.Message{Topic: "home/hall/door", Payload: []byte(`open`)})
	tick = decode[tickData](t, s.until(t, 5*time.Second, "tick", func(d string) bool { return strings.Contains(d, `"changed":[[1,`) }).data)
	row := tick.Changed[0][1:]
	if row[col("pending")] != 1 || row[col("keys")] != 1 || row[col("firing")] != 0 {
		t.Errorf("door's row %v, want 1 pending of 1 key", row)
	}
	if dl := time.UnixMilli(row[col("next_deadline")]); dl.Before(before.Add(time.Hour-time.Second)) || dl.After(time.Now().Add(time.Hour)) {
		t.Errorf("door's next deadline %v, want an hour from now", dl)
	}
}

// TestLiveGen checks that a page that has the rule set skips it, and that a
// new rule set is sent again.
func TestLiveGen(t *testing.T) {
	f := newFixture(t, "")
	srv, _ := serve(t, f, Options{Interval: fast}, "")
	s := openStream(t, srv.URL+"/api/live")
	gen := decode[rulesData](t, s.until(t, 5*time.Second, "rules", nil).data).Gen

	s2 := openStream(t, srv.URL+"/api/live?gen="+gen)
	if ev := s2.next(t, 5*time.Second); ev.name != "full" {
		t.Errorf("with ?gen= of the current set, the first event is %q, want full", ev.name)
	}

	next := newFixture(t, `
rules:
  - name: only
    topic: a/b
    actions: [{log: x}]
`)
	f.engine.SetRules(next.engine.Rules())
	rd := decode[rulesData](t, s2.until(t, 5*time.Second, "rules", nil).data)
	if rd.Gen == gen || len(rd.Rules) != 1 || rd.Rules[0].Name != "only" {
		t.Errorf("after a reload: gen %q (was %q), rules %+v", rd.Gen, gen, rd.Rules)
	}
	if ev := s2.next(t, 5*time.Second); ev.name != "full" {
		t.Errorf("after a new rule set, %q, want full", ev.name)
	}
}

// TestLiveRule follows one rule's detail: definition (redacted), keys and
// trace with explanations.
func TestLiveRule(t *testing.T) {
	f := newFixture(t, "")
	srv, _ := serve(t, f, Options{Interval: fast}, "")
	f.engine.Handle(engine.Message{Topic: "home/hall/door", Payload: []byte(`open`)})
	s := openStream(t, srv.URL+"/api/live?rule=door")

	ev := s.until(t, 5*time.Second, "rule", nil)
	re := decode[ruleJSON](t, ev.data)
	if !re.Found || re.Definition == nil || re.Name != "door" {
		t.Fatalf("rule event: %s", ev.data)
	}
	d := re.Definition
	wh := d.Actions[0]
	if wh.Kind != "webhook" || wh.Value("headers.Authorization") != "[REDACTED]" || wh.Value("headers.X-Room") != "{{ room }}" {
		t.Errorf("webhook fields %+v, want Authorization redacted and X-Room shown", wh.Fields)
	}
	if !strings.Contains(wh.Value("url"), "api_key=[REDACTED]") || wh.Value("body") != `{"t":"[REDACTED]"}` {
		t.Errorf("webhook url %q body %q, want the secret redacted", wh.Value("url"), wh.Value("body"))
	}
	if len(d.OnClear) != 1 || d.OnClear[0].Value("message") != "{{ room }} door closed" || d.When != `payload == "open"` {
		t.Errorf("definition %+v", d)
	}
	if strings.Contains(ev.data, secretValue) {
		t.Errorf("the secret is in the rule event: %s", ev.data)
	}
	if re.Tracked != 1 || len(re.Keys) != 1 || !re.Keys[0].Pending || re.Keys[0].Key != "home/hall/door" {
		t.Errorf("keys %+v (tracked %d), want home/hall/door pending", re.Keys, re.Tracked)
	}
	if len(re.Trace) != 1 || re.Trace[0].Outcome != "pending" || !strings.HasPrefix(re.Trace[0].Explanation, "condition true: pending for") {
		t.Errorf("trace %+v", re.Trace)
	}

	// Later events follow the trace, without the definition.
	f.engine.Handle(engine.Message{Topic: "home/hall/door", Payload: []byte(`closed`)})
	re = decode[ruleJSON](t, s.until(t, 5*time.Second, "rule", nil).data)
	if re.Definition != nil {
		t.Error("the definition is sent again")
	}
	if n := len(re.Trace); n != 2 || re.Trace[1].Explanation != "condition false: cancelled the pending for" {
		t.Errorf("trace after a false message: %+v", re.Trace)
	}
	if len(re.Keys) != 0 {
		t.Errorf("keys after the cancel: %+v, want none active", re.Keys)
	}

	s2 := openStream(t, srv.URL+"/api/live?rule=nope")
	if re := decode[ruleJSON](t, s2.until(t, 5*time.Second, "rule", nil).data); re.Found {
		t.Error("an unknown rule is found")
	}
}

// TestStreamCatchesUp checks what a page gets when it missed frames: a
// full snapshot, not a tick that would leave it wrong.
func TestStreamCatchesUp(t *testing.T) {
	f := newFixture(t, "")
	p := New(f, Options{})
	rec := httptest.NewRecorder()
	s := &stream{page: p, w: rec, rc: http.NewResponseController(rec)}
	var got []string
	for i := range 5 {
		fr := p.snap.tick()
		if i == 2 {
			continue // missed
		}
		if err := s.send(fr); err != nil {
			t.Fatal(err)
		}
	}
	for _, m := range regexp.MustCompile(`(?m)^event: (\w+)$`).FindAllStringSubmatch(rec.Body.String(), -1) {
		got = append(got, m[1])
	}
	want := []string{"rules", "full", "rates", "tick", "full", "tick"}
	if !slices.Equal(got, want) {
		t.Errorf("events %v, want %v", got, want)
	}
}

// TestHubSlowClient checks the fan-out: a page that does not read keeps one
// frame, the newest, and holds up no one.
func TestHubSlowClient(t *testing.T) {
	h := newHub(time.Hour, 10, nil)
	quit := make(chan struct{})
	slow, fast := &client{ch: make(chan *frame, 1)}, &client{ch: make(chan *frame, 1)}
	h.clients[slow], h.clients[fast] = struct{}{}, struct{}{}
	for i := uint64(1); i <= 100; i++ {
		h.publish(&frame{seq: i}, quit)
		if f := <-fast.ch; f.seq != i {
			t.Fatalf("the reading page got frame %d, want %d", f.seq, i)
		}
	}
	if n := len(slow.ch); n != 1 {
		t.Fatalf("the slow page holds %d frames, want 1", n)
	}
	if f := <-slow.ch; f.seq != 100 {
		t.Errorf("the slow page holds frame %d, want the newest (100)", f.seq)
	}
	if n := h.skipped.Load(); n != 99 {
		t.Errorf("skipped %d, want 99", n)
	}
}

// TestHubLifecycle checks that the broadcaster runs only while a page is
// open.
func TestHubLifecycle(t *testing.T) {
	f := newFixture(t, "")
	_, p := serve(t, f, Options{Interval: time.Millisecond}, "")
	select {
	case <-p.hub.idle():
	default:
		t.Fatal("a broadcaster runs with no page open")
	}
	if n := p.hub.ticks.Load(); n != 0 {
		t.Fatalf("%d ticks with no page open", n)
	}
	for round := range 3 {
		var cs []*client
		for range 3 {
			c, err := p.hub.subscribe()
			if err != nil {
				t.Fatal(err)
			}
			cs = append(cs, c)
		}
		start := p.hub.ticks.Load()
		waitFor(t, 5*time.Second, "ticks", func() bool { return p.hub.ticks.Load() > start+3 })
		for _, c := range cs {
			p.hub.unsubscribe(c)
		}
		select {
		case <-p.hub.idle():
		case <-time.After(5 * time.Second):
			t.Fatalf("round %d: the broadcaster still runs with no page open", round)
		}
		if p.hub.clientCount() != 0 || p.hub.last != nil {
			t.Errorf("round %d: clients %d, last frame kept", round, p.hub.clientCount())
		}
	}
}

// TestMaxClients checks the bound on open pages: the one too many gets 503
// and may come back when another leaves.
func TestMaxClients(t *testing.T) {
	f := newFixture(t, "")
	srv, p := serve(t, f, Options{Interval: fast, MaxClients: 3}, "")
	var streams []*eventStream
	for range 3 {
		s := openStream(t, srv.URL+"/api/live")
		s.until(t, 5*time.Second, "full", nil)
		streams = append(streams, s)
	}
	resp, err := http.Get(srv.URL + "/api/live")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("the 4th page: %d (Retry-After %q) %s, want 503 with Retry-After", resp.StatusCode, resp.Header.Get("Retry-After"), body)
	}
	streams[0].resp.Body.Close()
	waitFor(t, 5*time.Second, "the closed page to leave", func() bool { return p.hub.clientCount() == 2 })
	openStream(t, srv.URL+"/api/live").until(t, 5*time.Second, "full", nil)
}

// TestManyClients opens many pages at once and reads them all: each gets
// the rule set and its snapshots.
func TestManyClients(t *testing.T) {
	f := newFixture(t, "")
	srv, p := serve(t, f, Options{Interval: fast}, "")
	var wg sync.WaitGroup
	errs := make(chan error, DefaultMaxClients)
	for i := range DefaultMaxClients {
		s := openStream(t, srv.URL+"/api/live")
		wg.Go(func() {
			var names []string
			deadline := time.After(10 * time.Second)
			for len(names) < 4 {
				select {
				case ev := <-s.events:
					names = append(names, ev.name)
				case <-deadline:
					errs <- fmt.Errorf("page %d: only %v", i, names)
					return
				}
			}
			if names[0] != "rules" || names[1] != "full" {
				errs <- fmt.Errorf("page %d: %v", i, names)
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if n := p.hub.clientCount(); n != DefaultMaxClients {
		t.Errorf("%d pages subscribed, want %d", n, DefaultMaxClients)
	}
}

// TestLiveToken checks the stream behind --http-token: refused without it,
// served with the header or with the cookie that /?token= sets.
func TestLiveToken(t *testing.T) {
	const token = "page-token-123"
	f := newFixture(t, "")
	srv, _ := serve(t, f, Options{Interval: fast}, token)

	resp, err := http.Get(srv.URL + "/api/live")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 401 {
		t.Fatalf("the stream without the token: %d, want 401", resp.StatusCode)
	}
	openStream(t, srv.URL+"/api/live", "Authorization", "Bearer "+token).until(t, 5*time.Second, "full", nil)

	// The browser's way: /?token= sets the cookie and redirects.
	noRedirect := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err = noRedirect.Get(srv.URL + "/?token=" + token)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/" {
		t.Fatalf("/?token=: %d Location %q, want 303 to /", resp.StatusCode, resp.Header.Get("Location"))
	}
	var cookie *http.Cookie
	for _, c := range resp.Cookies() {
		if c.Name == httpapi.TokenCookie {
			cookie = c
		}
	}
	if cookie == nil || !cookie.HttpOnly || cookie.SameSite != http.SameSiteLaxMode || strings.Contains(cookie.Value, token) {
		t.Fatalf("cookie %+v, want HttpOnly, SameSite=Lax, not the token itself", cookie)
	}
	s := openStream(t, srv.URL+"/api/live", "Cookie", cookie.Name+"="+cookie.Value)
	s.until(t, 5*time.Second, "full", nil)

	resp, err = http.Get(srv.URL + "/api/live")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	req, _ := http.NewRequest(http.MethodGet, srv.URL+"/api/live", nil)
	req.Header.Set("Cookie", cookie.Name+"=not-it")
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 401 {
		t.Errorf("the stream with a wrong cookie: %d, want 401", resp.StatusCode)
	}
}

// TestStreamsEndOnShutdown checks that an open page does not hold up the
// server's shutdown.
func TestStreamsEndOnShutdown(t *testing.T) {
	f := newFixture(t, "")
	h := httpapi.NewHandler(f, httpapi.Options{})
	p := New(f, Options{Interval: fast})
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	p.Register(ctx, h)
	r, err := httpapi.Start(ctx, "127.0.0.1:0", h, nil)
	if err != nil {
		t.Fatal(err)
	}
	s := openStream(t, "http://"+r.Addr()+"/api/live")
	s.until(t, 5*time.Second, "full", nil)
	start := time.Now()
	cancel()
	select {
	case <-r.Done():
	case <-time.After(httpapi.ShutdownTimeout):
		t.Fatal("the server waited for the open page to go")
	}
	if took := time.Since(start); took > 2*time.Second {
		t.Errorf("shutdown took %v with a page open", took)
	}
	select {
	case <-p.hub.idle():
	case <-time.After(5 * time.Second):
		t.Error("the broadcaster runs on after shutdown")
	}
}
