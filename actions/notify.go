package actions

import (
	"bytes"
	"container/list"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"html"
	"io"
	"mime"
	"net/http"
	"net/textproto"
	"net/url"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nicholas-fedor/shoutrrr/pkg/services/chat/discord"
	"github.com/nicholas-fedor/shoutrrr/pkg/services/chat/matrix"
	"github.com/nicholas-fedor/shoutrrr/pkg/services/chat/slack"
	"github.com/nicholas-fedor/shoutrrr/pkg/services/chat/teams"
	"github.com/nicholas-fedor/shoutrrr/pkg/services/chat/telegram"
	"github.com/nicholas-fedor/shoutrrr/pkg/services/email/smtp"
	"github.com/nicholas-fedor/shoutrrr/pkg/services/push/gotify"
	"github.com/nicholas-fedor/shoutrrr/pkg/services/push/ntfy"
	"github.com/nicholas-fedor/shoutrrr/pkg/services/push/pushover"
	"github.com/nicholas-fedor/shoutrrr/pkg/services/specialized/generic"
	"github.com/nicholas-fedor/shoutrrr/pkg/types"
	"github.com/nicholas-fedor/shoutrrr/pkg/util/jsonclient"

	"github.com/mqtt-rules/mqtt-rules/internal/yamlnode"
)

// KindNotify sends a notification through a service addressed by a
// service URL (ntfy://host/topic, telegram://TOKEN@telegram?chats=ID,
// smtp://user:pass@host:587/?from=…&to=…): `- notify: {url, title,
// message, timeout, retries}`. shoutrrr's code of each service parses its
// URL and builds its payload; each send ends with its attempt (see
// notifyEntry.send); the executor queues, retries and dead-letters
// notifications like webhooks (docs/rules.md, "notify").
var KindNotify = register(&Kind{
	Name: "notify",
	Keys: []string{"url", "title", "message", "timeout", "retries"},
	Synonyms: map[string]string{
		"body": "message", "text": "message", "payload": "message", "msg": "message", "content": "message",
		"subject": "title", "topic": "url", "service": "url", "endpoint": "url", "to": "url", "retry": "retries",
	},
	Redact:  redactNotifyField,
	Compile: compileNotify,
})

func redactNotifyField(name string) func(string) string {
	if name == "url" {
		return RedactServiceURL
	}
	return nil
}

// notifyService is a notification service that notify supports: a
// service of shoutrrr whose secrets we know where to find.
type notifyService struct {
	new func() types.Service
	// secretHost marks a service whose URL host is a credential
	// (pushover://shoutrrr:TOKEN@USERKEY/), shown redacted; apiHost
	// stands for it in queue names.
	secretHost bool
	apiHost    string
	// check parses a URL without network I/O, for a service whose
	// Initialize does some (matrix logs in); nil: Initialize.
	check func(u *url.URL) error
}

// notifyServices are the supported services by scheme (docs/rules.md,
// "notify"). A scheme may carry a "+" suffix where the service takes one
// (generic+https://host/path, teams+https://…).
var notifyServices = map[string]notifyService{
	"discord":  {new: func() types.Service { return &discord.Service{} }},
	"generic":  {new: func() types.Service { return &generic.Service{} }},
	"gotify":   {new: func() types.Service { return &gotify.Service{} }},
	"matrix":   {new: func() types.Service { return &matrix.Service{} }, check: func(u *url.URL) error { return (&matrix.Config{}).SetURL(u) }},
	"ntfy":     {new: func() types.Service { return &ntfy.Service{} }},
	"pushover": {new: func() types.Service { return &pushover.Service{} }, secretHost: true, apiHost: "api.pushover.net"},
	"slack":    {new: func() types.Service { return &slack.Service{} }},
	"smtp":     {new: func() types.Service { return &smtp.Service{} }},
	"teams":    {new: func() types.Service { return &teams.Service{} }},
	"telegram": {new: func() types.Service { return &telegram.Service{} }},
}

// NotifySchemes returns the schemes of the supported services, sorted.
func NotifySchemes() []string {
	out := make([]string, 0, len(notifyServices))
	for s := range notifyServices {
		out = append(out, s)
	}
	slices.Sort(out)
	return out
}

// safeQueryKeys are the query parameters of service URLs, lowercase, whose
// values are shown: options, not addresses or credentials. Every other
// value reads "[REDACTED]".
var safeQueryKeys = map[string]bool{
	"title": true, "subject": true, "priority": true, "tags": true, "scheme": true,
	"disabletls": true, "disabletlsverification": true, "insecureskipverify": true, "skiptlsverify": true,
	"cache": true, "firebase": true, "template": true, "contenttype": true, "method": true,
	"titlekey": true, "messagekey": true, "color": true, "splitlines": true, "json": true,
	"preview": true, "notification": true, "parsemode": true, "usehtml": true,
	"starttls": true, "usestarttls": true, "requirestarttls": true, "encryption": true, "auth": true,
	"timeout": true, "useheader": true,
}

