package mqttc

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/mqtt-rules/mqtt-rules/actions"
	"github.com/mqtt-rules/mqtt-rules/internal/mqttwire"
)

// Defaults for the zero values of Options.
const (
	DefaultKeepAlive            = 30 * time.Second
	DefaultConnectTimeout       = 10 * time.Second
	DefaultMaxReconnectInterval = 30 * time.Second
	DefaultPublishQueue         = 10000
	DefaultPublishInFlight      = 256
	DefaultPublishTimeout       = 30 * time.Second
	DefaultPublishBackpressure  = 5 * time.Second
)

// Options configures a Client. Only Broker is required.
type Options struct {
	// Broker is the broker URL: tcp:// (or its alias mqtt://), ssl://
	// (aliases mqtts://, tls://), ws:// or wss://. Without a port the
	// scheme's usual one is used: 1883, 8883, 80 or 443.
	Broker string
	// ClientID is the subscriber's client id; the publisher connection uses
	// ClientID+"-pub". Keep it stable: the broker keeps the subscriber's
	// session (and its QoS 1 messages) under this id. Default:
	// "mqtt-rules-" + the host name.
	ClientID string
	// Protocol is the MQTT version to speak: "5", "3.1.1" or "auto"
	// (default, also ""): MQTT 5 when the broker accepts it, else 3.1.1.
	// With auto, a broker that answers an MQTT 5 CONNECT with
	// "unsupported protocol version" (CONNACK 0x84, or the 3.1.1 return
	// code 1) or closes the connection without a CONNACK is spoken to in
	// 3.1.1 from then on, for the life of the Client. Each connect logs
	// the version in use.
	Protocol string
	// SessionExpiry is how long the broker keeps the subscriber's session
	// (subscriptions and QoS 1 and 2 messages) after its connection ends,
	// under MQTT 5 (whole seconds, rounded up; at most 4294967294s).
	// Default (0): it never expires, as a 3.1.1 persistent session.
	// Not with CleanSession, whose session ends with the connection.
	// MQTT 3.1.1 has no session expiry: its persistent session is kept.
	SessionExpiry time.Duration
	// Username and Password are sent in CONNECT when Username is set.
	Username string
	Password string
	// CAFile is a PEM bundle of the CAs that verify the broker's
	// certificate (default: the system roots).
	CAFile string
	// CertFile and KeyFile are the client certificate and key (PEM) for
	// brokers that require one. KeyFile may be empty when CertFile holds
	// both.
	CertFile string
	KeyFile  string
	// ServerName overrides the name the broker's certificate is verified
	// against (and sent as SNI); default: the URL's host.
	ServerName string
	// ShareGroup, when set, makes every subscription a shared one,
	// $share/<ShareGroup>/<filter>, so several instances split the load.
	ShareGroup string
	// CleanSession makes the subscriber connect with a clean session: the
	// broker discards its subscriptions and queued messages when it
	// disconnects [MQTT-3.1.2-6], and a reconnect starts afresh. Default
	// false: a persistent session, which keeps QoS 1 messages while the
	// client is away.
	CleanSession bool
	// SubscribeQoS, when set, is the maximum QoS of the subscriptions: 0,
	// 1 or 2. Default (nil): 1.
	SubscribeQoS *byte
	// KeepAlive is the MQTT keep-alive interval (default 30s).
	KeepAlive time.Duration
	// ConnectTimeout bounds one connection attempt (default 10s).
	ConnectTimeout time.Duration
	// MaxReconnectInterval caps the backoff between connection attempts
	// (default 30s).
	MaxReconnectInterval time.Duration
	// PublishQueue is how many publishes may wait for the broker, e.g.
	// while it is unreachable (default 10000). Beyond that, while the
	// broker is unreachable, Publish reports actions.ErrQueueFull at once;
	// while it is connected, Publish waits for room (PublishBackpressure).
	PublishQueue int
	// PublishInFlight is how many publishes may be on their way to the
	// broker at once, awaiting their PUBACK (default 256).
	PublishInFlight int
	// PublishTimeout bounds the wait for one publish's acknowledgement
	// (default 30s).
	PublishTimeout time.Duration
	// PublishBackpressure bounds how long Publish blocks while the
	// publisher is connected and its in-flight window and queue are full
	// (default 5s): the caller (the subscriber, through the engine) slows
	// down instead of dropping. After it Publish reports
	// actions.ErrQueueFull.
	PublishBackpressure time.Duration
	// Logger receives connection events (default: discard).
	Logger *slog.Logger
	// OnMessage is called for every message the subscriber receives, one
	// at a time in the order received. It must not block: the next message
	// (and the acknowledgement of this one) waits for it to return. The
	// message is owned by the callee. Nil discards messages.
	OnMessage func(Message)
	// OnConnectionChange, when set, is called with true when the
	// subscriber connection comes up and with false when it goes down,
	// once per change, in order.
	OnConnectionChange func(connected bool)
	// OnConnectError, when set, is called with the error of every failed
	// attempt to connect the subscriber (network, TLS, or the broker's
	// refusal), before the Client tries again.
	OnConnectError func(error)
	// Will, when set, is the subscriber connection's will: the broker
	// publishes it when that connection ends without a DISCONNECT — the
	// process was killed, the network or the broker's keep-alive timer
	// gave up [MQTT-3.1.2-8]. A clean StopReceiving or Close publishes
	// it too, just before the DISCONNECT (which makes the broker discard
	// the will [MQTT-3.1.2-10]), so that it is said on every way down.
	// For a status topic: {Topic: T, Payload: "offline", QoS: 1, Retain:
	// true}, with OnlineMessage {T, "online", 1, true}.
	Will *Will
	// OnPropertiesDropped, when set, is called once per publisher
	// connection that speaks MQTT 3.1.1, at the first publish whose
	// actions.Publish.Properties it sent without them (3.1.1 has none);
	// the Client also logs it then, once per connection. It must not
	// block or call Publish.
	OnPropertiesDropped func()
	// OnlineMessage, when set, is published by the subscriber connection
	// right after each connect (before it subscribes), so that it
	// follows the will the broker may have published for the previous
	// connection. It, and the will's message on a clean disconnect, go
	// at QoS 1 when their QoS is 2 (see publishStatus).
	OnlineMessage *Will
}

