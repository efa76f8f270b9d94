package commands

import (
	"context"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/promstore/promstore/internal/cleanup"
	"github.com/promstore/promstore/internal/store"
	_ "github.com/promstore/promstore/internal/store/filestore"  // registers the "file" backend
	_ "github.com/promstore/promstore/internal/store/redisstore" // registers the "redis" backend
)

// StoreFlags are the store-selection flags every command shares.
type StoreFlags struct {
	// Dir is a PROMETHEUS_MULTIPROC_DIR; defaults to $PROMETHEUS_MULTIPROC_DIR,
	// then $prometheus_multiproc_dir, when no Redis store is given.
	Dir   string
	Redis RedisFlags
	// dirFrom is the environment variable the directory came from, if it
	// did: an error opening it names it.
	dirFrom string
}

// Register adds the store flags to cmd.
func (sf *StoreFlags) Register(cmd *cobra.Command) {
	cmd.Flags().StringVarP(&sf.Dir, "dir", "d", "", "multiprocess directory (default $PROMETHEUS_MULTIPROC_DIR, then $prometheus_multiproc_dir)")
	_ = cmd.MarkFlagDirname("dir") // the shell completes directories only
	sf.Redis.register(cmd)
}

// Location resolves the flags and the environment into a store location.
func (sf *StoreFlags) Location(f *Factory) (store.Location, error) {
	redisCfg, useRedis, err := sf.Redis.config(f)
	if err != nil {
		return store.Location{}, err
	}
	switch {
	case sf.Dir != "" && useRedis:
		return store.Location{}, UsageErrorf("give either --dir or --redis-url, not both")
	case sf.Dir != "":
		return store.Location{Dir: sf.Dir}, nil
	case useRedis:
		return store.Location{Redis: redisCfg}, nil
	}
	for _, env := range []string{"PROMETHEUS_MULTIPROC_DIR", "prometheus_multiproc_dir"} {
		if d := f.Getenv(env); d != "" {
			sf.dirFrom = env
			return store.Location{Dir: d}, nil
		}
	}
	redisCfg, ok, err := sf.Redis.fromEnv(f)
	if err != nil {
		return store.Location{}, err
	}
	if ok {
		return store.Location{Redis: redisCfg}, nil
	}
	return store.Location{}, UsageErrorf("%v", store.ErrNoStore)
}

// Open opens the store the flags select.
func (sf *StoreFlags) Open(ctx context.Context, f *Factory) (store.Store, error) {
	loc, err := sf.Location(f)
	if err != nil {
		return nil, err
	}
	f.prepareHeap()
	st, err := store.Open(ctx, loc)
	if err != nil {
		if sf.dirFrom != "" {
			return nil, fmt.Errorf("open store: %w (the directory $%s names)", err, sf.dirFrom)
		}
		return nil, fmt.Errorf("open store: %w", err)
	}
	return cleanup.Consistent(st), nil
}