// NotifySpec is a compiled notify action.
type NotifySpec struct {
	URL     Template
	Title   Template // nil: the URL's title, or the service's default
	Message Template // nil: the triggering message's payload
	Timeout time.Duration
	Retries int
}

func compileNotify(d *Decoder) Spec {
	spec := &NotifySpec{Timeout: DefaultWebhookTimeout, Retries: DefaultWebhookRetries}
	for _, kv := range d.Pairs() {
		switch kv.Key.Value {
		case "url":
			spec.URL = d.Template(kv.Value, "url")
			if spec.URL != nil && spec.URL.IsLiteral() {
				if err := CheckServiceURL(spec.URL.Source()); err != nil {
					d.KeyErrorf(kv.Value, "url", "%v", err)
				}
			}
		case "title":
			spec.Title = d.Template(kv.Value, "title")
		case "message":
			spec.Message = d.Template(kv.Value, "message")
		case "timeout":
			spec.Timeout, _ = d.Duration(kv.Value, "timeout")
		case "retries":
			spec.Retries, _ = d.Int(kv.Value, "retries", 0, MaxWebhookRetries)
		}
	}
	if spec.URL == nil {
		d.Missing("url", "a service URL such as ntfy://ntfy.sh/TOPIC")
	}
	if d.Failed() {
		return nil
	}
	return spec
}

// CheckServiceURL checks a notify URL as the service's own parser reads
// it, without network I/O. Its error names no secret part of the URL.
func CheckServiceURL(raw string) error {
	_, err := newService(raw, true)
	return err
}

// newService parses raw into an initialized service; with check set it
// only checks raw, without network I/O, and returns no service. Its
// errors hold no secret part of raw; they wrap the service's error.
func newService(raw string, check bool) (types.Service, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return nil, errors.New("not a service URL: write it as SERVICE://…, e.g. ntfy://ntfy.sh/TOPIC")
	}
	schemes := strings.Join(NotifySchemes(), ", ")
	if u.Scheme == "" {
		return nil, fmt.Errorf("not a service URL: it has no scheme; write SERVICE://… (supported: %s)", schemes)
	}
	name, _, custom := strings.Cut(strings.ToLower(u.Scheme), "+")
	s, ok := notifyServices[name]
	if !ok {
		hint := ""
		if name == "http" || name == "https" {
			hint = "for an HTTP endpoint write a webhook action, or generic+" + name + "://…; "
		} else if h := yamlnode.Suggest(name, NotifySchemes()); h != "" {
			hint = strings.TrimSuffix(strings.TrimPrefix(h, " ("), ")") + "; " // did you mean "ntfy"?
		}
		return nil, fmt.Errorf("unknown service %q (%ssupported: %s)", name, hint, schemes)
	}
	svc := s.new()
	if custom {
		c, ok := svc.(types.CustomURLService)
		if !ok {
			return nil, fmt.Errorf("%s URL: %s takes no %s+… scheme; write %s://…", name, name, name, name)
		}
		if u, err = c.GetConfigURLFromCustom(u); err != nil {
			return nil, &maskedError{name + " URL: " + maskServiceText(err.Error(), raw), err}
		}
	}
	if check && s.check != nil {
		err = s.check(u)
	} else {
		err = svc.Initialize(u, nil) // nil: shoutrrr's own logging is discarded, it may quote secrets
	}
	if err != nil {
		return nil, &maskedError{name + " URL: " + maskServiceText(err.Error(), raw), err}
	}
	if check {
		return nil, nil
	}
	return svc, nil
}

// maskedError shows an error of a service with the secret parts of its URL
// masked, and wraps it, for classifying.
type maskedError struct {
	msg string
	err error
}

func (e *maskedError) Error() string { return e.msg }
func (e *maskedError) Unwrap() error { return e.err }

// notifyTransports hold the connections of notify's HTTP requests, by
// whether TLS certificates are verified: one pool for every service whose
// requests we make or whose client we set (see bindClients), with proxies
// from the environment (ntfy's own transport, made per service, takes
// none).
var notifyTransports = [2]func() *http.Transport{
	sync.OnceValue(func() *http.Transport { return notifyHTTPTransport(false) }),
	sync.OnceValue(func() *http.Transport { return notifyHTTPTransport(true) }),
}

func notifyHTTPTransport(insecure bool) *http.Transport {
	t := defaultClient(DefaultWebhookConcurrency).Transport.(*http.Transport)
	if insecure {
		t.TLSClientConfig = &tls.Config{InsecureSkipVerify: true} //nolint:gosec // the URL asks for it: disabletlsverification=yes
	}
	return t
}

