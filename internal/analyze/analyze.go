// Package analyze explains a multiprocess store, as promtool tsdb analyze
// does a TSDB: series and samples per family, the label names that blow
// up cardinality, the per-pid series of all-mode gauges, the share of
// live and dead shards, bytes per family (used, allocated, on disk), what
// a cleanup of dead pids would free and how fast the store grows. It
// reads the store once, as dump does, without aggregating values.
package analyze

import (
	"context"
	"errors"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/promstore/promstore/internal/cleanup"
	"github.com/promstore/promstore/internal/store"
)

// Options configure Run.
type Options struct {
	// Top bounds the families and labels listed (0: all).
	Top int
	// Alive tells whether a pid runs; nil means unknown for every pid (a
	// Redis store whose writers run elsewhere).
	Alive func(pid string) store.Liveness
	// Now is the time of the analysis.
	Now time.Time
	// MinIdle: a shard updated more recently is never counted as a dead
	// pid's (cleanup's guard, cleanup.DefaultMinIdle).
	MinIdle time.Duration
	// Layouts is true for file stores, whose shard bytes are entries of a
	// known shape (false: bytes are shared out by samples).
	Layouts bool
}

// Bytes are the three sizes of shard files: Used is what the header says
// holds entries, Allocated the disk blocks (shards are sparse files),
// OnDisk the apparent size ls -l shows. For Redis all three are the
// memory the keys take.
type Bytes struct {
	Used      int64 `json:"used"`
	Allocated int64 `json:"allocated"`
	OnDisk    int64 `json:"on_disk"`
}

func (b *Bytes) add(o Bytes) {
	b.Used += o.Used
	b.Allocated += o.Allocated
	b.OnDisk += o.OnDisk
}

// Family is what one family holds.
type Family struct {
	Name string `json:"family"`
	Type string `json:"type"`
	Mode string `json:"mode,omitempty"`
	// Series are the lines the aggregated output has (per pid for all
	// and liveall gauges).
	Series int `json:"series"`
	// Samples are the entries all shards hold.
	Samples int `json:"samples"`
	Bytes
}

// LabelFamily is one family a label name occurs in.
type LabelFamily struct {
	Family string `json:"family"`
	Values int    `json:"values"`
	Series int    `json:"series"`
}

// Label is one label name with its distinct values over the store.
type Label struct {
	Name   string `json:"label"`
	Values int    `json:"values"`
	// Families using it, the ones with most series first.
	Families []LabelFamily `json:"families"`
}

// AllGauge is a gauge of mode all or liveall: one series per pid.
type AllGauge struct {
	Family     string `json:"family"`
	Mode       string `json:"mode"`
	PIDs       int    `json:"pids"`
	DeadPIDs   int    `json:"dead_pids"`
	Series     int    `json:"series"`
	DeadSeries int    `json:"dead_series"`
	// PerPID is the largest number of series one pid has.
	PerPID int `json:"max_series_per_pid"`
}

// Share is the part of the store that live, dead or unknown pids hold.
type Share struct {
	Shards  int `json:"shards"`
	Samples int `json:"samples"`
	// Series counts the output series that shards of this liveness
	// hold (a series can be held by live and dead shards).
	Series int `json:"series"`
	Bytes
}

// Cleanup estimates what cleanup --dead-pids would do.
type Cleanup struct {
	// Refused says why cleanup would refuse (the estimate then counts
	// what it would do if it did not).
	Refused   string `json:"refused,omitempty"`
	Removed   int    `json:"removed"`
	Compacted int    `json:"compacted"`
	Archives  int    `json:"archives"`
	Kept      int    `json:"kept_all_gauges"`
	// Freed is what the removed and compacted shards take, minus what
	// the archives grow by (estimated from the distinct keys they get).
	Freed Bytes `json:"freed"`
}

// Growth is how fast the store grew, from the shards' mtimes.
type Growth struct {
	// Oldest and Newest are the earliest and latest last update of a
	// shard, in UTC; none when no shard's time is known (no shards).
	Oldest time.Time `json:"oldest_update,omitzero"`
	Newest time.Time `json:"newest_update,omitzero"`
	// Per day over the span between the oldest and newest update.
	ShardsPerDay    float64 `json:"shards_per_day"`
	AllocatedPerDay float64 `json:"allocated_bytes_per_day"`
	OnDiskPerDay    float64 `json:"on_disk_bytes_per_day"`
	// Note says when the span is too short to tell.
	Note string `json:"note,omitempty"`
}

