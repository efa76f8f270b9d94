package filestore

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"os"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	"github.com/promstore/promstore/internal/store"
)

// mappedShard is a shard file mapped read-only into memory.
type mappedShard struct {
	data  []byte // the whole mapping; nil for an empty file
	size  int64
	alloc int64
	mtime time.Time
}

// mapShardFile maps the shard at path read-only (see mapFile). When the
// used size exceeds the size first seen, the file may have grown meanwhile
// (Python grows a file before writing past its end), so it is looked at
// once more.
func mapShardFile(path string) (mappedShard, error) {
	f, st, err := openShard(path)
	if err != nil {
		return mappedShard{}, err
	}
	defer f.Close()
	for attempt := 0; ; attempt++ {
		if attempt > 0 {
			if st, err = f.Stat(); err != nil {
				return mappedShard{}, err
			}
		}
		m := mappedShard{size: st.Size(), alloc: allocated(st), mtime: st.ModTime()}
		if m.size == 0 {
			return m, nil
		}
		n := min(m.size, math.MaxInt32)
		m.data, err = mapFile(f, int(n))
		if err != nil {
			return mappedShard{}, err
		}
		if n >= headerSize && attempt == 0 && int64(int32(binary.LittleEndian.Uint32(m.data))) > n {
			m.unmap()
			continue
		}
		return m, nil
	}
}

// unmap releases the mapping.
func (m *mappedShard) unmap() {
	if m.data != nil {
		unmapFile(m.data)
		m.data = nil
	}
}

// parseMapped parses a mapped shard, its entries appended to out (out
// itself on failure). A fault while reading the mapping
// (the file was truncated under it, which Python never does) becomes an
// error instead of a crash.
func parseMapped(ps *parser, m *mappedShard, out []entry) (entries []entry, layout int, perr *parseError) {
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer func() {
		if r := recover(); r != nil {
			if _, ok := r.(interface{ Addr() uintptr }); ok {
				entries, layout, perr = out, 0, &parseError{-1, "file shrank while being read"}
				return
			}
			panic(r)
		}
	}()
	return ps.parse(m.data, m.size, out)
}

// shard is one file read and parsed.
type shard struct {
	file    shardFile
	size    int64
	alloc   int64 // disk space (see store.ShardInfo.Allocated)
	used    int   // used size, 0 when unreadable
	mtime   time.Time
	entries []entry
	layout  int
	err     *store.ShardError
	// gone is set when the file was removed after listing (a process
	// cleaned up): it is skipped without complaint.
	gone bool
	// kept is set when entries belong to a kept shard (KeepReads): they
	// are not recycled.
	kept bool
}

// pipeline reads and parses shards in a few worker goroutines, a few
// units ahead of the consumer, and hands them over in file order. A unit
// is a run of consecutive files claimed by one worker: one file while
// shards are large, up to unitMax while they are small, so that a store
// of thousands of nearly empty shards costs a handoff per unit rather
// than per file.
type pipeline struct {
	files []shardFile
	// stat is set when shards need their size and mtime (Shards).
	stat bool

	mu      sync.Mutex
	next    int // the first file no unit has claimed
	perUnit int // files per unit, from the size of the shards read (learn)
	// readFiles and readEntries count the files read and their entries,
	// readBytes the used bytes (past the header) of the shards that held
	// entries.
	readFiles, readEntries, readBytes int

	claimed chan *unit
	// tokens bounds the work read ahead of the consumer: a unit takes one
	// before it is claimed and, once read, one more for every
	// tokenEntries entries past its first tokenEntries, or tokenFiles
	// files past its first tokenFiles if that is more (see unit.extra),
	// all given back when it is consumed.
	tokens chan struct{}
	// free holds units consumed, for claim to use again (under mu).
	free []*unit
	// bufs holds the large entry buffers of units consumed (under mu),
	// for the units that read large shards to take the one that fits:
	// in directory order, shards of a few entries and of tens of
	// thousands come mixed, and a unit that kept its own buffer would
	// grow one for the largest shard it ever held (every unit of the
	// pipeline, in time).
	bufs [][]entry
	stop chan struct{}
	wg   sync.WaitGroup
	keys *keyCache
	// reuse holds the kept shards (KeepReads); nil for none.
	reuse *reuseState
}

