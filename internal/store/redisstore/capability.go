package redisstore

import (
	"context"

	"github.com/promstore/promstore/internal/store"
)

// Ping reaches the server, or every master of a Cluster (store.Pinger):
// a readiness check that lists no keys.
func (s *Store) Ping(ctx context.Context) error { return s.ping(ctx) }

// LessShards is the order in which Scan delivers shards: kind name, then
// pid (store.ComparePIDs) (store.ShardOrder).
func (s *Store) LessShards(a, b store.ShardID) bool { return lessShard(a, b) }

// KeysPerSample is 2: a metric and a meta hash (store.SampleKeys).
func (s *Store) KeysPerSample() int { return 2 }

// AuxLocation names the key of maintenance record name (store.AuxStore).
func (s *Store) AuxLocation(name string) string { return s.auxKey(name) }

// WhatAStoreIs says what a Redis store is made of (store.Explainer).
func (s *Store) WhatAStoreIs() string {
	return "no metric hashes under the prefix (a store is the <prefix>:<kind>:<pid>:metric:<md5> hashes gunicorn-prometheus-exporter writes)"
}

// The capabilities a Redis store has.
var (
	_ store.Pinger      = (*Store)(nil)
	_ store.ShardOrder  = (*Store)(nil)
	_ store.SampleKeys  = (*Store)(nil)
	_ store.AuxStore    = (*Store)(nil)
	_ store.TTLSampler  = (*Store)(nil)
	_ store.Explainer   = (*Store)(nil)
	_ store.StoreFinder = (*Store)(nil)
)
