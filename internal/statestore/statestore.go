// Package statestore keeps the engine's rule state in a file (--state), so
// a restart or a crash does not forget a pending for, a cooldown, a fired
// alert or an absence timer.
//
// It is a bbolt database: pure Go (the binary stays static and needs no C
// library, unlike SQLite), one file, transactions that fsync, and a save
// writes only the keys that changed — an atomically replaced snapshot file
// would rewrite every key each second, which at 100,000 keys is tens of
// megabytes a second. The engine saves once a second, so a kill -9 loses at
// most the last second of changes.
package statestore

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/mqtt-rules/mqtt-rules/engine"
)

// bucket holds one record per (rule, key), under the bolt key
// rule + "\x00" + key, as JSON.
var bucket = []byte("keys-v1")

// Store is an open state file.
type Store struct {
	db *bolt.DB
}

var _ engine.StateStore = (*Store)(nil)

// Open opens the state file at path, creating it when missing. A file that
// another process holds open is an error after a second, not a hang.
func Open(path string) (*Store, error) {
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: time.Second})
	if err != nil {
		if errors.Is(err, bolt.ErrTimeout) {
			return nil, fmt.Errorf("state file %s: in use by another process (one --state file per engine)", path)
		}
		return nil, fmt.Errorf("state file %s: %w", path, err)
	}
	if err := db.Update(func(tx *bolt.Tx) error {
		_, err := tx.CreateBucketIfNotExists(bucket)
		return err
	}); err != nil {
		db.Close()
		return nil, fmt.Errorf("state file %s: %w", path, err)
	}
	return &Store{db: db}, nil
}

// Close closes the file.
func (s *Store) Close() error { return s.db.Close() }

func dbKey(ref engine.KeyRef) []byte {
	return []byte(ref.Rule + "\x00" + ref.Key)
}

// Load returns every saved key. A record that cannot be decoded is skipped
// (and deleted by the engine's next save of that key), not fatal: state is
// a cache of what the engine saw, never a reason not to start.
func (s *Store) Load() ([]engine.KeyRecord, error) {
	var out []engine.KeyRecord
	err := s.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucket).ForEach(func(k, v []byte) error {
			var rec engine.KeyRecord
			if json.Unmarshal(v, &rec) == nil {
				out = append(out, rec)
			}
			return nil
		})
	})
	return out, err
}

// Save deletes del, then writes put, in one transaction.
func (s *Store) Save(put []engine.KeyRecord, del []engine.KeyRef) error {
	return s.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucket)
		for _, ref := range del {
			if err := b.Delete(dbKey(ref)); err != nil {
				return err
			}
		}
		for i := range put {
			v, err := json.Marshal(&put[i])
			if err != nil {
				return err
			}
			if err := b.Put(dbKey(put[i].KeyRef), v); err != nil {
				return err
			}
		}
		return nil
	})
}
