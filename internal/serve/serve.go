// Package serve is promstore's HTTP exporter: it serves the aggregated
// exposition of a store, read fresh on every scrape, the way a Python
// application with a MultiProcessCollector would, plus promstore's own
// metrics, a landing page and health endpoints. TLS and basic
// authentication come from a Prometheus web configuration file through
// github.com/prometheus/exporter-toolkit.
//
// Endpoints:
//
//	/                landing page (unless the telemetry path is "/")
//	<telemetry path> the store's families (default /metrics)
//	/-/metrics       promstore's own metrics (scrape timings, shard errors,
//	                 Go runtime and process)
//	/-/healthy       200 while the process runs
//	/-/ready         200 when the store can be listed, 503 otherwise
package serve

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/exporter-toolkit/web"

	"github.com/promstore/promstore/internal/pyclient"
	"github.com/promstore/promstore/internal/store"
)

// Defaults of Options.
const (
	DefaultListenAddress = "127.0.0.1:9877"
	DefaultTelemetryPath = "/metrics"
	DefaultScrapeTimeout = 10 * time.Second
	DefaultShutdownGrace = 15 * time.Second
	// SelfMetricsPath is where promstore's own metrics are served.
	SelfMetricsPath = "/-/metrics"
)

// Options configure a Server.
type Options struct {
	// Store is read on every scrape. The Server does not close it.
	Store store.Reader
	// StoreName names the store in logs (store.Store's Describe).
	StoreName string
	// ListenAddresses are the host:port addresses to listen on; empty
	// means DefaultListenAddress.
	ListenAddresses []string
	// WebConfigFile is an exporter-toolkit web configuration file (TLS,
	// basic auth, headers); empty serves plain HTTP without auth.
	WebConfigFile string
	// TelemetryPath is where the store's families are served; empty means
	// DefaultTelemetryPath.
	TelemetryPath string
	// ScrapeTimeout bounds one read of the store; a scrape's
	// X-Prometheus-Scrape-Timeout-Seconds header can only lower it. Zero
	// means DefaultScrapeTimeout.
	ScrapeTimeout time.Duration
	// Partial serves the readable part of a store with unreadable shards
	// (logging the problems) instead of failing the scrape with HTTP 500.
	Partial bool
	// PythonClient is the prometheus_client release the telemetry path
	// answers as: its spelling of floats (values, le labels), the formats
	// it negotiates and whether ?name[]= selects anything (see
	// negotiate). The zero value is the newest release.
	PythonClient pyclient.Version
	// SelfMetricsInTelemetry appends promstore's own metrics to the
	// telemetry path's output (they are always at SelfMetricsPath).
	SelfMetricsInTelemetry bool
	// For stops the server by itself after this long; zero runs until ctx
	// is done.
	For time.Duration
	// ShutdownGrace bounds how long in-flight requests may take to finish
	// once the server stops; zero means DefaultShutdownGrace.
	ShutdownGrace time.Duration
	// Logger receives structured logs; nil discards them.
	Logger *slog.Logger
	// Version is shown on the landing page and in promstore_build_info.
	Version string
	// Compact, when set with CompactEvery, compacts the store's dead
	// processes (cleanup's journal-and-gate protocol, so that scrapes
	// stay exact); it runs once at start and then every CompactEvery.
	Compact func(ctx context.Context) (Compaction, error)
	// CompactEvery is the time between compactions.
	CompactEvery time.Duration
	// OnListen, when set, is called with the bound addresses once every
	// listener is open and before requests are served (so that a caller
	// listening on port 0 learns the port).
	OnListen func(addrs []net.Addr)
}

// Server serves a store over HTTP. Create it with New and run it with Run.
type Server struct {
	opts    Options
	log     *slog.Logger
	handler http.Handler
	scraper *scraper
	self    *selfMetrics
	compact *compactMetrics
}

