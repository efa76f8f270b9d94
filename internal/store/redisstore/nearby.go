package redisstore

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"sync"

	"github.com/redis/go-redis/v9"

	"github.com/promstore/promstore/internal/store"
)

// Bounds of NearbyStores' look: SCAN calls per node, keys asked per call,
// prefixes named.
const (
	nearbyScans    = 20
	nearbyCount    = 1000
	nearbyPrefixes = 5
)

// NearbyStores names the other key prefixes under which this server holds
// metric hashes (<prefix>:<kind>:<pid>:metric:<md5> of a known kind), as
// the --redis-prefix flag that selects each, for the message that the
// store's own prefix holds none (store.StoreFinder). It looks at up to
// nearbyScans*nearbyCount keys per node, so a large server is not walked
// whole; the prefixes it names are sorted, at most nearbyPrefixes.
func (s *Store) NearbyStores(ctx context.Context) ([]string, error) {
	var mu sync.Mutex
	found := map[string]bool{}
	err := s.forEachNode(ctx, func(ctx context.Context, c redis.Cmdable, addr string) error {
		var cursor uint64
		for range nearbyScans {
			s.roundTrips.Add(1)
			batch, next, err := c.Scan(ctx, cursor, "*:metric:*", nearbyCount).Result()
			if err != nil {
				return s.nodeErr(addr, fmt.Errorf("scan *:metric:*: %w", err))
			}
			mu.Lock()
			for _, k := range batch {
				if p, ok := metricKeyPrefix(k); ok && p != s.cfg.Prefix {
					found[p] = true
				}
			}
			mu.Unlock()
			if next == 0 {
				return nil
			}
			cursor = next
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	prefixes := make([]string, 0, len(found))
	for p := range found {
		prefixes = append(prefixes, p)
	}
	sort.Strings(prefixes)
	if len(prefixes) > nearbyPrefixes {
		prefixes = prefixes[:nearbyPrefixes]
	}
	flags := make([]string, len(prefixes))
	for i, p := range prefixes {
		flags[i] = "--redis-prefix " + store.ShellWord(p)
	}
	return flags, nil
}

// metricKeyPrefix returns the prefix of k when k is a metric hash's name,
// <prefix>:<kind>:<pid>:metric:<md5>, of a known kind (the modeless
// "gauge" included), with a pid free of ':'.
func metricKeyPrefix(k string) (string, bool) {
	parts := strings.Split(k, ":")
	n := len(parts)
	if n < 5 || parts[n-2] != "metric" || parts[n-1] == "" || parts[n-3] == "" {
		return "", false
	}
	if kind := parts[n-4]; kind != "gauge" {
		if _, _, err := store.ParseKindName(kind); err != nil {
			return "", false
		}
	}
	prefix := strings.Join(parts[:n-4], ":")
	return prefix, prefix != ""
}
