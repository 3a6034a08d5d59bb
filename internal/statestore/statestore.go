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
	"os"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/mqtt-rules/mqtt-rules/engine"
)

// bucket holds one record per (rule, key), under the bolt key
// rule + "\x00" + key, as JSON; meta holds savedAtKey, the time of the
// last save (RFC 3339), which bounds how long the engine ran.
var (
	bucket     = []byte("keys-v1")
	meta       = []byte("meta-v1")
	world      = []byte("world-v1") // remembered topics: topic → JSON engine.RememberedMessage
	savedAtKey = []byte("saved_at")
)

// Store is an open state file.
type Store struct {
	db *bolt.DB
}

var _ engine.StateStore = (*Store)(nil)

// ErrDamaged marks a state file that is not a readable state database.
var ErrDamaged = errors.New("damaged or not a state file")

// Open opens the state file at path, creating it when missing, and reads
// it through once. A file that another process holds open is an error
// after a second, not a hang; a damaged one is an error wrapping
// ErrDamaged (bbolt panics on some damage; that is recovered here).
func Open(path string) (s *Store, err error) {
	var db *bolt.DB
	defer func() {
		if p := recover(); p != nil {
			s, err = nil, fmt.Errorf("state file %s: %w: %v", path, ErrDamaged, p)
		}
		if err != nil && db != nil {
			db.Close()
		}
	}()
	db, err = bolt.Open(path, 0o600, &bolt.Options{Timeout: time.Second})
	if err != nil {
		db = nil
		switch {
		case errors.Is(err, bolt.ErrTimeout):
			return nil, fmt.Errorf("state file %s: in use by another process (one --state file per engine)", path)
		case errors.Is(err, bolt.ErrInvalid), errors.Is(err, bolt.ErrChecksum), errors.Is(err, bolt.ErrVersionMismatch):
			return nil, fmt.Errorf("state file %s: %w: %w", path, ErrDamaged, err)
		}
		return nil, fmt.Errorf("state file %s: %w", path, err)
	}
	// Read every page once now, so that damage shows here rather than
	// as a panic later.
	if err := db.View(func(tx *bolt.Tx) error {
		var damage error
		for err := range tx.Check() { // drained: the checker goroutine holds tx
			if damage == nil {
				damage = fmt.Errorf("%w: %w", ErrDamaged, err)
			}
		}
		return damage
	}); err != nil {
		return nil, fmt.Errorf("state file %s: %w", path, err)
	}
	if err := db.Update(func(tx *bolt.Tx) error {
		if _, err := tx.CreateBucketIfNotExists(bucket); err != nil {
			return err
		}
		if _, err := tx.CreateBucketIfNotExists(world); err != nil {
			return err
		}
		_, err := tx.CreateBucketIfNotExists(meta)
		return err
	}); err != nil {
		return nil, fmt.Errorf("state file %s: %w", path, err)
	}
	return &Store{db: db}, nil
}

// OpenOrMoveAside opens the state file at path; when it is damaged, it
// renames it to path.damaged-TIME (returned as movedTo, for the operator)
// and starts a new one: state is a cache of what the engine saw, never a
// reason not to start.
func OpenOrMoveAside(path string) (s *Store, movedTo string, err error) {
	s, err = Open(path)
	if !errors.Is(err, ErrDamaged) {
		return s, "", err
	}
	movedTo = path + ".damaged-" + time.Now().UTC().Format("20060102T150405Z")
	if rerr := os.Rename(path, movedTo); rerr != nil {
		return nil, "", fmt.Errorf("%w (and moving it aside failed: %w)", err, rerr)
	}
	s, err = Open(path)
	return s, movedTo, err
}

// Close closes the file.
func (s *Store) Close() error { return s.db.Close() }

func dbKey(ref engine.KeyRef) []byte {
	return []byte(ref.Rule + "\x00" + ref.Key)
}

// Load returns every saved key. A record that cannot be decoded is skipped
// (and deleted by the engine's next save of that key), not fatal: state is
// a cache of what the engine saw, never a reason not to start.
func (s *Store) Load() (recs []engine.KeyRecord, savedAt time.Time, err error) {
	var out []engine.KeyRecord
	err = s.db.View(func(tx *bolt.Tx) error {
		if v := tx.Bucket(meta).Get(savedAtKey); v != nil {
			_ = savedAt.UnmarshalText(v) // unreadable: as if never saved
		}
		return tx.Bucket(bucket).ForEach(func(k, v []byte) error {
			var rec engine.KeyRecord
			if json.Unmarshal(v, &rec) == nil {
				out = append(out, rec)
			}
			return nil
		})
	})
	return out, savedAt, err
}

// Save deletes del, then writes put and at as the time of the last save,
// in one transaction.
func (s *Store) Save(put []engine.KeyRecord, del []engine.KeyRef, at time.Time) error {
	return s.db.Update(func(tx *bolt.Tx) error {
		ts, err := at.MarshalText()
		if err != nil {
			return err
		}
		if err := tx.Bucket(meta).Put(savedAtKey, ts); err != nil {
			return err
		}
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

// LoadWorld returns every saved remembered message; one that cannot be
// decoded is skipped.
func (s *Store) LoadWorld() ([]engine.RememberedMessage, error) {
	var out []engine.RememberedMessage
	err := s.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(world).ForEach(func(k, v []byte) error {
			var m engine.RememberedMessage
			if json.Unmarshal(v, &m) == nil && m.Key() == string(k) {
				out = append(out, m)
			}
			return nil
		})
	})
	return out, err
}

// SaveWorld deletes del (keys, see engine.RememberedMessage.Key) and
// writes put, in one transaction.
func (s *Store) SaveWorld(put []engine.RememberedMessage, del []string) error {
	return s.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(world)
		for _, t := range del {
			if len(t) > bolt.MaxKeySize {
				continue
			}
			if err := b.Delete([]byte(t)); err != nil {
				return err
			}
		}
		for i := range put {
			key := put[i].Key()
			if len(key) > bolt.MaxKeySize {
				continue // a topic this long is not kept across restarts
			}
			v, err := json.Marshal(&put[i])
			if err != nil {
				return err
			}
			if err := b.Put([]byte(key), v); err != nil {
				return err
			}
		}
		return nil
	})
}

// LoadMeta returns the value saved under name, or nil.
func (s *Store) LoadMeta(name string) ([]byte, error) {
	var out []byte
	err := s.db.View(func(tx *bolt.Tx) error {
		if v := tx.Bucket(meta).Get([]byte("x-" + name)); v != nil {
			out = append([]byte(nil), v...)
		}
		return nil
	})
	return out, err
}

// SaveMeta replaces the value saved under name.
func (s *Store) SaveMeta(name string, value []byte) error {
	return s.db.Update(func(tx *bolt.Tx) error {
		return tx.Bucket(meta).Put([]byte("x-"+name), value)
	})
}
