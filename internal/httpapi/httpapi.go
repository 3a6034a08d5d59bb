// Package httpapi serves the engine's HTTP endpoints (docs/operations.md,
// HTTP endpoints and Metrics): Prometheus metrics, liveness and readiness
// probes, and the JSON API a status page reads. Everything it shows comes
// from a Status at request time, so it needs no hooks in the engine; it
// changes nothing but through the control endpoints (control.go,
// docs/homeassistant.md), which need the token.
package httpapi

import (
	"crypto/sha256"
	"crypto/subtle"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/mqtt-rules/mqtt-rules/actions"
	"github.com/mqtt-rules/mqtt-rules/engine"
	"github.com/mqtt-rules/mqtt-rules/rules"
	"net"
	"net/netip"
	"strconv"
)

// Status is what the endpoints read. internal/app implements it. Its
// methods are called concurrently, from request goroutines, and must not
// block.
type Status interface {
	// Rules returns the active rule set, or nil before the first load.
	Rules() *rules.RuleSet
	// Counters returns the engine's counters.
	Counters() *engine.Counters
	// Brokers returns every broker connection, the default one first
	// (docs/brokers.md).
	Brokers() []BrokerState
	// LastReload returns how the last load of the rules went.
	LastReload() Reload
	// Trace returns the last evaluations of a rule, oldest first.
	Trace(rule string) []engine.Evaluation
	// Keys returns the keys of a stateful rule that are pending, firing,
	// in cooldown or awaiting an absence (at most limit, 0: all), most
	// recently seen first, and how many keys the rule tracks in all.
	Keys(rule string, limit int) (keys []engine.KeyState, tracked int)
}

// BrokerState is one broker connection as the endpoints show it.
type BrokerState struct {
	Name      string `json:"name"` // "default" for --broker's, else its name in the config's brokers:
	URL       string `json:"url"`  // without credentials
	Connected bool   `json:"connected"`
	Ready     bool   `json:"ready"` // connected and subscribed to every filter of the loaded set
	// Protocol is the MQTT version spoken: "5" or "3.1.1"; "" before the
	// first connection (docs/mqtt5.md).
	Protocol string `json:"protocol"`
}

// Reload describes the last load of the rules.
type Reload struct {
	At    time.Time     // when it started; zero before the first load
	Took  time.Duration // how long it took
	Err   error         // nil when the set loaded; rules.Errors for a rejected set
	Rules int           // rules in the active set afterwards
	// Reload is false for the load at start, true for a hot reload.
	Reload bool
}

// Options configure the handler.
type Options struct {
	// Token, when not empty, is required as `Authorization: Bearer TOKEN`
	// on every endpoint but /healthz and /readyz (--http-token).
	Token string
	// LocalOnly, set when the server listens on a loopback address (the
	// default 127.0.0.1:9464), makes it answer without a token only
	// requests whose Host names this machine (an IP literal, localhost or
	// *.localhost): a web page whose host name an attacker re-points at
	// 127.0.0.1 (DNS rebinding) comes with its own name and gets 403.
	LocalOnly bool
	// Logger receives the handler's own problems; nil discards them.
	Logger *slog.Logger
	// Version is the build's version, shown by /api/status and
	// mqtt_rules_build_info.
	Version string
	// Control carries out the control endpoints' actions (POST
	// /api/rules/{name}/enable, …), which need Token; nil: they answer
	// 403.
	Control Control
}

// Server is the handler of the HTTP endpoints: a mux with the built-in
// routes, to which more can be added with Handle.
type Server struct {
	status  Status
	opts    Options
	log     *slog.Logger
	mux     *http.ServeMux
	token   [sha256.Size]byte // hash of Options.Token, when set
	cookie  string            // the value of TokenCookie that stands for the token
	hasAuth bool
}

var _ http.Handler = (*Server)(nil)

// openPaths are served without the token: probes must work for an
// orchestrator that does not know it.
var openPaths = map[string]bool{"/healthz": true, "/readyz": true}

// NewHandler returns the handler serving /metrics, /healthz, /readyz,
// /api/rules and /api/status for s, and the control endpoints. Routes added later with Handle (such as
// the status page on "/") are behind the same token.
func NewHandler(s Status, opts Options) *Server {
	srv := &Server{status: s, opts: opts, log: opts.Logger, mux: http.NewServeMux()}
	if srv.log == nil {
		srv.log = slog.New(slog.DiscardHandler)
	}
	if opts.Token != "" {
		srv.token = sha256.Sum256([]byte(opts.Token))
		srv.cookie = cookieValue(opts.Token)
		srv.hasAuth = true
	}
	srv.mux.Handle("GET /metrics", newMetricsHandler(s, opts.Version, opts.Control, srv.log))
	srv.mux.HandleFunc("GET /healthz", srv.healthz)
	srv.mux.HandleFunc("GET /readyz", srv.readyz)
	srv.mux.HandleFunc("GET /api/rules", srv.apiRules)
	srv.mux.HandleFunc("GET /api/status", srv.apiStatus)
	srv.mux.HandleFunc("GET /api/rules/{name}/trace", srv.apiTrace)
	srv.mux.HandleFunc("GET /api/rules/{name}", srv.apiRule)
	srv.mux.HandleFunc("GET /api/rules/{name}/keys", srv.apiKeys)
	srv.registerControl()
	return srv
}

