package filestore

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/promstore/promstore/internal/store"
)

// This file holds the file store's naming rules, which nothing outside
// the package repeats (docs/formats.md, "File names").

// shardFileName returns the file name of shard id ("gauge_all_4100.db"),
// checking that Python's collector, which splits names on "_", would read
// it back as the same shard.
func shardFileName(id store.ShardID) (string, error) {
	name := id.String()
	if strings.ContainsAny(id.PID, "/\x00"+string(os.PathSeparator)) {
		return "", fmt.Errorf("shard %q: invalid shard id: pid %q holds a path separator", name, id.PID)
	}
	back, err := store.ParseShardName(name)
	if err != nil {
		return "", fmt.Errorf("shard %s: invalid shard id: %w", name, err)
	}
	if back != id {
		return "", fmt.Errorf("shard %s: invalid shard id: the file %s.db would read back as shard %s", name, name, back)
	}
	return name + ".db", nil
}

// ShardFile reports whether name is a shard file of a multiprocess
// directory (it ends in ".db" and is not hidden: Python's collector reads
// every such file) and, when it is, which shard it names; err says why a
// shard file's name names none.
func ShardFile(name string) (id store.ShardID, ok bool, err error) {
	base, ok := strings.CutSuffix(name, ".db")
	if !ok || strings.HasPrefix(name, ".") {
		return store.ShardID{}, false, nil
	}
	id, err = store.ParseShardName(base)
	return id, true, err
}

// CheckShardID returns an error when shard id cannot be a file of a
// multiprocess directory (a pid holding "_" reads back as another shard;
// one holding "/" is not a file name).
func CheckShardID(id store.ShardID) error {
	_, err := shardFileName(id)
	return err
}

// TempShard reports whether name is the temporary file of an interrupted
// shard write (see replaceFile) and of which shard.
func TempShard(name string) (store.ShardID, bool) {
	base, ok := strings.CutPrefix(name, ".")
	if !ok {
		return store.ShardID{}, false
	}
	base, _, ok = strings.Cut(base, ".db.tmp-")
	if !ok {
		return store.ShardID{}, false
	}
	id, err := store.ParseShardName(base)
	return id, err == nil
}

// LessShardFiles orders shards by file name. Scan reads the directory in
// its own order, Python's; new files land where the file system puts
// them, so this is the order a plan can assume, not a promise.
func LessShardFiles(a, b store.ShardID) bool {
	return a.String()+".db" < b.String()+".db"
}

// LessShards is LessShardFiles (store.ShardOrder).
func (s *Store) LessShards(a, b store.ShardID) bool { return LessShardFiles(a, b) }

// ShardLocation returns the path of shard id's file (store.ShardLocator).
func (s *Store) ShardLocation(id store.ShardID) (string, error) {
	return s.shardPath(id)
}

// shardPath returns the file of shard id (see shardFileName).
func (s *Store) shardPath(id store.ShardID) (string, error) {
	name, err := shardFileName(id)
	if err != nil {
		return "", err
	}
	return filepath.Join(s.dir, name), nil
}

// WhatAStoreIs says what a file store is made of (store.Explainer).
func (s *Store) WhatAStoreIs() string {
	return "a store is a directory of *.db files (counter_1234.db, gauge_livesum_1234.db, ...) that prometheus_client writes in multiprocess mode"
}

// The capabilities a file store has.
var (
	_ store.Local        = (*Store)(nil)
	_ store.ShardOrder   = (*Store)(nil)
	_ store.ShardLocator = (*Store)(nil)
	_ store.Stater       = (*Store)(nil)
	_ store.Explainer    = (*Store)(nil)
)