// Report is the analysis of a store.
type Report struct {
	Store         string `json:"store"`
	Shards        int    `json:"shards"`
	Unreadable    int    `json:"unreadable_shards"`
	Samples       int    `json:"samples"`
	Series        int    `json:"series"`
	FamiliesTotal int    `json:"families_total"`
	// LabelsTotal counts the label names; Labels lists the first Top.
	LabelsTotal int `json:"labels_total"`
	Bytes
	Families  []Family   `json:"families"`
	Labels    []Label    `json:"labels"`
	AllGauges []AllGauge `json:"all_mode_gauges"`
	Live      Share      `json:"live"`
	Dead      Share      `json:"dead"`
	Unknown   Share      `json:"unknown"`
	Cleanup   Cleanup    `json:"cleanup_dead_pids"`
	Growth    Growth     `json:"growth"`
	// Problems are the shards the scan could not read (an empty list
	// when there are none).
	Problems []string `json:"problems"`
}

// family is a family being counted.
type family struct {
	out    Family
	series map[string]int // series identity -> index in seriesLive
	// labels maps a label name to its distinct values in this family.
	labels map[string]map[string]struct{}
	// labelSeries counts, per label name, the series that carry it (a
	// histogram's le is on its buckets only, not _sum and _count).
	labelSeries map[string]int
	// pids counts, for all-mode gauges, the series of each pid.
	pids map[string]int
	all  bool
	// prevBucket is the last new histogram bucket key met, prevCount
	// its _count series: the buckets of a series come one after the
	// other, with the same labels but le.
	prevBucket *store.Key
	prevCount  int
}

// keyState is what the run knows of one distinct key.
type keyState struct {
	fam *family
	// series is the index of the key's series (not for all gauges);
	// count, for a histogram bucket, the index of the _count series
	// Python's collector derives from it (-1 otherwise).
	series, count int
	weight        int64
	// idx numbers the distinct keys densely.
	idx int
	key *store.Key
}

// shardState is a shard's facts and its liveness.
type shardState struct {
	info  store.ShardInfo
	alive store.Liveness
	// dead is true when cleanup --dead-pids would select it.
	dead bool
	// keyBytes is the sum of the entries' key parts; n the entries.
	keyBytes int64
	n        int
	// layout is the bytes an entry's value takes (8 or 16), worked out
	// from the used bytes after the scan; 0 when unknown.
	layout int
	// fams holds, per family, its key bytes and entries in this shard.
	fams map[*family]*[2]int64
}

const (
	heldLive = 1 << iota
	heldDead
	heldUnknown
)

