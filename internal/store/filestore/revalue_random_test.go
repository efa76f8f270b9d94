package filestore

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"strconv"
	"strings"
	"testing"
)

// Randomized check of kept.refresh/kept.revalue: over
// many rounds of random in-place mutations of a few in-memory "mapped"
// shards (values, NaN payloads, -0, key bytes, key lengths, padding, header
// padding, appended and dropped entries, used sizes, whole rewrites in the
// other layout, restores of earlier bytes), refresh's answer must be
// exactly what a new parser's parse of the same bytes gives (keys, order,
// value and timestamp bits, layout, used, success), the entries slice must
// be the kept one exactly when refresh says unchanged, and no entries slice
// handed over before may ever change. Parsers are swapped between shards
// at random (refresh runs on whichever pipeline worker reads the shard).
//
// REVALUE_ROUNDS (default 5000) sets the rounds per seed, REVALUE_SEEDS
// (default 4) the seeds.

func rvKey(r *rand.Rand) string {
	letters := "abcdefghijklmnopqrstuvwxyz"
	word := func(n int) string {
		var b strings.Builder
		for range n {
			b.WriteByte(letters[r.IntN(len(letters))])
		}
		return b.String()
	}
	fam := word(1 + r.IntN(10))
	var labels []string
	for i := range r.IntN(3) {
		labels = append(labels, fmt.Sprintf("%q: %q", "l"+strconv.Itoa(i), word(r.IntN(12))))
	}
	k := fmt.Sprintf("[%q, %q, {%s}", fam, fam+"_total", strings.Join(labels, ", "))
	if r.IntN(4) != 0 {
		k += fmt.Sprintf(", %q", word(r.IntN(9)))
	}
	return k + "]"
}

func rvBits(r *rand.Rand, old uint64) uint64 {
	switch r.IntN(9) {
	case 0:
		return 0x7ff8000000000000 | uint64(r.IntN(4))
	case 1:
		return 0xfff8000000000000 | uint64(r.IntN(4))
	case 2:
		return 0x8000000000000000 // -0
	case 3:
		return 0
	case 4:
		return old ^ 1
	case 5:
		return old ^ (1 << 63)
	case 6:
		return math.Float64bits(float64(r.IntN(100)))
	case 7:
		return 0x7ff0000000000000 // +Inf
	}
	return r.Uint64()
}

func rvEntry(r *rand.Rand, key string, layout int) []byte {
	n := len(key)
	b := binary.LittleEndian.AppendUint32(nil, uint32(n))
	b = append(b, key...)
	b = append(b, bytes.Repeat([]byte{' '}, padding(n))...)
	b = binary.LittleEndian.AppendUint64(b, rvBits(r, 0))
	if layout == LayoutTimestamp {
		b = binary.LittleEndian.AppendUint64(b, rvBits(r, 0))
	}
	return b
}

// rvShard fills buf (zeroed past used) with a shard of n random entries.
func rvShard(r *rand.Rand, buf []byte, layout, n int) {
	clear(buf)
	b := make([]byte, headerSize)
	for range n {
		e := rvEntry(r, rvKey(r), layout)
		if len(b)+len(e) > len(buf) {
			break
		}
		b = append(b, e...)
	}
	binary.LittleEndian.PutUint32(b, uint32(len(b)))
	copy(buf, b)
}

// rvWalk returns the entry offsets of buf walked with layout (as far as
// it goes) and the value slots.
func rvWalk(buf []byte, layout int) (starts, slots []int) {
	used := int(int32(binary.LittleEndian.Uint32(buf)))
	if used < headerSize || used > len(buf) {
		return nil, nil
	}
	for pos := headerSize; pos+4 <= used; {
		n := int(int32(binary.LittleEndian.Uint32(buf[pos:])))
		if n <= 0 || pos+4+n+padding(n)+layout > used {
			break
		}
		starts = append(starts, pos)
		at := pos + 4 + n + padding(n)
		slots = append(slots, at)
		pos = at + layout
	}
	return starts, slots
}

