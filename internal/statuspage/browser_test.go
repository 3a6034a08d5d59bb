package statuspage_test

import (
	"context"
	"fmt"
	"math"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/chromedp"

	"github.com/mqtt-rules/mqtt-rules/internal/app"
	"github.com/mqtt-rules/mqtt-rules/internal/httpapi"
	"github.com/mqtt-rules/mqtt-rules/internal/statuspage"
	"github.com/mqtt-rules/mqtt-rules/internal/testbroker"
)

// Environment of the browser test.
const (
	// RequireBrowserEnv=1 turns a missing chromium from a skipped test
	// into a failed one (CI sets it).
	RequireBrowserEnv = "MQTT_RULES_REQUIRE_BROWSER"
	// ScreenshotsEnv=1 makes the browser test write the README's
	// screenshots to docs/screenshots/ (it then runs ~30 s longer, to
	// give the charts some history).
	ScreenshotsEnv = "MQTT_RULES_SCREENSHOTS"
	// ChromiumEnv names the browser binary, when not /usr/bin/chromium.
	ChromiumEnv = "MQTT_RULES_CHROMIUM"
)

// chromiumPath finds Debian's chromium, or skips (fails with
// MQTT_RULES_REQUIRE_BROWSER=1).
func chromiumPath(t testing.TB) string {
	t.Helper()
	if p := os.Getenv(ChromiumEnv); p != "" {
		return p
	}
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	msg := "no chromium found (apt-get install chromium, or set " + ChromiumEnv + "): the browser test needs a headless browser"
	if os.Getenv(RequireBrowserEnv) == "1" {
		t.Fatal(msg + "; " + RequireBrowserEnv + "=1 makes this a failure")
	}
	t.Skip(msg)
	return ""
}

// newBrowser starts a headless chromium for the test and returns its tab.
func newBrowser(t testing.TB, width, height int) context.Context {
	t.Helper()
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromiumPath(t)),
		chromedp.NoSandbox, // root in CI containers
		chromedp.Flag("disable-gpu", true),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(width, height),
	)
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(actx, chromedp.WithLogf(t.Logf))
	t.Cleanup(func() {
		cancel()
		cancelAlloc()
	})
	// The first Run starts the browser; it must not run under a timeout.
	if err := chromedp.Do(ctx, chromedp.EmulateViewport(int64(width), int64(height))); err != nil {
		t.Fatalf("starting chromium: %v", err)
	}
	return ctx
}

// do runs browser actions, failing the test after 30 s.
func do(t testing.TB, ctx context.Context, steps ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := chromedp.Do(cctx, steps...); err != nil {
		t.Fatalf("browser: %v", err)
	}
}

// eval evaluates a script in the page.
func eval[T any](t testing.TB, ctx context.Context, js string) T {
	t.Helper()
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	v, err := chromedp.Run(cctx, chromedp.Evaluate[T](js))
	if err != nil {
		t.Fatalf("browser: evaluating %s: %v", js, err)
	}
	return v
}

// waitPage polls the page until the script is true, failing the test with
// what describe says about the page after timeout.
func waitPage(t testing.TB, ctx context.Context, timeout time.Duration, what, js, describe string) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !eval[bool](t, ctx, "!!("+js+")") {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s; the page shows: %s", timeout, what, eval[string](t, ctx, describe))
		}
		time.Sleep(25 * time.Millisecond)
	}
}