// testTransport, when set, carries every request of notifyTransport
// (tests point services with fixed hosts, as Teams and Slack, at local
// servers with it).
var testTransport atomic.Pointer[http.Transport]

// notifyTransport returns the transport of notify's requests.
func notifyTransport(insecure bool) *http.Transport {
	if t := testTransport.Load(); t != nil {
		return t
	}
	if insecure {
		return notifyTransports[1]()
	}
	return notifyTransports[0]()
}

// notifyClient returns a client of notify's transport. It has no timeout
// of its own: every request is bound to its attempt's context.
func notifyClient(insecure bool) *http.Client {
	return &http.Client{Transport: notifyTransport(insecure)}
}

// closeNotifyIdle closes the idle connections of notify's transports and
// of every service kept that is not sending; connections in use are left
// alone. An Executor's Close calls it: services and transports are shared
// by the process, so other executors only lose idle connections.
func closeNotifyIdle() {
	for _, t := range notifyTransports {
		t().CloseIdleConnections()
	}
	notifiers.closeIdle()
}

// Templates implements Spec.
func (s *NotifySpec) Templates() []Template {
	out := []Template{s.URL}
	if s.Title != nil {
		out = append(out, s.Title)
	}
	if s.Message != nil {
		out = append(out, s.Message)
	}
	return out
}

// Render implements Spec. A templated URL is checked here, as the
// service reads it; a title is made one line (line breaks become spaces),
// as services put it in a header.
func (s *NotifySpec) Render(r Renderer, payload []byte) (Action, error) {
	u, err := r.Render(s.URL)
	if err != nil {
		return nil, fmt.Errorf("url: %w", err)
	}
	if !s.URL.IsLiteral() {
		if err := CheckServiceURL(u); err != nil {
			return nil, fmt.Errorf("rendered url: %w", err)
		}
	}
	n := &Notify{URL: u, Message: string(payload), Timeout: s.Timeout, Retries: s.Retries}
	if s.Title != nil {
		t, err := r.Render(s.Title)
		if err != nil {
			return nil, fmt.Errorf("title: %w", err)
		}
		n.Title = oneLine(t)
	}
	if s.Message != nil {
		m, err := r.Render(s.Message)
		if err != nil {
			return nil, fmt.Errorf("message: %w", err)
		}
		n.Message = m
	}
	return n, nil
}

var lineBreaks = strings.NewReplacer("\r\n", " ", "\n", " ", "\r", " ")

func oneLine(s string) string { return lineBreaks.Replace(s) }

// Describe implements Spec.
func (s *NotifySpec) Describe() []Field {
	out := []Field{{Name: "url", Value: s.URL.Source(), Bare: true, Redact: RedactServiceURL}}
	if s.Title != nil {
		out = append(out, Field{Name: "title", Value: s.Title.Source()})
	}
	out = append(out,
		Field{Name: "timeout", Value: FormatDuration(s.Timeout), Quiet: true},
		Field{Name: "retries", Value: strconv.Itoa(s.Retries), Quiet: true})
	msg := Field{Name: "message", Text: true, Note: "the message's payload"}
	if s.Message != nil {
		msg.Value, msg.Note = s.Message.Source(), ""
	}
	return append(out, msg)
}

// Notify is a rendered notification.
type Notify struct {
	URL     string // a service URL; shown redacted (see RedactServiceURL)
	Title   string // "": the URL's title, or the service's default
	Message string
	Timeout time.Duration // per attempt
	Retries int           // extra attempts after the first, unless the service answered 4xx (but 429)
}

// Fields implements Action.
func (n *Notify) Fields() []Field {
	out := []Field{{Name: "url", Value: n.URL, Bare: true, Redact: RedactServiceURL}}
	if n.Title != "" {
		out = append(out, Field{Name: "title", Value: n.Title})
	}
	return append(out,
		Field{Name: "timeout", Value: FormatDuration(n.Timeout), Quiet: true},
		Field{Name: "retries", Value: strconv.Itoa(n.Retries), Quiet: true},
		Field{Name: "message", Value: n.Message, Text: true})
}

func (n *Notify) run(x *Executor, req *Request, once *reportOnce) { x.enqueue(req, n, once) }

// destination is "notify:" + scheme://host, so that each service (each
// server of a self-hosted one) has its own queue and workers.
func (n *Notify) destination(secrets []string) (string, error) {
	u, err := url.Parse(n.URL)
	if err != nil || u.Scheme == "" {
		return "", fmt.Errorf("invalid service URL %s", unparsableURL)
	}
	name, _, _ := strings.Cut(strings.ToLower(u.Scheme), "+")
	host := strings.ToLower(u.Host)
	if s, ok := notifyServices[name]; ok && s.secretHost {
		host = s.apiHost
	}
	return "notify:" + name + "://" + Mask(host, secrets), nil
}