// Run analyses st. infos are its shards' facts (sizes, mtimes); the
// entries come from one scan.
func Run(ctx context.Context, st store.Reader, infos []store.ShardInfo, o Options) (*Report, error) {
	// Lists are empty, never null, in JSON.
	r := &Report{Shards: len(infos), AllGauges: []AllGauge{}, Problems: []string{}}
	if d, ok := st.(interface{ Describe() string }); ok {
		r.Store = d.Describe()
	}
	shards := make(map[store.ShardID]*shardState, len(infos))
	alive := map[string]store.Liveness{}
	if check := o.Alive; check != nil {
		// Each pid checked once (cleanup's rules ask again).
		o.Alive = func(pid string) store.Liveness {
			l, ok := alive[pid]
			if !ok {
				l = check(pid)
				alive[pid] = l
			}
			return l
		}
	}
	for _, in := range infos {
		s := &shardState{info: in, alive: store.AliveUnknown, fams: map[*family]*[2]int64{}}
		switch {
		case store.IsArchivePID(in.ID.PID):
			// What cleanup compacted: dead processes' samples (it is
			// no pid to check, and not a dead pid's shard to compact:
			// see dead below).
			s.alive = store.AliveNo
		case o.Alive != nil:
			s.alive = o.Alive(in.ID.PID)
		}
		shards[in.ID] = s
	}
	fams := map[string]*family{}
	// Keys by their reader-given ID (dense), by pointer when they have
	// none.
	var byID []*keyState
	byKey := map[*store.Key]*keyState{}
	nkeys := 0
	var held []uint8 // per series (over all families), who holds it
	// newKey makes the state of a key met for the first time.
	newKey := func(k *store.Key, id store.ShardID) *keyState {
		f := fams[k.Family]
		if f == nil {
			typ := string(id.Kind)
			f = &family{out: Family{Name: k.Family, Type: typ, Mode: id.Mode}, series: map[string]int{}, labels: map[string]map[string]struct{}{}, labelSeries: map[string]int{}}
			f.all = id.Kind == store.KindGauge && (id.Mode == "all" || id.Mode == "liveall")
			if f.all {
				f.pids = map[string]int{}
			}
			fams[k.Family] = f
		}
		n := len(k.Text)
		ks := &keyState{fam: f, weight: int64(4 + n + 8 - (n+4)%8), count: -1, idx: nkeys, key: k}
		nkeys++
		// series is the index of a series, made when new; its labels are
		// k's but skip.
		series := func(ident, skip string) int {
			idx, ok := f.series[ident]
			if !ok {
				idx = len(held)
				held = append(held, 0)
				f.series[ident] = idx
				for _, l := range k.Labels {
					if l.Name != skip {
						f.labelSeries[l.Name]++
					}
				}
			}
			return idx
		}
		ks.series = series(seriesIdent(k.Name, k.Labels, ""), "")
		bucket := id.Kind == store.KindHistogram && isBucketOf(k.Name, k.Family)
		// Another bucket of the last bucket's series: its other labels'
		// values are counted already, its _count series known.
		sibling := bucket && f.prevBucket != nil && sameButLE(k.Labels, f.prevBucket.Labels)
		for _, l := range k.Labels {
			if sibling && l.Name != "le" {
				continue
			}
			vs := f.labels[l.Name]
			if vs == nil {
				vs = map[string]struct{}{}
				f.labels[l.Name] = vs
			}
			vs[l.Value] = struct{}{}
		}
		switch {
		case sibling:
			ks.count = f.prevCount
		case bucket:
			// Python's collector writes a _count per series from its
			// +Inf bucket; the shards hold none.
			ks.count = series(seriesIdent(k.Family+"_count", k.Labels, "le"), "le")
		}
		if bucket {
			f.prevBucket, f.prevCount = k, ks.count
		}
		if k.ID == 0 {
			byKey[k] = ks
		} else {
			for int(k.ID) >= len(byID) {
				byID = append(byID, make([]*keyState, len(byID)+1024)...)
			}
			byID[k.ID] = ks
		}
		return ks
	}
	// Archive groups: per kind name, the distinct keys dead shards and
	// existing archives would put in the archive, and its layout.
	type archive struct {
		seen     []bool // by keyState.idx
		n        int
		keyBytes int64
		layout   int
		old      Bytes
	}
	archives := map[string]*archive{}
	now := o.Now
	if now.IsZero() {
		now = time.Now()
	}
	// The shards cleanup --dead-pids would select (their pids dead and
	// idle), by cleanup's own rules.
	decided, _ := decideCleanup(shards, o, now)
	for _, sp := range decided {
		shards[sp.Info.ID].dead = sp.Selected
	}
	scanErr := store.ScanShards(ctx, st, func(id store.ShardID, entries []store.Entry) error {
		s := shards[id]
		if s == nil {
			// Created after the listing: count it as unknown.
			s = &shardState{info: store.ShardInfo{ID: id}, alive: store.AliveUnknown, fams: map[*family]*[2]int64{}}
			shards[id] = s
			r.Shards++
		}
		var held1 uint8 = heldUnknown
		switch s.alive {
		case store.AliveYes:
			held1 = heldLive
		case store.AliveNo:
			held1 = heldDead
		}
		var arch *archive
		if (s.dead || store.IsArchivePID(id.PID)) && !store.IsLiveMode(id.Mode) && !(id.Kind == store.KindGauge && id.Mode == "all") {
			arch = archives[id.KindName()]
			if arch == nil {
				arch = &archive{}
				archives[id.KindName()] = arch
			}
		}
		mostRecent := id.Mode == "mostrecent" || id.Mode == "livemostrecent"
		var lastFam *family
		var acc *[2]int64
		for i := range entries {
			// A key met before, by the ID the entry repeats (its key
			// itself is not loaded), else by pointer.
			k := entries[i].Key
			var ks *keyState
			switch kid := entries[i].KeyID; {
			case kid == 0:
				ks = byKey[k]
			case int(kid) < len(byID):
				if ks = byID[kid]; ks != nil && ks.key != k {
					ks = nil // another store's key of the same ID
				}
			}
			if ks == nil {
				ks = newKey(k, id)
			}
			f := ks.fam
			if f != lastFam {
				lastFam = f
				acc = s.fams[f]
				if acc == nil {
					acc = &[2]int64{}
					s.fams[f] = acc
				}
			}
			acc[0] += ks.weight
			acc[1]++
			s.keyBytes += ks.weight
			if f.all {
				// counted per shard below
			} else if !mostRecent || entries[i].Timestamp > 0 {
				// A mostrecent gauge's series never set (timestamp 0
				// everywhere) is not in Python's output.
				held[ks.series] |= held1
				if ks.count >= 0 {
					held[ks.count] |= held1
				}
			}
			if arch != nil {
				for ks.idx >= len(arch.seen) {
					arch.seen = append(arch.seen, make([]bool, len(arch.seen)+1024)...)
				}
				if !arch.seen[ks.idx] {
					arch.seen[ks.idx] = true
					arch.n++
					arch.keyBytes += ks.weight
				}
			}
		}
		s.n += len(entries)
		for f, acc := range s.fams {
			f.out.Samples += int(acc[1])
			if f.all {
				f.pids[id.PID] += int(acc[1])
			}
		}
		return nil
	})
	if problems, ok := store.Partial(scanErr); ok {
		for _, p := range problems {
			r.Problems = append(r.Problems, p.Error())
			// What cleanup leaves alone (store.ShardInfo.Unreadable),
			// where the listing did not read the shard.
			if s := shards[p.ID]; s != nil && p.ID.Kind != "" && p.Kind != store.ProblemOrphan {
				s.info.Unreadable = true
			}
		}
		r.Unreadable = len(problems)
	} else if scanErr != nil {
		return nil, scanErr
	}

	// Per shard: its layout, then its bytes shared out to its families.
	pidAlive := func(pid string) store.Liveness {
		if l, ok := alive[pid]; ok {
			return l
		}
		return store.AliveUnknown
	}
	for _, s := range shards {
		b := shardBytes(s.info, o.Layouts)
		r.add(b)
		share := &r.Unknown
		switch s.alive {
		case store.AliveYes:
			share = &r.Live
		case store.AliveNo:
			share = &r.Dead
		}
		share.Shards++
		share.Samples += s.n
		share.add(b)
		r.Samples += s.n
		layout := int64(0)
		if o.Layouts && s.n > 0 && b.Used > 0 {
			layout = (b.Used - 8 - s.keyBytes) / int64(s.n)
		}
		s.layout = int(layout)
		total := s.keyBytes + layout*int64(s.n)
		for f, acc := range s.fams {
			fb := acc[0] + layout*acc[1]
			if !o.Layouts {
				fb = acc[0]
			}
			if total > 0 {
				f.out.Used += scale(b.Used, fb, total)
				f.out.Allocated += scale(b.Allocated, fb, total)
				f.out.OnDisk += scale(b.OnDisk, fb, total)
			}
		}
		if a := archives[s.info.ID.KindName()]; a != nil && store.IsArchivePID(s.info.ID.PID) {
			a.old.add(b)
		}
		if a := archives[s.info.ID.KindName()]; a != nil && s.dead && int(layout) > a.layout {
			a.layout = int(layout)
		}
	}
	// Series: all-mode gauges have one per pid; the others as counted.
	for _, f := range fams {
		if f.all {
			ag := AllGauge{Family: f.out.Name, Mode: f.out.Mode, PIDs: len(f.pids)}
			for pid, n := range f.pids {
				ag.Series += n
				if n > ag.PerPID {
					ag.PerPID = n
				}
				switch pidAlive(pid) {
				case store.AliveNo:
					ag.DeadPIDs++
					ag.DeadSeries += n
					r.Dead.Series += n
				case store.AliveYes:
					r.Live.Series += n
				default:
					r.Unknown.Series += n
				}
			}
			f.out.Series = ag.Series
			r.AllGauges = append(r.AllGauges, ag)
			// The pid label is added by the collector.
			pv := map[string]struct{}{}
			for pid := range f.pids {
				pv[pid] = struct{}{}
			}
			f.labels["pid"] = pv
		} else {
			for _, idx := range f.series {
				h := held[idx]
				if h != 0 {
					f.out.Series++
				}
				if h&heldLive != 0 {
					r.Live.Series++
				}
				if h&heldDead != 0 {
					r.Dead.Series++
				}
				if h&heldUnknown != 0 {
					r.Unknown.Series++
				}
			}
		}
		r.Series += f.out.Series
	}
	r.FamiliesTotal = len(fams)
	r.Families = topFamilies(fams, o.Top)
	r.Labels, r.LabelsTotal = topLabels(fams, o.Top)
	sort.Slice(r.AllGauges, func(i, j int) bool {
		a, b := &r.AllGauges[i], &r.AllGauges[j]
		if a.Series != b.Series {
			return a.Series > b.Series
		}
		return a.Family < b.Family // the same report every time
	})
	r.Cleanup = estimateCleanup(shards, o, now, func(kind string) (int, int, Bytes, bool) {
		a := archives[kind]
		if a == nil {
			return 0, 0, Bytes{}, false
		}
		layout := a.layout
		if layout != 8 {
			layout = 16
		}
		used := 8 + a.keyBytes + int64(layout*a.n)
		return a.n, int(used), a.old, true
	})
	r.Growth = growth(infos)
	return r, nil
}

