package cleanup

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/promstore/promstore/internal/store"
)

// Journal is the intent record of a run: everything the run is about to
// write and delete, saved durably before the first change. Applying it
// twice has the effect of applying it once.
type Journal struct {
	Version int    `json:"version"`
	Started string `json:"started"`
	// Archives are written with exactly these contents, then their
	// sources are deleted.
	Archives []JournalArchive `json:"archives"`
	// Delete lists the other shards to delete (live* and dropped gauges).
	Delete []JournalShard `json:"delete"`
}

// JournalArchive is one archive of a journal.
type JournalArchive struct {
	Shard   JournalShard    `json:"shard"`
	Layout  int             `json:"layout"`
	Samples []JournalSample `json:"samples"`
	Sources []JournalShard  `json:"sources"`
	// Replaces lists the archives of earlier runs the new one takes the
	// place of: deleted with the sources.
	Replaces []JournalShard `json:"replaces,omitempty"`
}

// JournalShard names a shard.
type JournalShard struct {
	Kind string `json:"kind"`
	Mode string `json:"mode,omitempty"`
	PID  string `json:"pid"`
}

// JournalSample is one sample of an archive: its key text and absolute
// values.
type JournalSample struct {
	Key       string
	Value     float64
	Timestamp float64
	// View, when Viewed, is the value readers see while the run is in
	// progress (the journal there), below Value by half the raise of a
	// summed key's archive value (see sumValue): their sums then rise
	// from before the run to during it and again to after it, whatever
	// place the archive takes among the shards. Journals of earlier
	// versions have none: readers see Value.
	View   float64
	Viewed bool
}

// viewValue is what a reader sees of the sample while the run is in
// progress.
func (s JournalSample) viewValue() float64 {
	if s.Viewed {
		return s.View
	}
	return s.Value
}

// jsonSample spells floats as text, so that NaN and infinities survive.
type jsonSample struct {
	Key       string `json:"key"`
	Value     string `json:"value"`
	Timestamp string `json:"ts"`
	View      string `json:"view,omitempty"`
}

// MarshalJSON writes the floats as Go float text ("NaN", "+Inf", "-0").
func (s JournalSample) MarshalJSON() ([]byte, error) {
	j := jsonSample{
		Key:       s.Key,
		Value:     strconv.FormatFloat(s.Value, 'g', -1, 64),
		Timestamp: strconv.FormatFloat(s.Timestamp, 'g', -1, 64),
	}
	if s.Viewed {
		j.View = strconv.FormatFloat(s.View, 'g', -1, 64)
	}
	return json.Marshal(j)
}

// UnmarshalJSON reads what MarshalJSON wrote.
func (s *JournalSample) UnmarshalJSON(b []byte) error {
	var j jsonSample
	if err := json.Unmarshal(b, &j); err != nil {
		return err
	}
	v, err := strconv.ParseFloat(j.Value, 64)
	if err != nil {
		return fmt.Errorf("sample %q: value: %w", j.Key, err)
	}
	ts, err := strconv.ParseFloat(j.Timestamp, 64)
	if err != nil {
		return fmt.Errorf("sample %q: timestamp: %w", j.Key, err)
	}
	*s = JournalSample{Key: j.Key, Value: v, Timestamp: ts}
	if j.View != "" {
		if s.View, err = strconv.ParseFloat(j.View, 64); err != nil {
			return fmt.Errorf("sample %q: view: %w", j.Key, err)
		}
		s.Viewed = true
	}
	return nil
}

func journalShard(id store.ShardID) JournalShard {
	return JournalShard{Kind: string(id.Kind), Mode: id.Mode, PID: id.PID}
}

func (j JournalShard) id() (store.ShardID, error) {
	id := store.ShardID{Kind: store.Kind(j.Kind), Mode: j.Mode, PID: j.PID}
	if _, _, err := store.ParseKindName(id.KindName()); err != nil || j.PID == "" {
		return id, fmt.Errorf("journal names an invalid shard %+v", j)
	}
	return id, nil
}

// String names the shard as its file does.
func (j JournalShard) String() string {
	return store.ShardID{Kind: store.Kind(j.Kind), Mode: j.Mode, PID: j.PID}.String()
}

// journalOf turns a plan into the journal of its execution.
func journalOf(p *Plan, now time.Time) *Journal {
	j := &Journal{Version: 1, Started: now.UTC().Format(time.RFC3339)}
	for _, a := range p.Archives {
		ja := JournalArchive{Shard: journalShard(a.ID), Layout: a.Layout, Samples: a.Samples}
		for _, s := range a.Sources {
			ja.Sources = append(ja.Sources, journalShard(s))
		}
		for _, r := range a.Replaces {
			ja.Replaces = append(ja.Replaces, journalShard(r))
		}
		j.Archives = append(j.Archives, ja)
	}
	for _, sp := range p.Shards {
		if sp.Action == Remove || sp.Action == Drop {
			j.Delete = append(j.Delete, journalShard(sp.Info.ID))
		}
	}
	return j
}

