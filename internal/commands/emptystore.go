package commands

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/promstore/promstore/internal/store"
)

// noShardsProblem words a store that holds no shards at all, saying what
// a store looks like, so that a mistyped path or prefix is noticed.
func noShardsProblem(st store.Store) string {
	if e, ok := store.As[store.Explainer](st); ok {
		return st.Describe() + " holds no shards: " + e.WhatAStoreIs()
	}
	return st.Describe() + " holds no shards"
}

// reportNoShards warns on errOut that st holds no shards, or with strict
// returns that as the error (exit 1).
func reportNoShards(errOut io.Writer, st store.Store, strict bool) error {
	msg := noShardsProblem(st)
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
	return reportNoShards(errOut, st, strict)
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
