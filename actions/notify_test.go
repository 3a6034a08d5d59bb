package actions

import (
	"context"
	"crypto/tls"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net"
	"net/http"
	"net/http/httptest"
	"net/mail"
	"net/textproto"
	"reflect"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	gosmtp "github.com/emersion/go-smtp"
	"github.com/nicholas-fedor/shoutrrr/pkg/types"
)

// notifyReq is a request of a notify action, of rule, to rawURL.
func notifyReq(rule, rawURL, title, message string, retries int) Request {
	return Request{
		Kind:   KindNotify,
		Rule:   rule,
		Topic:  "home/kitchen/temperature",
		Action: &Notify{URL: rawURL, Title: title, Message: message, Retries: retries},
	}
}

// fakeService is an HTTP server standing in for a notification service:
// it records every request and answers the nth with answers[n] (the last
// one from then on).
type fakeService struct {
	srv   *httptest.Server
	host  string       // 127.0.0.1:port
	n     atomic.Int32 // requests
	conns atomic.Int32 // connections opened
	got   chan seen
}

// answer is a fake service's response.
type answer struct {
	status int
	body   string // JSON
}

func newFakeService(t *testing.T, answers ...answer) *fakeService {
	t.Helper()
	f := &fakeService{got: make(chan seen, 100)}
	f.srv = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		h := r.Header.Clone()
		h.Del("Accept-Encoding") // the transport's
		h.Del("Content-Length")
		f.got <- seen{r.Method, r.URL.RequestURI(), h, string(body)}
		a := answers[min(int(f.n.Add(1))-1, len(answers)-1)]
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(a.status)
		_, _ = io.WriteString(w, a.body)
	}))
	f.srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			f.conns.Add(1)
		}
	}
	f.srv.Start()
	t.Cleanup(f.srv.Close)
	f.host = f.srv.Listener.Addr().String()
	return f
}

// next returns the next request the service received.
func (f *fakeService) next(t *testing.T) seen {
	t.Helper()
	select {
	case s := <-f.got:
		return s
	case <-time.After(waitLimit):
		t.Fatal("timed out waiting for a request at the fake service")
		return seen{}
	}
}

// Answers of the services' APIs, as their servers write them.
const (
	ntfyOK     = `{"id":"hwQ2YpKdmg","time":1700000000,"expires":1700043200,"event":"message","topic":"kitchen-alerts","title":"Kitchen hot","message":"31 °C in the kitchen"}`
	gotifyOK   = `{"id":25,"appid":5,"message":"31 °C in the kitchen","title":"Kitchen hot","priority":5,"date":"2026-01-02T10:00:00Z"}`
	ntfy403    = `{"code":40301,"http":403,"error":"forbidden","link":"https://docs.ntfy.sh/publish/#authentication"}`
	ntfy429    = `{"code":42901,"http":429,"error":"limit reached: too many requests"}`
	ntfy500    = `{"code":50001,"http":500,"error":"internal server error"}`
	gotify401  = `{"error":"Unauthorized","errorCode":401,"errorDescription":"you need to provide a valid access token or user credentials to access this api"}`
	gotify503  = `{"error":"Service Unavailable","errorCode":503,"errorDescription":"try again later"}`
	gotifyPass = "AbCdEfGhIjKlMnO" // an application token: 15 characters, the first an A
)

// TestNotifySendsRequest pins the exact request each service's URL makes:
// the services' real HTTP APIs, as the fake servers take them.
func TestNotifySendsRequest(t *testing.T) {
	const (
		title   = "Kitchen hot"
		message = "31 °C in the kitchen"
	)
	tests := []struct {
		name   string
		url    func(host string) string
		answer string
		want   seen
	}{
		{
			name: "ntfy with basic auth, priority and tags",
			url: func(h string) string {
				return "ntfy://phone:pa55word@" + h + "/kitchen-alerts?scheme=http&priority=high&tags=warning,fire"
			},
			answer: ntfyOK,
			want: seen{method: "POST", path: "/kitchen-alerts", body: message, header: http.Header{
				"Authorization": {"Basic " + base64.StdEncoding.EncodeToString([]byte("phone:pa55word"))},
				"Content-Type":  {"text/plain; charset=utf-8"},
				"Priority":      {"High"},
				"Tags":          {"warning,fire"},
				"Title":         {title},
				"User-Agent":    {"shoutrrr/dev"},
			}},
		},
		{
			name:   "gotify",
			url:    func(h string) string { return "gotify://" + h + "/" + gotifyPass + "?disabletls=yes&priority=5" },
			answer: gotifyOK,
			want: seen{method: "POST", path: "/message?token=" + gotifyPass,
				body: "{\n\"message\": \"" + message + "\",\n\"title\": \"" + title + "\",\n\"priority\": 5,\n\"extras\": null\n}",
				header: http.Header{
					"Content-Type": {"application/json"},
					"User-Agent":   {"Go-http-client/1.1"},
				}},
		},
		{
			name:   "generic webhook, JSON",
			url:    func(h string) string { return "generic://" + h + "/hooks/alert?disabletls=yes&template=json" },
			answer: `{}`,
			want: seen{method: "POST", path: "/hooks/alert", body: `{"message":"` + message + `","title":"` + title + `"}`,
				header: http.Header{
					"Accept":       {"application/json"},
					"Content-Type": {"application/json"},
					"User-Agent":   {"Go-http-client/1.1"},
				}},
		},
		{
			name:   "generic webhook as generic+http, text",
			url:    func(h string) string { return "generic+http://" + h + "/plain/hook" },
			answer: `{}`,
			want: seen{method: "POST", path: "/plain/hook", body: message,
				header: http.Header{
					"Accept":       {"text/plain"},
					"Content-Type": {"text/plain"},
					"User-Agent":   {"Go-http-client/1.1"},
				}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, Config{})
			f := newFakeService(t, answer{http.StatusOK, tt.answer})
			u := tt.url(f.host)
			if err := CheckServiceURL(u); err != nil {
				t.Fatalf("CheckServiceURL: %v", err)
			}
			h.x.Do(notifyReq("r", u, title, message, 0))
			if done := h.rec.waitRule(t, "r", 1); done[0].err != nil || done[0].kind != KindNotify {
				t.Fatalf("outcome: got %v %v, want notify success", done[0].kind, done[0].err)
			}
			got := f.next(t)
			if got.method != tt.want.method || got.path != tt.want.path {
				t.Errorf("request: got %s %s, want %s %s", got.method, got.path, tt.want.method, tt.want.path)
			}
			if !reflect.DeepEqual(got.header, tt.want.header) {
				t.Errorf("headers:\n got %v\nwant %v", got.header, tt.want.header)
			}
			if got.body != tt.want.body {
				t.Errorf("body:\n got %q\nwant %q", got.body, tt.want.body)
			}
		})
	}
}

// TestNotifyTitleNotCarriedOver: services write a send's title into their
// configuration; a later send without a title to the same URL has none.
func TestNotifyTitleNotCarriedOver(t *testing.T) {
	h := newHarness(t, Config{})
	f := newFakeService(t, answer{http.StatusOK, ntfyOK})
	u := "ntfy://" + f.host + "/kitchen-alerts?scheme=http"
	h.x.Do(notifyReq("first", u, "Kitchen hot", "31", 0))
	h.rec.waitRule(t, "first", 1)
	h.x.Do(notifyReq("second", u, "", "32", 0))
	h.rec.waitRule(t, "second", 1)
	if got := f.next(t).header.Get("Title"); got != "Kitchen hot" {
		t.Errorf("first Title = %q", got)
	}
	if got := f.next(t).header.Values("Title"); got != nil {
		t.Errorf("second Title = %q, want none", got)
	}
}

// TestNotifyReusesService: every send to a URL goes through one service
// and its connections, not a new client per send.
func TestNotifyReusesService(t *testing.T) {
	h := newHarness(t, Config{})
	f := newFakeService(t, answer{http.StatusOK, ntfyOK})
	u := "ntfy://" + f.host + "/kitchen-alerts?scheme=http"
	for i := range 5 {
		rule := fmt.Sprint("r", i)
		h.x.Do(notifyReq(rule, u, "t", "m", 0))
		if done := h.rec.waitRule(t, rule, 1); done[0].err != nil {
			t.Fatal(done[0].err)
		}
	}
	if n := f.conns.Load(); n != 1 {
		t.Errorf("5 sends one after another opened %d connections, want 1", n)
	}
	notifiers.mu.Lock()
	e := notifiers.byURL[u]
	notifiers.mu.Unlock()
	if e == nil {
		t.Fatal("the service is not kept")
	}
}

