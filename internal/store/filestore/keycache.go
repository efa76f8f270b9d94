package filestore

import (
	"context"
	"sync"
	"sync/atomic"

	"github.com/promstore/promstore/internal/store"
)

// keyCache maps key text to its parsed key so that every shard holding the
// same text shares one *store.Key (the aggregator caches per pointer) and
// each text is parsed once. It is an open-addressing table of slots that
// hold each key's hash beside its keyRef (text, key and ID). New keys are
// looked up in batches: first every text's hash, then every text's slot,
// then every candidate's text, so that the cache misses of a batch overlap
// instead of following one another. Lookups share a read lock; new keys
// are parsed outside any lock and added under the write lock.
//
// The table lives from scan to scan (see keySet); keys that the latest
// complete scan did not meet are dropped once they are most of it.
type keyCache struct {
	mu  sync.RWMutex
	tab *keySet
	gen uint32 // this scan's generation
	// ids numbers new keys (store.Key.ID); shared by the scans of a Store.
	ids *atomic.Uint32
	// ctx is the scan's context: a parse checks it every checkEvery
	// entries and ends when it is done. Nil for none.
	ctx context.Context
	// next holds, per key ID, the ref of the key that followed it in a
	// shard read in this scan (see known).
	next refTable
}

// checkEvery is how many entries a walk reads between two looks at its
// context: a few milliseconds' work at most, and no cost per entry.
const checkEvery = 1 << 12

// canceled returns the scan's context's error, checked now.
func (c *keyCache) canceled() error {
	if c.ctx == nil {
		return nil
	}
	return c.ctx.Err()
}

// keySet is the key table of a cache, kept by the Store for the next
// scan.
type keySet struct {
	slots []keySlot // a power of two of them; a nil ref is a free slot
	n     int       // slots in use
	gen   uint32    // the generation of the last scan that used it
	live  atomic.Int64
	// refs holds the keyRefs, in blocks that never move; byID finds
	// them by key ID.
	refs [][]keyRef
	byID refTable
}

// keySlot is one slot of the table: a key's hash and its keyRef.
type keySlot struct {
	hash uint64
	ref  *keyRef
}

// keyRef is one key of the table: its text, hash and ID beside it, in
// 40 bytes that lie with the others' rather than wherever the key does,
// so that naming an entry by its ref costs one load that mostly hits a
// cache (the keys themselves, with their labels, would not fit one) and
// then the text's. gen, the last scan that met the key, is read and
// written atomically (lookups under the read lock set it).
type keyRef struct {
	text string
	key  *store.Key
	hash uint64
	id   uint32
	gen  atomic.Uint32
}

// refBlock is how many keyRefs a block of keySet.refs holds.
const refBlock = 1 << 10

// add makes the ref of a key absent from the table and puts it in.
func (t *keySet) add(hash uint64, key *store.Key, gen uint32) *keyRef {
	if len(t.refs) == 0 || len(t.refs[len(t.refs)-1]) == refBlock {
		t.refs = append(t.refs, make([]keyRef, 0, refBlock))
	}
	b := &t.refs[len(t.refs)-1]
	*b = append(*b, keyRef{text: key.Text, key: key, hash: hash, id: key.ID})
	r := &(*b)[len(*b)-1]
	r.gen.Store(gen)
	t.put(keySlot{hash: hash, ref: r})
	t.byID.set(r.id, r)
	return r
}

const minSlots = 1 << 10

// newKeyCache returns a cache over old (nil for a new table). ids numbers
// new keys; nil for a cache of its own, whose keys are numbered from 1 for
// it alone (a parse that is not part of a Store's scan).
func newKeyCache(old *keySet, ids *atomic.Uint32) *keyCache {
	t := old
	if t == nil {
		t = &keySet{slots: make([]keySlot, minSlots)}
	}
	if ids == nil {
		ids = new(atomic.Uint32)
	}
	t.gen++
	t.live.Store(0)
	return &keyCache{tab: t, gen: t.gen, ids: ids}
}

