package filestore

import (
	"encoding/binary"
	"fmt"
	"math"
	"runtime"
	"sync"
	"unsafe"

	"github.com/promstore/promstore/internal/store"
)

// headerSize is the used counter plus its padding at the start of a shard.
const headerSize = 8

// Layouts: bytes per value of an entry.
const (
	// LayoutLegacy is the 8-byte value layout of prometheus_client < 0.18.
	LayoutLegacy = 8
	// LayoutTimestamp is the 16-byte value+timestamp layout of
	// prometheus_client >= 0.18.
	LayoutTimestamp = 16
)

// entry is one parsed sample of a shard.
type entry = store.Entry

// textArena hands out copies of key texts cut from shared blocks: the
// texts of keys met one after the other then lie side by side, as a walk
// compares a shard's entries with them (see guess), and a first shard's
// thousands of new keys cost a few allocations. A block lives as long as
// one of its texts.
type textArena struct {
	buf []byte
	// left is how many bytes of key text may still come, so that a block
	// is no larger than needed.
	left int
}

// textBlock is the size of a block of a textArena.
const textBlock = 64 << 10

func (a *textArena) text(b []byte) string {
	if cap(a.buf)-len(a.buf) < len(b) {
		if len(b) > textBlock/4 {
			return string(b)
		}
		a.buf = make([]byte, 0, max(len(b), min(textBlock, a.left)))
	}
	start := len(a.buf)
	a.buf = append(a.buf, b...)
	return unsafe.String(unsafe.SliceData(a.buf[start:]), len(b))
}

// parseError is a problem found in a shard's bytes; offset is -1 when it
// is not about one entry.
type parseError struct {
	offset int64
	reason string
}

func (e *parseError) Error() string {
	if e.offset >= 0 {
		return fmt.Sprintf("entry at offset %d: %s", e.offset, e.reason)
	}
	return e.reason
}

// padding returns the number of space bytes Python puts after a key of n
// bytes so that the value is 8-byte aligned: 1..8, never 0.
func padding(n int) int { return 8 - (n+4)%8 }

// readUsed validates the header of a shard of size bytes whose first bytes
// are data and returns the used size. data must hold at least
// min(size, used) bytes when used <= size. A used size of 0 in a file of
// at least 8 bytes is the moment between Python creating a file and
// writing its header: Python reads it as empty, and so does this.
func readUsed(data []byte, size int64) (int, *parseError) {
	switch {
	case size == 0:
		return 0, &parseError{-1, "empty file (0 bytes), not even a header"}
	case size < headerSize:
		return 0, &parseError{-1, fmt.Sprintf("file of %d bytes is shorter than the 8-byte header", size)}
	case len(data) < headerSize:
		return 0, &parseError{-1, fmt.Sprintf("only %d bytes could be read, shorter than the 8-byte header", len(data))}
	}
	used := int64(int32(binary.LittleEndian.Uint32(data)))
	switch {
	case used == 0:
		return headerSize, nil
	case used < headerSize:
		return 0, &parseError{-1, fmt.Sprintf("used size %d is less than the 8-byte header", used)}
	case used > size:
		return 0, &parseError{-1, fmt.Sprintf("used size %d exceeds file size %d (truncated file)", used, size)}
	case used > int64(len(data)):
		return 0, &parseError{-1, fmt.Sprintf("used size %d but only %d bytes could be read", used, len(data))}
	}
	return int(used), nil
}