// New checks opts and builds a Server; it does not listen yet.
func New(opts Options) (*Server, error) {
	if opts.Store == nil {
		return nil, errors.New("serve: no store")
	}
	if len(opts.ListenAddresses) == 0 {
		opts.ListenAddresses = []string{DefaultListenAddress}
	}
	if opts.TelemetryPath == "" {
		opts.TelemetryPath = DefaultTelemetryPath
	}
	if err := CheckTelemetryPath(opts.TelemetryPath); err != nil {
		return nil, err
	}
	if opts.ScrapeTimeout <= 0 {
		opts.ScrapeTimeout = DefaultScrapeTimeout
	}
	if opts.ShutdownGrace <= 0 {
		opts.ShutdownGrace = DefaultShutdownGrace
	}
	if opts.For < 0 {
		return nil, fmt.Errorf("serve: negative run time %s", opts.For)
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.WebConfigFile != "" {
		if err := web.Validate(opts.WebConfigFile); err != nil {
			return nil, fmt.Errorf("web config file %s: %w", opts.WebConfigFile, err)
		}
	}
	s := &Server{opts: opts, log: opts.Logger}
	s.self = newSelfMetrics(opts.Version)
	if opts.Compact != nil {
		if opts.CompactEvery <= 0 {
			return nil, fmt.Errorf("serve: compaction interval %s must be positive", opts.CompactEvery)
		}
		s.compact = s.self.addCompaction()
	}
	s.scraper = newScraper(opts.Store, opts.ScrapeTimeout, opts.Partial, s.self, s.log)
	s.scraper.client = opts.PythonClient
	// An unchanged read serves the snapshot of the read before, with its
	// encodings, unless these hold promstore's own metrics of the time.
	s.scraper.sameBodies = !opts.SelfMetricsInTelemetry
	h, err := s.routes()
	if err != nil {
		return nil, err
	}
	s.handler = h
	return s, nil
}

// CheckTelemetryPath refuses paths that are not absolute or that would
// hide promstore's own endpoints.
func CheckTelemetryPath(p string) error {
	switch {
	case !strings.HasPrefix(p, "/"):
		return fmt.Errorf("telemetry path %q must start with /", p)
	case p == "/-" || strings.HasPrefix(p, "/-/"):
		return fmt.Errorf("telemetry path %q is reserved for promstore's own endpoints (/-/...)", p)
	case strings.ContainsAny(p, "{} \t\n"):
		return fmt.Errorf("telemetry path %q must not contain braces or white space", p)
	}
	return nil
}

// Handler returns the server's HTTP handler (without TLS or basic auth,
// which Run adds from the web configuration file).
func (s *Server) Handler() http.Handler { return s.handler }

// Run listens on the configured addresses and serves until ctx is done or
// Options.For has passed, then shuts down gracefully: listeners close at
// once, in-flight requests get Options.ShutdownGrace to finish. It returns
// nil after a clean shutdown, and an error when a listener cannot be
// opened, serving fails, or in-flight requests had to be cut off.
func (s *Server) Run(ctx context.Context) error {
	defer s.scraper.stop()
	listeners := make([]net.Listener, 0, len(s.opts.ListenAddresses))
	closeAll := func() {
		for _, l := range listeners {
			_ = l.Close()
		}
	}
	var lc net.ListenConfig
	for _, addr := range s.opts.ListenAddresses {
		l, err := lc.Listen(ctx, "tcp", addr)
		if err != nil {
			closeAll()
			return fmt.Errorf("listen on %s: %w", addr, err)
		}
		listeners = append(listeners, l)
	}
	addrs := make([]net.Addr, len(listeners))
	for i, l := range listeners {
		addrs[i] = l.Addr()
	}
	if s.opts.OnListen != nil {
		s.opts.OnListen(addrs)
	}

	s.log.Info("serving store", "store", s.opts.StoreName, "telemetry_path", s.opts.TelemetryPath,
		"scrape_timeout", s.opts.ScrapeTimeout, "partial", s.opts.Partial, "for", s.opts.For, "version", s.opts.Version)

	// One http.Server per listener: exporter-toolkit's Serve wraps the
	// server's handler with its auth handler, which must happen once per
	// server.
	servers := make([]*http.Server, len(listeners))
	errc := make(chan error, len(listeners))
	webConfig := s.opts.WebConfigFile
	systemd := false
	for i, l := range listeners {
		srv := &http.Server{
			Handler:           s.handler,
			ReadHeaderTimeout: 10 * time.Second,
			IdleTimeout:       2 * time.Minute,
			ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
		}
		servers[i] = srv
		flags := &web.FlagConfig{
			WebListenAddresses: &[]string{l.Addr().String()},
			WebSystemdSocket:   &systemd,
			WebConfigFile:      &webConfig,
		}
		go func() {
			err := web.Serve(l, srv, flags, s.log)
			_ = l.Close() // web.Serve may fail before serving, leaving l open
			errc <- err
		}()
	}

	stop := ctx
	if s.opts.For > 0 {
		var cancel context.CancelFunc
		stop, cancel = context.WithTimeout(ctx, s.opts.For)
		defer cancel()
	}
	if s.compact != nil {
		cctx, cancel := context.WithCancel(stop)
		done := make(chan struct{})
		go func() {
			defer close(done)
			s.compactLoop(cctx)
		}()
		defer func() {
			cancel()
			<-done
		}()
	}
	var serveErr error
	select {
	case serveErr = <-errc:
		// A server failed (e.g. its TLS configuration); stop the others.
		s.log.Error("server failed", "err", serveErr)
	case <-stop.Done():
		if ctx.Err() != nil {
			s.log.Info("shutting down", "reason", "signal", "grace", s.opts.ShutdownGrace)
		} else {
			s.log.Info("shutting down", "reason", fmt.Sprintf("--for %s elapsed", s.opts.For), "grace", s.opts.ShutdownGrace)
		}
	}

	graceCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.opts.ShutdownGrace)
	defer cancel()
	var wg sync.WaitGroup
	shutdownErrs := make([]error, len(servers))
	for i, srv := range servers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := srv.Shutdown(graceCtx); err != nil {
				s.scraper.stop() // abort store reads still running
				_ = srv.Close()
				shutdownErrs[i] = err
			}
		}()
	}
	wg.Wait()
	remaining := len(servers)
	if serveErr != nil {
		remaining--
	}
	for ; remaining > 0; remaining-- {
		if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) && serveErr == nil {
			serveErr = err
		}
	}
	if serveErr != nil && !errors.Is(serveErr, http.ErrServerClosed) {
		return fmt.Errorf("serve: %w", serveErr)
	}
	if err := errors.Join(shutdownErrs...); err != nil {
		return fmt.Errorf("graceful shutdown: requests still running after %s (--shutdown-grace) were cut off: %w", s.opts.ShutdownGrace, err)
	}
	s.log.Info("stopped")
	return nil
}
