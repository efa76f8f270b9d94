package cleanup

import (
	"context"
	"fmt"
	"sync"

	"github.com/promstore/promstore/internal/store"
)

// Consistent returns st wrapped so that its reads (Scan, Shards) are
// exact while a cleanup runs in another process: each read holds the
// store's Gate shared, so no journal appears or goes away during it, and
// a read that finds a journal reads the store as that journal leaves it —
// the archives with the journal's contents, their sources and the shards
// it deletes left out — whichever of its steps are done. Writes and
// everything else go to st unchanged. Stores that cleanup does not know
// are returned as they are.
func Consistent(st store.Store) store.Store {
	if _, ok := st.(*consistentStore); ok {
		return st
	}
	t, err := NewTarget(st)
	if err != nil {
		return st
	}
	return &consistentStore{Store: st, target: t}
}

// Unwrap returns the store the view wraps (store.Wrapper), so that
// store.As finds the backend's capabilities under it.
func (c *consistentStore) Unwrap() store.Store { return c.Store }

type consistentStore struct {
	store.Store
	target *Target

	mu sync.Mutex
	// raw and view cache the last journal read and its resolution.
	raw  string
	view *journalView
}

// journalView is how a journal changes a read.
type journalView struct {
	// skip lists the shards a read leaves out: the journal's archives
	// (old and new), their sources and the shards it deletes.
	skip map[store.ShardID]bool
	// at maps an archive shard (old or new) to the archive to emit in its
	// place.
	at       map[store.ShardID]*viewArchive
	archives []*viewArchive
}

type viewArchive struct {
	id      store.ShardID
	samples []store.Sample
}

func newView(j *Journal) (*journalView, error) {
	v := &journalView{skip: map[store.ShardID]bool{}, at: map[store.ShardID]*viewArchive{}}
	add := func(id store.ShardID) {
		v.skip[id] = true
	}
	for _, a := range j.Archives {
		id, err := a.Shard.id()
		if err != nil {
			return nil, err
		}
		va := &viewArchive{id: id, samples: make([]store.Sample, 0, len(a.Samples))}
		for _, s := range a.Samples {
			k, err := store.ParseKey(s.Key)
			if err != nil {
				return nil, fmt.Errorf("journal archive %s: key %q: %w", a.Shard, s.Key, err)
			}
			va.samples = append(va.samples, store.Sample{Shard: id, Key: k, Value: s.viewValue(), Timestamp: s.Timestamp})
		}
		v.archives = append(v.archives, va)
		add(id)
		v.at[id] = va
		for _, r := range a.Replaces {
			rid, err := r.id()
			if err != nil {
				return nil, err
			}
			add(rid)
			v.at[rid] = va
		}
		for _, s := range a.Sources {
			sid, err := s.id()
			if err != nil {
				return nil, err
			}
			add(sid)
		}
	}
	for _, s := range j.Delete {
		sid, err := s.id()
		if err != nil {
			return nil, err
		}
		add(sid)
	}
	return v, nil
}

// skipsError reports whether a shard error is of a skipped shard.
func (v *journalView) skipsError(e *store.ShardError) bool {
	return e.ID != (store.ShardID{}) && v.skip[e.ID]
}

// currentView loads the journal (with the gate held) and resolves it;
// nil when there is none.
func (c *consistentStore) currentView(ctx context.Context) (*journalView, error) {
	raw, ok, err := c.target.Journal.Raw(ctx)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.view != nil && c.raw == raw {
		return c.view, nil
	}
	j, err := decodeJournal(c.target.Journal.Where(), []byte(raw))
	if err != nil {
		return nil, err
	}
	v, err := newView(j)
	if err != nil {
		return nil, fmt.Errorf("cleanup journal %s: %w", c.target.Journal.Where(), err)
	}
	c.raw, c.view = raw, v
	return v, nil
}

func (c *consistentStore) enter(ctx context.Context) (func(), *journalView, error) {
	release := func() {}
	if c.target.Gate != nil {
		var err error
		if release, err = c.target.Gate.RLock(ctx); err != nil {
			return nil, nil, err
		}
	}
	v, err := c.currentView(ctx)
	if err != nil {
		release()
		return nil, nil, err
	}
	return release, v, nil
}

// filterErr drops the problems of skipped shards from a partial error.
func (v *journalView) filterErr(err error) error {
	probs, partial := store.Partial(err)
	if !partial || v == nil {
		return err
	}
	var keep store.ScanErrors
	for _, p := range probs {
		if !v.skipsError(p) {
			keep.Add(p)
		}
	}
	return keep.Err()
}

// Scan streams the store as the journal of a running (or interrupted)
// cleanup leaves it; each journal archive comes where the scan meets one
// of its shards, else at the end.
func (c *consistentStore) Scan(ctx context.Context, fn store.ScanFunc) error {
	release, v, err := c.enter(ctx)
	if err != nil {
		return err
	}
	defer release()
	if v == nil {
		return c.Store.Scan(ctx, fn)
	}
	return v.walk(func(pass func(store.ShardID) (bool, error)) error {
		return c.Store.Scan(ctx, func(s store.Sample) error {
			if ok, err := pass(s.Shard); !ok {
				return err
			}
			return fn(s)
		})
	}, func(a *viewArchive) error {
		for _, s := range a.samples {
			if err := fn(s); err != nil {
				return err
			}
		}
		return nil
	})
}

// walk reads the store as v leaves it: scan reads the store, asking pass
// of each shard (or sample's shard) it meets whether to hand it on; the
// journal's archives come at the end, through emit, in the journal's
// order, whichever of their shards are there yet: every read while the
// run is in progress adds them in the same place, so that its sums do
// not move from read to read as the run's steps put the new archive in
// place and take the old one away (a sum's last bit depends on the order
// of its additions; see sumValue). Problems of skipped shards are
// dropped.
func (v *journalView) walk(scan func(pass func(store.ShardID) (bool, error)) error, emit func(*viewArchive) error) error {
	err := scan(func(id store.ShardID) (bool, error) {
		return !v.skip[id], nil
	})
	if _, partial := store.Partial(err); err != nil && !partial {
		return err
	}
	for _, a := range v.archives {
		if err := emit(a); err != nil {
			return err
		}
	}
	return v.filterErr(err)
}

// Shards lists the shards as the journal of a running (or interrupted)
// cleanup leaves them: its sources and deleted shards left out, each
// archive with the journal's sample count.
func (c *consistentStore) Shards(ctx context.Context) ([]store.ShardInfo, error) {
	release, v, err := c.enter(ctx)
	if err != nil {
		return nil, err
	}
	defer release()
	infos, err := c.Store.Shards(ctx)
	if v == nil {
		return infos, err
	}
	if _, partial := store.Partial(err); err != nil && !partial {
		return nil, err
	}
	out := infos[:0:0]
	found := map[*viewArchive]*store.ShardInfo{}
	for _, in := range infos {
		if !v.skip[in.ID] {
			out = append(out, in)
			continue
		}
		if a := v.at[in.ID]; a != nil && (found[a] == nil || in.ID == a.id) {
			cp := in
			found[a] = &cp
		}
	}
	for _, a := range v.archives {
		in := store.ShardInfo{ID: a.id, Alive: store.AliveUnknown}
		if f := found[a]; f != nil {
			in = *f
			in.ID = a.id
			in.Problems, in.Unreadable = nil, false
		}
		in.Samples = len(a.samples)
		out = append(out, in)
	}
	return out, v.filterErr(err)
}
