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
	if err := pidLabelCut(id); err != nil {
		return "", fmt.Errorf("shard %s: invalid shard id: %w", name, err)
	}
	return name + ".db", nil
}

// pidLabelCut returns an error for a gauge shard whose samples Python's
// collector labels with another pid than the shard's: it takes a gauge's
// pid from the third "_"-part of the file name, minus its last three
// characters (meant for ".db"), so the pid label of process "web_1"'s
// gauge_all_web_1.db is "" (and "host1" for host1234_5), the same for
// every such process of the host. Only modes all and liveall carry the
// label; the other modes merge over processes, as they do for any pid.
func pidLabelCut(id store.ShardID) error {
	if id.Kind != store.KindGauge || (id.Mode != "all" && id.Mode != "liveall") {
		return nil
	}
	part, _, cut := strings.Cut(id.PID, "_")
	if !cut {
		return nil
	}
	label := part[:max(len(part)-3, 0)]
	return fmt.Errorf("a gauge of mode %s, whose samples Python's collector labels pid=%q, not %q (the name's third \"_\"-part less 3 characters, alike for other such processes): left out; use process identifiers without \"_\"", id.Mode, label, id.PID)
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
	if err == nil {
		err = pidLabelCut(id)
	}
	return id, true, err
}

// CheckShardID returns an error when shard id cannot be a file of a
// multiprocess directory (a pid holding "/" is not a file name; an
// all-mode gauge of a pid holding "_" is labelled with another pid by
// Python's collector: see pidLabelCut).
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
	_ store.StoreFinder  = (*Store)(nil)
)
