package actions

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	netsmtp "net/smtp"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/nicholas-fedor/shoutrrr/pkg/services/email/smtp"
)

// sendSMTP sends message as mail the way shoutrrr's smtp service does —
// the same conversation (EHLO, STARTTLS when offered, AUTH, then MAIL,
// RCPT and DATA per recipient, QUIT), headers and body, and the same
// error texts — but on a connection we dial with ctx, whose reads and
// writes fail once ctx ends: shoutrrr's own timeout covers only the dial,
// so a server that accepts and never greets would hold its send forever.
// title, when set, is the subject, already encoded for a header.
//
// A send stopped in the middle is aborted like an HTTP one, with one case
// that cannot be undone: if ctx ends after the server took the end of a
// mail's DATA and before its reply arrived, the mail went out though the
// attempt failed, and a retry sends it again (at least once).
func sendSMTP(ctx context.Context, svc *smtp.Service, title, message string) (err error) {
	cfg := svc.Config.Clone()
	withTitle(&cfg, title)
	cfg.FixEmailTags()
	implicitTLS := cfg.Encryption == smtp.EncImplicitTLS || cfg.Encryption == smtp.EncAuto && cfg.Port == smtp.ImplicitTLSPort

	dialCtx := ctx
	if cfg.Timeout > 0 { // the URL's timeout bounds the dial, as in shoutrrr
		var cancel context.CancelFunc
		dialCtx, cancel = context.WithTimeout(ctx, cfg.Timeout)
		defer cancel()
	}
	addr := net.JoinHostPort(cfg.Host, strconv.Itoa(int(cfg.Port)))
	var conn net.Conn
	if implicitTLS {
		d := &tls.Dialer{Config: &tls.Config{
			ServerName:         cfg.Host,
			MinVersion:         tls.VersionTLS12,
			InsecureSkipVerify: cfg.SkipTLSVerify, //nolint:gosec // the URL asks for it: skiptlsverify=yes
		}}
		conn, err = d.DialContext(dialCtx, "tcp", addr)
	} else {
		conn, err = (&net.Dialer{}).DialContext(dialCtx, "tcp", addr)
	}
	if err != nil {
		return fmt.Errorf("error getting SMTP client: error connecting to server: %w", err)
	}
	// A deadline in the past fails the read or write under way, and every
	// later one: the conversation ends with ctx. Its error then says so.
	stop := context.AfterFunc(ctx, func() { _ = conn.SetDeadline(time.Unix(1, 0)) })
	defer func() {
		if !stop() && err != nil {
			err = fmt.Errorf("%w (%w)", err, ctx.Err())
		}
		_ = conn.Close()
	}()

	c, err := netsmtp.NewClient(conn, cfg.Host) // reads the greeting
	if err != nil {
		return fmt.Errorf("error getting SMTP client: error creating smtp client: %w", err)
	}
	clientHost := cfg.ClientHost
	if clientHost == "auto" {
		clientHost = "localhost"
		if h, err := os.Hostname(); err == nil {
			clientHost = h
		}
	}
	if err := c.Hello(clientHost); err != nil {
		return fmt.Errorf("server did not accept the handshake: %w", err)
	}
	if cfg.UseStartTLS && !implicitTLS {
		if ok, _ := c.Extension("StartTLS"); ok {
			if err := c.StartTLS(&tls.Config{
				ServerName:         cfg.Host,
				MinVersion:         tls.VersionTLS12,
				MaxVersion:         tls.VersionTLS13,
				InsecureSkipVerify: cfg.SkipTLSVerify, //nolint:gosec // the URL asks for it: skiptlsverify=yes
			}); err != nil {
				return fmt.Errorf("error enabling StartTLS: %w", err)
			}
		} else if cfg.RequireStartTLS {
			return fmt.Errorf("error enabling StartTLS: %w", smtp.ErrServerNoStartTLS)
		}
	}
	var auth netsmtp.Auth
	switch cfg.Auth {
	case smtp.AuthTypes.None:
	case smtp.AuthTypes.Plain:
		auth = netsmtp.PlainAuth("", cfg.Username, cfg.Password, cfg.Host)
	case smtp.AuthTypes.CRAMMD5:
		auth = netsmtp.CRAMMD5Auth(cfg.Username, cfg.Password)
	case smtp.AuthTypes.OAuth2:
		auth = smtp.OAuth2Auth(cfg.Username, cfg.Password)
	default:
		return fmt.Errorf("invalid authorization method '%s'", cfg.Auth)
	}
	if auth != nil {
		if err := c.Auth(auth); err != nil {
			return fmt.Errorf("error authenticating: %w", err)
		}
	}

	m := smtpMessage{svc: svc, cfg: &cfg, message: message}
	if cfg.UseHTML {
		b := make([]byte, 8)
		_, _ = rand.Read(b)
		m.boundary = hex.EncodeToString(b)
	}
	var errs []error
	for _, to := range cfg.ToAddresses {
		if err := m.send(c, to); err != nil {
			errs = append(errs, fmt.Errorf("error sending message to recipient %q: %w", to, err))
			_ = c.Reset() // the next recipient's MAIL starts a new transaction
		}
	}
	// A "short response" to QUIT comes from servers that close at once;
	// the mails were taken.
	if err := c.Quit(); err != nil && !strings.Contains(err.Error(), "short response") {
		errs = append(errs, fmt.Errorf("error closing session: %w", err))
	}
	if len(errs) > 0 {
		return fmt.Errorf("failed to send to some recipients: %w", errors.Join(errs...))
	}
	return nil
}