// unit is a run of files read by one worker.
type unit struct {
	shards []*shard
	// room holds the shards read the usual way (a kept shard is its
	// kept's), entries their entries one after the other: units are
	// used again once consumed, so that a store of thousands of small
	// shards costs no shard and no entry buffer per file.
	room    []shard
	entries []entry
	// spare holds the buffers its entries outgrew while it was read
	// (parser.grow), given back with it.
	spare [][]entry
	// extra is how many tokens the unit's worker takes for it once it
	// is read, beside the one it claimed it with.
	extra int
	done  chan struct{}
}

const (
	// pipelineDepth is how many tokens there are: up to that many units
	// of at most tokenFiles small shards ahead of the consumer, or about
	// pipelineDepth*tokenEntries entries of large ones (8 MiB of entries).
	// The consumer's work is uneven: a shard that brings thousands of
	// new keys costs it far more than one of the same size whose keys it
	// met before, and the workers read on meanwhile.
	pipelineDepth = 16
	tokenEntries  = 16 << 10
	// tokenFiles is how many files a token stands for: a unit of many
	// small shards takes one for every tokenFiles of them, so that 4
	// such units are read ahead, as before (more gained nothing
	// measurable on a store of 26,000 nearly empty shards).
	tokenFiles   = unitMax / 4
	parseWorkers = 2
	// unitMax bounds the files of a unit; unitEntries is how many entries
	// a unit aims at.
	unitMax     = 64
	unitEntries = 2048
)

func (s *Store) startPipeline(files []shardFile, keys *keyCache, stat bool, reuse *reuseState) *pipeline {
	p := &pipeline{
		files:   files,
		stat:    stat,
		reuse:   reuse,
		perUnit: 1,
		claimed: make(chan *unit, len(files)),
		tokens:  make(chan struct{}, pipelineDepth),
		stop:    make(chan struct{}),
		keys:    keys,
	}
	var guesses guessBook
	for range min(parseWorkers, len(files)) {
		p.wg.Add(1)
		go func() {
			defer p.wg.Done()
			ps := parser{keys: keys}
			// The unit being read: a buffer of its entries that stream
			// outgrows goes back to the pipeline with it (the entries of
			// its shards read before lie there).
			var cur *unit
			ps.grow = func(es []entry, n int) []entry {
				nb := append(p.takeBuffer(len(es)+n, nil), es...)
				if cap(es) > 0 {
					cur.spare = append(cur.spare, es)
				}
				return nb
			}
			// The worker's ring, made for the first unit of many files.
			var (
				rg      *ring
				ringTry bool
				pre     []*prefetched
			)
			defer func() { rg.close() }()
			for {
				select {
				case p.tokens <- struct{}{}:
				case <-p.stop:
					return
				}
				u, from := p.claim()
				if u == nil {
					return
				}
				cur = u
				pre = pre[:0]
				if len(u.shards) > 1 && !p.stat {
					if !ringTry {
						rg, ringTry = newRing(), true
					}
					pre = rg.prefetch(files[from:from+len(u.shards)], pre)
				}
				n, used := 0, 0
				buf := u.entries[:0]
				if room := p.roomFor(&guesses, files[from:from+len(u.shards)], pre); room > cap(buf) {
					buf = p.takeBuffer(room, buf)
				}
				if p.reuse != nil {
					touchKept(files[from : from+len(u.shards)])
				}
				for i := range u.shards {
					var first *prefetched
					if i < len(pre) {
						first = pre[i]
					}
					u.shards[i] = p.read(&ps, &guesses, files[from+i], first, &u.room[i], &buf)
					n += len(u.shards[i].entries)
					if sh := u.shards[i]; len(sh.entries) > 0 {
						used += sh.used - headerSize
					}
				}
				u.entries = buf
				p.learn(len(u.shards), n, used)
				extra := min(max(0, (n-1)/tokenEntries, (len(u.shards)-1)/tokenFiles), pipelineDepth-1)
				u.extra = extra
				close(u.done)
				for range extra {
					select {
					case p.tokens <- struct{}{}:
					case <-p.stop:
						return
					}
				}
			}
		}()
	}
	return p
}

