package cleanup

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/promstore/promstore/internal/pyclient"
	"github.com/promstore/promstore/internal/store"
)

// Action is what a cleanup does with one shard.
type Action string

// Actions.
const (
	// Keep leaves the shard alone.
	Keep Action = "keep"
	// Remove deletes a live* gauge shard of a dead pid.
	Remove Action = "remove"
	// Drop deletes a gauge shard of mode all (Options.DropDeadGauges).
	Drop Action = "drop"
	// Compact merges the shard into its archive and deletes it.
	Compact Action = "compact"
)

// ShardPlan is the decision about one shard.
type ShardPlan struct {
	Info   store.ShardInfo
	Action Action
	// Reason says why, for humans.
	Reason string
	// Selected is set when the run selects the shard's pid (Action then
	// says what becomes of the shard: a selected one may be kept, e.g. a
	// gauge of mode all).
	Selected bool
	// Archive is the shard a Compact shard merges into.
	Archive store.ShardID
}

// ArchivePlan is one archive shard a run writes.
type ArchivePlan struct {
	ID store.ShardID
	// Existing is the archive before the run, nil when there is none.
	Existing *store.ShardInfo
	// Sources are the shards merged into it (the existing archive not
	// included).
	Sources []store.ShardID
	// Replaces are the archives of the same kind and mode of earlier runs
	// (older generations), merged into this one and deleted with its
	// sources; Existing is the first of them.
	Replaces []store.ShardID
	// Layout is 8 or 16 for a file store, 0 for Redis.
	Layout int
	// Samples is the archive's contents after the run, sorted by key text.
	Samples []JournalSample
	// NewBytes is the archive's disk space after the run, when known.
	NewBytes int64
}

// Plan is what a run will do.
type Plan struct {
	Shards   []ShardPlan
	Archives []ArchivePlan
}

// pids returns the selected pids (those with a shard not kept).
func (p *Plan) pids() []string {
	seen := map[string]bool{}
	var out []string
	for _, s := range p.Shards {
		if s.Action != Keep && !seen[s.Info.ID.PID] {
			seen[s.Info.ID.PID] = true
			out = append(out, s.Info.ID.PID)
		}
	}
	sort.Strings(out)
	return out
}

// Summary counts a plan's effect.
type Summary struct {
	Removed   int `json:"removed"`
	Dropped   int `json:"dropped"`
	Compacted int `json:"compacted"`
	Kept      int `json:"kept"`
	Archives  int `json:"archives"`
	// BytesFreed is the disk space of the deleted shards (their allocated
	// blocks, less than their size when sparse; Redis: their memory) minus
	// what the archives grew by (when their new size is known).
	BytesFreed int64 `json:"bytes_freed"`
}

// Summary counts the plan.
func (p *Plan) Summary() Summary {
	var s Summary
	for _, sp := range p.Shards {
		switch sp.Action {
		case Keep:
			s.Kept++
			continue
		case Remove:
			s.Removed++
		case Drop:
			s.Dropped++
		case Compact:
			s.Compacted++
		}
		s.BytesFreed += sp.Info.Allocated
	}
	for _, a := range p.Archives {
		s.Archives++
		if a.NewBytes > 0 {
			old := int64(0)
			if a.Existing != nil {
				old = a.Existing.Allocated
			}
			s.BytesFreed -= a.NewBytes - old
		}
	}
	return s
}

// pidFacts gathers what is known about one pid.
type pidFacts struct {
	pid     string
	shards  []int
	updated time.Time
	alive   store.Liveness
}

// planTries bounds how many times MakePlan lists, decides and reads
// again while workers exit during its tries (see MakePlan).
const planTries = 10