// walk reads the entries of data[8:used] with values of stride bytes,
// appending them to out. It fails at the first entry that is out of
// bounds or whose key does not parse; a successful walk ends exactly at
// used by construction.
//
// guess[i] is the likely key of the i-th entry: the key at the same place
// in the previous shard of the same kind, since every process of a program
// tends to create its series in the same order. A right guess costs one
// comparison instead of a hash lookup. The entries of wrong guesses are
// looked up in the cache in batches (see missBatch); new keys are looked
// up (and parsed) after the walk, on every core when there are many: the
// first shard of each kind brings all of its keys.
//
// When the walk succeeds, *hits (if not nil) is how many entries were
// their guess.
func walk(data []byte, used, stride int, keys *keyCache, guess []guess, miss *missBatch, hits *int, out []entry) ([]entry, *parseError) {
	start := len(out)
	var pending []int32 // indexes in out of the entries to look up
	guessHits := 0
	miss.reset()
	defer miss.reset()
	// flush looks the batch of keys not guessed up; an entry of a new one
	// is pending, its KeyID holding its offset.
	flush := func() {
		keys.resolve(miss, out)
		for x, j := range miss.at {
			if out[j].Key == nil {
				out[j].KeyID = uint32(miss.off[x])
				pending = append(pending, j)
			}
		}
		miss.reset()
	}
	// fail ends a walk that failed at perr: the keys of the entries
	// before it are looked up, since one that does not parse comes first.
	fail := func(perr *parseError) ([]entry, *parseError) {
		flush()
		return lookupPending(data, keys, out, start, pending, perr)
	}
	pos := headerSize
	for i := 0; pos < used; i++ {
		if used-pos < 4 {
			return fail(&parseError{int64(pos), fmt.Sprintf("%d stray bytes before used size %d, too few for a key length", used-pos, used)})
		}
		if i%checkEvery == checkEvery-1 {
			if err := keys.canceled(); err != nil {
				return out[:start], &parseError{int64(pos), "read stopped: " + err.Error()}
			}
		}
		n := int(int32(binary.LittleEndian.Uint32(data[pos:])))
		switch {
		case n < 0:
			return fail(&parseError{int64(pos), fmt.Sprintf("negative key length %d", n)})
		case n == 0:
			// Python never writes an empty key; zeros here are a region
			// never written (a zero-filled or sparse file whose used size
			// covers it). Walking on would make an entry of every 16 or
			// 24 zero bytes.
			return fail(&parseError{int64(pos), fmt.Sprintf("key length 0 (zero bytes where an entry should be, %d bytes before used size %d)", used-pos, used)})
		case n > used-pos-4:
			return fail(&parseError{int64(pos), fmt.Sprintf("key length %d exceeds used size %d", n, used)})
		}
		kb := data[pos+4 : pos+4+n]
		var e entry
		guessed := takeGuess(&e, guess, i, kb)
		if guessed {
			guessHits++
		}
		valuePos := pos + 4 + n + padding(n)
		if valuePos+stride <= used {
			readValue(&e, data[valuePos:], stride)
		}
		out = append(out, e)
		if !guessed && miss.add(kb, len(out)-1, pos) {
			flush()
		}
		if valuePos+stride > used {
			// The entry's key is checked before its value, as one at a
			// time would.
			return fail(&parseError{int64(pos), fmt.Sprintf("%d-byte value at offset %d ends past used size %d", stride, valuePos, used)})
		}
		pos = valuePos + stride
	}
	flush()
	if hits != nil {
		*hits = guessHits
	}
	return lookupPending(data, keys, out, start, pending, nil)
}

// guess is a likely key of an entry (see walk). Its text and ID sit
// beside the key so that a walk reads its guesses in order instead of
// following a pointer per entry to wherever the key lives. The texts
// themselves mostly lie end to end (see textArena), so that reading them
// in order, the memory is fetched ahead.
type guess struct {
	text string
	key  *store.Key
	id   uint32
}

// takeGuess fills in e's key from guess[i] when that is the key kb, the
// i-th entry's key bytes.
func takeGuess(e *entry, guess []guess, i int, kb []byte) bool {
	if i < len(guess) && guess[i].text == string(kb) {
		e.Key, e.KeyID = guess[i].key, guess[i].id
		return true
	}
	return false
}

// readValue sets e's value, and its timestamp in the 16-byte layout, from
// the start of b.
func readValue(e *entry, b []byte, stride int) {
	e.Value = math.Float64frombits(binary.LittleEndian.Uint64(b))
	if stride == LayoutTimestamp {
		e.Timestamp = math.Float64frombits(binary.LittleEndian.Uint64(b[8:]))
	}
}

// guessBook holds, per kind, the keys of the last shard of that kind read
// by any parse worker, in entry order: the guesses for the next one. A
// list is never changed once in the book, so workers share it unlocked.
// It also holds how many entries the last shard of each kind held, by
// which the buffers for the next ones are sized.
type guessBook struct {
	mu    sync.Mutex
	lists map[string][]guess
	sizes map[string]int
}

// get returns the guesses for a shard of kind.
func (b *guessBook) get(kind string) []guess {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.lists[kind]
}

// room is how many entries the shards of files, a unit, likely hold: as
// many as the last shard of each one's kind, and a sixteenth more; for a
// unit of several files, at most 2*unitEntries (learn makes units of
// several files only of shards that hold few entries on average, and a
// kind's last shard may be a large one among small ones).
func (b *guessBook) room(files []shardFile) int {
	b.mu.Lock()
	defer b.mu.Unlock()
	n := 0
	for i := range files {
		l := b.sizes[files[i].kindName()]
		n += l + l/16
	}
	if len(files) > 1 {
		n = min(n, 2*unitEntries)
	}
	return n
}

