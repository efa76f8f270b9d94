package serve

import (
	"context"
	"errors"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Compaction is what one compaction of the store did (see
// Options.Compact).
type Compaction struct {
	// Compacted shards were merged into archives and deleted.
	Compacted int
	// Removed shards were deleted without merging (live* gauges and
	// dropped all-mode gauges of dead processes).
	Removed int
	// BytesFreed is the storage freed.
	BytesFreed int64
}

// compactMetrics are promstore's own metrics of the compaction loop.
type compactMetrics struct {
	runs      *prometheus.CounterVec
	compacted prometheus.Counter
	removed   prometheus.Counter
	freed     prometheus.Counter
	last      prometheus.Gauge
	duration  prometheus.Histogram
	// refused is set while runs are refused: the reason is logged once
	// (the compaction loop runs one at a time).
	refused bool
}

func (m *selfMetrics) addCompaction() *compactMetrics {
	c := &compactMetrics{
		runs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "promstore_compactions_total",
			Help: "Compactions of the store's dead processes (--compact-every), by outcome: ok, refused (which pids are dead could not be told, or workers kept exiting while it was planned; see cleanup --dead-pids), busy (another cleanup of the store was running) or error.",
		}, []string{"outcome"}),
		compacted: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "promstore_compaction_shards_compacted_total",
			Help: "Shards of dead processes merged into archive shards and deleted.",
		}),
		removed: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "promstore_compaction_shards_removed_total",
			Help: "Shards of dead processes deleted without merging (live* gauges, all-mode gauges past --drop-dead-gauges-after).",
		}),
		freed: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "promstore_compaction_freed_bytes_total",
			Help: "Storage freed by compactions (deleted shards minus what the archives grew by).",
		}),
		last: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "promstore_compaction_last_success_timestamp_seconds",
			Help: "Unix time of the last compaction that succeeded (0: none yet).",
		}),
		duration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "promstore_compaction_duration_seconds",
			Help:    "Time taken by one compaction.",
			Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60},
		}),
	}
	c.runs.WithLabelValues("ok")
	c.runs.WithLabelValues("refused")
	c.runs.WithLabelValues("busy")
	c.runs.WithLabelValues("error")
	m.reg.MustRegister(c.runs, c.compacted, c.removed, c.freed, c.last, c.duration)
	return c
}

// compactLoop runs Options.Compact every Options.CompactEvery until ctx
// is done. A compaction takes the store's cleanup gate only to save and
// remove its journal, so scrapes are never answered from a half-done
// step (they read through the journal meanwhile).
func (s *Server) compactLoop(ctx context.Context) {
	t := time.NewTicker(s.opts.CompactEvery)
	defer t.Stop()
	for {
		s.compactOnce(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// ErrNotYet is what Options.Compact returns when there is nothing to
// compact yet (the store is not open): the run is skipped, not counted.
var ErrNotYet = errors.New("the store is not open yet")

// ErrRefused is what Options.Compact wraps when the run refused to tell
// which processes are dead (their shards changed moments ago and none of
// them is visible: they may have just exited): a state of the store that
// passes, counted apart and logged as a warning when its reason changes.
var ErrRefused = errors.New("compaction refused")

// ErrBusy is what Options.Compact wraps when another cleanup of the store
// holds its lock (a cleanup run by hand, another replica's sidecar): the
// work is being done, so the run is counted apart and logged at info.
var ErrBusy = errors.New("another cleanup is running")

func (s *Server) compactOnce(ctx context.Context) {
	start := time.Now()
	res, err := s.opts.Compact(ctx)
	if ctx.Err() != nil {
		return
	}
	if errors.Is(err, ErrNotYet) {
		s.log.Debug("compaction skipped", "reason", err)
		return
	}
	c := s.compact
	c.duration.Observe(time.Since(start).Seconds())
	c.compacted.Add(float64(res.Compacted))
	c.removed.Add(float64(res.Removed))
	if res.BytesFreed > 0 {
		c.freed.Add(float64(res.BytesFreed))
	}
	if errors.Is(err, ErrBusy) {
		c.runs.WithLabelValues("busy").Inc()
		s.log.Info("compaction skipped: another cleanup of the store is running", "reason", err)
		return
	}
	if errors.Is(err, ErrRefused) {
		c.runs.WithLabelValues("refused").Inc()
		// Logged once until a run is not refused: under churn the
		// pids named change at every run, the cause does not.
		if !c.refused {
			c.refused = true
			s.log.Warn("compaction refused (refused again until it runs, logged at debug)", "reason", err)
		} else {
			s.log.Debug("compaction refused", "reason", err)
		}
		return
	}
	c.refused = false
	if err != nil {
		c.runs.WithLabelValues("error").Inc()
		s.log.Error("compaction failed", "err", err)
		return
	}
	c.runs.WithLabelValues("ok").Inc()
	c.last.Set(float64(time.Now().UnixNano()) / 1e9)
	if res.Compacted+res.Removed > 0 {
		s.log.Info("compacted dead processes", "compacted", res.Compacted, "removed", res.Removed, "bytes_freed", res.BytesFreed, "took", time.Since(start))
	}
}
