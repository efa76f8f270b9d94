package filestore

import (
	"encoding/binary"
	"math"
	"math/rand/v2"
	"runtime/debug"
	"slices"
	"sync"
	"time"

	"github.com/zeebo/xxh3"

	"github.com/promstore/promstore/internal/store"
)

// Incremental reads (KeepReads): a long-running reader (serve, top) reads
// the same directory again and again, and most shards of a piled-up store
// belong to processes that are gone and never change. Every shard is
// kept between reads: mapped read-only, with the hash of its used bytes
// and the entries parsed from exactly those bytes. The next read reuses
// the entries when
//
//   - the directory lists the same inode under the shard's name: while the
//     shard is mapped its inode stays allocated (even once the file is
//     removed), so no other file can have its number;
//   - its used size and the hash of its used bytes are the ones parsed.
//     For a shard whose pid runs no process (checked before the read) the
//     bytes are hashed through the mapping; this is what catches a shard
//     rewritten by a new process of a reused pid that started and ended
//     between two reads: on tmpfs an in-place update of a value changes
//     neither the file's size nor its mtime, and on any file system an
//     append within the file's capacity does not change its size. The
//     used bytes of a shard whose pid runs (or may run) are copied out of
//     the mapping first, and the copy is hashed, and parsed when its hash
//     differs: the bytes hashed are the bytes parsed, whatever the
//     process writes meanwhile. Either way no system call is made: a read
//     of a shard kept costs what reading its used bytes from memory costs.
//
// Anything else is read again: a kept shard whose bytes changed is parsed
// again (remapped if it grew past its mapping); a shard that cannot be
// mapped is read the normal way. Values are still handed over shard by
// shard in directory order, so what a reader aggregates is bit for bit
// what a full read gives.

// reuseState is what the reads of a Store with KeepReads keep.
type reuseState struct {
	seed  uint64
	alive func(pid string) store.Liveness
	// max bounds the kept mappings (see maxKeptMaps).
	max int

	// names holds the files of the last listing by name, parsed.
	names map[string]shardFile
	// spare is the file list of the last read, for the next listing
	// (the pipeline of a read is done with it when the read ends), and
	// stamp the directory's when it was listed (see listInodes); margin
	// is StampMargin (tests make it shorter).
	spare  []shardFile
	stamp  dirStamp
	margin time.Duration
	// files is how many files the current read lists; same tells
	// whether its listing equals the one before (every file at the
	// same place, of the same inode) and the read before was complete
	// (see ReadStats.Unchanged). completed is the last complete read.
	files     int
	same      bool
	completed uint32
	// at holds the shard each file of the current read was read
	// through, by its place in the listing (written by the reading
	// workers, each its own files); lastAt the last read's.
	at, lastAt []*kept

	mu     sync.Mutex
	shards map[string]*kept // by file name
	gen    uint32           // the current read
	// entries is how many entries the kept shards hold (see keyCount);
	// touched how many of them the current read read (see end).
	entries, touched int
	// cur counts what the current read did, last what the last
	// complete one did.
	cur, last ReadStats
}

// ReadStats tells what a read did with the shards kept between reads
// (KeepReads).
type ReadStats struct {
	// Kept is how many shards the read left kept for the next one.
	Kept int
	// Reused is how many shards it took from what was kept, unchanged.
	Reused int
	// Reparsed is how many kept shards it parsed again because their
	// bytes had changed; Revalued how many shards of running processes
	// it read new values of, their keys unchanged (see kept.revalue).
	Reparsed, Revalued int
	// Listed is set when the read listed the directory; it does not when
	// the directory's stamp shows no entry added, removed or renamed
	// since the listing before (see dirStamp): that listing is used.
	Listed bool
	// Unchanged is set when the read handed over exactly what the
	// complete read before it did: the same files in the same order,
	// every one of them kept and unchanged (the same entries).
	Unchanged bool
}