// shardBytes are a shard's three sizes; a store without file layouts
// (Redis) has one size, its memory, for all three.
func shardBytes(in store.ShardInfo, layouts bool) Bytes {
	if !layouts {
		return Bytes{Used: in.Bytes, Allocated: in.Bytes, OnDisk: in.Bytes}
	}
	return Bytes{Used: in.Used, Allocated: in.Allocated, OnDisk: in.Bytes}
}

func scale(total, part, whole int64) int64 {
	return int64(float64(total) * float64(part) / float64(whole))
}

// seriesIdent names a series: sample name and labels (not the one named
// skip), not help.
// isBucketOf reports whether name is family's bucket sample name
// (family + "_bucket").
func isBucketOf(name, family string) bool {
	return len(name) == len(family)+len("_bucket") && strings.HasPrefix(name, family) && strings.HasSuffix(name, "_bucket")
}

// sameButLE reports whether a and b hold the same labels in the same
// order once every label named le is left out (what seriesIdent with
// skip "le" tells apart).
func sameButLE(a, b []store.Label) bool {
	i, j := 0, 0
	for {
		for i < len(a) && a[i].Name == "le" {
			i++
		}
		for j < len(b) && b[j].Name == "le" {
			j++
		}
		if i == len(a) || j == len(b) {
			return i == len(a) && j == len(b)
		}
		if a[i] != b[j] {
			return false
		}
		i, j = i+1, j+1
	}
}