// keys returns the table for the next scan. After a complete scan, when
// most of its keys are ones that scan did not meet (series that are gone),
// only the met ones are kept, and those of the shards kept between reads
// (reuse, nil for none), whose keys a scan does not look up.
func (c *keyCache) keys(complete bool, reuse *reuseState) *keySet {
	t := c.tab
	live := int(t.live.Load())
	held := 0
	if reuse != nil {
		held = reuse.keyCount()
	}
	if !complete || t.n <= 2*(live+held)+minSlots {
		return t
	}
	nt := &keySet{slots: make([]keySlot, slotsFor(live+held)), gen: t.gen}
	for _, b := range t.refs {
		for i := range b {
			if r := &b[i]; r.gen.Load() == t.gen {
				nt.add(r.hash, r.key, t.gen)
			}
		}
	}
	if reuse != nil {
		reuse.eachKey(func(k *store.Key) {
			h := store.HashText(k.Text)
			if nt.find(h, []byte(k.Text), h) == nil {
				nt.add(h, k, t.gen)
			}
		})
	}
	return nt
}

// slotsFor is the table size for n keys: at most half full.
func slotsFor(n int) int {
	size := minSlots
	for size < 2*n+2 {
		size *= 2
	}
	return size
}

// put adds slot s, known to be absent, growing the table as needed: at
// most three quarters full, so that a probe stays short while the table
// costs 21 to 43 bytes per key, beside its 40-byte ref.
func (t *keySet) put(s keySlot) {
	if 4*(t.n+1) > 3*len(t.slots) {
		old := t.slots
		t.slots = make([]keySlot, 2*len(old))
		t.n = 0
		for i := range old {
			if old[i].ref != nil {
				t.put(old[i])
			}
		}
	}
	mask := uint64(len(t.slots) - 1)
	i := s.hash & mask
	for t.slots[i].ref != nil {
		i = (i + 1) & mask
	}
	t.slots[i] = s
	t.n++
}

// find returns the ref of text b of hash h, starting the probe at slot
// i; nil if absent.
func (t *keySet) find(h uint64, b []byte, i uint64) *keyRef {
	mask := uint64(len(t.slots) - 1)
	for {
		s := &t.slots[i&mask]
		if s.ref == nil {
			return nil
		}
		if s.hash == h && s.ref.text == string(b) {
			return s.ref
		}
		i++
	}
}

// met marks r as met by the scan of generation gen.
func (t *keySet) met(r *keyRef, gen uint32) {
	if g := r.gen.Load(); g != gen && r.gen.CompareAndSwap(g, gen) {
		t.live.Add(1)
	}
}

// known fills in e's key when kb is a key this store met before: first
// the key that followed prev (the previous entry's key ID, 0 when not
// known) the last time prev was looked up, since a process creates the
// samples of one series together and always in the same order (a
// histogram's sum and every bucket; a summary's count and sum); else by
// the text's hash, one lookup. It reports false for a text the cache does
// not hold: a new key, which the caller looks up later with the other new
// ones (lookupPending), then records with followed.
//
// A shard whose processes each write their own series in their own order
// misses the positional guess (see walk) on nearly every entry; this finds
// most of them with one comparison.
func (c *keyCache) known(e *entry, prev uint32, kb []byte) bool {
	if r := c.next.get(prev); r != nil && r.text == string(kb) {
		e.Key, e.KeyID = r.key, r.id
		return true
	}
	h := store.HashBytes(kb)
	c.mu.RLock()
	t := c.tab
	r := t.find(h, kb, h)
	if r != nil {
		t.met(r, c.gen)
	}
	c.mu.RUnlock()
	if r == nil {
		return false
	}
	e.Key, e.KeyID = r.key, r.id
	c.next.set(prev, r)
	return true
}

// followNew records the keys next to the new keys of out[start:] (the
// entries at pending, just looked up): which key followed each, and which
// each followed.
func (c *keyCache) followNew(out []entry, start int, pending []int32) {
	refs := &c.tab.byID // written under c.mu, read without it
	for _, j := range pending {
		if int(j) > start {
			c.next.set(out[j-1].KeyID, refs.get(out[j].KeyID))
		}
		if int(j)+1 < len(out) {
			c.next.set(out[j].KeyID, refs.get(out[j+1].KeyID))
		}
	}
}

// refTable maps a key ID to a keyRef: pages of refPage IDs, made when
// first written; reads take no lock. A keySet's byID holds every ref of
// the set; a keyCache's next, made for each scan, the ref of the key that
// followed each key in a shard of the scan (see keyCache.known), so that
// every key it holds was looked up in the scan (which marks it met: see
// keyCache.keys) and none outlives its table.
type refTable struct {
	mu    sync.Mutex // held while adding a page
	pages atomic.Pointer[[]*refPage]
}

const refPageBits = 10

type refPage [1 << refPageBits]atomic.Pointer[keyRef]