func encodeJournal(j *Journal) ([]byte, error) {
	return json.Marshal(j)
}

// journalAdvice is what a journal that cannot be used asks of the user.
const journalAdvice = "a cleanup writes it first and removes it last, and readers and cleanups stop while one is there that they cannot finish. " +
	"It holds no metrics: once you know that no cleanup was running (one killed after writing an archive leaves it beside its sources, " +
	"counted twice until the run is finished), remove it by hand (a file: rm; Redis: DEL)"

func decodeJournal(where string, b []byte) (*Journal, error) {
	var j Journal
	if err := json.Unmarshal(b, &j); err != nil {
		return nil, fmt.Errorf("cleanup journal %s cannot be read: %w: %s", where, err, journalAdvice)
	}
	if j.Version != 1 {
		return nil, fmt.Errorf("cleanup journal %s is of version %d, which this promstore does not know (a newer promstore's? finish the run with that one): %s", where, j.Version, journalAdvice)
	}
	return &j, nil
}

// Execute writes the plan's journal, applies it and removes it. Pids are
// checked once more first: one that runs now aborts the run unchanged.
func Execute(ctx context.Context, t *Target, p *Plan, opts Options) error {
	opts.Local = opts.Local || t.Local
	if opts.Local {
		for _, pid := range p.pids() {
			if store.DecimalPID(pid) && opts.alive(pid) == store.AliveYes {
				return fmt.Errorf("pid %s is running now: nothing was changed; run the cleanup again", pid)
			}
		}
	}
	j := journalOf(p, opts.now())
	if len(j.Archives) == 0 && len(j.Delete) == 0 {
		return nil
	}
	if err := t.transition(ctx, func() error { return t.Journal.Save(ctx, j) }); err != nil {
		return err
	}
	if err := opts.step("journal written"); err != nil {
		return err
	}
	return apply(ctx, t, j, &opts, false)
}

// apply performs a journal: each archive is written with its absolute
// contents and its sources and the archives it replaces are deleted,
// then the other shards are deleted and the journal removed. Every step
// is idempotent.
//
// Where the target can (Target.Replace: a standalone Redis), an archive
// and the deletion of its sources are one transaction. Elsewhere (files,
// a Redis Cluster) they are steps; for a file store a barrier (see
// Target.RaiseBarrier) stands from before the archive appears until its
// sources are gone, so that Python's collector fails a scrape there
// instead of counting the sources twice. When finishing an interrupted
// run (recovering), any of its archives may already stand beside its
// sources: the barrier then stands from before the first archive until
// the last one's sources are gone.
//
// An archive that cannot be put in place (a full disk fails its write)
// stops the run where no archive stands beside its sources, unless one
// stood there when the run began: a barrier the run raised is then taken
// down again, so that Python's collector does not fail every scrape until
// a run gets through. One found standing when the run began (left by a
// run stopped while it stood) is kept until a run ends.
func apply(ctx context.Context, t *Target, j *Journal, opts *Options, recovering bool) error {
	hold := recovering && t.RaiseBarrier != nil && t.Replace == nil && len(j.Archives) > 0
	found := false // the barrier stood before this run
	if hold {
		found = t.BarrierStands == nil || t.BarrierStands()
		if err := t.RaiseBarrier(ctx); err != nil {
			return err
		}
	}
	for _, a := range j.Archives {
		id, err := a.Shard.id()
		if err != nil {
			return err
		}
		samples := make([]store.Sample, 0, len(a.Samples))
		for _, s := range a.Samples {
			k, err := store.ParseKey(s.Key)
			if err != nil {
				return fmt.Errorf("journal archive %s: key %q: %w", a.Shard, s.Key, err)
			}
			samples = append(samples, store.Sample{Shard: id, Key: k, Value: s.Value, Timestamp: s.Timestamp})
		}
		var gone []store.ShardID
		for _, s := range a.Sources {
			sid, err := s.id()
			if err != nil {
				return err
			}
			if IsArchivePID(sid.PID) {
				return fmt.Errorf("journal asks to merge archive shard %s as a source: refusing", s)
			}
			gone = append(gone, sid)
		}
		for _, r := range a.Replaces {
			rid, err := r.id()
			if err != nil {
				return err
			}
			if !IsArchivePID(rid.PID) || rid.KindName() != id.KindName() || rid == id {
				return fmt.Errorf("journal archive %s replaces %s, which is not an older archive of its kind: refusing", a.Shard, r)
			}
			gone = append(gone, rid)
		}
		if t.Replace != nil {
			if err := t.Replace(ctx, id, samples, gone); err != nil {
				return fmt.Errorf("write archive: %w", err)
			}
			if err := opts.step("replaced " + a.Shard.String()); err != nil {
				return err
			}
			continue
		}
		if err := replaceInSteps(ctx, t, a, id, samples, gone, opts, !hold); err != nil {
			var notInPlace *notInPlaceError
			if hold && !found && errors.As(err, &notInPlace) {
				// The archives before this one are whole, their sources
				// gone; this one is not in place.
				if lerr := t.LowerBarrier(ctx); lerr != nil {
					return errors.Join(err, lerr)
				}
			}
			return err
		}
	}
	if hold {
		if err := t.LowerBarrier(ctx); err != nil {
			return err
		}
		if err := opts.step("barrier lowered"); err != nil {
			return err
		}
	}
	del := t.Store.DeleteShard
	if t.DeleteMany != nil && len(j.Delete) > 1 {
		// The shards deleteShard will accept, listed at once.
		var ids []store.ShardID
		for _, s := range j.Delete {
			if id, err := s.id(); err == nil && !IsArchivePID(id.PID) {
				ids = append(ids, id)
			}
		}
		if len(ids) > 1 {
			d, err := t.DeleteMany(ctx, ids)
			if err != nil {
				return err
			}
			del = d
		}
	}
	for _, s := range j.Delete {
		if err := deleteShard(ctx, s, del, opts); err != nil {
			return err
		}
	}
	if err := t.transition(ctx, func() error { return t.Journal.Remove(ctx) }); err != nil {
		return err
	}
	return opts.step("journal removed")
}

