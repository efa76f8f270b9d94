// Package redisstore reads and writes the gunicorn-prometheus-exporter
// Redis layout (docs/formats.md, "The Redis store") on a standalone Redis, a Redis
// Cluster (every master is scanned) or a Sentinel-managed master.
//
// Reads are pipelined: one SCAN per BatchSize keys per node, then
// pipelines of HMGET, so round trips grow with keys/BatchSize, not keys.
package redisstore

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/promstore/promstore/internal/store"
)

// quietLogger drops go-redis's own log lines (dial retries and the like):
// they would bypass the command's error stream, and every failure they
// describe reaches the caller as an error naming the server.
type quietLogger struct{}

func (quietLogger) Printf(context.Context, string, ...any) {}

func init() {
	redis.SetLogger(quietLogger{})
	store.Register("redis", func(ctx context.Context, loc store.Location) (store.Store, error) {
		switch c := loc.Redis.(type) {
		case Config:
			return Open(ctx, c)
		case *Config:
			if c == nil {
				return nil, store.ErrNoStore
			}
			return Open(ctx, *c)
		default:
			return nil, fmt.Errorf("redis store: location holds %T, want redisstore.Config", loc.Redis)
		}
	})
}

// Store is an open Redis store. It is safe for concurrent use.
type Store struct {
	cfg     Config
	client  redis.UniversalClient
	secrets []string
	// server names the server(s) in errors: the configured addresses.
	server string
	// tls is set when the connections use TLS.
	tls bool
	// now gives updated_at and created_at for writes.
	now func() time.Time

	keys, roundTrips, samples, problems atomic.Int64
	// keyCaches keeps parsed original_key texts from scan to scan.
	keyCaches keyCaches
	// everyMeta makes reads name each metric hash by its own meta hash
	// (see CheckEveryRecord).
	everyMeta atomic.Bool
	// scanned, when set (by tests), is called after each SCAN batch a
	// node returns, with the node's address and whether it was its last.
	scanned func(addr string, last bool)
}

// CheckEveryRecord makes reads name each metric hash by its own meta
// hash rather than by the meta hash of its md5 that sorts first (see
// nameGroup), so that a meta hash that names nothing (no original_key, a
// key of another type, a text of another md5) is reported, as Python's
// collector, which reads each one, skips its sample. Reads then make one
// more command per metric hash. For fsck.
func (s *Store) CheckEveryRecord(on bool) { s.everyMeta.Store(on) }

// Stats counts the work a Store did since Open (or ResetStats).
type Stats struct {
	// Keys is the number of key names SCAN returned.
	Keys int64
	// RoundTrips counts SCAN calls and pipeline executions (in a Cluster a
	// pipeline reaches each master holding one of its keys).
	RoundTrips int64
	// Samples is the number of samples scans delivered.
	Samples int64
	// Problems is the number of keys scans reported as unreadable.
	Problems int64
}

// Open connects to the store cfg names and checks the connection with a
// PING. Errors name the server but never a password.
func Open(ctx context.Context, cfg Config) (*Store, error) {
	cfg = cfg.withDefaults()
	opts, secrets, err := cfg.clientOptions()
	if err != nil {
		return nil, err
	}
	s := &Store{
		cfg:     cfg,
		client:  redis.NewUniversalClient(opts),
		secrets: secrets,
		server:  strings.Join(opts.Addrs, ","),
		tls:     opts.TLSConfig != nil,
		now:     time.Now,
	}
	if err := s.ping(ctx); err != nil {
		s.client.Close()
		return nil, tlsHint(err, opts.TLSConfig != nil)
	}
	return s, nil
}