func TestNotifyCacheIsBounded(t *testing.T) {
	c := newNotifyCache(2)
	a := c.get("ntfy://h/a")
	c.get("ntfy://h/b")
	if c.get("ntfy://h/a") != a {
		t.Error("a second get made a new entry")
	}
	c.get("ntfy://h/c") // b is the least recently used
	if c.len() != 2 {
		t.Errorf("len = %d, want 2", c.len())
	}
	if _, ok := c.byURL["ntfy://h/b"]; ok {
		t.Error("b was kept, want it let go")
	}
	if c.get("ntfy://h/a") != a {
		t.Error("a was let go")
	}
}

// TestNotifyRetries: an HTTP answer of 4xx (but 429) is final; 5xx and 429
// are retried, for each way the services report them.
func TestNotifyRetries(t *testing.T) {
	ntfyURL := func(h string) string { return "ntfy://" + h + "/kitchen-alerts?scheme=http" }
	gotifyURL := func(h string) string { return "gotify://" + h + "/" + gotifyPass + "?disabletls=yes" }
	genericURL := func(h string) string { return "generic+http://" + h + "/hook" }
	tests := []struct {
		name         string
		url          func(host string) string
		answers      []answer
		retries      int
		wantAttempts int
		wantStatus   int // of the final error; 0: success
	}{
		{"ntfy 403 not retried", ntfyURL, []answer{{403, ntfy403}, {200, ntfyOK}}, 3, 1, 403},
		{"ntfy 503 retried then ok", ntfyURL, []answer{{503, ntfy500}, {200, ntfyOK}}, 3, 2, 0},
		{"ntfy 429 retried then ok", ntfyURL, []answer{{429, ntfy429}, {200, ntfyOK}}, 3, 2, 0},
		{"ntfy 500 until retries run out", ntfyURL, []answer{{500, ntfy500}}, 2, 3, 500},
		{"gotify 401 not retried", gotifyURL, []answer{{401, gotify401}, {200, gotifyOK}}, 3, 1, 401},
		{"gotify 503 retried then ok", gotifyURL, []answer{{503, gotify503}, {200, gotifyOK}}, 3, 2, 0},
		{"generic 404 not retried", genericURL, []answer{{404, `{}`}, {200, `{}`}}, 3, 1, 404},
		{"generic 503 retried then ok", genericURL, []answer{{503, `{}`}, {200, `{}`}}, 3, 2, 0},
		{"generic 429 retried then ok", genericURL, []answer{{429, `{}`}, {200, `{}`}}, 3, 2, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, Config{})
			f := newFakeService(t, tt.answers...)
			h.x.Do(notifyReq("r", tt.url(f.host), "Kitchen hot", "31", tt.retries))
			done := h.rec.waitRule(t, "r", 1)[0]
			if got := int(f.n.Load()); got != tt.wantAttempts {
				t.Errorf("requests: got %d, want %d", got, tt.wantAttempts)
			}
			if tt.wantStatus == 0 {
				if done.err != nil {
					t.Errorf("outcome: got %v, want success", done.err)
				}
				return
			}
			var se *StatusError
			if !errors.As(done.err, &se) || se.Code != tt.wantStatus {
				t.Errorf("outcome %v: StatusError %v, want code %d", done.err, se, tt.wantStatus)
			}
			if want := fmt.Sprintf("after %s", plural(tt.wantAttempts, "attempt")); !strings.HasSuffix(done.err.Error(), want) {
				t.Errorf("outcome %q does not end in %q", done.err, want)
			}
		})
	}
}

// TestNotifyNetworkErrorRetried: a server that resets the connection on
// the first two attempts; the third is answered.
func TestNotifyNetworkErrorRetried(t *testing.T) {
	var n atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if n.Add(1) <= 2 {
			conn, _, err := w.(http.Hijacker).Hijack()
			if err != nil {
				t.Error(err)
				return
			}
			conn.(*net.TCPConn).SetLinger(0) // close with RST
			conn.Close()
			return
		}
		_, _ = io.WriteString(w, ntfyOK)
	}))
	defer srv.Close()
	h := newHarness(t, Config{})
	h.x.Do(notifyReq("reset", "ntfy://"+srv.Listener.Addr().String()+"/kitchen-alerts?scheme=http", "t", "m", 3))
	done := h.rec.waitRule(t, "reset", 1)[0]
	if done.err != nil || n.Load() != 3 {
		t.Errorf("outcome %v after %d attempts, want success on the 3rd", done.err, n.Load())
	}
}

// TestNotifyConnectionRefusedRetried: nothing listens; every attempt is
// made and the error says why, without the URL's secret parts.
func TestNotifyConnectionRefusedRetried(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	h := newHarness(t, Config{})
	h.x.Do(notifyReq("refused", "gotify://"+addr+"/"+gotifyPass+"?disabletls=yes", "t", "m", 2))
	done := h.rec.waitRule(t, "refused", 1)[0]
	if done.err == nil || !strings.Contains(done.err.Error(), "connection refused") || !strings.HasSuffix(done.err.Error(), "after 3 attempts") {
		t.Errorf("outcome: got %v, want connection refused after 3 attempts", done.err)
	}
	if strings.Contains(done.err.Error(), gotifyPass) {
		t.Errorf("outcome holds the token: %v", done.err)
	}
}

func TestNotifyTimeoutHonoured(t *testing.T) {
	h := newHarness(t, Config{})
	b := newBlocker(t)
	req := notifyReq("slow", "ntfy://"+b.srv.Listener.Addr().String()+"/kitchen-alerts?scheme=http", "t", "m", 0)
	req.Action.(*Notify).Timeout = 100 * time.Millisecond
	h.x.Do(req)
	done := h.rec.waitRule(t, "slow", 1)[0]
	if done.err == nil || !strings.Contains(done.err.Error(), "no response within 100ms") {
		t.Errorf("outcome: got %v, want no response within 100ms", done.err)
	}
	if done.took > 5*time.Second {
		t.Errorf("took %v: the attempt's timeout was not honoured", done.took)
	}
}

// TestNotifyCloseDuringHangingService: Close gives up on a service that
// does not answer when its context ends, and the action is reported as
// cancelled.
func TestNotifyCloseDuringHangingService(t *testing.T) {
	h := newHarness(t, Config{})
	b := newBlocker(t)
	req := notifyReq("hang", "ntfy://"+b.srv.Listener.Addr().String()+"/kitchen-alerts?scheme=http", "t", "m", 3)
	req.Action.(*Notify).Timeout = time.Minute
	h.x.Do(req)
	b.waitEntered(t, 1)
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	err := h.x.Close(ctx)
	if took := time.Since(start); !errors.Is(err, context.DeadlineExceeded) || took > 5*time.Second {
		t.Errorf("Close: got %v after %v, want context.DeadlineExceeded soon after 200ms", err, took)
	}
	done := h.rec.waitRule(t, "hang", 1)[0]
	if !errors.Is(done.err, ErrShuttingDown) {
		t.Errorf("outcome: got %v, want ErrShuttingDown", done.err)
	}
}

