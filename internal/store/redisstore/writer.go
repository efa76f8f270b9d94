package redisstore

import (
	"context"
	"crypto/md5"
	"encoding/hex"
	"math"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/promstore/promstore/internal/store"
)

// shardWriter encodes the writes of one WriteShard call. It builds the
// key names and field values of a batch in one byte arena, turns that into
// one string, and hands go-redis pointers to substrings of it (a *string
// in an interface costs no allocation, a string does), so that a batch
// costs a few allocations besides go-redis's own per command.
type shardWriter struct {
	s                   *Store
	base                string // <prefix>:<kind>:<pid>:
	typ, mode, now, ttl string
	// updated is updated_at: now unless the caller gave the time.
	updated string
	ttlSet  bool
	// absent: the caller knows the samples are new (WriteNewShard).
	absent bool

	arena   []byte
	spans   []int // end offsets in arena
	strs    []string
	texts   []string
	scratch []byte
}

func newShardWriter(s *Store, id store.ShardID, absent bool) *shardWriter {
	w := &shardWriter{
		s:      s,
		absent: absent,
		base:   s.cfg.Prefix + ":" + id.KindName() + ":" + id.PID + ":",
		typ:    string(id.Kind),
		mode:   "all",
		now:    pyTime(s.now()),
		ttl:    "0",
	}
	w.updated = w.now
	if id.Kind == store.KindGauge {
		w.mode = id.Mode
	}
	if s.cfg.TTL > 0 {
		w.ttl = strconv.FormatInt(max(s.cfg.TTL.Milliseconds(), 1), 10)
		w.ttlSet = true
	}
	return w
}

// pyTime is t as the exporter writes a time: Unix seconds, as Python's
// str(time.time()) spells them (to the microsecond).
func pyTime(t time.Time) string { return store.PyRepr(float64(t.UnixMicro()) / 1e6) }

// encode fills w.strs with, per sample, the metric key, the meta key, the
// value and the timestamp (4 strings per sample), and w.texts with the
// original_key texts.
func (w *shardWriter) encode(samples []store.Sample) {
	w.arena, w.spans = w.arena[:0], w.spans[:0]
	w.texts = w.texts[:0]
	for i := range samples {
		smp := &samples[i]
		text := store.CanonicalKeyText(smp.Key)
		w.texts = append(w.texts, text)
		w.scratch = append(w.scratch[:0], text...)
		sum := md5.Sum(w.scratch)
		var h [32]byte
		hex.Encode(h[:], sum[:])
		w.arena = append(append(append(w.arena, w.base...), "metric:"...), h[:]...)
		w.spans = append(w.spans, len(w.arena))
		w.arena = append(append(append(w.arena, w.base...), "meta:"...), h[:]...)
		w.spans = append(w.spans, len(w.arena))
		w.arena = appendPyRepr(w.arena, smp.Value)
		w.spans = append(w.spans, len(w.arena))
		w.arena = appendPyRepr(w.arena, smp.Timestamp)
		w.spans = append(w.spans, len(w.arena))
	}
	all := string(w.arena)
	w.strs = w.strs[:0]
	start := 0
	for _, end := range w.spans {
		w.strs = append(w.strs, all[start:end])
		start = end
	}
}

// commandsPerSample is the number of commands write sends per sample.
func (w *shardWriter) commandsPerSample() int {
	n := 3
	if w.absent {
		n = 2
	}
	if w.ttlSet {
		n += 2
	}
	return n
}

// write sends the samples in pipelines of about BatchSize commands.
func (w *shardWriter) write(ctx context.Context, samples []store.Sample) error {
	return w.queue(ctx, nil, samples)
}

