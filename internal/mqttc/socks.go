package mqttc

import (
	"context"
	"net"
	"net/netip"
	"net/url"
	"os"
	"strings"

	"golang.org/x/net/proxy"
)

// The SOCKS5 protocol is golang.org/x/net/proxy's, as it was with paho
// (proxy.FromEnvironment). The environment is read here rather than by
// proxy.FromEnvironment, which reads it once per process: each dial sees
// the variables as they are, and NO_PROXY also takes "*", ".example.com"
// and names in any case.

// proxyFor returns the SOCKS5 proxy to reach addr ("host:port") through,
// or nil: it honours ALL_PROXY (or all_proxy) with a socks5:// or
// socks5h:// URL, and NO_PROXY (or no_proxy). Other proxy schemes mean a
// direct connection, as they did with paho.
func proxyFor(addr string) (*url.URL, error) {
	raw := getenvEither("ALL_PROXY", "all_proxy")
	if raw == "" {
		return nil, nil
	}
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "socks5" && u.Scheme != "socks5h") || u.Host == "" {
		return nil, nil
	}
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, err
	}
	if bypassProxy(host, getenvEither("NO_PROXY", "no_proxy")) {
		return nil, nil
	}
	if u.Port() == "" {
		u.Host = net.JoinHostPort(u.Hostname(), "1080")
	}
	return u, nil
}

func getenvEither(a, b string) string {
	if v := os.Getenv(a); v != "" {
		return v
	}
	return os.Getenv(b)
}

// bypassProxy reports whether host matches noProxy: comma-separated IP
// addresses, CIDR ranges, host names, and zones ("*.example.com" or
// ".example.com", matching the domain and its subdomains); "*" matches all.
func bypassProxy(host, noProxy string) bool {
	ip, ipErr := netip.ParseAddr(host)
	for _, e := range strings.Split(noProxy, ",") {
		e = strings.TrimSpace(e)
		if e == "" {
			continue
		}
		if e == "*" {
			return true
		}
		if p, err := netip.ParsePrefix(e); err == nil {
			if ipErr == nil && p.Contains(ip) {
				return true
			}
			continue
		}
		if a, err := netip.ParseAddr(e); err == nil {
			if ipErr == nil && a == ip {
				return true
			}
			continue
		}
		zone := strings.TrimPrefix(strings.TrimPrefix(e, "*"), ".")
		if strings.EqualFold(host, zone) || (zone != e && strings.HasSuffix(strings.ToLower(host), "."+strings.ToLower(zone))) {
			return true
		}
	}
	return false
}

// dialSOCKS5 connects to addr through the SOCKS5 proxy p (RFC 1928),
// authenticating with p's user and password when it has them (RFC 1929).
// forward dials the proxy itself. It is bounded by ctx.
func dialSOCKS5(ctx context.Context, p *url.URL, addr string, forward *net.Dialer) (net.Conn, error) {
	d, err := proxy.FromURL(p, forward)
	if err != nil {
		return nil, err
	}
	return d.(proxy.ContextDialer).DialContext(ctx, "tcp", addr)
}
