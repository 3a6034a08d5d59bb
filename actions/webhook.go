package actions

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// Defaults and bounds of a webhook's keys (docs/rules.md, "Actions").
const (
	DefaultWebhookTimeout = 10 * time.Second
	DefaultWebhookRetries = 3
	MaxWebhookRetries     = 20
)

// KindWebhook calls an HTTP endpoint: `- webhook: {url, method, headers,
// body, timeout, retries}`, retried on network errors, 5xx and 429, and
// dead-lettered when it finally fails (docs/rules.md, "Actions").
var KindWebhook = register(&Kind{
	Name: "webhook",
	Keys: []string{"url", "method", "headers", "body", "timeout", "retries"},
	Synonyms: map[string]string{
		"payload": "body", "data": "body", "message": "body", "header": "headers",
		"topic": "url", "endpoint": "url", "retry": "retries",
	},
	Redact:  redactWebhookField,
	Compile: compileWebhook,
})

// redactWebhookField redacts the URL's secret parts and secret-looking
// headers (see RedactURL, RedactHeader).
func redactWebhookField(name string) func(string) string {
	if name == "url" {
		return redactURLField
	}
	if h, ok := strings.CutPrefix(name, "headers."); ok && secretHeader(h) {
		return redacted
	}
	return nil
}

func redacted(string) string { return Redacted }

// WebhookSpec is a compiled webhook action.
type WebhookSpec struct {
	URL     Template
	Method  string
	Headers []Header
	Body    Template // nil: the triggering message's payload
	Timeout time.Duration
	Retries int
}

// Header is a webhook header with a templated value.
type Header struct {
	Name  string
	Value Template
}

var (
	httpMethod = regexp.MustCompile(`^[A-Za-z]+$`)
	headerName = regexp.MustCompile("^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")
)

func compileWebhook(d *Decoder) Spec {
	spec := &WebhookSpec{Method: http.MethodPost, Timeout: DefaultWebhookTimeout, Retries: DefaultWebhookRetries}
	for _, kv := range d.Pairs() {
		switch kv.Key.Value {
		case "url":
			spec.URL = d.Template(kv.Value, "url")
			if spec.URL != nil && spec.URL.IsLiteral() {
				if err := CheckURL(spec.URL.Source()); err != nil {
					d.KeyErrorf(kv.Value, "url", "%v", err)
				}
			}
		case "method":
			if s, ok := d.Str(kv.Value, "method"); ok {
				if !httpMethod.MatchString(s) {
					d.KeyErrorf(kv.Value, "method", "%q is not an HTTP method", s)
				}
				spec.Method = strings.ToUpper(s)
			}
		case "headers":
			hs, ok := d.Mapping(kv.Value, "headers", "header names to values")
			if !ok {
				continue
			}
			for _, h := range hs {
				if !headerName.MatchString(h.Key.Value) {
					d.KeyErrorf(h.Key, "headers", "%q is not a header name", h.Key.Value)
					continue
				}
				if t := d.Template(h.Value, "headers."+h.Key.Value); t != nil {
					spec.Headers = append(spec.Headers, Header{Name: h.Key.Value, Value: t})
				}
			}
		case "body":
			spec.Body = d.Template(kv.Value, "body")
		case "timeout":
			spec.Timeout, _ = d.Duration(kv.Value, "timeout")
		case "retries":
			spec.Retries, _ = d.Int(kv.Value, "retries", 0, MaxWebhookRetries)
		}
	}
	if spec.URL == nil {
		d.Missing("url", "")
	}
	if d.Failed() {
		return nil
	}
	return spec
}

// CheckURL checks a webhook URL: absolute http or https with a host.
func CheckURL(s string) error {
	u, err := url.Parse(s)
	if err != nil {
		return errors.New("not a URL: write it as http://host/path or https://host/path")
	}
	if u.Scheme == "" {
		return errors.New("not a URL: it has no scheme; write http://… or https://…")
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return fmt.Errorf("scheme %q: want http or https", u.Scheme)
	}
	if u.Host == "" {
		return errors.New("no host")
	}
	return nil
}

// Templates implements Spec.
func (s *WebhookSpec) Templates() []Template {
	out := []Template{s.URL}
	if s.Body != nil {
		out = append(out, s.Body)
	}
	for _, h := range s.Headers {
		out = append(out, h.Value)
	}
	return out
}

// Render implements Spec.
func (s *WebhookSpec) Render(r Renderer, payload []byte) (Action, error) {
	u, err := r.Render(s.URL)
	if err != nil {
		return nil, fmt.Errorf("url: %w", err)
	}
	if !s.URL.IsLiteral() {
		if err := CheckURL(u); err != nil {
			return nil, fmt.Errorf("rendered url: %w", err)
		}
	}
	h := make(http.Header, len(s.Headers))
	for _, hd := range s.Headers {
		v, err := r.Render(hd.Value)
		if err != nil {
			return nil, fmt.Errorf("header %s: %w", hd.Name, err)
		}
		h.Add(hd.Name, v)
	}
	body := payload
	if s.Body != nil {
		if body, err = r.Append(nil, s.Body); err != nil {
			return nil, fmt.Errorf("body: %w", err)
		}
	}
	return &Webhook{Method: s.Method, URL: u, Header: h, Body: body, Timeout: s.Timeout, Retries: s.Retries}, nil
}

