package etcd

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"

	"go.etcd.io/etcd/client/pkg/v3/transport"
)

// TLSSettings are an etcd client's certificate settings as calicoctl.cfg
// and the ETCD_* variables give them: files, or inline PEM (etcdCACert,
// etcdCert, etcdKey), which takes the place of the file of the same role.
type TLSSettings struct {
	CACertFile, CertFile, KeyFile string
	CACert, Cert, Key             string
}

// ClientTLS is the TLS configuration for s; nil (plain http) when nothing
// is set.
func (s TLSSettings) ClientTLS() (*tls.Config, error) {
	if s == (TLSSettings{}) {
		return nil, nil
	}
	info := transport.TLSInfo{TrustedCAFile: s.CACertFile}
	if s.Cert == "" && s.Key == "" {
		info.CertFile, info.KeyFile = s.CertFile, s.KeyFile
	}
	cfg, err := info.ClientConfig()
	if err != nil {
		return nil, fmt.Errorf("etcd TLS configuration: %w", err)
	}
	if s.CACert != "" {
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM([]byte(s.CACert)) {
			return nil, errors.New("etcd TLS configuration: etcdCACert holds no PEM certificate")
		}
		cfg.RootCAs = pool
	}
	if s.Cert != "" || s.Key != "" {
		cert, key := []byte(s.Cert), []byte(s.Key)
		if s.Cert == "" || s.Key == "" {
			return nil, errors.New("etcd TLS configuration: etcdCert and etcdKey go together")
		}
		pair, err := tls.X509KeyPair(cert, key)
		if err != nil {
			return nil, fmt.Errorf("etcd TLS configuration: etcdCert/etcdKey: %w", err)
		}
		cfg.Certificates = []tls.Certificate{pair}
		cfg.GetClientCertificate = nil
	}
	return cfg, nil
}