// Handle registers h for pattern (http.ServeMux syntax, e.g. "GET /{$}").
// It panics, as http.ServeMux does, when the pattern conflicts with one
// already registered.
func (s *Server) Handle(pattern string, h http.Handler) { s.mux.Handle(pattern, h) }

// HandleFunc registers f for pattern, like Handle.
func (s *Server) HandleFunc(pattern string, f http.HandlerFunc) { s.mux.HandleFunc(pattern, f) }

// ServeHTTP checks the token, when one is set, and dispatches the request.
// Besides the Authorization header, a browser may present the token as
// the TokenCookie that `GET /?token=TOKEN` sets (see tokenLogin): a page
// cannot set headers on an EventSource, but its cookies go along.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if s.opts.LocalOnly && !s.hasAuth && !openPaths[r.URL.Path] && !localHost(r.Host) {
		http.Error(w, "forbidden: the Host "+strconv.Quote(r.Host)+" does not name this machine (a server on localhost without --http-token answers only localhost and IP addresses)", http.StatusForbidden)
		return
	}
	if s.hasAuth && !openPaths[r.URL.Path] {
		if r.URL.Path == "/" && r.URL.Query().Has(TokenParam) {
			s.tokenLogin(w, r)
			return
		}
		if !s.authorized(r) {
			s.unauthorized(w, r, false)
			return
		}
	}
	s.mux.ServeHTTP(w, r)
}

// authorized reports whether r carries the bearer token or the cookie
// that stands for it. Both are compared in constant time, the token as a
// hash, so neither its content nor its length leaks through timing.
func (s *Server) authorized(r *http.Request) bool {
	if scheme, cred, ok := strings.Cut(r.Header.Get("Authorization"), " "); ok && strings.EqualFold(scheme, "Bearer") {
		return s.tokenMatches(strings.TrimSpace(cred))
	}
	if c, err := r.Cookie(TokenCookie); err == nil {
		return subtle.ConstantTimeCompare([]byte(c.Value), []byte(s.cookie)) == 1
	}
	return false
}

func (s *Server) tokenMatches(token string) bool {
	got := sha256.Sum256([]byte(token))
	return subtle.ConstantTimeCompare(got[:], s.token[:]) == 1
}

func (s *Server) unauthorized(w http.ResponseWriter, r *http.Request, wrong bool) {
	w.Header().Set("WWW-Authenticate", `Bearer realm="mqtt-rules"`)
	s.log.Debug("http: unauthorized request", "path", r.URL.Path, "remote", r.RemoteAddr)
	if r.URL.Path == "/" && strings.Contains(r.Header.Get("Accept"), "text/html") {
		loginPage(w, wrong)
		return
	}
	http.Error(w, "unauthorized: this endpoint needs the header Authorization: Bearer <--http-token>", http.StatusUnauthorized)
}

func (s *Server) healthz(w http.ResponseWriter, r *http.Request) {
	plain(w, http.StatusOK, "ok")
}

func (s *Server) readyz(w http.ResponseWriter, r *http.Request) {
	if reason := notReady(s.status); reason != "" {
		plain(w, http.StatusServiceUnavailable, reason)
		return
	}
	plain(w, http.StatusOK, "ready")
}

// notReady returns why the engine is not ready, or "" when it is: with
// several brokers, which of them is not (docs/brokers.md).
func notReady(st Status) string {
	if st.Rules() == nil {
		return "no rules loaded"
	}
	bs := st.Brokers()
	var why []string
	for _, b := range bs {
		on := ""
		if len(bs) > 1 {
			on = " " + b.Name + " (" + b.URL + ")"
		}
		switch {
		case !b.Connected:
			why = append(why, "not connected to the broker"+on)
		case !b.Ready:
			why = append(why, "not yet subscribed to every filter"+strings.Replace(on, " ", " on broker ", 1))
		}
	}
	return strings.Join(why, "; ")
}

// BrokerSummary returns the brokers as the endpoints show them (URLs
// redacted: they should hold no credentials; make sure), the default
// broker's URL, and whether every connection is up.
func BrokerSummary(st Status) (brokers []BrokerState, defaultURL string, connected bool) {
	brokers = st.Brokers()
	connected = len(brokers) > 0
	for i := range brokers {
		brokers[i].URL = actions.RedactURL(brokers[i].URL)
		connected = connected && brokers[i].Connected
	}
	if len(brokers) > 0 {
		defaultURL = brokers[0].URL
	}
	return brokers, defaultURL, connected
}

// plain writes a one-line text/plain answer.
func plain(w http.ResponseWriter, code int, line string) {
	h := w.Header()
	h.Set("Content-Type", "text/plain; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	_, _ = w.Write([]byte(line + "\n"))
}

// localHost reports whether host (a Host header) names this machine by an
// IP literal, localhost or a *.localhost name.
func localHost(host string) bool {
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	host = strings.TrimSuffix(strings.TrimPrefix(strings.TrimSuffix(host, "]"), "["), ".")
	if _, err := netip.ParseAddr(host); err == nil {
		return true
	}
	host = strings.ToLower(host)
	return host == "localhost" || strings.HasSuffix(host, ".localhost")
}

// IsLoopback reports whether the listen address addr (host:port) is on a
// loopback interface only: 127.0.0.0/8, ::1 or localhost.
func IsLoopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.IsLoopback()
}
