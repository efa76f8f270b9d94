package redisstore

import (
	"context"
	"crypto/md5"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"sort"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/promstore/promstore/internal/store"
)

// WriteShard writes each sample as the exporter does: a metric hash
// <prefix>:<kind>:<pid>:metric:<md5> (value, timestamp, updated_at) and a
// meta hash ...:meta:<md5> (original_key, typ, multiprocess_mode, and
// created_at when the hash is new), md5 being that of the sample's
// canonical key text. Rewriting a sample overwrites it but keeps
// created_at. With Config.TTL both hashes expire after TTL.
//
// The commands go out in pipelines of about BatchSize commands: per
// sample HSET meta, HSETNX created_at, HSET metric (and PEXPIRE of both
// with a TTL). In a Cluster go-redis sends each to the master of its slot.
func (s *Store) WriteShard(ctx context.Context, id store.ShardID, samples []store.Sample) error {
	return s.writeShard(ctx, id, samples, false, time.Time{})
}

// WriteNewShard is WriteShard for samples the caller has just found absent
// from the store (migrate's planner reads the target first): created_at
// goes into the one HSET of the meta hash, with no HSETNX, so a sample
// costs two commands instead of three. A meta hash that exists after all
// (one without a metric hash, which holds no sample) gets its created_at
// reset to now; everything else is written as WriteShard writes it.
func (s *Store) WriteNewShard(ctx context.Context, id store.ShardID, samples []store.Sample) error {
	return s.writeShard(ctx, id, samples, true, time.Time{})
}

// WriteShardUpdated is WriteShard with updated_at set to updated instead
// of now: the time of the last write of the samples (migrate keeps a
// source shard's), which cleanup's --stale-after and --min-idle judge a
// shard by. A zero updated means now.
func (s *Store) WriteShardUpdated(ctx context.Context, id store.ShardID, samples []store.Sample, updated time.Time) error {
	return s.writeShard(ctx, id, samples, false, updated)
}

// WriteNewShardUpdated is WriteNewShard with updated_at set to updated
// (see WriteShardUpdated).
func (s *Store) WriteNewShardUpdated(ctx context.Context, id store.ShardID, samples []store.Sample, updated time.Time) error {
	return s.writeShard(ctx, id, samples, true, updated)
}

func (s *Store) writeShard(ctx context.Context, id store.ShardID, samples []store.Sample, absent bool, updated time.Time) error {
	if err := validShard(id); err != nil {
		return err
	}
	if len(samples) == 0 {
		return nil
	}
	w := newShardWriter(s, id, absent)
	if !updated.IsZero() {
		w.updated = pyTime(updated)
	}
	if err := w.write(ctx, samples); err != nil {
		return fmt.Errorf("write shard %s: %w", id, err)
	}
	return nil
}

func validShard(id store.ShardID) error {
	if id.PID == "" {
		return fmt.Errorf("shard %s: empty pid", id)
	}
	if _, _, err := store.ParseKindName(id.KindName()); err != nil {
		return fmt.Errorf("shard %s: %w", id, err)
	}
	return nil
}

// DeleteShard unlinks every key of the shard (<prefix>:<kind>:<pid>:*) on
// every master. For a gauge shard it also unlinks the modeless
// <prefix>:gauge:<pid> hashes that the shard shadows or that read as its
// samples, so that they do not reappear as samples of another mode.
func (s *Store) DeleteShard(ctx context.Context, id store.ShardID) error {
	if err := validShard(id); err != nil {
		return err
	}
	own, err := s.shardKeys(ctx, id)
	if err != nil {
		return fmt.Errorf("delete shard %s: %w", id, err)
	}
	if err := s.unlink(ctx, own); err != nil {
		return fmt.Errorf("delete shard %s: %w", id, err)
	}
	return nil
}

// ShardsDeleter lists the keys of the shards ids in one SCAN pass over
// the keyspace and returns a function that deletes one of them as
// DeleteShard does, by the keys listed: for a caller deleting many shards
// nobody writes any more (cleanup), one pass instead of one per shard. A
// key of such a shard created after the listing survives; a shard not in
// ids is deleted by DeleteShard.
func (s *Store) ShardsDeleter(ctx context.Context, ids []store.ShardID) (func(context.Context, store.ShardID) error, error) {
	for _, id := range ids {
		if err := validShard(id); err != nil {
			return nil, err
		}
	}
	keys, err := s.shardKeysOf(ctx, ids)
	if err != nil {
		return nil, fmt.Errorf("list the keys of %d shards: %w", len(ids), err)
	}
	listed := make(map[store.ShardID]bool, len(ids))
	for _, id := range ids {
		listed[id] = true
	}
	return func(ctx context.Context, id store.ShardID) error {
		if !listed[id] {
			return s.DeleteShard(ctx, id)
		}
		if err := s.unlink(ctx, keys[id]); err != nil {
			return fmt.Errorf("delete shard %s: %w", id, err)
		}
		return nil
	}, nil
}

