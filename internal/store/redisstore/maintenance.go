package redisstore

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/promstore/promstore/internal/store"
)

// This file holds what `promstore cleanup` needs beyond store.Store: a
// few promstore-owned keys (journal, lock) and the listing and removal
// of orphan and shadow keys.

// auxKey is the key of a promstore-owned value. It holds no ":metric:",
// so neither the Python collector nor Scan takes it for a sample.
func (s *Store) auxKey(name string) string { return s.cfg.Prefix + ":promstore:" + name }

// GetAux returns the promstore-owned value name ("" and false when unset).
func (s *Store) GetAux(ctx context.Context, name string) (string, bool, error) {
	v, err := s.client.Get(ctx, s.auxKey(name)).Result()
	if errors.Is(err, redis.Nil) {
		return "", false, nil
	}
	if err != nil {
		return "", false, fmt.Errorf("get %s: %w", s.auxKey(name), s.wrap(err))
	}
	return v, true, nil
}

// SetAux sets the promstore-owned value name (no expiry).
func (s *Store) SetAux(ctx context.Context, name, value string) error {
	if err := s.client.Set(ctx, s.auxKey(name), value, 0).Err(); err != nil {
		return fmt.Errorf("set %s: %w", s.auxKey(name), s.wrap(err))
	}
	return nil
}

// DelAux deletes the promstore-owned value name.
func (s *Store) DelAux(ctx context.Context, name string) error {
	if err := s.client.Del(ctx, s.auxKey(name)).Err(); err != nil {
		return fmt.Errorf("delete %s: %w", s.auxKey(name), s.wrap(err))
	}
	return nil
}

// unlockScript deletes the lock only when it still holds our token.
var unlockScript = redis.NewScript(`if redis.call("GET", KEYS[1]) == ARGV[1] then return redis.call("DEL", KEYS[1]) end return 0`)

// takeoverScript replaces the lock's value only when it still holds the
// dead holder's token.
var takeoverScript = redis.NewScript(`if redis.call("GET", KEYS[1]) == ARGV[1] then redis.call("SET", KEYS[1], ARGV[2], "PX", ARGV[3]) return 1 end return 0`)

// LockAux takes the promstore-owned lock name (SET NX with an expiry of
// ttl, so that a killed holder does not block forever) and returns its
// release function (an error when the release failed, e.g. an ACL user
// allowed to SET the key but not to run the release script on it). The lock's value names its holder (host, pid
// namespace, pid): a holder of this host and pid namespace whose process
// is gone (killed) is taken over at once instead of after ttl. It fails
// when another holder has it.
func (s *Store) LockAux(ctx context.Context, name string, ttl time.Duration) (func() error, error) {
	k := s.auxKey(name)
	token := lockOwner() + "|" + strconv.FormatInt(time.Now().UnixNano(), 36)
	ok, err := s.client.SetNX(ctx, k, token, ttl).Result()
	if err != nil {
		return nil, fmt.Errorf("lock %s: %w", k, s.wrap(err))
	}
	if !ok {
		held, err := s.client.Get(ctx, k).Result()
		if err != nil && !errors.Is(err, redis.Nil) {
			return nil, fmt.Errorf("lock %s: %w", k, s.wrap(err))
		}
		if deadLocalHolder(held) {
			n, err := takeoverScript.Run(ctx, s.client, []string{k}, held, token, max(ttl.Milliseconds(), 1)).Int()
			if err != nil {
				return nil, fmt.Errorf("lock %s: %w", k, s.wrap(err))
			}
			ok = n == 1
		}
		if !ok {
			return nil, fmt.Errorf("lock %s: %w (%s; it expires after %s if that run died)", k, store.ErrLocked, store.Clip(held), ttl)
		}
	}
	return func() error {
		// 0 (not ours any more: taken over after it expired) is no error.
		if err := unlockScript.Run(context.Background(), s.client, []string{k}, token).Err(); err != nil {
			return fmt.Errorf("release lock %s: %w (it expires after %s)", k, s.wrap(err), ttl)
		}
		return nil
	}, nil
}

// lockOwner names this process in a lock's value: "<host>|<pid
// namespace>|<pid>" (the namespace is empty where /proc does not tell).
func lockOwner() string {
	host, _ := os.Hostname()
	ns, _ := os.Readlink("/proc/self/ns/pid")
	return host + "|" + ns + "|" + strconv.Itoa(os.Getpid())
}

// deadLocalHolder reports whether a lock value names a process of this
// host and pid namespace that no longer runs. A holder elsewhere, or
// whose namespace is unknown, is never judged dead: its lock expires.
func deadLocalHolder(held string) bool {
	f := strings.Split(held, "|")
	if len(f) != 4 || f[1] == "" {
		return false
	}
	mine := strings.Split(lockOwner(), "|")
	if f[0] != mine[0] || f[1] != mine[1] || f[2] == mine[2] {
		return false
	}
	return store.ProcessAlive(f[2]) == store.AliveNo
}