// update records how many entries a shard of kind held, and its entries,
// parsed with guesses of which hits were right, as the guesses for the
// next shard of kind when they are likely better: when the kind has none
// yet, or when at least half of the guesses were right but not all (in
// the same number), so that the shard's order is the program's, a little
// changed. A shard whose process wrote its series in its own order keeps
// the guesses as they are: its own would be no better for the next
// shard, and recording them would cost as much memory as its entries
// (such a shard's entries are looked up in batches; see missBatch).
func (b *guessBook) update(kind string, old []guess, hits int, entries []entry) {
	keep := len(entries) == 0 || (len(old) > 0 && (2*hits < len(entries) || (hits == len(entries) && hits == len(old))))
	var ng []guess
	if !keep {
		ng = appendGuesses(make([]guess, 0, len(entries)), entries)
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.sizes == nil {
		b.sizes = map[string]int{}
	}
	b.sizes[kind] = len(entries)
	if keep {
		return
	}
	if b.lists == nil {
		b.lists = map[string][]guess{}
	}
	b.lists[kind] = ng
}

// appendGuesses appends the keys of entries, in order, to dst as guesses.
func appendGuesses(dst []guess, entries []entry) []guess {
	for i := range entries {
		k := entries[i].Key
		dst = append(dst, guess{text: k.Text, key: k, id: entries[i].KeyID})
	}
	return dst
}

// parallelLookups is how many pending keys a walk looks up on every core.
const parallelLookups = 1024

// batches recycles the lookup batches of lookupPending, which a store
// of thousands of small shards calls thousands of times.
var batches = sync.Pool{New: func() any { return new(lookupBatch) }}

// lookupPending fills in the keys of the pending entries of out (whose
// KeyID holds their offset in data), in batches (see keyCache.lookup),
// on every core when there are many. It returns the error of the first
// entry whose key does not parse, else perr (the walk's own failure,
// which comes after all of them).
func lookupPending(data []byte, keys *keyCache, out []entry, start int, pending []int32, perr *parseError) ([]entry, *parseError) {
	workers := runtime.GOMAXPROCS(0)
	if len(pending) < parallelLookups || workers < 2 {
		if x, err := lookupPart(data, keys, out, pending); err != nil {
			return out[:start], &parseError{int64(out[pending[x]].KeyID), err.Error()}
		}
		return out, perr
	}
	errs := make([]error, len(pending))
	var wg sync.WaitGroup
	chunk := (len(pending) + workers - 1) / workers
	for w := 0; w < len(pending); w += chunk {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if x, err := lookupPart(data, keys, out, pending[w:min(w+chunk, len(pending))]); err != nil {
				errs[w+x] = err // the entries after it are not needed
			}
		}()
	}
	wg.Wait()
	for x, err := range errs {
		if err != nil {
			return out[:start], &parseError{int64(out[pending[x]].KeyID), err.Error()}
		}
	}
	return out, perr
}

// lookupPart looks up the pending entries part of out (see lookupPending)
// in batches; it returns the index in part of the first one whose key
// does not parse, and its error.
func lookupPart(data []byte, keys *keyCache, out []entry, part []int32) (int, error) {
	b := batches.Get().(*lookupBatch)
	defer func() {
		clear(b.texts[:cap(b.texts)]) // nothing of this shard kept
		batches.Put(b)
	}()
	for from := 0; from < len(part); from += batchSize {
		js := part[from:min(from+batchSize, len(part))]
		b.texts = b.texts[:0]
		for _, j := range js {
			pos := int(out[j].KeyID)
			n := int(int32(binary.LittleEndian.Uint32(data[pos:])))
			b.texts = append(b.texts, data[pos+4:pos+4+n])
		}
		if x, err := keys.lookup(b); err != nil {
			return from + x, err
		}
		for x, j := range js {
			out[j].Key, out[j].KeyID = b.keys[x], b.keys[x].ID
		}
	}
	return -1, nil
}

// spacePadded reports whether every padding byte of the (already valid)
// walk with stride is an ASCII space, as Python writes it.
func spacePadded(data []byte, used, stride int) bool {
	pos := headerSize
	for pos < used {
		n := int(int32(binary.LittleEndian.Uint32(data[pos:])))
		p := pos + 4 + n
		for _, c := range data[p : p+padding(n)] {
			if c != ' ' {
				return false
			}
		}
		pos = p + padding(n) + stride
	}
	return true
}

// unambiguousBelow is the used size below which no file fits both layouts
// (see parser.parse).
const unambiguousBelow = 1 << 24