// Describe implements Spec.
func (s *WebhookSpec) Describe() []Field {
	out := []Field{
		{Name: "method", Value: s.Method, Bare: true},
		{Name: "url", Value: s.URL.Source(), Bare: true, Redact: redactURLField},
	}
	for _, h := range s.Headers {
		out = append(out, headerField(h.Name, h.Value.Source()))
	}
	out = append(out,
		Field{Name: "timeout", Value: FormatDuration(s.Timeout), Quiet: true},
		Field{Name: "retries", Value: strconv.Itoa(s.Retries), Quiet: true})
	body := Field{Name: "body", Text: true, Note: "the message's payload"}
	if s.Body != nil {
		body.Value, body.Note = s.Body.Source(), ""
	}
	return append(out, body)
}

func redactURLField(s string) string { return RedactURL(s) }

// headerField shows a header, its value redacted when its name looks
// secret (see RedactHeader).
func headerField(name, value string) Field {
	return Field{Name: "headers." + name, Value: value, Redact: redactWebhookField("headers." + name)}
}

// Webhook is a rendered HTTP request.
type Webhook struct {
	Method  string
	URL     string
	Header  http.Header
	Body    []byte
	Timeout time.Duration // per attempt
	Retries int           // extra attempts after the first, on network errors, 5xx and 429
}

// Fields implements Action.
func (w *Webhook) Fields() []Field {
	out := []Field{
		{Name: "method", Value: method(w), Bare: true, Fold: true},
		{Name: "url", Value: w.URL, Bare: true, Redact: redactURLField},
	}
	names := make([]string, 0, len(w.Header))
	for k := range w.Header {
		names = append(names, k)
	}
	slices.Sort(names)
	for _, k := range names {
		out = append(out, headerField(k, strings.Join(w.Header[k], ", ")))
	}
	return append(out,
		Field{Name: "timeout", Value: FormatDuration(w.Timeout), Quiet: true},
		Field{Name: "retries", Value: strconv.Itoa(w.Retries), Quiet: true},
		Field{Name: "body", Value: string(w.Body), Text: true})
}

func method(w *Webhook) string {
	if w.Method == "" {
		return http.MethodPost
	}
	return w.Method
}

func (w *Webhook) run(x *Executor, req *Request, once *reportOnce) { x.enqueue(req, w, once) }

func (w *Webhook) destination(secrets []string) (string, error) {
	u, err := url.Parse(w.URL)
	if err != nil {
		return "", fmt.Errorf("invalid webhook URL %s", unparsableURL)
	}
	scheme := strings.ToLower(u.Scheme)
	if scheme != "http" && scheme != "https" {
		return "", fmt.Errorf("webhook URL %s: scheme must be http or https", RedactURL(w.URL, secrets...))
	}
	if u.Host == "" {
		return "", fmt.Errorf("webhook URL %s: no host", RedactURL(w.URL, secrets...))
	}
	return scheme + "://" + strings.ToLower(u.Host), nil
}

func (w *Webhook) target(secrets []string) (string, string) {
	u := RedactURL(w.URL, secrets...)
	return method(w) + " " + u, u
}

func (w *Webhook) policy() (time.Duration, int) { return w.Timeout, w.Retries }

// attempt makes one HTTP exchange.
func (w *Webhook) attempt(ctx context.Context, x *Executor) attemptResult {
	req, err := http.NewRequestWithContext(ctx, method(w), w.URL, bytes.NewReader(w.Body))
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) { // its text holds the URL, which may hold a secret
			err = errors.New("invalid URL")
		}
		return attemptResult{err: fmt.Errorf("building request: %w", err), retryAfter: -1}
	}
	req.Header = w.header(x.ua)
	resp, err := x.client.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) { // drop the URL from the text: it is logged redacted
			err = ue.Err
		}
		return attemptResult{err: err, retry: true, retryAfter: -1}
	}
	drain(resp.Body)
	return statusResult(resp)
}

// header returns the request headers: w's, canonicalised, plus User-Agent
// and Content-Type when w does not set them.
func (w *Webhook) header(ua string) http.Header {
	h := make(http.Header, len(w.Header)+2)
	for k, vs := range w.Header {
		for _, v := range vs {
			h.Add(k, v)
		}
	}
	if _, ok := h["User-Agent"]; !ok {
		h.Set("User-Agent", ua)
	}
	if _, ok := h["Content-Type"]; !ok && len(w.Body) > 0 {
		if json.Valid(w.Body) {
			h.Set("Content-Type", "application/json")
		} else {
			h.Set("Content-Type", "text/plain; charset=utf-8")
		}
	}
	return h
}

func (w *Webhook) letter(secrets []string) any {
	type request struct {
		Method     string      `json:"method"`
		URL        string      `json:"url"`
		Headers    http.Header `json:"headers,omitempty"`
		Body       string      `json:"body,omitempty"`
		BodyBase64 []byte      `json:"body_base64,omitempty"`
	}
	out := request{Method: method(w), URL: RedactURL(w.URL, secrets...), Headers: RedactHeader(w.Header)}
	for _, vs := range out.Headers {
		for i := range vs {
			vs[i] = Mask(vs[i], secrets)
		}
	}
	if utf8.Valid(w.Body) {
		out.Body = Mask(string(w.Body), secrets)
	} else {
		out.BodyBase64 = w.Body
	}
	return out
}
