package etcdserver

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// Validity defaults of the certificates the PKI issues.
const (
	DefaultCAValidity   = 10 * 365 * 24 * time.Hour
	DefaultLeafValidity = 365 * 24 * time.Hour
)

// File names inside a PKI directory (<data-dir>/pki).
const (
	CACertFile     = "ca.crt"
	CAKeyFile      = "ca.key"
	ServerCertFile = "server.crt" // client-facing and peer certificate of the member
	ServerKeyFile  = "server.key"
	ClientCertFile = "client.crt" // the member's own client (initialization, operator)
	ClientKeyFile  = "client.key"
)

// ServerClientName is the common name of the client certificate a member
// issues for itself.
const ServerClientName = "calicoctl-datastore"

// PKIDir is where a data directory keeps its certificates.
func PKIDir(dataDir string) string { return filepath.Join(dataDir, "pki") }

// CA is a certificate authority loaded from a PKI directory. Key is nil when
// the directory holds only the CA certificate (a member whose CA lives
// elsewhere): it can verify but not issue.
type CA struct {
	Cert *x509.Certificate
	Key  *ecdsa.PrivateKey
	Dir  string
}

// LeafSpec describes a certificate to issue.
type LeafSpec struct {
	CommonName string
	// Server adds ServerAuth usage and the SANs; every leaf has ClientAuth
	// (a member's certificate is also its peer client certificate).
	Server bool
	// SANs are IP addresses or DNS names.
	SANs []string
	// NotBefore defaults to now minus a minute; Validity to DefaultLeafValidity.
	NotBefore time.Time
	Validity  time.Duration
}

// InitCA loads the CA in dir, creating a new one (key mode 0600) when there
// is none. created reports whether it was made now.
func InitCA(dir string, validity time.Duration) (ca *CA, created bool, err error) {
	if _, err := os.Stat(filepath.Join(dir, CACertFile)); err == nil {
		ca, err := LoadCA(dir)
		return ca, false, err
	}
	if validity <= 0 {
		validity = DefaultCAValidity
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, false, fmt.Errorf("pki directory: %w", err)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, false, fmt.Errorf("generate CA key: %w", err)
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          serial(),
		Subject:               pkix.Name{CommonName: "calico datastore CA", Organization: []string{"calicoctl"}},
		NotBefore:             now.Add(-time.Minute),
		NotAfter:              now.Add(validity),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, false, fmt.Errorf("create CA certificate: %w", err)
	}
	cert, _ := x509.ParseCertificate(der)
	if err := writePair(filepath.Join(dir, CACertFile), filepath.Join(dir, CAKeyFile), der, key); err != nil {
		return nil, false, err
	}
	return &CA{Cert: cert, Key: key, Dir: dir}, true, nil
}

// LoadCA reads dir/ca.crt and, when present, dir/ca.key.
func LoadCA(dir string) (*CA, error) {
	certPath := filepath.Join(dir, CACertFile)
	cert, err := readCert(certPath)
	if err != nil {
		return nil, err
	}
	if !cert.IsCA {
		return nil, fmt.Errorf("%s is not a CA certificate", certPath)
	}
	ca := &CA{Cert: cert, Dir: dir}
	keyPath := filepath.Join(dir, CAKeyFile)
	if _, err := os.Stat(keyPath); err == nil {
		key, err := readKey(keyPath)
		if err != nil {
			return nil, err
		}
		if !key.PublicKey.Equal(cert.PublicKey) {
			return nil, fmt.Errorf("CA key %s does not match CA certificate %s", keyPath, certPath)
		}
		ca.Key = key
	}
	return ca, nil
}

