package etcdserver

import (
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strings"
)

// DefaultClusterToken is the cluster token when none is given.
const DefaultClusterToken = "calico-datastore"

// IdentityFile, in the data directory, records which member of which
// cluster the directory belongs to.
const IdentityFile = "calicoctl-member.json"

// ErrOtherCluster is wrapped by Start's error when the data directory belongs
// to another member or cluster.
var ErrOtherCluster = errors.New("data directory of another member or cluster")

// Member is one entry of an initial cluster list.
type Member struct {
	Name    string
	PeerURL *url.URL
}

// ParseInitialCluster parses "m1=https://10.0.0.1:2380,m2=...". Every entry
// needs a name and an http(s) URL with host:port; names are unique.
func ParseInitialCluster(s string) ([]Member, error) {
	var out []Member
	seen := map[string]bool{}
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		name, raw, ok := strings.Cut(part, "=")
		if !ok || name == "" {
			return nil, fmt.Errorf("initial cluster entry %q: want name=https://host:port", part)
		}
		u, err := url.Parse(raw)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Port() == "" {
			return nil, fmt.Errorf("initial cluster entry %q: want name=https://host:port", part)
		}
		if seen[name] {
			return nil, fmt.Errorf("initial cluster names member %q twice", name)
		}
		seen[name] = true
		out = append(out, Member{Name: name, PeerURL: u})
	}
	if len(out) == 0 {
		return nil, errors.New("initial cluster is empty")
	}
	return out, nil
}

// MemberPeerURL returns name's peer URL in an initial cluster list, or an
// error naming the members when it is not listed.
func MemberPeerURL(initialCluster, name string) (*url.URL, error) {
	members, err := ParseInitialCluster(initialCluster)
	if err != nil {
		return nil, err
	}
	var names []string
	for _, m := range members {
		if m.Name == name {
			return m.PeerURL, nil
		}
		names = append(names, m.Name)
	}
	return nil, fmt.Errorf("member %q is not in the initial cluster (members: %s)", name, strings.Join(names, ", "))
}

// PeerHost returns the host of a member's peer URL (an IP or name).
func (m Member) PeerHost() string {
	h, _, _ := net.SplitHostPort(m.PeerURL.Host)
	return h
}

type identity struct {
	Name         string `json:"name"`
	ClusterToken string `json:"clusterToken"`
}

// checkIdentity refuses a data directory recorded for another member name
// or cluster token.
func checkIdentity(dir, name, token string) error {
	data, err := os.ReadFile(filepath.Join(dir, IdentityFile))
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("read %s: %w", IdentityFile, err)
	}
	var id identity
	if err := json.Unmarshal(data, &id); err != nil {
		return fmt.Errorf("%s: %w", filepath.Join(dir, IdentityFile), err)
	}
	if id.Name != name {
		return fmt.Errorf("%w: %s holds member %q, not %q (check --name and --data-dir)", ErrOtherCluster, dir, id.Name, name)
	}
	if id.ClusterToken != token {
		return fmt.Errorf("%w: %s belongs to cluster %q, not %q (check --initial-cluster-token and --data-dir)", ErrOtherCluster, dir, id.ClusterToken, token)
	}
	return nil
}

// writeIdentity records name and token for later starts.
func writeIdentity(dir, name, token string) error {
	data, _ := json.Marshal(identity{Name: name, ClusterToken: token})
	return writeFileAtomic(filepath.Join(dir, IdentityFile), append(data, '\n'), 0o600)
}