// ReadUnchanged reports whether the last complete read handed over
// exactly what the complete read before it did (see ReadStats.Unchanged):
// serve then serves what it made of the read before.
func (s *Store) ReadUnchanged() bool { return s.ReadStats().Unchanged }

// ReadStats returns what the last complete read did with the kept shards
// (zero without KeepReads).
func (s *Store) ReadStats() ReadStats {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.lastStats
}

// kept is one shard kept between reads.
type kept struct {
	ino  uint64
	data []byte // the file mapped read-only from offset 0
	size int64  // the file's size when mapped (len(data))
	// used, sum and entries are the used size, the hash of data[:used]
	// (XXH3, 128 bits, seeded per process: memory-bound where the
	// runtime's maphash took three times as long) and the entries parsed
	// from those bytes; layout their layout.
	used    int
	sum     xxh3.Uint128
	entries []entry
	layout  int
	// keys is the hash of data[:used] with the value slots of its entries
	// zeroed, for a shard last parsed as a running process's (the bytes
	// such a process changes in place are its values: see revalue).
	// slots are the offsets of those value slots in data[:used], set
	// with keys. sumOK tells whether sum is set, keysOK whether keys
	// and slots are.
	keys          xxh3.Uint128
	slots         []int32
	sumOK, keysOK bool
	// revalued is set when the last refresh read new values only.
	revalued bool
	// gen is the last read that read the shard through the mapping.
	gen uint32
	// counted is how many entries reuseState.entries counts for it.
	counted int
	// sh is what the read hands over, made once.
	sh shard
}

func newReuseState(alive func(string) store.Liveness, margin time.Duration) *reuseState {
	if alive == nil {
		alive = store.ProcessAlive
	}
	return &reuseState{seed: rand.Uint64(), margin: margin, alive: alive, max: maxKeptMaps(), shards: map[string]*kept{}}
}

// maxKeptSize bounds the size of a file that is kept: larger ones are
// read the normal way (a live process's shard of that size is the usual
// case anyway).
const maxKeptSize = 256 << 20

// KeepReads makes the store remember, from one read to the next, the
// shards of processes that are no longer running, so that later reads
// (Scan, ScanShards) re-parse only what may have changed: for serve and
// top, which read the same store again and again. What each read yields
// is unchanged. Calling it with false forgets everything kept. Where
// shards cannot be kept mapped (systems other than Linux) it does
// nothing.
func (s *Store) KeepReads(on bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case on && !keepSupported:
	case on && s.reuseTaken:
		s.reuseOff = false
	case on && s.reuse == nil:
		s.reuse = newReuseState(s.alive, s.margin)
	case !on:
		s.lastStats = ReadStats{}
		if s.reuse != nil {
			s.reuse.forget()
			s.reuse = nil
		}
		s.reuseOff = s.reuseTaken // the read that has it forgets it
	}
}

// takeReuse returns the kept shards for a read to use, nil when reads
// keep nothing or another read has them.
func (s *Store) takeReuse() *reuseState {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.reuse
	if r != nil {
		s.reuse, s.reuseTaken = nil, true
	}
	return r
}

// putReuse gives the kept shards back after a read.
func (s *Store) putReuse(r *reuseState) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.reuseTaken = false
	if s.reuseOff {
		s.reuseOff = false
		r.forget()
		return
	}
	s.reuse = r
}

// forget unmaps every kept shard.
func (r *reuseState) forget() {
	r.mu.Lock()
	defer r.mu.Unlock()
	for name, k := range r.shards {
		r.drop(name, k)
	}
}

// drop unmaps k and takes it out of the kept shards, under name;
// r.mu is held.
func (r *reuseState) drop(name string, k *kept) {
	k.release()
	r.entries -= k.counted
	k.counted = 0
	if k.gen == r.gen {
		r.touched--
	}
	delete(r.shards, name)
}

func (k *kept) release() {
	if k.data != nil {
		unmapFile(k.data)
		k.data = nil
	}
	k.entries, k.slots = nil, nil
}