// tlsHint adds to a failed first PING what a TLS mismatch looks like: a
// TLS client of a plain server waits for a handshake that never comes
// (the server reads the hello as a command line and waits for its end),
// and a plain client of a TLS server is hung up on. A certificate the
// client does not trust is no mismatch, nor an alert from a server that
// wants a client certificate: the server answered the handshake, and the
// hint names the flags that decide it.
func tlsHint(err error, useTLS bool) error {
	var ne net.Error
	timeout := errors.Is(err, context.DeadlineExceeded) || errors.As(err, &ne) && ne.Timeout()
	msg := err.Error()
	var cve *tls.CertificateVerificationError
	switch {
	case useTLS && (errors.As(err, &cve) || strings.Contains(msg, "tls: failed to verify certificate")):
		// The server did answer the handshake: its certificate is the trouble.
		return fmt.Errorf("%w (the server speaks TLS but its certificate is not trusted as given: --redis-tls-ca names the CA that signs it, --redis-tls-server-name the name to check)", err)
	case useTLS && strings.Contains(msg, "remote error: tls: "):
		// An alert from the server: it speaks TLS and refused this client.
		return fmt.Errorf("%w (the server speaks TLS and refused this client's handshake: one that wants a client certificate needs --redis-tls-cert and --redis-tls-key)", err)
	case useTLS && (timeout || strings.Contains(msg, "tls: ")):
		return fmt.Errorf("%w (no TLS handshake answer: is the server plain Redis? use redis:// and no --redis-tls-* flags for a server without TLS)", err)
	case !useTLS && (errors.Is(err, io.EOF) || strings.Contains(msg, "connection reset")):
		return fmt.Errorf("%w (the server hung up on a plain connection: if it serves TLS, use rediss://)", err)
	}
	return err
}

func (s *Store) ping(ctx context.Context) error {
	if cc, ok := s.client.(*redis.ClusterClient); ok {
		// Reach every master now rather than fail mid-scan.
		err := cc.ForEachMaster(ctx, func(ctx context.Context, c *redis.Client) error {
			if err := c.Ping(ctx).Err(); err != nil {
				return s.nodeErr(c.Options().Addr, err)
			}
			return nil
		})
		if err != nil {
			return s.wrap(err)
		}
		return nil
	}
	if err := s.client.Ping(ctx).Err(); err != nil {
		return s.wrap(err)
	}
	return nil
}

// nodeErr names one node in err.
func (s *Store) nodeErr(addr string, err error) error {
	hint, err := s.explain(err)
	return &serverError{addr: addr, err: scrubErr(err, s.secrets...), hint: hint}
}

// explain turns the errors of a server that is not what the flags say
// into what it is: a Cluster node used as a standalone server answers
// MOVED (or ASK), a sentinel used as a server knows none of the data
// commands, and sentinels that know no master of the name given answer
// nil, which go-redis reports as every sentinel unreachable. It returns
// a hint to add to the error ("" for none) and the error to report.
func (s *Store) explain(err error) (hint string, reported error) {
	if s.cfg.SentinelMaster != "" && errors.Is(err, redis.Nil) && strings.Contains(err.Error(), "all sentinels") {
		// The sentinels' errors, joined: redis.Nil from each that
		// answered, something else from each that could not be reached.
		var others []error
		if j, ok := errors.Unwrap(err).(interface{ Unwrap() []error }); ok {
			for _, e := range j.Unwrap() {
				if !errors.Is(e, redis.Nil) {
					others = append(others, e)
				}
			}
		}
		msg := fmt.Sprintf("the sentinels that answered know no master named %q (check --redis-sentinel-master: SENTINEL MASTERS on a sentinel lists the names it monitors)", s.cfg.SentinelMaster)
		if len(others) > 0 {
			msg += "; the others: " + errors.Join(others...).Error()
		}
		return "", errors.New(msg)
	}
	var ne net.Error
	if !s.tls && errors.As(err, &ne) && ne.Timeout() {
		// Go says only "i/o timeout". (Over TLS, tlsHint says more.)
		return fmt.Sprintf("no answer within %s, the --redis-timeout: the server is stalled (a long command, DEBUG SLEEP, a stopped process) or overloaded, or the network drops its packets", s.cfg.ReadTimeout), err
	}
	var re redis.Error
	if !errors.As(err, &re) {
		return "", err
	}
	msg := re.Error()
	switch {
	case !s.cfg.Cluster && (strings.HasPrefix(msg, "MOVED ") || strings.HasPrefix(msg, "ASK ")):
		return "the server is a node of a Redis Cluster: give --redis-cluster", err
	case !s.cfg.Cluster && s.cfg.SentinelMaster == "" && strings.HasPrefix(msg, "ERR unknown command "):
		return "the address looks like a Redis Sentinel, which knows none of the data commands: give --redis-sentinel-master with the name of the master it monitors", err
	}
	return "", err
}

// wrap names the configured server(s) in err unless a node already is.
func (s *Store) wrap(err error) error {
	if err == nil {
		return nil
	}
	var se *serverError
	if errors.As(err, &se) {
		return err
	}
	hint, err := s.explain(err)
	return &serverError{addr: s.server, err: scrubErr(err, s.secrets...), hint: hint}
}

