package redisstore

import (
	"context"
	"crypto/md5"
	"encoding/hex"
	"math"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/promstore/promstore/internal/store"
	"github.com/promstore/promstore/internal/store/storetest"
	"github.com/promstore/promstore/internal/testenv"
)

func TestAppendPyRepr(t *testing.T) {
	tests := []struct {
		in   float64
		want string
	}{
		{0, "0.0"},
		{math.Copysign(0, -1), "-0.0"},
		{1, "1.0"},
		{-3, "-3.0"},
		{0.25, "0.25"},
		{1732550000.123456, "1732550000.123456"},
		{0.0001, "0.0001"},
		{0.00001, "1e-05"},
		{9999999999999998, "9999999999999998.0"},
		{1e16, "1e+16"},
		{123456789012345680, "1.2345678901234568e+17"},
		{1.5e300, "1.5e+300"},
		{math.Inf(1), "inf"},
		{math.Inf(-1), "-inf"},
		{math.NaN(), "nan"},
		{5e-324, "5e-324"},
		{-1e-4, "-0.0001"},
		{99.99999999999999, "99.99999999999999"},
	}
	for _, tt := range tests {
		if got := string(appendPyRepr([]byte("x"), tt.in)); got != "x"+tt.want {
			t.Errorf("appendPyRepr(%v) = %q, want %q", tt.in, got, "x"+tt.want)
		}
		if got := store.PyRepr(tt.in); got != tt.want {
			t.Errorf("store.PyRepr(%v) = %q, want %q (table out of date)", tt.in, got, tt.want)
		}
	}
}

// FuzzAppendPyRepr checks the allocation-free formatting against
// store.PyRepr, which follows Python byte for byte.
func FuzzAppendPyRepr(f *testing.F) {
	for _, v := range []float64{0, 1, -1, 0.1, 1e-4, 9.999e-5, 1e15, 9.999999999999999e15, 1e16, 123.456, -7.5e-3, math.MaxFloat64, math.SmallestNonzeroFloat64} {
		f.Add(math.Float64bits(v))
	}
	f.Fuzz(func(t *testing.T, bits uint64) {
		v := math.Float64frombits(bits)
		if got, want := string(appendPyRepr(nil, v)), store.PyRepr(v); got != want {
			t.Errorf("appendPyRepr(%v) = %q, store.PyRepr %q", v, got, want)
		}
	})
}

// TestWriteNewShard writes the same samples with WriteShard under one
// prefix and WriteNewShard under another, on a standalone server and a
// Cluster, in batches smaller than a shard and with a TTL, and requires
// the same hashes field by field.
func TestWriteNewShard(t *testing.T) {
	type target struct {
		name   string
		urls   []string
		client redis.UniversalClient
	}
	srv := testenv.StartRedis(t)
	rc := testenv.StartCluster(t)
	for _, tg := range []target{
		{"standalone", []string{srv.URL()}, srv.Client()},
		{"cluster", rc.URLs(), rc.Client()},
	} {
		t.Run(tg.name, func(t *testing.T) {
			ctx := context.Background()
			now := func() time.Time { return time.Unix(1732550000, 250000000) }
			var samples []store.Sample
			for i := range 25 {
				k := storetest.Key(t, "lat", "lat_bucket", []store.Label{{Name: "le", Value: strconv.Itoa(i) + ".0"}, {Name: "route", Value: "/x\n\u00e9"}}, "Latency.")
				samples = append(samples, store.Sample{Key: k, Value: float64(i) / 3, Timestamp: float64(i)})
			}
			samples = append(samples, store.Sample{Key: storetest.LegacyKey(t, "old", "old_total", nil), Value: math.Inf(1)})
			id := store.ShardID{Kind: store.KindGauge, Mode: "livesum", PID: "7"}
			for _, prefix := range []string{"old", "new"} {
				s := openStore(t, Config{URLs: tg.urls, Cluster: tg.name == "cluster", Prefix: prefix, BatchSize: 7, TTL: time.Hour})
				s.now = now
				write := s.WriteShard
				if prefix == "new" {
					write = s.WriteNewShard
				}
				if err := write(ctx, id, samples); err != nil {
					t.Fatal(err)
				}
			}
			for _, smp := range samples {
				h := md5hex(store.CanonicalKeyText(smp.Key))
				for _, role := range []string{"metric", "meta"} {
					suffix := ":gauge_livesum:7:" + role + ":" + h
					old := tg.client.HGetAll(ctx, "old"+suffix).Val()
					got := tg.client.HGetAll(ctx, "new"+suffix).Val()
					if len(old) == 0 || !mapsEqual(old, got) {
						t.Errorf("%s: WriteNewShard wrote %v, WriteShard %v", suffix, got, old)
					}
					if ttl := tg.client.TTL(ctx, "new"+suffix).Val(); ttl <= 59*time.Minute {
						t.Errorf("new%s TTL %v, want 1h", suffix, ttl)
					}
				}
			}
			if got := tg.client.HGet(ctx, "new:gauge_livesum:7:meta:"+md5hex(store.CanonicalKeyText(samples[25].Key)), "original_key").Val(); got != store.CanonicalKeyText(samples[25].Key) {
				t.Errorf("legacy key written as %q", got)
			}
		})
	}
}

