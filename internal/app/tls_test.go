package app

import (
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mqtt-rules/mqtt-rules/internal/testbroker"
)

// logBuffer collects log lines for assertions and echoes them to t.Log.
type logBuffer struct {
	t  *testing.T
	mu sync.Mutex
	b  strings.Builder
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	l.b.Write(p)
	l.mu.Unlock()
	l.t.Log(strings.TrimSuffix(string(p), "\n"))
	return len(p), nil
}

func (l *logBuffer) has(s string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Contains(l.b.String(), s)
}

// secureBroker is mosquitto with a plain anonymous listener (for the test's
// own clients) and a TLS listener that needs a password, and one that
// needs a client certificate too.
func secureBroker(t *testing.T) (b *testbroker.Broker, certs testbroker.Certs, tlsURL, mtlsURL string) {
	dir := t.TempDir()
	certs = testbroker.GenerateCerts(t, dir)
	passwd := testbroker.PasswordFile(t, dir, "engine", "right-password")
	tlsPort, mtlsPort := testbroker.FreePort(t), testbroker.FreePort(t)
	b = testbroker.Mosquitto(t, testbroker.WithGlobalConfig("per_listener_settings true"), testbroker.WithConfig(fmt.Sprintf(`
listener %[1]d 127.0.0.1
allow_anonymous false
password_file %[3]s
cafile %[4]s
certfile %[5]s
keyfile %[6]s
listener %[2]d 127.0.0.1
allow_anonymous false
password_file %[3]s
cafile %[4]s
certfile %[5]s
keyfile %[6]s
require_certificate true
`, tlsPort, mtlsPort, passwd, certs.CA, certs.ServerCert, certs.ServerKey)))
	return b, certs, fmt.Sprintf("ssl://127.0.0.1:%d", tlsPort), fmt.Sprintf("mqtts://localhost:%d", mtlsPort)
}

const relayRules = "rules: [{name: relay, topic: in, actions: [{publish: {topic: out, qos: 1}}]}]"

func TestTLSWithPassword(t *testing.T) {
	b, certs, tlsURL, _ := secureBroker(t)
	a := start(t, Config{Rules: []string{writeRules(t, relayRules)}, Broker: tlsURL, CAFile: certs.CA,
		Username: "engine", Password: "right-password"})
	_ = a
	sub := testbroker.Subscribe(t, b.URL(), "out")
	testbroker.Publish(t, b.URL(), "in", []byte("over tls"), 1, false)
	sub.Expect(t, 5*time.Second, "out", "over tls")
}

func TestTLSWithClientCertificate(t *testing.T) {
	b, certs, _, mtlsURL := secureBroker(t)
	start(t, Config{Rules: []string{writeRules(t, relayRules)}, Broker: mtlsURL, CAFile: certs.CA,
		CertFile: certs.ClientCert, KeyFile: certs.ClientKey, Username: "engine", Password: "right-password"})
	sub := testbroker.Subscribe(t, b.URL(), "out")
	testbroker.Publish(t, b.URL(), "in", []byte("mutual tls"), 1, false)
	sub.Expect(t, 5*time.Second, "out", "mutual tls")
}

// failsClearly starts the app with a bad setting and waits for the one
// log line that says what is wrong; the app keeps retrying, not ready.
func failsClearly(t *testing.T, cfg Config, want string) {
	t.Helper()
	logs := &logBuffer{t: t}
	cfg.Logger = slog.New(slog.NewTextHandler(logs, nil))
	cfg.Rules = []string{writeRules(t, relayRules)}
	cfg.ClientID = "bad-" + strings.ReplaceAll(t.Name(), "/", "-")
	a, err := Start(cfg)
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() { a.Close(t.Context()) })
	waitFor(t, 10*time.Second, fmt.Sprintf("a log line with %q", want), func() bool { return logs.has(want) })
	if a.Ready() {
		t.Error("ready with a connection that cannot work")
	}
}

func TestWrongPasswordIsAClearError(t *testing.T) {
	_, certs, tlsURL, _ := secureBroker(t)
	failsClearly(t, Config{Broker: tlsURL, CAFile: certs.CA, Username: "engine", Password: "wrong"}, "not authorized")
}

func TestUnknownCertificateAuthorityIsAClearError(t *testing.T) {
	_, _, tlsURL, _ := secureBroker(t)
	other := testbroker.GenerateCerts(t, t.TempDir())
	failsClearly(t, Config{Broker: tlsURL, CAFile: other.CA, Username: "engine", Password: "right-password"},
		"certificate signed by unknown authority")
}

func TestMissingClientCertificateIsAClearError(t *testing.T) {
	_, certs, _, mtlsURL := secureBroker(t)
	failsClearly(t, Config{Broker: mtlsURL, CAFile: certs.CA, Username: "engine", Password: "right-password"},
		"certificate required")
}

// TestShareGroupSplitsMessages runs two engines in one shared-subscription
// group on mosquitto: every message is processed by exactly one of them.
func TestShareGroupSplitsMessages(t *testing.T) {
	url := testbroker.Mosquitto(t).URL()
	rules := writeRules(t, `
rules:
  - name: relay
    topic: "in/#"
    actions: [{publish: {topic: out, qos: 1}}]
  - name: overlapping
    topic: "in/+/x"
    actions: [{log: "{{ topic }}"}]
`)
	one := start(t, Config{Rules: []string{rules}, Broker: url, ShareGroup: "rules", ClientID: "share-1"})
	two := start(t, Config{Rules: []string{rules}, Broker: url, ShareGroup: "rules", ClientID: "share-2"})
	sub := testbroker.Subscribe(t, url, "out")
	pub := testbroker.NewPublisher(t, url)
	const n = 200
	for i := range n {
		pub.Publish(fmt.Sprintf("in/%d/x", i), fmt.Appendf(nil, "%d", i), 1, false)
	}
	seen := map[string]int{}
	for range n {
		seen[string(sub.Next(t, 10*time.Second).Payload)]++
	}
	sub.ExpectNone(t, 300*time.Millisecond)
	for i := range n {
		if c := seen[fmt.Sprint(i)]; c != 1 {
			t.Errorf("message %d processed %d times, want once", i, c)
		}
	}
	r1, r2 := one.Counters().Received(), two.Counters().Received()
	if r1+r2 != n || r1 == 0 || r2 == 0 {
		t.Errorf("received %d + %d, want %d split between both", r1, r2, n)
	}
}
