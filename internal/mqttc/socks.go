package mqttc

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"
)

// proxyFor returns the SOCKS5 proxy to reach addr ("host:port") through,
// or nil: like paho (golang.org/x/net/proxy.FromEnvironment) it honours
// ALL_PROXY (or all_proxy) with a socks5:// or socks5h:// URL, and
// NO_PROXY (or no_proxy). Other proxy schemes mean a direct connection, as
// they did with paho.
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

// socks5Connect asks the SOCKS5 proxy on nc to connect to addr (RFC 1928),
// authenticating with the proxy URL's user and password when it has them
// (RFC 1929). It is bounded by ctx.
func socks5Connect(ctx context.Context, nc net.Conn, proxy *url.URL, addr string) error {
	if d, ok := ctx.Deadline(); ok {
		_ = nc.SetDeadline(d)
		defer func() { _ = nc.SetDeadline(time.Time{}) }()
	}
	stop := context.AfterFunc(ctx, func() { _ = nc.SetDeadline(time.Unix(pastSeconds, 0)) })
	defer stop()

	host, portStr, err := net.SplitHostPort(addr)
	if err != nil {
		return err
	}
	port, err := strconv.ParseUint(portStr, 10, 16)
	if err != nil {
		return fmt.Errorf("port %q: %w", portStr, err)
	}
	user := proxy.User.Username()
	pass, _ := proxy.User.Password()
	methods := []byte{0x00}
	if user != "" {
		methods = []byte{0x00, 0x02}
	}
	if _, err := nc.Write(append([]byte{0x05, byte(len(methods))}, methods...)); err != nil {
		return err
	}
	var b [4]byte
	if _, err := io.ReadFull(nc, b[:2]); err != nil {
		return err
	}
	if b[0] != 0x05 {
		return fmt.Errorf("not a SOCKS5 proxy (version %d)", b[0])
	}
	switch b[1] {
	case 0x00:
	case 0x02:
		if user == "" || len(user) > 255 || len(pass) > 255 {
			return errors.New("proxy wants a user name and password")
		}
		req := append([]byte{0x01, byte(len(user))}, user...)
		req = append(append(req, byte(len(pass))), pass...)
		if _, err := nc.Write(req); err != nil {
			return err
		}
		if _, err := io.ReadFull(nc, b[:2]); err != nil {
			return err
		}
		if b[1] != 0x00 {
			return errors.New("proxy refused the user name and password")
		}
	default:
		return fmt.Errorf("proxy offers no usable authentication method (0x%02x)", b[1])
	}

	req := []byte{0x05, 0x01, 0x00}
	if ip, err := netip.ParseAddr(host); err == nil {
		if ip.Is4() {
			req = append(req, 0x01)
		} else {
			req = append(req, 0x04)
		}
		req = append(req, ip.AsSlice()...)
	} else {
		if len(host) > 255 {
			return fmt.Errorf("host name %q too long for SOCKS5", host)
		}
		req = append(append(req, 0x03, byte(len(host))), host...)
	}
	req = append(req, byte(port>>8), byte(port))
	if _, err := nc.Write(req); err != nil {
		return err
	}
	if _, err := io.ReadFull(nc, b[:4]); err != nil {
		return err
	}
	if b[1] != 0x00 {
		return fmt.Errorf("proxy could not connect to %s (reply %d)", addr, b[1])
	}
	var skip int
	switch b[3] {
	case 0x01:
		skip = 4
	case 0x04:
		skip = 16
	case 0x03:
		if _, err := io.ReadFull(nc, b[:1]); err != nil {
			return err
		}
		skip = int(b[0])
	default:
		return fmt.Errorf("proxy reply with address type %d", b[3])
	}
	_, err = io.CopyN(io.Discard, nc, int64(skip+2))
	return err
}