func (n *Notify) target(secrets []string) (string, string) {
	u := Mask(RedactServiceURL(n.URL), secrets)
	return u, u
}

func (n *Notify) policy() (time.Duration, int) { return n.Timeout, n.Retries }

func (n *Notify) letter(secrets []string) any {
	type request struct {
		URL     string `json:"url"`
		Title   string `json:"title,omitempty"`
		Message string `json:"message"`
	}
	return request{URL: Mask(RedactServiceURL(n.URL), secrets), Title: Mask(n.Title, secrets), Message: Mask(n.Message, secrets)}
}

// Bounds of the services kept and of the sends running (docs/rules.md,
// "notify").
const (
	// notifyCacheSize is how many services (one per distinct URL) are
	// kept, least recently used first out. Services keep HTTP clients and
	// connections, so each is made once per URL, not per send.
	notifyCacheSize = 64
	// maxNotifySends bounds the sends running at once in the process,
	// those given up on for at most abandonGrace included (see
	// Notify.attempt).
	maxNotifySends = 64
	// abandonGrace is how long a send whose attempt was given up keeps
	// its slot and its URL: a send stopped by its context ends well
	// within it. One that does not (a service whose send cannot be
	// stopped, see notifyEntry.send) is left to end by the service's own
	// timeout, without a slot, and its service is let go, so that the
	// next send to its URL sets up another instead of waiting for it.
	abandonGrace = time.Second
)

// notifiers holds the services made, by URL. It is shared by every
// Executor of the process: a service holds no state of its executor.
var notifiers = newNotifyCache(notifyCacheSize)

// notifySends holds a token per send running.
var notifySends = make(chan struct{}, maxNotifySends)

// attempt sends the notification once. The send runs in a goroutine of
// its own, bound to ctx (see notifyEntry.send), and the attempt waits for
// it until ctx ends (the attempt's timeout, or Close giving up); then the
// attempt returns at once and the send, stopped by ctx, ends on its own.
// Sends to one URL run one at a time (services change their
// configuration while they send), and at most maxNotifySends run in the
// process; waiting for either counts against the attempt's timeout.
func (n *Notify) attempt(ctx context.Context, _ *Executor) attemptResult {
	if err := ctx.Err(); err != nil {
		return attemptResult{err: err, retry: true, retryAfter: -1}
	}
	start := time.Now()
	e, err := notifiers.lock(ctx, n.URL)
	if err != nil {
		return attemptResult{err: waitError(ctx, "waiting for the previous notification to this URL", start), retry: true, retryAfter: -1}
	}
	select {
	case notifySends <- struct{}{}:
	case <-ctx.Done():
		e.unlock()
		return attemptResult{err: waitError(ctx, "waiting for other notifications to end", start), retry: true, retryAfter: -1}
	}
	var slot sync.Once
	release := func() { slot.Do(func() { <-notifySends }) }
	done := make(chan attemptResult, 1)
	go func() {
		res := e.send(ctx, n)
		release()
		e.unlock()
		done <- res
	}()
	select {
	case res := <-done:
		return res
	case <-ctx.Done():
	}
	go func() { // ends within abandonGrace
		t := time.NewTimer(abandonGrace)
		defer t.Stop()
		select {
		case <-done:
		case <-t.C:
			notifiers.drop(e)
			release()
		}
	}()
	return attemptResult{err: fmt.Errorf("no answer: %w", ctx.Err()), retry: true, retryAfter: -1}
}

// waitError is the error of an attempt whose ctx ended while it waited
// for its turn. Nothing was sent, so it does not wrap
// context.DeadlineExceeded (the service was not slow to answer, it was
// not asked); it wraps ctx's error only when Close gave up
// (context.Canceled).
func waitError(ctx context.Context, what string, start time.Time) error {
	if !errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return fmt.Errorf("%s: %w", what, ctx.Err())
	}
	waited := time.Since(start)
	if d, ok := ctx.Deadline(); ok {
		waited = d.Sub(start)
	}
	return fmt.Errorf("%s: not sent within %s", what, FormatDuration(waited.Round(time.Millisecond)))
}

// notifyEntry is the service of one URL.
type notifyEntry struct {
	url  string
	lock chan struct{} // held by the send running
	gone chan struct{} // closed when the entry leaves the cache
	svc  types.Service // nil until made; guarded by lock
	elem *list.Element // guarded by notifyCache.mu
}

// unlock releases e.lock; e.lock must be held. The idle connections of a
// service that left the cache while it sent are closed.
func (e *notifyEntry) unlock() {
	select {
	case <-e.gone:
		closeServiceIdle(e.svc)
	default:
	}
	<-e.lock
}