// homeRules are the browser test's rules: a small house.
const homeRules = `
rules:
  - name: kitchen-too-hot
    description: Kitchen above 30 °C
    topic: home/{room}/temperature
    when: payload.value > 30
    actions:
      - publish:
          topic: "alerts/{{ room }}/hot"
          payload: '{"room":"{{ room }}","value":{{ payload.value }}}'
          qos: 1
  - name: hallway-light
    description: Light on when there is motion in the dark
    topic: zigbee2mqtt/{room}/motion
    when: payload.occupancy && payload.illuminance_lux < 20
    actions:
      - publish: {topic: "zigbee2mqtt/{{ room }}/light/set", payload: '{"state":"ON","brightness":200}'}
  - name: door-left-open
    description: A door left open for ten minutes
    topic: home/{room}/door
    when: payload == "open"
    for: 10m
    repeat: 30m
    actions:
      - webhook:
          url: "${WEBHOOK_URL}/notify?api_key=${NOTIFY_TOKEN}"
          headers: {Authorization: "Bearer ${NOTIFY_TOKEN}"}
          body: '{"text":"The {{ room }} door is open"}'
    on_clear:
      - log: "{{ room }} door closed again"
  - name: freezer-silent
    description: The freezer's sensor stopped reporting
    topic: sensors/freezer/{id}
    absent: 15m
    actions:
      - log: {message: "freezer {{ id }} silent for 15 minutes", level: warn}
  - name: washer-done
    topic: home/laundry/washer/power
    when: payload.watts < 3 && prev != nil && prev.payload.watts > 50
    cooldown: 30m
    actions:
      - publish: {topic: notify/phone, payload: The washer is done}
  - name: battery-low
    topic: zigbee2mqtt/{device}/battery
    when: payload.battery < 15
    key: "{{ device }}"
    cooldown: 24h
    actions:
      - log: "{{ device }} battery at {{ payload.battery }} %"
  - name: garage-open-at-night
    topic: home/garage/door
    when: payload == "open" && now.Hour() >= 22
    enabled: false
    actions:
      - log: The garage is open at night
`

// notifyToken is the secret the webhook reads from the environment; it
// must not reach the browser.
const notifyToken = "nt-0123456789-secret"