// TestNotifySecretsNeverShown: a token in the URL path and a password in
// its userinfo, as a rule file takes them from ${ENV}, appear in no log
// line, no outcome and no dead letter, whichever way the send fails.
func TestNotifySecretsNeverShown(t *testing.T) {
	const (
		password = "hunter2-pa55word"
		topic    = "kitchen-s3cret-topic"
	)
	refused := func() string {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		return l.Addr().String()
	}()
	tests := []struct {
		name       string
		answers    []answer // nil: nothing listens
		retries    int
		wantStatus int
		wantErr    string
	}{
		{"403", []answer{{403, ntfy403}}, 2, 403, "forbidden (40301)"},
		{"500", []answer{{500, ntfy500}}, 1, 500, "internal server error (50001)"},
		{"network error", nil, 1, 0, "connection refused"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pub := &fakePublisher{}
			h := newHarness(t, Config{Publisher: pub, DeadLetterTopic: "mqtt-rules/dead-letter"})
			host := refused
			if tt.answers != nil {
				host = newFakeService(t, tt.answers...).host
			}
			u := "ntfy://phone:" + password + "@" + host + "/" + topic + "?scheme=http&priority=high"
			req := notifyReq("kitchen-too-hot", u, "Kitchen hot", "31 °C", tt.retries)
			req.Key = "kitchen"
			req.Secrets = []string{topic, password} // as rules.Rule.EnvValues, longest first
			h.x.Do(req)
			done := h.rec.waitRule(t, "kitchen-too-hot", 1)[0]
			pub.waitFor(t, 1)

			redacted := "ntfy://" + Redacted + "@" + host + "/" + Redacted + "?scheme=http&priority=high"
			if done.err == nil || !strings.HasPrefix(done.err.Error(), redacted+": ") || !strings.Contains(done.err.Error(), tt.wantErr) {
				t.Errorf("outcome: got %v, want %s: …%s…", done.err, redacted, tt.wantErr)
			}
			var letter struct {
				Rule, Action, Key, Error string
				Status, Attempts         int
				Request                  struct{ URL, Title, Message string }
			}
			if err := json.Unmarshal(pub.got[0].Payload, &letter); err != nil {
				t.Fatalf("dead letter is not JSON: %v: %s", err, pub.got[0].Payload)
			}
			want := letter
			want.Rule, want.Action, want.Key, want.Status = "kitchen-too-hot", "notify", "kitchen", tt.wantStatus
			want.Request.URL, want.Request.Title, want.Request.Message = redacted, "Kitchen hot", "31 °C"
			if letter != want || pub.got[0].Topic != "mqtt-rules/dead-letter" || !strings.Contains(letter.Error, tt.wantErr) {
				t.Errorf("dead letter on %s: %+v", pub.got[0].Topic, letter)
			}
			lines := h.log.lines("notify failed")
			if len(lines) != 1 || !strings.Contains(lines[0], `url="`+redacted+`"`) {
				t.Errorf("failure log lines %q lack the redacted URL", lines)
			}
			for what, s := range map[string]string{
				"log":         h.log.String(),
				"outcome":     done.err.Error(),
				"dead letter": string(pub.got[0].Payload),
			} {
				for _, secret := range []string{password, topic, "s3cret", "hunter2"} {
					if strings.Contains(s, secret) {
						t.Errorf("%s holds %q: %s", what, secret, s)
					}
				}
			}
		})
	}
}

// smtpMail is what the fake SMTP server received in one session.
type smtpMail struct {
	user, password string
	from           string
	to             []string
	data           string
}

// smtpServer is a real SMTP server (go-smtp) on 127.0.0.1 that records
// every mail, takes PLAIN auth with password, and refuses recipients
// with rcptErr when it is set.
type smtpServer struct {
	addr     string
	password string
	rcptErr  error
	sessions atomic.Int32
	mails    chan smtpMail
}

func newSMTPServer(t *testing.T, password string, rcptErr error) *smtpServer {
	t.Helper()
	s := &smtpServer{password: password, rcptErr: rcptErr, mails: make(chan smtpMail, 10)}
	srv := gosmtp.NewServer(gosmtp.BackendFunc(func(*gosmtp.Conn) (gosmtp.Session, error) {
		s.sessions.Add(1)
		return &smtpSession{s: s}, nil
	}))
	srv.Domain = "localhost"
	srv.AllowInsecureAuth = true
	srv.ReadTimeout, srv.WriteTimeout = waitLimit, waitLimit
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s.addr = l.Addr().String()
	served := make(chan struct{})
	go func() {
		defer close(served)
		_ = srv.Serve(l)
	}()
	t.Cleanup(func() {
		_ = srv.Close()
		<-served
	})
	return s
}

type smtpSession struct {
	s    *smtpServer
	mail smtpMail
}

func (ss *smtpSession) AuthMechanisms() []string { return []string{sasl.Plain} }

func (ss *smtpSession) Auth(string) (sasl.Server, error) {
	return sasl.NewPlainServer(func(_, user, password string) error {
		if password != ss.s.password {
			return gosmtp.ErrAuthFailed
		}
		ss.mail.user, ss.mail.password = user, password
		return nil
	}), nil
}

func (ss *smtpSession) Mail(from string, _ *gosmtp.MailOptions) error {
	ss.mail.from = from
	return nil
}

func (ss *smtpSession) Rcpt(to string, _ *gosmtp.RcptOptions) error {
	if ss.s.rcptErr != nil {
		return ss.s.rcptErr
	}
	ss.mail.to = append(ss.mail.to, to)
	return nil
}

func (ss *smtpSession) Data(r io.Reader) error {
	b, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	ss.mail.data = string(b)
	ss.s.mails <- ss.mail
	return nil
}

func (ss *smtpSession) Reset()        {}
func (ss *smtpSession) Logout() error { return nil }

// TestNotifyEmail sends a mail through a real SMTP server and checks it
// whole: the envelope, the headers (subject = title) and the body (the
// message).
func TestNotifyEmail(t *testing.T) {
	const password = "smtp-pa55word"
	for _, tc := range []struct {
		name, title, wantSubjectHeader string
	}{
		{"ascii title", "Kitchen hot", "Kitchen hot"},
		{"non-ascii title, encoded", "Küche: 31 °C", "=?utf-8?q?K=C3=BCche:_31_=C2=B0C?="},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, Config{})
			s := newSMTPServer(t, password, nil)
			u := "smtp://alerts-bot:" + password + "@" + s.addr + "/?from=rules@example.com&fromname=mqtt-rules&to=ops@example.com&usestarttls=no"
			if err := CheckServiceURL(u); err != nil {
				t.Fatalf("CheckServiceURL: %v", err)
			}
			h.x.Do(notifyReq("mail", u, tc.title, "31 °C in the kitchen\nsince 10:02", 0))
			if done := h.rec.waitRule(t, "mail", 1)[0]; done.err != nil {
				t.Fatalf("outcome: %v", done.err)
			}
			var m smtpMail
			select {
			case m = <-s.mails:
			case <-time.After(waitLimit):
				t.Fatal("no mail")
			}
			if m.user != "alerts-bot" || m.password != password || m.from != "rules@example.com" || !slices.Equal(m.to, []string{"ops@example.com"}) {
				t.Errorf("envelope: auth %q/%q, MAIL FROM %q, RCPT TO %q", m.user, m.password, m.from, m.to)
			}
			msg, err := mail.ReadMessage(strings.NewReader(m.data))
			if err != nil {
				t.Fatalf("not a mail: %v\n%s", err, m.data)
			}
			var keys []string
			for k := range msg.Header {
				keys = append(keys, k)
			}
			slices.Sort(keys)
			if want := []string{"Content-Type", "Date", "From", "Mime-Version", "Subject", "To"}; !slices.Equal(keys, want) {
				t.Errorf("headers %q, want %q", keys, want)
			}
			for k, want := range map[string]string{
				"From":         "mqtt-rules <rules@example.com>",
				"To":           "ops@example.com",
				"Subject":      tc.wantSubjectHeader,
				"Mime-Version": "1.0",
				"Content-Type": `text/plain; charset="UTF-8"`,
			} {
				if got := msg.Header.Get(k); got != want {
					t.Errorf("%s: got %q, want %q", k, got, want)
				}
			}
			if subject, err := new(mime.WordDecoder).DecodeHeader(msg.Header.Get("Subject")); err != nil || subject != tc.title {
				t.Errorf("subject decodes to %q (%v), want %q", subject, err, tc.title)
			}
			if _, err := msg.Header.Date(); err != nil {
				t.Errorf("Date: %v", err)
			}
			body, _ := io.ReadAll(msg.Body)
			if want := "31 °C in the kitchen\r\nsince 10:02\r\n"; string(body) != want {
				t.Errorf("body: got %q, want %q", body, want)
			}
		})
	}
}