// Atomic reports whether ReplaceShard can work: every key lives on one
// server (standalone or Sentinel), not spread over a Cluster's slots.
func (s *Store) Atomic() bool {
	_, cluster := s.client.(*redis.ClusterClient)
	return !cluster
}

// ErrNotAtomic is ReplaceShard's error on a Cluster, where keys of
// different slots cannot change in one transaction.
var ErrNotAtomic = errors.New("a Redis Cluster cannot change keys of different slots in one transaction")

// ReplaceShard makes shard id hold exactly samples and deletes the shards
// del (as DeleteShard does, modeless gauge keys included) in one
// MULTI/EXEC transaction: another client sees all of it or none of it.
// The keys to delete are listed (one SCAN pass for id and every shard of
// del) before the transaction, so a key of del created meanwhile
// survives: callers pass shards nobody writes any more. A sample of id not in samples is deleted too. Standalone and
// Sentinel only (Atomic); on a Cluster it returns ErrNotAtomic.
func (s *Store) ReplaceShard(ctx context.Context, id store.ShardID, samples []store.Sample, del []store.ShardID) error {
	if !s.Atomic() {
		return fmt.Errorf("replace shard %s: %w", id, ErrNotAtomic)
	}
	if err := validShard(id); err != nil {
		return err
	}
	keep := make(map[string]bool, 2*len(samples))
	for _, smp := range samples {
		h := md5hex(store.CanonicalKeyText(smp.Key))
		keep[s.keyOf(id.KindName(), id.PID, "metric", h)] = true
		keep[s.keyOf(id.KindName(), id.PID, "meta", h)] = true
	}
	for _, d := range del {
		if err := validShard(d); err != nil {
			return err
		}
		if d == id {
			return fmt.Errorf("replace shard %s: it is also to be deleted", id)
		}
	}
	// One pass over the keyspace lists the keys of id and of every shard
	// of del.
	keys, err := s.shardKeysOf(ctx, append([]store.ShardID{id}, del...))
	if err != nil {
		return fmt.Errorf("replace shard %s: %w", id, err)
	}
	var gone []string
	for _, k := range keys[id] {
		if !keep[k] {
			gone = append(gone, k)
		}
	}
	for _, d := range del {
		gone = append(gone, keys[d]...)
	}
	sort.Strings(gone)
	gone = slices.Compact(gone)
	tx := s.client.TxPipeline()
	if len(samples) > 0 {
		if err := newShardWriter(s, id, false).queue(ctx, tx, samples); err != nil {
			return fmt.Errorf("replace shard %s: %w", id, err)
		}
	}
	for _, k := range gone {
		tx.Unlink(ctx, k)
	}
	s.roundTrips.Add(1)
	if _, err := tx.Exec(ctx); err != nil {
		return fmt.Errorf("replace shard %s: %w", id, s.wrap(err))
	}
	return nil
}

// shardKeys lists every key of shard id: <prefix>:<kind>:<pid>:* and, for
// a gauge shard, the modeless keys that belong to it (see DeleteShard).
func (s *Store) shardKeys(ctx context.Context, id store.ShardID) ([]string, error) {
	keys, err := s.shardKeysOf(ctx, []store.ShardID{id})
	if err != nil {
		return nil, err
	}
	return keys[id], nil
}