// Message is one message received by the subscriber.
type Message struct {
	Topic     string
	Payload   []byte
	QoS       byte
	Retained  bool
	Duplicate bool
	// Properties are the message's MQTT 5 properties: user properties
	// in order (repeats kept), content type, response topic, correlation
	// data, the message expiry interval the broker passed on (what is
	// left of it) and the payload format indicator. nil under MQTT 3.1.1
	// and when the PUBLISH carried none of these.
	Properties *actions.Properties
}

// settings are Options checked, with defaults applied and files loaded.
type settings struct {
	Options
	url      string // normalized: tcp://, ssl://, ws://, wss:// with a port
	host     string // host:port of url
	redacted string // url without a password, for logs
	scheme   string // normalized scheme
	tls      *tls.Config
	subQoS   byte   // SubscribeQoS or its default
	proto    byte   // protoAuto, mqttwire.Version311 or mqttwire.Version5
	expiry   uint32 // the subscriber's Session Expiry Interval under MQTT 5
}

// protoAuto is settings.proto for Protocol "auto".
const protoAuto byte = 0

// neverExpires is the Session Expiry Interval of a session that does not
// expire (§3.1.2.11.2).
const neverExpires = 0xFFFFFFFF

// protocols maps the accepted Protocol values to settings.proto.
var protocols = map[string]byte{
	"": protoAuto, "auto": protoAuto,
	"5": mqttwire.Version5, "5.0": mqttwire.Version5,
	"3.1.1": mqttwire.Version311,
}