// queue sends the samples in pipelines of about BatchSize commands or,
// when tx is not nil, queues them all on tx (a MULTI/EXEC transaction the
// caller executes).
func (w *shardWriter) queue(ctx context.Context, tx redis.Pipeliner, samples []store.Sample) error {
	size := max(w.s.cfg.BatchSize/w.commandsPerSample(), 1)
	// A batch is sent as two pipelines: its meta hashes, then, once every
	// one of them is written, its metric hashes. A server executes a
	// connection's commands in order, so a write cut off anywhere (the
	// writer killed, the connection lost) leaves at worst meta hashes
	// without their metric hashes, which hold no sample and are no problem
	// (docs/formats.md), never a metric hash without its meta hash (an
	// orphan, which readers warn about); a reader during the write sees
	// none either. Two pipelines, not one, because a server answers each
	// command of a pipeline on its own: a meta hash refused (OOM under
	// maxmemory, whose measure shrinks as the pipeline is read; a key of
	// the wrong type) does not stop its metric hash, which would be an
	// orphan. (In a Cluster the two keys may live on different masters,
	// and nothing orders a kill's cut.)
	var (
		metaArgs, metricArgs []any
		metaEnds, metricEnds []int
	)
	for start := 0; start < len(samples); start += size {
		batch := samples[start:min(start+size, len(samples))]
		w.encode(batch)
		metaArgs, metaEnds = metaArgs[:0], metaEnds[:0]
		metricArgs, metricEnds = metricArgs[:0], metricEnds[:0]
		for i := range batch {
			mk, tk := &w.strs[4*i], &w.strs[4*i+1]
			metaArgs = append(metaArgs, "hset", tk, "original_key", &w.texts[i], "typ", &w.typ, "multiprocess_mode", &w.mode)
			if w.absent {
				metaArgs = append(metaArgs, "created_at", &w.now)
				metaEnds = append(metaEnds, len(metaArgs))
			} else {
				metaEnds = append(metaEnds, len(metaArgs))
				metaArgs = append(metaArgs, "hsetnx", tk, "created_at", &w.now)
				metaEnds = append(metaEnds, len(metaArgs))
			}
			metricArgs = append(metricArgs, "hset", mk, "value", &w.strs[4*i+2], "timestamp", &w.strs[4*i+3], "updated_at", &w.updated)
			metricEnds = append(metricEnds, len(metricArgs))
			if w.ttlSet {
				metaArgs = append(metaArgs, "pexpire", tk, &w.ttl)
				metaEnds = append(metaEnds, len(metaArgs))
				metricArgs = append(metricArgs, "pexpire", mk, &w.ttl)
				metricEnds = append(metricEnds, len(metricArgs))
			}
		}
		// Slice the commands out of the args only now that they have
		// stopped growing.
		for _, part := range [2]struct {
			args []any
			ends []int
		}{{metaArgs, metaEnds}, {metricArgs, metricEnds}} {
			pipe := tx
			if pipe == nil {
				pipe = w.s.client.Pipeline()
			}
			from := 0
			for _, to := range part.ends {
				pipe.Do(ctx, part.args[from:to:to]...)
				from = to
			}
			if tx != nil {
				continue
			}
			w.s.roundTrips.Add(1)
			if _, err := pipe.Exec(ctx); err != nil {
				return w.s.wrap(err)
			}
		}
		if tx != nil {
			// The strings of this batch stay referenced by the queued
			// commands: start the next batch in fresh buffers.
			metaArgs, metricArgs, metaEnds, metricEnds = nil, nil, nil, nil
			w.arena, w.spans, w.strs, w.texts = nil, nil, nil, nil
		}
	}
	return nil
}

// appendPyRepr appends Python's repr of f (store.PyRepr) to dst, without
// allocating for the values a store mostly holds: integers below 1e16 and
// numbers written in positional notation (1e-4 <= |f| < 1e16).
func appendPyRepr(dst []byte, f float64) []byte {
	a := math.Abs(f)
	switch {
	case f == 0:
		if math.Signbit(f) {
			return append(dst, "-0.0"...)
		}
		return append(dst, "0.0"...)
	case a < 1e16 && a == math.Trunc(a):
		return append(strconv.AppendInt(dst, int64(f), 10), '.', '0')
	case a >= 1e-4 && a < 1e16:
		// Python's repr uses the shortest round-tripping digits, as Go's
		// precision -1 does, positionally for exponents -4..15.
		start := len(dst)
		dst = strconv.AppendFloat(dst, f, 'f', -1, 64)
		for _, c := range dst[start:] {
			if c == '.' {
				return dst
			}
		}
		return append(dst, '.', '0')
	default:
		return append(dst, store.PyRepr(f)...)
	}
}
