package redisstore

import (
	"context"
	"crypto/md5"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"sort"

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
// sample HSET metric, HSET meta, HSETNX created_at (and PEXPIRE of both
// with a TTL). In a Cluster go-redis sends each to the master of its slot.
func (s *Store) WriteShard(ctx context.Context, id store.ShardID, samples []store.Sample) error {
	return s.writeShard(ctx, id, samples, false)
}

// WriteNewShard is WriteShard for samples the caller has just found absent
// from the store (migrate's planner reads the target first): created_at
// goes into the one HSET of the meta hash, with no HSETNX, so a sample
// costs two commands instead of three. A meta hash that exists after all
// (one without a metric hash, which holds no sample) gets its created_at
// reset to now; everything else is written as WriteShard writes it.
func (s *Store) WriteNewShard(ctx context.Context, id store.ShardID, samples []store.Sample) error {
	return s.writeShard(ctx, id, samples, true)
}

func (s *Store) writeShard(ctx context.Context, id store.ShardID, samples []store.Sample, absent bool) error {
	if err := validShard(id); err != nil {
		return err
	}
	if len(samples) == 0 {
		return nil
	}
	w := newShardWriter(s, id, absent)
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
// The keys to delete are listed (SCAN) before the transaction, so a key
// of del created meanwhile survives: callers pass shards nobody writes
// any more. A sample of id not in samples is deleted too. Standalone and
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
	old, err := s.shardKeys(ctx, id)
	if err != nil {
		return fmt.Errorf("replace shard %s: %w", id, err)
	}
	var gone []string
	for _, k := range old {
		if !keep[k] {
			gone = append(gone, k)
		}
	}
	for _, d := range del {
		if err := validShard(d); err != nil {
			return err
		}
		if d == id {
			return fmt.Errorf("replace shard %s: it is also to be deleted", id)
		}
		keys, err := s.shardKeys(ctx, d)
		if err != nil {
			return fmt.Errorf("replace shard %s: delete %s: %w", id, d, err)
		}
		gone = append(gone, keys...)
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
	base := globEscape(s.cfg.Prefix + ":" + id.KindName() + ":" + id.PID)
	keys, err := s.scanNodes(ctx, base+":*")
	if err != nil {
		return nil, err
	}
	var own []string
	hashes := map[string]bool{}
	for _, k := range keys {
		n, ok := s.splitKey(k)
		// The pattern's '*' also matches pids that merely start with ours.
		if !ok || n.kind != id.KindName() || n.pid != id.PID {
			continue
		}
		own = append(own, k)
		hashes[n.md5] = true
	}
	if id.Kind == store.KindGauge {
		extra, err := s.modelessOf(ctx, id, hashes)
		if err != nil {
			return nil, err
		}
		own = append(own, extra...)
	}
	sort.Strings(own)
	return own, nil
}

// modelessOf returns the modeless gauge keys of id.PID that belong to
// shard id: those with a hash of the shard, and for mode all those that
// resolve to no other mode.
func (s *Store) modelessOf(ctx context.Context, id store.ShardID, hashes map[string]bool) ([]string, error) {
	keys, err := s.scanNodes(ctx, globEscape(s.cfg.Prefix+":gauge:"+id.PID)+":*")
	if err != nil {
		return nil, err
	}
	var out []string
	var undecided []keyName
	byHash := map[string][]string{}
	for _, k := range keys {
		n, ok := s.splitKey(k)
		if !ok || n.kind != "gauge" || n.pid != id.PID {
			continue
		}
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
