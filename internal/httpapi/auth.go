package httpapi

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"net/url"
	"strings"
)

// TokenParam is the query parameter of `GET /?token=TOKEN`, the way a
// browser signs in to the status page when --http-token is set.
const TokenParam = "token"

// TokenCookie is the cookie that `GET /?token=TOKEN` sets. It stands for the
// token on every endpoint, so the page's fetches and its EventSource, which
// cannot carry an Authorization header, are let in. Its value is derived
// from the token (an HMAC), not the token itself, and it is HttpOnly and
// SameSite=Lax: scripts cannot read it and other sites cannot use it.
const TokenCookie = "mqtt_rules_session"

// cookieValue is the value of TokenCookie for a token.
func cookieValue(token string) string {
	m := hmac.New(sha256.New, []byte(token))
	m.Write([]byte("mqtt-rules status page session v1"))
	return hex.EncodeToString(m.Sum(nil))
}

// tokenLogin answers `GET /?token=TOKEN`: with the right token it sets
// TokenCookie and redirects to the same URL without the token, so the token
// stays neither in the address bar nor in the page's history entry; with a
// wrong one it answers 401.
func (s *Server) tokenLogin(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		s.unauthorized(w, r, false)
		return
	}
	q := r.URL.Query()
	if !s.tokenMatches(strings.TrimSpace(q.Get(TokenParam))) {
		s.log.Debug("http: wrong token in the query", "path", r.URL.Path, "remote", r.RemoteAddr)
		s.unauthorized(w, r, true)
		return
	}
	http.SetCookie(w, &http.Cookie{
		Name:     TokenCookie,
		Value:    s.cookie,
		Path:     "/",
		HttpOnly: true,
		SameSite: http.SameSiteLaxMode,
		Secure:   r.TLS != nil || strings.EqualFold(r.Header.Get("X-Forwarded-Proto"), "https"),
	})
	q.Del(TokenParam)
	to := url.URL{Path: r.URL.Path, RawQuery: q.Encode()}
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Referrer-Policy", "no-referrer")
	http.Redirect(w, r, to.String(), http.StatusSeeOther)
}

// loginPage answers 401 to a browser opening the status page without the
// token: a form that asks for it (sent as ?token=, see tokenLogin).
func loginPage(w http.ResponseWriter, wrong bool) {
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'")
	w.WriteHeader(http.StatusUnauthorized)
	msg := "This mqtt-rules needs its <code>--http-token</code>."
	if wrong {
		msg = "That token is not the one this mqtt-rules was started with."
	}
	_, _ = w.Write([]byte(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>mqtt-rules: sign in</title>
<style>
:root{color-scheme:light dark;font-family:system-ui,sans-serif}
body{max-width:26rem;margin:15vh auto;padding:0 1.25rem;line-height:1.5}
input,button{font:inherit;padding:.5rem .75rem;border-radius:.4rem;border:1px solid #8888}
input{width:100%;box-sizing:border-box;margin:.5rem 0 .75rem}
code{font-size:.9em}
</style></head><body>
<h1>mqtt-rules</h1>
<p>` + msg + `</p>
<form method="get" action="/">
<label for="token">Token</label>
<input id="token" name="token" type="password" autocomplete="current-password" required autofocus>
<button type="submit">Open the status page</button>
</form>
<p><small>Scripts pass it as the header <code>Authorization: Bearer TOKEN</code>.</small></p>
</body></html>
`))
}
