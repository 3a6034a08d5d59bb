package actions

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
)

// Redacted replaces a secret value in headers and URL queries.
const Redacted = "[REDACTED]"

// unparsableURL stands for a URL that could not be parsed: its raw text may
// hold a secret, so it is never shown.
const unparsableURL = "[unparsable URL]"

// secretWords are the name fragments, lowercase, that mark a header or query
// parameter as secret.
var secretWords = []string{
	"token", "secret", "key", "password", "passwd", "auth", "signature", "session", "credential",
}

// secretHeaders are secret whatever secretWords say.
var secretHeaders = map[string]bool{
	"authorization":       true,
	"proxy-authorization": true,
	"cookie":              true,
	"set-cookie":          true,
}

// secretParams are query parameter names, lowercase, that are secret as
// whole names only (as fragments they would catch "signal" or "zipcode").
var secretParams = map[string]bool{
	"sig": true, "apikey": true, "api_key": true, "access_token": true, "code": true,
}

// RedactHeader returns a copy of h whose secret-looking values read
// "[REDACTED]": Authorization, Proxy-Authorization, Cookie, Set-Cookie, and
// every header whose name holds token, secret, key, password, passwd, auth,
// signature, session or credential, in any case.
func RedactHeader(h http.Header) http.Header {
	if h == nil {
		return nil
	}
	out := make(http.Header, len(h))
	for k, vs := range h {
		if !secretHeader(k) {
			out[k] = append([]string(nil), vs...)
			continue
		}
		red := make([]string, len(vs))
		for i := range red {
			red[i] = Redacted
		}
		out[k] = red
	}
	return out
}

// LooksSecret reports whether a name (of a header, a query parameter, an
// environment variable) marks its value as secret: it holds token,
// secret, key, password, passwd, auth, signature, session or credential.
func LooksSecret(name string) bool { return hasSecretWord(strings.ToLower(name)) }

func secretHeader(name string) bool {
	name = strings.ToLower(name)
	return secretHeaders[name] || hasSecretWord(name)
}

func secretParam(name string) bool {
	name = strings.ToLower(name)
	return secretParams[name] || hasSecretWord(name)
}

func hasSecretWord(lower string) bool {
	for _, w := range secretWords {
		if strings.Contains(lower, w) {
			return true
		}
	}
	return false
}

// RedactURL returns raw fit for a log line: a userinfo password reads
// "xxxxx" as in url.URL.Redacted (a user name without a password reads
// "xxxxx" too, as such a name is often a token), and the values of query
// (and fragment) parameters with secret-looking names read "[REDACTED]"
// (the words of RedactHeader, plus sig, apikey, api_key, access_token and
// code). A URL that does not parse reads "[unparsable URL]".
//
// Each of secrets (see Mask) is masked too: a Slack- or Telegram-style URL
// carries its secret in the path, where no name says so.
func RedactURL(raw string, secrets ...string) string {
	return Mask(redactURL(raw), secrets)
}

// Mask returns s with every one of secrets replaced by "[REDACTED]", also
// where it appears URL-escaped. Give the longest first, so that a secret
// containing another is masked whole.
func Mask(s string, secrets []string) string {
	for _, sec := range secrets {
		if sec == "" {
			continue
		}
		// As written, in a URL's path or query, and inside a JSON string
		// (a body or a dead letter quoting it).
		for _, form := range [...]string{sec, url.PathEscape(sec), url.QueryEscape(sec), jsonEscaped(sec)} {
			if strings.Contains(s, form) {
				s = strings.ReplaceAll(s, form, Redacted)
			}
		}
	}
	return s
}

// jsonEscaped is s as it appears between the quotes of a JSON string
// encoded by encoding/json.
func jsonEscaped(s string) string {
	b, _ := json.Marshal(s)
	return string(b[1 : len(b)-1])
}

func redactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return unparsableURL
	}
	query, hasQuery := u.RawQuery, u.RawQuery != "" || u.ForceQuery
	frag, hasFrag := u.EscapedFragment(), u.Fragment != ""
	u.RawQuery, u.ForceQuery, u.Fragment, u.RawFragment = "", false, "", ""
	if u.User != nil {
		if _, ok := u.User.Password(); ok {
			u.User = url.UserPassword(u.User.Username(), "xxxxx")
		} else if u.User.Username() != "" {
			u.User = url.User("xxxxx")
		}
	}
	var b strings.Builder
	b.WriteString(u.String())
	if hasQuery {
		b.WriteByte('?')
		b.WriteString(redactParams(query))
	}
	if hasFrag {
		b.WriteByte('#')
		b.WriteString(redactParams(frag))
	}
	return b.String()
}

// redactParams redacts the secret values of an &-separated name=value list,
// keeping its order and escaping.
func redactParams(raw string) string {
	parts := strings.Split(raw, "&")
	for i, p := range parts {
		name, _, hasValue := strings.Cut(p, "=")
		if !hasValue {
			continue
		}
		if un, err := url.QueryUnescape(name); err == nil {
			name = un
		}
		if secretParam(name) {
			parts[i] = p[:strings.IndexByte(p, '=')+1] + Redacted
		}
	}
	return strings.Join(parts, "&")
}
