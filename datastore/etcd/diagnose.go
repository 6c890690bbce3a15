package etcd

import (
	"context"
	"crypto/tls"
	"errors"
	"net"
	"net/url"
	"os"
	"time"
)

// diagnose explains why the gRPC client could not reach any endpoint, which
// gRPC itself reports only as a deadline: it dials each endpoint once (and
// does the TLS handshake for https) and returns the first failure, or "".
func diagnose(ctx context.Context, endpoints []string, tlsCfg *tls.Config, timeout time.Duration) string {
	for _, ep := range endpoints {
		if msg := diagnoseOne(ctx, ep, tlsCfg, timeout); msg != "" {
			return msg
		}
	}
	return ""
}

func diagnoseOne(ctx context.Context, endpoint string, tlsCfg *tls.Config, timeout time.Duration) string {
	u, err := url.Parse(endpoint)
	if err != nil || u.Host == "" {
		return "" // not a URL we can dial by hand (e.g. unix socket)
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", u.Host)
	if err != nil {
		return err.Error()
	}
	defer conn.Close()
	if u.Scheme != "https" {
		return ""
	}
	cfg := &tls.Config{}
	if tlsCfg != nil {
		cfg = tlsCfg.Clone()
	}
	if cfg.ServerName == "" {
		cfg.ServerName = u.Hostname()
	}
	cfg.NextProtos = []string{"h2"}
	tc := tls.Client(conn, cfg)
	if err := tc.HandshakeContext(ctx); err != nil {
		return err.Error()
	}
	// With TLS 1.3 the server checks the client certificate after the
	// client's handshake is done; a short read surfaces its alert.
	_ = tc.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
	if _, err := tc.Read(make([]byte, 1)); err != nil && !errors.Is(err, os.ErrDeadlineExceeded) {
		return err.Error()
	}
	return ""
}