type rvHanded struct {
	s    []entry
	copy []entry
}

func sameEntries(a, b []entry) string {
	if len(a) != len(b) {
		return fmt.Sprintf("%d entries, want %d", len(a), len(b))
	}
	for i := range a {
		switch {
		case a[i].Key == nil || b[i].Key == nil:
			return fmt.Sprintf("entry %d: nil key", i)
		case a[i].Key.Text != b[i].Key.Text:
			return fmt.Sprintf("entry %d: key %q, want %q", i, a[i].Key.Text, b[i].Key.Text)
		case math.Float64bits(a[i].Value) != math.Float64bits(b[i].Value):
			return fmt.Sprintf("entry %d: value %x, want %x", i, math.Float64bits(a[i].Value), math.Float64bits(b[i].Value))
		case math.Float64bits(a[i].Timestamp) != math.Float64bits(b[i].Timestamp):
			return fmt.Sprintf("entry %d: timestamp %x, want %x", i, math.Float64bits(a[i].Timestamp), math.Float64bits(b[i].Timestamp))
		case a[i].KeyID != a[i].Key.ID:
			return fmt.Sprintf("entry %d: KeyID %d, key's ID %d", i, a[i].KeyID, a[i].Key.ID)
		}
	}
	return ""
}

func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}

func TestKeptRevalueRandom(t *testing.T) {
	rounds := envInt("REVALUE_ROUNDS", 5000)
	seeds := envInt("REVALUE_SEEDS", 4)
	if testing.Short() {
		rounds = 2000
	}
	for seed := range seeds {
		t.Run(fmt.Sprint("seed", seed), func(t *testing.T) { testKeptRevalueRandom(t, uint64(seed), rounds) })
	}
}

