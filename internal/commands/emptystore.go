package commands

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/promstore/promstore/internal/store"
)

// noShardsProblem words a store that holds no shards at all, saying what
// a store looks like and naming the stores found next to it (a Redis
// server's other key prefixes), so that a mistyped path or prefix is
// noticed. A failed look for those is left out of the message.
func noShardsProblem(ctx context.Context, st store.Store) string {
	msg := st.Describe() + " holds no shards"
	if e, ok := store.As[store.Explainer](st); ok {
		msg += ": " + e.WhatAStoreIs()
	}
	if f, ok := store.As[store.StoreFinder](st); ok {
		if near, err := f.NearbyStores(ctx); err == nil && len(near) > 0 {
			msg += "; shards were found with " + strings.Join(near, ", ")
		}
	}
	return msg
}

// reportNoShards warns on errOut that st holds no shards, or with strict
// returns that as the error (exit 1).
func reportNoShards(ctx context.Context, errOut io.Writer, st store.Store, strict bool) error {
	msg := noShardsProblem(ctx, st)
	if strict {
		return fmt.Errorf("%s; --strict given", msg)
	}
	fmt.Fprintf(errOut, "promstore: warning: %s\n", msg)
	return nil
}

// checkShards is reportNoShards after listing st, for a command whose
// read found nothing (so listing costs little): a store with shards that
// hold no samples yet is not empty. A listing that fails is left to the
// command's own read to report.
func checkShards(ctx context.Context, errOut io.Writer, st store.Store, strict bool) error {
	infos, err := st.Shards(ctx)
	if err != nil {
		if problems, partial := store.Partial(err); !partial || len(problems) > 0 {
			return nil
		}
	}
	if len(infos) > 0 {
		return nil
	}
	return reportNoShards(ctx, errOut, st, strict)
}

// emptyStore stands for a target directory a dry run does not create.
type emptyStore struct{ name string }

func (e emptyStore) Scan(context.Context, store.ScanFunc) error        { return nil }
func (e emptyStore) Shards(context.Context) ([]store.ShardInfo, error) { return nil, nil }
func (e emptyStore) WriteShard(context.Context, store.ShardID, []store.Sample) error {
	return errors.New("dry run: not writing")
}
func (e emptyStore) DeleteShard(context.Context, store.ShardID) error {
	return errors.New("dry run: not deleting")
}
func (e emptyStore) Describe() string { return e.name }
func (e emptyStore) Close() error     { return nil }