// OrphanKey is a key that holds no readable sample.
type OrphanKey struct {
	Key string
	// Reason says why the key is an orphan or a shadow.
	Reason string
	// Updated is the metric hash's updated_at (zero when unknown).
	Updated time.Time
	// Bytes is the key's MEMORY USAGE (zero when unknown).
	Bytes int64
}

// Orphans lists the metric hashes no collector can name (their meta hash
// is missing), with their meta-less siblings, and the modeless gauge
// hashes (<prefix>:gauge:<pid>:metric:<md5>, and their meta hash) that a
// gauge_<mode> metric hash of the same pid and md5 shadows. Meta hashes
// without a metric hash are normal (see docs/formats.md) and not listed.
func (s *Store) Orphans(ctx context.Context) ([]OrphanKey, error) {
	keys, err := s.scanNodes(ctx, globEscape(s.cfg.Prefix)+":*")
	if err != nil {
		return nil, err
	}
	sort.Strings(keys)
	exists := make(map[string]bool, len(keys))
	for _, k := range keys {
		exists[k] = true
	}
	var out []OrphanKey
	for _, k := range keys {
		n, ok := s.splitKey(k)
		if !ok || n.role != "metric" || n.pid == "" || n.md5 == "" {
			continue
		}
		meta := s.keyOf(n.kind, n.pid, "meta", n.md5)
		if n.kind != "gauge" {
			if _, _, err := store.ParseKindName(n.kind); err != nil {
				continue
			}
			if !exists[meta] {
				out = append(out, OrphanKey{Key: k, Reason: "orphan metric hash: meta hash " + meta + " is missing"})
			}
			continue
		}
		shadowed, hasModeMeta := "", false
		for _, m := range store.GaugeModes {
			if exists[s.keyOf("gauge_"+m, n.pid, "metric", n.md5)] {
				shadowed = "gauge_" + m
				break
			}
			hasModeMeta = hasModeMeta || exists[s.keyOf("gauge_"+m, n.pid, "meta", n.md5)]
		}
		switch {
		case shadowed != "":
			out = append(out, OrphanKey{Key: k, Reason: "modeless gauge hash shadowed by " + shadowed})
			if exists[meta] {
				out = append(out, OrphanKey{Key: meta, Reason: "meta hash of a shadowed modeless gauge hash"})
			}
		case !exists[meta] && !hasModeMeta:
			out = append(out, OrphanKey{Key: k, Reason: "orphan modeless gauge hash: no meta hash"})
		}
	}
	// updated_at of the metric hashes, so callers can spare fresh ones,
	// and their memory, so that a dry run can say what deleting frees.
	pipe := s.client.Pipeline()
	cmds := make([]*redis.StringCmd, len(out))
	mem := make([]*redis.IntCmd, len(out))
	for i, o := range out {
		cmds[i] = pipe.HGet(ctx, o.Key, "updated_at")
		mem[i] = pipe.MemoryUsage(ctx, o.Key)
	}
	if len(out) > 0 {
		s.roundTrips.Add(1)
		// A missing field or a key of another type leaves Updated unknown;
		// failing to talk to the server fails the listing, since callers
		// would take the unknown times for old ones.
		if _, err := pipe.Exec(ctx); err != nil {
			for i, c := range cmds {
				if e := c.Err(); e != nil && !errors.Is(e, redis.Nil) && !isKeyError(e) {
					return nil, fmt.Errorf("read updated_at of %s: %w", out[i].Key, s.wrap(e))
				}
			}
		}
	}
	for i, c := range mem {
		if n, err := c.Result(); err == nil {
			out[i].Bytes = n // an error (MEMORY disabled): unknown
		}
	}
	for i, c := range cmds {
		if v, err := c.Result(); err == nil {
			if f, err := strconv.ParseFloat(v, 64); err == nil && f > 0 {
				sec := int64(f)
				out[i].Updated = time.Unix(sec, int64((f-float64(sec))*1e9))
			}
		}
	}
	return out, nil
}

// DeleteKeys unlinks keys (single-key commands, so a Cluster routes each
// to its slot). Only keys under the store's prefix are accepted.
func (s *Store) DeleteKeys(ctx context.Context, keys []string) error {
	for _, k := range keys {
		if _, ok := s.splitKey(k); !ok {
			return fmt.Errorf("delete %s: not a key of prefix %s", k, s.cfg.Prefix)
		}
	}
	if err := s.unlink(ctx, keys); err != nil {
		return fmt.Errorf("delete keys: %w", err)
	}
	return nil
}
