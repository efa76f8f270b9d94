package commands

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"time"

	"github.com/prometheus/common/promslog"
	"github.com/spf13/cobra"

	"github.com/promstore/promstore/internal/cleanup"
	"github.com/promstore/promstore/internal/pyclient"
	"github.com/promstore/promstore/internal/serve"
	"github.com/promstore/promstore/internal/store"
)

// ServeOptions are the inputs of `promstore serve`.
type ServeOptions struct {
	IO    *IOStreams
	Store func(context.Context) (store.Store, error)

	ListenAddresses        []string
	TelemetryPath          string
	WebConfigFile          string
	ScrapeTimeout          time.Duration
	Partial                bool
	SelfMetricsInTelemetry bool
	For                    time.Duration
	ShutdownGrace          time.Duration
	LogLevel               string
	LogFormat              string
	// PythonClient is the prometheus_client release /metrics answers as.
	PythonClient pyclient.Version

	// Sidecar compaction (--compact-every and the flags after it).
	CompactEvery        time.Duration
	CompactMinIdle      time.Duration
	CompactStaleAfter   time.Duration
	CompactLocal        bool
	DropDeadGaugesAfter time.Duration

	// WaitForStore serves (503 on /-/ready) while the store cannot be
	// opened yet, retrying, instead of exiting; StoreName and StoreLocal
	// say what the store is before it opens.
	WaitForStore bool
	StoreName    string
	StoreLocal   bool

	// OnListen, when set, receives the bound addresses (tests listen on
	// port 0 and learn the port here).
	OnListen func([]net.Addr)
}

