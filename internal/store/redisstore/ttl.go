package redisstore

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/promstore/promstore/internal/store"
)

// TTLSample is what SampleTTLs found.
type TTLSample = store.TTLSample

// SampleTTLs looks at up to n metric hashes of the store's prefix (on each
// master of a Cluster) and reports how many carry a TTL, so that a writer
// can warn before mixing keys that expire with keys that do not.
func (s *Store) SampleTTLs(ctx context.Context, n int) (TTLSample, error) {
	if n <= 0 {
		n = 100
	}
	var (
		mu  sync.Mutex
		out TTLSample
	)
	pattern := globEscape(s.cfg.Prefix) + ":*:*:metric:*"
	err := s.forEachNode(ctx, func(ctx context.Context, c redis.Cmdable, addr string) error {
		var keys []string
		var cursor uint64
		for len(keys) < n {
			s.roundTrips.Add(1)
			batch, next, err := c.Scan(ctx, cursor, pattern, int64(s.cfg.BatchSize)).Result()
			if err != nil {
				return s.nodeErr(addr, fmt.Errorf("scan %s: %w", pattern, err))
			}
			keys = append(keys, batch...)
			if next == 0 {
				break
			}
			cursor = next
		}
		if len(keys) > n {
			keys = keys[:n]
		}
		if len(keys) == 0 {
			return nil
		}
		pipe := c.Pipeline()
		for _, k := range keys {
			pipe.PTTL(ctx, k)
		}
		s.roundTrips.Add(1)
		cmds, err := pipe.Exec(ctx)
		if err != nil {
			return s.nodeErr(addr, fmt.Errorf("pttl: %w", err))
		}
		mu.Lock()
		defer mu.Unlock()
		for _, cmd := range cmds {
			d, ok := cmd.(interface{ Val() time.Duration })
			if !ok {
				continue
			}
			out.Sampled++
			ttl := d.Val()
			if ttl <= 0 {
				// -1: no TTL; -2: the key went away since SCAN.
				continue
			}
			out.WithTTL++
			if out.MinTTL == 0 || ttl < out.MinTTL {
				out.MinTTL = ttl
			}
			out.MaxTTL = max(out.MaxTTL, ttl)
		}
		return nil
	})
	if err != nil {
		return TTLSample{}, s.wrap(err)
	}
	return out, nil
}