// shardKeysOf lists the keys of every shard of ids (as shardKeys does) in
// one SCAN pass over the keyspace, sorted per shard: listing shard by
// shard would walk the whole keyspace once per shard, whatever the MATCH
// pattern.
func (s *Store) shardKeysOf(ctx context.Context, ids []store.ShardID) (map[store.ShardID][]string, error) {
	pattern := globEscape(s.cfg.Prefix) + ":*"
	if len(ids) == 1 {
		// Only this shard's names (and, for a gauge, its pid's modeless
		// ones) come back.
		id := ids[0]
		kind := globEscape(id.KindName())
		if id.Kind == store.KindGauge {
			kind = "gauge*"
		}
		pattern = globEscape(s.cfg.Prefix) + ":" + kind + ":" + globEscape(id.PID) + ":*"
	}
	listed, err := s.scanNodes(ctx, pattern)
	if err != nil {
		return nil, err
	}
	want := make(map[shardName]store.ShardID, len(ids))
	gaugePIDs := map[string]bool{}
	for _, id := range ids {
		want[shardName{id.KindName(), id.PID}] = id
		if id.Kind == store.KindGauge {
			gaugePIDs[id.PID] = true
		}
	}
	own := make(map[store.ShardID][]string, len(ids))
	hashes := make(map[store.ShardID]map[string]bool, len(ids))
	modeless := map[string][]string{} // by pid
	for _, k := range listed {
		n, ok := s.splitKey(k)
		if !ok {
			continue
		}
		if n.kind == "gauge" {
			if gaugePIDs[n.pid] {
				modeless[n.pid] = append(modeless[n.pid], k)
			}
			continue
		}
		// A pattern's '*' also matches pids that merely start with ours.
		id, ok := want[shardName{n.kind, n.pid}]
		if !ok {
			continue
		}
		own[id] = append(own[id], k)
		if hashes[id] == nil {
			hashes[id] = map[string]bool{}
		}
		hashes[id][n.md5] = true
	}
	for _, sid := range want {
		if sid.Kind == store.KindGauge {
			extra, err := s.modelessOf(ctx, sid, hashes[sid], modeless[sid.PID])
			if err != nil {
				return nil, err
			}
			own[sid] = append(own[sid], extra...)
		}
		sort.Strings(own[sid])
	}
	return own, nil
}

// modelessOf returns the modeless gauge keys of id.PID that belong to
// shard id: those with a hash of the shard, and for mode all those that
// resolve to no other mode. keys are the listed modeless keys
// (<prefix>:gauge:<pid>:*) of id.PID.
func (s *Store) modelessOf(ctx context.Context, id store.ShardID, hashes map[string]bool, keys []string) ([]string, error) {
	var out []string
	var undecided []keyName
	byHash := map[string][]string{}
	for _, k := range keys {
		n, _ := s.splitKey(k)
		byHash[n.md5] = append(byHash[n.md5], k)
		if n.role != "metric" {
			continue
		}
		if hashes[n.md5] {
			continue
		}
		if id.Mode == "all" {
			undecided = append(undecided, n)
		}
	}
	for h := range hashes {
		out = append(out, byHash[h]...)
	}
	if len(undecided) == 0 {
		return out, nil
	}
	// A modeless hash with no gauge_<mode> key at all reads as mode all.
	pipe := s.client.Pipeline()
	cmds := make([][]*redis.IntCmd, len(undecided))
	for i, n := range undecided {
		for _, m := range store.GaugeModes {
			for _, role := range []string{"metric", "meta"} {
				cmds[i] = append(cmds[i], pipe.Exists(ctx, s.keyOf("gauge_"+m, n.pid, role, n.md5)))
			}
		}
	}
	s.roundTrips.Add(1)
	if _, err := pipe.Exec(ctx); err != nil {
		return nil, s.wrap(err)
	}
	for i, n := range undecided {
		found := false
		for _, c := range cmds[i] {
			if c.Val() > 0 {
				found = true
				break
			}
		}
		if !found {
			out = append(out, byHash[n.md5]...)
		}
	}
	return out, nil
}

// unlink removes keys in pipelines of BatchSize single-key UNLINKs (single
// keys, so that a Cluster routes each to its slot).
func (s *Store) unlink(ctx context.Context, keys []string) error {
	for start := 0; start < len(keys); start += s.cfg.BatchSize {
		end := min(start+s.cfg.BatchSize, len(keys))
		pipe := s.client.Pipeline()
		for _, k := range keys[start:end] {
			pipe.Unlink(ctx, k)
		}
		s.roundTrips.Add(1)
		if _, err := pipe.Exec(ctx); err != nil {
			return s.wrap(err)
		}
	}
	return nil
}

// md5hex is the lower-case hex MD5 of a key text, as the exporter names
// its hashes.
func md5hex(text string) string {
	sum := md5.Sum([]byte(text))
	return hex.EncodeToString(sum[:])
}