// send makes the service when needed and sends n through it; e.lock is
// held. Its error holds no secret part of the URL.
//
// The send ends when ctx does: generic, Teams, Slack and Telegram are
// sent with requests of our own bound to ctx, e-mail on a connection
// whose reads and writes end with ctx (see sendSMTP); ntfy, Pushover,
// Discord and Gotify get clients whose requests are bound to ctx (see
// bindClients). A request stopped so is aborted: the server may still
// act on what it received, so a retry may deliver a notification twice
// (at least once, as for webhooks), but a send given up never completes
// later behind a retry. Matrix's client cannot be reached: its requests
// end by shoutrrr's own 10 s timeout, which abandonGrace does not wait
// for.
func (e *notifyEntry) send(ctx context.Context, n *Notify) (res attemptResult) {
	res.retryAfter = -1
	defer func() {
		if p := recover(); p != nil {
			res = attemptResult{err: fmt.Errorf("notification service panicked: %s", maskServiceText(fmt.Sprint(p), n.URL)), retryAfter: -1}
		}
	}()
	if e.svc == nil {
		svc, err := newService(n.URL, false)
		if err != nil {
			if name, _, _ := strings.Cut(strings.ToLower(n.URL), ":"); notifyServices[name].check != nil {
				return notifyResult(err, n.URL) // made over the network (a matrix login)
			}
			return attemptResult{err: err, retryAfter: -1} // the URL is wrong: another attempt reads it the same
		}
		e.svc = svc
	}
	// A service's Send writes the params into its configuration: put it
	// back afterwards, so one send's title is not the next one's.
	defer restoreConfig(e.svc)()
	var err error
	switch s := e.svc.(type) {
	case *telegram.Service:
		err = sendTelegram(ctx, s.Config, n.Title, n.Message)
	case *generic.Service:
		err = sendGeneric(ctx, s, n.Title, n.Message)
	case *teams.Service:
		err = sendTeams(ctx, s.Config, n.Title, n.Message)
	case *slack.Service:
		err = sendSlack(ctx, s.Config, n.Title, n.Message)
	case *smtp.Service:
		err = sendSMTP(ctx, s, mime.QEncoding.Encode("utf-8", n.Title), n.Message) // a mail header is ASCII
	default:
		params := types.Params{}
		if n.Title != "" {
			params.SetTitle(n.Title)
		}
		defer bindClients(ctx, e.svc)()
		err = e.svc.Send(n.Message, &params)
	}
	if err == nil {
		return res
	}
	return notifyResult(err, n.URL)
}

// telegramAPI is the address of Telegram's Bot API (tests change it).
var telegramAPI = "https://api.telegram.org"

// sendTelegram sends message to each chat of cfg as shoutrrr's Telegram
// service does (the same payload), but reports what its Send drops: there
// a network error, or an answer that is not Telegram's JSON, reads as
// success. The request ends with ctx.
func sendTelegram(ctx context.Context, cfg *telegram.Config, title, message string) error {
	if title == "" {
		title = cfg.Title
	}
	for _, chat := range cfg.Chats {
		var p struct {
			ChatID              string `json:"chat_id"`
			ThreadID            *int   `json:"message_thread_id,omitempty"`
			Text                string `json:"text"`
			ParseMode           string `json:"parse_mode,omitempty"`
			DisablePreview      bool   `json:"disable_web_page_preview"`
			DisableNotification bool   `json:"disable_notification"`
		}
		p.Text, p.DisablePreview, p.DisableNotification = message, !cfg.Preview, !cfg.Notification
		id, thread, ok := strings.Cut(chat, ":") // CHAT:THREAD
		p.ChatID = id
		if n, err := strconv.Atoi(thread); ok && err == nil {
			p.ThreadID = &n
		}
		mode := cfg.ParseMode
		if mode == telegram.ParseModes.None && title != "" {
			mode = telegram.ParseModes.HTML // the title is bold, the message plain text
			p.Text = html.EscapeString(message)
		}
		if mode != telegram.ParseModes.None {
			p.ParseMode = mode.String()
		}
		if mode == telegram.ParseModes.HTML && title != "" {
			p.Text = "<b>" + html.EscapeString(title) + "</b>\n" + p.Text
		}
		body, err := json.Marshal(p)
		if err != nil {
			return err
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, telegramAPI+"/bot"+cfg.Token+"/sendMessage", bytes.NewReader(body))
		if err != nil {
			return errors.New("invalid bot token")
		}
		req.Header.Set("Content-Type", "application/json")
		resp, err := notifyClient(false).Do(req)
		if err != nil {
			var ue *url.Error
			if errors.As(err, &ue) { // its text holds the token
				err = ue.Err
			}
			return fmt.Errorf("sending to Telegram: %w", err)
		}
		answer, _ := io.ReadAll(io.LimitReader(resp.Body, maxResponseBody))
		_ = resp.Body.Close()
		if resp.StatusCode >= 400 {
			var te struct {
				Description string `json:"description"`
			}
			_ = json.Unmarshal(answer, &te)
			return fmt.Errorf("telegram answered %w: %s", &StatusError{Code: resp.StatusCode, Status: resp.Status}, te.Description)
		}
	}
	return nil
}

