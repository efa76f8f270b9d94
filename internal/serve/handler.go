package serve

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/exporter-toolkit/web"

	"github.com/promstore/promstore/internal/store"
)

// scrapeTimeoutHeader is the header Prometheus sends with its scrape
// timeout in seconds.
const scrapeTimeoutHeader = "X-Prometheus-Scrape-Timeout-Seconds"

func (s *Server) routes() (http.Handler, error) {
	mux := http.NewServeMux()
	tp := s.opts.TelemetryPath
	mux.HandleFunc("GET "+tp, s.serveTelemetry)
	mux.Handle("GET "+SelfMetricsPath, promhttp.HandlerFor(s.self.reg, promhttp.HandlerOpts{
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelError),
		EnableOpenMetrics: true,
	}))
	mux.HandleFunc("GET /-/healthy", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		fmt.Fprintln(w, "promstore is healthy.")
	})
	mux.HandleFunc("GET /-/ready", s.serveReady)
	if tp != "/" {
		landing, err := web.NewLandingPage(web.LandingConfig{
			Name:        "promstore",
			Description: "Python Prometheus multiprocess store exporter: serves " + s.opts.StoreName + " as Python's MultiProcessCollector would",
			Version:     s.opts.Version,
			Profiling:   "false",
			Links: []web.LandingLinks{
				{Address: tp, Text: "Metrics", Description: "The store's aggregated families"},
				{Address: SelfMetricsPath, Text: "Self metrics", Description: "promstore's own metrics"},
				{Address: "/-/healthy", Text: "Health"},
				{Address: "/-/ready", Text: "Readiness", Description: "Whether the store can be read"},
			},
		})
		if err != nil {
			return nil, fmt.Errorf("landing page: %w", err)
		}
		mux.Handle("GET /{$}", landing)
	}
	return s.logRequests(mux), nil
}

// scrapeTimeout is the server's scrape timeout, lowered by the scrape's
// X-Prometheus-Scrape-Timeout-Seconds header when that is smaller.
func (s *Server) scrapeTimeout(r *http.Request) time.Duration {
	t := s.opts.ScrapeTimeout
	if h := r.Header.Get(scrapeTimeoutHeader); h != "" {
		if secs, err := strconv.ParseFloat(h, 64); err == nil && secs > 0 {
			if d := time.Duration(secs * float64(time.Second)); d < t {
				t = d
			}
		}
	}
	return t
}

func (s *Server) serveTelemetry(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	outcome := outcomeError
	s.self.inFlight.Inc()
	defer func() {
		s.self.inFlight.Dec()
		s.self.scrapes.WithLabelValues(outcome).Inc()
		s.self.scrapeDuration.WithLabelValues(outcome).Observe(time.Since(start).Seconds())
	}()
	timeout := s.scrapeTimeout(r)
	ctx, cancel := context.WithDeadline(r.Context(), start.Add(timeout))
	defer cancel()
	snap, err := s.scraper.get(ctx, start)
	if err != nil {
		if r.Context().Err() != nil {
			if s.scraper.base.Err() != nil {
				// Cut off by the server: --shutdown-grace ran out (Run
				// reports it), not by the scraper.
				s.log.Info("scrape cut off: the server is shutting down and --shutdown-grace ran out", "remote", r.RemoteAddr)
				return
			}
			outcome = outcomeCanceled
			s.scraper.failures.log(r.Context(), s.log, slog.LevelInfo, outcomeCanceled, "the scraper hung up before the store was read", "remote", r.RemoteAddr)
			return
		}
		outcome = outcomeTimeout
		httpError(w, http.StatusServiceUnavailable, fmt.Sprintf("reading the store took longer than the scrape timeout (%s)", timeout))
		return
	}
	if snap.err != nil {
		var te errTimeout
		if errors.As(snap.err, &te) {
			outcome = outcomeTimeout
			httpError(w, http.StatusServiceUnavailable, snap.err.Error())
			return
		}
		httpError(w, http.StatusInternalServerError, snap.err.Error())
		return
	}
	resp := negotiate(r.Header.Get("Accept"), s.opts.PythonClient)
	names := nameFilter(r.URL.Query())
	gz := acceptsGzip(r.Header.Get("Accept-Encoding"))
	var extra func() ([]*dto.MetricFamily, error)
	if s.opts.SelfMetricsInTelemetry {
		extra = func() ([]*dto.MetricFamily, error) {
			return s.self.gatherFor(snap.fams, func(name string, withStore bool) {
				lvl := slog.LevelDebug // an OpenMetrics clash among the Go collector's own
				if withStore {
					lvl = slog.LevelWarn
				}
				s.log.Log(r.Context(), lvl, "not adding one of promstore's own metrics to the telemetry path: its name clashes with another family", "name", name, "store_family", withStore)
			})
		}
	}
	data, err := snap.encode(resp, names, gz, s.opts.PythonClient, &s.scraper.sizes, extra)
	if err != nil {
		s.log.Error("encoding the store failed", "format", resp.contentType, "err", err)
		httpError(w, http.StatusInternalServerError, "encode "+resp.contentType+": "+err.Error())
		return
	}
	s.warnRejected(r.Context(), snap, resp)
	h := w.Header()
	h.Set("Content-Type", resp.contentType)
	h.Set("Content-Length", strconv.Itoa(len(data)))
	// The body depends on both (a cache must not give one scraper's format
	// or encoding to another).
	h.Add("Vary", "Accept")
	h.Add("Vary", "Accept-Encoding")
	if gz {
		h.Set("Content-Encoding", "gzip")
	}
	if _, err := w.Write(data); err != nil {
		outcome = outcomeCanceled
		s.scraper.failures.log(r.Context(), s.log, slog.LevelInfo, outcomeCanceled, "the scraper hung up before the whole answer was written", "remote", r.RemoteAddr, "err", err)
		return
	}
	outcome = outcomeOK
	if len(snap.problems) > 0 {
		outcome = outcomePartial
	}
}

