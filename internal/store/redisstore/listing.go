package redisstore

import "slices"

// listing tells whether SCAN listed the meta or metric hash of a kind
// name, pid and md5. Kind-and-pid pairs and md5s are numbered as they
// are added; after index, a lookup is two small map reads and a bit test
// (or a binary search when kinds x pids x md5s would make too large a
// bitset), where a set of the key names themselves costs a hash of the
// whole name and a cache miss per key.
type listing struct {
	shards  map[shardName]uint32
	md5s    map[string]uint32   // md5s that are not 32 hex digits
	md5b    map[[16]byte]uint32 // the rest, as bytes: no string to chase
	nmd5    int
	entries []uint64
	bits    []uint64 // nil: entries is sorted and searched

	names     []shardName // by kind-and-pid number
	md5Of     []string    // by md5 number
	firstMeta []int32     // by md5 number: the kind-and-pid that sorts first among its meta hashes, or -1
	hasMetric []bool      // by md5 number: a metric hash was listed
}

type shardName struct{ kind, pid string }

func newListing() *listing {
	return &listing{shards: map[shardName]uint32{}, md5s: map[string]uint32{}, md5b: map[[16]byte]uint32{}}
}

// maxBitsPerEntry bounds the bitset's size relative to the entries.
const maxBitsPerEntry = 64

// add records a listed hash of the key name n and returns the numbers of
// its kind-and-pid pair and of its md5.
func (l *listing) add(n keyName, meta bool) (uint32, uint32) {
	si, ok := l.shards[shardName{n.kind, n.pid}]
	if !ok {
		si = uint32(len(l.shards))
		l.shards[shardName{n.kind, n.pid}] = si
		l.names = append(l.names, shardName{n.kind, n.pid})
	}
	mi, ok := l.md5Index(n.md5)
	if !ok {
		mi = uint32(l.nmd5)
		l.nmd5++
		if b, isHex := hexMD5(n.md5); isHex {
			l.md5b[b] = mi
		} else {
			l.md5s[n.md5] = mi
		}
		l.md5Of = append(l.md5Of, n.md5)
		l.firstMeta = append(l.firstMeta, -1)
		l.hasMetric = append(l.hasMetric, false)
	}
	if !meta {
		l.hasMetric[mi] = true
	} else if f := l.firstMeta[mi]; f < 0 || lessShardName(l.names[si], l.names[f]) {
		l.firstMeta[mi] = int32(si)
	}
	l.entries = append(l.entries, l.code(si, mi, meta))
	return si, mi
}

func (l *listing) code(si, mi uint32, meta bool) uint64 {
	c := uint64(si)<<33 | uint64(mi)<<1
	if meta {
		c |= 1
	}
	return c
}

// bit is the bitset position of a code.
func (l *listing) bit(c uint64) uint64 {
	return (c>>33)*uint64(l.nmd5)*2 + c&(1<<33-1)
}

// index prepares the lookups; add must not be called after it.
func (l *listing) index() {
	size := uint64(len(l.shards)) * uint64(l.nmd5) * 2
	if size <= max(1<<16, maxBitsPerEntry*uint64(len(l.entries))) {
		l.bits = make([]uint64, (size+63)/64)
		for _, c := range l.entries {
			b := l.bit(c)
			l.bits[b/64] |= 1 << (b % 64)
		}
		l.entries = nil
		return
	}
	slices.Sort(l.entries)
}

// has reports whether SCAN listed the meta (or metric) hash of kind, pid
// and md5.
func (l *listing) has(kind, pid, md5 string, meta bool) bool {
	si, ok := l.shards[shardName{kind, pid}]
	if !ok {
		return false
	}
	mi, ok := l.md5Index(md5)
	if !ok {
		return false
	}
	return l.hasIndex(si, mi, meta)
}

// hasIndex is has for the numbers add returned.
func (l *listing) hasIndex(si, mi uint32, meta bool) bool {
	c := l.code(si, mi, meta)
	if l.bits != nil {
		b := l.bit(c)
		return l.bits[b/64]&(1<<(b%64)) != 0
	}
	_, found := slices.BinarySearch(l.entries, c)
	return found
}

// md5Index returns the number of an md5 added before.
func (l *listing) md5Index(md5 string) (uint32, bool) {
	if b, ok := hexMD5(md5); ok {
		mi, ok := l.md5b[b]
		return mi, ok
	}
	mi, ok := l.md5s[md5]
	return mi, ok
}

// hexMD5 decodes 32 lower-case hex digits.
func hexMD5(s string) (b [16]byte, ok bool) {
	if len(s) != 32 {
		return b, false
	}
	bad := byte(0)
	for i := range 16 {
		hi, lo := hexValue[s[2*i]], hexValue[s[2*i+1]]
		bad |= hi | lo
		b[i] = hi<<4 | lo&0xf
	}
	return b, bad&0x10 == 0
}

// hexValue is the value of a lower-case hex digit, 0x10 for any other
// byte: one load per digit, and one test for all of them.
var hexValue = func() (t [256]byte) {
	for i := range t {
		t[i] = 0x10
	}
	for c := '0'; c <= '9'; c++ {
		t[c] = byte(c - '0')
	}
	for c := 'a'; c <= 'f'; c++ {
		t[c] = byte(c - 'a' + 10)
	}
	return t
}()