// restoreConfig saves the configuration of svc (every shoutrrr service
// keeps it in its exported Config field) and returns what puts it back.
func restoreConfig(svc types.Service) func() {
	v := reflect.ValueOf(svc)
	if v.Kind() != reflect.Pointer || v.Elem().Kind() != reflect.Struct {
		return func() {}
	}
	f := v.Elem().FieldByName("Config")
	if !f.IsValid() || f.Kind() != reflect.Pointer || f.IsNil() || f.Elem().Kind() != reflect.Struct || !f.Elem().CanSet() {
		return func() {}
	}
	cfg := f.Elem()
	saved := reflect.New(cfg.Type()).Elem()
	saved.Set(cfg)
	return func() { cfg.Set(saved) }
}

// notifyCache keeps services by URL, least recently used first out.
type notifyCache struct {
	mu    sync.Mutex
	max   int
	lru   *list.List // of *notifyEntry, most recent first
	byURL map[string]*notifyEntry
}

func newNotifyCache(max int) *notifyCache {
	return &notifyCache{max: max, lru: list.New(), byURL: make(map[string]*notifyEntry)}
}

// get returns the entry of rawURL, made when needed.
func (c *notifyCache) get(rawURL string) *notifyEntry {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.byURL[rawURL]; ok {
		c.lru.MoveToFront(e.elem)
		return e
	}
	e := &notifyEntry{url: rawURL, lock: make(chan struct{}, 1), gone: make(chan struct{})}
	e.elem = c.lru.PushFront(e)
	c.byURL[rawURL] = e
	for c.lru.Len() > c.max {
		old := c.lru.Back().Value.(*notifyEntry)
		c.remove(old)
		old.closeIdle()
	}
	return e
}