// TestWriteKeepsCreatedAt: WriteShard keeps the created_at of an
// existing meta hash (one without a metric hash, as the exporter leaves
// behind); WriteNewShard, told the sample is new, sets it.
func TestWriteKeepsCreatedAt(t *testing.T) {
	srv := testenv.StartRedis(t)
	c := srv.Client()
	ctx := context.Background()
	s := openStore(t, Config{URLs: []string{srv.URL()}})
	s.now = func() time.Time { return time.Unix(1800000000, 0) }
	k := storetest.Key(t, "c", "c_total", nil, "C.")
	meta := "gunicorn:counter:1:meta:" + md5hex(k.Text)
	c.HSet(ctx, meta, "original_key", k.Text, "created_at", "1.5")
	id := store.ShardID{Kind: store.KindCounter, PID: "1"}
	if err := s.WriteShard(ctx, id, []store.Sample{{Key: k, Value: 2}}); err != nil {
		t.Fatal(err)
	}
	if got := c.HGet(ctx, meta, "created_at").Val(); got != "1.5" {
		t.Errorf("WriteShard: created_at %q, want 1.5 kept", got)
	}
	if err := s.WriteNewShard(ctx, id, []store.Sample{{Key: k, Value: 3}}); err != nil {
		t.Fatal(err)
	}
	if got := c.HGet(ctx, meta, "created_at").Val(); got != "1800000000.0" {
		t.Errorf("WriteNewShard: created_at %q, want 1800000000.0", got)
	}
	storetest.CompareSamples(t, storetest.ScanAll(t, s), []store.Sample{{Shard: id, Key: k, Value: 3}})
}

// TestWriteErrorNamesShard: a key of the wrong type fails the write with
// an error naming the shard and the server's reason.
func TestWriteErrorNamesShard(t *testing.T) {
	srv := testenv.StartRedis(t)
	ctx := context.Background()
	s := openStore(t, Config{URLs: []string{srv.URL()}})
	k := storetest.Key(t, "c", "c_total", nil, "C.")
	srv.Client().Set(ctx, "gunicorn:counter:9:metric:"+md5hex(k.Text), "x", 0)
	for _, write := range []func(context.Context, store.ShardID, []store.Sample) error{s.WriteShard, s.WriteNewShard} {
		err := write(ctx, store.ShardID{Kind: store.KindCounter, PID: "9"}, []store.Sample{{Key: k, Value: 1}})
		if err == nil || !strings.Contains(err.Error(), "shard counter_9") || !strings.Contains(err.Error(), "WRONGTYPE") {
			t.Errorf("write over a string key: %v", err)
		}
	}
}