// get returns the ref recorded for ID id, nil for none. ID 0 (not a key's
// ID) never has one.
func (t *refTable) get(id uint32) *keyRef {
	pp := t.pages.Load()
	if pp == nil || id == 0 {
		return nil
	}
	i := int(id >> refPageBits)
	if i >= len(*pp) || (*pp)[i] == nil {
		return nil
	}
	return (*pp)[i][id&(1<<refPageBits-1)].Load()
}

// set records r for ID id; r nil or ID 0 records nothing.
func (t *refTable) set(id uint32, r *keyRef) {
	if id == 0 || r == nil {
		return
	}
	i := int(id >> refPageBits)
	pp := t.pages.Load()
	if pp == nil || i >= len(*pp) || (*pp)[i] == nil {
		pp = t.addPage(i)
	}
	if slot := &(*pp)[i][id&(1<<refPageBits-1)]; slot.Load() != r {
		slot.Store(r)
	}
}

// addPage makes page i and returns the pages that hold it: always a new
// list (readers take no lock, so the one they may hold is never written).
func (t *refTable) addPage(i int) *[]*refPage {
	t.mu.Lock()
	defer t.mu.Unlock()
	pp := t.pages.Load()
	if pp != nil && i < len(*pp) && (*pp)[i] != nil {
		return pp
	}
	var old []*refPage
	if pp != nil {
		old = *pp
	}
	pages := make([]*refPage, max(len(old), i+1))
	copy(pages, old)
	pages[i] = new(refPage)
	t.pages.Store(&pages)
	return &pages
}

// batchSize is how many texts one lookup batch holds: enough to overlap
// their cache misses, few enough that the batch stays in cache.
const batchSize = 256

// lookupBatch is the texts of one lookup and, after it, their keys.
type lookupBatch struct {
	texts  [][]byte
	keys   []*store.Key
	hashes []uint64
	slots  []*keySlot
	found  []bool
	// arena and keyArena hold the texts and keys of new keys.
	arena    textArena
	keyArena store.KeyArena
}

// zeroed returns s with length n, all zero, reusing its memory.
func zeroed[T any](s []T, n int) []T {
	if cap(s) < n {
		return make([]T, n, max(n, batchSize))
	}
	s = s[:n]
	clear(s)
	return s
}

// lookup sets b.keys to the parsed keys of b.texts. Texts not met
// before are parsed (in order) and added; at the first that does not
// parse it returns its index and error, the keys before it set.
func (c *keyCache) lookup(b *lookupBatch) (int, error) {
	n := len(b.texts)
	b.keys, b.hashes, b.slots, b.found = zeroed(b.keys, n), zeroed(b.hashes, n), zeroed(b.slots, n), zeroed(b.found, n)
	defer clear(b.slots) // no pointers into a table kept past the call
	for i, t := range b.texts {
		b.hashes[i] = store.HashBytes(t)
	}
	missing, missBytes := 0, 0
	c.mu.RLock()
	t := c.tab
	mask := uint64(len(t.slots) - 1)
	// Every text's first slot, each load independent of the others.
	for i, h := range b.hashes {
		b.slots[i] = &t.slots[h&mask]
	}
	for i, s := range b.slots {
		h := b.hashes[i]
		r := s.ref
		if r != nil && (s.hash != h || r.text != string(b.texts[i])) {
			r = t.find(h, b.texts[i], (h&mask)+1)
		}
		if r == nil {
			missing++
			missBytes += len(b.texts[i])
			continue
		}
		b.keys[i], b.found[i] = r.key, true
		t.met(r, c.gen)
	}
	c.mu.RUnlock()
	if missing == 0 {
		return -1, nil
	}
	// New texts: copied and parsed outside the lock, then added.
	b.arena.left = missBytes
	bad, badErr := -1, error(nil)
	for i, k := range b.keys {
		if k != nil {
			continue
		}
		nk, err := b.keyArena.Parse(b.arena.text(b.texts[i]))
		if err != nil {
			bad, badErr = i, err
			break
		}
		b.keys[i] = nk
	}
	c.mu.Lock()
	t = c.tab
	for i := range b.keys {
		if bad >= 0 && i >= bad {
			break
		}
		if b.found[i] {
			continue
		}
		h := b.hashes[i]
		if r := t.find(h, b.texts[i], h); r != nil {
			b.keys[i] = r.key // added meanwhile by another goroutine
			continue
		}
		k := b.keys[i]
		k.ID = c.ids.Add(1)
		t.add(h, k, c.gen)
		t.live.Add(1)
	}
	c.mu.Unlock()
	if bad >= 0 {
		return bad, badErr
	}
	return -1, nil
}