// NewCmdServe builds `promstore serve`. runF replaces serveRun in tests.
func NewCmdServe(f *Factory, runF func(context.Context, *ServeOptions) error) *cobra.Command {
	opts := &ServeOptions{IO: f.IO}
	var sf StoreFlags
	var pc pythonClientFlag
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Serve a store over HTTP for Prometheus to scrape, as a Python app's collector would",
		Long: `Serve the store's aggregated families over HTTP, exactly what Python's
MultiProcessCollector would serve for it, read fresh on every scrape. Scrapes
that arrive while a read runs share it.

Endpoints:
  /                  landing page
  /metrics           the store (--web.telemetry-path), answered as Python's
                     make_wsgi_app answers: the format it negotiates for the
                     Accept header (text 0.0.4, byte-identical to 'promstore
                     dump', for curl; OpenMetrics for Prometheus; text 1.0.0
                     and the escaping parameter when asked), ?name[]=
                     filters, gzipped when accepted
  /-/metrics         promstore's own metrics (scrape and read durations,
                     shards and samples read, shard and store errors, Go and
                     process metrics); added to /metrics only with
                     --self-metrics-in-telemetry
  /-/healthy         200 while promstore runs
  /-/ready           200 when the store answers (a directory can be listed,
                     every Redis master answers PING), 503 otherwise

By default promstore listens on 127.0.0.1:9877 only; give
--web.listen-address=:9877 (repeatable) to serve other hosts. TLS and basic
authentication come from a Prometheus web configuration file
(--web.config.file, the exporter-toolkit format, re-read on each connection).

A store that cannot be opened at start makes serve exit 1, unless
--wait-for-store: then it serves anyway (/-/ready 503, the telemetry path 500,
saying why) and tries the store again until it opens.

Errors: a store that cannot be read (directory gone, Redis unreachable) gives
HTTP 500 with a one-line reason, a read slower than the scrape timeout HTTP 503;
the server keeps running and the next scrape reads again. A store with
unreadable shards (corrupt, truncated, foreign files; malformed Redis keys)
gives HTTP 500 naming the shard, unless --partial serves the readable rest and
logs each problem as a warning. The scrape timeout is --scrape-timeout, or the
scraper's X-Prometheus-Scrape-Timeout-Seconds header when that is lower.

--python-client answers as an older prometheus_client release would: its
spelling of floats (0.25 and older: le="1e+010"), the formats it negotiates
(before 0.23: text 0.0.4 or OpenMetrics 0.0.1 only), before 0.25 an empty
answer to any ?name[]= filter, and before 0.18 mostrecent gauges one sample
per process (those releases know no such mode).

promstore stops after --for, or on SIGINT, SIGTERM or SIGHUP: it stops
accepting connections, lets scrapes in flight finish within --shutdown-grace,
and exits 0 (1 if scrapes had to be cut off). Logs go to stderr (request log
at debug).

Sidecar mode: --compact-every 1m also compacts the store's dead processes
once at start and then every minute, as 'promstore cleanup --dead-pids'
would (their counters, histograms, summaries and min/max/sum/mostrecent
gauges merged into archive shards, live* gauges removed), so the directory
never piles up and the totals never drop. Scrapes stay exact while it runs.
A file store's dead pids are checked on this host (run promstore in the
pod's pid namespace: shareProcessNamespace: true); a pid whose shards changed
within --compact-min-idle is never touched. For Redis, give --compact-local
when every writer runs beside promstore, and/or --compact-stale-after (pids
whose keys were not updated for that long): with the exporter's key TTL
(300s by default) folding them into archive keys without a TTL keeps their
counts when their keys would expire. All-mode gauges of dead processes are
kept, unless --drop-dead-gauges-after removes them at that age. Compactions
are counted in /-/metrics (promstore_compactions_total and friends).`,
		Example: `  promstore serve --dir /var/run/prometheus
  promstore serve --dir ./store --for 10m --web.listen-address :9877
  promstore serve --redis-url redis://localhost:6379/0 --partial
  promstore serve --dir ./store --web.config.file web.yml --log.level debug --log.format json
  promstore serve --dir /var/run/prometheus --web.listen-address :9877 --compact-every 1m --drop-dead-gauges-after 1h
  promstore serve --redis-url redis://redis:6379/0 --compact-every 30s --compact-stale-after 2m
  promstore serve --redis-url redis://redis:6379/0 --wait-for-store`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := validateChoice("--log.level", opts.LogLevel, promslog.LevelFlagOptions); err != nil {
				return err
			}
			if err := validateChoice("--log.format", opts.LogFormat, promslog.FormatFlagOptions); err != nil {
				return err
			}
			if len(opts.ListenAddresses) == 0 {
				return UsageErrorf("--web.listen-address: give at least one address")
			}
			for _, a := range opts.ListenAddresses {
				_, port, err := net.SplitHostPort(a)
				if err == nil {
					// A port out of range or a service name /etc/services
					// does not know would only fail at listen (exit 1).
					_, err = net.LookupPort("tcp", port)
				}
				if err != nil {
					return UsageErrorf("--web.listen-address %q: %v", a, err)
				}
			}
			if err := serve.CheckTelemetryPath(opts.TelemetryPath); err != nil {
				return UsageErrorf("--web.telemetry-path: %v", err)
			}
			switch {
			case opts.ScrapeTimeout <= 0:
				return UsageErrorf("--scrape-timeout must be positive, not %s", opts.ScrapeTimeout)
			case opts.For < 0:
				return UsageErrorf("--for must not be negative, not %s", opts.For)
			case opts.ShutdownGrace <= 0:
				return UsageErrorf("--shutdown-grace must be positive, not %s", opts.ShutdownGrace)
			case opts.CompactEvery < 0:
				return UsageErrorf("--compact-every must not be negative, not %s", opts.CompactEvery)
			case opts.CompactMinIdle < 0 || opts.CompactStaleAfter < 0 || opts.DropDeadGaugesAfter < 0:
				return UsageErrorf("--compact-min-idle, --compact-stale-after and --drop-dead-gauges-after must not be negative")
			}
			if opts.CompactEvery == 0 {
				for _, name := range []string{"compact-min-idle", "compact-stale-after", "compact-local", "drop-dead-gauges-after"} {
					if cmd.Flags().Changed(name) {
						return UsageErrorf("--%s applies to compaction: give --compact-every too", name)
					}
				}
			}
			v, err := pc.version()
			if err != nil {
				return err
			}
			opts.PythonClient = v
			loc, err := sf.Location(f)
			if err != nil {
				return err
			}
			opts.StoreName, opts.StoreLocal = describeLocation(loc), loc.Dir != ""
			opts.Store = func(ctx context.Context) (store.Store, error) { return sf.Open(ctx, f) }
			if runF != nil {
				return runF(cmd.Context(), opts)
			}
			return serveRun(cmd.Context(), opts)
		},
	}
	sf.Register(cmd)
	pc.register(cmd)
	fl := cmd.Flags()
	fl.StringArrayVar(&opts.ListenAddresses, "web.listen-address", []string{serve.DefaultListenAddress}, "address to listen on, host:port (repeatable; \":9877\" for all interfaces)")
	fl.StringVar(&opts.TelemetryPath, "web.telemetry-path", serve.DefaultTelemetryPath, "path under which to serve the store's metrics")
	fl.StringVar(&opts.WebConfigFile, "web.config.file", "", "exporter-toolkit web configuration file enabling TLS and/or basic authentication")
	fl.DurationVar(&opts.ScrapeTimeout, "scrape-timeout", serve.DefaultScrapeTimeout, "longest time one read of the store may take (lowered by X-Prometheus-Scrape-Timeout-Seconds)")
	fl.BoolVar(&opts.Partial, "partial", false, "serve the readable part of a store with unreadable shards, logging the problems, instead of HTTP 500")
	fl.BoolVar(&opts.SelfMetricsInTelemetry, "self-metrics-in-telemetry", false, "also append promstore's own metrics (served at /-/metrics) to the telemetry path")
	fl.DurationVar(&opts.For, "for", 0, "stop by itself after this long, e.g. 30m (0: run until interrupted)")
	fl.DurationVar(&opts.ShutdownGrace, "shutdown-grace", serve.DefaultShutdownGrace, "on stop, how long scrapes in flight may take to finish")
	fl.DurationVar(&opts.CompactEvery, "compact-every", 0, "sidecar mode: also compact dead processes' shards at start and then this often, e.g. 1m (0: never)")
	fl.DurationVar(&opts.CompactMinIdle, "compact-min-idle", cleanup.DefaultMinIdle, "never compact a pid with a shard changed within this long (0: no guard)")
	fl.DurationVar(&opts.CompactStaleAfter, "compact-stale-after", 0, "also compact pids whose shards were all last updated this long ago (Redis: keep it below the writers' key TTL)")
	fl.BoolVar(&opts.CompactLocal, "compact-local", false, "Redis: every writer runs on this host (same pid namespace), so dead pids can be checked here")
	fl.DurationVar(&opts.DropDeadGaugesAfter, "drop-dead-gauges-after", 0, "remove all-mode gauge series of dead processes once they are this old (0: keep them)")
	fl.BoolVar(&opts.WaitForStore, "wait-for-store", false, "when the store cannot be opened at start (Redis not up yet, no directory yet), serve anyway with /-/ready answering 503, retrying until it opens, instead of exiting")
	fl.StringVar(&opts.LogLevel, "log.level", "info", "log level: debug, info, warn or error")
	fl.StringVar(&opts.LogFormat, "log.format", "logfmt", "log format: logfmt or json")
	_ = cmd.RegisterFlagCompletionFunc("log.level", cobra.FixedCompletions(promslog.LevelFlagOptions, cobra.ShellCompDirectiveNoFileComp))
	_ = cmd.RegisterFlagCompletionFunc("log.format", cobra.FixedCompletions(promslog.FormatFlagOptions, cobra.ShellCompDirectiveNoFileComp))
	return cmd
}