// Unreachable reports whether err says the Redis server did not answer
// (refused, reset or closed, timed out, a name not resolved): the store
// is down, whatever was asked of it. Not any error with an errno (which
// is a net.Error too).
func Unreachable(err error) bool {
	var op *net.OpError
	var dns *net.DNSError
	return errors.As(err, &op) || errors.As(err, &dns) || errors.Is(err, io.EOF)
}

// serverError is an error of one Redis server (or the configured set).
type serverError struct {
	addr string
	err  error
	// hint says what the error means, when the server is not what the
	// flags say (see explain).
	hint string
}

func (e *serverError) Error() string {
	if e.hint != "" {
		return "redis " + e.addr + ": " + strings.TrimRight(e.err.Error(), " ") + " (" + e.hint + ")"
	}
	return "redis " + e.addr + ": " + e.err.Error()
}
func (e *serverError) Unwrap() error { return e.err }

// Describe names the store without passwords.
func (s *Store) Describe() string { return s.cfg.Redacted() }

// Close closes the connections.
func (s *Store) Close() error { return s.client.Close() }

// Config returns the configuration the store was opened with (defaults
// filled in).
func (s *Store) Config() Config { return s.cfg }

// Stats returns the work counters.
func (s *Store) Stats() Stats {
	return Stats{
		Keys:       s.keys.Load(),
		RoundTrips: s.roundTrips.Load(),
		Samples:    s.samples.Load(),
		Problems:   s.problems.Load(),
	}
}

// ResetStats sets the work counters to zero.
func (s *Store) ResetStats() {
	s.keys.Store(0)
	s.roundTrips.Store(0)
	s.samples.Store(0)
	s.problems.Store(0)
}

// forEachNode calls fn for every node holding data: each master of a
// Cluster (concurrently), else the one client.
func (s *Store) forEachNode(ctx context.Context, fn func(ctx context.Context, c redis.Cmdable, addr string) error) error {
	if cc, ok := s.client.(*redis.ClusterClient); ok {
		return s.wrap(cc.ForEachMaster(ctx, func(ctx context.Context, c *redis.Client) error {
			return fn(ctx, c, c.Options().Addr)
		}))
	}
	return fn(ctx, s.client, s.server)
}

// scanNodesEach calls fn with each batch of keys matching pattern that
// SCAN returns, on every node; calls are never concurrent.
func (s *Store) scanNodesEach(ctx context.Context, pattern string, fn func(batch []string)) error {
	var mu sync.Mutex
	return s.forEachNode(ctx, func(ctx context.Context, c redis.Cmdable, addr string) error {
		var cursor uint64
		for {
			s.roundTrips.Add(1)
			// A SCAN that returns many keys costs the server less per key
			// than many small ones; the keys are only names, so ten
			// batches' worth per call is still a small reply.
			batch, next, err := c.Scan(ctx, cursor, pattern, int64(10*s.cfg.BatchSize)).Result()
			if err != nil {
				return s.nodeErr(addr, fmt.Errorf("scan %s: %w", pattern, err))
			}
			s.keys.Add(int64(len(batch)))
			mu.Lock()
			fn(batch)
			mu.Unlock()
			if s.scanned != nil {
				s.scanned(addr, next == 0)
			}
			if next == 0 {
				return nil
			}
			cursor = next
		}
	})
}

// scanNodes returns every key matching pattern on every node, unsorted,
// listed while no slot of a Cluster moved (see listStable).
func (s *Store) scanNodes(ctx context.Context, pattern string) ([]string, error) {
	var all []string
	err := s.listStable(ctx, func(ctx context.Context, settle func() error) error {
		all = nil
		if err := s.scanNodesEach(ctx, pattern, func(batch []string) { all = append(all, batch...) }); err != nil {
			return err
		}
		return settle()
	})
	if err != nil {
		return nil, err
	}
	return all, nil
}

// globEscape quotes the SCAN MATCH special characters of s.
func globEscape(s string) string {
	if !strings.ContainsAny(s, `*?[]\^`) {
		return s
	}
	var b strings.Builder
	for _, r := range s {
		switch r {
		case '*', '?', '[', ']', '\\', '^':
			b.WriteByte('\\')
		}
		b.WriteRune(r)
	}
	return b.String()
}
