// Package aggregate merges the per-process samples of a store into metric
// families exactly as prometheus_client's MultiProcessCollector does
// (the rules: docs/aggregation.md).
package aggregate

import (
	"github.com/promstore/promstore/internal/pyclient"
	"github.com/promstore/promstore/internal/store"
)

// Family is one aggregated metric family.
type Family struct {
	// Name is the family name as the sample keys give it (a counter
	// "requests" has samples "requests_total").
	Name string
	// Type is the family's metric type.
	Type store.Kind
	// Help is the help text of the first key seen.
	Help string
	// Mode is the gauge multiprocess mode; empty for other types.
	Mode string
	// Samples are sorted series by series: by labels without le, then
	// name, then le (see SortSamples).
	Samples []Sample
}

// Sample is one aggregated sample.
type Sample struct {
	Name string
	// Labels are sorted by name; gauges of mode all/liveall carry "pid",
	// histogram buckets "le" formatted as Python does ("1.0", "1e+06").
	// They may share memory with the store's keys: read only.
	Labels []store.Label
	Value  float64
	// Procs is what the processes contribute, when the aggregator keeps
	// it (KeepProcesses); nil otherwise.
	Procs *Breakdown
}

// Aggregator merges samples. The zero value is not usable; call New.
// Samples must be added in a deterministic order (the store's scan order)
// for the output to be deterministic, as Python's is in its file order.
type Aggregator struct {
	families map[string]*family
	slots    []*keyInfo // by store.Key.ID
	keys     map[*store.Key]*keyInfo

	// keyInfos and cells are allocated from chunks, in the order keys are
	// first seen: a store's shards list their keys in much the same
	// order, so the fast path of Add walks memory nearly sequentially.
	infoChunk chunk[keyInfo]
	cellChunk chunk[float64]
	serChunk  chunk[keySeries]

	// Process ids are numbered as they are met; per-process series are
	// found by number (the last pid is remembered: samples come shard by
	// shard).
	pids    []string
	pidNums map[string]int32
	lastPID string
	lastNum int32

	// client is the prometheus_client release whose spelling of bucket
	// bounds (le) Families writes.
	client pyclient.Version

	// keep is how many processes each sample's breakdown keeps; zero
	// for none (see KeepProcesses).
	keep int
	// procMem holds the contributions kept (see KeepProcesses).
	procMem procMem

	// epoch numbers the reads (see Reset); met counts the keyInfos the
	// current one made or met.
	epoch uint32
	met   int

	// adds counts the calls of Add and AddShard; reuseFams is set by
	// ReuseFamilies.
	adds      uint64
	reuseFams bool

	// dirty is what Revalue marks; the rest indexes the samples of the
	// read of epoch placesEpoch by the number of their mark in
	// generation markGen (see indexPlaces).
	dirty       dirtySet
	placeAt     []int32
	placeShard  []int32
	placeKI     []*keyInfo
	placeVal    []float64
	placeTS     []float64
	placeOf     []int32
	shardAt     []int32
	placesEpoch uint32
	markGen     uint32
	shapeBuf    []int
}

// ReuseFamilies makes Families hand over again the samples it made of a
// family the last time, the same slice, when nothing was added since but
// by Revalue, which changed none of the family's series (serve: a read
// of running processes that wrote a few series makes those families
// only); a family some of whose values Revalue changed gets a copy of
// those samples with their values read again from where they come from
// (no grouping, sorting or labels made again). The caller must not
// change the samples Families returns. Not with KeepProcesses.
func (a *Aggregator) ReuseFamilies(on bool) { a.reuseFams = on }

// New returns an empty Aggregator whose families spell bucket bounds as
// the newest prometheus_client does (pyclient.Latest).
func New() *Aggregator { return NewFor(pyclient.Latest) }

// NewFor returns an empty Aggregator whose families spell bucket bounds
// (le="1e+10" or "1e+010") as prometheus_client release client does.
func NewFor(client pyclient.Version) *Aggregator {
	return &Aggregator{
		families: map[string]*family{},
		keys:     map[*store.Key]*keyInfo{},
		pidNums:  map[string]int32{},
		client:   client,
	}
}
