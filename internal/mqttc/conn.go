package mqttc

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"net/url"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
)

// dialNet opens the network connection to the broker for s's scheme, TLS
// handshake included, bounded by ctx: TCP (through a SOCKS5 proxy when
// ALL_PROXY names one, as paho did), TLS over that, or a WebSocket through
// paho's WebSocket dialer.
func (c *Client) dialNet(ctx context.Context) (net.Conn, error) {
	s := c.s
	switch s.scheme {
	case "ws", "wss":
		return c.dialWebsocket(ctx)
	}
	host := s.host
	nc, err := dialTCP(ctx, host)
	if err != nil {
		return nil, err
	}
	if s.scheme != "ssl" {
		return nc, nil
	}
	cfg := s.tls
	if cfg.ServerName == "" {
		cfg = cfg.Clone()
		h, _, _ := net.SplitHostPort(host)
		cfg.ServerName = h
	}
	tc := tls.Client(nc, cfg)
	if err := tc.HandshakeContext(ctx); err != nil {
		_ = nc.Close()
		return nil, err
	}
	return tc, nil
}

// dialTCP connects to addr, directly or through the SOCKS5 proxy of the
// environment.
func dialTCP(ctx context.Context, addr string) (net.Conn, error) {
	d := &net.Dialer{KeepAlive: 30 * time.Second}
	p, err := proxyFor(addr)
	if err != nil {
		return nil, err
	}
	if p == nil {
		return d.DialContext(ctx, "tcp", addr)
	}
	nc, err := dialSOCKS5(ctx, p, addr, d)
	if err != nil {
		return nil, fmt.Errorf("SOCKS5 proxy %s: %w", p.Redacted(), err)
	}
	return nc, nil
}

// dialWebsocket opens a WebSocket with paho's dialer (which takes no
// context: when ctx ends first the connection is closed once it is open;
// the dial itself is bounded by ConnectTimeout).
func (c *Client) dialWebsocket(ctx context.Context) (net.Conn, error) {
	u, err := url.Parse(c.s.url)
	if err != nil {
		return nil, err
	}
	u.User = nil // gorilla refuses URLs with user info (paho #623)
	var tlsc *tls.Config
	if c.s.scheme == "wss" {
		tlsc = c.s.tls
	}
	type result struct {
		nc  net.Conn
		err error
	}
	res := make(chan result, 1)
	c.wg.Add(1)
	go func() { // owner: c (wg); exits when the dial ends, within ConnectTimeout
		defer c.wg.Done()
		nc, err := paho.NewWebsocket(u.String(), tlsc, c.s.ConnectTimeout, nil, nil)
		res <- result{nc, err}
	}()
	select {
	case r := <-res:
		return r.nc, r.err
	case <-ctx.Done():
		c.wg.Add(1)
		go func() { // owner: c (wg); closes the connection should it open late
			defer c.wg.Done()
			if r := <-res; r.nc != nil {
				_ = r.nc.Close()
			}
		}()
		return nil, ctx.Err()
	}
}
