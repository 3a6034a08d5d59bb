package actions

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/nicholas-fedor/shoutrrr/pkg/format"
	"github.com/nicholas-fedor/shoutrrr/pkg/services/chat/discord"
	"github.com/nicholas-fedor/shoutrrr/pkg/services/chat/slack"
	"github.com/nicholas-fedor/shoutrrr/pkg/services/chat/teams"
	"github.com/nicholas-fedor/shoutrrr/pkg/services/push/gotify"
	"github.com/nicholas-fedor/shoutrrr/pkg/services/push/ntfy"
	"github.com/nicholas-fedor/shoutrrr/pkg/services/push/pushover"
	"github.com/nicholas-fedor/shoutrrr/pkg/services/specialized/generic"
	"github.com/nicholas-fedor/shoutrrr/pkg/types"
)

// This file sends notifications over HTTP so that a send ends with its
// attempt's context: shoutrrr's Send takes none, and some of its services
// send with http.DefaultClient, which has no timeout at all (generic,
// Teams, a Slack bot). Where shoutrrr lets us set a service's client we
// do (bindClients); where it does not, we make the service's request
// ourselves, from shoutrrr's parsed configuration and payload builders,
// so the request stays the one shoutrrr makes.

// bindClients gives svc, for one send, HTTP clients whose requests end
// with ctx, where shoutrrr lets us set them (ntfy, Pushover, Discord and
// its retry waits, Gotify), and returns what undoes it.
func bindClients(ctx context.Context, svc types.Service) func() {
	switch s := svc.(type) {
	case *ntfy.Service:
		// ntfy adds each send's headers (Title, …) to those its client
		// keeps, and sends the first of each: a new client per send.
		s.SetHTTPClient(boundClient(ctx, notifyTransport(s.Config.DisableTLSVerification)))
	case *pushover.Service:
		old := s.Client
		s.Client = boundClient(ctx, notifyTransport(false))
		return func() { s.Client = old }
	case *discord.Service:
		oldClient, oldSleeper := s.HTTPClient, s.Sleeper
		s.HTTPClient, s.Sleeper = boundClient(ctx, notifyTransport(false)), ctxSleeper{ctx}
		return func() { s.HTTPClient, s.Sleeper = oldClient, oldSleeper }
	case *gotify.Service:
		// Gotify's client has its own transport (its TLS options): bind
		// that one.
		if c := s.GetHTTPClient(); c != nil {
			old := c.Transport
			c.Transport = boundTransport{ctx: ctx, base: old}
			return func() { c.Transport = old }
		}
	}
	return func() {}
}

// boundClient returns a client whose requests go through base and end
// with ctx.
func boundClient(ctx context.Context, base http.RoundTripper) *http.Client {
	return &http.Client{Transport: boundTransport{ctx: ctx, base: base}}
}

// boundTransport sends every request with ctx in place of the request's
// own context, for services whose requests we do not make: ctx, the
// attempt's, bounds them (their own timeouts are not shorter than an
// attempt's, which is bounded).
type boundTransport struct {
	ctx  context.Context
	base http.RoundTripper // nil: http.DefaultTransport
}

func (t boundTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	base := t.base
	if base == nil {
		base = http.DefaultTransport
	}
	return base.RoundTrip(req.WithContext(t.ctx))
}

// CloseIdleConnections closes those of the transport it wraps.
func (t boundTransport) CloseIdleConnections() {
	if c, ok := t.base.(interface{ CloseIdleConnections() }); ok {
		c.CloseIdleConnections()
	}
}

// ctxSleeper is a discord.Sleeper whose waits end with ctx, so that
// Discord's own retries stop with the attempt.
type ctxSleeper struct{ ctx context.Context }

func (s ctxSleeper) Sleep(d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-s.ctx.Done():
	}
}

var (
	_ discord.Sleeper    = ctxSleeper{}
	_ discord.HTTPClient = (*http.Client)(nil)
)

