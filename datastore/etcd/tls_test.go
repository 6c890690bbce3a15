package etcd_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/opencalico/calicoctl/datastore"
	"github.com/opencalico/calicoctl/datastore/etcd"
	"github.com/opencalico/calicoctl/internal/etcdserver"
	"github.com/opencalico/calicoctl/resources"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
)

type pki struct {
	dir        string
	caCert     *x509.Certificate
	caKey      *ecdsa.PrivateKey
	CA         string
	ServerCert string
	ServerKey  string
	ClientCert string
	ClientKey  string
}

func newPKI(t *testing.T) *pki {
	t.Helper()
	p := &pki{dir: t.TempDir()}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test-ca"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	p.caCert, _ = x509.ParseCertificate(der)
	p.caKey = key
	p.CA = p.write(t, "ca.pem", "CERTIFICATE", der)
	p.ServerCert, p.ServerKey = p.issue(t, "server", 2, x509.ExtKeyUsageServerAuth)
	p.ClientCert, p.ClientKey = p.issue(t, "client", 3, x509.ExtKeyUsageClientAuth)
	return p
}

func (p *pki) write(t *testing.T, name, typ string, der []byte) string {
	t.Helper()
	path := filepath.Join(p.dir, name)
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func (p *pki) issue(t *testing.T, name string, serial int64, usage x509.ExtKeyUsage) (certFile, keyFile string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{usage},
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, DNSNames: []string{"localhost"},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, p.caCert, &key.PublicKey, p.caKey)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return p.write(t, name+".pem", "CERTIFICATE", der), p.write(t, name+"-key.pem", "EC PRIVATE KEY", keyDER)
}

func startTLSServer(t *testing.T, p *pki) *etcdserver.Server {
	t.Helper()
	srv, err := etcdserver.Start(context.Background(), etcdserver.Config{
		DataDir:      filepath.Join(t.TempDir(), "etcd"),
		ListenClient: "127.0.0.1:0",
		Logger:       discardLogger(),
		TLS:          &etcdserver.TLS{CertFile: p.ServerCert, KeyFile: p.ServerKey, TrustedCAFile: p.CA, ClientCertAuth: true},
	})
	if err != nil {
		t.Fatalf("start TLS etcd: %v", err)
	}
	t.Cleanup(func() { _ = srv.Close() })
	return srv
}

func TestTLSClientCertificates(t *testing.T) {
	t.Parallel()
	p := newPKI(t)
	srv := startTLSServer(t, p)
	eps := srv.Endpoints()
	if !strings.HasPrefix(eps[0], "https://") {
		t.Fatalf("endpoints %v, want https", eps)
	}
	ctx := context.Background()

	b := newBackend(t, etcd.Config{Endpoints: eps, CACertFile: p.CA, CertFile: p.ClientCert, KeyFile: p.ClientKey})
	pool := newResource(t, "ippool", "", "tls-pool")
	if _, err := b.Create(ctx, pool); err != nil {
		t.Fatalf("create over TLS: %v", err)
	}
	if _, err := b.Get(ctx, resources.KeyOf(pool)); err != nil {
		t.Fatalf("get over TLS: %v", err)
	}

	tests := []struct {
		name string
		cfg  etcd.Config
		want string
	}{
		{"no client certificate", etcd.Config{CACertFile: p.CA}, "certificate required"},
		{"server not trusted", etcd.Config{CertFile: p.ClientCert, KeyFile: p.ClientKey}, "certificate signed by unknown authority"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tc.cfg.Endpoints = eps
			tc.cfg.DialTimeout = time.Second
			_, err := etcd.New(ctx, tc.cfg)
			if !errors.Is(err, datastore.ErrUnavailable) || !strings.Contains(err.Error(), "cannot reach etcd at "+eps[0]) ||
				!strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want ErrUnavailable naming %s and saying %q", err, eps[0], tc.want)
			}
		})
	}
	t.Run("missing key file", func(t *testing.T) {
		_, err := etcd.New(ctx, etcd.Config{Endpoints: eps, CACertFile: p.CA, CertFile: p.ClientCert, KeyFile: filepath.Join(p.dir, "nope")})
		if err == nil || !strings.Contains(err.Error(), "etcd TLS configuration") {
			t.Fatalf("err = %v, want a TLS configuration error", err)
		}
	})
}