// MakePlan lists the store, decides about every shard (Decide) and
// computes the archives' new contents (reading the shards to merge). It
// changes nothing.
//
// The pids are checked after the listing, so a worker that wrote after
// it and exited before its check (a worker recycled at that moment,
// with no --min-idle to keep its fresh shards out) is taken as dead with
// a shard that no longer holds what the listing counted. A plan is then
// made anew: its listing comes after the check that found the pid dead,
// so it holds all that pid ever wrote. Under churn another worker may do
// the same in the next try, which is made anew too (up to planTries), as
// is one during which a shard was removed (a dry run takes no lock: a
// cleanup may run meanwhile). A shard that grows after its pid was
// selected by an earlier try (found dead, stale or named) is written by
// a process that looks dead but runs (another pid namespace), and the
// plan fails at once.
func MakePlan(ctx context.Context, t *Target, opts Options) (*Plan, error) {
	opts.Local = opts.Local || t.Local
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	selected := map[string]bool{} // pids selected by an earlier try
	for try := 1; ; try++ {
		p, err := makePlan(ctx, t, opts)
		var changed *changedError
		if !errors.As(err, &changed) {
			return p, err
		}
		changed.tries, changed.minIdleFlag = try, opts.flags().MinIdle
		for _, c := range changed.shards {
			// A shard with fewer samples than listed was removed or
			// replaced (another cleanup's run, during a dry run,
			// which takes no lock): no sign of a writer.
			if selected[c.pid] && c.read > c.listed {
				changed.again = &c
				return nil, changed
			}
		}
		if try == planTries {
			return nil, changed
		}
		for _, pid := range p.pids() {
			selected[pid] = true
		}
	}
}

// changedError is the error of a plan during which shards to merge
// changed (another number of samples read than listed).
type changedError struct {
	shards []changedShard // by location
	tries  int
	// again is the shard that changed although an earlier try had
	// selected its pid already; nil when every try met shards of pids
	// newly selected.
	again *changedShard
	// minIdleFlag names the flag that keeps fresh shards out.
	minIdleFlag string
}

// Is makes a plan that kept changing in every try (again nil: workers
// exiting as they were planned, a state of the store that passes) match
// ErrRefused, as a refusal does: a sidecar counts it apart from failures.
// One whose shard changed although its pid was taken as dead is a
// failure.
func (e *changedError) Is(target error) bool { return target == ErrRefused && e.again == nil }

type changedShard struct {
	where        string // the shard's location (a file path), or its ID
	pid          string
	listed, read int
}

func (e *changedError) Error() string {
	if c := e.again; c != nil {
		return fmt.Sprintf("shard %s changed while being planned (%d samples listed, %d read), although its pid %s was taken as dead by the try before: a process whose pid looks dead still writes it (one in another pid namespace?); nothing was changed", c.where, c.listed, c.read, c.pid)
	}
	c := e.shards[0]
	return fmt.Sprintf("shards kept changing while being planned: in each of %d tries a process wrote after the listing and exited before its pid was checked (the last: shard %s, %d samples listed, %d read); nothing was changed: run again, or give %s to keep fresh shards out", e.tries, c.where, c.listed, c.read, e.minIdleFlag)
}

func makePlan(ctx context.Context, t *Target, opts Options) (*Plan, error) {
	infos, err := t.Store.Shards(ctx)
	if err != nil {
		if _, partial := store.Partial(err); !partial {
			return nil, fmt.Errorf("list shards of %s: %w", t.Store.Describe(), err)
		}
	}
	sort.SliceStable(infos, func(i, j int) bool { return infos[i].ID.String() < infos[j].ID.String() })
	shards, err := Decide(infos, opts)
	if err != nil {
		return nil, err
	}
	plan := &Plan{Shards: shards}
	if err := plan.merge(ctx, t, infos); err != nil {
		var changed *changedError
		if errors.As(err, &changed) {
			return plan, err // its selection tells the next try
		}
		return nil, err
	}
	return plan, nil
}