// replaceInSteps writes archive id and deletes the shards gone, one step
// at a time. Where the target stages writes (files), the slow part of
// the archive's write comes first and the barrier (raised and lowered
// here when barrier is set) stands only for the rename and the removals.
//
// An error that leaves the archive out of place and its sources
// untouched is a *notInPlaceError; a barrier raised here is then taken
// down again.
func replaceInSteps(ctx context.Context, t *Target, a JournalArchive, id store.ShardID, samples []store.Sample, gone []store.ShardID, opts *Options, barrier bool) error {
	var commit func() error
	if t.Stage != nil {
		c, abort, err := t.Stage(ctx, a.Layout, id, samples)
		if err != nil {
			return &notInPlaceError{fmt.Errorf("write archive: %w", err)}
		}
		defer abort()
		commit = c
	}
	if barrier && t.RaiseBarrier != nil {
		if err := t.RaiseBarrier(ctx); err != nil {
			return err
		}
		if err := opts.step("barrier raised"); err != nil {
			return err
		}
	}
	if commit != nil {
		if err := commit(); err != nil {
			err = &notInPlaceError{fmt.Errorf("write archive: %w", err)}
			if barrier && t.LowerBarrier != nil {
				if lerr := t.LowerBarrier(ctx); lerr != nil {
					return errors.Join(err, lerr)
				}
			}
			return err
		}
	} else {
		w, err := t.ArchiveWriter(ctx, a.Layout)
		if err != nil {
			return err
		}
		if err := w.WriteShard(ctx, id, samples); err != nil {
			return fmt.Errorf("write archive: %w", err)
		}
	}
	if barrier && t.RaiseBarrier != nil {
		// The archive stands beside its sources behind the barrier: a
		// run stopped now (SIGTERM, Ctrl-C) would leave the barrier up,
		// failing Python's collector until the next run. Removing the
		// sources and lowering the barrier are a few unlinks: finish
		// them, whatever happens to ctx (a kill still leaves it to the
		// next run).
		ctx = context.WithoutCancel(ctx)
	}
	if err := opts.step("wrote " + a.Shard.String()); err != nil {
		return err
	}
	del := t.Store.DeleteShard
	if t.Unlink != nil {
		del = t.Unlink
	} else if t.DeleteMany != nil && len(gone) > 1 {
		d, err := t.DeleteMany(ctx, gone)
		if err != nil {
			return err
		}
		del = d
	}
	for _, sid := range gone {
		if err := del(ctx, sid); err != nil {
			return err
		}
		if err := opts.step("deleted " + sid.String()); err != nil {
			return err
		}
	}
	if barrier && t.LowerBarrier != nil {
		if err := t.LowerBarrier(ctx); err != nil {
			return err
		}
		if err := opts.step("barrier lowered"); err != nil {
			return err
		}
	}
	return nil
}

// notInPlaceError is an archive's write that failed before the archive
// was in place, its sources untouched.
type notInPlaceError struct{ err error }

func (e *notInPlaceError) Error() string { return e.err.Error() }
func (e *notInPlaceError) Unwrap() error { return e.err }

func deleteShard(ctx context.Context, s JournalShard, del func(context.Context, store.ShardID) error, opts *Options) error {
	id, err := s.id()
	if err != nil {
		return err
	}
	if IsArchivePID(id.PID) {
		return fmt.Errorf("journal asks to delete archive shard %s: refusing", s)
	}
	if err := del(ctx, id); err != nil {
		return err
	}
	return opts.step("deleted " + s.String())
}