func (s *Server) serveReady(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), s.scrapeTimeout(r))
	defer cancel()
	var err error
	if p, ok := store.As[store.Pinger](s.opts.Store); ok {
		err = p.Ping(ctx)
	} else {
		_, err = s.opts.Store.Shards(ctx)
	}
	if err != nil {
		if _, partial := store.Partial(err); !partial {
			httpError(w, http.StatusServiceUnavailable, "not ready: "+err.Error())
			return
		}
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	fmt.Fprintln(w, "promstore is ready.")
}

// httpError answers with status and a one-line plain-text reason.
func httpError(w http.ResponseWriter, status int, reason string) {
	reason = strings.Join(strings.Fields(reason), " ")
	http.Error(w, "promstore: "+reason, status)
}

// acceptsGzip reports whether an Accept-Encoding header value accepts
// gzip (with a non-zero quality).
func acceptsGzip(v string) bool {
	for part := range strings.SplitSeq(v, ",") {
		coding, params, _ := strings.Cut(part, ";")
		coding = strings.TrimSpace(coding)
		if !strings.EqualFold(coding, "gzip") && !strings.EqualFold(coding, "x-gzip") {
			continue
		}
		q := 1.0
		for p := range strings.SplitSeq(params, ";") {
			if k, val, ok := strings.Cut(strings.TrimSpace(p), "="); ok && strings.EqualFold(strings.TrimSpace(k), "q") {
				if f, err := strconv.ParseFloat(strings.TrimSpace(val), 64); err == nil {
					q = f
				}
			}
		}
		return q > 0
	}
	return false
}

// logRequests logs every request at debug level.
func (s *Server) logRequests(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !s.log.Enabled(r.Context(), slog.LevelDebug) {
			next.ServeHTTP(w, r)
			return
		}
		start := time.Now()
		rw := &statusWriter{ResponseWriter: w, status: http.StatusOK}
		next.ServeHTTP(rw, r)
		s.log.Debug("request", "method", r.Method, "path", r.URL.Path, "status", rw.status,
			"bytes", rw.bytes, "duration", time.Since(start), "remote", r.RemoteAddr,
			"accept", r.Header.Get("Accept"), "encoding", rw.Header().Get("Content-Encoding"))
	})
}

type statusWriter struct {
	http.ResponseWriter
	status int
	bytes  int
	wrote  bool
}

func (w *statusWriter) WriteHeader(code int) {
	if !w.wrote {
		w.status, w.wrote = code, true
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(p []byte) (int, error) {
	w.wrote = true
	n, err := w.ResponseWriter.Write(p)
	w.bytes += n
	return n, err
}

// Unwrap lets http.ResponseController reach the underlying writer.
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