// TestNotifyEmailRefusals: a permanent SMTP refusal (5xx) is final, a
// transient one (4xx) retried; the password is in no error.
func TestNotifyEmailRefusals(t *testing.T) {
	const password = "smtp-pa55word"
	for _, tc := range []struct {
		name         string
		password     string // the client's
		rcptErr      error
		wantSessions int
		wantErr      string
	}{
		{"wrong password, 535", "wrong-pa55word", nil, 1, `error authenticating: 535 "5.7.8 Authentication failed" after 1 attempt`},
		{"unknown recipient, 550", password, &gosmtp.SMTPError{Code: 550, EnhancedCode: gosmtp.EnhancedCode{5, 1, 1}, Message: "no such user"}, 1, `error sending message to recipient "[REDACTED]": error setting RCPT: 550 "5.1.1 no such user" after 1 attempt`},
		{"greylisted, 451", password, &gosmtp.SMTPError{Code: 451, EnhancedCode: gosmtp.EnhancedCode{4, 7, 1}, Message: "try again later"}, 3, `error sending message to recipient "[REDACTED]": error setting RCPT: 451 "4.7.1 try again later" after 3 attempts`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, Config{})
			s := newSMTPServer(t, password, tc.rcptErr)
			u := "smtp://alerts-bot:" + tc.password + "@" + s.addr + "/?from=rules@example.com&to=ops@example.com&usestarttls=no"
			req := notifyReq("mail", u, "t", "m", 2)
			req.Secrets = []string{tc.password}
			h.x.Do(req)
			done := h.rec.waitRule(t, "mail", 1)[0]
			if done.err == nil || !strings.HasSuffix(done.err.Error(), tc.wantErr) {
				t.Errorf("outcome: got %v, want …%s", done.err, tc.wantErr)
			}
			if n := int(s.sessions.Load()); n != tc.wantSessions {
				t.Errorf("sessions: got %d, want %d", n, tc.wantSessions)
			}
			if strings.Contains(done.err.Error(), tc.password) || strings.Contains(h.log.String(), tc.password) || strings.Contains(done.err.Error(), "ops@example.com") {
				t.Errorf("a secret shown: %v\n%s", done.err, h.log.String())
			}
		})
	}
}

func TestRedactServiceURL(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"ntfy://ntfy.sh/kitchen-alerts", "ntfy://ntfy.sh/[REDACTED]"},
		{"ntfy://phone:pw@ntfy.example.com/alerts?priority=high&tags=warning&click=https://x", "ntfy://[REDACTED]@ntfy.example.com/[REDACTED]?priority=high&tags=warning&click=[REDACTED]"},
		{"telegram://110201543:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw@telegram?chats=@kitchen,-1001234&preview=no", "telegram://[REDACTED]@telegram?chats=[REDACTED]&preview=no"},
		{"smtp://bot:pw@mail.example.com:587/?from=a@example.com&to=b@example.com&subject=Hot", "smtp://[REDACTED]@mail.example.com:587/?from=[REDACTED]&to=[REDACTED]&subject=Hot"},
		{"pushover://shoutrrr:apitoken@userkey/?devices=phone&priority=1", "pushover://[REDACTED]@[REDACTED]/?devices=[REDACTED]&priority=1"},
		{"gotify://gotify.example.com/AbCdEfGhIjKlMnO?disabletls=yes", "gotify://gotify.example.com/[REDACTED]?disabletls=yes"},
		{"discord://token@123456789", "discord://[REDACTED]@123456789"},
		{"slack://hook:WNA3PBYV6-F20DUQND3RQ-Webc4MAvoacrpPakR8phF0zi@webhook?color=good&title=Hot", "slack://[REDACTED]@webhook?color=good&title=Hot"},
		{"slack://T000/B000/XXXX", "slack://T000/[REDACTED]"},
		{"teams://g@t/a/o/e?host=contoso.webhook.office.com", "teams://[REDACTED]@t/[REDACTED]?host=[REDACTED]"},
		{"matrix://user:pw@matrix.example.com/?rooms=!abc:example.com", "matrix://[REDACTED]@matrix.example.com/?rooms=[REDACTED]"},
		{"generic+https://hooks.example.com/x/y?token=t&template=json&@Authorization=Bearer+t", "generic+https://hooks.example.com/[REDACTED]?token=[REDACTED]&template=json&@Authorization=[REDACTED]"},
		{"ntfy:opaque", "ntfy:[REDACTED]"},
		{"ntfy://ntfy.sh/a#frag", "ntfy://ntfy.sh/[REDACTED]#[REDACTED]"},
		{"no scheme/secret", "[unparsable URL]"},
		{"ntfy://{{ host }}/x", "[unparsable URL]"},
	} {
		if got := RedactServiceURL(tc.in); got != tc.want {
			t.Errorf("RedactServiceURL(%q)\n got %s\nwant %s", tc.in, got, tc.want)
		}
	}
}

// statusError is an error with an HTTP status in a field, as services
// decode their error bodies.
type statusError struct {
	ErrorCode   int
	Description string
}

func (e *statusError) Error() string { return e.Description }

// TestNotifyResult classifies errors as shoutrrr's services make them.
func TestNotifyResult(t *testing.T) {
	for _, tc := range []struct {
		name       string
		err        error
		wantStatus int
		wantRetry  bool
	}{
		{"status line in the text", errors.New("failed to send: got unexpected HTTP status: 400 Bad Request"), 400, false},
		{"quoted status line", errors.New(`failed to send notifications to pushover devices: failed to send: "phone", response status "429 Too Many Requests"`), 429, true},
		{"5xx status line", errors.New("webhook status failure: 502 Bad Gateway"), 502, true},
		{"a code in a field", fmt.Errorf("sending: %w", &statusError{ErrorCode: 403, Description: "Forbidden: bot was blocked by the user"}), 403, false},
		{"ntfy's five-digit code", fmt.Errorf("sending: %w", &struct{ statusError }{statusError{ErrorCode: 42901}}), 429, true},
		{"a number that is no status", errors.New("message exceeds 4096 characters"), 0, true},
		{"network error", &net.OpError{Op: "dial", Net: "tcp", Err: errors.New("connection refused")}, 0, true},
		{"smtp permanent", fmt.Errorf("error authenticating: %w", &textproto.Error{Code: 535, Msg: "5.7.8 failed"}), 0, false},
		{"smtp transient", errors.Join(errors.New("x"), fmt.Errorf("rcpt: %w", &textproto.Error{Code: 451, Msg: "later"})), 0, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res := notifyResult(tc.err, "ntfy://ntfy.sh/topic")
			if res.status != tc.wantStatus || res.retry != tc.wantRetry {
				t.Errorf("status %d retry %v, want %d %v", res.status, res.retry, tc.wantStatus, tc.wantRetry)
			}
		})
	}
}

func TestMaskServiceText(t *testing.T) {
	for _, tc := range []struct{ url, in, want string }{
		{
			"gotify://gotify.example.com/AbCdEfGhIjKlMnO?disabletls=yes",
			`sending POST request to "https://gotify.example.com/message?token=AbCdEfGhIjKlMnO": Post "https://gotify.example.com/message?token=AbCdEfGhIjKlMnO": EOF (token AbCdEfGhIjKlMnO)`,
			`sending POST request to "https://gotify.example.com/[REDACTED]?token=[REDACTED]": Post "https://gotify.example.com/[REDACTED]?token=[REDACTED]": EOF (token [REDACTED])`,
		},
		{ // a part is masked as a word, not inside one
			"generic+http://h.example/hook?to=ops@example.com,dev@example.com",
			`failed to send notification to generic webhook: hook refused for dev@example.com`,
			`failed to send notification to generic webhook: [REDACTED] refused for [REDACTED]`,
		},
		{ // escaped forms
			"smtp://u:p%40ss%20word@h.example/?from=a@example.com&to=b@example.com",
			`auth p@ss word / p%40ss%20word / p%40ss+word failed`,
			`auth [REDACTED] / [REDACTED] / [REDACTED] failed`,
		},
	} {
		if got := maskServiceText(tc.in, tc.url); got != tc.want {
			t.Errorf("maskServiceText(%q)\n got %s\nwant %s", tc.in, got, tc.want)
		}
	}
}

