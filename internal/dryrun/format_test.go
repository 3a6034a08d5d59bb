package dryrun

import (
	"bytes"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/mqtt-rules/mqtt-rules/actions"
)

func TestLine(t *testing.T) {
	for _, tc := range []struct {
		name string
		req  actions.Request
		want string
	}{
		{"publish", actions.Request{Kind: actions.KindPublish, Action: &actions.Publish{Topic: "a/b", Payload: []byte(`{"v":1}`), QoS: 1, Retain: true}},
			`publish a/b qos=1 retain=true payload={"v":1}`},
		{"empty payload", actions.Request{Kind: actions.KindPublish, Action: &actions.Publish{Topic: "a"}},
			`publish a qos=0 retain=false payload=""`},
		{"binary payload", actions.Request{Kind: actions.KindPublish, Action: &actions.Publish{Topic: "a", Payload: []byte{0xff, 0}}},
			`publish a qos=0 retain=false payload="\xff\x00"`},
		{"multiline payload", actions.Request{Kind: actions.KindPublish, Action: &actions.Publish{Topic: "a", Payload: []byte("x\ny")}},
			`publish a qos=0 retain=false payload="x\ny"`},
		{"final line break", actions.Request{Kind: actions.KindPublish, Action: &actions.Publish{Topic: "a", Payload: []byte("{}\n")}},
			`publish a qos=0 retain=false payload={}⏎`},
		{"webhook redacted", actions.Request{Kind: actions.KindWebhook, Action: &actions.Webhook{
			Method: "POST", URL: "https://u:pw@h.example/x?token=abc&room=k",
			Header: http.Header{"Authorization": {"Bearer s3cret"}, "X-Room": {"k"}}, Body: []byte("b"),
		}}, `webhook POST https://u:xxxxx@h.example/x?token=[REDACTED]&room=k headers={Authorization: [REDACTED], X-Room: k} body=b`},
		{"webhook without headers", actions.Request{Kind: actions.KindWebhook, Action: &actions.Webhook{Method: "GET", URL: "http://h/"}},
			`webhook GET http://h/ body=""`},
		{"log", actions.Request{Kind: actions.KindLog, Action: &actions.Log{Message: "hot: 31 °C", Level: slog.LevelWarn}},
			`log warn: hot: 31 °C`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := Line(tc.req); got != tc.want {
				t.Errorf("Line =\n  %s\nwant\n  %s", got, tc.want)
			}
		})
	}
}

func TestFull(t *testing.T) {
	var b bytes.Buffer
	Full(&b, "  ", actions.Request{Kind: actions.KindPublish, Action: &actions.Publish{Topic: "a/b", Payload: []byte("line 1\nline 2\n"), QoS: 2}})
	Full(&b, "  ", actions.Request{Kind: actions.KindWebhook, Action: &actions.Webhook{
		Method: "PUT", URL: "https://h.example/?apikey=k", Header: http.Header{"Cookie": {"c=1"}, "Accept": {"*/*"}},
		Timeout: 5 * time.Second, Retries: 3,
	}})
	Full(&b, "  ", actions.Request{Kind: actions.KindLog, Action: &actions.Log{Message: "m", Level: slog.LevelError}})
	want := `  publish  a/b  qos 2  retain false
           line 1
           line 2
  webhook  PUT https://h.example/?apikey=[REDACTED]  timeout 5s  retries 3
           Accept: */*
           Cookie: [REDACTED]
           (empty)
  log      error  m
`
	if b.String() != want {
		t.Errorf("Full =\n%s\nwant\n%s", b.String(), want)
	}
	if strings.Contains(b.String(), "c=1") {
		t.Error("a secret header is shown")
	}
}

func TestFormatDuration(t *testing.T) {
	for d, want := range map[time.Duration]string{
		0:                                "0s",
		30 * time.Second:                 "30s",
		5 * time.Minute:                  "5m",
		90 * time.Minute:                 "1h30m",
		2 * time.Hour:                    "2h",
		2*time.Hour + time.Second:        "2h0m1s",
		1500 * time.Millisecond:          "1.5s",
		4*time.Minute + 59*time.Second:   "4m59s",
		250 * time.Millisecond:           "250ms",
		time.Hour + 500*time.Millisecond: "1h0m0.5s",
	} {
		if got := FormatDuration(d); got != want {
			t.Errorf("FormatDuration(%v) = %q, want %q", d, got, want)
		}
	}
}