// withTitle applies a send's title to cfg as shoutrrr's services apply
// their params (the title sets the key "title" of cfg, where it has one).
func withTitle(cfg types.ServiceConfig, title string) {
	if title == "" {
		return
	}
	params := types.Params{}
	params.SetTitle(title)
	pkr := format.NewPropKeyResolver(cfg)
	_ = pkr.UpdateConfigFromParams(cfg, &params) // shoutrrr logs this error and sends anyway
}

// notifyDo sends req through notify's client and returns the answer and
// at most maxResponseBody bytes of its body. Its error holds no URL: the
// action's error names it, redacted.
func notifyDo(req *http.Request) (*http.Response, []byte, error) {
	resp, err := notifyClient(false).Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) { // its text holds the URL
			err = ue.Err
		}
		return nil, nil, err
	}
	body, _ := io.ReadAll(io.LimitReader(resp.Body, maxResponseBody))
	_ = resp.Body.Close()
	return resp, body, nil
}

// answeredStatus returns the error of an answer: service answered status.
func answeredStatus(service string, resp *http.Response) error {
	return fmt.Errorf("%s answered %w", service, &StatusError{Code: resp.StatusCode, Status: resp.Status})
}

// sendGeneric sends message as shoutrrr's generic service does — the
// same URL and method, payload (text, JSON or template, with the URL's
// $extra data), Content-Type and Accept, and the URL's @headers — with a
// request bound to ctx. An answer below 400 is a success.
func sendGeneric(ctx context.Context, svc *generic.Service, title, message string) error {
	cfg := *svc.Config
	withTitle(&cfg, title)
	params := types.Params{}
	if title != "" {
		params[cfg.TitleKey] = title
	}
	params[cfg.MessageKey] = message // the message wins where both keys are one
	payload, err := svc.GetPayload(&cfg, params)
	if err != nil {
		return fmt.Errorf("making the payload: %w", err)
	}
	req, err := http.NewRequestWithContext(ctx, cfg.RequestMethod, cfg.WebhookURL().String(), payload)
	if err != nil {
		return errors.New("invalid request method or URL")
	}
	contentType := cfg.ContentType
	if cfg.Template == "" {
		contentType = "text/plain"
	}
	req.Header.Set("Content-Type", contentType)
	req.Header.Set("Accept", contentType)
	// The URL's @headers, as shoutrrr writes its configuration back:
	// @Name=value, the name in header form.
	for key, values := range cfg.GetURL().Query() {
		if len(key) > 1 && key[0] == '@' && len(values) > 0 {
			req.Header.Set(key[1:], values[0])
		}
	}
	resp, _, err := notifyDo(req)
	if err != nil {
		return fmt.Errorf("sending: %w", err)
	}
	if resp.StatusCode >= http.StatusBadRequest {
		return answeredStatus("the server", resp)
	}
	return nil
}

// teamsSection and teamsCard are the message card shoutrrr's Teams
// service posts: the same fields in the same order, those it leaves
// empty left out.
type teamsSection struct {
	Text string `json:"text,omitempty"`
}

type teamsCard struct {
	CardType   string         `json:"@type"`
	Context    string         `json:"@context"`
	ThemeColor string         `json:"themeColor,omitempty"`
	Summary    string         `json:"summary"`
	Title      string         `json:"title,omitempty"`
	Markdown   bool           `json:"markdown"`
	Sections   []teamsSection `json:"sections"`
}