// unitRooms and entryBuffers count the units' rooms for shards and the
// entry buffers a read made (for tests).
var unitRooms, entryBuffers atomic.Int64

// entryBufferRoom counts the entries the entry buffers a read made have
// room for (for tests).
var entryBufferRoom atomic.Int64

// newEntries returns a new empty entry buffer of room for n entries.
func newEntries(n int) []entry {
	entryBuffers.Add(1)
	entryBufferRoom.Add(int64(n))
	return make([]entry, 0, n)
}

// growEntries returns es with room for n more entries: es itself when it
// has it, else a new buffer holding es's entries.
func growEntries(es []entry, n int) []entry {
	if cap(es)-len(es) >= n {
		return es
	}
	return append(newEntries(len(es)+n), es...)
}

// claim takes the next unit of files, queued in file order for the
// consumer; nil when every file is claimed.
func (p *pipeline) claim() (*unit, int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	from := p.next
	if from >= len(p.files) {
		return nil, 0
	}
	n := min(p.perUnit, len(p.files)-from)
	p.next += n
	u := &unit{}
	if k := len(p.free); k > 0 {
		u = p.free[k-1]
		p.free[k-1] = nil
		p.free = p.free[:k-1]
	}
	if cap(u.shards) < n {
		u.shards, u.room = make([]*shard, n, unitMax), make([]shard, n, unitMax)
		unitRooms.Add(1)
	}
	u.shards, u.room, u.done = u.shards[:n], u.room[:n], make(chan struct{})
	p.claimed <- u // never blocks: room for a unit per file
	return u, from
}

// learn sizes the next units from the entries per file of all files read
// so far (not of the last unit alone: a directory mixes shards of every
// size, and a unit of many files that meets large ones holds many large
// entry buffers at once).
func (p *pipeline) learn(files, entries, used int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.readFiles += files
	p.readEntries += entries
	p.readBytes += used
	p.perUnit = unitMax
	if p.readEntries > 0 {
		p.perUnit = min(unitMax, max(1, unitEntries*p.readFiles/p.readEntries))
	}
}

// read reads and parses one shard file into sh (or gives its kept shard),
// its entries appended to *buf, the entries of the unit's shards read
// before it; first, if not nil, is what a ring read of it ahead (see
// ring.prefetch).
func (p *pipeline) read(ps *parser, guesses *guessBook, f shardFile, first *prefetched, sh *shard, buf *[]entry) *shard {
	if f.nameErr != nil {
		*sh = shard{file: f, err: &store.ShardError{Shard: f.name, Offset: -1, Reason: "not a shard file name", Err: f.nameErr}}
		return sh
	}
	kind := f.kindName()
	ps.guess = guesses.get(kind)
	if p.reuse != nil && f.keep {
		// Through its kept mapping (see reuseState.read).
		if sh, ok := p.reuse.read(ps, f); ok {
			return sh
		}
	}
	*sh = shard{file: f}
	entries := *buf
	start := len(entries)
	var ok bool
	if f.regular && !p.stat {
		if first != nil {
			// A small shard's used bytes, read ahead.
			entries, sh.layout, ok = ps.stream(first, -1, entries)
		}
		if !ok {
			// The listing said it is a regular file: open, read, close.
			entries, sh.layout, ok = streamRaw(ps, f.path, entries)
		}
	} else {
		var st fs.FileInfo
		entries, sh.layout, st, ok = streamShardFile(ps, f.path, entries)
		if ok {
			sh.size, sh.alloc, sh.mtime = st.Size(), allocated(st), st.ModTime()
		}
	}
	if !ok {
		// Anything but a well-formed shard: parsed whole, which tells
		// what is wrong.
		m, err := mapShardFile(f.path)
		sh.size, sh.alloc, sh.mtime = m.size, m.alloc, m.mtime
		switch {
		case errors.Is(err, fs.ErrNotExist):
			sh.gone = true
			return sh
		case err != nil:
			sh.err = &store.ShardError{Shard: f.name, Offset: -1, Reason: "cannot read", Err: err, ID: f.id, Path: f.path}
			return sh
		}
		var perr *parseError
		entries, sh.layout, perr = parseMapped(ps, &m, entries)
		m.unmap()
		if perr != nil {
			sh.err = &store.ShardError{Shard: f.name, Offset: perr.offset, Reason: perr.reason, ID: f.id, Path: f.path}
			if m.size == 0 {
				sh.err.Kind = store.ProblemEmptyFile
			}
			*buf = entries[:start]
			return sh
		}
	}
	*buf = entries
	sh.entries = entries[start:len(entries):len(entries)]
	sh.used = ps.used
	guesses.update(kind, ps.guess, ps.hits, sh.entries)
	return sh
}