// Decide says what a run with opts does with each shard of infos (in
// their order): which pids it selects and why, and what becomes of each
// of their shards. It reads no shard and changes nothing; opts.Local is
// taken as given (MakePlan adds the target's). It is the one place of
// cleanup's rules: analyze estimates a run by it. When --dead-pids would
// refuse (an error matching ErrRefused: see namespaceGuard), the shards
// are returned all the same, with what the run would do if it did not.
func Decide(infos []store.ShardInfo, opts Options) ([]ShardPlan, error) {
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	now := opts.now()
	idle := opts.minIdle()
	shards := make([]ShardPlan, len(infos))
	pids := map[string]*pidFacts{}
	var order []*pidFacts
	for i, in := range infos {
		shards[i] = ShardPlan{Info: in, Action: Keep}
		if in.ID.Kind == "" {
			shards[i].Reason = "not a shard name"
			continue
		}
		pf := pids[in.ID.PID]
		if pf == nil {
			pf = &pidFacts{pid: in.ID.PID, alive: store.AliveUnknown}
			pids[in.ID.PID] = pf
			order = append(order, pf)
		}
		pf.shards = append(pf.shards, i)
		if in.Updated.After(pf.updated) {
			pf.updated = in.Updated
		}
	}
	if opts.Local {
		for _, pf := range order {
			if store.DecimalPID(pf.pid) {
				pf.alive = opts.alive(pf.pid)
			}
		}
	}
	// This run's archives are one generation newer than any in the store.
	gen := 1
	for _, pf := range order {
		if g, ok := archiveGen(pf.pid); ok && g >= gen {
			gen = g + 1
		}
	}
	archivePID := ArchivePIDOf(gen)
	var refused error
	if opts.DeadPIDs {
		refused = namespaceGuard(order, now, idle, opts.flags())
	}
	named := map[string]bool{}
	for _, p := range opts.PIDs {
		named[p] = true
	}
	for _, pf := range order {
		reason, selected := selectPID(pf, &opts, named, now, idle)
		for _, i := range pf.shards {
			if !selected {
				shards[i].Reason = reason
				continue
			}
			shards[i].Selected = true
			decide(&shards[i], &opts, reason, now, archivePID)
		}
	}
	return shards, refused
}

// namespaceGuard refuses when shards changed recently but none of their
// pids is visible: every pid then looks dead, live ones included.
func namespaceGuard(order []*pidFacts, now time.Time, idle time.Duration, flags FlagNames) error {
	if idle <= 0 {
		return nil
	}
	var fresh, running []string
	for _, pf := range order {
		if !store.DecimalPID(pf.pid) {
			continue
		}
		if pf.alive == store.AliveYes {
			running = append(running, pf.pid)
		}
		if now.Sub(pf.updated) >= idle {
			continue
		}
		if pf.alive == store.AliveYes {
			return nil
		}
		fresh = append(fresh, pf.pid)
	}
	if len(fresh) == 0 {
		return nil
	}
	return &RefusedError{Flag: flags.DeadPIDs, Reason: freshPIDsRefusal(fresh, running, idle, flags)}
}

// ErrBusy matches (errors.Is) the error of a run that found another
// cleanup of the store running (its lock held): the work is being done,
// by the other run.
var ErrBusy = errors.New("another cleanup is running")

// ErrRefused matches (errors.Is) the error of a run that refuses to tell
// which pids are dead (see namespaceGuard): a state of the store that
// passes, not a failure.
var ErrRefused = errors.New("cleanup refused")

// RefusedError is the error of a run that refuses --dead-pids; it
// matches ErrRefused.
type RefusedError struct {
	// Flag is the flag refused (--dead-pids, or the sidecar's name of it).
	Flag string
	// Reason says why, without "refusing <flag>".
	Reason string
}

func (e *RefusedError) Error() string        { return "refusing " + e.Flag + ": " + e.Reason }
func (e *RefusedError) Is(target error) bool { return target == ErrRefused }

