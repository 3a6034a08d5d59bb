package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"time"
)

// defaultHealthURL is /healthz on the default --http address.
const defaultHealthURL = "http://127.0.0.1:9464/healthz"

// healthcheckCmd GETs a URL (by default the engine's /healthz) and exits 0
// when it answers 200, 1 otherwise (2 for a usage error). It is the
// container image's HEALTHCHECK (docs/install.md): the image has no shell,
// curl or wget. The request goes straight to the URL, never through an
// HTTP_PROXY from the environment.
func healthcheckCmd(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("healthcheck", stderr, "healthcheck [URL] [flags]")
	timeout := fs.Duration("timeout", 5*time.Second, "give up after this long")
	pos, err := parseArgs(fs, args)
	if err != nil {
		return usageCode(err)
	}
	target := defaultHealthURL
	switch len(pos) {
	case 0:
	case 1:
		target = pos[0]
	default:
		fs.Usage()
		return exitUsage
	}
	if u, err := url.Parse(target); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		fmt.Fprintf(stderr, "mqtt-rules healthcheck: %q is not an http:// or https:// URL\n", target)
		return exitUsage
	}

	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, target, nil)
	if err != nil {
		fmt.Fprintf(stderr, "mqtt-rules healthcheck: %v\n", err)
		return exitUsage
	}
	client := &http.Client{Transport: &http.Transport{}} // no Proxy: direct
	resp, err := client.Do(req)
	if err != nil {
		fmt.Fprintf(stderr, "mqtt-rules healthcheck: %v\n", err)
		return exitInvalid
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	body = bytes.TrimSpace(body)
	if resp.StatusCode != http.StatusOK {
		fmt.Fprintf(stderr, "mqtt-rules healthcheck: %s: %s %q\n", target, resp.Status, body)
		return exitInvalid
	}
	fmt.Fprintf(stdout, "%s: %s\n", target, body)
	return exitOK
}