func TestUsernamePassword(t *testing.T) {
	t.Parallel()
	srv := etcdserver.StartForTest(t)
	eps := srv.Endpoints()
	ctx := context.Background()
	admin, err := clientv3.New(clientv3.Config{Endpoints: eps, DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	steps := []func() error{
		func() error { _, err := admin.UserAdd(ctx, "root", "s3cret"); return err },
		func() error { _, err := admin.RoleAdd(ctx, "root"); return err },
		func() error { _, err := admin.UserGrantRole(ctx, "root", "root"); return err },
		func() error { _, err := admin.AuthEnable(ctx); return err },
	}
	for i, step := range steps {
		if err := step(); err != nil {
			t.Fatalf("auth setup step %d: %v", i, err)
		}
	}

	b := newBackend(t, etcd.Config{Endpoints: eps, Username: "root", Password: "s3cret"})
	if _, err := b.Create(ctx, newResource(t, "ippool", "", "authed")); err != nil {
		t.Fatalf("create with credentials: %v", err)
	}

	tests := []struct {
		name, user, password, want string
	}{
		{"wrong password", "root", "wrong", "authentication failed"},
		{"unknown user", "mallory", "x", "authentication failed"},
		{"no credentials", "", "", "user name is empty"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := etcd.New(ctx, etcd.Config{Endpoints: eps, Username: tc.user, Password: tc.password, DialTimeout: 2 * time.Second})
			if !errors.Is(err, datastore.ErrUnavailable) {
				t.Fatalf("err = %v, want ErrUnavailable", err)
			}
			msg := err.Error()
			if !strings.Contains(msg, "etcd at "+eps[0]+" refused the credentials") || !strings.Contains(msg, tc.want) {
				t.Fatalf("message %q, want the endpoint, 'refused the credentials' and %q", msg, tc.want)
			}
		})
	}
}

// calicoctl.cfg's inline PEM (etcdCACert, etcdCert, etcdKey) works like the
// files; half a pair or text that is no PEM is a configuration error.
func TestTLSInlinePEM(t *testing.T) {
	t.Parallel()
	p := newPKI(t)
	srv := startTLSServer(t, p)
	eps := srv.Endpoints()
	read := func(f string) string {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	ctx := context.Background()
	b := newBackend(t, etcd.Config{Endpoints: eps, CACert: read(p.CA), Cert: read(p.ClientCert), Key: read(p.ClientKey)})
	if _, err := b.Create(ctx, newResource(t, "ippool", "", "inline-pem-pool")); err != nil {
		t.Fatalf("create with inline PEM: %v", err)
	}
	// Inline CA with file certificates.
	newBackend(t, etcd.Config{Endpoints: eps, CACert: read(p.CA), CertFile: p.ClientCert, KeyFile: p.ClientKey})
	for _, tc := range []struct {
		name string
		cfg  etcd.Config
		want string
	}{
		{"cert without key", etcd.Config{CACert: read(p.CA), Cert: read(p.ClientCert)}, "etcdCert and etcdKey go together"},
		{"CA not PEM", etcd.Config{CACert: "not pem"}, "etcdCACert holds no PEM certificate"},
		{"key of another cert", etcd.Config{CACert: read(p.CA), Cert: read(p.ClientCert), Key: read(p.ServerKey)}, "etcdCert/etcdKey"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.cfg.Endpoints, tc.cfg.DialTimeout = eps, time.Second
			if _, err := etcd.New(ctx, tc.cfg); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want %q", err, tc.want)
			}
		})
	}
}