// freshPIDsRefusal says why cleanup --dead-pids refuses a store where
// the shards of the pids fresh changed within idle although none of those
// processes is visible; running are the store's other pids that are
// visible as running. It claims no more than is known: recently exited
// workers and a migration redis-to-file (which stamps the files it writes
// with the time it wrote them; file-to-redis gives each key its source
// file's mtime) look the same as writers in another pid namespace,
// and that namespace is named as a likely cause only when no pid of the
// store is visible at all.
func freshPIDsRefusal(fresh, running []string, idle time.Duration, flags FlagNames) string {
	var b strings.Builder
	fmt.Fprintf(&b, "shards of %d pid(s) (%s) changed within the last %s, yet none of those processes is running here", len(fresh), listPIDs(fresh), idle)
	if len(running) > 0 {
		verb := "is"
		if len(running) > 1 {
			verb = "are"
		}
		fmt.Fprintf(&b, " (pid %s of this store %s, so these look like processes of this pid namespace that exited within the last %s, or shard files that migrate redis-to-file wrote: it stamps them with the time of writing, while file-to-redis keeps each source file's mtime). "+
			"Run again when they have been idle for %s (%s), or select by %s", listPIDs(running), verb, idle, idle, flags.MinIdle, flags.StaleAfter)
		return b.String()
	}
	fmt.Fprintf(&b, ": the processes exited within the last %s, migrate redis-to-file wrote these shard files (it stamps them with the time of writing; file-to-redis keeps each source file's mtime), or promstore runs in another pid namespace (a sidecar container) where every writer looks dead. "+
		"Run it where the writers run (e.g. shareProcessNamespace: true), run again when the shards have been idle for %s (%s), or select by %s", idle, idle, flags.MinIdle, flags.StaleAfter)
	return b.String()
}

// listPIDs lists up to five pids, then how many more there are.
func listPIDs(pids []string) string {
	const shown = 5
	pids = append([]string(nil), pids...)
	sort.Slice(pids, func(i, j int) bool {
		if len(pids[i]) != len(pids[j]) {
			return len(pids[i]) < len(pids[j]) // decimal pids: shorter is smaller
		}
		return pids[i] < pids[j]
	})
	if len(pids) <= shown {
		return strings.Join(pids, ", ")
	}
	return fmt.Sprintf("%s and %d more", strings.Join(pids[:shown], ", "), len(pids)-shown)
}

// selectPID decides whether a pid's shards are cleaned up, and why.
func selectPID(pf *pidFacts, opts *Options, named map[string]bool, now time.Time, idle time.Duration) (string, bool) {
	if IsArchivePID(pf.pid) {
		return "archive shard", false
	}
	if pf.alive == store.AliveYes {
		return "pid " + pf.pid + " is running", false
	}
	age := now.Sub(pf.updated)
	if idle > 0 && age < idle {
		return fmt.Sprintf("updated %s ago, within --min-idle %s", roundDur(age), idle), false
	}
	switch {
	case named[pf.pid]:
		return "pid named by --pid", true
	case opts.DeadPIDs && store.DecimalPID(pf.pid) && pf.alive == store.AliveNo:
		return "pid " + pf.pid + " is not running", true
	case opts.StaleAfter > 0 && age >= opts.StaleAfter:
		return fmt.Sprintf("last updated %s ago (--stale-after %s)", roundDur(age), opts.StaleAfter), true
	}
	switch {
	case opts.DeadPIDs && !store.DecimalPID(pf.pid):
		return "pid " + pf.pid + " is not a process id (liveness unknown)", false
	case opts.DeadPIDs && pf.alive == store.AliveUnknown:
		return "liveness of pid " + pf.pid + " unknown", false
	}
	return "not selected", false
}

func roundDur(d time.Duration) time.Duration {
	if d < 0 {
		return 0
	}
	return d.Round(time.Second)
}