// parser parses shards, reusing its buffers between calls.
type parser struct {
	keys *keyCache
	// win is stream's window (window bytes, windowSize unless a test
	// sets it); keyBuf holds the keys it did not guess, looked up when
	// they fill flushAt bytes.
	win, keyBuf     []byte
	window, flushAt int
	// hint is the layout of the last shard parsed, tried first.
	hint  int
	other []entry
	// guess holds the likely keys of the shard's entries in order (see
	// walk); nil for none. hits is, after a successful parse, how many
	// entries were their guess.
	guess []guess
	hits  int
	// used is the used size of the last shard parsed successfully.
	used int
	// miss is stream's batch of entries that were not their guess.
	miss missBatch
	// copyBuf holds the bytes of a kept shard while they are parsed, and
	// ownGuess the keys it held before, its guesses (see kept.refresh).
	copyBuf  []byte
	ownGuess []guess
	// slotBytes holds a kept shard's values while it is revalued (see
	// kept.revalue).
	slotBytes []byte
	// cold is what its reads of shards the usual way found of the page
	// cache (see coldReads).
	cold coldReads
	// grow, if not nil, gives stream a buffer holding the entries of its
	// out and room for n more, in place of growEntries (see pipeline).
	grow func(out []entry, n int) []entry
}

// parse decodes a shard of size bytes whose first bytes are data (see
// readUsed), appending its entries to out. Neither data beyond used nor
// beyond len(data) is read.
//
// Nothing in a file names its layout: the stride that reaches used
// exactly with every key valid wins. Both walks start with the same first
// entry, and a file under 16 MiB can never fit both: read with the wrong
// stride, the second entry starts inside the first's timestamp (8-byte
// reading of a 16-byte file), so its key, at least 12 bytes of JSON, would
// cover the next real entry's length field, whose top byte is 0 in such a
// file and never valid JSON text; or the wrong walk starts 8 bytes into
// the second entry (16-byte reading of an 8-byte file), whose length then
// is made of key bytes, at least 0x09000000, past used. So below 16 MiB
// the first walk that fits decides (the layout of the previous file is
// tried first). A larger crafted file may fit both; then the layout whose
// padding bytes are all spaces (as Python writes them) wins, and if that
// does not decide, the 16-byte layout of current Python clients. The
// choice depends on the file alone, so every reader of one file agrees.
func (p *parser) parse(data []byte, size int64, out []entry) ([]entry, int, *parseError) {
	p.hits, p.used = 0, 0
	used, perr := readUsed(data, size)
	if perr != nil {
		return out, 0, perr
	}
	p.used = used // reset below when a walk fails
	if used == headerSize {
		// No entries: nothing tells the layout.
		return out, 0, nil
	}
	first := p.hintOr16()
	second := LayoutLegacy + LayoutTimestamp - first
	start := len(out)
	var hits1, hits2 int
	out, err1 := walk(data, used, first, p.keys, p.guess, &p.miss, &hits1, out)
	p.hits = hits1
	if err1 == nil && used < unambiguousBelow {
		p.hint = first
		return out, first, nil
	}
	p.other = p.other[:0]
	var err2 *parseError
	p.other, err2 = walk(data, used, second, p.keys, p.guess, &p.miss, &hits2, p.other)
	switch {
	case err1 == nil && err2 == nil:
		pick := LayoutTimestamp
		s8, s16 := spacePadded(data, used, LayoutLegacy), spacePadded(data, used, LayoutTimestamp)
		if s8 && !s16 {
			pick = LayoutLegacy
		}
		if pick != first {
			out = append(out[:start], p.other...)
			p.hits = hits2
		}
		return out, pick, nil
	case err1 == nil:
		p.hint = first
		return out, first, nil
	case err2 == nil:
		p.hint = second
		p.hits = hits2
		return append(out[:start], p.other...), second, nil
	}
	// Neither fits: report the walk that got further (the likelier one on
	// a tie), and where the other one failed when that differs.
	best, bestStride, worst, worstStride := err1, first, err2, second
	if err2.offset > err1.offset {
		best, bestStride, worst, worstStride = err2, second, err1, first
	}
	p.used, p.hits = 0, 0
	if *best == *worst {
		return out[:start], 0, best
	}
	return out[:start], 0, &parseError{best.offset, fmt.Sprintf("%s (reading %d-byte values; with %d-byte values the entry at offset %d fails: %s)",
		best.reason, bestStride, worstStride, worst.offset, worst.reason)}
}

func (p *parser) hintOr16() int {
	if p.hint == LayoutLegacy {
		return LayoutLegacy
	}
	return LayoutTimestamp
}