// roomFor is how many entries the unit of files likely holds: where the
// first page of every file was read ahead (pre), from their used sizes,
// at the bytes per entry of the shards read so far; else as many as the
// last shard of each one's kind (see guessBook.room).
func (p *pipeline) roomFor(g *guessBook, files []shardFile, pre []*prefetched) int {
	p.mu.Lock()
	perEntry := 0
	if p.readEntries > 0 {
		perEntry = max(1, p.readBytes/p.readEntries)
	}
	p.mu.Unlock()
	if perEntry == 0 || len(pre) != len(files) {
		return g.room(files)
	}
	n := 0
	for _, f := range pre {
		if f == nil || len(f.data) < headerSize {
			continue
		}
		if used := int(int32(binary.LittleEndian.Uint32(f.data))); used > headerSize {
			n += (used-headerSize)/perEntry + 1
		}
	}
	return n + n/16
}

// maxBufs bounds the entry buffers a pipeline keeps for its units.
const maxBufs = 2 * pipelineDepth

// unitKeeps is the room of the largest entry buffer a unit keeps as its
// own once consumed (for its next shards, likely as small); a larger one
// goes to the pipeline's, for whichever unit next reads a large shard.
const unitKeeps = 2 * unitEntries

// takeBuffer returns an empty entry buffer of room for at least n
// entries, in place of old (empty, too small): the smallest such buffer
// of a unit consumed unless it is far larger, else a new one.
func (p *pipeline) takeBuffer(n int, old []entry) []entry {
	p.mu.Lock()
	defer p.mu.Unlock()
	best := -1
	for i, b := range p.bufs {
		if cap(b) >= n && (best < 0 || cap(b) < cap(p.bufs[best])) {
			best = i
		}
	}
	p.keepBuffer(old)
	if best < 0 || cap(p.bufs[best]) > 4*n+1024 {
		// None, or only ones far larger: those are for large shards.
		return newEntries(n)
	}
	b := p.bufs[best]
	last := len(p.bufs) - 1
	p.bufs[best], p.bufs[last] = p.bufs[last], nil
	p.bufs = p.bufs[:last]
	return b
}

// keepBuffer keeps b (no longer used, holding no key) for takeBuffer;
// when maxBufs are kept already, the smallest of them and b is dropped.
// p.mu is held.
func (p *pipeline) keepBuffer(b []entry) {
	if cap(b) == 0 {
		return
	}
	if len(p.bufs) < maxBufs {
		p.bufs = append(p.bufs, b[:0])
		return
	}
	small := 0
	for i := range p.bufs {
		if cap(p.bufs[i]) < cap(p.bufs[small]) {
			small = i
		}
	}
	if cap(b) > cap(p.bufs[small]) {
		p.bufs[small] = b[:0]
	}
}

// prefetched is the start of a shard read ahead by a ring (its first page,
// or all its used bytes): a ReaderAt of the bytes read, which fails for
// bytes past them unless the read reached the end of the file (the shard
// is then read again the usual way, through one descriptor).
type prefetched struct {
	data []byte
	eof  bool // data is all of the file
}

