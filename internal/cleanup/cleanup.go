package cleanup

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/promstore/promstore/internal/store"
)

// ArchivePID is the pid of the archive shards written before archives
// had generations (generation 0); a run now writes "archive-<n>"
// (ArchivePIDOf), n one more than any archive in the store, and folds the
// older archive of the kind into it. A fresh name per run is what keeps
// a reader that lists the store and then reads it (Python's collector,
// the exporter's) from ever meeting the new archive in a listing that
// also holds the sources merged into it (see README "Cleanup while
// everything runs"). Archive pids hold no '_' (Python splits shard file
// names on '_') nor ':', are not numbers (so no pid check ever calls them
// dead) and sort after every decimal pid.
const ArchivePID = "archive"

// ArchivePIDOf is the pid of the archives of generation gen ("archive"
// for 0, else "archive-<gen>").
func ArchivePIDOf(gen int) string {
	if gen <= 0 {
		return ArchivePID
	}
	return ArchivePID + "-" + strconv.Itoa(gen)
}

// archiveGen returns the generation of an archive pid; false for a pid
// that is not an archive's.
func archiveGen(pid string) (int, bool) {
	if pid == ArchivePID {
		return 0, true
	}
	n, ok := strings.CutPrefix(pid, ArchivePID+"-")
	if !ok || !store.DecimalPID(n) {
		return 0, false
	}
	g, err := strconv.Atoi(n)
	return g, err == nil
}

// IsArchivePID reports whether pid names archive shards: "archive" or
// "archive-<n>" (store.IsArchivePID).
func IsArchivePID(pid string) bool { return store.IsArchivePID(pid) }

// DefaultMinIdle is how recently a shard must have changed for its pid
// never to be treated as dead.
const DefaultMinIdle = time.Minute

// Options selects what a cleanup does.
type Options struct {
	// DeadPIDs selects numeric pids with no live process on this host.
	DeadPIDs bool
	// PIDs selects these pids explicitly (still never one seen running:
	// without Local, a Redis store's pids are taken as dead as named).
	PIDs []string
	// StaleAfter, when positive, selects pids whose shards were all last
	// updated at least this long ago.
	StaleAfter time.Duration
	// DropDeadGauges removes gauge shards of mode all of selected pids
	// instead of keeping them.
	DropDeadGauges bool
	// DropDeadGaugesAfter, when positive, removes gauge shards of mode all
	// of selected pids once they were last updated at least this long ago
	// (the others are kept until then).
	DropDeadGaugesAfter time.Duration
	// MinIdle: a pid with a shard updated more recently is never selected.
	// Zero means DefaultMinIdle; negative disables the guard.
	MinIdle time.Duration
	// Local says the pids of the store are processes of this host, so
	// that liveness checks mean something. Always true for a file store;
	// for Redis only when every writer runs on this host.
	Local bool
	// Orphans also removes orphan and shadowed modeless keys (Redis).
	Orphans bool
	// DryRun plans without changing anything.
	DryRun bool
	// Now is the clock (time.Now when nil).
	Now func() time.Time
	// Alive checks a pid (store.ProcessAlive when nil).
	Alive func(pid string) store.Liveness
	// Flags names, in the messages of a run, the flags that set these
	// options (a refusal says which to change); each one left empty is
	// cleanup's own. serve's sidecar passes its --compact-* flags.
	Flags FlagNames

	// afterStep, when set, is called after each step of the execution;
	// an error stops the run there as a crash would (tests only).
	afterStep func(step string) error
}

func (o *Options) now() time.Time {
	if o.Now != nil {
		return o.Now()
	}
	return time.Now()
}

func (o *Options) alive(pid string) store.Liveness {
	if o.Alive != nil {
		return o.Alive(pid)
	}
	return store.ProcessAlive(pid)
}

// FlagNames are the flags of DeadPIDs, MinIdle and StaleAfter.
type FlagNames struct {
	DeadPIDs, MinIdle, StaleAfter string
}

// flags returns o.Flags with cleanup's own names where it has none.
func (o *Options) flags() FlagNames {
	f := o.Flags
	if f.DeadPIDs == "" {
		f.DeadPIDs = "--dead-pids"
	}
	if f.MinIdle == "" {
		f.MinIdle = "--min-idle"
	}
	if f.StaleAfter == "" {
		f.StaleAfter = "--stale-after"
	}
	return f
}

func (o *Options) minIdle() time.Duration {
	switch {
	case o.MinIdle == 0:
		return DefaultMinIdle
	case o.MinIdle < 0:
		return 0
	}
	return o.MinIdle
}

func (o *Options) step(name string) error {
	if o.afterStep == nil {
		return nil
	}
	return o.afterStep(name)
}

func (o *Options) selectsShards() bool {
	return o.DeadPIDs || len(o.PIDs) > 0 || o.StaleAfter > 0
}

// Validate checks that the options select something.
func (o *Options) Validate() error {
	if !o.selectsShards() && !o.Orphans {
		return errors.New("nothing selected: give --dead-pids, --pid or --stale-after (or --orphans for Redis)")
	}
	for _, p := range o.PIDs {
		if p == "" {
			return errors.New("--pid: empty pid")
		}
		if IsArchivePID(p) {
			return fmt.Errorf("--pid %s: archive shards are never cleaned up", p)
		}
	}
	if o.DeadPIDs && !o.Local {
		return errors.New("--dead-pids checks pids on this host, which says nothing about writers on other hosts: give --local when every writer of the store runs here, or select by --stale-after")
	}
	return nil
}

