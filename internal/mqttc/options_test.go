package mqttc

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/eclipse/paho.mqtt.golang/packets"

	"github.com/mqtt-rules/mqtt-rules/internal/mqttwire"
)

func TestOptionsURL(t *testing.T) {
	tests := []struct {
		in, want string
		tls      bool
	}{
		{"tcp://broker", "tcp://broker:1883", false},
		{"tcp://broker:1884", "tcp://broker:1884", false},
		{"mqtt://broker", "tcp://broker:1883", false},
		{"ssl://broker", "ssl://broker:8883", true},
		{"mqtts://broker", "ssl://broker:8883", true},
		{"tls://broker:9999", "ssl://broker:9999", true},
		{"ws://broker/mqtt", "ws://broker:80/mqtt", false},
		{"wss://broker/mqtt", "wss://broker:443/mqtt", true},
		{"TCP://broker", "tcp://broker:1883", false},
		{"tcp://[::1]", "tcp://[::1]:1883", false},
		{"tcp://user:pw@broker", "tcp://user:pw@broker:1883", false},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			s, err := Options{Broker: tt.in}.settings()
			if err != nil {
				t.Fatalf("settings: %v", err)
			}
			if s.url != tt.want {
				t.Errorf("url = %q, want %q", s.url, tt.want)
			}
			if (s.tls != nil) != tt.tls {
				t.Errorf("TLS config set = %v, want %v", s.tls != nil, tt.tls)
			}
			if strings.Contains(s.redacted, "pw") {
				t.Errorf("redacted URL %q holds the password", s.redacted)
			}
		})
	}
}

func TestOptionsDefaults(t *testing.T) {
	s, err := Options{Broker: "tcp://b"}.settings()
	if err != nil {
		t.Fatal(err)
	}
	if s.KeepAlive != 30*time.Second || s.ConnectTimeout != 10*time.Second || s.MaxReconnectInterval != 30*time.Second ||
		s.PublishQueue != 10000 || s.PublishInFlight != 256 || s.PublishTimeout != 30*time.Second ||
		s.PublishBackpressure != 5*time.Second {
		t.Errorf("defaults: %+v", s.Options)
	}
	if !strings.HasPrefix(s.ClientID, "mqtt-rules") {
		t.Errorf("default ClientID = %q, want mqtt-rules-<host>", s.ClientID)
	}
	if s.Logger == nil {
		t.Error("default Logger is nil")
	}
}

func TestOptionsErrors(t *testing.T) {
	dir := t.TempDir()
	notPEM := filepath.Join(dir, "not.pem")
	if err := os.WriteFile(notPEM, []byte("hello"), 0o600); err != nil {
		t.Fatal(err)
	}
	missing := filepath.Join(dir, "missing.pem")
	cert, key := writeCert(t, dir)

	tests := []struct {
		name string
		o    Options
		want string // substring of the error
	}{
		{"empty", Options{}, "broker URL is empty"},
		{"no scheme", Options{Broker: "localhost:1883"}, `broker URL "localhost:1883": missing scheme (e.g. tcp://localhost:1883)`},
		{"bad scheme", Options{Broker: "http://b"}, `unsupported scheme "http"`},
		{"no host", Options{Broker: "tcp://:1883"}, "missing host"},
		{"bad URL", Options{Broker: "tcp://b:port"}, "broker URL"},
		{"ca missing", Options{Broker: "ssl://b", CAFile: missing}, "read CA file: open " + missing},
		{"ca not pem", Options{Broker: "ssl://b", CAFile: notPEM}, "CA file " + notPEM + ": no PEM certificate found"},
		{"cert missing", Options{Broker: "ssl://b", CertFile: missing, KeyFile: key}, "read certificate file: open " + missing},
		{"key missing", Options{Broker: "ssl://b", CertFile: cert, KeyFile: missing}, "read key file: open " + missing},
		{"key not pem", Options{Broker: "ssl://b", CertFile: cert, KeyFile: notPEM}, "key file " + notPEM},
		{"key without cert", Options{Broker: "ssl://b", KeyFile: key}, "key file " + key + " given without a certificate file"},
		{"tls files on tcp", Options{Broker: "tcp://b", CAFile: cert}, "does not use TLS"},
		{"negative", Options{Broker: "tcp://b", KeepAlive: -time.Second}, "keep-alive -1s: must not be negative"},
		{"negative queue", Options{Broker: "tcp://b", PublishQueue: -1}, "must not be negative"},
		{"keep-alive too long", Options{Broker: "tcp://b", KeepAlive: 20 * time.Hour}, "keep-alive 20h0m0s: at most 65535s"},
		{"negative backpressure", Options{Broker: "tcp://b", PublishBackpressure: -time.Second}, "publish backpressure -1s: must not be negative"},
		{"share group slash", Options{Broker: "tcp://b", ShareGroup: "a/b"}, `share group "a/b"`},
		{"subscribe QoS 3", Options{Broker: "tcp://b", SubscribeQoS: new(byte(3))}, "subscribe QoS 3: want 0, 1 or 2"},
		{"will wildcard", Options{Broker: "tcp://b", Will: &Will{Topic: "a/#"}}, `will topic "a/#": must not be empty or hold '+', '#' or NUL`},
		{"will empty topic", Options{Broker: "tcp://b", Will: &Will{}}, `will topic "": must not be empty`},
		{"will QoS 3", Options{Broker: "tcp://b", Will: &Will{Topic: "s", QoS: 3}}, "will QoS 3: want 0, 1 or 2"},
		{"will payload", Options{Broker: "tcp://b", Will: &Will{Topic: "s", Payload: make([]byte, 70000)}}, "will payload of 70000 bytes is over the MQTT limit of 65535"},
		{"online not UTF-8", Options{Broker: "tcp://b", OnlineMessage: &Will{Topic: "s\xff"}}, "online message topic \"s\\xff\": not UTF-8"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := New(tt.o)
			if err == nil {
				t.Fatalf("New: nil error, want one containing %q", tt.want)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("New: %q, want it to contain %q", err, tt.want)
			}
			if strings.Contains(err.Error(), "\n") {
				t.Errorf("error is not one line: %q", err)
			}
		})
	}
}