// takeFiles returns the last read's file list for the next listing to
// fill (nil for none) and the directory's stamp when it was listed.
func (r *reuseState) takeFiles() ([]shardFile, dirStamp) {
	f, st := r.spare, r.stamp
	r.spare, r.stamp = nil, dirStamp{}
	return f, st
}

// begin starts a read of files: it marks the files to read through kept
// mappings and checks the liveness of every pid (once each, before any
// shard is read).
func (r *reuseState) begin(files []shardFile, stamp dirStamp) {
	complete := r.gen > 0 && r.completed == r.gen
	r.same = complete && r.files == len(files)
	r.lastAt, r.at = r.at, r.lastAt
	if !complete {
		r.lastAt = r.lastAt[:0]
	}
	if cap(r.at) < len(files) {
		r.at = make([]*kept, len(files))
	}
	r.at = r.at[:len(files)]
	clear(r.at)
	for i := range files {
		f := &files[i]
		if !f.same {
			r.same = false
		} else if i < len(r.lastAt) {
			f.k = r.lastAt[i]
		}
	}
	r.files = len(files)
	r.spare, r.stamp = files, stamp
	r.gen++
	r.touched = 0
	r.cur = ReadStats{Listed: !stamp.reused}
	if len(r.names) > 2*len(files)+1024 {
		r.names = nil // most names gone
	}
	if r.names == nil {
		r.names = make(map[string]shardFile, len(files))
	}
	for _, f := range files {
		if f.same {
			continue // listed before
		}
		if _, ok := r.names[f.name]; !ok {
			r.names[f.name] = f
		}
	}
	dead := map[string]bool{}
	for i := range files {
		f := &files[i]
		if f.nameErr != nil || !f.regular || f.ino == 0 {
			continue
		}
		d, ok := dead[f.id.PID]
		if !ok {
			d = r.alive(f.id.PID) == store.AliveNo
			dead[f.id.PID] = d
		}
		f.keep, f.dead = true, d
	}
}

// end drops the kept shards that the read just completed did not read
// through their mapping: removed files, and files that could not be.
func (r *reuseState) end() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.touched < len(r.shards) {
		// Some kept shard was not read: its file is gone.
		for name, k := range r.shards {
			if k.gen != r.gen {
				r.drop(name, k)
			}
		}
	}
	r.cur.Kept = len(r.shards)
	r.cur.Unchanged = r.same && r.cur.Reused == r.files
	r.completed = r.gen
	r.last = r.cur
}

// keyCount is the number of entries of the kept shards (see
// keyCache.keys).
func (r *reuseState) keyCount() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.entries
}

// eachKey calls fn with every key of the kept shards.
func (r *reuseState) eachKey(fn func(*store.Key)) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, k := range r.shards {
		for i := range k.entries {
			fn(k.entries[i].Key)
		}
	}
}

// touchKept loads the first byte of each kept mapping of files (those
// the last read kept at their places), one load not waiting on another,
// so that the cache and TLB misses of the shards' first pages overlap,
// ahead of reuseState.read, which would meet them one at a time (26,377
// mappings a read on a piled-up store). A mapping whose file shrank
// under it ends the loads (reuseState.read says why).
func touchKept(files []shardFile) (sum byte) {
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer func() {
		if r := recover(); r != nil {
			if _, fault := r.(interface{ Addr() uintptr }); !fault {
				panic(r)
			}
		}
	}()
	for i := range files {
		if k := files[i].k; k != nil && len(k.data) > 0 {
			sum += k.data[0]
		}
	}
	return sum
}