// decide sets the action of one shard of a selected pid.
func decide(sp *ShardPlan, opts *Options, why string, now time.Time, archivePID string) {
	in := sp.Info
	if blocking(in) {
		sp.Reason = "unreadable, left alone: " + fmt.Sprint(in.Problems)
		return
	}
	id := in.ID
	mode := id.Mode
	if m := pyclient.ShardGaugeMode(mode, in.Layout); id.Kind == store.KindGauge && m != mode {
		// A mostrecent shard in the 8-byte layout: the releases that
		// read it know no such mode and keep one series per process,
		// which mark_process_dead leaves too.
		mode = m
		why += "; " + id.Mode + " in the 8-byte layout, one series per pid for the clients that read it (before 0.18)"
	}
	switch {
	case id.Kind == store.KindGauge && store.IsLiveMode(mode):
		sp.Action, sp.Reason = Remove, why+"; live gauge (as mark_process_dead)"
	case id.Kind == store.KindGauge && mode == "all":
		age := now.Sub(in.Updated)
		switch {
		case opts.DropDeadGauges:
			sp.Action, sp.Reason = Drop, why+"; --drop-dead-gauges"
		case opts.DropDeadGaugesAfter > 0 && age >= opts.DropDeadGaugesAfter:
			sp.Action, sp.Reason = Drop, fmt.Sprintf("%s; gauge mode all last updated %s ago (--drop-dead-gauges-after %s)", why, roundDur(age), opts.DropDeadGaugesAfter)
		case opts.DropDeadGaugesAfter > 0:
			sp.Reason = fmt.Sprintf("%s; gauge mode all kept until it is %s old (--drop-dead-gauges-after)", why, opts.DropDeadGaugesAfter)
		default:
			sp.Reason = why + "; gauge mode all keeps one series per pid (--drop-dead-gauges removes it)"
		}
	default:
		sp.Action, sp.Reason = Compact, why
		sp.Archive = store.ShardID{Kind: id.Kind, Mode: id.Mode, PID: archivePID}
	}
}

// accumulator merges the samples of one key into an archive value.
type accumulator struct {
	text      string
	value, ts float64
	set       bool
	// seq is, for min/max gauges, every value of the key in scan order
	// (archive sources and kept shards of the same kind and mode), so that
	// the archive value can be chosen to keep the first-seen result.
	seq []seqEntry
	// sum is, for a key merged by addition, what sumValue needs of its
	// values (the archive's sources and the kept shards').
	sum sumState
}

// seqEntry is one value of a min/max key in scan order.
type seqEntry struct {
	id  store.ShardID
	v   float64
	src bool // merged into the archive (or the archive itself)
}

func (a *accumulator) add(id store.ShardID, v, ts float64) {
	if !a.set {
		a.value, a.ts, a.set = v, ts, true
		return
	}
	switch mergeRule(id) {
	case "min":
		if math.IsNaN(a.value) || v < a.value {
			if !math.IsNaN(v) {
				a.value, a.ts = v, ts
			}
		}
	case "max":
		if math.IsNaN(a.value) || v > a.value {
			if !math.IsNaN(v) {
				a.value, a.ts = v, ts
			}
		}
	case "mostrecent":
		if ts > a.ts {
			a.value, a.ts = v, ts
		}
	default:
		a.value += v
		a.ts = math.Max(a.ts, ts)
	}
}

func (w *archiveWork) accOf(text string) *accumulator {
	a := w.acc[text]
	if a == nil {
		a = &accumulator{text: text}
		w.acc[text] = a
		w.order = append(w.order, a)
	}
	return a
}

// pyFold is Python's min/max over values in the order met: the first
// starts, a later one replaces it only when strictly smaller (greater).
func pyFold(vs []float64, rule string) float64 {
	cur := vs[0]
	for _, v := range vs[1:] {
		if rule == "min" && v < cur || rule == "max" && v > cur {
			cur = v
		}
	}
	return cur
}

func sameValue(a, b float64) bool { return a == b || math.IsNaN(a) && math.IsNaN(b) }