// Run finishes an interrupted run (if a journal is found), plans and,
// unless DryRun, executes the plan. The result is returned also when an
// error stops the run part way.
func Run(ctx context.Context, t *Target, opts Options) (*Result, error) {
	opts.Local = opts.Local || t.Local
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	res := &Result{DryRun: opts.DryRun}
	if !opts.DryRun {
		unlock, err := t.Journal.Lock(ctx)
		if err != nil {
			return nil, err
		}
		defer func() {
			if err := unlock(); err != nil {
				res.Warnings = append(res.Warnings, err.Error()+": until then another cleanup of this store waits")
			}
		}()
	}
	j, err := t.Journal.Load(ctx)
	if err != nil {
		return nil, err
	}
	if j != nil {
		res.Recovered = j
		if !opts.DryRun {
			if err := apply(ctx, t, j, &opts, true); err != nil {
				return res, fmt.Errorf("finish the interrupted cleanup of %s: %w", j.Started, err)
			}
		}
	}
	if j == nil && !opts.DryRun && t.LowerBarrier != nil {
		// A barrier without a journal is not ours to keep (none is left
		// by a run killed at any step, but one removed by hand would).
		if err := t.LowerBarrier(ctx); err != nil {
			return nil, err
		}
	}
	if j != nil && opts.DryRun {
		// The plan below would see the journal's sources again; a real
		// run deletes them first, so show only the journal.
		return res, nil
	}
	if opts.Orphans {
		if err := orphans(ctx, t, &opts, res); err != nil {
			return res, err
		}
	}
	p := &Plan{}
	if opts.selectsShards() {
		if p, err = MakePlan(ctx, t, opts); err != nil {
			return res, err
		}
	}
	res.Plan = p
	res.Warnings = append(res.Warnings, namedWithoutLiveness(p, &opts)...)
	if opts.DryRun {
		if t.Check != nil {
			var deleteKeys []string
			for _, o := range res.Orphans {
				if !o.Spared {
					deleteKeys = append(deleteKeys, o.Key)
				}
			}
			if err := t.Check(ctx, p, deleteKeys); err != nil {
				return res, fmt.Errorf("dry run: the real run would fail: %w", err)
			}
		}
		return res, nil
	}
	if err := Execute(ctx, t, p, opts); err != nil {
		return res, err
	}
	res.Done = true
	for _, pid := range p.pids() {
		if store.DecimalPID(pid) && opts.Local && opts.alive(pid) == store.AliveYes {
			res.Warnings = append(res.Warnings, fmt.Sprintf("pid %s runs again after the cleanup (pid reused?): a process that opened one of its removed shards just before has lost those writes", pid))
		}
	}
	if t.Size != nil {
		for i := range p.Archives {
			a := &p.Archives[i]
			if n, err := t.Size(ctx, a.ID); err == nil {
				a.NewBytes = n
			}
		}
	}
	return res, nil
}

// namedWithoutLiveness warns about the pids named by --pid that the plan
// takes although whether they run cannot be known: every pid of a Redis
// store without Local, and pids that are not process ids.
func namedWithoutLiveness(p *Plan, opts *Options) []string {
	named := map[string]bool{}
	for _, pid := range opts.PIDs {
		named[pid] = true
	}
	var out []string
	for _, pid := range p.pids() {
		switch {
		case !named[pid]:
		case !store.DecimalPID(pid):
			out = append(out, fmt.Sprintf("--pid %s: not a process id, so whether it runs is unknown; it is taken as dead, as asked", pid))
		case !opts.Local:
			out = append(out, fmt.Sprintf("--pid %s: whether it runs is unknown (the pids of a Redis store are checked only with --local, when every writer runs on this host); "+
				"it is taken as dead, as asked: if it runs, what it writes next is counted on top of its compacted values", pid))
		}
	}
	return out
}

// Result is what Run did or, with DryRun, would do.
type Result struct {
	DryRun bool
	// Recovered is the journal of an interrupted run found (and, unless
	// DryRun, finished) first.
	Recovered *Journal
	Plan      *Plan
	// Orphans are the orphan and shadow keys found (Options.Orphans);
	// those not Spared were removed unless DryRun.
	Orphans []Orphan
	// Done is set when the plan was executed completely.
	Done     bool
	Warnings []string
}

// Orphan is a key holding no readable sample (Redis).
type Orphan struct {
	Key     string    `json:"key"`
	Reason  string    `json:"reason"`
	Updated time.Time `json:"updated,omitzero"` // none when unknown (no updated_at)
	// Spared is set when the key changed within MinIdle and stays.
	Spared bool `json:"spared"`
	// Bytes is the key's memory (zero when unknown).
	Bytes int64 `json:"bytes"`
}

// orphans lists the orphan keys and, unless DryRun, deletes those not
// updated within MinIdle.
func orphans(ctx context.Context, t *Target, opts *Options, res *Result) error {
	if t.Orphans == nil {
		return errors.New("--orphans applies to Redis stores only: a file store has no orphan keys")
	}
	found, err := t.Orphans(ctx)
	if err != nil {
		return fmt.Errorf("list orphan keys: %w", err)
	}
	now, idle := opts.now(), opts.minIdle()
	var del []string
	for i := range found {
		o := &found[i]
		if !o.Updated.IsZero() && now.Sub(o.Updated) < idle {
			o.Spared = true
			continue
		}
		del = append(del, o.Key)
	}
	res.Orphans = found
	if opts.DryRun || len(del) == 0 {
		return nil
	}
	if err := t.DeleteKeys(ctx, del); err != nil {
		return err
	}
	return opts.step("orphans deleted")
}