// Issue signs a new leaf certificate and writes it and its key (0600).
func (ca *CA) Issue(spec LeafSpec, certPath, keyPath string) error {
	if ca.Key == nil {
		return fmt.Errorf("cannot issue %q: %s has the CA certificate but not its key %s", spec.CommonName, ca.Dir, CAKeyFile)
	}
	if spec.CommonName == "" {
		return errors.New("certificate name may not be empty")
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return fmt.Errorf("generate key: %w", err)
	}
	nb := spec.NotBefore
	if nb.IsZero() {
		nb = time.Now().Add(-time.Minute)
	}
	validity := spec.Validity
	if validity == 0 {
		validity = DefaultLeafValidity
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial(),
		Subject:      pkix.Name{CommonName: spec.CommonName},
		NotBefore:    nb,
		NotAfter:     nb.Add(validity),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	if spec.Server {
		tmpl.ExtKeyUsage = append(tmpl.ExtKeyUsage, x509.ExtKeyUsageServerAuth)
		for _, san := range spec.SANs {
			if ip := net.ParseIP(san); ip != nil {
				tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
			} else if san != "" {
				tmpl.DNSNames = append(tmpl.DNSNames, san)
			}
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.Cert, &key.PublicKey, ca.Key)
	if err != nil {
		return fmt.Errorf("sign certificate %q: %w", spec.CommonName, err)
	}
	for _, p := range []string{certPath, keyPath} {
		if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
			return fmt.Errorf("certificate directory: %w", err)
		}
	}
	return writePair(certPath, keyPath, der, key)
}

// CheckLeaf verifies that certPath is signed by the CA in caPath, is valid
// now, and matches keyPath. The error is one line naming the file at fault.
func CheckLeaf(caPath, certPath, keyPath string, now time.Time) (*x509.Certificate, error) {
	ca, err := readCert(caPath)
	if err != nil {
		return nil, err
	}
	cert, err := readCert(certPath)
	if err != nil {
		return nil, err
	}
	if now.After(cert.NotAfter) {
		return nil, fmt.Errorf("certificate %s expired on %s", certPath, cert.NotAfter.UTC().Format(time.RFC3339))
	}
	if now.Before(cert.NotBefore) {
		return nil, fmt.Errorf("certificate %s is not valid before %s", certPath, cert.NotBefore.UTC().Format(time.RFC3339))
	}
	if err := cert.CheckSignatureFrom(ca); err != nil || !bytes.Equal(cert.RawIssuer, ca.RawSubject) {
		return nil, fmt.Errorf("certificate %s is not signed by the CA in %s (CA mismatch)", certPath, caPath)
	}
	if now.After(ca.NotAfter) {
		return nil, fmt.Errorf("CA certificate %s expired on %s", caPath, ca.NotAfter.UTC().Format(time.RFC3339))
	}
	if keyPath != "" {
		key, err := readKey(keyPath)
		if err != nil {
			return nil, err
		}
		if !key.PublicKey.Equal(cert.PublicKey) {
			return nil, fmt.Errorf("key %s does not match certificate %s", keyPath, certPath)
		}
	}
	return cert, nil
}

// missingSANs lists the names of want that cert does not cover.
func missingSANs(cert *x509.Certificate, want []string) []string {
	var missing []string
	for _, san := range want {
		if san == "" {
			continue
		}
		if ip := net.ParseIP(san); ip != nil {
			if !slices.ContainsFunc(cert.IPAddresses, ip.Equal) {
				missing = append(missing, san)
			}
		} else if !slices.Contains(cert.DNSNames, san) {
			missing = append(missing, san)
		}
	}
	return missing
}

// PKIFiles are the paths a TLS member uses.
type PKIFiles struct {
	CA, ServerCert, ServerKey, ClientCert, ClientKey string
}

// FilesIn returns the standard file paths inside a PKI directory.
func FilesIn(dir string) PKIFiles {
	return PKIFiles{
		CA:         filepath.Join(dir, CACertFile),
		ServerCert: filepath.Join(dir, ServerCertFile),
		ServerKey:  filepath.Join(dir, ServerKeyFile),
		ClientCert: filepath.Join(dir, ClientCertFile),
		ClientKey:  filepath.Join(dir, ClientKeyFile),
	}
}

// EnsureMemberPKI makes dir ready for a TLS member: a CA (created when
// absent), a server certificate covering the required and optional names,
// and a client certificate. It reuses what is there; it reissues the server
// certificate when the CA key is present and the certificate lacks a name.
// Without the CA key (a member whose certificates were issued elsewhere), a
// missing certificate or a missing required name is an error and optional
// names are not checked. Log lines describe what was created.
func EnsureMemberPKI(dir string, required, optional []string, logf func(format string, args ...any)) (PKIFiles, error) {
	sans := dedup(append(append([]string(nil), required...), optional...))
	files := FilesIn(dir)
	ca, created, err := InitCA(dir, 0)
	if err != nil {
		return files, err
	}
	if created {
		logf("created CA %s (key %s)", files.CA, filepath.Join(dir, CAKeyFile))
	}
	now := time.Now()
	issue := func(spec LeafSpec, certPath, keyPath, why string) error {
		if err := ca.Issue(spec, certPath, keyPath); err != nil {
			return err
		}
		logf("issued %s (%s)", certPath, why)
		return nil
	}
	// Server certificate.
	if _, err := os.Stat(files.ServerCert); errors.Is(err, os.ErrNotExist) {
		if err := issue(LeafSpec{CommonName: "calico datastore member", Server: true, SANs: sans}, files.ServerCert, files.ServerKey, "new"); err != nil {
			return files, err
		}
	} else {
		cert, err := CheckLeaf(files.CA, files.ServerCert, files.ServerKey, now)
		if err != nil {
			return files, err
		}
		check := sans
		if ca.Key == nil {
			check = required
		}
		if missing := missingSANs(cert, check); len(missing) > 0 {
			if ca.Key == nil {
				return files, fmt.Errorf("server certificate %s does not cover %s; issue a new one with `calicoctl datastore certs issue-member --san ...`", files.ServerCert, strings.Join(missing, ", "))
			}
			all := append(append([]string(nil), sans...), certNames(cert)...)
			if err := issue(LeafSpec{CommonName: cert.Subject.CommonName, Server: true, SANs: dedup(all)}, files.ServerCert, files.ServerKey, "added "+strings.Join(missing, ", ")); err != nil {
				return files, err
			}
		}
	}
	// The member's own client certificate.
	if _, err := os.Stat(files.ClientCert); errors.Is(err, os.ErrNotExist) {
		if err := issue(LeafSpec{CommonName: ServerClientName}, files.ClientCert, files.ClientKey, "new"); err != nil {
			return files, err
		}
	} else if _, err := CheckLeaf(files.CA, files.ClientCert, files.ClientKey, now); err != nil {
		return files, err
	}
	return files, nil
}

func certNames(c *x509.Certificate) []string {
	names := append([]string(nil), c.DNSNames...)
	for _, ip := range c.IPAddresses {
		names = append(names, ip.String())
	}
	return names
}

func dedup(in []string) []string {
	seen := map[string]bool{}
	var out []string
	for _, s := range in {
		if s != "" && !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	return out
}

func serial() *big.Int {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return big.NewInt(time.Now().UnixNano())
	}
	return n
}

func writePair(certPath, keyPath string, der []byte, key *ecdsa.PrivateKey) error {
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return fmt.Errorf("encode key: %w", err)
	}
	if err := writeFileAtomic(keyPath, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}), 0o600); err != nil {
		return err
	}
	return writeFileAtomic(certPath, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644)
}

func writeFileAtomic(path string, data []byte, mode os.FileMode) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, mode); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := os.Chmod(tmp, mode); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

func readCert(path string) (*x509.Certificate, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read certificate: %w", err)
	}
	block, _ := pem.Decode(data)
	if block == nil || block.Type != "CERTIFICATE" {
		return nil, fmt.Errorf("%s is not a PEM certificate", path)
	}
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("%s: bad certificate: %w", path, err)
	}
	return cert, nil
}

func readKey(path string) (*ecdsa.PrivateKey, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read key: %w", err)
	}
	block, _ := pem.Decode(data)
	if block == nil {
		return nil, fmt.Errorf("%s is not a PEM key", path)
	}
	if k, err := x509.ParseECPrivateKey(block.Bytes); err == nil {
		return k, nil
	}
	k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("%s: bad key: %w", path, err)
	}
	ek, ok := k.(*ecdsa.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("%s: not an ECDSA key", path)
	}
	return ek, nil
}