// TestBrowser opens the status page of a real engine on mosquitto in
// headless chromium: the rules are listed; a message that fires a rule
// shows as a new count and "last fired" without a reload; the rule's
// detail view shows why it fired; no secret is on the page.
func TestBrowser(t *testing.T) {
	chromiumPath(t)
	broker := testbroker.Mosquitto(t)
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	t.Cleanup(hook.Close)
	t.Setenv("NOTIFY_TOKEN", notifyToken)
	t.Setenv("WEBHOOK_URL", hook.URL)
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "home.yaml"), []byte(homeRules), 0o644); err != nil {
		t.Fatal(err)
	}
	const token = "page-test-token"
	a, err := app.Start(app.Config{
		Rules:     []string{dir},
		Broker:    broker.URL(),
		ClientID:  "statuspage-browser-test",
		HTTP:      "127.0.0.1:0",
		HTTPToken: token,
		Version:   "0.9.0",
	})
	if err != nil {
		t.Fatalf("starting the engine: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		a.Close(ctx)
	})
	deadline := time.Now().Add(10 * time.Second)
	for !a.Ready() {
		if time.Now().After(deadline) {
			t.Fatal("the engine is not ready after 10 s")
		}
		time.Sleep(5 * time.Millisecond)
	}
	base := "http://" + a.HTTPAddr()
	pub := testbroker.NewPublisher(t, broker.URL())

	ctx := newBrowser(t, 1280, 900)
	const describe = `document.querySelector('main').innerText.slice(0, 2000)`
	const hot = `#rules-body tr[data-rule="kitchen-too-hot"]`

	// Sign in with ?token=: the page lands on / with the token gone from
	// the address bar, and its event stream gets through on the cookie.
	do(t, ctx, chromedp.Navigate(base+"/?token="+token))
	if u := eval[string](t, ctx, `location.href`); strings.Contains(u, token) {
		t.Errorf("the address bar still holds the token: %s", u)
	}
	waitPage(t, ctx, 10*time.Second, "the rules to be listed",
		`document.querySelectorAll('#rules-body tr').length === 7 && document.querySelector('`+hot+` td.fires').textContent === '0'`, describe)
	waitPage(t, ctx, 10*time.Second, "the broker and stream state", `document.getElementById('broker-state').textContent === 'connected (MQTT 5)' && document.getElementById('live-state').textContent === 'Live'`, describe)
	names := eval[[]string](t, ctx, `[...document.querySelectorAll('#rules-body tr td.name a')].map(a => a.textContent)`)
	want := []string{"kitchen-too-hot", "hallway-light", "door-left-open", "freezer-silent", "washer-done", "battery-low", "garage-open-at-night"}
	if strings.Join(names, ",") != strings.Join(want, ",") {
		t.Errorf("rules on the page: %v, want %v", names, want)
	}
	if got := eval[string](t, ctx, `document.querySelector('`+hot+` td.last').textContent`); got != "never" {
		t.Errorf("kitchen-too-hot last fired %q before any message, want never", got)
	}

	// A firing shows up live: the same document (the marker survives),
	// new counts.
	eval[int](t, ctx, `window.__sameDocument = 42`)
	pub.Publish("home/kitchen/temperature", []byte(`{"value": 31.5}`), 1, false)
	waitPage(t, ctx, 10*time.Second, "the firing to show",
		`document.querySelector('`+hot+` td.fires').textContent === '1' && document.querySelector('`+hot+` td.last time').dataset.ms !== '0'`, describe)
	if got := eval[string](t, ctx, `document.querySelector('`+hot+` td.last').textContent`); !strings.Contains(got, "ago") && got != "just now" {
		t.Errorf("last fired reads %q, want a relative time", got)
	}
	if eval[int](t, ctx, `window.__sameDocument || 0`) != 42 {
		t.Error("the page reloaded")
	}
	waitPage(t, ctx, 10*time.Second, "the message count", `document.getElementById('total-received').textContent === '1'`, describe)

	// A door opens: its key is pending, with the for's deadline.
	pub.Publish("home/hall/door", []byte(`open`), 1, false)
	waitPage(t, ctx, 10*time.Second, "the pending key",
		`document.querySelector('#rules-body tr[data-rule="door-left-open"] td.state').textContent.includes('1 pending')`, describe)

	// The search box filters by name or topic.
	do(t, ctx, chromedp.SendKeys(`#search`, "zigbee"))
	waitPage(t, ctx, 5*time.Second, "the filter", `[...document.querySelectorAll('#rules-body tr')].filter(r => !r.hidden).length === 2`, describe)
	eval[bool](t, ctx, `(() => { const s = document.getElementById('search'); s.value = ''; return s.dispatchEvent(new Event('input')); })()`)
	waitPage(t, ctx, 5*time.Second, "the filter to clear", `[...document.querySelectorAll('#rules-body tr')].filter(r => !r.hidden).length === 7`, describe)

	// The detail view: the trace explains the firing, then a message that
	// does not fire, live.
	do(t, ctx, chromedp.Click(hot+` td.name a`))
	waitPage(t, ctx, 10*time.Second, "the trace",
		`[...document.querySelectorAll('#d-trace .why')].some(e => e.textContent === 'condition true: fired')`, describe)
	waitPage(t, ctx, 5*time.Second, "the definition", `document.getElementById('d-def').textContent.includes('payload.value > 30')`, describe)
	pub.Publish("home/kitchen/temperature", []byte(`{"value": 20}`), 1, false)
	waitPage(t, ctx, 10*time.Second, "the false evaluation",
		`document.querySelector('#d-trace li .why').textContent === 'condition false: does not fire'`, describe)
	if eval[int](t, ctx, `window.__sameDocument || 0`) != 42 {
		t.Error("the page reloaded on the way to the detail view")
	}

	// The webhook's secrets are redacted in its definition, and appear
	// nowhere in the page.
	do(t, ctx, chromedp.Navigate(base+"/#/rule/door-left-open"))
	waitPage(t, ctx, 10*time.Second, "the door's definition and key",
		`document.getElementById('d-def').textContent.includes('[REDACTED]') && document.getElementById('d-keys').textContent.includes('home/hall/door')`, describe)
	if html := eval[string](t, ctx, `document.documentElement.outerHTML`); strings.Contains(html, notifyToken) || strings.Contains(html, token) {
		t.Errorf("the page shows a secret:\n%s", html)
	}

	// Control: the page was opened with the token, so its rows have
	// buttons. Clicking kitchen-too-hot's Disable disables the rule, and
	// its row says so with the next tick, without a reload.
	do(t, ctx, chromedp.Navigate(base+"/"))
	const disable = hot + ` button.ctl[data-action="disable"]`
	waitPage(t, ctx, 10*time.Second, "the disable button", `document.querySelector('`+disable+`') && document.getElementById('mode').textContent === 'Control on'`, describe)
	if n := eval[int](t, ctx, `document.querySelectorAll('#rules-body tr[data-rule="door-left-open"] button.ctl[data-action="ack"][disabled]').length`); n != 1 {
		t.Errorf("door-left-open (repeat, nothing firing) has %d disabled acknowledge buttons, want 1", n)
	}
	eval[int](t, ctx, `window.__sameDocument = 43`)
	do(t, ctx, chromedp.Click(disable))
	waitPage(t, ctx, 10*time.Second, "the rule to show disabled",
		`document.querySelector('`+hot+` td.state').textContent.includes('disabled by control') && document.querySelector('`+hot+` button.ctl[data-action="enable"]') && document.querySelector('`+hot+`').classList.contains('disabled')`, describe)
	if on, by, _ := a.Enabled("kitchen-too-hot"); on || by != "control" {
		t.Errorf("after the click kitchen-too-hot is enabled %v by %s, want disabled by control", on, by)
	}
	if got := eval[string](t, ctx, `document.getElementById('control-msg').textContent`); got != "kitchen-too-hot: disabled" {
		t.Errorf("the page says %q after the click", got)
	}
	do(t, ctx, chromedp.Click(hot+` button.ctl[data-action="enable"]`))
	waitPage(t, ctx, 10*time.Second, "the rule to show enabled again",
		`!document.querySelector('`+hot+` td.state').textContent.includes('disabled') && document.querySelector('`+disable+`')`, describe)
	if eval[int](t, ctx, `window.__sameDocument || 0`) != 43 {
		t.Error("the page reloaded on a control")
	}

	if os.Getenv(ScreenshotsEnv) == "1" {
		screenshots(t, ctx, a, pub, token)
	}
}