// lock returns the entry of rawURL with its lock held. It waits for the
// send holding the lock, or, when that send's entry leaves the cache
// (given up on, see Notify.attempt), takes the URL's new entry; it returns
// ctx's error when ctx ends first.
func (c *notifyCache) lock(ctx context.Context, rawURL string) (*notifyEntry, error) {
	for {
		e := c.get(rawURL)
		select {
		case e.lock <- struct{}{}:
			return e, nil
		case <-e.gone:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

// drop lets e go, unless it has already gone: the next send to its URL
// makes a new service.
func (c *notifyCache) drop(e *notifyEntry) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.byURL[e.url] == e {
		c.remove(e)
	}
}

// remove takes e out of the cache; c.mu is held.
func (c *notifyCache) remove(e *notifyEntry) {
	c.lru.Remove(e.elem)
	delete(c.byURL, e.url)
	close(e.gone)
}

// len returns how many services are kept (for tests).
func (c *notifyCache) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.lru.Len()
}

// closeIdle closes the idle connections of every service kept that is
// not sending.
func (c *notifyCache) closeIdle() {
	c.mu.Lock()
	entries := make([]*notifyEntry, 0, c.lru.Len())
	for el := c.lru.Front(); el != nil; el = el.Next() {
		entries = append(entries, el.Value.(*notifyEntry))
	}
	c.mu.Unlock()
	for _, e := range entries {
		e.closeIdle()
	}
}

// closeIdle closes the idle connections of e's service if it is not
// sending; a send running closes them itself when e has left the cache
// (see unlock).
func (e *notifyEntry) closeIdle() {
	select {
	case e.lock <- struct{}{}:
	default:
		return // sending: its connections are in use
	}
	closeServiceIdle(e.svc)
	<-e.lock
}

// closeServiceIdle closes the idle connections of svc's own client, for a
// service that has one and says so (Gotify); the others use notify's
// transports (see closeNotifyIdle).
func closeServiceIdle(svc types.Service) {
	if c, ok := svc.(interface{ GetHTTPClient() *http.Client }); ok && c.GetHTTPClient() != nil {
		c.GetHTTPClient().CloseIdleConnections()
	}
}

// notifyError is a failed send, its text with the URL's secret parts
// masked; it wraps a *StatusError when the service answered with an HTTP
// error status, and ctx's error when the send was stopped by its context.
type notifyError struct {
	msg    string
	status *StatusError
	cause  error // context.DeadlineExceeded or context.Canceled, or nil
}

func (e *notifyError) Error() string { return e.msg }

func (e *notifyError) Unwrap() []error {
	var out []error
	if e.status != nil {
		out = append(out, e.status)
	}
	if e.cause != nil {
		out = append(out, e.cause)
	}
	return out
}

// notifyResult classifies a failed send: an HTTP answer of 4xx but 429
// (the request is wrong: another attempt gets the same) and a permanent
// SMTP reply (5xx) are final; anything else — 5xx, 429, network errors,
// transient SMTP replies, errors that say nothing — is worth retrying.
func notifyResult(err error, rawURL string) attemptResult {
	res := attemptResult{retry: true, retryAfter: -1}
	ne := &notifyError{msg: maskServiceText(err.Error(), rawURL)}
	res.err = ne
	for _, c := range [...]error{context.DeadlineExceeded, context.Canceled} {
		if errors.Is(err, c) {
			ne.cause = c
			break
		}
	}
	if code, ok := smtpCode(err); ok {
		res.retry = code < 500
		return res
	}
	if code := httpStatus(err); code >= 400 {
		ne.status = &StatusError{Code: code}
		res.status = code
		res.retry = code == http.StatusTooManyRequests || code >= 500
	}
	return res
}

// smtpCode returns the reply code of an SMTP server's refusal.
func smtpCode(err error) (int, bool) {
	var te *textproto.Error
	if errors.As(err, &te) && te.Code >= 400 && te.Code < 600 {
		return te.Code, true
	}
	return 0, false
}

// httpStatus finds the HTTP status a service answered with in err, 0 when
// none: shoutrrr's services report it in different ways — a
// jsonclient.Error, a decoded error body with a code (Telegram's
// error_code, Gotify's errorCode, ntfy's five-digit code whose first three
// are the status), or only the status line in the text ("got unexpected
// HTTP status: 400 Bad Request").
func httpStatus(err error) int {
	var je jsonclient.Error
	if errors.As(err, &je) && je.StatusCode >= 400 {
		return je.StatusCode
	}
	var code int
	if walkErrors(err, func(e error) bool { code = codeField(e); return code != 0 }) {
		return code
	}
	return statusInText(err.Error())
}

// walkErrors calls f on err and every error it wraps, depth first, until f
// returns true.
func walkErrors(err error, f func(error) bool) bool {
	for err != nil {
		if f(err) {
			return true
		}
		switch u := err.(type) {
		case interface{ Unwrap() []error }:
			for _, e := range u.Unwrap() {
				if walkErrors(e, f) {
					return true
				}
			}
			return false
		case interface{ Unwrap() error }:
			err = u.Unwrap()
		default:
			return false
		}
	}
	return false
}

// codeField reads an HTTP status from an error struct's exported
// StatusCode, ErrorCode or Code field, 0 when it has none.
func codeField(err error) int {
	v := reflect.ValueOf(err)
	for v.Kind() == reflect.Pointer || v.Kind() == reflect.Interface {
		if v.IsNil() {
			return 0
		}
		v = v.Elem()
	}
	if v.Kind() != reflect.Struct {
		return 0
	}
	for _, name := range [...]string{"StatusCode", "ErrorCode", "Code"} {
		f, ok := v.Type().FieldByName(name)
		if !ok || !f.IsExported() {
			continue
		}
		var n int64
		switch fv := v.FieldByIndex(f.Index); fv.Kind() {
		case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
			n = fv.Int()
		case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
			n = int64(min(fv.Uint(), 1<<31))
		default:
			continue
		}
		switch {
		case n >= 400 && n < 600:
			return int(n)
		case n >= 40000 && n < 60000: // ntfy: 42901 is 429
			return int(n / 100)
		}
	}
	return 0
}

var (
	// statusLine is an HTTP status line in an error text: "400 Bad Request".
	statusLine = regexp.MustCompile(`\b([45][0-9][0-9]) ([A-Z][A-Za-z' -]*)`)
	// statusNumber is a status said in words: "HTTP 503", "status code: 429".
	statusNumber = regexp.MustCompile(`(?i)\b(?:http|status(?: code)?)[: ]+([45][0-9][0-9])\b`)
)

func statusInText(s string) int {
	for _, m := range statusLine.FindAllStringSubmatch(s, -1) {
		code, _ := strconv.Atoi(m[1])
		if t := http.StatusText(code); t != "" && strings.HasPrefix(m[2], t) {
			return code
		}
	}
	if m := statusNumber.FindStringSubmatch(s); m != nil {
		code, _ := strconv.Atoi(m[1])
		return code
	}
	return 0
}

// RedactServiceURL returns a service URL fit to show: its scheme and host
// (except where the host is a credential, as Pushover's user key), with
// the user and password, the path, and the values of query parameters
// that are not harmless options (title, priority, tags, scheme,
// disabletls, …) replaced by "[REDACTED]":
//
//	ntfy://ntfy.sh/[REDACTED]?priority=high
//	smtp://[REDACTED]@mail.example.com:587/?from=[REDACTED]&to=[REDACTED]
//
// A URL that does not parse, or has no scheme, reads "[unparsable URL]".
func RedactServiceURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.Scheme == "" {
		return unparsableURL
	}
	var b strings.Builder
	b.WriteString(u.Scheme + ":")
	if u.Opaque != "" {
		b.WriteString(Redacted)
		return b.String()
	}
	b.WriteString("//")
	if u.User != nil {
		b.WriteString(Redacted + "@")
	}
	name, _, _ := strings.Cut(strings.ToLower(u.Scheme), "+")
	if s, ok := notifyServices[name]; ok && s.secretHost && u.Host != "" {
		b.WriteString(Redacted)
	} else {
		b.WriteString(u.Host)
	}
	if u.Path != "" && u.Path != "/" {
		b.WriteString("/" + Redacted)
	} else {
		b.WriteString(u.Path)
	}
	if u.RawQuery != "" || u.ForceQuery {
		b.WriteByte('?')
		parts := strings.Split(u.RawQuery, "&")
		for i, p := range parts {
			key, _, hasValue := strings.Cut(p, "=")
			if k, err := url.QueryUnescape(key); err == nil {
				key = k
			}
			if hasValue && !safeQueryKeys[strings.ToLower(key)] {
				parts[i] = p[:strings.IndexByte(p, '=')+1] + Redacted
			}
		}
		b.WriteString(strings.Join(parts, "&"))
	}
	if u.Fragment != "" {
		b.WriteString("#" + Redacted)
	}
	return b.String()
}

