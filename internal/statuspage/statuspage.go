// Package statuspage serves the engine's live status page on "/" of the
// HTTP endpoints (docs/operations.md, HTTP endpoints): one HTML page, its
// script and its style sheet, embedded in the binary, and the event stream
// and JSON they read. The page shows the broker connection, every rule with
// its counters and its pending, firing and cooldown keys, the last reload,
// message and firing rates, and per rule its definition and last
// evaluations, all updating live. It shows no secret; with
// Options.Control its buttons enable, disable and acknowledge rules
// through the API's control endpoints (sending httpapi.CSRFHeader).
package statuspage

import (
	"bytes"
	"context"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"io/fs"
	"log/slog"
	"net/http"
	"path"
	"strings"
	"time"

	"github.com/mqtt-rules/mqtt-rules/internal/httpapi"
)

//go:embed web
var webFS embed.FS

// Defaults of Options.
const (
	DefaultInterval     = time.Second
	DefaultStep         = 5 * time.Second
	DefaultBuckets      = 180 // 15 minutes of 5 s
	DefaultMaxClients   = 64
	DefaultKeysBudget   = 2 * time.Millisecond
	DefaultWriteTimeout = 10 * time.Second
)

// Options configure a Page; the zero value gives the defaults.
type Options struct {
	// Version is the build's version, shown in the header.
	Version string
	// Logger receives the page's own problems; nil discards them.
	Logger *slog.Logger
	// Interval is how often open pages get a new snapshot
	// (DefaultInterval).
	Interval time.Duration
	// Step is the width of a rate bucket (DefaultStep), and Buckets how
	// many the charts show (DefaultBuckets).
	Step    time.Duration
	Buckets int
	// MaxClients bounds the open event streams (DefaultMaxClients); more
	// are answered 503.
	MaxClients int
	// KeysBudget bounds the time a tick spends reading stateful rules'
	// keys (DefaultKeysBudget); the rest wait for the next ticks.
	KeysBudget time.Duration
	// WriteTimeout cuts a page whose connection takes longer to accept
	// one event (DefaultWriteTimeout).
	WriteTimeout time.Duration
	// Control shows the enable, disable and acknowledge buttons: set it
	// when the API's control endpoints work (--http-token and a
	// controller), so every page that opens was opened with the token.
	Control bool
}

// Mux is where Register adds the page's routes: an *httpapi.Server, whose
// token check covers them.
type Mux interface {
	Handle(pattern string, h http.Handler)
}

// Page is the status page and its live feed.
type Page struct {
	st      httpapi.Status
	opts    Options
	log     *slog.Logger
	sampler *sampler
	snap    *snapshotter
	hub     *hub
	assets  map[string]asset
}

type asset struct {
	body  []byte
	ctype string
	etag  string
}

// New returns the page for st.
func New(st httpapi.Status, opts Options) *Page {
	if opts.Interval <= 0 {
		opts.Interval = DefaultInterval
	}
	if opts.Step <= 0 {
		opts.Step = DefaultStep
	}
	if opts.Buckets <= 0 {
		opts.Buckets = DefaultBuckets
	}
	if opts.MaxClients <= 0 {
		opts.MaxClients = DefaultMaxClients
	}
	if opts.KeysBudget <= 0 {
		opts.KeysBudget = DefaultKeysBudget
	}
	if opts.WriteTimeout <= 0 {
		opts.WriteTimeout = DefaultWriteTimeout
	}
	p := &Page{st: st, opts: opts, log: opts.Logger, assets: map[string]asset{}}
	if p.log == nil {
		p.log = slog.New(slog.DiscardHandler)
	}
	p.sampler = newSampler(st.Counters, opts.Step, opts.Buckets)
	p.snap = newSnapshotter(st, opts.Version, p.sampler, opts.KeysBudget)
	p.snap.control = opts.Control
	p.hub = newHub(opts.Interval, opts.MaxClients, p.snap.tick)
	_ = fs.WalkDir(webFS, "web", func(name string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := webFS.ReadFile(name)
		if err != nil {
			return err
		}
		sum := sha256.Sum256(b)
		p.assets[strings.TrimPrefix(name, "web/")] = asset{body: b, ctype: contentType(name), etag: `"` + hex.EncodeToString(sum[:8]) + `"`}
		return nil
	})
	return p
}

func contentType(name string) string {
	switch path.Ext(name) {
	case ".html":
		return "text/html; charset=utf-8"
	case ".js":
		return "text/javascript; charset=utf-8"
	case ".css":
		return "text/css; charset=utf-8"
	case ".svg":
		return "image/svg+xml"
	}
	return "application/octet-stream"
}

// Register adds the page's routes to mux: GET / (the page), GET /ui/{file}
// (its script, style sheet and icon), GET /api/live (the event stream) and
// GET /api/rates (the charts' series), and samples the rates until ctx
// ends.
func (p *Page) Register(ctx context.Context, mux Mux) {
	mux.Handle("GET /{$}", http.HandlerFunc(p.index))
	mux.Handle("GET /ui/{file}", http.HandlerFunc(p.asset))
	mux.Handle("GET /api/live", http.HandlerFunc(p.live))
	mux.Handle("GET /api/rates", http.HandlerFunc(p.apiRates))
	go p.sampler.run(ctx)
}

// contentSecurity lets the page load only its own script, style and icon,
// and talk only to its own origin.
const contentSecurity = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"

func (p *Page) index(w http.ResponseWriter, r *http.Request) {
	p.serveAsset(w, r, "index.html")
}

func (p *Page) asset(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("file")
	if name == "index.html" {
		http.NotFound(w, r)
		return
	}
	p.serveAsset(w, r, name)
}

func (p *Page) serveAsset(w http.ResponseWriter, r *http.Request, name string) {
	a, ok := p.assets[name]
	if !ok {
		http.NotFound(w, r)
		return
	}
	h := w.Header()
	h.Set("Content-Type", a.ctype)
	h.Set("ETag", a.etag)
	h.Set("Cache-Control", "no-cache") // revalidate: a new binary may serve new files
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	if name == "index.html" {
		h.Set("Content-Security-Policy", contentSecurity)
		h.Set("X-Frame-Options", "DENY")
	}
	http.ServeContent(w, r, name, time.Time{}, bytes.NewReader(a.body))
}

func (p *Page) apiRates(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	_, _ = w.Write(append(mustJSON(p.sampler.rates()), '\n'))
}

// Stats describes the live feed's work so far, for measurements.
type Stats struct {
	Pages    int           // event streams open now
	Ticks    uint64        // frames made
	Skipped  uint64        // frames a slow page missed (it caught up with a full one)
	TickMean time.Duration // time to make a frame: read the counters and keys, encode
	TickMax  time.Duration
}

// Stats returns what the live feed did so far.
func (p *Page) Stats() Stats {
	s := Stats{
		Pages:   p.hub.clientCount(),
		Ticks:   p.hub.ticks.Load(),
		Skipped: p.hub.skipped.Load(),
		TickMax: time.Duration(p.hub.tickMax.Load()),
	}
	if s.Ticks > 0 {
		s.TickMean = time.Duration(p.hub.tickNanos.Load() / int64(s.Ticks))
	}
	return s
}