// smtpMessage is one message as shoutrrr's smtp service writes it.
type smtpMessage struct {
	svc      *smtp.Service // for its templates ("plain", "HTML"), when set
	cfg      *smtp.Config
	message  string
	boundary string // of the multipart body, when cfg.UseHTML
}

// send delivers the mail to one recipient.
func (m *smtpMessage) send(c *netsmtp.Client, to string) error {
	if err := c.Mail(m.cfg.FromAddress); err != nil {
		return fmt.Errorf("error creating new message: %w", err)
	}
	if err := c.Rcpt(to); err != nil {
		return fmt.Errorf("error setting RCPT: %w", err)
	}
	w, err := c.Data()
	if err != nil {
		return fmt.Errorf("error creating message stream: %w", err)
	}
	contentType := `text/plain; charset="UTF-8"`
	if m.cfg.UseHTML {
		contentType = "multipart/alternative; boundary=" + m.boundary
	}
	for _, h := range [...][2]string{
		{"Subject", m.cfg.Subject},
		{"Date", time.Now().Format(time.RFC1123Z)},
		{"To", to},
		{"From", fmt.Sprintf("%s <%s>", m.cfg.FromName, m.cfg.FromAddress)},
		{"MIME-version", "1.0"},
		{"Content-Type", contentType},
	} {
		if _, err := fmt.Fprintf(w, "%s: %s\n", h[0], h[1]); err != nil {
			return fmt.Errorf("error writing message headers: %w", err)
		}
	}
	if _, err := fmt.Fprintln(w); err != nil {
		return fmt.Errorf("error writing message headers: %w", err)
	}
	if m.cfg.UseHTML {
		err = m.writeMultipart(w)
	} else {
		err = m.writePart(w, "plain")
	}
	if err != nil {
		return err
	}
	if err := w.Close(); err != nil {
		return fmt.Errorf("error closing message stream: %w", err)
	}
	return nil
}

// writeMultipart writes the message as text and as HTML.
func (m *smtpMessage) writeMultipart(w io.Writer) error {
	for _, p := range [...]struct{ contentType, template, fail string }{
		{`text/plain; charset="UTF-8"`, "plain", "error writing plain header"},
		{`text/html; charset="UTF-8"`, "HTML", "error writing HTML header"},
	} {
		if _, err := fmt.Fprintf(w, "\n\n--%s\nContent-Type: %s\n\n", m.boundary, p.contentType); err != nil {
			return fmt.Errorf("%s: %w", p.fail, err)
		}
		if err := m.writePart(w, p.template); err != nil {
			return err
		}
	}
	if _, err := fmt.Fprintf(w, "\n\n--%s--", m.boundary); err != nil {
		return fmt.Errorf("error writing multipart end header: %w", err)
	}
	return nil
}

// writePart writes the message through the service's template of that
// name, or as it is (in <pre> for HTML).
func (m *smtpMessage) writePart(w io.Writer, template string) error {
	if tpl, ok := m.svc.GetTemplate(template); ok {
		if err := tpl.Execute(w, map[string]string{"message": m.message}); err != nil {
			return fmt.Errorf("error applying message template: %w", err)
		}
		return nil
	}
	content := m.message
	if template == "HTML" {
		content = "<pre>" + m.message + "</pre>"
	}
	if _, err := io.WriteString(w, content); err != nil {
		return fmt.Errorf("error writing message: %w", err)
	}
	return nil
}