// sendTeams posts message to Teams as shoutrrr's Teams service does — a
// message card, a section per line, the title (or the first line, cut)
// as summary, to the address the URL's parts make — with a request bound
// to ctx. A 2xx answer is a success.
func sendTeams(ctx context.Context, config *teams.Config, title, message string) error {
	cfg := *config
	withTitle(&cfg, title)
	lines := strings.Split(message, "\n")
	card := teamsCard{
		CardType: "MessageCard", Context: "http://schema.org/extensions", Markdown: true,
		Title: cfg.Title, ThemeColor: cfg.Color, Summary: cfg.Title,
		Sections: make([]teamsSection, 0, len(lines)),
	}
	for _, line := range lines {
		card.Sections = append(card.Sections, teamsSection{Text: line})
	}
	if card.Summary == "" && len(card.Sections) > 0 {
		card.Summary = card.Sections[0].Text
		if len(card.Summary) > teams.MaxSummaryLength {
			card.Summary = card.Summary[:teams.TruncatedSummaryLen] // shoutrrr's cut, byte for byte
		}
	}
	body, err := json.Marshal(card)
	if err != nil {
		return fmt.Errorf("making the payload: %w", err)
	}
	if cfg.Host == "" {
		return errors.New("teams URL: no host")
	}
	postURL := teams.BuildWebhookURL(cfg.Host, cfg.Group, cfg.Tenant, cfg.AltID, cfg.GroupOwner, cfg.ExtraID)
	if teams.ValidateWebhookURL(postURL) != nil {
		return errors.New("teams URL: its parts make no Teams address")
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, postURL, bytes.NewReader(body))
	if err != nil {
		return errors.New("teams URL: its parts make no Teams address")
	}
	req.Header.Set("Content-Type", "application/json")
	resp, _, err := notifyDo(req)
	if err != nil {
		return fmt.Errorf("sending to Teams: %w", err)
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return answeredStatus("teams", resp)
	}
	return nil
}

// slackAPI is the endpoint of Slack's chat.postMessage, where a bot's
// notification goes.
const slackAPI = "https://slack.com/api/chat.postMessage"

// sendSlack posts message to Slack as shoutrrr's Slack service does —
// its JSON payload, to the bot API with the token as bearer, or to the
// incoming-hook address the token makes — with a request bound to ctx.
func sendSlack(ctx context.Context, config *slack.Config, title, message string) error {
	cfg := *config
	withTitle(&cfg, title)
	payload := slack.CreateJSONPayload(&cfg, message)
	if cfg.Token.IsAPIToken() {
		body, err := json.MarshalIndent(payload, "", "") // as shoutrrr's JSON client writes it
		if err != nil {
			return fmt.Errorf("making the payload: %w", err)
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, slackAPI, bytes.NewReader(body))
		if err != nil {
			return fmt.Errorf("making the request: %w", err)
		}
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", cfg.Token.Authorization())
		resp, answer, err := notifyDo(req)
		if err != nil {
			return fmt.Errorf("sending to Slack: %w", err)
		}
		if resp.StatusCode >= http.StatusBadRequest {
			return answeredStatus("slack", resp)
		}
		var r slack.APIResponse
		if err := json.Unmarshal(answer, &r); err != nil {
			return fmt.Errorf("slack answered %s, not its JSON", resp.Status)
		}
		if !r.Ok {
			if r.Error == "" {
				r.Error = "an unknown error"
			}
			return fmt.Errorf("slack answered: %s", r.Error)
		}
		return nil
	}
	body, err := json.Marshal(payload)
	if err != nil {
		return fmt.Errorf("making the payload: %w", err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, cfg.Token.WebhookURL(), bytes.NewReader(body))
	if err != nil {
		return errors.New("slack URL: its token makes no Slack address")
	}
	req.Header.Set("Content-Type", "application/json")
	resp, answer, err := notifyDo(req)
	if err != nil {
		return fmt.Errorf("sending to Slack: %w", err)
	}
	switch text := string(answer); {
	case resp.StatusCode >= http.StatusBadRequest && text != "":
		return fmt.Errorf("%w: %s", answeredStatus("slack", resp), oneLine(text))
	case resp.StatusCode >= http.StatusBadRequest, text == "" && resp.StatusCode != http.StatusOK:
		return answeredStatus("slack", resp)
	case text == "", text == "ok":
		return nil
	default:
		return fmt.Errorf("slack answered: %s", oneLine(text))
	}
}