func TestCheckServiceURL(t *testing.T) {
	for _, tc := range []struct{ url, wantErr string }{
		{"ntfy://ntfy.sh/kitchen", ""},
		{"telegram://110201543:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw@telegram?chats=@kitchen", ""},
		{"smtp://u:p@mail.example.com:587/?from=a@example.com&to=b@example.com", ""},
		{"pushover://shoutrrr:azGDORePK8gMaC0QOYAMyEEuzJnyUi@uQiRzpo4DXghDmr9QzzfQu27cmVRsG/?devices=phone", ""},
		{"gotify://gotify.example.com/AbCdEfGhIjKlMnO", ""},
		{"discord://token@123456789", ""},
		{"slack://hook:WNA3PBYV6-F20DUQND3RQ-Webc4MAvoacrpPakR8phF0zi@webhook", ""},
		{"matrix://user:pw@matrix.example.com/?rooms=!abc:example.com", ""},
		{"teams://11111111-4444-4444-8444-cccccccccccc@22222222-4444-4444-8444-cccccccccccc/33333333012222222222333333333344/44444444-4444-4444-8444-cccccccccccc/V2ESyij_gAljSoUQHvZoZYzlpAoAXExyOl26dlf1xHEx05?host=contoso.webhook.office.com", ""},
		{"generic+https://hooks.example.com/x", ""},
		{"generic://hooks.example.com/x?template=json", ""},
		{"ntfyy://ntfy.sh/x", `unknown service "ntfyy" (did you mean "ntfy"?; supported: discord, generic, gotify, matrix, ntfy, pushover, slack, smtp, teams, telegram)`},
		{"https://hooks.example.com/x", `unknown service "https" (for an HTTP endpoint write a webhook action, or generic+https://…; supported: discord`},
		{"ntfy.sh/kitchen", "not a service URL: it has no scheme"},
		{"ntfy://ntfy.sh/", "ntfy URL: topic is required"},
		{"smtp://u:p@mail.example.com:587/?to=b@example.com", "smtp URL: "},
		{"ntfy://ntfy.sh/x?priority=loudest", "ntfy URL: "},
		{"ntfy+https://ntfy.sh/x", "ntfy URL: ntfy takes no ntfy+… scheme"},
		{"%zz://x", "not a service URL"},
	} {
		err := CheckServiceURL(tc.url)
		if tc.wantErr == "" {
			if err != nil {
				t.Errorf("CheckServiceURL(%q): %v", tc.url, err)
			}
			continue
		}
		if err == nil || !strings.HasPrefix(err.Error(), tc.wantErr) {
			t.Errorf("CheckServiceURL(%q)\n got %v\nwant %s…", tc.url, err, tc.wantErr)
		}
	}
}

// TestNotifyFieldsShowNoSecret: what dry runs, rule tests, the status
// page and /api show of a notify.
func TestNotifyFieldsShowNoSecret(t *testing.T) {
	n := &Notify{URL: "telegram://110201543:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw@telegram?chats=-1001234", Title: "Hot", Message: "31", Timeout: 5 * time.Second, Retries: 2}
	var shown []string
	for _, f := range n.Fields() {
		shown = append(shown, f.Name+"="+f.Show(f.Value, nil))
	}
	want := []string{"url=telegram://[REDACTED]@telegram?chats=[REDACTED]", "title=Hot", "timeout=5s", "retries=2", "message=31"}
	if !slices.Equal(shown, want) {
		t.Errorf("fields %q, want %q", shown, want)
	}
	if KindNotify.Redact("url") == nil || KindNotify.Redact("title") != nil {
		t.Error("Kind.Redact: url must be redacted, title shown")
	}
}

// TestNotifyConcurrentSendsToOneURL: sends to one URL are serialized, so
// the service's configuration is never written by two at once (run with
// -race), and each title reaches its own request.
func TestNotifyConcurrentSendsToOneURL(t *testing.T) {
	h := newHarness(t, Config{WebhookConcurrency: 4})
	f := newFakeService(t, answer{http.StatusOK, ntfyOK})
	u := "ntfy://" + f.host + "/kitchen-alerts?scheme=http"
	const n = 20
	for i := range n {
		h.x.Do(notifyReq("r", u, fmt.Sprint("title ", i), fmt.Sprint("message ", i), 0))
	}
	for _, d := range h.rec.waitRule(t, "r", n) {
		if d.err != nil {
			t.Fatal(d.err)
		}
	}
	var mu sync.Mutex
	titles := map[string]string{}
	for range n {
		s := f.next(t)
		mu.Lock()
		titles[strings.TrimPrefix(s.body, "message ")] = strings.TrimPrefix(s.header.Get("Title"), "title ")
		mu.Unlock()
	}
	for k, v := range titles {
		if k != v {
			t.Errorf("message %s came with title %s", k, v)
		}
	}
	if len(titles) != n {
		t.Errorf("%d distinct messages, want %d", len(titles), n)
	}
}

// useTelegramAPI points the Telegram sends of this test at addr, a fake of
// the Bot API; call it before newHarness, so that it is undone after the
// executor is closed.
func useTelegramAPI(t *testing.T, addr string) {
	t.Helper()
	old := telegramAPI
	telegramAPI = addr
	t.Cleanup(func() { telegramAPI = old })
}

// TestNotifyTelegram: the Bot API's sendMessage, once per chat, with the
// title in bold over the message as HTML; errors it answers are
// classified, and a network error — which shoutrrr's Telegram service
// reports as success — is retried.
func TestNotifyTelegram(t *testing.T) {
	const token = "110201543:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw"
	const okAnswer = `{"ok":true,"result":{"message_id":7,"date":1700000000,"chat":{"id":-1001234,"type":"group","title":"home"},"text":"x"}}`
	t.Run("request", func(t *testing.T) {
		f := newFakeService(t, answer{200, okAnswer})
		useTelegramAPI(t, f.srv.URL)
		h := newHarness(t, Config{})
		h.x.Do(notifyReq("tg", "telegram://"+token+"@telegram?chats=-1001234,@home_alerts:42&preview=no", "Kitchen <hot>", "31 °C & rising", 0))
		if done := h.rec.waitRule(t, "tg", 1)[0]; done.err != nil {
			t.Fatal(done.err)
		}
		for _, want := range []seen{
			{method: "POST", path: "/bot" + token + "/sendMessage", header: http.Header{"Content-Type": {"application/json"}, "User-Agent": {"Go-http-client/1.1"}},
				body: `{"chat_id":"-1001234","text":"\u003cb\u003eKitchen \u0026lt;hot\u0026gt;\u003c/b\u003e\n31 °C \u0026amp; rising","parse_mode":"HTML","disable_web_page_preview":true,"disable_notification":false}`},
			{method: "POST", path: "/bot" + token + "/sendMessage", header: http.Header{"Content-Type": {"application/json"}, "User-Agent": {"Go-http-client/1.1"}},
				body: `{"chat_id":"@home_alerts","message_thread_id":42,"text":"\u003cb\u003eKitchen \u0026lt;hot\u0026gt;\u003c/b\u003e\n31 °C \u0026amp; rising","parse_mode":"HTML","disable_web_page_preview":true,"disable_notification":false}`},
		} {
			if got := f.next(t); !reflect.DeepEqual(got, want) {
				t.Errorf("request:\n got %+v\nwant %+v", got, want)
			}
		}
	})
	t.Run("without a title, plain text", func(t *testing.T) {
		f := newFakeService(t, answer{200, okAnswer})
		useTelegramAPI(t, f.srv.URL)
		h := newHarness(t, Config{})
		h.x.Do(notifyReq("tg", "telegram://"+token+"@telegram?chats=-1001234", "", "31 °C & <rising>", 0))
		if done := h.rec.waitRule(t, "tg", 1)[0]; done.err != nil {
			t.Fatal(done.err)
		}
		if got, want := f.next(t).body, `{"chat_id":"-1001234","text":"31 °C \u0026 \u003crising\u003e","disable_web_page_preview":false,"disable_notification":false}`; got != want {
			t.Errorf("body:\n got %s\nwant %s", got, want)
		}
	})
	for _, tc := range []struct {
		name         string
		answers      []answer // nil: nothing listens
		wantAttempts int      // requests, when answers
		wantErr      string
	}{
		{"400 not retried", []answer{{400, `{"ok":false,"error_code":400,"description":"Bad Request: chat not found"}`}, {200, okAnswer}}, 1, "telegram answered 400 Bad Request: Bad Request: chat not found after 1 attempt"},
		{"429 retried", []answer{{429, `{"ok":false,"error_code":429,"description":"Too Many Requests: retry after 1","parameters":{"retry_after":1}}`}, {200, okAnswer}}, 2, ""},
		{"502 from a proxy retried", []answer{{502, `<html>bad gateway</html>`}, {200, okAnswer}}, 2, ""},
		{"network error retried", nil, 0, "connection refused after 3 attempts"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var f *fakeService
			if tc.answers != nil {
				f = newFakeService(t, tc.answers...)
				useTelegramAPI(t, f.srv.URL)
			} else {
				l, err := net.Listen("tcp", "127.0.0.1:0")
				if err != nil {
					t.Fatal(err)
				}
				useTelegramAPI(t, "http://"+l.Addr().String())
				l.Close()
			}
			h := newHarness(t, Config{})
			h.x.Do(notifyReq("tg", "telegram://"+token+"@telegram?chats=-1001234", "t", "m", 2))
			done := h.rec.waitRule(t, "tg", 1)[0]
			if f != nil && int(f.n.Load()) != tc.wantAttempts {
				t.Errorf("requests: got %d, want %d", f.n.Load(), tc.wantAttempts)
			}
			if tc.wantErr == "" {
				if done.err != nil {
					t.Errorf("outcome: got %v, want success", done.err)
				}
				return
			}
			if done.err == nil || !strings.HasSuffix(done.err.Error(), tc.wantErr) {
				t.Errorf("outcome: got %v, want …%s", done.err, tc.wantErr)
			}
			if strings.Contains(done.err.Error(), "AAHdqTcv") || strings.Contains(h.log.String(), "AAHdqTcv") {
				t.Errorf("the token is shown: %v\n%s", done.err, h.log.String())
			}
		})
	}
}

