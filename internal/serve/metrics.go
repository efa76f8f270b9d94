package serve

import (
	"runtime"
	"strings"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	dto "github.com/prometheus/client_model/go"

	"github.com/promstore/promstore/internal/aggregate"
	"github.com/promstore/promstore/internal/store"
)

// selfMetrics are promstore's own metrics, on a registry of their own so
// that they never mix with the store's families by accident.
type selfMetrics struct {
	reg *prometheus.Registry

	scrapeDuration *prometheus.HistogramVec
	scrapes        *prometheus.CounterVec
	inFlight       prometheus.Gauge
	reads          prometheus.Counter
	unchangedReads prometheus.Counter
	revaluedReads  prometheus.Counter
	readDuration   prometheus.Histogram
	lastShards     prometheus.Gauge
	lastSamples    prometheus.Gauge
	lastOutput     prometheus.Gauge
	shardErrors    prometheus.Counter
	storeErrors    prometheus.Counter

	clashOnce sync.Map // family name -> struct{}: clash already logged
}

// Outcomes of a scrape, the "outcome" label of promstore_scrapes_total.
const (
	outcomeOK      = "ok"      // the whole store was served
	outcomePartial = "partial" // served without unreadable shards (--partial)
	outcomeError   = "error"   // store error: HTTP 500
	outcomeTimeout = "timeout" // scrape timeout: HTTP 503
	// outcomeCanceled: the scraper hung up before the whole answer was
	// written (nothing is wrong with the store).
	outcomeCanceled = "canceled"
)

func newSelfMetrics(version string) *selfMetrics {
	m := &selfMetrics{
		reg: prometheus.NewRegistry(),
		scrapeDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "promstore_scrape_duration_seconds",
			Help:    "Time taken to answer a scrape of the telemetry path, from request to the last byte written, by outcome.",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
		}, []string{"outcome"}),
		scrapes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "promstore_scrapes_total",
			Help: "Scrapes of the telemetry path, by outcome: ok, partial (unreadable shards left out), error (HTTP 500), timeout (HTTP 503) or canceled (the scraper hung up before the whole answer was written).",
		}, []string{"outcome"}),
		inFlight: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "promstore_scrapes_in_flight",
			Help: "Scrapes of the telemetry path being answered now; scrapes that share one read of the store count each.",
		}),
		reads: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "promstore_store_reads_total",
			Help: "Reads of the store; concurrent scrapes share one read, so this can be lower than the number of scrapes.",
		}),
		unchangedReads: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "promstore_store_reads_unchanged_total",
			Help: "Reads of the store that found every shard as the read before had it (kept between reads and unchanged), and served what that read made without aggregating again.",
		}),
		revaluedReads: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "promstore_store_reads_revalued_total",
			Help: "Reads of the store that found the same shards with the same keys as the read before, some with other values, and added again only the series whose samples changed.",
		}),
		readDuration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "promstore_store_read_duration_seconds",
			Help:    "Time taken to read and aggregate the whole store once.",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
		}),
		lastShards: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "promstore_shards_read",
			Help: "Shards that yielded samples in the last read of the store.",
		}),
		lastSamples: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "promstore_samples_read",
			Help: "Per-process samples read in the last read of the store, before aggregation.",
		}),
		lastOutput: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "promstore_output_samples",
			Help: "Samples exposed after aggregation by the last successful read of the store (0 after a failed one).",
		}),
		shardErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "promstore_shard_errors_total",
			Help: "Shards (or Redis keys) found unreadable, counted once per read of the store.",
		}),
		storeErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "promstore_store_errors_total",
			Help: "Reads of the store that failed as a whole (store unreachable, directory gone, timeout).",
		}),
	}
	buildInfo := prometheus.NewGauge(prometheus.GaugeOpts{
		Name:        "promstore_build_info",
		Help:        "A metric with a constant '1' value labelled by promstore's version and the Go version it was built with.",
		ConstLabels: prometheus.Labels{"version": version, "goversion": runtime.Version()},
	})
	buildInfo.Set(1)
	for _, o := range []string{outcomeOK, outcomePartial, outcomeError, outcomeTimeout, outcomeCanceled} {
		m.scrapes.WithLabelValues(o)
	}
	m.reg.MustRegister(
		m.scrapeDuration, m.scrapes, m.inFlight, m.reads, m.unchangedReads, m.revaluedReads, m.readDuration, m.lastShards, m.lastSamples,
		m.lastOutput, m.shardErrors, m.storeErrors, buildInfo,
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	return m
}

// gatherFor returns promstore's own metric families to append to the
// store's, leaving out (and reporting once through clash) any whose name
// a store family, or an earlier family in OpenMetrics terms, already
// takes.
func (m *selfMetrics) gatherFor(fams []aggregate.Family, clash func(name string, withStore bool)) ([]*dto.MetricFamily, error) {
	own, err := m.reg.Gather()
	if err != nil {
		return nil, err
	}
	taken := make(map[string]bool, 2*len(fams))
	ownTaken := make(map[string]bool)
	for i := range fams {
		f := &fams[i]
		taken[f.Name] = true
		if f.Type == store.KindCounter {
			taken[f.Name+"_total"] = true
		}
		for j := range f.Samples {
			taken[f.Samples[j].Name] = true
		}
	}
	out := own[:0]
	for _, mf := range own {
		// OpenMetrics names a counter family without _total, so a counter
		// x_total clashes with a family x (as go_memstats_alloc_bytes_total
		// does with go_memstats_alloc_bytes).
		name := mf.GetName()
		omName := name
		if mf.GetType() == dto.MetricType_COUNTER {
			omName = strings.TrimSuffix(name, "_total")
		}
		if taken[name] || taken[omName] {
			if _, seen := m.clashOnce.LoadOrStore(name, struct{}{}); !seen {
				clash(name, !ownTaken[name] && !ownTaken[omName])
			}
			continue
		}
		taken[name], taken[omName] = true, true
		ownTaken[name], ownTaken[omName] = true, true
		out = append(out, mf)
	}
	return out, nil
}