// read reads file f through its kept mapping (made now if there is
// none): the kept entries when its bytes are unchanged, else the entries
// parsed again. ok is false when it could not (the file
// is then read the normal way, which words any problem).
func (r *reuseState) read(ps *parser, f shardFile) (sh *shard, ok bool) {
	// The shard the last read kept at the file's place, under its name
	// and inode, is the one kept under its name (a kept shard leaves
	// r.shards only unmapped).
	k, known := f.k, true
	if k == nil || k.data == nil || k.ino != f.ino {
		known = false
		r.mu.Lock()
		k = r.shards[f.name]
		if k != nil && k.ino != f.ino {
			// Another file under the name: the old one is gone.
			r.drop(f.name, k)
			k = nil
		}
		n := len(r.shards)
		r.mu.Unlock()
		if k == nil {
			if n >= r.max {
				return nil, false
			}
			data, size, ino, err := mapKept(f.path)
			if err != nil {
				return nil, false
			}
			if ino != f.ino {
				// Replaced since the listing: the next read keeps it.
				unmapFile(data)
				return nil, false
			}
			k = &kept{ino: ino, data: data, size: size}
		}
	}
	fresh := k.entries == nil
	changed, ok := k.refresh(ps, r.seed, !f.dead)
	if !ok {
		r.mu.Lock()
		if r.shards[f.name] == k {
			r.drop(f.name, k)
		} else {
			k.release()
		}
		r.mu.Unlock()
		return nil, false
	}
	r.at[f.idx] = k
	r.mu.Lock()
	if k.gen != r.gen {
		r.touched++
	}
	k.gen = r.gen
	if !known {
		r.shards[f.name] = k
	}
	r.entries += len(k.entries) - k.counted
	k.counted = len(k.entries)
	switch {
	case !changed:
		r.cur.Reused++
	case k.revalued:
		r.cur.Revalued++
	case !fresh:
		r.cur.Reparsed++
	}
	r.mu.Unlock()
	k.sh = shard{file: f, entries: k.entries, layout: k.layout, used: k.used, kept: true}
	return &k.sh, true
}

// refresh makes k's entries those of its current bytes: unchanged when
// the used size and the hash of the used bytes are the kept ones, else
// parsed again from a copy of the used bytes (the bytes hashed are the
// bytes parsed, whatever a writer does meanwhile). The bytes of a shard
// whose process may run (live) are copied before they are hashed. It
// returns false when
// the mapping cannot be read (the file shrank under it), the used size
// lies past the mapping (the file grew: it is mapped again next time) or
// the bytes do not parse; changed tells whether the entries were parsed.
func (k *kept) refresh(ps *parser, seed uint64, live bool) (changed, ok bool) {
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer func() {
		if r := recover(); r != nil {
			if _, fault := r.(interface{ Addr() uintptr }); !fault {
				panic(r)
			}
			changed, ok = false, false
		}
	}()
	if len(k.data) < headerSize {
		return false, false
	}
	used := int(int32(binary.LittleEndian.Uint32(k.data)))
	if used == 0 {
		used = headerSize // see readUsed
	}
	if used < headerSize || used > len(k.data) {
		return false, false
	}
	k.revalued = false
	if !live && k.entries != nil && k.sumOK && used == k.used && xxh3.Hash128Seed(k.data[:used], seed) == k.sum {
		return false, true
	}
	ps.copyBuf = append(ps.copyBuf[:0], k.data[:used]...)
	b := ps.copyBuf
	if live && k.entries != nil && used == k.used {
		if k.keysOK {
			if entries, same, ok := k.revalue(ps, b, seed); ok {
				if same {
					return false, true
				}
				k.entries, k.revalued = entries, true
				return true, true
			}
		} else if k.sumOK && xxh3.Hash128Seed(b, seed) == k.sum {
			// No entries, or too big for revalue: the copy's hash.
			return false, true
		}
	}
	// Parsed before: its own keys in its own order are the likely ones
	// (a running process appends new keys), far more than the last
	// shard's of its kind.
	var out []entry
	if k.entries != nil {
		ps.ownGuess = appendGuesses(ps.ownGuess[:0], k.entries)
		defer func(g []guess) { ps.guess = g }(ps.guess)
		ps.guess = ps.ownGuess
		// A new slice, never the old entries' room: a reader may hold
		// the entries a read handed over and take the same slice for
		// the same entries (serve's lastRead does).
		out = make([]entry, 0, len(k.entries)+len(k.entries)/8+16)
	}
	entries, layout, perr := ps.parse(b, k.size, out)
	if perr != nil {
		return false, false
	}
	if entries == nil {
		entries = []entry{}
	}
	k.used, k.entries, k.layout = used, entries, layout
	k.sumOK, k.keysOK = false, false
	if live && len(entries) > 0 && len(b) < unambiguousBelow {
		// For the next read's revalue: b is scratch now (the entries
		// hold their values, the key cache the keys' texts).
		if slots, ok := valueSlots(b, layout, k.slots[:0]); ok && len(slots) == len(entries) {
			for _, at := range slots {
				clear(b[at : int(at)+layout])
			}
			k.keys, k.slots, k.keysOK = xxh3.Hash128Seed(b, seed), slots, true
		}
	}
	if !k.keysOK {
		// A shard of a process not running, or one revalue cannot
		// read (no entries, 16 MiB or more): its hash, b untouched.
		k.sum, k.sumOK = xxh3.Hash128Seed(b, seed), true
	}
	return true, true
}