// schemes maps every accepted URL scheme to its normalized one and the
// default port.
var schemes = map[string]struct {
	scheme string
	port   string
	tls    bool
}{
	"tcp":   {"tcp", "1883", false},
	"mqtt":  {"tcp", "1883", false},
	"ssl":   {"ssl", "8883", true},
	"mqtts": {"ssl", "8883", true},
	"tls":   {"ssl", "8883", true},
	"ws":    {"ws", "80", false},
	"wss":   {"wss", "443", true},
}

const schemeHelp = "use tcp://, mqtt://, ssl://, mqtts://, tls://, ws:// or wss://"

func (o Options) settings() (*settings, error) {
	s := &settings{Options: o}
	if err := s.parseURL(); err != nil {
		return nil, err
	}
	if s.ClientID == "" {
		s.ClientID = defaultClientID()
	}
	for _, d := range []struct {
		name string
		v    *time.Duration
		def  time.Duration
	}{
		{"keep-alive", &s.KeepAlive, DefaultKeepAlive},
		{"connect timeout", &s.ConnectTimeout, DefaultConnectTimeout},
		{"max reconnect interval", &s.MaxReconnectInterval, DefaultMaxReconnectInterval},
		{"publish timeout", &s.PublishTimeout, DefaultPublishTimeout},
		{"publish backpressure", &s.PublishBackpressure, DefaultPublishBackpressure},
	} {
		if *d.v < 0 {
			return nil, fmt.Errorf("%s %v: must not be negative", d.name, *d.v)
		}
		if *d.v == 0 {
			*d.v = d.def
		}
	}
	if s.KeepAlive > 65535*time.Second {
		return nil, fmt.Errorf("keep-alive %v: at most 65535s (MQTT sends it in seconds, in 16 bits)", s.KeepAlive)
	}
	if s.PublishQueue < 0 || s.PublishInFlight < 0 {
		return nil, fmt.Errorf("publish queue %d / in-flight window %d: must not be negative", s.PublishQueue, s.PublishInFlight)
	}
	if s.PublishQueue == 0 {
		s.PublishQueue = DefaultPublishQueue
	}
	if s.PublishInFlight == 0 {
		s.PublishInFlight = DefaultPublishInFlight
	}
	if s.PublishInFlight > 65535 {
		return nil, fmt.Errorf("publish in-flight window %d: at most 65535 (MQTT packet ids)", s.PublishInFlight)
	}
	s.subQoS = 1
	if s.SubscribeQoS != nil {
		if *s.SubscribeQoS > 2 {
			return nil, fmt.Errorf("subscribe QoS %d: want 0, 1 or 2", *s.SubscribeQoS)
		}
		s.subQoS = *s.SubscribeQoS
	}
	proto, ok := protocols[strings.ToLower(strings.TrimSpace(s.Protocol))]
	if !ok {
		return nil, fmt.Errorf("protocol %q: want 5, 3.1.1 or auto", s.Protocol)
	}
	s.proto = proto
	switch {
	case s.SessionExpiry < 0:
		return nil, fmt.Errorf("session expiry %v: must not be negative", s.SessionExpiry)
	case s.SessionExpiry > 0 && s.CleanSession:
		return nil, fmt.Errorf("session expiry %v: a clean session ends with its connection (set one or the other)", s.SessionExpiry)
	case s.SessionExpiry > (neverExpires-1)*time.Second:
		return nil, fmt.Errorf("session expiry %v: at most %ds (0: never expires)", s.SessionExpiry, uint32(neverExpires-1))
	case s.SessionExpiry > 0:
		s.expiry = uint32((s.SessionExpiry + time.Second - 1) / time.Second)
	case !s.CleanSession:
		s.expiry = neverExpires
	}
	if strings.ContainsAny(s.ShareGroup, "/+#") {
		return nil, fmt.Errorf("share group %q: must not contain '/', '+' or '#'", s.ShareGroup)
	}
	if s.Will != nil {
		if err := s.Will.check("will"); err != nil {
			return nil, err
		}
	}
	if s.OnlineMessage != nil {
		if err := s.OnlineMessage.check("online message"); err != nil {
			return nil, err
		}
	}
	if s.Logger == nil {
		s.Logger = slog.New(slog.DiscardHandler)
	}
	if err := s.loadTLS(); err != nil {
		return nil, err
	}
	return s, nil
}