// minSecretPart is the length below which a part of a URL is not masked
// in texts: masking "a" or "42" would garble them and hide nothing.
const minSecretPart = 4

// serviceURLSecrets returns the parts of a service URL that may be secret,
// longest first: the user and password, the host where it is a
// credential, the path and its segments, and the values (and their
// comma-separated items) of query parameters that are not harmless
// options. The whole URL is one of them.
func serviceURLSecrets(raw string) []string {
	parts := []string{raw}
	add := func(s string) {
		if len(s) >= minSecretPart {
			parts = append(parts, s)
		}
	}
	u, err := url.Parse(raw)
	if err != nil {
		return parts
	}
	if u.User != nil {
		add(u.User.Username())
		if p, ok := u.User.Password(); ok {
			add(p)
		}
	}
	name, _, _ := strings.Cut(strings.ToLower(u.Scheme), "+")
	if s, ok := notifyServices[name]; ok && s.secretHost {
		add(u.Hostname())
	}
	add(strings.Trim(u.Path, "/"))
	for seg := range strings.SplitSeq(u.Path, "/") {
		add(seg)
	}
	for k, vs := range u.Query() {
		if safeQueryKeys[strings.ToLower(k)] {
			continue
		}
		for _, v := range vs {
			add(v)
			for item := range strings.SplitSeq(v, ",") {
				add(strings.TrimSpace(item))
			}
		}
	}
	add(u.Fragment)
	slices.SortFunc(parts, func(a, b string) int { return len(b) - len(a) })
	return slices.Compact(parts)
}

// quotedURL is a URL in double quotes in an error text, as Go's
// url.Error and shoutrrr's clients quote what they called.
var quotedURL = regexp.MustCompile(`"[A-Za-z][A-Za-z0-9+.-]*://[^"\s]*"`)

// maskServiceText returns s, an error text of a service at rawURL, with
// every URL it quotes redacted (see RedactServiceURL) and every secret
// part of rawURL masked (see serviceURLSecrets), also URL-escaped, where
// it stands as a word of its own.
func maskServiceText(s, rawURL string) string {
	s = quotedURL.ReplaceAllStringFunc(s, func(q string) string {
		return `"` + RedactServiceURL(q[1:len(q)-1]) + `"`
	})
	for _, part := range serviceURLSecrets(rawURL) {
		q := url.QueryEscape(part)
		for _, form := range [...]string{part, url.PathEscape(part), q, strings.ReplaceAll(q, "+", "%20")} {
			s = maskWord(s, form)
		}
	}
	return s
}

// maskWord replaces every occurrence of part in s by "[REDACTED]", except
// where it is a piece of a longer word: a path segment "hook" is masked in
// "/hook?" and in `"hook"`, not in "webhook".
func maskWord(s, part string) string {
	if part == "" || !strings.Contains(s, part) {
		return s
	}
	var b strings.Builder
	for {
		i := strings.Index(s, part)
		if i < 0 {
			b.WriteString(s)
			return b.String()
		}
		end := i + len(part)
		inWord := i > 0 && isWordByte(s[i-1]) && isWordByte(part[0]) ||
			end < len(s) && isWordByte(s[end]) && isWordByte(part[len(part)-1])
		b.WriteString(s[:i])
		if inWord {
			b.WriteString(part)
		} else {
			b.WriteString(Redacted)
		}
		s = s[end:]
	}
}

func isWordByte(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c >= 0x80
}
