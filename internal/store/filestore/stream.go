package filestore

import (
	"encoding/binary"
	"errors"
	"io"
)

// windowSize is how much of a shard is read at a time by stream: small
// enough to stay in a core's cache between the read and the walk. The
// keys it did not guess are looked up when they fill keyBufFlush bytes.
const (
	windowSize  = 256 << 10
	keyBufFlush = 1 << 20
)

// firstRead is how much of a shard is read before its used size is known,
// as Python reads one page first.
const firstRead = 4096

// stream parses the shard open as f (a regular file of size bytes, or
// of a size not known when size is negative) by reading its used region
// in windows into p.win, appending its entries to out. Reading through a small buffer that stays in cache costs less
// than mapping the file (page faults, then unmapping) and far less than
// reading it whole.
//
// It is the fast path for a well-formed shard under 16 MiB read with the
// layout of the previous one: on anything else (a read that fails or
// comes short, a bad header, an entry that does not fit, a key that does
// not parse, the other layout, a larger file) it returns ok false having
// appended nothing, and the caller parses the file whole, which decides
// the layout and words the error.
func (p *parser) stream(f io.ReaderAt, size int64, out []entry) (entries []entry, layout int, ok bool) {
	p.hits, p.used = 0, 0
	if size >= 0 && size < headerSize {
		return out, 0, false
	}
	if p.window == 0 {
		p.window, p.flushAt = windowSize, keyBufFlush
	}
	if cap(p.win) < p.window {
		p.win = make([]byte, p.window)
	}
	buf := p.win[:cap(p.win)]
	// The first page holds all of a small shard's used bytes (a shard
	// of a process that wrote a few series is one page of entries in a
	// 64 KiB file); a larger one is read on from where its entries cross
	// the page.
	first := buf[:min(len(buf), firstRead)]
	if size >= 0 {
		first = first[:min(int64(len(first)), size)]
	}
	have, err := f.ReadAt(first, 0)
	if (err != nil && !errors.Is(err, io.EOF)) || have < headerSize {
		return out, 0, false
	}
	if size < 0 && have < len(first) {
		size = int64(have) // a short read ends at the end of the file
	}
	used := int(int32(binary.LittleEndian.Uint32(buf)))
	switch {
	case used == 0 || used == headerSize:
		p.used = headerSize
		return out, 0, true // no entries: nothing tells the layout
	case used < headerSize || (size >= 0 && int64(used) > size) || used >= unambiguousBelow:
		return out, 0, false
	}
	stride := p.hintOr16()
	start := len(out)
	// Room for the keys not guessed, made once: append grows a large
	// buffer by a quarter at a time, copying a first shard's keys a dozen
	// times.
	if want := min(used, p.flushAt+p.window); cap(p.keyBuf) < want {
		p.keyBuf = make([]byte, 0, want)
	}
	p.keyBuf = p.keyBuf[:0]
	var pending []int32
	hits := 0 // entries that were their guess
	miss := &p.miss
	miss.reset()
	// flush looks the batch of keys not guessed up (they lie in buf);
	// new ones are kept in p.keyBuf, laid out as in a shard, for
	// lookupPending, their entries' KeyID holding their offset there.
	flush := func(buf []byte) {
		p.keys.resolve(miss, out)
		for x, j := range miss.at {
			if out[j].Key == nil {
				off := int(miss.off[x])
				out[j].KeyID = uint32(len(p.keyBuf))
				p.keyBuf = append(p.keyBuf, buf[off:off+4+len(miss.texts[x])]...)
				pending = append(pending, j)
			}
		}
		miss.reset()
	}
	// buf[0:have] holds the file's bytes from offset base.
	base := 0
	for i, pos := 0, headerSize; pos < used; i++ {
		if pos+4 > base+have {
			flush(buf)
			if buf, base, have, ok = p.refill(f, pos, 4, used); !ok {
				return out[:start], 0, false
			}
		}
		n := int(int32(binary.LittleEndian.Uint32(buf[pos-base:])))
		if n <= 0 || n > used-pos-4 {
			return out[:start], 0, false
		}
		end := pos + 4 + n + padding(n) + stride
		if end > used {
			return out[:start], 0, false
		}
		if end > base+have {
			flush(buf)
			if len(p.keyBuf) >= p.flushAt {
				// Look the keys kept so far up, rather than keeping all
				// of a first shard's keys at once.
				var perr *parseError
				if out, perr = lookupPending(p.keyBuf, p.keys, out, start, pending, nil); perr != nil {
					return out[:start], 0, false
				}
				pending, p.keyBuf = pending[:0], p.keyBuf[:0]
			}
			if buf, base, have, ok = p.refill(f, pos, end-pos, used); !ok {
				return out[:start], 0, false
			}
		}
		kb := buf[pos-base+4 : pos-base+4+n]
		var e entry
		guessed := takeGuess(&e, p.guess, i, kb)
		if guessed {
			hits++
		}
		readValue(&e, buf[pos-base+4+n+padding(n):], stride)
		if len(out) == cap(out) && pos > headerSize {
			// Room for the entries the rest of the used bytes likely
			// hold, at the rate of those read so far (append would grow
			// by a quarter at a time, copying a large shard's entries a
			// dozen times).
			read := len(out) - start
			if more := read*(used-pos)/(pos-headerSize)*9/8 + 16; p.grow != nil {
				out = p.grow(out, more)
			} else {
				out = growEntries(out, more)
			}
		}
		out = append(out, e)
		if !guessed && miss.add(kb, len(out)-1, pos-base) {
			flush(buf)
		}
		pos = end
	}
	flush(buf)
	out, perr := lookupPending(p.keyBuf, p.keys, out, start, pending, nil)
	if perr != nil {
		return out[:start], 0, false
	}
	p.hint, p.used, p.hits = stride, used, hits
	return out, stride, true
}

// refill moves the window to start at file offset pos with at least need
// bytes (growing it for an entry larger than the window) and fills it up
// to used. It returns the window, its offset and how many bytes it holds.
func (p *parser) refill(f io.ReaderAt, pos, need, used int) (buf []byte, base, have int, ok bool) {
	if need > cap(p.win) {
		p.win = make([]byte, need)
	}
	buf = p.win[:cap(p.win)]
	if p.keys.canceled() != nil {
		// The whole parse that follows words it.
		return buf, pos, 0, false
	}
	n := min(len(buf), used-pos)
	got, err := f.ReadAt(buf[:n], int64(pos))
	if (err != nil && !errors.Is(err, io.EOF)) || got < need {
		return buf, pos, got, false
	}
	return buf, pos, got, true
}
