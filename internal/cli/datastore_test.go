package cli

import (
	"errors"
	"reflect"
	"strings"
	"testing"
)

func TestServeOptionsValidate(t *testing.T) {
	t.Parallel()
	const ic = "m1=https://10.0.0.1:2380,m2=https://10.0.0.2:2380,m3=https://10.0.0.3:2380"
	for _, tc := range []struct {
		name    string
		o       ServeOptions
		wantTLS bool
		wantErr string
		peer    string
	}{
		{name: "loopback stays plain", o: ServeOptions{Listen: "127.0.0.1:2379"}},
		{name: "loopback with --tls", o: ServeOptions{Listen: "127.0.0.1:2379", TLS: true}, wantTLS: true},
		{name: "off loopback implies TLS", o: ServeOptions{Listen: "10.0.0.1:2379"}, wantTLS: true},
		{name: "all addresses implies TLS", o: ServeOptions{Listen: "0.0.0.0:2379"}, wantTLS: true},
		{name: "insecure off loopback", o: ServeOptions{Listen: "10.0.0.1:2379", Insecure: true}},
		{name: "tls and insecure", o: ServeOptions{Listen: "10.0.0.1:2379", TLS: true, Insecure: true}, wantErr: "contradict"},
		{name: "bad listen", o: ServeOptions{Listen: "10.0.0.1"}, wantErr: "invalid --listen"},
		{name: "member", o: ServeOptions{Listen: "10.0.0.2:2379", Name: "m2", InitialCluster: ic}, wantTLS: true, peer: "10.0.0.2:2380"},
		{name: "member not listed", o: ServeOptions{Listen: "10.0.0.4:2379", Name: "m4", InitialCluster: ic}, wantErr: `member "m4" is not in the initial cluster (members: m1, m2, m3)`},
		{name: "http peers with TLS", o: ServeOptions{Listen: "10.0.0.1:2379", Name: "m1", InitialCluster: "m1=http://10.0.0.1:2380"}, wantErr: "member m1 has a http URL but peers use https"},
		{name: "https peers insecure", o: ServeOptions{Listen: "10.0.0.1:2379", Insecure: true, Name: "m1", InitialCluster: ic}, wantErr: "has a https URL but peers use http"},
		{name: "peer off loopback implies TLS", o: ServeOptions{Listen: "127.0.0.1:2379", Peer: "10.0.0.1:2380"}, wantTLS: true},
		{name: "bad state", o: ServeOptions{Listen: "127.0.0.1:2379", ClusterState: "old"}, wantErr: "--initial-cluster-state"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := tc.o
			o.DataDir = "d"
			if o.Peer == "" {
				o.Peer = "127.0.0.1:2380"
			}
			if o.ClusterState == "" {
				o.ClusterState = "new"
			}
			o.Complete(false)
			err := o.Validate()
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("Validate: %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("Validate: %v", err)
			}
			if o.TLS != tc.wantTLS {
				t.Errorf("TLS = %v, want %v", o.TLS, tc.wantTLS)
			}
			if tc.peer != "" && o.Peer != tc.peer {
				t.Errorf("peer = %s, want %s", o.Peer, tc.peer)
			}
		})
	}
}

func TestStatusRows(t *testing.T) {
	t.Parallel()
	got := statusRows([]memberStatus{
		{Endpoint: "https://10.0.0.1:2379", Name: "m1", Leader: true, Revision: 42, DBSize: 4096},
		{Endpoint: "https://10.0.0.2:2379", Err: errors.New("unreachable: context deadline exceeded\nmore")},
	})
	want := [][]string{
		{"ENDPOINT", "MEMBER", "LEADER", "REVISION", "DB SIZE", "ERROR"},
		{"https://10.0.0.1:2379", "m1", "true", "42", "4096", ""},
		{"https://10.0.0.2:2379", "", "", "", "", "unreachable: context deadline exceeded more"},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("statusRows:\n got %q\nwant %q", got, want)
	}
}