func TestOptionsTLSFiles(t *testing.T) {
	dir := t.TempDir()
	cert, key := writeCert(t, dir)
	both := filepath.Join(dir, "both.pem")
	c, _ := os.ReadFile(cert)
	k, _ := os.ReadFile(key)
	if err := os.WriteFile(both, append(c, k...), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, o := range []Options{
		{Broker: "ssl://b", CAFile: cert, CertFile: cert, KeyFile: key, ServerName: "other"},
		{Broker: "wss://b", CertFile: both}, // certificate and key in one file
	} {
		s, err := o.settings()
		if err != nil {
			t.Fatalf("settings(%+v): %v", o, err)
		}
		if len(s.tls.Certificates) != 1 {
			t.Errorf("%s: %d client certificates, want 1", o.Broker, len(s.tls.Certificates))
		}
		if s.tls.ServerName != o.ServerName {
			t.Errorf("ServerName = %q, want %q", s.tls.ServerName, o.ServerName)
		}
		if (s.tls.RootCAs != nil) != (o.CAFile != "") {
			t.Errorf("RootCAs set = %v with CAFile %q", s.tls.RootCAs != nil, o.CAFile)
		}
	}
}

// writeCert writes a self-signed certificate and its key as PEM files.
func writeCert(t *testing.T, dir string) (certFile, keyFile string) {
	t.Helper()
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "test"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &priv.PublicKey, priv)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}), 0o600); err != nil {
		t.Fatal(err)
	}
	return certFile, keyFile
}

func TestValidFilter(t *testing.T) {
	for _, f := range []string{"a", "a/b", "+", "#", "a/+/b", "a/#", "+/+", "/", "a//b", "$SYS/#"} {
		if err := ValidFilter(f); err != nil {
			t.Errorf("ValidFilter(%q) = %v, want nil", f, err)
		}
	}
	for _, f := range []string{"", "a/#/b", "#/a", "a/b+", "a+/b", "a/#b", "a\x00b"} {
		if err := ValidFilter(f); err == nil {
			t.Errorf("ValidFilter(%q) = nil, want an error", f)
		}
	}
}

func TestRefusalText(t *testing.T) {
	tests := []struct {
		rc   byte
		err  error
		want string
	}{
		{mqttwire.ConnackBadUsernameOrPassword, errors.New("broker refused the connection: CONNACK return code 4"),
			`level=ERROR msg="broker refused the connection: bad username or password" connack_code=4 attempts=2 retry_in=1s`},
		{mqttwire.ConnackNotAuthorized, errors.New("broker refused the connection: CONNACK return code 5"),
			`level=ERROR msg="broker refused the connection: not authorized" connack_code=5`},
		{mqttwire.ConnackIDRejected, errors.New("broker refused the connection: CONNACK return code 2"),
			`msg="broker refused the connection: client identifier rejected" connack_code=2`},
		{mqttwire.ConnackAccepted, errors.New("dial tcp 127.0.0.1:1: connect: connection refused"),
			`level=WARN msg="cannot connect to broker" err="dial tcp 127.0.0.1:1: connect: connection refused"`},
		// paho's WebSocket dialer wraps the cause as "network Error : <cause>".
		{mqttwire.ConnackAccepted, fmt.Errorf("%w : %w", packets.ErrorNetworkError, errors.New("dial tcp 127.0.0.1:1: connect: connection refused")),
			`level=WARN msg="cannot connect to broker" err="dial tcp 127.0.0.1:1: connect: connection refused"`},
		{7, errors.New("broker refused the connection: CONNACK return code 7"),
			`level=ERROR msg="broker refused the connection: CONNACK return code 7" connack_code=7`},
	}
	for _, tt := range tests {
		var buf bytes.Buffer
		log := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{ReplaceAttr: dropTime}))
		logConnectFailure(log, tt.rc, tt.err, 2, time.Second)
		if !strings.Contains(buf.String(), tt.want) {
			t.Errorf("rc %d: logged\n%s\nwant it to contain\n%s", tt.rc, buf.String(), tt.want)
		}
	}
}

func dropTime(_ []string, a slog.Attr) slog.Attr {
	if a.Key == slog.TimeKey {
		return slog.Attr{}
	}
	return a
}

func TestNextBackoff(t *testing.T) {
	limit := 30 * time.Second
	var d time.Duration
	for i := range 20 {
		d = nextBackoff(d, limit)
		if d <= 0 || d > limit+limit/5 {
			t.Fatalf("step %d: backoff %v, want within (0, %v]", i, d, limit+limit/5)
		}
	}
	if d < limit-limit/5 {
		t.Errorf("after 20 steps: backoff %v, want about %v", d, limit)
	}
	if first := nextBackoff(0, limit); first > time.Second {
		t.Errorf("first backoff %v, want about 500ms", first)
	}
}