func (s *settings) parseURL() error {
	raw := strings.TrimSpace(s.Broker)
	if raw == "" {
		return errors.New("broker URL is empty (" + schemeHelp + ")")
	}
	if !strings.Contains(raw, "://") {
		return fmt.Errorf("broker URL %q: missing scheme (e.g. tcp://%s)", raw, raw)
	}
	u, err := url.Parse(raw)
	if err != nil {
		return fmt.Errorf("broker URL: %w", err)
	}
	sc, ok := schemes[strings.ToLower(u.Scheme)]
	if !ok {
		return fmt.Errorf("broker URL %q: unsupported scheme %q (%s)", u.Redacted(), u.Scheme, schemeHelp)
	}
	host := u.Hostname()
	if host == "" {
		return fmt.Errorf("broker URL %q: missing host", u.Redacted())
	}
	port := u.Port()
	if port == "" {
		port = sc.port
	}
	u.Scheme = sc.scheme
	u.Host = net.JoinHostPort(host, port)
	s.url, s.redacted, s.scheme, s.host = u.String(), u.Redacted(), sc.scheme, u.Host
	if !sc.tls && (s.CAFile != "" || s.CertFile != "" || s.KeyFile != "") {
		return fmt.Errorf("broker URL %q does not use TLS but a CA, certificate or key file is given (use ssl:// or wss://)", s.redacted)
	}
	return nil
}

func (s *settings) loadTLS() error {
	if s.scheme != "ssl" && s.scheme != "wss" {
		return nil
	}
	cfg := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: s.ServerName}
	if s.CAFile != "" {
		pem, err := os.ReadFile(s.CAFile)
		if err != nil {
			return fmt.Errorf("read CA file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return fmt.Errorf("CA file %s: no PEM certificate found", s.CAFile)
		}
		cfg.RootCAs = pool
	}
	switch {
	case s.CertFile != "":
		certPEM, err := os.ReadFile(s.CertFile)
		if err != nil {
			return fmt.Errorf("read certificate file: %w", err)
		}
		keyPEM, keyFile := certPEM, s.CertFile
		if s.KeyFile != "" {
			if keyPEM, err = os.ReadFile(s.KeyFile); err != nil {
				return fmt.Errorf("read key file: %w", err)
			}
			keyFile = s.KeyFile
		}
		cert, err := tls.X509KeyPair(certPEM, keyPEM)
		if err != nil {
			return fmt.Errorf("certificate file %s, key file %s: %w", s.CertFile, keyFile, err)
		}
		cfg.Certificates = []tls.Certificate{cert}
	case s.KeyFile != "":
		return fmt.Errorf("key file %s given without a certificate file", s.KeyFile)
	}
	s.tls = cfg
	return nil
}

func defaultClientID() string {
	h, err := os.Hostname()
	if err != nil || h == "" {
		return "mqtt-rules"
	}
	h = strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' || r == '.' {
			return r
		}
		return '-'
	}, h)
	return "mqtt-rules-" + h
}

// ValidFilter checks an MQTT topic filter (MQTT 3.1.1 §4.7.1): not empty,
// '#' only as the whole last level, '+' only as a whole level, no NUL.
func ValidFilter(f string) error {
	if f == "" {
		return errors.New("empty topic filter")
	}
	if strings.ContainsRune(f, 0) {
		return fmt.Errorf("topic filter %q: contains NUL", f)
	}
	levels := strings.Split(f, "/")
	for i, l := range levels {
		switch {
		case l == "#" && i != len(levels)-1:
			return fmt.Errorf("topic filter %q: '#' must be the last level", f)
		case l != "#" && l != "+" && strings.ContainsAny(l, "+#"):
			return fmt.Errorf("topic filter %q: '+' and '#' must fill a whole level", f)
		}
	}
	return nil
}
