package etcdserver

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"time"

	bolt "go.etcd.io/bbolt"
	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
	"google.golang.org/protobuf/proto"
)

// RestoreConfig describes a snapshot restore into a new data directory.
type RestoreConfig struct {
	// SnapshotPath is a file written by `datastore snapshot save` (etcd's
	// Maintenance.Snapshot stream, with its sha256 trailer).
	SnapshotPath string
	// DataDir must not hold a member yet (a pki/ directory is kept).
	DataDir string
	// Name and ClusterToken of the restored (single) member.
	Name         string
	ClusterToken string
	// PeerURL, when set, is recorded as the member's peer URL, so the
	// restored member can be served with it and grown back to several
	// members (default: a loopback URL, fine for a single member).
	PeerURL *url.URL
	Logger  *slog.Logger
}

// Restore loads the latest value of every key in the snapshot into a new
// single-member datastore in DataDir and returns how many keys it wrote.
// Revisions restart (clients relist) and leases are not carried over.
func Restore(ctx context.Context, cfg RestoreConfig) (int, error) {
	if _, err := os.Stat(filepath.Join(cfg.DataDir, "member")); err == nil {
		return 0, fmt.Errorf("restore: %s already holds a datastore; restore into a new directory", cfg.DataDir)
	}
	kvs, err := ReadSnapshot(cfg.SnapshotPath)
	if err != nil {
		return 0, err
	}
	srv, err := Start(ctx, Config{
		DataDir: cfg.DataDir, ListenClient: "127.0.0.1:0", ListenPeer: "127.0.0.1:0",
		Name: cfg.Name, ClusterToken: cfg.ClusterToken, Logger: cfg.Logger, recordPeerURL: cfg.PeerURL,
	})
	if err != nil {
		return 0, fmt.Errorf("restore: %w", err)
	}
	defer srv.Close()
	c, err := clientv3.New(clientv3.Config{Endpoints: srv.Endpoints(), DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		return 0, fmt.Errorf("restore: connect: %w", err)
	}
	defer c.Close()
	const batch = 100
	for i := 0; i < len(kvs); i += batch {
		var ops []clientv3.Op
		for _, kv := range kvs[i:min(i+batch, len(kvs))] {
			ops = append(ops, clientv3.OpPut(string(kv.Key), string(kv.Value)))
		}
		wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		_, err := c.Txn(wctx).Then(ops...).Commit()
		cancel()
		if err != nil {
			return i, fmt.Errorf("restore: write keys: %w", err)
		}
	}
	return len(kvs), nil
}

// ReadSnapshot verifies a snapshot file's sha256 trailer (when present) and
// returns the live keys of its key space, sorted by key.
func ReadSnapshot(path string) ([]*mvccpb.KeyValue, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read snapshot: %w", err)
	}
	// Maintenance.Snapshot appends the sha256 of the database.
	if len(data)%512 == sha256.Size {
		db, sum := data[:len(data)-sha256.Size], data[len(data)-sha256.Size:]
		got := sha256.Sum256(db)
		if !bytes.Equal(got[:], sum) {
			return nil, fmt.Errorf("snapshot %s is corrupt: sha256 mismatch", path)
		}
		data = db
	}
	tmp, err := os.CreateTemp("", "calico-snapshot-*.db")
	if err != nil {
		return nil, fmt.Errorf("read snapshot: %w", err)
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return nil, fmt.Errorf("read snapshot: %w", err)
	}
	tmp.Close()
	db, err := bolt.Open(tmp.Name(), 0o600, &bolt.Options{ReadOnly: true, Timeout: time.Second})
	if err != nil {
		return nil, fmt.Errorf("snapshot %s is not an etcd database: %w", path, err)
	}
	defer db.Close()
	live := map[string]*mvccpb.KeyValue{}
	err = db.View(func(tx *bolt.Tx) error {
		b := tx.Bucket([]byte("key"))
		if b == nil {
			return errors.New("no key bucket")
		}
		// Keys are revisions in order: 8-byte main, '_', 8-byte sub, and a
		// trailing 't' for a deletion.
		return b.ForEach(func(k, v []byte) error {
			kv := new(mvccpb.KeyValue)
			if err := proto.Unmarshal(v, kv); err != nil {
				return fmt.Errorf("revision %x: %w", k, err)
			}
			if len(k) == 18 && k[17] == 't' {
				delete(live, string(kv.Key))
				return nil
			}
			live[string(kv.Key)] = kv
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("snapshot %s is not an etcd database: %w", path, err)
	}
	out := make([]*mvccpb.KeyValue, 0, len(live))
	for _, kv := range live {
		out = append(out, kv)
	}
	sort.Slice(out, func(i, j int) bool { return bytes.Compare(out[i].Key, out[j].Key) < 0 })
	return out, nil
}