// newSilentListener is a server that accepts connections and never
// answers — hung, or a black hole behind a proxy. It closes the
// connections it holds when the test ends.
func newSilentListener(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var (
		mu    sync.Mutex
		conns []net.Conn
	)
	accepting := make(chan struct{})
	go func() {
		defer close(accepting)
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		_ = l.Close()
		<-accepting
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			_ = c.Close()
		}
	})
	return l.Addr().String()
}

// sendAllTo makes every request of notify's transport go to addr,
// whatever host it names, as if the name resolved there, without checking
// certificates: services with a fixed host (Teams, Slack, Discord,
// Pushover, Telegram) reach a local server. Call it before newHarness, so
// that it is undone after the executor is closed.
func sendAllTo(t *testing.T, addr string) {
	t.Helper()
	tr := &http.Transport{
		DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, network, addr)
		},
		TLSClientConfig: &tls.Config{InsecureSkipVerify: true}, //nolint:gosec // a test server
	}
	testTransport.Store(tr)
	t.Cleanup(func() {
		testTransport.Store(nil)
		tr.CloseIdleConnections()
	})
}

// entryOf returns the service entry kept for rawURL, failing the test
// when there is none.
func entryOf(t *testing.T, rawURL string) *notifyEntry {
	t.Helper()
	notifiers.mu.Lock()
	defer notifiers.mu.Unlock()
	e := notifiers.byURL[rawURL]
	if e == nil {
		t.Fatal("no service kept for the URL")
	}
	return e
}

// waitStopped waits until the send through e has ended and given back its
// slot, and fails the test if e was let go after abandonGrace instead:
// the send was not stopped by its attempt's end.
func waitStopped(t *testing.T, e *notifyEntry) {
	t.Helper()
	pollUntil(t, "the send given up on to end", func() bool {
		select {
		case e.lock <- struct{}{}:
			<-e.lock
			return true
		default:
			return false
		}
	})
	pollUntil(t, "every send slot to be free", func() bool { return len(notifySends) == 0 })
	select {
	case <-e.gone:
		t.Error("the send given up on was let go after its grace, not stopped")
	default:
	}
}

// httpService is a notification service over HTTP as the tests below
// reach it: at a local server, directly (url's host) or through sendAllTo
// (fixed), and what it answers when it works.
type httpService struct {
	name   string
	url    func(host string) string
	fixed  bool // the URL names the service's own host: sendAllTo, TLS
	status int
	body   string
}

const telegramOK = `{"ok":true,"result":{"message_id":7,"date":1700000000,"chat":{"id":-1001234,"type":"group","title":"home"},"text":"x"}}`

// Service URLs of the services with fixed hosts.
const (
	teamsURL    = "teams://11111111-4444-4444-8444-cccccccccccc@22222222-4444-4444-8444-cccccccccccc/33333333012222222222333333333344/44444444-4444-4444-8444-cccccccccccc/V2ESyij_gAljSoUQHvZoZYzlpAoAXExyOl26dlf1xHEx05?host=contoso.webhook.office.com"
	slackHook   = "slack://hook:WNA3PBYV6-F20DUQND3RQ-Webc4MAvoacrpPakR8phF0zi@webhook"
	slackBot    = "slack://xoxb:123456789012-1234567890123-4mt0t4l1YL3g1T5L4cK70k3N@C0123456789"
	discordURL  = "discord://token@123456789"
	pushoverURL = "pushover://shoutrrr:azGDORePK8gMaC0QOYAMyEEuzJnyUi@uQiRzpo4DXghDmr9QzzfQu27cmVRsG/?devices=phone"
	telegramURL = "telegram://110201543:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw@telegram?chats=-1001234"
)

// httpServices are the HTTP services whose sends can be stopped (all but
// Matrix).
var httpServices = []httpService{
	{"ntfy", func(h string) string { return "ntfy://" + h + "/kitchen-alerts?scheme=http" }, false, 200, ntfyOK},
	{"gotify", func(h string) string { return "gotify://" + h + "/" + gotifyPass + "?disabletls=yes" }, false, 200, gotifyOK},
	{"generic", func(h string) string { return "generic+http://" + h + "/hook" }, false, 200, `{}`},
	{"teams", func(string) string { return teamsURL }, true, 200, "1"},
	{"slack hook", func(string) string { return slackHook }, true, 200, "ok"},
	{"slack bot", func(string) string { return slackBot }, true, 200, `{"ok":true}`},
	{"discord", func(string) string { return discordURL }, true, 204, ""},
	{"pushover", func(string) string { return pushoverURL }, true, 200, `{"status":1,"request":"x"}`},
	{"telegram", func(string) string { return telegramURL }, true, 200, telegramOK},
}

// serve starts the local server of s with handler and returns the host
// to write in its URL; for a fixed service it sends every request there.
// Handlers that wait must also end on ending, closed when the test ends
// (the server's Close waits for them). Call it before newHarness.
func (s httpService) serve(t *testing.T, handler func(w http.ResponseWriter, r *http.Request, ending <-chan struct{})) string {
	t.Helper()
	ending := make(chan struct{})
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { handler(w, r, ending) })
	var srv *httptest.Server
	if s.fixed {
		srv = httptest.NewTLSServer(h)
		sendAllTo(t, srv.Listener.Addr().String())
	} else {
		srv = httptest.NewServer(h)
	}
	t.Cleanup(srv.Close)
	t.Cleanup(func() { close(ending) }) // first
	return srv.Listener.Addr().String()
}

// TestNotifyHungSendsExhaustSlots: a send given up at its timeout held
// one of the process's maxNotifySends slots until shoutrrr's Send
// returned — never, for the generic service and Teams (no timeout) — so
// 64 hung sends stopped every notification of the process. Sends now end
// with their attempt.
func TestNotifyHungSendsExhaustSlots(t *testing.T) {
	silent := newSilentListener(t)
	f := newFakeService(t, answer{http.StatusOK, ntfyOK})
	h := newHarness(t, Config{WebhookConcurrency: 16})
	for i := range maxNotifySends {
		req := notifyReq("hung", fmt.Sprintf("generic+http://%s/hook%d", silent, i), "", "m", 0)
		req.Action.(*Notify).Timeout = 100 * time.Millisecond
		h.x.Do(req)
	}
	for _, d := range h.rec.waitRule(t, "hung", maxNotifySends) {
		if d.err == nil {
			t.Fatal("a send to a server that never answers succeeded")
		}
	}
	req := notifyReq("healthy", "ntfy://"+f.host+"/kitchen-alerts?scheme=http", "t", "m", 0)
	req.Action.(*Notify).Timeout = 2 * time.Second
	h.x.Do(req)
	if d := h.rec.waitRule(t, "healthy", 1)[0]; d.err != nil {
		t.Errorf("a notification to a healthy service after %d hung ones: %v", maxNotifySends, d.err)
	}
	pollUntil(t, "every send slot to be free", func() bool { return len(notifySends) == 0 })
}