// revalue reads the values of b, the used bytes of a running process's
// shard copied out of its mapping, when only its values may have changed
// since its entries were parsed: a running prometheus_client writes a
// value in place and appends a new entry past the used size, and never
// rewrites a key. That is so when b, of the used size parsed, hashes to
// k.keys with the value slots of the parse (k.slots) zeroed: the bytes
// outside those slots, key lengths included, are then those parsed (b
// need not be walked again: the walk reads only those bytes), and so are
// the keys, in the same order, and the layout (below unambiguousBelow no
// value decides it: see parser.parse). It returns the
// entries with b's values, new unless every value is the kept one bit for
// bit (same), or ok false when b may hold other keys (b is then as it
// was, to be parsed).
func (k *kept) revalue(ps *parser, b []byte, seed uint64) (entries []entry, same, ok bool) {
	stride := k.layout
	slots := k.slots
	if len(k.entries) == 0 || len(slots) != len(k.entries) || len(b) != k.used || len(b) >= unambiguousBelow {
		return nil, false, false
	}
	// The slots' bytes are kept aside while they are zeroed and hashed,
	// and put back when the hash differs.
	saved := ps.slotBytes[:0]
	for _, at := range slots {
		saved = append(saved, b[at:int(at)+stride]...)
		clear(b[at : int(at)+stride])
	}
	ps.slotBytes = saved
	if xxh3.Hash128Seed(b, seed) != k.keys {
		for i, at := range slots {
			copy(b[at:int(at)+stride], saved[i*stride:(i+1)*stride])
		}
		return nil, false, false
	}
	same = true
	for i := range k.entries {
		var e entry
		readValue(&e, saved[i*stride:], stride)
		old := &k.entries[i]
		if math.Float64bits(e.Value) != math.Float64bits(old.Value) || math.Float64bits(e.Timestamp) != math.Float64bits(old.Timestamp) {
			same = false
			break
		}
	}
	if same {
		return k.entries, true, true
	}
	// A new slice (see refresh).
	entries = slices.Clone(k.entries)
	for i := range entries {
		readValue(&entries[i], saved[i*stride:], stride)
	}
	return entries, false, true
}

// valueSlots appends to slots the offsets in b, the used bytes of a shard,
// of the value slots of its entries in layout stride (LayoutLegacy or
// LayoutTimestamp); false when b does not walk to its end that way.
func valueSlots(b []byte, stride int, slots []int32) ([]int32, bool) {
	if stride != LayoutLegacy && stride != LayoutTimestamp {
		return slots, false
	}
	for pos := headerSize; pos < len(b); {
		if len(b)-pos < 4 {
			return slots, false
		}
		n := int(int32(binary.LittleEndian.Uint32(b[pos:])))
		if n <= 0 || n > len(b)-pos-4 {
			return slots, false
		}
		at := pos + 4 + n + padding(n)
		if at+stride > len(b) {
			return slots, false
		}
		slots = append(slots, int32(at))
		pos = at + stride
	}
	return slots, true
}