func seriesIdent(name string, labels []store.Label, skip string) string {
	var b strings.Builder
	b.WriteString(name)
	for _, l := range labels {
		if l.Name == skip {
			continue
		}
		b.WriteByte(0)
		b.WriteString(l.Name)
		b.WriteByte(0)
		b.WriteString(l.Value)
	}
	return b.String()
}

func topFamilies(fams map[string]*family, top int) []Family {
	out := make([]Family, 0, len(fams))
	for _, f := range fams {
		out = append(out, f.out)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Series != out[j].Series {
			return out[i].Series > out[j].Series
		}
		return out[i].Name < out[j].Name
	})
	if top > 0 && len(out) > top {
		out = out[:top]
	}
	return out
}

// topLabels returns the first top labels (all for 0) and how many there
// are.
func topLabels(fams map[string]*family, top int) ([]Label, int) {
	values := map[string]map[string]struct{}{}
	users := map[string][]LabelFamily{}
	for _, f := range fams {
		for name, vs := range f.labels {
			all := values[name]
			if all == nil {
				all = map[string]struct{}{}
				values[name] = all
			}
			for v := range vs {
				all[v] = struct{}{}
			}
			n := f.out.Series // an all-mode gauge's series all carry its labels and pid
			if !f.all {
				n = min(f.labelSeries[name], n)
			}
			users[name] = append(users[name], LabelFamily{Family: f.out.Name, Values: len(vs), Series: n})
		}
	}
	out := make([]Label, 0, len(values))
	for name, vs := range values {
		fs := users[name]
		sort.Slice(fs, func(i, j int) bool {
			if fs[i].Series != fs[j].Series {
				return fs[i].Series > fs[j].Series
			}
			return fs[i].Family < fs[j].Family
		})
		out = append(out, Label{Name: name, Values: len(vs), Families: fs})
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Values != out[j].Values {
			return out[i].Values > out[j].Values
		}
		return out[i].Name < out[j].Name
	})
	total := len(out)
	if top > 0 && len(out) > top {
		out = out[:top]
	}
	return out, total
}

// cleanupOptions are the options of the run analyze estimates: cleanup
// --dead-pids --local with its defaults, under o's liveness and time.
func cleanupOptions(o Options, now time.Time) cleanup.Options {
	idle := o.MinIdle
	if idle == 0 {
		idle = -1 // no guard (cleanup's zero is its default)
	}
	return cleanup.Options{DeadPIDs: true, Local: true, MinIdle: idle, Alive: o.Alive, Now: func() time.Time { return now }}
}