// screenshots fills the engine with a little house's traffic and takes the
// README's pictures. The page is served with short rate buckets (0.5 s) so
// the charts show a shape after half a minute.
func screenshots(t *testing.T, ctx context.Context, a *app.App, pub *testbroker.Publisher, token string) {
	hctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	h := httpapi.NewHandler(a, httpapi.Options{Token: token, Version: "0.9.0"})
	statuspage.New(a, statuspage.Options{Version: "0.9.0", Step: 500 * time.Millisecond, Buckets: 60}).Register(hctx, h)
	srv, err := httpapi.Start(hctx, "127.0.0.1:0", h, nil)
	if err != nil {
		t.Fatal(err)
	}
	base := "http://" + srv.Addr()

	pub.Publish("sensors/freezer/kitchen", []byte(`{"temp": -18}`), 1, false)
	pub.Publish("sensors/freezer/cellar", []byte(`{"temp": -21}`), 1, false)
	pub.Publish("home/laundry/washer/power", []byte(`{"watts": 420}`), 1, false)
	pub.Publish("zigbee2mqtt/remote/battery", []byte(`{"battery": 9}`), 1, false)
	pub.Publish("home/garage/door", []byte(`open`), 1, false)
	pub.Publish("home/laundry/washer/power", []byte(`{"watts": 2}`), 1, false)

	// Traffic in waves, 50-250 messages/s, until the pictures are taken.
	stop, stopped := make(chan struct{}), make(chan struct{})
	defer func() {
		close(stop)
		<-stopped
	}()
	go func() {
		defer close(stopped)
		rooms := []string{"kitchen", "living", "bedroom", "bath", "office"}
		start := time.Now()
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			case <-tick.C:
			}
			el := time.Since(start).Seconds()
			n := 1 + int(2+1.5*math.Sin(el/3)+math.Sin(el/1.3))
			for j := range n {
				room := rooms[(i+j)%len(rooms)]
				v := 21 + 4*math.Sin(el/4+float64(j))
				if room == "kitchen" && int(el)%9 == 0 {
					v = 31 + float64(i%3)
				}
				pub.PublishAsync("home/"+room+"/temperature", fmt.Appendf(nil, `{"value": %.1f}`, v), 0, false)
			}
			if i%40 == 0 {
				pub.PublishAsync("zigbee2mqtt/hallway/motion", []byte(`{"occupancy": true, "illuminance_lux": 12}`), 0, false)
			}
			if i%150 == 75 {
				pub.PublishAsync("zigbee2mqtt/porch/battery", []byte(`"n/a"`), 0, false) // a condition error
			}
			if i%100 == 0 {
				pub.PublishAsync("sensors/freezer/kitchen", []byte(`{"temp": -18}`), 0, false)
			}
			switch i % 500 {
			case 250:
				pub.PublishAsync("home/garage/door", []byte(`closed`), 0, false) // cancels its for
			case 400:
				pub.PublishAsync("home/garage/door", []byte(`open`), 0, false)
			}
		}
	}()
	// Let the charts fill: this is history to show, not a wait for
	// something to happen.
	time.Sleep(28 * time.Second)

	dir := filepath.Join("..", "..", "docs", "screenshots")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	const ready = `document.querySelectorAll('#rules-body tr').length === 7 && document.querySelector('#spark-received path.line')`
	shoot := func(name string, full bool) {
		t.Helper()
		action := chromedp.CaptureScreenshot()
		if full {
			action = chromedp.FullScreenshot(100)
		}
		cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		png, err := chromedp.Run(cctx, action)
		if err != nil {
			t.Fatalf("screenshot %s: %v", name, err)
		}
		if err := os.WriteFile(filepath.Join(dir, name), png, 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("wrote %s (%d bytes)", filepath.Join(dir, name), len(png))
	}
	const describe = `document.querySelector('main').innerText.slice(0, 2000)`

	do(t, ctx, chromedp.EmulateViewport(1280, 860), chromedp.Navigate(base+"/"))
	waitPage(t, ctx, 10*time.Second, "the page with charts", ready, describe)
	waitPage(t, ctx, 5*time.Second, "the rates", `document.getElementById('now-received').textContent !== '–'`, describe)
	shoot("status-desktop.png", true)

	do(t, ctx, chromedp.Navigate(base+"/#/rule/door-left-open"))
	waitPage(t, ctx, 10*time.Second, "the detail view", `document.querySelectorAll('#d-trace li').length > 0 && document.getElementById('d-def').textContent.includes('[REDACTED]')`, describe)
	shoot("status-rule.png", true)

	dark := func(ctx context.Context, tg *chromedp.Target) error {
		_, err := cdp.Call(ctx, tg, emulation.SetEmulatedMedia, emulation.SetEmulatedMediaParams{
			Features: []*emulation.MediaFeature{{Name: "prefers-color-scheme", Value: "dark"}},
		})
		return err
	}
	do(t, ctx, chromedp.EmulateViewport(390, 844, chromedp.EmulateScale(2), chromedp.EmulateMobile, chromedp.EmulateTouch), chromedp.Func(dark), chromedp.Navigate(base+"/"))
	waitPage(t, ctx, 10*time.Second, "the phone page", ready, describe)
	waitPage(t, ctx, 5*time.Second, "the rates", `document.getElementById('now-received').textContent !== '–'`, describe)
	shoot("status-phone-dark.png", false)
	if n := a.Counters().Received(); n < 1000 {
		t.Errorf("only %d messages during the screenshots", n)
	}
}