// TestWriteMetaHashFirst: every write sends a sample's meta hash before
// its metric hash, so that a write cut off anywhere leaves at worst a
// meta hash without its metric hash (no problem), never an orphan metric
// hash (a migrate SIGKILLed part-way left some, which dump then warned
// about). The server's slow log, set to log every command, gives the
// order it executed them in.
func TestWriteMetaHashFirst(t *testing.T) {
	srv := testenv.StartRedis(t)
	c := srv.Client()
	ctx := context.Background()
	s := openStore(t, Config{URLs: []string{srv.URL()}, BatchSize: 7, TTL: time.Hour})
	var samples []store.Sample
	for i := range 10 {
		samples = append(samples, store.Sample{Key: storetest.Key(t, "c", "c_total", []store.Label{{Name: "i", Value: strconv.Itoa(i)}}, "C."), Value: float64(i)})
	}
	id := store.ShardID{Kind: store.KindCounter, PID: "1"}
	writes := []struct {
		name  string
		write func() error
	}{
		{"WriteShard", func() error { return s.WriteShard(ctx, id, samples) }},
		{"WriteNewShard", func() error { return s.WriteNewShard(ctx, id, samples) }},
		{"ReplaceShard", func() error { return s.ReplaceShard(ctx, id, samples, nil) }},
	}
	for _, w := range writes {
		t.Run(w.name, func(t *testing.T) {
			if err := c.FlushAll(ctx).Err(); err != nil {
				t.Fatal(err)
			}
			mustConfig(t, c, "slowlog-log-slower-than", "0")
			mustConfig(t, c, "slowlog-max-len", "100000")
			if err := c.SlowLogReset(ctx).Err(); err != nil {
				t.Fatal(err)
			}
			if err := w.write(); err != nil {
				t.Fatal(err)
			}
			logs, err := c.SlowLogGet(ctx, -1).Result()
			if err != nil {
				t.Fatal(err)
			}
			mustConfig(t, c, "slowlog-log-slower-than", "10000")
			metaSeen := map[string]bool{}
			metrics := 0
			for i := len(logs) - 1; i >= 0; i-- { // oldest first
				args := logs[i].Args
				if len(args) < 2 || !strings.EqualFold(args[0], "hset") {
					continue
				}
				md5 := args[1][strings.LastIndexByte(args[1], ':')+1:]
				switch {
				case strings.Contains(args[1], ":meta:"):
					metaSeen[md5] = true
				case strings.Contains(args[1], ":metric:"):
					metrics++
					if !metaSeen[md5] {
						t.Errorf("metric hash %s written before its meta hash", args[1])
					}
				}
			}
			if metrics != len(samples) {
				t.Errorf("the slow log holds %d metric hash writes, want %d", metrics, len(samples))
			}
		})
	}
}

// TestRefusedMetaHashLeavesNoOrphan: a meta hash the server refuses (here
// a key of the wrong type; under maxmemory, OOM, whose measure shrinks as a
// pipeline is read) stops the write before the metric hashes of its batch,
// which would be orphans: a pipeline's commands are answered one by one, and
// one refused does not stop the next.
func TestRefusedMetaHashLeavesNoOrphan(t *testing.T) {
	srv := testenv.StartRedis(t)
	c := srv.Client()
	ctx := context.Background()
	s := openStore(t, Config{URLs: []string{srv.URL()}, BatchSize: 7})
	var samples []store.Sample
	for i := range 6 {
		samples = append(samples, store.Sample{Key: storetest.Key(t, "c", "c_total", []store.Label{{Name: "i", Value: strconv.Itoa(i)}}, "C."), Value: float64(i)})
	}
	id := store.ShardID{Kind: store.KindCounter, PID: "1"}
	sum := md5.Sum([]byte(store.CanonicalKeyText(samples[2].Key)))
	meta := "gunicorn:counter:1:meta:" + hex.EncodeToString(sum[:])
	if err := c.Set(ctx, meta, "not a hash", 0).Err(); err != nil {
		t.Fatal(err)
	}
	if err := s.WriteShard(ctx, id, samples); err == nil {
		t.Fatal("WriteShard over a meta key of the wrong type: no error")
	}
	keys, err := c.Keys(ctx, "gunicorn:counter:1:metric:*").Result()
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range keys {
		typ, err := c.Type(ctx, strings.Replace(k, ":metric:", ":meta:", 1)).Result()
		if err != nil {
			t.Fatal(err)
		}
		if typ != "hash" {
			t.Errorf("metric hash %s written although its meta hash was refused (an orphan)", k)
		}
	}
	if len(keys) != 2 {
		t.Errorf("%d metric hashes written, want the 2 of the first batch", len(keys))
	}
}

func mustConfig(t *testing.T, c *redis.Client, name, value string) {
	t.Helper()
	if err := c.ConfigSet(context.Background(), name, value).Err(); err != nil {
		t.Fatal(err)
	}
}