// decideCleanup is what cleanup --dead-pids decides for each listed
// shard (cleanup.Decide), with the shards' layouts as the scan worked
// them out where the listing did not tell; refused is why the run would
// refuse, "" when it would not. Nothing is decided without o.Alive.
func decideCleanup(shards map[store.ShardID]*shardState, o Options, now time.Time) ([]cleanup.ShardPlan, string) {
	if o.Alive == nil {
		return nil, ""
	}
	infos := make([]store.ShardInfo, 0, len(shards))
	for _, s := range shards {
		in := s.info
		if in.Layout == 0 {
			in.Layout = s.layout
		}
		infos = append(infos, in)
	}
	sort.Slice(infos, func(i, j int) bool { return infos[i].ID.String() < infos[j].ID.String() })
	decided, err := cleanup.Decide(infos, cleanupOptions(o, now))
	if re := (*cleanup.RefusedError)(nil); errors.As(err, &re) {
		return decided, re.Reason
	}
	return decided, ""
}

// estimateCleanup applies cleanup --dead-pids' decisions (decideCleanup)
// to the shards: live* gauges of dead pids removed, all gauges kept, the
// rest compacted into one archive per kind and mode. archive gives, per
// kind name, the archive's distinct keys, its used size and the existing
// archive's size.
func estimateCleanup(shards map[store.ShardID]*shardState, o Options, now time.Time, archive func(kind string) (int, int, Bytes, bool)) Cleanup {
	var c Cleanup
	if o.Alive == nil {
		c.Refused = "pids of this store cannot be checked from here (a Redis store: give --local when every writer runs on this host)"
		return c
	}
	decided, refused := decideCleanup(shards, o, now)
	c.Refused = refused
	kinds := map[string]bool{}
	for _, sp := range decided {
		b := shardBytes(sp.Info, o.Layouts)
		switch {
		case sp.Action == cleanup.Remove:
			c.Removed++
			c.Freed.add(b)
		case sp.Action == cleanup.Compact:
			c.Compacted++
			c.Freed.add(b)
			kinds[sp.Info.ID.KindName()] = true
		case sp.Selected && !sp.Info.Unreadable:
			c.Kept++ // a gauge of mode all (or mostrecent in the 8-byte layout)
		}
	}
	for kind := range kinds {
		_, used, old, ok := archive(kind)
		if !ok {
			continue
		}
		c.Archives++
		c.Freed.Used -= int64(used) - old.Used
		if !o.Layouts {
			// Redis: a key's memory is all three sizes.
			c.Freed.Allocated -= int64(used) - old.Allocated
			c.Freed.OnDisk -= int64(used) - old.OnDisk
			continue
		}
		// A new archive file is written whole (used bytes, in 4 KiB
		// blocks) and sized as Python sizes a shard (64 KiB, doubled).
		size := int64(1 << 16)
		for int64(used) > size {
			size *= 2
		}
		alloc := (int64(used) + 4095) / 4096 * 4096
		c.Freed.Allocated -= alloc - old.Allocated
		c.Freed.OnDisk -= size - old.OnDisk
	}
	return c
}

func growth(infos []store.ShardInfo) Growth {
	var g Growth
	var alloc, disk int64
	n := 0
	for _, in := range infos {
		if in.Updated.IsZero() {
			continue
		}
		// In UTC, whatever the zone the store reports times in (a
		// file's mtime comes in local time): JSON shows them as given.
		u := in.Updated.UTC()
		if g.Oldest.IsZero() || u.Before(g.Oldest) {
			g.Oldest = u
		}
		if u.After(g.Newest) {
			g.Newest = u
		}
		alloc += in.Allocated
		disk += in.Bytes
		n++
	}
	span := g.Newest.Sub(g.Oldest)
	if n < 2 || span < time.Hour {
		g.Note = "the shards' last updates span less than an hour: no growth rate"
		return g
	}
	days := span.Hours() / 24
	g.ShardsPerDay = float64(n) / days
	g.AllocatedPerDay = float64(alloc) / days
	g.OnDiskPerDay = float64(disk) / days
	g.Note = "from the shards' last updates (" + strconv.Itoa(n) + " shards over " + span.Round(time.Minute).String() + "); a shard's creation time is not kept"
	return g
}
