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
// hold each key's hash beside its keyRef (text, key and ID). Keys are
// looked up in batches, known ones (resolve) and new ones (lookup) alike:
// first every text's hash, then every text's slot, then every candidate's
// text, so that the cache misses of a batch overlap instead of following
// one another. Lookups share a read lock, taken once a batch; new keys are
// parsed outside any lock and added under the write lock.
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
	// refs holds the keyRefs, in blocks that never move.
	refs [][]keyRef
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

// findHash returns the ref of the first key of hash h in the table, nil
// if none: the text's key when the text is in the table, but for another
// text of the same hash.
func (t *keySet) findHash(h uint64) *keyRef {
	mask := uint64(len(t.slots) - 1)
	for i := h & mask; ; i = (i + 1) & mask {
		s := &t.slots[i]
		if s.ref == nil || s.hash == h {
			return s.ref
		}
	}
}

// met marks r as met by the scan of generation gen.
func (t *keySet) met(r *keyRef, gen uint32) {
	if g := r.gen.Load(); g != gen && r.gen.CompareAndSwap(g, gen) {
		t.live.Add(1)
	}
}

// missBatch holds entries of a shard whose key was not their guess (see
// walk), looked up together by keyCache.resolve: a walk that looked each
// one up on its own would wait for the table's slot, then the key's ref,
// then its text, one cache miss after the other, entry after entry (a
// third of a read of a store whose processes each write their own series
// in their own order). Together, the misses of a batch overlap.
type missBatch struct {
	texts  [][]byte // the entries' key bytes
	at     []int32  // their indexes in the walk's out
	off    []int32  // where their length fields lie in the walk's bytes
	hashes []uint64
	refs   []*keyRef
	// touched is what resolve read of the candidates' texts, kept so
	// that those reads are not optimised away.
	touched int
}

// missBatchSize is how many entries a missBatch holds: enough to overlap
// many cache misses, few enough that the batch stays in cache.
const missBatchSize = 64

// add puts the key bytes kb of out[j], whose length field is at offset
// off, in the batch and reports whether the batch is full.
func (b *missBatch) add(kb []byte, j, off int) bool {
	b.texts = append(b.texts, kb)
	b.at = append(b.at, int32(j))
	b.off = append(b.off, int32(off))
	return len(b.texts) == missBatchSize
}

// reset empties the batch, keeping no bytes of a shard.
func (b *missBatch) reset() {
	clear(b.texts)
	b.texts, b.at, b.off = b.texts[:0], b.at[:0], b.off[:0]
}

// resolve fills in the keys of the batch's entries of out that this store
// met before, one lookup for the whole batch: first every text's hash,
// then every hash's slot, then every candidate's text, each step's
// loads independent of one another. An entry of a new key keeps a nil
// Key: the caller looks it up later with the other new ones
// (lookupPending).
func (c *keyCache) resolve(b *missBatch, out []entry) {
	n := len(b.texts)
	if n == 0 {
		return
	}
	if cap(b.hashes) < n {
		b.hashes, b.refs = make([]uint64, missBatchSize), make([]*keyRef, missBatchSize)
	}
	hashes, refs := b.hashes[:n], b.refs[:n]
	for i, t := range b.texts {
		hashes[i] = store.HashBytes(t)
	}
	c.mu.RLock()
	t := c.tab
	for i, h := range hashes {
		refs[i] = t.findHash(h)
	}
	touch := 0
	for _, r := range refs {
		if r != nil {
			touch += len(r.text)
		}
	}
	for _, r := range refs {
		if r != nil {
			// Every cache line of the text.
			for o := 0; o < len(r.text); o += 64 {
				touch += int(r.text[o])
			}
		}
	}
	for i, kb := range b.texts {
		r := refs[i]
		if r == nil {
			continue
		}
		if r.text != string(kb) {
			// Another text of the same hash: the whole probe.
			if r = t.find(hashes[i], kb, hashes[i]); r == nil {
				continue
			}
		}
		t.met(r, c.gen)
		e := &out[b.at[i]]
		e.Key, e.KeyID = r.key, r.id
	}
	c.mu.RUnlock()
	clear(refs)
	b.touched = touch
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