var errPastPage = errors.New("past the bytes read ahead")

func (p *prefetched) ReadAt(b []byte, off int64) (int, error) {
	n := 0
	if off < int64(len(p.data)) {
		n = copy(b, p.data[off:])
	}
	switch {
	case n == len(b):
		return n, nil
	case p.eof:
		return n, io.EOF
	}
	return n, errPastPage
}

// streamRaw parses the file at path, which the listing says is regular,
// with parser.stream, in three system calls for a small shard: open,
// pread and close (and an advice once reads went to the disk: see
// coldReads). ok is false when it could not (the file is then to be
// parsed whole).
func streamRaw(ps *parser, path string, out []entry) (entries []entry, layout int, ok bool) {
	f, err := ps.cold.open(path)
	if err != nil {
		return out, 0, false
	}
	defer f.Close()
	return ps.stream(f, -1, out)
}

// streamShardFile parses the regular, non-empty file at path with
// parser.stream; ok is false when it could not (the file is then to be
// parsed whole).
func streamShardFile(ps *parser, path string, out []entry) (entries []entry, layout int, st fs.FileInfo, ok bool) {
	f, st, err := openShard(path)
	if err != nil {
		return out, 0, nil, false
	}
	defer f.Close()
	if st.Size() == 0 {
		return out, 0, nil, false
	}
	entries, layout, ok = ps.stream(f, st.Size(), out)
	return entries, layout, st, ok
}