// firstSeenValue chooses the archive value of a min/max key: the minimum
// (maximum) of the merged values that are not NaN, unless NaN keeps the
// collector's result (which depends on the value met first) where that
// value would change it. The result is the same as before whenever one
// of the two choices can make it so.
func firstSeenValue(a *accumulator, rule string, archive store.ShardID, less func(a, b store.ShardID) bool) float64 {
	var before, kept []float64
	var keptIDs []store.ShardID
	for _, e := range a.seq {
		before = append(before, e.v)
		if !e.src {
			kept = append(kept, e.v)
			keptIDs = append(keptIDs, e.id)
		}
	}
	want := pyFold(before, rule)
	pos := len(kept)
	for i, id := range keptIDs {
		if less(archive, id) {
			pos = i
			break
		}
	}
	after := func(v float64) float64 {
		seq := append(append(append([]float64{}, kept[:pos]...), v), kept[pos:]...)
		return pyFold(seq, rule)
	}
	if sameValue(after(a.value), want) {
		return a.value
	}
	if nan := math.NaN(); sameValue(after(nan), want) {
		return nan
	}
	return a.value
}

func mergeRule(id store.ShardID) string {
	if id.Kind != store.KindGauge {
		return "sum"
	}
	switch id.Mode {
	case "min", "max", "mostrecent":
		return id.Mode
	}
	return "sum"
}

// archiveWork is an archive being computed.
type archiveWork struct {
	plan    *ArchivePlan
	acc     map[string]*accumulator
	order   []*accumulator
	layouts map[int]bool
	legacy  string // a legacy key text found, blocking the archive
	counts  map[store.ShardID]int
	want    map[store.ShardID]int
}

