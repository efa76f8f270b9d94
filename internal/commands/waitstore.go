package commands

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/promstore/promstore/internal/store"
	"github.com/promstore/promstore/internal/store/redisstore"
)

// waitStore stands for a store that could not be opened yet (Redis not up,
// the directory not created), for `serve --wait-for-store`: every call
// opens it if it can, else fails with why; once open, calls go to it and
// its capabilities show through Unwrap. Opening is retried in the
// background (retry) and by the calls themselves, one attempt at a time.
type waitStore struct {
	open   func(context.Context) (store.Store, error)
	name   string
	onOpen func(store.Store)
	now    func() time.Time

	mu      sync.Mutex
	st      store.Store // nil until open
	err     error       // why the last attempt failed
	opening bool
	closed  bool      // Close was called: no more attempts
	next    time.Time // no attempt by a call before this
}

// waitAttemptGap is the least time between two attempts the calls make
// (scrapes and readiness probes come often).
const waitAttemptGap = time.Second

// newWaitStore returns the waiting stand-in of the store open opens, whose
// first attempt failed with err; name describes the store, onOpen runs
// once with the store when it opens.
func newWaitStore(open func(context.Context) (store.Store, error), name string, err error, onOpen func(store.Store)) *waitStore {
	w := &waitStore{open: open, name: name, onOpen: onOpen, now: time.Now}
	w.err = w.notOpen(err)
	w.next = w.now().Add(waitAttemptGap)
	return w
}

func (w *waitStore) notOpen(err error) error {
	return fmt.Errorf("the store is not open yet: %w", err)
}

// get returns the store, opening it if no attempt is running and the last
// was long enough ago; else the last attempt's error.
func (w *waitStore) get(ctx context.Context) (store.Store, error) {
	return w.attempt(ctx, false)
}

// attempt is get; force ignores the time since the last attempt.
func (w *waitStore) attempt(ctx context.Context, force bool) (store.Store, error) {
	w.mu.Lock()
	if w.st != nil || w.opening || w.closed || (!force && w.now().Before(w.next)) {
		st, err := w.st, w.err
		w.mu.Unlock()
		if st != nil {
			return st, nil
		}
		return nil, err
	}
	w.opening = true
	w.mu.Unlock()
	st, err := w.open(ctx)
	w.mu.Lock()
	defer w.mu.Unlock()
	w.opening = false
	if err != nil {
		w.err, w.next = w.notOpen(err), w.now().Add(waitAttemptGap)
		return nil, w.err
	}
	if w.closed {
		// Opened while serve stopped: nobody will use it.
		_ = st.Close()
		return nil, w.err
	}
	w.st, w.err = st, nil
	if w.onOpen != nil {
		w.onOpen(st)
	}
	return st, nil
}

// retry opens the store, waiting 1 s, then twice as long after each
// failure up to 30 s, until it is open or ctx is done; it logs each
// failure and the opening.
func (w *waitStore) retry(ctx context.Context, log *slog.Logger) {
	delay := time.Second
	for n := 1; ; n++ {
		select {
		case <-ctx.Done():
			return
		case <-time.After(delay):
		}
		st, err := w.attempt(ctx, true)
		if st != nil {
			log.Info("the store is open", "store", st.Describe(), "attempts", n+1)
			return
		}
		if ctx.Err() != nil {
			return
		}
		delay = min(2*delay, 30*time.Second)
		log.Warn("the store cannot be opened yet; /-/ready answers 503 until it can", "err", err, "retry_in", delay)
	}
}

func (w *waitStore) Scan(ctx context.Context, fn store.ScanFunc) error {
	st, err := w.get(ctx)
	if err != nil {
		return err
	}
	return st.Scan(ctx, fn)
}

// ScanShards and ScanKeptShards are the open store's (store.ScanShards
// and store.ScanKeptShards ask the store they are given, not what it
// wraps): serve's reads of an unchanged store and of values written in
// place work as when the store opened at start.
func (w *waitStore) ScanShards(ctx context.Context, fn store.ShardFunc) error {
	st, err := w.get(ctx)
	if err != nil {
		return err
	}
	return store.ScanShards(ctx, st, fn)
}

func (w *waitStore) ScanKeptShards(ctx context.Context, fn store.KeptShardFunc) error {
	st, err := w.get(ctx)
	if err != nil {
		return err
	}
	return store.ScanKeptShards(ctx, st, fn)
}

func (w *waitStore) Shards(ctx context.Context) ([]store.ShardInfo, error) {
	st, err := w.get(ctx)
	if err != nil {
		return nil, err
	}
	return st.Shards(ctx)
}

func (w *waitStore) WriteShard(ctx context.Context, id store.ShardID, samples []store.Sample) error {
	st, err := w.get(ctx)
	if err != nil {
		return err
	}
	return st.WriteShard(ctx, id, samples)
}

func (w *waitStore) DeleteShard(ctx context.Context, id store.ShardID) error {
	st, err := w.get(ctx)
	if err != nil {
		return err
	}
	return st.DeleteShard(ctx, id)
}

// Describe names the store as it will be once open.
func (w *waitStore) Describe() string { return w.name }

// Close closes the store if it was opened; no attempt opens it after.
func (w *waitStore) Close() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.closed = true
	if w.st == nil {
		return nil
	}
	return w.st.Close()
}

// Unwrap is the open store, nil before: its capabilities show once open.
func (w *waitStore) Unwrap() store.Store {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.st
}

// describeLocation names the store at loc as the opened store's Describe
// will.
func describeLocation(loc store.Location) string {
	if loc.Dir != "" {
		return "dir " + loc.Dir
	}
	if cfg, ok := loc.Redis.(redisstore.Config); ok {
		return cfg.Redacted()
	}
	return "the store"
}

// waitable reports whether serve may wait for a store whose opening failed
// with err: a directory that does not exist yet (local), or a Redis that
// does not answer yet (refused, reset, timed out, a name not resolved yet,
// still loading its data). Anything else (a usage error, a missing TLS
// file, a wrong password) no retry makes right: serve exits.
func waitable(err error, local bool) bool {
	var ue *usageError
	if errors.As(err, &ue) {
		return false
	}
	if local {
		return errors.Is(err, fs.ErrNotExist)
	}
	// A network operation's error (dial, read, a name lookup), not any
	// error with an errno (which satisfies net.Error too).
	var op *net.OpError
	var dns *net.DNSError
	return errors.As(err, &op) || errors.As(err, &dns) || errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ECONNRESET) ||
		errors.Is(err, io.EOF) || errors.Is(err, context.DeadlineExceeded) || strings.Contains(err.Error(), "LOADING")
}
