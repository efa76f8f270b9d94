package redisstore

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/promstore/promstore/internal/store"
)

// This file holds what a dry run needs to tell whether a real run would
// be refused by the server: who holds a promstore lock, whether this
// client may write the keys a run writes, and how much memory the server
// has left below its maxmemory.

// AuxTTL returns how long the promstore-owned key name lives on (zero
// for no expiry) and whether it exists.
func (s *Store) AuxTTL(ctx context.Context, name string) (time.Duration, bool, error) {
	d, err := s.client.PTTL(ctx, s.auxKey(name)).Result()
	if err != nil {
		return 0, false, fmt.Errorf("pttl %s: %w", s.auxKey(name), s.wrap(err))
	}
	switch {
	case d == -2*time.Nanosecond || d == -2*time.Millisecond:
		return 0, false, nil
	case d < 0:
		return 0, true, nil
	}
	return d, true, nil
}

// AuxKey returns the Redis key of the promstore-owned value name.
func (s *Store) AuxKey(name string) string { return s.auxKey(name) }

// ReadGateName is the name of the promstore-owned read gate hash (see
// EnterRead), for CheckWrite.
const ReadGateName = readersName

// probeField is the hash field CheckWrite deletes: no writer uses it.
const probeField = "promstore-dry-run-probe"

// CheckWrite tells whether this client may write the promstore-owned
// keys auxNames, the keys of the shards ids and the keys keys (orphan
// keys a run deletes), without changing any:
// it sends HDEL of a field no key has (a write command, so an ACL user
// without write permission on a key gets NOPERM and a read-only replica
// READONLY, while a permitted HDEL deletes nothing; WRONGTYPE, for a
// key of another type, means the write was permitted). The shards' keys
// are stood for by a metric and a meta hash name of each shard (ACL key
// patterns see names only). It returns the first refusal, naming the key.
func (s *Store) CheckWrite(ctx context.Context, auxNames []string, ids []store.ShardID, more []string) error {
	var keys []string
	for _, n := range auxNames {
		keys = append(keys, s.auxKey(n))
	}
	keys = append(keys, more...)
	const probeMD5 = "00000000000000000000000000000000"
	for _, id := range ids {
		keys = append(keys, s.keyOf(id.KindName(), id.PID, "metric", probeMD5), s.keyOf(id.KindName(), id.PID, "meta", probeMD5))
	}
	for start := 0; start < len(keys); start += s.cfg.BatchSize {
		end := min(start+s.cfg.BatchSize, len(keys))
		pipe := s.client.Pipeline()
		cmds := make([]*redis.IntCmd, 0, end-start)
		for _, k := range keys[start:end] {
			cmds = append(cmds, pipe.HDel(ctx, k, probeField))
		}
		s.roundTrips.Add(1)
		_, err := pipe.Exec(ctx)
		for i, c := range cmds {
			if e := c.Err(); e != nil && !strings.HasPrefix(e.Error(), "WRONGTYPE") {
				return fmt.Errorf("may not write %s: %w", keys[start+i], s.wrap(e))
			}
		}
		if err != nil && !strings.HasPrefix(err.Error(), "WRONGTYPE") {
			return s.wrap(err)
		}
	}
	return nil
}

// NodeMemory is the memory of one Redis server (one master of a Cluster).
type NodeMemory struct {
	Addr string
	// Used is used_memory; Max is maxmemory (0: no limit); Policy is
	// maxmemory-policy.
	Used, Max int64
	Policy    string
}

// Refuses reports whether the server answers writes that need more
// memory than it has left with an error instead of evicting keys:
// noeviction always, the volatile-* policies when no key has a TTL (the
// promstore-written keys of a store have none unless asked).
func (m NodeMemory) Refuses() bool {
	return m.Max > 0 && (m.Policy == "noeviction" || strings.HasPrefix(m.Policy, "volatile-"))
}

// Memory returns the memory of every node holding data (INFO memory).
func (s *Store) Memory(ctx context.Context) ([]NodeMemory, error) {
	var (
		mu  sync.Mutex
		out []NodeMemory
	)
	err := s.forEachNode(ctx, func(ctx context.Context, c redis.Cmdable, addr string) error {
		info, err := c.Info(ctx, "memory").Result()
		if err != nil {
			return s.nodeErr(addr, fmt.Errorf("info memory: %w", err))
		}
		m := NodeMemory{Addr: addr}
		for _, l := range strings.Split(info, "\n") {
			k, v, ok := strings.Cut(strings.TrimSpace(l), ":")
			if !ok {
				continue
			}
			switch k {
			case "used_memory":
				m.Used, err = strconv.ParseInt(v, 10, 64)
			case "maxmemory":
				m.Max, err = strconv.ParseInt(v, 10, 64)
			case "maxmemory_policy":
				m.Policy = v
			}
			if err != nil {
				return s.nodeErr(addr, fmt.Errorf("info memory: %s: %w", k, err))
			}
		}
		if m.Policy == "" {
			return s.nodeErr(addr, errors.New("info memory: no maxmemory_policy"))
		}
		mu.Lock()
		out = append(out, m)
		mu.Unlock()
		return nil
	})
	return out, err
}