// merge reads the shards to compact and the existing archives and
// computes each archive's new contents.
func (p *Plan) merge(ctx context.Context, t *Target, infos []store.ShardInfo) error {
	works := map[store.ShardID]*archiveWork{}
	var ids []store.ShardID
	get := func(id store.ShardID) *archiveWork {
		w := works[id]
		if w == nil {
			w = &archiveWork{
				plan:    &ArchivePlan{ID: id},
				acc:     map[string]*accumulator{},
				layouts: map[int]bool{},
				counts:  map[store.ShardID]int{},
				want:    map[store.ShardID]int{},
			}
			works[id] = w
			ids = append(ids, id)
		}
		return w
	}
	for i := range p.Shards {
		sp := &p.Shards[i]
		if sp.Action != Compact {
			continue
		}
		w := get(sp.Archive)
		w.plan.Sources = append(w.plan.Sources, sp.Info.ID)
		w.want[sp.Info.ID] = sp.Info.Samples
		if sp.Info.Layout != 0 {
			w.layouts[sp.Info.Layout] = true
		}
	}
	if len(works) == 0 {
		return nil
	}
	where := map[store.ShardID]string{}
	for _, in := range infos {
		where[in.ID] = in.ID.String()
		if in.Location != "" {
			where[in.ID] = store.NameText(in.Location)
		}
	}
	// Existing archives (of older generations) of the kinds being
	// compacted.
	byKind := map[string]*archiveWork{}
	for id, w := range works {
		byKind[id.KindName()] = w
	}
	for i := range infos {
		in := &infos[i]
		w := byKind[in.ID.KindName()]
		if w == nil || !IsArchivePID(in.ID.PID) || in.ID == w.plan.ID {
			continue
		}
		if w.plan.Existing == nil {
			w.plan.Existing = in
		}
		w.plan.Replaces = append(w.plan.Replaces, in.ID)
		if blocking(*in) {
			w.legacy = "the existing archive is unreadable: " + fmt.Sprint(in.Problems)
		}
		w.want[in.ID] = in.Samples
		if in.Layout != 0 {
			w.layouts[in.Layout] = true
		}
	}
	// source shard -> archive work (an archive maps to itself).
	route := map[store.ShardID]*archiveWork{}
	// Archives also watch the kept shards of their kind and mode (but
	// mostrecent's): their values in merge order choose an archive value
	// that keeps the readers' result (firstSeenValue, sumValue).
	watch := map[string]*archiveWork{}
	for _, w := range works {
		if r := mergeRule(w.plan.ID); r != "mostrecent" {
			watch[w.plan.ID.KindName()] = w
		}
		for _, s := range w.plan.Sources {
			route[s] = w
		}
		for _, r := range w.plan.Replaces {
			route[r] = w
		}
	}
	scanErr := t.Store.Scan(ctx, func(s store.Sample) error {
		w := route[s.Shard]
		if w == nil {
			if w = watch[s.Shard.KindName()]; w != nil && !s.Key.Legacy {
				a := w.accOf(store.CanonicalKeyText(s.Key))
				if mergeRule(w.plan.ID) == "sum" {
					a.sum.add(s.Value)
				} else {
					a.seq = append(a.seq, seqEntry{id: s.Shard, v: s.Value})
				}
			}
			return nil
		}
		w.counts[s.Shard]++
		if s.Key.Legacy {
			if w.legacy == "" {
				w.legacy = fmt.Sprintf("shard %s holds 3-element keys (prometheus_client < 0.16), which an archive cannot keep", s.Shard)
			}
			return nil
		}
		a := w.accOf(store.CanonicalKeyText(s.Key))
		a.add(s.Shard, s.Value, s.Timestamp)
		switch r := mergeRule(w.plan.ID); {
		case r == "sum":
			a.sum.add(s.Value)
		case watch[s.Shard.KindName()] != nil:
			a.seq = append(a.seq, seqEntry{id: s.Shard, v: s.Value, src: true})
		}
		return nil
	})
	if scanErr != nil {
		if _, partial := store.Partial(scanErr); !partial {
			return fmt.Errorf("read shards to compact: %w", scanErr)
		}
	}
	slices.SortFunc(ids, func(a, b store.ShardID) int {
		if a.KindName() < b.KindName() {
			return -1
		}
		if a.KindName() > b.KindName() {
			return 1
		}
		return 0
	})
	var changed []changedShard
	for _, id := range ids {
		w := works[id]
		if w.legacy != "" {
			continue
		}
		for sid, n := range w.want {
			if got := w.counts[sid]; got != n {
				changed = append(changed, changedShard{where: where[sid], pid: sid.PID, listed: n, read: got})
			}
		}
	}
	if len(changed) > 0 {
		sort.Slice(changed, func(i, j int) bool { return changed[i].where < changed[j].where })
		return &changedError{shards: changed}
	}
	for _, id := range ids {
		w := works[id]
		if w.legacy != "" {
			for i := range p.Shards {
				if sp := &p.Shards[i]; sp.Action == Compact && sp.Archive == id {
					sp.Action, sp.Archive = Keep, store.ShardID{}
					sp.Reason += "; not compacted: " + w.legacy
				}
			}
			continue
		}
		layout := 0
		switch {
		case w.layouts[16]:
			layout = 16
		case w.layouts[8]:
			layout = 8
		}
		if t.Layouts && layout == 0 {
			layout = 16
		}
		if !t.Layouts {
			layout = 0
		}
		w.plan.Layout = layout
		for _, a := range w.order {
			if !a.set {
				continue // a key only kept shards hold
			}
			js := JournalSample{Key: a.text, Timestamp: a.ts}
			switch r := mergeRule(id); r {
			case "min", "max":
				a.value = firstSeenValue(a, r, id, t.less)
			case "sum":
				a.value, js.View = sumValue(&a.sum, a.value)
				js.Viewed = js.View != a.value
			}
			js.Value = a.value
			w.plan.Samples = append(w.plan.Samples, js)
		}
		sort.Slice(w.plan.Samples, func(i, j int) bool { return w.plan.Samples[i].Key < w.plan.Samples[j].Key })
		p.Archives = append(p.Archives, *w.plan)
	}
	return nil
}