// TestNotifyHungSendWedgesURL: a send given up at its timeout kept its
// URL's lock until shoutrrr's Send returned, so later sends to the URL
// waited for it although the server answered again. For each HTTP
// service: the first request hangs until the client goes, the second is
// answered.
func TestNotifyHungSendWedgesURL(t *testing.T) {
	for _, s := range httpServices {
		t.Run(s.name, func(t *testing.T) {
			var n atomic.Int32
			host := s.serve(t, func(w http.ResponseWriter, r *http.Request, ending <-chan struct{}) {
				_, _ = io.Copy(io.Discard, r.Body)
				if n.Add(1) == 1 {
					select { // hangs until the client goes
					case <-r.Context().Done():
					case <-ending:
					}
					return
				}
				w.WriteHeader(s.status)
				_, _ = io.WriteString(w, s.body)
			})
			h := newHarness(t, Config{})
			u := s.url(host)
			req := notifyReq("hung", u, "t", "m", 0)
			req.Action.(*Notify).Timeout = 300 * time.Millisecond
			h.x.Do(req)
			if d := h.rec.waitRule(t, "hung", 1)[0]; d.err == nil {
				t.Fatal("the hung send succeeded")
			}
			waitStopped(t, entryOf(t, u))
			req = notifyReq("next", u, "t", "m", 0)
			req.Action.(*Notify).Timeout = 5 * time.Second
			h.x.Do(req)
			if d := h.rec.waitRule(t, "next", 1)[0]; d.err != nil {
				t.Errorf("the next send to the URL: %v", d.err)
			}
			if got := n.Load(); got != 2 {
				t.Errorf("the server got %d requests, want 2", got)
			}
		})
	}
}

// newStuckSMTPServer is a real SMTP server (go-smtp) that greets and then
// hangs: at EHLO, or in DATA once it has the whole mail, until the test
// ends.
func newStuckSMTPServer(t *testing.T, at string) string {
	t.Helper()
	release := make(chan struct{})
	srv := gosmtp.NewServer(gosmtp.BackendFunc(func(*gosmtp.Conn) (gosmtp.Session, error) {
		if at == "EHLO" {
			<-release
		}
		return &stuckSession{release: release}, nil
	}))
	srv.Domain = "localhost"
	srv.AllowInsecureAuth = true
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan struct{})
	go func() {
		defer close(served)
		_ = srv.Serve(l)
	}()
	t.Cleanup(func() {
		close(release)
		_ = srv.Close()
		<-served
	})
	return l.Addr().String()
}

type stuckSession struct{ release chan struct{} }

func (s *stuckSession) Mail(string, *gosmtp.MailOptions) error { return nil }
func (s *stuckSession) Rcpt(string, *gosmtp.RcptOptions) error { return nil }
func (s *stuckSession) Reset()                                 {}
func (s *stuckSession) Logout() error                          { return nil }

func (s *stuckSession) Data(r io.Reader) error {
	_, _ = io.Copy(io.Discard, r)
	<-s.release // the mail is taken; the reply never comes
	return nil
}

// TestNotifySMTPServerNeverGreets: shoutrrr's SMTP timeout covers only
// the dial, so a server that accepted and then said nothing held its send,
// its URL and a slot forever. The conversation now ends with the attempt,
// wherever the server stops: before its greeting, at EHLO, or after the
// mail's DATA (where the mail went out although the attempt failed: see
// sendSMTP).
func TestNotifySMTPServerNeverGreets(t *testing.T) {
	for _, tc := range []struct{ name, addr string }{
		{"never greets", newSilentListener(t)},
		{"never answers EHLO", newStuckSMTPServer(t, "EHLO")},
		{"never answers the end of DATA", newStuckSMTPServer(t, "DATA")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, Config{})
			u := "smtp://" + tc.addr + "/?from=rules@example.com&to=ops@example.com&encryption=None&usestarttls=no&auth=None"
			req := notifyReq("mail", u, "t", "m", 0)
			req.Action.(*Notify).Timeout = 300 * time.Millisecond
			h.x.Do(req)
			if d := h.rec.waitRule(t, "mail", 1)[0]; d.err == nil || !strings.Contains(d.err.Error(), "within 300ms") {
				t.Errorf("outcome: got %v, want no response within 300ms", d.err)
			}
			waitStopped(t, entryOf(t, u))
		})
	}
}

// TestNotifyGivenUpSendHoldsSlot: a send that cannot be stopped (Matrix,
// whose client shoutrrr keeps to itself, here logging in at a server that
// never answers) gives its slot back after abandonGrace, and its service
// is let go, so that the next send to its URL does not wait for it.
func TestNotifyGivenUpSendHoldsSlot(t *testing.T) {
	var e *notifyEntry
	t.Cleanup(func() { // once the listener has closed its connections: the send ends
		if e == nil {
			return
		}
		pollUntil(t, "the abandoned Matrix send to end", func() bool {
			select {
			case e.lock <- struct{}{}:
				<-e.lock
				return true
			default:
				return false
			}
		})
	})
	silent := newSilentListener(t)
	h := newHarness(t, Config{})
	u := "matrix://bot:pa55word@" + silent + "/?rooms=!room:example.org&disabletls=yes"
	req := notifyReq("matrix", u, "t", "m", 0)
	req.Action.(*Notify).Timeout = 200 * time.Millisecond
	h.x.Do(req)
	h.rec.waitRule(t, "matrix", 1)
	e = entryOf(t, u)
	given := time.Now()
	pollUntil(t, "the slot to be given back", func() bool { return len(notifySends) == 0 })
	if took := time.Since(given); took > abandonGrace+time.Second {
		t.Errorf("the slot was given back %v after the attempt ended, want about %v", took, abandonGrace)
	}
	select {
	case <-e.gone:
	default:
		t.Fatal("the service of the send given up on is still kept")
	}
	lctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	next, err := notifiers.lock(lctx, u)
	if err != nil {
		t.Fatalf("the next send to the URL waits for the one given up on: %v", err)
	}
	next.unlock()
}

// TestNotifySlowServiceDeliversTwice: a send given up at its timeout ran
// on, so a slow but working service got the notification from it and
// again from the retries, while the outcome said it failed. A send given
// up is now aborted: a server that stops work on a request its client
// left never completes one.
func TestNotifySlowServiceDeliversTwice(t *testing.T) {
	for _, s := range httpServices {
		t.Run(s.name, func(t *testing.T) {
			var started, completed, inFlight atomic.Int32
			host := s.serve(t, func(w http.ResponseWriter, r *http.Request, _ <-chan struct{}) {
				inFlight.Add(1)
				defer inFlight.Add(-1)
				started.Add(1)
				_, _ = io.Copy(io.Discard, r.Body)
				select {
				case <-time.After(600 * time.Millisecond): // slow, but it works
					completed.Add(1)
					w.WriteHeader(s.status)
					_, _ = io.WriteString(w, s.body)
				case <-r.Context().Done():
				}
			})
			h := newHarness(t, Config{})
			req := notifyReq("slow", s.url(host), "t", "m", 1)
			req.Action.(*Notify).Timeout = 300 * time.Millisecond
			h.x.Do(req)
			d := h.rec.waitRule(t, "slow", 1)[0]
			pollUntil(t, "the server to end its requests", func() bool { return inFlight.Load() == 0 })
			if started.Load() == 0 {
				t.Fatal("no request reached the server")
			}
			if d.err == nil || completed.Load() != 0 {
				t.Errorf("outcome %v, %d of %d requests completed by the server; want a failure, none completed", d.err, completed.Load(), started.Load())
			}
		})
	}
}