// newLogger builds the Prometheus-style structured logger the flags ask for.
func newLogger(opts *ServeOptions) (*slog.Logger, error) {
	lvl := promslog.NewLevel()
	if err := lvl.Set(opts.LogLevel); err != nil {
		return nil, UsageErrorf("--log.level: %v", err)
	}
	format := promslog.NewFormat()
	if err := format.Set(opts.LogFormat); err != nil {
		return nil, UsageErrorf("--log.format: %v", err)
	}
	return promslog.New(&promslog.Config{Level: lvl, Format: format, Writer: opts.IO.ErrOut}), nil
}

func serveRun(ctx context.Context, opts *ServeOptions) error {
	logger, err := newLogger(opts)
	if err != nil {
		return err
	}
	// Scrapes read the store again and again: shards of processes that
	// are gone are kept between reads (see filestore.Store.KeepReads).
	prepare := func(st store.Store) {
		store.KeepReads(st, true)
		if infos, err := st.Shards(ctx); err == nil && len(infos) == 0 {
			logger.Warn("the store holds no shards; serving an empty exposition until some appear", "problem", noShardsProblem(ctx, st))
		}
	}
	st, err := opts.Store(ctx)
	if err != nil {
		if !opts.WaitForStore || !waitable(err, opts.StoreLocal) {
			return err
		}
		// A sidecar started before its Redis, or before the app made
		// the directory: serve, not ready, until the store opens.
		logger.Warn("the store cannot be opened yet; serving, with /-/ready answering 503 until it can", "store", opts.StoreName, "err", err)
		w := newWaitStore(opts.Store, opts.StoreName, err, prepare)
		rctx, cancel := context.WithCancel(ctx)
		retried := make(chan struct{})
		go func() {
			defer close(retried)
			w.retry(rctx, logger)
		}()
		defer func() {
			// The retries end before the store closes.
			cancel()
			<-retried
			_ = w.Close()
		}()
		st = w
	} else {
		defer st.Close()
		prepare(st)
	}
	compact, err := sidecarCompaction(st, opts)
	if err != nil {
		return err
	}
	srv, err := serve.New(serve.Options{
		Compact:                compact,
		CompactEvery:           opts.CompactEvery,
		Store:                  st,
		StoreName:              st.Describe(),
		ListenAddresses:        opts.ListenAddresses,
		WebConfigFile:          opts.WebConfigFile,
		TelemetryPath:          opts.TelemetryPath,
		ScrapeTimeout:          opts.ScrapeTimeout,
		Partial:                opts.Partial,
		SelfMetricsInTelemetry: opts.SelfMetricsInTelemetry,
		PythonClient:           opts.PythonClient,
		For:                    opts.For,
		ShutdownGrace:          opts.ShutdownGrace,
		Logger:                 logger,
		Version:                BuildVersion().Version,
		OnListen:               opts.OnListen,
	})
	if err != nil {
		return fmt.Errorf("serve: %w", err)
	}
	err = srv.Run(ctx)
	if err != nil && ctx.Err() != nil && !errors.Is(err, context.Canceled) {
		// Stopped on a signal, but not cleanly (scrapes cut off).
		return &stopFailure{err}
	}
	return err
}