// shards calls fn with each shard in file order until fn fails or ctx
// is done.
func (p *pipeline) shards(ctx context.Context, fn func(*shard) error) error {
	for seen := 0; seen < len(p.files); {
		var u *unit
		select {
		case u = <-p.claimed:
		case <-ctx.Done():
			return ctx.Err()
		}
		select {
		case <-u.done:
		case <-ctx.Done():
			return ctx.Err()
		}
		var err error
		for _, sh := range u.shards {
			if err == nil {
				err = fn(sh)
			}
		}
		seen += len(u.shards)
		tokens := 1 + u.extra
		clear(u.shards)
		clear(u.room)    // no file, entries or error held
		clear(u.entries) // no key
		p.mu.Lock()
		if cap(u.entries) > unitKeeps {
			// A large shard's: for the next one.
			p.keepBuffer(u.entries)
			u.entries = nil
		}
		for i, b := range u.spare {
			clear(b) // no key
			p.keepBuffer(b)
			u.spare[i] = nil
		}
		u.spare = u.spare[:0]
		p.free = append(p.free, u) // a worker may take it from now on
		p.mu.Unlock()
		for range tokens {
			<-p.tokens
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// close stops the workers and waits for them.
func (p *pipeline) close() {
	close(p.stop)
	p.wg.Wait()
}

// eachShard reads and parses every *.db file of the directory (see list),
// a few ahead, and calls fn with each in directory order. The shard's
// entries are only valid during the call. The key cache of a complete
// pass is kept for the next one.
func (s *Store) eachShard(ctx context.Context, stat bool, fn func(*shard) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	var reuse *reuseState
	if !stat {
		reuse = s.takeReuse()
	}
	var files []shardFile
	var stamp dirStamp
	var err error
	if reuse != nil {
		files, stamp, err = s.listInodes(reuse)
	} else {
		files, err = s.list()
	}
	if err != nil {
		if reuse != nil {
			s.putReuse(reuse)
		}
		return err
	}
	if reuse != nil {
		reuse.begin(files, stamp)
	}
	keys := newKeyCache(s.takeKeys(), &s.keyIDs)
	keys.ctx = ctx
	p := s.startPipeline(files, keys, stat, reuse)
	complete := false
	defer func() {
		p.close()
		if reuse == nil {
			s.putKeys(keys.keys(complete, nil))
			return
		}
		if complete {
			reuse.end()
			s.mu.Lock()
			s.lastStats = reuse.last
			s.mu.Unlock()
		}
		s.putKeys(keys.keys(complete, reuse))
		s.putReuse(reuse)
	}()
	err = p.shards(ctx, func(sh *shard) error {
		if err := ctx.Err(); err != nil {
			return err
		}
		return fn(sh)
	})
	if err != nil {
		return err
	}
	complete = true
	return nil
}

// Scan streams every sample of every readable shard, shard by shard in
// directory order (see list) and within a shard in file order. Unreadable and
// corrupt shards yield no samples; they are reported in a
// *store.PartialError at the end.
func (s *Store) Scan(ctx context.Context, fn store.ScanFunc) error {
	var errs store.ScanErrors
	err := s.eachShard(ctx, false, func(sh *shard) error {
		if sh.unreadable(&errs) {
			return nil // reported at the end
		}
		id := sh.file.id
		for i := range sh.entries {
			e := &sh.entries[i]
			if err := fn(store.Sample{Shard: id, Key: e.Key, Value: e.Value, Timestamp: e.Timestamp}); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	return errs.Err()
}

// ScanShards is Scan handing over each shard's samples at once (see
// store.ShardScanner); the entries are only valid during the call.
func (s *Store) ScanShards(ctx context.Context, fn store.ShardFunc) error {
	return s.ScanKeptShards(ctx, func(id store.ShardID, entries []store.Entry, _ bool) error { return fn(id, entries) })
}

// ScanKeptShards is ScanShards telling of each shard whether its entries
// are a kept shard's (see KeepReads and store.KeptShardFunc).
func (s *Store) ScanKeptShards(ctx context.Context, fn store.KeptShardFunc) error {
	var errs store.ScanErrors
	err := s.eachShard(ctx, false, func(sh *shard) error {
		if sh.unreadable(&errs) || len(sh.entries) == 0 {
			return nil
		}
		return fn(sh.file.id, sh.entries, sh.kept)
	})
	if err != nil {
		return err
	}
	return errs.Err()
}

// Shards lists every *.db file with its facts. A file that cannot be read
// is listed with its problems (and zero ID when its name is not a shard
// name); the error is only for a directory that cannot be listed.
func (s *Store) Shards(ctx context.Context) ([]store.ShardInfo, error) {
	infos := []store.ShardInfo{}
	err := s.eachShard(ctx, true, func(sh *shard) error {
		if sh.gone {
			return nil
		}
		info := store.ShardInfo{
			ID:        sh.file.id,
			Location:  sh.file.path,
			Bytes:     sh.size,
			Allocated: sh.alloc,
			Used:      int64(sh.used),
			Samples:   len(sh.entries),
			Layout:    sh.layout,
			Updated:   sh.mtime,
			Alive:     store.AliveUnknown,
		}
		if sh.err != nil {
			info.Samples, info.Used = 0, 0
			info.Problems = []string{problem(sh.err)}
			info.Unreadable = true
		}
		if sh.file.nameErr != nil {
			// Never opened (no shard's name): its size and time, as ls
			// shows every file's.
			if fi, err := os.Lstat(sh.file.path); err == nil {
				info.Bytes, info.Allocated, info.Updated = fi.Size(), allocated(fi), fi.ModTime()
			}
		}
		infos = append(infos, info)
		return nil
	})
	if err != nil {
		return nil, err
	}
	return infos, nil
}

// unreadable reports whether the shard could not be read, recording its
// problem in errs when so.
func (sh *shard) unreadable(errs *store.ScanErrors) bool {
	if sh.err == nil {
		return false
	}
	errs.Add(sh.err)
	return true
}

// problem words a shard error for ShardInfo.Problems.
func problem(e *store.ShardError) string {
	msg := store.Clip(e.Reason)
	if e.Offset >= 0 {
		msg = fmt.Sprintf("entry at offset %d: %s", e.Offset, msg)
	}
	if e.Err != nil {
		msg += ": " + store.Clip(e.Err.Error())
	}
	if e.Reason == "cannot read" || e.Reason == "not a shard file name" {
		return msg
	}
	return "corrupt: " + msg
}