// TestNotifyWaitIsNoTimeout: an attempt that ran out of time waiting for
// its turn (the previous send to its URL, or a slot) sent nothing, and
// says so: its error does not wrap context.DeadlineExceeded, which
// reads "no response" (remote.go). A send that got no answer does.
func TestNotifyWaitIsNoTimeout(t *testing.T) {
	silent := newSilentListener(t)
	attempt := func(rawURL string) error {
		ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
		defer cancel()
		return (&Notify{URL: rawURL, Message: "m"}).attempt(ctx, nil).err
	}
	t.Run("the previous send to the URL", func(t *testing.T) {
		u := "generic+http://" + silent + "/busy"
		e, err := notifiers.lock(context.Background(), u)
		if err != nil {
			t.Fatal(err)
		}
		defer e.unlock()
		err = attempt(u)
		if want := "waiting for the previous notification to this URL: not sent within 100ms"; err == nil || err.Error() != want || errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("got %v, want %q not wrapping context.DeadlineExceeded", err, want)
		}
	})
	t.Run("a slot", func(t *testing.T) {
		for range maxNotifySends {
			notifySends <- struct{}{}
		}
		defer func() {
			for range maxNotifySends {
				<-notifySends
			}
		}()
		err := attempt("generic+http://" + silent + "/slots")
		if want := "waiting for other notifications to end: not sent within 100ms"; err == nil || err.Error() != want || errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("got %v, want %q not wrapping context.DeadlineExceeded", err, want)
		}
	})
	t.Run("no answer", func(t *testing.T) {
		u := "generic+http://" + silent + "/hung"
		if err := attempt(u); !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("got %v, want it to wrap context.DeadlineExceeded", err)
		}
		waitStopped(t, entryOf(t, u))
	})
	t.Run("Close gave up", func(t *testing.T) {
		u := "generic+http://" + silent + "/closed"
		e, err := notifiers.lock(context.Background(), u)
		if err != nil {
			t.Fatal(err)
		}
		defer e.unlock()
		ctx, cancel := context.WithCancel(context.Background())
		stop := time.AfterFunc(20*time.Millisecond, cancel) // while the attempt waits
		defer stop.Stop()
		err = (&Notify{URL: u, Message: "m"}).attempt(ctx, nil).err
		if !errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("got %v, want it to wrap context.Canceled", err)
		}
	})
}

// TestNotifyIdleConnectionsOutliveClose: the keep-alive connections of
// notify's HTTP clients stayed open, with their goroutines, after the
// executor was closed. closeNotifyIdle, which Close calls, closes them.
func TestNotifyIdleConnectionsOutliveClose(t *testing.T) {
	ntfySrv := newFakeService(t, answer{http.StatusOK, ntfyOK})
	gotifySrv := newFakeService(t, answer{http.StatusOK, gotifyOK})
	genericSrv := newFakeService(t, answer{http.StatusOK, `{}`})
	closeNotifyIdle() // those of earlier tests
	before := runtime.NumGoroutine()

	h := newRecorder()
	x := NewExecutor(Config{Reporter: h})
	for i, u := range []string{
		"ntfy://" + ntfySrv.host + "/kitchen-alerts?scheme=http",
		"gotify://" + gotifySrv.host + "/" + gotifyPass + "?disabletls=yes",
		"generic+http://" + genericSrv.host + "/hook",
	} {
		x.Do(notifyReq(fmt.Sprint("r", i), u, "t", "m", 0))
	}
	for i := range 3 {
		if d := h.waitRule(t, fmt.Sprint("r", i), 1)[0]; d.err != nil {
			t.Fatal(d.err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	defer cancel()
	if err := x.Close(ctx); err != nil {
		t.Fatal(err)
	}
	pollUntil(t, fmt.Sprintf("goroutines back to %d", before), func() bool { return runtime.NumGoroutine() <= before })
}

// TestNotifyErrorsSayWebhook: notify's errors said "webhook" (shoutrrr's
// texts for the generic service, Slack and Teams), which reads as the
// webhook action. They name the service, or the server.
func TestNotifyErrorsSayWebhook(t *testing.T) {
	for _, tc := range []struct {
		service httpService
		status  int
		body    string
		want    string
	}{
		{httpServices[2], 404, "", "the server answered 404 Not Found after 1 attempt"},
		{httpServices[3], 400, "Summary or Text is required.", "teams answered 400 Bad Request after 1 attempt"},
		{httpServices[4], 404, "no_service", "slack answered 404 Not Found: no_service after 1 attempt"},
		{httpServices[4], 200, "invalid_payload", "slack answered: invalid_payload after 2 attempts"},
		{httpServices[5], 200, `{"ok":false,"error":"channel_not_found"}`, "slack answered: channel_not_found after 2 attempts"},
	} {
		t.Run(tc.service.name+" "+tc.body, func(t *testing.T) {
			host := tc.service.serve(t, func(w http.ResponseWriter, _ *http.Request, _ <-chan struct{}) {
				w.WriteHeader(tc.status)
				_, _ = io.WriteString(w, tc.body)
			})
			h := newHarness(t, Config{})
			u := tc.service.url(host)
			h.x.Do(notifyReq("r", u, "t", "m", 1))
			d := h.rec.waitRule(t, "r", 1)[0]
			if d.err == nil || !strings.HasSuffix(d.err.Error(), tc.want) {
				t.Errorf("outcome: got %v, want …%s", d.err, tc.want)
			}
			for what, s := range map[string]string{"outcome": fmt.Sprint(d.err), "log": h.log.String()} {
				s = strings.ReplaceAll(s, RedactServiceURL(u), "URL") // the user's URL may say it: slack://…@webhook
				if strings.Contains(strings.ToLower(s), "webhook") {
					t.Errorf("%s says webhook: %s", what, s)
				}
			}
		})
	}
}

// TestNotifyRequestsAsShoutrrr: the requests notify makes itself, so that
// they end with their attempt (generic, Teams, Slack), are the ones
// shoutrrr's own Send makes for the same URL, title and message.
func TestNotifyRequestsAsShoutrrr(t *testing.T) {
	got := make(chan seen, 1)
	record := func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		hd := r.Header.Clone()
		hd.Del("Accept-Encoding")
		hd.Del("Content-Length")
		hd.Set("Host", r.Host)
		got <- seen{r.Method, r.URL.RequestURI(), hd, string(body)}
		switch {
		case strings.HasPrefix(r.URL.Path, "/api/chat."):
			_, _ = io.WriteString(w, `{"ok":true}`)
		case strings.HasPrefix(r.URL.Path, "/services/"):
			_, _ = io.WriteString(w, "ok")
		}
	}
	srv := httptest.NewTLSServer(http.HandlerFunc(record))
	defer srv.Close()
	sendAllTo(t, srv.Listener.Addr().String())

	// shoutrrr's generic, Teams and Slack send with http.DefaultClient
	// (or a client on http.DefaultTransport): this test alone points it at
	// srv too, while no send runs.
	pollUntil(t, "no notification to run", func() bool { return len(notifySends) == 0 })
	oldDefault := http.DefaultTransport
	defaultTr := testTransport.Load().Clone()
	http.DefaultTransport = defaultTr
	defer func() {
		http.DefaultTransport = oldDefault
		defaultTr.CloseIdleConnections()
	}()

	const host = "hooks.example.org"
	for _, tc := range []struct {
		url, title, message string
	}{
		{"generic+https://" + host + "/plain/hook", "Kitchen hot", "31 °C\nin the kitchen"},
		{"generic+https://" + host + "/plain/hook", "", "31 °C"},
		{"generic://" + host + "/hooks/alert?template=json", "Kitchen hot", "31 °C"},
		{"generic://" + host + "/hooks/alert?template=json&titlekey=subject&messagekey=text&method=PUT&contenttype=application/alert%2Bjson&$room=kitchen&@Authorization=Bearer+abc&@XCustomHeader=1", "Kitchen hot", "31 °C"},
		{"generic+https://" + host + "/q/hook?site=home&template=json", "Kitchen hot", "31 °C"},
		{teamsURL, "Kitchen hot", "31 °C\nin the kitchen"},
		{teamsURL + "&color=ff0000", "", "a first line longer than twenty bytes\nsecond"},
		{slackHook + "?color=good&botname=rules&icon=:fire:", "Kitchen hot", "31 °C\nin the kitchen"},
		{slackBot + "?thread_ts=1700000000.000100&icon=https://example.org/i.png", "", "31 °C"},
	} {
		t.Run(RedactServiceURL(tc.url), func(t *testing.T) {
			svc, err := newService(tc.url, false)
			if err != nil {
				t.Fatal(err)
			}
			params := types.Params{}
			if tc.title != "" {
				params.SetTitle(tc.title)
			}
			if err := svc.Send(tc.message, &params); err != nil {
				t.Fatalf("shoutrrr's Send: %v", err)
			}
			want := <-got
			e := &notifyEntry{url: tc.url, lock: make(chan struct{}, 1), gone: make(chan struct{})}
			if res := e.send(context.Background(), &Notify{URL: tc.url, Title: tc.title, Message: tc.message}); res.err != nil {
				t.Fatalf("notify's send: %v", res.err)
			}
			if g := <-got; !reflect.DeepEqual(g, want) {
				t.Errorf("request:\n got %+v\nwant %+v", g, want)
			}
		})
	}
}