// sidecarCompaction returns serve's compaction of st (nil without
// --compact-every): a cleanup of the dead (or stale) pids, through the
// same journal and gate as 'promstore cleanup'.
func sidecarCompaction(st store.Store, opts *ServeOptions) (func(context.Context) (serve.Compaction, error), error) {
	if opts.CompactEvery <= 0 {
		return nil, nil
	}
	copts := cleanup.Options{
		DeadPIDs:            opts.StoreLocal || opts.CompactLocal,
		Local:               opts.StoreLocal || opts.CompactLocal,
		StaleAfter:          opts.CompactStaleAfter,
		MinIdle:             opts.CompactMinIdle,
		DropDeadGaugesAfter: opts.DropDeadGaugesAfter,
		// A refusal names serve's flags, not cleanup's.
		Flags: cleanup.FlagNames{DeadPIDs: "--compact-every", MinIdle: "--compact-min-idle", StaleAfter: "--compact-stale-after"},
	}
	if copts.MinIdle == 0 {
		copts.MinIdle = -1
	}
	if !copts.DeadPIDs && copts.StaleAfter == 0 {
		return nil, UsageErrorf("--compact-every on a Redis store: give --compact-local (every writer runs here) and/or --compact-stale-after")
	}
	if err := copts.Validate(); err != nil {
		return nil, UsageErrorf("--compact-every: %v", err)
	}
	// The target of a store open at start is made now (a store cleanup
	// cannot work on is an error at start); a waiting store's once it
	// opens (see waitStore).
	// A Redis store's sidecar compaction holds the read gate for at most
	// half the scrape timeout, and half the interval: a read registration
	// left by a reader killed or cut off mid-read (kept for up to 2
	// minutes) keeps a scrape out only that long, and the gate is open at
	// least half the time until the next interval tries again. (A
	// directory's gate is an flock, which a killed reader lets go of.)
	newTarget := func(st store.Store) (*cleanup.Target, error) {
		t, err := cleanup.NewTarget(st)
		if err == nil && !t.Local {
			t.GateWait = min(opts.ScrapeTimeout, opts.CompactEvery) / 2
		}
		return t, err
	}
	var t *cleanup.Target
	if _, waiting := st.(*waitStore); !waiting {
		var err error
		if t, err = newTarget(st); err != nil {
			return nil, err
		}
	}
	return func(ctx context.Context) (serve.Compaction, error) {
		if t == nil {
			open := st
			if w, ok := st.(*waitStore); ok {
				if open = w.Unwrap(); open == nil {
					// Nothing to compact before the store opens.
					return serve.Compaction{}, serve.ErrNotYet
				}
			}
			var err error
			if t, err = newTarget(open); err != nil {
				return serve.Compaction{}, err
			}
		}
		res, err := cleanup.Run(ctx, t, copts)
		switch {
		case errors.Is(err, cleanup.ErrRefused):
			err = fmt.Errorf("%w: %w", serve.ErrRefused, err)
		case errors.Is(err, cleanup.ErrBusy):
			err = busyError{err} // its text says it already
		}
		var c serve.Compaction
		if res != nil && res.Plan != nil && res.Done {
			sum := res.Plan.Summary()
			c = serve.Compaction{Compacted: sum.Compacted, Removed: sum.Removed + sum.Dropped, BytesFreed: sum.BytesFreed}
		}
		return c, err
	}, nil
}

// busyError is a compaction's error that another cleanup of the store is
// running (cleanup.ErrBusy): it matches serve.ErrBusy, with its text as
// it is.
type busyError struct{ error }

func (e busyError) Is(target error) bool { return target == serve.ErrBusy }
func (e busyError) Unwrap() error        { return e.error }
