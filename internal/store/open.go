package store

import (
	"context"
	"errors"
	"fmt"
	"sync"
)

// Location says which store to open. Exactly one of Dir and Redis is set.
type Location struct {
	// Dir is a PROMETHEUS_MULTIPROC_DIR.
	Dir string
	// Redis is the Redis store configuration (see redisstore.Config); it is
	// opaque here so that this package does not depend on a Redis client.
	Redis any
}

// Opener opens a store of one backend.
type Opener func(ctx context.Context, loc Location) (Store, error)

var (
	mu      sync.RWMutex
	openers = map[string]Opener{}
)

// Register makes a backend available to Open. Backends call it from init.
func Register(name string, o Opener) {
	mu.Lock()
	defer mu.Unlock()
	openers[name] = o
}

// ErrNoStore is returned by Open when the location names no store.
var ErrNoStore = errors.New("no store given: use --dir (or set PROMETHEUS_MULTIPROC_DIR) or --redis-url")

// Open opens the store at loc with the backend registered for it ("file"
// or "redis").
func Open(ctx context.Context, loc Location) (Store, error) {
	var name string
	switch {
	case loc.Dir != "" && loc.Redis != nil:
		return nil, errors.New("give either a directory or a Redis store, not both")
	case loc.Dir != "":
		name = "file"
	case loc.Redis != nil:
		name = "redis"
	default:
		return nil, ErrNoStore
	}
	mu.RLock()
	o := openers[name]
	mu.RUnlock()
	if o == nil {
		return nil, fmt.Errorf("store backend %q is not built in", name)
	}
	return o(ctx, loc)
}

// As returns st, or the first store under st's wrappers (Wrapper), that
// is a T: one of the optional capabilities (Local, Pinger, TTLSampler,
// ...), or for the maintenance code that drives a backend's own API
// (cleanup's targets) the backend's store type. It is the one place that
// asserts types on stores.
func As[T any](st Reader) (T, bool) {
	for st != nil {
		if t, ok := st.(T); ok {
			return t, true
		}
		w, ok := st.(Wrapper)
		if !ok {
			break
		}
		inner := w.Unwrap()
		if inner == nil {
			break
		}
		st = inner
	}
	var zero T
	return zero, false
}