func testKeptRevalueRandom(t *testing.T, seed uint64, rounds int) {
	r := rand.New(rand.NewPCG(seed, 77))
	hashSeed := r.Uint64()
	keys := newKeyCache(nil, nil)
	parsers := []*parser{{keys: keys}, {keys: keys}, {keys: keys}}
	type shardState struct {
		buf    []byte
		layout int // the layout it was written in
		k      *kept
		snaps  [][]byte
		handed []rvHanded
		prev   []entry
		live   bool
	}
	newShard := func(layout int) *shardState {
		size := 64 << r.IntN(5)
		if r.IntN(3) == 0 {
			size = 8 + 8*r.IntN(40)
		}
		s := &shardState{buf: make([]byte, size), layout: layout, live: true}
		rvShard(r, s.buf, layout, r.IntN(12))
		s.k = &kept{data: s.buf, size: int64(len(s.buf))}
		return s
	}
	shards := []*shardState{newShard(LayoutLegacy), newShard(LayoutTimestamp), newShard(LayoutTimestamp), newShard(LayoutLegacy)}
	counts := map[string]int{}
	for round := range rounds {
		s := shards[r.IntN(len(shards))]
		buf := s.buf
		starts, slots := rvWalk(buf, s.layout)
		used := int(int32(binary.LittleEndian.Uint32(buf)))
		what := "nothing"
		if (used < headerSize || used > len(buf) || (len(starts) == 0 && used > headerSize)) && r.IntN(2) == 0 {
			// Broken: mostly healed, so that revalue gets its chances.
			rvShard(r, buf, s.layout, r.IntN(12))
			starts, slots = rvWalk(buf, s.layout)
			used = int(int32(binary.LittleEndian.Uint32(buf)))
		}
		switch m := r.IntN(100); {
		case m < 40 && len(slots) > 0:
			what = "value"
			for range 1 + r.IntN(3) {
				i := r.IntN(len(slots))
				at := slots[i]
				if s.layout == LayoutTimestamp && r.IntN(2) == 0 {
					at += 8
				}
				binary.LittleEndian.PutUint64(buf[at:], rvBits(r, binary.LittleEndian.Uint64(buf[at:])))
			}
		case m < 45 && len(starts) > 0:
			what = "key letter"
			i := r.IntN(len(starts))
			n := int(binary.LittleEndian.Uint32(buf[starts[i]:]))
			kb := buf[starts[i]+4 : starts[i]+4+n]
			for range 4 {
				j := r.IntN(len(kb))
				if kb[j] >= 'a' && kb[j] <= 'z' {
					kb[j] = 'a' + byte(r.IntN(26))
					break
				}
			}
		case m < 48 && len(starts) > 0:
			what = "key byte"
			i := r.IntN(len(starts))
			n := int(binary.LittleEndian.Uint32(buf[starts[i]:]))
			buf[starts[i]+4+r.IntN(n)] = byte(r.IntN(256))
		case m < 53 && len(starts) > 0:
			what = "padding"
			i := r.IntN(len(starts))
			n := int(binary.LittleEndian.Uint32(buf[starts[i]:]))
			p := starts[i] + 4 + n + r.IntN(padding(n))
			if r.IntN(2) == 0 {
				buf[p] = byte(r.IntN(256))
			} else {
				buf[p] = ' '
			}
		case m < 57 && len(starts) > 0:
			what = "key length"
			i := r.IntN(len(starts))
			n := int32(binary.LittleEndian.Uint32(buf[starts[i]:]))
			switch r.IntN(3) {
			case 0:
				n += int32(r.IntN(7)) - 3
			case 1:
				n = int32(r.Uint32())
			default:
				n ^= 1 << r.IntN(31)
			}
			binary.LittleEndian.PutUint32(buf[starts[i]:], uint32(n))
		case m >= 57 && m < 60:
			what = "header padding"
			buf[4+r.IntN(4)] = byte(r.IntN(3))
		case m < 66 && used >= headerSize && used <= len(buf):
			what = "append"
			e := rvEntry(r, rvKey(r), s.layout)
			if used+len(e) <= len(buf) {
				copy(buf[used:], e)
				binary.LittleEndian.PutUint32(buf, uint32(used+len(e)))
			}
		case m < 69 && len(starts) > 0:
			what = "drop last entries"
			binary.LittleEndian.PutUint32(buf, uint32(starts[r.IntN(len(starts))]))
		case m < 71:
			what = "used random"
			switch r.IntN(3) {
			case 0:
				binary.LittleEndian.PutUint32(buf, uint32(r.IntN(len(buf)+16)))
			case 1:
				binary.LittleEndian.PutUint32(buf, uint32(used+8*(r.IntN(5)-2)))
			default:
				binary.LittleEndian.PutUint32(buf, 0)
			}
		case m < 74 && len(starts) > 1:
			what = "swap entries"
			i, j := r.IntN(len(starts)), r.IntN(len(starts))
			end := func(x int) int { return slots[x] + s.layout }
			if i != j && end(i)-starts[i] == end(j)-starts[j] {
				a := bytes.Clone(buf[starts[i]:end(i)])
				copy(buf[starts[i]:end(i)], buf[starts[j]:end(j)])
				copy(buf[starts[j]:end(j)], a)
			}
		case m < 79 && len(s.snaps) > 0:
			what = "restore"
			copy(buf, s.snaps[r.IntN(len(s.snaps))])
		case m < 81 && len(starts) > 0:
			what = "zero 8 bytes"
			p := headerSize + r.IntN(max(1, used-headerSize))
			clear(buf[p:min(p+8, len(buf))])
		case m < 83:
			what = "rewritten, other layout"
			s.layout = LayoutLegacy + LayoutTimestamp - s.layout
			rvShard(r, buf, s.layout, r.IntN(12))
		case m < 85 && len(starts) > 0 && s.layout == LayoutTimestamp:
			// The same keys read in the other layout: same used size
			// when the entries are rewritten 8 bytes shorter and a filler
			// entry is added (rarely fits; tried anyway).
			what = "relayout same keys"
			var nb []byte
			nb = make([]byte, headerSize)
			for i := range starts {
				n := int(binary.LittleEndian.Uint32(buf[starts[i]:]))
				nb = append(nb, buf[starts[i]:starts[i]+4+n+padding(n)+8]...)
			}
			if len(nb) <= len(buf) {
				binary.LittleEndian.PutUint32(nb, uint32(len(nb)))
				clear(buf)
				copy(buf, nb)
				s.layout = LayoutLegacy
			}
		case m < 87:
			what = "liveness flipped"
			s.live = !s.live
		case m < 88:
			what = "remapped"
			s.k = &kept{data: s.buf, size: int64(len(s.buf))}
			s.prev, s.handed = nil, nil
		}
		if r.IntN(10) == 0 {
			s.snaps = append(s.snaps, bytes.Clone(buf))
			if len(s.snaps) > 8 {
				s.snaps = s.snaps[1:]
			}
		}
		counts[what]++

		// The bytes refresh reads are these.
		snapshot := bytes.Clone(buf)
		ps := parsers[r.IntN(len(parsers))]
		oldEntries := s.k.entries
		changed, ok := s.k.refresh(ps, hashSeed, s.live)

		fp := parser{keys: newKeyCache(nil, nil), hint: []int{0, LayoutLegacy, LayoutTimestamp}[r.IntN(3)]}
		want, wantLayout, werr := fp.parse(snapshot, int64(len(snapshot)), nil)
		fail := func(format string, args ...any) {
			t.Helper()
			t.Fatalf("seed %d round %d (%s, live %v, layout written %d): %s", seed, round, what, s.live, s.layout, fmt.Sprintf(format, args...))
		}
		if !bytes.Equal(snapshot, buf) {
			fail("refresh changed the mapped bytes")
		}
		if !ok {
			if werr == nil {
				// refresh fails also when used lies past the mapping,
				// which readUsed rejects too.
				fail("refresh failed where a parse gives %d entries", len(want))
			}
			counts["!ok"]++
			s.k = &kept{data: s.buf, size: int64(len(s.buf))} // as reuseState.read: released, mapped again
			s.prev = nil
		} else {
			if werr != nil {
				fail("refresh ok where a parse fails: %v", werr)
			}
			if d := sameEntries(s.k.entries, want); d != "" {
				fail("entries differ from a parse's (changed %v, revalued %v): %s", changed, s.k.revalued, d)
			}
			if len(want) > 0 && s.k.layout != wantLayout {
				fail("layout %d, parse's %d", s.k.layout, wantLayout)
			}
			if s.k.used != fp.used {
				fail("used %d, parse's %d", s.k.used, fp.used)
			}
			sameSlice := len(oldEntries) == len(s.k.entries) && (len(oldEntries) == 0 || &oldEntries[0] == &s.k.entries[0])
			if !changed && oldEntries != nil && !sameSlice {
				fail("unchanged but a new entries slice")
			}
			if changed && oldEntries != nil && len(oldEntries) > 0 && sameSlice {
				fail("changed but the same entries slice")
			}
			switch {
			case !changed:
				counts["=reused"]++
			case s.k.revalued:
				counts["=revalued"]++
			default:
				counts["=parsed"]++
			}
			if s.k.revalued && !changed {
				fail("revalued set on an unchanged refresh")
			}
			s.handed = append(s.handed, rvHanded{s.k.entries, append([]entry(nil), s.k.entries...)})
			if len(s.handed) > 16 {
				s.handed = s.handed[1:]
			}
		}
		for _, sh := range shards {
			for i, h := range sh.handed {
				if d := sameEntries(h.s, h.copy); d != "" {
					fail("an entries slice handed over before (%d of %d kept) changed: %s", i, len(sh.handed), d)
				}
			}
		}
		// Scratch left behind must not matter: scribble over it.
		if r.IntN(5) == 0 {
			for i := range ps.copyBuf {
				ps.copyBuf[i] = byte(r.IntN(256))
			}
			for i := range ps.slotBytes {
				ps.slotBytes[i] = byte(r.IntN(256))
			}
		}
	}
	t.Logf("seed %d: %v", seed, counts)
	if counts["=revalued"] == 0 {
		t.Fatal("revalue never taken")
	}
}
