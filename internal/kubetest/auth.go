package kubetest

import (
	"crypto/rand"
	"crypto/tls"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strings"
	"sync"

	authnv1 "k8s.io/api/authentication/v1"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
)

// Authentication: the admin is in a static token file (group system:masters),
// so the API server can authenticate it before anything else runs. Every
// other user is minted on demand (TokenFor): kube-apiserver asks our token
// webhook, which answers from an in-memory table, so tests may invent any
// user and groups after the server started.

// AdminUser is the admin's user name; it belongs to system:masters.
const AdminUser = "kubetest-admin"

// user is an identity a token stands for.
type user struct {
	Name   string
	Groups []string
}

// newToken returns an unguessable bearer token (128 bits, base32).
func newToken() string { return rand.Text() }

// tokenFileContent renders kube-apiserver's --token-auth-file CSV:
// token,user,uid[,"group1,group2"].
func tokenFileContent(tokens map[string]user) (string, error) {
	var b strings.Builder
	w := csv.NewWriter(&b)
	keys := make([]string, 0, len(tokens))
	for k := range tokens {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, tok := range keys {
		u := tokens[tok]
		rec := []string{tok, u.Name, u.Name}
		if len(u.Groups) > 0 {
			rec = append(rec, strings.Join(u.Groups, ","))
		}
		if err := w.Write(rec); err != nil {
			return "", err
		}
	}
	w.Flush()
	return b.String(), w.Error()
}

// tokenWebhook is an authentication.k8s.io/v1 TokenReview endpoint backed
// by a table of minted tokens.
type tokenWebhook struct {
	mu     sync.Mutex
	tokens map[string]user
	srv    *httptest.Server
}

func newTokenWebhook() *tokenWebhook {
	return &tokenWebhook{tokens: map[string]user{}}
}

// mint registers a fresh token for name and groups.
func (w *tokenWebhook) mint(name string, groups []string) string {
	tok := newToken()
	w.mu.Lock()
	w.tokens[tok] = user{Name: name, Groups: slices.Clone(groups)}
	w.mu.Unlock()
	return tok
}

func (w *tokenWebhook) ServeHTTP(rw http.ResponseWriter, r *http.Request) {
	var review authnv1.TokenReview
	if err := json.NewDecoder(r.Body).Decode(&review); err != nil {
		http.Error(rw, "bad TokenReview: "+err.Error(), http.StatusBadRequest)
		return
	}
	w.mu.Lock()
	u, ok := w.tokens[review.Spec.Token]
	w.mu.Unlock()
	resp := authnv1.TokenReview{}
	resp.APIVersion = "authentication.k8s.io/v1"
	resp.Kind = "TokenReview"
	if ok {
		resp.Status.Authenticated = true
		resp.Status.User = authnv1.UserInfo{Username: u.Name, UID: "kubetest:" + u.Name, Groups: u.Groups}
	} else {
		resp.Status.Error = "unknown token"
	}
	rw.Header().Set("Content-Type", "application/json")
	if err := json.NewEncoder(rw).Encode(&resp); err != nil {
		http.Error(rw, err.Error(), http.StatusInternalServerError)
	}
}

// start serves the webhook over TLS on a free loopback port.
func (w *tokenWebhook) start(cert tls.Certificate) {
	w.srv = httptest.NewUnstartedServer(w)
	w.srv.TLS = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	w.srv.StartTLS()
}

func (w *tokenWebhook) close() {
	if w.srv != nil {
		w.srv.Close()
	}
}

// kubeconfig builds a one-cluster, one-user kubeconfig using a bearer token.
func kubeconfig(server string, caPEM []byte, userName, token string) *clientcmdapi.Config {
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters["kubetest"] = &clientcmdapi.Cluster{Server: server, CertificateAuthorityData: caPEM}
	cfg.AuthInfos[userName] = &clientcmdapi.AuthInfo{Token: token}
	cfg.Contexts["kubetest"] = &clientcmdapi.Context{Cluster: "kubetest", AuthInfo: userName}
	cfg.CurrentContext = "kubetest"
	return cfg
}

// writeKubeconfig writes cfg to path, readable only by us.
func writeKubeconfig(path string, cfg *clientcmdapi.Config) error {
	data, err := clientcmd.Write(*cfg)
	if err != nil {
		return fmt.Errorf("encode kubeconfig: %w", err)
	}
	if err := os.WriteFile(path, data, 0o600); err != nil {
		return fmt.Errorf("write kubeconfig: %w", err)
	}
	return nil
}
