package httpapi

import (
	"errors"
	"io"
	"net/http"
	"strconv"
	"strings"

	"github.com/mqtt-rules/mqtt-rules/engine"
	"github.com/mqtt-rules/mqtt-rules/internal/control"
)

// Control carries out the control endpoints' actions (docs/homeassistant.md,
// "HTTP"): internal/control's Controller.
type Control interface {
	// Do carries out, logs and counts one action.
	Do(control.Request) (control.Result, error)
	// Counts returns mqtt_rules_control_total.
	Counts() []control.Count
}

// Enabler is a Status that knows whether each rule runs now: its file's
// enabled, or a control's override. Without it /api/rules shows the
// files' enabled.
type Enabler interface {
	// Enabled reports whether a rule of the active set runs, and whether
	// its file (engine.ByFile) or a control (engine.ByControl) decided.
	Enabled(rule string) (enabled bool, by string, ok bool)
}

// CSRFHeader must be sent, with the value CSRFValue, by a control request
// authorised by the session cookie: a page's script can set it, a form
// another site makes the browser post cannot (and a cross-site script
// setting it would need a CORS preflight, which is never granted). A
// request with the bearer token needs none.
const (
	CSRFHeader = "X-Requested-By"
	CSRFValue  = "mqtt-rules"
)

// crossOrigin refuses unsafe requests that a browser says come from
// another origin (Sec-Fetch-Site, Origin).
var crossOrigin = http.NewCrossOriginProtection()

// registerControl adds POST /api/rules/{name}/enable, /disable, /ack
// (?key=) and /run (the body is the payload).
func (s *Server) registerControl() {
	for _, a := range []string{control.ActionEnable, control.ActionDisable, control.ActionAck, control.ActionRun} {
		s.mux.HandleFunc("POST /api/rules/{name}/"+a, func(w http.ResponseWriter, r *http.Request) { s.control(w, r, a) })
	}
}

// control serves a control endpoint: only with --http-token (403
// otherwise), only from this origin, and with the CSRF header when the
// session cookie authorised it.
func (s *Server) control(w http.ResponseWriter, r *http.Request, action string) {
	switch {
	case !s.hasAuth:
		http.Error(w, "forbidden: control needs --http-token (without it the API is read-only)", http.StatusForbidden)
		return
	case s.opts.Control == nil:
		http.Error(w, "forbidden: control is not available", http.StatusForbidden)
		return
	}
	if err := crossOrigin.Check(r); err != nil {
		s.log.Warn("http: cross-origin control request refused", "path", r.URL.Path, "origin", r.Header.Get("Origin"), "remote", r.RemoteAddr)
		http.Error(w, "forbidden: a cross-origin request", http.StatusForbidden)
		return
	}
	if !bearer(r) && r.Header.Get(CSRFHeader) != CSRFValue {
		s.log.Warn("http: control request without "+CSRFHeader+" refused", "path", r.URL.Path, "remote", r.RemoteAddr)
		http.Error(w, "forbidden: a request signed in by the session cookie needs the header "+CSRFHeader+": "+CSRFValue, http.StatusForbidden)
		return
	}
	req := control.Request{Rule: r.PathValue("name"), Action: action, Origin: control.OriginHTTP}
	switch action {
	case control.ActionAck:
		req.Key = r.URL.Query().Get("key")
	case control.ActionRun:
		// One byte more than allowed, so that Do refuses (and counts) a
		// body too large.
		body, err := io.ReadAll(io.LimitReader(r.Body, control.MaxPayload+1))
		if err != nil {
			http.Error(w, "reading the body: "+err.Error(), http.StatusBadRequest)
			return
		}
		req.Payload = body
	}
	res, err := s.opts.Control.Do(req)
	switch {
	case err == nil:
		writeJSON(w, res)
	case errors.Is(err, engine.ErrNoRule):
		http.Error(w, "no rule "+strconv.Quote(req.Rule)+" in the loaded set", http.StatusNotFound)
	case errors.Is(err, engine.ErrDisabled):
		http.Error(w, err.Error(), http.StatusConflict)
	case errors.Is(err, control.ErrTooLarge):
		http.Error(w, err.Error(), http.StatusRequestEntityTooLarge)
	case errors.Is(err, control.ErrInvalid):
		http.Error(w, err.Error(), http.StatusBadRequest)
	default:
		http.Error(w, action+" failed: "+err.Error(), http.StatusInternalServerError)
	}
}

// bearer reports whether r carries the Authorization header (which
// ServeHTTP checked): it was not authorised by the cookie.
func bearer(r *http.Request) bool {
	scheme, _, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	return ok && strings.EqualFold(scheme, "Bearer")
}

// enabled returns a rule's effective enabled and who decided it.
func enabled(st Status, name string, file bool) (bool, string) {
	if e, ok := st.(Enabler); ok {
		if on, by, ok := e.Enabled(name); ok {
			return on, by
		}
	}
	return file, engine.ByFile
}
